/* The agent: one loop, everything else plugged into it. */
#include "agent.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "agent_arena.h"
#include "agent_config.h"
#include "agent_ctl.h"
#include "agent_http.h"
#include "agent_loop.h"
#include "agent_runner.h"
#include "agent_spool.h"
#include "agent_sysinfo.h"
#include "agent_upload.h"
#include "bundled.h"
#include "fj_log.h"
#include "responder.h"

#define AGENT_MAX_FDS 4096

struct agent {
	struct agent_config cfg;
	struct agent_loop *loop;
	struct agent_http *http;
	struct agent_spool *spool;
	struct agent_runner *runner;
	struct agent_responder *responder;
	struct agent_ctl *ctl;
	struct agent_upload *up;
	int sigfd;
	struct bundled_sup *bundled; /* the bundled responder under watch, or NULL */
	int once;
	int stopped_by_signal;
};

static int on_status(void *arg, Fjord__V1__PollRequest *req, struct agent_arena *ar)
{
	struct agent *a = arg;
	unsigned int i, n = agent_runner_count(a->runner) + agent_runner_queued(a->runner);
	int rc;

	rc = agent_sysinfo_interfaces(&a->cfg, ar, &req->interfaces, &req->n_interfaces);
	if (rc < 0)
		fj_warn("cannot read interfaces: %s", strerror(-rc));
	req->running_run_ids = agent_arena_alloc(ar, (n + 1) * sizeof(char *));
	if (!req->running_run_ids)
		return -ENOMEM;
	for (i = 0; i < n; i++)
		req->running_run_ids[i] = agent_arena_strdup(ar, agent_runner_id(a->runner, i));
	req->n_running_run_ids = n;
	return 0;
}

static void on_commands(void *arg, const Fjord__V1__PollResponse *resp)
{
	struct agent *a = arg;
	size_t i;

	for (i = 0; i < resp->n_commands; i++) {
		const Fjord__V1__Command *c = resp->commands[i];
		int rc;

		if (c->kind_case == FJORD__V1__COMMAND__KIND_RUN && c->run) {
			rc = agent_runner_start(a->runner, c->run);
			if (rc == -EALREADY)
				fj_info("run %s: already running or spooled; ignoring the repeat",
					c->run->run->id);
		} else if (c->kind_case == FJORD__V1__COMMAND__KIND_CANCEL && c->cancel) {
			rc = agent_runner_cancel(a->runner, c->cancel->run_id, c->cancel->reason);
			if (rc == -ENOENT)
				fj_info("cancel of run %s: not running here", c->cancel->run_id);
		} else {
			fj_warn("poll answer carries an empty or unknown command; ignored");
		}
	}
}

static void on_enrolled(void *arg)
{
	struct agent *a = arg;

	agent_upload_kick(a->up);
}

static void on_run_done(void *arg, const char *run_id, int ok)
{
	struct agent *a = arg;

	(void)run_id;
	(void)ok;
	agent_upload_kick(a->up);
}

static void on_signal(struct agent_loop *loop, int fd, unsigned int ev, void *arg)
{
	struct agent *a = arg;
	struct signalfd_siginfo si;

	(void)ev;
	if (read(fd, &si, sizeof(si)) != sizeof(si))
		return;
	fj_info("signal %u: shutting down", si.ssi_signo);
	a->stopped_by_signal = 1;
	agent_loop_stop(loop);
}

/* --once ends when the poll was answered, no run is left and the spool is empty. */
static void before_sleep(struct agent_loop *loop, void *arg)
{
	struct agent *a = arg;

	if (!a->once || !agent_ctl_once_done(a->ctl) || agent_runner_count(a->runner) > 0 ||
	    agent_runner_queued(a->runner) > 0)
		return;
	if (agent_upload_idle(a->up))
		agent_loop_stop(loop);
}

static int setup_signals(struct agent *a)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -errno;
	a->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (a->sigfd < 0)
		return -errno;
	return agent_loop_fd_set(a->loop, a->sigfd, AGENT_EV_READ, on_signal, a);
}

static struct bundled_cfg the_bundled;

static int create_parts(struct agent *a, char *err, size_t errlen)
{
	struct agent_runner_cfg rc = { a->cfg.max_runs, a->cfg.run_deadline_s,
				       a->cfg.responder_port, FJORD_AGENT_VERSION };
	const char *addrs[AGENT_MAX_RESP_ADDRS];
	static char info[BUNDLED_INFO_MAX + 1];
	struct agent_responder_cfg resp = { addrs,
					    a->cfg.n_responder_addrs,
					    a->cfg.responder_port,
					    a->cfg.responder_max_conns,
					    a->cfg.responder_idle_s,
					    0,
					    NULL };
	struct agent_ctl_ops ops = { on_status, on_commands, on_enrolled };
	unsigned int i, recovered = 0;
	int r;

	for (i = 0; i < a->cfg.n_responder_addrs; i++)
		addrs[i] = a->cfg.responder_addrs[i];
	r = agent_spool_open(a->cfg.spool_dir, a->cfg.spool_cap_bytes, &a->spool, &recovered);
	if (r < 0) {
		snprintf(err, errlen, "spool_dir %s: %s", a->cfg.spool_dir, strerror(-r));
		return r;
	}
	if (recovered)
		fj_warn("%u run(s) interrupted by the last shutdown are reported failed",
			recovered);
	/* The bundled stack: runs inherit its settings; the responder is a process of its own. */
	bundled_cfg_from_agent(&a->cfg, &the_bundled);
	bundled_set(&the_bundled);
	/* The host adapter's needs: refused at start, not at each run (bundled_host.c). */
	r = bundled_host_check(&the_bundled, err, errlen);
	if (r < 0)
		return r;
	if (the_bundled.resp_tun[0] || the_bundled.host) {
		/*
		 * Restarted after an exit or a hang (bundled.h). A device that
		 * is not there yet (the agent started before the testbed) is
		 * tried again every 5 s; peers meanwhile learn the addresses
		 * and find no answer there, which their runs report.
		 */
		r = bundled_sup_create(
			a->loop, &the_bundled,
			the_bundled.host ? the_bundled.resp_port : a->cfg.responder_port,
			a->cfg.responder_max_conns < 16 ? a->cfg.responder_max_conns : 16,
			a->cfg.responder_idle_s, BUNDLED_HANG_MS, &a->bundled);
		if (r < 0) {
			snprintf(err, errlen, "bundled responder: %s", strerror(-r));
			return r;
		}
		if (bundled_info_text(&the_bundled, info, sizeof(info)) > 0)
			resp.bundled_info = info;
	}
	r = agent_responder_create(a->loop, &resp, &a->responder, err, (unsigned int)errlen);
	if (r < 0)
		return r;
	r = agent_http_create(a->loop, &a->http);
	if (!r)
		r = agent_http_set_cainfo(a->http, a->cfg.cacert);
	if (!r)
		r = agent_runner_create(a->loop, a->spool, &rc, on_run_done, a, &a->runner);
	if (!r)
		r = agent_ctl_create(a->loop, a->http, &a->cfg, &ops, a, &a->ctl);
	if (!r)
		r = agent_upload_create(a->loop, a->http, a->spool, a->ctl, a->cfg.backoff_base_ms,
					a->cfg.backoff_max_ms, &a->up);
	if (r < 0)
		snprintf(err, errlen, "cannot start: %s", strerror(-r));
	return r;
}

int agent_create(const struct agent_config *cfg, int once, struct agent **out, char *err,
		 size_t errlen)
{
	struct agent *a = calloc(1, sizeof(*a));
	int r;

	if (!a)
		return -ENOMEM;
	a->cfg = *cfg;
	a->once = once;
	a->sigfd = -1;
	a->loop = agent_loop_create(AGENT_MAX_FDS);
	if (!a->loop) {
		free(a);
		snprintf(err, errlen, "cannot create the event loop");
		return -ENOMEM;
	}
	r = create_parts(a, err, errlen);
	if (!r) {
		r = setup_signals(a);
		if (r < 0)
			snprintf(err, errlen, "cannot watch signals: %s", strerror(-r));
	}
	if (r < 0) {
		agent_destroy(a);
		return r;
	}
	agent_ctl_set_once(a->ctl, once);
	agent_loop_set_before_sleep(a->loop, before_sleep, a);
	*out = a;
	return 0;
}

int agent_run(struct agent *a)
{
	int rc;

	fj_info("fjord-agent %s: site %s, node %s, controller %s, responder port %u",
		FJORD_AGENT_VERSION, a->cfg.site, a->cfg.node, a->cfg.controller_url,
		agent_responder_port(a->responder));
	agent_ctl_start(a->ctl);
	agent_upload_kick(a->up);
	rc = agent_loop_run(a->loop);
	if (rc < 0) {
		fj_err("event loop failed: %s", strerror(-rc));
		return 1;
	}
	if (a->once && !a->stopped_by_signal && agent_upload_rejected(a->up) > 0) {
		fj_err("%u item(s) refused by the controller remain in the spool",
		       agent_upload_rejected(a->up));
		return 1;
	}
	return 0;
}

void agent_destroy(struct agent *a)
{
	if (!a)
		return;
	agent_upload_destroy(a->up);
	agent_ctl_destroy(a->ctl);
	agent_runner_destroy(a->runner);
	agent_http_destroy(a->http);
	agent_responder_destroy(a->responder);
	bundled_sup_destroy(a->bundled);
	agent_spool_close(a->spool);
	if (a->sigfd >= 0) {
		agent_loop_fd_del(a->loop, a->sigfd);
		close(a->sigfd);
	}
	agent_loop_destroy(a->loop);
	free(a);
}
