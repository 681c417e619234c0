/*
 * Speed of the Internet checksum sum the stack uses for every TCP segment it
 * builds (mps_csum_add() in stack/mps_seg.c) on 64 KiB, the size of a
 * super-segment with the TUN offloads, beside two baselines computed here:
 * one 32-bit word at a time into a single 64-bit sum (mps_csum_add() before
 * it kept four sums), and RFC 1071's 16-bit loop. Every variant must give
 * the same folded sum, or the program fails. Prints one line per variant
 * with GB/s (median of rounds). Run by tests/bench/mps_csum.sh.
 */
#include <endian.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mps_seg.h"

#define BUF_LEN	  65536
#define REPS	  4096 /* sums per round: 256 MiB */
#define ROUNDS	  7
#define N_VARIANT 3

static uint16_t fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

/* Baseline: one 32-bit word a round into one 64-bit sum. */
static uint32_t sum_one_chain(uint32_t sum, const uint8_t *p, size_t len)
{
	uint64_t acc = 0;
	uint32_t w;
	uint16_t h = 0;

	while (len >= 4) {
		memcpy(&w, p, 4);
		acc += w;
		p += 4;
		len -= 4;
	}
	if (len >= 2) {
		memcpy(&h, p, 2);
		acc += h;
		p += 2;
		len -= 2;
	}
	if (len) {
		h = 0;
		memcpy(&h, p, 1);
		acc += h;
	}
	while (acc >> 16)
		acc = (acc & 0xffff) + (acc >> 16);
	return sum + be16toh((uint16_t)acc);
}

/* Baseline: RFC 1071, big-endian 16-bit words. */
static uint32_t sum_rfc1071(uint32_t sum, const uint8_t *p, size_t len)
{
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	return fold(sum);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(void)
{
	static const char *const names[N_VARIANT] = { "mps_csum_add (four sums)",
						      "baseline: one 32-bit sum",
						      "baseline: RFC 1071 16-bit loop" };
	static uint8_t buf[BUF_LEN + 8];
	uint32_t (*const fn[N_VARIANT])(uint32_t, const uint8_t *,
					size_t) = { mps_csum_add, sum_one_chain, sum_rfc1071 };
	double gbps[ROUNDS], t;
	uint16_t want = 0, got;
	volatile uint32_t sink = 0;
	uint64_t z = 1;
	int v, r, i;

	for (i = 0; i < BUF_LEN + 8; i++) {
		z = z * 6364136223846793005ULL + 1442695040888963407ULL;
		buf[i] = (uint8_t)(z >> 56);
	}
	for (v = 0; v < N_VARIANT; v++) {
		/* Odd start and length: the unaligned path of a real packet. */
		got = fold(fn[v](0, buf + 1, BUF_LEN - 1));
		if (v == 0)
			want = got;
		else if (got != want) {
			fprintf(stderr, "bench_csum: %s gives %04x, not %04x\n", names[v], got,
				want);
			return 1;
		}
		for (r = 0; r < ROUNDS; r++) {
			t = now_s();
			for (i = 0; i < REPS; i++)
				sink += fn[v]((uint32_t)i, buf + (i & 7), BUF_LEN);
			gbps[r] = (double)REPS * BUF_LEN / (now_s() - t) / 1e9;
		}
		qsort(gbps, ROUNDS, sizeof(gbps[0]), cmp_double);
		printf("bench_csum: %-32s %6.2f GB/s (median of %d rounds of %d x 64 KiB)\n",
		       names[v], gbps[ROUNDS / 2], ROUNDS, REPS);
	}
	return sink == 0xffffffffu; /* keeps the sums from being optimised away */
}
