/*
 * IPv6 fixed header layout (RFC 8200). The stack does not accept extension
 * headers: a next-header value other than TCP is reported, not skipped.
 */
#ifndef MPS_PROT_IP6_H
#define MPS_PROT_IP6_H

#define MPS_IP6_HLEN 40

#define MPS_IP6_OFF_VTCFL 0 /* version (4), traffic class (8), flow label (20) */
#define MPS_IP6_OFF_PLEN  4 /* payload length, header excluded */
#define MPS_IP6_OFF_NXT	  6
#define MPS_IP6_OFF_HLIM  7
#define MPS_IP6_OFF_SRC	  8
#define MPS_IP6_OFF_DST	  24

#endif
