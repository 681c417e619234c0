/*
 * Suites api_config, api_auth, api_poll, api_errors and api_metrics: the
 * controller's configuration, credentials, long polls, the answer to every
 * bad input, and /metrics, over real HTTP on loopback.
 */
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "auth.h"
#include "fj_clock.h"
#include "fj_log.h"
#include "fj_test.h"
#include "test_api.h"

static int start(void)
{
	return api_start(NULL) < 0 ? -1 : 0;
}

static int stop(void)
{
	api_stop();
	return 0;
}

/* ---- api_config ---------------------------------------------------------- */

static void test_config_sample(void)
{
	struct ctl_config *cfg = NULL;
	char err[512];

	CU_ASSERT_EQUAL_FATAL(
		ctl_config_load("deploy/fjord-controller.cfg", &cfg, err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(cfg->listen, "0.0.0.0");
	CU_ASSERT_EQUAL(cfg->port, 8420);
	CU_ASSERT_EQUAL(cfg->long_poll_max_s, 30);
	CU_ASSERT_EQUAL(cfg->max_body_bytes, 1048576);
	CU_ASSERT_EQUAL(cfg->n_sites, 2);
	CU_ASSERT_PTR_NULL(cfg->tls_cert);
	CU_ASSERT_STRING_EQUAL(cfg->database, "/var/lib/fjord-controller/fjord.db");
	ctl_config_free(cfg);
}

/* Writes text to a temporary file and loads it; returns the error text. */
static int load_text(const char *text, char *err, size_t len, struct ctl_config **out)
{
	char path[] = "/tmp/fjord-cfg-XXXXXX";
	int fd = mkstemp(path), r;

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	close(fd);
	r = ctl_config_load(path, out, err, len);
	unlink(path);
	return r;
}

static void test_config_errors(void)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
		{ "port = 70000;", "setting 'port': 70000 is out of range 0..65535" },
		{ "port = \"80\";", "setting 'port': must be an integer" },
		{ "listen = \"localhost\";",
		  "setting 'listen': 'localhost' is not a numeric IPv4" },
		{ "long_poll_max_s = 0;", "setting 'long_poll_max_s': 0 is out of range 1..300" },
		{ "max_body_bytes = 10;", "setting 'max_body_bytes': 10 is out of range" },
		{ "max_trace_bytes = -1;", "setting 'max_trace_bytes': -1 is out of range" },
		{ "threads = 0;", "setting 'threads': 0 is out of range 1..64" },
		{ "log_level = \"loud\";", "setting 'log_level': must be \"err\"" },
		{ "colour = 1;", "setting 'colour': unknown setting" },
		{ "data_dir = \"\";", "setting 'data_dir': must not be empty" },
		{ "tls_cert = \"/x.pem\";",
		  "setting 'tls_key': tls_cert and tls_key must be given together" },
		{ "sites = ( { name = \"oslo\"; secret = \"short\"; } );",
		  "setting 'sites[0]': secret of site 'oslo' is shorter than 16" },
		{ "sites = ( { name = \"o s\"; secret = \"0123456789abcdef\"; } );",
		  "setting 'sites[0]': site name 'o s' must be" },
		{ "sites = ( { name = \"a\"; secret = \"0123456789abcdef\"; },\n"
		  "{ name = \"a\"; secret = \"0123456789abcdef\"; } );",
		  "setting 'sites[1]': site 'a' is listed twice" },
		{ "sites = ( { name = \"a\"; } );", "setting 'sites[0]': must hold exactly" },
		{ "sites = { a = \"0123456789abcdef\"; };", "setting 'sites': must be a list" },
		{ "port = ;\n", "syntax error" },
	};
	struct ctl_config *cfg;
	char err[512];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cfg = NULL;
		CU_ASSERT_EQUAL(load_text(cases[i].text, err, sizeof(err), &cfg), -EINVAL);
		CU_ASSERT_PTR_NULL(cfg);
		if (!strstr(err, cases[i].want))
			fprintf(stderr, "\ncase %zu: got '%s', want '%s'\n", i, err, cases[i].want);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, cases[i].want));
		CU_ASSERT_PTR_NOT_NULL(strstr(err, "fjord-cfg-"));
		/* The same text from memory: the same refusal, under the given name. */
		cfg = NULL;
		CU_ASSERT_EQUAL(ctl_config_parse(cases[i].text, "mem.cfg", &cfg, err, sizeof(err)),
				-EINVAL);
		CU_ASSERT_PTR_NULL(cfg);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, cases[i].want));
		CU_ASSERT_EQUAL(strncmp(err, "mem.cfg:", 8), 0);
	}
	CU_ASSERT_EQUAL(ctl_config_load("/nonexistent/fjord.cfg", &cfg, err, sizeof(err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "/nonexistent/fjord.cfg: cannot read the file"));
}

static void test_config_defaults(void)
{
	struct ctl_config *cfg = NULL;
	char err[512];

	CU_ASSERT_EQUAL_FATAL(load_text("data_dir = \"/srv/fj\";\n", err, sizeof(err), &cfg), 0);
	CU_ASSERT_STRING_EQUAL(cfg->database, "/srv/fj/fjord.db");
	CU_ASSERT_STRING_EQUAL(cfg->listen, "127.0.0.1");
	CU_ASSERT_EQUAL(cfg->max_trace_bytes, 256ull << 20);
	CU_ASSERT_EQUAL(cfg->log_level, FJ_LOG_INFO);
	ctl_config_free(cfg);
}

static void bad_listen(struct ctl_config *cfg)
{
	ctl_config_set_str(&cfg->tls_cert, "/nonexistent/cert.pem");
	ctl_config_set_str(&cfg->tls_key, "/nonexistent/key.pem");
}

static void test_config_tls_missing(void)
{
	struct ctl_config *cfg;
	struct ctl_http *h = NULL;
	char err[512];

	CU_ASSERT_EQUAL_FATAL(ctl_config_defaults(&cfg), 0);
	ctl_config_set_str(&cfg->data_dir, "/tmp");
	ctl_config_set_str(&cfg->database, ":memory:");
	cfg->port = 0;
	bad_listen(cfg);
	CU_ASSERT_NOT_EQUAL(ctl_http_create(cfg, &h, err, sizeof(err)), 0);
	CU_ASSERT_PTR_NULL(h);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "tls_cert: cannot read '/nonexistent/cert.pem'"));
	ctl_config_free(cfg);
}

/* A self-signed P-256 certificate for 127.0.0.1, valid until 2126: test data only. */
static const char tls_cert[] = "-----BEGIN CERTIFICATE-----\n"
			       "MIIBkDCCATagAwIBAgIUINnyEcJBMBjBxROP1xwWraPcy5owCgYIKoZIzj0EAwIw\n"
			       "FDESMBAGA1UEAwwJMTI3LjAuMC4xMCAXDTI2MTEyNjIxMDIzMFoYDzIxMjYxMTAy\n"
			       "MjEwMjMwWjAUMRIwEAYDVQQDDAkxMjcuMC4wLjEwWTATBgcqhkjOPQIBBggqhkjO\n"
			       "PQMBBwNCAAT38RbI9YfCfIAIbCPBG6tYQ42d0G0BRXx4HYELyIOLtExxae1aKqZ6\n"
			       "pZ4V+V9ESIJKP78KY9ayPaZXb5Ww8kQyo2QwYjAdBgNVHQ4EFgQU9Wl7J3YCYorD\n"
			       "b4c5xjp/9gqXhjYwHwYDVR0jBBgwFoAU9Wl7J3YCYorDb4c5xjp/9gqXhjYwDwYD\n"
			       "VR0TAQH/BAUwAwEB/zAPBgNVHREECDAGhwR/AAABMAoGCCqGSM49BAMCA0gAMEUC\n"
			       "IQCf0iz+V29XIL9khfaWq0ZXjgu0sRjolmEn0vjcnh9jqwIgZ29k2oxLg809gx2x\n"
			       "Mq0WZ11nDATX5ULk/1pOVEBM58g=\n"
			       "-----END CERTIFICATE-----\n";
static const char tls_key[] = "-----BEGIN PRIVATE KEY-----\n"
			      "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgB5Yev46smx2QURMa\n"
			      "kawUGIR5PsaRSk/6a+e//iR3LsChRANCAAT38RbI9YfCfIAIbCPBG6tYQ42d0G0B\n"
			      "RXx4HYELyIOLtExxae1aKqZ6pZ4V+V9ESIJKP78KY9ayPaZXb5Ww8kQy\n"
			      "-----END PRIVATE KEY-----\n";

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs(text, f);
	fclose(f);
}

static size_t keep_body(char *p, size_t size, size_t n, void *arg)
{
	char *buf = arg;
	size_t have = strlen(buf), len = size * n;

	if (have + len < 512) {
		memcpy(buf + have, p, len);
		buf[have + len] = 0;
	}
	return len;
}

/* GET /healthz over https (checking the server against cert) or plain http. */
static long healthz_over(const char *scheme, uint16_t port, const char *cert, char *body)
{
	char url[128];
	long status = 0;
	CURL *c = curl_easy_init();
	CURLcode rc;

	body[0] = 0;
	snprintf(url, sizeof(url), "%s://127.0.0.1:%u/healthz", scheme, port);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CAINFO, cert);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, keep_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 5L);
	rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	return rc == CURLE_OK ? status : -1;
}

static void test_config_tls(void)
{
	char dir[] = "/tmp/fjord-tls-XXXXXX", cert[64], key[64], db[64], err[512], body[512];
	struct ctl_config *cfg;
	struct ctl_http *h = NULL;

	fj_log_init("api-test", FJ_LOG_ERR);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
	snprintf(cert, sizeof(cert), "%s/c.pem", dir);
	snprintf(key, sizeof(key), "%s/k.pem", dir);
	snprintf(db, sizeof(db), "%s/fjord.db", dir);
	write_file(cert, tls_cert);
	write_file(key, tls_key);
	CU_ASSERT_EQUAL_FATAL(ctl_config_defaults(&cfg), 0);
	ctl_config_set_str(&cfg->data_dir, dir);
	ctl_config_set_str(&cfg->database, db);
	ctl_config_set_str(&cfg->tls_cert, cert);
	ctl_config_set_str(&cfg->tls_key, key);
	cfg->port = 0;
	cfg->log_level = FJ_LOG_ERR;
	CU_ASSERT_EQUAL(ctl_http_create(cfg, &h, err, sizeof(err)), 0);
	ctl_config_free(cfg);
	if (h) {
		CU_ASSERT_EQUAL(healthz_over("https", ctl_http_port(h), cert, body), 200);
		CU_ASSERT_PTR_NOT_NULL(strstr(body, "\"status\":\"ok\""));
		/* Plain HTTP to the TLS port gets no HTTP answer. */
		CU_ASSERT_NOT_EQUAL(healthz_over("http", ctl_http_port(h), cert, body), 200);
		ctl_http_destroy(h);
	}
	fj_test_rmtree(dir);
}

/* The binary: a bad setting is a message naming it and exit status 1. */
static void test_config_exit_code(void)
{
	char path[] = "/tmp/fjord-cfg-XXXXXX", cmd[256], out[512] = "";
	int fd, status;
	FILE *p;
	size_t n;

	/* Before the file exists, so that a missing binary leaves nothing behind. */
	CU_ASSERT_EQUAL_FATAL(access("build/fjord-controller", X_OK), 0);
	fd = mkstemp(path);
	CU_ASSERT_FATAL(fd >= 0);
	if (write(fd, "threads = 500;\n", 15) != 15) {
		close(fd);
		unlink(path);
		CU_FAIL_FATAL("cannot write the test's config file");
	}
	close(fd);
	snprintf(cmd, sizeof(cmd), "build/fjord-controller -c %s 2>&1", path);
	p = popen(cmd, "r");
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = 0;
	status = pclose(p);
	unlink(path);
	CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, ":1: setting 'threads': 500 is out of range 1..64"));
	snprintf(cmd, sizeof(cmd), "build/fjord-controller --bogus >/dev/null 2>&1");
	status = system(cmd);
	CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 2);
}

static const struct fj_test config_tests[] = {
	{ "sample", test_config_sample },
	{ "errors", test_config_errors },
	{ "defaults", test_config_defaults },
	{ "tls_missing", test_config_tls_missing },
	{ "tls", test_config_tls },
	{ "exit_code", test_config_exit_code },
	{ NULL, NULL },
};

const struct fj_suite fj_suite_api_config = { "api_config", NULL, NULL, config_tests };

/* ---- api_auth ------------------------------------------------------------- */

static void test_enroll_good(void)
{
	char id[64], tok[65], id2[64], tok2[65], body[512];
	struct api_resp r;

	CU_ASSERT_EQUAL_FATAL(api_enroll("oslo", "node1", API_SECRET_OSLO, id, tok), 200);
	CU_ASSERT(id[0] != 0);
	CU_ASSERT_EQUAL(strlen(tok), 64);
	CU_ASSERT_EQUAL(strspn(tok, "0123456789abcdef"), 64);
	/* Enrolling again keeps the id and replaces the token. */
	CU_ASSERT_EQUAL_FATAL(api_enroll("oslo", "node1", API_SECRET_OSLO, id2, tok2), 200);
	CU_ASSERT_STRING_EQUAL(id, id2);
	CU_ASSERT_STRING_NOT_EQUAL(tok, tok2);
	snprintf(body, sizeof(body), "{\"waitS\":0," API_IFACES "}");
	CU_ASSERT_EQUAL(api_json("POST", "/api/v1/poll", tok, body, &r), 0);
	API_ASSERT_ERROR(&r, 401, "unknown agent token", NULL);
	api_resp_free(&r);
	CU_ASSERT_EQUAL(api_json("POST", "/api/v1/poll", tok2, body, &r), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	api_resp_free(&r);
}

static void test_enroll_bad(void)
{
	struct api_resp r;
	char id[64], tok[65];

	CU_ASSERT_EQUAL(api_enroll("oslo", "n2", API_SECRET_BERGEN, id, tok), 401);
	CU_ASSERT_EQUAL(api_enroll("tromso", "n2", API_SECRET_OSLO, id, tok), 401);
	CU_ASSERT_EQUAL(
		api_json("POST", "/api/v1/enroll", NULL,
			 "{\"site\":\"oslo\",\"node\":\"n2\",\"secret\":\"wrong-secret-1234\"}",
			 &r),
		0);
	API_ASSERT_ERROR(&r, 401, "enrollment refused: unknown site 'oslo' or wrong secret",
			 "secret");
	api_resp_free(&r);
	CU_ASSERT_EQUAL(api_json("POST", "/api/v1/enroll", NULL,
				 "{\"site\":\"oslo\",\"node\":\"n2\"}", &r),
			0);
	API_ASSERT_ERROR(&r, 401, "enrollment secret is missing", "secret");
	api_resp_free(&r);
	CU_ASSERT_EQUAL(api_json("POST", "/api/v1/enroll", NULL,
				 "{\"site\":\"oslo\",\"secret\":\"" API_SECRET_OSLO "\"}", &r),
			0);
	API_ASSERT_ERROR(&r, 400, "node is required", "node");
	api_resp_free(&r);
	CU_ASSERT_EQUAL(api_json("POST", "/api/v1/enroll", NULL,
				 "{\"site\":\"oslo\",\"node\":\"a/b\",\"secret\":\"" API_SECRET_OSLO
				 "\"}",
				 &r),
			0);
	API_ASSERT_ERROR(&r, 400, "node must be 1 to 64 of", "node");
	api_resp_free(&r);
}

static void test_user_roles(void)
{
	char viewer[65], exper[65], admin[65], id[64], atok[65];
	struct api_hdrs basic = { NULL, { "Authorization: Basic dXNlcjpwdw==", NULL } };
	struct api_resp r;

	CU_ASSERT_FATAL(api_user_token("viewer", viewer) == 0);
	CU_ASSERT_FATAL(api_user_token("experimenter", exper) == 0);
	CU_ASSERT_FATAL(api_user_token("admin", admin) == 0);
	CU_ASSERT_EQUAL_FATAL(api_enroll("bergen", "b1", API_SECRET_BERGEN, id, atok), 200);

	CU_ASSERT_EQUAL(api_json("GET", "/api/v1/agents", NULL, NULL, &r), 0);
	API_ASSERT_ERROR(&r, 401, "missing credentials: send 'Authorization: Bearer TOKEN'", NULL);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.www_auth, "Bearer"));
	api_resp_free(&r);
	CU_ASSERT_EQUAL(api_json("GET", "/api/v1/agents",
				 "0000000000000000000000000000000000000000000000000000000000000000",
				 NULL, &r),
			0);
	API_ASSERT_ERROR(&r, 401, "unknown or revoked API token", NULL);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.www_auth, "Bearer"));
	api_resp_free(&r);
	CU_ASSERT_EQUAL(api_call("GET", "/api/v1/agents", NULL, NULL, NULL, 0, &basic, &r), 0);
	API_ASSERT_ERROR(&r, 401, "the Authorization header must be 'Bearer TOKEN'", NULL);
	api_resp_free(&r);

	CU_ASSERT_EQUAL(api_json("GET", "/api/v1/agents", viewer, NULL, &r), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT(json_array_size(json_object_get(r.json, "agents")) >= 1);
	api_resp_free(&r);
	CU_ASSERT_EQUAL(api_json("POST", "/api/v1/experiments", viewer, "{}", &r), 0);
	API_ASSERT_ERROR(&r, 403,
			 "has role viewer; POST /api/v1/experiments needs role experimenter", NULL);
	api_resp_free(&r);
	CU_ASSERT_EQUAL(api_json("POST", "/api/v1/experiments/x/cancel", viewer, NULL, &r), 0);
	API_ASSERT_ERROR(&r, 403, "needs role experimenter", NULL);
	api_resp_free(&r);
	/* Experimenters and admins pass the role check and reach the route. */
	CU_ASSERT_EQUAL(api_json("POST", "/api/v1/experiments/nope/cancel", exper, NULL, &r), 0);
	API_ASSERT_ERROR(&r, 404, "experiment 'nope' not found", NULL);
	api_resp_free(&r);
	CU_ASSERT_EQUAL(api_json("GET", "/api/v1/experiments/nope", admin, NULL, &r), 0);
	API_ASSERT_ERROR(&r, 404, "experiment 'nope' not found", NULL);
	api_resp_free(&r);

	CU_ASSERT_EQUAL(api_json("GET", "/api/v1/agents", atok, NULL, &r), 0);
	API_ASSERT_ERROR(&r, 403, "an agent token cannot call it", NULL);
	api_resp_free(&r);
	CU_ASSERT_EQUAL(api_json("POST", "/api/v1/poll", admin, "{}", &r), 0);
	API_ASSERT_ERROR(&r, 403, "a user API token cannot call it", NULL);
	api_resp_free(&r);
}

static void test_secret_compare(void)
{
	char tok[65], hash[65];

	CU_ASSERT(ctl_auth_secret_equal("abcdefghijklmnop", "abcdefghijklmnop"));
	CU_ASSERT(!ctl_auth_secret_equal("abcdefghijklmnop", "abcdefghijklmnoq"));
	CU_ASSERT(!ctl_auth_secret_equal("abcdefghijklmnop", "abcdefghijklmno"));
	CU_ASSERT(!ctl_auth_secret_equal("", "x"));
	CU_ASSERT_EQUAL(ctl_auth_new_token(tok), 0);
	ctl_auth_sha256_hex("abc", 3, hash);
	CU_ASSERT_STRING_EQUAL(hash,
			       "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static const struct fj_test auth_tests[] = {
	{ "enroll_good", test_enroll_good },
	{ "enroll_bad", test_enroll_bad },
	{ "user_roles", test_user_roles },
	{ "secret_compare", test_secret_compare },
	{ NULL, NULL },
};

const struct fj_suite fj_suite_api_auth = { "api_auth", start, stop, auth_tests };

/* ---- api_poll -------------------------------------------------------------- */

static char p_client[64], p_ctok[65], p_server[64], p_stok[65], p_exper[65];

static int poll_start(void)
{
	if (api_start(NULL) < 0)
		return -1;
	if (api_enroll("oslo", "pc", API_SECRET_OSLO, p_client, p_ctok) != 200 ||
	    api_enroll("bergen", "ps", API_SECRET_BERGEN, p_server, p_stok) != 200)
		return -1;
	return 0;
}

static void test_poll_timeout(void)
{
	struct api_resp r;

	CU_ASSERT_EQUAL(
		api_json("POST", "/api/v1/poll", p_stok, "{\"waitS\":1," API_IFACES "}", &r), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_EQUAL(json_array_size(json_object_get(r.json, "commands")), 0);
	/* No command: held for the whole wait, then an empty answer. */
	CU_ASSERT(r.secs >= 0.9 && r.secs < 2.5);
	api_resp_free(&r);
	/* wait_s is capped by long_poll_max_s (3 s in these tests). */
	CU_ASSERT_EQUAL(
		api_json("POST", "/api/v1/poll", p_stok, "{\"waitS\":60," API_IFACES "}", &r), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT(r.secs >= 2.9 && r.secs < 4.5);
	api_resp_free(&r);
	CU_ASSERT_EQUAL(
		api_json("POST", "/api/v1/poll", p_stok, "{\"waitS\":0," API_IFACES "}", &r), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT(r.secs < 0.9);
	api_resp_free(&r);
}

struct poll_arg {
	const char *tok;
	struct api_resp r;
	uint64_t done_us;
	int64_t done_wall_ms;
};

static void *poll_thread(void *arg)
{
	struct poll_arg *a = arg;

	api_json("POST", "/api/v1/poll", a->tok, "{\"waitS\":3," API_IFACES "}", &a->r);
	a->done_us = fj_mono_us();
	a->done_wall_ms = fj_wall_ms();
	return NULL;
}

static void test_poll_delivers(void)
{
	struct poll_arg pa = { p_ctok, { 0 }, 0, 0 };
	struct api_resp r;
	char spec[1024];
	json_t *cmd;
	uint64_t t_created;
	pthread_t th;

	CU_ASSERT_FATAL(api_user_token("experimenter", p_exper) == 0);
	CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, poll_thread, &pa), 0);
	usleep(300 * 1000); /* the poll is held by now */
	snprintf(spec, sizeof(spec),
		 "{\"name\":\"deliver\",\"type\":\"EXPERIMENT_TYPE_ECHO\","
		 "\"echo\":{\"messageBytes\":64,\"count\":2},\"deadlineS\":60,\"pickupS\":30,"
		 "\"targets\":{\"pairs\":[{\"clientAgentId\":\"%s\",\"serverAgentId\":\"%s\"}]}}",
		 p_client, p_server);
	CU_ASSERT_EQUAL(api_json("POST", "/api/v1/experiments", p_exper, spec, &r), 0);
	t_created = fj_mono_us();
	CU_ASSERT_EQUAL(r.status, 201);
	api_resp_free(&r);
	pthread_join(th, NULL);
	CU_ASSERT_EQUAL(pa.r.status, 200);
	cmd = json_array_get(json_object_get(pa.r.json, "commands"), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(cmd);
	CU_ASSERT_STRING_EQUAL(
		json_string_value(json_object_get(
			json_object_get(json_object_get(cmd, "run"), "run"), "clientAgentId")),
		p_client);
	/* Delivered within 1 s of the experiment's creation (and well before the 3 s wait). */
	CU_ASSERT(pa.done_us - t_created < 1000000);
	api_resp_free(&pa.r);
}

/* A run due later: the timer's tick makes it ready and the held poll answers within 1 s. */
static void test_poll_due_later(void)
{
	struct poll_arg pa = { p_ctok, { 0 }, 0, 0 };
	struct api_resp r;
	char spec[1024];
	int64_t due = fj_wall_ms() + 1500;
	json_t *run;
	pthread_t th;

	snprintf(spec, sizeof(spec),
		 "{\"name\":\"later\",\"type\":\"EXPERIMENT_TYPE_ECHO\",\"shareLinks\":true,"
		 "\"echo\":{\"messageBytes\":64,\"count\":2},\"deadlineS\":60,\"pickupS\":30,"
		 "\"schedule\":{\"startMs\":\"%lld\"},"
		 "\"targets\":{\"pairs\":[{\"clientAgentId\":\"%s\",\"serverAgentId\":\"%s\"}]}}",
		 (long long)due, p_client, p_server);
	CU_ASSERT_EQUAL(api_json("POST", "/api/v1/experiments", p_exper, spec, &r), 0);
	CU_ASSERT_EQUAL(r.status, 201);
	api_resp_free(&r);
	CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, poll_thread, &pa), 0);
	pthread_join(th, NULL);
	CU_ASSERT_EQUAL(pa.r.status, 200);
	run = json_object_get(
		json_object_get(json_array_get(json_object_get(pa.r.json, "commands"), 0), "run"),
		"run");
	CU_ASSERT_PTR_NOT_NULL_FATAL(run);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(run, "state")),
			       "RUN_STATE_DISPATCHED");
	/* Not before it is due, and within 1 s after. */
	CU_ASSERT(pa.done_wall_ms >= due - 20);
	CU_ASSERT(pa.done_wall_ms - due < 1000);
	api_resp_free(&pa.r);
}

/* Shutdown answers a held poll (empty) instead of dropping its connection. Runs last. */
static void test_poll_shutdown(void)
{
	struct poll_arg pa = { p_stok, { 0 }, 0, 0 };
	uint64_t t0;
	pthread_t th;

	CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, poll_thread, &pa), 0);
	usleep(300 * 1000);
	t0 = fj_mono_us();
	api_stop();
	pthread_join(th, NULL);
	CU_ASSERT_EQUAL(pa.r.status, 200);
	CU_ASSERT_EQUAL(json_array_size(json_object_get(pa.r.json, "commands")), 0);
	CU_ASSERT(pa.done_us - t0 < 2000000);
	api_resp_free(&pa.r);
}

static void test_poll_bad(void)
{
	struct api_resp r;

	CU_ASSERT_EQUAL(api_json("POST", "/api/v1/poll", p_stok, "{\"waitS\":\"soon\"}", &r), 0);
	API_ASSERT_ERROR(&r, 400, "waitS", "waitS");
	api_resp_free(&r);
	CU_ASSERT_EQUAL(api_json("GET", "/api/v1/poll", p_stok, NULL, &r), 0);
	API_ASSERT_ERROR(&r, 405, "method GET is not allowed on /api/v1/poll (allowed: POST)",
			 NULL);
	CU_ASSERT_STRING_EQUAL(r.allow, "POST");
	api_resp_free(&r);
}

static const struct fj_test poll_tests[] = {
	{ "timeout", test_poll_timeout },
	{ "delivers_within_1s", test_poll_delivers },
	{ "due_later_within_1s", test_poll_due_later },
	{ "bad", test_poll_bad },
	{ "shutdown_answers_held", test_poll_shutdown },
	{ NULL, NULL },
};

const struct fj_suite fj_suite_api_poll = { "api_poll", poll_start, stop, poll_tests };

/* ---- api_errors -------------------------------------------------------------- */

static char e_exper[65];

static int errors_start(void)
{
	if (api_start(NULL) < 0)
		return -1;
	return api_user_token("experimenter", e_exper);
}

static void test_bad_json(void)
{
	struct api_resp r;

	CU_ASSERT_EQUAL(api_json("POST", "/api/v1/experiments", e_exper, "{\"name\": 5}", &r), 0);
	API_ASSERT_ERROR(&r, 400, "bad fjord.v1.ExperimentSpec JSON: name", "name");
	api_resp_free(&r);
	CU_ASSERT_EQUAL(api_json("POST", "/api/v1/experiments", e_exper,
				 "{\"targets\":{\"pairs\":[{\"clientAgentId\":1}]}}", &r),
			0);
	API_ASSERT_ERROR(&r, 400, "targets.pairs[0].clientAgentId",
			 "targets.pairs[0].clientAgentId");
	api_resp_free(&r);
	CU_ASSERT_EQUAL(
		api_json("POST", "/api/v1/experiments", e_exper, "{\"colour\":\"red\"}", &r), 0);
	API_ASSERT_ERROR(&r, 400, "colour", "colour");
	api_resp_free(&r);
	CU_ASSERT_EQUAL(api_json("POST", "/api/v1/experiments", e_exper, "{\"name\":", &r), 0);
	API_ASSERT_ERROR(&r, 400, "invalid JSON", NULL);
	api_resp_free(&r);
	CU_ASSERT_EQUAL(api_call("POST", "/api/v1/experiments", e_exper, "application/x-protobuf",
				 "\xff\xff\xff", 3, NULL, &r),
			0);
	API_ASSERT_ERROR(&r, 400, "body is not a valid protobuf fjord.v1.ExperimentSpec", NULL);
	api_resp_free(&r);
}

static void test_content_types(void)
{
	struct api_hdrs png = { "image/png", { NULL } };
	struct api_hdrs pb = { "application/x-protobuf", { NULL } };
	Fjord__V1__Error *e;
	struct api_resp r;

	CU_ASSERT_EQUAL(api_call("POST", "/api/v1/experiments", e_exper, "text/plain", "{}", 2,
				 NULL, &r),
			0);
	API_ASSERT_ERROR(&r, 415, "unsupported Content-Type 'text/plain'", NULL);
	api_resp_free(&r);
	CU_ASSERT_EQUAL(api_call("POST", "/api/v1/experiments", e_exper, NULL, "{}", 2, NULL, &r),
			0);
	API_ASSERT_ERROR(&r, 415, "missing Content-Type", NULL);
	api_resp_free(&r);
	CU_ASSERT_EQUAL(api_call("GET", "/api/v1/experiments", e_exper, NULL, NULL, 0, &png, &r),
			0);
	API_ASSERT_ERROR(&r, 406, "cannot answer in any type of Accept 'image/png'", NULL);
	api_resp_free(&r);
	/* Weights: the highest q wins; a parameter merely ending in "q" is not q; a q
	 * that is no RFC 9110 qvalue disqualifies its range. */
	{
		static const struct {
			const char *accept;
			unsigned int status;
			const char *ctype;
		} acc[] = {
			{ "application/json;q=0, application/x-protobuf;q=0.5", 200,
			  "application/x-protobuf" },
			{ "application/x-protobuf; xq=0", 200, "application/x-protobuf" },
			{ "Application/JSON ; Q=0.25 , */*;q=0.2", 200, "application/json" },
			{ "application/json;q=2", 406, NULL },
			{ "application/json;q=nan", 406, NULL },
			{ "application/json;q=1.5, image/png", 406, NULL },
		};
		size_t i;

		for (i = 0; i < sizeof(acc) / sizeof(acc[0]); i++) {
			struct api_hdrs h = { acc[i].accept, { NULL } };

			CU_ASSERT_EQUAL(api_call("GET", "/api/v1/experiments", e_exper, NULL, NULL,
						 0, &h, &r),
					0);
			CU_ASSERT_EQUAL(r.status, acc[i].status);
			if (acc[i].ctype) {
				CU_ASSERT_STRING_EQUAL(r.ctype, acc[i].ctype);
			} else {
				API_ASSERT_ERROR(&r, 406, "cannot answer in any type of Accept",
						 NULL);
			}
			api_resp_free(&r);
		}
	}
	/* Errors come in the format the client accepts. */
	CU_ASSERT_EQUAL(
		api_call("GET", "/api/v1/experiments/none", e_exper, NULL, NULL, 0, &pb, &r), 0);
	CU_ASSERT_EQUAL(r.status, 404);
	CU_ASSERT_STRING_EQUAL(r.ctype, "application/x-protobuf");
	e = fjord__v1__error__unpack(NULL, r.len, (const uint8_t *)r.body);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT_EQUAL(e->status, 404);
	CU_ASSERT_STRING_EQUAL(e->message, "experiment 'none' not found");
	fjord__v1__error__free_unpacked(e, NULL);
	api_resp_free(&r);
}

static void test_routes(void)
{
	struct api_resp r;

	CU_ASSERT_EQUAL(api_json("GET", "/api/v1/nope", e_exper, NULL, &r), 0);
	API_ASSERT_ERROR(&r, 404, "no route for GET /api/v1/nope", NULL);
	api_resp_free(&r);
	CU_ASSERT_EQUAL(api_json("GET", "/api/v1/agents/", e_exper, NULL, &r), 0);
	API_ASSERT_ERROR(&r, 404, "no route for GET /api/v1/agents/", NULL);
	api_resp_free(&r);
	CU_ASSERT_EQUAL(api_json("DELETE", "/api/v1/experiments", e_exper, NULL, &r), 0);
	API_ASSERT_ERROR(&r, 405, "method DELETE is not allowed on /api/v1/experiments", NULL);
	CU_ASSERT_STRING_EQUAL(r.allow, "POST, GET");
	api_resp_free(&r);
	CU_ASSERT_EQUAL(api_json("GET", "/api/v1/experiments", e_exper, "{}", &r), 0);
	API_ASSERT_ERROR(&r, 400, "GET /api/v1/experiments takes no body", NULL);
	api_resp_free(&r);
}

static void test_limits_and_params(void)
{
	struct api_hdrs expect = { NULL, { "Expect: 100-continue", NULL } };
	struct api_hdrs chunked = { NULL, { "Transfer-Encoding: chunked", NULL } };
	size_t n = 70000;
	char *big = malloc(n + 1);
	struct api_resp r;

	CU_ASSERT_PTR_NOT_NULL_FATAL(big);
	memset(big, ' ', n);
	big[0] = '{';
	big[n - 1] = '}';
	big[n] = 0;
	CU_ASSERT_EQUAL(api_json("POST", "/api/v1/experiments", e_exper, big, &r), 0);
	API_ASSERT_ERROR(&r, 413, "body of 70000 bytes is over the limit of 65536 bytes", NULL);
	api_resp_free(&r);
	/* A client waiting for "100 Continue" gets the 413 instead, before it sends the body. */
	CU_ASSERT_EQUAL(api_call("POST", "/api/v1/experiments", e_exper, "application/json", big, n,
				 &expect, &r),
			0);
	API_ASSERT_ERROR(&r, 413, "body of 70000 bytes is over the limit of 65536 bytes", NULL);
	api_resp_free(&r);
	/* Chunked, without a length: read up to the cap, then refused. */
	CU_ASSERT_EQUAL(api_call("POST", "/api/v1/experiments", e_exper, "application/json", big, n,
				 &chunked, &r),
			0);
	API_ASSERT_ERROR(&r, 413, "body is over the limit of 65536 bytes", NULL);
	api_resp_free(&r);
	free(big);
	CU_ASSERT_EQUAL(api_json("GET", "/api/v1/experiments?colour=red", e_exper, NULL, &r), 0);
	API_ASSERT_ERROR(&r, 400, "unknown query parameter 'colour'", "colour");
	api_resp_free(&r);
	CU_ASSERT_EQUAL(api_json("GET", "/api/v1/runs?limit=0", e_exper, NULL, &r), 0);
	API_ASSERT_ERROR(&r, 400, "query parameter 'limit': '0' is not an integer in 1..10000",
			 "limit");
	api_resp_free(&r);
	CU_ASSERT_EQUAL(api_json("GET", "/api/v1/runs?limit=1&limit=2", e_exper, NULL, &r), 0);
	API_ASSERT_ERROR(&r, 400, "query parameter 'limit' given twice", "limit");
	api_resp_free(&r);
}

static const struct fj_test errors_tests[] = {
	{ "bad_json", test_bad_json },
	{ "content_types", test_content_types },
	{ "routes", test_routes },
	{ "limits_and_params", test_limits_and_params },
	{ NULL, NULL },
};

const struct fj_suite fj_suite_api_errors = { "api_errors", errors_start, stop, errors_tests };

/* ---- api_metrics ------------------------------------------------------------- */

static void test_healthz(void)
{
	struct api_resp r;

	CU_ASSERT_EQUAL(api_json("GET", "/healthz", NULL, NULL, &r), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_STRING_EQUAL(api_str(&r, "status"), "ok");
	CU_ASSERT_STRING_EQUAL(api_str(&r, "version"), CTL_VERSION);
	api_resp_free(&r);
}

static void test_metrics_text(void)
{
	char id[64], tok[65];
	struct api_resp r;

	CU_ASSERT_EQUAL_FATAL(api_enroll("oslo", "m1", API_SECRET_OSLO, id, tok), 200);
	CU_ASSERT_EQUAL(api_json("POST", "/api/v1/poll", tok, "{\"waitS\":0," API_IFACES "}", &r),
			0);
	api_resp_free(&r);
	CU_ASSERT_EQUAL(api_json("GET", "/api/v1/nothing", NULL, NULL, &r), 0);
	api_resp_free(&r);
	CU_ASSERT_EQUAL(api_json("GET", "/metrics", NULL, NULL, &r), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.ctype, "text/plain; version=0.0.4"));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "# TYPE fjord_http_requests_total counter\n"));
	CU_ASSERT_PTR_NOT_NULL(
		strstr(r.body, "fjord_http_requests_total{route=\"healthz\",code=\"200\"} 1\n"));
	CU_ASSERT_PTR_NOT_NULL(
		strstr(r.body, "fjord_http_requests_total{route=\"poll\",code=\"200\"} 1\n"));
	CU_ASSERT_PTR_NOT_NULL(
		strstr(r.body, "fjord_http_requests_total{route=\"enroll\",code=\"200\"} 1\n"));
	CU_ASSERT_PTR_NOT_NULL(
		strstr(r.body, "fjord_http_requests_total{route=\"unmatched\",code=\"404\"} 1\n"));
	CU_ASSERT_PTR_NOT_NULL(
		strstr(r.body, "# TYPE fjord_http_request_duration_seconds histogram\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(
		r.body,
		"fjord_http_request_duration_seconds_bucket{route=\"poll\",code=\"200\",le=\"+Inf\"} 1\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(
		r.body,
		"fjord_http_request_duration_seconds_count{route=\"poll\",code=\"200\"} 1\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "fjord_agents_online 1\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "fjord_long_polls_waiting 0\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\nfjord_poll_reports_queued "));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "fjord_runs{state=\"pending\"} 0\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "fjord_runs{state=\"cancelled\"} 0\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\nfjord_store_bytes "));
	api_resp_free(&r);
}

static const struct fj_test metrics_tests[] = {
	{ "healthz", test_healthz },
	{ "text", test_metrics_text },
	{ NULL, NULL },
};

const struct fj_suite fj_suite_api_metrics = { "api_metrics", start, stop, metrics_tests };
