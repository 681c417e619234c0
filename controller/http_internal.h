/*
 * Internals shared by the HTTP layer's files: the server, the per-request
 * state, the route table and the answer helpers.
 */
#ifndef CTL_HTTP_INTERNAL_H
#define CTL_HTTP_INTERNAL_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "auth.h"
#include "config.h"
#include "ctl_sched.h"
#include "ctl_store.h"
#include "fjord.pb-c.h"
#include "http.h"
#include "http_buf.h"
#include "metrics.h"
#include "traces.h"

enum ctl_fmt { CTL_FMT_JSON, CTL_FMT_PB, CTL_FMT_CSV };

enum ctl_who {
	CTL_WHO_ANYONE,
	CTL_WHO_AGENT,
	CTL_WHO_VIEWER,
	CTL_WHO_EXPERIMENTER,
	CTL_WHO_ADMIN,
};

enum ctl_body {
	CTL_BODY_NONE,	 /* a body is an error */
	CTL_BODY_MSG,	 /* a protobuf/JSON message of route->msg, buffered up to max_body_bytes */
	CTL_BODY_STREAM, /* raw bytes handed to the route as they arrive (trace upload) */
};

struct ctl_req;

struct ctl_route {
	const char *method;
	const char *pattern; /* '*' matches one path segment */
	const char *name;    /* label in /metrics */
	enum ctl_who who;
	enum ctl_body body;
	const ProtobufCMessageDescriptor *msg;
	int csv;		   /* may answer text/csv */
	int raw;		   /* answer is not a message: Accept is not negotiated */
	const char *const *params; /* allowed query parameters (NULL-terminated), NULL: none */
	enum MHD_Result (*handler)(struct ctl_req *rq);
};

#define CTL_MAX_SEGS 3
/* Reporter threads: several, so their store writes share group commits. */
#define CTL_REPORTERS 4
#define CTL_MAX_ARGS  32

struct ctl_arg {
	const char *key, *value; /* owned by libmicrohttpd for the request's lifetime */
};

/* Presence of one agent: what its polls said, for the reporter threads and /metrics. */
struct ctl_presence;

struct ctl_http {
	struct ctl_config *cfg;
	struct ctl_store *st;
	struct ctl_sched *sched;
	struct ctl_traces *traces;
	struct ctl_metrics *metrics;
	struct MHD_Daemon *mhd;
	uint16_t port;
	int64_t started_ms;
	char *tls_cert_pem, *tls_key_pem;

	/* The scheduler lock: every ctl_sched call and the waiter set. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t timer;
	int timer_started;
	int stopping;
	uint64_t next_tick_ms;		 /* monotonic */
	struct ctl_req *w_head, *w_tail; /* waiters by deadline */
	struct ctl_req **w_hash;
	size_t n_waiting;

	/* Agents seen by polls, and the reports still to hand to store and scheduler. */
	pthread_mutex_t p_lock;
	pthread_cond_t p_cond;
	pthread_t reporter[CTL_REPORTERS];
	int n_reporters;
	size_t p_queued; /* agents whose report waits for a reporter */
	int p_stopping;
	struct ctl_presence **p_hash;
	struct ctl_presence *p_queue_head, *p_queue_tail;

	atomic_int async_pending; /* suspended result uploads waiting for the store */
	atomic_int polls_held;	  /* polls suspended at some point and not yet completed */
};

struct ctl_req {
	struct ctl_http *h;
	struct MHD_Connection *conn;
	const struct ctl_route *route;
	size_t route_idx; /* index into the route table; n_routes = unmatched */
	char *seg[CTL_MAX_SEGS];
	size_t n_seg;
	uint64_t t0_us;
	unsigned int status;
	enum ctl_fmt out_fmt;
	int in_pb; /* request body is protobuf (else JSON) */
	int answered;

	/* An error found before the body ended, answered once it has been read. */
	unsigned int err_status;
	char err_msg[256];
	char err_field[64];
	int err_close;			    /* answer at once and close the connection */
	char err_hdr[32], err_hdr_val[128]; /* one extra header for it (Allow, Range) */

	char *body;
	size_t body_len;
	uint64_t discarded;

	/* Who is calling. */
	char *agent_id;
	char *user;
	Fjord__V1__Role role;

	struct ctl_arg args[CTL_MAX_ARGS];
	size_t n_args;
	int args_overflow;

	int phase; /* handler-specific progress across suspend/resume */
	ProtobufCMessage *msg;

	/* Long poll. */
	struct ctl_req *w_prev, *w_next, *w_hnext;
	uint64_t w_deadline_ms;
	int w_listed;
	int w_counted; /* counted in polls_held */

	/* Result upload. */
	Fjord__V1__Result res_copy;
	int async_err, async_dup;
	struct ctl_batch *batch; /* batch upload: items in flight, freed at completion */

	/* Trace upload. */
	struct ctl_trace_upload *up;
	uint64_t tr_first, tr_last, tr_total;
	int tr_full; /* every byte was held already: the body is not written */
	char tr_sha[CTL_TOKEN_HEX + 1];
};

/* ---- http.c: answers --------------------------------------------------- */

/* Queues msg in the negotiated format. */
enum MHD_Result ctl_send_msg(struct ctl_req *rq, unsigned int status, const ProtobufCMessage *msg);
/* Queues an Error {status, message, field}; field may be NULL. */
enum MHD_Result ctl_send_error(struct ctl_req *rq, unsigned int status, const char *field,
			       const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Queues data (malloc'd; taken over even on failure) with a content type. */
enum MHD_Result ctl_send_data(struct ctl_req *rq, unsigned int status, const char *ctype,
			      char *data, size_t len);
/* Queues a response built by the caller, adding the common headers. */
enum MHD_Result ctl_send_response(struct ctl_req *rq, unsigned int status,
				  struct MHD_Response *resp);
/* Answers a failed store call: 404 for -ENOENT, 409 for -EEXIST, 400 for -EINVAL, else 500. */
enum MHD_Result ctl_send_store_error(struct ctl_req *rq, int err, const char *what);
/* Records an error to answer after the body (see err_status). */
void ctl_req_defer_error(struct ctl_req *rq, unsigned int status, const char *field,
			 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Adds a header to the deferred error's answer. */
void ctl_req_defer_header(struct ctl_req *rq, const char *name, const char *value);
/* Queues an Error like ctl_send_error with one extra header. */
enum MHD_Result ctl_send_error_hdr(struct ctl_req *rq, unsigned int status, const char *field,
				   const char *hdr, const char *hdr_val, const char *text);
/* Value of a query parameter, or NULL. */
const char *ctl_req_arg(struct ctl_req *rq, const char *key);

/* ---- http_poll.c: scheduler lock, timer, waiters, presence ---------------- */

int ctl_poll_start(struct ctl_http *h);
/* Answers every waiter and stops the timer thread; later polls answer at once. */
void ctl_poll_stop(struct ctl_http *h);
/* After the daemon stopped: hands the last reports over, stops the reporter, frees. */
void ctl_poll_finish(struct ctl_http *h);
/* Makes the timer tick now (after an experiment was created). */
void ctl_poll_kick(struct ctl_http *h);
/* Records a poll (presence, and a report for store and scheduler). */
void ctl_poll_seen(struct ctl_http *h, const char *agent_id, const Fjord__V1__PollRequest *poll);
/* Under h->lock: holds rq until deadline_ms (monotonic) or a notify for agent_id. */
void ctl_poll_wait_locked(struct ctl_req *rq, uint64_t deadline_ms);
/* Under h->lock: forgets rq if it still waits. */
void ctl_poll_unwait_locked(struct ctl_req *rq);
/* Overlays online and last_seen_ms from polls onto agents read from the store. */
void ctl_poll_overlay(struct ctl_http *h, Fjord__V1__Agent *a);
/* Agents seen within the online window, long polls held, reports not yet handed over. */
void ctl_poll_counts(struct ctl_http *h, uint64_t *online, uint64_t *waiting, uint64_t *queued);

/* ---- routes ------------------------------------------------------------- */

extern const struct ctl_route ctl_routes[];
extern const size_t ctl_n_routes;

enum MHD_Result ctl_route_healthz(struct ctl_req *rq);
enum MHD_Result ctl_route_metrics(struct ctl_req *rq);
enum MHD_Result ctl_route_enroll(struct ctl_req *rq);
enum MHD_Result ctl_route_poll(struct ctl_req *rq);
enum MHD_Result ctl_route_result(struct ctl_req *rq);
enum MHD_Result ctl_route_trace_head(struct ctl_req *rq);
enum MHD_Result ctl_route_trace_put(struct ctl_req *rq);
enum MHD_Result ctl_route_trace_get(struct ctl_req *rq);
enum MHD_Result ctl_route_trace_list(struct ctl_req *rq);
enum MHD_Result ctl_route_agents(struct ctl_req *rq);
enum MHD_Result ctl_route_agent(struct ctl_req *rq);
enum MHD_Result ctl_route_exp_create(struct ctl_req *rq);
enum MHD_Result ctl_route_exp_list(struct ctl_req *rq);
enum MHD_Result ctl_route_exp_get(struct ctl_req *rq);
enum MHD_Result ctl_route_exp_cancel(struct ctl_req *rq);
enum MHD_Result ctl_route_runs(struct ctl_req *rq);
enum MHD_Result ctl_route_run(struct ctl_req *rq);
enum MHD_Result ctl_route_results(struct ctl_req *rq);
enum MHD_Result ctl_route_aggregates(struct ctl_req *rq);

/* routes_trace.c: the trace PUT's headers, checked before the body arrives,
 * and its body bytes. */
void ctl_trace_put_begin(struct ctl_req *rq);
void ctl_trace_put_data(struct ctl_req *rq, const char *data, size_t len);

/* Checks that the agent rq->agent_id is the client or server of run; answers
 * (404/403) and returns nonzero when not. *out may be NULL. */
int ctl_check_run_agent(struct ctl_req *rq, const char *run_id, Fjord__V1__Run **out);

/* Most results one POST /api/v1/results:batch may carry. */
#define CTL_BATCH_MAX 1000
enum MHD_Result ctl_route_result_batch(struct ctl_req *rq);
void ctl_batch_free(struct ctl_batch *b);

#endif
