/* Client-side helpers shared by the experiment types. */
#include "exp_sock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "agent_arena.h"
#include "fj_clock.h"

int exp_parse_addr(const char *s, unsigned int port, struct sockaddr_storage *ss, socklen_t *len,
		   char *text, size_t textlen)
{
	char host[INET6_ADDRSTRLEN + 8];
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	char *slash;

	if (!s || strlen(s) >= sizeof(host))
		return -EINVAL;
	snprintf(host, sizeof(host), "%s", s);
	slash = strchr(host, '/');
	if (slash)
		*slash = 0;
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		*len = sizeof(*s4);
	} else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*s6);
	} else {
		return -EINVAL;
	}
	/* Print the parsed address back: it is canonical and fits INET6_ADDRSTRLEN. */
	if (!inet_ntop(ss->ss_family,
		       ss->ss_family == AF_INET ? (void *)&s4->sin_addr : (void *)&s6->sin6_addr,
		       text, (socklen_t)textlen))
		return -EINVAL;
	return 0;
}

static int want_family(const Fjord__V1__RunCommand *cmd)
{
	const Fjord__V1__Targets *t = cmd->spec->targets;

	if (t && t->n_families > 0 &&
	    t->families[0] == FJORD__V1__ADDRESS_FAMILY__ADDRESS_FAMILY_IPV6)
		return AF_INET6;
	return AF_INET;
}

/* No paths: the peer's first address of the requested family (not link-local). */
static int target_from_peer(const Fjord__V1__RunCommand *cmd, const struct exp_env *env,
			    struct exp_target *t, struct exp_out *out)
{
	const Fjord__V1__Agent *peer = cmd->peer;
	int fam = want_family(cmd);
	size_t i, j;

	for (i = 0; peer && i < peer->n_interfaces; i++) {
		const Fjord__V1__Interface *it = peer->interfaces[i];

		for (j = 0; j < it->n_addresses; j++) {
			if (exp_parse_addr(it->addresses[j], env->responder_port, &t->remote,
					   &t->remote_len, t->remote_str, sizeof(t->remote_str)))
				continue;
			if (t->remote.ss_family != fam ||
			    strncasecmp(t->remote_str, "fe80:", 5) == 0)
				continue;
			t->family = fam;
			t->remote_isp = it->isp;
			return 0;
		}
	}
	exp_fail(out, "run has no paths and the peer agent has no %s address",
		 fam == AF_INET ? "IPv4" : "IPv6");
	return -ENOENT;
}

int exp_resolve_target(const Fjord__V1__RunCommand *cmd, const struct exp_env *env, size_t idx,
		       struct exp_target *t, struct exp_out *out)
{
	const Fjord__V1__Path *p;

	memset(t, 0, sizeof(*t));
	if (cmd->run->n_paths == 0 && idx == 0)
		return target_from_peer(cmd, env, t, out);
	if (idx >= cmd->run->n_paths) {
		exp_fail(out, "run has no path %zu", idx);
		return -EINVAL;
	}
	p = cmd->run->paths[idx];
	if (exp_parse_addr(p->remote_address, env->responder_port, &t->remote, &t->remote_len,
			   t->remote_str, sizeof(t->remote_str))) {
		exp_fail(out, "path %zu: remote address \"%.64s\" is not an IPv4 or IPv6 address",
			 idx, p->remote_address ? p->remote_address : "");
		return -EINVAL;
	}
	t->family = t->remote.ss_family;
	t->remote_isp = p->remote_isp;
	t->local_isp = p->local_isp;
	if (p->local_address && p->local_address[0]) {
		if (exp_parse_addr(p->local_address, 0, &t->local, &t->local_len, t->local_str,
				   sizeof(t->local_str)) ||
		    t->local.ss_family != t->family) {
			exp_fail(out,
				 "path %zu: local address \"%.64s\" is not an address of the "
				 "remote's family",
				 idx, p->local_address);
			return -EINVAL;
		}
		t->has_local = 1;
	}
	return 0;
}

uint64_t exp_left_ms(const struct exp_env *env)
{
	uint64_t now = fj_mono_ms();

	return env->deadline_mono_ms > now ? env->deadline_mono_ms - now : 0;
}

void exp_set_timeouts(int fd, const struct exp_env *env)
{
	uint64_t now = fj_mono_ms();
	/* Leave the parent 300 ms so it collects our own error, not a SIGKILL. */
	uint64_t left = env->deadline_mono_ms > now + 400 ? env->deadline_mono_ms - now - 300 : 100;
	struct timeval tv = { .tv_sec = (time_t)(left / 1000),
			      .tv_usec = (long)(left % 1000) * 1000 };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

int exp_connect(const Fjord__V1__RunCommand *cmd, Fjord__V1__Stack stack,
		const struct exp_target *t, const struct exp_env *env, struct exp_out *out,
		int *mptcp)
{
	return exp_connect_within(cmd, stack, t, env, 0, out, mptcp);
}

static void set_timeouts_ms(int fd, uint64_t ms)
{
	struct timeval tv = { .tv_sec = (time_t)(ms / 1000), .tv_usec = (long)(ms % 1000) * 1000 };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

int exp_connect_within(const Fjord__V1__RunCommand *cmd, Fjord__V1__Stack stack,
		       const struct exp_target *t, const struct exp_env *env, unsigned int max_ms,
		       struct exp_out *out, int *mptcp)
{
	int fd = -1;

	*mptcp = 0;
	if (stack == FJORD__V1__STACK__STACK_KERNEL) {
		fd = socket(t->family, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_MPTCP);
		if (fd >= 0)
			*mptcp = 1;
		else
			exp_add_event(out, "fallback", "kernel has no MPTCP", 0);
	}
	if (fd < 0)
		fd = socket(t->family, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
	if (fd < 0) {
		int e = errno;

		exp_fail(out, "socket: %s", strerror(e));
		return -e;
	}
	exp_set_timeouts(fd, env);
	if (max_ms && max_ms < exp_left_ms(env))
		set_timeouts_ms(fd, max_ms);
	if (exp_kernel_settings(cmd, fd, *mptcp, out) < 0) {
		close(fd);
		return -EINVAL;
	}
	if (t->has_local && bind(fd, (const struct sockaddr *)&t->local, t->local_len) < 0) {
		exp_fail(out, "bind to %s: %s", t->local_str, strerror(errno));
		close(fd);
		return -EADDRNOTAVAIL;
	}
	if (connect(fd, (const struct sockaddr *)&t->remote, t->remote_len) < 0) {
		int e = errno;

		exp_fail(out, "connect to %s port %u: %s", t->remote_str, env->responder_port,
			 e == EINPROGRESS || e == EAGAIN ? "timed out" : strerror(e));
		close(fd);
		return -e;
	}
	return fd;
}

int exp_send_all(int fd, const uint8_t *p, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EPIPE;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int exp_recv_all(int fd, uint8_t *p, size_t len)
{
	while (len > 0) {
		ssize_t n = recv(fd, p, len, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0)
			return -ECONNRESET;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int exp_handshake(int fd, const struct agent_resp_request *q, struct agent_resp_reply *reply,
		  struct exp_out *out)
{
	uint8_t req[AGENT_RESP_REQ_LEN], rep[AGENT_RESP_REPLY_LEN];
	int rc;

	agent_resp_request_encode(q, req);
	rc = exp_send_all(fd, req, sizeof(req));
	if (rc) {
		exp_fail(out, "sending the request to the responder: %s", strerror(-rc));
		return rc;
	}
	rc = exp_recv_all(fd, rep, sizeof(rep));
	if (rc) {
		exp_fail(out, "reading the responder's reply: %s",
			 rc == -EAGAIN	     ? "no answer before the deadline"
			 : rc == -ECONNRESET ? "connection closed by the responder"
					     : strerror(-rc));
		return rc;
	}
	if (agent_resp_reply_decode(rep, reply) < 0) {
		exp_fail(out, "the peer is not a Fjord responder (bad reply)");
		return -EPROTO;
	}
	if (!reply->ok) {
		exp_fail(out, "responder refused the request: %s", reply->message);
		return -EINVAL;
	}
	return 0;
}

void exp_synth_path(const struct exp_target *t, struct exp_out *out)
{
	Fjord__V1__Provenance *p = out->result->provenance;
	Fjord__V1__Path *path;

	if (!p || p->n_paths > 0)
		return;
	path = agent_arena_alloc(out->arena, sizeof(*path));
	p->paths = agent_arena_alloc(out->arena, sizeof(*p->paths));
	if (!path || !p->paths)
		return;
	fjord__v1__path__init(path);
	path->family = t->family == AF_INET6 ? FJORD__V1__ADDRESS_FAMILY__ADDRESS_FAMILY_IPV6
					     : FJORD__V1__ADDRESS_FAMILY__ADDRESS_FAMILY_IPV4;
	path->remote_address = agent_arena_strdup(out->arena, t->remote_str);
	path->remote_isp = (char *)(t->remote_isp ? t->remote_isp : "");
	p->paths[0] = path;
	p->n_paths = 1;
}

int exp_cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

uint32_t exp_percentile(const uint32_t *v, size_t n, unsigned int pct)
{
	size_t rank = (n * pct + 99) / 100;

	return n == 0 ? 0 : v[rank ? rank - 1 : 0];
}

Fjord__V1__Stack exp_stack(const Fjord__V1__RunCommand *cmd)
{
	Fjord__V1__Stack s = cmd->run ? cmd->run->stack : FJORD__V1__STACK__STACK_UNSPECIFIED;

	/* StackSettings: empty = kernel. */
	return s == FJORD__V1__STACK__STACK_UNSPECIFIED ? FJORD__V1__STACK__STACK_KERNEL : s;
}
