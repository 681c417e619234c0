/*
 * fjord-controller's HTTP plumbing on libmicrohttpd: one access handler that
 * routes, negotiates formats, authenticates, reads capped bodies and hands
 * the request to its route; helpers that build every answer; server
 * creation and teardown.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fj_clock.h"
#include "fj_log.h"
#include "http_internal.h"
#include "http_parse.h"
#include "pbjson.h"

/* A body this much over its cap is not read to the end: the connection is closed instead. */
#define DISCARD_MAX (64ull << 20)
#define MAX_SEG_LEN 256

/* ---- answers ------------------------------------------------------------ */

enum MHD_Result ctl_send_response(struct ctl_req *rq, unsigned int status,
				  struct MHD_Response *resp)
{
	enum MHD_Result r;

	if (!resp)
		return MHD_NO;
	rq->status = status;
	rq->answered = 1;
	if (status == MHD_HTTP_UNAUTHORIZED)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
					"Bearer realm=\"fjord\"");
	r = MHD_queue_response(rq->conn, status, resp);
	MHD_destroy_response(resp);
	return r;
}

enum MHD_Result ctl_send_data(struct ctl_req *rq, unsigned int status, const char *ctype,
			      char *data, size_t len)
{
	struct MHD_Response *resp;

	resp = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(data);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	return ctl_send_response(rq, status, resp);
}

static int encode(const ProtobufCMessage *msg, enum ctl_fmt fmt, char **out, size_t *len)
{
	if (fmt == CTL_FMT_PB) {
		size_t n = protobuf_c_message_get_packed_size(msg);

		*out = malloc(n ? n : 1);
		if (!*out)
			return -ENOMEM;
		*len = protobuf_c_message_pack(msg, (uint8_t *)*out);
		return 0;
	}
	if (fj_pbjson_encode(msg, 0, out) < 0)
		return -ENOMEM;
	*len = strlen(*out);
	return 0;
}

enum MHD_Result ctl_send_msg(struct ctl_req *rq, unsigned int status, const ProtobufCMessage *msg)
{
	enum ctl_fmt fmt = rq->out_fmt == CTL_FMT_PB ? CTL_FMT_PB : CTL_FMT_JSON;
	size_t len = 0;
	char *out;

	if (encode(msg, fmt, &out, &len) < 0)
		return MHD_NO;
	return ctl_send_data(rq, status,
			     fmt == CTL_FMT_PB ? "application/x-protobuf" : "application/json", out,
			     len);
}

enum MHD_Result ctl_send_error_hdr(struct ctl_req *rq, unsigned int status, const char *field,
				   const char *hdr, const char *hdr_val, const char *text)
{
	Fjord__V1__Error e = FJORD__V1__ERROR__INIT;
	enum ctl_fmt fmt = rq->out_fmt == CTL_FMT_PB ? CTL_FMT_PB : CTL_FMT_JSON;
	struct MHD_Response *resp;
	size_t len = 0;
	char *out;

	e.status = status;
	e.message = (char *)text;
	e.field = (char *)(field ? field : "");
	if (status >= 500)
		fj_warn("%s %s: %u %s", rq->route ? rq->route->method : "-",
			rq->route ? rq->route->pattern : "-", status, text);
	else
		fj_debug("answer %u: %s", status, text);
	if (encode(&e.base, fmt, &out, &len) < 0)
		return MHD_NO;
	resp = MHD_create_response_from_buffer(len, out, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(out);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
				fmt == CTL_FMT_PB ? "application/x-protobuf" : "application/json");
	if (hdr && hdr[0])
		MHD_add_response_header(resp, hdr, hdr_val);
	return ctl_send_response(rq, status, resp);
}

static enum MHD_Result send_error_text(struct ctl_req *rq, unsigned int status, const char *field,
				       const char *text)
{
	return ctl_send_error_hdr(rq, status, field, NULL, NULL, text);
}

void ctl_req_defer_header(struct ctl_req *rq, const char *name, const char *value)
{
	snprintf(rq->err_hdr, sizeof(rq->err_hdr), "%s", name);
	snprintf(rq->err_hdr_val, sizeof(rq->err_hdr_val), "%s", value);
}

enum MHD_Result ctl_send_error(struct ctl_req *rq, unsigned int status, const char *field,
			       const char *fmt, ...)
{
	char text[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	return send_error_text(rq, status, field, text);
}

void ctl_req_defer_error(struct ctl_req *rq, unsigned int status, const char *field,
			 const char *fmt, ...)
{
	va_list ap;

	if (rq->err_status)
		return; /* the first error is the one worth reporting */
	rq->err_status = status;
	snprintf(rq->err_field, sizeof(rq->err_field), "%s", field ? field : "");
	va_start(ap, fmt);
	vsnprintf(rq->err_msg, sizeof(rq->err_msg), fmt, ap);
	va_end(ap);
}

enum MHD_Result ctl_send_store_error(struct ctl_req *rq, int err, const char *what)
{
	switch (err) {
	case -ENOENT:
		return ctl_send_error(rq, MHD_HTTP_NOT_FOUND, NULL, "%s not found", what);
	case -EEXIST:
	case -ESTALE:
		return ctl_send_error(rq, MHD_HTTP_CONFLICT, NULL,
				      "%s: conflicts with its current state", what);
	case -EINVAL:
		/* The store explains its refusals in the calling thread's message. */
		return ctl_send_error(rq, MHD_HTTP_BAD_REQUEST, NULL, "%s: %s", what,
				      ctl_store_errmsg()[0] ? ctl_store_errmsg()
							    : "invalid request");
	case -EPERM:
		return ctl_send_error(rq, MHD_HTTP_FORBIDDEN, NULL, "%s: not allowed", what);
	default:
		fj_err("store: %s: %s (%s)", what, strerror(-err), ctl_store_errmsg());
		return ctl_send_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL,
				      "%s: internal store error", what);
	}
}

const char *ctl_req_arg(struct ctl_req *rq, const char *key)
{
	size_t i;

	for (i = 0; i < rq->n_args; i++)
		if (strcmp(rq->args[i].key, key) == 0)
			return rq->args[i].value;
	return NULL;
}

/* ---- routing ------------------------------------------------------------ */

/* Matches path against pattern, capturing '*' segments into rq->seg. */
static int match(const char *pattern, const char *path, struct ctl_req *rq, int capture)
{
	const char *p = pattern, *u = path;
	size_t n = 0;

	while (*p && *u) {
		if (*p == '*') {
			size_t len = strcspn(u, "/");

			if (len == 0 || len > MAX_SEG_LEN || n >= CTL_MAX_SEGS)
				return 0;
			if (capture) {
				rq->seg[n] = strndup(u, len);
				if (!rq->seg[n])
					return 0;
			}
			n++;
			p++;
			u += len;
			continue;
		}
		if (*p != *u)
			return 0;
		p++;
		u++;
	}
	if (*p || *u)
		return 0;
	if (capture)
		rq->n_seg = n;
	return 1;
}

/* Finds the route; answers 404 or 405 itself and returns NULL when there is none. */
static const struct ctl_route *route_find(struct ctl_req *rq, const char *method, const char *url)
{
	char allow[64] = "";
	size_t i;

	for (i = 0; i < ctl_n_routes; i++) {
		const struct ctl_route *r = &ctl_routes[i];

		if (!match(r->pattern, url, rq, 0))
			continue;
		if (strcmp(r->method, method) == 0) {
			if (!match(r->pattern, url, rq, 1))
				return NULL;
			rq->route_idx = i;
			return r;
		}
		if (!strstr(allow, r->method) &&
		    strlen(allow) + strlen(r->method) + 3 < sizeof(allow)) {
			if (allow[0])
				strcat(allow, ", ");
			strcat(allow, r->method);
		}
	}
	if (allow[0]) {
		ctl_req_defer_error(rq, MHD_HTTP_METHOD_NOT_ALLOWED, NULL,
				    "method %s is not allowed on %s (allowed: %s)", method, url,
				    allow);
		ctl_req_defer_header(rq, MHD_HTTP_HEADER_ALLOW, allow);
	} else {
		ctl_req_defer_error(rq, MHD_HTTP_NOT_FOUND, NULL, "no route for %s %s", method,
				    url);
	}
	return NULL;
}

/* ---- negotiation ---------------------------------------------------------- */

static int negotiate(struct ctl_req *rq, const char *accept)
{
	static const struct {
		enum ctl_fmt fmt;
		const char *type, *sub;
	} cand[] = {
		{ CTL_FMT_JSON, "application", "json" },
		{ CTL_FMT_PB, "application", "x-protobuf" },
		{ CTL_FMT_CSV, "text", "csv" },
	};
	int best = 0;
	size_t i;

	rq->out_fmt = CTL_FMT_JSON;
	if (!accept || !accept[0] || rq->route->raw)
		return 0;
	for (i = 0; i < sizeof(cand) / sizeof(cand[0]); i++) {
		int q;

		if (cand[i].fmt == CTL_FMT_CSV && !rq->route->csv)
			continue;
		q = ctl_accept_q(accept, cand[i].type, cand[i].sub);
		if (q > best) {
			best = q;
			rq->out_fmt = cand[i].fmt;
		}
	}
	if (best > 0)
		return 0;
	rq->out_fmt = CTL_FMT_JSON;
	ctl_req_defer_error(rq, MHD_HTTP_NOT_ACCEPTABLE, NULL,
			    "cannot answer in any type of Accept '%.100s': this route offers "
			    "application/json, application/x-protobuf%s",
			    accept, rq->route->csv ? ", text/csv" : "");
	return -1;
}

static int content_type(struct ctl_req *rq, const char *ctype, int has_body)
{
	size_t n;

	rq->in_pb = 1;
	if (rq->route->body != CTL_BODY_MSG)
		return 0;
	if (!ctype) {
		if (!has_body)
			return 0;
		ctl_req_defer_error(
			rq, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, NULL,
			"missing Content-Type: send application/json or application/x-protobuf");
		return -1;
	}
	n = strcspn(ctype, "; ");
	if (n == strlen("application/json") && strncasecmp(ctype, "application/json", n) == 0) {
		rq->in_pb = 0;
		return 0;
	}
	if (n == strlen("application/x-protobuf") &&
	    strncasecmp(ctype, "application/x-protobuf", n) == 0)
		return 0;
	ctl_req_defer_error(rq, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, NULL,
			    "unsupported Content-Type '%.100s': send application/json or "
			    "application/x-protobuf",
			    ctype);
	return -1;
}

/* ---- authentication ------------------------------------------------------- */

static int auth_agent(struct ctl_req *rq, const char *hash)
{
	Fjord__V1__Agent *a = NULL;
	Fjord__V1__Role role;
	char *name = NULL;
	int r;

	r = ctl_store_agent_by_token(rq->h->st, hash, &a);
	if (r == 0) {
		rq->agent_id = strdup(a->id);
		protobuf_c_message_free_unpacked(&a->base, NULL);
		return rq->agent_id ? 0 : -ENOMEM;
	}
	if (r != -ENOENT)
		return r;
	if (ctl_store_token_lookup(rq->h->st, hash, &role, &name) == 0) {
		free(name);
		ctl_req_defer_error(rq, MHD_HTTP_FORBIDDEN, NULL,
				    "this route is for agents; a user API token cannot call it");
		return -EPERM;
	}
	ctl_req_defer_error(rq, MHD_HTTP_UNAUTHORIZED, NULL,
			    "unknown agent token: enroll again to get a new one");
	return -EPERM;
}

static int auth_user(struct ctl_req *rq, const char *hash)
{
	Fjord__V1__Agent *a = NULL;
	int r;

	r = ctl_store_token_lookup(rq->h->st, hash, &rq->role, &rq->user);
	if (r == 0) {
		Fjord__V1__Role need = (Fjord__V1__Role)(rq->route->who - CTL_WHO_VIEWER + 1);

		if (rq->role >= need)
			return 0;
		ctl_req_defer_error(rq, MHD_HTTP_FORBIDDEN, NULL,
				    "token '%s' has role %s; %s %s needs role %s or above",
				    rq->user ? rq->user : "", ctl_auth_role_name(rq->role),
				    rq->route->method, rq->route->pattern,
				    ctl_auth_role_name(need));
		return -EPERM;
	}
	if (r != -ENOENT)
		return r;
	if (ctl_store_agent_by_token(rq->h->st, hash, &a) == 0) {
		protobuf_c_message_free_unpacked(&a->base, NULL);
		ctl_req_defer_error(rq, MHD_HTTP_FORBIDDEN, NULL,
				    "this route is for users; an agent token cannot call it");
		return -EPERM;
	}
	ctl_req_defer_error(rq, MHD_HTTP_UNAUTHORIZED, NULL, "unknown or revoked API token");
	return -EPERM;
}

static void authenticate(struct ctl_req *rq)
{
	const char *hdr, *why;
	char tok[160], hash[CTL_TOKEN_HEX + 1];
	int r;

	if (rq->route->who == CTL_WHO_ANYONE)
		return;
	hdr = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	r = ctl_auth_parse_bearer(hdr, tok, sizeof(tok), &why);
	if (r == -ENOENT) {
		ctl_req_defer_error(rq, MHD_HTTP_UNAUTHORIZED, NULL,
				    "missing credentials: send 'Authorization: Bearer TOKEN'");
		return;
	}
	if (r < 0) {
		ctl_req_defer_error(rq, MHD_HTTP_UNAUTHORIZED, NULL, "%s", why);
		return;
	}
	ctl_auth_sha256_hex(tok, strlen(tok), hash);
	r = rq->route->who == CTL_WHO_AGENT ? auth_agent(rq, hash) : auth_user(rq, hash);
	if (r < 0 && r != -EPERM)
		ctl_req_defer_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL,
				    "cannot check credentials: internal store error");
}

/* ---- query parameters ------------------------------------------------------ */

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
				   const char *value)
{
	struct ctl_req *rq = cls;

	(void)kind;
	if (rq->n_args >= CTL_MAX_ARGS) {
		rq->args_overflow = 1;
		return MHD_NO;
	}
	rq->args[rq->n_args].key = key;
	rq->args[rq->n_args].value = value ? value : "";
	rq->n_args++;
	return MHD_YES;
}

static void check_args(struct ctl_req *rq)
{
	size_t i, j;

	MHD_get_connection_values(rq->conn, MHD_GET_ARGUMENT_KIND, collect_arg, rq);
	if (rq->args_overflow) {
		ctl_req_defer_error(rq, MHD_HTTP_BAD_REQUEST, NULL,
				    "too many query parameters (at most %d)", CTL_MAX_ARGS);
		return;
	}
	for (i = 0; i < rq->n_args; i++) {
		const char *const *p = rq->route->params;

		while (p && *p && strcmp(*p, rq->args[i].key) != 0)
			p++;
		if (!p || !*p) {
			ctl_req_defer_error(rq, MHD_HTTP_BAD_REQUEST, rq->args[i].key,
					    "unknown query parameter '%.64s'", rq->args[i].key);
			return;
		}
		for (j = 0; j < i; j++)
			if (strcmp(rq->args[j].key, rq->args[i].key) == 0) {
				ctl_req_defer_error(rq, MHD_HTTP_BAD_REQUEST, rq->args[i].key,
						    "query parameter '%.64s' given twice",
						    rq->args[i].key);
				return;
			}
	}
}

/* ---- request lifecycle ------------------------------------------------------ */

static uint64_t header_u64(struct ctl_req *rq, const char *name, int *present)
{
	const char *v = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, name);
	char *end;
	unsigned long long n;

	*present = v != NULL;
	if (!v)
		return 0;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno || *end || end == v)
		return UINT64_MAX;
	return n;
}

/* First call: everything the headers decide, before any body byte is read. */
static void begin(struct ctl_req *rq, const char *method, const char *url)
{
	const char *ctype, *expect;
	uint64_t clen;
	int has_clen, chunked;

	rq->route = route_find(rq, method, url);
	if (!rq->route) {
		if (!rq->err_status) /* the path segments could not be copied */
			ctl_req_defer_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL,
					    "out of memory");
		return;
	}
	clen = header_u64(rq, MHD_HTTP_HEADER_CONTENT_LENGTH, &has_clen);
	chunked = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND,
					      MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL;
	expect = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT);
	if (negotiate(rq, MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND,
						      MHD_HTTP_HEADER_ACCEPT)) < 0)
		goto out;
	check_args(rq);
	if (rq->err_status)
		goto out;
	authenticate(rq);
	if (rq->err_status)
		goto out;
	ctype = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND,
					    MHD_HTTP_HEADER_CONTENT_TYPE);
	if (content_type(rq, ctype, chunked || (has_clen && clen > 0)) < 0)
		goto out;
	if (rq->route->body == CTL_BODY_MSG && has_clen && clen > rq->h->cfg->max_body_bytes)
		ctl_req_defer_error(rq, MHD_HTTP_CONTENT_TOO_LARGE, NULL,
				    "body of %llu bytes is over the limit of %zu bytes",
				    (unsigned long long)clen, rq->h->cfg->max_body_bytes);
	else if (rq->route->body == CTL_BODY_NONE && (chunked || (has_clen && clen > 0)))
		ctl_req_defer_error(rq, MHD_HTTP_BAD_REQUEST, NULL, "%s %s takes no body",
				    rq->route->method, rq->route->pattern);
	else if (rq->route->body == CTL_BODY_STREAM)
		ctl_trace_put_begin(rq);
out:
	/* A client waiting for "100 Continue" or announcing a huge body gets its
	 * error at once; others send the body anyway, so it is read and dropped
	 * first, or closing the socket would reset the connection before the
	 * client reads the answer. */
	if (rq->err_status && ((expect && strcasecmp(expect, "100-continue") == 0) ||
			       (has_clen && clen > DISCARD_MAX)))
		rq->err_close = 1;
}

static enum MHD_Result answer_deferred(struct ctl_req *rq)
{
	return ctl_send_error_hdr(rq, rq->err_status, rq->err_field[0] ? rq->err_field : NULL,
				  rq->err_hdr, rq->err_hdr_val, rq->err_msg);
}

static void split_decode_error(const char *err, char *field, size_t flen)
{
	size_t n = strcspn(err, ": ");

	field[0] = 0;
	if (err[n] == ':' && n < flen)
		snprintf(field, flen, "%.*s", (int)n, err);
}

static int decode_body(struct ctl_req *rq)
{
	const ProtobufCMessageDescriptor *d = rq->route->msg;
	char err[256], field[96];

	if (rq->in_pb) {
		rq->msg =
			protobuf_c_message_unpack(d, NULL, rq->body_len, (const uint8_t *)rq->body);
		if (!rq->msg) {
			ctl_req_defer_error(rq, MHD_HTTP_BAD_REQUEST, NULL,
					    "body is not a valid protobuf %s", d->name);
			return -EINVAL;
		}
		return 0;
	}
	if (fj_pbjson_decode(d, rq->body ? rq->body : "", rq->body_len, rq->h->cfg->max_body_bytes,
			     &rq->msg, err, sizeof(err)) < 0) {
		split_decode_error(err, field, sizeof(field));
		ctl_req_defer_error(rq, MHD_HTTP_BAD_REQUEST, field[0] ? field : NULL,
				    "bad %s JSON: %s", d->name, err);
		return -EINVAL;
	}
	return 0;
}

static void take_body(struct ctl_req *rq, const char *data, size_t size)
{
	size_t cap = rq->h->cfg->max_body_bytes;
	char *n;

	if (rq->err_status) {
		rq->discarded += size;
		return;
	}
	if (rq->route->body == CTL_BODY_STREAM) {
		ctl_trace_put_data(rq, data, size);
		return;
	}
	if (rq->route->body == CTL_BODY_NONE) {
		ctl_req_defer_error(rq, MHD_HTTP_BAD_REQUEST, NULL, "%s %s takes no body",
				    rq->route->method, rq->route->pattern);
		return;
	}
	if (rq->body_len + size > cap) {
		ctl_req_defer_error(rq, MHD_HTTP_CONTENT_TOO_LARGE, NULL,
				    "body is over the limit of %zu bytes", cap);
		free(rq->body);
		rq->body = NULL;
		rq->body_len = 0;
		return;
	}
	n = realloc(rq->body, rq->body_len + size + 1);
	if (!n) {
		ctl_req_defer_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL, "out of memory");
		return;
	}
	rq->body = n;
	memcpy(rq->body + rq->body_len, data, size);
	rq->body_len += size;
	rq->body[rq->body_len] = 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	struct ctl_http *h = cls;
	struct ctl_req *rq = *con_cls;

	(void)version;
	if (!rq) {
		rq = calloc(1, sizeof(*rq));
		if (!rq)
			return MHD_NO;
		rq->h = h;
		rq->conn = conn;
		rq->route_idx = ctl_n_routes;
		rq->t0_us = fj_mono_us();
		*con_cls = rq;
		begin(rq, method, url);
		if (rq->err_close)
			return answer_deferred(rq);
		return MHD_YES;
	}
	if (rq->answered) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (*upload_data_size) {
		take_body(rq, upload_data, *upload_data_size);
		*upload_data_size = 0;
		if (rq->err_status && rq->discarded > DISCARD_MAX)
			return answer_deferred(rq);
		return MHD_YES;
	}
	if (!rq->err_status && rq->phase == 0 && !rq->msg && rq->route->body == CTL_BODY_MSG)
		decode_body(rq);
	if (rq->err_status)
		return answer_deferred(rq);
	return rq->route->handler(rq);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct ctl_http *h = cls;
	struct ctl_req *rq = *con_cls;
	size_t i;

	(void)conn;
	(void)toe;
	if (!rq)
		return;
	*con_cls = NULL;
	if (rq->status)
		ctl_metrics_observe(h->metrics, rq->route_idx, rq->status,
				    fj_mono_us() - rq->t0_us);
	if (rq->w_listed) {
		pthread_mutex_lock(&h->lock);
		ctl_poll_unwait_locked(rq);
		pthread_mutex_unlock(&h->lock);
	}
	if (rq->w_counted)
		atomic_fetch_sub(&h->polls_held, 1);
	if (rq->up)
		ctl_traces_abort(rq->up);
	ctl_batch_free(rq->batch);
	for (i = 0; i < rq->n_seg; i++)
		free(rq->seg[i]);
	if (rq->msg)
		protobuf_c_message_free_unpacked(rq->msg, NULL);
	free(rq->body);
	free(rq->agent_id);
	free(rq->user);
	free(rq);
}

/* ---- server ------------------------------------------------------------------ */

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[512];

	(void)cls;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	buf[strcspn(buf, "\n")] = 0;
	fj_warn("libmicrohttpd: %s", buf);
}

static int read_file(const char *path, size_t cap, char **out)
{
	FILE *f = fopen(path, "r");
	size_t n;
	char *p;

	*out = NULL;
	if (!f)
		return -errno;
	p = malloc(cap + 1);
	if (!p) {
		fclose(f);
		return -ENOMEM;
	}
	n = fread(p, 1, cap, f);
	fclose(f);
	if (n == cap) {
		free(p);
		return -EFBIG;
	}
	p[n] = 0;
	*out = p;
	return 0;
}

/* Reads the TLS files up front, so a bad path fails before anything starts. */
static int load_tls(struct ctl_http *h, char *err, size_t err_len)
{
	const struct ctl_config *cfg = h->cfg;

	if (!cfg->tls_cert)
		return 0;
	if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
		snprintf(err, err_len, "tls_cert: this libmicrohttpd has no TLS support");
		return -ENOTSUP;
	}
	if (read_file(cfg->tls_cert, 1 << 20, &h->tls_cert_pem) < 0) {
		snprintf(err, err_len, "tls_cert: cannot read '%s'", cfg->tls_cert);
		return -EINVAL;
	}
	if (read_file(cfg->tls_key, 1 << 20, &h->tls_key_pem) < 0) {
		snprintf(err, err_len, "tls_key: cannot read '%s'", cfg->tls_key);
		return -EINVAL;
	}
	return 0;
}

static const char *route_names[64];

static int start_daemon(struct ctl_http *h, char *err, size_t err_len)
{
	const struct ctl_config *cfg = h->cfg;
	struct sockaddr_in6 a6 = { 0 };
	struct sockaddr_in a4 = { 0 };
	struct sockaddr *sa = (struct sockaddr *)&a4;
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
			     MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	const union MHD_DaemonInfo *info;
	struct MHD_OptionItem tls[3] = { { MHD_OPTION_END, 0, NULL } };

	if (inet_pton(AF_INET, cfg->listen, &a4.sin_addr) == 1) {
		a4.sin_family = AF_INET;
		a4.sin_port = htons(cfg->port);
	} else if (inet_pton(AF_INET6, cfg->listen, &a6.sin6_addr) == 1) {
		a6.sin6_family = AF_INET6;
		a6.sin6_port = htons(cfg->port);
		sa = (struct sockaddr *)&a6;
		flags |= MHD_USE_IPv6;
	} else {
		snprintf(err, err_len, "listen: '%s' is not a numeric address", cfg->listen);
		return -EINVAL;
	}
	if (cfg->tls_cert) {
		flags |= MHD_USE_TLS;
		tls[0] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0, h->tls_cert_pem };
		tls[1] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0, h->tls_key_pem };
	}
	h->mhd = MHD_start_daemon(
		flags, 0, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
		MHD_OPTION_SOCK_ADDR, sa, MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)cfg->threads,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned int)cfg->max_connections,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)(cfg->long_poll_max_s + 60),
		MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned int)4096, MHD_OPTION_NOTIFY_COMPLETED,
		on_completed, h, MHD_OPTION_ARRAY, tls, MHD_OPTION_END);
	if (!h->mhd) {
		snprintf(err, err_len, "cannot listen on %s port %u (in use, or bad TLS files?)",
			 cfg->listen, cfg->port);
		return -EADDRINUSE;
	}
	info = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_BIND_PORT);
	h->port = info ? info->port : cfg->port;
	return 0;
}

static int copy_config(const struct ctl_config *src, struct ctl_config **out)
{
	struct ctl_config *c;
	size_t i;
	int r;

	r = ctl_config_defaults(&c);
	if (r < 0)
		return r;
	c->port = src->port;
	c->long_poll_max_s = src->long_poll_max_s;
	c->max_body_bytes = src->max_body_bytes;
	c->max_trace_bytes = src->max_trace_bytes;
	c->log_level = src->log_level;
	c->threads = src->threads;
	c->max_connections = src->max_connections;
	if (ctl_config_set_str(&c->listen, src->listen) < 0 ||
	    ctl_config_set_str(&c->data_dir, src->data_dir) < 0 ||
	    ctl_config_set_str(&c->database, src->database) < 0 ||
	    ctl_config_set_str(&c->tls_cert, src->tls_cert) < 0 ||
	    ctl_config_set_str(&c->tls_key, src->tls_key) < 0)
		r = -ENOMEM;
	for (i = 0; r == 0 && i < src->n_sites; i++)
		r = ctl_config_add_site(c, src->sites[i].site, src->sites[i].secret);
	if (r == 0 && !c->database && asprintf(&c->database, "%s/fjord.db", c->data_dir) < 0) {
		c->database = NULL;
		r = -ENOMEM;
	}
	if (r < 0) {
		ctl_config_free(c);
		return r;
	}
	*out = c;
	return 0;
}

int ctl_http_create(const struct ctl_config *cfg, struct ctl_http **out, char *err, size_t err_len)
{
	struct ctl_http *h;
	size_t i;
	int r;

	*out = NULL;
	err[0] = 0;
	if (ctl_n_routes + 1 > sizeof(route_names) / sizeof(route_names[0]))
		return -EINVAL;
	for (i = 0; i < ctl_n_routes; i++)
		route_names[i] = ctl_routes[i].name;
	route_names[ctl_n_routes] = "unmatched";
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->started_ms = fj_wall_ms();
	pthread_mutex_init(&h->lock, NULL);
	pthread_mutex_init(&h->p_lock, NULL);
	r = copy_config(cfg, &h->cfg);
	if (r == 0 && !h->cfg->database)
		r = -EINVAL;
	if (r < 0) {
		snprintf(err, err_len, "bad configuration");
		goto fail;
	}
	r = load_tls(h, err, err_len);
	if (r < 0)
		goto fail;
	r = ctl_traces_open(h->cfg->data_dir, &h->traces);
	if (r < 0) {
		snprintf(err, err_len, "data_dir '%s': %s", h->cfg->data_dir, strerror(-r));
		goto fail;
	}
	r = ctl_store_open(h->cfg->database, &h->st);
	if (r < 0) {
		snprintf(err, err_len, "database '%s': %s (%s)", h->cfg->database, strerror(-r),
			 ctl_store_errmsg());
		goto fail;
	}
	r = ctl_sched_create(h->st, &h->sched);
	if (r < 0) {
		snprintf(err, err_len, "scheduler: %s", strerror(-r));
		goto fail;
	}
	r = ctl_metrics_create(route_names, ctl_n_routes + 1, &h->metrics);
	if (r == 0)
		r = ctl_poll_start(h);
	if (r < 0) {
		snprintf(err, err_len, "cannot start threads: %s", strerror(-r));
		goto fail;
	}
	r = start_daemon(h, err, err_len);
	if (r < 0)
		goto fail;
	fj_info("listening on %s port %u%s", h->cfg->listen, h->port,
		h->cfg->tls_cert ? " (TLS)" : "");
	*out = h;
	return 0;
fail:
	ctl_http_destroy(h);
	return r;
}

uint16_t ctl_http_port(const struct ctl_http *h)
{
	return h->port;
}

struct ctl_store *ctl_http_store(struct ctl_http *h)
{
	return h->st;
}

void ctl_http_destroy(struct ctl_http *h)
{
	int i;

	if (!h)
		return;
	ctl_poll_stop(h);
	/* Held polls were just woken and answer now; suspended result uploads
	 * answer once the store has written them. Both get up to 3 s. */
	for (i = 0;
	     i < 3000 && (atomic_load(&h->async_pending) > 0 || atomic_load(&h->polls_held) > 0);
	     i++)
		usleep(1000);
	if (h->mhd)
		MHD_stop_daemon(h->mhd);
	ctl_poll_finish(h);
	if (h->sched)
		ctl_sched_destroy(h->sched);
	ctl_store_close(h->st);
	ctl_traces_close(h->traces);
	ctl_metrics_destroy(h->metrics);
	ctl_config_free(h->cfg);
	free(h->tls_cert_pem);
	free(h->tls_key_pem);
	pthread_mutex_destroy(&h->lock);
	pthread_mutex_destroy(&h->p_lock);
	free(h);
}

int ctl_http_token_create(struct ctl_store *st, Fjord__V1__Role role, const char *name, char *token)
{
	char hash[CTL_TOKEN_HEX + 1];
	int r;

	r = ctl_auth_new_token(token);
	if (r < 0)
		return r;
	ctl_auth_sha256_hex(token, strlen(token), hash);
	return ctl_store_token_add(st, hash, role, name ? name : "", fj_wall_ms());
}
