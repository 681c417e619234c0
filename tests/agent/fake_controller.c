/*
 * fjord-fake-controller: the fake controller of fake_ctl.c as a program, for
 * the agent's integration scripts. Listens on 127.0.0.1 only.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fake_ctl.h"

static volatile sig_atomic_t stop;

static void on_sig(int s)
{
	(void)s;
	stop = 1;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: fjord-fake-controller --secret S [--port N] [--port-file F]\n"
		   "  [--record F] [--queue-echo N] [--run-prefix P] [--echo-count C]\n"
		   "  [--echo-bytes B] [--queue-slow RUN_ID] [--exit-after-dispatch]\n");
}

struct opts {
	unsigned int port, queue_echo, echo_count, echo_bytes;
	const char *secret, *port_file, *record, *prefix, *slow;
	int exit_after_dispatch;
};

static int parse(int argc, char **argv, struct opts *o)
{
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--exit-after-dispatch") == 0) {
			o->exit_after_dispatch = 1;
			continue;
		}
		if (!v)
			return -1;
		i++;
		if (strcmp(a, "--port") == 0)
			o->port = (unsigned int)atoi(v);
		else if (strcmp(a, "--secret") == 0)
			o->secret = v;
		else if (strcmp(a, "--port-file") == 0)
			o->port_file = v;
		else if (strcmp(a, "--record") == 0)
			o->record = v;
		else if (strcmp(a, "--queue-echo") == 0)
			o->queue_echo = (unsigned int)atoi(v);
		else if (strcmp(a, "--run-prefix") == 0)
			o->prefix = v;
		else if (strcmp(a, "--echo-count") == 0)
			o->echo_count = (unsigned int)atoi(v);
		else if (strcmp(a, "--echo-bytes") == 0)
			o->echo_bytes = (unsigned int)atoi(v);
		else if (strcmp(a, "--queue-slow") == 0)
			o->slow = v;
		else
			return -1;
	}
	return o->secret ? 0 : -1;
}

int main(int argc, char **argv)
{
	struct opts o = { 0, 0, 20, 256, NULL, NULL, NULL, "run", NULL, 0 };
	struct fake_ctl *f;
	unsigned int i;
	char id[64];

	if (parse(argc, argv, &o) < 0) {
		usage(stderr);
		return 2;
	}
	signal(SIGTERM, on_sig);
	signal(SIGINT, on_sig);
	if (fake_ctl_start(o.port, o.secret, o.record, &f) < 0) {
		fprintf(stderr, "fjord-fake-controller: cannot listen on 127.0.0.1:%u\n", o.port);
		return 1;
	}
	if (o.exit_after_dispatch)
		fake_ctl_vanish_after_dispatch(f);
	/* The slow run first, so it holds one slot while the others pass through. */
	if (o.slow)
		fake_ctl_queue_echo(f, o.slow, 100000, 65536, 0);
	for (i = 0; i < o.queue_echo; i++) {
		snprintf(id, sizeof(id), "%.40s-%u", o.prefix, i + 1);
		fake_ctl_queue_echo(f, id, o.echo_count, o.echo_bytes, 0);
	}
	if (o.port_file) {
		FILE *pf = fopen(o.port_file, "w");

		if (pf) {
			fprintf(pf, "%u\n", fake_ctl_port(f));
			fclose(pf);
		}
	}
	while (!stop) {
		usleep(50000);
		if (o.exit_after_dispatch && fake_ctl_queued(f) == 0 && fake_ctl_count(f, "poll")) {
			/* Let the answer reach the agent (later requests get 503), then go away. */
			usleep(200000);
			break;
		}
	}
	fake_ctl_stop(f);
	return 0;
}
