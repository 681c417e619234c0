/*
 * The probe on the bundled stack (exp_probe_bundled.h). One libmps stack on
 * the client TUN serves every path of the run in turn, one connection at a
 * time, so the stack's events and counters belong to the connection being
 * probed. DSS checksums are a setting of the whole stack (mps_config), so
 * the checksum tests run afterwards on a second stack that asks for them.
 */
#include "exp_probe_bundled.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent_arena.h"
#include "bundled.h"
#include "exp_sock.h"
#include "fj_clock.h"

#define PB_CLOSE_MS 300 /* most time given to a probe connection's close handshake */
#define PB_SLACK_MS 300 /* left to the parent to collect the result */

struct pb_path {
	int ok; /* both bundled endpoints are known */
	struct mps_addr local, remote;
	char local_str[AGENT_ADDR_MAX], remote_str[AGENT_ADDR_MAX];
};

struct probe_bundled {
	struct bundled_io io;
	int open, csum;	       /* a stack is open; it is the checksum test's */
	unsigned int close_ms; /* wait for a close handshake: short probes wait less */
	char info[BUNDLED_INFO_MAX + 1];
	char info_err[160]; /* why the peer's bundled addresses are unknown, "" if known */
	struct pb_path path[PROBE_BUNDLED_MAX_PATHS];
	size_t n_paths;
	/* The connection being probed, and what the stack's events said of it. */
	struct mps_conn *c;
	uint32_t conn_id;
	int reset, fallback;
	unsigned int add_addr_in, mp_fail_sent, mp_fail_rcvd;
	unsigned int inf_sent, inf_rcvd;
	int join_down; /* the last join's MPS_SF_DOWN_* reason, 0 none */
};

/* The peer's info text over its kernel responder on path 0, or why not into pb->info_err. */
static void read_info(struct probe_bundled *pb, const Fjord__V1__RunCommand *cmd,
		      const struct exp_env *env, unsigned int max_ms, struct exp_out *out)
{
	struct agent_resp_request q = { .type = AGENT_RESP_INFO };
	Fjord__V1__Result shadow = *out->result;
	struct exp_out sub = *out;
	struct agent_resp_reply reply;
	struct exp_target t;
	uint8_t l[2];
	size_t n = 0;
	int fd, mptcp = 0, rc;

	/* Its failure is each path's finding, not the run's error. */
	shadow.error = NULL;
	sub.result = &shadow;
	rc = exp_resolve_target(cmd, env, 0, &t, &sub);
	fd = rc < 0 ? rc
		    : exp_connect_within(cmd, FJORD__V1__STACK__STACK_TCP, &t, env, max_ms, &sub,
					 &mptcp);
	if (fd >= 0) {
		rc = exp_handshake(fd, &q, &reply, &sub);
		if (!rc)
			rc = exp_recv_all(fd, l, 2);
		if (!rc) {
			n = (size_t)l[0] << 8 | l[1];
			rc = n == 0 || n > BUNDLED_INFO_MAX
				     ? -EPROTO
				     : exp_recv_all(fd, (uint8_t *)pb->info, n);
		}
		close(fd);
	} else {
		rc = fd;
	}
	out->result->events = shadow.events;
	out->result->n_events = shadow.n_events;
	if (!rc) {
		pb->info[n] = 0;
		return;
	}
	snprintf(pb->info_err, sizeof(pb->info_err),
		 "the peer's bundled responder addresses are unknown: %s",
		 shadow.error && shadow.error[0] ? shadow.error
		 : rc == -EPROTO		 ? "malformed answer to info"
						 : strerror(-rc));
}

int probe_bundled_open(const Fjord__V1__RunCommand *cmd, const struct exp_env *env,
		       unsigned int timeout_ms, struct exp_out *out, struct probe_bundled **pbp,
		       char *err, size_t len)
{
	const struct bundled_cfg *bc = bundled_get();
	struct mps_config cfg = { .msl_us = 1000000 };
	struct probe_bundled *pb;
	int rc;

	*pbp = NULL;
	if (!bundled_enabled(bc)) {
		snprintf(err, len,
			 "this agent has no bundled stack (neither bundled_tun nor bundled_host "
			 "is configured)");
		return -ENODEV;
	}
	pb = calloc(1, sizeof(*pb));
	if (!pb) {
		snprintf(err, len, "out of memory");
		return -ENOMEM;
	}
	/*
	 * The initial subflow, a join from every other bundled address, and
	 * those libmps's fullmesh opens to addresses the peer announces.
	 */
	cfg.max_subflows = 8;
	bundled_cfg_buffers(bc, &cfg);
	rc = bundled_io_open_run(&pb->io, bc, &cfg, 1, err, len);
	if (rc < 0) {
		free(pb);
		return rc;
	}
	pb->open = 1;
	pb->close_ms = timeout_ms < PB_CLOSE_MS ? timeout_ms : PB_CLOSE_MS;
	read_info(pb, cmd, env, timeout_ms, out);
	*pbp = pb;
	return 0;
}

/* The bundled endpoints of run path idx into pb->path[idx]; 0, or <0 with the reason in buf. */
static int resolve(struct probe_bundled *pb, const Fjord__V1__RunCommand *cmd,
		   const struct exp_env *env, size_t idx, char *buf, size_t len)
{
	const Fjord__V1__Path *rp = cmd->run->paths[idx];
	struct pb_path *p = &pb->path[idx];
	const struct bundled_isp *own = bundled_own_isp(bundled_get(), rp->local_isp);
	int fam = rp->family == FJORD__V1__ADDRESS_FAMILY__ADDRESS_FAMILY_IPV6 ? 6 : 4, port;

	if (!own || !own->addr[fam == 6][0]) {
		snprintf(buf, len, "this agent has no bundled IPv%d address on ISP %s", fam,
			 rp->local_isp && rp->local_isp[0] ? rp->local_isp : "(none)");
		return -ENOENT;
	}
	snprintf(p->local_str, sizeof(p->local_str), "%s", own->addr[fam == 6]);
	if (pb->info_err[0]) {
		snprintf(buf, len, "%s", pb->info_err);
		return -ENOENT;
	}
	if (!rp->remote_isp || !rp->remote_isp[0] ||
	    bundled_info_lookup(pb->info, rp->remote_isp, fam, p->remote_str,
				sizeof(p->remote_str)) < 0) {
		snprintf(buf, len,
			 "the peer agent has no bundled responder IPv%d address on ISP %s", fam,
			 rp->remote_isp && rp->remote_isp[0] ? rp->remote_isp : "(none)");
		return -ENOENT;
	}
	port = bundled_info_port(pb->info, rp->remote_isp, env->responder_port);
	if (port < 0) {
		snprintf(buf, len, "the peer's bundled port on ISP %s is malformed",
			 rp->remote_isp);
		return -EPROTO;
	}
	if (bundled_addr(p->local_str, 0, &p->local) ||
	    bundled_addr(p->remote_str, (uint16_t)port, &p->remote)) {
		snprintf(buf, len, "bad bundled address %s or %s", p->local_str, p->remote_str);
		return -EINVAL;
	}
	p->ok = 1;
	return 0;
}

/* The stack's events of the probed connection into pb; those of older ones are dropped. */
static void drain(struct probe_bundled *pb)
{
	struct mps_event ev;

	while (mps_next_event(pb->io.st, &ev) == 0) {
		if (!pb->c || ev.conn_id != pb->conn_id)
			continue;
		switch (ev.type) {
		case MPS_EV_CONN_RESET:
			pb->reset = ev.reason ? ev.reason : -1;
			break;
		case MPS_EV_FALLBACK:
			if (!pb->fallback)
				pb->fallback = ev.reason ? ev.reason : -1;
			break;
		case MPS_EV_ADD_ADDR_IN:
			pb->add_addr_in++;
			break;
		case MPS_EV_SUBFLOW_DOWN:
			if (ev.subflow_id)
				pb->join_down = ev.reason;
			break;
		case MPS_EV_MP_FAIL:
			pb->mp_fail_sent += ev.reason == MPS_MP_FAIL_SENT ||
					    ev.reason == MPS_MP_FAIL_SF_RESET;
			pb->mp_fail_rcvd += ev.reason == MPS_MP_FAIL_RCVD ||
					    ev.reason == MPS_MP_FAIL_IGNORED;
			pb->inf_sent += ev.reason == MPS_MP_FAIL_INFINITE_SENT;
			pb->inf_rcvd += ev.reason == MPS_MP_FAIL_INFINITE_RCVD;
			break;
		default:
			break;
		}
	}
}

static void step(struct probe_bundled *pb, unsigned int max_ms)
{
	bundled_io_step(&pb->io, max_ms);
	drain(pb);
}

static const char *rst_text(int r)
{
	switch (r) {
	case MPS_RST_PEER:
		return "reset by the peer";
	case MPS_RST_FASTCLOSE:
		return "closed by the peer (MP_FASTCLOSE)";
	case MPS_RST_TIMEOUT:
		return "too many retransmissions (the peer or the path went away)";
	case MPS_RST_CHECKSUM:
		return "DSS checksum failure";
	case MPS_RST_OPTS_LOST:
		return "MPTCP options vanished where no fallback is allowed";
	case MPS_RST_MP_FAIL:
		return "MP_FAIL unanswered";
	default:
		return "reset";
	}
}

/* Gives the probed connection back (closed, or aborted after a reset) and lets the close go out. */
static void conn_end(struct probe_bundled *pb, const struct exp_env *env)
{
	if (!pb->c)
		return;
	bundled_io_end_conn(&pb->io, pb->c, pb->reset, pb->close_ms, env, PB_SLACK_MS);
	pb->c = NULL;
}

/*
 * Opens a connection over path p and has the responder answer an echo
 * request by end (fj_mono_ms). 0 with *reply, or <0 with the reason in buf.
 */
static int conn_open(struct probe_bundled *pb, const struct pb_path *p, unsigned int flags,
		     uint64_t end, struct agent_resp_reply *reply, char *buf, size_t len)
{
	struct agent_resp_request q = { .type = AGENT_RESP_ECHO, .flags = flags };
	uint8_t req[AGENT_RESP_REQ_LEN], rep[AGENT_RESP_REPLY_LEN];
	size_t sent = 0, got = 0;
	int rc;

	pb->reset = pb->fallback = 0;
	pb->add_addr_in = pb->mp_fail_sent = pb->mp_fail_rcvd = 0;
	pb->inf_sent = pb->inf_rcvd = 0;
	pb->join_down = 0;
	rc = mps_connect(pb->io.st, &p->local, &p->remote, &pb->c);
	if (rc < 0) {
		pb->c = NULL;
		snprintf(buf, len, "bundled connect from %s: %s", p->local_str, strerror(-rc));
		return rc;
	}
	pb->conn_id = mps_conn_id(pb->c);
	agent_resp_request_encode(&q, req);
	while (got < sizeof(rep)) {
		ssize_t n;

		if (fj_mono_ms() >= end) {
			snprintf(
				buf, len,
				"the peer's bundled responder at %s port %u did not answer in time "
				"(timed out)",
				p->remote_str, p->remote.port);
			return -ETIMEDOUT;
		}
		step(pb, 10);
		if (pb->reset) {
			snprintf(buf, len, "the peer's bundled responder at %s port %u: %s",
				 p->remote_str, p->remote.port, rst_text(pb->reset));
			return -ECONNRESET;
		}
		if (sent < sizeof(req)) {
			n = mps_send(pb->c, req + sent, sizeof(req) - sent);
			sent += n > 0 ? (size_t)n : 0;
			continue;
		}
		n = mps_recv(pb->c, rep + got, sizeof(rep) - got);
		if (n == 0) {
			snprintf(buf, len, "the peer's bundled responder closed the connection");
			return -ECONNRESET;
		}
		got += n > 0 ? (size_t)n : 0;
	}
	if (agent_resp_reply_decode(rep, reply) < 0) {
		snprintf(buf, len, "the peer is not a Fjord responder (bad reply)");
		return -EPROTO;
	}
	if (!reply->ok) {
		snprintf(buf, len, "responder refused the request: %s", reply->message);
		return -EINVAL;
	}
	return 0;
}

/* Sends len bytes and reads as many back by end; 0, -ETIMEDOUT, -ECONNRESET or -EPIPE. */
static int echo_chunk(struct probe_bundled *pb, const uint8_t *tx, uint8_t *rx, size_t len,
		      uint64_t end)
{
	size_t off = 0, got = 0;

	while (got < len) {
		ssize_t n;

		if (off < len) {
			n = mps_send(pb->c, tx + off, len - off);
			if (n > 0)
				off += (size_t)n;
			else if (n != -EAGAIN)
				return -EPIPE;
		}
		n = mps_recv(pb->c, rx + got, len - got);
		if (n > 0) {
			got += (size_t)n;
			continue;
		}
		if (n == 0)
			return -EPIPE;
		if (n != -EAGAIN || pb->reset)
			return -ECONNRESET;
		if (fj_mono_ms() >= end)
			return -ETIMEDOUT;
		step(pb, 5);
	}
	return 0;
}

/* Where MPTCP was lost, for mptcp_check: at the handshake or later, and libmps's reason. */
static const char *fallback_where(int reason)
{
	switch (reason) {
	case MPS_FALLBACK_SYNACK_NO_MPC:
		return "at the SYN/ACK (MP_CAPABLE stripped from the SYN or the SYN/ACK)";
	case MPS_FALLBACK_ACK_NO_MPC:
	case MPS_FALLBACK_NO_DSS:
	case MPS_FALLBACK_OPTS_LOST:
	case MPS_FALLBACK_BAD_MAPPING:
		return "after the handshake (options stripped from later segments)";
	case MPS_FALLBACK_MP_FAIL:
	case MPS_FALLBACK_MP_FAIL_RCVD:
	case MPS_FALLBACK_INFINITE_MAP:
		return "after a DSS checksum failure";
	default:
		return "";
	}
}

/* Joins from every other bundled address of the family; the count tried, or why none. */
static unsigned int join_others(struct probe_bundled *pb, const struct pb_path *p, char *why,
				size_t len)
{
	const struct bundled_cfg *bc = bundled_get();
	unsigned int i, tried = 0;
	int fam6 = p->local.family == 6;

	why[0] = 0;
	for (i = 0; i < bc->n_isps; i++) {
		struct mps_addr l;
		int rc;

		if (!bc->isps[i].addr[fam6][0] || !strcmp(bc->isps[i].addr[fam6], p->local_str) ||
		    bundled_addr(bc->isps[i].addr[fam6], 0, &l))
			continue;
		rc = mps_join(pb->c, &l, &p->remote, false);
		if (rc < 0)
			snprintf(why, len, "join from %s refused by the stack: %s",
				 bc->isps[i].addr[fam6], strerror(-rc));
		else
			tried++;
	}
	return tried;
}

/*
 * Subflows usable now. With p: *ours_up and *ours_live count the joins of
 * join_others() (from another local address than p's) up, and up or still
 * in their handshake; libmps's own joins to announced addresses leave from
 * p's address.
 */
static unsigned int subflows_up(struct probe_bundled *pb, const struct pb_path *p,
				unsigned int *ours_up, unsigned int *ours_live)
{
	struct mps_conn_info ci;
	struct mps_subflow_info si;
	unsigned int i, up = 0;

	*ours_up = *ours_live = 0;
	if (mps_conn_info(pb->c, &ci) < 0)
		return 0;
	for (i = 0; i < ci.nsubflows; i++) {
		int ours;

		if (mps_subflow_info(pb->c, i, &si) < 0)
			continue;
		up += si.up;
		ours = p && si.join &&
		       memcmp(si.local.addr, p->local.addr, p->local.family == 4 ? 4 : 16);
		*ours_up += ours && si.up;
		*ours_live += ours;
	}
	return up;
}

static const char *sf_down_text(int r)
{
	switch (r) {
	case MPS_SF_DOWN_RST:
		return "reset by the peer or on the way";
	case MPS_SF_DOWN_HMAC:
		return "the peer's MP_JOIN HMAC did not verify";
	case MPS_SF_DOWN_NO_JOIN:
		return "the SYN/ACK carried no MP_JOIN (stripped?)";
	case MPS_SF_DOWN_TIMEOUT:
		return "no answer to its SYN";
	default:
		return "went away";
	}
}

/* MP_JOIN: waits up to max_ms for a join to come up; fills subflows, mp_join and part of d. */
static void join_test(struct probe_bundled *pb, const struct pb_path *p, unsigned int max_ms,
		      Fjord__V1__ProbeFinding *f, unsigned int *joins, char *d, size_t len)
{
	uint64_t end = fj_mono_ms() + max_ms;
	char why[160];
	size_t used = strlen(d);
	unsigned int live = 0, ours = 0, most = 0;

	*joins = join_others(pb, p, why, sizeof(why));
	do {
		unsigned int up = subflows_up(pb, p, &ours, &live);

		if (up > f->subflows)
			f->subflows = up;
		most = ours > most ? ours : most;
		if (ours || !*joins || !live || pb->reset)
			break;
		step(pb, 10);
	} while (fj_mono_ms() < end);
	f->mp_join = most > 0;
	if (f->mp_join)
		snprintf(d + used, len - used, "; MP_JOIN: %u of %u join(s) up", most, *joins);
	else if (*joins)
		snprintf(d + used, len - used, "; MP_JOIN: none of %u join(s) up within %u ms%s%s",
			 *joins, max_ms, pb->join_down ? ": " : "",
			 pb->join_down ? sf_down_text(pb->join_down) : "");
	else
		snprintf(d + used, len - used, "; MP_JOIN not tried: %s",
			 why[0] ? why : "no other bundled address of this family");
}

void probe_bundled_path(struct probe_bundled *pb, const Fjord__V1__RunCommand *cmd,
			const struct exp_env *env, size_t idx, unsigned int timeout_ms,
			struct exp_out *out, Fjord__V1__ProbeFinding *f, unsigned int *joins)
{
	static uint8_t tx[PROBE_ECHO_BYTES], rx[PROBE_ECHO_BYTES];
	struct pb_path *p = &pb->path[idx];
	struct agent_resp_reply reply;
	struct mps_subflow_info si;
	struct mps_conn_info ci;
	char buf[256], d[512], seen[AGENT_ADDR_MAX];
	uint64_t end = fj_mono_ms() + timeout_ms;
	int rc;

	*joins = 0;
	f->stack = FJORD__V1__STACK__STACK_BUNDLED;
	if (idx >= PROBE_BUNDLED_MAX_PATHS || !cmd->run || idx >= cmd->run->n_paths) {
		f->error = "a bundled probe needs run paths (local ISP x remote ISP)";
		return;
	}
	if (idx >= pb->n_paths)
		pb->n_paths = idx + 1;
	if (end > env->deadline_mono_ms - PB_SLACK_MS)
		end = env->deadline_mono_ms - PB_SLACK_MS;
	if (resolve(pb, cmd, env, idx, buf, sizeof(buf)) < 0 ||
	    conn_open(pb, p, AGENT_RESP_F_ANNOUNCE, end, &reply, buf, sizeof(buf)) < 0) {
		f->error = agent_arena_strdup(out->arena, buf);
		conn_end(pb, env);
		return;
	}
	f->reachable = 1;
	f->seen_address = agent_arena_strdup(out->arena, reply.peer);
	f->seen_port = reply.peer_port;
	if (mps_subflow_info(pb->c, 0, &si) == 0) {
		bundled_addr_str(&si.local, seen, sizeof(seen));
		f->nat = strcmp(reply.peer, seen) != 0 || reply.peer_port != si.local.port;
	}
	agent_resp_fill(1, 0, tx, sizeof(tx));
	rc = echo_chunk(pb, tx, rx, sizeof(tx), end);
	if (!rc && memcmp(tx, rx, sizeof(rx)))
		rc = -EBADMSG;
	if (rc) {
		snprintf(buf, sizeof(buf), "echo over the connection: %s",
			 rc == -ECONNRESET && pb->reset ? rst_text(pb->reset) : strerror(-rc));
		f->error = agent_arena_strdup(out->arena, buf);
	}
	if (mps_conn_info(pb->c, &ci) < 0)
		memset(&ci, 0, sizeof(ci));
	f->mp_capable = ci.mptcp && !ci.fallback;
	f->checksums = ci.checksum;
	if (f->mp_capable)
		snprintf(d, sizeof(d), "MP_CAPABLE: MPTCP negotiated");
	else
		snprintf(d, sizeof(d), "MP_CAPABLE: fell back to TCP %s (libmps: %s)",
			 fallback_where(pb->fallback),
			 ci.fallback_reason ? ci.fallback_reason : "no MPTCP");
	f->subflows = 1;
	if (f->mp_capable && !rc) {
		unsigned int left = end > fj_mono_ms() ? (unsigned int)(end - fj_mono_ms()) : 0;

		join_test(pb, p, left < timeout_ms / 2 ? left : timeout_ms / 2, f, joins, d,
			  sizeof(d));
	}
	mps_conn_info(pb->c, &ci);
	f->add_addr_accepted = ci.nremote_addrs;
	{
		size_t used = strlen(d);

		snprintf(d + used, sizeof(d) - used, "; ADD_ADDR: %u received, %u kept",
			 pb->add_addr_in, ci.nremote_addrs);
	}
	f->mptcp_check = agent_arena_strdup(out->arena, d);
	conn_end(pb, env);
}

/* Moves the stack's trace into the run as name. */
static void keep_trace(struct probe_bundled *pb, struct exp_out *out, const char *name)
{
	char *trace = NULL;
	size_t len = 0;
	int cut = 0;
	struct exp_trace *t;

	if (!pb->open)
		return;
	bundled_io_close(&pb->io, &trace, &len, EXP_TRACE_MAX, &cut);
	pb->open = 0;
	if (!trace)
		return;
	t = exp_trace_new(out, name);
	if (!t) {
		free(trace);
		return;
	}
	t->data = trace;
	t->len = len;
	t->cap = len;
	if (cut)
		exp_add_event(out, "capture_capped",
			      "the packet trace reached its cap; later packets are not in it", 0);
}

int probe_bundled_csum_begin(struct probe_bundled *pb, struct exp_out *out, char *err, size_t len)
{
	struct mps_config cfg = { .msl_us = 1000000, .checksum = true, .max_subflows = 2 };

	keep_trace(pb, out, "capture.pcap");
	bundled_cfg_buffers(bundled_get(), &cfg);
	if (bundled_io_open_run(&pb->io, bundled_get(), &cfg, 1, err, len) < 0)
		return -EBUSY;
	pb->open = pb->csum = 1;
	return 0;
}

/* The csum_check sentence. */
static void csum_describe(Fjord__V1__ProbeFinding *f, int rc, int changed, uint64_t where,
			  struct probe_bundled *pb, struct exp_out *out)
{
	char d[512];
	int n;

	n = snprintf(
		d, sizeof(d),
		"DSS checksums on (bundled stack); %s; DSS checksum errors %u, MP_FAIL sent %u "
		"received %u, infinite mapping sent %u received %u%s",
		rc ? "the echo broke off" : "every byte echoed", f->checksum_errors,
		f->csum_mp_fail_tx, f->csum_mp_fail_rx, f->csum_infinite_map_tx,
		f->csum_infinite_map_rx,
		f->csum_fallback ? "; fell back to TCP during the transfer" : "");
	if (changed && n > 0 && (size_t)n < sizeof(d))
		n += snprintf(d + n, sizeof(d) - (size_t)n,
			      "; the echo came back changed from byte %llu on",
			      (unsigned long long)where);
	if (rc && n > 0 && (size_t)n < sizeof(d))
		n += snprintf(d + n, sizeof(d) - (size_t)n, " (%s)",
			      rc == -ECONNRESET && pb->reset ? rst_text(pb->reset) : strerror(-rc));
	if (f->csum_subflows > 1 && n > 0 && (size_t)n < sizeof(d))
		snprintf(d + n, sizeof(d) - (size_t)n,
			 "; %u subflows: a failure may be another path's", f->csum_subflows);
	f->csum_check = agent_arena_strdup(out->arena, d);
}

static uint32_t cnt_delta(const struct probe_bundled *pb, enum mps_counter w, uint64_t before)
{
	uint64_t now = mps_stack_counter(pb->io.st, w);

	return now > before ? (uint32_t)(now - before) : 0;
}

/* Echoes PROBE_CSUM_BYTES in chunks by end; *changed and *where when an echo differed. */
static int csum_echo(struct probe_bundled *pb, uint64_t end, Fjord__V1__ProbeFinding *f,
		     int *changed, uint64_t *where)
{
	static uint8_t tx[PROBE_CSUM_CHUNK], rx[PROBE_CSUM_CHUNK];
	unsigned int live, ours;
	int rc = 0;

	for (uint64_t off = 0; off < PROBE_CSUM_BYTES && !rc; off += sizeof(tx)) {
		unsigned int up;

		agent_resp_fill(2, off, tx, sizeof(tx));
		rc = echo_chunk(pb, tx, rx, sizeof(tx), end);
		for (size_t i = 0; !rc && !*changed && i < sizeof(rx); i++)
			if (rx[i] != tx[i]) {
				*changed = 1;
				*where = off + i;
			}
		up = subflows_up(pb, NULL, &ours, &live);
		if (up > f->csum_subflows)
			f->csum_subflows = up;
	}
	return rc;
}

void probe_bundled_csum(struct probe_bundled *pb, size_t idx, unsigned int budget_ms,
			const struct exp_env *env, struct exp_out *out, Fjord__V1__ProbeFinding *f)
{
	static const enum mps_counter cn[] = { MPS_CNT_IN_DSS_CSUM, MPS_CNT_OUT_MP_FAIL,
					       MPS_CNT_IN_MP_FAIL, MPS_CNT_OUT_INFINITE_MAP,
					       MPS_CNT_IN_INFINITE_MAP };
	uint64_t c0[5], end = fj_mono_ms() + budget_ms, where = 0;
	struct agent_resp_reply reply;
	struct mps_conn_info ci;
	char buf[256];
	int rc, changed = 0;

	if (end > env->deadline_mono_ms - PB_SLACK_MS)
		end = env->deadline_mono_ms - PB_SLACK_MS;
	if (!pb->open || idx >= pb->n_paths || !pb->path[idx].ok) {
		f->csum_check = "not run: no bundled stack with DSS checksums";
		return;
	}
	for (size_t i = 0; i < 5; i++)
		c0[i] = mps_stack_counter(pb->io.st, cn[i]);
	rc = conn_open(pb, &pb->path[idx], 0, end, &reply, buf, sizeof(buf));
	if (!rc && (mps_conn_info(pb->c, &ci) < 0 || !ci.checksum)) {
		snprintf(buf, sizeof(buf), "DSS checksums were not negotiated");
		rc = -EPROTO;
	}
	if (rc) {
		char d[300];

		snprintf(d, sizeof(d), "not run: %s", buf);
		f->csum_check = agent_arena_strdup(out->arena, d);
		conn_end(pb, env);
		return;
	}
	f->csum_tested = 1;
	f->csum_subflows = 1;
	rc = csum_echo(pb, end, f, &changed, &where);
	/* Events still queued (the MP_FAIL of the last chunk) and where MPTCP stands. */
	step(pb, 0);
	if (mps_conn_info(pb->c, &ci) == 0)
		f->csum_fallback = ci.fallback;
	f->csum_fallback |= pb->fallback == MPS_FALLBACK_MP_FAIL ||
			    pb->fallback == MPS_FALLBACK_MP_FAIL_RCVD ||
			    pb->fallback == MPS_FALLBACK_INFINITE_MAP;
	conn_end(pb, env);
	f->checksum_errors += cnt_delta(pb, cn[0], c0[0]);
	f->csum_mp_fail_tx = cnt_delta(pb, cn[1], c0[1]);
	f->csum_mp_fail_rx = cnt_delta(pb, cn[2], c0[2]);
	f->csum_infinite_map_tx = cnt_delta(pb, cn[3], c0[3]);
	f->csum_infinite_map_rx = cnt_delta(pb, cn[4], c0[4]);
	f->payload_modified = changed;
	/*
	 * The stack is this probe's alone and runs one connection at a time,
	 * so its counters and events are this connection's: any MP_FAIL,
	 * infinite mapping or checksum error is a failure on the path.
	 */
	f->csum_failed = f->csum_fallback || changed || f->checksum_errors || f->csum_mp_fail_tx ||
			 f->csum_mp_fail_rx || f->csum_infinite_map_tx || f->csum_infinite_map_rx ||
			 pb->mp_fail_sent || pb->mp_fail_rcvd || pb->inf_sent || pb->inf_rcvd ||
			 pb->reset == MPS_RST_CHECKSUM || pb->reset == MPS_RST_MP_FAIL;
	csum_describe(f, rc, changed, where, pb, out);
}

void probe_bundled_close(struct probe_bundled *pb, const Fjord__V1__RunCommand *cmd,
			 struct exp_out *out, struct exp_bundled_res *res)
{
	size_t i;

	snprintf(res->scheduler, sizeof(res->scheduler), "lowrtt");
	snprintf(res->cc, sizeof(res->cc), "lia");
	if (!pb)
		return;
	keep_trace(pb, out, pb->csum ? "capture_csum.pcap" : "capture.pcap");
	res->paths = cmd->run && pb->n_paths
			     ? agent_arena_alloc(out->arena, pb->n_paths * sizeof(*res->paths))
			     : NULL;
	for (i = 0; res->paths && i < pb->n_paths; i++) {
		const Fjord__V1__Path *rp = cmd->run->paths[i];
		Fjord__V1__Path *p = agent_arena_alloc(out->arena, sizeof(*p));

		if (!p)
			break;
		fjord__v1__path__init(p);
		p->local_isp = rp->local_isp;
		p->remote_isp = rp->remote_isp;
		p->family = rp->family;
		p->local_address = pb->path[i].ok
					   ? agent_arena_strdup(out->arena, pb->path[i].local_str)
					   : rp->local_address;
		p->remote_address = pb->path[i].ok
					    ? agent_arena_strdup(out->arena, pb->path[i].remote_str)
					    : rp->remote_address;
		res->paths[res->n_paths++] = p;
	}
	free(pb);
}
