/* Topology parser, unit parsers and address plan of the emulated testbed. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "fj_test.h"
#include "../../deploy/testbed/tb_config.h"

static struct tb_topology topo;
static char err[TB_ERR_MAX];

#define HEAD                                                                                       \
	"name = \"t\";\n"                                                                          \
	"controller = { ipv4 = \"198.18.0.10/24\"; ipv6 = \"fd00:ff::10/64\"; };\n"                \
	"isps = ( { name = \"a\"; ipv4 = \"10.1.0.0/16\"; ipv6 = \"fd00:1::/48\"; },\n"            \
	"  { name = \"b\"; ipv4 = \"10.2.0.0/16\"; ipv6 = \"fd00:2::/48\";\n"                      \
	"    inside_ipv4 = \"100.64.0.0/16\"; middlebox = \"nat\"; } );\n"

static int load(const char *sites)
{
	char text[4096];

	snprintf(text, sizeof(text), "%ssites = (%s);\n", HEAD, sites);
	err[0] = 0;
	return tb_config_load_string(text, &topo, err, sizeof(err));
}

/* Loads a broken file and checks the message names the setting. */
static void expect_error(const char *sites, const char *needle)
{
	CU_ASSERT_EQUAL(load(sites), -EINVAL);
	if (!strstr(err, needle))
		fprintf(stderr, "\n  error \"%s\" lacks \"%s\"\n", err, needle);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, needle));
}

/* The responder TUN: named, derived, and every clash refused. */
static void test_responder_tun(void)
{
	static const char up[] = " uplinks = ( { isp = \"a\"; } ); }";
	char buf[512];

	snprintf(buf, sizeof(buf),
		 "{ name = \"s1\"; nodes = ( { name = \"n1\"; tun = \"t0\"; responder_tun = "
		 "\"rt\"; } );%s",
		 up);
	CU_ASSERT_EQUAL_FATAL(load(buf), 0);
	CU_ASSERT_STRING_EQUAL(topo.sites[0].nodes[0].resp_tun, "rt");
	snprintf(buf, sizeof(buf),
		 "{ name = \"s1\"; nodes = ( { name = \"n1\"; tun = \"t0\"; responder_tun = "
		 "\"t0\"; } );%s",
		 up);
	expect_error(buf, "responder_tun must differ from tun");
	snprintf(buf, sizeof(buf),
		 "{ name = \"s1\"; nodes = ( { name = \"n1\"; tun = \"t0\"; },"
		 " { name = \"n2\"; tun = \"t0r\"; } );%s",
		 up);
	expect_error(buf, "TUN \"t0r\" is used twice in site \"s1\"");
	snprintf(buf, sizeof(buf),
		 "{ name = \"s1\"; nodes = ( { name = \"n1\"; tun = \"t0\"; responder_tun = "
		 "\"a\"; } );%s",
		 up);
	expect_error(buf, "TUN \"a\" has the name of an ISP uplink");
	snprintf(buf, sizeof(buf),
		 "{ name = \"s1\"; nodes = ( { name = \"n1\"; tun = \"tun-fifteen-ch\"; } );%s",
		 up);
	CU_ASSERT_EQUAL_FATAL(load(buf), 0);
	CU_ASSERT_STRING_EQUAL(topo.sites[0].nodes[0].resp_tun, "tun-fifteen-chr");
	snprintf(buf, sizeof(buf),
		 "{ name = \"s1\"; nodes = ( { name = \"n1\"; tun = \"tun-fifteen-chr\"; } );%s",
		 up);
	expect_error(buf, "too long to name its responder TUN after it: set responder_tun");
}

static const char good_site[] =
	"{ name = \"s1\"; nodes = ( { name = \"n1\"; tun = \"tun0\"; },"
	" { name = \"n2\"; tun = \"tun1\"; } );"
	" uplinks = ( { isp = \"a\"; rate = \"100mbit\"; delay = \"20ms\"; jitter = \"2ms\";"
	" loss = \"1.5%\"; mtu = 1400; middlebox = \"strip-mptcp\"; },"
	" { isp = \"b\"; rate = \"10mbit\"; delay = \"5ms\"; loss_model = \"gilbert-elliott\";"
	" ge_p = 0.01; ge_r = \"30%\"; reorder = \"1%\"; } ); }";

static void test_parse_good(void)
{
	const struct tb_uplink *u;

	CU_ASSERT_EQUAL_FATAL(load(good_site), 0);
	CU_ASSERT_STRING_EQUAL(topo.name, "t");
	CU_ASSERT_EQUAL(topo.n_isps, 2);
	CU_ASSERT_EQUAL(topo.n_sites, 1);
	CU_ASSERT_EQUAL(topo.sites[0].n_nodes, 2);
	CU_ASSERT_STRING_EQUAL(topo.sites[0].nodes[1].tun, "tun1");
	u = &topo.sites[0].uplinks[0];
	CU_ASSERT_EQUAL(u->params[TB_DIR_UP].rate_bps, 100000000ull);
	CU_ASSERT_EQUAL(u->params[TB_DIR_UP].delay_us, 20000);
	CU_ASSERT_EQUAL(u->params[TB_DIR_UP].jitter_us, 2000);
	CU_ASSERT_DOUBLE_EQUAL(u->params[TB_DIR_UP].loss, 0.015, 1e-12);
	CU_ASSERT_EQUAL(u->mtu, 1400);
	CU_ASSERT_EQUAL(u->middlebox, TB_MB_STRIP_MPTCP);
	u = &topo.sites[0].uplinks[1];
	CU_ASSERT_EQUAL(u->middlebox, TB_MB_NAT); /* inherited from the ISP */
	CU_ASSERT_EQUAL(u->mtu, 1500);
	CU_ASSERT_EQUAL(u->params[TB_DIR_UP].loss_model, TB_LOSS_GE);
	CU_ASSERT_DOUBLE_EQUAL(u->params[TB_DIR_UP].ge_p, 0.01, 1e-12);
	CU_ASSERT_DOUBLE_EQUAL(u->params[TB_DIR_UP].ge_r, 0.30, 1e-12);
	CU_ASSERT_DOUBLE_EQUAL(u->params[TB_DIR_UP].reorder, 0.01, 1e-12);
	CU_ASSERT_EQUAL(u->params[TB_DIR_UP].buffer_us, 50000);
	CU_ASSERT_EQUAL(
		memcmp(&u->params[TB_DIR_UP], &u->params[TB_DIR_DOWN], sizeof(u->params[0])), 0);
}

/* Asymmetric links: a suffix picks one direction. */
static void test_directions(void)
{
	struct tb_link_params p[2];
	char e[TB_ERR_MAX];
	const struct tb_uplink *u;

	CU_ASSERT_EQUAL_FATAL(
		load("{ name = \"s1\"; nodes = ( { name = \"n1\"; tun = \"t0\"; } );"
		     " uplinks = ( { isp = \"a\"; rate = \"20mbit\"; rate_up = \"2mbit\";"
		     " delay = \"30ms\"; loss_down = \"1%\"; } ); }"),
		0);
	u = &topo.sites[0].uplinks[0];
	CU_ASSERT_EQUAL(u->params[TB_DIR_UP].rate_bps, 2000000);
	CU_ASSERT_EQUAL(u->params[TB_DIR_DOWN].rate_bps, 20000000);
	CU_ASSERT_EQUAL(u->params[TB_DIR_UP].delay_us, 30000);
	CU_ASSERT_EQUAL(u->params[TB_DIR_DOWN].delay_us, 30000);
	CU_ASSERT_DOUBLE_EQUAL(u->params[TB_DIR_UP].loss, 0, 1e-12);
	CU_ASSERT_DOUBLE_EQUAL(u->params[TB_DIR_DOWN].loss, 0.01, 1e-12);
	expect_error("{ name = \"s1\"; nodes = ( { name = \"n1\"; tun = \"t0\"; } );"
		     " uplinks = ( { isp = \"a\"; delay_down = \"soon\"; } ); }",
		     "uplinks.[0].delay_down: \"soon\" is not a duration");
	expect_error("{ name = \"s1\"; nodes = ( { name = \"n1\"; tun = \"t0\"; } );"
		     " uplinks = ( { isp = \"a\"; delay_sideways = \"1ms\"; } ); }",
		     "unknown uplink setting");
	expect_error("{ name = \"s1\"; nodes = ( { name = \"n1\"; tun = \"t0\"; } );"
		     " uplinks = ( { isp = \"a\"; delay = \"5ms\"; jitter_down = \"6ms\"; } ); }",
		     "jitter (6000 us) is larger than delay (5000 us) going down");
	/* At run time: all or nothing. */
	tb_link_params_default(&p[0]);
	tb_link_params_default(&p[1]);
	CU_ASSERT_EQUAL(tb_link_set_dirs(p, "delay_up", "7ms", e, sizeof(e)), 0);
	CU_ASSERT_EQUAL(p[0].delay_us, 7000);
	CU_ASSERT_EQUAL(p[1].delay_us, 0);
	CU_ASSERT_EQUAL(tb_link_set_dirs(p, "delay", "9ms", e, sizeof(e)), 0);
	CU_ASSERT_EQUAL(p[0].delay_us, 9000);
	CU_ASSERT_EQUAL(p[1].delay_us, 9000);
	CU_ASSERT_EQUAL(tb_link_set_dirs(p, "delay_down", "x", e, sizeof(e)), -EINVAL);
	CU_ASSERT_EQUAL(p[1].delay_us, 9000);
	CU_ASSERT_EQUAL(tb_link_set_dirs(p, "colour_up", "red", e, sizeof(e)), -EINVAL);
}

static void test_errors_name_setting(void)
{
	expect_error("{ name = \"s1\"; nodes = ( { name = \"n1\"; tun = \"t0\"; } );"
		     " uplinks = ( { isp = \"a\"; delay = \"20\"; } ); }",
		     "sites.[0].uplinks.[0].delay: \"20\" is not a duration");
	expect_error("{ name = \"s1\"; nodes = ( { name = \"n1\"; tun = \"t0\"; } );"
		     " uplinks = ( { isp = \"zz\"; } ); }",
		     "sites.[0].uplinks.[0].isp: no ISP named \"zz\"");
	expect_error("{ name = \"s1\"; nodes = ( { name = \"n1\"; tun = \"t0\"; } );"
		     " uplinks = ( { isp = \"a\"; rate = \"fast\"; } ); }",
		     "uplinks.[0].rate: \"fast\" is not a rate");
	expect_error("{ name = \"s1\"; nodes = ( { name = \"n1\"; tun = \"t0\"; } );"
		     " uplinks = ( { isp = \"a\"; loss = \"120%\"; } ); }",
		     "uplinks.[0].loss: \"120%\" is not a probability");
	expect_error("{ name = \"s1\"; nodes = ( { name = \"n1\"; tun = \"t0\"; } );"
		     " uplinks = ( { isp = \"a\"; middlebox = \"firewall\"; } ); }",
		     "uplinks.[0].middlebox: \"firewall\" is not one of none, strip-mptcp");
	CU_ASSERT_EQUAL(load("{ name = \"s1\"; nodes = ( { name = \"n1\"; tun = \"t0\"; } );"
			     " uplinks = ( { isp = \"a\"; middlebox = \"rewrite-seq\"; } ); }"),
			0);
	CU_ASSERT_EQUAL(topo.sites[0].uplinks[0].middlebox, TB_MB_REWRITE_SEQ);
	expect_error("{ name = \"s1\"; nodes = ( { name = \"n1\"; tun = \"t0\"; } );"
		     " uplinks = ( { isp = \"a\"; colour = \"red\"; } ); }",
		     "uplinks.[0].colour: unknown uplink setting");
	expect_error("{ name = \"s1\"; nodes = ( { name = \"n1\"; tun = \"t0\"; } );"
		     " uplinks = ( { isp = \"a\"; delay = \"1ms\"; jitter = \"2ms\"; } ); }",
		     "jitter (2000 us) is larger than delay (1000 us)");
	expect_error("{ name = \"Site\"; nodes = ( { name = \"n1\"; tun = \"t0\"; } );"
		     " uplinks = ( { isp = \"a\"; } ); }",
		     "sites.[0].name: \"Site\" must start with a lower-case letter");
	expect_error("{ name = \"s1\"; uplinks = ( { isp = \"a\"; } ); }",
		     "sites.[0].nodes: missing");
	expect_error("{ name = \"s1\"; nodes = ( { name = \"n1\"; tun = \"t0\"; } );"
		     " uplinks = ( { isp = \"a\"; }, { isp = \"a\"; } ); }",
		     "two uplinks to ISP \"a\"");
	expect_error("{ name = \"s1\"; nodes = ( { name = \"n1\"; tun = \"t0\"; } );"
		     " uplinks = ( { isp = \"a\"; mtu = 100; } ); }",
		     "uplinks.[0].mtu: 100 is outside 1280..9000");
	expect_error("{ name = \"core\"; nodes = ( { name = \"n1\"; tun = \"t0\"; } );"
		     " uplinks = ( { isp = \"a\"; } ); }",
		     "reserved");
	/* A syntax error reports the line. */
	CU_ASSERT_EQUAL(tb_config_load_string("name = \"x\"\nisps = ;", &topo, err, sizeof(err)),
			-EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "<string>:2:"));
	CU_ASSERT_EQUAL(tb_config_load_string("name = \"x\";", &topo, err, sizeof(err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "controller: missing"));
}

static void test_nat_needs_inside(void)
{
	const char *text =
		"name = \"t\";\n"
		"controller = { ipv4 = \"198.18.0.10/24\"; ipv6 = \"fd00:ff::10/64\"; };\n"
		"isps = ( { name = \"a\"; ipv4 = \"10.1.0.0/16\"; ipv6 = \"fd00:1::/48\"; } );\n"
		"sites = ( { name = \"s\"; nodes = ( { name = \"n\"; tun = \"t\"; } );\n"
		"  uplinks = ( { isp = \"a\"; middlebox = \"nat\"; } ); } );\n";

	CU_ASSERT_EQUAL(tb_config_load_string(text, &topo, err, sizeof(err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "needs \"inside_ipv4\""));
}

static void test_bad_prefixes(void)
{
	char text[1024];

	snprintf(
		text, sizeof(text),
		"name = \"t\"; controller = { ipv4 = \"198.18.0.10/24\"; ipv6 = \"fd00:ff::10/64\"; };"
		" isps = ( { name = \"a\"; ipv4 = \"10.1.0.0/24\"; ipv6 = \"fd00:1::/48\"; } );"
		" sites = ( );");
	CU_ASSERT_EQUAL(tb_config_load_string(text, &topo, err, sizeof(err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(
		strstr(err, "isps.[0].ipv4: \"10.1.0.0/24\": the prefix must be /16"));
	snprintf(
		text, sizeof(text),
		"name = \"t\"; controller = { ipv4 = \"198.18.0.1/24\"; ipv6 = \"fd00:ff::10/64\"; };");
	CU_ASSERT_EQUAL(tb_config_load_string(text, &topo, err, sizeof(err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "controller.ipv4: the controller needs a host number"));
	snprintf(
		text, sizeof(text),
		"name = \"t\"; controller = { ipv4 = \"198.18.0.10/24\"; ipv6 = \"fd00:ff::10/64\"; };"
		" isps = ( { name = \"a\"; ipv4 = \"10.1.0.0/16\"; ipv6 = \"fd00:1::1/48\"; } );");
	CU_ASSERT_EQUAL(tb_config_load_string(text, &topo, err, sizeof(err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "isps.[0].ipv6: \"fd00:1::1/48\": host bits are set"));
}

static void test_units(void)
{
	uint64_t bps = 1;
	uint32_t us = 1;
	double p = 1;

	CU_ASSERT_EQUAL(tb_parse_rate("1.5gbit", &bps), 0);
	CU_ASSERT_EQUAL(bps, 1500000000ull);
	CU_ASSERT_EQUAL(tb_parse_rate("500kbit", &bps), 0);
	CU_ASSERT_EQUAL(bps, 500000ull);
	CU_ASSERT_EQUAL(tb_parse_rate("unlimited", &bps), 0);
	CU_ASSERT_EQUAL(bps, 0);
	CU_ASSERT_EQUAL(tb_parse_rate("100", &bps), -EINVAL);
	CU_ASSERT_EQUAL(tb_parse_rate("-5mbit", &bps), -EINVAL);
	CU_ASSERT_EQUAL(tb_parse_rate("1kbit", &bps), -EINVAL);
	CU_ASSERT_EQUAL(tb_parse_duration("250us", &us), 0);
	CU_ASSERT_EQUAL(us, 250);
	CU_ASSERT_EQUAL(tb_parse_duration("1.5s", &us), 0);
	CU_ASSERT_EQUAL(us, 1500000);
	CU_ASSERT_EQUAL(tb_parse_duration("0", &us), 0);
	CU_ASSERT_EQUAL(us, 0);
	CU_ASSERT_EQUAL(tb_parse_duration("11s", &us), -EINVAL);
	CU_ASSERT_EQUAL(tb_parse_duration("5 ms", &us), -EINVAL);
	CU_ASSERT_EQUAL(tb_parse_prob("2.5%", &p), 0);
	CU_ASSERT_DOUBLE_EQUAL(p, 0.025, 1e-12);
	CU_ASSERT_EQUAL(tb_parse_prob("0.3", &p), 0);
	CU_ASSERT_DOUBLE_EQUAL(p, 0.3, 1e-12);
	CU_ASSERT_EQUAL(tb_parse_prob("1.01", &p), -EINVAL);
	CU_ASSERT_EQUAL(tb_parse_prob("nan", &p), -EINVAL);
}

static void test_link_set_format(void)
{
	struct tb_link_params p, q;
	char buf[256], e[TB_ERR_MAX], key[32], val[64];
	char *save = NULL, *tok;

	tb_link_params_default(&p);
	CU_ASSERT_EQUAL(tb_link_set(&p, "rate", "20mbit", e, sizeof(e)), 0);
	CU_ASSERT_EQUAL(tb_link_set(&p, "delay", "12ms", e, sizeof(e)), 0);
	CU_ASSERT_EQUAL(tb_link_set(&p, "jitter", "300us", e, sizeof(e)), 0);
	CU_ASSERT_EQUAL(tb_link_set(&p, "loss", "2%", e, sizeof(e)), 0);
	CU_ASSERT_EQUAL(tb_link_set(&p, "speed", "1", e, sizeof(e)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(e, "unknown link setting \"speed\""));
	CU_ASSERT_EQUAL(tb_link_set(&p, "delay", NULL, e, sizeof(e)), -EINVAL);
	tb_link_format(&p, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(
		buf, "rate=20mbit delay=12ms jitter=300us buffer=50ms loss=2% reorder=0%");
	/* What format prints, set reads back to the same parameters. */
	tb_link_params_default(&q);
	for (tok = strtok_r(buf, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		CU_ASSERT_EQUAL(sscanf(tok, "%31[^=]=%63s", key, val), 2);
		CU_ASSERT_EQUAL(tb_link_set(&q, key, val, e, sizeof(e)), 0);
	}
	CU_ASSERT_EQUAL(memcmp(&p, &q, sizeof(p)), 0);
}

static void test_addresses(void)
{
	struct in_addr a;
	struct in6_addr a6;
	char s[INET6_ADDRSTRLEN];

	CU_ASSERT_EQUAL_FATAL(load(good_site), 0);
	CU_ASSERT_EQUAL(tb_addr_v4(&topo, 0, 0, TB_HOST_CORE, 0, &a), 0);
	CU_ASSERT_STRING_EQUAL(inet_ntop(AF_INET, &a, s, sizeof(s)), "10.1.1.1");
	CU_ASSERT_EQUAL(tb_addr_v4(&topo, 0, 0, TB_HOST_NODE, 1, &a), 0);
	CU_ASSERT_STRING_EQUAL(inet_ntop(AF_INET, &a, s, sizeof(s)), "10.1.1.3");
	CU_ASSERT_EQUAL(tb_addr_v4(&topo, 0, 0, TB_HOST_BUNDLED, 1, &a), 0);
	CU_ASSERT_STRING_EQUAL(inet_ntop(AF_INET, &a, s, sizeof(s)), "10.1.1.129");
	/* NAT uplink: inside block for the site, public host 2 outside. */
	CU_ASSERT_EQUAL(tb_addr_v4(&topo, 0, 1, TB_HOST_NODE, 0, &a), 0);
	CU_ASSERT_STRING_EQUAL(inet_ntop(AF_INET, &a, s, sizeof(s)), "100.64.1.2");
	CU_ASSERT_EQUAL(tb_addr_v4(&topo, 0, 1, TB_HOST_PUBLIC, 0, &a), 0);
	CU_ASSERT_STRING_EQUAL(inet_ntop(AF_INET, &a, s, sizeof(s)), "10.2.1.2");
	CU_ASSERT_EQUAL(tb_addr_v4(&topo, 0, 0, TB_HOST_PUBLIC, 0, &a), -EINVAL);
	CU_ASSERT_EQUAL(tb_addr_v6(&topo, 0, 1, TB_HOST_NODE, 0, &a6), 0);
	CU_ASSERT_STRING_EQUAL(inet_ntop(AF_INET6, &a6, s, sizeof(s)), "fd00:2:0:1::2");
	CU_ASSERT_EQUAL(tb_addr_v6(&topo, 0, 0, TB_HOST_BUNDLED, 1, &a6), 0);
	CU_ASSERT_STRING_EQUAL(inet_ntop(AF_INET6, &a6, s, sizeof(s)), "fd00:1:0:1::1:1");
	/* The bundled responder's: .160 + n and ::1:100 + n, inside what the core routes. */
	CU_ASSERT_EQUAL(tb_addr_v4(&topo, 0, 0, TB_HOST_BUNDLED_RESP, 1, &a), 0);
	CU_ASSERT_STRING_EQUAL(inet_ntop(AF_INET, &a, s, sizeof(s)), "10.1.1.161");
	CU_ASSERT_EQUAL(tb_addr_v4(&topo, 0, 1, TB_HOST_BUNDLED_RESP, 0, &a), 0);
	CU_ASSERT_STRING_EQUAL(inet_ntop(AF_INET, &a, s, sizeof(s)), "100.64.1.160");
	CU_ASSERT_EQUAL(tb_addr_v6(&topo, 0, 0, TB_HOST_BUNDLED_RESP, 1, &a6), 0);
	CU_ASSERT_STRING_EQUAL(inet_ntop(AF_INET6, &a6, s, sizeof(s)), "fd00:1:0:1::1:101");
	/* Responder TUN devices: the node's TUN name + "r" unless named. */
	CU_ASSERT_STRING_EQUAL(topo.sites[0].nodes[0].resp_tun, "tun0r");
	CU_ASSERT_STRING_EQUAL(topo.sites[0].nodes[1].resp_tun, "tun1r");
	CU_ASSERT_EQUAL(tb_addr_v4(&topo, 1, 0, TB_HOST_NODE, 0, &a), -EINVAL);
	CU_ASSERT_EQUAL(tb_link_count(&topo), 2);
	CU_ASSERT_EQUAL(tb_link_find(&topo, "s1/b"), 1);
	CU_ASSERT_EQUAL(tb_link_find(&topo, "s1/c"), -ENOENT);
	CU_ASSERT_EQUAL(tb_link_find(&topo, "s1"), -ENOENT);
}

/* The shipped topology files parse and have the promised shape. */
static void test_shipped_files(void)
{
	unsigned int delay_min = ~0u, delay_max = 0, strip = 0, nat = 0;

	CU_ASSERT_EQUAL_FATAL(
		tb_config_load_file("deploy/testbed/nornet-mini.cfg", &topo, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(topo.n_sites, 3);
	for (unsigned int s = 0; s < topo.n_sites; s++) {
		CU_ASSERT(topo.sites[s].n_uplinks >= 2 && topo.sites[s].n_uplinks <= 3);
		for (unsigned int u = 0; u < topo.sites[s].n_uplinks; u++) {
			const struct tb_uplink *l = &topo.sites[s].uplinks[u];

			delay_min = l->params[TB_DIR_DOWN].delay_us < delay_min
					    ? l->params[TB_DIR_DOWN].delay_us
					    : delay_min;
			delay_max = l->params[TB_DIR_DOWN].delay_us > delay_max
					    ? l->params[TB_DIR_DOWN].delay_us
					    : delay_max;
			CU_ASSERT(l->params[TB_DIR_DOWN].rate_bps >= 10000000 &&
				  l->params[TB_DIR_DOWN].rate_bps <= 100000000);
			strip += l->middlebox == TB_MB_STRIP_MPTCP;
			nat += l->middlebox == TB_MB_NAT;
		}
	}
	CU_ASSERT(delay_min >= 5000 && delay_max <= 60000);
	CU_ASSERT(strip > 0 && nat > 0);
	CU_ASSERT_EQUAL_FATAL(
		tb_config_load_file("deploy/testbed/nornet-large.cfg", &topo, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(topo.n_sites, 8);
	CU_ASSERT_EQUAL(tb_link_count(&topo), 24);
	CU_ASSERT_EQUAL(tb_config_load_file("deploy/testbed/no-such.cfg", &topo, err, sizeof(err)),
			-EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "cannot read"));
}

static const struct fj_test tests[] = {
	{ "parse_good", test_parse_good },
	{ "errors_name_setting", test_errors_name_setting },
	{ "directions", test_directions },
	{ "nat_needs_inside", test_nat_needs_inside },
	{ "bad_prefixes", test_bad_prefixes },
	{ "units", test_units },
	{ "link_set_format", test_link_set_format },
	{ "addresses", test_addresses },
	{ "shipped_files", test_shipped_files },
	{ "responder_tun", test_responder_tun },
	{ NULL, NULL },
};

const struct fj_suite fj_suite_testbed_config = { "testbed_config", NULL, NULL, tests };
