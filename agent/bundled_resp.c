/*
 * The bundled responder: one process, one libmps stack on the responder TUN,
 * the responder protocol of agent/responder.h over libmps connections. A
 * process rather than a thread of the agent: the agent forks its runs, and a
 * crash in the stack must not take the agent down.
 */
#include "bundled.h"

#include <errno.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fj_clock.h"
#include "fj_log.h"
#include "responder.h"

#define BR_PASS_BYTES (1u << 20) /* work for one connection per pass */

enum br_state { BR_HEADER, BR_ECHO, BR_SINK, BR_SOURCE, BR_DONE };

struct br_conn {
	struct br_conn *next;
	struct mps_conn *c;
	enum br_state st;
	struct agent_resp_request q;
	uint8_t hdr[AGENT_RESP_REQ_LEN];
	size_t hdr_len;
	uint8_t ctl[AGENT_RESP_REPLY_LEN]; /* reply, frame header or end marker and trailer */
	size_t ctl_off, ctl_len;
	uint64_t off;	 /* source: data sent; sink: data read */
	uint64_t end_us; /* source: stop at this time (0: no limit) */
	uint32_t frame_left;
	EVP_MD_CTX *md;
	size_t echo_off, echo_len;
	uint64_t last_us;
	uint8_t buf[AGENT_RESP_FRAME_MAX];
};

struct br {
	struct bundled_io io;
	struct br_conn *conns;
	unsigned int idle_s;
};

static volatile sig_atomic_t br_stop;

static void on_term(int sig)
{
	(void)sig;
	br_stop = 1;
}

static void put_reply(struct br_conn *k, int ok, const char *msg)
{
	struct mps_subflow_info si;
	uint8_t *p = k->ctl;

	memset(p, 0, AGENT_RESP_REPLY_LEN);
	memcpy(p, "FJR1", 4);
	p[4] = ok ? 0 : 1;
	if (mps_subflow_info(k->c, 0, &si) == 0) {
		p[5] = si.remote.family;
		p[6] = (uint8_t)(si.remote.port >> 8);
		p[7] = (uint8_t)si.remote.port;
		memcpy(p + 8, si.remote.addr, si.remote.family == 6 ? 16 : 4);
	}
	strncpy((char *)p + 24, msg, 72);
	k->ctl_off = 0;
	k->ctl_len = AGENT_RESP_REPLY_LEN;
}

/* 1 when ctl is sent, 0 when the send buffer is full, -1 on error. */
static int ctl_flush(struct br_conn *k)
{
	while (k->ctl_off < k->ctl_len) {
		ssize_t n = mps_send(k->c, k->ctl + k->ctl_off, k->ctl_len - k->ctl_off);

		if (n == -EAGAIN)
			return 0;
		if (n <= 0)
			return -1;
		k->ctl_off += (size_t)n;
	}
	return 1;
}

static int on_header(struct br_conn *k, uint64_t now)
{
	char err[72];

	while (k->hdr_len < sizeof(k->hdr)) {
		ssize_t n = mps_recv(k->c, k->hdr + k->hdr_len, sizeof(k->hdr) - k->hdr_len);

		if (n == -EAGAIN)
			return 0;
		if (n <= 0)
			return -1; /* closed or reset before a whole header */
		k->hdr_len += (size_t)n;
	}
	if (agent_resp_request_decode(k->hdr, &k->q, err, sizeof(err)) < 0) {
		put_reply(k, 0, err);
		k->st = BR_DONE;
		return 1;
	}
	if (k->q.type != AGENT_RESP_ECHO && k->q.type != AGENT_RESP_SINK &&
	    k->q.type != AGENT_RESP_SOURCE) {
		put_reply(k, 0, "rr is not served by the bundled responder yet");
		k->st = BR_DONE;
		return 1;
	}
	put_reply(k, 1, "");
	if (k->q.type != AGENT_RESP_ECHO) {
		k->md = EVP_MD_CTX_new();
		if (!k->md || !EVP_DigestInit_ex(k->md, EVP_sha256(), NULL))
			return -1;
	}
	k->st = k->q.type == AGENT_RESP_ECHO   ? BR_ECHO
		: k->q.type == AGENT_RESP_SINK ? BR_SINK
					       : BR_SOURCE;
	if (k->st == BR_SOURCE && k->q.duration_ms)
		k->end_us = now + (uint64_t)k->q.duration_ms * 1000;
	return 1;
}

static int put_trailer(struct br_conn *k, int marker)
{
	struct agent_resp_trailer tr = { .bytes = k->off };
	unsigned int l = 0;

	if (!EVP_DigestFinal_ex(k->md, tr.sha256, &l) || l != 32)
		return -1;
	if (marker)
		agent_resp_frame_header(0, k->ctl);
	agent_resp_trailer_encode(&tr, k->ctl + (marker ? AGENT_RESP_FRAME_HDR : 0));
	k->ctl_off = 0;
	k->ctl_len = AGENT_RESP_TRAILER_LEN + (marker ? AGENT_RESP_FRAME_HDR : 0);
	k->st = BR_DONE;
	return 1;
}

static int on_sink(struct br_conn *k)
{
	size_t budget = BR_PASS_BYTES;

	while (budget) {
		ssize_t n = mps_recv(k->c, k->buf, sizeof(k->buf));

		if (n == -EAGAIN)
			return 0;
		if (n < 0)
			return -1;
		if (n == 0)
			return put_trailer(k, 0);
		if (!EVP_DigestUpdate(k->md, k->buf, (size_t)n))
			return -1;
		k->off += (uint64_t)n;
		budget = budget > (size_t)n ? budget - (size_t)n : 0;
	}
	return 1;
}

static int on_echo(struct br_conn *k)
{
	size_t budget = BR_PASS_BYTES;

	while (budget) {
		ssize_t n;

		if (k->echo_off == k->echo_len) {
			n = mps_recv(k->c, k->buf, sizeof(k->buf));
			if (n == -EAGAIN)
				return 0;
			if (n <= 0)
				return n == 0 ? (k->st = BR_DONE, 1) : -1;
			k->echo_off = 0;
			k->echo_len = (size_t)n;
		}
		n = mps_send(k->c, k->buf + k->echo_off, k->echo_len - k->echo_off);
		if (n == -EAGAIN)
			return 0;
		if (n <= 0)
			return -1;
		k->echo_off += (size_t)n;
		budget = budget > (size_t)n ? budget - (size_t)n : 0;
	}
	return 1;
}

static int on_source(struct br_conn *k, uint64_t now)
{
	uint64_t limit = k->q.bytes ? k->q.bytes : UINT64_MAX;
	size_t budget = BR_PASS_BYTES;
	uint8_t junk[512];
	ssize_t n = mps_recv(k->c, junk, sizeof(junk));

	/* The client sends nothing after its request: an end or a reset means it left. */
	if (n == 0 || (n < 0 && n != -EAGAIN))
		return -1;
	while (budget) {
		int rc = ctl_flush(k);

		if (rc <= 0)
			return rc;
		if (k->frame_left == 0) {
			/* A frame begun is finished; the time is checked between frames. */
			if (k->off >= limit || (k->end_us && now >= k->end_us))
				return put_trailer(k, 1);
			k->frame_left = limit - k->off < AGENT_RESP_FRAME_MAX
						? (uint32_t)(limit - k->off)
						: AGENT_RESP_FRAME_MAX;
			agent_resp_frame_header(k->frame_left, k->ctl);
			k->ctl_off = 0;
			k->ctl_len = AGENT_RESP_FRAME_HDR;
			continue;
		}
		agent_resp_fill(k->q.seed, k->off, k->buf, k->frame_left);
		n = mps_send(k->c, k->buf, k->frame_left);
		if (n == -EAGAIN)
			return 0;
		if (n <= 0 || !EVP_DigestUpdate(k->md, k->buf, (size_t)n))
			return -1;
		k->off += (uint64_t)n;
		k->frame_left -= (uint32_t)n;
		budget = budget > (size_t)n ? budget - (size_t)n : 0;
	}
	return 1;
}

/* <0: abort the connection; 0: nothing to do now; 1: progress; 2: finished, close it. */
static int conn_io(struct br_conn *k, uint64_t now)
{
	int rc = 1;

	if (k->st == BR_HEADER) {
		rc = on_header(k, now);
		if (rc <= 0)
			return rc;
	}
	if (k->st != BR_SOURCE) {
		rc = ctl_flush(k);
		if (rc <= 0)
			return rc;
	}
	switch (k->st) {
	case BR_ECHO:
		return on_echo(k);
	case BR_SINK:
		return on_sink(k);
	case BR_SOURCE:
		return on_source(k, now);
	case BR_DONE:
		return ctl_flush(k) == 1 ? 2 : 0;
	default:
		return rc;
	}
}

static void conn_free(struct br *b, struct br_conn *k, int abort_it)
{
	struct br_conn **pp;

	for (pp = &b->conns; *pp; pp = &(*pp)->next)
		if (*pp == k) {
			*pp = k->next;
			break;
		}
	if (abort_it)
		mps_abort(k->c);
	else
		mps_close(k->c);
	EVP_MD_CTX_free(k->md);
	free(k);
}

static const char *rst_reason(int reason)
{
	switch (reason) {
	case MPS_RST_TIMEOUT:
		return "too many retransmissions";
	case MPS_RST_CHECKSUM:
		return "DSS checksum failed";
	case MPS_RST_OPTS_LOST:
		return "MPTCP options lost where no fallback is allowed";
	case MPS_RST_BAD_MAPPING:
		return "data without a DSS mapping where no fallback is allowed";
	case MPS_RST_MP_FAIL:
		return "MP_FAIL unanswered";
	default:
		return "other reason";
	}
}

static int serve_pass(struct br *b, uint64_t now)
{
	struct br_conn *k, *next;
	struct mps_conn *c;
	struct mps_event ev;
	int busy = 0;

	while ((c = mps_accept(b->io.st))) {
		k = calloc(1, sizeof(*k));
		if (!k) {
			mps_abort(c);
			continue;
		}
		k->c = c;
		k->last_us = now;
		k->next = b->conns;
		b->conns = k;
	}
	/*
	 * A connection the stack itself reset (retransmissions exhausted,
	 * checksum, lost options, bad mapping, unanswered MP_FAIL) shows up at
	 * the client only as the peer's MP_FASTCLOSE: the reason is logged here.
	 */
	while (mps_next_event(b->io.st, &ev) == 0)
		if (ev.type == MPS_EV_CONN_RESET && ev.reason != MPS_RST_PEER &&
		    ev.reason != MPS_RST_FASTCLOSE && ev.reason != MPS_RST_LOCAL)
			fj_warn("bundled responder: connection %u reset by the stack: %s (reason %d)",
				ev.conn_id, rst_reason(ev.reason), ev.reason);
	for (k = b->conns; k; k = next) {
		int rc;

		next = k->next;
		rc = conn_io(k, now);
		if (rc > 0) {
			k->last_us = now;
			busy = 1;
		}
		if (rc < 0 || rc == 2)
			conn_free(b, k, rc < 0);
		else if (now - k->last_us > (uint64_t)b->idle_s * 1000000)
			conn_free(b, k, 1);
	}
	return busy;
}

static void serve(struct br *b)
{
	while (!br_stop) {
		uint64_t now = fj_mono_us();
		int busy = serve_pass(b, now);

		/* Data just queued goes out at once; otherwise wait for packets or a timer. */
		if (bundled_io_step(&b->io, busy ? 0 : 50) < 0)
			break;
	}
	while (b->conns)
		conn_free(b, b->conns, 1);
	/* Let the resets out before the stack goes. */
	bundled_io_step(&b->io, 0);
	bundled_io_close(&b->io, NULL, NULL, 0, NULL);
}

static void child_signals(void)
{
	struct sigaction sa;
	sigset_t all;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
}

int bundled_resp_start(const struct bundled_cfg *bc, unsigned int port, unsigned int max_conns,
		       unsigned int idle_s, int *pid, char *err, size_t errlen)
{
	/*
	 * Buffers start at 256 KiB and are autotuned up to the agent's
	 * bundled_rcvbuf_max / bundled_sndbuf_max. The receive buffer stays at
	 * 256 KiB unless configured: receive windows of 512 KiB and more let
	 * two-path uploads over the testbed's 20 Mbit/s uplinks outgrow their
	 * queues, fall to a few Mbit/s and stall for up to 15 s. docs/agent.md.
	 */
	struct mps_config cfg = { .msl_us = 1000000, .max_subflows = 8 };
	struct mps_addr any4 = { .family = 4, .port = (uint16_t)port };
	struct mps_addr any6 = { .family = 6, .port = (uint16_t)port };
	struct br b = { .idle_s = idle_s };
	pid_t parent = getpid(), p;
	int rc;

	*pid = -1;
	if (!bc->resp_tun[0]) {
		snprintf(err, errlen, "no bundled_responder_tun configured");
		return -ENODEV;
	}
	cfg.max_conns = max_conns;
	bundled_cfg_buffers(bc, &cfg);
	rc = bundled_io_open(&b.io, bc->resp_tun, &cfg, 0, err, errlen);
	if (rc < 0)
		return rc;
	rc = mps_listen(b.io.st, &any4);
	if (!rc)
		rc = mps_listen(b.io.st, &any6);
	if (rc < 0) {
		snprintf(err, errlen, "bundled responder: listen on port %u: %s", port,
			 strerror(-rc));
		bundled_io_close(&b.io, NULL, NULL, 0, NULL);
		return rc;
	}
	fflush(NULL);
	p = fork();
	if (p < 0) {
		rc = -errno;
		snprintf(err, errlen, "bundled responder: fork: %s", strerror(-rc));
		bundled_io_close(&b.io, NULL, NULL, 0, NULL);
		return rc;
	}
	if (p == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		child_signals();
		if (getppid() != parent)
			_exit(0);
		serve(&b);
		_exit(0);
	}
	/* The parent keeps nothing: the child owns the device and the stack. */
	bundled_io_close(&b.io, NULL, NULL, 0, NULL);
	*pid = (int)p;
	fj_info("bundled responder: pid %d on %s, port %u", (int)p, bc->resp_tun, port);
	return 0;
}

void bundled_resp_stop(int pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
}
