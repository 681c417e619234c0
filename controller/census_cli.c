/* fjord census: the operational-experience census (GET /api/v1/census). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "census.h"
#include "cli.h"

static const char census_help[] =
	"Usage: fjord census [--isp I] [--family F] [--stack S] [--from T] [--to T]\n"
	"                    [--bucket S]\n"
	"\n"
	"What probe runs found about MPTCP per local ISP x remote ISP x family:\n"
	"probes, unreachable, MP_CAPABLE ok or stripped, MP_JOIN ok or failed,\n"
	"ADD_ADDR accepted, NAT, DSS checksum errors seen (CSUM_FAIL), checksum\n"
	"tests failed of those run (CSUM_TEST: an ALG rewriting payload), sequence\n"
	"numbers rewritten (SEQ_RW). Findings of the bundled stack's probes are\n"
	"counted apart from the kernel's (a STACK column appears once there are any).\n"
	"\n"
	"  --isp I        only paths with I at either end\n"
	"  --family F     ipv4 or ipv6\n"
	"  --stack S      kernel or bundled findings only\n"
	"  --from T --to T   runs due in [from, to): RFC 3339 UTC, epoch ms, now, +DURATION\n"
	"  --bucket S     one row per S (60s .. 366d) instead of one over the whole range\n"
	"\n" CLI_GLOBAL_HELP;

enum { OPT_ISP = CLI_OPT_FIRST_LOCAL, OPT_FAMILY, OPT_FROM, OPT_TO, OPT_BUCKET, OPT_STACK };

static const struct option census_opts[] = { CLI_GLOBAL_OPTIONS,
					     { "isp", required_argument, NULL, OPT_ISP },
					     { "family", required_argument, NULL, OPT_FAMILY },
					     { "from", required_argument, NULL, OPT_FROM },
					     { "to", required_argument, NULL, OPT_TO },
					     { "bucket", required_argument, NULL, OPT_BUCKET },
					     { "stack", required_argument, NULL, OPT_STACK },
					     { NULL, 0, NULL, 0 } };

struct census_opts {
	char q[1024];
};

static int add(struct census_opts *co, const char *key, const char *value)
{
	char *esc = cli_escape(value);
	size_t len = strlen(co->q);
	int n;

	if (!esc)
		return cli_fail(CLI_USAGE, "out of memory");
	n = snprintf(co->q + len, sizeof(co->q) - len, "%s%s=%s", len ? "&" : "?", key, esc);
	free(esc);
	if (n < 0 || (size_t)n >= sizeof(co->q) - len)
		return cli_fail(CLI_USAGE, "the query is longer than %zu characters",
				sizeof(co->q));
	return CLI_OK;
}

static int census_opt(struct cli *c, int opt, const char *arg, void *ctx)
{
	struct census_opts *co = ctx;
	unsigned int s;
	long long ms;
	char buf[32];

	switch (opt) {
	case OPT_ISP:
		if (!*arg || strlen(arg) > 64)
			return cli_usage(c, "--isp: must be 1 to 64 characters");
		return add(co, "isp", arg);
	case OPT_FAMILY:
		if (strcmp(arg, "ipv4") && strcmp(arg, "ipv6"))
			return cli_usage(c, "--family: '%s' is not ipv4 or ipv6", arg);
		return add(co, "family", arg);
	case OPT_STACK:
		if (strcmp(arg, "kernel") && strcmp(arg, "bundled"))
			return cli_usage(c, "--stack: '%s' is not kernel or bundled", arg);
		return add(co, "stack", arg);
	case OPT_FROM:
	case OPT_TO:
		if (cli_parse_time(c, opt == OPT_FROM ? "--from" : "--to", arg, &ms) != 0)
			return CLI_USAGE;
		snprintf(buf, sizeof(buf), "%lld", ms);
		return add(co, opt == OPT_FROM ? "from" : "to", buf);
	case OPT_BUCKET:
		if (cli_parse_duration(c, "--bucket", arg, &s) != 0)
			return CLI_USAGE;
		snprintf(buf, sizeof(buf), "%u", s);
		return add(co, "bucket_s", buf);
	}
	return -1;
}

static void u64(char *buf, size_t len, uint64_t v)
{
	snprintf(buf, len, "%llu", (unsigned long long)v);
}

static int print_census(struct cli *c, const Fjord__V1__Census *cs)
{
	static const char *const hdr[] = { "LOCAL",	"REMOTE",      "FAMILY",   "BUCKET",
					   "PROBES",	"UNREACHABLE", "MPC_OK",   "MPC_STRIPPED",
					   "JOIN_OK",	"JOIN_FAILED", "ADD_ADDR", "NAT",
					   "CSUM_FAIL", "CSUM_TEST",   "SEQ_RW",   "STACK" };
	struct cli_table *t;
	size_t i, ncol = 15;

	/* A STACK column once bundled findings are in: kernel-only tables stay as they were. */
	for (i = 0; i < cs->n_cells; i++)
		if (cs->cells[i]->stack == FJORD__V1__STACK__STACK_BUNDLED)
			ncol = 16;
	t = cli_table_new(ncol, hdr);

	for (i = 0; t && i < cs->n_cells; i++) {
		const Fjord__V1__CensusCell *x = cs->cells[i];
		char v[12][40], fb[32];
		const char *row[16];
		const char *fam = cli_enum(&fjord__v1__address_family__descriptor, (int)x->family,
					   fb, sizeof(fb));
		if (x->bucket_start_ms)
			cli_time(x->bucket_start_ms, v[0], sizeof(v[0]));
		else
			snprintf(v[0], sizeof(v[0]), "-");
		u64(v[1], sizeof(v[1]), x->probes);
		u64(v[2], sizeof(v[2]), x->unreachable);
		u64(v[3], sizeof(v[3]), x->mp_capable_ok);
		u64(v[4], sizeof(v[4]), x->mp_capable_stripped);
		u64(v[5], sizeof(v[5]), x->mp_join_ok);
		u64(v[6], sizeof(v[6]), x->mp_join_failed);
		u64(v[7], sizeof(v[7]), x->add_addr_ok);
		u64(v[8], sizeof(v[8]), x->nat);
		u64(v[9], sizeof(v[9]), x->checksum_failures);
		/* Checksum tests that failed, of those run: "1/2". */
		snprintf(v[10], sizeof(v[10]), "%llu/%llu", (unsigned long long)x->csum_failed,
			 (unsigned long long)x->csum_tested);
		u64(v[11], sizeof(v[11]), x->seq_rewritten);
		row[0] = x->local_isp;
		row[1] = x->remote_isp;
		row[2] = fam;
		for (int k = 0; k < 12; k++)
			row[3 + k] = v[k];
		row[15] = x->stack == FJORD__V1__STACK__STACK_BUNDLED ? "bundled" : "kernel";
		if (cli_table_add(t, row) != 0) {
			cli_table_free(t);
			t = NULL;
		}
	}
	if (!t)
		return cli_fail(CLI_SERVER, "out of memory");
	cli_table_print(t, c->fmt, stdout);
	cli_table_free(t);
	return CLI_OK;
}

int cli_cmd_census(struct cli *c, int argc, char **argv)
{
	struct census_opts co = { .q = "" };
	Fjord__V1__Census *cs;
	char path[sizeof(co.q) + 32];
	int first, r;

	r = cli_getopt(c, argc, argv, census_opts, census_help, census_opt, &co, &first);
	if (r < 0)
		return CLI_OK;
	if (r != CLI_OK)
		return r;
	if (first < argc)
		return cli_usage(c, "unexpected argument '%s'", argv[first]);
	snprintf(path, sizeof(path), "/api/v1/census%s", co.q);
	r = cli_get_msg(c, path, &fjord__v1__census__descriptor, (ProtobufCMessage **)&cs);
	if (r != CLI_OK)
		return r;
	if (c->fmt == CLI_FMT_JSON)
		r = cli_print_json(&cs->base);
	else
		r = print_census(c, cs);
	protobuf_c_message_free_unpacked(&cs->base, NULL);
	return r;
}
