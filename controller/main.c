/*
 * fjord-controller: parse arguments and config, create the server, run
 * until SIGINT or SIGTERM, destroy. "token create" makes a user API token.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "auth.h"
#include "config.h"
#include "fj_log.h"
#include "http.h"

#define DEFAULT_CONFIG "/etc/fjord/fjord-controller.cfg"

static const char usage[] =
	"usage: fjord-controller [-c FILE]\n"
	"       fjord-controller [-c FILE] token create --role ROLE [--name NAME]\n"
	"\n"
	"Serves the Fjord API (docs/api.md) as configured in FILE\n"
	"(default " DEFAULT_CONFIG "), until SIGINT or SIGTERM.\n"
	"\n"
	"  -c, --config FILE   configuration file (libconfig; see deploy/fjord-controller.cfg)\n"
	"  -h, --help          this text\n"
	"  -V, --version       print the version\n"
	"\n"
	"token create: stores a new user API token with ROLE (viewer, experimenter\n"
	"or admin) and an optional NAME, and prints the token once on stdout.\n";

struct args {
	const char *config;
	int token;
	Fjord__V1__Role role;
	const char *name;
};

static int fail_usage(const char *msg, const char *arg)
{
	fprintf(stderr, "fjord-controller: %s%s\n%s", msg, arg ? arg : "", usage);
	return 2;
}

/* Returns -1 to go on, or an exit status. */
static int parse_args(int argc, char **argv, struct args *a)
{
	static const struct option opts[] = { { "config", required_argument, NULL, 'c' },
					      { "help", no_argument, NULL, 'h' },
					      { "version", no_argument, NULL, 'V' },
					      { "role", required_argument, NULL, 'r' },
					      { "name", required_argument, NULL, 'n' },
					      { NULL, 0, NULL, 0 } };
	const char *role = NULL;
	int c;

	a->config = DEFAULT_CONFIG;
	while ((c = getopt_long(argc, argv, "c:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			a->config = optarg;
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		case 'V':
			printf("fjord-controller %s\n", CTL_VERSION);
			return 0;
		case 'r':
			role = optarg;
			break;
		case 'n':
			a->name = optarg;
			break;
		default:
			return fail_usage("bad option", NULL);
		}
	}
	if (optind < argc) {
		if (argc - optind != 2 || strcmp(argv[optind], "token") != 0 ||
		    strcmp(argv[optind + 1], "create") != 0)
			return fail_usage("unknown command: ", argv[optind]);
		a->token = 1;
		if (!role)
			return fail_usage("token create needs --role viewer|experimenter|admin",
					  NULL);
		if (ctl_auth_role_parse(role, &a->role) < 0)
			return fail_usage("--role must be viewer, experimenter or admin, not ",
					  role);
		if (a->name && strlen(a->name) > 128)
			return fail_usage("--name is longer than 128 characters", NULL);
	} else if (role || a->name) {
		return fail_usage("--role and --name belong to 'token create'", NULL);
	}
	return -1;
}

static int token_create(const struct ctl_config *cfg, const struct args *a)
{
	char token[CTL_TOKEN_HEX + 1];
	struct ctl_store *st;
	int r;

	/* Tokens may be made before the server first ran and created data_dir. */
	if (mkdir(cfg->data_dir, 0750) < 0 && errno != EEXIST)
		fprintf(stderr, "fjord-controller: cannot create data_dir '%s': %s\n",
			cfg->data_dir, strerror(errno));
	r = ctl_store_open(cfg->database, &st);
	if (r < 0) {
		fprintf(stderr, "fjord-controller: database '%s': %s\n", cfg->database,
			strerror(-r));
		return 1;
	}
	r = ctl_http_token_create(st, a->role, a->name, token);
	ctl_store_close(st);
	if (r < 0) {
		fprintf(stderr, "fjord-controller: cannot store the token: %s\n", strerror(-r));
		return 1;
	}
	printf("%s\n", token);
	return 0;
}

static int serve(const struct ctl_config *cfg)
{
	struct ctl_http *h;
	struct rlimit rl;
	char err[512];
	sigset_t set;
	int sig = 0;

	/* Long polls hold one descriptor per agent. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	/* Blocked before any thread starts, so only sigwait below sees them. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (ctl_http_create(cfg, &h, err, sizeof(err)) < 0) {
		fprintf(stderr, "fjord-controller: %s\n", err);
		return 1;
	}
	sigwait(&set, &sig);
	fj_info("signal %d: stopping", sig);
	ctl_http_destroy(h);
	return 0;
}

int main(int argc, char **argv)
{
	struct args a = { 0 };
	struct ctl_config *cfg;
	char err[512];
	int r;

	r = parse_args(argc, argv, &a);
	if (r >= 0)
		return r;
	if (ctl_config_load(a.config, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "fjord-controller: %s\n", err);
		return 1;
	}
	fj_log_init("fjord-controller", cfg->log_level);
	r = a.token ? token_create(cfg, &a) : serve(cfg);
	ctl_config_free(cfg);
	return r;
}
