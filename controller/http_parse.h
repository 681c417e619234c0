/*
 * Parsers of the HTTP layer's request text that need no connection: the
 * query filters of /runs, /results and /aggregates, and a trace upload's
 * Content-Range. Kept apart from the routes so tests/fuzz can drive them.
 */
#ifndef CTL_HTTP_PARSE_H
#define CTL_HTTP_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "ctl_store.h"

/* Returns the value of query parameter key (owned by the caller's request), or NULL. */
typedef const char *ctl_arg_fn(void *ctx, const char *key);

/*
 * Fills q from the query parameters found by arg(ctx, key): experiment, site,
 * isp, agent, family, stack, state, from, to, limit, offset. String values in
 * q point at arg's strings. Returns 0, or -EINVAL with the parameter's name in
 * field and "query parameter 'NAME': what is wrong" in msg.
 */
int ctl_query_parse(ctl_arg_fn *arg, void *ctx, struct ctl_query *q, char *field, size_t field_len,
		    char *msg, size_t msg_len);

/*
 * "bytes FIRST-LAST/TOTAL", decimal digits only, with FIRST <= LAST < TOTAL.
 * Returns 0, -EINVAL when v is NULL or malformed (a value past 2^64 - 1
 * included), -ERANGE when the numbers are out of order.
 */
int ctl_parse_content_range(const char *v, uint64_t *first, uint64_t *last, uint64_t *total);

/*
 * The weight an Accept header value gives type/sub, in thousandths (0..1000),
 * taken from its most specific matching media range; -1 when none matches.
 * A range whose q parameter is not an RFC 9110 qvalue matches nothing.
 */
int ctl_accept_q(const char *accept, const char *type, const char *sub);

#endif
