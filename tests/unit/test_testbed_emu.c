/* The link emulator's per-direction model (deploy/testbed/tb_emu.c). */
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

static const struct fj_test tests[] = {
	{ "delay_and_order", test_delay_and_order },
	{ "random_loss", test_random_loss },
	{ "gilbert_elliott", test_gilbert_elliott },
	{ "rate_and_queue", test_rate_and_queue },
	{ "reorder_and_down", test_reorder_and_down },
	{ "add_addr", test_add_addr },
	{ NULL, NULL },
};

const struct fj_suite fj_suite_testbed_emu = { "testbed_emu", NULL, NULL, tests };
