/*
 * The agent's bundled stack on the node's own addresses (libmps's host
 * adapter, agent config bundled_host), in two network namespaces this suite
 * creates and removes ("fjah-c-PID" client, "fjah-s-PID" server), joined by
 * two veth pairs, one per "ISP":
 *
 *   a: 10.87.1.1/24 a0 -- a1 10.87.1.2/24
 *   b: 10.87.2.1/24 b0 -- b1 10.87.2.2/24
 *
 * Each address leaves by its own veth (policy routing). There is no TUN
 * device: the client's runs and the server's bundled responder use these
 * addresses themselves, beside the kernel, which also serves the kernel
 * responder on port 7470 in the server namespace. Both namespaces keep the
 * kernel's ephemeral ports below 49152 (the bundled stack's range).
 *
 * Runs of the client agent (bulk both ways, rr) go (a) to the bundled
 * responder on the host adapter (port 7471, named by the info text's
 * fourth field) and (b) to the kernel responder itself (an info text
 * naming the kernel's addresses without a port): the bundled stack
 * against the kernel's MPTCP through the agent's own protocol.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent_loop.h"
#include "agent_runner.h"
#include "agent_spool.h"
#include "agent_sysinfo.h"
#include "bundled.h"
#include "exp.h"
#include "fj_clock.h"
#include "fj_test.h"
#include "responder.h"

#define AH_KPORT 7470 /* the kernel responder */
#define AH_BPORT 7471 /* the bundled responder on the host adapter */

static char tmpdir[64], ns_c[32], ns_s[32];
static struct agent_loop *loop;
static struct agent_spool *spool;
static struct agent_responder *resp;
static unsigned int ndone;
static int usable;
static int bundled_pid = -1;
static int use_v6; /* mk_run()'s paths over IPv6 */

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	rc = system(cmd);
	if (rc != 0)
		fprintf(stderr, "\ncommand failed (%d): %s\n", rc, cmd);
	return rc;
}

static void destroy_ns(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "ip netns del %s 2>/dev/null; ip netns del %s 2>/dev/null", ns_c,
		 ns_s);
	if (system(cmd) < 0)
		fprintf(stderr, "cannot run: %s\n", cmd);
}

static int create_ns(void)
{
	static const char l[2] = { 'a', 'b' };
	unsigned int i;

	if (sh("ip netns add %s && ip netns add %s", ns_c, ns_s))
		return -1;
	for (i = 0; i < 2; i++)
		if (sh("ip -n %s link add %c0 type veth peer name %c1 netns %s", ns_c, l[i], l[i],
		       ns_s) ||
		    sh("ip -n %s addr add 10.87.%u.1/24 dev %c0 && ip -n %s link set %c0 up", ns_c,
		       i + 1, l[i], ns_c, l[i]) ||
		    sh("ip -n %s addr add 10.87.%u.2/24 dev %c1 && ip -n %s link set %c1 up", ns_s,
		       i + 1, l[i], ns_s, l[i]) ||
		    sh("ip -n %s rule add from 10.87.%u.1 table %u && "
		       "ip -n %s route add default dev %c0 table %u",
		       ns_c, i + 1, 100 + i, ns_c, l[i], 100 + i) ||
		    sh("ip -n %s rule add from 10.87.%u.2 table %u && "
		       "ip -n %s route add default dev %c1 table %u",
		       ns_s, i + 1, 100 + i, ns_s, l[i], 100 + i) ||
		    sh("ip -n %s -6 addr add fd87:%u::1/64 dev %c0 nodad && "
		       "ip -n %s -6 rule add from fd87:%u::1 table %u && "
		       "ip -n %s -6 route add default dev %c0 table %u",
		       ns_c, i + 1, l[i], ns_c, i + 1, 100 + i, ns_c, l[i], 100 + i) ||
		    sh("ip -n %s -6 addr add fd87:%u::2/64 dev %c1 nodad && "
		       "ip -n %s -6 rule add from fd87:%u::2 table %u && "
		       "ip -n %s -6 route add default dev %c1 table %u",
		       ns_s, i + 1, l[i], ns_s, i + 1, 100 + i, ns_s, l[i], 100 + i) ||
		    /* 200 Mbit/s each way, as the testbed's uplinks (and agent_exp_ns's). */
		    sh("ip netns exec %s tc qdisc replace dev %c0 root tbf rate 200mbit burst 64kb "
		       "latency 20ms && ip netns exec %s tc qdisc replace dev %c1 root tbf rate "
		       "200mbit burst 64kb latency 20ms",
		       ns_c, l[i], ns_s, l[i]))
			return -1;
	return sh("ip -n %s link set lo up && ip -n %s link set lo up", ns_c, ns_s) ||
	       sh("ip netns exec %s sysctl -qw net.ipv4.ip_local_port_range='32768 49151' && "
		  "ip netns exec %s sysctl -qw net.ipv4.ip_local_port_range='32768 49151'",
		  ns_c, ns_s) ||
	       sh("ip -n %s mptcp limits set subflow 4 add_addr_accepted 4", ns_s);
}

static void mk_resp(void *arg)
{
	/* Every address, IPv4 and IPv6. */
	struct agent_responder_cfg rc = { NULL, 0, AH_KPORT, 16, 30, 0, arg };
	char err[256] = "";

	if (agent_responder_create(loop, &rc, &resp, err, sizeof(err)) < 0)
		fprintf(stderr, "\n%s\n", err);
}

/* The kernel responder with info text info (which the bundled runs ask for), anew. */
static int kernel_responder(const char *info)
{
	agent_responder_destroy(resp);
	resp = NULL;
	return fj_test_in_ns(ns_s, mk_resp, (void *)info) < 0 || !resp ? -1 : 0;
}

/* A bundled config on the host adapter with addresses 10.87.1.X and 10.87.2.X. */
static void host_cfg(struct bundled_cfg *b, unsigned int x)
{
	unsigned int i;

	memset(b, 0, sizeof(*b));
	b->host = true;
	b->resp_port = AH_BPORT;
	b->n_isps = 2;
	for (i = 0; i < 2; i++) {
		snprintf(b->isps[i].isp, sizeof(b->isps[i].isp), "%c", 'a' + i);
		snprintf(b->isps[i].addr[0], sizeof(b->isps[i].addr[0]), "10.87.%u.%u", i + 1, x);
		snprintf(b->isps[i].addr[1], sizeof(b->isps[i].addr[1]), "fd87:%u::%u", i + 1, x);
		memcpy(b->isps[i].resp, b->isps[i].addr, sizeof(b->isps[i].resp));
	}
}

static void start_bundled_resp(void *arg)
{
	struct bundled_cfg b;
	char err[300] = "";

	(void)arg;
	host_cfg(&b, 2);
	if (bundled_resp_start(&b, AH_BPORT, 16, 30, &bundled_pid, err, sizeof(err)) < 0)
		fprintf(stderr, "\nbundled responder: %s\n", err);
}

struct check_arg {
	struct bundled_cfg b;
	int rc;
	char err[300];
};

static void run_check(void *arg)
{
	struct check_arg *c = arg;

	c->rc = bundled_host_check(&c->b, c->err, sizeof(c->err));
}

static int ns_setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/fjord-hostns-XXXXXX");
	snprintf(ns_c, sizeof(ns_c), "fjah-c-%d", (int)getpid());
	snprintf(ns_s, sizeof(ns_s), "fjah-s-%d", (int)getpid());
	if (!mkdtemp(tmpdir))
		return -1;
	loop = agent_loop_create(1024);
	if (!loop || agent_spool_open(tmpdir, 64 << 20, &spool, NULL) != 0)
		return -1;
	destroy_ns();
	if (geteuid() != 0 || !agent_sysinfo_has_kernel_mptcp() ||
	    (access("/usr/sbin/nft", X_OK) && access("/sbin/nft", X_OK)) || create_ns() < 0) {
		fprintf(stderr, "\nagent_host_ns: no network namespaces, MPTCP or nft here\n");
		destroy_ns();
		return 0;
	}
	usable = 1;
	return 0;
}

static int ns_teardown(void)
{
	if (bundled_pid > 0)
		bundled_resp_stop(bundled_pid);
	bundled_set(NULL);
	agent_responder_destroy(resp);
	destroy_ns();
	agent_spool_close(spool);
	agent_loop_destroy(loop);
	return fj_test_rmtree(tmpdir);
}

/*
 * The node's requirements, checked as the agent checks them at start: the
 * kernel's default port range overlaps the stack's (refused naming the
 * sysctl), an address that is not the node's is refused; with the range
 * fixed and the node's own addresses, it passes.
 */
static void test_requirements(void)
{
	struct check_arg c;

	if (!usable)
		return;
	CU_ASSERT_EQUAL_FATAL(sh("ip netns exec %s sysctl -qw net.ipv4.ip_local_port_range='32768 "
				 "60999'",
				 ns_c),
			      0);
	memset(&c, 0, sizeof(c));
	host_cfg(&c.b, 1);
	CU_ASSERT_EQUAL_FATAL(fj_test_in_ns(ns_c, run_check, &c), 0);
	CU_ASSERT_EQUAL(c.rc, -EADDRINUSE);
	CU_ASSERT_PTR_NOT_NULL(strstr(c.err, "net.ipv4.ip_local_port_range = 32768 49151"));

	CU_ASSERT_EQUAL_FATAL(sh("ip netns exec %s sysctl -qw net.ipv4.ip_local_port_range='32768 "
				 "49151' && ip netns exec %s sysctl -qw "
				 "net.ipv4.ip_local_port_range='32768 49151'",
				 ns_c, ns_s),
			      0);
	memset(&c, 0, sizeof(c));
	host_cfg(&c.b, 9);
	CU_ASSERT_EQUAL_FATAL(fj_test_in_ns(ns_c, run_check, &c), 0);
	CU_ASSERT_EQUAL(c.rc, -EADDRNOTAVAIL);
	CU_ASSERT_PTR_NOT_NULL(strstr(c.err, "10.87.1.9 (ISP a) is not an address of this node"));

	memset(&c, 0, sizeof(c));
	host_cfg(&c.b, 1);
	c.rc = -1;
	CU_ASSERT_EQUAL_FATAL(fj_test_in_ns(ns_c, run_check, &c), 0);
	CU_ASSERT_EQUAL(c.rc, 0);
	if (c.rc)
		fprintf(stderr, "\n%s\n", c.err);
}

static void on_done(void *arg, const char *run_id, int ok)
{
	(void)arg;
	(void)run_id;
	(void)ok;
	ndone++;
}

struct run_cmd {
	Fjord__V1__RunCommand cmd;
	Fjord__V1__Run run;
	Fjord__V1__ExperimentSpec spec;
	Fjord__V1__BulkParams bulk;
	Fjord__V1__RrParams rr;
	Fjord__V1__EchoParams echo;
	Fjord__V1__ProbeParams probe;
	Fjord__V1__HandoverParams ho;
	Fjord__V1__LinkEvent lev, *levp;
	Fjord__V1__StackSettings ss;
	Fjord__V1__Path path[2], *paths[2];
	char local[2][32], remote[2][32];
};

/* A bundled run over paths a and b: bulk (download or not) or rr. */
static void mk_run(struct run_cmd *c, const char *id, int rr, int download)
{
	unsigned int i;

	memset(c, 0, sizeof(*c));
	fjord__v1__run_command__init(&c->cmd);
	fjord__v1__run__init(&c->run);
	fjord__v1__experiment_spec__init(&c->spec);
	fjord__v1__bulk_params__init(&c->bulk);
	fjord__v1__rr_params__init(&c->rr);
	fjord__v1__stack_settings__init(&c->ss);
	c->run.id = (char *)id;
	c->run.stack = FJORD__V1__STACK__STACK_BUNDLED;
	c->run.client_site = "site-c";
	c->spec.stack = &c->ss;
	if (rr) {
		c->spec.type = FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_RR;
		c->spec.params_case = FJORD__V1__EXPERIMENT_SPEC__PARAMS_RR;
		c->rr.request_bytes = 1000;
		c->rr.response_bytes = 20000;
		c->rr.rate_per_s = 50;
		c->rr.duration_s = 1;
		c->spec.rr = &c->rr;
	} else {
		c->spec.type = FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_BULK;
		c->spec.params_case = FJORD__V1__EXPERIMENT_SPEC__PARAMS_BULK;
		/* For a time: the join needs a few round trips. */
		c->bulk.duration_s = 1;
		c->bulk.direction = download ? FJORD__V1__DIRECTION__DIRECTION_DOWNLOAD
					     : FJORD__V1__DIRECTION__DIRECTION_UPLOAD;
		c->spec.bulk = &c->bulk;
	}
	c->cmd.run = &c->run;
	c->cmd.spec = &c->spec;
	for (i = 0; i < 2; i++) {
		fjord__v1__path__init(&c->path[i]);
		if (use_v6) {
			snprintf(c->local[i], sizeof(c->local[i]), "fd87:%u::1/64", i + 1);
			snprintf(c->remote[i], sizeof(c->remote[i]), "fd87:%u::2", i + 1);
		} else {
			snprintf(c->local[i], sizeof(c->local[i]), "10.87.%u.1/24", i + 1);
			snprintf(c->remote[i], sizeof(c->remote[i]), "10.87.%u.2", i + 1);
		}
		c->path[i].local_address = c->local[i];
		c->path[i].remote_address = c->remote[i];
		c->path[i].local_isp = i ? "b" : "a";
		c->path[i].remote_isp = c->path[i].local_isp;
		c->path[i].family = use_v6 ? FJORD__V1__ADDRESS_FAMILY__ADDRESS_FAMILY_IPV6
					   : FJORD__V1__ADDRESS_FAMILY__ADDRESS_FAMILY_IPV4;
		c->paths[i] = &c->path[i];
	}
	c->run.paths = c->paths;
	c->run.n_paths = 2;
}

struct start_arg {
	struct agent_runner *r;
	struct run_cmd *c;
	int rc;
};

static void start_run(void *arg)
{
	struct start_arg *a = arg;

	a->rc = agent_runner_start(a->r, &a->c->cmd);
}

static Fjord__V1__Result *run_in_client(struct run_cmd *c)
{
	struct agent_runner_cfg cfg = { 1, 30, AH_KPORT, FJORD_AGENT_VERSION };
	struct start_arg a = { NULL, c, -1 };
	uint64_t end = fj_mono_ms() + 30000;
	unsigned int want = ndone + 1;
	Fjord__V1__Result *res = NULL;
	uint8_t *buf;
	size_t len;

	CU_ASSERT_EQUAL_FATAL(agent_runner_create(loop, spool, &cfg, on_done, NULL, &a.r), 0);
	CU_ASSERT_EQUAL(fj_test_in_ns(ns_c, start_run, &a), 0);
	CU_ASSERT_EQUAL(a.rc, 0);
	while (ndone < want && fj_mono_ms() < end)
		agent_loop_run_once(loop, 20);
	if (agent_spool_read_result(spool, c->run.id, &buf, &len) == 0) {
		res = fjord__v1__result__unpack(NULL, len, buf);
		free(buf);
	}
	agent_runner_destroy(a.r);
	if (res && !res->ok)
		fprintf(stderr, "\n%s: %s\n", c->run.id, res->error);
	return res;
}

static double metric(const Fjord__V1__Result *r, const char *name)
{
	size_t i;

	for (i = 0; i < r->n_metrics; i++)
		if (strcmp(r->metrics[i]->name, name) == 0)
			return r->metrics[i]->value;
	return -1;
}

static const Fjord__V1__SubflowMetrics *subflow_of(const Fjord__V1__Result *r, const char *isp)
{
	size_t i;

	for (i = 0; i < r->n_subflows; i++)
		if (r->subflows[i]->local_isp && !strcmp(r->subflows[i]->local_isp, isp))
			return r->subflows[i];
	return NULL;
}

static const char *adapter_of(const Fjord__V1__Result *r)
{
	size_t i;

	for (i = 0; r->provenance && i < r->provenance->n_sysctls; i++)
		if (!strcmp(r->provenance->sysctls[i]->key, "libmps.link_adapter"))
			return r->provenance->sysctls[i]->value;
	return "";
}

/* fjmps_ tables (the host adapter's) in namespace ns. */
static int tables_in(const char *ns)
{
	char cmd[160];
	int n = -1;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "ip netns exec %s nft list tables | grep -c fjmps_", ns);
	f = popen(cmd, "r");
	if (!f)
		return -1;
	if (fscanf(f, "%d", &n) != 1)
		n = -1;
	pclose(f);
	return n;
}

/*
 * Bulk up, bulk down and rr of the client against the server over a and b:
 * every byte checked, both subflows carrying data, the bundled paths and the
 * host adapter in the provenance, no adapter table left in the client's
 * namespace after each run. remote_port: the port the runs must reach.
 */
static void three_runs(const char *tag, const char *remote_port_text)
{
	char id[3][40];
	unsigned int i;

	for (i = 0; i < 3; i++) {
		struct run_cmd c;
		Fjord__V1__Result *res;
		const Fjord__V1__SubflowMetrics *sa, *sb;

		snprintf(id[i], sizeof(id[i]), "host-%s-%s", tag,
			 i == 0	  ? "up"
			 : i == 1 ? "down"
				  : "rr");
		mk_run(&c, id[i], i == 2, i == 1);
		res = run_in_client(&c);
		CU_ASSERT_PTR_NOT_NULL_FATAL(res);
		CU_ASSERT(res->ok);
		if (i < 2) {
			CU_ASSERT_EQUAL(metric(res, "sha256_ok"), 1);
			CU_ASSERT(metric(res, "bytes") > 1000000);
		} else {
			/* 50 a second for 1 s, every response checked against the stream. */
			CU_ASSERT(metric(res, "transactions") >= 45);
		}
		CU_ASSERT_EQUAL(metric(res, "subflows_max"), 2);
		CU_ASSERT_EQUAL(metric(res, "fallback"), 0);
		sa = subflow_of(res, "a");
		sb = subflow_of(res, "b");
		CU_ASSERT_PTR_NOT_NULL_FATAL(sa);
		CU_ASSERT_PTR_NOT_NULL_FATAL(sb);
		CU_ASSERT_STRING_EQUAL(sa->local_address, "10.87.1.1");
		CU_ASSERT_STRING_EQUAL(sb->local_address, "10.87.2.1");
		/* Both subflows carry the data, whichever way it goes. */
		if (i == 0)
			CU_ASSERT(sa->bytes_acked > 100000 && sb->bytes_acked > 100000);
		if (i == 1)
			CU_ASSERT(sa->bytes_received > 100000 && sb->bytes_received > 100000);
		if (i < 2)
			fprintf(stderr, "\n%s: %.1f Mbit/s, a %llu b %llu bytes", id[i],
				metric(res, "goodput_bps") / 1e6,
				(unsigned long long)(i ? sa->bytes_received : sa->bytes_acked),
				(unsigned long long)(i ? sb->bytes_received : sb->bytes_acked));
		CU_ASSERT_PTR_NOT_NULL_FATAL(res->provenance);
		CU_ASSERT_EQUAL(res->provenance->stack, FJORD__V1__STACK__STACK_BUNDLED);
		CU_ASSERT_STRING_EQUAL(adapter_of(res), "host");
		CU_ASSERT_EQUAL_FATAL(res->provenance->n_paths, 2);
		CU_ASSERT_STRING_EQUAL(res->provenance->paths[1]->local_address, "10.87.2.1");
		CU_ASSERT_STRING_EQUAL(res->provenance->paths[1]->remote_address, "10.87.2.2");
		fjord__v1__result__free_unpacked(res, NULL);
		/* The run's child closed its adapter: its nftables table went with it. */
		CU_ASSERT_EQUAL(tables_in(ns_c), 0);
	}
	/* The stack's trace shows the port reached: the bundled or the kernel responder's. */
	{
		char path[512], cmd[700];

		CU_ASSERT_EQUAL(agent_spool_trace_path(spool, id[0], "capture.pcap", path,
						       sizeof(path)),
				0);
		snprintf(cmd, sizeof(cmd),
			 "tshark -r '%s' -c 1 -T fields -e tcp.dstport 2>/dev/null | grep -qx '%s'",
			 path, remote_port_text);
		CU_ASSERT_EQUAL(sh("%s", cmd), 0);
	}
}

static int has_event(const Fjord__V1__Result *r, const char *kind, const char *detail_part)
{
	size_t i;

	for (i = 0; i < r->n_events; i++)
		if (strcmp(r->events[i]->kind, kind) == 0 &&
		    strstr(r->events[i]->detail, detail_part))
			return 1;
	return 0;
}

/* mk_run()'s run as type t: echo, probe or handover (bulk upload, b backup at +500 ms). */
static void retype(struct run_cmd *c, Fjord__V1__ExperimentType t)
{
	c->spec.type = t;
	if (t == FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_ECHO) {
		fjord__v1__echo_params__init(&c->echo);
		c->echo.count = 100;
		c->echo.message_bytes = 2000;
		c->spec.params_case = FJORD__V1__EXPERIMENT_SPEC__PARAMS_ECHO;
		c->spec.echo = &c->echo;
	} else if (t == FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_PROBE) {
		fjord__v1__probe_params__init(&c->probe);
		c->probe.timeout_ms = 2000;
		c->spec.params_case = FJORD__V1__EXPERIMENT_SPEC__PARAMS_PROBE;
		c->spec.probe = &c->probe;
	} else {
		fjord__v1__handover_params__init(&c->ho);
		fjord__v1__link_event__init(&c->lev);
		c->bulk.duration_s = 2;
		c->ho.bulk = &c->bulk;
		c->lev.at_ms = 500;
		c->lev.isp = "b";
		c->lev.action = "backup";
		c->levp = &c->lev;
		c->ho.events = &c->levp;
		c->ho.n_events = 1;
		c->spec.params_case = FJORD__V1__EXPERIMENT_SPEC__PARAMS_HANDOVER;
		c->spec.handover = &c->ho;
	}
}

/*
 * The other types on the host adapter, against the bundled responder: echo
 * (every message back), the probe (MPTCP and checksums over both paths,
 * seen from our own address) and a handover whose event (MP_PRIO backup)
 * needs no hook.
 */
static void other_types(void)
{
	struct run_cmd c;
	Fjord__V1__Result *res;
	size_t i;

	mk_run(&c, "host-bundled-echo", 0, 0);
	retype(&c, FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_ECHO);
	res = run_in_client(&c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(res);
	CU_ASSERT(res->ok);
	CU_ASSERT_EQUAL(metric(res, "messages"), 100);
	CU_ASSERT_EQUAL(metric(res, "bytes"), 100 * 2000);
	CU_ASSERT(metric(res, "rtt_p50_us") > 0);
	CU_ASSERT_STRING_EQUAL(adapter_of(res), "host");
	fjord__v1__result__free_unpacked(res, NULL);
	CU_ASSERT_EQUAL(tables_in(ns_c), 0);

	mk_run(&c, "host-bundled-probe", 0, 0);
	retype(&c, FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_PROBE);
	res = run_in_client(&c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(res);
	CU_ASSERT(res->ok);
	CU_ASSERT_EQUAL_FATAL(res->n_probe_findings, 2);
	for (i = 0; i < 2; i++) {
		const Fjord__V1__ProbeFinding *f = res->probe_findings[i];

		CU_ASSERT(f->mp_capable);
		CU_ASSERT(!f->nat);
		CU_ASSERT_STRING_EQUAL(f->seen_address, i ? "10.87.2.1" : "10.87.1.1");
		CU_ASSERT(f->csum_tested);
		CU_ASSERT(!f->csum_failed);
	}
	CU_ASSERT(!has_event(res, "probe_failed", ""));
	CU_ASSERT_STRING_EQUAL(adapter_of(res), "host");
	fjord__v1__result__free_unpacked(res, NULL);
	CU_ASSERT_EQUAL(tables_in(ns_c), 0);

	mk_run(&c, "host-bundled-handover", 0, 0);
	retype(&c, FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_HANDOVER);
	res = run_in_client(&c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(res);
	CU_ASSERT(res->ok);
	CU_ASSERT_EQUAL(metric(res, "sha256_ok"), 1);
	CU_ASSERT_EQUAL(metric(res, "link_events"), 1);
	CU_ASSERT(has_event(res, "link_event",
			    "b backup at +500 ms: MP_PRIO backup on 1 subflow(s) from 10.87.2.1"));
	CU_ASSERT_STRING_EQUAL(adapter_of(res), "host");
	fjord__v1__result__free_unpacked(res, NULL);
	CU_ASSERT_EQUAL(tables_in(ns_c), 0);
}

/* Bytes acknowledged after wall time t (ms) over the subflows from local ISP isp. */
static double acked_after(const Fjord__V1__Result *r, const char *isp, int64_t t)
{
	double sum = 0;
	size_t i, k;

	for (i = 0; i < r->n_subflows; i++) {
		double a0 = 0, a1 = 0;

		if (!r->subflows[i]->local_isp || strcmp(r->subflows[i]->local_isp, isp))
			continue;
		for (k = 0; k < r->n_samples; k++) {
			if (r->samples[k]->subflow_id != r->subflows[i]->id)
				continue;
			if (r->samples[k]->t_ms <= t)
				a0 = (double)r->samples[k]->bytes_acked;
			a1 = (double)r->samples[k]->bytes_acked;
		}
		sum += a1 - a0;
	}
	return sum;
}

/*
 * A handover without a hook on the host adapter: b's address withdrawn from
 * the connection at +500 ms (REMOVE_ADDR) and joined from again at +1200 ms
 * of a 2 s upload: every byte, no event failed, b carries data after "up".
 */
static void host_withdraw(void)
{
	Fjord__V1__LinkEvent lev[2], *levp[2] = { &lev[0], &lev[1] };
	Fjord__V1__Result *res;
	struct run_cmd c;
	int64_t t_up = -1;
	size_t i;

	mk_run(&c, "host-bundled-withdraw", 0, 0);
	retype(&c, FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_HANDOVER);
	for (i = 0; i < 2; i++) {
		fjord__v1__link_event__init(&lev[i]);
		lev[i].isp = "b";
	}
	lev[0].at_ms = 500;
	lev[0].action = "down";
	lev[1].at_ms = 1200;
	lev[1].action = "up";
	c.ho.events = levp;
	c.ho.n_events = 2;
	res = run_in_client(&c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(res);
	CU_ASSERT(res->ok);
	CU_ASSERT_EQUAL(metric(res, "sha256_ok"), 1);
	CU_ASSERT_EQUAL(metric(res, "link_events"), 2);
	CU_ASSERT(
		has_event(res, "link_event",
			  "b down at +500 ms: REMOVE_ADDR of 10.87.2.1 sent, its subflows reset"));
	CU_ASSERT(has_event(res, "link_event",
			    "b up at +1200 ms: MP_JOIN from 10.87.2.1 to 10.87.2.2"));
	CU_ASSERT(!has_event(res, "link_event_failed", ""));
	CU_ASSERT(metric(res, "stall_ms") >= 0 && metric(res, "stall_ms") < 1500);
	for (i = 0; i < res->n_events; i++)
		if (!strcmp(res->events[i]->kind, "link_event") &&
		    strstr(res->events[i]->detail, "b up"))
			t_up = res->events[i]->t_ms;
	CU_ASSERT_FATAL(t_up > 0);
	fprintf(stderr, "\nhost adapter, b withdrawn: stall %.0f ms, b %.0f bytes after up\n",
		metric(res, "stall_ms"), acked_after(res, "b", t_up));
	CU_ASSERT(acked_after(res, "b", t_up) > 100000);
	CU_ASSERT_STRING_EQUAL(adapter_of(res), "host");
	fjord__v1__result__free_unpacked(res, NULL);
	CU_ASSERT_EQUAL(tables_in(ns_c), 0);
}

/* (a): the bundled responder on the server's host adapter, port 7471. */
static void test_to_bundled_responder(void)
{
	char port[8];

	if (!usable)
		return;
	CU_ASSERT_EQUAL_FATAL(kernel_responder("a 10.87.1.2 - 7471\nb 10.87.2.2 - 7471\n"), 0);
	CU_ASSERT_EQUAL_FATAL(fj_test_in_ns(ns_s, start_bundled_resp, NULL), 0);
	CU_ASSERT_FATAL(bundled_pid > 0);
	{
		struct bundled_cfg b;

		host_cfg(&b, 1);
		bundled_set(&b);
	}
	/* The responder child installs its table once it runs. */
	for (int i = 0; i < 50 && tables_in(ns_s) != 1; i++)
		usleep(20000);
	CU_ASSERT_EQUAL(tables_in(ns_s), 1);
	snprintf(port, sizeof(port), "%u", AH_BPORT);
	three_runs("bundled", port);
	other_types();
	host_withdraw();
	bundled_resp_stop(bundled_pid);
	bundled_pid = -1;
	/* SIGTERM: the responder closed its adapter, table included. */
	CU_ASSERT_EQUAL(tables_in(ns_s), 0);
}

/*
 * IPv6: bulk both ways over fd87:1::/64 and fd87:2::/64 to the bundled
 * responder on the host adapter, every byte, both subflows.
 */
static void test_ipv6(void)
{
	static const char *const ids[2] = { "host-v6-up", "host-v6-down" };
	struct bundled_cfg b;
	unsigned int i;

	if (!usable)
		return;
	CU_ASSERT_EQUAL_FATAL(
		kernel_responder("a 10.87.1.2 fd87:1::2 7471\nb 10.87.2.2 fd87:2::2 7471\n"), 0);
	CU_ASSERT_EQUAL_FATAL(fj_test_in_ns(ns_s, start_bundled_resp, NULL), 0);
	CU_ASSERT_FATAL(bundled_pid > 0);
	host_cfg(&b, 1);
	bundled_set(&b);
	use_v6 = 1;
	for (i = 0; i < 2; i++) {
		struct run_cmd c;
		Fjord__V1__Result *res;
		const Fjord__V1__SubflowMetrics *sa, *sb;

		mk_run(&c, ids[i], 0, (int)i);
		res = run_in_client(&c);
		CU_ASSERT_PTR_NOT_NULL_FATAL(res);
		CU_ASSERT(res->ok);
		CU_ASSERT_EQUAL(metric(res, "sha256_ok"), 1);
		CU_ASSERT_EQUAL(metric(res, "subflows_max"), 2);
		sa = subflow_of(res, "a");
		sb = subflow_of(res, "b");
		CU_ASSERT_PTR_NOT_NULL_FATAL(sa);
		CU_ASSERT_PTR_NOT_NULL_FATAL(sb);
		CU_ASSERT_STRING_EQUAL(sb->local_address, "fd87:2::1");
		CU_ASSERT_STRING_EQUAL(sb->remote_address, "fd87:2::2");
		if (i == 0) {
			CU_ASSERT(sa->bytes_acked > 100000 && sb->bytes_acked > 100000);
		} else {
			CU_ASSERT(sa->bytes_received > 100000 && sb->bytes_received > 100000);
		}
		CU_ASSERT_STRING_EQUAL(adapter_of(res), "host");
		fjord__v1__result__free_unpacked(res, NULL);
		CU_ASSERT_EQUAL(tables_in(ns_c), 0);
	}
	use_v6 = 0;
	bundled_resp_stop(bundled_pid);
	bundled_pid = -1;
	CU_ASSERT_EQUAL(tables_in(ns_s), 0);
}

static void hold_port(void *arg)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(AH_BPORT) };
	int *fd = arg;

	inet_pton(AF_INET, "10.87.1.2", &a.sin_addr);
	*fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*fd >= 0 && bind(*fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(*fd);
		*fd = -1;
	}
}

/*
 * The bundled responder's port taken by another program on one address: the
 * child cannot open its adapter, says why and exits with status 2 (which
 * the supervisor retries after 5 s), leaving no table; once the port is
 * free it starts.
 */
static void test_responder_port_taken(void)
{
	int fd = -1, status = 0, i;

	if (!usable)
		return;
	CU_ASSERT_EQUAL_FATAL(fj_test_in_ns(ns_s, hold_port, &fd), 0);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL_FATAL(fj_test_in_ns(ns_s, start_bundled_resp, NULL), 0);
	CU_ASSERT_FATAL(bundled_pid > 0);
	CU_ASSERT_EQUAL(waitpid(bundled_pid, &status, 0), bundled_pid);
	CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 2);
	bundled_pid = -1;
	CU_ASSERT_EQUAL(tables_in(ns_s), 0);
	close(fd);
	CU_ASSERT_EQUAL_FATAL(fj_test_in_ns(ns_s, start_bundled_resp, NULL), 0);
	CU_ASSERT_FATAL(bundled_pid > 0);
	for (i = 0; i < 50 && tables_in(ns_s) != 1; i++)
		usleep(20000);
	CU_ASSERT_EQUAL(tables_in(ns_s), 1);
	CU_ASSERT_EQUAL(waitpid(bundled_pid, &status, WNOHANG), 0); /* it runs */
	bundled_resp_stop(bundled_pid);
	bundled_pid = -1;
	CU_ASSERT_EQUAL(tables_in(ns_s), 0);
}

struct fork_arg {
	int pid, ready; /* the child, and the read end of its "open" pipe */
};

/*
 * A run's child: SIGTERM blocked as the agent's children inherit it, the
 * host adapter opened as a run opens it, then waiting to be killed.
 */
static void fork_run_child(void *arg)
{
	struct fork_arg *f = arg;
	int fds[2];

	if (pipe(fds) < 0)
		return;
	f->pid = fork();
	if (f->pid == 0) {
		struct mps_config cfg = { .msl_us = 1000000 };
		struct bundled_io io;
		struct bundled_cfg b;
		sigset_t set;
		char err[300], ok = 1;

		sigemptyset(&set);
		sigaddset(&set, SIGTERM);
		sigaddset(&set, SIGINT);
		sigprocmask(SIG_BLOCK, &set, NULL);
		host_cfg(&b, 1);
		if (bundled_io_open_run(&io, &b, &cfg, 0, err, sizeof(err)) < 0) {
			fprintf(stderr, "\n%s\n", err);
			_exit(3);
		}
		if (write(fds[1], &ok, 1) != 1)
			_exit(4);
		for (;;)
			pause();
	}
	close(fds[1]);
	f->ready = fds[0];
}

/*
 * A run's child killed with SIGTERM (blocked by the agent's mask, unblocked
 * by the adapter) deletes its table on the way out and dies of the signal.
 */
static void test_run_sigterm(void)
{
	struct fork_arg f = { -1, -1 };
	int status = 0, i;
	char c = 0;

	if (!usable)
		return;
	CU_ASSERT_EQUAL_FATAL(fj_test_in_ns(ns_c, fork_run_child, &f), 0);
	CU_ASSERT_FATAL(f.pid > 0);
	CU_ASSERT_EQUAL(read(f.ready, &c, 1), 1);
	close(f.ready);
	CU_ASSERT_EQUAL(tables_in(ns_c), 1);
	CU_ASSERT_EQUAL(kill(f.pid, SIGTERM), 0);
	/* Up to 3 s: a child that kept SIGTERM blocked would never go. */
	for (i = 0; i < 300 && waitpid(f.pid, &status, WNOHANG) == 0; i++)
		usleep(10000);
	if (i == 300) {
		kill(f.pid, SIGKILL);
		waitpid(f.pid, &status, 0);
		CU_FAIL("the run's child ignored SIGTERM");
	}
	CU_ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
	CU_ASSERT_EQUAL(tables_in(ns_c), 0);
}

/* Whether namespace ns has an fjmps_ table of process pid. */
static int table_of(const char *ns, int pid)
{
	return sh("ip netns exec %s nft list tables | grep -q 'inet fjmps_%d_'", ns, pid) == 0;
}

/*
 * A responder killed with SIGKILL leaves its table; the next one opened in
 * that namespace deletes it (its process is gone) and installs its own, and
 * serves: a bulk upload succeeds.
 */
static void test_responder_sigkill(void)
{
	struct bundled_cfg b;
	struct run_cmd c;
	Fjord__V1__Result *res;
	int old, i;

	if (!usable)
		return;
	CU_ASSERT_EQUAL_FATAL(kernel_responder("a 10.87.1.2 - 7471\nb 10.87.2.2 - 7471\n"), 0);
	CU_ASSERT_EQUAL_FATAL(fj_test_in_ns(ns_s, start_bundled_resp, NULL), 0);
	CU_ASSERT_FATAL(bundled_pid > 0);
	old = bundled_pid;
	for (i = 0; i < 50 && !table_of(ns_s, old); i++)
		usleep(20000);
	CU_ASSERT_FATAL(table_of(ns_s, old));
	CU_ASSERT_EQUAL_FATAL(kill(old, SIGKILL), 0);
	CU_ASSERT_EQUAL(waitpid(old, NULL, 0), old);
	bundled_pid = -1;
	CU_ASSERT(table_of(ns_s, old)); /* nobody could delete it */
	CU_ASSERT_EQUAL(tables_in(ns_s), 1);

	CU_ASSERT_EQUAL_FATAL(fj_test_in_ns(ns_s, start_bundled_resp, NULL), 0);
	CU_ASSERT_FATAL(bundled_pid > 0);
	for (i = 0; i < 50 && !table_of(ns_s, bundled_pid); i++)
		usleep(20000);
	CU_ASSERT(table_of(ns_s, bundled_pid));
	CU_ASSERT(!table_of(ns_s, old));
	CU_ASSERT_EQUAL(tables_in(ns_s), 1);
	host_cfg(&b, 1);
	bundled_set(&b);
	mk_run(&c, "host-after-kill", 0, 0);
	res = run_in_client(&c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(res);
	CU_ASSERT(res->ok);
	CU_ASSERT_EQUAL(metric(res, "sha256_ok"), 1);
	fjord__v1__result__free_unpacked(res, NULL);
	bundled_resp_stop(bundled_pid);
	bundled_pid = -1;
	CU_ASSERT_EQUAL(tables_in(ns_s), 0);
}

/* (b): the kernel responder, MPTCP of the server's kernel, on its own port 7470. */
static void test_to_kernel_responder(void)
{
	char port[8];

	if (!usable)
		return;
	CU_ASSERT_EQUAL_FATAL(kernel_responder("a 10.87.1.2 -\nb 10.87.2.2 -\n"), 0);
	{
		struct bundled_cfg b;

		host_cfg(&b, 1);
		bundled_set(&b);
	}
	snprintf(port, sizeof(port), "%u", AH_KPORT);
	three_runs("kernel", port);
	CU_ASSERT_EQUAL(tables_in(ns_s), 0);
}

static const struct fj_test tests[] = {
	{ "requirements", test_requirements },
	{ "to_bundled_responder", test_to_bundled_responder },
	{ "to_kernel_responder", test_to_kernel_responder },
	{ "responder_sigkill", test_responder_sigkill },
	{ "ipv6", test_ipv6 },
	{ "responder_port_taken", test_responder_port_taken },
	{ "run_sigterm", test_run_sigterm },
	{ NULL, NULL },
};

const struct fj_suite fj_suite_agent_host_ns = { "agent_host_ns", ns_setup, ns_teardown, tests };
