/*
 * Classic BPF, the subset mps_host_bpf() writes, run as the kernel runs it
 * on a packet socket (a load past the packet's end drops the packet), so
 * that the unit suite (test_mps_host.c) and the fuzz target
 * (fuzz_mps_host.c) can hold the program to mps_host_match()'s verdicts.
 */
#ifndef MPS_HOST_BPF_RUN_H
#define MPS_HOST_BPF_RUN_H

#include <linux/filter.h>
#include <stddef.h>
#include <stdint.h>

/* The program's return value, or -1 for an instruction outside the subset or no return. */
static inline long mps_host_bpf_run(const struct sock_filter *prog, int n, const uint8_t *pkt,
				    size_t len)
{
	uint32_t a = 0, x = 0, k;
	int pc;

	for (pc = 0; pc >= 0 && pc < n; pc++) {
		const struct sock_filter *f = &prog[pc];

		k = f->k;
		switch (f->code) {
		case BPF_LD | BPF_B | BPF_ABS:
			if (k >= len)
				return 0;
			a = pkt[k];
			break;
		case BPF_LD | BPF_H | BPF_ABS:
		case BPF_LD | BPF_H | BPF_IND:
			if (f->code & BPF_IND)
				k += x;
			if ((size_t)k + 2 > len)
				return 0;
			a = (uint32_t)(pkt[k] << 8 | pkt[k + 1]);
			break;
		case BPF_LD | BPF_W | BPF_ABS:
			if ((size_t)k + 4 > len)
				return 0;
			a = (uint32_t)pkt[k] << 24 | (uint32_t)pkt[k + 1] << 16 |
			    (uint32_t)pkt[k + 2] << 8 | pkt[k + 3];
			break;
		case BPF_LDX | BPF_B | BPF_MSH:
			if (k >= len)
				return 0;
			x = (uint32_t)(pkt[k] & 0xf) * 4;
			break;
		case BPF_ALU | BPF_AND | BPF_K:
			a &= k;
			break;
		case BPF_JMP | BPF_JEQ | BPF_K:
			pc += a == k ? f->jt : f->jf;
			break;
		case BPF_JMP | BPF_JGE | BPF_K:
			pc += a >= k ? f->jt : f->jf;
			break;
		case BPF_JMP | BPF_JSET | BPF_K:
			pc += (a & k) ? f->jt : f->jf;
			break;
		case BPF_RET | BPF_K:
			return k;
		default:
			return -1;
		}
	}
	return -1; /* fell off the end: the kernel refuses such a program */
}

#endif
