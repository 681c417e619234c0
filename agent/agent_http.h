/*
 * HTTP client on libcurl's multi interface, driven by the agent's event loop
 * (CURLMOPT_SOCKETFUNCTION / CURLMOPT_TIMERFUNCTION): many requests in flight,
 * none of them blocking the loop.
 */
#ifndef AGENT_HTTP_H
#define AGENT_HTTP_H

#include <stddef.h>
#include <stdint.h>

struct agent_loop;
struct agent_http;

struct agent_http_resp {
	long status;	   /* 0 when the request failed below HTTP */
	const char *error; /* transport error text when status is 0 */
	const uint8_t *body;
	size_t len;
	char range[64]; /* the "Range" answer header, if any */
	char content_type[64];
};

/* resp and its body live until the callback returns. */
typedef void (*agent_http_done_fn)(const struct agent_http_resp *resp, void *arg);

struct agent_http_req {
	const char *method; /* "GET", "POST", "PUT", "HEAD" */
	const char *url;
	const char *bearer;	  /* may be NULL */
	const char *content_type; /* of the body; may be NULL */
	const void *body;	  /* copied */
	size_t len;
	const char *const *headers; /* extra "Name: value" lines, NULL-terminated; may be NULL */
	long timeout_ms;
	size_t max_body; /* answers longer than this fail; 0 = 1 MiB */
};

int agent_http_create(struct agent_loop *loop, struct agent_http **out);
/* Cancels every request in flight without calling their callbacks. */
void agent_http_destroy(struct agent_http *h);
/* CA bundle for https (copied); NULL or "" for the system's. */
int agent_http_set_cainfo(struct agent_http *h, const char *path);
/* Starts a request; fn is called once, later, from the loop. Returns 0 and an id. */
int agent_http_start(struct agent_http *h, const struct agent_http_req *req, agent_http_done_fn fn,
		     void *arg, uint64_t *id);
/* Drops a request without calling its callback; -ENOENT if it already finished. */
int agent_http_cancel(struct agent_http *h, uint64_t id);
unsigned int agent_http_active(const struct agent_http *h);

#endif
