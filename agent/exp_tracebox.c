/* TTL-limited SYNs and the ICMP quotes they draw: sequence-number rewriting seen from one end. */
#include "exp_tracebox.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "fj_clock.h"

#define TBOX_MSS 1460
#define TBOX_RX	 1500

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)get16(p) << 16 | get16(p + 2);
}

static uint32_t sum16(const uint8_t *p, size_t n, uint32_t acc)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		acc += (uint32_t)p[i] << 8 | p[i + 1];
	if (n & 1)
		acc += (uint32_t)p[n - 1] << 8;
	return acc;
}

/* The address bytes and port of a sockaddr; 0 or -EINVAL. */
static int addr_of(const struct sockaddr_storage *ss, const uint8_t **a, size_t *alen,
		   uint16_t *port)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;

		*a = (const uint8_t *)&s4->sin_addr;
		*alen = 4;
		*port = ntohs(s4->sin_port);
		return 0;
	}
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;

		*a = (const uint8_t *)&s6->sin6_addr;
		*alen = 16;
		*port = ntohs(s6->sin6_port);
		return 0;
	}
	return -EINVAL;
}

int exp_tbox_syn(uint8_t *buf, size_t cap, const struct sockaddr_storage *src,
		 const struct sockaddr_storage *dst, uint32_t seq)
{
	const uint8_t *sa, *da;
	size_t sl, dl;
	uint16_t sp, dp;
	uint32_t acc;

	if (cap < EXP_TBOX_SYN_LEN || addr_of(src, &sa, &sl, &sp) || addr_of(dst, &da, &dl, &dp) ||
	    sl != dl)
		return -EINVAL;
	memset(buf, 0, EXP_TBOX_SYN_LEN);
	put16(buf, sp);
	put16(buf + 2, dp);
	put32(buf + 4, seq);
	buf[12] = (EXP_TBOX_SYN_LEN / 4) << 4;
	buf[13] = 0x02; /* SYN */
	put16(buf + 14, 64240);
	buf[20] = 2; /* MSS, as every real SYN carries one */
	buf[21] = 4;
	put16(buf + 22, TBOX_MSS);
	/* Pseudo-header: addresses, protocol and TCP length (RFC 9293 3.1, RFC 8200 8.1). */
	acc = sum16(sa, sl, 0);
	acc = sum16(da, dl, acc);
	acc += IPPROTO_TCP + EXP_TBOX_SYN_LEN;
	acc = sum16(buf, EXP_TBOX_SYN_LEN, acc);
	while (acc >> 16)
		acc = (acc & 0xffff) + (acc >> 16);
	put16(buf + 16, (uint16_t)~acc);
	return EXP_TBOX_SYN_LEN;
}

static void addr_text(int family, const uint8_t *a, char *out, size_t len)
{
	if (!inet_ntop(family, a, out, (socklen_t)len))
		snprintf(out, len, "?");
}

/*
 * The quoted segment (IP header, then TCP) of an ICMP error: does it go from
 * src's port to dst's address and port? Fills the quoted sequence number.
 */
static int quoted_ours(const uint8_t *q, size_t len, int family, const struct sockaddr_storage *src,
		       const struct sockaddr_storage *dst, uint32_t *seq)
{
	const uint8_t *sa, *da;
	size_t sl, dl, ihl;
	uint16_t sp, dp;

	if (addr_of(src, &sa, &sl, &sp) || addr_of(dst, &da, &dl, &dp))
		return -EINVAL;
	if (family == AF_INET) {
		if (len < 20 || (q[0] >> 4) != 4)
			return -EINVAL;
		ihl = (size_t)(q[0] & 0xf) * 4;
		if (ihl < 20 || len < ihl + 8)
			return -EINVAL;
		if (q[9] != IPPROTO_TCP || memcmp(q + 16, da, 4))
			return 0;
	} else {
		if (len < 48 || (q[0] >> 4) != 6)
			return -EINVAL;
		ihl = 40;
		/* Behind extension headers it is not a SYN we sent. */
		if (q[6] != IPPROTO_TCP || memcmp(q + 24, da, 16))
			return 0;
	}
	if (get16(q + ihl) != sp || get16(q + ihl + 2) != dp)
		return 0;
	*seq = get32(q + ihl + 4);
	return 1;
}

static int parse_icmp(const uint8_t *pkt, size_t len, int family,
		      const struct sockaddr_storage *src, const struct sockaddr_storage *dst,
		      const struct sockaddr_storage *from, struct exp_tbox_pkt *p)
{
	size_t off = 0;
	uint8_t type, code;
	int r;

	if (family == AF_INET) {
		if (len < 20 || (pkt[0] >> 4) != 4)
			return -EINVAL;
		off = (size_t)(pkt[0] & 0xf) * 4;
		if (off < 20 || pkt[9] != IPPROTO_ICMP)
			return -EINVAL;
		addr_text(AF_INET, pkt + 12, p->from, sizeof(p->from));
	} else if (from && from->ss_family == AF_INET6) {
		addr_text(AF_INET6,
			  (const uint8_t *)&((const struct sockaddr_in6 *)from)->sin6_addr, p->from,
			  sizeof(p->from));
	}
	if (len < off + 8)
		return -EINVAL;
	type = pkt[off];
	code = pkt[off + 1];
	if (family == AF_INET && type == 11 && code == 0)
		p->kind = EXP_TBOX_QUOTE;
	else if (family == AF_INET && type == 3)
		p->kind = EXP_TBOX_UNREACH;
	else if (family == AF_INET6 && type == ICMP6_TIME_EXCEEDED && code == 0)
		p->kind = EXP_TBOX_QUOTE;
	else if (family == AF_INET6 && type == ICMP6_DST_UNREACH)
		p->kind = EXP_TBOX_UNREACH;
	else
		return 0;
	r = quoted_ours(pkt + off + 8, len - off - 8, family, src, dst, &p->seq);
	if (r != 1)
		p->kind = EXP_TBOX_OTHER;
	return r < 0 ? r : 0;
}

static int parse_tcp(const uint8_t *pkt, size_t len, int family, const struct sockaddr_storage *src,
		     const struct sockaddr_storage *dst, const struct sockaddr_storage *from,
		     struct exp_tbox_pkt *p)
{
	const uint8_t *sa, *da, *fa;
	size_t sl, dl, off = 0;
	uint16_t sp, dp;

	if (addr_of(src, &sa, &sl, &sp) || addr_of(dst, &da, &dl, &dp))
		return -EINVAL;
	if (family == AF_INET) {
		if (len < 20 || (pkt[0] >> 4) != 4)
			return -EINVAL;
		off = (size_t)(pkt[0] & 0xf) * 4;
		if (off < 20)
			return -EINVAL;
		fa = pkt + 12;
	} else {
		if (!from || from->ss_family != AF_INET6)
			return -EINVAL;
		fa = (const uint8_t *)&((const struct sockaddr_in6 *)from)->sin6_addr;
	}
	if (len < off + 20)
		return -EINVAL;
	/* From the destination's port to ours: the SYN got through. */
	if (memcmp(fa, da, dl) || get16(pkt + off) != dp || get16(pkt + off + 2) != sp)
		return 0;
	p->kind = EXP_TBOX_ANSWERED;
	addr_text(family, fa, p->from, sizeof(p->from));
	return 0;
}

int exp_tbox_parse(const uint8_t *pkt, size_t len, int family, int icmp,
		   const struct sockaddr_storage *src, const struct sockaddr_storage *dst,
		   const struct sockaddr_storage *from, struct exp_tbox_pkt *p)
{
	int r;

	memset(p, 0, sizeof(*p));
	if (family != AF_INET && family != AF_INET6)
		return -EINVAL;
	r = icmp ? parse_icmp(pkt, len, family, src, dst, from, p)
		 : parse_tcp(pkt, len, family, src, dst, from, p);
	if (r < 0)
		p->kind = EXP_TBOX_OTHER;
	return r;
}

/* ---- I/O ---- */

struct tbox_io {
	int tcp, icmp, family;
	struct sockaddr_storage src, dst, to;
	uint32_t sent_seq[EXP_TBOX_MAX_TTL + 1];
	unsigned int n_sent;
};

static int tbox_open(struct tbox_io *io, struct exp_tbox_result *r)
{
	struct sockaddr_storage b = io->src;
	socklen_t blen = io->family == AF_INET ? sizeof(struct sockaddr_in)
					       : sizeof(struct sockaddr_in6);

	io->tcp = socket(io->family, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_TCP);
	io->icmp = socket(io->family, SOCK_RAW | SOCK_CLOEXEC,
			  io->family == AF_INET ? IPPROTO_ICMP : IPPROTO_ICMPV6);
	if (io->tcp < 0 || io->icmp < 0) {
		int e = errno;

		snprintf(r->error, sizeof(r->error), "raw socket: %s (needs CAP_NET_RAW)",
			 strerror(e));
		return -e;
	}
	/* A raw socket takes no port; the source port is written into the SYN. */
	if (io->family == AF_INET)
		((struct sockaddr_in *)&b)->sin_port = 0;
	else
		((struct sockaddr_in6 *)&b)->sin6_port = 0;
	if (bind(io->tcp, (struct sockaddr *)&b, blen) < 0) {
		int e = errno;

		snprintf(r->error, sizeof(r->error), "binding the raw socket: %s", strerror(e));
		return -e;
	}
	if (io->family == AF_INET6) {
		struct icmp6_filter flt;

		ICMP6_FILTER_SETBLOCKALL(&flt);
		ICMP6_FILTER_SETPASS(ICMP6_TIME_EXCEEDED, &flt);
		ICMP6_FILTER_SETPASS(ICMP6_DST_UNREACH, &flt);
		setsockopt(io->icmp, IPPROTO_ICMPV6, ICMP6_FILTER, &flt, sizeof(flt));
	}
	/* An IPv6 raw socket reads a non-zero port as the protocol: send to port 0. */
	io->to = io->dst;
	if (io->family == AF_INET)
		((struct sockaddr_in *)&io->to)->sin_port = 0;
	else
		((struct sockaddr_in6 *)&io->to)->sin6_port = 0;
	return 0;
}

static int tbox_send(struct tbox_io *io, unsigned int ttl, uint32_t seq, struct exp_tbox_result *r)
{
	uint8_t syn[EXP_TBOX_SYN_LEN];
	int hops = (int)ttl, rc;

	rc = io->family == AF_INET
		     ? setsockopt(io->tcp, IPPROTO_IP, IP_TTL, &hops, sizeof(hops))
		     : setsockopt(io->tcp, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &hops, sizeof(hops));
	if (rc < 0 || exp_tbox_syn(syn, sizeof(syn), &io->src, &io->dst, seq) < 0 ||
	    sendto(io->tcp, syn, sizeof(syn), 0, (struct sockaddr *)&io->to,
		   io->family == AF_INET ? sizeof(struct sockaddr_in)
					 : sizeof(struct sockaddr_in6)) < 0) {
		int e = errno ? errno : EINVAL;

		snprintf(r->error, sizeof(r->error), "sending the SYN with TTL %u: %s", ttl,
			 strerror(e));
		return -e;
	}
	io->sent_seq[io->n_sent++] = seq;
	r->sent++;
	return 0;
}

static int was_sent(const struct tbox_io *io, uint32_t seq)
{
	for (unsigned int i = 0; i < io->n_sent; i++)
		if (io->sent_seq[i] == seq)
			return 1;
	return 0;
}

/* Reads what is there; 1 when this hop is done, 2 when the whole run is, else 0. */
static int tbox_read(struct tbox_io *io, int fd, unsigned int ttl, uint32_t seq,
		     struct exp_tbox_result *r)
{
	uint8_t buf[TBOX_RX];
	struct sockaddr_storage from;
	socklen_t fl = sizeof(from);
	struct exp_tbox_pkt p;
	ssize_t n;

	n = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
	if (n <= 0)
		return 0;
	if (exp_tbox_parse(buf, (size_t)n, io->family, fd == io->icmp, &io->src, &io->dst, &from,
			   &p) < 0)
		return 0;
	switch (p.kind) {
	case EXP_TBOX_ANSWERED:
		r->reached = 1;
		r->reached_ttl = ttl;
		return 2;
	case EXP_TBOX_UNREACH:
		return 2;
	case EXP_TBOX_QUOTE:
		r->quotes++;
		if (!was_sent(io, p.seq) && !r->rewritten) {
			r->rewritten = 1;
			r->rewrite_ttl = ttl;
			r->delta = (int32_t)(p.seq - seq);
			snprintf(r->rewrite_router, sizeof(r->rewrite_router), "%s", p.from);
		}
		return 1;
	default:
		return 0;
	}
}

int exp_tbox_run(const struct sockaddr_storage *src, const struct sockaddr_storage *dst,
		 unsigned int max_ttl, unsigned int hop_ms, unsigned int total_ms,
		 struct exp_tbox_result *r)
{
	struct tbox_io io = { .tcp = -1, .icmp = -1, .family = src->ss_family };
	uint64_t end = fj_mono_ms() + total_ms;
	uint32_t base;
	int rc = 0, done = 0;

	memset(r, 0, sizeof(*r));
	if ((src->ss_family != AF_INET && src->ss_family != AF_INET6) ||
	    src->ss_family != dst->ss_family || max_ttl == 0 || max_ttl > EXP_TBOX_MAX_TTL) {
		snprintf(r->error, sizeof(r->error), "bad addresses or TTL range");
		return -EINVAL;
	}
	io.src = *src;
	io.dst = *dst;
	if (getrandom(&base, sizeof(base), 0) != sizeof(base))
		base = (uint32_t)fj_mono_ms() * 2654435761u;
	rc = tbox_open(&io, r);
	for (unsigned int ttl = 1; !rc && done < 2 && ttl <= max_ttl && fj_mono_ms() < end; ttl++) {
		/* Far apart, so that a shift by any delta is not another TTL's number. */
		uint32_t seq = base + ttl * 0x10000001u;
		uint64_t hop_end = fj_mono_ms() + hop_ms;

		rc = tbox_send(&io, ttl, seq, r);
		done = 0;
		while (!rc && !done && fj_mono_ms() < hop_end && fj_mono_ms() < end) {
			struct pollfd pf[2] = { { io.tcp, POLLIN, 0 }, { io.icmp, POLLIN, 0 } };
			uint64_t now = fj_mono_ms(), stop = hop_end < end ? hop_end : end;

			if (poll(pf, 2, (int)(stop > now ? stop - now : 0)) <= 0)
				continue;
			for (int i = 0; i < 2 && done < 2; i++)
				if (pf[i].revents & POLLIN) {
					int d = tbox_read(&io, pf[i].fd, ttl, seq, r);

					done = d > done ? d : done;
				}
		}
	}
	if (io.tcp >= 0)
		close(io.tcp);
	if (io.icmp >= 0)
		close(io.icmp);
	return rc;
}
