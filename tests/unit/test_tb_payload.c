/*
 * The testbed's payload-rewriting middlebox (tb_rewrite_payload in
 * deploy/testbed/tb_emu.c) and its topology settings (rewrite-payload,
 * rewrite_offset in deploy/testbed/tb_config.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fj_test.h"
#include "../../deploy/testbed/tb_config.h"
#include "../../deploy/testbed/tb_emu.h"

#define PKT_MAX 4096 /* IPv6 + TCP + 3000 bytes */

/* A TCP segment of plen payload bytes (byte i of the stream is stream_byte(i)). */
struct seg {
	uint8_t b[PKT_MAX];
	unsigned int len;
};

static uint8_t stream_byte(uint32_t i)
{
	return (uint8_t)(i * 13 + 5);
}

/* IPv4 (v6 false) or IPv6 segment from port sport to dport; flags as in the TCP header. */
static void mkseg(struct seg *s, bool v6, uint16_t sport, uint16_t dport, uint32_t seq,
		  uint8_t flags, uint32_t stream_off, unsigned int plen)
{
	unsigned int off = v6 ? 40 : 20, tcp_len = 20 + plen;

	CU_ASSERT_FATAL(plen + 60 <= sizeof(s->b));
	memset(s->b, 0, sizeof(s->b));
	s->len = off + tcp_len;
	if (v6) {
		s->b[0] = 0x60;
		s->b[4] = (uint8_t)(tcp_len >> 8);
		s->b[5] = (uint8_t)tcp_len;
		s->b[6] = 6;
		s->b[7] = 64;
		s->b[8] = 0xfd, s->b[23] = 2, s->b[24] = 0xfd, s->b[39] = 0x10;
	} else {
		s->b[0] = 0x45;
		s->b[2] = (uint8_t)(s->len >> 8);
		s->b[3] = (uint8_t)s->len;
		s->b[8] = 64;
		s->b[9] = 6;
		s->b[12] = 10, s->b[15] = 2, s->b[16] = 198, s->b[17] = 18, s->b[19] = 10;
	}
	s->b[off] = (uint8_t)(sport >> 8), s->b[off + 1] = (uint8_t)sport;
	s->b[off + 2] = (uint8_t)(dport >> 8), s->b[off + 3] = (uint8_t)dport;
	s->b[off + 4] = (uint8_t)(seq >> 24), s->b[off + 5] = (uint8_t)(seq >> 16);
	s->b[off + 6] = (uint8_t)(seq >> 8), s->b[off + 7] = (uint8_t)seq;
	s->b[off + 12] = 5 << 4;
	s->b[off + 13] = flags;
	for (unsigned int i = 0; i < plen; i++)
		s->b[off + 20 + i] = stream_byte(stream_off + i);
}

static int tcp_csum_ok(const struct seg *s)
{
	unsigned int off = (s->b[0] >> 4) == 4 ? 20 : 40, tlen = s->len - off;
	unsigned long sum = 6 + tlen;

	for (unsigned int i = off == 20 ? 12 : 8; i < off; i += 2)
		sum += (unsigned long)(s->b[i] << 8 | s->b[i + 1]);
	for (unsigned int i = 0; i < tlen; i += 2)
		sum += (unsigned long)(s->b[off + i] << 8 | (i + 1 < tlen ? s->b[off + i + 1] : 0));
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return sum == 0xffff;
}

/* Payload bytes that differ from the stream, with the index of the last one. */
static unsigned int changed(const struct seg *s, uint32_t stream_off, unsigned int *where)
{
	unsigned int off = ((s->b[0] >> 4) == 4 ? 20 : 40) + 20, n = 0;

	for (unsigned int i = 0; off + i < s->len; i++)
		if (s->b[off + i] != stream_byte(stream_off + i)) {
			n++;
			*where = i;
		}
	return n;
}

static struct tb_prw *prw_new(uint32_t offset)
{
	struct tb_prw *t = malloc(sizeof(*t));

	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	tb_prw_init(t, offset);
	return t;
}

/* One connection both ways: exactly the byte at the offset changes, once per direction. */
static void run_connection(bool v6, uint32_t isn_a, uint32_t isn_b)
{
	struct tb_prw *t = prw_new(3000);
	struct seg s;
	unsigned int where = 0, hits = 0;

	mkseg(&s, v6, 40000, 80, isn_a, 0x02, 0, 0); /* SYN */
	CU_ASSERT_EQUAL(tb_rewrite_payload(t, s.b, s.len), 0);
	mkseg(&s, v6, 80, 40000, isn_b, 0x12, 0, 0); /* SYN/ACK */
	CU_ASSERT_EQUAL(tb_rewrite_payload(t, s.b, s.len), 0);
	for (uint32_t o = 0; o < 6000; o += 1400) {
		unsigned int plen = o + 1400 > 6000 ? 6000 - o : 1400;
		int r;

		mkseg(&s, v6, 40000, 80, isn_a + 1 + o, 0x18, o, plen);
		r = tb_rewrite_payload(t, s.b, s.len);
		if (o <= 3000 && 3000 < o + plen) {
			CU_ASSERT_EQUAL(r, 1);
			CU_ASSERT(tcp_csum_ok(&s));
			CU_ASSERT_EQUAL(changed(&s, o, &where), 1);
			CU_ASSERT_EQUAL(o + where, 3000u);
			hits++;
		} else {
			/* Untouched: its checksum (zero here) too. */
			CU_ASSERT_EQUAL(r, 0);
			CU_ASSERT_EQUAL(changed(&s, o, &where), 0);
			CU_ASSERT(!s.b[(v6 ? 40 : 20) + 16] && !s.b[(v6 ? 40 : 20) + 17]);
		}
	}
	CU_ASSERT_EQUAL(hits, 1);
	/* A retransmission of the byte gets the same change: every copy agrees. */
	mkseg(&s, v6, 40000, 80, isn_a + 1 + 2900, 0x18, 2900, 200);
	CU_ASSERT_EQUAL(tb_rewrite_payload(t, s.b, s.len), 1);
	CU_ASSERT_EQUAL(changed(&s, 2900, &where), 1);
	CU_ASSERT_EQUAL(where, 100u);
	CU_ASSERT_EQUAL(s.b[(v6 ? 40 : 20) + 20 + 100], (uint8_t)(stream_byte(3000) + TB_PRW_ADD));
	/* The other direction is its own stream with its own byte 3000. */
	mkseg(&s, v6, 80, 40000, isn_b + 1 + 3000, 0x18, 3000, 1);
	CU_ASSERT_EQUAL(tb_rewrite_payload(t, s.b, s.len), 1);
	CU_ASSERT(tcp_csum_ok(&s));
	mkseg(&s, v6, 80, 40000, isn_b + 1 + 3001, 0x18, 3001, 1);
	CU_ASSERT_EQUAL(tb_rewrite_payload(t, s.b, s.len), 0);
	/* The segment that ends right before the byte is left alone. */
	mkseg(&s, v6, 80, 40000, isn_b + 1, 0x18, 0, 3000);
	CU_ASSERT_EQUAL(tb_rewrite_payload(t, s.b, s.len), 0);
	free(t);
}

static void test_v4_both_ways(void)
{
	run_connection(false, 1000, 777777);
}

static void test_v6_both_ways(void)
{
	run_connection(true, 5, 0x80000000u);
}

/* Sequence numbers that wrap around 2^32 inside the stream. */
static void test_seq_wrap(void)
{
	run_connection(false, 0xfffff000u, 0xffffffffu);
}

/* A connection not seen from its SYN passes; so does everything that is not TCP. */
static void test_unseen_and_other(void)
{
	struct tb_prw *t = prw_new(0);
	struct seg s;

	mkseg(&s, false, 1, 2, 100, 0x18, 0, 10);
	CU_ASSERT_EQUAL(tb_rewrite_payload(t, s.b, s.len), 0);
	/* Offset 0: the first payload byte, also when the SYN carries it. */
	mkseg(&s, false, 1, 2, 100, 0x02, 0, 10);
	CU_ASSERT_EQUAL(tb_rewrite_payload(t, s.b, s.len), 1);
	CU_ASSERT(tcp_csum_ok(&s));
	mkseg(&s, false, 1, 2, 101, 0x18, 0, 10);
	CU_ASSERT_EQUAL(tb_rewrite_payload(t, s.b, s.len), 1);
	s.b[9] = 17; /* UDP */
	CU_ASSERT_EQUAL(tb_rewrite_payload(t, s.b, s.len), 0);
	s.b[9] = 6;
	s.b[6] = 0x20; /* a fragment (MF) */
	CU_ASSERT_EQUAL(tb_rewrite_payload(t, s.b, s.len), 0);
	s.b[6] = 0;
	/* Cut short, a length that disagrees, a data offset past the end, not IP. */
	CU_ASSERT_EQUAL(tb_rewrite_payload(t, s.b, 30), -EINVAL);
	CU_ASSERT_EQUAL(tb_rewrite_payload(t, s.b, s.len - 1), -EINVAL);
	s.b[32] = 15 << 4;
	CU_ASSERT_EQUAL(tb_rewrite_payload(t, s.b, s.len), -EINVAL);
	s.b[0] = 0x35;
	CU_ASSERT_EQUAL(tb_rewrite_payload(t, s.b, s.len), -EINVAL);
	free(t);
}

/* Many more connections than slots: the table stays bounded, recent flows still work. */
static void test_table_bounded(void)
{
	struct tb_prw *t = prw_new(10);
	struct seg s;

	for (unsigned int i = 0; i < 5 * TB_PRW_FLOWS; i++) {
		mkseg(&s, false, (uint16_t)(1024 + i), 443, i * 7919u, 0x02, 0, 0);
		CU_ASSERT_EQUAL(tb_rewrite_payload(t, s.b, s.len), 0);
	}
	CU_ASSERT_EQUAL(t->flows_seen, 5u * TB_PRW_FLOWS);
	CU_ASSERT(t->evicted >= 4u * TB_PRW_FLOWS);
	/* The last connection opened is still known. */
	mkseg(&s, false, (uint16_t)(1024 + 5 * TB_PRW_FLOWS - 1), 443,
	      (5 * TB_PRW_FLOWS - 1) * 7919u + 1, 0x18, 0, 20);
	CU_ASSERT_EQUAL(tb_rewrite_payload(t, s.b, s.len), 1);
	free(t);
}

/* ---- topology settings ---- */

#define HEAD                                                                                       \
	"name = \"t\";\n"                                                                          \
	"controller = { ipv4 = \"198.18.0.10/24\"; ipv6 = \"fd00:ff::10/64\"; };\n"

static struct tb_topology topo;
static char err[TB_ERR_MAX];

static int load(const char *isp_extra, const char *uplink_extra)
{
	char text[2048];

	snprintf(text, sizeof(text),
		 "%sisps = ( { name = \"a\"; ipv4 = \"10.1.0.0/16\"; ipv6 = \"fd00:1::/48\";%s },\n"
		 "  { name = \"b\"; ipv4 = \"10.2.0.0/16\"; ipv6 = \"fd00:2::/48\"; } );\n"
		 "sites = ( { name = \"s\"; nodes = ( { name = \"n\"; tun = \"t0\"; } );\n"
		 "  uplinks = ( { isp = \"a\";%s }, { isp = \"b\"; } ); } );\n",
		 HEAD, isp_extra, uplink_extra);
	err[0] = 0;
	return tb_config_load_string(text, &topo, err, sizeof(err));
}

static void expect_error(const char *isp_extra, const char *uplink_extra, const char *needle)
{
	CU_ASSERT_EQUAL(load(isp_extra, uplink_extra), -EINVAL);
	if (!strstr(err, needle))
		fprintf(stderr, "\n  error \"%s\" lacks \"%s\"\n", err, needle);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, needle));
}

static void test_config(void)
{
	enum tb_middlebox mb;

	CU_ASSERT_EQUAL(tb_middlebox_parse("rewrite-payload", &mb), 0);
	CU_ASSERT_EQUAL(mb, TB_MB_REWRITE_PAYLOAD);
	CU_ASSERT_STRING_EQUAL(tb_middlebox_name(TB_MB_REWRITE_PAYLOAD), "rewrite-payload");
	/* The ISP's middlebox and default offset, inherited by its uplinks. */
	CU_ASSERT_EQUAL_FATAL(load(" middlebox = \"rewrite-payload\";", ""), 0);
	CU_ASSERT_EQUAL(topo.sites[0].uplinks[0].middlebox, TB_MB_REWRITE_PAYLOAD);
	CU_ASSERT_EQUAL(topo.sites[0].uplinks[0].rewrite_offset, TB_REWRITE_OFFSET_DEFAULT);
	CU_ASSERT_EQUAL(topo.sites[0].uplinks[1].middlebox, TB_MB_NONE);
	CU_ASSERT_EQUAL_FATAL(load(" middlebox = \"rewrite-payload\"; rewrite_offset = 1000;", ""),
			      0);
	CU_ASSERT_EQUAL(topo.sites[0].uplinks[0].rewrite_offset, 1000u);
	/* The uplink overrides both. */
	CU_ASSERT_EQUAL_FATAL(load(" middlebox = \"rewrite-payload\"; rewrite_offset = 1000;",
				   " rewrite_offset = 0;"),
			      0);
	CU_ASSERT_EQUAL(topo.sites[0].uplinks[0].rewrite_offset, 0u);
	CU_ASSERT_EQUAL_FATAL(load("", " middlebox = \"rewrite-payload\"; rewrite_offset = "
				       "1073741824;"),
			      0);
	CU_ASSERT_EQUAL(topo.sites[0].uplinks[0].rewrite_offset, TB_REWRITE_OFFSET_MAX);

	/* Every bad value named. */
	expect_error("", " rewrite_offset = 10;",
		     "rewrite_offset: only applies with middlebox = \"rewrite-payload\" (here: "
		     "none)");
	expect_error(" middlebox = \"rewrite-seq\"; rewrite_offset = 10;", "",
		     "only applies with middlebox = \"rewrite-payload\" (here: rewrite-seq)");
	expect_error("", " middlebox = \"rewrite-payload\"; rewrite_offset = -1;",
		     "-1 is outside 0..1073741824");
	expect_error("", " middlebox = \"rewrite-payload\"; rewrite_offset = 1073741825;",
		     "1073741825 is outside 0..1073741824");
	expect_error("", " middlebox = \"rewrite-payload\"; rewrite_offset = \"64k\";",
		     "must be an integer");
	expect_error("", " middlebox = \"rewrite-payload\"; rewrite_offset = 1.5;",
		     "must be an integer");
	expect_error("", " middlebox = \"rewrite-payloads\";",
		     "\"rewrite-payloads\" is not one of none, strip-mptcp, strip-mptcp-synack, "
		     "nat, drop-add-addr, rewrite-seq, rewrite-payload");
}

static const struct fj_test tests[] = {
	{ "v4_both_ways", test_v4_both_ways },
	{ "v6_both_ways", test_v6_both_ways },
	{ "seq_wrap", test_seq_wrap },
	{ "unseen_and_other", test_unseen_and_other },
	{ "table_bounded", test_table_bounded },
	{ "config", test_config },
	{ NULL, NULL },
};

const struct fj_suite fj_suite_tb_payload = { "tb_payload", NULL, NULL, tests };
