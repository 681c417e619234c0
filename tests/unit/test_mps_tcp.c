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
#include "mps_internal.h"
#include "mps_opt.h"
#include "mps_pair.h"
#include "mps_seg.h"
#include "mps_tcp.h"
#include "prot/wire.h"

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
	pair_shuttle(&p);
	dack = pair_data_ack(&p);
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
			  pair_segment(pkt, p.cseq, p.sseq, opts, 28, (const uint8_t *)"o", 1),
			  p.now),
		0);
	pair_shuttle(&p);
	/* The subflow took the byte; the connection did not. */
	CU_ASSERT_EQUAL(p.last_s.ack, p.cseq + 1);
	CU_ASSERT_EQUAL(pair_data_ack(&p), dack);
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
	pair_shuttle(&p);
	dack = pair_data_ack(&p);
	before = p.last_s.ack;
	CU_ASSERT_EQUAL(mps_conn_info(p.cc, &ci), 0);
	o.dss.flags = MPS_DSS_FLAG_M | MPS_DSS_FLAG_m;
	o.dss.dsn = dack + 100;
	o.dss.ssn = 6;
	o.dss.data_len = 3;
	k = mps_opt_build(&o, opts, sizeof(opts));
	CU_ASSERT_EQUAL_FATAL(k, 18);
	opts[18] = opts[19] = 1;
	mps_input(p.s, pkt, pair_segment(pkt, p.cseq, p.sseq, opts, 20, (const uint8_t *)"abc", 3),
		  p.now);
	pair_shuttle(&p);
	CU_ASSERT_EQUAL(mps_stack_counter(p.s, MPS_CNT_IN_BAD_MAPPING), 0);
	CU_ASSERT_EQUAL(p.last_s.ack, before + 3); /* taken on the subflow */
	CU_ASSERT_EQUAL(pair_data_ack(&p), dack);  /* but not at the data level */
	CU_ASSERT_EQUAL(mps_recv(p.sc, buf, sizeof(buf)), 5);
	CU_ASSERT_EQUAL(mps_recv(p.sc, buf, sizeof(buf)), -EAGAIN);
	/* Far beyond the receive window (256 KiB): refused, the subflow does not move. */
	o.dss.dsn = dack + (1u << 20);
	o.dss.ssn = 9;
	k = mps_opt_build(&o, opts, sizeof(opts));
	CU_ASSERT_EQUAL_FATAL(k, 18);
	mps_input(p.s, pkt,
		  pair_segment(pkt, p.cseq + 3, p.sseq, opts, 20, (const uint8_t *)"xyz", 3),
		  p.now);
	pair_shuttle(&p);
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
	len = pair_segment(pkt, 1000, 0, opts, 12, (const uint8_t *)"", 0);
	pkt[33] = 0x02; /* SYN */
	mps_put_be16(pkt + 20, sport);
	pkt[36] = pkt[37] = 0;
	{
		uint32_t sum = pair_sum16(pkt + 12, 8, 0) + 6 + 32;

		sum = pair_sum16(pkt + 20, 32, sum);
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
	mps_input(p->s, pkt, pair_segment(pkt, p->cseq, p->sseq, opts, 20, (const uint8_t *)"", 0),
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
	pair_send_option(&p, &o);
	CU_ASSERT_EQUAL(mps_conn_info(p.sc, &si), 0);
	CU_ASSERT_EQUAL(si.nremote_addrs, 0);
	CU_ASSERT_TRUE(pair_logged(p.s, MPS_EV_REMOVE_ADDR_IN, 3));
	CU_ASSERT_EQUAL(mps_subflow_info(p.sc, 0, &sfi), 0);
	CU_ASSERT_FALSE(sfi.backup);
	memset(&o, 0, sizeof(o));
	o.subtype = MPS_MPTCP_SUB_PRIO;
	o.prio_backup = true;
	pair_send_option(&p, &o);
	CU_ASSERT_EQUAL(mps_subflow_info(p.sc, 0, &sfi), 0);
	CU_ASSERT_TRUE(sfi.backup);
	CU_ASSERT_TRUE(pair_logged(p.s, MPS_EV_SUBFLOW_PRIO, 1));
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
	pair_shuttle(&p);
	CU_ASSERT_EQUAL(mps_recv(p.sc, buf, sizeof(buf)), 5);
	dack = pair_data_ack(&p);
	CU_ASSERT_EQUAL(mps_conn_info(p.cc, &ci), 0);
	o.dss.flags = MPS_DSS_FLAG_M | MPS_DSS_FLAG_m;
	o.dss.dsn = dack;
	o.dss.ssn = 6;
	o.dss.data_len = 3;
	k = mps_opt_build(&o, opts, sizeof(opts));
	CU_ASSERT_EQUAL_FATAL(k, 18);
	opts[18] = opts[19] = 1;
	mps_input(p.s, pkt,
		  pair_segment(pkt, p.cseq, p.sseq + 1000, opts, 20, (const uint8_t *)"abc", 3),
		  p.now);
	mps_input(p.s, pkt,
		  pair_segment(pkt, p.cseq, p.sseq - 1000000, opts, 20, (const uint8_t *)"abc", 3),
		  p.now);
	pair_shuttle(&p);
	CU_ASSERT_EQUAL(mps_stack_counter(p.s, MPS_CNT_IN_BAD_ACK), 2);
	CU_ASSERT_EQUAL(mps_recv(p.sc, buf, sizeof(buf)), -EAGAIN);
	/* The same segment with a valid ACK goes through. */
	mps_input(p.s, pkt, pair_segment(pkt, p.cseq, p.sseq, opts, 20, (const uint8_t *)"abc", 3),
		  p.now);
	pair_shuttle(&p);
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
	CU_ASSERT_EQUAL_FATAL(mps_listen(p.s, &pair_saddr), 0);
	CU_ASSERT_EQUAL_FATAL(mps_connect(p.c, &pair_caddr, &pair_saddr, &p.cc), 0);
	pair_shuttle(&p);
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
	pair_shuttle(&p);
	CU_ASSERT_EQUAL(mps_recv(p.sc, buf, sizeof(buf)), 5);
	dack = pair_data_ack(&p);
	o.dss.flags = MPS_DSS_FLAG_M | MPS_DSS_FLAG_m;
	o.dss.dsn = dack;
	o.dss.ssn = 6;
	o.dss.data_len = 3;
	k = mps_opt_build(&o, opts + 12, sizeof(opts) - 12);
	CU_ASSERT_EQUAL_FATAL(k, 18);
	opts[30] = opts[31] = 1;
	/* The client's timestamps so far are a few milliseconds; 100 s before is old. */
	mps_put_be32(opts + 4, (uint32_t)-100000);
	mps_input(p.s, pkt, pair_segment(pkt, p.cseq, p.sseq, opts, 32, (const uint8_t *)"abc", 3),
		  p.now);
	pair_shuttle(&p);
	CU_ASSERT_EQUAL(mps_stack_counter(p.s, MPS_CNT_IN_PAWS), 1);
	CU_ASSERT_EQUAL(mps_recv(p.sc, buf, sizeof(buf)), -EAGAIN);
	mps_put_be32(opts + 4, 1000000);
	mps_input(p.s, pkt, pair_segment(pkt, p.cseq, p.sseq, opts, 32, (const uint8_t *)"abc", 3),
		  p.now);
	pair_shuttle(&p);
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
	pair_shuttle(&p);
	CU_ASSERT_EQUAL(mps_recv(p.sc, buf, sizeof(buf)), 5);
	dack = pair_data_ack(&p);
	o.dss.flags = MPS_DSS_FLAG_M | MPS_DSS_FLAG_m;
	o.dss.dsn = dack;
	o.dss.ssn = 6;
	o.dss.data_len = 3;
	k = mps_opt_build(&o, opts + 12, sizeof(opts) - 12);
	CU_ASSERT_EQUAL_FATAL(k, 18);
	opts[30] = opts[31] = 1;
	mps_put_be32(opts + 4, (uint32_t)-100000);
	p.now += 23 * day;
	mps_input(p.s, pkt, pair_segment(pkt, p.cseq, p.sseq, opts, 32, (const uint8_t *)"abc", 3),
		  p.now);
	CU_ASSERT_EQUAL(mps_stack_counter(p.s, MPS_CNT_IN_PAWS), 1);
	CU_ASSERT_EQUAL(mps_stack_counter(p.s, MPS_CNT_PAWS_EXPIRED), 0);
	CU_ASSERT_EQUAL(mps_recv(p.sc, buf, sizeof(buf)), -EAGAIN);
	/* The refused segment did not refresh TS.Recent's age; two more days make it stale. */
	p.now += 2 * day;
	mps_input(p.s, pkt, pair_segment(pkt, p.cseq, p.sseq, opts, 32, (const uint8_t *)"abc", 3),
		  p.now);
	CU_ASSERT_EQUAL(mps_stack_counter(p.s, MPS_CNT_IN_PAWS), 1);
	CU_ASSERT_EQUAL(mps_stack_counter(p.s, MPS_CNT_PAWS_EXPIRED), 1);
	CU_ASSERT_EQUAL(mps_recv(p.sc, buf, sizeof(buf)), 3);
	CU_ASSERT_EQUAL(memcmp(buf, "abc", 3), 0);
	/* That timestamp is TS.Recent now: one just below it is an old duplicate again. */
	mps_put_be32(opts + 4, (uint32_t)-100001);
	mps_input(p.s, pkt,
		  pair_segment(pkt, p.cseq + 3, p.sseq, opts, 32, (const uint8_t *)"abc", 3),
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
	memcpy(pkt + 12, pair_saddr.addr, 4);
	memcpy(pkt + 16, pair_caddr.addr, 4);
	mps_put_be16(pkt + 20, pair_saddr.port);
	mps_put_be16(pkt + 22, pair_caddr.port);
	mps_put_be32(pkt + 24, seq);
	mps_put_be32(pkt + 28, ack);
	pkt[32] = (uint8_t)((thl / 4) << 4);
	pkt[33] = 0x10;
	mps_put_be16(pkt + 34, 4000);
	memcpy(pkt + 40, opts, optlen);
	sum = pair_sum16(pkt + 12, 8, 0) + 6 + (uint32_t)thl;
	sum = pair_sum16(pkt + 20, thl, sum);
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
	CU_ASSERT_EQUAL_FATAL(mps_listen(p.s, &pair_saddr), 0);
	CU_ASSERT_EQUAL_FATAL(mps_connect(p.c, &pair_caddr, &pair_saddr, &p.cc), 0);
	pair_shuttle(&p);
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
		pair_shuttle(p);
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
			CU_ASSERT_EQUAL_FATAL(mps_listen(p.s, &pair_saddr), 0);
			err = mps_connect(p.c, &pair_caddr, &pair_saddr, &p.cc);
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

/* The SACK blocks and the DSS of a duplicate ACK. */
static void dup_ack_opts(const uint8_t *pkt, int n, struct mps_tcpopts *t, struct mps_opt *dss)
{
	struct mps_seg seg;
	enum mps_seg_err serr;
	enum mps_opt_err oerr;

	CU_ASSERT_FATAL(n > 0);
	CU_ASSERT_EQUAL_FATAL(mps_seg_parse(pkt, (size_t)n, 0, &seg, &serr), 0);
	CU_ASSERT_EQUAL_FATAL(mps_tcpopt_walk(seg.opts, seg.opts_len, t), 0);
	CU_ASSERT_EQUAL_FATAL(t->nmptcp, 1);
	CU_ASSERT_EQUAL_FATAL(mps_opt_parse(seg.opts + t->mptcp[0].off, t->mptcp[0].len, seg.flags,
					    dss, &oerr),
			      0);
	CU_ASSERT_EQUAL(dss->subtype, MPS_MPTCP_SUB_DSS);
}

/*
 * Segments 1 and 3 of 0..4 arrive: the duplicate ACK reports both runs
 * (RFC 2018 §4), the one just received first, and fits them next to the
 * timestamps by a 4-byte DATA_ACK. With one run left, one block and the
 * 8-byte DATA_ACK again.
 */
static void test_sack_blocks(void)
{
	static uint8_t data[5 * 1000];
	struct mps_config cfg = { .seed = 9, .mss = 1040 }; /* 1000-byte segments */
	uint8_t pkts[5][1200], out[256];
	size_t lens[5];
	uint32_t seqs[5];
	uint64_t dack;
	struct pair p = { 0 };
	struct mps_tcpopts t;
	struct mps_opt dss;
	struct mps_seg seg;
	enum mps_seg_err serr;
	int n, k = 0, err;

	memset(data, 0x42, sizeof(data));
	p.c = mps_stack_create(&cfg, &err);
	cfg.seed = 10;
	p.s = mps_stack_create(&cfg, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p.c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p.s);
	CU_ASSERT_EQUAL_FATAL(mps_listen(p.s, &pair_saddr), 0);
	CU_ASSERT_EQUAL_FATAL(mps_connect(p.c, &pair_caddr, &pair_saddr, &p.cc), 0);
	pair_shuttle(&p);
	p.sc = mps_accept(p.s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p.sc);
	CU_ASSERT_EQUAL(mps_send(p.cc, data, sizeof(data)), (ssize_t)sizeof(data));
	while (k < 5 && (n = mps_output(p.c, p.now, pkts[k], sizeof(pkts[k]))) > 0) {
		lens[k] = (size_t)n;
		CU_ASSERT_EQUAL_FATAL(mps_seg_parse(pkts[k], lens[k], 0, &seg, &serr), 0);
		CU_ASSERT_EQUAL_FATAL(seg.payload_len, 1000);
		seqs[k++] = seg.seq;
	}
	CU_ASSERT_EQUAL_FATAL(k, 5);
	mps_input(p.s, pkts[1], lens[1], p.now);
	n = mps_output(p.s, p.now, out, sizeof(out));
	dup_ack_opts(out, n, &t, &dss);
	CU_ASSERT_EQUAL(t.nsack, 1);
	CU_ASSERT_EQUAL(dss.dss.flags & MPS_DSS_FLAG_a, MPS_DSS_FLAG_a);
	CU_ASSERT_TRUE(t.present & MPS_TCPOPTS_TS);
	dack = dss.dss.data_ack;
	mps_input(p.s, pkts[3], lens[3], p.now);
	n = mps_output(p.s, p.now, out, sizeof(out));
	dup_ack_opts(out, n, &t, &dss);
	CU_ASSERT_EQUAL_FATAL(t.nsack, 2);
	CU_ASSERT_EQUAL(t.sack[0].left, seqs[3]);
	CU_ASSERT_EQUAL(t.sack[0].right, seqs[3] + 1000);
	CU_ASSERT_EQUAL(t.sack[1].left, seqs[1]);
	CU_ASSERT_EQUAL(t.sack[1].right, seqs[1] + 1000);
	CU_ASSERT_EQUAL(dss.dss.flags & (MPS_DSS_FLAG_A | MPS_DSS_FLAG_a), MPS_DSS_FLAG_A);
	/* The 4-byte DATA_ACK still says where the connection's data stands. */
	CU_ASSERT_EQUAL(dss.dss.data_ack, (uint32_t)dack);
	/* Segment 0 fills the first hole: one run left, reported alone. */
	mps_input(p.s, pkts[0], lens[0], p.now);
	n = mps_output(p.s, p.now, out, sizeof(out));
	dup_ack_opts(out, n, &t, &dss);
	CU_ASSERT_EQUAL(t.nsack, 1);
	CU_ASSERT_EQUAL(t.sack[0].left, seqs[3]);
	CU_ASSERT_EQUAL(dss.dss.flags & MPS_DSS_FLAG_a, MPS_DSS_FLAG_a);
	mps_stack_destroy(p.c);
	mps_stack_destroy(p.s);
}

/* A subflow in SACK recovery with 10 segments of 1000 bytes out, from 0 (hand-made scoreboards). */
static void sack_sf(struct mps_subflow *sf, const uint32_t (*r)[2], unsigned int n)
{
	unsigned int i;

	memset(sf, 0, sizeof(*sf));
	sf->snd_una = 0;
	sf->snd_max = 10000;
	sf->in_recovery = true;
	sf->sack_recovery = true;
	for (i = 0; i < n; i++) {
		sf->sacked[i].left = r[i][0];
		sf->sacked[i].right = r[i][1];
	}
	sf->nsacked = (uint8_t)n;
}

/*
 * RFC 6675 pipe, NextSeg and RescueRxt on scoreboards worked by hand
 * (SMSS 1000, DupThresh 3): a hole is lost with three SACKed ranges or more
 * than 2000 SACKed bytes above it; lost octets leave pipe, retransmitted
 * ones (below HighRxt) count once more.
 */
static void test_sack_pipe(void)
{
	static const uint32_t one_burst[][2] = { { 1000, 4000 } };
	static const uint32_t too_few[][2] = { { 2000, 3000 } };
	static const uint32_t three[][2] = { { 1000, 1500 }, { 2000, 2500 }, { 3000, 3500 } };
	struct mps_subflow sf;
	uint32_t seq, len;

	/* [0,1000) lost under 3000 SACKed bytes; the tail [4000,10000) is in flight. */
	sack_sf(&sf, one_burst, 1);
	CU_ASSERT_EQUAL(mps_sack_pipe(&sf, 1000), 6000);
	CU_ASSERT_TRUE(mps_sack_hole(&sf, 1000, true, &seq, &len));
	CU_ASSERT_EQUAL(seq, 0);
	CU_ASSERT_EQUAL(len, 1000);
	/* Once resent (HighRxt 1000) it is in flight again, and no hole is left. */
	sf.rexmit_next = 1000;
	CU_ASSERT_EQUAL(mps_sack_pipe(&sf, 1000), 7000);
	CU_ASSERT_FALSE(mps_sack_hole(&sf, 1000, false, &seq, &len));
	/* Rule 4: the last segment of the tail, once. */
	CU_ASSERT_TRUE(mps_sack_rescue(&sf, 1000, &seq, &len));
	CU_ASSERT_EQUAL(seq, 9000);
	CU_ASSERT_EQUAL(len, 1000);
	sf.rescue_done = true;
	CU_ASSERT_FALSE(mps_sack_rescue(&sf, 1000, &seq, &len));

	/* One SACKed segment: [0,2000) is not lost yet, all of it still counts. */
	sack_sf(&sf, too_few, 1);
	CU_ASSERT_EQUAL(mps_sack_pipe(&sf, 1000), 2000 + 7000);
	CU_ASSERT_FALSE(mps_sack_hole(&sf, 1000, true, &seq, &len));
	/* ... but rule 3 may resend it when nothing else can go. */
	CU_ASSERT_TRUE(mps_sack_hole(&sf, 1000, false, &seq, &len));
	CU_ASSERT_EQUAL(seq, 0);
	CU_ASSERT_EQUAL(len, 2000);

	/*
	 * Three ranges: [0,1000) has three above it (lost); [1500,2000) two
	 * ranges, 1000 bytes (not lost); [2500,3000) one (not lost).
	 */
	sack_sf(&sf, three, 3);
	CU_ASSERT_EQUAL(mps_sack_pipe(&sf, 1000), 500 + 500 + 6500);
	CU_ASSERT_TRUE(mps_sack_hole(&sf, 1000, true, &seq, &len));
	CU_ASSERT_EQUAL(seq, 0);
	CU_ASSERT_EQUAL(len, 1000);
	/* HighRxt in the middle of the first hole: the rest of it comes next. */
	sf.rexmit_next = 600;
	CU_ASSERT_EQUAL(mps_sack_pipe(&sf, 1000), 600 + 500 + 500 + 6500);
	CU_ASSERT_TRUE(mps_sack_hole(&sf, 1000, true, &seq, &len));
	CU_ASSERT_EQUAL(seq, 600);
	CU_ASSERT_EQUAL(len, 400);
	sf.rexmit_next = 1000;
	CU_ASSERT_FALSE(mps_sack_hole(&sf, 1000, true, &seq, &len));
	CU_ASSERT_TRUE(mps_sack_hole(&sf, 1000, false, &seq, &len));
	CU_ASSERT_EQUAL(seq, 1500);
	CU_ASSERT_EQUAL(len, 500);

	/* An ACK that takes snd_una past a range: what is left below HighRxt counts. */
	sf.snd_una = 1500;
	sf.sacked[0] = sf.sacked[1];
	sf.sacked[1] = sf.sacked[2];
	sf.nsacked = 2;
	CU_ASSERT_EQUAL(mps_sack_pipe(&sf, 1000), 500 + 500 + 6500);

	/* Outside SACK recovery pipe is the flight. */
	sf.sack_recovery = false;
	CU_ASSERT_EQUAL(mps_sack_pipe(&sf, 1000), 10000 - 1500);
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
	{ "sack_repair", test_sack_repair },
	{ "sack_pipe", test_sack_pipe },
	{ "sack_blocks", test_sack_blocks },
	{ NULL, NULL },
};

const struct fj_suite fj_suite_mps_tcp = { "mps_tcp", NULL, NULL, tests };
