/*
 * IPv4 header layout (RFC 791). Offsets are from the first byte of the
 * header; multi-byte fields are big-endian (see wire.h).
 */
#ifndef MPS_PROT_IP4_H
#define MPS_PROT_IP4_H

#define MPS_IP4_HLEN_MIN 20 /* no options */
#define MPS_IP4_HLEN_MAX 60

#define MPS_IP4_OFF_VHL	  0 /* version (high nibble), header length in words (low) */
#define MPS_IP4_OFF_TOS	  1
#define MPS_IP4_OFF_LEN	  2 /* total length, header included */
#define MPS_IP4_OFF_ID	  4
#define MPS_IP4_OFF_FRAG  6 /* flags (3 bits) and fragment offset (13 bits) */
#define MPS_IP4_OFF_TTL	  8
#define MPS_IP4_OFF_PROTO 9
#define MPS_IP4_OFF_CSUM  10
#define MPS_IP4_OFF_SRC	  12
#define MPS_IP4_OFF_DST	  16

#define MPS_IP4_FRAG_MF	  0x2000
#define MPS_IP4_FRAG_DF	  0x4000
#define MPS_IP4_FRAG_MASK 0x1fff

#define MPS_IPPROTO_TCP 6

#endif
