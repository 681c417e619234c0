/*
 * libFuzzer target: segment input into a stack that holds an established
 * MPTCP connection. Each run builds a client and a server stack, completes
 * the MP_CAPABLE handshake between them in memory, then feeds the server
 * segments built from the input on that connection's 4-tuple, with sequence
 * and acknowledgement numbers near the live ones and a valid TCP checksum so
 * that they reach the protocol code. Input layout, repeated per segment:
 *   flags(1) seq_delta(2, signed) ack_delta(2, signed) window(2) optlen(1)
 *   options(optlen, at most 40) payload_len(2) payload
 * The sanitizers and the stack's own bounds are the oracle; afterwards both
 * stacks must still run their timers and the output queue must drain.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mps.h"
#include "mps_seg.h"
#include "prot/wire.h"

static const struct mps_addr caddr = { .family = 4, .addr = { 10, 0, 0, 1 }, .port = 40000 };
static const struct mps_addr saddr = { .family = 4, .addr = { 10, 0, 0, 2 }, .port = 5002 };

struct pair {
	struct mps_stack *c, *s;
	uint32_t cseq, sseq; /* next sequence numbers of client and server */
	uint64_t now;
};

/* Move every pending packet both ways; remember the client's last numbers. */
static void shuttle(struct pair *p)
{
	uint8_t buf[2048];
	struct mps_seg seg;
	enum mps_seg_err err;
	int n, rounds;

	for (rounds = 0; rounds < 64; rounds++) {
		int moved = 0;

		while ((n = mps_output(p->c, p->now, buf, sizeof(buf))) > 0) {
			if (mps_seg_parse(buf, (size_t)n, 0, &seg, &err) == 0) {
				p->cseq = seg.seq + seg.payload_len;
				p->sseq = seg.ack;
			}
			mps_input(p->s, buf, (size_t)n, p->now);
			moved = 1;
		}
		while ((n = mps_output(p->s, p->now, buf, sizeof(buf))) > 0) {
			mps_input(p->c, buf, (size_t)n, p->now);
			moved = 1;
		}
		if (!moved)
			break;
		p->now += 1000;
	}
}

static uint32_t sum16(const uint8_t *b, size_t len, uint32_t sum)
{
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(b[i] << 8 | b[i + 1]);
	if (len & 1)
		sum += (uint32_t)b[len - 1] << 8;
	return sum;
}

/* One IPv4 segment client -> server from the input; returns bytes consumed or 0. */
static size_t one_segment(struct pair *p, const uint8_t *d, size_t size)
{
	uint8_t pkt[20 + 60 + 1500];
	size_t optlen, plen, thl, tot, used;
	uint32_t sum;

	if (size < 8)
		return 0;
	optlen = d[7] > 40 ? 40 : d[7];
	optlen = (optlen + 3) & ~(size_t)3;
	if (size < 8 + optlen + 2)
		return 0;
	plen = mps_get_be16(d + 8 + optlen) % 1400;
	used = 8 + optlen + 2;
	if (plen > size - used)
		plen = size - used;
	thl = 20 + optlen;
	tot = 20 + thl + plen;
	memset(pkt, 0, 40);
	pkt[0] = 0x45;
	mps_put_be16(pkt + 2, (uint16_t)tot);
	pkt[8] = 64;
	pkt[9] = 6;
	memcpy(pkt + 12, caddr.addr, 4);
	memcpy(pkt + 16, saddr.addr, 4);
	mps_put_be16(pkt + 20, caddr.port);
	mps_put_be16(pkt + 22, saddr.port);
	mps_put_be32(pkt + 24, p->cseq + (uint32_t)(int16_t)mps_get_be16(d + 1));
	mps_put_be32(pkt + 28, p->sseq + (uint32_t)(int16_t)mps_get_be16(d + 3));
	pkt[32] = (uint8_t)((thl / 4) << 4);
	pkt[33] = d[0];
	memcpy(pkt + 34, d + 5, 2);
	memset(pkt + 40, 0, optlen);
	memcpy(pkt + 40, d + 8, d[7] > 40 ? 40 : d[7]);
	memcpy(pkt + 40 + optlen, d + used, plen);
	sum = sum16(pkt + 12, 8, 0) + 6 + (uint32_t)(thl + plen);
	sum = sum16(pkt + 20, thl + plen, sum);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	mps_put_be16(pkt + 36, (uint16_t)~sum);
	mps_input(p->s, pkt, tot, p->now);
	return used + plen;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mps_config cfg = { .seed = 1, .sndbuf = 65536, .rcvbuf = 65536 };
	struct pair p = { 0 };
	struct mps_conn *cc = NULL, *sc;
	uint8_t buf[4096];
	size_t off = 0, n;
	int err, segs = 0;

	p.c = mps_stack_create(&cfg, &err);
	cfg.seed = 2;
	p.s = mps_stack_create(&cfg, &err);
	if (!p.c || !p.s)
		abort();
	if (mps_listen(p.s, &saddr) || mps_connect(p.c, &caddr, &saddr, &cc))
		abort();
	shuttle(&p);
	sc = mps_accept(p.s);
	if (!sc)
		abort();
	/* Some data in flight both ways, so that ACK and DSS paths have work. */
	mps_send(cc, "hello", 5);
	shuttle(&p);
	while (off < size && segs++ < 16) {
		n = one_segment(&p, data + off, size - off);
		if (n == 0)
			break;
		off += n;
		while (mps_output(p.s, p.now, buf, sizeof(buf)) > 0)
			;
		mps_recv(sc, buf, sizeof(buf));
	}
	/* Time passes: every timer must still behave. */
	p.now += 120000000;
	while (mps_output(p.s, p.now, buf, sizeof(buf)) > 0)
		;
	mps_stack_destroy(p.c);
	mps_stack_destroy(p.s);
	return 0;
}
