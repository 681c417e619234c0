/* Spool -> controller. */
#include "agent_upload.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent_backoff.h"
#include "agent_config.h"
#include "agent_ctl.h"
#include "agent_http.h"
#include "agent_loop.h"
#include "agent_spool.h"
#include "fj_log.h"
#include "fjord.pb-c.h"

#define UPLOAD_MAX_REJECTED 256
#define UPLOAD_MAX_SHA_FAIL 2
#define UPLOAD_MAX_RESTARTS 5
/* Pending results go in one POST .../results:batch of at most this many and this many bytes. */
#define UPLOAD_BATCH_MAX   100
#define UPLOAD_BATCH_BYTES (2u << 20)
/* Spool items looked at when gathering a batch (traces are listed too). */
#define UPLOAD_LIST_MAX 4096

struct up_item {
	struct agent_spool_item it;
	char path[600];
	uint64_t offset;
	char sha[65];
	unsigned int sha_failures;
	unsigned int restarts; /* answers that claimed the whole file without storing it */
	int finishing;	       /* the last byte was sent again to make the controller store it */
};

struct agent_upload {
	struct agent_loop *loop;
	struct agent_http *http;
	struct agent_spool *spool;
	struct agent_ctl *ctl;
	struct agent_backoff backoff;
	size_t chunk;
	uint64_t timer, req;
	int busy; /* a request or a backoff wait is pending */
	int have_item;
	struct up_item cur;
	char token[AGENT_TOKEN_MAX + 1]; /* the token the request in flight carries */
	char rejected[UPLOAD_MAX_REJECTED][2 * AGENT_ID_MAX + 2];
	unsigned int n_rejected;
	unsigned int acked;
	/* The batch route: one request for every pending result. */
	int batch_off;		/* the controller has no batch route: one result per request */
	int in_batch;		/* the request in flight (or its backoff) is a batch */
	unsigned int batch_cap; /* results per batch; halved on 413 */
	unsigned int singles;	/* results to send alone before batching again */
	unsigned int batch_n;
	char batch_ids[UPLOAD_BATCH_MAX][AGENT_ID_MAX + 1];
	unsigned int batches; /* batches answered item by item */
};

static void upload_next(struct agent_upload *u);
static void on_batch(const struct agent_http_resp *resp, void *arg);

int agent_upload_create(struct agent_loop *loop, struct agent_http *http, struct agent_spool *spool,
			struct agent_ctl *ctl, unsigned int backoff_base_ms,
			unsigned int backoff_max_ms, struct agent_upload **out)
{
	struct agent_upload *u = calloc(1, sizeof(*u));

	if (!u)
		return -ENOMEM;
	u->loop = loop;
	u->http = http;
	u->spool = spool;
	u->ctl = ctl;
	u->chunk = AGENT_UPLOAD_CHUNK;
	u->batch_cap = UPLOAD_BATCH_MAX;
	agent_backoff_init(&u->backoff, backoff_base_ms, backoff_max_ms, 0);
	*out = u;
	return 0;
}

void agent_upload_destroy(struct agent_upload *u)
{
	if (!u)
		return;
	if (u->timer)
		agent_loop_timer_del(u->loop, u->timer);
	if (u->req)
		agent_http_cancel(u->http, u->req);
	free(u);
}

void agent_upload_set_chunk(struct agent_upload *u, size_t bytes)
{
	u->chunk = bytes ? bytes : AGENT_UPLOAD_CHUNK;
}

unsigned int agent_upload_rejected(const struct agent_upload *u)
{
	return u->n_rejected;
}

unsigned int agent_upload_acked(const struct agent_upload *u)
{
	return u->acked;
}

unsigned int agent_upload_batches(const struct agent_upload *u)
{
	return u->batches;
}

static void item_key(const char *run_id, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", run_id, name);
}

static int is_rejected(const struct agent_upload *u, const struct agent_spool_item *it)
{
	char key[2 * AGENT_ID_MAX + 2];
	unsigned int i;

	item_key(it->run_id, it->name, key, sizeof(key));
	for (i = 0; i < u->n_rejected; i++)
		if (strcmp(u->rejected[i], key) == 0)
			return 1;
	return 0;
}

/* name "" is the run's result. */
static void reject_item(struct agent_upload *u, const char *run_id, const char *name,
			const char *why)
{
	fj_err("upload of %s %s%s%s refused by the controller (%s); it stays in the spool",
	       name[0] ? "trace" : "result of run", run_id, name[0] ? "/" : "", name, why);
	if (u->n_rejected < UPLOAD_MAX_REJECTED) {
		item_key(run_id, name, u->rejected[u->n_rejected], sizeof(u->rejected[0]));
		u->n_rejected++;
	}
}

static void reject(struct agent_upload *u, const char *why)
{
	reject_item(u, u->cur.it.run_id, u->cur.it.name, why);
}

/* Picks the oldest item not refused before; 0 if there is one. */
static int pick_item(struct agent_upload *u)
{
	struct agent_spool_item *items = NULL;
	size_t n = 0, i;
	int found = -ENOENT;

	if (agent_spool_list(u->spool, &items, &n, UPLOAD_MAX_REJECTED + 1) < 0)
		return -EIO;
	for (i = 0; i < n; i++) {
		if (is_rejected(u, &items[i]))
			continue;
		memset(&u->cur, 0, sizeof(u->cur));
		u->cur.it = items[i];
		found = 0;
		break;
	}
	free(items);
	return found;
}

int agent_upload_idle(struct agent_upload *u)
{
	if (u->busy || u->have_item)
		return 0;
	return pick_item(u) == -ENOENT;
}

static void on_retry(struct agent_loop *loop, uint64_t id, void *arg)
{
	struct agent_upload *u = arg;

	(void)loop;
	(void)id;
	u->timer = 0;
	u->busy = 0;
	u->in_batch = 0;
	upload_next(u);
}

static void retry_later(struct agent_upload *u, const char *why)
{
	uint64_t d = agent_backoff_next(&u->backoff);

	if (u->in_batch)
		fj_warn("upload of a batch of %u results failed: %s; retrying in %llu ms",
			u->batch_n, why, (unsigned long long)d);
	else
		fj_warn("upload of run %s%s%s failed: %s; retrying in %llu ms", u->cur.it.run_id,
			u->cur.it.name[0] ? " trace " : " result", u->cur.it.name, why,
			(unsigned long long)d);
	u->busy = 1;
	u->timer = agent_loop_timer_add(u->loop, d, on_retry, u);
}

static void describe(const struct agent_http_resp *resp, char *buf, size_t len)
{
	char msg[200];

	if (resp->status == 0) {
		snprintf(buf, len, "%s", resp->error ? resp->error : "no answer");
		return;
	}
	agent_ctl_error_text(resp->body, resp->len, resp->content_type, msg, sizeof(msg));
	snprintf(buf, len, "HTTP %ld%s%s", resp->status, msg[0] ? ": " : "", msg);
}

/* Common answers; returns 1 when handled (the caller stops). */
static int handle_common(struct agent_upload *u, const struct agent_http_resp *resp)
{
	char why[300];

	u->req = 0;
	u->busy = 0;
	if (resp->status == 401) {
		/* The controller will see us again after enrolling: wait for the kick. */
		agent_ctl_unauthorized(u->ctl, u->token);
		return 1;
	}
	if (resp->status == 0 || resp->status >= 500 || resp->status == 429 ||
	    resp->status == 408) {
		describe(resp, why, sizeof(why));
		retry_later(u, why);
		return 1;
	}
	return 0;
}

static void done_item(struct agent_upload *u, int acked)
{
	int rc = 0;

	if (acked) {
		rc = u->cur.it.name[0]
			     ? agent_spool_ack_trace(u->spool, u->cur.it.run_id, u->cur.it.name)
			     : agent_spool_ack_result(u->spool, u->cur.it.run_id);
		if (rc < 0 && rc != -ENOENT)
			fj_err("spool: cannot remove acknowledged %s of run %s: %s",
			       u->cur.it.name[0] ? u->cur.it.name : "result", u->cur.it.run_id,
			       strerror(-rc));
		u->acked++;
		fj_info("uploaded %s of run %s", u->cur.it.name[0] ? u->cur.it.name : "result",
			u->cur.it.run_id);
	}
	agent_backoff_reset(&u->backoff);
	u->have_item = 0;
	upload_next(u);
}

/* ---- results ---- */

static void on_result(const struct agent_http_resp *resp, void *arg)
{
	struct agent_upload *u = arg;
	Fjord__V1__ResultAck *ack;
	char why[300];

	if (handle_common(u, resp))
		return;
	if (resp->status == 200 || resp->status == 201) {
		ack = fjord__v1__result_ack__unpack(NULL, resp->len, resp->body);
		if (!ack || strcmp(ack->run_id, u->cur.it.run_id) != 0) {
			/* Without a matching ack the result is not known to be stored. */
			if (ack)
				fjord__v1__result_ack__free_unpacked(ack, NULL);
			retry_later(u, "the answer is not a ResultAck for this run");
			return;
		}
		if (ack->duplicate)
			fj_info("result of run %s was stored before (duplicate)", ack->run_id);
		fjord__v1__result_ack__free_unpacked(ack, NULL);
		done_item(u, 1);
		return;
	}
	describe(resp, why, sizeof(why));
	reject(u, why);
	done_item(u, 0);
}

static int send_result(struct agent_upload *u)
{
	struct agent_http_req q = { 0 };
	char url[AGENT_URL_MAX + 128];
	uint8_t *buf;
	size_t len;
	int rc;

	rc = agent_spool_read_result(u->spool, u->cur.it.run_id, &buf, &len);
	if (rc < 0)
		return rc;
	if (u->singles)
		u->singles--;
	snprintf(url, sizeof(url), "%s/api/v1/runs/%s/result", agent_ctl_base(u->ctl),
		 u->cur.it.run_id);
	q.method = "POST";
	q.url = url;
	q.bearer = u->token;
	q.content_type = "application/x-protobuf";
	q.body = buf;
	q.len = len;
	q.timeout_ms = 30000;
	rc = agent_http_start(u->http, &q, on_result, u, &u->req);
	free(buf);
	return rc;
}

/* ---- several results in one request ---- */

/*
 * Gathers the pending results (oldest first, none refused before) into
 * batch_ids, at most batch_cap of them; returns how many.
 */
static unsigned int collect_batch(struct agent_upload *u)
{
	struct agent_spool_item *items = NULL;
	size_t n = 0, i;

	u->batch_n = 0;
	if (agent_spool_list(u->spool, &items, &n, UPLOAD_LIST_MAX) < 0)
		return 0;
	for (i = 0; i < n && u->batch_n < u->batch_cap && u->batch_n < UPLOAD_BATCH_MAX; i++) {
		if (items[i].name[0] || is_rejected(u, &items[i]))
			continue;
		snprintf(u->batch_ids[u->batch_n], sizeof(u->batch_ids[0]), "%s", items[i].run_id);
		u->batch_n++;
	}
	free(items);
	return u->batch_n;
}

/* Reads and decodes one spooled result; NULL if it cannot (it is then sent alone). */
static Fjord__V1__Result *load_result(struct agent_upload *u, const char *run_id, size_t *len)
{
	Fjord__V1__Result *r;
	uint8_t *buf;

	if (agent_spool_read_result(u->spool, run_id, &buf, len) < 0)
		return NULL;
	r = fjord__v1__result__unpack(NULL, *len, buf);
	free(buf);
	return r;
}

/*
 * Packs the gathered results into one ResultBatch (at most UPLOAD_BATCH_BYTES
 * of results) and posts it. batch_ids keeps exactly the runs sent, in order.
 * -EAGAIN when fewer than two could go in: they are then sent alone.
 */
static int send_batch(struct agent_upload *u)
{
	Fjord__V1__ResultBatch b = FJORD__V1__RESULT_BATCH__INIT;
	Fjord__V1__Result *rs[UPLOAD_BATCH_MAX];
	char *orig[UPLOAD_BATCH_MAX];
	struct agent_http_req q = { 0 };
	char url[AGENT_URL_MAX + 64];
	size_t total = 0, len = 0, i, n = 0;
	uint8_t *body = NULL;
	int rc = -EAGAIN;

	for (i = 0; i < u->batch_n; i++) {
		Fjord__V1__Result *r = load_result(u, u->batch_ids[i], &len);

		if (!r)
			continue;
		if (n > 0 && total + len > UPLOAD_BATCH_BYTES) {
			fjord__v1__result__free_unpacked(r, NULL);
			break;
		}
		if (r->run_id[0] && strcmp(r->run_id, u->batch_ids[i]) != 0) {
			/* Names another run than its folder: it goes alone, answered alone. */
			fjord__v1__result__free_unpacked(r, NULL);
			continue;
		}
		total += len;
		/* The batch names each run in the result, as the single route's URL does. */
		orig[n] = r->run_id;
		if (n != i)
			memmove(u->batch_ids[n], u->batch_ids[i], sizeof(u->batch_ids[0]));
		r->run_id = u->batch_ids[n];
		rs[n++] = r;
	}
	u->batch_n = (unsigned int)n;
	if (n >= 2) {
		b.results = rs;
		b.n_results = n;
		len = fjord__v1__result_batch__get_packed_size(&b);
		body = malloc(len ? len : 1);
		rc = body ? 0 : -ENOMEM;
		if (body)
			fjord__v1__result_batch__pack(&b, body);
	}
	for (i = 0; i < n; i++) {
		rs[i]->run_id = orig[i];
		fjord__v1__result__free_unpacked(rs[i], NULL);
	}
	if (rc)
		return rc;
	snprintf(url, sizeof(url), "%s/api/v1/results:batch", agent_ctl_base(u->ctl));
	q.method = "POST";
	q.url = url;
	q.bearer = u->token;
	q.content_type = "application/x-protobuf";
	q.body = body;
	q.len = len;
	q.timeout_ms = 60000;
	rc = agent_http_start(u->http, &q, on_batch, u, &u->req);
	free(body);
	if (!rc) {
		u->busy = 1;
		u->in_batch = 1;
	}
	return rc;
}

/* The answer to one item: 1 stored, 0 refused for good, -1 to send again. */
static int batch_item(struct agent_upload *u, const char *run_id, const Fjord__V1__ResultItemAck *a)
{
	char why[300];
	int rc;

	if (a->status == 200 || a->status == 201) {
		rc = agent_spool_ack_result(u->spool, run_id);
		if (rc < 0 && rc != -ENOENT)
			fj_err("spool: cannot remove acknowledged result of run %s: %s", run_id,
			       strerror(-rc));
		u->acked++;
		fj_info("uploaded result of run %s (batch%s)", run_id,
			a->duplicate ? ", stored before" : "");
		return 1;
	}
	if (a->status >= 400 && a->status < 500 && a->status != 408 && a->status != 429) {
		snprintf(why, sizeof(why), "%u in a batch%s%s", a->status,
			 a->message[0] ? ": " : "", a->message);
		reject_item(u, run_id, "", why);
		return 0;
	}
	fj_warn("result of run %s: %u in a batch%s%s; sending it again", run_id, a->status,
		a->message[0] ? ": " : "", a->message);
	return -1;
}

/* Whole-batch answers that say "not this way": fall back to single results. */
static void batch_refused(struct agent_upload *u, const struct agent_http_resp *resp)
{
	unsigned int half = (u->batch_n < u->batch_cap ? u->batch_n : u->batch_cap) / 2;
	char why[300];

	describe(resp, why, sizeof(why));
	if (resp->status == 404 || resp->status == 405 || resp->status == 501) {
		/* A controller without the route: one result per request from now on. */
		fj_info("the controller has no batch route (%s); one result per request", why);
		u->batch_off = 1;
	} else if (resp->status == 413 && half >= 2) {
		u->batch_cap = half;
		fj_info("batch of %u results too large (%s); at most %u per batch now", u->batch_n,
			why, u->batch_cap);
	} else {
		/*
		 * Refused as a whole (a malformed item, or too large even at two):
		 * these go one by one, where the controller's answer is about
		 * one result and a bad one is set aside alone.
		 */
		fj_warn("batch of %u results refused (%s); sending them one by one", u->batch_n,
			why);
		u->singles = u->batch_n;
	}
}

static void on_batch(const struct agent_http_resp *resp, void *arg)
{
	struct agent_upload *u = arg;
	Fjord__V1__ResultBatchAck *ack = NULL;
	unsigned int i, again = 0;

	if (handle_common(u, resp))
		return;
	u->in_batch = 0;
	if (resp->status == 200)
		ack = fjord__v1__result_batch_ack__unpack(NULL, resp->len, resp->body);
	if (resp->status == 200 && (!ack || ack->n_items != u->batch_n)) {
		/* Without one ack per result, none is known to be stored: go one by one. */
		fj_warn("the answer to a batch of %u results is not a ResultBatchAck for it; "
			"sending them one by one",
			u->batch_n);
		u->singles = u->batch_n;
	} else if (resp->status == 200) {
		for (i = 0; i < u->batch_n; i++) {
			const Fjord__V1__ResultItemAck *a = ack->items[i];

			if (strcmp(a->run_id, u->batch_ids[i]) != 0) {
				fj_warn("batch answer %u names run %s, not %s; sending it again", i,
					a->run_id, u->batch_ids[i]);
				again++;
			} else if (batch_item(u, u->batch_ids[i], a) < 0) {
				again++;
			}
		}
		u->batches++;
	} else {
		batch_refused(u, resp);
	}
	if (ack)
		fjord__v1__result_batch_ack__free_unpacked(ack, NULL);
	if (again) {
		u->in_batch = 1;
		retry_later(u, "some results were not stored");
		return;
	}
	agent_backoff_reset(&u->backoff);
	upload_next(u);
}

/* ---- traces ---- */

static int file_sha256(const char *path, char hex[65], uint64_t *size)
{
	unsigned char md[EVP_MAX_MD_SIZE], buf[65536];
	unsigned int mdlen = 0, i;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint64_t total = 0;
	ssize_t n;
	int fd, rc = 0;

	if (!ctx)
		return -ENOMEM;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		EVP_MD_CTX_free(ctx);
		return -errno;
	}
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		EVP_DigestUpdate(ctx, buf, (size_t)n);
		total += (uint64_t)n;
	}
	if (n < 0)
		rc = -errno;
	close(fd);
	EVP_DigestFinal_ex(ctx, md, &mdlen);
	EVP_MD_CTX_free(ctx);
	for (i = 0; i < mdlen && i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	hex[64] = 0;
	*size = total;
	return rc;
}

/* "bytes=0-N" -> N + 1; absent or unparsable -> 0. */
static uint64_t range_next(const char *range)
{
	const char *dash = strchr(range, '-');

	if (strncmp(range, "bytes=", 6) != 0 || !dash)
		return 0;
	return strtoull(dash + 1, NULL, 10) + 1;
}

static void trace_url(struct agent_upload *u, char *url, size_t len)
{
	snprintf(url, len, "%s/api/v1/runs/%s/traces/%s", agent_ctl_base(u->ctl), u->cur.it.run_id,
		 u->cur.it.name);
}

static int send_chunk(struct agent_upload *u);

static void after_trace_answer(struct agent_upload *u, const struct agent_http_resp *resp,
			       int is_head)
{
	char why[300];

	if (resp->status == 201 || resp->status == 200) {
		done_item(u, 1);
		return;
	}
	if (resp->status == 308 || (resp->status == 404 && is_head)) {
		u->cur.offset = resp->status == 308 ? range_next(resp->range) : 0;
	} else if (resp->status == 409) {
		/* Out of step with the controller: continue from what it holds. */
		u->cur.offset = range_next(resp->range);
	} else if (resp->status == 422 && ++u->cur.sha_failures < UPLOAD_MAX_SHA_FAIL) {
		fj_warn("trace %s/%s: controller saw a SHA-256 mismatch; uploading it again",
			u->cur.it.run_id, u->cur.it.name);
		u->cur.offset = 0;
	} else {
		describe(resp, why, sizeof(why));
		reject(u, why);
		done_item(u, 0);
		return;
	}
	if (u->cur.offset >= u->cur.it.size) {
		/*
		 * The controller says it holds every byte yet has not stored the
		 * trace: it stopped (was killed) between the last byte and
		 * storing it. A PUT of the last byte makes it store what it
		 * holds; it cannot be described as an empty range. If even that
		 * leaves the trace unstored, starting again at byte 0 at once
		 * could spin forever against such a controller, so go through
		 * the backoff, and after a few rounds leave the trace in the
		 * spool, skipped until restart.
		 */
		if (!u->cur.finishing) {
			u->cur.finishing = 1;
			u->cur.offset = u->cur.it.size - 1;
			if (send_chunk(u) < 0)
				retry_later(u, "cannot send a chunk");
			return;
		}
		u->cur.finishing = 0;
		u->cur.offset = 0;
		if (++u->cur.restarts > UPLOAD_MAX_RESTARTS) {
			reject(u, "controller holds the whole trace but does not store it");
			done_item(u, 0);
		} else {
			retry_later(u, "controller holds the whole trace but did not store it");
		}
		return;
	}
	if (send_chunk(u) < 0)
		retry_later(u, "cannot send a chunk");
}

static void on_head(const struct agent_http_resp *resp, void *arg)
{
	struct agent_upload *u = arg;

	if (handle_common(u, resp))
		return;
	after_trace_answer(u, resp, 1);
}

static void on_put(const struct agent_http_resp *resp, void *arg)
{
	struct agent_upload *u = arg;

	if (handle_common(u, resp))
		return;
	agent_backoff_reset(&u->backoff);
	after_trace_answer(u, resp, 0);
}

static int send_chunk(struct agent_upload *u)
{
	struct agent_http_req q = { 0 };
	char url[AGENT_URL_MAX + 256], cr[96], sha[96];
	const char *hdrs[3] = { cr, sha, NULL };
	uint64_t first = u->cur.offset, n = u->cur.it.size - first;
	uint8_t *buf;
	ssize_t r;
	int fd, rc;

	if (n > u->chunk)
		n = u->chunk;
	buf = malloc(n ? n : 1);
	if (!buf)
		return -ENOMEM;
	fd = open(u->cur.path, O_RDONLY | O_CLOEXEC);
	r = fd < 0 ? -1 : pread(fd, buf, n, (off_t)first);
	if (fd >= 0)
		close(fd);
	if (r != (ssize_t)n) {
		free(buf);
		return -EIO;
	}
	snprintf(cr, sizeof(cr), "Content-Range: bytes %llu-%llu/%llu", (unsigned long long)first,
		 (unsigned long long)(first + n - 1), (unsigned long long)u->cur.it.size);
	snprintf(sha, sizeof(sha), "X-Fjord-Sha256: %s", u->cur.sha);
	trace_url(u, url, sizeof(url));
	q.method = "PUT";
	q.url = url;
	q.bearer = u->token;
	q.content_type = "application/octet-stream";
	q.body = buf;
	q.len = n;
	q.headers = hdrs;
	q.timeout_ms = 120000;
	rc = agent_http_start(u->http, &q, on_put, u, &u->req);
	free(buf);
	if (!rc)
		u->busy = 1;
	return rc;
}

static int start_trace(struct agent_upload *u)
{
	struct agent_http_req q = { 0 };
	char url[AGENT_URL_MAX + 256];
	uint64_t size;
	int rc;

	rc = agent_spool_trace_path(u->spool, u->cur.it.run_id, u->cur.it.name, u->cur.path,
				    sizeof(u->cur.path));
	if (!rc)
		rc = file_sha256(u->cur.path, u->cur.sha, &size);
	if (rc < 0)
		return rc;
	u->cur.it.size = size;
	if (size == 0) {
		/* Nothing to send, and Content-Range cannot describe it. */
		fj_info("trace %s/%s is empty; dropping it", u->cur.it.run_id, u->cur.it.name);
		done_item(u, 1);
		return 0;
	}
	trace_url(u, url, sizeof(url));
	q.method = "HEAD";
	q.url = url;
	q.bearer = u->token;
	q.timeout_ms = 30000;
	rc = agent_http_start(u->http, &q, on_head, u, &u->req);
	if (!rc)
		u->busy = 1;
	return rc;
}

static void upload_next(struct agent_upload *u)
{
	const char *tok = agent_ctl_token(u->ctl);
	int rc;

	if (u->busy || !tok)
		return;
	u->in_batch = 0;
	snprintf(u->token, sizeof(u->token), "%s", tok);
	/* Several results pending: one request for them all, ahead of traces. */
	if (!u->have_item && !u->batch_off && !u->singles && collect_batch(u) >= 2) {
		rc = send_batch(u);
		if (!rc)
			return;
		if (rc != -EAGAIN)
			fj_warn("cannot send a batch of results (%s); sending them one by one",
				strerror(-rc));
		u->singles = u->batch_n;
	}
	if (!u->have_item) {
		if (pick_item(u) < 0)
			return;
		u->have_item = 1;
	}
	if (u->cur.it.name[0]) {
		/* A trace resumes from what the controller holds: always ask first. */
		rc = start_trace(u);
	} else {
		rc = send_result(u);
		if (!rc)
			u->busy = 1;
	}
	if (rc == -ENOENT) {
		/* Gone from the spool meanwhile. */
		u->have_item = 0;
		upload_next(u);
	} else if (rc < 0) {
		retry_later(u, strerror(-rc));
	}
}

void agent_upload_kick(struct agent_upload *u)
{
	upload_next(u);
}
