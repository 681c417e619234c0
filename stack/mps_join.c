/*
 * MP_JOIN subflows (RFC 8684 §3.2) in both roles: the initiator sends the
 * join SYN (token, nonce, address ID, backup flag), checks the responder's
 * truncated HMAC, sends the 160-bit HMAC on its third ACK and repeats it
 * until the responder's fourth ACK arrives; the responder finds the
 * connection by token, checks limits and the third ACK's HMAC, and answers
 * every failure with RST + MP_TCPRST, counted.
 *
 * In this version a join subflow carries no data: it carries DATA_ACKs and
 * the connection-level options (ADD_ADDR, REMOVE_ADDR, MP_PRIO,
 * MP_FASTCLOSE), and is closed with a FIN exchange when the connection
 * ends. Data arriving on it resets the subflow (counted), so that the peer
 * sends it again on the initial subflow, which RFC 8684 §3.3.6 lets it do.
 */
#include <errno.h>
#include <string.h>

#include "mps_crypto.h"
#include "mps_internal.h"
#include "mps_tcp.h"
#include "prot/tcp.h"
#include "prot/wire.h"

#define JOIN_ACK_HMAC_LEN 20 /* 160 bits on the third ACK */

/* A segment that arrived on a join ahead of its rcv_nxt, with its DSS option. */
static void jooo_free(struct mps_conn *c, struct mps_subflow *sf)
{
	struct mps_join_ooo *q, *n;

	for (q = sf->jooo; q; q = n) {
		n = q->next;
		mps_free(c->st, q);
	}
	sf->jooo = NULL;
	sf->jooo_tail = NULL;
	sf->jooo_segs = 0;
	sf->jooo_bytes = 0;
}

void mps_cmap_free(struct mps_conn *c, struct mps_subflow *sf)
{
	mps_free(c->st, sf->rx_cbuf);
	sf->rx_cbuf = NULL;
	sf->rx_cdata = sf->rx_cdone = sf->rx_cgiven = 0;
	sf->rx_cverified = false;
}

int mps_cmap_start(struct mps_conn *c, struct mps_subflow *sf, uint64_t dsn, uint32_t ssn,
		   uint16_t len, uint16_t data, bool fin, uint16_t csum)
{
	mps_cmap_free(c, sf);
	/* At least one byte, so that a mapping of a lone DATA_FIN is held the same way. */
	sf->rx_cbuf = mps_alloc(c->st, data ? data : 1);
	if (!sf->rx_cbuf)
		return -ENOMEM;
	sf->rx_cdsn = dsn;
	sf->rx_cdata = data;
	sf->rx_cfin = fin;
	sf->rx_ccsum = csum;
	mps_dss_csum_init(&sf->rx_ck, dsn, ssn, len);
	return 0;
}

int mps_cmap_add(struct mps_conn *c, struct mps_subflow *sf, const uint8_t *p, uint32_t n)
{
	if (!sf->rx_cbuf || sf->rx_cverified || n > (uint32_t)(sf->rx_cdata - sf->rx_cdone))
		return -EINVAL;
	memcpy(sf->rx_cbuf + sf->rx_cdone, p, n);
	mps_dss_csum_add(&sf->rx_ck, p, n);
	sf->rx_cdone += (uint16_t)n;
	if (sf->rx_cdone < sf->rx_cdata)
		return 0;
	if (mps_dss_csum_final(&sf->rx_ck) != sf->rx_ccsum)
		return -EBADMSG;
	sf->rx_cverified = true;
	c->csum_seen = true;
	return 1;
}

bool mps_cmap_flush(struct mps_conn *c, struct mps_subflow *sf)
{
	uint32_t took;

	if (!sf->rx_cbuf || !sf->rx_cverified)
		return true;
	/* All of it or, ahead of a gap, none fits: the rest waits for the reader or the gap. */
	took = mps_conn_deliver(c, sf->rx_cdsn + sf->rx_cgiven, sf->rx_cbuf + sf->rx_cgiven,
				(uint32_t)(sf->rx_cdata - sf->rx_cgiven));
	sf->rx_cgiven += (uint16_t)took;
	if (sf->rx_cgiven < sf->rx_cdata)
		return false;
	if (sf->rx_cfin)
		mps_data_fin_check(c, true, sf->rx_cdsn + sf->rx_cdata);
	mps_cmap_free(c, sf);
	return true;
}

bool mps_seg_has_join(const struct mps_seg *s, const struct mps_tcpopts *t)
{
	unsigned int i;

	for (i = 0; i < t->nmptcp; i++)
		if (t->mptcp[i].len >= 3 &&
		    (s->opts[t->mptcp[i].off + 2] >> 4) == MPS_MPTCP_SUB_JOIN)
			return true;
	return false;
}

unsigned int mps_join_count(const struct mps_conn *c)
{
	unsigned int i, n = 0;

	for (i = 0; i < c->njoins; i++)
		n += c->joins[i]->state != MPS_SF_CLOSED;
	return n;
}

/* The local address ID of local: 0 for the initial subflow's address, else one per address. */
static uint8_t local_id_for(struct mps_conn *c, const struct mps_addr *local)
{
	struct mps_addr a = *local, b;
	unsigned int i;
	int id = mps_pm_local_id(c, local);

	if (id >= 0)
		return (uint8_t)id; /* the ID it has, or will have, in our ADD_ADDR */
	a.port = 0;
	b = c->sf.local;
	b.port = 0;
	if (mps_addr_eq(&a, &b))
		return 0;
	for (i = 0; i < c->njoins; i++) {
		b = c->joins[i]->local;
		b.port = 0;
		if (mps_addr_eq(&a, &b))
			return c->joins[i]->id;
	}
	return ++c->next_local_id;
}

/* Joins need both keys: a server has them once established, a client after a DATA_ACK. */
static bool conn_joinable(const struct mps_conn *c)
{
	return c->mptcp && !c->reset && c->state == MPS_CONN_ESTABLISHED &&
	       (!c->is_client || c->fully_established);
}

static void sweep(struct mps_conn *c)
{
	unsigned int i, k = 0;

	for (i = 0; i < c->njoins; i++) {
		if (c->joins[i]->state == MPS_SF_CLOSED) {
			jooo_free(c, c->joins[i]);
			mps_cmap_free(c, c->joins[i]);
			mps_free(c->st, c->joins[i]);
		} else {
			c->joins[k++] = c->joins[i];
		}
	}
	c->njoins = (uint8_t)k;
}

static struct mps_subflow *join_new(struct mps_conn *c, const struct mps_addr *local,
				    const struct mps_addr *remote)
{
	struct mps_subflow *sf;

	sweep(c);
	if (c->njoins == MPS_MAX_SUBFLOWS - 1)
		return NULL;
	sf = mps_alloc(c->st, sizeof(*sf));
	if (!sf)
		return NULL;
	sf->conn = c;
	sf->serial = c->next_serial++;
	sf->is_join = true;
	sf->local = *local;
	sf->remote = *remote;
	sf->id = local_id_for(c, local);
	sf->iss = (uint32_t)mps_rand64(c->st);
	sf->snd_una = sf->snd_nxt = sf->snd_max = sf->iss;
	sf->lnonce = (uint32_t)mps_rand64(c->st);
	sf->rto = MPS_RTO_INIT_US;
	sf->rto_at = MPS_TIME_NEVER;
	sf->tw_at = MPS_TIME_NEVER;
	sf->delack_at = MPS_TIME_NEVER;
	c->joins[c->njoins++] = sf;
	return sf;
}

/* A subflow goes away: reported once, freed by the next sweep. */
static void sf_down(struct mps_conn *c, struct mps_subflow *sf, int reason, uint64_t now)
{
	if (sf->state == MPS_SF_CLOSED)
		return;
	/* What it sent and was not acknowledged goes on the other subflows. */
	if (SEQ_LT(sf->snd_una, sf->snd_max))
		mps_reinject(c, sf);
	sf->state = MPS_SF_CLOSED;
	sf->rto_at = MPS_TIME_NEVER;
	sf->tw_at = MPS_TIME_NEVER;
	sf->ack_now = false;
	mps_event_sf(c->st, MPS_EV_SUBFLOW_DOWN, c, sf->id, reason, now);
	mps_pm_join_down(c, sf, reason, now);
	/* The last subflow of a connection whose initial one is gone: the connection goes too. */
	if (c->sf.state == MPS_SF_CLOSED && !c->reset && c->state != MPS_CONN_CLOSED &&
	    !mps_join_count(c) && !(c->data_fin_sent && c->data_fin_acked && c->data_fin_rcvd))
		mps_conn_reset(c, reason == MPS_SF_DOWN_RST ? MPS_RST_PEER : MPS_RST_TIMEOUT, now);
}

/* Queue an RST (with MP_TCPRST reason, or -1 for none) on a subflow we are dropping. */
void mps_sf_rst(struct mps_conn *c, struct mps_subflow *sf, int reason)
{
	struct mps_stack *st = c->st;
	struct mps_rst *r;

	if (st->nrsts == MPS_MAX_RST_QUEUE) {
		st->counters[MPS_CNT_OUT_RST_DROPPED]++;
		return;
	}
	r = &st->rsts[st->nrsts++];
	r->local = sf->local;
	r->remote = sf->remote;
	r->seq = sf->snd_nxt;
	r->ack = sf->rcv_nxt;
	r->flags = MPS_TCP_RST | MPS_TCP_ACK;
	r->tcprst = reason;
	r->mp_fail = false;
	r->fastclose = false;
}

static void syn_options(struct mps_conn *c, struct mps_subflow *sf, const struct mps_tcpopts *t,
			bool synack)
{
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
	sf->cwnd = MPS_INIT_CWND_SEGS *
		   (c->st->cfg.mss < sf->peer_mss ? c->st->cfg.mss : sf->peer_mss);
	sf->ssthresh = UINT32_MAX;
}

int mps_join(struct mps_conn *c, const struct mps_addr *local, const struct mps_addr *remote,
	     bool backup)
{
	static const uint8_t zero[16];
	struct mps_subflow *sf;
	struct mps_addr l;
	int tries;

	if (!local || !remote || (local->family != 4 && local->family != 6) ||
	    local->family != remote->family || local->family != c->sf.local.family ||
	    remote->port == 0 || !memcmp(local->addr, zero, local->family == 4 ? 4 : 16) ||
	    !memcmp(remote->addr, zero, remote->family == 4 ? 4 : 16))
		return -EINVAL;
	if (!conn_joinable(c))
		return -ENOTCONN;
	if (1 + mps_join_count(c) >= c->st->cfg.max_subflows)
		return -ENOSPC;
	l = *local;
	for (tries = 0; l.port == 0 || !mps_tuple_free(c->st, &l, remote); tries++) {
		if (local->port || tries == 64)
			return -EADDRINUSE;
		l.port = (uint16_t)(49152 + mps_rand64(c->st) % 16384);
	}
	sf = join_new(c, &l, remote);
	if (!sf)
		return -ENOMEM;
	sf->backup = backup;
	sf->join_ours = true;
	sf->state = MPS_SF_SYN_SENT;
	sf->rcv_wscale = mps_wscale_for(c->st->cfg.rcvbuf_max);
	return 0;
}

int mps_set_backup(struct mps_conn *c, unsigned int idx, bool backup)
{
	struct mps_subflow *sf;
	unsigned int i, k = 0;

	if (!c)
		return -EINVAL;
	sf = &c->sf;
	if (idx != 0) {
		/* Live joins in creation order, as mps_subflow_info() counts them. */
		for (sf = NULL, i = 0; i < c->njoins && !sf; i++)
			if (c->joins[i]->state != MPS_SF_CLOSED && ++k == idx)
				sf = c->joins[i];
		if (!sf)
			return -ENOENT;
	}
	if (!c->mptcp || c->reset || !mps_sf_usable(sf))
		return -ENOTCONN;
	if (sf->backup == backup)
		return 0;
	sf->backup = backup;
	sf->prio_pending = true;
	sf->ack_now = true;
	/* The call has no clock: the event's time is that of the stack's last input or output. */
	mps_event_sf(c->st, MPS_EV_SUBFLOW_PRIO_OUT, c, sf->id, backup, 0);
	return 0;
}

void mps_join_syn_input(struct mps_stack *st, const struct mps_seg *s, const struct mps_tcpopts *t,
			const struct mps_addr *local, const struct mps_addr *remote, uint64_t now)
{
	struct mps_opt opts[MPS_TCPOPTS_MPTCP_MAX];
	const struct mps_opt *join;
	struct mps_subflow *sf;
	struct mps_conn *c;
	unsigned int n;

	(void)now;
	n = mps_parse_mptcp(st, s, t, opts, MPS_TCPOPTS_MPTCP_MAX);
	join = mps_find_opt(opts, n, MPS_MPTCP_SUB_JOIN);
	if (!join || join->join.form != MPS_JOIN_SYN) {
		/* Malformed (already counted per reason); a join never becomes plain TCP. */
		mps_queue_rst_reason(st, s, local, remote, MPS_TCPRST_MPTCP_ERR);
		return;
	}
	c = mps_conn_by_token(st, join->join.token);
	if (!c) {
		st->counters[MPS_CNT_IN_JOIN_TOKEN]++;
		mps_queue_rst_reason(st, s, local, remote, MPS_TCPRST_MPTCP_ERR);
		return;
	}
	/* A join comes to the connection's own port, or to one we announced with its address. */
	if (!conn_joinable(c) || local->family != c->sf.local.family ||
	    !mps_pm_join_port_ok(c, local)) {
		st->counters[MPS_CNT_IN_JOIN_REFUSED]++;
		mps_queue_rst_reason(st, s, local, remote, MPS_TCPRST_ADMIN);
		return;
	}
	if (1 + mps_join_count(c) >= st->cfg.max_subflows) {
		st->counters[MPS_CNT_IN_JOIN_LIMIT]++;
		mps_queue_rst_reason(st, s, local, remote, MPS_TCPRST_RESOURCES);
		return;
	}
	sf = join_new(c, local, remote);
	if (!sf) {
		st->counters[MPS_CNT_IN_ACCEPT_FULL]++;
		return; /* the peer retries its SYN */
	}
	sf->state = MPS_SF_SYN_RCVD;
	sf->irs = s->seq;
	sf->rcv_nxt = s->seq + 1;
	sf->snd_wnd = s->win;
	sf->snd_wl1 = s->seq;
	sf->snd_wl2 = s->ack;
	sf->rnonce = join->join.nonce;
	sf->remote_id = join->join.addr_id;
	sf->peer_backup = join->join.backup;
	syn_options(c, sf, t, false);
}

/* Options of one segment of a join subflow; returns their length, a multiple of 4. */
static int build_opts(struct mps_conn *c, struct mps_subflow *sf, uint8_t *p, uint64_t now,
		      uint8_t flags)
{
	uint8_t h[MPS_HMAC_LEN];
	struct mps_opt o;
	int n = 0, k, rc = 0;

	if (flags & MPS_TCP_SYN) {
		p[n++] = MPS_TCPOPT_MSS;
		p[n++] = MPS_TCPOLEN_MSS;
		mps_put_be16(p + n, c->st->cfg.mss);
		n += 2;
	}
	if ((flags & MPS_TCP_SYN) &&
	    (sf->state == MPS_SF_SYN_SENT || sf->snd_wscale || sf->rcv_wscale)) {
		p[n++] = MPS_TCPOPT_NOP;
		p[n++] = MPS_TCPOPT_WS;
		p[n++] = MPS_TCPOLEN_WS;
		p[n++] = sf->rcv_wscale;
	}
	/* SACK on joins too, as Linux offers it in every SYN. */
	if ((flags & MPS_TCP_SYN) && (sf->state == MPS_SF_SYN_SENT || sf->sack_ok)) {
		p[n++] = MPS_TCPOPT_NOP;
		p[n++] = MPS_TCPOPT_NOP;
		p[n++] = MPS_TCPOPT_SACK_PERM;
		p[n++] = MPS_TCPOLEN_SACK_PERM;
	}
	if (sf->ts_ok || sf->state == MPS_SF_SYN_SENT) {
		p[n++] = MPS_TCPOPT_NOP;
		p[n++] = MPS_TCPOPT_NOP;
		p[n++] = MPS_TCPOPT_TS;
		p[n++] = MPS_TCPOLEN_TS;
		mps_put_be32(p + n, (uint32_t)(now / 1000));
		mps_put_be32(p + n + 4, sf->state == MPS_SF_SYN_SENT ? 0 : sf->ts_recent);
		n += 8;
	}
	memset(&o, 0, sizeof(o));
	if (sf->state == MPS_SF_SYN_SENT) {
		o.subtype = MPS_MPTCP_SUB_JOIN;
		o.join.form = MPS_JOIN_SYN;
		o.join.backup = sf->backup;
		o.join.addr_id = sf->id;
		o.join.token = c->rtoken;
		o.join.nonce = sf->lnonce;
	} else if (sf->state == MPS_SF_SYN_RCVD) {
		o.subtype = MPS_MPTCP_SUB_JOIN;
		o.join.form = MPS_JOIN_SYNACK;
		o.join.backup = sf->backup;
		o.join.addr_id = sf->id;
		o.join.nonce = sf->lnonce;
		o.join.hmac64 = mps_join_hmac64(c->lkey, c->rkey, sf->lnonce, sf->rnonce, &rc);
	} else if (sf->join_pre_est) {
		o.subtype = MPS_MPTCP_SUB_JOIN;
		o.join.form = MPS_JOIN_ACK;
		rc = mps_join_hmac(c->lkey, c->rkey, sf->lnonce, sf->rnonce, h);
		memcpy(o.join.hmac, h, JOIN_ACK_HMAC_LEN);
	} else if (c->mptcp && flags == MPS_TCP_ACK && sf->prio_pending) {
		/* Alone on a pure ACK, as ADD_ADDR: beside a full DSS and timestamps there is no room. */
		o.subtype = MPS_MPTCP_SUB_PRIO;
		o.prio_backup = sf->backup;
		sf->prio_pending = false;
	} else if (c->sf.state == MPS_SF_CLOSED && c->mptcp && flags == MPS_TCP_ACK &&
		   c->echo_pending) {
		/* With the initial subflow gone, its connection-level options go on a join. */
		o.subtype = MPS_MPTCP_SUB_ADD_ADDR;
		o.add_addr = c->echo;
		c->echo_pending = false;
	} else if (c->sf.state == MPS_SF_CLOSED && c->mptcp && flags == MPS_TCP_ACK &&
		   c->announce_idx >= 0) {
		/* As on the initial subflow: the timestamps give way to a v6 port. */
		if (mps_pm_announce_wants_room(c, (unsigned int)(MPS_MAX_OPTS - n)))
			n = 0;
		rc = mps_pm_announce_opt(c, &o, (unsigned int)(MPS_MAX_OPTS - n));
	} else if (c->sf.state == MPS_SF_CLOSED && c->mptcp && flags == MPS_TCP_ACK && c->nrm_ids) {
		o.subtype = MPS_MPTCP_SUB_RM_ADDR;
		o.rm_addr.n = c->nrm_ids;
		memcpy(o.rm_addr.ids, c->rm_ids, c->nrm_ids);
		c->nrm_ids = 0;
	} else if (c->mptcp && !(flags & MPS_TCP_RST)) {
		o.subtype = MPS_MPTCP_SUB_DSS;
		o.dss.flags = MPS_DSS_FLAG_A | MPS_DSS_FLAG_a;
		o.dss.data_ack = c->rcv_nxt_dsn;
		if (flags == MPS_TCP_ACK && mps_sack_wants_room(c, sf))
			o.dss.flags = MPS_DSS_FLAG_A;
	}
	if (rc < 0)
		return rc;
	if (o.subtype) {
		k = mps_opt_build(&o, p + n, (size_t)(MPS_MAX_OPTS - n));
		if (k < 0)
			return k;
		n += k;
	}
	if (flags == MPS_TCP_ACK && !sf->join_pre_est)
		n = mps_add_sack(c, sf, p, n, flags, false);
	while (n % 4)
		p[n++] = MPS_TCPOPT_NOP;
	return n;
}

static int send_seg(struct mps_conn *c, struct mps_subflow *sf, uint64_t now, uint8_t flags,
		    uint8_t *buf, size_t cap)
{
	uint8_t opts[MPS_MAX_OPTS];
	uint32_t w = mps_rcv_space(c);
	struct mps_pkt_spec ps = { .local = &sf->local,
				   .remote = &sf->remote,
				   .seq = (flags & MPS_TCP_SYN) ? sf->iss : sf->snd_nxt,
				   .ack = (flags & MPS_TCP_ACK) ? sf->rcv_nxt : 0,
				   .flags = flags,
				   .opts = opts };

	if (!(flags & MPS_TCP_SYN))
		w >>= sf->rcv_wscale;
	ps.win = w > 0xffff ? 0xffff : (uint16_t)w;
	ps.optlen = build_opts(c, sf, opts, now, flags);
	if (ps.optlen < 0)
		return ps.optlen;
	sf->ack_now = false;
	sf->unacked_segs = 0;
	sf->delack_at = MPS_TIME_NEVER;
	return mps_tcp_write_packet(c->st, &ps, buf, cap);
}

/* Our FIN goes once the connection is over at the data level, or the peer closed the subflow. */
static bool fin_due(const struct mps_conn *c, const struct mps_subflow *sf)
{
	if (sf->fin_sent || sf->join_pre_est || sf->snd_una != sf->snd_max ||
	    (sf->state != MPS_SF_ESTABLISHED && sf->state != MPS_SF_CLOSE_WAIT))
		return false;
	return sf->fin_rcvd || c->state == MPS_CONN_CLOSED ||
	       (c->data_fin_sent && c->data_fin_acked && c->data_fin_rcvd);
}

static int sf_output(struct mps_conn *c, struct mps_subflow *sf, uint64_t now, uint8_t *buf,
		     size_t cap)
{
	int rc;

	if (sf->state == MPS_SF_SYN_SENT || sf->state == MPS_SF_SYN_RCVD) {
		if (sf->snd_nxt != sf->iss)
			return 0;
		rc = send_seg(c, sf, now,
			      MPS_TCP_SYN | (sf->state == MPS_SF_SYN_RCVD ? MPS_TCP_ACK : 0), buf,
			      cap);
		if (rc < 0)
			return rc;
		if (sf->snd_max != sf->iss)
			sf->retransmits++;
		sf->snd_nxt = sf->snd_max = sf->iss + 1;
		if (sf->backoff == 0 && !sf->rtt_timing) {
			sf->rtt_timing = true;
			sf->rtt_start = now;
		}
		if (sf->rto_at == MPS_TIME_NEVER)
			sf->rto_at = now + sf->rto;
		return rc;
	}
	if (fin_due(c, sf) || (sf->fin_sent && sf->snd_nxt == sf->fin_seq)) {
		if (!sf->fin_sent) {
			sf->fin_sent = true;
			sf->fin_seq = sf->snd_max;
			sf->state = sf->state == MPS_SF_CLOSE_WAIT ? MPS_SF_LAST_ACK
								   : MPS_SF_FIN_WAIT_1;
		}
		rc = send_seg(c, sf, now, MPS_TCP_FIN | MPS_TCP_ACK, buf, cap);
		if (rc < 0)
			return rc;
		sf->snd_nxt = sf->snd_max = sf->fin_seq + 1;
		if (sf->rto_at == MPS_TIME_NEVER)
			sf->rto_at = now + sf->rto;
		return rc;
	}
	if (!sf->join_pre_est && sf->state != MPS_SF_TIME_WAIT) {
		rc = mps_tcp_send_data(c, sf, now, buf, cap);
		if (rc != 0)
			return rc;
	}
	if (c->dfin_resend && c->dfin_serial == sf->serial && !sf->join_pre_est)
		return mps_tcp_send_data_fin(c, sf, now, buf, cap);
	if (!sf->ack_now)
		return 0;
	rc = send_seg(c, sf, now, MPS_TCP_ACK, buf, cap);
	/* One connection-level option per pure ACK: another one pending goes on the next. */
	if (rc > 0 && !sf->join_pre_est &&
	    (sf->prio_pending || (c->sf.state == MPS_SF_CLOSED && c->mptcp &&
				  (c->echo_pending || c->nrm_ids || c->announce_idx >= 0))))
		sf->ack_now = true;
	/* The third ACK is repeated on the timer until the fourth ACK comes. */
	if (rc > 0 && sf->join_pre_est && sf->rto_at == MPS_TIME_NEVER)
		sf->rto_at = now + sf->rto;
	return rc;
}

/*
 * Verified mappings still held because the connection had no room (a full
 * receive buffer, or no window ahead of a gap) go on as soon as it has
 * some, not only when their subflow brings more; a DATA_ACK tells the peer.
 */
static void cmap_retry(struct mps_conn *c)
{
	uint64_t before = c->rcv_nxt_dsn;
	unsigned int i;

	if (c->sf.rx_cverified)
		mps_cmap_flush(c, &c->sf);
	for (i = 0; i < c->njoins; i++)
		if (c->joins[i]->rx_cverified)
			mps_cmap_flush(c, c->joins[i]);
	if (c->rcv_nxt_dsn != before)
		mps_conn_ack_now(c);
}

int mps_join_output(struct mps_conn *c, uint64_t now, uint8_t *buf, size_t cap, int *sf_id)
{
	unsigned int i;
	int rc;

	if (c->csum && c->mptcp && !c->reset)
		cmap_retry(c);

	for (i = 0; i < c->njoins; i++) {
		struct mps_subflow *sf = c->joins[i];

		if (sf->state == MPS_SF_CLOSED || c->reset)
			continue;
		rc = sf_output(c, sf, now, buf, cap);
		if (rc != 0) {
			*sf_id = sf->id;
			return rc;
		}
	}
	return 0;
}

/* RFC 6298 §5.5-5.7 and RFC 5681 §3.1 for data; the first timeout also reinjects. */
static void data_timeout(struct mps_conn *c, struct mps_subflow *sf)
{
	uint32_t mss = mps_sf_mss(c, sf), flight = sf->snd_max - sf->snd_una;

	sf->ssthresh = flight / 2 > 2 * mss ? flight / 2 : 2 * mss;
	sf->cwnd = mss;
	sf->snd_nxt = sf->snd_una;
	sf->in_recovery = false;
	sf->sack_recovery = false;
	sf->recover = sf->snd_max;
	sf->rto_recovery = true; /* as on the initial subflow (mps_tcp.c) */
	sf->dupacks = 0;
	sf->nsacked = 0;
	sf->retransmits++;
	if (sf->backoff == 1)
		mps_reinject(c, sf);
}

void mps_join_timers(struct mps_conn *c, uint64_t now)
{
	unsigned int i;

	for (i = 0; i < c->njoins; i++) {
		struct mps_subflow *sf = c->joins[i];
		bool hs = sf->state == MPS_SF_SYN_SENT || sf->state == MPS_SF_SYN_RCVD ||
			  sf->join_pre_est;

		if (sf->state == MPS_SF_CLOSED)
			continue;
		if (c->reset) {
			/*
			 * The connection is gone: so is every subflow (RFC 8684 §3.5).
			 * After our abort each RST carries MP_FASTCLOSE, as Linux
			 * sends it, so the peer learns of it on any subflow.
			 */
			if (sf->state != MPS_SF_SYN_SENT && !sf->join_pre_est) {
				unsigned int before = c->st->nrsts;

				mps_sf_rst(c, sf, MPS_TCPRST_UNSPEC);
				if (c->fastclose_joins && c->st->nrsts > before) {
					c->st->rsts[c->st->nrsts - 1].fastclose = true;
					c->st->rsts[c->st->nrsts - 1].fc_key = c->rkey;
				}
			} else if (sf->state != MPS_SF_SYN_SENT) {
				mps_sf_rst(c, sf, MPS_TCPRST_UNSPEC);
			}
			sf_down(c, sf, MPS_SF_DOWN_CONN, now);
			continue;
		}
		/* As the initial subflow's (mps_tcp.c): an orphan's FIN-WAIT-2 ends. */
		if (c->app_closed && sf->state == MPS_SF_FIN_WAIT_2 && sf->tw_at == MPS_TIME_NEVER)
			sf->tw_at = now + MPS_FIN_WAIT2_US;
		if (sf->tw_at <= now) {
			sf_down(c, sf, MPS_SF_DOWN_CLOSED, now);
			continue;
		}
		/* A join still in its handshake when both DATA_FINs are acknowledged is not needed. */
		if (hs && c->data_fin_sent && c->data_fin_acked && c->data_fin_rcvd) {
			if (sf->state != MPS_SF_SYN_SENT)
				mps_sf_rst(c, sf, MPS_TCPRST_UNSPEC);
			sf_down(c, sf, MPS_SF_DOWN_CLOSED, now);
			continue;
		}
		if (mps_sf_stale(c, sf)) {
			mps_sf_rst(c, sf, MPS_TCPRST_PERF);
			sf_down(c, sf, MPS_SF_DOWN_STALE, now);
			continue;
		}
		if (sf->delack_at <= now) {
			sf->delack_at = MPS_TIME_NEVER;
			sf->ack_now = true;
		}
		if (sf->rto_at > now)
			continue;
		sf->rto_at = MPS_TIME_NEVER;
		if (sf->backoff >= (hs ? MPS_SYN_RETRIES : MPS_MAX_BACKOFF)) {
			if (sf->state != MPS_SF_SYN_SENT)
				mps_sf_rst(c, sf, MPS_TCPRST_UNSPEC);
			sf_down(c, sf, MPS_SF_DOWN_TIMEOUT, now);
			continue;
		}
		c->st->counters[MPS_CNT_RETRANS_TIMEOUT]++;
		sf->backoff++;
		sf->rto = sf->rto * 2 > MPS_RTO_MAX_US ? MPS_RTO_MAX_US : sf->rto * 2;
		sf->rtt_timing = false;
		if (sf->state == MPS_SF_SYN_SENT || sf->state == MPS_SF_SYN_RCVD)
			sf->snd_nxt = sf->iss;
		else if (sf->join_pre_est)
			sf->ack_now = true;
		else if (sf->fin_sent && SEQ_LEQ(sf->snd_una, sf->fin_seq))
			sf->snd_nxt = sf->fin_seq;
		else if (SEQ_LT(sf->snd_una, sf->snd_max))
			data_timeout(c, sf);
		if (sf->join_pre_est || sf->fin_sent)
			sf->retransmits++;
	}
	sweep(c);
	/* A subflow gone may have been the last to hold old data in the send buffer. */
	mps_snd_trim(c);
}

uint64_t mps_join_next_timer(const struct mps_conn *c)
{
	uint64_t t = MPS_TIME_NEVER;
	unsigned int i;

	for (i = 0; i < c->njoins; i++) {
		const struct mps_subflow *sf = c->joins[i];

		if (sf->state == MPS_SF_CLOSED)
			continue;
		if (c->reset || sf->ack_now || fin_due(c, sf) ||
		    (sf->fin_sent && sf->snd_nxt == sf->fin_seq) ||
		    ((sf->state == MPS_SF_SYN_SENT || sf->state == MPS_SF_SYN_RCVD) &&
		     sf->snd_nxt == sf->iss))
			return 0;
		if (sf->rto_at < t)
			t = sf->rto_at;
		if (sf->tw_at < t)
			t = sf->tw_at;
		if (sf->delack_at < t)
			t = sf->delack_at;
	}
	return t;
}

void mps_join_close_id(struct mps_conn *c, uint8_t id, bool remote, uint64_t now)
{
	unsigned int i;

	for (i = 0; i < c->njoins; i++) {
		struct mps_subflow *sf = c->joins[i];

		if (sf->state == MPS_SF_CLOSED || (remote ? sf->remote_id : sf->id) != id)
			continue;
		if (sf->state != MPS_SF_SYN_SENT)
			mps_sf_rst(c, sf, MPS_TCPRST_ADMIN);
		sf_down(c, sf, MPS_SF_DOWN_REMOVED, now);
	}
}

bool mps_join_closing(const struct mps_conn *c)
{
	unsigned int i;

	/* One in TIME-WAIT still owes the ACK of the peer's FIN until it has sent it. */
	for (i = 0; i < c->njoins; i++)
		if (c->joins[i]->state != MPS_SF_CLOSED &&
		    (c->joins[i]->state != MPS_SF_TIME_WAIT || c->joins[i]->ack_now) && !c->reset)
			return true;
	return false;
}

void mps_join_gone(struct mps_conn *c, uint64_t now)
{
	unsigned int i;

	/* A subflow still in TIME-WAIT when its connection goes is reported as closed. */
	for (i = 0; i < c->njoins; i++)
		sf_down(c, c->joins[i],
			c->joins[i]->state == MPS_SF_TIME_WAIT ? MPS_SF_DOWN_CLOSED
							       : MPS_SF_DOWN_CONN,
			now);
}

void mps_join_free_all(struct mps_conn *c)
{
	unsigned int i;

	for (i = 0; i < c->njoins; i++) {
		jooo_free(c, c->joins[i]);
		mps_cmap_free(c, c->joins[i]);
		mps_free(c->st, c->joins[i]);
	}
	c->njoins = 0;
	mps_cmap_free(c, &c->sf);
}

static void subflow_up(struct mps_conn *c, struct mps_subflow *sf, uint64_t now)
{
	sf->join_pre_est = false;
	sf->rto_at = MPS_TIME_NEVER;
	sf->backoff = 0;
	sf->rto = sf->srtt ? sf->rto : MPS_RTO_INIT_US;
	sf->join_up = true;
	mps_event_sf(c->st, MPS_EV_SUBFLOW_UP, c, sf->id, 0, now);
	if (sf->join_ours)
		mps_pm_join_up(c, sf);
}

/* SYN-SENT: the SYN/ACK must carry MP_JOIN with the responder's truncated HMAC. */
static void synsent_input(struct mps_conn *c, struct mps_subflow *sf, const struct mps_seg *s,
			  const struct mps_tcpopts *t, const struct mps_opt *o, unsigned int n,
			  uint64_t now)
{
	const struct mps_opt *join = mps_find_opt(o, n, MPS_MPTCP_SUB_JOIN);
	bool ack_ok = (s->flags & MPS_TCP_ACK) && s->ack == sf->iss + 1;
	uint64_t h;
	int rc = 0;

	if ((s->flags & MPS_TCP_ACK) && !ack_ok) {
		mps_queue_rst(c->st, s, &sf->local, &sf->remote);
		return;
	}
	if (s->flags & MPS_TCP_RST) {
		if (ack_ok)
			sf_down(c, sf, MPS_SF_DOWN_RST, now); /* a refused join */
		return;
	}
	if (!(s->flags & MPS_TCP_SYN) || !ack_ok)
		return;
	if (!join || join->join.form != MPS_JOIN_SYNACK) {
		c->st->counters[MPS_CNT_IN_JOIN_HMAC]++;
		mps_queue_rst_reason(c->st, s, &sf->local, &sf->remote, MPS_TCPRST_MPTCP_ERR);
		sf_down(c, sf, MPS_SF_DOWN_NO_JOIN, now);
		return;
	}
	h = mps_join_hmac64(c->rkey, c->lkey, join->join.nonce, sf->lnonce, &rc);
	if (rc < 0 || h != join->join.hmac64) {
		c->st->counters[MPS_CNT_IN_JOIN_HMAC]++;
		mps_queue_rst_reason(c->st, s, &sf->local, &sf->remote, MPS_TCPRST_MPTCP_ERR);
		sf_down(c, sf, MPS_SF_DOWN_HMAC, now);
		return;
	}
	sf->irs = s->seq;
	sf->rcv_nxt = s->seq + 1;
	sf->snd_una = sf->snd_nxt = s->ack;
	sf->snd_wnd = s->win;
	sf->snd_wl1 = s->seq;
	sf->snd_wl2 = s->ack;
	sf->rnonce = join->join.nonce;
	sf->remote_id = join->join.addr_id;
	sf->peer_backup = join->join.backup; /* the responder's flag B on its SYN/ACK */
	syn_options(c, sf, t, true);
	if (sf->rtt_timing && sf->backoff == 0)
		mps_rtt_sample(sf, (uint32_t)(now - sf->rtt_start));
	sf->rtt_timing = false;
	sf->rto_at = MPS_TIME_NEVER;
	sf->backoff = 0;
	sf->state = MPS_SF_ESTABLISHED;
	sf->join_pre_est = true; /* no data before the fourth ACK (RFC 8684 §3.2) */
	sf->ack_now = true;
}

/* SYN-RECEIVED: the third ACK must carry the initiator's 160-bit HMAC. */
static void synrcvd_ack(struct mps_conn *c, struct mps_subflow *sf, const struct mps_seg *s,
			const struct mps_opt *o, unsigned int n, uint64_t now)
{
	const struct mps_opt *join = mps_find_opt(o, n, MPS_MPTCP_SUB_JOIN);
	uint8_t h[MPS_HMAC_LEN];

	if (s->ack != sf->iss + 1) {
		mps_queue_rst(c->st, s, &sf->local, &sf->remote);
		return;
	}
	if (!join || join->join.form != MPS_JOIN_ACK ||
	    mps_join_hmac(c->rkey, c->lkey, sf->rnonce, sf->lnonce, h) != 0 ||
	    memcmp(h, join->join.hmac, JOIN_ACK_HMAC_LEN) != 0) {
		c->st->counters[MPS_CNT_IN_JOIN_HMAC]++;
		mps_queue_rst_reason(c->st, s, &sf->local, &sf->remote, MPS_TCPRST_MPTCP_ERR);
		sf_down(c, sf, MPS_SF_DOWN_HMAC, now);
		return;
	}
	if (sf->rtt_timing && sf->backoff == 0)
		mps_rtt_sample(sf, (uint32_t)(now - sf->rtt_start));
	sf->rtt_timing = false;
	sf->snd_una = s->ack;
	sf->snd_wnd = (uint32_t)s->win << sf->snd_wscale;
	sf->snd_wl1 = s->seq;
	sf->snd_wl2 = s->ack;
	sf->state = MPS_SF_ESTABLISHED;
	sf->ack_now = true; /* the fourth ACK */
	subflow_up(c, sf, now);
}

/* Our FIN acknowledged. */
static void fin_acked(struct mps_conn *c, struct mps_subflow *sf, uint64_t now)
{
	sf->rto_at = MPS_TIME_NEVER;
	sf->backoff = 0;
	switch (sf->state) {
	case MPS_SF_FIN_WAIT_1:
		sf->state = MPS_SF_FIN_WAIT_2;
		break;
	case MPS_SF_CLOSING:
		sf->state = MPS_SF_TIME_WAIT;
		sf->tw_at = now + 2ULL * c->st->cfg.msl_us;
		break;
	case MPS_SF_LAST_ACK:
		sf_down(c, sf, MPS_SF_DOWN_CLOSED, now);
		break;
	default:
		break;
	}
}

static void fin_input(struct mps_conn *c, struct mps_subflow *sf, uint64_t now)
{
	sf->rcv_nxt++;
	sf->fin_rcvd = true;
	sf->ack_now = true;
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

/* Connection-level options that may arrive on any subflow. */
static void conn_options(struct mps_conn *c, struct mps_subflow *sf, const struct mps_seg *s,
			 const struct mps_opt *o, unsigned int n, uint64_t now)
{
	const struct mps_opt *dss = mps_find_opt(o, n, MPS_MPTCP_SUB_DSS);
	const struct mps_opt *aa = mps_find_opt(o, n, MPS_MPTCP_SUB_ADD_ADDR);
	const struct mps_opt *rm = mps_find_opt(o, n, MPS_MPTCP_SUB_RM_ADDR);
	const struct mps_opt *prio = mps_find_opt(o, n, MPS_MPTCP_SUB_PRIO);

	if (!c->mptcp)
		return;
	if (dss && (dss->dss.flags & MPS_DSS_FLAG_A))
		mps_data_ack(c, &dss->dss, (uint32_t)s->win << sf->snd_wscale);
	if (aa)
		mps_add_addr_input(c, &aa->add_addr, now);
	if (rm)
		mps_rm_addr_input(c, &rm->rm_addr, now);
	if (prio && prio->prio_backup != sf->peer_backup) {
		sf->peer_backup = prio->prio_backup;
		mps_event_sf(c->st, MPS_EV_SUBFLOW_PRIO, c, sf->id, sf->peer_backup, now);
	}
}

/* Another subflow than sf can carry the connection's data. */
static bool other_working(const struct mps_conn *c, const struct mps_subflow *sf)
{
	unsigned int i;

	if (sf != &c->sf && mps_sf_usable(&c->sf))
		return true;
	for (i = 0; i < c->njoins; i++)
		if (c->joins[i] != sf && mps_sf_usable(c->joins[i]))
			return true;
	return false;
}

/*
 * A DSS checksum on join sf failed (presence false) or its presence
 * contradicts the negotiation (true). RFC 8684 §3.7: with other subflows,
 * only this one is reset, with MP_TCPRST 6 (as Linux) and MP_FAIL naming
 * the mapping; nothing of the mapping was delivered, and the peer sends it
 * again on the others (its unacknowledged data is reinjected when the RST
 * comes). The last subflow takes the connection down as before.
 */
static void join_csum_failed(struct mps_conn *c, struct mps_subflow *sf, bool presence,
			     uint64_t dsn, uint64_t now)
{
	struct mps_stack *st = c->st;
	unsigned int before = st->nrsts;

	mps_cmap_free(c, sf);
	sf->rx_map_valid = false;
	if (!other_working(c, sf)) {
		mps_csum_failure(c, presence, dsn, now);
		return;
	}
	st->counters[MPS_CNT_IN_DSS_CSUM]++;
	mps_sf_rst(c, sf, presence ? MPS_TCPRST_MPTCP_ERR : MPS_TCPRST_MIDDLEBOX);
	if (!presence && st->nrsts > before) {
		st->rsts[st->nrsts - 1].mp_fail = true;
		st->rsts[st->nrsts - 1].fail_dsn = dsn;
		st->counters[MPS_CNT_OUT_MP_FAIL]++;
	}
	mps_event_sf(st, MPS_EV_MP_FAIL, c, sf->id, MPS_MP_FAIL_SF_RESET, now);
	sf_down(c, sf, MPS_SF_DOWN_CHECKSUM, now);
}

/*
 * Data on a join with DSS checksums (RFC 8684 §3.3.1): each mapping is
 * held on the subflow until all of it arrived and its checksum verified,
 * then handed to the connection. Returns false if the segment is dropped.
 */
static bool join_data_csum(struct mps_conn *c, struct mps_subflow *sf, const struct mps_seg *s,
			   const struct mps_opt *dss, uint64_t now)
{
	struct mps_dss_csum k;
	uint32_t off, n, ssn, rcv_ssn;
	uint16_t data;
	uint64_t dsn;
	bool fin;
	int rc;

	mps_cmap_flush(c, sf);
	if (dss && (dss->dss.flags & MPS_DSS_FLAG_M)) {
		dsn = (dss->dss.flags & MPS_DSS_FLAG_m)
			      ? dss->dss.dsn
			      : mps_expand32(c->rcv_nxt_dsn, dss->dss.dsn);
		fin = dss->dss.flags & MPS_DSS_FLAG_F;
		rcv_ssn = sf->rcv_nxt - sf->irs;
		if (!dss->dss.has_csum) {
			join_csum_failed(c, sf, true, dsn, now);
			return false;
		}
		if (fin && dss->dss.data_len == 1) {
			/* A DATA_FIN without data: the checksum covers the header alone. */
			mps_dss_csum_init(&k, dsn, dss->dss.ssn, 1);
			if (mps_dss_csum_final(&k) != dss->dss.csum) {
				join_csum_failed(c, sf, false, dsn, now);
				return false;
			}
			mps_data_fin_check(c, true, dsn);
			sf->ack_now = true; /* its DATA_ACK goes back where it came */
		} else if (dss->dss.data_len == 0) {
			c->st->counters[MPS_CNT_IN_BAD_MAPPING]++; /* infinite mapping: not here */
		} else if (!sf->rx_map_valid || sf->rx_map_dsn != dsn ||
			   sf->rx_map_ssn != dss->dss.ssn || sf->rx_map_len != dss->dss.data_len) {
			data = (uint16_t)(dss->dss.data_len - (fin ? 1 : 0));
			if (SEQ_LT(dss->dss.ssn, rcv_ssn) &&
			    SEQ_GEQ(rcv_ssn, dss->dss.ssn + data)) {
				/* Entirely old: a retransmission of what we have. */
			} else if (SEQ_LT(dss->dss.ssn, rcv_ssn) || sf->rx_cbuf) {
				/*
				 * Part of it could not be verified, or the one before is
				 * not done: refused, the sender resends.
				 */
				c->st->counters[MPS_CNT_IN_BAD_MAPPING]++;
				sf->ack_now = true;
				return false;
			} else {
				if (mps_cmap_start(c, sf, dsn, dss->dss.ssn, dss->dss.data_len,
						   data, fin, dss->dss.csum) < 0) {
					sf->rx_map_valid = false;
					return false; /* no memory: the peer sends it again */
				}
				sf->rx_map_valid = true;
				sf->rx_map_dsn = dsn;
				sf->rx_map_ssn = dss->dss.ssn;
				sf->rx_map_len = dss->dss.data_len;
			}
		}
		if (c->reset || sf->state == MPS_SF_CLOSED)
			return false;
	}
	if (!s->payload_len)
		return true;
	off = sf->rcv_nxt - s->seq;
	n = s->payload_len - off;
	ssn = sf->rcv_nxt - sf->irs;
	if (!sf->rx_map_valid || !sf->rx_cbuf || sf->rx_cverified ||
	    ssn != sf->rx_map_ssn + sf->rx_cdone) {
		c->st->counters[MPS_CNT_IN_BAD_MAPPING]++;
		sf->ack_now = true;
		return false;
	}
	if (n > (uint32_t)(sf->rx_cdata - sf->rx_cdone))
		n = sf->rx_cdata - sf->rx_cdone;
	rc = mps_cmap_add(c, sf, s->payload + off, n);
	if (rc < 0) {
		join_csum_failed(c, sf, false, sf->rx_cdsn, now);
		return false;
	}
	sf->rcv_nxt += n;
	sf->bytes_received += n;
	if (rc == 1)
		mps_cmap_flush(c, sf);
	if (off + n < s->payload_len) {
		sf->ack_now = true; /* beyond the mapping: refused, say so at once */
		return false;
	}
	/* As on the initial subflow: a packet above the peer's segments is several merged. */
	if (++sf->unacked_segs >= 2 || mps_rx_merged(c, sf, n))
		sf->ack_now = true;
	else if (sf->delack_at == MPS_TIME_NEVER)
		sf->delack_at = now + MPS_DELACK_US;
	return true;
}

/*
 * The mapping and payload of a segment at rcv_nxt; returns false if part of
 * it was refused (then its FIN waits too).
 */
static bool join_data(struct mps_conn *c, struct mps_subflow *sf, const struct mps_seg *s,
		      const struct mps_opt *o, unsigned int n, uint64_t now)
{
	const struct mps_opt *dss = mps_find_opt(o, n, MPS_MPTCP_SUB_DSS);
	uint32_t off, len, ssn, data, took;
	uint64_t dsn;
	bool fin;

	if (c->mptcp && c->csum)
		return join_data_csum(c, sf, s, dss, now);
	if (c->mptcp && dss && (dss->dss.flags & MPS_DSS_FLAG_M)) {
		dsn = (dss->dss.flags & MPS_DSS_FLAG_m)
			      ? dss->dss.dsn
			      : mps_expand32(c->rcv_nxt_dsn, dss->dss.dsn);
		fin = dss->dss.flags & MPS_DSS_FLAG_F;
		if (fin && dss->dss.data_len == 1 && dss->dss.ssn == 0) {
			mps_data_fin_check(c, true, dsn); /* a DATA_FIN alone */
			sf->ack_now = true;		  /* its DATA_ACK goes back where it came */
		} else if (dss->dss.data_len == 0) {
			c->st->counters[MPS_CNT_IN_BAD_MAPPING]++; /* infinite mapping: not here */
		} else {
			sf->rx_map_valid = true;
			sf->rx_map_dsn = dsn;
			sf->rx_map_ssn = dss->dss.ssn;
			sf->rx_map_len = dss->dss.data_len;
			if (fin && !s->payload_len)
				mps_data_fin_check(c, true, dsn + dss->dss.data_len - 1);
		}
		if (c->reset)
			return false;
	}
	if (!s->payload_len)
		return true;
	off = sf->rcv_nxt - s->seq;
	len = s->payload_len - off;
	ssn = sf->rcv_nxt - sf->irs;
	fin = false;
	data = sf->rx_map_len;
	if (sf->rx_map_valid && dss && (dss->dss.flags & MPS_DSS_FLAG_F) &&
	    dss->dss.data_len == sf->rx_map_len) {
		fin = true;
		data--;
	}
	if (!sf->rx_map_valid || SEQ_LT(ssn, sf->rx_map_ssn) ||
	    SEQ_GEQ(ssn, sf->rx_map_ssn + data)) {
		c->st->counters[MPS_CNT_IN_BAD_MAPPING]++;
		sf->ack_now = true;
		return false;
	}
	if (len > sf->rx_map_ssn + data - ssn)
		len = sf->rx_map_ssn + data - ssn;
	dsn = sf->rx_map_dsn + (ssn - sf->rx_map_ssn);
	took = mps_conn_deliver(c, dsn, s->payload + off, len);
	sf->rcv_nxt += took;
	sf->bytes_received += took;
	if (fin && ssn + took == sf->rx_map_ssn + data)
		mps_data_fin_check(c, true, sf->rx_map_dsn + sf->rx_map_len - 1);
	if (took < s->payload_len - off) {
		sf->ack_now = true; /* refused: say so at once */
		return false;
	}
	/*
	 * A packet above the peer's segments is several the kernel merged (TUN
	 * offloads): ACKed at once, as on the initial subflow. Alone on an idle
	 * join it waited for the delayed ACK, and the kernel's sender with it.
	 */
	if (++sf->unacked_segs >= 2 || mps_rx_merged(c, sf, took))
		sf->ack_now = true;
	else if (sf->delack_at == MPS_TIME_NEVER)
		sf->delack_at = now + MPS_DELACK_US;
	return true;
}

/* Keep a segment ahead of rcv_nxt, within the window and the queue's bounds. */
static void jooo_store(struct mps_conn *c, struct mps_subflow *sf, const struct mps_seg *s,
		       const struct mps_opt *dss)
{
	struct mps_join_ooo **pp = &sf->jooo, *q;
	uint32_t len = s->payload_len;

	if (sf->jooo_segs >= mps_ooo_max_segs(c->rcvbuf.cap) ||
	    sf->jooo_bytes + len > c->rcvbuf.cap ||
	    SEQ_GT(s->seq + len, sf->rcv_nxt + mps_rcv_space(c)))
		return; /* the peer sends it again */
	if (sf->jooo_tail && SEQ_GT(s->seq, sf->jooo_tail->seq))
		pp = &sf->jooo_tail->next;
	while (*pp && SEQ_LT((*pp)->seq, s->seq))
		pp = &(*pp)->next;
	if (*pp && (*pp)->seq == s->seq && (*pp)->len >= len)
		return;
	q = mps_alloc(c->st, sizeof(*q) + len);
	if (!q)
		return;
	q->seq = s->seq;
	q->len = len;
	q->has_dss = dss != NULL;
	if (dss)
		q->dss = *dss;
	memcpy(q->data, s->payload, len);
	q->next = *pp;
	*pp = q;
	if (!q->next)
		sf->jooo_tail = q;
	sf->jooo_segs++;
	sf->jooo_bytes += len;
	sf->jooo_last = s->seq;
}

/* Queued segments the hole before them no longer separates from rcv_nxt. */
static void jooo_drain(struct mps_conn *c, struct mps_subflow *sf, uint64_t now)
{
	struct mps_join_ooo *q;
	bool ok = true;

	while ((q = sf->jooo) && SEQ_LEQ(q->seq, sf->rcv_nxt) && !c->reset) {
		struct mps_seg fake = { .seq = q->seq,
					.flags = MPS_TCP_ACK,
					.payload = q->data,
					.payload_len = q->len,
					.payload_cap = q->len };

		sf->jooo = q->next;
		if (!sf->jooo)
			sf->jooo_tail = NULL;
		sf->jooo_segs--;
		sf->jooo_bytes -= q->len;
		if (ok && SEQ_GT(q->seq + q->len, sf->rcv_nxt))
			ok = join_data(c, sf, &fake, &q->dss, q->has_dss ? 1 : 0, now);
		mps_free(c->st, q);
		sf->ack_now = true; /* RFC 5681 §4.2: at once when a hole is filled */
	}
}

void mps_join_input(struct mps_conn *c, struct mps_subflow *sf, const struct mps_seg *s,
		    const struct mps_tcpopts *t, uint64_t now)
{
	struct mps_opt o[MPS_TCPOPTS_MPTCP_MAX];
	unsigned int n = mps_parse_mptcp(c->st, s, t, o, MPS_TCPOPTS_MPTCP_MAX);
	const struct mps_opt *fc = mps_find_opt(o, n, MPS_MPTCP_SUB_FASTCLOSE);
	bool fastclose = c->mptcp && fc && fc->fastclose_key == c->lkey;

	if (c->reset || sf->state == MPS_SF_CLOSED)
		return;
	if (sf->state == MPS_SF_SYN_SENT) {
		synsent_input(c, sf, s, t, o, n, now);
		return;
	}
	/* A retransmitted SYN or SYN/ACK: our answer was lost, give it again. */
	if ((s->flags & MPS_TCP_SYN) && s->seq == sf->irs) {
		if (sf->state == MPS_SF_SYN_RCVD && !(s->flags & MPS_TCP_ACK))
			sf->snd_nxt = sf->iss;
		else
			sf->ack_now = true;
		return;
	}
	if (s->flags & MPS_TCP_RST) {
		/* RFC 5961 §3.2: exact match resets, anything else is challenged. */
		if (s->seq != sf->rcv_nxt) {
			sf->ack_now = true;
			return;
		}
		if (fastclose)
			mps_conn_reset(c, MPS_RST_FASTCLOSE, now);
		else
			sf_down(c, sf, MPS_SF_DOWN_RST, now);
		return;
	}
	if ((s->flags & MPS_TCP_SYN) || !(s->flags & MPS_TCP_ACK)) {
		if (s->flags & MPS_TCP_SYN)
			sf->ack_now = true; /* RFC 5961 §4.2: challenge ACK */
		return;
	}
	/*
	 * Only segments at rcv_nxt are taken (data may start before it); a join
	 * keeps no out-of-order queue, so one ahead is dropped and the duplicate
	 * ACK makes the peer send again.
	 */
	if (s->payload_len && SEQ_GT(s->seq, sf->rcv_nxt) && sf->state != MPS_SF_SYN_RCVD &&
	    !sf->join_pre_est && c->mptcp) {
		c->st->counters[MPS_CNT_IN_OUT_OF_ORDER]++;
		jooo_store(c, sf, s, mps_find_opt(o, n, MPS_MPTCP_SUB_DSS));
		sf->ack_now = true; /* the duplicate ACK */
		return;
	}
	if (s->payload_len
		    ? (SEQ_GT(s->seq, sf->rcv_nxt) || SEQ_LEQ(s->seq + s->payload_len, sf->rcv_nxt))
		    : s->seq != sf->rcv_nxt) {
		c->st->counters[SEQ_GT(s->seq, sf->rcv_nxt) ? MPS_CNT_IN_OUT_OF_ORDER
							    : MPS_CNT_IN_OUT_OF_WINDOW]++;
		sf->ack_now = true;
		return;
	}
	if (s->payload_len && (!c->mptcp || sf->state == MPS_SF_SYN_RCVD)) {
		/* Data before the fourth ACK's answer, or after a fallback: not for a join. */
		c->st->counters[MPS_CNT_IN_JOIN_DATA]++;
		mps_queue_rst_reason(c->st, s, &sf->local, &sf->remote, MPS_TCPRST_UNSPEC);
		sf_down(c, sf, MPS_SF_DOWN_DATA, now);
		return;
	}
	if (fastclose) {
		mps_conn_reset(c, MPS_RST_FASTCLOSE, now);
		mps_queue_rst(c->st, s, &sf->local, &sf->remote);
		return;
	}
	if (sf->state == MPS_SF_SYN_RCVD) {
		synrcvd_ack(c, sf, s, o, n, now);
		return;
	}
	if (sf->join_pre_est)
		subflow_up(c, sf, now); /* the fourth ACK */
	if (sf->ts_ok && (t->present & MPS_TCPOPTS_TS))
		sf->ts_recent = t->ts_val;
	if (!mps_process_ack(c, sf, s, t, now) || c->reset)
		return;
	if (sf->fin_sent && SEQ_GT(sf->snd_una, sf->fin_seq) &&
	    (sf->state == MPS_SF_FIN_WAIT_1 || sf->state == MPS_SF_CLOSING ||
	     sf->state == MPS_SF_LAST_ACK))
		fin_acked(c, sf, now);
	if (sf->state == MPS_SF_CLOSED)
		return;
	conn_options(c, sf, s, o, n, now);
	if (sf->state == MPS_SF_CLOSED || c->reset)
		return;
	if (!join_data(c, sf, s, o, n, now))
		return;
	if (s->payload_len)
		jooo_drain(c, sf, now);
	if ((s->flags & MPS_TCP_FIN) && !sf->fin_rcvd && s->seq + s->payload_len == sf->rcv_nxt)
		fin_input(c, sf, now);
}
