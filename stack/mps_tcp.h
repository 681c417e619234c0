/*
 * Helpers shared by the subflow input side (mps_tcp.c) and its output side
 * (mps_tcp_out.c): sequence arithmetic, the data/subflow sequence relation
 * of the single initial subflow, and option-space sizes.
 */
#ifndef MPS_TCP_H
#define MPS_TCP_H

#include "mps_internal.h"

#define SEQ_LT(a, b)  ((int32_t)((a) - (b)) < 0)
#define SEQ_LEQ(a, b) ((int32_t)((a) - (b)) <= 0)
#define SEQ_GT(a, b)  ((int32_t)((a) - (b)) > 0)
#define SEQ_GEQ(a, b) ((int32_t)((a) - (b)) >= 0)

#define MPS_OPT_TS_LEN	12 /* NOP NOP TS */
#define MPS_OPT_DSS_MAX 28 /* DATA_ACK 64 + mapping 64, padded */
#define MPS_MAX_OPTS	40

/* Data sequence <-> subflow sequence for the single, initial subflow. */
static inline uint32_t mps_seq_of_dsn(const struct mps_conn *c, uint64_t dsn)
{
	return c->sf.iss + 1 + (uint32_t)(dsn - (c->lidsn + 1));
}

static inline uint64_t mps_dsn_of_seq(const struct mps_conn *c, uint32_t seq)
{
	return c->snd_una_dsn + (uint32_t)(seq - mps_seq_of_dsn(c, c->snd_una_dsn));
}

static inline uint64_t mps_data_end_dsn(const struct mps_conn *c)
{
	return c->snd_una_dsn + c->sndbuf.len;
}

static inline uint32_t mps_rcv_space(const struct mps_conn *c)
{
	return c->rcvbuf.cap - c->rcvbuf.len;
}

/* Largest payload of a data segment, options accounted for. */
static inline uint32_t mps_payload_mss(const struct mps_conn *c)
{
	uint32_t m = c->st->cfg.mss < c->sf.peer_mss ? c->st->cfg.mss : c->sf.peer_mss;
	uint32_t o = (c->sf.ts_ok ? MPS_OPT_TS_LEN : 0) + (c->mptcp ? MPS_OPT_DSS_MAX : 0);

	return m > o + 16 ? m - o : 16;
}

/* The SACK block of a duplicate ACK (mps_tcp.c); false if nothing is queued. */
bool mps_sack_block(const struct mps_conn *c, uint32_t *left, uint32_t *right);

#endif
