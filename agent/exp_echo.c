/*
 * EXPERIMENT_TYPE_ECHO: connect to the server agent's responder, send `count`
 * messages of `message_bytes`, read each echo back, check its bytes and time
 * it. Runs in the runner's child: blocking sockets with timeouts derived from
 * the run's deadline, so a stuck peer gives a clear error before the parent's
 * SIGKILL would.
 */
#include "exp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "agent_arena.h"
#include "fj_clock.h"
#include "mptcp_info.h"

#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262
#endif

#define ECHO_DEFAULT_BYTES 64
#define ECHO_DEFAULT_COUNT 10
#define ECHO_MAX_BYTES	   65536
#define ECHO_MAX_COUNT	   100000

struct echo_target {
	int family;
	struct sockaddr_storage remote, local;
	socklen_t remote_len, local_len;
	int has_local;
	char remote_str[INET6_ADDRSTRLEN];
	char local_str[INET6_ADDRSTRLEN];
	const char *local_isp, *remote_isp;
};

/* "10.0.0.1", "10.0.0.1/24" or "2001:db8::1/64" into a sockaddr with port. */
static int parse_addr(const char *s, unsigned int port, struct sockaddr_storage *ss, socklen_t *len,
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
			    struct echo_target *t, struct exp_out *out)
{
	const Fjord__V1__Agent *peer = cmd->peer;
	int fam = want_family(cmd);
	size_t i, j;

	for (i = 0; peer && i < peer->n_interfaces; i++) {
		const Fjord__V1__Interface *it = peer->interfaces[i];

		for (j = 0; j < it->n_addresses; j++) {
			if (parse_addr(it->addresses[j], env->responder_port, &t->remote,
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

static int resolve_target(const Fjord__V1__RunCommand *cmd, const struct exp_env *env,
			  struct echo_target *t, struct exp_out *out)
{
	const Fjord__V1__Path *p;

	memset(t, 0, sizeof(*t));
	if (cmd->run->n_paths == 0)
		return target_from_peer(cmd, env, t, out);
	p = cmd->run->paths[0];
	if (parse_addr(p->remote_address, env->responder_port, &t->remote, &t->remote_len,
		       t->remote_str, sizeof(t->remote_str))) {
		exp_fail(out, "path 0: remote address \"%.64s\" is not an IPv4 or IPv6 address",
			 p->remote_address ? p->remote_address : "");
		return -EINVAL;
	}
	t->family = t->remote.ss_family;
	t->remote_isp = p->remote_isp;
	t->local_isp = p->local_isp;
	if (p->local_address && p->local_address[0]) {
		if (parse_addr(p->local_address, 0, &t->local, &t->local_len, t->local_str,
			       sizeof(t->local_str)) ||
		    t->local.ss_family != t->family) {
			exp_fail(
				out,
				"path 0: local address \"%.64s\" is not an address of the remote's family",
				p->local_address);
			return -EINVAL;
		}
		t->has_local = 1;
	}
	return 0;
}

static void set_timeouts(int fd, const struct exp_env *env)
{
	uint64_t now = fj_mono_ms();
	/* Leave the parent 300 ms so it collects our own error, not a SIGKILL. */
	uint64_t left = env->deadline_mono_ms > now + 400 ? env->deadline_mono_ms - now - 300 : 100;
	struct timeval tv = { .tv_sec = (time_t)(left / 1000),
			      .tv_usec = (long)(left % 1000) * 1000 };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* Opens and connects the socket; *mptcp says which protocol it got. */
static int echo_connect(const Fjord__V1__RunCommand *cmd, Fjord__V1__Stack stack,
			const struct echo_target *t, const struct exp_env *env, struct exp_out *out,
			int *mptcp)
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
		exp_fail(out, "socket: %s", strerror(errno));
		return -errno;
	}
	set_timeouts(fd, env);
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

static int send_all(int fd, const uint8_t *p, size_t len)
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

static int recv_all(int fd, uint8_t *p, size_t len)
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

static void fill_pattern(uint8_t *buf, size_t len, uint32_t seq)
{
	size_t i;

	for (i = 0; i < len; i++)
		buf[i] = (uint8_t)(seq * 31u + i * 7u + 1u);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted array. */
static uint32_t percentile(const uint32_t *v, size_t n, unsigned int pct)
{
	size_t rank = (n * pct + 99) / 100;

	return n == 0 ? 0 : v[rank ? rank - 1 : 0];
}

static int echo_params(const Fjord__V1__RunCommand *cmd, struct exp_out *out, uint32_t *bytes,
		       uint32_t *count)
{
	const Fjord__V1__EchoParams *e = cmd->spec->echo;

	*bytes = e && e->message_bytes ? e->message_bytes : ECHO_DEFAULT_BYTES;
	*count = e && e->count ? e->count : ECHO_DEFAULT_COUNT;
	if (*bytes > ECHO_MAX_BYTES) {
		exp_fail(out, "echo.message_bytes must be at most %u (got %u)", ECHO_MAX_BYTES,
			 *bytes);
		return -EINVAL;
	}
	if (*count > ECHO_MAX_COUNT) {
		exp_fail(out, "echo.count must be at most %u (got %u)", ECHO_MAX_COUNT, *count);
		return -EINVAL;
	}
	return 0;
}

/* Sends and checks every message, sampling the subflows; returns how many completed. */
static uint32_t echo_loop(int fd, int mptcp, uint32_t bytes, uint32_t count, uint32_t *rtts,
			  struct exp_trace *trace, struct exp_out *out)
{
	uint8_t *tx = malloc(bytes), *rx = malloc(bytes);
	uint64_t next_sample = fj_mono_ms() + EXP_SAMPLE_MS;
	uint32_t seq;
	int rc;

	if (!tx || !rx) {
		free(tx);
		free(rx);
		exp_fail(out, "out of memory for %u-byte messages", bytes);
		return 0;
	}
	for (seq = 0; seq < count; seq++) {
		uint64_t t0, t1;
		size_t i;

		fill_pattern(tx, bytes, seq);
		t0 = fj_mono_us();
		rc = send_all(fd, tx, bytes);
		if (rc) {
			exp_fail(out, "sending message %u: %s", seq, strerror(-rc));
			break;
		}
		rc = recv_all(fd, rx, bytes);
		if (rc) {
			exp_fail(out, "reading echo of message %u: %s", seq,
				 rc == -EAGAIN	     ? "no answer before the deadline"
				 : rc == -ECONNRESET ? "connection closed by the responder"
						     : strerror(-rc));
			break;
		}
		t1 = fj_mono_us();
		for (i = 0; i < bytes && rx[i] == tx[i]; i++)
			;
		if (i < bytes) {
			exp_fail(out, "echo of message %u differs at byte %zu", seq, i);
			break;
		}
		rtts[seq] = (uint32_t)(t1 - t0 > UINT32_MAX ? UINT32_MAX : t1 - t0);
		if (t1 / 1000 >= next_sample) {
			exp_sample_subflows(out, fd, mptcp);
			next_sample = t1 / 1000 + EXP_SAMPLE_MS;
		}
		if (trace && exp_trace_printf(trace, "%u,%llu,%u\n", seq,
					      (unsigned long long)(t1 / 1000 - out->start_mono_ms),
					      rtts[seq]))
			trace = NULL; /* trace cap reached: keep measuring */
	}
	free(tx);
	free(rx);
	return seq;
}

static void echo_subflows(int fd, int mptcp, const struct echo_target *t, struct exp_out *out)
{
	struct agent_mptcp_state st;
	Fjord__V1__Result *r = out->result;
	size_t i;

	if (agent_mptcp_subflows(fd, mptcp, out->arena, &r->subflows, &r->n_subflows,
				 EXP_MAX_SUBFLOWS, &st) < 0)
		return;
	for (i = 0; i < r->n_subflows; i++) {
		/* Label subflows of the run's path with its ISPs. */
		if (r->subflows[i]->remote_address &&
		    strcmp(r->subflows[i]->remote_address, t->remote_str) == 0) {
			r->subflows[i]->remote_isp = (char *)(t->remote_isp ? t->remote_isp : "");
			r->subflows[i]->local_isp = (char *)(t->local_isp ? t->local_isp : "");
		}
	}
	if (st.is_mptcp && st.fallback)
		exp_add_event(out, "fallback",
			      "connection fell back to TCP (peer or path did not negotiate MPTCP)",
			      0);
}

static void echo_metrics(uint32_t *rtts, uint32_t done, uint32_t bytes, uint64_t t_start,
			 struct exp_out *out)
{
	uint32_t max = 0, i;

	qsort(rtts, done, sizeof(*rtts), cmp_u32);
	for (i = 0; i < done; i++)
		max = rtts[i] > max ? rtts[i] : max;
	exp_add_metric(out, "rtt_p50_us", percentile(rtts, done, 50));
	exp_add_metric(out, "rtt_p95_us", percentile(rtts, done, 95));
	exp_add_metric(out, "rtt_max_us", max);
	exp_add_metric(out, "messages", done);
	exp_add_metric(out, "bytes", (double)done * bytes);
	exp_add_metric(out, "duration_ms", (double)(fj_mono_ms() - t_start));
}

/* A run without paths still records the path it took. */
static void synth_path(const struct echo_target *t, struct exp_out *out)
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

int exp_echo_run(const Fjord__V1__RunCommand *cmd, const struct exp_env *env, struct exp_out *out)
{
	Fjord__V1__Stack stack = cmd->run->stack;
	struct echo_target t;
	struct exp_trace *trace;
	uint32_t bytes, count, done = 0, *rtts;
	uint64_t t_start = fj_mono_ms();
	char cc[32] = "";
	int fd, mptcp = 0;

	if (stack == FJORD__V1__STACK__STACK_UNSPECIFIED)
		stack = FJORD__V1__STACK__STACK_KERNEL; /* StackSettings: empty = kernel */
	out->result->ok = 1;
	if (echo_params(cmd, out, &bytes, &count) || resolve_target(cmd, env, &t, out)) {
		exp_provenance(out, stack, NULL, cmd, env);
		return 0;
	}
	rtts = calloc(count, sizeof(*rtts));
	trace = exp_trace_new(out, "rtt.csv");
	if (!rtts) {
		exp_provenance(out, stack, NULL, cmd, env);
		return exp_fail(out, "out of memory for %u messages", count);
	}
	fd = echo_connect(cmd, stack, &t, env, out, &mptcp);
	if (fd >= 0) {
		/* Samples at the start and the end bracket the run even when it is short. */
		exp_sample_subflows(out, fd, mptcp);
		done = echo_loop(fd, mptcp, bytes, count, rtts, trace, out);
		exp_sample_subflows(out, fd, mptcp);
		echo_subflows(fd, mptcp, &t, out);
		agent_sock_congestion(fd, cc, sizeof(cc));
		close(fd);
	}
	echo_metrics(rtts, done, bytes, t_start, out);
	free(rtts);
	/* What actually ran: TCP when the kernel had no MPTCP. */
	exp_provenance(out,
		       stack == FJORD__V1__STACK__STACK_KERNEL && !mptcp && fd >= 0
			       ? FJORD__V1__STACK__STACK_TCP
			       : stack,
		       cc[0] ? cc : NULL, cmd, env);
	synth_path(&t, out);
	return 0;
}
