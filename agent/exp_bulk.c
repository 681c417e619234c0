/*
 * EXPERIMENT_TYPE_BULK and EXPERIMENT_TYPE_HANDOVER: a transfer for a byte
 * count or a time, upload (the responder's sink) or download (its source), of
 * the deterministic pseudo-random stream, checked with SHA-256 at the end.
 * For a kernel MPTCP run the client binds the first path's local address and
 * connects to its remote address; the kernel's path manager adds the other
 * subflows from the node's `ip mptcp endpoint`s. The sampler records every
 * subflow over time. A baseline run adds single-path TCP transfers over each
 * path, one after another; a handover run fires link events during the
 * transfer and measures the stall, the goodput dip and the recovery.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "agent_arena.h"
#include "bundled.h"
#include "exp.h"
#include "exp_link.h"
#include "exp_pcap.h"
#include "exp_sock.h"
#include "fj_clock.h"
#include "mptcp_info.h"
#include "sampler.h"

#define BULK_MAX_DURATION_S 3600
#define BULK_MAX_BYTES	    (1ull << 40)
#define BULK_CHUNK	    (64 * 1024)
#define BULK_MAX_PATHS	    8
#define BULK_DEADLINE_SLACK 300 /* ms the parent gets to collect our result */
/* Handover: windows over which goodput is judged. */
#define HO_BEFORE_MS  1000
#define HO_WINDOW_MS  500
#define HO_RECOVER_PC 50

struct bulk_opts {
	uint64_t bytes;
	uint32_t duration_ms;
	int download;
	unsigned int interval_ms;
	struct exp_link_sched *links; /* handover, or NULL */
	struct exp_trace *csv;	      /* subflows.csv, or NULL: no sampler */
};

struct progress {
	uint64_t t_ms; /* since the data started */
	uint64_t bytes;
};

struct bulk_res {
	int done;	 /* the transfer completed and was checked */
	int sha_ok;	 /* the stream's SHA-256 matched */
	int mptcp;	 /* the socket was IPPROTO_MPTCP */
	uint64_t bytes;	 /* payload bytes that arrived */
	uint64_t dur_ms; /* first byte to the last one confirmed */
	double goodput_bps;
	unsigned int max_subflows;
	uint64_t stall_ms;
	uint64_t t0_mono;      /* when the data started; progress times count from here */
	struct progress *prog; /* sampled progress (sampler runs only) */
	size_t n_prog, cap_prog;
	uint64_t last_change, last_prog; /* bundled runs: the latest progress and its time */
	char cc[32];
};

static int bulk_params(const Fjord__V1__BulkParams *b, const char *field, struct exp_out *out,
		       struct bulk_opts *o)
{
	memset(o, 0, sizeof(*o));
	if (!b) {
		exp_fail(out, "%s: missing (bytes or duration_s is needed)", field);
		return -EINVAL;
	}
	if (!b->bytes && !b->duration_s) {
		exp_fail(out, "%s: one of bytes and duration_s must be set", field);
		return -EINVAL;
	}
	if (b->bytes > BULK_MAX_BYTES) {
		exp_fail(out, "%s.bytes must be at most 2^40 (got %llu)", field,
			 (unsigned long long)b->bytes);
		return -EINVAL;
	}
	if (b->duration_s > BULK_MAX_DURATION_S) {
		exp_fail(out, "%s.duration_s must be at most %u (got %u)", field,
			 BULK_MAX_DURATION_S, b->duration_s);
		return -EINVAL;
	}
	if (b->direction != FJORD__V1__DIRECTION__DIRECTION_UNSPECIFIED &&
	    b->direction != FJORD__V1__DIRECTION__DIRECTION_UPLOAD &&
	    b->direction != FJORD__V1__DIRECTION__DIRECTION_DOWNLOAD) {
		exp_fail(out, "%s.direction: unknown value %d", field, (int)b->direction);
		return -EINVAL;
	}
	o->bytes = b->bytes;
	o->duration_ms = b->duration_s * 1000;
	o->download = b->direction == FJORD__V1__DIRECTION__DIRECTION_DOWNLOAD;
	return 0;
}

static void prog_add(struct bulk_res *res, uint64_t t, uint64_t bytes)
{
	if (res->n_prog == res->cap_prog) {
		size_t cap = res->cap_prog ? res->cap_prog * 2 : 256;
		struct progress *p;

		if (cap > 1000000)
			return;
		p = realloc(res->prog, cap * sizeof(*p));
		if (!p)
			return;
		res->prog = p;
		res->cap_prog = cap;
	}
	res->prog[res->n_prog].t_ms = t;
	res->prog[res->n_prog].bytes = bytes;
	res->n_prog++;
}

/* Data-level progress as the sender sees it acknowledged, or as received. */
static uint64_t sampled_progress(const struct sampler *s, const struct bulk_opts *o,
				 uint64_t app_bytes, uint64_t una0)
{
	uint64_t sum = 0;
	unsigned int i;

	if (o->download)
		return app_bytes;
	if (s->st.is_mptcp && !s->st.fallback)
		return s->st.snd_una - una0;
	for (i = 0; i < s->n_sf; i++)
		sum += s->sf[i].last.bytes_acked;
	return sum;
}

struct xfer {
	int fd;
	EVP_MD_CTX *md, *md_exp; /* the stream as sent or received; the expected one */
	uint8_t buf[BULK_CHUNK], exp[BULK_CHUNK];
	size_t buf_pos, buf_len;		 /* upload: generated, not yet sent */
	uint64_t off;				 /* bytes sent (upload) or received (download) */
	uint8_t trailer[AGENT_RESP_TRAILER_LEN]; /* upload: the sink's */
	size_t trailer_len;
	struct agent_resp_deframer df; /* download: the source's frames */
	int send_done, eof;
	uint32_t seed;
};

/* Upload: generate, hash what is sent, shut down when the byte count or the time is reached. */
static int xfer_send(struct xfer *x, const struct bulk_opts *o, uint64_t elapsed)
{
	for (;;) {
		ssize_t n;

		if ((o->bytes && x->off >= o->bytes) ||
		    (o->duration_ms && elapsed >= o->duration_ms)) {
			shutdown(x->fd, SHUT_WR);
			x->send_done = 1;
			return 0;
		}
		if (x->buf_pos == x->buf_len) {
			size_t len = BULK_CHUNK;

			if (o->bytes && o->bytes - x->off < len)
				len = (size_t)(o->bytes - x->off);
			agent_resp_fill(x->seed, x->off, x->buf, len);
			x->buf_pos = 0;
			x->buf_len = len;
		}
		n = send(x->fd, x->buf + x->buf_pos, x->buf_len - x->buf_pos, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n <= 0)
			return -errno;
		EVP_DigestUpdate(x->md, x->buf + x->buf_pos, (size_t)n);
		x->buf_pos += (size_t)n;
		x->off += (uint64_t)n;
		if (!o->bytes && !o->duration_ms)
			return 0;
		/* Give the loop a chance to sample on fast links. */
		if (x->buf_pos == x->buf_len)
			return 0;
	}
}

static int xfer_recv(struct xfer *x, const struct bulk_opts *o)
{
	for (;;) {
		ssize_t n;

		if (o->download)
			n = recv(x->fd, x->buf, sizeof(x->buf), 0);
		else
			n = recv(x->fd, x->trailer + x->trailer_len,
				 sizeof(x->trailer) - x->trailer_len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n < 0)
			return -errno;
		if (n == 0) {
			x->eof = 1;
			return 0;
		}
		if (!o->download) {
			x->trailer_len += (size_t)n;
			if (x->trailer_len == sizeof(x->trailer))
				return 0;
			continue;
		}
		n = agent_resp_deframe(&x->df, x->buf, (size_t)n);
		if (n < 0)
			return -EPROTO;
		EVP_DigestUpdate(x->md, x->buf, (size_t)n);
		agent_resp_fill(x->seed, x->off, x->exp, (size_t)n);
		EVP_DigestUpdate(x->md_exp, x->exp, (size_t)n);
		x->off += (uint64_t)n;
		return 0; /* back to the loop: sampling and link events stay on time */
	}
}

static int sha_final(EVP_MD_CTX *c, uint8_t md[32])
{
	unsigned int len = 0;

	return EVP_DigestFinal_ex(c, md, &len) && len == 32 ? 0 : -EIO;
}

/* Checks the finished stream; 0 or -EIO after exp_fail(). */
static int xfer_check(struct xfer *x, const struct bulk_opts *o, struct bulk_res *res,
		      uint64_t elapsed_ms, struct exp_out *out, const char *what)
{
	uint8_t a[32], b[32];
	struct agent_resp_trailer tr;

	if (o->download) {
		/*
		 * Only the end trailer says the stream is whole: a responder
		 * killed outright ends the connection with a FIN as well.
		 */
		if (!x->df.done) {
			exp_fail(out,
				 "%s: the responder's stream ended without its end trailer after "
				 "%llu bytes and %llu ms (the responder went away or the "
				 "connection was cut)",
				 what, (unsigned long long)x->off, (unsigned long long)elapsed_ms);
			return -EIO;
		}
		if (sha_final(x->md, a) || sha_final(x->md_exp, b))
			return exp_fail(out, "%s: SHA-256 failed", what), -EIO;
		res->bytes = x->off;
		res->sha_ok = !memcmp(a, b, 32) && !memcmp(a, x->df.tr.sha256, 32);
		if (x->df.tr.bytes != x->off) {
			exp_fail(out, "%s: received %llu bytes, the responder sent %llu", what,
				 (unsigned long long)x->off, (unsigned long long)x->df.tr.bytes);
			return -EIO;
		}
		if (o->bytes && x->off != o->bytes && (!o->duration_ms || x->off > o->bytes)) {
			exp_fail(out, "%s: the responder sent %llu of %llu bytes", what,
				 (unsigned long long)x->off, (unsigned long long)o->bytes);
			return -EIO;
		}
	} else {
		if (x->trailer_len == 0) {
			exp_fail(out,
				 "%s: the responder closed the connection without its trailer "
				 "(%llu bytes sent)",
				 what, (unsigned long long)x->off);
			return -EIO;
		}
		if (x->trailer_len != sizeof(x->trailer) ||
		    agent_resp_trailer_decode(x->trailer, &tr) < 0) {
			exp_fail(out, "%s: the responder's trailer is cut short or malformed",
				 what);
			return -EIO;
		}
		if (sha_final(x->md, a))
			return exp_fail(out, "%s: SHA-256 failed", what), -EIO;
		res->bytes = tr.bytes;
		res->sha_ok = tr.bytes == x->off && !memcmp(a, tr.sha256, 32);
		if (tr.bytes != x->off) {
			exp_fail(out, "%s: sent %llu bytes, the responder got %llu", what,
				 (unsigned long long)x->off, (unsigned long long)tr.bytes);
			return -EIO;
		}
	}
	if (!res->sha_ok) {
		exp_fail(out, "%s: SHA-256 of the stream differs between the two ends", what);
		return -EIO;
	}
	return 0;
}

/* One transfer over target t with stack; res says what happened. */
static void bulk_once(const Fjord__V1__RunCommand *cmd, const struct exp_env *env,
		      struct exp_out *out, Fjord__V1__Stack stack, const struct exp_target *t,
		      const struct bulk_opts *o, struct bulk_res *res, const char *what)
{
	struct agent_resp_request q = { 0 };
	struct agent_resp_reply reply;
	struct sampler smp;
	struct xfer *x = calloc(1, sizeof(*x));
	uint64_t t0, t_end = 0, una0 = 0, last_change, last_prog = 0, last_sample = 0;
	int rc = 0, mptcp = 0, use_sampler = o->csv != NULL;

	if (!x) {
		exp_fail(out, "%s: out of memory", what);
		return;
	}
	x->fd = -1;
	x->md = EVP_MD_CTX_new();
	x->md_exp = EVP_MD_CTX_new();
	if (!x->md || !x->md_exp || !EVP_DigestInit_ex(x->md, EVP_sha256(), NULL) ||
	    !EVP_DigestInit_ex(x->md_exp, EVP_sha256(), NULL)) {
		exp_fail(out, "%s: SHA-256 unavailable", what);
		goto out;
	}
	if (getrandom(&x->seed, sizeof(x->seed), 0) != sizeof(x->seed))
		x->seed = (uint32_t)fj_mono_us();
	q.type = o->download ? AGENT_RESP_SOURCE : AGENT_RESP_SINK;
	q.bytes = o->download ? o->bytes : 0;
	q.duration_ms = o->download ? o->duration_ms : 0;
	q.seed = x->seed;
	x->fd = exp_connect(cmd, stack, t, env, out, &mptcp);
	if (x->fd < 0)
		goto out;
	res->mptcp = mptcp;
	if (exp_handshake(x->fd, &q, &reply, out) < 0)
		goto out;
	fcntl(x->fd, F_SETFL, fcntl(x->fd, F_GETFL) | O_NONBLOCK);
	if (use_sampler) {
		sampler_init(&smp, out, cmd, x->fd, mptcp, o->interval_ms, o->csv);
		sampler_sample(&smp);
		una0 = smp.st.snd_una;
	}
	t0 = fj_mono_ms();
	res->t0_mono = t0;
	last_change = t0;
	if (use_sampler) {
		last_sample = smp.prev_ms;
		prog_add(res, 0, 0);
	}
	if (o->links)
		o->links->t0 = t0;
	for (;;) {
		uint64_t now = fj_mono_ms(), left = exp_left_ms(env);
		int timeout = 100;
		struct pollfd pfd = { .fd = x->fd, .events = POLLIN };

		if (left <= BULK_DEADLINE_SLACK) {
			exp_fail(out,
				 "%s: not finished before the run's deadline (%llu bytes so far)",
				 what, (unsigned long long)x->off);
			break;
		}
		if ((uint64_t)timeout > left - BULK_DEADLINE_SLACK)
			timeout = (int)(left - BULK_DEADLINE_SLACK);
		if (o->links) {
			uint32_t next = exp_link_run_due(o->links, out);

			exp_link_reap(o->links, out, 0);
			if (next < (uint32_t)timeout)
				timeout = (int)next;
		}
		if (use_sampler) {
			unsigned int next = sampler_tick(&smp);

			if (smp.prev_ms != last_sample) {
				/* A fresh sample: record progress and the longest stall. */
				uint64_t p = sampled_progress(&smp, o, x->off, una0);

				last_sample = smp.prev_ms;
				if (p > last_prog) {
					if (smp.prev_ms - last_change > res->stall_ms)
						res->stall_ms = smp.prev_ms - last_change;
					last_change = smp.prev_ms;
					last_prog = p;
				}
				prog_add(res, smp.prev_ms - t0, p);
			}
			if (next < (unsigned int)timeout)
				timeout = (int)next;
		}
		if (!o->download && !x->send_done) {
			rc = xfer_send(x, o, now - t0);
			if (rc < 0) {
				exp_fail(out, "%s: sending after %llu bytes: %s", what,
					 (unsigned long long)x->off, strerror(-rc));
				break;
			}
			if (!x->send_done)
				pfd.events |= POLLOUT;
		}
		if (x->eof || (o->download && x->df.done) ||
		    (!o->download && x->trailer_len == sizeof(x->trailer))) {
			t_end = fj_mono_ms();
			break;
		}
		if (poll(&pfd, 1, timeout) < 0 && errno != EINTR) {
			exp_fail(out, "%s: poll: %s", what, strerror(errno));
			break;
		}
		if (pfd.revents & (POLLIN | POLLERR | POLLHUP)) {
			rc = xfer_recv(x, o);
			if (rc < 0) {
				exp_fail(out, "%s: receiving after %llu bytes: %s", what,
					 (unsigned long long)x->off, strerror(-rc));
				break;
			}
		}
	}
	if (use_sampler) {
		uint64_t p;

		sampler_finish(&smp);
		p = sampled_progress(&smp, o, x->off, una0);
		prog_add(res, smp.prev_ms - t0, p);
		if (smp.prev_ms - last_change > res->stall_ms)
			res->stall_ms = smp.prev_ms - last_change;
		res->max_subflows = smp.max_alive;
	}
	agent_sock_congestion(x->fd, res->cc, sizeof(res->cc));
	if (t_end && xfer_check(x, o, res, t_end - t0, out, what) == 0) {
		res->done = 1;
		res->dur_ms = t_end - t0;
		res->goodput_bps = res->dur_ms ? (double)res->bytes * 8000.0 / (double)res->dur_ms
					       : 0;
	}
out:
	if (x->fd >= 0)
		close(x->fd);
	EVP_MD_CTX_free(x->md);
	EVP_MD_CTX_free(x->md_exp);
	free(x);
}

/* Goodput over [a, b) ms of the progress series, bits per second (-1 if unknown). */
static double window_bps(const struct bulk_res *r, uint64_t a, uint64_t b)
{
	uint64_t ba = 0, bb = 0, ta = 0, tb = 0;
	int have_a = 0, have_b = 0;
	size_t i;

	for (i = 0; i < r->n_prog; i++) {
		if (r->prog[i].t_ms <= a) {
			ba = r->prog[i].bytes;
			ta = r->prog[i].t_ms;
			have_a = 1;
		}
		if (r->prog[i].t_ms <= b) {
			bb = r->prog[i].bytes;
			tb = r->prog[i].t_ms;
			have_b = 1;
		}
	}
	if (!have_a || !have_b || tb <= ta)
		return -1;
	return (double)(bb - ba) * 8000.0 / (double)(tb - ta);
}

static void handover_metrics(const struct bulk_res *r, const struct exp_link_sched *ls,
			     unsigned int step, struct exp_out *out)
{
	uint64_t down, t, end;
	double before, min = -1;
	int64_t recover = -1;

	exp_add_metric(out, "stall_ms", (double)r->stall_ms);
	exp_add_metric(out, "link_events", ls->during);
	if (ls->first_down_ms < 0 || r->n_prog < 2)
		return;
	down = (uint64_t)ls->first_down_ms - r->t0_mono;
	end = r->prog[r->n_prog - 1].t_ms;
	before = window_bps(r, down > HO_BEFORE_MS ? down - HO_BEFORE_MS : 0, down);
	for (t = down; t + HO_WINDOW_MS <= end; t += step) {
		double w = window_bps(r, t, t + HO_WINDOW_MS);

		if (w < 0)
			continue;
		if (min < 0 || w < min)
			min = w;
		if (recover < 0 && before > 0 && t > down && w * 100 >= before * HO_RECOVER_PC)
			recover = (int64_t)(t + HO_WINDOW_MS - down);
	}
	if (before > 0) {
		exp_add_metric(out, "goodput_before_bps", before);
		if (min >= 0) {
			exp_add_metric(out, "goodput_min_bps", min);
			exp_add_metric(out, "goodput_dip_pct",
				       min >= before ? 0 : 100.0 * (1 - min / before));
		}
	}
	exp_add_metric(out, "recovered", recover >= 0);
	if (recover >= 0)
		exp_add_metric(out, "recover_ms", (double)recover);
}

static void main_metrics(const struct bulk_res *r, struct exp_out *out)
{
	exp_add_metric(out, "goodput_bps", r->goodput_bps);
	exp_add_metric(out, "bytes", (double)r->bytes);
	exp_add_metric(out, "duration_ms", (double)r->dur_ms);
	exp_add_metric(out, "sha256_ok", r->sha_ok);
	exp_add_metric(out, "subflows_max", r->max_subflows);
}

/*
 * The single-path TCP baseline: one TCP transfer per path, bound to its local
 * address, interleaved with the MPTCP one (the first half of the paths before
 * it, the rest after it, never at once, so none competes with another and all
 * see about the same network); the gain is MPTCP's goodput over the best.
 * Returns the goodput of path i's transfer, or 0 if it failed (an event says
 * why: a failed baseline transfer is a finding, not the run's failure).
 */
static double baseline_one(const Fjord__V1__RunCommand *cmd, const struct exp_env *env,
			   struct exp_out *out, const struct bulk_opts *mo, size_t i)
{
	struct bulk_opts o = *mo;
	Fjord__V1__Result shadow = *out->result;
	struct exp_out sub = *out;
	struct exp_target t;
	struct bulk_res r;
	char name[48], what[48];

	o.csv = NULL;
	o.links = NULL;
	memset(&r, 0, sizeof(r));
	snprintf(what, sizeof(what), "baseline path %zu", i);
	shadow.error = NULL;
	shadow.ok = 1;
	sub.result = &shadow;
	if (exp_resolve_target(cmd, env, i, &t, &sub) == 0)
		bulk_once(cmd, env, &sub, FJORD__V1__STACK__STACK_TCP, &t, &o, &r, what);
	/* Keep what the sub-run appended (events, metrics), not its error. */
	out->result->n_events = shadow.n_events;
	out->result->events = shadow.events;
	out->result->n_metrics = shadow.n_metrics;
	out->result->metrics = shadow.metrics;
	if (shadow.error && shadow.error[0])
		exp_add_event(out, "baseline_failed", shadow.error, 0);
	snprintf(name, sizeof(name), "baseline_p%zu_goodput_bps", i);
	exp_add_metric(out, name, r.done ? r.goodput_bps : 0);
	free(r.prog);
	return r.done ? r.goodput_bps : 0;
}

static void baseline_verdict(const double *bps, size_t n, double mptcp_bps, struct exp_out *out)
{
	double best = 0;
	size_t i;

	for (i = 0; i < n; i++)
		best = bps[i] > best ? bps[i] : best;
	exp_add_metric(out, "baseline_best_bps", best);
	if (best > 0) {
		exp_add_metric(out, "aggregation_gain", mptcp_bps / best);
		exp_add_metric(out, "mptcp_worse_than_best", mptcp_bps < best);
		if (mptcp_bps < best)
			exp_add_event(out, "mptcp_worse",
				      "MPTCP goodput below the best single-path TCP baseline", 0);
	}
}

/* Event for paths whose local address has no kernel endpoint: the kernel will not use them. */
static void check_endpoints(const Fjord__V1__RunCommand *cmd, struct exp_out *out)
{
	char line[256], seen[1024] = " ";
	FILE *f;
	size_t i;

	if (cmd->run->n_paths < 2)
		return;
	f = popen("ip mptcp endpoint show 2>/dev/null", "r");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		size_t l = strcspn(line, " \n");

		if (strlen(seen) + l + 2 < sizeof(seen)) {
			strncat(seen, line, l);
			strcat(seen, " ");
		}
	}
	pclose(f);
	for (i = 1; i < cmd->run->n_paths; i++) {
		const char *a = cmd->run->paths[i]->local_address;
		char key[80];

		if (!a || !a[0])
			continue;
		snprintf(key, sizeof(key), " %.*s ", (int)strcspn(a, "/"), a);
		if (!strstr(seen, key)) {
			char d[256];

			snprintf(
				d, sizeof(d),
				"path %zu: local address %s has no `ip mptcp endpoint`; the kernel "
				"opens no subflow from it",
				i, key + 1);
			exp_add_event(out, "path_not_configured", d, 0);
		}
	}
}

/* The bundled run's progress at each sample: the series and the longest stall, as bulk_once(). */
static void bundled_progress(void *arg, uint64_t t_ms, uint64_t bytes)
{
	struct bulk_res *r = arg;

	if (bytes > r->last_prog || !r->n_prog) {
		if (t_ms - r->last_change > r->stall_ms)
			r->stall_ms = t_ms - r->last_change;
		r->last_change = t_ms;
		r->last_prog = bytes;
	} else if (t_ms - r->last_change > r->stall_ms) {
		/* Still nothing: the stall so far counts, should the run end in it. */
		r->stall_ms = t_ms - r->last_change;
	}
	prog_add(r, t_ms, bytes);
}

/* The transfer on the bundled stack (exp_bundled.c), its figures in r as a kernel run's. */
static void bundled_once(const Fjord__V1__RunCommand *cmd, const struct exp_env *env,
			 struct exp_out *out, const struct bulk_opts *o, struct bulk_res *r,
			 struct exp_bundled_res *br)
{
	struct exp_bundled_xfer x = { .bytes = o->bytes,
				      .duration_ms = o->duration_ms,
				      .download = o->download,
				      .interval_ms = o->interval_ms,
				      .csv = o->csv,
				      .links = o->links,
				      .progress = bundled_progress,
				      .progress_arg = r };

	exp_bundled_bulk(cmd, env, out, &x, br);
	r->t0_mono = br->t0_mono;
	r->done = br->done;
	r->sha_ok = br->sha_ok;
	r->mptcp = br->mptcp;
	r->bytes = br->bytes;
	r->dur_ms = br->dur_ms;
	r->goodput_bps = br->goodput_bps;
	r->max_subflows = br->max_subflows;
	snprintf(r->cc, sizeof(r->cc), "%s", br->cc[0] ? br->cc : "lia");
	exp_add_metric(out, "fallback", br->fallback);
}

static int bulk_common(const Fjord__V1__RunCommand *cmd, const struct exp_env *env,
		       struct exp_out *out, const Fjord__V1__BulkParams *bp, const char *field,
		       const Fjord__V1__HandoverParams *ho)
{
	Fjord__V1__Stack stack = exp_stack(cmd);
	struct exp_link_sched *ls = NULL;
	struct bulk_opts o;
	struct bulk_res r;
	struct exp_target t;
	double bps[BULK_MAX_PATHS];
	struct exp_pcap *cap;
	struct exp_bundled_res br;
	size_t runs, nb = 0, i;

	out->result->ok = 1;
	memset(&r, 0, sizeof(r));
	memset(&t, 0, sizeof(t));
	memset(&br, 0, sizeof(br));
	if (bulk_params(bp, field, out, &o) || sampler_interval(cmd, out, &o.interval_ms))
		goto prov;
	if (cmd->run->n_paths > BULK_MAX_PATHS) {
		exp_fail(out, "run.paths: at most %u paths (got %zu)", BULK_MAX_PATHS,
			 cmd->run->n_paths);
		goto prov;
	}
	/* The baseline repeats the transfer per path: all of it must fit the deadline. */
	if (bp->baseline && stack != FJORD__V1__STACK__STACK_TCP && !ho)
		nb = cmd->run->n_paths ? cmd->run->n_paths : 1;
	runs = 1 + nb;
	if (o.duration_ms && (uint64_t)o.duration_ms * runs + 1000 > exp_left_ms(env)) {
		exp_fail(out,
			 "%s.duration_s: %zu transfers of %u s do not fit the run's deadline "
			 "(%llu ms left)",
			 field, runs, bp->duration_s, (unsigned long long)exp_left_ms(env));
		goto prov;
	}
	if (ho) {
		ls = calloc(1, sizeof(*ls));
		if (!ls || exp_link_prepare(cmd, ho, ls, out) < 0)
			goto prov;
		o.links = ls;
	}
	if (exp_resolve_target(cmd, env, 0, &t, out))
		goto prov;
	o.csv = exp_trace_new(out, "subflows.csv");
	if (stack == FJORD__V1__STACK__STACK_KERNEL)
		check_endpoints(cmd, out);
	/* The bundled stack writes its own trace; kernel runs are captured on the node. */
	cap = stack == FJORD__V1__STACK__STACK_BUNDLED ? NULL
						       : exp_pcap_start(env->responder_port, out);
	for (i = 0; i < nb / 2; i++)
		bps[i] = baseline_one(cmd, env, out, &o, i);
	if (stack == FJORD__V1__STACK__STACK_BUNDLED)
		bundled_once(cmd, env, out, &o, &r, &br);
	else
		bulk_once(cmd, env, out, stack, &t, &o, &r, "transfer");
	if (ls)
		exp_link_finish(ls, out);
	main_metrics(&r, out);
	if (ls)
		handover_metrics(&r, ls, o.interval_ms, out);
	/*
	 * The baseline compares MPTCP with single-path TCP: a STACK_TCP run
	 * (the controller also schedules one for baseline experiments) has
	 * nothing to compare.
	 */
	if (r.done && nb) {
		for (i = nb / 2; i < nb; i++)
			bps[i] = baseline_one(cmd, env, out, &o, i);
		baseline_verdict(bps, nb, r.goodput_bps, out);
	}
	exp_pcap_stop(cap, out);
	if (bp->baseline && ho)
		exp_add_event(out, "baseline_ignored",
			      "a handover run measures the outage, not the aggregation", 0);
prov:
	exp_provenance(out,
		       stack == FJORD__V1__STACK__STACK_KERNEL && !r.mptcp && r.done
			       ? FJORD__V1__STACK__STACK_TCP
			       : stack,
		       r.cc[0] ? r.cc : NULL, cmd, env);
	if (stack == FJORD__V1__STACK__STACK_BUNDLED)
		exp_bundled_provenance(out, &br);
	else if (t.remote_str[0])
		exp_synth_path(&t, out);
	free(r.prog);
	free(ls);
	return 0;
}

int exp_bulk_run(const Fjord__V1__RunCommand *cmd, const struct exp_env *env, struct exp_out *out)
{
	return bulk_common(cmd, env, out, cmd->spec->bulk, "bulk", NULL);
}

int exp_handover_run(const Fjord__V1__RunCommand *cmd, const struct exp_env *env,
		     struct exp_out *out)
{
	const Fjord__V1__HandoverParams *h = cmd->spec->handover;

	if (!h) {
		out->result->ok = 1;
		exp_fail(out, "handover: missing (bulk and events are needed)");
		exp_provenance(out, exp_stack(cmd), NULL, cmd, env);
		return 0;
	}
	if (h->rr) /* request/response as the workload (exp_rr.c), bulk and rr together refused there */
		return exp_rr_handover_run(cmd, env, out);
	return bulk_common(cmd, env, out, h->bulk, "handover.bulk", h);
}
