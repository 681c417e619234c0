/*
 * Sequence-number rewriting seen from one end, tracebox-style: TCP SYNs to
 * the responder's port with a growing TTL (hop limit). Every router whose TTL
 * check drops one answers with an ICMP time exceeded that quotes the segment
 * as that router received it: the IP header and at least the first 8 bytes of
 * TCP (RFC 792, RFC 1812 4.3.2.3; Linux quotes the whole SYN), which hold the
 * ports and the sequence number. A quoted sequence number that differs from
 * the one sent means that a box before that router rewrote it. The ends of a
 * connection cannot see this from their sockets: a box that shifts sequence
 * numbers one way and acknowledgments back the other way is invisible to
 * both, and MPTCP's DSS mappings are relative to the subflow's initial
 * sequence number, so they survive it.
 *
 * The packet work (building the SYN, reading a quote) is pure and unit-tested;
 * exp_tbox_run() does the I/O with raw sockets (CAP_NET_RAW).
 */
#ifndef EXP_TRACEBOX_H
#define EXP_TRACEBOX_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define EXP_TBOX_MAX_TTL 16
#define EXP_TBOX_SYN_LEN 24 /* TCP header with an MSS option */

/*
 * Builds a TCP SYN from src to dst (both AF_INET or both AF_INET6, ports
 * included) with sequence number seq into buf (at least EXP_TBOX_SYN_LEN),
 * checksum included. Returns its length or -EINVAL.
 */
int exp_tbox_syn(uint8_t *buf, size_t cap, const struct sockaddr_storage *src,
		 const struct sockaddr_storage *dst, uint32_t seq);

enum exp_tbox_kind {
	EXP_TBOX_OTHER,	   /* not about our probe */
	EXP_TBOX_QUOTE,	   /* an ICMP time exceeded quoting our SYN */
	EXP_TBOX_UNREACH,  /* an ICMP destination unreachable quoting it */
	EXP_TBOX_ANSWERED, /* a TCP segment from the destination: it was reached */
};

struct exp_tbox_pkt {
	enum exp_tbox_kind kind;
	uint32_t seq;  /* the quoted sequence number (QUOTE, UNREACH) */
	char from[46]; /* who sent the ICMP or the segment */
};

/*
 * Reads one received packet: an ICMP (with its IPv4 header, as a raw IPv4
 * socket gives it) or ICMPv6 (without, as a raw IPv6 socket gives it) message
 * when icmp is set, else a TCP segment with its IPv4 header (raw IPv4 TCP
 * socket) or without (raw IPv6). Matches it against our probe: the quoted
 * segment must go to dst's address and port from src's port. from is the
 * sender's address (IPv6 raw sockets do not give the header). 0, or -EINVAL
 * for a packet cut short or malformed (then p->kind is EXP_TBOX_OTHER).
 */
int exp_tbox_parse(const uint8_t *pkt, size_t len, int family, int icmp,
		   const struct sockaddr_storage *src, const struct sockaddr_storage *dst,
		   const struct sockaddr_storage *from, struct exp_tbox_pkt *p);

struct exp_tbox_result {
	unsigned int sent;	  /* SYNs sent (one per TTL) */
	unsigned int quotes;	  /* routers whose quote was compared */
	unsigned int rewritten;	  /* 1: a quote differed from what was sent */
	unsigned int rewrite_ttl; /* the first TTL whose quote differed */
	int64_t delta;		  /* quoted - sent at that hop (mod 2^32, signed) */
	unsigned int reached;	  /* the destination answered (at TTL reached_ttl) */
	unsigned int reached_ttl;
	char rewrite_router[46]; /* the router that quoted the rewritten segment */
	char error[160];	 /* why the check could not run ("" when it did) */
};

/*
 * Sends SYNs from src (its port is the probe's source port) to dst with TTL
 * 1..max_ttl, one at a time, each waiting up to hop_ms for its ICMP; stops
 * when the destination answers, after max_ttl, or after total_ms. 0 when it
 * ran (r says what it saw), or a negative errno with r->error (no raw
 * socket, for example).
 */
int exp_tbox_run(const struct sockaddr_storage *src, const struct sockaddr_storage *dst,
		 unsigned int max_ttl, unsigned int hop_ms, unsigned int total_ms,
		 struct exp_tbox_result *r);

#endif
