/*
 * TCP header and option layouts (RFC 9293, RFC 7323, RFC 2018). Offsets are
 * from the first byte of the TCP header.
 */
#ifndef MPS_PROT_TCP_H
#define MPS_PROT_TCP_H

#define MPS_TCP_HLEN_MIN 20
#define MPS_TCP_HLEN_MAX 60
#define MPS_TCP_OPT_MAX	 (MPS_TCP_HLEN_MAX - MPS_TCP_HLEN_MIN) /* option space */

#define MPS_TCP_OFF_SPORT 0
#define MPS_TCP_OFF_DPORT 2
#define MPS_TCP_OFF_SEQ	  4
#define MPS_TCP_OFF_ACK	  8
#define MPS_TCP_OFF_DOFF  12 /* data offset in words (high nibble) */
#define MPS_TCP_OFF_FLAGS 13
#define MPS_TCP_OFF_WIN	  14
#define MPS_TCP_OFF_CSUM  16
#define MPS_TCP_OFF_URP	  18

#define MPS_TCP_FIN 0x01
#define MPS_TCP_SYN 0x02
#define MPS_TCP_RST 0x04
#define MPS_TCP_PSH 0x08
#define MPS_TCP_ACK 0x10
#define MPS_TCP_URG 0x20
#define MPS_TCP_ECE 0x40
#define MPS_TCP_CWR 0x80

/* Option kinds and their exact lengths (kind and length bytes included). */
#define MPS_TCPOPT_EOL	     0
#define MPS_TCPOPT_NOP	     1
#define MPS_TCPOPT_MSS	     2
#define MPS_TCPOPT_WS	     3
#define MPS_TCPOPT_SACK_PERM 4
#define MPS_TCPOPT_SACK	     5
#define MPS_TCPOPT_TS	     8
#define MPS_TCPOPT_MPTCP     30

#define MPS_TCPOLEN_MSS	      4
#define MPS_TCPOLEN_WS	      3
#define MPS_TCPOLEN_SACK_PERM 2
#define MPS_TCPOLEN_TS	      10
#define MPS_TCPOLEN_SACK_BLK  8 /* per block; the option is 2 + n * 8, n = 1..4 */
#define MPS_TCP_SACK_MAX      4

#define MPS_TCP_WS_MAX 14 /* RFC 7323 §2.3: larger shifts are treated as 14 */

#endif
