/*
 * agent/exp_tracebox.c: the SYN it builds (checksum over the pseudo-header,
 * IPv4 and IPv6), the ICMP quotes and TCP answers it reads (ours, someone
 * else's, cut short), and a run on loopback against a listening socket (root
 * only: raw sockets), which reaches the destination at TTL 1 with nothing
 * rewritten.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "exp_tracebox.h"
#include "fj_test.h"

static void mk4(struct sockaddr_storage *ss, const char *a, uint16_t port)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

	memset(ss, 0, sizeof(*ss));
	s4->sin_family = AF_INET;
	s4->sin_port = htons(port);
	inet_pton(AF_INET, a, &s4->sin_addr);
}

static void mk6(struct sockaddr_storage *ss, const char *a, uint16_t port)
{
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	s6->sin6_family = AF_INET6;
	s6->sin6_port = htons(port);
	inet_pton(AF_INET6, a, &s6->sin6_addr);
}

/* One's-complement sum over a pseudo-header and the segment: 0xffff when the checksum is right. */
static unsigned int verify(const uint8_t *a, const uint8_t *b, size_t alen, const uint8_t *seg,
			   size_t len)
{
	uint32_t acc = IPPROTO_TCP + (uint32_t)len;

	for (size_t i = 0; i < alen; i += 2)
		acc += (uint32_t)(a[i] << 8 | a[i + 1]) + (uint32_t)(b[i] << 8 | b[i + 1]);
	for (size_t i = 0; i < len; i += 2)
		acc += (uint32_t)(seg[i] << 8 | seg[i + 1]);
	while (acc >> 16)
		acc = (acc & 0xffff) + (acc >> 16);
	return acc;
}

static void test_syn(void)
{
	struct sockaddr_storage s, d, s6, d6;
	uint8_t syn[EXP_TBOX_SYN_LEN + 4];

	mk4(&s, "10.61.1.2", 40000);
	mk4(&d, "10.61.2.2", 7470);
	CU_ASSERT_EQUAL_FATAL(exp_tbox_syn(syn, sizeof(syn), &s, &d, 0x12345678u),
			      EXP_TBOX_SYN_LEN);
	CU_ASSERT_EQUAL(syn[0] << 8 | syn[1], 40000);
	CU_ASSERT_EQUAL(syn[2] << 8 | syn[3], 7470);
	CU_ASSERT_EQUAL(syn[4], 0x12);
	CU_ASSERT_EQUAL(syn[7], 0x78);
	CU_ASSERT_EQUAL(syn[12] >> 4, 6);
	CU_ASSERT_EQUAL(syn[13], 0x02);
	CU_ASSERT_EQUAL(syn[20], 2); /* MSS */
	CU_ASSERT_EQUAL(verify((uint8_t *)&((struct sockaddr_in *)&s)->sin_addr,
			       (uint8_t *)&((struct sockaddr_in *)&d)->sin_addr, 4, syn,
			       EXP_TBOX_SYN_LEN),
			0xffff);
	mk6(&s6, "fd00:61:0:1::2", 40001);
	mk6(&d6, "fd00:61:0:2::2", 7470);
	CU_ASSERT_EQUAL_FATAL(exp_tbox_syn(syn, sizeof(syn), &s6, &d6, 0xfffffff0u),
			      EXP_TBOX_SYN_LEN);
	CU_ASSERT_EQUAL(verify((uint8_t *)&((struct sockaddr_in6 *)&s6)->sin6_addr,
			       (uint8_t *)&((struct sockaddr_in6 *)&d6)->sin6_addr, 16, syn,
			       EXP_TBOX_SYN_LEN),
			0xffff);
	/* Mixed families, a buffer too small. */
	CU_ASSERT_EQUAL(exp_tbox_syn(syn, sizeof(syn), &s, &d6, 1), -EINVAL);
	CU_ASSERT_EQUAL(exp_tbox_syn(syn, EXP_TBOX_SYN_LEN - 1, &s, &d, 1), -EINVAL);
}

/* An IPv4 ICMP time exceeded from router r quoting our SYN with seq (as a raw socket reads it). */
static size_t icmp4(uint8_t *b, const char *r, const struct sockaddr_storage *s,
		    const struct sockaddr_storage *d, uint32_t seq, uint8_t type)
{
	memset(b, 0, 128);
	b[0] = 0x45;
	b[9] = IPPROTO_ICMP;
	inet_pton(AF_INET, r, b + 12);
	memcpy(b + 16, &((const struct sockaddr_in *)s)->sin_addr, 4);
	b[20] = type;
	/* The quoted IPv4 header and the SYN. */
	b[28] = 0x45;
	b[28 + 8] = 1; /* TTL as it arrived */
	b[28 + 9] = IPPROTO_TCP;
	memcpy(b + 28 + 12, &((const struct sockaddr_in *)s)->sin_addr, 4);
	memcpy(b + 28 + 16, &((const struct sockaddr_in *)d)->sin_addr, 4);
	exp_tbox_syn(b + 48, EXP_TBOX_SYN_LEN, s, d, seq);
	return 48 + EXP_TBOX_SYN_LEN;
}

static void test_parse_v4(void)
{
	struct sockaddr_storage s, d, other;
	struct exp_tbox_pkt p;
	uint8_t b[128];
	size_t n;

	mk4(&s, "10.63.3.2", 40000);
	mk4(&d, "10.61.2.2", 7470);
	mk4(&other, "10.61.2.3", 7470);
	n = icmp4(b, "10.63.3.1", &s, &d, 0xdeadbeefu, 11);
	CU_ASSERT_EQUAL(exp_tbox_parse(b, n, AF_INET, 1, &s, &d, NULL, &p), 0);
	CU_ASSERT_EQUAL(p.kind, EXP_TBOX_QUOTE);
	CU_ASSERT_EQUAL(p.seq, 0xdeadbeefu);
	CU_ASSERT_STRING_EQUAL(p.from, "10.63.3.1");
	/* RFC 792's minimum quote: the IP header and 8 bytes of TCP are enough. */
	CU_ASSERT_EQUAL(exp_tbox_parse(b, 56, AF_INET, 1, &s, &d, NULL, &p), 0);
	CU_ASSERT_EQUAL(p.kind, EXP_TBOX_QUOTE);
	CU_ASSERT_EQUAL(p.seq, 0xdeadbeefu);
	/* Cut inside the sequence number: malformed, not ours. */
	CU_ASSERT_EQUAL(exp_tbox_parse(b, 54, AF_INET, 1, &s, &d, NULL, &p), -EINVAL);
	CU_ASSERT_EQUAL(p.kind, EXP_TBOX_OTHER);
	/* A quote of a SYN to another destination, or from another port: not ours. */
	CU_ASSERT_EQUAL(exp_tbox_parse(b, n, AF_INET, 1, &s, &other, NULL, &p), 0);
	CU_ASSERT_EQUAL(p.kind, EXP_TBOX_OTHER);
	b[48] ^= 1;
	CU_ASSERT_EQUAL(exp_tbox_parse(b, n, AF_INET, 1, &s, &d, NULL, &p), 0);
	CU_ASSERT_EQUAL(p.kind, EXP_TBOX_OTHER);
	/* Destination unreachable; an echo reply (not about us). */
	n = icmp4(b, "10.63.3.1", &s, &d, 5, 3);
	CU_ASSERT_EQUAL(exp_tbox_parse(b, n, AF_INET, 1, &s, &d, NULL, &p), 0);
	CU_ASSERT_EQUAL(p.kind, EXP_TBOX_UNREACH);
	n = icmp4(b, "10.63.3.1", &s, &d, 5, 0);
	CU_ASSERT_EQUAL(exp_tbox_parse(b, n, AF_INET, 1, &s, &d, NULL, &p), 0);
	CU_ASSERT_EQUAL(p.kind, EXP_TBOX_OTHER);
	/* The destination's SYN/ACK (IPv4 header, then TCP from its port to ours). */
	memset(b, 0, sizeof(b));
	b[0] = 0x45;
	b[9] = IPPROTO_TCP;
	memcpy(b + 12, &((struct sockaddr_in *)&d)->sin_addr, 4);
	b[20] = 7470 >> 8;
	b[21] = 7470 & 0xff;
	b[22] = 40000 >> 8;
	b[23] = 40000 & 0xff;
	CU_ASSERT_EQUAL(exp_tbox_parse(b, 40, AF_INET, 0, &s, &d, NULL, &p), 0);
	CU_ASSERT_EQUAL(p.kind, EXP_TBOX_ANSWERED);
	CU_ASSERT_STRING_EQUAL(p.from, "10.61.2.2");
	CU_ASSERT_EQUAL(exp_tbox_parse(b, 39, AF_INET, 0, &s, &d, NULL, &p), -EINVAL);
	CU_ASSERT_EQUAL(exp_tbox_parse(b, 40, AF_INET, 0, &s, &other, NULL, &p), 0);
	CU_ASSERT_EQUAL(p.kind, EXP_TBOX_OTHER);
}

static void test_parse_v6(void)
{
	struct sockaddr_storage s, d, r;
	struct exp_tbox_pkt p;
	uint8_t b[128];
	size_t n = 8 + 40 + EXP_TBOX_SYN_LEN;

	mk6(&s, "fd00:63:0:3::2", 40000);
	mk6(&d, "fd00:61:0:2::2", 7470);
	mk6(&r, "fd00:63:0:3::1", 0);
	/* A raw ICMPv6 socket gives the message without the IPv6 header. */
	memset(b, 0, sizeof(b));
	b[0] = 3; /* time exceeded */
	b[8] = 0x60;
	b[8 + 6] = IPPROTO_TCP;
	memcpy(b + 8 + 8, &((struct sockaddr_in6 *)&s)->sin6_addr, 16);
	memcpy(b + 8 + 24, &((struct sockaddr_in6 *)&d)->sin6_addr, 16);
	exp_tbox_syn(b + 48, EXP_TBOX_SYN_LEN, &s, &d, 77);
	CU_ASSERT_EQUAL(exp_tbox_parse(b, n, AF_INET6, 1, &s, &d, &r, &p), 0);
	CU_ASSERT_EQUAL(p.kind, EXP_TBOX_QUOTE);
	CU_ASSERT_EQUAL(p.seq, 77);
	CU_ASSERT_STRING_EQUAL(p.from, "fd00:63:0:3::1");
	/* Behind an extension header: not a SYN of ours. */
	b[8 + 6] = 60;
	CU_ASSERT_EQUAL(exp_tbox_parse(b, n, AF_INET6, 1, &s, &d, &r, &p), 0);
	CU_ASSERT_EQUAL(p.kind, EXP_TBOX_OTHER);
	CU_ASSERT_EQUAL(exp_tbox_parse(b, 40, AF_INET6, 1, &s, &d, &r, &p), -EINVAL);
	/* The destination's answer: no header, the sender from recvfrom. */
	memset(b, 0, sizeof(b));
	b[0] = 7470 >> 8;
	b[1] = 7470 & 0xff;
	b[2] = 40000 >> 8;
	b[3] = 40000 & 0xff;
	CU_ASSERT_EQUAL(exp_tbox_parse(b, 20, AF_INET6, 0, &s, &d, &d, &p), 0);
	CU_ASSERT_EQUAL(p.kind, EXP_TBOX_ANSWERED);
	CU_ASSERT_EQUAL(exp_tbox_parse(b, 20, AF_INET6, 0, &s, &d, &r, &p), 0);
	CU_ASSERT_EQUAL(p.kind, EXP_TBOX_OTHER);
	CU_ASSERT_EQUAL(exp_tbox_parse(b, 20, AF_INET6, 0, &s, &d, NULL, &p), -EINVAL);
}

/* Loopback: the listener's kernel answers the first SYN; no router, nothing rewritten. */
static void test_run_loopback(void)
{
	struct sockaddr_storage s, d;
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t al = sizeof(a);
	struct exp_tbox_result r;
	int l, rc;

	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CU_ASSERT_FATAL(l >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CU_ASSERT_EQUAL_FATAL(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
	CU_ASSERT_EQUAL_FATAL(listen(l, 4), 0);
	CU_ASSERT_EQUAL_FATAL(getsockname(l, (struct sockaddr *)&a, &al), 0);
	mk4(&s, "127.0.0.1", 45678);
	mk4(&d, "127.0.0.1", ntohs(a.sin_port));
	rc = exp_tbox_run(&s, &d, 4, 500, 2000, &r);
	if (geteuid() != 0) {
		/* Without CAP_NET_RAW the run says why instead of pretending. */
		CU_ASSERT(rc < 0);
		CU_ASSERT(strstr(r.error, "raw socket") != NULL);
	} else {
		CU_ASSERT_EQUAL(rc, 0);
		CU_ASSERT_EQUAL(r.sent, 1);
		CU_ASSERT(r.reached);
		CU_ASSERT_EQUAL(r.reached_ttl, 1);
		CU_ASSERT_EQUAL(r.quotes, 0);
		CU_ASSERT(!r.rewritten);
		CU_ASSERT_STRING_EQUAL(r.error, "");
	}
	/* A family mix and a TTL range out of bounds are refused. */
	mk6(&d, "::1", 7);
	CU_ASSERT_EQUAL(exp_tbox_run(&s, &d, 4, 10, 10, &r), -EINVAL);
	mk4(&d, "127.0.0.1", 7);
	CU_ASSERT_EQUAL(exp_tbox_run(&s, &d, EXP_TBOX_MAX_TTL + 1, 10, 10, &r), -EINVAL);
	close(l);
}

static const struct fj_test tests[] = {
	{ "syn", test_syn },
	{ "parse_v4", test_parse_v4 },
	{ "parse_v6", test_parse_v6 },
	{ "run_loopback", test_run_loopback },
	{ NULL, NULL },
};

const struct fj_suite fj_suite_exp_tracebox = { "exp_tracebox", NULL, NULL, tests };
