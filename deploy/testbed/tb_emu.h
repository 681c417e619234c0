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
 * Whether a direction may take GSO packets whole (NFQA_CFG_F_GSO): one
 * verdict, one departure and one fate for all the segments of a packet. Only
 * without loss or reordering, which must hit segments one by one, and only
 * where a largest GSO packet (TB_EMU_GSO_BYTES) leaves within
 * TB_EMU_GSO_MAX_NS at the rate (or the rate is unlimited): on a slower link
 * its first segment would arrive its whole serialization time late (26 ms
 * at 20 Mbit/s) and a full queue would drop all of its segments at once.
 */
#define TB_EMU_GSO_BYTES  65536u
#define TB_EMU_GSO_MAX_NS 1000000ull
bool tb_emu_whole_gso(const struct tb_link_params *p);

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

/*
 * Payload-rewriting middlebox, as an application-level gateway would be: it
 * changes the byte at stream offset `offset` (0 is the first payload byte
 * after the SYN) of every direction of every TCP connection it saw open, in
 * whichever segment carries that byte (retransmissions too, so every copy
 * of it agrees), and computes the TCP checksum anew. Only the MPTCP DSS
 * checksum can tell. TB_PRW_ADD is added to the byte (mod 256): that
 * always changes it and a ones'-complement sum over it, and unlike a XOR
 * two such boxes on one path do not undo each other.
 *
 * It needs each direction's initial sequence number, so it remembers flows
 * from their SYN (or SYN/ACK): at most TB_PRW_FLOWS at once, the least
 * recently seen one giving way. A connection it did not see open passes
 * untouched.
 */
#define TB_PRW_FLOWS 1024
#define TB_PRW_PROBE 8 /* slots tried per lookup: the table stays bounded in time too */
#define TB_PRW_ADD   1

struct tb_prw_flow {
	uint8_t key[37]; /* family, source, destination (16 bytes each), ports */
	bool used;
	uint32_t isn;	   /* sequence number of the SYN */
	uint64_t last_use; /* for eviction */
};

struct tb_prw {
	uint32_t offset;
	uint64_t clock;
	uint64_t flows_seen, evicted;
	struct tb_prw_flow flows[TB_PRW_FLOWS];
};

void tb_prw_init(struct tb_prw *t, uint32_t offset);
/*
 * One whole IPv4 or IPv6 packet of len bytes, changed in place. Returns 1
 * when a payload byte was changed, 0 when the packet passes unchanged (not
 * TCP, a fragment, a flow not seen from its SYN, no byte at the offset),
 * -EINVAL when it is cut short or malformed.
 */
int tb_rewrite_payload(struct tb_prw *t, uint8_t *pkt, uint32_t len);

#endif
