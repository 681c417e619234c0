/*
 * A small stand-in for fjord-controller, for the agent's tests: the agent
 * routes of docs/api.md (enroll, long-poll, result, results:batch, resumable trace upload)
 * on loopback, with fault injection (503s, a PUT that fails part-way, revoked
 * tokens, refused results). libmicrohttpd, one thread per connection.
 */
#ifndef FAKE_CTL_H
#define FAKE_CTL_H

#include <stddef.h>
#include <stdint.h>

#include "fjord.pb-c.h"

struct fake_ctl;

struct fake_result {
	char run_id[65];
	int ok;
	char error[256];
	unsigned int posts;
	unsigned int n_metrics;
};

/* port 0: an ephemeral port. record: a file that gets one line per event, or NULL. */
int fake_ctl_start(unsigned int port, const char *secret, const char *record,
		   struct fake_ctl **out);
void fake_ctl_stop(struct fake_ctl *f);
unsigned int fake_ctl_port(const struct fake_ctl *f);

/* Queues a command for the next poll (copied). */
int fake_ctl_queue(struct fake_ctl *f, const Fjord__V1__Command *cmd);
/* Queues an echo run against 127.0.0.1 (the agent's own responder). */
int fake_ctl_queue_echo(struct fake_ctl *f, const char *run_id, unsigned int count,
			unsigned int bytes, int64_t deadline_ms);
int fake_ctl_queue_cancel(struct fake_ctl *f, const char *run_id, const char *reason);
unsigned int fake_ctl_queued(struct fake_ctl *f);

/* Fault injection. */
void fake_ctl_fail_next(struct fake_ctl *f, unsigned int n);	  /* next n requests: 503 */
void fake_ctl_fail_put_after(struct fake_ctl *f, unsigned int n); /* the (n+1)th PUT: 503 */
void fake_ctl_revoke_tokens(struct fake_ctl *f);
/* After the first poll that carries commands, every request gets a 503. */
void fake_ctl_vanish_after_dispatch(struct fake_ctl *f);
void fake_ctl_refuse_results(struct fake_ctl *f, int on); /* results: 400 */
/* Traces: every byte is taken but the upload never completes (308 with the full range). */
void fake_ctl_stick_traces(struct fake_ctl *f, int on);
/*
 * The next trace whose last byte arrives is held but not stored (503), as a
 * controller killed between the two; a later PUT stores it.
 */
void fake_ctl_lose_store(struct fake_ctl *f);
void fake_ctl_set_hold_ms(struct fake_ctl *f, unsigned int ms);
/*
 * POST /api/v1/results:batch: off answers 404 (a controller without the
 * route); max > 0 answers 413 above max results; status_all != 0 answers
 * every batch with that status; bad_ack answers one ResultItemAck short.
 */
void fake_ctl_batch_mode(struct fake_ctl *f, int off, unsigned int max, unsigned int status_all,
			 int bad_ack);
/* The next `times` batch items of run_id get status (e.g. 500 or 409) instead of being stored. */
void fake_ctl_batch_fail_item(struct fake_ctl *f, const char *run_id, unsigned int status,
			      unsigned int times);

/* What arrived. */
unsigned int fake_ctl_results(struct fake_ctl *f);
int fake_ctl_result(struct fake_ctl *f, const char *run_id, struct fake_result *out);
/* A complete, verified trace: copies up to cap bytes; returns its size or -ENOENT. */
long fake_ctl_trace(struct fake_ctl *f, const char *run_id, const char *name, uint8_t *buf,
		    size_t cap);
/* What the last PollRequest carried. */
void fake_ctl_last_poll(struct fake_ctl *f, char *first_running, size_t len,
			unsigned int *n_running, char *version, size_t vlen, unsigned int *wait_s);
unsigned int fake_ctl_count(struct fake_ctl *f,
			    const char *what); /* "enroll", "poll", "put", "head", "put_bytes",
						  "result" (single posts), "batch", "batch_items" */

#endif
