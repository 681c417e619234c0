/* Header-only packet capture of a run, in a thread of the run's process. */
#include "exp_pcap.h"

#include <errno.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct exp_pcap {
	pcap_t *p;
	pcap_dumper_t *d;
	FILE *mem;
	char *buf;
	size_t len;
	pthread_t thr;
	atomic_int stop;
	unsigned long kept, over_cap;
};

static void on_packet(unsigned char *arg, const struct pcap_pkthdr *h, const unsigned char *bytes)
{
	struct exp_pcap *c = (struct exp_pcap *)arg;
	/* Record header (16 bytes) and the captured part: what the file grows by. */
	long need = 16 + (long)h->caplen;

	if (ftell(c->mem) + need > (long)EXP_TRACE_MAX) {
		c->over_cap++;
		return;
	}
	pcap_dump((unsigned char *)c->d, h, bytes);
	c->kept++;
}

static void *capture_loop(void *arg)
{
	struct exp_pcap *c = arg;
	struct pollfd pfd = { .fd = pcap_get_selectable_fd(c->p), .events = POLLIN };

	/*
	 * Non-blocking reads behind our own poll: the stop flag is seen within
	 * 20 ms whatever libpcap's own waiting does.
	 */
	while (!atomic_load(&c->stop)) {
		if (poll(&pfd, 1, 20) < 0 && errno != EINTR)
			break;
		if (pcap_dispatch(c->p, -1, on_packet, (unsigned char *)c) < 0)
			break;
	}
	/* What arrived before the stop still counts. */
	while (pcap_dispatch(c->p, -1, on_packet, (unsigned char *)c) > 0)
		;
	return NULL;
}

static struct exp_pcap *fail(struct exp_pcap *c, struct exp_out *out, const char *what,
			     const char *why)
{
	char d[PCAP_ERRBUF_SIZE + 64];

	snprintf(d, sizeof(d), "no capture of this run: %s: %s", what, why);
	exp_add_event(out, "capture_unavailable", d, 0);
	if (c) {
		if (c->d)
			pcap_dump_close(c->d); /* closes c->mem too */
		else if (c->mem)
			fclose(c->mem);
		if (c->p)
			pcap_close(c->p);
		free(c->buf);
		free(c);
	}
	return NULL;
}

struct exp_pcap *exp_pcap_start(unsigned int port, struct exp_out *out)
{
	char err[PCAP_ERRBUF_SIZE] = "", filter[64];
	struct bpf_program prog;
	struct exp_pcap *c = calloc(1, sizeof(*c));
	int rc;

	if (!c)
		return fail(NULL, out, "memory", strerror(ENOMEM));
	c->p = pcap_create("any", err);
	if (!c->p)
		return fail(c, out, "pcap_create", err);
	pcap_set_snaplen(c->p, EXP_PCAP_SNAPLEN);
	pcap_set_timeout(c->p, 50);
	pcap_set_immediate_mode(c->p, 1);
	pcap_set_buffer_size(c->p, 4 << 20);
	rc = pcap_activate(c->p);
	if (rc < 0)
		return fail(c, out, "pcap_activate", pcap_geterr(c->p));
	snprintf(filter, sizeof(filter), "tcp port %u", port);
	if (pcap_compile(c->p, &prog, filter, 1, PCAP_NETMASK_UNKNOWN) < 0)
		return fail(c, out, "pcap_compile", pcap_geterr(c->p));
	rc = pcap_setfilter(c->p, &prog);
	pcap_freecode(&prog);
	if (rc < 0)
		return fail(c, out, "pcap_setfilter", pcap_geterr(c->p));
	if (pcap_setnonblock(c->p, 1, err) < 0 || pcap_get_selectable_fd(c->p) < 0)
		return fail(c, out, "pcap_setnonblock", err[0] ? err : "no selectable descriptor");
	c->mem = open_memstream(&c->buf, &c->len);
	if (!c->mem)
		return fail(c, out, "open_memstream", strerror(errno));
	c->d = pcap_dump_fopen(c->p, c->mem);
	if (!c->d)
		return fail(c, out, "pcap_dump_fopen", pcap_geterr(c->p));
	if (pthread_create(&c->thr, NULL, capture_loop, c) != 0)
		return fail(c, out, "pthread_create", strerror(errno));
	return c;
}

void exp_pcap_stop(struct exp_pcap *c, struct exp_out *out)
{
	struct pcap_stat ps;
	struct exp_trace *t;
	char d[128];

	if (!c)
		return;
	atomic_store(&c->stop, 1);
	pthread_join(c->thr, NULL);
	memset(&ps, 0, sizeof(ps));
	pcap_stats(c->p, &ps);
	pcap_dump_close(c->d); /* flushes into c->buf and closes c->mem */
	pcap_close(c->p);
	if (ps.ps_drop) {
		snprintf(d, sizeof(d), "the kernel dropped %u packets of the capture", ps.ps_drop);
		exp_add_event(out, "capture_drops", d, 0);
	}
	if (c->over_cap) {
		snprintf(d, sizeof(d), "%lu packets past the %u-byte cap are not in capture.pcap",
			 c->over_cap, EXP_TRACE_MAX);
		exp_add_event(out, "capture_truncated", d, 0);
	}
	t = exp_trace_new(out, "capture.pcap");
	if (t && c->buf) {
		/* The trace takes the buffer over; exp_out_release() frees it. */
		t->data = c->buf;
		t->len = c->len;
		t->cap = c->len;
		c->buf = NULL;
	}
	free(c->buf);
	free(c);
}
