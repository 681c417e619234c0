/*
 * The spool: results and traces are written here before anything is sent, and
 * removed only once the controller has acknowledged them. Layout:
 *
 *   SPOOL/runs/RUN_ID/           one folder per run, made when the run starts
 *   SPOOL/runs/RUN_ID/result.pb  the Result (protobuf), written last
 *   SPOOL/runs/RUN_ID/t.NAME     the trace NAME
 *   SPOOL/runs/RUN_ID/acked      the result was acknowledged but traces remain
 *   SPOOL/runs/RUN_ID/.tmp.*     files being written (write, fsync, rename,
 *                                fsync the folder); removed when the spool opens
 *
 * Several processes may write (experiment children write their own result), so
 * usage is measured on disk, not counted in memory.
 */
#ifndef AGENT_SPOOL_H
#define AGENT_SPOOL_H

#include <stddef.h>
#include <stdint.h>

struct agent_spool;
struct Fjord__V1__Result;

#define AGENT_ID_MAX	 64
#define AGENT_RESULT_MAX (1u << 20)

struct agent_spool_item {
	char run_id[AGENT_ID_MAX + 1];
	char name[AGENT_ID_MAX + 1]; /* trace name; empty for the result */
	uint64_t size;
};

/* Run ids and trace names: [A-Za-z0-9._-]{1,64}, not "." or "..". */
int agent_spool_valid_name(const char *s);

/*
 * Opens (creating if needed) the spool in dir with a cap in bytes. Removes
 * temporary files a crash left behind, and gives every run folder that has no
 * result (its run was interrupted by a crash of the agent) a failed Result
 * whose error says so, started_ms unknown. *recovered (may be NULL) gets the
 * number of such runs. The caller frees with agent_spool_close().
 */
int agent_spool_open(const char *dir, uint64_t cap, struct agent_spool **out,
		     unsigned int *recovered);
void agent_spool_close(struct agent_spool *sp);

/* Bytes on disk right now (every file under runs/). */
uint64_t agent_spool_usage(const struct agent_spool *sp);
uint64_t agent_spool_cap(const struct agent_spool *sp);
/* 0 when a new run may start, -ENOSPC when the spool is at or over its cap. */
int agent_spool_admit(const struct agent_spool *sp);

/* Makes the run's folder; -EEXIST if the run is already spooled, -EINVAL for a bad id. */
int agent_spool_run_begin(struct agent_spool *sp, const char *run_id);
/* 1 if the run's folder exists, 1 if result.pb exists (for has_result), else 0. */
int agent_spool_run_exists(const struct agent_spool *sp, const char *run_id);
int agent_spool_has_result(const struct agent_spool *sp, const char *run_id);

/* Durably writes a trace or the run's result (replacing an earlier one). */
int agent_spool_put_trace(struct agent_spool *sp, const char *run_id, const char *name,
			  const void *data, size_t len);
int agent_spool_put_result(struct agent_spool *sp, const char *run_id,
			   const struct Fjord__V1__Result *r);

/*
 * Lists what awaits upload, oldest run first; each finished run gives its
 * traces, then its result (which marks the run finished, so it goes last).
 * Runs still in progress (no result yet) are left out.
 * *items is malloc'd (free it); at most max items.
 */
int agent_spool_list(const struct agent_spool *sp, struct agent_spool_item **items, size_t *n,
		     size_t max);

/* Reads the result bytes (malloc'd into *buf, free it). */
int agent_spool_read_result(const struct agent_spool *sp, const char *run_id, uint8_t **buf,
			    size_t *len);
/* Path of a trace file, for streaming it out. */
int agent_spool_trace_path(const struct agent_spool *sp, const char *run_id, const char *name,
			   char *buf, size_t len);

/* The controller has it: remove the result or trace, and the run folder once empty. */
int agent_spool_ack_result(struct agent_spool *sp, const char *run_id);
int agent_spool_ack_trace(struct agent_spool *sp, const char *run_id, const char *name);

#endif
