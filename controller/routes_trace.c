/* Trace routes: resumable upload (PUT, HEAD), download and list. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fj_clock.h"
#include "fj_log.h"
#include "http_internal.h"
#include "http_parse.h"

#define TRACE_DONE 2 /* phase: the trace was stored before; the body is ignored */

static void range_value(uint64_t held, char *buf, size_t len)
{
	snprintf(buf, len, "bytes=0-%" PRIu64, held - 1);
}

/* Defers 404/403 unless the calling agent is the client or server of the run. */
static int defer_run_check(struct ctl_req *rq, const char *run_id)
{
	Fjord__V1__Run *run = NULL;
	int r = ctl_store_run_get(rq->h->st, run_id, &run);

	if (r == -ENOENT) {
		ctl_req_defer_error(rq, MHD_HTTP_NOT_FOUND, NULL, "run '%s' not found", run_id);
		return -1;
	}
	if (r < 0) {
		ctl_req_defer_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL,
				    "run lookup: internal store error");
		return -1;
	}
	r = strcmp(run->client_agent_id, rq->agent_id) != 0 &&
	    strcmp(run->server_agent_id, rq->agent_id) != 0;
	protobuf_c_message_free_unpacked(&run->base, NULL);
	if (r) {
		ctl_req_defer_error(rq, MHD_HTTP_FORBIDDEN, NULL,
				    "agent %s is neither the client nor the server of run %s",
				    rq->agent_id, run_id);
		return -1;
	}
	return 0;
}

static int check_stored(struct ctl_req *rq)
{
	Fjord__V1__TraceInfo *ti = NULL;
	int r = ctl_store_trace_get(rq->h->st, rq->seg[0], rq->seg[1], &ti);

	if (r == -ENOENT)
		return 0;
	if (r < 0) {
		ctl_req_defer_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL,
				    "trace lookup: internal store error");
		return -1;
	}
	if (strcasecmp(ti->sha256, rq->tr_sha) == 0)
		rq->phase = TRACE_DONE;
	else
		ctl_req_defer_error(rq, MHD_HTTP_CONFLICT, NULL,
				    "trace '%s' of run %s is already stored with SHA-256 %s",
				    rq->seg[1], rq->seg[0], ti->sha256);
	protobuf_c_message_free_unpacked(&ti->base, NULL);
	return rq->phase == TRACE_DONE ? 0 : -1;
}

static void defer_conflict(struct ctl_req *rq, uint64_t held, const char *fmt, uint64_t a)
{
	char range[64];

	ctl_req_defer_error(rq, MHD_HTTP_CONFLICT, NULL, fmt, a, held);
	if (held) {
		range_value(held, range, sizeof(range));
		ctl_req_defer_header(rq, "Range", range);
	}
}

void ctl_trace_put_begin(struct ctl_req *rq)
{
	const char *cr, *sha;
	uint64_t held = 0, clen;
	char *end;
	int r;

	if (!ctl_traces_name_ok(rq->seg[1])) {
		ctl_req_defer_error(rq, MHD_HTTP_BAD_REQUEST, "name",
				    "trace name must be 1 to 64 of [A-Za-z0-9._-]");
		return;
	}
	if (defer_run_check(rq, rq->seg[0]) < 0)
		return;
	cr = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, "Content-Range");
	r = ctl_parse_content_range(cr, &rq->tr_first, &rq->tr_last, &rq->tr_total);
	if (r < 0) {
		ctl_req_defer_error(rq, MHD_HTTP_BAD_REQUEST, "Content-Range",
				    r == -ERANGE
					    ? "Content-Range needs FIRST <= LAST < TOTAL"
					    : "Content-Range must be 'bytes FIRST-LAST/TOTAL'");
		return;
	}
	sha = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, "X-Fjord-Sha256");
	if (!sha || !ctl_traces_sha_ok(sha)) {
		ctl_req_defer_error(
			rq, MHD_HTTP_BAD_REQUEST, "X-Fjord-Sha256",
			"X-Fjord-Sha256 must be the 64 hex digits of the file's SHA-256");
		return;
	}
	snprintf(rq->tr_sha, sizeof(rq->tr_sha), "%s", sha);
	if (rq->tr_total > rq->h->cfg->max_trace_bytes) {
		ctl_req_defer_error(rq, MHD_HTTP_CONTENT_TOO_LARGE, "Content-Range",
				    "trace of %" PRIu64 " bytes is over the limit of %" PRIu64
				    " bytes",
				    rq->tr_total, rq->h->cfg->max_trace_bytes);
		return;
	}
	cr = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	clen = cr ? strtoull(cr, &end, 10) : 0;
	if (cr && clen != rq->tr_last - rq->tr_first + 1) {
		ctl_req_defer_error(rq, MHD_HTTP_BAD_REQUEST, "Content-Range",
				    "Content-Length %s does not match Content-Range %" PRIu64
				    "-%" PRIu64,
				    cr, rq->tr_first, rq->tr_last);
		return;
	}
	if (check_stored(rq) < 0 || rq->phase == TRACE_DONE)
		return;
	r = ctl_traces_begin(rq->h->traces, rq->seg[0], rq->seg[1], rq->tr_first, rq->tr_last,
			     rq->tr_total, rq->tr_sha, &rq->up, &held);
	if (r == 0 && held == rq->tr_total)
		rq->tr_full = 1;
	else if (r == -EBUSY)
		ctl_req_defer_error(rq, MHD_HTTP_CONFLICT, NULL,
				    "another upload of trace '%s' of run %s is in progress",
				    rq->seg[1], rq->seg[0]);
	else if (r == -ERANGE)
		defer_conflict(rq, held,
			       "upload must continue at the byte held, not at %" PRIu64
			       " (held: %" PRIu64 " bytes)",
			       rq->tr_first);
	else if (r == -ESTALE)
		/* No Range: the client's next PUT starts at 0, which replaces the old upload. */
		ctl_req_defer_error(rq, MHD_HTTP_CONFLICT, NULL,
				    "a partial upload with another TOTAL or X-Fjord-Sha256 is held "
				    "(%" PRIu64 " bytes); restart from byte 0, not %" PRIu64,
				    held, rq->tr_first);
	else if (r < 0)
		ctl_req_defer_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL,
				    "cannot open the partial upload: %s", strerror(-r));
}

void ctl_trace_put_data(struct ctl_req *rq, const char *data, size_t len)
{
	int r;

	if (rq->phase == TRACE_DONE || rq->tr_full || !rq->up)
		return;
	r = ctl_traces_write(rq->up, data, len);
	if (r == 0)
		return;
	ctl_traces_abort(rq->up);
	rq->up = NULL;
	if (r == -EOVERFLOW)
		ctl_req_defer_error(rq, MHD_HTTP_BAD_REQUEST, "Content-Range",
				    "body is longer than Content-Range %" PRIu64 "-%" PRIu64,
				    rq->tr_first, rq->tr_last);
	else
		ctl_req_defer_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL,
				    "cannot write the partial upload: %s", strerror(-r));
}

static enum MHD_Result send_stored(struct ctl_req *rq, unsigned int status)
{
	Fjord__V1__TraceInfo *ti = NULL;
	enum MHD_Result mr;
	int r = ctl_store_trace_get(rq->h->st, rq->seg[0], rq->seg[1], &ti);

	if (r < 0)
		return ctl_send_store_error(rq, r, "trace");
	mr = ctl_send_msg(rq, status, &ti->base);
	protobuf_c_message_free_unpacked(&ti->base, NULL);
	return mr;
}

static enum MHD_Result send_incomplete(struct ctl_req *rq, uint64_t held)
{
	struct MHD_Response *resp =
		MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
	char range[64];

	if (!resp)
		return MHD_NO;
	if (held) {
		range_value(held, range, sizeof(range));
		MHD_add_response_header(resp, "Range", range);
	}
	return ctl_send_response(rq, MHD_HTTP_PERMANENT_REDIRECT, resp);
}

enum MHD_Result ctl_route_trace_put(struct ctl_req *rq)
{
	Fjord__V1__TraceInfo ti = FJORD__V1__TRACE_INFO__INIT;
	const char *ctype;
	uint64_t held = 0;
	char range[64];
	int r, complete = 0;

	if (rq->phase == TRACE_DONE)
		return send_stored(rq, MHD_HTTP_OK);
	r = ctl_traces_finish(rq->up, &complete, &held);
	rq->up = NULL;
	if (r == -EPIPE) {
		range_value(held, range, sizeof(range));
		return ctl_send_error_hdr(
			rq, MHD_HTTP_BAD_REQUEST, "Content-Range", held ? "Range" : NULL, range,
			"body is shorter than Content-Range says; the range was dropped");
	}
	if (r == -EBADMSG)
		return ctl_send_error(
			rq, MHD_HTTP_UNPROCESSABLE_CONTENT, "X-Fjord-Sha256",
			"SHA-256 of the uploaded file differs from X-Fjord-Sha256 %s; "
			"the upload was discarded",
			rq->tr_sha);
	if (r < 0)
		return ctl_send_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL,
				      "cannot store the trace: %s", strerror(-r));
	if (!complete)
		return send_incomplete(rq, held);
	ctype = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND,
					    MHD_HTTP_HEADER_CONTENT_TYPE);
	ti.run_id = rq->seg[0];
	ti.name = rq->seg[1];
	ti.sha256 = rq->tr_sha;
	for (r = 0; rq->tr_sha[r]; r++)
		if (rq->tr_sha[r] >= 'A' && rq->tr_sha[r] <= 'F')
			rq->tr_sha[r] = (char)(rq->tr_sha[r] - 'A' + 'a');
	ti.size = rq->tr_total;
	ti.content_type =
		(char *)(ctype && strlen(ctype) < 100 ? ctype : "application/octet-stream");
	ti.uploaded_ms = fj_wall_ms();
	r = ctl_store_trace_put(rq->h->st, &ti);
	if (r < 0)
		return ctl_send_store_error(rq, r, "recording the trace");
	fj_info("trace %s of run %s stored (%" PRIu64 " bytes)", ti.name, ti.run_id, ti.size);
	return ctl_send_msg(rq, MHD_HTTP_CREATED, &ti.base);
}

enum MHD_Result ctl_route_trace_head(struct ctl_req *rq)
{
	Fjord__V1__TraceInfo *ti = NULL;
	uint64_t held = 0;
	int r;

	if (!ctl_traces_name_ok(rq->seg[1]))
		return ctl_send_error(rq, MHD_HTTP_BAD_REQUEST, "name",
				      "trace name must be 1 to 64 of [A-Za-z0-9._-]");
	if (ctl_check_run_agent(rq, rq->seg[0], NULL) < 0)
		return MHD_YES;
	r = ctl_store_trace_get(rq->h->st, rq->seg[0], rq->seg[1], &ti);
	if (r == 0) {
		struct MHD_Response *resp =
			MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);

		if (resp)
			MHD_add_response_header(resp, "X-Fjord-Sha256", ti->sha256);
		protobuf_c_message_free_unpacked(&ti->base, NULL);
		return ctl_send_response(rq, MHD_HTTP_OK, resp);
	}
	if (r != -ENOENT)
		return ctl_send_store_error(rq, r, "trace lookup");
	r = ctl_traces_held(rq->h->traces, rq->seg[0], rq->seg[1], &held);
	if (r < 0)
		return ctl_send_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL,
				      "cannot read the partial upload: %s", strerror(-r));
	return send_incomplete(rq, held);
}

enum MHD_Result ctl_route_trace_get(struct ctl_req *rq)
{
	Fjord__V1__TraceInfo *ti = NULL;
	struct MHD_Response *resp;
	char path[4096];
	struct stat sb;
	int r, fd;

	r = ctl_store_trace_get(rq->h->st, rq->seg[0], rq->seg[1], &ti);
	if (r == -ENOENT)
		return ctl_send_error(rq, MHD_HTTP_NOT_FOUND, NULL, "no trace '%s' for run '%s'",
				      rq->seg[1], rq->seg[0]);
	if (r < 0)
		return ctl_send_store_error(rq, r, "trace lookup");
	r = ctl_traces_path(rq->h->traces, ti->sha256, path, sizeof(path));
	fd = r == 0 ? open(path, O_RDONLY | O_CLOEXEC) : -1;
	if (fd < 0 || fstat(fd, &sb) < 0) {
		if (fd >= 0)
			close(fd);
		fj_err("trace %s of run %s: file %s is missing", rq->seg[1], rq->seg[0],
		       ti->sha256);
		protobuf_c_message_free_unpacked(&ti->base, NULL);
		return ctl_send_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL,
				      "the stored trace file is missing");
	}
	resp = MHD_create_response_from_fd((uint64_t)sb.st_size, fd);
	if (!resp) {
		close(fd);
		protobuf_c_message_free_unpacked(&ti->base, NULL);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
				ti->content_type[0] ? ti->content_type
						    : "application/octet-stream");
	MHD_add_response_header(resp, "X-Fjord-Sha256", ti->sha256);
	protobuf_c_message_free_unpacked(&ti->base, NULL);
	return ctl_send_response(rq, MHD_HTTP_OK, resp);
}

enum MHD_Result ctl_route_trace_list(struct ctl_req *rq)
{
	Fjord__V1__TraceList *list = NULL;
	Fjord__V1__Run *run = NULL;
	enum MHD_Result mr;
	int r;

	r = ctl_store_run_get(rq->h->st, rq->seg[0], &run);
	if (r == -ENOENT)
		return ctl_send_error(rq, MHD_HTTP_NOT_FOUND, NULL, "run '%s' not found",
				      rq->seg[0]);
	if (r < 0)
		return ctl_send_store_error(rq, r, "run lookup");
	protobuf_c_message_free_unpacked(&run->base, NULL);
	r = ctl_store_trace_list(rq->h->st, rq->seg[0], &list);
	if (r < 0)
		return ctl_send_store_error(rq, r, "trace list");
	mr = ctl_send_msg(rq, MHD_HTTP_OK, &list->base);
	protobuf_c_message_free_unpacked(&list->base, NULL);
	return mr;
}
