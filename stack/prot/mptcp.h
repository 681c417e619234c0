/*
 * MPTCP v1 option layouts (RFC 8684 §3, IANA "MPTCP Option Subtypes").
 * Every MPTCP signal is TCP option kind 30: byte 0 kind, byte 1 length
 * (kind and length included), high nibble of byte 2 the subtype.
 */
#ifndef MPS_PROT_MPTCP_H
#define MPS_PROT_MPTCP_H

#define MPS_MPTCP_SUB_CAPABLE	0x0
#define MPS_MPTCP_SUB_JOIN	0x1
#define MPS_MPTCP_SUB_DSS	0x2
#define MPS_MPTCP_SUB_ADD_ADDR	0x3
#define MPS_MPTCP_SUB_RM_ADDR	0x4
#define MPS_MPTCP_SUB_PRIO	0x5
#define MPS_MPTCP_SUB_FAIL	0x6
#define MPS_MPTCP_SUB_FASTCLOSE 0x7
#define MPS_MPTCP_SUB_TCPRST	0x8
#define MPS_MPTCP_SUB_EXP	0xf

#define MPS_MPTCP_VERSION 1

/* MP_CAPABLE: byte 2 = subtype | version, byte 3 = flags, then keys. */
#define MPS_MPC_LEN_SYN	      4
#define MPS_MPC_LEN_SYNACK    12
#define MPS_MPC_LEN_ACK	      20
#define MPS_MPC_LEN_DATA      22
#define MPS_MPC_LEN_DATA_CSUM 24
#define MPS_MPC_FLAG_A	      0x80 /* checksum required */
#define MPS_MPC_FLAG_B	      0x40 /* extensibility, must be 0 */
#define MPS_MPC_FLAG_C	      0x20 /* do not join to my source address and port */
#define MPS_MPC_FLAGS_DG      0x1e /* unassigned */
#define MPS_MPC_FLAG_H	      0x01 /* HMAC-SHA256 */
#define MPS_MPC_OFF_SKEY      4	   /* sender's key */
#define MPS_MPC_OFF_RKEY      12   /* receiver's key */
#define MPS_MPC_OFF_DLEN      20   /* data-level length */
#define MPS_MPC_OFF_CSUM      22

/* MP_JOIN: B is the low bit of byte 2 in SYN and SYN/ACK. */
#define MPS_JOIN_LEN_SYN    12
#define MPS_JOIN_LEN_SYNACK 16
#define MPS_JOIN_LEN_ACK    24
#define MPS_JOIN_FLAG_B	    0x01
#define MPS_JOIN_HMAC_LEN   20 /* leftmost 160 bits, third ACK */

/* DSS: byte 3 flags. */
#define MPS_DSS_FLAG_A	  0x01 /* DATA_ACK present */
#define MPS_DSS_FLAG_a	  0x02 /* DATA_ACK is 8 bytes */
#define MPS_DSS_FLAG_M	  0x04 /* mapping present */
#define MPS_DSS_FLAG_m	  0x08 /* DSN is 8 bytes */
#define MPS_DSS_FLAG_F	  0x10 /* DATA_FIN */
#define MPS_DSS_FLAGS_ALL 0x1f
#define MPS_DSS_LEN_BASE  4
#define MPS_DSS_LEN_MAX	  28 /* 8-byte ack, 8-byte DSN, SSN, length, checksum */

/* ADD_ADDR: low bit of byte 2 is E (echo); the HMAC is absent iff E = 1. */
#define MPS_ADD_ADDR_FLAG_E   0x01
#define MPS_ADD_ADDR_HMAC_LEN 8
#define MPS_ADD_ADDR_LEN_V4   8 /* echo, no port; +2 port, +8 HMAC */
#define MPS_ADD_ADDR_LEN_V6   20

/* REMOVE_ADDR: 3 + n address IDs. */
#define MPS_RM_ADDR_MAX 8 /* what Linux accepts, and what we send at most */

#define MPS_PRIO_LEN	  3
#define MPS_PRIO_FLAG_B	  0x01
#define MPS_FAIL_LEN	  12
#define MPS_FASTCLOSE_LEN 12
#define MPS_TCPRST_LEN	  4
#define MPS_TCPRST_FLAGS  0x0f /* U V W T in the low nibble of byte 2 */
#define MPS_TCPRST_FLAG_T 0x01 /* transient */

/* MP_TCPRST reason codes (RFC 8684 §3.6). */
#define MPS_TCPRST_UNSPEC    0
#define MPS_TCPRST_MPTCP_ERR 1
#define MPS_TCPRST_RESOURCES 2
#define MPS_TCPRST_ADMIN     3
#define MPS_TCPRST_TOO_MUCH  4
#define MPS_TCPRST_PERF	     5
#define MPS_TCPRST_MIDDLEBOX 6

#define MPS_MPTCP_OPT_MAX 40 /* no option is longer than the TCP option space */

#endif
