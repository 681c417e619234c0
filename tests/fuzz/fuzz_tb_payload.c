/*
 * libFuzzer target for the testbed's payload-rewriting middlebox
 * (tb_rewrite_payload in deploy/testbed/tb_emu.c), which reads whatever
 * packets an uplink carries. The input is a rewrite offset (2 bytes) and a
 * sequence of packets, each as a 2-byte length and its bytes, fed in order
 * through one flow table, each in a buffer of exactly its length. For every
 * packet: the answer is 1, 0 or -EINVAL; a packet left alone is unchanged;
 * a rewritten one differs only in the TCP checksum and in one byte, which
 * grew by TB_PRW_ADD; and the flow table never holds more than its size.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../deploy/testbed/tb_emu.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Where the TCP checksum of an IPv4 or IPv6 packet sits (the rewriter accepted it). */
static size_t csum_at(const uint8_t *pkt)
{
	return (pkt[0] >> 4) == 4 ? (size_t)(pkt[0] & 0xf) * 4 + 16 : 40 + 16;
}

static void check_one(struct tb_prw *t, const uint8_t *in, size_t len)
{
	uint8_t *pkt = malloc(len ? len : 1);
	size_t diffs = 0, at = 0, cs;
	int r;

	if (!pkt)
		return;
	memcpy(pkt, in, len);
	r = tb_rewrite_payload(t, pkt, (uint32_t)len);
	if (r != 1 && r != 0 && r != -EINVAL)
		abort();
	if (r != 1) {
		if (memcmp(pkt, in, len))
			abort();
		free(pkt);
		return;
	}
	cs = csum_at(in);
	for (size_t i = 0; i < len; i++)
		if (pkt[i] != in[i] && i != cs && i != cs + 1) {
			diffs++;
			at = i;
		}
	if (diffs != 1 || (uint8_t)(in[at] + TB_PRW_ADD) != pkt[at])
		abort();
	free(pkt);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct tb_prw t;
	size_t off = 2;

	if (size < 2)
		return 0;
	tb_prw_init(&t, (uint32_t)data[0] << 8 | data[1]);
	while (off + 2 <= size) {
		size_t len = (size_t)data[off] << 8 | data[off + 1];

		off += 2;
		if (len > size - off)
			len = size - off;
		check_one(&t, data + off, len);
		off += len;
		if (t.flows_seen - t.evicted > TB_PRW_FLOWS)
			abort();
	}
	return 0;
}
