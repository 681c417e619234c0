/* Per-direction link model: rate limit with a finite queue, loss, delay, jitter, reordering. */
#include <errno.h>
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

bool tb_emu_whole_gso(const struct tb_link_params *p)
{
	if (p->loss_model != TB_LOSS_RANDOM || p->loss != 0 || p->reorder != 0)
		return false;
	return p->rate_bps == 0 ||
	       (uint64_t)TB_EMU_GSO_BYTES * 8 * 1000000000ull / p->rate_bps <= TB_EMU_GSO_MAX_NS;
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

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t sum16(const uint8_t *p, uint32_t n, uint32_t acc)
{
	for (uint32_t i = 0; i + 1 < n; i += 2)
		acc += (uint32_t)p[i] << 8 | p[i + 1];
	if (n & 1)
		acc += (uint32_t)p[n - 1] << 8;
	return acc;
}

/* Finds the TCP header of a whole packet: 1 with *off set, 0 when not TCP, -EINVAL. */
static int tcp_locate(const uint8_t *pkt, uint32_t len, uint32_t *off)
{
	if (len < 20)
		return -EINVAL;
	if ((pkt[0] >> 4) == 4) {
		*off = (uint32_t)(pkt[0] & 0xf) * 4;
		if (*off < 20 || ((uint32_t)pkt[2] << 8 | pkt[3]) != len)
			return -EINVAL;
		if (pkt[9] != 6 || (((uint32_t)pkt[6] << 8 | pkt[7]) & 0x3fff) != 0)
			return 0; /* not TCP, or a fragment: left alone */
	} else if ((pkt[0] >> 4) == 6) {
		*off = 40;
		if (len < 40 || ((uint32_t)pkt[4] << 8 | pkt[5]) + 40 != len)
			return -EINVAL;
		if (pkt[6] != 6)
			return 0; /* not TCP (or behind extension headers) */
	} else {
		return -EINVAL;
	}
	if (len < *off + 20)
		return -EINVAL;
	if ((uint32_t)(pkt[*off + 12] >> 4) * 4 < 20 ||
	    (uint32_t)(pkt[*off + 12] >> 4) * 4 > len - *off)
		return -EINVAL;
	return 1;
}

/* Computes the TCP checksum of a packet that tcp_locate() accepted anew. */
static void tcp_csum_fix(uint8_t *pkt, uint32_t len, uint32_t off)
{
	uint8_t *tcp = pkt + off;
	uint32_t tlen = len - off, acc;

	if ((pkt[0] >> 4) == 4)
		acc = sum16(pkt + 12, 8, 6);
	else
		acc = sum16(pkt + 8, 32, 6);
	tcp[16] = tcp[17] = 0;
	acc += tlen;
	acc = sum16(tcp, tlen, acc);
	while (acc >> 16)
		acc = (acc & 0xffff) + (acc >> 16);
	acc = ~acc & 0xffff;
	tcp[16] = (uint8_t)(acc >> 8);
	tcp[17] = (uint8_t)acc;
}

int tb_rewrite_seq(uint8_t *pkt, uint32_t len, uint32_t delta, bool outbound)
{
	uint32_t off, doff;
	uint8_t *tcp;
	int r = tcp_locate(pkt, len, &off);

	if (r <= 0)
		return r;
	tcp = pkt + off;
	doff = (uint32_t)(tcp[12] >> 4) * 4;
	if (outbound) {
		put32(tcp + 4, get32(tcp + 4) + delta);
	} else {
		if (!(tcp[13] & 0x10))
			return 0;
		put32(tcp + 8, get32(tcp + 8) - delta);
		for (uint32_t i = 20; i < doff;) {
			uint8_t kind = tcp[i];

			if (kind == 0)
				break;
			if (kind == 1) {
				i++;
				continue;
			}
			if (i + 1 >= doff || tcp[i + 1] < 2 || i + tcp[i + 1] > doff)
				return -EINVAL;
			if (kind == 5) /* SACK: edges of blocks in our sequence space */
				for (uint32_t b = i + 2; b + 8 <= i + tcp[i + 1]; b += 8) {
					put32(tcp + b, get32(tcp + b) - delta);
					put32(tcp + b + 4, get32(tcp + b + 4) - delta);
				}
			i += tcp[i + 1];
		}
	}
	tcp_csum_fix(pkt, len, off);
	return 1;
}

void tb_prw_init(struct tb_prw *t, uint32_t offset)
{
	memset(t, 0, sizeof(*t));
	t->offset = offset;
}

/* The directed flow key of a packet that tcp_locate() accepted. */
static void flow_key(const uint8_t *pkt, uint32_t off, uint8_t key[37])
{
	memset(key, 0, 37);
	key[0] = pkt[0] >> 4;
	if (key[0] == 4) {
		memcpy(key + 1, pkt + 12, 4);
		memcpy(key + 17, pkt + 16, 4);
	} else {
		memcpy(key + 1, pkt + 8, 32);
	}
	memcpy(key + 33, pkt + off, 4);
}

static uint32_t key_hash(const uint8_t key[37])
{
	uint32_t h = 2166136261u;

	for (unsigned int i = 0; i < 37; i++)
		h = (h ^ key[i]) * 16777619u;
	return h;
}

/*
 * The flow's slot: the one holding the key, else (create) a free one or the
 * least recently used of the TB_PRW_PROBE tried; NULL when absent.
 */
static struct tb_prw_flow *flow_find(struct tb_prw *t, const uint8_t key[37], bool create)
{
	uint32_t h = key_hash(key);
	struct tb_prw_flow *victim = NULL;

	for (unsigned int i = 0; i < TB_PRW_PROBE; i++) {
		struct tb_prw_flow *f = &t->flows[(h + i) % TB_PRW_FLOWS];

		if (f->used && !memcmp(f->key, key, 37))
			return f;
		if (!victim || (victim->used && (!f->used || f->last_use < victim->last_use)))
			victim = f;
	}
	if (!create)
		return NULL;
	if (victim->used)
		t->evicted++;
	memcpy(victim->key, key, 37);
	victim->used = true;
	t->flows_seen++;
	return victim;
}

int tb_rewrite_payload(struct tb_prw *t, uint8_t *pkt, uint32_t len)
{
	uint32_t off, doff, plen, seq, rel;
	struct tb_prw_flow *f;
	uint8_t key[37], *tcp;
	bool syn;
	int r = tcp_locate(pkt, len, &off);

	if (r <= 0)
		return r;
	tcp = pkt + off;
	doff = (uint32_t)(tcp[12] >> 4) * 4;
	plen = len - off - doff;
	seq = get32(tcp + 4);
	syn = tcp[13] & 0x02;
	flow_key(pkt, off, key);
	f = flow_find(t, key, syn);
	if (!f)
		return 0;
	f->last_use = ++t->clock;
	if (syn)
		f->isn = seq;
	/* Stream offset of the first payload byte: the SYN takes one number. */
	rel = seq + (syn ? 1u : 0u) - (f->isn + 1u);
	/* Unsigned: a segment that starts past the offset wraps far above plen. */
	if (!plen || t->offset - rel >= plen)
		return 0;
	tcp[doff + (t->offset - rel)] += TB_PRW_ADD;
	tcp_csum_fix(pkt, len, off);
	return 1;
}
