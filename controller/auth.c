/* Token generation, hashing and parsing for the controller. */
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <string.h>
#include <strings.h>

#include "auth.h"

static void to_hex(const unsigned char *b, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 15];
	}
	out[2 * n] = 0;
}

int ctl_auth_new_token(char *out)
{
	unsigned char b[32];

	if (RAND_bytes(b, sizeof(b)) != 1)
		return -EIO;
	to_hex(b, sizeof(b), out);
	OPENSSL_cleanse(b, sizeof(b));
	return 0;
}

void ctl_auth_sha256_hex(const void *data, size_t len, char *out)
{
	unsigned char md[SHA256_DIGEST_LENGTH];

	SHA256(data, len, md);
	to_hex(md, sizeof(md), out);
}

/* Hashing first gives both sides the same length, so the comparison below
 * leaks neither the position of the first difference nor the length. */
int ctl_auth_secret_equal(const char *a, const char *b)
{
	unsigned char ha[SHA256_DIGEST_LENGTH], hb[SHA256_DIGEST_LENGTH];

	SHA256((const unsigned char *)a, strlen(a), ha);
	SHA256((const unsigned char *)b, strlen(b), hb);
	return CRYPTO_memcmp(ha, hb, sizeof(ha)) == 0;
}

int ctl_auth_parse_bearer(const char *header, char *tok, size_t tok_len, const char **why)
{
	const char *p;
	size_t n;

	*why = NULL;
	if (!header)
		return -ENOENT;
	if (strncasecmp(header, "Bearer ", 7) != 0) {
		*why = "the Authorization header must be 'Bearer TOKEN'";
		return -EINVAL;
	}
	p = header + 7;
	while (*p == ' ')
		p++;
	n = strcspn(p, " \t");
	if (n == 0 || p[n] != 0) {
		*why = "the bearer token is empty or has trailing characters";
		return -EINVAL;
	}
	if (n >= tok_len) {
		*why = "the bearer token is too long";
		return -EINVAL;
	}
	memcpy(tok, p, n);
	tok[n] = 0;
	return 0;
}

int ctl_auth_role_parse(const char *s, Fjord__V1__Role *out)
{
	if (strcmp(s, "viewer") == 0)
		*out = FJORD__V1__ROLE__ROLE_VIEWER;
	else if (strcmp(s, "experimenter") == 0)
		*out = FJORD__V1__ROLE__ROLE_EXPERIMENTER;
	else if (strcmp(s, "admin") == 0)
		*out = FJORD__V1__ROLE__ROLE_ADMIN;
	else
		return -EINVAL;
	return 0;
}

const char *ctl_auth_role_name(Fjord__V1__Role role)
{
	switch (role) {
	case FJORD__V1__ROLE__ROLE_VIEWER:
		return "viewer";
	case FJORD__V1__ROLE__ROLE_EXPERIMENTER:
		return "experimenter";
	case FJORD__V1__ROLE__ROLE_ADMIN:
		return "admin";
	default:
		return "none";
	}
}
