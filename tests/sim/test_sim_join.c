/*
 * MP_JOIN on the simulated network, fake clock: a second subflow over a
 * second path in both roles between two stacks (fourth ACK awaited, limits,
 * clean close of both subflows), and a hand-driven peer that answers with a
 * wrong HMAC in either role or uses an unknown token: each is refused with
 * RST + MP_TCPRST and counted, and the connection carries on.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/fj_test.h"
#include "mps.h"
#include "mps_crypto.h"
#include "mps_internal.h"
#include "mps_opt.h"
#include "mps_seg.h"
#include "mps_sim.h"
#include "mps_tcp.h"

#define SRV_PORT 5002
#define STEPS	 2000000

/* Client node 0 (10.0.1.1 and 10.0.2.1), server node 1 (10.0.1.2), hand-driven node 2 (10.0.3.1). */
struct jworld {
	struct mps_sim *sim;
	struct mps_stack *st[2];
	struct mps_sim_port *port[3];
	struct mps_stack *raw; /* only builds the hand-driven node's packets */
	uint64_t now;
	struct mps_addr c1, c2, srv, srv2, x;
	int p1; /* the path c1 - srv */
	int p2; /* the path c2 - srv */
	struct mps_event log[2][64];
	unsigned int nlog[2];
};

/* Family of the addresses addr_at() builds: the IPv6 tests set 6 and put 4 back. */
static uint8_t fam = 4;

/* 10.0.net.host, or fd00::net:host in IPv6 tests. */
static void addr_at(struct mps_addr *a, uint8_t net, uint8_t host, uint16_t port)
{
	memset(a, 0, sizeof(*a));
	a->family = fam;
	if (fam == 4) {
		a->addr[0] = 10;
		a->addr[2] = net;
		a->addr[3] = host;
	} else {
		a->addr[0] = 0xfd;
		a->addr[13] = net;
		a->addr[15] = host;
	}
	a->port = port;
}

static const struct mps_sim_link_cfg path1 = { .delay_us = 10000, .mtu = 1500 };
static const struct mps_sim_link_cfg path2 = { .delay_us = 20000, .mtu = 1500 };

/* The simulated network's seed (its loss draws); a test may run the same scenario under others. */
static uint64_t jw_sim_seed = 17;

static void jworld_init(struct jworld *w, const struct mps_config *ccfg,
			const struct mps_config *scfg)
{
	struct mps_config rcfg = { .seed = 99 };
	int err, i;

	memset(w, 0, sizeof(*w));
	w->sim = mps_sim_create(jw_sim_seed);
	CU_ASSERT_PTR_NOT_NULL_FATAL(w->sim);
	for (i = 0; i < 3; i++)
		CU_ASSERT_EQUAL_FATAL(mps_sim_add_node(w->sim), i);
	addr_at(&w->c1, 1, 1, 0);
	addr_at(&w->c2, 2, 1, 0);
	addr_at(&w->srv, 1, 2, SRV_PORT);
	addr_at(&w->srv2, 2, 2, 0);
	addr_at(&w->x, 3, 1, SRV_PORT);
	w->p1 = mps_sim_add_path(w->sim, 0, w->c1.addr, 1, w->srv.addr, fam, &path1);
	CU_ASSERT_FATAL(w->p1 >= 0);
	CU_ASSERT_FATAL(mps_sim_add_path(w->sim, 0, w->c1.addr, 1, w->srv2.addr, fam, &path2) >= 0);
	CU_ASSERT_FATAL(mps_sim_add_path(w->sim, 0, w->c2.addr, 1, w->srv2.addr, fam, &path1) >= 0);
	w->p2 = mps_sim_add_path(w->sim, 0, w->c2.addr, 1, w->srv.addr, fam, &path2);
	CU_ASSERT_FATAL(w->p2 >= 0);
	CU_ASSERT_FATAL(mps_sim_add_path(w->sim, 2, w->x.addr, 1, w->srv.addr, fam, &path1) >= 0);
	CU_ASSERT_FATAL(mps_sim_add_path(w->sim, 0, w->c2.addr, 2, w->x.addr, fam, &path1) >= 0);
	for (i = 0; i < 3; i++)
		w->port[i] = mps_sim_port(w->sim, i);
	w->st[0] = mps_stack_create(ccfg, &err);
	w->st[1] = mps_stack_create(scfg, &err);
	w->raw = mps_stack_create(&rcfg, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(w->st[0]);
	CU_ASSERT_PTR_NOT_NULL_FATAL(w->st[1]);
	CU_ASSERT_PTR_NOT_NULL_FATAL(w->raw);
	CU_ASSERT_EQUAL(mps_listen(w->st[1], &w->srv), 0);
}

static void jworld_free(struct jworld *w)
{
	mps_stack_destroy(w->st[0]);
	mps_stack_destroy(w->st[1]);
	mps_stack_destroy(w->raw);
	mps_sim_destroy(w->sim);
}

/* One round for both stacks, then the clock moves to the next thing due (node 2 included). */
static bool jstep(struct jworld *w)
{
	uint64_t t = MPS_TIME_NEVER, x;
	struct mps_event ev;
	int i, err;

	for (i = 0; i < 2; i++) {
		mps_pump(w->st[i], &mps_sim_link_ops, w->port[i], w->now, &err);
		CU_ASSERT_EQUAL(err, 0);
		while (mps_next_event(w->st[i], &ev) == 0)
			if (w->nlog[i] < 64)
				w->log[i][w->nlog[i]++] = ev;
	}
	for (i = 0; i < 2; i++) {
		x = mps_next_wakeup(w->st[i]);
		t = x < t ? x : t;
	}
	for (i = 0; i < 3; i++) {
		x = mps_sim_link_ops.next_ready(w->port[i]);
		t = x < t ? x : t;
	}
	if (t == MPS_TIME_NEVER)
		return false;
	if (t > w->now)
		w->now = t;
	return true;
}

/* The latest event of this type (and subflow ID, unless sf_id < 0). */
static const struct mps_event *find_ev(const struct jworld *w, int side, enum mps_event_type type,
				       int sf_id)
{
	unsigned int i;

	for (i = w->nlog[side]; i-- > 0;)
		if (w->log[side][i].type == type &&
		    (sf_id < 0 || w->log[side][i].subflow_id == sf_id))
			return &w->log[side][i];
	return NULL;
}

static uint8_t stream_byte(uint64_t i)
{
	return (uint8_t)((i * 131) ^ (i >> 9));
}

/* Send total bytes from tx to rx while stepping; with close, both ends close after. */
static uint64_t move_data(struct jworld *w, struct mps_conn *tx, struct mps_conn *rx,
			  uint64_t total, bool shut)
{
	uint8_t buf[8192];
	uint64_t sent = 0, rcvd = 0;
	bool bad = false, eof = false;
	ssize_t n;
	long steps;
	size_t i, want;

	for (steps = 0; steps < STEPS && (shut ? !eof : rcvd < total); steps++) {
		while (sent < total) {
			want = total - sent < sizeof(buf) ? total - sent : sizeof(buf);
			for (i = 0; i < want; i++)
				buf[i] = stream_byte(sent + i);
			n = mps_send(tx, buf, want);
			if (n <= 0)
				break;
			sent += (uint64_t)n;
			if (sent == total && shut)
				CU_ASSERT_EQUAL(mps_shutdown(tx), 0);
		}
		while ((n = mps_recv(rx, buf, sizeof(buf))) > 0) {
			for (i = 0; i < (size_t)n; i++)
				bad |= buf[i] != stream_byte(rcvd + i);
			rcvd += (uint64_t)n;
		}
		eof = n == 0;
		if (!jstep(w))
			break;
	}
	CU_ASSERT_FALSE(bad);
	return rcvd;
}

/* Establish over path 1 and move data so that the client sees a DATA_ACK. */
static void connect_both(struct jworld *w, struct mps_conn **c, struct mps_conn **s)
{
	long steps;

	CU_ASSERT_EQUAL_FATAL(mps_connect(w->st[0], &w->c1, &w->srv, c), 0);
	*s = NULL;
	for (steps = 0; steps < 1000 && !*s; steps++) {
		jstep(w);
		*s = mps_accept(w->st[1]);
	}
	CU_ASSERT_PTR_NOT_NULL_FATAL(*s);
	/* The client has no DATA_ACK yet, so it cannot know the server holds its key. */
	CU_ASSERT_EQUAL(mps_join(*c, &w->c2, &w->srv, false), -ENOTCONN);
	CU_ASSERT_EQUAL(move_data(w, *c, *s, 1000, false), 1000);
	for (steps = 0; steps < 100 && mps_next_wakeup(w->st[0]) != MPS_TIME_NEVER; steps++)
		jstep(w);
}

static void run_for(struct jworld *w, uint64_t us)
{
	uint64_t end = w->now + us;
	long steps;

	for (steps = 0; steps < STEPS && w->now < end; steps++)
		if (!jstep(w))
			break;
}

static void test_join_two_paths(void)
{
	struct mps_config ccfg = { .seed = 1, .max_subflows = 2 }, scfg = { .seed = 2 };
	const struct mps_event *cup, *sup, *down;
	struct mps_subflow_info fi;
	struct mps_conn_info ci, si;
	struct mps_conn *c, *s;
	struct jworld w;
	long steps;

	jworld_init(&w, &ccfg, &scfg);
	connect_both(&w, &c, &s);
	CU_ASSERT_EQUAL(mps_join(c, &w.c2, &w.srv, false), 0);
	/* max_subflows 2: the initial subflow and this join. */
	CU_ASSERT_EQUAL(mps_join(c, &w.c2, &w.srv, false), -ENOSPC);
	run_for(&w, 200000);
	cup = find_ev(&w, 0, MPS_EV_SUBFLOW_UP, 1);
	sup = find_ev(&w, 1, MPS_EV_SUBFLOW_UP, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(cup);
	CU_ASSERT_PTR_NOT_NULL_FATAL(sup);
	/*
	 * The server is up on the third ACK; the client only on the fourth ACK,
	 * one path-2 delay (20 ms) later.
	 */
	CU_ASSERT_EQUAL(cup->time, sup->time + 20000);
	CU_ASSERT_EQUAL(mps_conn_info(c, &ci), 0);
	CU_ASSERT_EQUAL(mps_conn_info(s, &si), 0);
	CU_ASSERT_EQUAL(ci.nsubflows, 2);
	CU_ASSERT_EQUAL(si.nsubflows, 2);
	CU_ASSERT_EQUAL_FATAL(mps_subflow_info(c, 1, &fi), 0);
	CU_ASSERT_TRUE(fi.join);
	CU_ASSERT_TRUE(fi.up);
	CU_ASSERT_FALSE(fi.backup);
	CU_ASSERT_EQUAL(fi.id, 1);
	CU_ASSERT_EQUAL(fi.remote_id, 0);
	CU_ASSERT_EQUAL(memcmp(fi.local.addr, w.c2.addr, 4), 0);
	CU_ASSERT_STRING_EQUAL(fi.state, "ESTABLISHED");
	CU_ASSERT_EQUAL(fi.srtt_us, 40000); /* SYN to SYN/ACK over path 2 */
	CU_ASSERT_EQUAL_FATAL(mps_subflow_info(s, 1, &fi), 0);
	CU_ASSERT_TRUE(fi.join);
	CU_ASSERT_EQUAL(fi.remote_id, 1);
	CU_ASSERT_EQUAL(mps_subflow_info(s, 2, &fi), -ENOENT);
	CU_ASSERT_EQUAL(mps_stack_counter(w.st[1], MPS_CNT_IN_JOIN_HMAC), 0);
	/* Data still flows (on the initial subflow) and both ends close every subflow. */
	CU_ASSERT_EQUAL(move_data(&w, c, s, 200000, true), 200000);
	mps_close(s);
	mps_close(c);
	for (steps = 0; steps < STEPS; steps++)
		if (!jstep(&w))
			break;
	CU_ASSERT_EQUAL(mps_next_wakeup(w.st[0]), MPS_TIME_NEVER);
	CU_ASSERT_EQUAL(mps_next_wakeup(w.st[1]), MPS_TIME_NEVER);
	down = find_ev(&w, 0, MPS_EV_SUBFLOW_DOWN, 1);
	CU_ASSERT_PTR_NOT_NULL(down);
	if (down)
		CU_ASSERT_EQUAL(down->reason, MPS_SF_DOWN_CLOSED);
	CU_ASSERT_PTR_NOT_NULL(find_ev(&w, 0, MPS_EV_CONN_CLOSED, -1));
	CU_ASSERT_PTR_NOT_NULL(find_ev(&w, 1, MPS_EV_CONN_CLOSED, -1));
	CU_ASSERT_EQUAL(mps_stack_counter(w.st[0], MPS_CNT_IN_NO_CONN), 0);
	CU_ASSERT_EQUAL(mps_stack_counter(w.st[1], MPS_CNT_IN_NO_CONN), 0);
	jworld_free(&w);
}

/* A packet from the hand-driven node x to dst, with one MPTCP option o (or none). */
static void raw_send_data(struct jworld *w, const struct mps_addr *from, const struct mps_addr *to,
			  uint32_t seq, uint32_t ack, uint8_t flags, struct mps_opt *o,
			  uint8_t *data, uint32_t len);

static void raw_send(struct jworld *w, const struct mps_addr *from, const struct mps_addr *to,
		     uint32_t seq, uint32_t ack, uint8_t flags, struct mps_opt *o)
{
	raw_send_data(w, from, to, seq, ack, flags, o, NULL, 0);
}

static void raw_send_data(struct jworld *w, const struct mps_addr *from, const struct mps_addr *to,
			  uint32_t seq, uint32_t ack, uint8_t flags, struct mps_opt *o,
			  uint8_t *data, uint32_t len)
{
	struct mps_ring ring = { .buf = data, .cap = len, .len = len };
	uint8_t opts[MPS_MAX_OPTS], pkt[2048];
	struct mps_pkt_spec ps = { .local = from,
				   .remote = to,
				   .seq = seq,
				   .ack = ack,
				   .flags = flags,
				   .win = 65535,
				   .opts = opts,
				   .ring = len ? &ring : NULL,
				   .len = len };
	int n = 0;

	if (o) {
		n = mps_opt_build(o, opts, sizeof(opts));
		CU_ASSERT_FATAL(n > 0);
		while (n % 4)
			opts[n++] = MPS_TCPOPT_NOP;
	}
	ps.optlen = n;
	n = mps_tcp_write_packet(w->raw, &ps, pkt, sizeof(pkt));
	CU_ASSERT_FATAL(n > 0);
	CU_ASSERT_EQUAL(mps_sim_link_ops.send(w->port[2], pkt, (size_t)n, w->now), 0);
}

/* Step until node x receives a packet; parse it and its first MPTCP option of subtype sub. */
static bool raw_recv(struct jworld *w, uint8_t *pkt, struct mps_seg *seg, uint8_t sub,
		     struct mps_opt *o)
{
	struct mps_tcpopts t;
	enum mps_seg_err serr;
	enum mps_opt_err oerr;
	long steps;
	int n = 0, i;

	for (steps = 0; steps < 100000; steps++) {
		n = mps_sim_link_ops.recv(w->port[2], pkt, 2048, w->now);
		if (n > 0 || !jstep(w))
			break;
	}
	if (n <= 0 || mps_seg_parse(pkt, (size_t)n, 0, seg, &serr) != 0)
		return false;
	memset(o, 0, sizeof(*o));
	mps_tcpopt_walk(seg->opts, seg->opts_len, &t);
	for (i = 0; i < t.nmptcp; i++)
		if (mps_opt_parse(seg->opts + t.mptcp[i].off, t.mptcp[i].len,
				  seg->flags | (seg->payload_len ? MPS_SEG_DATA : 0), o,
				  &oerr) == 0 &&
		    o->subtype == sub)
			return true;
	o->subtype = 0;
	return true;
}

/* Node x joins the server's connection: SYN with token, checks the SYN/ACK's HMAC. */
static void x_join_syn(struct jworld *w, const struct mps_addr *xa, uint32_t token,
		       const struct mps_conn_info *si, struct mps_seg *seg, uint8_t *pkt,
		       struct mps_opt *j)
{
	struct mps_opt o = { .subtype = MPS_MPTCP_SUB_JOIN };
	uint64_t h;
	int rc;

	o.join.form = MPS_JOIN_SYN;
	o.join.addr_id = 7;
	o.join.token = token;
	o.join.nonce = 0xabcdef01;
	raw_send(w, xa, &w->srv, 5000, 0, MPS_TCP_SYN, &o);
	CU_ASSERT_FATAL(raw_recv(w, pkt, seg, si ? MPS_MPTCP_SUB_JOIN : MPS_MPTCP_SUB_TCPRST, j));
	if (!si)
		return;
	CU_ASSERT_EQUAL(seg->flags, MPS_TCP_SYN | MPS_TCP_ACK);
	CU_ASSERT_EQUAL(seg->ack, 5001);
	CU_ASSERT_EQUAL_FATAL(j->subtype, MPS_MPTCP_SUB_JOIN);
	CU_ASSERT_EQUAL(j->join.form, MPS_JOIN_SYNACK);
	/* RFC 8684 §3.2: HMAC(K_B || K_A, R_B || R_A), leftmost 64 bits. */
	h = mps_join_hmac64(si->local_key, si->remote_key, j->join.nonce, 0xabcdef01, &rc);
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_EQUAL(j->join.hmac64, h);
}

static void test_join_responder_checks(void)
{
	struct mps_config ccfg = { .seed = 3 }, scfg = { .seed = 4 };
	struct mps_opt j, o = { .subtype = MPS_MPTCP_SUB_JOIN }, r;
	uint8_t pkt[2048], h[MPS_HMAC_LEN];
	struct mps_conn_info si;
	struct mps_addr xa = { 0 };
	const struct mps_event *down;
	struct mps_conn *c, *s;
	struct mps_seg seg;
	struct jworld w;

	jworld_init(&w, &ccfg, &scfg);
	connect_both(&w, &c, &s);
	CU_ASSERT_EQUAL(mps_conn_info(s, &si), 0);
	xa = w.x;
	xa.port = 41000;
	/* Unknown token: RST with MP_TCPRST "MPTCP-specific error", counted. */
	x_join_syn(&w, &xa, si.local_token ^ 1, NULL, &seg, pkt, &r);
	CU_ASSERT_EQUAL(seg.flags & MPS_TCP_RST, MPS_TCP_RST);
	CU_ASSERT_EQUAL_FATAL(r.subtype, MPS_MPTCP_SUB_TCPRST);
	CU_ASSERT_EQUAL(r.tcprst.reason, MPS_TCPRST_MPTCP_ERR);
	CU_ASSERT_EQUAL(mps_stack_counter(w.st[1], MPS_CNT_IN_JOIN_TOKEN), 1);
	/* Known token, third ACK with a wrong HMAC: RST, counted, the subflow is gone. */
	xa.port = 41001;
	x_join_syn(&w, &xa, si.local_token, &si, &seg, pkt, &j);
	o.join.form = MPS_JOIN_ACK;
	CU_ASSERT_EQUAL(mps_join_hmac(si.remote_key, si.local_key, 0xabcdef01, j.join.nonce, h), 0);
	memcpy(o.join.hmac, h, sizeof(o.join.hmac));
	o.join.hmac[5] ^= 0x40;
	raw_send(&w, &xa, &w.srv, 5001, seg.seq + 1, MPS_TCP_ACK, &o);
	CU_ASSERT_FATAL(raw_recv(&w, pkt, &seg, MPS_MPTCP_SUB_TCPRST, &r));
	CU_ASSERT_EQUAL(seg.flags & MPS_TCP_RST, MPS_TCP_RST);
	CU_ASSERT_EQUAL(r.subtype, MPS_MPTCP_SUB_TCPRST);
	CU_ASSERT_EQUAL(r.tcprst.reason, MPS_TCPRST_MPTCP_ERR);
	CU_ASSERT_EQUAL(mps_stack_counter(w.st[1], MPS_CNT_IN_JOIN_HMAC), 1);
	CU_ASSERT_EQUAL(mps_conn_info(s, &si), 0);
	CU_ASSERT_EQUAL(si.nsubflows, 1);
	down = find_ev(&w, 1, MPS_EV_SUBFLOW_DOWN, -1);
	CU_ASSERT_PTR_NOT_NULL(down);
	if (down)
		CU_ASSERT_EQUAL(down->reason, MPS_SF_DOWN_HMAC);
	/* The right HMAC: the subflow comes up and the server sends the fourth ACK. */
	xa.port = 41002;
	x_join_syn(&w, &xa, si.local_token, &si, &seg, pkt, &j);
	CU_ASSERT_EQUAL(mps_join_hmac(si.remote_key, si.local_key, 0xabcdef01, j.join.nonce, h), 0);
	memcpy(o.join.hmac, h, sizeof(o.join.hmac));
	raw_send(&w, &xa, &w.srv, 5001, seg.seq + 1, MPS_TCP_ACK, &o);
	CU_ASSERT_FATAL(raw_recv(&w, pkt, &seg, MPS_MPTCP_SUB_DSS, &r));
	CU_ASSERT_EQUAL(seg.flags, MPS_TCP_ACK);
	CU_ASSERT_EQUAL(seg.payload_len, 0);
	CU_ASSERT_EQUAL(r.subtype, MPS_MPTCP_SUB_DSS);
	CU_ASSERT_TRUE(r.dss.flags & MPS_DSS_FLAG_A);
	CU_ASSERT_EQUAL(mps_conn_info(s, &si), 0);
	CU_ASSERT_EQUAL(si.nsubflows, 2);
	CU_ASSERT_PTR_NOT_NULL(find_ev(&w, 1, MPS_EV_SUBFLOW_UP, -1));
	/* The connection itself is untouched: data still flows on the initial subflow. */
	CU_ASSERT_EQUAL(move_data(&w, c, s, 50000, false), 50000);
	jworld_free(&w);
}

/*
 * Data of the client's stream arriving on a join subflow ahead of what the
 * initial subflow has delivered is held at the connection level and handed
 * to the application, in order, once the initial subflow fills the gap.
 */
static void test_reassembly_across_subflows(void)
{
	struct mps_config ccfg = { .seed = 11 }, scfg = { .seed = 12 };
	struct mps_opt j, o = { .subtype = MPS_MPTCP_SUB_JOIN }, r;
	uint8_t pkt[2048], h[MPS_HMAC_LEN], data[300], buf[4096];
	struct mps_conn_info si;
	struct mps_addr xa;
	struct mps_conn *c, *s;
	struct mps_seg seg;
	struct jworld w;
	uint64_t idsn, base, got = 0;
	uint32_t token, i;
	bool bad = false;
	ssize_t n;
	long steps;

	jworld_init(&w, &ccfg, &scfg);
	connect_both(&w, &c, &s); /* stream bytes 0..999 delivered */
	CU_ASSERT_EQUAL(mps_conn_info(s, &si), 0);
	mps_key_token_idsn(si.remote_key, &token, &idsn);
	base = idsn + 1 + 1000; /* DSN of stream byte 1000 */
	xa = w.x;
	xa.port = 42000;
	x_join_syn(&w, &xa, si.local_token, &si, &seg, pkt, &j);
	CU_ASSERT_EQUAL(mps_join_hmac(si.remote_key, si.local_key, 0xabcdef01, j.join.nonce, h), 0);
	o.join.form = MPS_JOIN_ACK;
	memcpy(o.join.hmac, h, sizeof(o.join.hmac));
	raw_send(&w, &xa, &w.srv, 5001, seg.seq + 1, MPS_TCP_ACK, &o);
	CU_ASSERT_FATAL(raw_recv(&w, pkt, &seg, MPS_MPTCP_SUB_DSS, &r)); /* the fourth ACK */
	/* Stream bytes 1500..1799 on the join: ahead of the connection, so held. */
	for (i = 0; i < sizeof(data); i++)
		data[i] = stream_byte(1500 + i);
	memset(&o, 0, sizeof(o));
	o.subtype = MPS_MPTCP_SUB_DSS;
	o.dss.flags = MPS_DSS_FLAG_M | MPS_DSS_FLAG_m;
	o.dss.dsn = base + 500;
	o.dss.ssn = 1;
	o.dss.data_len = sizeof(data);
	raw_send_data(&w, &xa, &w.srv, 5001, seg.seq, MPS_TCP_ACK, &o, data, sizeof(data));
	CU_ASSERT_FATAL(raw_recv(&w, pkt, &seg, MPS_MPTCP_SUB_DSS, &r));
	CU_ASSERT_EQUAL(seg.ack, 5001 + sizeof(data)); /* taken on the join subflow */
	CU_ASSERT_TRUE(r.dss.flags & MPS_DSS_FLAG_A);
	CU_ASSERT_EQUAL(r.dss.data_ack, base); /* not at the data level */
	CU_ASSERT_EQUAL(mps_recv(s, buf, sizeof(buf)), -EAGAIN);
	/* The client sends bytes 1000..1499 on the initial subflow: 800 bytes become readable. */
	for (i = 0; i < 500; i++)
		buf[i] = stream_byte(1000 + i);
	CU_ASSERT_EQUAL(mps_send(c, buf, 500), 500);
	for (steps = 0; steps < 10000 && got < 800; steps++) {
		if (!jstep(&w))
			break;
		while ((n = mps_recv(s, buf, sizeof(buf))) > 0) {
			for (i = 0; i < (uint32_t)n; i++)
				bad |= buf[i] != stream_byte(1000 + got + i);
			got += (uint64_t)n;
		}
	}
	CU_ASSERT_EQUAL(got, 800);
	CU_ASSERT_FALSE(bad);
	CU_ASSERT_EQUAL(mps_conn_info(s, &si), 0);
	CU_ASSERT_EQUAL(si.bytes_received, 1800);
	CU_ASSERT_EQUAL(mps_stack_counter(w.st[1], MPS_CNT_IN_BAD_MAPPING), 0);
	/* The client goes on from 1500 (it does not know the join sent those): no byte twice. */
	for (i = 0; i < 1000; i++)
		buf[i] = stream_byte(1500 + i);
	CU_ASSERT_EQUAL(mps_send(c, buf, 1000), 1000);
	for (steps = 0; steps < 10000 && got < 1500; steps++) {
		if (!jstep(&w))
			break;
		while ((n = mps_recv(s, buf, sizeof(buf))) > 0) {
			for (i = 0; i < (uint32_t)n; i++)
				bad |= buf[i] != stream_byte(1000 + got + i);
			got += (uint64_t)n;
		}
	}
	CU_ASSERT_EQUAL(got, 1500); /* stream bytes 1000..2499, each once */
	CU_ASSERT_FALSE(bad);
	CU_ASSERT_EQUAL(mps_recv(s, buf, sizeof(buf)), -EAGAIN);
	CU_ASSERT_EQUAL(mps_conn_info(s, &si), 0);
	CU_ASSERT_EQUAL(si.bytes_received, 2500);
	jworld_free(&w);
}

static void test_join_initiator_bad_hmac(void)
{
	struct mps_config ccfg = { .seed = 5 }, scfg = { .seed = 6 };
	struct mps_opt j, o = { .subtype = MPS_MPTCP_SUB_JOIN }, r;
	struct mps_conn_info ci, si;
	const struct mps_event *down;
	struct mps_conn *c, *s;
	struct mps_seg seg;
	uint8_t pkt[2048];
	struct mps_addr from, to;
	struct jworld w;
	int rc;

	jworld_init(&w, &ccfg, &scfg);
	connect_both(&w, &c, &s);
	CU_ASSERT_EQUAL(mps_conn_info(s, &si), 0);
	/* The client joins to node x, as if x were an address the server announced. */
	CU_ASSERT_EQUAL(mps_join(c, &w.c2, &w.x, true), 0);
	CU_ASSERT_FATAL(raw_recv(&w, pkt, &seg, MPS_MPTCP_SUB_JOIN, &j));
	CU_ASSERT_EQUAL(seg.flags, MPS_TCP_SYN);
	CU_ASSERT_EQUAL_FATAL(j.subtype, MPS_MPTCP_SUB_JOIN);
	CU_ASSERT_EQUAL(j.join.form, MPS_JOIN_SYN);
	CU_ASSERT_EQUAL(j.join.token, si.local_token);
	CU_ASSERT_TRUE(j.join.backup);
	CU_ASSERT_EQUAL(j.join.addr_id, 1);
	addr_at(&from, 3, 1, seg.dport);
	addr_at(&to, 2, 1, seg.sport);
	o.join.form = MPS_JOIN_SYNACK;
	o.join.addr_id = 3;
	o.join.nonce = 0x55aa55aa;
	o.join.hmac64 =
		mps_join_hmac64(si.local_key, si.remote_key, o.join.nonce, j.join.nonce, &rc) ^ 1;
	raw_send(&w, &from, &to, 9000, seg.seq + 1, MPS_TCP_SYN | MPS_TCP_ACK, &o);
	CU_ASSERT_FATAL(raw_recv(&w, pkt, &seg, MPS_MPTCP_SUB_TCPRST, &r));
	CU_ASSERT_EQUAL(seg.flags & MPS_TCP_RST, MPS_TCP_RST);
	CU_ASSERT_EQUAL(r.subtype, MPS_MPTCP_SUB_TCPRST);
	CU_ASSERT_EQUAL(r.tcprst.reason, MPS_TCPRST_MPTCP_ERR);
	CU_ASSERT_EQUAL(mps_stack_counter(w.st[0], MPS_CNT_IN_JOIN_HMAC), 1);
	run_for(&w, 10000);
	CU_ASSERT_EQUAL(mps_conn_info(c, &ci), 0);
	CU_ASSERT_EQUAL(ci.nsubflows, 1);
	down = find_ev(&w, 0, MPS_EV_SUBFLOW_DOWN, 1);
	CU_ASSERT_PTR_NOT_NULL(down);
	if (down)
		CU_ASSERT_EQUAL(down->reason, MPS_SF_DOWN_HMAC);
	CU_ASSERT_PTR_NULL(find_ev(&w, 0, MPS_EV_SUBFLOW_UP, 1));
	CU_ASSERT_EQUAL(move_data(&w, c, s, 50000, false), 50000);
	jworld_free(&w);
}

static unsigned int count_ev(const struct jworld *w, int side, enum mps_event_type type)
{
	unsigned int i, n = 0;

	for (i = 0; i < w->nlog[side]; i++)
		n += w->log[side][i].type == type;
	return n;
}

/*
 * Full mesh: the server announces its second address, the client opens a
 * subflow from each of its two addresses to each of the server's two; then
 * each side withdraws its second address and the subflows using it go.
 */
static void pm_fullmesh_run(void)
{
	struct mps_config ccfg = { .seed = 7, .max_subflows = 4, .nlocal_addrs = 1 };
	struct mps_config scfg = { .seed = 8, .max_subflows = 4, .nlocal_addrs = 1 };
	struct mps_subflow_info fi;
	struct mps_conn_info ci, si;
	struct mps_conn *c = NULL, *s = NULL;
	struct jworld w;
	unsigned int i, up = 0;
	long steps;

	addr_at(&ccfg.local_addrs[0], 2, 1, 0);
	addr_at(&scfg.local_addrs[0], 2, 2, 0);
	ccfg.path_manager = "fullmesh";
	jworld_init(&w, &ccfg, &scfg);
	CU_ASSERT_EQUAL_FATAL(mps_connect(w.st[0], &w.c1, &w.srv, &c), 0);
	for (steps = 0; steps < 1000 && !s; steps++) {
		jstep(&w);
		s = mps_accept(w.st[1]);
	}
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	run_for(&w, 500000);
	CU_ASSERT_EQUAL(count_ev(&w, 1, MPS_EV_ADD_ADDR_OUT), 1);
	CU_ASSERT_EQUAL(count_ev(&w, 1, MPS_EV_ADD_ADDR_ECHOED), 1);
	CU_ASSERT_EQUAL(count_ev(&w, 0, MPS_EV_ADD_ADDR_IN), 1);
	CU_ASSERT_EQUAL(mps_conn_info(c, &ci), 0);
	CU_ASSERT_EQUAL(mps_conn_info(s, &si), 0);
	CU_ASSERT_EQUAL(ci.nremote_addrs, 1);
	CU_ASSERT_EQUAL(ci.nsubflows, 4);
	CU_ASSERT_EQUAL(si.nsubflows, 4);
	for (i = 1; i < 4; i++)
		if (mps_subflow_info(c, i, &fi) == 0 && fi.up)
			up++;
	CU_ASSERT_EQUAL(up, 3);
	CU_ASSERT_EQUAL(count_ev(&w, 0, MPS_EV_SUBFLOW_UP), 4);
	CU_ASSERT_EQUAL(count_ev(&w, 1, MPS_EV_SUBFLOW_UP), 4);
	/* The server withdraws 10.0.2.2: both subflows to it go, on both sides. */
	CU_ASSERT_EQUAL(mps_remove_addr(s, &w.x), -ENOENT);
	CU_ASSERT_EQUAL(mps_remove_addr(s, &w.srv2), 0);
	run_for(&w, 200000);
	CU_ASSERT_EQUAL(mps_conn_info(c, &ci), 0);
	CU_ASSERT_EQUAL(mps_conn_info(s, &si), 0);
	CU_ASSERT_EQUAL(ci.nremote_addrs, 0);
	CU_ASSERT_EQUAL(count_ev(&w, 0, MPS_EV_REMOVE_ADDR_IN), 1);
	CU_ASSERT_EQUAL(ci.nsubflows, 2);
	CU_ASSERT_EQUAL(si.nsubflows, 2);
	/* The client withdraws 10.0.2.1: its last join goes too. */
	CU_ASSERT_EQUAL(mps_remove_addr(c, &w.c2), 0);
	run_for(&w, 200000);
	CU_ASSERT_EQUAL(mps_conn_info(c, &ci), 0);
	CU_ASSERT_EQUAL(mps_conn_info(s, &si), 0);
	CU_ASSERT_EQUAL(ci.nsubflows, 1);
	CU_ASSERT_EQUAL(si.nsubflows, 1);
	CU_ASSERT_EQUAL(count_ev(&w, 1, MPS_EV_REMOVE_ADDR_IN), 0); /* never announced to it */
	CU_ASSERT_EQUAL(mps_stack_counter(w.st[0], MPS_CNT_IN_JOIN_HMAC) +
				mps_stack_counter(w.st[1], MPS_CNT_IN_JOIN_HMAC),
			0);
	CU_ASSERT_EQUAL(move_data(&w, c, s, 100000, false), 100000);
	jworld_free(&w);
}

static void test_pm_fullmesh(void)
{
	pm_fullmesh_run();
}

/* The same over IPv6: ADD_ADDR and REMOVE_ADDR with 16-byte addresses, joins over IPv6 paths. */
static void test_pm_fullmesh_ipv6(void)
{
	fam = 6;
	pm_fullmesh_run();
	fam = 4;
}

/* The client's echo is lost: the server repeats its ADD_ADDR until an echo comes. */
static void test_add_addr_retransmit(void)
{
	static const struct mps_sim_link_cfg cut = { .delay_us = 10000, .loss_ppm = 1000000 };
	struct mps_config ccfg = { .seed = 9 }, scfg = { .seed = 10, .nlocal_addrs = 1 };
	const struct mps_event *out, *echoed;
	struct mps_conn_info ci;
	struct mps_conn *c = NULL, *s = NULL;
	struct jworld w;
	long steps;

	addr_at(&scfg.local_addrs[0], 2, 2, 0);
	jworld_init(&w, &ccfg, &scfg);
	CU_ASSERT_EQUAL_FATAL(mps_connect(w.st[0], &w.c1, &w.srv, &c), 0);
	for (steps = 0; steps < 1000 && !s; steps++) {
		jstep(&w);
		s = mps_accept(w.st[1]);
	}
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	/* The ADD_ADDR is on its way; what the client sends back now is lost. */
	CU_ASSERT_EQUAL(mps_sim_set_path(w.sim, w.p1, &cut), 0);
	run_for(&w, 100000);
	CU_ASSERT_EQUAL(count_ev(&w, 0, MPS_EV_ADD_ADDR_IN), 1);
	CU_ASSERT_EQUAL(count_ev(&w, 1, MPS_EV_ADD_ADDR_ECHOED), 0);
	CU_ASSERT_EQUAL(mps_sim_set_path(w.sim, w.p1, &path1), 0);
	run_for(&w, 2000000);
	out = find_ev(&w, 1, MPS_EV_ADD_ADDR_OUT, -1);
	echoed = find_ev(&w, 1, MPS_EV_ADD_ADDR_ECHOED, -1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(out);
	CU_ASSERT_PTR_NOT_NULL_FATAL(echoed);
	/* Echoed only after a retransmission, at least one RTO (200 ms) after the first. */
	CU_ASSERT(echoed->time >= out->time + 200000);
	CU_ASSERT_EQUAL(count_ev(&w, 1, MPS_EV_ADD_ADDR_OUT), 1);
	CU_ASSERT_EQUAL(count_ev(&w, 1, MPS_EV_ADD_ADDR_ECHOED), 1);
	/* The client saw the announcement twice (one event each) and keeps one address. */
	CU_ASSERT_EQUAL(count_ev(&w, 0, MPS_EV_ADD_ADDR_IN), 2);
	CU_ASSERT_EQUAL(mps_conn_info(c, &ci), 0);
	CU_ASSERT_EQUAL(ci.nremote_addrs, 1);
	CU_ASSERT_EQUAL(move_data(&w, c, s, 10000, false), 10000);
	jworld_free(&w);
}

/* Client c sends total stream bytes to s while steps run; hook(w, sent) is called each step. */
static void stream_to(struct jworld *w, struct mps_conn *c, struct mps_conn *s, uint64_t total,
		      void (*hook)(struct jworld *, struct mps_conn *, uint64_t))
{
	uint8_t buf[16384];
	uint64_t sent = 0, rcvd = 0;
	bool bad = false, eof = false, idle = false;
	ssize_t n;
	size_t i, want;
	long steps;

	for (steps = 0; steps < STEPS && !eof; steps++) {
		uint64_t before = sent;

		while (sent < total) {
			want = total - sent < sizeof(buf) ? total - sent : sizeof(buf);
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
				bad |= buf[i] != stream_byte(rcvd + i);
			rcvd += (uint64_t)n;
		}
		eof = n == 0;
		if (hook)
			hook(w, c, sent);
		/* Idle stacks end the run only if the application then has nothing to add. */
		if (!eof && !jstep(w)) {
			if (idle && sent == before)
				break;
			idle = true;
		} else {
			idle = false;
		}
	}
	CU_ASSERT_TRUE(eof);
	CU_ASSERT_FALSE(bad);
	CU_ASSERT_EQUAL(rcvd, total);
}

/* Close both ends and run until both stacks are idle, every connection gone. */
static void close_all(struct jworld *w, struct mps_conn *c, struct mps_conn *s)
{
	long steps;

	mps_close(s);
	mps_close(c);
	for (steps = 0; steps < STEPS; steps++)
		if (!jstep(w))
			break;
	CU_ASSERT_EQUAL(mps_next_wakeup(w->st[0]), MPS_TIME_NEVER);
	CU_ASSERT_EQUAL(mps_next_wakeup(w->st[1]), MPS_TIME_NEVER);
	CU_ASSERT_PTR_NOT_NULL(find_ev(w, 0, MPS_EV_CONN_CLOSED, -1));
	CU_ASSERT_PTR_NOT_NULL(find_ev(w, 1, MPS_EV_CONN_CLOSED, -1));
}

static uint64_t sf_sent(struct mps_conn *c, unsigned int idx)
{
	struct mps_subflow_info fi;

	return mps_subflow_info(c, idx, &fi) == 0 ? fi.bytes_sent : 0;
}

/* Connect over path 1; the full-mesh client joins from its second address over path 2. */
static void two_subflows(struct jworld *w, struct mps_conn **c, struct mps_conn **s)
{
	struct mps_conn_info ci;

	connect_both(w, c, s);
	run_for(w, 1000000);
	CU_ASSERT_EQUAL(mps_conn_info(*c, &ci), 0);
	CU_ASSERT_EQUAL_FATAL(ci.nsubflows, 2);
}

/* Two lossy, reordering paths: the stream arrives intact and both subflows carried data. */
static void test_two_path_lossy(void)
{
	static const struct mps_sim_link_cfg lossy1 = { .delay_us = 15000,
							.jitter_us = 2000,
							.loss_ppm = 10000,
							.reorder_ppm = 10000,
							.reorder_delay_us = 5000,
							.mtu = 1500,
							.rate_bps = 20000000 };
	static const struct mps_sim_link_cfg lossy2 = { .delay_us = 25000,
							.jitter_us = 2000,
							.loss_ppm = 10000,
							.reorder_ppm = 10000,
							.reorder_delay_us = 5000,
							.mtu = 1500,
							.rate_bps = 20000000 };
	struct mps_config ccfg = { .scheduler = "lowrtt", .seed = 21, .nlocal_addrs = 1 },
			  scfg = { .seed = 22 };
	struct mps_sim_stats ss;
	struct mps_conn *c, *s;
	struct jworld w;

	addr_at(&ccfg.local_addrs[0], 2, 1, 0);
	jworld_init(&w, &ccfg, &scfg);
	two_subflows(&w, &c, &s);
	CU_ASSERT_EQUAL(mps_sim_set_path(w.sim, w.p1, &lossy1), 0);
	CU_ASSERT_EQUAL(mps_sim_set_path(w.sim, w.p2, &lossy2), 0);
	stream_to(&w, c, s, 2 << 20, NULL);
	mps_sim_get_stats(w.sim, &ss);
	CU_ASSERT(ss.lost > 0);
	CU_ASSERT(ss.reordered > 0);
	/* Both subflows carried a real share of the data. */
	CU_ASSERT(sf_sent(c, 0) > 200000);
	CU_ASSERT(sf_sent(c, 1) > 200000);
	CU_ASSERT_EQUAL(mps_stack_counter(w.st[1], MPS_CNT_IN_BAD_MAPPING), 0);
	close_all(&w, c, s);
	jworld_free(&w);
}

static bool hook_done; /* the hook's one change is made */

/*
 * Path 2 fails between two transfers, while its subflow still looks fine:
 * the data the scheduler gives it next is lost and is reinjected on path 1.
 */
static void test_path_failure_reinjection(void)
{
	static const struct mps_sim_link_cfg fast = { .delay_us = 5000, .mtu = 1500 };
	static const struct mps_sim_link_cfg cut = { .delay_us = 5000, .loss_ppm = 1000000 };
	struct mps_config ccfg = { .scheduler = "lowrtt", .seed = 23, .nlocal_addrs = 1 },
			  scfg = { .seed = 24 };
	const struct mps_event *down;
	struct mps_conn *c, *s;
	struct jworld w;
	uint64_t join_before;
	unsigned int i;

	addr_at(&ccfg.local_addrs[0], 2, 1, 0);
	jworld_init(&w, &ccfg, &scfg);
	/* Path 2 is the faster one, so the scheduler prefers the join. */
	CU_ASSERT_EQUAL(mps_sim_set_path(w.sim, w.p2, &fast), 0);
	two_subflows(&w, &c, &s);
	CU_ASSERT_EQUAL(move_data(&w, c, s, 1 << 20, false), 1 << 20);
	join_before = sf_sent(c, 1);
	CU_ASSERT(join_before > 100000);
	CU_ASSERT_EQUAL(mps_stack_counter(w.st[0], MPS_CNT_REINJECTED), 0);
	CU_ASSERT_EQUAL(mps_sim_set_path(w.sim, w.p2, &cut), 0);
	stream_to(&w, c, s, 2 << 20, NULL);
	CU_ASSERT(mps_stack_counter(w.st[0], MPS_CNT_REINJECTED) > 0);
	close_all(&w, c, s);
	/*
	 * The dead subflow was given up (its first down event: the path
	 * manager's retry of the pair may follow); the connection was not.
	 */
	down = NULL;
	for (i = 0; i < w.nlog[0] && !down; i++)
		if (w.log[0][i].type == MPS_EV_SUBFLOW_DOWN && w.log[0][i].subflow_id == 1)
			down = &w.log[0][i];
	CU_ASSERT_PTR_NOT_NULL(down);
	if (down)
		CU_ASSERT(down->reason == MPS_SF_DOWN_STALE || down->reason == MPS_SF_DOWN_TIMEOUT);
	CU_ASSERT_PTR_NULL(find_ev(&w, 0, MPS_EV_CONN_RESET, -1));
	jworld_free(&w);
}

static uint64_t backup_before_cut, cut_at;

/* Path 1 goes down for 3 s once 1 MiB is queued, then comes back. */
static void cut_path1_for_3s(struct jworld *w, struct mps_conn *c, uint64_t sent)
{
	static const struct mps_sim_link_cfg cut = { .delay_us = 10000, .loss_ppm = 1000000 };

	if (sent < (1 << 20) || hook_done) {
		if (cut_at && w->now >= cut_at + 3000000) {
			CU_ASSERT_EQUAL(mps_sim_set_path(w->sim, w->p1, &path1), 0);
			cut_at = 0;
		}
		return;
	}
	backup_before_cut = sf_sent(c, 1);
	CU_ASSERT_EQUAL(mps_sim_set_path(w->sim, w->p1, &cut), 0);
	cut_at = w->now;
	hook_done = true;
}

/* A backup subflow carries nothing while the regular path works, and the data when it fails. */
static void test_backup_after_failure(void)
{
	struct mps_config ccfg = { .scheduler = "lowrtt", .seed = 25 }, scfg = { .seed = 26 };
	struct mps_subflow_info fi;
	struct mps_conn *c, *s;
	struct jworld w;

	jworld_init(&w, &ccfg, &scfg);
	connect_both(&w, &c, &s);
	CU_ASSERT_EQUAL(mps_join(c, &w.c2, &w.srv, true), 0);
	run_for(&w, 1000000);
	CU_ASSERT_EQUAL_FATAL(mps_subflow_info(c, 1, &fi), 0);
	CU_ASSERT_TRUE(fi.backup);
	CU_ASSERT_TRUE(fi.up);
	CU_ASSERT_EQUAL_FATAL(mps_subflow_info(s, 1, &fi), 0);
	CU_ASSERT_TRUE(fi.backup); /* the responder took the B flag of the join SYN */
	hook_done = false;
	cut_at = 0;
	stream_to(&w, c, s, 3 << 20, cut_path1_for_3s);
	CU_ASSERT_TRUE(hook_done);
	CU_ASSERT_EQUAL(backup_before_cut, 0);
	CU_ASSERT(sf_sent(c, 1) > 100000);
	CU_ASSERT(mps_stack_counter(w.st[0], MPS_CNT_REINJECTED) > 0);
	close_all(&w, c, s);
	jworld_free(&w);
}

/* What the server announced and what the client sent, seen by the server's trace hook. */
struct wnd_watch {
	uint64_t edge;	     /* largest DATA_ACK + window the server has sent */
	uint64_t beyond;     /* client data segments ending past it when they arrived */
	uint64_t data_segs;  /* client data segments with a mapping */
	uint64_t dfin_alone; /* DATA_FINs on a pure ACK (data-level retransmission) */
};

static void wnd_watch_hook(void *ctx, const uint8_t *pkt, size_t len, int out, int subflow,
			   uint64_t now)
{
	struct wnd_watch *ww = ctx;
	struct mps_tcpopts t;
	enum mps_seg_err serr;
	enum mps_opt_err oerr;
	struct mps_seg seg;
	struct mps_opt o;
	int i;

	(void)subflow;
	(void)now;
	if (mps_seg_parse(pkt, len, 0, &seg, &serr) != 0)
		return;
	mps_tcpopt_walk(seg.opts, seg.opts_len, &t);
	for (i = 0; i < t.nmptcp; i++) {
		if (mps_opt_parse(seg.opts + t.mptcp[i].off, t.mptcp[i].len,
				  seg.flags | (seg.payload_len ? MPS_SEG_DATA : 0), &o,
				  &oerr) != 0 ||
		    o.subtype != MPS_MPTCP_SUB_DSS)
			continue;
		/* The server's rcvbuf keeps its window scale at 0: the window is in bytes. */
		if (out && (o.dss.flags & MPS_DSS_FLAG_A) && o.dss.data_ack + seg.win > ww->edge)
			ww->edge = o.dss.data_ack + seg.win;
		if (!out && (o.dss.flags & MPS_DSS_FLAG_M) && seg.payload_len) {
			ww->data_segs++;
			if (ww->edge && o.dss.dsn + seg.payload_len > ww->edge)
				ww->beyond++;
		}
		if (!out && (o.dss.flags & MPS_DSS_FLAG_F) && !seg.payload_len &&
		    !(seg.flags & MPS_TCP_FIN))
			ww->dfin_alone++;
	}
}

/*
 * Send total bytes from c to s and close c; the application at s reads 3000
 * bytes every 5 ms, so the window keeps closing. All must arrive, intact,
 * then the end of the stream.
 */
static void move_slow_reader(struct jworld *w, struct mps_conn *c, struct mps_conn *s,
			     uint64_t total)
{
	uint8_t buf[16384];
	uint64_t sent = 0, rcvd = 0, next_read = 0;
	bool bad = false, eof = false;
	ssize_t n;
	size_t i, want;
	long steps;

	for (steps = 0; steps < STEPS && !eof; steps++) {
		while (sent < total) {
			want = total - sent < sizeof(buf) ? total - sent : sizeof(buf);
			for (i = 0; i < want; i++)
				buf[i] = stream_byte(sent + i);
			n = mps_send(c, buf, want);
			if (n <= 0)
				break;
			sent += (uint64_t)n;
			if (sent == total)
				CU_ASSERT_EQUAL(mps_shutdown(c), 0);
		}
		if (w->now >= next_read) {
			next_read = w->now + 5000;
			n = mps_recv(s, buf, 3000);
			for (i = 0; n > 0 && i < (size_t)n; i++)
				bad |= buf[i] != stream_byte(rcvd + i);
			if (n > 0)
				rcvd += (uint64_t)n;
			eof = n == 0;
		}
		if (!jstep(w) && w->now < next_read)
			w->now = next_read;
	}
	CU_ASSERT_TRUE(eof);
	CU_ASSERT_FALSE(bad);
	CU_ASSERT_EQUAL(rcvd, total);
}

/*
 * The kernel pattern behind lowrtt's stalled closes: a receiver that reads
 * slowly shrinks its window, and a subflow's last window added to a newer
 * DATA_ACK from the other subflow reaches past the edge the receiver
 * announced; Linux drops such data after its subflow acknowledged it. The
 * client must never send past the connection-level edge.
 */
static void test_conn_window_two_subflows(void)
{
	static const struct mps_sim_link_cfg lossy = { .delay_us = 10000,
						       .loss_ppm = 30000,
						       .mtu = 1500 };
	struct mps_config ccfg = { .seed = 27, .nlocal_addrs = 1 },
			  scfg = { .seed = 28, .rcvbuf = 32768 };
	struct wnd_watch ww = { 0 };
	struct mps_conn *c, *s;
	struct jworld w;

	scfg.trace = wnd_watch_hook;
	scfg.trace_ctx = &ww;
	addr_at(&ccfg.local_addrs[0], 2, 1, 0);
	jworld_init(&w, &ccfg, &scfg);
	two_subflows(&w, &c, &s);
	/* Losses on path 1 keep its congestion window small, so the join takes its share. */
	CU_ASSERT_EQUAL(mps_sim_set_path(w.sim, w.p1, &lossy), 0);
	move_slow_reader(&w, c, s, 1 << 20);
	CU_ASSERT(ww.data_segs > 500);
	CU_ASSERT_EQUAL(ww.beyond, 0);
	/* Both subflows carried data (lowrtt is the default). */
	CU_ASSERT(sf_sent(c, 0) > 50000);
	CU_ASSERT(sf_sent(c, 1) > 50000);
	close_all(&w, c, s);
	jworld_free(&w);
}

/*
 * Two connections from the client over the same lossy path 1 for 20 s of
 * simulated time: s1 on one subflow, s2 with a second subflow joined over
 * the same path. Returns the bytes each delivered.
 */
static void share_run(const char *cc, uint64_t seed, uint64_t *one, uint64_t *two)
{
	static const struct mps_sim_link_cfg shared = {
		.delay_us = 10000, .loss_ppm = 10000, .mtu = 1500, .rate_bps = 40000000
	};
	struct mps_config ccfg = { .seed = seed, .congestion = cc },
			  scfg = { .seed = seed + 1, .congestion = cc };
	struct mps_conn *c[2], *s[2] = { NULL, NULL };
	struct mps_conn_info ci;
	uint8_t buf[16384];
	uint64_t got[2] = { 0, 0 }, end;
	struct jworld w;
	ssize_t n;
	long steps;
	int i;

	memset(buf, 0x5a, sizeof(buf));
	jworld_init(&w, &ccfg, &scfg);
	CU_ASSERT_EQUAL_FATAL(mps_sim_set_path(w.sim, w.p1, &shared), 0);
	for (i = 0; i < 2; i++) {
		CU_ASSERT_EQUAL_FATAL(mps_connect(w.st[0], &w.c1, &w.srv, &c[i]), 0);
		for (steps = 0; steps < 100000 && !s[i]; steps++) {
			jstep(&w);
			s[i] = mps_accept(w.st[1]);
		}
		CU_ASSERT_PTR_NOT_NULL_FATAL(s[i]);
	}
	/* A DATA_ACK makes the client fully established; then the second subflow. */
	CU_ASSERT_EQUAL(move_data(&w, c[1], s[1], 1000, false), 1000);
	for (steps = 0; steps < 100 && mps_next_wakeup(w.st[0]) != MPS_TIME_NEVER; steps++)
		jstep(&w);
	CU_ASSERT_EQUAL(mps_join(c[1], &w.c1, &w.srv, false), 0);
	end = w.now + 20000000;
	for (steps = 0; steps < STEPS && w.now < end; steps++) {
		for (i = 0; i < 2; i++) {
			while (mps_send(c[i], buf, sizeof(buf)) > 0)
				;
			while ((n = mps_recv(s[i], buf, sizeof(buf))) > 0)
				got[i] += (uint64_t)n;
		}
		if (!jstep(&w))
			break;
	}
	CU_ASSERT_EQUAL(mps_conn_info(c[0], &ci), 0);
	CU_ASSERT_EQUAL(ci.nsubflows, 1);
	CU_ASSERT_EQUAL(mps_conn_info(c[1], &ci), 0);
	CU_ASSERT_EQUAL(ci.nsubflows, 2);
	CU_ASSERT(sf_sent(c[1], 1) > 0);
	*one = got[0];
	*two = got[1];
	for (i = 0; i < 2; i++) {
		mps_abort(c[i]);
		mps_abort(s[i]);
	}
	jworld_free(&w);
}

/*
 * RFC 6356's goal on a shared bottleneck: with LIA, a connection of two
 * subflows takes no more than about one TCP's share next to a one-subflow
 * connection; with uncoupled Reno it takes about two.
 */
static void test_lia_shared_bottleneck(void)
{
	uint64_t lia1 = 0, lia2 = 0, reno1 = 0, reno2 = 0, a, b;

	/*
	 * Summed over three draws of the path's losses: one draw alone puts the
	 * coupled pair anywhere from 1.13 to 1.33 times one TCP.
	 */
	for (jw_sim_seed = 17; jw_sim_seed < 20; jw_sim_seed++) {
		share_run("lia", 41, &a, &b);
		lia1 += a;
		lia2 += b;
		share_run("reno", 41, &a, &b);
		reno1 += a;
		reno2 += b;
	}
	jw_sim_seed = 17;
	CU_ASSERT(lia1 > 3000000 && reno1 > 3000000);
	/* The order: the coupled pair takes less than the uncoupled pair, relative to one TCP. */
	CU_ASSERT(lia2 * reno1 < reno2 * lia1);
	/* The bounds: LIA at most 1.3 times one TCP, Reno at least 1.5 times. */
	CU_ASSERT(lia2 * 10 <= lia1 * 13);
	CU_ASSERT(reno2 * 10 >= reno1 * 15);
}

/* The n-th event of this type on side (n from 0), or NULL. */
static const struct mps_event *nth_ev(const struct jworld *w, int side, enum mps_event_type type,
				      unsigned int n)
{
	unsigned int i;

	for (i = 0; i < w->nlog[side]; i++)
		if (w->log[side][i].type == type && n-- == 0)
			return &w->log[side][i];
	return NULL;
}

/*
 * A server that takes no join (max_subflows 1) resets every join SYN: the
 * full-mesh client opens the join again 1, 2 and 4 s after each failure,
 * then gives it up; the connection carries on over the initial subflow.
 */
static void test_join_retry_given_up(void)
{
	struct mps_config ccfg = { .seed = 29, .nlocal_addrs = 1 },
			  scfg = { .seed = 30, .max_subflows = 1 };
	const struct mps_event *down, *retry, *gone;
	struct mps_conn *c, *s;
	struct jworld w;
	unsigned int k;

	addr_at(&ccfg.local_addrs[0], 2, 1, 0);
	jworld_init(&w, &ccfg, &scfg);
	connect_both(&w, &c, &s);
	run_for(&w, 20000000);
	CU_ASSERT_EQUAL(mps_stack_counter(w.st[1], MPS_CNT_IN_JOIN_LIMIT), 4);
	CU_ASSERT_EQUAL(mps_stack_counter(w.st[0], MPS_CNT_JOIN_RETRY), 3);
	CU_ASSERT_EQUAL(count_ev(&w, 0, MPS_EV_JOIN_RETRY), 3);
	for (k = 0; k < 3; k++) {
		down = nth_ev(&w, 0, MPS_EV_SUBFLOW_DOWN, k);
		retry = nth_ev(&w, 0, MPS_EV_JOIN_RETRY, k);
		CU_ASSERT_PTR_NOT_NULL_FATAL(down);
		CU_ASSERT_PTR_NOT_NULL_FATAL(retry);
		CU_ASSERT_EQUAL(down->reason, MPS_SF_DOWN_RST);
		CU_ASSERT_EQUAL(retry->reason, (int)k + 1);
		CU_ASSERT_EQUAL(retry->subflow_id, 1);
		/* The wait doubles: 1 s, 2 s, 4 s after each failure. */
		CU_ASSERT_EQUAL(retry->time - down->time, 1000000ULL << k);
	}
	gone = find_ev(&w, 0, MPS_EV_JOIN_GIVEN_UP, 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(gone);
	CU_ASSERT_EQUAL(gone->reason, MPS_SF_DOWN_RST);
	CU_ASSERT_EQUAL(gone->time, nth_ev(&w, 0, MPS_EV_SUBFLOW_DOWN, 3)->time);
	CU_ASSERT_EQUAL(count_ev(&w, 0, MPS_EV_SUBFLOW_UP), 1); /* the initial subflow only */
	/* Nothing more is tried, and the connection still works. */
	run_for(&w, 30000000);
	CU_ASSERT_EQUAL(mps_stack_counter(w.st[0], MPS_CNT_JOIN_RETRY), 3);
	CU_ASSERT_EQUAL(move_data(&w, c, s, 100000, false), 100000);
	close_all(&w, c, s);
	jworld_free(&w);
}

/*
 * Path 2 is down while the join's SYN is retransmitted, so the join times
 * out; the path is back before the retry, which brings the subflow up.
 */
static void test_join_retry_after_timeout(void)
{
	static const struct mps_sim_link_cfg cut = { .delay_us = 20000, .loss_ppm = 1000000 };
	struct mps_config ccfg = { .seed = 31, .nlocal_addrs = 1 }, scfg = { .seed = 32 };
	const struct mps_event *down, *retry, *up;
	struct mps_conn_info ci;
	struct mps_conn *c, *s;
	struct jworld w;
	unsigned int k;

	addr_at(&ccfg.local_addrs[0], 2, 1, 0);
	jworld_init(&w, &ccfg, &scfg);
	CU_ASSERT_EQUAL(mps_sim_set_path(w.sim, w.p2, &cut), 0);
	CU_ASSERT_EQUAL_FATAL(mps_connect(w.st[0], &w.c1, &w.srv, &c), 0);
	for (s = NULL, k = 0; k < 1000 && !s; k++) {
		jstep(&w);
		s = mps_accept(w.st[1]);
	}
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	/* Fully established: the full-mesh client opens its join over path 2 at once. */
	CU_ASSERT_EQUAL(move_data(&w, c, s, 1000, false), 1000);
	/* SYN at 0, resent after 1, 3, 7, 15, 31 and 63 s; given up at 127 s. */
	run_for(&w, 100000000);
	CU_ASSERT_PTR_NULL(find_ev(&w, 0, MPS_EV_SUBFLOW_DOWN, 1));
	CU_ASSERT_EQUAL(mps_sim_set_path(w.sim, w.p2, &path2), 0);
	run_for(&w, 40000000);
	down = find_ev(&w, 0, MPS_EV_SUBFLOW_DOWN, 1);
	retry = find_ev(&w, 0, MPS_EV_JOIN_RETRY, 1);
	up = find_ev(&w, 0, MPS_EV_SUBFLOW_UP, 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(down);
	CU_ASSERT_PTR_NOT_NULL_FATAL(retry);
	CU_ASSERT_PTR_NOT_NULL_FATAL(up);
	CU_ASSERT_EQUAL(down->reason, MPS_SF_DOWN_TIMEOUT);
	CU_ASSERT_EQUAL(retry->reason, 1);
	CU_ASSERT_EQUAL(retry->time, down->time + 1000000);
	CU_ASSERT(up->time > retry->time);
	CU_ASSERT_EQUAL(mps_stack_counter(w.st[0], MPS_CNT_JOIN_RETRY), 1);
	CU_ASSERT_PTR_NULL(find_ev(&w, 0, MPS_EV_JOIN_GIVEN_UP, -1));
	CU_ASSERT_EQUAL(mps_conn_info(c, &ci), 0);
	CU_ASSERT_EQUAL(ci.nsubflows, 2);
	/* The retry's slot is free again once the join is up. */
	for (k = 0; k < MPS_MAX_SUBFLOWS; k++)
		CU_ASSERT_EQUAL(c->jretry[k].local.family, 0);
	stream_to(&w, c, s, 1 << 20, NULL);
	CU_ASSERT(sf_sent(c, 1) > 0);
	close_all(&w, c, s);
	jworld_free(&w);
}

/*
 * The initial subflow is not special: its path dies for good mid-transfer,
 * its data is reinjected on the join, the transfer completes, both
 * DATA_FINs go over the join, the dead subflow is given up and both ends
 * close without a reset.
 */
static void test_initial_path_dies(void)
{
	static const struct mps_sim_link_cfg cut = { .delay_us = 10000, .loss_ppm = 1000000 };
	struct mps_config ccfg = { .seed = 33, .nlocal_addrs = 1 }, scfg = { .seed = 34 };
	const struct mps_event *down, *closed;
	uint64_t join_before;
	struct mps_conn *c, *s;
	struct jworld w;
	long steps;
	int i;

	addr_at(&ccfg.local_addrs[0], 2, 1, 0);
	jworld_init(&w, &ccfg, &scfg);
	two_subflows(&w, &c, &s);
	CU_ASSERT_EQUAL(move_data(&w, c, s, 1 << 20, false), 1 << 20);
	CU_ASSERT(sf_sent(c, 0) > 100000);
	/* Between two transfers, so the scheduler's next data for it is lost. */
	CU_ASSERT_EQUAL(mps_sim_set_path(w.sim, w.p1, &cut), 0);
	cut_at = w.now;
	join_before = sf_sent(c, 1);
	/* Long enough that the retry 1 s after the failure comes before our DATA_FIN. */
	stream_to(&w, c, s, 4 << 20, NULL);
	CU_ASSERT(mps_stack_counter(w.st[0], MPS_CNT_REINJECTED) > 0);
	CU_ASSERT(sf_sent(c, 1) - join_before >= 2 << 20);
	mps_close(s);
	mps_close(c);
	for (steps = 0; steps < STEPS; steps++)
		if (!jstep(&w))
			break;
	for (i = 0; i < 2; i++) {
		closed = find_ev(&w, i, MPS_EV_CONN_CLOSED, -1);
		CU_ASSERT_EQUAL(mps_next_wakeup(w.st[i]), MPS_TIME_NEVER);
		CU_ASSERT_PTR_NULL(find_ev(&w, i, MPS_EV_CONN_RESET, -1));
		CU_ASSERT_PTR_NOT_NULL_FATAL(closed);
		/* Over the join, without waiting for the dead subflow's retransmissions to run out. */
		CU_ASSERT(closed->time < cut_at + 10000000);
	}
	/*
	 * The client gives its initial subflow up as stale (it held back the send
	 * buffer) or at its timeout, tries the pair again as a join 1 s later
	 * (abandoned in its handshake once both DATA_FINs are acknowledged), and
	 * closes the join; the server, whose initial subflow only carried ACKs,
	 * gives it up once its FIN goes unanswered with the data level closed.
	 */
	CU_ASSERT_EQUAL_FATAL(count_ev(&w, 0, MPS_EV_SUBFLOW_DOWN), 3);
	CU_ASSERT_EQUAL_FATAL(count_ev(&w, 1, MPS_EV_SUBFLOW_DOWN), 2);
	down = nth_ev(&w, 0, MPS_EV_SUBFLOW_DOWN, 0);
	CU_ASSERT_EQUAL(down->subflow_id, 0);
	CU_ASSERT(down->reason == MPS_SF_DOWN_STALE || down->reason == MPS_SF_DOWN_TIMEOUT);
	CU_ASSERT_PTR_NOT_NULL_FATAL(find_ev(&w, 0, MPS_EV_JOIN_RETRY, 0));
	CU_ASSERT_EQUAL(find_ev(&w, 0, MPS_EV_JOIN_RETRY, 0)->time, down->time + 1000000);
	down = nth_ev(&w, 0, MPS_EV_SUBFLOW_DOWN, 1);
	CU_ASSERT_EQUAL(down->subflow_id, 0);
	CU_ASSERT_EQUAL(down->reason, MPS_SF_DOWN_CLOSED);
	down = nth_ev(&w, 0, MPS_EV_SUBFLOW_DOWN, 2);
	CU_ASSERT_EQUAL(down->subflow_id, 1);
	CU_ASSERT_EQUAL(down->reason, MPS_SF_DOWN_CLOSED);
	CU_ASSERT_EQUAL(nth_ev(&w, 1, MPS_EV_SUBFLOW_DOWN, 0)->reason, MPS_SF_DOWN_CLOSED);
	CU_ASSERT_EQUAL(nth_ev(&w, 1, MPS_EV_SUBFLOW_DOWN, 1)->reason, MPS_SF_DOWN_TIMEOUT);
	jworld_free(&w);
}

/*
 * The server withdraws the address of the initial subflow while a join to
 * its second address works: the initial subflow is reset on both ends (by
 * the RST, or, when that is lost, by the REMOVE_ADDR with ID 0 that goes
 * over the join), the transfer continues over the join and both ends close
 * cleanly. Without a working join the initial subflow's address cannot be
 * withdrawn.
 */
static void initial_addr_removed_run(bool rst_lost, int client_reason)
{
	static const struct mps_sim_link_cfg cut = { .delay_us = 10000, .loss_ppm = 1000000 };
	struct mps_config ccfg = { .seed = 35 }, scfg = { .seed = 36, .nlocal_addrs = 1 };
	const struct mps_event *down;
	struct mps_conn_info ci;
	struct mps_conn *c, *s = NULL;
	struct jworld w;
	long steps;

	addr_at(&scfg.local_addrs[0], 2, 2, 0);
	jworld_init(&w, &ccfg, &scfg);
	CU_ASSERT_EQUAL_FATAL(mps_connect(w.st[0], &w.c1, &w.srv, &c), 0);
	for (steps = 0; steps < 1000 && !s; steps++) {
		jstep(&w);
		s = mps_accept(w.st[1]);
	}
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(mps_remove_addr(s, &w.srv), -EBUSY);
	CU_ASSERT_EQUAL(move_data(&w, c, s, 100000, false), 100000);
	run_for(&w, 1000000);
	CU_ASSERT_EQUAL(mps_conn_info(c, &ci), 0);
	CU_ASSERT_EQUAL_FATAL(ci.nsubflows, 2);
	CU_ASSERT_EQUAL(move_data(&w, c, s, 512 << 10, false), 512 << 10);
	CU_ASSERT_EQUAL(mps_remove_addr(s, &w.srv), 0);
	/* Path 1 down at once: the server's RST on the initial subflow is lost. */
	if (rst_lost)
		CU_ASSERT_EQUAL(mps_sim_set_path(w.sim, w.p1, &cut), 0);
	stream_to(&w, c, s, 1 << 20, NULL);
	down = find_ev(&w, 1, MPS_EV_SUBFLOW_DOWN, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(down);
	CU_ASSERT_EQUAL(down->reason, MPS_SF_DOWN_REMOVED);
	CU_ASSERT_PTR_NOT_NULL(find_ev(&w, 1, MPS_EV_REMOVE_ADDR_OUT, -1));
	CU_ASSERT_EQUAL(s->nrm_ids, 0); /* the REMOVE_ADDR left, on the join */
	/* The client lost its initial subflow to the RST, or else to the REMOVE_ADDR of ID 0. */
	down = find_ev(&w, 0, MPS_EV_SUBFLOW_DOWN, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(down);
	CU_ASSERT_EQUAL(down->reason, client_reason);
	CU_ASSERT_EQUAL(mps_conn_info(c, &ci), 0);
	CU_ASSERT_EQUAL(ci.nsubflows, 2); /* the dead initial one is still listed, CLOSED */
	close_all(&w, c, s);
	CU_ASSERT_PTR_NULL(find_ev(&w, 0, MPS_EV_CONN_RESET, -1));
	CU_ASSERT_PTR_NULL(find_ev(&w, 1, MPS_EV_CONN_RESET, -1));
	CU_ASSERT_PTR_NOT_NULL(find_ev(&w, 0, MPS_EV_CONN_CLOSED, -1));
	CU_ASSERT_PTR_NOT_NULL(find_ev(&w, 1, MPS_EV_CONN_CLOSED, -1));
	jworld_free(&w);
}

static void test_initial_addr_removed(void)
{
	initial_addr_removed_run(false, MPS_SF_DOWN_RST);
	initial_addr_removed_run(true, MPS_SF_DOWN_REMOVED);
}

/* Node x's ACK to the server: subflow ack, and a 64-bit DATA_ACK. */
static void x_data_ack(struct jworld *w, const struct mps_addr *xa, uint32_t ack, uint64_t dack)
{
	struct mps_opt o = { .subtype = MPS_MPTCP_SUB_DSS };

	o.dss.flags = MPS_DSS_FLAG_A | MPS_DSS_FLAG_a;
	o.dss.data_ack = dack;
	raw_send(w, xa, &w->srv, 7001, ack, MPS_TCP_ACK, &o);
}

/*
 * MP_CAPABLE by hand from node x (xa, its port set) to the server: a SYN
 * with key 0x1122334455667788 and, unless ws is 0, window scaling by ws;
 * the server's SYN/ACK; the third ACK with both keys. Returns the server's
 * connection; *siss is its ISN and *idsn its initial DSN. The SYN is iss,
 * so x's next sequence number is iss + 1.
 */
static struct mps_conn *raw_mpc_connect(struct jworld *w, const struct mps_addr *xa, uint32_t iss,
					uint8_t ws, uint32_t *siss, uint64_t *idsn)
{
	struct mps_opt o = { .subtype = MPS_MPTCP_SUB_CAPABLE }, r;
	uint8_t opts[MPS_MAX_OPTS], pkt[2048];
	struct mps_pkt_spec ps = { .local = xa,
				   .remote = &w->srv,
				   .seq = iss,
				   .flags = MPS_TCP_SYN,
				   .win = 65535,
				   .opts = opts };
	struct mps_conn *s = NULL;
	struct mps_seg seg;
	long steps;
	int n = 0;

	o.mpc.form = MPS_MPC_SYN;
	o.mpc.version = MPS_MPTCP_VERSION;
	o.mpc.flags = MPS_MPC_FLAG_H;
	o.mpc.snd_key = 0x1122334455667788ULL;
	if (ws) {
		opts[n++] = MPS_TCPOPT_NOP;
		opts[n++] = MPS_TCPOPT_WS;
		opts[n++] = MPS_TCPOLEN_WS;
		opts[n++] = ws;
	}
	ps.optlen = mps_opt_build(&o, opts + n, sizeof(opts) - (size_t)n);
	CU_ASSERT_FATAL(ps.optlen > 0);
	ps.optlen += n;
	while (ps.optlen % 4)
		opts[ps.optlen++] = MPS_TCPOPT_NOP;
	n = mps_tcp_write_packet(w->raw, &ps, pkt, sizeof(pkt));
	CU_ASSERT_FATAL(n > 0);
	CU_ASSERT_EQUAL(mps_sim_link_ops.send(w->port[2], pkt, (size_t)n, w->now), 0);
	CU_ASSERT_FATAL(raw_recv(w, pkt, &seg, MPS_MPTCP_SUB_CAPABLE, &r));
	CU_ASSERT_EQUAL_FATAL(r.mpc.form, MPS_MPC_SYNACK);
	*siss = seg.seq;
	o.mpc.form = MPS_MPC_ACK;
	o.mpc.rcv_key = r.mpc.snd_key;
	mps_key_token_idsn(r.mpc.snd_key, NULL, idsn);
	raw_send(w, xa, &w->srv, iss + 1, *siss + 1, MPS_TCP_ACK, &o);
	for (steps = 0; steps < 1000 && !s; steps++) {
		jstep(w);
		s = mps_accept(w->st[1]);
	}
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	return s;
}

/*
 * Node x (sequence number xseq) takes total bytes of the server's data in
 * order from *nxt on, acknowledging each segment on the subflow with
 * DATA_ACK dack; returns what it took.
 */
static uint64_t x_take(struct jworld *w, const struct mps_addr *xa, uint32_t xseq, uint32_t *nxt,
		       uint64_t total, uint64_t dack)
{
	struct mps_opt o = { .subtype = MPS_MPTCP_SUB_DSS }, r;
	uint8_t pkt[2048];
	struct mps_seg seg;
	uint64_t got = 0;
	long steps;

	o.dss.flags = MPS_DSS_FLAG_A | MPS_DSS_FLAG_a;
	o.dss.data_ack = dack;
	for (steps = 0; steps < 100000 && got < total; steps++) {
		if (!raw_recv(w, pkt, &seg, MPS_MPTCP_SUB_DSS, &r))
			break;
		if (!seg.payload_len || seg.seq != *nxt)
			continue;
		got += seg.payload_len;
		*nxt += seg.payload_len;
		raw_send(w, xa, &w->srv, xseq, *nxt, MPS_TCP_ACK, &o);
	}
	return got;
}

/*
 * Data-level retransmission against a hand-driven client (node x) that
 * acknowledges every segment on the subflow but DATA_ACKs only the first,
 * as Linux does when it drops data beyond its connection-level window: the
 * server sends the rest again after a timeout, at its DSNs, as new subflow
 * data; then its DATA_FIN, whose subflow FIN is acknowledged without a
 * DATA_ACK, goes again alone.
 */
static void test_data_level_retransmission(void)
{
	struct mps_config ccfg = { .seed = 37 }, scfg = { .seed = 38 };
	struct mps_opt r;
	uint8_t pkt[2048], data[1500];
	uint64_t idsn, first_len = 0, acked_at, got = 0;
	uint32_t siss, nxt;
	struct mps_addr xa;
	struct mps_conn *s = NULL;
	struct mps_seg seg;
	struct jworld w;
	size_t i;

	jworld_init(&w, &ccfg, &scfg);
	xa = w.x;
	xa.port = 42000;
	s = raw_mpc_connect(&w, &xa, 7000, 0, &siss, &idsn);
	for (i = 0; i < sizeof(data); i++)
		data[i] = stream_byte(i);
	CU_ASSERT_EQUAL(mps_send(s, data, sizeof(data)), (ssize_t)sizeof(data));
	/* Take the segments; remember the first mapping's length. */
	while (got < sizeof(data) && raw_recv(&w, pkt, &seg, MPS_MPTCP_SUB_DSS, &r)) {
		if (!seg.payload_len)
			continue;
		CU_ASSERT_EQUAL_FATAL(r.subtype, MPS_MPTCP_SUB_DSS);
		CU_ASSERT_EQUAL(r.dss.dsn, idsn + 1 + got);
		if (!got)
			first_len = seg.payload_len;
		got += seg.payload_len;
	}
	CU_ASSERT_EQUAL_FATAL(got, sizeof(data));
	CU_ASSERT_FATAL(first_len > 0 && first_len < sizeof(data));
	/* Everything acknowledged on the subflow, only the first segment at the data level. */
	nxt = siss + 1 + (uint32_t)got;
	x_data_ack(&w, &xa, nxt, idsn + 1 + first_len);
	acked_at = w.now;
	CU_ASSERT_FATAL(raw_recv(&w, pkt, &seg, MPS_MPTCP_SUB_DSS, &r));
	CU_ASSERT_EQUAL_FATAL(r.subtype, MPS_MPTCP_SUB_DSS);
	CU_ASSERT_TRUE(r.dss.flags & MPS_DSS_FLAG_M);
	/* The rest again, at its DSNs, as new subflow data, after a timeout (at least 200 ms). */
	CU_ASSERT_EQUAL(r.dss.dsn, idsn + 1 + first_len);
	CU_ASSERT_EQUAL(seg.seq, nxt);
	CU_ASSERT_EQUAL(r.dss.ssn, 1 + got);
	CU_ASSERT(seg.payload_len > 0);
	CU_ASSERT_EQUAL(memcmp(seg.payload, data + first_len, seg.payload_len), 0);
	CU_ASSERT(w.now >= acked_at + 200000);
	CU_ASSERT_EQUAL(mps_stack_counter(w.st[1], MPS_CNT_DATA_RTO), 1);
	/* The data level catches up; nothing more is resent. */
	nxt += seg.payload_len;
	while (seg.seq + seg.payload_len < siss + 1 + 2 * got - first_len &&
	       raw_recv(&w, pkt, &seg, MPS_MPTCP_SUB_DSS, &r))
		nxt = seg.seq + seg.payload_len;
	x_data_ack(&w, &xa, nxt, idsn + 1 + got);
	run_for(&w, 3000000);
	CU_ASSERT_EQUAL(mps_stack_counter(w.st[1], MPS_CNT_DATA_RTO), 1);
	/* DATA_FIN with the subflow's FIN; its FIN acknowledged, the DATA_FIN not. */
	CU_ASSERT_EQUAL(mps_shutdown(s), 0);
	CU_ASSERT_FATAL(raw_recv(&w, pkt, &seg, MPS_MPTCP_SUB_DSS, &r));
	CU_ASSERT_EQUAL(seg.flags & MPS_TCP_FIN, MPS_TCP_FIN);
	CU_ASSERT_TRUE(r.dss.flags & MPS_DSS_FLAG_F);
	x_data_ack(&w, &xa, seg.seq + 1, idsn + 1 + got);
	acked_at = w.now;
	/* A lone DATA_FIN follows: a pure ACK whose DSS carries F at the end of the data. */
	do {
		CU_ASSERT_FATAL(raw_recv(&w, pkt, &seg, MPS_MPTCP_SUB_DSS, &r));
	} while (!(r.dss.flags & MPS_DSS_FLAG_F));
	CU_ASSERT_EQUAL(seg.flags, MPS_TCP_ACK);
	CU_ASSERT_EQUAL(seg.payload_len, 0);
	CU_ASSERT_EQUAL(r.dss.dsn, idsn + 1 + got);
	CU_ASSERT_EQUAL(r.dss.ssn, 0);
	CU_ASSERT_EQUAL(r.dss.data_len, 1);
	CU_ASSERT(w.now >= acked_at + 200000);
	CU_ASSERT_EQUAL(mps_stack_counter(w.st[1], MPS_CNT_DATA_RTO), 2);
	jworld_free(&w);
}

/*
 * A data-level timeout resends the oldest data not DATA_ACKed, 64 KiB of it,
 * not everything outstanding (as Linux's MPTCP-level retransmission resends
 * its first fragment): a peer that lacks only part of the data is not sent
 * the rest again. The peer here announces window scaling, so that 200 KB
 * can be outstanding; it acknowledges all of it on the subflow and none at
 * the data level.
 */
static void test_data_level_retransmission_chunk(void)
{
	static const uint32_t total = 200000, chunk = 64u << 10;
	struct mps_config ccfg = { .seed = 39 }, scfg = { .seed = 40 };
	struct mps_opt o = { .subtype = MPS_MPTCP_SUB_DSS }, r;
	uint8_t pkt[2048];
	static uint8_t data[200000];
	uint64_t idsn, again = 0, first_dsn = 0;
	uint32_t siss, nxt;
	struct mps_addr xa;
	struct mps_conn *s = NULL;
	struct mps_seg seg;
	struct jworld w;
	long steps;
	size_t i;

	jworld_init(&w, &ccfg, &scfg);
	xa = w.x;
	xa.port = 42001;
	s = raw_mpc_connect(&w, &xa, 9000, 7, &siss, &idsn);
	for (i = 0; i < total; i++)
		data[i] = stream_byte(i);
	CU_ASSERT_EQUAL(mps_send(s, data, total), (ssize_t)total);
	/* Every segment acknowledged on the subflow; the DATA_ACK stays at the start. */
	nxt = siss + 1;
	CU_ASSERT_EQUAL_FATAL(x_take(&w, &xa, 9001, &nxt, total, idsn + 1), total);
	o.dss.flags = MPS_DSS_FLAG_A | MPS_DSS_FLAG_a;
	CU_ASSERT_EQUAL(mps_stack_counter(w.st[1], MPS_CNT_DATA_RTO), 0);
	/* The timeout: the first 64 KiB again, as new subflow data, at their DSNs. */
	for (steps = 0; steps < 100000 && mps_stack_counter(w.st[1], MPS_CNT_DATA_RTO) < 2;
	     steps++) {
		if (!raw_recv(&w, pkt, &seg, MPS_MPTCP_SUB_DSS, &r))
			break;
		if (!seg.payload_len || r.subtype != MPS_MPTCP_SUB_DSS ||
		    !(r.dss.flags & MPS_DSS_FLAG_M) ||
		    mps_stack_counter(w.st[1], MPS_CNT_DATA_RTO) != 1)
			continue;
		if (!again)
			first_dsn = r.dss.dsn;
		CU_ASSERT_EQUAL(memcmp(seg.payload, data + (r.dss.dsn - idsn - 1), seg.payload_len),
				0);
		again += seg.payload_len;
		nxt = seg.seq + seg.payload_len;
		o.dss.data_ack = idsn + 1;
		raw_send(&w, &xa, &w.srv, 9001, nxt, MPS_TCP_ACK, &o);
	}
	CU_ASSERT_EQUAL(first_dsn, idsn + 1);
	CU_ASSERT_EQUAL(again, chunk);
	jworld_free(&w);
}

/*
 * No fallback once data went out twice at the data level. The hand-driven
 * client (node x) acknowledges 100 kB on the subflow and DATA_ACKs none of
 * it, as a Linux peer holding data for a slow reader, so the server resends
 * its oldest data as new subflow data after the data-level timeout (no
 * earlier than 1 s on a lone subflow that may fall back). Then a middlebox
 * starts stripping MPTCP options: with during_resend, the first ACK without
 * them covers part of the resend; otherwise the client first DATA_ACKs
 * everything, the server sends new data, and the options vanish on its ACK.
 * A Linux receiver that falls back places each byte at the initial DSN plus
 * its subflow sequence number, which the resend has put out of step, so
 * either way the server resets (MP_TCPRST 1) instead of falling back.
 */
static void fallback_after_resend_run(bool during_resend)
{
	static const uint32_t total = 100000, more = 50000;
	struct mps_config ccfg = { .seed = 41 }, scfg = { .seed = 42 };
	struct mps_opt o = { .subtype = MPS_MPTCP_SUB_DSS }, r;
	static uint8_t data[150000];
	const struct mps_event *ev;
	uint8_t pkt[2048];
	uint64_t idsn, sent_at;
	uint32_t siss, nxt, again_end;
	struct mps_addr xa;
	struct mps_conn *s = NULL;
	struct mps_seg seg;
	struct jworld w;
	long steps;
	size_t i;

	jworld_init(&w, &ccfg, &scfg);
	xa = w.x;
	xa.port = during_resend ? 42004 : 42003;
	s = raw_mpc_connect(&w, &xa, 11000, 7, &siss, &idsn);
	for (i = 0; i < sizeof(data); i++)
		data[i] = stream_byte(i);
	sent_at = w.now;
	CU_ASSERT_EQUAL(mps_send(s, data, total), (ssize_t)total);
	nxt = siss + 1;
	CU_ASSERT_EQUAL_FATAL(x_take(&w, &xa, 11001, &nxt, total, idsn + 1), total);
	/* The resend: the oldest data at its DSN, as new subflow data. */
	do {
		CU_ASSERT_FATAL(raw_recv(&w, pkt, &seg, MPS_MPTCP_SUB_DSS, &r));
	} while (!seg.payload_len);
	CU_ASSERT_EQUAL(mps_stack_counter(w.st[1], MPS_CNT_DATA_RTO), 1);
	CU_ASSERT(w.now >= sent_at + 1000000);
	CU_ASSERT_EQUAL_FATAL(r.subtype, MPS_MPTCP_SUB_DSS);
	CU_ASSERT_EQUAL(r.dss.dsn, idsn + 1);
	CU_ASSERT_EQUAL_FATAL(seg.seq, nxt);
	if (!during_resend) {
		/* The client takes the resend and DATA_ACKs everything; new data follows. */
		again_end = nxt;
		o.dss.flags = MPS_DSS_FLAG_A | MPS_DSS_FLAG_a;
		o.dss.data_ack = idsn + 1 + total;
		for (steps = 0; steps < 100000; steps++) {
			if (seg.payload_len && seg.seq == again_end) {
				again_end += seg.payload_len;
				raw_send(&w, &xa, &w.srv, 11001, again_end, MPS_TCP_ACK, &o);
			}
			if (again_end - nxt >= (64u << 10) ||
			    !raw_recv(&w, pkt, &seg, MPS_MPTCP_SUB_DSS, &r))
				break;
		}
		CU_ASSERT_EQUAL_FATAL(again_end - nxt, 64u << 10);
		CU_ASSERT_EQUAL(mps_send(s, data + total, more), (ssize_t)more);
		do {
			CU_ASSERT_FATAL(raw_recv(&w, pkt, &seg, MPS_MPTCP_SUB_DSS, &r));
		} while (!seg.payload_len);
		CU_ASSERT_EQUAL(seg.seq, again_end);
		CU_ASSERT_EQUAL(r.dss.dsn, idsn + 1 + total);
	}
	/* Options gone from here on: this ACK covers the segment just received. */
	raw_send(&w, &xa, &w.srv, 11001, seg.seq + seg.payload_len, MPS_TCP_ACK, NULL);
	for (steps = 0; steps < 1000 && raw_recv(&w, pkt, &seg, MPS_MPTCP_SUB_TCPRST, &r); steps++)
		if (seg.flags & MPS_TCP_RST)
			break;
	CU_ASSERT_FATAL(steps < 1000);
	CU_ASSERT_EQUAL(seg.flags & MPS_TCP_RST, MPS_TCP_RST);
	CU_ASSERT_EQUAL(r.subtype, MPS_MPTCP_SUB_TCPRST);
	CU_ASSERT_EQUAL(r.tcprst.reason, MPS_TCPRST_MPTCP_ERR);
	CU_ASSERT_EQUAL(count_ev(&w, 1, MPS_EV_FALLBACK), 0);
	ev = find_ev(&w, 1, MPS_EV_CONN_RESET, -1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
	CU_ASSERT_EQUAL(ev->reason, MPS_RST_OPTS_LOST);
	CU_ASSERT_EQUAL(mps_stack_counter(w.st[1], MPS_CNT_IN_NO_DSS), 1);
	jworld_free(&w);
}

static void test_fallback_after_resend(void)
{
	fallback_after_resend_run(true);
	fallback_after_resend_run(false);
}

/*
 * The initial path fails, then comes back: the client's path manager opens
 * the pair (first address to the server's) again, as a join, and the new
 * subflow carries data.
 */
static void test_initial_path_returns(void)
{
	static const struct mps_sim_link_cfg cut = { .delay_us = 10000, .loss_ppm = 1000000 };
	struct mps_config ccfg = { .seed = 39, .nlocal_addrs = 1 }, scfg = { .seed = 40 };
	const struct mps_event *down, *retry, *up;
	struct mps_subflow_info fi;
	struct mps_conn *c, *s;
	struct jworld w;
	unsigned int k, found = 0;

	addr_at(&ccfg.local_addrs[0], 2, 1, 0);
	jworld_init(&w, &ccfg, &scfg);
	two_subflows(&w, &c, &s);
	CU_ASSERT_EQUAL(move_data(&w, c, s, 1 << 20, false), 1 << 20);
	CU_ASSERT_EQUAL(mps_sim_set_path(w.sim, w.p1, &cut), 0);
	CU_ASSERT_EQUAL(move_data(&w, c, s, 2 << 20, false), 2 << 20);
	down = find_ev(&w, 0, MPS_EV_SUBFLOW_DOWN, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(down);
	CU_ASSERT(down->reason == MPS_SF_DOWN_STALE || down->reason == MPS_SF_DOWN_TIMEOUT);
	CU_ASSERT_EQUAL(mps_sim_set_path(w.sim, w.p1, &path1), 0);
	run_for(&w, 30000000);
	retry = find_ev(&w, 0, MPS_EV_JOIN_RETRY, 0);
	up = find_ev(&w, 0, MPS_EV_SUBFLOW_UP, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(retry);
	CU_ASSERT_PTR_NOT_NULL_FATAL(up);
	CU_ASSERT(up->time > down->time);
	CU_ASSERT_PTR_NULL(find_ev(&w, 0, MPS_EV_JOIN_GIVEN_UP, -1));
	CU_ASSERT_EQUAL(move_data(&w, c, s, 1 << 20, false), 1 << 20);
	/* The new join from the first address is up and carried data. */
	for (k = 0; mps_subflow_info(c, k, &fi) == 0; k++)
		if (fi.join && fi.up && memcmp(fi.local.addr, w.c1.addr, 4) == 0 &&
		    fi.bytes_sent > 0)
			found++;
	CU_ASSERT_EQUAL(found, 1);
	close_all(&w, c, s);
	CU_ASSERT_PTR_NULL(find_ev(&w, 0, MPS_EV_CONN_RESET, -1));
	CU_ASSERT_PTR_NULL(find_ev(&w, 1, MPS_EV_CONN_RESET, -1));
	jworld_free(&w);
}

/* What one stack's RSTs carried, seen by its trace hook. */
struct rst_watch {
	unsigned int rsts;	  /* RSTs sent */
	unsigned int middlebox;	  /* of which with MP_TCPRST 6 and MP_FAIL */
	unsigned int with_fc;	  /* of which with MP_FASTCLOSE */
	uint64_t fail_dsn;	  /* the MP_FAIL's DSN */
	unsigned int add_addr_on; /* ADD_ADDRs (not echoes) sent on a subflow other than 0 */
};

static void rst_watch_hook(void *ctx, const uint8_t *pkt, size_t len, int out, int subflow,
			   uint64_t now)
{
	struct rst_watch *rw = ctx;
	bool reason6 = false, fail = false, fc = false;
	struct mps_tcpopts t;
	enum mps_seg_err serr;
	enum mps_opt_err oerr;
	struct mps_seg seg;
	struct mps_opt o;
	int i;

	(void)now;
	if (!out || mps_seg_parse(pkt, len, 0, &seg, &serr) != 0)
		return;
	mps_tcpopt_walk(seg.opts, seg.opts_len, &t);
	for (i = 0; i < t.nmptcp; i++) {
		if (mps_opt_parse(seg.opts + t.mptcp[i].off, t.mptcp[i].len,
				  seg.flags | (seg.payload_len ? MPS_SEG_DATA : 0), &o, &oerr) != 0)
			continue;
		if (o.subtype == MPS_MPTCP_SUB_TCPRST && o.tcprst.reason == MPS_TCPRST_MIDDLEBOX)
			reason6 = true;
		if (o.subtype == MPS_MPTCP_SUB_FAIL) {
			fail = true;
			rw->fail_dsn = o.fail_dsn;
		}
		if (o.subtype == MPS_MPTCP_SUB_FASTCLOSE)
			fc = true;
		if (o.subtype == MPS_MPTCP_SUB_ADD_ADDR && !o.add_addr.echo && subflow != 0)
			rw->add_addr_on++;
	}
	if (!(seg.flags & MPS_TCP_RST))
		return;
	rw->rsts++;
	rw->middlebox += reason6 && fail;
	rw->with_fc += fc;
}

/*
 * DSS checksums over two lossy, reordering paths: every mapping on either
 * subflow is held until it verifies, the stream arrives intact, both
 * subflows carry a real share and no checksum fails.
 */
static void test_checksum_two_paths(void)
{
	static const struct mps_sim_link_cfg lossy1 = { .delay_us = 15000,
							.jitter_us = 2000,
							.loss_ppm = 10000,
							.reorder_ppm = 10000,
							.reorder_delay_us = 5000,
							.mtu = 1500,
							.rate_bps = 20000000 };
	static const struct mps_sim_link_cfg lossy2 = { .delay_us = 25000,
							.jitter_us = 2000,
							.loss_ppm = 10000,
							.reorder_ppm = 10000,
							.reorder_delay_us = 5000,
							.mtu = 1500,
							.rate_bps = 20000000 };
	struct mps_config ccfg = { .seed = 41, .nlocal_addrs = 1, .checksum = true },
			  scfg = { .seed = 42 };
	struct mps_conn_info ci;
	struct mps_conn *c, *s;
	struct jworld w;
	int i;

	addr_at(&ccfg.local_addrs[0], 2, 1, 0);
	jworld_init(&w, &ccfg, &scfg);
	two_subflows(&w, &c, &s);
	CU_ASSERT_EQUAL(mps_conn_info(s, &ci), 0);
	CU_ASSERT_TRUE(ci.checksum); /* the client's flag A is followed */
	CU_ASSERT_EQUAL(mps_sim_set_path(w.sim, w.p1, &lossy1), 0);
	CU_ASSERT_EQUAL(mps_sim_set_path(w.sim, w.p2, &lossy2), 0);
	stream_to(&w, c, s, 2 << 20, NULL);
	CU_ASSERT(sf_sent(c, 0) > 200000);
	CU_ASSERT(sf_sent(c, 1) > 200000);
	for (i = 0; i < 2; i++) {
		CU_ASSERT_EQUAL(mps_stack_counter(w.st[i], MPS_CNT_IN_DSS_CSUM), 0);
		CU_ASSERT_EQUAL(mps_stack_counter(w.st[i], MPS_CNT_IN_JOIN_DATA), 0);
	}
	close_all(&w, c, s);
	jworld_free(&w);
}

static int rewrite_path; /* 1 or 2: the path whose middlebox rewrites */

/* That path's middlebox rewrites one data packet once 512 KiB are queued. */
static void rewrite_once(struct jworld *w, struct mps_conn *c, uint64_t sent)
{
	struct mps_sim_link_cfg alg = rewrite_path == 1 ? path1 : path2;

	(void)c;
	if (sent < (512 << 10) || hook_done)
		return;
	alg.rate_bps = 10000000;
	alg.rewrite_ppm = 1000000;
	alg.rewrite_max = 1;
	CU_ASSERT_EQUAL(mps_sim_set_path(w->sim, rewrite_path == 1 ? w->p1 : w->p2, &alg), 0);
	hook_done = true;
}

/*
 * Two subflows at 10 Mbit/s with checksums (client seed, server seed+1), the
 * server's RSTs watched by rw, 4 MiB streamed while one packet on `path` is
 * rewritten; the middlebox rewrote exactly one.
 */
static void checksum_rewrite_stream(struct jworld *w, struct mps_conn **c, struct mps_conn **s,
				    struct rst_watch *rw, uint64_t seed, int path)
{
	static const struct mps_sim_link_cfg slow1 = { .delay_us = 10000,
						       .mtu = 1500,
						       .rate_bps = 10000000 };
	static const struct mps_sim_link_cfg slow2 = { .delay_us = 20000,
						       .mtu = 1500,
						       .rate_bps = 10000000 };
	struct mps_config ccfg = { .seed = seed, .nlocal_addrs = 1, .checksum = true },
			  scfg = { .seed = seed + 1 };
	struct mps_sim_stats ss;

	scfg.trace = rst_watch_hook;
	scfg.trace_ctx = rw;
	addr_at(&ccfg.local_addrs[0], 2, 1, 0);
	jworld_init(w, &ccfg, &scfg);
	two_subflows(w, c, s);
	CU_ASSERT_EQUAL(mps_sim_set_path(w->sim, w->p1, &slow1), 0);
	CU_ASSERT_EQUAL(mps_sim_set_path(w->sim, w->p2, &slow2), 0);
	hook_done = false;
	rewrite_path = path;
	stream_to(w, *c, *s, 4 << 20, rewrite_once);
	CU_ASSERT_TRUE(hook_done);
	mps_sim_get_stats(w->sim, &ss);
	CU_ASSERT_EQUAL(ss.rewritten, 1);
}

/*
 * With checksums, a middlebox on path 2 rewrites one byte of the join's
 * data. The server resets only that subflow, with MP_TCPRST 6 and MP_FAIL
 * naming the mapping (RFC 8684 §3.7), delivers nothing of it; the client
 * reinjects the subflow's data on the initial one, opens the join again a
 * second later, and the 4 MiB arrive intact. No connection is reset.
 */
static void checksum_join_rewrite_run(void)
{
	struct rst_watch rw = { 0 };
	const struct mps_event *ev;
	struct mps_conn *c, *s;
	struct jworld w;

	checksum_rewrite_stream(&w, &c, &s, &rw, 43, 2);
	/* The server: one failure, one RST with MP_TCPRST 6 and MP_FAIL, the join down. */
	CU_ASSERT_EQUAL(mps_stack_counter(w.st[1], MPS_CNT_IN_DSS_CSUM), 1);
	CU_ASSERT_EQUAL(mps_stack_counter(w.st[1], MPS_CNT_OUT_MP_FAIL), 1);
	CU_ASSERT_EQUAL(rw.middlebox, 1);
	CU_ASSERT_EQUAL(rw.with_fc, 0);
	CU_ASSERT(rw.fail_dsn > 512 << 10);
	ev = find_ev(&w, 1, MPS_EV_MP_FAIL, -1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
	CU_ASSERT_EQUAL(ev->reason, MPS_MP_FAIL_SF_RESET);
	ev = find_ev(&w, 1, MPS_EV_SUBFLOW_DOWN, -1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
	CU_ASSERT_EQUAL(ev->reason, MPS_SF_DOWN_CHECKSUM);
	/* The client: the join reset by the peer, its data reinjected, the join opened again. */
	ev = find_ev(&w, 0, MPS_EV_SUBFLOW_DOWN, 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
	CU_ASSERT_EQUAL(ev->reason, MPS_SF_DOWN_RST);
	CU_ASSERT(mps_stack_counter(w.st[0], MPS_CNT_REINJECTED) > 0);
	CU_ASSERT_EQUAL(mps_stack_counter(w.st[0], MPS_CNT_JOIN_RETRY), 1);
	/* The initial subflow, the join, the join again; nothing else went down. */
	CU_ASSERT_EQUAL(count_ev(&w, 0, MPS_EV_SUBFLOW_UP), 3);
	CU_ASSERT_EQUAL(count_ev(&w, 0, MPS_EV_SUBFLOW_DOWN), 1);
	CU_ASSERT_EQUAL(count_ev(&w, 1, MPS_EV_SUBFLOW_DOWN), 1);
	CU_ASSERT(sf_sent(c, 1) > 100000); /* the new join carried data */
	CU_ASSERT_EQUAL(mps_stack_counter(w.st[0], MPS_CNT_IN_DSS_CSUM), 0);
	CU_ASSERT_PTR_NULL(find_ev(&w, 0, MPS_EV_CONN_RESET, -1));
	CU_ASSERT_PTR_NULL(find_ev(&w, 1, MPS_EV_CONN_RESET, -1));
	close_all(&w, c, s);
	jworld_free(&w);
}

static void test_checksum_join_rewrite(void)
{
	checksum_join_rewrite_run();
}

/* The same over IPv6. */
static void test_checksum_join_rewrite_ipv6(void)
{
	fam = 6;
	checksum_join_rewrite_run();
	fam = 4;
}

/*
 * The same failure on the initial subflow while the join works: its
 * mapping was held, nothing of it delivered, so the server resets only the
 * initial subflow (MP_TCPRST 6 and MP_FAIL, no MP_FASTCLOSE); the client
 * reinjects its data on the join, and the 4 MiB arrive intact.
 */
static void test_checksum_initial_rewrite(void)
{
	struct rst_watch rw = { 0 };
	const struct mps_event *ev;
	struct mps_conn *c, *s;
	struct jworld w;

	checksum_rewrite_stream(&w, &c, &s, &rw, 51, 1);
	CU_ASSERT_EQUAL(mps_stack_counter(w.st[1], MPS_CNT_IN_DSS_CSUM), 1);
	CU_ASSERT_EQUAL(rw.middlebox, 1);
	CU_ASSERT_EQUAL(rw.with_fc, 0);
	ev = find_ev(&w, 1, MPS_EV_MP_FAIL, -1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
	CU_ASSERT_EQUAL(ev->reason, MPS_MP_FAIL_SF_RESET);
	ev = nth_ev(&w, 1, MPS_EV_SUBFLOW_DOWN, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
	CU_ASSERT_EQUAL(ev->subflow_id, 0);
	CU_ASSERT_EQUAL(ev->reason, MPS_SF_DOWN_CHECKSUM);
	ev = nth_ev(&w, 0, MPS_EV_SUBFLOW_DOWN, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
	CU_ASSERT_EQUAL(ev->subflow_id, 0);
	CU_ASSERT_EQUAL(ev->reason, MPS_SF_DOWN_RST);
	CU_ASSERT(mps_stack_counter(w.st[0], MPS_CNT_REINJECTED) > 0);
	CU_ASSERT_PTR_NULL(find_ev(&w, 0, MPS_EV_CONN_RESET, -1));
	CU_ASSERT_PTR_NULL(find_ev(&w, 1, MPS_EV_CONN_RESET, -1));
	close_all(&w, c, s);
	jworld_free(&w);
}

/*
 * A receiver that reads slowly (3000 bytes every 5 ms into a 32 KiB
 * buffer) over two subflows, path 1 lossy: 1 MiB arrives intact and both
 * subflows carry data. Returns the simulated time it took.
 */
static uint64_t slow_reader_run(bool csum)
{
	static const struct mps_sim_link_cfg lossy = { .delay_us = 10000,
						       .loss_ppm = 30000,
						       .mtu = 1500 };
	struct mps_config ccfg = { .seed = 53, .nlocal_addrs = 1, .checksum = csum },
			  scfg = { .seed = 54, .rcvbuf = 32768 };
	uint64_t start, took;
	struct mps_conn *c, *s;
	struct mps_conn_info ci;
	struct jworld w;

	addr_at(&ccfg.local_addrs[0], 2, 1, 0);
	jworld_init(&w, &ccfg, &scfg);
	two_subflows(&w, &c, &s);
	CU_ASSERT_EQUAL(mps_conn_info(s, &ci), 0);
	CU_ASSERT_EQUAL(ci.checksum, csum);
	CU_ASSERT_EQUAL(mps_sim_set_path(w.sim, w.p1, &lossy), 0);
	start = w.now;
	move_slow_reader(&w, c, s, 1 << 20);
	CU_ASSERT(sf_sent(c, 0) > 50000);
	CU_ASSERT(sf_sent(c, 1) > 50000);
	CU_ASSERT_EQUAL(mps_stack_counter(w.st[1], MPS_CNT_IN_DSS_CSUM), 0);
	took = w.now - start;
	close_all(&w, c, s);
	jworld_free(&w);
	return took;
}

/*
 * With checksums, verified mappings wait for room there and go on as the
 * reader frees it: the transfer takes at most a quarter longer than the
 * same run without checksums (5.65 s against 5.60 s when written).
 */
static void test_checksum_slow_reader(void)
{
	uint64_t plain = slow_reader_run(false), csum = slow_reader_run(true);

	CU_ASSERT(csum * 4 <= plain * 5);
}

static struct mps_conn *prio_client; /* the client of test_backup_switch */
static uint64_t prio_t0, prio_on_sent, prio_off_sent, prio_on_at;
static int prio_step;

static uint64_t sf_sent_at(struct mps_conn *c, unsigned int idx)
{
	struct mps_subflow_info fi;

	return mps_subflow_info(c, idx, &fi) == 0 ? fi.bytes_sent : 0;
}

/*
 * The client asks the server, mid-download, to use the join as a backup
 * (300 ms in), then as a regular subflow again (1.3 s in). The server's
 * bytes sent on the join are read 100 ms after each switch, once the
 * MP_PRIO has arrived and what was in flight has been acknowledged.
 */
static void prio_switch_hook(struct jworld *w, struct mps_conn *srv, uint64_t sent)
{
	struct mps_subflow_info fi;

	(void)sent;
	if (!prio_t0)
		prio_t0 = w->now;
	if (prio_step == 0 && w->now >= prio_t0 + 300000) {
		CU_ASSERT_EQUAL(mps_set_backup(prio_client, 1, true), 0);
		CU_ASSERT_EQUAL(mps_set_backup(prio_client, 1, true), 0); /* already so: nothing */
		CU_ASSERT_EQUAL(mps_subflow_info(prio_client, 1, &fi), 0);
		CU_ASSERT_TRUE(fi.backup);
		CU_ASSERT_TRUE(fi.backup_local);
		CU_ASSERT_FALSE(fi.backup_peer);
		prio_on_at = w->now;
		prio_step++;
	} else if (prio_step == 1 && w->now >= prio_on_at + 100000) {
		prio_on_sent = sf_sent_at(srv, 1);
		CU_ASSERT_EQUAL(mps_subflow_info(srv, 1, &fi), 0);
		CU_ASSERT_TRUE(fi.backup);
		CU_ASSERT_TRUE(fi.backup_peer);
		CU_ASSERT_FALSE(fi.backup_local);
		prio_step++;
	} else if (prio_step == 2 && w->now >= prio_t0 + 1300000) {
		prio_off_sent = sf_sent_at(srv, 1);
		CU_ASSERT_EQUAL(mps_set_backup(prio_client, 1, false), 0);
		prio_step++;
	} else if (prio_step == 3 && w->now >= prio_t0 + 1400000) {
		CU_ASSERT_EQUAL(mps_subflow_info(srv, 1, &fi), 0);
		CU_ASSERT_FALSE(fi.backup);
		prio_step++;
	}
}

/*
 * MP_PRIO both ways (RFC 8684 §3.3.8): mps_set_backup() on the client
 * sends MP_PRIO on the join; the server, sending 6 MiB, stops giving that
 * subflow new data while the initial one works, and uses it again once the
 * client switches it back. The data arrives intact; events on both sides.
 */
static void test_backup_switch(void)
{
	static const struct mps_sim_link_cfg slow1 = { .delay_us = 10000,
						       .mtu = 1500,
						       .rate_bps = 10000000 };
	static const struct mps_sim_link_cfg slow2 = { .delay_us = 20000,
						       .mtu = 1500,
						       .rate_bps = 10000000 };
	struct mps_config ccfg = { .seed = 45, .nlocal_addrs = 1 }, scfg = { .seed = 46 };
	struct mps_subflow_info fi;
	const struct mps_event *ev;
	struct mps_conn *c, *s;
	uint64_t before;
	struct jworld w;

	addr_at(&ccfg.local_addrs[0], 2, 1, 0);
	jworld_init(&w, &ccfg, &scfg);
	two_subflows(&w, &c, &s);
	CU_ASSERT_EQUAL(mps_sim_set_path(w.sim, w.p1, &slow1), 0);
	CU_ASSERT_EQUAL(mps_sim_set_path(w.sim, w.p2, &slow2), 0);
	CU_ASSERT_EQUAL(mps_set_backup(c, 5, true), -ENOENT);
	/* The other way, on the initial subflow: the server's MP_PRIO reaches the client. */
	CU_ASSERT_EQUAL(mps_set_backup(s, 0, true), 0);
	run_for(&w, 100000);
	ev = find_ev(&w, 0, MPS_EV_SUBFLOW_PRIO, -1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
	CU_ASSERT_EQUAL(ev->reason, 1);
	CU_ASSERT_EQUAL(ev->subflow_id, 0);
	CU_ASSERT_EQUAL(mps_subflow_info(c, 0, &fi), 0);
	CU_ASSERT_TRUE(fi.backup_peer);
	CU_ASSERT_FALSE(fi.backup_local);
	CU_ASSERT_EQUAL(mps_set_backup(s, 0, false), 0);
	run_for(&w, 100000);
	CU_ASSERT_EQUAL(mps_subflow_info(c, 0, &fi), 0);
	CU_ASSERT_FALSE(fi.backup);
	CU_ASSERT_EQUAL(count_ev(&w, 0, MPS_EV_SUBFLOW_PRIO), 2);
	before = sf_sent_at(s, 1);
	prio_client = c;
	prio_t0 = prio_on_sent = prio_off_sent = prio_on_at = 0;
	prio_step = 0;
	stream_to(&w, s, c, 6 << 20, prio_switch_hook);
	CU_ASSERT_EQUAL(prio_step, 4);
	/* Before the switch the join carried data; while a backup, nothing new. */
	CU_ASSERT(prio_on_sent - before > 100000);
	CU_ASSERT_EQUAL(prio_off_sent, prio_on_sent);
	/* Back to regular: it carries data again. */
	CU_ASSERT(sf_sent_at(s, 1) - prio_off_sent > 100000);
	/* Events: ours on the client, the peer's on the server, both ways. */
	ev = find_ev(&w, 0, MPS_EV_SUBFLOW_PRIO_OUT, -1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
	CU_ASSERT_EQUAL(ev->reason, 0);
	CU_ASSERT_EQUAL(count_ev(&w, 0, MPS_EV_SUBFLOW_PRIO_OUT), 2);
	CU_ASSERT_EQUAL(count_ev(&w, 1, MPS_EV_SUBFLOW_PRIO), 2);
	ev = find_ev(&w, 1, MPS_EV_SUBFLOW_PRIO, -1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
	CU_ASSERT_EQUAL(ev->reason, 0);
	close_all(&w, c, s);
	CU_ASSERT_EQUAL(mps_stack_counter(w.st[0], MPS_CNT_IN_NO_DSS), 0);
	jworld_free(&w);
}

/*
 * With the initial subflow gone, connection-level options ride a join:
 * the server's ADD_ADDR, never echoed over the cut initial path, is sent
 * again on a join and echoed there; then the client's mps_abort() puts
 * MP_FASTCLOSE on the join's RST, and the server is reset by it.
 */
static void test_initial_gone_options(void)
{
	static const struct mps_sim_link_cfg cut = { .delay_us = 10000, .loss_ppm = 1000000 };
	struct mps_config ccfg = { .seed = 47 }, scfg = { .seed = 48, .nlocal_addrs = 1 };
	struct rst_watch crw = { 0 }, srw = { 0 };
	const struct mps_event *ev;
	struct mps_conn *c = NULL, *s = NULL;
	struct jworld w;
	long steps;

	ccfg.trace = rst_watch_hook;
	ccfg.trace_ctx = &crw;
	scfg.trace = rst_watch_hook;
	scfg.trace_ctx = &srw;
	addr_at(&scfg.local_addrs[0], 2, 2, 0);
	jworld_init(&w, &ccfg, &scfg);
	CU_ASSERT_EQUAL_FATAL(mps_connect(w.st[0], &w.c1, &w.srv, &c), 0);
	for (steps = 0; steps < 1000 && !s; steps++) {
		jstep(&w);
		s = mps_accept(w.st[1]);
	}
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	/* The ADD_ADDR is on its way; the initial path is cut for good after it. */
	CU_ASSERT_EQUAL(mps_sim_set_path(w.sim, w.p1, &cut), 0);
	run_for(&w, 300000);
	CU_ASSERT_EQUAL(count_ev(&w, 0, MPS_EV_ADD_ADDR_IN), 1);
	CU_ASSERT_EQUAL(count_ev(&w, 1, MPS_EV_ADD_ADDR_ECHOED), 0);
	/* The verified ADD_ADDR showed the client the server has its key: it joined to it. */
	CU_ASSERT_EQUAL_FATAL(count_ev(&w, 0, MPS_EV_SUBFLOW_UP), 2);
	/* The server withdraws the initial subflow's address: both ends lose that subflow. */
	CU_ASSERT_EQUAL(mps_remove_addr(s, &w.srv), 0);
	run_for(&w, 4000000);
	ev = find_ev(&w, 1, MPS_EV_SUBFLOW_DOWN, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
	CU_ASSERT_EQUAL(ev->reason, MPS_SF_DOWN_REMOVED);
	ev = find_ev(&w, 0, MPS_EV_SUBFLOW_DOWN, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
	CU_ASSERT_EQUAL(ev->reason, MPS_SF_DOWN_REMOVED);
	/* The announcement went again on the join and was echoed; not lost. */
	CU_ASSERT(srw.add_addr_on >= 1);
	CU_ASSERT_EQUAL(count_ev(&w, 1, MPS_EV_ADD_ADDR_ECHOED), 1);
	CU_ASSERT_EQUAL(count_ev(&w, 1, MPS_EV_ADD_ADDR_LOST), 0);
	/* Data still flows, over the join. */
	CU_ASSERT_EQUAL(move_data(&w, c, s, 100000, false), 100000);
	CU_ASSERT_PTR_NULL(find_ev(&w, 0, MPS_EV_CONN_RESET, -1));
	/* The client aborts: MP_FASTCLOSE on the join's RST resets the server by it. */
	mps_abort(c);
	run_for(&w, 1000000);
	CU_ASSERT(crw.with_fc >= 1);
	ev = find_ev(&w, 1, MPS_EV_CONN_RESET, -1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
	CU_ASSERT_EQUAL(ev->reason, MPS_RST_FASTCLOSE);
	mps_close(s);
	run_for(&w, 1000000);
	CU_ASSERT_EQUAL(mps_next_wakeup(w.st[0]), MPS_TIME_NEVER);
	CU_ASSERT_EQUAL(mps_next_wakeup(w.st[1]), MPS_TIME_NEVER);
	jworld_free(&w);
}

/* ADD_ADDRs a stack sent, with their ports, seen by its trace hook. */
struct addr_watch {
	unsigned int with_port, without_port;
	unsigned int with_ts; /* announcements beside TCP timestamps */
	uint16_t port;
};

static void addr_watch_hook(void *ctx, const uint8_t *pkt, size_t len, int out, int subflow,
			    uint64_t now)
{
	struct addr_watch *aw = ctx;
	struct mps_tcpopts t;
	enum mps_seg_err serr;
	enum mps_opt_err oerr;
	struct mps_seg seg;
	struct mps_opt o;
	int i;

	(void)subflow;
	(void)now;
	if (!out || mps_seg_parse(pkt, len, 0, &seg, &serr) != 0)
		return;
	mps_tcpopt_walk(seg.opts, seg.opts_len, &t);
	for (i = 0; i < t.nmptcp; i++) {
		if (mps_opt_parse(seg.opts + t.mptcp[i].off, t.mptcp[i].len,
				  seg.flags | (seg.payload_len ? MPS_SEG_DATA : 0), &o,
				  &oerr) != 0 ||
		    o.subtype != MPS_MPTCP_SUB_ADD_ADDR || o.add_addr.echo)
			continue;
		aw->with_ts += (t.present & MPS_TCPOPTS_TS) != 0;
		if (o.add_addr.has_port) {
			aw->with_port++;
			aw->port = o.add_addr.port;
		} else {
			aw->without_port++;
		}
	}
}

/*
 * ADD_ADDR with a port (RFC 8684 §3.4.1): the server's second address is
 * served on port 6000, not the connection's 5002, so it is announced with
 * that port (the HMAC covering it); the client joins to 10.0.2.2:6000, the
 * server takes the join there, and data flows over both subflows. A join
 * to that address at yet another port is refused. In IPv6 the option takes
 * 30 bytes, which do not fit beside timestamps: that one ACK goes without
 * them, as Linux's add_addr_v6_port_drop_ts does.
 */
static void add_addr_port_run(void)
{
	struct mps_config ccfg = { .seed = 49 }, scfg = { .seed = 50, .nlocal_addrs = 1 };
	struct addr_watch aw = { 0 };
	struct mps_subflow_info fi;
	struct mps_conn_info ci;
	struct mps_conn *c, *s;
	struct mps_addr other;
	struct jworld w;

	scfg.trace = addr_watch_hook;
	scfg.trace_ctx = &aw;
	addr_at(&scfg.local_addrs[0], 2, 2, 6000);
	jworld_init(&w, &ccfg, &scfg);
	connect_both(&w, &c, &s);
	run_for(&w, 1000000);
	CU_ASSERT_EQUAL(aw.with_port, 1);
	CU_ASSERT_EQUAL(aw.without_port, 0);
	CU_ASSERT_EQUAL(aw.with_ts, fam == 4 ? 1 : 0);
	CU_ASSERT_EQUAL(aw.port, 6000);
	CU_ASSERT_EQUAL(count_ev(&w, 1, MPS_EV_ADD_ADDR_ECHOED), 1);
	CU_ASSERT_EQUAL(mps_stack_counter(w.st[0], MPS_CNT_IN_ADD_ADDR_HMAC), 0);
	CU_ASSERT_EQUAL(mps_conn_info(c, &ci), 0);
	CU_ASSERT_EQUAL_FATAL(ci.nsubflows, 2);
	CU_ASSERT_EQUAL_FATAL(mps_subflow_info(c, 1, &fi), 0);
	CU_ASSERT_TRUE(fi.up);
	CU_ASSERT_EQUAL(fi.remote.port, 6000);
	CU_ASSERT_EQUAL(memcmp(fi.remote.addr, w.srv2.addr, fam == 4 ? 4 : 16), 0);
	CU_ASSERT_EQUAL_FATAL(mps_subflow_info(s, 1, &fi), 0);
	CU_ASSERT_EQUAL(fi.local.port, 6000);
	CU_ASSERT_EQUAL(mps_stack_counter(w.st[1], MPS_CNT_IN_JOIN_REFUSED), 0);
	/* Another port of that address is not served: refused. */
	other = w.srv2;
	other.port = 7000;
	CU_ASSERT_EQUAL(mps_join(c, &w.c1, &other, false), 0);
	run_for(&w, 500000);
	CU_ASSERT_EQUAL(mps_stack_counter(w.st[1], MPS_CNT_IN_JOIN_REFUSED), 1);
	stream_to(&w, c, s, 1 << 20, NULL);
	CU_ASSERT(sf_sent(c, 1) > 50000);
	close_all(&w, c, s);
	jworld_free(&w);
}

static void test_add_addr_port(void)
{
	add_addr_port_run();
}

static void test_add_addr_port_ipv6(void)
{
	fam = 6;
	add_addr_port_run();
	fam = 4;
}

/* What the receiving server's trace sees on its joins. */
struct sack_watch {
	uint64_t join_sacks;	/* our ACKs on a join carrying SACK blocks */
	uint64_t join_syn_perm; /* join SYNs and SYN/ACKs offering SACK */
	uint64_t initial_sacks; /* the same on the initial subflow */
};

static void sack_watch_hook(void *ctx, const uint8_t *pkt, size_t len, int out, int subflow,
			    uint64_t now)
{
	struct sack_watch *sw = ctx;
	struct mps_tcpopts t;
	enum mps_seg_err serr;
	struct mps_seg seg;
	bool join;

	(void)now;
	(void)subflow;
	if (len < 20 || mps_seg_parse(pkt, len, 0, &seg, &serr) != 0)
		return;
	/* The join runs between the client's second address (10.0.2.1) and the server. */
	join = pkt[out ? 18 : 14] == 2;
	mps_tcpopt_walk(seg.opts, seg.opts_len, &t);
	if ((seg.flags & MPS_TCP_SYN) && (t.present & MPS_TCPOPTS_SACK_PERM) && join)
		sw->join_syn_perm++;
	if (!out || !t.nsack)
		return;
	if (join)
		sw->join_sacks++;
	else
		sw->initial_sacks++;
}

/*
 * The testbed's two uplinks: 20 Mbit/s each, 30 and 60 ms of RTT, behind
 * 50 ms drop-tail buffers; both ends with receive buffers of rcvbuf, so
 * that the flight outgrows the buffers and loss comes in bursts. Returns
 * the simulated goodput in Mbit/s.
 */
static double deep_window_run(uint32_t rcvbuf, uint64_t total, struct sack_watch *sw)
{
	static const struct mps_sim_link_cfg q1 = {
		.delay_us = 15000, .mtu = 1500, .rate_bps = 20000000, .buffer_us = 50000
	};
	static const struct mps_sim_link_cfg q2 = {
		.delay_us = 30000, .mtu = 1500, .rate_bps = 20000000, .buffer_us = 50000
	};
	struct mps_config ccfg = { .seed = 31, .nlocal_addrs = 1, .rcvbuf = rcvbuf }, scfg = {
		.seed = 32, .rcvbuf = rcvbuf, .trace = sack_watch_hook, .trace_ctx = sw
	};
	struct mps_sim_stats ss;
	struct mps_conn *c, *s;
	struct jworld w;
	uint64_t t0, us;

	addr_at(&ccfg.local_addrs[0], 2, 1, 0);
	jworld_init(&w, &ccfg, &scfg);
	two_subflows(&w, &c, &s);
	CU_ASSERT_EQUAL(mps_sim_set_path(w.sim, w.p1, &q1), 0);
	CU_ASSERT_EQUAL(mps_sim_set_path(w.sim, w.p2, &q2), 0);
	t0 = w.now;
	stream_to(&w, c, s, total, NULL);
	us = w.now - t0;
	mps_sim_get_stats(w.sim, &ss);
	/* The buffers overflowed: this is loss recovery, not a clean pipe. */
	CU_ASSERT(ss.queue_full > 100);
	/* Both subflows carried a fair share. */
	CU_ASSERT(sf_sent(c, 0) > total / 3);
	CU_ASSERT(sf_sent(c, 1) > total / 3);
	/* Every loss was repaired by SACK recovery, none by a timeout or a refusal. */
	CU_ASSERT_EQUAL(mps_stack_counter(w.st[0], MPS_CNT_RETRANS_TIMEOUT), 0);
	CU_ASSERT_EQUAL(mps_stack_counter(w.st[0], MPS_CNT_DATA_RTO), 0);
	CU_ASSERT_EQUAL(mps_stack_counter(w.st[1], MPS_CNT_IN_RCVBUF_FULL), 0);
	close_all(&w, c, s);
	jworld_free(&w);
	return total * 8.0 / (double)us;
}

/*
 * Receive windows larger than the paths hold. Two faults made this collapse
 * to a few Mbit/s with stalls: joins neither offered nor sent SACK, so a
 * burst of drops on a join was repaired one segment per RTT; and the
 * receiver's out-of-order queues held at most 512 segments, fewer than a
 * window, so a subflow's in-order segment whose data lay ahead at the
 * connection level was refused while the hole it waited for sat behind it.
 * The simulated clock makes the goodput exact, not a timing.
 */
static void test_deep_window_drops(void)
{
	struct sack_watch sw = { 0 };
	double g;

	g = deep_window_run(1 << 20, 32 << 20, &sw);
	CU_ASSERT(g > 32.0); /* of 40 Mbit/s; 34.96 when written */
	CU_ASSERT(sw.join_syn_perm >= 2);
	CU_ASSERT(sw.join_sacks > 10);
	CU_ASSERT(sw.initial_sacks > 10);
	memset(&sw, 0, sizeof(sw));
	g = deep_window_run(4 << 20, 32 << 20, &sw);
	CU_ASSERT(g > 32.0); /* 35.43 when written */
}

/* The handover run: when the initial path went down and up, and the longest wait for data. */
static uint64_t ho_t0, ho_last_acked, ho_last_prog, ho_max_stall;
static bool ho_down, ho_up;

static const struct mps_sim_link_cfg ho_q1 = {
	.delay_us = 15000, .mtu = 1500, .rate_bps = 20000000, .buffer_us = 50000
};

/* Path 1 down from 3 s to 5 s of the transfer; the acknowledged data's longest pause. */
static void ho_hook(struct jworld *w, struct mps_conn *c, uint64_t sent)
{
	struct mps_sim_link_cfg cut = ho_q1;
	struct mps_conn_info ci;

	(void)sent;
	cut.loss_ppm = 1000000;
	CU_ASSERT_EQUAL(mps_conn_info(c, &ci), 0);
	if (ci.bytes_acked > ho_last_acked) {
		if (ho_last_prog && w->now - ho_last_prog > ho_max_stall)
			ho_max_stall = w->now - ho_last_prog;
		ho_last_acked = ci.bytes_acked;
		ho_last_prog = w->now;
	}
	if (!ho_down && w->now >= ho_t0 + 3000000) {
		ho_down = true;
		CU_ASSERT_EQUAL(mps_sim_set_path(w->sim, w->p1, &cut), 0);
	}
	if (!ho_up && w->now >= ho_t0 + 5000000) {
		ho_up = true;
		CU_ASSERT_EQUAL(mps_sim_set_path(w->sim, w->p1, &ho_q1), 0);
	}
}

/*
 * A handover with windows larger than the paths: the testbed's two 20
 * Mbit/s uplinks (50 ms buffers), 4 MiB buffers, 40 MiB uploaded; the
 * initial subflow's path is down for 2 s. Two faults made this stall for
 * many seconds and sometimes reset the connection (testbed_exp.sh's
 * bundled handover): a recovery entered before any SACK block came ran
 * as NewReno, inflating the window by a segment per duplicate ACK, so the
 * reopened subflow's flight doubled itself into the queue; and after a
 * timeout, the duplicate ACKs of the go-back-N resends started such a
 * recovery again. Now the data keeps coming (no pause of a second), the
 * dead subflow is given up and the pair reopened when the path returns.
 */
static void test_handover_deep_window(void)
{
	static const struct mps_sim_link_cfg q2 = {
		.delay_us = 30000, .mtu = 1500, .rate_bps = 20000000, .buffer_us = 50000
	};
	struct mps_config ccfg = { .seed = 31, .nlocal_addrs = 1, .rcvbuf_max = 4 << 20 },
			  scfg = { .seed = 32, .rcvbuf_max = 4 << 20 };
	struct mps_conn *c, *s;
	struct jworld w;

	addr_at(&ccfg.local_addrs[0], 2, 1, 0);
	jworld_init(&w, &ccfg, &scfg);
	two_subflows(&w, &c, &s);
	CU_ASSERT_EQUAL(mps_sim_set_path(w.sim, w.p1, &ho_q1), 0);
	CU_ASSERT_EQUAL(mps_sim_set_path(w.sim, w.p2, &q2), 0);
	ho_t0 = w.now;
	ho_last_acked = ho_last_prog = ho_max_stall = 0;
	ho_down = ho_up = false;
	stream_to(&w, c, s, 40 << 20, ho_hook);
	CU_ASSERT_TRUE(ho_up);
	/* 40 MiB at up to 40 Mbit/s with one path out for 2 s: 15.0 s when written. */
	CU_ASSERT(w.now - ho_t0 < 20000000);
	CU_ASSERT(ho_max_stall < 1000000); /* 0.195 s when written */
	CU_ASSERT_PTR_NULL(find_ev(&w, 0, MPS_EV_CONN_RESET, -1));
	CU_ASSERT_PTR_NOT_NULL(find_ev(&w, 0, MPS_EV_JOIN_RETRY, -1));
	close_all(&w, c, s);
	jworld_free(&w);
}

/*
 * A connection given back with mps_close() whose peer never closes: our
 * FIN and DATA_FIN are acknowledged, both subflows wait in FIN-WAIT-2, and
 * after 60 s (Linux's tcp_fin_timeout) they go quietly, the connection with
 * them, so the stack holds nothing more. The peer still has its end.
 */
static void test_orphan_fin_wait2(void)
{
	struct mps_config ccfg = { .seed = 71, .nlocal_addrs = 1 }, scfg = { .seed = 72 };
	const struct mps_event *closed;
	struct mps_conn_info si;
	struct mps_conn *c, *s;
	struct jworld w;
	uint64_t closed_at;

	addr_at(&ccfg.local_addrs[0], 2, 1, 0);
	jworld_init(&w, &ccfg, &scfg);
	two_subflows(&w, &c, &s);
	CU_ASSERT_EQUAL(move_data(&w, c, s, 100000, false), 100000);
	mps_close(c);
	closed_at = w.now;
	run_for(&w, 59000000);
	CU_ASSERT_PTR_NULL(find_ev(&w, 0, MPS_EV_CONN_CLOSED, -1));
	CU_ASSERT_NOT_EQUAL(mps_next_wakeup(w.st[0]), MPS_TIME_NEVER);
	run_for(&w, 2000000);
	closed = find_ev(&w, 0, MPS_EV_CONN_CLOSED, -1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(closed);
	CU_ASSERT(closed->time >= closed_at + 60000000 && closed->time < closed_at + 61000000);
	CU_ASSERT_PTR_NOT_NULL(find_ev(&w, 0, MPS_EV_SUBFLOW_DOWN, 1));
	run_for(&w, 1000000);
	CU_ASSERT_EQUAL(mps_next_wakeup(w.st[0]), MPS_TIME_NEVER);
	/* The peer saw our DATA_FIN and still holds its half. */
	CU_ASSERT_EQUAL(mps_conn_info(s, &si), 0);
	CU_ASSERT_EQUAL(mps_recv(s, (uint8_t[1]){ 0 }, 1), 0);
	mps_abort(s);
	jworld_free(&w);
}

/*
 * mps_remove_addr() of an address that only mps_join() used (no configured
 * local address): it is withdrawn under the ID its join carried, REMOVE_ADDR
 * reaches the peer and the join goes on both sides; a later join from it
 * gets a new ID and carries data again (the agent's handover without a link
 * hook does this on real nodes).
 */
static void test_remove_join_only_addr(void)
{
	struct mps_config ccfg = { .seed = 73, .max_subflows = 3 }, scfg = { .seed = 74 };
	struct mps_subflow_info fi;
	struct mps_conn_info ci;
	struct mps_conn *c, *s;
	struct jworld w;
	const struct mps_event *rm;

	jworld_init(&w, &ccfg, &scfg);
	connect_both(&w, &c, &s);
	CU_ASSERT_EQUAL_FATAL(mps_join(c, &w.c2, &w.srv, false), 0);
	run_for(&w, 200000);
	CU_ASSERT_EQUAL_FATAL(mps_subflow_info(c, 1, &fi), 0);
	CU_ASSERT_TRUE_FATAL(fi.up);
	CU_ASSERT_EQUAL(fi.id, 1);
	CU_ASSERT_EQUAL(mps_remove_addr(c, &w.c2), 0);
	run_for(&w, 300000);
	rm = find_ev(&w, 0, MPS_EV_REMOVE_ADDR_OUT, -1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(rm);
	CU_ASSERT_EQUAL(rm->reason, 1); /* the ID the join carried */
	CU_ASSERT_PTR_NOT_NULL(find_ev(&w, 0, MPS_EV_SUBFLOW_DOWN, 1));
	/* The peer closed the join for it (REMOVE_ADDR on path 1 is there before the RST). */
	rm = find_ev(&w, 1, MPS_EV_SUBFLOW_DOWN, -1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(rm);
	CU_ASSERT_EQUAL(rm->reason, MPS_SF_DOWN_REMOVED);
	CU_ASSERT_EQUAL(mps_conn_info(c, &ci), 0);
	CU_ASSERT_EQUAL(ci.nsubflows, 1);
	/* Data still flows over the initial subflow; then the address joins again. */
	CU_ASSERT_EQUAL(move_data(&w, c, s, 100000, false), 100000);
	CU_ASSERT_EQUAL_FATAL(mps_join(c, &w.c2, &w.srv, false), 0);
	run_for(&w, 200000);
	CU_ASSERT_EQUAL(mps_conn_info(c, &ci), 0);
	CU_ASSERT_EQUAL_FATAL(ci.nsubflows, 2);
	CU_ASSERT_EQUAL_FATAL(mps_subflow_info(c, 1, &fi), 0);
	CU_ASSERT_TRUE(fi.up);
	CU_ASSERT_NOT_EQUAL(fi.id, 1);
	CU_ASSERT_EQUAL(memcmp(fi.local.addr, w.c2.addr, 4), 0);
	stream_to(&w, c, s, 1 << 20, NULL);
	CU_ASSERT(sf_sent(c, 1) > 100000);
	close_all(&w, c, s);
	jworld_free(&w);
}

static const struct fj_test tests[] = {
	{ "handover_deep_window", test_handover_deep_window },
	{ "orphan_fin_wait2", test_orphan_fin_wait2 },
	{ "remove_join_only_addr", test_remove_join_only_addr },
	{ "deep_window_drops", test_deep_window_drops },
	{ "two_path_lossy", test_two_path_lossy },
	{ "conn_window_two_subflows", test_conn_window_two_subflows },
	{ "data_level_retransmission", test_data_level_retransmission },
	{ "data_level_retransmission_chunk", test_data_level_retransmission_chunk },
	{ "fallback_after_resend", test_fallback_after_resend },
	{ "lia_shared_bottleneck", test_lia_shared_bottleneck },
	{ "initial_path_dies", test_initial_path_dies },
	{ "initial_addr_removed", test_initial_addr_removed },
	{ "initial_path_returns", test_initial_path_returns },
	{ "join_retry_given_up", test_join_retry_given_up },
	{ "join_retry_after_timeout", test_join_retry_after_timeout },
	{ "path_failure_reinjection", test_path_failure_reinjection },
	{ "backup_after_failure", test_backup_after_failure },
	{ "pm_fullmesh", test_pm_fullmesh },
	{ "pm_fullmesh_ipv6", test_pm_fullmesh_ipv6 },
	{ "add_addr_retransmit", test_add_addr_retransmit },
	{ "two_paths", test_join_two_paths },
	{ "responder_checks", test_join_responder_checks },
	{ "initiator_bad_hmac", test_join_initiator_bad_hmac },
	{ "reassembly_across_subflows", test_reassembly_across_subflows },
	{ "checksum_two_paths", test_checksum_two_paths },
	{ "checksum_join_rewrite", test_checksum_join_rewrite },
	{ "checksum_join_rewrite_ipv6", test_checksum_join_rewrite_ipv6 },
	{ "backup_switch", test_backup_switch },
	{ "initial_gone_options", test_initial_gone_options },
	{ "add_addr_port", test_add_addr_port },
	{ "add_addr_port_ipv6", test_add_addr_port_ipv6 },
	{ "checksum_initial_rewrite", test_checksum_initial_rewrite },
	{ "checksum_slow_reader", test_checksum_slow_reader },
	{ NULL, NULL },
};

const struct fj_suite fj_suite_sim_join = { "sim_join", NULL, NULL, tests };
