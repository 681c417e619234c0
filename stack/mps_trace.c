/*
 * Packet trace writer over libpcap. The protocol core hands packets to the
 * hook; this file decides what is kept (headers only) and writes it.
 */
#include <errno.h>
#include <pcap/pcap.h>
#include <stdlib.h>

#include "mps_seg.h"
#include "mps_trace.h"

#define TRACE_RAW_MAX 128 /* what is kept of a packet that is not IP/TCP */

struct mps_trace {
	pcap_t *pc;
	pcap_dumper_t *dump;
	uint64_t count;
};

struct mps_trace *mps_trace_open(const char *path, int *err)
{
	struct mps_trace *t;

	if (!path || !*path) {
		*err = -EINVAL;
		return NULL;
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		*err = -ENOMEM;
		return NULL;
	}
	t->pc = pcap_open_dead(DLT_RAW, 65535);
	if (t->pc)
		t->dump = pcap_dump_open(t->pc, path);
	if (!t->dump) {
		if (t->pc)
			pcap_close(t->pc);
		free(t);
		*err = -EIO;
		return NULL;
	}
	*err = 0;
	return t;
}

void mps_trace_close(struct mps_trace *t)
{
	if (!t)
		return;
	pcap_dump_close(t->dump);
	pcap_close(t->pc);
	free(t);
}

uint64_t mps_trace_count(const struct mps_trace *t)
{
	return t->count;
}

void mps_trace_packet(void *ctx, const uint8_t *pkt, size_t len, int out, int subflow, uint64_t now)
{
	struct mps_trace *t = ctx;
	struct pcap_pkthdr h;
	struct mps_seg s;
	enum mps_seg_err err;
	size_t keep;

	/* Direction and subflow are not in the pcap format; the addresses tell them apart. */
	(void)out;
	(void)subflow;
	if (mps_seg_parse(pkt, len, 0, &s, &err) == 0)
		keep = (size_t)(s.payload - pkt);
	else
		keep = len < TRACE_RAW_MAX ? len : TRACE_RAW_MAX;
	h.ts.tv_sec = (time_t)(now / 1000000);
	h.ts.tv_usec = (suseconds_t)(now % 1000000);
	h.caplen = (bpf_u_int32)keep;
	h.len = (bpf_u_int32)len;
	pcap_dump((u_char *)t->dump, &h, pkt);
	t->count++;
}
