/* Query filters and Content-Range: request text parsed without a connection. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fj_clock.h"
#include "http_parse.h"
#include "pbjson.h"

#define MAX_LIMIT  10000
#define MAX_OFFSET 1000000000

static int parse_count(const char *v, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long n;

	if (!v[0] || v[0] < '0' || v[0] > '9')
		return -EINVAL;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno || *end || n > max)
		return -EINVAL;
	*out = n;
	return 0;
}

static int parse_enum(const ProtobufCEnumDescriptor *d, const char *v, int *out)
{
	return fj_pbjson_enum_parse(d, v, out) < 0 || *out == 0 ? -EINVAL : 0;
}

static int parse_states(const char *v, uint32_t *mask)
{
	char buf[256], *save = NULL, *tok;
	int s;

	if (strlen(v) >= sizeof(buf) || !v[0])
		return -EINVAL;
	strcpy(buf, v);
	*mask = 0;
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (parse_enum(&fjord__v1__run_state__descriptor, tok, &s) < 0)
			return -EINVAL;
		*mask |= CTL_RUN_BIT(s);
	}
	return *mask ? 0 : -EINVAL;
}

/* Error output of ctl_query_parse. */
struct qerr {
	char *field, *msg;
	size_t field_len, msg_len;
};

static int bad(struct qerr *e, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int bad(struct qerr *e, const char *key, const char *fmt, ...)
{
	char why[320];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	snprintf(e->field, e->field_len, "%s", key);
	snprintf(e->msg, e->msg_len, "query parameter '%s': %s", key, why);
	return -EINVAL;
}

static int parse_string(ctl_arg_fn *arg, void *ctx, struct qerr *e, const char *key,
			const char **out)
{
	const char *v = arg(ctx, key);

	if (!v)
		return 0;
	if (!v[0] || strlen(v) > 128)
		return bad(e, key, "must be 1 to 128 characters");
	*out = v;
	return 0;
}

int ctl_query_parse(ctl_arg_fn *arg, void *ctx, struct ctl_query *q, char *field, size_t field_len,
		    char *msg, size_t msg_len)
{
	struct qerr e = { field, msg, field_len, msg_len };
	const char *v;
	uint64_t n;
	int en = 0;

	memset(q, 0, sizeof(*q));
	q->limit = 1000;
	if (parse_string(arg, ctx, &e, "experiment", &q->experiment_id) < 0 ||
	    parse_string(arg, ctx, &e, "site", &q->site) < 0 ||
	    parse_string(arg, ctx, &e, "isp", &q->isp) < 0 ||
	    parse_string(arg, ctx, &e, "agent", &q->agent_id) < 0)
		return -EINVAL;
	v = arg(ctx, "family");
	if (v && parse_enum(&fjord__v1__address_family__descriptor, v, &en) < 0)
		return bad(&e, "family", "'%.64s' is not ipv4 or ipv6", v);
	q->family = v ? (Fjord__V1__AddressFamily)en : 0;
	v = arg(ctx, "stack");
	if (v && parse_enum(&fjord__v1__stack__descriptor, v, &en) < 0)
		return bad(&e, "stack", "'%.64s' is not bundled, kernel or tcp", v);
	q->stack = v ? (Fjord__V1__Stack)en : 0;
	v = arg(ctx, "state");
	if (v && parse_states(v, &q->state_mask) < 0)
		return bad(&e, "state",
			   "'%.64s' is not a comma-separated list of pending, waiting_links, "
			   "dispatched, running, succeeded, failed, missed, cancelled",
			   v);
	v = arg(ctx, "from");
	if (v && fj_parse_time(v, &q->from_ms) < 0)
		return bad(&e, "from", "'%.64s' is not RFC 3339 UTC or epoch milliseconds", v);
	v = arg(ctx, "to");
	if (v && fj_parse_time(v, &q->to_ms) < 0)
		return bad(&e, "to", "'%.64s' is not RFC 3339 UTC or epoch milliseconds", v);
	if (q->from_ms && q->to_ms && q->from_ms >= q->to_ms)
		return bad(&e, "to", "must be after from");
	v = arg(ctx, "limit");
	if (v && (parse_count(v, MAX_LIMIT, &n) < 0 || n == 0))
		return bad(&e, "limit", "'%.64s' is not an integer in 1..10000", v);
	if (v)
		q->limit = (size_t)n;
	v = arg(ctx, "offset");
	if (v && parse_count(v, MAX_OFFSET, &n) < 0)
		return bad(&e, "offset", "'%.64s' is not an integer in 0..1000000000", v);
	if (v)
		q->offset = (size_t)n;
	return 0;
}

/* Decimal digits up to the first other character; -EINVAL when none or past 2^64 - 1. */
static int parse_u64(const char **p, uint64_t *out)
{
	const char *s = *p;
	uint64_t v = 0;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	for (; *s >= '0' && *s <= '9'; s++) {
		unsigned int d = (unsigned int)(*s - '0');

		if (v > (UINT64_MAX - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
	}
	*p = s;
	*out = v;
	return 0;
}

int ctl_parse_content_range(const char *v, uint64_t *first, uint64_t *last, uint64_t *total)
{
	uint64_t a, b, c;

	/*
	 * Digits only: sscanf's %llu would also take blanks, a sign ("-1" is
	 * 2^64 - 1) and saturate on overflow, none of which is a byte position.
	 */
	if (!v || strncmp(v, "bytes ", 6) != 0)
		return -EINVAL;
	v += 6;
	if (parse_u64(&v, &a) < 0 || *v++ != '-' || parse_u64(&v, &b) < 0 || *v++ != '/' ||
	    parse_u64(&v, &c) < 0 || *v)
		return -EINVAL;
	if (a > b || b >= c)
		return -ERANGE;
	*first = a;
	*last = b;
	*total = c;
	return 0;
}

/* RFC 9110 qvalue: "0" ["." 0-3 digits] or "1" ["." 0-3 zeros], into thousandths; -1 if not one. */
static int parse_qvalue(const char *s, size_t n)
{
	int v, scale = 100;
	size_t i;

	if (n == 0 || (s[0] != '0' && s[0] != '1'))
		return -1;
	v = (s[0] - '0') * 1000;
	if (n == 1)
		return v;
	if (s[1] != '.' || n > 5)
		return -1;
	for (i = 2; i < n; i++, scale /= 10) {
		if (s[i] < '0' || s[i] > '9' || (v == 1000 && s[i] != '0'))
			return -1;
		v += (s[i] - '0') * scale;
	}
	return v;
}

static const char *skip_ows(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	return p;
}

static const char *trim_ows(const char *p, const char *end)
{
	while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	return end;
}

/* Whether [p, end) equals s, ignoring case. */
static int token_is(const char *p, const char *end, const char *s)
{
	size_t n = strlen(s);

	return (size_t)(end - p) == n && strncasecmp(p, s, n) == 0;
}

/*
 * One media range [p, end): its specificity (0 for star/star, 1 for type/star, 2 for
 * type/sub) when it matches, else -1; its q in thousandths into *q. A malformed
 * q parameter makes the range match nothing.
 */
static int accept_range(const char *p, const char *end, const char *type, const char *sub, int *q)
{
	const char *semi = memchr(p, ';', (size_t)(end - p)), *rend = semi ? semi : end;
	const char *slash;
	int spec;

	*q = 1000;
	p = skip_ows(p, rend);
	rend = trim_ows(p, rend);
	slash = memchr(p, '/', (size_t)(rend - p));
	if (!slash)
		return -1;
	if (token_is(p, slash, "*") && token_is(slash + 1, rend, "*"))
		spec = 0;
	else if (token_is(p, slash, type) && token_is(slash + 1, rend, "*"))
		spec = 1;
	else if (token_is(p, slash, type) && token_is(slash + 1, rend, sub))
		spec = 2;
	else
		return -1;
	while (semi) {
		const char *pstart = semi + 1, *pend, *eq;

		semi = memchr(pstart, ';', (size_t)(end - pstart));
		pend = semi ? semi : end;
		pstart = skip_ows(pstart, pend);
		pend = trim_ows(pstart, pend);
		eq = memchr(pstart, '=', (size_t)(pend - pstart));
		if (!eq || !token_is(pstart, trim_ows(pstart, eq), "q"))
			continue;
		eq = skip_ows(eq + 1, pend);
		*q = parse_qvalue(eq, (size_t)(pend - eq));
		if (*q < 0)
			return -1;
	}
	return spec;
}

int ctl_accept_q(const char *accept, const char *type, const char *sub)
{
	int best_q = -1, best_spec = -1;
	const char *p = accept;

	while (*p) {
		const char *end = p + strcspn(p, ",");
		int q, spec = accept_range(p, end, type, sub, &q);

		if (spec > best_spec) {
			best_spec = spec;
			best_q = q;
		}
		p = *end ? end + 1 : end;
	}
	return best_q;
}
