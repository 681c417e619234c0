/*
 * ctl_auth: credentials. Tokens (agent and user) are 32 random bytes from
 * OpenSSL's RAND_bytes as 64 lower-case hex characters; the store only
 * ever sees their SHA-256 (hex). Secrets are compared in constant time.
 */
#ifndef CTL_AUTH_H
#define CTL_AUTH_H

#include <stddef.h>

#include "fjord.pb-c.h"

#define CTL_TOKEN_HEX 64 /* characters of a token and of a hash, without the NUL */

/* Fills out (CTL_TOKEN_HEX + 1 bytes) with a fresh token. 0 or -EIO when the RNG fails. */
int ctl_auth_new_token(char *out);
/* Fills out (CTL_TOKEN_HEX + 1 bytes) with the SHA-256 hex of the len bytes at data. */
void ctl_auth_sha256_hex(const void *data, size_t len, char *out);
/* Whether two NUL-terminated secrets are equal, in time independent of where they differ. */
int ctl_auth_secret_equal(const char *a, const char *b);

/*
 * Extracts the token of an "Authorization: Bearer TOKEN" header value into
 * tok (cap tok_len). -ENOENT when header is NULL, -EINVAL with *why set when
 * it is not a well-formed bearer token.
 */
int ctl_auth_parse_bearer(const char *header, char *tok, size_t tok_len, const char **why);

/* "viewer", "experimenter", "admin"; -EINVAL otherwise. */
int ctl_auth_role_parse(const char *s, Fjord__V1__Role *out);
const char *ctl_auth_role_name(Fjord__V1__Role role);

#endif
