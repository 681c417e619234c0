/* fjord-agent: parse the command line and config, create, run, destroy. */
#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

#include "agent.h"
#include "agent_config.h"
#include "exp.h"
#include "fj_log.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: fjord-agent -c FILE [--once]\n"
		"  -c, --config FILE  agent configuration (libconfig; see deploy/fjord-agent.cfg)\n"
		"  --once             enroll, poll once, run what arrives, upload the spool, exit\n"
		"  -h, --help         this text\n");
}

int main(int argc, char **argv)
{
	static struct agent_config cfg;
	const char *path = NULL;
	struct agent *a = NULL;
	char err[512];
	int i, once = 0, rc;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		} else if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) &&
			   i + 1 < argc) {
			path = argv[++i];
		} else if (strcmp(argv[i], "--once") == 0) {
			once = 1;
		} else {
			fprintf(stderr, "fjord-agent: unknown or incomplete option '%s'\n",
				argv[i]);
			usage(stderr);
			return 2;
		}
	}
	if (!path) {
		fprintf(stderr, "fjord-agent: no configuration file (-c FILE)\n");
		usage(stderr);
		return 2;
	}
	if (agent_config_load(path, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "fjord-agent: %s: %s\n", path, err);
		return 2;
	}
	fj_log_init("fjord-agent", cfg.log_level);
	if (cfg.link_hook[0])
		exp_set_link_hook(cfg.link_hook);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = agent_create(&cfg, once, &a, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "fjord-agent: %s\n", err);
		curl_global_cleanup();
		return 1;
	}
	rc = agent_run(a);
	agent_destroy(a);
	curl_global_cleanup();
	return rc;
}
