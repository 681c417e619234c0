/*
 * Link events of a handover run: at their time after the transfer starts, a
 * path's link goes down, comes back up or becomes a backup. With a hook
 * template (exp_set_link_hook(), or FJORD_LINK_HOOK) the agent runs it
 * through /bin/sh with {site}, {isp}, {action} and {addr} filled in; on the
 * emulated testbed that is "fjord-testbed set {site}/{isp} {action}". Without
 * one, and for "backup" always, it changes the kernel's MPTCP endpoint of the
 * ISP's local address: "down" deletes it (the kernel closes its subflows),
 * "up" adds it again as it was, "backup" sets its backup flag. Commands run
 * in the background; their exit status becomes an event. A bundled-stack run
 * (run.stack) has no kernel endpoints: with a hook it uses it for down and up,
 * and what goes without one is done by the run itself on its connection
 * (exp_link_sched.apply): "down" withdraws the ISP's bundled address
 * (REMOVE_ADDR, its subflows reset), "up" joins from it again, "backup" sends
 * MP_PRIO on the subflows from it.
 */
#ifndef AGENT_EXP_LINK_H
#define AGENT_EXP_LINK_H

#include <stdint.h>
#include <sys/types.h>

#include "exp.h"

#define EXP_LINK_MAX_EVENTS 32
#define EXP_LINK_CMD_MAX    512

struct exp_link_event {
	uint32_t at_ms;
	char action[8]; /* down, up, backup */
	char isp[65];
	char cmd[EXP_LINK_CMD_MAX]; /* "" for an event applied by the run (apply) */
	int fired;
	pid_t pid;
};

struct exp_link_sched {
	struct exp_link_event ev[EXP_LINK_MAX_EVENTS];
	unsigned int n, next;
	unsigned int during;   /* events fired while the transfer ran (set by exp_link_finish) */
	int64_t first_down_ms; /* mono ms of the first "down", or -1 */
	uint64_t t0;
	/*
	 * Set by a bundled run before t0: applies an event without a command
	 * (down, up or backup, see above) to its connection. Returns 0 with what
	 * it did in buf, or a negative errno with why not.
	 */
	int (*apply)(void *arg, const struct exp_link_event *e, char *buf, size_t len);
	void *apply_arg;
};

/*
 * Builds the schedule of h's events (sorted by time) with their commands.
 * 0, or -EINVAL after exp_fail() naming the field ("handover.events[1].isp ...").
 */
int exp_link_prepare(const Fjord__V1__RunCommand *cmd, const Fjord__V1__HandoverParams *h,
		     struct exp_link_sched *ls, struct exp_out *out);
/* Starts the events now due (t0 set by the caller); returns ms to the next one (or UINT32_MAX). */
uint32_t exp_link_run_due(struct exp_link_sched *ls, struct exp_out *out);
/*
 * After the transfer: "up" events not yet due run now (a link is never left
 * down), the others become "link_event_skipped"; then waits for the commands.
 */
void exp_link_finish(struct exp_link_sched *ls, struct exp_out *out);
/* Collects finished commands; with wait_ms > 0 waits that long for the rest. */
void exp_link_reap(struct exp_link_sched *ls, struct exp_out *out, unsigned int wait_ms);

/*
 * A handover run whose workload is rr (HandoverParams.rr, in exp_rr.c):
 * request/response transactions while the events fire; latency before,
 * during and after the outage, stall and recovery (docs/experiments.md).
 * The type's dispatcher calls it when HandoverParams.rr is set.
 */
int exp_rr_handover_run(const Fjord__V1__RunCommand *cmd, const struct exp_env *env,
			struct exp_out *out);

#endif
