/*
 * Uploads what the spool holds, one item at a time, oldest run first: the
 * Result (POST .../result, removed from the spool on 200/201 with a
 * ResultAck), then each trace, resumably (HEAD for what the controller holds,
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

#endif
