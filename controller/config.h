/*
 * ctl_config: the controller's libconfig file (see deploy/fjord-controller.cfg
 * for every setting with its default). Loading checks every value and
 * refuses unknown settings, so a typo is an error rather than a silently
 * ignored line.
 */
#ifndef CTL_CONFIG_H
#define CTL_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "fj_log.h"

struct ctl_site_secret {
	char *site;
	char *secret;
};

struct ctl_config {
	char *listen;	/* numeric IPv4 or IPv6 address */
	uint16_t port;	/* 0 = any free port (tests) */
	char *data_dir; /* traces, partial uploads */
	char *database; /* SQLite file; default data_dir/fjord.db */
	char *tls_cert; /* PEM file, NULL = plain HTTP */
	char *tls_key;	/* PEM file, NULL = plain HTTP */
	struct ctl_site_secret *sites;
	size_t n_sites;
	unsigned int long_poll_max_s;
	size_t max_body_bytes;
	uint64_t max_trace_bytes;
	enum fj_log_level log_level;
	unsigned int threads;	      /* HTTP worker threads */
	unsigned int max_connections; /* concurrent HTTP connections */
};

/* Limits enforced on the settings, also used by the sample config's comments. */
#define CTL_CFG_MIN_SECRET_LEN 16
#define CTL_CFG_MAX_POLL_S     300
#define CTL_CFG_MAX_THREADS    64

/*
 * Loads and checks path. On success *out is a new config the caller frees
 * with ctl_config_free(). On failure returns -EINVAL (or -ENOMEM) and err
 * holds "FILE:LINE: setting 'NAME': what is wrong".
 */
int ctl_config_load(const char *path, struct ctl_config **out, char *err, size_t err_len);
/*
 * The same for a config held in memory (text, NUL-terminated); name stands
 * for the file in messages. @include paths are relative to the working
 * directory.
 */
int ctl_config_parse(const char *text, const char *name, struct ctl_config **out, char *err,
		     size_t err_len);
/* A config with every default and no site, for programs that build one in code. */
int ctl_config_defaults(struct ctl_config **out);
/* Adds (copies) a site and its secret; -EINVAL when the secret is too short. */
int ctl_config_add_site(struct ctl_config *cfg, const char *site, const char *secret);
/* Replaces a string setting (copies value; NULL clears it). 0 or -ENOMEM. */
int ctl_config_set_str(char **field, const char *value);
void ctl_config_free(struct ctl_config *cfg);

#endif
