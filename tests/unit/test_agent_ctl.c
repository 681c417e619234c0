/*
 * The agent's controller client and uploader against the fake controller of
 * tests/agent/fake_ctl.c on loopback: enrollment and the stored token, 401
 * and re-enrollment, retry while the controller is away, a run delivered by
 * poll and its result and trace uploaded, a trace upload that breaks part-way
 * and resumes from what the controller holds, a refused result kept in the
 * spool, a cancel delivered by poll; several pending results in one
 * results:batch request, with every fallback (no route, an item's 500 or 409,
 * 503, 413, an answer one ack short, a batch refused whole).
 */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../agent/fake_ctl.h"
#include "agent_arena.h"
#include "agent_config.h"
#include "agent_ctl.h"
#include "agent_http.h"
#include "agent_loop.h"
#include "agent_runner.h"
#include "agent_spool.h"
#include "agent_upload.h"
#include "fj_clock.h"
#include "fj_test.h"

#define TRACE_LEN 5500

struct harness {
	struct agent_config cfg;
	struct agent_loop *loop;
	struct agent_http *http;
	struct agent_spool *spool;
	struct agent_runner *runner;
	struct agent_ctl *ctl;
	struct agent_upload *up;
	char dir[96];
};

static char tmpdir[32];
static unsigned int dir_seq;

static int ctl_setup(void)
{
	/* Loopback only: never through a proxy from the environment. */
	setenv("no_proxy", "127.0.0.1,localhost", 1);
	setenv("NO_PROXY", "127.0.0.1,localhost", 1);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/fjord-ctl-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int ctl_teardown(void)
{
	return fj_test_rmtree(tmpdir);
}

static void trace_bytes(uint8_t *buf)
{
	unsigned int i;

	for (i = 0; i < TRACE_LEN; i++)
		buf[i] = (uint8_t)(i * 13 + 5);
}

static int child_with_trace(const Fjord__V1__RunCommand *cmd, const struct exp_env *env,
			    struct exp_out *out)
{
	struct exp_trace *t = exp_trace_new(out, "big.bin");
	static uint8_t data[TRACE_LEN];

	(void)cmd;
	(void)env;
	trace_bytes(data);
	t->data = malloc(TRACE_LEN);
	memcpy(t->data, data, TRACE_LEN);
	t->len = t->cap = TRACE_LEN;
	out->result->ok = 1;
	exp_add_metric(out, "answer", 42);
	return 0;
}

static int child_hang(const Fjord__V1__RunCommand *cmd, const struct exp_env *env,
		      struct exp_out *out)
{
	(void)cmd;
	(void)env;
	(void)out;
	for (;;)
		pause();
	return 0;
}

static int h_status(void *arg, Fjord__V1__PollRequest *req, struct agent_arena *a)
{
	struct harness *h = arg;
	unsigned int i, n = agent_runner_count(h->runner);

	req->running_run_ids = agent_arena_alloc(a, (n + 1) * sizeof(char *));
	for (i = 0; i < n; i++)
		req->running_run_ids[i] = agent_arena_strdup(a, agent_runner_id(h->runner, i));
	req->n_running_run_ids = n;
	return 0;
}

static void h_commands(void *arg, const Fjord__V1__PollResponse *resp)
{
	struct harness *h = arg;
	size_t i;

	for (i = 0; i < resp->n_commands; i++) {
		if (resp->commands[i]->kind_case == FJORD__V1__COMMAND__KIND_RUN)
			agent_runner_start(h->runner, resp->commands[i]->run);
		else
			agent_runner_cancel(h->runner, resp->commands[i]->cancel->run_id,
					    resp->commands[i]->cancel->reason);
	}
}

static void h_enrolled(void *arg)
{
	agent_upload_kick(((struct harness *)arg)->up);
}

static void h_done(void *arg, const char *run_id, int ok)
{
	(void)run_id;
	(void)ok;
	agent_upload_kick(((struct harness *)arg)->up);
}

/* state: reuse another harness's folder (for the stored token), or NULL. */
static void h_start(struct harness *h, unsigned int port, const char *state,
		    agent_runner_child_fn fn)
{
	struct agent_runner_cfg rc = { 2, 20, 1, "test" };
	struct agent_ctl_ops ops = { h_status, h_commands, h_enrolled };
	char d[128];

	memset(h, 0, sizeof(*h));
	snprintf(h->dir, sizeof(h->dir), "%s/h%u", tmpdir, ++dir_seq);
	mkdir(h->dir, 0700);
	agent_config_defaults(&h->cfg);
	snprintf(h->cfg.controller_url, sizeof(h->cfg.controller_url), "http://127.0.0.1:%u/",
		 port);
	snprintf(h->cfg.site, sizeof(h->cfg.site), "oslo");
	snprintf(h->cfg.node, sizeof(h->cfg.node), "n1");
	snprintf(h->cfg.secret, sizeof(h->cfg.secret), "sesame");
	snprintf(h->cfg.state_dir, sizeof(h->cfg.state_dir), "%s", state ? state : h->dir);
	snprintf(d, sizeof(d), "%s/spool", h->dir);
	snprintf(h->cfg.spool_dir, sizeof(h->cfg.spool_dir), "%s", d);
	h->cfg.poll_wait_s = 1;
	h->cfg.backoff_base_ms = 50;
	h->cfg.backoff_max_ms = 200;
	h->loop = agent_loop_create(1024);
	CU_ASSERT_EQUAL(agent_http_create(h->loop, &h->http), 0);
	CU_ASSERT_EQUAL(agent_spool_open(d, 1 << 20, &h->spool, NULL), 0);
	CU_ASSERT_EQUAL(agent_runner_create(h->loop, h->spool, &rc, h_done, h, &h->runner), 0);
	agent_runner_set_child_fn(h->runner, fn);
	CU_ASSERT_EQUAL(agent_ctl_create(h->loop, h->http, &h->cfg, &ops, h, &h->ctl), 0);
	CU_ASSERT_EQUAL(agent_upload_create(h->loop, h->http, h->spool, h->ctl, 50, 200, &h->up),
			0);
	agent_upload_set_chunk(h->up, 1000);
	agent_ctl_start(h->ctl);
}

static void h_stop(struct harness *h)
{
	agent_upload_destroy(h->up);
	agent_ctl_destroy(h->ctl);
	agent_runner_destroy(h->runner);
	agent_http_destroy(h->http);
	agent_spool_close(h->spool);
	agent_loop_destroy(h->loop);
}

/* Runs the loop until cond(arg) holds or max_ms pass; returns cond's last value. */
static int pump_until(struct harness *h, int (*cond)(void *), void *arg, unsigned int max_ms)
{
	uint64_t end = fj_mono_ms() + max_ms;

	while (!cond(arg) && fj_mono_ms() < end)
		agent_loop_run_once(h->loop, 20);
	return cond(arg);
}

static struct fake_ctl *cur_fake;
static const char *want_run;

static int have_result(void *arg)
{
	struct fake_result r;

	(void)arg;
	return fake_ctl_result(cur_fake, want_run, &r) == 0;
}

static int spool_empty(void *arg)
{
	struct harness *h = arg;

	return agent_upload_idle(h->up) && agent_spool_usage(h->spool) == 0;
}

static int enrolled_twice(void *arg)
{
	(void)arg;
	return fake_ctl_count(cur_fake, "enroll") >= 2;
}

static int polled(void *arg)
{
	return agent_ctl_polls(((struct harness *)arg)->ctl) >= 2;
}

static void test_enroll_run_upload(void)
{
	struct harness h;
	struct fake_result fr;
	static uint8_t got[TRACE_LEN + 10], want[TRACE_LEN];
	char p[256];
	struct stat st;

	CU_ASSERT_EQUAL_FATAL(fake_ctl_start(0, "sesame", NULL, &cur_fake), 0);
	fake_ctl_queue_echo(cur_fake, "r-1", 5, 100, 0);
	h_start(&h, fake_ctl_port(cur_fake), NULL, child_with_trace);
	want_run = "r-1";
	CU_ASSERT(pump_until(&h, have_result, NULL, 10000));
	CU_ASSERT(pump_until(&h, spool_empty, &h, 5000));
	CU_ASSERT_EQUAL(fake_ctl_count(cur_fake, "enroll"), 1);
	CU_ASSERT_EQUAL(agent_ctl_enrollments(h.ctl), 1);
	CU_ASSERT_STRING_EQUAL(agent_ctl_agent_id(h.ctl), "agent-1");
	CU_ASSERT_EQUAL_FATAL(fake_ctl_result(cur_fake, "r-1", &fr), 0);
	CU_ASSERT(fr.ok);
	CU_ASSERT_EQUAL(fr.n_metrics, 1);
	CU_ASSERT_EQUAL(fr.posts, 1);
	trace_bytes(want);
	CU_ASSERT_EQUAL(fake_ctl_trace(cur_fake, "r-1", "big.bin", got, sizeof(got)), TRACE_LEN);
	CU_ASSERT_EQUAL(memcmp(got, want, TRACE_LEN), 0);
	/* Six 1000-byte chunks at most: nothing sent twice. */
	CU_ASSERT_EQUAL(fake_ctl_count(cur_fake, "put_bytes"), TRACE_LEN);
	CU_ASSERT_EQUAL(fake_ctl_count(cur_fake, "put"), 6);
	snprintf(p, sizeof(p), "%s/agent.token", h.dir);
	CU_ASSERT_EQUAL(stat(p, &st), 0);
	CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);
	h_stop(&h);
	fake_ctl_stop(cur_fake);
}

static void test_token_reuse_and_401(void)
{
	struct harness a, b;

	CU_ASSERT_EQUAL_FATAL(fake_ctl_start(0, "sesame", NULL, &cur_fake), 0);
	fake_ctl_set_hold_ms(cur_fake, 300);
	h_start(&a, fake_ctl_port(cur_fake), NULL, child_hang);
	CU_ASSERT(pump_until(&a, polled, &a, 5000));
	h_stop(&a);
	CU_ASSERT_EQUAL(fake_ctl_count(cur_fake, "enroll"), 1);
	/* A restart with the same state folder polls with the stored token. */
	h_start(&b, fake_ctl_port(cur_fake), a.dir, child_hang);
	CU_ASSERT(pump_until(&b, polled, &b, 5000));
	CU_ASSERT_EQUAL(fake_ctl_count(cur_fake, "enroll"), 1);
	CU_ASSERT_EQUAL(agent_ctl_enrollments(b.ctl), 0);
	CU_ASSERT_STRING_EQUAL(agent_ctl_agent_id(b.ctl), "agent-1");
	/* The controller forgets the token: 401, enroll again. */
	fake_ctl_revoke_tokens(cur_fake);
	CU_ASSERT(pump_until(&b, enrolled_twice, NULL, 5000));
	CU_ASSERT_EQUAL(agent_ctl_enrollments(b.ctl), 1);
	CU_ASSERT_STRING_EQUAL(agent_ctl_agent_id(b.ctl), "agent-2");
	h_stop(&b);
	fake_ctl_stop(cur_fake);
}

static void test_controller_away(void)
{
	struct harness h;
	unsigned int port;
	uint64_t end;

	/* A port nothing listens on: take one and give it back. */
	CU_ASSERT_EQUAL_FATAL(fake_ctl_start(0, "sesame", NULL, &cur_fake), 0);
	port = fake_ctl_port(cur_fake);
	fake_ctl_stop(cur_fake);
	h_start(&h, port, NULL, child_hang);
	end = fj_mono_ms() + 600;
	while (fj_mono_ms() < end)
		agent_loop_run_once(h.loop, 20);
	CU_ASSERT_PTR_NULL(agent_ctl_token(h.ctl));
	/* It comes back (503s first): the agent keeps retrying and gets through. */
	CU_ASSERT_EQUAL_FATAL(fake_ctl_start(port, "sesame", NULL, &cur_fake), 0);
	fake_ctl_set_hold_ms(cur_fake, 300);
	fake_ctl_fail_next(cur_fake, 3);
	CU_ASSERT(pump_until(&h, polled, &h, 8000));
	CU_ASSERT_PTR_NOT_NULL(agent_ctl_token(h.ctl));
	CU_ASSERT_EQUAL(fake_ctl_count(cur_fake, "enroll"), 1);
	h_stop(&h);
	fake_ctl_stop(cur_fake);
}

static void test_trace_resume(void)
{
	struct harness h;
	static uint8_t got[TRACE_LEN + 10], want[TRACE_LEN];

	CU_ASSERT_EQUAL_FATAL(fake_ctl_start(0, "sesame", NULL, &cur_fake), 0);
	/* Two chunks go through, the third meets a 503. */
	fake_ctl_fail_put_after(cur_fake, 2);
	fake_ctl_queue_echo(cur_fake, "r-res", 5, 100, 0);
	h_start(&h, fake_ctl_port(cur_fake), NULL, child_with_trace);
	want_run = "r-res";
	CU_ASSERT(pump_until(&h, have_result, NULL, 10000));
	trace_bytes(want);
	CU_ASSERT_EQUAL(fake_ctl_trace(cur_fake, "r-res", "big.bin", got, sizeof(got)), TRACE_LEN);
	CU_ASSERT_EQUAL(memcmp(got, want, TRACE_LEN), 0);
	/* Resumed at byte 2000 after asking: no byte was sent twice. */
	CU_ASSERT_EQUAL(fake_ctl_count(cur_fake, "put_bytes"), TRACE_LEN);
	CU_ASSERT(fake_ctl_count(cur_fake, "head") >= 2);
	CU_ASSERT(pump_until(&h, spool_empty, &h, 5000));
	h_stop(&h);
	fake_ctl_stop(cur_fake);
}

static int rejected_one(void *arg)
{
	return agent_upload_rejected(((struct harness *)arg)->up) == 1;
}

static void test_result_refused_kept(void)
{
	struct harness h;
	struct agent_spool_item *it = NULL;
	size_t n = 0;

	CU_ASSERT_EQUAL_FATAL(fake_ctl_start(0, "sesame", NULL, &cur_fake), 0);
	fake_ctl_refuse_results(cur_fake, 1);
	fake_ctl_queue_echo(cur_fake, "r-ref", 5, 100, 0);
	h_start(&h, fake_ctl_port(cur_fake), NULL, child_with_trace);
	CU_ASSERT(pump_until(&h, rejected_one, &h, 10000));
	CU_ASSERT_EQUAL(fake_ctl_results(cur_fake), 0);
	/* The result stays on disk; the agent does not loop on it. */
	CU_ASSERT_EQUAL(agent_spool_list(h.spool, &it, &n, 10), 0);
	CU_ASSERT_EQUAL(n, 1);
	if (n == 1)
		CU_ASSERT_STRING_EQUAL(it[0].name, "");
	free(it);
	CU_ASSERT(agent_upload_idle(h.up));
	h_stop(&h);
	fake_ctl_stop(cur_fake);
}

static int one_result(void *arg)
{
	(void)arg;
	return fake_ctl_results(cur_fake) == 1;
}

/* A controller that claims every byte of a trace yet never stores it must not
 * make the agent spin: a few rounds through the backoff, then the trace stays
 * in the spool, skipped. */
static void test_trace_stuck_bounded(void)
{
	struct harness h;
	struct agent_spool_item *it = NULL;
	size_t n = 0, i, traces = 0;

	CU_ASSERT_EQUAL_FATAL(fake_ctl_start(0, "sesame", NULL, &cur_fake), 0);
	fake_ctl_stick_traces(cur_fake, 1);
	fake_ctl_queue_echo(cur_fake, "r-stuck", 5, 100, 0);
	h_start(&h, fake_ctl_port(cur_fake), NULL, child_with_trace);
	CU_ASSERT(pump_until(&h, rejected_one, &h, 15000));
	/* The result still goes through; the trace does not, and is kept. */
	CU_ASSERT(pump_until(&h, one_result, NULL, 5000));
	CU_ASSERT(fake_ctl_count(cur_fake, "head") + fake_ctl_count(cur_fake, "put") <= 40);
	CU_ASSERT_EQUAL(agent_spool_list(h.spool, &it, &n, 10), 0);
	for (i = 0; i < n; i++)
		if (strcmp(it[i].name, "big.bin") == 0)
			traces++;
	CU_ASSERT_EQUAL(traces, 1);
	free(it);
	h_stop(&h);
	fake_ctl_stop(cur_fake);
}

/*
 * The controller stopped between taking a trace's last byte and storing it:
 * afterwards it holds every byte (308 with the whole range) but has no
 * trace. The agent sends the last byte again, which makes it store what it
 * holds: the trace is stored once, whole, and leaves the spool.
 */
static void test_trace_held_not_stored(void)
{
	struct harness h;
	static uint8_t got[TRACE_LEN + 10], want[TRACE_LEN];

	CU_ASSERT_EQUAL_FATAL(fake_ctl_start(0, "sesame", NULL, &cur_fake), 0);
	fake_ctl_lose_store(cur_fake);
	fake_ctl_queue_echo(cur_fake, "r-held", 5, 100, 0);
	h_start(&h, fake_ctl_port(cur_fake), NULL, child_with_trace);
	want_run = "r-held";
	CU_ASSERT(pump_until(&h, have_result, NULL, 10000));
	CU_ASSERT(pump_until(&h, spool_empty, &h, 10000));
	trace_bytes(want);
	CU_ASSERT_EQUAL(fake_ctl_trace(cur_fake, "r-held", "big.bin", got, sizeof(got)), TRACE_LEN);
	CU_ASSERT_EQUAL(memcmp(got, want, TRACE_LEN), 0);
	/* Every byte appended once; the last byte sent again is not appended. */
	CU_ASSERT_EQUAL(fake_ctl_count(cur_fake, "put_bytes"), TRACE_LEN);
	CU_ASSERT_EQUAL(agent_upload_rejected(h.up), 0);
	h_stop(&h);
	fake_ctl_stop(cur_fake);
}

static int polled_again(void *arg)
{
	return agent_ctl_polls(((struct harness *)arg)->ctl) >= 4;
}

static void test_cancel_by_poll(void)
{
	struct harness h;
	struct fake_result fr;
	char running[65], version[32];
	unsigned int n_running = 0, wait_s = 0;

	CU_ASSERT_EQUAL_FATAL(fake_ctl_start(0, "sesame", NULL, &cur_fake), 0);
	fake_ctl_set_hold_ms(cur_fake, 300);
	fake_ctl_queue_echo(cur_fake, "r-can", 5, 100, 0);
	h_start(&h, fake_ctl_port(cur_fake), NULL, child_hang);
	CU_ASSERT(pump_until(&h, polled, &h, 5000));
	CU_ASSERT_EQUAL(agent_runner_count(h.runner), 1);
	/* The status of the polls says the run is in progress. */
	CU_ASSERT(pump_until(&h, polled_again, &h, 5000));
	fake_ctl_last_poll(cur_fake, running, sizeof(running), &n_running, version, sizeof(version),
			   &wait_s);
	CU_ASSERT_EQUAL(n_running, 1);
	CU_ASSERT_STRING_EQUAL(running, "r-can");
	CU_ASSERT_STRING_EQUAL(version, "0.1.0");
	CU_ASSERT_EQUAL(wait_s, 1);
	fake_ctl_queue_cancel(cur_fake, "r-can", "experiment cancelled by the test");
	want_run = "r-can";
	CU_ASSERT(pump_until(&h, have_result, NULL, 5000));
	CU_ASSERT_EQUAL(fake_ctl_result(cur_fake, "r-can", &fr), 0);
	CU_ASSERT(!fr.ok);
	CU_ASSERT_STRING_EQUAL(fr.error, "cancelled: experiment cancelled by the test");
	h_stop(&h);
	fake_ctl_stop(cur_fake);
}

/* ---- several results in one request (POST /api/v1/results:batch) ---- */

/* Spools n finished runs b-0 .. b-(n-1), each with a result and no trace. */
static void spool_results(struct harness *h, unsigned int first, unsigned int n)
{
	Fjord__V1__Metric m = FJORD__V1__METRIC__INIT, *mp = &m;
	char id[32];

	for (unsigned int i = first; i < first + n; i++) {
		Fjord__V1__Result r = FJORD__V1__RESULT__INIT;

		snprintf(id, sizeof(id), "b-%u", i);
		m.name = "goodput_bps";
		m.value = 1000.0 * i;
		r.run_id = id;
		r.ok = 1;
		r.metrics = &mp;
		r.n_metrics = 1;
		CU_ASSERT_EQUAL(agent_spool_run_begin(h->spool, id), 0);
		CU_ASSERT_EQUAL(agent_spool_put_result(h->spool, id, &r), 0);
	}
}

/* Every run b-first .. b-(first+n-1) is stored once at the fake controller. */
static void assert_stored(unsigned int first, unsigned int n)
{
	struct fake_result fr;
	char id[32];

	for (unsigned int i = first; i < first + n; i++) {
		snprintf(id, sizeof(id), "b-%u", i);
		CU_ASSERT_EQUAL(fake_ctl_result(cur_fake, id, &fr), 0);
		CU_ASSERT(fr.ok);
		CU_ASSERT_EQUAL(fr.n_metrics, 1);
	}
}

static void batch_start(struct harness *h, unsigned int n)
{
	CU_ASSERT_EQUAL_FATAL(fake_ctl_start(0, "sesame", NULL, &cur_fake), 0);
	h_start(h, fake_ctl_port(cur_fake), NULL, child_with_trace);
	/* In the spool before the enrollment kicks the uploader. */
	spool_results(h, 0, n);
}

static void test_batch_upload(void)
{
	struct harness h;

	batch_start(&h, 7);
	CU_ASSERT(pump_until(&h, spool_empty, &h, 5000));
	assert_stored(0, 7);
	CU_ASSERT_EQUAL(fake_ctl_results(cur_fake), 7);
	CU_ASSERT_EQUAL(fake_ctl_count(cur_fake, "batch"), 1);
	CU_ASSERT_EQUAL(fake_ctl_count(cur_fake, "batch_items"), 7);
	CU_ASSERT_EQUAL(fake_ctl_count(cur_fake, "result"), 0);
	CU_ASSERT_EQUAL(agent_upload_batches(h.up), 1);
	CU_ASSERT_EQUAL(agent_upload_acked(h.up), 7);
	/* One pending result goes alone, by the single route. */
	spool_results(&h, 7, 1);
	agent_upload_kick(h.up);
	CU_ASSERT(pump_until(&h, spool_empty, &h, 5000));
	assert_stored(7, 1);
	CU_ASSERT_EQUAL(fake_ctl_count(cur_fake, "batch"), 1);
	CU_ASSERT_EQUAL(fake_ctl_count(cur_fake, "result"), 1);
	h_stop(&h);
	fake_ctl_stop(cur_fake);
}

/* A controller without the route: every result by the single route, and no batch again. */
static void test_batch_no_route(void)
{
	struct harness h;

	batch_start(&h, 5);
	fake_ctl_batch_mode(cur_fake, 1, 0, 0, 0);
	CU_ASSERT(pump_until(&h, spool_empty, &h, 5000));
	assert_stored(0, 5);
	CU_ASSERT_EQUAL(fake_ctl_count(cur_fake, "batch"), 1);
	CU_ASSERT_EQUAL(fake_ctl_count(cur_fake, "result"), 5);
	spool_results(&h, 5, 3);
	agent_upload_kick(h.up);
	CU_ASSERT(pump_until(&h, spool_empty, &h, 5000));
	assert_stored(5, 3);
	CU_ASSERT_EQUAL(fake_ctl_count(cur_fake, "batch"), 1);
	CU_ASSERT_EQUAL(fake_ctl_count(cur_fake, "result"), 8);
	CU_ASSERT_EQUAL(agent_upload_batches(h.up), 0);
	h_stop(&h);
	fake_ctl_stop(cur_fake);
}

static int stored_four_rejected_one(void *arg)
{
	struct harness *h = arg;

	return fake_ctl_results(cur_fake) == 4 && agent_upload_rejected(h->up) == 1 &&
	       agent_upload_idle(h->up);
}

/*
 * Item by item: a 500 is sent again (after the backoff) and stored; a 409 is
 * refused for good and stays in the spool, skipped; the others are stored at once.
 */
static void test_batch_item_errors(void)
{
	struct harness h;
	struct fake_result fr;
	struct agent_spool_item *it = NULL;
	size_t n = 0;

	batch_start(&h, 5);
	fake_ctl_batch_fail_item(cur_fake, "b-2", 500, 1);
	CU_ASSERT(pump_until(&h, spool_empty, &h, 5000));
	assert_stored(0, 5);
	/* The other four in the batch, b-2 again alone after the backoff. */
	CU_ASSERT_EQUAL(fake_ctl_count(cur_fake, "batch"), 1);
	CU_ASSERT_EQUAL(fake_ctl_count(cur_fake, "result"), 1);
	CU_ASSERT_EQUAL(agent_upload_rejected(h.up), 0);
	h_stop(&h);
	fake_ctl_stop(cur_fake);

	batch_start(&h, 5);
	fake_ctl_batch_fail_item(cur_fake, "b-4", 409, 100);
	CU_ASSERT(pump_until(&h, stored_four_rejected_one, &h, 5000));
	assert_stored(0, 4);
	CU_ASSERT_EQUAL(fake_ctl_result(cur_fake, "b-4", &fr), -ENOENT);
	CU_ASSERT_EQUAL(fake_ctl_count(cur_fake, "batch"), 1);
	CU_ASSERT_EQUAL(agent_spool_list(h.spool, &it, &n, 10), 0);
	CU_ASSERT_EQUAL(n, 1);
	if (n == 1) {
		CU_ASSERT_STRING_EQUAL(it[0].run_id, "b-4");
		CU_ASSERT_STRING_EQUAL(it[0].name, "");
	}
	free(it);
	h_stop(&h);
	fake_ctl_stop(cur_fake);
}

static int one_batch_seen(void *arg)
{
	(void)arg;
	return fake_ctl_count(cur_fake, "batch") >= 1;
}

/*
 * Whole-batch failures: a 503 is retried as a batch after the backoff; a 413
 * makes the batches smaller; an answer one ack short, or a 400 for the whole
 * batch, sends the results one by one (stored ones come back as duplicates).
 */
static void test_batch_fallbacks(void)
{
	struct harness h;

	batch_start(&h, 5);
	fake_ctl_batch_mode(cur_fake, 0, 0, 503, 0);
	CU_ASSERT(pump_until(&h, one_batch_seen, NULL, 5000));
	fake_ctl_batch_mode(cur_fake, 0, 0, 0, 0);
	CU_ASSERT(pump_until(&h, spool_empty, &h, 5000));
	assert_stored(0, 5);
	CU_ASSERT(fake_ctl_count(cur_fake, "batch") >= 2);
	CU_ASSERT_EQUAL(fake_ctl_count(cur_fake, "result"), 0);
	h_stop(&h);
	fake_ctl_stop(cur_fake);

	/* 413 above two results: 5 -> refused, then two batches of 2 and one alone. */
	batch_start(&h, 5);
	fake_ctl_batch_mode(cur_fake, 0, 2, 0, 0);
	CU_ASSERT(pump_until(&h, spool_empty, &h, 5000));
	assert_stored(0, 5);
	CU_ASSERT_EQUAL(fake_ctl_count(cur_fake, "batch"), 3);
	CU_ASSERT_EQUAL(fake_ctl_count(cur_fake, "batch_items"), 4);
	CU_ASSERT_EQUAL(fake_ctl_count(cur_fake, "result"), 1);
	CU_ASSERT_EQUAL(agent_upload_batches(h.up), 2);
	h_stop(&h);
	fake_ctl_stop(cur_fake);

	/* One ack short: not trusted; each result again by the single route. */
	batch_start(&h, 4);
	fake_ctl_batch_mode(cur_fake, 0, 0, 0, 1);
	CU_ASSERT(pump_until(&h, spool_empty, &h, 5000));
	assert_stored(0, 4);
	CU_ASSERT_EQUAL(fake_ctl_count(cur_fake, "batch"), 1);
	CU_ASSERT_EQUAL(fake_ctl_count(cur_fake, "result"), 4);
	CU_ASSERT_EQUAL(agent_upload_batches(h.up), 0);
	h_stop(&h);
	fake_ctl_stop(cur_fake);

	/* The whole batch refused with 400: one by one, then batches again. */
	batch_start(&h, 3);
	fake_ctl_batch_mode(cur_fake, 0, 0, 400, 0);
	CU_ASSERT(pump_until(&h, spool_empty, &h, 5000));
	assert_stored(0, 3);
	CU_ASSERT_EQUAL(fake_ctl_count(cur_fake, "result"), 3);
	fake_ctl_batch_mode(cur_fake, 0, 0, 0, 0);
	spool_results(&h, 3, 2);
	agent_upload_kick(h.up);
	CU_ASSERT(pump_until(&h, spool_empty, &h, 5000));
	assert_stored(3, 2);
	CU_ASSERT_EQUAL(fake_ctl_count(cur_fake, "batch"), 2);
	CU_ASSERT_EQUAL(fake_ctl_count(cur_fake, "result"), 3);
	h_stop(&h);
	fake_ctl_stop(cur_fake);
}

/* Results go first in one batch, the runs' traces after them; all arrive and the spool empties. */
static void test_batch_with_traces(void)
{
	struct harness h;
	static uint8_t want[TRACE_LEN], got[TRACE_LEN + 10];
	char id[32];

	CU_ASSERT_EQUAL_FATAL(fake_ctl_start(0, "sesame", NULL, &cur_fake), 0);
	h_start(&h, fake_ctl_port(cur_fake), NULL, child_with_trace);
	trace_bytes(want);
	for (unsigned int i = 0; i < 3; i++) {
		snprintf(id, sizeof(id), "b-%u", i);
		CU_ASSERT_EQUAL(agent_spool_run_begin(h.spool, id), 0);
		CU_ASSERT_EQUAL(agent_spool_put_trace(h.spool, id, "big.bin", want, TRACE_LEN), 0);
	}
	/* The results last, as the runner writes them. */
	for (unsigned int i = 0; i < 3; i++) {
		Fjord__V1__Metric m = FJORD__V1__METRIC__INIT, *mp = &m;
		Fjord__V1__Result r = FJORD__V1__RESULT__INIT;

		snprintf(id, sizeof(id), "b-%u", i);
		m.name = "goodput_bps";
		r.run_id = id;
		r.ok = 1;
		r.metrics = &mp;
		r.n_metrics = 1;
		CU_ASSERT_EQUAL(agent_spool_put_result(h.spool, id, &r), 0);
	}
	CU_ASSERT(pump_until(&h, spool_empty, &h, 8000));
	assert_stored(0, 3);
	CU_ASSERT_EQUAL(fake_ctl_count(cur_fake, "batch"), 1);
	CU_ASSERT_EQUAL(fake_ctl_count(cur_fake, "batch_items"), 3);
	CU_ASSERT_EQUAL(fake_ctl_count(cur_fake, "result"), 0);
	for (unsigned int i = 0; i < 3; i++) {
		snprintf(id, sizeof(id), "b-%u", i);
		CU_ASSERT_EQUAL(fake_ctl_trace(cur_fake, id, "big.bin", got, sizeof(got)),
				TRACE_LEN);
		CU_ASSERT_EQUAL(memcmp(got, want, TRACE_LEN), 0);
	}
	/* Three results and three traces acknowledged; no run folder is left. */
	CU_ASSERT_EQUAL(agent_upload_acked(h.up), 6);
	CU_ASSERT_EQUAL(agent_spool_usage(h.spool), 0);
	h_stop(&h);
	fake_ctl_stop(cur_fake);
}

static const struct fj_test tests[] = {
	{ "enroll_run_upload", test_enroll_run_upload },
	{ "token_reuse_and_401", test_token_reuse_and_401 },
	{ "controller_away", test_controller_away },
	{ "trace_resume", test_trace_resume },
	{ "result_refused_kept", test_result_refused_kept },
	{ "trace_stuck_bounded", test_trace_stuck_bounded },
	{ "trace_held_not_stored", test_trace_held_not_stored },
	{ "cancel_by_poll", test_cancel_by_poll },
	{ "batch_upload", test_batch_upload },
	{ "batch_no_route", test_batch_no_route },
	{ "batch_item_errors", test_batch_item_errors },
	{ "batch_fallbacks", test_batch_fallbacks },
	{ "batch_with_traces", test_batch_with_traces },
	{ NULL, NULL },
};

const struct fj_suite fj_suite_agent_ctl = { "agent_ctl", ctl_setup, ctl_teardown, tests };
