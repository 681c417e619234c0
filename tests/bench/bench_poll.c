/*
 * bench-poll: load for fjord-controller's HTTP API over loopback.
 *
 *   bench-poll setup -d DIR -n AGENTS -r RUNS
 *	enrolls AGENTS agents directly through the store (DIR/fjord.db) and
 *	stores one experiment with RUNS runs between them; writes
 *	DIR/agents.txt ("id token" per line) and DIR/runs.txt ("run token").
 *   bench-poll load -u URL -d DIR -m poll|healthz|result|batch -c CONNS -s SECONDS [-w WAIT]
 *	[-b BATCH]
 *	keeps CONNS keep-alive requests in flight with libcurl's multi
 *	interface: polls cycle through every agent's token (wait_s WAIT,
 *	default 0 so the answer comes at once; with no command for the agents,
 *	WAIT > 0 holds each poll that long: CONNS held at once); healthz is the same load on /healthz, the
 *	floor of the HTTP stack; result uploads one result per run (durable
 *	before its 201) until the runs or the time run out; batch uploads the
 *	same results BATCH (default 100) of one agent's runs per POST
 *	/api/v1/results:batch and counts the items acknowledged 201. Prints the
 *	rate and the latency percentiles (per request).
 */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "ctl_store.h"
#include "fj_clock.h"

struct agent {
	char id[64];
	char token[CTL_TOKEN_HEX + 1];
};

struct opts {
	const char *dir, *url, *mode;
	size_t agents, runs, conns;
	double seconds;
	unsigned int wait_s; /* poll: how long each poll may be held */
	size_t batch;	     /* batch: results per request */
};

/* ---- setup --------------------------------------------------------------------- */

struct enroll_job {
	struct ctl_store *st;
	struct agent *a;
	size_t first, n;
	int err;
};

static void *enroll_thread(void *arg)
{
	struct enroll_job *j = arg;
	Fjord__V1__Interface i0 = FJORD__V1__INTERFACE__INIT, i1 = FJORD__V1__INTERFACE__INIT;
	Fjord__V1__Interface *ifs[2] = { &i0, &i1 };
	Fjord__V1__EnrollRequest req = FJORD__V1__ENROLL_REQUEST__INIT;
	char site[32], node[32], a0[48], a1[48], hash[CTL_TOKEN_HEX + 1];
	char *ad0[1] = { a0 }, *ad1[1] = { a1 };
	size_t k;

	i0.name = (char *)"eth0";
	i0.isp = (char *)"telenor";
	i0.addresses = ad0;
	i0.n_addresses = 1;
	i0.up = 1;
	i1.name = (char *)"eth1";
	i1.isp = (char *)"uninett";
	i1.addresses = ad1;
	i1.n_addresses = 1;
	i1.up = 1;
	req.site = site;
	req.node = node;
	req.interfaces = ifs;
	req.n_interfaces = 2;
	req.version = (char *)"bench";
	for (k = j->first; k < j->first + j->n && !j->err; k++) {
		char *id = NULL;

		snprintf(site, sizeof(site), "site%03zu", k % 100);
		snprintf(node, sizeof(node), "node%06zu", k);
		snprintf(a0, sizeof(a0), "10.%zu.%zu.2/16", k / 65536 % 256, k / 256 % 256);
		snprintf(a1, sizeof(a1), "10.%zu.%zu.3/16", 128 + k / 65536 % 128, k / 256 % 256);
		if (ctl_auth_new_token(j->a[k].token) < 0) {
			j->err = -EIO;
			break;
		}
		ctl_auth_sha256_hex(j->a[k].token, CTL_TOKEN_HEX, hash);
		j->err = ctl_store_agent_enroll(j->st, &req, hash, fj_wall_ms(), &id);
		if (!j->err)
			snprintf(j->a[k].id, sizeof(j->a[k].id), "%s", id);
		free(id);
	}
	return NULL;
}

static int enroll_all(struct ctl_store *st, struct agent *a, size_t n)
{
	enum { T = 16 };
	struct enroll_job jobs[T];
	pthread_t th[T];
	size_t i, per = (n + T - 1) / T;
	int err = 0;

	for (i = 0; i < T; i++) {
		jobs[i] = (struct enroll_job){ st, a, i * per, 0, 0 };
		if (jobs[i].first < n)
			jobs[i].n = jobs[i].first + per <= n ? per : n - jobs[i].first;
		pthread_create(&th[i], NULL, enroll_thread, &jobs[i]);
	}
	for (i = 0; i < T; i++) {
		pthread_join(th[i], NULL);
		if (jobs[i].err)
			err = jobs[i].err;
	}
	return err;
}

/* One experiment whose runs go round the agents; due in a day, so the
 * scheduler leaves them pending while results arrive. */
static int seed_runs(struct ctl_store *st, const struct agent *a, size_t n_agents, size_t n_runs,
		     FILE *out)
{
	Fjord__V1__ExperimentSpec spec = FJORD__V1__EXPERIMENT_SPEC__INIT;
	Fjord__V1__EchoParams echo = FJORD__V1__ECHO_PARAMS__INIT;
	Fjord__V1__Experiment exp = FJORD__V1__EXPERIMENT__INIT;
	Fjord__V1__Path path = FJORD__V1__PATH__INIT, *paths[1] = { &path };
	Fjord__V1__Run *runs = calloc(n_runs, sizeof(*runs));
	Fjord__V1__Run **rp = calloc(n_runs, sizeof(*rp));
	char(*ids)[32] = calloc(n_runs, sizeof(*ids));
	int64_t now = fj_wall_ms();
	size_t i;
	int err;

	if (!runs || !rp || !ids)
		return -ENOMEM;
	echo.count = 1;
	echo.message_bytes = 64;
	spec.name = (char *)"bench";
	spec.type = FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_ECHO;
	spec.params_case = FJORD__V1__EXPERIMENT_SPEC__PARAMS_ECHO;
	spec.echo = &echo;
	exp.id = (char *)"exp-bench";
	exp.spec = &spec;
	exp.state = FJORD__V1__EXPERIMENT_STATE__EXPERIMENT_STATE_ACTIVE;
	exp.owner = (char *)"bench";
	exp.created_ms = now;
	exp.runs_total = (uint32_t)n_runs;
	path.local_isp = (char *)"telenor";
	path.remote_isp = (char *)"uninett";
	path.family = FJORD__V1__ADDRESS_FAMILY__ADDRESS_FAMILY_IPV4;
	for (i = 0; i < n_runs; i++) {
		const struct agent *c = &a[i % n_agents], *s = &a[(i + 1) % n_agents];
		char site_c[16], site_s[16];

		snprintf(ids[i], sizeof(ids[i]), "run-bench-%07zu", i);
		snprintf(site_c, sizeof(site_c), "site%03zu", i % n_agents % 100);
		snprintf(site_s, sizeof(site_s), "site%03zu", (i + 1) % n_agents % 100);
		fjord__v1__run__init(&runs[i]);
		runs[i].id = ids[i];
		runs[i].experiment_id = exp.id;
		runs[i].type = spec.type;
		runs[i].stack = FJORD__V1__STACK__STACK_KERNEL;
		runs[i].client_agent_id = (char *)c->id;
		runs[i].server_agent_id = (char *)s->id;
		runs[i].client_site = strdup(site_c);
		runs[i].server_site = strdup(site_s);
		runs[i].paths = paths;
		runs[i].n_paths = 1;
		runs[i].sequence = (uint32_t)i;
		runs[i].state = FJORD__V1__RUN_STATE__RUN_STATE_PENDING;
		runs[i].due_ms = now + 86400000;
		runs[i].deadline_ms = now + 2 * 86400000;
		rp[i] = &runs[i];
		fprintf(out, "%s %s\n", ids[i], c->token);
	}
	err = ctl_store_experiment_create(st, &exp, rp, n_runs);
	for (i = 0; i < n_runs; i++) {
		free(runs[i].client_site);
		free(runs[i].server_site);
	}
	free(runs);
	free(rp);
	free(ids);
	return err;
}

static int setup(const struct opts *o)
{
	struct ctl_store *st;
	struct agent *a = calloc(o->agents, sizeof(*a));
	char path[512];
	uint64_t t0;
	FILE *f;
	size_t i;
	int err;

	snprintf(path, sizeof(path), "%s/fjord.db", o->dir);
	if (!a || ctl_store_open(path, &st) < 0) {
		fprintf(stderr, "bench-poll: cannot open %s\n", path);
		return 1;
	}
	t0 = fj_mono_ms();
	err = enroll_all(st, a, o->agents);
	if (err) {
		fprintf(stderr, "bench-poll: enroll: %s (%s)\n", strerror(-err),
			ctl_store_errmsg());
		return 1;
	}
	printf("setup: %zu agents enrolled through the store in %.1f s\n", o->agents,
	       (double)(fj_mono_ms() - t0) / 1000);
	snprintf(path, sizeof(path), "%s/agents.txt", o->dir);
	f = fopen(path, "w");
	for (i = 0; f && i < o->agents; i++)
		fprintf(f, "%s %s\n", a[i].id, a[i].token);
	if (!f || fclose(f) != 0)
		return 1;
	snprintf(path, sizeof(path), "%s/runs.txt", o->dir);
	f = fopen(path, "w");
	if (!f)
		return 1;
	err = o->runs ? seed_runs(st, a, o->agents, o->runs, f) : 0;
	fclose(f);
	if (err) {
		fprintf(stderr, "bench-poll: runs: %s (%s)\n", strerror(-err), ctl_store_errmsg());
		return 1;
	}
	ctl_store_close(st);
	free(a);
	return 0;
}

/* ---- load ---------------------------------------------------------------------- */

struct target {
	char *name; /* run id for results, agent id for polls */
	char *token;
	struct curl_slist *hdrs;
};

struct slot {
	CURL *e;
	uint64_t t0;
	struct batch *b; /* batch mode: what this request carries */
	uint8_t *resp;	 /* batch mode: the answer, to count its items */
	size_t resp_len, resp_cap;
};

/* One request of batch mode: results for runs of the same agent. */
struct batch {
	uint8_t *body;
	size_t len, n;
	struct curl_slist *hdrs;
};

struct load {
	const struct opts *o;
	struct target *t;
	size_t n_t, next;
	uint8_t *body;
	size_t body_len;
	char url[256];
	uint64_t *lat;
	size_t n_lat, cap_lat;
	size_t errors, first_status;
	struct batch *batches;
	size_t n_batches;
	size_t stored; /* batch mode: items acknowledged 201 */
};

static size_t sink(char *p, size_t size, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return size * n;
}

/* Keeps the answer of a batch request (capped: an answer of 1000 items is < 100 KB). */
static size_t keep(char *p, size_t size, size_t n, void *arg)
{
	struct slot *s = arg;
	size_t len = size * n;

	if (s->resp_len + len > (1u << 20))
		return 0;
	if (s->resp_len + len > s->resp_cap) {
		size_t cap = 2 * (s->resp_len + len);
		uint8_t *q = realloc(s->resp, cap);

		if (!q)
			return 0;
		s->resp = q;
		s->resp_cap = cap;
	}
	memcpy(s->resp + s->resp_len, p, len);
	s->resp_len += len;
	return len;
}

static int read_targets(struct load *l, const char *file)
{
	char path[512], a[160], b[160];
	size_t cap = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", l->o->dir, file);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fscanf(f, "%159s %159s", a, b) == 2) {
		if (l->n_t == cap) {
			cap = cap ? 2 * cap : 1024;
			l->t = realloc(l->t, cap * sizeof(*l->t));
		}
		l->t[l->n_t].name = strdup(a);
		l->t[l->n_t].token = strdup(b);
		l->t[l->n_t].hdrs = NULL;
		l->n_t++;
	}
	fclose(f);
	return l->n_t ? 0 : -1;
}

static void build_headers(struct load *l)
{
	char line[200];
	size_t i;

	for (i = 0; i < l->n_t; i++) {
		struct curl_slist *h = NULL;

		snprintf(line, sizeof(line), "Authorization: Bearer %s", l->t[i].token);
		h = curl_slist_append(h, line);
		h = curl_slist_append(h, "Content-Type: application/x-protobuf");
		h = curl_slist_append(h, "Accept: application/x-protobuf");
		h = curl_slist_append(h, "Expect:");
		l->t[i].hdrs = h;
	}
}

static void poll_body(struct load *l)
{
	Fjord__V1__PollRequest p = FJORD__V1__POLL_REQUEST__INIT;
	Fjord__V1__Interface i0 = FJORD__V1__INTERFACE__INIT, i1 = FJORD__V1__INTERFACE__INIT;
	Fjord__V1__Interface *ifs[2] = { &i0, &i1 };
	char *ad0[1] = { (char *)"10.0.0.2/16" }, *ad1[1] = { (char *)"10.128.0.3/16" };

	i0.name = (char *)"eth0";
	i0.isp = (char *)"telenor";
	i0.addresses = ad0;
	i0.n_addresses = 1;
	i0.up = 1;
	i1.name = (char *)"eth1";
	i1.isp = (char *)"uninett";
	i1.addresses = ad1;
	i1.n_addresses = 1;
	i1.up = 1;
	p.interfaces = ifs;
	p.n_interfaces = 2;
	p.version = (char *)"bench";
	p.wait_s = l->o->wait_s;
	l->body_len = fjord__v1__poll_request__get_packed_size(&p);
	l->body = malloc(l->body_len);
	fjord__v1__poll_request__pack(&p, l->body);
}

static const char *const metric_names[4] = { "goodput_bps", "rtt_p50_us", "rtt_p95_us",
					     "retransmissions" };

/* The result every upload sends (its run id aside); m and pv are its parts. */
static void result_fill(Fjord__V1__Result *r, Fjord__V1__Metric m[4], Fjord__V1__Metric *mp[4],
			Fjord__V1__Provenance *pv)
{
	size_t i;

	fjord__v1__result__init(r);
	fjord__v1__provenance__init(pv);
	for (i = 0; i < 4; i++) {
		fjord__v1__metric__init(&m[i]);
		m[i].name = (char *)metric_names[i];
		m[i].value = 1000.0 * (double)(i + 1);
		mp[i] = &m[i];
	}
	pv->stack = FJORD__V1__STACK__STACK_KERNEL;
	pv->scheduler = (char *)"default";
	r->ok = 1;
	r->started_ms = 1000;
	r->finished_ms = 2000;
	r->metrics = mp;
	r->n_metrics = 4;
	r->provenance = pv;
}

static void result_body(struct load *l)
{
	Fjord__V1__Result r;
	Fjord__V1__Metric m[4], *mp[4];
	Fjord__V1__Provenance pv;

	result_fill(&r, m, mp, &pv);
	l->body_len = fjord__v1__result__get_packed_size(&r);
	l->body = malloc(l->body_len);
	fjord__v1__result__pack(&r, l->body);
}

static int cmp_token(const void *a, const void *b)
{
	const struct target *x = a, *y = b;
	int c = strcmp(x->token, y->token);

	return c ? c : strcmp(x->name, y->name);
}

/* Batch mode: each agent's runs, BATCH at a time, packed once before the load. */
static int batch_bodies(struct load *l)
{
	Fjord__V1__ResultBatch rb = FJORD__V1__RESULT_BATCH__INIT;
	Fjord__V1__Result *rs, **rp;
	Fjord__V1__Metric m[4], *mp[4];
	Fjord__V1__Provenance pv;
	size_t i = 0, j, n, bs = l->o->batch;

	qsort(l->t, l->n_t, sizeof(*l->t), cmp_token);
	rs = calloc(bs, sizeof(*rs));
	rp = calloc(bs, sizeof(*rp));
	l->batches = calloc(l->n_t, sizeof(*l->batches));
	if (!rs || !rp || !l->batches)
		return -1;
	while (i < l->n_t) {
		struct batch *b = &l->batches[l->n_batches++];

		for (n = 0;
		     n < bs && i + n < l->n_t && strcmp(l->t[i + n].token, l->t[i].token) == 0;
		     n++) {
			result_fill(&rs[n], m, mp, &pv);
			rs[n].run_id = l->t[i + n].name;
			rp[n] = &rs[n];
		}
		rb.results = rp;
		rb.n_results = n;
		b->len = fjord__v1__result_batch__get_packed_size(&rb);
		b->body = malloc(b->len);
		if (!b->body)
			return -1;
		fjord__v1__result_batch__pack(&rb, b->body);
		b->n = n;
		b->hdrs = l->t[i].hdrs;
		i += n;
	}
	/* Interleave agents, as many agents uploading at once would. */
	for (i = l->n_batches; i > 1; i--) {
		struct batch tmp;

		j = (size_t)rand() % i;
		tmp = l->batches[i - 1];
		l->batches[i - 1] = l->batches[j];
		l->batches[j] = tmp;
	}
	free(rs);
	free(rp);
	return 0;
}

/* Points the handle at the next target; 0 when there is none left. */
static int arm(struct load *l, struct slot *s, const char *mode)
{
	char url[512];
	struct target *t;

	if (strcmp(mode, "batch") == 0) {
		if (l->next >= l->n_batches)
			return 0;
		s->b = &l->batches[l->next++];
		s->resp_len = 0;
		curl_easy_reset(s->e);
		curl_easy_setopt(s->e, CURLOPT_WRITEFUNCTION, keep);
		curl_easy_setopt(s->e, CURLOPT_WRITEDATA, s);
		curl_easy_setopt(s->e, CURLOPT_HTTPHEADER, s->b->hdrs);
		snprintf(url, sizeof(url), "%s/api/v1/results:batch", l->o->url);
		curl_easy_setopt(s->e, CURLOPT_POSTFIELDS, s->b->body);
		curl_easy_setopt(s->e, CURLOPT_POSTFIELDSIZE, (long)s->b->len);
		curl_easy_setopt(s->e, CURLOPT_URL, url);
		curl_easy_setopt(s->e, CURLOPT_PRIVATE, s);
		s->t0 = fj_mono_us();
		return 1;
	}
	if (strcmp(mode, "result") == 0 && l->next >= l->n_t)
		return 0;
	t = &l->t[l->next++ % l->n_t];
	curl_easy_reset(s->e);
	curl_easy_setopt(s->e, CURLOPT_WRITEFUNCTION, sink);
	/* The same headers everywhere, so /healthz differs only by its route. */
	curl_easy_setopt(s->e, CURLOPT_HTTPHEADER, t->hdrs);
	if (strcmp(mode, "healthz") == 0) {
		snprintf(url, sizeof(url), "%s/healthz", l->o->url);
	} else {
		if (strcmp(mode, "poll") == 0)
			snprintf(url, sizeof(url), "%s/api/v1/poll", l->o->url);
		else
			snprintf(url, sizeof(url), "%s/api/v1/runs/%s/result", l->o->url, t->name);
		curl_easy_setopt(s->e, CURLOPT_POSTFIELDS, l->body);
		curl_easy_setopt(s->e, CURLOPT_POSTFIELDSIZE, (long)l->body_len);
	}
	curl_easy_setopt(s->e, CURLOPT_URL, url);
	curl_easy_setopt(s->e, CURLOPT_PRIVATE, s);
	s->t0 = fj_mono_us();
	return 1;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void record(struct load *l, struct slot *s, CURLcode rc, long want)
{
	long status = 0;

	curl_easy_getinfo(s->e, CURLINFO_RESPONSE_CODE, &status);
	if (rc != CURLE_OK || status != want) {
		if (!l->errors)
			l->first_status = rc != CURLE_OK ? (size_t)rc : (size_t)status;
		l->errors++;
		return;
	}
	if (l->n_lat == l->cap_lat) {
		l->cap_lat = l->cap_lat ? 2 * l->cap_lat : 65536;
		l->lat = realloc(l->lat, l->cap_lat * sizeof(*l->lat));
	}
	l->lat[l->n_lat++] = fj_mono_us() - s->t0;
	if (s->b) {
		/* Only items the answer acknowledges as stored count. */
		Fjord__V1__ResultBatchAck *ack =
			fjord__v1__result_batch_ack__unpack(NULL, s->resp_len, s->resp);
		size_t i, ok = 0;

		for (i = 0; ack && i < ack->n_items; i++)
			ok += ack->items[i]->status == 201;
		if (!ack || ok != s->b->n) {
			if (!l->errors)
				l->first_status = ack && ack->n_items ? ack->items[0]->status : 0;
			l->errors += s->b->n - ok;
		}
		l->stored += ok;
		if (ack)
			fjord__v1__result_batch_ack__free_unpacked(ack, NULL);
	}
}

static int load(const struct opts *o)
{
	struct load l = { .o = o };
	const char *mode = o->mode;
	int is_res = strcmp(mode, "result") == 0 || strcmp(mode, "batch") == 0;
	long want = strcmp(mode, "result") == 0 ? 201 : 200;
	struct slot *slots = calloc(o->conns, sizeof(*slots));
	uint64_t t0, end, elapsed;
	size_t i, running = 0;
	CURLM *m;

	if (read_targets(&l, is_res ? "runs.txt" : "agents.txt") < 0) {
		fprintf(stderr, "bench-poll: no targets in %s\n", o->dir);
		return 1;
	}
	build_headers(&l);
	if (strcmp(mode, "result") == 0)
		result_body(&l);
	else
		poll_body(&l);
	if (strcmp(mode, "batch") == 0 && batch_bodies(&l) < 0) {
		fprintf(stderr, "bench-poll: out of memory\n");
		return 1;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	m = curl_multi_init();
	curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)o->conns);
	curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, (long)o->conns);
	t0 = fj_mono_us();
	end = t0 + (uint64_t)(o->seconds * 1e6);
	for (i = 0; i < o->conns; i++) {
		slots[i].e = curl_easy_init();
		if (arm(&l, &slots[i], mode)) {
			curl_multi_add_handle(m, slots[i].e);
			running++;
		}
	}
	while (running) {
		CURLMsg *msg;
		int left, still;

		curl_multi_perform(m, &still);
		while ((msg = curl_multi_info_read(m, &left))) {
			struct slot *s;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
			record(&l, s, msg->data.result, want);
			curl_multi_remove_handle(m, s->e);
			if (fj_mono_us() < end && arm(&l, s, mode))
				curl_multi_add_handle(m, s->e);
			else
				running--;
		}
		if (running)
			curl_multi_poll(m, NULL, 0, 100, NULL);
	}
	elapsed = fj_mono_us() - t0;
	qsort(l.lat, l.n_lat, sizeof(*l.lat), cmp_u64);
	printf("%s: %zu targets, %zu connections, %.1f s: %zu answered, %.0f/s, "
	       "min %.2f ms, p50 %.2f ms, p99 %.2f ms, max %.2f ms, errors %zu",
	       mode, l.n_t, o->conns, (double)elapsed / 1e6, l.n_lat,
	       (double)l.n_lat / ((double)elapsed / 1e6), l.n_lat ? (double)l.lat[0] / 1000 : 0,
	       l.n_lat ? (double)l.lat[l.n_lat / 2] / 1000 : 0,
	       l.n_lat ? (double)l.lat[l.n_lat * 99 / 100] / 1000 : 0,
	       l.n_lat ? (double)l.lat[l.n_lat - 1] / 1000 : 0, l.errors);
	if (l.errors)
		printf(" (first: %zu)", l.first_status);
	if (l.batches)
		printf("; %zu results per request: %zu results stored, %.0f results/s", o->batch,
		       l.stored, (double)l.stored / ((double)elapsed / 1e6));
	printf("\n");
	for (i = 0; i < l.n_batches; i++)
		free(l.batches[i].body);
	free(l.batches);
	for (i = 0; i < o->conns; i++) {
		curl_easy_cleanup(slots[i].e);
		free(slots[i].resp);
	}
	curl_multi_cleanup(m);
	for (i = 0; i < l.n_t; i++) {
		curl_slist_free_all(l.t[i].hdrs);
		free(l.t[i].name);
		free(l.t[i].token);
	}
	free(l.t);
	free(l.lat);
	free(l.body);
	free(slots);
	return l.errors ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct opts o = { .agents = 10000, .runs = 0, .conns = 64, .seconds = 5, .batch = 100 };
	int c;

	if (argc < 2) {
		fprintf(stderr, "usage: bench-poll setup -d DIR -n AGENTS -r RUNS\n"
				"       bench-poll load -u URL -d DIR -m poll|healthz|result|batch "
				"-c CONNS -s SECONDS [-w WAIT_S] [-b BATCH]\n");
		return 2;
	}
	optind = 2;
	while ((c = getopt(argc, argv, "d:n:r:u:m:c:s:w:b:")) != -1) {
		switch (c) {
		case 'd':
			o.dir = optarg;
			break;
		case 'n':
			o.agents = strtoul(optarg, NULL, 10);
			break;
		case 'r':
			o.runs = strtoul(optarg, NULL, 10);
			break;
		case 'u':
			o.url = optarg;
			break;
		case 'm':
			o.mode = optarg;
			break;
		case 'c':
			o.conns = strtoul(optarg, NULL, 10);
			break;
		case 's':
			o.seconds = strtod(optarg, NULL);
			break;
		case 'w':
			o.wait_s = (unsigned int)strtoul(optarg, NULL, 10);
			break;
		case 'b':
			o.batch = strtoul(optarg, NULL, 10);
			break;
		default:
			return 2;
		}
	}
	if (!o.dir || o.agents == 0 || o.conns == 0 || o.batch == 0 || o.batch > 1000) {
		fprintf(stderr, "bench-poll: -d DIR is required; -n and -c must be positive, "
				"-b 1 to 1000\n");
		return 2;
	}
	if (strcmp(argv[1], "setup") == 0)
		return setup(&o);
	if (strcmp(argv[1], "load") == 0 && o.url && o.mode &&
	    (!strcmp(o.mode, "poll") || !strcmp(o.mode, "healthz") || !strcmp(o.mode, "result") ||
	     !strcmp(o.mode, "batch")))
		return load(&o);
	fprintf(stderr, "bench-poll: bad command or options\n");
	return 2;
}
