/*
 * The agent's event loop: file descriptor events (epoll, in agent_loop_epoll.c)
 * and one-shot timers kept in a min-heap. "Now" is read once per pass from the
 * monotonic clock, so every timer callback of one pass sees the same time.
 * Timers that are due at the same millisecond fire in the order they were
 * added (a sequence number breaks the tie), which keeps runs deterministic.
 * Single-threaded: every function must be called from the loop's thread.
 */
#ifndef AGENT_LOOP_H
#define AGENT_LOOP_H

#include <stdint.h>

struct agent_loop;

#define AGENT_EV_READ  1u
#define AGENT_EV_WRITE 2u
/* Reported only: the peer hung up or the fd has an error condition. */
#define AGENT_EV_ERROR 4u

/* Called with the events that are ready (AGENT_EV_*). */
typedef void (*agent_fd_fn)(struct agent_loop *loop, int fd, unsigned int events, void *arg);
typedef void (*agent_timer_fn)(struct agent_loop *loop, uint64_t id, void *arg);
typedef void (*agent_hook_fn)(struct agent_loop *loop, void *arg);

/* Creates a loop able to watch fds below max_fds. NULL on allocation failure. */
struct agent_loop *agent_loop_create(int max_fds);
/* Frees the loop. Watched fds are not closed: they belong to whoever added them. */
void agent_loop_destroy(struct agent_loop *loop);

/*
 * Watches fd for the events in mask (AGENT_EV_READ and/or AGENT_EV_WRITE),
 * replacing any earlier registration of that fd. A mask of 0 keeps the fd
 * registered but silent. Returns 0, -EBADF/-ERANGE for an fd out of range, or
 * the negative errno of epoll_ctl.
 */
int agent_loop_fd_set(struct agent_loop *loop, int fd, unsigned int mask, agent_fd_fn fn,
		      void *arg);
/* Changes the mask of a watched fd; -ENOENT when the fd is not watched. */
int agent_loop_fd_mask(struct agent_loop *loop, int fd, unsigned int mask);
/* Stops watching fd (no-op if it is not watched). Call before close(). */
void agent_loop_fd_del(struct agent_loop *loop, int fd);

/*
 * Arms a one-shot timer that fires delay_ms after the loop's current "now".
 * Returns its id (never 0) or 0 when memory runs out.
 */
uint64_t agent_loop_timer_add(struct agent_loop *loop, uint64_t delay_ms, agent_timer_fn fn,
			      void *arg);
/* Disarms a timer; returns 0 or -ENOENT if it already fired or never existed. */
int agent_loop_timer_del(struct agent_loop *loop, uint64_t id);
/* Number of armed timers. */
unsigned int agent_loop_timer_count(const struct agent_loop *loop);

/* Called once per pass just before the loop sleeps. */
void agent_loop_set_before_sleep(struct agent_loop *loop, agent_hook_fn fn, void *arg);

/* The loop's monotonic "now" in milliseconds, as read at the start of this pass. */
uint64_t agent_loop_now_ms(const struct agent_loop *loop);

/*
 * One pass: waits at most max_wait_ms (-1: until the next timer or an event),
 * dispatches fd events, then due timers. Returns the number of callbacks run,
 * or a negative errno if epoll_wait failed (other than EINTR).
 */
int agent_loop_run_once(struct agent_loop *loop, int max_wait_ms);
/* Runs passes until agent_loop_stop() is called. Returns 0 or a negative errno. */
int agent_loop_run(struct agent_loop *loop);
void agent_loop_stop(struct agent_loop *loop);

#endif
