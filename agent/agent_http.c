/* libcurl multi <-> agent_loop glue. */
#include "agent_http.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "agent_loop.h"
#include "fj_log.h"

#define HTTP_DEFAULT_MAX_BODY (1u << 20)

struct http_req {
	struct http_req *next;
	struct agent_http *h;
	CURL *easy;
	uint64_t id;
	struct curl_slist *hdrs;
	uint8_t *req_body;
	uint8_t *body;
	size_t len, cap, max_body;
	int overflow;
	struct agent_http_resp resp;
	agent_http_done_fn fn;
	void *arg;
	char errbuf[CURL_ERROR_SIZE];
};

struct agent_http {
	struct agent_loop *loop;
	CURLM *multi;
	uint64_t timer;
	uint64_t next_id;
	unsigned int active;
	struct http_req *reqs;
	char cainfo[512];
};

static void check_done(struct agent_http *h);

static void on_socket_event(struct agent_loop *loop, int fd, unsigned int ev, void *arg)
{
	struct agent_http *h = arg;
	int flags = 0, running;

	(void)loop;
	if (ev & AGENT_EV_READ)
		flags |= CURL_CSELECT_IN;
	if (ev & AGENT_EV_WRITE)
		flags |= CURL_CSELECT_OUT;
	if (ev & AGENT_EV_ERROR)
		flags |= CURL_CSELECT_ERR;
	curl_multi_socket_action(h->multi, fd, flags, &running);
	check_done(h);
}

static int socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct agent_http *h = userp;
	unsigned int mask = 0;

	(void)easy;
	(void)socketp;
	if (what == CURL_POLL_REMOVE) {
		agent_loop_fd_del(h->loop, s);
		return 0;
	}
	if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
		mask |= AGENT_EV_READ;
	if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
		mask |= AGENT_EV_WRITE;
	if (agent_loop_fd_set(h->loop, s, mask, on_socket_event, h) < 0) {
		fj_err("http: cannot watch socket %d", s);
		return -1;
	}
	return 0;
}

static void on_timer(struct agent_loop *loop, uint64_t id, void *arg)
{
	struct agent_http *h = arg;
	int running;

	(void)loop;
	(void)id;
	h->timer = 0;
	curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(h);
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct agent_http *h = userp;

	(void)multi;
	if (h->timer) {
		agent_loop_timer_del(h->loop, h->timer);
		h->timer = 0;
	}
	if (timeout_ms < 0)
		return 0;
	h->timer = agent_loop_timer_add(h->loop, (uint64_t)timeout_ms, on_timer, h);
	return h->timer ? 0 : -1;
}

int agent_http_create(struct agent_loop *loop, struct agent_http **out)
{
	struct agent_http *h = calloc(1, sizeof(*h));

	if (!h)
		return -ENOMEM;
	h->multi = curl_multi_init();
	if (!h->multi) {
		free(h);
		return -ENOMEM;
	}
	h->loop = loop;
	h->next_id = 1;
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
	*out = h;
	return 0;
}

static void req_free(struct http_req *r)
{
	struct http_req **pp;

	for (pp = &r->h->reqs; *pp; pp = &(*pp)->next) {
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	}
	curl_multi_remove_handle(r->h->multi, r->easy);
	curl_easy_cleanup(r->easy);
	curl_slist_free_all(r->hdrs);
	r->h->active--;
	free(r->req_body);
	free(r->body);
	free(r);
}

void agent_http_destroy(struct agent_http *h)
{
	if (!h)
		return;
	while (h->reqs)
		req_free(h->reqs);
	if (h->timer)
		agent_loop_timer_del(h->loop, h->timer);
	curl_multi_cleanup(h->multi);
	free(h);
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *userp)
{
	struct http_req *r = userp;
	size_t n = size * nmemb;

	if (r->len + n > r->max_body) {
		r->overflow = 1;
		return 0; /* makes curl fail the transfer */
	}
	if (r->len + n + 1 > r->cap) {
		size_t cap = (r->len + n + 1) * 2;
		uint8_t *b = realloc(r->body, cap);

		if (!b)
			return 0;
		r->body = b;
		r->cap = cap;
	}
	memcpy(r->body + r->len, data, n);
	r->len += n;
	r->body[r->len] = 0;
	return n;
}

static void copy_header_value(char *dst, size_t cap, const char *v, size_t n)
{
	while (n > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		n--;
	}
	while (n > 0 && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
		n--;
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, v, n);
	dst[n] = 0;
}

static size_t header_cb(char *data, size_t size, size_t nitems, void *userp)
{
	struct http_req *r = userp;
	size_t n = size * nitems;

	if (n > 6 && strncasecmp(data, "Range:", 6) == 0)
		copy_header_value(r->resp.range, sizeof(r->resp.range), data + 6, n - 6);
	else if (n > 13 && strncasecmp(data, "Content-Type:", 13) == 0)
		copy_header_value(r->resp.content_type, sizeof(r->resp.content_type), data + 13,
				  n - 13);
	return n;
}

static int req_setup(struct http_req *r, const struct agent_http_req *q)
{
	char auth[600];
	size_t i;

	r->hdrs = curl_slist_append(r->hdrs, "Expect:");
	r->hdrs = curl_slist_append(r->hdrs, "Accept: application/x-protobuf");
	if (q->bearer) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", q->bearer);
		r->hdrs = curl_slist_append(r->hdrs, auth);
	}
	if (q->content_type) {
		snprintf(auth, sizeof(auth), "Content-Type: %s", q->content_type);
		r->hdrs = curl_slist_append(r->hdrs, auth);
	}
	for (i = 0; q->headers && q->headers[i]; i++)
		r->hdrs = curl_slist_append(r->hdrs, q->headers[i]);
	if (!r->hdrs)
		return -ENOMEM;
	curl_easy_setopt(r->easy, CURLOPT_URL, q->url);
	curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->hdrs);
	curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(r->easy, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(r->easy, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(r->easy, CURLOPT_ERRORBUFFER, r->errbuf);
	curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r);
	curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, q->timeout_ms > 0 ? q->timeout_ms : 30000L);
	curl_easy_setopt(r->easy, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	curl_easy_setopt(r->easy, CURLOPT_USERAGENT, "fjord-agent");
	if (r->h->cainfo[0])
		curl_easy_setopt(r->easy, CURLOPT_CAINFO, r->h->cainfo);
	if (strcmp(q->method, "HEAD") == 0) {
		curl_easy_setopt(r->easy, CURLOPT_NOBODY, 1L);
	} else if (strcmp(q->method, "GET") != 0) {
		if (q->len) {
			r->req_body = malloc(q->len);
			if (!r->req_body)
				return -ENOMEM;
			memcpy(r->req_body, q->body, q->len);
		}
		curl_easy_setopt(r->easy, CURLOPT_POSTFIELDS,
				 r->req_body ? (char *)r->req_body : "");
		curl_easy_setopt(r->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->len);
		if (strcmp(q->method, "POST") != 0)
			curl_easy_setopt(r->easy, CURLOPT_CUSTOMREQUEST, q->method);
	}
	return 0;
}

int agent_http_set_cainfo(struct agent_http *h, const char *path)
{
	if (path && strlen(path) >= sizeof(h->cainfo))
		return -ENAMETOOLONG;
	snprintf(h->cainfo, sizeof(h->cainfo), "%s", path ? path : "");
	return 0;
}

int agent_http_start(struct agent_http *h, const struct agent_http_req *q, agent_http_done_fn fn,
		     void *arg, uint64_t *id)
{
	struct http_req *r = calloc(1, sizeof(*r));
	int rc;

	if (!r)
		return -ENOMEM;
	r->h = h;
	r->fn = fn;
	r->arg = arg;
	r->max_body = q->max_body ? q->max_body : HTTP_DEFAULT_MAX_BODY;
	r->easy = curl_easy_init();
	r->next = h->reqs;
	h->reqs = r;
	h->active++;
	if (!r->easy) {
		req_free(r);
		return -ENOMEM;
	}
	rc = req_setup(r, q);
	if (!rc && curl_multi_add_handle(h->multi, r->easy) != CURLM_OK)
		rc = -EIO;
	if (rc) {
		req_free(r);
		return rc;
	}
	r->id = h->next_id++;
	if (id)
		*id = r->id;
	return 0;
}

int agent_http_cancel(struct agent_http *h, uint64_t id)
{
	struct http_req *r;

	for (r = h->reqs; r; r = r->next) {
		if (r->id == id) {
			req_free(r);
			return 0;
		}
	}
	return -ENOENT;
}

unsigned int agent_http_active(const struct agent_http *h)
{
	return h->active;
}

static void finish(struct http_req *r, CURLcode code)
{
	long status = 0;

	curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
	if (code != CURLE_OK) {
		r->resp.status = 0;
		r->resp.error = r->overflow ? "answer larger than the cap"
					    : (r->errbuf[0] ? r->errbuf : curl_easy_strerror(code));
	} else {
		r->resp.status = status;
	}
	r->resp.body = r->body ? r->body : (const uint8_t *)"";
	r->resp.len = r->len;
	/* Detach first: the callback may start new requests or destroy nothing else. */
	curl_multi_remove_handle(r->h->multi, r->easy);
	r->fn(&r->resp, r->arg);
	req_free(r);
}

static void check_done(struct agent_http *h)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(h->multi, &left)) != NULL) {
		struct http_req *r = NULL;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
		if (r)
			finish(r, m->data.result);
	}
}
