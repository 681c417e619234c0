/*
 * One TCP subflow with MPTCP v1 on top (RFC 9293, RFC 6298, RFC 5681/6582,
 * RFC 7323, RFC 8684 §3.1 and §3.3): handshake with MP_CAPABLE, data with
 * DSS mappings and DATA_ACKs, DATA_FIN, retransmission and close. Fallback
 * to plain TCP when the peer does not complete MP_CAPABLE. This file is the
 * input side and the timers; mps_tcp_out.c builds and sends segments.
 */
#include <errno.h>
#include <string.h>

#include "mps_crypto.h"
#include "mps_internal.h"
#include "mps_tcp.h"
#include "prot/ip4.h"
#include "prot/ip6.h"
#include "prot/tcp.h"
#include "prot/wire.h"

static const char *const sf_state_names[] = {
	[MPS_SF_CLOSED] = "CLOSED",	    [MPS_SF_SYN_SENT] = "SYN-SENT",
	[MPS_SF_SYN_RCVD] = "SYN-RECEIVED", [MPS_SF_ESTABLISHED] = "ESTABLISHED",
	[MPS_SF_FIN_WAIT_1] = "FIN-WAIT-1", [MPS_SF_FIN_WAIT_2] = "FIN-WAIT-2",
	[MPS_SF_CLOSE_WAIT] = "CLOSE-WAIT", [MPS_SF_CLOSING] = "CLOSING",
	[MPS_SF_LAST_ACK] = "LAST-ACK",	    [MPS_SF_TIME_WAIT] = "TIME-WAIT",
};

const char *mps_sf_state_name(enum mps_sf_state s)
{
	if ((unsigned int)s >= sizeof(sf_state_names) / sizeof(sf_state_names[0]))
		return "?";
	return sf_state_names[s];
}

/* Expand a 32-bit value from the wire to the 64-bit value nearest ref. */
uint64_t mps_expand32(uint64_t ref, uint64_t v32)
{
	uint64_t v = (ref & ~0xffffffffULL) | (v32 & 0xffffffffULL);

	if (v + 0x80000000ULL < ref)
		v += 1ULL << 32;
	else if (v > ref + 0x80000000ULL && v >= (1ULL << 32))
		v -= 1ULL << 32;
	return v;
}

static void new_key(struct mps_conn *c)
{
	struct mps_conn *o;
	bool clash;

	/* Keys must be nonzero and their tokens unique within the stack. */
	do {
		c->lkey = mps_rand64(c->st);
		mps_key_token_idsn(c->lkey, &c->ltoken, &c->lidsn);
		clash = c->lkey == 0;
		for (o = c->st->conns; o && !clash; o = o->next)
			clash = o != c && o->mptcp && o->ltoken == c->ltoken;
	} while (clash);
	c->snd_una_dsn = c->snd_nxt_dsn = c->snd_base_dsn = c->lidsn + 1;
}

void mps_tcp_connect(struct mps_conn *c, uint64_t now)
{
	struct mps_subflow *sf = &c->sf;

	(void)now;
	sf->iss = (uint32_t)mps_rand64(c->st);
	sf->snd_una = sf->snd_nxt = sf->snd_max = sf->iss;
	sf->state = MPS_SF_SYN_SENT;
	sf->rto = MPS_RTO_INIT_US;
	sf->rcv_wscale = mps_wscale_for(c->st->cfg.rcvbuf_max);
	c->lidsn = 0;
	c->snd_una_dsn = c->snd_nxt_dsn = c->snd_base_dsn = 1;
	if (!c->st->cfg.mptcp_disabled) {
		c->mptcp = true;
		c->csum = c->st->cfg.checksum;
		new_key(c);
	}
}

static void established(struct mps_conn *c, uint64_t now)
{
	struct mps_subflow *sf = &c->sf;
	uint32_t mss = mps_payload_mss(c);

	sf->state = MPS_SF_ESTABLISHED;
	/* RFC 5681 §3.1: one segment if the SYN or SYN/ACK had to be resent. */
	sf->cwnd = sf->backoff ? mss : MPS_INIT_CWND_SEGS * mss;
	sf->ssthresh = UINT32_MAX;
	sf->backoff = 0;
	c->state = MPS_CONN_ESTABLISHED;
	mps_event(c->st, MPS_EV_CONN_ESTABLISHED, c, 0, now);
	mps_event(c->st, MPS_EV_SUBFLOW_UP, c, 0, now);
}

void mps_rtt_sample(struct mps_subflow *sf, uint32_t r)
{
	uint32_t d;

	if (r == 0)
		r = 1;
	if (sf->srtt == 0) {
		sf->srtt = r;
		sf->rttvar = r / 2;
	} else {
		d = sf->srtt > r ? sf->srtt - r : r - sf->srtt;
		sf->rttvar = (3 * sf->rttvar + d) / 4;
		sf->srtt = (7 * sf->srtt + r) / 8;
	}
	sf->rto = sf->srtt + (4 * sf->rttvar > 1000 ? 4 * sf->rttvar : 1000);
	if (sf->rto < MPS_RTO_MIN_US)
		sf->rto = MPS_RTO_MIN_US;
	if (sf->rto > MPS_RTO_MAX_US)
		sf->rto = MPS_RTO_MAX_US;
}

/* Peer options of a SYN or SYN/ACK. */
static void syn_options(struct mps_conn *c, const struct mps_tcpopts *t, bool synack, uint64_t now)
{
	struct mps_subflow *sf = &c->sf;

	sf->peer_mss = (t->present & MPS_TCPOPTS_MSS) && t->mss >= 64 ? t->mss : MPS_DEFAULT_MSS;
	if (t->present & MPS_TCPOPTS_WS) {
		sf->snd_wscale = t->ws > MPS_TCP_WS_MAX ? MPS_TCP_WS_MAX : t->ws;
		if (!synack)
			sf->rcv_wscale = mps_wscale_for(c->st->cfg.rcvbuf_max);
	} else {
		sf->snd_wscale = 0;
		sf->rcv_wscale = 0;
	}
	sf->ts_ok = t->present & MPS_TCPOPTS_TS;
	sf->sack_ok = t->present & MPS_TCPOPTS_SACK_PERM;
	sf->ts_recent = t->ts_val;
	sf->ts_recent_at = now;
}

unsigned int mps_parse_mptcp(struct mps_stack *st, const struct mps_seg *s,
			     const struct mps_tcpopts *t, struct mps_opt *out, unsigned int max)
{
	unsigned int i, n = 0;
	unsigned int segf = s->flags | (s->payload_len ? MPS_SEG_DATA : 0);
	enum mps_opt_err err;

	for (i = 0; i < t->nmptcp && n < max; i++) {
		if (mps_opt_parse(s->opts + t->mptcp[i].off, t->mptcp[i].len, segf, &out[n],
				  &err) == 0) {
			n++;
			continue;
		}
		st->counters[MPS_CNT_IN_BAD_MPTCP]++;
		st->opt_errors[err]++;
	}
	return n;
}

void mps_tcp_listen_input(struct mps_stack *st, const struct mps_seg *s,
			  const struct mps_tcpopts *t, const struct mps_addr *local,
			  const struct mps_addr *remote, uint64_t now)
{
	struct mps_opt opts[MPS_TCPOPTS_MPTCP_MAX];
	const struct mps_opt *mpc;
	struct mps_subflow *sf;
	struct mps_conn *c;
	unsigned int n;
	int err;

	(void)now;
	n = mps_parse_mptcp(st, s, t, opts, MPS_TCPOPTS_MPTCP_MAX);
	c = mps_conn_new(st, local, remote, false, &err);
	if (!c) {
		/* The client retries its SYN; nothing else to do under pressure. */
		st->counters[MPS_CNT_IN_ACCEPT_FULL]++;
		return;
	}
	sf = &c->sf;
	sf->iss = (uint32_t)mps_rand64(st);
	sf->snd_una = sf->snd_nxt = sf->snd_max = sf->iss;
	sf->irs = s->seq;
	sf->rcv_nxt = s->seq + 1;
	sf->state = MPS_SF_SYN_RCVD;
	sf->rto = MPS_RTO_INIT_US;
	sf->snd_wnd = s->win;
	sf->snd_wl1 = s->seq;
	sf->snd_wl2 = s->ack;
	syn_options(c, t, false, now);
	c->lidsn = 0;
	c->snd_una_dsn = c->snd_nxt_dsn = c->snd_base_dsn = 1;
	mpc = mps_find_opt(opts, n, MPS_MPTCP_SUB_CAPABLE);
	if (mpc && !st->cfg.mptcp_disabled) {
		c->mptcp = true;
		c->csum = (mpc->mpc.flags & MPS_MPC_FLAG_A) || st->cfg.checksum;
		new_key(c);
	}
}

/* Bytes of our data (not SYN or FIN) that ack newly covers on the subflow. */
static void fallback_data_ack(struct mps_conn *c, uint32_t ack)
{
	uint64_t dsn;

	/* Without MPTCP only the initial subflow sends, so its send map is the stream. */
	if (!mps_smap_dsn_at(&c->sf, ack, &dsn) || dsn <= c->snd_una_dsn)
		goto fin;
	if (dsn > mps_data_end_dsn(c))
		dsn = mps_data_end_dsn(c);
	c->bytes_acked += dsn - c->snd_una_dsn;
	c->snd_una_dsn = dsn;
	mps_snd_trim(c);
fin:
	if (c->data_fin_sent && c->sndbuf.len == 0 && c->sf.fin_sent && SEQ_GT(ack, c->sf.fin_seq))
		c->data_fin_acked = true;
}

void mps_data_ack(struct mps_conn *c, const struct mps_opt_dss *d, uint32_t wnd)
{
	uint64_t top = mps_data_end_dsn(c) + (c->data_fin_sent ? 1 : 0), ack;
	uint64_t n;

	ack = (d->flags & MPS_DSS_FLAG_a) ? d->data_ack : mps_expand32(c->snd_una_dsn, d->data_ack);
	/* Linux ignores a DATA_ACK above what it sent; so do we (spec §3 item 4). */
	if (ack > top || ack < c->snd_una_dsn - (1ULL << 31)) {
		c->st->counters[MPS_CNT_IN_BAD_ACK]++;
		return;
	}
	c->fully_established = true;
	/* The window is relative to the DATA_ACK of the same segment; its edge never moves back. */
	if (ack + wnd > c->snd_wnd_edge)
		c->snd_wnd_edge = ack + wnd;
	if (ack <= c->snd_una_dsn)
		return;
	n = ack - c->snd_una_dsn;
	if (n > mps_data_end_dsn(c) - c->snd_una_dsn)
		n = mps_data_end_dsn(c) - c->snd_una_dsn;
	c->snd_una_dsn += n;
	c->bytes_acked += n;
	mps_snd_trim(c);
	if (c->data_fin_sent && ack == top)
		c->data_fin_acked = true;
	mps_dtx_progress(c);
}

/* Connection-level DATA_FIN at dsn: consumed once everything before it is. */
void mps_data_fin_check(struct mps_conn *c, bool have, uint64_t dsn)
{
	if (have && !c->data_fin_rcvd && dsn > c->rcv_nxt_dsn) {
		/* Data before it is still missing; act on it once that has arrived. */
		c->rx_fin_pending = true;
		c->rx_fin_dsn = dsn;
		return;
	}
	if (!have || c->data_fin_rcvd || dsn != c->rcv_nxt_dsn)
		return;
	c->rx_fin_pending = false;
	c->data_fin_rcvd = true;
	c->rcv_nxt_dsn++;
	mps_conn_ack_now(c);
	if (c->state == MPS_CONN_ESTABLISHED)
		c->state = MPS_CONN_CLOSING;
}

/* The mapping carried by this segment, 64-bit, if any. */
static void segment_mapping(struct mps_conn *c, const struct mps_opt *o, unsigned int n,
			    struct mps_rx_map *m)
{
	const struct mps_opt *dss = mps_find_opt(o, n, MPS_MPTCP_SUB_DSS);
	const struct mps_opt *mpc = mps_find_opt(o, n, MPS_MPTCP_SUB_CAPABLE);

	memset(m, 0, sizeof(*m));
	if (dss && (dss->dss.flags & MPS_DSS_FLAG_M)) {
		m->valid = true;
		m->dsn = (dss->dss.flags & MPS_DSS_FLAG_m)
				 ? dss->dss.dsn
				 : mps_expand32(c->rcv_nxt_dsn, dss->dss.dsn);
		m->ssn = dss->dss.ssn;
		m->len = dss->dss.data_len;
		m->fin = dss->dss.flags & MPS_DSS_FLAG_F;
		m->has_csum = dss->dss.has_csum;
		m->csum = dss->dss.csum;
	} else if (mpc && mpc->mpc.form == MPS_MPC_DATA) {
		/* RFC 8684 §3.1: the first data's implied mapping, DSN = IDSN + 1, SSN 1. */
		m->valid = true;
		m->dsn = c->ridsn + 1;
		m->ssn = 1;
		m->len = mpc->mpc.data_len;
		m->has_csum = mpc->mpc.has_csum;
		m->csum = mpc->mpc.csum;
	}
}

/*
 * ADD_ADDR from the peer (RFC 8684 §3.4.1): keep the address if its HMAC
 * (keyed peer key || our key) verifies, and echo it once per announcement.
 */
void mps_add_addr_input(struct mps_conn *c, const struct mps_opt_add_addr *a, uint64_t now)
{
	size_t alen = a->family == 4 ? 4 : 16;
	uint64_t h = 0;
	unsigned int i;

	if (a->echo) {
		mps_pm_echo_input(c, a, now);
		return;
	}
	if (mps_add_addr_hmac(c->rkey, c->lkey, a->addr_id, a->addr, alen,
			      a->has_port ? a->port : 0, &h) != 0 ||
	    h != a->hmac) {
		c->st->counters[MPS_CNT_IN_ADD_ADDR_HMAC]++;
		return;
	}
	/* Only a server that has our key can compute this HMAC: it is fully established. */
	c->fully_established = true;
	for (i = 0; i < c->nraddrs && c->raddrs[i].id != a->addr_id; i++)
		;
	if (i == c->nraddrs && i == MPS_MAX_REMOTE_ADDRS) {
		c->st->counters[MPS_CNT_IN_ADD_ADDR_FULL]++;
	} else {
		if (i == c->nraddrs)
			c->nraddrs++;
		c->raddrs[i].id = a->addr_id;
		memset(&c->raddrs[i].addr, 0, sizeof(c->raddrs[i].addr));
		c->raddrs[i].addr.family = a->family;
		memcpy(c->raddrs[i].addr.addr, a->addr, alen);
		c->raddrs[i].addr.port = a->has_port ? a->port : 0;
		mps_event(c->st, MPS_EV_ADD_ADDR_IN, c, a->addr_id, now);
		c->pm_new_addr = true;
	}
	/* A retransmitted announcement is echoed again: our echo may have been lost. */
	c->echo = *a;
	c->echo.echo = true;
	c->echo.hmac = 0;
	c->echo_pending = true;
	mps_conn_ack_now(c); /* on a join if the initial subflow is gone */
}

/*
 * REMOVE_ADDR (RFC 8684 §3.4.2): forget the addresses the peer withdraws.
 * Unknown IDs are ignored. Closing subflows on a withdrawn address comes
 * with joins; the initial subflow is never closed this way.
 */
void mps_rm_addr_input(struct mps_conn *c, const struct mps_opt_rm_addr *r, uint64_t now)
{
	unsigned int i, k;

	for (k = 0; k < r->n; k++)
		for (i = 0; i < c->nraddrs; i++) {
			if (c->raddrs[i].id != r->ids[k])
				continue;
			c->raddrs[i] = c->raddrs[c->nraddrs - 1];
			c->nraddrs--;
			mps_event(c->st, MPS_EV_REMOVE_ADDR_IN, c, r->ids[k], now);
			break;
		}
	/* Subflows to a withdrawn address go, whether or not it was announced (the initial stays). */
	for (k = 0; k < r->n; k++)
		if (c->pm)
			c->pm->addr_removed(c, r->ids[k], now);
}

static int handle_mapping(struct mps_conn *c, const struct mps_rx_map *m, bool in_order,
			  uint64_t now)
{
	struct mps_dss_csum k;
	uint16_t data, done = 0;
	uint32_t rcv_ssn;

	if (!m->valid)
		return 0;
	if (m->has_csum != c->csum) {
		mps_csum_failure(c, true, m->dsn, now);
		return -EPROTO;
	}
	if (m->fin && m->len == 1 && m->ssn == 0) {
		/* A DATA_FIN alone (Linux's form): no subflow bytes, the checksum covers the header. */
		if (c->csum) {
			mps_dss_csum_init(&k, m->dsn, 0, 1);
			if (mps_dss_csum_final(&k) != m->csum &&
			    !mps_csum_failure(c, false, m->dsn, now))
				return -EPROTO;
		}
		mps_data_fin_check(c, true, m->dsn);
		return 0;
	}
	if (m->len == 0)
		return -EOPNOTSUPP; /* infinite mapping: needs the MP_FAIL path, not here yet */
	/* A segment beyond rcv_nxt is queued with its mapping, installed when it is reached. */
	if (!in_order)
		return 0;
	if (c->rx_map_valid && c->rx_map_dsn == m->dsn && c->rx_map_ssn == m->ssn &&
	    c->rx_map_len == m->len)
		return 0; /* the same mapping again, as Linux sends it on every segment */
	data = (uint16_t)(m->len - (m->fin ? 1 : 0));
	rcv_ssn = c->sf.rcv_nxt - c->sf.irs;
	/*
	 * A mapping that starts before what we hold (a sender that cut its
	 * retransmission differently) is fine without checksums when it puts
	 * the same bytes at the same DSNs; with checksums the part we already
	 * took could not be verified, so it is refused.
	 */
	if (SEQ_LT(m->ssn, rcv_ssn)) {
		if (SEQ_GEQ(rcv_ssn, m->ssn + data))
			return 0; /* entirely old */
		if (c->csum ||
		    (c->rx_map_valid && m->dsn - m->ssn != c->rx_map_dsn - c->rx_map_ssn))
			return -EEXIST;
		done = (uint16_t)(rcv_ssn - m->ssn);
	} else if (c->rx_map_valid && c->rx_map_done < c->rx_map_data) {
		return -EEXIST; /* conflicts with the unfinished one */
	}
	if (c->csum && data > c->rcvbuf.cap)
		return -EMSGSIZE; /* could never be verified within our buffer */
	c->rx_map_dsn = m->dsn;
	c->rx_map_ssn = m->ssn;
	c->rx_map_len = m->len;
	c->rx_map_data = data;
	c->rx_map_done = done;
	c->rx_map_csum = m->csum;
	c->rx_map_valid = true;
	if (c->csum)
		mps_dss_csum_init(&c->rx_csum, m->dsn, m->ssn, m->len);
	return 0;
}

static void dooo_drain(struct mps_conn *c);

/*
 * Bytes of the current mapping taken on the subflow; deliver says whether
 * they are new at the connection level. Returns false on a checksum failure.
 */
static bool map_consume(struct mps_conn *c, const uint8_t *p, uint32_t n, bool deliver,
			uint64_t now)
{
	if (deliver)
		mps_ring_write(&c->rcvbuf, p, n);
	c->rx_map_done += (uint16_t)n;
	if (!c->csum)
		return true;
	/* Delivered only once the whole mapping verifies (RFC 8684 §3.3.1). */
	mps_dss_csum_add(&c->rx_csum, p, n);
	if (deliver)
		c->rx_unverified += n;
	if (c->rx_map_done == c->rx_map_data) {
		if (mps_dss_csum_final(&c->rx_csum) != c->rx_map_csum)
			return mps_csum_failure(c, false, c->rx_map_dsn, now);
		c->rx_unverified = 0;
		c->csum_seen = true;
		/* Held data from a join that this mapping reached is delivered now. */
		if (c->dooo)
			dooo_drain(c);
	}
	return true;
}

/*
 * With checksums, a mapping of the initial subflow that starts ahead of
 * rcv_nxt_dsn (joins carry the data before it) is held on the subflow until
 * all of it arrived and verified, then handed to the connection, as a
 * join's mappings are (mps_join.c). Returns false if the bytes are refused.
 */
static bool take_held(struct mps_conn *c, const uint8_t *p, uint32_t n, uint64_t dsn, uint64_t now)
{
	struct mps_subflow *sf = &c->sf;
	int rc;

	mps_cmap_flush(c, sf);
	if (!sf->rx_cbuf) {
		if (c->rx_map_done != 0 || dsn != c->rx_map_dsn ||
		    mps_cmap_start(c, sf, c->rx_map_dsn, c->rx_map_ssn, c->rx_map_len,
				   c->rx_map_data, false, c->rx_map_csum) < 0)
			goto refuse;
	} else if (sf->rx_cverified || sf->rx_cdsn != c->rx_map_dsn ||
		   dsn != sf->rx_cdsn + sf->rx_cdone) {
		goto refuse; /* the one before still waits for room, or another mapping */
	}
	rc = mps_cmap_add(c, sf, p, n);
	if (rc < 0) {
		/* Nothing of it was delivered: only this subflow goes while a join works. */
		mps_cmap_free(c, sf);
		mps_csum_failure_held(c, c->rx_map_dsn, now);
		return false;
	}
	c->rx_map_done += (uint16_t)n;
	sf->rcv_nxt += n;
	sf->bytes_received += n;
	if (rc == 1)
		mps_cmap_flush(c, sf);
	return true;
refuse:
	c->st->counters[MPS_CNT_IN_BAD_MAPPING]++;
	sf->ack_now = true;
	return false;
}

/* Take in-order payload; returns false if the segment must be dropped. */
static bool take_payload(struct mps_conn *c, const struct mps_seg *s, bool mapped, uint64_t now)
{
	struct mps_subflow *sf = &c->sf;
	uint32_t off, n, room, ssn, skip = 0;
	uint64_t dsn;

	if (SEQ_GT(s->seq, sf->rcv_nxt))
		return false; /* the caller queues these */
	off = sf->rcv_nxt - s->seq;
	if (off >= s->payload_len)
		return true;
	n = s->payload_len - off;
	ssn = sf->rcv_nxt - sf->irs;
	if (c->mptcp && !mapped &&
	    (!c->rx_map_valid || SEQ_LT(ssn, c->rx_map_ssn) ||
	     SEQ_GEQ(ssn, c->rx_map_ssn + c->rx_map_data))) {
		mps_mapping_missing(c, now);
		if (c->reset)
			return false;
	}
	if (c->mptcp) {
		if (!c->rx_map_valid || SEQ_LT(ssn, c->rx_map_ssn) ||
		    SEQ_GEQ(ssn, c->rx_map_ssn + c->rx_map_data)) {
			/*
			 * Refused: ACK at once, or a sender whose ACK of the data
			 * before was lost resends the same refused segment until
			 * it gives up.
			 */
			c->st->counters[MPS_CNT_IN_BAD_MAPPING]++;
			sf->ack_now = true;
			return false;
		}
		if (n > c->rx_map_ssn + c->rx_map_data - ssn)
			n = c->rx_map_ssn + c->rx_map_data - ssn;
		dsn = c->rx_map_dsn + (ssn - c->rx_map_ssn);
		if (!c->csum) {
			/* Data ahead of the connection (a gap on another subflow) is held there. */
			n = mps_conn_deliver(c, dsn, s->payload + off, n);
			c->rx_map_done += (uint16_t)n;
			sf->rcv_nxt += n;
			sf->bytes_received += n;
			goto ack;
		}
		if (dsn > c->rcv_nxt_dsn || sf->rx_cbuf ||
		    (c->next_serial > 1 && c->rx_map_done == 0 && dsn == c->rx_map_dsn)) {
			/*
			 * Once joins may carry data, each mapping is held until it
			 * verifies and then handed to the connection, as on a join:
			 * it may start ahead of rcv_nxt_dsn, or behind it (reinjected).
			 */
			if (!take_held(c, s->payload + off, n, dsn, now))
				return false;
			goto ack;
		}
		/*
		 * Data the connection already has, sent again on this subflow: Linux's
		 * MPTCP-level zero-window probe re-sends the last acknowledged byte as
		 * new subflow data. It is consumed on the subflow, not delivered twice.
		 */
		if (dsn < c->rcv_nxt_dsn)
			skip = c->rcv_nxt_dsn - dsn < n ? (uint32_t)(c->rcv_nxt_dsn - dsn) : n;
		if (skip && !map_consume(c, s->payload + off, skip, false, now))
			return false;
		sf->rcv_nxt += skip;
		sf->bytes_received += skip;
		off += skip;
		n -= skip;
	}
	room = mps_rcv_space(c);
	if (n > room) {
		c->st->counters[MPS_CNT_IN_RCVBUF_FULL]++;
		n = room;
	}
	if (c->mptcp) {
		if (!map_consume(c, s->payload + off, n, true, now))
			return false;
	} else {
		mps_ring_write(&c->rcvbuf, s->payload + off, n);
	}
	sf->rcv_nxt += n;
	c->rcv_nxt_dsn += n;
	sf->bytes_received += n;
	c->bytes_received += n;
ack:
	if (n == 0 || off + n < s->payload_len) {
		sf->ack_now = true; /* data refused: say so at once */
	} else if (++sf->unacked_segs >= 2 || mps_rx_merged(c, sf, n)) {
		/*
		 * At least every second full segment (RFC 9293 §3.8.6.3); a packet
		 * larger than the peer's segments is several the kernel merged.
		 */
		sf->ack_now = true;
	} else if (sf->delack_at == MPS_TIME_NEVER) {
		sf->delack_at = now + MPS_DELACK_US;
	}
	return off + n == s->payload_len;
}

static void dooo_drain(struct mps_conn *c)
{
	struct mps_dooo *q;
	uint32_t skip, w;

	while ((q = c->dooo) && q->dsn <= c->rcv_nxt_dsn) {
		skip = c->rcv_nxt_dsn - q->dsn < q->len ? (uint32_t)(c->rcv_nxt_dsn - q->dsn)
							: q->len;
		/* Held data was within the window when it came, so it fits. */
		w = mps_ring_write(&c->rcvbuf, q->data + skip, q->len - skip);
		c->rcv_nxt_dsn += w;
		c->bytes_received += w;
		c->dooo = q->next;
		if (!c->dooo)
			c->dooo_tail = NULL;
		c->dooo_bytes -= q->len;
		c->dooo_segs--;
		mps_free(c->st, q);
	}
}

/*
 * Hold n bytes at dsn, ahead of rcv_nxt_dsn: only the parts no held piece
 * covers yet are kept, so the same data arriving twice (a reinjection and
 * the original, cut differently) takes no room twice. Returns how many
 * bytes from the front are held (fewer than n at the bounds).
 */
static uint32_t dooo_hold(struct mps_conn *c, uint64_t dsn, const uint8_t *p, uint32_t n)
{
	struct mps_dooo **pp = &c->dooo, *q;
	uint64_t at = dsn, end = dsn + n, stop;
	uint32_t len;

	/* Past everything held (the usual case): no walk through a window of pieces. */
	if (c->dooo_tail && at >= c->dooo_tail->dsn + c->dooo_tail->len)
		pp = &c->dooo_tail->next;
	while (at < end) {
		while (*pp && (*pp)->dsn + (*pp)->len <= at)
			pp = &(*pp)->next;
		if (*pp && (*pp)->dsn <= at) {
			at = (*pp)->dsn + (*pp)->len; /* held already */
			pp = &(*pp)->next;
			continue;
		}
		stop = *pp && (*pp)->dsn < end ? (*pp)->dsn : end;
		len = (uint32_t)(stop - at);
		if (c->dooo_segs >= mps_ooo_max_segs(c->rcvbuf.cap) ||
		    c->dooo_bytes + len > c->rcvbuf.cap) {
			c->st->counters[MPS_CNT_IN_RCVBUF_FULL]++;
			break;
		}
		q = mps_alloc(c->st, sizeof(*q) + len);
		if (!q)
			break; /* the peer sends it again */
		q->dsn = at;
		q->len = len;
		memcpy(q->data, p + (at - dsn), len);
		q->next = *pp;
		*pp = q;
		if (!q->next)
			c->dooo_tail = q;
		pp = &q->next;
		c->dooo_bytes += len;
		c->dooo_segs++;
		at = stop;
	}
	return (uint32_t)((at < end ? at : end) - dsn);
}

uint32_t mps_conn_deliver(struct mps_conn *c, uint64_t dsn, const uint8_t *p, uint32_t n)
{
	uint32_t skip = 0, w;

	if (dsn + n <= c->rcv_nxt_dsn)
		return n; /* the connection has it already (another subflow, or a probe) */
	if (dsn < c->rcv_nxt_dsn) {
		skip = (uint32_t)(c->rcv_nxt_dsn - dsn);
		dsn += skip;
		p += skip;
		n -= skip;
	}
	if (dsn == c->rcv_nxt_dsn) {
		w = mps_ring_write(&c->rcvbuf, p, n);
		if (w < n)
			c->st->counters[MPS_CNT_IN_RCVBUF_FULL]++;
		c->rcv_nxt_dsn += w;
		c->bytes_received += w;
		dooo_drain(c);
		if (c->rx_fin_pending)
			mps_data_fin_check(c, true, c->rx_fin_dsn);
		return skip + w;
	}
	/* Ahead: held if it fits in the window; else the subflow refuses it. */
	if (dsn + n - c->rcv_nxt_dsn > mps_rcv_space(c)) {
		c->st->counters[MPS_CNT_IN_RCVBUF_FULL]++;
		return skip;
	}
	return skip + dooo_hold(c, dsn, p, n);
}

void mps_tcp_free(struct mps_conn *c)
{
	struct mps_ooo *q, *n;
	struct mps_dooo *d, *dn;

	for (d = c->dooo; d; d = dn) {
		dn = d->next;
		mps_free(c->st, d);
	}
	c->dooo = NULL;
	c->dooo_tail = NULL;
	c->dooo_bytes = 0;
	c->dooo_segs = 0;

	for (q = c->ooo; q; q = n) {
		n = q->next;
		mps_free(c->st, q);
	}
	c->ooo = NULL;
	c->ooo_tail = NULL;
	c->ooo_bytes = 0;
	c->ooo_segs = 0;
}

/*
 * Keep a segment that arrived ahead of rcv_nxt, with its mapping, if it fits
 * in the window and in the queue's bounds; a duplicate of a queued one is
 * dropped. The caller sends the duplicate ACK.
 */
static void ooo_store(struct mps_conn *c, const struct mps_seg *s, const struct mps_rx_map *m)
{
	struct mps_subflow *sf = &c->sf;
	struct mps_ooo **pp = &c->ooo, *q;
	uint32_t len = s->payload_len;

	if (len == 0 || c->ooo_segs >= mps_ooo_max_segs(c->rcvbuf.cap) ||
	    c->ooo_bytes + len > c->rcvbuf.cap - c->rcvbuf.len ||
	    SEQ_GT(s->seq + len, sf->rcv_nxt + mps_rcv_space(c)))
		return;
	if (c->ooo_tail && SEQ_GT(s->seq, c->ooo_tail->seq))
		pp = &c->ooo_tail->next;
	while (*pp && SEQ_LT((*pp)->seq, s->seq))
		pp = &(*pp)->next;
	if (*pp && (*pp)->seq == s->seq && (*pp)->len >= len)
		return;
	q = mps_alloc(c->st, sizeof(*q) + len);
	if (!q)
		return; /* the sender retransmits it */
	q->seq = s->seq;
	q->len = len;
	q->fin = s->flags & MPS_TCP_FIN;
	q->map = *m;
	memcpy(q->data, s->payload, len);
	q->next = *pp;
	*pp = q;
	if (!q->next)
		c->ooo_tail = q;
	c->ooo_bytes += len;
	c->ooo_segs++;
	c->ooo_last = s->seq;
}

/*
 * A walk over a subflow's out-of-order queue: the initial subflow's
 * (struct mps_ooo, with its receive mappings) or a join's.
 */
struct ooo_walk {
	const struct mps_ooo *o;
	const struct mps_join_ooo *j;
};

static bool ooo_peek(const struct ooo_walk *w, uint32_t *seq, uint32_t *len)
{
	if (w->o) {
		*seq = w->o->seq;
		*len = w->o->len;
		return true;
	}
	if (w->j) {
		*seq = w->j->seq;
		*len = w->j->len;
		return true;
	}
	return false;
}

static void ooo_next(struct ooo_walk *w)
{
	if (w->o)
		w->o = w->o->next;
	else if (w->j)
		w->j = w->j->next;
}

bool mps_sack_queued(const struct mps_conn *c, const struct mps_subflow *sf)
{
	return sf->is_join ? sf->jooo != NULL : c->ooo != NULL;
}

unsigned int mps_sack_blocks(const struct mps_conn *c, const struct mps_subflow *sf,
			     uint32_t (*blk)[2], unsigned int max)
{
	uint32_t rest[MPS_SACK_BLOCKS_MAX - 1][2];
	struct ooo_walk w = { .o = sf->is_join ? NULL : c->ooo,
			      .j = sf->is_join ? sf->jooo : NULL };
	uint32_t last = sf->is_join ? sf->jooo_last : c->ooo_last, seq, len;
	unsigned int n = 0, nrest = 0, i;

	if (max > MPS_SACK_BLOCKS_MAX)
		max = MPS_SACK_BLOCKS_MAX;
	while (max && ooo_peek(&w, &seq, &len)) {
		uint32_t l = seq, r = seq + len;
		bool has_last = false;

		for (; ooo_peek(&w, &seq, &len) && SEQ_LEQ(seq, r); ooo_next(&w)) {
			if (SEQ_GT(seq + len, r))
				r = seq + len;
			if (seq == last)
				has_last = true;
		}
		if (has_last && !n) {
			blk[n][0] = l;
			blk[n][1] = r;
			n++;
			continue;
		}
		/* Runs come in ascending order: keep the highest max - 1. */
		if (max < 2)
			continue;
		if (nrest == max - 1) {
			memmove(&rest[0], &rest[1], (nrest - 1) * sizeof(rest[0]));
			nrest--;
		}
		rest[nrest][0] = l;
		rest[nrest][1] = r;
		nrest++;
	}
	if (!n)
		return 0; /* cannot happen while something is queued: the last one is in it */
	for (i = nrest; i-- > 0 && n < max;) {
		blk[n][0] = rest[i][0];
		blk[n][1] = rest[i][1];
		n++;
	}
	return n;
}

static void our_fin_acked(struct mps_conn *c, uint64_t now)
{
	struct mps_subflow *sf = &c->sf;

	switch (sf->state) {
	case MPS_SF_FIN_WAIT_1:
		sf->state = MPS_SF_FIN_WAIT_2;
		break;
	case MPS_SF_CLOSING:
		sf->state = MPS_SF_TIME_WAIT;
		sf->tw_at = now + 2ULL * c->st->cfg.msl_us;
		break;
	case MPS_SF_LAST_ACK:
		sf->state = MPS_SF_CLOSED;
		c->state = MPS_CONN_CLOSED;
		mps_event(c->st, MPS_EV_SUBFLOW_DOWN, c, 0, now);
		mps_event(c->st, MPS_EV_CONN_CLOSED, c, 0, now);
		break;
	default:
		break;
	}
}

/* Fold the peer's SACK blocks into the scoreboard; drop what una has passed. */
static void sack_update(struct mps_subflow *sf, const struct mps_tcpopts *t, uint32_t una)
{
	unsigned int i, j, k;

	for (i = 0, k = 0; i < sf->nsacked; i++) {
		if (SEQ_LEQ(sf->sacked[i].right, una))
			continue;
		if (SEQ_LT(sf->sacked[i].left, una))
			sf->sacked[i].left = una;
		sf->sacked[k++] = sf->sacked[i];
	}
	sf->nsacked = (uint8_t)k;
	for (i = 0; sf->sack_ok && i < t->nsack; i++) {
		uint32_t l = t->sack[i].left, r = t->sack[i].right;

		/* Blocks outside what is in flight are stale or forged: ignored. */
		if (!SEQ_LT(l, r) || SEQ_LEQ(l, una) || SEQ_GT(r, sf->snd_max))
			continue;
		for (j = 0; j < sf->nsacked && SEQ_LT(sf->sacked[j].right, l); j++)
			;
		if (j < sf->nsacked && SEQ_LEQ(sf->sacked[j].left, r)) {
			/* Overlaps or touches range j: widen it, then absorb its successors. */
			if (SEQ_LT(l, sf->sacked[j].left))
				sf->sacked[j].left = l;
			if (SEQ_GT(r, sf->sacked[j].right))
				sf->sacked[j].right = r;
			while (j + 1 < sf->nsacked &&
			       SEQ_LEQ(sf->sacked[j + 1].left, sf->sacked[j].right)) {
				if (SEQ_GT(sf->sacked[j + 1].right, sf->sacked[j].right))
					sf->sacked[j].right = sf->sacked[j + 1].right;
				memmove(&sf->sacked[j + 1], &sf->sacked[j + 2],
					(size_t)(sf->nsacked - j - 2) * sizeof(sf->sacked[0]));
				sf->nsacked--;
			}
			continue;
		}
		if (sf->nsacked == MPS_SACK_RANGES) {
			if (j == MPS_SACK_RANGES)
				continue; /* full: the highest ranges matter least for repair */
			sf->nsacked--;
		}
		memmove(&sf->sacked[j + 1], &sf->sacked[j],
			(size_t)(sf->nsacked - j) * sizeof(sf->sacked[0]));
		sf->sacked[j].left = l;
		sf->sacked[j].right = r;
		sf->nsacked++;
	}
}

/*
 * The next hole at or after from that the scoreboard shows: data below a
 * SACKed range, not itself SACKed. Sets rexmit_seq and rexmit_max and
 * returns true if there is one.
 */
static bool next_hole(struct mps_subflow *sf, uint32_t from)
{
	uint32_t seq = SEQ_LT(from, sf->snd_una) ? sf->snd_una : from;
	unsigned int i;

	for (i = 0; i < sf->nsacked; i++) {
		if (SEQ_LT(seq, sf->sacked[i].left)) {
			sf->rexmit_seq = seq;
			sf->rexmit_max = sf->sacked[i].left - seq;
			return true;
		}
		if (SEQ_LT(seq, sf->sacked[i].right))
			seq = sf->sacked[i].right;
	}
	return false;
}

/* Resend the next hole in recovery: by the scoreboard if there is one, else snd_una. */
static void repair_next(struct mps_subflow *sf, uint32_t mss)
{
	if (sf->nsacked) {
		if (!next_hole(sf, sf->rexmit_next))
			return;
		if (sf->rexmit_max > mss)
			sf->rexmit_max = mss;
	} else {
		sf->rexmit_seq = sf->snd_una;
		sf->rexmit_max = 0;
	}
	sf->rexmit_next = sf->rexmit_seq + (sf->rexmit_max ? sf->rexmit_max : mss);
	sf->rexmit_one = true;
}

/*
 * RFC 6675 §4 IsLost() for a hole below scoreboard range i, with above
 * bytes SACKed above it: DupThresh (3) discontiguous SACKed ranges above
 * it, or more than (DupThresh - 1) * SMSS bytes.
 */
static bool hole_lost(const struct mps_subflow *sf, unsigned int i, uint64_t above, uint32_t mss)
{
	return sf->nsacked - i >= 3 || above > 2ULL * mss;
}

static uint64_t sacked_bytes(const struct mps_subflow *sf)
{
	uint64_t n = 0;
	unsigned int i;

	for (i = 0; i < sf->nsacked; i++)
		n += sf->sacked[i].right - sf->sacked[i].left;
	return n;
}

/* Bytes of [l, r) below HighRxt: already retransmitted in this recovery. */
static uint32_t below_high_rxt(const struct mps_subflow *sf, uint32_t l, uint32_t r)
{
	uint32_t hi = SEQ_LT(sf->rexmit_next, sf->snd_una) ? sf->snd_una : sf->rexmit_next;

	if (!SEQ_LT(l, hi) || !SEQ_LT(l, r))
		return 0;
	return (SEQ_LT(hi, r) ? hi : r) - l;
}

uint32_t mps_sack_pipe(const struct mps_subflow *sf, uint32_t mss)
{
	uint64_t above = 0, pipe;
	uint32_t l, r;
	int i;

	if (!sf->sack_recovery)
		return sf->snd_max - sf->snd_una;
	/* The tail above the highest SACKed byte is never lost by IsLost(): all in flight. */
	l = sf->nsacked ? sf->sacked[sf->nsacked - 1].right : sf->snd_una;
	pipe = SEQ_LT(l, sf->snd_max) ? sf->snd_max - l : 0;
	pipe += below_high_rxt(sf, l, sf->snd_max);
	for (i = sf->nsacked - 1; i >= 0; i--) {
		above += sf->sacked[i].right - sf->sacked[i].left;
		l = i ? sf->sacked[i - 1].right : sf->snd_una;
		r = sf->sacked[i].left;
		if (!SEQ_LT(l, r))
			continue;
		/* Octets not lost are in flight; retransmitted ones are in flight once more. */
		if (!hole_lost(sf, (unsigned int)i, above, mss))
			pipe += r - l;
		pipe += below_high_rxt(sf, l, r);
	}
	return pipe > UINT32_MAX ? UINT32_MAX : (uint32_t)pipe;
}

bool mps_sack_hole(const struct mps_subflow *sf, uint32_t mss, bool lost_only, uint32_t *seq,
		   uint32_t *len)
{
	uint32_t from = SEQ_LT(sf->rexmit_next, sf->snd_una) ? sf->snd_una : sf->rexmit_next;
	uint32_t l = sf->snd_una;
	uint64_t above = sacked_bytes(sf);
	unsigned int i;

	for (i = 0; i < sf->nsacked; i++) {
		if (SEQ_LT(l, from))
			l = from;
		if (SEQ_LT(l, sf->sacked[i].left) && (!lost_only || hole_lost(sf, i, above, mss))) {
			*seq = l;
			*len = sf->sacked[i].left - l;
			return true;
		}
		above -= sf->sacked[i].right - sf->sacked[i].left;
		l = sf->sacked[i].right;
	}
	return false;
}

bool mps_sack_rescue(const struct mps_subflow *sf, uint32_t mss, uint32_t *seq, uint32_t *len)
{
	uint32_t l = sf->nsacked ? sf->sacked[sf->nsacked - 1].right : sf->snd_una;
	uint32_t end = sf->snd_max;

	if (sf->rescue_done)
		return false;
	/* The FIN is resent by itself (send_from() finds no mapping for it). */
	if (sf->fin_sent && end == sf->fin_seq + 1 && SEQ_LT(l, end - 1))
		end--;
	if (!SEQ_LT(l, end))
		return false;
	*len = end - l < mss ? end - l : mss;
	*seq = end - *len;
	return true;
}

/*
 * A retransmission lost too: data sent after our latest retransmission is
 * SACKed while the first hole, resent before it, is still missing. Without
 * this only the RTO would find it, with a window of one segment after it
 * (as Linux's tcp_mark_lost_retrans() did before RACK). Holes below HighRxt
 * are then resent once more; the recovery episode, and cwnd, stay.
 */
static void lost_retrans_check(struct mps_conn *c, struct mps_subflow *sf)
{
	if (!sf->sack_recovery || !sf->rxt_marked || !sf->nsacked ||
	    !SEQ_GT(sf->sacked[sf->nsacked - 1].right, sf->rxt_mark) ||
	    !SEQ_GT(sf->rexmit_next, sf->snd_una))
		return;
	sf->rexmit_next = sf->snd_una;
	sf->rxt_marked = false;
	c->st->counters[MPS_CNT_LOST_RETRANS]++;
}

/* Start loss recovery: RFC 6675 §5 with a SACK-capable peer, NewReno (RFC 6582) otherwise. */
static void enter_recovery(struct mps_conn *c, struct mps_subflow *sf, uint32_t mss)
{
	uint32_t flight = sf->snd_max - sf->snd_una;

	sf->ssthresh = flight / 2 > 2 * mss ? flight / 2 : 2 * mss;
	sf->recover = sf->snd_max;
	sf->in_recovery = true;
	sf->rexmit_seq = sf->snd_una;
	sf->rexmit_max = 0;
	sf->rexmit_next = sf->snd_una;
	sf->rexmit_one = true;
	/*
	 * With a SACK-capable peer the scoreboard drives the recovery even if
	 * no block came yet: NewReno's window inflation, one segment per
	 * duplicate ACK, would let a large flight double itself.
	 */
	sf->sack_recovery = sf->sack_ok;
	sf->rescue_done = false;
	sf->rxt_marked = false;
	sf->prr_delivered = 0;
	sf->prr_out = 0;
	sf->recover_fs = flight ? flight : 1;
	if (sf->sack_recovery) {
		/* No window inflation: pipe, not cwnd, says what is out (RFC 6675 §5 step 4). */
		sf->cwnd = sf->ssthresh;
		if (sf->nsacked && sf->sacked[0].left - sf->snd_una < mss)
			sf->rexmit_max = sf->sacked[0].left - sf->snd_una;
	} else {
		/* Inflated by the duplicate ACKs seen (three, or fewer by early retransmit). */
		sf->cwnd = sf->ssthresh + (sf->dupacks < 3 ? sf->dupacks : 3) * mss;
		sf->rexmit_next = sf->snd_una + mss;
	}
	c->st->counters[MPS_CNT_FAST_RETRANS]++;
}

/*
 * Early retransmit (RFC 5827): with fewer than four segments out and no
 * new data to send, three duplicate ACKs can never come, so one fewer
 * than the segments out will do (at least one). With SACK the segments
 * SACKed count, as a receiver may answer two of them with one ACK.
 */
static bool early_retransmit(const struct mps_conn *c, const struct mps_subflow *sf,
			     uint32_t flight, uint32_t mss)
{
	uint32_t oseg = (flight + mss - 1) / mss, seen = sf->dupacks;
	uint64_t sacked = sf->sack_ok ? (sacked_bytes(sf) + mss - 1) / mss : 0;

	if (sacked > seen)
		seen = (uint32_t)sacked;
	return oseg >= 2 && oseg < 4 && seen >= oseg - 1 && c->snd_nxt_dsn >= mps_data_end_dsn(c) &&
	       !c->nrq;
}

#define HS_SAMPLES    8	    /* RTT samples per round before HyStart++ judges it */
#define HS_ETA_MIN_US 4000  /* RFC 9406 MIN_RTT_THRESH */
#define HS_ETA_MAX_US 16000 /* RFC 9406 MAX_RTT_THRESH */
#define HS_CSS_DIV    4	    /* growth divisor in Conservative Slow Start */
#define HS_CSS_ROUNDS 5	    /* rounds of it before congestion avoidance */

/*
 * HyStart++ (RFC 9406) in the first slow start. A round ends when snd_una
 * passes what was sent when it began; the RTT comes from the timestamp each
 * ACK echoes (millisecond resolution, so the RFC's 4 ms floor still tells a
 * queue from jitter). A round whose minimum RTT exceeds the last one's by
 * max(4 ms, min(last / 8, 16 ms)) starts Conservative Slow Start: growth at
 * a quarter, back to slow start if the RTT falls below where CSS began, and
 * after five rounds congestion avoidance (ssthresh = cwnd). Slow start
 * thereby stops near the path's capacity instead of doubling its window into
 * a full queue, where a tail-drop queue (tbf's) loses a large part of a
 * window at once.
 */
static void hystart_ack(struct mps_subflow *sf, const struct mps_tcpopts *t, uint64_t now)
{
	uint32_t rtt, eta;

	if (sf->ssthresh != UINT32_MAX || sf->in_recovery)
		return;
	if (!sf->hs_init) {
		sf->hs_init = true;
		sf->hs_last_min = UINT32_MAX;
		sf->hs_cur_min = UINT32_MAX;
		sf->hs_round_end = sf->snd_max;
	}
	if (SEQ_GEQ(sf->snd_una, sf->hs_round_end)) {
		if (sf->hs_css && ++sf->hs_css_rounds >= HS_CSS_ROUNDS) {
			sf->ssthresh = sf->cwnd;
			sf->hs_css = false;
			return;
		}
		sf->hs_last_min = sf->hs_cur_min;
		sf->hs_cur_min = UINT32_MAX;
		sf->hs_samples = 0;
		sf->hs_round_end = sf->snd_max;
	}
	if (!(t->present & MPS_TCPOPTS_TS) || !t->ts_ecr)
		return;
	rtt = (uint32_t)(now / 1000) - t->ts_ecr; /* our TSval is the clock in ms */
	if (rtt > 60000)
		return; /* not an echo of ours */
	rtt *= 1000;
	if (rtt < sf->hs_cur_min)
		sf->hs_cur_min = rtt;
	if (sf->hs_samples < HS_SAMPLES)
		sf->hs_samples++;
	if (sf->hs_samples < HS_SAMPLES || sf->hs_last_min == UINT32_MAX)
		return;
	if (!sf->hs_css) {
		eta = sf->hs_last_min / 8;
		eta = eta < HS_ETA_MIN_US   ? HS_ETA_MIN_US
		      : eta > HS_ETA_MAX_US ? HS_ETA_MAX_US
					    : eta;
		if (sf->hs_cur_min >= sf->hs_last_min + eta) {
			sf->hs_css = true;
			sf->hs_css_rounds = 0;
			sf->hs_css_base = sf->hs_cur_min;
		}
	} else if (sf->hs_cur_min < sf->hs_css_base) {
		sf->hs_css = false; /* the RTT rise was passing: slow start again */
	}
}

static void congestion_on_ack(struct mps_conn *c, struct mps_subflow *sf, uint32_t acked,
			      uint32_t mss)
{
	if (sf->in_recovery) {
		if (SEQ_GEQ(sf->snd_una, sf->recover)) {
			sf->in_recovery = false;
			sf->sack_recovery = false;
			sf->cwnd = sf->ssthresh;
		} else if (sf->sack_recovery) {
			/* RFC 6675: the output sends what pipe allows, holes first. */
		} else {
			/* NewReno partial ACK (RFC 6582): resend the next hole, deflate. */
			repair_next(sf, mss);
			sf->cwnd = sf->cwnd > acked ? sf->cwnd - acked + mss : mss;
		}
		return;
	}
	/* Slow start counts bytes acked, at most L = 2 segments per ACK (RFC 3465). */
	if (sf->cwnd < sf->ssthresh)
		sf->cwnd += (acked < 2 * mss ? acked : 2 * mss) /
			    (sf->hs_css && sf->ssthresh == UINT32_MAX ? HS_CSS_DIV : 1);
	else
		sf->cwnd += c->st->cc->ca_increase(c, sf, acked, mss);
}

/* Returns false when the segment must be dropped (an unacceptable ACK). */
static bool process_ack(struct mps_conn *c, struct mps_subflow *sf, const struct mps_seg *s,
			const struct mps_tcpopts *t, uint64_t now)
{
	uint32_t mss = mps_sf_mss(c, sf), acked, flight;
	bool win_update = false, sack_new;
	uint64_t sacked_before = sacked_bytes(sf);

	/*
	 * RFC 9293 §3.10.7.4 and RFC 5961 §5.2: an ACK of data never sent, or
	 * older than the largest window behind snd_una, gets an ACK and the
	 * segment is dropped.
	 */
	if (SEQ_GT(s->ack, sf->snd_max) ||
	    SEQ_LT(s->ack, sf->snd_una - (sf->max_snd_wnd > 65535 ? sf->max_snd_wnd : 65535))) {
		c->st->counters[MPS_CNT_IN_BAD_ACK]++;
		sf->ack_now = true;
		return false;
	}
	sack_update(sf, t, SEQ_GT(s->ack, sf->snd_una) ? s->ack : sf->snd_una);
	sack_new = sacked_bytes(sf) > sacked_before;
	lost_retrans_check(c, sf);
	if (SEQ_LT(sf->snd_wl1, s->seq) ||
	    (sf->snd_wl1 == s->seq && SEQ_LEQ(sf->snd_wl2, s->ack))) {
		uint32_t w = (uint32_t)s->win << sf->snd_wscale;

		win_update = w != sf->snd_wnd;
		sf->snd_wnd = w;
		if (w > sf->max_snd_wnd)
			sf->max_snd_wnd = w;
		sf->snd_wl1 = s->seq;
		sf->snd_wl2 = s->ack;
	}
	if (SEQ_GT(s->ack, sf->snd_una)) {
		acked = s->ack - sf->snd_una;
		sf->snd_una = s->ack;
		if (SEQ_LT(sf->snd_nxt, sf->snd_una))
			sf->snd_nxt = sf->snd_una;
		sf->bytes_acked += acked;
		if (sf->rtt_timing && SEQ_GEQ(s->ack, sf->rtt_seq)) {
			sf->rtt_timing = false;
			mps_rtt_sample(sf, (uint32_t)(now - sf->rtt_start));
		}
		sf->backoff = 0;
		sf->dupacks = 0;
		if (sf->rto_recovery && SEQ_GEQ(sf->snd_una, sf->recover))
			sf->rto_recovery = false;
		hystart_ack(sf, t, now);
		congestion_on_ack(c, sf, acked, mss);
		mps_sndbuf_tune(c);
		sf->rto_at = sf->snd_una == sf->snd_max ? MPS_TIME_NEVER : now + sf->rto;
		if (!c->mptcp && !sf->is_join)
			fallback_data_ack(c, s->ack);
		mps_smap_trim(sf);
		mps_snd_trim(c);
		/* A join's FIN is its own business (mps_join.c). */
		if (sf->fin_sent && SEQ_GT(s->ack, sf->fin_seq) && !sf->is_join)
			our_fin_acked(c, now);
		return true;
	}
	flight = sf->snd_max - sf->snd_una;
	if (sf->snd_wnd == 0) {
		/* Answers to zero-window probes are not duplicate ACKs (RFC 5681 §2). */
		sf->probe_answered = true;
		return true;
	}
	/*
	 * A duplicate ACK (RFC 5681 §2); with SACK, one that tells of more data
	 * received counts even if its window changed (RFC 6675 §2).
	 */
	if (s->ack == sf->snd_una && s->payload_len == 0 && !(s->flags & MPS_TCP_FIN) &&
	    (!win_update || sack_new) && flight > 0) {
		if (sf->dupacks < UINT8_MAX)
			sf->dupacks++;
		/*
		 * Fast retransmit and recovery (RFC 5681 §3.2, RFC 6582), or with
		 * SACK on the third duplicate ACK or as soon as the scoreboard
		 * shows the first segment lost (RFC 6675 §5).
		 */
		if (!sf->in_recovery && !sf->rto_recovery &&
		    (sf->dupacks == 3 || early_retransmit(c, sf, flight, mss) ||
		     (sf->sack_ok && sf->nsacked && hole_lost(sf, 0, sacked_bytes(sf), mss)))) {
			enter_recovery(c, sf, mss);
		} else if (sf->in_recovery && sf->sack_recovery) {
			/* Nothing to count: each ACK's SACK blocks lower pipe by themselves. */
		} else if (sf->in_recovery) {
			sf->cwnd += mss;
			/* With SACK, every further duplicate ACK may repair one more hole. */
			if (sf->nsacked)
				repair_next(sf, mss);
		}
	}
	return true;
}

/*
 * Proportional Rate Reduction (RFC 6937) sets cwnd on every ACK of a SACK
 * recovery to pipe plus what may go now: while pipe is above ssthresh, in
 * proportion to what the peer received since recovery began (so the
 * repairs start at once instead of after half a window of ACKs, as with
 * RFC 6675's cwnd = ssthresh alone), and below it back up to ssthresh by
 * no more than the data delivered plus one segment (the SSRB bound).
 */
static void prr_update(struct mps_subflow *sf, uint32_t delivered, uint32_t mss)
{
	uint32_t pipe = mps_sack_pipe(sf, mss), sndcnt, d;
	uint64_t limit;

	sf->prr_delivered += delivered;
	if (pipe > sf->ssthresh) {
		limit = ((uint64_t)sf->prr_delivered * sf->ssthresh + sf->recover_fs - 1) /
			sf->recover_fs;
		sndcnt = limit > sf->prr_out ? (uint32_t)(limit - sf->prr_out) : 0;
	} else {
		d = sf->prr_delivered > sf->prr_out ? sf->prr_delivered - sf->prr_out : 0;
		limit = (uint64_t)(d > delivered ? d : delivered) + mss;
		sndcnt = sf->ssthresh - pipe < limit ? sf->ssthresh - pipe : (uint32_t)limit;
	}
	sf->cwnd = pipe + sndcnt;
}

bool mps_process_ack(struct mps_conn *c, struct mps_subflow *sf, const struct mps_seg *s,
		     const struct mps_tcpopts *t, uint64_t now)
{
	uint32_t una = sf->snd_una;
	int64_t before = (int64_t)sacked_bytes(sf), delivered;

	if (!process_ack(c, sf, s, t, now))
		return false;
	if (sf->in_recovery && sf->sack_recovery) {
		/* DeliveredData: snd_una's advance and the change in SACKed bytes. */
		delivered =
			(int64_t)(uint32_t)(sf->snd_una - una) + (int64_t)sacked_bytes(sf) - before;
		prr_update(sf, delivered > 0 ? (uint32_t)delivered : 0, mps_sf_mss(c, sf));
	}
	return true;
}

/* The peer's FIN, once every byte before it has been taken. */
static void take_fin(struct mps_conn *c, uint64_t now)
{
	struct mps_subflow *sf = &c->sf;

	sf->rcv_nxt++;
	sf->fin_rcvd = true;
	sf->ack_now = true;
	if (!c->mptcp && !c->data_fin_rcvd) {
		c->data_fin_rcvd = true;
		if (c->state == MPS_CONN_ESTABLISHED)
			c->state = MPS_CONN_CLOSING;
	}
	switch (sf->state) {
	case MPS_SF_ESTABLISHED:
		sf->state = MPS_SF_CLOSE_WAIT;
		break;
	case MPS_SF_FIN_WAIT_1:
		sf->state = MPS_SF_CLOSING;
		break;
	case MPS_SF_FIN_WAIT_2:
		sf->state = MPS_SF_TIME_WAIT;
		sf->tw_at = now + 2ULL * c->st->cfg.msl_us;
		break;
	default:
		break;
	}
}

/*
 * A SYN without ACK in SYN-SENT: both ends opened at once (RFC 9293 §3.5,
 * figure 8). We go to SYN-RECEIVED and send SYN,ACK with our ISS; the
 * peer's SYN,ACK or ACK completes it. MPTCP falls back to TCP, as Linux
 * does (SimultConnectFallback): the SYN,ACK carries no MP_CAPABLE, and
 * RFC 8684 has no way to say which end is the client.
 */
static void simultaneous_open(struct mps_conn *c, const struct mps_seg *s,
			      const struct mps_tcpopts *t, uint64_t now)
{
	struct mps_subflow *sf = &c->sf;

	c->st->counters[MPS_CNT_SIMULT_OPEN]++;
	sf->irs = s->seq;
	sf->rcv_nxt = s->seq + 1;
	sf->snd_wnd = s->win; /* never scaled in a SYN */
	sf->snd_wl1 = s->seq;
	sf->snd_wl2 = s->ack;
	syn_options(c, t, false, now);
	sf->state = MPS_SF_SYN_RCVD;
	sf->snd_nxt = sf->iss;	/* our SYN again, now as SYN,ACK */
	sf->rtt_timing = false; /* Karn: the SYN,ACK is a retransmission of the SYN */
	if (c->mptcp)
		mps_fall_back(c, MPS_FALLBACK_SIMULT_OPEN, "simultaneous open", now);
	c->rcv_nxt_dsn = 1;
}

static void synsent_input(struct mps_conn *c, const struct mps_seg *s, const struct mps_tcpopts *t,
			  const struct mps_opt *o, unsigned int n, uint64_t now)
{
	struct mps_subflow *sf = &c->sf;
	const struct mps_opt *mpc = mps_find_opt(o, n, MPS_MPTCP_SUB_CAPABLE);
	bool ack_ok = (s->flags & MPS_TCP_ACK) && SEQ_GT(s->ack, sf->iss) &&
		      SEQ_LEQ(s->ack, sf->snd_max);

	if ((s->flags & MPS_TCP_ACK) && !ack_ok) {
		mps_queue_rst(c->st, s, &sf->local, &sf->remote);
		return;
	}
	if (s->flags & MPS_TCP_RST) {
		if (ack_ok)
			mps_conn_reset(c, MPS_RST_PEER, now);
		return;
	}
	if ((s->flags & (MPS_TCP_SYN | MPS_TCP_ACK)) == MPS_TCP_SYN) {
		simultaneous_open(c, s, t, now);
		return;
	}
	if (!(s->flags & MPS_TCP_SYN) || !ack_ok)
		return;
	sf->irs = s->seq;
	sf->rcv_nxt = s->seq + 1;
	sf->snd_una = s->ack;
	sf->snd_wnd = s->win; /* never scaled in a SYN */
	sf->snd_wl1 = s->seq;
	sf->snd_wl2 = s->ack;
	syn_options(c, t, true, now);
	if (sf->rtt_timing && sf->backoff == 0)
		mps_rtt_sample(sf, (uint32_t)(now - sf->rtt_start));
	sf->rtt_timing = false;
	sf->rto_at = MPS_TIME_NEVER;
	if (c->mptcp) {
		if (!mpc || mpc->mpc.form != MPS_MPC_SYNACK) {
			mps_fall_back(c, MPS_FALLBACK_SYNACK_NO_MPC, "SYN/ACK without MP_CAPABLE",
				      now);
		} else {
			/* RFC 8684 §3.1: checksums are used if either SYN asked for them. */
			c->csum = c->csum || (mpc->mpc.flags & MPS_MPC_FLAG_A);
			c->rkey = mpc->mpc.snd_key;
			mps_key_token_idsn(c->rkey, &c->rtoken, &c->ridsn);
			c->rcv_nxt_dsn = c->ridsn + 1;
		}
	}
	if (!c->mptcp)
		c->rcv_nxt_dsn = 1;
	established(c, now);
	sf->ack_now = true;
}

/* SYN-RECEIVED: the ACK of our SYN/ACK, with the client's key (RFC 8684 §3.1). */
static bool synrcvd_ack(struct mps_conn *c, const struct mps_seg *s, const struct mps_opt *o,
			unsigned int n, uint64_t now)
{
	struct mps_subflow *sf = &c->sf;
	const struct mps_opt *mpc = mps_find_opt(o, n, MPS_MPTCP_SUB_CAPABLE);

	if (s->ack != sf->iss + 1) {
		mps_queue_rst(c->st, s, &sf->local, &sf->remote);
		return false;
	}
	if (c->mptcp) {
		if (mpc && (mpc->mpc.form == MPS_MPC_ACK || mpc->mpc.form == MPS_MPC_DATA) &&
		    mpc->mpc.rcv_key == c->lkey) {
			c->rkey = mpc->mpc.snd_key;
			mps_key_token_idsn(c->rkey, &c->rtoken, &c->ridsn);
			c->rcv_nxt_dsn = c->ridsn + 1;
		} else if (mps_find_opt(o, n, MPS_MPTCP_SUB_DSS)) {
			/* MPTCP, but the key is not here: wait for a segment that has it. */
			return false;
		} else {
			mps_fall_back(c, MPS_FALLBACK_ACK_NO_MPC, "third ACK without MP_CAPABLE",
				      now);
		}
	}
	if (!c->mptcp)
		c->rcv_nxt_dsn = 1;
	if (sf->rtt_timing && sf->backoff == 0)
		mps_rtt_sample(sf, (uint32_t)(now - sf->rtt_start));
	sf->rtt_timing = false;
	sf->snd_una = s->ack;
	sf->rto_at = MPS_TIME_NEVER;
	/* A window in a SYN is never scaled. */
	sf->snd_wnd = (uint32_t)s->win << ((s->flags & MPS_TCP_SYN) ? 0 : sf->snd_wscale);
	sf->snd_wl1 = s->seq;
	sf->snd_wl2 = s->ack;
	established(c, now);
	/* A client got here by a simultaneous open: it is nobody's to accept. */
	c->in_accept_q = !c->app_closed && !c->is_client;
	return true;
}

static bool seq_acceptable(const struct mps_conn *c, const struct mps_seg *s)
{
	const struct mps_subflow *sf = &c->sf;
	uint32_t len = s->payload_len + !!(s->flags & MPS_TCP_SYN) + !!(s->flags & MPS_TCP_FIN);
	uint32_t wnd = mps_rcv_space(c);

	if (s->seq == sf->rcv_nxt)
		return true; /* zero window: ACKs, RSTs and FINs at rcv_nxt still count */
	if (len == 0)
		return SEQ_GEQ(s->seq, sf->rcv_nxt) && SEQ_LT(s->seq, sf->rcv_nxt + wnd);
	return (SEQ_GEQ(s->seq, sf->rcv_nxt) && SEQ_LT(s->seq, sf->rcv_nxt + wnd)) ||
	       (SEQ_GEQ(s->seq + len - 1, sf->rcv_nxt) &&
		SEQ_LT(s->seq + len - 1, sf->rcv_nxt + wnd));
}

static bool fastclose_for_us(const struct mps_conn *c, const struct mps_opt *o, unsigned int n)
{
	const struct mps_opt *fc = mps_find_opt(o, n, MPS_MPTCP_SUB_FASTCLOSE);

	return c->mptcp && fc && fc->fastclose_key == c->lkey;
}

/* Payload at or below rcv_nxt, then the connection- and subflow-level FINs it carries. */
static void take_in_order(struct mps_conn *c, const struct mps_seg *s, const struct mps_rx_map *m,
			  uint64_t now)
{
	struct mps_subflow *sf = &c->sf;
	bool whole = true;

	if (s->payload_len)
		whole = take_payload(c, s, m->valid, now);
	if (c->mptcp && m->valid && m->fin && !(m->len == 1 && m->ssn == 0))
		mps_data_fin_check(c, true, m->dsn + m->len - 1);
	if (c->mptcp && c->rx_fin_pending)
		mps_data_fin_check(c, true, c->rx_fin_dsn);
	if (c->reset)
		return;
	if ((s->flags & MPS_TCP_FIN) && whole && !sf->fin_rcvd &&
	    s->seq + s->payload_len == sf->rcv_nxt)
		take_fin(c, now);
	else if (s->flags & MPS_TCP_FIN)
		sf->ack_now = true;
}

/* Queued segments that the hole before them no longer separates from rcv_nxt. */
static void ooo_drain(struct mps_conn *c, uint64_t now)
{
	struct mps_subflow *sf = &c->sf;
	struct mps_ooo *q;
	bool drained = false;

	while ((q = c->ooo) && SEQ_LEQ(q->seq, sf->rcv_nxt) && !c->reset) {
		struct mps_seg fake = { .seq = q->seq,
					.flags = MPS_TCP_ACK | (q->fin ? MPS_TCP_FIN : 0),
					.payload = q->data,
					.payload_len = q->len,
					.payload_cap = q->len };

		c->ooo = q->next;
		if (!c->ooo)
			c->ooo_tail = NULL;
		c->ooo_bytes -= q->len;
		c->ooo_segs--;
		if (SEQ_GT(q->seq + q->len, sf->rcv_nxt) || q->fin) {
			if (c->mptcp && handle_mapping(c, &q->map, true, now) < 0 && !c->reset)
				c->st->counters[MPS_CNT_IN_BAD_MAPPING]++;
			if (!c->reset)
				take_in_order(c, &fake, &q->map, now);
			drained = true;
		}
		mps_free(c->st, q);
	}
	/* RFC 5681 §4.2: an ACK at once when a hole is filled. */
	if (drained)
		sf->ack_now = true;
}

void mps_tcp_input(struct mps_conn *c, const struct mps_seg *s, const struct mps_tcpopts *t,
		   uint64_t now)
{
	struct mps_opt o[MPS_TCPOPTS_MPTCP_MAX];
	struct mps_subflow *sf = &c->sf;
	unsigned int n = mps_parse_mptcp(c->st, s, t, o, MPS_TCPOPTS_MPTCP_MAX);
	struct mps_rx_map m = { 0 };
	int rc;

	if (c->reset || sf->state == MPS_SF_CLOSED) {
		/* A pending MP_FASTCLOSE says more than a bare RST would; let it go first. */
		if (!c->fastclose_pending)
			mps_queue_rst(c->st, s, &sf->local, &sf->remote);
		return;
	}
	if (sf->state == MPS_SF_SYN_SENT) {
		synsent_input(c, s, t, o, n, now);
		return;
	}
	/*
	 * Simultaneous open: the peer's SYN,ACK in SYN-RECEIVED acknowledges our
	 * SYN and completes the handshake (RFC 9293 figure 8; Linux lets it past
	 * the RFC 5961 SYN check the same way).
	 */
	if (sf->state == MPS_SF_SYN_RCVD && c->is_client &&
	    (s->flags & (MPS_TCP_SYN | MPS_TCP_ACK | MPS_TCP_RST)) == (MPS_TCP_SYN | MPS_TCP_ACK) &&
	    s->seq == sf->irs && s->ack == sf->iss + 1) {
		synrcvd_ack(c, s, NULL, 0, now);
		return;
	}
	/* Retransmitted SYN or SYN/ACK: our answer was lost, give it again. */
	if ((s->flags & MPS_TCP_SYN) && s->seq == sf->irs) {
		if (sf->state == MPS_SF_SYN_RCVD && !(s->flags & MPS_TCP_ACK))
			sf->snd_nxt = sf->iss;
		else
			sf->ack_now = true; /* the client's third ACK, or a challenge ACK */
		return;
	}
	/*
	 * RFC 7323 §5.3: a timestamp older than TS.Recent marks an old duplicate
	 * (PAWS). §5.5: after 24 idle days the peer's clock may have wrapped
	 * past TS.Recent's sign bit, so a TS.Recent that old is not trusted.
	 */
	if (sf->ts_ok && (t->present & MPS_TCPOPTS_TS) && !(s->flags & MPS_TCP_RST) &&
	    now - sf->ts_recent_at > MPS_PAWS_IDLE_US) {
		c->st->counters[MPS_CNT_PAWS_EXPIRED]++;
		sf->ts_recent = t->ts_val;
		sf->ts_recent_at = now;
	}
	if (sf->ts_ok && (t->present & MPS_TCPOPTS_TS) && !(s->flags & MPS_TCP_RST) &&
	    (int32_t)(t->ts_val - sf->ts_recent) < 0) {
		c->st->counters[MPS_CNT_IN_PAWS]++;
		sf->ack_now = true;
		return;
	}
	if (!seq_acceptable(c, s)) {
		c->st->counters[MPS_CNT_IN_OUT_OF_WINDOW]++;
		if (!(s->flags & MPS_TCP_RST))
			sf->ack_now = true;
		return;
	}
	if (s->flags & MPS_TCP_RST) {
		/* RFC 5961 §3.2: exact match resets, anything else in window is challenged. */
		if (s->seq == sf->rcv_nxt) {
			/* With a working join, only the initial subflow goes (RFC 8684 §3.3.6). */
			if (!fastclose_for_us(c, o, n) &&
			    mps_initial_down(c, MPS_SF_DOWN_RST, false, now))
				return;
			mps_conn_reset(c,
				       fastclose_for_us(c, o, n) ? MPS_RST_FASTCLOSE : MPS_RST_PEER,
				       now);
		} else
			sf->ack_now = true;
		return;
	}
	if (s->flags & MPS_TCP_SYN) {
		sf->ack_now = true; /* RFC 5961 §4.2: challenge ACK */
		return;
	}
	if (!(s->flags & MPS_TCP_ACK))
		return;
	if (fastclose_for_us(c, o, n)) {
		mps_conn_reset(c, MPS_RST_FASTCLOSE, now);
		mps_queue_rst(c->st, s, &sf->local, &sf->remote);
		return;
	}
	/* RFC 8684 §3.5: a key that is not ours proves nothing; the option is ignored. */
	if (c->mptcp && mps_find_opt(o, n, MPS_MPTCP_SUB_FASTCLOSE))
		c->st->counters[MPS_CNT_IN_FASTCLOSE_KEY]++;
	if (sf->state == MPS_SF_SYN_RCVD && !synrcvd_ack(c, s, o, n, now))
		return;
	/*
	 * RFC 8684 §3.7: a client that has not yet seen a DATA_ACK and gets a
	 * segment with no MPTCP option at all has a middlebox in the path.
	 */
	if (c->mptcp && c->is_client && !c->fully_established && n == 0 && t->nmptcp == 0)
		mps_fall_back(c, MPS_FALLBACK_NO_DSS, "server segments without DSS", now);
	if (c->rkey) {
		mps_fallback_input(c, s, t, o, n, now);
		if (c->reset)
			return;
	}
	if (sf->ts_ok && (t->present & MPS_TCPOPTS_TS) && SEQ_LEQ(s->seq, sf->rcv_nxt)) {
		sf->ts_recent = t->ts_val;
		sf->ts_recent_at = now;
	}
	if (!mps_process_ack(c, &c->sf, s, t, now) || c->reset)
		return;
	if (c->mptcp) {
		const struct mps_opt *dss = mps_find_opt(o, n, MPS_MPTCP_SUB_DSS);

		const struct mps_opt *aa = mps_find_opt(o, n, MPS_MPTCP_SUB_ADD_ADDR);

		if (dss && (dss->dss.flags & MPS_DSS_FLAG_A))
			mps_data_ack(c, &dss->dss, (uint32_t)s->win << sf->snd_wscale);
		const struct mps_opt *rm = mps_find_opt(o, n, MPS_MPTCP_SUB_RM_ADDR);
		const struct mps_opt *prio = mps_find_opt(o, n, MPS_MPTCP_SUB_PRIO);

		if (aa)
			mps_add_addr_input(c, &aa->add_addr, now);
		if (rm)
			mps_rm_addr_input(c, &rm->rm_addr, now);
		/* MP_PRIO applies to the subflow it arrives on (RFC 8684 §3.3.8). */
		if (prio && prio->prio_backup != sf->peer_backup) {
			sf->peer_backup = prio->prio_backup;
			mps_event(c->st, MPS_EV_SUBFLOW_PRIO, c, sf->peer_backup, now);
		}
		segment_mapping(c, o, n, &m);
		rc = handle_mapping(c, &m, SEQ_LEQ(s->seq, sf->rcv_nxt), now);
		if (c->reset)
			return;
		if (rc < 0)
			c->st->counters[MPS_CNT_IN_BAD_MAPPING]++;
	}
	if (sf->state != MPS_SF_ESTABLISHED && sf->state != MPS_SF_FIN_WAIT_1 &&
	    sf->state != MPS_SF_FIN_WAIT_2) {
		if (s->flags & MPS_TCP_FIN)
			sf->ack_now = true;
		return;
	}
	if (s->payload_len && SEQ_GT(s->seq, sf->rcv_nxt)) {
		c->st->counters[MPS_CNT_IN_OUT_OF_ORDER]++;
		ooo_store(c, s, &m);
		sf->ack_now = true; /* the duplicate ACK (RFC 5681 §4.2) */
		return;
	}
	take_in_order(c, s, &m, now);
	ooo_drain(c, now);
}

void mps_tcp_timers(struct mps_conn *c, uint64_t now)
{
	struct mps_subflow *sf = &c->sf;
	uint32_t mss, flight;

	mps_dtx_timer(c, now);
	mps_sched_close_check(c, now);

	if (c->app_closed && sf->state == MPS_SF_FIN_WAIT_2 && sf->tw_at == MPS_TIME_NEVER)
		sf->tw_at = now + MPS_FIN_WAIT2_US;
	if (sf->tw_at <= now) {
		sf->tw_at = MPS_TIME_NEVER;
		sf->state = MPS_SF_CLOSED;
		c->state = MPS_CONN_CLOSED;
		mps_event(c->st, MPS_EV_SUBFLOW_DOWN, c, 0, now);
		mps_event(c->st, MPS_EV_CONN_CLOSED, c, 0, now);
	}
	if (sf->delack_at <= now) {
		sf->delack_at = MPS_TIME_NEVER;
		sf->ack_now = true;
	}
	if (sf->rto_at > now)
		return;
	sf->rto_at = MPS_TIME_NEVER;
	/*
	 * RFC 9293 §3.8.6.1: a peer that keeps answering our zero-window probes
	 * keeps the connection open, however long its window stays shut.
	 */
	if (sf->snd_wnd == 0 && sf->probe_answered && sf->backoff >= MPS_MAX_BACKOFF / 2)
		sf->backoff = MPS_MAX_BACKOFF / 2;
	sf->probe_answered = false;
	if (sf->backoff >= (sf->state == MPS_SF_SYN_SENT || sf->state == MPS_SF_SYN_RCVD
				    ? MPS_SYN_RETRIES
				    : MPS_MAX_BACKOFF)) {
		/* A failed initial subflow ends the connection only if no join carries it on. */
		if (sf->state != MPS_SF_SYN_SENT && sf->state != MPS_SF_SYN_RCVD &&
		    mps_initial_down(c, MPS_SF_DOWN_TIMEOUT, true, now))
			return;
		c->fastclose_pending = c->mptcp && sf->state != MPS_SF_SYN_SENT;
		mps_conn_reset(c, MPS_RST_TIMEOUT, now);
		return;
	}
	c->st->counters[MPS_CNT_RETRANS_TIMEOUT]++;
	/* RFC 6298 §5.5-5.7 and RFC 5681 §3.1: back off, shrink, go back to snd_una. */
	mss = mps_payload_mss(c);
	flight = sf->snd_max - sf->snd_una;
	sf->backoff++;
	sf->rto = sf->rto * 2 > MPS_RTO_MAX_US ? MPS_RTO_MAX_US : sf->rto * 2;
	if (sf->state != MPS_SF_SYN_SENT && sf->state != MPS_SF_SYN_RCVD) {
		sf->ssthresh = flight / 2 > 2 * mss ? flight / 2 : 2 * mss;
		sf->cwnd = mss;
	}
	sf->snd_nxt = sf->snd_una;
	sf->rtt_timing = false;
	/* The first timeout marks the subflow as failing: its data also goes on the others. */
	if (sf->backoff == 1 && c->mptcp && c->njoins)
		mps_reinject(c, sf);
	sf->nsacked = 0; /* RFC 2018 §8: after a timeout, SACK information is not trusted */
	sf->recover = sf->snd_max;
	sf->rto_recovery = true;
	sf->in_recovery = false;
	sf->sack_recovery = false;
	sf->dupacks = 0;
}

uint64_t mps_tcp_next_timer(const struct mps_conn *c)
{
	const struct mps_subflow *sf = &c->sf;
	bool syn_state = sf->state == MPS_SF_SYN_SENT || sf->state == MPS_SF_SYN_RCVD;
	uint64_t t, dtx = c->dtx_at ? c->dtx_at : MPS_TIME_NEVER;

	/* Output that is due at once; each of these is cleared by mps_tcp_output(). */
	if (c->fastclose_pending)
		return 0;
	if (c->reset)
		return MPS_TIME_NEVER;
	if (c->dfin_resend)
		return 0;
	if (sf->state == MPS_SF_CLOSED)
		return dtx; /* the joins may carry on */
	if ((sf->ack_now && !syn_state) || (syn_state && sf->snd_nxt == sf->iss))
		return 0;
	t = sf->rto_at < sf->tw_at ? sf->rto_at : sf->tw_at;
	t = sf->delack_at < t ? sf->delack_at : t;
	return dtx < t ? dtx : t;
}
