/*
 * The link emulator's model of one direction of one uplink, sans I/O: it is
 * handed each packet with "now" and says whether to drop it or when to
 * release it. The NFQUEUE plumbing lives in linkemu.c.
 */
#ifndef TB_EMU_H
#define TB_EMU_H

#include <stdbool.h>
#include <stdint.h>

#include "tb_config.h"

enum tb_emu_verdict {
	TB_EMU_RELEASE,	    /* release at *release_ns, in order */
	TB_EMU_RELEASE_NOW, /* reordered: release now, ahead of queued packets */
	TB_EMU_DROP_LOSS,   /* random or Gilbert-Elliott loss */
	TB_EMU_DROP_QUEUE,  /* the queue in front of the rate limit is full */
	TB_EMU_DROP_DOWN,   /* the link is down */
};

struct tb_emu_counters {
	uint64_t packets; /* offered */
	uint64_t bytes;
	uint64_t drop_loss;
	uint64_t drop_queue;
	uint64_t drop_down;
	uint64_t drop_mbox; /* dropped by a middlebox (ADD_ADDR) */
	uint64_t reordered;
};

struct tb_emu_dir {
	struct tb_link_params p;
	uint64_t rng;
	bool ge_bad;
	uint64_t tx_free_ns;	  /* when the rate limiter finishes its backlog */
	uint64_t last_release_ns; /* releases stay in order */
	struct tb_emu_counters c;
};

/* Sets up a direction with parameters and a random seed (non-zero). */
void tb_emu_init(struct tb_emu_dir *d, const struct tb_link_params *p, uint64_t seed);
/* Changes the parameters at run time; queued packets keep their release time. */
void tb_emu_set(struct tb_emu_dir *d, const struct tb_link_params *p);
/* Decides about one packet of len bytes (IP length) arriving at now_ns. */
enum tb_emu_verdict tb_emu_packet(struct tb_emu_dir *d, uint64_t now_ns, uint32_t len,
				  uint64_t *release_ns);
/* Uniform double in [0, 1) from the direction's generator (xorshift64*). */
double tb_emu_rand(struct tb_emu_dir *d);

/*
 * True when an IPv4 or IPv6 TCP segment (first caplen bytes of it) carries
 * an MPTCP ADD_ADDR option (kind 30, subtype 3).
 */
bool tb_has_add_addr(const uint8_t *pkt, uint32_t caplen);

/*
 * Sequence-number rewriting middlebox on a whole IPv4 or IPv6 TCP packet of
 * len bytes: outbound (site to core) adds delta to the sequence number;
 * inbound subtracts it from the acknowledgment number and from every SACK
 * block edge, so both ends stay consistent. The TCP checksum is computed
 * anew. Returns 1 when the packet was changed, 0 when it is not TCP (or an
 * inbound segment without ACK), -EINVAL when it is cut short or malformed.
 */
int tb_rewrite_seq(uint8_t *pkt, uint32_t len, uint32_t delta, bool outbound);

#endif
