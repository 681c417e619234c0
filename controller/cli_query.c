/*
 * fjord: read-only commands: agents, runs, results, aggregate, traces.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "cli.h"
#include "fjord.pb-c.h"
#include "pbjson.h"

/* Metric columns in a results table; --csv and --json show them all. */
#define CLI_TABLE_METRICS 8
#define CLI_QUERY_MAX	  4096

/* ---- shared helpers ------------------------------------------------------ */

static int print_table(struct cli *c, struct cli_table *t)
{
	if (!t)
		return cli_fail(CLI_SERVER, "out of memory");
	cli_table_print(t, c->fmt, stdout);
	cli_table_free(t);
	return CLI_OK;
}

/* Appends "key=value" (value escaped) to a query string. */
static int query_add(char *q, size_t cap, const char *key, const char *value)
{
	char *esc = cli_escape(value);
	size_t len = strlen(q);
	int n;

	if (!esc)
		return cli_fail(CLI_USAGE, "out of memory");
	n = snprintf(q + len, cap - len, "%s%s=%s", len ? "&" : "?", key, esc);
	free(esc);
	if (n < 0 || (size_t)n >= cap - len)
		return cli_fail(CLI_USAGE, "the query is longer than %zu characters", cap);
	return CLI_OK;
}

/* Whole numbers and large ones (goodput in bit/s) in full, small fractions with
 * four significant digits. */
static void format_number(double v, char *buf, size_t len)
{
	if (isfinite(v) && fabs(v) < 1e15 && (v == floor(v) || fabs(v) >= 1e4))
		snprintf(buf, len, "%.0f", v);
	else
		snprintf(buf, len, "%.4g", v);
}

/* "telenor->uninett/ipv4 ..." for a run's paths. */
static void format_paths(Fjord__V1__Path **paths, size_t n, char *buf, size_t len)
{
	size_t o = 0;
	char eb[16];

	buf[0] = '\0';
	for (size_t i = 0; i < n && o + 1 < len; i++) {
		int w = snprintf(buf + o, len - o, "%s%s->%s/%s", i ? " " : "",
				 *paths[i]->local_isp ? paths[i]->local_isp : "?",
				 *paths[i]->remote_isp ? paths[i]->remote_isp : "?",
				 cli_enum(&fjord__v1__address_family__descriptor, paths[i]->family,
					  eb, sizeof(eb)));

		if (w < 0)
			break;
		o += (size_t)w;
	}
	if (!buf[0] && len > 1)
		snprintf(buf, len, "-");
}

static const char *pair_text(const char *a, const char *b, char *buf, size_t len)
{
	snprintf(buf, len, "%s->%s", *a ? a : "?", *b ? b : "?");
	return buf;
}

/* ---- filters ------------------------------------------------------------- */

enum {
	OPT_EXPERIMENT = CLI_OPT_FIRST_LOCAL,
	OPT_SITE,
	OPT_ISP,
	OPT_FAMILY,
	OPT_STACK,
	OPT_STATE,
	OPT_FROM,
	OPT_TO,
	OPT_AGENT,
	OPT_LIMIT,
	OPT_OFFSET,
	OPT_METRIC,
	OPT_GROUP_BY,
};

#define FILTER_OPTIONS                                                                             \
	{ "experiment", required_argument, NULL, OPT_EXPERIMENT },                                 \
		{ "site", required_argument, NULL, OPT_SITE },                                     \
		{ "isp", required_argument, NULL, OPT_ISP },                                       \
		{ "family", required_argument, NULL, OPT_FAMILY },                                 \
		{ "stack", required_argument, NULL, OPT_STACK },                                   \
		{ "state", required_argument, NULL, OPT_STATE },                                   \
		{ "from", required_argument, NULL, OPT_FROM },                                     \
		{ "to", required_argument, NULL, OPT_TO },                                         \
		{ "agent", required_argument, NULL, OPT_AGENT },                                   \
		{ "limit", required_argument, NULL, OPT_LIMIT },                                   \
	{                                                                                          \
		"offset", required_argument, NULL, OPT_OFFSET                                      \
	}

#define FILTER_HELP                                                                                \
	"Filters (combined with AND):\n"                                                           \
	"  --experiment ID    runs of one experiment\n"                                            \
	"  --site S           client or server site\n"                                             \
	"  --isp I            local or remote ISP of any path\n"                                   \
	"  --family F         ipv4 or ipv6\n"                                                      \
	"  --stack S          bundled, kernel or tcp\n"                                            \
	"  --state S[,S...]   pending, waiting_links, dispatched, running, succeeded,\n"           \
	"                     failed, missed, cancelled\n"                                         \
	"  --from T --to T    due time in [from, to): RFC 3339 UTC, epoch ms, now, +DURATION\n"    \
	"  --agent ID         client or server agent\n"                                            \
	"  --limit N          at most N rows (default 1000, at most 10000)\n"                      \
	"  --offset N         skip the first N rows\n"

struct query_opts {
	char q[CLI_QUERY_MAX]; /* "?k=v&..." built as options arrive */
	const char *metric;
	const char *group_by;
	unsigned int limit; /* 0: the controller's default */
};

/* The controller's page size when no --limit is given (docs/api.md). */
#define CLI_DEFAULT_LIMIT 1000

/* Says on stderr when a page came back full, so that a script or a reader
 * does not take the first page for everything. */
static void note_full_page(const struct query_opts *qo, size_t n)
{
	unsigned int limit = qo->limit ? qo->limit : CLI_DEFAULT_LIMIT;

	if (n >= limit)
		fprintf(stderr,
			"fjord: showing %zu rows, the page size; more may match "
			"(see --limit and --offset)\n",
			n);
}

static int enum_value(struct cli *c, const char *opt, const ProtobufCEnumDescriptor *d,
		      const char *s, const char **short_name)
{
	int v;

	if (fj_pbjson_enum_parse(d, s, &v) != 0 || v == 0 || !fj_pbjson_enum_short(d, v)) {
		char names[256] = "";
		size_t o = 0;

		for (unsigned int i = 0; i < d->n_values && o + 1 < sizeof(names); i++) {
			const char *n = fj_pbjson_enum_short(d, d->values[i].value);
			int w;

			if (!n || d->values[i].value == 0)
				continue;
			w = snprintf(names + o, sizeof(names) - o, "%s%s", o ? ", " : "", n);
			if (w < 0)
				break;
			o += (size_t)w;
		}
		return cli_usage(c, "%s: unknown value '%s' (one of %s)", opt, s, names);
	}
	*short_name = fj_pbjson_enum_short(d, v);
	return CLI_OK;
}

static int add_states(struct cli *c, struct query_opts *qo, const char *list)
{
	char norm[256] = "", *copy, *tok, *save = NULL;
	const char *sn;
	size_t o = 0;
	int r = CLI_OK;

	copy = strdup(list);
	if (!copy)
		return cli_fail(CLI_USAGE, "out of memory");
	for (tok = strtok_r(copy, ",", &save); tok && r == CLI_OK;
	     tok = strtok_r(NULL, ",", &save)) {
		int w;

		r = enum_value(c, "--state", &fjord__v1__run_state__descriptor, tok, &sn);
		if (r != CLI_OK)
			break;
		w = snprintf(norm + o, sizeof(norm) - o, "%s%s", o ? "," : "", sn);
		if (w < 0 || (size_t)w >= sizeof(norm) - o)
			r = cli_usage(c, "--state: too many states");
		else
			o += (size_t)w;
	}
	free(copy);
	if (r == CLI_OK && o == 0)
		r = cli_usage(c, "--state: no state given");
	if (r == CLI_OK)
		r = query_add(qo->q, sizeof(qo->q), "state", norm);
	return r;
}

static int filter_opt(struct cli *c, int opt, const char *arg, void *ctx)
{
	struct query_opts *qo = ctx;
	const char *sn;
	char num[32];
	long long ms;
	unsigned int v;

	switch (opt) {
	case OPT_EXPERIMENT:
		return query_add(qo->q, sizeof(qo->q), "experiment", arg);
	case OPT_SITE:
		return query_add(qo->q, sizeof(qo->q), "site", arg);
	case OPT_ISP:
		return query_add(qo->q, sizeof(qo->q), "isp", arg);
	case OPT_AGENT:
		return query_add(qo->q, sizeof(qo->q), "agent", arg);
	case OPT_FAMILY:
		if (enum_value(c, "--family", &fjord__v1__address_family__descriptor, arg, &sn))
			return CLI_USAGE;
		return query_add(qo->q, sizeof(qo->q), "family", sn);
	case OPT_STACK:
		if (enum_value(c, "--stack", &fjord__v1__stack__descriptor, arg, &sn))
			return CLI_USAGE;
		return query_add(qo->q, sizeof(qo->q), "stack", sn);
	case OPT_STATE:
		return add_states(c, qo, arg);
	case OPT_FROM:
	case OPT_TO:
		if (cli_parse_time(c, opt == OPT_FROM ? "--from" : "--to", arg, &ms))
			return CLI_USAGE;
		snprintf(num, sizeof(num), "%lld", ms);
		return query_add(qo->q, sizeof(qo->q), opt == OPT_FROM ? "from" : "to", num);
	case OPT_LIMIT:
		if (cli_parse_u32(c, "--limit", arg, &v))
			return CLI_USAGE;
		if (v < 1 || v > 10000)
			return cli_usage(c, "--limit: %u is not in 1..10000", v);
		qo->limit = v;
		return query_add(qo->q, sizeof(qo->q), "limit", arg);
	case OPT_OFFSET:
		if (cli_parse_u32(c, "--offset", arg, &v))
			return CLI_USAGE;
		return query_add(qo->q, sizeof(qo->q), "offset", arg);
	case OPT_METRIC:
		qo->metric = arg;
		return CLI_OK;
	case OPT_GROUP_BY:
		qo->group_by = arg;
		return CLI_OK;
	default:
		return -1;
	}
}

/* ---- agents -------------------------------------------------------------- */

static const char agents_help[] =
	"Usage: fjord agents [list]\n"
	"       fjord agents show ID\n"
	"\n"
	"Lists the enrolled agents (id, site, node, online, last seen, interfaces as\n"
	"NAME:ISP), or shows one agent with its interfaces, addresses and stacks.\n"
	"\n" CLI_GLOBAL_HELP;

static const struct option plain_opts[] = { CLI_GLOBAL_OPTIONS, { NULL, 0, NULL, 0 } };

static void interfaces_text(Fjord__V1__Interface **ifs, size_t n, char *buf, size_t len)
{
	size_t o = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n && o + 1 < len; i++) {
		int w = snprintf(buf + o, len - o, "%s%s:%s%s", i ? " " : "", ifs[i]->name,
				 *ifs[i]->isp ? ifs[i]->isp : "?", ifs[i]->up ? "" : "(down)");

		if (w < 0)
			break;
		o += (size_t)w;
	}
}

static int agents_list(struct cli *c)
{
	static const char *const hdr[] = {
		"ID", "SITE", "NODE", "ONLINE", "LAST_SEEN", "INTERFACES"
	};
	Fjord__V1__AgentList *al;
	struct cli_table *t;
	int r;

	r = cli_get_msg(c, "/api/v1/agents", &fjord__v1__agent_list__descriptor,
			(ProtobufCMessage **)&al);
	if (r != CLI_OK)
		return r;
	if (c->fmt == CLI_FMT_JSON) {
		r = cli_print_json(&al->base);
		protobuf_c_message_free_unpacked(&al->base, NULL);
		return r;
	}
	t = cli_table_new(6, hdr);
	for (size_t i = 0; t && i < al->n_agents; i++) {
		Fjord__V1__Agent *a = al->agents[i];
		char seen[32], ifs[1024];
		const char *row[6];

		interfaces_text(a->interfaces, a->n_interfaces, ifs, sizeof(ifs));
		row[0] = a->id;
		row[1] = a->site;
		row[2] = a->node;
		row[3] = a->online ? "yes" : "no";
		row[4] = cli_time(a->last_seen_ms, seen, sizeof(seen));
		row[5] = ifs[0] ? ifs : NULL;
		if (cli_table_add(t, row) != 0) {
			cli_table_free(t);
			t = NULL;
		}
	}
	protobuf_c_message_free_unpacked(&al->base, NULL);
	return print_table(c, t);
}

static int kv_add(struct cli_table *t, const char *k, const char *v)
{
	const char *row[2] = { k, v && *v ? v : NULL };

	return cli_table_add(t, row);
}

static int agents_show(struct cli *c, const char *id)
{
	static const char *const hdr[] = { "FIELD", "VALUE" };
	char path[512], buf[2048], tb[32], eb[16];
	Fjord__V1__Agent *a;
	struct cli_table *t;
	char *esc;
	int r, err = 0;

	esc = cli_escape(id);
	if (!esc)
		return cli_fail(CLI_USAGE, "out of memory");
	snprintf(path, sizeof(path), "/api/v1/agents/%s", esc);
	free(esc);
	r = cli_get_msg(c, path, &fjord__v1__agent__descriptor, (ProtobufCMessage **)&a);
	if (r != CLI_OK)
		return r;
	if (c->fmt == CLI_FMT_JSON) {
		r = cli_print_json(&a->base);
		protobuf_c_message_free_unpacked(&a->base, NULL);
		return r;
	}
	t = cli_table_new(2, hdr);
	if (t) {
		size_t o = 0;

		err |= kv_add(t, "id", a->id);
		err |= kv_add(t, "site", a->site);
		err |= kv_add(t, "node", a->node);
		err |= kv_add(t, "online", a->online ? "yes" : "no");
		err |= kv_add(t, "version", a->version);
		err |= kv_add(t, "kernel", a->kernel_version);
		buf[0] = '\0';
		for (size_t i = 0; i < a->n_stacks && o + 1 < sizeof(buf); i++) {
			int w = snprintf(buf + o, sizeof(buf) - o, "%s%s", i ? "," : "",
					 cli_enum(&fjord__v1__stack__descriptor, a->stacks[i], eb,
						  sizeof(eb)));
			o += w > 0 ? (size_t)w : 0;
		}
		err |= kv_add(t, "stacks", buf);
		err |= kv_add(t, "enrolled", cli_time(a->enrolled_ms, tb, sizeof(tb)));
		err |= kv_add(t, "last_seen", cli_time(a->last_seen_ms, tb, sizeof(tb)));
		for (size_t i = 0; i < a->n_running_run_ids; i++)
			err |= kv_add(t, "running", a->running_run_ids[i]);
		for (size_t i = 0; i < a->n_interfaces; i++) {
			Fjord__V1__Interface *f = a->interfaces[i];
			char key[96];

			o = (size_t)snprintf(buf, sizeof(buf), "isp=%s link=%s %s", f->isp,
					     cli_enum(&fjord__v1__link_type__descriptor,
						      f->link_type, eb, sizeof(eb)),
					     f->up ? "up" : "down");
			for (size_t k = 0; k < f->n_addresses && o + 1 < sizeof(buf); k++) {
				int w = snprintf(buf + o, sizeof(buf) - o, " %s", f->addresses[k]);
				o += w > 0 ? (size_t)w : 0;
			}
			snprintf(key, sizeof(key), "interface %s", f->name);
			err |= kv_add(t, key, buf);
		}
	}
	protobuf_c_message_free_unpacked(&a->base, NULL);
	if (err) {
		cli_table_free(t);
		t = NULL;
	}
	return print_table(c, t);
}

int cli_cmd_agents(struct cli *c, int argc, char **argv)
{
	int first, r;

	r = cli_getopt(c, argc, argv, plain_opts, agents_help, NULL, NULL, &first);
	if (r < 0)
		return CLI_OK;
	if (r != CLI_OK)
		return r;
	if (first >= argc || strcmp(argv[first], "list") == 0) {
		if (first + 1 < argc)
			return cli_usage(c, "'agents list' takes no argument");
		return agents_list(c);
	}
	if (strcmp(argv[first], "show") == 0) {
		c->cmd = "agents show";
		if (argc - first != 2)
			return cli_usage(c, "'agents show' needs exactly one agent ID");
		return agents_show(c, argv[first + 1]);
	}
	return cli_usage(c, "unknown subcommand '%s' (list or show)", argv[first]);
}

/* ---- runs ---------------------------------------------------------------- */

static const char runs_help[] = "Usage: fjord runs [filters]\n"
				"\n"
				"Lists runs with their state, sites, stack, paths and times.\n"
				"\n" FILTER_HELP "\n" CLI_GLOBAL_HELP;

static const struct option filter_opts[] = { CLI_GLOBAL_OPTIONS,
					     FILTER_OPTIONS,
					     { NULL, 0, NULL, 0 } };

static int run_row(struct cli_table *t, const Fjord__V1__Run *run)
{
	char seq[16], due[32], fin[32], sites[160], paths[512], eb1[16], eb2[16], eb3[16];
	const char *row[11];

	snprintf(seq, sizeof(seq), "%u", run->sequence);
	format_paths(run->paths, run->n_paths, paths, sizeof(paths));
	row[0] = run->id;
	row[1] = run->experiment_id;
	row[2] = seq;
	row[3] = cli_enum(&fjord__v1__experiment_type__descriptor, run->type, eb1, sizeof(eb1));
	row[4] = cli_enum(&fjord__v1__stack__descriptor, run->stack, eb2, sizeof(eb2));
	row[5] = pair_text(run->client_site, run->server_site, sites, sizeof(sites));
	row[6] = paths;
	row[7] = cli_enum(&fjord__v1__run_state__descriptor, run->state, eb3, sizeof(eb3));
	row[8] = cli_time(run->due_ms, due, sizeof(due));
	row[9] = cli_time(run->finished_ms, fin, sizeof(fin));
	row[10] = *run->reason ? run->reason : NULL;
	return cli_table_add(t, row);
}

int cli_cmd_runs(struct cli *c, int argc, char **argv)
{
	static const char *const hdr[] = { "ID",    "EXPERIMENT", "SEQ",   "TYPE",
					   "STACK", "SITES",	  "PATHS", "STATE",
					   "DUE",   "FINISHED",	  "REASON" };
	struct query_opts qo = { .q = "" };
	Fjord__V1__RunList *rl;
	struct cli_table *t;
	char path[CLI_QUERY_MAX + 64];
	int first, r;

	r = cli_getopt(c, argc, argv, filter_opts, runs_help, filter_opt, &qo, &first);
	if (r < 0)
		return CLI_OK;
	if (r != CLI_OK)
		return r;
	if (first < argc)
		return cli_usage(c, "unexpected argument '%s'", argv[first]);
	snprintf(path, sizeof(path), "/api/v1/runs%s", qo.q);
	r = cli_get_msg(c, path, &fjord__v1__run_list__descriptor, (ProtobufCMessage **)&rl);
	if (r != CLI_OK)
		return r;
	note_full_page(&qo, rl->n_runs);
	if (c->fmt == CLI_FMT_JSON) {
		r = cli_print_json(&rl->base);
		protobuf_c_message_free_unpacked(&rl->base, NULL);
		return r;
	}
	t = cli_table_new(11, hdr);
	for (size_t i = 0; t && i < rl->n_runs; i++) {
		if (run_row(t, rl->runs[i]) != 0) {
			cli_table_free(t);
			t = NULL;
		}
	}
	protobuf_c_message_free_unpacked(&rl->base, NULL);
	return print_table(c, t);
}

/* ---- results ------------------------------------------------------------- */

static const char results_help[] =
	"Usage: fjord results [filters] [--table | --json | --csv]\n"
	"\n"
	"Lists results: run, sites, stack, paths, whether it succeeded, when it\n"
	"finished and its summary metrics (the table shows the first 8 metric\n"
	"columns; --csv shows all of them, --json the full results with subflows,\n"
	"samples, events and provenance).\n"
	"\n" FILTER_HELP "\n" CLI_GLOBAL_HELP;

/* Metric names over all rows, in the order they first appear. */
struct metric_cols {
	const char **names;
	size_t n;
};

static int collect_metrics(const Fjord__V1__ResultList *rl, struct metric_cols *mc)
{
	mc->names = NULL;
	mc->n = 0;
	for (size_t i = 0; i < rl->n_rows; i++) {
		const Fjord__V1__Result *res = rl->rows[i]->result;

		for (size_t k = 0; res && k < res->n_metrics; k++) {
			const char *name = res->metrics[k]->name;
			const char **nn;
			size_t j;

			for (j = 0; j < mc->n && strcmp(mc->names[j], name) != 0; j++)
				;
			if (j < mc->n)
				continue;
			nn = realloc(mc->names, (mc->n + 1) * sizeof(*nn));
			if (!nn)
				return -ENOMEM;
			mc->names = nn;
			mc->names[mc->n++] = name;
		}
	}
	return 0;
}

static int result_row(struct cli_table *t, const Fjord__V1__ResultRow *row,
		      const struct metric_cols *mc, size_t nm)
{
	static const Fjord__V1__Run no_run = FJORD__V1__RUN__INIT;
	const Fjord__V1__Run *run = row->run ? row->run : &no_run;
	const Fjord__V1__Result *res = row->result;
	char sites[160], paths[512], fin[32], eb[16], vals[CLI_TABLE_METRICS][32];
	const char **cells;
	char(*mv)[32] = NULL;
	int r;

	cells = calloc(7 + nm, sizeof(*cells));
	if (nm > CLI_TABLE_METRICS)
		mv = calloc(nm, sizeof(*mv));
	if (!cells || (nm > CLI_TABLE_METRICS && !mv)) {
		free(cells);
		free(mv);
		return -ENOMEM;
	}
	if (!mv)
		mv = vals;
	format_paths(run->paths, run->n_paths, paths, sizeof(paths));
	cells[0] = *run->id ? run->id : (res ? res->run_id : NULL);
	cells[1] = pair_text(run->client_site, run->server_site, sites, sizeof(sites));
	cells[2] = cli_enum(&fjord__v1__stack__descriptor, run->stack, eb, sizeof(eb));
	cells[3] = paths;
	cells[4] = res ? (res->ok ? "yes" : "no") : NULL;
	cells[5] = cli_time(res ? res->finished_ms : 0, fin, sizeof(fin));
	for (size_t j = 0; j < nm; j++) {
		cells[6 + j] = NULL;
		for (size_t k = 0; res && k < res->n_metrics; k++) {
			if (strcmp(res->metrics[k]->name, mc->names[j]) == 0) {
				format_number(res->metrics[k]->value, mv[j], sizeof(mv[j]));
				cells[6 + j] = mv[j];
				break;
			}
		}
	}
	cells[6 + nm] = res && *res->error ? res->error : NULL;
	r = cli_table_add(t, cells);
	free(cells);
	if (mv != vals)
		free(mv);
	return r;
}

static int print_results(struct cli *c, const Fjord__V1__ResultList *rl)
{
	static const char *const fixed[] = { "RUN", "SITES", "STACK", "PATHS", "OK", "FINISHED" };
	struct metric_cols mc;
	struct cli_table *t = NULL;
	const char **hdr;
	size_t nm;

	if (collect_metrics(rl, &mc) != 0)
		return cli_fail(CLI_SERVER, "out of memory");
	nm = mc.n;
	if (c->fmt == CLI_FMT_TABLE && nm > CLI_TABLE_METRICS)
		nm = CLI_TABLE_METRICS;
	hdr = calloc(7 + nm, sizeof(*hdr));
	if (hdr) {
		memcpy(hdr, fixed, sizeof(fixed));
		for (size_t j = 0; j < nm; j++)
			hdr[6 + j] = mc.names[j];
		hdr[6 + nm] = "ERROR";
		t = cli_table_new(7 + nm, hdr);
	}
	for (size_t i = 0; t && i < rl->n_rows; i++) {
		if (result_row(t, rl->rows[i], &mc, nm) != 0) {
			cli_table_free(t);
			t = NULL;
		}
	}
	free(hdr);
	free(mc.names);
	return print_table(c, t);
}

int cli_cmd_results(struct cli *c, int argc, char **argv)
{
	struct query_opts qo = { .q = "" };
	Fjord__V1__ResultList *rl;
	char path[CLI_QUERY_MAX + 64];
	int first, r;

	r = cli_getopt(c, argc, argv, filter_opts, results_help, filter_opt, &qo, &first);
	if (r < 0)
		return CLI_OK;
	if (r != CLI_OK)
		return r;
	if (first < argc)
		return cli_usage(c, "unexpected argument '%s'", argv[first]);
	snprintf(path, sizeof(path), "/api/v1/results%s", qo.q);
	r = cli_get_msg(c, path, &fjord__v1__result_list__descriptor, (ProtobufCMessage **)&rl);
	if (r != CLI_OK)
		return r;
	note_full_page(&qo, rl->n_rows);
	if (c->fmt == CLI_FMT_JSON)
		r = cli_print_json(&rl->base);
	else
		r = print_results(c, rl);
	protobuf_c_message_free_unpacked(&rl->base, NULL);
	return r;
}

/* ---- aggregate ----------------------------------------------------------- */

static const char aggregate_help[] =
	"Usage: fjord aggregate --metric M --group-by G [filters]\n"
	"\n"
	"Count, mean, median, 95th percentile, min and max of the summary metric M\n"
	"(for example rtt_p50_us) over the matching results, per group.\n"
	"  --metric M         a summary metric name, as 'fjord results' shows them\n"
	"  --group-by G       site_pair, isp_pair, stack, scheduler or experiment\n"
	"\n" FILTER_HELP "\n" CLI_GLOBAL_HELP;

static const struct option aggregate_opts[] = { CLI_GLOBAL_OPTIONS,
						FILTER_OPTIONS,
						{ "metric", required_argument, NULL, OPT_METRIC },
						{ "group-by", required_argument, NULL,
						  OPT_GROUP_BY },
						{ NULL, 0, NULL, 0 } };

static int print_aggregate(struct cli *c, const Fjord__V1__AggregateResponse *ag)
{
	static const char *const hdr[] = { "GROUP", "COUNT", "MEAN", "MEDIAN", "P95", "MIN", "MAX" };
	struct cli_table *t = cli_table_new(7, hdr);

	for (size_t i = 0; t && i < ag->n_rows; i++) {
		const Fjord__V1__AggregateRow *a = ag->rows[i];
		char v[6][32];
		const char *row[7];

		snprintf(v[0], sizeof(v[0]), "%llu", (unsigned long long)a->count);
		format_number(a->mean, v[1], sizeof(v[1]));
		format_number(a->median, v[2], sizeof(v[2]));
		format_number(a->p95, v[3], sizeof(v[3]));
		format_number(a->min, v[4], sizeof(v[4]));
		format_number(a->max, v[5], sizeof(v[5]));
		row[0] = *a->group ? a->group : "(none)";
		for (int k = 0; k < 6; k++)
			row[1 + k] = v[k];
		if (cli_table_add(t, row) != 0) {
			cli_table_free(t);
			t = NULL;
		}
	}
	return print_table(c, t);
}

int cli_cmd_aggregate(struct cli *c, int argc, char **argv)
{
	static const char *const groups[] = { "site_pair", "isp_pair", "stack", "scheduler",
					      "experiment" };
	struct query_opts qo = { .q = "" };
	Fjord__V1__AggregateResponse *ag;
	char path[CLI_QUERY_MAX + 64];
	int first, r, ok = 0;

	r = cli_getopt(c, argc, argv, aggregate_opts, aggregate_help, filter_opt, &qo, &first);
	if (r < 0)
		return CLI_OK;
	if (r != CLI_OK)
		return r;
	if (first < argc)
		return cli_usage(c, "unexpected argument '%s'", argv[first]);
	if (!qo.metric || !*qo.metric)
		return cli_usage(c, "--metric is required");
	if (!qo.group_by)
		return cli_usage(c, "--group-by is required");
	for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++)
		ok |= strcmp(groups[i], qo.group_by) == 0;
	if (!ok)
		return cli_usage(c,
				 "--group-by: unknown value '%s' (one of site_pair, isp_pair, "
				 "stack, scheduler, experiment)",
				 qo.group_by);
	if (query_add(qo.q, sizeof(qo.q), "metric", qo.metric) ||
	    query_add(qo.q, sizeof(qo.q), "group_by", qo.group_by))
		return CLI_USAGE;
	snprintf(path, sizeof(path), "/api/v1/aggregates%s", qo.q);
	r = cli_get_msg(c, path, &fjord__v1__aggregate_response__descriptor,
			(ProtobufCMessage **)&ag);
	if (r != CLI_OK)
		return r;
	if (c->fmt == CLI_FMT_JSON)
		r = cli_print_json(&ag->base);
	else
		r = print_aggregate(c, ag);
	protobuf_c_message_free_unpacked(&ag->base, NULL);
	return r;
}

/* ---- traces -------------------------------------------------------------- */

static const char traces_help[] =
	"Usage: fjord traces list RUN\n"
	"       fjord traces get RUN NAME [-o FILE]\n"
	"\n"
	"Lists the traces uploaded for a run, or downloads one. The download is\n"
	"checked against the SHA-256 the controller recorded; it is written to\n"
	"FILE (default: NAME in the current directory; '-' for standard output)\n"
	"only when it matches.\n"
	"\n" CLI_GLOBAL_HELP;

struct trace_opts {
	const char *out;
};

static int trace_opt(struct cli *c, int opt, const char *arg, void *ctx)
{
	struct trace_opts *to = ctx;

	(void)c;
	if (opt != 'o')
		return -1;
	to->out = arg;
	return CLI_OK;
}

static const struct option trace_opts[] = { CLI_GLOBAL_OPTIONS,
					    { "output", required_argument, NULL, 'o' },
					    { NULL, 0, NULL, 0 } };

static int valid_trace_name(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n > 64 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return 0;
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

static int traces_fetch_list(struct cli *c, const char *run, Fjord__V1__TraceList **tl)
{
	char path[512];
	char *esc = cli_escape(run);

	if (!esc)
		return cli_fail(CLI_USAGE, "out of memory");
	snprintf(path, sizeof(path), "/api/v1/runs/%s/traces", esc);
	free(esc);
	return cli_get_msg(c, path, &fjord__v1__trace_list__descriptor, (ProtobufCMessage **)tl);
}

static int traces_list(struct cli *c, const char *run)
{
	static const char *const hdr[] = { "NAME", "SIZE", "SHA256", "CONTENT_TYPE", "UPLOADED" };
	Fjord__V1__TraceList *tl;
	struct cli_table *t;
	int r;

	r = traces_fetch_list(c, run, &tl);
	if (r != CLI_OK)
		return r;
	if (c->fmt == CLI_FMT_JSON) {
		r = cli_print_json(&tl->base);
		protobuf_c_message_free_unpacked(&tl->base, NULL);
		return r;
	}
	t = cli_table_new(5, hdr);
	for (size_t i = 0; t && i < tl->n_traces; i++) {
		const Fjord__V1__TraceInfo *ti = tl->traces[i];
		char size[32], up[32];
		const char *row[5];

		snprintf(size, sizeof(size), "%llu", (unsigned long long)ti->size);
		row[0] = ti->name;
		row[1] = size;
		row[2] = ti->sha256;
		row[3] = *ti->content_type ? ti->content_type : NULL;
		row[4] = cli_time(ti->uploaded_ms, up, sizeof(up));
		if (cli_table_add(t, row) != 0) {
			cli_table_free(t);
			t = NULL;
		}
	}
	protobuf_c_message_free_unpacked(&tl->base, NULL);
	return print_table(c, t);
}

/* SHA-256 of the whole stream f as lower-case hex; rewinds f. 0 or -EIO. */
static int sha256_file(FILE *f, char hex[65], unsigned long long *size)
{
	unsigned char buf[65536], md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx;
	size_t n;
	int err = 0;

	*size = 0;
	ctx = EVP_MD_CTX_new();
	if (!ctx || fseek(f, 0, SEEK_SET) != 0 || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL))
		err = -EIO;
	while (!err && (n = fread(buf, 1, sizeof(buf), f)) > 0) {
		*size += n;
		if (!EVP_DigestUpdate(ctx, buf, n))
			err = -EIO;
	}
	if (!err && (ferror(f) || !EVP_DigestFinal_ex(ctx, md, &mdlen)))
		err = -EIO;
	EVP_MD_CTX_free(ctx);
	for (unsigned int i = 0; !err && i < mdlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	if (!err && fseek(f, 0, SEEK_SET) != 0)
		err = -EIO;
	return err;
}

static int copy_stream(FILE *from, FILE *to)
{
	char buf[65536];
	size_t n;

	while ((n = fread(buf, 1, sizeof(buf), from)) > 0) {
		if (fwrite(buf, 1, n, to) != n)
			return -EIO;
	}
	return ferror(from) ? -EIO : 0;
}

/* Checks the downloaded bytes in tmp against the recorded TraceInfo. */
static int check_trace(const char *name, FILE *tmp, const Fjord__V1__TraceInfo *ti)
{
	unsigned long long size;
	char hex[65] = "";

	if (sha256_file(tmp, hex, &size) != 0)
		return cli_fail(CLI_USAGE, "cannot read back the download: %s", strerror(errno));
	if (!ti)
		return cli_fail(CLI_SERVER,
				"the controller lists no trace '%s' to check it against", name);
	if (size != ti->size || strcasecmp(hex, ti->sha256) != 0)
		return cli_fail(CLI_SERVER,
				"trace '%s' does not match its record: got %llu bytes with "
				"SHA-256 %s, expected %llu bytes with %s",
				name, size, hex, (unsigned long long)ti->size, ti->sha256);
	return CLI_OK;
}

static int save_trace(const char *name, FILE *tmp, const char *out, const Fjord__V1__TraceInfo *ti)
{
	char part[4200];
	FILE *f;

	if (strcmp(out, "-") == 0)
		return copy_stream(tmp, stdout) ? cli_fail(CLI_USAGE, "cannot write the output")
						: CLI_OK;
	if (snprintf(part, sizeof(part), "%s.part", out) >= (int)sizeof(part))
		return cli_fail(CLI_USAGE, "-o: file name too long");
	f = fopen(part, "wb");
	if (!f)
		return cli_fail(CLI_USAGE, "cannot create %s: %s", part, strerror(errno));
	if (copy_stream(tmp, f) != 0 || fflush(f) != 0 || fsync(fileno(f)) != 0) {
		fclose(f);
		unlink(part);
		return cli_fail(CLI_USAGE, "cannot write %s: %s", part, strerror(errno));
	}
	fclose(f);
	if (rename(part, out) != 0) {
		unlink(part);
		return cli_fail(CLI_USAGE, "cannot rename %s to %s: %s", part, out,
				strerror(errno));
	}
	fprintf(stderr, "fjord: saved trace %s (%llu bytes, SHA-256 %s verified) to %s\n", name,
		(unsigned long long)ti->size, ti->sha256, out);
	return CLI_OK;
}

static int traces_get(struct cli *c, const char *run, const char *name, const char *out)
{
	const Fjord__V1__TraceInfo *ti = NULL;
	Fjord__V1__TraceList *tl;
	struct cli_buf b;
	char path[512];
	char *esc;
	FILE *tmp;
	int r;

	if (!valid_trace_name(name))
		return cli_usage(c, "'%s' is not a trace name ([A-Za-z0-9._-]{1,64})", name);
	r = traces_fetch_list(c, run, &tl);
	if (r != CLI_OK)
		return r;
	for (size_t i = 0; i < tl->n_traces; i++) {
		if (strcmp(tl->traces[i]->name, name) == 0)
			ti = tl->traces[i];
	}
	esc = cli_escape(run);
	tmp = tmpfile();
	if (!esc || !tmp) {
		free(esc);
		if (tmp)
			fclose(tmp);
		protobuf_c_message_free_unpacked(&tl->base, NULL);
		return cli_fail(CLI_USAGE, "cannot create a temporary file: %s", strerror(errno));
	}
	snprintf(path, sizeof(path), "/api/v1/runs/%s/traces/%s", esc, name);
	free(esc);
	r = cli_http(c, "GET", path, NULL, &b, tmp);
	cli_buf_free(&b);
	if (r == CLI_OK && fflush(tmp) != 0)
		r = cli_fail(CLI_USAGE, "cannot write a temporary file: %s", strerror(errno));
	if (r == CLI_OK)
		r = check_trace(name, tmp, ti);
	if (r == CLI_OK)
		r = save_trace(name, tmp, out ? out : name, ti);
	fclose(tmp);
	protobuf_c_message_free_unpacked(&tl->base, NULL);
	return r;
}

int cli_cmd_traces(struct cli *c, int argc, char **argv)
{
	struct trace_opts to = { NULL };
	int first, r;

	r = cli_getopt(c, argc, argv, trace_opts, traces_help, trace_opt, &to, &first);
	if (r < 0)
		return CLI_OK;
	if (r != CLI_OK)
		return r;
	if (first >= argc)
		return cli_usage(c, "which subcommand: list or get?");
	if (strcmp(argv[first], "list") == 0) {
		c->cmd = "traces list";
		if (to.out)
			return cli_usage(c, "-o is for 'traces get'");
		if (argc - first != 2)
			return cli_usage(c, "'traces list' needs exactly one run ID");
		return traces_list(c, argv[first + 1]);
	}
	if (strcmp(argv[first], "get") == 0) {
		c->cmd = "traces get";
		if (argc - first != 3)
			return cli_usage(c, "'traces get' needs a run ID and a trace name");
		return traces_get(c, argv[first + 1], argv[first + 2], to.out);
	}
	return cli_usage(c, "unknown subcommand '%s' (list or get)", argv[first]);
}
