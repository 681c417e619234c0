/* Enrollment, token storage, long-poll loop. */
#include "agent_ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent_arena.h"
#include "agent_backoff.h"
#include "agent_config.h"
#include "agent_http.h"
#include "agent_loop.h"
#include "agent_sysinfo.h"
#include "fj_clock.h"
#include "fj_log.h"

#define CTL_MAX_ANSWER	(4u << 20)
#define TOKEN_FILE	"agent.token"
#define CTL_MIN_HELD_MS 200
#define CTL_PACE_MS	1000

enum ctl_state { CTL_IDLE, CTL_ENROLLING, CTL_POLLING, CTL_WAITING };

struct agent_ctl {
	struct agent_loop *loop;
	struct agent_http *http;
	const struct agent_config *cfg;
	struct agent_ctl_ops ops;
	void *arg;
	enum ctl_state state;
	char base[AGENT_URL_MAX + 1];
	char token[AGENT_TOKEN_MAX + 1];
	char agent_id[AGENT_TOKEN_MAX + 1];
	unsigned int server_wait_s;
	struct agent_backoff backoff;
	uint64_t timer;
	uint64_t req;
	int once, once_done;
	unsigned int enrollments, polls;
	uint64_t poll_started_ms;
	unsigned int poll_wait_s;
};

static void ctl_step(struct agent_ctl *c);

int agent_ctl_create(struct agent_loop *loop, struct agent_http *http,
		     const struct agent_config *cfg, const struct agent_ctl_ops *ops, void *arg,
		     struct agent_ctl **out)
{
	struct agent_ctl *c = calloc(1, sizeof(*c));
	size_t n;

	if (!c)
		return -ENOMEM;
	c->loop = loop;
	c->http = http;
	c->cfg = cfg;
	c->ops = *ops;
	c->arg = arg;
	snprintf(c->base, sizeof(c->base), "%s", cfg->controller_url);
	n = strlen(c->base);
	while (n > 0 && c->base[n - 1] == '/')
		c->base[--n] = 0;
	agent_backoff_init(&c->backoff, cfg->backoff_base_ms, cfg->backoff_max_ms, 0);
	*out = c;
	return 0;
}

void agent_ctl_destroy(struct agent_ctl *c)
{
	if (!c)
		return;
	if (c->timer)
		agent_loop_timer_del(c->loop, c->timer);
	if (c->req)
		agent_http_cancel(c->http, c->req);
	free(c);
}

void agent_ctl_set_once(struct agent_ctl *c, int once)
{
	c->once = once;
}

int agent_ctl_once_done(const struct agent_ctl *c)
{
	return c->once_done;
}

const char *agent_ctl_token(const struct agent_ctl *c)
{
	return c->token[0] ? c->token : NULL;
}

const char *agent_ctl_agent_id(const struct agent_ctl *c)
{
	return c->agent_id;
}

const char *agent_ctl_base(const struct agent_ctl *c)
{
	return c->base;
}

unsigned int agent_ctl_enrollments(const struct agent_ctl *c)
{
	return c->enrollments;
}

unsigned int agent_ctl_polls(const struct agent_ctl *c)
{
	return c->polls;
}

void agent_ctl_error_text(const uint8_t *body, size_t len, const char *content_type, char *buf,
			  size_t buflen)
{
	Fjord__V1__Error *e = NULL;

	if (content_type && strstr(content_type, "protobuf"))
		e = fjord__v1__error__unpack(NULL, len, body);
	if (e && e->message && e->message[0]) {
		snprintf(buf, buflen, "%s%s%s", e->message,
			 e->field && e->field[0] ? " field " : "", e->field ? e->field : "");
	} else {
		size_t i, n = len < buflen - 1 ? len : buflen - 1;

		/* JSON or text: show it, printable bytes only. */
		for (i = 0; i < n; i++)
			buf[i] = body[i] >= 32 && body[i] < 127 ? (char)body[i] : ' ';
		buf[n] = 0;
	}
	if (e)
		fjord__v1__error__free_unpacked(e, NULL);
}

/* ---- token storage ---- */

static int token_path(const struct agent_ctl *c, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/%s", c->cfg->state_dir, TOKEN_FILE);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int load_token(struct agent_ctl *c)
{
	char p[AGENT_PATH_MAX + 32], buf[2 * AGENT_TOKEN_MAX + 8], *nl;
	ssize_t n;
	int fd;

	if (token_path(c, p, sizeof(p)))
		return -ENAMETOOLONG;
	fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EINVAL;
	buf[n] = 0;
	nl = strchr(buf, '\n');
	if (!nl || strlen(nl + 1) < 2 || strlen(buf) > 2 * AGENT_TOKEN_MAX)
		return -EINVAL;
	*nl = 0;
	nl[1 + strcspn(nl + 1, "\n")] = 0;
	if (strlen(buf) > AGENT_TOKEN_MAX || strlen(nl + 1) > AGENT_TOKEN_MAX)
		return -EINVAL;
	snprintf(c->agent_id, sizeof(c->agent_id), "%.256s", buf);
	snprintf(c->token, sizeof(c->token), "%.256s", nl + 1);
	return 0;
}

static int save_token(struct agent_ctl *c)
{
	char p[AGENT_PATH_MAX + 32], tmp[AGENT_PATH_MAX + 48], buf[2 * AGENT_TOKEN_MAX + 8];
	int fd, n, rc = 0;

	if (token_path(c, p, sizeof(p)))
		return -ENAMETOOLONG;
	mkdir(c->cfg->state_dir, 0700);
	snprintf(tmp, sizeof(tmp), "%s.tmp", p);
	n = snprintf(buf, sizeof(buf), "%s\n%s\n", c->agent_id, c->token);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (write(fd, buf, (size_t)n) != n || fsync(fd) < 0)
		rc = -EIO;
	close(fd);
	if (!rc && rename(tmp, p) < 0)
		rc = -errno;
	if (rc)
		unlink(tmp);
	return rc;
}

static void forget_token(struct agent_ctl *c)
{
	char p[AGENT_PATH_MAX + 32];

	c->token[0] = 0;
	c->agent_id[0] = 0;
	if (token_path(c, p, sizeof(p)) == 0)
		unlink(p);
}

/* ---- scheduling ---- */

static void on_timer(struct agent_loop *loop, uint64_t id, void *arg)
{
	struct agent_ctl *c = arg;

	(void)loop;
	(void)id;
	c->timer = 0;
	c->state = CTL_IDLE;
	ctl_step(c);
}

static void retry_later(struct agent_ctl *c, const char *what, const char *why)
{
	uint64_t d = agent_backoff_next(&c->backoff);

	fj_warn("%s failed: %s; retrying in %llu ms", what, why, (unsigned long long)d);
	c->state = CTL_WAITING;
	c->timer = agent_loop_timer_add(c->loop, d, on_timer, c);
}

static void describe(const struct agent_http_resp *resp, char *buf, size_t len)
{
	char msg[200];

	if (resp->status == 0) {
		snprintf(buf, len, "%s", resp->error ? resp->error : "no answer");
		return;
	}
	agent_ctl_error_text(resp->body, resp->len, resp->content_type, msg, sizeof(msg));
	snprintf(buf, len, "HTTP %ld%s%s", resp->status, msg[0] ? ": " : "", msg);
}

/* ---- enrollment ---- */

static void on_enrolled(const struct agent_http_resp *resp, void *arg)
{
	struct agent_ctl *c = arg;
	Fjord__V1__EnrollResponse *er;
	char why[300];

	c->req = 0;
	if (resp->status != 200 && resp->status != 201) {
		describe(resp, why, sizeof(why));
		if (resp->status == 401 || resp->status == 403)
			fj_err("enrollment refused (check enrollment_secret and site): %s", why);
		retry_later(c, "enrollment", why);
		return;
	}
	er = fjord__v1__enroll_response__unpack(NULL, resp->len, resp->body);
	if (!er || !er->token || !er->token[0] || strlen(er->token) > AGENT_TOKEN_MAX ||
	    strlen(er->agent_id) > AGENT_TOKEN_MAX) {
		if (er)
			fjord__v1__enroll_response__free_unpacked(er, NULL);
		retry_later(c, "enrollment", "the answer is not a valid EnrollResponse");
		return;
	}
	snprintf(c->token, sizeof(c->token), "%s", er->token);
	snprintf(c->agent_id, sizeof(c->agent_id), "%s", er->agent_id);
	c->server_wait_s = er->poll_timeout_s;
	fjord__v1__enroll_response__free_unpacked(er, NULL);
	if (save_token(c) < 0)
		fj_warn("cannot store the agent token in %s; a restart will enroll again",
			c->cfg->state_dir);
	c->enrollments++;
	fj_info("enrolled as agent %s", c->agent_id);
	agent_backoff_reset(&c->backoff);
	c->state = CTL_IDLE;
	if (c->ops.enrolled)
		c->ops.enrolled(c->arg);
	ctl_step(c);
}

static int send_enroll(struct agent_ctl *c)
{
	Fjord__V1__EnrollRequest er = FJORD__V1__ENROLL_REQUEST__INIT;
	Fjord__V1__Stack stacks[2];
	struct agent_http_req q = { 0 };
	struct agent_arena a;
	char url[AGENT_URL_MAX + 32], kernel[128];
	uint8_t *buf;
	size_t len;
	int rc;

	agent_arena_init(&a, 1u << 20);
	er.site = (char *)c->cfg->site;
	er.node = (char *)c->cfg->node;
	er.secret = (char *)c->cfg->secret;
	er.version = FJORD_AGENT_VERSION;
	agent_sysinfo_kernel(kernel, sizeof(kernel));
	er.kernel_version = kernel;
	er.stacks = stacks;
	if (agent_sysinfo_has_kernel_mptcp())
		stacks[er.n_stacks++] = FJORD__V1__STACK__STACK_KERNEL;
	stacks[er.n_stacks++] = FJORD__V1__STACK__STACK_TCP;
	rc = agent_sysinfo_interfaces(c->cfg, &a, &er.interfaces, &er.n_interfaces);
	if (rc < 0)
		fj_warn("cannot read interfaces: %s", strerror(-rc));
	len = fjord__v1__enroll_request__get_packed_size(&er);
	buf = malloc(len + 1);
	if (!buf) {
		agent_arena_free(&a);
		return -ENOMEM;
	}
	fjord__v1__enroll_request__pack(&er, buf);
	agent_arena_free(&a);
	snprintf(url, sizeof(url), "%s/api/v1/enroll", c->base);
	q.method = "POST";
	q.url = url;
	q.content_type = "application/x-protobuf";
	q.body = buf;
	q.len = len;
	q.timeout_ms = 30000;
	rc = agent_http_start(c->http, &q, on_enrolled, c, &c->req);
	free(buf);
	return rc;
}

/* ---- polling ---- */

static void on_polled(const struct agent_http_resp *resp, void *arg)
{
	struct agent_ctl *c = arg;
	Fjord__V1__PollResponse *pr;
	char why[300];
	int pr_empty;

	c->req = 0;
	if (resp->status == 401) {
		describe(resp, why, sizeof(why));
		fj_warn("controller rejected the agent token (%s); enrolling again", why);
		forget_token(c);
		c->state = CTL_IDLE;
		/* Back off a little too: a controller that rejects every token must not be hammered. */
		retry_later(c, "poll", "token rejected");
		return;
	}
	if (resp->status != 200) {
		describe(resp, why, sizeof(why));
		retry_later(c, "poll", why);
		return;
	}
	pr = fjord__v1__poll_response__unpack(NULL, resp->len, resp->body);
	if (!pr) {
		retry_later(c, "poll", "the answer is not a valid PollResponse");
		return;
	}
	c->polls++;
	agent_backoff_reset(&c->backoff);
	c->state = CTL_IDLE;
	if (pr->n_commands)
		fj_info("poll: %zu command(s)", pr->n_commands);
	pr_empty = pr->n_commands == 0;
	if (c->ops.commands)
		c->ops.commands(c->arg, pr);
	fjord__v1__poll_response__free_unpacked(pr, NULL);
	if (c->once) {
		c->once_done = 1;
		return;
	}
	/*
	 * An empty answer long before wait_s means the controller does not hold
	 * polls: pace them instead of spinning.
	 */
	if (pr_empty && c->poll_wait_s > 0 &&
	    agent_loop_now_ms(c->loop) - c->poll_started_ms < CTL_MIN_HELD_MS) {
		c->state = CTL_WAITING;
		c->timer = agent_loop_timer_add(c->loop, CTL_PACE_MS, on_timer, c);
		return;
	}
	ctl_step(c);
}

static int send_poll(struct agent_ctl *c)
{
	Fjord__V1__PollRequest pr = FJORD__V1__POLL_REQUEST__INIT;
	struct agent_http_req q = { 0 };
	struct agent_arena a;
	char url[AGENT_URL_MAX + 32];
	unsigned int wait = c->once ? 0 : c->cfg->poll_wait_s;
	uint8_t *buf;
	size_t len;
	int rc;

	if (c->server_wait_s && wait > c->server_wait_s)
		wait = c->server_wait_s;
	agent_arena_init(&a, 1u << 20);
	pr.version = FJORD_AGENT_VERSION;
	pr.wait_s = wait;
	if (c->ops.status)
		c->ops.status(c->arg, &pr, &a);
	len = fjord__v1__poll_request__get_packed_size(&pr);
	buf = malloc(len + 1);
	if (!buf) {
		agent_arena_free(&a);
		return -ENOMEM;
	}
	fjord__v1__poll_request__pack(&pr, buf);
	agent_arena_free(&a);
	snprintf(url, sizeof(url), "%s/api/v1/poll", c->base);
	q.method = "POST";
	q.url = url;
	q.bearer = c->token;
	q.content_type = "application/x-protobuf";
	q.body = buf;
	q.len = len;
	/* The controller holds the poll up to wait_s; allow for that plus the network. */
	q.timeout_ms = (long)(wait + 15) * 1000;
	q.max_body = CTL_MAX_ANSWER;
	c->poll_started_ms = agent_loop_now_ms(c->loop);
	c->poll_wait_s = wait;
	rc = agent_http_start(c->http, &q, on_polled, c, &c->req);
	free(buf);
	return rc;
}

static void ctl_step(struct agent_ctl *c)
{
	int rc;

	if (c->state != CTL_IDLE || (c->once && c->once_done))
		return;
	if (!c->token[0]) {
		c->state = CTL_ENROLLING;
		rc = send_enroll(c);
	} else {
		c->state = CTL_POLLING;
		rc = send_poll(c);
	}
	if (rc < 0) {
		c->state = CTL_IDLE;
		retry_later(c, c->token[0] ? "poll" : "enrollment", strerror(-rc));
	}
}

void agent_ctl_start(struct agent_ctl *c)
{
	if (load_token(c) == 0) {
		fj_info("using the stored token of agent %s", c->agent_id);
		if (c->ops.enrolled)
			c->ops.enrolled(c->arg);
	}
	ctl_step(c);
}

void agent_ctl_unauthorized(struct agent_ctl *c, const char *token)
{
	/* Only if it is still the token that failed: a fresh one may already be in use. */
	if (!token || strcmp(token, c->token) != 0)
		return;
	fj_warn("controller rejected the agent token; enrolling again");
	forget_token(c);
	if (c->state == CTL_POLLING && c->req) {
		agent_http_cancel(c->http, c->req);
		c->req = 0;
		c->state = CTL_IDLE;
	}
	ctl_step(c);
}
