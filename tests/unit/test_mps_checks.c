/*
 * Input checks and MP_FAIL at the segment level, against hand-made segments
 * on a pair of stacks in memory: section 3 of the spec row by row (after
 * the handshake, and MP_CAPABLE in a SYN), and both sides of MP_FAIL.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "fj_test.h"
#include "mps.h"
#include "mps_crypto.h"
#include "mps_opt.h"
#include "mps_pair.h"
#include "mps_seg.h"
#include "prot/mptcp.h"
#include "prot/wire.h"

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
	pair_shuttle(&p);
	CU_ASSERT_EQUAL(mps_recv(p.sc, buf, sizeof(buf)), 5);
	memset(opts, 0, sizeof(opts));
	optlen = ic->opts(pair_data_ack(&p), opts);
	before = ic->counter == MPS_CNT__COUNT ? 0 : mps_stack_counter(p.s, ic->counter);
	if (ic->opt_err >= 0)
		err_before = mps_stack_opt_errors(p.s, (unsigned int)ic->opt_err);
	mps_input(p.s, pkt,
		  pair_segment(pkt, p.cseq + (ic->opts == ic_beyond_window ? 1u << 30 : 0), p.sseq,
			       opts, (size_t)optlen, (const uint8_t *)"abc", 3),
		  p.now);
	/* The server's answer, straight away, before the client reacts to it. */
	while ((n = mps_output(p.s, p.now, out, sizeof(out))) > 0) {
		if (rst < 0)
			rst = ic_tcprst(out, (size_t)n);
		mps_input(p.c, out, (size_t)n, p.now);
	}
	pair_shuttle(&p);
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
			CU_ASSERT_TRUE(pair_logged(p.s, MPS_EV_FALLBACK, ic->reason));
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
	CU_ASSERT_EQUAL_FATAL(mps_listen(st, &pair_saddr), 0);
	mps_input(st, pkt,
		  pair_segment_flags(pkt, 0x02, 1000, 0, sc->opt, sc->len, (const uint8_t *)"", 0),
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
	pair_shuttle(&p);
	CU_ASSERT_EQUAL(mps_recv(p.sc, buf, sizeof(buf)), 5);
	CU_ASSERT_EQUAL_FATAL(mps_opt_build(&f, opts, sizeof(opts)), 12);
	mps_input(p.s, pkt, pair_segment(pkt, p.cseq, p.sseq, opts, 12, (const uint8_t *)"", 0),
		  p.now);
	CU_ASSERT_EQUAL(mps_stack_counter(p.s, MPS_CNT_IN_MP_FAIL), 1);
	CU_ASSERT_TRUE(pair_logged(p.s, MPS_EV_MP_FAIL, MPS_MP_FAIL_RCVD));
	/* The echo, on a pure ACK, kept from the client; a repeat is not echoed again. */
	CU_ASSERT_EQUAL(server_opts(&p, &dsn, &inf, false), 1);
	CU_ASSERT_EQUAL(dsn, 1234);
	mps_input(p.s, pkt, pair_segment(pkt, p.cseq, p.sseq, opts, 12, (const uint8_t *)"", 0),
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
	CU_ASSERT_TRUE(pair_logged(p.s, MPS_EV_FALLBACK, MPS_FALLBACK_MP_FAIL_RCVD));
	CU_ASSERT_EQUAL(mps_recv(p.cc, buf, sizeof(buf)), 3);
	CU_ASSERT_EQUAL(memcmp(buf, "xyz", 3), 0);
	CU_ASSERT_EQUAL(mps_conn_info(p.cc, &ci), 0);
	CU_ASSERT_FALSE(ci.mptcp);
	CU_ASSERT_EQUAL(mps_stack_counter(p.c, MPS_CNT_IN_INFINITE_MAP), 1);
	CU_ASSERT_TRUE(pair_logged(p.c, MPS_EV_FALLBACK, MPS_FALLBACK_INFINITE_MAP));
	/* Both go on as TCP. */
	CU_ASSERT_EQUAL(mps_send(p.cc, "more", 4), 4);
	pair_shuttle(&p);
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
	pair_shuttle(&p);
	CU_ASSERT_EQUAL(mps_recv(p.sc, buf, sizeof(buf)), 5);
	dack = pair_data_ack(&p);
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
	mps_input(p.s, pkt, pair_segment(pkt, p.cseq, p.sseq, opts, 20, (const uint8_t *)"abc", 3),
		  p.now);
	CU_ASSERT_EQUAL(mps_stack_counter(p.s, MPS_CNT_IN_DSS_CSUM), 1);
	CU_ASSERT_TRUE(pair_logged(p.s, MPS_EV_MP_FAIL, MPS_MP_FAIL_SENT));
	CU_ASSERT_EQUAL(server_mp_fails(&p, &dsn), 1);
	CU_ASSERT_EQUAL(dsn, dack);
	CU_ASSERT_EQUAL(mps_recv(p.sc, buf, sizeof(buf)), 3);
	CU_ASSERT_EQUAL(memcmp(buf, "abc", 3), 0);
	/* A minute later, plain data: taken as TCP, and MP_FAIL goes again. */
	p.now += 60000000;
	mps_input(p.s, pkt,
		  pair_segment(pkt, p.cseq + 3, p.sseq, (const uint8_t *)"", 0,
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
		  pair_segment(pkt, p.cseq + 6, p.sseq, (const uint8_t *)"", 0,
			       (const uint8_t *)"ghi", 3),
		  p.now);
	CU_ASSERT_EQUAL(mps_conn_info(p.sc, &si), 0);
	CU_ASSERT_EQUAL(si.state, MPS_CONN_RESET);
	CU_ASSERT_TRUE(pair_logged(p.s, MPS_EV_CONN_RESET, MPS_RST_MP_FAIL));
	mps_stack_destroy(p.c);
	mps_stack_destroy(p.s);
}

static const struct fj_test tests[] = {
	{ "input_checks", test_input_checks },
	{ "syn_checks", test_syn_checks },
	{ "mp_fail_unanswered", test_mp_fail_unanswered },
	{ "mp_fail_answered", test_mp_fail_answered },
	{ NULL, NULL },
};

const struct fj_suite fj_suite_mps_checks = { "mps_checks", NULL, NULL, tests };
