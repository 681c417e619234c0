/*
 * Echo experiment against the responder on loopback, through the runner (so
 * the client runs in a child process, the responder in this loop): kernel
 * MPTCP, plain TCP, IPv6 from the peer's addresses, an MPTCP client meeting a
 * TCP-only responder (fallback), no responder at all; and the responder's
 * connection cap and idle timeout.
 */
#define _XOPEN_SOURCE 700
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent_loop.h"
#include "agent_runner.h"
#include "agent_spool.h"
#include "agent_sysinfo.h"
#include "fj_clock.h"
#include "fj_test.h"
#include "responder.h"

#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262
#endif

static char tmpdir[64];
static struct agent_loop *loop;
static struct agent_spool *spool;
static unsigned int ndone;

static int echo_setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/fjord-echo-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	loop = agent_loop_create(1024);
	return loop && agent_spool_open(tmpdir, 8 << 20, &spool, NULL) == 0 ? 0 : -1;
}

static int echo_teardown(void)
{
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

static struct agent_responder *mk_responder(int force_tcp)
{
	static const char *const lo[] = { "127.0.0.1", "::1" };
	struct agent_responder_cfg rc = { lo, 2, 0, 8, 30, force_tcp, NULL };
	struct agent_responder *r = NULL;
	char err[256] = "";

	CU_ASSERT_EQUAL(agent_responder_create(loop, &rc, &r, err, sizeof(err)), 0);
	if (!r)
		fprintf(stderr, "\n%s\n", err);
	return r;
}

struct echo_cmd {
	Fjord__V1__RunCommand cmd;
	Fjord__V1__Run run;
	Fjord__V1__ExperimentSpec spec;
	Fjord__V1__EchoParams echo;
	Fjord__V1__Path path, *paths[1];
	Fjord__V1__Targets targets;
	Fjord__V1__AddressFamily fam;
	Fjord__V1__Agent peer;
	Fjord__V1__Interface iface, *ifaces[1];
	char *addrs[2];
};

static void mk_cmd(struct echo_cmd *c, const char *id, Fjord__V1__Stack stack, const char *remote)
{
	memset(c, 0, sizeof(*c));
	fjord__v1__run_command__init(&c->cmd);
	fjord__v1__run__init(&c->run);
	fjord__v1__experiment_spec__init(&c->spec);
	fjord__v1__echo_params__init(&c->echo);
	fjord__v1__path__init(&c->path);
	c->run.id = (char *)id;
	c->run.stack = stack;
	c->spec.type = FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_ECHO;
	c->spec.params_case = FJORD__V1__EXPERIMENT_SPEC__PARAMS_ECHO;
	c->spec.echo = &c->echo;
	c->echo.message_bytes = 1000;
	c->echo.count = 50;
	c->cmd.run = &c->run;
	c->cmd.spec = &c->spec;
	if (remote) {
		c->path.remote_address = (char *)remote;
		c->path.local_address = strchr(remote, ':') ? "::1" : "127.0.0.1";
		c->path.local_isp = "isp-a";
		c->path.remote_isp = "isp-b";
		c->paths[0] = &c->path;
		c->run.paths = c->paths;
		c->run.n_paths = 1;
	}
}

static struct agent_runner *mk_runner(unsigned int port)
{
	struct agent_runner_cfg cfg = { 2, 10, port, FJORD_AGENT_VERSION };
	struct agent_runner *r = NULL;

	CU_ASSERT_EQUAL(agent_runner_create(loop, spool, &cfg, on_done, NULL, &r), 0);
	return r;
}

static Fjord__V1__Result *run_one(struct agent_runner *r, struct echo_cmd *c)
{
	uint64_t end = fj_mono_ms() + 10000;
	unsigned int want = ndone + 1;
	Fjord__V1__Result *res;
	uint8_t *buf;
	size_t len;

	CU_ASSERT_EQUAL(agent_runner_start(r, &c->cmd), 0);
	while (ndone < want && fj_mono_ms() < end)
		agent_loop_run_once(loop, 50);
	if (agent_spool_read_result(spool, c->run.id, &buf, &len))
		return NULL;
	res = fjord__v1__result__unpack(NULL, len, buf);
	free(buf);
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

static size_t trace_lines(const char *run_id)
{
	char p[256], line[128];
	size_t n = 0;
	unsigned int seq, rtt;
	unsigned long long t;
	FILE *f;

	if (agent_spool_trace_path(spool, run_id, "rtt.csv", p, sizeof(p)))
		return 0;
	f = fopen(p, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		CU_ASSERT_EQUAL(sscanf(line, "%u,%llu,%u", &seq, &t, &rtt), 3);
		CU_ASSERT_EQUAL(seq, n);
		n++;
	}
	fclose(f);
	return n;
}

static void check_good(const Fjord__V1__Result *res, const char *id, Fjord__V1__Stack stack)
{
	CU_ASSERT_PTR_NOT_NULL_FATAL(res);
	if (!res->ok)
		fprintf(stderr, "\n%s: %s\n", id, res->error);
	CU_ASSERT(res->ok);
	CU_ASSERT_EQUAL(metric(res, "messages"), 50);
	CU_ASSERT_EQUAL(metric(res, "bytes"), 50000);
	CU_ASSERT(metric(res, "rtt_p50_us") > 0);
	CU_ASSERT(metric(res, "rtt_p95_us") >= metric(res, "rtt_p50_us"));
	CU_ASSERT(metric(res, "rtt_max_us") >= metric(res, "rtt_p95_us"));
	CU_ASSERT(metric(res, "duration_ms") >= 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(res->provenance);
	CU_ASSERT_EQUAL(res->provenance->stack, stack);
	CU_ASSERT_STRING_EQUAL(res->provenance->agent_version, FJORD_AGENT_VERSION);
	CU_ASSERT(strlen(res->provenance->kernel_version) > 0);
	CU_ASSERT(res->provenance->n_paths == 1);
	CU_ASSERT(res->n_subflows >= 1);
	/* Subflow samples at the start and the end at least; acked bytes never shrink. */
	CU_ASSERT(res->n_samples >= 2 * res->n_subflows);
	if (res->n_samples >= 2) {
		CU_ASSERT(res->samples[res->n_samples - 1]->bytes_acked >=
			  res->samples[0]->bytes_acked);
		CU_ASSERT(res->samples[res->n_samples - 1]->bytes_acked >= 50000);
		CU_ASSERT(res->samples[0]->t_ms > 0);
	}
	if (res->n_subflows >= 1) {
		CU_ASSERT(res->subflows[0]->bytes_acked >= 50000);
		CU_ASSERT(res->subflows[0]->bytes_received >= 50000);
	}
	CU_ASSERT_EQUAL(trace_lines(id), 50);
}

static void test_kernel_mptcp_v4(void)
{
	struct agent_responder *resp = mk_responder(0);
	struct agent_runner *r;
	struct echo_cmd c;
	Fjord__V1__Result *res;

	CU_ASSERT_PTR_NOT_NULL_FATAL(resp);
	if (!agent_sysinfo_has_kernel_mptcp()) {
		fprintf(stderr, "\nkernel without MPTCP: this test checks the fallback event\n");
	}
	CU_ASSERT_EQUAL(agent_responder_protocol(resp),
			agent_sysinfo_has_kernel_mptcp() ? IPPROTO_MPTCP : IPPROTO_TCP);
	r = mk_runner(agent_responder_port(resp));
	mk_cmd(&c, "mptcp-v4", FJORD__V1__STACK__STACK_KERNEL, "127.0.0.1");
	res = run_one(r, &c);
	if (agent_sysinfo_has_kernel_mptcp()) {
		check_good(res, "mptcp-v4", FJORD__V1__STACK__STACK_KERNEL);
		CU_ASSERT(!has_event(res, "fallback", ""));
		CU_ASSERT_STRING_EQUAL(res->subflows[0]->remote_address, "127.0.0.1");
		CU_ASSERT_STRING_EQUAL(res->subflows[0]->remote_isp, "isp-b");
		CU_ASSERT(res->provenance->n_sysctls > 0);
	} else {
		check_good(res, "mptcp-v4", FJORD__V1__STACK__STACK_TCP);
		CU_ASSERT(has_event(res, "fallback", "kernel has no MPTCP"));
	}
	fjord__v1__result__free_unpacked(res, NULL);
	agent_runner_destroy(r);
	agent_responder_destroy(resp);
}

static void test_tcp_v4(void)
{
	struct agent_responder *resp = mk_responder(0);
	struct agent_runner *r = mk_runner(agent_responder_port(resp));
	struct echo_cmd c;
	Fjord__V1__Result *res;

	mk_cmd(&c, "tcp-v4", FJORD__V1__STACK__STACK_TCP, "127.0.0.1/8");
	res = run_one(r, &c);
	check_good(res, "tcp-v4", FJORD__V1__STACK__STACK_TCP);
	CU_ASSERT_EQUAL(res->n_subflows, 1);
	CU_ASSERT(!has_event(res, "fallback", ""));
	fjord__v1__result__free_unpacked(res, NULL);
	agent_runner_destroy(r);
	agent_responder_destroy(resp);
}

/* No paths: the peer's first IPv6 address, as the targets ask for IPv6. */
static void test_v6_from_peer(void)
{
	struct agent_responder *resp = mk_responder(0);
	struct agent_runner *r = mk_runner(agent_responder_port(resp));
	struct echo_cmd c;
	Fjord__V1__Result *res;

	mk_cmd(&c, "mptcp-v6", FJORD__V1__STACK__STACK_KERNEL, NULL);
	fjord__v1__agent__init(&c.peer);
	fjord__v1__interface__init(&c.iface);
	fjord__v1__targets__init(&c.targets);
	c.addrs[0] = "127.0.0.1/8";
	c.addrs[1] = "::1/128";
	c.iface.addresses = c.addrs;
	c.iface.n_addresses = 2;
	c.iface.isp = "isp-b";
	c.ifaces[0] = &c.iface;
	c.peer.interfaces = c.ifaces;
	c.peer.n_interfaces = 1;
	c.cmd.peer = &c.peer;
	c.fam = FJORD__V1__ADDRESS_FAMILY__ADDRESS_FAMILY_IPV6;
	c.targets.families = &c.fam;
	c.targets.n_families = 1;
	c.spec.targets = &c.targets;
	res = run_one(r, &c);
	check_good(res, "mptcp-v6",
		   agent_sysinfo_has_kernel_mptcp() ? FJORD__V1__STACK__STACK_KERNEL
						    : FJORD__V1__STACK__STACK_TCP);
	CU_ASSERT_STRING_EQUAL(res->provenance->paths[0]->remote_address, "::1");
	CU_ASSERT_EQUAL(res->provenance->paths[0]->family,
			FJORD__V1__ADDRESS_FAMILY__ADDRESS_FAMILY_IPV6);
	fjord__v1__result__free_unpacked(res, NULL);
	agent_runner_destroy(r);
	agent_responder_destroy(resp);
}

/* An MPTCP client and a TCP-only responder: the connection falls back, and says so. */
static void test_fallback_to_tcp_peer(void)
{
	struct agent_responder *resp = mk_responder(1);
	struct agent_runner *r = mk_runner(agent_responder_port(resp));
	struct echo_cmd c;
	Fjord__V1__Result *res;

	if (!agent_sysinfo_has_kernel_mptcp()) {
		agent_runner_destroy(r);
		agent_responder_destroy(resp);
		return;
	}
	CU_ASSERT_EQUAL(agent_responder_protocol(resp), IPPROTO_TCP);
	mk_cmd(&c, "fallback-1", FJORD__V1__STACK__STACK_KERNEL, "127.0.0.1");
	res = run_one(r, &c);
	check_good(res, "fallback-1", FJORD__V1__STACK__STACK_KERNEL);
	CU_ASSERT(has_event(res, "fallback", "fell back to TCP"));
	fjord__v1__result__free_unpacked(res, NULL);
	agent_runner_destroy(r);
	agent_responder_destroy(resp);
}

static void test_no_responder(void)
{
	struct agent_responder *resp = mk_responder(0);
	unsigned int port = agent_responder_port(resp);
	struct agent_runner *r;
	struct echo_cmd c;
	Fjord__V1__Result *res;

	/* Free the port again so nothing listens there. */
	agent_responder_destroy(resp);
	r = mk_runner(port);
	mk_cmd(&c, "refused-1", FJORD__V1__STACK__STACK_TCP, "127.0.0.1");
	res = run_one(r, &c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(res);
	CU_ASSERT(!res->ok);
	CU_ASSERT_PTR_NOT_NULL(strstr(res->error, "connect to 127.0.0.1 port"));
	CU_ASSERT_PTR_NOT_NULL(strstr(res->error, "Connection refused"));
	CU_ASSERT_EQUAL(metric(res, "messages"), 0);
	fjord__v1__result__free_unpacked(res, NULL);
	mk_cmd(&c, "badaddr-1", FJORD__V1__STACK__STACK_TCP, "not-an-address");
	res = run_one(r, &c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(res);
	CU_ASSERT(!res->ok);
	CU_ASSERT_PTR_NOT_NULL(strstr(res->error, "is not an IPv4 or IPv6 address"));
	fjord__v1__result__free_unpacked(res, NULL);
	mk_cmd(&c, "toobig-1", FJORD__V1__STACK__STACK_TCP, "127.0.0.1");
	c.echo.message_bytes = 1 << 20;
	res = run_one(r, &c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(res);
	CU_ASSERT_PTR_NOT_NULL(strstr(res->error, "echo.message_bytes must be at most 65536"));
	fjord__v1__result__free_unpacked(res, NULL);
	agent_runner_destroy(r);
}

/* StackSettings: congestion control per socket; per-namespace settings must match. */
static void test_stack_settings(void)
{
	struct agent_responder *resp = mk_responder(0);
	struct agent_runner *r = mk_runner(agent_responder_port(resp));
	Fjord__V1__StackSettings ss;
	struct echo_cmd c;
	Fjord__V1__Result *res;

	fjord__v1__stack_settings__init(&ss);
	ss.congestion_control = "reno";
	mk_cmd(&c, "cc-reno", FJORD__V1__STACK__STACK_TCP, "127.0.0.1");
	c.spec.stack = &ss;
	res = run_one(r, &c);
	check_good(res, "cc-reno", FJORD__V1__STACK__STACK_TCP);
	CU_ASSERT_STRING_EQUAL(res->provenance->congestion_control, "reno");
	fjord__v1__result__free_unpacked(res, NULL);

	ss.congestion_control = "no-such-cc";
	mk_cmd(&c, "cc-bad", FJORD__V1__STACK__STACK_TCP, "127.0.0.1");
	c.spec.stack = &ss;
	res = run_one(r, &c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(res);
	CU_ASSERT(!res->ok);
	CU_ASSERT_STRING_EQUAL(
		res->error,
		"congestion control 'no-such-cc' not available: No such file or directory");
	fjord__v1__result__free_unpacked(res, NULL);

	if (agent_sysinfo_has_kernel_mptcp()) {
		ss.congestion_control = "";
		ss.scheduler = "no-such-scheduler";
		mk_cmd(&c, "sched-bad", FJORD__V1__STACK__STACK_KERNEL, "127.0.0.1");
		c.spec.stack = &ss;
		res = run_one(r, &c);
		CU_ASSERT_PTR_NOT_NULL_FATAL(res);
		CU_ASSERT(!res->ok);
		CU_ASSERT_PTR_NOT_NULL(strstr(res->error, "(net.mptcp.scheduler); the run asks for "
							  "'no-such-scheduler'"));
		fjord__v1__result__free_unpacked(res, NULL);
	}
	agent_runner_destroy(r);
	agent_responder_destroy(resp);
}

static int connect_lo(unsigned int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void pump(unsigned int ms)
{
	uint64_t end = fj_mono_ms() + ms;

	while (fj_mono_ms() < end)
		agent_loop_run_once(loop, 20);
}

static void test_responder_caps(void)
{
	static const char *const lo[] = { "127.0.0.1" };
	struct agent_responder_cfg rc = { lo, 1, 0, 2, 1, 1, NULL };
	struct agent_responder *resp = NULL;
	struct agent_resp_request q = { .type = AGENT_RESP_ECHO };
	uint8_t req[AGENT_RESP_REQ_LEN], rep[AGENT_RESP_REPLY_LEN];
	struct agent_resp_reply reply;
	char err[256], buf[8];
	int a, b, c;

	CU_ASSERT_EQUAL_FATAL(agent_responder_create(loop, &rc, &resp, err, sizeof(err)), 0);
	a = connect_lo(agent_responder_port(resp));
	b = connect_lo(agent_responder_port(resp));
	pump(100);
	CU_ASSERT_EQUAL(agent_responder_conns(resp), 2);
	c = connect_lo(agent_responder_port(resp));
	pump(100);
	CU_ASSERT_EQUAL(agent_responder_refused(resp), 1);
	CU_ASSERT_EQUAL(agent_responder_conns(resp), 2);
	/* The refused one sees end of file; an accepted one still echoes. */
	CU_ASSERT_EQUAL(recv(c, buf, sizeof(buf), 0), 0);
	agent_resp_request_encode(&q, req);
	CU_ASSERT_EQUAL(send(a, req, sizeof(req), 0), (ssize_t)sizeof(req));
	CU_ASSERT_EQUAL(send(a, "hi", 2, 0), 2);
	pump(50);
	CU_ASSERT_EQUAL(recv(a, rep, sizeof(rep), MSG_DONTWAIT), (ssize_t)sizeof(rep));
	CU_ASSERT_EQUAL(agent_resp_reply_decode(rep, &reply), 0);
	CU_ASSERT(reply.ok);
	CU_ASSERT_STRING_EQUAL(reply.peer, "127.0.0.1");
	CU_ASSERT_EQUAL(recv(a, buf, sizeof(buf), MSG_DONTWAIT), 2);
	/* Idle past 1 s: closed by the responder. */
	pump(2300);
	CU_ASSERT_EQUAL(agent_responder_conns(resp), 0);
	CU_ASSERT_EQUAL(agent_responder_idle_closed(resp), 2);
	close(a);
	close(b);
	close(c);
	agent_responder_destroy(resp);
}

/* In a fresh network namespace: loopback up, MPTCP switched off (per namespace). */
static int netns_without_mptcp(void)
{
	struct ifreq ifr;
	int fd, s;

	if (unshare(CLONE_NEWNET) < 0)
		return -errno;
	s = socket(AF_INET, SOCK_DGRAM, 0);
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		return -EIO;
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		return -EIO;
	close(s);
	fd = open("/proc/sys/net/mptcp/enabled", O_WRONLY);
	if (fd >= 0) {
		if (write(fd, "0\n", 2) != 2) {
			close(fd);
			return -EIO;
		}
		close(fd);
	}
	return agent_sysinfo_has_kernel_mptcp() ? -EEXIST : 0;
}

/*
 * A kernel run where socket(IPPROTO_MPTCP) fails: the client falls back to TCP
 * and says so, the responder listens with TCP. The check runs in a child that
 * moves into its own network namespace (removed when the child exits); the
 * result comes back through the spool on disk.
 */
static void test_kernel_without_mptcp(void)
{
	struct echo_cmd c;
	Fjord__V1__Result *res;
	uint8_t *buf;
	size_t len;
	int status = 0;
	pid_t pid = fork();

	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		struct agent_responder *resp;
		struct agent_runner *r;
		int rc = netns_without_mptcp();

		if (rc < 0)
			_exit(rc == -EPERM ? 77 : 3);
		resp = mk_responder(0);
		if (!resp || agent_responder_protocol(resp) != IPPROTO_TCP)
			_exit(4);
		r = mk_runner(agent_responder_port(resp));
		mk_cmd(&c, "nomptcp-1", FJORD__V1__STACK__STACK_KERNEL, "127.0.0.1");
		res = run_one(r, &c);
		_exit(res ? 0 : 5);
	}
	waitpid(pid, &status, 0);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
		fprintf(stderr,
			"\nkernel_without_mptcp: skipped (no permission for a network namespace)\n");
		return;
	}
	CU_ASSERT_EQUAL_FATAL(WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status), 0);
	CU_ASSERT_EQUAL_FATAL(agent_spool_read_result(spool, "nomptcp-1", &buf, &len), 0);
	res = fjord__v1__result__unpack(NULL, len, buf);
	free(buf);
	check_good(res, "nomptcp-1", FJORD__V1__STACK__STACK_TCP);
	CU_ASSERT(has_event(res, "fallback", "kernel has no MPTCP"));
	fjord__v1__result__free_unpacked(res, NULL);
}

static const struct fj_test tests[] = {
	{ "kernel_without_mptcp", test_kernel_without_mptcp },
	{ "kernel_mptcp_v4", test_kernel_mptcp_v4 },
	{ "tcp_v4", test_tcp_v4 },
	{ "v6_from_peer", test_v6_from_peer },
	{ "fallback_to_tcp_peer", test_fallback_to_tcp_peer },
	{ "no_responder", test_no_responder },
	{ "stack_settings", test_stack_settings },
	{ "responder_caps", test_responder_caps },
	{ NULL, NULL },
};

const struct fj_suite fj_suite_agent_echo = { "agent_echo", echo_setup, echo_teardown, tests };
