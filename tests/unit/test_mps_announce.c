/*
 * mps_announce_addr(): one connection announces an address the stack's
 * configuration does not (the bundled responder does so for the probe's
 * ADD_ADDR check). Two stacks in memory (mps_pair.h).
 */
#include <errno.h>
#include <string.h>

#include "fj_test.h"
#include "mps.h"
#include "mps_pair.h"

static struct mps_addr v4(uint8_t last, uint16_t port)
{
	struct mps_addr a = { .family = 4, .port = port };

	a.addr[0] = 10;
	a.addr[3] = last;
	return a;
}

/* Counts the events of st of this type (and reason, unless reason < 0); pops them all. */
static unsigned int events(struct mps_stack *st, enum mps_event_type type, int reason)
{
	struct mps_event ev;
	unsigned int n = 0;

	while (mps_next_event(st, &ev) == 0)
		n += ev.type == type && (reason < 0 || ev.reason == reason);
	return n;
}

/* Announced, echoed, learnt by the client; asked again, nothing more goes out. */
static void test_announce(void)
{
	struct mps_addr a = v4(9, 0);
	struct mps_conn_info ci;
	struct pair p;
	struct mps_event ev;
	unsigned int out = 0, echoed = 0, in = 0;

	pair_up(&p);
	CU_ASSERT_EQUAL(mps_send(p.cc, "hello", 5), 5);
	pair_shuttle(&p);
	while (mps_next_event(p.s, &ev) == 0)
		;
	while (mps_next_event(p.c, &ev) == 0)
		;
	CU_ASSERT_EQUAL(mps_announce_addr(p.sc, &a), 0);
	pair_shuttle(&p);
	while (mps_next_event(p.s, &ev) == 0) {
		out += ev.type == MPS_EV_ADD_ADDR_OUT;
		echoed += ev.type == MPS_EV_ADD_ADDR_ECHOED;
	}
	while (mps_next_event(p.c, &ev) == 0)
		in += ev.type == MPS_EV_ADD_ADDR_IN;
	CU_ASSERT_EQUAL(out, 1);
	CU_ASSERT_EQUAL(echoed, 1);
	CU_ASSERT_EQUAL(in, 1);
	CU_ASSERT_EQUAL(mps_conn_info(p.cc, &ci), 0);
	CU_ASSERT_EQUAL(ci.nremote_addrs, 1);
	/* Already announced: 0, and no second ADD_ADDR. */
	CU_ASSERT_EQUAL(mps_announce_addr(p.sc, &a), 0);
	pair_shuttle(&p);
	CU_ASSERT_EQUAL(events(p.s, MPS_EV_ADD_ADDR_OUT, -1), 0);
	CU_ASSERT_EQUAL(mps_conn_info(p.cc, &ci), 0);
	CU_ASSERT_EQUAL(ci.nremote_addrs, 1);
	mps_stack_destroy(p.c);
	mps_stack_destroy(p.s);
}

/* Bad arguments, the connection's own address, a full table, a connection without MPTCP. */
static void test_announce_refused(void)
{
	struct mps_config cfg = { .seed = 7, .mptcp_disabled = true };
	struct mps_addr bad = v4(9, 0), a;
	struct mps_conn_info si;
	struct mps_stack *st;
	struct mps_conn *c;
	struct pair p;
	unsigned int i;
	int err;

	pair_up(&p);
	CU_ASSERT_EQUAL(mps_announce_addr(NULL, &bad), -EINVAL);
	CU_ASSERT_EQUAL(mps_announce_addr(p.sc, NULL), -EINVAL);
	bad.family = 5;
	CU_ASSERT_EQUAL(mps_announce_addr(p.sc, &bad), -EINVAL);
	CU_ASSERT_EQUAL(mps_conn_info(p.sc, &si), 0);
	CU_ASSERT_EQUAL(mps_announce_addr(p.sc, &pair_saddr), -EEXIST);
	for (i = 0; i < MPS_MAX_LOCAL_ADDRS; i++) {
		a = v4((uint8_t)(20 + i), 0);
		CU_ASSERT_EQUAL(mps_announce_addr(p.sc, &a), 0);
	}
	a = v4(40, 0);
	CU_ASSERT_EQUAL(mps_announce_addr(p.sc, &a), -ENOSPC);
	/* Withdrawn: not announced again. */
	a = v4(20, 0);
	CU_ASSERT_EQUAL(mps_remove_addr(p.sc, &a), 0);
	CU_ASSERT_EQUAL(mps_announce_addr(p.sc, &a), -ENOENT);
	mps_stack_destroy(p.c);
	mps_stack_destroy(p.s);
	/* A connection that is not MPTCP (nor established yet) announces nothing. */
	st = mps_stack_create(&cfg, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	CU_ASSERT_EQUAL_FATAL(mps_connect(st, &pair_caddr, &pair_saddr, &c), 0);
	a = v4(9, 0);
	CU_ASSERT_EQUAL(mps_announce_addr(c, &a), -ENOTCONN);
	mps_stack_destroy(st);
}

static const struct fj_test tests[] = {
	{ "announce", test_announce },
	{ "refused", test_announce_refused },
	{ NULL, NULL },
};

const struct fj_suite fj_suite_mps_announce = { "mps_announce", NULL, NULL, tests };
