/*
 * Experiment types where multipath matters, in two network namespaces this
 * suite creates and removes ("fjex-c-PID" client, "fjex-s-PID" server), joined
 * by three veth pairs:
 *
 *   a: 198.18.1.1/24 a0 -- a1 198.18.1.2/24
 *   b: 198.18.2.1/24 b0 -- b1 198.18.2.2/24
 *   n: 198.18.3.1/24 n0 -- n1 198.18.3.2/24, the client also has 198.18.4.1
 *      on n0, which a MASQUERADE rule (probe test) hides behind 198.18.3.1
 *
 * Each client source address leaves by its own veth (policy routing). The
 * client has an `ip mptcp endpoint ... subflow` on b, the server a `signal`
 * endpoint on b, limits of 4 on both. The responder's sockets live in the
 * server namespace, the runner's children in the client one (a socket and a
 * child stay in the namespace they were created in).
 *
 * The bundled-stack tests add a TUN device in each namespace ("fjbc" for the
 * client's runs with 198.18.1.128 and 198.18.2.128, "fjbr" for the bundled
 * responder with 198.18.1.160 and 198.18.2.160), routed and ruled like the
 * kernel addresses, forwarding on and proxy ARP (without its default delay of
 * up to 0.8 s, which a join's SYN would wait for) on the veths.
 */
#include <stdarg.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <netpacket/packet.h>
#include <netinet/in.h>
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
#include "mps_tun.h"
#include "responder.h"

static char tmpdir[64], ns_c[32], ns_s[32];
static struct agent_loop *loop;
static struct agent_spool *spool;
static struct agent_responder *resp;
static unsigned int ndone;
static int usable; /* namespaces and MPTCP are there */
static int bundled_pid = -1;
static int bundled_ready; /* TUN devices and the bundled responder are up */

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

/* Signals one process: never pid 0 or -1, which would reach a group or every process. */
static int signal_one(int pid, int sig)
{
	CU_ASSERT_FATAL(pid > 0);
	return kill(pid, sig);
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
	static const char *const l[] = { "a", "b", "n" };
	unsigned int i;

	if (sh("ip netns add %s && ip netns add %s", ns_c, ns_s))
		return -1;
	for (i = 0; i < 3; i++) {
		if (sh("ip -n %s link add %s0 type veth peer name %s1 netns %s", ns_c, l[i], l[i],
		       ns_s) ||
		    sh("ip -n %s addr add 198.18.%u.1/24 dev %s0 && ip -n %s link set %s0 up", ns_c,
		       i + 1, l[i], ns_c, l[i]) ||
		    sh("ip -n %s addr add 198.18.%u.2/24 dev %s1 && ip -n %s link set %s1 up", ns_s,
		       i + 1, l[i], ns_s, l[i]) ||
		    sh("ip -n %s rule add from 198.18.%u.1 table %u && "
		       "ip -n %s route add default dev %s0 table %u",
		       ns_c, i + 1, 100 + i, ns_c, l[i], 100 + i) ||
		    sh("ip -n %s rule add from 198.18.%u.2 table %u && "
		       "ip -n %s route add default dev %s1 table %u",
		       ns_s, i + 1, 100 + i, ns_s, l[i], 100 + i))
			return -1;
	}
	return sh("ip -n %s link set lo up && ip -n %s link set lo up", ns_c, ns_s) ||
	       sh("ip -n %s addr add 198.18.4.1/32 dev n0 && "
		  "ip -n %s rule add from 198.18.4.1 table 102",
		  ns_c, ns_c) ||
	       sh("ip -n %s route add 198.18.4.1/32 dev n1", ns_s) ||
	       sh("ip -n %s mptcp limits set subflow 4 add_addr_accepted 4", ns_c) ||
	       sh("ip -n %s mptcp limits set subflow 4 add_addr_accepted 4", ns_s) ||
	       sh("ip -n %s mptcp endpoint add 198.18.2.1 dev b0 id 2 subflow", ns_c) ||
	       sh("ip -n %s mptcp endpoint add 198.18.2.2 dev b1 id 2 signal", ns_s);
}

/*
 * The client's veth l (a, b) up again after a test took it down, with the
 * default route of its policy table: taking a link down flushes that route,
 * and without it the address's packets would follow the main table (another
 * veth for another network), which later tests' paths must not do.
 */
static void client_link_up(char l)
{
	sh("ip -n %s link set %c0 up && ip -n %s route replace default dev %c0 table %u", ns_c, l,
	   ns_c, l, l == 'a' ? 100 : 101);
}

static void mk_resp(void *arg)
{
	static const char *const any[] = { "0.0.0.0" };
	struct agent_responder_cfg rc = {
		any, 1, 0, 16, 30, 0, "a 198.18.1.160 -\nb 198.18.2.160 -\n"
	};
	char err[256] = "";

	(void)arg;
	if (agent_responder_create(loop, &rc, &resp, err, sizeof(err)) < 0)
		fprintf(stderr, "\n%s\n", err);
}

static int ns_setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/fjord-expns-XXXXXX");
	snprintf(ns_c, sizeof(ns_c), "fjex-c-%d", (int)getpid());
	snprintf(ns_s, sizeof(ns_s), "fjex-s-%d", (int)getpid());
	if (!mkdtemp(tmpdir))
		return -1;
	loop = agent_loop_create(1024);
	if (!loop || agent_spool_open(tmpdir, 64 << 20, &spool, NULL) != 0)
		return -1;
	destroy_ns();
	if (geteuid() != 0 || !agent_sysinfo_has_kernel_mptcp() || create_ns() < 0) {
		fprintf(stderr, "\nagent_exp_ns: no network namespaces or no kernel MPTCP here\n");
		destroy_ns();
		return 0;
	}
	if (fj_test_in_ns(ns_s, mk_resp, NULL) < 0 || !resp) {
		destroy_ns();
		return -1;
	}
	usable = 1;
	return 0;
}

static int ns_teardown(void)
{
	bundled_resp_stop(bundled_pid);
	bundled_set(NULL);
	agent_responder_destroy(resp);
	destroy_ns();
	exp_set_link_hook(NULL);
	agent_spool_close(spool);
	agent_loop_destroy(loop);
	return fj_test_rmtree(tmpdir);
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
	Fjord__V1__ProbeParams probe;
	Fjord__V1__HandoverParams ho;
	Fjord__V1__LinkEvent lev[2], *levp[2];
	Fjord__V1__Path path[3], *paths[3];
	char local[3][32], remote[3][32];
};

/* Paths over the veths named in links ("ab", "abn"), each its own local and remote ISP. */
static void mk_run(struct run_cmd *c, const char *id, Fjord__V1__ExperimentType type,
		   const char *links)
{
	unsigned int i;

	memset(c, 0, sizeof(*c));
	fjord__v1__run_command__init(&c->cmd);
	fjord__v1__run__init(&c->run);
	fjord__v1__experiment_spec__init(&c->spec);
	fjord__v1__bulk_params__init(&c->bulk);
	fjord__v1__probe_params__init(&c->probe);
	fjord__v1__handover_params__init(&c->ho);
	c->run.id = (char *)id;
	c->run.stack = FJORD__V1__STACK__STACK_KERNEL;
	c->run.client_site = "site-c";
	c->spec.type = type;
	if (type == FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_PROBE) {
		c->spec.params_case = FJORD__V1__EXPERIMENT_SPEC__PARAMS_PROBE;
		c->spec.probe = &c->probe;
	} else if (type == FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_BULK) {
		c->spec.params_case = FJORD__V1__EXPERIMENT_SPEC__PARAMS_BULK;
		c->spec.bulk = &c->bulk;
	} else {
		c->spec.params_case = FJORD__V1__EXPERIMENT_SPEC__PARAMS_HANDOVER;
		c->spec.handover = &c->ho;
		c->ho.bulk = &c->bulk;
	}
	c->cmd.run = &c->run;
	c->cmd.spec = &c->spec;
	for (i = 0; links[i] && i < 3; i++) {
		unsigned int net = links[i] == 'a' ? 1 : links[i] == 'b' ? 2 : 3;

		fjord__v1__path__init(&c->path[i]);
		/* Behind the NAT, the client binds its hidden address. */
		snprintf(c->local[i], sizeof(c->local[i]), "198.18.%u.1/24", net == 3 ? 4 : net);
		snprintf(c->remote[i], sizeof(c->remote[i]), "198.18.%u.2", net);
		c->path[i].local_address = c->local[i];
		c->path[i].remote_address = c->remote[i];
		c->path[i].local_isp = links[i] == 'a' ? "a" : links[i] == 'b' ? "b" : "n";
		c->path[i].remote_isp = c->path[i].local_isp;
		c->path[i].family = FJORD__V1__ADDRESS_FAMILY__ADDRESS_FAMILY_IPV4;
		c->paths[i] = &c->path[i];
	}
	c->run.paths = c->paths;
	c->run.n_paths = i;
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
	struct agent_runner_cfg cfg = { 1, 30, agent_responder_port(resp), FJORD_AGENT_VERSION };
	struct start_arg a = { NULL, c, -1 };
	uint64_t end = fj_mono_ms() + 40000;
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

static int has_event(const Fjord__V1__Result *r, const char *kind, const char *detail_part)
{
	size_t i;

	for (i = 0; i < r->n_events; i++)
		if (strcmp(r->events[i]->kind, kind) == 0 &&
		    strstr(r->events[i]->detail, detail_part))
			return 1;
	return 0;
}

/* Distinct subflow ids in the samples. */
static unsigned int sampled_subflows(const Fjord__V1__Result *r)
{
	uint32_t seen = 0;
	unsigned int n = 0;
	size_t i;

	for (i = 0; i < r->n_samples; i++) {
		uint32_t bit = 1u << (r->samples[i]->subflow_id & 31);

		if (!(seen & bit))
			n++;
		seen |= bit;
	}
	return n;
}

/* Bulk over two paths: the kernel adds a subflow on b; both carry data; the hashes agree. */
static void test_bulk_two_paths(void)
{
	struct run_cmd c;
	Fjord__V1__Result *res;
	size_t i;
	int carried_b = 0;

	if (!usable)
		return;
	/*
	 * Uplinks of 100 Mbit/s each: path a alone cannot take the data as fast
	 * as it comes, so the scheduler must use b too (on unlimited veths one
	 * subflow may carry everything).
	 */
	CU_ASSERT_EQUAL_FATAL(sh("ip netns exec %s tc qdisc add dev a0 root tbf rate 100mbit "
				 "burst 32kb latency 20ms && ip netns exec %s tc qdisc add dev b0 "
				 "root tbf rate 100mbit burst 32kb latency 20ms",
				 ns_c, ns_c),
			      0);
	mk_run(&c, "ns-bulk", FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_BULK, "ab");
	c.bulk.bytes = 24 << 20;
	c.bulk.direction = FJORD__V1__DIRECTION__DIRECTION_UPLOAD;
	res = run_in_client(&c);
	sh("ip netns exec %s tc qdisc del dev a0 root && ip netns exec %s tc qdisc del dev b0 root",
	   ns_c, ns_c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(res);
	CU_ASSERT(res->ok);
	CU_ASSERT_EQUAL(metric(res, "sha256_ok"), 1);
	CU_ASSERT_EQUAL(metric(res, "bytes"), 24 << 20);
	CU_ASSERT(metric(res, "subflows_max") >= 2);
	CU_ASSERT(sampled_subflows(res) >= 2);
	CU_ASSERT(has_event(res, "subflow_up", "198.18.2.1"));
	CU_ASSERT(!has_event(res, "path_not_configured", ""));
	CU_ASSERT(res->n_subflows >= 2);
	for (i = 0; i < res->n_subflows; i++) {
		if (!strcmp(res->subflows[i]->local_address, "198.18.2.1")) {
			CU_ASSERT_STRING_EQUAL(res->subflows[i]->local_isp, "b");
			carried_b |= res->subflows[i]->bytes_acked > (2 << 20);
		}
	}
	CU_ASSERT(carried_b);
	fjord__v1__result__free_unpacked(res, NULL);
}

static void test_probe_middleboxes(void)
{
	struct run_cmd c;
	Fjord__V1__Result *res;

	if (!usable)
		return;
	/* Without the server's signal endpoint, joins can only come from the client's b. */
	CU_ASSERT_EQUAL_FATAL(
		sh("ip netns exec %s iptables -t mangle -A POSTROUTING -o b0 -p tcp "
		   "-j TCPOPTSTRIP --strip-options 30 && "
		   "ip netns exec %s iptables -t nat -A POSTROUTING -s 198.18.4.1 -o n0 "
		   "-j MASQUERADE && ip -n %s mptcp endpoint flush",
		   ns_c, ns_c, ns_s),
		0);
	mk_run(&c, "ns-probe", FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_PROBE, "abn");
	c.probe.timeout_ms = 1000;
	res = run_in_client(&c);
	sh("ip netns exec %s iptables -t mangle -F && ip netns exec %s iptables -t nat -F", ns_c,
	   ns_c);
	sh("ip -n %s mptcp endpoint add 198.18.2.2 dev b1 id 2 signal", ns_s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(res);
	CU_ASSERT(res->ok);
	CU_ASSERT_EQUAL_FATAL(res->n_probe_findings, 3);
	/*
	 * a: clean: MPTCP, no NAT; but the client's only subflow endpoint is on
	 * b, whose stripping also takes MP_JOIN out of the SYN: no join.
	 */
	CU_ASSERT_EQUAL(metric(res, "p0_reachable"), 1);
	CU_ASSERT_EQUAL(metric(res, "p0_mp_capable"), 1);
	CU_ASSERT_EQUAL(metric(res, "p0_nat"), 0);
	CU_ASSERT_EQUAL(metric(res, "p0_mp_join"), 0);
	CU_ASSERT(has_event(res, "mp_join_failed", "path 0 (a -> a"));
	/* b: the option stripped, the connection works as TCP. */
	CU_ASSERT_EQUAL(metric(res, "p1_reachable"), 1);
	CU_ASSERT_EQUAL(metric(res, "p1_mp_capable"), 0);
	CU_ASSERT_EQUAL(metric(res, "p1_nat"), 0);
	CU_ASSERT(has_event(res, "mp_capable_stripped", "path 1 (b -> b"));
	CU_ASSERT(!has_event(res, "mp_capable_stripped", "path 0"));
	CU_ASSERT(!has_event(res, "mp_capable_stripped", "path 2"));
	/* n: NAT seen, MPTCP survives it. */
	CU_ASSERT_EQUAL(metric(res, "p2_nat"), 1);
	CU_ASSERT_EQUAL(metric(res, "p2_mp_capable"), 1);
	CU_ASSERT_STRING_EQUAL(res->probe_findings[2]->seen_address, "198.18.3.1");
	CU_ASSERT(has_event(res, "nat", "the responder saw 198.18.3.1"));
	CU_ASSERT_EQUAL(metric(res, "paths_mp_capable"), 2);
	CU_ASSERT_EQUAL(metric(res, "paths_nat"), 1);
	fjord__v1__result__free_unpacked(res, NULL);
}

/* MP_JOIN and ADD_ADDR on a clean path: the b endpoint joins, the server's signal arrives. */
static void test_probe_join(void)
{
	struct run_cmd c;
	Fjord__V1__Result *res;

	if (!usable)
		return;
	mk_run(&c, "ns-join", FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_PROBE, "a");
	c.probe.timeout_ms = 2000;
	res = run_in_client(&c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(res);
	CU_ASSERT(res->ok);
	CU_ASSERT_EQUAL_FATAL(res->n_probe_findings, 1);
	CU_ASSERT(res->probe_findings[0]->mp_capable);
	CU_ASSERT(res->probe_findings[0]->mp_join);
	CU_ASSERT(res->probe_findings[0]->subflows >= 2);
	CU_ASSERT_EQUAL(metric(res, "p0_mp_join"), 1);
	fjord__v1__result__free_unpacked(res, NULL);
}

/* A path that drops everything: not reachable, said within the probe's timeout. */
static void test_probe_blackhole(void)
{
	struct run_cmd c;
	Fjord__V1__Result *res;
	uint64_t t0;

	if (!usable)
		return;
	CU_ASSERT_EQUAL_FATAL(sh("ip netns exec %s iptables -A OUTPUT -d 198.18.3.2 -j DROP", ns_c),
			      0);
	mk_run(&c, "ns-hole", FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_PROBE, "an");
	c.probe.timeout_ms = 500;
	t0 = fj_mono_ms();
	res = run_in_client(&c);
	sh("ip netns exec %s iptables -F OUTPUT", ns_c);
	CU_ASSERT(fj_mono_ms() - t0 < 5000);
	CU_ASSERT_PTR_NOT_NULL_FATAL(res);
	/* One path works, so the run does; the other is a finding. */
	CU_ASSERT(res->ok);
	CU_ASSERT_EQUAL(metric(res, "p0_reachable"), 1);
	CU_ASSERT_EQUAL(metric(res, "p1_reachable"), 0);
	CU_ASSERT_EQUAL(metric(res, "paths_reachable"), 1);
	CU_ASSERT_EQUAL_FATAL(res->n_probe_findings, 2);
	CU_ASSERT_PTR_NOT_NULL(strstr(res->probe_findings[1]->error, "timed out"));
	CU_ASSERT(has_event(res, "probe_failed", "path 1 (n -> n"));
	fjord__v1__result__free_unpacked(res, NULL);
}

/* With net.mptcp.checksum_enabled on the client, the connection negotiates DSS checksums. */
static void test_probe_checksums(void)
{
	struct run_cmd c;
	Fjord__V1__Result *res;

	if (!usable)
		return;
	CU_ASSERT_EQUAL_FATAL(sh("ip netns exec %s sysctl -qw net.mptcp.checksum_enabled=1", ns_c),
			      0);
	mk_run(&c, "ns-csum", FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_PROBE, "a");
	c.probe.timeout_ms = 400;
	res = run_in_client(&c);
	sh("ip netns exec %s sysctl -qw net.mptcp.checksum_enabled=0", ns_c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(res);
	CU_ASSERT(res->ok);
	CU_ASSERT_EQUAL(metric(res, "p0_mp_capable"), 1);
	CU_ASSERT_EQUAL(metric(res, "p0_checksums"), 1);
	CU_ASSERT_EQUAL(metric(res, "p0_csum_errors"), 0);
	CU_ASSERT(res->provenance->checksums);
	fjord__v1__result__free_unpacked(res, NULL);
	/* And without, none. */
	mk_run(&c, "ns-nocsum", FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_PROBE, "a");
	c.probe.timeout_ms = 400;
	res = run_in_client(&c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(res);
	CU_ASSERT_EQUAL(metric(res, "p0_checksums"), 0);
	CU_ASSERT(!res->provenance->checksums);
	fjord__v1__result__free_unpacked(res, NULL);
}

/* Handover through a hook: b's veth goes down for a second mid-transfer. */
static void test_handover_hook(void)
{
	struct run_cmd c;
	Fjord__V1__Result *res;

	if (!usable)
		return;
	/* Every placeholder: the command fails unless site and address are filled in right. */
	CU_ASSERT_EQUAL(exp_set_link_hook("test {site}/{addr} = site-c/198.18.2.1 && "
					  "ip link set dev {isp}0 {action}"),
			0);
	mk_run(&c, "ns-ho", FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_HANDOVER, "ab");
	c.bulk.duration_s = 4;
	c.bulk.direction = FJORD__V1__DIRECTION__DIRECTION_UPLOAD;
	fjord__v1__link_event__init(&c.lev[0]);
	fjord__v1__link_event__init(&c.lev[1]);
	c.lev[0].at_ms = 1000;
	c.lev[0].isp = "b";
	c.lev[0].action = "down";
	c.lev[1].at_ms = 2000;
	c.lev[1].isp = "b";
	c.lev[1].action = "up";
	c.levp[0] = &c.lev[0];
	c.levp[1] = &c.lev[1];
	c.ho.events = c.levp;
	c.ho.n_events = 2;
	res = run_in_client(&c);
	exp_set_link_hook(NULL);
	client_link_up('b');
	CU_ASSERT_PTR_NOT_NULL_FATAL(res);
	CU_ASSERT(res->ok);
	CU_ASSERT_EQUAL(metric(res, "sha256_ok"), 1);
	CU_ASSERT_EQUAL(metric(res, "link_events"), 2);
	CU_ASSERT(has_event(res, "link_event",
			    "b down at +1000 ms: test site-c/198.18.2.1 = site-c/198.18.2.1 && "
			    "ip link set dev b0 down"));
	CU_ASSERT(has_event(res, "link_event", "b up at +2000 ms: test site-c/198.18.2.1"));
	CU_ASSERT(!has_event(res, "link_event_failed", ""));
	/*
	 * Bounded: the data queued on b's subflow holds the connection until
	 * b returns (or the kernel marks the subflow stale after
	 * net.mptcp.stale_loss_cnt RTOs), so the stall is about the outage
	 * plus the subflow's retransmission backoff, not the run.
	 */
	CU_ASSERT(metric(res, "stall_ms") >= 100);
	CU_ASSERT(metric(res, "stall_ms") < 2500);
	CU_ASSERT(metric(res, "goodput_before_bps") > 0);
	CU_ASSERT(metric(res, "goodput_dip_pct") >= 0);
	CU_ASSERT(metric(res, "goodput_dip_pct") <= 100);
	CU_ASSERT_EQUAL(metric(res, "recovered"), 1);
	CU_ASSERT(metric(res, "recover_ms") >= 0);
	fjord__v1__result__free_unpacked(res, NULL);
}

/* Without a hook: the agent withdraws b's endpoint (its subflow closes) and re-adds it. */
static void test_handover_endpoint(void)
{
	struct run_cmd c;
	Fjord__V1__Result *res;

	if (!usable)
		return;
	mk_run(&c, "ns-ho-ep", FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_HANDOVER, "ab");
	c.bulk.duration_s = 2;
	c.bulk.direction = FJORD__V1__DIRECTION__DIRECTION_DOWNLOAD;
	fjord__v1__link_event__init(&c.lev[0]);
	fjord__v1__link_event__init(&c.lev[1]);
	c.lev[0].at_ms = 500;
	c.lev[0].isp = "b";
	c.lev[0].action = "down";
	c.lev[1].at_ms = 1200;
	c.lev[1].isp = "b";
	c.lev[1].action = "up";
	c.levp[0] = &c.lev[0];
	c.levp[1] = &c.lev[1];
	c.ho.events = c.levp;
	c.ho.n_events = 2;
	res = run_in_client(&c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(res);
	CU_ASSERT(res->ok);
	CU_ASSERT_EQUAL(metric(res, "sha256_ok"), 1);
	CU_ASSERT(has_event(res, "link_event", "ip mptcp endpoint delete id 2"));
	CU_ASSERT(has_event(res, "subflow_down", "198.18.2.1"));
	CU_ASSERT(!has_event(res, "link_event_failed", ""));
	fjord__v1__result__free_unpacked(res, NULL);
	/* The endpoint is back as it was. */
	CU_ASSERT_EQUAL(
		sh("ip -n %s mptcp endpoint show | grep -q '198.18.2.1 id 2 subflow dev b0'", ns_c),
		0);
}

/* The bundled settings of the client agent; tun may name a device that is not there. */
static void set_client_bundled(const char *tun)
{
	struct bundled_cfg b = { .n_isps = 2 };

	snprintf(b.tun, sizeof(b.tun), "%s", tun);
	snprintf(b.isps[0].isp, sizeof(b.isps[0].isp), "a");
	snprintf(b.isps[0].addr[0], sizeof(b.isps[0].addr[0]), "198.18.1.128");
	snprintf(b.isps[1].isp, sizeof(b.isps[1].isp), "b");
	snprintf(b.isps[1].addr[0], sizeof(b.isps[1].addr[0]), "198.18.2.128");
	bundled_set(&b);
}

static void start_bundled_resp(void *arg)
{
	struct bundled_cfg b = { .n_isps = 0 };
	char err[200] = "";

	(void)arg;
	snprintf(b.resp_tun, sizeof(b.resp_tun), "fjbr");
	if (bundled_resp_start(&b, agent_responder_port(resp), 16, 30, &bundled_pid, err,
			       sizeof(err)) < 0)
		fprintf(stderr, "\nbundled responder: %s\n", err);
}

static int bundled_setup(void)
{
	const char *ns[2] = { ns_c, ns_s }, *tun[2] = { "fjbc", "fjbr" };
	unsigned int i, k;

	if (bundled_ready)
		return 0;
	for (i = 0; i < 2; i++) {
		if (sh("ip -n %s tuntap add dev %s mode tun && ip -n %s link set %s up", ns[i],
		       tun[i], ns[i], tun[i]) ||
		    sh("ip netns exec %s sysctl -qw net.ipv4.ip_forward=1 "
		       "net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0",
		       ns[i]))
			return -1;
		for (k = 1; k <= 2; k++)
			if (sh("ip -n %s route add 198.18.%u.%u dev %s && "
			       "ip -n %s rule add from 198.18.%u.%u table %u && "
			       "ip netns exec %s sysctl -qw net.ipv4.conf.%c%u.proxy_arp=1 "
			       "net.ipv4.conf.%c%u.rp_filter=0 net.ipv4.neigh.%c%u.proxy_delay=0",
			       ns[i], k, i ? 160 : 128, tun[i], ns[i], k, i ? 160 : 128, 99 + k,
			       ns[i], k == 1 ? 'a' : 'b', i, k == 1 ? 'a' : 'b', i,
			       k == 1 ? 'a' : 'b', i))
				return -1;
	}
	/*
	 * Uplinks of 200 Mbit/s each way, as a testbed's: on unlimited veths
	 * (about 1 Gbit/s here) a 1 s download with 2 MiB buffers stalled in 1
	 * of 6 runs, a stack-level limit that docs/agent.md notes.
	 */
	for (i = 0; i < 2; i++)
		if (sh("ip netns exec %s tc qdisc replace dev a%u root tbf rate 200mbit burst 64kb "
		       "latency 20ms && ip netns exec %s tc qdisc replace dev b%u root tbf rate "
		       "200mbit burst 64kb latency 20ms",
		       ns[i], i, ns[i], i))
			return -1;
	if (fj_test_in_ns(ns_s, start_bundled_resp, NULL) < 0 || bundled_pid <= 0)
		return -1;
	bundled_ready = 1;
	return 0;
}

static Fjord__V1__Result *bundled_run(const char *id, const char *links, int download,
				      const char *sched)
{
	static Fjord__V1__StackSettings ss;
	struct run_cmd c;

	mk_run(&c, id, FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_BULK, links);
	c.run.stack = FJORD__V1__STACK__STACK_BUNDLED;
	/* For a time: the join needs a few round trips; 8 MiB on a veth take less. */
	c.bulk.duration_s = 1;
	c.bulk.direction = download ? FJORD__V1__DIRECTION__DIRECTION_DOWNLOAD
				    : FJORD__V1__DIRECTION__DIRECTION_UPLOAD;
	fjord__v1__stack_settings__init(&ss);
	ss.scheduler = (char *)sched;
	c.spec.stack = &ss;
	return run_in_client(&c);
}

static const Fjord__V1__SubflowMetrics *subflow_of(const Fjord__V1__Result *r, const char *isp)
{
	size_t i;

	for (i = 0; i < r->n_subflows; i++)
		if (r->subflows[i]->local_isp && !strcmp(r->subflows[i]->local_isp, isp))
			return r->subflows[i];
	return NULL;
}

/*
 * Bulk on the bundled stack over paths a and b, both ways: every byte, the
 * join over b up, samples and subflows labelled by ISP, the bundled paths and
 * libmps in the provenance; with the default scheduler (lowrtt) both
 * subflows carry data, and "initial" is recorded when asked for.
 */
static void test_bundled_bulk(void)
{
	static const char *const ids[3] = { "ns-bd-up", "ns-bd-down", "ns-bd-initial" };
	unsigned int i;

	if (!usable)
		return;
	CU_ASSERT_EQUAL_FATAL(bundled_setup(), 0);
	set_client_bundled("fjbc");
	for (i = 0; i < 3; i++) {
		Fjord__V1__Result *res =
			bundled_run(ids[i], "ab", i == 1, i == 2 ? "initial" : NULL);
		const Fjord__V1__SubflowMetrics *sa, *sb;

		CU_ASSERT_PTR_NOT_NULL_FATAL(res);
		CU_ASSERT(res->ok);
		CU_ASSERT_EQUAL(metric(res, "sha256_ok"), 1);
		CU_ASSERT(metric(res, "bytes") > 1000000);
		CU_ASSERT(metric(res, "goodput_bps") > 0);
		CU_ASSERT_EQUAL(metric(res, "subflows_max"), 2);
		if (metric(res, "subflows_max") != 2)
			for (size_t e = 0; e < res->n_events; e++)
				fprintf(stderr, "\nevent %s: %s\n", res->events[e]->kind,
					res->events[e]->detail);
		CU_ASSERT_EQUAL(metric(res, "fallback"), 0);
		CU_ASSERT(sampled_subflows(res) == 2);
		sa = subflow_of(res, "a");
		sb = subflow_of(res, "b");
		CU_ASSERT_PTR_NOT_NULL_FATAL(sa);
		CU_ASSERT_PTR_NOT_NULL_FATAL(sb);
		CU_ASSERT_STRING_EQUAL(sa->local_address, "198.18.1.128");
		CU_ASSERT_STRING_EQUAL(sb->local_address, "198.18.2.128");
		if (i == 0) /* the default scheduler, lowrtt, sends over both */
			CU_ASSERT(sa->bytes_acked > 100000 && sb->bytes_acked > 100000);
		CU_ASSERT_PTR_NOT_NULL_FATAL(res->provenance);
		CU_ASSERT_EQUAL(res->provenance->stack, FJORD__V1__STACK__STACK_BUNDLED);
		CU_ASSERT_STRING_EQUAL(res->provenance->stack_version, BUNDLED_LIBMPS_VERSION);
		CU_ASSERT_STRING_EQUAL(res->provenance->scheduler, i == 2 ? "initial" : "lowrtt");
		CU_ASSERT_STRING_EQUAL(res->provenance->congestion_control, "lia");
		CU_ASSERT_STRING_EQUAL(res->provenance->path_manager, "fullmesh");
		CU_ASSERT_EQUAL_FATAL(res->provenance->n_paths, 2);
		CU_ASSERT_STRING_EQUAL(res->provenance->paths[1]->local_address, "198.18.2.128");
		CU_ASSERT_STRING_EQUAL(res->provenance->paths[1]->remote_address, "198.18.2.160");
		fjord__v1__result__free_unpacked(res, NULL);
	}
	/* The stack's own trace is in the spool with the run. */
	{
		char path[512];
		struct stat st;

		CU_ASSERT_EQUAL(agent_spool_trace_path(spool, "ns-bd-up", "capture.pcap", path,
						       sizeof(path)),
				0);
		CU_ASSERT_EQUAL(stat(path, &st), 0);
		/* Headers of thousands of segments, both ways. */
		CU_ASSERT(st.st_size > 100000);
	}
}

/* Echo on the bundled stack: every message back intact, timed, with the stack's trace. */
static void test_bundled_echo(void)
{
	static Fjord__V1__EchoParams ep;
	struct run_cmd c;
	Fjord__V1__Result *res;
	char path[512];
	struct stat st;

	if (!usable)
		return;
	CU_ASSERT_EQUAL_FATAL(bundled_setup(), 0);
	set_client_bundled("fjbc");
	mk_run(&c, "ns-bd-echo", FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_ECHO, "ab");
	c.run.stack = FJORD__V1__STACK__STACK_BUNDLED;
	fjord__v1__echo_params__init(&ep);
	ep.count = 200;
	ep.message_bytes = 3000;
	c.spec.params_case = FJORD__V1__EXPERIMENT_SPEC__PARAMS_ECHO;
	c.spec.echo = &ep;
	res = run_in_client(&c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(res);
	CU_ASSERT(res->ok);
	CU_ASSERT_EQUAL(metric(res, "messages"), 200);
	CU_ASSERT_EQUAL(metric(res, "bytes"), 200 * 3000);
	CU_ASSERT(metric(res, "rtt_p50_us") > 0);
	CU_ASSERT(metric(res, "rtt_p95_us") >= metric(res, "rtt_p50_us"));
	CU_ASSERT(metric(res, "rtt_max_us") >= metric(res, "rtt_p95_us"));
	CU_ASSERT_EQUAL(metric(res, "fallback"), 0);
	CU_ASSERT(res->n_samples >= 2);
	CU_ASSERT_PTR_NOT_NULL_FATAL(res->provenance);
	CU_ASSERT_EQUAL(res->provenance->stack, FJORD__V1__STACK__STACK_BUNDLED);
	CU_ASSERT_EQUAL_FATAL(res->provenance->n_paths, 2);
	CU_ASSERT_STRING_EQUAL(res->provenance->paths[0]->remote_address, "198.18.1.160");
	fjord__v1__result__free_unpacked(res, NULL);
	CU_ASSERT_EQUAL(agent_spool_trace_path(spool, "ns-bd-echo", "rtt.csv", path, sizeof(path)),
			0);
	CU_ASSERT(stat(path, &st) == 0 && st.st_size > 200 * 6);
	CU_ASSERT_EQUAL(
		agent_spool_trace_path(spool, "ns-bd-echo", "capture.pcap", path, sizeof(path)), 0);
	CU_ASSERT(stat(path, &st) == 0 && st.st_size > 400 * 16);
}

/* Runs the loop until ndone reaches *(unsigned int *)arg or 40 s pass. */
static void loop_until_done(void *arg)
{
	uint64_t end = fj_mono_ms() + 40000;

	while (ndone < *(unsigned int *)arg && fj_mono_ms() < end)
		agent_loop_run_once(loop, 20);
}

/*
 * Two bundled runs submitted at once to a runner with room for both: the
 * second waits for the client TUN (one bundled run per node at a time) instead
 * of failing on it busy, and both succeed, one after the other.
 */
static void test_bundled_two_at_once(void)
{
	static Fjord__V1__EchoParams ep;
	struct agent_runner_cfg cfg = { 2, 30, agent_responder_port(resp), FJORD_AGENT_VERSION };
	static const char *const ids[2] = { "ns-bd-two-1", "ns-bd-two-2" };
	struct run_cmd c[2];
	struct start_arg a[2] = { { NULL, &c[0], -1 }, { NULL, &c[1], -1 } };
	Fjord__V1__Result *res[2] = { NULL, NULL };
	unsigned int want = ndone + 2, i;
	struct agent_runner *r = NULL;
	uint8_t *buf;
	size_t len;

	if (!usable)
		return;
	CU_ASSERT_EQUAL_FATAL(bundled_setup(), 0);
	set_client_bundled("fjbc");
	fjord__v1__echo_params__init(&ep);
	ep.count = 50;
	ep.message_bytes = 1000;
	CU_ASSERT_EQUAL_FATAL(agent_runner_create(loop, spool, &cfg, on_done, NULL, &r), 0);
	for (i = 0; i < 2; i++) {
		mk_run(&c[i], ids[i], FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_ECHO, "ab");
		c[i].run.stack = FJORD__V1__STACK__STACK_BUNDLED;
		c[i].spec.params_case = FJORD__V1__EXPERIMENT_SPEC__PARAMS_ECHO;
		c[i].spec.echo = &ep;
		a[i].r = r;
		CU_ASSERT_EQUAL(fj_test_in_ns(ns_c, start_run, &a[i]), 0);
		CU_ASSERT_EQUAL(a[i].rc, 0);
	}
	CU_ASSERT_EQUAL(agent_runner_count(r), 1);
	CU_ASSERT_EQUAL(agent_runner_queued(r), 1);
	/* The waiting run is forked from the loop: in the client's namespace, as an agent's. */
	CU_ASSERT_EQUAL(fj_test_in_ns(ns_c, loop_until_done, &want), 0);
	for (i = 0; i < 2; i++) {
		if (agent_spool_read_result(spool, ids[i], &buf, &len) == 0) {
			res[i] = fjord__v1__result__unpack(NULL, len, buf);
			free(buf);
		}
		CU_ASSERT_PTR_NOT_NULL(res[i]);
		if (res[i] && !res[i]->ok)
			fprintf(stderr, "\n%s: %s\n", ids[i], res[i]->error);
		CU_ASSERT(res[i] && res[i]->ok);
		CU_ASSERT(res[i] && metric(res[i], "messages") == 50);
	}
	if (res[0] && res[1])
		CU_ASSERT(res[1]->started_ms >= res[0]->finished_ms);
	for (i = 0; i < 2; i++)
		if (res[i])
			fjord__v1__result__free_unpacked(res[i], NULL);
	agent_runner_destroy(r);
}

static void hold_tun(void *arg)
{
	int err;

	*(struct mps_tun **)arg = mps_tun_open("fjbc", &err);
}

static void expect_failure(const char *id, const char *links, const char *want)
{
	Fjord__V1__Result *res = bundled_run(id, links, 0, NULL);

	CU_ASSERT_PTR_NOT_NULL_FATAL(res);
	CU_ASSERT(!res->ok);
	if (!strstr(res->error, want))
		fprintf(stderr, "\n%s: want \"%s\", got \"%s\"\n", id, want, res->error);
	CU_ASSERT_PTR_NOT_NULL(strstr(res->error, want));
	CU_ASSERT_PTR_NOT_NULL(res->provenance);
	fjord__v1__result__free_unpacked(res, NULL);
}

/*
 * Every failure is a failed run naming its cause, never a hang: the client TUN
 * held by another process, a TUN that is not there, a path on an ISP without
 * a bundled address, the peer's bundled responder gone (no answer within 5 s).
 */
static void test_bundled_failures(void)
{
	struct mps_tun *held = NULL;
	uint64_t t0;

	if (!usable)
		return;
	CU_ASSERT_EQUAL_FATAL(bundled_setup(), 0);
	set_client_bundled("fjbc");
	CU_ASSERT_EQUAL(fj_test_in_ns(ns_c, hold_tun, &held), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(held);
	expect_failure("ns-bd-busy", "ab", "TUN device fjbc is busy");
	mps_tun_close(held);
	set_client_bundled("fjbnone");
	expect_failure("ns-bd-missing", "ab", "TUN device fjbnone does not exist");
	set_client_bundled("fjbc");
	expect_failure("ns-bd-noaddr", "an",
		       "path 1: this agent has no bundled IPv4 address on ISP n");
	{
		Fjord__V1__Result *res = bundled_run("ns-bd-dlsched", "ab", 1, "initial");

		CU_ASSERT_PTR_NOT_NULL_FATAL(res);
		CU_ASSERT(!res->ok);
		CU_ASSERT_PTR_NOT_NULL(strstr(res->error,
					      "a bundled download is sent by the peer's "
					      "bundled responder with scheduler 'lowrtt' and "
					      "congestion control 'lia'; the run asks for "
					      "'initial' and 'lia'"));
		fjord__v1__result__free_unpacked(res, NULL);
	}
	bundled_resp_stop(bundled_pid);
	bundled_pid = -1;
	t0 = fj_mono_ms();
	expect_failure("ns-bd-noresp", "ab", "did not answer within 5000 ms");
	CU_ASSERT(fj_mono_ms() - t0 < 10000);
	/* Back for whatever runs next. */
	CU_ASSERT_EQUAL(fj_test_in_ns(ns_s, start_bundled_resp, NULL), 0);
}

/*
 * The peer's bundled responder killed outright (SIGKILL: no reset, no FIN)
 * in the middle of a download: the run fails on its own watchdog, naming it,
 * long before its deadline.
 */
static void test_bundled_peer_vanishes(void)
{
	struct agent_runner_cfg cfg = { 1, 60, 0, FJORD_AGENT_VERSION };
	struct run_cmd c;
	struct start_arg a = { NULL, &c, -1 };
	Fjord__V1__Result *res = NULL;
	unsigned int want = ndone + 1;
	uint64_t t0, end;
	uint8_t *buf;
	size_t len;

	if (!usable)
		return;
	CU_ASSERT_EQUAL_FATAL(bundled_setup(), 0);
	set_client_bundled("fjbc");
	cfg.responder_port = agent_responder_port(resp);
	mk_run(&c, "ns-bd-vanish", FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_BULK, "ab");
	c.run.stack = FJORD__V1__STACK__STACK_BUNDLED;
	c.bulk.duration_s = 30;
	c.bulk.direction = FJORD__V1__DIRECTION__DIRECTION_DOWNLOAD;
	CU_ASSERT_EQUAL_FATAL(agent_runner_create(loop, spool, &cfg, on_done, NULL, &a.r), 0);
	CU_ASSERT_EQUAL(fj_test_in_ns(ns_c, start_run, &a), 0);
	CU_ASSERT_EQUAL(a.rc, 0);
	t0 = fj_mono_ms();
	while (fj_mono_ms() - t0 < 1500)
		agent_loop_run_once(loop, 20);
	CU_ASSERT_EQUAL(signal_one(bundled_pid, SIGKILL), 0);
	waitpid(bundled_pid, NULL, 0);
	bundled_pid = -1;
	end = fj_mono_ms() + 40000;
	while (ndone < want && fj_mono_ms() < end)
		agent_loop_run_once(loop, 20);
	/* 15 s of nothing after the kill, not the 30 s transfer nor the 60 s deadline. */
	CU_ASSERT(fj_mono_ms() - t0 < 25000);
	if (agent_spool_read_result(spool, c.run.id, &buf, &len) == 0) {
		res = fjord__v1__result__unpack(NULL, len, buf);
		free(buf);
	}
	agent_runner_destroy(a.r);
	CU_ASSERT_PTR_NOT_NULL_FATAL(res);
	CU_ASSERT(!res->ok);
	if (!strstr(res->error, "nothing moved for 15000 ms"))
		fprintf(stderr, "\nns-bd-vanish: %s\n", res->error);
	CU_ASSERT_PTR_NOT_NULL(strstr(res->error, "transfer: nothing moved for 15000 ms"));
	CU_ASSERT(metric(res, "bytes") >= 0);
	fjord__v1__result__free_unpacked(res, NULL);
	CU_ASSERT_EQUAL(fj_test_in_ns(ns_s, start_bundled_resp, NULL), 0);
}

/* Shapes the server's egress on a1 and b1 (what carries responses to the client). */
static int shape_server(const char *rate, const char *burst)
{
	return sh(
		"ip netns exec %s tc qdisc replace dev a1 root tbf rate %s burst %s latency 100ms "
		"&& ip netns exec %s tc qdisc replace dev b1 root tbf rate %s burst %s latency "
		"100ms",
		ns_s, rate, burst, ns_s, rate, burst);
}

static void mk_bundled_rr(struct run_cmd *c, Fjord__V1__RrParams *rr, const char *id, uint32_t req,
			  uint32_t rsp, uint32_t rate, uint32_t dur_s)
{
	mk_run(c, id, FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_HANDOVER, "ab");
	c->run.stack = FJORD__V1__STACK__STACK_BUNDLED;
	c->spec.type = FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_RR;
	c->spec.params_case = FJORD__V1__EXPERIMENT_SPEC__PARAMS_RR;
	c->spec.handover = NULL;
	fjord__v1__rr_params__init(rr);
	rr->request_bytes = req;
	rr->response_bytes = rsp;
	rr->rate_per_s = rate;
	rr->duration_s = dur_s;
	c->spec.rr = rr;
}

/* The client's link isp down at +1 s and up at +2 s, through the hook (as handover_hook). */
static void down_up(struct run_cmd *c, const char *isp)
{
	fjord__v1__link_event__init(&c->lev[0]);
	fjord__v1__link_event__init(&c->lev[1]);
	c->lev[0].at_ms = 1000;
	c->lev[0].isp = (char *)isp;
	c->lev[0].action = "down";
	c->lev[1].at_ms = 2000;
	c->lev[1].isp = (char *)isp;
	c->lev[1].action = "up";
	c->levp[0] = &c->lev[0];
	c->levp[1] = &c->lev[1];
	c->ho.events = c->levp;
	c->ho.n_events = 2;
}

/*
 * rr on the bundled stack, served by the bundled responder: back to back with
 * 50 kB responses over paths shaped to 20 Mbit/s each, every response checked
 * against the responder's stream; a latency can be no shorter than the
 * response's time on both links together (minus the buckets' bursts); then at
 * 50 transactions a second for 2 s: about 100, on time.
 */
static void test_bundled_rr(void)
{
	static Fjord__V1__RrParams rr;
	struct run_cmd c;
	Fjord__V1__Result *res;
	/* 50000 bytes less two 5 KiB bursts at 2 x 20 Mbit/s. */
	const double floor_us = (50000.0 - 2 * 5120) * 8 / 40e6 * 1e6;
	char path[512];
	struct stat st;

	if (!usable)
		return;
	CU_ASSERT_EQUAL_FATAL(bundled_setup(), 0);
	set_client_bundled("fjbc");
	CU_ASSERT_EQUAL_FATAL(shape_server("20mbit", "5kb"), 0);
	mk_bundled_rr(&c, &rr, "ns-bd-rr", 200, 50000, 0, 2);
	res = run_in_client(&c);
	CU_ASSERT_EQUAL(shape_server("200mbit", "64kb"), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(res);
	CU_ASSERT(res->ok);
	fprintf(stderr, "\nbundled rr: %.0f transactions, p50 %.0f us, p99 %.0f us, max %.0f us\n",
		metric(res, "transactions"), metric(res, "latency_p50_us"),
		metric(res, "latency_p99_us"), metric(res, "latency_max_us"));
	/* At most 2 s / floor; at least a tenth of that pace. */
	CU_ASSERT(metric(res, "transactions") >= 20);
	CU_ASSERT(metric(res, "transactions") <= 2e6 / floor_us + 1);
	CU_ASSERT(metric(res, "latency_p50_us") >= floor_us);
	/* And no longer than three times its time on one link alone (20 ms). */
	CU_ASSERT(metric(res, "latency_p50_us") < 60000);
	CU_ASSERT(metric(res, "latency_p99_us") >= metric(res, "latency_p50_us"));
	CU_ASSERT(metric(res, "latency_max_us") >= metric(res, "latency_p99_us"));
	CU_ASSERT(metric(res, "duration_ms") >= 2000 && metric(res, "duration_ms") < 3000);
	CU_ASSERT_EQUAL(metric(res, "subflows_max"), 2);
	CU_ASSERT_EQUAL(metric(res, "fallback"), 0);
	CU_ASSERT(sampled_subflows(res) == 2);
	CU_ASSERT_PTR_NOT_NULL_FATAL(res->provenance);
	CU_ASSERT_EQUAL(res->provenance->stack, FJORD__V1__STACK__STACK_BUNDLED);
	CU_ASSERT_STRING_EQUAL(res->provenance->stack_version, BUNDLED_LIBMPS_VERSION);
	CU_ASSERT_STRING_EQUAL(res->provenance->congestion_control, "lia");
	CU_ASSERT_EQUAL_FATAL(res->provenance->n_paths, 2);
	CU_ASSERT_STRING_EQUAL(res->provenance->paths[1]->remote_address, "198.18.2.160");
	fjord__v1__result__free_unpacked(res, NULL);
	CU_ASSERT_EQUAL(agent_spool_trace_path(spool, "ns-bd-rr", "rr.csv", path, sizeof(path)), 0);
	CU_ASSERT(stat(path, &st) == 0 && st.st_size > 20 * 6);
	CU_ASSERT_EQUAL(
		agent_spool_trace_path(spool, "ns-bd-rr", "capture.pcap", path, sizeof(path)), 0);
	CU_ASSERT(stat(path, &st) == 0 && st.st_size > 1000);

	mk_bundled_rr(&c, &rr, "ns-bd-rr-rate", 1000, 1000, 50, 2);
	res = run_in_client(&c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(res);
	CU_ASSERT(res->ok);
	CU_ASSERT(metric(res, "transactions") >= 99 && metric(res, "transactions") <= 101);
	CU_ASSERT(metric(res, "late_starts") <= 5);
	CU_ASSERT(metric(res, "transactions_per_s") > 45 && metric(res, "transactions_per_s") < 55);
	fprintf(stderr, "bundled rr at 50/s: p50 %.0f us, p99 %.0f us\n",
		metric(res, "latency_p50_us"), metric(res, "latency_p99_us"));

	fjord__v1__result__free_unpacked(res, NULL);
}

/*
 * Handover on the bundled stack, bulk upload and rr: the client's link b goes
 * down at +1 s and up at +2 s (the hook); the connection carries on over a,
 * every byte arrives, the stall is bounded, and it recovers.
 */
static void test_bundled_handover(void)
{
	static Fjord__V1__RrParams rr;
	struct run_cmd c;
	Fjord__V1__Result *res;

	if (!usable)
		return;
	CU_ASSERT_EQUAL_FATAL(bundled_setup(), 0);
	set_client_bundled("fjbc");
	CU_ASSERT_EQUAL(exp_set_link_hook("ip link set dev {isp}0 {action}"), 0);
	mk_run(&c, "ns-bd-ho", FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_HANDOVER, "ab");
	c.run.stack = FJORD__V1__STACK__STACK_BUNDLED;
	c.bulk.duration_s = 4;
	c.bulk.direction = FJORD__V1__DIRECTION__DIRECTION_UPLOAD;
	down_up(&c, "b");
	res = run_in_client(&c);
	client_link_up('b');
	CU_ASSERT_PTR_NOT_NULL_FATAL(res);
	CU_ASSERT(res->ok);
	fprintf(stderr, "\nbundled handover bulk: stall %.0f ms, dip %.0f%%, recover %.0f ms\n",
		metric(res, "stall_ms"), metric(res, "goodput_dip_pct"), metric(res, "recover_ms"));
	CU_ASSERT_EQUAL(metric(res, "sha256_ok"), 1);
	CU_ASSERT(metric(res, "bytes") > 1000000);
	CU_ASSERT_EQUAL(metric(res, "link_events"), 2);
	CU_ASSERT(has_event(res, "link_event", "b down at +1000 ms: ip link set dev b0 down"));
	CU_ASSERT(has_event(res, "link_event", "b up at +2000 ms: ip link set dev b0 up"));
	CU_ASSERT(!has_event(res, "link_event_failed", ""));
	CU_ASSERT(metric(res, "stall_ms") >= 0 && metric(res, "stall_ms") < 2500);
	CU_ASSERT(metric(res, "goodput_before_bps") > 0);
	CU_ASSERT(metric(res, "goodput_dip_pct") >= 0 && metric(res, "goodput_dip_pct") <= 100);
	CU_ASSERT_EQUAL(metric(res, "recovered"), 1);
	CU_ASSERT_EQUAL(metric(res, "subflows_max"), 2);
	/*
	 * b's subflow, holding data that a has delivered, is reset as stale
	 * during the outage; the agent opens it again once it is gone.
	 */
	if (has_event(res, "subflow_down", "198.18.2.128")) {
		CU_ASSERT(has_event(res, "reopen", "path 1: subflow from 198.18.2.128"));
		CU_ASSERT(sampled_subflows(res) >= 3);
	}
	CU_ASSERT(!has_event(res, "reopen_failed", ""));
	CU_ASSERT_PTR_NOT_NULL_FATAL(res->provenance);
	CU_ASSERT_EQUAL(res->provenance->stack, FJORD__V1__STACK__STACK_BUNDLED);
	fjord__v1__result__free_unpacked(res, NULL);

	/*
	 * The initial subflow's link a instead: the connection carries on over
	 * the join on b, and a's pair comes back as a join (libmps's own retry
	 * or the agent's), which needs room beyond the paths' count: libmps
	 * counts the initial subflow even once it is gone.
	 */
	mk_run(&c, "ns-bd-ho-a", FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_HANDOVER, "ab");
	c.run.stack = FJORD__V1__STACK__STACK_BUNDLED;
	c.bulk.duration_s = 4;
	c.bulk.direction = FJORD__V1__DIRECTION__DIRECTION_UPLOAD;
	down_up(&c, "a");
	res = run_in_client(&c);
	client_link_up('a');
	CU_ASSERT_PTR_NOT_NULL_FATAL(res);
	CU_ASSERT(res->ok);
	fprintf(stderr,
		"bundled handover bulk, a down: stall %.0f ms, dip %.0f%%, recover %.0f ms\n",
		metric(res, "stall_ms"), metric(res, "goodput_dip_pct"), metric(res, "recover_ms"));
	CU_ASSERT_EQUAL(metric(res, "sha256_ok"), 1);
	CU_ASSERT_EQUAL(metric(res, "link_events"), 2);
	CU_ASSERT(metric(res, "stall_ms") < 2500);
	CU_ASSERT_EQUAL(metric(res, "recovered"), 1);
	if (has_event(res, "subflow_down", "198.18.1.128"))
		CU_ASSERT(sampled_subflows(res) >= 3);
	CU_ASSERT(!has_event(res, "reopen_failed", ""));
	fjord__v1__result__free_unpacked(res, NULL);

	mk_run(&c, "ns-bd-ho-rr", FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_HANDOVER, "ab");
	c.run.stack = FJORD__V1__STACK__STACK_BUNDLED;
	c.ho.bulk = NULL;
	fjord__v1__rr_params__init(&rr);
	rr.request_bytes = 1000;
	rr.response_bytes = 1000;
	rr.rate_per_s = 100;
	rr.duration_s = 4;
	c.ho.rr = &rr;
	down_up(&c, "b");
	res = run_in_client(&c);
	client_link_up('b');
	exp_set_link_hook(NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(res);
	CU_ASSERT(res->ok);
	fprintf(stderr,
		"bundled handover rr: %.0f transactions (%.0f during), stall %.0f ms, p50 before "
		"%.0f us, max during %.0f us, recover %.0f ms\n",
		metric(res, "transactions"), metric(res, "transactions_during"),
		metric(res, "stall_ms"), metric(res, "latency_before_p50_us"),
		metric(res, "latency_during_max_us"), metric(res, "recover_ms"));
	CU_ASSERT_EQUAL(metric(res, "link_events"), 2);
	/* 400 scheduled; an outage of 1 s costs at most the stall's worth. */
	CU_ASSERT(metric(res, "transactions") >= 300);
	CU_ASSERT(metric(res, "transactions_before") >= 90);
	CU_ASSERT(metric(res, "transactions_during") >= 50);
	CU_ASSERT(metric(res, "transactions_after") >= 150);
	CU_ASSERT(metric(res, "stall_ms") < 2500);
	CU_ASSERT(metric(res, "latency_before_p50_us") > 0);
	CU_ASSERT(metric(res, "latency_before_p50_us") < 20000);
	CU_ASSERT(metric(res, "latency_after_p50_us") < 20000);
	/* Requests caught on b wait for their retransmission timeout, then go over a. */
	CU_ASSERT(metric(res, "latency_during_max_us") >= metric(res, "latency_before_p50_us"));
	CU_ASSERT(metric(res, "latency_during_max_us") < 2000000);
	/*
	 * Recovery shows in the transactions after the outage and their
	 * median above. Not `recovered`: its rule (a last transaction slower
	 * than twice the median before, then a faster one) is a coin toss
	 * with medians of 0.1-0.3 ms on veths of a loaded machine;
	 * tests/e2e/testbed_exp.sh asserts it over 30 ms paths.
	 */
	CU_ASSERT(metric(res, "recovered") == 0 || metric(res, "recovered") == 1);
	fjord__v1__result__free_unpacked(res, NULL);
}

/* The last sampled bytes_acked of subflow id at or before wall time t (ms), or -1. */
static double acked_at(const Fjord__V1__Result *r, uint32_t id, int64_t t)
{
	double v = -1;
	size_t i;

	for (i = 0; i < r->n_samples; i++)
		if (r->samples[i]->subflow_id == id && r->samples[i]->t_ms <= t)
			v = (double)r->samples[i]->bytes_acked;
	return v;
}

/*
 * Handover events on the bundled stack without a hook: one on an ISP that no
 * run path has is refused before any traffic; backup: the run sends MP_PRIO
 * on the ISP's subflow itself, and from then on its scheduler keeps new data
 * off it while the other path works (down and up: bundled_handover_withdraw).
 */
static void test_bundled_handover_events(void)
{
	const Fjord__V1__SubflowMetrics *sa, *sb;
	Fjord__V1__Result *res;
	struct run_cmd c;
	int64_t tb = -1;
	size_t i;

	if (!usable)
		return;
	CU_ASSERT_EQUAL_FATAL(bundled_setup(), 0);
	set_client_bundled("fjbc");
	exp_set_link_hook(NULL);
	mk_run(&c, "ns-bd-ho-noisp", FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_HANDOVER, "ab");
	c.run.stack = FJORD__V1__STACK__STACK_BUNDLED;
	c.bulk.duration_s = 2;
	down_up(&c, "n");
	c.ho.n_events = 1;
	c.lev[0].action = "backup";
	res = run_in_client(&c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(res);
	CU_ASSERT(!res->ok);
	CU_ASSERT_PTR_NOT_NULL(
		strstr(res->error, "handover.events[0].isp n: no run path has that local ISP"));
	fjord__v1__result__free_unpacked(res, NULL);

	mk_run(&c, "ns-bd-ho-backup", FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_HANDOVER, "ab");
	c.run.stack = FJORD__V1__STACK__STACK_BUNDLED;
	c.bulk.duration_s = 3;
	c.bulk.direction = FJORD__V1__DIRECTION__DIRECTION_UPLOAD;
	down_up(&c, "b");
	c.ho.n_events = 1;
	c.lev[0].action = "backup";
	res = run_in_client(&c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(res);
	CU_ASSERT(res->ok);
	CU_ASSERT_EQUAL(metric(res, "sha256_ok"), 1);
	CU_ASSERT_EQUAL(metric(res, "link_events"), 1);
	CU_ASSERT(has_event(
		res, "link_event",
		"b backup at +1000 ms: MP_PRIO backup on 1 subflow(s) from 198.18.2.128"));
	for (i = 0; i < res->n_events; i++)
		if (!strcmp(res->events[i]->kind, "link_event"))
			tb = res->events[i]->t_ms;
	sa = subflow_of(res, "a");
	sb = subflow_of(res, "b");
	CU_ASSERT_PTR_NOT_NULL_FATAL(sa);
	CU_ASSERT_PTR_NOT_NULL_FATAL(sb);
	CU_ASSERT_FATAL(tb > 0);
	{
		/* From 300 ms after the event (the flight then sent) to the end. */
		double a0 = acked_at(res, sa->id, tb + 300), b0 = acked_at(res, sb->id, tb + 300);
		double a1 = acked_at(res, sa->id, INT64_MAX), b1 = acked_at(res, sb->id, INT64_MAX);

		fprintf(stderr, "\nbackup: b carried %.0f bytes before, %.0f after; a %.0f after\n",
			b0, b1 - b0, a1 - a0);
		CU_ASSERT(b0 > 100000); /* it carried its share before */
		CU_ASSERT(a1 - a0 > 1000000);
		CU_ASSERT(b1 - b0 < 0.05 * (a1 - a0));
	}
	fjord__v1__result__free_unpacked(res, NULL);
}

/*
 * A capture in the server's namespace: a child that reads every IPv4 packet
 * arriving there (AF_PACKET) and writes the address IDs of each MPTCP
 * REMOVE_ADDR option it finds to a pipe, one byte each, until killed.
 */
struct rm_capture {
	int pid, fd;
};

static void rm_capture_child(const char *ns, int wfd)
{
	char p[64];
	uint8_t pkt[2048];
	int fd, s;

	snprintf(p, sizeof(p), "/run/netns/%s", ns);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, CLONE_NEWNET) < 0)
		_exit(1);
	s = socket(AF_PACKET, SOCK_DGRAM, htons(ETH_P_IP));
	if (s < 0)
		_exit(1);
	/* Ready: the parent starts the run only now. */
	if (write(wfd, "R", 1) != 1)
		_exit(1);
	for (;;) {
		struct sockaddr_ll from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(s, pkt, sizeof(pkt), 0, (struct sockaddr *)&from, &fl);
		size_t ihl, doff, o;

		if (n < 0)
			_exit(1);
		if (from.sll_pkttype == PACKET_OUTGOING || n < 40 || (pkt[0] >> 4) != 4 ||
		    pkt[9] != IPPROTO_TCP)
			continue;
		ihl = (size_t)(pkt[0] & 15) * 4;
		if (ihl < 20 || ihl + 20 > (size_t)n)
			continue;
		doff = (size_t)(pkt[ihl + 12] >> 4) * 4;
		if (doff < 20 || ihl + doff > (size_t)n)
			continue;
		for (o = ihl + 20; o < ihl + doff;) {
			uint8_t kind = pkt[o], len;

			if (kind == 0)
				break;
			if (kind == 1) {
				o++;
				continue;
			}
			if (o + 1 >= ihl + doff || (len = pkt[o + 1]) < 2 || o + len > ihl + doff)
				break;
			/* MPTCP (kind 30), subtype REMOVE_ADDR (4): the IDs follow. */
			if (kind == 30 && len >= 4 && (pkt[o + 2] >> 4) == 4 &&
			    write(wfd, pkt + o + 3, len - 3u) < 0)
				_exit(1);
			o += len;
		}
	}
}

static int rm_capture_start(struct rm_capture *cap)
{
	int p[2];
	char r;

	cap->pid = -1;
	cap->fd = -1;
	if (pipe(p) < 0)
		return -1;
	cap->pid = fork();
	if (cap->pid == 0) {
		close(p[0]);
		rm_capture_child(ns_s, p[1]);
		_exit(0);
	}
	close(p[1]);
	cap->fd = p[0];
	if (cap->pid < 0 || read(cap->fd, &r, 1) != 1) {
		close(cap->fd);
		return -1;
	}
	return 0;
}

/* Stops the capture; the IDs it saw into ids (at most cap_ids), their count. */
static size_t rm_capture_stop(struct rm_capture *cap, uint8_t *ids, size_t cap_ids)
{
	ssize_t n;

	kill(cap->pid, SIGKILL);
	waitpid(cap->pid, NULL, 0);
	n = read(cap->fd, ids, cap_ids);
	close(cap->fd);
	return n > 0 ? (size_t)n : 0;
}

/* The time (ms) of the first event of kind whose detail has part, or -1. */
static int64_t event_at(const Fjord__V1__Result *r, const char *kind, const char *part)
{
	size_t i;

	for (i = 0; i < r->n_events; i++)
		if (!strcmp(r->events[i]->kind, kind) && strstr(r->events[i]->detail, part))
			return r->events[i]->t_ms;
	return -1;
}

/* Bytes acknowledged after wall time t over the subflows from local ISP isp. */
static double acked_after(const Fjord__V1__Result *r, const char *isp, int64_t t)
{
	double sum = 0;
	size_t i;

	for (i = 0; i < r->n_subflows; i++) {
		double a0, a1;

		if (!r->subflows[i]->local_isp || strcmp(r->subflows[i]->local_isp, isp))
			continue;
		a0 = acked_at(r, r->subflows[i]->id, t);
		a1 = acked_at(r, r->subflows[i]->id, INT64_MAX);
		if (a1 > 0)
			sum += a1 - (a0 > 0 ? a0 : 0);
	}
	return sum;
}

/*
 * Removes run_id's result and traces from the spool, as the controller's
 * acknowledgement would: the pcaps of long uploads would otherwise fill the
 * spool's cap for the tests after this one.
 */
static void spool_drop(const char *run_id)
{
	struct agent_spool_item *it = NULL;
	size_t n = 0, i;

	if (agent_spool_list(spool, &it, &n, 256) < 0)
		return;
	for (i = 0; i < n; i++)
		if (!strcmp(it[i].run_id, run_id) && it[i].name[0])
			agent_spool_ack_trace(spool, run_id, it[i].name);
	agent_spool_ack_result(spool, run_id);
	free(it);
}

/*
 * down and up on the bundled stack without a link hook, as on a real node:
 * path a's address (the initial subflow's, ID 0) is withdrawn at +1 s
 * (REMOVE_ADDR, seen arriving at the peer's node) and joined from again at
 * +2 s of a 4 s upload over a and b. Every byte arrives, the stall is
 * bounded, the agent does not reopen a while it is withdrawn, and a carries
 * data again after "up". The same for the join's address b, whose ID libmps
 * takes from the join. An ISP without a bundled address on this node is
 * refused before any traffic.
 */
static void test_bundled_handover_withdraw(void)
{
	struct rm_capture cap;
	uint8_t ids[64];
	size_t nids, i;
	Fjord__V1__Result *res;
	struct run_cmd c;
	int64_t t_down, t_up;
	int id0 = 0;

	if (!usable)
		return;
	CU_ASSERT_EQUAL_FATAL(bundled_setup(), 0);
	exp_set_link_hook(NULL);
	{
		struct bundled_cfg b = { .n_isps = 1 };

		snprintf(b.tun, sizeof(b.tun), "fjbc");
		snprintf(b.isps[0].isp, sizeof(b.isps[0].isp), "a");
		snprintf(b.isps[0].addr[0], sizeof(b.isps[0].addr[0]), "198.18.1.128");
		bundled_set(&b);
	}
	mk_run(&c, "ns-bd-ho-noaddr", FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_HANDOVER, "ab");
	c.run.stack = FJORD__V1__STACK__STACK_BUNDLED;
	c.bulk.duration_s = 2;
	down_up(&c, "b");
	res = run_in_client(&c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(res);
	CU_ASSERT(!res->ok);
	CU_ASSERT_PTR_NOT_NULL(strstr(res->error, "handover.events[0].isp b: this node has no "
						  "bundled address on that ISP"));
	CU_ASSERT(!has_event(res, "link_event", ""));
	fjord__v1__result__free_unpacked(res, NULL);
	spool_drop("ns-bd-ho-noaddr");

	set_client_bundled("fjbc");
	mk_run(&c, "ns-bd-ho-rm", FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_HANDOVER, "ab");
	c.run.stack = FJORD__V1__STACK__STACK_BUNDLED;
	c.bulk.duration_s = 4;
	c.bulk.direction = FJORD__V1__DIRECTION__DIRECTION_UPLOAD;
	down_up(&c, "a");
	CU_ASSERT_EQUAL_FATAL(rm_capture_start(&cap), 0);
	res = run_in_client(&c);
	nids = rm_capture_stop(&cap, ids, sizeof(ids));
	CU_ASSERT_PTR_NOT_NULL_FATAL(res);
	CU_ASSERT(res->ok);
	fprintf(stderr,
		"\nbundled handover, a withdrawn: stall %.0f ms, dip %.0f%%, recover %.0f ms, "
		"%zu REMOVE_ADDR ID(s) at the peer\n",
		metric(res, "stall_ms"), metric(res, "goodput_dip_pct"), metric(res, "recover_ms"),
		nids);
	CU_ASSERT_EQUAL(metric(res, "sha256_ok"), 1);
	CU_ASSERT(metric(res, "bytes") > 1000000);
	CU_ASSERT_EQUAL(metric(res, "link_events"), 2);
	CU_ASSERT(has_event(res, "link_event",
			    "a down at +1000 ms: REMOVE_ADDR of 198.18.1.128 sent, its subflows "
			    "reset"));
	CU_ASSERT(has_event(res, "link_event",
			    "a up at +2000 ms: MP_JOIN from 198.18.1.128 to 198.18.1.160"));
	CU_ASSERT(!has_event(res, "link_event_failed", ""));
	CU_ASSERT(metric(res, "stall_ms") >= 0 && metric(res, "stall_ms") < 2500);
	CU_ASSERT(metric(res, "goodput_before_bps") > 0);
	/* The peer's node got the withdrawal of the initial subflow's address, ID 0. */
	for (i = 0; i < nids; i++)
		id0 |= ids[i] == 0;
	CU_ASSERT(nids >= 1);
	CU_ASSERT(id0);
	t_down = event_at(res, "link_event", "a down");
	t_up = event_at(res, "link_event", "a up");
	CU_ASSERT_FATAL(t_down > 0 && t_up > t_down);
	/* Withdrawn means withdrawn: the agent did not reopen a before "up". */
	for (i = 0; i < res->n_events; i++)
		if (!strcmp(res->events[i]->kind, "reopen") &&
		    strstr(res->events[i]->detail, "path 0:"))
			CU_ASSERT(res->events[i]->t_ms >= t_up);
	/* Between down and up, a carried nothing; after up, its new subflow carries data again. */
	{
		double during = acked_after(res, "a", t_down + 300) - acked_after(res, "a", t_up);
		double after = acked_after(res, "a", t_up);

		fprintf(stderr, "a: %.0f bytes acked while withdrawn, %.0f after up\n", during,
			after);
		CU_ASSERT(during < 100000);
		CU_ASSERT(after > 1000000);
	}
	CU_ASSERT(sampled_subflows(res) >= 3);
	fjord__v1__result__free_unpacked(res, NULL);
	spool_drop("ns-bd-ho-rm");

	/*
	 * The join's address b (not configured in the stack: its ID is the
	 * join's) over a 3 s upload: withdrawn under that ID, joined from
	 * again under a new one.
	 */
	mk_run(&c, "ns-bd-ho-rm-b", FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_HANDOVER, "ab");
	c.run.stack = FJORD__V1__STACK__STACK_BUNDLED;
	c.bulk.duration_s = 3;
	c.bulk.direction = FJORD__V1__DIRECTION__DIRECTION_UPLOAD;
	down_up(&c, "b");
	CU_ASSERT_EQUAL_FATAL(rm_capture_start(&cap), 0);
	res = run_in_client(&c);
	nids = rm_capture_stop(&cap, ids, sizeof(ids));
	CU_ASSERT_PTR_NOT_NULL_FATAL(res);
	CU_ASSERT(res->ok);
	fprintf(stderr,
		"bundled handover, b withdrawn: stall %.0f ms, dip %.0f%%, recover %.0f ms, %zu "
		"REMOVE_ADDR ID(s) at the peer\n",
		metric(res, "stall_ms"), metric(res, "goodput_dip_pct"), metric(res, "recover_ms"),
		nids);
	CU_ASSERT_EQUAL(metric(res, "sha256_ok"), 1);
	CU_ASSERT(has_event(res, "link_event",
			    "b down at +1000 ms: REMOVE_ADDR of 198.18.2.128 sent, its subflows "
			    "reset"));
	CU_ASSERT(has_event(res, "link_event",
			    "b up at +2000 ms: MP_JOIN from 198.18.2.128 to 198.18.2.160"));
	CU_ASSERT(!has_event(res, "link_event_failed", ""));
	CU_ASSERT(metric(res, "stall_ms") >= 0 && metric(res, "stall_ms") < 2500);
	/* The join's ID, never the initial subflow's 0. */
	CU_ASSERT(nids >= 1);
	for (i = 0; i < nids; i++)
		CU_ASSERT(ids[i] != 0);
	t_down = event_at(res, "link_event", "b down");
	t_up = event_at(res, "link_event", "b up");
	CU_ASSERT_FATAL(t_down > 0 && t_up > t_down);
	{
		double during = acked_after(res, "b", t_down + 300) - acked_after(res, "b", t_up);
		double after = acked_after(res, "b", t_up);

		fprintf(stderr, "b: %.0f bytes acked while withdrawn, %.0f after up\n", during,
			after);
		CU_ASSERT(during < 100000);
		CU_ASSERT(after > 1000000);
	}
	fjord__v1__result__free_unpacked(res, NULL);
	spool_drop("ns-bd-ho-rm-b");
}

struct sup_arg {
	struct bundled_sup *sup;
	unsigned int hang_ms;
	int rc;
};

static void start_sup(void *arg)
{
	struct sup_arg *a = arg;
	struct bundled_cfg b = { .n_isps = 0 };

	snprintf(b.resp_tun, sizeof(b.resp_tun), "fjbr");
	a->rc = bundled_sup_create(loop, &b, agent_responder_port(resp), 16, 30, a->hang_ms,
				   &a->sup);
}

/* Runs the loop (where the supervisor restarts) in the server namespace until the pid changes. */
struct sup_wait {
	struct bundled_sup *sup;
	int old_pid;
	unsigned int max_ms;
};

static void sup_wait_new(void *arg)
{
	struct sup_wait *w = arg;
	uint64_t t0 = fj_mono_ms();

	while (fj_mono_ms() - t0 < w->max_ms &&
	       (bundled_sup_pid(w->sup) <= 0 || bundled_sup_pid(w->sup) == w->old_pid))
		agent_loop_run_once(loop, 20);
}

static Fjord__V1__Result *bundled_echo_once(const char *id)
{
	static Fjord__V1__EchoParams ep;
	struct run_cmd c;

	mk_run(&c, id, FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_ECHO, "a");
	c.run.stack = FJORD__V1__STACK__STACK_BUNDLED;
	fjord__v1__echo_params__init(&ep);
	ep.count = 20;
	ep.message_bytes = 100;
	c.spec.params_case = FJORD__V1__EXPERIMENT_SPEC__PARAMS_ECHO;
	c.spec.echo = &ep;
	return run_in_client(&c);
}

/*
 * The supervised bundled responder: stopped with SIGSTOP (alive, answering
 * nobody), its silence is found within hang_ms and a bit, it is killed and a
 * new one serves runs again; a crash (SIGKILL) restarts it as well.
 */
static void test_bundled_resp_hang(void)
{
	struct sup_arg a = { NULL, 1500, -1 };
	unsigned int starts, exits, hangs;
	Fjord__V1__Result *res;
	uint64_t t0;
	int pid1, pid2;

	if (!usable)
		return;
	CU_ASSERT_EQUAL_FATAL(bundled_setup(), 0);
	set_client_bundled("fjbc");
	/* The suite's own responder holds the device: the supervised one takes over. */
	bundled_resp_stop(bundled_pid);
	bundled_pid = -1;
	CU_ASSERT_EQUAL(fj_test_in_ns(ns_s, start_sup, &a), 0);
	CU_ASSERT_EQUAL_FATAL(a.rc, 0);
	pid1 = bundled_sup_pid(a.sup);
	CU_ASSERT_FATAL(pid1 > 0);
	res = bundled_echo_once("ns-bd-sup1");
	CU_ASSERT_PTR_NOT_NULL_FATAL(res);
	CU_ASSERT(res->ok);
	fjord__v1__result__free_unpacked(res, NULL);
	/* Beating: three times hang_ms of serving is no hang. */
	t0 = fj_mono_ms();
	while (fj_mono_ms() - t0 < 3 * a.hang_ms)
		agent_loop_run_once(loop, 20);
	bundled_sup_counts(a.sup, &starts, &exits, &hangs);
	CU_ASSERT_EQUAL(hangs, 0);
	CU_ASSERT_EQUAL(bundled_sup_pid(a.sup), pid1);

	CU_ASSERT_EQUAL(signal_one(pid1, SIGSTOP), 0);
	t0 = fj_mono_ms();
	{
		struct sup_wait w = { a.sup, pid1, 10000 };

		CU_ASSERT_EQUAL(fj_test_in_ns(ns_s, sup_wait_new, &w), 0);
	}
	pid2 = bundled_sup_pid(a.sup);
	bundled_sup_counts(a.sup, &starts, &exits, &hangs);
	fprintf(stderr, "\nstopped responder replaced after %llu ms\n",
		(unsigned long long)(fj_mono_ms() - t0));
	/* Silent for hang_ms (checked every hang_ms / 4), then 1 s before the new one. */
	CU_ASSERT(fj_mono_ms() - t0 < a.hang_ms + 1000 + 1500);
	CU_ASSERT_FATAL(pid2 > 0 && pid2 != pid1);
	CU_ASSERT_EQUAL(hangs, 1);
	CU_ASSERT_EQUAL(exits, 1);
	CU_ASSERT_EQUAL(starts, 2);
	/* The old one is gone (reaped), the new one serves. */
	CU_ASSERT(signal_one(pid1, 0) < 0);
	res = bundled_echo_once("ns-bd-sup2");
	CU_ASSERT_PTR_NOT_NULL_FATAL(res);
	CU_ASSERT(res->ok);
	CU_ASSERT_EQUAL(metric(res, "messages"), 20);
	fjord__v1__result__free_unpacked(res, NULL);

	/* A crash: started again after 1 s, not counted as a hang. */
	CU_ASSERT_EQUAL(signal_one(pid2, SIGKILL), 0);
	{
		struct sup_wait w = { a.sup, pid2, 5000 };

		CU_ASSERT_EQUAL(fj_test_in_ns(ns_s, sup_wait_new, &w), 0);
	}
	bundled_sup_counts(a.sup, &starts, &exits, &hangs);
	CU_ASSERT(bundled_sup_pid(a.sup) > 0 && bundled_sup_pid(a.sup) != pid2);
	CU_ASSERT_EQUAL(hangs, 1);
	CU_ASSERT_EQUAL(exits, 2);
	CU_ASSERT_EQUAL(starts, 3);
	bundled_sup_destroy(a.sup);
	CU_ASSERT_EQUAL(fj_test_in_ns(ns_s, start_bundled_resp, NULL), 0);
}

/* The bundled responder again, knowing its addresses (for the probe's ADD_ADDR check). */
static void start_bundled_resp_addrs(void *arg)
{
	struct bundled_cfg b = { .n_isps = 2 };
	char err[200] = "";

	(void)arg;
	snprintf(b.resp_tun, sizeof(b.resp_tun), "fjbr");
	snprintf(b.isps[0].isp, sizeof(b.isps[0].isp), "a");
	snprintf(b.isps[0].resp[0], sizeof(b.isps[0].resp[0]), "198.18.1.160");
	snprintf(b.isps[1].isp, sizeof(b.isps[1].isp), "b");
	snprintf(b.isps[1].resp[0], sizeof(b.isps[1].resp[0]), "198.18.2.160");
	if (bundled_resp_start(&b, agent_responder_port(resp), 16, 30, &bundled_pid, err,
			       sizeof(err)) < 0)
		fprintf(stderr, "\nbundled responder: %s\n", err);
}

/* bundled_setup(), with a bundled responder that announces its other address when asked. */
static int bundled_setup_addrs(void)
{
	if (bundled_setup() < 0)
		return -1;
	bundled_resp_stop(bundled_pid);
	bundled_pid = -1;
	return fj_test_in_ns(ns_s, start_bundled_resp_addrs, NULL) < 0 || bundled_pid <= 0 ? -1 : 0;
}

/* A probe on the bundled stack over the paths of links. */
static Fjord__V1__Result *bundled_probe(const char *id, const char *links, unsigned int timeout_ms)
{
	struct run_cmd c;

	mk_run(&c, id, FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_PROBE, links);
	c.run.stack = FJORD__V1__STACK__STACK_BUNDLED;
	c.probe.timeout_ms = timeout_ms;
	return run_in_client(&c);
}

/*
 * The probe on the bundled stack, the middleboxes of probe_middleboxes put
 * in front of the client's bundled addresses: a behind a NAT (its bundled
 * address rewritten to 198.18.1.1), b stripping MPTCP options (the bundled
 * SYN/ACK comes without MP_CAPABLE; the join from b on path a loses
 * MP_JOIN), n without a bundled address. Each finding says so and that the
 * bundled stack made it; the run keeps the bundled addresses and libmps.
 */
static void test_probe_bundled_middleboxes(void)
{
	Fjord__V1__Result *res;
	const Fjord__V1__ProbeFinding *f;

	if (!usable)
		return;
	CU_ASSERT_EQUAL_FATAL(bundled_setup_addrs(), 0);
	set_client_bundled("fjbc");
	CU_ASSERT_EQUAL_FATAL(
		sh("ip netns exec %s iptables -t mangle -A POSTROUTING -o b0 -p tcp "
		   "-j TCPOPTSTRIP --strip-options 30 && "
		   "ip netns exec %s iptables -t nat -A POSTROUTING -s 198.18.1.128 -o a0 "
		   "-j SNAT --to-source 198.18.1.1",
		   ns_c, ns_c),
		0);
	res = bundled_probe("ns-bprobe", "abn", 1000);
	sh("ip netns exec %s iptables -t mangle -F && ip netns exec %s iptables -t nat -F", ns_c,
	   ns_c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(res);
	CU_ASSERT(res->ok);
	CU_ASSERT_EQUAL_FATAL(res->n_probe_findings, 3);
	/* a: behind the NAT, MPTCP survives it; the join from b loses MP_JOIN to b's stripping. */
	f = res->probe_findings[0];
	CU_ASSERT_EQUAL(f->stack, FJORD__V1__STACK__STACK_BUNDLED);
	CU_ASSERT(f->reachable);
	CU_ASSERT(f->mp_capable);
	CU_ASSERT(f->nat);
	CU_ASSERT_STRING_EQUAL(f->seen_address, "198.18.1.1");
	CU_ASSERT(!f->mp_join);
	CU_ASSERT_PTR_NOT_NULL(strstr(f->mptcp_check, "MP_JOIN: none of 1 join(s) up"));
	CU_ASSERT(has_event(res, "mp_join_failed", "path 0 (a -> a"));
	CU_ASSERT(has_event(res, "nat", "path 0 (a -> a"));
	/* The bundled responder's ADD_ADDR of its b address came through the NAT. */
	CU_ASSERT_EQUAL(f->add_addr_accepted, 1);
	/* The checksum test ran with checksums negotiated, and they held. */
	CU_ASSERT(f->csum_tested);
	CU_ASSERT(!f->csum_failed);
	CU_ASSERT_EQUAL(f->csum_mp_fail_tx + f->csum_mp_fail_rx + f->checksum_errors, 0);
	/* b: the option stripped, the connection works as TCP; said where and why. */
	f = res->probe_findings[1];
	CU_ASSERT(f->reachable);
	CU_ASSERT(!f->mp_capable);
	CU_ASSERT(!f->nat);
	CU_ASSERT_PTR_NOT_NULL(strstr(f->mptcp_check, "at the SYN/ACK"));
	CU_ASSERT(has_event(res, "mp_capable_stripped", "path 1 (b -> b"));
	CU_ASSERT(!f->csum_tested);
	/* n: no bundled address on that ISP. */
	f = res->probe_findings[2];
	CU_ASSERT(!f->reachable);
	CU_ASSERT_PTR_NOT_NULL(strstr(f->error, "this agent has no bundled IPv4 address on ISP n"));
	CU_ASSERT(has_event(res, "probe_failed", "path 2 (n -> n"));
	CU_ASSERT_EQUAL(metric(res, "paths_reachable"), 2);
	CU_ASSERT_EQUAL(metric(res, "paths_mp_capable"), 1);
	CU_ASSERT_EQUAL(metric(res, "paths_nat"), 1);
	CU_ASSERT_EQUAL(metric(res, "p1_mp_capable"), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(res->provenance);
	CU_ASSERT_EQUAL(res->provenance->stack, FJORD__V1__STACK__STACK_BUNDLED);
	CU_ASSERT_STRING_EQUAL(res->provenance->stack_version, BUNDLED_LIBMPS_VERSION);
	CU_ASSERT_EQUAL_FATAL(res->provenance->n_paths, 3);
	CU_ASSERT_STRING_EQUAL(res->provenance->paths[0]->local_address, "198.18.1.128");
	CU_ASSERT_STRING_EQUAL(res->provenance->paths[0]->remote_address, "198.18.1.160");
	fjord__v1__result__free_unpacked(res, NULL);
}

/*
 * A clean path on the bundled stack: MP_JOIN from b comes up, the bundled
 * responder's ADD_ADDR of its b address arrives (HMAC verified, kept);
 * checksums hold.
 */
static void test_probe_bundled_join(void)
{
	Fjord__V1__Result *res;
	const Fjord__V1__ProbeFinding *f;

	if (!usable)
		return;
	CU_ASSERT_EQUAL_FATAL(bundled_setup_addrs(), 0);
	set_client_bundled("fjbc");
	res = bundled_probe("ns-bprobe-join", "a", 2000);
	CU_ASSERT_PTR_NOT_NULL_FATAL(res);
	CU_ASSERT(res->ok);
	CU_ASSERT_EQUAL_FATAL(res->n_probe_findings, 1);
	f = res->probe_findings[0];
	CU_ASSERT(f->mp_capable);
	CU_ASSERT(!f->nat);
	CU_ASSERT_STRING_EQUAL(f->seen_address, "198.18.1.128");
	CU_ASSERT(f->mp_join);
	CU_ASSERT(f->subflows >= 2);
	CU_ASSERT_PTR_NOT_NULL(strstr(f->mptcp_check, "MP_JOIN: 1 of 1 join(s) up"));
	CU_ASSERT_EQUAL(f->add_addr_accepted, 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(f->mptcp_check, "ADD_ADDR: 1 received, 1 kept"));
	CU_ASSERT(f->csum_tested);
	CU_ASSERT(!f->csum_failed);
	CU_ASSERT(!f->payload_modified);
	CU_ASSERT_PTR_NOT_NULL(strstr(f->csum_check, "every byte echoed"));
	/* Sequence numbers: traced from the kernel address, nothing rewrites them here. */
	CU_ASSERT(!f->seq_rewritten);
	CU_ASSERT_PTR_NOT_NULL(f->seq_check);
	CU_ASSERT(!has_event(res, "probe_failed", ""));
	fjord__v1__result__free_unpacked(res, NULL);
}

/*
 * Bundled probe failures: the client TUN missing or busy fails the run with
 * the reason; the peer's bundled responder gone makes each path a finding
 * that says so, within the timeout.
 */
static void test_probe_bundled_failures(void)
{
	struct mps_tun *held = NULL;
	Fjord__V1__Result *res;
	uint64_t t0;

	if (!usable)
		return;
	CU_ASSERT_EQUAL_FATAL(bundled_setup(), 0);
	set_client_bundled("fjbnone");
	res = bundled_probe("ns-bprobe-missing", "a", 500);
	CU_ASSERT_PTR_NOT_NULL_FATAL(res);
	CU_ASSERT(!res->ok);
	CU_ASSERT_PTR_NOT_NULL(strstr(res->error, "TUN device fjbnone does not exist"));
	CU_ASSERT_EQUAL(res->provenance->stack, FJORD__V1__STACK__STACK_BUNDLED);
	fjord__v1__result__free_unpacked(res, NULL);
	set_client_bundled("fjbc");
	CU_ASSERT_EQUAL(fj_test_in_ns(ns_c, hold_tun, &held), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(held);
	res = bundled_probe("ns-bprobe-busy", "a", 500);
	mps_tun_close(held);
	CU_ASSERT_PTR_NOT_NULL_FATAL(res);
	CU_ASSERT(!res->ok);
	CU_ASSERT_PTR_NOT_NULL(strstr(res->error, "TUN device fjbc is busy"));
	fjord__v1__result__free_unpacked(res, NULL);
	bundled_resp_stop(bundled_pid);
	bundled_pid = -1;
	t0 = fj_mono_ms();
	res = bundled_probe("ns-bprobe-noresp", "ab", 500);
	CU_ASSERT(fj_mono_ms() - t0 < 5000);
	CU_ASSERT_PTR_NOT_NULL_FATAL(res);
	CU_ASSERT(!res->ok);
	CU_ASSERT_PTR_NOT_NULL(strstr(res->error, "no path reached the responder"));
	CU_ASSERT_EQUAL_FATAL(res->n_probe_findings, 2);
	CU_ASSERT_PTR_NOT_NULL(strstr(res->probe_findings[1]->error, "198.18.2.160 port"));
	CU_ASSERT_PTR_NOT_NULL(strstr(res->probe_findings[1]->error, "did not answer in time"));
	CU_ASSERT(has_event(res, "probe_failed", "path 1 (b -> b"));
	fjord__v1__result__free_unpacked(res, NULL);
	CU_ASSERT_EQUAL(fj_test_in_ns(ns_s, start_bundled_resp, NULL), 0);
}

static const struct fj_test tests[] = {
	{ "bulk_two_paths", test_bulk_two_paths },
	{ "probe_middleboxes", test_probe_middleboxes },
	{ "probe_join", test_probe_join },
	{ "probe_checksums", test_probe_checksums },
	{ "probe_blackhole", test_probe_blackhole },
	{ "handover_hook", test_handover_hook },
	{ "handover_endpoint", test_handover_endpoint },
	{ "bundled_bulk", test_bundled_bulk },
	{ "bundled_echo", test_bundled_echo },
	{ "bundled_two_at_once", test_bundled_two_at_once },
	{ "bundled_failures", test_bundled_failures },
	{ "bundled_peer_vanishes", test_bundled_peer_vanishes },
	{ "bundled_rr", test_bundled_rr },
	{ "bundled_handover", test_bundled_handover },
	{ "bundled_handover_events", test_bundled_handover_events },
	{ "bundled_handover_withdraw", test_bundled_handover_withdraw },
	{ "bundled_resp_hang", test_bundled_resp_hang },
	{ "probe_bundled_middleboxes", test_probe_bundled_middleboxes },
	{ "probe_bundled_join", test_probe_bundled_join },
	{ "probe_bundled_failures", test_probe_bundled_failures },
	{ NULL, NULL },
};

const struct fj_suite fj_suite_agent_exp_ns = { "agent_exp_ns", ns_setup, ns_teardown, tests };
