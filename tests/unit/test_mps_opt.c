/*
 * MPTCP option codec and TCP option walker: hand-written wire vectors for
 * every subtype and form, build/parse round trips, and every malformed case
 * with its own error code.
 */
#include <errno.h>
#include <string.h>

#include "fj_test.h"
#include "mps_opt.h"

#define SYN    MPS_TCP_SYN
#define SYNACK (MPS_TCP_SYN | MPS_TCP_ACK)
#define ACK    MPS_TCP_ACK
#define DATA   (MPS_TCP_ACK | MPS_SEG_DATA)
#define RSTACK (MPS_TCP_RST | MPS_TCP_ACK)

static enum mps_opt_err parse_err(const uint8_t *b, size_t len, unsigned int seg)
{
	struct mps_opt o;
	enum mps_opt_err err = MPS_OPT_OK;
	int rc = mps_opt_parse(b, len, seg, &o, &err);

	CU_ASSERT((rc == 0) == (err == MPS_OPT_OK));
	return err;
}

/* Parse, then rebuild and require the same bytes. */
static void roundtrip(const uint8_t *b, size_t len, unsigned int seg, struct mps_opt *o)
{
	enum mps_opt_err err;
	uint8_t out[MPS_MPTCP_OPT_MAX];

	CU_ASSERT_EQUAL_FATAL(mps_opt_parse(b, len, seg, o, &err), 0);
	CU_ASSERT_EQUAL(err, MPS_OPT_OK);
	CU_ASSERT_EQUAL(o->len, len);
	CU_ASSERT_EQUAL(mps_opt_len(o), (int)len);
	CU_ASSERT_EQUAL_FATAL(mps_opt_build(o, out, sizeof(out)), (int)len);
	CU_ASSERT_EQUAL(memcmp(out, b, len), 0);
}

static void test_mpc_forms(void)
{
	static const uint8_t syn[] = { 30, 4, 0x01, 0x81 };
	static const uint8_t synack[] = { 30, 12, 0x01, 0x01, 1, 2, 3, 4, 5, 6, 7, 8 };
	static const uint8_t ack[] = { 30,   20,   0x01, 0x21, 0x8b, 0xed, 0xbf, 0x3f, 0x41, 0x01,
				       0x4d, 0xbb, 0xf7, 0x14, 0xf7, 0xca, 0x3d, 0x83, 0x34, 0x40 };
	uint8_t data[24];
	struct mps_opt o;

	roundtrip(syn, sizeof(syn), SYN, &o);
	CU_ASSERT_EQUAL(o.subtype, MPS_MPTCP_SUB_CAPABLE);
	CU_ASSERT_EQUAL(o.mpc.form, MPS_MPC_SYN);
	CU_ASSERT_EQUAL(o.mpc.version, 1);
	CU_ASSERT_EQUAL(o.mpc.flags, MPS_MPC_FLAG_A | MPS_MPC_FLAG_H);
	roundtrip(synack, sizeof(synack), SYNACK, &o);
	CU_ASSERT_EQUAL(o.mpc.form, MPS_MPC_SYNACK);
	CU_ASSERT_EQUAL(o.mpc.snd_key, 0x0102030405060708ULL);
	roundtrip(ack, sizeof(ack), ACK, &o);
	CU_ASSERT_EQUAL(o.mpc.form, MPS_MPC_ACK);
	CU_ASSERT_EQUAL(o.mpc.flags & MPS_MPC_FLAG_C, MPS_MPC_FLAG_C);
	/* The two keys of the worked vector in the captures README. */
	CU_ASSERT_EQUAL(o.mpc.snd_key, 10082925419146857915ULL);
	CU_ASSERT_EQUAL(o.mpc.rcv_key, 17804127674889876544ULL);

	memcpy(data, ack, sizeof(ack));
	data[1] = 22;
	data[20] = 0x7a;
	data[21] = 0x60;
	roundtrip(data, 22, DATA, &o);
	CU_ASSERT_EQUAL(o.mpc.form, MPS_MPC_DATA);
	CU_ASSERT_EQUAL(o.mpc.data_len, 31328);
	CU_ASSERT_FALSE(o.mpc.has_csum);
	data[1] = 24;
	data[22] = 0x9a;
	data[23] = 0x54;
	roundtrip(data, 24, DATA, &o);
	CU_ASSERT_TRUE(o.mpc.has_csum);
	CU_ASSERT_EQUAL(o.mpc.csum, 0x9a54);
	/* A future version is fine in a SYN only. */
	{
		static const uint8_t syn2[] = { 30, 4, 0x02, 0x01 };

		roundtrip(syn2, sizeof(syn2), SYN, &o);
		CU_ASSERT_EQUAL(o.mpc.version, 2);
	}
}

static void test_mpc_malformed(void)
{
	uint8_t b[24] = { 30, 20, 0x01, 0x01, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 0, 5 };

	CU_ASSERT_EQUAL(parse_err(b, 20, ACK), MPS_OPT_OK);
	/* Each length is legal only on its own segment type. */
	b[1] = 12;
	CU_ASSERT_EQUAL(parse_err(b, 12, SYN), MPS_OPT_E_MPC_LEN);
	CU_ASSERT_EQUAL(parse_err(b, 12, ACK), MPS_OPT_E_MPC_LEN);
	b[1] = 4;
	CU_ASSERT_EQUAL(parse_err(b, 4, SYNACK), MPS_OPT_E_MPC_LEN);
	b[1] = 20;
	CU_ASSERT_EQUAL(parse_err(b, 20, DATA), MPS_OPT_E_MPC_LEN);
	b[1] = 22;
	CU_ASSERT_EQUAL(parse_err(b, 22, ACK), MPS_OPT_E_MPC_LEN);
	b[1] = 23;
	CU_ASSERT_EQUAL(parse_err(b, 23, DATA), MPS_OPT_E_MPC_LEN);
	b[1] = 20;
	b[2] = 0x00; /* version 0 */
	CU_ASSERT_EQUAL(parse_err(b, 20, ACK), MPS_OPT_E_MPC_VERSION);
	b[2] = 0x02; /* version 2 outside the SYN */
	CU_ASSERT_EQUAL(parse_err(b, 20, ACK), MPS_OPT_E_MPC_VERSION);
	b[2] = 0x01;
	b[3] = 0x41;
	CU_ASSERT_EQUAL(parse_err(b, 20, ACK), MPS_OPT_E_MPC_FLAG_B);
	b[3] = 0x80;
	CU_ASSERT_EQUAL(parse_err(b, 20, ACK), MPS_OPT_E_MPC_NO_H);
	b[3] = 0x03;
	CU_ASSERT_EQUAL(parse_err(b, 20, ACK), MPS_OPT_E_MPC_FLAGS_DG);
	b[3] = 0x01;
	memset(b + 12, 0, 8);
	CU_ASSERT_EQUAL(parse_err(b, 20, ACK), MPS_OPT_E_MPC_ZERO_KEY);
	memset(b + 4, 0, 8);
	b[1] = 12;
	CU_ASSERT_EQUAL(parse_err(b, 12, SYNACK), MPS_OPT_E_MPC_ZERO_KEY);
	{
		static const uint8_t v0syn[] = { 30, 4, 0x00, 0x01 };

		CU_ASSERT_EQUAL(parse_err(v0syn, 4, SYN), MPS_OPT_E_MPC_VERSION);
	}
}

static void test_join_forms(void)
{
	static const uint8_t syn[] = { 30,   12,   0x11, 2,    0x68, 0x68,
				       0x0a, 0x47, 0xdd, 0xb6, 0x98, 0xb0 };
	static const uint8_t synack[] = { 30,	16,   0x10, 0,	  0x72, 0x19, 0x7a, 0x18,
					  0x05, 0x2f, 0x11, 0x94, 0x84, 0x44, 0x25, 0x27 };
	uint8_t ack[24] = { 30, 24, 0x10, 0 };
	struct mps_opt o;
	int i;

	roundtrip(syn, sizeof(syn), SYN, &o);
	CU_ASSERT_EQUAL(o.subtype, MPS_MPTCP_SUB_JOIN);
	CU_ASSERT_EQUAL(o.join.form, MPS_JOIN_SYN);
	CU_ASSERT_TRUE(o.join.backup);
	CU_ASSERT_EQUAL(o.join.addr_id, 2);
	CU_ASSERT_EQUAL(o.join.token, 1751648839u);
	CU_ASSERT_EQUAL(o.join.nonce, 0xddb698b0u);
	roundtrip(synack, sizeof(synack), SYNACK, &o);
	CU_ASSERT_EQUAL(o.join.form, MPS_JOIN_SYNACK);
	CU_ASSERT_FALSE(o.join.backup);
	CU_ASSERT_EQUAL(o.join.hmac64, 8221736838326325652ULL);
	CU_ASSERT_EQUAL(o.join.nonce, 2219058471u);
	for (i = 0; i < 20; i++)
		ack[4 + i] = (uint8_t)(0xa0 + i);
	roundtrip(ack, sizeof(ack), ACK, &o);
	CU_ASSERT_EQUAL(o.join.form, MPS_JOIN_ACK);
	CU_ASSERT_EQUAL(o.join.hmac[0], 0xa0);
	CU_ASSERT_EQUAL(o.join.hmac[19], 0xb3);

	CU_ASSERT_EQUAL(parse_err(syn, sizeof(syn), SYNACK), MPS_OPT_E_JOIN_LEN);
	CU_ASSERT_EQUAL(parse_err(synack, sizeof(synack), ACK), MPS_OPT_E_JOIN_LEN);
	CU_ASSERT_EQUAL(parse_err(ack, sizeof(ack), SYN), MPS_OPT_E_JOIN_LEN);
}

/* Every combination of the five DSS flags, each with and without a checksum. */
static void test_dss_all_flags(void)
{
	unsigned int flags, csum, ok = 0, bad = 0;

	for (flags = 0; flags < 32; flags++) {
		for (csum = 0; csum < 2; csum++) {
			struct mps_opt o = { .subtype = MPS_MPTCP_SUB_DSS };
			uint8_t buf[MPS_MPTCP_OPT_MAX];
			bool valid = !((flags & MPS_DSS_FLAG_a) && !(flags & MPS_DSS_FLAG_A)) &&
				     !((flags & MPS_DSS_FLAG_m) && !(flags & MPS_DSS_FLAG_M)) &&
				     !((flags & MPS_DSS_FLAG_F) && !(flags & MPS_DSS_FLAG_M)) &&
				     !(csum && !(flags & MPS_DSS_FLAG_M));
			int len;

			o.dss.flags = (uint8_t)flags;
			o.dss.has_csum = csum;
			o.dss.data_ack = (flags & MPS_DSS_FLAG_a) ? 0x1122334455667788ULL
								  : 0x11223344;
			o.dss.dsn = (flags & MPS_DSS_FLAG_m) ? 0x8877665544332211ULL : 0x88776655;
			o.dss.ssn = 0xdeadbeef;
			o.dss.data_len = 1424;
			o.dss.csum = csum ? 0xbeef : 0;
			len = mps_opt_build(&o, buf, sizeof(buf));
			if (!valid) {
				CU_ASSERT_EQUAL(len, -EINVAL);
				bad++;
				continue;
			}
			CU_ASSERT_FATAL(len > 0);
			if (!(flags & MPS_DSS_FLAG_A))
				o.dss.data_ack = 0;
			if (!(flags & MPS_DSS_FLAG_M)) {
				o.dss.dsn = 0;
				o.dss.ssn = 0;
				o.dss.data_len = 0;
			}
			{
				struct mps_opt p;

				roundtrip(buf, (size_t)len, ACK, &p);
				CU_ASSERT_EQUAL(p.dss.flags, flags);
				CU_ASSERT_EQUAL(p.dss.has_csum, csum);
				CU_ASSERT_EQUAL(p.dss.data_ack, o.dss.data_ack);
				CU_ASSERT_EQUAL(p.dss.dsn, o.dss.dsn);
				CU_ASSERT_EQUAL(p.dss.ssn, o.dss.ssn);
				CU_ASSERT_EQUAL(p.dss.data_len, o.dss.data_len);
				CU_ASSERT_EQUAL(p.dss.csum, o.dss.csum);
			}
			ok++;
		}
	}
	/* A: 3 choices (none, 4, 8) x M: 3 x F on a mapping x checksum on a mapping. */
	CU_ASSERT_EQUAL(ok, 3 * (1 + 2 * 2 * 2));
	CU_ASSERT_EQUAL(ok + bad, 64);
}

static void test_dss_lengths(void)
{
	/* ACK only 8/12, map 14/18, ack32+map64 22, ack64+map64 26, +2 checksum 28. */
	static const struct {
		uint8_t flags;
		uint8_t len;
	} legal[] = {
		{ 0x01, 8 },  { 0x03, 12 }, { 0x04, 14 }, { 0x0c, 18 }, { 0x0d, 22 },
		{ 0x0f, 26 }, { 0x0f, 28 }, { 0x1f, 28 }, { 0x14, 16 }, { 0x00, 4 },
	};
	uint8_t b[MPS_MPTCP_OPT_MAX] = { 30, 0, 0x20, 0 };
	size_t i;

	for (i = 0; i < sizeof(legal) / sizeof(legal[0]); i++) {
		b[1] = legal[i].len;
		b[3] = legal[i].flags;
		CU_ASSERT_EQUAL(parse_err(b, legal[i].len, ACK), MPS_OPT_OK);
		b[1] = legal[i].len + 1;
		CU_ASSERT_EQUAL(parse_err(b, legal[i].len + 1u, ACK), MPS_OPT_E_DSS_LEN);
	}
	b[1] = 3; /* no room for the flags byte (found by fuzz_mptcp_opt) */
	CU_ASSERT_EQUAL(parse_err(b, 3, ACK), MPS_OPT_E_DSS_LEN);
	b[3] = 0x01;
	b[1] = 10; /* a 2-byte checksum with no mapping */
	CU_ASSERT_EQUAL(parse_err(b, 10, ACK), MPS_OPT_E_DSS_LEN);
	b[3] = 0x02;
	b[1] = 4;
	CU_ASSERT_EQUAL(parse_err(b, 4, ACK), MPS_OPT_E_DSS_FLAGS);
	b[3] = 0x08 | 0x01;
	b[1] = 8;
	CU_ASSERT_EQUAL(parse_err(b, 8, ACK), MPS_OPT_E_DSS_FLAGS);
	b[3] = 0x11;
	CU_ASSERT_EQUAL(parse_err(b, 8, ACK), MPS_OPT_E_DSS_FIN_NO_MAP);
	/* Reserved bits are ignored, and the infinite mapping is well formed. */
	{
		static const uint8_t inf[] = { 30, 16, 0x2f, 0xe4, 0, 0, 0, 9,
					       0,  0,  0,    1,	   0, 0, 0, 0 };
		struct mps_opt o;
		enum mps_opt_err err;

		CU_ASSERT_EQUAL(mps_opt_parse(inf, sizeof(inf), ACK, &o, &err), 0);
		CU_ASSERT_EQUAL(o.dss.flags, MPS_DSS_FLAG_M);
		CU_ASSERT_TRUE(o.dss.has_csum);
		CU_ASSERT_TRUE(mps_dss_is_infinite(&o.dss));
		CU_ASSERT_EQUAL(o.dss.dsn, 9);
	}
}

static void test_add_addr_forms(void)
{
	unsigned int fam, port, echo, ok = 0;

	for (fam = 0; fam < 2; fam++)
		for (port = 0; port < 2; port++)
			for (echo = 0; echo < 2; echo++) {
				struct mps_opt o = { .subtype = MPS_MPTCP_SUB_ADD_ADDR }, p;
				uint8_t buf[MPS_MPTCP_OPT_MAX];
				int len, want;
				size_t i;

				o.add_addr.family = fam ? 6 : 4;
				o.add_addr.echo = echo;
				o.add_addr.addr_id = 7;
				for (i = 0; i < (fam ? 16u : 4u); i++)
					o.add_addr.addr[i] = (uint8_t)(10 + i);
				o.add_addr.has_port = port;
				o.add_addr.port = port ? 5002 : 0;
				o.add_addr.hmac = echo ? 0 : 0x0102030405060708ULL;
				want = (fam ? 20 : 8) + (port ? 2 : 0) + (echo ? 0 : 8);
				len = mps_opt_build(&o, buf, sizeof(buf));
				CU_ASSERT_EQUAL_FATAL(len, want);
				roundtrip(buf, (size_t)len, ACK, &p);
				CU_ASSERT_EQUAL(p.add_addr.family, o.add_addr.family);
				CU_ASSERT_EQUAL(p.add_addr.echo, o.add_addr.echo);
				CU_ASSERT_EQUAL(p.add_addr.addr_id, 7);
				CU_ASSERT_EQUAL(memcmp(p.add_addr.addr, o.add_addr.addr, 16), 0);
				CU_ASSERT_EQUAL(p.add_addr.has_port, o.add_addr.has_port);
				CU_ASSERT_EQUAL(p.add_addr.port, o.add_addr.port);
				CU_ASSERT_EQUAL(p.add_addr.hmac, o.add_addr.hmac);
				/* Flip E: the HMAC presence no longer matches. */
				buf[2] ^= MPS_ADD_ADDR_FLAG_E;
				CU_ASSERT_EQUAL(parse_err(buf, (size_t)len, ACK),
						MPS_OPT_E_ADD_ADDR_ECHO);
				ok++;
			}
	CU_ASSERT_EQUAL(ok, 8);
}

static void test_add_addr_bad_len(void)
{
	uint8_t b[MPS_MPTCP_OPT_MAX] = { 30, 0, 0x30, 1 };
	unsigned int len, legal = 0;

	for (len = 3; len <= 32; len++) {
		enum mps_opt_err e;

		b[1] = (uint8_t)len;
		b[2] = (len == 8 || len == 10 || len == 20 || len == 22) ? 0x31 : 0x30;
		e = parse_err(b, len, ACK);
		if (len == 8 || len == 10 || len == 16 || len == 18 || len == 20 || len == 22 ||
		    len == 28 || len == 30) {
			CU_ASSERT_EQUAL(e, MPS_OPT_OK);
			legal++;
		} else {
			CU_ASSERT_EQUAL(e, MPS_OPT_E_ADD_ADDR_LEN);
		}
	}
	CU_ASSERT_EQUAL(legal, 8);
}

static void test_rm_addr(void)
{
	uint8_t b[16] = { 30, 0, 0x40, 1, 2, 3, 4, 5, 6, 7, 8, 9 };
	struct mps_opt o;
	unsigned int n;

	for (n = 1; n <= 8; n++) {
		b[1] = (uint8_t)(3 + n);
		roundtrip(b, 3 + n, ACK, &o);
		CU_ASSERT_EQUAL(o.subtype, MPS_MPTCP_SUB_RM_ADDR);
		CU_ASSERT_EQUAL(o.rm_addr.n, n);
		CU_ASSERT_EQUAL(o.rm_addr.ids[n - 1], n);
	}
	b[1] = 3;
	CU_ASSERT_EQUAL(parse_err(b, 3, ACK), MPS_OPT_E_RM_ADDR_LEN);
	b[1] = 12;
	CU_ASSERT_EQUAL(parse_err(b, 12, ACK), MPS_OPT_E_RM_ADDR_LEN);
	o.rm_addr.n = 0;
	CU_ASSERT_EQUAL(mps_opt_build(&o, b, sizeof(b)), -EINVAL);
	o.rm_addr.n = 9;
	CU_ASSERT_EQUAL(mps_opt_build(&o, b, sizeof(b)), -EINVAL);
}

static void test_prio_fail_fastclose_rst(void)
{
	static const uint8_t prio[] = { 30, 3, 0x51 };
	static const uint8_t fail[] = { 30, 12, 0x60, 0, 0, 0, 0, 1, 2, 3, 4, 5 };
	static const uint8_t fc[] = { 30,   12,	  0x70, 0,    0xf7, 0x14,
				      0xf7, 0xca, 0x3d, 0x83, 0x34, 0x40 };
	static const uint8_t rst[] = { 30, 4, 0x81, 0x06 };
	uint8_t bad[16];
	struct mps_opt o;

	roundtrip(prio, sizeof(prio), ACK, &o);
	CU_ASSERT_TRUE(o.prio_backup);
	roundtrip(fail, sizeof(fail), ACK, &o);
	CU_ASSERT_EQUAL(o.fail_dsn, 0x0102030405ULL);
	roundtrip(fc, sizeof(fc), RSTACK, &o);
	CU_ASSERT_EQUAL(o.fastclose_key, 17804127674889876544ULL);
	roundtrip(rst, sizeof(rst), RSTACK, &o);
	CU_ASSERT_EQUAL(o.tcprst.flags, MPS_TCPRST_FLAG_T);
	CU_ASSERT_EQUAL(o.tcprst.reason, MPS_TCPRST_MIDDLEBOX);

	CU_ASSERT_EQUAL(parse_err(rst, sizeof(rst), ACK), MPS_OPT_E_TCPRST_NO_RST);
	memcpy(bad, prio, 3);
	bad[1] = 4; /* the v0 form with an address ID */
	bad[3] = 1;
	CU_ASSERT_EQUAL(parse_err(bad, 4, ACK), MPS_OPT_E_PRIO_LEN);
	memcpy(bad, fail, 12);
	bad[1] = 11;
	CU_ASSERT_EQUAL(parse_err(bad, 11, ACK), MPS_OPT_E_FAIL_LEN);
	memcpy(bad, fc, 12);
	bad[1] = 13;
	bad[12] = 0;
	CU_ASSERT_EQUAL(parse_err(bad, 13, RSTACK), MPS_OPT_E_FASTCLOSE_LEN);
	memcpy(bad, rst, 4);
	bad[1] = 5;
	bad[4] = 0;
	CU_ASSERT_EQUAL(parse_err(bad, 5, RSTACK), MPS_OPT_E_TCPRST_LEN);
}

static void test_generic_malformed(void)
{
	uint8_t b[48] = { 30, 4, 0x90, 0 };
	struct mps_opt o;
	enum mps_opt_err err;
	unsigned int sub;

	CU_ASSERT_EQUAL(parse_err(b, 2, ACK), MPS_OPT_E_SHORT);
	b[0] = 29;
	CU_ASSERT_EQUAL(parse_err(b, 4, ACK), MPS_OPT_E_KIND);
	b[0] = 30;
	CU_ASSERT_EQUAL(parse_err(b, 5, ACK), MPS_OPT_E_LEN_BYTE);
	b[1] = 41;
	CU_ASSERT_EQUAL(parse_err(b, 41, ACK), MPS_OPT_E_LEN_BYTE);
	b[1] = 4;
	for (sub = 9; sub < 15; sub++) {
		b[2] = (uint8_t)(sub << 4);
		CU_ASSERT_EQUAL(mps_opt_parse(b, 4, ACK, &o, &err), -EOPNOTSUPP);
		CU_ASSERT_EQUAL(err, MPS_OPT_E_SUBTYPE);
	}
	/* The private-use subtype is carried opaquely. */
	b[2] = 0xf3;
	b[3] = 0x42;
	roundtrip(b, 4, ACK, &o);
	CU_ASSERT_EQUAL(o.subtype, MPS_MPTCP_SUB_EXP);
	CU_ASSERT_EQUAL(o.exp.len, 2);
	CU_ASSERT_EQUAL(o.exp.data[1], 0x42);
}

/* Every error has its own name, and the codes are distinct by construction. */
static void test_err_names(void)
{
	int i, j;

	for (i = 0; i < MPS_OPT_E_COUNT; i++) {
		CU_ASSERT_PTR_NOT_NULL_FATAL(mps_opt_err_name(i));
		for (j = 0; j < i; j++)
			CU_ASSERT_STRING_NOT_EQUAL(mps_opt_err_name(i), mps_opt_err_name(j));
	}
	CU_ASSERT_STRING_EQUAL(mps_opt_err_name(MPS_OPT_E_COUNT), "unknown");
}

static void test_build_nospace(void)
{
	struct mps_opt o = { .subtype = MPS_MPTCP_SUB_FAIL, .fail_dsn = 1 };
	uint8_t b[12];

	CU_ASSERT_EQUAL(mps_opt_build(&o, b, 11), -ENOSPC);
	CU_ASSERT_EQUAL(mps_opt_build(&o, b, 12), 12);
	o.subtype = 12;
	CU_ASSERT_EQUAL(mps_opt_build(&o, b, 12), -EINVAL);
}

static void test_walk_clean(void)
{
	/* SYN of v4-two-paths: MSS, SACK_PERM, TS, NOP, WS, MP_CAPABLE. */
	static const uint8_t syn[] = { 2, 4, 0x05, 0xb4, 4, 2, 8,  10, 0x8a, 0x73, 0x2d, 0x42, 0,
				       0, 0, 0,	   1,	 3, 3, 10, 30, 4,    0x01, 0x81, 0,    0 };
	static const uint8_t sack[] = {
		1, 1, 5, 18, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4
	};
	struct mps_tcpopts t;

	CU_ASSERT_EQUAL(mps_tcpopt_walk(syn, sizeof(syn), &t), 0);
	CU_ASSERT_EQUAL(t.present,
			MPS_TCPOPTS_MSS | MPS_TCPOPTS_SACK_PERM | MPS_TCPOPTS_TS | MPS_TCPOPTS_WS);
	CU_ASSERT_EQUAL(t.mss, 1460);
	CU_ASSERT_EQUAL(t.ws, 10);
	CU_ASSERT_EQUAL(t.ts_val, 0x8a732d42u);
	CU_ASSERT_EQUAL(t.ts_ecr, 0);
	CU_ASSERT_EQUAL(t.nmptcp, 1);
	CU_ASSERT_EQUAL(t.mptcp[0].off, 20);
	CU_ASSERT_EQUAL(t.mptcp[0].len, 4);
	CU_ASSERT_EQUAL(t.nerr, 0);
	CU_ASSERT_EQUAL(mps_tcpopt_walk(sack, sizeof(sack), &t), 0);
	CU_ASSERT_EQUAL(t.nsack, 2);
	CU_ASSERT_EQUAL(t.sack[1].left, 3);
	CU_ASSERT_EQUAL(t.sack[1].right, 4);
}

static void test_walk_malformed(void)
{
	struct mps_tcpopts t;
	uint8_t b[40];

	/* A bad MSS is skipped; the timestamp after it still counts. */
	static const uint8_t mss5[] = { 2, 5, 1, 2, 3, 8, 10, 0, 0, 0, 7, 0, 0, 0, 9 };
	CU_ASSERT_EQUAL(mps_tcpopt_walk(mss5, sizeof(mss5), &t), -EBADMSG);
	CU_ASSERT_EQUAL(t.err, MPS_OPT_E_TCP_MSS_LEN);
	CU_ASSERT_EQUAL(t.nerr, 1);
	CU_ASSERT_EQUAL(t.present, MPS_TCPOPTS_TS);
	CU_ASSERT_EQUAL(t.ts_val, 7);

	static const uint8_t ws[] = { 3, 4, 1, 1 };
	CU_ASSERT_EQUAL(mps_tcpopt_walk(ws, sizeof(ws), &t), -EBADMSG);
	CU_ASSERT_EQUAL(t.err, MPS_OPT_E_TCP_WS_LEN);
	static const uint8_t sp[] = { 4, 3, 0, 1 };
	CU_ASSERT_EQUAL(mps_tcpopt_walk(sp, sizeof(sp), &t), -EBADMSG);
	CU_ASSERT_EQUAL(t.err, MPS_OPT_E_TCP_SACK_PERM_LEN);
	static const uint8_t sk[] = { 5, 6, 0, 0, 0, 0 };
	CU_ASSERT_EQUAL(mps_tcpopt_walk(sk, sizeof(sk), &t), -EBADMSG);
	CU_ASSERT_EQUAL(t.err, MPS_OPT_E_TCP_SACK_LEN);
	memset(b, 0, sizeof(b));
	b[0] = 5;
	b[1] = 2 + 5 * 8; /* five blocks do not fit the rules (nor the space) */
	CU_ASSERT_EQUAL(mps_tcpopt_walk(b, 40, &t), -EBADMSG);
	CU_ASSERT_EQUAL(t.err, MPS_OPT_E_TCP_OVERRUN);
	b[1] = 34; /* 4 blocks is the maximum: fine */
	CU_ASSERT_EQUAL(mps_tcpopt_walk(b, 40, &t), 0);
	CU_ASSERT_EQUAL(t.nsack, 4);
	static const uint8_t ts[] = { 8, 8, 0, 0, 0, 0, 0, 0 };
	CU_ASSERT_EQUAL(mps_tcpopt_walk(ts, sizeof(ts), &t), -EBADMSG);
	CU_ASSERT_EQUAL(t.err, MPS_OPT_E_TCP_TS_LEN);
	static const uint8_t dup[] = { 2, 4, 5, 0xb4, 2, 4, 0, 1 };
	CU_ASSERT_EQUAL(mps_tcpopt_walk(dup, sizeof(dup), &t), -EBADMSG);
	CU_ASSERT_EQUAL(t.err, MPS_OPT_E_TCP_DUP);
	CU_ASSERT_EQUAL(t.mss, 1460);
	static const uint8_t shortlen[] = { 1, 77, 1, 2, 3 };
	CU_ASSERT_EQUAL(mps_tcpopt_walk(shortlen, sizeof(shortlen), &t), -EBADMSG);
	CU_ASSERT_EQUAL(t.err, MPS_OPT_E_TCP_LEN_SHORT);
	CU_ASSERT_EQUAL(t.nunknown, 0);
	static const uint8_t over[] = { 30, 12, 0x20, 1 };
	CU_ASSERT_EQUAL(mps_tcpopt_walk(over, sizeof(over), &t), -EBADMSG);
	CU_ASSERT_EQUAL(t.err, MPS_OPT_E_TCP_OVERRUN);
	CU_ASSERT_EQUAL(t.nmptcp, 0);
	static const uint8_t lone[] = { 1, 1, 1, 8 };
	CU_ASSERT_EQUAL(mps_tcpopt_walk(lone, sizeof(lone), &t), -EBADMSG);
	CU_ASSERT_EQUAL(t.err, MPS_OPT_E_TCP_OVERRUN);
	memset(b, 0, sizeof(b));
	for (int i = 0; i < 5; i++) {
		b[i * 4] = 30;
		b[i * 4 + 1] = 4;
		b[i * 4 + 2] = 0x20;
	}
	CU_ASSERT_EQUAL(mps_tcpopt_walk(b, 20, &t), -EBADMSG);
	CU_ASSERT_EQUAL(t.err, MPS_OPT_E_TCP_MPTCP_TOO_MANY);
	CU_ASSERT_EQUAL(t.nmptcp, 4);
	/* Unknown kinds are skipped; EOL ends the walk even if bytes follow. */
	static const uint8_t unk[] = { 99, 3, 0, 0, 2, 2 };
	CU_ASSERT_EQUAL(mps_tcpopt_walk(unk, sizeof(unk), &t), 0);
	CU_ASSERT_EQUAL(t.nunknown, 1);
	CU_ASSERT_EQUAL(mps_tcpopt_walk(b, 41, &t), -EINVAL);
}

static const struct fj_test tests[] = {
	{ "mpc_forms", test_mpc_forms },
	{ "mpc_malformed", test_mpc_malformed },
	{ "join_forms", test_join_forms },
	{ "dss_all_flags", test_dss_all_flags },
	{ "dss_lengths", test_dss_lengths },
	{ "add_addr_forms", test_add_addr_forms },
	{ "add_addr_bad_len", test_add_addr_bad_len },
	{ "rm_addr", test_rm_addr },
	{ "prio_fail_fastclose_rst", test_prio_fail_fastclose_rst },
	{ "generic_malformed", test_generic_malformed },
	{ "err_names", test_err_names },
	{ "build_nospace", test_build_nospace },
	{ "walk_clean", test_walk_clean },
	{ "walk_malformed", test_walk_malformed },
	{ NULL, NULL },
};

const struct fj_suite fj_suite_mps_opt = { "mps_opt", NULL, NULL, tests };
