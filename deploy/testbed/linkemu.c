/*
 * fjord-linkemu: the testbed's link emulator. It runs in the core namespace
 * and holds every packet of every uplink in the kernel through NFQUEUE: the
 * kernel keeps the packet, we get its first bytes and length, decide with
 * tb_emu.c when (or whether) it may go on, and give the verdict then. One
 * queue per uplink direction; verdicts in order per queue are batched.
 *
 * Control: a SOCK_SEQPACKET Unix socket taking "status" and
 * "set SITE/ISP key=value ... | down | up".
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <linux/netlink.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "tb_config.h"
#include "tb_emu.h"

#define QUEUE_MAXLEN   16384 /* packets held per direction, the kernel's cap too */
#define COPY_RANGE     128   /* enough for IPv6 + a full TCP header with options */
#define RCVBUF	       (4 << 20)
#define SLACK_NS       20000ull	 /* release up to 20 us early rather than sleep again */
#define CTL_MSG_MAX    (1 << 19) /* status of 256 links, 2 lines per direction */
#define LATE_BUCKETS   201	 /* lateness histogram: 10 us buckets up to 2 ms, then one */
#define LATE_BUCKET_NS 10000ull

enum { DIR_UP, DIR_DOWN };

struct held {
	uint32_t id;
	uint32_t len;
	uint64_t arrival_ns;
	uint64_t release_ns;
};

struct qdir {
	int fd;
	uint16_t qnum;
	unsigned int link;
	int dir;
	struct tb_emu_dir emu;
	bool gso;
	struct held *ring; /* FIFO of packets held in order */
	unsigned int head, count;
	uint64_t passed_pkts, passed_bytes, delay_sum_ns;
	uint64_t snap_bytes, rate_bps; /* measured over the last second */
	uint64_t snap_pkts, snap_delay_ns, delay_1s_ns;
	uint64_t ring_full;
	uint64_t truncated; /* messages cut short: their packets go with a later batch */
};

/*
 * Queue of a rewriting middlebox (rewrite-seq or rewrite-payload): each
 * packet is changed and let go at once.
 */
struct mbq {
	int fd;
	uint16_t qnum;
	unsigned int link; /* UINT_MAX: standalone (--payload-queue) */
	int dir;
	enum tb_middlebox kind;
	uint32_t delta;	    /* rewrite-seq */
	struct tb_prw *prw; /* rewrite-payload: its flows */
	uint64_t rewritten, untouched, errors;
};

struct emu {
	struct tb_topology topo;
	unsigned int n_links;
	struct qdir *q; /* 2 per link */
	struct mbq *mq; /* 2 per rewrite-seq or rewrite-payload link */
	unsigned int n_mq;
	int epfd, tfd, ctlfd;
	uint64_t armed_ns;
	uint64_t snap_ns;
	uint64_t late_hist[LATE_BUCKETS];
	uint64_t late_count;
	char buf[1 << 17]; /* RX_BATCH x RX_SLOT, or one message of a middlebox queue */
};

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- netlink helpers ---- */

static void put_attr(struct nlmsghdr *nlh, uint16_t type, const void *data, uint16_t len)
{
	struct nlattr *a = (struct nlattr *)((char *)nlh + NLMSG_ALIGN(nlh->nlmsg_len));

	a->nla_type = type;
	a->nla_len = (uint16_t)(NLA_HDRLEN + len);
	memcpy((char *)a + NLA_HDRLEN, data, len);
	nlh->nlmsg_len = NLMSG_ALIGN(nlh->nlmsg_len) + NLA_ALIGN(a->nla_len);
}

static struct nlmsghdr *start_msg(char *buf, uint16_t type, uint16_t flags, uint16_t qnum)
{
	struct nlmsghdr *nlh = (struct nlmsghdr *)buf;
	struct nfgenmsg *g;

	memset(buf, 0, NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(*g)));
	nlh->nlmsg_len = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(*g));
	nlh->nlmsg_type = (uint16_t)((NFNL_SUBSYS_QUEUE << 8) | type);
	nlh->nlmsg_flags = (uint16_t)(NLM_F_REQUEST | flags);
	g = NLMSG_DATA(nlh);
	g->nfgen_family = AF_UNSPEC;
	g->version = NFNETLINK_V0;
	g->res_id = htons(qnum);
	return nlh;
}

/* Sends a config message and waits for the kernel's acknowledgement. */
static bool parse_packet(struct nlmsghdr *nlh, uint32_t *id, const uint8_t **payload,
			 uint32_t *caplen, uint32_t *len);

static void accept_unseen(int fd, uint16_t qnum, struct nlmsghdr *h)
{
	char buf[64];
	const uint8_t *payload;
	uint32_t id, caplen, len;
	struct nlmsghdr *nlh;
	struct nfqnl_msg_verdict_hdr vh;

	if (!parse_packet(h, &id, &payload, &caplen, &len))
		return;
	nlh = start_msg(buf, NFQNL_MSG_VERDICT, 0, qnum);
	vh.verdict = htonl(NF_ACCEPT);
	vh.id = htonl(id);
	put_attr(nlh, NFQA_VERDICT_HDR, &vh, sizeof(vh));
	send(fd, buf, nlh->nlmsg_len, 0);
}

static int config_fd(int fd, uint16_t qnum, const void *cmd, uint32_t copy_range,
		     uint32_t flags_mask, uint32_t flags)
{
	char buf[256], ack[1024];
	struct nlmsghdr *nlh = start_msg(buf, NFQNL_MSG_CONFIG, NLM_F_ACK, qnum);
	ssize_t n;

	if (cmd)
		put_attr(nlh, NFQA_CFG_CMD, cmd, sizeof(struct nfqnl_msg_config_cmd));
	if (copy_range) {
		struct nfqnl_msg_config_params p = { htonl(copy_range), NFQNL_COPY_PACKET };
		uint32_t maxlen = htonl(QUEUE_MAXLEN);

		put_attr(nlh, NFQA_CFG_PARAMS, &p, sizeof(p));
		put_attr(nlh, NFQA_CFG_QUEUE_MAXLEN, &maxlen, sizeof(maxlen));
	}
	if (flags_mask) {
		uint32_t m = htonl(flags_mask), f = htonl(flags);

		put_attr(nlh, NFQA_CFG_MASK, &m, sizeof(m));
		put_attr(nlh, NFQA_CFG_FLAGS, &f, sizeof(f));
	}
	if (send(fd, buf, nlh->nlmsg_len, 0) < 0)
		return -errno;
	/* Packets may already be waiting; the ack is the first NLMSG_ERROR. */
	for (int tries = 0; tries < 1000; tries++) {
		n = recv(fd, ack, sizeof(ack), 0);
		if (n < 0 && errno == EAGAIN) {
			usleep(1000);
			continue;
		}
		if (n < 0)
			return -errno;
		int len = (int)n;

		for (struct nlmsghdr *h = (struct nlmsghdr *)ack; NLMSG_OK(h, len);
		     h = NLMSG_NEXT(h, len)) {
			if (h->nlmsg_type == NLMSG_ERROR)
				return ((struct nlmsgerr *)NLMSG_DATA(h))->error;
			/*
			 * A packet queued while we wait for the ack would stay in
			 * the kernel unseen: let it go now rather than never.
			 */
			if (h->nlmsg_type == ((NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET))
				accept_unseen(fd, qnum, h);
		}
	}
	return -ETIMEDOUT;
}

static int config_queue(struct qdir *q, const void *cmd, bool params, uint32_t flags_mask,
			uint32_t flags)
{
	return config_fd(q->fd, q->qnum, cmd, params ? COPY_RANGE : 0, flags_mask, flags);
}

static int nl_socket(void)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	int one = 1, size = RCVBUF, fd;

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_NETFILTER);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -errno;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	/* A full socket buffer must not turn into an error on every later read. */
	setsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, sizeof(one));
	return fd;
}

static int open_queue(struct qdir *q)
{
	struct nfqnl_msg_config_cmd cmd = { .command = NFQNL_CFG_CMD_BIND };
	int r;

	q->fd = nl_socket();
	if (q->fd < 0)
		return q->fd;
	r = config_queue(q, &cmd, true, 0, 0);
	if (r)
		return r;
	q->gso = tb_emu_whole_gso(&q->emu.p);
	return config_queue(q, NULL, false, NFQA_CFG_F_GSO, q->gso ? NFQA_CFG_F_GSO : 0);
}

static void send_verdict(struct qdir *q, uint16_t type, uint32_t id, uint32_t verdict)
{
	char buf[64];
	struct nlmsghdr *nlh = start_msg(buf, type, 0, q->qnum);
	struct nfqnl_msg_verdict_hdr vh = { htonl(verdict), htonl(id) };

	put_attr(nlh, NFQA_VERDICT_HDR, &vh, sizeof(vh));
	/* The socket is non-blocking; a full send buffer is retried once, blocking. */
	if (send(q->fd, buf, nlh->nlmsg_len, 0) < 0 && errno == EAGAIN) {
		int fl = fcntl(q->fd, F_GETFL);

		fcntl(q->fd, F_SETFL, fl & ~O_NONBLOCK);
		if (send(q->fd, buf, nlh->nlmsg_len, 0) < 0)
			fprintf(stderr, "fjord-linkemu: verdict on queue %u: %s\n", q->qnum,
				strerror(errno));
		fcntl(q->fd, F_SETFL, fl);
	}
}

/* ---- the packet path ---- */

/* Wire length of a GSO packet: every segment carries its own headers. */
static uint32_t wire_len(const uint8_t *pkt, uint32_t caplen, uint32_t len, unsigned int mtu)
{
	uint32_t hdr, segs;

	if (len <= mtu || caplen < 20)
		return len;
	if ((pkt[0] >> 4) == 4 && pkt[9] == 6 && caplen >= (uint32_t)(pkt[0] & 0xf) * 4 + 13)
		hdr = (uint32_t)(pkt[0] & 0xf) * 4 +
		      (uint32_t)(pkt[(pkt[0] & 0xf) * 4 + 12] >> 4) * 4;
	else if ((pkt[0] >> 4) == 6 && pkt[6] == 6 && caplen >= 53)
		hdr = 40 + (uint32_t)(pkt[52] >> 4) * 4;
	else
		return len;
	if (hdr >= mtu || hdr >= len)
		return len;
	segs = (len - hdr + (mtu - hdr) - 1) / (mtu - hdr);
	return len + (segs - 1) * hdr;
}

/* Picks id, payload and full length out of a packet message; false if it has no header. */
static bool parse_packet(struct nlmsghdr *nlh, uint32_t *id, const uint8_t **payload,
			 uint32_t *caplen, uint32_t *len)
{
	struct nfqnl_msg_packet_hdr *ph = NULL;
	struct nlattr *a;
	int rem;

	*payload = NULL;
	*caplen = *len = 0;
	a = (struct nlattr *)((char *)NLMSG_DATA(nlh) + NLMSG_ALIGN(sizeof(struct nfgenmsg)));
	rem = (int)nlh->nlmsg_len - (int)((char *)a - (char *)nlh);
	for (; rem >= (int)NLA_HDRLEN && a->nla_len >= NLA_HDRLEN && a->nla_len <= rem;
	     rem -= NLA_ALIGN(a->nla_len),
	     a = (struct nlattr *)((char *)a + NLA_ALIGN(a->nla_len))) {
		void *d = (char *)a + NLA_HDRLEN;
		uint16_t dl = (uint16_t)(a->nla_len - NLA_HDRLEN);

		switch (a->nla_type & NLA_TYPE_MASK) {
		case NFQA_PACKET_HDR:
			if (dl >= sizeof(*ph))
				ph = d;
			break;
		case NFQA_PAYLOAD:
			*payload = d;
			*caplen = dl;
			break;
		case NFQA_CAP_LEN:
			if (dl >= 4) {
				memcpy(len, d, 4);
				*len = ntohl(*len);
			}
			break;
		}
	}
	if (!ph)
		return false;
	memcpy(id, &ph->packet_id, 4);
	*id = ntohl(*id);
	if (!*len)
		*len = *caplen;
	return true;
}

static void on_packet(struct emu *e, struct qdir *q, struct nlmsghdr *nlh, uint64_t now)
{
	const struct tb_site *site;
	const struct tb_uplink *up;
	const uint8_t *payload;
	uint32_t caplen, len, id;
	unsigned int s, u;
	uint64_t rel;
	enum tb_emu_verdict v;

	if (!parse_packet(nlh, &id, &payload, &caplen, &len))
		return;
	tb_link_at(&e->topo, q->link, &s, &u);
	site = &e->topo.sites[s];
	up = &site->uplinks[u];
	if (up->middlebox == TB_MB_DROP_ADD_ADDR && payload && tb_has_add_addr(payload, caplen)) {
		q->emu.c.packets++;
		q->emu.c.drop_mbox++;
		send_verdict(q, NFQNL_MSG_VERDICT, id, NF_DROP);
		return;
	}
	if (payload)
		len = wire_len(payload, caplen, len, up->mtu);
	v = tb_emu_packet(&q->emu, now, len, &rel);
	switch (v) {
	case TB_EMU_RELEASE:
		if (q->count < QUEUE_MAXLEN) {
			struct held *h = &q->ring[(q->head + q->count) % QUEUE_MAXLEN];

			h->id = id;
			h->len = len;
			h->arrival_ns = now;
			h->release_ns = rel;
			q->count++;
			return;
		}
		/* Cannot happen while the kernel's cap equals ours; drop, and count. */
		q->ring_full++;
		send_verdict(q, NFQNL_MSG_VERDICT, id, NF_DROP);
		return;
	case TB_EMU_RELEASE_NOW:
		q->passed_pkts++;
		q->passed_bytes += len;
		send_verdict(q, NFQNL_MSG_VERDICT, id, NF_ACCEPT);
		return;
	default:
		send_verdict(q, NFQNL_MSG_VERDICT, id, NF_DROP);
		return;
	}
}

/*
 * One netlink message per packet: recvmmsg takes up to RX_BATCH of them per
 * system call. A message carries at most COPY_RANGE bytes of packet plus
 * attributes, far below RX_SLOT.
 */
#define RX_BATCH 64
#define RX_SLOT	 2048
_Static_assert(RX_BATCH *RX_SLOT <= sizeof(((struct emu *)0)->buf), "receive buffer too small");

static void read_queue(struct emu *e, struct qdir *q)
{
	static struct mmsghdr mm[RX_BATCH];
	static struct iovec iov[RX_BATCH];

	for (int round = 0; round < 16; round++) {
		uint64_t now;
		int n;

		for (int i = 0; i < RX_BATCH; i++) {
			iov[i].iov_base = e->buf + i * RX_SLOT;
			iov[i].iov_len = RX_SLOT;
			memset(&mm[i].msg_hdr, 0, sizeof(mm[i].msg_hdr));
			mm[i].msg_hdr.msg_iov = &iov[i];
			mm[i].msg_hdr.msg_iovlen = 1;
		}
		n = recvmmsg(q->fd, mm, RX_BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			return;
		now = now_ns();
		for (int i = 0; i < n; i++) {
			/* len is signed: NLMSG_NEXT may take it below zero at the end. */
			int len = (int)mm[i].msg_len;

			if (mm[i].msg_hdr.msg_flags & MSG_TRUNC) {
				q->truncated++;
				continue;
			}
			for (struct nlmsghdr *h = (struct nlmsghdr *)iov[i].iov_base;
			     NLMSG_OK(h, len); h = NLMSG_NEXT(h, len))
				if (h->nlmsg_type == ((NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET))
					on_packet(e, q, h, now);
		}
		if (n < RX_BATCH)
			return;
	}
}

/* A rewriting middlebox: change the whole packet and give it back at once. */
static void on_mb_packet(struct mbq *m, struct nlmsghdr *nlh)
{
	static uint8_t msg[NLMSG_HDRLEN + 64 + 65536], pkt[65536];
	struct nfqnl_msg_verdict_hdr vh;
	const uint8_t *payload;
	uint32_t caplen, len, id;
	struct nlmsghdr *out;
	int r = -EINVAL;

	if (!parse_packet(nlh, &id, &payload, &caplen, &len))
		return;
	if (payload && caplen == len && caplen <= 65000) {
		memcpy(pkt, payload, caplen);
		if (m->kind == TB_MB_REWRITE_PAYLOAD)
			r = tb_rewrite_payload(m->prw, pkt, caplen);
		else
			r = tb_rewrite_seq(pkt, caplen, m->delta, m->dir == DIR_UP);
	}
	out = start_msg((char *)msg, NFQNL_MSG_VERDICT, 0, m->qnum);
	vh.verdict = htonl(NF_ACCEPT);
	vh.id = htonl(id);
	put_attr(out, NFQA_VERDICT_HDR, &vh, sizeof(vh));
	if (r == 1) {
		put_attr(out, NFQA_PAYLOAD, pkt, (uint16_t)caplen);
		m->rewritten++;
	} else if (r == 0) {
		m->untouched++;
	} else {
		/* Cut short or malformed: it goes on unchanged, and is counted. */
		m->errors++;
	}
	if (send(m->fd, msg, out->nlmsg_len, 0) < 0)
		fprintf(stderr, "fjord-linkemu: verdict on queue %u: %s\n", m->qnum,
			strerror(errno));
}

static void read_mb_queue(struct emu *e, struct mbq *m)
{
	for (int round = 0; round < 64; round++) {
		ssize_t n = recv(m->fd, e->buf, sizeof(e->buf), 0);
		int len = (int)n;

		if (n <= 0)
			return;
		for (struct nlmsghdr *h = (struct nlmsghdr *)e->buf; NLMSG_OK(h, len);
		     h = NLMSG_NEXT(h, len))
			if (h->nlmsg_type == ((NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET))
				on_mb_packet(m, h);
	}
}

/* Releases every held packet that is due, in one batch verdict per queue. */
static uint64_t release_due(struct emu *e, uint64_t now)
{
	uint64_t next = UINT64_MAX;

	for (unsigned int i = 0; i < 2 * e->n_links; i++) {
		struct qdir *q = &e->q[i];
		uint32_t last = 0;
		bool any = false;

		while (q->count) {
			struct held *h = &q->ring[q->head];
			uint64_t late;
			unsigned int b;

			if (h->release_ns > now + SLACK_NS) {
				if (h->release_ns < next)
					next = h->release_ns;
				break;
			}
			late = now > h->release_ns ? now - h->release_ns : 0;
			b = (unsigned int)(late / LATE_BUCKET_NS);
			e->late_hist[b < LATE_BUCKETS ? b : LATE_BUCKETS - 1]++;
			e->late_count++;
			q->passed_pkts++;
			q->passed_bytes += h->len;
			q->delay_sum_ns += now - h->arrival_ns;
			last = h->id;
			any = true;
			q->head = (q->head + 1) % QUEUE_MAXLEN;
			q->count--;
		}
		if (any)
			send_verdict(q, NFQNL_MSG_VERDICT_BATCH, last, NF_ACCEPT);
	}
	return next;
}

static void arm_timer(struct emu *e, uint64_t at)
{
	struct itimerspec its = { 0 };

	if (at == e->armed_ns)
		return;
	e->armed_ns = at;
	if (at != UINT64_MAX) {
		its.it_value.tv_sec = (time_t)(at / 1000000000ull);
		its.it_value.tv_nsec = (long)(at % 1000000000ull);
	}
	timerfd_settime(e->tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

/* ---- control ---- */

static uint64_t late_quantile(const struct emu *e, double q)
{
	uint64_t want = (uint64_t)(q * (double)e->late_count), acc = 0;

	if (!e->late_count)
		return 0;
	for (unsigned int b = 0; b < LATE_BUCKETS; b++) {
		acc += e->late_hist[b];
		if (acc > want)
			return (b + 1) * LATE_BUCKET_NS / 1000;
	}
	return LATE_BUCKETS * LATE_BUCKET_NS / 1000;
}

/* One line for a middlebox queue: what it does and what it did. */
static size_t mb_status(const struct emu *e, const struct mbq *m, char *out, size_t cap)
{
	char where[64] = "standalone", what[96];
	unsigned int s, u;
	int n;

	if (m->link != UINT_MAX && !tb_link_at(&e->topo, m->link, &s, &u))
		snprintf(where, sizeof(where), "%s/%s %s", e->topo.sites[s].name,
			 e->topo.isps[e->topo.sites[s].uplinks[u].isp].name,
			 m->dir == DIR_UP ? "up" : "down");
	if (m->kind == TB_MB_REWRITE_PAYLOAD)
		snprintf(what, sizeof(what), "rewrite-payload: offset=%u flows=%llu evicted=%llu",
			 m->prw->offset, (unsigned long long)m->prw->flows_seen,
			 (unsigned long long)m->prw->evicted);
	else
		snprintf(what, sizeof(what), "rewrite-seq: delta=%u", m->delta);
	n = snprintf(out, cap, "%s queue=%u %s rewritten=%llu untouched=%llu errors=%llu\n", where,
		     m->qnum, what, (unsigned long long)m->rewritten,
		     (unsigned long long)m->untouched, (unsigned long long)m->errors);
	return n < 0 ? 0 : (size_t)n >= cap ? cap - 1 : (size_t)n;
}

static size_t do_status(struct emu *e, char *out, size_t cap)
{
	size_t off = 0;

	off += (size_t)snprintf(out + off, cap - off,
				"emulator: release lateness p50<=%lluus p99<=%lluus p999<=%lluus "
				"over %llu packets\n",
				(unsigned long long)late_quantile(e, 0.5),
				(unsigned long long)late_quantile(e, 0.99),
				(unsigned long long)late_quantile(e, 0.999),
				(unsigned long long)e->late_count);
	for (unsigned int i = 0; i < 2 * e->n_links && off < cap; i++) {
		struct qdir *q = &e->q[i];
		const struct tb_emu_counters *c = &q->emu.c;
		unsigned int s, u;
		char cfg[320];
		uint64_t drops = c->drop_loss + c->drop_queue + c->drop_down + c->drop_mbox;

		tb_link_at(&e->topo, q->link, &s, &u);
		tb_link_format(&q->emu.p, cfg, sizeof(cfg));
		off += (size_t)snprintf(
			out + off, cap - off,
			"%s/%s %s queue=%u configured: %s\n"
			"%s/%s %s measured: packets=%llu passed=%llu held=%u "
			"loss=%.3f%% (loss=%llu queue=%llu down=%llu middlebox=%llu) "
			"reordered=%llu mean_delay=%.3fms last_second: rate=%llubit/s "
			"mean_delay=%.3fms anomalies: ring_full=%llu truncated=%llu\n",
			e->topo.sites[s].name, e->topo.isps[e->topo.sites[s].uplinks[u].isp].name,
			q->dir == DIR_UP ? "up" : "down", q->qnum, cfg, e->topo.sites[s].name,
			e->topo.isps[e->topo.sites[s].uplinks[u].isp].name,
			q->dir == DIR_UP ? "up" : "down", (unsigned long long)c->packets,
			(unsigned long long)q->passed_pkts, q->count,
			c->packets ? 100.0 * (double)drops / (double)c->packets : 0.0,
			(unsigned long long)c->drop_loss, (unsigned long long)c->drop_queue,
			(unsigned long long)c->drop_down, (unsigned long long)c->drop_mbox,
			(unsigned long long)c->reordered,
			q->passed_pkts ? (double)q->delay_sum_ns / (double)q->passed_pkts / 1e6
				       : 0.0,
			(unsigned long long)q->rate_bps, (double)q->delay_1s_ns / 1e6,
			(unsigned long long)q->ring_full, (unsigned long long)q->truncated);
	}
	for (unsigned int k = 0; k < e->n_mq && off < cap; k++)
		off += mb_status(e, &e->mq[k], out + off, cap - off);
	if (off >= cap)
		off = cap - 1;
	return off;
}

/*
 * "set SITE/ISP key=value ... | down | up": all or nothing. Keys ending in
 * _up or _down change one direction, plain keys both.
 */
static size_t do_set(struct emu *e, char *args, char *out, size_t cap)
{
	struct tb_link_params p[2];
	char *save = NULL, *link = strtok_r(args, " \t\n", &save), *tok;
	char err[TB_ERR_MAX], f0[TB_ERR_MAX], f1[TB_ERR_MAX];
	int li;
	bool any = false;

	if (!link)
		return (size_t)snprintf(out, cap, "error: set needs a link SITE/ISP");
	li = tb_link_find(&e->topo, link);
	if (li < 0)
		return (size_t)snprintf(out, cap, "error: no link \"%s\" (links are SITE/ISP)",
					link);
	p[TB_DIR_UP] = e->q[2 * li + TB_DIR_UP].emu.p;
	p[TB_DIR_DOWN] = e->q[2 * li + TB_DIR_DOWN].emu.p;
	while ((tok = strtok_r(NULL, " \t\n", &save))) {
		char *eq = strchr(tok, '=');

		any = true;
		if (!strcmp(tok, "down") || !strcmp(tok, "up")) {
			p[0].down = p[1].down = tok[0] == 'd';
			continue;
		}
		if (eq)
			*eq++ = 0;
		if (tb_link_set_dirs(p, tok, eq, err, sizeof(err)))
			return (size_t)snprintf(out, cap, "error: %s", err);
	}
	if (!any)
		return (size_t)snprintf(out, cap, "error: set %s needs key=value, down or up",
					link);
	for (int d = 0; d < 2; d++)
		if (p[d].jitter_us > p[d].delay_us)
			return (size_t)snprintf(
				out, cap,
				"error: jitter (%u us) is larger than delay (%u us) "
				"going %s",
				p[d].jitter_us, p[d].delay_us, d ? "down" : "up");
	for (int d = 0; d < 2; d++) {
		struct qdir *q = &e->q[2 * li + d];
		bool gso = tb_emu_whole_gso(&p[d]);

		tb_emu_set(&q->emu, &p[d]);
		if (gso != q->gso) {
			int r = config_queue(q, NULL, false, NFQA_CFG_F_GSO,
					     gso ? NFQA_CFG_F_GSO : 0);

			if (r)
				return (size_t)snprintf(out, cap, "error: queue %u: GSO flag: %s",
							q->qnum, strerror(-r));
			q->gso = gso;
		}
	}
	tb_link_format(&p[TB_DIR_UP], f0, sizeof(f0));
	tb_link_format(&p[TB_DIR_DOWN], f1, sizeof(f1));
	if (!strcmp(f0, f1))
		return (size_t)snprintf(out, cap, "ok %s %s", link, f0);
	return (size_t)snprintf(out, cap, "ok %s up: %s; down: %s", link, f0, f1);
}

static void on_control(struct emu *e)
{
	static char req[1024], out[CTL_MSG_MAX];
	int c = accept4(e->ctlfd, NULL, NULL, SOCK_CLOEXEC);
	struct timeval tv = { 1, 0 };
	ssize_t n;
	size_t len;

	if (c < 0)
		return;
	/* A stuck client may not stall the packet path for long. */
	setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	/* One datagram carries the whole answer. */
	{
		int sz = 2 * CTL_MSG_MAX;

		if (setsockopt(c, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz)) < 0)
			setsockopt(c, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	}
	n = recv(c, req, sizeof(req) - 1, 0);
	if (n <= 0) {
		close(c);
		return;
	}
	req[n] = 0;
	if (!strncmp(req, "status", 6))
		len = do_status(e, out, sizeof(out));
	else if (!strncmp(req, "set ", 4))
		len = do_set(e, req + 4, out, sizeof(out));
	else
		len = (size_t)snprintf(out, sizeof(out), "error: unknown request (status, set)");
	if (len >= sizeof(out))
		len = sizeof(out) - 1;
	send(c, out, len, MSG_NOSIGNAL);
	close(c);
}

static void snapshot_rates(struct emu *e, uint64_t now)
{
	uint64_t dt = now - e->snap_ns;

	if (dt < 1000000000ull)
		return;
	for (unsigned int i = 0; i < 2 * e->n_links; i++) {
		struct qdir *q = &e->q[i];

		q->rate_bps = (q->passed_bytes - q->snap_bytes) * 8 * 1000000000ull / dt;
		q->snap_bytes = q->passed_bytes;
		q->delay_1s_ns = q->passed_pkts > q->snap_pkts
					 ? (q->delay_sum_ns - q->snap_delay_ns) /
						   (q->passed_pkts - q->snap_pkts)
					 : 0;
		q->snap_pkts = q->passed_pkts;
		q->snap_delay_ns = q->delay_sum_ns;
	}
	e->snap_ns = now;
}

/* ---- setup ---- */

static int open_control(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, 0600) < 0 ||
	    listen(fd, 8) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	return fd;
}

/*
 * Binds a middlebox queue (m filled in but for fd and prw) and adds it to
 * the loop. Whole packets, no GSO, so that checksums can be made anew.
 */
static int open_mb_queue(struct emu *e, struct mbq *m, uint32_t offset)
{
	struct nfqnl_msg_config_cmd cmd = { .command = NFQNL_CFG_CMD_BIND };
	struct epoll_event ev = { .events = EPOLLIN };
	int r;

	if (m->kind == TB_MB_REWRITE_PAYLOAD) {
		m->prw = malloc(sizeof(*m->prw));
		if (!m->prw) {
			fprintf(stderr, "fjord-linkemu: out of memory\n");
			return -ENOMEM;
		}
		tb_prw_init(m->prw, offset);
	}
	m->fd = nl_socket();
	r = m->fd < 0 ? m->fd : config_fd(m->fd, m->qnum, &cmd, 0xffff, 0, 0);
	if (!r)
		r = config_fd(m->fd, m->qnum, NULL, 0, NFQA_CFG_F_GSO, 0);
	if (r) {
		fprintf(stderr, "fjord-linkemu: binding NFQUEUE %u (%s): %s\n", m->qnum,
			tb_middlebox_name(m->kind), strerror(-r));
		return r;
	}
	ev.data.u32 = 0x20000 + e->n_mq;
	epoll_ctl(e->epfd, EPOLL_CTL_ADD, m->fd, &ev);
	e->n_mq++;
	return 0;
}

static void run_loop(struct emu *e)
{
	while (!stop_flag) {
		struct epoll_event evs[64];
		int n = epoll_wait(e->epfd, evs, 64, 1000);
		uint64_t now, next;

		for (int k = 0; k < n; k++) {
			uint32_t tag = evs[k].data.u32;

			if (tag == 0x10000) {
				on_control(e);
			} else if (tag == 0x10001) {
				uint64_t x;

				if (read(e->tfd, &x, sizeof(x)) < 0 && errno != EAGAIN)
					break;
				e->armed_ns = 0;
			} else if (tag >= 0x20000 && tag < 0x20000 + e->n_mq) {
				read_mb_queue(e, &e->mq[tag - 0x20000]);
			} else if (tag < 2 * e->n_links) {
				read_queue(e, &e->q[tag]);
			}
		}
		now = now_ns();
		next = release_due(e, now);
		snapshot_rates(e, now);
		arm_timer(e, next);
	}
}

/* A whole decimal number within max, or -EINVAL. */
static int parse_ulong(const char *s, unsigned long max, unsigned long *v)
{
	char *end;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	*v = strtoul(s, &end, 10);
	return errno || *end || *v > max ? -EINVAL : 0;
}

/*
 * --payload-queue: the rewrite-payload middlebox alone on one queue, with
 * the control socket ("status") when one is named. Its counts go to stderr
 * when it stops, for the test that ran it.
 */
static int run_standalone(struct emu *e, uint16_t qnum, uint32_t offset, const char *ctl_path)
{
	static char out[512];
	struct epoll_event ev = { .events = EPOLLIN };
	struct mbq *m;

	e->mq = calloc(1, sizeof(*e->mq));
	e->epfd = epoll_create1(EPOLL_CLOEXEC);
	e->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (!e->mq || e->epfd < 0 || e->tfd < 0) {
		fprintf(stderr, "fjord-linkemu: setup: %s\n", strerror(errno));
		return 1;
	}
	m = &e->mq[0];
	m->link = UINT_MAX;
	m->kind = TB_MB_REWRITE_PAYLOAD;
	m->qnum = qnum;
	if (open_mb_queue(e, m, offset))
		return 1;
	if (ctl_path) {
		e->ctlfd = open_control(ctl_path);
		if (e->ctlfd < 0) {
			fprintf(stderr, "fjord-linkemu: control socket %s: %s\n", ctl_path,
				strerror(-e->ctlfd));
			return 1;
		}
		ev.data.u32 = 0x10000;
		epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->ctlfd, &ev);
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGPIPE, SIG_IGN);
	printf("ready pid=%ld payload-queue=%u offset=%u\n", (long)getpid(), qnum, offset);
	fflush(stdout);
	run_loop(e);
	mb_status(e, m, out, sizeof(out));
	fprintf(stderr, "fjord-linkemu: %s", out);
	if (ctl_path)
		unlink(ctl_path);
	return 0;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: fjord-linkemu --topology FILE --control SOCKET [--queue-base N] "
		"[--seed N] [--no-realtime]\n"
		"       fjord-linkemu --payload-queue N [--rewrite-offset BYTES] [--control SOCKET]\n"
		"Run inside the testbed's core namespace; fjord-testbed starts it. The second\n"
		"form runs only the rewrite-payload middlebox on NFQUEUE N (for tests that\n"
		"send packets there themselves) and prints its counts when it stops.\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "topology", required_argument, NULL, 't' },
		{ "control", required_argument, NULL, 'c' },
		{ "queue-base", required_argument, NULL, 'q' },
		{ "seed", required_argument, NULL, 's' },
		{ "no-realtime", no_argument, NULL, 'n' },
		{ "payload-queue", required_argument, NULL, 'p' },
		{ "rewrite-offset", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct emu e;
	const char *topo_path = NULL, *ctl_path = NULL;
	unsigned long qbase = 1000, seed = 0, pqueue = ULONG_MAX,
		      offset = TB_REWRITE_OFFSET_DEFAULT;
	bool realtime = true;
	char err[TB_ERR_MAX];
	struct epoll_event ev;
	int o, r;

	while ((o = getopt_long(argc, argv, "t:c:q:s:p:o:h", opts, NULL)) != -1) {
		switch (o) {
		case 't':
			topo_path = optarg;
			break;
		case 'c':
			ctl_path = optarg;
			break;
		case 'q':
			qbase = strtoul(optarg, NULL, 10);
			break;
		case 's':
			seed = strtoul(optarg, NULL, 10);
			break;
		case 'n':
			realtime = false;
			break;
		case 'p':
			if (parse_ulong(optarg, 65535, &pqueue)) {
				fprintf(stderr,
					"fjord-linkemu: --payload-queue \"%s\" is not a "
					"queue number 0..65535\n",
					optarg);
				return 2;
			}
			break;
		case 'o':
			if (parse_ulong(optarg, TB_REWRITE_OFFSET_MAX, &offset)) {
				fprintf(stderr,
					"fjord-linkemu: --rewrite-offset \"%s\" is not a byte offset "
					"0..%u\n",
					optarg, TB_REWRITE_OFFSET_MAX);
				return 2;
			}
			break;
		default:
			usage();
			return 2;
		}
	}
	if (pqueue != ULONG_MAX) {
		if (topo_path || optind != argc) {
			usage();
			return 2;
		}
		return run_standalone(&e, (uint16_t)pqueue, (uint32_t)offset, ctl_path);
	}
	if (!topo_path || !ctl_path || optind != argc) {
		usage();
		return 2;
	}
	if (tb_config_load_file(topo_path, &e.topo, err, sizeof(err))) {
		fprintf(stderr, "fjord-linkemu: %s\n", err);
		return 1;
	}
	e.n_links = tb_link_count(&e.topo);
	if (qbase + 4 * e.n_links > 65535) {
		fprintf(stderr, "fjord-linkemu: --queue-base %lu leaves no room for %u queues\n",
			qbase, 4 * e.n_links);
		return 2;
	}
	e.q = calloc(2 * e.n_links, sizeof(*e.q));
	e.epfd = epoll_create1(EPOLL_CLOEXEC);
	e.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (!e.q || e.epfd < 0 || e.tfd < 0) {
		fprintf(stderr, "fjord-linkemu: setup: %s\n", strerror(errno));
		return 1;
	}
	if (!seed && getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
		seed = (unsigned long)now_ns();
	for (unsigned int i = 0; i < 2 * e.n_links; i++) {
		struct qdir *q = &e.q[i];
		unsigned int s, u;

		tb_link_at(&e.topo, i / 2, &s, &u);
		q->link = i / 2;
		q->dir = (int)(i % 2);
		q->qnum = (uint16_t)(qbase + i);
		tb_emu_init(&q->emu, &e.topo.sites[s].uplinks[u].params[q->dir],
			    seed * 0x100000001b3ull + i + 1);
		q->ring = calloc(QUEUE_MAXLEN, sizeof(*q->ring));
		if (!q->ring) {
			fprintf(stderr, "fjord-linkemu: out of memory\n");
			return 1;
		}
		r = open_queue(q);
		if (r) {
			fprintf(stderr, "fjord-linkemu: binding NFQUEUE %u (%s/%s %s): %s\n",
				q->qnum, e.topo.sites[s].name,
				e.topo.isps[e.topo.sites[s].uplinks[u].isp].name,
				q->dir ? "down" : "up", strerror(-r));
			return 1;
		}
		ev.events = EPOLLIN;
		ev.data.u32 = i;
		epoll_ctl(e.epfd, EPOLL_CTL_ADD, q->fd, &ev);
	}
	e.mq = calloc(2 * e.n_links, sizeof(*e.mq));
	if (!e.mq) {
		fprintf(stderr, "fjord-linkemu: out of memory\n");
		return 1;
	}
	for (unsigned int li = 0; li < e.n_links; li++) {
		const struct tb_uplink *up;
		unsigned int s, u;

		tb_link_at(&e.topo, li, &s, &u);
		up = &e.topo.sites[s].uplinks[u];
		if (up->middlebox != TB_MB_REWRITE_SEQ && up->middlebox != TB_MB_REWRITE_PAYLOAD)
			continue;
		for (int d = 0; d < 2; d++) {
			struct mbq *m = &e.mq[e.n_mq];

			m->link = li;
			m->dir = d;
			m->kind = up->middlebox;
			m->qnum = (uint16_t)(qbase + 2 * e.n_links + 2 * li + (unsigned int)d);
			/* One shift per link, as a box that offsets every flow alike. */
			m->delta = (uint32_t)((seed + li) * 2654435761u) | 1;
			r = open_mb_queue(&e, m, up->rewrite_offset);
			if (r)
				return 1;
		}
	}
	e.ctlfd = open_control(ctl_path);
	if (e.ctlfd < 0) {
		fprintf(stderr, "fjord-linkemu: control socket %s: %s\n", ctl_path,
			strerror(-e.ctlfd));
		return 1;
	}
	ev.events = EPOLLIN;
	ev.data.u32 = 0x10000;
	epoll_ctl(e.epfd, EPOLL_CTL_ADD, e.ctlfd, &ev);
	ev.data.u32 = 0x10001;
	epoll_ctl(e.epfd, EPOLL_CTL_ADD, e.tfd, &ev);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGPIPE, SIG_IGN);
	/*
	 * Release times are only as good as our wake-ups: on a busy machine a
	 * normal task waits for its turn, milliseconds at times. A low real-time
	 * priority puts us first when a timer fires; the kernel's RT throttling
	 * still leaves others their share. Timer slack 1 ns: no coalescing.
	 */
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	if (realtime) {
		struct sched_param sp = { .sched_priority = 10 };

		if (sched_setscheduler(0, SCHED_FIFO, &sp) < 0 &&
		    setpriority(PRIO_PROCESS, 0, -10) < 0)
			fprintf(stderr,
				"fjord-linkemu: no real-time or raised priority (%s); "
				"release times may lag on a busy machine\n",
				strerror(errno));
	}
	e.snap_ns = now_ns();
	e.armed_ns = 0;
	arm_timer(&e, UINT64_MAX);
	/* Tell the starter we are ready: one line on stdout, then let go of it. */
	printf("ready pid=%ld queues=%u base=%lu\n", (long)getpid(), 2 * e.n_links, qbase);
	fflush(stdout);
	r = open("/dev/null", O_WRONLY);
	if (r >= 0) {
		dup2(r, 1);
		close(r);
	}

	run_loop(&e);
	/* Held packets go on rather than vanish when we stop. */
	release_due(&e, UINT64_MAX - SLACK_NS);
	unlink(ctl_path);
	return 0;
}
