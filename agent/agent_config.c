/* libconfig file -> struct agent_config, with one clear message per bad setting. */
#include "agent_config.h"

#include <errno.h>
#include <libconfig.h>
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fjord.pb-c.h"

static const char *const link_type_names[] = {
	[FJORD__V1__LINK_TYPE__LINK_TYPE_ETHERNET] = "ethernet",
	[FJORD__V1__LINK_TYPE__LINK_TYPE_FIBER] = "fiber",
	[FJORD__V1__LINK_TYPE__LINK_TYPE_DSL] = "dsl",
	[FJORD__V1__LINK_TYPE__LINK_TYPE_CABLE] = "cable",
	[FJORD__V1__LINK_TYPE__LINK_TYPE_MOBILE] = "mobile",
	[FJORD__V1__LINK_TYPE__LINK_TYPE_SATELLITE] = "satellite",
	[FJORD__V1__LINK_TYPE__LINK_TYPE_EMULATED] = "emulated",
};

static const char *const known_settings[] = {
	"controller_url",
	"controller_cacert",
	"site",
	"node",
	"enrollment_secret",
	"state_dir",
	"spool_dir",
	"spool_cap_bytes",
	"poll_wait_s",
	"responder_port",
	"responder_addresses",
	"responder_max_connections",
	"responder_idle_s",
	"bundled_host",
	"bundled_responder_port",
	"log_level",
	"max_runs",
	"run_deadline_s",
	"backoff_base_ms",
	"backoff_max_ms",
	"link_hook",
	"interfaces",
	"bundled_tun",
	"bundled_responder_tun",
	"bundled_rcvbuf_max",
	"bundled_sndbuf_max",
	"bundled_offloads",
	NULL,
};

int agent_link_type_parse(const char *s)
{
	size_t i;

	for (i = 0; i < sizeof(link_type_names) / sizeof(link_type_names[0]); i++)
		if (link_type_names[i] && strcmp(s, link_type_names[i]) == 0)
			return (int)i;
	return -EINVAL;
}

void agent_config_defaults(struct agent_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->spool_cap_bytes = 256ull << 20;
	cfg->poll_wait_s = 30;
	cfg->responder_port = 7470;
	cfg->responder_max_conns = 64;
	cfg->responder_idle_s = 30;
	cfg->log_level = FJ_LOG_INFO;
	cfg->max_runs = 2;
	cfg->run_deadline_s = 60;
	cfg->bundled_rcvbuf_max = AGENT_BUNDLED_RCVBUF_DEFAULT;
	cfg->bundled_sndbuf_max = AGENT_BUNDLED_SNDBUF_DEFAULT;
	cfg->bundled_offloads = true;
	cfg->backoff_base_ms = 500;
	cfg->backoff_max_ms = 60000;
}

static int fail(char *err, size_t errlen, const config_setting_t *s, const char *name,
		const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int fail(char *err, size_t errlen, const config_setting_t *s, const char *name,
		const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (s && config_setting_source_line(s))
		snprintf(err, errlen, "line %u: setting '%s': %s", config_setting_source_line(s),
			 name, msg);
	else
		snprintf(err, errlen, "setting '%s': %s", name, msg);
	return -EINVAL;
}

static int is_label(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > AGENT_LABEL_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.'))
			return 0;
	}
	return 1;
}

/* Copies a string setting; required=0 leaves dst alone when the setting is absent. */
static int get_str(const config_setting_t *root, const char *name, char *dst, size_t cap,
		   int required, char *err, size_t errlen)
{
	const config_setting_t *s = config_setting_get_member(root, name);
	const char *v;

	if (!s)
		return required ? fail(err, errlen, NULL, name, "missing (required)") : 0;
	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return fail(err, errlen, s, name, "must be a string");
	v = config_setting_get_string(s);
	if (!v[0])
		return fail(err, errlen, s, name, "must not be empty");
	if (strlen(v) >= cap)
		return fail(err, errlen, s, name, "too long (at most %zu characters)", cap - 1);
	memcpy(dst, v, strlen(v) + 1);
	return 0;
}

/* A boolean setting; absent leaves dst alone. Only true or false: 0 and 1 are refused. */
static int get_bool(const config_setting_t *root, const char *name, bool *dst, char *err,
		    size_t errlen)
{
	const config_setting_t *s = config_setting_get_member(root, name);

	if (!s)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_BOOL)
		return fail(err, errlen, s, name, "must be true or false");
	*dst = config_setting_get_bool(s) != 0;
	return 0;
}

static int get_uint(const config_setting_t *root, const char *name, uint64_t lo, uint64_t hi,
		    uint64_t *dst, char *err, size_t errlen)
{
	const config_setting_t *s = config_setting_get_member(root, name);
	long long v;

	if (!s)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_INT &&
	    config_setting_type(s) != CONFIG_TYPE_INT64)
		return fail(err, errlen, s, name, "must be an integer");
	v = config_setting_get_int64(s);
	if (v < 0 || (uint64_t)v < lo || (uint64_t)v > hi)
		return fail(err, errlen, s, name, "must be between %llu and %llu (got %lld)",
			    (unsigned long long)lo, (unsigned long long)hi, v);
	*dst = (uint64_t)v;
	return 0;
}

static int get_uint32(const config_setting_t *root, const char *name, uint64_t lo, uint64_t hi,
		      unsigned int *dst, char *err, size_t errlen)
{
	uint64_t v = *dst;
	int rc = get_uint(root, name, lo, hi, &v, err, errlen);

	*dst = (unsigned int)v;
	return rc;
}

/* The bundled stack's addresses of one interface: one IPv4 and one IPv6 literal at most. */
static int parse_iface_bundled(const config_setting_t *e, unsigned int idx,
			       struct agent_iface_cfg *ic, char *err, size_t errlen)
{
	static const char *const keys[4] = { "bundled_ipv4", "bundled_ipv6",
					     "bundled_responder_ipv4", "bundled_responder_ipv6" };
	unsigned int j;

	for (j = 0; j < (unsigned int)config_setting_length(e); j++) {
		const char *k = config_setting_name(config_setting_get_elem(e, j));
		unsigned int i;

		for (i = 0; i < 4 && strcmp(k, keys[i]); i++)
			;
		if (strncmp(k, "bundled_", 8) == 0 && i == 4) {
			char name[96];

			snprintf(name, sizeof(name), "interfaces[%u].%.40s", idx, k);
			return fail(err, errlen, e, name,
				    "unknown key (known: bundled_ipv4, bundled_ipv6, "
				    "bundled_responder_ipv4, bundled_responder_ipv6)");
		}
	}
	for (j = 0; j < 4; j++) {
		char *dst = j < 2 ? ic->bundled[j] : ic->bundled_responder[j - 2];
		unsigned char buf[16];
		char name[64];

		snprintf(name, sizeof(name), "interfaces[%u].%s", idx, keys[j]);
		if (get_str(e, keys[j], dst, AGENT_ADDR_MAX, 0, err, errlen))
			return fail(err, errlen, config_setting_get_member(e, keys[j]), name,
				    "must be an address literal");
		if (dst[0] && inet_pton(j % 2 ? AF_INET6 : AF_INET, dst, buf) != 1)
			return fail(err, errlen, config_setting_get_member(e, keys[j]), name,
				    "\"%s\" is not an %s address", dst, j % 2 ? "IPv6" : "IPv4");
	}
	return 0;
}

static int parse_iface(const config_setting_t *e, unsigned int idx, struct agent_config *cfg,
		       char *err, size_t errlen)
{
	struct agent_iface_cfg *ic = &cfg->ifaces[idx];
	char name[48], lt[32] = "ethernet";
	unsigned int j;
	int rc;

	snprintf(name, sizeof(name), "interfaces[%u]", idx);
	if (config_setting_type(e) != CONFIG_TYPE_GROUP)
		return fail(err, errlen, e, name, "must be a group { name = ...; isp = ...; }");
	for (j = 0; j < (unsigned int)config_setting_length(e); j++) {
		const char *k = config_setting_name(config_setting_get_elem(e, j));

		if (strcmp(k, "name") && strcmp(k, "isp") && strcmp(k, "link_type") &&
		    strncmp(k, "bundled_", 8))
			return fail(err, errlen, e, name,
				    "unknown key '%s' (known: name, isp, link_type, bundled_ipv4, "
				    "bundled_ipv6, bundled_responder_ipv4, bundled_responder_ipv6)",
				    k);
	}
	snprintf(name, sizeof(name), "interfaces[%u].name", idx);
	if (!config_setting_get_member(e, "name"))
		return fail(err, errlen, e, name, "missing (required)");
	rc = get_str(e, "name", ic->name, sizeof(ic->name), 1, err, errlen);
	if (rc)
		return fail(err, errlen, e, name, "must be an interface name of 1 to %d characters",
			    AGENT_IFNAME_MAX - 1);
	for (j = 0; j < idx; j++)
		if (strcmp(cfg->ifaces[j].name, ic->name) == 0)
			return fail(err, errlen, e, name, "interface '%s' is listed twice",
				    ic->name);
	snprintf(name, sizeof(name), "interfaces[%u].isp", idx);
	if (!config_setting_get_member(e, "isp") ||
	    get_str(e, "isp", ic->isp, sizeof(ic->isp), 1, err, errlen) || !is_label(ic->isp))
		return fail(err, errlen, e, name,
			    "must be an ISP label of 1 to %d characters [A-Za-z0-9._-]",
			    AGENT_LABEL_MAX);
	snprintf(name, sizeof(name), "interfaces[%u].link_type", idx);
	if (get_str(e, "link_type", lt, sizeof(lt), 0, err, errlen) ||
	    agent_link_type_parse(lt) < 0)
		return fail(
			err, errlen, config_setting_get_member(e, "link_type"), name,
			"must be one of ethernet, fiber, dsl, cable, mobile, satellite, emulated");
	ic->link_type = agent_link_type_parse(lt);
	return parse_iface_bundled(e, idx, ic, err, errlen);
}

static int parse_ifaces(const config_setting_t *root, struct agent_config *cfg, char *err,
			size_t errlen)
{
	const config_setting_t *s = config_setting_get_member(root, "interfaces");
	int n, i, rc;

	if (!s)
		return fail(err, errlen, NULL, "interfaces", "missing (required)");
	if (config_setting_type(s) != CONFIG_TYPE_LIST)
		return fail(err, errlen, s, "interfaces", "must be a list ( { ... }, ... )");
	n = config_setting_length(s);
	if (n == 0)
		return fail(err, errlen, s, "interfaces", "must list at least one interface");
	if (n > AGENT_MAX_IFACES)
		return fail(err, errlen, s, "interfaces", "at most %d interfaces (got %d)",
			    AGENT_MAX_IFACES, n);
	for (i = 0; i < n; i++) {
		rc = parse_iface(config_setting_get_elem(s, (unsigned int)i), (unsigned int)i, cfg,
				 err, errlen);
		if (rc)
			return rc;
	}
	cfg->n_ifaces = (unsigned int)n;
	return 0;
}

/* Returns 0 if s is an IPv4 or IPv6 address literal. */
static int inet_pton_any(const char *s, unsigned char *buf)
{
	if (inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1)
		return 0;
	return -EINVAL;
}

static int parse_resp_addrs(const config_setting_t *root, struct agent_config *cfg, char *err,
			    size_t errlen)
{
	const config_setting_t *s = config_setting_get_member(root, "responder_addresses");
	int n, i;

	if (!s)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_ARRAY &&
	    config_setting_type(s) != CONFIG_TYPE_LIST)
		return fail(err, errlen, s, "responder_addresses",
			    "must be an array of address strings");
	n = config_setting_length(s);
	if (n > AGENT_MAX_RESP_ADDRS)
		return fail(err, errlen, s, "responder_addresses", "at most %d addresses",
			    AGENT_MAX_RESP_ADDRS);
	for (i = 0; i < n; i++) {
		const char *a = config_setting_get_string_elem(s, i);
		unsigned char buf[16];

		if (!a || (inet_pton_any(a, buf) != 0))
			return fail(err, errlen, s, "responder_addresses",
				    "element %d is not an IPv4 or IPv6 address", i);
		snprintf(cfg->responder_addrs[i], sizeof(cfg->responder_addrs[i]), "%s", a);
	}
	cfg->n_responder_addrs = (unsigned int)n;
	return 0;
}

static int check_unknown(const config_setting_t *root, char *err, size_t errlen)
{
	unsigned int i, j;

	for (i = 0; i < (unsigned int)config_setting_length(root); i++) {
		const config_setting_t *s = config_setting_get_elem(root, i);
		const char *name = config_setting_name(s);

		for (j = 0; known_settings[j]; j++)
			if (strcmp(name, known_settings[j]) == 0)
				break;
		if (!known_settings[j])
			return fail(err, errlen, s, name, "unknown setting (misspelt?)");
	}
	return 0;
}

static int check_url(const config_setting_t *root, const char *url, char *err, size_t errlen)
{
	const config_setting_t *s = config_setting_get_member(root, "controller_url");
	const char *host;

	if (strncmp(url, "http://", 7) == 0)
		host = url + 7;
	else if (strncmp(url, "https://", 8) == 0)
		host = url + 8;
	else
		return fail(err, errlen, s, "controller_url",
			    "must start with http:// or https:// (got \"%.64s\")", url);
	if (!host[0] || host[0] == '/')
		return fail(err, errlen, s, "controller_url", "has no host");
	if (strpbrk(url, " \t\r\n\"<>"))
		return fail(err, errlen, s, "controller_url", "contains spaces or quotes");
	return 0;
}

static int parse_strings(const config_setting_t *root, struct agent_config *cfg, char *err,
			 size_t errlen)
{
	char level[16] = "info";
	int rc;

	rc = get_str(root, "controller_url", cfg->controller_url, sizeof(cfg->controller_url), 1,
		     err, errlen);
	if (!rc)
		rc = check_url(root, cfg->controller_url, err, errlen);
	if (!rc)
		rc = get_str(root, "controller_cacert", cfg->cacert, sizeof(cfg->cacert), 0, err,
			     errlen);
	if (!rc && cfg->cacert[0] && access(cfg->cacert, R_OK) < 0)
		rc = fail(err, errlen, config_setting_get_member(root, "controller_cacert"),
			  "controller_cacert", "cannot read %s: %s", cfg->cacert, strerror(errno));
	if (!rc)
		rc = get_str(root, "site", cfg->site, sizeof(cfg->site), 1, err, errlen);
	if (!rc && !is_label(cfg->site))
		rc = fail(err, errlen, config_setting_get_member(root, "site"), "site",
			  "must be 1 to %d characters [A-Za-z0-9._-]", AGENT_LABEL_MAX);
	if (!rc)
		rc = get_str(root, "node", cfg->node, sizeof(cfg->node), 1, err, errlen);
	if (!rc && !is_label(cfg->node))
		rc = fail(err, errlen, config_setting_get_member(root, "node"), "node",
			  "must be 1 to %d characters [A-Za-z0-9._-]", AGENT_LABEL_MAX);
	if (!rc)
		rc = get_str(root, "enrollment_secret", cfg->secret, sizeof(cfg->secret), 1, err,
			     errlen);
	if (!rc)
		rc = get_str(root, "state_dir", cfg->state_dir, sizeof(cfg->state_dir), 1, err,
			     errlen);
	if (!rc)
		rc = get_str(root, "spool_dir", cfg->spool_dir, sizeof(cfg->spool_dir), 1, err,
			     errlen);
	if (!rc)
		rc = get_str(root, "log_level", level, sizeof(level), 0, err, errlen);
	if (!rc && fj_log_parse_level(level, &cfg->log_level) < 0)
		rc = fail(err, errlen, config_setting_get_member(root, "log_level"), "log_level",
			  "must be one of err, warn, info, debug (got \"%s\")", level);
	if (!rc)
		rc = get_str(root, "link_hook", cfg->link_hook, sizeof(cfg->link_hook), 0, err,
			     errlen);
	if (!rc)
		rc = get_str(root, "bundled_tun", cfg->bundled_tun, sizeof(cfg->bundled_tun), 0,
			     err, errlen);
	if (!rc)
		rc = get_str(root, "bundled_responder_tun", cfg->bundled_responder_tun,
			     sizeof(cfg->bundled_responder_tun), 0, err, errlen);
	if (!rc && cfg->bundled_tun[0] && !strcmp(cfg->bundled_tun, cfg->bundled_responder_tun))
		rc = fail(err, errlen, config_setting_get_member(root, "bundled_responder_tun"),
			  "bundled_responder_tun",
			  "must differ from bundled_tun (a TUN device serves one process)");
	if (!rc)
		rc = get_bool(root, "bundled_offloads", &cfg->bundled_offloads, err, errlen);
	return rc;
}

static int parse_numbers(const config_setting_t *root, struct agent_config *cfg, char *err,
			 size_t errlen)
{
	int rc;

	rc = get_uint(root, "spool_cap_bytes", AGENT_MIN_SPOOL_CAP, 1ull << 50,
		      &cfg->spool_cap_bytes, err, errlen);
	if (!rc)
		rc = get_uint32(root, "poll_wait_s", 1, 3600, &cfg->poll_wait_s, err, errlen);
	if (!rc)
		rc = get_uint32(root, "responder_port", 1, 65535, &cfg->responder_port, err,
				errlen);
	if (!rc)
		rc = get_uint32(root, "responder_max_connections", 1, 4096,
				&cfg->responder_max_conns, err, errlen);
	if (!rc)
		rc = get_uint32(root, "responder_idle_s", 1, 3600, &cfg->responder_idle_s, err,
				errlen);
	if (!rc)
		rc = get_uint32(root, "max_runs", 1, 64, &cfg->max_runs, err, errlen);
	if (!rc)
		rc = get_uint32(root, "run_deadline_s", 1, 86400, &cfg->run_deadline_s, err,
				errlen);
	if (!rc)
		rc = get_uint32(root, "backoff_base_ms", 1, 600000, &cfg->backoff_base_ms, err,
				errlen);
	if (!rc)
		rc = get_uint32(root, "backoff_max_ms", 1, 3600000, &cfg->backoff_max_ms, err,
				errlen);
	if (!rc && cfg->backoff_max_ms < cfg->backoff_base_ms)
		rc = fail(err, errlen, config_setting_get_member(root, "backoff_max_ms"),
			  "backoff_max_ms", "must not be below backoff_base_ms (%u)",
			  cfg->backoff_base_ms);
	if (!rc)
		rc = get_uint32(root, "bundled_rcvbuf_max", AGENT_BUNDLED_BUF_MIN,
				AGENT_BUNDLED_BUF_MAX, &cfg->bundled_rcvbuf_max, err, errlen);
	if (!rc)
		rc = get_uint32(root, "bundled_sndbuf_max", AGENT_BUNDLED_BUF_MIN,
				AGENT_BUNDLED_BUF_MAX, &cfg->bundled_sndbuf_max, err, errlen);
	return rc;
}

/* Whether any interface names a bundled responder address of its own. */
static int iface_with_resp_addr(const struct agent_config *cfg)
{
	unsigned int i;

	for (i = 0; i < cfg->n_ifaces; i++)
		if (cfg->ifaces[i].bundled_responder[0][0] ||
		    cfg->ifaces[i].bundled_responder[1][0])
			return (int)i;
	return -1;
}

/*
 * bundled_host and bundled_responder_port, after the interfaces: the host
 * adapter excludes the TUN devices and the responder's own addresses, and
 * needs a bundled address and a port the kernel responder and the stack's
 * ephemeral range (49152-65535) leave free.
 */
static int parse_bundled_host(const config_setting_t *root, struct agent_config *cfg, char *err,
			      size_t errlen)
{
	const config_setting_t *h = config_setting_get_member(root, "bundled_host");
	const config_setting_t *p = config_setting_get_member(root, "bundled_responder_port");
	unsigned int i;
	int k, any = 0;

	if (h && config_setting_type(h) != CONFIG_TYPE_BOOL)
		return fail(err, errlen, h, "bundled_host", "must be true or false");
	cfg->bundled_host = h && config_setting_get_bool(h);
	if (!cfg->bundled_host) {
		if (p)
			return fail(err, errlen, p, "bundled_responder_port",
				    "only with bundled_host = true (a TUN responder listens on "
				    "responder_port)");
		return 0;
	}
	if (cfg->bundled_tun[0] || cfg->bundled_responder_tun[0])
		return fail(err, errlen, h, "bundled_host",
			    "excludes bundled_tun and bundled_responder_tun (the bundled stack "
			    "runs on the node's own addresses or on TUN devices, not both)");
	k = iface_with_resp_addr(cfg);
	if (k >= 0) {
		char name[64];

		snprintf(name, sizeof(name), "interfaces[%d].bundled_responder_ipv%c", k,
			 cfg->ifaces[k].bundled_responder[0][0] ? '4' : '6');
		return fail(err, errlen, h, name,
			    "not with bundled_host (the bundled responder uses the interface's "
			    "bundled_ipv4 / bundled_ipv6 on bundled_responder_port)");
	}
	for (i = 0; i < cfg->n_ifaces; i++)
		any |= cfg->ifaces[i].bundled[0][0] || cfg->ifaces[i].bundled[1][0];
	if (!any)
		return fail(err, errlen, h, "bundled_host",
			    "needs bundled_ipv4 or bundled_ipv6 on at least one interface (the "
			    "node's own address on that ISP)");
	cfg->bundled_responder_port = cfg->responder_port + 1;
	if (p && (config_setting_type(p) != CONFIG_TYPE_INT || config_setting_get_int(p) < 1 ||
		  config_setting_get_int(p) > 49151))
		return fail(err, errlen, p, "bundled_responder_port",
			    "must be a port between 1 and 49151 (49152-65535 are the bundled "
			    "stack's own)");
	if (p)
		cfg->bundled_responder_port = (unsigned int)config_setting_get_int(p);
	if (cfg->bundled_responder_port > 49151)
		return fail(err, errlen, h, "bundled_responder_port",
			    "responder_port + 1 (%u) is in 49152-65535, the bundled stack's own "
			    "ports: set bundled_responder_port",
			    cfg->bundled_responder_port);
	if (cfg->bundled_responder_port == cfg->responder_port)
		return fail(err, errlen, p, "bundled_responder_port",
			    "must differ from responder_port (%u): the kernel responder holds it "
			    "on the same addresses",
			    cfg->responder_port);
	return 0;
}

static int parse_root(const config_t *c, struct agent_config *cfg, char *err, size_t errlen)
{
	const config_setting_t *root = config_root_setting(c);
	int rc;

	agent_config_defaults(cfg);
	rc = check_unknown(root, err, errlen);
	if (!rc)
		rc = parse_strings(root, cfg, err, errlen);
	if (!rc)
		rc = parse_numbers(root, cfg, err, errlen);
	if (!rc)
		rc = parse_resp_addrs(root, cfg, err, errlen);
	if (!rc)
		rc = parse_ifaces(root, cfg, err, errlen);
	if (!rc)
		rc = parse_bundled_host(root, cfg, err, errlen);
	return rc;
}

int agent_config_parse(const char *text, struct agent_config *cfg, char *err, size_t errlen)
{
	config_t c;
	int rc;

	config_init(&c);
	if (config_read_string(&c, text) != CONFIG_TRUE) {
		snprintf(err, errlen, "line %d: syntax error: %s", config_error_line(&c),
			 config_error_text(&c));
		config_destroy(&c);
		return -EINVAL;
	}
	rc = parse_root(&c, cfg, err, errlen);
	config_destroy(&c);
	return rc;
}

int agent_config_load(const char *path, struct agent_config *cfg, char *err, size_t errlen)
{
	char buf[65536 + 1];
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f) {
		int e = errno;

		snprintf(err, errlen, "cannot open %s: %s", path, strerror(e));
		return -e;
	}
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	if (n == sizeof(buf)) {
		snprintf(err, errlen, "%s: larger than %zu bytes", path, sizeof(buf) - 1);
		return -EFBIG;
	}
	buf[n] = 0;
	return agent_config_parse(buf, cfg, err, errlen);
}
