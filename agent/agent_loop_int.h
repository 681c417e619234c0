/* Private interface between agent_loop.c and its epoll backend. */
#ifndef AGENT_LOOP_INT_H
#define AGENT_LOOP_INT_H

struct agent_loop_backend;

struct agent_loop_ready {
	int fd;
	unsigned int events;
};

/* All return 0 or a negative errno. */
int agent_loop_backend_create(struct agent_loop_backend **out, int max_events);
void agent_loop_backend_destroy(struct agent_loop_backend *b);
int agent_loop_backend_set(struct agent_loop_backend *b, int fd, unsigned int old_mask,
			   unsigned int new_mask, int registered);
void agent_loop_backend_del(struct agent_loop_backend *b, int fd);
/* Fills ready[] (at most max entries); returns the count or a negative errno. */
int agent_loop_backend_wait(struct agent_loop_backend *b, struct agent_loop_ready *ready, int max,
			    int timeout_ms);

#endif
