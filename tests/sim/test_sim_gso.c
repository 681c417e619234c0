/*
 * libmps with a link that segments (TUN offloads), on the simulated network:
 * new data leaves as super-segments that the sim port cuts as the kernel's
 * GSO would (every piece with the same options and DSS mapping) or passes
 * whole (the receiver then takes a merged segment, as from GRO). The
 * stream must arrive intact, with DSS checksums too, over loss, IPv4 and
 * IPv6, and the trace must hold what the stack emitted.
 */
#include <errno.h>
#include <string.h>

#include "../unit/fj_test.h"
#include "mps.h"
#include "mps_seg.h"
#include "mps_sim.h"

#define SRV_PORT 5002
#define STEP_CAP 2000000
#define GW_PEERS 16 /* subflows told apart by the last byte of the peer's address */

struct gworld {
	struct mps_sim *sim;
	struct mps_stack *st[2]; /* 0 client (sender), 1 server */
	struct mps_sim_port *port[2];
	uint64_t now, eof_at; /* eof_at: when the receiver read the end of the stream */
	struct mps_addr caddr, saddr;
	uint64_t out_pkts[2], out_big[2]; /* per stack: packets traced out; those above 1500 */
	uint32_t out_max[2];		  /* largest traced out */
	uint64_t in_big[2];		  /* packets above 1500 traced in */
	bool events_bad;		  /* an MP_FAIL or fallback event on either side */
	/*
	 * Per stack and subflow: merged packets in, when the oldest one not
	 * yet answered came, and the longest wait from such a packet to the
	 * next packet out on the same subflow (the receiver's ACK).
	 */
	uint64_t big_in_sf[2][GW_PEERS], big_at[2][GW_PEERS], ack_wait_max[2];
};

struct trace_ctx {
	struct gworld *w;
	int side;
};

static void trace_hook(void *ctx, const uint8_t *pkt, size_t len, int out, int subflow,
		       uint64_t now)
{
	struct trace_ctx *t = ctx;
	struct gworld *w = t->w;
	struct mps_seg s;
	enum mps_seg_err err;

	/* Whatever size, what was traced is a whole, well-formed packet. */
	CU_ASSERT_EQUAL(mps_seg_parse(pkt, len, 0, &s, &err), 0);
	/*
	 * Subflows told apart by the peer's address (IDs are per address, and
	 * both of the server's subflows end at its one address).
	 */
	if (subflow >= 0) {
		uint8_t peer = (out ? s.dst : s.src)[s.family == 4 ? 3 : 15] % GW_PEERS;
		uint64_t *at = &w->big_at[t->side][peer];

		if (!out && len > 1500) {
			w->big_in_sf[t->side][peer]++;
			if (*at == MPS_TIME_NEVER)
				*at = now;
		} else if (out && *at != MPS_TIME_NEVER) {
			if (now - *at > w->ack_wait_max[t->side])
				w->ack_wait_max[t->side] = now - *at;
			*at = MPS_TIME_NEVER;
		}
	}
	if (out) {
		w->out_pkts[t->side]++;
		w->out_big[t->side] += len > 1500;
		if (len > w->out_max[t->side])
			w->out_max[t->side] = (uint32_t)len;
	} else {
		w->in_big[t->side] += len > 1500;
	}
}

static void addr_set(struct mps_addr *a, uint8_t family, uint8_t last, uint16_t port)
{
	memset(a, 0, sizeof(*a));
	a->family = family;
	if (family == 4) {
		a->addr[0] = 10;
		a->addr[2] = 3;
		a->addr[3] = last;
	} else {
		a->addr[0] = 0xfd;
		a->addr[1] = 0x03;
		a->addr[15] = last;
	}
	a->port = port;
}

/*
 * A client and a server over one path with link; with two_paths, the client
 * has a second address on a second path like the first, so its fullmesh
 * path manager joins from there to the server's address. srv_mss: the
 * server's cfg.mss (0: the default).
 */
static void gworld_init(struct gworld *w, struct trace_ctx tc[2], uint8_t family,
			const struct mps_sim_link_cfg *link, bool checksum, uint64_t seed,
			bool two_paths, uint16_t srv_mss)
{
	struct mps_config cfg = { .seed = seed, .checksum = checksum, .trace = trace_hook };
	struct mps_addr c2;
	int err, a, b, i, j;

	memset(w, 0, sizeof(*w));
	for (i = 0; i < 2; i++)
		for (j = 0; j < GW_PEERS; j++)
			w->big_at[i][j] = MPS_TIME_NEVER;
	w->sim = mps_sim_create(seed);
	CU_ASSERT_PTR_NOT_NULL_FATAL(w->sim);
	a = mps_sim_add_node(w->sim);
	b = mps_sim_add_node(w->sim);
	addr_set(&w->caddr, family, 1, 0);
	addr_set(&w->saddr, family, 2, SRV_PORT);
	CU_ASSERT_FATAL(
		mps_sim_add_path(w->sim, a, w->caddr.addr, b, w->saddr.addr, family, link) >= 0);
	if (two_paths) {
		addr_set(&c2, family, 3, 0);
		CU_ASSERT_FATAL(
			mps_sim_add_path(w->sim, a, c2.addr, b, w->saddr.addr, family, link) >= 0);
	}
	w->port[0] = mps_sim_port(w->sim, a);
	w->port[1] = mps_sim_port(w->sim, b);
	for (i = 0; i < 2; i++) {
		tc[i].w = w;
		tc[i].side = i;
		cfg.trace_ctx = &tc[i];
		cfg.seed = seed + (uint64_t)i;
		cfg.nlocal_addrs = two_paths && i == 0;
		cfg.mss = i == 1 ? srv_mss : 0;
		if (cfg.nlocal_addrs)
			cfg.local_addrs[0] = c2;
		w->st[i] = mps_stack_create(&cfg, &err);
		CU_ASSERT_PTR_NOT_NULL_FATAL(w->st[i]);
	}
	CU_ASSERT_EQUAL(mps_listen(w->st[1], &w->saddr), 0);
}

static bool gworld_step(struct gworld *w)
{
	uint64_t t = MPS_TIME_NEVER, x;
	struct mps_event ev;
	int i, err;

	for (i = 0; i < 2; i++) {
		mps_pump(w->st[i], &mps_sim_link_ops, w->port[i], w->now, &err);
		CU_ASSERT_EQUAL(err, 0);
		while (mps_next_event(w->st[i], &ev) == 0)
			if (ev.type == MPS_EV_MP_FAIL || ev.type == MPS_EV_FALLBACK)
				w->events_bad = true;
	}
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

static uint8_t stream_byte(uint64_t i)
{
	uint64_t z = i * 0x9e3779b97f4a7c15ULL;

	return (uint8_t)((z >> 29) ^ (z >> 47) ^ i);
}

/*
 * Connect, send total bytes client -> server, close both and run until both
 * stacks are idle. Returns true if every byte arrived, in order and intact.
 */
static bool gworld_transfer(struct gworld *w, uint64_t total)
{
	struct mps_conn *c = NULL, *s = NULL;
	uint64_t sent = 0, rcvd = 0;
	bool eof = false, intact = true;
	uint8_t buf[32768];
	ssize_t n;
	size_t i, want;
	long steps;

	CU_ASSERT_EQUAL_FATAL(mps_connect(w->st[0], &w->caddr, &w->saddr, &c), 0);
	for (steps = 0; steps < STEP_CAP && !s; steps++) {
		bool more = gworld_step(w);

		s = mps_accept(w->st[1]);
		if (!more)
			break;
	}
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	for (steps = 0; steps < STEP_CAP && !eof; steps++) {
		while (sent < total) {
			want = total - sent < sizeof(buf) ? (size_t)(total - sent) : sizeof(buf);
			for (i = 0; i < want; i++)
				buf[i] = stream_byte(sent + i);
			n = mps_send(c, buf, want);
			if (n <= 0)
				break;
			sent += (uint64_t)n;
			if (sent == total)
				CU_ASSERT_EQUAL(mps_shutdown(c), 0);
		}
		while ((n = mps_recv(s, buf, sizeof(buf))) > 0) {
			for (i = 0; i < (size_t)n; i++)
				intact &= buf[i] == stream_byte(rcvd + i);
			rcvd += (uint64_t)n;
		}
		if (n == 0) {
			eof = true;
			w->eof_at = w->now;
		} else if (!gworld_step(w))
			break;
	}
	CU_ASSERT_TRUE(eof);
	CU_ASSERT_EQUAL(rcvd, total);
	mps_close(s);
	mps_close(c);
	for (steps = 0; steps < STEP_CAP; steps++)
		if (!gworld_step(w))
			break;
	CU_ASSERT_EQUAL(mps_next_wakeup(w->st[0]), MPS_TIME_NEVER);
	CU_ASSERT_EQUAL(mps_next_wakeup(w->st[1]), MPS_TIME_NEVER);
	return eof && intact && rcvd == total;
}

static void gworld_free(struct gworld *w)
{
	mps_stack_destroy(w->st[0]);
	mps_stack_destroy(w->st[1]);
	mps_sim_destroy(w->sim);
}

/* Nothing the receiver refused, no checksum or mapping trouble either side. */
static void assert_clean_mptcp(const struct gworld *w)
{
	int i;

	for (i = 0; i < 2; i++) {
		CU_ASSERT_EQUAL(mps_stack_counter(w->st[i], MPS_CNT_IN_BAD_CSUM), 0);
		CU_ASSERT_EQUAL(mps_stack_counter(w->st[i], MPS_CNT_IN_BAD_MAPPING), 0);
		CU_ASSERT_EQUAL(mps_stack_counter(w->st[i], MPS_CNT_IN_BAD_MPTCP), 0);
		CU_ASSERT_EQUAL(mps_stack_counter(w->st[i], MPS_CNT_IN_DSS_CSUM), 0);
		CU_ASSERT_EQUAL(mps_stack_counter(w->st[i], MPS_CNT_IN_NO_DSS), 0);
	}
	CU_ASSERT_FALSE(w->events_bad);
}

static const struct mps_sim_link_cfg fast_link = { .delay_us = 5000,
						   .mtu = 1500,
						   .rate_bps = 1000000000 };

/* Super-segments cut on the wire: the sender's trace holds them, the path never sees one. */
static void split_run(uint8_t family, bool checksum)
{
	struct trace_ctx tc[2];
	struct mps_sim_stats ss;
	struct gworld w;

	gworld_init(&w, tc, family, &fast_link, checksum, 21, false, 0);
	CU_ASSERT_EQUAL(mps_sim_set_gso(w.port[0], 65535, true), 0);
	CU_ASSERT_TRUE(gworld_transfer(&w, 8 << 20));
	mps_sim_get_stats(w.sim, &ss);
	CU_ASSERT(ss.gso_pkts > 0);
	CU_ASSERT_EQUAL(ss.too_big + ss.lost + ss.no_route + ss.queue_full, 0);
	/*
	 * Every packet above one segment was a super-segment. With an ACK for
	 * every second piece, each ACK opens room for a few segments at a time:
	 * they go as one packet.
	 */
	CU_ASSERT(w.out_big[0] == ss.gso_pkts);
	CU_ASSERT(w.out_max[0] >= 3 * 1400 && w.out_max[0] <= 65535);
	/* The receiver saw only pieces that fit the path; the server sent no super-segment. */
	CU_ASSERT_EQUAL(w.in_big[1], 0);
	CU_ASSERT_EQUAL(w.out_big[1], 0);
	assert_clean_mptcp(&w);
	gworld_free(&w);
}

static void test_split_v4(void)
{
	split_run(4, false);
}

static void test_split_v6(void)
{
	split_run(6, false);
}

/* The DSS checksum covers the whole super-segment; every piece repeats it. */
static void test_split_checksum(void)
{
	split_run(4, true);
}

/* Passed whole: the receiver takes 64 KiB segments in one piece and ACKs each at once. */
static void test_whole_receiver(void)
{
	struct trace_ctx tc[2];
	struct mps_sim_stats ss;
	struct gworld w;
	uint64_t t_gso;

	gworld_init(&w, tc, 4, &fast_link, true, 31, false, 0);
	CU_ASSERT_EQUAL(mps_sim_set_gso(w.port[0], 65535, false), 0);
	CU_ASSERT_TRUE(gworld_transfer(&w, 8 << 20));
	mps_sim_get_stats(w.sim, &ss);
	CU_ASSERT(ss.gso_pkts > 0);
	CU_ASSERT_EQUAL(w.in_big[1], ss.gso_pkts);
	CU_ASSERT_EQUAL(ss.too_big + ss.lost, 0);
	assert_clean_mptcp(&w);
	t_gso = w.eof_at;
	/* Each merged packet is ACKed at once, so the sender's packets grow. */
	CU_ASSERT(w.out_pkts[1] >= ss.gso_pkts);
	CU_ASSERT(w.out_max[0] > 16 * 1400);
	gworld_free(&w);

	/* The same without offloads. */
	gworld_init(&w, tc, 4, &fast_link, true, 31, false, 0);
	CU_ASSERT_TRUE(gworld_transfer(&w, 8 << 20));
	mps_sim_get_stats(w.sim, &ss);
	CU_ASSERT_EQUAL(ss.gso_pkts, 0);
	CU_ASSERT_EQUAL(w.out_big[0], 0);
	/*
	 * Not faster on the simulated clock (slow start grows by at most two
	 * segments per ACK, and each merged packet gets one ACK), but within a
	 * factor of two.
	 */
	CU_ASSERT(t_gso < 2 * w.eof_at);
	gworld_free(&w);
}

/*
 * Two paths of 50 Mbit/s, the client's second address joined: 4 MiB with the
 * sender's super-segments cut on the wire (split) or passed whole, so that
 * the server takes merged packets on the initial subflow and on the join,
 * as a TUN device with both offloads hands them over. Returns when the
 * server read the end of the stream; *sf_ids: subflows that took merged
 * packets.
 */
static uint64_t two_path_run(bool split, bool checksum, unsigned int *sf_ids, uint64_t *wait)
{
	static const struct mps_sim_link_cfg path = { .delay_us = 5000,
						      .mtu = 1500,
						      .rate_bps = 50000000 };
	struct trace_ctx tc[2];
	struct mps_sim_stats ss;
	struct gworld w;
	uint64_t eof;
	int i;

	gworld_init(&w, tc, 4, &path, checksum, 51, true, 0);
	CU_ASSERT_EQUAL(mps_sim_set_gso(w.port[0], 65535, split), 0);
	CU_ASSERT_TRUE(gworld_transfer(&w, 4 << 20));
	mps_sim_get_stats(w.sim, &ss);
	CU_ASSERT(ss.gso_pkts > 0);
	CU_ASSERT_EQUAL(ss.too_big + ss.lost + ss.queue_full, 0);
	CU_ASSERT_EQUAL(w.in_big[1], split ? 0 : ss.gso_pkts);
	assert_clean_mptcp(&w);
	*sf_ids = 0;
	for (i = 0; i < GW_PEERS; i++)
		*sf_ids += w.big_in_sf[1][i] > 0;
	*wait = w.ack_wait_max[1];
	eof = w.eof_at;
	gworld_free(&w);
	return eof;
}

/*
 * Every merged packet is ACKed in the round it came, on the join as on the
 * initial subflow: as several segments (RFC 9293 §3.8.6.3's "every second
 * full-sized segment"), never left to the delayed-ACK timer. A lone merged
 * packet on an otherwise idle join once waited 40 ms for it, and the
 * kernel's sender with it; over two 50 Mbit/s paths that cost a tenth of
 * the goodput (docs/benchmarks.md, "TUN offloads").
 */
static void whole_two_paths(bool checksum)
{
	uint64_t t_whole, t_split, wait;
	unsigned int ids;

	t_whole = two_path_run(false, checksum, &ids, &wait);
	CU_ASSERT_EQUAL(ids, 2);
	CU_ASSERT_EQUAL(wait, 0);
	t_split = two_path_run(true, checksum, &ids, &wait);
	CU_ASSERT_EQUAL(ids, 0);
	/* Taking them whole is not slower on the simulated clock. */
	CU_ASSERT(t_whole <= t_split + t_split / 20);
}

static void test_whole_two_paths(void)
{
	whole_two_paths(false);
}

static void test_whole_two_paths_checksum(void)
{
	whole_two_paths(true);
}

/*
 * A receiver that announces a larger MSS than its peer's (jumbo frames on
 * its side only) still takes a packet of two of the peer's segments as two:
 * the peer sends no segment above the smaller of the two MSS, so anything
 * larger was merged. The sender's packets are capped at two segments and
 * passed whole; each is ACKed in the round it came.
 */
static void test_whole_small_peer_mss(void)
{
	struct trace_ctx tc[2];
	struct mps_sim_stats ss;
	struct gworld w;

	gworld_init(&w, tc, 4, &fast_link, false, 61, false, 8960);
	CU_ASSERT_EQUAL(mps_sim_set_gso(w.port[0], 2 * 1400, false), 0);
	CU_ASSERT_TRUE(gworld_transfer(&w, 2 << 20));
	mps_sim_get_stats(w.sim, &ss);
	CU_ASSERT(ss.gso_pkts > 100);
	CU_ASSERT_EQUAL(w.in_big[1], ss.gso_pkts);
	CU_ASSERT(w.out_max[0] <= 2 * 1400 + 120);
	CU_ASSERT_EQUAL(w.ack_wait_max[1], 0);
	assert_clean_mptcp(&w);
	gworld_free(&w);
}

/* Loss and reordering of the cut pieces: recovery resends MSS pieces, the stream is intact. */
static void lossy_run(uint64_t seed, uint64_t *end, uint64_t *retrans)
{
	static const struct mps_sim_link_cfg lossy = { .delay_us = 10000,
						       .jitter_us = 1000,
						       .loss_ppm = 10000,
						       .reorder_ppm = 10000,
						       .reorder_delay_us = 3000,
						       .mtu = 1500,
						       .rate_bps = 200000000 };
	struct trace_ctx tc[2];
	struct mps_sim_stats ss;
	struct gworld w;

	gworld_init(&w, tc, 4, &lossy, true, seed, false, 0);
	CU_ASSERT_EQUAL(mps_sim_set_gso(w.port[0], 65535, true), 0);
	CU_ASSERT_TRUE(gworld_transfer(&w, 4 << 20));
	mps_sim_get_stats(w.sim, &ss);
	CU_ASSERT(ss.gso_pkts > 0);
	CU_ASSERT(ss.lost > 0);
	*retrans = mps_stack_counter(w.st[0], MPS_CNT_FAST_RETRANS) +
		   mps_stack_counter(w.st[0], MPS_CNT_RETRANS_TIMEOUT);
	CU_ASSERT(*retrans > 0);
	assert_clean_mptcp(&w);
	*end = w.now;
	gworld_free(&w);
}

static void test_lossy_split(void)
{
	uint64_t t1, t2, r1, r2;

	lossy_run(41, &t1, &r1);
	lossy_run(41, &t2, &r2);
	CU_ASSERT_EQUAL(t1, t2);
	CU_ASSERT_EQUAL(r1, r2);
}

static void test_set_gso_bounds(void)
{
	struct mps_sim *sim = mps_sim_create(1);
	struct mps_sim_port *p;

	CU_ASSERT_PTR_NOT_NULL_FATAL(sim);
	CU_ASSERT(mps_sim_add_node(sim) >= 0);
	p = mps_sim_port(sim, 0);
	CU_ASSERT_EQUAL(mps_sim_set_gso(p, 65536, true), -EINVAL);
	CU_ASSERT_EQUAL(mps_sim_link_ops.gso_max(p), 0);
	CU_ASSERT_EQUAL(mps_sim_set_gso(p, 65535, false), 0);
	CU_ASSERT_EQUAL(mps_sim_link_ops.gso_max(p), 65535);
	mps_sim_destroy(sim);
}

static const struct fj_test tests[] = {
	{ "split_v4", test_split_v4 },
	{ "split_v6", test_split_v6 },
	{ "split_checksum", test_split_checksum },
	{ "whole_receiver", test_whole_receiver },
	{ "whole_two_paths", test_whole_two_paths },
	{ "whole_two_paths_checksum", test_whole_two_paths_checksum },
	{ "whole_small_peer_mss", test_whole_small_peer_mss },
	{ "lossy_split", test_lossy_split },
	{ "set_gso_bounds", test_set_gso_bounds },
	{ NULL, NULL },
};

const struct fj_suite fj_suite_sim_gso = { "sim_gso", NULL, NULL, tests };
