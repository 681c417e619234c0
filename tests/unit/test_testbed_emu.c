/* The link emulator's per-direction model (deploy/testbed/tb_emu.c). */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "fj_test.h"
#include "../../deploy/testbed/tb_emu.h"

#define MS 1000000ull

static struct tb_link_params params(void)
{
	struct tb_link_params p;

	tb_link_params_default(&p);
	return p;
}

/* Binomial 99.9% bounds: n p +- 3.3 sqrt(n p (1 - p)). */
static void assert_binomial(uint64_t k, uint64_t n, double p)
{
	double mean = (double)n * p, sd = sqrt((double)n * p * (1 - p));

	CU_ASSERT((double)k >= mean - 3.3 * sd && (double)k <= mean + 3.3 * sd);
}

static void test_delay_and_order(void)
{
	struct tb_link_params p = params();
	struct tb_emu_dir d;
	uint64_t rel, last = 0;

	p.delay_us = 20000;
	tb_emu_init(&d, &p, 1);
	CU_ASSERT_EQUAL(tb_emu_packet(&d, 5 * MS, 1500, &rel), TB_EMU_RELEASE);
	CU_ASSERT_EQUAL(rel, 25 * MS);
	p.jitter_us = 5000;
	tb_emu_set(&d, &p);
	for (unsigned int i = 0; i < 10000; i++) {
		uint64_t now = 100 * MS + i * 10000;

		CU_ASSERT_EQUAL(tb_emu_packet(&d, now, 100, &rel), TB_EMU_RELEASE);
		/* Within delay + jitter, at least delay - jitter unless held for order. */
		CU_ASSERT(rel <= now + 25 * MS);
		CU_ASSERT(rel >= now + 15 * MS || rel == last);
		CU_ASSERT(rel >= last);
		last = rel;
	}
}

static void test_random_loss(void)
{
	struct tb_link_params p = params();
	struct tb_emu_dir d;
	uint64_t rel, lost = 0, n = 200000;

	p.loss = 0.02;
	tb_emu_init(&d, &p, 42);
	for (uint64_t i = 0; i < n; i++)
		lost += tb_emu_packet(&d, i * 1000, 100, &rel) == TB_EMU_DROP_LOSS;
	assert_binomial(lost, n, 0.02);
	CU_ASSERT_EQUAL(d.c.drop_loss, lost);
	CU_ASSERT_EQUAL(d.c.packets, n);
}

static void test_gilbert_elliott(void)
{
	struct tb_link_params p = params();
	struct tb_emu_dir d;
	uint64_t rel, lost = 0, bursts = 0, n = 400000;
	bool prev = false;

	p.loss_model = TB_LOSS_GE;
	p.ge_p = 0.01;
	p.ge_r = 0.25;
	tb_emu_init(&d, &p, 7);
	for (uint64_t i = 0; i < n; i++) {
		bool l = tb_emu_packet(&d, i * 1000, 100, &rel) == TB_EMU_DROP_LOSS;

		lost += l;
		bursts += l && !prev;
		prev = l;
	}
	/* Stationary bad-state share p / (p + r) = 3.85%; mean burst 1 / r = 4. */
	CU_ASSERT(fabs((double)lost / n - 0.01 / 0.26) < 0.006);
	CU_ASSERT(fabs((double)lost / bursts - 4.0) < 0.4);
}

static void test_rate_and_queue(void)
{
	struct tb_link_params p = params();
	struct tb_emu_dir d;
	uint64_t rel = 0, prev = 0;
	unsigned int passed = 0, dropped = 0;

	p.rate_bps = 10000000; /* 1250-byte packet = 1 ms */
	p.buffer_us = 10000;
	p.delay_us = 3000;
	tb_emu_init(&d, &p, 3);
	for (unsigned int i = 0; i < 20; i++) {
		enum tb_emu_verdict v = tb_emu_packet(&d, 0, 1250, &rel);

		if (v == TB_EMU_RELEASE) {
			CU_ASSERT_EQUAL(rel, (uint64_t)(i + 1) * MS + 3 * MS);
			CU_ASSERT(rel > prev);
			prev = rel;
			passed++;
		} else {
			CU_ASSERT_EQUAL(v, TB_EMU_DROP_QUEUE);
			dropped++;
		}
	}
	/* Backlog 0..10 ms is accepted: 11 packets, the rest find the queue full. */
	CU_ASSERT_EQUAL(passed, 11);
	CU_ASSERT_EQUAL(dropped, 9);
	CU_ASSERT_EQUAL(d.c.drop_queue, 9);
	/* Once drained, the link is free again. */
	CU_ASSERT_EQUAL(tb_emu_packet(&d, 100 * MS, 1250, &rel), TB_EMU_RELEASE);
	CU_ASSERT_EQUAL(rel, 104 * MS);
}

/*
 * Whole GSO packets only where they change nothing a transfer can see. At
 * 20 Mbit/s a 64 KiB packet taken whole leaves its first segment 26 ms late
 * (bundled bulk with the TUN's GSO fell from 35 to 24 Mbit/s on testbed_exp).
 */
static void test_whole_gso(void)
{
	struct tb_link_params p = params();
	struct tb_emu_dir d;
	uint64_t rel = 0;

	p.rate_bps = 0;
	CU_ASSERT(tb_emu_whole_gso(&p)); /* unlimited */
	p.rate_bps = 600000000;
	CU_ASSERT(tb_emu_whole_gso(&p)); /* 0.87 ms per 64 KiB */
	p.rate_bps = 524288000;
	CU_ASSERT(tb_emu_whole_gso(&p)); /* exactly 1 ms */
	p.rate_bps = 524000000;		 /* 1.0005 ms */
	CU_ASSERT_FALSE(tb_emu_whole_gso(&p));
	p.rate_bps = 20000000;
	CU_ASSERT_FALSE(tb_emu_whole_gso(&p));
	/* The delay a whole packet adds there: its serialization, 26.2 ms. */
	tb_emu_init(&d, &p, 5);
	CU_ASSERT_EQUAL(tb_emu_packet(&d, 0, TB_EMU_GSO_BYTES, &rel), TB_EMU_RELEASE);
	CU_ASSERT_EQUAL(rel, (uint64_t)TB_EMU_GSO_BYTES * 8 * 1000000000ull / 20000000);
	CU_ASSERT(rel > 26 * MS);
	/* Loss or reordering, however fast the link: segments one by one. */
	p.rate_bps = 0;
	p.loss = 0.000001;
	CU_ASSERT_FALSE(tb_emu_whole_gso(&p));
	p.loss = 0;
	p.reorder = 0.01;
	CU_ASSERT_FALSE(tb_emu_whole_gso(&p));
	p.reorder = 0;
	p.loss_model = TB_LOSS_GE;
	CU_ASSERT_FALSE(tb_emu_whole_gso(&p));
}

static void test_reorder_and_down(void)
{
	struct tb_link_params p = params();
	struct tb_emu_dir d;
	uint64_t rel, early = 0, n = 100000;

	p.delay_us = 10000;
	p.reorder = 0.05;
	tb_emu_init(&d, &p, 9);
	for (uint64_t i = 0; i < n; i++) {
		enum tb_emu_verdict v = tb_emu_packet(&d, i * 1000, 100, &rel);

		if (v == TB_EMU_RELEASE_NOW) {
			CU_ASSERT_EQUAL(rel, i * 1000);
			early++;
		}
	}
	assert_binomial(early, n, 0.05);
	p.down = true;
	tb_emu_set(&d, &p);
	CU_ASSERT_EQUAL(tb_emu_packet(&d, n * 1000, 100, &rel), TB_EMU_DROP_DOWN);
	CU_ASSERT_EQUAL(d.c.drop_down, 1);
}

static void test_add_addr(void)
{
	uint8_t pkt[80];

	memset(pkt, 0, sizeof(pkt));
	pkt[0] = 0x45; /* IPv4, 20-byte header */
	pkt[9] = 6;
	pkt[20 + 12] = 8 << 4; /* 32-byte TCP header: 12 bytes of options */
	pkt[40] = 1;	       /* NOP */
	pkt[41] = 30;	       /* MPTCP, length 8, subtype 3 = ADD_ADDR */
	pkt[42] = 8;
	pkt[43] = 0x30;
	CU_ASSERT_TRUE(tb_has_add_addr(pkt, 52));
	CU_ASSERT_FALSE(tb_has_add_addr(pkt, 43)); /* cut before the subtype */
	pkt[43] = 0x20;				   /* DSS */
	CU_ASSERT_FALSE(tb_has_add_addr(pkt, 52));
	pkt[43] = 0x30;
	pkt[9] = 17; /* UDP */
	CU_ASSERT_FALSE(tb_has_add_addr(pkt, 52));
	pkt[9] = 6;
	pkt[41] = 0; /* end of options before it */
	CU_ASSERT_FALSE(tb_has_add_addr(pkt, 52));
	/* IPv6 with the option at the same TCP offset. */
	memset(pkt, 0, sizeof(pkt));
	pkt[0] = 0x60;
	pkt[6] = 6;
	pkt[40 + 12] = 6 << 4;
	pkt[60] = 30;
	pkt[61] = 4;
	pkt[62] = 0x31;
	CU_ASSERT_TRUE(tb_has_add_addr(pkt, 64));
	pkt[61] = 1; /* malformed length */
	CU_ASSERT_FALSE(tb_has_add_addr(pkt, 64));
}

/* Independent check: one's complement sum over pseudo-header and segment is 0xffff. */
static int tcp_csum_ok(const uint8_t *pkt, unsigned int len)
{
	unsigned int off = (pkt[0] >> 4) == 4 ? 20 : 40, tlen = len - off;
	unsigned long sum = 6 + tlen;

	if (off == 20)
		for (unsigned int i = 12; i < 20; i += 2)
			sum += (unsigned long)(pkt[i] << 8 | pkt[i + 1]);
	else
		for (unsigned int i = 8; i < 40; i += 2)
			sum += (unsigned long)(pkt[i] << 8 | pkt[i + 1]);
	for (unsigned int i = 0; i < tlen; i += 2)
		sum += (unsigned long)(pkt[off + i] << 8 | (i + 1 < tlen ? pkt[off + i + 1] : 0));
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return sum == 0xffff;
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void test_rewrite_seq(void)
{
	uint8_t pkt[73];
	const unsigned int len = sizeof(pkt); /* 20 IP + 32 TCP + 21 payload (odd) */

	memset(pkt, 0, sizeof(pkt));
	pkt[0] = 0x45;
	pkt[3] = (uint8_t)len;
	pkt[8] = 64;
	pkt[9] = 6;
	pkt[12] = 10, pkt[15] = 2, pkt[16] = 198, pkt[17] = 18, pkt[19] = 10;
	pkt[24] = 0xff, pkt[25] = 0xff, pkt[26] = 0xff, pkt[27] = 0xf0; /* seq near wrap */
	pkt[28] = 0, pkt[31] = 100;					/* ack 100 */
	pkt[32] = 8 << 4;
	pkt[33] = 0x18;					     /* PSH, ACK */
	pkt[40] = 1, pkt[41] = 1, pkt[42] = 5, pkt[43] = 10; /* NOP NOP SACK one block */
	pkt[47] = 200, pkt[51] = 250;
	for (unsigned int i = 52; i < len; i++)
		pkt[i] = (uint8_t)(i * 7);
	CU_ASSERT_EQUAL(tb_rewrite_seq(pkt, len, 0x20, true), 1);
	CU_ASSERT_EQUAL(rd32(pkt + 24), 0x10u); /* wrapped */
	CU_ASSERT_EQUAL(rd32(pkt + 28), 100u);	/* outbound leaves ACK */
	CU_ASSERT(tcp_csum_ok(pkt, len));
	CU_ASSERT_EQUAL(tb_rewrite_seq(pkt, len, 0x20, false), 1);
	CU_ASSERT_EQUAL(rd32(pkt + 28), 100u - 0x20);
	CU_ASSERT_EQUAL(rd32(pkt + 44), 200u - 0x20);
	CU_ASSERT_EQUAL(rd32(pkt + 48), 250u - 0x20);
	CU_ASSERT(tcp_csum_ok(pkt, len));
	/* Wrong length, UDP, and a SACK option running past the header. */
	CU_ASSERT_EQUAL(tb_rewrite_seq(pkt, len - 1, 1, true), -EINVAL);
	pkt[9] = 17;
	CU_ASSERT_EQUAL(tb_rewrite_seq(pkt, len, 1, true), 0);
	pkt[9] = 6;
	pkt[43] = 30;
	CU_ASSERT_EQUAL(tb_rewrite_seq(pkt, len, 1, false), -EINVAL);

	/* IPv6: the pseudo-header carries both 128-bit addresses. */
	uint8_t p6[60];

	memset(p6, 0, sizeof(p6));
	p6[0] = 0x60;
	p6[5] = 20;
	p6[6] = 6;
	p6[8] = 0xfd, p6[23] = 2, p6[24] = 0xfd, p6[39] = 0x10;
	p6[40 + 7] = 1;
	p6[40 + 12] = 5 << 4;
	p6[40 + 13] = 0x02; /* SYN */
	CU_ASSERT_EQUAL(tb_rewrite_seq(p6, sizeof(p6), 0x1000, true), 1);
	CU_ASSERT_EQUAL(rd32(p6 + 44), 0x1001u);
	CU_ASSERT(tcp_csum_ok(p6, sizeof(p6)));
	/* Inbound without ACK (a bare SYN) is left alone. */
	CU_ASSERT_EQUAL(tb_rewrite_seq(p6, sizeof(p6), 0x1000, false), 0);
}

static const struct fj_test tests[] = {
	{ "rewrite_seq", test_rewrite_seq },
	{ "delay_and_order", test_delay_and_order },
	{ "random_loss", test_random_loss },
	{ "gilbert_elliott", test_gilbert_elliott },
	{ "rate_and_queue", test_rate_and_queue },
	{ "reorder_and_down", test_reorder_and_down },
	{ "add_addr", test_add_addr },
	{ "whole_gso", test_whole_gso },
	{ NULL, NULL },
};

const struct fj_suite fj_suite_testbed_emu = { "testbed_emu", NULL, NULL, tests };
