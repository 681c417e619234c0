/*
 * SQLite backend of ctl_store: experiments, runs, run state transitions and
 * the filtered run query shared by results and aggregates.
 *
 * A run is stored as its packed message (the parts that never change) plus
 * columns for what queries filter on and for its mutable state; reads patch
 * the columns back into the unpacked message.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_sqlite.h"

/* ---- query building ------------------------------------------------------ */

void st_qb_add(struct st_qbuild *qb, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (qb->overflow)
		return;
	va_start(ap, fmt);
	n = vsnprintf(qb->sql + qb->len, sizeof(qb->sql) - qb->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(qb->sql) - qb->len)
		qb->overflow = 1;
	else
		qb->len += (size_t)n;
}

void st_qb_text(struct st_qbuild *qb, const char *s)
{
	if (qb->nb >= (int)(sizeof(qb->b) / sizeof(qb->b[0]))) {
		qb->overflow = 1;
		return;
	}
	qb->b[qb->nb].is_text = 1;
	qb->b[qb->nb].s = s;
	qb->nb++;
}

void st_qb_int(struct st_qbuild *qb, int64_t v)
{
	if (qb->nb >= (int)(sizeof(qb->b) / sizeof(qb->b[0]))) {
		qb->overflow = 1;
		return;
	}
	qb->b[qb->nb].is_text = 0;
	qb->b[qb->nb].i = v;
	qb->nb++;
}

int st_qb_filters(struct st_qbuild *qb, const struct ctl_query *q)
{
	struct ctl_query none = { 0 };
	int i, first;

	if (!q)
		q = &none;
	if ((q->experiment_id && st_check_str("experiment", q->experiment_id, ST_ID_MAX, 0)) ||
	    (q->site && st_check_str("site", q->site, ST_ID_MAX, 0)) ||
	    (q->isp && st_check_str("isp", q->isp, ST_ID_MAX, 0)) ||
	    (q->agent_id && st_check_str("agent", q->agent_id, ST_ID_MAX, 0)))
		return -EINVAL;
	if (q->family < 0 || q->family > FJORD__V1__ADDRESS_FAMILY__ADDRESS_FAMILY_IPV6) {
		st_set_err("family must be ipv4 or ipv6");
		return -EINVAL;
	}
	if (q->stack < 0 || q->stack > FJORD__V1__STACK__STACK_TCP) {
		st_set_err("stack must be bundled, kernel or tcp");
		return -EINVAL;
	}
	if (q->state_mask & ~RS_ALL_MASK) {
		st_set_err("state mask has bits of no run state");
		return -EINVAL;
	}
	if (q->from_ms < 0 || q->to_ms < 0 || (q->to_ms && q->to_ms < q->from_ms)) {
		st_set_err("time range is negative or reversed");
		return -EINVAL;
	}
	if (q->limit > ST_LIMIT_MAX) {
		st_set_err("limit is above %d", ST_LIMIT_MAX);
		return -EINVAL;
	}
	if (q->offset > (size_t)INT32_MAX) {
		st_set_err("offset is too large");
		return -EINVAL;
	}
	if (q->experiment_id) {
		st_qb_add(qb, " AND r.experiment_rid = (SELECT rid FROM experiment WHERE id = ?)");
		st_qb_text(qb, q->experiment_id);
	}
	if (q->site) {
		st_qb_add(qb, " AND (r.client_site = ? OR r.server_site = ?)");
		st_qb_text(qb, q->site);
		st_qb_text(qb, q->site);
	}
	if (q->agent_id) {
		st_qb_add(qb, " AND (r.client_agent = ? OR r.server_agent = ?)");
		st_qb_text(qb, q->agent_id);
		st_qb_text(qb, q->agent_id);
	}
	if (q->isp) {
		st_qb_add(qb, " AND EXISTS (SELECT 1 FROM run_path p WHERE p.run_rid = r.rid"
			      " AND (p.local_isp = ? OR p.remote_isp = ?))");
		st_qb_text(qb, q->isp);
		st_qb_text(qb, q->isp);
	}
	if (q->family) {
		st_qb_add(qb, " AND (r.family_mask & ?) != 0");
		st_qb_int(qb, 1 << q->family);
	}
	if (q->stack) {
		st_qb_add(qb, " AND r.stack = ?");
		st_qb_int(qb, q->stack);
	}
	if (q->state_mask) {
		/* IN (...) rather than a bit test so the (state, due) index serves. */
		st_qb_add(qb, " AND r.state IN (");
		for (i = 1, first = 1; i <= RS_CANCELLED; i++) {
			if (!(q->state_mask & CTL_RUN_BIT(i)))
				continue;
			st_qb_add(qb, first ? "%d" : ", %d", i);
			first = 0;
		}
		st_qb_add(qb, ")");
	}
	if (q->from_ms) {
		st_qb_add(qb, " AND r.due_ms >= ?");
		st_qb_int(qb, q->from_ms);
	}
	if (q->to_ms) {
		st_qb_add(qb, " AND r.due_ms < ?");
		st_qb_int(qb, q->to_ms);
	}
	return 0;
}

void st_qb_limit(struct st_qbuild *qb, const struct ctl_query *q)
{
	st_qb_add(qb, " LIMIT ? OFFSET ?");
	st_qb_int(qb, q && q->limit ? (int64_t)q->limit : ST_LIMIT_DEF);
	st_qb_int(qb, q ? (int64_t)q->offset : 0);
}

int st_qb_prepare(struct store_conn *c, struct st_qbuild *qb, sqlite3_stmt **out)
{
	sqlite3_stmt *s;
	int i, rc;

	if (qb->overflow) {
		st_set_err("query too long");
		return -EINVAL;
	}
	rc = sqlite3_prepare_v2(c->db, qb->sql, (int)qb->len, &s, NULL);
	if (rc != SQLITE_OK)
		return st_sqlerr(c->db, rc);
	for (i = 0; i < qb->nb; i++) {
		if (qb->b[i].is_text)
			sqlite3_bind_text(s, i + 1, qb->b[i].s, -1, SQLITE_STATIC);
		else
			sqlite3_bind_int64(s, i + 1, qb->b[i].i);
	}
	*out = s;
	return 0;
}

/* ---- runs from rows -------------------------------------------------------- */

int st_run_from_row(sqlite3_stmt *s, int col, Fjord__V1__Run **out)
{
	Fjord__V1__Run *r;

	r = fjord__v1__run__unpack(NULL, (size_t)sqlite3_column_bytes(s, col),
				   sqlite3_column_blob(s, col));
	if (!r) {
		st_set_err("stored run message does not unpack");
		return -EIO;
	}
	r->state = sqlite3_column_int(s, col + 1);
	if (st_set_str(&r->reason, (const char *)sqlite3_column_text(s, col + 2))) {
		fjord__v1__run__free_unpacked(r, NULL);
		return -ENOMEM;
	}
	r->dispatched_ms = sqlite3_column_int64(s, col + 3);
	r->started_ms = sqlite3_column_int64(s, col + 4);
	r->finished_ms = sqlite3_column_int64(s, col + 5);
	r->deadline_ms = sqlite3_column_int64(s, col + 6);
	r->due_ms = sqlite3_column_int64(s, col + 7);
	*out = r;
	return 0;
}

/* Runs every row of s into a RunList. */
static int run_list_collect(sqlite3 *db, sqlite3_stmt *s, Fjord__V1__RunList **out)
{
	Fjord__V1__RunList *l = malloc(sizeof(*l));
	size_t cap = 0;
	int err = 0, rc;

	if (!l)
		return -ENOMEM;
	fjord__v1__run_list__init(l);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		Fjord__V1__Run **n = st_grow(l->runs, l->n_runs, &cap, sizeof(*n));

		if (!n) {
			err = -ENOMEM;
			break;
		}
		l->runs = n;
		err = st_run_from_row(s, 0, &l->runs[l->n_runs]);
		if (err)
			break;
		l->n_runs++;
	}
	if (!err && rc != SQLITE_DONE)
		err = st_sqlerr(db, rc);
	if (err) {
		fjord__v1__run_list__free_unpacked(l, NULL);
		return err;
	}
	*out = l;
	return 0;
}

/* ---- experiments ---------------------------------------------------------- */

struct run_row {
	char *id;
	char *client_agent, *server_agent, *client_site, *server_site;
	char *isp_local, *isp_remote;
	int stack, state;
	int family_mask;
	int64_t due_ms, deadline_ms;
	size_t n_paths;
	struct {
		char *local_isp, *remote_isp;
		int family;
	} * paths;
	uint8_t *blob;
	size_t len;
};

struct exp_ctx {
	char *id, *owner;
	int64_t created_ms;
	uint8_t *blob;
	size_t len;
	struct run_row *runs;
	size_t n_runs;
};

static void exp_ctx_free(void *p)
{
	struct exp_ctx *e = p;
	size_t i, j;

	for (i = 0; i < e->n_runs; i++) {
		struct run_row *r = &e->runs[i];

		free(r->id);
		free(r->client_agent);
		free(r->server_agent);
		free(r->client_site);
		free(r->server_site);
		free(r->isp_local);
		free(r->isp_remote);
		for (j = 0; j < r->n_paths; j++) {
			free(r->paths[j].local_isp);
			free(r->paths[j].remote_isp);
		}
		free(r->paths);
		free(r->blob);
	}
	free(e->runs);
	free(e->id);
	free(e->owner);
	free(e->blob);
}

static int check_run(const Fjord__V1__Run *r, const char *exp_id)
{
	size_t i;

	if (!r || st_check_str("run id", r->id, ST_ID_MAX, 0) ||
	    st_check_str("run client_agent_id", r->client_agent_id, ST_ID_MAX, 0) ||
	    st_check_str("run server_agent_id", r->server_agent_id, ST_ID_MAX, 0) ||
	    st_check_str("run client_site", r->client_site, ST_ID_MAX, 1) ||
	    st_check_str("run server_site", r->server_site, ST_ID_MAX, 1))
		return -EINVAL;
	if (r->experiment_id && *r->experiment_id && strcmp(r->experiment_id, exp_id) != 0) {
		st_set_err("run %s belongs to another experiment", r->id);
		return -EINVAL;
	}
	if (r->stack < 0 || r->stack > FJORD__V1__STACK__STACK_TCP) {
		st_set_err("run %s has an unknown stack", r->id);
		return -EINVAL;
	}
	if (r->n_paths > ST_LIST_MAX) {
		st_set_err("run %s has too many paths", r->id);
		return -EINVAL;
	}
	for (i = 0; i < r->n_paths; i++) {
		if (!r->paths[i] ||
		    st_check_str("path local_isp", r->paths[i]->local_isp, ST_ID_MAX, 1) ||
		    st_check_str("path remote_isp", r->paths[i]->remote_isp, ST_ID_MAX, 1) ||
		    st_check_str("path local_address", r->paths[i]->local_address, ST_ID_MAX, 1) ||
		    st_check_str("path remote_address", r->paths[i]->remote_address, ST_ID_MAX, 1))
			return -EINVAL;
		if (r->paths[i]->family < 0 ||
		    r->paths[i]->family > FJORD__V1__ADDRESS_FAMILY__ADDRESS_FAMILY_IPV6) {
			st_set_err("run %s has a path of unknown family", r->id);
			return -EINVAL;
		}
	}
	return 0;
}

/* Copies what the writer needs of one run: its columns and its blob. */
static int run_row_fill(struct run_row *rr, const Fjord__V1__Run *r, const char *exp_id)
{
	Fjord__V1__Run copy = *r;
	size_t i;
	int err;

	copy.experiment_id = (char *)exp_id;
	copy.state = RS_PENDING;
	copy.reason = (char *)protobuf_c_empty_string;
	copy.dispatched_ms = copy.started_ms = copy.finished_ms = 0;
	err = st_pack(&copy.base, &rr->blob, &rr->len);
	if (err)
		return err;
	rr->id = strdup(r->id);
	rr->client_agent = strdup(r->client_agent_id);
	rr->server_agent = strdup(r->server_agent_id);
	rr->client_site = st_strdup0(r->client_site);
	rr->server_site = st_strdup0(r->server_site);
	rr->isp_local = st_strdup0(r->n_paths ? r->paths[0]->local_isp : "");
	rr->isp_remote = st_strdup0(r->n_paths ? r->paths[0]->remote_isp : "");
	rr->stack = r->stack;
	rr->state = r->state >= RS_PENDING && r->state <= RS_CANCELLED ? r->state : RS_PENDING;
	rr->due_ms = r->due_ms;
	rr->deadline_ms = r->deadline_ms;
	rr->paths = calloc(r->n_paths ? r->n_paths : 1, sizeof(*rr->paths));
	if (!rr->id || !rr->client_agent || !rr->server_agent || !rr->client_site ||
	    !rr->server_site || !rr->isp_local || !rr->isp_remote || !rr->paths)
		return -ENOMEM;
	for (i = 0; i < r->n_paths; i++) {
		rr->paths[i].local_isp = st_strdup0(r->paths[i]->local_isp);
		rr->paths[i].remote_isp = st_strdup0(r->paths[i]->remote_isp);
		rr->paths[i].family = r->paths[i]->family;
		rr->n_paths++;
		if (!rr->paths[i].local_isp || !rr->paths[i].remote_isp)
			return -ENOMEM;
		rr->family_mask |= 1 << r->paths[i]->family;
	}
	return 0;
}

static const char SQL_EXP_INS[] = "INSERT INTO experiment(id, state, owner, created_ms,"
				  " runs_total, msg) VALUES (?, ?, ?, ?, ?, ?)";
static const char SQL_RUN_INS[] =
	"INSERT INTO run(id, experiment_rid, state, due_ms, deadline_ms, stack, client_agent,"
	" server_agent, client_site, server_site, family_mask, isp_local, isp_remote)"
	" VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
static const char SQL_RUN_MSG_INS[] = "INSERT INTO run_msg(rid, msg) VALUES (?, ?)";
static const char SQL_PATH_INS[] = "INSERT INTO run_path(run_rid, idx, local_isp, remote_isp,"
				   " family) VALUES (?, ?, ?, ?, ?)";

static int insert_run(struct store_conn *w, int64_t exp_rid, const struct run_row *r)
{
	sqlite3_stmt *s = st_stmt(w, SQL_RUN_INS);
	int64_t rid;
	size_t j;
	int rc;

	if (!s)
		return -EIO;
	sqlite3_bind_text(s, 1, r->id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, exp_rid);
	sqlite3_bind_int(s, 3, r->state);
	sqlite3_bind_int64(s, 4, r->due_ms);
	sqlite3_bind_int64(s, 5, r->deadline_ms);
	sqlite3_bind_int(s, 6, r->stack);
	sqlite3_bind_text(s, 7, r->client_agent, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 8, r->server_agent, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 9, r->client_site, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 10, r->server_site, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 11, r->family_mask);
	sqlite3_bind_text(s, 12, r->isp_local, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 13, r->isp_remote, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		int err = st_sqlerr(w->db, rc);

		if (err == -ENOENT)
			st_set_err("run %s names an unknown agent", r->id);
		return err;
	}
	rid = sqlite3_last_insert_rowid(w->db);
	s = st_stmt(w, SQL_RUN_MSG_INS);
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, rid);
	sqlite3_bind_blob(s, 2, r->blob, (int)r->len, SQLITE_STATIC);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		return st_sqlerr(w->db, rc);
	for (j = 0; j < r->n_paths; j++) {
		s = st_stmt(w, SQL_PATH_INS);
		if (!s)
			return -EIO;
		sqlite3_bind_int64(s, 1, rid);
		sqlite3_bind_int(s, 2, (int)j);
		sqlite3_bind_text(s, 3, r->paths[j].local_isp, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 4, r->paths[j].remote_isp, -1, SQLITE_STATIC);
		sqlite3_bind_int(s, 5, r->paths[j].family);
		rc = sqlite3_step(s);
		sqlite3_reset(s);
		if (rc != SQLITE_DONE)
			return st_sqlerr(w->db, rc);
	}
	return 0;
}

static int exp_create_op(struct store_conn *w, void *ctx, struct store_wop *op)
{
	struct exp_ctx *e = ctx;
	sqlite3_stmt *s = st_stmt(w, SQL_EXP_INS);
	int64_t rid;
	size_t i;
	int rc, err;

	(void)op;
	if (!s)
		return -EIO;
	sqlite3_bind_text(s, 1, e->id, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 2, FJORD__V1__EXPERIMENT_STATE__EXPERIMENT_STATE_ACTIVE);
	sqlite3_bind_text(s, 3, e->owner, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, e->created_ms);
	sqlite3_bind_int64(s, 5, (int64_t)e->n_runs);
	sqlite3_bind_blob(s, 6, e->blob, (int)e->len, SQLITE_STATIC);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		return st_sqlerr(w->db, rc);
	rid = sqlite3_last_insert_rowid(w->db);
	for (i = 0; i < e->n_runs; i++) {
		err = insert_run(w, rid, &e->runs[i]);
		if (err)
			return err;
	}
	return 0;
}

int ctl_store_experiment_create(struct ctl_store *st, const Fjord__V1__Experiment *exp,
				Fjord__V1__Run *const *runs, size_t n_runs)
{
	struct exp_ctx e = { 0 };
	struct store_wop op = { .fn = exp_create_op, .ctx = &e, .free_ctx = exp_ctx_free };
	Fjord__V1__Experiment copy;
	size_t i;
	int err;

	if (!st || !exp || (n_runs && !runs) ||
	    st_check_str("experiment id", exp->id, ST_ID_MAX, 0) ||
	    st_check_str("experiment owner", exp->owner, ST_ID_MAX, 1))
		return -EINVAL;
	if (!exp->spec) {
		st_set_err("experiment has no spec");
		return -EINVAL;
	}
	if (n_runs > ST_RUNS_MAX) {
		st_set_err("experiment has more than %d runs", ST_RUNS_MAX);
		return -EINVAL;
	}
	for (i = 0; i < n_runs; i++)
		if (check_run(runs[i], exp->id))
			return -EINVAL;
	/* State, totals and counts live in columns; the blob keeps the rest. */
	copy = *exp;
	copy.state = FJORD__V1__EXPERIMENT_STATE__EXPERIMENT_STATE_ACTIVE;
	copy.runs_total = (uint32_t)n_runs;
	copy.runs_done = 0;
	e.id = strdup(exp->id);
	e.owner = st_strdup0(exp->owner);
	e.created_ms = exp->created_ms;
	e.runs = calloc(n_runs ? n_runs : 1, sizeof(*e.runs));
	err = e.id && e.owner && e.runs ? st_pack(&copy.base, &e.blob, &e.len) : -ENOMEM;
	for (i = 0; !err && i < n_runs; i++) {
		e.n_runs++;
		err = run_row_fill(&e.runs[i], runs[i], exp->id);
	}
	if (err) {
		exp_ctx_free(&e);
		return err;
	}
	return st_submit_wait(st, &op);
}

#define EXP_COLS                                                                                   \
	"e.msg, e.state, e.runs_total, (SELECT count(*) FROM run x WHERE x.experiment_rid = e.rid" \
	" AND x.state >= 5)"

static const char SQL_EXP_GET[] = "SELECT " EXP_COLS " FROM experiment e WHERE e.id = ?";
static const char SQL_EXP_ALL[] = "SELECT " EXP_COLS " FROM experiment e ORDER BY e.rid";

static int exp_from_row(sqlite3_stmt *s, Fjord__V1__Experiment **out)
{
	Fjord__V1__Experiment *e;

	e = fjord__v1__experiment__unpack(NULL, (size_t)sqlite3_column_bytes(s, 0),
					  sqlite3_column_blob(s, 0));
	if (!e) {
		st_set_err("stored experiment message does not unpack");
		return -EIO;
	}
	e->state = sqlite3_column_int(s, 1);
	e->runs_total = (uint32_t)sqlite3_column_int64(s, 2);
	e->runs_done = (uint32_t)sqlite3_column_int64(s, 3);
	/* An active experiment whose runs all ended is done. */
	if (e->state == FJORD__V1__EXPERIMENT_STATE__EXPERIMENT_STATE_ACTIVE &&
	    e->runs_done == e->runs_total)
		e->state = FJORD__V1__EXPERIMENT_STATE__EXPERIMENT_STATE_DONE;
	*out = e;
	return 0;
}

int ctl_store_experiment_get(struct ctl_store *st, const char *id, Fjord__V1__Experiment **out)
{
	struct store_conn *c;
	sqlite3_stmt *s;
	int err = 0, rc;

	if (!st || !out || st_check_str("experiment id", id, ST_ID_MAX, 0))
		return -EINVAL;
	c = st_conn_get(st, &err);
	if (!c)
		return err;
	s = st_stmt(c, SQL_EXP_GET);
	if (!s) {
		st_conn_put(st, c);
		return -EIO;
	}
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		err = exp_from_row(s, out);
	} else if (rc == SQLITE_DONE) {
		st_set_err("no such experiment");
		err = -ENOENT;
	} else {
		err = st_sqlerr(c->db, rc);
	}
	sqlite3_reset(s);
	st_conn_put(st, c);
	return err;
}

int ctl_store_experiment_list(struct ctl_store *st, Fjord__V1__ExperimentList **out)
{
	Fjord__V1__ExperimentList *l;
	struct store_conn *c;
	sqlite3_stmt *s;
	size_t cap = 0;
	int err = 0, rc = SQLITE_DONE;

	if (!st || !out)
		return -EINVAL;
	l = malloc(sizeof(*l));
	if (!l)
		return -ENOMEM;
	fjord__v1__experiment_list__init(l);
	c = st_conn_get(st, &err);
	if (!c) {
		free(l);
		return err;
	}
	s = st_stmt(c, SQL_EXP_ALL);
	if (!s)
		err = -EIO;
	while (!err && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		Fjord__V1__Experiment **n =
			st_grow(l->experiments, l->n_experiments, &cap, sizeof(*n));

		if (!n) {
			err = -ENOMEM;
			break;
		}
		l->experiments = n;
		err = exp_from_row(s, &l->experiments[l->n_experiments]);
		if (!err)
			l->n_experiments++;
	}
	if (!err && rc != SQLITE_DONE)
		err = st_sqlerr(c->db, rc);
	if (s)
		sqlite3_reset(s);
	st_conn_put(st, c);
	if (err) {
		fjord__v1__experiment_list__free_unpacked(l, NULL);
		return err;
	}
	*out = l;
	return 0;
}

struct cancel_ctx {
	char *id, *reason;
	int64_t now_ms;
};

static void cancel_ctx_free(void *p)
{
	struct cancel_ctx *c = p;

	free(c->id);
	free(c->reason);
}

static const char SQL_EXP_RID[] = "SELECT rid FROM experiment WHERE id = ?";
static const char SQL_EXP_CANCEL[] = "UPDATE experiment SET state = 3 WHERE rid = ?";
static const char SQL_RUNS_CANCEL[] = "UPDATE run SET state = 8, reason = ?, finished_ms = ?"
				      " WHERE experiment_rid = ? AND state IN (1, 2, 3, 4)";

static int cancel_op(struct store_conn *w, void *ctx, struct store_wop *op)
{
	struct cancel_ctx *c = ctx;
	sqlite3_stmt *s = st_stmt(w, SQL_EXP_RID);
	int64_t rid;
	int rc;

	if (!s)
		return -EIO;
	sqlite3_bind_text(s, 1, c->id, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	rid = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	if (rc == SQLITE_DONE) {
		st_set_err("no such experiment");
		return -ENOENT;
	}
	if (rc != SQLITE_ROW)
		return st_sqlerr(w->db, rc);
	s = st_stmt(w, SQL_EXP_CANCEL);
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, rid);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		return st_sqlerr(w->db, rc);
	s = st_stmt(w, SQL_RUNS_CANCEL);
	if (!s)
		return -EIO;
	sqlite3_bind_text(s, 1, c->reason, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, c->now_ms);
	sqlite3_bind_int64(s, 3, rid);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		return st_sqlerr(w->db, rc);
	op->n_out = (size_t)sqlite3_changes(w->db);
	return 0;
}

int ctl_store_experiment_cancel(struct ctl_store *st, const char *id, const char *reason,
				int64_t now_ms, size_t *n_cancelled)
{
	struct cancel_ctx c = { .now_ms = now_ms };
	struct store_wop op = { .fn = cancel_op, .ctx = &c, .free_ctx = cancel_ctx_free };
	int err;

	if (!st || st_check_str("experiment id", id, ST_ID_MAX, 0) ||
	    st_check_str("reason", reason ? reason : "", ST_TEXT_MAX, 1))
		return -EINVAL;
	c.id = strdup(id);
	c.reason = st_strdup0(reason && *reason ? reason : "cancelled");
	if (!c.id || !c.reason) {
		cancel_ctx_free(&c);
		return -ENOMEM;
	}
	err = st_submit_wait(st, &op);
	if (!err && n_cancelled)
		*n_cancelled = op.n_out;
	return err;
}

/* ---- runs ------------------------------------------------------------------- */

static const char SQL_RUN_GET[] = "SELECT " RUN_COLS " FROM " RUN_FROM " WHERE r.id = ?";

int ctl_store_run_get(struct ctl_store *st, const char *id, Fjord__V1__Run **out)
{
	struct store_conn *c;
	sqlite3_stmt *s;
	int err = 0, rc;

	if (!st || !out || st_check_str("run id", id, ST_ID_MAX, 0))
		return -EINVAL;
	c = st_conn_get(st, &err);
	if (!c)
		return err;
	s = st_stmt(c, SQL_RUN_GET);
	if (!s) {
		st_conn_put(st, c);
		return -EIO;
	}
	sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		err = st_run_from_row(s, 0, out);
	} else if (rc == SQLITE_DONE) {
		st_set_err("no such run");
		err = -ENOENT;
	} else {
		err = st_sqlerr(c->db, rc);
	}
	sqlite3_reset(s);
	st_conn_put(st, c);
	return err;
}

struct trans_ctx {
	char *id, *reason;
	uint32_t from_mask;
	int to;
	int64_t now_ms;
};

static void trans_ctx_free(void *p)
{
	struct trans_ctx *t = p;

	free(t->id);
	free(t->reason);
}

static const char SQL_RUN_TRANS[] =
	"UPDATE run SET state = ?2, reason = coalesce(?3, reason),"
	" dispatched_ms = CASE WHEN ?2 = 3 THEN ?4 ELSE dispatched_ms END,"
	" started_ms = CASE WHEN ?2 = 4 THEN ?4 ELSE started_ms END,"
	" finished_ms = CASE WHEN ?2 >= 5 THEN ?4 ELSE finished_ms END"
	" WHERE id = ?1 AND ((1 << state) & ?5) != 0";
static const char SQL_RUN_EXISTS[] = "SELECT state FROM run WHERE id = ?";

static int trans_op(struct store_conn *w, void *ctx, struct store_wop *op)
{
	struct trans_ctx *t = ctx;
	sqlite3_stmt *s = st_stmt(w, SQL_RUN_TRANS);
	int rc;

	(void)op;
	if (!s)
		return -EIO;
	sqlite3_bind_text(s, 1, t->id, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 2, t->to);
	if (t->reason)
		sqlite3_bind_text(s, 3, t->reason, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, t->now_ms);
	sqlite3_bind_int64(s, 5, t->from_mask);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		return st_sqlerr(w->db, rc);
	if (sqlite3_changes(w->db) > 0)
		return 0;
	s = st_stmt(w, SQL_RUN_EXISTS);
	if (!s)
		return -EIO;
	sqlite3_bind_text(s, 1, t->id, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc == SQLITE_ROW) {
		st_set_err("run %s is not in a state it may leave this way", t->id);
		return -ESTALE;
	}
	if (rc == SQLITE_DONE) {
		st_set_err("no such run");
		return -ENOENT;
	}
	return st_sqlerr(w->db, rc);
}

int ctl_store_run_transition(struct ctl_store *st, const char *id, uint32_t from_mask,
			     Fjord__V1__RunState to, const char *reason, int64_t now_ms)
{
	struct trans_ctx t = { .from_mask = from_mask, .to = to, .now_ms = now_ms };
	struct store_wop op = { .fn = trans_op, .ctx = &t, .free_ctx = trans_ctx_free };

	if (!st || st_check_str("run id", id, ST_ID_MAX, 0) ||
	    (reason && st_check_str("reason", reason, ST_TEXT_MAX, 1)))
		return -EINVAL;
	if (!from_mask || (from_mask & ~RS_ALL_MASK) || to < RS_PENDING || to > RS_CANCELLED) {
		st_set_err("bad run states in transition");
		return -EINVAL;
	}
	t.id = strdup(id);
	t.reason = reason ? strdup(reason) : NULL;
	if (!t.id || (reason && !t.reason)) {
		trans_ctx_free(&t);
		return -ENOMEM;
	}
	return st_submit_wait(st, &op);
}

int ctl_store_runs_by_state(struct ctl_store *st, uint32_t state_mask, size_t limit,
			    Fjord__V1__RunList **out)
{
	struct ctl_query q = { .state_mask = state_mask };
	struct st_qbuild qb = { .len = 0 };
	struct store_conn *c;
	sqlite3_stmt *s;
	int err = 0;

	if (!st || !out || !state_mask || (state_mask & ~RS_ALL_MASK)) {
		st_set_err("bad state mask");
		return -EINVAL;
	}
	if (limit == 0 || limit > ST_RUNS_MAX) {
		st_set_err("limit must be 1..%d", ST_RUNS_MAX);
		return -EINVAL;
	}
	st_qb_add(&qb, "SELECT " RUN_COLS " FROM " RUN_FROM " WHERE 1");
	err = st_qb_filters(&qb, &q);
	if (err)
		return err;
	st_qb_add(&qb, " ORDER BY r.due_ms, r.rid LIMIT ?");
	st_qb_int(&qb, (int64_t)limit);
	c = st_conn_get(st, &err);
	if (!c)
		return err;
	err = st_qb_prepare(c, &qb, &s);
	if (!err) {
		err = run_list_collect(c->db, s, out);
		sqlite3_finalize(s);
	}
	st_conn_put(st, c);
	return err;
}

int ctl_store_runs_query(struct ctl_store *st, const struct ctl_query *q, Fjord__V1__RunList **out)
{
	struct st_qbuild qb = { .len = 0 };
	struct store_conn *c;
	sqlite3_stmt *s;
	int err = 0;

	if (!st || !out)
		return -EINVAL;
	st_qb_add(&qb, "SELECT " RUN_COLS " FROM " RUN_FROM " WHERE 1");
	err = st_qb_filters(&qb, q);
	if (err)
		return err;
	st_qb_add(&qb, " ORDER BY r.due_ms, r.rid");
	st_qb_limit(&qb, q);
	c = st_conn_get(st, &err);
	if (!c)
		return err;
	err = st_qb_prepare(c, &qb, &s);
	if (!err) {
		err = run_list_collect(c->db, s, out);
		sqlite3_finalize(s);
	}
	st_conn_put(st, c);
	return err;
}

static const char SQL_RUN_COUNTS[] = "SELECT state, count(*) FROM run GROUP BY state";

int ctl_store_run_counts(struct ctl_store *st, uint64_t counts[9])
{
	struct store_conn *c;
	sqlite3_stmt *s;
	int err = 0, rc, state;

	if (!st || !counts)
		return -EINVAL;
	memset(counts, 0, 9 * sizeof(counts[0]));
	c = st_conn_get(st, &err);
	if (!c)
		return err;
	s = st_stmt(c, SQL_RUN_COUNTS);
	if (!s) {
		st_conn_put(st, c);
		return -EIO;
	}
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		state = sqlite3_column_int(s, 0);
		if (state >= 0 && state <= 8)
			counts[state] = (uint64_t)sqlite3_column_int64(s, 1);
	}
	if (rc != SQLITE_DONE)
		err = st_sqlerr(c->db, rc);
	sqlite3_reset(s);
	st_conn_put(st, c);
	return err;
}
