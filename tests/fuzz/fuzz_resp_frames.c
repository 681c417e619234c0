/*
 * libFuzzer target for what the responder protocol reads from a peer
 * (agent/responder.c): the 32-byte request, the 96-byte reply, the trailer,
 * and the source's framing taken apart by agent_resp_deframe() in the pieces
 * the first input byte chooses. Oracles: a request is refused or within every
 * documented bound; the deframer never returns more data than it was given,
 * and gives the same data, the same end and the same refusal however the
 * stream is cut.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../agent/responder.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Deframes in in pieces of step (0: whole); the data into out, its length or -EPROTO. */
static ssize_t deframe_all(const uint8_t *in, size_t len, size_t step, uint8_t *out, int *done)
{
	struct agent_resp_deframer d;
	uint8_t *buf = malloc(len + 1);
	size_t off = 0, got = 0;

	memset(&d, 0, sizeof(d));
	if (!buf)
		abort();
	memcpy(buf, in, len);
	while (off < len) {
		size_t n = step && step < len - off ? step : len - off;
		ssize_t r = agent_resp_deframe(&d, buf + off, n);

		if (r < 0) {
			free(buf);
			return r;
		}
		if ((size_t)r > n)
			abort();
		memcpy(out + got, buf + off, (size_t)r);
		got += (size_t)r;
		off += n;
	}
	*done = d.done;
	free(buf);
	return (ssize_t)got;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct agent_resp_request q;
	struct agent_resp_reply rep;
	struct agent_resp_trailer tr;
	char err[128];
	uint8_t *a, *b;
	ssize_t ra, rb;
	int da = 0, db = 0;

	if (size >= AGENT_RESP_REQ_LEN &&
	    agent_resp_request_decode(data, &q, err, sizeof(err)) == 0) {
		if (q.type < AGENT_RESP_ECHO || q.type > AGENT_RESP_INFO)
			abort();
		if (q.type == AGENT_RESP_SOURCE &&
		    ((!q.bytes && !q.duration_ms) || q.bytes > AGENT_RESP_MAX_BYTES ||
		     q.duration_ms > AGENT_RESP_MAX_DURATION_MS))
			abort();
		if (q.type == AGENT_RESP_RR &&
		    (!q.request_bytes || q.request_bytes > AGENT_RESP_MAX_RR_BYTES ||
		     !q.response_bytes || q.response_bytes > AGENT_RESP_MAX_RR_BYTES))
			abort();
		/* Flags: the announce bit of an echo, nothing else. */
		if (q.flags & ~AGENT_RESP_F_ANNOUNCE || (q.flags && q.type != AGENT_RESP_ECHO))
			abort();
	}
	if (size >= AGENT_RESP_REPLY_LEN && agent_resp_reply_decode(data, &rep) == 0 &&
	    (strlen(rep.message) > 72 || strlen(rep.peer) >= sizeof(rep.peer)))
		abort();
	if (size >= AGENT_RESP_TRAILER_LEN)
		agent_resp_trailer_decode(data, &tr);
	if (size < 1)
		return 0;
	a = malloc(size);
	b = malloc(size);
	if (!a || !b)
		abort();
	ra = deframe_all(data + 1, size - 1, 0, a, &da);
	rb = deframe_all(data + 1, size - 1, (size_t)data[0] % 17 + 1, b, &db);
	if (ra != rb || (ra >= 0 && (da != db || memcmp(a, b, (size_t)ra))))
		abort();
	if (ra >= 0 && (size_t)ra > size - 1)
		abort();
	free(a);
	free(b);
	return 0;
}
