/*
 * mpsperf: the bundled stack's own iperf, over a TUN device or on the host's
 * own addresses.
 *
 *   mpsperf server --tun DEV|--host --addr A[,A2...] --port P [--once] [--mode sink|source]
 *                  [--bytes N]
 *   mpsperf client --tun DEV|--host --addr A[,A2...] --remote R --port P --mode send|recv
 *                  [--bytes N]
 *   common options: [--time S] [--pcap FILE] [--abort-after BYTES] [--interval MS]
 *                   [--scheduler NAME] [--cc NAME] [--sndbuf BYTES] [--rcvbuf BYTES]
 *                   [--mss BYTES]
 *
 * --tun DEV opens the TUN device DEV (routing the addresses to it is the
 * caller's job). --host uses the host adapter (mps_host.h): the addresses
 * are the host's own, packets go out through raw sockets and come in through
 * packet sockets, and an nftables table keeps the kernel from answering the
 * stack's segments with RSTs while mpsperf runs; it is removed on every exit
 * but SIGKILL (the next --host run in the namespace then removes it). As a
 * client, --host needs the kernel's ephemeral ports clear of 49152-65535
 * (e.g. sysctl net.ipv4.ip_local_port_range="32768 49151"). --mss sets the
 * largest TCP payload the stack sends and announces (cfg.mss, 88-65000;
 * 1400 by default), e.g. 8960 over links with an MTU of 9000.
 *
 * Prints one JSON line per connection on stdout; errors go to stderr with a
 * non-zero exit. The data sent is a deterministic pseudo-random stream, so
 * both ends' SHA-256 must agree. --time bounds a sender's or a receiver's
 * run (a receiver that stops before the end aborts); --abort-after ends the
 * connection with MP_FASTCLOSE (mps_abort) once that many bytes were sent or
 * received; --interval prints a JSON line per interval on stderr (monotonic
 * time, bytes in the interval, total) so that benchmarks can see stalls. A
 * connection the peer resets or fast-closes is reported with its reason and
 * a non-zero exit.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "fj_clock.h"
#include "mps.h"
#include "mps_host.h"
#include "mps_trace.h"
#include "mps_tun.h"

#define CLOSE_GRACE_US 3000000 /* after the data: time left for the close handshake */

enum perf_mode { MODE_SINK, MODE_SOURCE };

struct perf_opts {
	bool server, once;
	const char *tun;
	bool host; /* --host: the host adapter instead of a TUN device */
	struct mps_addr addr, remote;
	struct mps_addr more[MPS_MAX_LOCAL_ADDRS]; /* --addr after the first: the path manager's */
	unsigned int nmore;
	bool have_addr, have_remote;
	uint16_t port;
	enum perf_mode mode;
	uint64_t bytes;
	double seconds;
	const char *pcap;
	uint64_t abort_after;	 /* 0: never */
	uint32_t interval_ms;	 /* 0: no progress lines */
	const char *scheduler;	 /* NULL: the stack's default */
	const char *cc;		 /* congestion control; NULL: the stack's default */
	uint32_t sndbuf, rcvbuf; /* stream buffers; 0: the stack's default */
	uint16_t mss;		 /* 0: the stack's default */
};

struct perf_conn {
	struct mps_conn *c;
	EVP_MD_CTX *md;
	uint64_t done, start_us, end_us;
	uint64_t tick_us, tick_done; /* last progress line: when, and the total then */
	bool eof, shut, finished, aborted;
	bool gone;	   /* the stack is done with it: closed both ways, reset or aborted */
	const char *reset; /* why the connection was reset, NULL if it was not */
	struct mps_conn_info info;
	struct mps_subflow_info sfi;
	/* Every subflow seen, in order of appearance, with its latest byte count. */
	struct {
		struct mps_addr local, remote;
		uint64_t bytes;
	} seen[16];
	unsigned int nseen, max_up;
	/*
	 * The stream from gen_at on, made once and offered until taken: a full
	 * send buffer refuses most offers, and making 64 KiB anew for each one
	 * cost more CPU than the stack and the link together.
	 */
	uint8_t gen[65536];
	uint64_t gen_at;
	size_t gen_len;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void rand_bytes(void *ctx, void *buf, size_t len)
{
	uint8_t *p = buf;
	ssize_t n;

	(void)ctx;
	while (len) {
		n = getrandom(p, len, 0);
		if (n <= 0)
			abort(); /* the kernel's CSPRNG does not fail once booted */
		p += n;
		len -= (size_t)n;
	}
}

static uint8_t stream_byte(uint64_t i)
{
	uint64_t z = i * 0x9e3779b97f4a7c15ULL;

	return (uint8_t)((z >> 29) ^ (z >> 47) ^ i);
}

static int parse_addr(const char *s, struct mps_addr *a)
{
	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, s, a->addr) == 1)
		a->family = 4;
	else if (inet_pton(AF_INET6, s, a->addr) == 1)
		a->family = 6;
	else {
		fprintf(stderr, "mpsperf: %s: not an IPv4 or IPv6 address\n", s);
		return -EINVAL;
	}
	return 0;
}

/* A[,A2...]: the first is the connection's address, the others the path manager's. */
static int parse_addrs(const char *s, struct perf_opts *o)
{
	char buf[512], *tok, *save = NULL;
	unsigned int n = 0;

	if (strlen(s) >= sizeof(buf)) {
		fprintf(stderr, "mpsperf: address list too long\n");
		return -EINVAL;
	}
	strcpy(buf, s);
	o->nmore = 0;
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save), n++) {
		if (n > MPS_MAX_LOCAL_ADDRS) {
			fprintf(stderr, "mpsperf: %s: at most %d addresses\n", s,
				MPS_MAX_LOCAL_ADDRS + 1);
			return -EINVAL;
		}
		if (parse_addr(tok, n ? &o->more[o->nmore] : &o->addr))
			return -EINVAL;
		if (n && o->more[o->nmore].family != o->addr.family) {
			fprintf(stderr, "mpsperf: %s: addresses of one family only\n", s);
			return -EINVAL;
		}
		if (n)
			o->nmore++;
	}
	if (n == 0) {
		fprintf(stderr, "mpsperf: %s: not an IPv4 or IPv6 address\n", s);
		return -EINVAL;
	}
	return 0;
}

static int parse_u64(const char *s, const char *what, uint64_t *v)
{
	char *end;

	errno = 0;
	*v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-') {
		fprintf(stderr, "mpsperf: %s: bad %s\n", s, what);
		return -EINVAL;
	}
	return 0;
}

static int usage(void)
{
	fprintf(stderr,
		"usage: mpsperf server --tun DEV|--host --addr A[,A2...] --port P [--once] "
		"[--mode sink|source] [--bytes N]\n"
		"       mpsperf client --tun DEV|--host --addr A[,A2...] --remote R --port P "
		"--mode send|recv [--bytes N]\n"
		"       either role: [--time S] [--pcap FILE] [--abort-after BYTES] [--interval MS]\n"
		"                    [--scheduler lowrtt|initial] [--cc lia|reno] [--sndbuf BYTES]\n"
		"                    [--rcvbuf BYTES] [--mss BYTES]\n"
		"       (--pcap: headers of every packet, both ways; --interval: progress as JSON\n"
		"       lines on stderr; --abort-after: MP_FASTCLOSE after that many bytes;\n"
		"       --host: the stack on this host's own addresses, beside the kernel)\n");
	return 2;
}

static void track_subflows(const struct perf_opts *o, struct perf_conn *p);

static int parse_args(int argc, char **argv, struct perf_opts *o)
{
	static const struct option lo[] = {
		{ "tun", 1, NULL, 't' },      { "addr", 1, NULL, 'a' },
		{ "remote", 1, NULL, 'r' },   { "port", 1, NULL, 'p' },
		{ "once", 0, NULL, 'o' },     { "mode", 1, NULL, 'm' },
		{ "bytes", 1, NULL, 'b' },    { "time", 1, NULL, 's' },
		{ "pcap", 1, NULL, 'w' },     { "abort-after", 1, NULL, 'A' },
		{ "interval", 1, NULL, 'i' }, { "scheduler", 1, NULL, 'S' },
		{ "cc", 1, NULL, 'C' },	      { "sndbuf", 1, NULL, 'B' },
		{ "rcvbuf", 1, NULL, 'R' },   { "host", 0, NULL, 'H' },
		{ "mss", 1, NULL, 'M' },      { NULL, 0, NULL, 0 },
	};
	bool mode_set = false;
	uint64_t v;
	int ch;

	if (argc < 2)
		return -EINVAL;
	memset(o, 0, sizeof(*o));
	if (strcmp(argv[1], "server") == 0)
		o->server = true;
	else if (strcmp(argv[1], "client") != 0)
		return -EINVAL;
	o->mode = o->server ? MODE_SINK : MODE_SOURCE;
	o->bytes = 10 * 1000 * 1000;
	optind = 2;
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 't':
			o->tun = optarg;
			break;
		case 'H':
			o->host = true;
			break;
		case 'a':
			if (parse_addrs(optarg, o))
				return -EINVAL;
			o->have_addr = true;
			break;
		case 'r':
			if (parse_addr(optarg, &o->remote))
				return -EINVAL;
			o->have_remote = true;
			break;
		case 'p':
			if (parse_u64(optarg, "port", &v))
				return -EINVAL;
			if (v == 0 || v > 65535) {
				fprintf(stderr, "mpsperf: %s: bad port (1-65535)\n", optarg);
				return -EINVAL;
			}
			o->port = (uint16_t)v;
			break;
		case 'o':
			o->once = true;
			break;
		case 'w':
			o->pcap = optarg;
			break;
		case 'm':
			mode_set = true;
			if (!strcmp(optarg, o->server ? "sink" : "recv"))
				o->mode = MODE_SINK;
			else if (!strcmp(optarg, o->server ? "source" : "send"))
				o->mode = MODE_SOURCE;
			else {
				fprintf(stderr, "mpsperf: %s: bad mode\n", optarg);
				return -EINVAL;
			}
			break;
		case 'b':
			if (parse_u64(optarg, "byte count", &o->bytes))
				return -EINVAL;
			break;
		case 's':
			if (parse_u64(optarg, "time", &v))
				return -EINVAL;
			if (v == 0 || v > 86400) {
				fprintf(stderr, "mpsperf: %s: bad time (1-86400 s)\n", optarg);
				return -EINVAL;
			}
			o->seconds = (double)v;
			break;
		case 'A':
			if (parse_u64(optarg, "abort byte count", &o->abort_after))
				return -EINVAL;
			if (o->abort_after == 0) {
				fprintf(stderr, "mpsperf: %s: bad abort byte count (at least 1)\n",
					optarg);
				return -EINVAL;
			}
			break;
		case 'i':
			if (parse_u64(optarg, "interval", &v))
				return -EINVAL;
			if (v == 0 || v > 60000) {
				fprintf(stderr, "mpsperf: %s: bad interval (1-60000 ms)\n", optarg);
				return -EINVAL;
			}
			o->interval_ms = (uint32_t)v;
			break;
		case 'S':
			o->scheduler = optarg;
			break;
		case 'C':
			o->cc = optarg;
			break;
		case 'B':
		case 'R':
			if (parse_u64(optarg, "buffer size", &v))
				return -EINVAL;
			if (v < 4096 || v > (1u << 30)) {
				fprintf(stderr, "mpsperf: %s: bad buffer size (4096-1073741824)\n",
					optarg);
				return -EINVAL;
			}
			*(ch == 'B' ? &o->sndbuf : &o->rcvbuf) = (uint32_t)v;
			break;
		case 'M':
			if (parse_u64(optarg, "mss", &v))
				return -EINVAL;
			/* The stack's own bounds (mps_stack_create()). */
			if (v < 88 || v > 65000) {
				fprintf(stderr, "mpsperf: %s: bad mss (88-65000)\n", optarg);
				return -EINVAL;
			}
			o->mss = (uint16_t)v;
			break;
		default:
			return -EINVAL;
		}
	}
	if (o->host && o->tun) {
		fprintf(stderr, "mpsperf: --tun and --host exclude each other\n");
		return -EINVAL;
	}
	if (optind != argc || (!o->tun && !o->host) || !o->have_addr || !o->port ||
	    (!o->server && (!o->have_remote || !mode_set)) ||
	    (o->have_remote && o->remote.family != o->addr.family))
		return -EINVAL;
	return 0;
}

/* Move data between the application side and the connection. */
static void perf_io(const struct perf_opts *o, struct perf_conn *p, uint64_t now)
{
	uint8_t buf[65536];
	ssize_t n;
	size_t i, want, off;

	if (o->mode == MODE_SOURCE) {
		bool timed_out = o->seconds > 0 &&
				 now - p->start_us >= (uint64_t)(o->seconds * 1e6);

		while (!p->shut && !timed_out && (o->seconds > 0 || p->done < o->bytes)) {
			if (p->done < p->gen_at || p->done >= p->gen_at + p->gen_len) {
				p->gen_at = p->done;
				p->gen_len = sizeof(p->gen);
				for (i = 0; i < p->gen_len; i++)
					p->gen[i] = stream_byte(p->gen_at + i);
			}
			off = (size_t)(p->done - p->gen_at);
			want = p->gen_len - off;
			if (o->seconds == 0 && o->bytes - p->done < want)
				want = (size_t)(o->bytes - p->done);
			n = mps_send(p->c, p->gen + off, want);
			if (n <= 0)
				break;
			EVP_DigestUpdate(p->md, p->gen + off, (size_t)n);
			p->done += (uint64_t)n;
		}
		if (!p->shut && (timed_out || (o->seconds == 0 && p->done == o->bytes))) {
			mps_shutdown(p->c);
			p->shut = true;
		}
	}
	while ((n = mps_recv(p->c, buf, sizeof(buf))) > 0) {
		if (o->mode == MODE_SINK) {
			EVP_DigestUpdate(p->md, buf, (size_t)n);
			p->done += (uint64_t)n;
		}
	}
	if (n == 0 && !p->eof) {
		p->eof = true;
		p->end_us = now;
	}
	mps_conn_info(p->c, &p->info);
	mps_subflow_info(p->c, 0, &p->sfi);
	track_subflows(o, p);
	/* Done when our data is acknowledged and the peer has finished too. */
	if (p->eof && (o->mode == MODE_SINK || (p->shut && p->info.bytes_acked == p->done)))
		p->finished = true;
	/*
	 * A receiver's --time ends the run whether or not the peer has finished.
	 * The peer may still be sending, so the end is an abort (MP_FASTCLOSE),
	 * as Linux's close() with unread data is: a FIN would leave it waiting.
	 */
	if (!p->finished && o->mode == MODE_SINK && o->seconds > 0 &&
	    now - p->start_us >= (uint64_t)(o->seconds * 1e6)) {
		p->finished = true;
		p->aborted = !p->eof;
		p->end_us = now;
	}
	if (!p->finished && o->abort_after && p->done >= o->abort_after) {
		p->finished = true;
		p->aborted = true;
		p->end_us = now;
	}
}

/*
 * One progress line per interval: the receiver counts bytes read, the sender
 * bytes the peer acknowledged at the data level, so a stall shows on both.
 */
static void progress(const struct perf_opts *o, struct perf_conn *p, uint64_t now)
{
	uint64_t total = o->mode == MODE_SINK ? p->done : p->info.bytes_acked;

	if (!o->interval_ms || now < p->tick_us + (uint64_t)o->interval_ms * 1000)
		return;
	fprintf(stderr, "{\"t\":%.6f,\"bytes\":%" PRIu64 ",\"total\":%" PRIu64 "}\n",
		(double)now / 1e6, total - p->tick_done, total);
	p->tick_us = now;
	p->tick_done = total;
}

static bool same_ep(const struct mps_addr *a, const struct mps_addr *b)
{
	return a->family == b->family && a->port == b->port && !memcmp(a->addr, b->addr, 16);
}

/* The most subflows up at once, and each subflow's bytes (received, or acknowledged). */
static void track_subflows(const struct perf_opts *o, struct perf_conn *p)
{
	struct mps_subflow_info fi;
	unsigned int i, k, up = 0;

	for (i = 0; i < p->info.nsubflows; i++) {
		if (mps_subflow_info(p->c, i, &fi) != 0)
			continue;
		up += fi.up;
		for (k = 0; k < p->nseen; k++)
			if (same_ep(&p->seen[k].local, &fi.local) &&
			    same_ep(&p->seen[k].remote, &fi.remote))
				break;
		if (k == p->nseen) {
			if (k == sizeof(p->seen) / sizeof(p->seen[0]))
				continue;
			p->seen[k].local = fi.local;
			p->seen[k].remote = fi.remote;
			p->nseen++;
		}
		p->seen[k].bytes = o->mode == MODE_SINK ? fi.bytes_received : fi.bytes_acked;
	}
	if (up > p->max_up)
		p->max_up = up;
}

static void report(const struct perf_opts *o, struct mps_stack *st, struct perf_conn *p)
{
	uint8_t md[32];
	unsigned int mdlen = 0, i;
	char hex[65];
	double secs = (double)(p->end_us - p->start_us) / 1e6;

	EVP_DigestFinal_ex(p->md, md, &mdlen);
	for (i = 0; i < mdlen && i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	hex[2 * i] = 0;
	printf("{\"role\":\"%s\",\"mode\":\"%s\",\"bytes\":%" PRIu64 ",\"seconds\":%.6f,"
	       "\"goodput_bps\":%.0f,\"sha256\":\"%s\",\"subflows\":%u,\"fallback\":%s,"
	       "\"fallback_reason\":%s%s%s,\"mptcp\":%s,\"checksum\":%s,\"remote_addrs\":%u,"
	       "\"subflow_bytes\":[",
	       o->server ? "server" : "client",
	       o->mode == MODE_SINK ? (o->server ? "sink" : "recv")
				    : (o->server ? "source" : "send"),
	       p->done, secs, secs > 0 ? (double)p->done * 8 / secs : 0.0, hex,
	       p->max_up ? p->max_up : 1, p->info.fallback ? "true" : "false",
	       p->info.fallback_reason ? "\"" : "",
	       p->info.fallback_reason ? p->info.fallback_reason : "null",
	       p->info.fallback_reason ? "\"" : "", p->info.mptcp ? "true" : "false",
	       p->info.checksum ? "true" : "false", (unsigned int)p->info.nremote_addrs);
	for (i = 0; i < p->nseen; i++)
		printf("%s%" PRIu64, i ? "," : "", p->seen[i].bytes);
	printf("],\"retransmits\":%u,\"data_rto\":%" PRIu64
	       ",\"srtt_us\":%u,\"aborted\":%s,\"reset\":%s%s%s}\n",
	       p->sfi.retransmits, mps_stack_counter(st, MPS_CNT_DATA_RTO), p->sfi.srtt_us,
	       p->aborted ? "true" : "false", p->reset ? "\"" : "", p->reset ? p->reset : "null",
	       p->reset ? "\"" : "");
	fflush(stdout);
}

static const char *reset_name(int reason)
{
	switch (reason) {
	case MPS_RST_PEER:
		return "peer";
	case MPS_RST_FASTCLOSE:
		return "fastclose";
	case MPS_RST_TIMEOUT:
		return "timeout";
	case MPS_RST_LOCAL:
		return "local";
	case MPS_RST_CHECKSUM:
		return "checksum";
	case MPS_RST_OPTS_LOST:
		return "options_lost";
	case MPS_RST_BAD_MAPPING:
		return "bad_mapping";
	case MPS_RST_MP_FAIL:
		return "mp_fail_unanswered";
	}
	return "unknown";
}

/*
 * Drain the stack's events. A reset of the connection in hand (other than our
 * own abort) ends the run: it is reported with its reason and -ECONNRESET.
 */
static int check_events(struct mps_stack *st, struct perf_conn *p)
{
	struct mps_event ev;
	int rc = 0;

	while (mps_next_event(st, &ev) == 0) {
		if ((ev.type == MPS_EV_CONN_CLOSED || ev.type == MPS_EV_CONN_RESET) && p->c &&
		    p->info.id == ev.conn_id)
			p->gone = true;
		if (ev.type != MPS_EV_CONN_RESET || ev.reason == MPS_RST_LOCAL)
			continue;
		fprintf(stderr, "mpsperf: connection %u reset: %s (reason %d)\n", ev.conn_id,
			reset_name(ev.reason), ev.reason);
		if (p->c && !p->finished && p->info.id == ev.conn_id)
			p->reset = reset_name(ev.reason);
		rc = -ECONNRESET;
	}
	return rc;
}

/* The link the stack runs on: a TUN device or the host adapter. */
struct perf_link {
	const struct mps_link_ops *ops;
	void *ctx;
	int fd; /* readable when packets wait */
	struct mps_tun *tun;
	struct mps_host *host;
};

static int run(const struct perf_opts *o, struct mps_stack *st, const struct perf_link *l)
{
	struct perf_conn p = { 0 };
	struct pollfd pfd = { .fd = l->fd, .events = POLLIN };
	uint64_t now = fj_mono_us(), next, grace_end = 0;
	struct mps_addr a = o->addr, r = o->remote;
	int err, rc = 0;

	a.port = o->server ? o->port : 0;
	r.port = o->port;
	if (o->server)
		rc = mps_listen(st, &a);
	else
		rc = mps_connect(st, &a, &r, &p.c);
	if (rc) {
		fprintf(stderr, "mpsperf: %s: %s\n", o->server ? "listen" : "connect",
			strerror(-rc));
		return 1;
	}
	while (!stop) {
		next = mps_pump(st, l->ops, l->ctx, now, &err);
		if (err && err != -EAGAIN)
			fprintf(stderr, "mpsperf: %s: %s\n", l->ops->name, strerror(-err));
		if (p.c && !p.finished)
			mps_conn_info(p.c, &p.info);
		if (check_events(st, &p)) {
			if (p.reset) {
				p.end_us = now;
				report(o, st, &p);
				EVP_MD_CTX_free(p.md);
			}
			return 1;
		}
		if (!p.c && o->server)
			p.c = mps_accept(st);
		if (p.c && !p.md) {
			p.md = EVP_MD_CTX_new();
			if (!p.md || !EVP_DigestInit_ex(p.md, EVP_sha256(), NULL))
				return 1;
			p.start_us = now;
			p.tick_us = now;
		}
		if (p.c && !p.finished) {
			perf_io(o, &p, now);
			progress(o, &p, now);
			if (p.finished) {
				report(o, st, &p);
				EVP_MD_CTX_free(p.md);
				/* An abort sends MP_FASTCLOSE; the grace period lets it leave. */
				if (p.aborted)
					mps_abort(p.c);
				else
					mps_close(p.c);
				grace_end = now + CLOSE_GRACE_US;
				if (o->server && !o->once) {
					memset(&p, 0, sizeof(p));
					grace_end = 0;
				}
				continue;
			}
		}
		/*
		 * No timer left is not the end: a subflow in FIN-WAIT-2 has none
		 * while it waits for the peer's FIN, which must still be ACKed (on
		 * the host adapter, a FIN that comes after we left gets the kernel's
		 * RST). So the connection must be gone too, or the grace over.
		 */
		if (grace_end && (now >= grace_end ||
				  ((p.gone || p.aborted) && mps_next_wakeup(st) == MPS_TIME_NEVER)))
			break;
		if (p.c && !p.finished) {
			/* Data may be waiting to go out: loop again at once. */
			mps_pump(st, l->ops, l->ctx, now, &err);
		}
		next = mps_next_wakeup(st);
		if (o->interval_ms && p.c && !p.finished &&
		    next > p.tick_us + (uint64_t)o->interval_ms * 1000)
			next = p.tick_us + (uint64_t)o->interval_ms * 1000;
		if (poll(&pfd, 1,
			 next <= now
				 ? 0
				 : (next - now > 100000 ? 100 : (int)((next - now + 999) / 1000))) <
			    0 &&
		    errno != EINTR)
			return 1;
		now = fj_mono_us();
	}
	return rc;
}

/*
 * The host adapter covers every address of ours and, as a server, the port;
 * a client's ports are the stack's ephemeral ones.
 */
static int open_link(const struct perf_opts *o, struct perf_link *l)
{
	struct mps_host_config hc = { 0 };
	char why[256];
	int err;

	if (!o->host) {
		l->tun = mps_tun_open(o->tun, &err);
		if (!l->tun) {
			fprintf(stderr, "mpsperf: %s: %s\n", o->tun, strerror(-err));
			return err;
		}
		l->ops = &mps_tun_link_ops;
		l->ctx = l->tun;
		l->fd = mps_tun_fd(l->tun);
		return 0;
	}
	hc.addrs[0] = o->addr;
	memcpy(hc.addrs + 1, o->more, o->nmore * sizeof(o->more[0]));
	hc.naddrs = 1 + o->nmore;
	if (o->server)
		hc.ports[hc.nports++] = o->port;
	hc.ephemeral = !o->server;
	l->host = mps_host_open(&hc, &err, why, sizeof(why));
	if (!l->host) {
		fprintf(stderr, "mpsperf: host adapter: %s (%s)\n", why, strerror(-err));
		return err;
	}
	l->ops = &mps_host_link_ops;
	l->ctx = l->host;
	l->fd = mps_host_fd(l->host);
	return 0;
}

/* The host adapter's counters, as one JSON line on stderr (stdout holds the results). */
static void host_report(const struct mps_host *h)
{
	struct mps_host_stats s;

	if (!h)
		return;
	mps_host_get_stats(h, &s);
	fprintf(stderr,
		"{\"host\":{\"table\":\"%s\",\"rx_pkts\":%" PRIu64 ",\"rx_ours\":%" PRIu64
		",\"rx_other\":%" PRIu64 ",\"rx_bad\":%" PRIu64 ",\"rx_csum\":%" PRIu64
		",\"tx_pkts\":%" PRIu64 ",\"tx_err\":%" PRIu64 "}}\n",
		mps_host_table(h), s.rx_pkts, s.rx_ours, s.rx_other, s.rx_bad, s.rx_csum, s.tx_pkts,
		s.tx_err);
}

int main(int argc, char **argv)
{
	struct mps_config cfg = { .rand_bytes = rand_bytes, .msl_us = 1000000 };
	struct mps_trace *trace = NULL;
	struct perf_opts o;
	struct mps_stack *st;
	struct perf_link link = { 0 };
	int err, rc;

	if (parse_args(argc, argv, &o))
		return usage();
	memcpy(cfg.local_addrs, o.more, sizeof(o.more));
	cfg.nlocal_addrs = (uint8_t)o.nmore;
	cfg.max_subflows = 8;
	cfg.scheduler = o.scheduler;
	cfg.congestion = o.cc;
	cfg.sndbuf = o.sndbuf;
	cfg.rcvbuf = o.rcvbuf;
	cfg.mss = o.mss;
	if (o.pcap) {
		trace = mps_trace_open(o.pcap, &err);
		if (!trace) {
			fprintf(stderr, "mpsperf: %s: cannot write the trace: %s\n", o.pcap,
				strerror(-err));
			return 1;
		}
		cfg.trace = mps_trace_packet;
		cfg.trace_ctx = trace;
	}
	/* Every ordinary end goes through the adapter's close, which removes its rules. */
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	/* The stack first: a bad setting is refused before any device is touched. */
	st = mps_stack_create(&cfg, &err);
	if (!st) {
		if (err == -EINVAL && (o.scheduler || o.cc))
			fprintf(stderr,
				"mpsperf: unknown scheduler or congestion control (%s, %s), or a "
				"bad setting\n",
				o.scheduler ? o.scheduler : "default", o.cc ? o.cc : "default");
		else
			fprintf(stderr, "mpsperf: %s\n", strerror(-err));
		mps_trace_close(trace);
		return 1;
	}
	if (open_link(&o, &link)) {
		mps_stack_destroy(st);
		mps_trace_close(trace);
		return 1;
	}
	rc = run(&o, st, &link);
	host_report(link.host);
	mps_stack_destroy(st);
	mps_tun_close(link.tun);
	if (mps_host_close(link.host))
		rc = 1;
	mps_trace_close(trace);
	return rc;
}
