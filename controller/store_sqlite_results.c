/*
 * SQLite backend of ctl_store: results and traces (aggregates are in
 * store_sqlite_agg.c).
 *
 * Both agents of a run may send a result; each is stored (one per run and
 * agent). The client agent's result decides the run's outcome: it moves the
 * run to SUCCEEDED or FAILED (when the run has not ended otherwise already),
 * its summary metrics go to the metric table that aggregates read, and its
 * provenance scheduler is kept on the run for grouping.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_sqlite.h"

/* ---- results ---------------------------------------------------------------- */

struct result_ctx {
	char *run_id, *agent_id;
	char *error, *scheduler;
	int ok;
	int64_t now_ms;
	uint8_t *blob;
	size_t len;
	size_t n_metrics;
	struct {
		char *name;
		double value;
	} * metrics;
};

static void result_ctx_free(void *p)
{
	struct result_ctx *r = p;
	size_t i;

	for (i = 0; i < r->n_metrics; i++)
		free(r->metrics[i].name);
	free(r->metrics);
	free(r->run_id);
	free(r->agent_id);
	free(r->error);
	free(r->scheduler);
	free(r->blob);
}

static void result_ctx_free_all(void *p)
{
	result_ctx_free(p);
	free(p);
}

static int check_result(const Fjord__V1__Result *res, const char *agent_id)
{
	size_t i, j;

	if (!res || st_check_str("run_id", res->run_id, ST_ID_MAX, 0) ||
	    st_check_str("agent id", agent_id, ST_ID_MAX, 0) ||
	    st_check_str("error", res->error, ST_TEXT_MAX, 1))
		return -EINVAL;
	if (res->n_metrics > ST_LIST_MAX) {
		st_set_err("more than %d metrics", ST_LIST_MAX);
		return -EINVAL;
	}
	for (i = 0; i < res->n_metrics; i++) {
		if (!res->metrics[i] ||
		    st_check_str("metrics.name", res->metrics[i]->name, ST_ID_MAX, 0))
			return -EINVAL;
		if (!isfinite(res->metrics[i]->value)) {
			st_set_err("metric %s is not a finite number", res->metrics[i]->name);
			return -EINVAL;
		}
		for (j = 0; j < i; j++) {
			if (strcmp(res->metrics[i]->name, res->metrics[j]->name) == 0) {
				st_set_err("metric %s appears twice", res->metrics[i]->name);
				return -EINVAL;
			}
		}
	}
	if (res->provenance &&
	    st_check_str("provenance.scheduler", res->provenance->scheduler, ST_ID_MAX, 1))
		return -EINVAL;
	return 0;
}

static int result_ctx_fill(struct result_ctx *r, const Fjord__V1__Result *res, const char *agent_id,
			   int64_t now_ms)
{
	Fjord__V1__Result copy = *res;
	size_t i;

	/* The stored result names the agent the token proved, not a claim. */
	copy.agent_id = (char *)agent_id;
	r->ok = !!res->ok;
	r->now_ms = now_ms;
	r->run_id = strdup(res->run_id);
	r->agent_id = strdup(agent_id);
	r->error = st_strdup0(res->error);
	r->scheduler = st_strdup0(res->provenance ? res->provenance->scheduler : "");
	r->metrics = calloc(res->n_metrics ? res->n_metrics : 1, sizeof(*r->metrics));
	if (!r->run_id || !r->agent_id || !r->error || !r->scheduler || !r->metrics)
		return -ENOMEM;
	for (i = 0; i < res->n_metrics; i++) {
		r->metrics[i].name = strdup(res->metrics[i]->name);
		r->metrics[i].value = res->metrics[i]->value;
		r->n_metrics++;
		if (!r->metrics[i].name)
			return -ENOMEM;
	}
	return st_pack(&copy.base, &r->blob, &r->len);
}

static const char SQL_RES_RUN[] = "SELECT rid, client_agent, server_agent FROM run WHERE id = ?";
static const char SQL_RES_OLD[] = "SELECT msg FROM result WHERE run_rid = ? AND agent_id = ?";
static const char SQL_RES_INS[] = "INSERT INTO result(run_rid, agent_id, ok, received_ms, msg)"
				  " VALUES (?, ?, ?, ?, ?)";
static const char SQL_METRIC_INS[] = "INSERT INTO metric(name, run_rid, value) VALUES (?, ?, ?)";
static const char SQL_RES_FINISH[] =
	"UPDATE run SET state = ?, finished_ms = ?, reason = ?, scheduler = ?"
	" WHERE rid = ? AND state IN (1, 2, 3, 4)";
static const char SQL_RES_SCHED[] = "UPDATE run SET scheduler = ? WHERE rid = ?";

/* 1 when an identical result is stored, 0 when none is, else -errno. */
static int result_existing(struct store_conn *w, struct result_ctx *r, int64_t rid)
{
	sqlite3_stmt *s = st_stmt(w, SQL_RES_OLD);
	int rc, same = 0;

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, rid);
	sqlite3_bind_text(s, 2, r->agent_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		same = (size_t)sqlite3_column_bytes(s, 0) == r->len &&
		       memcmp(sqlite3_column_blob(s, 0), r->blob, r->len) == 0;
	sqlite3_reset(s);
	if (rc == SQLITE_DONE)
		return 0;
	if (rc != SQLITE_ROW)
		return st_sqlerr(w->db, rc);
	if (!same) {
		st_set_err("run %s already has a different result from %s", r->run_id, r->agent_id);
		return -EEXIST;
	}
	return 1;
}

static int result_metrics(struct store_conn *w, struct result_ctx *r, int64_t rid)
{
	sqlite3_stmt *s;
	size_t i;
	int rc;

	for (i = 0; i < r->n_metrics; i++) {
		s = st_stmt(w, SQL_METRIC_INS);
		if (!s)
			return -EIO;
		sqlite3_bind_text(s, 1, r->metrics[i].name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 2, rid);
		sqlite3_bind_double(s, 3, r->metrics[i].value);
		rc = sqlite3_step(s);
		sqlite3_reset(s);
		if (rc != SQLITE_DONE)
			return st_sqlerr(w->db, rc);
	}
	return 0;
}

static int result_finish_run(struct store_conn *w, struct result_ctx *r, int64_t rid)
{
	sqlite3_stmt *s = st_stmt(w, SQL_RES_FINISH);
	int rc;

	if (!s)
		return -EIO;
	sqlite3_bind_int(s, 1, r->ok ? RS_SUCCEEDED : RS_FAILED);
	sqlite3_bind_int64(s, 2, r->now_ms);
	sqlite3_bind_text(s, 3, r->ok ? "" : (*r->error ? r->error : "agent reported failure"), -1,
			  SQLITE_STATIC);
	sqlite3_bind_text(s, 4, r->scheduler, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 5, rid);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		return st_sqlerr(w->db, rc);
	if (sqlite3_changes(w->db) > 0)
		return 0;
	/* The run ended before (missed, deadline, cancelled): its outcome
	 * stands, but the late result's provenance still groups it. */
	s = st_stmt(w, SQL_RES_SCHED);
	if (!s)
		return -EIO;
	sqlite3_bind_text(s, 1, r->scheduler, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, rid);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : st_sqlerr(w->db, rc);
}

static int result_op(struct store_conn *w, void *ctx, struct store_wop *op)
{
	struct result_ctx *r = ctx;
	sqlite3_stmt *s = st_stmt(w, SQL_RES_RUN);
	int is_client, is_server, rc, err;
	int64_t rid;

	if (!s)
		return -EIO;
	sqlite3_bind_text(s, 1, r->run_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(s);
		if (rc == SQLITE_DONE) {
			st_set_err("no such run %s", r->run_id);
			return -ENOENT;
		}
		return st_sqlerr(w->db, rc);
	}
	rid = sqlite3_column_int64(s, 0);
	is_client = strcmp((const char *)sqlite3_column_text(s, 1), r->agent_id) == 0;
	is_server = strcmp((const char *)sqlite3_column_text(s, 2), r->agent_id) == 0;
	sqlite3_reset(s);
	if (!is_client && !is_server) {
		st_set_err("agent %s is not part of run %s", r->agent_id, r->run_id);
		return -EPERM;
	}
	/* Insert first: the unique (run, agent) key finds an earlier result
	 * without a lookup of its own in the common case of none. */
	s = st_stmt(w, SQL_RES_INS);
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, rid);
	sqlite3_bind_text(s, 2, r->agent_id, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 3, r->ok);
	sqlite3_bind_int64(s, 4, r->now_ms);
	sqlite3_bind_blob(s, 5, r->blob, (int)r->len, SQLITE_STATIC);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc == SQLITE_CONSTRAINT_UNIQUE) {
		err = result_existing(w, r, rid);
		if (err == 1)
			op->dup = 1;
		return err < 0 ? err : 0;
	}
	if (rc != SQLITE_DONE)
		return st_sqlerr(w->db, rc);
	if (!is_client)
		return 0;
	err = result_metrics(w, r, rid);
	return err ? err : result_finish_run(w, r, rid);
}

int ctl_store_result_put(struct ctl_store *st, const Fjord__V1__Result *res, const char *agent_id,
			 int64_t now_ms, int *duplicate)
{
	struct result_ctx r = { 0 };
	struct store_wop op = { .fn = result_op, .ctx = &r, .free_ctx = result_ctx_free };
	int err;

	if (!st || check_result(res, agent_id))
		return -EINVAL;
	err = result_ctx_fill(&r, res, agent_id, now_ms);
	if (err) {
		result_ctx_free(&r);
		return err;
	}
	err = st_submit_wait(st, &op);
	if (!err && duplicate)
		*duplicate = op.dup;
	return err;
}

int ctl_store_result_put_async(struct ctl_store *st, const Fjord__V1__Result *res,
			       const char *agent_id, int64_t now_ms,
			       void (*done)(void *arg, int err, int duplicate), void *arg)
{
	struct result_ctx *r;
	struct store_wop *op;
	int err;

	if (!st || !done || check_result(res, agent_id))
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	op = calloc(1, sizeof(*op));
	if (!r || !op) {
		free(r);
		free(op);
		return -ENOMEM;
	}
	err = result_ctx_fill(r, res, agent_id, now_ms);
	if (err) {
		result_ctx_free_all(r);
		free(op);
		return err;
	}
	op->fn = result_op;
	op->ctx = r;
	op->free_ctx = result_ctx_free_all;
	op->cb = done;
	op->cb_arg = arg;
	return st_submit_async(st, op);
}

int ctl_store_results_query(struct ctl_store *st, const struct ctl_query *q,
			    Fjord__V1__ResultList **out)
{
	struct st_qbuild qb = { .len = 0 };
	Fjord__V1__ResultList *l;
	struct store_conn *c;
	sqlite3_stmt *s = NULL;
	size_t cap = 0;
	int err = 0, rc = SQLITE_DONE;

	if (!st || !out)
		return -EINVAL;
	st_qb_add(&qb, "SELECT " RUN_COLS ", x.msg FROM result x JOIN run r ON r.rid = x.run_rid"
		       " JOIN run_msg rm ON rm.rid = r.rid"
		       " WHERE 1");
	err = st_qb_filters(&qb, q);
	if (err)
		return err;
	st_qb_add(&qb, " ORDER BY r.due_ms, r.rid, x.agent_id");
	st_qb_limit(&qb, q);
	l = malloc(sizeof(*l));
	if (!l)
		return -ENOMEM;
	fjord__v1__result_list__init(l);
	c = st_conn_get(st, &err);
	if (!c) {
		free(l);
		return err;
	}
	err = st_qb_prepare(c, &qb, &s);
	while (!err && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		Fjord__V1__ResultRow *row;
		Fjord__V1__ResultRow **n = st_grow(l->rows, l->n_rows, &cap, sizeof(*n));

		if (!n) {
			err = -ENOMEM;
			break;
		}
		l->rows = n;
		row = malloc(sizeof(*row));
		if (!row) {
			err = -ENOMEM;
			break;
		}
		fjord__v1__result_row__init(row);
		l->rows[l->n_rows++] = row;
		err = st_run_from_row(s, 0, &row->run);
		if (err)
			break;
		row->result = fjord__v1__result__unpack(NULL,
							(size_t)sqlite3_column_bytes(s, RUN_NCOLS),
							sqlite3_column_blob(s, RUN_NCOLS));
		if (!row->result) {
			st_set_err("stored result message does not unpack");
			err = -EIO;
		}
	}
	if (!err && rc != SQLITE_DONE)
		err = st_sqlerr(c->db, rc);
	sqlite3_finalize(s);
	st_conn_put(st, c);
	if (err) {
		fjord__v1__result_list__free_unpacked(l, NULL);
		return err;
	}
	*out = l;
	return 0;
}

/* ---- traces ------------------------------------------------------------------ */

struct trace_ctx {
	char *run_id, *name, *content_type;
	char sha[65];
	uint64_t size;
	int64_t uploaded_ms;
};

static void trace_ctx_free(void *p)
{
	struct trace_ctx *t = p;

	free(t->run_id);
	free(t->name);
	free(t->content_type);
}

static int check_trace_name(const char *name)
{
	size_t i;

	if (!name || !*name) {
		st_set_err("trace name is missing");
		return -EINVAL;
	}
	for (i = 0; name[i]; i++) {
		char ch = name[i];

		if (i >= 64 || !((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
				 (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-')) {
			st_set_err("trace name must be [A-Za-z0-9._-]{1,64}");
			return -EINVAL;
		}
	}
	return 0;
}

static const char SQL_RUN_RID[] = "SELECT rid FROM run WHERE id = ?";
static const char SQL_TRACE_PUT[] = "INSERT OR REPLACE INTO trace(run_rid, name, sha256, size,"
				    " content_type, uploaded_ms) VALUES (?, ?, ?, ?, ?, ?)";

static int trace_op(struct store_conn *w, void *ctx, struct store_wop *op)
{
	struct trace_ctx *t = ctx;
	sqlite3_stmt *s = st_stmt(w, SQL_RUN_RID);
	int64_t rid;
	int rc;

	(void)op;
	if (!s)
		return -EIO;
	sqlite3_bind_text(s, 1, t->run_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	rid = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	if (rc == SQLITE_DONE) {
		st_set_err("no such run %s", t->run_id);
		return -ENOENT;
	}
	if (rc != SQLITE_ROW)
		return st_sqlerr(w->db, rc);
	s = st_stmt(w, SQL_TRACE_PUT);
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, rid);
	sqlite3_bind_text(s, 2, t->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, t->sha, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, (int64_t)t->size);
	sqlite3_bind_text(s, 5, t->content_type, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 6, t->uploaded_ms);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : st_sqlerr(w->db, rc);
}

int ctl_store_trace_put(struct ctl_store *st, const Fjord__V1__TraceInfo *ti)
{
	struct trace_ctx t = { 0 };
	struct store_wop op = { .fn = trace_op, .ctx = &t, .free_ctx = trace_ctx_free };

	if (!st || !ti || st_check_str("run_id", ti->run_id, ST_ID_MAX, 0) ||
	    check_trace_name(ti->name) || st_check_hex64("sha256", ti->sha256) ||
	    st_check_str("content_type", ti->content_type, ST_ID_MAX, 1))
		return -EINVAL;
	if (ti->size > (uint64_t)INT64_MAX) {
		st_set_err("trace size out of range");
		return -EINVAL;
	}
	t.run_id = strdup(ti->run_id);
	t.name = strdup(ti->name);
	t.content_type = st_strdup0(ti->content_type);
	memcpy(t.sha, ti->sha256, 65);
	t.size = ti->size;
	t.uploaded_ms = ti->uploaded_ms;
	if (!t.run_id || !t.name || !t.content_type) {
		trace_ctx_free(&t);
		return -ENOMEM;
	}
	return st_submit_wait(st, &op);
}

#define TRACE_SQL                                                                                  \
	"SELECT r.id, t.name, t.sha256, t.size, t.content_type, t.uploaded_ms FROM trace t"        \
	" JOIN run r ON r.rid = t.run_rid WHERE r.id = ?"

static const char SQL_TRACE_GET[] = TRACE_SQL " AND t.name = ?";
static const char SQL_TRACE_LIST[] = TRACE_SQL " ORDER BY t.name";

static int trace_from_row(sqlite3_stmt *s, Fjord__V1__TraceInfo **out)
{
	Fjord__V1__TraceInfo *t = malloc(sizeof(*t));
	int err;

	if (!t)
		return -ENOMEM;
	fjord__v1__trace_info__init(t);
	err = st_set_str(&t->run_id, (const char *)sqlite3_column_text(s, 0));
	err = err ? err : st_set_str(&t->name, (const char *)sqlite3_column_text(s, 1));
	err = err ? err : st_set_str(&t->sha256, (const char *)sqlite3_column_text(s, 2));
	err = err ? err : st_set_str(&t->content_type, (const char *)sqlite3_column_text(s, 4));
	t->size = (uint64_t)sqlite3_column_int64(s, 3);
	t->uploaded_ms = sqlite3_column_int64(s, 5);
	if (err) {
		fjord__v1__trace_info__free_unpacked(t, NULL);
		return err;
	}
	*out = t;
	return 0;
}

int ctl_store_trace_get(struct ctl_store *st, const char *run_id, const char *name,
			Fjord__V1__TraceInfo **out)
{
	struct store_conn *c;
	sqlite3_stmt *s;
	int err = 0, rc;

	if (!st || !out || st_check_str("run_id", run_id, ST_ID_MAX, 0) || check_trace_name(name))
		return -EINVAL;
	c = st_conn_get(st, &err);
	if (!c)
		return err;
	s = st_stmt(c, SQL_TRACE_GET);
	if (!s) {
		st_conn_put(st, c);
		return -EIO;
	}
	sqlite3_bind_text(s, 1, run_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		err = trace_from_row(s, out);
	} else if (rc == SQLITE_DONE) {
		st_set_err("no such trace");
		err = -ENOENT;
	} else {
		err = st_sqlerr(c->db, rc);
	}
	sqlite3_reset(s);
	st_conn_put(st, c);
	return err;
}

static int run_exists(struct store_conn *c, const char *run_id)
{
	sqlite3_stmt *s = st_stmt(c, SQL_RUN_RID);
	int rc;

	if (!s)
		return -EIO;
	sqlite3_bind_text(s, 1, run_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc == SQLITE_ROW)
		return 0;
	if (rc == SQLITE_DONE) {
		st_set_err("no such run %s", run_id);
		return -ENOENT;
	}
	return st_sqlerr(c->db, rc);
}

int ctl_store_trace_list(struct ctl_store *st, const char *run_id, Fjord__V1__TraceList **out)
{
	Fjord__V1__TraceList *l;
	struct store_conn *c;
	sqlite3_stmt *s;
	size_t cap = 0;
	int err = 0, rc = SQLITE_DONE;

	if (!st || !out || st_check_str("run_id", run_id, ST_ID_MAX, 0))
		return -EINVAL;
	l = malloc(sizeof(*l));
	if (!l)
		return -ENOMEM;
	fjord__v1__trace_list__init(l);
	c = st_conn_get(st, &err);
	if (!c) {
		free(l);
		return err;
	}
	s = st_stmt(c, SQL_TRACE_LIST);
	if (!s)
		err = -EIO;
	else
		sqlite3_bind_text(s, 1, run_id, -1, SQLITE_STATIC);
	while (!err && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		Fjord__V1__TraceInfo **n = st_grow(l->traces, l->n_traces, &cap, sizeof(*n));

		if (!n) {
			err = -ENOMEM;
			break;
		}
		l->traces = n;
		err = trace_from_row(s, &l->traces[l->n_traces]);
		if (!err)
			l->n_traces++;
	}
	if (!err && rc != SQLITE_DONE)
		err = st_sqlerr(c->db, rc);
	if (s)
		sqlite3_reset(s);
	/* No trace: say whether the run itself is unknown. */
	if (!err && !l->n_traces)
		err = run_exists(c, run_id);
	st_conn_put(st, c);
	if (err) {
		fjord__v1__trace_list__free_unpacked(l, NULL);
		return err;
	}
	*out = l;
	return 0;
}
