/* The loop's only contact with epoll. */
#include "agent_loop.h"
#include "agent_loop_int.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

struct agent_loop_backend {
	int epfd;
	int max_events;
	struct epoll_event *events;
};

int agent_loop_backend_create(struct agent_loop_backend **out, int max_events)
{
	struct agent_loop_backend *b = calloc(1, sizeof(*b));

	if (!b)
		return -ENOMEM;
	b->events = calloc((size_t)max_events, sizeof(*b->events));
	if (!b->events) {
		free(b);
		return -ENOMEM;
	}
	b->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (b->epfd < 0) {
		int err = -errno;

		free(b->events);
		free(b);
		return err;
	}
	b->max_events = max_events;
	*out = b;
	return 0;
}

void agent_loop_backend_destroy(struct agent_loop_backend *b)
{
	if (!b)
		return;
	close(b->epfd);
	free(b->events);
	free(b);
}

int agent_loop_backend_set(struct agent_loop_backend *b, int fd, unsigned int old_mask,
			   unsigned int new_mask, int registered)
{
	struct epoll_event ev = { 0 };

	(void)old_mask;
	if (new_mask & AGENT_EV_READ)
		ev.events |= EPOLLIN;
	if (new_mask & AGENT_EV_WRITE)
		ev.events |= EPOLLOUT;
	ev.data.fd = fd;
	if (epoll_ctl(b->epfd, registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	return 0;
}

void agent_loop_backend_del(struct agent_loop_backend *b, int fd)
{
	/* The fd may already be closed by its owner; ignore errors then. */
	epoll_ctl(b->epfd, EPOLL_CTL_DEL, fd, NULL);
}

int agent_loop_backend_wait(struct agent_loop_backend *b, struct agent_loop_ready *ready, int max,
			    int timeout_ms)
{
	int n, i;

	if (max > b->max_events)
		max = b->max_events;
	n = epoll_wait(b->epfd, b->events, max, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (i = 0; i < n; i++) {
		unsigned int e = 0;

		if (b->events[i].events & EPOLLIN)
			e |= AGENT_EV_READ;
		if (b->events[i].events & EPOLLOUT)
			e |= AGENT_EV_WRITE;
		if (b->events[i].events & (EPOLLERR | EPOLLHUP | EPOLLRDHUP))
			e |= AGENT_EV_ERROR;
		ready[i].fd = b->events[i].data.fd;
		ready[i].events = e;
	}
	return n;
}
