/*
 * Congestion control as small named ops tables. Loss reactions (fast
 * retransmit, NewReno recovery, RTO) are the same for all and live with
 * the ACK processing in mps_tcp.c; a table decides how much a subflow's
 * window grows in congestion avoidance.
 *
 * "reno": each subflow on its own, one segment per window of ACKs
 * (RFC 5681). "lia", the default: RFC 6356's Linked Increases Algorithm,
 * which couples the increase of the subflows that carry data so that
 * together they take no more than one TCP would on a shared bottleneck,
 * while still moving traffic to the less congested paths.
 */
#include <string.h>

#include "mps_internal.h"
#include "mps_tcp.h"

/*
 * Bytes acked that count towards growth: RFC 3465 (ABC) with L = 2, so a
 * delayed ACK covering two segments grows the window as two ACKs would,
 * and a stretch ACK no more than that.
 */
static uint64_t abc_bytes(uint32_t acked, uint32_t mss)
{
	return acked < 2 * mss ? acked : 2ULL * mss;
}

/* Reno's per-ACK increase: about one segment per window of bytes acked, at least a byte. */
static uint32_t reno_increase(uint32_t cwnd, uint32_t acked, uint32_t mss)
{
	uint64_t a = abc_bytes(acked, mss);
	uint64_t inc = a * mss / (cwnd ? cwnd : 1);

	return inc ? (uint32_t)inc : 1;
}

static uint32_t reno_ca(const struct mps_conn *c, const struct mps_subflow *sf, uint32_t acked,
			uint32_t mss)
{
	(void)c;
	return reno_increase(sf->cwnd, acked, mss);
}

double mps_lia_alpha(const uint32_t *cwnd, const uint32_t *rtt_us, unsigned int n)
{
	double total = 0, best = 0, sum = 0, x;
	unsigned int i;

	for (i = 0; i < n; i++) {
		if (!rtt_us[i])
			continue;
		total += cwnd[i];
		x = (double)cwnd[i] / ((double)rtt_us[i] * rtt_us[i]);
		if (x > best)
			best = x;
		sum += (double)cwnd[i] / rtt_us[i];
	}
	if (sum <= 0)
		return 1;
	/* RFC 6356 §3: alpha = cwnd_total * max(cwnd_i / rtt_i^2) / (sum(cwnd_i / rtt_i))^2. */
	return total * best / (sum * sum);
}

/*
 * The subflows that share the increase: those that carry data now, in the
 * same class as sf (regular, or backup when only backups work), with an RTT.
 */
static unsigned int lia_set(const struct mps_conn *c, const struct mps_subflow *sf, uint32_t *cwnd,
			    uint32_t *rtt)
{
	const struct mps_subflow *o;
	unsigned int i, n = 0;

	for (i = 0; i <= c->njoins; i++) {
		o = i ? c->joins[i - 1] : &c->sf;
		if (!mps_sf_usable(o) || mps_sf_backup(o) != mps_sf_backup(sf) || !o->srtt)
			continue;
		cwnd[n] = o->cwnd;
		rtt[n] = o->srtt;
		n++;
	}
	return n;
}

uint32_t mps_lia_increase(const struct mps_conn *c, const struct mps_subflow *sf, uint32_t acked,
			  uint32_t mss)
{
	uint32_t cwnd[MPS_MAX_SUBFLOWS], rtt[MPS_MAX_SUBFLOWS];
	unsigned int n = c->mptcp ? lia_set(c, sf, cwnd, rtt) : 0, i;
	uint64_t total = 0, a = abc_bytes(acked, mss), coupled;
	double alpha;

	/* One subflow (or plain TCP) is one TCP: Reno. */
	if (n < 2)
		return reno_increase(sf->cwnd, acked, mss);
	for (i = 0; i < n; i++)
		total += cwnd[i];
	alpha = mps_lia_alpha(cwnd, rtt, n);
	/*
	 * RFC 6356 §3: min(alpha * acked * MSS_i / cwnd_total, acked * MSS_i /
	 * cwnd_i), acked in bytes as Reno here counts them; the second term
	 * keeps a subflow no more aggressive than one TCP on its path.
	 */
	coupled = (uint64_t)(alpha * (double)(a * mss) / (double)total);
	if (coupled > a * mss / (sf->cwnd ? sf->cwnd : 1))
		coupled = a * mss / (sf->cwnd ? sf->cwnd : 1);
	return coupled ? (uint32_t)coupled : 1;
}

static const struct mps_cc_ops reno = { .name = "reno", .ca_increase = reno_ca };
static const struct mps_cc_ops lia = { .name = "lia", .ca_increase = mps_lia_increase };

/* The first is the default. */
static const struct mps_cc_ops *const ccs[] = { &lia, &reno };

const struct mps_cc_ops *mps_cc_find(const char *name)
{
	unsigned int i;

	if (!name)
		return ccs[0];
	for (i = 0; i < sizeof(ccs) / sizeof(ccs[0]); i++)
		if (strcmp(ccs[i]->name, name) == 0)
			return ccs[i];
	return NULL;
}
