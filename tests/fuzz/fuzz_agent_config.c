/*
 * libFuzzer target for the agent's config parser (agent/agent_config.c): any
 * text either loads into a config that keeps every documented bound, or is
 * refused with a message. Never a crash, never an out-of-range value.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../agent/agent_config.h"

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
 * Each of those library leaks makes libFuzzer run a full leak check, whose
 * cost grows with ASan's quarantine of freed blocks: a small one keeps the
 * smoke pass short, and still catches a use after free within one input.
 */
const char *__asan_default_options(void)
{
	return "quarantine_size_mb=1";
}

static void check(const struct agent_config *c)
{
	unsigned int i;

	if (!c->controller_url[0] || !c->site[0] || !c->node[0] || !c->secret[0] ||
	    !c->state_dir[0] || !c->spool_dir[0])
		abort();
	if (strncmp(c->controller_url, "http://", 7) != 0 &&
	    strncmp(c->controller_url, "https://", 8) != 0)
		abort();
	if (c->spool_cap_bytes < AGENT_MIN_SPOOL_CAP || c->poll_wait_s < 1 ||
	    c->poll_wait_s > 3600 || c->responder_port < 1 || c->responder_port > 65535 ||
	    c->max_runs < 1 || c->max_runs > 64 || c->run_deadline_s < 1 ||
	    c->backoff_max_ms < c->backoff_base_ms)
		abort();
	if (c->n_ifaces < 1 || c->n_ifaces > AGENT_MAX_IFACES ||
	    c->n_responder_addrs > AGENT_MAX_RESP_ADDRS)
		abort();
	for (i = 0; i < c->n_ifaces; i++)
		if (!c->ifaces[i].name[0] || !c->ifaces[i].isp[0] || c->ifaces[i].link_type < 1)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct agent_config cfg;
	char err[512] = "";
	char *text;

	if (size > 65536)
		return 0;
	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = 0;
	if (agent_config_parse(text, &cfg, err, sizeof(err)) == 0)
		check(&cfg);
	else if (!err[0])
		abort(); /* every refusal explains itself */
	free(text);
	return 0;
}
