/* Echo responder in the event loop. */
#include "responder.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent_loop.h"
#include "fj_log.h"

#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262
#endif

#define RESP_MAX_LISTEN 8

struct resp_conn {
	struct resp_conn *next;
	struct agent_responder *r;
	int fd;
	size_t head, len; /* ring buffer: bytes to echo back */
	int eof;
	uint64_t last_ms;
	unsigned char buf[AGENT_RESPONDER_BUF];
};

struct agent_responder {
	struct agent_loop *loop;
	int lfd[RESP_MAX_LISTEN];
	unsigned int nl;
	unsigned int port;
	int proto;
	unsigned int max_conns, idle_s, nconns;
	unsigned long refused, idle_closed;
	struct resp_conn *conns;
	uint64_t sweep_timer;
};

static void conn_close(struct resp_conn *c)
{
	struct agent_responder *r = c->r;
	struct resp_conn **pp;

	for (pp = &r->conns; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	agent_loop_fd_del(r->loop, c->fd);
	close(c->fd);
	r->nconns--;
	free(c);
}

static void conn_update_mask(struct resp_conn *c)
{
	unsigned int mask = 0;

	if (!c->eof && c->len < sizeof(c->buf))
		mask |= AGENT_EV_READ;
	if (c->len > 0)
		mask |= AGENT_EV_WRITE;
	agent_loop_fd_mask(c->r->loop, c->fd, mask);
}

/* Returns -1 when the connection is finished or broken. */
static int conn_read(struct resp_conn *c)
{
	while (!c->eof && c->len < sizeof(c->buf)) {
		size_t tail = (c->head + c->len) % sizeof(c->buf);
		size_t room = sizeof(c->buf) - c->len;
		ssize_t n;

		if (tail + room > sizeof(c->buf))
			room = sizeof(c->buf) - tail;
		n = recv(c->fd, c->buf + tail, room, 0);
		if (n > 0) {
			c->len += (size_t)n;
			continue;
		}
		if (n == 0) {
			c->eof = 1;
			break;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			break;
		return -1;
	}
	return 0;
}

static int conn_write(struct resp_conn *c)
{
	while (c->len > 0) {
		size_t chunk = c->len;
		ssize_t n;

		if (c->head + chunk > sizeof(c->buf))
			chunk = sizeof(c->buf) - c->head;
		n = send(c->fd, c->buf + c->head, chunk, MSG_NOSIGNAL);
		if (n > 0) {
			c->head = (c->head + (size_t)n) % sizeof(c->buf);
			c->len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		return -1;
	}
	if (c->len == 0)
		c->head = 0;
	return 0;
}

static void on_conn(struct agent_loop *loop, int fd, unsigned int ev, void *arg)
{
	struct resp_conn *c = arg;

	(void)fd;
	c->last_ms = agent_loop_now_ms(loop);
	if ((ev & AGENT_EV_READ) && conn_read(c) < 0) {
		conn_close(c);
		return;
	}
	if (conn_write(c) < 0 || (c->eof && c->len == 0)) {
		conn_close(c);
		return;
	}
	conn_update_mask(c);
}

static void on_accept(struct agent_loop *loop, int lfd, unsigned int ev, void *arg)
{
	struct agent_responder *r = arg;

	(void)ev;
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct resp_conn *c;

		if (fd < 0)
			return; /* EAGAIN, or a transient error: the listener stays */
		if (r->nconns >= r->max_conns) {
			r->refused++;
			fj_warn("responder: %u connections open (the cap); refusing one",
				r->nconns);
			close(fd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (!c || agent_loop_fd_set(loop, fd, AGENT_EV_READ, on_conn, c) < 0) {
			free(c);
			close(fd);
			continue;
		}
		c->r = r;
		c->fd = fd;
		c->last_ms = agent_loop_now_ms(loop);
		c->next = r->conns;
		r->conns = c;
		r->nconns++;
	}
}

static void on_sweep(struct agent_loop *loop, uint64_t id, void *arg)
{
	struct agent_responder *r = arg;
	uint64_t now = agent_loop_now_ms(loop);
	struct resp_conn *c = r->conns, *next;

	(void)id;
	for (; c; c = next) {
		next = c->next;
		if (now - c->last_ms >= (uint64_t)r->idle_s * 1000) {
			r->idle_closed++;
			conn_close(c);
		}
	}
	r->sweep_timer = agent_loop_timer_add(loop, 1000, on_sweep, r);
}

static int open_listener(struct agent_responder *r, const char *addr, int force_tcp, char *err,
			 unsigned int errlen)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	socklen_t sl;
	int af, fd = -1, one = 1, proto = IPPROTO_MPTCP;

	if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
		af = AF_INET;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)r->port);
		sl = sizeof(*s4);
	} else if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
		af = AF_INET6;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)r->port);
		sl = sizeof(*s6);
	} else {
		snprintf(err, errlen, "responder: '%s' is not an address", addr);
		return -EINVAL;
	}
	if (!force_tcp)
		fd = socket(af, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_MPTCP);
	if (fd < 0) {
		proto = IPPROTO_TCP;
		fd = socket(af, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
	}
	if (fd < 0)
		goto fail;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (af == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 128) < 0)
		goto fail;
	if (r->port == 0) {
		sl = sizeof(ss);
		getsockname(fd, (struct sockaddr *)&ss, &sl);
		r->port = ntohs(af == AF_INET ? s4->sin_port : s6->sin6_port);
	}
	if (agent_loop_fd_set(r->loop, fd, AGENT_EV_READ, on_accept, r) < 0)
		goto fail;
	r->lfd[r->nl++] = fd;
	if (proto == IPPROTO_MPTCP)
		r->proto = IPPROTO_MPTCP;
	fj_info("responder: listening on [%s]:%u (%s)", addr, r->port,
		proto == IPPROTO_MPTCP ? "MPTCP" : "TCP");
	return 0;
fail:
	proto = errno ? errno : EIO;
	snprintf(err, errlen, "responder: cannot listen on [%s]:%u: %s", addr, r->port,
		 strerror(proto));
	if (fd >= 0)
		close(fd);
	return -proto;
}

int agent_responder_create(struct agent_loop *loop, const struct agent_responder_cfg *cfg,
			   struct agent_responder **out, char *err, unsigned int errlen)
{
	static const char *const wildcard[] = { "0.0.0.0", "::" };
	const char *const *addrs = cfg->n_addrs ? cfg->addrs : wildcard;
	unsigned int n = cfg->n_addrs ? cfg->n_addrs : 2, i;
	struct agent_responder *r;
	int rc = 0;

	if (n > RESP_MAX_LISTEN || cfg->port > 65535 || !cfg->max_conns || !cfg->idle_s) {
		snprintf(err, errlen, "responder: bad settings");
		return -EINVAL;
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->loop = loop;
	r->port = cfg->port;
	r->proto = IPPROTO_TCP;
	r->max_conns = cfg->max_conns;
	r->idle_s = cfg->idle_s;
	for (i = 0; i < n; i++) {
		char e[200];
		int lrc = open_listener(r, addrs[i], cfg->force_tcp, e, sizeof(e));

		/* A host without IPv6 still serves IPv4 on the wildcard. */
		if (lrc < 0 && !cfg->n_addrs && strcmp(addrs[i], "::") == 0) {
			fj_warn("%s", e);
			continue;
		}
		if (lrc < 0) {
			snprintf(err, errlen, "%s", e);
			rc = lrc;
			break;
		}
	}
	if (!rc && r->nl == 0)
		rc = -EADDRNOTAVAIL;
	if (!rc)
		r->sweep_timer = agent_loop_timer_add(loop, 1000, on_sweep, r);
	if (rc) {
		agent_responder_destroy(r);
		return rc;
	}
	*out = r;
	return 0;
}

void agent_responder_destroy(struct agent_responder *r)
{
	unsigned int i;

	if (!r)
		return;
	while (r->conns)
		conn_close(r->conns);
	for (i = 0; i < r->nl; i++) {
		agent_loop_fd_del(r->loop, r->lfd[i]);
		close(r->lfd[i]);
	}
	if (r->sweep_timer)
		agent_loop_timer_del(r->loop, r->sweep_timer);
	free(r);
}

unsigned int agent_responder_port(const struct agent_responder *r)
{
	return r->port;
}

int agent_responder_protocol(const struct agent_responder *r)
{
	return r->proto;
}

unsigned int agent_responder_conns(const struct agent_responder *r)
{
	return r->nconns;
}

unsigned long agent_responder_refused(const struct agent_responder *r)
{
	return r->refused;
}

unsigned long agent_responder_idle_closed(const struct agent_responder *r)
{
	return r->idle_closed;
}
