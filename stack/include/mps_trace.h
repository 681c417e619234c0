/*
 * Packet trace writer: a pcap file (link type raw IP) with the IP and TCP
 * headers, options included, of every packet the stack sees, in both
 * directions. Payload is not recorded; each record keeps its original
 * length, so tools show the segment sizes. Plugs into mps_config.trace.
 */
#ifndef MPS_TRACE_H
#define MPS_TRACE_H

#include <stddef.h>
#include <stdint.h>

struct mps_trace;

/*
 * Create (truncate) the pcap file path. Returns a handle the caller frees
 * with mps_trace_close(), or NULL with *err = -EINVAL, -ENOMEM or -EIO
 * (libpcap could not open the file; it printed nothing).
 */
struct mps_trace *mps_trace_open(const char *path, int *err);

/* Flush and close; NULL is fine. */
void mps_trace_close(struct mps_trace *t);

/* Records written so far. A packet that is not IP/TCP is kept whole, up to 128 bytes. */
uint64_t mps_trace_count(const struct mps_trace *t);

/* The hook for mps_config.trace; ctx is a struct mps_trace *. now is in microseconds. */
void mps_trace_packet(void *ctx, const uint8_t *pkt, size_t len, int out, int subflow,
		      uint64_t now);

#endif
