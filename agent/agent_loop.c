/* Event loop core: fd table, timer min-heap, dispatch. */
#include "agent_loop.h"
#include "agent_loop_int.h"

#include "fj_clock.h"

#include <errno.h>
#include <stdlib.h>

#define LOOP_READY_MAX 128

struct loop_fd {
	unsigned int mask;
	int registered;
	agent_fd_fn fn;
	void *arg;
};

struct loop_timer {
	uint64_t when_ms;
	uint64_t seq; /* tie-break: earlier add fires first */
	uint64_t id;
	agent_timer_fn fn;
	void *arg;
};

struct agent_loop {
	struct agent_loop_backend *backend;
	struct loop_fd *fds;
	int max_fds;
	struct loop_timer *heap;
	unsigned int heap_len;
	unsigned int heap_cap;
	uint64_t next_seq;
	uint64_t next_id;
	uint64_t now_ms;
	agent_hook_fn before_sleep;
	void *before_sleep_arg;
	int stop;
	struct agent_loop_ready ready[LOOP_READY_MAX];
};

struct agent_loop *agent_loop_create(int max_fds)
{
	struct agent_loop *loop;

	if (max_fds <= 0)
		return NULL;
	loop = calloc(1, sizeof(*loop));
	if (!loop)
		return NULL;
	loop->fds = calloc((size_t)max_fds, sizeof(*loop->fds));
	if (!loop->fds || agent_loop_backend_create(&loop->backend, LOOP_READY_MAX) < 0) {
		free(loop->fds);
		free(loop);
		return NULL;
	}
	loop->max_fds = max_fds;
	loop->next_id = 1;
	loop->now_ms = fj_mono_ms();
	return loop;
}

void agent_loop_destroy(struct agent_loop *loop)
{
	if (!loop)
		return;
	agent_loop_backend_destroy(loop->backend);
	free(loop->fds);
	free(loop->heap);
	free(loop);
}

int agent_loop_fd_set(struct agent_loop *loop, int fd, unsigned int mask, agent_fd_fn fn, void *arg)
{
	struct loop_fd *f;
	int err;

	if (fd < 0)
		return -EBADF;
	if (fd >= loop->max_fds)
		return -ERANGE;
	f = &loop->fds[fd];
	mask &= AGENT_EV_READ | AGENT_EV_WRITE;
	err = agent_loop_backend_set(loop->backend, fd, f->mask, mask, f->registered);
	if (err < 0)
		return err;
	f->registered = 1;
	f->mask = mask;
	f->fn = fn;
	f->arg = arg;
	return 0;
}

int agent_loop_fd_mask(struct agent_loop *loop, int fd, unsigned int mask)
{
	if (fd < 0 || fd >= loop->max_fds || !loop->fds[fd].registered)
		return -ENOENT;
	return agent_loop_fd_set(loop, fd, mask, loop->fds[fd].fn, loop->fds[fd].arg);
}

void agent_loop_fd_del(struct agent_loop *loop, int fd)
{
	if (fd < 0 || fd >= loop->max_fds || !loop->fds[fd].registered)
		return;
	agent_loop_backend_del(loop->backend, fd);
	loop->fds[fd] = (struct loop_fd){ 0 };
}

static int timer_before(const struct loop_timer *a, const struct loop_timer *b)
{
	if (a->when_ms != b->when_ms)
		return a->when_ms < b->when_ms;
	return a->seq < b->seq;
}

static void heap_swap(struct agent_loop *loop, unsigned int i, unsigned int j)
{
	struct loop_timer t = loop->heap[i];

	loop->heap[i] = loop->heap[j];
	loop->heap[j] = t;
}

static void heap_up(struct agent_loop *loop, unsigned int i)
{
	while (i > 0) {
		unsigned int parent = (i - 1) / 2;

		if (!timer_before(&loop->heap[i], &loop->heap[parent]))
			break;
		heap_swap(loop, i, parent);
		i = parent;
	}
}

static void heap_down(struct agent_loop *loop, unsigned int i)
{
	for (;;) {
		unsigned int l = 2 * i + 1, r = l + 1, m = i;

		if (l < loop->heap_len && timer_before(&loop->heap[l], &loop->heap[m]))
			m = l;
		if (r < loop->heap_len && timer_before(&loop->heap[r], &loop->heap[m]))
			m = r;
		if (m == i)
			return;
		heap_swap(loop, i, m);
		i = m;
	}
}

static void heap_remove(struct agent_loop *loop, unsigned int i)
{
	loop->heap_len--;
	if (i == loop->heap_len)
		return;
	loop->heap[i] = loop->heap[loop->heap_len];
	heap_down(loop, i);
	heap_up(loop, i);
}

uint64_t agent_loop_timer_add(struct agent_loop *loop, uint64_t delay_ms, agent_timer_fn fn,
			      void *arg)
{
	struct loop_timer *t;

	if (loop->heap_len == loop->heap_cap) {
		unsigned int cap = loop->heap_cap ? loop->heap_cap * 2 : 16;
		struct loop_timer *h = realloc(loop->heap, cap * sizeof(*h));

		if (!h)
			return 0;
		loop->heap = h;
		loop->heap_cap = cap;
	}
	t = &loop->heap[loop->heap_len];
	t->when_ms = loop->now_ms + delay_ms;
	t->seq = loop->next_seq++;
	t->id = loop->next_id++;
	t->fn = fn;
	t->arg = arg;
	loop->heap_len++;
	heap_up(loop, loop->heap_len - 1);
	return loop->next_id - 1;
}

int agent_loop_timer_del(struct agent_loop *loop, uint64_t id)
{
	unsigned int i;

	/* Linear: the agent keeps a few dozen timers at most. */
	for (i = 0; i < loop->heap_len; i++) {
		if (loop->heap[i].id == id) {
			heap_remove(loop, i);
			return 0;
		}
	}
	return -ENOENT;
}

unsigned int agent_loop_timer_count(const struct agent_loop *loop)
{
	return loop->heap_len;
}

void agent_loop_set_before_sleep(struct agent_loop *loop, agent_hook_fn fn, void *arg)
{
	loop->before_sleep = fn;
	loop->before_sleep_arg = arg;
}

uint64_t agent_loop_now_ms(const struct agent_loop *loop)
{
	return loop->now_ms;
}

static int run_timers(struct agent_loop *loop)
{
	/* Timers armed by a callback of this pass wait for the next pass. */
	uint64_t seq_limit = loop->next_seq;
	int n = 0;

	while (loop->heap_len > 0) {
		struct loop_timer t = loop->heap[0];

		if (t.when_ms > loop->now_ms || t.seq >= seq_limit)
			break;
		heap_remove(loop, 0);
		t.fn(loop, t.id, t.arg);
		n++;
	}
	return n;
}

static int wait_timeout(const struct agent_loop *loop, int max_wait_ms)
{
	uint64_t now = fj_mono_ms(), until;
	int t;

	if (loop->heap_len == 0)
		return max_wait_ms;
	until = loop->heap[0].when_ms;
	t = until <= now ? 0 : (until - now > 86400000 ? 86400000 : (int)(until - now));
	if (max_wait_ms >= 0 && max_wait_ms < t)
		t = max_wait_ms;
	return t;
}

int agent_loop_run_once(struct agent_loop *loop, int max_wait_ms)
{
	int n, i, ran = 0;

	if (loop->before_sleep)
		loop->before_sleep(loop, loop->before_sleep_arg);
	/* The hook may have stopped the loop: do not sleep first. */
	if (loop->stop)
		return 0;
	n = agent_loop_backend_wait(loop->backend, loop->ready, LOOP_READY_MAX,
				    wait_timeout(loop, max_wait_ms));
	if (n < 0)
		return n;
	loop->now_ms = fj_mono_ms();
	for (i = 0; i < n; i++) {
		int fd = loop->ready[i].fd;
		struct loop_fd *f = &loop->fds[fd];
		unsigned int ev = loop->ready[i].events;

		/* An earlier callback of this pass may have removed the fd. */
		if (!f->registered || !f->fn)
			continue;
		if (ev & AGENT_EV_ERROR)
			ev |= f->mask;
		ev &= f->mask | AGENT_EV_ERROR;
		if (!ev)
			continue;
		f->fn(loop, fd, ev, f->arg);
		ran++;
	}
	return ran + run_timers(loop);
}

int agent_loop_run(struct agent_loop *loop)
{
	loop->stop = 0;
	while (!loop->stop) {
		int n = agent_loop_run_once(loop, -1);

		if (n < 0)
			return n;
	}
	loop->stop = 0;
	return 0;
}

void agent_loop_stop(struct agent_loop *loop)
{
	loop->stop = 1;
}
