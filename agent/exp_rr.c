/*
 * EXPERIMENT_TYPE_RR: request/response transactions for a duration, one
 * outstanding at a time: the client sends request_bytes, the responder answers
 * each complete request with response_bytes. With rate_per_s, requests start
 * on a fixed schedule (a late response delays the next one, counted as
 * late_starts); without, back to back. Latency is from the request's first
 * byte sent to the response's last byte received.
 *
 * A handover run with an rr workload (HandoverParams.rr) is the same with the
 * run's link events fired on their schedule (exp_link.h), and metrics split
 * by when each transaction started: before the first "down", during the
 * outage (up to the first "up" after it), and after it.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bundled.h"
#include "exp.h"
#include "exp_link.h"
#include "exp_pcap.h"
#include "exp_sock.h"
#include "fj_clock.h"
#include "mptcp_info.h"
#include "sampler.h"

#define RR_MAX_DURATION_S   3600
#define RR_MAX_RATE	    100000
#define RR_MAX_TRANSACTIONS 1000000
#define RR_SLACK_MS	    300

/* field: "rr", or "handover.rr" for the workload of a handover run. */
static int rr_params(const Fjord__V1__RrParams *p, const char *field, struct exp_out *out)
{
	if (!p) {
		exp_fail(out, "%s: missing (request_bytes, response_bytes, duration_s are needed)",
			 field);
		return -EINVAL;
	}
	if (!p->request_bytes || p->request_bytes > AGENT_RESP_MAX_RR_BYTES) {
		exp_fail(out, "%s.request_bytes must be 1..%u (got %u)", field,
			 AGENT_RESP_MAX_RR_BYTES, p->request_bytes);
		return -EINVAL;
	}
	if (!p->response_bytes || p->response_bytes > AGENT_RESP_MAX_RR_BYTES) {
		exp_fail(out, "%s.response_bytes must be 1..%u (got %u)", field,
			 AGENT_RESP_MAX_RR_BYTES, p->response_bytes);
		return -EINVAL;
	}
	if (!p->duration_s || p->duration_s > RR_MAX_DURATION_S) {
		exp_fail(out, "%s.duration_s must be 1..%u (got %u)", field, RR_MAX_DURATION_S,
			 p->duration_s);
		return -EINVAL;
	}
	if (p->rate_per_s > RR_MAX_RATE) {
		exp_fail(out, "%s.rate_per_s must be at most %u (got %u)", field, RR_MAX_RATE,
			 p->rate_per_s);
		return -EINVAL;
	}
	return 0;
}

struct rr_state {
	int fd;
	struct sampler *smp;
	const struct exp_env *env;
	struct exp_link_sched *ls; /* handover, or NULL */
	struct exp_out *out;
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
		if (s->ls) {
			/* Link events fire on time even while a response is late. */
			uint32_t nl = exp_link_run_due(s->ls, s->out);

			exp_link_reap(s->ls, s->out, 0);
			if (nl < (uint32_t)timeout)
				timeout = (int)nl;
		}
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

/* Nearest-rank percentile of the latencies of transactions [a, b) in start order. */
static uint32_t phase_pct(const uint32_t *lat, uint32_t a, uint32_t b, unsigned int pct,
			  uint32_t *tmp)
{
	uint32_t n = b > a ? b - a : 0;

	if (!n)
		return 0;
	memcpy(tmp, lat + a, n * sizeof(*tmp));
	qsort(tmp, n, sizeof(*tmp), exp_cmp_u32);
	return (uint32_t)exp_percentile(tmp, n, pct);
}

/* The handover's figures; lat and done_ms in transaction order, done_ms from t0. */
struct rr_ho {
	uint32_t *start_ms, *done_ms; /* per transaction, ms after t0 */
};

/*
 * Handover metrics: link_events; stall_ms, the longest time without a
 * transaction completing (from the start, between two, to the end); and from
 * the first "down" on: transactions and latency percentiles before it, during
 * the outage (started before the first "up" after it) and after it;
 * recover_ms, from the down to the end of the last transaction after it whose
 * latency was above max(2 x p50 before, p99 before), when one within that
 * bound followed it (recovered); 0 when none was slow.
 */
static void rr_handover_metrics(const struct exp_link_sched *ls, const struct rr_ho *h,
				const uint32_t *lat, uint32_t n, uint64_t t0, uint64_t dur_ms,
				struct exp_out *out)
{
	uint32_t *tmp = n ? malloc(n * sizeof(*tmp)) : NULL;
	uint64_t down_ms, up_ms = UINT64_MAX, prev = 0, stall = 0;
	uint32_t i, a = n, b = n, base, bound;
	int64_t recover = -1;
	unsigned int e;

	exp_add_metric(out, "link_events", ls->during);
	for (i = 0; i < n; i++) {
		if (h->done_ms[i] - prev > stall)
			stall = h->done_ms[i] - prev;
		prev = h->done_ms[i];
	}
	if (dur_ms > prev && dur_ms - prev > stall)
		stall = dur_ms - prev;
	exp_add_metric(out, "stall_ms", (double)stall);
	if (ls->first_down_ms < 0 || (n && !tmp)) {
		free(tmp);
		return;
	}
	down_ms = (uint64_t)ls->first_down_ms - t0;
	/* The outage ends with the first "up" after the first "down" that fired in the run. */
	for (e = 0; e < ls->during; e++)
		if (!strcmp(ls->ev[e].action, "up") && ls->ev[e].at_ms >= down_ms &&
		    ls->ev[e].at_ms < up_ms)
			up_ms = ls->ev[e].at_ms;
	for (i = 0; i < n; i++) {
		if (a == n && h->start_ms[i] >= down_ms)
			a = i;
		if (b == n && h->start_ms[i] >= up_ms)
			b = i;
	}
	if (b < a)
		b = a;
	exp_add_metric(out, "transactions_before", a);
	exp_add_metric(out, "transactions_during", b - a);
	exp_add_metric(out, "transactions_after", n - b);
	base = phase_pct(lat, 0, a, 50, tmp);
	bound = phase_pct(lat, 0, a, 99, tmp);
	exp_add_metric(out, "latency_before_p50_us", base);
	exp_add_metric(out, "latency_during_p50_us", phase_pct(lat, a, b, 50, tmp));
	exp_add_metric(out, "latency_during_p99_us", phase_pct(lat, a, b, 99, tmp));
	exp_add_metric(out, "latency_during_max_us", phase_pct(lat, a, b, 100, tmp));
	exp_add_metric(out, "latency_after_p50_us", phase_pct(lat, b, n, 50, tmp));
	exp_add_metric(out, "latency_after_p99_us", phase_pct(lat, b, n, 99, tmp));
	if (bound < 2 * base)
		bound = 2 * base;
	/*
	 * Recovered once latencies are back within the bound for good: at the
	 * end of the last slow transaction after the down (0 when none was
	 * slow), provided a transaction completed within the bound after it.
	 */
	if (a > 0) {
		uint32_t last_slow = n;

		for (i = a; i < n; i++)
			if (lat[i] > bound)
				last_slow = i;
		if (last_slow == n && a < n)
			recover = 0;
		else if (last_slow + 1 < n)
			recover = (int64_t)h->done_ms[last_slow] - (int64_t)down_ms;
	}
	exp_add_metric(out, "recovered", recover >= 0);
	if (recover >= 0)
		exp_add_metric(out, "recover_ms", (double)(recover > 0 ? recover : 0));
	free(tmp);
}

struct bundled_rr_out {
	struct exp_bundled_rr rr;
	struct exp_bundled_res res;
};

/* The transactions on the bundled stack (exp_bundled.c), into lat and h as the kernel's. */
static void bundled_rr(const Fjord__V1__RunCommand *cmd, const struct exp_env *env,
		       struct exp_out *out, const Fjord__V1__RrParams *p, struct exp_link_sched *ls,
		       struct rr_ho *h, uint32_t *lat, struct exp_trace *trace,
		       struct exp_trace *csv, unsigned int interval, struct bundled_rr_out *br)
{
	struct exp_bundled_rr *r = &br->rr;

	r->request_bytes = p->request_bytes;
	r->response_bytes = p->response_bytes;
	r->rate_per_s = p->rate_per_s;
	r->duration_ms = (uint64_t)p->duration_s * 1000;
	r->interval_ms = interval;
	r->max = RR_MAX_TRANSACTIONS;
	r->lat = lat;
	r->start_ms = h->start_ms;
	r->done_ms = h->done_ms;
	r->links = ls;
	r->trace = trace;
	r->csv = csv;
	exp_bundled_rr_run(cmd, env, out, r, &br->res);
	if (r->n == RR_MAX_TRANSACTIONS)
		exp_add_event(out, "rr_capped", "stopped at 1000000 transactions", 0);
}

static int rr_common(const Fjord__V1__RunCommand *cmd, const struct exp_env *env,
		     struct exp_out *out, const Fjord__V1__RrParams *p, const char *field,
		     const Fjord__V1__HandoverParams *ho)
{
	Fjord__V1__Stack stack = exp_stack(cmd);
	struct agent_resp_request q = { .type = AGENT_RESP_RR };
	struct agent_resp_reply reply;
	struct exp_target t;
	struct exp_trace *trace, *csv;
	struct sampler smp;
	struct exp_pcap *cap = NULL;
	struct exp_link_sched *ls = NULL;
	struct rr_ho h = { NULL, NULL };
	struct rr_state s = { -1, &smp, env, NULL, out };
	uint8_t *req = NULL, *rsp = NULL;
	uint32_t *lat = NULL, n = 0, late = 0;
	uint64_t t0 = 0, t_end = 0, next_start;
	struct bundled_rr_out br;
	unsigned int interval;
	char cc[32] = "";
	int mptcp = 0, rc = 0;

	out->result->ok = 1;
	memset(&t, 0, sizeof(t));
	memset(&br, 0, sizeof(br));
	if (rr_params(p, field, out) || sampler_interval(cmd, out, &interval))
		goto prov;
	if (ho) {
		ls = calloc(1, sizeof(*ls));
		if (!ls) {
			exp_fail(out, "out of memory");
			goto prov;
		}
		if (exp_link_prepare(cmd, ho, ls, out) < 0)
			goto prov;
	}
	if (exp_resolve_target(cmd, env, 0, &t, out))
		goto prov;
	if ((uint64_t)p->duration_s * 1000 + 500 > exp_left_ms(env)) {
		exp_fail(out, "%s.duration_s: %u s does not fit the run's deadline (%llu ms left)",
			 field, p->duration_s, (unsigned long long)exp_left_ms(env));
		goto prov;
	}
	req = calloc(1, p->request_bytes);
	rsp = malloc(p->response_bytes);
	lat = malloc(RR_MAX_TRANSACTIONS * sizeof(*lat));
	if (ls) {
		h.start_ms = malloc(RR_MAX_TRANSACTIONS * sizeof(*h.start_ms));
		h.done_ms = malloc(RR_MAX_TRANSACTIONS * sizeof(*h.done_ms));
	}
	if (!req || !rsp || !lat || (ls && (!h.start_ms || !h.done_ms))) {
		exp_fail(out, "out of memory");
		goto prov;
	}
	trace = exp_trace_new(out, "rr.csv");
	csv = exp_trace_new(out, "subflows.csv");
	if (stack == FJORD__V1__STACK__STACK_BUNDLED) {
		bundled_rr(cmd, env, out, p, ls, &h, lat, trace, csv, interval, &br);
		n = br.rr.n;
		late = br.rr.late;
		t0 = br.rr.t0;
		t_end = br.rr.t_end;
		goto prov;
	}
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
	if (ls) {
		ls->t0 = t0;
		s.ls = ls;
		exp_link_run_due(ls, out);
	}
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
		if (ls)
			exp_link_run_due(ls, out);
		a = fj_mono_us();
		rc = rr_io(&s, req, p->request_bytes, 1);
		if (!rc)
			rc = rr_io(&s, rsp, p->response_bytes, 0);
		if (rc)
			break;
		b = fj_mono_us();
		lat[n] = b - a > UINT32_MAX ? UINT32_MAX : (uint32_t)(b - a);
		if (ls) {
			h.start_ms[n] = (uint32_t)(a / 1000 - t0);
			h.done_ms[n] = (uint32_t)(b / 1000 - t0);
		}
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
	/* A link is never left down, whatever ended the run. */
	if (ls && ls->t0)
		exp_link_finish(ls, out);
	exp_pcap_stop(cap, out);
	if (ls && ls->t0 && lat)
		rr_handover_metrics(ls, &h, lat, n, t0, t_end > t0 ? t_end - t0 : 0, out);
	rr_metrics(lat, lat ? n : 0, t_end > t0 ? t_end - t0 : 0, late, out);
	if (stack == FJORD__V1__STACK__STACK_BUNDLED) {
		exp_add_metric(out, "subflows_max", br.res.max_subflows);
		exp_add_metric(out, "fallback", br.res.fallback);
		exp_provenance(out, stack, br.res.cc[0] ? br.res.cc : "lia", cmd, env);
		exp_bundled_provenance(out, &br.res);
	} else {
		exp_provenance(out,
			       stack == FJORD__V1__STACK__STACK_KERNEL && s.fd >= 0 && !mptcp
				       ? FJORD__V1__STACK__STACK_TCP
				       : stack,
			       cc[0] ? cc : NULL, cmd, env);
		if (t.remote_str[0])
			exp_synth_path(&t, out);
	}
	free(req);
	free(rsp);
	free(lat);
	free(h.start_ms);
	free(h.done_ms);
	free(ls);
	return 0;
}

int exp_rr_run(const Fjord__V1__RunCommand *cmd, const struct exp_env *env, struct exp_out *out)
{
	return rr_common(cmd, env, out, cmd->spec->rr, "rr", NULL);
}

int exp_rr_handover_run(const Fjord__V1__RunCommand *cmd, const struct exp_env *env,
			struct exp_out *out)
{
	const Fjord__V1__HandoverParams *h = cmd->spec->handover;

	if (h && h->bulk && h->rr) {
		out->result->ok = 1;
		exp_fail(out,
			 "handover: bulk and rr are both set (a handover run has one workload)");
		exp_provenance(out, exp_stack(cmd), NULL, cmd, env);
		return 0;
	}
	if (!h) {
		out->result->ok = 1;
		exp_fail(out, "handover: missing (rr and events are needed)");
		exp_provenance(out, exp_stack(cmd), NULL, cmd, env);
		return 0;
	}
	return rr_common(cmd, env, out, h->rr, "handover.rr", h);
}
