/*
 * The TUN adapter's vnet header (mps_tun.h): its byte layout, the header
 * written for a super-segment (GSO with a partial checksum that, completed
 * as the kernel completes it, gives the packet's own checksum), and the
 * checks and checksum completion for what the kernel hands us, and the
 * stack's word-wide checksum sum (mps_seg.h). The packets
 * are built here with a plain 16-bit big-endian checksum, independently of
 * the adapter's own sum.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fj_test.h"
#include "mps.h"
#include "mps_seg.h"
#include "mps_tun.h"

/* Reference ones' complement sum, the obvious way. */
static uint32_t ref_sum(const uint8_t *b, size_t len, uint32_t sum)
{
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(b[i] << 8 | b[i + 1]);
	if (len & 1)
		sum += (uint32_t)b[len - 1] << 8;
	return sum;
}

static uint16_t ref_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

/* The TCP checksum of pkt verifies (ihl: IP header length, alen: address length). */
static bool tcp_csum_ok(const uint8_t *pkt, size_t len, size_t ihl, size_t alen)
{
	size_t saddr = alen == 4 ? 12 : 8;
	uint32_t sum = ref_sum(pkt + saddr, 2 * alen, 0) + 6 + (uint32_t)(len - ihl);

	return ref_fold(ref_sum(pkt + ihl, len - ihl, sum)) == 0xffff;
}

/*
 * An IPv4 (alen 4) or IPv6 (alen 16) packet with a TCP header of 20 + optlen
 * bytes (optlen a multiple of 4, options NOPs) and len bytes of payload, its
 * checksum complete. Returns the packet length.
 */
static size_t build_pkt(uint8_t *pkt, size_t alen, size_t optlen, size_t len, uint8_t flags)
{
	size_t ihl = alen == 4 ? 20 : 40, thl = 20 + optlen, tot = ihl + thl + len, i;
	size_t saddr = alen == 4 ? 12 : 8;
	uint8_t *t = pkt + ihl;
	uint32_t sum;

	memset(pkt, 0, ihl + thl);
	if (alen == 4) {
		pkt[0] = 0x45;
		pkt[2] = (uint8_t)(tot >> 8);
		pkt[3] = (uint8_t)tot;
		pkt[6] = 0x40;
		pkt[8] = 64;
		pkt[9] = 6;
	} else {
		pkt[0] = 0x60;
		pkt[4] = (uint8_t)((thl + len) >> 8);
		pkt[5] = (uint8_t)(thl + len);
		pkt[6] = 6;
		pkt[7] = 64;
	}
	for (i = 0; i < 2 * alen; i++)
		pkt[saddr + i] = (uint8_t)(0x10 + i * 7);
	if (alen == 4) {
		sum = (uint16_t)~ref_fold(ref_sum(pkt, 20, 0));
		pkt[10] = (uint8_t)(sum >> 8);
		pkt[11] = (uint8_t)sum;
	}
	t[0] = 0x9c;
	t[1] = 0x40;
	t[2] = 0x13;
	t[3] = 0x8a;
	t[4] = 0x01;
	t[7] = 0x02;
	t[12] = (uint8_t)((thl / 4) << 4);
	t[13] = flags;
	t[14] = 0xff;
	memset(t + 20, 1, optlen);
	for (i = 0; i < len; i++)
		t[thl + i] = (uint8_t)(i * 31 + (i >> 8));
	sum = ref_sum(pkt + saddr, 2 * alen, 0) + 6 + (uint32_t)(thl + len);
	sum = ref_sum(t, thl + len, sum);
	t[16] = (uint8_t)(~ref_fold(sum) >> 8);
	t[17] = (uint8_t)~ref_fold(sum);
	return tot;
}

static void test_vnet_layout(void)
{
	struct mps_vnet v = { .flags = MPS_VNET_F_NEEDS_CSUM,
			      .gso_type = MPS_VNET_GSO_TCPV6 | MPS_VNET_GSO_ECN,
			      .hdr_len = 0x0102,
			      .gso_size = 0x0304,
			      .csum_start = 0x0506,
			      .csum_offset = 0x0708 },
			w;
	static const uint8_t want[MPS_VNET_HLEN] = { 0x01, 0x84, 0x02, 0x01, 0x04,
						     0x03, 0x06, 0x05, 0x08, 0x07 };
	uint8_t b[MPS_VNET_HLEN];

	/* struct virtio_net_hdr, 16-bit fields little-endian (TUNSETVNETLE). */
	mps_vnet_encode(&v, b);
	CU_ASSERT_EQUAL(memcmp(b, want, sizeof(want)), 0);
	mps_vnet_decode(b, &w);
	CU_ASSERT_EQUAL(memcmp(&v, &w, sizeof(v)), 0);
}

/* A super-segment: header for GSO, and the partial checksum completes to the real one. */
static void tx_run(size_t alen, size_t optlen, size_t len, uint32_t seg)
{
	static uint8_t pkt[65536], copy[65536];
	size_t ihl = alen == 4 ? 20 : 40, n = build_pkt(pkt, alen, optlen, len, 0x18);
	struct mps_vnet v;
	uint16_t partial;

	CU_ASSERT_TRUE_FATAL(tcp_csum_ok(pkt, n, ihl, alen));
	CU_ASSERT_EQUAL_FATAL(mps_vnet_for_tx(pkt, n, seg, &v, &partial), 0);
	CU_ASSERT_EQUAL(v.flags, MPS_VNET_F_NEEDS_CSUM);
	CU_ASSERT_EQUAL(v.gso_type, alen == 4 ? MPS_VNET_GSO_TCPV4 : MPS_VNET_GSO_TCPV6);
	CU_ASSERT_EQUAL(v.hdr_len, ihl + 20 + optlen);
	CU_ASSERT_EQUAL(v.gso_size, seg);
	CU_ASSERT_EQUAL(v.csum_start, ihl);
	CU_ASSERT_EQUAL(v.csum_offset, 16);
	/* As the kernel does with CHECKSUM_PARTIAL: sum from csum_start with the field's seed. */
	memcpy(copy, pkt, n);
	memcpy(copy + ihl + 16, &partial, 2);
	CU_ASSERT_FALSE(tcp_csum_ok(copy, n, ihl, alen));
	CU_ASSERT_EQUAL(mps_vnet_rx_fix(&v, copy, n), 0);
	CU_ASSERT_EQUAL(memcmp(copy, pkt, n), 0);
}

static void test_tx_gso_v4(void)
{
	tx_run(4, 20, 60000, 1388);
	tx_run(4, 0, 3001, 1000); /* odd length: the last byte pads a word */
	tx_run(4, 40, 65535 - 20 - 60, 1400);
}

static void test_tx_gso_v6(void)
{
	tx_run(16, 20, 40000, 1368);
	tx_run(16, 12, 2049, 1024);
}

static void test_tx_plain(void)
{
	static uint8_t pkt[4096];
	size_t n = build_pkt(pkt, 4, 20, 1400, 0x18);
	struct mps_vnet v;
	uint16_t partial = 0x5555;

	/* No segmentation asked, or a payload that fits one segment: an all-zero header. */
	CU_ASSERT_EQUAL(mps_vnet_for_tx(pkt, n, 0, &v, &partial), 0);
	CU_ASSERT_EQUAL(v.flags | v.gso_type | v.hdr_len | v.gso_size | v.csum_start, 0);
	CU_ASSERT_EQUAL(mps_vnet_for_tx(pkt, n, 1400, &v, &partial), 0);
	CU_ASSERT_EQUAL(v.gso_type, MPS_VNET_GSO_NONE);
	CU_ASSERT_EQUAL(partial, 0x5555);
	CU_ASSERT_EQUAL(mps_vnet_for_tx(pkt, n, 70000, &v, &partial), -EINVAL);
	/* Not an IP packet with TCP. */
	pkt[9] = 17;
	CU_ASSERT_EQUAL(mps_vnet_for_tx(pkt, n, 1000, &v, &partial), -EBADMSG);
	CU_ASSERT_EQUAL(mps_vnet_for_tx(pkt, 10, 1000, &v, &partial), -EBADMSG);
}

/* What the kernel hands us: partial checksums completed, bad headers refused. */
static void test_rx_fix(void)
{
	static uint8_t pkt[70000], good[70000];
	size_t n = build_pkt(good, 4, 12, 30000, 0x10);
	struct mps_vnet v = { 0 };

	/* Plain packet, no flags: left alone. */
	memcpy(pkt, good, n);
	CU_ASSERT_EQUAL(mps_vnet_rx_fix(&v, pkt, n), 0);
	CU_ASSERT_EQUAL(memcmp(pkt, good, n), 0);
	/* Merged, marked valid, the field left from the first segment: recomputed. */
	v = (struct mps_vnet){ .flags = MPS_VNET_F_DATA_VALID,
			       .gso_type = MPS_VNET_GSO_TCPV4,
			       .hdr_len = 52,
			       .gso_size = 1448 };
	pkt[20 + 16] ^= 0x5a;
	CU_ASSERT_EQUAL(mps_vnet_rx_fix(&v, pkt, n), 0);
	CU_ASSERT_EQUAL(memcmp(pkt, good, n), 0);
	/* Merged with the ECN flag: still TCP over IPv4. */
	v.gso_type = MPS_VNET_GSO_TCPV4 | MPS_VNET_GSO_ECN;
	CU_ASSERT_EQUAL(mps_vnet_rx_fix(&v, pkt, n), 0);
	/* Wrong version's type, UDP, no segment size: refused. */
	v.gso_type = MPS_VNET_GSO_TCPV6;
	CU_ASSERT_EQUAL(mps_vnet_rx_fix(&v, pkt, n), -EPROTO);
	v.gso_type = 3;
	CU_ASSERT_EQUAL(mps_vnet_rx_fix(&v, pkt, n), -EPROTO);
	v.gso_type = MPS_VNET_GSO_TCPV4;
	v.gso_size = 0;
	CU_ASSERT_EQUAL(mps_vnet_rx_fix(&v, pkt, n), -EPROTO);
	/* Checksum place beyond the packet: refused, nothing written. */
	v = (struct mps_vnet){ .flags = MPS_VNET_F_NEEDS_CSUM,
			       .csum_start = (uint16_t)(n - 10),
			       .csum_offset = 16 };
	memcpy(pkt, good, n);
	CU_ASSERT_EQUAL(mps_vnet_rx_fix(&v, pkt, n), -EPROTO);
	CU_ASSERT_EQUAL(memcmp(pkt, good, n), 0);
	/* Link padding after the IP packet: the completed checksum covers the packet only. */
	{
		static uint8_t part[4096];
		size_t m = build_pkt(part, 4, 0, 1000, 0x18);
		struct mps_vnet pv;
		uint16_t seed;

		CU_ASSERT_EQUAL_FATAL(mps_vnet_for_tx(part, m, 500, &pv, &seed), 0);
		memcpy(part + 20 + 16, &seed, 2);
		memset(part + m, 0xab, 10);
		CU_ASSERT_EQUAL(mps_vnet_rx_fix(&pv, part, m + 10), 0);
		CU_ASSERT_TRUE(tcp_csum_ok(part, m, 20, 4));
	}
	/* Merged but not IP at all. */
	v = (struct mps_vnet){ .gso_type = MPS_VNET_GSO_TCPV4, .gso_size = 1448 };
	pkt[0] = 0x00;
	CU_ASSERT_EQUAL(mps_vnet_rx_fix(&v, pkt, n), -EBADMSG);
}

/*
 * What a header vouches for, with nothing written: partial and kernel-verified
 * checksums need no pass over the payload, merged packets have a stale field,
 * and refused headers fail as in mps_vnet_rx_fix().
 */
static void test_rx_check(void)
{
	static uint8_t pkt[70000], good[70000];
	size_t n = build_pkt(good, 4, 12, 30000, 0x10);
	struct mps_vnet v = { 0 }, pv;
	uint16_t seed;

	memcpy(pkt, good, n);
	/* No flags: the stack verifies. */
	CU_ASSERT_EQUAL(mps_vnet_rx_check(&v, pkt, n), 0);
	/* Verified by the kernel, one segment: the field is right. */
	v.flags = MPS_VNET_F_DATA_VALID;
	CU_ASSERT_EQUAL(mps_vnet_rx_check(&v, pkt, n), (int)MPS_IN_CSUM_OK);
	/* Verified and merged: the field is the first segment's. */
	v = (struct mps_vnet){ .flags = MPS_VNET_F_DATA_VALID,
			       .gso_type = MPS_VNET_GSO_TCPV4,
			       .hdr_len = 52,
			       .gso_size = 1448 };
	pkt[20 + 16] ^= 0x5a;
	CU_ASSERT_EQUAL(mps_vnet_rx_check(&v, pkt, n), (int)(MPS_IN_CSUM_OK | MPS_IN_CSUM_STALE));
	/* Merged, not vouched for: stale alone, and mps_vnet_rx_fix() gives it its checksum. */
	v.flags = 0;
	CU_ASSERT_EQUAL(mps_vnet_rx_check(&v, pkt, n), (int)MPS_IN_CSUM_STALE);
	CU_ASSERT_EQUAL(memcmp(pkt + 37, good + 37, n - 37), 0); /* nothing written... */
	CU_ASSERT_EQUAL(pkt[36], good[36] ^ 0x5a);		 /* ... the field either */
	CU_ASSERT_EQUAL(mps_vnet_rx_fix(&v, pkt, n), 0);
	CU_ASSERT_EQUAL(memcmp(pkt, good, n), 0);
	/* Partial: built by the kernel, the field holds the pseudo-header's sum. */
	CU_ASSERT_EQUAL_FATAL(mps_vnet_for_tx(good, n, 1448, &pv, &seed), 0);
	memcpy(pkt + 20 + 16, &seed, 2);
	CU_ASSERT_EQUAL(mps_vnet_rx_check(&pv, pkt, n), (int)(MPS_IN_CSUM_OK | MPS_IN_CSUM_STALE));
	CU_ASSERT_EQUAL(memcmp(pkt + 20 + 16, &seed, 2), 0);
	/* Refused as mps_vnet_rx_fix() refuses. */
	v = (struct mps_vnet){ .flags = MPS_VNET_F_DATA_VALID,
			       .gso_type = MPS_VNET_GSO_TCPV6,
			       .gso_size = 1448 };
	CU_ASSERT_EQUAL(mps_vnet_rx_check(&v, pkt, n), -EPROTO);
	v.gso_type = MPS_VNET_GSO_TCPV4;
	v.gso_size = 0;
	CU_ASSERT_EQUAL(mps_vnet_rx_check(&v, pkt, n), -EPROTO);
	v = (struct mps_vnet){ .flags = MPS_VNET_F_NEEDS_CSUM,
			       .csum_start = (uint16_t)(n - 10),
			       .csum_offset = 16 };
	CU_ASSERT_EQUAL(mps_vnet_rx_check(&v, pkt, n), -EPROTO);
	v = (struct mps_vnet){ .gso_type = MPS_VNET_GSO_TCPV4, .gso_size = 1448 };
	pkt[0] = 0x00;
	CU_ASSERT_EQUAL(mps_vnet_rx_check(&v, pkt, n), -EBADMSG);
}

struct input_trace {
	int calls;
	bool csum_ok; /* the last packet traced in had a checksum that verifies */
};

static void input_trace_hook(void *ctx, const uint8_t *pkt, size_t len, int out, int subflow,
			     uint64_t now)
{
	struct input_trace *t = ctx;

	(void)subflow;
	(void)now;
	if (out)
		return;
	t->calls++;
	t->csum_ok = tcp_csum_ok(pkt, len, 20, 4);
}

/*
 * mps_input_flags(): a SYN whose checksum field is wrong is dropped and
 * counted by mps_input(), taken with MPS_IN_CSUM_OK (the link verified it),
 * and with MPS_IN_CSUM_STALE the trace sees it with its checksum redone.
 */
static void test_input_flags(void)
{
	struct input_trace tr = { 0 };
	struct mps_config cfg = { .seed = 1, .trace = input_trace_hook, .trace_ctx = &tr };
	struct mps_addr srv = { .family = 4, .port = 5002 };
	static uint8_t syn[128], out[2048];
	struct mps_stack *st;
	size_t n = build_pkt(syn, 4, 0, 0, 0x02);
	int err, i;

	st = mps_stack_create(&cfg, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	for (i = 0; i < 4; i++)
		srv.addr[i] = syn[16 + i]; /* build_pkt's destination, port 5002 */
	CU_ASSERT_EQUAL_FATAL(mps_listen(st, &srv), 0);
	syn[20 + 16] ^= 0x5a;
	CU_ASSERT_EQUAL(mps_input(st, syn, n, 0), -EBADMSG);
	CU_ASSERT_EQUAL(mps_stack_counter(st, MPS_CNT_IN_BAD_CSUM), 1);
	CU_ASSERT_EQUAL(mps_input_flags(st, syn, n, 0, MPS_IN_CSUM_STALE), -EINVAL);
	CU_ASSERT_EQUAL(mps_input_flags(st, syn, n, 0, 0x4), -EINVAL);
	CU_ASSERT_EQUAL(tr.calls, 1);
	/* Vouched for, the field left as it is: taken, answered with a SYN/ACK. */
	CU_ASSERT_EQUAL(mps_input_flags(st, syn, n, 1000, MPS_IN_CSUM_OK), 0);
	CU_ASSERT_EQUAL(mps_stack_counter(st, MPS_CNT_IN_BAD_CSUM), 1);
	CU_ASSERT_EQUAL(tr.calls, 2);
	CU_ASSERT_FALSE(tr.csum_ok);
	CU_ASSERT(mps_output(st, 1000, out, sizeof(out)) > 0);
	/* Stale: the trace sees the checksum redone (the SYN again, answered again). */
	CU_ASSERT_EQUAL(mps_input_flags(st, syn, n, 2000, MPS_IN_CSUM_OK | MPS_IN_CSUM_STALE), 0);
	CU_ASSERT_EQUAL(tr.calls, 3);
	CU_ASSERT_TRUE(tr.csum_ok);
	CU_ASSERT_TRUE(tcp_csum_ok(syn, n, 20, 4));
	CU_ASSERT_EQUAL(mps_stack_counter(st, MPS_CNT_IN_BAD_CSUM), 1);
	mps_stack_destroy(st);
}

/* The stack's word-wide sum equals the word-by-word one at every length and alignment. */
static void test_csum_add(void)
{
	static uint8_t b[70000];
	uint64_t z = 12345;
	size_t i, off, len;
	unsigned int bad = 0;

	for (i = 0; i < sizeof(b); i++) {
		z = z * 6364136223846793005ULL + 1442695040888963407ULL;
		b[i] = (uint8_t)(z >> 56);
	}
	for (off = 0; off < 8; off++)
		for (len = 0; len < 200; len++)
			bad += ref_fold(mps_csum_add(7, b + off, len)) !=
			       ref_fold(ref_sum(b + off, len, 7));
	CU_ASSERT_EQUAL(bad, 0);
	/* All ones: the carries of a 64 KiB run fold the same way. */
	memset(b, 0xff, sizeof(b));
	CU_ASSERT_EQUAL(ref_fold(mps_csum_add(0, b, 65535)), ref_fold(ref_sum(b, 65535, 0)));
	CU_ASSERT_EQUAL(ref_fold(mps_csum_add(0xffff, b + 1, 65534)),
			ref_fold(ref_sum(b + 1, 65534, 0xffff)));
}

static void test_open_bad_args(void)
{
	int err = 0;

	CU_ASSERT_PTR_NULL(mps_tun_open_flags("fjtun0", 0x80, &err));
	CU_ASSERT_EQUAL(err, -EINVAL);
	err = 0;
	/* Merged packets in need the vnet header that comes with TX. */
	CU_ASSERT_PTR_NULL(mps_tun_open_flags("fjtun0", MPS_TUN_OFFLOAD_RX, &err));
	CU_ASSERT_EQUAL(err, -EINVAL);
	err = 0;
	CU_ASSERT_PTR_NULL(mps_tun_open_flags("", MPS_TUN_OFFLOAD, &err));
	CU_ASSERT_EQUAL(err, -EINVAL);
	err = 0;
	CU_ASSERT_PTR_NULL(mps_tun_open_flags("a-name-much-too-long", MPS_TUN_OFFLOAD, &err));
	CU_ASSERT_EQUAL(err, -EINVAL);
	/* A value of MPS_TUN_OFFLOAD that names no mode is refused before any device is opened. */
	err = 0;
	CU_ASSERT_EQUAL_FATAL(setenv("MPS_TUN_OFFLOAD", "rx", 1), 0);
	CU_ASSERT_PTR_NULL(mps_tun_open("fjtun0", &err));
	CU_ASSERT_EQUAL(err, -EINVAL);
	CU_ASSERT_EQUAL(unsetenv("MPS_TUN_OFFLOAD"), 0);
}

static const struct fj_test tests[] = {
	{ "vnet_layout", test_vnet_layout },
	{ "tx_gso_v4", test_tx_gso_v4 },
	{ "tx_gso_v6", test_tx_gso_v6 },
	{ "tx_plain", test_tx_plain },
	{ "rx_fix", test_rx_fix },
	{ "rx_check", test_rx_check },
	{ "input_flags", test_input_flags },
	{ "csum_add", test_csum_add },
	{ "open_bad_args", test_open_bad_args },
	{ NULL, NULL },
};

const struct fj_suite fj_suite_mps_tun = { "mps_tun", NULL, NULL, tests };
