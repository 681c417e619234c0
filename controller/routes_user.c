/* User routes: health, metrics, agents and experiments. */
#include <errno.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fj_clock.h"
#include "fj_log.h"
#include "http_internal.h"

enum MHD_Result ctl_route_healthz(struct ctl_req *rq)
{
	Fjord__V1__Health hl = FJORD__V1__HEALTH__INIT;

	hl.status = (char *)"ok";
	hl.version = (char *)CTL_VERSION;
	hl.uptime_s = (fj_wall_ms() - rq->h->started_ms) / 1000;
	return ctl_send_msg(rq, MHD_HTTP_OK, &hl.base);
}

enum MHD_Result ctl_route_metrics(struct ctl_req *rq)
{
	struct ctl_http *h = rq->h;
	struct ctl_gauges g = { 0 };
	struct ctl_buf b;
	size_t len = 0;
	char *text;

	ctl_poll_counts(h, &g.agents_online, &g.agents_waiting, &g.reports_queued);
	g.runs_ok = ctl_store_run_counts(h->st, g.runs) == 0;
	g.store_bytes = ctl_store_size(h->st);
	g.uptime_s = (fj_wall_ms() - h->started_ms) / 1000;
	ctl_buf_init(&b, 8u << 20);
	ctl_metrics_render(h->metrics, &g, &b);
	text = ctl_buf_take(&b, &len);
	if (!text)
		return ctl_send_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL,
				      "metrics do not fit in memory");
	return ctl_send_data(rq, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", text,
			     len);
}

enum MHD_Result ctl_route_agents(struct ctl_req *rq)
{
	Fjord__V1__AgentList *list = NULL;
	enum MHD_Result mr;
	size_t i;
	int r;

	r = ctl_store_agent_list(rq->h->st, &list);
	if (r < 0)
		return ctl_send_store_error(rq, r, "agent list");
	for (i = 0; i < list->n_agents; i++)
		ctl_poll_overlay(rq->h, list->agents[i]);
	mr = ctl_send_msg(rq, MHD_HTTP_OK, &list->base);
	protobuf_c_message_free_unpacked(&list->base, NULL);
	return mr;
}

enum MHD_Result ctl_route_agent(struct ctl_req *rq)
{
	Fjord__V1__Agent *a = NULL;
	enum MHD_Result mr;
	int r;

	r = ctl_store_agent_get(rq->h->st, rq->seg[0], &a);
	if (r == -ENOENT)
		return ctl_send_error(rq, MHD_HTTP_NOT_FOUND, NULL, "agent '%s' not found",
				      rq->seg[0]);
	if (r < 0)
		return ctl_send_store_error(rq, r, "agent lookup");
	ctl_poll_overlay(rq->h, a);
	mr = ctl_send_msg(rq, MHD_HTTP_OK, &a->base);
	protobuf_c_message_free_unpacked(&a->base, NULL);
	return mr;
}

static void free_runs(Fjord__V1__Run **runs, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		protobuf_c_message_free_unpacked(&runs[i]->base, NULL);
	free(runs);
}

static enum MHD_Result send_experiment(struct ctl_req *rq, unsigned int status, const char *id)
{
	Fjord__V1__Experiment *e = NULL;
	enum MHD_Result mr;
	int r = ctl_store_experiment_get(rq->h->st, id, &e);

	if (r == -ENOENT)
		return ctl_send_error(rq, MHD_HTTP_NOT_FOUND, NULL, "experiment '%s' not found",
				      id);
	if (r < 0)
		return ctl_send_store_error(rq, r, "experiment lookup");
	mr = ctl_send_msg(rq, status, &e->base);
	protobuf_c_message_free_unpacked(&e->base, NULL);
	return mr;
}

/* Expands the spec over the agents known now and stores experiment and runs at once. */
static enum MHD_Result create_experiment(struct ctl_req *rq, Fjord__V1__Experiment *exp)
{
	Fjord__V1__AgentList *agents = NULL;
	Fjord__V1__Run **runs = NULL;
	struct ctl_reject why = { "", "" };
	size_t n_runs = 0;
	uint64_t seed;
	int r;

	r = ctl_store_agent_list(rq->h->st, &agents);
	if (r < 0)
		return ctl_send_store_error(rq, r, "agent list");
	if (RAND_bytes((unsigned char *)&seed, sizeof(seed)) != 1)
		seed = (uint64_t)fj_mono_us();
	r = ctl_sched_expand(exp, agents, exp->created_ms, seed, &runs, &n_runs, &why);
	protobuf_c_message_free_unpacked(&agents->base, NULL);
	if (r == -EINVAL)
		return ctl_send_error(
			rq, MHD_HTTP_BAD_REQUEST, why.field[0] ? why.field : NULL, "%s",
			why.message[0] ? why.message : "the experiment expands to no run");
	if (r < 0)
		return ctl_send_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL,
				      "cannot expand the experiment: %s", strerror(-r));
	exp->runs_total = (uint32_t)n_runs;
	r = ctl_store_experiment_create(rq->h->st, exp, runs, n_runs);
	free_runs(runs, n_runs);
	if (r < 0)
		return ctl_send_store_error(rq, r, "storing the experiment");
	fj_info("experiment %s created by %s: %zu runs", exp->id, exp->owner, n_runs);
	ctl_poll_kick(rq->h);
	return send_experiment(rq, MHD_HTTP_CREATED, exp->id);
}

enum MHD_Result ctl_route_exp_create(struct ctl_req *rq)
{
	Fjord__V1__ExperimentSpec *spec = (Fjord__V1__ExperimentSpec *)rq->msg;
	Fjord__V1__Experiment exp = FJORD__V1__EXPERIMENT__INIT;
	struct ctl_reject why = { "", "" };
	unsigned char rnd[8];
	char id[24];
	size_t i;

	if (ctl_sched_validate(spec, &why) < 0)
		return ctl_send_error(rq, MHD_HTTP_BAD_REQUEST, why.field[0] ? why.field : NULL,
				      "%s",
				      why.message[0] ? why.message : "invalid experiment spec");
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return ctl_send_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL,
				      "cannot draw a random id");
	strcpy(id, "exp-");
	for (i = 0; i < sizeof(rnd); i++)
		snprintf(id + 4 + 2 * i, 3, "%02x", rnd[i]);
	exp.id = id;
	exp.spec = spec;
	exp.state = FJORD__V1__EXPERIMENT_STATE__EXPERIMENT_STATE_ACTIVE;
	exp.owner = rq->user ? rq->user : (char *)"";
	exp.created_ms = fj_wall_ms();
	return create_experiment(rq, &exp);
}

enum MHD_Result ctl_route_exp_list(struct ctl_req *rq)
{
	Fjord__V1__ExperimentList *list = NULL;
	enum MHD_Result mr;
	int r = ctl_store_experiment_list(rq->h->st, &list);

	if (r < 0)
		return ctl_send_store_error(rq, r, "experiment list");
	mr = ctl_send_msg(rq, MHD_HTTP_OK, &list->base);
	protobuf_c_message_free_unpacked(&list->base, NULL);
	return mr;
}

enum MHD_Result ctl_route_exp_get(struct ctl_req *rq)
{
	return send_experiment(rq, MHD_HTTP_OK, rq->seg[0]);
}

enum MHD_Result ctl_route_exp_cancel(struct ctl_req *rq)
{
	struct ctl_http *h = rq->h;
	char reason[160];
	size_t n = 0;
	int r;

	snprintf(reason, sizeof(reason), "cancelled by %s", rq->user ? rq->user : "a user");
	pthread_mutex_lock(&h->lock);
	r = ctl_sched_cancel(h->sched, rq->seg[0], reason, fj_wall_ms(), &n);
	pthread_mutex_unlock(&h->lock);
	if (r == -ENOENT)
		return ctl_send_error(rq, MHD_HTTP_NOT_FOUND, NULL, "experiment '%s' not found",
				      rq->seg[0]);
	if (r < 0)
		return ctl_send_store_error(rq, r, "cancelling the experiment");
	fj_info("experiment %s %s: %zu runs cancelled", rq->seg[0], reason, n);
	return send_experiment(rq, MHD_HTTP_OK, rq->seg[0]);
}
