/*
 * EXPERIMENT_TYPE_ECHO: connect to the server agent's responder, send `count`
 * messages of `message_bytes`, read each echo back, check its bytes and time
 * it. Runs in the runner's child: blocking sockets with timeouts derived from
 * the run's deadline, so a stuck peer gives a clear error before the parent's
 * SIGKILL would.
 */
#include "exp.h"
#include "exp_sock.h"

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
#include "sampler.h"

#define ECHO_DEFAULT_BYTES 64
#define ECHO_DEFAULT_COUNT 10
#define ECHO_MAX_BYTES	   65536
#define ECHO_MAX_COUNT	   100000

static void fill_pattern(uint8_t *buf, size_t len, uint32_t seq)
{
	size_t i;

	for (i = 0; i < len; i++)
		buf[i] = (uint8_t)(seq * 31u + i * 7u + 1u);
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
static uint32_t echo_loop(int fd, int mptcp, unsigned int every_ms, uint32_t bytes, uint32_t count,
			  uint32_t *rtts, struct exp_trace *trace, struct exp_out *out)
{
	uint8_t *tx = malloc(bytes), *rx = malloc(bytes);
	uint64_t next_sample = fj_mono_ms() + every_ms;
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
		rc = exp_send_all(fd, tx, bytes);
		if (rc) {
			exp_fail(out, "sending message %u: %s", seq, strerror(-rc));
			break;
		}
		rc = exp_recv_all(fd, rx, bytes);
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
			next_sample = t1 / 1000 + every_ms;
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

static void echo_subflows(int fd, int mptcp, const struct exp_target *t, struct exp_out *out)
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

	qsort(rtts, done, sizeof(*rtts), exp_cmp_u32);
	for (i = 0; i < done; i++)
		max = rtts[i] > max ? rtts[i] : max;
	exp_add_metric(out, "rtt_p50_us", exp_percentile(rtts, done, 50));
	exp_add_metric(out, "rtt_p95_us", exp_percentile(rtts, done, 95));
	exp_add_metric(out, "rtt_max_us", max);
	exp_add_metric(out, "messages", done);
	exp_add_metric(out, "bytes", (double)done * bytes);
	exp_add_metric(out, "duration_ms", (double)(fj_mono_ms() - t_start));
}

int exp_echo_run(const Fjord__V1__RunCommand *cmd, const struct exp_env *env, struct exp_out *out)
{
	Fjord__V1__Stack stack = exp_stack(cmd);
	struct agent_resp_request q = { .type = AGENT_RESP_ECHO };
	struct agent_resp_reply reply;
	struct exp_target t;
	struct exp_trace *trace;
	uint32_t bytes, count, done = 0, *rtts;
	unsigned int every_ms;
	uint64_t t_start = fj_mono_ms();
	char cc[32] = "";
	int fd, mptcp = 0;

	out->result->ok = 1;
	if (echo_params(cmd, out, &bytes, &count) || sampler_interval(cmd, out, &every_ms) ||
	    exp_resolve_target(cmd, env, 0, &t, out)) {
		exp_provenance(out, stack, NULL, cmd, env);
		return 0;
	}
	rtts = calloc(count, sizeof(*rtts));
	trace = exp_trace_new(out, "rtt.csv");
	if (!rtts) {
		exp_provenance(out, stack, NULL, cmd, env);
		return exp_fail(out, "out of memory for %u messages", count);
	}
	fd = exp_connect(cmd, stack, &t, env, out, &mptcp);
	if (fd >= 0 && exp_handshake(fd, &q, &reply, out) < 0) {
		close(fd);
		fd = -1;
	}
	if (fd >= 0) {
		/* Samples at the start and the end bracket the run even when it is short. */
		exp_sample_subflows(out, fd, mptcp);
		done = echo_loop(fd, mptcp, every_ms, bytes, count, rtts, trace, out);
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
	exp_synth_path(&t, out);
	return 0;
}
