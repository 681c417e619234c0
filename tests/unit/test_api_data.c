/*
 * Suites api_experiments, api_queries, api_results and api_traces:
 * experiments in JSON and protobuf, run/result/aggregate queries with
 * filters and CSV, durable result uploads and resumable trace uploads.
 */
#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth.h"
#include "fj_clock.h"
#include "fj_test.h"
#include "test_api.h"

static char d_client[64], d_ctok[65], d_server[64], d_stok[65], d_other[64], d_otok[65];
static char d_viewer[65], d_exper[65];

static int data_start(void)
{
	if (api_start(NULL) < 0)
		return -1;
	if (api_enroll("oslo", "c1", API_SECRET_OSLO, d_client, d_ctok) != 200 ||
	    api_enroll("bergen", "s1", API_SECRET_BERGEN, d_server, d_stok) != 200 ||
	    api_enroll("bergen", "o1", API_SECRET_BERGEN, d_other, d_otok) != 200)
		return -1;
	if (api_user_token("viewer", d_viewer) < 0 || api_user_token("experimenter", d_exper) < 0)
		return -1;
	return 0;
}

static int data_stop(void)
{
	api_stop();
	return 0;
}

static void spec_json(char *buf, size_t len, const char *name)
{
	snprintf(buf, len,
		 "{\"name\":\"%s\",\"type\":\"EXPERIMENT_TYPE_ECHO\","
		 "\"echo\":{\"messageBytes\":64,\"count\":2},\"deadlineS\":60,\"pickupS\":30,"
		 "\"schedule\":{\"startMs\":\"%lld\"},"
		 "\"targets\":{\"pairs\":[{\"clientAgentId\":\"%s\",\"serverAgentId\":\"%s\"}]}}",
		 name, (long long)(fj_wall_ms() + 3600 * 1000), d_client, d_server);
}

/* ---- api_experiments --------------------------------------------------------- */

static void test_exp_json(void)
{
	char spec[1024], path[128], id[64];
	struct api_resp r;

	spec_json(spec, sizeof(spec), "json-one");
	CU_ASSERT_EQUAL(api_json("POST", "/api/v1/experiments", d_exper, spec, &r), 0);
	CU_ASSERT_EQUAL_FATAL(r.status, 201);
	snprintf(id, sizeof(id), "%s", api_str(&r, "id"));
	CU_ASSERT_EQUAL(strncmp(id, "exp-", 4), 0);
	CU_ASSERT_STRING_EQUAL(api_str(&r, "state"), "EXPERIMENT_STATE_ACTIVE");
	CU_ASSERT_STRING_EQUAL(api_str(&r, "owner"), "experimenter");
	CU_ASSERT(json_integer_value(json_object_get(r.json, "runsTotal")) >= 1);
	CU_ASSERT_STRING_EQUAL(
		json_string_value(json_object_get(json_object_get(r.json, "spec"), "name")),
		"json-one");
	api_resp_free(&r);
	snprintf(path, sizeof(path), "/api/v1/experiments/%s", id);
	CU_ASSERT_EQUAL(api_json("GET", path, d_viewer, NULL, &r), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_STRING_EQUAL(api_str(&r, "id"), id);
	api_resp_free(&r);
	CU_ASSERT_EQUAL(api_json("GET", "/api/v1/experiments", d_viewer, NULL, &r), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT(json_array_size(json_object_get(r.json, "experiments")) >= 1);
	api_resp_free(&r);
}

static void test_exp_protobuf(void)
{
	struct api_hdrs pb = { "application/x-protobuf", { NULL } };
	Fjord__V1__ExperimentSpec spec = FJORD__V1__EXPERIMENT_SPEC__INIT;
	Fjord__V1__EchoParams echo = FJORD__V1__ECHO_PARAMS__INIT;
	Fjord__V1__Targets tg = FJORD__V1__TARGETS__INIT;
	Fjord__V1__Schedule sch = FJORD__V1__SCHEDULE__INIT;
	Fjord__V1__AgentPair pair = FJORD__V1__AGENT_PAIR__INIT, *pairs[1] = { &pair };
	Fjord__V1__Experiment *e;
	Fjord__V1__ExperimentList *l;
	uint8_t buf[1024];
	size_t n;
	struct api_resp r;
	char path[128];

	echo.message_bytes = 10;
	echo.count = 1;
	pair.client_agent_id = d_client;
	pair.server_agent_id = d_server;
	tg.pairs = pairs;
	tg.n_pairs = 1;
	sch.start_ms = fj_wall_ms() + 3600 * 1000;
	spec.name = (char *)"pb-one";
	spec.type = FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_ECHO;
	spec.params_case = FJORD__V1__EXPERIMENT_SPEC__PARAMS_ECHO;
	spec.echo = &echo;
	spec.targets = &tg;
	spec.schedule = &sch;
	spec.deadline_s = 60;
	spec.pickup_s = 30;
	n = fjord__v1__experiment_spec__pack(&spec, buf);
	CU_ASSERT_EQUAL(api_call("POST", "/api/v1/experiments", d_exper, "application/x-protobuf",
				 buf, n, &pb, &r),
			0);
	CU_ASSERT_EQUAL_FATAL(r.status, 201);
	CU_ASSERT_STRING_EQUAL(r.ctype, "application/x-protobuf");
	e = fjord__v1__experiment__unpack(NULL, r.len, (const uint8_t *)r.body);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT_STRING_EQUAL(e->spec->name, "pb-one");
	CU_ASSERT_EQUAL(e->state, FJORD__V1__EXPERIMENT_STATE__EXPERIMENT_STATE_ACTIVE);
	snprintf(path, sizeof(path), "/api/v1/experiments/%s", e->id);
	fjord__v1__experiment__free_unpacked(e, NULL);
	api_resp_free(&r);
	CU_ASSERT_EQUAL(api_call("GET", path, d_viewer, NULL, NULL, 0, &pb, &r), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	e = fjord__v1__experiment__unpack(NULL, r.len, (const uint8_t *)r.body);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT_STRING_EQUAL(e->spec->targets->pairs[0]->client_agent_id, d_client);
	fjord__v1__experiment__free_unpacked(e, NULL);
	api_resp_free(&r);
	CU_ASSERT_EQUAL(api_call("GET", "/api/v1/experiments", d_viewer, NULL, NULL, 0, &pb, &r),
			0);
	l = fjord__v1__experiment_list__unpack(NULL, r.len, (const uint8_t *)r.body);
	CU_ASSERT_PTR_NOT_NULL_FATAL(l);
	CU_ASSERT(l->n_experiments >= 1);
	fjord__v1__experiment_list__free_unpacked(l, NULL);
	api_resp_free(&r);
}

static void test_exp_cancel(void)
{
	char spec[1024], path[160], id[64];
	struct api_resp r;
	json_t *runs;
	size_t i;

	spec_json(spec, sizeof(spec), "to-cancel");
	CU_ASSERT_EQUAL(api_json("POST", "/api/v1/experiments", d_exper, spec, &r), 0);
	CU_ASSERT_EQUAL_FATAL(r.status, 201);
	snprintf(id, sizeof(id), "%s", api_str(&r, "id"));
	api_resp_free(&r);
	snprintf(path, sizeof(path), "/api/v1/experiments/%s/cancel", id);
	CU_ASSERT_EQUAL(api_json("POST", path, d_exper, NULL, &r), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_STRING_EQUAL(api_str(&r, "state"), "EXPERIMENT_STATE_CANCELLED");
	api_resp_free(&r);
	snprintf(path, sizeof(path), "/api/v1/runs?experiment=%s", id);
	CU_ASSERT_EQUAL(api_json("GET", path, d_viewer, NULL, &r), 0);
	runs = json_object_get(r.json, "runs");
	CU_ASSERT(json_array_size(runs) >= 1);
	for (i = 0; i < json_array_size(runs); i++)
		CU_ASSERT_STRING_EQUAL(
			json_string_value(json_object_get(json_array_get(runs, i), "state")),
			"RUN_STATE_CANCELLED");
	api_resp_free(&r);
}

static void test_exp_invalid(void)
{
	char spec[512];
	struct api_resp r;

	/* No type: the scheduler's validation names the field. */
	CU_ASSERT_EQUAL(api_json("POST", "/api/v1/experiments", d_exper, "{\"name\":\"x\"}", &r),
			0);
	CU_ASSERT_EQUAL(r.status, 400);
	CU_ASSERT(api_str(&r, "field")[0] != 0);
	CU_ASSERT(api_str(&r, "message")[0] != 0);
	api_resp_free(&r);
	/* An agent that does not exist cannot be a target. */
	snprintf(spec, sizeof(spec),
		 "{\"name\":\"x\",\"type\":\"EXPERIMENT_TYPE_ECHO\",\"echo\":{\"count\":1,"
		 "\"messageBytes\":8},\"deadlineS\":60,\"pickupS\":30,\"targets\":{\"pairs\":"
		 "[{\"clientAgentId\":\"ghost\",\"serverAgentId\":\"%s\"}]}}",
		 d_server);
	CU_ASSERT_EQUAL(api_json("POST", "/api/v1/experiments", d_exper, spec, &r), 0);
	CU_ASSERT_EQUAL(r.status, 400);
	CU_ASSERT_PTR_NOT_NULL(strstr(api_str(&r, "field"), "targets"));
	api_resp_free(&r);
}

static const struct fj_test exp_tests[] = {
	{ "json", test_exp_json },
	{ "protobuf", test_exp_protobuf },
	{ "cancel", test_exp_cancel },
	{ "invalid", test_exp_invalid },
	{ NULL, NULL },
};

const struct fj_suite fj_suite_api_experiments = { "api_experiments", data_start, data_stop,
						   exp_tests };

/* ---- api_results ---------------------------------------------------------------- */

static long post_result(const char *tok, const char *run, const char *extra, struct api_resp *r)
{
	char path[160], body[512];

	snprintf(path, sizeof(path), "/api/v1/runs/%s/result", run);
	snprintf(body, sizeof(body),
		 "{\"ok\":true,\"startedMs\":\"1000\",\"finishedMs\":\"2000\",\"metrics\":["
		 "{\"name\":\"goodput_bps\",\"value\":1500000},{\"name\":\"rtt_p50_us\","
		 "\"value\":2100}],\"provenance\":{\"stack\":\"STACK_KERNEL\",\"scheduler\":"
		 "\"default\"}%s}",
		 extra ? extra : "");
	if (api_json("POST", path, tok, body, r) < 0)
		return -1;
	return r->status;
}

static void test_result_durable(void)
{
	char exp[64], run[64];
	struct ctl_query q = { 0 };
	Fjord__V1__ResultList *l = NULL;
	struct api_resp r;

	CU_ASSERT_FATAL(api_seed_run(d_client, d_server, exp, run) == 0);
	CU_ASSERT_EQUAL(post_result(d_ctok, run, NULL, &r), 201);
	CU_ASSERT_STRING_EQUAL(api_str(&r, "runId"), run);
	CU_ASSERT_PTR_NULL(json_object_get(r.json, "duplicate"));
	api_resp_free(&r);
	/* A 201 means committed: a read straight from the store sees it. */
	q.experiment_id = exp;
	CU_ASSERT_EQUAL_FATAL(ctl_store_results_query(ctl_http_store(api_srv), &q, &l), 0);
	CU_ASSERT_EQUAL(l->n_rows, 1);
	if (l->n_rows == 1) {
		CU_ASSERT_STRING_EQUAL(l->rows[0]->result->agent_id, d_client);
		CU_ASSERT_EQUAL(l->rows[0]->run->state, FJORD__V1__RUN_STATE__RUN_STATE_SUCCEEDED);
	}
	protobuf_c_message_free_unpacked(&l->base, NULL);
	/* The same result again: 200, flagged duplicate. */
	CU_ASSERT_EQUAL(post_result(d_ctok, run, NULL, &r), 200);
	CU_ASSERT(json_is_true(json_object_get(r.json, "duplicate")));
	api_resp_free(&r);
	/* The server agent may send its own. */
	CU_ASSERT_EQUAL(post_result(d_stok, run, NULL, &r), 201);
	api_resp_free(&r);
}

static void test_result_refused(void)
{
	char exp[64], run[64];
	struct api_resp r;

	CU_ASSERT_FATAL(api_seed_run(d_client, d_server, exp, run) == 0);
	CU_ASSERT_EQUAL(post_result(d_otok, run, NULL, &r), 403);
	API_ASSERT_ERROR(&r, 403, "is neither the client nor the server of run", NULL);
	api_resp_free(&r);
	CU_ASSERT_EQUAL(post_result(d_ctok, "no-such-run", NULL, &r), 404);
	API_ASSERT_ERROR(&r, 404, "run 'no-such-run' not found", NULL);
	api_resp_free(&r);
	CU_ASSERT_EQUAL(post_result(d_ctok, run, ",\"runId\":\"another\"", &r), 400);
	API_ASSERT_ERROR(&r, 400, "runId 'another' differs from the run in the path", "runId");
	api_resp_free(&r);
	CU_ASSERT_EQUAL(
		post_result(d_ctok, run, ",\"error\":\"x\",\"samples\":[],\"events\":[]", &r), 201);
	api_resp_free(&r);
	CU_ASSERT_FATAL(api_seed_run(d_client, d_server, exp, run) == 0);
	{
		char path[160];

		snprintf(path, sizeof(path), "/api/v1/runs/%s/result", run);
		CU_ASSERT_EQUAL(api_json("POST", path, d_ctok,
					 "{\"ok\":true,\"metrics\":[{\"name\":\"m\",\"value\":1},"
					 "{\"name\":\"m\",\"value\":2}]}",
					 &r),
				0);
		API_ASSERT_ERROR(&r, 400, "result refused: metric m appears twice", NULL);
		api_resp_free(&r);
	}
	CU_ASSERT_EQUAL(post_result(d_ctok, run, ",\"metrics\":3", &r), 400);
	API_ASSERT_ERROR(&r, 400, "metrics", "metrics");
	api_resp_free(&r);
}

struct upload_arg {
	const char *run;
	long status;
};

static void *upload_thread(void *arg)
{
	struct upload_arg *a = arg;
	struct api_resp r;

	a->status = post_result(d_ctok, a->run, NULL, &r);
	api_resp_free(&r);
	return NULL;
}

static void test_result_concurrent(void)
{
	enum { N = 24 };
	char exp[N][64], run[N][64];
	struct upload_arg a[N];
	pthread_t th[N];
	int i;

	for (i = 0; i < N; i++) {
		CU_ASSERT_FATAL(api_seed_run(d_client, d_server, exp[i], run[i]) == 0);
		a[i].run = run[i];
		a[i].status = 0;
	}
	for (i = 0; i < N; i++)
		CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, upload_thread, &a[i]), 0);
	for (i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		CU_ASSERT_EQUAL(a[i].status, 201);
	}
}

/* Results stored for the runs of experiment exp, straight from the store. */
static size_t stored_results(const char *exp, const char *agent, int *ok)
{
	struct ctl_query q = { 0 };
	Fjord__V1__ResultList *l = NULL;
	size_t i, n = 0;

	q.experiment_id = exp;
	if (ctl_store_results_query(ctl_http_store(api_srv), &q, &l) < 0)
		return (size_t)-1;
	for (i = 0; i < l->n_rows; i++) {
		if (strcmp(l->rows[i]->result->agent_id, agent) != 0)
			continue;
		n++;
		if (ok)
			*ok = l->rows[i]->result->ok;
	}
	protobuf_c_message_free_unpacked(&l->base, NULL);
	return n;
}

static json_t *batch_item(const struct api_resp *r, size_t i)
{
	return json_array_get(json_object_get(r->json, "items"), i);
}

static long item_status(const struct api_resp *r, size_t i)
{
	return (long)json_integer_value(json_object_get(batch_item(r, i), "status"));
}

static const char *item_str(const struct api_resp *r, size_t i, const char *key)
{
	const char *s = json_string_value(json_object_get(batch_item(r, i), key));

	return s ? s : "";
}

static void test_batch_mixed(void)
{
	enum { N = 8 };
	char exp[N][64], run[N][64], body[4096];
	struct api_resp r;
	int ok = -1;

	/* 0, 1 new; 2 already stored (the same again); 3 another agent's run;
	 * 4 no such run; 5 stored with ok=true, now ok=false; 6 no runId;
	 * 7 refused by the store (a metric twice). */
	CU_ASSERT_FATAL(api_seed_run(d_client, d_server, exp[0], run[0]) == 0);
	CU_ASSERT_FATAL(api_seed_run(d_client, d_server, exp[1], run[1]) == 0);
	CU_ASSERT_FATAL(api_seed_run(d_client, d_server, exp[2], run[2]) == 0);
	CU_ASSERT_FATAL(api_seed_run(d_other, d_server, exp[3], run[3]) == 0);
	CU_ASSERT_FATAL(api_seed_run(d_client, d_server, exp[5], run[5]) == 0);
	CU_ASSERT_FATAL(api_seed_run(d_client, d_server, exp[7], run[7]) == 0);
	CU_ASSERT_EQUAL(post_result(d_ctok, run[2], NULL, &r), 201);
	api_resp_free(&r);
	CU_ASSERT_EQUAL(post_result(d_ctok, run[5], NULL, &r), 201);
	api_resp_free(&r);
#define SAME                                                                                       \
	"\"ok\":true,\"startedMs\":\"1000\",\"finishedMs\":\"2000\",\"metrics\":["                 \
	"{\"name\":\"goodput_bps\",\"value\":1500000},{\"name\":\"rtt_p50_us\","                   \
	"\"value\":2100}],\"provenance\":{\"stack\":\"STACK_KERNEL\",\"scheduler\":"               \
	"\"default\"}"
	snprintf(body, sizeof(body),
		 "{\"results\":[{\"runId\":\"%s\"," SAME "},{\"runId\":\"%s\",\"ok\":false,"
		 "\"error\":\"timeout\"},{\"runId\":\"%s\"," SAME "},{\"runId\":\"%s\"," SAME
		 "},{\"runId\":\"no-such-run\"," SAME "},{\"runId\":\"%s\",\"ok\":false},"
		 "{\"ok\":true},{\"runId\":\"%s\",\"metrics\":[{\"name\":\"m\",\"value\":1},"
		 "{\"name\":\"m\",\"value\":2}]}]}",
		 run[0], run[1], run[2], run[3], run[5], run[7]);
#undef SAME
	CU_ASSERT_EQUAL_FATAL(api_json("POST", "/api/v1/results:batch", d_ctok, body, &r), 0);
	CU_ASSERT_EQUAL_FATAL(r.status, 200);
	CU_ASSERT_EQUAL_FATAL(json_array_size(json_object_get(r.json, "items")), N);
	CU_ASSERT_EQUAL(item_status(&r, 0), 201);
	CU_ASSERT_STRING_EQUAL(item_str(&r, 0, "runId"), run[0]);
	CU_ASSERT_PTR_NULL(json_object_get(batch_item(&r, 0), "duplicate"));
	CU_ASSERT_EQUAL(item_status(&r, 1), 201);
	CU_ASSERT_EQUAL(item_status(&r, 2), 200);
	CU_ASSERT(json_is_true(json_object_get(batch_item(&r, 2), "duplicate")));
	CU_ASSERT_EQUAL(item_status(&r, 3), 403);
	CU_ASSERT_PTR_NOT_NULL(
		strstr(item_str(&r, 3, "message"), "is neither the client nor the server of run"));
	CU_ASSERT_EQUAL(item_status(&r, 4), 404);
	CU_ASSERT_STRING_EQUAL(item_str(&r, 4, "message"), "run 'no-such-run' not found");
	CU_ASSERT_EQUAL(item_status(&r, 5), 409);
	CU_ASSERT_EQUAL(item_status(&r, 6), 400);
	CU_ASSERT_STRING_EQUAL(item_str(&r, 6, "message"), "runId is required");
	CU_ASSERT_EQUAL(item_status(&r, 7), 400);
	CU_ASSERT_STRING_EQUAL(item_str(&r, 7, "message"),
			       "result refused: metric m appears twice");
	api_resp_free(&r);
	/* Every item acknowledged as stored is in the store, once, as sent. */
	CU_ASSERT_EQUAL(stored_results(exp[0], d_client, &ok), 1);
	CU_ASSERT_EQUAL(ok, 1);
	CU_ASSERT_EQUAL(stored_results(exp[1], d_client, &ok), 1);
	CU_ASSERT_EQUAL(ok, 0);
	CU_ASSERT_EQUAL(stored_results(exp[2], d_client, NULL), 1);
	CU_ASSERT_EQUAL(stored_results(exp[3], d_client, NULL), 0);
	CU_ASSERT_EQUAL(stored_results(exp[3], d_other, NULL), 0);
	CU_ASSERT_EQUAL(stored_results(exp[5], d_client, &ok), 1);
	CU_ASSERT_EQUAL(ok, 1);
	CU_ASSERT_EQUAL(stored_results(exp[7], d_client, NULL), 0);
	/* The same batch item again is a duplicate, not a conflict. */
	snprintf(body, sizeof(body),
		 "{\"results\":[{\"runId\":\"%s\",\"ok\":false,\"error\":\"timeout\"}]}", run[1]);
	CU_ASSERT_EQUAL_FATAL(api_json("POST", "/api/v1/results:batch", d_ctok, body, &r), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_EQUAL(item_status(&r, 0), 200);
	api_resp_free(&r);
}

static void test_batch_many(void)
{
	enum { N = 150 };
	char exp[N][64], run[N][64];
	char *body = malloc(N * 128 + 64);
	size_t len, i;
	struct api_resp r;
	int ok;

	CU_ASSERT_PTR_NOT_NULL_FATAL(body);
	len = (size_t)sprintf(body, "{\"results\":[");
	for (i = 0; i < N; i++) {
		CU_ASSERT_FATAL(api_seed_run(d_client, d_server, exp[i], run[i]) == 0);
		len += (size_t)sprintf(body + len, "%s{\"runId\":\"%s\",\"ok\":%s}", i ? "," : "",
				       run[i], i % 2 ? "true" : "false");
	}
	sprintf(body + len, "]}");
	CU_ASSERT_EQUAL_FATAL(api_json("POST", "/api/v1/results:batch", d_ctok, body, &r), 0);
	free(body);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_EQUAL_FATAL(json_array_size(json_object_get(r.json, "items")), N);
	for (i = 0; i < N; i++) {
		CU_ASSERT_EQUAL(item_status(&r, i), 201);
		CU_ASSERT_STRING_EQUAL(item_str(&r, i, "runId"), run[i]);
		ok = -1;
		CU_ASSERT_EQUAL(stored_results(exp[i], d_client, &ok), 1);
		CU_ASSERT_EQUAL(ok, (int)(i % 2));
	}
	api_resp_free(&r);
}

struct batch_arg {
	char run[30][64], exp[30][64];
	long status;
	size_t stored;
};

static void *batch_thread(void *arg)
{
	struct batch_arg *a = arg;
	char body[30 * 100 + 32];
	size_t len, i;
	struct api_resp r;

	len = (size_t)sprintf(body, "{\"results\":[");
	for (i = 0; i < 30; i++)
		len += (size_t)sprintf(body + len, "%s{\"runId\":\"%s\",\"ok\":true}", i ? "," : "",
				       a->run[i]);
	sprintf(body + len, "]}");
	if (api_json("POST", "/api/v1/results:batch", d_ctok, body, &r) == 0) {
		a->status = r.status;
		for (i = 0; i < 30; i++)
			a->stored += item_status(&r, i) == 201;
	}
	api_resp_free(&r);
	return NULL;
}

static void test_batch_concurrent(void)
{
	enum { T = 4 };
	struct batch_arg *a = calloc(T, sizeof(*a));
	pthread_t th[T];
	size_t i, j;

	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	for (i = 0; i < T; i++)
		for (j = 0; j < 30; j++)
			CU_ASSERT_FATAL(
				api_seed_run(d_client, d_server, a[i].exp[j], a[i].run[j]) == 0);
	/* Batches in flight together share the writer's group commits. */
	for (i = 0; i < T; i++)
		CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, batch_thread, &a[i]), 0);
	for (i = 0; i < T; i++) {
		pthread_join(th[i], NULL);
		CU_ASSERT_EQUAL(a[i].status, 200);
		CU_ASSERT_EQUAL(a[i].stored, 30);
		for (j = 0; j < 30; j++)
			CU_ASSERT_EQUAL(stored_results(a[i].exp[j], d_client, NULL), 1);
	}
	free(a);
}

static void test_batch_refused(void)
{
	size_t n = 1001, i, len = 0, big = 70000;
	char *body = malloc(big + 64);
	struct api_resp r;

	CU_ASSERT_PTR_NOT_NULL_FATAL(body);
	/* More than 1000 results. */
	len = (size_t)sprintf(body, "{\"results\":[");
	for (i = 0; i < n; i++)
		len += (size_t)sprintf(body + len, "%s{\"runId\":\"r%zu\"}", i ? "," : "", i);
	sprintf(body + len, "]}");
	CU_ASSERT_EQUAL(api_json("POST", "/api/v1/results:batch", d_ctok, body, &r), 0);
	API_ASSERT_ERROR(&r, 413, "1001 results: a batch carries at most 1000", "results");
	api_resp_free(&r);
	/* More than max_body_bytes (64 KiB in these tests). */
	len = (size_t)sprintf(body, "{\"results\":[{\"runId\":\"r\",\"error\":\"");
	memset(body + len, 'x', big - len);
	sprintf(body + big, "\"}]}");
	CU_ASSERT_EQUAL(api_json("POST", "/api/v1/results:batch", d_ctok, body, &r), 0);
	API_ASSERT_ERROR(&r, 413, "is over the limit of 65536 bytes", NULL);
	api_resp_free(&r);
	free(body);
	/* Bad bodies: the field is named. */
	CU_ASSERT_EQUAL(api_json("POST", "/api/v1/results:batch", d_ctok,
				 "{\"results\":[{\"runId\":\"r\",\"metrics\":3}]}", &r),
			0);
	API_ASSERT_ERROR(&r, 400, "metrics", "results[0].metrics");
	api_resp_free(&r);
	CU_ASSERT_EQUAL(api_json("POST", "/api/v1/results:batch", d_ctok, "{\"results\":{}}", &r),
			0);
	API_ASSERT_ERROR(&r, 400, "results", "results");
	api_resp_free(&r);
	CU_ASSERT_EQUAL(api_json("POST", "/api/v1/results:batch", d_ctok, "{}", &r), 0);
	API_ASSERT_ERROR(&r, 400, "results is empty", "results");
	api_resp_free(&r);
	/* Agents only. */
	CU_ASSERT_EQUAL(api_json("POST", "/api/v1/results:batch", d_viewer,
				 "{\"results\":[{\"runId\":\"r\"}]}", &r),
			0);
	CU_ASSERT(r.status == 401 || r.status == 403);
	api_resp_free(&r);
}

static const struct fj_test result_tests[] = {
	{ "durable_then_duplicate", test_result_durable },
	{ "refused", test_result_refused },
	{ "concurrent", test_result_concurrent },
	{ "batch_mixed", test_batch_mixed },
	{ "batch_many", test_batch_many },
	{ "batch_concurrent", test_batch_concurrent },
	{ "batch_refused", test_batch_refused },
	{ NULL, NULL },
};

const struct fj_suite fj_suite_api_results = { "api_results", data_start, data_stop, result_tests };

/* ---- api_queries ------------------------------------------------------------------ */

static char q_exp[64], q_run1[64], q_run2[64];

static int queries_start(void)
{
	struct api_resp r;

	if (data_start() < 0)
		return -1;
	if (api_seed_pair(d_client, d_server, q_exp, q_run1, q_run2) < 0)
		return -1;
	if (post_result(d_ctok, q_run1, NULL, &r) != 201)
		return -1;
	api_resp_free(&r);
	return 0;
}

static const char *api_str_at(json_t *arr, size_t i, const char *key)
{
	const char *s = json_string_value(json_object_get(json_array_get(arr, i), key));

	return s ? s : "";
}

static size_t count_lines(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static void test_runs_filters(void)
{
	struct api_hdrs csv = { "text/csv", { NULL } };
	char path[256];
	struct api_resp r;
	json_t *runs;

	snprintf(path, sizeof(path), "/api/v1/runs?experiment=%s", q_exp);
	CU_ASSERT_EQUAL(api_json("GET", path, d_viewer, NULL, &r), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_EQUAL(json_array_size(json_object_get(r.json, "runs")), 2);
	api_resp_free(&r);
	snprintf(path, sizeof(path), "/api/v1/runs?experiment=%s&state=succeeded", q_exp);
	CU_ASSERT_EQUAL(api_json("GET", path, d_viewer, NULL, &r), 0);
	runs = json_object_get(r.json, "runs");
	CU_ASSERT_EQUAL(json_array_size(runs), 1);
	CU_ASSERT_STRING_EQUAL(api_str_at(runs, 0, "id"), q_run1);
	api_resp_free(&r);
	snprintf(path, sizeof(path),
		 "/api/v1/runs?experiment=%s&state=pending,succeeded&stack=kernel&family=ipv4"
		 "&isp=telenor&from=2000-01-01T00:00:00Z&limit=1",
		 q_exp);
	CU_ASSERT_EQUAL(api_json("GET", path, d_viewer, NULL, &r), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_EQUAL(json_array_size(json_object_get(r.json, "runs")), 1);
	api_resp_free(&r);
	snprintf(path, sizeof(path), "/api/v1/runs?experiment=%s&stack=tcp", q_exp);
	CU_ASSERT_EQUAL(api_json("GET", path, d_viewer, NULL, &r), 0);
	CU_ASSERT_EQUAL(json_array_size(json_object_get(r.json, "runs")), 0);
	api_resp_free(&r);
	snprintf(path, sizeof(path), "/api/v1/runs?experiment=%s", q_exp);
	CU_ASSERT_EQUAL(api_call("GET", path, d_viewer, NULL, NULL, 0, &csv, &r), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_STRING_EQUAL(r.ctype, "text/csv; charset=utf-8");
	CU_ASSERT_EQUAL(strncmp(r.body, "run_id,experiment_id,type,stack,", 32), 0);
	CU_ASSERT_EQUAL(count_lines(r.body), 3);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.body, ",echo,kernel,"));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.body, ",telenor>uninett/ipv4,"));
	api_resp_free(&r);
	snprintf(path, sizeof(path), "/api/v1/runs/%s", q_run2);
	CU_ASSERT_EQUAL(api_json("GET", path, d_viewer, NULL, &r), 0);
	CU_ASSERT_STRING_EQUAL(api_str(&r, "clientAgentId"), d_server);
	api_resp_free(&r);
	CU_ASSERT_EQUAL(api_json("GET", "/api/v1/runs/nope", d_viewer, NULL, &r), 0);
	API_ASSERT_ERROR(&r, 404, "run 'nope' not found", NULL);
	api_resp_free(&r);
}

static void test_bad_filters(void)
{
	static const struct {
		const char *query, *msg, *field;
	} cases[] = {
		{ "state=bogus", "query parameter 'state': 'bogus' is not a comma-separated list",
		  "state" },
		{ "family=ipv5", "query parameter 'family': 'ipv5' is not ipv4 or ipv6", "family" },
		{ "stack=quic", "query parameter 'stack': 'quic' is not bundled, kernel or tcp",
		  "stack" },
		{ "from=yesterday", "query parameter 'from': 'yesterday' is not RFC 3339", "from" },
		{ "from=2000&to=1000", "query parameter 'to': must be after from", "to" },
		{ "limit=10001", "'10001' is not an integer in 1..10000", "limit" },
		{ "offset=-1", "query parameter 'offset': '-1' is not an integer", "offset" },
		{ "site=", "query parameter 'site': must be 1 to 128 characters", "site" },
		{ "sort=up", "unknown query parameter 'sort'", "sort" },
	};
	char path[256];
	struct api_resp r;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(path, sizeof(path), "/api/v1/results?%s", cases[i].query);
		CU_ASSERT_EQUAL(api_json("GET", path, d_viewer, NULL, &r), 0);
		API_ASSERT_ERROR(&r, 400, cases[i].msg, cases[i].field);
		api_resp_free(&r);
	}
}

static void test_results_query(void)
{
	struct api_hdrs csv = { "text/csv", { NULL } };
	char path[256];
	struct api_resp r;
	json_t *row;

	snprintf(path, sizeof(path), "/api/v1/results?experiment=%s", q_exp);
	CU_ASSERT_EQUAL(api_json("GET", path, d_viewer, NULL, &r), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_EQUAL(json_array_size(json_object_get(r.json, "rows")), 1);
	row = json_array_get(json_object_get(r.json, "rows"), 0);
	CU_ASSERT_STRING_EQUAL(
		json_string_value(json_object_get(json_object_get(row, "run"), "id")), q_run1);
	CU_ASSERT(json_is_true(json_object_get(json_object_get(row, "result"), "ok")));
	api_resp_free(&r);
	snprintf(path, sizeof(path), "/api/v1/results?experiment=%s&site=oslo", q_exp);
	CU_ASSERT_EQUAL(api_call("GET", path, d_viewer, NULL, NULL, 0, &csv, &r), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_PTR_NOT_NULL(strstr(
		r.body,
		",agent_id,ok,error,result_started,result_finished,goodput_bps,rtt_p50_us\r\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(
		r.body,
		",true,,1970-01-01T00:00:01.000Z,1970-01-01T00:00:02.000Z,1500000,2100\r\n"));
	CU_ASSERT_EQUAL(count_lines(r.body), 2);
	api_resp_free(&r);
}

static void test_aggregates(void)
{
	struct api_hdrs csv = { "text/csv", { NULL } };
	char path[256];
	struct api_resp r;
	json_t *row;

	snprintf(path, sizeof(path),
		 "/api/v1/aggregates?metric=goodput_bps&group_by=site_pair&experiment=%s", q_exp);
	CU_ASSERT_EQUAL(api_json("GET", path, d_viewer, NULL, &r), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_STRING_EQUAL(api_str(&r, "metric"), "goodput_bps");
	row = json_array_get(json_object_get(r.json, "rows"), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(row);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(row, "group")), "oslo->bergen");
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(row, "count")), "1");
	CU_ASSERT_DOUBLE_EQUAL(json_number_value(json_object_get(row, "mean")), 1500000, 1e-6);
	api_resp_free(&r);
	CU_ASSERT_EQUAL(api_call("GET", path, d_viewer, NULL, NULL, 0, &csv, &r), 0);
	CU_ASSERT_STRING_EQUAL(r.body,
			       "metric,group_by,group,count,mean,median,p95,min,max\r\n"
			       "goodput_bps,site_pair,oslo->bergen,1,1500000,1500000,1500000,"
			       "1500000,1500000\r\n");
	api_resp_free(&r);
	CU_ASSERT_EQUAL(api_json("GET", "/api/v1/aggregates?group_by=stack", d_viewer, NULL, &r),
			0);
	API_ASSERT_ERROR(&r, 400, "query parameter 'metric' is required", "metric");
	api_resp_free(&r);
	CU_ASSERT_EQUAL(api_json("GET", "/api/v1/aggregates?metric=x&group_by=colour", d_viewer,
				 NULL, &r),
			0);
	API_ASSERT_ERROR(&r, 400,
			 "'colour' is not site_pair, isp_pair, stack, scheduler or experiment",
			 "group_by");
	api_resp_free(&r);
}

static const struct fj_test query_tests[] = {
	{ "runs_filters", test_runs_filters },
	{ "bad_filters", test_bad_filters },
	{ "results", test_results_query },
	{ "aggregates", test_aggregates },
	{ NULL, NULL },
};

const struct fj_suite fj_suite_api_queries = { "api_queries", queries_start, data_stop,
					       query_tests };

/* ---- api_traces ----------------------------------------------------------------------- */

static char t_exp[64], t_run[64];
static unsigned char t_file[10000];
static char t_sha[65];

static int traces_start(void)
{
	size_t i;

	if (data_start() < 0)
		return -1;
	if (api_seed_run(d_client, d_server, t_exp, t_run) < 0)
		return -1;
	for (i = 0; i < sizeof(t_file); i++)
		t_file[i] = (unsigned char)(i * 7 + i / 251);
	ctl_auth_sha256_hex(t_file, sizeof(t_file), t_sha);
	return 0;
}

static long put_range(const char *tok, const char *name, size_t first, size_t last, size_t total,
		      const char *sha, const void *data, struct api_resp *r)
{
	char path[256], cr[96], sh[120];
	struct api_hdrs h = { NULL, { cr, sh, NULL } };

	snprintf(path, sizeof(path), "/api/v1/runs/%s/traces/%s", t_run, name);
	snprintf(cr, sizeof(cr), "Content-Range: bytes %zu-%zu/%zu", first, last, total);
	snprintf(sh, sizeof(sh), "X-Fjord-Sha256: %s", sha);
	if (api_call("PUT", path, tok, "application/vnd.tcpdump.pcap", data, last - first + 1, &h,
		     r) < 0)
		return -1;
	return r->status;
}

static void test_trace_resume(void)
{
	char path[256], stored[512];
	struct api_resp r;
	struct stat sb;

	CU_ASSERT_EQUAL(put_range(d_ctok, "client.pcap", 0, 3999, 10000, t_sha, t_file, &r), 308);
	CU_ASSERT_STRING_EQUAL(r.range, "bytes=0-3999");
	api_resp_free(&r);
	/* A gap: refused with what is held. */
	CU_ASSERT_EQUAL(
		put_range(d_ctok, "client.pcap", 6000, 9999, 10000, t_sha, t_file + 6000, &r), 409);
	API_ASSERT_ERROR(&r, 409,
			 "upload must continue at the byte held, not at 6000 (held: 4000 bytes)",
			 NULL);
	CU_ASSERT_STRING_EQUAL(r.range, "bytes=0-3999");
	api_resp_free(&r);
	CU_ASSERT_EQUAL(
		put_range(d_ctok, "client.pcap", 4000, 7999, 10000, t_sha, t_file + 4000, &r), 308);
	CU_ASSERT_STRING_EQUAL(r.range, "bytes=0-7999");
	api_resp_free(&r);
	snprintf(path, sizeof(path), "/api/v1/runs/%s/traces/client.pcap", t_run);
	CU_ASSERT_EQUAL(api_call("HEAD", path, d_ctok, NULL, NULL, 0, NULL, &r), 0);
	CU_ASSERT_EQUAL(r.status, 308);
	CU_ASSERT_STRING_EQUAL(r.range, "bytes=0-7999");
	api_resp_free(&r);
	CU_ASSERT_EQUAL(
		put_range(d_ctok, "client.pcap", 8000, 9999, 10000, t_sha, t_file + 8000, &r), 201);
	CU_ASSERT_STRING_EQUAL(api_str(&r, "sha256"), t_sha);
	CU_ASSERT_STRING_EQUAL(api_str(&r, "size"), "10000");
	CU_ASSERT_STRING_EQUAL(api_str(&r, "contentType"), "application/vnd.tcpdump.pcap");
	api_resp_free(&r);
	/* Content-addressed in the data directory. */
	snprintf(stored, sizeof(stored), "%s/traces/%.2s/%s", api_dir, t_sha, t_sha);
	CU_ASSERT_EQUAL(stat(stored, &sb), 0);
	CU_ASSERT_EQUAL(sb.st_size, 10000);
	CU_ASSERT_EQUAL(api_call("HEAD", path, d_ctok, NULL, NULL, 0, NULL, &r), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_STRING_EQUAL(r.sha, t_sha);
	api_resp_free(&r);
	CU_ASSERT_EQUAL(api_call("GET", path, d_viewer, NULL, NULL, 0, NULL, &r), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_EQUAL(r.len, sizeof(t_file));
	CU_ASSERT(r.len == sizeof(t_file) && memcmp(r.body, t_file, r.len) == 0);
	CU_ASSERT_STRING_EQUAL(r.ctype, "application/vnd.tcpdump.pcap");
	api_resp_free(&r);
	/* An upload retried after its 201 was lost: 200 with the stored trace. */
	CU_ASSERT_EQUAL(
		put_range(d_ctok, "client.pcap", 8000, 9999, 10000, t_sha, t_file + 8000, &r), 200);
	CU_ASSERT_STRING_EQUAL(api_str(&r, "sha256"), t_sha);
	api_resp_free(&r);
	snprintf(path, sizeof(path), "/api/v1/runs/%s/traces", t_run);
	CU_ASSERT_EQUAL(api_json("GET", path, d_viewer, NULL, &r), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_EQUAL(json_array_size(json_object_get(r.json, "traces")), 1);
	api_resp_free(&r);
}

static void test_trace_sha_mismatch(void)
{
	char wrong[65], path[256];
	struct api_resp r;

	memset(wrong, 'a', 64);
	wrong[64] = 0;
	CU_ASSERT_EQUAL(put_range(d_ctok, "bad.pcap", 0, 4999, 5000, wrong, t_file, &r), 422);
	API_ASSERT_ERROR(&r, 422, "SHA-256 of the uploaded file differs from X-Fjord-Sha256",
			 "X-Fjord-Sha256");
	api_resp_free(&r);
	snprintf(path, sizeof(path), "/api/v1/runs/%s/traces/bad.pcap", t_run);
	CU_ASSERT_EQUAL(api_call("HEAD", path, d_ctok, NULL, NULL, 0, NULL, &r), 0);
	CU_ASSERT_EQUAL(r.status, 308);
	CU_ASSERT_STRING_EQUAL(r.range, "");
	api_resp_free(&r);
	CU_ASSERT_EQUAL(api_call("GET", path, d_viewer, NULL, NULL, 0, NULL, &r), 0);
	API_ASSERT_ERROR(&r, 404, "no trace 'bad.pcap' for run", NULL);
	api_resp_free(&r);
}

static void test_trace_refused(void)
{
	char path[256], cr[96], sha1000[65];
	struct api_hdrs h = { NULL, { cr, NULL } };
	struct api_resp r;

	ctl_auth_sha256_hex(t_file, 1000, sha1000);
	CU_ASSERT_EQUAL(put_range(d_ctok, "big.pcap", 0, 99, 2 << 20, t_sha, t_file, &r), 413);
	API_ASSERT_ERROR(&r, 413, "trace of 2097152 bytes is over the limit of 1048576 bytes",
			 "Content-Range");
	api_resp_free(&r);
	CU_ASSERT_EQUAL(put_range(d_ctok, "bad$name", 0, 99, 100, t_sha, t_file, &r), 400);
	API_ASSERT_ERROR(&r, 400, "trace name must be 1 to 64 of [A-Za-z0-9._-]", "name");
	api_resp_free(&r);
	CU_ASSERT_EQUAL(put_range(d_otok, "x.pcap", 0, 99, 100, t_sha, t_file, &r), 403);
	API_ASSERT_ERROR(&r, 403, "is neither the client nor the server of run", NULL);
	api_resp_free(&r);
	CU_ASSERT_EQUAL(put_range(d_ctok, "x.pcap", 0, 99, 100, "12ab", t_file, &r), 400);
	API_ASSERT_ERROR(&r, 400, "X-Fjord-Sha256 must be the 64 hex digits", "X-Fjord-Sha256");
	api_resp_free(&r);
	CU_ASSERT_EQUAL(put_range(d_ctok, "x.pcap", 50, 10, 100, t_sha, t_file, &r), 400);
	api_resp_free(&r);
	snprintf(path, sizeof(path), "/api/v1/runs/%s/traces/x.pcap", t_run);
	CU_ASSERT_EQUAL(api_call("PUT", path, d_ctok, NULL, "abc", 3, NULL, &r), 0);
	API_ASSERT_ERROR(&r, 400, "Content-Range must be 'bytes FIRST-LAST/TOTAL'",
			 "Content-Range");
	api_resp_free(&r);
	snprintf(cr, sizeof(cr), "Content-Range: bytes 0-9/10");
	CU_ASSERT_EQUAL(api_call("PUT", path, d_ctok, NULL, "abc", 3, &h, &r), 0);
	API_ASSERT_ERROR(&r, 400, "X-Fjord-Sha256 must be", "X-Fjord-Sha256");
	api_resp_free(&r);
	/* Only digits: no blanks, no sign (sscanf would read "-1" as 2^64 - 1), no overflow. */
	{
		static const char *const malformed[] = { "bytes  0-9/10", "bytes 0-9/-1",
							 "bytes +0-9/10", "bytes 0-9/10 ",
							 "bytes 0-9/18446744073709551616" };
		size_t i;

		for (i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
			snprintf(cr, sizeof(cr), "Content-Range: %s", malformed[i]);
			CU_ASSERT_EQUAL(api_call("PUT", path, d_ctok, NULL, "abc", 3, &h, &r), 0);
			API_ASSERT_ERROR(&r, 400, "Content-Range must be 'bytes FIRST-LAST/TOTAL'",
					 "Content-Range");
			api_resp_free(&r);
		}
	}
	CU_ASSERT_EQUAL(put_range(d_ctok, "x.pcap", 0, 99, 100, t_sha, t_file, &r), 422);
	api_resp_free(&r);
	/* Another file under the same name: refused without Range unless it restarts at 0. */
	CU_ASSERT_EQUAL(put_range(d_ctok, "y.pcap", 0, 3999, 10000, t_sha, t_file, &r), 308);
	api_resp_free(&r);
	CU_ASSERT_EQUAL(put_range(d_ctok, "y.pcap", 4000, 4999, 9000, t_sha, t_file + 4000, &r),
			409);
	API_ASSERT_ERROR(&r, 409,
			 "a partial upload with another TOTAL or X-Fjord-Sha256 is held "
			 "(4000 bytes); restart from byte 0, not 4000",
			 NULL);
	CU_ASSERT_STRING_EQUAL(r.range, "");
	api_resp_free(&r);
	CU_ASSERT_EQUAL(put_range(d_ctok, "y.pcap", 0, 999, 1000, sha1000, t_file, &r), 201);
	CU_ASSERT_STRING_EQUAL(api_str(&r, "size"), "1000");
	api_resp_free(&r);
}

/* The state a crash leaves between an upload's last byte and its end: every byte of t_file
 * held as the partial upload of trace name, nothing stored. */
static void leave_cut_off(const char *name)
{
	char key_in[256], key[65], p[512];
	FILE *f;

	snprintf(key_in, sizeof(key_in), "%s\n%s", t_run, name);
	ctl_auth_sha256_hex(key_in, strlen(key_in), key);
	snprintf(p, sizeof(p), "%s/partial/%s", api_dir, key);
	f = fopen(p, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL(fwrite(t_file, 1, sizeof(t_file), f), sizeof(t_file));
	fclose(f);
	snprintf(p, sizeof(p), "%s/partial/%s.meta", api_dir, key);
	f = fopen(p, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fprintf(f, "%zu %s\n", sizeof(t_file), t_sha);
	fclose(f);
}

/* After such a crash HEAD says all is held; the client's next PUT finishes it without
 * resending, whether it sends everything again or only the last byte (as the agent does). */
static void test_trace_cut_off(void)
{
	char p[512];
	struct api_resp r;

	leave_cut_off("cut.pcap");
	snprintf(p, sizeof(p), "/api/v1/runs/%s/traces/cut.pcap", t_run);
	CU_ASSERT_EQUAL(api_call("HEAD", p, d_ctok, NULL, NULL, 0, NULL, &r), 0);
	CU_ASSERT_EQUAL(r.status, 308);
	CU_ASSERT_STRING_EQUAL(r.range, "bytes=0-9999");
	api_resp_free(&r);
	CU_ASSERT_EQUAL(put_range(d_ctok, "cut.pcap", 0, 9999, 10000, t_sha, t_file, &r), 201);
	CU_ASSERT_STRING_EQUAL(api_str(&r, "sha256"), t_sha);
	api_resp_free(&r);
	CU_ASSERT_EQUAL(api_call("GET", p, d_viewer, NULL, NULL, 0, NULL, &r), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT(r.len == sizeof(t_file) && memcmp(r.body, t_file, r.len) == 0);
	api_resp_free(&r);
	leave_cut_off("cut2.pcap");
	CU_ASSERT_EQUAL(put_range(d_ctok, "cut2.pcap", 9999, 9999, 10000, t_sha, t_file + 9999, &r),
			201);
	CU_ASSERT_STRING_EQUAL(api_str(&r, "size"), "10000");
	api_resp_free(&r);
	snprintf(p, sizeof(p), "/api/v1/runs/%s/traces/cut2.pcap", t_run);
	CU_ASSERT_EQUAL(api_call("GET", p, d_viewer, NULL, NULL, 0, NULL, &r), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT(r.len == sizeof(t_file) && memcmp(r.body, t_file, r.len) == 0);
	api_resp_free(&r);
}

static const struct fj_test trace_tests[] = {
	{ "resume", test_trace_resume },
	{ "sha_mismatch", test_trace_sha_mismatch },
	{ "refused", test_trace_refused },
	{ "cut_off_before_finish", test_trace_cut_off },
	{ NULL, NULL },
};

const struct fj_suite fj_suite_api_traces = { "api_traces", traces_start, data_stop, trace_tests };
