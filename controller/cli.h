/*
 * fjord: the user CLI. It talks to fjord-controller over HTTP with libcurl,
 * sends and reads the canonical proto3 JSON mapping (proto/pbjson.h) and
 * prints tables, JSON or CSV.
 *
 * Every command function returns a process exit code (enum cli_exit) and has
 * already printed its message when that code is not CLI_OK, so that scripts
 * can tell a refused request from a typo, an unreachable controller or a
 * broken controller.
 */
#ifndef FJ_CLI_H
#define FJ_CLI_H

#include <getopt.h>
#include <stddef.h>
#include <stdio.h>

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>

enum cli_exit {
	CLI_OK = 0,
	CLI_REFUSED = 1,     /* the controller answered 4xx */
	CLI_USAGE = 2,	     /* bad command line or bad local input */
	CLI_UNREACHABLE = 3, /* no HTTP answer at all */
	CLI_SERVER = 4,	     /* 5xx, or an answer that makes no sense */
};

enum cli_format {
	CLI_FMT_TABLE,
	CLI_FMT_JSON,
	CLI_FMT_CSV,
};

/* Caps: a query answer may hold up to 10,000 results with their samples. */
#define CLI_MAX_ANSWER	  (256u << 20)
#define CLI_MAX_SPEC_FILE (1u << 20)
#define CLI_URL_MAX	  4096

struct cli {
	char url[CLI_URL_MAX]; /* controller base URL, no trailing slash */
	const char *token;     /* bearer token, or NULL */
	const char *cacert;    /* CA bundle for https, or NULL for the system one */
	long timeout_s;	       /* whole-request timeout */
	enum cli_format fmt;
	int fmt_set;	 /* --json/--csv/--table was given */
	const char *cmd; /* "experiments create", for messages */
};

/* ---- options shared by every command ---------------------------------- */

enum {
	CLI_OPT_CONTROLLER = 0x100,
	CLI_OPT_TOKEN,
	CLI_OPT_JSON,
	CLI_OPT_CSV,
	CLI_OPT_TABLE,
	CLI_OPT_CACERT,
	CLI_OPT_TIMEOUT,
	CLI_OPT_FIRST_LOCAL, /* commands number their own long options from here */
};

#define CLI_GLOBAL_OPTIONS                                                                         \
	{ "controller", required_argument, NULL, CLI_OPT_CONTROLLER },                             \
		{ "token", required_argument, NULL, CLI_OPT_TOKEN },                               \
		{ "json", no_argument, NULL, CLI_OPT_JSON },                                       \
		{ "csv", no_argument, NULL, CLI_OPT_CSV },                                         \
		{ "table", no_argument, NULL, CLI_OPT_TABLE },                                     \
		{ "cacert", required_argument, NULL, CLI_OPT_CACERT },                             \
		{ "timeout", required_argument, NULL, CLI_OPT_TIMEOUT },                           \
	{                                                                                          \
		"help", no_argument, NULL, 'h'                                                     \
	}

#define CLI_GLOBAL_HELP                                                                            \
	"Global options (also FJORD_CONTROLLER, FJORD_TOKEN, FJORD_CACERT):\n"                     \
	"  --controller URL   controller base URL (default http://127.0.0.1:8420)\n"               \
	"  --token T          bearer API token (fjord-controller token create)\n"                  \
	"  --json | --csv | --table   output format (default: table)\n"                            \
	"  --cacert FILE      CA certificate(s) for an https controller\n"                         \
	"  --timeout S        give up on a request after S seconds, on a download\n"               \
	"                     when it stalls that long (default 60)\n"                             \
	"Exit codes: 0 ok, 1 refused by the controller (4xx), 2 usage error,\n"                    \
	"  3 controller unreachable, 4 controller error (5xx or a bad answer).\n"

/*
 * Handles one global option returned by getopt_long. Returns 1 when handled,
 * 0 when opt is not a global option, or -CLI_USAGE after printing why.
 */
int cli_global_opt(struct cli *c, int opt, const char *arg);

/*
 * Runs getopt_long over argv with the command's options. For each option that
 * is not global, calls fn(c, opt, optarg, ctx), which returns CLI_OK or an
 * exit code. --help prints help and returns -1 (the caller exits 0). On
 * success *first_arg is the index of the first positional argument (argv is
 * permuted so they come last).
 */
int cli_getopt(struct cli *c, int argc, char **argv, const struct option *opts, const char *help,
	       int (*fn)(struct cli *c, int opt, const char *arg, void *ctx), void *ctx,
	       int *first_arg);

/* Prints "fjord CMD: message (see fjord CMD --help)" to stderr; returns CLI_USAGE. */
int cli_usage(const struct cli *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints "fjord: message" to stderr and returns code. */
int cli_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Number and time parsers for option values: 0, or CLI_USAGE after a message
 * naming the option. Durations take an optional s/m/h/d suffix. Times are
 * RFC 3339 UTC, epoch milliseconds, "now" or "+DURATION" from now. */
int cli_parse_u32(const struct cli *c, const char *opt, const char *s, unsigned int *out);
int cli_parse_duration(const struct cli *c, const char *opt, const char *s, unsigned int *out_s);
int cli_parse_time(const struct cli *c, const char *opt, const char *s, long long *out_ms);

/* ---- HTTP ---------------------------------------------------------------- */

struct cli_buf {
	char *data; /* NUL-terminated; malloc'd, free with cli_buf_free */
	size_t len;
};

void cli_buf_free(struct cli_buf *b);

/*
 * One request. path starts with "/" and may carry a query string. body may be
 * NULL (no body) and is sent as JSON. The answer body goes to out (capped at
 * CLI_MAX_ANSWER) or, when sink is not NULL and the status is 2xx, to sink.
 * Returns CLI_OK on 2xx; otherwise prints the reason (the controller's Error
 * message for 4xx/5xx) and returns the exit code.
 */
int cli_http(const struct cli *c, const char *method, const char *path, const char *body,
	     struct cli_buf *out, FILE *sink);

/* GET path and decode the JSON answer into a new message of desc (*msg,
 * caller frees with protobuf_c_message_free_unpacked). */
int cli_get_msg(const struct cli *c, const char *path, const ProtobufCMessageDescriptor *desc,
		ProtobufCMessage **msg);
/* The same with another method and an optional JSON body. */
int cli_call_msg(const struct cli *c, const char *method, const char *path, const char *body,
		 const ProtobufCMessageDescriptor *desc, ProtobufCMessage **msg);

/* Percent-escapes s for a URL path segment or query value into a malloc'd string. */
char *cli_escape(const char *s);

/* ---- output -------------------------------------------------------------- */

/* Prints msg as indented canonical JSON on stdout. */
int cli_print_json(const ProtobufCMessage *msg);

struct cli_table;

/* A table of strings with a header row; rendered aligned or as CSV. */
struct cli_table *cli_table_new(size_t ncols, const char *const *headers);
/* Adds a row of ncols cells (copied; NULL prints as "-"). 0 or -ENOMEM. */
int cli_table_add(struct cli_table *t, const char *const *cells);
/* Prints to f: aligned columns for CLI_FMT_TABLE, RFC 4180 CSV otherwise. */
void cli_table_print(const struct cli_table *t, enum cli_format fmt, FILE *f);
size_t cli_table_rows(const struct cli_table *t);
void cli_table_free(struct cli_table *t);

/* Formats epoch ms as "2026-11-26 20:36:54" (UTC) or "-" when 0. */
const char *cli_time(long long ms, char *buf, size_t len);
/* Short enum name ("succeeded") or the number when unknown. */
const char *cli_enum(const ProtobufCEnumDescriptor *desc, int value, char *buf, size_t len);

/* ---- commands ------------------------------------------------------------ */

int cli_cmd_agents(struct cli *c, int argc, char **argv);
int cli_cmd_experiments(struct cli *c, int argc, char **argv);
int cli_cmd_runs(struct cli *c, int argc, char **argv);
int cli_cmd_results(struct cli *c, int argc, char **argv);
int cli_cmd_aggregate(struct cli *c, int argc, char **argv);
int cli_cmd_traces(struct cli *c, int argc, char **argv);

#endif
