/* agent_config: a good file loads; every bad setting is named in the error. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agent_config.h"
#include "fj_test.h"
#include "fjord.pb-c.h"

#define GOOD_HEAD                                                                                  \
	"controller_url = \"http://127.0.0.1:8080\";\n"                                            \
	"site = \"oslo\";\nnode = \"n1\";\nenrollment_secret = \"s3cret\";\n"                      \
	"state_dir = \"/tmp/st\";\nspool_dir = \"/tmp/sp\";\n"
#define GOOD_IFACES                                                                                \
	"interfaces = ( { name = \"eth0\"; isp = \"telenor\"; link_type = \"fiber\"; } );\n"

static void test_good(void)
{
	struct agent_config c;
	char err[256] = "";
	const char *text = GOOD_HEAD GOOD_IFACES
		"spool_cap_bytes = 2147483648L;\npoll_wait_s = 5;\nresponder_port = 9000;\n"
		"log_level = \"debug\";\nmax_runs = 3;\nrun_deadline_s = 10;\n"
		"responder_addresses = [ \"127.0.0.1\", \"::1\" ];\n"
		"link_hook = \"fjord-testbed set {site}/{isp} {action}\";\n";

	CU_ASSERT_EQUAL_FATAL(agent_config_parse(text, &c, err, sizeof(err)), 0);
	CU_ASSERT_STRING_EQUAL(c.controller_url, "http://127.0.0.1:8080");
	CU_ASSERT_STRING_EQUAL(c.site, "oslo");
	CU_ASSERT_STRING_EQUAL(c.node, "n1");
	CU_ASSERT_STRING_EQUAL(c.secret, "s3cret");
	CU_ASSERT_EQUAL(c.spool_cap_bytes, 2147483648ull);
	CU_ASSERT_EQUAL(c.poll_wait_s, 5);
	CU_ASSERT_EQUAL(c.responder_port, 9000);
	CU_ASSERT_EQUAL(c.log_level, FJ_LOG_DEBUG);
	CU_ASSERT_EQUAL(c.max_runs, 3);
	CU_ASSERT_EQUAL(c.run_deadline_s, 10);
	CU_ASSERT_EQUAL(c.n_responder_addrs, 2);
	CU_ASSERT_STRING_EQUAL(c.responder_addrs[1], "::1");
	CU_ASSERT_STRING_EQUAL(c.link_hook, "fjord-testbed set {site}/{isp} {action}");
	CU_ASSERT_EQUAL_FATAL(c.n_ifaces, 1);
	CU_ASSERT_STRING_EQUAL(c.ifaces[0].name, "eth0");
	CU_ASSERT_STRING_EQUAL(c.ifaces[0].isp, "telenor");
	CU_ASSERT_EQUAL(c.ifaces[0].link_type, FJORD__V1__LINK_TYPE__LINK_TYPE_FIBER);
}

static void test_defaults(void)
{
	struct agent_config c;
	char err[256] = "";

	CU_ASSERT_EQUAL_FATAL(agent_config_parse(GOOD_HEAD GOOD_IFACES, &c, err, sizeof(err)), 0);
	CU_ASSERT_EQUAL(c.poll_wait_s, 30);
	CU_ASSERT_EQUAL(c.backoff_base_ms, 500);
	CU_ASSERT_EQUAL(c.backoff_max_ms, 60000);
	CU_ASSERT_EQUAL(c.n_responder_addrs, 0);
	CU_ASSERT_EQUAL(c.log_level, FJ_LOG_INFO);
	CU_ASSERT(c.bundled_offloads);
	CU_ASSERT_EQUAL_FATAL(agent_config_parse(GOOD_HEAD GOOD_IFACES "bundled_offloads = false;",
						 &c, err, sizeof(err)),
			      0);
	CU_ASSERT_FALSE(c.bundled_offloads);
}

struct bad_case {
	const char *text;
	const char *want; /* must appear in the error */
};

static const struct bad_case bad[] = {
	{ GOOD_IFACES "site = \"a\";", "'controller_url': missing" },
	{ "controller_url = \"ftp://x\";" GOOD_IFACES,
	  "'controller_url': must start with http://" },
	{ "controller_url = \"http://\";" GOOD_IFACES, "'controller_url': has no host" },
	{ "controller_url = 5;" GOOD_IFACES, "'controller_url': must be a string" },
	{ "controller_url = \"http://a\"; site = \"\";" GOOD_IFACES, "'site': must not be empty" },
	{ "controller_url = \"http://a\"; site = \"os lo\";" GOOD_IFACES, "'site': must be 1 to" },
	{ "controller_url = \"http://a\"; site = \"a\";" GOOD_IFACES, "'node': missing" },
	{ "controller_url = \"http://a\"; site = \"a\"; node = \"n\";" GOOD_IFACES,
	  "'enrollment_secret': missing" },
	{ "controller_url = \"http://a\"; site = \"a\"; node = \"n\"; enrollment_secret = \"s\";" GOOD_IFACES,
	  "'state_dir': missing" },
	{ "controller_url = \"http://a\"; site = \"a\"; node = \"n\"; enrollment_secret = \"s\";"
	  "state_dir = \"/x\";" GOOD_IFACES,
	  "'spool_dir': missing" },
	{ GOOD_HEAD GOOD_IFACES "spool_cap_bytes = 10;",
	  "'spool_cap_bytes': must be between 65536" },
	{ GOOD_HEAD GOOD_IFACES "spool_cap_bytes = \"big\";",
	  "'spool_cap_bytes': must be an integer" },
	{ GOOD_HEAD GOOD_IFACES "poll_wait_s = 0;", "'poll_wait_s': must be between 1 and 3600" },
	{ GOOD_HEAD GOOD_IFACES "responder_port = 70000;", "'responder_port': must be between 1" },
	{ GOOD_HEAD GOOD_IFACES "responder_port = -1;", "'responder_port'" },
	{ GOOD_HEAD GOOD_IFACES "log_level = \"loud\";", "'log_level': must be one of err" },
	{ GOOD_HEAD GOOD_IFACES "max_runs = 0;", "'max_runs': must be between 1 and 64" },
	{ GOOD_HEAD GOOD_IFACES "run_deadline_s = 0;", "'run_deadline_s'" },
	{ GOOD_HEAD GOOD_IFACES "backoff_base_ms = 100; backoff_max_ms = 50;",
	  "'backoff_max_ms': must not be below backoff_base_ms" },
	{ GOOD_HEAD GOOD_IFACES "responder_addresses = [ \"localhost\" ];",
	  "'responder_addresses': element 0 is not an IPv4 or IPv6 address" },
	{ GOOD_HEAD GOOD_IFACES "responder_idle_s = 0;", "'responder_idle_s'" },
	{ GOOD_HEAD GOOD_IFACES "controller_cacert = \"/nonexistent/ca.pem\";",
	  "'controller_cacert': cannot read /nonexistent/ca.pem: No such file" },
	{ GOOD_HEAD GOOD_IFACES "responder_max_connections = 0;", "'responder_max_connections'" },
	{ GOOD_HEAD GOOD_IFACES "pol_wait_s = 3;", "'pol_wait_s': unknown setting" },
	{ GOOD_HEAD, "'interfaces': missing" },
	{ GOOD_HEAD "interfaces = ();", "'interfaces': must list at least one" },
	{ GOOD_HEAD "interfaces = 3;", "'interfaces': must be a list" },
	{ GOOD_HEAD "interfaces = ( { isp = \"a\"; } );", "'interfaces[0].name': missing" },
	{ GOOD_HEAD "interfaces = ( { name = \"averyveryverylongname\"; isp = \"a\"; } );",
	  "'interfaces[0].name': must be an interface name" },
	{ GOOD_HEAD "interfaces = ( { name = \"e0\"; } );", "'interfaces[0].isp'" },
	{ GOOD_HEAD "interfaces = ( { name = \"e0\"; isp = \"a b\"; } );", "'interfaces[0].isp'" },
	{ GOOD_HEAD "interfaces = ( { name = \"e0\"; isp = \"a\"; link_type = \"pigeon\"; } );",
	  "'interfaces[0].link_type': must be one of" },
	{ GOOD_HEAD
	  "interfaces = ( { name = \"e0\"; isp = \"a\"; }, { name = \"e0\"; isp = \"b\"; } );",
	  "'interfaces[1].name': interface 'e0' is listed twice" },
	{ GOOD_HEAD "interfaces = ( { name = \"e0\"; isp = \"a\"; speed = 1; } );",
	  "'interfaces[0]': unknown key 'speed'" },
	{ GOOD_HEAD "interfaces = ( { name = ; } );", "syntax error" },
	{ GOOD_HEAD GOOD_IFACES "bundled_offloads = 1;",
	  "'bundled_offloads': must be true or false" },
	{ GOOD_HEAD GOOD_IFACES "bundled_offloads = \"no\";",
	  "'bundled_offloads': must be true or false" },
};

static void test_bad_settings(void)
{
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct agent_config c;
		char err[256] = "";
		int rc = agent_config_parse(bad[i].text, &c, err, sizeof(err));

		CU_ASSERT_EQUAL(rc, -EINVAL);
		if (!strstr(err, bad[i].want)) {
			fprintf(stderr, "\ncase %zu: want \"%s\" in \"%s\"\n", i, bad[i].want, err);
			CU_FAIL("error message does not name the setting");
		}
	}
}

static void test_line_numbers(void)
{
	struct agent_config c;
	char err[256] = "";

	CU_ASSERT_EQUAL(agent_config_parse(GOOD_HEAD GOOD_IFACES "\n\nmax_runs = 100;", &c, err,
					   sizeof(err)),
			-EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "line 10: setting 'max_runs'"));
}

static void test_missing_file(void)
{
	struct agent_config c;
	char err[256] = "";

	CU_ASSERT_EQUAL(agent_config_load("/nonexistent/fjord-agent.cfg", &c, err, sizeof(err)),
			-ENOENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "cannot open /nonexistent/fjord-agent.cfg"));
}

/* The commented sample in deploy/ must load as it is (tests run from the repo root). */
static void test_sample_file(void)
{
	struct agent_config c;
	char err[256] = "";

	CU_ASSERT_EQUAL(agent_config_load("deploy/fjord-agent.cfg", &c, err, sizeof(err)), 0);
	if (err[0])
		fprintf(stderr, "\n%s\n", err);
	CU_ASSERT_EQUAL(c.n_ifaces, 2);
	CU_ASSERT_EQUAL(c.spool_cap_bytes, 1073741824ull);
	CU_ASSERT_STRING_EQUAL(c.ifaces[1].isp, "uninett");
}

static const struct fj_test tests[] = {
	{ "sample_file", test_sample_file },
	{ "good", test_good },
	{ "defaults", test_defaults },
	{ "bad_settings", test_bad_settings },
	{ "line_numbers", test_line_numbers },
	{ "missing_file", test_missing_file },
	{ NULL, NULL },
};

const struct fj_suite fj_suite_agent_config = { "agent_config", NULL, NULL, tests };
