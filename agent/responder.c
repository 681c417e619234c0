/* The responder: request header, then echo, sink, source or rr, in the event loop. */
#include "responder.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent_loop.h"
#include "fj_log.h"

#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262
#endif

#define RESP_MAX_LISTEN 8
/* Work done for one connection per loop pass, so one fast peer cannot starve the rest. */
#define RESP_PASS_BYTES (1u << 20)
/* rr: responses owed before the responder stops reading requests. */
#define RESP_RR_BACKLOG (4ull << 20)

enum conn_state {
	CS_HEADER,
	CS_ECHO,
	CS_SINK,
	CS_SOURCE,
	CS_RR,
	CS_INFO,	/* send buf[off..len), then shut down our side */
	CS_FLUSH_CLOSE, /* send what is in ctl, then shut down our side */
	CS_LINGER,	/* read and drop until the client closes (no RST over the reply) */
};

struct resp_conn {
	struct resp_conn *next;
	struct agent_responder *r;
	int fd;
	enum conn_state st;
	struct agent_resp_request q;
	uint8_t hdr[AGENT_RESP_REQ_LEN];
	size_t hdr_len;
	/* Reply, frame header or end marker and trailer still to send. */
	uint8_t ctl[AGENT_RESP_REPLY_LEN];
	size_t ctl_off, ctl_len;
	struct sockaddr_storage peer;
	uint64_t off;	     /* source and rr: stream offset sent so far */
	uint64_t owed;	     /* rr: response bytes not sent yet; sink: bytes read */
	uint64_t req_got;    /* rr: bytes of the current request */
	uint64_t end_ms;     /* source: stop at this loop time (0: no limit) */
	uint32_t frame_left; /* source: data bytes of the current frame still to send */
	EVP_MD_CTX *md;	     /* sink and source */
	size_t head, len;    /* echo ring buffer */
	int eof;
	uint64_t last_ms;
	unsigned char buf[AGENT_RESPONDER_BUF];
};

struct agent_responder {
	struct agent_loop *loop;
	int lfd[RESP_MAX_LISTEN];
	unsigned int nl;
	unsigned int port;
	int proto;
	unsigned int max_conns, idle_s, nconns;
	unsigned long refused, idle_closed, bad_requests;
	struct resp_conn *conns;
	uint64_t sweep_timer;
	char info[AGENT_RESP_INFO_MAX + 1]; /* "" : no bundled responder */
};

/* ---- wire format ---------------------------------------------------------- */

static void put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void put_u64(uint8_t *p, uint64_t v)
{
	put_u32(p, (uint32_t)(v >> 32));
	put_u32(p + 4, (uint32_t)v);
}

static uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get_u64(const uint8_t *p)
{
	return (uint64_t)get_u32(p) << 32 | get_u32(p + 4);
}

void agent_resp_request_encode(const struct agent_resp_request *q, uint8_t out[AGENT_RESP_REQ_LEN])
{
	memset(out, 0, AGENT_RESP_REQ_LEN);
	memcpy(out, "FJX1", 4);
	out[4] = (uint8_t)q->type;
	out[5] = (uint8_t)q->flags;
	put_u64(out + 8, q->bytes);
	put_u32(out + 16, q->duration_ms);
	put_u32(out + 20, q->request_bytes);
	put_u32(out + 24, q->response_bytes);
	put_u32(out + 28, q->seed);
}

int agent_resp_request_decode(const uint8_t in[AGENT_RESP_REQ_LEN], struct agent_resp_request *q,
			      char *err, size_t errlen)
{
	memset(q, 0, sizeof(*q));
	if (memcmp(in, "FJX1", 4) != 0) {
		snprintf(err, errlen, "bad magic (not a Fjord request)");
		return -EINVAL;
	}
	if (in[6] || in[7]) {
		snprintf(err, errlen, "reserved header bytes not zero");
		return -EINVAL;
	}
	q->type = in[4];
	q->flags = in[5];
	if (q->flags & ~AGENT_RESP_F_ANNOUNCE || (q->flags && q->type != AGENT_RESP_ECHO)) {
		snprintf(err, errlen, "unknown request flags 0x%02x for type %u", q->flags,
			 q->type);
		return -EINVAL;
	}
	q->bytes = get_u64(in + 8);
	q->duration_ms = get_u32(in + 16);
	q->request_bytes = get_u32(in + 20);
	q->response_bytes = get_u32(in + 24);
	q->seed = get_u32(in + 28);
	switch (q->type) {
	case AGENT_RESP_ECHO:
	case AGENT_RESP_SINK:
	case AGENT_RESP_INFO:
		return 0;
	case AGENT_RESP_SOURCE:
		if (!q->bytes && !q->duration_ms) {
			snprintf(err, errlen, "source needs bytes or duration_ms");
			return -EINVAL;
		}
		if (q->bytes > AGENT_RESP_MAX_BYTES) {
			snprintf(err, errlen, "source bytes above 2^40");
			return -EINVAL;
		}
		if (q->duration_ms > AGENT_RESP_MAX_DURATION_MS) {
			snprintf(err, errlen, "source duration_ms above %u",
				 AGENT_RESP_MAX_DURATION_MS);
			return -EINVAL;
		}
		return 0;
	case AGENT_RESP_RR:
		if (!q->request_bytes || q->request_bytes > AGENT_RESP_MAX_RR_BYTES) {
			snprintf(err, errlen, "rr request_bytes must be 1..%u (got %u)",
				 AGENT_RESP_MAX_RR_BYTES, q->request_bytes);
			return -EINVAL;
		}
		if (!q->response_bytes || q->response_bytes > AGENT_RESP_MAX_RR_BYTES) {
			snprintf(err, errlen, "rr response_bytes must be 1..%u (got %u)",
				 AGENT_RESP_MAX_RR_BYTES, q->response_bytes);
			return -EINVAL;
		}
		return 0;
	default:
		snprintf(err, errlen, "unknown type %u", q->type);
		return -EINVAL;
	}
}

int agent_resp_reply_decode(const uint8_t in[AGENT_RESP_REPLY_LEN], struct agent_resp_reply *r)
{
	memset(r, 0, sizeof(*r));
	if (memcmp(in, "FJR1", 4) != 0 || in[4] > 1)
		return -EPROTO;
	r->ok = in[4] == 0;
	r->peer_port = (unsigned int)in[6] << 8 | in[7];
	if (in[5] == 4)
		inet_ntop(AF_INET, in + 8, r->peer, sizeof(r->peer));
	else if (in[5] == 6)
		inet_ntop(AF_INET6, in + 8, r->peer, sizeof(r->peer));
	memcpy(r->message, in + 24, 72);
	r->message[72] = 0;
	return 0;
}

int agent_resp_trailer_decode(const uint8_t in[AGENT_RESP_TRAILER_LEN],
			      struct agent_resp_trailer *t)
{
	if (memcmp(in, "FJT1", 4) != 0)
		return -EPROTO;
	t->bytes = get_u64(in + 8);
	memcpy(t->sha256, in + 16, 32);
	return 0;
}

void agent_resp_trailer_encode(const struct agent_resp_trailer *t,
			       uint8_t out[AGENT_RESP_TRAILER_LEN])
{
	memset(out, 0, AGENT_RESP_TRAILER_LEN);
	memcpy(out, "FJT1", 4);
	put_u64(out + 8, t->bytes);
	memcpy(out + 16, t->sha256, 32);
}

void agent_resp_frame_header(uint32_t len, uint8_t out[AGENT_RESP_FRAME_HDR])
{
	put_u32(out, len);
}

ssize_t agent_resp_deframe(struct agent_resp_deframer *d, uint8_t *buf, size_t len)
{
	size_t in = 0, out = 0;

	while (in < len) {
		if (d->done)
			return -EPROTO; /* nothing may follow the trailer */
		if (d->in_trailer) {
			size_t n = AGENT_RESP_TRAILER_LEN - d->trailer_len;

			n = n < len - in ? n : len - in;
			memcpy(d->trailer + d->trailer_len, buf + in, n);
			d->trailer_len += n;
			in += n;
			if (d->trailer_len == AGENT_RESP_TRAILER_LEN) {
				if (agent_resp_trailer_decode(d->trailer, &d->tr) < 0)
					return -EPROTO;
				d->done = 1;
			}
			continue;
		}
		if (d->left == 0) {
			d->hdr[d->hdr_len++] = buf[in++];
			if (d->hdr_len < AGENT_RESP_FRAME_HDR)
				continue;
			d->hdr_len = 0;
			d->left = get_u32(d->hdr);
			if (d->left > AGENT_RESP_FRAME_MAX)
				return -EPROTO;
			if (d->left == 0)
				d->in_trailer = 1;
			continue;
		}
		{
			size_t n = d->left < len - in ? d->left : len - in;

			memmove(buf + out, buf + in, n);
			out += n;
			in += n;
			d->left -= (uint32_t)n;
		}
	}
	return (ssize_t)out;
}

/* splitmix64: a counter-based generator, so any offset is computable directly. */
static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

void agent_resp_fill(uint32_t seed, uint64_t off, uint8_t *buf, size_t len)
{
	uint64_t key = (uint64_t)seed << 40;
	size_t i = 0;

	while (i < len) {
		uint64_t blk = (off + i) / 8, w = mix64(key ^ blk);
		unsigned int b = (unsigned int)((off + i) % 8);

		if (b == 0 && len - i >= 8) {
			for (b = 0; b < 8; b++)
				buf[i + b] = (uint8_t)(w >> (8 * b));
			i += 8;
			continue;
		}
		for (; b < 8 && i < len; b++, i++)
			buf[i] = (uint8_t)(w >> (8 * b));
	}
}

/* ---- connections ------------------------------------------------------------ */

static void conn_close(struct resp_conn *c)
{
	struct agent_responder *r = c->r;
	struct resp_conn **pp;

	for (pp = &r->conns; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	agent_loop_fd_del(r->loop, c->fd);
	close(c->fd);
	r->nconns--;
	EVP_MD_CTX_free(c->md);
	free(c);
}

static void conn_update_mask(struct resp_conn *c)
{
	unsigned int mask = 0;

	if (c->ctl_len > c->ctl_off)
		mask |= AGENT_EV_WRITE;
	switch (c->st) {
	case CS_HEADER:
	case CS_SINK:
	case CS_LINGER:
		mask |= AGENT_EV_READ;
		break;
	case CS_ECHO:
		if (!c->eof && c->len < sizeof(c->buf))
			mask |= AGENT_EV_READ;
		if (c->len > 0)
			mask |= AGENT_EV_WRITE;
		break;
	case CS_SOURCE:
		mask |= AGENT_EV_READ | AGENT_EV_WRITE;
		break;
	case CS_INFO:
		mask |= AGENT_EV_WRITE;
		break;
	case CS_RR:
		if (!c->eof && c->owed < RESP_RR_BACKLOG)
			mask |= AGENT_EV_READ;
		if (c->owed > 0)
			mask |= AGENT_EV_WRITE;
		break;
	case CS_FLUSH_CLOSE:
		break;
	}
	agent_loop_fd_mask(c->r->loop, c->fd, mask);
}

/* 1 when everything is sent, 0 when the socket is full, -1 on error. */
static int send_some(struct resp_conn *c, const uint8_t *p, size_t len, size_t *sent)
{
	*sent = 0;
	while (*sent < len) {
		ssize_t n = send(c->fd, p + *sent, len - *sent, MSG_NOSIGNAL);

		if (n > 0) {
			*sent += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		return -1;
	}
	return 1;
}

static int ctl_flush(struct resp_conn *c)
{
	size_t sent;
	int rc;

	if (c->ctl_off >= c->ctl_len)
		return 1;
	rc = send_some(c, c->ctl + c->ctl_off, c->ctl_len - c->ctl_off, &sent);
	c->ctl_off += sent;
	return rc;
}

static void make_reply(struct resp_conn *c, int ok, const char *msg)
{
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)&c->peer;
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&c->peer;
	uint8_t *p = c->ctl;

	memset(p, 0, AGENT_RESP_REPLY_LEN);
	memcpy(p, "FJR1", 4);
	p[4] = ok ? 0 : 1;
	if (c->peer.ss_family == AF_INET) {
		p[5] = 4;
		memcpy(p + 6, &s4->sin_port, 2);
		memcpy(p + 8, &s4->sin_addr, 4);
	} else if (c->peer.ss_family == AF_INET6) {
		p[5] = 6;
		memcpy(p + 6, &s6->sin6_port, 2);
		memcpy(p + 8, &s6->sin6_addr, 16);
	}
	strncpy((char *)p + 24, msg, 72);
	c->ctl_off = 0;
	c->ctl_len = AGENT_RESP_REPLY_LEN;
}

/* Reads the request header, exactly, so the data after it stays in the socket. */
static int conn_header(struct resp_conn *c)
{
	char err[72];

	while (c->hdr_len < sizeof(c->hdr)) {
		ssize_t n = recv(c->fd, c->hdr + c->hdr_len, sizeof(c->hdr) - c->hdr_len, 0);

		if (n > 0) {
			c->hdr_len += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		return -1; /* closed or broken before a whole header */
	}
	if (agent_resp_request_decode(c->hdr, &c->q, err, sizeof(err)) < 0) {
		c->r->bad_requests++;
		fj_warn("responder: bad request: %s", err);
		make_reply(c, 0, err);
		c->st = CS_FLUSH_CLOSE;
		return 0;
	}
	if (c->q.type == AGENT_RESP_INFO) {
		size_t n = strlen(c->r->info);

		if (!n) {
			make_reply(c, 0, "this agent has no bundled responder");
			c->st = CS_FLUSH_CLOSE;
			return 0;
		}
		make_reply(c, 1, "");
		c->buf[0] = (unsigned char)(n >> 8);
		c->buf[1] = (unsigned char)n;
		memcpy(c->buf + 2, c->r->info, n);
		c->off = 0;
		c->len = n + 2;
		c->st = CS_INFO;
		return 0;
	}
	make_reply(c, 1, "");
	switch (c->q.type) {
	case AGENT_RESP_ECHO:
		c->st = CS_ECHO;
		break;
	case AGENT_RESP_SINK:
		c->md = EVP_MD_CTX_new();
		if (!c->md || !EVP_DigestInit_ex(c->md, EVP_sha256(), NULL))
			return -1;
		c->st = CS_SINK;
		break;
	case AGENT_RESP_SOURCE:
		c->md = EVP_MD_CTX_new();
		if (!c->md || !EVP_DigestInit_ex(c->md, EVP_sha256(), NULL))
			return -1;
		c->st = CS_SOURCE;
		if (c->q.duration_ms)
			c->end_ms = agent_loop_now_ms(c->r->loop) + c->q.duration_ms;
		break;
	default:
		c->st = CS_RR;
		break;
	}
	return 0;
}

static int echo_read(struct resp_conn *c)
{
	while (!c->eof && c->len < sizeof(c->buf)) {
		size_t tail = (c->head + c->len) % sizeof(c->buf);
		size_t room = sizeof(c->buf) - c->len;
		ssize_t n;

		if (tail + room > sizeof(c->buf))
			room = sizeof(c->buf) - tail;
		n = recv(c->fd, c->buf + tail, room, 0);
		if (n > 0) {
			c->len += (size_t)n;
			continue;
		}
		if (n == 0) {
			c->eof = 1;
			break;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			break;
		return -1;
	}
	return 0;
}

static int echo_write(struct resp_conn *c)
{
	while (c->len > 0) {
		size_t chunk = c->len, sent;
		int rc;

		if (c->head + chunk > sizeof(c->buf))
			chunk = sizeof(c->buf) - c->head;
		rc = send_some(c, c->buf + c->head, chunk, &sent);
		c->head = (c->head + sent) % sizeof(c->buf);
		c->len -= sent;
		if (rc <= 0)
			return rc;
	}
	c->head = 0;
	return 0;
}

/* 1 at the client's end of stream, 0 when drained for now, -1 on error. */
static int drain(struct resp_conn *c, uint64_t *got)
{
	size_t budget = RESP_PASS_BYTES;

	*got = 0;
	while (budget > 0) {
		ssize_t n = recv(c->fd, c->buf, sizeof(c->buf), 0);

		if (n > 0) {
			if (c->st == CS_SINK && !EVP_DigestUpdate(c->md, c->buf, (size_t)n))
				return -1;
			*got += (uint64_t)n;
			budget = budget > (size_t)n ? budget - (size_t)n : 0;
			continue;
		}
		if (n == 0)
			return 1;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		return -1;
	}
	return 0;
}

static int sink_io(struct resp_conn *c)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	uint64_t got;
	int rc = drain(c, &got);

	c->owed += got;
	if (rc <= 0)
		return rc;
	if (!EVP_DigestFinal_ex(c->md, md, &mdlen) || mdlen != 32)
		return -1;
	{
		struct agent_resp_trailer tr = { .bytes = c->owed };

		memcpy(tr.sha256, md, 32);
		agent_resp_trailer_encode(&tr, c->ctl);
	}
	c->ctl_off = 0;
	c->ctl_len = AGENT_RESP_TRAILER_LEN;
	c->st = CS_FLUSH_CLOSE;
	return 0;
}

/* Sends generated data up to limit; 1 when limit is reached. */
static int send_generated(struct resp_conn *c, uint64_t limit)
{
	size_t budget = RESP_PASS_BYTES;

	while (c->off < limit && budget > 0) {
		size_t chunk = sizeof(c->buf), sent;
		int rc;

		if (chunk > limit - c->off)
			chunk = (size_t)(limit - c->off);
		agent_resp_fill(c->q.seed, c->off, c->buf, chunk);
		rc = send_some(c, c->buf, chunk, &sent);
		c->off += sent;
		budget = budget > sent ? budget - sent : 0;
		if (rc <= 0)
			return rc;
	}
	return c->off >= limit;
}

/* The end marker and the trailer: what the source sent, counted and hashed. */
static int source_end(struct resp_conn *c)
{
	struct agent_resp_trailer tr = { .bytes = c->off };
	unsigned int mdlen = 0;

	if (!EVP_DigestFinal_ex(c->md, tr.sha256, &mdlen) || mdlen != 32)
		return -1;
	agent_resp_frame_header(0, c->ctl);
	agent_resp_trailer_encode(&tr, c->ctl + AGENT_RESP_FRAME_HDR);
	c->ctl_off = 0;
	c->ctl_len = AGENT_RESP_FRAME_HDR + AGENT_RESP_TRAILER_LEN;
	c->st = CS_FLUSH_CLOSE;
	return 0;
}

/* Frames of the stream; 0 when the socket is full or the budget spent, -1 on error. */
static int source_io(struct resp_conn *c, uint64_t now)
{
	uint64_t limit = c->q.bytes ? c->q.bytes : UINT64_MAX, got;
	size_t budget = RESP_PASS_BYTES;
	int rc;

	/* The client sends nothing after its request; reading shows it closing. */
	rc = drain(c, &got);
	if (rc != 0)
		return -1;
	while (budget > 0) {
		size_t chunk, sent;

		rc = ctl_flush(c);
		if (rc <= 0)
			return rc;
		if (c->frame_left == 0) {
			/* A frame begun is finished; the time is checked between frames. */
			if (c->off >= limit || (c->end_ms && now >= c->end_ms))
				return source_end(c);
			c->frame_left = limit - c->off < AGENT_RESP_FRAME_MAX
						? (uint32_t)(limit - c->off)
						: AGENT_RESP_FRAME_MAX;
			agent_resp_frame_header(c->frame_left, c->ctl);
			c->ctl_off = 0;
			c->ctl_len = AGENT_RESP_FRAME_HDR;
			continue;
		}
		chunk = c->frame_left;
		agent_resp_fill(c->q.seed, c->off, c->buf, chunk);
		rc = send_some(c, c->buf, chunk, &sent);
		if (sent && !EVP_DigestUpdate(c->md, c->buf, sent))
			return -1;
		c->off += sent;
		c->frame_left -= (uint32_t)sent;
		budget = budget > sent ? budget - sent : 0;
		if (rc <= 0)
			return rc;
	}
	return 0;
}

static int rr_io(struct resp_conn *c)
{
	size_t budget = RESP_PASS_BYTES;

	while (!c->eof && c->owed < RESP_RR_BACKLOG && budget > 0) {
		ssize_t n = recv(c->fd, c->buf, sizeof(c->buf), 0);

		if (n > 0) {
			c->req_got += (uint64_t)n;
			c->owed += c->req_got / c->q.request_bytes * c->q.response_bytes;
			c->req_got %= c->q.request_bytes;
			budget = budget > (size_t)n ? budget - (size_t)n : 0;
			continue;
		}
		if (n == 0) {
			c->eof = 1;
			break;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			break;
		return -1;
	}
	if (c->owed > 0) {
		uint64_t before = c->off;
		int rc = send_generated(c, c->off + c->owed);

		c->owed -= c->off - before;
		if (rc < 0)
			return -1;
	}
	return c->eof && c->owed == 0 ? -1 : 0;
}

static void on_conn(struct agent_loop *loop, int fd, unsigned int ev, void *arg)
{
	struct resp_conn *c = arg;
	int rc = 0;

	(void)fd;
	(void)ev;
	c->last_ms = agent_loop_now_ms(loop);
	if (c->st == CS_HEADER && conn_header(c) < 0)
		goto close;
	rc = ctl_flush(c);
	if (rc < 0)
		goto close;
	if (rc == 0) {
		conn_update_mask(c);
		return;
	}
	switch (c->st) {
	case CS_HEADER:
		break;
	case CS_FLUSH_CLOSE:
		shutdown(c->fd, SHUT_WR);
		c->st = CS_LINGER;
		/* fall through */
	case CS_LINGER: {
		uint64_t got;

		if (drain(c, &got) != 0)
			goto close;
		break;
	}
	case CS_ECHO:
		if (echo_read(c) < 0 || echo_write(c) < 0 || (c->eof && c->len == 0))
			goto close;
		break;
	case CS_SINK:
		if (sink_io(c) < 0)
			goto close;
		/* The trailer may go out at once; the client has closed its side already. */
		if (c->st == CS_FLUSH_CLOSE && ctl_flush(c) != 0)
			goto close;
		break;
	case CS_SOURCE:
		if (source_io(c, c->last_ms) < 0)
			goto close;
		break;
	case CS_RR:
		if (rr_io(c) < 0)
			goto close;
		break;
	case CS_INFO: {
		size_t sent;

		rc = send_some(c, c->buf + c->off, c->len - c->off, &sent);
		c->off += sent;
		if (rc < 0)
			goto close;
		if (rc == 1) {
			shutdown(c->fd, SHUT_WR);
			c->st = CS_LINGER;
		}
		break;
	}
	}
	conn_update_mask(c);
	return;
close:
	conn_close(c);
}

static void on_accept(struct agent_loop *loop, int lfd, unsigned int ev, void *arg)
{
	struct agent_responder *r = arg;

	(void)ev;
	for (;;) {
		struct sockaddr_storage peer;
		socklen_t pl = sizeof(peer);
		int fd = accept4(lfd, (struct sockaddr *)&peer, &pl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct resp_conn *c;

		if (fd < 0)
			return; /* EAGAIN, or a transient error: the listener stays */
		if (r->nconns >= r->max_conns) {
			r->refused++;
			fj_warn("responder: %u connections open (the cap); refusing one",
				r->nconns);
			close(fd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (!c || agent_loop_fd_set(loop, fd, AGENT_EV_READ, on_conn, c) < 0) {
			free(c);
			close(fd);
			continue;
		}
		c->r = r;
		c->fd = fd;
		c->peer = peer;
		c->st = CS_HEADER;
		c->last_ms = agent_loop_now_ms(loop);
		c->next = r->conns;
		r->conns = c;
		r->nconns++;
	}
}

static void on_sweep(struct agent_loop *loop, uint64_t id, void *arg)
{
	struct agent_responder *r = arg;
	uint64_t now = agent_loop_now_ms(loop);
	struct resp_conn *c = r->conns, *next;

	(void)id;
	for (; c; c = next) {
		next = c->next;
		/*
		 * A source whose socket stays full past its duration is not cut
		 * here: it finishes its frame and sends its trailer once the
		 * client reads, and a client that stopped reading is idle.
		 */
		if (now - c->last_ms >= (uint64_t)r->idle_s * 1000) {
			r->idle_closed++;
			conn_close(c);
		}
	}
	r->sweep_timer = agent_loop_timer_add(loop, 1000, on_sweep, r);
}

static int open_listener(struct agent_responder *r, const char *addr, int force_tcp, char *err,
			 unsigned int errlen)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	socklen_t sl;
	int af, fd = -1, one = 1, proto = IPPROTO_MPTCP;

	if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
		af = AF_INET;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)r->port);
		sl = sizeof(*s4);
	} else if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
		af = AF_INET6;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)r->port);
		sl = sizeof(*s6);
	} else {
		snprintf(err, errlen, "responder: '%s' is not an address", addr);
		return -EINVAL;
	}
	if (!force_tcp)
		fd = socket(af, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_MPTCP);
	if (fd < 0) {
		proto = IPPROTO_TCP;
		fd = socket(af, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
	}
	if (fd < 0)
		goto fail;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (af == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 128) < 0)
		goto fail;
	if (r->port == 0) {
		sl = sizeof(ss);
		getsockname(fd, (struct sockaddr *)&ss, &sl);
		r->port = ntohs(af == AF_INET ? s4->sin_port : s6->sin6_port);
	}
	if (agent_loop_fd_set(r->loop, fd, AGENT_EV_READ, on_accept, r) < 0)
		goto fail;
	r->lfd[r->nl++] = fd;
	if (proto == IPPROTO_MPTCP)
		r->proto = IPPROTO_MPTCP;
	fj_info("responder: listening on [%s]:%u (%s)", addr, r->port,
		proto == IPPROTO_MPTCP ? "MPTCP" : "TCP");
	return 0;
fail:
	proto = errno ? errno : EIO;
	snprintf(err, errlen, "responder: cannot listen on [%s]:%u: %s", addr, r->port,
		 strerror(proto));
	if (fd >= 0)
		close(fd);
	return -proto;
}

int agent_responder_create(struct agent_loop *loop, const struct agent_responder_cfg *cfg,
			   struct agent_responder **out, char *err, unsigned int errlen)
{
	static const char *const wildcard[] = { "0.0.0.0", "::" };
	const char *const *addrs = cfg->n_addrs ? cfg->addrs : wildcard;
	unsigned int n = cfg->n_addrs ? cfg->n_addrs : 2, i;
	struct agent_responder *r;
	int rc = 0;

	if (n > RESP_MAX_LISTEN || cfg->port > 65535 || !cfg->max_conns || !cfg->idle_s) {
		snprintf(err, errlen, "responder: bad settings");
		return -EINVAL;
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->loop = loop;
	r->port = cfg->port;
	r->proto = IPPROTO_TCP;
	r->max_conns = cfg->max_conns;
	r->idle_s = cfg->idle_s;
	if (cfg->bundled_info && strlen(cfg->bundled_info) > AGENT_RESP_INFO_MAX) {
		snprintf(err, errlen, "responder: bundled info above %u bytes",
			 AGENT_RESP_INFO_MAX);
		free(r);
		return -EINVAL;
	}
	snprintf(r->info, sizeof(r->info), "%s", cfg->bundled_info ? cfg->bundled_info : "");
	for (i = 0; i < n; i++) {
		char e[200];
		int lrc = open_listener(r, addrs[i], cfg->force_tcp, e, sizeof(e));

		/* A host without IPv6 still serves IPv4 on the wildcard. */
		if (lrc < 0 && !cfg->n_addrs && strcmp(addrs[i], "::") == 0) {
			fj_warn("%s", e);
			continue;
		}
		if (lrc < 0) {
			snprintf(err, errlen, "%s", e);
			rc = lrc;
			break;
		}
	}
	if (!rc && r->nl == 0)
		rc = -EADDRNOTAVAIL;
	if (!rc)
		r->sweep_timer = agent_loop_timer_add(loop, 1000, on_sweep, r);
	if (rc) {
		agent_responder_destroy(r);
		return rc;
	}
	*out = r;
	return 0;
}

void agent_responder_destroy(struct agent_responder *r)
{
	unsigned int i;

	if (!r)
		return;
	/*
	 * A responder going away aborts what it serves: with a zero linger
	 * the close resets the connection (MP_FASTCLOSE on MPTCP) instead of
	 * flushing what is queued and ending with a FIN, which a client of a
	 * duration-bound download could not tell from the stream's normal end.
	 */
	while (r->conns) {
		struct linger lg = { 1, 0 };

		setsockopt(r->conns->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		conn_close(r->conns);
	}
	for (i = 0; i < r->nl; i++) {
		agent_loop_fd_del(r->loop, r->lfd[i]);
		close(r->lfd[i]);
	}
	if (r->sweep_timer)
		agent_loop_timer_del(r->loop, r->sweep_timer);
	free(r);
}

unsigned int agent_responder_port(const struct agent_responder *r)
{
	return r->port;
}

int agent_responder_protocol(const struct agent_responder *r)
{
	return r->proto;
}

unsigned int agent_responder_conns(const struct agent_responder *r)
{
	return r->nconns;
}

unsigned long agent_responder_refused(const struct agent_responder *r)
{
	return r->refused;
}

unsigned long agent_responder_idle_closed(const struct agent_responder *r)
{
	return r->idle_closed;
}

unsigned long agent_responder_bad_requests(const struct agent_responder *r)
{
	return r->bad_requests;
}
