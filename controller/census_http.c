/* GET /api/v1/census: the operational-experience census (docs/operations.md). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "census.h"
#include "fj_clock.h"
#include "http_internal.h"
#include "pbjson.h"

/* Longest bucket: a year; shortest: a minute (finer says nothing about probes). */
#define BUCKET_MIN_S 60
#define BUCKET_MAX_S (366 * 86400)

struct fold {
	Fjord__V1__Census *c;
	const struct census_filter *f;
};

static int fold_one(void *arg, const Fjord__V1__Run *run, const Fjord__V1__Result *res)
{
	struct fold *fo = arg;

	return census_add(fo->c, fo->f, run, res);
}

/* Parses the query; answers 400 itself and returns -1 on a bad value. */
static int parse_census_query(struct ctl_req *rq, struct ctl_query *q, struct census_filter *f)
{
	const char *v;
	char *end;
	long long n;
	int e;

	memset(q, 0, sizeof(*q));
	memset(f, 0, sizeof(*f));
	v = ctl_req_arg(rq, "isp");
	if (v && (!v[0] || strlen(v) > 64)) {
		ctl_send_error(rq, MHD_HTTP_BAD_REQUEST, "isp",
			       "query parameter 'isp': must be 1 to 64 characters");
		return -1;
	}
	q->isp = f->isp = v;
	v = ctl_req_arg(rq, "family");
	if (v && (fj_pbjson_enum_parse(&fjord__v1__address_family__descriptor, v, &e) < 0 || !e)) {
		ctl_send_error(rq, MHD_HTTP_BAD_REQUEST, "family",
			       "query parameter 'family': '%.64s' is not ipv4 or ipv6", v);
		return -1;
	}
	if (v)
		q->family = f->family = (Fjord__V1__AddressFamily)e;
	v = ctl_req_arg(rq, "stack");
	if (v && strcmp(v, "kernel") && strcmp(v, "bundled")) {
		ctl_send_error(rq, MHD_HTTP_BAD_REQUEST, "stack",
			       "query parameter 'stack': '%.64s' is not kernel or bundled", v);
		return -1;
	}
	if (v)
		f->stack = strcmp(v, "bundled") ? FJORD__V1__STACK__STACK_KERNEL
						: FJORD__V1__STACK__STACK_BUNDLED;
	v = ctl_req_arg(rq, "from");
	if (v && fj_parse_time(v, &q->from_ms) < 0) {
		ctl_send_error(rq, MHD_HTTP_BAD_REQUEST, "from",
			       "query parameter 'from': '%.64s' is not RFC 3339 UTC or epoch "
			       "milliseconds",
			       v);
		return -1;
	}
	v = ctl_req_arg(rq, "to");
	if (v && fj_parse_time(v, &q->to_ms) < 0) {
		ctl_send_error(rq, MHD_HTTP_BAD_REQUEST, "to",
			       "query parameter 'to': '%.64s' is not RFC 3339 UTC or epoch "
			       "milliseconds",
			       v);
		return -1;
	}
	if (q->from_ms && q->to_ms && q->from_ms >= q->to_ms) {
		ctl_send_error(rq, MHD_HTTP_BAD_REQUEST, "to",
			       "query parameter 'to': must be after from");
		return -1;
	}
	v = ctl_req_arg(rq, "bucket_s");
	if (v) {
		errno = 0;
		n = strtoll(v, &end, 10);
		if (errno || end == v || *end || n < BUCKET_MIN_S || n > BUCKET_MAX_S) {
			ctl_send_error(rq, MHD_HTTP_BAD_REQUEST, "bucket_s",
				       "query parameter 'bucket_s': '%.64s' is not an integer in "
				       "%d..%d",
				       v, BUCKET_MIN_S, BUCKET_MAX_S);
			return -1;
		}
		f->bucket_ms = n * 1000;
	}
	return 0;
}

enum MHD_Result ctl_route_census(struct ctl_req *rq)
{
	struct census_filter f;
	struct ctl_query q;
	Fjord__V1__Census c;
	struct fold fo = { &c, &f };
	enum MHD_Result mr;
	size_t len = 0;
	char *text;
	int r;

	if (parse_census_query(rq, &q, &f) < 0)
		return MHD_YES;
	fjord__v1__census__init(&c);
	r = ctl_store_census_scan(rq->h->st, &q, fold_one, &fo);
	if (r == -E2BIG) {
		census_clear(&c);
		return ctl_send_error(rq, MHD_HTTP_BAD_REQUEST, NULL,
				      "the census has more than %d cells; narrow it with isp, "
				      "family, from and to, or a longer bucket_s",
				      CENSUS_MAX_CELLS);
	}
	if (r < 0) {
		census_clear(&c);
		return ctl_send_store_error(rq, r, "census query");
	}
	census_sort(&c);
	if (rq->out_fmt != CTL_FMT_CSV) {
		mr = ctl_send_msg(rq, MHD_HTTP_OK, &c.base);
		census_clear(&c);
		return mr;
	}
	text = census_csv(&c, &len);
	census_clear(&c);
	if (!text)
		return ctl_send_error(rq, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL,
				      "out of memory building the census table");
	return ctl_send_data(rq, MHD_HTTP_OK, "text/csv; charset=utf-8", text, len);
}
