/*
 * Bulk transfers on the bundled stack (libmps over the node's client TUN),
 * inside the run's child process. The peer's bundled responder addresses come
 * from its kernel responder (the "info" request over the run's first path),
 * our own from the agent's configuration, per ISP of each run path. Sampling
 * reads mps_conn_info()/mps_subflow_info() every interval into the same
 * samples and subflows.csv as kernel runs; the stack's trace hook writes the
 * header-only pcap "capture.pcap".
 */
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "agent_arena.h"
#include "bundled.h"
#include "exp_link.h"
#include "exp_sock.h"
#include "fj_clock.h"
#include "sampler.h"

#define BX_CLOSE_MS  1000 /* time given to the close handshake after the data */
#define BX_CHUNK     16384
#define BX_MAX_SF    16
#define BX_SLACK_MS  300 /* left to the parent to collect our result */
#define BX_MAX_PATHS 8
#define BX_STALL_MS  15000 /* no byte moved for this long: the transfer is stuck */
/* A path whose subflow went away (a link down: timeout, stale, reset) is opened again after this. */
#define BX_REOPEN_MS	1000
#define BX_CHECK_MS	250 /* how often paths are checked for a subflow */
#define BX_MAX_SUBFLOWS 8   /* libmps takes at most 8 per connection (mps_config) */

struct bpath {
	struct mps_addr local, remote;
	const char *local_isp, *remote_isp;
	char local_str[AGENT_ADDR_MAX], remote_str[AGENT_ADDR_MAX];
	int joined;	   /* its join was asked for (path 0: the initial subflow) */
	int refused;	   /* mps_join() refused it: not tried again */
	int backup;	   /* a "backup" link event made its subflow a backup */
	int withdrawn;	   /* a "down" link event withdrew its local address: not reopened */
	uint64_t retry_at; /* its subflow is gone: open it again then (0: it is there) */
	unsigned int reopened;
};

struct bsf {
	struct mps_subflow_info last;
	uint32_t id;
	int alive;
	uint64_t prev_bytes;
};

struct bsampler {
	struct exp_out *out;
	struct exp_trace *csv;
	struct mps_conn *c;
	const struct bpath *paths;
	size_t n_paths;
	unsigned int interval_ms, n_sf, max_alive;
	uint64_t next_ms, prev_ms;
	struct bsf sf[BX_MAX_SF];
	int finishing;
	uint64_t dropped;
};

struct bx {
	struct bundled_io io;
	struct mps_conn *c;
	EVP_MD_CTX *md, *md_exp;
	uint8_t buf[BX_CHUNK], exp[BX_CHUNK];
	uint8_t trailer[AGENT_RESP_TRAILER_LEN];
	size_t trailer_len;
	struct agent_resp_deframer df;
	uint64_t off;
	uint32_t seed;
	int shut, eof, reset;
	uint64_t next_check; /* bx_joins(): next look for paths without a subflow */
};

static int same_ep(const struct mps_addr *a, const struct mps_addr *b)
{
	return a->family == b->family && a->port == b->port && !memcmp(a->addr, b->addr, 16);
}

static const char *isp_of(const struct bsampler *s, const struct mps_addr *a, int local)
{
	size_t i;

	for (i = 0; i < s->n_paths; i++) {
		const struct mps_addr *p = local ? &s->paths[i].local : &s->paths[i].remote;

		if (p->family == a->family && !memcmp(p->addr, a->addr, 16))
			return local ? s->paths[i].local_isp : s->paths[i].remote_isp;
	}
	return NULL;
}

static void sf_event(struct bsampler *s, const char *kind, const struct bsf *f)
{
	char l[AGENT_ADDR_MAX], r[AGENT_ADDR_MAX], d[160];

	bundled_addr_str(&f->last.local, l, sizeof(l));
	bundled_addr_str(&f->last.remote, r, sizeof(r));
	snprintf(d, sizeof(d), "%s:%u -> %s:%u", l, f->last.local.port, r, f->last.remote.port);
	exp_add_event(s->out, kind, d, f->id);
}

static void add_sample(struct bsampler *s, const struct bsf *f, int64_t now)
{
	Fjord__V1__SubflowSample smp = FJORD__V1__SUBFLOW_SAMPLE__INIT;

	smp.t_ms = now;
	smp.subflow_id = f->id;
	smp.bytes_acked = f->last.bytes_acked;
	smp.bytes_received = f->last.bytes_received;
	smp.srtt_us = f->last.srtt_us;
	smp.cwnd = f->last.cwnd;
	if (exp_add_sample(s->out, &smp))
		s->dropped++;
}

static struct bsf *find_sf(struct bsampler *s, const struct mps_subflow_info *si)
{
	unsigned int i;

	for (i = 0; i < s->n_sf; i++)
		if (same_ep(&s->sf[i].last.local, &si->local) &&
		    same_ep(&s->sf[i].last.remote, &si->remote))
			return &s->sf[i];
	return NULL;
}

static void csv_line(struct bsampler *s, const struct bsf *f, uint64_t mono, double bps)
{
	char l[AGENT_ADDR_MAX], r[AGENT_ADDR_MAX];

	if (!s->csv)
		return;
	bundled_addr_str(&f->last.local, l, sizeof(l));
	bundled_addr_str(&f->last.remote, r, sizeof(r));
	if (exp_trace_printf(s->csv, "%llu,%u,%s,%u,%s,%u,%llu,%llu,%.0f,%u,%u,%u\n",
			     (unsigned long long)(mono - s->out->start_mono_ms), f->id, l,
			     f->last.local.port, r, f->last.remote.port,
			     (unsigned long long)f->last.bytes_acked,
			     (unsigned long long)f->last.bytes_received, bps, f->last.srtt_us,
			     f->last.cwnd, f->last.retransmits))
		s->csv = NULL; /* trace cap reached: keep measuring */
}

static void bs_sample(struct bsampler *s)
{
	int seen[BX_MAX_SF] = { 0 };
	struct mps_conn_info ci;
	uint64_t mono = fj_mono_ms();
	int64_t now = fj_wall_ms();
	unsigned int i, alive = 0;

	if (mps_conn_info(s->c, &ci) < 0)
		return;
	for (i = 0; i < ci.nsubflows; i++) {
		struct mps_subflow_info si;
		struct bsf *f;
		uint64_t bytes, delta;

		if (mps_subflow_info(s->c, i, &si) < 0)
			continue;
		f = find_sf(s, &si);
		if (!f) {
			/* Not news while in its handshake. */
			if (!si.up || s->n_sf >= BX_MAX_SF)
				continue;
			f = &s->sf[s->n_sf];
			f->id = s->n_sf++;
			f->last = si;
			if (f->id > 0)
				sf_event(s, "subflow_up", f);
		} else if (!f->alive && si.up) {
			sf_event(s, "subflow_up", f);
		}
		f->last = si;
		if (si.up) {
			f->alive = 1;
			seen[f - s->sf] = 1;
		}
		bytes = si.bytes_acked + si.bytes_received;
		delta = bytes > f->prev_bytes ? bytes - f->prev_bytes : 0;
		f->prev_bytes = bytes;
		add_sample(s, f, now);
		csv_line(s, f, mono,
			 s->prev_ms && mono > s->prev_ms
				 ? (double)delta * 8000.0 / (double)(mono - s->prev_ms)
				 : 0);
	}
	for (i = 0; i < s->n_sf; i++) {
		if (s->sf[i].alive && !seen[i]) {
			s->sf[i].alive = 0;
			if (!s->finishing)
				sf_event(s, "subflow_down", &s->sf[i]);
		}
		alive += s->sf[i].alive;
	}
	if (alive > s->max_alive)
		s->max_alive = alive;
	s->prev_ms = mono;
	s->next_ms = mono + s->interval_ms;
}

static void bs_finish(struct bsampler *s)
{
	Fjord__V1__Result *r = s->out->result;
	unsigned int i;

	s->finishing = 1;
	bs_sample(s);
	if (s->dropped) {
		char d[96];

		snprintf(d, sizeof(d), "%llu samples beyond the cap of %u are only in the trace",
			 (unsigned long long)s->dropped, EXP_MAX_SAMPLES);
		exp_add_event(s->out, "samples_capped", d, 0);
	}
	r->subflows = agent_arena_alloc(s->out->arena, (s->n_sf + 1) * sizeof(*r->subflows));
	r->n_subflows = 0;
	for (i = 0; r->subflows && i < s->n_sf; i++) {
		const struct mps_subflow_info *l = &s->sf[i].last;
		Fjord__V1__SubflowMetrics *m = agent_arena_alloc(s->out->arena, sizeof(*m));
		char a[AGENT_ADDR_MAX], b[AGENT_ADDR_MAX];

		if (!m)
			return;
		fjord__v1__subflow_metrics__init(m);
		bundled_addr_str(&l->local, a, sizeof(a));
		bundled_addr_str(&l->remote, b, sizeof(b));
		m->id = s->sf[i].id;
		m->local_address = agent_arena_strdup(s->out->arena, a);
		m->remote_address = agent_arena_strdup(s->out->arena, b);
		if (!m->local_address || !m->remote_address)
			return;
		m->bytes_sent = l->bytes_sent;
		m->bytes_acked = l->bytes_acked;
		m->bytes_received = l->bytes_received;
		m->retransmissions = l->retransmits;
		m->srtt_us = l->srtt_us;
		m->rttvar_us = l->rttvar_us;
		m->cwnd = l->cwnd;
		m->ssthresh = l->ssthresh;
		m->local_isp = (char *)isp_of(s, &l->local, 1);
		m->remote_isp = (char *)isp_of(s, &l->remote, 0);
		r->subflows[r->n_subflows++] = m;
	}
}

/* Bundled endpoints of every run path. 0, or <0 after exp_fail(). */
static int resolve_paths(const Fjord__V1__RunCommand *cmd, const struct exp_env *env,
			 struct exp_out *out, struct bpath *bp, size_t *n)
{
	const struct bundled_cfg *bc = bundled_get();
	char info[BUNDLED_INFO_MAX + 1];
	size_t i;
	int rc;

	if (!bundled_enabled(bc)) {
		exp_fail(out, "this agent has no bundled stack (neither bundled_tun nor "
			      "bundled_host is configured)");
		return -ENODEV;
	}
	if (cmd->run->n_paths == 0) {
		exp_fail(out, "a bundled run needs run paths (local ISP x remote ISP)");
		return -EINVAL;
	}
	*n = cmd->run->n_paths < BX_MAX_PATHS ? cmd->run->n_paths : BX_MAX_PATHS;
	rc = bundled_ask_info(cmd, env, out, info, sizeof(info));
	if (rc < 0)
		return rc;
	for (i = 0; i < *n; i++) {
		struct bpath *p = &bp[i];
		const struct bundled_isp *own;
		struct exp_target t;
		int fam, port;

		rc = exp_resolve_target(cmd, env, i, &t, out);
		if (rc < 0)
			return rc;
		fam = t.family == AF_INET6 ? 6 : 4;
		p->local_isp = cmd->run->paths[i]->local_isp;
		p->remote_isp = cmd->run->paths[i]->remote_isp;
		own = bundled_own_isp(bc, p->local_isp);
		if (!own || !own->addr[fam == 6][0]) {
			exp_fail(out, "path %zu: this agent has no bundled IPv%d address on ISP %s",
				 i, fam, p->local_isp ? p->local_isp : "(none)");
			return -ENOENT;
		}
		snprintf(p->local_str, sizeof(p->local_str), "%s", own->addr[fam == 6]);
		if (!p->remote_isp || bundled_info_lookup(info, p->remote_isp, fam, p->remote_str,
							  sizeof(p->remote_str)) < 0) {
			exp_fail(out,
				 "path %zu: the peer agent has no bundled responder IPv%d address "
				 "on ISP %s",
				 i, fam, p->remote_isp ? p->remote_isp : "(none)");
			return -ENOENT;
		}
		/* A host adapter's responder names its port; a TUN one has the kernel's. */
		port = bundled_info_port(info, p->remote_isp, env->responder_port);
		if (port < 0)
			return exp_fail(out,
					"path %zu: the peer's bundled port on ISP %s is "
					"malformed",
					i, p->remote_isp),
			       -EPROTO;
		if (bundled_addr(p->local_str, 0, &p->local) ||
		    bundled_addr(p->remote_str, (uint16_t)port, &p->remote))
			return exp_fail(out, "path %zu: bad bundled address", i), -EINVAL;
	}
	return 0;
}

/* Events of the stack: fallback and resets become the run's events. */
static void drain_events(struct bx *x, struct exp_out *out, struct exp_bundled_res *res)
{
	struct mps_event ev;

	while (mps_next_event(x->io.st, &ev) == 0) {
		char d[96];

		switch (ev.type) {
		case MPS_EV_FALLBACK:
			res->fallback = 1;
			snprintf(d, sizeof(d), "connection fell back to TCP (libmps reason %d)",
				 ev.reason);
			exp_add_event(out, "fallback", d, 0);
			break;
		case MPS_EV_CONN_RESET:
			x->reset = ev.reason ? ev.reason : -1;
			break;
		case MPS_EV_SUBFLOW_DOWN:
			/* A closing subflow is the normal end; anything else is a finding. */
			if (ev.reason && ev.reason != MPS_SF_DOWN_CLOSED &&
			    ev.reason != MPS_SF_DOWN_CONN) {
				snprintf(d, sizeof(d),
					 "join subflow with local address ID %u went away (libmps "
					 "reason %d)",
					 ev.subflow_id, ev.reason);
				exp_add_event(out, "join_down", d, ev.subflow_id);
			}
			break;
		case MPS_EV_ADD_ADDR_IN:
			snprintf(d, sizeof(d), "the peer announced address ID %d", ev.reason);
			exp_add_event(out, "add_addr", d, 0);
			break;
		case MPS_EV_JOIN_RETRY:
			/* The stack's path manager reopens a subflow that failed: recovery. */
			snprintf(d, sizeof(d),
				 "subflow with local address ID %u opened again (attempt %d)",
				 ev.subflow_id, ev.reason);
			exp_add_event(out, "join_retry", d, ev.subflow_id);
			break;
		case MPS_EV_JOIN_GIVEN_UP:
			snprintf(d, sizeof(d),
				 "subflow with local address ID %u given up after its retries "
				 "(libmps reason %d)",
				 ev.subflow_id, ev.reason);
			exp_add_event(out, "join_given_up", d, ev.subflow_id);
			break;
		default:
			break;
		}
	}
}

static const char *rst_reason(int r)
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
	default:
		return "reset";
	}
}

/* Pumps until the connection is established and the request answered. 0 or <0 after exp_fail(). */
static int bx_open(struct bx *x, const struct bpath *p0, const struct agent_resp_request *q,
		   const struct exp_env *env, struct exp_out *out, struct exp_bundled_res *res)
{
	uint8_t req[AGENT_RESP_REQ_LEN], rep[AGENT_RESP_REPLY_LEN];
	size_t sent = 0, got = 0;
	uint64_t end = fj_mono_ms() + BUNDLED_ANSWER_MS;
	struct agent_resp_reply reply;
	int rc;

	if (end > env->deadline_mono_ms - BX_SLACK_MS)
		end = env->deadline_mono_ms - BX_SLACK_MS;
	rc = mps_connect(x->io.st, &p0->local, &p0->remote, &x->c);
	if (rc < 0) {
		exp_fail(out, "bundled connect from %s: %s", p0->local_str, strerror(-rc));
		return rc;
	}
	agent_resp_request_encode(q, req);
	while (got < sizeof(rep)) {
		ssize_t n;

		if (fj_mono_ms() >= end) {
			exp_fail(out,
				 "the peer's bundled responder at %s port %u did not answer within "
				 "%u ms",
				 p0->remote_str, p0->remote.port, BUNDLED_ANSWER_MS);
			return -ETIMEDOUT;
		}
		bundled_io_step(&x->io, 10);
		drain_events(x, out, res);
		if (x->reset) {
			exp_fail(out, "the peer's bundled responder at %s port %u: %s",
				 p0->remote_str, p0->remote.port, rst_reason(x->reset));
			return -ECONNRESET;
		}
		if (sent < sizeof(req)) {
			n = mps_send(x->c, req + sent, sizeof(req) - sent);
			if (n > 0)
				sent += (size_t)n;
			continue;
		}
		n = mps_recv(x->c, rep + got, sizeof(rep) - got);
		if (n == 0) {
			exp_fail(out, "reading the responder's reply: connection closed by the "
				      "responder");
			return -ECONNRESET;
		}
		if (n > 0)
			got += (size_t)n;
	}
	if (agent_resp_reply_decode(rep, &reply) < 0) {
		exp_fail(out, "the peer is not a Fjord responder (bad reply)");
		return -EPROTO;
	}
	if (!reply.ok) {
		exp_fail(out, "responder refused the request: %s", reply.message);
		return -EINVAL;
	}
	return 0;
}

/* Upload: the stream until the byte count or the time, then DATA_FIN. */
static int bx_send(struct bx *x, const struct exp_bundled_xfer *xf, uint64_t elapsed)
{
	while (!x->shut) {
		size_t len = BX_CHUNK;
		ssize_t n;

		if ((xf->bytes && x->off >= xf->bytes) ||
		    (xf->duration_ms && elapsed >= xf->duration_ms)) {
			mps_shutdown(x->c);
			x->shut = 1;
			break;
		}
		if (xf->bytes && xf->bytes - x->off < len)
			len = (size_t)(xf->bytes - x->off);
		agent_resp_fill(x->seed, x->off, x->buf, len);
		n = mps_send(x->c, x->buf, len);
		if (n == -EAGAIN)
			return 0;
		if (n <= 0)
			return (int)n;
		EVP_DigestUpdate(x->md, x->buf, (size_t)n);
		x->off += (uint64_t)n;
	}
	return 0;
}

static int bx_recv(struct bx *x, const struct exp_bundled_xfer *xf)
{
	for (;;) {
		ssize_t n;

		if (xf->download)
			n = mps_recv(x->c, x->buf, sizeof(x->buf));
		else
			n = mps_recv(x->c, x->trailer + x->trailer_len,
				     sizeof(x->trailer) - x->trailer_len);
		if (n == -EAGAIN)
			return 0;
		if (n < 0)
			return (int)n;
		if (n == 0) {
			x->eof = 1;
			return 0;
		}
		if (!xf->download) {
			x->trailer_len += (size_t)n;
			if (x->trailer_len == sizeof(x->trailer))
				return 0;
			continue;
		}
		n = agent_resp_deframe(&x->df, x->buf, (size_t)n);
		if (n < 0)
			return -EPROTO;
		EVP_DigestUpdate(x->md, x->buf, (size_t)n);
		agent_resp_fill(x->seed, x->off, x->exp, (size_t)n);
		EVP_DigestUpdate(x->md_exp, x->exp, (size_t)n);
		x->off += (uint64_t)n;
	}
}

static int sha_final(EVP_MD_CTX *c, uint8_t md[32])
{
	unsigned int len = 0;

	return EVP_DigestFinal_ex(c, md, &len) && len == 32 ? 0 : -EIO;
}

/* The finished stream against the responder's trailer. 0 or -EIO after exp_fail(). */
static int bx_check(struct bx *x, const struct exp_bundled_xfer *xf, struct exp_out *out,
		    struct exp_bundled_res *res, uint64_t elapsed)
{
	struct agent_resp_trailer tr;
	uint8_t a[32], b[32];

	if (xf->download) {
		if (!x->df.done) {
			exp_fail(out,
				 "transfer: the responder's stream ended without its end trailer "
				 "after %llu bytes and %llu ms (the responder went away or the "
				 "connection was cut)",
				 (unsigned long long)x->off, (unsigned long long)elapsed);
			return -EIO;
		}
		if (sha_final(x->md, a) || sha_final(x->md_exp, b))
			return exp_fail(out, "transfer: SHA-256 failed"), -EIO;
		res->bytes = x->off;
		res->sha_ok = !memcmp(a, b, 32) && !memcmp(a, x->df.tr.sha256, 32);
		if (x->df.tr.bytes != x->off) {
			exp_fail(out, "transfer: received %llu bytes, the responder sent %llu",
				 (unsigned long long)x->off, (unsigned long long)x->df.tr.bytes);
			return -EIO;
		}
	} else {
		if (x->trailer_len != sizeof(x->trailer) ||
		    agent_resp_trailer_decode(x->trailer, &tr) < 0) {
			exp_fail(
				out,
				"transfer: the responder closed the connection without its trailer "
				"(%llu bytes sent)",
				(unsigned long long)x->off);
			return -EIO;
		}
		if (sha_final(x->md, a))
			return exp_fail(out, "transfer: SHA-256 failed"), -EIO;
		res->bytes = tr.bytes;
		res->sha_ok = tr.bytes == x->off && !memcmp(a, tr.sha256, 32);
		if (tr.bytes != x->off) {
			exp_fail(out, "transfer: sent %llu bytes, the responder got %llu",
				 (unsigned long long)x->off, (unsigned long long)tr.bytes);
			return -EIO;
		}
	}
	if (!res->sha_ok) {
		exp_fail(out, "transfer: SHA-256 of the stream differs between the two ends");
		return -EIO;
	}
	return 0;
}

static int same_host(const struct mps_addr *a, const struct mps_addr *b)
{
	return a->family == b->family && !memcmp(a->addr, b->addr, 16);
}

/* Whether c has a subflow over p's address pair, up or in its handshake. */
static int path_has_subflow(struct mps_conn *c, const struct bpath *p)
{
	struct mps_conn_info ci;
	unsigned int i;

	if (mps_conn_info(c, &ci) < 0)
		return 1;
	for (i = 0; i < ci.nsubflows; i++) {
		struct mps_subflow_info si;

		if (mps_subflow_info(c, i, &si) == 0 && strcmp(si.state, "CLOSED") &&
		    same_host(&si.local, &p->local) && same_host(&si.remote, &p->remote))
			return 1;
	}
	return 0;
}

/*
 * A path whose subflow went away while the connection carries on over
 * others (its link down: retransmissions exhausted, stale, reset) is opened
 * again as a join BX_REOPEN_MS after that was seen, and again after each
 * attempt that fails, for as long as the run lasts: libmps's path manager
 * retries only joins it opened itself, and a link may come back after any
 * time. An attempt in its handshake counts as the path's subflow.
 */
static void bx_reopen(struct bx *x, struct bpath *bp, size_t n, struct exp_out *out)
{
	uint64_t now = fj_mono_ms();
	struct mps_conn_info ci;
	size_t i;

	if (now < x->next_check || mps_conn_info(x->c, &ci) < 0 ||
	    ci.state != MPS_CONN_ESTABLISHED || !ci.mptcp)
		return;
	x->next_check = now + BX_CHECK_MS;
	for (i = 0; i < n; i++) {
		char d[200];
		int rc;

		if ((i && !bp[i].joined) || bp[i].refused || bp[i].withdrawn)
			continue;
		if (path_has_subflow(x->c, &bp[i])) {
			bp[i].retry_at = 0;
			continue;
		}
		if (!bp[i].retry_at) {
			bp[i].retry_at = now + BX_REOPEN_MS;
			continue;
		}
		if (now < bp[i].retry_at)
			continue;
		bp[i].retry_at = now + BX_REOPEN_MS;
		rc = mps_join(x->c, &bp[i].local, &bp[i].remote, bp[i].backup);
		bp[i].reopened++;
		if (rc < 0)
			snprintf(d, sizeof(d),
				 "path %zu: opening the subflow from %s to %s again: %s", i,
				 bp[i].local_str, bp[i].remote_str, strerror(-rc));
		else
			snprintf(d, sizeof(d),
				 "path %zu: subflow from %s to %s gone; opened again (attempt %u)",
				 i, bp[i].local_str, bp[i].remote_str, bp[i].reopened);
		exp_add_event(out, rc < 0 ? "reopen_failed" : "reopen", d, 0);
	}
}

/*
 * Joins for paths 1..n-1 once the connection takes them (a refusal is an
 * event, not a failure), and paths whose subflow went away opened again.
 */
static void bx_joins(struct bx *x, struct bpath *bp, size_t n, struct exp_out *out)
{
	size_t i;

	bp[0].joined = 1;
	for (i = 1; i < n; i++) {
		char d[160];
		int rc;

		if (bp[i].joined)
			continue;
		rc = mps_join(x->c, &bp[i].local, &bp[i].remote, false);
		if (rc == -ENOTCONN)
			return; /* not fully established yet: again on the next pass */
		bp[i].joined = 1;
		if (rc < 0) {
			bp[i].refused = 1;
			snprintf(d, sizeof(d), "path %zu: join from %s to %s: %s", i,
				 bp[i].local_str, bp[i].remote_str, strerror(-rc));
			exp_add_event(out, "join_failed", d, 0);
		}
	}
	bx_reopen(x, bp, n, out);
}

/* What a handover's events without a command act on: the run's connection and paths. */
struct bx_links {
	struct bx *x;
	struct bpath *bp;
	size_t n;
};

/*
 * A "down" link event without a hook: the ISP's bundled address is withdrawn
 * from the connection (mps_remove_addr(): REMOVE_ADDR to the peer, and the
 * subflows from it reset), as a node that loses an address does; its paths
 * are not reopened until "up". Paths sharing an address withdraw it once.
 */
static int bx_withdraw(struct bx_links *l, const char *isp, char *buf, size_t len)
{
	size_t k, j, o = 0;
	int rc = 0, done = 0;

	buf[0] = 0;
	for (k = 0; k < l->n; k++) {
		struct bpath *p = &l->bp[k];
		int r;

		if (!p->local_isp || strcmp(p->local_isp, isp))
			continue;
		for (j = 0; j < k; j++)
			if (l->bp[j].local_isp && !strcmp(l->bp[j].local_isp, isp) &&
			    same_host(&l->bp[j].local, &p->local))
				break;
		if (j < k) {
			p->withdrawn = l->bp[j].withdrawn; /* its address went (or not) already */
			continue;
		}
		r = mps_remove_addr(l->x->c, &p->local);
		if (r == -EBUSY)
			snprintf(buf + o, len - o,
				 "%sREMOVE_ADDR of %s refused: it is the initial subflow's "
				 "address and no other subflow works",
				 o ? "; " : "", p->local_str);
		else if (r < 0)
			snprintf(buf + o, len - o, "%sREMOVE_ADDR of %s: %s", o ? "; " : "",
				 p->local_str, strerror(-r));
		else
			snprintf(buf + o, len - o, "%sREMOVE_ADDR of %s sent, its subflows reset",
				 o ? "; " : "", p->local_str);
		o = strlen(buf);
		/* An address not withdrawn keeps its paths open as before. */
		p->withdrawn = r == 0;
		p->retry_at = 0;
		if (r < 0)
			rc = r;
		else
			done++;
	}
	if (!done && !rc) {
		snprintf(buf, len, "no run path from the bundled address of ISP %s", isp);
		return -ENOENT;
	}
	return rc;
}

/*
 * An "up" link event without a hook: every path of the ISP opened again as
 * a join (its priority as a "backup" event left it); one that cannot be
 * opened now is retried by bx_reopen(), as after an outage.
 */
static int bx_restore(struct bx_links *l, const char *isp, char *buf, size_t len)
{
	size_t k, o = 0;
	int rc = 0, done = 0, any = 0;

	buf[0] = 0;
	for (k = 0; k < l->n; k++) {
		struct bpath *p = &l->bp[k];

		if (!p->local_isp || strcmp(p->local_isp, isp) || !p->withdrawn)
			continue;
		any++;
		p->withdrawn = 0;
		p->retry_at = 0;
		if (path_has_subflow(l->x->c, p)) {
			done++;
			continue;
		}
		rc = mps_join(l->x->c, &p->local, &p->remote, p->backup);
		p->reopened++;
		snprintf(buf + o, len - o, "%sMP_JOIN from %s to %s%s%s", o ? "; " : "",
			 p->local_str, p->remote_str, rc < 0 ? ": " : "",
			 rc < 0 ? strerror(-rc) : "");
		o = strlen(buf);
		done += rc == 0;
	}
	if (!any) {
		snprintf(buf, len, "no path of ISP %s was withdrawn", isp);
		return -ENOENT;
	}
	if (!done)
		return rc < 0 ? rc : -ENOENT;
	if (!o)
		snprintf(buf, len, "the paths of ISP %s have their subflows", isp);
	return 0;
}

/*
 * A link event without a hook on the bundled stack. "backup": MP_PRIO backup
 * (mps_set_backup()) on every subflow from the bundled address of the
 * event's ISP, as the kernel's endpoint flag does; a subflow of that path
 * opened again later is a backup too. "down" and "up": bx_withdraw() and
 * bx_restore(). 0, or a negative errno with the reason in buf.
 */
static int bx_apply(void *arg, const struct exp_link_event *e, char *buf, size_t len)
{
	struct bx_links *l = arg;
	struct mps_conn_info ci;
	unsigned int i, done = 0;
	const char *addr = "";
	size_t k;
	int rc;

	if (!strcmp(e->action, "down"))
		return bx_withdraw(l, e->isp, buf, len);
	if (!strcmp(e->action, "up"))
		return bx_restore(l, e->isp, buf, len);
	if (strcmp(e->action, "backup")) {
		snprintf(buf, len, "the bundled stack has no link action %s", e->action);
		return -EINVAL;
	}
	for (k = 0; k < l->n; k++)
		if (l->bp[k].local_isp && !strcmp(l->bp[k].local_isp, e->isp)) {
			l->bp[k].backup = 1;
			addr = l->bp[k].local_str;
		}
	rc = mps_conn_info(l->x->c, &ci);
	for (i = 0; rc == 0 && i < ci.nsubflows; i++) {
		struct mps_subflow_info si;

		if (mps_subflow_info(l->x->c, i, &si) < 0)
			continue;
		for (k = 0; k < l->n; k++)
			if (l->bp[k].backup && l->bp[k].local_isp &&
			    !strcmp(l->bp[k].local_isp, e->isp) &&
			    same_host(&si.local, &l->bp[k].local))
				break;
		if (k == l->n)
			continue;
		rc = mps_set_backup(l->x->c, i, true);
		done += rc == 0;
	}
	if (rc < 0) {
		snprintf(buf, len, "MP_PRIO backup from %s: %s", addr, strerror(-rc));
		return rc;
	}
	if (!done) {
		snprintf(buf, len, "no subflow from the bundled address of ISP %s", e->isp);
		return -ENOENT;
	}
	snprintf(buf, len, "MP_PRIO backup on %u subflow(s) from %s", done, addr);
	return 0;
}

/* Data-level progress for a handover's figures: acknowledged (upload) or received (download). */
static void bx_progress(struct bx *x, const struct exp_bundled_xfer *xf, uint64_t t0, uint64_t una0)
{
	struct mps_conn_info ci;
	uint64_t p = x->off;

	if (!xf->progress)
		return;
	if (!xf->download)
		p = mps_conn_info(x->c, &ci) == 0 && ci.bytes_acked > una0 ? ci.bytes_acked - una0
									   : 0;
	xf->progress(xf->progress_arg, fj_mono_ms() - t0, p);
}

static void bx_transfer(struct bx *x, struct bpath *bp, size_t n, const struct exp_bundled_xfer *xf,
			const struct exp_env *env, struct exp_out *out, struct exp_bundled_res *res)
{
	struct bsampler s = { .out = out,
			      .csv = xf->csv,
			      .c = x->c,
			      .paths = bp,
			      .n_paths = n,
			      .interval_ms = xf->interval_ms };
	uint64_t t0 = fj_mono_ms(), t_end = 0, last_move = t0, mark = 0, una0 = 0;
	struct bx_links lk = { x, bp, n };
	struct mps_conn_info ci0;
	int rc;

	if (s.csv && s.csv->len == 0)
		exp_trace_printf(s.csv, "t_ms,subflow_id,local,lport,remote,rport,bytes_acked,"
					"bytes_received,goodput_bps,srtt_us,cwnd,retrans\n");
	bs_sample(&s);
	/* The request header is acknowledged data too: progress counts from here. */
	if (mps_conn_info(x->c, &ci0) == 0)
		una0 = ci0.bytes_acked;
	/*
	 * The data starts now: the first progress point is exactly at 0, as
	 * the figures before the first link event are measured from it (one
	 * at +1 ms left a window starting at 0 without a point).
	 */
	t0 = fj_mono_ms();
	last_move = t0;
	res->t0_mono = t0;
	if (xf->links) {
		xf->links->apply = bx_apply;
		xf->links->apply_arg = &lk;
		xf->links->t0 = t0;
	}
	if (xf->progress)
		xf->progress(xf->progress_arg, 0, 0);
	for (;;) {
		uint64_t now = fj_mono_ms();
		unsigned int wait = 20;
		uint32_t next_link = UINT32_MAX;

		if (exp_left_ms(env) <= BX_SLACK_MS + BX_CLOSE_MS / 2) {
			exp_fail(out,
				 "transfer: not finished before the run's deadline (%llu bytes "
				 "so far)",
				 (unsigned long long)x->off);
			break;
		}
		if (now >= s.next_ms) {
			bs_sample(&s);
			bx_progress(x, xf, t0, una0);
		}
		if (xf->links) {
			next_link = exp_link_run_due(xf->links, out);
			exp_link_reap(xf->links, out, 0);
		}
		/*
		 * A connection that moves nothing for BX_STALL_MS is stuck (the
		 * peer or every path gone, or the stack wedged): the run fails
		 * now rather than at its deadline.
		 */
		{
			struct mps_conn_info ci;
			uint64_t m = x->off + x->trailer_len;

			if (mps_conn_info(x->c, &ci) == 0)
				m += ci.bytes_acked + ci.bytes_received;
			if (m != mark) {
				mark = m;
				last_move = now;
			} else if (now - last_move >= BX_STALL_MS) {
				exp_fail(
					out,
					"transfer: nothing moved for %u ms (%llu bytes so far): the "
					"peer or its paths went away",
					BX_STALL_MS, (unsigned long long)x->off);
				x->reset = MPS_RST_TIMEOUT;
				break;
			}
		}
		bx_joins(x, bp, n, out);
		/* Once our side is shut, subflows closing are the end, not news. */
		s.finishing = x->shut || (xf->download && x->df.in_trailer);
		if (!xf->download && !x->shut) {
			rc = bx_send(x, xf, now - t0);
			if (rc < 0) {
				exp_fail(out, "transfer: sending after %llu bytes: %s",
					 (unsigned long long)x->off, strerror(-rc));
				break;
			}
			if (!x->shut)
				wait = 0; /* the send buffer took data: pump it out now */
		}
		rc = bx_recv(x, xf);
		if (rc < 0 && rc != -ECONNRESET) {
			exp_fail(out, "transfer: receiving after %llu bytes: %s",
				 (unsigned long long)x->off, strerror(-rc));
			break;
		}
		drain_events(x, out, res);
		if (x->reset || rc == -ECONNRESET) {
			exp_fail(out, "transfer: after %llu bytes: %s", (unsigned long long)x->off,
				 rst_reason(x->reset));
			break;
		}
		if (x->eof || (xf->download && x->df.done) ||
		    (!xf->download && x->trailer_len == sizeof(x->trailer))) {
			t_end = fj_mono_ms();
			break;
		}
		if (wait && s.next_ms > now && s.next_ms - now < wait)
			wait = (unsigned int)(s.next_ms - now);
		if (next_link < wait)
			wait = next_link;
		bundled_io_step(&x->io, wait);
	}
	bs_finish(&s);
	bx_progress(x, xf, t0, una0);
	if (xf->links)
		xf->links->apply = NULL; /* lk goes with this frame */
	res->max_subflows = s.max_alive;
	if (t_end && bx_check(x, xf, out, res, t_end - t0) == 0) {
		res->done = 1;
		res->dur_ms = t_end - t0;
		res->goodput_bps = res->dur_ms ? (double)res->bytes * 8000.0 / (double)res->dur_ms
					       : 0;
	}
}

/* Closes the connection and gives the close handshake a moment, so the responder is freed too. */
static void bx_close(struct bx *x, const struct exp_env *env)
{
	if (!x->c)
		return;
	bundled_io_end_conn(&x->io, x->c, x->reset, BX_CLOSE_MS, env, BX_SLACK_MS);
	x->c = NULL;
}

static void add_paths(struct exp_out *out, const struct bpath *bp, size_t n,
		      const Fjord__V1__RunCommand *cmd, struct exp_bundled_res *res)
{
	size_t i;

	res->paths = agent_arena_alloc(out->arena, n * sizeof(*res->paths));
	if (!res->paths)
		return;
	for (i = 0; i < n; i++) {
		Fjord__V1__Path *p = agent_arena_alloc(out->arena, sizeof(*p));

		if (!p)
			return;
		fjord__v1__path__init(p);
		p->local_isp = cmd->run->paths[i]->local_isp;
		p->remote_isp = cmd->run->paths[i]->remote_isp;
		p->family = cmd->run->paths[i]->family;
		p->local_address = agent_arena_strdup(out->arena, bp[i].local_str);
		p->remote_address = agent_arena_strdup(out->arena, bp[i].remote_str);
		res->paths[res->n_paths++] = p;
	}
}

#define BX_DEFAULT_SCHED "lowrtt"
#define BX_DEFAULT_CC	 "lia"

/* The stack's settings from the run's StackSettings. 0, or -EINVAL after exp_fail(). */
static int bx_settings(const Fjord__V1__RunCommand *cmd, struct mps_config *cfg,
		       struct exp_out *out, struct exp_bundled_res *res)
{
	const Fjord__V1__StackSettings *ss = cmd->spec ? cmd->spec->stack : NULL;

	/* libmps's defaults (stack/include/mps.h), named so provenance says what ran. */
	snprintf(res->scheduler, sizeof(res->scheduler), "%s", BX_DEFAULT_SCHED);
	snprintf(res->cc, sizeof(res->cc), "%s", BX_DEFAULT_CC);
	if (!ss)
		return 0;
	if (ss->congestion_control && ss->congestion_control[0]) {
		if (strcmp(ss->congestion_control, "lia") &&
		    strcmp(ss->congestion_control, "reno")) {
			exp_fail(out,
				 "the bundled stack has the congestion controls lia (coupled, the "
				 "default) and reno; the run asks for '%.64s'",
				 ss->congestion_control);
			return -EINVAL;
		}
		snprintf(res->cc, sizeof(res->cc), "%s", ss->congestion_control);
		cfg->congestion = res->cc;
	}
	if (ss->path_manager && ss->path_manager[0] && strcmp(ss->path_manager, "fullmesh")) {
		exp_fail(out,
			 "the bundled stack has one path manager, fullmesh; the run asks for "
			 "'%.64s'",
			 ss->path_manager);
		return -EINVAL;
	}
	if (ss->scheduler && ss->scheduler[0]) {
		if (strlen(ss->scheduler) >= sizeof(res->scheduler)) {
			exp_fail(out, "scheduler name too long");
			return -EINVAL;
		}
		snprintf(res->scheduler, sizeof(res->scheduler), "%s", ss->scheduler);
		cfg->scheduler = res->scheduler;
	}
	cfg->checksum = ss->checksums;
	return 0;
}

typedef void (*bx_body_fn)(struct bx *x, struct bpath *bp, size_t n, void *arg,
			   const struct exp_env *env, struct exp_out *out,
			   struct exp_bundled_res *res);

/*
 * Everything around a bundled run's work: settings, bundled paths, the client
 * TUN and stack, the connection and request q, then body, then the close and
 * the trace. Failures go to exp_fail().
 */
static void bx_run(const Fjord__V1__RunCommand *cmd, const struct exp_env *env, struct exp_out *out,
		   struct exp_bundled_res *res, struct agent_resp_request *q, bx_body_fn body,
		   void *arg)
{
	/* The agent's buffer caps, as the bundled responder's (bundled_resp.c says why). */
	struct mps_config cfg = { .msl_us = 1000000 };
	struct bpath bp[BX_MAX_PATHS];
	struct bx *x;
	struct mps_conn_info ci;
	char why[200];
	size_t n = 0;
	int rc;

	memset(bp, 0, sizeof(bp));
	if (bx_settings(cmd, &cfg, out, res) || resolve_paths(cmd, env, out, bp, &n))
		return;
	add_paths(out, bp, n, cmd, res);
	x = calloc(1, sizeof(*x));
	if (!x) {
		exp_fail(out, "out of memory");
		return;
	}
	/*
	 * One more than the paths: libmps counts the initial subflow even once
	 * it is gone, and its pair then comes back as a join (bx_reopen()).
	 */
	cfg.max_subflows = (uint8_t)(n + 1 < BX_MAX_SUBFLOWS ? n + 1 : BX_MAX_SUBFLOWS);
	bundled_cfg_buffers(bundled_get(), &cfg);
	rc = bundled_io_open_run(&x->io, bundled_get(), &cfg, 1, why, sizeof(why));
	if (rc < 0) {
		if (rc == -EINVAL && cfg.scheduler)
			snprintf(why, sizeof(why),
				 "the bundled stack has no scheduler '%.32s' (it has initial, "
				 "lowrtt)",
				 cfg.scheduler);
		exp_fail(out, "%s", why);
		free(x);
		return;
	}
	x->md = EVP_MD_CTX_new();
	x->md_exp = EVP_MD_CTX_new();
	if (!x->md || !x->md_exp || !EVP_DigestInit_ex(x->md, EVP_sha256(), NULL) ||
	    !EVP_DigestInit_ex(x->md_exp, EVP_sha256(), NULL)) {
		exp_fail(out, "SHA-256 unavailable");
	} else {
		x->seed = q->seed;
		if (bx_open(x, &bp[0], q, env, out, res) == 0)
			body(x, bp, n, arg, env, out, res);
		if (x->c && mps_conn_info(x->c, &ci) == 0) {
			res->mptcp = ci.mptcp;
			res->checksum = ci.checksum;
			if (ci.fallback && !res->fallback) {
				res->fallback = 1;
				exp_add_event(out, "fallback",
					      ci.fallback_reason ? ci.fallback_reason
								 : "connection fell back to TCP",
					      0);
			}
		}
		bx_close(x, env);
	}
	bundled_io_close_trace(&x->io, out);
	EVP_MD_CTX_free(x->md);
	EVP_MD_CTX_free(x->md_exp);
	free(x);
}

static void bulk_body(struct bx *x, struct bpath *bp, size_t n, void *arg,
		      const struct exp_env *env, struct exp_out *out, struct exp_bundled_res *res)
{
	bx_transfer(x, bp, n, arg, env, out, res);
}

int exp_bundled_bulk(const Fjord__V1__RunCommand *cmd, const struct exp_env *env,
		     struct exp_out *out, const struct exp_bundled_xfer *xf,
		     struct exp_bundled_res *res)
{
	const Fjord__V1__StackSettings *ss = cmd->spec ? cmd->spec->stack : NULL;
	struct agent_resp_request q = { 0 };

	/*
	 * A download is sent by the peer's bundled responder, whose one stack
	 * has libmps's default scheduler and congestion control: others asked
	 * for would be recorded but not used.
	 */
	if (xf->download && ss &&
	    ((ss->scheduler && ss->scheduler[0] && strcmp(ss->scheduler, BX_DEFAULT_SCHED)) ||
	     (ss->congestion_control && ss->congestion_control[0] &&
	      strcmp(ss->congestion_control, BX_DEFAULT_CC)))) {
		snprintf(res->scheduler, sizeof(res->scheduler), "%s", BX_DEFAULT_SCHED);
		snprintf(res->cc, sizeof(res->cc), "%s", BX_DEFAULT_CC);
		exp_fail(out,
			 "a bundled download is sent by the peer's bundled responder with "
			 "scheduler '" BX_DEFAULT_SCHED "' and congestion control '" BX_DEFAULT_CC
			 "'; the run asks for '%.32s' and '%.32s'",
			 ss->scheduler && ss->scheduler[0] ? ss->scheduler : BX_DEFAULT_SCHED,
			 ss->congestion_control && ss->congestion_control[0]
				 ? ss->congestion_control
				 : BX_DEFAULT_CC);
		return 0;
	}
	if (getrandom(&q.seed, sizeof(q.seed), 0) != sizeof(q.seed))
		q.seed = (uint32_t)fj_mono_us();
	q.type = xf->download ? AGENT_RESP_SOURCE : AGENT_RESP_SINK;
	q.bytes = xf->download ? xf->bytes : 0;
	q.duration_ms = xf->download ? xf->duration_ms : 0;
	bx_run(cmd, env, out, res, &q, bulk_body, (void *)xf);
	return 0;
}

/* Moves len bytes of p through the connection, pumping; 0 or <0 after exp_fail(). */
static int bx_send_all(struct bx *x, const uint8_t *p, size_t len, const struct exp_env *env,
		       struct exp_out *out, struct exp_bundled_res *res, uint32_t seq)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = mps_send(x->c, p + off, len - off);

		if (n > 0)
			off += (size_t)n;
		else if (n != -EAGAIN)
			return exp_fail(out, "sending message %u: %s", seq, strerror((int)-n)),
			       -EIO;
		bundled_io_step(&x->io, off < len ? 5 : 0);
		drain_events(x, out, res);
		if (x->reset)
			return exp_fail(out, "sending message %u: %s", seq, rst_reason(x->reset)),
			       -ECONNRESET;
		if (exp_left_ms(env) <= BX_SLACK_MS + BX_CLOSE_MS / 2)
			return exp_fail(out, "sending message %u: no room before the deadline",
					seq),
			       -ETIMEDOUT;
	}
	return 0;
}

static int bx_recv_all(struct bx *x, uint8_t *p, size_t len, const struct exp_env *env,
		       struct exp_out *out, struct exp_bundled_res *res, uint32_t seq)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = mps_recv(x->c, p + off, len - off);

		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n == 0)
			return exp_fail(out,
					"reading echo of message %u: connection closed by the "
					"responder",
					seq),
			       -ECONNRESET;
		if (n != -EAGAIN)
			return exp_fail(out, "reading echo of message %u: %s", seq,
					strerror((int)-n)),
			       -EIO;
		bundled_io_step(&x->io, 5);
		drain_events(x, out, res);
		if (x->reset)
			return exp_fail(out, "reading echo of message %u: %s", seq,
					rst_reason(x->reset)),
			       -ECONNRESET;
		if (exp_left_ms(env) <= BX_SLACK_MS + BX_CLOSE_MS / 2)
			return exp_fail(out,
					"reading echo of message %u: no answer before the "
					"deadline",
					seq),
			       -ETIMEDOUT;
	}
	return 0;
}

static void echo_body(struct bx *x, struct bpath *bp, size_t n, void *arg,
		      const struct exp_env *env, struct exp_out *out, struct exp_bundled_res *res)
{
	const struct exp_bundled_echo *e = arg;
	struct bsampler s = {
		.out = out, .c = x->c, .paths = bp, .n_paths = n, .interval_ms = e->interval_ms
	};
	uint8_t *tx = malloc(e->bytes), *rx = malloc(e->bytes);
	struct exp_trace *trace = e->trace;
	uint32_t seq;

	if (!tx || !rx) {
		exp_fail(out, "out of memory for %u-byte messages", e->bytes);
		goto done;
	}
	bs_sample(&s);
	for (seq = 0; seq < e->count; seq++) {
		uint64_t t0, t1;
		uint32_t i;

		bx_joins(x, bp, n, out);
		for (i = 0; i < e->bytes; i++)
			tx[i] = (uint8_t)(seq * 31u + i * 7u + 1u);
		t0 = fj_mono_us();
		if (bx_send_all(x, tx, e->bytes, env, out, res, seq) ||
		    bx_recv_all(x, rx, e->bytes, env, out, res, seq))
			break;
		t1 = fj_mono_us();
		if (memcmp(tx, rx, e->bytes)) {
			for (i = 0; tx[i] == rx[i]; i++)
				;
			exp_fail(out, "echo of message %u differs at byte %u", seq, i);
			break;
		}
		e->rtts[seq] = (uint32_t)(t1 - t0 > UINT32_MAX ? UINT32_MAX : t1 - t0);
		if (t1 / 1000 >= s.next_ms)
			bs_sample(&s);
		if (trace && exp_trace_printf(trace, "%u,%llu,%u\n", seq,
					      (unsigned long long)(t1 / 1000 - out->start_mono_ms),
					      e->rtts[seq]))
			trace = NULL; /* trace cap reached: keep measuring */
	}
	*e->done = seq;
	bs_finish(&s);
	res->max_subflows = s.max_alive;
done:
	free(tx);
	free(rx);
}

int exp_bundled_echo_run(const Fjord__V1__RunCommand *cmd, const struct exp_env *env,
			 struct exp_out *out, const struct exp_bundled_echo *e,
			 struct exp_bundled_res *res)
{
	struct agent_resp_request q = { .type = AGENT_RESP_ECHO };

	bx_run(cmd, env, out, res, &q, echo_body, (void *)e);
	return 0;
}

/* What an rr run does while it waits: the stack, samples, joins and link events on time. */
struct rr_wait {
	struct bx *x;
	struct bsampler *s;
	struct bpath *bp;
	size_t n;
	struct exp_link_sched *ls;
	const struct exp_env *env;
	struct exp_out *out;
	struct exp_bundled_res *res;
	uint64_t mark, last_move; /* bytes moved at the data level, and when that last changed */
};

/*
 * One round of at most max_ms. 0; -ECONNRESET (reset), -ETIMEDOUT (the run's
 * deadline), -EPIPE (nothing moved for BX_STALL_MS: stuck).
 */
static int rr_pump(struct rr_wait *w, unsigned int max_ms)
{
	uint64_t now = fj_mono_ms(), m;
	struct mps_conn_info ci;

	if (exp_left_ms(w->env) <= BX_SLACK_MS + BX_CLOSE_MS / 2)
		return -ETIMEDOUT;
	if (now >= w->s->next_ms)
		bs_sample(w->s);
	else if (w->s->next_ms - now < max_ms)
		max_ms = (unsigned int)(w->s->next_ms - now);
	if (w->ls) {
		uint32_t nl = exp_link_run_due(w->ls, w->out);

		exp_link_reap(w->ls, w->out, 0);
		if (nl < max_ms)
			max_ms = nl;
	}
	bx_joins(w->x, w->bp, w->n, w->out);
	bundled_io_step(&w->x->io, max_ms);
	drain_events(w->x, w->out, w->res);
	if (w->x->reset)
		return -ECONNRESET;
	m = mps_conn_info(w->x->c, &ci) == 0 ? ci.bytes_acked + ci.bytes_received : 0;
	if (m != w->mark) {
		w->mark = m;
		w->last_move = now;
	} else if (now - w->last_move >= BX_STALL_MS) {
		return -EPIPE;
	}
	return 0;
}

static int rr_send(struct rr_wait *w, const uint8_t *p, size_t len)
{
	size_t off = 0;
	int rc = 0;

	while (off < len && !rc) {
		ssize_t n = mps_send(w->x->c, p + off, len - off);

		if (n > 0)
			off += (size_t)n;
		else if (n != -EAGAIN)
			return n == -EPIPE ? -ECONNRESET : (int)n;
		/* Out now; a full send buffer waits for acknowledgments. */
		rc = rr_pump(w, off < len ? 20 : 0);
	}
	return rc;
}

static int rr_recv(struct rr_wait *w, uint8_t *p, size_t len)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = mps_recv(w->x->c, p + off, len - off);
		int rc;

		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n == 0)
			return -ENODATA;
		if (n != -EAGAIN)
			return (int)n;
		rc = rr_pump(w, 20);
		if (rc)
			return rc;
	}
	return 0;
}

/* Waits until mono ms, pumping. */
static int rr_until(struct rr_wait *w, uint64_t until)
{
	int rc = 0;

	for (uint64_t now = fj_mono_ms(); now < until && !rc; now = fj_mono_ms())
		rc = rr_pump(w, until - now < 20 ? (unsigned int)(until - now) : 20);
	return rc;
}

static void rr_fail(struct rr_wait *w, uint32_t seq, int rc)
{
	switch (rc) {
	case -ETIMEDOUT:
		exp_fail(w->out, "transaction %u: no response before the run's deadline", seq);
		break;
	case -ENODATA:
		exp_fail(w->out, "transaction %u: connection closed by the responder", seq);
		break;
	case -ECONNRESET:
		exp_fail(w->out, "transaction %u: %s", seq, rst_reason(w->x->reset));
		break;
	case -EPIPE:
		exp_fail(w->out,
			 "transaction %u: nothing moved for %u ms: the peer or its paths went away",
			 seq, BX_STALL_MS);
		break;
	default:
		exp_fail(w->out, "transaction %u: %s", seq, strerror(-rc));
	}
}

static void rr_body(struct bx *x, struct bpath *bp, size_t n, void *arg, const struct exp_env *env,
		    struct exp_out *out, struct exp_bundled_res *res)
{
	struct exp_bundled_rr *r = arg;
	struct bsampler s = { .out = out, .csv = r->csv, .c = x->c, .paths = bp, .n_paths = n };
	struct rr_wait w = { x, &s, bp, n, r->links, env, out, res, 0, 0 };
	struct bx_links lk = { x, bp, n };
	uint8_t *req = calloc(1, r->request_bytes), *rsp = malloc(r->response_bytes),
		*want = malloc(r->response_bytes);
	struct exp_trace *trace = r->trace;
	uint64_t next_start, rx_off = 0;
	int rc = 0;

	s.interval_ms = r->interval_ms;
	if (!req || !rsp || !want) {
		exp_fail(out, "out of memory for %u/%u-byte transactions", r->request_bytes,
			 r->response_bytes);
		goto done;
	}
	if (s.csv && s.csv->len == 0)
		exp_trace_printf(s.csv, "t_ms,subflow_id,local,lport,remote,rport,bytes_acked,"
					"bytes_received,goodput_bps,srtt_us,cwnd,retrans\n");
	bs_sample(&s);
	r->t0 = fj_mono_ms();
	w.last_move = r->t0;
	next_start = r->t0;
	res->t0_mono = r->t0;
	if (r->links) {
		r->links->apply = bx_apply;
		r->links->apply_arg = &lk;
		r->links->t0 = r->t0;
		exp_link_run_due(r->links, out);
	}
	while (r->n < r->max) {
		uint64_t a, b;
		size_t i;

		if (fj_mono_ms() - r->t0 >= r->duration_ms)
			break;
		if (r->rate_per_s) {
			if (fj_mono_ms() > next_start + 1)
				r->late++;
			else
				rc = rr_until(&w, next_start);
			if (rc)
				break;
			next_start = r->t0 + (uint64_t)(r->n + 1) * 1000 / r->rate_per_s;
		}
		a = fj_mono_us();
		rc = rr_send(&w, req, r->request_bytes);
		if (!rc)
			rc = rr_recv(&w, rsp, r->response_bytes);
		if (rc)
			break;
		b = fj_mono_us();
		/* The responses are the seed's stream, back to back: a byte out of place is a fault. */
		agent_resp_fill(x->seed, rx_off, want, r->response_bytes);
		if (memcmp(want, rsp, r->response_bytes)) {
			for (i = 0; want[i] == rsp[i]; i++)
				;
			exp_fail(out,
				 "transaction %u: response byte %zu differs from the responder's "
				 "stream (offset %llu)",
				 r->n, i, (unsigned long long)(rx_off + i));
			break;
		}
		rx_off += r->response_bytes;
		r->lat[r->n] = b - a > UINT32_MAX ? UINT32_MAX : (uint32_t)(b - a);
		if (r->start_ms && r->done_ms) {
			r->start_ms[r->n] = (uint32_t)(a / 1000 - r->t0);
			r->done_ms[r->n] = (uint32_t)(b / 1000 - r->t0);
		}
		if (trace && exp_trace_printf(trace, "%u,%llu,%u\n", r->n,
					      (unsigned long long)(b / 1000 - out->start_mono_ms),
					      r->lat[r->n]))
			trace = NULL; /* trace cap reached: keep measuring */
		r->n++;
		if (b / 1000 >= s.next_ms)
			bs_sample(&s);
	}
	r->t_end = fj_mono_ms();
	if (r->links)
		r->links->apply = NULL; /* lk goes with this frame */
	if (rc)
		rr_fail(&w, r->n, rc);
	bs_finish(&s);
	res->max_subflows = s.max_alive;
done:
	free(req);
	free(rsp);
	free(want);
}

int exp_bundled_rr_run(const Fjord__V1__RunCommand *cmd, const struct exp_env *env,
		       struct exp_out *out, struct exp_bundled_rr *r, struct exp_bundled_res *res)
{
	struct agent_resp_request q = { .type = AGENT_RESP_RR,
					.request_bytes = r->request_bytes,
					.response_bytes = r->response_bytes };

	if (getrandom(&q.seed, sizeof(q.seed), 0) != sizeof(q.seed))
		q.seed = (uint32_t)fj_mono_us();
	bx_run(cmd, env, out, res, &q, rr_body, r);
	return 0;
}

/*
 * The link adapter the run's stack used, among the provenance's settings
 * ("libmps.link_adapter": "tun" or "host"; the proto has no field of its
 * own). Left out when the arena is full.
 */
static void provenance_adapter(struct exp_out *out, Fjord__V1__Provenance *p)
{
	Fjord__V1__KeyValue **kv = agent_arena_alloc(out->arena, (p->n_sysctls + 1) * sizeof(*kv));
	Fjord__V1__KeyValue *one = agent_arena_alloc(out->arena, sizeof(*one));

	if (!kv || !one)
		return;
	fjord__v1__key_value__init(one);
	one->key = agent_arena_strdup(out->arena, "libmps.link_adapter");
	one->value = agent_arena_strdup(out->arena, bundled_get()->host ? "host" : "tun");
	if (!one->key || !one->value)
		return;
	if (p->n_sysctls)
		memcpy(kv, p->sysctls, p->n_sysctls * sizeof(*kv));
	kv[p->n_sysctls] = one;
	p->sysctls = kv;
	p->n_sysctls++;
}

void exp_bundled_provenance(struct exp_out *out, const struct exp_bundled_res *br)
{
	Fjord__V1__Provenance *p = out->result->provenance;

	if (!p)
		return;
	p->stack = FJORD__V1__STACK__STACK_BUNDLED;
	p->stack_version = agent_arena_strdup(out->arena, BUNDLED_LIBMPS_VERSION);
	p->scheduler =
		agent_arena_strdup(out->arena, br->scheduler[0] ? br->scheduler : BX_DEFAULT_SCHED);
	p->path_manager = agent_arena_strdup(out->arena, "fullmesh");
	p->checksums = br->checksum;
	if (br->n_paths) {
		p->paths = br->paths;
		p->n_paths = br->n_paths;
	}
	provenance_adapter(out, p);
}

#define BX_ECHO_DEFAULT_BYTES 64
#define BX_ECHO_DEFAULT_COUNT 10
#define BX_ECHO_MAX_BYTES     65536
#define BX_ECHO_MAX_COUNT     100000

/* EXPERIMENT_TYPE_ECHO on the bundled stack: the parameters, metrics and trace of exp_echo.c. */
int exp_bundled_echo(const Fjord__V1__RunCommand *cmd, const struct exp_env *env,
		     struct exp_out *out)
{
	const Fjord__V1__EchoParams *p = cmd->spec->echo;
	struct exp_bundled_res res;
	struct exp_bundled_echo e = { 0 };
	uint64_t t0 = fj_mono_ms();
	uint32_t done = 0, max = 0, i;

	memset(&res, 0, sizeof(res));
	out->result->ok = 1;
	e.bytes = p && p->message_bytes ? p->message_bytes : BX_ECHO_DEFAULT_BYTES;
	e.count = p && p->count ? p->count : BX_ECHO_DEFAULT_COUNT;
	e.done = &done;
	if (e.bytes > BX_ECHO_MAX_BYTES)
		exp_fail(out, "echo.message_bytes must be at most %u (got %u)", BX_ECHO_MAX_BYTES,
			 e.bytes);
	else if (e.count > BX_ECHO_MAX_COUNT)
		exp_fail(out, "echo.count must be at most %u (got %u)", BX_ECHO_MAX_COUNT, e.count);
	else if (sampler_interval(cmd, out, &e.interval_ms) == 0) {
		e.rtts = calloc(e.count, sizeof(*e.rtts));
		e.trace = exp_trace_new(out, "rtt.csv");
		if (!e.rtts)
			exp_fail(out, "out of memory for %u messages", e.count);
		else
			exp_bundled_echo_run(cmd, env, out, &e, &res);
	}
	if (e.rtts) {
		qsort(e.rtts, done, sizeof(*e.rtts), exp_cmp_u32);
		for (i = 0; i < done; i++)
			max = e.rtts[i] > max ? e.rtts[i] : max;
		exp_add_metric(out, "rtt_p50_us", exp_percentile(e.rtts, done, 50));
		exp_add_metric(out, "rtt_p95_us", exp_percentile(e.rtts, done, 95));
		exp_add_metric(out, "rtt_max_us", max);
		exp_add_metric(out, "messages", done);
		exp_add_metric(out, "bytes", (double)done * e.bytes);
		exp_add_metric(out, "duration_ms", (double)(fj_mono_ms() - t0));
		exp_add_metric(out, "subflows_max", res.max_subflows);
		exp_add_metric(out, "fallback", res.fallback);
	}
	free(e.rtts);
	exp_provenance(out, FJORD__V1__STACK__STACK_BUNDLED, res.cc[0] ? res.cc : BX_DEFAULT_CC,
		       cmd, env);
	exp_bundled_provenance(out, &res);
	return 0;
}
