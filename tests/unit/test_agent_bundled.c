/*
 * agent_bundled: what the agent knows about its bundled stack (config,
 * addresses per ISP), the info text the kernel responder answers with and its
 * lookup, a missing TUN device, and which experiment types it runs. No root needed; the runs themselves are in
 * agent_exp_ns (root) and tests/e2e/testbed_campaign.sh.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agent_config.h"
#include "bundled.h"
#include "exp.h"
#include "fj_test.h"

#define HEAD                                                                                       \
	"controller_url = \"http://127.0.0.1:8080\";\n"                                            \
	"site = \"oslo\";\nnode = \"n1\";\nenrollment_secret = \"s3cret\";\n"                      \
	"state_dir = \"/tmp/st\";\nspool_dir = \"/tmp/sp\";\n"
#define IFACE "interfaces = ( { name = \"e\"; isp = \"x\"; } );\n"

static void test_config(void)
{
	static const char *const text = HEAD
		"bundled_tun = \"fjtun0\";\nbundled_responder_tun = \"fjtun0r\";\n"
		"interfaces = ( { name = \"uninett\"; isp = \"uninett\"; bundled_ipv4 = "
		"\"10.1.1.128\"; bundled_ipv6 = \"fd00:1:0:1::1:0\"; bundled_responder_ipv4 = "
		"\"10.1.1.160\"; },\n"
		"  { name = \"ice\"; isp = \"ice\"; },\n"
		"  { name = \"telenor\"; isp = \"tn\"; bundled_responder_ipv6 = \"fd00:2::1:100\"; "
		"} );\n";
	struct agent_config c;
	struct bundled_cfg b;
	char err[256] = "";

	CU_ASSERT_EQUAL_FATAL(agent_config_parse(text, &c, err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(c.bundled_tun, "fjtun0");
	CU_ASSERT_STRING_EQUAL(c.bundled_responder_tun, "fjtun0r");
	CU_ASSERT_STRING_EQUAL(c.ifaces[0].bundled[0], "10.1.1.128");
	CU_ASSERT_STRING_EQUAL(c.ifaces[0].bundled[1], "fd00:1:0:1::1:0");
	CU_ASSERT_STRING_EQUAL(c.ifaces[0].bundled_responder[0], "10.1.1.160");
	CU_ASSERT_STRING_EQUAL(c.ifaces[0].bundled_responder[1], "");
	bundled_cfg_from_agent(&c, &b);
	CU_ASSERT_STRING_EQUAL(b.tun, "fjtun0");
	CU_ASSERT_STRING_EQUAL(b.resp_tun, "fjtun0r");
	/* ice has no bundled address: not listed. */
	CU_ASSERT_EQUAL_FATAL(b.n_isps, 2);
	CU_ASSERT_STRING_EQUAL(b.isps[0].isp, "uninett");
	CU_ASSERT_STRING_EQUAL(b.isps[1].isp, "tn");
	CU_ASSERT_STRING_EQUAL(b.isps[1].resp[1], "fd00:2::1:100");
}

static void test_config_errors(void)
{
	static const struct {
		const char *text, *want;
	} bad[] = {
		{ HEAD
		  "interfaces = ( { name = \"e\"; isp = \"x\"; bundled_ipv4 = \"fd00::1\"; } );",
		  "'interfaces[0].bundled_ipv4': \"fd00::1\" is not an IPv4 address" },
		{ HEAD
		  "interfaces = ( { name = \"e\"; isp = \"x\"; bundled_ipv6 = \"10.0.0.1\"; } );",
		  "'interfaces[0].bundled_ipv6': \"10.0.0.1\" is not an IPv6 address" },
		{ HEAD
		  "interfaces = ( { name = \"e\"; isp = \"x\"; bundled_responder_ipv4 = 7; } );",
		  "'interfaces[0].bundled_responder_ipv4': must be an address literal" },
		{ HEAD
		  "interfaces = ( { name = \"e\"; isp = \"x\"; bundled_ip = \"10.0.0.1\"; } );",
		  "'interfaces[0].bundled_ip': unknown key" },
		{ HEAD "interfaces = ( { name = \"e\"; isp = \"x\"; } );\nbundled_tun = \"t0\";\n"
		       "bundled_responder_tun = \"t0\";",
		  "'bundled_responder_tun': must differ from bundled_tun" },
		{ HEAD "interfaces = ( { name = \"e\"; isp = \"x\"; } );\n"
		       "bundled_tun = \"a-name-longer-than-15\";",
		  "'bundled_tun': too long" },
		{ HEAD IFACE "bundled_rcvbuf_max = 1000;",
		  "'bundled_rcvbuf_max': must be between 262144 and 1073741824 (got 1000)" },
		{ HEAD IFACE "bundled_sndbuf_max = 2147483648L;",
		  "'bundled_sndbuf_max': must be between 262144 and 1073741824 (got 2147483648)" },
		{ HEAD IFACE "bundled_sndbuf_max = \"4M\";",
		  "'bundled_sndbuf_max': must be an integer" },
		{ HEAD IFACE "bundled_rcvbuf = 4194304;", "bundled_rcvbuf" },
	};
	unsigned int i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct agent_config c;
		char err[256] = "";

		CU_ASSERT_EQUAL(agent_config_parse(bad[i].text, &c, err, sizeof(err)), -EINVAL);
		if (!strstr(err, bad[i].want))
			fprintf(stderr, "\ncase %u: want \"%s\" in \"%s\"\n", i, bad[i].want, err);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, bad[i].want));
	}
}

/*
 * The buffer caps (unless configured: 4 MiB each),
 * carried into every bundled stack's settings, which libmps accepts.
 */
/*
 * bundled_host: the interfaces' bundled addresses serve runs and responder
 * alike, the responder on bundled_responder_port (responder_port + 1 by
 * default), which the info text carries as a fourth field.
 */
static void test_host_config(void)
{
	static const char *const text = HEAD
		"bundled_host = true;\nresponder_port = 7000;\n"
		"interfaces = ( { name = \"e0\"; isp = \"a\"; bundled_ipv4 = \"10.1.1.2\"; },\n"
		"  { name = \"e1\"; isp = \"b\"; bundled_ipv6 = \"fd00:2::2\"; } );\n";
	struct agent_config c;
	struct bundled_cfg b;
	char err[256] = "", info[BUNDLED_INFO_MAX + 1], addr[64];

	CU_ASSERT_EQUAL_FATAL(agent_config_parse(text, &c, err, sizeof(err)), 0);
	CU_ASSERT(c.bundled_host);
	CU_ASSERT_EQUAL(c.bundled_responder_port, 7001);
	bundled_cfg_from_agent(&c, &b);
	CU_ASSERT(b.host);
	CU_ASSERT(bundled_enabled(&b));
	CU_ASSERT_EQUAL(b.resp_port, 7001);
	CU_ASSERT_STRING_EQUAL(b.isps[0].resp[0], "10.1.1.2");
	CU_ASSERT_STRING_EQUAL(b.isps[1].resp[1], "fd00:2::2");
	CU_ASSERT(bundled_info_text(&b, info, sizeof(info)) > 0);
	CU_ASSERT_STRING_EQUAL(info, "a 10.1.1.2 - 7001\nb - fd00:2::2 7001\n");
	/* The address lookup reads the first three fields as before. */
	CU_ASSERT_EQUAL(bundled_info_lookup(info, "b", 6, addr, sizeof(addr)), 0);
	CU_ASSERT_STRING_EQUAL(addr, "fd00:2::2");
	CU_ASSERT_EQUAL(bundled_info_port(info, "a", 7000), 7001);
	CU_ASSERT_EQUAL(bundled_info_port("a 10.1.1.2 -\n", "a", 7000), 7000);
	CU_ASSERT_EQUAL(bundled_info_port(info, "c", 7000), -ENOENT);
	CU_ASSERT_EQUAL(bundled_info_port("a 10.1.1.2 - 0\n", "a", 7000), -EPROTO);
	CU_ASSERT_EQUAL(bundled_info_port("a 10.1.1.2 - 65536\n", "a", 7000), -EPROTO);
	CU_ASSERT_EQUAL(bundled_info_port("a 10.1.1.2 - 80 x\n", "a", 7000), -EPROTO);
	CU_ASSERT_EQUAL(bundled_info_port("a 10.1.1.2\n", "a", 7000), -EPROTO);

	CU_ASSERT_EQUAL_FATAL(agent_config_parse(HEAD
						 "bundled_host = true;\n"
						 "bundled_responder_port = 9000;\n"
						 "interfaces = ( { name = \"e0\"; isp = \"a\"; "
						 "bundled_ipv4 = \"10.1.1.2\"; } );\n",
						 &c, err, sizeof(err)),
			      0);
	CU_ASSERT_EQUAL(c.bundled_responder_port, 9000);
	/* Without it: TUN (or none), and no port in the info text. */
	CU_ASSERT_EQUAL_FATAL(agent_config_parse(HEAD IFACE, &c, err, sizeof(err)), 0);
	CU_ASSERT_FALSE(c.bundled_host);
	bundled_cfg_from_agent(&c, &b);
	CU_ASSERT_FALSE(bundled_enabled(&b));
}

/* Every wrong bundled_host setup is refused, naming the setting and the fix. */
static void test_host_config_errors(void)
{
#define HIF "interfaces = ( { name = \"e0\"; isp = \"a\"; bundled_ipv4 = \"10.1.1.2\"; } );\n"
	static const struct {
		const char *text, *want;
	} bad[] = {
		{ HEAD "bundled_host = 1;\n" HIF, "'bundled_host': must be true or false" },
		{ HEAD "bundled_host = true;\nbundled_tun = \"t0\";\n" HIF,
		  "'bundled_host': excludes bundled_tun and bundled_responder_tun" },
		{ HEAD "bundled_host = true;\nbundled_responder_tun = \"t1\";\n" HIF,
		  "'bundled_host': excludes bundled_tun" },
		{ HEAD "bundled_host = true;\n" IFACE,
		  "'bundled_host': needs bundled_ipv4 or bundled_ipv6 on at least one interface" },
		{ HEAD "bundled_host = true;\ninterfaces = ( { name = \"e0\"; isp = \"a\"; "
		       "bundled_ipv4 = \"10.1.1.2\"; bundled_responder_ipv4 = \"10.1.1.3\"; } );\n",
		  "'interfaces[0].bundled_responder_ipv4': not with bundled_host" },
		{ HEAD "bundled_host = true;\nbundled_responder_port = 7470;\n" HIF,
		  "'bundled_responder_port': must differ from responder_port (7470)" },
		{ HEAD "bundled_host = true;\nbundled_responder_port = 50000;\n" HIF,
		  "'bundled_responder_port': must be a port between 1 and 49151" },
		{ HEAD "bundled_host = true;\nbundled_responder_port = \"x\";\n" HIF,
		  "'bundled_responder_port': must be a port between 1 and 49151" },
		{ HEAD "bundled_host = true;\nresponder_port = 49151;\n" HIF,
		  "responder_port + 1 (49152) is in 49152-65535" },
		{ HEAD "bundled_responder_port = 7471;\n" IFACE,
		  "'bundled_responder_port': only with bundled_host = true" },
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct agent_config c;
		char err[256] = "";

		CU_ASSERT_EQUAL(agent_config_parse(bad[i].text, &c, err, sizeof(err)), -EINVAL);
		if (!strstr(err, bad[i].want)) {
			fprintf(stderr, "\ncase %zu: want \"%s\" in \"%s\"\n", i, bad[i].want, err);
			CU_FAIL("error message does not name the setting");
		}
	}
#undef HIF
}

static void test_buffers(void)
{
	static const char *const caps[] = {
		HEAD IFACE,
		HEAD IFACE "bundled_rcvbuf_max = 16777216;\nbundled_sndbuf_max = 262144;\n",
	};
	static const uint32_t want[2][2] = { { 4u << 20, 4u << 20 }, { 16u << 20, 256u << 10 } };
	unsigned int i;

	for (i = 0; i < 2; i++) {
		struct agent_config c;
		struct bundled_cfg b;
		struct mps_config mc = { .msl_us = 1000000, .rand_bytes = bundled_rand };
		struct mps_stack *st;
		char err[256] = "";
		int rc = 0;

		CU_ASSERT_EQUAL_FATAL(agent_config_parse(caps[i], &c, err, sizeof(err)), 0);
		CU_ASSERT_EQUAL(c.bundled_rcvbuf_max, want[i][0]);
		CU_ASSERT_EQUAL(c.bundled_sndbuf_max, want[i][1]);
		bundled_cfg_from_agent(&c, &b);
		bundled_cfg_buffers(&b, &mc);
		CU_ASSERT_EQUAL(mc.rcvbuf, 0);
		CU_ASSERT_EQUAL(mc.sndbuf, 0);
		CU_ASSERT_EQUAL(mc.rcvbuf_max, want[i][0]);
		CU_ASSERT_EQUAL(mc.sndbuf_max, want[i][1]);
		st = mps_stack_create(&mc, &rc);
		CU_ASSERT_PTR_NOT_NULL(st);
		CU_ASSERT_EQUAL(rc, 0);
		if (st)
			mps_stack_destroy(st);
	}
}

static void test_info(void)
{
	struct bundled_cfg b = { .n_isps = 3 };
	char text[BUNDLED_INFO_MAX + 1], a[64], small[20];

	snprintf(b.isps[0].isp, sizeof(b.isps[0].isp), "uninett");
	snprintf(b.isps[0].resp[0], sizeof(b.isps[0].resp[0]), "10.1.2.160");
	snprintf(b.isps[0].resp[1], sizeof(b.isps[0].resp[1]), "fd00:1:0:2::1:100");
	snprintf(b.isps[1].isp, sizeof(b.isps[1].isp), "ice");
	snprintf(b.isps[1].resp[1], sizeof(b.isps[1].resp[1]), "fd00:3:0:2::1:100");
	/* A client address only: nothing to tell a peer. */
	snprintf(b.isps[2].isp, sizeof(b.isps[2].isp), "telenor");
	snprintf(b.isps[2].addr[0], sizeof(b.isps[2].addr[0]), "10.2.2.128");
	CU_ASSERT_EQUAL(bundled_info_text(&b, text, sizeof(text)), (int)strlen(text));
	CU_ASSERT_STRING_EQUAL(text, "uninett 10.1.2.160 fd00:1:0:2::1:100\n"
				     "ice - fd00:3:0:2::1:100\n");
	CU_ASSERT_EQUAL(bundled_info_text(&b, small, sizeof(small)), -ENOSPC);
	CU_ASSERT_EQUAL(bundled_info_lookup(text, "uninett", 4, a, sizeof(a)), 0);
	CU_ASSERT_STRING_EQUAL(a, "10.1.2.160");
	CU_ASSERT_EQUAL(bundled_info_lookup(text, "uninett", 6, a, sizeof(a)), 0);
	CU_ASSERT_STRING_EQUAL(a, "fd00:1:0:2::1:100");
	CU_ASSERT_EQUAL(bundled_info_lookup(text, "ice", 6, a, sizeof(a)), 0);
	CU_ASSERT_STRING_EQUAL(a, "fd00:3:0:2::1:100");
	CU_ASSERT_EQUAL(bundled_info_lookup(text, "ice", 4, a, sizeof(a)), -ENOENT);
	CU_ASSERT_EQUAL(bundled_info_lookup(text, "telenor", 4, a, sizeof(a)), -ENOENT);
	CU_ASSERT_EQUAL(bundled_info_lookup(text, "unin", 4, a, sizeof(a)), -ENOENT);
	/* What a peer must not be able to slip in. */
	CU_ASSERT_EQUAL(bundled_info_lookup("uninett 10.1.2.999 -\n", "uninett", 4, a, sizeof(a)),
			-EPROTO);
	CU_ASSERT_EQUAL(bundled_info_lookup("uninett 10.1.2.1\n", "uninett", 4, a, sizeof(a)),
			-EPROTO);
	CU_ASSERT_EQUAL(bundled_info_lookup("uninett ::1 -\n", "uninett", 4, a, sizeof(a)),
			-EPROTO);
	CU_ASSERT_EQUAL(bundled_info_lookup("", "uninett", 4, a, sizeof(a)), -ENOENT);
}

static void test_addr(void)
{
	struct mps_addr m;
	char s[64];

	CU_ASSERT_EQUAL(bundled_addr("10.1.2.160", 7470, &m), 0);
	CU_ASSERT_EQUAL(m.family, 4);
	CU_ASSERT_EQUAL(m.port, 7470);
	bundled_addr_str(&m, s, sizeof(s));
	CU_ASSERT_STRING_EQUAL(s, "10.1.2.160");
	CU_ASSERT_EQUAL(bundled_addr("fd00:1::1:100", 0, &m), 0);
	CU_ASSERT_EQUAL(m.family, 6);
	bundled_addr_str(&m, s, sizeof(s));
	CU_ASSERT_STRING_EQUAL(s, "fd00:1::1:100");
	CU_ASSERT_EQUAL(bundled_addr("10.1.2.160/24", 0, &m), -EINVAL);
	CU_ASSERT_EQUAL(bundled_addr("", 0, &m), -EINVAL);
}

/* A device that is not there is named, never created (it would have no routes). */
static void test_missing_tun(void)
{
	struct mps_config cfg = { 0 };
	struct bundled_io io;
	char err[200] = "";

	CU_ASSERT_EQUAL(bundled_io_open(&io, "fjbt-absent", &cfg, 1, err, sizeof(err)), -ENODEV);
	CU_ASSERT_STRING_EQUAL(err, "TUN device fjbt-absent does not exist");
	CU_ASSERT_EQUAL(bundled_io_open(&io, "", &cfg, 0, err, sizeof(err)), -ENODEV);
	CU_ASSERT_STRING_EQUAL(err, "no TUN device configured");
}

/*
 * Which types the bundled stack runs: bulk, echo, rr, handover and probe pass
 * the check before the fork; a bundled run on an agent without bundled_tun is
 * refused whatever its type.
 */
static void test_types(void)
{
	static const Fjord__V1__ExperimentType ok[] = {
		FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_BULK,
		FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_ECHO,
		FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_RR,
		FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_HANDOVER,
	};
	Fjord__V1__RunCommand cmd = FJORD__V1__RUN_COMMAND__INIT;
	Fjord__V1__Run run = FJORD__V1__RUN__INIT;
	Fjord__V1__ExperimentSpec spec = FJORD__V1__EXPERIMENT_SPEC__INIT;
	struct bundled_cfg b = { .tun = "fjtun0" };
	char why[200];
	unsigned int i;

	run.id = "r1";
	run.stack = FJORD__V1__STACK__STACK_BUNDLED;
	cmd.run = &run;
	cmd.spec = &spec;
	bundled_set(&b);
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		spec.type = ok[i];
		why[0] = 0;
		CU_ASSERT_EQUAL(exp_check(&cmd, why, sizeof(why)), 0);
		CU_ASSERT_STRING_EQUAL(why, "");
	}
	/* Probe runs on both stacks (exp_probe_bundled.c). */
	spec.type = FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_PROBE;
	why[0] = 0;
	CU_ASSERT_EQUAL(exp_check(&cmd, why, sizeof(why)), 0);
	CU_ASSERT_STRING_EQUAL(why, "");
	run.stack = FJORD__V1__STACK__STACK_KERNEL;
	CU_ASSERT_EQUAL(exp_check(&cmd, why, sizeof(why)), 0);
	run.stack = FJORD__V1__STACK__STACK_BUNDLED;
	bundled_set(NULL);
	spec.type = FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_RR;
	CU_ASSERT_EQUAL(exp_check(&cmd, why, sizeof(why)), -ENOTSUP);
	CU_ASSERT_STRING_EQUAL(why, "this agent has no bundled stack (neither bundled_tun nor "
				    "bundled_host is configured)");
}

static const struct fj_test tests[] = {
	{ "config", test_config },
	{ "config_errors", test_config_errors },
	{ "buffers", test_buffers },
	{ "info", test_info },
	{ "addr", test_addr },
	{ "missing_tun", test_missing_tun },
	{ "types", test_types },
	{ "host_config", test_host_config },
	{ "host_config_errors", test_host_config_errors },
	{ NULL, NULL },
};

const struct fj_suite fj_suite_agent_bundled = { "agent_bundled", NULL, NULL, tests };
