/* Helpers of the api_* suites: in-process controller and libcurl client. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <unistd.h>

#include "auth.h"
#include "fj_clock.h"
#include "fj_log.h"
#include "fj_test.h"
#include "test_api.h"

struct ctl_http *api_srv;
char api_dir[256];
static char base_url[64];

int api_start(void (*tweak)(struct ctl_config *cfg))
{
	const char *tmp = getenv("TMPDIR");
	struct ctl_config *cfg;
	char err[512], db[320];
	int r;

	fj_log_init("api-test", FJ_LOG_ERR);
	snprintf(api_dir, sizeof(api_dir), "%s/fjord-api-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(api_dir))
		return -1;
	snprintf(db, sizeof(db), "%s/fjord.db", api_dir);
	if (ctl_config_defaults(&cfg) < 0)
		return -1;
	ctl_config_set_str(&cfg->data_dir, api_dir);
	ctl_config_set_str(&cfg->database, db);
	cfg->port = 0;
	cfg->long_poll_max_s = 3;
	cfg->max_body_bytes = 65536;
	cfg->max_trace_bytes = 1 << 20;
	cfg->threads = 4;
	cfg->log_level = FJ_LOG_ERR;
	ctl_config_add_site(cfg, "oslo", API_SECRET_OSLO);
	ctl_config_add_site(cfg, "bergen", API_SECRET_BERGEN);
	if (tweak)
		tweak(cfg);
	r = ctl_http_create(cfg, &api_srv, err, sizeof(err));
	ctl_config_free(cfg);
	if (r < 0) {
		fprintf(stderr, "api_start: %s\n", err);
		return -1;
	}
	snprintf(base_url, sizeof(base_url), "http://127.0.0.1:%u", ctl_http_port(api_srv));
	return 0;
}

void api_stop(void)
{
	ctl_http_destroy(api_srv);
	api_srv = NULL;
	if (api_dir[0])
		fj_test_rmtree(api_dir);
	api_dir[0] = 0;
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct api_resp *r = arg;
	char *nb = realloc(r->body, r->len + size * n + 1);

	if (!nb)
		return 0;
	r->body = nb;
	memcpy(r->body + r->len, p, size * n);
	r->len += size * n;
	r->body[r->len] = 0;
	return size * n;
}

static void header_copy(const char *line, size_t n, const char *name, char *dst, size_t cap)
{
	size_t k = strlen(name);

	if (n > k + 1 && strncasecmp(line, name, k) == 0 && line[k] == ':') {
		const char *v = line + k + 1;
		size_t len = n - k - 1;

		while (len && (*v == ' '))
			v++, len--;
		while (len && (v[len - 1] == '\r' || v[len - 1] == '\n'))
			len--;
		snprintf(dst, cap, "%.*s", (int)len, v);
	}
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
	struct api_resp *r = arg;
	size_t len = size * n;

	header_copy(p, len, "Content-Type", r->ctype, sizeof(r->ctype));
	header_copy(p, len, "Range", r->range, sizeof(r->range));
	header_copy(p, len, "WWW-Authenticate", r->www_auth, sizeof(r->www_auth));
	header_copy(p, len, "Allow", r->allow, sizeof(r->allow));
	header_copy(p, len, "X-Fjord-Sha256", r->sha, sizeof(r->sha));
	return len;
}

void api_resp_free(struct api_resp *r)
{
	free(r->body);
	if (r->json)
		json_decref(r->json);
	memset(r, 0, sizeof(*r));
}

int api_call(const char *method, const char *path, const char *token, const char *ctype,
	     const void *body, size_t len, const struct api_hdrs *h, struct api_resp *r)
{
	struct curl_slist *hl = NULL;
	char url[512], line[256];
	uint64_t t0;
	CURLcode rc;
	CURL *c;
	size_t i;

	memset(r, 0, sizeof(*r));
	c = curl_easy_init();
	if (!c)
		return -1;
	snprintf(url, sizeof(url), "%s%s", base_url, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	if (body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	}
	if (token) {
		snprintf(line, sizeof(line), "Authorization: Bearer %s", token);
		hl = curl_slist_append(hl, line);
	}
	snprintf(line, sizeof(line), "Content-Type:%s%s", ctype ? " " : "", ctype ? ctype : "");
	hl = curl_slist_append(hl, line);
	hl = curl_slist_append(hl, "Expect:");
	if (h && h->accept) {
		snprintf(line, sizeof(line), "Accept: %s", h->accept);
		hl = curl_slist_append(hl, line);
	}
	for (i = 0; h && i < 4 && h->extra[i]; i++)
		hl = curl_slist_append(hl, h->extra[i]);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
	t0 = fj_mono_us();
	rc = curl_easy_perform(c);
	r->secs = (double)(fj_mono_us() - t0) / 1e6;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	curl_slist_free_all(hl);
	curl_easy_cleanup(c);
	if (rc != CURLE_OK) {
		fprintf(stderr, "api_call %s %s: %s\n", method, path, curl_easy_strerror(rc));
		return -1;
	}
	if (!r->body) {
		r->body = calloc(1, 1);
		if (!r->body)
			return -1;
	}
	if (strncmp(r->ctype, "application/json", 16) == 0)
		r->json = json_loadb(r->body, r->len, 0, NULL);
	return 0;
}

int api_json(const char *method, const char *path, const char *token, const char *json,
	     struct api_resp *r)
{
	return api_call(method, path, token, json ? "application/json" : NULL, json,
			json ? strlen(json) : 0, NULL, r);
}

const char *api_str(const struct api_resp *r, const char *key)
{
	const char *s = r->json ? json_string_value(json_object_get(r->json, key)) : NULL;

	return s ? s : "";
}

void api_assert_error(const struct api_resp *r, long status, const char *msg, const char *field,
		      const char *file, int line)
{
	const char *m = api_str(r, "message");
	json_int_t st = r->json ? json_integer_value(json_object_get(r->json, "status")) : 0;
	char what[256];

	snprintf(what, sizeof(what), "%s:%d: status %ld (want %ld), body %.160s", file, line,
		 r->status, status, r->body ? r->body : "");
	CU_assertImplementation(r->status == status, (unsigned)line, what, file, "", CU_FALSE);
	CU_assertImplementation(st == status, (unsigned)line, "Error.status matches the status",
				file, "", CU_FALSE);
	snprintf(what, sizeof(what), "%s:%d: message '%s' contains '%s'", file, line, m, msg);
	CU_assertImplementation(strstr(m, msg) != NULL, (unsigned)line, what, file, "", CU_FALSE);
	if (field) {
		snprintf(what, sizeof(what), "%s:%d: field '%s' is '%s'", file, line,
			 api_str(r, "field"), field);
		CU_assertImplementation(strcmp(api_str(r, "field"), field) == 0, (unsigned)line,
					what, file, "", CU_FALSE);
	}
}

int api_user_token(const char *role, char *tok)
{
	Fjord__V1__Role rl = FJORD__V1__ROLE__ROLE_VIEWER;

	ctl_auth_role_parse(role, &rl);
	return ctl_http_token_create(ctl_http_store(api_srv), rl, role, tok) == 0 ? 0 : -1;
}

long api_enroll(const char *site, const char *node, const char *secret, char *id, char *tok)
{
	struct api_resp r;
	char body[512];
	long st;

	snprintf(
		body, sizeof(body),
		"{\"site\":\"%s\",\"node\":\"%s\",\"secret\":\"%s\",\"version\":\"test\","
		"\"stacks\":[\"STACK_KERNEL\"],\"interfaces\":["
		"{\"name\":\"eth0\",\"isp\":\"telenor\",\"addresses\":[\"10.1.%zu.2/24\"],\"up\":true},"
		"{\"name\":\"eth1\",\"isp\":\"uninett\",\"addresses\":[\"10.2.%zu.2/24\"],\"up\":true}]}",
		site, node, secret, strlen(node), strlen(node));
	if (api_json("POST", "/api/v1/enroll", NULL, body, &r) < 0)
		return -1;
	st = r.status;
	if (st == 200) {
		snprintf(id, 64, "%s", api_str(&r, "agentId"));
		snprintf(tok, CTL_TOKEN_HEX + 1, "%s", api_str(&r, "token"));
	}
	api_resp_free(&r);
	return st;
}

/* One experiment with a run client -> server and, when run2 is not NULL, one back. */
static int seed(const char *client, const char *server, char *exp_id, char *run_id, char *run2)
{
	static int seq;
	Fjord__V1__ExperimentSpec spec = FJORD__V1__EXPERIMENT_SPEC__INIT;
	Fjord__V1__EchoParams echo = FJORD__V1__ECHO_PARAMS__INIT;
	Fjord__V1__Experiment exp = FJORD__V1__EXPERIMENT__INIT;
	Fjord__V1__Run run[2], *runs[2] = { &run[0], &run[1] };
	Fjord__V1__Path path = FJORD__V1__PATH__INIT, *paths[1] = { &path };
	Fjord__V1__Agent *ca = NULL, *sa = NULL;
	struct ctl_store *st = ctl_http_store(api_srv);
	int64_t now = fj_wall_ms();
	int r, i;

	if (ctl_store_agent_get(st, client, &ca) < 0 || ctl_store_agent_get(st, server, &sa) < 0) {
		if (ca)
			protobuf_c_message_free_unpacked(&ca->base, NULL);
		return -1;
	}
	seq++;
	snprintf(exp_id, 64, "exp-seed-%d-%lld", seq, (long long)now);
	snprintf(run_id, 64, "run-seed-%d-%lld", seq, (long long)now);
	if (run2)
		snprintf(run2, 64, "run-seed-%d-%lld-back", seq, (long long)now);
	echo.count = 3;
	echo.message_bytes = 100;
	spec.name = (char *)"seeded";
	spec.type = FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_ECHO;
	spec.params_case = FJORD__V1__EXPERIMENT_SPEC__PARAMS_ECHO;
	spec.echo = &echo;
	exp.id = exp_id;
	exp.spec = &spec;
	exp.state = FJORD__V1__EXPERIMENT_STATE__EXPERIMENT_STATE_ACTIVE;
	exp.owner = (char *)"test";
	exp.created_ms = now;
	exp.runs_total = run2 ? 2 : 1;
	path.local_isp = (char *)"telenor";
	path.remote_isp = (char *)"uninett";
	path.family = FJORD__V1__ADDRESS_FAMILY__ADDRESS_FAMILY_IPV4;
	for (i = 0; i < 2; i++) {
		fjord__v1__run__init(&run[i]);
		run[i].id = i ? run2 : run_id;
		run[i].experiment_id = exp_id;
		run[i].type = spec.type;
		run[i].stack = FJORD__V1__STACK__STACK_KERNEL;
		run[i].client_agent_id = (char *)(i ? server : client);
		run[i].server_agent_id = (char *)(i ? client : server);
		run[i].client_site = i ? sa->site : ca->site;
		run[i].server_site = i ? ca->site : sa->site;
		run[i].paths = paths;
		run[i].n_paths = 1;
		run[i].sequence = (uint32_t)i;
		run[i].state = FJORD__V1__RUN_STATE__RUN_STATE_PENDING;
		/* Due in an hour, so the scheduler leaves them alone during the test. */
		run[i].due_ms = now + 3600 * 1000 + i;
		run[i].deadline_ms = now + 7200 * 1000;
	}
	r = ctl_store_experiment_create(st, &exp, runs, run2 ? 2 : 1);
	protobuf_c_message_free_unpacked(&ca->base, NULL);
	protobuf_c_message_free_unpacked(&sa->base, NULL);
	return r < 0 ? -1 : 0;
}

int api_seed_run(const char *client, const char *server, char *exp_id, char *run_id)
{
	return seed(client, server, exp_id, run_id, NULL);
}

int api_seed_pair(const char *client, const char *server, char *exp_id, char *run_id, char *back)
{
	return seed(client, server, exp_id, run_id, back);
}
