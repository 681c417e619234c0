/* IPv4/IPv6 + TCP segment decoding: a good segment of each family and every rejection. */
#include <errno.h>
#include <string.h>

#include "fj_test.h"
#include "mps_seg.h"
#include "prot/tcp.h"

/* IPv4, 20-byte IP header, 24-byte TCP header (MSS option), 3 bytes payload. */
static void make_v4(uint8_t *p)
{
	static const uint8_t pkt[] = {
		0x45, 0,    0, 47,  0,	1, 0x40, 0,    64,   6,	   0,	 0,
		10,   0,    1, 1,   10, 0, 1,	 2,    0xd2, 0xac, 0x13, 0x8a,
		0,    0,    0, 100, 0,	0, 0,	 200,  0x60, 0x18, 0xff, 0xff,
		0x12, 0x34, 0, 0,   2,	4, 0x05, 0xb4, 'a',  'b',  'c',
	};
	memcpy(p, pkt, sizeof(pkt));
}

static int parse(const uint8_t *p, size_t len, int trunc, enum mps_seg_err *err)
{
	struct mps_seg s;

	return mps_seg_parse(p, len, trunc, &s, err);
}

static void test_v4_ok(void)
{
	uint8_t p[64];
	struct mps_seg s;
	enum mps_seg_err err;

	make_v4(p);
	CU_ASSERT_EQUAL_FATAL(mps_seg_parse(p, 47, 0, &s, &err), 0);
	CU_ASSERT_EQUAL(s.family, 4);
	CU_ASSERT_EQUAL(s.src[3], 1);
	CU_ASSERT_EQUAL(s.dst[3], 2);
	CU_ASSERT_EQUAL(s.sport, 53932);
	CU_ASSERT_EQUAL(s.dport, 5002);
	CU_ASSERT_EQUAL(s.seq, 100);
	CU_ASSERT_EQUAL(s.ack, 200);
	CU_ASSERT_EQUAL(s.flags, MPS_TCP_ACK | MPS_TCP_PSH);
	CU_ASSERT_EQUAL(s.win, 0xffff);
	CU_ASSERT_EQUAL(s.opts_len, 4);
	CU_ASSERT_EQUAL(s.opts[0], 2);
	CU_ASSERT_EQUAL(s.payload_len, 3);
	CU_ASSERT_EQUAL(s.payload_cap, 3);
	CU_ASSERT_EQUAL(memcmp(s.payload, "abc", 3), 0);
	/* Ethernet padding after the IP datagram is ignored. */
	CU_ASSERT_EQUAL(mps_seg_parse(p, 60, 0, &s, &err), 0);
	CU_ASSERT_EQUAL(s.payload_len, 3);
	/* A capture cut short is accepted only when asked for. */
	CU_ASSERT_EQUAL(parse(p, 45, 0, &err), -EBADMSG);
	CU_ASSERT_EQUAL(err, MPS_SEG_E_IP_LEN);
	CU_ASSERT_EQUAL(mps_seg_parse(p, 45, 1, &s, &err), 0);
	CU_ASSERT_EQUAL(s.payload_len, 3);
	CU_ASSERT_EQUAL(s.payload_cap, 1);
}

static void test_v6_ok(void)
{
	uint8_t p[80] = { 0x60, 0, 0, 0, 0, 20, 6, 64 };
	struct mps_seg s;
	enum mps_seg_err err;

	p[8] = 0xde;
	p[24 + 15] = 2;
	p[40 + 12] = 0x50;
	p[40 + 13] = MPS_TCP_SYN;
	CU_ASSERT_EQUAL_FATAL(mps_seg_parse(p, 60, 0, &s, &err), 0);
	CU_ASSERT_EQUAL(s.family, 6);
	CU_ASSERT_EQUAL(s.src[0], 0xde);
	CU_ASSERT_EQUAL(s.dst[15], 2);
	CU_ASSERT_EQUAL(s.flags, MPS_TCP_SYN);
	CU_ASSERT_EQUAL(s.opts_len, 0);
	CU_ASSERT_EQUAL(s.payload_len, 0);
	p[6] = 0; /* hop-by-hop extension header: not walked */
	CU_ASSERT_EQUAL(parse(p, 60, 0, &err), -EBADMSG);
	CU_ASSERT_EQUAL(err, MPS_SEG_E_NOT_TCP);
	p[6] = 6;
	CU_ASSERT_EQUAL(parse(p, 39, 0, &err), -EBADMSG);
	CU_ASSERT_EQUAL(err, MPS_SEG_E_SHORT);
}

static void test_rejects(void)
{
	uint8_t p[64];
	enum mps_seg_err err;

	make_v4(p);
	CU_ASSERT_EQUAL(parse(p, 0, 0, &err), -EBADMSG);
	CU_ASSERT_EQUAL(err, MPS_SEG_E_SHORT);
	CU_ASSERT_EQUAL(parse(p, 19, 0, &err), -EBADMSG);
	CU_ASSERT_EQUAL(err, MPS_SEG_E_SHORT);
	p[0] = 0x55;
	CU_ASSERT_EQUAL(parse(p, 47, 0, &err), -EBADMSG);
	CU_ASSERT_EQUAL(err, MPS_SEG_E_VERSION);
	p[0] = 0x44;
	CU_ASSERT_EQUAL(parse(p, 47, 0, &err), -EBADMSG);
	CU_ASSERT_EQUAL(err, MPS_SEG_E_IP_HLEN);
	p[0] = 0x4f; /* 60-byte header is longer than what is given */
	CU_ASSERT_EQUAL(parse(p, 47, 0, &err), -EBADMSG);
	CU_ASSERT_EQUAL(err, MPS_SEG_E_IP_HLEN);
	make_v4(p);
	p[3] = 10; /* total length below the header length */
	CU_ASSERT_EQUAL(parse(p, 47, 0, &err), -EBADMSG);
	CU_ASSERT_EQUAL(err, MPS_SEG_E_IP_LEN);
	make_v4(p);
	p[6] = 0x20; /* more fragments */
	CU_ASSERT_EQUAL(parse(p, 47, 0, &err), -EBADMSG);
	CU_ASSERT_EQUAL(err, MPS_SEG_E_FRAGMENT);
	make_v4(p);
	p[9] = 17;
	CU_ASSERT_EQUAL(parse(p, 47, 0, &err), -EBADMSG);
	CU_ASSERT_EQUAL(err, MPS_SEG_E_NOT_TCP);
	make_v4(p);
	p[32] = 0x40; /* data offset 4 words */
	CU_ASSERT_EQUAL(parse(p, 47, 0, &err), -EBADMSG);
	CU_ASSERT_EQUAL(err, MPS_SEG_E_TCP_DOFF);
	p[32] = 0xf0; /* 60 bytes of TCP header in a 27-byte segment */
	CU_ASSERT_EQUAL(parse(p, 47, 0, &err), -EBADMSG);
	CU_ASSERT_EQUAL(err, MPS_SEG_E_TCP_DOFF);
	make_v4(p);
	CU_ASSERT_EQUAL(parse(p, 30, 1, &err), -EBADMSG);
	CU_ASSERT_EQUAL(err, MPS_SEG_E_TCP_SHORT);
	CU_ASSERT_STRING_EQUAL(mps_seg_err_name(MPS_SEG_E_TCP_SHORT), "tcp_short");
	CU_ASSERT_STRING_EQUAL(mps_seg_err_name(MPS_SEG_E_COUNT), "unknown");
}

static const struct fj_test tests[] = {
	{ "v4_ok", test_v4_ok },
	{ "v6_ok", test_v6_ok },
	{ "rejects", test_rejects },
	{ NULL, NULL },
};

const struct fj_suite fj_suite_mps_seg = { "mps_seg", NULL, NULL, tests };
