/* Experiment dispatch and the helpers every type shares. */
#include "exp.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_arena.h"
#include "agent_sysinfo.h"
#include "bundled.h"
#include "fj_clock.h"
#include "mptcp_info.h"

static char link_hook[512];

int exp_set_link_hook(const char *tmpl)
{
	if (tmpl && strlen(tmpl) >= sizeof(link_hook))
		return -ENAMETOOLONG;
	snprintf(link_hook, sizeof(link_hook), "%s", tmpl ? tmpl : "");
	return 0;
}

const char *exp_link_hook(void)
{
	const char *e = getenv("FJORD_LINK_HOOK");

	return link_hook[0] ? link_hook : e && e[0] ? e : NULL;
}

static Fjord__V1__Stack run_stack(const Fjord__V1__RunCommand *cmd)
{
	return cmd->run ? cmd->run->stack : FJORD__V1__STACK__STACK_UNSPECIFIED;
}

int exp_check(const Fjord__V1__RunCommand *cmd, char *buf, size_t len)
{
	if (!cmd->run || !cmd->run->id || !cmd->run->id[0]) {
		snprintf(buf, len, "run command without a run id");
		return -EINVAL;
	}
	if (!cmd->spec) {
		snprintf(buf, len, "run command without an experiment spec");
		return -EINVAL;
	}
	if (run_stack(cmd) == FJORD__V1__STACK__STACK_BUNDLED) {
		if (!bundled_enabled(bundled_get())) {
			snprintf(buf, len,
				 "this agent has no bundled stack (neither bundled_tun nor "
				 "bundled_host is configured)");
			return -ENOTSUP;
		}
	}
	switch (cmd->spec->type) {
	case FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_ECHO:
	case FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_BULK:
	case FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_RR:
	case FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_HANDOVER:
	case FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_PROBE:
		break;
	default: {
		const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
			&fjord__v1__experiment_type__descriptor, (int)cmd->spec->type);

		snprintf(buf, len, "experiment type %s is not supported by this agent",
			 v ? v->name : "unknown");
		return -ENOTSUP;
	}
	}
	return 0;
}

int exp_run(const Fjord__V1__RunCommand *cmd, const struct exp_env *env, struct exp_out *out)
{
	char why[256];

	out->start_mono_ms = fj_mono_ms();
	if (exp_check(cmd, why, sizeof(why)) < 0)
		return exp_fail(out, "%s", why);
	switch (cmd->spec->type) {
	case FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_BULK:
		return exp_bulk_run(cmd, env, out);
	case FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_RR:
		return exp_rr_run(cmd, env, out);
	case FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_HANDOVER:
		return exp_handover_run(cmd, env, out);
	case FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_PROBE:
		return exp_probe_run(cmd, env, out);
	default:
		if (run_stack(cmd) == FJORD__V1__STACK__STACK_BUNDLED)
			return exp_bundled_echo(cmd, env, out);
		return exp_echo_run(cmd, env, out);
	}
}

int exp_add_metric(struct exp_out *out, const char *name, double value)
{
	Fjord__V1__Result *r = out->result;
	Fjord__V1__Metric *m;

	if (!r->metrics)
		r->metrics = agent_arena_alloc(out->arena, EXP_MAX_METRICS * sizeof(*r->metrics));
	if (!r->metrics || r->n_metrics >= EXP_MAX_METRICS)
		return -ENOSPC;
	m = agent_arena_alloc(out->arena, sizeof(*m));
	if (!m)
		return -ENOMEM;
	fjord__v1__metric__init(m);
	m->name = agent_arena_strdup(out->arena, name);
	m->value = value;
	r->metrics[r->n_metrics++] = m;
	return m->name ? 0 : -ENOMEM;
}

int exp_add_event(struct exp_out *out, const char *kind, const char *detail, uint32_t subflow)
{
	Fjord__V1__Result *r = out->result;
	Fjord__V1__Event *e;

	if (!r->events)
		r->events = agent_arena_alloc(out->arena, EXP_MAX_EVENTS * sizeof(*r->events));
	if (!r->events || r->n_events >= EXP_MAX_EVENTS)
		return -ENOSPC;
	e = agent_arena_alloc(out->arena, sizeof(*e));
	if (!e)
		return -ENOMEM;
	fjord__v1__event__init(e);
	e->t_ms = fj_wall_ms();
	e->kind = agent_arena_strdup(out->arena, kind);
	e->detail = agent_arena_strdup(out->arena, detail);
	e->subflow_id = subflow;
	r->events[r->n_events++] = e;
	return e->kind && e->detail ? 0 : -ENOMEM;
}

int exp_add_sample(struct exp_out *out, const Fjord__V1__SubflowSample *v)
{
	Fjord__V1__Result *r = out->result;
	Fjord__V1__SubflowSample *smp;

	if (!r->samples)
		r->samples = agent_arena_alloc(out->arena, EXP_MAX_SAMPLES * sizeof(*r->samples));
	if (!r->samples || r->n_samples >= EXP_MAX_SAMPLES)
		return -ENOSPC;
	smp = agent_arena_alloc(out->arena, sizeof(*smp));
	if (!smp)
		return -ENOMEM;
	*smp = *v;
	r->samples[r->n_samples++] = smp;
	return 0;
}

int exp_fail(struct exp_out *out, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	/* The first failure is the cause; later ones are consequences. */
	if (out->result->error && out->result->error[0])
		return 0;
	out->result->ok = 0;
	out->result->error = agent_arena_strdup(out->arena, buf);
	return out->result->error ? 0 : -ENOMEM;
}

struct exp_trace *exp_trace_new(struct exp_out *out, const char *name)
{
	struct exp_trace *t;

	if (out->n_traces >= EXP_MAX_TRACES)
		return NULL;
	t = &out->traces[out->n_traces++];
	memset(t, 0, sizeof(*t));
	snprintf(t->name, sizeof(t->name), "%s", name);
	return t;
}

int exp_trace_printf(struct exp_trace *t, const char *fmt, ...)
{
	char line[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line) || t->len + (size_t)n > EXP_TRACE_MAX)
		return -ENOSPC;
	if (t->len + (size_t)n > t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 4096;
		char *d;

		while (cap < t->len + (size_t)n)
			cap *= 2;
		d = realloc(t->data, cap);
		if (!d)
			return -ENOMEM;
		t->data = d;
		t->cap = cap;
	}
	memcpy(t->data + t->len, line, (size_t)n);
	t->len += (size_t)n;
	return 0;
}

void exp_out_release(struct exp_out *out)
{
	unsigned int i;

	for (i = 0; i < out->n_traces; i++)
		free(out->traces[i].data);
	out->n_traces = 0;
}

int exp_provenance(struct exp_out *out, Fjord__V1__Stack stack, const char *cc,
		   const Fjord__V1__RunCommand *cmd, const struct exp_env *env)
{
	Fjord__V1__Provenance *p = agent_arena_alloc(out->arena, sizeof(*p));
	char buf[128];

	if (!p)
		return -ENOMEM;
	fjord__v1__provenance__init(p);
	p->stack = stack;
	agent_sysinfo_kernel(buf, sizeof(buf));
	p->kernel_version = agent_arena_strdup(out->arena, buf);
	p->stack_version = p->kernel_version;
	p->agent_version = agent_arena_strdup(out->arena, env->agent_version);
	agent_sysinfo_mptcp_sysctls(out->arena, &p->sysctls, &p->n_sysctls);
	if (stack == FJORD__V1__STACK__STACK_KERNEL) {
		if (agent_sysinfo_mptcp_sysctl("scheduler", buf, sizeof(buf)) == 0)
			p->scheduler = agent_arena_strdup(out->arena, buf);
		if (agent_sysinfo_mptcp_sysctl("path_manager", buf, sizeof(buf)) == 0 ||
		    agent_sysinfo_mptcp_sysctl("pm_type", buf, sizeof(buf)) == 0)
			p->path_manager = agent_arena_strdup(out->arena, buf);
		if (agent_sysinfo_mptcp_sysctl("checksum_enabled", buf, sizeof(buf)) == 0)
			p->checksums = strcmp(buf, "0") != 0;
	}
	if (cc)
		p->congestion_control = agent_arena_strdup(out->arena, cc);
	if (cmd->run) {
		/* Borrowed from cmd: it outlives the Result, which is packed before cmd is freed. */
		p->paths = cmd->run->paths;
		p->n_paths = cmd->run->n_paths;
	}
	out->result->provenance = p;
	return 0;
}

int exp_sample_subflows(struct exp_out *out, int fd, int mptcp)
{
	Fjord__V1__Result *r = out->result;
	Fjord__V1__SubflowMetrics **sf = NULL;
	struct agent_mptcp_state st;
	int64_t now = fj_wall_ms();
	size_t n = 0, i;
	int rc;

	if (!r->samples)
		r->samples = agent_arena_alloc(out->arena, EXP_MAX_SAMPLES * sizeof(*r->samples));
	if (!r->samples)
		return -ENOMEM;
	rc = agent_mptcp_subflows(fd, mptcp, out->arena, &sf, &n, EXP_MAX_SUBFLOWS, &st);
	if (rc < 0)
		return rc;
	for (i = 0; i < n && r->n_samples < EXP_MAX_SAMPLES; i++) {
		Fjord__V1__SubflowSample *smp = agent_arena_alloc(out->arena, sizeof(*smp));

		if (!smp)
			return -ENOMEM;
		fjord__v1__subflow_sample__init(smp);
		smp->t_ms = now;
		smp->subflow_id = sf[i]->id;
		smp->bytes_acked = sf[i]->bytes_acked;
		smp->bytes_received = sf[i]->bytes_received;
		smp->srtt_us = sf[i]->srtt_us;
		smp->cwnd = sf[i]->cwnd;
		r->samples[r->n_samples++] = smp;
	}
	return 0;
}

/* The kernel's path manager name: net.mptcp.path_manager, or pm_type on older kernels. */
static int kernel_path_manager(char *buf, size_t len)
{
	if (agent_sysinfo_mptcp_sysctl("path_manager", buf, len) == 0)
		return 0;
	if (agent_sysinfo_mptcp_sysctl("pm_type", buf, len) < 0)
		return -ENOENT;
	snprintf(buf, len, "%s", strcmp(buf, "1") == 0 ? "userspace" : "kernel");
	return 0;
}

static int check_sysctl(struct exp_out *out, const char *what, const char *sysctl, const char *have,
			const char *want)
{
	if (!want || !want[0] || strcmp(have, want) == 0)
		return 0;
	exp_fail(out, "kernel MPTCP %s is '%s' (net.mptcp.%s); the run asks for '%.64s'", what,
		 have, sysctl, want);
	return -EINVAL;
}

int exp_kernel_settings(const Fjord__V1__RunCommand *cmd, int fd, int mptcp, struct exp_out *out)
{
	const Fjord__V1__StackSettings *ss = cmd->spec ? cmd->spec->stack : NULL;
	char have[128];
	int rc;

	if (!ss)
		return 0;
	if (ss->congestion_control && ss->congestion_control[0]) {
		rc = agent_sock_set_congestion(fd, ss->congestion_control);
		if (rc < 0) {
			exp_fail(out, "congestion control '%.64s' not available: %s",
				 ss->congestion_control, strerror(-rc));
			return -EINVAL;
		}
	}
	if (!mptcp)
		return 0;
	if (agent_sysinfo_mptcp_sysctl("scheduler", have, sizeof(have)) == 0 &&
	    check_sysctl(out, "scheduler", "scheduler", have, ss->scheduler))
		return -EINVAL;
	if (kernel_path_manager(have, sizeof(have)) == 0 &&
	    check_sysctl(out, "path manager", "path_manager", have, ss->path_manager))
		return -EINVAL;
	if (ss->checksums &&
	    agent_sysinfo_mptcp_sysctl("checksum_enabled", have, sizeof(have)) == 0 &&
	    strcmp(have, "0") == 0) {
		exp_fail(out, "the run asks for MPTCP checksums; net.mptcp.checksum_enabled is 0");
		return -EINVAL;
	}
	return 0;
}
