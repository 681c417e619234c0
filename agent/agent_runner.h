/*
 * The experiment runner: each RunCommand runs in a forked child with a
 * deadline. The child writes its traces and Result to the spool. The parent
 * watches the child through a pidfd in the event loop; a crash (signal), a
 * non-zero exit, a hang past the deadline (SIGKILL) or a cancel becomes a
 * failed Result with the reason, written by the parent. The agent stays up.
 */
#ifndef AGENT_RUNNER_H
#define AGENT_RUNNER_H

#include <stddef.h>

#include "exp.h"
#include "fjord.pb-c.h"

struct agent_loop;
struct agent_spool;
struct agent_runner;

#define AGENT_RUNNER_MAX   64
#define AGENT_RUNNER_QUEUE 64

struct agent_runner_cfg {
	unsigned int max_runs;
	unsigned int default_deadline_s; /* when run.deadline_ms is 0 */
	unsigned int responder_port;
	const char *agent_version;
};

/* Called once per run when its Result is in the spool. */
typedef void (*agent_runner_done_fn)(void *arg, const char *run_id, int ok);
/* What the child runs (tests replace it; default exp_run). */
typedef int (*agent_runner_child_fn)(const Fjord__V1__RunCommand *cmd, const struct exp_env *env,
				     struct exp_out *out);

int agent_runner_create(struct agent_loop *loop, struct agent_spool *spool,
			const struct agent_runner_cfg *cfg, agent_runner_done_fn done, void *arg,
			struct agent_runner **out);
/*
 * Kills every child still running, waits for it and spools a failed Result
 * ("agent shut down while the run was in progress") for it.
 */
void agent_runner_destroy(struct agent_runner *r);
void agent_runner_set_child_fn(struct agent_runner *r, agent_runner_child_fn fn);

/*
 * Starts cmd, or queues it while max_runs runs are in progress or, for a
 * STACK_BUNDLED run, while another bundled run holds the node's client TUN
 * (bundled_tun): one bundled run at a time per agent, kernel runs beside it.
 * At most AGENT_RUNNER_QUEUE wait; waiting runs start in the order they came,
 * except that runs not needing the TUN pass bundled runs that wait for it. A
 * waiting run's deadline (run.deadline_ms) keeps counting: when it passes, the
 * run fails saying what it waited for ("deadline passed while waiting for the
 * bundled stack's TUN device fjtun0 (another bundled run, R, was using it)",
 * or "... for a free slot ..."); a run without one gets the default deadline
 * from its start. Returns 0 when the run started, waits, or was refused with a
 * failed Result in the spool (unsupported type or stack, queue full, spool
 * full, deadline already passed), -EALREADY when the run is running, waiting
 * or spooled already (a repeated command), -EINVAL when the command has no
 * usable run id (nothing can be reported then), or another negative errno.
 */
int agent_runner_start(struct agent_runner *r, const Fjord__V1__RunCommand *cmd);
/*
 * Kills the run's child (or drops it from the queue); its Result says
 * "cancelled: reason". -ENOENT if the run is neither running nor waiting.
 */
int agent_runner_cancel(struct agent_runner *r, const char *run_id, const char *reason);
/* Runs in progress, and runs waiting for a slot. */
unsigned int agent_runner_count(const struct agent_runner *r);
unsigned int agent_runner_queued(const struct agent_runner *r);
/*
 * The id of run i: 0 <= i < count are running, count <= i < count + queued
 * wait. Valid until the loop runs again.
 */
const char *agent_runner_id(const struct agent_runner *r, unsigned int i);

#endif
