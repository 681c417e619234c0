/*
 * Two stacks joined in memory, and segments made by hand from the client's
 * side: the fixture of the segment-level suites (mps_tcp, mps_checks).
 */
#ifndef MPS_PAIR_H
#define MPS_PAIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mps.h"
#include "mps_seg.h"

struct mps_opt;

extern const struct mps_addr pair_caddr, pair_saddr; /* client 10.0.0.1:40000, server :5002 */

struct pair {
	struct mps_stack *c, *s;
	struct mps_conn *cc, *sc;
	uint32_t cseq, sseq;   /* next subflow sequence numbers of client and server */
	struct mps_seg last_s; /* the server's last segment */
	uint8_t last_s_buf[2048];
	uint64_t now;
};

/* Move packets both ways until quiet (delayed ACKs within 100 ms included). */
void pair_shuttle(struct pair *p);
/* Two stacks (seeds 5 and 6, checksums asked for if checksum), connected and accepted. */
void pair_up_cfg(struct pair *p, bool checksum);
void pair_up(struct pair *p);
/* The ones'-complement sum of b[0..len) added to sum (the TCP checksum, before folding). */
uint32_t pair_sum16(const uint8_t *b, size_t len, uint32_t sum);
/* A client -> server segment with TCP flags, options and payload, checksummed; its length. */
size_t pair_segment_flags(uint8_t *pkt, uint8_t flags, uint32_t seq, uint32_t ack,
			  const uint8_t *opts, size_t optlen, const uint8_t *data, size_t len);
/* The same with PSH,ACK. */
size_t pair_segment(uint8_t *pkt, uint32_t seq, uint32_t ack, const uint8_t *opts, size_t optlen,
		    const uint8_t *data, size_t len);
/* The DATA_ACK of the server's last segment, 0 if none. */
uint64_t pair_data_ack(const struct pair *p);
/* A client -> server pure ACK carrying one MPTCP option, then pair_shuttle(). */
void pair_send_option(struct pair *p, struct mps_opt *o);
/* Pop every event of st; true if one had this type and reason. */
bool pair_logged(struct mps_stack *st, enum mps_event_type type, int reason);

#endif
