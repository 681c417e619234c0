/* Per-subflow sampling of kernel sockets, with up/down/fallback events. */
#include "sampler.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agent_arena.h"
#include "fj_clock.h"

int sampler_interval(const Fjord__V1__RunCommand *cmd, struct exp_out *out, unsigned int *ms)
{
	uint32_t v = cmd->spec ? cmd->spec->sample_interval_ms : 0;

	*ms = v ? v : EXP_SAMPLE_MS;
	if (*ms < SAMPLER_MIN_INTERVAL || *ms > SAMPLER_MAX_INTERVAL) {
		exp_fail(out, "sample_interval_ms must be %u..%u (got %u)", SAMPLER_MIN_INTERVAL,
			 SAMPLER_MAX_INTERVAL, v);
		return -EINVAL;
	}
	return 0;
}

void sampler_init(struct sampler *s, struct exp_out *out, const Fjord__V1__RunCommand *cmd, int fd,
		  int mptcp, unsigned int interval_ms, struct exp_trace *csv)
{
	memset(s, 0, sizeof(*s));
	s->out = out;
	s->cmd = cmd;
	s->fd = fd;
	s->mptcp = mptcp;
	s->interval_ms = interval_ms;
	s->csv = csv;
	if (csv && csv->len == 0)
		exp_trace_printf(csv, "t_ms,subflow_id,local,lport,remote,rport,bytes_acked,"
				      "bytes_received,goodput_bps,srtt_us,cwnd,retrans\n");
}

static struct sampler_sf *find_sf(struct sampler *s, const struct agent_subflow_raw *r)
{
	unsigned int i;

	for (i = 0; i < s->n_sf; i++) {
		const struct agent_subflow_raw *l = &s->sf[i].last;

		if (l->lport == r->lport && l->rport == r->rport && !strcmp(l->local, r->local) &&
		    !strcmp(l->remote, r->remote))
			return &s->sf[i];
	}
	return NULL;
}

static struct sampler_sf *find_sf_noport(struct sampler *s, const struct agent_subflow_raw *r)
{
	unsigned int i;

	for (i = 0; i < s->n_sf; i++) {
		const struct agent_subflow_raw *l = &s->sf[i].last;

		if (l->lport == r->lport && !strcmp(l->local, r->local) &&
		    !strcmp(l->remote, r->remote))
			return &s->sf[i];
	}
	return NULL;
}

static void sf_event(struct sampler *s, const char *kind, const struct sampler_sf *f)
{
	char d[160];

	snprintf(d, sizeof(d), "%s:%u -> %s:%u", f->last.local, f->last.lport, f->last.remote,
		 f->last.rport);
	exp_add_event(s->out, kind, d, f->id);
}

static void add_sample(struct sampler *s, const struct sampler_sf *f, int64_t now)
{
	Fjord__V1__SubflowSample smp = FJORD__V1__SUBFLOW_SAMPLE__INIT;

	smp.t_ms = now;
	smp.subflow_id = f->id;
	smp.bytes_acked = f->last.bytes_acked;
	smp.bytes_received = f->last.bytes_received;
	smp.srtt_us = f->last.srtt_us;
	smp.cwnd = f->last.cwnd;
	if (exp_add_sample(s->out, &smp))
		s->samples_dropped++;
}

int sampler_sample(struct sampler *s)
{
	struct agent_subflow_raw raw[AGENT_MPTCP_MAX_SUBFLOWS];
	int seen[SAMPLER_MAX_SF] = { 0 };
	uint64_t mono = fj_mono_ms();
	int64_t now = fj_wall_ms();
	unsigned int i, alive = 0;
	size_t n = 0;
	int rc;

	rc = agent_mptcp_snapshot(s->fd, s->mptcp, raw, &n, &s->st);
	if (rc < 0)
		return rc;
	if (s->st.is_mptcp && s->st.fallback && !s->fallback_seen) {
		s->fallback_seen = 1;
		exp_add_event(s->out, "fallback",
			      "connection fell back to TCP (peer or path did not negotiate MPTCP)",
			      0);
	}
	for (i = 0; i < n; i++) {
		struct sampler_sf *f;
		uint64_t bytes = raw[i].bytes_acked + raw[i].bytes_received, delta;
		double bps;

		int usable = agent_subflow_usable(&raw[i]);

		/* Without addresses (the kernel did not give them) the position is all we have. */
		if (!raw[i].local[0] && !raw[i].remote[0])
			snprintf(raw[i].local, sizeof(raw[i].local), "#%u", i);
		f = find_sf(s, &raw[i]);
		/* A subflow being torn down may report its remote port as 0: still the same one. */
		if (!f && raw[i].rport == 0)
			f = find_sf_noport(s, &raw[i]);
		if (!f) {
			/* Not news while in its handshake (or already gone). */
			if (!usable || raw[i].rport == 0 || s->n_sf >= SAMPLER_MAX_SF)
				continue;
			f = &s->sf[s->n_sf];
			f->id = s->n_sf++;
			f->last = raw[i];
			f->prev_bytes = 0;
			/* The first subflow is the connection itself, not news. */
			if (f->id > 0)
				sf_event(s, "subflow_up", f);
		} else if (!f->alive && usable) {
			sf_event(s, "subflow_up", f);
		}
		/* Counters always (a closing subflow's are its final ones); its name stays. */
		{
			struct agent_subflow_raw named = f->last;

			f->last = raw[i];
			memcpy(f->last.local, named.local, sizeof(named.local));
			memcpy(f->last.remote, named.remote, sizeof(named.remote));
			f->last.lport = named.lport;
			f->last.rport = named.rport;
		}
		/* A closing subflow still gets its sample: those are its final counters. */
		if (usable) {
			f->alive = 1;
			seen[f - s->sf] = 1;
		}
		delta = bytes > f->prev_bytes ? bytes - f->prev_bytes : 0;
		bps = s->prev_ms && mono > s->prev_ms
			      ? (double)delta * 8000.0 / (double)(mono - s->prev_ms)
			      : 0;
		f->prev_bytes = bytes;
		add_sample(s, f, now);
		if (s->csv &&
		    exp_trace_printf(s->csv, "%llu,%u,%s,%u,%s,%u,%llu,%llu,%.0f,%u,%u,%u\n",
				     (unsigned long long)(mono - s->out->start_mono_ms), f->id,
				     f->last.local, f->last.lport, f->last.remote, f->last.rport,
				     (unsigned long long)f->last.bytes_acked,
				     (unsigned long long)f->last.bytes_received, bps,
				     f->last.srtt_us, f->last.cwnd, f->last.retrans))
			s->csv = NULL; /* trace cap reached: keep measuring */
	}
	for (i = 0; i < s->n_sf; i++) {
		if (s->sf[i].alive && !seen[i]) {
			s->sf[i].alive = 0;
			/* At the end every subflow closes with the connection: no news. */
			if (!s->finishing)
				sf_event(s, "subflow_down", &s->sf[i]);
		}
		alive += s->sf[i].alive;
	}
	if (alive > s->max_alive)
		s->max_alive = alive;
	s->prev_ms = mono;
	s->next_ms = mono + s->interval_ms;
	return 0;
}

unsigned int sampler_tick(struct sampler *s)
{
	uint64_t now = fj_mono_ms();

	if (now >= s->next_ms) {
		sampler_sample(s);
		now = fj_mono_ms();
	}
	return s->next_ms > now ? (unsigned int)(s->next_ms - now) : 0;
}

unsigned int sampler_alive(const struct sampler *s)
{
	unsigned int i, n = 0;

	for (i = 0; i < s->n_sf; i++)
		n += s->sf[i].alive;
	return n;
}

/* The ISPs of the run path whose addresses match the subflow's. */
static void label(const Fjord__V1__RunCommand *cmd, Fjord__V1__SubflowMetrics *m)
{
	size_t i;

	for (i = 0; cmd && cmd->run && i < cmd->run->n_paths; i++) {
		const Fjord__V1__Path *p = cmd->run->paths[i];
		size_t ll = p->local_address ? strcspn(p->local_address, "/") : 0;
		size_t rl = p->remote_address ? strcspn(p->remote_address, "/") : 0;

		if (ll && strlen(m->local_address) == ll &&
		    !strncmp(p->local_address, m->local_address, ll))
			m->local_isp = p->local_isp;
		if (rl && strlen(m->remote_address) == rl &&
		    !strncmp(p->remote_address, m->remote_address, rl))
			m->remote_isp = p->remote_isp;
	}
}

void sampler_finish(struct sampler *s)
{
	Fjord__V1__Result *r = s->out->result;
	unsigned int i;

	s->finishing = 1;
	sampler_sample(s);
	if (s->samples_dropped) {
		char d[96];

		snprintf(d, sizeof(d), "%llu samples beyond the cap of %u are only in the trace",
			 (unsigned long long)s->samples_dropped, EXP_MAX_SAMPLES);
		exp_add_event(s->out, "samples_capped", d, 0);
	}
	r->subflows = agent_arena_alloc(s->out->arena, (s->n_sf + 1) * sizeof(*r->subflows));
	r->n_subflows = 0;
	for (i = 0; r->subflows && i < s->n_sf; i++) {
		const struct agent_subflow_raw *l = &s->sf[i].last;
		Fjord__V1__SubflowMetrics *m = agent_arena_alloc(s->out->arena, sizeof(*m));

		if (!m)
			return;
		fjord__v1__subflow_metrics__init(m);
		m->id = s->sf[i].id;
		m->local_address = agent_arena_strdup(s->out->arena, l->local);
		m->remote_address = agent_arena_strdup(s->out->arena, l->remote);
		if (!m->local_address || !m->remote_address)
			return;
		m->bytes_sent = l->bytes_sent;
		m->bytes_acked = l->bytes_acked;
		m->bytes_received = l->bytes_received;
		m->retransmissions = l->retrans;
		m->srtt_us = l->srtt_us;
		m->rttvar_us = l->rttvar_us;
		m->cwnd = l->cwnd;
		m->ssthresh = l->ssthresh;
		label(s->cmd, m);
		r->subflows[r->n_subflows++] = m;
	}
}
