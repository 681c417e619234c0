/*
 * libFuzzer target for the host adapter's receive path (mps_host.h).
 * Input: byte 0 picks the configuration (bit 0: ephemeral ports, bit 1: an
 * IPv6 address too) and the checksum verdict (bits 2-3, enum
 * mps_host_csum); the rest is a packet as a packet socket hands it over.
 * Oracles besides the sanitizers: mps_host_match() answers 1, 0 or -EBADMSG
 * only, and on 1 an IP length within the packet and past a TCP header; the
 * BPF programs of both families (run as the kernel runs them) accept every
 * packet it takes and drop every one it calls someone else's, and never
 * fall off their end; the flags for the stack are the ones mps_host.h
 * promises for the checksum verdict.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/mps_host_bpf_run.h"
#include "mps_host.h"

static uint8_t pkt[65536 + 64];

static void config(struct mps_host_config *c, uint8_t sel)
{
	static const uint8_t a1[4] = { 10, 83, 1, 1 }, a2[4] = { 10, 83, 2, 1 };
	static const uint8_t a6[16] = { 0xfd, 0x83, 0, 1, [15] = 1 };

	memset(c, 0, sizeof(*c));
	c->addrs[0].family = 4;
	memcpy(c->addrs[0].addr, a1, 4);
	c->addrs[1].family = 4;
	memcpy(c->addrs[1].addr, a2, 4);
	c->naddrs = 2;
	if (sel & 2) {
		c->addrs[2].family = 6;
		memcpy(c->addrs[2].addr, a6, 16);
		c->naddrs = 3;
	}
	c->ports[0] = 5102;
	c->ports[1] = 80;
	c->nports = 2;
	c->ephemeral = sel & 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sock_filter p4[MPS_HOST_BPF_MAX], p6[MPS_HOST_BPF_MAX];
	struct mps_host_config c;
	enum mps_host_csum how;
	size_t len, iplen = 0;
	long b4, b6;
	unsigned int flags;
	int n4, n6, m;

	if (size < 1 || size - 1 > sizeof(pkt))
		return 0;
	config(&c, data[0]);
	how = (enum mps_host_csum)((data[0] >> 2) % 3);
	len = size - 1;
	memcpy(pkt, data + 1, len);
	n4 = mps_host_bpf(&c, 4, p4, MPS_HOST_BPF_MAX);
	n6 = mps_host_bpf(&c, 6, p6, MPS_HOST_BPF_MAX);
	if (n4 <= 0 || n6 <= 0)
		abort();
	m = mps_host_match(&c, pkt, len, &iplen);
	if (m != 1 && m != 0 && m != -EBADMSG)
		abort();
	b4 = mps_host_bpf_run(p4, n4, pkt, len);
	b6 = mps_host_bpf_run(p6, n6, pkt, len);
	if (b4 < 0 || b6 < 0)
		abort();
	if (m == 0 && (b4 || b6))
		abort(); /* the kernel would copy what the code then throws away */
	if (m != 1)
		return 0;
	if (iplen > len || iplen < 40 || !((pkt[0] >> 4 == 4 && b4) || (pkt[0] >> 4 == 6 && b6)))
		abort(); /* ours, but the kernel would never hand it over */
	flags = mps_host_csum_flags(how);
	if (how == MPS_HOST_CSUM_NONE ? flags != 0 : flags != (MPS_IN_CSUM_OK | MPS_IN_CSUM_STALE))
		abort();
	return 0;
}
