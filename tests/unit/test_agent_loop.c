/* agent_loop: timer order and tie-breaks, cancellation, fd readiness. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "agent_loop.h"
#include "fj_test.h"

static char order[32];
static unsigned int norder;

static void mark(struct agent_loop *loop, uint64_t id, void *arg)
{
	(void)loop;
	(void)id;
	if (norder < sizeof(order) - 1)
		order[norder++] = (char)(uintptr_t)arg;
}

static void run_until_idle(struct agent_loop *loop)
{
	int guard = 1000;

	while (agent_loop_timer_count(loop) > 0 && guard-- > 0)
		agent_loop_run_once(loop, 50);
}

static void test_timer_order(void)
{
	struct agent_loop *loop = agent_loop_create(64);

	CU_ASSERT_PTR_NOT_NULL_FATAL(loop);
	norder = 0;
	memset(order, 0, sizeof(order));
	agent_loop_timer_add(loop, 30, mark, (void *)'c');
	agent_loop_timer_add(loop, 10, mark, (void *)'a');
	agent_loop_timer_add(loop, 20, mark, (void *)'b');
	/* Same deadline: the order of adding decides. */
	agent_loop_timer_add(loop, 20, mark, (void *)'B');
	agent_loop_timer_add(loop, 0, mark, (void *)'0');
	run_until_idle(loop);
	CU_ASSERT_STRING_EQUAL(order, "0abBc");
	agent_loop_destroy(loop);
}

static void test_timer_ties(void)
{
	struct agent_loop *loop = agent_loop_create(64);
	const char *want = "abcdefghijklmnop";
	unsigned int i;

	norder = 0;
	memset(order, 0, sizeof(order));
	for (i = 0; i < strlen(want); i++)
		agent_loop_timer_add(loop, 5, mark, (void *)(uintptr_t)want[i]);
	run_until_idle(loop);
	CU_ASSERT_STRING_EQUAL(order, want);
	agent_loop_destroy(loop);
}

static void test_timer_del(void)
{
	struct agent_loop *loop = agent_loop_create(64);
	uint64_t a, b;

	norder = 0;
	memset(order, 0, sizeof(order));
	a = agent_loop_timer_add(loop, 5, mark, (void *)'a');
	b = agent_loop_timer_add(loop, 5, mark, (void *)'b');
	agent_loop_timer_add(loop, 6, mark, (void *)'c');
	CU_ASSERT(a != 0 && b != 0 && a != b);
	CU_ASSERT_EQUAL(agent_loop_timer_del(loop, a), 0);
	CU_ASSERT_EQUAL(agent_loop_timer_del(loop, a), -ENOENT);
	CU_ASSERT_EQUAL(agent_loop_timer_count(loop), 2);
	run_until_idle(loop);
	CU_ASSERT_STRING_EQUAL(order, "bc");
	CU_ASSERT_EQUAL(agent_loop_timer_del(loop, b), -ENOENT);
	agent_loop_destroy(loop);
}

/* A timer re-armed with delay 0 from its own callback must not starve the loop. */
static unsigned int rearm_count;

static void rearm(struct agent_loop *loop, uint64_t id, void *arg)
{
	(void)id;
	(void)arg;
	if (++rearm_count < 3)
		agent_loop_timer_add(loop, 0, rearm, NULL);
}

static void test_timer_rearm_next_pass(void)
{
	struct agent_loop *loop = agent_loop_create(64);

	rearm_count = 0;
	agent_loop_timer_add(loop, 0, rearm, NULL);
	CU_ASSERT_EQUAL(agent_loop_run_once(loop, 0), 1);
	CU_ASSERT_EQUAL(rearm_count, 1);
	CU_ASSERT_EQUAL(agent_loop_run_once(loop, 0), 1);
	CU_ASSERT_EQUAL(rearm_count, 2);
	agent_loop_destroy(loop);
}

static unsigned int got_events;
static char got_byte;

static void on_fd(struct agent_loop *loop, int fd, unsigned int events, void *arg)
{
	(void)loop;
	(void)arg;
	got_events |= events;
	/* 1 byte while data is there, 0 at end of file. */
	if (events & AGENT_EV_READ)
		CU_ASSERT(read(fd, &got_byte, 1) >= 0);
}

static void test_fd_events(void)
{
	struct agent_loop *loop = agent_loop_create(1024);
	int p[2];

	CU_ASSERT_EQUAL_FATAL(pipe(p), 0);
	got_events = 0;
	CU_ASSERT_EQUAL(agent_loop_fd_set(loop, p[0], AGENT_EV_READ, on_fd, NULL), 0);
	/* Nothing to read: the pass times out and runs nothing. */
	CU_ASSERT_EQUAL(agent_loop_run_once(loop, 10), 0);
	CU_ASSERT_EQUAL(got_events, 0);
	CU_ASSERT_EQUAL(write(p[1], "x", 1), 1);
	CU_ASSERT_EQUAL(agent_loop_run_once(loop, 1000), 1);
	CU_ASSERT(got_events & AGENT_EV_READ);
	CU_ASSERT_EQUAL(got_byte, 'x');
	/* The write end is writable at once. */
	got_events = 0;
	CU_ASSERT_EQUAL(agent_loop_fd_set(loop, p[1], AGENT_EV_WRITE, on_fd, NULL), 0);
	CU_ASSERT_EQUAL(agent_loop_run_once(loop, 1000), 1);
	CU_ASSERT_EQUAL(got_events, AGENT_EV_WRITE);
	/* A mask of 0 silences it; deleting forgets it. */
	CU_ASSERT_EQUAL(agent_loop_fd_mask(loop, p[1], 0), 0);
	got_events = 0;
	CU_ASSERT_EQUAL(agent_loop_run_once(loop, 10), 0);
	agent_loop_fd_del(loop, p[1]);
	CU_ASSERT_EQUAL(agent_loop_fd_mask(loop, p[1], AGENT_EV_WRITE), -ENOENT);
	/* Closing the write end shows up on the read end. */
	close(p[1]);
	got_events = 0;
	CU_ASSERT_EQUAL(agent_loop_run_once(loop, 1000), 1);
	CU_ASSERT(got_events & (AGENT_EV_READ | AGENT_EV_ERROR));
	agent_loop_fd_del(loop, p[0]);
	close(p[0]);
	CU_ASSERT_EQUAL(agent_loop_fd_set(loop, 5000, AGENT_EV_READ, on_fd, NULL), -ERANGE);
	CU_ASSERT_EQUAL(agent_loop_fd_set(loop, -1, AGENT_EV_READ, on_fd, NULL), -EBADF);
	agent_loop_destroy(loop);
}

/* Two ready fds whose callbacks each remove the other: only one may run. */
static int pair_fd[2][2];
static unsigned int pair_calls;

static void on_pair(struct agent_loop *loop, int fd, unsigned int events, void *arg)
{
	int other = (int)(uintptr_t)arg;

	(void)fd;
	(void)events;
	pair_calls++;
	agent_loop_fd_del(loop, pair_fd[other][0]);
}

static void test_fd_removed_in_pass(void)
{
	struct agent_loop *loop = agent_loop_create(1024);
	int i;

	for (i = 0; i < 2; i++) {
		CU_ASSERT_EQUAL_FATAL(pipe(pair_fd[i]), 0);
		CU_ASSERT_EQUAL(write(pair_fd[i][1], "x", 1), 1);
	}
	CU_ASSERT_EQUAL(agent_loop_fd_set(loop, pair_fd[0][0], AGENT_EV_READ, on_pair, (void *)1),
			0);
	CU_ASSERT_EQUAL(agent_loop_fd_set(loop, pair_fd[1][0], AGENT_EV_READ, on_pair, (void *)0),
			0);
	pair_calls = 0;
	CU_ASSERT_EQUAL(agent_loop_run_once(loop, 1000), 1);
	CU_ASSERT_EQUAL(pair_calls, 1);
	for (i = 0; i < 2; i++) {
		agent_loop_fd_del(loop, pair_fd[i][0]);
		close(pair_fd[i][0]);
		close(pair_fd[i][1]);
	}
	agent_loop_destroy(loop);
}

static void stopper(struct agent_loop *loop, uint64_t id, void *arg)
{
	(void)id;
	(void)arg;
	agent_loop_stop(loop);
}

static void stop_hook(struct agent_loop *loop, void *arg)
{
	(*(unsigned int *)arg)++;
	agent_loop_stop(loop);
}

/* A before-sleep hook that stops the loop ends it without sleeping first. */
static void test_before_sleep_stop(void)
{
	struct agent_loop *loop = agent_loop_create(64);
	unsigned int calls = 0;
	uint64_t t0 = agent_loop_now_ms(loop);

	agent_loop_timer_add(loop, 5000, stopper, NULL);
	agent_loop_set_before_sleep(loop, stop_hook, &calls);
	CU_ASSERT_EQUAL(agent_loop_run(loop), 0);
	CU_ASSERT_EQUAL(calls, 1);
	CU_ASSERT_EQUAL(agent_loop_timer_count(loop), 1);
	CU_ASSERT(agent_loop_now_ms(loop) - t0 < 5000);
	agent_loop_destroy(loop);
}

static void test_run_stop(void)
{
	struct agent_loop *loop = agent_loop_create(64);
	uint64_t t0 = agent_loop_now_ms(loop);

	agent_loop_timer_add(loop, 20, stopper, NULL);
	CU_ASSERT_EQUAL(agent_loop_run(loop), 0);
	CU_ASSERT(agent_loop_now_ms(loop) >= t0 + 20);
	agent_loop_destroy(loop);
}

static const struct fj_test tests[] = {
	{ "timer_order", test_timer_order },
	{ "timer_ties", test_timer_ties },
	{ "timer_del", test_timer_del },
	{ "timer_rearm_next_pass", test_timer_rearm_next_pass },
	{ "fd_events", test_fd_events },
	{ "fd_removed_in_pass", test_fd_removed_in_pass },
	{ "run_stop", test_run_stop },
	{ "before_sleep_stop", test_before_sleep_stop },
	{ NULL, NULL },
};

const struct fj_suite fj_suite_agent_loop = { "agent_loop", NULL, NULL, tests };
