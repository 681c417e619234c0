/*
 * ctl_http: the fjord-controller server. Owns the store, the scheduler (and
 * the one lock that serialises calls into it), the scheduler's timer thread,
 * the long-poll waiters and the libmicrohttpd daemon serving docs/api.md.
 */
#ifndef CTL_HTTP_H
#define CTL_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "ctl_store.h"

#define CTL_VERSION "0.1.0"

struct ctl_http;

/*
 * Opens the store (cfg->database) and the trace directory, creates the
 * scheduler, starts the timer thread and the HTTP daemon on cfg->listen and
 * cfg->port (0: any free port, see ctl_http_port). cfg is copied where
 * needed; the caller may free it afterwards. On failure err says why.
 */
int ctl_http_create(const struct ctl_config *cfg, struct ctl_http **out, char *err, size_t err_len);
/* The TCP port the daemon listens on. */
uint16_t ctl_http_port(const struct ctl_http *h);
/* The server's store, for tools and tests that seed it directly. */
struct ctl_store *ctl_http_store(struct ctl_http *h);
/* Answers held long polls, waits for pending writes, stops and frees. NULL is a no-op. */
void ctl_http_destroy(struct ctl_http *h);

/*
 * Creates a user API token with role and name in the store; the token (hex,
 * CTL_TOKEN_HEX characters + NUL) is written to token and is never stored.
 */
int ctl_http_token_create(struct ctl_store *st, Fjord__V1__Role role, const char *name,
			  char *token);

#endif
