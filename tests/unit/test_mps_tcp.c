/*
 * Segment-level behaviour of the stack against hand-made segments from a
 * peer, on a connection set up between two stacks in memory. Covers what the
 * simulated network cannot produce because our own stack never sends it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fj_test.h"
#include "mps.h"
#include "mps_crypto.h"
#include "mps_opt.h"
#include "mps_seg.h"
#include "prot/wire.h"

static const struct mps_addr caddr = { .family = 4, .addr = { 10, 0, 0, 1 }, .port = 40000 };
static const struct mps_addr saddr = { .family = 4, .addr = { 10, 0, 0, 2 }, .port = 5002 };

struct pair {
	struct mps_stack *c, *s;
	struct mps_conn *cc, *sc;
	uint32_t cseq, sseq;   /* next subflow sequence numbers of client and server */
	struct mps_seg last_s; /* the server's last segment */
	uint8_t last_s_buf[2048];
	uint64_t now;
};

static void shuttle(struct pair *p)
{
	uint8_t buf[2048];
	struct mps_seg seg;
	enum mps_seg_err err;
	int n, rounds;

	for (rounds = 0; rounds < 64; rounds++) {
		int moved = 0;

		while ((n = mps_output(p->c, p->now, buf, sizeof(buf))) > 0) {
			if (mps_seg_parse(buf, (size_t)n, 0, &seg, &err) == 0) {
				p->cseq = seg.seq + seg.payload_len + !!(seg.flags & 0x03);
				if (seg.flags & 0x10)
					p->sseq = seg.ack;
			}
			mps_input(p->s, buf, (size_t)n, p->now);
			moved = 1;
		}
		while ((n = mps_output(p->s, p->now, p->last_s_buf, sizeof(p->last_s_buf))) > 0) {
			mps_seg_parse(p->last_s_buf, (size_t)n, 0, &p->last_s, &err);
			mps_input(p->c, p->last_s_buf, (size_t)n, p->now);
			moved = 1;
		}
		if (!moved) {
			/* Let a delayed ACK (or anything else due within 100 ms) fire. */
			uint64_t t = mps_next_wakeup(p->c), u = mps_next_wakeup(p->s);

			t = u < t ? u : t;
			if (t == MPS_TIME_NEVER || t > p->now + 100000)
				break;
			if (t > p->now)
				p->now = t;
			continue;
		}
		p->now += 1000;
	}
}

static void pair_up_cfg(struct pair *p, bool checksum)
{
	struct mps_config cfg = { .seed = 5, .checksum = checksum };
	int err;

	memset(p, 0, sizeof(*p));
	p->c = mps_stack_create(&cfg, &err);
	cfg.seed = 6;
	p->s = mps_stack_create(&cfg, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p->c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p->s);
	CU_ASSERT_EQUAL_FATAL(mps_listen(p->s, &saddr), 0);
	CU_ASSERT_EQUAL_FATAL(mps_connect(p->c, &caddr, &saddr, &p->cc), 0);
	shuttle(p);
	p->sc = mps_accept(p->s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p->sc);
}

static void pair_up(struct pair *p)
{
	pair_up_cfg(p, false);
}

static uint32_t sum16(const uint8_t *b, size_t len, uint32_t sum)
{
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(b[i] << 8 | b[i + 1]);
	if (len & 1)
		sum += (uint32_t)b[len - 1] << 8;
	return sum;
}

/* A client -> server segment with TCP flags, options and payload, checksummed. */
static size_t make_segment_flags(uint8_t *pkt, uint8_t flags, uint32_t seq, uint32_t ack,
				 const uint8_t *opts, size_t optlen, const uint8_t *data,
				 size_t len)
{
	size_t thl = 20 + optlen, tot = 20 + thl + len;
	uint32_t sum;

	memset(pkt, 0, 40);
	pkt[0] = 0x45;
	mps_put_be16(pkt + 2, (uint16_t)tot);
	pkt[8] = 64;
	pkt[9] = 6;
	memcpy(pkt + 12, caddr.addr, 4);
	memcpy(pkt + 16, saddr.addr, 4);
	mps_put_be16(pkt + 20, caddr.port);
	mps_put_be16(pkt + 22, saddr.port);
	mps_put_be32(pkt + 24, seq);
	mps_put_be32(pkt + 28, ack);
	pkt[32] = (uint8_t)((thl / 4) << 4);
	pkt[33] = flags;
	mps_put_be16(pkt + 34, 1000);
	memcpy(pkt + 40, opts, optlen);
	memcpy(pkt + 40 + optlen, data, len);
	sum = sum16(pkt + 12, 8, 0) + 6 + (uint32_t)(thl + len);
	sum = sum16(pkt + 20, thl + len, sum);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	mps_put_be16(pkt + 36, (uint16_t)~sum);
	return tot;
}

/* A client -> server PSH,ACK segment with the given options and payload, checksummed. */
static size_t make_segment(uint8_t *pkt, uint32_t seq, uint32_t ack, const uint8_t *opts,
			   size_t optlen, const uint8_t *data, size_t len)
{
	return make_segment_flags(pkt, 0x18, seq, ack, opts, optlen, data, len);
}

/* The DATA_ACK of the server's last segment. */
static uint64_t last_data_ack(const struct pair *p)
{
	struct mps_tcpopts t;
	struct mps_opt o;
	enum mps_opt_err err;
	int i;

	mps_tcpopt_walk(p->last_s.opts, p->last_s.opts_len, &t);
	for (i = 0; i < t.nmptcp; i++)
		if (mps_opt_parse(p->last_s.opts + t.mptcp[i].off, t.mptcp[i].len, 0x10, &o,
				  &err) == 0 &&
		    o.subtype == MPS_MPTCP_SUB_DSS && (o.dss.flags & MPS_DSS_FLAG_A))
			return o.dss.data_ack;
	return 0;
}

/*
 * Linux's MPTCP-level zero-window probe re-sends the last acknowledged byte
 * as new subflow data, mapped to its old DSN. It must be taken on the
 * subflow (or the peer's subflow stalls) but not delivered twice.
 */
static void test_duplicate_dsn_probe(void)
{
	struct mps_conn_info ci;
	struct pair p;
	struct mps_opt o = { .subtype = MPS_MPTCP_SUB_DSS };
	uint8_t opts[28], pkt[128], buf[16];
	uint64_t dack;
	uint32_t ssn;
	int k;

	pair_up(&p);
	CU_ASSERT_EQUAL(mps_send(p.cc, "hello", 5), 5);
	shuttle(&p);
	dack = last_data_ack(&p);
	CU_ASSERT_EQUAL(mps_conn_info(p.cc, &ci), 0);
	mps_key_token_idsn(ci.local_key, NULL, &o.dss.dsn);
	CU_ASSERT_EQUAL(dack, o.dss.dsn + 1 + 5);
	/* The probe: one byte at the next subflow sequence number, DSN of the last byte. */
	ssn = p.cseq - (p.last_s.ack - 6); /* relative: the first data byte had SSN 1 */
	CU_ASSERT_EQUAL(ssn, 6);
	o.dss.flags = MPS_DSS_FLAG_A | MPS_DSS_FLAG_a | MPS_DSS_FLAG_M | MPS_DSS_FLAG_m;
	o.dss.data_ack = 0;
	mps_key_token_idsn(ci.remote_key, NULL, &o.dss.data_ack);
	o.dss.data_ack += 1;
	o.dss.dsn = dack - 1;
	o.dss.ssn = ssn;
	o.dss.data_len = 1;
	k = mps_opt_build(&o, opts, sizeof(opts));
	CU_ASSERT_EQUAL_FATAL(k, 26);
	opts[26] = opts[27] = 1;
	CU_ASSERT_EQUAL(
		mps_input(p.s, pkt,
			  make_segment(pkt, p.cseq, p.sseq, opts, 28, (const uint8_t *)"o", 1),
			  p.now),
		0);
	shuttle(&p);
	/* The subflow took the byte; the connection did not. */
	CU_ASSERT_EQUAL(p.last_s.ack, p.cseq + 1);
	CU_ASSERT_EQUAL(last_data_ack(&p), dack);
	CU_ASSERT_EQUAL(mps_recv(p.sc, buf, sizeof(buf)), 5);
	CU_ASSERT_EQUAL(memcmp(buf, "hello", 5), 0);
	CU_ASSERT_EQUAL(mps_recv(p.sc, buf, sizeof(buf)), -EAGAIN);
	CU_ASSERT_EQUAL(mps_stack_counter(p.s, MPS_CNT_IN_BAD_MAPPING), 0);
	mps_stack_destroy(p.c);
	mps_stack_destroy(p.s);
}

/*
 * A mapping whose DSN lies ahead of the data still expected (a gap another
 * subflow fills) is held at the connection level within the receive window,
 * not delivered; one beyond the window is refused and counted.
 */
static void test_mapping_ahead_held(void)
{
	struct mps_conn_info ci;
	struct pair p;
	struct mps_opt o = { .subtype = MPS_MPTCP_SUB_DSS };
	uint8_t opts[28], pkt[128], buf[16];
	uint64_t dack;
	uint32_t before;
	int k;

	pair_up(&p);
	CU_ASSERT_EQUAL(mps_send(p.cc, "hello", 5), 5);
	shuttle(&p);
	dack = last_data_ack(&p);
	before = p.last_s.ack;
	CU_ASSERT_EQUAL(mps_conn_info(p.cc, &ci), 0);
	o.dss.flags = MPS_DSS_FLAG_M | MPS_DSS_FLAG_m;
	o.dss.dsn = dack + 100;
	o.dss.ssn = 6;
	o.dss.data_len = 3;
	k = mps_opt_build(&o, opts, sizeof(opts));
	CU_ASSERT_EQUAL_FATAL(k, 18);
	opts[18] = opts[19] = 1;
	mps_input(p.s, pkt, make_segment(pkt, p.cseq, p.sseq, opts, 20, (const uint8_t *)"abc", 3),
		  p.now);
	shuttle(&p);
	CU_ASSERT_EQUAL(mps_stack_counter(p.s, MPS_CNT_IN_BAD_MAPPING), 0);
	CU_ASSERT_EQUAL(p.last_s.ack, before + 3); /* taken on the subflow */
	CU_ASSERT_EQUAL(last_data_ack(&p), dack);  /* but not at the data level */
	CU_ASSERT_EQUAL(mps_recv(p.sc, buf, sizeof(buf)), 5);
	CU_ASSERT_EQUAL(mps_recv(p.sc, buf, sizeof(buf)), -EAGAIN);
	/* Far beyond the receive window (256 KiB): refused, the subflow does not move. */
	o.dss.dsn = dack + (1u << 20);
	o.dss.ssn = 9;
	k = mps_opt_build(&o, opts, sizeof(opts));
	CU_ASSERT_EQUAL_FATAL(k, 18);
	mps_input(p.s, pkt,
		  make_segment(pkt, p.cseq + 3, p.sseq, opts, 20, (const uint8_t *)"xyz", 3),
		  p.now);
	shuttle(&p);
	CU_ASSERT_EQUAL(p.last_s.ack, before + 3);
	CU_ASSERT_EQUAL(mps_stack_counter(p.s, MPS_CNT_IN_RCVBUF_FULL), 1);
	mps_stack_destroy(p.c);
	mps_stack_destroy(p.s);
}

/*
 * Send a join SYN from port sport; returns the MP_TCPRST reason of an RST
 * answer, -1 for an RST without it, or -3 for a SYN/ACK, whose MP_JOIN
 * goes to *join.
 */
static int join_answer(struct pair *p, uint32_t token, uint16_t sport, struct mps_opt *join)
{
	struct mps_opt o = { .subtype = MPS_MPTCP_SUB_JOIN };
	uint8_t opts[12], pkt[128], out[256];
	struct mps_tcpopts t;
	struct mps_seg seg;
	enum mps_seg_err serr;
	enum mps_opt_err oerr;
	size_t len;
	int n, i;

	o.join.form = MPS_JOIN_SYN;
	o.join.addr_id = 1;
	o.join.token = token;
	o.join.nonce = 0x12345678;
	CU_ASSERT_EQUAL_FATAL(mps_opt_build(&o, opts, sizeof(opts)), 12);
	len = make_segment(pkt, 1000, 0, opts, 12, (const uint8_t *)"", 0);
	pkt[33] = 0x02; /* SYN */
	mps_put_be16(pkt + 20, sport);
	pkt[36] = pkt[37] = 0;
	{
		uint32_t sum = sum16(pkt + 12, 8, 0) + 6 + 32;

		sum = sum16(pkt + 20, 32, sum);
		while (sum >> 16)
			sum = (sum & 0xffff) + (sum >> 16);
		mps_put_be16(pkt + 36, (uint16_t)~sum);
	}
	mps_input(p->s, pkt, len, p->now);
	n = mps_output(p->s, p->now, out, sizeof(out));
	if (n <= 0 || mps_seg_parse(out, (size_t)n, 0, &seg, &serr) != 0)
		return -2;
	CU_ASSERT_EQUAL(seg.ack, 1001);
	CU_ASSERT_EQUAL(seg.dport, sport);
	mps_tcpopt_walk(seg.opts, seg.opts_len, &t);
	if (seg.flags == 0x12) { /* SYN, ACK */
		for (i = 0; i < t.nmptcp; i++)
			if (mps_opt_parse(seg.opts + t.mptcp[i].off, t.mptcp[i].len, seg.flags,
					  join, &oerr) == 0 &&
			    join->subtype == MPS_MPTCP_SUB_JOIN)
				return -3;
		return -2;
	}
	CU_ASSERT_EQUAL(seg.flags, 0x14); /* RST, ACK */
	for (i = 0; i < t.nmptcp; i++)
		if (mps_opt_parse(seg.opts + t.mptcp[i].off, t.mptcp[i].len, seg.flags, &o,
				  &oerr) == 0 &&
		    o.subtype == MPS_MPTCP_SUB_TCPRST)
			return o.tcprst.reason;
	return -1;
}

/*
 * A join SYN with a known token gets a SYN/ACK with MP_JOIN carrying the
 * responder's truncated HMAC; an unknown token gets RST + MP_TCPRST and is
 * counted; joins beyond cfg.max_subflows are refused and counted. None of
 * them becomes a plain TCP connection.
 */
static void test_join_syn_answers(void)
{
	struct mps_conn_info si;
	struct mps_opt j;
	struct pair p;
	uint64_t h;
	int rc;

	pair_up(&p);
	CU_ASSERT_EQUAL(mps_conn_info(p.sc, &si), 0);
	CU_ASSERT_EQUAL(join_answer(&p, si.local_token, 40001, &j), -3);
	CU_ASSERT_EQUAL(j.join.form, MPS_JOIN_SYNACK);
	h = mps_join_hmac64(si.local_key, si.remote_key, j.join.nonce, 0x12345678, &rc);
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_EQUAL(j.join.hmac64, h);
	CU_ASSERT_EQUAL(mps_conn_info(p.sc, &si), 0);
	CU_ASSERT_EQUAL(si.nsubflows, 2);
	CU_ASSERT_EQUAL(join_answer(&p, si.local_token + 1, 40002, &j), MPS_TCPRST_MPTCP_ERR);
	CU_ASSERT_EQUAL(mps_stack_counter(p.s, MPS_CNT_IN_JOIN_TOKEN), 1);
	/* The default limit is 3 subflows: one more join fits, the next does not. */
	CU_ASSERT_EQUAL(join_answer(&p, si.local_token, 40003, &j), -3);
	CU_ASSERT_EQUAL(join_answer(&p, si.local_token, 40004, &j), MPS_TCPRST_RESOURCES);
	CU_ASSERT_EQUAL(mps_stack_counter(p.s, MPS_CNT_IN_JOIN_LIMIT), 1);
	CU_ASSERT_PTR_NULL(mps_accept(p.s));
	mps_stack_destroy(p.c);
	mps_stack_destroy(p.s);
}

/* Client -> server ADD_ADDR on a pure ACK; returns what the server answered with. */
static bool add_addr_roundtrip(struct pair *p, uint64_t hmac_delta, struct mps_opt *answer)
{
	struct mps_conn_info ci;
	struct mps_opt o = { .subtype = MPS_MPTCP_SUB_ADD_ADDR };
	uint8_t opts[20], pkt[128], out[256];
	struct mps_tcpopts t;
	struct mps_seg seg;
	enum mps_seg_err serr;
	enum mps_opt_err oerr;
	int n, i;

	CU_ASSERT_EQUAL(mps_conn_info(p->cc, &ci), 0);
	o.add_addr.family = 4;
	o.add_addr.addr_id = 3;
	o.add_addr.addr[0] = 10;
	o.add_addr.addr[1] = 0;
	o.add_addr.addr[2] = 2;
	o.add_addr.addr[3] = 1;
	o.add_addr.has_port = true;
	o.add_addr.port = 5003;
	/* Keyed sender (client) key || receiver (server) key. */
	CU_ASSERT_EQUAL_FATAL(mps_add_addr_hmac(ci.local_key, ci.remote_key, 3, o.add_addr.addr, 4,
						5003, &o.add_addr.hmac),
			      0);
	o.add_addr.hmac += hmac_delta;
	CU_ASSERT_EQUAL_FATAL(mps_opt_build(&o, opts, sizeof(opts)), 18);
	opts[18] = opts[19] = 1;
	mps_input(p->s, pkt, make_segment(pkt, p->cseq, p->sseq, opts, 20, (const uint8_t *)"", 0),
		  p->now);
	n = mps_output(p->s, p->now, out, sizeof(out));
	if (n <= 0 || mps_seg_parse(out, (size_t)n, 0, &seg, &serr) != 0)
		return false;
	mps_tcpopt_walk(seg.opts, seg.opts_len, &t);
	for (i = 0; i < t.nmptcp; i++)
		if (mps_opt_parse(seg.opts + t.mptcp[i].off, t.mptcp[i].len, seg.flags, answer,
				  &oerr) == 0 &&
		    answer->subtype == MPS_MPTCP_SUB_ADD_ADDR)
			return true;
	return false;
}

/* A verified ADD_ADDR is kept and echoed (E=1, no HMAC); a forged one is counted and ignored. */
static void test_add_addr_echo(void)
{
	struct mps_conn_info si;
	struct mps_opt a;
	struct pair p;

	pair_up(&p);
	CU_ASSERT_FALSE(add_addr_roundtrip(&p, 1, &a));
	CU_ASSERT_EQUAL(mps_stack_counter(p.s, MPS_CNT_IN_ADD_ADDR_HMAC), 1);
	CU_ASSERT_TRUE_FATAL(add_addr_roundtrip(&p, 0, &a));
	CU_ASSERT_TRUE(a.add_addr.echo);
	CU_ASSERT_EQUAL(a.add_addr.addr_id, 3);
	CU_ASSERT_EQUAL(a.add_addr.addr[2], 2);
	CU_ASSERT_TRUE(a.add_addr.has_port);
	CU_ASSERT_EQUAL(a.add_addr.port, 5003);
	CU_ASSERT_EQUAL(a.len, 10);
	CU_ASSERT_EQUAL(mps_conn_info(p.sc, &si), 0);
	CU_ASSERT_EQUAL(si.nremote_addrs, 1);
	/* Announced again (our echo was lost, say): echoed again, kept once. */
	CU_ASSERT_TRUE(add_addr_roundtrip(&p, 0, &a));
	CU_ASSERT_EQUAL(mps_conn_info(p.sc, &si), 0);
	CU_ASSERT_EQUAL(si.nremote_addrs, 1);
	mps_stack_destroy(p.c);
	mps_stack_destroy(p.s);
}

/* A client -> server pure ACK carrying one MPTCP option (padded with NOPs). */
static void send_option(struct pair *p, struct mps_opt *o)
{
	uint8_t opts[40], pkt[128];
	int k = mps_opt_build(o, opts, sizeof(opts));

	CU_ASSERT_FATAL(k > 0);
	while (k % 4)
		opts[k++] = 1;
	mps_input(p->s, pkt,
		  make_segment(pkt, p->cseq, p->sseq, opts, (size_t)k, (const uint8_t *)"", 0),
		  p->now);
	shuttle(p);
}

static bool logged(struct mps_stack *st, enum mps_event_type type, int reason)
{
	struct mps_event ev;
	bool found = false;

	while (mps_next_event(st, &ev) == 0)
		if (ev.type == type && ev.reason == reason)
			found = true;
	return found;
}

/* REMOVE_ADDR forgets announced addresses (unknown IDs ignored); MP_PRIO sets the backup flag. */
static void test_rm_addr_and_prio(void)
{
	struct mps_opt o = { .subtype = MPS_MPTCP_SUB_RM_ADDR };
	struct mps_subflow_info sfi;
	struct mps_conn_info si;
	struct mps_opt a;
	struct pair p;

	pair_up(&p);
	CU_ASSERT_TRUE_FATAL(add_addr_roundtrip(&p, 0, &a));
	CU_ASSERT_EQUAL(mps_conn_info(p.sc, &si), 0);
	CU_ASSERT_EQUAL(si.nremote_addrs, 1);
	o.rm_addr.n = 2;
	o.rm_addr.ids[0] = 9; /* never announced */
	o.rm_addr.ids[1] = 3;
	send_option(&p, &o);
	CU_ASSERT_EQUAL(mps_conn_info(p.sc, &si), 0);
	CU_ASSERT_EQUAL(si.nremote_addrs, 0);
	CU_ASSERT_TRUE(logged(p.s, MPS_EV_REMOVE_ADDR_IN, 3));
	CU_ASSERT_EQUAL(mps_subflow_info(p.sc, 0, &sfi), 0);
	CU_ASSERT_FALSE(sfi.backup);
	memset(&o, 0, sizeof(o));
	o.subtype = MPS_MPTCP_SUB_PRIO;
	o.prio_backup = true;
	send_option(&p, &o);
	CU_ASSERT_EQUAL(mps_subflow_info(p.sc, 0, &sfi), 0);
	CU_ASSERT_TRUE(sfi.backup);
	CU_ASSERT_TRUE(logged(p.s, MPS_EV_SUBFLOW_PRIO, 1));
	mps_stack_destroy(p.c);
	mps_stack_destroy(p.s);
}

/* Data under an ACK of bytes never sent, or of bytes long acknowledged, is dropped. */
static void test_unacceptable_ack(void)
{
	struct mps_conn_info ci;
	struct pair p;
	struct mps_opt o = { .subtype = MPS_MPTCP_SUB_DSS };
	uint8_t opts[20], pkt[128], buf[16];
	uint64_t dack;
	int k;

	pair_up(&p);
	CU_ASSERT_EQUAL(mps_send(p.cc, "hello", 5), 5);
	shuttle(&p);
	CU_ASSERT_EQUAL(mps_recv(p.sc, buf, sizeof(buf)), 5);
	dack = last_data_ack(&p);
	CU_ASSERT_EQUAL(mps_conn_info(p.cc, &ci), 0);
	o.dss.flags = MPS_DSS_FLAG_M | MPS_DSS_FLAG_m;
	o.dss.dsn = dack;
	o.dss.ssn = 6;
	o.dss.data_len = 3;
	k = mps_opt_build(&o, opts, sizeof(opts));
	CU_ASSERT_EQUAL_FATAL(k, 18);
	opts[18] = opts[19] = 1;
	mps_input(p.s, pkt,
		  make_segment(pkt, p.cseq, p.sseq + 1000, opts, 20, (const uint8_t *)"abc", 3),
		  p.now);
	mps_input(p.s, pkt,
		  make_segment(pkt, p.cseq, p.sseq - 1000000, opts, 20, (const uint8_t *)"abc", 3),
		  p.now);
	shuttle(&p);
	CU_ASSERT_EQUAL(mps_stack_counter(p.s, MPS_CNT_IN_BAD_ACK), 2);
	CU_ASSERT_EQUAL(mps_recv(p.sc, buf, sizeof(buf)), -EAGAIN);
	/* The same segment with a valid ACK goes through. */
	mps_input(p.s, pkt, make_segment(pkt, p.cseq, p.sseq, opts, 20, (const uint8_t *)"abc", 3),
		  p.now);
	shuttle(&p);
	CU_ASSERT_EQUAL(mps_recv(p.sc, buf, sizeof(buf)), 3);
	CU_ASSERT_EQUAL(memcmp(buf, "abc", 3), 0);
	mps_stack_destroy(p.c);
	mps_stack_destroy(p.s);
}

/* Deliver every packet the client has now to the server; returns how many. */
static int client_to_server(struct pair *p)
{
	uint8_t buf[2048];
	int n, k = 0;

	while ((n = mps_output(p->c, p->now, buf, sizeof(buf))) > 0) {
		mps_input(p->s, buf, (size_t)n, p->now);
		k++;
	}
	return k;
}

/* One segment is ACKed after the delayed-ACK time; the second of two at once. */
static void test_delayed_ack(void)
{
	static uint8_t data[3000];
	uint8_t buf[2048];
	struct pair p;
	uint64_t t0;

	pair_up(&p);
	t0 = p.now;
	CU_ASSERT_EQUAL(mps_send(p.cc, "hello", 5), 5);
	CU_ASSERT_EQUAL(client_to_server(&p), 1);
	CU_ASSERT_EQUAL(mps_output(p.s, p.now, buf, sizeof(buf)), 0);
	CU_ASSERT_EQUAL(mps_next_wakeup(p.s), t0 + 40000);
	CU_ASSERT(mps_output(p.s, t0 + 39999, buf, sizeof(buf)) == 0);
	CU_ASSERT(mps_output(p.s, t0 + 40000, buf, sizeof(buf)) > 0);
	p.now = t0 + 40000;
	CU_ASSERT_EQUAL(mps_send(p.cc, data, sizeof(data)), (ssize_t)sizeof(data));
	CU_ASSERT(client_to_server(&p) >= 2);
	CU_ASSERT(mps_output(p.s, p.now, buf, sizeof(buf)) > 0);
	mps_stack_destroy(p.c);
	mps_stack_destroy(p.s);
}

/* Segments delivered 3, 1, 4, 2 (and 3 again): queued, then delivered in order once. */
static void test_out_of_order_queue(void)
{
	static uint8_t data[4 * 1000], got[sizeof(data) + 10];
	struct mps_config cfg = { .seed = 7, .mss = 1040 }; /* 1000-byte segments */
	uint8_t pkts[4][1200], out[256];
	size_t lens[4];
	struct pair p = { 0 };
	struct mps_seg seg;
	enum mps_seg_err serr;
	int n, k = 0, err;
	ssize_t r;
	size_t i, total = 0;

	for (i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 13 + 1);
	p.c = mps_stack_create(&cfg, &err);
	cfg.seed = 8;
	p.s = mps_stack_create(&cfg, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p.c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p.s);
	CU_ASSERT_EQUAL_FATAL(mps_listen(p.s, &saddr), 0);
	CU_ASSERT_EQUAL_FATAL(mps_connect(p.c, &caddr, &saddr, &p.cc), 0);
	shuttle(&p);
	p.sc = mps_accept(p.s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p.sc);
	CU_ASSERT_EQUAL(mps_send(p.cc, data, sizeof(data)), (ssize_t)sizeof(data));
	while (k < 4 && (n = mps_output(p.c, p.now, pkts[k], sizeof(pkts[k]))) > 0)
		lens[k++] = (size_t)n;
	CU_ASSERT_EQUAL_FATAL(k, 4);
	mps_input(p.s, pkts[2], lens[2], p.now);
	/* The duplicate ACK carries a SACK block for what arrived (SACK-permitted both ways). */
	n = mps_output(p.s, p.now, out, sizeof(out));
	CU_ASSERT_FATAL(n > 0);
	{
		struct mps_seg dup, s2;
		struct mps_tcpopts t;

		CU_ASSERT_EQUAL(mps_seg_parse(out, (size_t)n, 0, &dup, &serr), 0);
		CU_ASSERT_EQUAL(mps_seg_parse(pkts[2], lens[2], 0, &s2, &serr), 0);
		CU_ASSERT_EQUAL(mps_tcpopt_walk(dup.opts, dup.opts_len, &t), 0);
		CU_ASSERT_EQUAL(t.nsack, 1);
		CU_ASSERT_EQUAL(t.sack[0].left, s2.seq);
		CU_ASSERT_EQUAL(t.sack[0].right, s2.seq + s2.payload_len);
		CU_ASSERT_EQUAL(t.nmptcp, 1);
	}
	mps_input(p.s, pkts[0], lens[0], p.now);
	mps_input(p.s, pkts[3], lens[3], p.now);
	mps_input(p.s, pkts[2], lens[2], p.now);
	CU_ASSERT_EQUAL(mps_stack_counter(p.s, MPS_CNT_IN_OUT_OF_ORDER), 3);
	CU_ASSERT_EQUAL(mps_recv(p.sc, got, sizeof(got)), 1000); /* only the first so far */
	total = 1000;
	mps_input(p.s, pkts[1], lens[1], p.now);
	/* The hole is filled: one immediate ACK covers all four. */
	n = mps_output(p.s, p.now, out, sizeof(out));
	CU_ASSERT_FATAL(n > 0);
	CU_ASSERT_EQUAL(mps_seg_parse(out, (size_t)n, 0, &seg, &serr), 0);
	{
		struct mps_seg last;

		CU_ASSERT_EQUAL(mps_seg_parse(pkts[3], lens[3], 0, &last, &serr), 0);
		CU_ASSERT_EQUAL(seg.ack, last.seq + last.payload_len);
	}
	while ((r = mps_recv(p.sc, got + total, sizeof(got) - total)) > 0)
		total += (size_t)r;
	CU_ASSERT_EQUAL(total, sizeof(data));
	CU_ASSERT_EQUAL(memcmp(got, data, sizeof(data)), 0);
	CU_ASSERT_EQUAL(mps_stack_counter(p.s, MPS_CNT_IN_BAD_MAPPING), 0);
	mps_stack_destroy(p.c);
	mps_stack_destroy(p.s);
}

/* PAWS: a segment whose timestamp is older than the last one is dropped, then a fresh one passes. */
static void test_paws(void)
{
	struct pair p;
	struct mps_opt o = { .subtype = MPS_MPTCP_SUB_DSS };
	uint8_t opts[32] = { 1, 1, 8, 10 }, pkt[128], buf[16];
	uint64_t dack;
	int k;

	pair_up(&p);
	CU_ASSERT_EQUAL(mps_send(p.cc, "hello", 5), 5);
	shuttle(&p);
	CU_ASSERT_EQUAL(mps_recv(p.sc, buf, sizeof(buf)), 5);
	dack = last_data_ack(&p);
	o.dss.flags = MPS_DSS_FLAG_M | MPS_DSS_FLAG_m;
	o.dss.dsn = dack;
	o.dss.ssn = 6;
	o.dss.data_len = 3;
	k = mps_opt_build(&o, opts + 12, sizeof(opts) - 12);
	CU_ASSERT_EQUAL_FATAL(k, 18);
	opts[30] = opts[31] = 1;
	/* The client's timestamps so far are a few milliseconds; 100 s before is old. */
	mps_put_be32(opts + 4, (uint32_t)-100000);
	mps_input(p.s, pkt, make_segment(pkt, p.cseq, p.sseq, opts, 32, (const uint8_t *)"abc", 3),
		  p.now);
	shuttle(&p);
	CU_ASSERT_EQUAL(mps_stack_counter(p.s, MPS_CNT_IN_PAWS), 1);
	CU_ASSERT_EQUAL(mps_recv(p.sc, buf, sizeof(buf)), -EAGAIN);
	mps_put_be32(opts + 4, 1000000);
	mps_input(p.s, pkt, make_segment(pkt, p.cseq, p.sseq, opts, 32, (const uint8_t *)"abc", 3),
		  p.now);
	shuttle(&p);
	CU_ASSERT_EQUAL(mps_recv(p.sc, buf, sizeof(buf)), 3);
	CU_ASSERT_EQUAL(memcmp(buf, "abc", 3), 0);
	mps_stack_destroy(p.c);
	mps_stack_destroy(p.s);
}

/*
 * RFC 7323 §5.5: a TS.Recent older than 24 days is not trusted. The fake
 * clock jumps 23 days: an older timestamp is still refused; then 25 days:
 * the same old timestamp is taken and becomes TS.Recent.
 */
static void test_paws_expiry(void)
{
	struct pair p;
	struct mps_opt o = { .subtype = MPS_MPTCP_SUB_DSS };
	uint8_t opts[32] = { 1, 1, 8, 10 }, pkt[128], buf[16];
	const uint64_t day = 86400ULL * 1000000;
	uint64_t dack;
	int k;

	pair_up(&p);
	CU_ASSERT_EQUAL(mps_send(p.cc, "hello", 5), 5);
	shuttle(&p);
	CU_ASSERT_EQUAL(mps_recv(p.sc, buf, sizeof(buf)), 5);
	dack = last_data_ack(&p);
	o.dss.flags = MPS_DSS_FLAG_M | MPS_DSS_FLAG_m;
	o.dss.dsn = dack;
	o.dss.ssn = 6;
	o.dss.data_len = 3;
	k = mps_opt_build(&o, opts + 12, sizeof(opts) - 12);
	CU_ASSERT_EQUAL_FATAL(k, 18);
	opts[30] = opts[31] = 1;
	mps_put_be32(opts + 4, (uint32_t)-100000);
	p.now += 23 * day;
	mps_input(p.s, pkt, make_segment(pkt, p.cseq, p.sseq, opts, 32, (const uint8_t *)"abc", 3),
		  p.now);
	CU_ASSERT_EQUAL(mps_stack_counter(p.s, MPS_CNT_IN_PAWS), 1);
	CU_ASSERT_EQUAL(mps_stack_counter(p.s, MPS_CNT_PAWS_EXPIRED), 0);
	CU_ASSERT_EQUAL(mps_recv(p.sc, buf, sizeof(buf)), -EAGAIN);
	/* The refused segment did not refresh TS.Recent's age; two more days make it stale. */
	p.now += 2 * day;
	mps_input(p.s, pkt, make_segment(pkt, p.cseq, p.sseq, opts, 32, (const uint8_t *)"abc", 3),
		  p.now);
	CU_ASSERT_EQUAL(mps_stack_counter(p.s, MPS_CNT_IN_PAWS), 1);
	CU_ASSERT_EQUAL(mps_stack_counter(p.s, MPS_CNT_PAWS_EXPIRED), 1);
	CU_ASSERT_EQUAL(mps_recv(p.sc, buf, sizeof(buf)), 3);
	CU_ASSERT_EQUAL(memcmp(buf, "abc", 3), 0);
	/* That timestamp is TS.Recent now: one just below it is an old duplicate again. */
	mps_put_be32(opts + 4, (uint32_t)-100001);
	mps_input(p.s, pkt,
		  make_segment(pkt, p.cseq + 3, p.sseq, opts, 32, (const uint8_t *)"abc", 3),
		  p.now);
	CU_ASSERT_EQUAL(mps_stack_counter(p.s, MPS_CNT_IN_PAWS), 2);
	mps_stack_destroy(p.c);
	mps_stack_destroy(p.s);
}

/* A server -> client pure ACK with the given options, checksummed. */
static size_t make_server_ack(uint8_t *pkt, uint32_t seq, uint32_t ack, const uint8_t *opts,
			      size_t optlen)
{
	size_t thl = 20 + optlen, tot = 20 + thl;
	uint32_t sum;

	memset(pkt, 0, 40);
	pkt[0] = 0x45;
	mps_put_be16(pkt + 2, (uint16_t)tot);
	pkt[8] = 64;
	pkt[9] = 6;
	memcpy(pkt + 12, saddr.addr, 4);
	memcpy(pkt + 16, caddr.addr, 4);
	mps_put_be16(pkt + 20, saddr.port);
	mps_put_be16(pkt + 22, caddr.port);
	mps_put_be32(pkt + 24, seq);
	mps_put_be32(pkt + 28, ack);
	pkt[32] = (uint8_t)((thl / 4) << 4);
	pkt[33] = 0x10;
	mps_put_be16(pkt + 34, 4000);
	memcpy(pkt + 40, opts, optlen);
	sum = sum16(pkt + 12, 8, 0) + 6 + (uint32_t)thl;
	sum = sum16(pkt + 20, thl, sum);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	mps_put_be16(pkt + 36, (uint16_t)~sum);
	return tot;
}

/*
 * SACK-based repair (RFC 6675): segments 1 and 4 of 5 are lost. The third
 * duplicate ACK resends segment 1; the next one resends segment 4, the hole
 * the scoreboard shows below the SACKed segment 5, not segment 2.
 */
static void test_sack_repair(void)
{
	struct mps_config cfg = { .seed = 9, .mss = 1040 };
	static uint8_t data[5000];
	struct mps_opt o = { .subtype = MPS_MPTCP_SUB_DSS };
	struct mps_conn_info ci;
	uint8_t segs[5][1200], out[1500], opts[32], pkt[128];
	struct mps_seg sg[5], r;
	enum mps_seg_err serr;
	struct pair p = { 0 };
	uint32_t seqs[5];
	int n, k = 0, i, err, sent_seq[6], nsent = 0;

	p.c = mps_stack_create(&cfg, &err);
	cfg.seed = 10;
	p.s = mps_stack_create(&cfg, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p.c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p.s);
	CU_ASSERT_EQUAL_FATAL(mps_listen(p.s, &saddr), 0);
	CU_ASSERT_EQUAL_FATAL(mps_connect(p.c, &caddr, &saddr, &p.cc), 0);
	shuttle(&p);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mps_accept(p.s));
	CU_ASSERT_EQUAL(mps_send(p.cc, data, sizeof(data)), (ssize_t)sizeof(data));
	while (k < 5 && (n = mps_output(p.c, p.now, segs[k], sizeof(segs[k]))) > 0) {
		CU_ASSERT_EQUAL_FATAL(mps_seg_parse(segs[k], (size_t)n, 0, &sg[k], &serr), 0);
		seqs[k] = sg[k].seq;
		k++;
	}
	CU_ASSERT_EQUAL_FATAL(k, 5);
	CU_ASSERT_EQUAL_FATAL(sg[0].payload_len, 1000);
	/* Options: DSS DATA_ACK (nothing acked at the data level), then two SACK blocks. */
	CU_ASSERT_EQUAL(mps_conn_info(p.cc, &ci), 0);
	o.dss.flags = MPS_DSS_FLAG_A | MPS_DSS_FLAG_a;
	mps_key_token_idsn(ci.remote_key, NULL, &o.dss.data_ack);
	o.dss.data_ack += 1;
	CU_ASSERT_EQUAL_FATAL(mps_opt_build(&o, opts, sizeof(opts)), 12);
	opts[12] = opts[13] = 1;
	opts[14] = 5;
	opts[15] = 18;
	mps_put_be32(opts + 16, seqs[4]);
	mps_put_be32(opts + 20, seqs[4] + 1000);
	mps_put_be32(opts + 24, seqs[1]);
	mps_put_be32(opts + 28, seqs[3]);
	for (i = 0; i < 5; i++) {
		mps_input(p.c, pkt, make_server_ack(pkt, p.sseq, seqs[0], opts, 32), p.now);
		while ((n = mps_output(p.c, p.now, out, sizeof(out))) > 0 && nsent < 6)
			if (mps_seg_parse(out, (size_t)n, 0, &r, &serr) == 0 && r.payload_len)
				sent_seq[nsent++] = (int)(r.seq - seqs[0]);
	}
	/* Segment 1 on the third counted duplicate ACK, then segment 4, once each. */
	CU_ASSERT_EQUAL_FATAL(nsent, 2);
	CU_ASSERT_EQUAL(sent_seq[0], 0);
	CU_ASSERT_EQUAL(sent_seq[1], 3000);
	CU_ASSERT_EQUAL(mps_stack_counter(p.c, MPS_CNT_FAST_RETRANS), 1);
	mps_stack_destroy(p.c);
	mps_stack_destroy(p.s);
}

/* An allocator that fails the Nth request (counting from 0) and counts what is live. */
struct failing {
	long left;
	long live;
};

/*
 * Section 3 of the spec ("input checks"), one row per malformed or
 * contradictory input: each is fed to an established connection (the
 * client has sent "hello"; the row's segment carries "abc" at the next
 * subflow and data sequence numbers) and the answer is checked: the data
 * delivered, dropped, taken as TCP after a fallback with its reason, or
 * the connection reset with the MP_TCPRST reason on the RST; and the
 * counter (and per-reason option counter) that records it.
 */
enum ic_answer { IC_DELIVER, IC_DROP, IC_FALLBACK, IC_RESET };

struct ic_case {
	const char *name;
	int (*opts)(uint64_t dsn, uint8_t *o); /* the row's TCP options; returns their length */
	enum mps_counter counter;	       /* grows (MPS_CNT__COUNT: none need) */
	int opt_err;			       /* enum mps_opt_err that grows, or -1 */
	enum ic_answer answer;
	int reason; /* IC_FALLBACK: MPS_FALLBACK_*; IC_RESET: MP_TCPRST reason on the RST */
};

static int ic_put(uint8_t *o, int n, struct mps_opt *opt)
{
	int k = mps_opt_build(opt, o + n, (size_t)(40 - n));

	CU_ASSERT_FATAL(k > 0);
	return n + k;
}

static int ic_pad(uint8_t *o, int n)
{
	while (n % 4)
		o[n++] = 1;
	return n;
}

/* The mapping of "abc": ssn 6 follows "hello". */
static int ic_map(uint64_t dsn, uint8_t *o, int n)
{
	struct mps_opt d = { .subtype = MPS_MPTCP_SUB_DSS };

	d.dss.flags = MPS_DSS_FLAG_M | MPS_DSS_FLAG_m;
	d.dss.dsn = dsn;
	d.dss.ssn = 6;
	d.dss.data_len = 3;
	return ic_put(o, n, &d);
}

static int ic_tcp_bad_len(uint64_t dsn, uint8_t *o)
{
	int n = ic_map(dsn, o, 0);

	/* A TCP option whose length byte is 1: the walk stops there, keeping the DSS. */
	o[n++] = 8;
	o[n++] = 1;
	return ic_pad(o, n);
}

static int ic_dss_bad_len(uint64_t dsn, uint8_t *o)
{
	int n = ic_map(dsn, o, 0);

	o[1] = 16; /* M and m need 18 bytes */
	o[16] = o[17] = 1;
	return ic_pad(o, n);
}

static int ic_dss_csum_unexpected(uint64_t dsn, uint8_t *o)
{
	struct mps_opt d = { .subtype = MPS_MPTCP_SUB_DSS };

	d.dss.flags = MPS_DSS_FLAG_M | MPS_DSS_FLAG_m;
	d.dss.dsn = dsn;
	d.dss.ssn = 6;
	d.dss.data_len = 3;
	d.dss.has_csum = true;
	return ic_pad(o, ic_put(o, 0, &d));
}

static int ic_data_ack_beyond(uint64_t dsn, uint8_t *o)
{
	struct mps_opt d = { .subtype = MPS_MPTCP_SUB_DSS };

	/* The server has sent no data: a DATA_ACK 1000 bytes on acknowledges nothing it sent. */
	d.dss.flags = MPS_DSS_FLAG_A | MPS_DSS_FLAG_a | MPS_DSS_FLAG_M | MPS_DSS_FLAG_m;
	d.dss.data_ack = 1000 + (1ULL << 40);
	d.dss.dsn = dsn;
	d.dss.ssn = 6;
	d.dss.data_len = 3;
	return ic_pad(o, ic_put(o, 0, &d));
}

static int ic_tcprst_no_rst(uint64_t dsn, uint8_t *o)
{
	struct mps_opt r = { .subtype = MPS_MPTCP_SUB_TCPRST };

	r.tcprst.reason = MPS_TCPRST_MIDDLEBOX;
	return ic_pad(o, ic_put(o, ic_map(dsn, o, 0), &r));
}

static int ic_fastclose_wrong_key(uint64_t dsn, uint8_t *o)
{
	struct mps_opt f = { .subtype = MPS_MPTCP_SUB_FASTCLOSE, .fastclose_key = 0x1234 };

	return ic_pad(o, ic_put(o, ic_map(dsn, o, 0), &f));
}

static int ic_add_addr_bad_hmac(uint64_t dsn, uint8_t *o)
{
	struct mps_opt a = { .subtype = MPS_MPTCP_SUB_ADD_ADDR };

	a.add_addr.addr_id = 3;
	a.add_addr.family = 4;
	a.add_addr.addr[0] = 10;
	a.add_addr.addr[3] = 9;
	a.add_addr.hmac = 0x0102030405060708ULL;
	return ic_pad(o, ic_put(o, ic_map(dsn, o, 0), &a));
}

static int ic_rm_addr_empty(uint64_t dsn, uint8_t *o)
{
	int n = ic_map(dsn, o, 0);

	o[n++] = 30;
	o[n++] = 3;
	o[n++] = 0x40; /* REMOVE_ADDR naming no address */
	return ic_pad(o, n);
}

static int ic_mpc_flag_b(uint64_t dsn, uint8_t *o)
{
	struct mps_opt m = { .subtype = MPS_MPTCP_SUB_CAPABLE };
	int n;

	m.mpc.form = MPS_MPC_DATA;
	m.mpc.version = 1;
	m.mpc.flags = MPS_MPC_FLAG_H;
	m.mpc.snd_key = 1;
	m.mpc.rcv_key = 2;
	m.mpc.data_len = 3;
	(void)dsn;
	n = ic_put(o, 0, &m);
	o[3] |= 0x40; /* B: extensibility, must be 0 */
	return ic_pad(o, n);
}

static int ic_join_on_ack(uint64_t dsn, uint8_t *o)
{
	int n = ic_map(dsn, o, 0);

	/* The 12-byte MP_JOIN of a SYN, on a segment that is not one. */
	o[n++] = 30;
	o[n++] = 12;
	o[n++] = 0x10;
	memset(o + n, 0, 9);
	return ic_pad(o, n + 9);
}

static int ic_no_mptcp(uint64_t dsn, uint8_t *o)
{
	(void)dsn;
	(void)o;
	return 0;
}

static int ic_infinite_map(uint64_t dsn, uint8_t *o)
{
	struct mps_opt d = { .subtype = MPS_MPTCP_SUB_DSS };

	d.dss.flags = MPS_DSS_FLAG_M | MPS_DSS_FLAG_m;
	d.dss.dsn = dsn;
	d.dss.ssn = 6;
	return ic_pad(o, ic_put(o, 0, &d));
}

static int ic_mp_fail(uint64_t dsn, uint8_t *o)
{
	struct mps_opt f = { .subtype = MPS_MPTCP_SUB_FAIL, .fail_dsn = 77 };

	return ic_pad(o, ic_put(o, ic_map(dsn, o, 0), &f));
}

static int ic_mapping_conflict(uint64_t dsn, uint8_t *o)
{
	struct mps_opt d = { .subtype = MPS_MPTCP_SUB_DSS };

	/* Starts at "lo" of "hello" but puts it 100 DSNs elsewhere. */
	d.dss.flags = MPS_DSS_FLAG_M | MPS_DSS_FLAG_m;
	d.dss.dsn = dsn - 2 + 100;
	d.dss.ssn = 4;
	d.dss.data_len = 5;
	return ic_pad(o, ic_put(o, 0, &d));
}

static int ic_dsn32(uint64_t dsn, uint8_t *o)
{
	struct mps_opt d = { .subtype = MPS_MPTCP_SUB_DSS };

	/* A 4-byte DSN: expanded around what we expect next (spec §3 item 4). */
	d.dss.flags = MPS_DSS_FLAG_M;
	d.dss.dsn = dsn & 0xffffffffu;
	d.dss.ssn = 6;
	d.dss.data_len = 3;
	return ic_pad(o, ic_put(o, 0, &d));
}

static int ic_beyond_window(uint64_t dsn, uint8_t *o)
{
	/* ic_run moves this row's sequence number far past the window. */
	return ic_map(dsn, o, 0);
}

static const struct ic_case ic_cases[] = {
	{ "tcp_option_bad_length", ic_tcp_bad_len, MPS_CNT_IN_BAD_OPTS, MPS_OPT_E_TCP_LEN_SHORT,
	  IC_DELIVER, 0 },
	{ "dss_bad_length", ic_dss_bad_len, MPS_CNT_IN_BAD_MPTCP, MPS_OPT_E_DSS_LEN, IC_FALLBACK,
	  MPS_FALLBACK_BAD_MAPPING },
	{ "dss_csum_not_negotiated", ic_dss_csum_unexpected, MPS_CNT_IN_DSS_CSUM, -1, IC_RESET,
	  MPS_TCPRST_MPTCP_ERR },
	{ "data_ack_beyond_sent", ic_data_ack_beyond, MPS_CNT_IN_BAD_ACK, -1, IC_DELIVER, 0 },
	{ "tcprst_without_rst", ic_tcprst_no_rst, MPS_CNT_IN_BAD_MPTCP, MPS_OPT_E_TCPRST_NO_RST,
	  IC_DELIVER, 0 },
	{ "fastclose_wrong_key", ic_fastclose_wrong_key, MPS_CNT_IN_FASTCLOSE_KEY, -1, IC_DELIVER,
	  0 },
	{ "add_addr_bad_hmac", ic_add_addr_bad_hmac, MPS_CNT_IN_ADD_ADDR_HMAC, -1, IC_DELIVER, 0 },
	{ "rm_addr_no_ids", ic_rm_addr_empty, MPS_CNT_IN_BAD_MPTCP, MPS_OPT_E_RM_ADDR_LEN,
	  IC_DELIVER, 0 },
	{ "mp_capable_flag_b", ic_mpc_flag_b, MPS_CNT_IN_BAD_MPTCP, MPS_OPT_E_MPC_FLAG_B,
	  IC_FALLBACK, MPS_FALLBACK_BAD_MAPPING },
	{ "mp_join_syn_form_on_ack", ic_join_on_ack, MPS_CNT_IN_BAD_MPTCP, MPS_OPT_E_JOIN_LEN,
	  IC_DELIVER, 0 },
	{ "no_mptcp_option", ic_no_mptcp, MPS_CNT_IN_NO_DSS, -1, IC_FALLBACK,
	  MPS_FALLBACK_OPTS_LOST },
	{ "infinite_mapping", ic_infinite_map, MPS_CNT_IN_INFINITE_MAP, -1, IC_FALLBACK,
	  MPS_FALLBACK_INFINITE_MAP },
	{ "mp_fail", ic_mp_fail, MPS_CNT_IN_MP_FAIL, -1, IC_DELIVER, 0 },
	{ "mapping_conflict", ic_mapping_conflict, MPS_CNT_IN_BAD_MAPPING, -1, IC_DROP, 0 },
	{ "dsn_32_bits", ic_dsn32, MPS_CNT__COUNT, -1, IC_DELIVER, 0 },
	{ "beyond_receive_window", ic_beyond_window, MPS_CNT_IN_OUT_OF_WINDOW, -1, IC_DROP, 0 },
};

/* The MP_TCPRST reason of an RST among the server's packets, or -1. */
static int ic_tcprst(const uint8_t *pkt, size_t len)
{
	struct mps_seg seg;
	struct mps_tcpopts t;
	struct mps_opt o;
	enum mps_seg_err serr;
	enum mps_opt_err err;
	int i;

	if (mps_seg_parse(pkt, len, 0, &seg, &serr) != 0 || !(seg.flags & 0x04))
		return -1;
	mps_tcpopt_walk(seg.opts, seg.opts_len, &t);
	for (i = 0; i < t.nmptcp; i++)
		if (mps_opt_parse(seg.opts + t.mptcp[i].off, t.mptcp[i].len, seg.flags, &o, &err) ==
			    0 &&
		    o.subtype == MPS_MPTCP_SUB_TCPRST)
			return o.tcprst.reason;
	return -1;
}

static void ic_run(const struct ic_case *ic)
{
	struct pair p;
	struct mps_conn_info si;
	uint8_t opts[40], pkt[160], out[2048], buf[16];
	uint64_t before, err_before = 0;
	int optlen, n, rst = -1;
	ssize_t r;

	pair_up(&p);
	CU_ASSERT_EQUAL(mps_send(p.cc, "hello", 5), 5);
	shuttle(&p);
	CU_ASSERT_EQUAL(mps_recv(p.sc, buf, sizeof(buf)), 5);
	memset(opts, 0, sizeof(opts));
	optlen = ic->opts(last_data_ack(&p), opts);
	before = ic->counter == MPS_CNT__COUNT ? 0 : mps_stack_counter(p.s, ic->counter);
	if (ic->opt_err >= 0)
		err_before = mps_stack_opt_errors(p.s, (unsigned int)ic->opt_err);
	mps_input(p.s, pkt,
		  make_segment(pkt, p.cseq + (ic->opts == ic_beyond_window ? 1u << 30 : 0), p.sseq,
			       opts, (size_t)optlen, (const uint8_t *)"abc", 3),
		  p.now);
	/* The server's answer, straight away, before the client reacts to it. */
	while ((n = mps_output(p.s, p.now, out, sizeof(out))) > 0) {
		if (rst < 0)
			rst = ic_tcprst(out, (size_t)n);
		mps_input(p.c, out, (size_t)n, p.now);
	}
	shuttle(&p);
	if (ic->counter != MPS_CNT__COUNT && mps_stack_counter(p.s, ic->counter) <= before)
		fprintf(stderr, "input check %s: counter %s did not grow\n", ic->name,
			mps_stack_counter_name(ic->counter));
	CU_ASSERT(ic->counter == MPS_CNT__COUNT || mps_stack_counter(p.s, ic->counter) > before);
	if (ic->opt_err >= 0 &&
	    mps_stack_opt_errors(p.s, (unsigned int)ic->opt_err) != err_before + 1)
		fprintf(stderr, "input check %s: option error %s not counted once\n", ic->name,
			mps_opt_err_name((enum mps_opt_err)ic->opt_err));
	if (ic->opt_err >= 0)
		CU_ASSERT_EQUAL(mps_stack_opt_errors(p.s, (unsigned int)ic->opt_err),
				err_before + 1);
	CU_ASSERT_EQUAL(mps_conn_info(p.sc, &si), 0);
	r = mps_recv(p.sc, buf, sizeof(buf));
	switch (ic->answer) {
	case IC_DELIVER:
	case IC_FALLBACK:
		CU_ASSERT_EQUAL(r, 3);
		CU_ASSERT_EQUAL(memcmp(buf, "abc", 3), 0);
		CU_ASSERT_EQUAL(si.state, MPS_CONN_ESTABLISHED);
		CU_ASSERT_EQUAL(si.fallback, ic->answer == IC_FALLBACK);
		if (ic->answer == IC_FALLBACK)
			CU_ASSERT_TRUE(logged(p.s, MPS_EV_FALLBACK, ic->reason));
		break;
	case IC_DROP:
		CU_ASSERT_EQUAL(r, -EAGAIN);
		CU_ASSERT_EQUAL(si.state, MPS_CONN_ESTABLISHED);
		CU_ASSERT_FALSE(si.fallback);
		break;
	case IC_RESET:
		CU_ASSERT_EQUAL(r, -ECONNRESET);
		CU_ASSERT_EQUAL(si.state, MPS_CONN_RESET);
		CU_ASSERT_EQUAL(rst, ic->reason);
		break;
	}
	if (ic->answer != IC_RESET)
		CU_ASSERT_EQUAL(rst, -1);
	mps_stack_destroy(p.c);
	mps_stack_destroy(p.s);
}

static void test_input_checks(void)
{
	size_t i;

	for (i = 0; i < sizeof(ic_cases) / sizeof(ic_cases[0]); i++)
		ic_run(&ic_cases[i]);
}

/*
 * Section 3 item 2 at the SYN: an MP_CAPABLE that breaks the version or
 * flag rules, or has the wrong length, is ignored (counted per reason) and
 * the connection is plain TCP: the SYN/ACK carries no MP_CAPABLE. A higher
 * version is answered with version 1, as Linux does; flag A is followed.
 */
struct syn_case {
	const char *name;
	uint8_t opt[12], len;
	int opt_err; /* enum mps_opt_err counted, or -1 */
	int answer;  /* MP_CAPABLE version in the SYN/ACK, or -1 for none */
	bool csum;   /* flag A in the SYN/ACK */
};

static const struct syn_case syn_cases[] = {
	{ "v1", { 30, 4, 0x01, 0x01 }, 4, -1, 1, false },
	{ "v1_checksum", { 30, 4, 0x01, 0x81 }, 4, -1, 1, true },
	{ "v2_answered_v1", { 30, 4, 0x02, 0x01 }, 4, -1, 1, false },
	{ "v0", { 30, 4, 0x00, 0x01 }, 4, MPS_OPT_E_MPC_VERSION, -1, false },
	{ "flag_b", { 30, 4, 0x01, 0x41 }, 4, MPS_OPT_E_MPC_FLAG_B, -1, false },
	{ "no_flag_h", { 30, 4, 0x01, 0x00 }, 4, MPS_OPT_E_MPC_NO_H, -1, false },
	{ "flags_d_to_g", { 30, 4, 0x01, 0x03 }, 4, MPS_OPT_E_MPC_FLAGS_DG, -1, false },
	{ "key_in_syn",
	  { 30, 12, 0x01, 0x01, 1, 2, 3, 4, 5, 6, 7, 8 },
	  12,
	  MPS_OPT_E_MPC_LEN,
	  -1,
	  false },
};

static void syn_run(const struct syn_case *sc)
{
	struct mps_config cfg = { .seed = 8 };
	uint8_t pkt[128], out[256];
	struct mps_stack *st;
	struct mps_tcpopts t;
	struct mps_seg seg;
	enum mps_seg_err serr;
	enum mps_opt_err err;
	struct mps_opt o;
	int n, i, version = -1;
	bool csum = false;

	st = mps_stack_create(&cfg, &n);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	CU_ASSERT_EQUAL_FATAL(mps_listen(st, &saddr), 0);
	mps_input(st, pkt,
		  make_segment_flags(pkt, 0x02, 1000, 0, sc->opt, sc->len, (const uint8_t *)"", 0),
		  0);
	n = mps_output(st, 0, out, sizeof(out));
	CU_ASSERT_FATAL(n > 0);
	CU_ASSERT_EQUAL_FATAL(mps_seg_parse(out, (size_t)n, 0, &seg, &serr), 0);
	CU_ASSERT_EQUAL(seg.flags & 0x12, 0x12);
	mps_tcpopt_walk(seg.opts, seg.opts_len, &t);
	for (i = 0; i < t.nmptcp; i++)
		if (mps_opt_parse(seg.opts + t.mptcp[i].off, t.mptcp[i].len, seg.flags, &o, &err) ==
			    0 &&
		    o.subtype == MPS_MPTCP_SUB_CAPABLE) {
			version = o.mpc.version;
			csum = o.mpc.flags & MPS_MPC_FLAG_A;
		}
	if (version != sc->answer || csum != sc->csum)
		fprintf(stderr, "SYN check %s: SYN/ACK MP_CAPABLE version %d, A %d\n", sc->name,
			version, csum);
	CU_ASSERT_EQUAL(version, sc->answer);
	CU_ASSERT_EQUAL(csum, sc->csum);
	CU_ASSERT_EQUAL(mps_stack_counter(st, MPS_CNT_IN_BAD_MPTCP), sc->opt_err >= 0);
	if (sc->opt_err >= 0)
		CU_ASSERT_EQUAL(mps_stack_opt_errors(st, (unsigned int)sc->opt_err), 1);
	mps_stack_destroy(st);
}

static void test_syn_checks(void)
{
	size_t i;

	for (i = 0; i < sizeof(syn_cases) / sizeof(syn_cases[0]); i++)
		syn_run(&syn_cases[i]);
}

/*
 * What the server sends at now and once its delayed ACK is due: the number
 * of MP_FAIL options, and the DSN the last one named; *inf counts infinite
 * mappings if inf is given. Delivered to the client only if deliver.
 */
static unsigned int server_opts(struct pair *p, uint64_t *dsn, unsigned int *inf, bool deliver)
{
	uint8_t out[2048];
	unsigned int fails = 0, round;
	struct mps_tcpopts t;
	struct mps_seg seg;
	enum mps_seg_err serr;
	enum mps_opt_err err;
	struct mps_opt o;
	int n, i;

	for (round = 0; round < 2; round++, p->now += 50000)
		while ((n = mps_output(p->s, p->now, out, sizeof(out))) > 0) {
			CU_ASSERT_EQUAL_FATAL(mps_seg_parse(out, (size_t)n, 0, &seg, &serr), 0);
			mps_tcpopt_walk(seg.opts, seg.opts_len, &t);
			for (i = 0; i < t.nmptcp; i++)
				if (mps_opt_parse(seg.opts + t.mptcp[i].off, t.mptcp[i].len,
						  seg.flags, &o, &err) == 0 &&
				    o.subtype == MPS_MPTCP_SUB_FAIL) {
					fails++;
					*dsn = o.fail_dsn;
				} else if (inf && o.subtype == MPS_MPTCP_SUB_DSS &&
					   (o.dss.flags & MPS_DSS_FLAG_M) && o.dss.data_len == 0) {
					(*inf)++;
				}
			if (deliver)
				mps_input(p->c, out, (size_t)n, p->now);
		}
	return fails;
}

/* Kept from the client, which thus never answers. */
static unsigned int server_mp_fails(struct pair *p, uint64_t *dsn)
{
	return server_opts(p, dsn, NULL, false);
}

/*
 * The other side of MP_FAIL (RFC 8684 §3.7, as Linux): the server gets the
 * client's MP_FAIL, echoes it on a pure ACK and stays MPTCP; its next new
 * data carries the infinite mapping and from then on it is TCP. The client
 * (our stack, which never sent an MP_FAIL) takes that mapping as a fallback
 * and reads the data.
 */
static void test_mp_fail_answered(void)
{
	struct mps_opt f = { .subtype = MPS_MPTCP_SUB_FAIL, .fail_dsn = 1234 };
	struct mps_conn_info si, ci;
	unsigned int inf = 0;
	uint8_t buf[16];
	uint64_t dsn = 0;
	struct pair p;

	uint8_t opts[12], pkt[128];

	pair_up(&p);
	CU_ASSERT_EQUAL(mps_send(p.cc, "hello", 5), 5);
	shuttle(&p);
	CU_ASSERT_EQUAL(mps_recv(p.sc, buf, sizeof(buf)), 5);
	CU_ASSERT_EQUAL_FATAL(mps_opt_build(&f, opts, sizeof(opts)), 12);
	mps_input(p.s, pkt, make_segment(pkt, p.cseq, p.sseq, opts, 12, (const uint8_t *)"", 0),
		  p.now);
	CU_ASSERT_EQUAL(mps_stack_counter(p.s, MPS_CNT_IN_MP_FAIL), 1);
	CU_ASSERT_TRUE(logged(p.s, MPS_EV_MP_FAIL, MPS_MP_FAIL_RCVD));
	/* The echo, on a pure ACK, kept from the client; a repeat is not echoed again. */
	CU_ASSERT_EQUAL(server_opts(&p, &dsn, &inf, false), 1);
	CU_ASSERT_EQUAL(dsn, 1234);
	mps_input(p.s, pkt, make_segment(pkt, p.cseq, p.sseq, opts, 12, (const uint8_t *)"", 0),
		  p.now);
	CU_ASSERT_EQUAL(server_opts(&p, &dsn, &inf, false), 0);
	CU_ASSERT_EQUAL(inf, 0);
	CU_ASSERT_EQUAL(mps_conn_info(p.sc, &si), 0);
	CU_ASSERT_TRUE(si.mptcp);
	CU_ASSERT_EQUAL(mps_send(p.sc, "xyz", 3), 3);
	CU_ASSERT_EQUAL(server_opts(&p, &dsn, &inf, true), 0);
	CU_ASSERT_EQUAL(inf, 1);
	CU_ASSERT_EQUAL(mps_stack_counter(p.s, MPS_CNT_OUT_INFINITE_MAP), 1);
	CU_ASSERT_EQUAL(mps_conn_info(p.sc, &si), 0);
	CU_ASSERT_FALSE(si.mptcp);
	CU_ASSERT_TRUE(logged(p.s, MPS_EV_FALLBACK, MPS_FALLBACK_MP_FAIL_RCVD));
	CU_ASSERT_EQUAL(mps_recv(p.cc, buf, sizeof(buf)), 3);
	CU_ASSERT_EQUAL(memcmp(buf, "xyz", 3), 0);
	CU_ASSERT_EQUAL(mps_conn_info(p.cc, &ci), 0);
	CU_ASSERT_FALSE(ci.mptcp);
	CU_ASSERT_EQUAL(mps_stack_counter(p.c, MPS_CNT_IN_INFINITE_MAP), 1);
	CU_ASSERT_TRUE(logged(p.c, MPS_EV_FALLBACK, MPS_FALLBACK_INFINITE_MAP));
	/* Both go on as TCP. */
	CU_ASSERT_EQUAL(mps_send(p.cc, "more", 4), 4);
	shuttle(&p);
	CU_ASSERT_EQUAL(mps_recv(p.sc, buf, sizeof(buf)), 4);
	CU_ASSERT_EQUAL(memcmp(buf, "more", 4), 0);
	mps_stack_destroy(p.c);
	mps_stack_destroy(p.s);
}

/*
 * MP_FAIL until answered (RFC 8684 §3.7): data whose DSS checksum is wrong
 * makes the server fall back, deliver it, and put MP_FAIL with the
 * mapping's DSN on its ACK. While the peer does not answer, every segment
 * carries it again; 120 s unanswered and the server resets, as Linux does.
 */
static void test_mp_fail_unanswered(void)
{
	struct mps_opt d = { .subtype = MPS_MPTCP_SUB_DSS };
	struct mps_dss_csum k;
	struct mps_conn_info si;
	uint8_t opts[20], pkt[128], buf[16];
	uint64_t dack, dsn = 0;
	struct pair p;
	int n;

	pair_up_cfg(&p, true);
	CU_ASSERT_EQUAL(mps_send(p.cc, "hello", 5), 5);
	shuttle(&p);
	CU_ASSERT_EQUAL(mps_recv(p.sc, buf, sizeof(buf)), 5);
	dack = last_data_ack(&p);
	d.dss.flags = MPS_DSS_FLAG_M | MPS_DSS_FLAG_m;
	d.dss.dsn = dack;
	d.dss.ssn = 6;
	d.dss.data_len = 3;
	d.dss.has_csum = true;
	mps_dss_csum_init(&k, dack, 6, 3);
	mps_dss_csum_add(&k, (const uint8_t *)"abc", 3);
	d.dss.csum = mps_dss_csum_final(&k) ^ 0x0100; /* the middlebox changed something */
	n = mps_opt_build(&d, opts, sizeof(opts));
	CU_ASSERT_EQUAL_FATAL(n, 20);
	mps_input(p.s, pkt, make_segment(pkt, p.cseq, p.sseq, opts, 20, (const uint8_t *)"abc", 3),
		  p.now);
	CU_ASSERT_EQUAL(mps_stack_counter(p.s, MPS_CNT_IN_DSS_CSUM), 1);
	CU_ASSERT_TRUE(logged(p.s, MPS_EV_MP_FAIL, MPS_MP_FAIL_SENT));
	CU_ASSERT_EQUAL(server_mp_fails(&p, &dsn), 1);
	CU_ASSERT_EQUAL(dsn, dack);
	CU_ASSERT_EQUAL(mps_recv(p.sc, buf, sizeof(buf)), 3);
	CU_ASSERT_EQUAL(memcmp(buf, "abc", 3), 0);
	/* A minute later, plain data: taken as TCP, and MP_FAIL goes again. */
	p.now += 60000000;
	mps_input(p.s, pkt,
		  make_segment(pkt, p.cseq + 3, p.sseq, (const uint8_t *)"", 0,
			       (const uint8_t *)"def", 3),
		  p.now);
	CU_ASSERT_EQUAL(server_mp_fails(&p, &dsn), 1);
	CU_ASSERT_EQUAL(dsn, dack);
	CU_ASSERT_EQUAL(mps_recv(p.sc, buf, sizeof(buf)), 3);
	CU_ASSERT_EQUAL(memcmp(buf, "def", 3), 0);
	CU_ASSERT_EQUAL(mps_conn_info(p.sc, &si), 0);
	CU_ASSERT_EQUAL(si.state, MPS_CONN_ESTABLISHED);
	/* Past 120 s without an answer: reset. */
	p.now += 61000000;
	mps_input(p.s, pkt,
		  make_segment(pkt, p.cseq + 6, p.sseq, (const uint8_t *)"", 0,
			       (const uint8_t *)"ghi", 3),
		  p.now);
	CU_ASSERT_EQUAL(mps_conn_info(p.sc, &si), 0);
	CU_ASSERT_EQUAL(si.state, MPS_CONN_RESET);
	CU_ASSERT_TRUE(logged(p.s, MPS_EV_CONN_RESET, MPS_RST_MP_FAIL));
	mps_stack_destroy(p.c);
	mps_stack_destroy(p.s);
}

static void *failing_alloc(void *ctx, size_t size)
{
	struct failing *f = ctx;

	if (f->left-- == 0)
		return NULL;
	f->live++;
	return malloc(size);
}

static void failing_free(void *ctx, void *p)
{
	struct failing *f = ctx;

	f->live--;
	free(p);
}

/* Shuttle packets and run timers until nothing is left to do (or 60 s of fake time). */
static void settle(struct pair *p)
{
	uint64_t t, u;
	int i;

	for (i = 0; i < 200; i++) {
		shuttle(p);
		t = mps_next_wakeup(p->c);
		u = mps_next_wakeup(p->s);
		t = u < t ? u : t;
		if (t == MPS_TIME_NEVER || t > 60000000)
			break;
		if (t > p->now)
			p->now = t;
	}
}

/*
 * Every allocation of either stack fails in turn: creation and connect say
 * -ENOMEM, a server short of memory drops the SYN and the client's
 * retransmission gets through, and nothing leaks (the live count returns
 * to zero, and the sanitizer build checks the rest).
 */
static void test_alloc_failure(void)
{
	struct mps_config ok = { .seed = 5 }, bad = { .seed = 6 };
	struct failing f;
	long n;
	int side, err, err2, completed = 0;
	uint64_t syn_drops = 0;

	bad.alloc = failing_alloc;
	bad.free = failing_free;
	bad.alloc_ctx = &f;
	for (side = 0; side < 2; side++) {
		for (n = 0; n < 16; n++) {
			struct pair p = { 0 };
			uint8_t buf[8];

			f.left = n;
			f.live = 0;
			p.c = mps_stack_create(side == 0 ? &bad : &ok, &err);
			p.s = mps_stack_create(side == 1 ? &bad : &ok, &err2);
			if (!p.c || !p.s) {
				CU_ASSERT_EQUAL(p.c ? err2 : err, -ENOMEM);
				mps_stack_destroy(p.c);
				mps_stack_destroy(p.s);
				CU_ASSERT_EQUAL(f.live, 0);
				continue;
			}
			CU_ASSERT_EQUAL_FATAL(mps_listen(p.s, &saddr), 0);
			err = mps_connect(p.c, &caddr, &saddr, &p.cc);
			if (err) {
				CU_ASSERT_EQUAL(err, -ENOMEM);
				CU_ASSERT_EQUAL(side, 0);
			} else {
				settle(&p);
				p.sc = mps_accept(p.s);
				CU_ASSERT_PTR_NOT_NULL_FATAL(p.sc);
				CU_ASSERT_EQUAL(mps_send(p.cc, "ping", 4), 4);
				settle(&p);
				CU_ASSERT_EQUAL(mps_recv(p.sc, buf, sizeof(buf)), 4);
				completed++;
			}
			syn_drops += mps_stack_counter(p.s, MPS_CNT_IN_ACCEPT_FULL);
			mps_stack_destroy(p.c);
			mps_stack_destroy(p.s);
			CU_ASSERT_EQUAL(f.live, 0);
		}
	}
	CU_ASSERT(completed > 10);
	/* The server side really dropped a SYN for want of memory, and recovered. */
	CU_ASSERT(syn_drops > 0);
}

static const struct fj_test tests[] = {
	{ "duplicate_dsn_probe", test_duplicate_dsn_probe },
	{ "mapping_ahead_held", test_mapping_ahead_held },
	{ "join_syn_answers", test_join_syn_answers },
	{ "add_addr_echo", test_add_addr_echo },
	{ "rm_addr_and_prio", test_rm_addr_and_prio },
	{ "alloc_failure", test_alloc_failure },
	{ "unacceptable_ack", test_unacceptable_ack },
	{ "delayed_ack", test_delayed_ack },
	{ "out_of_order_queue", test_out_of_order_queue },
	{ "paws", test_paws },
	{ "paws_expiry", test_paws_expiry },
	{ "input_checks", test_input_checks },
	{ "syn_checks", test_syn_checks },
	{ "mp_fail_unanswered", test_mp_fail_unanswered },
	{ "mp_fail_answered", test_mp_fail_answered },
	{ "sack_repair", test_sack_repair },
	{ NULL, NULL },
};

const struct fj_suite fj_suite_mps_tcp = { "mps_tcp", NULL, NULL, tests };
