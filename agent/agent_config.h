/*
 * fjord-agent configuration (libconfig syntax; see deploy/fjord-agent.cfg).
 * Everything is copied into fixed-size fields with checked lengths, so a
 * loaded config owns no heap memory.
 */
#ifndef AGENT_CONFIG_H
#define AGENT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fj_log.h"

#define AGENT_MAX_IFACES     16
#define AGENT_MAX_RESP_ADDRS 4
#define AGENT_URL_MAX	     512
#define AGENT_LABEL_MAX	     64
#define AGENT_SECRET_MAX     256
#define AGENT_PATH_MAX	     256
#define AGENT_MIN_SPOOL_CAP  65536
#define AGENT_IFNAME_MAX     16

#define AGENT_ADDR_MAX 46 /* an IPv6 literal with its NUL */

struct agent_iface_cfg {
	char name[AGENT_IFNAME_MAX];
	char isp[AGENT_LABEL_MAX + 1];
	int link_type; /* fjord.v1.LinkType value */
	/*
	 * Addresses of the bundled stack on this ISP (routed into bundled_tun),
	 * and of its responder (routed into bundled_responder_tun); index 0
	 * IPv4, 1 IPv6; empty: none.
	 */
	char bundled[2][AGENT_ADDR_MAX];
	char bundled_responder[2][AGENT_ADDR_MAX];
};

struct agent_config {
	char controller_url[AGENT_URL_MAX + 1];
	char cacert[AGENT_PATH_MAX + 1]; /* CA bundle for an https controller; empty: system's */
	char site[AGENT_LABEL_MAX + 1];
	char node[AGENT_LABEL_MAX + 1];
	char secret[AGENT_SECRET_MAX + 1];
	char state_dir[AGENT_PATH_MAX + 1];
	char spool_dir[AGENT_PATH_MAX + 1];
	uint64_t spool_cap_bytes;
	unsigned int poll_wait_s;
	unsigned int responder_port;
	char responder_addrs[AGENT_MAX_RESP_ADDRS][64];
	unsigned int n_responder_addrs; /* 0: every address, IPv4 and IPv6 */
	unsigned int responder_max_conns;
	unsigned int responder_idle_s;
	enum fj_log_level log_level;
	unsigned int max_runs;
	unsigned int run_deadline_s; /* when a run carries no deadline_ms */
	unsigned int backoff_base_ms;
	unsigned int backoff_max_ms;
	/* Command template for handover link events ({site} {isp} {action} {addr}); empty: none. */
	char link_hook[512];
	struct agent_iface_cfg ifaces[AGENT_MAX_IFACES];
	unsigned int n_ifaces;
	/* TUN devices of the bundled stack: client runs, and the responder; empty: none. */
	char bundled_tun[AGENT_IFNAME_MAX];
	char bundled_responder_tun[AGENT_IFNAME_MAX];
	/*
	 * bundled_host: the bundled stack on the node's own addresses (libmps's
	 * host adapter) instead of TUN devices; the interfaces' bundled_ipv4 /
	 * bundled_ipv6 are then their own addresses, and the bundled responder
	 * listens there on bundled_responder_port (1..49151, not responder_port;
	 * default responder_port + 1).
	 */
	int bundled_host;
	unsigned int bundled_responder_port;
	/*
	 * Caps of the bundled stack's buffer autotuning per connection (client
	 * runs and the responder), bytes: AGENT_BUNDLED_BUF_MIN (256 KiB, the
	 * starting size: no growth) to AGENT_BUNDLED_BUF_MAX; both grow to
	 * 4 MiB by default, as far as the kernel's own TCP buffers go.
	 */
	unsigned int bundled_rcvbuf_max;
	unsigned int bundled_sndbuf_max;
	/*
	 * The bundled TUN devices with libmps's offloads (vnet header: GSO
	 * super-segments out, merged packets in): bundled_offloads, true by
	 * default; false opens them plain (docs/agent.md).
	 */
	bool bundled_offloads;
};

#define AGENT_BUNDLED_BUF_MIN	     (256u << 10)
#define AGENT_BUNDLED_BUF_MAX	     (1u << 30)
#define AGENT_BUNDLED_RCVBUF_DEFAULT (4u << 20)
#define AGENT_BUNDLED_SNDBUF_DEFAULT (4u << 20)

/* Fills cfg with the defaults of every optional setting. */
void agent_config_defaults(struct agent_config *cfg);

/*
 * Loads path (or, for agent_config_parse, the text in buf) into cfg. On error
 * returns -EINVAL (or the errno of opening the file) and writes one line into
 * err naming the setting and what is wrong with it.
 */
int agent_config_load(const char *path, struct agent_config *cfg, char *err, size_t errlen);
int agent_config_parse(const char *text, struct agent_config *cfg, char *err, size_t errlen);

/* "ethernet", "fiber", ... to the fjord.v1.LinkType value; -EINVAL if unknown. */
int agent_link_type_parse(const char *s);

#endif
