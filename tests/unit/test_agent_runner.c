/*
 * agent_runner: a child that crashes, hangs, exits non-zero or is cancelled
 * becomes a failed Result with its reason; the runner stays usable; at most
 * max_runs run at once; unsupported stacks and types are refused with a reason.
 */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent_loop.h"
#include "agent_runner.h"
#include "agent_spool.h"
#include "fj_clock.h"
#include "fj_test.h"

static char tmpdir[64];
static struct agent_loop *loop;
static struct agent_spool *spool;
static unsigned int ndone;

static int runner_setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/fjord-runner-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	loop = agent_loop_create(1024);
	return loop && agent_spool_open(tmpdir, 1 << 20, &spool, NULL) == 0 ? 0 : -1;
}

static int runner_teardown(void)
{
	agent_spool_close(spool);
	agent_loop_destroy(loop);
	return fj_test_rmtree(tmpdir);
}

static void on_done(void *arg, const char *run_id, int ok)
{
	(void)arg;
	(void)run_id;
	(void)ok;
	ndone++;
}

static int child_crash(const Fjord__V1__RunCommand *cmd, const struct exp_env *env,
		       struct exp_out *out)
{
	(void)cmd;
	(void)env;
	(void)out;
	/* Sanitizer builds catch SIGSEGV themselves; a real crash has no handler. */
	signal(SIGSEGV, SIG_DFL);
	raise(SIGSEGV);
	return 0;
}

static int child_hang(const Fjord__V1__RunCommand *cmd, const struct exp_env *env,
		      struct exp_out *out)
{
	(void)cmd;
	(void)env;
	(void)out;
	for (;;)
		pause();
	return 0;
}

static int child_exit3(const Fjord__V1__RunCommand *cmd, const struct exp_env *env,
		       struct exp_out *out)
{
	(void)cmd;
	(void)env;
	(void)out;
	_exit(7);
}

static int child_ok(const Fjord__V1__RunCommand *cmd, const struct exp_env *env,
		    struct exp_out *out)
{
	struct exp_trace *t = exp_trace_new(out, "t.csv");

	(void)env;
	out->result->ok = 1;
	exp_add_metric(out, "answer", 42);
	exp_trace_printf(t, "%s\n", cmd->run->id);
	return 0;
}

/* Builds a RunCommand on the stack of the caller. */
struct cmd_buf {
	Fjord__V1__RunCommand cmd;
	Fjord__V1__Run run;
	Fjord__V1__ExperimentSpec spec;
};

static void make_cmd(struct cmd_buf *b, const char *id, Fjord__V1__Stack stack, int64_t deadline_ms)
{
	fjord__v1__run_command__init(&b->cmd);
	fjord__v1__run__init(&b->run);
	fjord__v1__experiment_spec__init(&b->spec);
	b->run.id = (char *)id;
	b->run.stack = stack;
	b->run.deadline_ms = deadline_ms;
	b->spec.type = FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_ECHO;
	b->cmd.run = &b->run;
	b->cmd.spec = &b->spec;
}

static Fjord__V1__Result *read_result(const char *id)
{
	Fjord__V1__Result *r;
	uint8_t *buf;
	size_t len;

	if (agent_spool_read_result(spool, id, &buf, &len))
		return NULL;
	r = fjord__v1__result__unpack(NULL, len, buf);
	free(buf);
	return r;
}

static void wait_done(unsigned int want, unsigned int max_ms)
{
	uint64_t end = fj_mono_ms() + max_ms;

	while (ndone < want && fj_mono_ms() < end)
		agent_loop_run_once(loop, 50);
}

static struct agent_runner *mk_runner(unsigned int max_runs, agent_runner_child_fn fn)
{
	struct agent_runner_cfg cfg = { max_runs, 30, 1, "test" };
	struct agent_runner *r = NULL;

	CU_ASSERT_EQUAL(agent_runner_create(loop, spool, &cfg, on_done, NULL, &r), 0);
	if (r)
		agent_runner_set_child_fn(r, fn);
	return r;
}

static void check_failed(const char *id, const char *want)
{
	Fjord__V1__Result *res = read_result(id);

	CU_ASSERT_PTR_NOT_NULL_FATAL(res);
	CU_ASSERT(!res->ok);
	CU_ASSERT_STRING_EQUAL(res->run_id, id);
	if (!strstr(res->error, want)) {
		fprintf(stderr, "\nrun %s: want \"%s\" in \"%s\"\n", id, want, res->error);
		CU_FAIL("wrong failure reason");
	}
	fjord__v1__result__free_unpacked(res, NULL);
}

static void test_crash(void)
{
	struct agent_runner *r = mk_runner(2, child_crash);
	struct cmd_buf b;

	ndone = 0;
	make_cmd(&b, "crash-1", FJORD__V1__STACK__STACK_TCP, 0);
	CU_ASSERT_EQUAL(agent_runner_start(r, &b.cmd), 0);
	CU_ASSERT_EQUAL(agent_runner_count(r), 1);
	CU_ASSERT_STRING_EQUAL(agent_runner_id(r, 0), "crash-1");
	wait_done(1, 5000);
	CU_ASSERT_EQUAL(ndone, 1);
	CU_ASSERT_EQUAL(agent_runner_count(r), 0);
	check_failed("crash-1", "killed by signal 11");
	/* The same run again is a repeat, not a second run. */
	CU_ASSERT_EQUAL(agent_runner_start(r, &b.cmd), -EALREADY);
	agent_runner_destroy(r);
}

static void test_hang_deadline(void)
{
	struct agent_runner *r = mk_runner(2, child_hang);
	struct cmd_buf b;
	uint64_t t0 = fj_mono_ms();

	ndone = 0;
	make_cmd(&b, "hang-1", FJORD__V1__STACK__STACK_TCP, fj_wall_ms() + 1500);
	CU_ASSERT_EQUAL(agent_runner_start(r, &b.cmd), 0);
	wait_done(1, 5000);
	CU_ASSERT_EQUAL(ndone, 1);
	CU_ASSERT(fj_mono_ms() - t0 >= 1400);
	check_failed("hang-1", "deadline of ");
	check_failed("hang-1", " s passed");
	agent_runner_destroy(r);
}

static void test_exit_status(void)
{
	struct agent_runner *r = mk_runner(2, child_exit3);
	struct cmd_buf b;

	ndone = 0;
	make_cmd(&b, "exit-1", FJORD__V1__STACK__STACK_TCP, 0);
	CU_ASSERT_EQUAL(agent_runner_start(r, &b.cmd), 0);
	wait_done(1, 5000);
	check_failed("exit-1", "experiment process exited with status 7");
	agent_runner_destroy(r);
}

static void test_cancel(void)
{
	struct agent_runner *r = mk_runner(2, child_hang);
	struct cmd_buf b;

	ndone = 0;
	make_cmd(&b, "cancel-1", FJORD__V1__STACK__STACK_TCP, 0);
	CU_ASSERT_EQUAL(agent_runner_start(r, &b.cmd), 0);
	CU_ASSERT_EQUAL(agent_runner_cancel(r, "cancel-1", "experiment cancelled by alice"), 0);
	CU_ASSERT_EQUAL(agent_runner_cancel(r, "nope", "x"), -ENOENT);
	wait_done(1, 5000);
	check_failed("cancel-1", "cancelled: experiment cancelled by alice");
	agent_runner_destroy(r);
}

static void test_success_and_limit(void)
{
	struct agent_runner *r = mk_runner(1, child_hang);
	struct cmd_buf a, b;
	Fjord__V1__Result *res;
	struct agent_spool_item *it = NULL;
	size_t n = 0, i, traces = 0;

	ndone = 0;
	make_cmd(&a, "lim-1", FJORD__V1__STACK__STACK_TCP, 0);
	make_cmd(&b, "lim-2", FJORD__V1__STACK__STACK_TCP, 0);
	CU_ASSERT_EQUAL(agent_runner_start(r, &a.cmd), 0);
	/* max_runs = 1: the second waits for the slot, the third too. */
	CU_ASSERT_EQUAL(agent_runner_start(r, &b.cmd), 0);
	CU_ASSERT_EQUAL(agent_runner_count(r), 1);
	CU_ASSERT_EQUAL(agent_runner_queued(r), 1);
	CU_ASSERT_STRING_EQUAL(agent_runner_id(r, 1), "lim-2");
	CU_ASSERT_EQUAL(agent_runner_start(r, &b.cmd), -EALREADY);
	CU_ASSERT_EQUAL(ndone, 0);
	/* Cancelling the running one lets the waiting one start. */
	agent_runner_cancel(r, "lim-1", "test");
	wait_done(1, 5000);
	CU_ASSERT_EQUAL(agent_runner_count(r), 1);
	CU_ASSERT_EQUAL(agent_runner_queued(r), 0);
	CU_ASSERT_STRING_EQUAL(agent_runner_id(r, 0), "lim-2");
	agent_runner_cancel(r, "lim-2", "test");
	wait_done(2, 5000);
	check_failed("lim-2", "cancelled: test");
	agent_runner_set_child_fn(r, child_ok);
	make_cmd(&a, "ok-1", FJORD__V1__STACK__STACK_KERNEL, 0);
	CU_ASSERT_EQUAL(agent_runner_start(r, &a.cmd), 0);
	wait_done(3, 5000);
	res = read_result("ok-1");
	CU_ASSERT_PTR_NOT_NULL_FATAL(res);
	CU_ASSERT(res->ok);
	CU_ASSERT(res->started_ms > 0 && res->finished_ms >= res->started_ms);
	CU_ASSERT_EQUAL_FATAL(res->n_metrics, 1);
	CU_ASSERT_EQUAL(res->metrics[0]->value, 42);
	fjord__v1__result__free_unpacked(res, NULL);
	CU_ASSERT_EQUAL(agent_spool_list(spool, &it, &n, 1000), 0);
	for (i = 0; i < n; i++)
		traces += strcmp(it[i].run_id, "ok-1") == 0 && strcmp(it[i].name, "t.csv") == 0;
	free(it);
	CU_ASSERT_EQUAL(traces, 1);
	agent_runner_destroy(r);
}

static void test_refusals(void)
{
	struct agent_runner *r = mk_runner(2, child_ok);
	struct cmd_buf b;

	ndone = 0;
	make_cmd(&b, "bundled-1", FJORD__V1__STACK__STACK_BUNDLED, 0);
	CU_ASSERT_EQUAL(agent_runner_start(r, &b.cmd), 0);
	check_failed("bundled-1",
		     "this agent has no bundled stack (bundled_tun is not configured)");
	make_cmd(&b, "bulk-1", FJORD__V1__STACK__STACK_KERNEL, 0);
	b.spec.type = FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_UNSPECIFIED;
	CU_ASSERT_EQUAL(agent_runner_start(r, &b.cmd), 0);
	check_failed("bulk-1", "experiment type EXPERIMENT_TYPE_UNSPECIFIED is not supported");
	make_cmd(&b, "late-1", FJORD__V1__STACK__STACK_KERNEL, fj_wall_ms() - 10);
	CU_ASSERT_EQUAL(agent_runner_start(r, &b.cmd), 0);
	check_failed("late-1", "deadline passed before the run could start");
	make_cmd(&b, "../x", FJORD__V1__STACK__STACK_KERNEL, 0);
	CU_ASSERT_EQUAL(agent_runner_start(r, &b.cmd), -EINVAL);
	CU_ASSERT_EQUAL(ndone, 3);
	CU_ASSERT_EQUAL(agent_runner_count(r), 0);
	agent_runner_destroy(r);
}

static void test_destroy_reports(void)
{
	struct agent_runner *r = mk_runner(2, child_hang);
	struct cmd_buf b;

	make_cmd(&b, "shut-1", FJORD__V1__STACK__STACK_TCP, 0);
	CU_ASSERT_EQUAL(agent_runner_start(r, &b.cmd), 0);
	agent_runner_destroy(r);
	check_failed("shut-1", "agent shut down while the run was in progress");
}

/* A spool at its cap refuses the run with a reason instead of losing data. */
static void test_spool_full(void)
{
	struct agent_spool *full, *saved = spool;
	static char big[70000];
	struct agent_runner *r;
	struct cmd_buf b;
	char dir[128];

	snprintf(dir, sizeof(dir), "%s/full", tmpdir);
	CU_ASSERT_EQUAL_FATAL(agent_spool_open(dir, 65536, &full, NULL), 0);
	CU_ASSERT_EQUAL(agent_spool_put_trace(full, "old-1", "big", big, sizeof(big)), -ENOENT);
	CU_ASSERT_EQUAL(agent_spool_run_begin(full, "old-1"), 0);
	CU_ASSERT_EQUAL(agent_spool_put_trace(full, "old-1", "big", big, sizeof(big)), 0);
	spool = full;
	r = mk_runner(2, child_ok);
	ndone = 0;
	make_cmd(&b, "full-1", FJORD__V1__STACK__STACK_TCP, 0);
	CU_ASSERT_EQUAL(agent_runner_start(r, &b.cmd), 0);
	CU_ASSERT_EQUAL(ndone, 1);
	CU_ASSERT_EQUAL(agent_runner_count(r), 0);
	check_failed("full-1", "spool full: ");
	check_failed("full-1", "of 65536 bytes used; run refused");
	agent_runner_destroy(r);
	spool = saved;
	agent_spool_close(full);
}

static const struct fj_test tests[] = {
	{ "spool_full", test_spool_full },
	{ "crash", test_crash },
	{ "hang_deadline", test_hang_deadline },
	{ "exit_status", test_exit_status },
	{ "cancel", test_cancel },
	{ "success_and_limit", test_success_and_limit },
	{ "refusals", test_refusals },
	{ "destroy_reports", test_destroy_reports },
	{ NULL, NULL },
};

const struct fj_suite fj_suite_agent_runner = { "agent_runner", runner_setup, runner_teardown,
						tests };
