/*
 * EXPERIMENT_TYPE_RR: request/response transactions for a duration, one
 * outstanding at a time: the client sends request_bytes, the responder answers
 * each complete request with response_bytes. With rate_per_s, requests start
 * on a fixed schedule (a late response delays the next one, counted as
 * late_starts); without, back to back. Latency is from the request's first
 * byte sent to the response's last byte received.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exp.h"
#include "exp_pcap.h"
#include "exp_sock.h"
#include "fj_clock.h"
#include "mptcp_info.h"
#include "sampler.h"

#define RR_MAX_DURATION_S   3600
#define RR_MAX_RATE	    100000
#define RR_MAX_TRANSACTIONS 1000000
#define RR_SLACK_MS	    300

static int rr_params(const Fjord__V1__RrParams *p, struct exp_out *out)
{
	if (!p) {
		exp_fail(out, "rr: missing (request_bytes, response_bytes, duration_s are needed)");
		return -EINVAL;
	}
	if (!p->request_bytes || p->request_bytes > AGENT_RESP_MAX_RR_BYTES) {
		exp_fail(out, "rr.request_bytes must be 1..%u (got %u)", AGENT_RESP_MAX_RR_BYTES,
			 p->request_bytes);
		return -EINVAL;
	}
	if (!p->response_bytes || p->response_bytes > AGENT_RESP_MAX_RR_BYTES) {
		exp_fail(out, "rr.response_bytes must be 1..%u (got %u)", AGENT_RESP_MAX_RR_BYTES,
			 p->response_bytes);
		return -EINVAL;
	}
	if (!p->duration_s || p->duration_s > RR_MAX_DURATION_S) {
		exp_fail(out, "rr.duration_s must be 1..%u (got %u)", RR_MAX_DURATION_S,
			 p->duration_s);
		return -EINVAL;
	}
	if (p->rate_per_s > RR_MAX_RATE) {
		exp_fail(out, "rr.rate_per_s must be at most %u (got %u)", RR_MAX_RATE,
			 p->rate_per_s);
		return -EINVAL;
	}
	return 0;
}

struct rr_state {
	int fd;
	struct sampler *smp;
	const struct exp_env *env;
};

/* Waits for ev on the socket while sampling; 0, or -ETIMEDOUT at the run's deadline. */
static int rr_wait(struct rr_state *s, short ev, uint64_t until_mono)
{
	for (;;) {
		struct pollfd pfd = { .fd = s->fd, .events = ev };
		uint64_t now = fj_mono_ms(), left = exp_left_ms(s->env);
		unsigned int next = sampler_tick(s->smp);
		int timeout;

		if (left <= RR_SLACK_MS)
			return -ETIMEDOUT;
		timeout = (int)(left - RR_SLACK_MS);
		if (next < (unsigned int)timeout)
			timeout = (int)next;
		if (until_mono) {
			if (now >= until_mono)
				return 0;
			if (until_mono - now < (uint64_t)timeout)
				timeout = (int)(until_mono - now);
		}
		if (poll(&pfd, 1, timeout) < 0 && errno != EINTR)
			return -errno;
		if (!until_mono && pfd.revents)
			return 0;
	}
}

static int rr_io(struct rr_state *s, uint8_t *buf, size_t len, int sending)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = sending ? send(s->fd, buf + done, len - done, MSG_NOSIGNAL)
				    : recv(s->fd, buf + done, len - done, 0);
		int rc;

		if (n > 0) {
			done += (size_t)n;
			continue;
		}
		if (n == 0)
			return -ECONNRESET;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		rc = rr_wait(s, sending ? POLLOUT : POLLIN, 0);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static void rr_metrics(uint32_t *lat, uint32_t n, uint64_t dur_ms, uint32_t late,
		       struct exp_out *out)
{
	if (n)
		qsort(lat, n, sizeof(*lat), exp_cmp_u32);
	exp_add_metric(out, "transactions", n);
	exp_add_metric(out, "transactions_per_s", dur_ms ? (double)n * 1000.0 / (double)dur_ms : 0);
	exp_add_metric(out, "latency_p50_us", exp_percentile(lat, n, 50));
	exp_add_metric(out, "latency_p90_us", exp_percentile(lat, n, 90));
	exp_add_metric(out, "latency_p99_us", exp_percentile(lat, n, 99));
	exp_add_metric(out, "latency_max_us", n ? lat[n - 1] : 0);
	exp_add_metric(out, "late_starts", late);
	exp_add_metric(out, "duration_ms", (double)dur_ms);
}

int exp_rr_run(const Fjord__V1__RunCommand *cmd, const struct exp_env *env, struct exp_out *out)
{
	const Fjord__V1__RrParams *p = cmd->spec->rr;
	Fjord__V1__Stack stack = exp_stack(cmd);
	struct agent_resp_request q = { .type = AGENT_RESP_RR };
	struct agent_resp_reply reply;
	struct exp_target t;
	struct exp_trace *trace, *csv;
	struct sampler smp;
	struct exp_pcap *cap = NULL;
	struct rr_state s = { -1, &smp, env };
	uint8_t *req = NULL, *rsp = NULL;
	uint32_t *lat = NULL, n = 0, late = 0;
	uint64_t t0 = 0, t_end = 0, next_start;
	unsigned int interval;
	char cc[32] = "";
	int mptcp = 0, rc = 0;

	out->result->ok = 1;
	memset(&t, 0, sizeof(t));
	if (rr_params(p, out) || sampler_interval(cmd, out, &interval) ||
	    exp_resolve_target(cmd, env, 0, &t, out))
		goto prov;
	if ((uint64_t)p->duration_s * 1000 + 500 > exp_left_ms(env)) {
		exp_fail(out, "rr.duration_s: %u s does not fit the run's deadline (%llu ms left)",
			 p->duration_s, (unsigned long long)exp_left_ms(env));
		goto prov;
	}
	req = calloc(1, p->request_bytes);
	rsp = malloc(p->response_bytes);
	lat = malloc(RR_MAX_TRANSACTIONS * sizeof(*lat));
	if (!req || !rsp || !lat) {
		exp_fail(out, "out of memory");
		goto prov;
	}
	trace = exp_trace_new(out, "rr.csv");
	csv = exp_trace_new(out, "subflows.csv");
	q.request_bytes = p->request_bytes;
	q.response_bytes = p->response_bytes;
	cap = exp_pcap_start(env->responder_port, out);
	s.fd = exp_connect(cmd, stack, &t, env, out, &mptcp);
	if (s.fd < 0)
		goto prov;
	if (exp_handshake(s.fd, &q, &reply, out) < 0)
		goto done;
	fcntl(s.fd, F_SETFL, fcntl(s.fd, F_GETFL) | O_NONBLOCK);
	sampler_init(&smp, out, cmd, s.fd, mptcp, interval, csv);
	sampler_sample(&smp);
	t0 = fj_mono_ms();
	next_start = t0;
	while (n < RR_MAX_TRANSACTIONS) {
		uint64_t a, b;

		if (fj_mono_ms() - t0 >= (uint64_t)p->duration_s * 1000)
			break;
		if (p->rate_per_s) {
			if (fj_mono_ms() > next_start + 1)
				late++;
			else if ((rc = rr_wait(&s, 0, next_start)) < 0)
				break;
			next_start = t0 + (uint64_t)(n + 1) * 1000 / p->rate_per_s;
		}
		a = fj_mono_us();
		rc = rr_io(&s, req, p->request_bytes, 1);
		if (!rc)
			rc = rr_io(&s, rsp, p->response_bytes, 0);
		if (rc)
			break;
		b = fj_mono_us();
		lat[n] = b - a > UINT32_MAX ? UINT32_MAX : (uint32_t)(b - a);
		if (trace &&
		    exp_trace_printf(trace, "%u,%llu,%u\n", n,
				     (unsigned long long)(b / 1000 - out->start_mono_ms), lat[n]))
			trace = NULL;
		n++;
		sampler_tick(&smp);
	}
	t_end = fj_mono_ms();
	if (rc)
		exp_fail(out, "transaction %u: %s", n,
			 rc == -ETIMEDOUT    ? "no response before the run's deadline"
			 : rc == -ECONNRESET ? "connection closed by the responder"
					     : strerror(-rc));
	if (n == RR_MAX_TRANSACTIONS)
		exp_add_event(out, "rr_capped", "stopped at 1000000 transactions", 0);
	sampler_finish(&smp);
	exp_add_metric(out, "subflows_max", smp.max_alive);
done:
	agent_sock_congestion(s.fd, cc, sizeof(cc));
	close(s.fd);
prov:
	exp_pcap_stop(cap, out);
	rr_metrics(lat, lat ? n : 0, t_end > t0 ? t_end - t0 : 0, late, out);
	exp_provenance(out,
		       stack == FJORD__V1__STACK__STACK_KERNEL && s.fd >= 0 && !mptcp
			       ? FJORD__V1__STACK__STACK_TCP
			       : stack,
		       cc[0] ? cc : NULL, cmd, env);
	if (t.remote_str[0])
		exp_synth_path(&t, out);
	free(req);
	free(rsp);
	free(lat);
	return 0;
}
