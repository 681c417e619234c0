/* agent_backoff: full jitter stays within the doubling, capped ceiling. */
#include "agent_backoff.h"
#include "fj_test.h"

static void test_bounds(void)
{
	struct agent_backoff b;
	uint64_t expect = 500;
	unsigned int i;

	agent_backoff_init(&b, 500, 60000, 42);
	for (i = 0; i < 20; i++) {
		uint64_t c = agent_backoff_ceiling(&b), d = agent_backoff_next(&b);

		CU_ASSERT_EQUAL(c, expect);
		CU_ASSERT(d <= c);
		expect = expect * 2 > 60000 ? 60000 : expect * 2;
	}
	CU_ASSERT_EQUAL(agent_backoff_ceiling(&b), 60000);
	agent_backoff_reset(&b);
	CU_ASSERT_EQUAL(agent_backoff_ceiling(&b), 500);
}

static void test_jitter_spread(void)
{
	struct agent_backoff b;
	uint64_t lo = ~0ull, hi = 0, sum = 0;
	unsigned int i, n = 4000;

	/* At the cap, draws cover [0, cap] roughly uniformly (mean near cap / 2). */
	agent_backoff_init(&b, 1000, 1000, 7);
	for (i = 0; i < n; i++) {
		uint64_t d = agent_backoff_next(&b);

		CU_ASSERT(d <= 1000);
		lo = d < lo ? d : lo;
		hi = d > hi ? d : hi;
		sum += d;
	}
	CU_ASSERT(lo < 50);
	CU_ASSERT(hi > 950);
	CU_ASSERT(sum / n > 420 && sum / n < 580);
}

static void test_many_attempts_no_overflow(void)
{
	struct agent_backoff b;
	unsigned int i;

	agent_backoff_init(&b, 1, 3600000, 0);
	for (i = 0; i < 1000; i++)
		CU_ASSERT(agent_backoff_next(&b) <= 3600000);
	CU_ASSERT_EQUAL(agent_backoff_ceiling(&b), 3600000);
}

static const struct fj_test tests[] = {
	{ "bounds", test_bounds },
	{ "jitter_spread", test_jitter_spread },
	{ "many_attempts_no_overflow", test_many_attempts_no_overflow },
	{ NULL, NULL },
};

const struct fj_suite fj_suite_agent_backoff = { "agent_backoff", NULL, NULL, tests };
