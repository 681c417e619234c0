/* Handover link events: hook commands or kernel MPTCP endpoint changes. */
#include "exp_link.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bundled.h"
#include "fj_clock.h"

static int safe_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("._:-", c));
}

/* What may be pasted into a shell command: no quoting needed. */
static int safe_word(const char *s)
{
	if (!s || !*s || strlen(s) > 64)
		return 0;
	for (; *s; s++)
		if (!safe_char(*s))
			return 0;
	return 1;
}

/* The local address (no prefix length) of the first run path over isp. */
static const char *isp_addr(const Fjord__V1__RunCommand *cmd, const char *isp, char *buf,
			    size_t len)
{
	size_t i;

	for (i = 0; i < cmd->run->n_paths; i++) {
		const Fjord__V1__Path *p = cmd->run->paths[i];

		if (p->local_isp && !strcmp(p->local_isp, isp) && p->local_address &&
		    p->local_address[0]) {
			snprintf(buf, len, "%.*s", (int)strcspn(p->local_address, "/"),
				 p->local_address);
			return buf;
		}
	}
	return NULL;
}

static int has_local_isp(const Fjord__V1__RunCommand *cmd, const char *isp)
{
	size_t i;

	for (i = 0; i < cmd->run->n_paths; i++)
		if (cmd->run->paths[i]->local_isp && !strcmp(cmd->run->paths[i]->local_isp, isp))
			return 1;
	return 0;
}

static int expand(const char *tmpl, const char *site, const char *isp, const char *action,
		  const char *addr, char *out, size_t len)
{
	static const char *const keys[] = { "{site}", "{isp}", "{action}", "{addr}" };
	const char *vals[] = { site, isp, action, addr };
	size_t o = 0;

	while (*tmpl) {
		unsigned int k;
		int hit = 0;

		for (k = 0; k < 4; k++) {
			size_t kl = strlen(keys[k]);

			if (strncmp(tmpl, keys[k], kl) == 0) {
				size_t vl = strlen(vals[k]);

				if (o + vl >= len)
					return -ENOSPC;
				memcpy(out + o, vals[k], vl);
				o += vl;
				tmpl += kl;
				hit = 1;
				break;
			}
		}
		if (hit)
			continue;
		if (o + 1 >= len)
			return -ENOSPC;
		out[o++] = *tmpl++;
	}
	out[o] = 0;
	return 0;
}

/*
 * The kernel endpoint line of addr from "ip mptcp endpoint show", e.g.
 * "10.1.2.1 id 2 subflow dev eth1": its id and its flags and device.
 */
static int find_endpoint(const char *addr, unsigned int *id, char *rest, size_t restlen)
{
	char line[256];
	FILE *f = popen("ip mptcp endpoint show 2>/dev/null", "r");
	int rc = -ENOENT;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char a[64];
		int used = 0;

		line[strcspn(line, "\n")] = 0;
		if (sscanf(line, "%63s id %u %n", a, id, &used) >= 2 && strcmp(a, addr) == 0) {
			snprintf(rest, restlen, "%s", line + used);
			rc = 0;
			break;
		}
	}
	pclose(f);
	return rc;
}

static int endpoint_cmd(const char *addr, const char *action, char *out, size_t len, char *why,
			size_t whylen)
{
	char rest[200];
	unsigned int id;
	size_t i;

	if (find_endpoint(addr, &id, rest, sizeof(rest)) < 0) {
		snprintf(why, whylen, "no MPTCP endpoint for %s (ip mptcp endpoint show)", addr);
		return -ENOENT;
	}
	/* Flags and device as `ip` printed them; anything else would need quoting. */
	for (i = 0; rest[i]; i++)
		if (!safe_char(rest[i]))
			rest[i] = ' ';
	if (!strcmp(action, "down"))
		snprintf(out, len, "ip mptcp endpoint delete id %u", id);
	else if (!strcmp(action, "up"))
		/* Remove first so "up" works whether or not the endpoint is there. */
		snprintf(out, len,
			 "ip mptcp endpoint delete id %u 2>/dev/null; "
			 "ip mptcp endpoint add %s id %u %s",
			 id, addr, id, rest);
	else
		snprintf(out, len, "ip mptcp endpoint change id %u backup", id);
	return 0;
}

static int cmp_ev(const void *a, const void *b)
{
	const struct exp_link_event *x = a, *y = b;

	return x->at_ms < y->at_ms ? -1 : x->at_ms > y->at_ms;
}

int exp_link_prepare(const Fjord__V1__RunCommand *cmd, const Fjord__V1__HandoverParams *h,
		     struct exp_link_sched *ls, struct exp_out *out)
{
	const char *tmpl = exp_link_hook();
	const char *site = cmd->run->client_site && cmd->run->client_site[0] ? cmd->run->client_site
									     : "-";
	int bundled = cmd->run->stack == FJORD__V1__STACK__STACK_BUNDLED;
	size_t i;

	memset(ls, 0, sizeof(*ls));
	ls->first_down_ms = -1;
	if (h->n_events > EXP_LINK_MAX_EVENTS) {
		exp_fail(out, "handover.events: at most %u events (got %zu)", EXP_LINK_MAX_EVENTS,
			 h->n_events);
		return -EINVAL;
	}
	if (tmpl && tmpl[0] && !safe_word(site)) {
		exp_fail(out, "run.client_site \"%.64s\" cannot go into the link hook", site);
		return -EINVAL;
	}
	for (i = 0; i < h->n_events; i++) {
		const Fjord__V1__LinkEvent *e = h->events[i];
		struct exp_link_event *le = &ls->ev[i];
		char addr[64] = "", why[160];
		const char *a;

		if (!e->action || (strcmp(e->action, "down") && strcmp(e->action, "up") &&
				   strcmp(e->action, "backup"))) {
			exp_fail(out,
				 "handover.events[%zu].action must be down, up or backup "
				 "(got \"%.32s\")",
				 i, e->action ? e->action : "");
			return -EINVAL;
		}
		if (!safe_word(e->isp)) {
			exp_fail(out,
				 "handover.events[%zu].isp \"%.64s\" is not an ISP label "
				 "([A-Za-z0-9._:-], 1..64)",
				 i, e->isp ? e->isp : "");
			return -EINVAL;
		}
		a = isp_addr(cmd, e->isp, addr, sizeof(addr));
		if (a && !safe_word(a)) {
			exp_fail(out, "handover.events[%zu]: the path address of %s is not plain",
				 i, e->isp);
			return -EINVAL;
		}
		le->at_ms = e->at_ms;
		snprintf(le->action, sizeof(le->action), "%s", e->action);
		snprintf(le->isp, sizeof(le->isp), "%s", e->isp);
		/*
		 * The bundled stack's events without a hook are the run's own
		 * (apply): backup sends MP_PRIO; down withdraws the ISP's bundled
		 * address from the connection (REMOVE_ADDR) and up joins from it
		 * again. The kernel's endpoints are no use to it.
		 */
		if (bundled && (!strcmp(e->action, "backup") || !tmpl || !tmpl[0])) {
			if (!has_local_isp(cmd, e->isp)) {
				exp_fail(
					out,
					"handover.events[%zu].isp %s: no run path has that local ISP",
					i, e->isp);
				return -EINVAL;
			}
			if (!bundled_own_isp(bundled_get(), e->isp)) {
				exp_fail(out,
					 "handover.events[%zu].isp %s: this node has no bundled "
					 "address on that ISP (agent bundled isps) to withdraw or "
					 "mark backup",
					 i, e->isp);
				return -EINVAL;
			}
			continue;
		}
		/* Backup is the MPTCP priority of the subflows, always the kernel endpoint's flag. */
		if (tmpl && tmpl[0] && strcmp(e->action, "backup") != 0) {
			if (expand(tmpl, site, e->isp, e->action, a ? a : "", le->cmd,
				   sizeof(le->cmd)) < 0) {
				exp_fail(out, "link hook command longer than %u bytes",
					 EXP_LINK_CMD_MAX);
				return -EINVAL;
			}
			continue;
		}
		if (!a) {
			exp_fail(out,
				 "handover.events[%zu].isp %s: no run path has that local ISP "
				 "(needed without a link hook, and for backup)",
				 i, e->isp);
			return -EINVAL;
		}
		if (endpoint_cmd(a, e->action, le->cmd, sizeof(le->cmd), why, sizeof(why)) < 0) {
			exp_fail(out,
				 "handover.events[%zu]: %s (needed without a link hook, and for "
				 "backup)",
				 i, why);
			return -EINVAL;
		}
	}
	ls->n = (unsigned int)h->n_events;
	qsort(ls->ev, ls->n, sizeof(ls->ev[0]), cmp_ev);
	return 0;
}

static pid_t spawn(const char *cmdline)
{
	pid_t pid = fork();

	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);

		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
		}
		execl("/bin/sh", "sh", "-c", cmdline, (char *)NULL);
		_exit(127);
	}
	return pid;
}

uint32_t exp_link_run_due(struct exp_link_sched *ls, struct exp_out *out)
{
	uint64_t now = fj_mono_ms();

	while (ls->next < ls->n && now >= ls->t0 + ls->ev[ls->next].at_ms) {
		struct exp_link_event *e = &ls->ev[ls->next++];
		char d[EXP_LINK_CMD_MAX + 64], what[320];
		int ok;

		if (e->cmd[0]) {
			e->pid = spawn(e->cmd);
			ok = e->pid > 0;
		} else if (ls->apply) {
			ok = ls->apply(ls->apply_arg, e, what, sizeof(what)) == 0;
		} else {
			ok = 0;
			snprintf(what, sizeof(what), "nothing in this run applies it");
		}
		e->fired = 1;
		if (!strcmp(e->action, "down") && ls->first_down_ms < 0)
			ls->first_down_ms = (int64_t)now;
		snprintf(d, sizeof(d), "%s %s at +%u ms: %s", e->isp, e->action, e->at_ms,
			 e->cmd[0] ? e->cmd : what);
		exp_add_event(out, ok ? "link_event" : "link_event_failed", d, 0);
	}
	if (ls->next >= ls->n)
		return UINT32_MAX;
	return (uint32_t)(ls->t0 + ls->ev[ls->next].at_ms - now);
}

void exp_link_finish(struct exp_link_sched *ls, struct exp_out *out)
{
	unsigned int i;

	ls->during = ls->next;
	for (i = ls->next; i < ls->n; i++) {
		struct exp_link_event *e = &ls->ev[i];
		char d[EXP_LINK_CMD_MAX + 96];

		if (strcmp(e->action, "up") == 0 && e->cmd[0]) {
			/* A link left down would spoil the runs after this one. */
			e->pid = spawn(e->cmd);
			e->fired = 1;
			snprintf(d, sizeof(d),
				 "%s up at +%u ms, after the transfer, to restore it: %s", e->isp,
				 e->at_ms, e->cmd);
			exp_add_event(out, e->pid > 0 ? "link_event" : "link_event_failed", d, 0);
		} else {
			/* A run's own event (apply) acted on its connection only: nothing to restore. */
			snprintf(d, sizeof(d), "%s %s at +%u ms: the transfer ended first", e->isp,
				 e->action, e->at_ms);
			exp_add_event(out, "link_event_skipped", d, 0);
		}
	}
	ls->next = ls->n;
	exp_link_reap(ls, out, 2000);
}

void exp_link_reap(struct exp_link_sched *ls, struct exp_out *out, unsigned int wait_ms)
{
	uint64_t end = fj_mono_ms() + wait_ms;
	unsigned int i, left;

	do {
		left = 0;
		for (i = 0; i < ls->n; i++) {
			struct exp_link_event *e = &ls->ev[i];
			int status;
			pid_t p;

			if (e->pid <= 0)
				continue;
			p = waitpid(e->pid, &status, WNOHANG);
			if (p == 0) {
				left++;
				continue;
			}
			if (p == e->pid && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
				char d[EXP_LINK_CMD_MAX + 64];

				snprintf(d, sizeof(d), "%s %s: command exited with status %d: %s",
					 e->isp, e->action,
					 WIFEXITED(status) ? WEXITSTATUS(status) : 128, e->cmd);
				exp_add_event(out, "link_event_failed", d, 0);
			}
			e->pid = 0;
		}
		if (left && fj_mono_ms() < end)
			usleep(10000);
	} while (left && fj_mono_ms() < end);
	for (i = 0; wait_ms && i < ls->n; i++) {
		if (ls->ev[i].pid > 0) {
			kill(ls->ev[i].pid, SIGKILL);
			waitpid(ls->ev[i].pid, NULL, 0);
			ls->ev[i].pid = 0;
		}
	}
}
