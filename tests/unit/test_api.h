/*
 * Helpers shared by the api_* suites: an in-process controller on an
 * ephemeral loopback port with a temporary data directory, and a libcurl
 * client that records status, headers, body and time of each call.
 */
#ifndef TEST_API_H
#define TEST_API_H

#include <jansson.h>
#include <stddef.h>

#include "config.h"
#include "ctl_store.h"
#include "http.h"

#define API_SECRET_OSLO	  "oslo-enrollment-secret-0001"
#define API_SECRET_BERGEN "bergen-enrollment-secret-002"

/* The interfaces api_enroll reports, for poll bodies ("interfaces":[...]). */
#define API_IFACES                                                                                 \
	"\"interfaces\":[{\"name\":\"eth0\",\"isp\":\"telenor\",\"addresses\":[\"10.1.9.2/24\"],"  \
	"\"up\":true},{\"name\":\"eth1\",\"isp\":\"uninett\",\"addresses\":[\"10.2.9.2/24\"],\"up\":true}]"

struct api_resp {
	long status;
	char *body; /* NUL-terminated */
	size_t len;
	char ctype[128];
	char range[128];
	char www_auth[128];
	char allow[128];
	char sha[80];
	double secs;
	json_t *json; /* parsed body when it is JSON, else NULL */
};

/* Optional request headers beyond Authorization and Content-Type. */
struct api_hdrs {
	const char *accept;
	const char *extra[4]; /* "Name: value" */
};

extern struct ctl_http *api_srv;
extern char api_dir[256];

/* Starts a controller: long_poll_max_s 3, max_body_bytes 65536, max_trace_bytes 1 MiB,
 * sites oslo and bergen. tweak (may be NULL) edits the config first. */
int api_start(void (*tweak)(struct ctl_config *cfg));
void api_stop(void);

/*
 * One request to the running controller. token may be NULL (no
 * Authorization); ctype NULL sends no Content-Type. r is reset first and
 * must be released with api_resp_free. Returns 0 or -1 on a transport error.
 */
int api_call(const char *method, const char *path, const char *token, const char *ctype,
	     const void *body, size_t len, const struct api_hdrs *h, struct api_resp *r);
/* JSON in, JSON out. */
int api_json(const char *method, const char *path, const char *token, const char *json,
	     struct api_resp *r);
void api_resp_free(struct api_resp *r);

/* Creates a user token with role (viewer, experimenter, admin) into tok (65 bytes).
 * These helpers return 0 or -1 (no CUnit assertion: suites call them from init too). */
int api_user_token(const char *role, char *tok);
/* Enrolls (site, node) over HTTP with interfaces on ISPs "telenor" and "uninett";
 * fills id (64 bytes) and tok (65 bytes). Returns the HTTP status. */
long api_enroll(const char *site, const char *node, const char *secret, char *id, char *tok);

/* Asserts status, and that the Error body carries the same status and a message containing
 * msg (and field when not NULL). */
#define API_ASSERT_ERROR(r, st, msg, fld) api_assert_error(r, st, msg, fld, __FILE__, __LINE__)
void api_assert_error(const struct api_resp *r, long status, const char *msg, const char *field,
		      const char *file, int line);

/* The string member key of r->json, or "" */
const char *api_str(const struct api_resp *r, const char *key);

/* Stores an experiment with one run between client and server agents directly through the
 * store (independent of the scheduler's expansion); run id written to run_id (64 bytes). */
int api_seed_run(const char *client, const char *server, char *exp_id, char *run_id);

/* The same with a second run back from server to client in the same experiment. */
int api_seed_pair(const char *client, const char *server, char *exp_id, char *run_id, char *back);

#endif
