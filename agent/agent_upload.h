/*
 * Uploads what the spool holds, oldest run first. When two or more results
 * are pending they go first, up to 100 (and 2 MiB) in one POST
 * /api/v1/results:batch; each is removed from the spool when its
 * ResultItemAck says 201 or 200, set aside as refused on a final 4xx, and sent
 * again after a backoff on a 5xx. A controller without the route (404, 405,
 * 501) gets one result per request from then on; 413 halves the batch; any
 * other refusal of the whole batch, or an answer that is not one ack per
 * result, sends those results one by one. A single result goes by POST
 * .../result (removed from the spool on 200/201 with a ResultAck). Traces
 * go after the results, resumably (HEAD for what the controller holds,
 * PUT of Content-Range chunks with X-Fjord-Sha256; removed on 201, or 200 on
 * HEAD). Transport failures and 5xx back off and retry; an item the controller
 * refuses for good (4xx other than 401) stays in the spool, logged, and is
 * skipped until the agent restarts.
 */
#ifndef AGENT_UPLOAD_H
#define AGENT_UPLOAD_H

#include <stddef.h>
#include <stdint.h>

struct agent_loop;
struct agent_http;
struct agent_spool;
struct agent_ctl;
struct agent_upload;

#define AGENT_UPLOAD_CHUNK (1u << 20)

int agent_upload_create(struct agent_loop *loop, struct agent_http *http, struct agent_spool *spool,
			struct agent_ctl *ctl, unsigned int backoff_base_ms,
			unsigned int backoff_max_ms, struct agent_upload **out);
void agent_upload_destroy(struct agent_upload *u);
/* Something new is in the spool, or the agent has a token now. */
void agent_upload_kick(struct agent_upload *u);
/* Chunk size of trace PUTs (tests use small ones). */
void agent_upload_set_chunk(struct agent_upload *u, size_t bytes);
/* 1 when nothing is in flight and nothing uploadable is left in the spool. */
int agent_upload_idle(struct agent_upload *u);
/* Items refused for good and left in the spool. */
unsigned int agent_upload_rejected(const struct agent_upload *u);
/* Results and traces acknowledged so far. */
unsigned int agent_upload_acked(const struct agent_upload *u);
/* Batch requests answered item by item so far. */
unsigned int agent_upload_batches(const struct agent_upload *u);

#endif
