/*
 * Leaving MPTCP in an established connection (RFC 8684 §3.7, as Linux does
 * it): DSS checksum failures answered with MP_FAIL, the infinite mapping
 * in both directions, MPTCP options that vanish, data that arrives with no
 * mapping, and the fallback itself. The receive path (mps_tcp.c) calls in
 * here; the options that go out are built in mps_tcp_out.c.
 */
#include "mps_internal.h"
#include "mps_tcp.h"
#include "prot/mptcp.h"

void mps_fall_back(struct mps_conn *c, int reason, const char *why, uint64_t now)
{
	c->mptcp = false;
	c->fallback = true;
	c->fallback_reason = why;
	c->fallback_why = reason;
	c->rx_unverified = 0; /* from here the stream is TCP's: nothing left to verify */
	/*
	 * The subflow's stream is now the data stream: TCP's retransmissions
	 * are the only ones. A data-level resend still queued would put old
	 * bytes where the peer expects the next ones.
	 */
	c->nrq = 0;
	c->dfin_resend = false;
	mps_event(c->st, MPS_EV_FALLBACK, c, reason, now);
}

/*
 * May this connection fall back to TCP in the middle (RFC 8684 §3.7)? As
 * Linux's allow_infinite_fallback: one subflow that never had a join beside
 * it, no data held ahead at the connection level, and no data sent twice at
 * the data level. A Linux receiver that falls back maps each later byte to
 * the initial DSN plus its subflow sequence number, so a resend anywhere
 * before puts everything after it at the wrong place in the stream.
 */
bool mps_infinite_ok(const struct mps_conn *c)
{
	return c->next_serial <= 1 && mps_join_count(c) == 0 && !c->dooo && !c->data_resent;
}

/*
 * A DSS checksum failed (presence false), or its presence contradicts the
 * negotiation (true). A wrong checksum on the only subflow is answered with
 * MP_FAIL naming the failed mapping's DSN (RFC 8684 §3.7). The mapping's
 * data is taken as it came: the infinite mapping the peer answers with
 * covers, retroactively, everything from that DSN. Until it arrives we stay
 * MPTCP and keep sending DATA_ACKs, as Linux does: a Linux sender sends the
 * infinite mapping only on new data, which needs them. Later failures in
 * that time are taken the same way. Otherwise the connection is reset
 * (MP_TCPRST 6, or 1 for the presence). A failure on a join while other
 * subflows work resets only that join (mps_join.c), and one in a mapping
 * the initial subflow held only the initial subflow (below); this is any
 * other failure. Returns true when the connection goes on.
 */
bool mps_csum_failure(struct mps_conn *c, bool presence, uint64_t dsn, uint64_t now)
{
	c->st->counters[MPS_CNT_IN_DSS_CSUM]++;
	if (!presence && (c->mp_fail_wait || mps_infinite_ok(c))) {
		if (!c->mp_fail_wait) {
			c->mp_fail_tx = true;
			c->mp_fail_wait = true;
			c->mp_fail_dsn = dsn;
			c->mp_fail_at = now;
			mps_event(c->st, MPS_EV_MP_FAIL, c, MPS_MP_FAIL_SENT, now);
		}
		c->rx_unverified = 0;
		c->sf.ack_now = true;
		return true;
	}
	c->rst_tcprst = presence ? MPS_TCPRST_MPTCP_ERR : MPS_TCPRST_MIDDLEBOX;
	c->mp_fail_dsn = dsn; /* the RST carries MP_FAIL too (RFC 8684 §3.7) */
	c->fastclose_pending = true;
	mps_conn_reset(c, MPS_RST_CHECKSUM, now);
	return false;
}

/*
 * A mapping the initial subflow held (joins may carry data, so it was kept
 * until it verified) failed its checksum while a join works: nothing of it
 * was delivered or DATA_ACKed, so only the initial subflow goes, as a join
 * would (RFC 8684 §3.7): RST with MP_TCPRST 6 and MP_FAIL, its data
 * reinjected by the peer on the joins. Otherwise as mps_csum_failure().
 */
bool mps_csum_failure_held(struct mps_conn *c, uint64_t dsn, uint64_t now)
{
	struct mps_stack *st = c->st;
	unsigned int before = st->nrsts;

	if (!c->mptcp || c->reset || c->sf.state == MPS_SF_CLOSED || !mps_conn_working_join(c))
		return mps_csum_failure(c, false, dsn, now);
	st->counters[MPS_CNT_IN_DSS_CSUM]++;
	mps_sf_rst(c, &c->sf, MPS_TCPRST_MIDDLEBOX);
	if (st->nrsts > before) {
		st->rsts[st->nrsts - 1].mp_fail = true;
		st->rsts[st->nrsts - 1].fail_dsn = dsn;
		st->counters[MPS_CNT_OUT_MP_FAIL]++;
	}
	mps_event_sf(st, MPS_EV_MP_FAIL, c, 0, MPS_MP_FAIL_SF_RESET, now);
	mps_initial_down(c, MPS_SF_DOWN_CHECKSUM, false, now);
	return false;
}

/*
 * New in-order data that no mapping covers, on a segment that brought none
 * (its DSS was malformed and ignored): the DSS was corrupted on the way. As
 * Linux (DssCorruptionFallback/Reset): fall back to TCP where RFC 8684 §3.7
 * allows it, otherwise reset (MP_TCPRST 1). A mapping that was refused as
 * conflicting is left to the sender's retransmission instead.
 */
void mps_mapping_missing(struct mps_conn *c, uint64_t now)
{
	c->st->counters[MPS_CNT_IN_BAD_MAPPING]++;
	if (mps_infinite_ok(c) && !(c->csum && c->csum_seen)) {
		mps_fall_back(c, MPS_FALLBACK_BAD_MAPPING, "data without a DSS mapping", now);
		return;
	}
	c->rst_tcprst = MPS_TCPRST_MPTCP_ERR;
	c->fastclose_pending = true;
	mps_conn_reset(c, MPS_RST_BAD_MAPPING, now);
}

/*
 * MP_FAIL from the peer (RFC 8684 §3.7). If ours is pending this is the
 * answer. Otherwise the peer's checksum failed: with one subflow our next
 * new data segment carries the infinite mapping, and we fall back as it
 * goes; a pure ACK echoes the MP_FAIL (as Linux, so the peer stops
 * repeating it). After a join Linux ignores MP_FAIL, and so do we: the peer
 * resets instead.
 */
static void mp_fail_input(struct mps_conn *c, uint64_t dsn, uint64_t now)
{
	c->st->counters[MPS_CNT_IN_MP_FAIL]++;
	if (c->mp_fail_tx || c->mp_fail_wait) {
		c->mp_fail_tx = false; /* the answer to ours */
		return;
	}
	/*
	 * Answered once already, as Linux: echoing every copy could make two
	 * ends echo each other for ever. If our echo is lost, the infinite
	 * mapping on our next new data answers, or the peer gives up.
	 */
	if (!c->mptcp || c->inf_map_pending || c->inf_map_sent)
		return;
	if (!mps_infinite_ok(c)) {
		mps_event(c->st, MPS_EV_MP_FAIL, c, MPS_MP_FAIL_IGNORED, now);
		return;
	}
	mps_event(c->st, MPS_EV_MP_FAIL, c, MPS_MP_FAIL_RCVD, now);
	c->mp_fail_dsn = dsn;
	c->mp_fail_echo = true;
	c->inf_map_pending = true;
	c->sf.ack_now = true;
}

/*
 * MPTCP options gone from an established connection: a middlebox began to
 * strip them (RFC 8684 §3.7). With one subflow the stream goes on as TCP,
 * the infinite mapping implied; Linux does the same unless a join happened
 * or, with checksums, one has verified, and then resets the subflow (here,
 * being the initial one, the connection).
 */
static void options_lost(struct mps_conn *c, uint64_t now)
{
	c->st->counters[MPS_CNT_IN_NO_DSS]++;
	if (c->mp_fail_wait) {
		/* The peer fell back on our MP_FAIL and its infinite mapping was lost. */
		c->mp_fail_wait = false;
		mps_fall_back(c, MPS_FALLBACK_MP_FAIL, "DSS checksum failed: MP_FAIL sent", now);
		return;
	}
	if (mps_infinite_ok(c) && !(c->csum && c->csum_seen)) {
		mps_fall_back(c, MPS_FALLBACK_OPTS_LOST, "MPTCP options lost mid-connection", now);
		return;
	}
	c->rst_tcprst = MPS_TCPRST_MPTCP_ERR;
	c->fastclose_pending = true;
	mps_conn_reset(c, MPS_RST_OPTS_LOST, now);
}

/*
 * What can end MPTCP on an established connection, looked at before the
 * ACK is processed so that an ACK that ends it is taken as TCP: MP_FAIL,
 * the infinite mapping, and a segment without any MPTCP option. Our peer
 * and Linux put a DSS on every segment, so data, or an ACK of new data,
 * without one means a middlebox removed it.
 */
void mps_fallback_input(struct mps_conn *c, const struct mps_seg *s, const struct mps_tcpopts *t,
			const struct mps_opt *o, unsigned int n, uint64_t now)
{
	const struct mps_opt *fail = mps_find_opt(o, n, MPS_MPTCP_SUB_FAIL);
	const struct mps_opt *dss = mps_find_opt(o, n, MPS_MPTCP_SUB_DSS);
	const struct mps_subflow *sf = &c->sf;

	if (fail)
		mp_fail_input(c, fail->fail_dsn, now);
	if (dss && (dss->dss.flags & MPS_DSS_FLAG_M) && dss->dss.data_len == 0) {
		/*
		 * Counted on every segment (a Linux sender repeats it on each piece
		 * of a large send), reported once: the first ends MPTCP.
		 */
		c->st->counters[MPS_CNT_IN_INFINITE_MAP]++;
		if (c->mptcp)
			mps_event(c->st, MPS_EV_MP_FAIL, c, MPS_MP_FAIL_INFINITE_RCVD, now);
		c->mp_fail_tx = false; /* the answer to our MP_FAIL */
		if (c->mptcp && c->mp_fail_wait)
			mps_fall_back(c, MPS_FALLBACK_MP_FAIL, "DSS checksum failed: MP_FAIL sent",
				      now);
		else if (c->mptcp && mps_infinite_ok(c))
			mps_fall_back(c, MPS_FALLBACK_INFINITE_MAP, "infinite mapping received",
				      now);
		c->mp_fail_wait = false;
	}
	/*
	 * A peer that keeps sending but answers our MP_FAIL with neither an
	 * echo nor the infinite mapping does not follow RFC 8684 §3.7 (or
	 * never sees our MP_FAIL): reset, as Linux does after the same wait.
	 */
	if (c->mp_fail_tx && now - c->mp_fail_at > MPS_MPFAIL_WAIT_US) {
		c->fastclose_pending = true;
		mps_conn_reset(c, MPS_RST_MP_FAIL, now);
		return;
	}
	if (c->mptcp && t->nmptcp == 0 &&
	    (sf->state == MPS_SF_ESTABLISHED || sf->state == MPS_SF_CLOSE_WAIT ||
	     sf->state == MPS_SF_FIN_WAIT_1 || sf->state == MPS_SF_FIN_WAIT_2) &&
	    (s->payload_len || SEQ_GT(s->ack, sf->snd_una)))
		options_lost(c, now);
}
