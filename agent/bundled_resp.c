/*
 * The bundled responder: one process, one libmps stack on the responder TUN,
 * the responder protocol of agent/responder.h over libmps connections. A
 * process rather than a thread of the agent: the agent forks its runs, and a
 * crash in the stack must not take the agent down. Its supervisor, in the
 * agent's loop, restarts it after an exit or a hang (bundled_sup_*).
 */
#include "bundled.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent_loop.h"
#include "fj_clock.h"
#include "fj_log.h"
#include "responder.h"

#define BR_PASS_BYTES (1u << 20) /* work for one connection per pass */
/* rr: responses owed before the responder stops reading requests (as the kernel responder). */
#define BR_RR_BACKLOG (4ull << 20)
/* The serve loop writes a heartbeat byte this often; the supervisor reads them. */
#define BR_BEAT_MS 250
/* bundled_resp_stop(): SIGTERM, then SIGKILL after this long. */
#define BUNDLED_STOP_MS 2000

enum br_state { BR_HEADER, BR_ECHO, BR_SINK, BR_SOURCE, BR_RR, BR_DONE };

struct br_conn {
	struct br_conn *next;
	struct mps_conn *c;
	enum br_state st;
	struct agent_resp_request q;
	uint8_t hdr[AGENT_RESP_REQ_LEN];
	size_t hdr_len;
	uint8_t ctl[AGENT_RESP_REPLY_LEN]; /* reply, frame header or end marker and trailer */
	size_t ctl_off, ctl_len;
	uint64_t off;	  /* source and rr: data sent; sink: data read */
	uint64_t owed;	  /* rr: response bytes not sent yet */
	uint64_t req_got; /* rr: bytes of the current request */
	int eof;	  /* rr: the client ended its side */
	uint64_t end_us;  /* source: stop at this time (0: no limit) */
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
	int beat_fd; /* write end of the supervisor's heartbeat pipe, or -1 */
	uint64_t next_beat_ms;
};

static volatile sig_atomic_t br_stop;
/* The responder's addresses, for echo requests that ask for ADD_ADDRs (set before the fork). */
static struct bundled_cfg br_cfg;

/*
 * The probe's ADD_ADDR check (AGENT_RESP_F_ANNOUNCE): this connection, and
 * no other, announces the responder's other addresses of its family. Not
 * in cfg.local_addrs: every connection would announce them, and bundled
 * bulk and rr clients (libmps's fullmesh) would join them.
 */
static void announce_others(struct br_conn *k)
{
	struct mps_subflow_info si;
	char own[AGENT_ADDR_MAX];
	unsigned int i;

	if (mps_subflow_info(k->c, 0, &si) < 0)
		return;
	bundled_addr_str(&si.local, own, sizeof(own));
	for (i = 0; i < br_cfg.n_isps; i++) {
		const char *s = br_cfg.isps[i].resp[si.local.family == 6];
		struct mps_addr a;
		int rc;

		if (!s[0] || bundled_addr(s, 0, &a) < 0 || a.family != si.local.family ||
		    !memcmp(a.addr, si.local.addr, a.family == 4 ? 4 : 16))
			continue;
		rc = mps_announce_addr(k->c, &a);
		if (rc < 0)
			fj_warn("bundled responder: announcing %s to %s: %s", s, own,
				strerror(-rc));
	}
}

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
	if (k->q.type == AGENT_RESP_INFO) {
		/* The peer's kernel responder answers info; this one serves the runs. */
		put_reply(k, 0, "info is answered by the kernel responder, not the bundled one");
		k->st = BR_DONE;
		return 1;
	}
	put_reply(k, 1, "");
	if (k->q.flags & AGENT_RESP_F_ANNOUNCE)
		announce_others(k);
	if (k->q.type == AGENT_RESP_RR) {
		k->st = BR_RR;
		return 1;
	}
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

/*
 * rr: every complete request owes response_bytes of the seed's stream (the
 * kernel responder's rule, so the client can check what comes back). Reading
 * stops while BR_RR_BACKLOG is owed; the client's end of stream ends it once
 * everything owed is sent.
 */
static int on_rr(struct br_conn *k)
{
	size_t budget = BR_PASS_BYTES;
	int moved = 0;

	while (!k->eof && k->owed < BR_RR_BACKLOG && budget) {
		ssize_t n = mps_recv(k->c, k->buf, sizeof(k->buf));

		if (n == -EAGAIN)
			break;
		if (n < 0)
			return -1;
		if (n == 0) {
			k->eof = 1;
			break;
		}
		k->req_got += (uint64_t)n;
		k->owed += k->req_got / k->q.request_bytes * k->q.response_bytes;
		k->req_got %= k->q.request_bytes;
		budget = budget > (size_t)n ? budget - (size_t)n : 0;
		moved = 1;
	}
	while (k->owed && budget) {
		size_t len = k->owed < sizeof(k->buf) ? (size_t)k->owed : sizeof(k->buf);
		ssize_t n;

		agent_resp_fill(k->q.seed, k->off, k->buf, len);
		n = mps_send(k->c, k->buf, len);
		if (n == -EAGAIN)
			break;
		if (n <= 0)
			return -1;
		k->off += (uint64_t)n;
		k->owed -= (uint64_t)n;
		budget = budget > (size_t)n ? budget - (size_t)n : 0;
		moved = 1;
	}
	if (k->eof && !k->owed) {
		k->ctl_off = k->ctl_len = 0;
		k->st = BR_DONE;
		return 1;
	}
	return moved;
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
	case BR_RR:
		return on_rr(k);
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

/*
 * The heartbeat: written from the serve loop itself, so a responder that is
 * stopped or stuck in the stack stops beating while its process lives on. A
 * full pipe (the supervisor not reading) is no reason to wait.
 */
static void beat(struct br *b, uint64_t now_us)
{
	static const char one = 1;

	if (b->beat_fd < 0 || now_us / 1000 < b->next_beat_ms)
		return;
	b->next_beat_ms = now_us / 1000 + BR_BEAT_MS;
	if (write(b->beat_fd, &one, 1) < 0 && errno != EAGAIN)
		fj_warn("bundled responder: heartbeat: %s", strerror(errno));
}

static void serve(struct br *b)
{
	while (!br_stop) {
		uint64_t now = fj_mono_us();
		int busy = serve_pass(b, now);

		beat(b, now);

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

/* The responder's stack listens on port, IPv4 and IPv6; on failure io is closed. */
static int resp_listen(struct br *b, unsigned int port, char *err, size_t errlen)
{
	struct mps_addr any4 = { .family = 4, .port = (uint16_t)port };
	struct mps_addr any6 = { .family = 6, .port = (uint16_t)port };
	int rc;

	rc = mps_listen(b->io.st, &any4);
	if (!rc)
		rc = mps_listen(b->io.st, &any6);
	if (rc < 0) {
		snprintf(err, errlen, "bundled responder: listen on port %u: %s", port,
			 strerror(-rc));
		bundled_io_close(&b->io, NULL, NULL, 0, NULL);
	}
	return rc;
}

/* The exit status of a responder child that could not open its host adapter. */
#define BR_EXIT_NO_ADAPTER 2

/*
 * resp_spawn() with the host adapter, opened in the child. What it cannot
 * open (checked at the agent's start, so rare: an address gone since, a port
 * taken) is logged and the child exits with BR_EXIT_NO_ADAPTER, so the
 * supervisor tries again after BUNDLED_RETRY_MS, as for a missing TUN.
 */
static int resp_spawn_host(struct br *b, struct mps_config *cfg, unsigned int port, pid_t parent,
			   int *pid, char *err, size_t errlen)
{
	pid_t p;
	int rc;

	fflush(NULL);
	p = fork();
	if (p < 0) {
		rc = -errno;
		snprintf(err, errlen, "bundled responder: fork: %s", strerror(-rc));
		return rc;
	}
	if (p == 0) {
		char why[300];

		prctl(PR_SET_PDEATHSIG, SIGTERM);
		child_signals();
		if (getppid() != parent)
			_exit(0);
		if (bundled_io_open_resp(&b->io, &br_cfg, port, cfg, why, sizeof(why)) < 0 ||
		    resp_listen(b, port, why, sizeof(why)) < 0) {
			fj_err("bundled responder: %s", why);
			_exit(BR_EXIT_NO_ADAPTER);
		}
		serve(b);
		_exit(0);
	}
	*pid = (int)p;
	fj_info("bundled responder: pid %d on the host adapter, port %u", (int)p, port);
	return 0;
}

/* bundled_resp_start() with the write end of a heartbeat pipe (or -1), which the child keeps. */
static int resp_spawn(const struct bundled_cfg *bc, unsigned int port, unsigned int max_conns,
		      unsigned int idle_s, int beat_fd, int *pid, char *err, size_t errlen)
{
	/* Buffers start at 256 KiB, autotuned up to bundled_rcvbuf_max / bundled_sndbuf_max. */
	struct mps_config cfg = { .msl_us = 1000000, .max_subflows = 8 };
	struct br b = { .idle_s = idle_s, .beat_fd = beat_fd };
	pid_t parent = getpid(), p;
	int rc;

	*pid = -1;
	if (!bc->resp_tun[0] && !bc->host) {
		snprintf(err, errlen, "no bundled_responder_tun configured");
		return -ENODEV;
	}
	cfg.max_conns = max_conns;
	br_cfg = *bc;
	bundled_cfg_buffers(bc, &cfg);
	/*
	 * The host adapter is opened by the child: its nftables table is named
	 * after the process that installed it, and the parent's close would
	 * delete it under the child.
	 */
	if (bc->host)
		return resp_spawn_host(&b, &cfg, port, parent, pid, err, errlen);
	rc = bundled_io_open(&b.io, bc->resp_tun, &cfg, 0, err, errlen);
	if (!rc)
		rc = resp_listen(&b, port, err, errlen);
	if (rc < 0)
		return rc;
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

int bundled_resp_start(const struct bundled_cfg *bc, unsigned int port, unsigned int max_conns,
		       unsigned int idle_s, int *pid, char *err, size_t errlen)
{
	return resp_spawn(bc, port, max_conns, idle_s, -1, pid, err, errlen);
}

void bundled_resp_stop(int pid)
{
	uint64_t end = fj_mono_ms() + BUNDLED_STOP_MS;

	if (pid <= 0)
		return;
	/* A stopped process would keep SIGTERM pending for ever: wake it. */
	kill(pid, SIGTERM);
	kill(pid, SIGCONT);
	while (fj_mono_ms() < end) {
		pid_t r = waitpid(pid, NULL, WNOHANG);

		if (r == pid || (r < 0 && errno != EINTR))
			return;
		usleep(10000);
	}
	fj_warn("bundled responder (pid %d) ignored SIGTERM for %u ms: killed", pid,
		BUNDLED_STOP_MS);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/*
 * The supervisor. The agent's loop sees the responder's exit through a pidfd
 * and its heartbeats through a pipe; a timer checks that the beats keep
 * coming. A process that lives on without beating (stopped, or stuck in the
 * stack) answers nobody, so it is killed and, as after any exit, started
 * again after BUNDLED_RESTART_MS.
 */
#define BUNDLED_RESTART_MS 1000
#define BUNDLED_RETRY_MS   5000 /* while starting fails (device missing, busy) */

struct bundled_sup {
	struct agent_loop *loop;
	struct bundled_cfg cfg;
	unsigned int port, max_conns, idle_s, hang_ms;
	int pid, pidfd, beat_rd;
	uint64_t last_beat_ms;
	uint64_t restart_timer, check_timer;
	unsigned int starts, hangs, exits;
};

static void sup_start(struct bundled_sup *s);

static void sup_unwatch(struct bundled_sup *s)
{
	if (s->pidfd >= 0) {
		agent_loop_fd_del(s->loop, s->pidfd);
		close(s->pidfd);
	}
	if (s->beat_rd >= 0) {
		agent_loop_fd_del(s->loop, s->beat_rd);
		close(s->beat_rd);
	}
	if (s->check_timer)
		agent_loop_timer_del(s->loop, s->check_timer);
	s->pidfd = s->beat_rd = -1;
	s->check_timer = 0;
}

static void on_sup_restart(struct agent_loop *loop, uint64_t id, void *arg)
{
	struct bundled_sup *s = arg;

	(void)loop;
	(void)id;
	s->restart_timer = 0;
	sup_start(s);
}

static void sup_schedule(struct bundled_sup *s, unsigned int ms)
{
	if (!s->restart_timer)
		s->restart_timer = agent_loop_timer_add(s->loop, ms, on_sup_restart, s);
}

static void on_sup_exit(struct agent_loop *loop, int fd, unsigned int ev, void *arg)
{
	struct bundled_sup *s = arg;
	unsigned int ms = BUNDLED_RESTART_MS;
	int status = 0;

	(void)loop;
	(void)fd;
	(void)ev;
	sup_unwatch(s);
	waitpid(s->pid, &status, 0);
	/* A host adapter that would not open (its reason logged by the child): as a missing TUN. */
	if (s->cfg.host && WIFEXITED(status) && WEXITSTATUS(status) == BR_EXIT_NO_ADAPTER)
		ms = BUNDLED_RETRY_MS;
	fj_warn("bundled responder (pid %d) %s %d; a new one in %u s", s->pid,
		WIFSIGNALED(status) ? "killed by signal" : "exited with status",
		WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status), ms / 1000);
	s->pid = -1;
	s->exits++;
	sup_schedule(s, ms);
}

static void on_sup_beat(struct agent_loop *loop, int fd, unsigned int ev, void *arg)
{
	struct bundled_sup *s = arg;
	char buf[64];
	ssize_t n = read(fd, buf, sizeof(buf));

	(void)ev;
	if (n > 0) {
		s->last_beat_ms = agent_loop_now_ms(loop);
		return;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	/* The child's end closed: it is exiting, which the pidfd reports. */
	agent_loop_fd_del(loop, fd);
	close(fd);
	s->beat_rd = -1;
}

static void on_sup_check(struct agent_loop *loop, uint64_t id, void *arg)
{
	struct bundled_sup *s = arg;
	uint64_t now = agent_loop_now_ms(loop), quiet = now - s->last_beat_ms;

	(void)id;
	s->check_timer = 0;
	if (s->pid <= 0)
		return;
	if (quiet < s->hang_ms) {
		s->check_timer = agent_loop_timer_add(loop, s->hang_ms / 4 + 1, on_sup_check, s);
		return;
	}
	fj_warn("bundled responder (pid %d) alive but silent for %llu ms (stopped or stuck in "
		"the stack): killing it",
		s->pid, (unsigned long long)quiet);
	s->hangs++;
	/* SIGKILL ends a stopped process too; its exit comes through the pidfd. */
	kill(s->pid, SIGKILL);
}

static int sup_watch(struct bundled_sup *s)
{
	s->pidfd = (int)syscall(SYS_pidfd_open, s->pid, 0);
	if (s->pidfd < 0)
		return -errno;
	if (agent_loop_fd_set(s->loop, s->pidfd, AGENT_EV_READ, on_sup_exit, s) < 0 ||
	    agent_loop_fd_set(s->loop, s->beat_rd, AGENT_EV_READ, on_sup_beat, s) < 0)
		return -EMFILE;
	s->last_beat_ms = agent_loop_now_ms(s->loop);
	s->check_timer = agent_loop_timer_add(s->loop, s->hang_ms / 4 + 1, on_sup_check, s);
	return s->check_timer ? 0 : -ENOMEM;
}

static void sup_start(struct bundled_sup *s)
{
	char why[200];
	int fds[2], rc;

	if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0) {
		fj_warn("bundled responder: heartbeat pipe: %s; again in %u s", strerror(errno),
			BUNDLED_RETRY_MS / 1000);
		sup_schedule(s, BUNDLED_RETRY_MS);
		return;
	}
	rc = resp_spawn(&s->cfg, s->port, s->max_conns, s->idle_s, fds[1], &s->pid, why,
			sizeof(why));
	close(fds[1]);
	if (rc < 0) {
		close(fds[0]);
		fj_warn("no bundled responder: %s; again in %u s", why, BUNDLED_RETRY_MS / 1000);
		sup_schedule(s, BUNDLED_RETRY_MS);
		return;
	}
	s->starts++;
	s->beat_rd = fds[0];
	rc = sup_watch(s);
	if (rc < 0) {
		/* Unwatched, a crash or a hang would go unnoticed: start over instead. */
		fj_warn("bundled responder: cannot watch pid %d: %s; restarting it", s->pid,
			strerror(-rc));
		sup_unwatch(s);
		bundled_resp_stop(s->pid);
		s->pid = -1;
		sup_schedule(s, BUNDLED_RETRY_MS);
	}
}

int bundled_sup_create(struct agent_loop *loop, const struct bundled_cfg *b, unsigned int port,
		       unsigned int max_conns, unsigned int idle_s, unsigned int hang_ms,
		       struct bundled_sup **out)
{
	struct bundled_sup *s;

	*out = NULL;
	if ((!b->resp_tun[0] && !b->host) || !hang_ms)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->loop = loop;
	s->cfg = *b;
	s->port = port;
	s->max_conns = max_conns;
	s->idle_s = idle_s;
	s->hang_ms = hang_ms;
	s->pid = s->pidfd = s->beat_rd = -1;
	sup_start(s);
	*out = s;
	return 0;
}

void bundled_sup_destroy(struct bundled_sup *s)
{
	if (!s)
		return;
	sup_unwatch(s);
	if (s->restart_timer)
		agent_loop_timer_del(s->loop, s->restart_timer);
	bundled_resp_stop(s->pid);
	free(s);
}

int bundled_sup_pid(const struct bundled_sup *s)
{
	return s ? s->pid : -1;
}

void bundled_sup_counts(const struct bundled_sup *s, unsigned int *starts, unsigned int *exits,
			unsigned int *hangs)
{
	*starts = s ? s->starts : 0;
	*exits = s ? s->exits : 0;
	*hangs = s ? s->hangs : 0;
}
