/*
 * ctl_sched: turns experiments into runs and runs into agent commands.
 *
 * Expansion is a pure function of the spec, the agents known at creation
 * and a seed (for jitter). Dispatch keeps, in memory, which links (agent x
 * ISP uplink) are reserved by dispatched or running runs; it rebuilds that
 * from the store at create. Run states live in the store; every state change
 * goes through ctl_store_run_transition so that a restart loses nothing.
 *
 * Errors: 0 or a negative errno. Not thread-safe unless said: the HTTP layer
 * serialises calls with its own lock.
 */
#ifndef CTL_SCHED_H
#define CTL_SCHED_H

#include <stddef.h>
#include <stdint.h>

#include "ctl_store.h"

struct ctl_sched;

/* Why a spec was refused: the field's JSON path ("targets.pairs[0]") and a sentence. */
struct ctl_reject {
	char field[96];
	char message[256];
};

/* Checks a spec before creation: type known, params present and sane for the
 * type, targets and schedule coherent. 0 or -EINVAL with *why filled. */
int ctl_sched_validate(const Fjord__V1__ExperimentSpec *spec, struct ctl_reject *why);

/*
 * Expands an experiment into its runs: targets (explicit pairs; all ordered
 * site pairs; per local ISP x remote ISP x family when per_path) x stacks x
 * schedule (one-off, or periodic by interval with count or end time, each
 * with random jitter drawn from seed). Runs get ids, PENDING state, due and
 * deadline times. *runs is a malloc'd array of messages the caller frees
 * (each with protobuf_c_message_free_unpacked, then the array with free).
 * -EINVAL with *why when nothing can be expanded (no agent on a named site,
 * an ISP no agent has, ...). Occurrences already more than pickup_s before
 * now_ms are left out (they could only be missed); run.sequence keeps the
 * occurrence's index in the schedule. Run ids are "<experiment id>.<n>".
 */
int ctl_sched_expand(const Fjord__V1__Experiment *exp, const Fjord__V1__AgentList *agents,
		     int64_t now_ms, uint64_t seed, Fjord__V1__Run ***runs, size_t *n_runs,
		     struct ctl_reject *why);

int ctl_sched_create(struct ctl_store *st, struct ctl_sched **out);
void ctl_sched_destroy(struct ctl_sched *s);

/* notify(arg, agent_id) is called (under the caller's lock) whenever new
 * commands become ready for an agent, so a suspended long-poll can answer. */
void ctl_sched_set_notify(struct ctl_sched *s, void (*notify)(void *arg, const char *agent_id),
			  void *arg);

/*
 * Advances time: due runs whose links are free become ready for their client
 * agent (reserving the links unless the experiment shares them), due runs
 * with busy links wait (WAITING_LINKS), runs not picked up within pickup_s of
 * being due become MISSED, runs not finished by their deadline become FAILED
 * ("deadline passed"). Returns the milliseconds until it needs to run again
 * (at most 1000), or a negative errno.
 */
int64_t ctl_sched_tick(struct ctl_sched *s, int64_t now_ms);

/* Hands over the commands ready for agent_id (RunCommand for runs, marked
 * DISPATCHED; CancelCommand for cancelled runs it holds). *out is never NULL
 * on success; it may hold no command. */
int ctl_sched_take_commands(struct ctl_sched *s, const char *agent_id, int64_t now_ms,
			    Fjord__V1__PollResponse **out);
/* Whether commands wait for agent_id. */
int ctl_sched_has_commands(struct ctl_sched *s, const char *agent_id);

/* A poll's report: runs the agent lists become RUNNING; runs dispatched to
 * it more than a grace period ago that it does not list and has sent no
 * result for go back to PENDING if it never listed them (the command may
 * not have arrived; they are dispatched again) and become FAILED ("agent
 * lost the run") if it did; runs it lists that ended here (cancelled,
 * failed, missed) get a CancelCommand. A run failed at its deadline also
 * gets one at that tick. */
int ctl_sched_agent_report(struct ctl_sched *s, const char *agent_id,
			   const Fjord__V1__PollRequest *poll, int64_t now_ms);

/* A result was stored for run_id: its links are released once the run has
 * ended in the store (the server agent's result alone does not end it). */
void ctl_sched_run_finished(struct ctl_sched *s, const char *run_id);

/* Cancels an experiment: pending runs cancelled in the store, agents holding
 * its dispatched or running runs get CancelCommands. */
int ctl_sched_cancel(struct ctl_sched *s, const char *experiment_id, const char *reason,
		     int64_t now_ms, size_t *n_cancelled);

#endif
