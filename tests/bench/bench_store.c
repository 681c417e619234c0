/*
 * bench-store: the controller store's two benchmark figures, each beside a
 * baseline measured in the same run (docs/benchmarks.md, "Controller
 * store").
 *
 * 1. Durable result ingestion through ctl_store_result_put_async from
 *    several threads (group commit), against the baseline of one
 *    transaction (and one fsync) per result: ctl_store_result_put called by
 *    one thread, so that every write is alone in its batch.
 * 2. The aggregate query (count, mean, median, p95, min, max per group) over
 *    every stored result, against the baseline of letting SQLite sort all
 *    (group, value) rows (ORDER BY group, value) and reading the
 *    statistics off the sorted stream.
 *
 * Usage: bench-store [-n results] [-b baseline_results] [-t threads]
 *                    [-w window] [-d dir] [-k]
 *        bench-store -a database     (only the aggregates, on a kept database)
 * The database lives in a fresh directory under dir (default $TMPDIR or
 * /tmp), removed at the end unless -k keeps it.
 */
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ctl_store.h"
#include "store_sqlite.h"

#define N_SITES	    10
#define N_ISPS	    3
#define EXP_RUNS    100000 /* runs per experiment created */
#define QUERY_REPS  5
#define METRIC_NAME "goodput_bps"

static const char *const schedulers[] = { "default", "redundant", "blest" };

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU time of the calling thread: the cost of a query without the waits
 * that other loads on a shared machine add to its wall time. */
static double cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "bench-store: %s: %s (%s)\n", what, strerror(-err), ctl_store_errmsg());
	exit(1);
}

/* A cheap deterministic generator for values and choices. */
static uint64_t rng_state = 88172645463325252ULL;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

struct world {
	struct ctl_store *st;
	char *agent[N_SITES];
	char site[N_SITES][16];
};

static void enroll_all(struct world *w)
{
	static const char *const isps[N_ISPS] = { "telenor", "uninett", "telia" };
	int i, k;

	for (i = 0; i < N_SITES; i++) {
		Fjord__V1__EnrollRequest req = FJORD__V1__ENROLL_REQUEST__INIT;
		Fjord__V1__Interface ifc[N_ISPS], *ifp[N_ISPS];
		char hash[65], addr[N_ISPS][32], *ap[N_ISPS];
		int err;

		snprintf(w->site[i], sizeof(w->site[i]), "site%02d", i);
		snprintf(hash, sizeof(hash), "%064x", i + 1);
		for (k = 0; k < N_ISPS; k++) {
			fjord__v1__interface__init(&ifc[k]);
			snprintf(addr[k], sizeof(addr[k]), "10.%d.%d.2/24", k, i);
			ap[k] = addr[k];
			ifc[k].name = "eth";
			ifc[k].isp = (char *)isps[k];
			ifc[k].addresses = &ap[k];
			ifc[k].n_addresses = 1;
			ifp[k] = &ifc[k];
		}
		req.site = w->site[i];
		req.node = "n1";
		req.interfaces = ifp;
		req.n_interfaces = N_ISPS;
		err = ctl_store_agent_enroll(w->st, &req, hash, 1, &w->agent[i]);
		if (err)
			die("enroll", err);
	}
}

/* Creates n runs in experiments of EXP_RUNS between random site pairs over
 * random ISP pairs with random stacks; run i is "<prefix><i / EXP_RUNS>.<i %
 * EXP_RUNS>". Returns the client agent of each run (the agent that sends
 * its result). */
static const char **create_runs(struct world *w, const char *prefix, size_t n)
{
	const char **clients = calloc(n, sizeof(*clients));
	static const char *const isps[N_ISPS] = { "telenor", "uninett", "telia" };
	Fjord__V1__ExperimentSpec spec = FJORD__V1__EXPERIMENT_SPEC__INIT;
	size_t done = 0, e = 0, i, m;

	spec.name = "bench";
	spec.type = FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_ECHO;
	while (done < n) {
		Fjord__V1__Experiment exp = FJORD__V1__EXPERIMENT__INIT;
		Fjord__V1__Run *runs, **rp;
		Fjord__V1__Path *paths, **pp;
		char eid[32], (*ids)[64];
		int err;

		m = n - done < EXP_RUNS ? n - done : EXP_RUNS;
		runs = calloc(m, sizeof(*runs));
		rp = calloc(m, sizeof(*rp));
		paths = calloc(m, sizeof(*paths));
		pp = calloc(m, sizeof(*pp));
		ids = calloc(m, sizeof(*ids));
		if (!runs || !rp || !paths || !pp || !ids || !clients)
			die("alloc", -ENOMEM);
		snprintf(eid, sizeof(eid), "%s%zu", prefix, e);
		exp.id = eid;
		exp.spec = &spec;
		exp.owner = "bench";
		for (i = 0; i < m; i++) {
			int c = (int)(rng() % N_SITES),
			    s = (c + 1 + (int)(rng() % (N_SITES - 1))) % N_SITES;

			fjord__v1__run__init(&runs[i]);
			fjord__v1__path__init(&paths[i]);
			snprintf(ids[i], sizeof(ids[i]), "%s.%zu", eid, i);
			paths[i].local_isp = (char *)isps[rng() % N_ISPS];
			paths[i].remote_isp = (char *)isps[rng() % N_ISPS];
			paths[i].family = 1 + (int)(rng() % 2);
			pp[i] = &paths[i];
			runs[i].id = ids[i];
			runs[i].experiment_id = eid;
			runs[i].stack = 1 + (int)(rng() % 3);
			runs[i].client_agent_id = w->agent[c];
			clients[done + i] = w->agent[c];
			runs[i].server_agent_id = w->agent[s];
			runs[i].client_site = w->site[c];
			runs[i].server_site = w->site[s];
			runs[i].paths = &pp[i];
			runs[i].n_paths = 1;
			runs[i].due_ms = 1000000 + (int64_t)(done + i) * 10;
			runs[i].deadline_ms = runs[i].due_ms + 300000;
			rp[i] = &runs[i];
		}
		err = ctl_store_experiment_create(w->st, &exp, rp, m);
		if (err)
			die("experiment_create", err);
		free(runs);
		free(rp);
		free(paths);
		free(pp);
		free(ids);
		done += m;
		e++;
	}
	return clients;
}

/* A result shaped like a real one: 3 summary metrics, provenance and two
 * subflows. */
struct result_buf {
	Fjord__V1__Result res;
	Fjord__V1__Metric m[3];
	Fjord__V1__Metric *mp[3];
	Fjord__V1__Provenance prov;
	Fjord__V1__SubflowMetrics sf[2];
	Fjord__V1__SubflowMetrics *sfp[2];
	char id[64];
};

static void result_fill(struct result_buf *b, const char *run_id, uint64_t r)
{
	int k;

	fjord__v1__result__init(&b->res);
	fjord__v1__provenance__init(&b->prov);
	snprintf(b->id, sizeof(b->id), "%s", run_id);
	b->res.run_id = b->id;
	b->res.ok = 1;
	b->res.started_ms = 1000;
	b->res.finished_ms = 2000;
	for (k = 0; k < 3; k++) {
		fjord__v1__metric__init(&b->m[k]);
		b->mp[k] = &b->m[k];
	}
	b->m[0].name = METRIC_NAME;
	b->m[0].value = 1e6 + (double)(r % 100000000);
	b->m[1].name = "rtt_p50_us";
	b->m[1].value = (double)(1000 + r % 50000);
	b->m[2].name = "retransmissions";
	b->m[2].value = (double)(r % 17);
	b->res.metrics = b->mp;
	b->res.n_metrics = 3;
	b->prov.stack = FJORD__V1__STACK__STACK_KERNEL;
	b->prov.scheduler = (char *)schedulers[r % 3];
	b->prov.congestion_control = "cubic";
	b->prov.kernel_version = "6.1.0";
	b->res.provenance = &b->prov;
	for (k = 0; k < 2; k++) {
		fjord__v1__subflow_metrics__init(&b->sf[k]);
		b->sf[k].id = (uint32_t)k;
		b->sf[k].local_address = "10.0.0.2";
		b->sf[k].remote_address = "10.0.1.2";
		b->sf[k].local_isp = "telenor";
		b->sf[k].remote_isp = "uninett";
		b->sf[k].bytes_sent = r % 1000000;
		b->sf[k].srtt_us = 12000;
		b->sf[k].cwnd = 40;
		b->sfp[k] = &b->sf[k];
	}
	b->res.subflows = b->sfp;
	b->res.n_subflows = 2;
}

/* ---- ingestion ----------------------------------------------------------------- */

struct ingest {
	struct world *w;
	const char *prefix;
	const char **client; /* client agent per run index */
	size_t per_exp, n, window;
	int threads;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	size_t acked, failed;
};

struct ingest_thr {
	struct ingest *in;
	int t;
	size_t inflight;
	pthread_mutex_t lock;
	pthread_cond_t cond;
};

static void ingest_done(void *arg, int err, int dup)
{
	struct ingest_thr *th = arg;
	struct ingest *in = th->in;

	(void)dup;
	pthread_mutex_lock(&th->lock);
	th->inflight--;
	pthread_cond_signal(&th->cond);
	pthread_mutex_unlock(&th->lock);
	pthread_mutex_lock(&in->lock);
	if (err)
		in->failed++;
	else
		in->acked++;
	pthread_cond_broadcast(&in->cond);
	pthread_mutex_unlock(&in->lock);
}

/* One producer: its share of the runs, at most window results in flight,
 * as an HTTP worker with that many suspended uploads would. */
static void *ingest_thread(void *p)
{
	struct ingest_thr *th = p;
	struct ingest *in = th->in;
	struct result_buf b;
	char id[64];
	size_t i;
	int err;

	for (i = (size_t)th->t; i < in->n; i += (size_t)in->threads) {
		pthread_mutex_lock(&th->lock);
		while (th->inflight >= in->window)
			pthread_cond_wait(&th->cond, &th->lock);
		th->inflight++;
		pthread_mutex_unlock(&th->lock);
		snprintf(id, sizeof(id), "%s%zu.%zu", in->prefix, i / in->per_exp, i % in->per_exp);
		result_fill(&b, id, rng() ^ i);
		err = ctl_store_result_put_async(in->w->st, &b.res, in->client[i], 2000,
						 ingest_done, th);
		if (err)
			ingest_done(th, err, 0);
	}
	return NULL;
}

static double ingest_grouped(struct world *w, const char **client, size_t n, int threads,
			     size_t window)
{
	struct ingest in = { .w = w,
			     .prefix = "g",
			     .per_exp = EXP_RUNS,
			     .n = n,
			     .window = window,
			     .threads = threads };
	struct ingest_thr *th = calloc((size_t)threads, sizeof(*th));
	pthread_t *tid = calloc((size_t)threads, sizeof(*tid));
	uint64_t b0 = w->st->n_batches, o0 = w->st->n_ops, c0 = w->st->writer_cpu_ns;
	double t0, t1;
	int i;

	in.client = client;
	pthread_mutex_init(&in.lock, NULL);
	pthread_cond_init(&in.cond, NULL);
	t0 = now_s();
	for (i = 0; i < threads; i++) {
		th[i].in = &in;
		th[i].t = i;
		pthread_mutex_init(&th[i].lock, NULL);
		pthread_cond_init(&th[i].cond, NULL);
		pthread_create(&tid[i], NULL, ingest_thread, &th[i]);
	}
	for (i = 0; i < threads; i++)
		pthread_join(tid[i], NULL);
	pthread_mutex_lock(&in.lock);
	while (in.acked + in.failed < n)
		pthread_cond_wait(&in.cond, &in.lock);
	pthread_mutex_unlock(&in.lock);
	t1 = now_s();
	if (in.failed) {
		fprintf(stderr, "bench-store: %zu results failed\n", in.failed);
		exit(1);
	}
	printf("  group commit:   %zu results, %d threads x %zu in flight: %.2f s, %.0f results/s"
	       " (%.1f results per commit, writer CPU %.1f us per result)\n",
	       n, threads, window, t1 - t0, (double)n / (t1 - t0),
	       (double)(w->st->n_ops - o0) / (double)(w->st->n_batches - b0),
	       (double)(w->st->writer_cpu_ns - c0) / 1e3 / (double)n);
	free(th);
	free(tid);
	return (double)n / (t1 - t0);
}

static double ingest_baseline(struct world *w, const char **client, size_t n)
{
	struct result_buf b;
	char id[64];
	double t0, t1;
	size_t i;
	int err, dup;

	t0 = now_s();
	for (i = 0; i < n; i++) {
		snprintf(id, sizeof(id), "s%zu.%zu", i / EXP_RUNS, i % EXP_RUNS);
		result_fill(&b, id, rng() ^ i);
		err = ctl_store_result_put(w->st, &b.res, client[i], 2000, &dup);
		if (err)
			die("result_put", err);
	}
	t1 = now_s();
	printf("  baseline:       %zu results, 1 thread, one transaction each: %.2f s,"
	       " %.0f results/s\n",
	       n, t1 - t0, (double)n / (t1 - t0));
	return (double)n / (t1 - t0);
}

/* ---- aggregates -------------------------------------------------------------- */

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median_of(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_d);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double time_aggregate(struct world *w, enum ctl_group_by by, const struct ctl_query *q,
			     size_t *groups, uint64_t *rows, double *cpu)
{
	double t[QUERY_REPS], c[QUERY_REPS];
	int i, err;

	for (i = 0; i < QUERY_REPS; i++) {
		Fjord__V1__AggregateResponse *r = NULL;
		double t0 = now_s(), c0 = cpu_s();
		size_t k;

		err = ctl_store_aggregate(w->st, METRIC_NAME, by, q, &r);
		t[i] = now_s() - t0;
		c[i] = cpu_s() - c0;
		if (err)
			die("aggregate", err);
		*groups = r->n_rows;
		for (k = 0, *rows = 0; k < r->n_rows; k++)
			*rows += r->rows[k]->count;
		fjord__v1__aggregate_response__free_unpacked(r, NULL);
	}
	*cpu = median_of(c, QUERY_REPS);
	return median_of(t, QUERY_REPS);
}

/* Baseline: SQLite sorts every (group, value) row; statistics are read off
 * the sorted stream. */
static double time_sql_sort(const char *path, size_t *groups, uint64_t *rows, double *cpu)
{
	static const char sql[] =
		"SELECT r.client_site || '->' || r.server_site AS g, m.value FROM metric m"
		" CROSS JOIN run r ON r.rid = m.run_rid WHERE m.name = ? ORDER BY g, m.value";
	double t[QUERY_REPS], c[QUERY_REPS];
	sqlite3 *db;
	int i;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		die("sqlite3_open", -EIO);
	/* The same memory map and page cache as the store's readers. */
	sqlite3_exec(db, "PRAGMA mmap_size=4294967296; PRAGMA cache_size=-32768;", NULL, NULL,
		     NULL);
	for (i = 0; i < QUERY_REPS; i++) {
		double t0 = now_s(), c0 = cpu_s(), *v = NULL, sum = 0;
		char cur[64] = "";
		size_t n = 0, cap = 0;
		sqlite3_stmt *s;
		int rc;

		*groups = 0;
		*rows = 0;
		if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
			die("prepare", -EIO);
		sqlite3_bind_text(s, 1, METRIC_NAME, -1, SQLITE_STATIC);
		while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
			const char *g = (const char *)sqlite3_column_text(s, 0);

			if (strcmp(g, cur) != 0) {
				/* The finished group's p95 and median come from its
				 * sorted values; (computed, then dropped). */
				if (n)
					sum += v[n / 2] + v[(size_t)(0.95 * (double)(n - 1))];
				snprintf(cur, sizeof(cur), "%s", g);
				(*groups)++;
				n = 0;
			}
			if (n == cap) {
				cap = cap ? cap * 2 : 4096;
				v = realloc(v, cap * sizeof(*v));
				if (!v)
					die("alloc", -ENOMEM);
			}
			v[n++] = sqlite3_column_double(s, 1);
			(*rows)++;
		}
		if (n)
			sum += v[n / 2];
		sqlite3_finalize(s);
		free(v);
		t[i] = now_s() - t0;
		c[i] = cpu_s() - c0;
		if (rc != SQLITE_DONE || sum < 0)
			die("step", -EIO);
	}
	sqlite3_close(db);
	*cpu = median_of(c, QUERY_REPS);
	return median_of(t, QUERY_REPS);
}

static void aggregates(struct world *w, const char *path)
{
	static const struct {
		enum ctl_group_by by;
		const char *name;
	} bys[] = {
		{ CTL_GROUP_SITE_PAIR, "site_pair" },	{ CTL_GROUP_ISP_PAIR, "isp_pair" },
		{ CTL_GROUP_STACK, "stack" },		{ CTL_GROUP_SCHEDULER, "scheduler" },
		{ CTL_GROUP_EXPERIMENT, "experiment" },
	};
	struct ctl_query site = { .site = "site03" }, exp = { .experiment_id = "g3" };
	uint64_t rows;
	size_t i, groups;
	double t, cpu;

	printf("  (wall time and CPU time of the calling thread, medians of %d)\n", QUERY_REPS);
	for (i = 0; i < sizeof(bys) / sizeof(bys[0]); i++) {
		t = time_aggregate(w, bys[i].by, NULL, &groups, &rows, &cpu);
		printf("  by %-10s             %7llu results, %3zu groups: %.3f s wall, %.3f s CPU\n",
		       bys[i].name, (unsigned long long)rows, groups, t, cpu);
	}
	t = time_aggregate(w, CTL_GROUP_ISP_PAIR, &site, &groups, &rows, &cpu);
	printf("  by isp_pair, site=site03  %7llu results, %3zu groups: %.3f s wall, %.3f s CPU\n",
	       (unsigned long long)rows, groups, t, cpu);
	t = time_aggregate(w, CTL_GROUP_STACK, &exp, &groups, &rows, &cpu);
	printf("  by stack, experiment=g3   %7llu results, %3zu groups: %.3f s wall, %.3f s CPU\n",
	       (unsigned long long)rows, groups, t, cpu);
	t = time_sql_sort(path, &groups, &rows, &cpu);
	printf("  baseline: SQL join + ORDER BY group, value, by site_pair: %llu results,"
	       " %zu groups: %.3f s wall, %.3f s CPU\n",
	       (unsigned long long)rows, groups, t, cpu);
}

/* ---- main ------------------------------------------------------------------------- */

/* The machine is shared: say how busy it was. */
static void print_load(void)
{
	char buf[128] = "";
	FILE *f = fopen("/proc/loadavg", "r");

	if (f) {
		if (!fgets(buf, sizeof(buf), f))
			buf[0] = 0;
		fclose(f);
	}
	printf("  load average at start: %s", buf[0] ? buf : "unknown\n");
}

static void cleanup_dir(const char *dir, const char *path)
{
	static const char *const sfx[] = { "", "-wal", "-shm" };
	char p[4200];
	size_t i;

	for (i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s%s", path, sfx[i]);
		unlink(p);
	}
	rmdir(dir);
}

int main(int argc, char **argv)
{
	const char *base = getenv("TMPDIR");
	size_t n = 1000000, nb = 2000, window = 128;
	int threads = 4, c, err, i, keep = 0;
	const char *only_agg = NULL;
	char dir[4096], path[4200];
	struct world w = { 0 };
	const char **cs, **cg;
	double t0;

	if (!base || !*base)
		base = "/tmp";
	while ((c = getopt(argc, argv, "n:b:t:w:d:ka:")) != -1) {
		switch (c) {
		case 'k':
			keep = 1;
			break;
		case 'a':
			only_agg = optarg;
			break;
		case 'n':
			n = strtoul(optarg, NULL, 10);
			break;
		case 'b':
			nb = strtoul(optarg, NULL, 10);
			break;
		case 't':
			threads = atoi(optarg);
			break;
		case 'w':
			window = strtoul(optarg, NULL, 10);
			break;
		case 'd':
			base = optarg;
			break;
		default:
			fprintf(stderr, "usage: bench-store [-n results] [-b baseline_results]"
					" [-t threads] [-w window] [-d dir] [-k] | -a database\n");
			return 2;
		}
	}
	if (!n || !nb || threads < 1 || threads > 64 || !window) {
		fprintf(stderr, "bench-store: bad arguments\n");
		return 2;
	}
	if (only_agg) {
		print_load();
		err = ctl_store_open(only_agg, &w.st);
		if (err)
			die("open", err);
		aggregates(&w, only_agg);
		ctl_store_close(w.st);
		return 0;
	}
	snprintf(dir, sizeof(dir), "%s/fjord-bench-store-XXXXXX", base);
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(path, sizeof(path), "%s/ctl.db", dir);
	err = ctl_store_open(path, &w.st);
	if (err)
		die("open", err);
	enroll_all(&w);
	printf("controller store benchmark: SQLite %s, WAL, synchronous=FULL, database in %s\n",
	       sqlite3_libversion(), base);
	print_load();

	t0 = now_s();
	cs = create_runs(&w, "s", nb);
	cg = create_runs(&w, "g", n);
	printf("  setup:          %zu runs created in %.2f s\n", n + nb, now_s() - t0);
	printf("durable result ingestion (acknowledged = committed and fsynced):\n");
	ingest_baseline(&w, cs, nb);
	ingest_grouped(&w, cg, n, threads, window);
	free(cs);
	free(cg);
	printf("aggregate query (count, mean, median, p95, min, max of %s):\n", METRIC_NAME);
	aggregates(&w, path);
	printf("  database size:  %.1f MB\n", (double)ctl_store_size(w.st) / 1e6);
	ctl_store_close(w.st);
	for (i = 0; i < N_SITES; i++)
		free(w.agent[i]);
	if (keep)
		printf("  kept:           %s\n", path);
	else
		cleanup_dir(dir, path);
	return 0;
}
