/*
 * SQLite backend of ctl_store: connections, the group-committing writer
 * thread, schema migrations, tokens and agents.
 *
 * Durability: journal_mode=WAL with synchronous=FULL. Every commit fsyncs the
 * WAL before the writer acknowledges the writes it carried, so an
 * acknowledged write survives a kill -9 of the process and also a power loss
 * (NORMAL would survive the former only). The fsync cost is paid once per
 * batch, not once per write: the writer takes every write queued while the
 * previous batch committed and runs them all in one transaction, each in its
 * own savepoint so that one bad write fails alone.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include "store_sqlite.h"

static __thread char st_errbuf[512];

void st_set_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(st_errbuf, sizeof(st_errbuf), fmt, ap);
	va_end(ap);
}

const char *ctl_store_errmsg(void)
{
	return st_errbuf;
}

int st_sqlerr(sqlite3 *db, int rc)
{
	st_set_err("sqlite: %s", db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
	switch (rc) {
	case SQLITE_CONSTRAINT_UNIQUE:
	case SQLITE_CONSTRAINT_PRIMARYKEY:
		return -EEXIST;
	case SQLITE_CONSTRAINT_FOREIGNKEY:
		return -ENOENT;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_TOOBIG:
		return -EINVAL;
	default:
		return -EIO;
	}
}

/* ---- input checks and message helpers --------------------------------- */

int st_check_str(const char *what, const char *s, size_t max, int may_empty)
{
	size_t i;

	if (!s || (!may_empty && !*s)) {
		st_set_err("%s is missing", what);
		return -EINVAL;
	}
	for (i = 0; s[i]; i++) {
		if (i >= max) {
			st_set_err("%s is longer than %zu bytes", what, max);
			return -EINVAL;
		}
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
			st_set_err("%s contains a control character", what);
			return -EINVAL;
		}
	}
	return 0;
}

int st_check_hex64(const char *what, const char *s)
{
	size_t i;

	if (!s) {
		st_set_err("%s is missing", what);
		return -EINVAL;
	}
	for (i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			break;
	if (i != 64 || s[64]) {
		st_set_err("%s is not 64 lowercase hex digits", what);
		return -EINVAL;
	}
	return 0;
}

int st_pack(const ProtobufCMessage *m, uint8_t **buf, size_t *len)
{
	size_t n = protobuf_c_message_get_packed_size(m);

	if (n > ST_BLOB_MAX) {
		st_set_err("message of %zu bytes exceeds the store's cap", n);
		return -EINVAL;
	}
	*buf = malloc(n ? n : 1);
	if (!*buf)
		return -ENOMEM;
	*len = protobuf_c_message_pack(m, *buf);
	return 0;
}

char *st_strdup0(const char *s)
{
	return strdup(s ? s : "");
}

int st_set_str(char **field, const char *v)
{
	char *n;

	if (!v || !*v) {
		if (*field && *field != protobuf_c_empty_string)
			free(*field);
		*field = (char *)protobuf_c_empty_string;
		return 0;
	}
	n = strdup(v);
	if (!n)
		return -ENOMEM;
	if (*field && *field != protobuf_c_empty_string)
		free(*field);
	*field = n;
	return 0;
}

/* ---- connections -------------------------------------------------------- */

sqlite3_stmt *st_stmt(struct store_conn *c, const char *sql)
{
	sqlite3_stmt *s = NULL;
	int i, rc;

	for (i = 0; i < c->n_cache; i++) {
		if (c->cache[i].sql == sql) {
			sqlite3_reset(c->cache[i].stmt);
			sqlite3_clear_bindings(c->cache[i].stmt);
			return c->cache[i].stmt;
		}
	}
	rc = sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL);
	if (rc != SQLITE_OK) {
		st_sqlerr(c->db, rc);
		return NULL;
	}
	if (c->n_cache < ST_STMT_CACHE) {
		c->cache[c->n_cache].sql = sql;
		c->cache[c->n_cache].stmt = s;
		c->n_cache++;
	}
	/* A full cache cannot happen with the fixed set of statements in this
	 * backend; if it did, the statement would leak, so say so loudly. */
	return s;
}

static int conn_exec(struct store_conn *c, const char *sql)
{
	char *msg = NULL;
	int rc = sqlite3_exec(c->db, sql, NULL, NULL, &msg);

	if (rc != SQLITE_OK) {
		st_set_err("sqlite: %s", msg ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
		return rc == SQLITE_NOMEM ? -ENOMEM : -EIO;
	}
	return 0;
}

static void conn_close(struct store_conn *c)
{
	int i;

	if (!c)
		return;
	for (i = 0; i < c->n_cache; i++)
		sqlite3_finalize(c->cache[i].stmt);
	sqlite3_close(c->db);
	free(c);
}

static int conn_open(const char *path, int writer, struct store_conn **out)
{
	struct store_conn *c = calloc(1, sizeof(*c));
	int rc, err;

	if (!c)
		return -ENOMEM;
	rc = sqlite3_open_v2(path, &c->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
			     NULL);
	if (rc != SQLITE_OK) {
		err = st_sqlerr(c->db, rc);
		conn_close(c);
		return err;
	}
	sqlite3_extended_result_codes(c->db, 1);
	sqlite3_busy_timeout(c->db, 10000);
	err = conn_exec(c, "PRAGMA foreign_keys=ON; PRAGMA synchronous=FULL;"
			   " PRAGMA cache_size=-32768;");
	/* A larger WAL between checkpoints copies each hot page back to the
	 * database once per checkpoint instead of many times. */
	if (!err && writer)
		err = conn_exec(c, "PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=8192;"
				   " PRAGMA journal_size_limit=67108864;");
	/* Readers scan large ranges (aggregates): map the file rather than
	 * copy every page through read(). */
	if (!err && !writer)
		err = conn_exec(c, "PRAGMA mmap_size=4294967296;");
	if (err) {
		conn_close(c);
		return err;
	}
	*out = c;
	return 0;
}

struct store_conn *st_conn_get(struct ctl_store *st, int *err)
{
	struct store_conn *c;

	pthread_mutex_lock(&st->pool_lock);
	c = st->pool;
	if (c)
		st->pool = c->next;
	pthread_mutex_unlock(&st->pool_lock);
	if (c)
		return c;
	*err = conn_open(st->path, 0, &c);
	return *err ? NULL : c;
}

void *st_grow(void *arr, size_t n, size_t *cap, size_t elem)
{
	size_t ncap;
	void *p;

	if (n < *cap)
		return arr;
	ncap = *cap ? *cap * 2 : 16;
	p = realloc(arr, ncap * elem);
	if (p)
		*cap = ncap;
	return p;
}

void st_conn_put(struct ctl_store *st, struct store_conn *c)
{
	/* A statement left mid-step would hold a read snapshot open and keep
	 * the WAL from being checkpointed; reset them all. */
	int i;

	for (i = 0; i < c->n_cache; i++)
		sqlite3_reset(c->cache[i].stmt);
	pthread_mutex_lock(&st->pool_lock);
	c->next = st->pool;
	st->pool = c;
	pthread_mutex_unlock(&st->pool_lock);
}

/* ---- migrations --------------------------------------------------------- */

/*
 * Each entry moves the schema from version i to i + 1 in its own
 * transaction. Never edit a released entry: append a new one.
 */
static const char *const migrations[] = {
	/* 1: users, agents, experiments and runs. */
	"CREATE TABLE token(hash TEXT PRIMARY KEY, role INTEGER NOT NULL, name TEXT NOT NULL,"
	" created_ms INTEGER NOT NULL);"
	"CREATE TABLE agent(rid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, site TEXT NOT NULL,"
	" node TEXT NOT NULL, token_hash TEXT NOT NULL UNIQUE, enrolled_ms INTEGER NOT NULL,"
	" last_seen_ms INTEGER NOT NULL DEFAULT 0, msg BLOB NOT NULL, UNIQUE(site, node));"
	"CREATE TABLE experiment(rid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,"
	" state INTEGER NOT NULL, owner TEXT NOT NULL, created_ms INTEGER NOT NULL,"
	" runs_total INTEGER NOT NULL, msg BLOB NOT NULL);"
	"CREATE TABLE run(rid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,"
	" experiment_rid INTEGER NOT NULL REFERENCES experiment(rid),"
	" state INTEGER NOT NULL, due_ms INTEGER NOT NULL, deadline_ms INTEGER NOT NULL,"
	" dispatched_ms INTEGER NOT NULL DEFAULT 0, started_ms INTEGER NOT NULL DEFAULT 0,"
	" finished_ms INTEGER NOT NULL DEFAULT 0, reason TEXT NOT NULL DEFAULT '',"
	" stack INTEGER NOT NULL, client_agent TEXT NOT NULL REFERENCES agent(id),"
	" server_agent TEXT NOT NULL REFERENCES agent(id), client_site TEXT NOT NULL,"
	" server_site TEXT NOT NULL, family_mask INTEGER NOT NULL, isp_local TEXT NOT NULL,"
	" isp_remote TEXT NOT NULL, msg BLOB NOT NULL);"
	"CREATE INDEX run_state_due ON run(state, due_ms);"
	"CREATE INDEX run_exp_state ON run(experiment_rid, state);"
	"CREATE INDEX run_due ON run(due_ms);"
	"CREATE INDEX run_client ON run(client_agent, state);"
	"CREATE INDEX run_server ON run(server_agent);"
	"CREATE TABLE run_path(run_rid INTEGER NOT NULL REFERENCES run(rid), idx INTEGER NOT NULL,"
	" local_isp TEXT NOT NULL, remote_isp TEXT NOT NULL, family INTEGER NOT NULL,"
	" PRIMARY KEY(run_rid, idx)) WITHOUT ROWID;",

	/* 2: results, their summary metrics (one row per metric for aggregates)
	 * and traces. run.scheduler is the provenance scheduler of the client's
	 * result, kept on the run so that aggregates group without a join. */
	"CREATE TABLE result(rid INTEGER PRIMARY KEY, run_rid INTEGER NOT NULL REFERENCES run(rid),"
	" agent_id TEXT NOT NULL, ok INTEGER NOT NULL, received_ms INTEGER NOT NULL,"
	" msg BLOB NOT NULL, UNIQUE(run_rid, agent_id));"
	"CREATE TABLE metric(name TEXT NOT NULL, run_rid INTEGER NOT NULL REFERENCES run(rid),"
	" value REAL NOT NULL, PRIMARY KEY(name, run_rid)) WITHOUT ROWID;"
	"ALTER TABLE run ADD COLUMN scheduler TEXT NOT NULL DEFAULT '';"
	"CREATE TABLE trace(run_rid INTEGER NOT NULL REFERENCES run(rid), name TEXT NOT NULL,"
	" sha256 TEXT NOT NULL, size INTEGER NOT NULL, content_type TEXT NOT NULL,"
	" uploaded_ms INTEGER NOT NULL, PRIMARY KEY(run_rid, name)) WITHOUT ROWID;",

	/* 3: the metric -> run foreign key makes deleting runs scan metric
	 * without an index on run_rid; ISP filters look paths up by label. */
	"CREATE INDEX metric_run ON metric(run_rid);"
	"CREATE INDEX run_path_local ON run_path(local_isp);"
	"CREATE INDEX run_path_remote ON run_path(remote_isp);",

	/* 4: the client index need not carry the state: without it, a state
	 * change (the commonest write) updates one index fewer. */
	"DROP INDEX run_client;"
	"CREATE INDEX run_client ON run(client_agent);",

	/* 5: the packed run message moves out of the run rows, which queries
	 * and aggregates scan by the million: narrow rows, fewer pages. */
	"CREATE TABLE run_msg(rid INTEGER PRIMARY KEY REFERENCES run(rid), msg BLOB NOT NULL);"
	"INSERT INTO run_msg(rid, msg) SELECT rid, msg FROM run;"
	"ALTER TABLE run DROP COLUMN msg;",

	/* 6: runs are never deleted, so nothing looks metric rows up by run
	 * alone: the index of version 3 only cost three inserts per result. */
	"DROP INDEX metric_run;",
};

#define N_MIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

int st_latest_version(void)
{
	return N_MIGRATIONS;
}

static int read_version(struct store_conn *c, int *version)
{
	sqlite3_stmt *s;
	int rc;

	rc = sqlite3_prepare_v2(c->db, "SELECT version FROM schema_version WHERE id = 1", -1, &s,
				NULL);
	if (rc != SQLITE_OK)
		return st_sqlerr(c->db, rc);
	rc = sqlite3_step(s);
	*version = rc == SQLITE_ROW ? sqlite3_column_int(s, 0) : 0;
	sqlite3_finalize(s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : st_sqlerr(c->db, rc);
}

static int migrate(struct store_conn *c, int max_version, int *version)
{
	char sql[96];
	int v, err;

	err = conn_exec(c, "CREATE TABLE IF NOT EXISTS schema_version(id INTEGER PRIMARY KEY"
			   " CHECK (id = 1), version INTEGER NOT NULL);"
			   "INSERT OR IGNORE INTO schema_version VALUES (1, 0);");
	if (err)
		return err;
	err = read_version(c, &v);
	if (err)
		return err;
	if (v > N_MIGRATIONS) {
		st_set_err("database schema version %d is newer than this controller's %d", v,
			   N_MIGRATIONS);
		return -EPROTO;
	}
	if (max_version <= 0 || max_version > N_MIGRATIONS)
		max_version = N_MIGRATIONS;
	for (; v < max_version; v++) {
		err = conn_exec(c, "BEGIN IMMEDIATE");
		if (!err)
			err = conn_exec(c, migrations[v]);
		if (!err) {
			snprintf(sql, sizeof(sql), "UPDATE schema_version SET version = %d", v + 1);
			err = conn_exec(c, sql);
		}
		if (!err)
			err = conn_exec(c, "COMMIT");
		if (err) {
			char why[sizeof(st_errbuf)];

			memcpy(why, st_errbuf, sizeof(why));
			conn_exec(c, "ROLLBACK");
			st_set_err("migration to version %d failed: %.400s", v + 1, why);
			return err;
		}
	}
	*version = v;
	return 0;
}

/* ---- the writer --------------------------------------------------------- */

static const char SQL_BEGIN[] = "BEGIN IMMEDIATE";
static const char SQL_COMMIT[] = "COMMIT";
static const char SQL_ROLLBACK[] = "ROLLBACK";
static const char SQL_SAVE[] = "SAVEPOINT w";
static const char SQL_RELEASE[] = "RELEASE w";
static const char SQL_UNDO[] = "ROLLBACK TO w";

static int wexec(struct store_conn *w, const char *sql)
{
	sqlite3_stmt *s = st_stmt(w, sql);
	int rc;

	if (!s)
		return -EIO;
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : st_sqlerr(w->db, rc);
}

/* Runs every op of the batch; with savepoints, a failing op is undone
 * alone, without, the first failure stops the pass (returns 1). */
static int batch_pass(struct ctl_store *st, struct store_wop *batch, int savepoints)
{
	struct store_wop *op;
	int err;

	for (op = batch; op; op = op->next) {
		op->dup = 0;
		op->n_out = 0;
		free(op->out_str);
		op->out_str = NULL;
		err = savepoints ? wexec(st->w, SQL_SAVE) : 0;
		if (!err)
			err = op->fn(st->w, op->ctx, op);
		op->err = err;
		if (err)
			snprintf(op->errmsg, sizeof(op->errmsg), "%s", st_errbuf);
		if (!savepoints && err)
			return 1;
		if (err)
			wexec(st->w, SQL_UNDO); /* the others of the batch stand */
		if (savepoints)
			wexec(st->w, SQL_RELEASE);
	}
	return 0;
}

/*
 * One transaction for the whole batch. Writes almost never fail, so the
 * first pass runs without savepoints (two statements fewer per write);
 * only when one fails is the transaction rolled back and the batch run
 * again with a savepoint around each write.
 */
static void run_batch(struct ctl_store *st, struct store_wop *batch)
{
	struct store_wop *op;
	int err;

	err = wexec(st->w, SQL_BEGIN);
	if (!err && batch_pass(st, batch, 0)) {
		err = wexec(st->w, SQL_ROLLBACK);
		if (!err)
			err = wexec(st->w, SQL_BEGIN);
		if (!err)
			batch_pass(st, batch, 1);
	}
	if (!err) {
		err = wexec(st->w, SQL_COMMIT);
		if (err)
			wexec(st->w, SQL_ROLLBACK);
	}
	if (err) {
		for (op = batch; op; op = op->next) {
			if (op->err)
				continue;
			op->err = err;
			snprintf(op->errmsg, sizeof(op->errmsg), "%s", st_errbuf);
		}
	}
	st->n_batches++;
}

static void finish_batch(struct ctl_store *st, struct store_wop *batch)
{
	struct store_wop *op, *next;

	for (op = batch; op; op = next) {
		next = op->next;
		if (op->free_ctx)
			op->free_ctx(op->ctx);
		if (op->cb) {
			/* The callback runs here: its thread's message is the op's. */
			if (op->err)
				st_set_err("%s", op->errmsg);
			op->cb(op->cb_arg, op->err, op->dup);
			free(op->out_str);
			free(op);
			continue;
		}
		/* After done is set the submitter may return and free op. */
		pthread_mutex_lock(&st->lock);
		op->done = 1;
		pthread_mutex_unlock(&st->lock);
	}
	pthread_mutex_lock(&st->lock);
	pthread_cond_broadcast(&st->done);
	pthread_mutex_unlock(&st->lock);
}

static void *writer_main(void *arg)
{
	struct ctl_store *st = arg;
	struct store_wop *batch, *op;
	struct timespec t0, t1;

	pthread_mutex_lock(&st->lock);
	for (;;) {
		while (!st->head && !st->stop)
			pthread_cond_wait(&st->wake, &st->lock);
		if (!st->head)
			break;
		batch = st->head;
		st->head = st->tail = NULL;
		pthread_mutex_unlock(&st->lock);
		for (op = batch; op; op = op->next)
			st->n_ops++;
		clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
		run_batch(st, batch);
		clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
		st->writer_cpu_ns += (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000000LL +
						(t1.tv_nsec - t0.tv_nsec));
		finish_batch(st, batch);
		pthread_mutex_lock(&st->lock);
	}
	pthread_mutex_unlock(&st->lock);
	return NULL;
}

static int enqueue(struct ctl_store *st, struct store_wop *op)
{
	op->next = NULL;
	op->done = 0;
	pthread_mutex_lock(&st->lock);
	if (st->stop) {
		pthread_mutex_unlock(&st->lock);
		st_set_err("store is closing");
		return -ESHUTDOWN;
	}
	if (st->tail)
		st->tail->next = op;
	else
		st->head = op;
	st->tail = op;
	pthread_cond_signal(&st->wake);
	pthread_mutex_unlock(&st->lock);
	return 0;
}

int st_submit_wait(struct ctl_store *st, struct store_wop *op)
{
	int err;

	op->cb = NULL;
	/* From an async callback (the writer thread) this would wait forever
	 * for the thread that is waiting. */
	if (st->thread_running && pthread_equal(pthread_self(), st->thread)) {
		if (op->free_ctx)
			op->free_ctx(op->ctx);
		st_set_err("a store write from a write callback would deadlock");
		return -EDEADLK;
	}
	err = enqueue(st, op);
	if (err) {
		if (op->free_ctx)
			op->free_ctx(op->ctx);
		return err;
	}
	pthread_mutex_lock(&st->lock);
	while (!op->done)
		pthread_cond_wait(&st->done, &st->lock);
	pthread_mutex_unlock(&st->lock);
	if (op->err)
		st_set_err("%s", op->errmsg);
	return op->err;
}

int st_submit_async(struct ctl_store *st, struct store_wop *op)
{
	int err = enqueue(st, op);

	if (err) {
		if (op->free_ctx)
			op->free_ctx(op->ctx);
		free(op);
	}
	return err;
}

/* ---- open and close ----------------------------------------------------- */

int ctl_store_open_version(const char *path, int max_version, struct ctl_store **out)
{
	struct ctl_store *st;
	int err;

	if (!out || st_check_str("database path", path, 4096, 0))
		return -EINVAL;
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->path = strdup(path);
	st->online_ms = 120000;
	pthread_mutex_init(&st->lock, NULL);
	pthread_mutex_init(&st->pool_lock, NULL);
	pthread_cond_init(&st->wake, NULL);
	pthread_cond_init(&st->done, NULL);
	err = st->path ? conn_open(path, 1, &st->w) : -ENOMEM;
	if (!err)
		err = migrate(st->w, max_version, &st->version);
	if (!err && pthread_create(&st->thread, NULL, writer_main, st) != 0)
		err = -EAGAIN;
	if (err) {
		ctl_store_close(st);
		return err;
	}
	st->thread_running = 1;
	*out = st;
	return 0;
}

int ctl_store_open(const char *path, struct ctl_store **out)
{
	return ctl_store_open_version(path, 0, out);
}

void ctl_store_close(struct ctl_store *st)
{
	struct store_conn *c;

	if (!st)
		return;
	if (st->thread_running) {
		pthread_mutex_lock(&st->lock);
		st->stop = 1;
		pthread_cond_signal(&st->wake);
		pthread_mutex_unlock(&st->lock);
		pthread_join(st->thread, NULL);
	}
	while ((c = st->pool)) {
		st->pool = c->next;
		conn_close(c);
	}
	conn_close(st->w);
	pthread_mutex_destroy(&st->lock);
	pthread_mutex_destroy(&st->pool_lock);
	pthread_cond_destroy(&st->wake);
	pthread_cond_destroy(&st->done);
	free(st->path);
	free(st);
}

int ctl_store_schema_version(struct ctl_store *st)
{
	return st ? st->version : -EINVAL;
}

int64_t ctl_store_size(struct ctl_store *st)
{
	static const char *const sfx[] = { "", "-wal", "-shm" };
	char p[4200];
	struct stat sb;
	int64_t total = 0;
	size_t i;

	if (!st)
		return -EINVAL;
	for (i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
		snprintf(p, sizeof(p), "%s%s", st->path, sfx[i]);
		if (stat(p, &sb) == 0)
			total += sb.st_size;
	}
	return total;
}

void ctl_store_set_online_window(struct ctl_store *st, int64_t window_ms)
{
	if (st && window_ms > 0)
		st->online_ms = window_ms;
}

/* ---- tokens ------------------------------------------------------------- */

struct token_ctx {
	char hash[65];
	int role;
	char *name;
	int64_t now_ms;
};

static void token_ctx_free(void *p)
{
	struct token_ctx *t = p;

	free(t->name);
}

static const char SQL_TOKEN_ADD[] = "INSERT INTO token(hash, role, name, created_ms)"
				    " VALUES (?, ?, ?, ?)";

static int token_add_op(struct store_conn *w, void *ctx, struct store_wop *op)
{
	struct token_ctx *t = ctx;
	sqlite3_stmt *s = st_stmt(w, SQL_TOKEN_ADD);
	int rc;

	(void)op;
	if (!s)
		return -EIO;
	sqlite3_bind_text(s, 1, t->hash, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 2, t->role);
	sqlite3_bind_text(s, 3, t->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, t->now_ms);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : st_sqlerr(w->db, rc);
}

static int role_valid(Fjord__V1__Role role)
{
	return role == FJORD__V1__ROLE__ROLE_VIEWER || role == FJORD__V1__ROLE__ROLE_EXPERIMENTER ||
	       role == FJORD__V1__ROLE__ROLE_ADMIN;
}

int ctl_store_token_add(struct ctl_store *st, const char *hash_hex, Fjord__V1__Role role,
			const char *name, int64_t now_ms)
{
	struct token_ctx t = { .role = role, .now_ms = now_ms };
	struct store_wop op = { .fn = token_add_op, .ctx = &t, .free_ctx = token_ctx_free };

	if (!st || st_check_hex64("token hash", hash_hex) ||
	    st_check_str("token name", name ? name : "", ST_ID_MAX, 1))
		return -EINVAL;
	if (!role_valid(role)) {
		st_set_err("role %d is not viewer, experimenter or admin", (int)role);
		return -EINVAL;
	}
	memcpy(t.hash, hash_hex, 65);
	t.name = st_strdup0(name);
	if (!t.name)
		return -ENOMEM;
	return st_submit_wait(st, &op);
}

static const char SQL_TOKEN_GET[] = "SELECT role, name FROM token WHERE hash = ?";

int ctl_store_token_lookup(struct ctl_store *st, const char *hash_hex, Fjord__V1__Role *role,
			   char **name)
{
	struct store_conn *c;
	sqlite3_stmt *s;
	int err = 0, rc;

	if (!st || !role || !name || st_check_hex64("token hash", hash_hex))
		return -EINVAL;
	c = st_conn_get(st, &err);
	if (!c)
		return err;
	s = st_stmt(c, SQL_TOKEN_GET);
	if (!s) {
		st_conn_put(st, c);
		return -EIO;
	}
	sqlite3_bind_text(s, 1, hash_hex, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*name = st_strdup0((const char *)sqlite3_column_text(s, 1));
		*role = sqlite3_column_int(s, 0);
		err = *name ? 0 : -ENOMEM;
	} else if (rc == SQLITE_DONE) {
		st_set_err("no such token");
		err = -ENOENT;
	} else {
		err = st_sqlerr(c->db, rc);
	}
	sqlite3_reset(s);
	st_conn_put(st, c);
	return err;
}

/* ---- agents ------------------------------------------------------------- */

static int check_interfaces(Fjord__V1__Interface *const *ifs, size_t n)
{
	size_t i, j;

	if (n > ST_LIST_MAX) {
		st_set_err("more than %d interfaces", ST_LIST_MAX);
		return -EINVAL;
	}
	for (i = 0; i < n; i++) {
		if (!ifs[i] || st_check_str("interface name", ifs[i]->name, ST_ID_MAX, 0) ||
		    st_check_str("interface isp", ifs[i]->isp, ST_ID_MAX, 1))
			return -EINVAL;
		if (ifs[i]->n_addresses > ST_LIST_MAX) {
			st_set_err("interface %s has too many addresses", ifs[i]->name);
			return -EINVAL;
		}
		for (j = 0; j < ifs[i]->n_addresses; j++)
			if (st_check_str("interface address", ifs[i]->addresses[j], ST_ID_MAX, 0))
				return -EINVAL;
	}
	return 0;
}

static int check_stacks(const Fjord__V1__Stack *stacks, size_t n)
{
	size_t i;

	if (n > 8) {
		st_set_err("too many stacks");
		return -EINVAL;
	}
	for (i = 0; i < n; i++) {
		if (stacks[i] < FJORD__V1__STACK__STACK_BUNDLED ||
		    stacks[i] > FJORD__V1__STACK__STACK_TCP) {
			st_set_err("stack %d is not bundled, kernel or tcp", (int)stacks[i]);
			return -EINVAL;
		}
	}
	return 0;
}

struct enroll_ctx {
	char hash[65];
	char *site, *node;
	uint8_t *blob; /* packed Agent without id */
	size_t len;
	int64_t now_ms;
};

static void enroll_ctx_free(void *p)
{
	struct enroll_ctx *e = p;

	free(e->site);
	free(e->node);
	free(e->blob);
}

static const char SQL_AGENT_BY_NODE[] =
	"SELECT id, enrolled_ms FROM agent WHERE site = ? AND node = ?";
static const char SQL_AGENT_INS[] = "INSERT INTO agent(id, site, node, token_hash, enrolled_ms,"
				    " last_seen_ms, msg) VALUES (?, ?, ?, ?, ?, ?, ?)";
static const char SQL_AGENT_REENROLL[] = "UPDATE agent SET token_hash = ?, last_seen_ms = ?,"
					 " msg = ? WHERE id = ?";

static int new_agent_id(char *id, size_t len)
{
	uint8_t r[8];
	size_t i;

	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
		st_set_err("getrandom failed");
		return -EIO;
	}
	i = (size_t)snprintf(id, len, "ag-");
	for (size_t k = 0; k < sizeof(r) && i + 2 < len; k++, i += 2)
		snprintf(id + i, len - i, "%02x", r[k]);
	return 0;
}

/* Re-packs the agent message with its id and enrollment time set. */
static int agent_blob_with_id(const struct enroll_ctx *e, const char *id, int64_t enrolled_ms,
			      uint8_t **buf, size_t *len)
{
	Fjord__V1__Agent *a;
	int err;

	a = fjord__v1__agent__unpack(NULL, e->len, e->blob);
	if (!a) {
		st_set_err("agent message does not unpack");
		return -EIO;
	}
	err = st_set_str(&a->id, id);
	a->enrolled_ms = enrolled_ms;
	if (!err)
		err = st_pack(&a->base, buf, len);
	fjord__v1__agent__free_unpacked(a, NULL);
	return err;
}

static int enroll_op(struct store_conn *w, void *ctx, struct store_wop *op)
{
	struct enroll_ctx *e = ctx;
	sqlite3_stmt *s = st_stmt(w, SQL_AGENT_BY_NODE);
	char id[ST_ID_MAX + 1];
	int64_t enrolled = e->now_ms;
	uint8_t *blob = NULL;
	size_t len = 0;
	int rc, err, existing = 0;

	if (!s)
		return -EIO;
	sqlite3_bind_text(s, 1, e->site, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, e->node, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		snprintf(id, sizeof(id), "%s", (const char *)sqlite3_column_text(s, 0));
		enrolled = sqlite3_column_int64(s, 1);
		existing = 1;
	} else if (rc != SQLITE_DONE) {
		err = st_sqlerr(w->db, rc);
		sqlite3_reset(s);
		return err;
	}
	sqlite3_reset(s);
	if (!existing) {
		err = new_agent_id(id, sizeof(id));
		if (err)
			return err;
	}
	err = agent_blob_with_id(e, id, enrolled, &blob, &len);
	if (err)
		return err;
	if (existing) {
		s = st_stmt(w, SQL_AGENT_REENROLL);
		if (!s) {
			free(blob);
			return -EIO;
		}
		sqlite3_bind_text(s, 1, e->hash, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 2, e->now_ms);
		sqlite3_bind_blob(s, 3, blob, (int)len, SQLITE_STATIC);
		sqlite3_bind_text(s, 4, id, -1, SQLITE_STATIC);
	} else {
		s = st_stmt(w, SQL_AGENT_INS);
		if (!s) {
			free(blob);
			return -EIO;
		}
		sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 2, e->site, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 3, e->node, -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 4, e->hash, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 5, e->now_ms);
		sqlite3_bind_int64(s, 6, e->now_ms);
		sqlite3_bind_blob(s, 7, blob, (int)len, SQLITE_STATIC);
	}
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	free(blob);
	if (rc != SQLITE_DONE)
		return st_sqlerr(w->db, rc);
	op->out_str = strdup(id);
	return op->out_str ? 0 : -ENOMEM;
}

int ctl_store_agent_enroll(struct ctl_store *st, const Fjord__V1__EnrollRequest *req,
			   const char *token_hash_hex, int64_t now_ms, char **agent_id)
{
	Fjord__V1__Agent a = FJORD__V1__AGENT__INIT;
	struct enroll_ctx e = { .now_ms = now_ms };
	struct store_wop op = { .fn = enroll_op, .ctx = &e, .free_ctx = enroll_ctx_free };
	int err;

	if (!st || !req || !agent_id || st_check_hex64("token hash", token_hash_hex) ||
	    st_check_str("site", req->site, ST_ID_MAX, 0) ||
	    st_check_str("node", req->node, ST_ID_MAX, 0) ||
	    st_check_str("version", req->version, ST_ID_MAX, 1) ||
	    st_check_str("kernel_version", req->kernel_version, ST_ID_MAX, 1) ||
	    check_interfaces(req->interfaces, req->n_interfaces) ||
	    check_stacks(req->stacks, req->n_stacks))
		return -EINVAL;
	a.site = req->site;
	a.node = req->node;
	a.n_interfaces = req->n_interfaces;
	a.interfaces = req->interfaces;
	a.version = req->version;
	a.n_stacks = req->n_stacks;
	a.stacks = req->stacks;
	a.kernel_version = req->kernel_version;
	memcpy(e.hash, token_hash_hex, 65);
	e.site = strdup(req->site);
	e.node = strdup(req->node);
	err = e.site && e.node ? st_pack(&a.base, &e.blob, &e.len) : -ENOMEM;
	if (err) {
		enroll_ctx_free(&e);
		return err;
	}
	err = st_submit_wait(st, &op);
	if (!err)
		*agent_id = op.out_str;
	else
		free(op.out_str);
	return err;
}

static int agent_from_row(struct ctl_store *st, sqlite3_stmt *s, Fjord__V1__Agent **out)
{
	const void *blob = sqlite3_column_blob(s, 0);
	int len = sqlite3_column_bytes(s, 0);
	Fjord__V1__Agent *a;

	a = fjord__v1__agent__unpack(NULL, (size_t)len, blob);
	if (!a) {
		st_set_err("stored agent message does not unpack");
		return -EIO;
	}
	a->last_seen_ms = sqlite3_column_int64(s, 1);
	a->online = a->last_seen_ms + st->online_ms >= (int64_t)time(NULL) * 1000;
	*out = a;
	return 0;
}

static const char SQL_AGENT_BY_TOKEN[] = "SELECT msg, last_seen_ms FROM agent WHERE token_hash = ?";
static const char SQL_AGENT_BY_ID[] = "SELECT msg, last_seen_ms FROM agent WHERE id = ?";
static const char SQL_AGENT_ALL[] = "SELECT msg, last_seen_ms FROM agent ORDER BY site, node";

static int agent_get_by(struct ctl_store *st, const char *sql, const char *key,
			Fjord__V1__Agent **out)
{
	struct store_conn *c;
	sqlite3_stmt *s;
	int err = 0, rc;

	c = st_conn_get(st, &err);
	if (!c)
		return err;
	s = st_stmt(c, sql);
	if (!s) {
		st_conn_put(st, c);
		return -EIO;
	}
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		err = agent_from_row(st, s, out);
	} else if (rc == SQLITE_DONE) {
		st_set_err("no such agent");
		err = -ENOENT;
	} else {
		err = st_sqlerr(c->db, rc);
	}
	sqlite3_reset(s);
	st_conn_put(st, c);
	return err;
}

int ctl_store_agent_by_token(struct ctl_store *st, const char *token_hash_hex,
			     Fjord__V1__Agent **out)
{
	if (!st || !out || st_check_hex64("token hash", token_hash_hex))
		return -EINVAL;
	return agent_get_by(st, SQL_AGENT_BY_TOKEN, token_hash_hex, out);
}

int ctl_store_agent_get(struct ctl_store *st, const char *agent_id, Fjord__V1__Agent **out)
{
	if (!st || !out || st_check_str("agent id", agent_id, ST_ID_MAX, 0))
		return -EINVAL;
	return agent_get_by(st, SQL_AGENT_BY_ID, agent_id, out);
}

int ctl_store_agent_list(struct ctl_store *st, Fjord__V1__AgentList **out)
{
	Fjord__V1__AgentList *l;
	struct store_conn *c;
	sqlite3_stmt *s;
	size_t cap = 0;
	int err = 0, rc;

	if (!st || !out)
		return -EINVAL;
	l = malloc(sizeof(*l));
	if (!l)
		return -ENOMEM;
	fjord__v1__agent_list__init(l);
	c = st_conn_get(st, &err);
	if (!c) {
		free(l);
		return err;
	}
	s = st_stmt(c, SQL_AGENT_ALL);
	if (!s)
		err = -EIO;
	while (!err && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		Fjord__V1__Agent **n = st_grow(l->agents, l->n_agents, &cap, sizeof(*n));

		if (!n) {
			err = -ENOMEM;
			break;
		}
		l->agents = n;
		err = agent_from_row(st, s, &l->agents[l->n_agents]);
		if (!err)
			l->n_agents++;
	}
	if (!err && rc != SQLITE_DONE)
		err = st_sqlerr(c->db, rc);
	if (s)
		sqlite3_reset(s);
	st_conn_put(st, c);
	if (err) {
		fjord__v1__agent_list__free_unpacked(l, NULL);
		return err;
	}
	*out = l;
	return 0;
}

struct seen_ctx {
	char *agent_id;
	uint8_t *poll; /* packed PollRequest */
	size_t len;
	int64_t now_ms;
};

static void seen_ctx_free(void *p)
{
	struct seen_ctx *e = p;

	free(e->agent_id);
	free(e->poll);
}

static const char SQL_AGENT_MSG[] = "SELECT msg FROM agent WHERE id = ?";
static const char SQL_AGENT_SEEN[] = "UPDATE agent SET msg = ?, last_seen_ms = ? WHERE id = ?";

/* Moves what the poll reports into the stored agent message. */
static int agent_apply_poll(Fjord__V1__Agent *a, Fjord__V1__PollRequest *p)
{
	size_t i;
	int err;

	for (i = 0; i < a->n_interfaces; i++)
		fjord__v1__interface__free_unpacked(a->interfaces[i], NULL);
	free(a->interfaces);
	a->interfaces = p->interfaces;
	a->n_interfaces = p->n_interfaces;
	p->interfaces = NULL;
	p->n_interfaces = 0;
	for (i = 0; i < a->n_running_run_ids; i++)
		free(a->running_run_ids[i]);
	free(a->running_run_ids);
	a->running_run_ids = p->running_run_ids;
	a->n_running_run_ids = p->n_running_run_ids;
	p->running_run_ids = NULL;
	p->n_running_run_ids = 0;
	err = 0;
	if (p->version && *p->version)
		err = st_set_str(&a->version, p->version);
	return err;
}

static int seen_op(struct store_conn *w, void *ctx, struct store_wop *op)
{
	struct seen_ctx *e = ctx;
	sqlite3_stmt *s = st_stmt(w, SQL_AGENT_MSG);
	Fjord__V1__Agent *a = NULL;
	Fjord__V1__PollRequest *p;
	uint8_t *blob = NULL;
	size_t len = 0;
	int rc, err;

	(void)op;
	if (!s)
		return -EIO;
	sqlite3_bind_text(s, 1, e->agent_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		a = fjord__v1__agent__unpack(NULL, (size_t)sqlite3_column_bytes(s, 0),
					     sqlite3_column_blob(s, 0));
	sqlite3_reset(s);
	if (rc == SQLITE_DONE) {
		st_set_err("no such agent");
		return -ENOENT;
	}
	if (rc != SQLITE_ROW)
		return st_sqlerr(w->db, rc);
	p = fjord__v1__poll_request__unpack(NULL, e->len, e->poll);
	if (!a || !p) {
		if (a)
			fjord__v1__agent__free_unpacked(a, NULL);
		if (p)
			fjord__v1__poll_request__free_unpacked(p, NULL);
		st_set_err("agent or poll message does not unpack");
		return -EIO;
	}
	err = agent_apply_poll(a, p);
	if (!err)
		err = st_pack(&a->base, &blob, &len);
	fjord__v1__agent__free_unpacked(a, NULL);
	fjord__v1__poll_request__free_unpacked(p, NULL);
	if (err)
		return err;
	s = st_stmt(w, SQL_AGENT_SEEN);
	if (!s) {
		free(blob);
		return -EIO;
	}
	sqlite3_bind_blob(s, 1, blob, (int)len, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, e->now_ms);
	sqlite3_bind_text(s, 3, e->agent_id, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	free(blob);
	return rc == SQLITE_DONE ? 0 : st_sqlerr(w->db, rc);
}

int ctl_store_agent_seen(struct ctl_store *st, const char *agent_id,
			 const Fjord__V1__PollRequest *poll, int64_t now_ms)
{
	struct seen_ctx e = { .now_ms = now_ms };
	struct store_wop op = { .fn = seen_op, .ctx = &e, .free_ctx = seen_ctx_free };
	size_t i;
	int err;

	if (!st || !poll || st_check_str("agent id", agent_id, ST_ID_MAX, 0) ||
	    st_check_str("version", poll->version, ST_ID_MAX, 1) ||
	    check_interfaces(poll->interfaces, poll->n_interfaces))
		return -EINVAL;
	if (poll->n_running_run_ids > ST_LIST_MAX) {
		st_set_err("more than %d running runs", ST_LIST_MAX);
		return -EINVAL;
	}
	for (i = 0; i < poll->n_running_run_ids; i++)
		if (st_check_str("running run id", poll->running_run_ids[i], ST_ID_MAX, 0))
			return -EINVAL;
	e.agent_id = strdup(agent_id);
	err = e.agent_id ? st_pack(&poll->base, &e.poll, &e.len) : -ENOMEM;
	if (err) {
		seen_ctx_free(&e);
		return err;
	}
	return st_submit_wait(st, &op);
}

/* ---- group-by names --------------------------------------------------- */

int ctl_group_by_parse(const char *s, enum ctl_group_by *out)
{
	static const struct {
		const char *name;
		enum ctl_group_by by;
	} names[] = {
		{ "site_pair", CTL_GROUP_SITE_PAIR },	{ "isp_pair", CTL_GROUP_ISP_PAIR },
		{ "stack", CTL_GROUP_STACK },		{ "scheduler", CTL_GROUP_SCHEDULER },
		{ "experiment", CTL_GROUP_EXPERIMENT },
	};
	size_t i;

	if (!s || !out)
		return -EINVAL;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(s, names[i].name) == 0) {
			*out = names[i].by;
			return 0;
		}
	}
	st_set_err("group_by must be site_pair, isp_pair, stack, scheduler or experiment");
	return -EINVAL;
}
