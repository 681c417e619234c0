/*
 * Scheduler, first half: checking an experiment spec and expanding it into
 * runs. Both are pure functions of their inputs (the spec, the agents known
 * at creation, now and a seed), so a test can predict every run exactly.
 *
 * Expansion order: occurrence (schedule) x target pair x stack x path (when
 * per_path), plus the single-path TCP baseline runs of bulk experiments.
 * Run ids are "<experiment id>.<index>" in that order.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched_priv.h"

static int reject(struct ctl_reject *why, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int reject(struct ctl_reject *why, const char *field, const char *fmt, ...)
{
	va_list ap;

	if (why) {
		snprintf(why->field, sizeof(why->field), "%s", field);
		va_start(ap, fmt);
		vsnprintf(why->message, sizeof(why->message), fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* A bounded, printable string; empty allowed when may_empty. */
static int str_ok(const char *s, size_t max, int may_empty)
{
	size_t i;

	if (!s || (!may_empty && !*s))
		return 0;
	for (i = 0; s[i]; i++)
		if (i >= max || (unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	return 1;
}

/* ---- validation ------------------------------------------------------------ */

static int check_bulk(const Fjord__V1__BulkParams *b, const char *pfx, struct ctl_reject *why)
{
	char f[64];

	if (!b) {
		snprintf(f, sizeof(f), "%s", pfx);
		return reject(why, f, "bulk parameters are required");
	}
	if (!b->bytes && !b->duration_s) {
		snprintf(f, sizeof(f), "%s.bytes", pfx);
		return reject(why, f, "bulk needs bytes or durationS");
	}
	if (b->bytes > SCHED_BULK_MAX_BYTES) {
		snprintf(f, sizeof(f), "%s.bytes", pfx);
		return reject(why, f, "bytes must be at most %llu",
			      (unsigned long long)SCHED_BULK_MAX_BYTES);
	}
	if (b->duration_s > SCHED_MAX_DURATION_S) {
		snprintf(f, sizeof(f), "%s.durationS", pfx);
		return reject(why, f, "durationS must be at most %u", SCHED_MAX_DURATION_S);
	}
	if (b->direction < 0 || b->direction > FJORD__V1__DIRECTION__DIRECTION_DOWNLOAD) {
		snprintf(f, sizeof(f), "%s.direction", pfx);
		return reject(why, f, "direction must be upload or download");
	}
	return 0;
}

static int check_rr(const Fjord__V1__RrParams *rr, const char *pfx, struct ctl_reject *why)
{
	char f[64];

	if (rr->request_bytes < 1 || rr->request_bytes > 65536) {
		snprintf(f, sizeof(f), "%s.requestBytes", pfx);
		return reject(why, f, "requestBytes must be 1..65536");
	}
	if (rr->response_bytes < 1 || rr->response_bytes > 65536) {
		snprintf(f, sizeof(f), "%s.responseBytes", pfx);
		return reject(why, f, "responseBytes must be 1..65536");
	}
	if (rr->rate_per_s < 1 || rr->rate_per_s > 100000) {
		snprintf(f, sizeof(f), "%s.ratePerS", pfx);
		return reject(why, f, "ratePerS must be 1..100000");
	}
	if (rr->duration_s < 1 || rr->duration_s > SCHED_MAX_DURATION_S) {
		snprintf(f, sizeof(f), "%s.durationS", pfx);
		return reject(why, f, "durationS must be 1..%u", SCHED_MAX_DURATION_S);
	}
	return 0;
}

/* The workload is a bulk transfer or request/response transactions, exactly one. */
static int check_handover(const Fjord__V1__HandoverParams *h, struct ctl_reject *why)
{
	char f[64];
	size_t i;
	uint32_t dur_s;
	int err;

	if (h->bulk && h->rr)
		return reject(why, "handover.rr", "give bulk or rr as the workload, not both");
	if (h->rr) {
		err = check_rr(h->rr, "handover.rr", why);
		dur_s = h->rr->duration_s;
	} else {
		err = check_bulk(h->bulk, "handover.bulk", why);
		dur_s = h->bulk ? h->bulk->duration_s : 0;
	}
	if (err)
		return err;
	if (h->n_events > SCHED_MAX_EVENTS)
		return reject(why, "handover.events", "at most %d events", SCHED_MAX_EVENTS);
	for (i = 0; i < h->n_events; i++) {
		const Fjord__V1__LinkEvent *e = h->events[i];

		if (!str_ok(e->isp, SCHED_STR_MAX, 0)) {
			snprintf(f, sizeof(f), "handover.events[%zu].isp", i);
			return reject(why, f, "an ISP label is required");
		}
		if (!e->action || (strcmp(e->action, "down") && strcmp(e->action, "up") &&
				   strcmp(e->action, "backup"))) {
			snprintf(f, sizeof(f), "handover.events[%zu].action", i);
			return reject(why, f, "action must be down, up or backup");
		}
		if (dur_s && e->at_ms > dur_s * 1000u) {
			snprintf(f, sizeof(f), "handover.events[%zu].atMs", i);
			return reject(why, f, "event after the end of the transfer");
		}
	}
	return 0;
}

static int check_params(const Fjord__V1__ExperimentSpec *s, struct ctl_reject *why)
{
	switch (s->type) {
	case FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_ECHO:
		if (s->params_case != FJORD__V1__EXPERIMENT_SPEC__PARAMS_ECHO || !s->echo)
			return reject(why, "echo", "type echo needs echo parameters");
		if (s->echo->message_bytes < 1 || s->echo->message_bytes > 65536)
			return reject(why, "echo.messageBytes", "messageBytes must be 1..65536");
		if (s->echo->count < 1 || s->echo->count > 100000)
			return reject(why, "echo.count", "count must be 1..100000");
		return 0;
	case FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_BULK:
		if (s->params_case != FJORD__V1__EXPERIMENT_SPEC__PARAMS_BULK)
			return reject(why, "bulk", "type bulk needs bulk parameters");
		return check_bulk(s->bulk, "bulk", why);
	case FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_RR:
		if (s->params_case != FJORD__V1__EXPERIMENT_SPEC__PARAMS_RR || !s->rr)
			return reject(why, "rr", "type rr needs rr parameters");
		return check_rr(s->rr, "rr", why);
	case FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_HANDOVER:
		if (s->params_case != FJORD__V1__EXPERIMENT_SPEC__PARAMS_HANDOVER || !s->handover)
			return reject(why, "handover", "type handover needs handover parameters");
		return check_handover(s->handover, why);
	case FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_PROBE:
		if (s->params_case != FJORD__V1__EXPERIMENT_SPEC__PARAMS_PROBE || !s->probe)
			return reject(why, "probe", "type probe needs probe parameters");
		if (s->probe->timeout_ms > 60000)
			return reject(why, "probe.timeoutMs", "timeoutMs must be at most 60000");
		return 0;
	default:
		return reject(why, "type", "type must be echo, bulk, rr, handover or probe");
	}
}

static int check_stack(const Fjord__V1__StackSettings *st, struct ctl_reject *why)
{
	char f[48];
	size_t i, j;

	if (!st)
		return 0;
	if (st->n_stacks > 3)
		return reject(why, "stack.stacks", "at most 3 stacks");
	for (i = 0; i < st->n_stacks; i++) {
		snprintf(f, sizeof(f), "stack.stacks[%zu]", i);
		if (st->stacks[i] < FJORD__V1__STACK__STACK_BUNDLED ||
		    st->stacks[i] > FJORD__V1__STACK__STACK_TCP)
			return reject(why, f, "stack must be bundled, kernel or tcp");
		for (j = 0; j < i; j++)
			if (st->stacks[j] == st->stacks[i])
				return reject(why, f, "stack listed twice");
	}
	if (!str_ok(st->scheduler, SCHED_STR_MAX, 1))
		return reject(why, "stack.scheduler", "too long or not printable");
	if (!str_ok(st->congestion_control, SCHED_STR_MAX, 1))
		return reject(why, "stack.congestionControl", "too long or not printable");
	if (!str_ok(st->path_manager, SCHED_STR_MAX, 1))
		return reject(why, "stack.pathManager", "too long or not printable");
	return 0;
}

static int check_str_list(char *const *v, size_t n, const char *name, struct ctl_reject *why)
{
	char f[48];
	size_t i;

	if (n > SCHED_MAX_LIST)
		return reject(why, name, "at most %d entries", SCHED_MAX_LIST);
	for (i = 0; i < n; i++) {
		if (!str_ok(v[i], SCHED_STR_MAX, 0)) {
			snprintf(f, sizeof(f), "%s[%zu]", name, i);
			return reject(why, f, "empty, too long or not printable");
		}
	}
	return 0;
}

static int check_targets(const Fjord__V1__Targets *t, struct ctl_reject *why)
{
	char f[64];
	size_t i;
	int err;

	if (!t)
		return reject(why, "targets", "targets are required");
	if (!t->n_pairs && !t->all_site_pairs)
		return reject(why, "targets", "give pairs or allSitePairs");
	if (t->n_pairs && t->all_site_pairs)
		return reject(why, "targets.allSitePairs",
			      "pairs and allSitePairs exclude each other");
	if (t->n_sites && !t->all_site_pairs)
		return reject(why, "targets.sites", "sites only limits allSitePairs");
	if (t->n_pairs > SCHED_MAX_PAIRS)
		return reject(why, "targets.pairs", "at most %d pairs", SCHED_MAX_PAIRS);
	for (i = 0; i < t->n_pairs; i++) {
		const Fjord__V1__AgentPair *p = t->pairs[i];

		if (!str_ok(p->client_agent_id, SCHED_STR_MAX, 0)) {
			snprintf(f, sizeof(f), "targets.pairs[%zu].clientAgentId", i);
			return reject(why, f, "a client agent id is required");
		}
		if (!str_ok(p->server_agent_id, SCHED_STR_MAX, 0)) {
			snprintf(f, sizeof(f), "targets.pairs[%zu].serverAgentId", i);
			return reject(why, f, "a server agent id is required");
		}
		if (strcmp(p->client_agent_id, p->server_agent_id) == 0) {
			snprintf(f, sizeof(f), "targets.pairs[%zu]", i);
			return reject(why, f, "client and server must be different agents");
		}
	}
	err = check_str_list(t->sites, t->n_sites, "targets.sites", why);
	if (!err)
		err = check_str_list(t->local_isps, t->n_local_isps, "targets.localIsps", why);
	if (!err)
		err = check_str_list(t->remote_isps, t->n_remote_isps, "targets.remoteIsps", why);
	if (err)
		return err;
	if (t->n_families > 2)
		return reject(why, "targets.families", "at most 2 families");
	for (i = 0; i < t->n_families; i++) {
		if (t->families[i] != FJORD__V1__ADDRESS_FAMILY__ADDRESS_FAMILY_IPV4 &&
		    t->families[i] != FJORD__V1__ADDRESS_FAMILY__ADDRESS_FAMILY_IPV6) {
			snprintf(f, sizeof(f), "targets.families[%zu]", i);
			return reject(why, f, "family must be ipv4 or ipv6");
		}
		if (i == 1 && t->families[0] == t->families[1])
			return reject(why, "targets.families[1]", "family listed twice");
	}
	return 0;
}

static int check_schedule(const Fjord__V1__Schedule *s, struct ctl_reject *why)
{
	if (!s)
		return 0;
	if (s->start_ms < 0)
		return reject(why, "schedule.startMs", "startMs must not be negative");
	if (s->interval_s > SCHED_MAX_INTERVAL_S)
		return reject(why, "schedule.intervalS", "intervalS must be at most %u",
			      SCHED_MAX_INTERVAL_S);
	if (s->jitter_s > SCHED_MAX_INTERVAL_S)
		return reject(why, "schedule.jitterS", "jitterS must be at most %u",
			      SCHED_MAX_INTERVAL_S);
	if (!s->interval_s) {
		if (s->count > 1)
			return reject(why, "schedule.count", "count above 1 needs intervalS");
		if (s->end_ms)
			return reject(why, "schedule.endMs", "endMs needs intervalS");
		return 0;
	}
	if (!s->count && !s->end_ms)
		return reject(why, "schedule.count", "a periodic schedule needs count or endMs");
	if (s->count > SCHED_MAX_RUNS)
		return reject(why, "schedule.count", "count must be at most %d", SCHED_MAX_RUNS);
	if (s->end_ms < 0 || (s->end_ms && s->start_ms && s->end_ms < s->start_ms))
		return reject(why, "schedule.endMs", "endMs is before startMs");
	if (s->jitter_s > s->interval_s)
		return reject(why, "schedule.jitterS", "jitterS must not exceed intervalS");
	return 0;
}

int ctl_sched_validate(const Fjord__V1__ExperimentSpec *spec, struct ctl_reject *why)
{
	uint32_t deadline, pickup;
	int err;

	if (why)
		memset(why, 0, sizeof(*why));
	if (!spec)
		return reject(why, "", "an experiment spec is required");
	if (!str_ok(spec->name, SCHED_STR_MAX, 1))
		return reject(why, "name", "name is too long or not printable");
	err = check_params(spec, why);
	if (!err)
		err = check_stack(spec->stack, why);
	if (!err)
		err = check_targets(spec->targets, why);
	if (!err)
		err = check_schedule(spec->schedule, why);
	if (err)
		return err;
	if (spec->deadline_s > SCHED_MAX_INTERVAL_S)
		return reject(why, "deadlineS", "deadlineS must be at most %u",
			      SCHED_MAX_INTERVAL_S);
	if (spec->pickup_s > SCHED_MAX_INTERVAL_S)
		return reject(why, "pickupS", "pickupS must be at most %u", SCHED_MAX_INTERVAL_S);
	deadline = spec->deadline_s ? spec->deadline_s : SCHED_DEFAULT_DEADLINE_S;
	pickup = spec->pickup_s ? spec->pickup_s : SCHED_DEFAULT_PICKUP_S;
	if (pickup > deadline)
		return reject(why, "pickupS", "pickupS (%u) exceeds deadlineS (%u)", pickup,
			      deadline);
	return 0;
}

/* ---- expansion -------------------------------------------------------------- */

/* splitmix64: a fixed, well-mixed function of (seed, index) for jitter. */
static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

int64_t sched_jitter_ms(uint64_t seed, size_t index, uint32_t jitter_s)
{
	if (!jitter_s)
		return 0;
	return (int64_t)(mix64(seed ^ mix64((uint64_t)index)) % ((uint64_t)jitter_s * 1000 + 1));
}

static const Fjord__V1__Agent *find_agent(const Fjord__V1__AgentList *agents, const char *id)
{
	size_t i;

	for (i = 0; agents && i < agents->n_agents; i++)
		if (strcmp(agents->agents[i]->id, id) == 0)
			return agents->agents[i];
	return NULL;
}

static int addr_family(const char *a)
{
	if (strchr(a, ':'))
		return FJORD__V1__ADDRESS_FAMILY__ADDRESS_FAMILY_IPV6;
	if (strchr(a, '.'))
		return FJORD__V1__ADDRESS_FAMILY__ADDRESS_FAMILY_IPV4;
	return 0;
}

/* The first address of family fam on an interface of agent a with ISP isp,
 * without its prefix length, into buf; 0 when there is none. */
static int agent_addr(const Fjord__V1__Agent *a, const char *isp, int fam, char *buf, size_t len)
{
	size_t i, j, n;

	for (i = 0; i < a->n_interfaces; i++) {
		const Fjord__V1__Interface *ifc = a->interfaces[i];

		if (strcmp(ifc->isp, isp) != 0)
			continue;
		for (j = 0; j < ifc->n_addresses; j++) {
			if (addr_family(ifc->addresses[j]) != fam)
				continue;
			n = strcspn(ifc->addresses[j], "/");
			if (n >= len)
				continue;
			memcpy(buf, ifc->addresses[j], n);
			buf[n] = 0;
			return 1;
		}
	}
	return 0;
}

static int in_list(char *const *v, size_t n, const char *s)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(v[i], s) == 0)
			return 1;
	return 0;
}

/* The distinct ISP labels of a's interfaces, in interface order, limited
 * to filter when it is not empty. */
static size_t agent_isps(const Fjord__V1__Agent *a, char *const *filter, size_t n_filter,
			 const char **out, size_t max)
{
	size_t i, j, n = 0;

	for (i = 0; i < a->n_interfaces && n < max; i++) {
		const char *isp = a->interfaces[i]->isp;

		if (n_filter && !in_list(filter, n_filter, isp))
			continue;
		for (j = 0; j < n; j++)
			if (strcmp(out[j], isp) == 0)
				break;
		if (j == n)
			out[n++] = isp;
	}
	return n;
}

/* Every path between c and s that has an address of the family at both ends. */
static int pair_paths(const Fjord__V1__Targets *t, const Fjord__V1__Agent *c,
		      const Fjord__V1__Agent *s, struct sched_path *out, size_t max, size_t *n_out)
{
	static const Fjord__V1__AddressFamily def_fam[] = {
		FJORD__V1__ADDRESS_FAMILY__ADDRESS_FAMILY_IPV4
	};
	const Fjord__V1__AddressFamily *fams = t->n_families ? t->families : def_fam;
	size_t n_fams = t->n_families ? t->n_families : 1;
	const char *lisp[SCHED_MAX_LIST], *risp[SCHED_MAX_LIST];
	size_t nl, nr, i, j, k, n = 0;

	nl = agent_isps(c, t->local_isps, t->n_local_isps, lisp, SCHED_MAX_LIST);
	nr = agent_isps(s, t->remote_isps, t->n_remote_isps, risp, SCHED_MAX_LIST);
	for (i = 0; i < nl; i++) {
		for (j = 0; j < nr; j++) {
			for (k = 0; k < n_fams; k++) {
				struct sched_path *p = &out[n];

				if (n >= max)
					return -E2BIG;
				if (!agent_addr(c, lisp[i], fams[k], p->laddr, sizeof(p->laddr)) ||
				    !agent_addr(s, risp[j], fams[k], p->raddr, sizeof(p->raddr)))
					continue;
				p->lisp = lisp[i];
				p->risp = risp[j];
				p->family = fams[k];
				n++;
			}
		}
	}
	*n_out = n;
	return 0;
}

/* Among the agents of site, an online one first, then the most recently
 * seen, then the smallest id: the same choice for the same inputs. */
static const Fjord__V1__Agent *site_agent(const Fjord__V1__AgentList *agents, const char *site)
{
	const Fjord__V1__Agent *best = NULL, *a;
	size_t i;

	for (i = 0; i < agents->n_agents; i++) {
		a = agents->agents[i];
		if (strcmp(a->site, site) != 0)
			continue;
		if (!best || (a->online && !best->online) ||
		    (a->online == best->online && a->last_seen_ms > best->last_seen_ms) ||
		    (a->online == best->online && a->last_seen_ms == best->last_seen_ms &&
		     strcmp(a->id, best->id) < 0))
			best = a;
	}
	return best;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Fills ps->pairs with the (client, server) agents of the targets. */
static int target_pairs(const Fjord__V1__Targets *t, const Fjord__V1__AgentList *agents,
			struct sched_pairs *ps, struct ctl_reject *why)
{
	const char *sites[SCHED_MAX_SITES];
	size_t n_sites = 0, i, j;
	char f[64];

	if (t->n_pairs) {
		for (i = 0; i < t->n_pairs; i++) {
			const Fjord__V1__Agent *c =
				find_agent(agents, t->pairs[i]->client_agent_id);
			const Fjord__V1__Agent *s =
				find_agent(agents, t->pairs[i]->server_agent_id);

			if (!c) {
				snprintf(f, sizeof(f), "targets.pairs[%zu].clientAgentId", i);
				return reject(why, f, "no agent %s", t->pairs[i]->client_agent_id);
			}
			if (!s) {
				snprintf(f, sizeof(f), "targets.pairs[%zu].serverAgentId", i);
				return reject(why, f, "no agent %s", t->pairs[i]->server_agent_id);
			}
			ps->c[ps->n] = c;
			ps->s[ps->n] = s;
			ps->n++;
		}
		return 0;
	}
	if (t->n_sites) {
		for (i = 0; i < t->n_sites; i++) {
			if (!site_agent(agents, t->sites[i])) {
				snprintf(f, sizeof(f), "targets.sites[%zu]", i);
				return reject(why, f, "no agent on site %s", t->sites[i]);
			}
			for (j = 0; j < n_sites; j++)
				if (strcmp(sites[j], t->sites[i]) == 0)
					break;
			if (j == n_sites)
				sites[n_sites++] = t->sites[i];
		}
	} else {
		for (i = 0; agents && i < agents->n_agents; i++) {
			for (j = 0; j < n_sites; j++)
				if (strcmp(sites[j], agents->agents[i]->site) == 0)
					break;
			if (j < n_sites)
				continue;
			if (n_sites == SCHED_MAX_SITES)
				return reject(why, "targets.allSitePairs", "more than %d sites",
					      SCHED_MAX_SITES);
			sites[n_sites++] = agents->agents[i]->site;
		}
	}
	if (n_sites < 2)
		return reject(why, "targets.allSitePairs", "needs agents on at least two sites");
	qsort(sites, n_sites, sizeof(sites[0]), cmp_str);
	for (i = 0; i < n_sites; i++) {
		for (j = 0; j < n_sites; j++) {
			if (i == j)
				continue;
			if (ps->n == SCHED_MAX_PAIRS)
				return reject(why, "targets.allSitePairs",
					      "more than %d site pairs", SCHED_MAX_PAIRS);
			ps->c[ps->n] = site_agent(agents, sites[i]);
			ps->s[ps->n] = site_agent(agents, sites[j]);
			ps->n++;
		}
	}
	return 0;
}

/* An ISP named in local_isps / remote_isps that no agent has is a mistake. */
static int check_isps_known(const Fjord__V1__Targets *t, const struct sched_pairs *ps,
			    struct ctl_reject *why)
{
	const char *isps[SCHED_MAX_LIST];
	char f[64];
	size_t i, k, n;
	int found;

	for (i = 0; i < t->n_local_isps; i++) {
		for (k = 0, found = 0; k < ps->n && !found; k++) {
			n = agent_isps(ps->c[k], &t->local_isps[i], 1, isps, SCHED_MAX_LIST);
			found = n > 0;
		}
		if (!found) {
			snprintf(f, sizeof(f), "targets.localIsps[%zu]", i);
			return reject(why, f, "no client agent has ISP %s", t->local_isps[i]);
		}
	}
	for (i = 0; i < t->n_remote_isps; i++) {
		for (k = 0, found = 0; k < ps->n && !found; k++) {
			n = agent_isps(ps->s[k], &t->remote_isps[i], 1, isps, SCHED_MAX_LIST);
			found = n > 0;
		}
		if (!found) {
			snprintf(f, sizeof(f), "targets.remoteIsps[%zu]", i);
			return reject(why, f, "no server agent has ISP %s", t->remote_isps[i]);
		}
	}
	return 0;
}

/* Start times of the schedule's occurrences, leaving out those already more
 * than pickup_s in the past (they could only be missed); *first is the
 * index of the first one kept, so sequences stay those of the schedule. */
static int occurrences(const Fjord__V1__Schedule *s, int64_t now_ms, uint32_t pickup_s,
		       int64_t **out, size_t *n_out, size_t *first, struct ctl_reject *why)
{
	int64_t start = s && s->start_ms ? s->start_ms : now_ms, step = 0, *v;
	size_t n = 1, i, k;

	if (s && s->interval_s) {
		step = (int64_t)s->interval_s * 1000;
		if (s->end_ms && s->end_ms < start)
			return reject(why, "schedule.endMs", "endMs is before the start");
		n = s->count ? s->count : SIZE_MAX;
		if (s->end_ms && (uint64_t)((s->end_ms - start) / step) + 1 < n)
			n = (size_t)((s->end_ms - start) / step) + 1;
		if (n > SCHED_MAX_RUNS)
			return reject(why, "schedule", "more than %d occurrences", SCHED_MAX_RUNS);
	}
	for (k = 0; k < n && start + (int64_t)k * step + (int64_t)pickup_s * 1000 <= now_ms; k++)
		;
	if (k == n)
		return reject(why, "schedule.startMs",
			      "every occurrence is more than pickupS (%u s) in the past", pickup_s);
	v = malloc((n - k) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (i = k; i < n; i++)
		v[i - k] = start + (int64_t)i * step;
	*out = v;
	*n_out = n - k;
	*first = k;
	return 0;
}

static void free_runs(Fjord__V1__Run **runs, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (runs[i])
			fjord__v1__run__free_unpacked(runs[i], NULL);
	free(runs);
}

static int make_path(const struct sched_path *sp, Fjord__V1__Path **out)
{
	Fjord__V1__Path *p = malloc(sizeof(*p));

	if (!p)
		return -ENOMEM;
	fjord__v1__path__init(p);
	*out = p;
	p->family = sp->family;
	if (sched_set_str(&p->local_isp, sp->lisp) || sched_set_str(&p->remote_isp, sp->risp) ||
	    sched_set_str(&p->local_address, sp->laddr) ||
	    sched_set_str(&p->remote_address, sp->raddr))
		return -ENOMEM;
	return 0;
}

/* One run of the expansion, appended to x->runs. */
static int add_run(struct sched_exp *x, const Fjord__V1__Agent *c, const Fjord__V1__Agent *s,
		   Fjord__V1__Stack stack, const struct sched_path *paths, size_t n_paths,
		   uint32_t seq, int64_t t0)
{
	Fjord__V1__Run *r;
	char id[SCHED_ID_MAX];
	size_t i;

	if (x->n == x->cap)
		return -E2BIG;
	r = malloc(sizeof(*r));
	if (!r)
		return -ENOMEM;
	fjord__v1__run__init(r);
	x->runs[x->n] = r;
	snprintf(id, sizeof(id), "%s.%zu", x->exp->id, x->n);
	r->due_ms = t0 + sched_jitter_ms(x->seed, x->n, x->jitter_s);
	x->n++;
	r->type = x->exp->spec->type;
	r->stack = stack;
	r->state = FJORD__V1__RUN_STATE__RUN_STATE_PENDING;
	r->sequence = seq;
	r->deadline_ms = r->due_ms + (int64_t)x->deadline_s * 1000;
	if (sched_set_str(&r->id, id) || sched_set_str(&r->experiment_id, x->exp->id) ||
	    sched_set_str(&r->client_agent_id, c->id) ||
	    sched_set_str(&r->server_agent_id, s->id) || sched_set_str(&r->client_site, c->site) ||
	    sched_set_str(&r->server_site, s->site))
		return -ENOMEM;
	r->paths = calloc(n_paths ? n_paths : 1, sizeof(*r->paths));
	if (!r->paths)
		return -ENOMEM;
	for (i = 0; i < n_paths; i++) {
		r->n_paths++;
		if (make_path(&paths[i], &r->paths[i]))
			return -ENOMEM;
	}
	return 0;
}

/* The runs of one target pair at one occurrence. */
static int expand_pair(struct sched_exp *x, size_t k, uint32_t seq, int64_t t0)
{
	const Fjord__V1__ExperimentSpec *spec = x->exp->spec;
	const Fjord__V1__Agent *c = x->pairs.c[k], *s = x->pairs.s[k];
	const struct sched_path *paths = x->paths[k];
	size_t n_paths = x->n_paths[k], i, j;
	int err = 0, has_tcp = 0;

	for (i = 0; i < x->n_stacks && !err; i++) {
		has_tcp |= x->stacks[i] == FJORD__V1__STACK__STACK_TCP;
		if (spec->targets->per_path)
			for (j = 0; j < n_paths && !err; j++)
				err = add_run(x, c, s, x->stacks[i], &paths[j], 1, seq, t0);
		else
			err = add_run(x, c, s, x->stacks[i], paths, n_paths, seq, t0);
	}
	/* Bulk baselines: a single-path TCP run over each path. */
	if (!has_tcp && x->baseline)
		for (j = 0; j < n_paths && !err; j++)
			err = add_run(x, c, s, FJORD__V1__STACK__STACK_TCP, &paths[j], 1, seq, t0);
	return err;
}

static size_t runs_per_pair(const struct sched_exp *x, size_t k)
{
	size_t i, n = 0;
	int has_tcp = 0;

	for (i = 0; i < x->n_stacks; i++) {
		has_tcp |= x->stacks[i] == FJORD__V1__STACK__STACK_TCP;
		n += x->exp->spec->targets->per_path ? x->n_paths[k] : 1;
	}
	if (!has_tcp && x->baseline)
		n += x->n_paths[k];
	return n;
}

static void sched_exp_free(struct sched_exp *x)
{
	free(x->paths);
	free(x->n_paths);
	free(x->occ);
	free(x->pairs.c);
	free(x->pairs.s);
}

/* Everything but the runs themselves: pairs, their paths, stacks, times. */
static int expand_prepare(struct sched_exp *x, const Fjord__V1__AgentList *agents, int64_t now_ms,
			  struct ctl_reject *why)
{
	static const Fjord__V1__Stack def_stack[] = { FJORD__V1__STACK__STACK_KERNEL };
	const Fjord__V1__ExperimentSpec *spec = x->exp->spec;
	size_t k, usable = 0;
	int err;

	x->pairs.c = calloc(SCHED_MAX_PAIRS, sizeof(*x->pairs.c));
	x->pairs.s = calloc(SCHED_MAX_PAIRS, sizeof(*x->pairs.s));
	if (!x->pairs.c || !x->pairs.s)
		return -ENOMEM;
	err = target_pairs(spec->targets, agents, &x->pairs, why);
	if (!err)
		err = check_isps_known(spec->targets, &x->pairs, why);
	if (err)
		return err;
	x->paths = calloc(x->pairs.n, sizeof(*x->paths));
	x->n_paths = calloc(x->pairs.n, sizeof(*x->n_paths));
	if (!x->paths || !x->n_paths)
		return -ENOMEM;
	for (k = 0; k < x->pairs.n; k++) {
		err = pair_paths(spec->targets, x->pairs.c[k], x->pairs.s[k], x->paths[k],
				 SCHED_MAX_PATHS, &x->n_paths[k]);
		if (err)
			return reject(why, "targets", "more than %d paths between two agents",
				      SCHED_MAX_PATHS);
		usable += x->n_paths[k] > 0;
	}
	if (!usable)
		return reject(why, "targets",
			      "no path: no ISP pair with addresses of the family at both ends");
	x->stacks = spec->stack && spec->stack->n_stacks ? spec->stack->stacks : def_stack;
	x->n_stacks = spec->stack && spec->stack->n_stacks ? spec->stack->n_stacks : 1;
	x->baseline = spec->type == FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_BULK &&
		      spec->bulk && spec->bulk->baseline;
	x->jitter_s = spec->schedule ? spec->schedule->jitter_s : 0;
	x->deadline_s = spec->deadline_s ? spec->deadline_s : SCHED_DEFAULT_DEADLINE_S;
	return occurrences(spec->schedule, now_ms,
			   spec->pickup_s ? spec->pickup_s : SCHED_DEFAULT_PICKUP_S, &x->occ,
			   &x->n_occ, &x->occ_first, why);
}

int ctl_sched_expand(const Fjord__V1__Experiment *exp, const Fjord__V1__AgentList *agents,
		     int64_t now_ms, uint64_t seed, Fjord__V1__Run ***runs, size_t *n_runs,
		     struct ctl_reject *why)
{
	struct sched_exp x = { .exp = exp, .seed = seed };
	size_t o, k, total = 0;
	int err;

	if (why)
		memset(why, 0, sizeof(*why));
	if (!exp || !runs || !n_runs || !agents)
		return reject(why, "", "missing argument");
	if (!str_ok(exp->id, SCHED_ID_MAX - 16, 0))
		return reject(why, "id", "experiment id is missing or too long");
	err = ctl_sched_validate(exp->spec, why);
	if (!err)
		err = expand_prepare(&x, agents, now_ms, why);
	for (k = 0; !err && k < x.pairs.n; k++)
		total += runs_per_pair(&x, k);
	if (!err && (x.n_occ && total > SCHED_MAX_RUNS / x.n_occ))
		err = reject(why, "schedule", "the experiment would have more than %d runs",
			     SCHED_MAX_RUNS);
	if (!err && !x.n_occ)
		err = reject(why, "schedule", "no occurrence before endMs");
	if (!err) {
		x.cap = total * x.n_occ;
		x.runs = calloc(x.cap ? x.cap : 1, sizeof(*x.runs));
		if (!x.runs)
			err = -ENOMEM;
	}
	for (o = 0; !err && o < x.n_occ; o++)
		for (k = 0; !err && k < x.pairs.n; k++)
			err = expand_pair(&x, k, (uint32_t)(x.occ_first + o), x.occ[o]);
	sched_exp_free(&x);
	if (err) {
		free_runs(x.runs, x.n);
		return err;
	}
	*runs = x.runs;
	*n_runs = x.n;
	return 0;
}

int sched_set_str(char **field, const char *v)
{
	if (!v || !*v) {
		*field = (char *)protobuf_c_empty_string;
		return 0;
	}
	*field = strdup(v);
	return *field ? 0 : -ENOMEM;
}
