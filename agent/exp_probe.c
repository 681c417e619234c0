/*
 * EXPERIMENT_TYPE_PROBE: what the network does to MPTCP on each path (local
 * address x remote address). Per path, a kernel MPTCP connection to the
 * responder, bound to the path's local address:
 *  - reachable: the connection and the responder's reply came through;
 *  - mp_capable: MPTCP_INFO says the connection did not fall back to TCP (a
 *    middlebox that strips the option from the SYN or SYN/ACK makes it fall back);
 *  - nat: the responder's reply carries the address and port it saw, which
 *    differ from the socket's own behind a NAT;
 *  - mp_join: more than one subflow came up within the wait (needs the
 *    node's `ip mptcp endpoint`s and limits); add_addr_accepted from MPTCP_INFO;
 *  - checksums: negotiated on the connection (MPTCP_INFO), and the MIB counter
 *    MPTcpExt DataCsumErr during the probe (counted per network namespace, so
 *    other connections of the node add to it);
 *  - do checksums fail: a second connection with DSS checksums on moves
 *    PROBE_CSUM_BYTES through the echo. Linux has no per-socket switch; it
 *    takes net.mptcp.checksum_enabled when the socket is made, so the probe
 *    sets the sysctl of its namespace for that one socket() call. A box that
 *    rewrites payload and fixes the TCP checksum (an ALG) shows in MPTcpExt
 *    DataCsumErr, MPFailTx/Rx and InfiniteMapTx/Rx, and in the connection
 *    falling back to TCP; the echo coming back changed shows it end to end;
 *  - seq_rewritten: TCP SYNs with a growing TTL towards the responder's
 *    address, and towards the peer's bundled responder on the same ISP when
 *    it has one (exp_tracebox.h): a router's ICMP quote with another sequence
 *    number than the one sent shows a box before that router rewriting them.
 *    Neither end can see this from its socket. Needs CAP_NET_RAW; without it
 *    seq_check says why and seq_quotes stays 0.
 * Findings go into Result.probe_findings, as metrics p<i>_<finding> (0/1) and
 * as events when something is wrong.
 *
 * With run.stack STACK_BUNDLED the connections are the bundled stack's
 * (exp_probe_bundled.c): every path's MP_CAPABLE, NAT, MP_JOIN and ADD_ADDR
 * check first on one stack, then every checksum test on a second one that
 * asks for DSS checksums; the sequence-number check is the same as above,
 * from the path's kernel address (the bundled address is routed into the
 * TUN device, where no raw socket sees the routers' answers).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent_arena.h"
#include "bundled.h"
#include "exp.h"
#include "exp_pcap.h"
#include "exp_probe_bundled.h"
#include "exp_sock.h"
#include "exp_tracebox.h"
#include "fj_clock.h"
#include "mptcp_info.h"

#define PROBE_DEFAULT_TIMEOUT_MS 3000
#define PROBE_MIN_TIMEOUT_MS	 100
#define PROBE_MAX_TIMEOUT_MS	 60000
#define PROBE_MAX_PATHS		 PROBE_BUNDLED_MAX_PATHS
#define PROBE_JOIN_POLL_MS	 20
/* Routers between two sites: a few on the testbed, rarely above 30 on the Internet. */
#define PROBE_TBOX_MAX_TTL 12

/* The MPTcpExt counters the probe reads, as /proc/net/netstat names them. */
enum mib {
	MIB_CSUM_ERR,
	MIB_MPFAIL_TX,
	MIB_MPFAIL_RX,
	MIB_INFMAP_TX,
	MIB_INFMAP_RX,
	MIB_N,
};

static const char *const mib_names[MIB_N] = {
	[MIB_CSUM_ERR] = "DataCsumErr",	   [MIB_MPFAIL_TX] = "MPFailTx",
	[MIB_MPFAIL_RX] = "MPFailRx",	   [MIB_INFMAP_TX] = "InfiniteMapTx",
	[MIB_INFMAP_RX] = "InfiniteMapRx",
};

/* Those counters of this network namespace; -1 for each one the kernel lacks. */
static void mib_read(long long v[MIB_N])
{
	static char names[8192], vals[8192];
	FILE *f = fopen("/proc/net/netstat", "r");

	for (int i = 0; i < MIB_N; i++)
		v[i] = -1;
	if (!f)
		return;
	while (fgets(names, sizeof(names), f) && fgets(vals, sizeof(vals), f)) {
		char *sn, *sv, *n, *val;

		if (strncmp(names, "MPTcpExt:", 9) != 0)
			continue;
		n = strtok_r(names, " \n", &sn);
		val = strtok_r(vals, " \n", &sv);
		for (; n && val; n = strtok_r(NULL, " \n", &sn), val = strtok_r(NULL, " \n", &sv))
			for (int i = 0; i < MIB_N; i++)
				if (!strcmp(n, mib_names[i]))
					v[i] = atoll(val);
		break;
	}
	fclose(f);
}

/* How much a counter grew between two reads (0 when the kernel lacks it). */
static uint32_t mib_delta(const long long a[MIB_N], const long long b[MIB_N], enum mib i)
{
	return a[i] >= 0 && b[i] > a[i] ? (uint32_t)(b[i] - a[i]) : 0;
}

/* The node's `subflow` endpoints: with none, no MP_JOIN is expected from this side. */
static unsigned int subflow_endpoints(void)
{
	FILE *f = popen("ip mptcp endpoint show 2>/dev/null", "r");
	char line[256];
	unsigned int n = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		n += strstr(line, " subflow") != NULL;
	pclose(f);
	return n;
}

static void sock_addr(int fd, char *buf, size_t len, unsigned int *port)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	buf[0] = 0;
	*port = 0;
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
		return;
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &s4->sin_addr, buf, (socklen_t)len);
		*port = ntohs(s4->sin_port);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, buf, (socklen_t)len);
		*port = ntohs(s6->sin6_port);
	}
}

/*
 * The peer's bundled responder address for the path's remote ISP and family,
 * from its kernel responder's "info" answer. A peer without a bundled stack
 * refuses the request: that is no error of the path, so nothing of this
 * exchange goes into the result. 0 with addr and *bport (the bundled
 * responder's port: a host adapter's own, else the kernel responder's)
 * filled, or a negative errno.
 */
static int peer_bundled_addr(const Fjord__V1__RunCommand *cmd, const struct exp_env *env,
			     const struct exp_target *t, unsigned int max_ms, struct exp_out *out,
			     char *addr, size_t len, unsigned int *bport)
{
	Fjord__V1__Result shadow = *out->result;
	struct exp_out sub = *out;
	struct agent_resp_request q = { .type = AGENT_RESP_INFO };
	struct agent_resp_reply reply;
	static char text[AGENT_RESP_INFO_MAX + 1];
	uint8_t l[2];
	size_t n = 0;
	int fd, mptcp = 0, rc;

	if (!t->remote_isp || !t->remote_isp[0])
		return -ENOENT;
	sub.result = &shadow;
	fd = exp_connect_within(cmd, FJORD__V1__STACK__STACK_TCP, t, env, max_ms, &sub, &mptcp);
	if (fd < 0)
		return fd;
	rc = exp_handshake(fd, &q, &reply, &sub);
	if (!rc)
		rc = exp_recv_all(fd, l, 2);
	if (!rc) {
		n = (size_t)l[0] << 8 | l[1];
		rc = n == 0 || n > AGENT_RESP_INFO_MAX ? -EPROTO
						       : exp_recv_all(fd, (uint8_t *)text, n);
	}
	close(fd);
	if (rc)
		return rc;
	text[n] = 0;
	rc = bundled_info_lookup(text, t->remote_isp, t->family == AF_INET6 ? 6 : 4, addr, len);
	if (rc)
		return rc;
	rc = bundled_info_port(text, t->remote_isp, env->responder_port);
	if (rc < 0)
		return rc;
	*bport = (unsigned int)rc;
	return 0;
}

/* One traced target: a sentence for seq_check, and the finding's counters. */
static void trace_one(const char *what, const struct sockaddr_storage *src,
		      const struct sockaddr_storage *dst, const char *dst_str,
		      unsigned int timeout_ms, Fjord__V1__ProbeFinding *f, char *desc, size_t len)
{
	struct exp_tbox_result tr;
	unsigned int hop_ms = timeout_ms / 10;
	size_t used = strlen(desc);

	hop_ms = hop_ms < 100 ? 100 : hop_ms > 1000 ? 1000 : hop_ms;
	if (exp_tbox_run(src, dst, PROBE_TBOX_MAX_TTL, hop_ms, timeout_ms / 4, &tr) < 0) {
		snprintf(desc + used, len - used, "%s%s %s: %s", used ? "; " : "", what, dst_str,
			 tr.error);
		return;
	}
	f->seq_quotes += tr.quotes;
	if (tr.rewritten && !f->seq_rewritten) {
		f->seq_rewritten = 1;
		f->seq_rewrite_hop = tr.rewrite_ttl;
	}
	if (tr.rewritten)
		snprintf(desc + used, len - used,
			 "%s%s %s: rewritten before hop %u (router %s quoted our sequence number "
			 "%+lld)",
			 used ? "; " : "", what, dst_str, tr.rewrite_ttl, tr.rewrite_router,
			 (long long)tr.delta);
	else
		snprintf(desc + used, len - used, "%s%s %s: %u router quote(s) as sent, %s",
			 used ? "; " : "", what, dst_str, tr.quotes,
			 tr.reached ? "destination reached" : "destination not reached");
	/* (hop numbers are TTLs: 1 is the first router) */
}

/*
 * Sequence-number rewriting on the path, from src (the probe connection's
 * own address): towards the responder's address and, when the peer has one
 * on that ISP, its bundled responder's (a router of the peer's site sits in
 * front of it, so a rewrite right before the peer is quoted too).
 */
static void seq_check(const Fjord__V1__RunCommand *cmd, const struct exp_env *env,
		      const struct exp_target *t, const struct sockaddr_storage *local,
		      unsigned int timeout_ms, struct exp_out *out, Fjord__V1__ProbeFinding *f)
{
	struct sockaddr_storage src = *local, dst;
	char desc[512] = "", baddr[64], btext[INET6_ADDRSTRLEN];
	socklen_t dl;
	unsigned int bport = env->responder_port;
	uint16_t port;
	int rc;

	/*
	 * A fresh source port: the answers to our SYNs are then ours alone.
	 * Below 49152, which a bundled stack on this node's own addresses
	 * (bundled_host) takes for itself and keeps the kernel away from.
	 */
	if (getrandom(&port, sizeof(port), 0) != sizeof(port))
		port = (uint16_t)fj_mono_ms();
	port = (uint16_t)(33000 + port % 16000);
	if (src.ss_family == AF_INET)
		((struct sockaddr_in *)&src)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)&src)->sin6_port = htons(port);
	trace_one("responder", &src, &t->remote, t->remote_str, timeout_ms, f, desc, sizeof(desc));
	rc = peer_bundled_addr(cmd, env, t, timeout_ms / 4, out, baddr, sizeof(baddr), &bport);
	if (!rc)
		rc = exp_parse_addr(baddr, bport, &dst, &dl, btext, sizeof(btext));
	if (!rc && dst.ss_family == src.ss_family) {
		trace_one("bundled responder", &src, &dst, btext, timeout_ms, f, desc,
			  sizeof(desc));
	} else {
		size_t used = strlen(desc);

		snprintf(desc + used, sizeof(desc) - used,
			 "; no bundled responder of the peer on %s (%s)",
			 t->remote_isp ? t->remote_isp : "this ISP",
			 strerror(rc ? -rc : EAFNOSUPPORT));
	}
	f->seq_check = agent_arena_strdup(out->arena, desc);
}

/* Sends and reads back some data so that subflows, ADD_ADDR and DSS checksums get exercised. */
static int echo_some(int fd)
{
	static uint8_t tx[PROBE_ECHO_BYTES], rx[PROBE_ECHO_BYTES];
	int rc;

	agent_resp_fill(1, 0, tx, sizeof(tx));
	rc = exp_send_all(fd, tx, sizeof(tx));
	if (!rc)
		rc = exp_recv_all(fd, rx, sizeof(rx));
	if (!rc && memcmp(tx, rx, sizeof(rx)))
		rc = -EBADMSG;
	return rc;
}

/*
 * A kernel MPTCP socket that asks for DSS checksums. Linux takes
 * net.mptcp.checksum_enabled of the namespace when the socket is made and
 * has no per-socket switch, so the sysctl is 1 for just this socket() call.
 * The sysctl file is flock()ed meanwhile: another probe of the node doing
 * the same waits rather than find it 1, leave it alone and see it put back
 * to 0 before its own socket() (sockets made otherwise in that instant ask
 * for checksums too, which a peer honours anyway). Returns the fd or a
 * negative errno; *why says what went wrong with the sysctl, if anything
 * (the socket is made regardless: the node may have checksums on already,
 * and MPTCP_INFO tells).
 */
static int csum_socket(int family, char *why, size_t len)
{
	char was[8] = "";
	ssize_t n = -1;
	int fd, sfd, e;

	why[0] = 0;
	sfd = open("/proc/sys/net/mptcp/checksum_enabled", O_RDWR | O_CLOEXEC);
	if (sfd < 0)
		snprintf(why, len, "net.mptcp.checksum_enabled: %s", strerror(errno));
	else if (flock(sfd, LOCK_EX) < 0 || (n = pread(sfd, was, sizeof(was) - 1, 0)) <= 0)
		snprintf(why, len, "net.mptcp.checksum_enabled unreadable: %s",
			 n == 0 ? "empty" : strerror(errno));
	else if (was[0] != '0')
		n = -1; /* on already: nothing to put back */
	else if (pwrite(sfd, "1", 1, 0) != 1) {
		snprintf(why, len, "net.mptcp.checksum_enabled: %s", strerror(errno));
		n = -1;
	}
	fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_MPTCP);
	e = errno;
	if (sfd >= 0 && n > 0 && pwrite(sfd, "0", 1, 0) != 1)
		snprintf(why, len, "net.mptcp.checksum_enabled stayed 1: %s", strerror(errno));
	if (sfd >= 0)
		close(sfd); /* and the lock with it */
	return fd < 0 ? -e : fd;
}

/*
 * Echoes PROBE_CSUM_BYTES in chunks (the responder echoes as it reads, so a
 * chunk at a time never fills both directions' buffers), watching the
 * subflows. Returns 0, or the first error; *changed when an echo differed,
 * at stream byte *where.
 */
static int csum_echo(int fd, uint64_t end_ms, Fjord__V1__ProbeFinding *f, bool *changed,
		     uint64_t *where)
{
	static uint8_t tx[PROBE_CSUM_CHUNK], rx[PROBE_CSUM_CHUNK];
	struct agent_subflow_raw sf[AGENT_MPTCP_MAX_SUBFLOWS];
	struct agent_mptcp_state st;
	size_t n;
	int rc = 0;

	*changed = false;
	for (uint64_t off = 0; off < PROBE_CSUM_BYTES && !rc; off += sizeof(tx)) {
		if (fj_mono_ms() > end_ms)
			return -ETIMEDOUT;
		agent_resp_fill(2, off, tx, sizeof(tx));
		rc = exp_send_all(fd, tx, sizeof(tx));
		if (!rc)
			rc = exp_recv_all(fd, rx, sizeof(rx));
		for (size_t i = 0; !rc && !*changed && i < sizeof(rx); i++)
			if (rx[i] != tx[i]) {
				*changed = true;
				*where = off + i;
			}
		if (!agent_mptcp_snapshot(fd, 1, sf, &n, &st) && st.is_mptcp && !st.fallback) {
			size_t up = 0;

			for (size_t i = 0; i < n; i++)
				up += agent_subflow_usable(&sf[i]);
			if (up > f->csum_subflows)
				f->csum_subflows = (uint32_t)up;
		}
	}
	return rc;
}

/* The sentence of csum_check: what was seen. */
static void csum_describe(Fjord__V1__ProbeFinding *f, uint32_t errs, int rc, bool changed,
			  uint64_t where, const char *why, struct exp_out *out)
{
	char d[512];
	int n;

	n = snprintf(d, sizeof(d),
		     "DSS checksums on; %s; DataCsumErr %u, MP_FAIL sent %u received %u, "
		     "infinite mapping sent %u received %u%s",
		     rc ? "the echo broke off" : "every byte echoed", errs, f->csum_mp_fail_tx,
		     f->csum_mp_fail_rx, f->csum_infinite_map_tx, f->csum_infinite_map_rx,
		     f->csum_fallback ? "; fell back to TCP during the transfer" : "");
	if (changed && n > 0 && (size_t)n < sizeof(d))
		n += snprintf(d + n, sizeof(d) - (size_t)n,
			      "; the echo came back changed from byte %llu on",
			      (unsigned long long)where);
	if (rc && n > 0 && (size_t)n < sizeof(d))
		n += snprintf(d + n, sizeof(d) - (size_t)n, " (%s)", strerror(-rc));
	if (f->csum_subflows > 1 && n > 0 && (size_t)n < sizeof(d))
		n += snprintf(d + n, sizeof(d) - (size_t)n,
			      "; %u subflows: a failure may be another path's", f->csum_subflows);
	if (why[0] && n > 0 && (size_t)n < sizeof(d))
		snprintf(d + n, sizeof(d) - (size_t)n, "; %s", why);
	f->csum_check = agent_arena_strdup(out->arena, d);
}

/*
 * Do DSS checksums fail on the path? A connection with checksums on from
 * the path's local address, an echo of PROBE_CSUM_BYTES, and the namespace's
 * MPTcpExt counters around it. Within budget_ms.
 */
static void csum_test(const struct exp_target *t, unsigned int budget_ms, struct exp_out *out,
		      Fjord__V1__ProbeFinding *f)
{
	struct agent_resp_request q = { .type = AGENT_RESP_ECHO };
	struct agent_subflow_raw sf[AGENT_MPTCP_MAX_SUBFLOWS];
	Fjord__V1__Result shadow = *out->result;
	struct exp_out sub = *out;
	struct agent_mptcp_state st;
	struct agent_resp_reply reply;
	struct timeval tv = { .tv_sec = budget_ms / 1000, .tv_usec = budget_ms % 1000 * 1000 };
	uint64_t end = fj_mono_ms() + budget_ms, where = 0;
	long long m0[MIB_N], m1[MIB_N];
	char why[160], d[320];
	bool changed = false;
	size_t n;
	int fd, rc;

	sub.result = &shadow;
	mib_read(m0);
	fd = csum_socket(t->family, why, sizeof(why));
	if (fd < 0) {
		snprintf(d, sizeof(d), "not run: socket: %s", strerror(-fd));
		f->csum_check = agent_arena_strdup(out->arena, d);
		return;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if ((t->has_local && bind(fd, (const struct sockaddr *)&t->local, t->local_len) < 0) ||
	    connect(fd, (const struct sockaddr *)&t->remote, t->remote_len) < 0) {
		snprintf(d, sizeof(d), "not run: connect from %s: %s", t->local_str,
			 strerror(errno));
		f->csum_check = agent_arena_strdup(out->arena, d);
		close(fd);
		return;
	}
	rc = exp_handshake(fd, &q, &reply, &sub);
	if (!rc && (agent_mptcp_snapshot(fd, 1, sf, &n, &st) < 0 || !st.csum_enabled)) {
		snprintf(d, sizeof(d), "not run: DSS checksums were not negotiated%s%s",
			 why[0] ? ": " : "", why);
		f->csum_check = agent_arena_strdup(out->arena, d);
		close(fd);
		return;
	}
	if (rc) {
		snprintf(d, sizeof(d), "not run: %s",
			 shadow.error && shadow.error[0] ? shadow.error : strerror(-rc));
		f->csum_check = agent_arena_strdup(out->arena, d);
		close(fd);
		return;
	}
	f->csum_tested = 1;
	f->csum_subflows = 1;
	rc = csum_echo(fd, end, f, &changed, &where);
	agent_mptcp_snapshot(fd, 1, sf, &n, &st);
	f->csum_fallback = st.fallback;
	close(fd);
	mib_read(m1);
	f->csum_mp_fail_tx = mib_delta(m0, m1, MIB_MPFAIL_TX);
	f->csum_mp_fail_rx = mib_delta(m0, m1, MIB_MPFAIL_RX);
	f->csum_infinite_map_tx = mib_delta(m0, m1, MIB_INFMAP_TX);
	f->csum_infinite_map_rx = mib_delta(m0, m1, MIB_INFMAP_RX);
	f->payload_modified = changed;
	/*
	 * The verdict rests on what this connection itself showed: the
	 * counters are the namespace's, and another run of the node may move
	 * them. A checksummed connection that fell back to TCP mid-transfer,
	 * or whose echo came back changed (the DSS checksum covers every byte,
	 * so one of them failed), or that the peer reset while the counters
	 * moved, met a failing checksum.
	 */
	f->csum_failed =
		f->csum_fallback || changed ||
		(rc == -ECONNRESET &&
		 (mib_delta(m0, m1, MIB_CSUM_ERR) || f->csum_mp_fail_tx || f->csum_mp_fail_rx ||
		  f->csum_infinite_map_tx || f->csum_infinite_map_rx));
	csum_describe(f, mib_delta(m0, m1, MIB_CSUM_ERR), rc, changed, where, why, out);
}

static Fjord__V1__ProbeFinding *probe_path(const Fjord__V1__RunCommand *cmd,
					   const struct exp_env *env, size_t idx,
					   unsigned int timeout_ms, struct exp_out *out)
{
	Fjord__V1__ProbeFinding *f = agent_arena_alloc(out->arena, sizeof(*f));
	Fjord__V1__Result shadow = *out->result;
	struct exp_out sub = *out;
	struct agent_resp_request q = { .type = AGENT_RESP_ECHO };
	struct agent_resp_reply reply;
	struct agent_subflow_raw sf[AGENT_MPTCP_MAX_SUBFLOWS];
	struct agent_mptcp_state st;
	struct exp_target t;
	struct sockaddr_storage self;
	socklen_t self_len = sizeof(self);
	char local[64];
	unsigned int lport;
	long long m0[MIB_N], m1[MIB_N];
	uint64_t end;
	size_t n;
	int fd, mptcp = 0, rc;

	if (!f)
		return NULL;
	mib_read(m0);
	fjord__v1__probe_finding__init(f);
	f->stack = FJORD__V1__STACK__STACK_KERNEL;
	/* A path that fails is a finding of this path, not the run's failure. */
	shadow.error = NULL;
	sub.result = &shadow;
	if (exp_resolve_target(cmd, env, idx, &t, &sub) < 0)
		goto fail;
	fd = exp_connect_within(cmd, FJORD__V1__STACK__STACK_KERNEL, &t, env, timeout_ms, &sub,
				&mptcp);
	if (fd < 0)
		goto fail;
	if (!mptcp) {
		exp_fail(&sub, "the kernel has no MPTCP: nothing to probe");
		close(fd);
		goto fail;
	}
	if (exp_handshake(fd, &q, &reply, &sub) < 0) {
		close(fd);
		goto fail;
	}
	f->reachable = 1;
	sock_addr(fd, local, sizeof(local), &lport);
	if (getsockname(fd, (struct sockaddr *)&self, &self_len) < 0)
		self.ss_family = AF_UNSPEC;
	f->seen_address = agent_arena_strdup(out->arena, reply.peer);
	f->seen_port = reply.peer_port;
	f->nat = strcmp(reply.peer, local) != 0 || reply.peer_port != lport;
	rc = echo_some(fd);
	if (rc)
		exp_fail(&sub, "echo over the connection: %s", strerror(-rc));
	/* Give the path manager the time to add subflows. */
	end = fj_mono_ms() + timeout_ms / 2;
	do {
		size_t i, up = 0;

		if (agent_mptcp_snapshot(fd, 1, sf, &n, &st) < 0)
			break;
		/* A join still in its handshake (or refused and closing) does not count. */
		for (i = 0; i < n; i++)
			up += agent_subflow_usable(&sf[i]);
		if (up > f->subflows)
			f->subflows = (uint32_t)up;
		if (st.fallback || up > 1)
			break;
		poll(NULL, 0, PROBE_JOIN_POLL_MS);
	} while (fj_mono_ms() < end);
	f->mp_capable = st.is_mptcp && !st.fallback;
	f->mp_join = f->subflows > 1;
	f->add_addr_accepted = st.add_addr_accepted;
	f->checksums = st.csum_enabled != 0;
	close(fd);
	if (f->mp_capable)
		csum_test(&t, timeout_ms / 2, out, f);
	else
		f->csum_check = "not run: the path does not carry MPTCP";
	mib_read(m1);
	f->checksum_errors = mib_delta(m0, m1, MIB_CSUM_ERR);
	if (self.ss_family == AF_INET || self.ss_family == AF_INET6)
		seq_check(cmd, env, &t, &self, timeout_ms, out, f);
fail:
	out->result->events = shadow.events;
	out->result->n_events = shadow.n_events;
	if (shadow.error && shadow.error[0])
		f->error = shadow.error;
	return f;
}

/*
 * Metrics and events of finding f (path i). endpoints: the node's subflow
 * endpoints (kernel), or the joins tried from other bundled addresses.
 */
static void finding_out(Fjord__V1__ProbeFinding *f, size_t i, unsigned int endpoints,
			unsigned int timeout_ms, struct exp_out *out)
{
	char name[48], d[256];
	const Fjord__V1__Path *p = f->path;

	snprintf(d, sizeof(d), "path %zu (%s -> %s, %s -> %s)", i,
		 p && p->local_isp ? p->local_isp : "", p && p->remote_isp ? p->remote_isp : "",
		 p && p->local_address ? p->local_address : "",
		 p && p->remote_address ? p->remote_address : "");
#define M(key, v)                                                                                  \
	do {                                                                                       \
		snprintf(name, sizeof(name), "p%zu_" key, i);                                      \
		exp_add_metric(out, name, v);                                                      \
	} while (0)
	M("reachable", f->reachable);
	M("mp_capable", f->mp_capable);
	M("nat", f->nat);
	M("mp_join", f->mp_join);
	M("subflows", f->subflows);
	M("checksums", f->checksums);
	M("csum_errors", f->checksum_errors);
	M("seq_rewritten", f->seq_rewritten);
	M("seq_quotes", f->seq_quotes);
	M("csum_tested", f->csum_tested);
	M("csum_failed", f->csum_failed);
	M("payload_modified", f->payload_modified);
#undef M
	if (f->error && f->error[0]) {
		char e[512];

		snprintf(e, sizeof(e), "%s: %s", d, f->error);
		exp_add_event(out, "probe_failed", e, 0);
	}
	if (f->reachable && !f->mp_capable) {
		char e[512];

		snprintf(e, sizeof(e), "%s: MP_CAPABLE did not survive (fell back to TCP)%s%s", d,
			 f->mptcp_check ? ": " : "", f->mptcp_check ? f->mptcp_check : "");
		exp_add_event(out, "mp_capable_stripped", e, 0);
	}
	if (f->mp_capable && !f->mp_join && endpoints) {
		char e[512];

		if (f->stack == FJORD__V1__STACK__STACK_BUNDLED)
			snprintf(
				e, sizeof(e),
				"%s: no second subflow within %u ms although %u join(s) from other "
				"bundled addresses were tried",
				d, timeout_ms / 2, endpoints);
		else
			snprintf(e, sizeof(e),
				 "%s: no second subflow within %u ms although the node has %u "
				 "subflow endpoint(s)",
				 d, timeout_ms / 2, endpoints);
		exp_add_event(out, "mp_join_failed", e, 0);
	}
	if (f->nat) {
		char e[512];

		snprintf(e, sizeof(e), "%s: the responder saw %s port %u", d, f->seen_address,
			 f->seen_port);
		exp_add_event(out, "nat", e, 0);
	}
	if (f->seq_rewritten) {
		char e[1024];

		snprintf(e, sizeof(e), "%s: sequence numbers rewritten: %s", d,
			 f->seq_check ? f->seq_check : "");
		exp_add_event(out, "seq_rewritten", e, 0);
	}
	if (f->checksum_errors) {
		char e[512];

		snprintf(e, sizeof(e), "%s: %u DSS checksum errors", d, f->checksum_errors);
		exp_add_event(out, "checksum_errors", e, 0);
	}
	if (f->csum_failed || f->payload_modified) {
		char e[1024];

		snprintf(e, sizeof(e), "%s: %s: %s", d,
			 f->csum_failed ? "DSS checksums fail" : "payload rewritten",
			 f->csum_check ? f->csum_check : "");
		exp_add_event(out, f->csum_failed ? "checksum_failed" : "payload_modified", e, 0);
	}
}

/* The checks that come after the connection: the checksum test, then the sequence check. */
static void kernel_paths(const Fjord__V1__RunCommand *cmd, const struct exp_env *env, size_t n,
			 unsigned int timeout, struct exp_out *out, unsigned int *joins)
{
	Fjord__V1__Result *r = out->result;
	struct exp_pcap *cap = exp_pcap_start(env->responder_port, out);
	unsigned int endpoints = subflow_endpoints();
	size_t i;

	for (i = 0; i < n; i++) {
		Fjord__V1__ProbeFinding *f = probe_path(cmd, env, i, timeout, out);

		if (!f)
			break;
		/* Borrowed from cmd, which outlives the packed Result. */
		f->path = cmd->run->n_paths ? cmd->run->paths[i] : NULL;
		r->probe_findings[r->n_probe_findings++] = f;
		joins[i] = endpoints;
	}
	exp_pcap_stop(cap, out);
}

/*
 * The bundled probe: every path's connection checks, then every checksum
 * test on a stack with checksums, then the sequence checks from each path's
 * kernel address. Fills res for the provenance; a run-level failure (no
 * bundled stack, the TUN device missing or busy) goes to exp_fail().
 */
static void bundled_paths(const Fjord__V1__RunCommand *cmd, const struct exp_env *env, size_t n,
			  unsigned int timeout, struct exp_out *out, unsigned int *joins,
			  struct exp_bundled_res *res)
{
	Fjord__V1__Result *r = out->result;
	struct probe_bundled *pb = NULL;
	char err[256];
	size_t i;

	if (!cmd->run->n_paths) {
		exp_fail(out, "run.paths: a bundled probe needs paths (local ISP x remote ISP)");
		return;
	}
	if (probe_bundled_open(cmd, env, timeout / 4, out, &pb, err, sizeof(err)) < 0) {
		exp_fail(out, "%s", err);
		return;
	}
	for (i = 0; i < n; i++) {
		Fjord__V1__ProbeFinding *f = agent_arena_alloc(out->arena, sizeof(*f));

		if (!f)
			break;
		fjord__v1__probe_finding__init(f);
		f->path = cmd->run->paths[i];
		probe_bundled_path(pb, cmd, env, i, timeout, out, f, &joins[i]);
		r->probe_findings[r->n_probe_findings++] = f;
	}
	if (probe_bundled_csum_begin(pb, out, err, sizeof(err)) < 0) {
		for (i = 0; i < r->n_probe_findings; i++)
			r->probe_findings[i]->csum_check = agent_arena_strdup(out->arena, err);
	} else {
		for (i = 0; i < r->n_probe_findings; i++) {
			Fjord__V1__ProbeFinding *f = r->probe_findings[i];

			if (f->mp_capable)
				probe_bundled_csum(pb, i, timeout / 2, env, out, f);
			else
				f->csum_check = f->reachable
							? "not run: the path does not carry MPTCP"
							: "not run: the path was not reached";
		}
	}
	probe_bundled_close(pb, cmd, out, res);
	for (i = 0; i < r->n_probe_findings; i++) {
		Fjord__V1__ProbeFinding *f = r->probe_findings[i];
		struct exp_target t;
		Fjord__V1__Result shadow = *out->result;
		struct exp_out sub = *out;

		if (!f->reachable)
			continue;
		shadow.error = NULL;
		sub.result = &shadow;
		if (exp_resolve_target(cmd, env, i, &t, &sub) == 0 && t.has_local)
			seq_check(cmd, env, &t, &t.local, timeout, out, f);
		else
			f->seq_check = "not run: the path names no local kernel address to send "
				       "the probes from";
		out->result->events = shadow.events;
		out->result->n_events = shadow.n_events;
	}
}

int exp_probe_run(const Fjord__V1__RunCommand *cmd, const struct exp_env *env, struct exp_out *out)
{
	const Fjord__V1__ProbeParams *pp = cmd->spec->probe;
	Fjord__V1__Result *r = out->result;
	unsigned int timeout = pp && pp->timeout_ms ? pp->timeout_ms : PROBE_DEFAULT_TIMEOUT_MS;
	size_t n = cmd->run->n_paths ? cmd->run->n_paths : 1, i;
	unsigned int capable = 0, nat = 0, reach = 0, seqrw = 0, csumf = 0;
	unsigned int joins[PROBE_MAX_PATHS] = { 0 }, per_path;
	Fjord__V1__Stack stack = exp_stack(cmd);
	struct exp_bundled_res res;

	memset(&res, 0, sizeof(res));
	r->ok = 1;
	if (stack != FJORD__V1__STACK__STACK_KERNEL && stack != FJORD__V1__STACK__STACK_BUNDLED) {
		exp_fail(out, "probe runs on the kernel's MPTCP (run.stack STACK_KERNEL) or the "
			      "bundled stack (STACK_BUNDLED)");
		goto prov;
	}
	if (timeout < PROBE_MIN_TIMEOUT_MS || timeout > PROBE_MAX_TIMEOUT_MS) {
		exp_fail(out, "probe.timeout_ms must be %u..%u (got %u)", PROBE_MIN_TIMEOUT_MS,
			 PROBE_MAX_TIMEOUT_MS, timeout);
		goto prov;
	}
	if (n > PROBE_MAX_PATHS) {
		exp_fail(out, "run.paths: at most %u paths for a probe (got %zu)", PROBE_MAX_PATHS,
			 n);
		goto prov;
	}
	/*
	 * Per path: connect, join wait (1/2), checksum test (1/2), bundled
	 * address (1/4), two traces (1/4 each); on the bundled stack also two
	 * closes (up to 1/4 each), and the peer's bundled addresses (1/4) once.
	 */
	per_path = stack == FJORD__V1__STACK__STACK_BUNDLED ? timeout * 13 / 4 : timeout * 11 / 4;
	if ((uint64_t)n * per_path + (per_path - timeout * 11 / 4) / 2 + 500 > exp_left_ms(env)) {
		exp_fail(out,
			 "probe.timeout_ms: %zu paths of up to %u ms do not fit the run's deadline",
			 n, per_path);
		goto prov;
	}
	r->probe_findings = agent_arena_alloc(out->arena, n * sizeof(*r->probe_findings));
	if (!r->probe_findings)
		return -ENOMEM;
	if (stack == FJORD__V1__STACK__STACK_BUNDLED)
		bundled_paths(cmd, env, n, timeout, out, joins, &res);
	else
		kernel_paths(cmd, env, n, timeout, out, joins);
	if (r->n_probe_findings < n && (!r->error || !r->error[0]))
		return -ENOMEM;
	for (i = 0; i < r->n_probe_findings; i++) {
		Fjord__V1__ProbeFinding *f = r->probe_findings[i];

		finding_out(f, i, joins[i], timeout, out);
		reach += f->reachable;
		capable += f->mp_capable;
		nat += f->nat;
		seqrw += f->seq_rewritten;
		csumf += f->csum_failed;
	}
	if (!r->n_probe_findings)
		goto prov;
	exp_add_metric(out, "paths", (double)n);
	exp_add_metric(out, "paths_reachable", reach);
	exp_add_metric(out, "paths_mp_capable", capable);
	exp_add_metric(out, "paths_nat", nat);
	exp_add_metric(out, "paths_seq_rewritten", seqrw);
	exp_add_metric(out, "paths_csum_failed", csumf);
	if (!reach)
		exp_fail(out, "no path reached the responder: %s",
			 r->probe_findings[0]->error ? r->probe_findings[0]->error : "");
prov:
	if (stack == FJORD__V1__STACK__STACK_BUNDLED) {
		exp_provenance(out, stack, res.cc[0] ? res.cc : "lia", cmd, env);
		exp_bundled_provenance(out, &res);
	} else {
		exp_provenance(out, stack, NULL, cmd, env);
	}
	return 0;
}
