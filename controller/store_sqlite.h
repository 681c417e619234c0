/*
 * Private internals of the SQLite store backend, shared by store_sqlite.c
 * (connections, writer thread, migrations, tokens, agents),
 * store_sqlite_runs.c (experiments, runs, run queries) and
 * store_sqlite_results.c (results, aggregates, traces). Nothing outside
 * these files includes it, except the unit tests for the test-only hooks.
 */
#ifndef STORE_SQLITE_H
#define STORE_SQLITE_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>

#include "ctl_store.h"

/* Caps on what the store accepts: every string and message is bounded. */
#define ST_ID_MAX     128	/* ids, sites, nodes, ISP labels, names */
#define ST_TEXT_MAX   1024	/* reasons and error texts */
#define ST_BLOB_MAX   (8 << 20) /* one packed message */
#define ST_LIST_MAX   256	/* interfaces, metrics, addresses, paths per message */
#define ST_RUNS_MAX   1000000	/* runs per experiment */
#define ST_LIMIT_MAX  10000	/* rows per query */
#define ST_LIMIT_DEF  1000
#define ST_STMT_CACHE 64

/* Short names for the generated enum constants. */
#define RS_PENDING    FJORD__V1__RUN_STATE__RUN_STATE_PENDING
#define RS_WAITING    FJORD__V1__RUN_STATE__RUN_STATE_WAITING_LINKS
#define RS_DISPATCHED FJORD__V1__RUN_STATE__RUN_STATE_DISPATCHED
#define RS_RUNNING    FJORD__V1__RUN_STATE__RUN_STATE_RUNNING
#define RS_SUCCEEDED  FJORD__V1__RUN_STATE__RUN_STATE_SUCCEEDED
#define RS_FAILED     FJORD__V1__RUN_STATE__RUN_STATE_FAILED
#define RS_MISSED     FJORD__V1__RUN_STATE__RUN_STATE_MISSED
#define RS_CANCELLED  FJORD__V1__RUN_STATE__RUN_STATE_CANCELLED
#define RS_ALL_MASK   0x1feu

/* One SQLite connection with its prepared statements, keyed by the address
 * of their (static) SQL text. */
struct store_conn {
	sqlite3 *db;
	struct {
		const char *sql;
		sqlite3_stmt *stmt;
	} cache[ST_STMT_CACHE];
	int n_cache;
	struct store_conn *next; /* read pool free list */
};

struct store_wop;
/* A write operation; runs on the writer thread inside the batch transaction
 * (in its own savepoint). ctx is the operation's private copy of its input. */
typedef int (*store_wop_fn)(struct store_conn *w, void *ctx, struct store_wop *op);

struct store_wop {
	store_wop_fn fn;
	void *ctx;
	void (*free_ctx)(void *ctx);
	int err;
	int dup;
	int done;
	size_t n_out;
	char *out_str;
	char errmsg[512]; /* the writer's message for err, for the submitter */
	void (*cb)(void *arg, int err, int dup); /* async: called, then op freed */
	void *cb_arg;
	struct store_wop *next;
};

struct ctl_store {
	char *path;
	struct store_conn *w; /* the writer's connection */
	pthread_t thread;
	int thread_running;
	pthread_mutex_t lock;
	pthread_cond_t wake; /* writer waits for work */
	pthread_cond_t done; /* synchronous submitters wait for their op */
	struct store_wop *head, *tail;
	int stop;
	pthread_mutex_t pool_lock;
	struct store_conn *pool;
	int version;
	int64_t online_ms;
	uint64_t n_batches, n_ops; /* writer statistics */
	uint64_t writer_cpu_ns;	   /* CPU time the writer thread spent in batches */
};

/* Thread-local error message for ctl_store_errmsg(). */
void st_set_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Maps a SQLite result code to an errno and records the message of db. */
int st_sqlerr(sqlite3 *db, int rc);

/* A cached statement of c for sql (static text), reset and cleared. */
sqlite3_stmt *st_stmt(struct store_conn *c, const char *sql);
/* A read connection from the pool (opened on demand); NULL with *err. */
struct store_conn *st_conn_get(struct ctl_store *st, int *err);
void st_conn_put(struct ctl_store *st, struct store_conn *c);
/*
 * Room for one more element in an array of n used elements of size elem,
 * *cap allocated: returns arr itself, or arr grown (doubling, from 16) with
 * *cap updated, or NULL on ENOMEM with arr still valid and its owner's.
 */
void *st_grow(void *arr, size_t n, size_t *cap, size_t elem);

/* Queues op and waits until it is committed; returns op->err. */
int st_submit_wait(struct ctl_store *st, struct store_wop *op);
/* Queues a heap-allocated op; the writer calls op->cb and frees op. */
int st_submit_async(struct ctl_store *st, struct store_wop *op);

/* Input checks: a string that is present (unless may_empty), at most max
 * bytes, and free of control characters. */
int st_check_str(const char *what, const char *s, size_t max, int may_empty);
int st_check_hex64(const char *what, const char *s);

/* Packs m into a malloc'd buffer (at most ST_BLOB_MAX). */
int st_pack(const ProtobufCMessage *m, uint8_t **buf, size_t *len);
/* Replaces a string field of a message owned by protobuf-c's free. */
int st_set_str(char **field, const char *v);
char *st_strdup0(const char *s);

/* Builds a Run message from a row whose first columns are RUN_COLS, selected
 * from RUN_FROM (the run's packed message lives in run_msg, apart from the
 * narrow rows that queries and aggregates scan). */
#define RUN_COLS                                                                                   \
	"rm.msg, r.state, r.reason, r.dispatched_ms, r.started_ms, r.finished_ms, r.deadline_ms, " \
	"r.due_ms"
#define RUN_FROM  "run r JOIN run_msg rm ON rm.rid = r.rid"
#define RUN_NCOLS 8
int st_run_from_row(sqlite3_stmt *s, int col, Fjord__V1__Run **out);

/* A WHERE clause built from a ctl_query, with its bound values in order. */
struct st_qbuild {
	char sql[4096];
	size_t len;
	int overflow;
	struct {
		int is_text;
		const char *s;
		int64_t i;
	} b[32];
	int nb;
};

void st_qb_add(struct st_qbuild *qb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void st_qb_text(struct st_qbuild *qb, const char *s);
void st_qb_int(struct st_qbuild *qb, int64_t v);
/* Checks q and appends " AND ..." terms on run alias r. */
int st_qb_filters(struct st_qbuild *qb, const struct ctl_query *q);
/* Appends " LIMIT ? OFFSET ?" from q. */
void st_qb_limit(struct st_qbuild *qb, const struct ctl_query *q);
/* Prepares the built SQL on c and binds its values; caller finalizes. */
int st_qb_prepare(struct store_conn *c, struct st_qbuild *qb, sqlite3_stmt **out);

/* Test hook: opens the database migrating only up to max_version (0 =
 * latest). Used to test migration of an existing older database. */
int ctl_store_open_version(const char *path, int max_version, struct ctl_store **out);
/* Number of schema migrations this build knows. */
int st_latest_version(void);

#endif
