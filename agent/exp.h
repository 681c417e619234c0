/*
 * Experiment types, run inside the runner's child process (blocking code is
 * fine there: the agent's loop is in the parent). Each type fills a Result and
 * may add trace files; the runner writes both to the spool.
 */
#ifndef AGENT_EXP_H
#define AGENT_EXP_H

#include <stddef.h>
#include <stdint.h>

#include "fjord.pb-c.h"

struct agent_arena;

#define EXP_MAX_METRICS	 128
#define EXP_MAX_EVENTS	 128
#define EXP_MAX_SUBFLOWS 8
#define EXP_MAX_SAMPLES	 6000 /* ~250 KB packed: well inside a 1 MiB upload */
#define EXP_SAMPLE_MS	 100
#define EXP_MAX_TRACES	 4
#define EXP_TRACE_MAX	 (8u << 20)

struct exp_trace {
	char name[65];
	char *data;
	size_t len, cap;
};

struct exp_env {
	unsigned int responder_port;
	uint64_t deadline_mono_ms; /* finish before this (fj_mono_ms scale) */
	const char *agent_version;
};

/*
 * Handover: the command template that takes a link down or up
 * ("fjord-testbed set {site}/{isp} {action}"), set once at start (the runner's
 * children inherit it). Unset: FJORD_LINK_HOOK from the environment, and
 * without that the agent withdraws and re-adds `ip mptcp endpoint`s.
 * Returns 0 or -ENAMETOOLONG.
 */
int exp_set_link_hook(const char *tmpl);
const char *exp_link_hook(void);

struct exp_out {
	struct agent_arena *arena;
	Fjord__V1__Result *result; /* run_id and started_ms already set */
	struct exp_trace traces[EXP_MAX_TRACES];
	unsigned int n_traces;
	uint64_t start_mono_ms;
};

/*
 * Runs cmd's experiment. The Result says whether it worked (ok, error);
 * the return value is 0 unless the Result itself could not be built.
 */
int exp_run(const Fjord__V1__RunCommand *cmd, const struct exp_env *env, struct exp_out *out);

/*
 * Checks, before forking, whether this agent can run cmd at all. Returns 0, or
 * -EINVAL / -ENOTSUP with a reason in buf ("this agent has no bundled stack
 * (neither bundled_tun nor bundled_host is configured)").
 */
int exp_check(const Fjord__V1__RunCommand *cmd, char *buf, size_t len);

/* Helpers for experiment types. All memory comes from out->arena. */
int exp_add_metric(struct exp_out *out, const char *name, double value);
int exp_add_event(struct exp_out *out, const char *kind, const char *detail, uint32_t subflow);
/* A copy of one per-subflow sample; -ENOSPC past EXP_MAX_SAMPLES, -ENOMEM. */
int exp_add_sample(struct exp_out *out, const Fjord__V1__SubflowSample *v);
int exp_fail(struct exp_out *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
struct exp_trace *exp_trace_new(struct exp_out *out, const char *name);
int exp_trace_printf(struct exp_trace *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void exp_out_release(struct exp_out *out);
/*
 * Appends one SubflowSample per subflow of the connected socket fd (made with
 * IPPROTO_MPTCP if mptcp) to the Result, at most EXP_MAX_SAMPLES in all.
 */
int exp_sample_subflows(struct exp_out *out, int fd, int mptcp);
/*
 * Applies the run's StackSettings to a kernel socket: congestion control per
 * socket; scheduler, path manager and checksums are per network namespace
 * (net.mptcp.*), so a run asking for other values than the system's fails
 * rather than measure something else. 0, or -EINVAL after exp_fail().
 */
int exp_kernel_settings(const Fjord__V1__RunCommand *cmd, int fd, int mptcp, struct exp_out *out);
/* Fills Provenance: stack, kernel, net.mptcp sysctls, agent version, paths. */
int exp_provenance(struct exp_out *out, Fjord__V1__Stack stack, const char *cc,
		   const Fjord__V1__RunCommand *cmd, const struct exp_env *env);

/* The types: exp_echo.c, exp_bulk.c (bulk, its baseline, handover), exp_rr.c, exp_probe.c. */
int exp_echo_run(const Fjord__V1__RunCommand *cmd, const struct exp_env *env, struct exp_out *out);
int exp_bulk_run(const Fjord__V1__RunCommand *cmd, const struct exp_env *env, struct exp_out *out);
int exp_handover_run(const Fjord__V1__RunCommand *cmd, const struct exp_env *env,
		     struct exp_out *out);
int exp_rr_run(const Fjord__V1__RunCommand *cmd, const struct exp_env *env, struct exp_out *out);
int exp_probe_run(const Fjord__V1__RunCommand *cmd, const struct exp_env *env, struct exp_out *out);

#endif
