/*
 * The output side of a subflow: which segment goes next (SYN, data within
 * the windows, FIN, pure ACK, fast close), its TCP and MPTCP options, and
 * the IP/TCP packet itself with its checksum.
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

/*
 * A duplicate ACK says what arrived beyond the hole: as many SACK blocks as
 * the option space holds (RFC 2018 §3), the newest first.
 */
int mps_add_sack(const struct mps_conn *c, const struct mps_subflow *sf, uint8_t *p, int n,
		 uint8_t flags, bool mapped)
{
	uint32_t blk[MPS_SACK_BLOCKS_MAX][2];
	unsigned int k, i;

	if (!sf->sack_ok || mapped || (flags & MPS_TCP_RST) ||
	    n + 4 + MPS_TCPOLEN_SACK_BLK > MPS_MAX_OPTS)
		return n;
	k = mps_sack_blocks(c, sf, blk,
			    (unsigned int)(MPS_MAX_OPTS - n - 4) / MPS_TCPOLEN_SACK_BLK);
	if (!k)
		return n;
	p[n++] = MPS_TCPOPT_NOP;
	p[n++] = MPS_TCPOPT_NOP;
	p[n++] = MPS_TCPOPT_SACK;
	p[n++] = (uint8_t)(2 + k * MPS_TCPOLEN_SACK_BLK);
	for (i = 0; i < k; i++) {
		mps_put_be32(p + n, blk[i][0]);
		mps_put_be32(p + n + 4, blk[i][1]);
		n += MPS_TCPOLEN_SACK_BLK;
	}
	return n;
}

/*
 * Two runs queued out of order: a duplicate ACK carries a 4-byte DATA_ACK
 * (RFC 8684 §3.3.2 allows either) so that with timestamps a second SACK
 * block fits.
 */
bool mps_sack_wants_room(const struct mps_conn *c, const struct mps_subflow *sf)
{
	uint32_t blk[2][2];

	return sf->sack_ok && mps_sack_queued(c, sf) && mps_sack_blocks(c, sf, blk, 2) == 2;
}

/* The infinite mapping went at seq: from here on the connection is TCP. */
static void inf_map_sent(struct mps_conn *c, uint32_t seq, uint64_t now)
{
	c->inf_map_pending = false;
	c->inf_map_sent = true;
	c->inf_map_seq = seq;
	c->mp_fail_echo = false; /* the mapping answers the MP_FAIL too */
	c->st->counters[MPS_CNT_OUT_INFINITE_MAP]++;
	mps_event(c->st, MPS_EV_MP_FAIL, c, MPS_MP_FAIL_INFINITE_SENT, now);
	if (c->mptcp)
		mps_fall_back(c, MPS_FALLBACK_MP_FAIL_RCVD,
			      "MP_FAIL received: infinite mapping sent", now);
}

/* The infinite mapping: data-level length 0, checksum 0, this segment's DSN and SSN (as Linux). */
static void inf_map_opt(const struct mps_conn *c, struct mps_opt *o, uint64_t dsn, uint32_t seq)
{
	o->subtype = MPS_MPTCP_SUB_DSS;
	o->dss.flags |= MPS_DSS_FLAG_M | MPS_DSS_FLAG_m;
	o->dss.dsn = dsn;
	o->dss.ssn = seq - c->sf.iss;
	o->dss.data_len = 0;
	o->dss.has_csum = c->csum;
	o->dss.csum = 0;
}

/*
 * After a fallback only MP_FAIL and the infinite mapping still go (RFC 8684
 * §3.7): our MP_FAIL until the peer answers it, the infinite mapping on the
 * first data segment after the peer's MP_FAIL if we fell back before it
 * went, and again on that segment's retransmissions; an echo of the peer's
 * MP_FAIL on a pure ACK.
 */
static int fallback_opts(struct mps_conn *c, uint8_t *p, int n, uint64_t dsn, uint32_t seq,
			 uint32_t len, uint64_t now)
{
	struct mps_opt o;
	int k;

	memset(&o, 0, sizeof(o));
	if (len && (c->inf_map_pending || (c->inf_map_sent && seq == c->inf_map_seq))) {
		inf_map_opt(c, &o, dsn, seq);
		if (c->inf_map_pending)
			inf_map_sent(c, seq, now);
	} else if (c->mp_fail_tx || (c->mp_fail_echo && !len)) {
		o.subtype = MPS_MPTCP_SUB_FAIL;
		o.fail_dsn = c->mp_fail_dsn;
		c->mp_fail_echo = false;
		c->st->counters[MPS_CNT_OUT_MP_FAIL]++;
	} else {
		return n;
	}
	k = mps_opt_build(&o, p + n, (size_t)(MPS_MAX_OPTS - n));
	if (k < 0)
		return k;
	n += k;
	while (n % 4)
		p[n++] = MPS_TCPOPT_NOP;
	return n;
}

/*
 * A mapping larger than the segment: a super-segment's (TUN offloads), on its
 * first transmission (csum_known false: computed here and kept) and on the
 * retransmission of any part of it (the checksum as first sent; the data
 * before seq may be gone from the send buffer).
 */
struct map_whole {
	uint32_t seq;
	uint64_t dsn;
	uint32_t len;
	bool csum_known;
	uint16_t csum;
};

/*
 * Options of a non-SYN segment; returns their length (a multiple of 4).
 * whole, if not NULL, is the mapping a data segment carries instead of its own.
 */
static int build_opts(struct mps_conn *c, struct mps_subflow *sf, uint8_t *p, uint64_t now,
		      uint8_t flags, uint64_t dsn, uint32_t seq, uint32_t len, bool data_fin,
		      uint32_t ring_off, struct map_whole *whole)
{
	struct mps_dss_csum ck;
	struct mps_opt o;
	bool inf = false;
	int n = 0, k;

	if (sf->ts_ok && !(flags & MPS_TCP_RST)) {
		p[n++] = MPS_TCPOPT_NOP;
		p[n++] = MPS_TCPOPT_NOP;
		p[n++] = MPS_TCPOPT_TS;
		p[n++] = MPS_TCPOLEN_TS;
		mps_put_be32(p + n, (uint32_t)(now / 1000));
		mps_put_be32(p + n + 4, sf->ts_recent);
		n += 8;
	}
	if (!c->mptcp) {
		if (sf == &c->sf && !(flags & MPS_TCP_RST)) {
			n = fallback_opts(c, p, n, dsn, seq, len, now);
			if (n < 0)
				return n;
		}
		return mps_add_sack(c, sf, p, n, flags, len || data_fin);
	}
	memset(&o, 0, sizeof(o));
	if (c->is_client && !c->fully_established && !sf->is_join &&
	    ((len && dsn == c->lidsn + 1) || (!len && seq == sf->iss + 1 && !data_fin))) {
		/* MP_CAPABLE is repeated until the server is known to have our key. */
		o.subtype = MPS_MPTCP_SUB_CAPABLE;
		o.mpc.form = len ? MPS_MPC_DATA : MPS_MPC_ACK;
		o.mpc.version = MPS_MPTCP_VERSION;
		o.mpc.flags = MPS_MPC_FLAG_H | (c->csum ? MPS_MPC_FLAG_A : 0);
		o.mpc.snd_key = c->lkey;
		o.mpc.rcv_key = c->rkey;
		o.mpc.data_len = (uint16_t)len;
		if (len && c->csum) {
			mps_dss_csum_init(&ck, dsn, 1, (uint16_t)len);
			mps_ring_csum(&c->sndbuf, ring_off, len, &ck);
			o.mpc.has_csum = true;
			o.mpc.csum = mps_dss_csum_final(&ck);
		}
	} else if (sf->prio_pending && !len && !data_fin && !(flags & MPS_TCP_RST)) {
		/* Our MP_PRIO (mps_set_backup()), alone on a pure ACK of the subflow it is about. */
		o.subtype = MPS_MPTCP_SUB_PRIO;
		o.prio_backup = sf->backup;
		sf->prio_pending = false;
	} else if (c->echo_pending && !sf->is_join && !len && !data_fin && !(flags & MPS_TCP_RST)) {
		/* Alone on a pure ACK, as Linux does: an IPv6 echo with a port leaves no room. */
		o.subtype = MPS_MPTCP_SUB_ADD_ADDR;
		o.add_addr = c->echo;
		c->echo_pending = false;
	} else if (c->nrm_ids && !sf->is_join && !len && !data_fin && !(flags & MPS_TCP_RST)) {
		o.subtype = MPS_MPTCP_SUB_RM_ADDR;
		o.rm_addr.n = c->nrm_ids;
		memcpy(o.rm_addr.ids, c->rm_ids, c->nrm_ids);
		c->nrm_ids = 0;
	} else if (c->announce_idx >= 0 && !sf->is_join && !len && !data_fin &&
		   !(flags & MPS_TCP_RST)) {
		/* The timestamps, the only option written so far, make room for a v6 port. */
		if (mps_pm_announce_wants_room(c, (unsigned int)(MPS_MAX_OPTS - n)))
			n = 0;
		k = mps_pm_announce_opt(c, &o, (unsigned int)(MPS_MAX_OPTS - n));
		if (k < 0)
			return k;
	} else {
		o.subtype = MPS_MPTCP_SUB_DSS;
		o.dss.flags = MPS_DSS_FLAG_A | MPS_DSS_FLAG_a;
		o.dss.data_ack = c->rcv_nxt_dsn;
		if (!len && !data_fin && !(flags & MPS_TCP_RST) && mps_sack_wants_room(c, sf))
			o.dss.flags = MPS_DSS_FLAG_A;
		/* After the peer's MP_FAIL, the first new data carries the infinite mapping. */
		inf = c->inf_map_pending && len && !data_fin && !sf->is_join &&
		      SEQ_GEQ(seq, sf->snd_max);
		if (inf) {
			inf_map_opt(c, &o, dsn, seq);
		} else if (whole && len && !data_fin) {
			o.dss.flags |= MPS_DSS_FLAG_M | MPS_DSS_FLAG_m;
			o.dss.dsn = whole->dsn;
			o.dss.ssn = whole->seq - sf->iss;
			o.dss.data_len = (uint16_t)whole->len;
			if (c->csum && !whole->csum_known) {
				/* First transmission: the segment is the whole mapping. */
				mps_dss_csum_init(&ck, dsn, o.dss.ssn, o.dss.data_len);
				mps_ring_csum(&c->sndbuf, ring_off, len, &ck);
				whole->csum = mps_dss_csum_final(&ck);
				whole->csum_known = true;
			}
			o.dss.has_csum = c->csum;
			o.dss.csum = c->csum ? whole->csum : 0;
		} else if (len || data_fin) {
			o.dss.flags |= MPS_DSS_FLAG_M | MPS_DSS_FLAG_m;
			o.dss.dsn = dsn;
			o.dss.ssn = len ? seq - sf->iss : 0;
			o.dss.data_len = (uint16_t)(len + (data_fin ? 1 : 0));
			if (data_fin)
				o.dss.flags |= MPS_DSS_FLAG_F;
			if (c->csum) {
				mps_dss_csum_init(&ck, dsn, o.dss.ssn, o.dss.data_len);
				if (len)
					mps_ring_csum(&c->sndbuf, ring_off, len, &ck);
				o.dss.has_csum = true;
				o.dss.csum = mps_dss_csum_final(&ck);
			}
		}
	}
	k = mps_opt_build(&o, p + n, (size_t)(MPS_MAX_OPTS - n));
	if (k < 0)
		return k;
	n += k;
	if (inf) {
		inf_map_sent(c, seq, now);
	} else if (o.subtype == MPS_MPTCP_SUB_DSS && !len && !data_fin && !sf->is_join &&
		   (c->mp_fail_tx || c->mp_fail_echo) && n + MPS_FAIL_LEN <= MPS_MAX_OPTS) {
		/* Ours until answered, or the answer to the peer's: after the DATA_ACK, as Linux. */
		memset(&o, 0, sizeof(o));
		o.subtype = MPS_MPTCP_SUB_FAIL;
		o.fail_dsn = c->mp_fail_dsn;
		k = mps_opt_build(&o, p + n, (size_t)(MPS_MAX_OPTS - n));
		if (k < 0)
			return k;
		n += k;
		c->mp_fail_echo = false;
		c->st->counters[MPS_CNT_OUT_MP_FAIL]++;
	}
	while (n % 4)
		p[n++] = MPS_TCPOPT_NOP;
	return mps_add_sack(c, sf, p, n, flags, len || data_fin);
}

/* Options of a SYN or SYN/ACK. */
static int build_syn_opts(struct mps_conn *c, uint8_t *p, uint64_t now, bool synack)
{
	struct mps_subflow *sf = &c->sf;
	struct mps_opt o;
	int n = 0, k;

	p[n++] = MPS_TCPOPT_MSS;
	p[n++] = MPS_TCPOLEN_MSS;
	mps_put_be16(p + n, c->st->cfg.mss);
	n += 2;
	if (!synack || sf->snd_wscale || sf->rcv_wscale) {
		p[n++] = MPS_TCPOPT_NOP;
		p[n++] = MPS_TCPOPT_WS;
		p[n++] = MPS_TCPOLEN_WS;
		p[n++] = sf->rcv_wscale;
	}
	if (!synack || sf->sack_ok) {
		p[n++] = MPS_TCPOPT_NOP;
		p[n++] = MPS_TCPOPT_NOP;
		p[n++] = MPS_TCPOPT_SACK_PERM;
		p[n++] = MPS_TCPOLEN_SACK_PERM;
	}
	if (!synack || sf->ts_ok) {
		p[n++] = MPS_TCPOPT_NOP;
		p[n++] = MPS_TCPOPT_NOP;
		p[n++] = MPS_TCPOPT_TS;
		p[n++] = MPS_TCPOLEN_TS;
		mps_put_be32(p + n, (uint32_t)(now / 1000));
		mps_put_be32(p + n + 4, synack ? sf->ts_recent : 0);
		n += 8;
	}
	if (!c->mptcp)
		return n;
	memset(&o, 0, sizeof(o));
	o.subtype = MPS_MPTCP_SUB_CAPABLE;
	o.mpc.form = synack ? MPS_MPC_SYNACK : MPS_MPC_SYN;
	o.mpc.version = MPS_MPTCP_VERSION;
	o.mpc.flags = MPS_MPC_FLAG_H | (c->csum ? MPS_MPC_FLAG_A : 0);
	o.mpc.snd_key = c->lkey;
	k = mps_opt_build(&o, p + n, (size_t)(MPS_MAX_OPTS - n));
	return k < 0 ? k : n + k;
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

static uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t len)
{
	return mps_csum_add(sum, p, len); /* word-wide: a super-segment is 64 KiB */
}

/* Write IP + TCP headers, options and payload; returns the packet length. */
int mps_tcp_write_packet(struct mps_stack *st, const struct mps_pkt_spec *ps, uint8_t *buf,
			 size_t cap)
{
	size_t ihl = ps->local->family == 4 ? MPS_IP4_HLEN_MIN : MPS_IP6_HLEN;
	size_t alen = ps->local->family == 4 ? 4 : 16;
	size_t thl = MPS_TCP_HLEN_MIN + (size_t)ps->optlen, tot = ihl + thl + ps->len;
	uint8_t *ip = buf, *t = buf + ihl;
	uint32_t sum;

	if (tot > cap || tot > 0xffff)
		return -ENOSPC;
	memset(buf, 0, ihl + MPS_TCP_HLEN_MIN);
	if (ps->local->family == 4) {
		ip[MPS_IP4_OFF_VHL] = 0x45;
		mps_put_be16(ip + MPS_IP4_OFF_LEN, (uint16_t)tot);
		mps_put_be16(ip + MPS_IP4_OFF_ID, st->ip_id++);
		mps_put_be16(ip + MPS_IP4_OFF_FRAG, MPS_IP4_FRAG_DF);
		ip[MPS_IP4_OFF_TTL] = 64;
		ip[MPS_IP4_OFF_PROTO] = MPS_IPPROTO_TCP;
		memcpy(ip + MPS_IP4_OFF_SRC, ps->local->addr, 4);
		memcpy(ip + MPS_IP4_OFF_DST, ps->remote->addr, 4);
		mps_put_be16(ip + MPS_IP4_OFF_CSUM, (uint16_t)~csum_fold(csum_add(0, ip, ihl)));
	} else {
		ip[MPS_IP6_OFF_VTCFL] = 0x60;
		mps_put_be16(ip + MPS_IP6_OFF_PLEN, (uint16_t)(thl + ps->len));
		ip[MPS_IP6_OFF_NXT] = MPS_IPPROTO_TCP;
		ip[MPS_IP6_OFF_HLIM] = 64;
		memcpy(ip + MPS_IP6_OFF_SRC, ps->local->addr, 16);
		memcpy(ip + MPS_IP6_OFF_DST, ps->remote->addr, 16);
	}
	mps_put_be16(t + MPS_TCP_OFF_SPORT, ps->local->port);
	mps_put_be16(t + MPS_TCP_OFF_DPORT, ps->remote->port);
	mps_put_be32(t + MPS_TCP_OFF_SEQ, ps->seq);
	mps_put_be32(t + MPS_TCP_OFF_ACK, ps->ack);
	t[MPS_TCP_OFF_DOFF] = (uint8_t)((thl / 4) << 4);
	t[MPS_TCP_OFF_FLAGS] = ps->flags;
	mps_put_be16(t + MPS_TCP_OFF_WIN, ps->win);
	if (ps->optlen)
		memcpy(t + MPS_TCP_HLEN_MIN, ps->opts, (size_t)ps->optlen);
	if (ps->len)
		mps_ring_peek(ps->ring, ps->ring_off, t + thl, ps->len);
	sum = csum_add(0, ps->local->addr, alen);
	sum = csum_add(sum, ps->remote->addr, alen);
	sum += MPS_IPPROTO_TCP + (uint32_t)(thl + ps->len);
	sum = csum_add(sum, t, thl + ps->len);
	mps_put_be16(t + MPS_TCP_OFF_CSUM, (uint16_t)~csum_fold(sum));
	return (int)tot;
}

int mps_tcp_build_rst(struct mps_stack *st, const struct mps_rst *r, uint8_t *buf, size_t cap)
{
	struct mps_pkt_spec ps = { .local = &r->local,
				   .remote = &r->remote,
				   .seq = r->seq,
				   .ack = r->ack,
				   .flags = r->flags };
	struct mps_opt o;
	uint8_t opts[MPS_FASTCLOSE_LEN + MPS_TCPRST_LEN + MPS_FAIL_LEN];
	int k;

	ps.opts = opts;
	if (r->fastclose) {
		memset(&o, 0, sizeof(o));
		o.subtype = MPS_MPTCP_SUB_FASTCLOSE;
		o.fastclose_key = r->fc_key;
		k = mps_opt_build(&o, opts, sizeof(opts));
		if (k < 0)
			return k;
		ps.optlen = k;
	}
	if (r->tcprst >= 0) {
		memset(&o, 0, sizeof(o));
		o.subtype = MPS_MPTCP_SUB_TCPRST;
		o.tcprst.reason = (uint8_t)r->tcprst;
		k = mps_opt_build(&o, opts + ps.optlen, sizeof(opts) - (size_t)ps.optlen);
		if (k < 0)
			return k;
		ps.optlen += k;
	}
	if (r->tcprst >= 0 && r->mp_fail) {
		/* A subflow reset for a DSS checksum: MP_FAIL names the mapping (RFC 8684 §3.7). */
		memset(&o, 0, sizeof(o));
		o.subtype = MPS_MPTCP_SUB_FAIL;
		o.fail_dsn = r->fail_dsn;
		k = mps_opt_build(&o, opts + ps.optlen, sizeof(opts) - (size_t)ps.optlen);
		if (k < 0)
			return k;
		ps.optlen += k;
	}
	return mps_tcp_write_packet(st, &ps, buf, cap);
}

static uint16_t adv_window(const struct mps_conn *c, const struct mps_subflow *sf, bool syn)
{
	uint32_t w = mps_rcv_space(c);

	if (!syn)
		w >>= sf->rcv_wscale;
	return w > 0xffff ? 0xffff : (uint16_t)w;
}

/* An abortive close: RST with MP_FASTCLOSE (the peer's key) and MP_TCPRST. */
static int send_fastclose(struct mps_conn *c, uint64_t now, uint8_t *buf, size_t cap)
{
	struct mps_subflow *sf = &c->sf;
	uint8_t opts[MPS_MAX_OPTS];
	struct mps_opt o;
	struct mps_pkt_spec ps = { .local = &sf->local,
				   .remote = &sf->remote,
				   .seq = sf->snd_nxt,
				   .ack = sf->rcv_nxt,
				   .flags = MPS_TCP_RST | MPS_TCP_ACK,
				   .opts = opts };
	int k;

	c->fastclose_pending = false;
	if (c->mptcp && sf->state != MPS_SF_SYN_SENT) {
		memset(&o, 0, sizeof(o));
		o.subtype = MPS_MPTCP_SUB_FASTCLOSE;
		o.fastclose_key = c->rkey;
		k = mps_opt_build(&o, opts, sizeof(opts));
		if (k < 0)
			return k;
		ps.optlen = k;
		o.subtype = MPS_MPTCP_SUB_TCPRST;
		o.tcprst.flags = 0;
		o.tcprst.reason = (uint8_t)c->rst_tcprst; /* why, if we know (0: unspecified) */
		k = mps_opt_build(&o, opts + ps.optlen, sizeof(opts) - (size_t)ps.optlen);
		if (k < 0)
			return k;
		ps.optlen += k;
		if (c->rst_tcprst == MPS_TCPRST_MIDDLEBOX) {
			/* A checksum failure that could not fall back: MP_FAIL names the mapping. */
			memset(&o, 0, sizeof(o));
			o.subtype = MPS_MPTCP_SUB_FAIL;
			o.fail_dsn = c->mp_fail_dsn;
			k = mps_opt_build(&o, opts + ps.optlen, sizeof(opts) - (size_t)ps.optlen);
			if (k < 0)
				return k;
			ps.optlen += k;
			c->st->counters[MPS_CNT_OUT_MP_FAIL]++;
		}
	}
	if (sf->state == MPS_SF_SYN_SENT) {
		mps_conn_reset(c, MPS_RST_LOCAL, now);
		return 0; /* nothing to reset on the other side */
	}
	mps_conn_reset(c, MPS_RST_LOCAL, now);
	return mps_tcp_write_packet(c->st, &ps, buf, cap);
}

static int send_syn(struct mps_conn *c, uint64_t now, uint8_t *buf, size_t cap)
{
	struct mps_subflow *sf = &c->sf;
	bool synack = sf->state == MPS_SF_SYN_RCVD;
	uint8_t opts[MPS_MAX_OPTS];
	struct mps_pkt_spec ps = { .local = &sf->local,
				   .remote = &sf->remote,
				   .seq = sf->iss,
				   .ack = synack ? sf->rcv_nxt : 0,
				   .flags = MPS_TCP_SYN | (synack ? MPS_TCP_ACK : 0),
				   .win = adv_window(c, sf, true),
				   .opts = opts };

	ps.optlen = build_syn_opts(c, opts, now, synack);
	if (ps.optlen < 0)
		return ps.optlen;
	if (sf->snd_max != sf->iss)
		sf->retransmits++;
	sf->snd_nxt = sf->snd_max = sf->iss + 1;
	if (sf->backoff == 0 && !sf->rtt_timing) {
		sf->rtt_timing = true;
		sf->rtt_seq = sf->iss + 1;
		sf->rtt_start = now;
	}
	if (sf->rto_at == MPS_TIME_NEVER)
		sf->rto_at = now + sf->rto;
	sf->ack_now = false;
	return mps_tcp_write_packet(c->st, &ps, buf, cap);
}

/* A segment from seq: len bytes of data at dsn, then FIN if fin; whole as for build_opts(). */
/*
 * Options that go alone on a pure ACK of sf are waiting: its MP_PRIO, or
 * the connection-level ones where sf carries them (the initial subflow, or
 * a join once that is gone).
 */
static bool opts_waiting(const struct mps_conn *c, const struct mps_subflow *sf)
{
	if (sf->prio_pending)
		return true;
	if (sf->is_join && c->sf.state != MPS_SF_CLOSED)
		return false;
	return c->echo_pending || c->nrm_ids || c->announce_idx >= 0 || c->mp_fail_tx ||
	       c->mp_fail_echo;
}

static int send_segment_map(struct mps_conn *c, struct mps_subflow *sf, uint64_t now, uint32_t seq,
			    uint64_t dsn, uint32_t len, bool fin, struct map_whole *whole,
			    uint8_t *buf, size_t cap)
{
	uint8_t opts[MPS_MAX_OPTS];
	struct mps_pkt_spec ps = { .local = &sf->local,
				   .remote = &sf->remote,
				   .seq = seq,
				   .ack = sf->rcv_nxt,
				   .flags = MPS_TCP_ACK | (fin ? MPS_TCP_FIN : 0) |
					    (len ? MPS_TCP_PSH : 0),
				   .win = adv_window(c, sf, false),
				   .opts = opts,
				   .ring = &c->sndbuf,
				   .ring_off = (uint32_t)(dsn - c->snd_base_dsn),
				   .len = len };
	uint32_t end = seq + len + (fin ? 1 : 0);
	int rc;

	ps.optlen = build_opts(c, sf, opts, now, ps.flags, fin && !len ? mps_data_end_dsn(c) : dsn,
			       seq, len, fin && c->mptcp && !sf->is_join, ps.ring_off, whole);
	if (ps.optlen < 0)
		return ps.optlen;
	rc = mps_tcp_write_packet(c->st, &ps, buf, cap);
	if (rc < 0)
		return rc;
	c->rcv_adv_edge = c->rcv_nxt_dsn + mps_rcv_space(c);
	/* A data or FIN segment leaves a waiting ADD_ADDR echo for a pure ACK next; a pure ACK never repeats itself. */
	sf->unacked_segs = 0; /* this segment carries the ACK */
	sf->delack_at = MPS_TIME_NEVER;
	sf->ack_now = (len || fin) && opts_waiting(c, sf);
	if (len || fin) {
		if (sf->sack_recovery)
			sf->prr_out += len; /* RFC 6937 prr_out */
		if (SEQ_LT(seq, sf->snd_max)) {
			sf->retransmits++;
			sf->rtt_timing = false;
			/*
			 * HighRxt (RFC 6675): SACK recovery resends no hole below
			 * it again, unless data sent after this shows it lost.
			 */
			if (sf->sack_recovery) {
				if (SEQ_GT(end, sf->rexmit_next))
					sf->rexmit_next = end;
				sf->rxt_mark = sf->snd_max;
				sf->rxt_marked = true;
			}
		} else if (!sf->rtt_timing) {
			sf->rtt_timing = true;
			sf->rtt_seq = end;
			sf->rtt_start = now;
		}
		if (SEQ_GT(end, sf->snd_max)) {
			sf->bytes_sent += (uint32_t)(end - sf->snd_max) - (fin ? 1 : 0);
			c->bytes_sent += (uint32_t)(end - sf->snd_max) - (fin ? 1 : 0);
			sf->snd_max = end;
		}
		if (sf->rto_at == MPS_TIME_NEVER)
			sf->rto_at = now + sf->rto;
	}
	return rc;
}

static int send_segment(struct mps_conn *c, struct mps_subflow *sf, uint64_t now, uint32_t seq,
			uint64_t dsn, uint32_t len, bool fin, uint8_t *buf, size_t cap)
{
	return send_segment_map(c, sf, now, seq, dsn, len, fin, NULL, buf, cap);
}

static bool can_send_data(const struct mps_subflow *sf)
{
	return sf->state == MPS_SF_ESTABLISHED || sf->state == MPS_SF_CLOSE_WAIT;
}

/*
 * DATA_FIN (with the initial subflow's FIN) once every byte has been handed
 * to a subflow and none waits for reinjection. Data reinjected later goes
 * on the join subflows.
 */
static bool fin_due(const struct mps_conn *c, const struct mps_subflow *sf, uint32_t seq)
{
	uint64_t end = mps_data_end_dsn(c);

	if (!c->shut_wr || sf->is_join)
		return false;
	if (sf->fin_sent)
		return seq == sf->fin_seq && SEQ_LT(sf->snd_una, sf->fin_seq + 1);
	if (seq != sf->snd_max || c->snd_nxt_dsn != end || c->nrq)
		return false;
	/* A failing initial subflow leaves the DATA_FIN to a working join (mps_sched.c). */
	if (sf->backoff && !c->data_fin_sent && c->mptcp && mps_conn_working_join(c))
		return false;
	return can_send_data(sf);
}

static int send_fin(struct mps_conn *c, struct mps_subflow *sf, uint64_t now, uint32_t seq,
		    uint8_t *buf, size_t cap)
{
	int rc;

	if (!sf->fin_sent) {
		sf->fin_sent = true;
		sf->fin_seq = seq;
		c->data_fin_sent = true;
		sf->state = sf->state == MPS_SF_CLOSE_WAIT ? MPS_SF_LAST_ACK : MPS_SF_FIN_WAIT_1;
		if (c->state == MPS_CONN_ESTABLISHED)
			c->state = MPS_CONN_CLOSING;
	}
	rc = send_segment(c, sf, now, seq, mps_data_end_dsn(c), 0, true, buf, cap);
	if (rc > 0 && SEQ_GEQ(seq, sf->snd_nxt))
		sf->snd_nxt = seq + 1;
	return rc;
}

/*
 * Payload of one new data packet: one MSS, or for a link that segments
 * (mps_output_gso) as much as it takes, within 64 KiB and the caller's
 * buffer once the largest headers are counted. Retransmissions stay one
 * MSS so loss recovery repairs exactly what was lost.
 */
static uint32_t gso_limit(const struct mps_conn *c, const struct mps_subflow *sf, uint32_t mss,
			  size_t cap)
{
	const struct mps_stack *st = c->st;
	size_t hdr = (sf->local.family == 4 ? MPS_IP4_HLEN_MIN : MPS_IP6_HLEN) + MPS_TCP_HLEN_MIN +
		     MPS_MAX_OPTS;
	size_t lim = st->out_gso_max;

	/*
	 * Not while the first data carries MP_CAPABLE, nor around MP_FAIL and
	 * the infinite mapping: those options are meant for one segment.
	 */
	if (lim <= mss || c->inf_map_pending || c->mp_fail_tx || c->mp_fail_echo ||
	    (c->mptcp && c->is_client && !c->fully_established))
		return mss;
	if (lim > 0xffff - hdr)
		lim = 0xffff - hdr;
	if (cap < hdr + lim)
		lim = cap > hdr ? cap - hdr : 0;
	/* Whole segments only: the last piece of a cut packet is not a runt. */
	lim -= lim % mss;
	return lim > mss ? (uint32_t)lim : mss;
}

/* Data (or FIN) from seq, within the windows; 0 if nothing can go. */
static int send_from(struct mps_conn *c, struct mps_subflow *sf, uint64_t now, uint32_t seq,
		     bool one, uint32_t max, uint8_t *buf, size_t cap)
{
	uint64_t dsn = 0;
	uint32_t flight = seq - sf->snd_una, wnd, len, big, room = 0, mss = mps_sf_mss(c, sf);
	bool fresh = !SEQ_LT(seq, sf->snd_max), reinject = false, is_whole = false;
	struct map_whole whole = { 0 };
	int rc;

	if (!fresh) {
		/* A retransmission carries the DSNs the first transmission carried. */
		if (!mps_smap_find(sf, seq, &dsn, &room))
			return fin_due(c, sf, seq) ? send_fin(c, sf, now, seq, buf, cap) : 0;
		/* ... and a super-segment's part its whole mapping. */
		is_whole = mps_smap_whole(sf, seq, &whole.seq, &whole.dsn, &whole.len, &whole.csum);
		whole.csum_known = is_whole;
		if (dsn < c->snd_base_dsn)
			return 0; /* cannot happen: the buffer keeps what a subflow may resend */
	} else {
		/* Zero window with nothing in flight: the RTO timer becomes the persist timer. */
		if (sf->snd_wnd == 0 && flight == 0 && !one && sf->rto_at == MPS_TIME_NEVER)
			sf->rto_at = now + sf->rto;
		if (!mps_sched_take(c, sf, one, &dsn, &room, &reinject))
			return fin_due(c, sf, seq) ? send_fin(c, sf, now, seq, buf, cap) : 0;
	}
	big = fresh && !one ? gso_limit(c, sf, mss, cap) : mss;
	len = room < big ? room : big;
	if (!one) {
		/* In SACK recovery the congestion window bounds pipe (RFC 6675), not the flight. */
		uint32_t used = sf->sack_recovery ? mps_sack_pipe(sf, mss) : flight;
		uint32_t cwnd = fresh ? mps_send_cwnd(sf, mss) : sf->cwnd;

		if (used >= cwnd || flight >= sf->snd_wnd)
			return 0;
		wnd = cwnd - used < sf->snd_wnd - flight ? cwnd - used : sf->snd_wnd - flight;
		if (len > wnd)
			len = wnd;
	}
	/*
	 * The peer's connection-level window bounds data on every subflow: a
	 * subflow's own window, added to a DATA_ACK that came on another one,
	 * may reach beyond it.
	 */
	if (fresh && c->mptcp && !one) {
		uint64_t lim = mps_conn_wnd_edge(c);

		if (dsn >= lim)
			return 0;
		if (len > lim - dsn)
			len = (uint32_t)(lim - dsn);
	}
	if (max && len > max)
		len = max;
	if (len == 0)
		return 0;
	if (fresh && len > mss) {
		/* A super-segment: one mapping, kept whole for its retransmissions. */
		if (mps_smap_add_whole(sf, seq, dsn, len) < 0)
			return 0;
		is_whole = true;
		whole = (struct map_whole){ .seq = seq, .dsn = dsn, .len = len };
	} else if (fresh && mps_smap_add(sf, seq, dsn, len) < 0) {
		return 0; /* the send map is full: this subflow takes nothing new for now */
	}
	rc = send_segment_map(c, sf, now, seq, dsn, len, false, is_whole ? &whole : NULL, buf, cap);
	if (rc <= 0)
		return rc;
	if (fresh && len > mss) {
		c->st->out_seg_size = mss;
		if (whole.csum_known)
			mps_smap_set_csum(sf, seq, whole.csum);
	}
	if (fresh)
		mps_sched_took(c, dsn, len, reinject);
	if (reinject)
		c->data_resent = true;
	if (SEQ_GEQ(seq + len, sf->snd_nxt))
		sf->snd_nxt = seq + len;
	return rc;
}

/*
 * One segment of SACK recovery by RFC 6675's NextSeg(), while pipe is below
 * cwnd: the first lost hole above HighRxt (rule 1), else new data (rule 2),
 * else any hole above HighRxt (rule 3), else once the last segment in
 * flight (rule 4, RescueRxt, which leaves HighRxt as it is). Several go per
 * ACK as pipe allows, since the caller asks again until nothing goes.
 */
static int sack_recovery_send(struct mps_conn *c, struct mps_subflow *sf, uint64_t now,
			      uint8_t *buf, size_t cap)
{
	uint32_t mss = mps_sf_mss(c, sf), seq, len, high;
	int rc;

	if (mps_sack_pipe(sf, mss) >= sf->cwnd)
		return 0;
	if (mps_sack_hole(sf, mss, true, &seq, &len))
		return send_from(c, sf, now, seq, true, len, buf, cap);
	rc = send_from(c, sf, now, sf->snd_nxt, false, 0, buf, cap);
	if (rc != 0)
		return rc;
	if (mps_sack_hole(sf, mss, false, &seq, &len))
		return send_from(c, sf, now, seq, true, len, buf, cap);
	if (!mps_sack_rescue(sf, mss, &seq, &len))
		return 0;
	high = sf->rexmit_next;
	rc = send_from(c, sf, now, seq, true, len, buf, cap);
	sf->rexmit_next = high;
	sf->rescue_done = true;
	return rc;
}

int mps_tcp_send_data(struct mps_conn *c, struct mps_subflow *sf, uint64_t now, uint8_t *buf,
		      size_t cap)
{
	int rc;

	if (sf->rexmit_one) {
		sf->rexmit_one = false;
		if (SEQ_GEQ(sf->rexmit_seq, sf->snd_una) && SEQ_LT(sf->rexmit_seq, sf->snd_max)) {
			rc = send_from(c, sf, now, sf->rexmit_seq, true, sf->rexmit_max, buf, cap);
			if (rc != 0)
				return rc;
		}
	}
	if (sf->in_recovery && sf->sack_recovery && sf->state != MPS_SF_TIME_WAIT)
		return sack_recovery_send(c, sf, now, buf, cap);
	if (sf->state != MPS_SF_TIME_WAIT) {
		/* After an RTO with a zero window, one byte goes out as a probe. */
		bool probe = sf->snd_wnd == 0 && sf->snd_nxt == sf->snd_una && sf->backoff > 0;

		rc = send_from(c, sf, now, sf->snd_nxt, probe, 0, buf, cap);
		if (rc != 0)
			return rc;
	}
	return 0;
}

int mps_tcp_send_data_fin(struct mps_conn *c, struct mps_subflow *sf, uint64_t now, uint8_t *buf,
			  size_t cap)
{
	uint8_t opts[MPS_MAX_OPTS];
	struct mps_pkt_spec ps = { .local = &sf->local,
				   .remote = &sf->remote,
				   .seq = sf->snd_nxt,
				   .ack = sf->rcv_nxt,
				   .flags = MPS_TCP_ACK,
				   .win = adv_window(c, sf, false),
				   .opts = opts };

	c->dfin_resend = false;
	ps.optlen = build_opts(c, sf, opts, now, ps.flags, mps_data_end_dsn(c), sf->snd_nxt, 0,
			       true, 0, NULL);
	if (ps.optlen < 0)
		return ps.optlen;
	sf->ack_now = false;
	sf->unacked_segs = 0;
	sf->delack_at = MPS_TIME_NEVER;
	return mps_tcp_write_packet(c->st, &ps, buf, cap);
}

/*
 * A pure ACK of sf (used by join subflows too). Its sequence number is
 * snd_max, not snd_nxt: after a timeout snd_nxt goes back to snd_una, and
 * an ACK numbered below the peer's rcv_nxt is out of its window (RFC 9293
 * §3.10.7.4), so with data lost both ways each end would drop the other's
 * ACKs and both would stall until they gave up. Past the peer's window
 * (it shrank, or is zero) the window's edge is used instead, as Linux's
 * tcp_acceptable_seq() does, so that the ACK stays acceptable there too.
 */
int mps_tcp_send_ack(struct mps_conn *c, struct mps_subflow *sf, uint64_t now, uint8_t *buf,
		     size_t cap)
{
	uint32_t seq = sf->snd_max, edge = sf->snd_una + sf->snd_wnd;

	if (SEQ_GT(seq, edge))
		seq = edge;
	return send_segment(c, sf, now, seq, c->snd_base_dsn, 0, false, buf, cap);
}

int mps_tcp_output(struct mps_conn *c, uint64_t now, uint8_t *buf, size_t cap)
{
	struct mps_subflow *sf = &c->sf;
	int rc;

	if (c->fastclose_pending)
		return send_fastclose(c, now, buf, cap);
	if (c->reset || sf->state == MPS_SF_CLOSED)
		return 0;
	if ((sf->state == MPS_SF_SYN_SENT || sf->state == MPS_SF_SYN_RCVD) &&
	    sf->snd_nxt == sf->iss)
		return send_syn(c, now, buf, cap);
	if (sf->state == MPS_SF_SYN_SENT || sf->state == MPS_SF_SYN_RCVD) {
		sf->ack_now = false; /* no bare ACK before the handshake is done */
		return 0;
	}
	rc = mps_tcp_send_data(c, sf, now, buf, cap);
	if (rc != 0)
		return rc;
	if (c->dfin_resend && c->dfin_serial == sf->serial)
		return mps_tcp_send_data_fin(c, sf, now, buf, cap);
	if (sf->ack_now)
		return mps_tcp_send_ack(c, sf, now, buf, cap);
	return 0;
}
