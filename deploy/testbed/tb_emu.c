/* Per-direction link model: rate limit with a finite queue, loss, delay, jitter, reordering. */
#include <string.h>

#include "tb_emu.h"

void tb_emu_init(struct tb_emu_dir *d, const struct tb_link_params *p, uint64_t seed)
{
	memset(d, 0, sizeof(*d));
	d->p = *p;
	d->rng = seed ? seed : 0x9e3779b97f4a7c15ull;
}

void tb_emu_set(struct tb_emu_dir *d, const struct tb_link_params *p)
{
	d->p = *p;
	if (p->loss_model != TB_LOSS_GE)
		d->ge_bad = false;
}

double tb_emu_rand(struct tb_emu_dir *d)
{
	uint64_t x = d->rng;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	d->rng = x;
	return (double)((x * 0x2545f4914f6cdd1dull) >> 11) / 9007199254740992.0;
}

static bool lost(struct tb_emu_dir *d)
{
	if (d->p.loss_model == TB_LOSS_GE) {
		/* The state moves first, then the packet sees the new state. */
		if (!d->ge_bad && tb_emu_rand(d) < d->p.ge_p)
			d->ge_bad = true;
		else if (d->ge_bad && tb_emu_rand(d) < d->p.ge_r)
			d->ge_bad = false;
		return tb_emu_rand(d) < (d->ge_bad ? d->p.ge_loss_bad : d->p.ge_loss_good);
	}
	return d->p.loss > 0 && tb_emu_rand(d) < d->p.loss;
}

enum tb_emu_verdict tb_emu_packet(struct tb_emu_dir *d, uint64_t now_ns, uint32_t len,
				  uint64_t *release_ns)
{
	uint64_t depart = now_ns, rel;

	d->c.packets++;
	d->c.bytes += len;
	if (d->p.down) {
		d->c.drop_down++;
		return TB_EMU_DROP_DOWN;
	}
	if (d->p.rate_bps) {
		uint64_t start = d->tx_free_ns > now_ns ? d->tx_free_ns : now_ns;

		/* Drop-tail: the backlog in time may not exceed the buffer. */
		if (start - now_ns > (uint64_t)d->p.buffer_us * 1000) {
			d->c.drop_queue++;
			return TB_EMU_DROP_QUEUE;
		}
		d->tx_free_ns = start + (uint64_t)len * 8 * 1000000000ull / d->p.rate_bps;
		depart = d->tx_free_ns;
	}
	/* Loss after the queue: a lost packet still took its time on the wire. */
	if (lost(d)) {
		d->c.drop_loss++;
		return TB_EMU_DROP_LOSS;
	}
	if (d->p.reorder > 0 && tb_emu_rand(d) < d->p.reorder) {
		d->c.reordered++;
		*release_ns = depart;
		return TB_EMU_RELEASE_NOW;
	}
	rel = depart + (uint64_t)d->p.delay_us * 1000;
	if (d->p.jitter_us) {
		int64_t j = (int64_t)((2 * tb_emu_rand(d) - 1) * d->p.jitter_us * 1000);

		rel = (int64_t)rel + j < (int64_t)depart ? depart : (uint64_t)((int64_t)rel + j);
	}
	/* Jitter does not reorder: a real path keeps its packets in order. */
	if (rel < d->last_release_ns)
		rel = d->last_release_ns;
	d->last_release_ns = rel;
	*release_ns = rel;
	return TB_EMU_RELEASE;
}

/* Walks TCP options; caplen may cut the packet short, then the answer is false. */
bool tb_has_add_addr(const uint8_t *pkt, uint32_t caplen)
{
	uint32_t off, doff, end;
	uint8_t proto;

	if (caplen < 1)
		return false;
	if ((pkt[0] >> 4) == 4) {
		if (caplen < 20)
			return false;
		off = (uint32_t)(pkt[0] & 0xf) * 4;
		proto = pkt[9];
		/* Only the first fragment carries the TCP header. */
		if ((((uint32_t)pkt[6] << 8 | pkt[7]) & 0x1fff) != 0)
			return false;
	} else if ((pkt[0] >> 4) == 6) {
		if (caplen < 40)
			return false;
		off = 40;
		proto = pkt[6];
	} else {
		return false;
	}
	if (proto != 6 || caplen < off + 20)
		return false;
	doff = (uint32_t)(pkt[off + 12] >> 4) * 4;
	if (doff < 20)
		return false;
	end = off + doff;
	if (end > caplen)
		end = caplen;
	for (uint32_t i = off + 20; i < end;) {
		uint8_t kind = pkt[i];

		if (kind == 0)
			break;
		if (kind == 1) {
			i++;
			continue;
		}
		if (i + 1 >= end || pkt[i + 1] < 2)
			break;
		if (kind == 30 && i + 2 < end && (pkt[i + 2] >> 4) == 3)
			return true;
		i += pkt[i + 1];
	}
	return false;
}
