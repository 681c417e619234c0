/*
 * Simulated network for libmps: nodes joined by paths with delay, jitter,
 * loss, reordering, rate and MTU, driven by the caller's fake clock. Fully
 * deterministic for a given seed. Each node is reached through the link
 * adapter mps_sim_link_ops with the port of mps_sim_port() as its context.
 */
#ifndef MPS_SIM_H
#define MPS_SIM_H

#include <stdbool.h>
#include <stdint.h>

#include "mps.h"

#define MPS_SIM_MAX_NODES 8
#define MPS_SIM_MAX_PATHS 16
#define MPS_SIM_QUEUE_MAX 8192 /* packets in flight per direction; more are tail-dropped */

struct mps_sim;
struct mps_sim_port;

struct mps_sim_link_cfg {
	uint32_t delay_us;    /* one-way propagation delay */
	uint32_t jitter_us;   /* extra delay drawn uniformly from [0, jitter] */
	uint32_t loss_ppm;    /* random loss, parts per million; 1000000 cuts the path */
	uint32_t reorder_ppm; /* packets held back by reorder_delay_us */
	uint32_t reorder_delay_us;
	uint32_t mtu;	   /* larger IP packets are dropped; 0: 1500 */
	uint64_t rate_bps; /* serialisation rate; 0: unlimited */
	/*
	 * With rate_bps: the queue in front of the serialiser, in time at the
	 * rate; a packet that would wait longer is tail-dropped (a router's
	 * buffer). 0: no limit but MPS_SIM_QUEUE_MAX.
	 */
	uint32_t buffer_us;
	unsigned int strip_mptcp; /* MPS_SIM_STRIP_*: a middlebox that removes MPTCP options */
	uint32_t rewrite_ppm;	  /* payload rewritten, TCP checksum fixed (as an ALG does) */
	/*
	 * At most this many packets rewritten from the mps_sim_add_path() or
	 * mps_sim_set_path() call that set it on; 0: no limit.
	 */
	uint32_t rewrite_max;
};

/* Which segments lose their MPTCP options (overwritten with NOPs, checksum fixed). */
#define MPS_SIM_STRIP_SYN    0x01 /* SYN without ACK */
#define MPS_SIM_STRIP_SYNACK 0x02
#define MPS_SIM_STRIP_ACK    0x04 /* no SYN, no payload */
#define MPS_SIM_STRIP_DATA   0x08 /* with payload */

struct mps_sim_stats {
	uint64_t sent, delivered, lost, too_big, no_route, queue_full, reordered, stripped,
		rewritten;
	uint64_t gso_pkts; /* packets larger than one segment a port was handed (mps_sim_set_gso) */
};

/* Create an empty network; NULL on allocation failure. Free with mps_sim_destroy(). */
struct mps_sim *mps_sim_create(uint64_t seed);
void mps_sim_destroy(struct mps_sim *sim);

/* Add a node; returns its index (0..MPS_SIM_MAX_NODES-1) or -ENOSPC. */
int mps_sim_add_node(struct mps_sim *sim);

/*
 * Join address a of node na and address b of node nb (same family, 4 or
 * 16 bytes each, copied) by a path with cfg in both directions. Returns
 * the path index, -EINVAL or -ENOSPC. Packets are routed by their source
 * and destination addresses, as source-address routing on NorNet does.
 */
int mps_sim_add_path(struct mps_sim *sim, int na, const uint8_t *a, int nb, const uint8_t *b,
		     uint8_t family, const struct mps_sim_link_cfg *cfg);

/* Change a path's behaviour from now on (packets in flight keep theirs). */
int mps_sim_set_path(struct mps_sim *sim, int path, const struct mps_sim_link_cfg *cfg);

/* The port of node n, owned by sim (valid until mps_sim_destroy()), or NULL. */
struct mps_sim_port *mps_sim_port(struct mps_sim *sim, int n);

void mps_sim_get_stats(const struct mps_sim *sim, struct mps_sim_stats *out);

/*
 * Make a port a link that segments, as a TUN device with offloads is: its
 * gso_max hook offers max bytes of TCP payload per packet (0, the default:
 * off). With split, a large packet is cut as the kernel's GSO cuts it (same
 * headers and options, sequence numbers and IP lengths advanced, IPv4 IDs
 * counted up, FIN and PSH on the last piece only, checksums redone) and each
 * piece crosses the path alone; without, it crosses whole, as one packet
 * the receiver must take as it is (a GSO packet over veth, or what GRO
 * merged), checked against the path's MTU per segment. Returns 0 or -EINVAL
 * (max above 65535).
 */
int mps_sim_set_gso(struct mps_sim_port *port, uint32_t max, bool split);

/* Link adapter: ctx is a struct mps_sim_port *. */
extern const struct mps_link_ops mps_sim_link_ops;

#endif
