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

int ctl_check_run_agent(struct ctl_req *rq, const char *run_id, Fjord__V1__Run **out)
{
	Fjord__V1__Run *run = NULL;
	int r;

	if (out)
		*out = NULL;
	r = ctl_store_run_get(rq->h->st, run_id, &run);
	if (r == -ENOENT) {
		ctl_send_error(rq, MHD_HTTP_NOT_FOUND, NULL, "run '%s' not found", run_id);
		return -1;
	}
	if (r < 0) {
		ctl_send_store_error(rq, r, "run lookup");
		return -1;
	}
	if (strcmp(run->client_agent_id, rq->agent_id) != 0 &&
	    strcmp(run->server_agent_id, rq->agent_id) != 0) {
		ctl_send_error(rq, MHD_HTTP_FORBIDDEN, NULL,
			       "agent %s is neither the client nor the server of run %s",
			       rq->agent_id, run_id);
		protobuf_c_message_free_unpacked(&run->base, NULL);
		return -1;
	}
	if (out)
		*out = run;
	else
		protobuf_c_message_free_unpacked(&run->base, NULL);
	return 0;
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

	if (rq->async_err == -ENOENT)
		return ctl_send_error(rq, MHD_HTTP_NOT_FOUND, NULL, "run '%s' not found",
				      rq->seg[0]);
	if (rq->async_err == -EINVAL)
		return ctl_send_error(rq, MHD_HTTP_BAD_REQUEST, NULL, "result refused: %s",
				      rq->err_msg[0] ? rq->err_msg : "invalid result");
	if (rq->async_err < 0)
		return ctl_send_store_error(rq, rq->async_err, "storing the result");
	pthread_mutex_lock(&h->lock);
	ctl_sched_run_finished(h->sched, rq->seg[0]);
	pthread_mutex_unlock(&h->lock);
	ack.run_id = rq->seg[0];
	ack.duplicate = rq->async_dup != 0;
	return ctl_send_msg(rq, rq->async_dup ? MHD_HTTP_OK : MHD_HTTP_CREATED, &ack.base);
}

enum MHD_Result ctl_route_result(struct ctl_req *rq)
{
	Fjord__V1__Result *res = (Fjord__V1__Result *)rq->msg;
	struct ctl_http *h = rq->h;
	int r, stopping;

	if (rq->phase == 1)
		return result_answer(rq);
	if (res->run_id[0] && strcmp(res->run_id, rq->seg[0]) != 0)
		return ctl_send_error(rq, MHD_HTTP_BAD_REQUEST, "runId",
				      "runId '%.64s' differs from the run in the path '%s'",
				      res->run_id, rq->seg[0]);
	if (ctl_check_run_agent(rq, rq->seg[0], NULL) < 0)
		return MHD_YES;
	rq->res_copy = *res;
	rq->res_copy.run_id = rq->seg[0];
	rq->res_copy.agent_id = rq->agent_id;
	rq->phase = 1;
	pthread_mutex_lock(&h->lock);
	stopping = h->stopping;
	pthread_mutex_unlock(&h->lock);
	if (stopping) {
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
