#include <errno.h>
#include <string.h>

#include "fj_clock.h"
#include "fj_log.h"
#include "fj_test.h"

static void test_time_roundtrip(void)
{
	char buf[40];
	int64_t ms = 0;

	fj_format_time(1795725414123LL, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "2026-11-26T20:36:54.123Z");
	CU_ASSERT_EQUAL(fj_parse_time(buf, &ms), 0);
	CU_ASSERT_EQUAL(ms, 1795725414123LL);
	CU_ASSERT_EQUAL(fj_parse_time("2026-11-26T20:36:54Z", &ms), 0);
	CU_ASSERT_EQUAL(ms, 1795725414000LL);
	CU_ASSERT_EQUAL(fj_parse_time("12345", &ms), 0);
	CU_ASSERT_EQUAL(ms, 12345);
}

static void test_time_rejects(void)
{
	int64_t ms = 7;

	CU_ASSERT_EQUAL(fj_parse_time("", &ms), -EINVAL);
	CU_ASSERT_EQUAL(fj_parse_time("yesterday", &ms), -EINVAL);
	CU_ASSERT_EQUAL(fj_parse_time("2026-11-26T20:36:54+01:00", &ms), -EINVAL);
	CU_ASSERT_EQUAL(fj_parse_time("-5", &ms), -EINVAL);
	CU_ASSERT_EQUAL(ms, 7);
}

static void test_log_levels(void)
{
	enum fj_log_level l = FJ_LOG_ERR;

	CU_ASSERT_EQUAL(fj_log_parse_level("debug", &l), 0);
	CU_ASSERT_EQUAL(l, FJ_LOG_DEBUG);
	CU_ASSERT_EQUAL(fj_log_parse_level("loud", &l), -EINVAL);
	CU_ASSERT_EQUAL(l, FJ_LOG_DEBUG);
}

static void test_mono_advances(void)
{
	uint64_t a = fj_mono_us(), b = fj_mono_us();

	CU_ASSERT(b >= a);
}

static const struct fj_test tests[] = {
	{ "time_roundtrip", test_time_roundtrip },
	{ "time_rejects", test_time_rejects },
	{ "log_levels", test_log_levels },
	{ "mono_advances", test_mono_advances },
	{ NULL, NULL },
};

const struct fj_suite fj_suite_common = { "common", NULL, NULL, tests };
