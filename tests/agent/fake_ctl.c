/* Fake controller: just enough of docs/api.md for the agent's tests. */
#include "fake_ctl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FAKE_MAX_CMDS	 256
#define FAKE_MAX_RESULTS 512
#define FAKE_MAX_TRACES	 512
#define FAKE_MAX_TOKENS	 64
#define FAKE_BODY_MAX	 (4u << 20)
#define FAKE_TRACE_MAX	 (16u << 20)

struct fake_trace {
	char run_id[65], name[65];
	uint8_t *data;
	size_t len, total;
	int complete;
};

struct fake_ctl {
	struct MHD_Daemon *d;
	pthread_mutex_t mu;
	char secret[128];
	unsigned int port;
	FILE *record;
	char tokens[FAKE_MAX_TOKENS][40];
	unsigned int ntok, next_agent;
	struct {
		uint8_t *buf;
		size_t len;
	} cmds[FAKE_MAX_CMDS];
	unsigned int ncmds;
	struct fake_result results[FAKE_MAX_RESULTS];
	unsigned int nresults;
	struct fake_trace traces[FAKE_MAX_TRACES];
	unsigned int ntraces;
	unsigned int fail_next, put_budget, hold_ms;
	int put_budget_on, refuse_results, stopping, vanish;
	int stuck_traces; /* hold every byte of a trace but never store it */
	int lose_store;	  /* the next trace whose last byte arrives is held, not stored: 503 */
	unsigned int enrolls, polls, puts, heads, put_bytes;
	/* results:batch: off (404), at most batch_max items (413 above; 0: any) */
	int batch_off, batch_bad_ack;
	unsigned int batch_max, batch_status_all, single_posts, batches, batch_items;
	char item_fail_run[65];
	unsigned int item_fail_status, item_fail_times;
	char last_running[65], last_version[32];
	unsigned int last_n_running, last_wait_s;
};

struct conn_body {
	uint8_t *buf;
	size_t len;
	int too_big;
};

static void record(struct fake_ctl *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void record(struct fake_ctl *f, const char *fmt, ...)
{
	va_list ap;

	if (!f->record)
		return;
	va_start(ap, fmt);
	vfprintf(f->record, fmt, ap);
	va_end(ap);
	fputc('\n', f->record);
	fflush(f->record);
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned int status, const void *body,
			     size_t len, const char *range)
{
	struct MHD_Response *r =
		MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result rc;

	MHD_add_response_header(r, "Content-Type", "application/x-protobuf");
	if (range)
		MHD_add_response_header(r, "Range", range);
	rc = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result reply_error(struct MHD_Connection *c, unsigned int status, const char *msg)
{
	Fjord__V1__Error e = FJORD__V1__ERROR__INIT;
	uint8_t buf[512];
	size_t len;

	e.status = status;
	e.message = (char *)msg;
	len = fjord__v1__error__get_packed_size(&e);
	if (len > sizeof(buf))
		len = 0;
	else
		fjord__v1__error__pack(&e, buf);
	return reply(c, status, buf, len, NULL);
}

static enum MHD_Result reply_msg(struct MHD_Connection *c, unsigned int status,
				 const ProtobufCMessage *m)
{
	size_t len = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(len + 1);
	enum MHD_Result rc;

	protobuf_c_message_pack(m, buf);
	rc = reply(c, status, buf, len, NULL);
	free(buf);
	return rc;
}

/* Caller holds f->mu. */
static int authorized(struct fake_ctl *f, struct MHD_Connection *c)
{
	const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
	unsigned int i;

	if (!h || strncmp(h, "Bearer ", 7) != 0)
		return 0;
	for (i = 0; i < f->ntok; i++)
		if (strcmp(f->tokens[i], h + 7) == 0)
			return 1;
	return 0;
}

static enum MHD_Result do_enroll(struct fake_ctl *f, struct MHD_Connection *c,
				 const struct conn_body *b)
{
	Fjord__V1__EnrollRequest *er = fjord__v1__enroll_request__unpack(NULL, b->len, b->buf);
	Fjord__V1__EnrollResponse resp = FJORD__V1__ENROLL_RESPONSE__INIT;
	char id[40];
	enum MHD_Result rc;

	if (!er)
		return reply_error(c, 400, "body is not an EnrollRequest");
	if (strcmp(er->secret, f->secret) != 0 || !er->site[0] || !er->node[0]) {
		fjord__v1__enroll_request__free_unpacked(er, NULL);
		return reply_error(c, 401, "wrong enrollment secret");
	}
	pthread_mutex_lock(&f->mu);
	snprintf(id, sizeof(id), "agent-%u", ++f->next_agent);
	if (f->ntok < FAKE_MAX_TOKENS)
		snprintf(f->tokens[f->ntok++], sizeof(f->tokens[0]), "tok-%u-%ld", f->next_agent,
			 (long)getpid());
	f->enrolls++;
	record(f, "enroll %s %s %s interfaces=%zu", id, er->site, er->node, er->n_interfaces);
	resp.agent_id = id;
	resp.token = f->tokens[f->ntok - 1];
	resp.poll_timeout_s = 30;
	rc = reply_msg(c, 200, &resp.base);
	pthread_mutex_unlock(&f->mu);
	fjord__v1__enroll_request__free_unpacked(er, NULL);
	return rc;
}

/* Holds the poll until a command is queued, the hold time or wait_s passes. */
static enum MHD_Result do_poll(struct fake_ctl *f, struct MHD_Connection *c,
			       const struct conn_body *b)
{
	Fjord__V1__PollRequest *pr = fjord__v1__poll_request__unpack(NULL, b->len, b->buf);
	Fjord__V1__PollResponse resp = FJORD__V1__POLL_RESPONSE__INIT;
	Fjord__V1__Command *cmds[FAKE_MAX_CMDS];
	unsigned int waited = 0, limit, i;
	enum MHD_Result rc;

	if (!pr)
		return reply_error(c, 400, "body is not a PollRequest");
	limit = pr->wait_s * 1000 < f->hold_ms ? pr->wait_s * 1000 : f->hold_ms;
	pthread_mutex_lock(&f->mu);
	f->last_n_running = (unsigned int)pr->n_running_run_ids;
	snprintf(f->last_running, sizeof(f->last_running), "%.64s",
		 pr->n_running_run_ids ? pr->running_run_ids[0] : "");
	snprintf(f->last_version, sizeof(f->last_version), "%.31s", pr->version);
	f->last_wait_s = pr->wait_s;
	pthread_mutex_unlock(&f->mu);
	fjord__v1__poll_request__free_unpacked(pr, NULL);
	for (;;) {
		pthread_mutex_lock(&f->mu);
		if (f->ncmds || waited >= limit || f->stopping)
			break;
		pthread_mutex_unlock(&f->mu);
		usleep(10000);
		waited += 10;
	}
	f->polls++;
	for (i = 0; i < f->ncmds; i++) {
		cmds[i] = fjord__v1__command__unpack(NULL, f->cmds[i].len, f->cmds[i].buf);
		free(f->cmds[i].buf);
	}
	resp.commands = cmds;
	resp.n_commands = f->ncmds;
	if (f->ncmds)
		record(f, "dispatched %u", f->ncmds);
	/* From now on the controller is "away": every request fails. */
	if (f->ncmds && f->vanish)
		f->fail_next = ~0u;
	f->ncmds = 0;
	rc = reply_msg(c, 200, &resp.base);
	pthread_mutex_unlock(&f->mu);
	for (i = 0; i < resp.n_commands; i++)
		fjord__v1__command__free_unpacked(cmds[i], NULL);
	return rc;
}

/* Stores one result (caller holds f->mu); 201 new, 200 duplicate. */
static unsigned int store_result(struct fake_ctl *f, const Fjord__V1__Result *r, const char *run)
{
	struct fake_result *fr = NULL;
	unsigned int i, status = 201;

	for (i = 0; i < f->nresults; i++)
		if (strcmp(f->results[i].run_id, run) == 0)
			fr = &f->results[i];
	if (fr) {
		status = 200;
	} else if (f->nresults < FAKE_MAX_RESULTS) {
		fr = &f->results[f->nresults++];
		snprintf(fr->run_id, sizeof(fr->run_id), "%.64s", run);
		fr->ok = r->ok;
		snprintf(fr->error, sizeof(fr->error), "%s", r->error);
		fr->n_metrics = (unsigned int)r->n_metrics;
		record(f, "result %s ok=%d metrics=%zu error=%s", run, r->ok, r->n_metrics,
		       r->error);
	}
	if (fr)
		fr->posts++;
	return status;
}

/* One item of a batch (caller holds f->mu): its ack, as the controller gives it. */
static void batch_one(struct fake_ctl *f, const Fjord__V1__Result *r, Fjord__V1__ResultItemAck *a)
{
	a->run_id = r->run_id;
	if (!r->run_id[0]) {
		a->status = 400;
		a->message = "runId is missing";
	} else if (f->item_fail_times && strcmp(r->run_id, f->item_fail_run) == 0) {
		f->item_fail_times--;
		a->status = f->item_fail_status;
		a->message = "failure injected by the test";
	} else if (f->refuse_results) {
		a->status = 400;
		a->message = "results refused by the test";
	} else {
		a->status = store_result(f, r, r->run_id);
		a->duplicate = a->status == 200;
	}
}

static enum MHD_Result do_batch(struct fake_ctl *f, struct MHD_Connection *c,
				const struct conn_body *b)
{
	Fjord__V1__ResultBatch *rb;
	Fjord__V1__ResultBatchAck ack = FJORD__V1__RESULT_BATCH_ACK__INIT;
	Fjord__V1__ResultItemAck *items, **ptrs;
	enum MHD_Result rc;
	unsigned int st;
	size_t i;

	pthread_mutex_lock(&f->mu);
	f->batches++;
	st = f->batch_off ? 404 : f->batch_status_all;
	pthread_mutex_unlock(&f->mu);
	if (st)
		return reply_error(c, st,
				   st == 404 ? "no route for POST /api/v1/results:batch"
					     : "batch refused by the test");
	rb = fjord__v1__result_batch__unpack(NULL, b->len, b->buf);
	if (!rb)
		return reply_error(c, 400, "body is not a ResultBatch");
	if (rb->n_results == 0 || (f->batch_max && rb->n_results > f->batch_max)) {
		st = rb->n_results ? 413 : 400;
		fjord__v1__result_batch__free_unpacked(rb, NULL);
		return reply_error(c, st, "results: 1 to batch_max results");
	}
	items = calloc(rb->n_results, sizeof(*items));
	ptrs = calloc(rb->n_results, sizeof(*ptrs));
	if (!items || !ptrs) {
		free(items);
		free(ptrs);
		fjord__v1__result_batch__free_unpacked(rb, NULL);
		return reply_error(c, 500, "out of memory");
	}
	pthread_mutex_lock(&f->mu);
	for (i = 0; i < rb->n_results; i++) {
		fjord__v1__result_item_ack__init(&items[i]);
		batch_one(f, rb->results[i], &items[i]);
		ptrs[i] = &items[i];
	}
	f->batch_items += (unsigned int)rb->n_results;
	ack.items = ptrs;
	/* A broken controller: one ack short. */
	ack.n_items = rb->n_results - (f->batch_bad_ack ? 1 : 0);
	rc = reply_msg(c, 200, &ack.base);
	pthread_mutex_unlock(&f->mu);
	free(items);
	free(ptrs);
	fjord__v1__result_batch__free_unpacked(rb, NULL);
	return rc;
}

static enum MHD_Result do_result(struct fake_ctl *f, struct MHD_Connection *c, const char *run,
				 const struct conn_body *b)
{
	Fjord__V1__Result *r = fjord__v1__result__unpack(NULL, b->len, b->buf);
	Fjord__V1__ResultAck ack = FJORD__V1__RESULT_ACK__INIT;
	unsigned int status;
	enum MHD_Result rc;

	if (!r)
		return reply_error(c, 400, "body is not a Result");
	if (strcmp(r->run_id, run) != 0) {
		fjord__v1__result__free_unpacked(r, NULL);
		return reply_error(c, 400, "run_id differs from the URL");
	}
	pthread_mutex_lock(&f->mu);
	f->single_posts++;
	if (f->refuse_results) {
		pthread_mutex_unlock(&f->mu);
		fjord__v1__result__free_unpacked(r, NULL);
		return reply_error(c, 400, "results refused by the test");
	}
	status = store_result(f, r, run);
	ack.duplicate = status == 200;
	ack.run_id = (char *)run;
	rc = reply_msg(c, status, &ack.base);
	pthread_mutex_unlock(&f->mu);
	fjord__v1__result__free_unpacked(r, NULL);
	return rc;
}

/* Caller holds f->mu. */
static struct fake_trace *find_trace(struct fake_ctl *f, const char *run, const char *name,
				     int create)
{
	unsigned int i;

	for (i = 0; i < f->ntraces; i++)
		if (strcmp(f->traces[i].run_id, run) == 0 && strcmp(f->traces[i].name, name) == 0)
			return &f->traces[i];
	if (!create || f->ntraces == FAKE_MAX_TRACES)
		return NULL;
	snprintf(f->traces[f->ntraces].run_id, 65, "%.64s", run);
	snprintf(f->traces[f->ntraces].name, 65, "%.64s", name);
	return &f->traces[f->ntraces++];
}

static void sha256_hex(const uint8_t *p, size_t len, char hex[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;

	EVP_Digest(p, len, md, &mdlen, EVP_sha256(), NULL);
	for (i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

static enum MHD_Result held_reply(struct MHD_Connection *c, unsigned int status,
				  const struct fake_trace *t)
{
	char range[64];

	if (!t || t->len == 0)
		return reply(c, status, "", 0, NULL);
	snprintf(range, sizeof(range), "bytes=0-%zu", t->len - 1);
	return reply(c, status, "", 0, range);
}

static enum MHD_Result do_head(struct fake_ctl *f, struct MHD_Connection *c, const char *run,
			       const char *name)
{
	struct fake_trace *t;
	enum MHD_Result rc;

	pthread_mutex_lock(&f->mu);
	f->heads++;
	t = find_trace(f, run, name, 0);
	if (t && t->complete)
		rc = reply(c, 200, "", 0, NULL);
	else
		rc = held_reply(c, 308, t);
	pthread_mutex_unlock(&f->mu);
	return rc;
}

static enum MHD_Result finish_trace(struct fake_ctl *f, struct MHD_Connection *c,
				    struct fake_trace *t, const char *want_sha)
{
	Fjord__V1__TraceInfo ti = FJORD__V1__TRACE_INFO__INIT;
	char hex[65];

	sha256_hex(t->data, t->len, hex);
	if (strcmp(hex, want_sha) != 0) {
		free(t->data);
		t->data = NULL;
		t->len = 0;
		return reply_error(c, 422, "SHA-256 mismatch");
	}
	t->complete = 1;
	record(f, "trace %s %s size=%zu sha256=%s", t->run_id, t->name, t->len, hex);
	ti.run_id = t->run_id;
	ti.name = t->name;
	ti.sha256 = hex;
	ti.size = t->len;
	return reply_msg(c, 201, &ti.base);
}

static enum MHD_Result do_put(struct fake_ctl *f, struct MHD_Connection *c, const char *run,
			      const char *name, const struct conn_body *b)
{
	const char *cr = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Range");
	const char *sha = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Fjord-Sha256");
	unsigned long long first, last, total;
	struct fake_trace *t;
	enum MHD_Result rc;
	uint8_t *nd;

	if (!cr || sscanf(cr, "bytes %llu-%llu/%llu", &first, &last, &total) != 3 || last < first ||
	    last >= total || last - first + 1 != b->len)
		return reply_error(c, 400, "bad Content-Range");
	if (!sha || strlen(sha) != 64)
		return reply_error(c, 400, "missing X-Fjord-Sha256");
	if (total > FAKE_TRACE_MAX)
		return reply_error(c, 413, "trace too large");
	pthread_mutex_lock(&f->mu);
	if (f->put_budget_on && f->put_budget-- == 0) {
		f->put_budget_on = 0;
		pthread_mutex_unlock(&f->mu);
		return reply_error(c, 503, "injected failure in the middle of an upload");
	}
	f->puts++;
	t = find_trace(f, run, name, 1);
	/* Every byte held but not stored (a stop before storing): a PUT finishes it, as the
	 * controller's ctl_traces_begin() does. */
	if (t && !t->complete && t->len && t->len == t->total && total == t->total &&
	    !f->stuck_traces) {
		rc = finish_trace(f, c, t, sha);
		pthread_mutex_unlock(&f->mu);
		return rc;
	}
	if (!t || t->complete || first != t->len) {
		rc = t && t->complete ? reply(c, 200, "", 0, NULL) : held_reply(c, 409, t);
		pthread_mutex_unlock(&f->mu);
		return rc;
	}
	nd = realloc(t->data, t->len + b->len + 1);
	if (!nd) {
		pthread_mutex_unlock(&f->mu);
		return reply_error(c, 500, "out of memory");
	}
	t->data = nd;
	memcpy(t->data + t->len, b->buf, b->len);
	t->len += b->len;
	t->total = total;
	f->put_bytes += (unsigned int)b->len;
	if (t->len == total && f->lose_store) {
		f->lose_store = 0;
		rc = reply_error(c, 503, "injected stop between the last byte and storing it");
	} else {
		rc = t->len == total && !f->stuck_traces ? finish_trace(f, c, t, sha)
							 : held_reply(c, 308, t);
	}
	pthread_mutex_unlock(&f->mu);
	return rc;
}

static int split_run_path(const char *url, char *run, char *rest, size_t cap)
{
	const char *p = url + strlen("/api/v1/runs/"), *slash = strchr(p, '/');

	if (!slash || (size_t)(slash - p) >= cap || strlen(slash + 1) >= cap)
		return -EINVAL;
	memcpy(run, p, (size_t)(slash - p));
	run[slash - p] = 0;
	snprintf(rest, cap, "%s", slash + 1);
	return 0;
}

static enum MHD_Result route(struct fake_ctl *f, struct MHD_Connection *c, const char *url,
			     const char *method, const struct conn_body *b)
{
	char run[128], rest[128];
	int fail, ok;

	pthread_mutex_lock(&f->mu);
	fail = f->fail_next > 0;
	if (fail)
		f->fail_next--;
	ok = authorized(f, c);
	pthread_mutex_unlock(&f->mu);
	if (fail)
		return reply_error(c, 503, "injected failure");
	if (b->too_big)
		return reply_error(c, 413, "body too large");
	if (strcmp(url, "/api/v1/enroll") == 0 && strcmp(method, "POST") == 0)
		return do_enroll(f, c, b);
	if (!ok)
		return reply_error(c, 401, "unknown agent token");
	if (strcmp(url, "/api/v1/poll") == 0 && strcmp(method, "POST") == 0)
		return do_poll(f, c, b);
	if (strcmp(url, "/api/v1/results:batch") == 0 && strcmp(method, "POST") == 0)
		return do_batch(f, c, b);
	if (strncmp(url, "/api/v1/runs/", 13) != 0 || split_run_path(url, run, rest, sizeof(run)))
		return reply_error(c, 404, "no such route");
	if (strcmp(rest, "result") == 0 && strcmp(method, "POST") == 0)
		return do_result(f, c, run, b);
	if (strncmp(rest, "traces/", 7) == 0 && strcmp(method, "HEAD") == 0)
		return do_head(f, c, run, rest + 7);
	if (strncmp(rest, "traces/", 7) == 0 && strcmp(method, "PUT") == 0)
		return do_put(f, c, run, rest + 7, b);
	return reply_error(c, 404, "no such route");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *data,
				  size_t *size, void **con_cls)
{
	struct fake_ctl *f = cls;
	struct conn_body *b = *con_cls;

	(void)version;
	if (!b) {
		b = calloc(1, sizeof(*b));
		if (!b)
			return MHD_NO;
		*con_cls = b;
		return MHD_YES;
	}
	if (*size) {
		if (b->len + *size > FAKE_BODY_MAX) {
			b->too_big = 1;
		} else {
			uint8_t *nb = realloc(b->buf, b->len + *size + 1);

			if (!nb)
				return MHD_NO;
			b->buf = nb;
			memcpy(b->buf + b->len, data, *size);
			b->len += *size;
		}
		*size = 0;
		return MHD_YES;
	}
	return route(f, c, url, method, b);
}

static void on_done(void *cls, struct MHD_Connection *c, void **con_cls,
		    enum MHD_RequestTerminationCode toe)
{
	struct conn_body *b = *con_cls;

	(void)cls;
	(void)c;
	(void)toe;
	if (b) {
		free(b->buf);
		free(b);
		*con_cls = NULL;
	}
}

int fake_ctl_start(unsigned int port, const char *secret, const char *rec, struct fake_ctl **out)
{
	struct fake_ctl *f = calloc(1, sizeof(*f));
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	const union MHD_DaemonInfo *di;

	if (!f)
		return -ENOMEM;
	pthread_mutex_init(&f->mu, NULL);
	snprintf(f->secret, sizeof(f->secret), "%s", secret);
	f->hold_ms = 1000;
	if (rec) {
		f->record = fopen(rec, "a");
		if (!f->record) {
			free(f);
			return -errno;
		}
	}
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	f->d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
					MHD_USE_ERROR_LOG,
				(uint16_t)port, NULL, NULL, on_request, f, MHD_OPTION_SOCK_ADDR,
				&sa, MHD_OPTION_NOTIFY_COMPLETED, on_done, f,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)60, MHD_OPTION_END);
	if (!f->d) {
		if (f->record)
			fclose(f->record);
		free(f);
		return -EADDRINUSE;
	}
	di = MHD_get_daemon_info(f->d, MHD_DAEMON_INFO_BIND_PORT);
	f->port = di ? di->port : port;
	*out = f;
	return 0;
}

void fake_ctl_stop(struct fake_ctl *f)
{
	unsigned int i;

	if (!f)
		return;
	pthread_mutex_lock(&f->mu);
	f->stopping = 1;
	pthread_mutex_unlock(&f->mu);
	MHD_stop_daemon(f->d);
	for (i = 0; i < f->ncmds; i++)
		free(f->cmds[i].buf);
	for (i = 0; i < f->ntraces; i++)
		free(f->traces[i].data);
	if (f->record)
		fclose(f->record);
	pthread_mutex_destroy(&f->mu);
	free(f);
}

unsigned int fake_ctl_port(const struct fake_ctl *f)
{
	return f->port;
}

int fake_ctl_queue(struct fake_ctl *f, const Fjord__V1__Command *cmd)
{
	size_t len = fjord__v1__command__get_packed_size(cmd);
	uint8_t *buf = malloc(len + 1);

	if (!buf)
		return -ENOMEM;
	fjord__v1__command__pack(cmd, buf);
	pthread_mutex_lock(&f->mu);
	if (f->ncmds == FAKE_MAX_CMDS) {
		pthread_mutex_unlock(&f->mu);
		free(buf);
		return -ENOSPC;
	}
	f->cmds[f->ncmds].buf = buf;
	f->cmds[f->ncmds].len = len;
	f->ncmds++;
	pthread_mutex_unlock(&f->mu);
	return 0;
}

int fake_ctl_queue_echo(struct fake_ctl *f, const char *run_id, unsigned int count,
			unsigned int bytes, int64_t deadline_ms)
{
	Fjord__V1__Command cmd = FJORD__V1__COMMAND__INIT;
	Fjord__V1__RunCommand rc = FJORD__V1__RUN_COMMAND__INIT;
	Fjord__V1__Run run = FJORD__V1__RUN__INIT;
	Fjord__V1__ExperimentSpec spec = FJORD__V1__EXPERIMENT_SPEC__INIT;
	Fjord__V1__EchoParams echo = FJORD__V1__ECHO_PARAMS__INIT;
	Fjord__V1__Path path = FJORD__V1__PATH__INIT, *paths[1] = { &path };

	run.id = (char *)run_id;
	run.type = FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_ECHO;
	run.stack = FJORD__V1__STACK__STACK_KERNEL;
	run.deadline_ms = deadline_ms;
	run.paths = paths;
	run.n_paths = 1;
	path.family = FJORD__V1__ADDRESS_FAMILY__ADDRESS_FAMILY_IPV4;
	path.remote_address = "127.0.0.1";
	path.local_isp = "lo-a";
	path.remote_isp = "lo-b";
	echo.count = count;
	echo.message_bytes = bytes;
	spec.type = FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_ECHO;
	spec.params_case = FJORD__V1__EXPERIMENT_SPEC__PARAMS_ECHO;
	spec.echo = &echo;
	rc.run = &run;
	rc.spec = &spec;
	cmd.kind_case = FJORD__V1__COMMAND__KIND_RUN;
	cmd.run = &rc;
	return fake_ctl_queue(f, &cmd);
}

int fake_ctl_queue_cancel(struct fake_ctl *f, const char *run_id, const char *reason)
{
	Fjord__V1__Command cmd = FJORD__V1__COMMAND__INIT;
	Fjord__V1__CancelCommand cc = FJORD__V1__CANCEL_COMMAND__INIT;

	cc.run_id = (char *)run_id;
	cc.reason = (char *)reason;
	cmd.kind_case = FJORD__V1__COMMAND__KIND_CANCEL;
	cmd.cancel = &cc;
	return fake_ctl_queue(f, &cmd);
}

unsigned int fake_ctl_queued(struct fake_ctl *f)
{
	unsigned int n;

	pthread_mutex_lock(&f->mu);
	n = f->ncmds;
	pthread_mutex_unlock(&f->mu);
	return n;
}

void fake_ctl_fail_next(struct fake_ctl *f, unsigned int n)
{
	pthread_mutex_lock(&f->mu);
	f->fail_next = n;
	pthread_mutex_unlock(&f->mu);
}

void fake_ctl_fail_put_after(struct fake_ctl *f, unsigned int n)
{
	pthread_mutex_lock(&f->mu);
	f->put_budget = n;
	f->put_budget_on = 1;
	pthread_mutex_unlock(&f->mu);
}

void fake_ctl_vanish_after_dispatch(struct fake_ctl *f)
{
	pthread_mutex_lock(&f->mu);
	f->vanish = 1;
	pthread_mutex_unlock(&f->mu);
}

void fake_ctl_revoke_tokens(struct fake_ctl *f)
{
	pthread_mutex_lock(&f->mu);
	f->ntok = 0;
	pthread_mutex_unlock(&f->mu);
}

void fake_ctl_stick_traces(struct fake_ctl *f, int on)
{
	pthread_mutex_lock(&f->mu);
	f->stuck_traces = on;
	pthread_mutex_unlock(&f->mu);
}

void fake_ctl_lose_store(struct fake_ctl *f)
{
	pthread_mutex_lock(&f->mu);
	f->lose_store = 1;
	pthread_mutex_unlock(&f->mu);
}

void fake_ctl_refuse_results(struct fake_ctl *f, int on)
{
	pthread_mutex_lock(&f->mu);
	f->refuse_results = on;
	pthread_mutex_unlock(&f->mu);
}

void fake_ctl_batch_mode(struct fake_ctl *f, int off, unsigned int max, unsigned int status_all,
			 int bad_ack)
{
	pthread_mutex_lock(&f->mu);
	f->batch_off = off;
	f->batch_max = max;
	f->batch_status_all = status_all;
	f->batch_bad_ack = bad_ack;
	pthread_mutex_unlock(&f->mu);
}

void fake_ctl_batch_fail_item(struct fake_ctl *f, const char *run_id, unsigned int status,
			      unsigned int times)
{
	pthread_mutex_lock(&f->mu);
	snprintf(f->item_fail_run, sizeof(f->item_fail_run), "%.64s", run_id);
	f->item_fail_status = status;
	f->item_fail_times = times;
	pthread_mutex_unlock(&f->mu);
}

void fake_ctl_set_hold_ms(struct fake_ctl *f, unsigned int ms)
{
	pthread_mutex_lock(&f->mu);
	f->hold_ms = ms;
	pthread_mutex_unlock(&f->mu);
}

unsigned int fake_ctl_results(struct fake_ctl *f)
{
	unsigned int n;

	pthread_mutex_lock(&f->mu);
	n = f->nresults;
	pthread_mutex_unlock(&f->mu);
	return n;
}

int fake_ctl_result(struct fake_ctl *f, const char *run_id, struct fake_result *out)
{
	unsigned int i;
	int rc = -ENOENT;

	pthread_mutex_lock(&f->mu);
	for (i = 0; i < f->nresults; i++) {
		if (strcmp(f->results[i].run_id, run_id) == 0) {
			*out = f->results[i];
			rc = 0;
		}
	}
	pthread_mutex_unlock(&f->mu);
	return rc;
}

long fake_ctl_trace(struct fake_ctl *f, const char *run_id, const char *name, uint8_t *buf,
		    size_t cap)
{
	struct fake_trace *t;
	long rc = -ENOENT;

	pthread_mutex_lock(&f->mu);
	t = find_trace(f, run_id, name, 0);
	if (t && t->complete) {
		memcpy(buf, t->data, t->len < cap ? t->len : cap);
		rc = (long)t->len;
	}
	pthread_mutex_unlock(&f->mu);
	return rc;
}

unsigned int fake_ctl_count(struct fake_ctl *f, const char *what)
{
	unsigned int n = 0;

	pthread_mutex_lock(&f->mu);
	if (strcmp(what, "enroll") == 0)
		n = f->enrolls;
	else if (strcmp(what, "poll") == 0)
		n = f->polls;
	else if (strcmp(what, "put") == 0)
		n = f->puts;
	else if (strcmp(what, "head") == 0)
		n = f->heads;
	else if (strcmp(what, "put_bytes") == 0)
		n = f->put_bytes;
	else if (strcmp(what, "result") == 0)
		n = f->single_posts;
	else if (strcmp(what, "batch") == 0)
		n = f->batches;
	else if (strcmp(what, "batch_items") == 0)
		n = f->batch_items;
	pthread_mutex_unlock(&f->mu);
	return n;
}

void fake_ctl_last_poll(struct fake_ctl *f, char *first_running, size_t len,
			unsigned int *n_running, char *version, size_t vlen, unsigned int *wait_s)
{
	pthread_mutex_lock(&f->mu);
	snprintf(first_running, len, "%s", f->last_running);
	snprintf(version, vlen, "%s", f->last_version);
	*n_running = f->last_n_running;
	*wait_s = f->last_wait_s;
	pthread_mutex_unlock(&f->mu);
}
