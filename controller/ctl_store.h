/*
 * ctl_store: the controller's durable state behind one interface. The
 * default backend is SQLite (controller/store_sqlite.c): WAL, versioned
 * schema migrations applied at open, one writer thread that group-commits.
 *
 * Messages: every Fjord__V1__* message handed out by the store is a tree of
 * separately malloc'd pieces; the caller owns it and frees it with
 * protobuf_c_message_free_unpacked(&msg->base, NULL). Messages handed in are
 * only read and stay the caller's.
 *
 * Errors: 0 or a negative errno (-ENOENT: no such object, -EEXIST: conflict,
 * -EINVAL: bad argument, -EIO: database error, -ENOMEM). ctl_store_errmsg()
 * gives the last database message of the calling thread for logs.
 *
 * Threads: every function may be called from any thread. Reads run on the
 * caller's thread with their own connection; writes go through the writer
 * thread and return (or call back) only once committed and durable.
 */
#ifndef CTL_STORE_H
#define CTL_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "fjord.pb-c.h"

struct ctl_store;

/* Opens (creating if absent) the database at path and migrates its schema. */
int ctl_store_open(const char *path, struct ctl_store **out);
/* Waits for queued writes to commit, then closes. NULL is a no-op. */
void ctl_store_close(struct ctl_store *st);
const char *ctl_store_errmsg(void);
/* Schema version after migrations. */
int ctl_store_schema_version(struct ctl_store *st);
/* Size of the database files in bytes (for /metrics). */
int64_t ctl_store_size(struct ctl_store *st);
/*
 * Added by the store: an agent is reported online while its last poll is at
 * most window_ms old (default 120000). Does not change any stored data.
 */
void ctl_store_set_online_window(struct ctl_store *st, int64_t window_ms);

/* ---- users and sites ---------------------------------------------------- */

/* Stores a user API token by its SHA-256 hex hash with a role and a name. */
int ctl_store_token_add(struct ctl_store *st, const char *hash_hex, Fjord__V1__Role role,
			const char *name, int64_t now_ms);
/* Looks a token hash up; *role and *name (malloc'd, caller frees) on success. */
int ctl_store_token_lookup(struct ctl_store *st, const char *hash_hex, Fjord__V1__Role *role,
			   char **name);

/* ---- agents ------------------------------------------------------------- */

/*
 * Enrolls or re-enrolls the agent (site, node): creates its id on first
 * enrollment, keeps it afterwards, replaces its token hash and its
 * interfaces. *agent_id is malloc'd, caller frees.
 */
int ctl_store_agent_enroll(struct ctl_store *st, const Fjord__V1__EnrollRequest *req,
			   const char *token_hash_hex, int64_t now_ms, char **agent_id);
/* Finds the agent whose token hashes to token_hash_hex. */
int ctl_store_agent_by_token(struct ctl_store *st, const char *token_hash_hex,
			     Fjord__V1__Agent **out);
int ctl_store_agent_get(struct ctl_store *st, const char *agent_id, Fjord__V1__Agent **out);
int ctl_store_agent_list(struct ctl_store *st, Fjord__V1__AgentList **out);
/* Records what a poll reported (interfaces, version, running runs, time). */
int ctl_store_agent_seen(struct ctl_store *st, const char *agent_id,
			 const Fjord__V1__PollRequest *poll, int64_t now_ms);

/* ---- experiments and runs ----------------------------------------------- */

/*
 * Stores a new experiment (exp->id set by the caller) together with its
 * expanded runs, atomically.
 */
int ctl_store_experiment_create(struct ctl_store *st, const Fjord__V1__Experiment *exp,
				Fjord__V1__Run *const *runs, size_t n_runs);
int ctl_store_experiment_get(struct ctl_store *st, const char *id, Fjord__V1__Experiment **out);
int ctl_store_experiment_list(struct ctl_store *st, Fjord__V1__ExperimentList **out);
/* Marks the experiment cancelled and every run of it not yet finished
 * (pending, waiting, dispatched, running) cancelled with reason. *n_cancelled
 * may be NULL. */
int ctl_store_experiment_cancel(struct ctl_store *st, const char *id, const char *reason,
				int64_t now_ms, size_t *n_cancelled);

int ctl_store_run_get(struct ctl_store *st, const char *id, Fjord__V1__Run **out);

/*
 * Moves a run to a new state if it is currently in one of the states whose
 * bits are set in from_mask (bit N = RunState N). Sets dispatched_ms,
 * started_ms or finished_ms as the new state implies, and reason when not
 * NULL. Returns -ESTALE when the run was in another state (nothing changed).
 */
int ctl_store_run_transition(struct ctl_store *st, const char *id, uint32_t from_mask,
			     Fjord__V1__RunState to, const char *reason, int64_t now_ms);
#define CTL_RUN_BIT(s) (1u << (s))

/* Runs in any state of state_mask, ordered by due time, at most limit. */
int ctl_store_runs_by_state(struct ctl_store *st, uint32_t state_mask, size_t limit,
			    Fjord__V1__RunList **out);

/* Filters for run and result queries; NULL / 0 fields do not filter. */
struct ctl_query {
	const char *experiment_id;
	const char *site; /* client or server site */
	const char *isp;  /* local or remote ISP of any path */
	Fjord__V1__AddressFamily family;
	Fjord__V1__Stack stack;
	uint32_t state_mask;	/* 0 = any state */
	int64_t from_ms, to_ms; /* due time in [from, to) */
	const char *agent_id;	/* client or server agent */
	size_t limit;		/* 0 = 1000 */
	size_t offset;
};

int ctl_store_runs_query(struct ctl_store *st, const struct ctl_query *q, Fjord__V1__RunList **out);

/* ---- results ------------------------------------------------------------ */

/*
 * Stores a result for its run (res->run_id) from agent_id and moves the run to
 * SUCCEEDED or FAILED by res->ok. Storing the same result again is not an
 * error: *duplicate is set instead. -ENOENT if no such run.
 * Store details: one result per (run, agent); agent_id must be the run's
 * client or server agent (-EPERM otherwise); a different result from the
 * same agent for the same run is -EEXIST. Only the client agent's result
 * moves the run (and only out of pending/waiting/dispatched/running: a run
 * that was missed, failed by deadline or cancelled keeps that outcome) and
 * feeds its metrics to aggregates; the server's is stored alongside.
 */
int ctl_store_result_put(struct ctl_store *st, const Fjord__V1__Result *res, const char *agent_id,
			 int64_t now_ms, int *duplicate);
/* The same, but returns at once; done(arg, err, duplicate) runs on the
 * writer thread once the result is durable (or failed). done must be quick
 * and may read from the store but not write to it (-EDEADLK). */
int ctl_store_result_put_async(struct ctl_store *st, const Fjord__V1__Result *res,
			       const char *agent_id, int64_t now_ms,
			       void (*done)(void *arg, int err, int duplicate), void *arg);
int ctl_store_results_query(struct ctl_store *st, const struct ctl_query *q,
			    Fjord__V1__ResultList **out);

enum ctl_group_by {
	CTL_GROUP_SITE_PAIR,  /* "clientsite->serversite" */
	CTL_GROUP_ISP_PAIR,   /* "localisp->remoteisp" of the run's first path */
	CTL_GROUP_STACK,      /* "bundled", "kernel", "tcp" */
	CTL_GROUP_SCHEDULER,  /* provenance scheduler */
	CTL_GROUP_EXPERIMENT, /* experiment id */
};
/* Parses "site_pair", "isp_pair", "stack", "scheduler", "experiment". */
int ctl_group_by_parse(const char *s, enum ctl_group_by *out);

/* count, mean, median, p95, min, max of one summary metric per group. */
int ctl_store_aggregate(struct ctl_store *st, const char *metric, enum ctl_group_by by,
			const struct ctl_query *q, Fjord__V1__AggregateResponse **out);

/* ---- traces -------------------------------------------------------------- */

/* Records a completed trace upload; its bytes live in the data directory. */
int ctl_store_trace_put(struct ctl_store *st, const Fjord__V1__TraceInfo *ti);
int ctl_store_trace_get(struct ctl_store *st, const char *run_id, const char *name,
			Fjord__V1__TraceInfo **out);
int ctl_store_trace_list(struct ctl_store *st, const char *run_id, Fjord__V1__TraceList **out);

/* ---- counters for /metrics ------------------------------------------------ */

/* Number of runs in each RunState (counts[0..8]). */
int ctl_store_run_counts(struct ctl_store *st, uint64_t counts[9]);

#endif
