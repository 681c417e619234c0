/*
 * agent_runner: a child that crashes, hangs, exits non-zero or is cancelled
 * becomes a failed Result with its reason; the runner stays usable; at most
 * max_runs run at once; unsupported stacks and types are refused with a reason;
 * bundled runs take turns on the node's client TUN, kernel runs go beside them.
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
#include "bundled.h"
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

/* Long enough that a second run started too early would overlap it. */
static int child_sleep(const Fjord__V1__RunCommand *cmd, const struct exp_env *env,
		       struct exp_out *out)
{
	(void)cmd;
	(void)env;
	usleep(300 * 1000);
	out->result->ok = 1;
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
	check_failed("bundled-1", "this agent has no bundled stack (neither bundled_tun nor "
				  "bundled_host is configured)");
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

/* The agent has a bundled stack on client TUN fjtest0 (no device is opened: fake children). */
static void set_bundled(int on)
{
	static struct bundled_cfg b;

	memset(&b, 0, sizeof(b));
	snprintf(b.tun, sizeof(b.tun), "fjtest0");
	bundled_set(on ? &b : NULL);
}

static Fjord__V1__Result *read_ok(const char *id)
{
	Fjord__V1__Result *res = read_result(id);

	CU_ASSERT_PTR_NOT_NULL(res);
	if (res && !res->ok) {
		fprintf(stderr, "\nrun %s failed: %s\n", id, res->error);
		CU_FAIL("run failed");
	}
	return res;
}

/*
 * Two bundled runs submitted at once with slots to spare: the second starts
 * only after the first ended (it would find the TUN busy), while a kernel run
 * submitted after both starts at once, beside the first.
 */
static void test_bundled_one_at_a_time(void)
{
	struct agent_runner *r = mk_runner(4, child_sleep);
	Fjord__V1__Result *b1, *b2, *k1;
	struct cmd_buf a, b, k;

	set_bundled(1);
	ndone = 0;
	make_cmd(&a, "bd1-a", FJORD__V1__STACK__STACK_BUNDLED, 0);
	make_cmd(&b, "bd1-b", FJORD__V1__STACK__STACK_BUNDLED, 0);
	make_cmd(&k, "bd1-k", FJORD__V1__STACK__STACK_KERNEL, 0);
	b.spec.type = FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_BULK;
	CU_ASSERT_EQUAL(agent_runner_start(r, &a.cmd), 0);
	CU_ASSERT_EQUAL(agent_runner_start(r, &b.cmd), 0);
	CU_ASSERT_EQUAL(agent_runner_start(r, &k.cmd), 0);
	CU_ASSERT_EQUAL(agent_runner_count(r), 2);
	CU_ASSERT_EQUAL(agent_runner_queued(r), 1);
	CU_ASSERT_STRING_EQUAL(agent_runner_id(r, 2), "bd1-b");
	/* A waiting run is a repeat too. */
	CU_ASSERT_EQUAL(agent_runner_start(r, &b.cmd), -EALREADY);
	wait_done(3, 5000);
	CU_ASSERT_EQUAL(ndone, 3);
	b1 = read_ok("bd1-a");
	b2 = read_ok("bd1-b");
	k1 = read_ok("bd1-k");
	if (b1 && b2 && k1) {
		CU_ASSERT(b2->started_ms >= b1->finished_ms);
		CU_ASSERT(k1->started_ms < b1->finished_ms);
	}
	fjord__v1__result__free_unpacked(b1, NULL);
	fjord__v1__result__free_unpacked(b2, NULL);
	fjord__v1__result__free_unpacked(k1, NULL);
	CU_ASSERT_EQUAL(agent_runner_count(r), 0);
	agent_runner_destroy(r);
	set_bundled(0);
}

/*
 * A kernel run waiting for a slot does not wait behind a bundled run that
 * waits for the TUN: the slot that frees up goes to the kernel run.
 */
static void test_bundled_kernel_passes(void)
{
	struct agent_runner *r = mk_runner(2, child_hang);
	struct cmd_buf a, b, k1, k2;

	set_bundled(1);
	ndone = 0;
	make_cmd(&a, "bd2-a", FJORD__V1__STACK__STACK_BUNDLED, 0);
	make_cmd(&k1, "bd2-k1", FJORD__V1__STACK__STACK_KERNEL, 0);
	make_cmd(&b, "bd2-b", FJORD__V1__STACK__STACK_BUNDLED, 0);
	make_cmd(&k2, "bd2-k2", FJORD__V1__STACK__STACK_TCP, 0);
	b.spec.type = FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_PROBE;
	CU_ASSERT_EQUAL(agent_runner_start(r, &a.cmd), 0);
	CU_ASSERT_EQUAL(agent_runner_start(r, &k1.cmd), 0);
	CU_ASSERT_EQUAL(agent_runner_start(r, &b.cmd), 0);
	CU_ASSERT_EQUAL(agent_runner_start(r, &k2.cmd), 0);
	CU_ASSERT_EQUAL(agent_runner_count(r), 2);
	CU_ASSERT_EQUAL_FATAL(agent_runner_queued(r), 2);
	CU_ASSERT_STRING_EQUAL(agent_runner_id(r, 2), "bd2-b");
	CU_ASSERT_STRING_EQUAL(agent_runner_id(r, 3), "bd2-k2");
	agent_runner_cancel(r, "bd2-k1", "test");
	wait_done(1, 5000);
	CU_ASSERT_EQUAL(agent_runner_count(r), 2);
	CU_ASSERT_EQUAL_FATAL(agent_runner_queued(r), 1);
	CU_ASSERT_STRING_EQUAL(agent_runner_id(r, 2), "bd2-b");
	/* The TUN frees up: the bundled run takes the slot. */
	agent_runner_cancel(r, "bd2-a", "test");
	wait_done(2, 5000);
	CU_ASSERT_EQUAL(agent_runner_count(r), 2);
	CU_ASSERT_EQUAL(agent_runner_queued(r), 0);
	CU_ASSERT(strcmp(agent_runner_id(r, 0), "bd2-b") == 0 ||
		  strcmp(agent_runner_id(r, 1), "bd2-b") == 0);
	agent_runner_cancel(r, "bd2-b", "test");
	agent_runner_cancel(r, "bd2-k2", "test");
	wait_done(4, 5000);
	check_failed("bd2-a", "cancelled: test");
	check_failed("bd2-b", "cancelled: test");
	check_failed("bd2-k2", "cancelled: test");
	agent_runner_destroy(r);
	set_bundled(0);
}

/*
 * A waiting run whose deadline passes fails then, not when it would have
 * started, naming what it waited for: the TUN (and the run holding it) or a slot.
 * A cancelled waiting run leaves no timer behind.
 */
static void test_bundled_deadline_waiting(void)
{
	struct agent_runner *r = mk_runner(2, child_hang);
	struct cmd_buf a, b, c, k1, k2;
	uint64_t t0 = fj_mono_ms();
	unsigned int timers = agent_loop_timer_count(loop);

	set_bundled(1);
	ndone = 0;
	make_cmd(&a, "bd3-a", FJORD__V1__STACK__STACK_BUNDLED, 0);
	make_cmd(&b, "bd3-b", FJORD__V1__STACK__STACK_BUNDLED, fj_wall_ms() + 700);
	make_cmd(&c, "bd3-c", FJORD__V1__STACK__STACK_BUNDLED, fj_wall_ms() + 60000);
	make_cmd(&k1, "bd3-k1", FJORD__V1__STACK__STACK_KERNEL, 0);
	make_cmd(&k2, "bd3-k2", FJORD__V1__STACK__STACK_KERNEL, fj_wall_ms() + 700);
	CU_ASSERT_EQUAL(agent_runner_start(r, &a.cmd), 0);
	CU_ASSERT_EQUAL(agent_runner_start(r, &b.cmd), 0);
	CU_ASSERT_EQUAL(agent_runner_start(r, &c.cmd), 0);
	CU_ASSERT_EQUAL(agent_runner_start(r, &k1.cmd), 0);
	CU_ASSERT_EQUAL(agent_runner_start(r, &k2.cmd), 0);
	CU_ASSERT_EQUAL(agent_runner_count(r), 2);
	CU_ASSERT_EQUAL(agent_runner_queued(r), 3);
	/* Two running runs' deadlines, three waiting runs' deadlines. */
	CU_ASSERT_EQUAL(agent_loop_timer_count(loop), timers + 5);
	CU_ASSERT_EQUAL(agent_runner_cancel(r, "bd3-c", "not needed"), 0);
	CU_ASSERT_EQUAL(ndone, 1);
	CU_ASSERT_EQUAL(agent_loop_timer_count(loop), timers + 4);
	check_failed("bd3-c", "cancelled: not needed");
	wait_done(3, 5000);
	CU_ASSERT_EQUAL(ndone, 3);
	CU_ASSERT(fj_mono_ms() - t0 >= 600);
	CU_ASSERT(fj_mono_ms() - t0 < 4000);
	check_failed("bd3-b", "deadline passed while waiting for the bundled stack's TUN device "
			      "fjtest0 (another bundled run, bd3-a, was using it)");
	check_failed("bd3-k2", "deadline passed while waiting for a free slot (2 runs in progress, "
			       "max_runs = 2)");
	CU_ASSERT_EQUAL(agent_runner_count(r), 2);
	CU_ASSERT_EQUAL(agent_runner_queued(r), 0);
	agent_runner_cancel(r, "bd3-a", "test");
	agent_runner_cancel(r, "bd3-k1", "test");
	wait_done(5, 5000);
	CU_ASSERT_EQUAL(agent_runner_count(r), 0);
	CU_ASSERT_EQUAL(agent_loop_timer_count(loop), timers);
	agent_runner_destroy(r);
	set_bundled(0);
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
	{ "bundled_one_at_a_time", test_bundled_one_at_a_time },
	{ "bundled_kernel_passes", test_bundled_kernel_passes },
	{ "bundled_deadline_waiting", test_bundled_deadline_waiting },
	{ NULL, NULL },
};

const struct fj_suite fj_suite_agent_runner = { "agent_runner", runner_setup, runner_teardown,
						tests };
