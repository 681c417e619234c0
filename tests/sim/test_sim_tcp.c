/*
 * libmps on the simulated network, fake clock: MP_CAPABLE handshake, data
 * transfer on one subflow (clean, lossy and reordered, small MTU, IPv6),
 * fallback when the server does not speak MPTCP, RST to a closed port,
 * MP_FASTCLOSE, and determinism of a whole run.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/fj_test.h"
#include "mps.h"
#include "mps_crypto.h"
#include "mps_opt.h"
#include "mps_seg.h"
#include "mps_sim.h"
#include "mps_trace.h"
#include "prot/wire.h"
#include <pcap/pcap.h>
#include <stdio.h>
#include <unistd.h>

#define SRV_PORT 5002
#define STEP_CAP 2000000 /* pump rounds before a test gives up */

struct world {
	struct mps_sim *sim;
	struct mps_stack *st[2]; /* 0 client, 1 server */
	struct mps_sim_port *port[2];
	int path;
	uint64_t now;
	uint8_t family;
	struct mps_addr caddr, saddr;
	struct mps_event log[2][64]; /* every event of each stack, in order */
	unsigned int nlog[2];
};

static void addr_set(struct mps_addr *a, uint8_t family, uint8_t last, uint16_t port)
{
	memset(a, 0, sizeof(*a));
	a->family = family;
	if (family == 4) {
		a->addr[0] = 10;
		a->addr[2] = 1;
		a->addr[3] = last;
	} else {
		a->addr[0] = 0xfd;
		a->addr[1] = 0x00;
		a->addr[15] = last;
	}
	a->port = port;
}

static void world_init(struct world *w, uint8_t family, const struct mps_sim_link_cfg *link,
		       const struct mps_config *ccfg, const struct mps_config *scfg, uint64_t seed)
{
	int err, a, b;

	memset(w, 0, sizeof(*w));
	w->family = family;
	w->sim = mps_sim_create(seed);
	CU_ASSERT_PTR_NOT_NULL_FATAL(w->sim);
	a = mps_sim_add_node(w->sim);
	b = mps_sim_add_node(w->sim);
	addr_set(&w->caddr, family, 1, 0);
	addr_set(&w->saddr, family, 2, SRV_PORT);
	w->path = mps_sim_add_path(w->sim, a, w->caddr.addr, b, w->saddr.addr, family, link);
	CU_ASSERT_FATAL(w->path >= 0);
	w->port[0] = mps_sim_port(w->sim, a);
	w->port[1] = mps_sim_port(w->sim, b);
	w->st[0] = mps_stack_create(ccfg, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(w->st[0]);
	w->st[1] = mps_stack_create(scfg, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(w->st[1]);
	CU_ASSERT_EQUAL(mps_listen(w->st[1], &w->saddr), 0);
}

static void world_free(struct world *w)
{
	mps_stack_destroy(w->st[0]);
	mps_stack_destroy(w->st[1]);
	mps_sim_destroy(w->sim);
}

/*
 * One round for both stacks through ops (the simulator's, or a filter over
 * it), then advance the clock to the next thing due; false when idle.
 */
static bool world_step_ops(struct world *w, const struct mps_link_ops *ops)
{
	uint64_t t = MPS_TIME_NEVER, x;
	int i, err;

	for (i = 0; i < 2; i++) {
		struct mps_event ev;

		mps_pump(w->st[i], ops, w->port[i], w->now, &err);
		CU_ASSERT_EQUAL(err, 0);
		while (mps_next_event(w->st[i], &ev) == 0)
			if (w->nlog[i] < 64)
				w->log[i][w->nlog[i]++] = ev;
	}
	/* Only now, after both sent, is every arrival known. */
	for (i = 0; i < 2; i++) {
		x = mps_next_wakeup(w->st[i]);
		t = x < t ? x : t;
		x = mps_sim_link_ops.next_ready(w->port[i]);
		t = x < t ? x : t;
	}
	if (t == MPS_TIME_NEVER)
		return false;
	if (t > w->now)
		w->now = t;
	return true;
}

static bool world_step(struct world *w)
{
	return world_step_ops(w, &mps_sim_link_ops);
}

/* The deterministic byte stream of a test: position i holds f(i). */
static uint8_t stream_byte(uint64_t i)
{
	uint64_t z = i * 0x9e3779b97f4a7c15ULL;

	return (uint8_t)((z >> 29) ^ (z >> 47) ^ i);
}

struct xfer {
	struct mps_conn *tx, *rx;
	uint64_t total, sent, rcvd;
	uint64_t diffs; /* received bytes that differ from the stream */
	bool rx_eof, mismatch;
	bool other_diff; /* a difference other than the rewriting middlebox's XOR 0x20 */
};

static void xfer_pump(struct xfer *x)
{
	uint8_t buf[16384];
	ssize_t n;
	size_t i, want;

	while (x->sent < x->total) {
		want = x->total - x->sent < sizeof(buf) ? x->total - x->sent : sizeof(buf);
		for (i = 0; i < want; i++)
			buf[i] = stream_byte(x->sent + i);
		n = mps_send(x->tx, buf, want);
		if (n <= 0)
			break;
		x->sent += (uint64_t)n;
		if (x->sent == x->total)
			CU_ASSERT_EQUAL(mps_shutdown(x->tx), 0);
	}
	while ((n = mps_recv(x->rx, buf, sizeof(buf))) > 0) {
		for (i = 0; i < (size_t)n; i++)
			if (buf[i] != stream_byte(x->rcvd + i)) {
				x->mismatch = true;
				x->diffs++;
				x->other_diff |= (buf[i] ^ stream_byte(x->rcvd + i)) != 0x20;
			}
		x->rcvd += (uint64_t)n;
	}
	if (n == 0)
		x->rx_eof = true;
}

static bool has_event(const struct world *w, int side, enum mps_event_type type, int reason)
{
	unsigned int i;

	for (i = 0; i < w->nlog[side]; i++)
		if (w->log[side][i].type == type &&
		    (reason < 0 || w->log[side][i].reason == reason))
			return true;
	return false;
}

/* Connect and run until the server has accepted; returns the client handle. */
static struct mps_conn *establish(struct world *w, struct mps_conn **srv)
{
	struct mps_conn *c = NULL;
	long steps;

	CU_ASSERT_EQUAL_FATAL(mps_connect(w->st[0], &w->caddr, &w->saddr, &c), 0);
	*srv = NULL;
	for (steps = 0; steps < STEP_CAP && !*srv; steps++) {
		bool more = world_step(w);

		*srv = mps_accept(w->st[1]);
		if (!more)
			break;
	}
	return c;
}

/* Transfer total bytes c -> s, close both ends, run until both are gone. */
static void transfer_and_close(struct world *w, struct mps_conn *c, struct mps_conn *s,
			       uint64_t total, struct mps_conn_info *ci, struct mps_conn_info *si)
{
	struct xfer x = { .tx = c, .rx = s, .total = total };
	long steps;

	for (steps = 0; steps < STEP_CAP && !x.rx_eof; steps++) {
		xfer_pump(&x);
		if (!x.rx_eof && !world_step(w))
			break;
	}
	CU_ASSERT_TRUE(x.rx_eof);
	CU_ASSERT_FALSE(x.mismatch);
	CU_ASSERT_EQUAL(x.rcvd, total);
	if (ci)
		mps_conn_info(c, ci);
	if (si)
		mps_conn_info(s, si);
	mps_close(s);
	mps_close(c);
	/* Both stacks free their connections after the close handshake and TIME-WAIT. */
	for (steps = 0; steps < STEP_CAP; steps++)
		if (!world_step(w))
			break;
	CU_ASSERT_EQUAL(mps_next_wakeup(w->st[0]), MPS_TIME_NEVER);
	CU_ASSERT_EQUAL(mps_next_wakeup(w->st[1]), MPS_TIME_NEVER);
	CU_ASSERT_TRUE(has_event(w, 0, MPS_EV_CONN_CLOSED, -1));
	CU_ASSERT_TRUE(has_event(w, 1, MPS_EV_CONN_CLOSED, -1));
}

static const struct mps_sim_link_cfg clean_link = { .delay_us = 10000, .mtu = 1500 };

static void test_handshake(void)
{
	struct mps_config cfg = { .seed = 1 }, scfg = { .seed = 2 };
	struct mps_conn_info ci, si;
	struct mps_subflow_info sfi;
	struct mps_conn *c, *s;
	struct world w;
	uint32_t token;
	uint64_t idsn;

	world_init(&w, 4, &clean_link, &cfg, &scfg, 7);
	c = establish(&w, &s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(mps_conn_info(c, &ci), 0);
	CU_ASSERT_EQUAL(mps_conn_info(s, &si), 0);
	CU_ASSERT_EQUAL(ci.state, MPS_CONN_ESTABLISHED);
	CU_ASSERT_EQUAL(si.state, MPS_CONN_ESTABLISHED);
	CU_ASSERT_TRUE(ci.mptcp);
	CU_ASSERT_TRUE(si.mptcp);
	CU_ASSERT_FALSE(ci.fallback);
	/* Each side learnt the other's key; tokens are derived as RFC 8684 §3.1 says. */
	CU_ASSERT_NOT_EQUAL(ci.local_key, 0);
	CU_ASSERT_EQUAL(ci.remote_key, si.local_key);
	CU_ASSERT_EQUAL(si.remote_key, ci.local_key);
	mps_key_token_idsn(si.local_key, &token, &idsn);
	CU_ASSERT_EQUAL(ci.remote_token, token);
	/* Server established after one RTT and a half: SYN, SYN/ACK, third ACK. */
	CU_ASSERT_EQUAL(w.now, 30000);
	CU_ASSERT_EQUAL(mps_subflow_info(c, 0, &sfi), 0);
	CU_ASSERT_STRING_EQUAL(sfi.state, "ESTABLISHED");
	CU_ASSERT_EQUAL(sfi.srtt_us, 20000);
	CU_ASSERT_EQUAL(mps_subflow_info(c, 1, &sfi), -ENOENT);
	CU_ASSERT_TRUE(has_event(&w, 0, MPS_EV_CONN_ESTABLISHED, -1));
	CU_ASSERT_TRUE(has_event(&w, 1, MPS_EV_CONN_ESTABLISHED, -1));
	CU_ASSERT_PTR_NULL(mps_accept(w.st[1]));
	transfer_and_close(&w, c, s, 1000, NULL, NULL);
	world_free(&w);
}

static void test_transfer_clean(void)
{
	struct mps_config cfg = { .seed = 3 };
	struct mps_conn_info ci, si;
	struct mps_conn *c, *s;
	struct mps_sim_stats ss;
	struct world w;

	world_init(&w, 4, &clean_link, &cfg, &cfg, 11);
	c = establish(&w, &s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	transfer_and_close(&w, c, s, 4 << 20, NULL, NULL);
	mps_sim_get_stats(w.sim, &ss);
	CU_ASSERT_EQUAL(ss.lost + ss.too_big + ss.no_route + ss.queue_full, 0);
	CU_ASSERT_EQUAL(mps_stack_counter(w.st[0], MPS_CNT_RETRANS_TIMEOUT), 0);
	CU_ASSERT_EQUAL(mps_stack_counter(w.st[1], MPS_CNT_IN_BAD_MAPPING), 0);
	CU_ASSERT_EQUAL(mps_stack_counter(w.st[1], MPS_CNT_IN_BAD_MPTCP), 0);
	CU_ASSERT_EQUAL(mps_stack_counter(w.st[0], MPS_CNT_IN_BAD_MPTCP), 0);
	(void)ci;
	(void)si;
	world_free(&w);
}

static void lossy_run(uint64_t seed, uint64_t *end_time, uint64_t *retrans)
{
	static const struct mps_sim_link_cfg lossy = { .delay_us = 15000,
						       .jitter_us = 2000,
						       .loss_ppm = 10000,
						       .reorder_ppm = 10000,
						       .reorder_delay_us = 5000,
						       .mtu = 1500,
						       .rate_bps = 100000000 };
	struct mps_config cfg = { .seed = seed };
	struct mps_subflow_info sfi;
	struct mps_conn *c, *s;
	struct mps_sim_stats ss;
	struct world w;

	world_init(&w, 4, &lossy, &cfg, &cfg, seed);
	c = establish(&w, &s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(mps_subflow_info(c, 0, &sfi), 0);
	transfer_and_close(&w, c, s, 2 << 20, NULL, NULL);
	mps_sim_get_stats(w.sim, &ss);
	CU_ASSERT(ss.lost > 0);
	CU_ASSERT(ss.reordered > 0);
	*end_time = w.now;
	*retrans = mps_stack_counter(w.st[0], MPS_CNT_FAST_RETRANS) +
		   mps_stack_counter(w.st[0], MPS_CNT_RETRANS_TIMEOUT);
	CU_ASSERT(*retrans > 0);
	CU_ASSERT(mps_stack_counter(w.st[1], MPS_CNT_IN_OUT_OF_ORDER) > 0);
	/* Queued segments and re-cut retransmissions never break the mapping. */
	CU_ASSERT_EQUAL(mps_stack_counter(w.st[1], MPS_CNT_IN_BAD_MAPPING), 0);
	world_free(&w);
}

static void test_transfer_lossy(void)
{
	uint64_t t1, t2, r1, r2;

	lossy_run(5, &t1, &r1);
	/* Same seed, same run: every time and every counter. */
	lossy_run(5, &t2, &r2);
	CU_ASSERT_EQUAL(t1, t2);
	CU_ASSERT_EQUAL(r1, r2);
}

static void test_ipv6_small_mtu(void)
{
	static const struct mps_sim_link_cfg link6 = { .delay_us = 5000, .mtu = 1280 };
	/* RFC 8200 minimum MTU: MSS = 1280 - 40 (IPv6) - 20 (TCP). */
	struct mps_config cfg = { .seed = 9, .mss = 1220 };
	struct mps_conn *c, *s;
	struct mps_sim_stats ss;
	struct world w;

	world_init(&w, 6, &link6, &cfg, &cfg, 13);
	c = establish(&w, &s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	transfer_and_close(&w, c, s, 300000, NULL, NULL);
	mps_sim_get_stats(w.sim, &ss);
	CU_ASSERT_EQUAL(ss.too_big, 0);
	CU_ASSERT(ss.delivered > 250);
	world_free(&w);
}

static void test_mtu_enforced(void)
{
	static const struct mps_sim_link_cfg narrow = { .delay_us = 5000, .mtu = 1280 };
	struct mps_config cfg = { .seed = 9, .mss = 1400 };
	struct mps_conn *c, *s;
	struct mps_sim_stats ss;
	struct world w;
	uint8_t buf[4000];
	long steps;

	/* An MSS too big for the path: the handshake passes, full-size data never does. */
	world_init(&w, 4, &narrow, &cfg, &cfg, 17);
	c = establish(&w, &s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	memset(buf, 1, sizeof(buf));
	CU_ASSERT_EQUAL(mps_send(c, buf, sizeof(buf)), (ssize_t)sizeof(buf));
	for (steps = 0; steps < 50 && w.now < 5000000; steps++)
		world_step(&w);
	mps_sim_get_stats(w.sim, &ss);
	CU_ASSERT(ss.too_big > 0);
	CU_ASSERT_EQUAL(mps_recv(s, buf, sizeof(buf)), -EAGAIN);
	world_free(&w);
}

static void test_fallback_plain_server(void)
{
	struct mps_config cfg = { .seed = 21 }, plain = { .seed = 22, .mptcp_disabled = true };
	struct mps_conn_info ci;
	struct mps_conn *c, *s;
	struct world w;

	world_init(&w, 4, &clean_link, &cfg, &plain, 23);
	c = establish(&w, &s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(mps_conn_info(c, &ci), 0);
	CU_ASSERT_FALSE(ci.mptcp);
	CU_ASSERT_TRUE(ci.fallback);
	CU_ASSERT_PTR_NOT_NULL(ci.fallback_reason);
	CU_ASSERT_TRUE(has_event(&w, 0, MPS_EV_FALLBACK, MPS_FALLBACK_SYNACK_NO_MPC));
	transfer_and_close(&w, c, s, 500000, NULL, NULL);
	world_free(&w);
}

static void test_fallback_plain_client(void)
{
	struct mps_config plain = { .seed = 31, .mptcp_disabled = true }, cfg = { .seed = 32 };
	struct mps_conn_info si;
	struct mps_conn *c, *s;
	struct world w;

	world_init(&w, 4, &clean_link, &plain, &cfg, 33);
	c = establish(&w, &s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(mps_conn_info(s, &si), 0);
	CU_ASSERT_FALSE(si.mptcp);
	CU_ASSERT_FALSE(si.fallback); /* never attempted: plain TCP, not a fallback */
	transfer_and_close(&w, s, c, 200000, NULL, NULL);
	world_free(&w);
}

/* A middlebox strips MPTCP options from some segment types; both ends must fall back. */
static void strip_run(unsigned int mask, int client_reason, bool server_fb, int server_reason)
{
	struct mps_sim_link_cfg link = clean_link;
	struct mps_config cfg = { .seed = 71 };
	struct mps_conn_info ci, si;
	struct mps_sim_stats ss;
	struct mps_conn *c, *s;
	struct world w;

	link.strip_mptcp = mask;
	world_init(&w, 4, &link, &cfg, &cfg, 73);
	c = establish(&w, &s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	transfer_and_close(&w, c, s, 300000, &ci, &si);
	mps_sim_get_stats(w.sim, &ss);
	CU_ASSERT(ss.stripped > 0);
	CU_ASSERT_FALSE(ci.mptcp);
	CU_ASSERT_TRUE(ci.fallback);
	CU_ASSERT_TRUE(has_event(&w, 0, MPS_EV_FALLBACK, client_reason));
	CU_ASSERT_FALSE(si.mptcp);
	CU_ASSERT_EQUAL(si.fallback, server_fb);
	if (server_fb)
		CU_ASSERT_TRUE(has_event(&w, 1, MPS_EV_FALLBACK, server_reason));
	world_free(&w);
}

static void test_strip_synack(void)
{
	strip_run(MPS_SIM_STRIP_SYNACK, MPS_FALLBACK_SYNACK_NO_MPC, true, MPS_FALLBACK_ACK_NO_MPC);
}

static void test_strip_third_ack(void)
{
	strip_run(MPS_SIM_STRIP_ACK, MPS_FALLBACK_NO_DSS, true, MPS_FALLBACK_ACK_NO_MPC);
}

/*
 * Only data segments lose their options: the third ACK gives the server
 * the client's key, then the client's first data arrives without DSS and
 * without MP_CAPABLE. The server falls back on it (RFC 8684 §3.7), and the
 * client on the server's ACKs, which then carry no DSS.
 */
static void test_strip_data(void)
{
	strip_run(MPS_SIM_STRIP_DATA, MPS_FALLBACK_NO_DSS, true, MPS_FALLBACK_OPTS_LOST);
}

static void test_strip_syn(void)
{
	strip_run(MPS_SIM_STRIP_SYN, MPS_FALLBACK_SYNACK_NO_MPC, false, 0);
}

static void test_checksum_transfer(void)
{
	static const struct mps_sim_link_cfg lossy = { .delay_us = 8000,
						       .loss_ppm = 5000,
						       .reorder_ppm = 5000,
						       .reorder_delay_us = 3000,
						       .mtu = 1500 };
	struct mps_config ask = { .seed = 81, .checksum = true }, plain = { .seed = 82 };
	struct mps_conn_info ci, si;
	struct mps_conn *c, *s;
	struct world w;

	/* The client asks; the server, not configured for it, follows (RFC 8684 §3.1). */
	world_init(&w, 4, &lossy, &ask, &plain, 83);
	c = establish(&w, &s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	transfer_and_close(&w, c, s, 1 << 20, &ci, &si);
	CU_ASSERT_TRUE(ci.checksum);
	CU_ASSERT_TRUE(si.checksum);
	CU_ASSERT_TRUE(ci.mptcp);
	CU_ASSERT_EQUAL(mps_stack_counter(w.st[1], MPS_CNT_IN_DSS_CSUM), 0);
	world_free(&w);

	/* Server asks, data flows server -> client. */
	world_init(&w, 6, &lossy, &plain, &ask, 84);
	c = establish(&w, &s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	transfer_and_close(&w, s, c, 1 << 20, &si, &ci);
	CU_ASSERT_TRUE(ci.checksum);
	CU_ASSERT_EQUAL(mps_stack_counter(w.st[0], MPS_CNT_IN_DSS_CSUM), 0);
	world_free(&w);
}

/*
 * A transfer of total bytes tx -> rx that applies change to the path once
 * rx has read at bytes, then closes both ends. Every received byte that
 * differs from the stream is counted and must differ by the middlebox's
 * XOR (0x20); first_diff is the position of the first.
 */
struct mid_run {
	uint64_t total, at, rcvd, diffs, first_diff;
	bool eof, other_diff;
	struct mps_sim_link_cfg change;
};

static void mid_transfer(struct world *w, struct mps_conn *tx, struct mps_conn *rx,
			 struct mid_run *r)
{
	uint8_t buf[16384];
	uint64_t sent = 0;
	bool changed = false;
	long steps;
	ssize_t n;
	size_t i, want;

	r->first_diff = UINT64_MAX;
	for (steps = 0; steps < STEP_CAP && !r->eof; steps++) {
		while (sent < r->total) {
			want = r->total - sent < sizeof(buf) ? r->total - sent : sizeof(buf);
			for (i = 0; i < want; i++)
				buf[i] = stream_byte(sent + i);
			n = mps_send(tx, buf, want);
			if (n <= 0)
				break;
			sent += (uint64_t)n;
			if (sent == r->total)
				CU_ASSERT_EQUAL(mps_shutdown(tx), 0);
		}
		while ((n = mps_recv(rx, buf, sizeof(buf))) > 0) {
			for (i = 0; i < (size_t)n; i++) {
				uint8_t d = buf[i] ^ stream_byte(r->rcvd + i);

				if (!d)
					continue;
				r->other_diff |= d != 0x20;
				if (r->first_diff == UINT64_MAX)
					r->first_diff = r->rcvd + i;
				r->diffs++;
			}
			r->rcvd += (uint64_t)n;
		}
		r->eof = n == 0;
		if (!changed && r->rcvd >= r->at) {
			CU_ASSERT_EQUAL(mps_sim_set_path(w->sim, w->path, &r->change), 0);
			changed = true;
		}
		if (!r->eof && !world_step(w))
			break;
	}
	mps_close(tx);
	mps_close(rx);
	for (steps = 0; steps < STEP_CAP; steps++)
		if (!world_step(w))
			break;
}

/*
 * A middlebox rewrites one payload byte after 256 KiB (and fixes the TCP
 * checksum); only the DSS checksum sees it. RFC 8684 §3.7 with one
 * subflow: the receiver sends MP_FAIL with the failed mapping's DSN and
 * falls back, the sender answers with the infinite mapping and falls back,
 * and the transfer completes as TCP. What is expected, exactly: every byte
 * before the failed mapping intact, and from there what the middlebox
 * delivered, which is the stream with that one byte XORed with 0x20 (the
 * infinite mapping covers the failed mapping retroactively).
 */
static uint64_t mp_fail_run(bool client_sends, uint64_t seed, const struct mps_sim_link_cfg *link)
{
	struct mps_config ask = { .seed = seed, .checksum = true };
	struct mid_run r = { .total = 1 << 20, .at = 256 << 10, .change = *link };
	struct mps_conn *c, *s;
	struct mps_sim_stats ss;
	struct world w;
	int tx = client_sends ? 0 : 1, rx = 1 - tx;
	uint64_t n;

	r.change.rewrite_ppm = 1000000;
	r.change.rewrite_max = 1;
	world_init(&w, 4, link, &ask, &ask, seed + 1);
	c = establish(&w, &s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	mid_transfer(&w, client_sends ? c : s, client_sends ? s : c, &r);
	mps_sim_get_stats(w.sim, &ss);
	CU_ASSERT_EQUAL(ss.rewritten, 1);
	CU_ASSERT(ss.lost > 0 || !link->loss_ppm);
	CU_ASSERT_TRUE(r.eof);
	CU_ASSERT_EQUAL(r.rcvd, r.total);
	CU_ASSERT_FALSE(r.other_diff);
	if (r.diffs == 0) {
		/* On a lossy path the rewritten copy may be one the receiver already had. */
		CU_ASSERT(link->loss_ppm > 0);
		CU_ASSERT_EQUAL(mps_stack_counter(w.st[rx], MPS_CNT_IN_DSS_CSUM), 0);
		CU_ASSERT_FALSE(has_event(&w, rx, MPS_EV_FALLBACK, -1));
		CU_ASSERT_FALSE(has_event(&w, tx, MPS_EV_FALLBACK, -1));
		world_free(&w);
		return 0;
	}
	CU_ASSERT_EQUAL(r.diffs, 1);
	CU_ASSERT(r.first_diff >= r.at && r.first_diff < r.total);
	/* Receiver: MP_FAIL sent, fallback, the peer's infinite mapping seen once. */
	CU_ASSERT_EQUAL(mps_stack_counter(w.st[rx], MPS_CNT_IN_DSS_CSUM), 1);
	CU_ASSERT(mps_stack_counter(w.st[rx], MPS_CNT_OUT_MP_FAIL) >= 1);
	/* Its segment may be lost and resent (with it again), or overtaken by later data. */
	CU_ASSERT(mps_stack_counter(w.st[rx], MPS_CNT_IN_INFINITE_MAP) == 1 || link->loss_ppm);
	CU_ASSERT_TRUE(has_event(&w, rx, MPS_EV_MP_FAIL, MPS_MP_FAIL_SENT));
	CU_ASSERT_TRUE(has_event(&w, rx, MPS_EV_FALLBACK, MPS_FALLBACK_MP_FAIL));
	/* Sender: MP_FAIL received, one infinite mapping sent, fallback. */
	CU_ASSERT(mps_stack_counter(w.st[tx], MPS_CNT_IN_MP_FAIL) >= 1);
	CU_ASSERT_EQUAL(mps_stack_counter(w.st[tx], MPS_CNT_OUT_INFINITE_MAP), 1);
	CU_ASSERT_TRUE(has_event(&w, tx, MPS_EV_MP_FAIL, MPS_MP_FAIL_RCVD));
	CU_ASSERT_TRUE(has_event(&w, tx, MPS_EV_FALLBACK, MPS_FALLBACK_MP_FAIL_RCVD));
	CU_ASSERT_TRUE(has_event(&w, tx, MPS_EV_MP_FAIL, MPS_MP_FAIL_INFINITE_SENT));
	/*
	 * Reported when the infinite mapping ends MPTCP; when its first copy was
	 * lost and data without a DSS ended it instead, a later copy is counted
	 * but not reported.
	 */
	if (has_event(&w, rx, MPS_EV_MP_FAIL, MPS_MP_FAIL_INFINITE_RCVD)) {
		CU_ASSERT(mps_stack_counter(w.st[rx], MPS_CNT_IN_INFINITE_MAP) > 0);
	} else {
		CU_ASSERT(mps_stack_counter(w.st[rx], MPS_CNT_IN_INFINITE_MAP) == 0 ||
			  mps_stack_counter(w.st[rx], MPS_CNT_IN_NO_DSS) > 0);
	}
	/* Both closed normally, neither was reset. */
	CU_ASSERT_TRUE(has_event(&w, 0, MPS_EV_CONN_CLOSED, -1));
	CU_ASSERT_TRUE(has_event(&w, 1, MPS_EV_CONN_CLOSED, -1));
	CU_ASSERT_FALSE(has_event(&w, 0, MPS_EV_CONN_RESET, -1));
	CU_ASSERT_FALSE(has_event(&w, 1, MPS_EV_CONN_RESET, -1));
	n = mps_stack_counter(w.st[rx], MPS_CNT_OUT_MP_FAIL);
	world_free(&w);
	return n;
}

static void test_mp_fail_client_sends(void)
{
	/* One MP_FAIL: the first ACK carrying it arrives, and the answer ends it. */
	CU_ASSERT_EQUAL(mp_fail_run(true, 91, &clean_link), 1);
}

static void test_mp_fail_server_sends(void)
{
	CU_ASSERT_EQUAL(mp_fail_run(false, 95, &clean_link), 1);
}

/*
 * MP_FAIL with data flowing both ways at once (checksums on): one byte is
 * rewritten after 128 KiB have arrived each way. The receiver that sees it
 * sends MP_FAIL on pure ACKs between its own data segments; its peer's next
 * new data carries the infinite mapping; both fall back, both streams
 * complete, and exactly that one byte differs.
 */
static void test_mp_fail_both_ways(void)
{
	struct mps_config ask = { .seed = 131, .checksum = true };
	struct mps_sim_link_cfg alg = clean_link;
	struct xfer cs = { .total = 512 << 10 }, sc = { .total = 512 << 10 };
	struct mps_conn *c, *s;
	struct mps_sim_stats ss;
	struct world w;
	bool changed = false;
	long steps;
	int i, rx;

	world_init(&w, 4, &clean_link, &ask, &ask, 132);
	c = establish(&w, &s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	cs.tx = sc.rx = c;
	cs.rx = sc.tx = s;
	alg.rewrite_ppm = 1000000;
	alg.rewrite_max = 1;
	for (steps = 0; steps < STEP_CAP && !(cs.rx_eof && sc.rx_eof); steps++) {
		xfer_pump(&cs);
		xfer_pump(&sc);
		if (!changed && cs.rcvd >= 128 << 10 && sc.rcvd >= 128 << 10) {
			CU_ASSERT_EQUAL(mps_sim_set_path(w.sim, w.path, &alg), 0);
			changed = true;
		}
		if (!world_step(&w))
			break;
	}
	mps_sim_get_stats(w.sim, &ss);
	CU_ASSERT_EQUAL(ss.rewritten, 1);
	CU_ASSERT_TRUE(cs.rx_eof && sc.rx_eof);
	CU_ASSERT_EQUAL(cs.rcvd, cs.total);
	CU_ASSERT_EQUAL(sc.rcvd, sc.total);
	CU_ASSERT_EQUAL(cs.diffs + sc.diffs, 1);
	CU_ASSERT_FALSE(cs.other_diff || sc.other_diff);
	rx = cs.diffs ? 1 : 0; /* the side that received the rewritten byte */
	CU_ASSERT_TRUE(has_event(&w, rx, MPS_EV_MP_FAIL, MPS_MP_FAIL_SENT));
	CU_ASSERT_TRUE(has_event(&w, 1 - rx, MPS_EV_MP_FAIL, MPS_MP_FAIL_RCVD));
	CU_ASSERT_TRUE(has_event(&w, rx, MPS_EV_FALLBACK, MPS_FALLBACK_MP_FAIL));
	CU_ASSERT_TRUE(has_event(&w, 1 - rx, MPS_EV_FALLBACK, MPS_FALLBACK_MP_FAIL_RCVD));
	mps_close(c);
	mps_close(s);
	for (steps = 0; steps < STEP_CAP; steps++)
		if (!world_step(&w))
			break;
	for (i = 0; i < 2; i++) {
		CU_ASSERT_TRUE(has_event(&w, i, MPS_EV_CONN_CLOSED, -1));
		CU_ASSERT_FALSE(has_event(&w, i, MPS_EV_CONN_RESET, -1));
	}
	world_free(&w);
}

/*
 * The same with 15 % loss both ways, six seeds, both directions: MP_FAIL,
 * its echo and the segment with the infinite mapping may each be lost.
 * MP_FAIL goes on every segment until answered, so the outcome is the same;
 * only the infinite mapping may never arrive (the echo answered first).
 * These seeds include runs where MP_FAIL had to be sent again, and runs
 * where the rewritten copy was a retransmission the receiver already had.
 */
static void test_mp_fail_lossy(void)
{
	struct mps_sim_link_cfg lossy = clean_link;
	unsigned int failed = 0, repeated = 0;
	uint64_t seed, n;

	lossy.loss_ppm = 150000;
	for (seed = 200; seed < 208; seed++) {
		n = mp_fail_run(seed & 1, seed * 4, &lossy);
		failed += n > 0;
		repeated += n > 1;
	}
	CU_ASSERT(failed >= 3);
	CU_ASSERT(repeated >= 1);
}

/*
 * The same failure once a join exists (RFC 8684 §3.7, and Linux, allow no
 * infinite mapping then): the receiver resets only the subflow that saw it,
 * with MP_TCPRST 6 and MP_FAIL; nothing of the failed mapping reaches the
 * application, the sender reinjects it on the other subflow, and all of
 * the data arrives intact with no connection reset.
 */
static void test_mp_fail_after_join(void)
{
	struct mps_config ask = { .seed = 97, .checksum = true };
	struct mps_sim_link_cfg alg = clean_link;
	struct mps_conn *c, *s;
	struct mps_addr jl;
	struct mps_sim_stats ss;
	struct world w;
	uint8_t buf[20000];
	uint64_t got = 0;
	long steps;
	ssize_t n;
	size_t i;

	world_init(&w, 4, &clean_link, &ask, &ask, 98);
	c = establish(&w, &s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	/* A DATA_ACK makes the client fully established; then a second subflow. */
	CU_ASSERT_EQUAL(mps_send(s, "x", 1), 1);
	for (steps = 0; steps < 100 && mps_recv(c, buf, 1) != 1; steps++)
		world_step(&w);
	for (steps = 0; steps < 100 && !has_event(&w, 1, MPS_EV_CONN_ESTABLISHED, -1); steps++)
		world_step(&w);
	jl = w.caddr;
	jl.port = 0;
	CU_ASSERT_EQUAL_FATAL(mps_join(c, &jl, &w.saddr, false), 0);
	for (steps = 0; steps < 1000 && !has_event(&w, 0, MPS_EV_SUBFLOW_UP, -1); steps++)
		world_step(&w);
	for (steps = 0; steps < 100; steps++)
		world_step(&w);
	CU_ASSERT_TRUE_FATAL(has_event(&w, 0, MPS_EV_SUBFLOW_UP, -1));
	alg.rewrite_ppm = 1000000;
	alg.rewrite_max = 1;
	CU_ASSERT_EQUAL(mps_sim_set_path(w.sim, w.path, &alg), 0);
	for (i = 0; i < sizeof(buf); i++)
		buf[i] = stream_byte(i);
	CU_ASSERT_EQUAL(mps_send(c, buf, sizeof(buf)), (ssize_t)sizeof(buf));
	for (steps = 0; steps < 2000; steps++) {
		while ((n = mps_recv(s, buf, sizeof(buf))) > 0) {
			for (i = 0; i < (size_t)n; i++)
				CU_ASSERT_EQUAL(buf[i], stream_byte(got + i));
			got += (uint64_t)n;
		}
		if (!world_step(&w))
			break;
	}
	mps_sim_get_stats(w.sim, &ss);
	CU_ASSERT_EQUAL(ss.rewritten, 1);
	CU_ASSERT_EQUAL(got, sizeof(buf));
	CU_ASSERT_EQUAL(mps_stack_counter(w.st[1], MPS_CNT_IN_DSS_CSUM), 1);
	CU_ASSERT_EQUAL(mps_stack_counter(w.st[1], MPS_CNT_OUT_MP_FAIL), 1);
	CU_ASSERT_FALSE(has_event(&w, 1, MPS_EV_FALLBACK, -1));
	CU_ASSERT_TRUE(has_event(&w, 1, MPS_EV_MP_FAIL, MPS_MP_FAIL_SF_RESET));
	CU_ASSERT_TRUE(has_event(&w, 1, MPS_EV_SUBFLOW_DOWN, MPS_SF_DOWN_CHECKSUM));
	CU_ASSERT_TRUE(has_event(&w, 0, MPS_EV_SUBFLOW_DOWN, MPS_SF_DOWN_RST));
	CU_ASSERT_FALSE(has_event(&w, 0, MPS_EV_CONN_RESET, -1));
	CU_ASSERT_FALSE(has_event(&w, 1, MPS_EV_CONN_RESET, -1));
	world_free(&w);
}

/*
 * A middlebox starts stripping every MPTCP option after 1 MiB of a 4 MiB
 * transfer, both ways (RFC 8684 §3.7): each side sees segments without DSS
 * on an established connection, falls back to TCP, and the whole stream
 * arrives intact.
 */
static void opts_lost_run(bool client_sends, uint64_t seed)
{
	struct mps_config cfg = { .seed = seed };
	struct mid_run r = { .total = 4 << 20, .at = 1 << 20, .change = clean_link };
	struct mps_conn *c, *s;
	struct mps_sim_stats ss;
	struct world w;
	int i;

	r.change.strip_mptcp = MPS_SIM_STRIP_ACK | MPS_SIM_STRIP_DATA;
	world_init(&w, 4, &clean_link, &cfg, &cfg, seed + 1);
	c = establish(&w, &s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	mid_transfer(&w, client_sends ? c : s, client_sends ? s : c, &r);
	mps_sim_get_stats(w.sim, &ss);
	CU_ASSERT(ss.stripped > 0);
	CU_ASSERT_TRUE(r.eof);
	CU_ASSERT_EQUAL(r.rcvd, r.total);
	CU_ASSERT_EQUAL(r.diffs, 0);
	for (i = 0; i < 2; i++) {
		CU_ASSERT_TRUE(has_event(&w, i, MPS_EV_FALLBACK, MPS_FALLBACK_OPTS_LOST));
		CU_ASSERT(mps_stack_counter(w.st[i], MPS_CNT_IN_NO_DSS) >= 1);
		CU_ASSERT_TRUE(has_event(&w, i, MPS_EV_CONN_CLOSED, -1));
		CU_ASSERT_FALSE(has_event(&w, i, MPS_EV_CONN_RESET, -1));
	}
	world_free(&w);
}

/*
 * With DSS checksums, once one has verified, Linux does not fall back when
 * options vanish (a checksum can no longer protect the data) and resets;
 * so do we. The stream delivered up to then is intact.
 */
static void test_opts_lost_checksum_resets(void)
{
	struct mps_config ask = { .seed = 141, .checksum = true };
	struct mid_run r = { .total = 4 << 20, .at = 1 << 20, .change = clean_link };
	struct mps_conn *c, *s;
	struct world w;

	r.change.strip_mptcp = MPS_SIM_STRIP_ACK | MPS_SIM_STRIP_DATA;
	world_init(&w, 4, &clean_link, &ask, &ask, 142);
	c = establish(&w, &s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	mid_transfer(&w, c, s, &r);
	CU_ASSERT_FALSE(r.eof);
	CU_ASSERT(r.rcvd >= r.at && r.rcvd < r.total);
	CU_ASSERT_EQUAL(r.diffs, 0);
	CU_ASSERT(mps_stack_counter(w.st[0], MPS_CNT_IN_NO_DSS) +
			  mps_stack_counter(w.st[1], MPS_CNT_IN_NO_DSS) >=
		  1);
	CU_ASSERT(has_event(&w, 0, MPS_EV_CONN_RESET, MPS_RST_OPTS_LOST) ||
		  has_event(&w, 1, MPS_EV_CONN_RESET, MPS_RST_OPTS_LOST));
	CU_ASSERT_FALSE(has_event(&w, 0, MPS_EV_FALLBACK, -1));
	CU_ASSERT_FALSE(has_event(&w, 1, MPS_EV_FALLBACK, -1));
	world_free(&w);
}

static void test_opts_lost_client_sends(void)
{
	opts_lost_run(true, 101);
}

static void test_opts_lost_server_sends(void)
{
	opts_lost_run(false, 105);
}

/*
 * Simultaneous open (RFC 9293 §3.5): two stacks connect to each other at
 * the same moment, so both SYNs cross. Each goes SYN-SENT, SYN-RECEIVED,
 * ESTABLISHED on the other's SYN,ACK, one round trip after the SYNs. With
 * MPTCP both fall back to TCP, as Linux does. Data then flows both ways and
 * both close cleanly.
 */
static void simultaneous_open_run(bool mptcp, uint64_t seed, const struct mps_sim_link_cfg *link)
{
	struct mps_config cfg = { .seed = seed, .mptcp_disabled = !mptcp };
	struct mps_conn *a = NULL, *b = NULL;
	struct mps_addr la, lb;
	struct mps_conn_info ai, bi;
	struct xfer ab = { .total = 200000 }, ba = { .total = 150000 };
	struct world w;
	long steps;
	int i;

	world_init(&w, 4, link, &cfg, &cfg, seed + 1);
	la = w.caddr;
	la.port = 41000;
	lb = w.saddr;
	lb.port = 42000;
	CU_ASSERT_EQUAL_FATAL(mps_connect(w.st[0], &la, &lb, &a), 0);
	CU_ASSERT_EQUAL_FATAL(mps_connect(w.st[1], &lb, &la, &b), 0);
	for (steps = 0; steps < 100000; steps++) {
		bool more = world_step(&w);

		CU_ASSERT_EQUAL(mps_conn_info(a, &ai), 0);
		CU_ASSERT_EQUAL(mps_conn_info(b, &bi), 0);
		if (!more || (ai.state == MPS_CONN_ESTABLISHED && bi.state == MPS_CONN_ESTABLISHED))
			break;
	}
	CU_ASSERT_EQUAL_FATAL(ai.state, MPS_CONN_ESTABLISHED);
	CU_ASSERT_EQUAL_FATAL(bi.state, MPS_CONN_ESTABLISHED);
	/* SYNs at 0 cross, SYN,ACKs at 10 ms cross, both established at 20 ms. */
	if (!link->loss_ppm)
		CU_ASSERT_EQUAL(w.now, 20000);
	/* Nobody listens: neither connection waits in an accept queue. */
	CU_ASSERT_PTR_NULL(mps_accept(w.st[0]));
	CU_ASSERT_PTR_NULL(mps_accept(w.st[1]));
	for (i = 0; i < 2 && !link->loss_ppm; i++) {
		CU_ASSERT_EQUAL(mps_stack_counter(w.st[i], MPS_CNT_SIMULT_OPEN), 1);
		CU_ASSERT_EQUAL(has_event(&w, i, MPS_EV_FALLBACK, MPS_FALLBACK_SIMULT_OPEN), mptcp);
	}
	for (i = 0; i < 2; i++) {
		/* With loss one SYN may arrive only after its sender saw the other's SYN,ACK. */
		CU_ASSERT(mps_stack_counter(w.st[0], MPS_CNT_SIMULT_OPEN) +
				  mps_stack_counter(w.st[1], MPS_CNT_SIMULT_OPEN) >=
			  1);
		CU_ASSERT_FALSE(has_event(&w, i, MPS_EV_CONN_RESET, -1));
	}
	CU_ASSERT_FALSE(ai.mptcp);
	CU_ASSERT_FALSE(bi.mptcp);
	CU_ASSERT_EQUAL(ai.fallback, mptcp);
	ab.tx = ba.rx = a;
	ab.rx = ba.tx = b;
	for (steps = 0; steps < STEP_CAP && !(ab.rx_eof && ba.rx_eof); steps++) {
		xfer_pump(&ab);
		xfer_pump(&ba);
		if (!world_step(&w))
			break;
	}
	CU_ASSERT_TRUE(ab.rx_eof && ba.rx_eof);
	CU_ASSERT_FALSE(ab.mismatch || ba.mismatch);
	CU_ASSERT_EQUAL(ab.rcvd, ab.total);
	CU_ASSERT_EQUAL(ba.rcvd, ba.total);
	mps_close(a);
	mps_close(b);
	for (steps = 0; steps < STEP_CAP; steps++)
		if (!world_step(&w))
			break;
	CU_ASSERT_TRUE(has_event(&w, 0, MPS_EV_CONN_CLOSED, -1));
	CU_ASSERT_TRUE(has_event(&w, 1, MPS_EV_CONN_CLOSED, -1));
	world_free(&w);
}

static void test_simultaneous_open_tcp(void)
{
	simultaneous_open_run(false, 111, &clean_link);
}

static void test_simultaneous_open_mptcp(void)
{
	simultaneous_open_run(true, 115, &clean_link);
}

/* The same with 10 % loss both ways: lost SYNs and SYN,ACKs are sent again. */
static void test_simultaneous_open_lossy(void)
{
	struct mps_sim_link_cfg lossy = clean_link;
	uint64_t seed;

	lossy.loss_ppm = 100000;
	for (seed = 120; seed < 128; seed++)
		simultaneous_open_run(seed & 1, seed, &lossy);
}

struct trace_count {
	struct mps_trace *t;
	unsigned int in, out;
};

static void count_hook(void *ctx, const uint8_t *pkt, size_t len, int out, int subflow,
		       uint64_t now)
{
	struct trace_count *tc = ctx;

	CU_ASSERT_EQUAL(subflow, 0);
	if (out)
		tc->out++;
	else
		tc->in++;
	mps_trace_packet(tc->t, pkt, len, out, subflow, now);
}

/* Every packet in and out of the client is in the pcap, headers only, options intact. */
static void test_trace_roundtrip(void)
{
	char path[] = "/tmp/fjord-mps-trace-XXXXXX", errbuf[PCAP_ERRBUF_SIZE];
	struct trace_count tc = { 0 };
	struct mps_config ccfg = { .seed = 101 }, scfg = { .seed = 102 };
	struct pcap_pkthdr *h;
	const u_char *pkt;
	unsigned int records = 0, bad = 0, mptcp = 0;
	struct mps_conn *c, *s;
	struct world w;
	pcap_t *pc;
	int fd, err, i;

	fd = mkstemp(path);
	CU_ASSERT_FATAL(fd >= 0);
	close(fd);
	tc.t = mps_trace_open(path, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(tc.t);
	ccfg.trace = count_hook;
	ccfg.trace_ctx = &tc;
	world_init(&w, 4, &clean_link, &ccfg, &scfg, 103);
	c = establish(&w, &s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	transfer_and_close(&w, c, s, 100000, NULL, NULL);
	world_free(&w);
	CU_ASSERT_EQUAL(mps_trace_count(tc.t), tc.in + tc.out);
	mps_trace_close(tc.t);
	CU_ASSERT(tc.out > 70 && tc.in > 5);

	pc = pcap_open_offline(path, errbuf);
	CU_ASSERT_PTR_NOT_NULL_FATAL(pc);
	CU_ASSERT_EQUAL(pcap_datalink(pc), DLT_RAW);
	while (pcap_next_ex(pc, &h, &pkt) == 1) {
		struct mps_seg sg;
		struct mps_tcpopts t;
		enum mps_seg_err serr;
		enum mps_opt_err oerr;
		struct mps_opt o;

		records++;
		if (mps_seg_parse(pkt, h->caplen, 1, &sg, &serr) != 0 ||
		    h->caplen != (bpf_u_int32)(sg.payload - pkt) || sg.payload_cap != 0 ||
		    h->len != h->caplen + sg.payload_len ||
		    mps_tcpopt_walk(sg.opts, sg.opts_len, &t) != 0) {
			bad++;
			continue;
		}
		for (i = 0; i < t.nmptcp; i++) {
			if (mps_opt_parse(sg.opts + t.mptcp[i].off, t.mptcp[i].len,
					  sg.flags | (sg.payload_len ? MPS_SEG_DATA : 0), &o,
					  &oerr) != 0)
				bad++;
			mptcp++;
		}
	}
	pcap_close(pc);
	unlink(path);
	CU_ASSERT_EQUAL(records, tc.in + tc.out);
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT_EQUAL(mptcp, records); /* one MPTCP option on every segment */
}

/* A receiver that reads nothing for 30 minutes: probes keep the connection, then it completes. */
static void test_zero_window_persist(void)
{
	struct mps_config cfg = { .seed = 111, .sndbuf = 65536, .rcvbuf = 16384 };
	struct mps_subflow_info sfi;
	struct mps_conn *c, *s;
	struct world w;
	uint8_t buf[65536];
	long steps;

	world_init(&w, 4, &clean_link, &cfg, &cfg, 113);
	c = establish(&w, &s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	memset(buf, 7, sizeof(buf));
	CU_ASSERT_EQUAL(mps_send(c, buf, sizeof(buf)), (ssize_t)sizeof(buf));
	for (steps = 0; steps < 100000 && w.now < 1800000000ULL; steps++)
		if (!world_step(&w))
			break;
	CU_ASSERT(w.now >= 1800000000ULL);
	CU_ASSERT_FALSE(has_event(&w, 0, MPS_EV_CONN_RESET, -1));
	CU_ASSERT_EQUAL(mps_subflow_info(c, 0, &sfi), 0);
	CU_ASSERT_STRING_EQUAL(sfi.state, "ESTABLISHED");
	CU_ASSERT_EQUAL(mps_stack_counter(w.st[0], MPS_CNT_FAST_RETRANS), 0);
	/* The receiver wakes up: the rest flows. */
	{
		size_t got = 0, i;
		ssize_t n;
		bool same = true;

		for (steps = 0; steps < 100000 && got < sizeof(buf); steps++) {
			while ((n = mps_recv(s, buf, 1000)) > 0) {
				for (i = 0; i < (size_t)n; i++)
					same = same && buf[i] == 7;
				got += (size_t)n;
			}
			if (got < sizeof(buf) && !world_step(&w))
				break;
		}
		CU_ASSERT_EQUAL(got, sizeof(buf));
		CU_ASSERT_TRUE(same);
	}
	world_free(&w);
}

/* Both ends send and close at the same instant: the FINs cross (CLOSING), both end closed. */
static void test_simultaneous_close(void)
{
	struct mps_config cfg = { .seed = 121 };
	struct mps_subflow_info ci, si;
	struct mps_conn *c, *s;
	struct world w;
	uint8_t buf[64];
	long steps;
	bool seen_closing = false;

	world_init(&w, 4, &clean_link, &cfg, &cfg, 123);
	c = establish(&w, &s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(mps_send(c, "from client", 11), 11);
	CU_ASSERT_EQUAL(mps_send(s, "from server", 11), 11);
	CU_ASSERT_EQUAL(mps_shutdown(c), 0);
	CU_ASSERT_EQUAL(mps_shutdown(s), 0);
	for (steps = 0; steps < 10000; steps++) {
		CU_ASSERT_EQUAL(mps_subflow_info(c, 0, &ci), 0);
		CU_ASSERT_EQUAL(mps_subflow_info(s, 0, &si), 0);
		if (!strcmp(ci.state, "CLOSING") || !strcmp(si.state, "CLOSING"))
			seen_closing = true;
		if (!strcmp(ci.state, "TIME-WAIT") && !strcmp(si.state, "TIME-WAIT"))
			break;
		if (!world_step(&w))
			break;
	}
	CU_ASSERT_TRUE(seen_closing);
	CU_ASSERT_STRING_EQUAL(ci.state, "TIME-WAIT");
	CU_ASSERT_STRING_EQUAL(si.state, "TIME-WAIT");
	CU_ASSERT_EQUAL(mps_recv(c, buf, sizeof(buf)), 11);
	CU_ASSERT_EQUAL(memcmp(buf, "from server", 11), 0);
	CU_ASSERT_EQUAL(mps_recv(c, buf, sizeof(buf)), 0);
	CU_ASSERT_EQUAL(mps_recv(s, buf, sizeof(buf)), 11);
	CU_ASSERT_EQUAL(mps_recv(s, buf, sizeof(buf)), 0);
	mps_close(c);
	mps_close(s);
	for (steps = 0; steps < 10000; steps++)
		if (!world_step(&w))
			break;
	CU_ASSERT_TRUE(has_event(&w, 0, MPS_EV_CONN_CLOSED, -1));
	CU_ASSERT_TRUE(has_event(&w, 1, MPS_EV_CONN_CLOSED, -1));
	CU_ASSERT_EQUAL(mps_next_wakeup(w.st[0]), MPS_TIME_NEVER);
	CU_ASSERT_EQUAL(mps_next_wakeup(w.st[1]), MPS_TIME_NEVER);
	world_free(&w);
}

static void test_rst_closed_port(void)
{
	struct mps_config cfg = { .seed = 41 };
	struct mps_conn *c = NULL;
	struct mps_addr other;
	struct world w;
	long steps;

	world_init(&w, 4, &clean_link, &cfg, &cfg, 43);
	other = w.saddr;
	other.port = 9;
	CU_ASSERT_EQUAL_FATAL(mps_connect(w.st[0], &w.caddr, &other, &c), 0);
	for (steps = 0; steps < 100; steps++)
		if (!world_step(&w))
			break;
	CU_ASSERT_EQUAL(mps_stack_counter(w.st[1], MPS_CNT_IN_NO_CONN), 1);
	CU_ASSERT_TRUE(has_event(&w, 0, MPS_EV_CONN_RESET, MPS_RST_PEER));
	CU_ASSERT_EQUAL(mps_send(c, "x", 1), -EPIPE);
	CU_ASSERT_EQUAL(mps_recv(c, &other, 1), -ECONNRESET);
	mps_close(c);
	world_free(&w);
}

static void test_fastclose(void)
{
	struct mps_config cfg = { .seed = 51 };
	struct mps_conn *c, *s;
	struct world w;
	uint8_t b[8];
	long steps;

	world_init(&w, 4, &clean_link, &cfg, &cfg, 53);
	c = establish(&w, &s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	mps_abort(c);
	for (steps = 0; steps < 100; steps++)
		if (!world_step(&w))
			break;
	/* The server checked its own key in MP_FASTCLOSE before acting on it. */
	CU_ASSERT_TRUE(has_event(&w, 1, MPS_EV_CONN_RESET, MPS_RST_FASTCLOSE));
	CU_ASSERT_EQUAL(mps_recv(s, b, sizeof(b)), -ECONNRESET);
	mps_close(s);
	CU_ASSERT_EQUAL(mps_next_wakeup(w.st[0]), MPS_TIME_NEVER);
	world_free(&w);
}

static void test_syn_retransmit(void)
{
	static const struct mps_sim_link_cfg cut = { .delay_us = 1000, .loss_ppm = 1000000 };
	struct mps_config cfg = { .seed = 61 };
	struct mps_conn *c = NULL, *s = NULL;
	struct mps_sim_stats ss;
	struct world w;
	long steps;

	/* The path is down for 2.5 s: SYNs at 0, 1 s and 3 s; the third one passes. */
	world_init(&w, 4, &cut, &cfg, &cfg, 63);
	CU_ASSERT_EQUAL_FATAL(mps_connect(w.st[0], &w.caddr, &w.saddr, &c), 0);
	for (steps = 0; steps < 1000 && w.now < 2500000; steps++)
		world_step(&w);
	CU_ASSERT_EQUAL(mps_sim_set_path(w.sim, w.path, &clean_link), 0);
	for (steps = 0; steps < 1000 && !s; steps++) {
		world_step(&w);
		s = mps_accept(w.st[1]);
	}
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	mps_sim_get_stats(w.sim, &ss);
	CU_ASSERT_EQUAL(ss.lost, 2);
	CU_ASSERT_EQUAL(w.now, 3000000 + 30000);
	transfer_and_close(&w, c, s, 100000, NULL, NULL);
	world_free(&w);
}

/*
 * A tail-drop queue overflowing (tbf's) loses a run of segments in one
 * window. The client's data packets pass a filter that drops the ones
 * numbered from..from+n-1 and notes the retransmissions that follow; the
 * server's ACKs are watched for the one that covers the whole run.
 */
struct burst {
	struct mps_sim_port *client, *server;
	struct mps_conn *c;
	unsigned int data_pkts, from, n, rexmits;
	uint32_t high;	     /* sequence number after the highest byte sent so far */
	uint32_t start, end; /* sequence numbers of the first and after the last dropped byte */
	uint64_t first_rexmit_at, last_rexmit_at;
	uint64_t first_acked_at, fixed_at; /* first ACK past start, and past end */
	uint32_t srtt_at_fix;
};

static struct burst the_burst;

static void tcp_fields(const uint8_t *pkt, size_t len, uint32_t *seq, uint32_t *ack,
		       uint32_t *payload)
{
	size_t ihl = (size_t)(pkt[0] & 0xf) * 4, doff;

	*payload = 0;
	if (len < ihl + 20)
		return;
	doff = (size_t)(pkt[ihl + 12] >> 4) * 4;
	*seq = mps_get_be32(pkt + ihl + 4);
	*ack = mps_get_be32(pkt + ihl + 8);
	if ((size_t)mps_get_be16(pkt + 2) > ihl + doff)
		*payload = (uint32_t)(mps_get_be16(pkt + 2) - ihl - doff);
}

static int burst_send(void *ctx, const uint8_t *pkt, size_t len, uint64_t now)
{
	struct burst *b = &the_burst;
	uint32_t seq = 0, ack = 0, pl;
	struct mps_subflow_info sfi;

	tcp_fields(pkt, len, &seq, &ack, &pl);
	if (ctx == b->client && pl) {
		if (b->data_pkts && (int32_t)(seq + pl - b->high) <= 0) {
			b->rexmits++;
			if (!b->first_rexmit_at)
				b->first_rexmit_at = now;
			b->last_rexmit_at = now;
		} else {
			b->high = seq + pl;
		}
		b->data_pkts++;
		if (b->data_pkts >= b->from && b->data_pkts < b->from + b->n) {
			if (b->data_pkts == b->from)
				b->start = seq;
			b->end = seq + pl;
			return 0; /* lost on the wire */
		}
	}
	if (ctx == b->server && b->end && !b->first_acked_at && (int32_t)(ack - b->start) > 0)
		b->first_acked_at = now;
	if (ctx == b->server && b->end && !b->fixed_at && (int32_t)(ack - b->end) >= 0 &&
	    b->data_pkts >= b->from + b->n) {
		b->fixed_at = now;
		CU_ASSERT_EQUAL(mps_subflow_info(b->c, 0, &sfi), 0);
		b->srtt_at_fix = sfi.srtt_us;
	}
	return mps_sim_link_ops.send(ctx, pkt, len, now);
}

static int burst_recv(void *ctx, uint8_t *buf, size_t cap, uint64_t now)
{
	return mps_sim_link_ops.recv(ctx, buf, cap, now);
}

static uint64_t burst_next(void *ctx)
{
	return mps_sim_link_ops.next_ready(ctx);
}

static const struct mps_link_ops burst_ops = {
	.name = "burst", .send = burst_send, .recv = burst_recv, .next_ready = burst_next
};

/* Both stacks pumped through the filter, then the clock to what is due next; false when idle. */
static bool burst_round(struct world *w)
{
	return world_step_ops(w, &burst_ops);
}

/*
 * Ten segments of one window lost at once (RFC 6675 with RFC 6937's PRR):
 * the scoreboard shows the whole run lost, the repairs go out at once, one
 * for every other duplicate ACK, and the run is acknowledged about one round
 * trip after the first of them, in one recovery episode, without a timeout
 * and without resending anything that arrived. NewReno, one hole per round
 * trip, would take ten.
 */
static void test_sack_burst_repair(void)
{
	static const struct mps_sim_link_cfg link = { .delay_us = 10000,
						      .mtu = 1500,
						      .rate_bps = 50000000 };
	/* A receive window that leaves room for new data during the repair. */
	struct mps_config cfg = { .seed = 61, .rcvbuf = 1 << 20 };
	struct xfer x = { .total = 4 << 20 };
	struct burst *b = &the_burst;
	struct mps_subflow_info sfi;
	struct mps_conn *c, *s;
	struct world w;
	long steps;

	world_init(&w, 4, &link, &cfg, &cfg, 62);
	c = establish(&w, &s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	memset(b, 0, sizeof(*b));
	b->client = w.port[0];
	b->server = w.port[1];
	b->c = c;
	b->from = 300; /* in slow start, some 150 segments in flight */
	b->n = 10;
	x.tx = c;
	x.rx = s;
	for (steps = 0; steps < STEP_CAP && !x.rx_eof; steps++) {
		xfer_pump(&x);
		if (!burst_round(&w))
			break;
	}
	CU_ASSERT_TRUE(x.rx_eof);
	CU_ASSERT_FALSE(x.mismatch);
	CU_ASSERT_EQUAL(x.rcvd, x.total);
	CU_ASSERT_FATAL(b->fixed_at > 0);
	CU_ASSERT_EQUAL(mps_stack_counter(w.st[0], MPS_CNT_RETRANS_TIMEOUT), 0);
	CU_ASSERT_EQUAL(mps_stack_counter(w.st[0], MPS_CNT_FAST_RETRANS), 1);
	CU_ASSERT_EQUAL(mps_stack_counter(w.st[0], MPS_CNT_LOST_RETRANS), 0);
	/* Exactly the ten lost segments were sent again, nothing else. */
	CU_ASSERT_EQUAL(b->rexmits, 10);
	CU_ASSERT_EQUAL(mps_subflow_info(c, 0, &sfi), 0);
	CU_ASSERT_EQUAL(sfi.retransmits, 10);
	/* All ten within a quarter of a round trip, every other duplicate ACK. */
	CU_ASSERT(b->last_rexmit_at - b->first_rexmit_at <= b->srtt_at_fix / 4);
	/*
	 * One round of repairs: the last one is acknowledged as soon after it
	 * was sent as the first one was (the round trip, queue included).
	 */
	CU_ASSERT(b->first_acked_at > b->first_rexmit_at);
	CU_ASSERT(b->fixed_at - b->last_rexmit_at <= b->first_acked_at - b->first_rexmit_at);
	mps_abort(c);
	mps_abort(s);
	world_free(&w);
}

/*
 * Early retransmit (RFC 5827): three segments of a small request, the first
 * lost, nothing more to send. Two duplicate ACKs are all that can come, so
 * the sender retransmits on the second instead of waiting for its RTO (at
 * least 200 ms): the request is complete about two round trips after it
 * went, with no timeout.
 */
static void test_early_retransmit(void)
{
	static const struct mps_sim_link_cfg link = { .delay_us = 10000, .mtu = 1500 };
	struct mps_config cfg = { .seed = 63 };
	struct burst *b = &the_burst;
	uint8_t buf[3000];
	uint64_t start, rcvd = 0;
	struct mps_conn *c, *s;
	struct world w;
	long steps;
	ssize_t n;
	int i;

	world_init(&w, 4, &link, &cfg, &cfg, 64);
	c = establish(&w, &s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	memset(b, 0, sizeof(*b));
	b->client = w.port[0];
	b->server = w.port[1];
	b->c = c;
	b->from = 1; /* the first data packet from now on */
	b->n = 1;
	for (i = 0; i < (int)sizeof(buf); i++)
		buf[i] = (uint8_t)i;
	CU_ASSERT_EQUAL_FATAL(mps_send(c, buf, sizeof(buf)), (ssize_t)sizeof(buf));
	start = w.now;
	for (steps = 0; steps < STEP_CAP && rcvd < sizeof(buf); steps++) {
		bool more = burst_round(&w);

		while ((n = mps_recv(s, buf, sizeof(buf))) > 0) {
			for (i = 0; i < n; i++)
				CU_ASSERT_EQUAL(buf[i], (uint8_t)(rcvd + (uint64_t)i));
			rcvd += (uint64_t)n;
		}
		if (!more)
			break;
	}
	CU_ASSERT_EQUAL(rcvd, sizeof(buf));
	CU_ASSERT_EQUAL(b->data_pkts, 4); /* three, and the one repair */
	CU_ASSERT_EQUAL(b->rexmits, 1);
	CU_ASSERT_EQUAL(mps_stack_counter(w.st[0], MPS_CNT_FAST_RETRANS), 1);
	CU_ASSERT_EQUAL(mps_stack_counter(w.st[0], MPS_CNT_RETRANS_TIMEOUT), 0);
	/* Two round trips of 20 ms and the delayed ACKs, well under the 200 ms RTO. */
	CU_ASSERT(w.now - start < 100000);
	mps_abort(c);
	mps_abort(s);
	world_free(&w);
}

/*
 * HyStart++ (RFC 9406): over a 50 Mbit/s path with a queue that never drops
 * (the simulator's holds 8192 packets) and windows that do not bind (4 MiB
 * buffers), plain slow start would double the window into the queue until
 * the buffers stop it, hundreds of milliseconds of queue. With HyStart++ the
 * rising RTT ends slow start (ssthresh set without any loss) and the queue
 * stays within ten round trips of the path's own.
 */
static void test_hystart_exit(void)
{
	static const struct mps_sim_link_cfg link = { .delay_us = 10000,
						      .mtu = 1500,
						      .rate_bps = 50000000 };
	struct mps_config cfg = { .seed = 71, .rcvbuf = 4 << 20, .sndbuf_max = 4 << 20 };
	struct xfer x = { .total = 16 << 20 };
	struct mps_subflow_info sfi;
	uint32_t max_srtt = 0;
	struct mps_conn *c, *s;
	struct world w;
	long steps;

	world_init(&w, 4, &link, &cfg, &cfg, 72);
	c = establish(&w, &s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	x.tx = c;
	x.rx = s;
	for (steps = 0; steps < STEP_CAP && !x.rx_eof; steps++) {
		xfer_pump(&x);
		CU_ASSERT_EQUAL_FATAL(mps_subflow_info(c, 0, &sfi), 0);
		if (sfi.srtt_us > max_srtt)
			max_srtt = sfi.srtt_us;
		if (!x.rx_eof && !world_step(&w))
			break;
	}
	CU_ASSERT_TRUE(x.rx_eof);
	CU_ASSERT_FALSE(x.mismatch);
	CU_ASSERT_EQUAL(mps_stack_counter(w.st[0], MPS_CNT_RETRANS_TIMEOUT), 0);
	CU_ASSERT_EQUAL(mps_stack_counter(w.st[0], MPS_CNT_FAST_RETRANS), 0);
	CU_ASSERT_EQUAL(sfi.retransmits, 0);
	/* Slow start ended by the RTT alone. */
	CU_ASSERT_NOT_EQUAL(sfi.ssthresh, UINT32_MAX);
	/*
	 * The queue stayed bounded: 160 ms of smoothed RTT at most here (the
	 * five rounds of Conservative Slow Start still triple the window), where
	 * slow start alone would fill 4 MiB of buffers, about 650 ms.
	 */
	CU_ASSERT(max_srtt < 200000);
	mps_abort(c);
	mps_abort(s);
	world_free(&w);
}

/* Time (simulated) to move total bytes over link with cfg on both ends; grown: receive buffers grown. */
static uint64_t rcvbuf_run(const struct mps_sim_link_cfg *link, const struct mps_config *cfg,
			   uint64_t total, uint64_t *grown)
{
	struct xfer x = { .total = total };
	struct mps_conn *c, *s;
	struct world w;
	uint64_t start, took;
	long steps;

	world_init(&w, 4, link, cfg, cfg, 82);
	c = establish(&w, &s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	x.tx = c;
	x.rx = s;
	start = w.now;
	for (steps = 0; steps < STEP_CAP && !x.rx_eof; steps++) {
		xfer_pump(&x);
		if (!x.rx_eof && !world_step(&w))
			break;
	}
	CU_ASSERT_TRUE(x.rx_eof);
	CU_ASSERT_FALSE(x.mismatch);
	CU_ASSERT_EQUAL(x.rcvd, total);
	*grown = mps_stack_counter(w.st[1], MPS_CNT_RCVBUF_GROWN);
	took = w.now - start;
	mps_abort(c);
	mps_abort(s);
	world_free(&w);
	return took;
}

/*
 * Receive buffer autotuning: over a 100 Mbit/s path with a 50 ms round trip
 * (625 KB in flight to fill it) a fixed 256 KiB receive buffer holds the
 * sender to about 40 Mbit/s; with cfg.rcvbuf_max the receiver's buffer
 * grows as round trips bring more than half of it, and the same transfer
 * takes well under two thirds of the time. Without rcvbuf_max the buffer
 * does not grow.
 */
static void test_rcvbuf_autotune(void)
{
	static const struct mps_sim_link_cfg link = { .delay_us = 25000,
						      .mtu = 1500,
						      .rate_bps = 100000000 };
	struct mps_config fixed = { .seed = 81 }, tuned = { .seed = 81, .rcvbuf_max = 4 << 20 };
	uint64_t t_fixed, t_tuned, g_fixed, g_tuned;

	t_fixed = rcvbuf_run(&link, &fixed, 16 << 20, &g_fixed);
	t_tuned = rcvbuf_run(&link, &tuned, 16 << 20, &g_tuned);
	CU_ASSERT_EQUAL(g_fixed, 0);
	CU_ASSERT(g_tuned > 0);
	/* 3.4 s against 1.7 s here. */
	CU_ASSERT(t_tuned * 3 < t_fixed * 2);
}

static const struct fj_test tests[] = {
	{ "handshake", test_handshake },
	{ "transfer_clean", test_transfer_clean },
	{ "transfer_lossy", test_transfer_lossy },
	{ "ipv6_small_mtu", test_ipv6_small_mtu },
	{ "mtu_enforced", test_mtu_enforced },
	{ "fallback_plain_server", test_fallback_plain_server },
	{ "fallback_plain_client", test_fallback_plain_client },
	{ "strip_syn", test_strip_syn },
	{ "strip_synack", test_strip_synack },
	{ "strip_third_ack", test_strip_third_ack },
	{ "strip_data", test_strip_data },
	{ "checksum_transfer", test_checksum_transfer },
	{ "mp_fail_client_sends", test_mp_fail_client_sends },
	{ "mp_fail_server_sends", test_mp_fail_server_sends },
	{ "mp_fail_lossy", test_mp_fail_lossy },
	{ "mp_fail_both_ways", test_mp_fail_both_ways },
	{ "mp_fail_after_join", test_mp_fail_after_join },
	{ "opts_lost_client_sends", test_opts_lost_client_sends },
	{ "opts_lost_server_sends", test_opts_lost_server_sends },
	{ "opts_lost_checksum_resets", test_opts_lost_checksum_resets },
	{ "trace_roundtrip", test_trace_roundtrip },
	{ "zero_window_persist", test_zero_window_persist },
	{ "simultaneous_close", test_simultaneous_close },
	{ "simultaneous_open_tcp", test_simultaneous_open_tcp },
	{ "simultaneous_open_mptcp", test_simultaneous_open_mptcp },
	{ "simultaneous_open_lossy", test_simultaneous_open_lossy },
	{ "rst_closed_port", test_rst_closed_port },
	{ "fastclose", test_fastclose },
	{ "syn_retransmit", test_syn_retransmit },
	{ "sack_burst_repair", test_sack_burst_repair },
	{ "early_retransmit", test_early_retransmit },
	{ "hystart_exit", test_hystart_exit },
	{ "rcvbuf_autotune", test_rcvbuf_autotune },
	{ NULL, NULL },
};

const struct fj_suite fj_suite_sim_tcp = { "sim_tcp", NULL, NULL, tests };
