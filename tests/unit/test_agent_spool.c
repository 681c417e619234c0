/* agent_spool: durable writes, listing, acknowledgement, cap, crash recovery. */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent_spool.h"
#include "fj_test.h"
#include "fjord.pb-c.h"

static char tmpdir[64];

static int spool_setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/fjord-spool-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int spool_teardown(void)
{
	return fj_test_rmtree(tmpdir);
}

/* A fresh spool folder per test. */
static void fresh(char *dir, size_t len, const char *name)
{
	snprintf(dir, len, "%s/%s", tmpdir, name);
}

static int put_result(struct agent_spool *sp, const char *run, int ok, const char *error)
{
	Fjord__V1__Result r = FJORD__V1__RESULT__INIT;

	r.run_id = (char *)run;
	r.ok = ok;
	r.error = (char *)error;
	return agent_spool_put_result(sp, run, &r);
}

static void test_write_list_ack(void)
{
	struct agent_spool *sp;
	struct agent_spool_item *it = NULL;
	size_t n = 0;
	char dir[128];
	uint8_t *buf;
	size_t len;
	Fjord__V1__Result *r;

	fresh(dir, sizeof(dir), "a");
	CU_ASSERT_EQUAL_FATAL(agent_spool_open(dir, 1 << 20, &sp, NULL), 0);
	CU_ASSERT_EQUAL(agent_spool_usage(sp), 0);
	CU_ASSERT_EQUAL(agent_spool_run_begin(sp, "run-1"), 0);
	CU_ASSERT_EQUAL(agent_spool_run_begin(sp, "run-1"), -EEXIST);
	CU_ASSERT_EQUAL(agent_spool_run_begin(sp, "../evil"), -EINVAL);
	CU_ASSERT_EQUAL(agent_spool_put_trace(sp, "run-1", "rtt.csv", "1,2,3\n", 6), 0);
	CU_ASSERT_EQUAL(agent_spool_put_trace(sp, "run-1", "a/b", "x", 1), -EINVAL);
	/* In progress: nothing to upload yet. */
	CU_ASSERT_EQUAL(agent_spool_list(sp, &it, &n, 100), 0);
	CU_ASSERT_EQUAL(n, 0);
	free(it);
	CU_ASSERT_EQUAL(put_result(sp, "run-1", 1, ""), 0);
	CU_ASSERT(agent_spool_has_result(sp, "run-1"));
	CU_ASSERT_EQUAL(agent_spool_list(sp, &it, &n, 100), 0);
	CU_ASSERT_EQUAL_FATAL(n, 2);
	CU_ASSERT_STRING_EQUAL(it[0].run_id, "run-1");
	CU_ASSERT_STRING_EQUAL(it[0].name, "rtt.csv");
	CU_ASSERT_EQUAL(it[0].size, 6);
	CU_ASSERT_STRING_EQUAL(it[1].run_id, "run-1");
	CU_ASSERT_STRING_EQUAL(it[1].name, "");
	free(it);
	CU_ASSERT(agent_spool_usage(sp) > 6);
	CU_ASSERT_EQUAL_FATAL(agent_spool_read_result(sp, "run-1", &buf, &len), 0);
	r = fjord__v1__result__unpack(NULL, len, buf);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_STRING_EQUAL(r->run_id, "run-1");
	CU_ASSERT(r->ok);
	fjord__v1__result__free_unpacked(r, NULL);
	free(buf);
	/* Acks remove; the folder goes with the last file. */
	CU_ASSERT_EQUAL(agent_spool_ack_trace(sp, "run-1", "rtt.csv"), 0);
	CU_ASSERT(agent_spool_run_exists(sp, "run-1"));
	CU_ASSERT_EQUAL(agent_spool_list(sp, &it, &n, 100), 0);
	CU_ASSERT_EQUAL(n, 1);
	free(it);
	CU_ASSERT_EQUAL(agent_spool_ack_result(sp, "run-1"), 0);
	CU_ASSERT(!agent_spool_run_exists(sp, "run-1"));
	CU_ASSERT_EQUAL(agent_spool_ack_trace(sp, "run-1", "rtt.csv"), -ENOENT);
	CU_ASSERT_EQUAL(agent_spool_usage(sp), 0);
	agent_spool_close(sp);
}

static void test_cap(void)
{
	struct agent_spool *sp;
	static char big[70000];
	char dir[128];

	fresh(dir, sizeof(dir), "b");
	CU_ASSERT_EQUAL_FATAL(agent_spool_open(dir, 65536, &sp, NULL), 0);
	CU_ASSERT_EQUAL(agent_spool_admit(sp), 0);
	CU_ASSERT_EQUAL(agent_spool_run_begin(sp, "r1"), 0);
	memset(big, 'x', sizeof(big));
	CU_ASSERT_EQUAL(agent_spool_put_trace(sp, "r1", "big", big, sizeof(big)), 0);
	CU_ASSERT_EQUAL(agent_spool_admit(sp), -ENOSPC);
	CU_ASSERT_EQUAL(agent_spool_ack_trace(sp, "r1", "big"), 0);
	CU_ASSERT_EQUAL(agent_spool_admit(sp), 0);
	agent_spool_close(sp);
}

static void test_order_oldest_first(void)
{
	struct agent_spool *sp;
	struct agent_spool_item *it = NULL;
	size_t n = 0;
	char dir[128];

	fresh(dir, sizeof(dir), "c");
	CU_ASSERT_EQUAL_FATAL(agent_spool_open(dir, 1 << 20, &sp, NULL), 0);
	CU_ASSERT_EQUAL(put_result(sp, "zz", 1, ""), 0);
	usleep(20000);
	CU_ASSERT_EQUAL(put_result(sp, "aa", 1, ""), 0);
	CU_ASSERT_EQUAL(agent_spool_list(sp, &it, &n, 100), 0);
	CU_ASSERT_EQUAL_FATAL(n, 2);
	CU_ASSERT_STRING_EQUAL(it[0].run_id, "zz");
	CU_ASSERT_STRING_EQUAL(it[1].run_id, "aa");
	free(it);
	/* The cap on the listing holds. */
	CU_ASSERT_EQUAL(agent_spool_list(sp, &it, &n, 1), 0);
	CU_ASSERT_EQUAL(n, 1);
	free(it);
	agent_spool_close(sp);
}

/* What a crash leaves: a half-written temp file and a run without a result. */
static void test_restart_recovery(void)
{
	struct agent_spool *sp;
	struct agent_spool_item *it = NULL;
	size_t n = 0, len;
	unsigned int rec = 9;
	char dir[128], p[256];
	uint8_t *buf;
	Fjord__V1__Result *r;
	struct stat st;
	int fd;

	fresh(dir, sizeof(dir), "d");
	CU_ASSERT_EQUAL_FATAL(agent_spool_open(dir, 1 << 20, &sp, &rec), 0);
	CU_ASSERT_EQUAL(rec, 0);
	CU_ASSERT_EQUAL(put_result(sp, "done", 0, "deadline of 3 s passed"), 0);
	CU_ASSERT_EQUAL(agent_spool_run_begin(sp, "cut"), 0);
	CU_ASSERT_EQUAL(agent_spool_put_trace(sp, "cut", "rtt.csv", "0,1,2\n", 6), 0);
	snprintf(p, sizeof(p), "%s/runs/cut/.tmp.123.456", dir);
	fd = open(p, O_WRONLY | O_CREAT, 0640);
	CU_ASSERT_EQUAL(write(fd, "half", 4), 4);
	close(fd);
	agent_spool_close(sp);

	CU_ASSERT_EQUAL_FATAL(agent_spool_open(dir, 1 << 20, &sp, &rec), 0);
	CU_ASSERT_EQUAL(rec, 1);
	CU_ASSERT_EQUAL(stat(p, &st), -1);
	CU_ASSERT_EQUAL(agent_spool_list(sp, &it, &n, 100), 0);
	CU_ASSERT_EQUAL(n, 3);
	free(it);
	CU_ASSERT_EQUAL_FATAL(agent_spool_read_result(sp, "cut", &buf, &len), 0);
	r = fjord__v1__result__unpack(NULL, len, buf);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT(!r->ok);
	CU_ASSERT_PTR_NOT_NULL(strstr(r->error, "interrupted"));
	fjord__v1__result__free_unpacked(r, NULL);
	free(buf);
	/* The earlier finished result is untouched. */
	CU_ASSERT_EQUAL_FATAL(agent_spool_read_result(sp, "done", &buf, &len), 0);
	r = fjord__v1__result__unpack(NULL, len, buf);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_STRING_EQUAL(r->error, "deadline of 3 s passed");
	fjord__v1__result__free_unpacked(r, NULL);
	free(buf);
	agent_spool_close(sp);
}

/* The controller took the result but refused a trace: it stays, and a restart keeps it. */
static void test_result_acked_trace_left(void)
{
	struct agent_spool *sp;
	struct agent_spool_item *it = NULL;
	unsigned int rec = 9;
	size_t n = 0;
	char dir[128];

	fresh(dir, sizeof(dir), "e");
	CU_ASSERT_EQUAL_FATAL(agent_spool_open(dir, 1 << 20, &sp, NULL), 0);
	CU_ASSERT_EQUAL(agent_spool_run_begin(sp, "r"), 0);
	CU_ASSERT_EQUAL(agent_spool_put_trace(sp, "r", "huge.pcap", "data", 4), 0);
	CU_ASSERT_EQUAL(put_result(sp, "r", 1, ""), 0);
	CU_ASSERT_EQUAL(agent_spool_ack_result(sp, "r"), 0);
	CU_ASSERT(!agent_spool_has_result(sp, "r"));
	agent_spool_close(sp);
	CU_ASSERT_EQUAL_FATAL(agent_spool_open(dir, 1 << 20, &sp, &rec), 0);
	CU_ASSERT_EQUAL(rec, 0);
	CU_ASSERT(!agent_spool_has_result(sp, "r"));
	CU_ASSERT_EQUAL(agent_spool_list(sp, &it, &n, 10), 0);
	CU_ASSERT_EQUAL_FATAL(n, 1);
	CU_ASSERT_STRING_EQUAL(it[0].name, "huge.pcap");
	free(it);
	CU_ASSERT_EQUAL(agent_spool_ack_trace(sp, "r", "huge.pcap"), 0);
	CU_ASSERT(!agent_spool_run_exists(sp, "r"));
	CU_ASSERT_EQUAL(agent_spool_ack_result(sp, "r"), -ENOENT);
	agent_spool_close(sp);
}

static void test_names(void)
{
	CU_ASSERT(agent_spool_valid_name("run-1_a.b"));
	CU_ASSERT(!agent_spool_valid_name(""));
	CU_ASSERT(!agent_spool_valid_name(".."));
	CU_ASSERT(!agent_spool_valid_name("a/b"));
	CU_ASSERT(!agent_spool_valid_name("a b"));
	CU_ASSERT(!agent_spool_valid_name(
		"0123456789012345678901234567890123456789012345678901234567890123456789"));
}

static const struct fj_test tests[] = {
	{ "write_list_ack", test_write_list_ack },
	{ "cap", test_cap },
	{ "order_oldest_first", test_order_oldest_first },
	{ "restart_recovery", test_restart_recovery },
	{ "result_acked_trace_left", test_result_acked_trace_left },
	{ "names", test_names },
	{ NULL, NULL },
};

const struct fj_suite fj_suite_agent_spool = { "agent_spool", spool_setup, spool_teardown, tests };
