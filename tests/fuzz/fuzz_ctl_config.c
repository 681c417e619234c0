/*
 * libFuzzer target for the controller's config parser (controller/config.c):
 * any text either loads into a config that keeps every documented bound, or
 * is refused with a message. Never a crash, never an out-of-range value.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../controller/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
const char *__lsan_default_suppressions(void);
const char *__asan_default_options(void);

/*
 * libconfig 1.5's scanner loses small buffers when a syntax error cuts a
 * token short (strbuf_append, libconfig_yylex, inside the library). Not ours
 * to fix; only those two are suppressed so leaks of our own still show.
 */
const char *__lsan_default_suppressions(void)
{
	return "leak:strbuf_append\nleak:libconfig_yylex\n";
}

/*
 * Each of those library leaks makes libFuzzer run a full leak check (up to
 * 1000 of them), and the scan's cost grows with ASan's quarantine of freed
 * blocks (256 MiB by default). A small quarantine keeps the 20000-run smoke
 * pass within its time budget; a use after free of this input's memory is
 * still caught, as one input frees far less than 1 MiB.
 */
const char *__asan_default_options(void)
{
	return "quarantine_size_mb=1";
}

static void check(const struct ctl_config *c)
{
	unsigned char addr[16];
	size_t i, j;

	if (!c->listen || !c->data_dir || !c->database || !c->data_dir[0] || !c->database[0])
		abort();
	if (inet_pton(AF_INET, c->listen, addr) != 1 && inet_pton(AF_INET6, c->listen, addr) != 1)
		abort();
	if (!c->tls_cert != !c->tls_key)
		abort();
	if (c->long_poll_max_s < 1 || c->long_poll_max_s > CTL_CFG_MAX_POLL_S ||
	    c->max_body_bytes < 1024 || c->max_body_bytes > (64u << 20) ||
	    c->max_trace_bytes < 1024 || c->max_trace_bytes > (64ull << 30) || c->threads < 1 ||
	    c->threads > CTL_CFG_MAX_THREADS || c->max_connections < 16 ||
	    c->max_connections > 1000000)
		abort();
	for (i = 0; i < c->n_sites; i++) {
		size_t n = strlen(c->sites[i].site);

		if (n < 1 || n > 64 || strlen(c->sites[i].secret) < CTL_CFG_MIN_SECRET_LEN ||
		    strspn(c->sites[i].site, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
					     "0123456789._-") != n)
			abort();
		for (j = 0; j < i; j++)
			if (strcmp(c->sites[i].site, c->sites[j].site) == 0)
				abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ctl_config *cfg;
	char err[512] = "";
	char *text;

	/* An @include would read files of the machine: not part of what is tested. */
	if (size > 65536 || memmem(data, size, "@include", 8))
		return 0;
	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = 0;
	if (ctl_config_parse(text, "fuzz.cfg", &cfg, err, sizeof(err)) == 0) {
		check(cfg);
		ctl_config_free(cfg);
	} else if (!err[0]) {
		abort(); /* every refusal explains itself */
	}
	free(text);
	return 0;
}
