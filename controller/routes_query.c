/* Query routes: runs, results and aggregates, with filters and CSV tables. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fj_clock.h"
#include "http_internal.h"
#include "http_parse.h"
#include "pbjson.h"

#define CSV_MAX (256u << 20)

static const char *req_arg(void *ctx, const char *key)
{
	return ctl_req_arg(ctx, key);
}

/* Fills q from the query string; answers 400 itself and returns -1 on a bad value. */
static int parse_filters(struct ctl_req *rq, struct ctl_query *q)
{
	char field[64], msg[512];

	if (ctl_query_parse(req_arg, rq, q, field, sizeof(field), msg, sizeof(msg)) < 0) {
		ctl_send_error(rq, MHD_HTTP_BAD_REQUEST, field, "%s", msg);
		return -1;
	}
	return 0;
}

/* ---- CSV ------------------------------------------------------------------ */

static void csv_time(struct ctl_buf *b, int64_t ms)
{
	char t[40] = "";

	if (ms)
		fj_format_time(ms, t, sizeof(t));
	ctl_buf_puts(b, t);
}

static const char *short_name(const ProtobufCEnumDescriptor *d, int v)
{
	const char *s = fj_pbjson_enum_short(d, v);

	return s ? s : "";
}

static void csv_paths(struct ctl_buf *b, const Fjord__V1__Run *run)
{
	struct ctl_buf p;
	size_t i, len;
	char *s;

	ctl_buf_init(&p, 65536);
	for (i = 0; i < run->n_paths; i++)
		ctl_buf_printf(&p, "%s%s>%s/%s", i ? ";" : "", run->paths[i]->local_isp,
			       run->paths[i]->remote_isp,
			       short_name(&fjord__v1__address_family__descriptor,
					  run->paths[i]->family));
	s = ctl_buf_take(&p, &len);
	ctl_buf_csv(b, s ? s : "");
	free(s);
}

static void csv_run_cells(struct ctl_buf *b, const Fjord__V1__Run *r)
{
	ctl_buf_csv(b, r->id);
	ctl_buf_puts(b, ",");
	ctl_buf_csv(b, r->experiment_id);
	ctl_buf_printf(b, ",%s,%s,", short_name(&fjord__v1__experiment_type__descriptor, r->type),
		       short_name(&fjord__v1__stack__descriptor, r->stack));
	ctl_buf_csv(b, r->client_agent_id);
	ctl_buf_puts(b, ",");
	ctl_buf_csv(b, r->server_agent_id);
	ctl_buf_puts(b, ",");
	ctl_buf_csv(b, r->client_site);
	ctl_buf_puts(b, ",");
	ctl_buf_csv(b, r->server_site);
	ctl_buf_puts(b, ",");
	csv_paths(b, r);
	ctl_buf_printf(b, ",%s,", short_name(&fjord__v1__run_state__descriptor, r->state));
	ctl_buf_csv(b, r->reason);
	ctl_buf_printf(b, ",%u,", r->sequence);
	csv_time(b, r->due_ms);
	ctl_buf_puts(b, ",");
	csv_time(b, r->dispatched_ms);
	ctl_buf_puts(b, ",");
	csv_time(b, r->started_ms);
	ctl_buf_puts(b, ",");
	csv_time(b, r->finished_ms);
	ctl_buf_puts(b, ",");
	csv_time(b, r->deadline_ms);
}

static const char run_header[] = "run_id,experiment_id,type,stack,client_agent_id,server_agent_id,"
				 "client_site,server_site,paths,state,reason,sequence,due,"
				 "dispatched,started,finished,deadline";

static enum MHD_Result send_csv(struct ctl_req *rq, struct ctl_buf *b)
{
	size_t len = 0;
	char *text = ctl_buf_take(b, &len);

	if (!text)
		return ctl_send_error(
			rq, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL,
			"the table is too large for CSV; narrow the query or lower limit");
	return ctl_send_data(rq, MHD_HTTP_OK, "text/csv; charset=utf-8", text, len);
}

/* ---- routes ------------------------------------------------------------------ */

enum MHD_Result ctl_route_runs(struct ctl_req *rq)
{
	Fjord__V1__RunList *list = NULL;
	struct ctl_query q;
	enum MHD_Result mr;
	struct ctl_buf b;
	size_t i;
	int r;

	if (parse_filters(rq, &q) < 0)
		return MHD_YES;
	r = ctl_store_runs_query(rq->h->st, &q, &list);
	if (r < 0)
		return ctl_send_store_error(rq, r, "run query");
	if (rq->out_fmt != CTL_FMT_CSV) {
		mr = ctl_send_msg(rq, MHD_HTTP_OK, &list->base);
		protobuf_c_message_free_unpacked(&list->base, NULL);
		return mr;
	}
	ctl_buf_init(&b, CSV_MAX);
	ctl_buf_printf(&b, "%s\r\n", run_header);
	for (i = 0; i < list->n_runs; i++) {
		csv_run_cells(&b, list->runs[i]);
		ctl_buf_puts(&b, "\r\n");
	}
	protobuf_c_message_free_unpacked(&list->base, NULL);
	return send_csv(rq, &b);
}

enum MHD_Result ctl_route_run(struct ctl_req *rq)
{
	Fjord__V1__Run *run = NULL;
	enum MHD_Result mr;
	int r = ctl_store_run_get(rq->h->st, rq->seg[0], &run);

	if (r == -ENOENT)
		return ctl_send_error(rq, MHD_HTTP_NOT_FOUND, NULL, "run '%s' not found",
				      rq->seg[0]);
	if (r < 0)
		return ctl_send_store_error(rq, r, "run lookup");
	mr = ctl_send_msg(rq, MHD_HTTP_OK, &run->base);
	protobuf_c_message_free_unpacked(&run->base, NULL);
	return mr;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted, distinct metric names over all rows (borrowed from the list). */
static const char **metric_names(const Fjord__V1__ResultList *list, size_t *n)
{
	size_t i, j, k = 0, total = 0;
	const char **names;

	for (i = 0; i < list->n_rows; i++)
		if (list->rows[i]->result)
			total += list->rows[i]->result->n_metrics;
	names = calloc(total ? total : 1, sizeof(*names));
	if (!names)
		return NULL;
	for (i = 0; i < list->n_rows; i++) {
		const Fjord__V1__Result *res = list->rows[i]->result;

		for (j = 0; res && j < res->n_metrics; j++)
			names[k++] = res->metrics[j]->name;
	}
	qsort(names, k, sizeof(*names), cmp_str);
	for (i = 0, j = 0; i < k; i++)
		if (j == 0 || strcmp(names[j - 1], names[i]) != 0)
			names[j++] = names[i];
	*n = j;
	return names;
}

static void csv_result_row(struct ctl_buf *b, const Fjord__V1__ResultRow *row, const char **names,
			   size_t n_names)
{
	static const Fjord__V1__Run empty_run = FJORD__V1__RUN__INIT;
	static const Fjord__V1__Result empty_res = FJORD__V1__RESULT__INIT;
	const Fjord__V1__Run *run = row->run ? row->run : &empty_run;
	const Fjord__V1__Result *res = row->result ? row->result : &empty_res;
	size_t i, j;

	csv_run_cells(b, run);
	ctl_buf_puts(b, ",");
	ctl_buf_csv(b, res->agent_id);
	ctl_buf_printf(b, ",%s,", res->ok ? "true" : "false");
	ctl_buf_csv(b, res->error);
	ctl_buf_puts(b, ",");
	csv_time(b, res->started_ms);
	ctl_buf_puts(b, ",");
	csv_time(b, res->finished_ms);
	for (i = 0; i < n_names; i++) {
		ctl_buf_puts(b, ",");
		for (j = 0; j < res->n_metrics; j++)
			if (strcmp(res->metrics[j]->name, names[i]) == 0) {
				ctl_buf_printf(b, "%.15g", res->metrics[j]->value);
				break;
			}
	}
	ctl_buf_puts(b, "\r\n");
}

enum MHD_Result ctl_route_results(struct ctl_req *rq)
{
	Fjord__V1__ResultList *list = NULL;
	const char **names;
	struct ctl_query q;
	enum MHD_Result mr;
	struct ctl_buf b;
	size_t i, n_names = 0;
	int r;

	if (parse_filters(rq, &q) < 0)
		return MHD_YES;
	r = ctl_store_results_query(rq->h->st, &q, &list);
	if (r < 0)
		return ctl_send_store_error(rq, r, "result query");
	if (rq->out_fmt != CTL_FMT_CSV) {
		mr = ctl_send_msg(rq, MHD_HTTP_OK, &list->base);
		protobuf_c_message_free_unpacked(&list->base, NULL);
		return mr;
	}
	names = metric_names(list, &n_names);
	ctl_buf_init(&b, CSV_MAX);
	ctl_buf_printf(&b, "%s,agent_id,ok,error,result_started,result_finished", run_header);
	for (i = 0; names && i < n_names; i++) {
		ctl_buf_puts(&b, ",");
		ctl_buf_csv(&b, names[i]);
	}
	ctl_buf_puts(&b, "\r\n");
	for (i = 0; names && i < list->n_rows; i++)
		csv_result_row(&b, list->rows[i], names, n_names);
	if (!names)
		b.err = -ENOMEM;
	free(names);
	protobuf_c_message_free_unpacked(&list->base, NULL);
	return send_csv(rq, &b);
}

enum MHD_Result ctl_route_aggregates(struct ctl_req *rq)
{
	Fjord__V1__AggregateResponse *agg = NULL;
	const char *metric = ctl_req_arg(rq, "metric"), *by = ctl_req_arg(rq, "group_by");
	enum ctl_group_by group;
	struct ctl_query q;
	enum MHD_Result mr;
	struct ctl_buf b;
	size_t i;
	int r;

	if (!metric || !metric[0] || strlen(metric) > 128)
		return ctl_send_error(rq, MHD_HTTP_BAD_REQUEST, "metric",
				      "query parameter 'metric' is required (1 to 128 characters)");
	if (!by)
		return ctl_send_error(rq, MHD_HTTP_BAD_REQUEST, "group_by",
				      "query parameter 'group_by' is required");
	if (ctl_group_by_parse(by, &group) < 0)
		return ctl_send_error(rq, MHD_HTTP_BAD_REQUEST, "group_by",
				      "query parameter 'group_by': '%.64s' is not site_pair, "
				      "isp_pair, stack, scheduler or experiment",
				      by);
	if (parse_filters(rq, &q) < 0)
		return MHD_YES;
	r = ctl_store_aggregate(rq->h->st, metric, group, &q, &agg);
	if (r < 0)
		return ctl_send_store_error(rq, r, "aggregate query");
	if (rq->out_fmt != CTL_FMT_CSV) {
		mr = ctl_send_msg(rq, MHD_HTTP_OK, &agg->base);
		protobuf_c_message_free_unpacked(&agg->base, NULL);
		return mr;
	}
	ctl_buf_init(&b, CSV_MAX);
	ctl_buf_puts(&b, "metric,group_by,group,count,mean,median,p95,min,max\r\n");
	for (i = 0; i < agg->n_rows; i++) {
		const Fjord__V1__AggregateRow *row = agg->rows[i];

		ctl_buf_csv(&b, metric);
		ctl_buf_printf(&b, ",%s,", by);
		ctl_buf_csv(&b, row->group);
		ctl_buf_printf(&b, ",%" PRIu64 ",%.15g,%.15g,%.15g,%.15g,%.15g\r\n", row->count,
			       row->mean, row->median, row->p95, row->min, row->max);
	}
	protobuf_c_message_free_unpacked(&agg->base, NULL);
	return send_csv(rq, &b);
}
