/*
 * The host adapter's parts that need neither root nor a network
 * (mps_host.h): config checks, which received packets belong to the stack,
 * what the stack is told of their checksums, the nftables script, the BPF program (run here by a
 * small interpreter of the classic BPF it uses, and held to the same
 * verdicts as mps_host_match()), the kernel port-range check, and the
 * failures of mps_host_open() that come before any socket or rule.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fj_test.h"
#include "mps_host.h"
#include "mps_host_bpf_run.h"

static struct mps_addr ip(const char *s)
{
	struct mps_addr a = { 0 };

	if (inet_pton(AF_INET, s, a.addr) == 1)
		a.family = 4;
	else if (inet_pton(AF_INET6, s, a.addr) == 1)
		a.family = 6;
	return a;
}

/* Two IPv4 and one IPv6 address, listening on 5102, ephemeral ports on. */
static struct mps_host_config base_cfg(void)
{
	struct mps_host_config c = { 0 };

	c.addrs[0] = ip("10.83.1.1");
	c.addrs[1] = ip("10.83.2.1");
	c.addrs[2] = ip("fd83:1::1");
	c.naddrs = 3;
	c.ports[0] = 5102;
	c.nports = 1;
	c.ephemeral = true;
	return c;
}

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

/* The pseudo-header's sum of pkt (IPv4 or IPv6 with TCP, no options), unfolded. */
static uint32_t pseudo(const uint8_t *pkt, size_t len)
{
	size_t ihl = pkt[0] >> 4 == 4 ? 20 : 40, alen = ihl == 20 ? 4 : 16;

	return ref_sum(pkt + (ihl == 20 ? 12 : 8), 2 * alen, 0) + 6 + (uint32_t)(len - ihl);
}

static bool csum_ok(const uint8_t *pkt, size_t len)
{
	size_t ihl = pkt[0] >> 4 == 4 ? 20 : 40;

	return ref_fold(ref_sum(pkt + ihl, len - ihl, pseudo(pkt, len))) == 0xffff;
}

/*
 * A TCP packet from src:4000 to dst:dport with paylen bytes of payload and
 * a valid checksum; pad extra zero bytes after it (link padding). Returns
 * the IP length.
 */
static size_t build(uint8_t *pkt, const char *src, const char *dst, uint16_t dport, size_t paylen,
		    size_t pad)
{
	struct mps_addr s = ip(src), d = ip(dst);
	size_t ihl = s.family == 4 ? 20 : 40, tot = ihl + 20 + paylen, i;
	uint8_t *t = pkt + ihl;
	uint16_t c;

	memset(pkt, 0, tot + pad);
	if (s.family == 4) {
		pkt[0] = 0x45;
		pkt[2] = (uint8_t)(tot >> 8);
		pkt[3] = (uint8_t)tot;
		pkt[6] = 0x40; /* DF */
		pkt[8] = 64;
		pkt[9] = 6;
		memcpy(pkt + 12, s.addr, 4);
		memcpy(pkt + 16, d.addr, 4);
	} else {
		pkt[0] = 0x60;
		pkt[4] = (uint8_t)((tot - 40) >> 8);
		pkt[5] = (uint8_t)(tot - 40);
		pkt[6] = 6;
		pkt[7] = 64;
		memcpy(pkt + 8, s.addr, 16);
		memcpy(pkt + 24, d.addr, 16);
	}
	t[0] = 4000 >> 8;
	t[1] = 4000 & 0xff;
	t[2] = (uint8_t)(dport >> 8);
	t[3] = (uint8_t)dport;
	t[12] = 5 << 4;
	t[13] = 0x18;
	for (i = 0; i < paylen; i++)
		t[20 + i] = (uint8_t)(i * 13 + 7);
	c = (uint16_t)~ref_fold(ref_sum(t, 20 + paylen, pseudo(pkt, tot)));
	t[16] = (uint8_t)(c >> 8);
	t[17] = (uint8_t)c;
	return tot;
}

static void test_config_check(void)
{
	struct mps_host_config c = base_cfg();
	char why[128];
	unsigned int i;

	CU_ASSERT_EQUAL(mps_host_config_check(&c, why, sizeof(why)), 0);
	CU_ASSERT_EQUAL(mps_host_config_check(NULL, why, sizeof(why)), -EINVAL);
	c.naddrs = 0;
	CU_ASSERT_EQUAL(mps_host_config_check(&c, why, sizeof(why)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "local addresses"));
	c = base_cfg();
	c.naddrs = MPS_HOST_MAX_ADDRS + 1;
	CU_ASSERT_EQUAL(mps_host_config_check(&c, why, sizeof(why)), -EINVAL);
	c = base_cfg();
	c.addrs[1] = ip("0.0.0.0");
	CU_ASSERT_EQUAL(mps_host_config_check(&c, why, sizeof(why)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "address 1 (0.0.0.0)"));
	c.addrs[1] = ip("::");
	CU_ASSERT_EQUAL(mps_host_config_check(&c, why, sizeof(why)), -EINVAL);
	c.addrs[1] = ip("224.0.0.1");
	CU_ASSERT_EQUAL(mps_host_config_check(&c, why, sizeof(why)), -EINVAL);
	c.addrs[1] = ip("ff02::1");
	CU_ASSERT_EQUAL(mps_host_config_check(&c, why, sizeof(why)), -EINVAL);
	c.addrs[1].family = 5;
	CU_ASSERT_EQUAL(mps_host_config_check(&c, why, sizeof(why)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "bad family"));
	c = base_cfg();
	c.ports[1] = 5102;
	c.nports = 2;
	CU_ASSERT_EQUAL(mps_host_config_check(&c, why, sizeof(why)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "given twice"));
	c.ports[1] = 0;
	CU_ASSERT_EQUAL(mps_host_config_check(&c, why, sizeof(why)), -EINVAL);
	c = base_cfg();
	c.nports = MPS_HOST_MAX_PORTS + 1;
	for (i = 0; i < MPS_HOST_MAX_PORTS; i++)
		c.ports[i] = (uint16_t)(100 + i);
	CU_ASSERT_EQUAL(mps_host_config_check(&c, why, sizeof(why)), -EINVAL);
	c = base_cfg();
	c.nports = 0;
	CU_ASSERT_EQUAL(mps_host_config_check(&c, why, sizeof(why)), 0);
	c.ephemeral = false;
	CU_ASSERT_EQUAL(mps_host_config_check(&c, why, sizeof(why)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "no ports"));
	/* A short buffer still gets a terminated message; none at all is fine too. */
	CU_ASSERT_EQUAL(mps_host_config_check(&c, why, 4), -EINVAL);
	CU_ASSERT_EQUAL(strlen(why), 3);
	CU_ASSERT_EQUAL(mps_host_config_check(&c, NULL, 0), -EINVAL);
}

/* mps_host_match() of a built packet: its verdict, and the IP length on a match. */
static int match(const struct mps_host_config *c, const uint8_t *pkt, size_t len, size_t *iplen)
{
	*iplen = 0;
	return mps_host_match(c, pkt, len, iplen);
}

static void test_match_v4(void)
{
	struct mps_host_config c = base_cfg();
	uint8_t p[256];
	size_t n, iplen;

	n = build(p, "10.83.1.2", "10.83.1.1", 5102, 10, 0);
	CU_ASSERT_EQUAL(match(&c, p, n, &iplen), 1);
	CU_ASSERT_EQUAL(iplen, n);
	/* Ethernet padding after a short packet is cut off. */
	n = build(p, "10.83.1.2", "10.83.2.1", 5102, 0, 6);
	CU_ASSERT_EQUAL(match(&c, p, n + 6, &iplen), 1);
	CU_ASSERT_EQUAL(iplen, n);
	/* Someone else's: another address, another port, an ephemeral port only when asked. */
	n = build(p, "10.83.1.2", "10.83.1.9", 5102, 10, 0);
	CU_ASSERT_EQUAL(match(&c, p, n, &iplen), 0);
	n = build(p, "10.83.1.2", "10.83.1.1", 5103, 10, 0);
	CU_ASSERT_EQUAL(match(&c, p, n, &iplen), 0);
	n = build(p, "10.83.1.2", "10.83.1.1", 49152, 10, 0);
	CU_ASSERT_EQUAL(match(&c, p, n, &iplen), 1);
	n = build(p, "10.83.1.2", "10.83.1.1", 49151, 10, 0);
	CU_ASSERT_EQUAL(match(&c, p, n, &iplen), 0);
	c.ephemeral = false;
	n = build(p, "10.83.1.2", "10.83.1.1", 65535, 10, 0);
	CU_ASSERT_EQUAL(match(&c, p, n, &iplen), 0);
	c.ephemeral = true;
	CU_ASSERT_EQUAL(match(&c, p, n, &iplen), 1);
	/* Not TCP, or a fragment (first or later): not ours. */
	p[9] = 17;
	CU_ASSERT_EQUAL(match(&c, p, n, &iplen), 0);
	p[9] = 6;
	p[6] = 0x20;
	CU_ASSERT_EQUAL(match(&c, p, n, &iplen), 0);
	p[6] = 0x00;
	p[7] = 0x01;
	CU_ASSERT_EQUAL(match(&c, p, n, &iplen), 0);
	p[6] = 0x40;
	p[7] = 0;
	/* Malformed: short, header length, total length past the data, TCP cut off. */
	CU_ASSERT_EQUAL(match(&c, p, 19, &iplen), -EBADMSG);
	CU_ASSERT_EQUAL(match(&c, p, 0, &iplen), -EBADMSG);
	CU_ASSERT_EQUAL(match(&c, p, n - 1, &iplen), -EBADMSG);
	p[0] = 0x44;
	CU_ASSERT_EQUAL(match(&c, p, n, &iplen), -EBADMSG);
	p[0] = 0x45;
	p[2] = 0;
	p[3] = 30;
	CU_ASSERT_EQUAL(match(&c, p, n, &iplen), -EBADMSG);
	p[0] = 0x55;
	CU_ASSERT_EQUAL(match(&c, p, n, &iplen), -EBADMSG);
	CU_ASSERT_EQUAL(iplen, 0);
}

static void test_match_v6(void)
{
	struct mps_host_config c = base_cfg();
	uint8_t p[256];
	size_t n, iplen;

	n = build(p, "fd83:1::2", "fd83:1::1", 5102, 100, 0);
	CU_ASSERT_EQUAL(match(&c, p, n, &iplen), 1);
	CU_ASSERT_EQUAL(iplen, n);
	CU_ASSERT_EQUAL(match(&c, p, n + 20, &iplen), 1);
	CU_ASSERT_EQUAL(iplen, n);
	n = build(p, "fd83:1::2", "fd83:1::3", 5102, 100, 0);
	CU_ASSERT_EQUAL(match(&c, p, n, &iplen), 0);
	/* An IPv4 address's bytes in an IPv6 packet are not that address. */
	n = build(p, "fd83:1::2", "a53:101::", 5102, 0, 0);
	CU_ASSERT_EQUAL(match(&c, p, n, &iplen), 0);
	n = build(p, "fd83:1::2", "fd83:1::1", 60000, 0, 0);
	CU_ASSERT_EQUAL(match(&c, p, n, &iplen), 1);
	p[6] = 0; /* hop-by-hop options header */
	CU_ASSERT_EQUAL(match(&c, p, n, &iplen), 0);
	p[6] = 6;
	CU_ASSERT_EQUAL(match(&c, p, n - 1, &iplen), -EBADMSG);
	CU_ASSERT_EQUAL(match(&c, p, 39, &iplen), -EBADMSG);
	p[5] = 10; /* payload shorter than a TCP header */
	CU_ASSERT_EQUAL(match(&c, p, n, &iplen), -EBADMSG);
}

/*
 * What the adapter tells the stack of a checksum: a partial one (veth) fed
 * with the kernel's word is taken and answered, and the same packet without
 * it is dropped as a bad checksum; a wrong checksum the kernel did not
 * vouch for is dropped too.
 */
static void test_csum_flags(void)
{
	struct mps_config sc = { .seed = 1 };
	struct mps_addr l = ip("10.83.1.1");
	struct mps_stack *st;
	uint8_t p[256], out[2048];
	size_t n;
	uint16_t ps;
	int err;

	CU_ASSERT_EQUAL(mps_host_csum_flags(MPS_HOST_CSUM_NONE), 0);
	CU_ASSERT_EQUAL(mps_host_csum_flags(MPS_HOST_CSUM_PARTIAL),
			MPS_IN_CSUM_OK | MPS_IN_CSUM_STALE);
	CU_ASSERT_EQUAL(mps_host_csum_flags(MPS_HOST_CSUM_VALID),
			MPS_IN_CSUM_OK | MPS_IN_CSUM_STALE);
	st = mps_stack_create(&sc, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	l.port = 5102;
	CU_ASSERT_EQUAL(mps_listen(st, &l), 0);
	/* A SYN whose checksum field holds only the pseudo-header's sum, as veth leaves it. */
	n = build(p, "10.83.1.2", "10.83.1.1", 5102, 0, 0);
	p[20 + 13] = 0x02;
	ps = ref_fold(pseudo(p, n));
	CU_ASSERT_FALSE(csum_ok(p, n));
	p[20 + 16] = (uint8_t)(ps >> 8);
	p[20 + 17] = (uint8_t)ps;
	CU_ASSERT_NOT_EQUAL(mps_input_flags(st, p, n, 1000, 0), 0);
	CU_ASSERT_EQUAL(mps_stack_counter(st, MPS_CNT_IN_BAD_CSUM), 1);
	CU_ASSERT_EQUAL(mps_output(st, 1000, out, sizeof(out)), 0);
	CU_ASSERT_EQUAL(mps_input_flags(st, p, n, 2000, mps_host_csum_flags(MPS_HOST_CSUM_PARTIAL)),
			0);
	CU_ASSERT_EQUAL(mps_stack_counter(st, MPS_CNT_IN_BAD_CSUM), 1);
	CU_ASSERT_TRUE(mps_output(st, 2000, out, sizeof(out)) > 0); /* the SYN/ACK */
	CU_ASSERT_EQUAL(out[20 + 13] & 0x12, 0x12);
	/* Another SYN, its checksum plainly wrong, nothing vouched: dropped and counted. */
	n = build(p, "10.83.1.2", "10.83.1.1", 5102, 0, 0);
	p[20 + 1] = 0x01; /* another source port */
	p[20 + 13] = 0x02;
	CU_ASSERT_FALSE(csum_ok(p, n));
	CU_ASSERT_NOT_EQUAL(
		mps_input_flags(st, p, n, 3000, mps_host_csum_flags(MPS_HOST_CSUM_NONE)), 0);
	CU_ASSERT_EQUAL(mps_stack_counter(st, MPS_CNT_IN_BAD_CSUM), 2);
	mps_stack_destroy(st);
}

static void test_ruleset(void)
{
	struct mps_host_config c = base_cfg();
	char buf[1024];
	static const char want[] =
		"table inet fjmps_1_0 {\n"
		"\tchain in {\n"
		"\t\ttype filter hook prerouting priority -300; policy accept;\n"
		"\t\tip daddr { 10.83.1.1, 10.83.2.1 } tcp dport { 5102, 49152-65535 } counter drop\n"
		"\t\tip6 daddr { fd83:1::1 } tcp dport { 5102, 49152-65535 } counter drop\n"
		"\t}\n"
		"\tchain out {\n"
		"\t\ttype filter hook output priority 0; policy accept;\n"
		"\t\tmeta mark != 0x4d505300 ip saddr { 10.83.1.1, 10.83.2.1 } tcp sport { 5102, "
		"49152-65535 } tcp flags & rst == rst counter drop\n"
		"\t\tmeta mark != 0x4d505300 ip6 saddr { fd83:1::1 } tcp sport { 5102, "
		"49152-65535 } tcp flags & rst == rst counter drop\n"
		"\t}\n"
		"}\n";
	int n;

	n = mps_host_ruleset(&c, "fjmps_1_0", buf, sizeof(buf));
	CU_ASSERT_EQUAL(n, (int)strlen(want));
	CU_ASSERT_STRING_EQUAL(buf, want);
	/* One family, no ephemeral ports, a mark of our own. */
	c.naddrs = 1;
	c.ephemeral = false;
	c.mark = 7;
	c.ports[1] = 80;
	c.nports = 2;
	n = mps_host_ruleset(&c, "t", buf, sizeof(buf));
	CU_ASSERT_TRUE(n > 0);
	CU_ASSERT_PTR_NOT_NULL(
		strstr(buf, "meta mark != 0x00000007 ip saddr { 10.83.1.1 } tcp sport { 5102, 80 } "
			    "tcp flags & rst == rst counter drop\n"));
	CU_ASSERT_PTR_NOT_NULL(
		strstr(buf, "ip daddr { 10.83.1.1 } tcp dport { 5102, 80 } counter drop\n"));
	CU_ASSERT_PTR_NULL(strstr(buf, "ip6"));
	/* Bounded: a small buffer is refused, and left terminated. */
	c = base_cfg();
	CU_ASSERT_EQUAL(mps_host_ruleset(&c, "fjmps_1_0", buf, 60), -ENOSPC);
	CU_ASSERT_TRUE(strlen(buf) < 60);
	CU_ASSERT_EQUAL(mps_host_ruleset(&c, "fjmps_1_0", buf, 0), -ENOSPC);
	/* Names that nft would take as syntax are refused. */
	CU_ASSERT_EQUAL(mps_host_ruleset(&c, "a b", buf, sizeof(buf)), -EINVAL);
	CU_ASSERT_EQUAL(mps_host_ruleset(&c, "x;flush ruleset", buf, sizeof(buf)), -EINVAL);
	CU_ASSERT_EQUAL(mps_host_ruleset(&c, "", buf, sizeof(buf)), -EINVAL);
	CU_ASSERT_EQUAL(mps_host_ruleset(&c, "abcdefghijabcdefghijabcdefghijab", buf, sizeof(buf)),
			-EINVAL);
	c.naddrs = 0;
	CU_ASSERT_EQUAL(mps_host_ruleset(&c, "t", buf, sizeof(buf)), -EINVAL);
}

/* The program of pkt's family accepts it exactly when mps_host_match() does. */
static void bpf_agrees(const struct mps_host_config *c, const uint8_t *pkt, size_t len)
{
	struct sock_filter prog[MPS_HOST_BPF_MAX];
	int n = mps_host_bpf(c, pkt[0] >> 4 == 6 ? 6 : 4, prog, MPS_HOST_BPF_MAX);
	size_t iplen;
	long r;

	CU_ASSERT_TRUE_FATAL(n > 0);
	r = mps_host_bpf_run(prog, n, pkt, len);
	CU_ASSERT_TRUE(r >= 0);
	CU_ASSERT_EQUAL(r != 0, mps_host_match(c, pkt, len, &iplen) == 1);
	if (r > 0)
		CU_ASSERT_TRUE((size_t)r >= 65535);
}

static void test_bpf(void)
{
	struct mps_host_config c = base_cfg();
	struct sock_filter prog[MPS_HOST_BPF_MAX];
	static const char *const dst4[] = { "10.83.1.1", "10.83.2.1", "10.83.3.1", "10.83.1.2" };
	static const char *const dst6[] = { "fd83:1::1", "fd83:1::2", "fd84:1::1", "fd83:2::1" };
	static const uint16_t ports[] = { 5102, 5103, 49151, 49152, 65535, 80 };
	uint8_t p[256];
	size_t n, i, k;
	unsigned int e;

	for (e = 0; e < 2; e++) {
		c.ephemeral = e;
		for (i = 0; i < 4; i++) {
			for (k = 0; k < sizeof(ports) / sizeof(ports[0]); k++) {
				n = build(p, "10.83.1.2", dst4[i], ports[k], 5, 0);
				bpf_agrees(&c, p, n);
				n = build(p, "fd83:9::2", dst6[i], ports[k], 5, 0);
				bpf_agrees(&c, p, n);
			}
		}
	}
	/* Fragments, other protocols, IPv4 options (the port moves), extension headers. */
	n = build(p, "10.83.1.2", "10.83.1.1", 5102, 8, 0);
	p[6] = 0x20;
	bpf_agrees(&c, p, n);
	p[6] = 0x40;
	p[9] = 17;
	bpf_agrees(&c, p, n);
	p[9] = 6;
	memmove(p + 24, p + 20, n - 20);
	p[0] = 0x46;
	p[3] = (uint8_t)(n + 4);
	memset(p + 20, 1, 4);
	bpf_agrees(&c, p, n + 4);
	n = build(p, "fd83:9::2", "fd83:1::1", 5102, 8, 0);
	p[6] = 43;
	bpf_agrees(&c, p, n);
	/* Many IPv6 addresses and ports still fit, and a small cap is refused. */
	c = base_cfg();
	for (i = 0; i < MPS_HOST_MAX_ADDRS; i++) {
		c.addrs[i] = ip("fd83:1::1");
		c.addrs[i].addr[15] = (uint8_t)(i + 1);
	}
	c.naddrs = MPS_HOST_MAX_ADDRS;
	for (i = 0; i < MPS_HOST_MAX_PORTS; i++)
		c.ports[i] = (uint16_t)(5000 + i);
	c.nports = MPS_HOST_MAX_PORTS;
	CU_ASSERT_TRUE(mps_host_bpf(&c, 6, prog, MPS_HOST_BPF_MAX) > 0);
	n = build(p, "fd83:9::2", "fd83:1::9", 5007, 8, 0);
	bpf_agrees(&c, p, n);
	n = build(p, "fd83:9::2", "fd83:1::a", 5007, 8, 0);
	bpf_agrees(&c, p, n);
	CU_ASSERT_EQUAL(mps_host_bpf(&c, 6, prog, 10), -ENOSPC);
	CU_ASSERT_EQUAL(mps_host_bpf(&c, 5, prog, MPS_HOST_BPF_MAX), -EINVAL);
}

static void test_ports_check(void)
{
	char why[256];

	CU_ASSERT_EQUAL(mps_host_ports_check("32768\t60999\n", "\n", why, sizeof(why)),
			-EADDRINUSE);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "port 49152"));
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "\"32768 49151\""));
	CU_ASSERT_EQUAL(mps_host_ports_check("32768\t49151\n", "\n", why, sizeof(why)), 0);
	CU_ASSERT_EQUAL(mps_host_ports_check("1024 2000", "", why, sizeof(why)), 0);
	/* The overlap reserved: the kernel will not hand those out either. */
	CU_ASSERT_EQUAL(
		mps_host_ports_check("32768\t60999\n", "8080,49152-60999\n", why, sizeof(why)), 0);
	CU_ASSERT_EQUAL(mps_host_ports_check("32768\t60999\n", "49152-60998,1\n", why, sizeof(why)),
			-EADDRINUSE);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "port 60999"));
	CU_ASSERT_EQUAL(mps_host_ports_check("61000 65000", "", why, sizeof(why)), -EADDRINUSE);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "port 61000"));
	CU_ASSERT_EQUAL(mps_host_ports_check("abc", "", why, sizeof(why)), -EINVAL);
	CU_ASSERT_EQUAL(mps_host_ports_check("60000 50000", "", why, sizeof(why)), -EINVAL);
	CU_ASSERT_EQUAL(mps_host_ports_check("1 70000", "", why, sizeof(why)), -EINVAL);
	CU_ASSERT_EQUAL(mps_host_ports_check("1 2", "5-x", why, sizeof(why)), -EINVAL);
	CU_ASSERT_EQUAL(mps_host_ports_check("1 2", "9-5", why, sizeof(why)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "ip_local_reserved_ports"));
}

/* Failures that come before any socket or rule: no root, no traffic. */
static void test_open_refused(void)
{
	struct mps_host_config c = base_cfg();
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	char why[256];
	int err = 0, fd;

	c.naddrs = 0;
	CU_ASSERT_PTR_NULL(mps_host_open(&c, &err, why, sizeof(why)));
	CU_ASSERT_EQUAL(err, -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "local addresses"));
	/* An address that is not this host's (TEST-NET-1 is nobody's). */
	c = base_cfg();
	c.ephemeral = false;
	c.addrs[0] = ip("192.0.2.1");
	c.naddrs = 1;
	CU_ASSERT_PTR_NULL(mps_host_open(&c, &err, why, sizeof(why)));
	CU_ASSERT_EQUAL(err, -EADDRNOTAVAIL);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "192.0.2.1 is not an address of this host"));
	/* A port a kernel socket listens on is refused, naming it. */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	CU_ASSERT_TRUE_FATAL(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CU_ASSERT_EQUAL_FATAL(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	CU_ASSERT_EQUAL(listen(fd, 1), 0);
	CU_ASSERT_EQUAL(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	c.addrs[0] = ip("127.0.0.1");
	c.ports[0] = ntohs(sa.sin_port);
	CU_ASSERT_PTR_NULL(mps_host_open(&c, &err, why, sizeof(why)));
	CU_ASSERT_EQUAL(err, -EADDRINUSE);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "is taken by a kernel socket"));
	close(fd);
	CU_ASSERT_EQUAL(mps_host_close(NULL), 0);
}

static const struct fj_test tests[] = {
	{ "config_check", test_config_check },
	{ "match_v4", test_match_v4 },
	{ "match_v6", test_match_v6 },
	{ "csum_flags", test_csum_flags },
	{ "ruleset", test_ruleset },
	{ "bpf", test_bpf },
	{ "ports_check", test_ports_check },
	{ "open_refused", test_open_refused },
	{ NULL, NULL },
};

const struct fj_suite fj_suite_mps_host = { "mps_host", NULL, NULL, tests };
