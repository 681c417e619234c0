/* Agent routes: enrollment, long poll, result upload. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fj_clock.h"
#include "fj_log.h"
#include "http_internal.h"

static int name_ok(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > 64)
		return 0;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

/* Every configured site is compared, and a missing site is compared against
 * a dummy, so the answer time says nothing about which sites exist. */
static int site_secret_ok(const struct ctl_config *cfg, const char *site, const char *secret)
{
	int ok = 0, found = 0;
	size_t i;

	for (i = 0; i < cfg->n_sites; i++) {
		int same_site = strcmp(cfg->sites[i].site, site) == 0;
		int eq = ctl_auth_secret_equal(cfg->sites[i].secret, secret);

		found |= same_site;
		ok |= same_site & eq;
	}
	if (!found)
		ok &= ctl_auth_secret_equal("no such site: compare anyway", secret);
	return ok;
}

enum MHD_Result ctl_route_enroll(struct ctl_req *rq)
{
	Fjord__V1__EnrollRequest *req = (Fjord__V1__EnrollRequest *)rq->msg, copy;
	Fjord__V1__EnrollResponse ans = FJORD__V1__ENROLL_RESPONSE__INIT;
	char token[CTL_TOKEN_HEX + 1], hash[CTL_TOKEN_HEX + 1];
	char *agent_id = NULL;
	enum MHD_Result mr;
	int r;

	if (!req->site[0])
		return ctl_send_error(rq, MHD_HTTP_BAD_REQUEST, "site", "site is required");
	if (!name_ok(req->site))
		return ctl_send_error(rq, MHD_HTTP_BAD_REQUEST, "site",
				      "site must be 1 to 64 of [A-Za-z0-9._-]");
	if (!req->node[0])
		return ctl_send_error(rq, MHD_HTTP_BAD_REQUEST, "node", "node is required");
	if (!name_ok(req->node))
		return ctl_send_error(rq, MHD_HTTP_BAD_REQUEST, "node",
				      "node must be 1 to 64 of [A-Za-z0-9._-]");
	if (!req->secret[0])
		return ctl_send_error(
			rq, MHD_HTTP_UNAUTHORIZED, "secret",
			"enrollment refused: the site's enrollment secret is missing");
	if (!site_secret_ok(rq->h->cfg, req->site, req->secret))
		return ctl_send_error(rq, MHD_HTTP_UNAUTHORIZED, "secret",
				      "enrollment refused: unknown site '%s' or wrong secret",
				      req->site);
	if (ctl_auth_new_token(token) < 0)
		return ctl_send_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL,
				      "cannot draw a random token");
	ctl_auth_sha256_hex(token, strlen(token), hash);
	/* The store has no use for the secret; it is not handed on. */
	copy = *req;
	copy.secret = (char *)"";
	r = ctl_store_agent_enroll(rq->h->st, &copy, hash, fj_wall_ms(), &agent_id);
	if (r < 0)
		return ctl_send_store_error(rq, r, "enrollment");
	fj_info("enrolled agent %s (site %s, node %s)", agent_id, req->site, req->node);
	ans.agent_id = agent_id;
	ans.token = token;
	ans.poll_timeout_s = rq->h->cfg->long_poll_max_s;
	mr = ctl_send_msg(rq, MHD_HTTP_OK, &ans.base);
	free(agent_id);
	return mr;
}

static enum MHD_Result answer_commands(struct ctl_req *rq, Fjord__V1__PollResponse *resp, int r)
{
	enum MHD_Result mr;

	if (r < 0)
		return ctl_send_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL,
				      "scheduler cannot hand over commands: %s", strerror(-r));
	mr = ctl_send_msg(rq, MHD_HTTP_OK, &resp->base);
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	return mr;
}

enum MHD_Result ctl_route_poll(struct ctl_req *rq)
{
	struct ctl_http *h = rq->h;
	Fjord__V1__PollRequest *poll = (Fjord__V1__PollRequest *)rq->msg;
	Fjord__V1__PollResponse *resp = NULL;
	uint64_t wait_ms;
	int r;

	if (rq->phase == 1) {
		/* Resumed: by a notify, the deadline or shutdown. */
		pthread_mutex_lock(&h->lock);
		ctl_poll_unwait_locked(rq);
		r = ctl_sched_take_commands(h->sched, rq->agent_id, fj_wall_ms(), &resp);
		pthread_mutex_unlock(&h->lock);
		return answer_commands(rq, resp, r);
	}
	ctl_poll_seen(h, rq->agent_id, poll);
	wait_ms = (uint64_t)(poll->wait_s < h->cfg->long_poll_max_s ? poll->wait_s
								    : h->cfg->long_poll_max_s) *
		  1000;
	pthread_mutex_lock(&h->lock);
	r = ctl_sched_take_commands(h->sched, rq->agent_id, fj_wall_ms(), &resp);
	if (r < 0 || resp->n_commands > 0 || wait_ms == 0 || h->stopping) {
		pthread_mutex_unlock(&h->lock);
		return answer_commands(rq, resp, r);
	}
	protobuf_c_message_free_unpacked(&resp->base, NULL);
	/* Suspended and listed under the lock, so a notify cannot slip in between. */
	atomic_fetch_add(&h->polls_held, 1);
	rq->w_counted = 1;
	MHD_suspend_connection(rq->conn);
	ctl_poll_wait_locked(rq, fj_mono_ms() + wait_ms);
	rq->phase = 1;
	pthread_mutex_unlock(&h->lock);
	return MHD_YES;
}

/*
 * The run check of every result and trace upload: 0 when agent_id is the
 * client or server of run_id, else the HTTP status with the reason in msg.
 */
static unsigned int run_agent_status(struct ctl_http *h, const char *agent_id, const char *run_id,
				     Fjord__V1__Run **out, char *msg, size_t len)
{
	Fjord__V1__Run *run = NULL;
	int r;

	r = ctl_store_run_get(h->st, run_id, &run);
	if (r == -ENOENT) {
		snprintf(msg, len, "run '%s' not found", run_id);
		return MHD_HTTP_NOT_FOUND;
	}
	if (r < 0) {
		fj_err("store: run lookup: %s (%s)", strerror(-r), ctl_store_errmsg());
		snprintf(msg, len, "run lookup: internal store error");
		return MHD_HTTP_INTERNAL_SERVER_ERROR;
	}
	if (strcmp(run->client_agent_id, agent_id) != 0 &&
	    strcmp(run->server_agent_id, agent_id) != 0) {
		snprintf(msg, len, "agent %s is neither the client nor the server of run %s",
			 agent_id, run_id);
		protobuf_c_message_free_unpacked(&run->base, NULL);
		return MHD_HTTP_FORBIDDEN;
	}
	if (out)
		*out = run;
	else
		protobuf_c_message_free_unpacked(&run->base, NULL);
	return 0;
}

int ctl_check_run_agent(struct ctl_req *rq, const char *run_id, Fjord__V1__Run **out)
{
	char msg[256];
	unsigned int status;

	if (out)
		*out = NULL;
	status = run_agent_status(rq->h, rq->agent_id, run_id, out, msg, sizeof(msg));
	if (status) {
		ctl_send_error(rq, status, NULL, "%s", msg);
		return -1;
	}
	return 0;
}

/*
 * Checks shared by the single and the batch upload before a result goes to
 * the store: res->run_id, when set, must be run_id, and the caller must be
 * part of the run. 0 or the HTTP status, with the reason in msg and the
 * field it concerns in *field (NULL for none).
 */
static unsigned int result_check(struct ctl_req *rq, const Fjord__V1__Result *res,
				 const char *run_id, const char **field, char *msg, size_t len)
{
	*field = NULL;
	if (!run_id[0]) {
		*field = "runId";
		snprintf(msg, len, "runId is required");
		return MHD_HTTP_BAD_REQUEST;
	}
	if (res->run_id[0] && strcmp(res->run_id, run_id) != 0) {
		*field = "runId";
		snprintf(msg, len, "runId '%.64s' differs from the run in the path '%.64s'",
			 res->run_id, run_id);
		return MHD_HTTP_BAD_REQUEST;
	}
	return run_agent_status(rq->h, rq->agent_id, run_id, NULL, msg, len);
}

/*
 * The HTTP status of a store outcome: 201 stored, 200 duplicate, else an
 * error with its reason in msg. why is the store's reason for -EINVAL when
 * known ("" otherwise).
 */
static unsigned int result_outcome(int err, int dup, const char *run_id, const char *why, char *msg,
				   size_t len)
{
	msg[0] = 0;
	switch (err) {
	case 0:
		return dup ? MHD_HTTP_OK : MHD_HTTP_CREATED;
	case -ENOENT:
		snprintf(msg, len, "run '%s' not found", run_id);
		return MHD_HTTP_NOT_FOUND;
	case -EINVAL:
		snprintf(msg, len, "result refused: %s", why[0] ? why : "invalid result");
		return MHD_HTTP_BAD_REQUEST;
	case -EEXIST:
	case -ESTALE:
		snprintf(msg, len, "storing the result: conflicts with its current state");
		return MHD_HTTP_CONFLICT;
	case -EPERM:
		snprintf(msg, len, "storing the result: not allowed");
		return MHD_HTTP_FORBIDDEN;
	default:
		fj_err("store: storing the result of run %s: %s", run_id, strerror(-err));
		snprintf(msg, len, "storing the result: internal store error");
		return MHD_HTTP_INTERNAL_SERVER_ERROR;
	}
}

/* Runs on the store's writer thread once the result is durable (or failed). */
static void result_done(void *arg, int err, int duplicate)
{
	struct ctl_req *rq = arg;
	struct ctl_http *h = rq->h;

	rq->async_err = err;
	rq->async_dup = duplicate;
	MHD_resume_connection(rq->conn);
	atomic_fetch_sub(&h->async_pending, 1);
}

static enum MHD_Result result_answer(struct ctl_req *rq)
{
	Fjord__V1__ResultAck ack = FJORD__V1__RESULT_ACK__INIT;
	struct ctl_http *h = rq->h;
	char msg[320];
	unsigned int status;

	status = result_outcome(rq->async_err, rq->async_dup, rq->seg[0], rq->err_msg, msg,
				sizeof(msg));
	if (status != MHD_HTTP_OK && status != MHD_HTTP_CREATED)
		return ctl_send_error(rq, status, NULL, "%s", msg);
	pthread_mutex_lock(&h->lock);
	ctl_sched_run_finished(h->sched, rq->seg[0]);
	pthread_mutex_unlock(&h->lock);
	ack.run_id = rq->seg[0];
	ack.duplicate = rq->async_dup != 0;
	return ctl_send_msg(rq, status, &ack.base);
}

static int http_stopping(struct ctl_http *h)
{
	int stopping;

	pthread_mutex_lock(&h->lock);
	stopping = h->stopping;
	pthread_mutex_unlock(&h->lock);
	return stopping;
}

enum MHD_Result ctl_route_result(struct ctl_req *rq)
{
	Fjord__V1__Result *res = (Fjord__V1__Result *)rq->msg;
	struct ctl_http *h = rq->h;
	const char *field;
	char msg[256];
	unsigned int status;
	int r;

	if (rq->phase == 1)
		return result_answer(rq);
	status = result_check(rq, res, rq->seg[0], &field, msg, sizeof(msg));
	if (status)
		return ctl_send_error(rq, status, field, "%s", msg);
	rq->res_copy = *res;
	rq->res_copy.run_id = rq->seg[0];
	rq->res_copy.agent_id = rq->agent_id;
	rq->phase = 1;
	if (http_stopping(h)) {
		/* Shutting down: no new suspension, the daemon is about to stop. */
		rq->async_err = ctl_store_result_put(h->st, &rq->res_copy, rq->agent_id,
						     fj_wall_ms(), &rq->async_dup);
		snprintf(rq->err_msg, sizeof(rq->err_msg), "%s", ctl_store_errmsg());
		return result_answer(rq);
	}
	/* Suspended while the writer thread group-commits it with other results. */
	atomic_fetch_add(&h->async_pending, 1);
	MHD_suspend_connection(rq->conn);
	r = ctl_store_result_put_async(h->st, &rq->res_copy, rq->agent_id, fj_wall_ms(),
				       result_done, rq);
	if (r < 0) {
		/* Refused before queueing: the reason is this thread's store message. */
		rq->async_err = r;
		snprintf(rq->err_msg, sizeof(rq->err_msg), "%s", ctl_store_errmsg());
		MHD_resume_connection(rq->conn);
		atomic_fetch_sub(&h->async_pending, 1);
	}
	return MHD_YES;
}

/* ---- batch upload ----------------------------------------------------------- */

struct ctl_batch_item {
	struct ctl_batch *b;
	unsigned int status; /* known before the store (0: go by err and dup) */
	int err, dup;
	char msg[256];
};

struct ctl_batch {
	struct ctl_req *rq;
	/* Items not yet settled, plus one held by the submitting handler so
	 * that the connection is resumed only after every item was handed over. */
	atomic_size_t left;
	size_t n;
	struct ctl_batch_item items[];
};

void ctl_batch_free(struct ctl_batch *b)
{
	free(b);
}

/* Whoever settles the last item resumes the suspended connection. */
static void batch_settle(struct ctl_batch *b)
{
	struct ctl_http *h = b->rq->h;

	if (atomic_fetch_sub(&b->left, 1) == 1) {
		MHD_resume_connection(b->rq->conn);
		atomic_fetch_sub(&h->async_pending, 1);
	}
}

/* Runs on the store's writer thread once the item is durable (or failed). */
static void batch_item_done(void *arg, int err, int duplicate)
{
	struct ctl_batch_item *it = arg;

	it->err = err;
	it->dup = duplicate;
	batch_settle(it->b);
}

static enum MHD_Result batch_answer(struct ctl_req *rq)
{
	Fjord__V1__ResultBatch *batch = (Fjord__V1__ResultBatch *)rq->msg;
	Fjord__V1__ResultBatchAck ans = FJORD__V1__RESULT_BATCH_ACK__INIT;
	Fjord__V1__ResultItemAck *acks, **ptrs;
	struct ctl_batch *b = rq->batch;
	struct ctl_http *h = rq->h;
	enum MHD_Result mr;
	size_t i;

	acks = calloc(b->n, sizeof(*acks));
	ptrs = calloc(b->n, sizeof(*ptrs));
	if (!acks || !ptrs) {
		free(acks);
		free(ptrs);
		return ctl_send_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL, "out of memory");
	}
	for (i = 0; i < b->n; i++) {
		struct ctl_batch_item *it = &b->items[i];
		const char *run_id = batch->results[i]->run_id;

		if (!it->status) {
			char why[256];

			snprintf(why, sizeof(why), "%s", it->msg);
			it->status = result_outcome(it->err, it->dup, run_id, why, it->msg,
						    sizeof(it->msg));
		}
		fjord__v1__result_item_ack__init(&acks[i]);
		acks[i].run_id = (char *)run_id;
		acks[i].status = it->status;
		acks[i].duplicate = it->status == MHD_HTTP_OK;
		acks[i].message = it->msg;
		ptrs[i] = &acks[i];
	}
	/* One lock for the whole batch: the scheduler learns of every stored result. */
	pthread_mutex_lock(&h->lock);
	for (i = 0; i < b->n; i++) {
		if (b->items[i].status == MHD_HTTP_OK || b->items[i].status == MHD_HTTP_CREATED)
			ctl_sched_run_finished(h->sched, batch->results[i]->run_id);
	}
	pthread_mutex_unlock(&h->lock);
	ans.n_items = b->n;
	ans.items = ptrs;
	mr = ctl_send_msg(rq, MHD_HTTP_OK, &ans.base);
	free(acks);
	free(ptrs);
	return mr;
}

/* Checks one item and hands it to the store; settles it unless queued. */
static void batch_submit(struct ctl_req *rq, struct ctl_batch_item *it,
			 const Fjord__V1__Result *res, int stopping)
{
	struct ctl_http *h = rq->h;
	Fjord__V1__Result copy;
	const char *field;
	int r;

	it->status = result_check(rq, res, res->run_id, &field, it->msg, sizeof(it->msg));
	if (it->status) {
		batch_settle(it->b);
		return;
	}
	copy = *res;
	copy.agent_id = rq->agent_id;
	if (stopping) {
		it->err = ctl_store_result_put(h->st, &copy, rq->agent_id, fj_wall_ms(), &it->dup);
		if (it->err == -EINVAL)
			snprintf(it->msg, sizeof(it->msg), "%s", ctl_store_errmsg());
		batch_settle(it->b);
		return;
	}
	/* The store copies what it needs before returning: copy may go. */
	r = ctl_store_result_put_async(h->st, &copy, rq->agent_id, fj_wall_ms(), batch_item_done,
				       it);
	if (r < 0) {
		it->err = r;
		snprintf(it->msg, sizeof(it->msg), "%s", ctl_store_errmsg());
		batch_settle(it->b);
	}
}

enum MHD_Result ctl_route_result_batch(struct ctl_req *rq)
{
	Fjord__V1__ResultBatch *batch = (Fjord__V1__ResultBatch *)rq->msg;
	struct ctl_http *h = rq->h;
	struct ctl_batch *b;
	int stopping;
	size_t i;

	if (rq->phase == 1)
		return batch_answer(rq);
	if (batch->n_results == 0)
		return ctl_send_error(rq, MHD_HTTP_BAD_REQUEST, "results",
				      "results is empty: a batch carries 1 to %d results",
				      CTL_BATCH_MAX);
	if (batch->n_results > CTL_BATCH_MAX)
		return ctl_send_error(rq, MHD_HTTP_CONTENT_TOO_LARGE, "results",
				      "%zu results: a batch carries at most %d", batch->n_results,
				      CTL_BATCH_MAX);
	b = calloc(1, sizeof(*b) + batch->n_results * sizeof(b->items[0]));
	if (!b)
		return ctl_send_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL, "out of memory");
	b->rq = rq;
	b->n = batch->n_results;
	atomic_init(&b->left, b->n + 1);
	rq->batch = b;
	rq->phase = 1;
	stopping = http_stopping(h);
	if (!stopping) {
		/* Suspended while the writer thread group-commits the items. */
		atomic_fetch_add(&h->async_pending, 1);
		MHD_suspend_connection(rq->conn);
	}
	for (i = 0; i < b->n; i++) {
		b->items[i].b = b;
		batch_submit(rq, &b->items[i], batch->results[i], stopping);
	}
	if (stopping)
		return batch_answer(rq);
	batch_settle(b);
	return MHD_YES;
}
