/*
 * fjord experiments: create (from flags or a JSON file), list, show, cancel.
 *
 * Flags are turned into the JSON form of an ExperimentSpec with jansson and
 * then decoded by proto/pbjson, so that the CLI sends exactly what a --file
 * user would and every spec is checked by the same mapping before it leaves.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "fjord.pb-c.h"
#include "pbjson.h"

#define CLI_DEFAULT_MESSAGE_BYTES 100
#define CLI_DEFAULT_MESSAGES	  10
#define CLI_MAX_PAIRS		  256

static const char exp_help[] =
	"Usage: fjord experiments create ...   (see 'fjord experiments create --help')\n"
	"       fjord experiments list\n"
	"       fjord experiments show ID\n"
	"       fjord experiments cancel ID\n"
	"\n"
	"Cancelling an experiment cancels its runs that have not finished.\n"
	"\n" CLI_GLOBAL_HELP;

static const char create_help[] =
	"Usage: fjord experiments create --type TYPE (--pairs A:B[,C:D] | --all-site-pairs\n"
	"           [--sites s1,s2]) [options]\n"
	"       fjord experiments create --file spec.json [--dry-run]\n"
	"\n"
	"TYPE is echo, bulk, rr, handover or probe (docs/experiments.md).\n"
	"\n"
	"Targets:\n"
	"  --pairs A:B[,C:D]    client:server pairs; each side is an agent ID, SITE/NODE,\n"
	"                       or a site with exactly one agent\n"
	"  --all-site-pairs     every ordered pair of sites (one agent per site)\n"
	"  --sites s1,s2        limit --all-site-pairs to these sites\n"
	"  --per-path           one run per local ISP x remote ISP x family (default:\n"
	"                       one multipath run over every selected path)\n"
	"  --isps I1,I2         use only these ISPs on both ends\n"
	"  --local-isps, --remote-isps I1,I2   the same for one end\n"
	"  --family ipv4,ipv6   address families (default ipv4)\n"
	"Stack:\n"
	"  --stack kernel,tcp,bundled   one run per stack (default kernel)\n"
	"  --scheduler S --congestion-control C --path-manager P --checksums\n"
	"Schedule (default: one run now):\n"
	"  --count N --interval S   N runs, one every S (30, 30s, 5m, 2h)\n"
	"  --until TIME             periodic: no run starts after TIME (instead of --count)\n"
	"  --at TIME                first (or only) run at TIME: RFC 3339 UTC, epoch ms,\n"
	"                           now, or +DURATION\n"
	"  --jitter S               random start jitter in [0, S]\n"
	"  --deadline S             a run must finish S after it is due\n"
	"  --pickup S               a due run must be picked up within S\n"
	"  --share-links            runs may share links with other runs\n"
	"Type echo:\n"
	"  --message-bytes N        size of each message (default 100)\n"
	"  --messages N             messages per run (default 10)\n"
	"Types bulk and handover (a handover run is a bulk transfer with link events):\n"
	"  --bytes N                bytes to transfer (suffixes k, M, G or KiB, MiB, GiB)\n"
	"  --duration S             or transfer for this long\n"
	"  --direction D            upload (client sends) or download\n"
	"  --baseline               bulk: also single-path TCP runs over each path\n"
	"  --link-event AT_MS:ISP:ACTION   handover: at AT_MS ms into the transfer, take\n"
	"                           the ISP's link down, up, or make it backup (repeat it)\n"
	"Type rr:\n"
	"  --request-bytes N --response-bytes N --rate N (per second) --duration S\n"
	"Type probe:\n"
	"  --probe-timeout-ms N     give up on a path after N ms\n"
	"Every type:\n"
	"  --sample-interval-ms N   per-subflow sampling interval (10..10000)\n"
	"Other:\n"
	"  --name N                 a name for the experiment\n"
	"  --file FILE              the whole ExperimentSpec as JSON (canonical proto3\n"
	"                           mapping); excludes the flags above\n"
	"  --dry-run                print the spec that would be sent and stop (agent\n"
	"                           names in --pairs are not resolved)\n"
	"\n" CLI_GLOBAL_HELP;

enum {
	OPT_TYPE = CLI_OPT_FIRST_LOCAL,
	OPT_PAIRS,
	OPT_ALL_SITE_PAIRS,
	OPT_SITES,
	OPT_PER_PATH,
	OPT_ISPS,
	OPT_LOCAL_ISPS,
	OPT_REMOTE_ISPS,
	OPT_FAMILY,
	OPT_STACK,
	OPT_SCHEDULER,
	OPT_CC,
	OPT_PM,
	OPT_CHECKSUMS,
	OPT_COUNT,
	OPT_INTERVAL,
	OPT_UNTIL,
	OPT_AT,
	OPT_JITTER,
	OPT_DEADLINE,
	OPT_PICKUP,
	OPT_SHARE_LINKS,
	OPT_NAME,
	OPT_FILE,
	OPT_DRY_RUN,
	OPT_LINK_EVENT,
	OPT_SAMPLE_INTERVAL,
	OPT_PARAM, /* OPT_PARAM + enum param */
};

/* Type parameters given as flags, each valid for some types only. */
enum param {
	P_MSG_BYTES,
	P_MESSAGES,
	P_BYTES,
	P_DURATION,
	P_DIRECTION,
	P_BASELINE,
	P_REQ_BYTES,
	P_RESP_BYTES,
	P_RATE,
	P_PROBE_TIMEOUT,
	N_PARAMS,
};

#define TYPE_BIT(t)	    (1u << FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_##t)
#define CLI_MAX_LINK_EVENTS 64

static const struct param_flag {
	const char *name;
	unsigned int types;
} param_flags[N_PARAMS] = {
	[P_MSG_BYTES] = { "message-bytes", TYPE_BIT(ECHO) },
	[P_MESSAGES] = { "messages", TYPE_BIT(ECHO) },
	[P_BYTES] = { "bytes", TYPE_BIT(BULK) | TYPE_BIT(HANDOVER) },
	[P_DURATION] = { "duration", TYPE_BIT(BULK) | TYPE_BIT(HANDOVER) | TYPE_BIT(RR) },
	[P_DIRECTION] = { "direction", TYPE_BIT(BULK) | TYPE_BIT(HANDOVER) },
	[P_BASELINE] = { "baseline", TYPE_BIT(BULK) },
	[P_REQ_BYTES] = { "request-bytes", TYPE_BIT(RR) },
	[P_RESP_BYTES] = { "response-bytes", TYPE_BIT(RR) },
	[P_RATE] = { "rate", TYPE_BIT(RR) },
	[P_PROBE_TIMEOUT] = { "probe-timeout-ms", TYPE_BIT(PROBE) },
};

static const struct option create_opts[] = {
	CLI_GLOBAL_OPTIONS,
	{ "type", required_argument, NULL, OPT_TYPE },
	{ "pairs", required_argument, NULL, OPT_PAIRS },
	{ "all-site-pairs", no_argument, NULL, OPT_ALL_SITE_PAIRS },
	{ "sites", required_argument, NULL, OPT_SITES },
	{ "per-path", no_argument, NULL, OPT_PER_PATH },
	{ "isps", required_argument, NULL, OPT_ISPS },
	{ "local-isps", required_argument, NULL, OPT_LOCAL_ISPS },
	{ "remote-isps", required_argument, NULL, OPT_REMOTE_ISPS },
	{ "family", required_argument, NULL, OPT_FAMILY },
	{ "stack", required_argument, NULL, OPT_STACK },
	{ "scheduler", required_argument, NULL, OPT_SCHEDULER },
	{ "congestion-control", required_argument, NULL, OPT_CC },
	{ "path-manager", required_argument, NULL, OPT_PM },
	{ "checksums", no_argument, NULL, OPT_CHECKSUMS },
	{ "count", required_argument, NULL, OPT_COUNT },
	{ "interval", required_argument, NULL, OPT_INTERVAL },
	{ "until", required_argument, NULL, OPT_UNTIL },
	{ "at", required_argument, NULL, OPT_AT },
	{ "jitter", required_argument, NULL, OPT_JITTER },
	{ "deadline", required_argument, NULL, OPT_DEADLINE },
	{ "pickup", required_argument, NULL, OPT_PICKUP },
	{ "share-links", no_argument, NULL, OPT_SHARE_LINKS },
	{ "message-bytes", required_argument, NULL, OPT_PARAM + P_MSG_BYTES },
	{ "messages", required_argument, NULL, OPT_PARAM + P_MESSAGES },
	{ "bytes", required_argument, NULL, OPT_PARAM + P_BYTES },
	{ "duration", required_argument, NULL, OPT_PARAM + P_DURATION },
	{ "direction", required_argument, NULL, OPT_PARAM + P_DIRECTION },
	{ "baseline", no_argument, NULL, OPT_PARAM + P_BASELINE },
	{ "request-bytes", required_argument, NULL, OPT_PARAM + P_REQ_BYTES },
	{ "response-bytes", required_argument, NULL, OPT_PARAM + P_RESP_BYTES },
	{ "rate", required_argument, NULL, OPT_PARAM + P_RATE },
	{ "probe-timeout-ms", required_argument, NULL, OPT_PARAM + P_PROBE_TIMEOUT },
	{ "link-event", required_argument, NULL, OPT_LINK_EVENT },
	{ "sample-interval-ms", required_argument, NULL, OPT_SAMPLE_INTERVAL },
	{ "name", required_argument, NULL, OPT_NAME },
	{ "file", required_argument, NULL, OPT_FILE },
	{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
	{ NULL, 0, NULL, 0 },
};

/* What the flags said; -1 / NULL = not given. */
struct create_opts {
	const char *type, *pairs, *sites, *isps, *local_isps, *remote_isps;
	const char *families, *stacks, *scheduler, *cc, *pm, *name, *file;
	int all_site_pairs, per_path, checksums, share_links, dry_run;
	long long count, interval, jitter, deadline, pickup, sample_ms;
	long long at_ms, until_ms;
	long long param[N_PARAMS]; /* -1 = not given */
	const char *events[CLI_MAX_LINK_EVENTS];
	size_t n_events;
	int n_flags; /* spec flags given (for --file exclusivity) */
};

/* A byte count with an optional suffix: k, M, G (powers of 1000) or KiB, MiB,
 * GiB (powers of 1024). */
static int parse_size(const struct cli *c, const char *opt, const char *s, long long *out)
{
	static const struct {
		const char *suffix;
		unsigned long long mult;
	} units[] = { { "", 1 },
		      { "k", 1000 },
		      { "M", 1000000 },
		      { "G", 1000000000 },
		      { "KiB", 1ull << 10 },
		      { "MiB", 1ull << 20 },
		      { "GiB", 1ull << 30 } };
	unsigned long long v;
	char *end;

	errno = 0;
	if (*s < '0' || *s > '9')
		return cli_usage(
			c, "%s: expected a byte count such as 1000000, 10M or 64KiB, got '%s'", opt,
			s);
	v = strtoull(s, &end, 10);
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(end, units[i].suffix) != 0)
			continue;
		if (errno == ERANGE || v > (1ull << 62) / units[i].mult)
			return cli_usage(c, "%s: %s is too large", opt, s);
		*out = (long long)(v * units[i].mult);
		return CLI_OK;
	}
	return cli_usage(c, "%s: expected a byte count such as 1000000, 10M or 64KiB, got '%s'",
			 opt, s);
}

static int param_opt(struct cli *c, struct create_opts *o, enum param p, const char *arg)
{
	char name[40];
	unsigned int v;
	int dir;

	snprintf(name, sizeof(name), "--%s", param_flags[p].name);
	switch (p) {
	case P_BASELINE:
		o->param[p] = 1;
		return CLI_OK;
	case P_BYTES:
		return parse_size(c, name, arg, &o->param[p]);
	case P_DURATION:
		if (cli_parse_duration(c, name, arg, &v))
			return CLI_USAGE;
		break;
	case P_DIRECTION:
		if (fj_pbjson_enum_parse(&fjord__v1__direction__descriptor, arg, &dir) != 0 ||
		    dir == 0)
			return cli_usage(c, "--direction: '%s' is neither upload nor download",
					 arg);
		v = (unsigned int)dir;
		break;
	default:
		if (cli_parse_u32(c, name, arg, &v))
			return CLI_USAGE;
	}
	o->param[p] = v;
	return CLI_OK;
}

static int create_opt(struct cli *c, int opt, const char *arg, void *ctx)
{
	struct create_opts *o = ctx;
	long long *num = NULL;
	unsigned int v;
	const char *name = NULL;

	if (opt != OPT_FILE && opt != OPT_DRY_RUN)
		o->n_flags++;
	switch (opt) {
	case OPT_TYPE:
		o->type = arg;
		return CLI_OK;
	case OPT_PAIRS:
		o->pairs = arg;
		return CLI_OK;
	case OPT_ALL_SITE_PAIRS:
		o->all_site_pairs = 1;
		return CLI_OK;
	case OPT_SITES:
		o->sites = arg;
		return CLI_OK;
	case OPT_PER_PATH:
		o->per_path = 1;
		return CLI_OK;
	case OPT_ISPS:
		o->isps = arg;
		return CLI_OK;
	case OPT_LOCAL_ISPS:
		o->local_isps = arg;
		return CLI_OK;
	case OPT_REMOTE_ISPS:
		o->remote_isps = arg;
		return CLI_OK;
	case OPT_FAMILY:
		o->families = arg;
		return CLI_OK;
	case OPT_STACK:
		o->stacks = arg;
		return CLI_OK;
	case OPT_SCHEDULER:
		o->scheduler = arg;
		return CLI_OK;
	case OPT_CC:
		o->cc = arg;
		return CLI_OK;
	case OPT_PM:
		o->pm = arg;
		return CLI_OK;
	case OPT_CHECKSUMS:
		o->checksums = 1;
		return CLI_OK;
	case OPT_SHARE_LINKS:
		o->share_links = 1;
		return CLI_OK;
	case OPT_NAME:
		o->name = arg;
		return CLI_OK;
	case OPT_FILE:
		o->file = arg;
		return CLI_OK;
	case OPT_DRY_RUN:
		o->dry_run = 1;
		return CLI_OK;
	case OPT_AT:
		return cli_parse_time(c, "--at", arg, &o->at_ms);
	case OPT_UNTIL:
		return cli_parse_time(c, "--until", arg, &o->until_ms);
	case OPT_COUNT:
		num = &o->count;
		name = "--count";
		break;
	case OPT_SAMPLE_INTERVAL:
		num = &o->sample_ms;
		name = "--sample-interval-ms";
		break;
	case OPT_LINK_EVENT:
		if (o->n_events == CLI_MAX_LINK_EVENTS)
			return cli_usage(c, "--link-event: at most %d events", CLI_MAX_LINK_EVENTS);
		o->events[o->n_events++] = arg;
		return CLI_OK;
	case OPT_INTERVAL:
	case OPT_JITTER:
	case OPT_DEADLINE:
	case OPT_PICKUP:
		name = opt == OPT_INTERVAL   ? "--interval"
		       : opt == OPT_JITTER   ? "--jitter"
		       : opt == OPT_DEADLINE ? "--deadline"
					     : "--pickup";
		if (cli_parse_duration(c, name, arg, &v))
			return CLI_USAGE;
		*(opt == OPT_INTERVAL	? &o->interval
		  : opt == OPT_JITTER	? &o->jitter
		  : opt == OPT_DEADLINE ? &o->deadline
					: &o->pickup) = v;
		return CLI_OK;
	default:
		if (opt >= OPT_PARAM && opt < OPT_PARAM + N_PARAMS)
			return param_opt(c, o, (enum param)(opt - OPT_PARAM), arg);
		return -1;
	}
	if (cli_parse_u32(c, name, arg, &v))
		return CLI_USAGE;
	*num = v;
	return CLI_OK;
}

/* ---- building the spec --------------------------------------------------- */

/* Splits a comma list into a JSON array of strings; empty items are refused. */
static int str_list(struct cli *c, const char *opt, const char *list, json_t **out)
{
	json_t *a = json_array();
	const char *p = list;

	if (!a)
		return cli_fail(CLI_USAGE, "out of memory");
	for (;;) {
		size_t n = strcspn(p, ",");

		if (n == 0) {
			json_decref(a);
			return cli_usage(c, "%s: empty item in '%s'", opt, list);
		}
		if (json_array_append_new(a, json_stringn(p, n)) != 0) {
			json_decref(a);
			return cli_fail(CLI_USAGE, "out of memory");
		}
		if (!p[n])
			break;
		p += n + 1;
	}
	*out = a;
	return CLI_OK;
}

/* The same for enum values: each item is parsed and sent by its full name. */
static int enum_list(struct cli *c, const char *opt, const ProtobufCEnumDescriptor *d,
		     const char *list, json_t **out)
{
	json_t *names;
	size_t i;
	json_t *v;
	int r;

	r = str_list(c, opt, list, &names);
	if (r != CLI_OK)
		return r;
	json_array_foreach(names, i, v)
	{
		const ProtobufCEnumValue *ev;
		int num;

		if (fj_pbjson_enum_parse(d, json_string_value(v), &num) != 0 || num == 0 ||
		    !(ev = protobuf_c_enum_descriptor_get_value(d, num))) {
			r = cli_usage(c, "%s: unknown value '%s'", opt, json_string_value(v));
			json_decref(names);
			return r;
		}
		json_array_set_new(names, i, json_string(ev->name));
	}
	*out = names;
	return CLI_OK;
}

static int set_list(struct cli *c, json_t *obj, const char *key, const char *opt, const char *list,
		    const ProtobufCEnumDescriptor *d)
{
	json_t *a;
	int r;

	if (!list)
		return CLI_OK;
	r = d ? enum_list(c, opt, d, list, &a) : str_list(c, opt, list, &a);
	if (r == CLI_OK)
		json_object_set_new(obj, key, a);
	return r;
}

/* json_integer for a 64-bit field: the canonical mapping sends it as a string. */
static json_t *json_int64(long long v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%lld", v);
	return json_string(buf);
}

static int build_targets(struct cli *c, const struct create_opts *o, json_t *spec)
{
	json_t *t = json_object();
	int r = CLI_OK;

	json_object_set_new(spec, "targets", t);
	if (o->pairs && o->all_site_pairs)
		return cli_usage(c, "--pairs and --all-site-pairs exclude each other");
	if (!o->pairs && !o->all_site_pairs)
		return cli_usage(c, "give the targets: --pairs A:B or --all-site-pairs");
	if (o->sites && !o->all_site_pairs)
		return cli_usage(c, "--sites only limits --all-site-pairs");
	if (o->isps && (o->local_isps || o->remote_isps))
		return cli_usage(c, "--isps excludes --local-isps and --remote-isps");
	if (o->all_site_pairs)
		json_object_set_new(t, "allSitePairs", json_true());
	if (o->per_path)
		json_object_set_new(t, "perPath", json_true());
	r = set_list(c, t, "sites", "--sites", o->sites, NULL);
	if (r == CLI_OK)
		r = set_list(c, t, "localIsps", o->isps ? "--isps" : "--local-isps",
			     o->isps ? o->isps : o->local_isps, NULL);
	if (r == CLI_OK)
		r = set_list(c, t, "remoteIsps", o->isps ? "--isps" : "--remote-isps",
			     o->isps ? o->isps : o->remote_isps, NULL);
	if (r == CLI_OK)
		r = set_list(c, t, "families", "--family", o->families,
			     &fjord__v1__address_family__descriptor);
	if (r != CLI_OK || !o->pairs)
		return r;

	json_t *pairs, *p;
	size_t i;

	r = str_list(c, "--pairs", o->pairs, &pairs);
	if (r != CLI_OK)
		return r;
	if (json_array_size(pairs) > CLI_MAX_PAIRS) {
		json_decref(pairs);
		return cli_usage(c, "--pairs: more than %d pairs", CLI_MAX_PAIRS);
	}
	json_array_foreach(pairs, i, p)
	{
		const char *s = json_string_value(p), *colon = strchr(s, ':');
		json_t *ap;

		if (!colon || colon == s || !colon[1] || strchr(colon + 1, ':')) {
			r = cli_usage(c, "--pairs: '%s' is not CLIENT:SERVER", s);
			json_decref(pairs);
			return r;
		}
		ap = json_pack("{s:s%,s:s}", "clientAgentId", s, (size_t)(colon - s),
			       "serverAgentId", colon + 1);
		json_array_set_new(pairs, i, ap);
	}
	json_object_set_new(t, "pairs", pairs);
	return CLI_OK;
}

static int build_schedule(struct cli *c, const struct create_opts *o, json_t *spec)
{
	json_t *s = json_object();

	json_object_set_new(spec, "schedule", s);
	if (o->count == 0)
		return cli_usage(c, "--count: must be at least 1");
	if (o->count > 1 && o->interval < 0)
		return cli_usage(c, "--count %lld needs --interval", o->count);
	if (o->interval == 0)
		return cli_usage(c, "--interval: must be at least 1 second");
	if (o->interval > 0 && o->count < 0 && o->until_ms < 0)
		return cli_usage(c, "a periodic experiment needs --count or --until");
	if (o->until_ms >= 0 && o->interval < 0)
		return cli_usage(c, "--until needs --interval");
	if (o->until_ms >= 0 && o->at_ms >= 0 && o->until_ms <= o->at_ms)
		return cli_usage(c, "--until is not after --at");
	if (o->at_ms >= 0)
		json_object_set_new(s, "startMs", json_int64(o->at_ms));
	if (o->interval > 0)
		json_object_set_new(s, "intervalS", json_integer(o->interval));
	if (o->count > 0 && o->interval > 0)
		json_object_set_new(s, "count", json_integer(o->count));
	if (o->until_ms >= 0)
		json_object_set_new(s, "endMs", json_int64(o->until_ms));
	if (o->jitter >= 0)
		json_object_set_new(s, "jitterS", json_integer(o->jitter));
	return CLI_OK;
}

static int build_stack(struct cli *c, const struct create_opts *o, json_t *spec)
{
	json_t *st = json_object();

	json_object_set_new(spec, "stack", st);
	if (o->scheduler)
		json_object_set_new(st, "scheduler", json_string(o->scheduler));
	if (o->cc)
		json_object_set_new(st, "congestionControl", json_string(o->cc));
	if (o->pm)
		json_object_set_new(st, "pathManager", json_string(o->pm));
	if (o->checksums)
		json_object_set_new(st, "checksums", json_true());
	return set_list(c, st, "stacks", "--stack", o->stacks, &fjord__v1__stack__descriptor);
}

/* --link-event AT_MS:ISP:ACTION into a LinkEvent. */
static int link_event(struct cli *c, const char *s, json_t **out)
{
	const char *a = strchr(s, ':'), *b = a ? strchr(a + 1, ':') : NULL;
	char at[16];
	unsigned int ms;

	if (!a || !b || a == s || b == a + 1 || (size_t)(a - s) >= sizeof(at))
		return cli_usage(c, "--link-event: '%s' is not AT_MS:ISP:ACTION", s);
	memcpy(at, s, (size_t)(a - s));
	at[a - s] = '\0';
	if (cli_parse_u32(c, "--link-event", at, &ms))
		return CLI_USAGE;
	if (strcmp(b + 1, "down") && strcmp(b + 1, "up") && strcmp(b + 1, "backup"))
		return cli_usage(c, "--link-event: action '%s' is not down, up or backup", b + 1);
	*out = json_pack("{s:I,s:s%,s:s}", "atMs", (json_int_t)ms, "isp", a + 1,
			 (size_t)(b - a - 1), "action", b + 1);
	return *out ? CLI_OK : cli_fail(CLI_USAGE, "out of memory");
}

/* Sets key to the integer v when given (>= 0); 64-bit fields as strings. */
static void put_num(json_t *obj, const char *key, long long v, int is64)
{
	if (v < 0)
		return;
	json_object_set_new(obj, key, is64 ? json_int64(v) : json_integer(v));
}

static json_t *bulk_params(const struct create_opts *o)
{
	const ProtobufCEnumValue *dv;
	json_t *b = json_object();

	put_num(b, "bytes", o->param[P_BYTES], 1);
	put_num(b, "durationS", o->param[P_DURATION], 0);
	if (o->param[P_DIRECTION] > 0) {
		dv = protobuf_c_enum_descriptor_get_value(&fjord__v1__direction__descriptor,
							  (int)o->param[P_DIRECTION]);
		if (dv)
			json_object_set_new(b, "direction", json_string(dv->name));
	}
	if (o->param[P_BASELINE] > 0)
		json_object_set_new(b, "baseline", json_true());
	return b;
}

/* The type's parameters from the flags; the controller checks their ranges. */
static int build_params(struct cli *c, const struct create_opts *o, int type, json_t *spec)
{
	json_t *p = NULL, *events, *e = NULL;
	int r;

	switch (type) {
	case FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_ECHO:
		if (o->param[P_MSG_BYTES] == 0 || o->param[P_MESSAGES] == 0)
			return cli_usage(c, "--message-bytes and --messages must be at least 1");
		p = json_pack("{s:I,s:I}", "messageBytes",
			      (json_int_t)(o->param[P_MSG_BYTES] >= 0 ? o->param[P_MSG_BYTES]
								      : CLI_DEFAULT_MESSAGE_BYTES),
			      "count",
			      (json_int_t)(o->param[P_MESSAGES] >= 0 ? o->param[P_MESSAGES]
								     : CLI_DEFAULT_MESSAGES));
		json_object_set_new(spec, "echo", p);
		return CLI_OK;
	case FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_BULK:
		json_object_set_new(spec, "bulk", bulk_params(o));
		return CLI_OK;
	case FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_HANDOVER:
		if (o->n_events == 0)
			return cli_usage(c, "--type handover needs at least one --link-event");
		events = json_array();
		for (size_t i = 0; i < o->n_events; i++) {
			r = link_event(c, o->events[i], &e);
			if (r != CLI_OK) {
				json_decref(events);
				return r;
			}
			json_array_append_new(events, e);
		}
		p = json_object();
		json_object_set_new(p, "bulk", bulk_params(o));
		json_object_set_new(p, "events", events);
		json_object_set_new(spec, "handover", p);
		return CLI_OK;
	case FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_RR:
		p = json_object();
		put_num(p, "requestBytes", o->param[P_REQ_BYTES], 0);
		put_num(p, "responseBytes", o->param[P_RESP_BYTES], 0);
		put_num(p, "ratePerS", o->param[P_RATE], 0);
		put_num(p, "durationS", o->param[P_DURATION], 0);
		json_object_set_new(spec, "rr", p);
		return CLI_OK;
	case FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_PROBE:
		p = json_object();
		put_num(p, "timeoutMs", o->param[P_PROBE_TIMEOUT], 0);
		json_object_set_new(spec, "probe", p);
		return CLI_OK;
	default:
		return cli_usage(c,
				 "--type %s: its parameters have no flags; give the whole spec "
				 "with --file",
				 o->type);
	}
}

static int build_spec(struct cli *c, const struct create_opts *o, json_t **out)
{
	const ProtobufCEnumValue *ev;
	json_t *spec;
	int type, r;

	if (!o->type)
		return cli_usage(c, "--type is required (or --file)");
	if (fj_pbjson_enum_parse(&fjord__v1__experiment_type__descriptor, o->type, &type) != 0 ||
	    type == 0)
		return cli_usage(c, "--type: unknown experiment type '%s'", o->type);
	for (int p = 0; p < N_PARAMS; p++) {
		if (o->param[p] >= 0 && !(param_flags[p].types & (1u << type)))
			return cli_usage(c, "--%s does not apply to --type %s", param_flags[p].name,
					 o->type);
	}
	if (o->n_events && type != FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_HANDOVER)
		return cli_usage(c, "--link-event is for --type handover");
	ev = protobuf_c_enum_descriptor_get_value(&fjord__v1__experiment_type__descriptor, type);
	spec = json_object();
	if (!spec)
		return cli_fail(CLI_USAGE, "out of memory");
	if (o->name)
		json_object_set_new(spec, "name", json_string(o->name));
	json_object_set_new(spec, "type", json_string(ev->name));
	r = build_params(c, o, type, spec);
	if (r != CLI_OK) {
		json_decref(spec);
		return r;
	}
	if (o->sample_ms >= 0)
		json_object_set_new(spec, "sampleIntervalMs", json_integer(o->sample_ms));
	if (o->share_links)
		json_object_set_new(spec, "shareLinks", json_true());
	if (o->deadline >= 0)
		json_object_set_new(spec, "deadlineS", json_integer(o->deadline));
	if (o->pickup >= 0)
		json_object_set_new(spec, "pickupS", json_integer(o->pickup));
	r = build_stack(c, o, spec);
	if (r == CLI_OK)
		r = build_targets(c, o, spec);
	if (r == CLI_OK)
		r = build_schedule(c, o, spec);
	/* An empty message means the defaults; leave it out like the mapping would. */
	if (json_object_size(json_object_get(spec, "stack")) == 0)
		json_object_del(spec, "stack");
	if (json_object_size(json_object_get(spec, "schedule")) == 0)
		json_object_del(spec, "schedule");
	if (r != CLI_OK) {
		json_decref(spec);
		return r;
	}
	*out = spec;
	return CLI_OK;
}

static int read_spec_file(struct cli *c, const char *file, ProtobufCMessage **spec)
{
	char *text, err[256];
	size_t len;
	FILE *f;
	int r;

	f = strcmp(file, "-") == 0 ? stdin : fopen(file, "rb");
	if (!f)
		return cli_usage(c, "--file: cannot open %s: %s", file, strerror(errno));
	text = malloc(CLI_MAX_SPEC_FILE + 1);
	if (!text) {
		if (f != stdin)
			fclose(f);
		return cli_fail(CLI_USAGE, "out of memory");
	}
	len = fread(text, 1, CLI_MAX_SPEC_FILE + 1, f);
	r = ferror(f);
	if (f != stdin)
		fclose(f);
	if (r) {
		free(text);
		return cli_usage(c, "--file: cannot read %s", file);
	}
	if (len > CLI_MAX_SPEC_FILE) {
		free(text);
		return cli_usage(c, "--file: %s is larger than %u bytes", file, CLI_MAX_SPEC_FILE);
	}
	r = fj_pbjson_decode(&fjord__v1__experiment_spec__descriptor, text, len, CLI_MAX_SPEC_FILE,
			     spec, err, sizeof(err));
	free(text);
	if (r != 0)
		return cli_usage(c, "--file: %s is not a valid ExperimentSpec: %s", file, err);
	return CLI_OK;
}

/* ---- agent names in --pairs ---------------------------------------------- */

/*
 * Finds the agent meant by ref: an agent ID, "SITE/NODE", or a site that has
 * exactly one agent. Returns its ID (owned by al) or NULL after a message.
 */
static const char *resolve_agent(struct cli *c, const Fjord__V1__AgentList *al, const char *ref)
{
	const char *slash = strchr(ref, '/'), *found = NULL;
	size_t n_site = 0;

	for (size_t i = 0; i < al->n_agents; i++) {
		if (strcmp(al->agents[i]->id, ref) == 0)
			return al->agents[i]->id;
	}
	for (size_t i = 0; i < al->n_agents; i++) {
		const Fjord__V1__Agent *a = al->agents[i];

		if (slash && strlen(a->site) == (size_t)(slash - ref) &&
		    strncmp(a->site, ref, (size_t)(slash - ref)) == 0 &&
		    strcmp(a->node, slash + 1) == 0)
			return a->id;
		if (!slash && strcmp(a->site, ref) == 0) {
			found = a->id;
			n_site++;
		}
	}
	if (n_site == 1)
		return found;
	if (n_site > 1)
		cli_usage(c, "--pairs: site '%s' has %zu agents; name one as SITE/NODE or by ID",
			  ref, n_site);
	else
		cli_usage(c, "--pairs: no agent '%s' (an agent ID, SITE/NODE, or a site)", ref);
	return NULL;
}

static int resolve_pairs(struct cli *c, Fjord__V1__ExperimentSpec *spec)
{
	Fjord__V1__AgentList *al;
	int r;

	if (!spec->targets || spec->targets->n_pairs == 0)
		return CLI_OK;
	r = cli_get_msg(c, "/api/v1/agents", &fjord__v1__agent_list__descriptor,
			(ProtobufCMessage **)&al);
	if (r != CLI_OK)
		return r;
	for (size_t i = 0; r == CLI_OK && i < spec->targets->n_pairs; i++) {
		Fjord__V1__AgentPair *p = spec->targets->pairs[i];
		char **ends[2] = { &p->client_agent_id, &p->server_agent_id };

		for (int k = 0; r == CLI_OK && k < 2; k++) {
			const char *id = resolve_agent(c, al, *ends[k]);
			char *copy = id ? strdup(id) : NULL;

			if (!copy) {
				r = id ? cli_fail(CLI_USAGE, "out of memory") : CLI_USAGE;
				break;
			}
			/* The spec came from the unpacker, whose strings are
			 * malloc'd one by one, so one can be swapped. */
			free(*ends[k]);
			*ends[k] = copy;
		}
	}
	protobuf_c_message_free_unpacked(&al->base, NULL);
	return r;
}

/* ---- create -------------------------------------------------------------- */

static void print_created(struct cli *c, const Fjord__V1__Experiment *e);

static int experiments_create(struct cli *c, int argc, char **argv)
{
	struct create_opts o = { .count = -1,
				 .interval = -1,
				 .jitter = -1,
				 .deadline = -1,
				 .pickup = -1,
				 .sample_ms = -1,
				 .at_ms = -1,
				 .until_ms = -1 };
	ProtobufCMessage *spec = NULL, *created = NULL;
	char *body = NULL, err[256];
	json_t *js = NULL;
	int first, r;

	for (int p = 0; p < N_PARAMS; p++)
		o.param[p] = -1;
	r = cli_getopt(c, argc, argv, create_opts, create_help, create_opt, &o, &first);
	if (r < 0)
		return CLI_OK;
	if (r != CLI_OK)
		return r;
	if (first < argc)
		return cli_usage(c, "unexpected argument '%s'", argv[first]);
	if (o.file && o.n_flags)
		return cli_usage(c, "--file holds the whole spec; give no other spec flags");
	if (o.file) {
		r = read_spec_file(c, o.file, &spec);
	} else {
		r = build_spec(c, &o, &js);
		if (r == CLI_OK && fj_pbjson_from_json(&fjord__v1__experiment_spec__descriptor, js,
						       &spec, err, sizeof(err)) != 0)
			r = cli_usage(c, "the flags make no valid spec: %s", err);
		json_decref(js);
	}
	if (r == CLI_OK && o.dry_run) {
		r = cli_print_json(spec);
		protobuf_c_message_free_unpacked(spec, NULL);
		return r;
	}
	if (r == CLI_OK)
		r = resolve_pairs(c, (Fjord__V1__ExperimentSpec *)spec);
	if (r == CLI_OK && fj_pbjson_encode(spec, 0, &body) != 0)
		r = cli_fail(CLI_USAGE, "out of memory");
	if (r == CLI_OK)
		r = cli_call_msg(c, "POST", "/api/v1/experiments", body,
				 &fjord__v1__experiment__descriptor, &created);
	if (r == CLI_OK) {
		if (c->fmt == CLI_FMT_JSON)
			r = cli_print_json(created);
		else
			print_created(c, (Fjord__V1__Experiment *)created);
	}
	free(body);
	if (spec)
		protobuf_c_message_free_unpacked(spec, NULL);
	if (created)
		protobuf_c_message_free_unpacked(created, NULL);
	return r;
}

/* ---- list, show, cancel -------------------------------------------------- */

static const char *const exp_hdr[] = { "ID",	    "NAME",	  "TYPE",  "STATE",
				       "RUNS_DONE", "RUNS_TOTAL", "OWNER", "CREATED" };
#define EXP_COLS 8

static int exp_row(struct cli_table *t, const Fjord__V1__Experiment *e)
{
	char eb1[16], eb2[16], done[16], total[16], created[32];
	const char *row[EXP_COLS];

	snprintf(done, sizeof(done), "%u", e->runs_done);
	snprintf(total, sizeof(total), "%u", e->runs_total);
	row[0] = e->id;
	row[1] = e->spec && *e->spec->name ? e->spec->name : NULL;
	row[2] = cli_enum(&fjord__v1__experiment_type__descriptor, e->spec ? e->spec->type : 0, eb1,
			  sizeof(eb1));
	row[3] = cli_enum(&fjord__v1__experiment_state__descriptor, e->state, eb2, sizeof(eb2));
	row[4] = done;
	row[5] = total;
	row[6] = *e->owner ? e->owner : NULL;
	row[7] = cli_time(e->created_ms, created, sizeof(created));
	return cli_table_add(t, row);
}

static int print_experiments(struct cli *c, Fjord__V1__Experiment *const *e, size_t n)
{
	struct cli_table *t = cli_table_new(EXP_COLS, exp_hdr);

	for (size_t i = 0; t && i < n; i++) {
		if (exp_row(t, e[i]) != 0) {
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

static void print_created(struct cli *c, const Fjord__V1__Experiment *e)
{
	if (c->fmt == CLI_FMT_CSV) {
		print_experiments(c, (Fjord__V1__Experiment *const *)&e, 1);
		return;
	}
	printf("created experiment %s with %u runs\n", e->id, e->runs_total);
	printf("  its runs:     fjord runs --experiment %s\n", e->id);
	printf("  its results:  fjord results --experiment %s\n", e->id);
	printf("  cancel it:    fjord experiments cancel %s\n", e->id);
}

static int experiments_list(struct cli *c)
{
	Fjord__V1__ExperimentList *el;
	int r;

	r = cli_get_msg(c, "/api/v1/experiments", &fjord__v1__experiment_list__descriptor,
			(ProtobufCMessage **)&el);
	if (r != CLI_OK)
		return r;
	if (c->fmt == CLI_FMT_JSON)
		r = cli_print_json(&el->base);
	else
		r = print_experiments(c, el->experiments, el->n_experiments);
	protobuf_c_message_free_unpacked(&el->base, NULL);
	return r;
}

/* show and cancel: one experiment by ID. */
static int experiments_one(struct cli *c, const char *id, int cancel)
{
	ProtobufCMessage *msg;
	char path[512], *esc;
	int r;

	esc = cli_escape(id);
	if (!esc)
		return cli_fail(CLI_USAGE, "out of memory");
	snprintf(path, sizeof(path), "/api/v1/experiments/%s%s", esc, cancel ? "/cancel" : "");
	free(esc);
	r = cli_call_msg(c, cancel ? "POST" : "GET", path, NULL, &fjord__v1__experiment__descriptor,
			 &msg);
	if (r != CLI_OK)
		return r;
	if (c->fmt == CLI_FMT_JSON) {
		r = cli_print_json(msg);
	} else {
		Fjord__V1__Experiment *e = (Fjord__V1__Experiment *)msg;

		r = print_experiments(c, &e, 1);
		if (r == CLI_OK && c->fmt == CLI_FMT_TABLE && !cancel && e->spec) {
			/* The spec in full: it is what the runs were made from. */
			printf("\nspec:\n");
			r = cli_print_json(&e->spec->base);
		}
	}
	protobuf_c_message_free_unpacked(msg, NULL);
	return r;
}

static const struct option plain_opts[] = { CLI_GLOBAL_OPTIONS, { NULL, 0, NULL, 0 } };

/* Index of the first word of argv[1..] that is neither an option nor the value
 * of a global option, or argc. */
static int subcommand_index(int argc, char **argv)
{
	int k;

	for (k = 1; k < argc; k++) {
		const char *a = argv[k];

		if (a[0] != '-' || strcmp(a, "-") == 0)
			return k;
		if (strcmp(a, "--") == 0)
			return k + 1;
		for (const struct option *o = plain_opts; o->name; o++) {
			if (o->has_arg == required_argument && strncmp(a, "--", 2) == 0 &&
			    strcmp(a + 2, o->name) == 0) {
				k++; /* skip its value */
				break;
			}
		}
	}
	return argc;
}

int cli_cmd_experiments(struct cli *c, int argc, char **argv)
{
	const char *sub;
	int first, r;

	/* "create" has its own options; look for it before parsing. */
	first = subcommand_index(argc, argv);
	if (first < argc && strcmp(argv[first], "create") == 0) {
		char **cargv = calloc((size_t)argc, sizeof(*cargv));
		int n = 0;

		if (!cargv)
			return cli_fail(CLI_USAGE, "out of memory");
		/* "create" becomes argv[0]; global options given before it follow. */
		cargv[n++] = argv[first];
		for (int k = 1; k < argc; k++) {
			if (k != first)
				cargv[n++] = argv[k];
		}
		c->cmd = "experiments create";
		r = experiments_create(c, n, cargv);
		free(cargv);
		return r;
	}
	r = cli_getopt(c, argc, argv, plain_opts, exp_help, NULL, NULL, &first);
	if (r < 0)
		return CLI_OK;
	if (r != CLI_OK)
		return r;
	if (first >= argc)
		return cli_usage(c, "which subcommand: create, list, show or cancel?");
	sub = argv[first];
	if (strcmp(sub, "list") == 0) {
		c->cmd = "experiments list";
		if (argc - first != 1)
			return cli_usage(c, "'experiments list' takes no argument");
		return experiments_list(c);
	}
	if (strcmp(sub, "show") == 0 || strcmp(sub, "cancel") == 0) {
		c->cmd = strcmp(sub, "show") == 0 ? "experiments show" : "experiments cancel";
		if (argc - first != 2)
			return cli_usage(c, "'%s' needs exactly one experiment ID", c->cmd);
		return experiments_one(c, argv[first + 1], strcmp(sub, "cancel") == 0);
	}
	return cli_usage(c, "unknown subcommand '%s' (create, list, show or cancel)", sub);
}
