/*
 * Topology of the emulated testbed: sites, ISPs, per-uplink link parameters
 * and middleboxes, read from a libconfig file. Also the address plan, which
 * fjord-testbed and fjord-linkemu both derive from the same topology.
 */
#ifndef TB_CONFIG_H
#define TB_CONFIG_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TB_NAME_MAX	 16 /* with the NUL */
#define TB_SITE_NAME_MAX 9  /* 8 characters: "fjtb-" + name stays short */
#define TB_ISP_NAME_MAX	 9  /* the uplink interface in a site is named after the ISP */
#define TB_MAX_SITES	 32
#define TB_MAX_ISPS	 8
#define TB_MAX_NODES	 8 /* per site */
#define TB_MAX_LINKS	 (TB_MAX_SITES * TB_MAX_ISPS)
#define TB_ERR_MAX	 256

enum tb_middlebox {
	TB_MB_NONE,
	TB_MB_STRIP_MPTCP,	  /* TCPOPTSTRIP of option kind 30, every segment */
	TB_MB_STRIP_MPTCP_SYNACK, /* the same, only on SYN/ACK */
	TB_MB_NAT,		  /* IPv4 source NAT of the site's addresses on this ISP */
	TB_MB_DROP_ADD_ADDR,	  /* the emulator drops segments carrying ADD_ADDR */
	TB_MB_REWRITE_SEQ,	  /* the emulator shifts TCP sequence numbers (and ACK, SACK) */
	TB_MB_REWRITE_PAYLOAD,	  /* the emulator changes one payload byte per stream, as an ALG */
};

/* rewrite-payload: the stream byte it changes unless the file says otherwise. */
#define TB_REWRITE_OFFSET_DEFAULT 65536u
#define TB_REWRITE_OFFSET_MAX	  (1u << 30)

enum tb_loss_model {
	TB_LOSS_RANDOM,
	TB_LOSS_GE, /* Gilbert-Elliott: two states, loss probability per state */
};

/* Parameters of one direction of one uplink; both directions start equal. */
struct tb_link_params {
	uint64_t rate_bps;  /* 0: no rate limit */
	uint32_t delay_us;  /* one-way added delay */
	uint32_t jitter_us; /* uniform in [delay - jitter, delay + jitter] */
	uint32_t buffer_us; /* queue in front of the rate limit, in time at rate */
	enum tb_loss_model loss_model;
	double loss;	    /* random model: drop probability */
	double ge_p;	    /* GE: good -> bad transition probability per packet */
	double ge_r;	    /* GE: bad -> good */
	double ge_loss_bad; /* GE: drop probability in the bad state */
	double ge_loss_good;
	double reorder; /* probability that a packet skips the delay */
	bool down;
};

struct tb_isp {
	char name[TB_ISP_NAME_MAX];
	struct in_addr v4; /* network, prefix length <= 16 */
	unsigned int v4len;
	struct in6_addr v6; /* network, prefix length <= 48 */
	unsigned int v6len;
	struct in_addr inside_v4; /* for NAT uplinks: the private block, <= /16 */
	unsigned int inside_v4len;
	bool has_inside;
	enum tb_middlebox middlebox; /* default for its uplinks */
	uint32_t rewrite_offset;     /* rewrite-payload: default for its uplinks */
};

struct tb_node {
	char name[TB_NAME_MAX];
	char tun[TB_NAME_MAX];	    /* TUN device of the bundled stack (client side of runs) */
	char resp_tun[TB_NAME_MAX]; /* TUN device of its bundled responder */
};

enum tb_dir {
	TB_DIR_UP,   /* site to core */
	TB_DIR_DOWN, /* core to site */
};

struct tb_uplink {
	unsigned int isp; /* index into topology.isps */
	unsigned int mtu;
	enum tb_middlebox middlebox;
	uint32_t rewrite_offset;	 /* rewrite-payload: stream byte changed (0 is the first) */
	struct tb_link_params params[2]; /* by enum tb_dir */
};

struct tb_site {
	char name[TB_SITE_NAME_MAX];
	struct tb_node nodes[TB_MAX_NODES];
	unsigned int n_nodes;
	struct tb_uplink uplinks[TB_MAX_ISPS];
	unsigned int n_uplinks;
};

struct tb_topology {
	char name[32];
	struct in_addr ctl_v4; /* controller address and its prefix */
	unsigned int ctl_v4len;
	struct in6_addr ctl_v6;
	unsigned int ctl_v6len;
	struct tb_isp isps[TB_MAX_ISPS];
	unsigned int n_isps;
	struct tb_site sites[TB_MAX_SITES];
	unsigned int n_sites;
};

/*
 * Reads a topology. On failure returns a negative errno and writes into err
 * a message that names the file, line and setting ("sites.[1].uplinks.[0].delay").
 */
int tb_config_load_file(const char *path, struct tb_topology *t, char *err, size_t errlen);
int tb_config_load_string(const char *text, struct tb_topology *t, char *err, size_t errlen);

/* The defaults of a link before the file's settings apply. */
void tb_link_params_default(struct tb_link_params *p);
/*
 * Sets one link parameter from text, as in the file and in "fjord-testbed set":
 * rate, delay, jitter, buffer, loss, loss_model, ge_p, ge_r, ge_loss_bad,
 * ge_loss_good, reorder. Returns 0, or -EINVAL with a message in err.
 */
int tb_link_set(struct tb_link_params *p, const char *key, const char *value, char *err,
		size_t errlen);
/*
 * The same for both directions of a link: a key ending in "_up" ("delay_up")
 * sets only the site-to-core direction, "_down" only core-to-site, a plain
 * key both. Nothing changes on error.
 */
int tb_link_set_dirs(struct tb_link_params p[2], const char *key, const char *value, char *err,
		     size_t errlen);
/* Formats the parameters as "key=value ..." (the keys tb_link_set reads). */
void tb_link_format(const struct tb_link_params *p, char *buf, size_t len);

/* Unit parsers: "100mbit", "20ms", "1.5%" or a fraction. 0 or -EINVAL. */
int tb_parse_rate(const char *s, uint64_t *bps);
int tb_parse_duration(const char *s, uint32_t *us);
int tb_parse_prob(const char *s, double *p);

const char *tb_middlebox_name(enum tb_middlebox mb);
int tb_middlebox_parse(const char *s, enum tb_middlebox *mb);

/* Link numbering, shared by fjord-testbed and fjord-linkemu: site-major. */
unsigned int tb_link_count(const struct tb_topology *t);
/* Finds "SITE/ISP"; returns the link index or -ENOENT. */
int tb_link_find(const struct tb_topology *t, const char *name);
/* Site and uplink of link index i; returns 0 or -ENOENT. */
int tb_link_at(const struct tb_topology *t, unsigned int i, unsigned int *site,
	       unsigned int *uplink);

/*
 * The address plan. Site s (0-based) on ISP i uses the /24 (IPv4) and /64
 * (IPv6) numbered s + 1 inside the ISP's prefix. Host 1 is the core's side of
 * the uplink, host 2 + n is node n's kernel address, and node n's bundled
 * stack address is .128 + n (IPv4) or ::1:n (IPv6), routed into its TUN, and
 * its bundled responder's .160 + n or ::1:100 + n, routed into its responder
 * TUN (both inside the /25 and /112 the core routes to the site).
 * On a NAT uplink the site side uses the ISP's inside_ipv4 block and the
 * site's public IPv4 address is host 2 of its public /24.
 */
enum tb_host {
	TB_HOST_CORE,	      /* core end of the uplink */
	TB_HOST_NODE,	      /* node's kernel address (n) */
	TB_HOST_BUNDLED,      /* node's bundled-stack address (n) */
	TB_HOST_BUNDLED_RESP, /* node's bundled responder address (n) */
	TB_HOST_PUBLIC,	      /* NAT: the site's public address */
};
/* Returns 0 or -EINVAL (bad indices). */
int tb_addr_v4(const struct tb_topology *t, unsigned int site, unsigned int isp, enum tb_host h,
	       unsigned int n, struct in_addr *out);
int tb_addr_v6(const struct tb_topology *t, unsigned int site, unsigned int isp, enum tb_host h,
	       unsigned int n, struct in6_addr *out);
/* The uplink of site s for ISP i, or NULL when the site has none. */
const struct tb_uplink *tb_site_uplink(const struct tb_topology *t, unsigned int site,
				       unsigned int isp);

#endif
