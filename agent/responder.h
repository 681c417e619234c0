/*
 * The responder: the passive side of every experiment type. Listens on one
 * port (the same on every agent) over IPv4 and IPv6, with IPPROTO_MPTCP where
 * the kernel has it (an MPTCP listener also accepts plain TCP clients) and
 * IPPROTO_TCP otherwise. Runs in the event loop: non-blocking, a capped buffer
 * per connection, a capped connection count and an idle timeout.
 *
 * Protocol (all integers big-endian). The client opens with a 32-byte request:
 *
 *   0  "FJX1"           magic and version
 *   4  u8 type           1 echo, 2 sink, 3 source, 4 rr
 *   5  u8 flags          echo: 1 (AGENT_RESP_F_ANNOUNCE) asks a bundled
 *                        responder to announce its other addresses of the
 *                        connection's family (ADD_ADDR) on this connection
 *                        (the probe's ADD_ADDR check); 0 otherwise
 *   6  u8[2]             zero
 *   8  u64 bytes         source: stop after this many bytes (0: no byte limit)
 *  16  u32 duration_ms   source: stop after this long (0: no time limit)
 *  20  u32 request_bytes rr: size of one request
 *  24  u32 response_bytes rr: size of one response
 *  28  u32 seed          source and rr: seed of the pseudo-random data
 *
 * The responder answers with a 96-byte reply and then serves the type:
 *
 *   0  "FJR1"
 *   4  u8 status         0 ok, 1 refused (the connection is then closed)
 *   5  u8 family         4 or 6: the client's address as the responder sees it
 *   6  u16 port          (a NAT between the two shows up here)
 *   8  u8[16] address
 *  24  char[72] message  NUL-padded; why a request was refused
 *
 * echo: every byte is sent back. sink: bytes are read and counted until the
 * client shuts down its side; then the responder sends a 48-byte trailer
 * ("FJT1", u32 zero, u64 bytes, u8[32] SHA-256 of the bytes) and closes.
 * source: agent_resp_fill(seed) data from offset 0 in frames, each a u32
 * length (1..AGENT_RESP_FRAME_MAX) and that many bytes of the stream, until the
 * byte count or the duration is reached (a frame begun is finished); then a
 * u32 zero and the same 48-byte trailer as the sink's (byte count and SHA-256
 * of the data sent), and the responder closes. The trailer is what tells a
 * complete stream from one cut short: a responder killed outright ends its
 * connection with a FIN as well. rr: for every complete request_bytes
 * received, response_bytes of data are sent back. info: a u16 length and
 * that much text, "ISP V4 V6\n" per ISP: the addresses of this agent's bundled
 * responder ("-" for none), then the responder closes; refused when the agent
 * has none. A bundled run learns its peer's bundled addresses this way.
 */
#ifndef AGENT_RESPONDER_H
#define AGENT_RESPONDER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct agent_loop;
struct agent_responder;

#define AGENT_RESPONDER_BUF (64 * 1024)

#define AGENT_RESP_REQ_LEN	   32
#define AGENT_RESP_REPLY_LEN	   96
#define AGENT_RESP_TRAILER_LEN	   48
#define AGENT_RESP_FRAME_HDR	   4
#define AGENT_RESP_FRAME_MAX	   16384 /* small: a duration-bound source overshoots by < 1 frame */
#define AGENT_RESP_MAX_BYTES	   (1ull << 40)
#define AGENT_RESP_MAX_DURATION_MS 3600000u
#define AGENT_RESP_MAX_RR_BYTES	   (1u << 20)
#define AGENT_RESP_INFO_MAX	   1024

enum agent_resp_type {
	AGENT_RESP_ECHO = 1,
	AGENT_RESP_SINK = 2,
	AGENT_RESP_SOURCE = 3,
	AGENT_RESP_RR = 4,
	AGENT_RESP_INFO = 5,
};

#define AGENT_RESP_F_ANNOUNCE 0x1u

struct agent_resp_request {
	unsigned int type;  /* enum agent_resp_type */
	unsigned int flags; /* AGENT_RESP_F_* (echo only) */
	uint64_t bytes;
	uint32_t duration_ms, request_bytes, response_bytes, seed;
};

struct agent_resp_reply {
	int ok;
	char peer[46]; /* the client's address as the responder saw it */
	unsigned int peer_port;
	char message[73];
};

struct agent_resp_trailer {
	uint64_t bytes;
	uint8_t sha256[32];
};

/* Encodes a request. */
void agent_resp_request_encode(const struct agent_resp_request *q, uint8_t out[AGENT_RESP_REQ_LEN]);
/*
 * Decodes and checks a request. 0, or -EINVAL with the reason in err
 * ("unknown type 9", "rr request_bytes must be 1..1048576 (got 0)").
 */
int agent_resp_request_decode(const uint8_t in[AGENT_RESP_REQ_LEN], struct agent_resp_request *q,
			      char *err, size_t errlen);
/* Decodes a reply; -EPROTO if it is not one. */
int agent_resp_reply_decode(const uint8_t in[AGENT_RESP_REPLY_LEN], struct agent_resp_reply *r);
int agent_resp_trailer_decode(const uint8_t in[AGENT_RESP_TRAILER_LEN],
			      struct agent_resp_trailer *t);
void agent_resp_trailer_encode(const struct agent_resp_trailer *t,
			       uint8_t out[AGENT_RESP_TRAILER_LEN]);
void agent_resp_frame_header(uint32_t len, uint8_t out[AGENT_RESP_FRAME_HDR]);

/*
 * The client's side of the source framing. Feed what arrives, in any pieces;
 * the stream's data is moved to the front of buf. done is set once the end
 * marker and the whole trailer are in.
 */
struct agent_resp_deframer {
	uint8_t hdr[AGENT_RESP_FRAME_HDR];
	size_t hdr_len;
	uint32_t left; /* data bytes of the current frame still to come */
	int in_trailer, done;
	uint8_t trailer[AGENT_RESP_TRAILER_LEN];
	size_t trailer_len;
	struct agent_resp_trailer tr; /* valid once done */
};

/*
 * Returns how many data bytes of buf[0..len) there were (now at buf[0..n)),
 * or -EPROTO for a frame length above AGENT_RESP_FRAME_MAX, a trailer that is
 * not one, or bytes after the trailer.
 */
ssize_t agent_resp_deframe(struct agent_resp_deframer *d, uint8_t *buf, size_t len);
/*
 * The deterministic pseudo-random stream of seed: fills buf with its bytes
 * [off, off + len). Both ends generate it, so the receiver can check it.
 */
void agent_resp_fill(uint32_t seed, uint64_t off, uint8_t *buf, size_t len);

struct agent_responder_cfg {
	const char *const *addrs; /* literal addresses; NULL or n_addrs 0: 0.0.0.0 and :: */
	unsigned int n_addrs;
	unsigned int port; /* 0: an ephemeral port, the same for all listeners */
	unsigned int max_conns;
	unsigned int idle_s;
	int force_tcp; /* listen with IPPROTO_TCP even if MPTCP is there */
	/* The info answer (bundled.h, bundled_info_text()), copied; NULL: info is refused. */
	const char *bundled_info;
};

/* Returns 0 or a negative errno (no listener could be opened); err explains. */
int agent_responder_create(struct agent_loop *loop, const struct agent_responder_cfg *cfg,
			   struct agent_responder **out, char *err, unsigned int errlen);
void agent_responder_destroy(struct agent_responder *r);
unsigned int agent_responder_port(const struct agent_responder *r);
/* IPPROTO_MPTCP if at least one listener is MPTCP, else IPPROTO_TCP. */
int agent_responder_protocol(const struct agent_responder *r);
unsigned int agent_responder_conns(const struct agent_responder *r);
/* Connections refused because max_conns was reached, and closed for idleness. */
unsigned long agent_responder_refused(const struct agent_responder *r);
unsigned long agent_responder_idle_closed(const struct agent_responder *r);
/* Requests refused for a bad header. */
unsigned long agent_responder_bad_requests(const struct agent_responder *r);

#endif
