/*
 * fjord: command dispatch, global options and option-value parsers.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "census.h"
#include "cli.h"
#include "fj_clock.h"

#define CLI_DEFAULT_URL "http://127.0.0.1:8420"

static const char main_help[] =
	"Usage: fjord [global options] COMMAND [options]\n"
	"\n"
	"Commands:\n"
	"  agents [list | show ID]          enrolled agents and their interfaces\n"
	"  experiments create ...           schedule an experiment (from flags or --file)\n"
	"  experiments list | show ID | cancel ID\n"
	"  runs [filters]                   runs and their states\n"
	"  results [filters]                results with their main metrics\n"
	"  aggregate --metric M --group-by G [filters]\n"
	"                                   count, mean, median, p95 of a metric per group\n"
	"  traces list RUN | get RUN NAME [-o FILE]\n"
	"  census [--isp I] [--from T] [--to T]   what probes found per ISP pair\n"
	"  help [COMMAND]                   this text, or a command's help\n"
	"\n"
	"Run 'fjord COMMAND --help' for the options of a command.\n"
	"\n" CLI_GLOBAL_HELP;

int cli_fail(int code, const char *fmt, ...)
{
	va_list ap;

	fputs("fjord: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return code;
}

int cli_usage(const struct cli *c, const char *fmt, ...)
{
	const char *cmd = c->cmd ? c->cmd : "";
	va_list ap;

	fprintf(stderr, "fjord%s%s: ", *cmd ? " " : "", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see 'fjord%s%s --help')\n", *cmd ? " " : "", cmd);
	return CLI_USAGE;
}

static int set_url(struct cli *c, const char *url)
{
	size_t n = strlen(url);

	if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
		return cli_usage(c, "--controller: '%s' is not an http:// or https:// URL", url);
	while (n > 0 && url[n - 1] == '/')
		n--;
	if (n >= sizeof(c->url) - 256)
		return cli_usage(c, "--controller: URL longer than %zu characters",
				 sizeof(c->url) - 256);
	memcpy(c->url, url, n);
	c->url[n] = '\0';
	return CLI_OK;
}

int cli_global_opt(struct cli *c, int opt, const char *arg)
{
	unsigned int v;

	switch (opt) {
	case CLI_OPT_CONTROLLER:
		return set_url(c, arg) ? -CLI_USAGE : 1;
	case CLI_OPT_TOKEN:
		c->token = arg;
		return 1;
	case CLI_OPT_CACERT:
		c->cacert = arg;
		return 1;
	case CLI_OPT_TIMEOUT:
		if (cli_parse_duration(c, "--timeout", arg, &v))
			return -CLI_USAGE;
		if (v == 0)
			return -cli_usage(c, "--timeout: must be at least 1 second");
		c->timeout_s = v;
		return 1;
	case CLI_OPT_JSON:
	case CLI_OPT_CSV:
	case CLI_OPT_TABLE: {
		enum cli_format f = opt == CLI_OPT_JSON	 ? CLI_FMT_JSON
				    : opt == CLI_OPT_CSV ? CLI_FMT_CSV
							 : CLI_FMT_TABLE;

		if (c->fmt_set && c->fmt != f)
			return -cli_usage(c, "--json, --csv and --table exclude each other");
		c->fmt = f;
		c->fmt_set = 1;
		return 1;
	}
	default:
		return 0;
	}
}

int cli_getopt(struct cli *c, int argc, char **argv, const struct option *opts, const char *help,
	       int (*fn)(struct cli *c, int opt, const char *arg, void *ctx), void *ctx,
	       int *first_arg)
{
	int opt, r;

	optind = 0; /* full re-initialisation: every command parses its own argv */
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":ho:", opts, NULL)) != -1) {
		if (opt == 'h') {
			fputs(help, stdout);
			return -1;
		}
		if (opt == '?')
			return cli_usage(c, "unknown option '%s'", argv[optind - 1]);
		if (opt == ':')
			return cli_usage(c, "option '%s' needs a value", argv[optind - 1]);
		r = cli_global_opt(c, opt, optarg);
		if (r < 0)
			return -r;
		if (r > 0)
			continue;
		r = fn ? fn(c, opt, optarg, ctx) : -1;
		if (r < 0 && opt < 0x100)
			return cli_usage(c, "option '-%c' is not valid here", opt);
		if (r < 0)
			return cli_usage(c, "option '%s' is not valid here", argv[optind - 1]);
		if (r != CLI_OK)
			return r;
	}
	*first_arg = optind;
	return CLI_OK;
}

int cli_parse_u32(const struct cli *c, const char *opt, const char *s, unsigned int *out)
{
	unsigned long long v;
	char *end;

	errno = 0;
	if (*s < '0' || *s > '9')
		return cli_usage(c, "%s: expected a whole number, got '%s'", opt, s);
	v = strtoull(s, &end, 10);
	if (*end != '\0')
		return cli_usage(c, "%s: expected a whole number, got '%s'", opt, s);
	if (errno == ERANGE || v > UINT_MAX)
		return cli_usage(c, "%s: %s is too large (at most %u)", opt, s, UINT_MAX);
	*out = (unsigned int)v;
	return CLI_OK;
}

int cli_parse_duration(const struct cli *c, const char *opt, const char *s, unsigned int *out_s)
{
	unsigned long long v, mult = 1;
	char *end;

	errno = 0;
	if (*s < '0' || *s > '9')
		return cli_usage(c, "%s: expected a duration such as 30, 30s, 5m or 2h, got '%s'",
				 opt, s);
	v = strtoull(s, &end, 10);
	if (*end && end[1] == '\0') {
		switch (*end) {
		case 's':
			mult = 1;
			break;
		case 'm':
			mult = 60;
			break;
		case 'h':
			mult = 3600;
			break;
		case 'd':
			mult = 86400;
			break;
		default:
			mult = 0;
		}
		end++;
	}
	if (*end != '\0' || mult == 0)
		return cli_usage(c, "%s: expected a duration such as 30, 30s, 5m or 2h, got '%s'",
				 opt, s);
	if (errno == ERANGE || v > UINT_MAX / mult)
		return cli_usage(c, "%s: %s is too long", opt, s);
	*out_s = (unsigned int)(v * mult);
	return CLI_OK;
}

int cli_parse_time(const struct cli *c, const char *opt, const char *s, long long *out_ms)
{
	unsigned int d;
	int64_t ms;

	if (strcmp(s, "now") == 0) {
		*out_ms = fj_wall_ms();
		return CLI_OK;
	}
	if (*s == '+') {
		if (cli_parse_duration(c, opt, s + 1, &d))
			return CLI_USAGE;
		*out_ms = fj_wall_ms() + (long long)d * 1000;
		return CLI_OK;
	}
	if (fj_parse_time(s, &ms) != 0)
		return cli_usage(c,
				 "%s: expected a time (RFC 3339 UTC such as 2026-11-26T20:00:00Z, "
				 "epoch milliseconds, now or +DURATION), got '%s'",
				 opt, s);
	*out_ms = ms;
	return CLI_OK;
}

struct command {
	const char *name;
	int (*fn)(struct cli *c, int argc, char **argv);
};

static const struct command commands[] = {
	{ "agents", cli_cmd_agents },	       { "experiments", cli_cmd_experiments },
	{ "experiment", cli_cmd_experiments }, { "runs", cli_cmd_runs },
	{ "results", cli_cmd_results },	       { "aggregate", cli_cmd_aggregate },
	{ "traces", cli_cmd_traces },	       { "census", cli_cmd_census },
};

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	}
	return NULL;
}

static int run_help(struct cli *c, int argc, char **argv)
{
	const struct command *cmd;
	char *hargv[4];
	int n = 0;

	if (argc < 2) {
		fputs(main_help, stdout);
		return CLI_OK;
	}
	cmd = find_command(argv[1]);
	if (!cmd)
		return cli_usage(c, "no command '%s'", argv[1]);
	c->cmd = cmd->name;
	hargv[n++] = argv[1];
	if (argc > 2)
		hargv[n++] = argv[2];
	hargv[n++] = "--help";
	hargv[n] = NULL;
	return cmd->fn(c, n, hargv);
}

static const struct option main_opts[] = { CLI_GLOBAL_OPTIONS, { NULL, 0, NULL, 0 } };

static int run(struct cli *c, int argc, char **argv)
{
	const struct command *cmd;
	const char *env;
	int opt, r;

	env = getenv("FJORD_CONTROLLER");
	if (set_url(c, env && *env ? env : CLI_DEFAULT_URL))
		return CLI_USAGE;
	env = getenv("FJORD_TOKEN");
	c->token = env && *env ? env : NULL;
	env = getenv("FJORD_CACERT");
	c->cacert = env && *env ? env : NULL;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, "+:h", main_opts, NULL)) != -1) {
		if (opt == 'h') {
			fputs(main_help, stdout);
			return CLI_OK;
		}
		if (opt == '?')
			return cli_usage(c, "unknown option '%s'", argv[optind - 1]);
		if (opt == ':')
			return cli_usage(c, "option '%s' needs a value", argv[optind - 1]);
		r = cli_global_opt(c, opt, optarg);
		if (r < 0)
			return -r;
	}
	if (optind >= argc) {
		fputs(main_help, stderr);
		return cli_usage(c, "no command given");
	}
	if (strcmp(argv[optind], "help") == 0)
		return run_help(c, argc - optind, argv + optind);
	cmd = find_command(argv[optind]);
	if (!cmd)
		return cli_usage(c, "no command '%s'", argv[optind]);
	c->cmd = cmd->name;
	return cmd->fn(c, argc - optind, argv + optind);
}

int main(int argc, char **argv)
{
	struct cli c = { .timeout_s = 60, .fmt = CLI_FMT_TABLE };
	int r;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return cli_fail(CLI_UNREACHABLE, "cannot initialise libcurl");
	r = run(&c, argc, argv);
	curl_global_cleanup();
	if (fflush(stdout) != 0 && r == CLI_OK)
		r = cli_fail(CLI_USAGE, "cannot write the output: %s", strerror(errno));
	return r;
}
