/*
 * Simulated network. Every packet in flight sits in its destination node's
 * inbox, kept sorted by arrival time and then by a global sequence number so
 * that equal times deliver in send order and every run is the same.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "mps_seg.h"
#include "mps_sim.h"
#include "prot/tcp.h"

struct sim_pkt {
	struct sim_pkt *next;
	uint64_t arrival, order;
	uint32_t len;
	uint8_t data[];
};

struct sim_dir {
	uint64_t tx_free_at; /* when the serialiser is next idle */
	uint32_t queued;
};

struct sim_path {
	int node[2];
	uint8_t addr[2][16];
	uint8_t family;
	struct mps_sim_link_cfg cfg;
	struct sim_dir dir[2]; /* 0: from node[0] to node[1] */
	uint32_t rewritten;    /* since cfg was set, for cfg.rewrite_max */
};

struct mps_sim_port {
	struct mps_sim *sim;
	int node;
	struct sim_pkt *inbox;
	uint32_t gso_max; /* mps_sim_set_gso() */
	bool gso_split;
};

struct mps_sim {
	uint64_t rng, order;
	int nnodes, npaths;
	struct mps_sim_port ports[MPS_SIM_MAX_NODES];
	struct sim_path paths[MPS_SIM_MAX_PATHS];
	struct mps_sim_stats stats;
};

static uint64_t sim_rand(struct mps_sim *sim)
{
	uint64_t z = (sim->rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

struct mps_sim *mps_sim_create(uint64_t seed)
{
	struct mps_sim *sim = calloc(1, sizeof(*sim));

	if (sim)
		sim->rng = seed;
	return sim;
}

void mps_sim_destroy(struct mps_sim *sim)
{
	struct sim_pkt *p, *n;
	int i;

	if (!sim)
		return;
	for (i = 0; i < sim->nnodes; i++)
		for (p = sim->ports[i].inbox; p; p = n) {
			n = p->next;
			free(p);
		}
	free(sim);
}

int mps_sim_add_node(struct mps_sim *sim)
{
	struct mps_sim_port *p;

	if (sim->nnodes == MPS_SIM_MAX_NODES)
		return -ENOSPC;
	p = &sim->ports[sim->nnodes];
	p->sim = sim;
	p->node = sim->nnodes;
	p->inbox = NULL;
	return sim->nnodes++;
}

int mps_sim_add_path(struct mps_sim *sim, int na, const uint8_t *a, int nb, const uint8_t *b,
		     uint8_t family, const struct mps_sim_link_cfg *cfg)
{
	struct sim_path *p;
	size_t alen = family == 4 ? 4 : 16;

	if ((family != 4 && family != 6) || na < 0 || nb < 0 || na >= sim->nnodes ||
	    nb >= sim->nnodes || na == nb || !cfg)
		return -EINVAL;
	if (sim->npaths == MPS_SIM_MAX_PATHS)
		return -ENOSPC;
	p = &sim->paths[sim->npaths];
	memset(p, 0, sizeof(*p));
	p->node[0] = na;
	p->node[1] = nb;
	memcpy(p->addr[0], a, alen);
	memcpy(p->addr[1], b, alen);
	p->family = family;
	p->cfg = *cfg;
	return sim->npaths++;
}

int mps_sim_set_path(struct mps_sim *sim, int path, const struct mps_sim_link_cfg *cfg)
{
	if (path < 0 || path >= sim->npaths || !cfg)
		return -EINVAL;
	sim->paths[path].cfg = *cfg;
	sim->paths[path].rewritten = 0;
	return 0;
}

struct mps_sim_port *mps_sim_port(struct mps_sim *sim, int n)
{
	return n >= 0 && n < sim->nnodes ? &sim->ports[n] : NULL;
}

void mps_sim_get_stats(const struct mps_sim *sim, struct mps_sim_stats *out)
{
	*out = sim->stats;
}

/* The path (and direction) that carries src -> dst out of node. */
static struct sim_path *route(struct mps_sim *sim, int node, const struct mps_seg *s, int *dir)
{
	size_t alen = s->family == 4 ? 4 : 16;
	int i, d;

	for (i = 0; i < sim->npaths; i++) {
		struct sim_path *p = &sim->paths[i];

		if (p->family != s->family)
			continue;
		for (d = 0; d < 2; d++)
			if (p->node[d] == node && !memcmp(p->addr[d], s->src, alen) &&
			    !memcmp(p->addr[1 - d], s->dst, alen)) {
				*dir = d;
				return p;
			}
	}
	return NULL;
}

static void inbox_insert(struct mps_sim_port *port, struct sim_pkt *pkt)
{
	struct sim_pkt **pp = &port->inbox;

	while (*pp && ((*pp)->arrival < pkt->arrival ||
		       ((*pp)->arrival == pkt->arrival && (*pp)->order < pkt->order)))
		pp = &(*pp)->next;
	pkt->next = *pp;
	*pp = pkt;
}

static void fix_tcp_csum(const struct mps_seg *s)
{
	uint8_t *t = (uint8_t *)s->tcp;
	size_t alen = s->family == 4 ? 4 : 16, i;
	size_t tlen = (size_t)(s->payload + s->payload_len - s->tcp);
	uint32_t sum = 6 + (uint32_t)tlen;

	t[16] = t[17] = 0;
	for (i = 0; i < alen; i += 2)
		sum += (uint32_t)((s->src[i] << 8) | s->src[i + 1]) +
		       (uint32_t)((s->dst[i] << 8) | s->dst[i + 1]);
	for (i = 0; i + 1 < tlen; i += 2)
		sum += (uint32_t)((t[i] << 8) | t[i + 1]);
	if (tlen & 1)
		sum += (uint32_t)t[tlen - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	t[16] = (uint8_t)(~sum >> 8);
	t[17] = (uint8_t)~sum;
}

/* The middlebox: overwrite every MPTCP option of a matching segment with NOPs. */
static void strip_mptcp(struct mps_sim *sim, uint8_t *pkt, size_t len, unsigned int mask)
{
	struct mps_seg s;
	enum mps_seg_err err;
	unsigned int kind;
	uint8_t *o;
	size_t off = 0;
	bool hit = false;

	if (!mask || mps_seg_parse(pkt, len, 0, &s, &err) != 0)
		return;
	if (s.flags & 0x02)
		kind = (s.flags & 0x10) ? MPS_SIM_STRIP_SYNACK : MPS_SIM_STRIP_SYN;
	else
		kind = s.payload_len ? MPS_SIM_STRIP_DATA : MPS_SIM_STRIP_ACK;
	if (!(mask & kind))
		return;
	o = (uint8_t *)s.opts;
	while (off < s.opts_len && o[off] != 0) {
		if (o[off] == 1) {
			off++;
			continue;
		}
		if (off + 1 >= s.opts_len || o[off + 1] < 2 || off + o[off + 1] > s.opts_len)
			break;
		if (o[off] == 30) {
			memset(o + off, 1, o[off + 1]);
			hit = true;
			continue; /* now NOPs, walked one by one */
		}
		off += o[off + 1];
	}
	if (hit) {
		fix_tcp_csum(&s);
		sim->stats.stripped++;
	}
}

/* The application-level gateway: change one payload byte and fix the TCP checksum. */
static void rewrite_payload(struct mps_sim *sim, struct sim_path *p, uint8_t *pkt, size_t len)
{
	struct mps_seg s;
	enum mps_seg_err err;

	if (mps_seg_parse(pkt, len, 0, &s, &err) != 0 || s.payload_len == 0)
		return;
	if (p->cfg.rewrite_max && p->rewritten >= p->cfg.rewrite_max)
		return;
	p->rewritten++;
	((uint8_t *)s.payload)[sim_rand(sim) % s.payload_len] ^= 0x20;
	fix_tcp_csum(&s);
	sim->stats.rewritten++;
}

/* One packet onto its path; seg_size, when set, is what the MTU is checked against. */
static int sim_send_seg(struct mps_sim_port *port, const uint8_t *data, size_t len,
			uint32_t seg_size, uint64_t now)
{
	struct mps_sim *sim = port->sim;
	struct mps_seg s;
	enum mps_seg_err err;
	struct sim_path *p;
	struct sim_dir *d;
	struct sim_pkt *pkt;
	uint64_t t;
	int dir;

	sim->stats.sent++;
	if (mps_seg_parse(data, len, 0, &s, &err) != 0 || !(p = route(sim, port->node, &s, &dir))) {
		sim->stats.no_route++;
		return 0;
	}
	if ((seg_size ? (size_t)(s.payload - data) + seg_size : len) >
	    (p->cfg.mtu ? p->cfg.mtu : 1500)) {
		sim->stats.too_big++;
		return 0;
	}
	if (p->cfg.loss_ppm && sim_rand(sim) % 1000000 < p->cfg.loss_ppm) {
		sim->stats.lost++;
		return 0;
	}
	d = &p->dir[dir];
	if (d->queued >= MPS_SIM_QUEUE_MAX ||
	    (p->cfg.rate_bps && p->cfg.buffer_us && d->tx_free_at > now + p->cfg.buffer_us)) {
		sim->stats.queue_full++;
		return 0;
	}
	pkt = malloc(sizeof(*pkt) + len);
	if (!pkt)
		return -ENOMEM;
	memcpy(pkt->data, data, len);
	pkt->len = (uint32_t)len;
	strip_mptcp(sim, pkt->data, len, p->cfg.strip_mptcp);
	if (p->cfg.rewrite_ppm && sim_rand(sim) % 1000000 < p->cfg.rewrite_ppm)
		rewrite_payload(sim, p, pkt->data, len);
	pkt->order = sim->order++;
	t = now;
	if (p->cfg.rate_bps) {
		t = d->tx_free_at > now ? d->tx_free_at : now;
		t += (uint64_t)len * 8 * 1000000 / p->cfg.rate_bps;
		d->tx_free_at = t;
	}
	t += p->cfg.delay_us;
	if (p->cfg.jitter_us)
		t += sim_rand(sim) % (p->cfg.jitter_us + 1ULL);
	if (p->cfg.reorder_ppm && sim_rand(sim) % 1000000 < p->cfg.reorder_ppm) {
		t += p->cfg.reorder_delay_us;
		sim->stats.reordered++;
	}
	pkt->arrival = t;
	d->queued++;
	/* The queue count is per direction; remember which one to release. */
	pkt->order = (pkt->order << 8) | (uint64_t)((p - sim->paths) << 1 | dir);
	inbox_insert(&sim->ports[p->node[1 - dir]], pkt);
	return 0;
}

static int sim_send(void *ctx, const uint8_t *data, size_t len, uint64_t now)
{
	return sim_send_seg(ctx, data, len, 0, now);
}

static uint16_t ip4_hdr_csum(const uint8_t *ip, size_t ihl)
{
	uint32_t sum = 0;
	size_t i;

	for (i = 0; i + 1 < ihl; i += 2)
		sum += (uint32_t)((ip[i] << 8) | ip[i + 1]);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* Cut pkt into seg_size pieces as the kernel's TCP segmentation does. */
static int sim_split(struct mps_sim_port *port, const struct mps_seg *s, const uint8_t *pkt,
		     uint32_t seg_size, uint64_t now)
{
	size_t hdr = (size_t)(s->payload - pkt), ihl = (size_t)(s->tcp - pkt), n;
	uint16_t id = (uint16_t)(pkt[4] << 8 | pkt[5]);
	uint32_t off;
	struct mps_seg ps;
	enum mps_seg_err err;
	uint8_t *piece, *t;
	int rc = 0;

	piece = malloc(hdr + seg_size);
	if (!piece)
		return -ENOMEM;
	for (off = 0; off < s->payload_len && rc == 0; off += seg_size) {
		n = s->payload_len - off < seg_size ? s->payload_len - off : seg_size;
		memcpy(piece, pkt, hdr);
		memcpy(piece + hdr, s->payload + off, n);
		if (s->family == 4) {
			piece[2] = (uint8_t)((hdr + n) >> 8);
			piece[3] = (uint8_t)(hdr + n);
			piece[4] = (uint8_t)(id >> 8);
			piece[5] = (uint8_t)id;
			id++;
			piece[10] = piece[11] = 0;
			piece[10] = (uint8_t)(ip4_hdr_csum(piece, ihl) >> 8);
			piece[11] = (uint8_t)ip4_hdr_csum(piece, ihl);
		} else {
			piece[4] = (uint8_t)((hdr - ihl + n) >> 8);
			piece[5] = (uint8_t)(hdr - ihl + n);
		}
		t = piece + ihl;
		t[4] = (uint8_t)((s->seq + off) >> 24);
		t[5] = (uint8_t)((s->seq + off) >> 16);
		t[6] = (uint8_t)((s->seq + off) >> 8);
		t[7] = (uint8_t)(s->seq + off);
		if (off + n < s->payload_len)
			t[13] &= (uint8_t) ~(MPS_TCP_FIN | MPS_TCP_PSH);
		if (mps_seg_parse(piece, hdr + n, 0, &ps, &err) != 0) {
			rc = -EINVAL; /* cannot happen: the headers parsed whole */
			break;
		}
		fix_tcp_csum(&ps);
		rc = sim_send_seg(port, piece, hdr + n, 0, now);
	}
	free(piece);
	return rc;
}

static int sim_send_gso(void *ctx, const uint8_t *data, size_t len, uint32_t seg_size, uint64_t now)
{
	struct mps_sim_port *port = ctx;
	struct mps_seg s;
	enum mps_seg_err err;

	if (!seg_size || mps_seg_parse(data, len, 0, &s, &err) != 0 || s.payload_len <= seg_size)
		return sim_send(ctx, data, len, now);
	port->sim->stats.gso_pkts++;
	if (!port->gso_split)
		return sim_send_seg(port, data, len, seg_size, now);
	return sim_split(port, &s, data, seg_size, now);
}

static uint32_t sim_gso_max(void *ctx)
{
	const struct mps_sim_port *port = ctx;

	return port->gso_max;
}

int mps_sim_set_gso(struct mps_sim_port *port, uint32_t max, bool split)
{
	if (max > 0xffff)
		return -EINVAL;
	port->gso_max = max;
	port->gso_split = split;
	return 0;
}

static int sim_recv(void *ctx, uint8_t *buf, size_t cap, uint64_t now)
{
	struct mps_sim_port *port = ctx;
	struct sim_pkt *pkt = port->inbox;
	unsigned int tag;
	int len;

	if (!pkt || pkt->arrival > now)
		return 0;
	port->inbox = pkt->next;
	tag = (unsigned int)(pkt->order & 0xff);
	port->sim->paths[tag >> 1].dir[tag & 1].queued--;
	if (pkt->len > cap) {
		free(pkt);
		return -EMSGSIZE;
	}
	memcpy(buf, pkt->data, pkt->len);
	len = (int)pkt->len;
	free(pkt);
	port->sim->stats.delivered++;
	return len;
}

static uint64_t sim_next_ready(void *ctx)
{
	struct mps_sim_port *port = ctx;

	return port->inbox ? port->inbox->arrival : MPS_TIME_NEVER;
}

const struct mps_link_ops mps_sim_link_ops = {
	.name = "sim",
	.send = sim_send,
	.recv = sim_recv,
	.next_ready = sim_next_ready,
	.gso_max = sim_gso_max,
	.send_gso = sim_send_gso,
};
