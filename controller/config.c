/*
 * Controller configuration: libconfig file -> struct ctl_config, with every
 * value checked and every error naming the file, line and setting.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <libconfig.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#define DEFAULT_DATA_DIR "/var/lib/fjord-controller"

int ctl_config_set_str(char **field, const char *value)
{
	char *copy = NULL;

	if (value) {
		copy = strdup(value);
		if (!copy)
			return -ENOMEM;
	}
	free(*field);
	*field = copy;
	return 0;
}

int ctl_config_defaults(struct ctl_config **out)
{
	struct ctl_config *cfg = calloc(1, sizeof(*cfg));

	*out = NULL;
	if (!cfg)
		return -ENOMEM;
	cfg->port = 8420;
	cfg->long_poll_max_s = 30;
	cfg->max_body_bytes = 1 << 20;
	cfg->max_trace_bytes = 256ull << 20;
	cfg->log_level = FJ_LOG_INFO;
	cfg->threads = 4;
	cfg->max_connections = 16384;
	if (ctl_config_set_str(&cfg->listen, "127.0.0.1") < 0 ||
	    ctl_config_set_str(&cfg->data_dir, DEFAULT_DATA_DIR) < 0) {
		ctl_config_free(cfg);
		return -ENOMEM;
	}
	*out = cfg;
	return 0;
}

void ctl_config_free(struct ctl_config *cfg)
{
	size_t i;

	if (!cfg)
		return;
	for (i = 0; i < cfg->n_sites; i++) {
		free(cfg->sites[i].site);
		free(cfg->sites[i].secret);
	}
	free(cfg->sites);
	free(cfg->listen);
	free(cfg->data_dir);
	free(cfg->database);
	free(cfg->tls_cert);
	free(cfg->tls_key);
	free(cfg);
}

static int site_name_ok(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > 64)
		return 0;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

int ctl_config_add_site(struct ctl_config *cfg, const char *site, const char *secret)
{
	struct ctl_site_secret *n;
	size_t i;

	if (!site_name_ok(site) || strlen(secret) < CTL_CFG_MIN_SECRET_LEN)
		return -EINVAL;
	for (i = 0; i < cfg->n_sites; i++)
		if (strcmp(cfg->sites[i].site, site) == 0)
			return -EEXIST;
	n = realloc(cfg->sites, (cfg->n_sites + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	cfg->sites = n;
	n[cfg->n_sites].site = strdup(site);
	n[cfg->n_sites].secret = strdup(secret);
	if (!n[cfg->n_sites].site || !n[cfg->n_sites].secret) {
		free(n[cfg->n_sites].site);
		free(n[cfg->n_sites].secret);
		return -ENOMEM;
	}
	cfg->n_sites++;
	return 0;
}

/* Error reporting context: the file name and the output buffer. */
struct cfg_err {
	const char *path;
	char *buf;
	size_t len;
};

static int bad(struct cfg_err *e, const config_setting_t *s, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int bad(struct cfg_err *e, const config_setting_t *s, const char *name, const char *fmt, ...)
{
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	snprintf(e->buf, e->len, "%s:%d: setting '%s': %s", e->path,
		 s ? (int)config_setting_source_line(s) : 0, name, why);
	return -EINVAL;
}

static int get_string(struct cfg_err *e, const config_setting_t *s, char **field)
{
	const char *v;

	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return bad(e, s, config_setting_name(s), "must be a string in double quotes");
	v = config_setting_get_string(s);
	if (!v[0])
		return bad(e, s, config_setting_name(s), "must not be empty");
	return ctl_config_set_str(field, v);
}

static int get_int(struct cfg_err *e, const config_setting_t *s, long long min, long long max,
		   long long *out)
{
	long long v;
	int t = config_setting_type(s);

	if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64)
		return bad(e, s, config_setting_name(s), "must be an integer in %lld..%lld", min,
			   max);
	v = config_setting_get_int64(s);
	if (v < min || v > max)
		return bad(e, s, config_setting_name(s), "%lld is out of range %lld..%lld", v, min,
			   max);
	*out = v;
	return 0;
}

static int parse_sites(struct cfg_err *e, const config_setting_t *list, struct ctl_config *cfg)
{
	int i, n = config_setting_length(list);

	if (config_setting_type(list) != CONFIG_TYPE_LIST)
		return bad(e, list, "sites",
			   "must be a list of groups: ( { name = \"...\"; secret = \"...\"; } )");
	for (i = 0; i < n; i++) {
		const config_setting_t *g = config_setting_get_elem(list, i);
		const char *name = NULL, *secret = NULL;
		char label[64];
		int r;

		snprintf(label, sizeof(label), "sites[%d]", i);
		if (config_setting_type(g) != CONFIG_TYPE_GROUP)
			return bad(e, g, label, "must be a group { name = ...; secret = ...; }");
		if (config_setting_length(g) != 2 ||
		    !config_setting_lookup_string(g, "name", &name) ||
		    !config_setting_lookup_string(g, "secret", &secret))
			return bad(e, g, label,
				   "must hold exactly a string 'name' and a string 'secret'");
		if (!site_name_ok(name))
			return bad(e, g, label, "site name '%s' must be 1 to 64 of [A-Za-z0-9._-]",
				   name);
		if (strlen(secret) < CTL_CFG_MIN_SECRET_LEN)
			return bad(e, g, label, "secret of site '%s' is shorter than %d characters",
				   name, CTL_CFG_MIN_SECRET_LEN);
		r = ctl_config_add_site(cfg, name, secret);
		if (r == -EEXIST)
			return bad(e, g, label, "site '%s' is listed twice", name);
		if (r < 0)
			return r;
	}
	return 0;
}

static int parse_listen(struct cfg_err *e, const config_setting_t *s, struct ctl_config *cfg)
{
	unsigned char buf[sizeof(struct in6_addr)];
	int r = get_string(e, s, &cfg->listen);

	if (r < 0)
		return r;
	if (inet_pton(AF_INET, cfg->listen, buf) != 1 && inet_pton(AF_INET6, cfg->listen, buf) != 1)
		return bad(e, s, "listen", "'%s' is not a numeric IPv4 or IPv6 address",
			   cfg->listen);
	return 0;
}

/* One top-level setting; unknown names are errors. */
static int parse_one(struct cfg_err *e, const config_setting_t *s, struct ctl_config *cfg)
{
	const char *name = config_setting_name(s);
	long long v = 0; /* get_int leaves it alone on error; the config is then dropped */
	int r;

	if (strcmp(name, "listen") == 0)
		return parse_listen(e, s, cfg);
	if (strcmp(name, "data_dir") == 0)
		return get_string(e, s, &cfg->data_dir);
	if (strcmp(name, "database") == 0)
		return get_string(e, s, &cfg->database);
	if (strcmp(name, "tls_cert") == 0)
		return get_string(e, s, &cfg->tls_cert);
	if (strcmp(name, "tls_key") == 0)
		return get_string(e, s, &cfg->tls_key);
	if (strcmp(name, "sites") == 0)
		return parse_sites(e, s, cfg);
	if (strcmp(name, "log_level") == 0) {
		if (config_setting_type(s) != CONFIG_TYPE_STRING ||
		    fj_log_parse_level(config_setting_get_string(s), &cfg->log_level) < 0)
			return bad(e, s, name, "must be \"err\", \"warn\", \"info\" or \"debug\"");
		return 0;
	}
	if (strcmp(name, "port") == 0) {
		r = get_int(e, s, 0, 65535, &v);
		cfg->port = (uint16_t)v;
	} else if (strcmp(name, "long_poll_max_s") == 0) {
		r = get_int(e, s, 1, CTL_CFG_MAX_POLL_S, &v);
		cfg->long_poll_max_s = (unsigned int)v;
	} else if (strcmp(name, "max_body_bytes") == 0) {
		r = get_int(e, s, 1024, 64ll << 20, &v);
		cfg->max_body_bytes = (size_t)v;
	} else if (strcmp(name, "max_trace_bytes") == 0) {
		r = get_int(e, s, 1024, 64ll << 30, &v);
		cfg->max_trace_bytes = (uint64_t)v;
	} else if (strcmp(name, "threads") == 0) {
		r = get_int(e, s, 1, CTL_CFG_MAX_THREADS, &v);
		cfg->threads = (unsigned int)v;
	} else if (strcmp(name, "max_connections") == 0) {
		r = get_int(e, s, 16, 1000000, &v);
		cfg->max_connections = (unsigned int)v;
	} else {
		return bad(e, s, name, "unknown setting");
	}
	return r;
}

static int finish(struct cfg_err *e, struct ctl_config *cfg)
{
	if (!!cfg->tls_cert != !!cfg->tls_key)
		return bad(e, NULL, cfg->tls_cert ? "tls_key" : "tls_cert",
			   "tls_cert and tls_key must be given together");
	if (!cfg->database) {
		char *p;

		if (asprintf(&p, "%s/fjord.db", cfg->data_dir) < 0)
			return -ENOMEM;
		cfg->database = p;
	}
	return 0;
}

/* Reads the file (text == NULL) or the text, then checks every setting. */
static int load(const char *path, const char *text, struct ctl_config **out, char *err,
		size_t err_len)
{
	struct cfg_err e = { path, err, err_len };
	struct ctl_config *cfg;
	config_setting_t *root;
	config_t lc;
	int i, r, ok;

	*out = NULL;
	err[0] = 0;
	r = ctl_config_defaults(&cfg);
	if (r < 0)
		return r;
	config_init(&lc);
	ok = text ? config_read_string(&lc, text) : config_read_file(&lc, path);
	if (!ok) {
		if (config_error_type(&lc) == CONFIG_ERR_FILE_IO)
			snprintf(err, err_len, "%s: cannot read the file", path);
		else
			snprintf(err, err_len, "%s:%d: %s", path, config_error_line(&lc),
				 config_error_text(&lc));
		r = -EINVAL;
		goto out;
	}
	root = config_root_setting(&lc);
	for (i = 0; i < config_setting_length(root); i++) {
		r = parse_one(&e, config_setting_get_elem(root, i), cfg);
		if (r < 0)
			goto out;
	}
	r = finish(&e, cfg);
out:
	config_destroy(&lc);
	if (r < 0) {
		if (r == -ENOMEM && !err[0])
			snprintf(err, err_len, "%s: out of memory", path);
		ctl_config_free(cfg);
		return r;
	}
	*out = cfg;
	return 0;
}

int ctl_config_load(const char *path, struct ctl_config **out, char *err, size_t err_len)
{
	return load(path, NULL, out, err, err_len);
}

int ctl_config_parse(const char *text, const char *name, struct ctl_config **out, char *err,
		     size_t err_len)
{
	return load(name, text, out, err, err_len);
}
