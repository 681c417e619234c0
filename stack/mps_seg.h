/*
 * Segment decoding: an IPv4 or IPv6 packet carrying TCP, split into the
 * fields the stack uses. Pure, no allocation; the result points into the
 * caller's buffer and is valid as long as that buffer is.
 */
#ifndef MPS_SEG_H
#define MPS_SEG_H

#include <stddef.h>
#include <stdint.h>

enum mps_seg_err {
	MPS_SEG_OK = 0,
	MPS_SEG_E_SHORT,     /* shorter than the IP header */
	MPS_SEG_E_VERSION,   /* not IPv4 or IPv6 */
	MPS_SEG_E_IP_HLEN,   /* IPv4 header length below 20 or past the packet */
	MPS_SEG_E_IP_LEN,    /* IP length field disagrees with the packet */
	MPS_SEG_E_FRAGMENT,  /* IPv4 fragment: not reassembled here */
	MPS_SEG_E_NOT_TCP,   /* protocol or next header is not TCP */
	MPS_SEG_E_TCP_SHORT, /* TCP header cut off */
	MPS_SEG_E_TCP_DOFF,  /* data offset below 5 or past the segment */
	MPS_SEG_E_COUNT
};

const char *mps_seg_err_name(enum mps_seg_err err);

struct mps_seg {
	uint8_t family;	 /* 4 or 6 */
	uint8_t src[16]; /* IPv4 in the first 4 bytes */
	uint8_t dst[16];
	uint16_t sport, dport;
	uint32_t seq, ack;
	uint8_t flags; /* MPS_TCP_* */
	uint16_t win;  /* unscaled, as on the wire */
	uint16_t tcp_csum;
	const uint8_t *tcp;  /* TCP header */
	const uint8_t *opts; /* option list */
	uint8_t opts_len;
	const uint8_t *payload;
	uint32_t payload_len; /* from the IP length fields */
	uint32_t payload_cap; /* bytes of payload actually in the buffer */
};

/*
 * Decode pkt[0..cap) into *seg. When truncated_ok is nonzero the payload may
 * be cut short (a capture with a small snap length): payload_cap says how
 * much is present; otherwise the IP length must match cap exactly, trailing
 * link padding excepted. Returns 0, or -EBADMSG with *err set.
 */
int mps_seg_parse(const uint8_t *pkt, size_t cap, int truncated_ok, struct mps_seg *seg,
		  enum mps_seg_err *err);

/*
 * The Internet checksum's ones' complement sum (RFC 1071) of p[0..len) as
 * big-endian 16-bit words, added to sum; an odd last byte is the high byte
 * of a word. Not folded: the caller folds once at the end. Only the last
 * piece of a checksummed run may have an odd length.
 */
uint32_t mps_csum_add(uint32_t sum, const uint8_t *p, size_t len);

#endif
