/*
 * Host link adapter: the stack on a node's own addresses, beside the
 * kernel's TCP, with no TUN device and no route of its own.
 *
 * Sending: one raw socket per family that takes whole IP packets (IPv4 and
 * IPv6 IPPROTO_RAW, which imply IP_HDRINCL and IPV6_HDRINCL). Each packet
 * is routed by its own source address as well as its destination
 * (IP_PKTINFO / IPV6_PKTINFO), so source-address routing sends it out of
 * its address's uplink, and carries the adapter's SO_MARK.
 *
 * Receiving: AF_PACKET datagram sockets for ETH_P_IP and ETH_P_IPV6 on every
 * interface. They see a received packet with its IP header and tell whether
 * the kernel left its checksum partial (veth) or checked it (and GRO may
 * have merged segments under the first one's checksum); the adapter
 * completes or recomputes it. A classic BPF program on each socket lets the
 * kernel copy only TCP to the configured addresses and ports, and
 * mps_host_match() checks every packet again.
 *
 * The kernel would see the same segments and, having no socket for them,
 * answer with RST: SYNs to the stack's listening ports, SYN/ACKs to ports it
 * never opened. The adapter installs an nftables table of its own
 * ("fjmps_PID_N", family inet): in prerouting (priority -300, after the
 * packet sockets took their copy) it drops every TCP segment to the
 * configured addresses and ports, so the kernel's TCP never sees them; in
 * output it drops every RST from them that does not carry the adapter's
 * mark, should one be sent all the same. mps_host_close() deletes it. Tables of adapters whose process is gone
 * (killed with SIGKILL) are deleted by the next mps_host_open() in the same
 * network namespace.
 *
 * Ports: each listening port is reserved on each address by a kernel socket
 * bound to it without listen(), so no kernel program can take it while the
 * adapter is open. The stack picks the local ports of its connections and
 * joins from MPS_HOST_PORT_MIN..MPS_HOST_PORT_MAX; with cfg.ephemeral the
 * adapter refuses to open unless the kernel will not hand out those ports
 * itself (net.ipv4.ip_local_port_range outside them, or the overlap listed
 * in net.ipv4.ip_local_reserved_ports). Linux's default range 32768-60999
 * overlaps: set it to "32768 49151" in the node's (or namespace's) sysctls.
 * One adapter with ephemeral ports per address at a time (it holds port
 * MPS_HOST_PORT_MIN there with a kernel socket; a second one is refused),
 * since each would see the other's segments and its stack answer them with
 * RSTs.
 *
 * Needs CAP_NET_RAW and CAP_NET_ADMIN (root) and the nft program. Packets
 * the adapter receives bypass the kernel's input firewall (AF_PACKET sees
 * them before netfilter); its own packets pass the output hooks.
 */
#ifndef MPS_HOST_H
#define MPS_HOST_H

#include <linux/filter.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mps.h"

#define MPS_HOST_MAX_ADDRS (MPS_MAX_LOCAL_ADDRS + 1)
#define MPS_HOST_MAX_PORTS 8
/* The stack's ephemeral ports (mps_connect() and joins with port 0). */
#define MPS_HOST_PORT_MIN 49152
#define MPS_HOST_PORT_MAX 65535
/* SO_MARK of the adapter's packets, unless cfg.mark says otherwise. */
#define MPS_HOST_MARK 0x4d505300u
/* Longest classic BPF program mps_host_bpf() writes. */
#define MPS_HOST_BPF_MAX 128

struct mps_host;

struct mps_host_config {
	/* The stack's local addresses (ports ignored); all of them must be this host's. */
	struct mps_addr addrs[MPS_HOST_MAX_ADDRS];
	unsigned int naddrs;		    /* 1..MPS_HOST_MAX_ADDRS */
	uint16_t ports[MPS_HOST_MAX_PORTS]; /* ports the stack listens on, each reserved */
	unsigned int nports;
	/* The stack opens connections or joins: MPS_HOST_PORT_MIN..MAX are its ports too. */
	bool ephemeral;
	uint32_t mark; /* SO_MARK of our packets; 0: MPS_HOST_MARK */
};

/*
 * Check cfg: 1..MPS_HOST_MAX_ADDRS addresses of family 4 or 6, none
 * unspecified or multicast; at most MPS_HOST_MAX_PORTS ports, none 0 nor
 * repeated; at least one port or ephemeral. Returns 0, or -EINVAL with the
 * reason in why (whylen bytes, always terminated; why may be NULL).
 */
int mps_host_config_check(const struct mps_host_config *cfg, char *why, size_t whylen);

/*
 * Whether the received IP packet pkt[0..len) is for the stack: IPv4
 * (unfragmented) or IPv6 (no extension header) carrying TCP to one of cfg's
 * addresses and ports. Returns 1 with *iplen set to the packet's length
 * without link padding, 0 if it is someone else's, or -EBADMSG if it is too
 * short or its lengths do not fit. Work is bounded by cfg's sizes.
 */
int mps_host_match(const struct mps_host_config *cfg, const uint8_t *pkt, size_t len,
		   size_t *iplen);

/* What the kernel said of a received packet's TCP checksum (PACKET_AUXDATA). */
enum mps_host_csum {
	MPS_HOST_CSUM_NONE,    /* nothing: as on the wire */
	MPS_HOST_CSUM_PARTIAL, /* sent from this machine (veth): the field holds the
				  pseudo-header's sum */
	MPS_HOST_CSUM_VALID,   /* checked by the kernel; GRO may have merged segments under
				  the first one's checksum */
};

/*
 * The MPS_IN_* flags (mps.h) the adapter's recv_flags hook gives
 * mps_input_flags() for a packet of that verdict: for PARTIAL and VALID the
 * kernel vouches for the data, so the stack does not sum it again, and the
 * field, which may be stale, is fixed only for the trace (MPS_IN_CSUM_OK |
 * MPS_IN_CSUM_STALE); for NONE 0, the stack verifies.
 */
unsigned int mps_host_csum_flags(enum mps_host_csum how);

/*
 * The nftables script that creates table (family inet) dropping the
 * kernel's RSTs for cfg (see above), into buf (cap bytes, terminated).
 * Returns its length, -EINVAL (bad cfg or table name) or -ENOSPC.
 */
int mps_host_ruleset(const struct mps_host_config *cfg, const char *table, char *buf, size_t cap);

/*
 * The classic BPF program for the AF_PACKET socket of family (4 or 6):
 * accept (whole packet) what mps_host_match() would accept, drop the rest.
 * Returns the number of instructions written (at most cap), -EINVAL or
 * -ENOSPC.
 */
int mps_host_bpf(const struct mps_host_config *cfg, int family, struct sock_filter *prog,
		 size_t cap);

/*
 * Whether the kernel may hand out any of MPS_HOST_PORT_MIN..MAX itself,
 * given the text of net.ipv4.ip_local_port_range ("LO HI") and of
 * net.ipv4.ip_local_reserved_ports ("" or "A,B-C,..."). Returns 0 if it may
 * not, -EADDRINUSE if it may (why names the first such port), -EINVAL if a
 * text does not parse.
 */
int mps_host_ports_check(const char *range, const char *reserved, char *why, size_t whylen);

/*
 * Open the adapter for cfg (copied): check cfg, check that the addresses
 * are this host's and the ports free, reserve the listening ports, install
 * the RST rules, open the sockets. Returns a handle for mps_host_close(),
 * or NULL with *err a negative errno and the reason in why: -EINVAL (bad
 * cfg), -EADDRNOTAVAIL (an address not on this host), -EADDRINUSE (a port
 * taken, or the kernel's port range overlapping), -EPERM (no
 * CAP_NET_RAW/ADMIN), -ENOENT (no nft), -EIO (nft refused the rules),
 * -ENOMEM.
 */
struct mps_host *mps_host_open(const struct mps_host_config *cfg, int *err, char *why,
			       size_t whylen);

/*
 * Delete the rules, release the ports and close the sockets; NULL is a
 * no-op. Returns 0, or -EIO if nft could not delete the table (its name is
 * then on stderr, so that it can be deleted by hand).
 */
int mps_host_close(struct mps_host *h);

/* A descriptor readable while packets wait (an epoll set of both sockets); owned by h. */
int mps_host_fd(const struct mps_host *h);

/* The nftables table the adapter installed (static for h's life). */
const char *mps_host_table(const struct mps_host *h);

struct mps_host_stats {
	uint64_t rx_pkts;  /* read from the packet sockets */
	uint64_t rx_ours;  /* handed to the stack */
	uint64_t rx_other; /* not for the stack (the BPF program lets nothing else in) */
	uint64_t rx_bad;   /* malformed, truncated (over the buffer) or outgoing */
	uint64_t rx_csum;  /* checksums the kernel vouched for: not summed again */
	uint64_t tx_pkts;  /* sent */
	uint64_t tx_err;   /* refused by the kernel (lost) */
};

void mps_host_get_stats(const struct mps_host *h, struct mps_host_stats *stats);

/* Link adapter: ctx is a struct mps_host *; next_ready unknown (poll mps_host_fd()). */
extern const struct mps_link_ops mps_host_link_ops;

#endif
