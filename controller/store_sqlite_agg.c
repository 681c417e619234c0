/*
 * SQLite backend of ctl_store: aggregates of one summary metric per group.
 *
 * The metric's rows (primary key (name, run): one range, in run order) are
 * merged with the filtered run rows (rowid order) here, or, under a
 * selective indexed filter, looked up from the matching runs. The (group,
 * value) pairs are grouped in a hash table, and each group's median and p95
 * come from a linear-time selection rather than a sort. Nothing sorts the
 * whole set.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_sqlite.h"

#define KEY_MAX (2 * ST_ID_MAX + 8)

struct agg_group {
	char *key;
	size_t klen;
	uint64_t hash;
	double *v;
	size_t n, cap;
	double sum, min, max;
};

struct agg_table {
	struct agg_group *g;
	size_t n, cap; /* open addressing; cap is a power of two */
};

static uint64_t hash_bytes(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ULL;
	size_t i;

	for (i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
	return h;
}

static int agg_grow(struct agg_table *t)
{
	size_t ncap = t->cap ? t->cap * 2 : 64, i, j;
	struct agg_group *ng = calloc(ncap, sizeof(*ng));

	if (!ng)
		return -ENOMEM;
	for (i = 0; i < t->cap; i++) {
		if (!t->g[i].key)
			continue;
		for (j = t->g[i].hash & (ncap - 1); ng[j].key; j = (j + 1) & (ncap - 1))
			;
		ng[j] = t->g[i];
	}
	free(t->g);
	t->g = ng;
	t->cap = ncap;
	return 0;
}

static struct agg_group *agg_find(struct agg_table *t, const char *key, size_t klen)
{
	uint64_t h = hash_bytes(key, klen);
	struct agg_group *g;
	size_t j;

	if ((t->n + 1) * 2 > t->cap && agg_grow(t))
		return NULL;
	for (j = h & (t->cap - 1); t->g[j].key; j = (j + 1) & (t->cap - 1)) {
		g = &t->g[j];
		if (g->hash == h && g->klen == klen && memcmp(g->key, key, klen) == 0)
			return g;
	}
	g = &t->g[j];
	g->key = malloc(klen + 1);
	if (!g->key)
		return NULL;
	memcpy(g->key, key, klen);
	g->key[klen] = 0;
	g->klen = klen;
	g->hash = h;
	t->n++;
	return g;
}

static int agg_add(struct agg_group *g, double v)
{
	if (g->n == g->cap) {
		size_t nc = g->cap ? g->cap * 2 : 256;
		double *nv = realloc(g->v, nc * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		g->v = nv;
		g->cap = nc;
	}
	if (!g->n || v < g->min)
		g->min = v;
	if (!g->n || v > g->max)
		g->max = v;
	g->v[g->n++] = v;
	g->sum += v;
	return 0;
}

static void agg_free(struct agg_table *t)
{
	size_t i;

	for (i = 0; i < t->cap; i++) {
		free(t->g[i].key);
		free(t->g[i].v);
	}
	free(t->g);
}

/* Rearranges v so that v[k] is the k-th smallest, nothing larger before it
 * and nothing smaller after it (quickselect, median-of-three pivot). */
static double select_kth(double *v, size_t n, size_t k)
{
	ptrdiff_t lo = 0, hi = (ptrdiff_t)n - 1, i, j, mid;
	double pivot, tmp;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (v[mid] < v[lo]) {
			tmp = v[mid], v[mid] = v[lo], v[lo] = tmp;
		}
		if (v[hi] < v[lo]) {
			tmp = v[hi], v[hi] = v[lo], v[lo] = tmp;
		}
		if (v[hi] < v[mid]) {
			tmp = v[hi], v[hi] = v[mid], v[mid] = tmp;
		}
		pivot = v[mid];
		i = lo;
		j = hi;
		while (i <= j) {
			while (v[i] < pivot)
				i++;
			while (v[j] > pivot)
				j--;
			if (i <= j) {
				tmp = v[i], v[i] = v[j], v[j] = tmp;
				i++;
				j--;
			}
		}
		if ((ptrdiff_t)k <= j)
			hi = j;
		else if ((ptrdiff_t)k >= i)
			lo = i;
		else
			break;
	}
	return v[k];
}

/* Percentile p of v[0..n-1] (reordered), interpolating linearly between the
 * two closest ranks (the "linear" method of numpy and R type 7). */
static double percentile(double *v, size_t n, double p)
{
	double pos = p * (double)(n - 1), a, b;
	size_t lo = (size_t)pos, i;

	a = select_kth(v, n, lo);
	if (lo + 1 >= n || pos == (double)lo)
		return a;
	/* After the selection, the next rank is the smallest of the rest. */
	for (b = v[lo + 1], i = lo + 2; i < n; i++)
		if (v[i] < b)
			b = v[i];
	return a + (b - a) * (pos - (double)lo);
}

static int cmp_group(const void *a, const void *b)
{
	const struct agg_group *x = *(const struct agg_group *const *)a;
	const struct agg_group *y = *(const struct agg_group *const *)b;

	return strcmp(x->key, y->key);
}

static const char *stack_name(int64_t s)
{
	switch (s) {
	case FJORD__V1__STACK__STACK_BUNDLED:
		return "bundled";
	case FJORD__V1__STACK__STACK_KERNEL:
		return "kernel";
	case FJORD__V1__STACK__STACK_TCP:
		return "tcp";
	default:
		return "unspecified";
	}
}

static const char *const group_names[] = {
	[CTL_GROUP_SITE_PAIR] = "site_pair",   [CTL_GROUP_ISP_PAIR] = "isp_pair",
	[CTL_GROUP_STACK] = "stack",	       [CTL_GROUP_SCHEDULER] = "scheduler",
	[CTL_GROUP_EXPERIMENT] = "experiment",
};

/* The group key of the current row, from columns 1 and 2, without
 * formatting: text pairs as "a->b", integers as their 8 raw bytes (named
 * once per group afterwards). */
static size_t agg_key(sqlite3_stmt *s, enum ctl_group_by by, char *key)
{
	size_t la, lb;
	int64_t i;

	switch (by) {
	case CTL_GROUP_SITE_PAIR:
	case CTL_GROUP_ISP_PAIR:
		la = (size_t)sqlite3_column_bytes(s, 1);
		lb = (size_t)sqlite3_column_bytes(s, 2);
		if (la > ST_ID_MAX)
			la = ST_ID_MAX;
		if (lb > ST_ID_MAX)
			lb = ST_ID_MAX;
		memcpy(key, sqlite3_column_text(s, 1), la);
		memcpy(key + la, "->", 2);
		memcpy(key + la + 2, sqlite3_column_text(s, 2), lb);
		return la + 2 + lb;
	case CTL_GROUP_SCHEDULER:
		la = (size_t)sqlite3_column_bytes(s, 1);
		if (la > ST_ID_MAX)
			la = ST_ID_MAX;
		if (!la) {
			memcpy(key, "default", 7);
			return 7;
		}
		memcpy(key, sqlite3_column_text(s, 1), la);
		return la;
	case CTL_GROUP_STACK:
	case CTL_GROUP_EXPERIMENT:
		i = sqlite3_column_int64(s, 1);
		memcpy(key, &i, sizeof(i));
		return sizeof(i);
	}
	return 0;
}

static const char SQL_EXP_ID[] = "SELECT id FROM experiment WHERE rid = ?";

/* Replaces the raw integer keys of stack and experiment groups by names. */
static int agg_name_groups(struct store_conn *c, struct agg_table *t, enum ctl_group_by by)
{
	char *name;
	size_t i;
	int64_t v;

	if (by != CTL_GROUP_STACK && by != CTL_GROUP_EXPERIMENT)
		return 0;
	for (i = 0; i < t->cap; i++) {
		struct agg_group *g = &t->g[i];

		if (!g->key)
			continue;
		memcpy(&v, g->key, sizeof(v));
		if (by == CTL_GROUP_STACK) {
			name = strdup(stack_name(v));
		} else {
			sqlite3_stmt *s = st_stmt(c, SQL_EXP_ID);

			if (!s)
				return -EIO;
			sqlite3_bind_int64(s, 1, v);
			name = sqlite3_step(s) == SQLITE_ROW
				       ? strdup((const char *)sqlite3_column_text(s, 0))
				       : strdup("");
			sqlite3_reset(s);
		}
		if (!name)
			return -ENOMEM;
		free(g->key);
		g->key = name;
	}
	return 0;
}

static int agg_rows(struct agg_table *t, const char *metric, enum ctl_group_by by,
		    Fjord__V1__AggregateResponse **out)
{
	Fjord__V1__AggregateResponse *r = malloc(sizeof(*r));
	struct agg_group **sorted;
	size_t i, k;

	if (!r)
		return -ENOMEM;
	fjord__v1__aggregate_response__init(r);
	r->metric = strdup(metric);
	r->group_by = strdup(group_names[by]);
	sorted = calloc(t->n ? t->n : 1, sizeof(*sorted));
	r->rows = calloc(t->n ? t->n : 1, sizeof(*r->rows));
	if (!r->metric || !r->group_by || !sorted || !r->rows)
		goto nomem;
	for (i = 0, k = 0; i < t->cap; i++)
		if (t->g[i].key)
			sorted[k++] = &t->g[i];
	qsort(sorted, t->n, sizeof(*sorted), cmp_group);
	for (i = 0; i < t->n; i++) {
		struct agg_group *g = sorted[i];
		Fjord__V1__AggregateRow *row = malloc(sizeof(*row));

		if (!row)
			goto nomem;
		fjord__v1__aggregate_row__init(row);
		r->rows[r->n_rows++] = row;
		row->group = strdup(g->key);
		if (!row->group)
			goto nomem;
		row->count = g->n;
		row->mean = g->sum / (double)g->n;
		row->min = g->min;
		row->max = g->max;
		row->p95 = percentile(g->v, g->n, 0.95);
		row->median = percentile(g->v, g->n, 0.5);
	}
	free(sorted);
	*out = r;
	return 0;
nomem:
	free(sorted);
	fjord__v1__aggregate_response__free_unpacked(r, NULL);
	return -ENOMEM;
}

static const char *const group_cols[] = {
	[CTL_GROUP_SITE_PAIR] = "r.client_site, r.server_site",
	[CTL_GROUP_ISP_PAIR] = "r.isp_local, r.isp_remote",
	[CTL_GROUP_STACK] = "r.stack",
	[CTL_GROUP_SCHEDULER] = "r.scheduler",
	[CTL_GROUP_EXPERIMENT] = "r.experiment_rid",
};

/* Selective filters (indexed): let SQLite start from the few matching runs
 * and look their metric up. Columns: value, group columns. */
static int agg_by_lookup(struct store_conn *c, const char *metric, enum ctl_group_by by,
			 const struct ctl_query *q, struct agg_table *t)
{
	struct st_qbuild qb = { .len = 0 };
	struct agg_group *g;
	sqlite3_stmt *s = NULL;
	char key[KEY_MAX];
	int err, rc = SQLITE_DONE;

	st_qb_add(&qb,
		  "SELECT m.value, %s FROM run r JOIN metric m ON m.name = ? AND m.run_rid = r.rid"
		  " WHERE 1",
		  group_cols[by]);
	st_qb_text(&qb, metric);
	err = st_qb_filters(&qb, q);
	if (!err)
		err = st_qb_prepare(c, &qb, &s);
	while (!err && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		g = agg_find(t, key, agg_key(s, by, key));
		err = g ? agg_add(g, sqlite3_column_double(s, 0)) : -ENOMEM;
	}
	if (!err && rc != SQLITE_DONE)
		err = st_sqlerr(c->db, rc);
	sqlite3_finalize(s);
	return err;
}

/*
 * Everything else: a merge join done here. The metric's rows come in run
 * order (the primary key is (name, run)), the filtered runs in rowid
 * order: two sequential scans and no B-tree descent per row, where a SQL
 * join would look every run up on its own.
 */
static int agg_by_merge(struct store_conn *c, const char *metric, enum ctl_group_by by,
			const struct ctl_query *q, struct agg_table *t)
{
	static const char SQL_METRIC_SCAN[] =
		"SELECT run_rid, value FROM metric WHERE name = ? ORDER BY run_rid";
	struct st_qbuild qb = { .len = 0 };
	sqlite3_stmt *ms = NULL, *rs = NULL;
	struct agg_group *g;
	char key[KEY_MAX];
	int64_t mrid, rrid;
	int err, mrc, rrc;

	/* Columns of rs: rid, then the group columns from index 1 (as agg_key
	 * wants them). */
	st_qb_add(&qb, "SELECT r.rid, %s FROM run r WHERE 1", group_cols[by]);
	err = st_qb_filters(&qb, q);
	st_qb_add(&qb, " ORDER BY r.rid");
	if (!err)
		err = st_qb_prepare(c, &qb, &rs);
	if (!err && sqlite3_prepare_v2(c->db, SQL_METRIC_SCAN, -1, &ms, NULL) != SQLITE_OK)
		err = st_sqlerr(c->db, sqlite3_errcode(c->db));
	if (err) {
		sqlite3_finalize(rs);
		return err;
	}
	sqlite3_bind_text(ms, 1, metric, -1, SQLITE_STATIC);
	mrc = sqlite3_step(ms);
	rrc = sqlite3_step(rs);
	while (!err && mrc == SQLITE_ROW && rrc == SQLITE_ROW) {
		mrid = sqlite3_column_int64(ms, 0);
		rrid = sqlite3_column_int64(rs, 0);
		if (mrid < rrid) {
			mrc = sqlite3_step(ms);
		} else if (rrid < mrid) {
			rrc = sqlite3_step(rs);
		} else {
			g = agg_find(t, key, agg_key(rs, by, key));
			err = g ? agg_add(g, sqlite3_column_double(ms, 1)) : -ENOMEM;
			mrc = sqlite3_step(ms);
			rrc = sqlite3_step(rs);
		}
	}
	if (!err && (mrc != SQLITE_ROW && mrc != SQLITE_DONE))
		err = st_sqlerr(c->db, mrc);
	if (!err && (rrc != SQLITE_ROW && rrc != SQLITE_DONE))
		err = st_sqlerr(c->db, rrc);
	sqlite3_finalize(ms);
	sqlite3_finalize(rs);
	return err;
}

int ctl_store_aggregate(struct ctl_store *st, const char *metric, enum ctl_group_by by,
			const struct ctl_query *q, Fjord__V1__AggregateResponse **out)
{
	struct agg_table t = { 0 };
	struct store_conn *c;
	int err = 0;

	if (!st || !out || st_check_str("metric", metric, ST_ID_MAX, 0))
		return -EINVAL;
	if ((int)by < 0 || by > CTL_GROUP_EXPERIMENT) {
		st_set_err("unknown group_by");
		return -EINVAL;
	}
	c = st_conn_get(st, &err);
	if (!c)
		return err;
	/* Both statements run in one read transaction of the connection, so
	 * the merge sees one snapshot. */
	err = sqlite3_exec(c->db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK ? 0 : -EIO;
	if (!err) {
		if (q && (q->experiment_id || q->agent_id || q->from_ms || q->to_ms))
			err = agg_by_lookup(c, metric, by, q, &t);
		else
			err = agg_by_merge(c, metric, by, q, &t);
		if (!err)
			err = agg_name_groups(c, &t, by);
		sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL);
	}
	st_conn_put(st, c);
	if (!err)
		err = agg_rows(&t, metric, by, out);
	agg_free(&t);
	return err;
}
