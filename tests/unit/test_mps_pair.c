/*
 * The pair fixture (mps_pair.h): two stacks in memory and hand-made
 * segments. Holds no suite of its own.
 */
#include <string.h>

#include "fj_test.h"
#include "mps_opt.h"
#include "mps_pair.h"
#include "prot/wire.h"

const struct mps_addr pair_caddr = { .family = 4, .addr = { 10, 0, 0, 1 }, .port = 40000 };
const struct mps_addr pair_saddr = { .family = 4, .addr = { 10, 0, 0, 2 }, .port = 5002 };

void pair_shuttle(struct pair *p)
{
	uint8_t buf[2048];
	struct mps_seg seg;
	enum mps_seg_err err;
	int n, rounds;

	for (rounds = 0; rounds < 64; rounds++) {
		int moved = 0;

		while ((n = mps_output(p->c, p->now, buf, sizeof(buf))) > 0) {
			if (mps_seg_parse(buf, (size_t)n, 0, &seg, &err) == 0) {
				p->cseq = seg.seq + seg.payload_len + !!(seg.flags & 0x03);
				if (seg.flags & 0x10)
					p->sseq = seg.ack;
			}
			mps_input(p->s, buf, (size_t)n, p->now);
			moved = 1;
		}
		while ((n = mps_output(p->s, p->now, p->last_s_buf, sizeof(p->last_s_buf))) > 0) {
			mps_seg_parse(p->last_s_buf, (size_t)n, 0, &p->last_s, &err);
			mps_input(p->c, p->last_s_buf, (size_t)n, p->now);
			moved = 1;
		}
		if (!moved) {
			/* Let a delayed ACK (or anything else due within 100 ms) fire. */
			uint64_t t = mps_next_wakeup(p->c), u = mps_next_wakeup(p->s);

			t = u < t ? u : t;
			if (t == MPS_TIME_NEVER || t > p->now + 100000)
				break;
			if (t > p->now)
				p->now = t;
			continue;
		}
		p->now += 1000;
	}
}

void pair_up_cfg(struct pair *p, bool checksum)
{
	struct mps_config cfg = { .seed = 5, .checksum = checksum };
	int err;

	memset(p, 0, sizeof(*p));
	p->c = mps_stack_create(&cfg, &err);
	cfg.seed = 6;
	p->s = mps_stack_create(&cfg, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p->c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p->s);
	CU_ASSERT_EQUAL_FATAL(mps_listen(p->s, &pair_saddr), 0);
	CU_ASSERT_EQUAL_FATAL(mps_connect(p->c, &pair_caddr, &pair_saddr, &p->cc), 0);
	pair_shuttle(p);
	p->sc = mps_accept(p->s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p->sc);
}

void pair_up(struct pair *p)
{
	pair_up_cfg(p, false);
}

uint32_t pair_sum16(const uint8_t *b, size_t len, uint32_t sum)
{
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(b[i] << 8 | b[i + 1]);
	if (len & 1)
		sum += (uint32_t)b[len - 1] << 8;
	return sum;
}

/* A client -> server segment with TCP flags, options and payload, checksummed. */
size_t pair_segment_flags(uint8_t *pkt, uint8_t flags, uint32_t seq, uint32_t ack,
			  const uint8_t *opts, size_t optlen, const uint8_t *data, size_t len)
{
	size_t thl = 20 + optlen, tot = 20 + thl + len;
	uint32_t sum;

	memset(pkt, 0, 40);
	pkt[0] = 0x45;
	mps_put_be16(pkt + 2, (uint16_t)tot);
	pkt[8] = 64;
	pkt[9] = 6;
	memcpy(pkt + 12, pair_caddr.addr, 4);
	memcpy(pkt + 16, pair_saddr.addr, 4);
	mps_put_be16(pkt + 20, pair_caddr.port);
	mps_put_be16(pkt + 22, pair_saddr.port);
	mps_put_be32(pkt + 24, seq);
	mps_put_be32(pkt + 28, ack);
	pkt[32] = (uint8_t)((thl / 4) << 4);
	pkt[33] = flags;
	mps_put_be16(pkt + 34, 1000);
	memcpy(pkt + 40, opts, optlen);
	memcpy(pkt + 40 + optlen, data, len);
	sum = pair_sum16(pkt + 12, 8, 0) + 6 + (uint32_t)(thl + len);
	sum = pair_sum16(pkt + 20, thl + len, sum);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	mps_put_be16(pkt + 36, (uint16_t)~sum);
	return tot;
}

/* A client -> server PSH,ACK segment with the given options and payload, checksummed. */
size_t pair_segment(uint8_t *pkt, uint32_t seq, uint32_t ack, const uint8_t *opts, size_t optlen,
		    const uint8_t *data, size_t len)
{
	return pair_segment_flags(pkt, 0x18, seq, ack, opts, optlen, data, len);
}

/* The DATA_ACK of the server's last segment. */
uint64_t pair_data_ack(const struct pair *p)
{
	struct mps_tcpopts t;
	struct mps_opt o;
	enum mps_opt_err err;
	int i;

	mps_tcpopt_walk(p->last_s.opts, p->last_s.opts_len, &t);
	for (i = 0; i < t.nmptcp; i++)
		if (mps_opt_parse(p->last_s.opts + t.mptcp[i].off, t.mptcp[i].len, 0x10, &o,
				  &err) == 0 &&
		    o.subtype == MPS_MPTCP_SUB_DSS && (o.dss.flags & MPS_DSS_FLAG_A))
			return o.dss.data_ack;
	return 0;
}

/* A client -> server pure ACK carrying one MPTCP option (padded with NOPs). */
void pair_send_option(struct pair *p, struct mps_opt *o)
{
	uint8_t opts[40], pkt[128];
	int k = mps_opt_build(o, opts, sizeof(opts));

	CU_ASSERT_FATAL(k > 0);
	while (k % 4)
		opts[k++] = 1;
	mps_input(p->s, pkt,
		  pair_segment(pkt, p->cseq, p->sseq, opts, (size_t)k, (const uint8_t *)"", 0),
		  p->now);
	pair_shuttle(p);
}

bool pair_logged(struct mps_stack *st, enum mps_event_type type, int reason)
{
	struct mps_event ev;
	bool found = false;

	while (mps_next_event(st, &ev) == 0)
		if (ev.type == type && ev.reason == reason)
			found = true;
	return found;
}
