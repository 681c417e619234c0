/*
 * Congestion control tables (stack/mps_cc.c): RFC 6356's alpha and LIA's
 * coupled increase against values worked by hand, the Reno fallback of a
 * single subflow, and the lookup by name with its default. How LIA shares a
 * bottleneck is in sim_join/lia_shared_bottleneck.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fj_test.h"
#include "mps.h"
#include "mps_internal.h"

#define NEAR(a, b) (fabs((a) - (b)) < 1e-9)

static void test_alpha_hand_worked(void)
{
	uint32_t cw[3], rtt[3];

	/* One subflow: 10000 * (10000 / 10000^2) / (10000 / 10000)^2 = 1. */
	cw[0] = 10000;
	rtt[0] = 10000;
	CU_ASSERT_TRUE(NEAR(mps_lia_alpha(cw, rtt, 1), 1.0));
	/* Two equal subflows: 20000 * 1e-4 / (1 + 1)^2 = 0.5. */
	cw[1] = 10000;
	rtt[1] = 10000;
	CU_ASSERT_TRUE(NEAR(mps_lia_alpha(cw, rtt, 2), 0.5));
	/* Three equal ones: 1/3. */
	cw[2] = 10000;
	rtt[2] = 10000;
	CU_ASSERT_TRUE(NEAR(mps_lia_alpha(cw, rtt, 3), 1.0 / 3));
	/*
	 * 20000 B at 10 ms and 10000 B at 40 ms: max(cwnd/rtt^2) = 2e-4 (the
	 * first), sum(cwnd/rtt) = 2 + 0.25, so 30000 * 2e-4 / 2.25^2 = 32/27.
	 */
	cw[0] = 20000;
	rtt[0] = 10000;
	cw[1] = 10000;
	rtt[1] = 40000;
	CU_ASSERT_TRUE(NEAR(mps_lia_alpha(cw, rtt, 2), 32.0 / 27));
	/* A subflow without an RTT sample is left out; none at all gives 1. */
	rtt[1] = 0;
	CU_ASSERT_TRUE(NEAR(mps_lia_alpha(cw, rtt, 2), 1.0));
	CU_ASSERT_TRUE(NEAR(mps_lia_alpha(cw, rtt, 0), 1.0));
}

/* A connection with an established initial subflow and n-1 established joins. */
struct fake {
	struct mps_conn c;
	struct mps_subflow j[2];
};

static struct fake *fake_new(unsigned int n, const uint32_t *cwnd, const uint32_t *srtt)
{
	struct fake *f = calloc(1, sizeof(*f));
	unsigned int i;

	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	f->c.mptcp = true;
	for (i = 0; i < n; i++) {
		struct mps_subflow *sf = i ? &f->j[i - 1] : &f->c.sf;

		sf->conn = &f->c;
		sf->state = MPS_SF_ESTABLISHED;
		sf->is_join = i > 0;
		sf->cwnd = cwnd[i];
		sf->srtt = srtt[i];
		if (i)
			f->c.joins[f->c.njoins++] = sf;
	}
	return f;
}

static void test_lia_increase_hand_worked(void)
{
	static const uint32_t eq_cw[] = { 10000, 10000 }, eq_rtt[] = { 10000, 10000 };
	static const uint32_t as_cw[] = { 20000, 10000 }, as_rtt[] = { 10000, 40000 };
	struct fake *f;

	/* alpha 0.5, total 20000: 0.5 * 1000 * 1000 / 20000 = 25 (Reno would add 100). */
	f = fake_new(2, eq_cw, eq_rtt);
	CU_ASSERT_EQUAL(mps_lia_increase(&f->c, &f->c.sf, 1000, 1000), 25);
	CU_ASSERT_EQUAL(mps_lia_increase(&f->c, f->c.joins[0], 1000, 1000), 25);
	/* An ACK counts for at most two segments (RFC 3465, L = 2), as in Reno here. */
	CU_ASSERT_EQUAL(mps_lia_increase(&f->c, &f->c.sf, 2000, 1000), 50);
	CU_ASSERT_EQUAL(mps_lia_increase(&f->c, &f->c.sf, 3000, 1000), 50);
	/* Half a segment acked: half the increase. */
	CU_ASSERT_EQUAL(mps_lia_increase(&f->c, &f->c.sf, 500, 1000), 12);
	/* A join still in its handshake does not count: one subflow left, Reno's 100. */
	f->j[0].join_pre_est = true;
	CU_ASSERT_EQUAL(mps_lia_increase(&f->c, &f->c.sf, 1000, 1000), 100);
	/* Nor does a backup while regular subflows work. */
	f->j[0].join_pre_est = false;
	f->j[0].backup = true;
	CU_ASSERT_EQUAL(mps_lia_increase(&f->c, &f->c.sf, 1000, 1000), 100);
	/* After a fallback the connection is one TCP. */
	f->j[0].backup = false;
	f->c.mptcp = false;
	CU_ASSERT_EQUAL(mps_lia_increase(&f->c, &f->c.sf, 1000, 1000), 100);
	free(f);
	/* alpha 32/27, total 30000: 32/27 * 1e6 / 30000 = 39.5, so 39 on either subflow. */
	f = fake_new(2, as_cw, as_rtt);
	CU_ASSERT_EQUAL(mps_lia_increase(&f->c, &f->c.sf, 1000, 1000), 39);
	CU_ASSERT_EQUAL(mps_lia_increase(&f->c, f->c.joins[0], 1000, 1000), 39);
	/* Never below one byte per ACK: 0.5 * 1 * 1000 / 20000 rounds to 0. */
	free(f);
	f = fake_new(2, eq_cw, eq_rtt);
	CU_ASSERT_EQUAL(mps_lia_increase(&f->c, &f->c.sf, 1, 1000), 1);
	free(f);
}

static void test_cc_by_name(void)
{
	struct mps_config cfg = { .seed = 1 };
	struct mps_stack *st;
	int err;

	CU_ASSERT_PTR_NOT_NULL_FATAL(mps_cc_find(NULL));
	CU_ASSERT_STRING_EQUAL(mps_cc_find(NULL)->name, "lia");
	CU_ASSERT_STRING_EQUAL(mps_cc_find("reno")->name, "reno");
	CU_ASSERT_PTR_EQUAL(mps_cc_find("lia"), mps_cc_find(NULL));
	CU_ASSERT_PTR_NULL(mps_cc_find("cubic"));
	CU_ASSERT_PTR_NULL(mps_cc_find(""));
	/* Reno's increase: one segment per window, at least a byte. */
	CU_ASSERT_EQUAL(mps_cc_find("reno")->ca_increase(
				NULL, &(struct mps_subflow){ .cwnd = 10000 }, 1000, 1000),
			100);
	CU_ASSERT_EQUAL(mps_cc_find("reno")->ca_increase(
				NULL, &(struct mps_subflow){ .cwnd = 4000000 }, 1000, 1000),
			1);
	cfg.congestion = "nosuch";
	st = mps_stack_create(&cfg, &err);
	CU_ASSERT_PTR_NULL(st);
	CU_ASSERT_EQUAL(err, -EINVAL);
	cfg.congestion = "reno";
	st = mps_stack_create(&cfg, &err);
	CU_ASSERT_PTR_NOT_NULL(st);
	mps_stack_destroy(st);
}

static const struct fj_test tests[] = {
	{ "alpha_hand_worked", test_alpha_hand_worked },
	{ "lia_increase_hand_worked", test_lia_increase_hand_worked },
	{ "cc_by_name", test_cc_by_name },
	{ NULL, NULL },
};

const struct fj_suite fj_suite_mps_cc = { "mps_cc", NULL, NULL, tests };
