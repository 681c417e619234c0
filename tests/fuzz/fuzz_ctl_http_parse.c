/*
 * libFuzzer target for the controller's request text parsers
 * (controller/http_parse.c and the trace names of controller/traces.c).
 * The input is four parts separated by newlines: a Content-Range value, a
 * trace name, an Accept header, then a query string "key=value&..." (already
 * URL-decoded, as libmicrohttpd hands it over). Every value is either accepted within its
 * documented bounds or refused with the parameter's name and a message.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../controller/http_parse.h"
#include "../../controller/traces.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ARGS 32

struct args {
	const char *key[MAX_ARGS], *value[MAX_ARGS];
	size_t n;
};

/* The first value of key, as libmicrohttpd's lookup answers. */
static const char *lookup(void *ctx, const char *key)
{
	const struct args *a = ctx;
	size_t i;

	for (i = 0; i < a->n; i++)
		if (strcmp(a->key[i], key) == 0)
			return a->value[i];
	return NULL;
}

static void check_range(const char *v)
{
	uint64_t a, b, c, a2, b2, c2;
	char again[96];
	int r = ctl_parse_content_range(v, &a, &b, &c);

	if (r == 0) {
		if (a > b || b >= c)
			abort();
		/* The canonical text reads back to the same numbers. */
		snprintf(again, sizeof(again), "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, a, b, c);
		if (ctl_parse_content_range(again, &a2, &b2, &c2) != 0 || a2 != a || b2 != b ||
		    c2 != c)
			abort();
	} else if (r != -EINVAL && r != -ERANGE) {
		abort();
	}
}

static void check_name(const char *name)
{
	size_t n = strlen(name);

	if (!ctl_traces_name_ok(name))
		return;
	/* An accepted name is one safe path component. */
	if (n < 1 || n > 64 || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))
		abort();
}

static void check_accept(const char *accept)
{
	static const char *const types[][2] = { { "application", "json" },
						{ "application", "x-protobuf" },
						{ "text", "csv" } };
	size_t i;

	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		int q = ctl_accept_q(accept, types[i][0], types[i][1]);

		if (q < -1 || q > 1000)
			abort();
	}
}

static void check_query(char *qs)
{
	struct args a = { .n = 0 };
	struct ctl_query q;
	char field[64] = "", msg[512] = "", *save = NULL, *tok;

	for (tok = strtok_r(qs, "&", &save); tok && a.n < MAX_ARGS;
	     tok = strtok_r(NULL, "&", &save)) {
		char *eq = strchr(tok, '=');

		if (eq)
			*eq = 0;
		a.key[a.n] = tok;
		a.value[a.n++] = eq ? eq + 1 : "";
	}
	if (ctl_query_parse(lookup, &a, &q, field, sizeof(field), msg, sizeof(msg)) != 0) {
		if (!field[0] || strncmp(msg, "query parameter '", 17) != 0)
			abort();
		return;
	}
	if (q.limit < 1 || q.limit > 10000 || q.offset > 1000000000 ||
	    (q.from_ms && q.to_ms && q.from_ms >= q.to_ms))
		abort();
	if ((q.site && (!q.site[0] || strlen(q.site) > 128)) ||
	    (q.isp && (!q.isp[0] || strlen(q.isp) > 128)) ||
	    (q.experiment_id && (!q.experiment_id[0] || strlen(q.experiment_id) > 128)) ||
	    (q.agent_id && (!q.agent_id[0] || strlen(q.agent_id) > 128)))
		abort();
	if ((lookup(&a, "state") && !q.state_mask) || (lookup(&a, "family") && !q.family) ||
	    (lookup(&a, "stack") && !q.stack))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text, *range, *name, *accept, *qs;

	if (size > 16384)
		return 0;
	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = 0;
	range = text;
	name = strchr(range, '\n');
	if (name)
		*name++ = 0;
	accept = name ? strchr(name, '\n') : NULL;
	if (accept)
		*accept++ = 0;
	qs = accept ? strchr(accept, '\n') : NULL;
	if (qs)
		*qs++ = 0;
	check_range(range);
	if (name)
		check_name(name);
	if (accept)
		check_accept(accept);
	if (qs)
		check_query(qs);
	free(text);
	return 0;
}
