/*
 * Long polls and time: the scheduler lock, the timer thread that ticks the
 * scheduler and ends long polls at their deadline, the waiters resumed when
 * the scheduler has commands for their agent, and the presence table fed by
 * polls. A poll's report (interfaces, running runs) goes to reporter
 * threads that coalesce reports per agent, so a burst of polls costs one
 * store write per agent and change, not one per poll.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fj_clock.h"
#include "fj_log.h"
#include "http_internal.h"

#define W_BUCKETS 16384
#define P_BUCKETS 16384
/* An unchanged report still refreshes last_seen_ms in the store this often. */
#define STORE_REFRESH_MS 30000

struct ctl_presence {
	struct ctl_presence *hnext, *qnext;
	char *agent_id;
	int64_t last_seen_ms;
	int64_t stored_ms;    /* when the store last got a report */
	uint64_t stored_hash; /* of that report */
	uint8_t *pending;     /* packed PollRequest not yet handed over, or NULL */
	size_t pending_len;
	int queued; /* in the queue */
	/* A reporter is handing a report over; meanwhile it is not queued again,
	 * so one agent's reports reach the store in order. */
	int busy;
};

static size_t str_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return (size_t)h;
}

static uint64_t bytes_hash(const uint8_t *p, size_t n)
{
	uint64_t h = 1469598103934665603ull;
	size_t i;

	for (i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h;
}

/* ---- waiters (under h->lock) ------------------------------------------------ */

void ctl_poll_unwait_locked(struct ctl_req *rq)
{
	struct ctl_http *h = rq->h;
	struct ctl_req **pp;

	if (!rq->w_listed)
		return;
	if (rq->w_prev)
		rq->w_prev->w_next = rq->w_next;
	else
		h->w_head = rq->w_next;
	if (rq->w_next)
		rq->w_next->w_prev = rq->w_prev;
	else
		h->w_tail = rq->w_prev;
	for (pp = &h->w_hash[str_hash(rq->agent_id) % W_BUCKETS]; *pp; pp = &(*pp)->w_hnext)
		if (*pp == rq) {
			*pp = rq->w_hnext;
			break;
		}
	rq->w_prev = rq->w_next = rq->w_hnext = NULL;
	rq->w_listed = 0;
	h->n_waiting--;
}

static struct ctl_req *find_waiter(struct ctl_http *h, const char *agent_id)
{
	struct ctl_req *rq = h->w_hash[str_hash(agent_id) % W_BUCKETS];

	while (rq && strcmp(rq->agent_id, agent_id) != 0)
		rq = rq->w_hnext;
	return rq;
}

static void wake(struct ctl_req *rq)
{
	ctl_poll_unwait_locked(rq);
	MHD_resume_connection(rq->conn);
}

void ctl_poll_wait_locked(struct ctl_req *rq, uint64_t deadline_ms)
{
	struct ctl_http *h = rq->h;
	struct ctl_req *old = find_waiter(h, rq->agent_id), *pos;
	size_t b = str_hash(rq->agent_id) % W_BUCKETS;

	/* One agent, one poll: an older poll of the same agent answers now. */
	if (old)
		wake(old);
	rq->w_deadline_ms = deadline_ms;
	/* Deadlines mostly grow, so the walk from the tail is short. */
	for (pos = h->w_tail; pos && pos->w_deadline_ms > deadline_ms; pos = pos->w_prev)
		;
	rq->w_prev = pos;
	rq->w_next = pos ? pos->w_next : h->w_head;
	if (rq->w_next)
		rq->w_next->w_prev = rq;
	else
		h->w_tail = rq;
	if (pos)
		pos->w_next = rq;
	else
		h->w_head = rq;
	rq->w_hnext = h->w_hash[b];
	h->w_hash[b] = rq;
	rq->w_listed = 1;
	h->n_waiting++;
	if (h->w_head == rq)
		pthread_cond_signal(&h->cond);
}

/* Called by the scheduler, under h->lock, when commands wait for agent_id. */
static void on_notify(void *arg, const char *agent_id)
{
	struct ctl_http *h = arg;
	struct ctl_req *rq = find_waiter(h, agent_id);

	if (rq)
		wake(rq);
}

/* ---- timer thread --------------------------------------------------------------- */

static void abs_mono(uint64_t ms, struct timespec *ts)
{
	ts->tv_sec = (time_t)(ms / 1000);
	ts->tv_nsec = (long)(ms % 1000) * 1000000L;
}

static void *timer_main(void *arg)
{
	struct ctl_http *h = arg;

	pthread_mutex_lock(&h->lock);
	while (!h->stopping) {
		uint64_t now = fj_mono_ms(), wake_at;
		struct timespec ts;

		if (now >= h->next_tick_ms) {
			int64_t next = ctl_sched_tick(h->sched, fj_wall_ms());

			if (next < 0) {
				fj_err("scheduler tick: %s", strerror((int)-next));
				next = 1000;
			}
			if (next > 1000)
				next = 1000;
			if (next < 1)
				next = 1;
			now = fj_mono_ms();
			h->next_tick_ms = now + (uint64_t)next;
		}
		while (h->w_head && h->w_head->w_deadline_ms <= now)
			wake(h->w_head);
		wake_at = h->next_tick_ms;
		if (h->w_head && h->w_head->w_deadline_ms < wake_at)
			wake_at = h->w_head->w_deadline_ms;
		abs_mono(wake_at, &ts);
		pthread_cond_timedwait(&h->cond, &h->lock, &ts);
	}
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

void ctl_poll_kick(struct ctl_http *h)
{
	pthread_mutex_lock(&h->lock);
	h->next_tick_ms = 0;
	pthread_cond_signal(&h->cond);
	pthread_mutex_unlock(&h->lock);
}

/* ---- presence and reports ----------------------------------------------------------- */

static struct ctl_presence *presence_get(struct ctl_http *h, const char *agent_id, int create)
{
	size_t b = str_hash(agent_id) % P_BUCKETS;
	struct ctl_presence *p;

	for (p = h->p_hash[b]; p; p = p->hnext)
		if (strcmp(p->agent_id, agent_id) == 0)
			return p;
	if (!create)
		return NULL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->agent_id = strdup(agent_id);
	if (!p->agent_id) {
		free(p);
		return NULL;
	}
	p->hnext = h->p_hash[b];
	h->p_hash[b] = p;
	return p;
}

/* Under p_lock. */
static void enqueue(struct ctl_http *h, struct ctl_presence *p)
{
	p->queued = 1;
	p->qnext = NULL;
	if (h->p_queue_tail)
		h->p_queue_tail->qnext = p;
	else
		h->p_queue_head = p;
	h->p_queue_tail = p;
	h->p_queued++;
	pthread_cond_signal(&h->p_cond);
}

void ctl_poll_seen(struct ctl_http *h, const char *agent_id, const Fjord__V1__PollRequest *poll)
{
	Fjord__V1__PollRequest copy = *poll;
	struct ctl_presence *p;
	size_t n;
	uint8_t *buf;

	/* wait_s is how this poll waits, not a fact about the agent. */
	copy.wait_s = 0;
	n = protobuf_c_message_get_packed_size(&copy.base);
	buf = malloc(n ? n : 1);
	if (!buf)
		return;
	protobuf_c_message_pack(&copy.base, buf);
	pthread_mutex_lock(&h->p_lock);
	p = presence_get(h, agent_id, 1);
	if (!p || h->p_stopping) {
		pthread_mutex_unlock(&h->p_lock);
		free(buf);
		return;
	}
	p->last_seen_ms = fj_wall_ms();
	free(p->pending);
	p->pending = buf;
	p->pending_len = n;
	if (!p->queued && !p->busy)
		enqueue(h, p);
	pthread_mutex_unlock(&h->p_lock);
}

/* Hands one coalesced report to the store (when it changed or is due) and the scheduler. */
static void report(struct ctl_http *h, struct ctl_presence *p, uint8_t *buf, size_t n,
		   int64_t stored_ms, uint64_t stored_hash)
{
	Fjord__V1__PollRequest *poll;
	uint64_t hash = bytes_hash(buf, n);
	int64_t now = fj_wall_ms();
	int r;

	poll = fjord__v1__poll_request__unpack(NULL, n, buf);
	if (!poll)
		return;
	if (hash != stored_hash || now - stored_ms >= STORE_REFRESH_MS) {
		r = ctl_store_agent_seen(h->st, p->agent_id, poll, now);
		if (r < 0)
			fj_warn("store: agent %s seen: %s", p->agent_id, strerror(-r));
		pthread_mutex_lock(&h->p_lock);
		p->stored_ms = now;
		p->stored_hash = hash;
		pthread_mutex_unlock(&h->p_lock);
	}
	pthread_mutex_lock(&h->lock);
	r = ctl_sched_agent_report(h->sched, p->agent_id, poll, now);
	pthread_mutex_unlock(&h->lock);
	if (r < 0)
		fj_warn("scheduler: report of agent %s: %s", p->agent_id, strerror(-r));
	fjord__v1__poll_request__free_unpacked(poll, NULL);
}

static void *reporter_main(void *arg)
{
	struct ctl_http *h = arg;

	pthread_mutex_lock(&h->p_lock);
	for (;;) {
		struct ctl_presence *p;
		uint8_t *buf;
		size_t n;

		while (!h->p_queue_head && !h->p_stopping)
			pthread_cond_wait(&h->p_cond, &h->p_lock);
		p = h->p_queue_head;
		if (!p)
			break;
		h->p_queue_head = p->qnext;
		if (!h->p_queue_head)
			h->p_queue_tail = NULL;
		h->p_queued--;
		p->queued = 0;
		p->busy = 1;
		buf = p->pending;
		n = p->pending_len;
		p->pending = NULL;
		pthread_mutex_unlock(&h->p_lock);
		/* Presence entries live until ctl_poll_finish, so p stays valid here. */
		if (buf)
			report(h, p, buf, n, p->stored_ms, p->stored_hash);
		free(buf);
		pthread_mutex_lock(&h->p_lock);
		p->busy = 0;
		if (p->pending && !p->queued)
			enqueue(h, p); /* a newer report came in meanwhile */
	}
	pthread_mutex_unlock(&h->p_lock);
	return NULL;
}

void ctl_poll_overlay(struct ctl_http *h, Fjord__V1__Agent *a)
{
	int64_t now = fj_wall_ms(), window = ((int64_t)h->cfg->long_poll_max_s + 30) * 1000;
	struct ctl_presence *p;
	int waiting;

	pthread_mutex_lock(&h->p_lock);
	p = presence_get(h, a->id, 0);
	if (p && p->last_seen_ms > a->last_seen_ms)
		a->last_seen_ms = p->last_seen_ms;
	pthread_mutex_unlock(&h->p_lock);
	pthread_mutex_lock(&h->lock);
	waiting = find_waiter(h, a->id) != NULL;
	pthread_mutex_unlock(&h->lock);
	a->online = waiting || (a->last_seen_ms > 0 && now - a->last_seen_ms <= window);
}

void ctl_poll_counts(struct ctl_http *h, uint64_t *online, uint64_t *waiting, uint64_t *queued)
{
	int64_t now = fj_wall_ms(), window = ((int64_t)h->cfg->long_poll_max_s + 30) * 1000;
	size_t b;

	*online = 0;
	pthread_mutex_lock(&h->p_lock);
	for (b = 0; h->p_hash && b < P_BUCKETS; b++) {
		struct ctl_presence *p;

		for (p = h->p_hash[b]; p; p = p->hnext)
			if (now - p->last_seen_ms <= window)
				(*online)++;
	}
	*queued = h->p_queued;
	pthread_mutex_unlock(&h->p_lock);
	pthread_mutex_lock(&h->lock);
	*waiting = h->n_waiting;
	pthread_mutex_unlock(&h->lock);
}

/* ---- start and stop ------------------------------------------------------------------- */

int ctl_poll_start(struct ctl_http *h)
{
	pthread_condattr_t ca;
	int r, i;

	h->w_hash = calloc(W_BUCKETS, sizeof(*h->w_hash));
	h->p_hash = calloc(P_BUCKETS, sizeof(*h->p_hash));
	if (!h->w_hash || !h->p_hash)
		return -ENOMEM;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&h->cond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&h->p_cond, NULL);
	ctl_sched_set_notify(h->sched, on_notify, h);
	r = pthread_create(&h->timer, NULL, timer_main, h);
	if (r)
		return -r;
	h->timer_started = 1;
	for (i = 0; i < CTL_REPORTERS; i++) {
		r = pthread_create(&h->reporter[i], NULL, reporter_main, h);
		if (r)
			return -r;
		h->n_reporters++;
	}
	return 0;
}

void ctl_poll_stop(struct ctl_http *h)
{
	pthread_mutex_lock(&h->lock);
	h->stopping = 1;
	while (h->w_head)
		wake(h->w_head);
	pthread_cond_signal(&h->cond);
	pthread_mutex_unlock(&h->lock);
	if (h->timer_started)
		pthread_join(h->timer, NULL);
	h->timer_started = 0;
}

void ctl_poll_finish(struct ctl_http *h)
{
	size_t b;
	int i;

	pthread_mutex_lock(&h->p_lock);
	h->p_stopping = 1;
	pthread_cond_broadcast(&h->p_cond);
	pthread_mutex_unlock(&h->p_lock);
	for (i = 0; i < h->n_reporters; i++)
		pthread_join(h->reporter[i], NULL);
	h->n_reporters = 0;
	for (b = 0; h->p_hash && b < P_BUCKETS; b++)
		while (h->p_hash[b]) {
			struct ctl_presence *p = h->p_hash[b];

			h->p_hash[b] = p->hnext;
			free(p->pending);
			free(p->agent_id);
			free(p);
		}
	free(h->p_hash);
	free(h->w_hash);
	h->p_hash = NULL;
	h->w_hash = NULL;
}
