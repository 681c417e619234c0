/*
 * The agent's bundled stack: its addresses and the peer's (the info text), one
 * stack on one TUN and its trace.
 */
#include "bundled.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <unistd.h>

#include "exp_sock.h"
#include "fj_clock.h"
#include "mps_host.h"
#include "mps_trace.h"
#include "mps_tun.h"

static struct bundled_cfg the_cfg;

static void bundled_cfg_host(const struct agent_config *c, struct bundled_cfg *b);

void bundled_cfg_from_agent(const struct agent_config *c, struct bundled_cfg *b)
{
	unsigned int i;

	memset(b, 0, sizeof(*b));
	snprintf(b->tun, sizeof(b->tun), "%s", c->bundled_tun);
	snprintf(b->resp_tun, sizeof(b->resp_tun), "%s", c->bundled_responder_tun);
	b->rcvbuf_max = c->bundled_rcvbuf_max;
	b->sndbuf_max = c->bundled_sndbuf_max;
	b->offloads = c->bundled_offloads;
	for (i = 0; i < c->n_ifaces && b->n_isps < BUNDLED_MAX_ISPS; i++) {
		const struct agent_iface_cfg *f = &c->ifaces[i];
		struct bundled_isp *p = &b->isps[b->n_isps];

		if (!f->bundled[0][0] && !f->bundled[1][0] && !f->bundled_responder[0][0] &&
		    !f->bundled_responder[1][0])
			continue;
		snprintf(p->isp, sizeof(p->isp), "%s", f->isp);
		memcpy(p->addr, f->bundled, sizeof(p->addr));
		memcpy(p->resp, f->bundled_responder, sizeof(p->resp));
		b->n_isps++;
	}
	bundled_cfg_host(c, b);
}

/*
 * With the host adapter the runs and the responder share the node's own
 * addresses (bundled_ipv4 / bundled_ipv6), the responder on a port of its
 * own, which the info text carries.
 */
static void bundled_cfg_host(const struct agent_config *c, struct bundled_cfg *b)
{
	unsigned int i;

	b->host = c->bundled_host;
	if (!b->host)
		return;
	b->resp_port = (uint16_t)c->bundled_responder_port;
	for (i = 0; i < b->n_isps; i++)
		memcpy(b->isps[i].resp, b->isps[i].addr, sizeof(b->isps[i].resp));
}

void bundled_set(const struct bundled_cfg *b)
{
	if (b)
		the_cfg = *b;
	else
		memset(&the_cfg, 0, sizeof(the_cfg));
}

const struct bundled_cfg *bundled_get(void)
{
	return &the_cfg;
}

void bundled_cfg_buffers(const struct bundled_cfg *b, struct mps_config *cfg)
{
	/*
	 * rcvbuf and sndbuf stay 0 (256 KiB to start): a connection grows its
	 * buffers only as far as its paths' bandwidth-delay product asks.
	 */
	cfg->rcvbuf = 0;
	cfg->sndbuf = 0;
	cfg->rcvbuf_max = b->rcvbuf_max;
	cfg->sndbuf_max = b->sndbuf_max;
}

int bundled_addr(const char *s, uint16_t port, struct mps_addr *a)
{
	memset(a, 0, sizeof(*a));
	a->port = port;
	if (inet_pton(AF_INET, s, a->addr) == 1)
		a->family = 4;
	else if (inet_pton(AF_INET6, s, a->addr) == 1)
		a->family = 6;
	else
		return -EINVAL;
	return 0;
}

void bundled_addr_str(const struct mps_addr *a, char *buf, size_t len)
{
	if (!inet_ntop(a->family == 6 ? AF_INET6 : AF_INET, a->addr, buf, (socklen_t)len))
		snprintf(buf, len, "?");
}

void bundled_rand(void *ctx, void *buf, size_t len)
{
	uint8_t *p = buf;

	(void)ctx;
	while (len) {
		ssize_t n = getrandom(p, len, 0);

		if (n <= 0)
			abort(); /* the kernel's CSPRNG does not fail once booted */
		p += n;
		len -= (size_t)n;
	}
}

int bundled_info_text(const struct bundled_cfg *b, char *buf, size_t len)
{
	size_t off = 0;
	unsigned int i;

	if (len)
		buf[0] = 0;
	for (i = 0; i < b->n_isps; i++) {
		const struct bundled_isp *p = &b->isps[i];
		int n;

		if (!p->resp[0][0] && !p->resp[1][0])
			continue;
		/* A port only where it is not the kernel responder's (host adapter). */
		if (b->resp_port)
			n = snprintf(buf + off, len - off, "%s %s %s %u\n", p->isp,
				     p->resp[0][0] ? p->resp[0] : "-",
				     p->resp[1][0] ? p->resp[1] : "-", b->resp_port);
		else
			n = snprintf(buf + off, len - off, "%s %s %s\n", p->isp,
				     p->resp[0][0] ? p->resp[0] : "-",
				     p->resp[1][0] ? p->resp[1] : "-");
		if (n < 0 || (size_t)n >= len - off)
			return -ENOSPC;
		off += (size_t)n;
	}
	return (int)off;
}

int bundled_info_lookup(const char *text, const char *isp, int family, char *out, size_t len)
{
	const char *line = text;

	while (line && *line) {
		char name[AGENT_LABEL_MAX + 1], a[2][AGENT_ADDR_MAX];
		const char *nl = strchr(line, '\n');
		char buf[AGENT_LABEL_MAX + 2 * AGENT_ADDR_MAX + 8];
		size_t l = nl ? (size_t)(nl - line) : strlen(line);
		uint8_t bin[16];

		if (l >= sizeof(buf))
			return -EPROTO;
		memcpy(buf, line, l);
		buf[l] = 0;
		if (sscanf(buf, "%64s %45s %45s", name, a[0], a[1]) != 3)
			return -EPROTO;
		if (strcmp(name, isp) == 0) {
			const char *v = a[family == 6];

			if (!strcmp(v, "-"))
				return -ENOENT;
			if (inet_pton(family == 6 ? AF_INET6 : AF_INET, v, bin) != 1)
				return -EPROTO;
			snprintf(out, len, "%s", v);
			return 0;
		}
		line = nl ? nl + 1 : NULL;
	}
	return -ENOENT;
}

int bundled_info_port(const char *text, const char *isp, unsigned int dflt)
{
	const char *line = text;

	while (line && *line) {
		char name[AGENT_LABEL_MAX + 1], a[2][AGENT_ADDR_MAX], extra[2];
		char buf[AGENT_LABEL_MAX + 2 * AGENT_ADDR_MAX + 16];
		const char *nl = strchr(line, '\n');
		size_t l = nl ? (size_t)(nl - line) : strlen(line);
		unsigned int port;
		int n;

		if (l >= sizeof(buf))
			return -EPROTO;
		memcpy(buf, line, l);
		buf[l] = 0;
		n = sscanf(buf, "%64s %45s %45s %u %1s", name, a[0], a[1], &port, extra);
		if (n < 3)
			return -EPROTO;
		if (!strcmp(name, isp)) {
			if (n == 3)
				return (int)dflt;
			if (n != 4 || port == 0 || port > 65535)
				return -EPROTO;
			return (int)port;
		}
		line = nl ? nl + 1 : NULL;
	}
	return -ENOENT;
}

int bundled_io_open(struct bundled_io *io, const char *dev, struct mps_config *cfg, int trace,
		    char *err, size_t errlen)
{
	int rc;

	memset(io, 0, sizeof(*io));
	io->trace_fd = -1;
	if (!dev || !dev[0]) {
		snprintf(err, errlen, "no TUN device configured");
		return -ENODEV;
	}
	/* mps_tun_open would create a missing device, one without routes: useless. */
	if (if_nametoindex(dev) == 0) {
		snprintf(err, errlen, "TUN device %s does not exist", dev);
		return -ENODEV;
	}
	/*
	 * With the adapter's offloads unless the agent's bundled_offloads says
	 * no: over the emulated testbed they measure as fast as without
	 * (docs/agent.md). They fell to 0.2 Mbit/s only while io_ops() below
	 * left out recv_flags.
	 */
	io->tun = mps_tun_open_flags(dev, bundled_get()->offloads ? MPS_TUN_OFFLOAD : 0, &rc);
	if (!io->tun) {
		if (rc == -EBUSY)
			snprintf(err, errlen,
				 "TUN device %s is busy (a process outside this agent's runs has "
				 "it open: the agent itself starts one bundled run at a time)",
				 dev);
		else
			snprintf(err, errlen, "TUN device %s: %s", dev, strerror(-rc));
		return rc;
	}
	return bundled_io_finish(io, cfg, trace, err, errlen);
}

int bundled_io_finish(struct bundled_io *io, struct mps_config *cfg, int trace, char *err,
		      size_t errlen)
{
	int rc;

	if (trace) {
		char path[64];

		io->trace_fd = memfd_create("bundled-trace", MFD_CLOEXEC);
		if (io->trace_fd < 0) {
			rc = -errno;
			snprintf(err, errlen, "trace: memfd_create: %s", strerror(-rc));
			bundled_io_close(io, NULL, NULL, 0, NULL);
			return rc;
		}
		snprintf(path, sizeof(path), "/proc/self/fd/%d", io->trace_fd);
		io->trace = mps_trace_open(path, &rc);
		if (!io->trace) {
			snprintf(err, errlen, "trace: %s", strerror(-rc));
			bundled_io_close(io, NULL, NULL, 0, NULL);
			return rc;
		}
		cfg->trace = mps_trace_packet;
		cfg->trace_ctx = io->trace;
	}
	cfg->rand_bytes = bundled_rand;
	io->st = mps_stack_create(cfg, &rc);
	if (!io->st) {
		snprintf(err, errlen, "bundled stack: %s",
			 rc == -EINVAL ? "bad settings" : strerror(-rc));
		bundled_io_close(io, NULL, NULL, 0, NULL);
		return rc;
	}
	return 0;
}

/*
 * The TUN adapter's ops with the bundled_io as their context, counting the
 * packets read: a pump that took packets in may have made data readable, and
 * the caller must see that before anything waits (bundled_io_step()).
 */
static int io_send(void *ctx, const uint8_t *pkt, size_t len, uint64_t now)
{
	return mps_tun_link_ops.send(((struct bundled_io *)ctx)->tun, pkt, len, now);
}

static int io_recv(void *ctx, uint8_t *buf, size_t cap, uint64_t now)
{
	struct bundled_io *io = ctx;
	int n = mps_tun_link_ops.recv(io->tun, buf, cap, now);

	if (n > 0)
		io->rx_packets++;
	return n;
}

static uint64_t io_next_ready(void *ctx)
{
	return mps_tun_link_ops.next_ready(((struct bundled_io *)ctx)->tun);
}

static uint32_t io_gso_max(void *ctx)
{
	return mps_tun_link_ops.gso_max(((struct bundled_io *)ctx)->tun);
}

static int io_send_gso(void *ctx, const uint8_t *pkt, size_t len, uint32_t seg_size, uint64_t now)
{
	return mps_tun_link_ops.send_gso(((struct bundled_io *)ctx)->tun, pkt, len, seg_size, now);
}

/*
 * Must be passed on: with offloads the adapter leaves a checksum the kernel
 * vouched for as it came (a partial one is the pseudo-header's sum only),
 * and a stack told nothing verifies and drops every such packet.
 */
static unsigned int io_recv_flags(void *ctx)
{
	return mps_tun_link_ops.recv_flags(((struct bundled_io *)ctx)->tun);
}

static const struct mps_link_ops *io_ops(void)
{
	static struct mps_link_ops ops;

	if (!ops.name) {
		ops.send = io_send;
		ops.recv = io_recv;
		ops.next_ready = mps_tun_link_ops.next_ready ? io_next_ready : NULL;
		ops.gso_max = mps_tun_link_ops.gso_max ? io_gso_max : NULL;
		ops.send_gso = mps_tun_link_ops.send_gso ? io_send_gso : NULL;
		ops.recv_flags = mps_tun_link_ops.recv_flags ? io_recv_flags : NULL;
		ops.name = mps_tun_link_ops.name;
	}
	return &ops;
}

int bundled_io_step(struct bundled_io *io, unsigned int max_ms)
{
	struct pollfd pfd = { .fd = io->host ? bundled_host_fd(io) : mps_tun_fd(io->tun),
			      .events = POLLIN };
	const struct mps_link_ops *ops = io->host ? bundled_host_ops() : io_ops();
	uint64_t now = fj_mono_us(), next, rx = io->rx_packets;
	int err = 0, wait;

	next = mps_pump(io->st, ops, io, now, &err);
	if (err && err != -EAGAIN)
		io->link_errors++;
	/*
	 * Packets that arrived since the last round are in the stack now:
	 * waiting before the caller looks would hold data that is ready
	 * (responses of rr and echo waited up to max_ms so).
	 */
	if (!max_ms || next <= now || io->rx_packets != rx)
		return 0;
	wait = next - now >= (uint64_t)max_ms * 1000 ? (int)max_ms
						     : (int)((next - now + 999) / 1000);
	if (poll(&pfd, 1, wait) < 0 && errno != EINTR)
		return -errno;
	/* What woke us goes into the stack now, so the caller sees it on return. */
	if (pfd.revents & POLLIN) {
		now = fj_mono_us();
		mps_pump(io->st, ops, io, now, &err);
		if (err && err != -EAGAIN)
			io->link_errors++;
	}
	return 0;
}

void bundled_io_end_conn(struct bundled_io *io, struct mps_conn *c, bool reset, uint64_t close_ms,
			 const struct exp_env *env, uint64_t slack_ms)
{
	uint64_t end = fj_mono_ms() + close_ms;
	uint32_t id = mps_conn_id(c);
	struct mps_event ev;

	if (reset)
		mps_abort(c);
	else
		mps_close(c);
	while (fj_mono_ms() < end && exp_left_ms(env) > slack_ms) {
		int closed = 0;

		bundled_io_step(io, 10);
		while (mps_next_event(io->st, &ev) == 0)
			closed |= ev.conn_id == id &&
				  (ev.type == MPS_EV_CONN_CLOSED || ev.type == MPS_EV_CONN_RESET);
		if (closed || mps_next_wakeup(io->st) == MPS_TIME_NEVER)
			break;
	}
}

/* The pcap in fd: the 24-byte file header and whole 16-byte-headed records within cap. */
static void read_trace(int fd, char **data, size_t *len, size_t cap, int *cut)
{
	off_t size = lseek(fd, 0, SEEK_END);
	size_t n, keep = 24;
	char *d;

	*data = NULL;
	*len = 0;
	*cut = 0;
	if (size < 24)
		return;
	n = (size_t)size;
	d = malloc(n);
	if (!d || pread(fd, d, n, 0) != (ssize_t)n) {
		free(d);
		return;
	}
	while (keep + 16 <= n) {
		uint32_t incl;

		memcpy(&incl, d + keep + 8, 4); /* written in this host's order */
		if (keep + 16 + incl > n)
			break;
		if (keep + 16 + incl > cap) {
			*cut = 1;
			break;
		}
		keep += 16 + incl;
	}
	*data = d;
	*len = keep;
}

void bundled_io_close(struct bundled_io *io, char **trace, size_t *len, size_t cap, int *cut)
{
	if (io->st)
		mps_stack_destroy(io->st);
	io->st = NULL;
	/* Closing the writer flushes it into the memory file. */
	mps_trace_close(io->trace);
	io->trace = NULL;
	if (trace) {
		*trace = NULL;
		*len = 0;
		*cut = 0;
		if (io->trace_fd >= 0)
			read_trace(io->trace_fd, trace, len, cap, cut);
	}
	if (io->trace_fd >= 0)
		close(io->trace_fd);
	io->trace_fd = -1;
	mps_tun_close(io->tun);
	io->tun = NULL;
	/* Deletes the adapter's nftables table (a failure is on stderr, with its name). */
	if (io->host) {
		mps_host_close(io->host);
		bundled_host_disarm();
	}
	io->host = NULL;
}

int bundled_ask_info(const Fjord__V1__RunCommand *cmd, const struct exp_env *env,
		     struct exp_out *out, char *text, size_t cap)
{
	struct agent_resp_request q = { .type = AGENT_RESP_INFO };
	struct agent_resp_reply reply;
	struct exp_target t;
	uint8_t len[2];
	size_t n;
	int fd, mptcp = 0, rc;

	rc = exp_resolve_target(cmd, env, 0, &t, out);
	if (rc < 0)
		return rc;
	fd = exp_connect_within(cmd, FJORD__V1__STACK__STACK_TCP, &t, env, BUNDLED_ANSWER_MS, out,
				&mptcp);
	if (fd < 0)
		return fd;
	rc = exp_handshake(fd, &q, &reply, out);
	if (!rc)
		rc = exp_recv_all(fd, len, 2);
	n = (size_t)len[0] << 8 | len[1];
	if (!rc && (n == 0 || n >= cap))
		rc = -EPROTO;
	if (!rc)
		rc = exp_recv_all(fd, (uint8_t *)text, n);
	close(fd);
	if (rc == -EPROTO)
		exp_fail(out, "the peer's bundled address list is malformed");
	else if (rc && rc != -EINVAL)
		exp_fail(out, "reading the peer's bundled addresses: %s", strerror(-rc));
	if (rc)
		return rc;
	text[n] = 0;
	return 0;
}

const struct bundled_isp *bundled_own_isp(const struct bundled_cfg *bc, const char *isp)
{
	unsigned int i;

	for (i = 0; isp && i < bc->n_isps; i++)
		if (!strcmp(bc->isps[i].isp, isp))
			return &bc->isps[i];
	return NULL;
}

void bundled_io_close_trace(struct bundled_io *io, struct exp_out *out)
{
	struct exp_trace *t;
	char *trace = NULL;
	size_t len = 0;
	int cut = 0;

	bundled_io_close(io, &trace, &len, EXP_TRACE_MAX, &cut);
	if (!trace)
		return;
	t = exp_trace_new(out, "capture.pcap");
	if (!t) {
		free(trace);
		return;
	}
	t->data = trace;
	t->len = len;
	t->cap = len;
	if (cut)
		exp_add_event(out, "capture_capped",
			      "the packet trace reached its cap; later packets are not in "
			      "capture.pcap",
			      0);
}
