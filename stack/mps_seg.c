/*
 * IPv4/IPv6 + TCP decoding. IPv6 extension headers are not walked: the
 * stack never sends them and a peer's would be reported, not misread.
 */
#include <endian.h>
#include <errno.h>
#include <string.h>

#include "mps_seg.h"
#include "prot/ip4.h"
#include "prot/ip6.h"
#include "prot/tcp.h"
#include "prot/wire.h"

static const char *const seg_err_names[MPS_SEG_E_COUNT] = {
	[MPS_SEG_OK] = "ok",
	[MPS_SEG_E_SHORT] = "short",
	[MPS_SEG_E_VERSION] = "version",
	[MPS_SEG_E_IP_HLEN] = "ip_hlen",
	[MPS_SEG_E_IP_LEN] = "ip_len",
	[MPS_SEG_E_FRAGMENT] = "fragment",
	[MPS_SEG_E_NOT_TCP] = "not_tcp",
	[MPS_SEG_E_TCP_SHORT] = "tcp_short",
	[MPS_SEG_E_TCP_DOFF] = "tcp_doff",
};

const char *mps_seg_err_name(enum mps_seg_err err)
{
	if ((unsigned int)err >= MPS_SEG_E_COUNT)
		return "unknown";
	return seg_err_names[err];
}

uint32_t mps_csum_add(uint32_t sum, const uint8_t *p, size_t len)
{
	/*
	 * The sum does not depend on byte order (RFC 1071 §2(B)): add host-order
	 * 32-bit words into 64 bits, fold, and turn the result to network order
	 * once. Several times faster than word by word on a 64 KiB segment. Four
	 * sums over 16 bytes a round keep the adds independent of each other, so
	 * the CPU overlaps them (one sum makes each add wait for the one before).
	 */
	uint64_t acc, a[4] = { 0, 0, 0, 0 };
	uint32_t w, q[4];
	uint16_t h = 0;

	while (len >= 16) {
		memcpy(q, p, 16);
		a[0] += q[0];
		a[1] += q[1];
		a[2] += q[2];
		a[3] += q[3];
		p += 16;
		len -= 16;
	}
	acc = a[0] + a[1] + a[2] + a[3]; /* each below 2^32 times len / 16: no overflow */
	while (len >= 4) {
		memcpy(&w, p, 4);
		acc += w;
		p += 4;
		len -= 4;
	}
	if (len >= 2) {
		memcpy(&h, p, 2);
		acc += h;
		p += 2;
		len -= 2;
	}
	if (len) {
		h = 0;
		memcpy(&h, p, 1); /* first in memory: the high byte of a big-endian word */
		acc += h;
	}
	while (acc >> 16)
		acc = (acc & 0xffff) + (acc >> 16);
	return sum + be16toh((uint16_t)acc);
}

static int fail(enum mps_seg_err *err, enum mps_seg_err why)
{
	*err = why;
	return -EBADMSG;
}

/* Finds the TCP header; sets *hlen (IP header) and *tot (IP total length). */
static int parse_ip(const uint8_t *pkt, size_t cap, struct mps_seg *seg, size_t *hlen, size_t *tot,
		    enum mps_seg_err *err)
{
	if (cap < 1)
		return fail(err, MPS_SEG_E_SHORT);
	memset(seg->src, 0, sizeof(seg->src));
	memset(seg->dst, 0, sizeof(seg->dst));
	if (pkt[0] >> 4 == 4) {
		if (cap < MPS_IP4_HLEN_MIN)
			return fail(err, MPS_SEG_E_SHORT);
		*hlen = (size_t)(pkt[MPS_IP4_OFF_VHL] & 0x0f) * 4;
		if (*hlen < MPS_IP4_HLEN_MIN || *hlen > cap)
			return fail(err, MPS_SEG_E_IP_HLEN);
		*tot = mps_get_be16(pkt + MPS_IP4_OFF_LEN);
		if (*tot < *hlen)
			return fail(err, MPS_SEG_E_IP_LEN);
		if (mps_get_be16(pkt + MPS_IP4_OFF_FRAG) & (MPS_IP4_FRAG_MF | MPS_IP4_FRAG_MASK))
			return fail(err, MPS_SEG_E_FRAGMENT);
		if (pkt[MPS_IP4_OFF_PROTO] != MPS_IPPROTO_TCP)
			return fail(err, MPS_SEG_E_NOT_TCP);
		seg->family = 4;
		memcpy(seg->src, pkt + MPS_IP4_OFF_SRC, 4);
		memcpy(seg->dst, pkt + MPS_IP4_OFF_DST, 4);
		return 0;
	}
	if (pkt[0] >> 4 == 6) {
		if (cap < MPS_IP6_HLEN)
			return fail(err, MPS_SEG_E_SHORT);
		*hlen = MPS_IP6_HLEN;
		*tot = MPS_IP6_HLEN + (size_t)mps_get_be16(pkt + MPS_IP6_OFF_PLEN);
		if (pkt[MPS_IP6_OFF_NXT] != MPS_IPPROTO_TCP)
			return fail(err, MPS_SEG_E_NOT_TCP);
		seg->family = 6;
		memcpy(seg->src, pkt + MPS_IP6_OFF_SRC, 16);
		memcpy(seg->dst, pkt + MPS_IP6_OFF_DST, 16);
		return 0;
	}
	return fail(err, MPS_SEG_E_VERSION);
}

int mps_seg_parse(const uint8_t *pkt, size_t cap, int truncated_ok, struct mps_seg *seg,
		  enum mps_seg_err *err)
{
	const uint8_t *t;
	size_t hlen, tot, doff, have;
	int rc;

	*err = MPS_SEG_OK;
	rc = parse_ip(pkt, cap, seg, &hlen, &tot, err);
	if (rc)
		return rc;
	/* Link layers may pad short frames, so only a shortfall is an error. */
	if (tot > cap && !truncated_ok)
		return fail(err, MPS_SEG_E_IP_LEN);
	have = tot < cap ? tot : cap;
	if (have < hlen + MPS_TCP_HLEN_MIN)
		return fail(err,
			    tot < hlen + MPS_TCP_HLEN_MIN ? MPS_SEG_E_IP_LEN : MPS_SEG_E_TCP_SHORT);
	t = pkt + hlen;
	doff = (size_t)(t[MPS_TCP_OFF_DOFF] >> 4) * 4;
	if (doff < MPS_TCP_HLEN_MIN || hlen + doff > tot)
		return fail(err, MPS_SEG_E_TCP_DOFF);
	if (hlen + doff > have)
		return fail(err, MPS_SEG_E_TCP_SHORT);
	seg->tcp = t;
	seg->sport = mps_get_be16(t + MPS_TCP_OFF_SPORT);
	seg->dport = mps_get_be16(t + MPS_TCP_OFF_DPORT);
	seg->seq = mps_get_be32(t + MPS_TCP_OFF_SEQ);
	seg->ack = mps_get_be32(t + MPS_TCP_OFF_ACK);
	seg->flags = t[MPS_TCP_OFF_FLAGS];
	seg->win = mps_get_be16(t + MPS_TCP_OFF_WIN);
	seg->tcp_csum = mps_get_be16(t + MPS_TCP_OFF_CSUM);
	seg->opts = t + MPS_TCP_HLEN_MIN;
	seg->opts_len = (uint8_t)(doff - MPS_TCP_HLEN_MIN);
	seg->payload = t + doff;
	seg->payload_len = (uint32_t)(tot - hlen - doff);
	seg->payload_cap = (uint32_t)(have - hlen - doff);
	return 0;
}
