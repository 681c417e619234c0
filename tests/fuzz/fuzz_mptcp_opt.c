/*
 * libFuzzer target for the TCP option walker and the MPTCP option codec.
 * Input: byte 0 selects the carrying segment (TCP flags, and bit 0x100 via
 * the low bit of byte 0 for "has payload"), the rest is a TCP option list.
 * Oracles besides the sanitizers: every option that parses rebuilds to the
 * length it was parsed from, and parse/build is idempotent.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mps_opt.h"

static void check_option(const uint8_t *p, size_t len, unsigned int seg)
{
	struct mps_opt o, o2;
	enum mps_opt_err err;
	uint8_t b1[MPS_MPTCP_OPT_MAX], b2[MPS_MPTCP_OPT_MAX];
	int n1, n2;

	if (mps_opt_parse(p, len, seg, &o, &err) != 0) {
		if (err == MPS_OPT_OK || err >= MPS_OPT_E_COUNT)
			abort();
		return;
	}
	if (err != MPS_OPT_OK)
		abort();
	n1 = mps_opt_build(&o, b1, sizeof(b1));
	if (n1 != (int)len)
		abort();
	/* Reserved bits are dropped on parse, so compare the rebuilt forms. */
	if (mps_opt_parse(b1, (size_t)n1, seg, &o2, &err) != 0)
		abort();
	n2 = mps_opt_build(&o2, b2, sizeof(b2));
	if (n2 != n1 || memcmp(b1, b2, (size_t)n1) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mps_tcpopts t;
	unsigned int seg;
	size_t len;
	int rc, i;

	if (size < 1)
		return 0;
	/* The low bit of the selector stands for "segment has payload"; TCP's FIN moves out. */
	seg = (data[0] & 0xfe) | ((data[0] & 1) ? MPS_SEG_DATA : 0);
	len = size - 1 > MPS_TCP_OPT_MAX ? MPS_TCP_OPT_MAX : size - 1;
	rc = mps_tcpopt_walk(data + 1, len, &t);
	if ((rc == 0) != (t.nerr == 0) || t.nmptcp > MPS_TCPOPTS_MPTCP_MAX)
		abort();
	for (i = 0; i < t.nmptcp; i++) {
		if ((size_t)t.mptcp[i].off + t.mptcp[i].len > len)
			abort();
		check_option(data + 1 + t.mptcp[i].off, t.mptcp[i].len, seg);
	}
	/* Also feed the raw bytes as one option, to reach lengths the walker refuses. */
	check_option(data + 1, size - 1 > MPS_MPTCP_OPT_MAX ? MPS_MPTCP_OPT_MAX : size - 1, seg);
	return 0;
}
