/*
 * Scheduler, second half: dispatching runs to agents.
 *
 * The store holds every run's state; this file holds, in memory, only what
 * can be rebuilt from it: which runs are ready for their client agent (due,
 * links reserved, waiting for the agent's next poll; still PENDING or
 * WAITING_LINKS in the store), which are in flight (DISPATCHED or RUNNING),
 * which links (agent x ISP uplink) those hold, and the cancel commands not
 * yet handed over. ctl_sched_create rebuilds the in-flight runs and their
 * reservations from the store; ready runs simply become ready again at the
 * next tick.
 *
 * Link order: due runs are examined oldest first; a run that cannot get
 * all its links claims the free ones for the rest of that pass, so a later
 * run never overtakes an earlier one on a link they share.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fj_log.h"
#include "sched_priv.h"

#define RS(x)  FJORD__V1__RUN_STATE__RUN_STATE_##x
#define BIT(x) CTL_RUN_BIT(RS(x))

/* ---- a string-keyed hash map (linear probing, backward-shift delete) ---- */

struct smap_ent {
	char *key;
	void *val;
};

struct smap {
	struct smap_ent *e;
	size_t cap, n;
};

static size_t smap_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
	return (size_t)h;
}

static size_t smap_find(const struct smap *m, const char *key)
{
	size_t i = smap_hash(key) & (m->cap - 1);

	while (m->e[i].key && strcmp(m->e[i].key, key) != 0)
		i = (i + 1) & (m->cap - 1);
	return i;
}

static void *smap_get(const struct smap *m, const char *key)
{
	size_t i;

	if (!m->cap)
		return NULL;
	i = smap_find(m, key);
	return m->e[i].key ? m->e[i].val : NULL;
}

static int smap_grow(struct smap *m)
{
	struct smap old = *m;
	size_t i, j;

	m->cap = old.cap ? old.cap * 2 : 64;
	m->e = calloc(m->cap, sizeof(*m->e));
	if (!m->e) {
		*m = old;
		return -ENOMEM;
	}
	for (i = 0; i < old.cap; i++) {
		if (!old.e[i].key)
			continue;
		j = smap_find(m, old.e[i].key);
		m->e[j] = old.e[i];
	}
	free(old.e);
	return 0;
}

/* Sets key (copied) to val, replacing any value. */
static int smap_put(struct smap *m, const char *key, void *val)
{
	size_t i;

	if ((m->n + 1) * 2 > m->cap && smap_grow(m))
		return -ENOMEM;
	i = smap_find(m, key);
	if (!m->e[i].key) {
		m->e[i].key = strdup(key);
		if (!m->e[i].key)
			return -ENOMEM;
		m->n++;
	}
	m->e[i].val = val;
	return 0;
}

static void *smap_del(struct smap *m, const char *key)
{
	size_t i, j, k;
	void *val;

	if (!m->cap)
		return NULL;
	i = smap_find(m, key);
	if (!m->e[i].key)
		return NULL;
	val = m->e[i].val;
	free(m->e[i].key);
	m->e[i].key = NULL;
	m->n--;
	/* Shift back the entries of the probe run that follows. */
	for (j = (i + 1) & (m->cap - 1); m->e[j].key; j = (j + 1) & (m->cap - 1)) {
		k = smap_hash(m->e[j].key) & (m->cap - 1);
		if ((j > i && (k <= i || k > j)) || (j < i && (k <= i && k > j))) {
			m->e[i] = m->e[j];
			m->e[j].key = NULL;
			i = j;
		}
	}
	return val;
}

static void smap_free(struct smap *m, void (*free_val)(void *))
{
	size_t i;

	for (i = 0; i < m->cap; i++) {
		if (!m->e[i].key)
			continue;
		free(m->e[i].key);
		if (free_val)
			free_val(m->e[i].val);
	}
	free(m->e);
	memset(m, 0, sizeof(*m));
}

/* ---- scheduler state ------------------------------------------------------------ */

enum srun_where { SR_READY, SR_INFLIGHT };

struct srun {
	char *id, *exp_id, *client;
	int64_t deadline_ms, dispatched_ms;
	enum srun_where where;
	int running;  /* the store has it RUNNING */
	int reserved; /* it holds its links */
	char **links;
	size_t n_links;
	struct srun *prev, *next; /* in its client agent's ready or in-flight list */
};

struct srun_list {
	struct srun *head, *tail;
};

struct scancel {
	char *run_id, *reason;
	struct scancel *next;
};

struct sagent {
	struct srun_list ready, inflight;
	struct scancel *cancels, *cancels_tail;
};

struct sexp {
	int share;
	uint32_t pickup_s;
};

struct ctl_sched {
	struct ctl_store *st;
	void (*notify)(void *arg, const char *agent_id);
	void *notify_arg;
	struct smap runs;   /* id -> struct srun, ready or in flight */
	struct smap agents; /* id -> struct sagent */
	struct smap links;  /* "agent\x1fisp" -> struct srun holding it */
	struct smap exps;   /* id -> struct sexp */
};

static void list_add(struct srun_list *l, struct srun *r)
{
	r->next = NULL;
	r->prev = l->tail;
	if (l->tail)
		l->tail->next = r;
	else
		l->head = r;
	l->tail = r;
}

static void list_del(struct srun_list *l, struct srun *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else
		l->head = r->next;
	if (r->next)
		r->next->prev = r->prev;
	else
		l->tail = r->prev;
	r->prev = r->next = NULL;
}

static void srun_free(void *p)
{
	struct srun *r = p;
	size_t i;

	if (!r)
		return;
	for (i = 0; i < r->n_links; i++)
		free(r->links[i]);
	free(r->links);
	free(r->id);
	free(r->exp_id);
	free(r->client);
	free(r);
}

static void sagent_free(void *p)
{
	struct sagent *a = p;
	struct scancel *c, *n;

	for (c = a->cancels; c; c = n) {
		n = c->next;
		free(c->run_id);
		free(c->reason);
		free(c);
	}
	free(a);
}

static struct sagent *agent_of(struct ctl_sched *s, const char *id)
{
	struct sagent *a = smap_get(&s->agents, id);

	if (a)
		return a;
	a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	if (smap_put(&s->agents, id, a)) {
		free(a);
		return NULL;
	}
	return a;
}

/* Sharing and pickup of an experiment, cached: specs never change. */
static int exp_info(struct ctl_sched *s, const char *exp_id, struct sexp *out)
{
	Fjord__V1__Experiment *e = NULL;
	struct sexp *x = smap_get(&s->exps, exp_id);
	int err;

	if (x) {
		*out = *x;
		return 0;
	}
	err = ctl_store_experiment_get(s->st, exp_id, &e);
	if (err)
		return err;
	out->share = e->spec && e->spec->share_links;
	out->pickup_s = e->spec && e->spec->pickup_s ? e->spec->pickup_s : SCHED_DEFAULT_PICKUP_S;
	fjord__v1__experiment__free_unpacked(e, NULL);
	/* Bounded: forget everything now and then rather than grow forever. */
	if (s->exps.n >= 4096)
		smap_free(&s->exps, free);
	x = malloc(sizeof(*x));
	if (x) {
		*x = *out;
		if (smap_put(&s->exps, exp_id, x))
			free(x);
	}
	return 0;
}

/* The links a run uses: its client on each local ISP and its server on each
 * remote ISP of its paths, without repeats. */
static int run_links(const Fjord__V1__Run *r, char ***out, size_t *n_out)
{
	char **v = calloc(2 * r->n_paths + 1, sizeof(*v));
	char key[2 * SCHED_ID_MAX + 2];
	size_t i, j, n = 0, side;

	if (!v)
		return -ENOMEM;
	for (i = 0; i < r->n_paths; i++) {
		for (side = 0; side < 2; side++) {
			snprintf(key, sizeof(key), "%s\x1f%s",
				 side ? r->server_agent_id : r->client_agent_id,
				 side ? r->paths[i]->remote_isp : r->paths[i]->local_isp);
			for (j = 0; j < n; j++)
				if (strcmp(v[j], key) == 0)
					break;
			if (j < n)
				continue;
			v[n] = strdup(key);
			if (!v[n]) {
				while (n)
					free(v[--n]);
				free(v);
				return -ENOMEM;
			}
			n++;
		}
	}
	*out = v;
	*n_out = n;
	return 0;
}

static void release_links(struct ctl_sched *s, struct srun *r)
{
	size_t i;

	if (!r->reserved)
		return;
	for (i = 0; i < r->n_links; i++)
		if (smap_get(&s->links, r->links[i]) == r)
			smap_del(&s->links, r->links[i]);
	r->reserved = 0;
}

static int reserve_links(struct ctl_sched *s, struct srun *r)
{
	size_t i;

	for (i = 0; i < r->n_links; i++) {
		if (smap_put(&s->links, r->links[i], r)) {
			r->reserved = 1;
			release_links(s, r);
			return -ENOMEM;
		}
	}
	r->reserved = 1;
	return 0;
}

/* Drops a run from memory: out of its agent's list, links released. */
static void forget_run(struct ctl_sched *s, struct srun *r)
{
	struct sagent *a = smap_get(&s->agents, r->client);

	if (a)
		list_del(r->where == SR_READY ? &a->ready : &a->inflight, r);
	release_links(s, r);
	smap_del(&s->runs, r->id);
	srun_free(r);
}

static struct srun *srun_new(const Fjord__V1__Run *run)
{
	struct srun *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->id = strdup(run->id);
	r->exp_id = strdup(run->experiment_id);
	r->client = strdup(run->client_agent_id);
	r->deadline_ms = run->deadline_ms;
	r->dispatched_ms = run->dispatched_ms;
	if (!r->id || !r->exp_id || !r->client || run_links(run, &r->links, &r->n_links)) {
		srun_free(r);
		return NULL;
	}
	return r;
}

/* Puts r (new) into the runs map and its agent's list at where. */
static int track_run(struct ctl_sched *s, struct srun *r, enum srun_where where)
{
	struct sagent *a = agent_of(s, r->client);

	if (!a || smap_put(&s->runs, r->id, r))
		return -ENOMEM;
	r->where = where;
	list_add(where == SR_READY ? &a->ready : &a->inflight, r);
	return 0;
}

/* ---- create and destroy --------------------------------------------------------- */

static int rebuild(struct ctl_sched *s)
{
	Fjord__V1__RunList *l = NULL;
	struct sexp e;
	size_t i;
	int err;

	err = ctl_store_runs_by_state(s->st, BIT(DISPATCHED) | BIT(RUNNING), 1000000, &l);
	if (err)
		return err;
	for (i = 0; i < l->n_runs && !err; i++) {
		struct srun *r = srun_new(l->runs[i]);

		if (!r) {
			err = -ENOMEM;
			break;
		}
		r->running = l->runs[i]->state == RS(RUNNING);
		err = track_run(s, r, SR_INFLIGHT);
		if (err) {
			srun_free(r);
			break;
		}
		err = exp_info(s, r->exp_id, &e);
		if (!err && !e.share)
			err = reserve_links(s, r);
	}
	fjord__v1__run_list__free_unpacked(l, NULL);
	return err;
}

int ctl_sched_create(struct ctl_store *st, struct ctl_sched **out)
{
	struct ctl_sched *s;
	int err;

	if (!st || !out)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->st = st;
	err = rebuild(s);
	if (err) {
		ctl_sched_destroy(s);
		return err;
	}
	*out = s;
	return 0;
}

void ctl_sched_destroy(struct ctl_sched *s)
{
	if (!s)
		return;
	smap_free(&s->runs, srun_free);
	smap_free(&s->agents, sagent_free);
	smap_free(&s->links, NULL);
	smap_free(&s->exps, free);
	free(s);
}

void ctl_sched_set_notify(struct ctl_sched *s, void (*notify)(void *arg, const char *agent_id),
			  void *arg)
{
	if (!s)
		return;
	s->notify = notify;
	s->notify_arg = arg;
}

static void notify(struct ctl_sched *s, const char *agent_id)
{
	if (s->notify)
		s->notify(s->notify_arg, agent_id);
}

/* Queues a CancelCommand for the client agent of a run and tells it. */
static int queue_cancel(struct ctl_sched *s, const char *client, const char *run_id,
			const char *reason)
{
	struct sagent *a = agent_of(s, client);
	struct scancel *c = calloc(1, sizeof(*c));

	if (!a || !c) {
		free(c);
		return -ENOMEM;
	}
	c->run_id = strdup(run_id);
	c->reason = strdup(reason);
	if (!c->run_id || !c->reason) {
		free(c->run_id);
		free(c->reason);
		free(c);
		return -ENOMEM;
	}
	if (a->cancels_tail)
		a->cancels_tail->next = c;
	else
		a->cancels = c;
	a->cancels_tail = c;
	notify(s, client);
	return 0;
}

static int cancel_queued(const struct sagent *a, const char *run_id)
{
	const struct scancel *c;

	for (c = a ? a->cancels : NULL; c; c = c->next)
		if (strcmp(c->run_id, run_id) == 0)
			return 1;
	return 0;
}

/* ---- tick ------------------------------------------------------------------------- */

/* In-flight runs past their deadline fail. */
static int tick_deadlines(struct ctl_sched *s, int64_t now_ms, int64_t *next)
{
	struct srun **late = NULL;
	size_t i, n = 0;
	int err = 0;

	for (i = 0; i < s->runs.cap; i++) {
		struct srun *r = s->runs.e[i].key ? s->runs.e[i].val : NULL;

		if (!r || r->where != SR_INFLIGHT)
			continue;
		if (r->deadline_ms > now_ms) {
			if (r->deadline_ms - now_ms < *next)
				*next = r->deadline_ms - now_ms;
			continue;
		}
		if (!late) {
			late = calloc(s->runs.n, sizeof(*late));
			if (!late)
				return -ENOMEM;
		}
		late[n++] = r;
	}
	/* Changed outside the loop: forgetting a run reshuffles the map. */
	for (i = 0; i < n; i++) {
		int r = ctl_store_run_transition(s->st, late[i]->id, BIT(DISPATCHED) | BIT(RUNNING),
						 RS(FAILED), "deadline passed", now_ms);

		if (r && r != -ESTALE && r != -ENOENT) {
			err = r;
			continue;
		}
		/* The agent may still be at it: tell it to stop. */
		if (!r && queue_cancel(s, late[i]->client, late[i]->id, "deadline passed"))
			err = -ENOMEM;
		forget_run(s, late[i]);
	}
	free(late);
	return err;
}

/* Whether every link of r is free (and not claimed by an earlier waiting run). */
static int links_free(struct ctl_sched *s, const struct srun *r, const struct smap *claimed)
{
	size_t i;

	for (i = 0; i < r->n_links; i++)
		if (smap_get(&s->links, r->links[i]) || smap_get(claimed, r->links[i]))
			return 0;
	return 1;
}

static int tick_missed(struct ctl_sched *s, const Fjord__V1__Run *run, const struct sexp *e,
		       int64_t now_ms)
{
	struct srun *r = smap_get(&s->runs, run->id);
	char why[128];
	int err;

	if (run->state == RS(WAITING_LINKS))
		snprintf(why, sizeof(why), "links stayed busy for %u s after it was due",
			 e->pickup_s);
	else
		snprintf(why, sizeof(why), "not picked up within %u s of being due", e->pickup_s);
	err = ctl_store_run_transition(s->st, run->id, BIT(PENDING) | BIT(WAITING_LINKS),
				       RS(MISSED), why, now_ms);
	if (err && err != -ESTALE && err != -ENOENT)
		return err;
	if (r)
		forget_run(s, r);
	return 0;
}

/* A due run: ready when its links are free, else waiting. */
static int tick_due(struct ctl_sched *s, const Fjord__V1__Run *run, struct smap *claimed,
		    int64_t now_ms)
{
	struct srun *r;
	struct sexp e;
	size_t i;
	int err;

	err = exp_info(s, run->experiment_id, &e);
	if (err)
		return err;
	if (now_ms >= run->due_ms + (int64_t)e.pickup_s * 1000)
		return tick_missed(s, run, &e, now_ms);
	if (smap_get(&s->runs, run->id))
		return 0; /* ready already, waiting for its agent to poll */
	r = srun_new(run);
	if (!r)
		return -ENOMEM;
	if (!e.share && !links_free(s, r, claimed)) {
		for (i = 0; i < r->n_links; i++)
			if (!smap_get(&s->links, r->links[i]) && smap_put(claimed, r->links[i], r))
				err = -ENOMEM;
		srun_free(r);
		if (run->state == RS(PENDING)) {
			int e2 = ctl_store_run_transition(s->st, run->id, BIT(PENDING),
							  RS(WAITING_LINKS), NULL, now_ms);
			if (e2 && e2 != -ESTALE)
				err = e2;
		}
		return err;
	}
	err = track_run(s, r, SR_READY);
	if (err) {
		srun_free(r);
		return err;
	}
	if (!e.share && reserve_links(s, r)) {
		forget_run(s, r);
		return -ENOMEM;
	}
	notify(s, r->client);
	return 0;
}

static int tick_next_due(struct ctl_sched *s, int64_t now_ms, int64_t *next)
{
	struct ctl_query q = { .state_mask = BIT(PENDING), .from_ms = now_ms + 1, .limit = 1 };
	Fjord__V1__RunList *l = NULL;
	int err = ctl_store_runs_query(s->st, &q, &l);

	if (err)
		return err;
	if (l->n_runs && l->runs[0]->due_ms - now_ms < *next)
		*next = l->runs[0]->due_ms - now_ms;
	fjord__v1__run_list__free_unpacked(l, NULL);
	return 0;
}

int64_t ctl_sched_tick(struct ctl_sched *s, int64_t now_ms)
{
	struct ctl_query q = { .state_mask = BIT(PENDING) | BIT(WAITING_LINKS),
			       .to_ms = now_ms + 1,
			       .limit = 10000 };
	Fjord__V1__RunList *l = NULL;
	struct smap claimed = { 0 };
	int64_t next = 1000;
	size_t i;
	int err, e;

	if (!s || now_ms < 0)
		return -EINVAL;
	/* One run's trouble must not stall every other: go on, report the
	 * first error. */
	err = tick_deadlines(s, now_ms, &next);
	e = ctl_store_runs_query(s->st, &q, &l);
	err = err ? err : e;
	for (i = 0; !e && i < l->n_runs; i++) {
		int r = tick_due(s, l->runs[i], &claimed, now_ms);

		err = err ? err : r;
	}
	if (l)
		fjord__v1__run_list__free_unpacked(l, NULL);
	smap_free(&claimed, NULL);
	e = tick_next_due(s, now_ms, &next);
	err = err ? err : e;
	if (err)
		return err;
	return next < 1 ? 1 : next;
}

/* ---- commands ------------------------------------------------------------------- */

static int add_command(Fjord__V1__PollResponse *resp, Fjord__V1__Command *c)
{
	Fjord__V1__Command **n = realloc(resp->commands, (resp->n_commands + 1) * sizeof(*n));

	if (!n)
		return -ENOMEM;
	resp->commands = n;
	resp->commands[resp->n_commands++] = c;
	return 0;
}

/* The RunCommand for a run just marked dispatched. */
static int run_command(struct ctl_sched *s, const char *run_id, Fjord__V1__Command **out)
{
	Fjord__V1__Command *c = malloc(sizeof(*c));
	Fjord__V1__RunCommand *rc = malloc(sizeof(*rc));
	Fjord__V1__Experiment *e = NULL;
	int err;

	if (!c || !rc) {
		free(c);
		free(rc);
		return -ENOMEM;
	}
	fjord__v1__command__init(c);
	fjord__v1__run_command__init(rc);
	c->kind_case = FJORD__V1__COMMAND__KIND_RUN;
	c->run = rc;
	err = ctl_store_run_get(s->st, run_id, &rc->run);
	if (!err)
		err = ctl_store_experiment_get(s->st, rc->run->experiment_id, &e);
	if (!err) {
		rc->spec = e->spec;
		e->spec = NULL;
		fjord__v1__experiment__free_unpacked(e, NULL);
		err = ctl_store_agent_get(s->st, rc->run->server_agent_id, &rc->peer);
	}
	if (err) {
		fjord__v1__command__free_unpacked(c, NULL);
		return err;
	}
	*out = c;
	return 0;
}

static int cancel_command(struct scancel *sc, Fjord__V1__Command **out)
{
	Fjord__V1__Command *c = malloc(sizeof(*c));
	Fjord__V1__CancelCommand *cc = malloc(sizeof(*cc));

	if (!c || !cc) {
		free(c);
		free(cc);
		return -ENOMEM;
	}
	fjord__v1__command__init(c);
	fjord__v1__cancel_command__init(cc);
	c->kind_case = FJORD__V1__COMMAND__KIND_CANCEL;
	c->cancel = cc;
	/* The strings move into the message. */
	cc->run_id = sc->run_id;
	cc->reason = sc->reason;
	sc->run_id = sc->reason = NULL;
	*out = c;
	return 0;
}

static int take_ready(struct ctl_sched *s, struct sagent *a, int64_t now_ms,
		      Fjord__V1__PollResponse *resp)
{
	struct srun *r, *next;
	Fjord__V1__Command *c;
	int err;

	for (r = a->ready.head; r; r = next) {
		next = r->next;
		err = ctl_store_run_transition(s->st, r->id, BIT(PENDING) | BIT(WAITING_LINKS),
					       RS(DISPATCHED), NULL, now_ms);
		if (err == -ESTALE || err == -ENOENT) {
			forget_run(s, r); /* cancelled or missed meanwhile */
			continue;
		}
		if (err)
			return err;
		list_del(&a->ready, r);
		r->where = SR_INFLIGHT;
		r->dispatched_ms = now_ms;
		list_add(&a->inflight, r);
		err = run_command(s, r->id, &c);
		if (!err && add_command(resp, c)) {
			fjord__v1__command__free_unpacked(c, NULL);
			err = -ENOMEM;
		}
		/* Dispatched in the store but not handed over: the agent never
		 * lists it, so the lost-run check fails it after the grace. */
		if (err)
			return err;
	}
	return 0;
}

int ctl_sched_take_commands(struct ctl_sched *s, const char *agent_id, int64_t now_ms,
			    Fjord__V1__PollResponse **out)
{
	Fjord__V1__PollResponse *resp;
	Fjord__V1__Command *c;
	struct scancel *sc;
	struct sagent *a;
	int err = 0;

	if (!s || !agent_id || !*agent_id || !out)
		return -EINVAL;
	resp = malloc(sizeof(*resp));
	if (!resp)
		return -ENOMEM;
	fjord__v1__poll_response__init(resp);
	a = smap_get(&s->agents, agent_id);
	if (a)
		err = take_ready(s, a, now_ms, resp);
	while (!err && a && (sc = a->cancels)) {
		err = cancel_command(sc, &c);
		if (!err && add_command(resp, c)) {
			fjord__v1__command__free_unpacked(c, NULL);
			err = -ENOMEM;
		}
		if (err)
			break;
		a->cancels = sc->next;
		if (!a->cancels)
			a->cancels_tail = NULL;
		free(sc);
	}
	/* Whatever was taken is dispatched in the store: hand it over even if a
	 * later command failed; the rest stays for the next poll. */
	if (err && !resp->n_commands) {
		fjord__v1__poll_response__free_unpacked(resp, NULL);
		return err;
	}
	*out = resp;
	return 0;
}

int ctl_sched_has_commands(struct ctl_sched *s, const char *agent_id)
{
	struct sagent *a;

	if (!s || !agent_id)
		return 0;
	a = smap_get(&s->agents, agent_id);
	return a && (a->ready.head || a->cancels);
}

/* ---- reports, results and cancellation ---------------------------------------- */

static int listed(const Fjord__V1__PollRequest *poll, const char *id)
{
	size_t i;

	for (i = 0; i < poll->n_running_run_ids; i++)
		if (strcmp(poll->running_run_ids[i], id) == 0)
			return 1;
	return 0;
}

/*
 * Runs the agent says it runs that are not in flight here: those that ended
 * in the store (cancelled, failed, missed; a restart may have lost the
 * cancel command) get a CancelCommand. Unknown ids are ignored.
 */
static int report_stale(struct ctl_sched *s, const char *agent_id,
			const Fjord__V1__PollRequest *poll)
{
	size_t i, n = poll->n_running_run_ids < 256 ? poll->n_running_run_ids : 256;
	Fjord__V1__Run *run;
	int err;

	for (i = 0; i < n; i++) {
		const char *id = poll->running_run_ids[i];

		if (smap_get(&s->runs, id) || cancel_queued(smap_get(&s->agents, agent_id), id))
			continue;
		run = NULL;
		err = ctl_store_run_get(s->st, id, &run);
		if (err == -ENOENT || err == -EINVAL)
			continue;
		if (err)
			return err;
		if (strcmp(run->client_agent_id, agent_id) == 0 &&
		    (run->state == RS(FAILED) || run->state == RS(MISSED) ||
		     run->state == RS(CANCELLED)))
			err = queue_cancel(s, agent_id, id,
					   *run->reason ? run->reason : "run ended");
		fjord__v1__run__free_unpacked(run, NULL);
		if (err)
			return err;
	}
	return 0;
}

int ctl_sched_agent_report(struct ctl_sched *s, const char *agent_id,
			   const Fjord__V1__PollRequest *poll, int64_t now_ms)
{
	struct srun *r, *next;
	struct sagent *a;
	int err, e;

	if (!s || !agent_id || !poll)
		return -EINVAL;
	err = report_stale(s, agent_id, poll);
	a = smap_get(&s->agents, agent_id);
	for (r = a ? a->inflight.head : NULL; r; r = next) {
		next = r->next;
		if (listed(poll, r->id)) {
			if (r->running)
				continue;
			e = ctl_store_run_transition(s->st, r->id, BIT(DISPATCHED), RS(RUNNING),
						     NULL, now_ms);
			if (!e)
				r->running = 1;
			else if (e == -ESTALE || e == -ENOENT)
				forget_run(s, r); /* ended meanwhile (result, cancel) */
			else
				err = e;
			continue;
		}
		if (now_ms - r->dispatched_ms <= SCHED_LOST_GRACE_MS)
			continue;
		/*
		 * Never listed: the command itself may not have arrived (the
		 * controller died before its answer left, or the answer was
		 * cut off). The run goes back to PENDING and is dispatched
		 * again while its pickup window lasts (else it is missed). An
		 * agent that did get it ignores the repeat while it holds the
		 * run or its result, and a stored result ends the run first.
		 */
		if (!r->running) {
			e = ctl_store_run_transition(s->st, r->id, BIT(DISPATCHED), RS(PENDING),
						     NULL, now_ms);
			if (!e)
				fj_info("run %s: agent %s never reported it; dispatching it again",
					r->id, agent_id);
			if (!e || e == -ENOENT) {
				forget_run(s, r);
				continue;
			}
			if (e != -ESTALE) {
				err = e;
				continue;
			}
			/* Running in the store (listed before a restart): lost, as below. */
		}
		e = ctl_store_run_transition(s->st, r->id, BIT(DISPATCHED) | BIT(RUNNING),
					     RS(FAILED), "agent lost the run", now_ms);
		if (!e || e == -ESTALE || e == -ENOENT)
			forget_run(s, r);
		else
			err = e;
	}
	return err;
}

void ctl_sched_run_finished(struct ctl_sched *s, const char *run_id)
{
	Fjord__V1__Run *run = NULL;
	struct srun *r;

	if (!s || !run_id)
		return;
	r = smap_get(&s->runs, run_id);
	if (!r)
		return;
	/* Both agents send results; the server's may come while the client
	 * still measures. Only a run that has ended lets its links go. */
	if (ctl_store_run_get(s->st, run_id, &run) == 0 && run->state < RS(SUCCEEDED)) {
		fjord__v1__run__free_unpacked(run, NULL);
		return;
	}
	if (run)
		fjord__v1__run__free_unpacked(run, NULL);
	forget_run(s, r);
}

int ctl_sched_cancel(struct ctl_sched *s, const char *experiment_id, const char *reason,
		     int64_t now_ms, size_t *n_cancelled)
{
	struct srun **mine = NULL;
	size_t i, n = 0;
	int err;

	if (!s || !experiment_id || !*experiment_id)
		return -EINVAL;
	if (!reason || !*reason)
		reason = "experiment cancelled";
	/* Durable first: if the store refuses, nothing changes here. */
	err = ctl_store_experiment_cancel(s->st, experiment_id, reason, now_ms, n_cancelled);
	if (err)
		return err;
	mine = calloc(s->runs.n + 1, sizeof(*mine));
	if (!mine)
		return -ENOMEM;
	for (i = 0; i < s->runs.cap; i++) {
		struct srun *r = s->runs.e[i].key ? s->runs.e[i].val : NULL;

		if (r && strcmp(r->exp_id, experiment_id) == 0)
			mine[n++] = r;
	}
	for (i = 0; i < n; i++) {
		if (mine[i]->where == SR_INFLIGHT &&
		    queue_cancel(s, mine[i]->client, mine[i]->id, reason))
			err = -ENOMEM;
		forget_run(s, mine[i]);
	}
	free(mine);
	return err;
}
