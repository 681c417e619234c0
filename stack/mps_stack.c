/*
 * libmps stack object: configuration, the connection table, listeners,
 * events, counters and the public API that is not TCP processing itself.
 * Connections live in one list (O(n) lookup, bounded by max_conns).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mps_internal.h"
#include "prot/tcp.h"

static const char *const counter_names[MPS_CNT__COUNT] = {
	[MPS_CNT_IN_BAD_IP] = "in_bad_ip",
	[MPS_CNT_IN_BAD_CSUM] = "in_bad_csum",
	[MPS_CNT_IN_BAD_OPTS] = "in_bad_opts",
	[MPS_CNT_IN_BAD_MPTCP] = "in_bad_mptcp",
	[MPS_CNT_IN_NO_CONN] = "in_no_conn",
	[MPS_CNT_IN_OUT_OF_WINDOW] = "in_out_of_window",
	[MPS_CNT_IN_PAWS] = "in_paws",
	[MPS_CNT_IN_OUT_OF_ORDER] = "in_out_of_order",
	[MPS_CNT_IN_BAD_ACK] = "in_bad_ack",
	[MPS_CNT_IN_RCVBUF_FULL] = "in_rcvbuf_full",
	[MPS_CNT_IN_BAD_MAPPING] = "in_bad_mapping",
	[MPS_CNT_IN_DSS_CSUM] = "in_dss_csum",
	[MPS_CNT_IN_ACCEPT_FULL] = "in_accept_full",
	[MPS_CNT_IN_JOIN_REFUSED] = "in_join_refused",
	[MPS_CNT_IN_JOIN_TOKEN] = "in_join_token",
	[MPS_CNT_IN_JOIN_HMAC] = "in_join_hmac",
	[MPS_CNT_IN_JOIN_LIMIT] = "in_join_limit",
	[MPS_CNT_IN_JOIN_DATA] = "in_join_data",
	[MPS_CNT_IN_ADD_ADDR_HMAC] = "in_add_addr_hmac",
	[MPS_CNT_IN_ADD_ADDR_FULL] = "in_add_addr_full",
	[MPS_CNT_OUT_RST_DROPPED] = "out_rst_dropped",
	[MPS_CNT_EVENTS_DROPPED] = "events_dropped",
	[MPS_CNT_RETRANS_TIMEOUT] = "retrans_timeout",
	[MPS_CNT_FAST_RETRANS] = "fast_retrans",
	[MPS_CNT_REINJECTED] = "reinjected",
	[MPS_CNT_PAWS_EXPIRED] = "paws_expired",
	[MPS_CNT_IN_MP_FAIL] = "in_mp_fail",
	[MPS_CNT_OUT_MP_FAIL] = "out_mp_fail",
	[MPS_CNT_IN_INFINITE_MAP] = "in_infinite_map",
	[MPS_CNT_OUT_INFINITE_MAP] = "out_infinite_map",
	[MPS_CNT_IN_NO_DSS] = "in_no_dss",
	[MPS_CNT_SIMULT_OPEN] = "simult_open",
	[MPS_CNT_IN_FASTCLOSE_KEY] = "in_fastclose_key",
	[MPS_CNT_JOIN_RETRY] = "join_retry",
	[MPS_CNT_DATA_RTO] = "data_rto",
	[MPS_CNT_SNDBUF_GROWN] = "sndbuf_grown",
	[MPS_CNT_LOST_RETRANS] = "lost_retrans",
	[MPS_CNT_RCVBUF_GROWN] = "rcvbuf_grown",
};

const char *mps_stack_counter_name(enum mps_counter which)
{
	if ((unsigned int)which >= MPS_CNT__COUNT)
		return "unknown";
	return counter_names[which];
}

uint64_t mps_stack_counter(const struct mps_stack *st, enum mps_counter which)
{
	return (unsigned int)which < MPS_CNT__COUNT ? st->counters[which] : 0;
}

uint64_t mps_stack_opt_errors(const struct mps_stack *st, unsigned int opt_err)
{
	return opt_err < MPS_OPT_E_COUNT ? st->opt_errors[opt_err] : 0;
}

/* splitmix64: only for deterministic tests (see struct mps_config). */
uint64_t mps_rand64(struct mps_stack *st)
{
	uint64_t z;

	if (st->cfg.rand_bytes) {
		st->cfg.rand_bytes(st->cfg.rand_ctx, &z, sizeof(z));
		return z;
	}
	z = (st->rng += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void *cfg_alloc(const struct mps_config *cfg, size_t size)
{
	void *p = cfg->alloc ? cfg->alloc(cfg->alloc_ctx, size) : malloc(size);

	if (p)
		memset(p, 0, size);
	return p;
}

static void cfg_free(const struct mps_config *cfg, void *p)
{
	if (!p)
		return;
	if (cfg->free)
		cfg->free(cfg->alloc_ctx, p);
	else
		free(p);
}

void *mps_alloc(struct mps_stack *st, size_t size)
{
	return cfg_alloc(&st->cfg, size);
}

void mps_free(struct mps_stack *st, void *p)
{
	cfg_free(&st->cfg, p);
}

struct mps_stack *mps_stack_create(const struct mps_config *cfg, int *err)
{
	struct mps_stack *st;

	*err = 0;
	if (!cfg || (cfg->mss && (cfg->mss < 88 || cfg->mss > 65000)) ||
	    (cfg->sndbuf && cfg->sndbuf < 4096) || (cfg->rcvbuf && cfg->rcvbuf < 4096) ||
	    cfg->sndbuf > (1u << 30) || cfg->rcvbuf > (1u << 30) || cfg->sndbuf_max > (1u << 30) ||
	    (cfg->sndbuf_max && cfg->sndbuf_max < (cfg->sndbuf ? cfg->sndbuf : MPS_SNDBUF_START)) ||
	    cfg->rcvbuf_max > (1u << 30) ||
	    (cfg->rcvbuf_max && cfg->rcvbuf_max < (cfg->rcvbuf ? cfg->rcvbuf : MPS_RCVBUF_START)) ||
	    cfg->max_subflows > MPS_MAX_SUBFLOWS || cfg->nlocal_addrs > MPS_MAX_LOCAL_ADDRS ||
	    (cfg->path_manager && !mps_pm_find(cfg->path_manager)) ||
	    (cfg->scheduler && !mps_sched_find(cfg->scheduler)) ||
	    (cfg->congestion && !mps_cc_find(cfg->congestion)) || !cfg->alloc != !cfg->free) {
		*err = -EINVAL;
		return NULL;
	}
	st = cfg_alloc(cfg, sizeof(*st));
	if (!st) {
		*err = -ENOMEM;
		return NULL;
	}
	st->cfg = *cfg;
	st->cc = mps_cc_find(cfg->congestion);
	if (!st->cfg.mss)
		st->cfg.mss = 1400;
	/* Autotuning grows each send buffer from sndbuf up to sndbuf_max; equal: fixed. */
	if (!st->cfg.sndbuf_max)
		st->cfg.sndbuf_max = st->cfg.sndbuf ? st->cfg.sndbuf : MPS_SNDBUF_CAP;
	if (!st->cfg.sndbuf)
		st->cfg.sndbuf = MPS_SNDBUF_START;
	if (!st->cfg.rcvbuf_max)
		st->cfg.rcvbuf_max = st->cfg.rcvbuf ? st->cfg.rcvbuf : MPS_RCVBUF_START;
	if (!st->cfg.rcvbuf)
		st->cfg.rcvbuf = MPS_RCVBUF_START;
	if (!st->cfg.max_conns)
		st->cfg.max_conns = 64;
	if (!st->cfg.max_subflows)
		st->cfg.max_subflows = 3;
	if (!st->cfg.msl_us)
		st->cfg.msl_us = 30000000u;
	st->rng = cfg->seed;
	st->next_id = 1;
	st->ip_id = (uint16_t)mps_rand64(st);
	return st;
}

static void conn_free(struct mps_conn *c)
{
	struct mps_stack *st = c->st;

	mps_tcp_free(c);
	mps_join_free_all(c);
	mps_ring_free(st, &c->sndbuf);
	mps_ring_free(st, &c->rcvbuf);
	mps_free(st, c);
}

void mps_stack_destroy(struct mps_stack *st)
{
	struct mps_conn *c, *n;

	if (!st)
		return;
	for (c = st->conns; c; c = n) {
		n = c->next;
		conn_free(c);
	}
	cfg_free(&st->cfg, st);
}

static bool addr_unspec(const struct mps_addr *a)
{
	static const uint8_t zero[16];

	return memcmp(a->addr, zero, a->family == 4 ? 4 : 16) == 0;
}

bool mps_addr_eq(const struct mps_addr *a, const struct mps_addr *b)
{
	return a->family == b->family && a->port == b->port &&
	       memcmp(a->addr, b->addr, a->family == 4 ? 4 : 16) == 0;
}

static bool addr_valid(const struct mps_addr *a)
{
	return a && (a->family == 4 || a->family == 6);
}

int mps_listen(struct mps_stack *st, const struct mps_addr *local)
{
	unsigned int i;

	if (!addr_valid(local) || local->port == 0)
		return -EINVAL;
	for (i = 0; i < st->nlisteners; i++)
		if (mps_addr_eq(&st->listeners[i], local))
			return -EADDRINUSE;
	if (st->nlisteners == MPS_MAX_LISTENERS)
		return -ENOSPC;
	st->listeners[st->nlisteners++] = *local;
	return 0;
}

static const struct mps_addr *find_listener(const struct mps_stack *st,
					    const struct mps_addr *local)
{
	unsigned int i;

	for (i = 0; i < st->nlisteners; i++) {
		const struct mps_addr *l = &st->listeners[i];

		if (l->family != local->family || l->port != local->port)
			continue;
		if (addr_unspec(l) || mps_addr_eq(l, local))
			return l;
	}
	return NULL;
}

/* The connection owning the 4-tuple, and in *sfp its subflow (initial or join). */
static struct mps_conn *find_conn(struct mps_stack *st, const struct mps_addr *local,
				  const struct mps_addr *remote, struct mps_subflow **sfp)
{
	struct mps_conn *c;
	unsigned int i;

	for (c = st->conns; c; c = c->next) {
		if (mps_addr_eq(&c->sf.local, local) && mps_addr_eq(&c->sf.remote, remote)) {
			*sfp = &c->sf;
			return c;
		}
		for (i = 0; i < c->njoins; i++)
			if (c->joins[i]->state != MPS_SF_CLOSED &&
			    mps_addr_eq(&c->joins[i]->local, local) &&
			    mps_addr_eq(&c->joins[i]->remote, remote)) {
				*sfp = c->joins[i];
				return c;
			}
	}
	*sfp = NULL;
	return NULL;
}

/* Is this 4-tuple free for a new subflow? */
bool mps_tuple_free(struct mps_stack *st, const struct mps_addr *local,
		    const struct mps_addr *remote)
{
	struct mps_subflow *sf;

	return find_conn(st, local, remote, &sf) == NULL;
}

struct mps_conn *mps_conn_new(struct mps_stack *st, const struct mps_addr *local,
			      const struct mps_addr *remote, bool client, int *err)
{
	struct mps_conn *c;

	if (st->nconns >= st->cfg.max_conns) {
		*err = -ENOSPC;
		return NULL;
	}
	c = mps_alloc(st, sizeof(*c));
	if (!c) {
		*err = -ENOMEM;
		return NULL;
	}
	c->st = st;
	if (mps_ring_init(st, &c->sndbuf, st->cfg.sndbuf) ||
	    mps_ring_init(st, &c->rcvbuf, st->cfg.rcvbuf)) {
		conn_free(c);
		*err = -ENOMEM;
		return NULL;
	}
	c->st = st;
	c->id = st->next_id++;
	c->is_client = client;
	c->sf.conn = c;
	c->sf.local = *local;
	c->sf.remote = *remote;
	c->sf.rto_at = MPS_TIME_NEVER;
	c->sf.tw_at = MPS_TIME_NEVER;
	c->sf.delack_at = MPS_TIME_NEVER;
	c->state = MPS_CONN_CONNECTING;
	mps_pm_conn_init(c);
	c->sched = mps_sched_find(st->cfg.scheduler);
	c->sf.serial = c->next_serial++;
	c->next = st->conns;
	st->conns = c;
	st->nconns++;
	*err = 0;
	return c;
}

static void conn_unlink(struct mps_conn *c)
{
	struct mps_conn **pp;

	for (pp = &c->st->conns; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			c->st->nconns--;
			break;
		}
	conn_free(c);
}

int mps_connect(struct mps_stack *st, const struct mps_addr *local, const struct mps_addr *remote,
		struct mps_conn **out)
{
	struct mps_addr l;
	struct mps_conn *c;
	int err, tries;

	if (!addr_valid(local) || !addr_valid(remote) || local->family != remote->family ||
	    remote->port == 0 || addr_unspec(local) || addr_unspec(remote))
		return -EINVAL;
	l = *local;
	for (tries = 0; l.port == 0 || !mps_tuple_free(st, &l, remote); tries++) {
		if (local->port || tries == 64)
			return -EADDRINUSE;
		l.port = (uint16_t)(49152 + mps_rand64(st) % 16384);
	}
	c = mps_conn_new(st, &l, remote, true, &err);
	if (!c)
		return err;
	mps_tcp_connect(c, 0);
	*out = c;
	return 0;
}

struct mps_conn *mps_accept(struct mps_stack *st)
{
	struct mps_conn *c, *best = NULL;

	/* Oldest first: the lowest id waiting in the queue. */
	for (c = st->conns; c; c = c->next)
		if (c->in_accept_q && (!best || c->id < best->id))
			best = c;
	if (best) {
		best->in_accept_q = false;
		best->accepted = true;
	}
	return best;
}

ssize_t mps_send(struct mps_conn *c, const void *buf, size_t len)
{
	uint32_t n;

	if (len == 0)
		return -EINVAL;
	if (c->reset || c->shut_wr)
		return -EPIPE;
	if (c->state == MPS_CONN_CONNECTING)
		return -EAGAIN;
	n = mps_ring_write(&c->sndbuf, buf, len > UINT32_MAX ? UINT32_MAX : (uint32_t)len);
	return n ? (ssize_t)n : -EAGAIN;
}

ssize_t mps_recv(struct mps_conn *c, void *buf, size_t len)
{
	uint32_t n = c->rcvbuf.len - c->rx_unverified, left;

	if (n == 0) {
		if (c->reset)
			return -ECONNRESET;
		return c->data_fin_rcvd && !c->rx_unverified ? 0 : -EAGAIN;
	}
	if (n > len)
		n = (uint32_t)len;
	mps_ring_peek(&c->rcvbuf, 0, buf, n);
	mps_ring_drop(&c->rcvbuf, n);
	/*
	 * A read that at least doubles what is left of the window we last
	 * announced, half the buffer or less, is announced at once, as Linux's
	 * tcp_cleanup_rbuf(): a sender held by the window otherwise waits for a
	 * delayed ACK (40 ms each time the window filled with merged 64 KiB
	 * packets from a TUN with offloads).
	 */
	left = c->rcv_adv_edge > c->rcv_nxt_dsn ? (uint32_t)(c->rcv_adv_edge - c->rcv_nxt_dsn) : 0;
	if (left <= c->rcvbuf.cap / 2 && c->rcvbuf.cap - c->rcvbuf.len >= 2 * left) {
		unsigned int i;

		/* On every subflow: the one that would carry it may be the one that failed. */
		c->sf.ack_now = true;
		for (i = 0; i < c->njoins; i++)
			if (c->joins[i]->state == MPS_SF_ESTABLISHED && !c->joins[i]->join_pre_est)
				c->joins[i]->ack_now = true;
	}
	return n;
}

int mps_shutdown(struct mps_conn *c)
{
	if (c->reset || c->state == MPS_CONN_CONNECTING)
		return -ENOTCONN;
	c->shut_wr = true;
	return 0;
}

void mps_close(struct mps_conn *c)
{
	c->app_closed = true;
	c->in_accept_q = false;
	/* With the initial subflow gone, the joins may still carry the close. */
	if (c->reset || (c->sf.state == MPS_SF_CLOSED && !mps_join_closing(c))) {
		conn_unlink(c);
		return;
	}
	if (c->state != MPS_CONN_CONNECTING)
		c->shut_wr = true;
	else
		mps_conn_reset(c, MPS_RST_LOCAL, 0);
}

void mps_abort(struct mps_conn *c)
{
	c->app_closed = true;
	if (c->reset || (c->sf.state == MPS_SF_CLOSED && !mps_join_closing(c))) {
		conn_unlink(c);
		return;
	}
	/* Every join's RST carries MP_FASTCLOSE too (mps_join.c), as Linux sends it. */
	c->fastclose_joins = c->mptcp;
	if (c->sf.state == MPS_SF_CLOSED) {
		/* No initial subflow: MP_FASTCLOSE goes on the joins' RSTs alone. */
		mps_conn_reset(c, MPS_RST_LOCAL, 0);
		return;
	}
	/* The RST (with MP_FASTCLOSE when MPTCP is up) leaves with the next output. */
	c->fastclose_pending = true;
}

uint32_t mps_conn_id(const struct mps_conn *c)
{
	return c->id;
}

int mps_conn_info(const struct mps_conn *c, struct mps_conn_info *info)
{
	memset(info, 0, sizeof(*info));
	info->id = c->id;
	info->state = c->state;
	info->mptcp = c->mptcp;
	info->fallback = c->fallback;
	info->fallback_reason = c->fallback_reason;
	info->checksum = c->mptcp && c->csum;
	info->local_key = c->lkey;
	info->remote_key = c->rkey;
	info->local_token = c->ltoken;
	info->remote_token = c->rtoken;
	info->bytes_sent = c->bytes_sent;
	info->bytes_acked = c->bytes_acked;
	info->bytes_received = c->bytes_received;
	info->nsubflows = (uint8_t)(1 + mps_join_count(c));
	info->nremote_addrs = c->nraddrs;
	return 0;
}

int mps_subflow_info(const struct mps_conn *c, unsigned int idx, struct mps_subflow_info *info)
{
	const struct mps_subflow *sf = &c->sf;
	unsigned int i, k = 0;

	if (idx != 0) {
		/* Live joins in creation order, as mps_join_count() counts them. */
		for (sf = NULL, i = 0; i < c->njoins && !sf; i++)
			if (c->joins[i]->state != MPS_SF_CLOSED && ++k == idx)
				sf = c->joins[i];
		if (!sf)
			return -ENOENT;
	}
	memset(info, 0, sizeof(*info));
	info->id = sf->id;
	info->local = sf->local;
	info->remote = sf->remote;
	info->state = mps_sf_state_name(sf->state);
	info->srtt_us = sf->srtt;
	info->rttvar_us = sf->rttvar;
	info->rto_us = sf->rto;
	info->cwnd = sf->cwnd;
	info->ssthresh = sf->ssthresh;
	info->bytes_sent = sf->bytes_sent;
	info->bytes_acked = sf->bytes_acked;
	info->bytes_received = sf->bytes_received;
	info->retransmits = sf->retransmits;
	info->backup = mps_sf_backup(sf);
	info->backup_local = sf->backup;
	info->backup_peer = sf->peer_backup;
	info->join = sf->is_join;
	info->remote_id = sf->remote_id;
	info->up = sf->state == MPS_SF_ESTABLISHED && !sf->join_pre_est;
	return 0;
}

void mps_event(struct mps_stack *st, enum mps_event_type type, const struct mps_conn *c, int reason,
	       uint64_t now)
{
	mps_event_sf(st, type, c, c->sf.id, reason, now);
}

void mps_event_sf(struct mps_stack *st, enum mps_event_type type, const struct mps_conn *c,
		  uint8_t sf_id, int reason, uint64_t now)
{
	struct mps_event *ev;

	if (st->ev_len == MPS_MAX_EVENTS) {
		/* Keep the newest: drop the oldest and count it. */
		st->ev_head = (st->ev_head + 1) % MPS_MAX_EVENTS;
		st->ev_len--;
		st->counters[MPS_CNT_EVENTS_DROPPED]++;
	}
	ev = &st->events[(st->ev_head + st->ev_len) % MPS_MAX_EVENTS];
	ev->type = type;
	ev->conn_id = c->id;
	ev->subflow_id = sf_id;
	ev->reason = reason;
	ev->time = now;
	st->ev_len++;
}

int mps_next_event(struct mps_stack *st, struct mps_event *ev)
{
	if (st->ev_len == 0)
		return -EAGAIN;
	*ev = st->events[st->ev_head];
	st->ev_head = (st->ev_head + 1) % MPS_MAX_EVENTS;
	st->ev_len--;
	return 0;
}

void mps_conn_reset(struct mps_conn *c, int reason, uint64_t now)
{
	if (c->reset)
		return;
	c->reset = true;
	c->state = MPS_CONN_RESET;
	c->sf.state = MPS_SF_CLOSED;
	c->sf.rto_at = MPS_TIME_NEVER;
	c->sf.tw_at = MPS_TIME_NEVER;
	c->in_accept_q = false;
	/* A connection nobody will ever accept or close is not reported. */
	if (c->is_client || c->accepted || c->app_closed)
		mps_event(c->st, MPS_EV_CONN_RESET, c, reason, now);
}

void mps_queue_rst(struct mps_stack *st, const struct mps_seg *s, const struct mps_addr *local,
		   const struct mps_addr *remote)
{
	mps_queue_rst_reason(st, s, local, remote, -1);
}

struct mps_conn *mps_conn_by_token(struct mps_stack *st, uint32_t token)
{
	struct mps_conn *c;

	for (c = st->conns; c; c = c->next)
		if (c->mptcp && !c->reset && c->ltoken == token)
			return c;
	return NULL;
}

void mps_queue_rst_reason(struct mps_stack *st, const struct mps_seg *s,
			  const struct mps_addr *local, const struct mps_addr *remote, int reason)
{
	struct mps_rst *r;

	if (s->flags & MPS_TCP_RST)
		return;
	if (st->nrsts == MPS_MAX_RST_QUEUE) {
		st->counters[MPS_CNT_OUT_RST_DROPPED]++;
		return;
	}
	r = &st->rsts[st->nrsts++];
	r->local = *local;
	r->remote = *remote;
	r->tcprst = reason;
	r->mp_fail = false;
	r->fastclose = false;
	/* RFC 9293 §3.10.7.1: answer an ACK with its own number, otherwise ACK it. */
	if (s->flags & MPS_TCP_ACK) {
		r->seq = s->ack;
		r->ack = 0;
		r->flags = MPS_TCP_RST;
	} else {
		r->seq = 0;
		r->ack = s->seq + s->payload_len + !!(s->flags & MPS_TCP_SYN) +
			 !!(s->flags & MPS_TCP_FIN);
		r->flags = MPS_TCP_RST | MPS_TCP_ACK;
	}
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

/* TCP checksum over the pseudo-header and the segment; 0xffff when it verifies. */
static uint16_t tcp_csum_sum(const struct mps_seg *s, const uint8_t *tcp, uint32_t tcp_len)
{
	unsigned int alen = s->family == 4 ? 4 : 16;
	uint32_t sum = 6 + (tcp_len >> 16) + (tcp_len & 0xffff);

	sum = mps_csum_add(sum, s->src, alen);
	sum = mps_csum_add(sum, s->dst, alen);
	/* Word-wide: a merged segment from a TUN with offloads is up to 64 KiB. */
	return csum_fold(mps_csum_add(sum, tcp, tcp_len));
}

static int input(struct mps_stack *st, const uint8_t *pkt, size_t len, uint64_t now, bool verify)
{
	struct mps_seg s;
	struct mps_tcpopts t;
	struct mps_addr local, remote;
	enum mps_seg_err serr;
	struct mps_subflow *sf;
	struct mps_conn *c;
	uint32_t tcp_len;

	if (mps_seg_parse(pkt, len, 0, &s, &serr) != 0) {
		if (st->cfg.trace)
			st->cfg.trace(st->cfg.trace_ctx, pkt, len, 0, -1, now);
		st->counters[MPS_CNT_IN_BAD_IP]++;
		return -EBADMSG;
	}
	tcp_len = (uint32_t)(s.payload + s.payload_len - s.tcp);
	if (verify && tcp_csum_sum(&s, s.tcp, tcp_len) != 0xffff) {
		if (st->cfg.trace)
			st->cfg.trace(st->cfg.trace_ctx, pkt, len, 0, -1, now);
		st->counters[MPS_CNT_IN_BAD_CSUM]++;
		return -EBADMSG;
	}
	if (mps_tcpopt_walk(s.opts, s.opts_len, &t) != 0) {
		/* Per reason too, as for MPTCP options (the walk reports its first). */
		st->counters[MPS_CNT_IN_BAD_OPTS]++;
		st->opt_errors[t.err]++;
	}
	local.family = remote.family = s.family;
	memcpy(local.addr, s.dst, 16);
	memcpy(remote.addr, s.src, 16);
	local.port = s.dport;
	remote.port = s.sport;
	c = find_conn(st, &local, &remote, &sf);
	if (st->cfg.trace)
		st->cfg.trace(st->cfg.trace_ctx, pkt, len, 0, c ? sf->id : -1, now);
	if (c) {
		if (sf->is_join)
			mps_join_input(c, sf, &s, &t, now);
		else
			mps_tcp_input(c, &s, &t, now);
		if (s.payload_len)
			mps_rcvbuf_tune(c, &t, now);
		return 0;
	}
	/* A join may come to any of our addresses; the token says which connection. */
	if ((s.flags & (MPS_TCP_SYN | MPS_TCP_ACK | MPS_TCP_RST)) == MPS_TCP_SYN &&
	    !st->cfg.mptcp_disabled && mps_seg_has_join(&s, &t)) {
		mps_join_syn_input(st, &s, &t, &local, &remote, now);
		return 0;
	}
	if ((s.flags & (MPS_TCP_SYN | MPS_TCP_ACK | MPS_TCP_RST)) == MPS_TCP_SYN &&
	    find_listener(st, &local)) {
		mps_tcp_listen_input(st, &s, &t, &local, &remote, now);
		return 0;
	}
	st->counters[MPS_CNT_IN_NO_CONN]++;
	mps_queue_rst(st, &s, &local, &remote);
	return -ENOTCONN;
}

int mps_input(struct mps_stack *st, const uint8_t *pkt, size_t len, uint64_t now)
{
	return input(st, pkt, len, now, true);
}

/* The TCP checksum field of a well-formed packet, recomputed in place. */
static void fix_tcp_csum(uint8_t *pkt, size_t len)
{
	struct mps_seg s;
	enum mps_seg_err serr;
	uint8_t *tcp;
	uint16_t c;

	if (mps_seg_parse(pkt, len, 0, &s, &serr) != 0)
		return; /* input() counts it */
	tcp = (uint8_t *)s.tcp;
	memset(tcp + MPS_TCP_OFF_CSUM, 0, 2);
	c = (uint16_t)~tcp_csum_sum(&s, tcp, (uint32_t)(s.payload + s.payload_len - s.tcp));
	tcp[MPS_TCP_OFF_CSUM] = (uint8_t)(c >> 8);
	tcp[MPS_TCP_OFF_CSUM + 1] = (uint8_t)c;
}

int mps_input_flags(struct mps_stack *st, uint8_t *pkt, size_t len, uint64_t now,
		    unsigned int flags)
{
	if ((flags & ~(MPS_IN_CSUM_OK | MPS_IN_CSUM_STALE)) ||
	    (flags & (MPS_IN_CSUM_OK | MPS_IN_CSUM_STALE)) == MPS_IN_CSUM_STALE)
		return -EINVAL;
	/* The trace shows packets as they were on the wire, checksum included. */
	if ((flags & MPS_IN_CSUM_STALE) && st->cfg.trace)
		fix_tcp_csum(pkt, len);
	return input(st, pkt, len, now, !(flags & MPS_IN_CSUM_OK));
}

/* Connections that are finished and given back are freed here, between packets. */
static void reap(struct mps_stack *st, uint64_t now)
{
	struct mps_conn *c, *n;

	for (c = st->conns; c; c = n) {
		n = c->next;
		if (c->app_closed && (c->reset || c->sf.state == MPS_SF_CLOSED) &&
		    !mps_join_closing(c)) {
			mps_join_gone(c, now);
			conn_unlink(c);
		} else if (!c->is_client && !c->accepted && !c->app_closed && c->reset)
			conn_unlink(c); /* never accepted: nobody holds it */
	}
}

int mps_output(struct mps_stack *st, uint64_t now, uint8_t *buf, size_t cap)
{
	struct mps_conn *c;
	int n, sf_id;

	for (c = st->conns; c; c = c->next) {
		mps_tcp_timers(c, now);
		mps_join_timers(c, now);
		mps_pm_tick(c, now);
	}
	reap(st, now);
	if (st->nrsts) {
		n = mps_tcp_build_rst(st, &st->rsts[0], buf, cap);
		if (n < 0)
			return n;
		memmove(&st->rsts[0], &st->rsts[1], (st->nrsts - 1) * sizeof(st->rsts[0]));
		st->nrsts--;
		if (st->cfg.trace)
			st->cfg.trace(st->cfg.trace_ctx, buf, (size_t)n, 1, -1, now);
		return n;
	}
	for (c = st->conns; c; c = c->next) {
		n = mps_tcp_output(c, now, buf, cap);
		if (n > 0 && st->cfg.trace)
			st->cfg.trace(st->cfg.trace_ctx, buf, (size_t)n, 1, c->sf.id, now);
		if (n != 0)
			return n;
		n = mps_join_output(c, now, buf, cap, &sf_id);
		if (n > 0 && st->cfg.trace)
			st->cfg.trace(st->cfg.trace_ctx, buf, (size_t)n, 1, sf_id, now);
		if (n != 0)
			return n;
	}
	reap(st, now);
	return 0;
}

int mps_output_gso(struct mps_stack *st, uint64_t now, uint8_t *buf, size_t cap, uint32_t gso_max,
		   uint32_t *seg_size)
{
	int n;

	st->out_gso_max = gso_max;
	st->out_seg_size = 0;
	n = mps_output(st, now, buf, cap);
	*seg_size = n > 0 ? st->out_seg_size : 0;
	st->out_gso_max = 0;
	st->out_seg_size = 0;
	return n;
}

uint64_t mps_next_wakeup(const struct mps_stack *st)
{
	const struct mps_conn *c;
	uint64_t t = MPS_TIME_NEVER, x;

	for (c = st->conns; c; c = c->next) {
		x = mps_tcp_next_timer(c);
		if (x < t)
			t = x;
		x = mps_join_next_timer(c);
		if (x < t)
			t = x;
		x = mps_pm_next_timer(c);
		if (x < t)
			t = x;
	}
	return t;
}

uint64_t mps_pump(struct mps_stack *st, const struct mps_link_ops *ops, void *ctx, uint64_t now,
		  int *err)
{
	uint8_t buf[65536 + 128];
	uint64_t t, l;
	unsigned int count;
	uint32_t gso, seg;
	int n = 0, rc;

	*err = 0;
	/* Bounded rounds: one pump never starves the caller's loop, whatever arrives. */
	for (count = 0; count < MPS_PUMP_MAX; count++) {
		n = ops->recv(ctx, buf, sizeof(buf), now);
		if (n <= 0)
			break;
		rc = mps_input_flags(st, buf, (size_t)n, now,
				     ops->recv_flags ? ops->recv_flags(ctx) : 0);
		if (rc == -EINVAL && *err == 0)
			*err = rc; /* flags the stack does not know: the link's bug */
	}
	if (n < 0)
		*err = n;
	gso = ops->gso_max && ops->send_gso ? ops->gso_max(ctx) : 0;
	for (count = 0; count < MPS_PUMP_MAX; count++) {
		n = mps_output_gso(st, now, buf, sizeof(buf), gso, &seg);
		if (n <= 0)
			break;
		rc = gso ? ops->send_gso(ctx, buf, (size_t)n, seg, now)
			 : ops->send(ctx, buf, (size_t)n, now);
		if (rc < 0 && *err == 0)
			*err = rc;
	}
	if (n < 0 && *err == 0)
		*err = n;
	if (count == MPS_PUMP_MAX)
		return now; /* more to send: call again at once */
	t = mps_next_wakeup(st);
	l = ops->next_ready ? ops->next_ready(ctx) : MPS_TIME_NEVER;
	return l < t ? l : t;
}

int mps_ring_init(struct mps_stack *st, struct mps_ring *r, uint32_t cap)
{
	r->buf = mps_alloc(st, cap);
	r->cap = r->buf ? cap : 0;
	r->head = r->len = 0;
	return r->buf ? 0 : -ENOMEM;
}

int mps_ring_grow(struct mps_stack *st, struct mps_ring *r, uint32_t cap)
{
	uint8_t *buf;

	if (cap <= r->cap)
		return 0;
	buf = mps_alloc(st, cap);
	if (!buf)
		return -ENOMEM;
	/* Offsets count from the head, so whoever holds one still finds its bytes. */
	if (r->len)
		mps_ring_peek(r, 0, buf, r->len);
	mps_free(st, r->buf);
	r->buf = buf;
	r->cap = cap;
	r->head = 0;
	return 0;
}

void mps_sndbuf_tune(struct mps_conn *c)
{
	uint32_t max = c->st->cfg.sndbuf_max, cap = c->sndbuf.cap;
	uint64_t want = 0;
	unsigned int i;

	if (cap >= max)
		return;
	for (i = 0; i <= c->njoins; i++) {
		const struct mps_subflow *sf = i ? c->joins[i - 1] : &c->sf;

		if (sf->state == MPS_SF_ESTABLISHED || sf->state == MPS_SF_CLOSE_WAIT)
			want += sf->cwnd;
	}
	/*
	 * What the subflows may have in flight, and as much again queued behind
	 * it so that each ACK finds data to send (Linux's tcp_sndbuf_expand()
	 * also sizes by twice the window).
	 */
	want *= 2;
	if (want <= cap)
		return;
	while (cap < want && cap < max)
		cap = cap > max / 2 ? max : cap * 2;
	/* Without the memory the buffer keeps its size: slower, still bounded. */
	if (mps_ring_grow(c->st, &c->sndbuf, cap) == 0)
		c->st->counters[MPS_CNT_SNDBUF_GROWN]++;
}

void mps_rcvbuf_tune(struct mps_conn *c, const struct mps_tcpopts *t, uint64_t now)
{
	uint32_t max = c->st->cfg.rcvbuf_max, cap = c->rcvbuf.cap, rtt;
	uint64_t got;

	if (cap >= max || c->reset)
		return;
	/*
	 * Our RTT as a receiver (as Linux's tcp_rcv_rtt_measure_ts()): the peer
	 * echoes the TSval of an ACK of ours, and its data answers that ACK.
	 */
	if ((t->present & MPS_TCPOPTS_TS) && t->ts_ecr) {
		rtt = (uint32_t)(now / 1000) - t->ts_ecr; /* our TSval is the clock in ms */
		if (rtt < 60000) {
			rtt = rtt * 1000 + 1000; /* at least the resolution */
			c->drs_rtt = c->drs_rtt ? (uint32_t)(((uint64_t)c->drs_rtt * 7 + rtt) / 8)
						: rtt;
		}
	}
	if (!c->drs_rtt)
		return; /* no timestamps: the buffer keeps its size */
	if (!c->drs_started) {
		c->drs_started = true;
		c->drs_at = now;
		c->drs_bytes = c->bytes_received;
		return;
	}
	if (now - c->drs_at < c->drs_rtt)
		return;
	got = c->bytes_received - c->drs_bytes;
	c->drs_at = now;
	c->drs_bytes = c->bytes_received;
	/*
	 * More than half the buffer in one round trip: the window may be what
	 * holds the peer back, and in slow start it would double. Room for
	 * twice what came (Linux's tcp_rcv_space_adjust() sizes by the same).
	 */
	if (2 * got <= cap)
		return;
	while (cap < 2 * got && cap < max)
		cap = cap > max / 2 ? max : cap * 2;
	if (mps_ring_grow(c->st, &c->rcvbuf, cap) == 0)
		c->st->counters[MPS_CNT_RCVBUF_GROWN]++;
}

void mps_ring_free(struct mps_stack *st, struct mps_ring *r)
{
	mps_free(st, r->buf);
	r->buf = NULL;
	r->cap = r->len = 0;
}

uint32_t mps_ring_write(struct mps_ring *r, const uint8_t *src, uint32_t n)
{
	uint32_t room = r->cap - r->len, tail, first;

	if (n > room)
		n = room;
	tail = (r->head + r->len) % (r->cap ? r->cap : 1);
	first = r->cap - tail < n ? r->cap - tail : n;
	memcpy(r->buf + tail, src, first);
	memcpy(r->buf, src + first, n - first);
	r->len += n;
	return n;
}

void mps_ring_peek(const struct mps_ring *r, uint32_t off, uint8_t *dst, uint32_t n)
{
	uint32_t pos = (r->head + off) % r->cap, first = r->cap - pos < n ? r->cap - pos : n;

	memcpy(dst, r->buf + pos, first);
	memcpy(dst + first, r->buf, n - first);
}

void mps_ring_drop(struct mps_ring *r, uint32_t n)
{
	if (n > r->len)
		n = r->len;
	r->head = (r->head + n) % r->cap;
	r->len -= n;
}

void mps_ring_csum(const struct mps_ring *r, uint32_t off, uint32_t n, struct mps_dss_csum *c)
{
	uint32_t pos = (r->head + off) % r->cap, first = r->cap - pos < n ? r->cap - pos : n;

	mps_dss_csum_add(c, r->buf + pos, first);
	mps_dss_csum_add(c, r->buf, n - first);
}
