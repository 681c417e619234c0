/*
 * Helpers shared by the subflow input side (mps_tcp.c) and its output side
 * (mps_tcp_out.c): sequence arithmetic, the data/subflow sequence relation
 * of the single initial subflow, and option-space sizes.
 */
#ifndef MPS_TCP_H
#define MPS_TCP_H

#include "mps_internal.h"
#include "prot/tcp.h"

#define SEQ_LT(a, b)  ((int32_t)((a) - (b)) < 0)
#define SEQ_LEQ(a, b) ((int32_t)((a) - (b)) <= 0)
#define SEQ_GT(a, b)  ((int32_t)((a) - (b)) > 0)
#define SEQ_GEQ(a, b) ((int32_t)((a) - (b)) >= 0)

#define MPS_OPT_TS_LEN	12 /* NOP NOP TS */
#define MPS_OPT_DSS_MAX 28 /* DATA_ACK 64 + mapping 64, padded */
#define MPS_MAX_OPTS	40

/* DSN just past the data queued for sending (the send buffer starts at snd_base_dsn). */
static inline uint64_t mps_data_end_dsn(const struct mps_conn *c)
{
	return c->snd_base_dsn + c->sndbuf.len;
}

/*
 * The congestion window new data may fill: limited transmit (RFC 3042)
 * lets each of the first two duplicate ACKs outside recovery send one
 * segment more, so that a small window still gets its third.
 */
static inline uint32_t mps_send_cwnd(const struct mps_subflow *sf, uint32_t mss)
{
	if (sf->in_recovery || !sf->dupacks)
		return sf->cwnd;
	return sf->cwnd + (sf->dupacks < 2 ? sf->dupacks : 2) * mss;
}

/*
 * Send map of a subflow (mps_sched.c): which DSNs its sequence numbers
 * carry. smap_find gives the DSN at seq and the bytes of that piece from
 * there; smap_dsn_at also answers for the end of the last piece.
 */
bool mps_smap_find(const struct mps_subflow *sf, uint32_t seq, uint64_t *dsn, uint32_t *room);
bool mps_smap_dsn_at(const struct mps_subflow *sf, uint32_t seq, uint64_t *dsn);
int mps_smap_add(struct mps_subflow *sf, uint32_t seq, uint64_t dsn, uint32_t len);
void mps_smap_trim(struct mps_subflow *sf); /* drop pieces below snd_una */
/*
 * A super-segment's mapping, kept as one piece: a retransmission of any part
 * of it carries this mapping again (a receiver in the middle of a mapping
 * takes no other one over the same bytes: Linux counts DSSNOMATCH). whole
 * tells whether seq lies in such a piece and gives its mapping.
 */
int mps_smap_add_whole(struct mps_subflow *sf, uint32_t seq, uint64_t dsn, uint32_t len);
bool mps_smap_whole(const struct mps_subflow *sf, uint32_t seq, uint32_t *seq0, uint64_t *dsn0,
		    uint32_t *len0, uint16_t *csum);
void mps_smap_set_csum(struct mps_subflow *sf, uint32_t seq0, uint16_t csum);
/* Lowest DSN sf may still have to resend, or UINT64_MAX. */
uint64_t mps_sf_low_dsn(const struct mps_subflow *sf);
/* sf holds back half the send buffer with data the peer has, and timed out twice (mps_sched.c). */
bool mps_sf_stale(const struct mps_conn *c, const struct mps_subflow *sf);
/* Drop acknowledged data from the send buffer that no subflow may still need to resend. */
void mps_snd_trim(struct mps_conn *c);
/*
 * New data for sf (one: a probe or forced segment, the scheduler's room
 * check skipped): reinjected data first, then data never sent. Returns
 * false when sf gets none now.
 */
bool mps_sched_take(struct mps_conn *c, struct mps_subflow *sf, bool one, uint64_t *dsn,
		    uint32_t *room, bool *reinject);
void mps_sched_took(struct mps_conn *c, uint64_t dsn, uint32_t len, bool reinject);
/* The right edge of the peer's connection-level window: new data stays below it. */
uint64_t mps_conn_wnd_edge(const struct mps_conn *c);
/* Data-level retransmission timer (mps_sched.c): the DATA_ACK moved, or time passed. */
void mps_dtx_progress(struct mps_conn *c);
void mps_dtx_timer(struct mps_conn *c, uint64_t now);
/* A join that is up, not closing and not in retransmission timeout. */
struct mps_subflow *mps_conn_working_join(const struct mps_conn *c);
/*
 * The initial subflow goes away (reason MPS_SF_DOWN_*, with an RST if rst)
 * while the joins carry the connection on: its data is reinjected. Returns
 * false, doing nothing, when no join works and the data level is not done.
 */
bool mps_initial_down(struct mps_conn *c, int reason, bool rst, uint64_t now);
/* An ACK for the connection (a DATA_ACK to give) on the initial subflow, or a join if it is gone. */
void mps_conn_ack_now(struct mps_conn *c);
/* Close over the joins when the initial subflow cannot: first DATA_FIN, connection closed. */
void mps_sched_close_check(struct mps_conn *c, uint64_t now);
/* A pure ACK whose DSS carries our DATA_FIN alone (data-level retransmission). */
int mps_tcp_send_data_fin(struct mps_conn *c, struct mps_subflow *sf, uint64_t now, uint8_t *buf,
			  size_t cap);
/* Queue sf's unacknowledged data for sending on the other subflows. */
void mps_reinject(struct mps_conn *c, struct mps_subflow *sf);
/* A subflow that may carry data now (for the scheduler). */
bool mps_sf_usable(const struct mps_subflow *sf);
/* Data (new, retransmitted or FIN) of subflow sf; 0 if nothing goes. */
int mps_tcp_send_data(struct mps_conn *c, struct mps_subflow *sf, uint64_t now, uint8_t *buf,
		      size_t cap);
int mps_tcp_send_ack(struct mps_conn *c, struct mps_subflow *sf, uint64_t now, uint8_t *buf,
		     size_t cap);
/* ACK processing of any subflow; false when the segment must be dropped. */
bool mps_process_ack(struct mps_conn *c, struct mps_subflow *sf, const struct mps_seg *s,
		     const struct mps_tcpopts *t, uint64_t now);

static inline uint32_t mps_rcv_space(const struct mps_conn *c)
{
	return c->rcvbuf.cap - c->rcvbuf.len;
}

/* Largest payload of a data segment on sf, options accounted for. */
static inline uint32_t mps_sf_mss(const struct mps_conn *c, const struct mps_subflow *sf)
{
	uint32_t m = c->st->cfg.mss < sf->peer_mss ? c->st->cfg.mss : sf->peer_mss;
	/* After a fallback, MP_FAIL or the infinite mapping may still need room. */
	bool mp = c->mptcp || c->mp_fail_tx || c->mp_fail_echo || c->inf_map_pending;
	uint32_t o = (sf->ts_ok ? MPS_OPT_TS_LEN : 0) + (mp ? MPS_OPT_DSS_MAX : 0);

	return m > o + 16 ? m - o : 16;
}

/*
 * Whether n bytes of in-order payload are more than one of the peer's
 * segments. It sends none larger than the smaller of the MSS we announced
 * and its own, so a larger packet is several that the kernel merged (TUN
 * offloads, GRO), and it counts as two for the delayed ACK: with only our
 * MSS as the bound, a receiver announcing jumbo frames to a peer on a
 * 1500-byte path left merged packets to the delayed-ACK timer.
 */
static inline bool mps_rx_merged(const struct mps_conn *c, const struct mps_subflow *sf, uint32_t n)
{
	return n > (c->st->cfg.mss < sf->peer_mss ? c->st->cfg.mss : sf->peer_mss);
}

static inline uint32_t mps_payload_mss(const struct mps_conn *c)
{
	return mps_sf_mss(c, &c->sf);
}

static inline uint8_t mps_wscale_for(uint32_t cap)
{
	uint8_t s = 0;

	while (s < MPS_TCP_WS_MAX && (cap >> s) > 0xffff)
		s++;
	return s;
}

static inline const struct mps_opt *mps_find_opt(const struct mps_opt *o, unsigned int n,
						 uint8_t sub)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		if (o[i].subtype == sub)
			return &o[i];
	return NULL;
}

/* What mps_tcp_write_packet() puts on the wire. */
struct mps_pkt_spec {
	const struct mps_addr *local, *remote;
	uint32_t seq, ack;
	uint8_t flags;
	uint16_t win;
	const uint8_t *opts;
	int optlen;
	const struct mps_ring *ring; /* payload source, may be NULL */
	uint32_t ring_off, len;
};

/* Write IP + TCP headers, options and payload; returns the packet length or -ENOSPC. */
int mps_tcp_write_packet(struct mps_stack *st, const struct mps_pkt_spec *ps, uint8_t *buf,
			 size_t cap);

/*
 * Leaving MPTCP in an established connection (mps_fallback.c). mps_fall_back
 * falls back with an MPS_FALLBACK_* reason and its text. mps_csum_failure
 * answers a DSS checksum that failed (presence false) or whose presence
 * contradicts the negotiation; it returns true when the connection goes on.
 * mps_mapping_missing answers in-order data that no mapping covers, on a
 * segment that brought none. mps_fallback_input looks at every segment of
 * an established connection before its ACK is processed: MP_FAIL, the
 * infinite mapping, MPTCP options gone.
 */
void mps_fall_back(struct mps_conn *c, int reason, const char *why, uint64_t now);
/* One subflow, never a join, nothing held ahead, nothing resent: may fall back mid-connection. */
bool mps_infinite_ok(const struct mps_conn *c);
bool mps_csum_failure(struct mps_conn *c, bool presence, uint64_t dsn, uint64_t now);
/* The initial subflow's held mapping failed: only that subflow goes while a join works. */
bool mps_csum_failure_held(struct mps_conn *c, uint64_t dsn, uint64_t now);
void mps_mapping_missing(struct mps_conn *c, uint64_t now);
void mps_fallback_input(struct mps_conn *c, const struct mps_seg *s, const struct mps_tcpopts *t,
			const struct mps_opt *o, unsigned int n, uint64_t now);

/* Connection-level option handling shared with join subflows (mps_tcp.c). */
/* A DATA_ACK, and wnd: the receive window (scaled) of the segment that carried it. */
void mps_data_ack(struct mps_conn *c, const struct mps_opt_dss *d, uint32_t wnd);
void mps_add_addr_input(struct mps_conn *c, const struct mps_opt_add_addr *a, uint64_t now);
void mps_rm_addr_input(struct mps_conn *c, const struct mps_opt_rm_addr *r, uint64_t now);
void mps_rtt_sample(struct mps_subflow *sf, uint32_t r);
/* Expand a 32-bit value from the wire to the 64-bit value nearest ref. */
uint64_t mps_expand32(uint64_t ref, uint64_t v32);

/*
 * SACK-based loss recovery (RFC 6675, mps_tcp.c). mps_sack_pipe: the
 * octets sf has in the network (snd_max - snd_una outside SACK recovery).
 * mps_sack_hole: NextSeg() rules 1 (lost_only) and 3, the first hole at or
 * above HighRxt; *len is the hole's length. mps_sack_rescue: rule 4, the
 * last segment below snd_max not SACKed, once per recovery.
 */
uint32_t mps_sack_pipe(const struct mps_subflow *sf, uint32_t mss);
bool mps_sack_hole(const struct mps_subflow *sf, uint32_t mss, bool lost_only, uint32_t *seq,
		   uint32_t *len);
bool mps_sack_rescue(const struct mps_subflow *sf, uint32_t mss, uint32_t *seq, uint32_t *len);

/*
 * The SACK blocks of subflow sf's duplicate ACK (RFC 2018 §4, mps_tcp.c),
 * at most max (and MPS_SACK_BLOCKS_MAX): first the run of queued data that
 * holds the most recently queued segment, then the other runs, highest
 * (most recently sent) first. Returns how many; 0 if nothing is queued.
 * Joins keep their own queue, so they SACK as the initial subflow does.
 */
#define MPS_SACK_BLOCKS_MAX 4
unsigned int mps_sack_blocks(const struct mps_conn *c, const struct mps_subflow *sf,
			     uint32_t (*blk)[2], unsigned int max);
/* Something is queued out of order on sf (its ACKs carry SACK blocks). */
bool mps_sack_queued(const struct mps_conn *c, const struct mps_subflow *sf);
/*
 * Append sf's SACK option to the n option bytes at p (MPS_MAX_OPTS in all)
 * unless the segment carries a mapping or is a RST; returns the new length.
 */
int mps_add_sack(const struct mps_conn *c, const struct mps_subflow *sf, uint8_t *p, int n,
		 uint8_t flags, bool mapped);
/* Two runs to SACK: a pure ACK's DSS takes a 4-byte DATA_ACK to leave room. */
bool mps_sack_wants_room(const struct mps_conn *c, const struct mps_subflow *sf);

#endif
