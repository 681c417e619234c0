/*
 * libFuzzer target for the testbed topology parser (deploy/testbed/tb_config.c):
 * any text either loads into a topology that keeps every documented bound, or
 * is refused with a message. For a loaded topology the link numbering, the
 * address plan and the link parameters' text form are exercised too: what
 * tb_link_format prints must read back through tb_link_set_dirs unchanged.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../deploy/testbed/tb_config.h"

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

static void check_name(const char *s, size_t cap)
{
	if (!s[0] || strnlen(s, cap) == cap)
		abort();
}

/* Every "key=value" word of tb_link_format's text must be accepted again. */
static void check_format(const struct tb_link_params *p)
{
	struct tb_link_params q[2];
	char text[512], err[TB_ERR_MAX], *save = NULL, *tok;

	tb_link_format(p, text, sizeof(text));
	tb_link_params_default(&q[0]);
	q[1] = q[0];
	for (tok = strtok_r(text, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		char *eq = strchr(tok, '=');

		if (!eq)
			continue; /* "down" is a state, not a setting */
		*eq = 0;
		if (tb_link_set_dirs(q, tok, eq + 1, err, sizeof(err)) != 0)
			abort();
	}
	if (q[0].delay_us != p->delay_us || q[0].jitter_us != p->jitter_us ||
	    q[0].buffer_us != p->buffer_us || q[0].loss_model != p->loss_model ||
	    q[0].rate_bps / 1000 != p->rate_bps / 1000)
		abort();
}

static void check_topology(const struct tb_topology *t)
{
	unsigned int s, i, k, n = 0;
	struct in_addr a4;
	struct in6_addr a6;

	if (t->n_isps < 1 || t->n_isps > TB_MAX_ISPS || t->n_sites < 1 || t->n_sites > TB_MAX_SITES)
		abort();
	for (i = 0; i < t->n_isps; i++) {
		check_name(t->isps[i].name, sizeof(t->isps[i].name));
		if (t->isps[i].v4len > 16 || t->isps[i].v6len > 48)
			abort();
	}
	for (s = 0; s < t->n_sites; s++) {
		const struct tb_site *site = &t->sites[s];

		check_name(site->name, sizeof(site->name));
		if (site->n_nodes < 1 || site->n_nodes > TB_MAX_NODES || site->n_uplinks < 1 ||
		    site->n_uplinks > TB_MAX_ISPS)
			abort();
		for (k = 0; k < site->n_nodes; k++)
			check_name(site->nodes[k].name, sizeof(site->nodes[k].name));
		for (k = 0; k < site->n_uplinks; k++) {
			const struct tb_uplink *u = &site->uplinks[k];
			unsigned int ls, lu;
			char name[64];

			if (u->isp >= t->n_isps || tb_site_uplink(t, s, u->isp) != u)
				abort();
			check_format(&u->params[TB_DIR_UP]);
			check_format(&u->params[TB_DIR_DOWN]);
			if (tb_link_at(t, n, &ls, &lu) != 0 || ls != s || lu != k)
				abort();
			snprintf(name, sizeof(name), "%s/%s", site->name, t->isps[u->isp].name);
			if (tb_link_find(t, name) != (int)n)
				abort();
			n++;
			if (tb_addr_v4(t, s, u->isp, TB_HOST_CORE, 0, &a4) != 0 ||
			    tb_addr_v6(t, s, u->isp, TB_HOST_CORE, 0, &a6) != 0)
				abort();
			for (i = 0; i < site->n_nodes; i++)
				if (tb_addr_v4(t, s, u->isp, TB_HOST_NODE, i, &a4) != 0 ||
				    tb_addr_v4(t, s, u->isp, TB_HOST_BUNDLED, i, &a4) != 0 ||
				    tb_addr_v6(t, s, u->isp, TB_HOST_NODE, i, &a6) != 0 ||
				    tb_addr_v6(t, s, u->isp, TB_HOST_BUNDLED, i, &a6) != 0)
					abort();
		}
	}
	if (tb_link_count(t) != n || tb_link_at(t, n, &s, &i) != -ENOENT)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct tb_topology t;
	char err[TB_ERR_MAX] = "";
	char *text;

	if (size > 65536)
		return 0;
	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = 0;
	memset(&t, 0, sizeof(t));
	if (tb_config_load_string(text, &t, err, sizeof(err)) == 0)
		check_topology(&t);
	else if (!err[0])
		abort(); /* every refusal explains itself */
	free(text);
	return 0;
}
