/*
 * Sending over several subflows (RFC 8684 §3.3): each subflow's send map
 * (which DSNs its sequence numbers carry, so that a retransmission carries
 * the same mapping), the send buffer kept until no subflow may need to
 * resend a byte, reinjection of a failing subflow's data on the others,
 * and schedulers as small named ops tables. "lowrtt", the default: new
 * data goes to the working subflow with room in its window and the lowest
 * smoothed RTT; backup subflows only when no regular one works. "initial"
 * sends new data on the initial subflow only. Also the connection-level
 * window and the data-level retransmission timer.
 */
#include <errno.h>
#include <string.h>

#include "mps_internal.h"
#include "mps_tcp.h"

#define SMAP_PIECE_MAX (1u << 30) /* a piece never grows beyond this */

#define SMAP(sf, i) ((sf)->smap[((sf)->smap_head + (i)) % MPS_SMAP_MAX])

bool mps_smap_find(const struct mps_subflow *sf, uint32_t seq, uint64_t *dsn, uint32_t *room)
{
	unsigned int i;

	for (i = 0; i < sf->smap_len; i++) {
		const __typeof__(sf->smap[0]) *p = &SMAP(sf, i);

		if (SEQ_GEQ(seq, p->seq) && SEQ_LT(seq, p->seq + p->len)) {
			*dsn = p->dsn + (seq - p->seq);
			*room = p->seq + p->len - seq;
			return true;
		}
	}
	return false;
}

bool mps_smap_dsn_at(const struct mps_subflow *sf, uint32_t seq, uint64_t *dsn)
{
	uint32_t room;

	if (mps_smap_find(sf, seq, dsn, &room))
		return true;
	if (!sf->smap_len)
		return false;
	{
		const __typeof__(sf->smap[0]) *last = &SMAP(sf, sf->smap_len - 1u);

		/* At or past the end of what was mapped (a FIN may follow): the end. */
		if (SEQ_LT(seq, last->seq + last->len))
			return false;
		*dsn = last->dsn + last->len;
	}
	return true;
}

int mps_smap_add(struct mps_subflow *sf, uint32_t seq, uint64_t dsn, uint32_t len)
{
	if (!len)
		return 0;
	if (sf->smap_len) {
		__typeof__(sf->smap[0]) *last = &SMAP(sf, sf->smap_len - 1u);

		if (!last->whole && last->seq + last->len == seq && last->dsn + last->len == dsn &&
		    last->len + len < SMAP_PIECE_MAX) {
			last->len += len;
			return 0;
		}
	}
	if (sf->smap_len == MPS_SMAP_MAX)
		return -ENOSPC;
	SMAP(sf, sf->smap_len).seq = seq;
	SMAP(sf, sf->smap_len).dsn = dsn;
	SMAP(sf, sf->smap_len).len = len;
	SMAP(sf, sf->smap_len).whole = false;
	SMAP(sf, sf->smap_len).csum = 0;
	sf->smap_len++;
	return 0;
}

int mps_smap_add_whole(struct mps_subflow *sf, uint32_t seq, uint64_t dsn, uint32_t len)
{
	if (sf->smap_len == MPS_SMAP_MAX)
		return -ENOSPC;
	/* A fresh piece: the previous one may not take it in, whatever it is. */
	SMAP(sf, sf->smap_len).whole = true;
	SMAP(sf, sf->smap_len).seq = seq;
	SMAP(sf, sf->smap_len).dsn = dsn;
	SMAP(sf, sf->smap_len).len = len;
	SMAP(sf, sf->smap_len).csum = 0;
	sf->smap_len++;
	return 0;
}

bool mps_smap_whole(const struct mps_subflow *sf, uint32_t seq, uint32_t *seq0, uint64_t *dsn0,
		    uint32_t *len0, uint16_t *csum)
{
	unsigned int i;

	for (i = 0; i < sf->smap_len; i++) {
		const __typeof__(sf->smap[0]) *p = &SMAP(sf, i);

		if (SEQ_GEQ(seq, p->seq) && SEQ_LT(seq, p->seq + p->len)) {
			if (!p->whole)
				return false;
			*seq0 = p->seq;
			*dsn0 = p->dsn;
			*len0 = p->len;
			*csum = p->csum;
			return true;
		}
	}
	return false;
}

void mps_smap_set_csum(struct mps_subflow *sf, uint32_t seq0, uint16_t csum)
{
	unsigned int i;

	for (i = sf->smap_len; i-- > 0;)
		if (SMAP(sf, i).seq == seq0 && SMAP(sf, i).whole) {
			SMAP(sf, i).csum = csum;
			return;
		}
}

void mps_smap_trim(struct mps_subflow *sf)
{
	while (sf->smap_len && SEQ_LEQ(SMAP(sf, 0).seq + SMAP(sf, 0).len, sf->snd_una)) {
		sf->smap_head = (uint16_t)((sf->smap_head + 1) % MPS_SMAP_MAX);
		sf->smap_len--;
	}
}

/* Lowest DSN that sf may still have to resend, or UINT64_MAX. */
uint64_t mps_sf_low_dsn(const struct mps_subflow *sf)
{
	const __typeof__(sf->smap[0]) *p;

	if (!sf->smap_len || sf->state == MPS_SF_CLOSED)
		return UINT64_MAX;
	p = &SMAP(sf, 0);
	return SEQ_GT(sf->snd_una, p->seq) ? p->dsn + (sf->snd_una - p->seq) : p->dsn;
}

void mps_snd_trim(struct mps_conn *c)
{
	uint64_t keep = c->snd_una_dsn, x;
	unsigned int i;

	if (c->mptcp) {
		x = mps_sf_low_dsn(&c->sf);
		keep = x < keep ? x : keep;
		for (i = 0; i < c->njoins; i++) {
			x = mps_sf_low_dsn(c->joins[i]);
			keep = x < keep ? x : keep;
		}
	}
	/* Reinjection takes only what is not DATA_ACKed, so the queue needs nothing older. */
	while (c->nrq && c->rq[0].dsn + c->rq[0].len <= c->snd_una_dsn) {
		memmove(&c->rq[0], &c->rq[1], (c->nrq - 1u) * sizeof(c->rq[0]));
		c->nrq--;
	}
	if (keep <= c->snd_base_dsn)
		return;
	mps_ring_drop(&c->sndbuf, (uint32_t)(keep - c->snd_base_dsn));
	c->snd_base_dsn = keep;
}

bool mps_sf_usable(const struct mps_subflow *sf)
{
	if (sf->fin_sent)
		return false;
	if (sf->is_join)
		return sf->state == MPS_SF_ESTABLISHED && !sf->join_pre_est;
	return sf->state == MPS_SF_ESTABLISHED || sf->state == MPS_SF_CLOSE_WAIT;
}

static bool has_room(const struct mps_subflow *sf)
{
	uint32_t flight = sf->snd_max - sf->snd_una, mss = mps_sf_mss(sf->conn, sf);
	/* In SACK recovery, pipe is what the congestion window bounds (RFC 6675). */
	uint32_t used = mps_sack_pipe(sf, mss);

	return (used < mps_send_cwnd(sf, mss) && flight < sf->snd_wnd) ||
	       (sf->snd_wnd == 0 && flight == 0);
}

static struct mps_subflow *lowrtt_pick(struct mps_conn *c)
{
	struct mps_subflow *all[MPS_MAX_SUBFLOWS], *best = NULL;
	unsigned int n = 0, i;
	bool regular = false;

	all[n++] = &c->sf;
	for (i = 0; i < c->njoins; i++)
		all[n++] = c->joins[i];
	/* A subflow in retransmission timeout does not count as working. */
	for (i = 0; i < n; i++)
		if (mps_sf_usable(all[i]) && !mps_sf_backup(all[i]) && all[i]->backoff == 0)
			regular = true;
	for (i = 0; i < n; i++) {
		struct mps_subflow *sf = all[i];

		if (!mps_sf_usable(sf) || sf->backoff || mps_sf_backup(sf) == regular ||
		    !has_room(sf))
			continue;
		if (!best || sf->srtt < best->srtt)
			best = sf;
	}
	return best;
}

/* "initial": new data on the initial subflow only, as a single-path sender, while it lives. */
static struct mps_subflow *initial_pick(struct mps_conn *c)
{
	unsigned int i;

	if (c->sf.state != MPS_SF_CLOSED)
		return mps_sf_usable(&c->sf) ? &c->sf : NULL;
	for (i = 0; i < c->njoins; i++)
		if (mps_sf_usable(c->joins[i]))
			return c->joins[i];
	return NULL;
}

static const struct mps_sched_ops lowrtt = { .name = "lowrtt",
					     .multipath = true,
					     .pick = lowrtt_pick };
static const struct mps_sched_ops initial = { .name = "initial", .pick = initial_pick };

/* The first is the default. */
static const struct mps_sched_ops *const scheds[] = { &lowrtt, &initial };

const struct mps_sched_ops *mps_sched_find(const char *name)
{
	unsigned int i;

	if (!name)
		return scheds[0];
	for (i = 0; i < sizeof(scheds) / sizeof(scheds[0]); i++)
		if (strcmp(scheds[i]->name, name) == 0)
			return scheds[i];
	return NULL;
}

bool mps_sched_take(struct mps_conn *c, struct mps_subflow *sf, bool one, uint64_t *dsn,
		    uint32_t *room, bool *reinject)
{
	uint64_t end = mps_data_end_dsn(c);
	unsigned int i;

	*reinject = false;
	if (c->njoins && c->mptcp && !one && c->sched->pick(c) != sf)
		return false;
	/* Reinjected data first: what DATA_ACKs already cover is dropped from the queue. */
	while (c->nrq && c->rq[0].dsn + c->rq[0].len <= c->snd_una_dsn) {
		memmove(&c->rq[0], &c->rq[1], (c->nrq - 1u) * sizeof(c->rq[0]));
		c->nrq--;
	}
	for (i = 0; i < c->nrq; i++) {
		uint64_t from = c->rq[i].dsn > c->snd_una_dsn ? c->rq[i].dsn : c->snd_una_dsn;

		if (c->rq[i].from == sf->serial || from >= c->rq[i].dsn + c->rq[i].len)
			continue;
		*dsn = from;
		*room = (uint32_t)(c->rq[i].dsn + c->rq[i].len - from);
		*reinject = true;
		return true;
	}
	if (c->snd_nxt_dsn >= end)
		return false;
	*dsn = c->snd_nxt_dsn;
	*room = end - c->snd_nxt_dsn < SMAP_PIECE_MAX ? (uint32_t)(end - c->snd_nxt_dsn)
						      : SMAP_PIECE_MAX;
	return true;
}

void mps_sched_took(struct mps_conn *c, uint64_t dsn, uint32_t len, bool reinject)
{
	unsigned int i;

	if (!reinject) {
		c->snd_nxt_dsn = dsn + len;
		return;
	}
	c->st->counters[MPS_CNT_REINJECTED]++;
	for (i = 0; i < c->nrq; i++) {
		if (dsn < c->rq[i].dsn || dsn >= c->rq[i].dsn + c->rq[i].len)
			continue;
		/* Taken from the front of the piece (what lay before it was DATA_ACKed). */
		len = dsn + len - c->rq[i].dsn < c->rq[i].len ? (uint32_t)(dsn + len - c->rq[i].dsn)
							      : c->rq[i].len;
		c->rq[i].dsn += len;
		c->rq[i].len -= len;
		if (!c->rq[i].len) {
			memmove(&c->rq[i], &c->rq[i + 1], (c->nrq - i - 1u) * sizeof(c->rq[0]));
			c->nrq--;
		}
		return;
	}
}

void mps_reinject(struct mps_conn *c, struct mps_subflow *sf)
{
	unsigned int i;

	/* A subflow gone for good hands its data on whatever the scheduler. */
	if (!c->mptcp || (!c->sched->multipath && sf->state != MPS_SF_CLOSED))
		return;
	for (i = 0; i < sf->smap_len && c->nrq < MPS_REINJECT_MAX; i++) {
		const __typeof__(sf->smap[0]) *p = &SMAP(sf, i);
		uint64_t lo = p->dsn, hi = p->dsn + p->len;

		if (SEQ_GT(sf->snd_una, p->seq))
			lo += sf->snd_una - p->seq;
		if (lo < c->snd_una_dsn)
			lo = c->snd_una_dsn;
		if (lo >= hi)
			continue;
		if (c->nrq && c->rq[c->nrq - 1].from == sf->serial &&
		    c->rq[c->nrq - 1].dsn + c->rq[c->nrq - 1].len == lo) {
			c->rq[c->nrq - 1].len += (uint32_t)(hi - lo);
			continue;
		}
		c->rq[c->nrq].dsn = lo;
		c->rq[c->nrq].len = (uint32_t)(hi - lo);
		c->rq[c->nrq].from = sf->serial;
		c->nrq++;
	}
}

uint64_t mps_conn_wnd_edge(const struct mps_conn *c)
{
	/* Before the first DATA_ACK, the initial subflow's window is the connection's. */
	return c->snd_wnd_edge ? c->snd_wnd_edge : c->snd_una_dsn + c->sf.snd_wnd;
}

#define DTX_CHUNK (64u << 10) /* bytes one data-level timeout resends */

static bool dtx_outstanding(const struct mps_conn *c)
{
	return c->mptcp && !c->reset &&
	       (c->snd_una_dsn < c->snd_nxt_dsn || (c->data_fin_sent && !c->data_fin_acked));
}

/*
 * The largest RTO of the working subflows (a failing one's backed-off RTO
 * would hold everything up), backed off: a subflow's own RTO comes first.
 */
static uint64_t dtx_timeout(const struct mps_conn *c)
{
	const struct mps_subflow *sf;
	uint64_t rto = 0;
	unsigned int i;

	for (i = 0; i <= c->njoins; i++) {
		sf = i ? c->joins[i - 1] : &c->sf;
		if (sf->state != MPS_SF_CLOSED && !sf->backoff && sf->rto > rto)
			rto = sf->rto;
	}
	if (rto < MPS_RTO_MIN_US)
		rto = MPS_RTO_MIN_US;
	/*
	 * Data resent on the only subflow of a connection that can still fall
	 * back costs it that ability for good (mps_fallback.c), and mostly
	 * repeats what the peer holds for a slow reader: there, wait at least
	 * MPS_DTX_SOLO_US. A lone DATA_FIN resend risks nothing.
	 */
	if (c->snd_una_dsn < c->snd_nxt_dsn && mps_infinite_ok(c) && rto < MPS_DTX_SOLO_US)
		rto = MPS_DTX_SOLO_US;
	rto <<= c->dtx_backoff;
	return rto > MPS_RTO_MAX_US ? MPS_RTO_MAX_US : rto;
}

void mps_dtx_progress(struct mps_conn *c)
{
	c->dtx_backoff = 0;
	c->dtx_at = 0; /* re-armed from now by the next mps_dtx_timer() */
}

/* Some subflow still has the oldest byte (or the DATA_FIN) in flight: its RTO deals with it. */
static bool dtx_in_flight(const struct mps_conn *c)
{
	const struct mps_subflow *sf;
	unsigned int i;

	for (i = 0; i <= c->njoins; i++) {
		sf = i ? c->joins[i - 1] : &c->sf;
		if (sf->state == MPS_SF_CLOSED)
			continue;
		if (c->snd_una_dsn < c->snd_nxt_dsn) {
			if (SEQ_LT(sf->snd_una, sf->snd_max) &&
			    mps_sf_low_dsn(sf) <= c->snd_una_dsn)
				return true;
		} else if (!sf->is_join && sf->fin_sent && SEQ_LEQ(sf->snd_una, sf->fin_seq) &&
			   !sf->backoff) {
			return true; /* with the initial subflow's FIN, which a working one resends */
		}
	}
	return false;
}

/*
 * The subflow that sends a lone DATA_FIN: the initial one if it works, else
 * a working join, else whichever can send at all.
 */
static const struct mps_subflow *dfin_carrier(const struct mps_conn *c)
{
	const struct mps_subflow *j = mps_conn_working_join(c);
	unsigned int i;

	if (c->sf.state != MPS_SF_CLOSED && c->sf.state != MPS_SF_SYN_SENT &&
	    c->sf.state != MPS_SF_SYN_RCVD && (!c->sf.backoff || !j))
		return &c->sf;
	if (j)
		return j;
	for (i = 0; i < c->njoins; i++)
		if (c->joins[i]->state != MPS_SF_CLOSED && c->joins[i]->state != MPS_SF_SYN_SENT &&
		    c->joins[i]->state != MPS_SF_SYN_RCVD && !c->joins[i]->join_pre_est)
			return c->joins[i];
	return NULL;
}

/*
 * RFC 8684 §3.3.6: data a subflow acknowledged may still be missing at the
 * connection level (a receiver drops what lies beyond its window), so data
 * and DATA_FIN are retransmitted until DATA_ACKed, as Linux's MPTCP-level
 * retransmission timer does.
 */
/* The subflow with this serial can still send (its lone DATA_FIN would otherwise wait forever). */
static bool serial_live(const struct mps_conn *c, uint32_t serial)
{
	unsigned int i;

	if (c->sf.serial == serial)
		return c->sf.state != MPS_SF_CLOSED;
	for (i = 0; i < c->njoins; i++)
		if (c->joins[i]->serial == serial)
			return c->joins[i]->state != MPS_SF_CLOSED;
	return false;
}

void mps_dtx_timer(struct mps_conn *c, uint64_t now)
{
	const struct mps_subflow *carrier;
	uint64_t len;

	/* Its carrier went away first: the timer sends it again elsewhere. */
	if (c->dfin_resend && !serial_live(c, c->dfin_serial))
		c->dfin_resend = false;
	if (!dtx_outstanding(c)) {
		c->dtx_at = 0;
		c->dtx_backoff = 0;
		return;
	}
	if (!c->dtx_at) {
		c->dtx_at = now + dtx_timeout(c);
		return;
	}
	if (c->dtx_at > now)
		return;
	if (dtx_in_flight(c)) {
		c->dtx_at = now + dtx_timeout(c);
		return;
	}
	if (c->dtx_backoff >= MPS_MAX_BACKOFF) {
		c->fastclose_pending = true;
		mps_conn_reset(c, MPS_RST_TIMEOUT, now);
		return;
	}
	c->st->counters[MPS_CNT_DATA_RTO]++;
	if (c->snd_una_dsn < c->snd_nxt_dsn) {
		/*
		 * The oldest data not DATA_ACKed goes again first, on any subflow:
		 * at most DTX_CHUNK, as Linux's MPTCP-level retransmission resends
		 * its first fragment, since the peer may lack only part of it; a
		 * DATA_ACK that moves re-arms the timer for the next.
		 */
		len = c->snd_nxt_dsn - c->snd_una_dsn;
		if (len > DTX_CHUNK)
			len = DTX_CHUNK;
		if (c->nrq == MPS_REINJECT_MAX)
			c->nrq--;
		memmove(&c->rq[1], &c->rq[0], c->nrq * sizeof(c->rq[0]));
		c->rq[0].dsn = c->snd_una_dsn;
		c->rq[0].len = len < SMAP_PIECE_MAX ? (uint32_t)len : SMAP_PIECE_MAX;
		c->rq[0].from = UINT32_MAX;
		c->nrq++;
	} else {
		carrier = dfin_carrier(c);
		if (carrier) {
			c->dfin_resend = true;
			c->dfin_serial = carrier->serial;
		}
	}
	c->dtx_backoff++;
	c->dtx_at = now + dtx_timeout(c);
}

struct mps_subflow *mps_conn_working_join(const struct mps_conn *c)
{
	unsigned int i;

	for (i = 0; i < c->njoins; i++)
		if (mps_sf_usable(c->joins[i]) && !c->joins[i]->backoff)
			return c->joins[i];
	return NULL;
}

static bool data_level_done(const struct mps_conn *c)
{
	return c->data_fin_sent && c->data_fin_acked && c->data_fin_rcvd;
}

bool mps_initial_down(struct mps_conn *c, int reason, bool rst, uint64_t now)
{
	struct mps_subflow *sf = &c->sf;

	if (!c->mptcp || c->reset || sf->state == MPS_SF_CLOSED ||
	    (!mps_conn_working_join(c) && !data_level_done(c)))
		return false;
	if (rst)
		mps_sf_rst(c, sf, MPS_TCPRST_UNSPEC);
	sf->state = MPS_SF_CLOSED;
	sf->rto_at = MPS_TIME_NEVER;
	sf->tw_at = MPS_TIME_NEVER;
	sf->delack_at = MPS_TIME_NEVER;
	sf->ack_now = false;
	sf->rexmit_one = false;
	/* What it sent and was not DATA_ACKed goes on the joins (RFC 8684 §3.3.6). */
	mps_reinject(c, sf);
	mps_snd_trim(c);
	mps_event_sf(c->st, MPS_EV_SUBFLOW_DOWN, c, 0, reason, now);
	/* A client's path manager may open the pair again, as a join. */
	mps_pm_join_down(c, sf, reason, now);
	return true;
}

void mps_conn_ack_now(struct mps_conn *c)
{
	unsigned int i;

	if (c->sf.state != MPS_SF_CLOSED) {
		c->sf.ack_now = true;
		return;
	}
	for (i = 0; i < c->njoins; i++)
		if (c->joins[i]->state != MPS_SF_CLOSED && !c->joins[i]->join_pre_est &&
		    c->joins[i]->state != MPS_SF_SYN_SENT &&
		    c->joins[i]->state != MPS_SF_SYN_RCVD) {
			c->joins[i]->ack_now = true;
			return;
		}
}

/*
 * A subflow whose unacknowledged bytes the peer already has through the
 * others keeps them in the send buffer, as it may have to send them again.
 * One in timeout that holds back more than half the buffer that way is
 * stale once it blocks the sender (the buffer is full: a path that died
 * under a bulk transfer), or once its retransmission went unanswered too
 * (a second timeout). One timeout alone, with room left, is often a lost
 * tail of a small window, and waiting costs nothing.
 */
bool mps_sf_stale(const struct mps_conn *c, const struct mps_subflow *sf)
{
	uint64_t low = mps_sf_low_dsn(sf);
	bool full = c->sndbuf.cap - c->sndbuf.len < mps_sf_mss(c, sf);

	return c->mptcp && sf->state != MPS_SF_CLOSED &&
	       (sf->backoff >= 2 || (sf->backoff && full)) && low < c->snd_una_dsn &&
	       c->snd_una_dsn - low > c->sndbuf.cap / 2;
}

/* An initial subflow with three timeouts in a row and no answer is failing. */
#define INITIAL_FAILING_BACKOFF 3

void mps_sched_close_check(struct mps_conn *c, uint64_t now)
{
	const struct mps_subflow *j;

	if (!c->mptcp || c->reset)
		return;
	/* A stale initial subflow goes while a join works, as a join does. */
	if (mps_sf_stale(c, &c->sf))
		mps_initial_down(c, MPS_SF_DOWN_STALE, true, now);
	/* Our DATA_FIN goes on a join when the initial subflow is gone or failing. */
	if (c->shut_wr && !c->data_fin_sent && c->snd_nxt_dsn == mps_data_end_dsn(c) && !c->nrq &&
	    (c->sf.state == MPS_SF_CLOSED || c->sf.backoff)) {
		j = mps_conn_working_join(c);
		if (j) {
			c->data_fin_sent = true;
			if (c->state == MPS_CONN_ESTABLISHED)
				c->state = MPS_CONN_CLOSING;
			c->dfin_resend = true;
			c->dfin_serial = j->serial;
		}
	}
	if (!data_level_done(c))
		return;
	/* Both directions are over at the data level: a failing initial subflow is not awaited. */
	if (c->sf.state != MPS_SF_CLOSED && c->sf.backoff >= INITIAL_FAILING_BACKOFF)
		mps_initial_down(c, MPS_SF_DOWN_TIMEOUT, true, now);
	if (c->sf.state == MPS_SF_CLOSED && c->state != MPS_CONN_CLOSED && !mps_join_closing(c)) {
		c->state = MPS_CONN_CLOSED;
		mps_event(c->st, MPS_EV_CONN_CLOSED, c, 0, now);
	}
}
