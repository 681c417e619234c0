/* Fork, watch, time out, reap, report. */
#include "agent_runner.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent_arena.h"
#include "agent_loop.h"
#include "agent_spool.h"
#include "bundled.h"
#include "fj_clock.h"
#include "fj_log.h"

#define CHILD_EXIT_SPOOL 3

struct run_slot {
	int used;
	pid_t pid;
	int pidfd;
	char run_id[AGENT_ID_MAX + 1];
	uint64_t timer;
	uint64_t deadline_ms; /* the run's allowance, for the message */
	int deadline_hit;
	char cancel[256];
	int cancelled;
	int64_t started_ms;
	int bundled; /* holds the node's client TUN (bundled_tun) */
	struct agent_runner *r;
};

struct queued_run {
	uint8_t *buf; /* the packed RunCommand */
	size_t len;
	char run_id[AGENT_ID_MAX + 1];
	int bundled;
	char holder[AGENT_ID_MAX + 1]; /* the bundled run it last waited for, or "" */
	int64_t deadline_wall;	       /* run.deadline_ms, or 0: counts from the start */
	uint64_t timer;		       /* fails the run at deadline_wall while it waits; 0: none */
};

struct agent_runner {
	struct agent_loop *loop;
	struct agent_spool *spool;
	struct agent_runner_cfg cfg;
	agent_runner_done_fn done;
	void *done_arg;
	agent_runner_child_fn child_fn;
	struct run_slot slots[AGENT_RUNNER_MAX];
	unsigned int count;
	struct queued_run queue[AGENT_RUNNER_QUEUE];
	unsigned int nqueue;
};

static void drain_queue(struct agent_runner *r);

int agent_runner_create(struct agent_loop *loop, struct agent_spool *spool,
			const struct agent_runner_cfg *cfg, agent_runner_done_fn done, void *arg,
			struct agent_runner **out)
{
	struct agent_runner *r;

	if (!cfg->max_runs || cfg->max_runs > AGENT_RUNNER_MAX || !cfg->default_deadline_s)
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->loop = loop;
	r->spool = spool;
	r->cfg = *cfg;
	r->done = done;
	r->done_arg = arg;
	r->child_fn = exp_run;
	*out = r;
	return 0;
}

void agent_runner_set_child_fn(struct agent_runner *r, agent_runner_child_fn fn)
{
	r->child_fn = fn ? fn : exp_run;
}

/* Spools a failed Result written by the parent. */
static int spool_failure(struct agent_runner *r, const char *run_id, int64_t started_ms,
			 const char *error)
{
	Fjord__V1__Result res = FJORD__V1__RESULT__INIT;
	int rc;

	res.run_id = (char *)run_id;
	res.ok = 0;
	res.error = (char *)error;
	res.started_ms = started_ms;
	res.finished_ms = fj_wall_ms();
	rc = agent_spool_put_result(r->spool, run_id, &res);
	if (rc < 0)
		fj_err("run %s: cannot spool its failed result (%s): %s", run_id, error,
		       strerror(-rc));
	else
		fj_warn("run %s failed: %s", run_id, error);
	return rc;
}

static void refuse(struct agent_runner *r, const char *run_id, const char *why)
{
	if (spool_failure(r, run_id, 0, why) == 0 && r->done)
		r->done(r->done_arg, run_id, 0);
}

static struct run_slot *find_slot(struct agent_runner *r, const char *run_id)
{
	unsigned int i;

	for (i = 0; i < AGENT_RUNNER_MAX; i++)
		if (r->slots[i].used && strcmp(r->slots[i].run_id, run_id) == 0)
			return &r->slots[i];
	return NULL;
}

static void format_seconds(char *buf, size_t len, uint64_t ms)
{
	if (ms % 1000 == 0)
		snprintf(buf, len, "%llu s", (unsigned long long)(ms / 1000));
	else
		snprintf(buf, len, "%.1f s", (double)ms / 1000.0);
}

/* Decides the failure reason from how the child ended; NULL when it succeeded. */
static const char *exit_reason(struct run_slot *s, int status, char *buf, size_t len)
{
	char secs[32];

	if (WIFSIGNALED(status) && s->cancelled) {
		snprintf(buf, len, "cancelled: %s", s->cancel);
	} else if (WIFSIGNALED(status) && s->deadline_hit) {
		format_seconds(secs, sizeof(secs), s->deadline_ms);
		snprintf(buf, len, "deadline of %s passed", secs);
	} else if (WIFSIGNALED(status)) {
		snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(status),
			 strsignal(WTERMSIG(status)));
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == CHILD_EXIT_SPOOL) {
		snprintf(buf, len, "experiment process could not write its result to the spool");
	} else if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
		snprintf(buf, len, "experiment process exited with status %d", WEXITSTATUS(status));
	} else if (!agent_spool_has_result(s->r->spool, s->run_id)) {
		snprintf(buf, len, "experiment process exited without a result");
	} else {
		return NULL;
	}
	return buf;
}

static void slot_release(struct run_slot *s)
{
	struct agent_runner *r = s->r;

	if (s->timer)
		agent_loop_timer_del(r->loop, s->timer);
	agent_loop_fd_del(r->loop, s->pidfd);
	close(s->pidfd);
	memset(s, 0, sizeof(*s));
	r->count--;
}

static void reap(struct run_slot *s, int status)
{
	struct agent_runner *r = s->r;
	char run_id[AGENT_ID_MAX + 1], buf[320];
	const char *why = exit_reason(s, status, buf, sizeof(buf));
	int ok = why == NULL;

	if (why)
		spool_failure(r, s->run_id, s->started_ms, why);
	else
		fj_info("run %s finished", s->run_id);
	memcpy(run_id, s->run_id, sizeof(run_id));
	slot_release(s);
	if (r->done)
		r->done(r->done_arg, run_id, ok);
	drain_queue(r);
}

static void on_child(struct agent_loop *loop, int fd, unsigned int ev, void *arg)
{
	struct run_slot *s = arg;
	int status = 0;
	pid_t p;

	(void)loop;
	(void)fd;
	(void)ev;
	p = waitpid(s->pid, &status, WNOHANG);
	if (p == 0)
		return; /* not gone yet */
	if (p < 0) {
		fj_err("run %s: waitpid: %s", s->run_id, strerror(errno));
		status = W_EXITCODE(255, 0);
	}
	reap(s, status);
}

static void on_deadline(struct agent_loop *loop, uint64_t id, void *arg)
{
	struct run_slot *s = arg;

	(void)loop;
	(void)id;
	s->timer = 0;
	s->deadline_hit = 1;
	kill(s->pid, SIGKILL);
}

/* In the child: run the experiment, write traces then the result, exit. */
static void __attribute__((noreturn))
child_main(struct agent_runner *r, const Fjord__V1__RunCommand *cmd, uint64_t deadline_mono,
	   int64_t started_ms, pid_t parent)
{
	Fjord__V1__Result res = FJORD__V1__RESULT__INIT;
	struct exp_env env = { r->cfg.responder_port, deadline_mono, r->cfg.agent_version };
	struct agent_arena arena;
	struct exp_out out;
	unsigned int i;
	int rc = 0;

	/* Die with the agent: an orphan run would report to nobody. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGPIPE, SIG_IGN);
	agent_arena_init(&arena, 16u << 20);
	memset(&out, 0, sizeof(out));
	out.arena = &arena;
	out.result = &res;
	res.run_id = cmd->run->id;
	res.started_ms = started_ms;
	if (r->child_fn(cmd, &env, &out) < 0 && !res.error)
		exp_fail(&out, "experiment could not build its result");
	res.finished_ms = fj_wall_ms();
	for (i = 0; i < out.n_traces && !rc; i++)
		rc = out.traces[i].len == 0
			     ? 0
			     : agent_spool_put_trace(r->spool, res.run_id, out.traces[i].name,
						     out.traces[i].data, out.traces[i].len);
	if (!rc)
		rc = agent_spool_put_result(r->spool, res.run_id, &res);
	_exit(rc ? CHILD_EXIT_SPOOL : 0);
}

static int run_deadline(struct agent_runner *r, const Fjord__V1__Run *run, uint64_t *ms)
{
	int64_t now = fj_wall_ms();

	if (run->deadline_ms <= 0) {
		*ms = (uint64_t)r->cfg.default_deadline_s * 1000;
		return 0;
	}
	if (run->deadline_ms <= now)
		return -ETIMEDOUT;
	*ms = (uint64_t)(run->deadline_ms - now);
	return 0;
}

static struct run_slot *free_slot(struct agent_runner *r)
{
	unsigned int i;

	for (i = 0; i < AGENT_RUNNER_MAX; i++)
		if (!r->slots[i].used)
			return &r->slots[i];
	return NULL;
}

/* Refusals at start time that still produce a Result; returns 1 if refused. */
static int admission(struct agent_runner *r, const Fjord__V1__RunCommand *cmd, uint64_t *ms)
{
	const char *id = cmd->run->id;
	char why[256];

	if (agent_spool_admit(r->spool) < 0) {
		/* The failed result is small and written past the cap: losing it is worse. */
		snprintf(why, sizeof(why), "spool full: %llu of %llu bytes used; run refused",
			 (unsigned long long)agent_spool_usage(r->spool),
			 (unsigned long long)agent_spool_cap(r->spool));
		refuse(r, id, why);
		return 1;
	}
	if (run_deadline(r, cmd->run, ms) < 0) {
		refuse(r, id, "deadline passed before the run could start");
		return 1;
	}
	return 0;
}

/*
 * A bundled run opens the node's one client TUN (bundled_tun) in its child for
 * the whole run, and a second opener would find it busy: every bundled type
 * (bulk, echo, rr, handover, probe) takes turns on it.
 */
static int uses_bundled_tun(const Fjord__V1__RunCommand *cmd)
{
	return cmd->run->stack == FJORD__V1__STACK__STACK_BUNDLED;
}

/*
 * What a bundled run holds while it runs (one at a time per node): the
 * client TUN, or the host adapter's ephemeral ports on the node's addresses.
 */
static const char *bundled_what(char *buf, size_t len)
{
	if (bundled_get()->host)
		snprintf(buf, len, "host adapter");
	else
		snprintf(buf, len, "TUN device %s", bundled_get()->tun);
	return buf;
}

/* The running bundled run, or NULL. */
static const struct run_slot *bundled_holder(const struct agent_runner *r)
{
	unsigned int i;

	for (i = 0; i < AGENT_RUNNER_MAX; i++)
		if (r->slots[i].used && r->slots[i].bundled)
			return &r->slots[i];
	return NULL;
}

/* Why q still waits, in the words of its failure when its deadline passes. */
static void wait_reason(const struct agent_runner *r, const struct queued_run *q, char *buf,
			size_t len)
{
	const struct run_slot *h = bundled_holder(r);
	const char *holder = h ? h->run_id : q->holder;
	char what[64];

	if (q->bundled && holder[0])
		snprintf(buf, len,
			 "deadline passed while waiting for the bundled stack's %s (another "
			 "bundled run, %s, was using it)",
			 bundled_what(what, sizeof(what)), holder);
	else
		snprintf(buf, len,
			 "deadline passed while waiting for a free slot (%u runs in progress, "
			 "max_runs = %u)",
			 r->count, r->cfg.max_runs);
}

static int find_queued(const struct agent_runner *r, const char *run_id)
{
	unsigned int i;

	for (i = 0; i < r->nqueue; i++)
		if (strcmp(r->queue[i].run_id, run_id) == 0)
			return (int)i;
	return -1;
}

/*
 * Takes entry i out of the queue into *q (the caller frees q->buf), disarming
 * its deadline timer. Taken out first, so that callbacks run while the caller
 * starts or refuses it see a consistent queue.
 */
static void unqueue(struct agent_runner *r, unsigned int i, struct queued_run *q)
{
	*q = r->queue[i];
	if (q->timer)
		agent_loop_timer_del(r->loop, q->timer);
	q->timer = 0;
	memmove(&r->queue[i], &r->queue[i + 1], (r->nqueue - i - 1) * sizeof(r->queue[0]));
	r->nqueue--;
}

static void dequeue(struct agent_runner *r, unsigned int i)
{
	struct queued_run q;

	unqueue(r, i, &q);
	free(q.buf);
}

/* Fails waiting run i, whose deadline passed, naming what it waited for. */
static void expire_queued(struct agent_runner *r, unsigned int i)
{
	struct queued_run q;
	char why[320];

	wait_reason(r, &r->queue[i], why, sizeof(why));
	unqueue(r, i, &q);
	free(q.buf);
	refuse(r, q.run_id, why);
}

static void on_queue_deadline(struct agent_loop *loop, uint64_t id, void *arg)
{
	struct agent_runner *r = arg;
	unsigned int i;

	(void)loop;
	for (i = 0; i < r->nqueue; i++) {
		if (r->queue[i].timer != id)
			continue;
		r->queue[i].timer = 0;
		expire_queued(r, i);
		return;
	}
}

static int enqueue(struct agent_runner *r, const Fjord__V1__RunCommand *cmd)
{
	const struct run_slot *h = uses_bundled_tun(cmd) ? bundled_holder(r) : NULL;
	struct queued_run *q;
	uint64_t left_ms;
	char why[128], what[64];

	if (r->nqueue == AGENT_RUNNER_QUEUE) {
		snprintf(why, sizeof(why), "agent busy: %u runs in progress and %u waiting",
			 r->count, r->nqueue);
		refuse(r, cmd->run->id, why);
		return 0;
	}
	if (run_deadline(r, cmd->run, &left_ms) < 0) {
		refuse(r, cmd->run->id, "deadline passed before the run could start");
		return 0;
	}
	q = &r->queue[r->nqueue];
	memset(q, 0, sizeof(*q));
	q->len = fjord__v1__run_command__get_packed_size(cmd);
	q->buf = malloc(q->len + 1);
	if (!q->buf)
		return -ENOMEM;
	fjord__v1__run_command__pack(cmd, q->buf);
	snprintf(q->run_id, sizeof(q->run_id), "%s", cmd->run->id);
	q->bundled = uses_bundled_tun(cmd);
	if (h)
		memcpy(q->holder, h->run_id, sizeof(q->holder));
	if (cmd->run->deadline_ms > 0) {
		q->deadline_wall = cmd->run->deadline_ms;
		/* Without the timer (no memory) the deadline is still checked at the start. */
		q->timer = agent_loop_timer_add(r->loop, left_ms, on_queue_deadline, r);
	}
	r->nqueue++;
	if (h)
		fj_info("run %s waits for the bundled stack's %s (run %s has it)", q->run_id,
			bundled_what(what, sizeof(what)), h->run_id);
	else
		fj_info("run %s waits for a free slot (max_runs = %u)", q->run_id, r->cfg.max_runs);
	return 0;
}

static int spawn(struct agent_runner *r, const Fjord__V1__RunCommand *cmd, struct run_slot *s,
		 uint64_t deadline_ms)
{
	pid_t parent = getpid(), pid;
	int64_t started = fj_wall_ms();
	int pidfd;

	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0)
		child_main(r, cmd, fj_mono_ms() + deadline_ms, started, parent);
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0 || agent_loop_fd_set(r->loop, pidfd, AGENT_EV_READ, on_child, s) < 0) {
		int e = pidfd < 0 ? errno : EMFILE;

		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		if (pidfd >= 0)
			close(pidfd);
		return -e;
	}
	s->used = 1;
	s->r = r;
	s->pid = pid;
	s->pidfd = pidfd;
	s->started_ms = started;
	s->deadline_ms = deadline_ms;
	s->bundled = uses_bundled_tun(cmd);
	snprintf(s->run_id, sizeof(s->run_id), "%s", cmd->run->id);
	s->timer = agent_loop_timer_add(r->loop, deadline_ms, on_deadline, s);
	r->count++;
	return 0;
}

static int start_now(struct agent_runner *r, const Fjord__V1__RunCommand *cmd)
{
	struct run_slot *s;
	uint64_t deadline_ms = 0;
	char why[128];
	int rc;

	if (admission(r, cmd, &deadline_ms))
		return 0;
	rc = agent_spool_run_begin(r->spool, cmd->run->id);
	if (rc < 0) {
		fj_err("run %s: cannot create its spool folder: %s", cmd->run->id, strerror(-rc));
		return rc;
	}
	s = free_slot(r);
	rc = s ? spawn(r, cmd, s, deadline_ms) : -EBUSY;
	if (rc < 0) {
		snprintf(why, sizeof(why), "cannot start the experiment process: %s",
			 strerror(-rc));
		refuse(r, cmd->run->id, why);
		return 0;
	}
	fj_info("run %s started (pid %d, deadline %llu ms)", cmd->run->id, (int)s->pid,
		(unsigned long long)deadline_ms);
	return 0;
}

/*
 * A slot or the client TUN is free: start the waiting runs that can start, in
 * the order they came. A bundled run waits while another holds the TUN; runs
 * behind it that do not need the TUN go ahead.
 */
static void drain_queue(struct agent_runner *r)
{
	unsigned int i = 0;

	while (i < r->nqueue && r->count < r->cfg.max_runs) {
		Fjord__V1__RunCommand *cmd;
		struct queued_run q;

		const struct run_slot *h = bundled_holder(r);

		if (r->queue[i].deadline_wall > 0 && r->queue[i].deadline_wall <= fj_wall_ms()) {
			expire_queued(r, i);
			continue;
		}
		if (r->queue[i].bundled && h) {
			memcpy(r->queue[i].holder, h->run_id, sizeof(r->queue[i].holder));
			i++;
			continue;
		}
		unqueue(r, i, &q);
		cmd = fjord__v1__run_command__unpack(NULL, q.len, q.buf);
		if (cmd)
			start_now(r, cmd);
		else
			refuse(r, q.run_id, "internal error: queued command unreadable");
		if (cmd)
			fjord__v1__run_command__free_unpacked(cmd, NULL);
		free(q.buf);
	}
}

int agent_runner_start(struct agent_runner *r, const Fjord__V1__RunCommand *cmd)
{
	char why[256];

	if (!cmd->run || !cmd->run->id || !agent_spool_valid_name(cmd->run->id)) {
		fj_err("run command with a missing or unusable run id ignored");
		return -EINVAL;
	}
	if (find_slot(r, cmd->run->id) || find_queued(r, cmd->run->id) >= 0 ||
	    agent_spool_run_exists(r->spool, cmd->run->id))
		return -EALREADY;
	if (exp_check(cmd, why, sizeof(why)) < 0) {
		refuse(r, cmd->run->id, why);
		return 0;
	}
	if (r->count >= r->cfg.max_runs || (uses_bundled_tun(cmd) && bundled_holder(r)))
		return enqueue(r, cmd);
	return start_now(r, cmd);
}

int agent_runner_cancel(struct agent_runner *r, const char *run_id, const char *reason)
{
	struct run_slot *s = find_slot(r, run_id);
	int qi = find_queued(r, run_id);
	char why[300];

	if (!s && qi >= 0) {
		snprintf(why, sizeof(why), "cancelled: %s",
			 reason && reason[0] ? reason : "no reason given");
		dequeue(r, (unsigned int)qi);
		refuse(r, run_id, why);
		return 0;
	}
	if (!s)
		return -ENOENT;
	s->cancelled = 1;
	snprintf(s->cancel, sizeof(s->cancel), "%s",
		 reason && reason[0] ? reason : "no reason given");
	kill(s->pid, SIGKILL);
	return 0;
}

unsigned int agent_runner_count(const struct agent_runner *r)
{
	return r->count;
}

unsigned int agent_runner_queued(const struct agent_runner *r)
{
	return r->nqueue;
}

const char *agent_runner_id(const struct agent_runner *r, unsigned int i)
{
	unsigned int k, seen = 0;

	if (i >= r->count)
		return i - r->count < r->nqueue ? r->queue[i - r->count].run_id : NULL;

	for (k = 0; k < AGENT_RUNNER_MAX; k++) {
		if (!r->slots[k].used)
			continue;
		if (seen++ == i)
			return r->slots[k].run_id;
	}
	return NULL;
}

void agent_runner_destroy(struct agent_runner *r)
{
	unsigned int i;

	if (!r)
		return;
	for (i = 0; i < AGENT_RUNNER_MAX; i++) {
		struct run_slot *s = &r->slots[i];
		int status = 0;

		if (!s->used)
			continue;
		kill(s->pid, SIGKILL);
		waitpid(s->pid, &status, 0);
		/* A child that finished just before keeps its own result. */
		if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
		      agent_spool_has_result(r->spool, s->run_id)))
			spool_failure(r, s->run_id, s->started_ms,
				      "agent shut down while the run was in progress");
		slot_release(s);
	}
	while (r->nqueue > 0) {
		spool_failure(r, r->queue[0].run_id, 0,
			      "agent shut down before the run could start");
		dequeue(r, 0);
	}
	free(r);
}
