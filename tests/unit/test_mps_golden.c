/*
 * Golden packets: every frame of every Linux kernel capture in the shared
 * test data (../shared/data/kernel-captures) is decoded, its TCP options
 * walked and each MPTCP option parsed and rebuilt byte for byte. The counts
 * of each option were taken from tshark's dissection of the same files, so
 * a parser that skips or misreads an option fails here. DSS checksums of
 * v4-checksum.pcap (full payload) are recomputed for every mapping.
 */
#include <pcap/pcap.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fj_test.h"
#include "mps_crypto.h"
#include "mps_opt.h"
#include "mps_seg.h"

#define ETH_HLEN      14
#define GOLDEN_FLOWS  8
#define GOLDEN_MAPS   64
#define FLOW_DATA_CAP (256 * 1024)

/* Expected figures, from tshark 4.x on each capture (see the commit). */
struct golden_expect {
	const char *file;
	unsigned int frames;
	unsigned int mss, ws, sack_perm, ts, sack;
	unsigned int sub[16];	  /* MPTCP options by subtype */
	unsigned int mpc_form[4]; /* SYN, SYN/ACK, ACK, data */
	unsigned int csum_maps;	  /* distinct checksummed mappings verified */
};

static const struct golden_expect expect[] = {
	{ "v4-two-paths.pcap",
	  2816,
	  5,
	  5,
	  5,
	  2815,
	  0,
	  { [0] = 3, [1] = 4, [2] = 2806, [3] = 2 },
	  { 1, 1, 1, 0 },
	  0 },
	{ "v4-checksum.pcap",
	  285,
	  4,
	  4,
	  4,
	  285,
	  0,
	  { [0] = 8, [1] = 3, [2] = 274 },
	  { 1, 1, 1, 5 },
	  13 },
	{ "v6-two-paths.pcap",
	  2044,
	  3,
	  3,
	  3,
	  2043,
	  0,
	  { [0] = 3, [1] = 1, [2] = 2037, [3] = 2 },
	  { 1, 1, 1, 0 },
	  0 },
	{ "v4-fastclose.pcap",
	  135,
	  4,
	  4,
	  4,
	  135,
	  4,
	  { [0] = 8, [1] = 3, [2] = 122, [7] = 2, [8] = 2 },
	  { 1, 1, 1, 5 },
	  0 },
};

/* One direction of one subflow: its stream, placed by relative sequence. */
struct golden_flow {
	uint8_t src[16], dst[16];
	uint16_t sport, dport;
	bool have_isn;
	uint32_t isn;
	uint8_t *data;
	uint8_t *have;
};

struct golden_map {
	int flow;
	uint64_t dsn;
	uint32_t ssn;
	uint16_t len;
	uint16_t csum;
	bool fin;
};

struct golden_state {
	struct golden_flow flows[GOLDEN_FLOWS];
	int nflows;
	struct golden_map maps[GOLDEN_MAPS];
	int nmaps;
	unsigned int frames, mss, ws, sack_perm, ts, sack;
	unsigned int sub[16], mpc_form[4];
	unsigned int bad_seg, bad_walk, bad_opt, bad_rebuild;
};

static int flow_get(struct golden_state *g, const struct mps_seg *s)
{
	struct golden_flow *f;
	int i;

	for (i = 0; i < g->nflows; i++) {
		f = &g->flows[i];
		if (f->sport == s->sport && f->dport == s->dport && !memcmp(f->src, s->src, 16) &&
		    !memcmp(f->dst, s->dst, 16))
			return i;
	}
	if (g->nflows == GOLDEN_FLOWS)
		return -1;
	f = &g->flows[g->nflows];
	memset(f, 0, sizeof(*f));
	memcpy(f->src, s->src, 16);
	memcpy(f->dst, s->dst, 16);
	f->sport = s->sport;
	f->dport = s->dport;
	f->data = calloc(1, FLOW_DATA_CAP);
	f->have = calloc(1, FLOW_DATA_CAP);
	if (!f->data || !f->have) {
		free(f->data);
		free(f->have);
		return -1;
	}
	return g->nflows++;
}

static void flow_data(struct golden_flow *f, const struct mps_seg *s)
{
	uint32_t rel;

	if (s->flags & MPS_TCP_SYN) {
		f->isn = s->seq;
		f->have_isn = true;
		return;
	}
	if (!f->have_isn || s->payload_len == 0 || s->payload_cap != s->payload_len)
		return;
	rel = s->seq - f->isn;
	if ((uint64_t)rel + s->payload_len > FLOW_DATA_CAP)
		return;
	memcpy(f->data + rel, s->payload, s->payload_len);
	memset(f->have + rel, 1, s->payload_len);
}

static void map_add(struct golden_state *g, int flow, uint64_t dsn, uint32_t ssn, uint16_t len,
		    uint16_t csum, bool fin)
{
	int i;

	for (i = 0; i < g->nmaps; i++)
		if (g->maps[i].flow == flow && g->maps[i].dsn == dsn && g->maps[i].ssn == ssn &&
		    g->maps[i].len == len) {
			/* A repeated mapping must repeat its checksum too. */
			CU_ASSERT_EQUAL(g->maps[i].csum, csum);
			return;
		}
	CU_ASSERT_FATAL(g->nmaps < GOLDEN_MAPS);
	g->maps[g->nmaps++] = (struct golden_map){ flow, dsn, ssn, len, csum, fin };
}

static void one_option(struct golden_state *g, const struct mps_seg *s, int flow, const uint8_t *p,
		       size_t len)
{
	unsigned int segf = s->flags | (s->payload_len ? MPS_SEG_DATA : 0);
	struct mps_opt o;
	enum mps_opt_err err;
	uint8_t out[MPS_MPTCP_OPT_MAX];
	uint64_t idsn;

	if (mps_opt_parse(p, len, segf, &o, &err) != 0) {
		g->bad_opt++;
		fprintf(stderr, "golden: frame %u: %s\n", g->frames, mps_opt_err_name(err));
		return;
	}
	g->sub[o.subtype]++;
	if (mps_opt_build(&o, out, sizeof(out)) != (int)len || memcmp(out, p, len) != 0)
		g->bad_rebuild++;
	if (o.subtype == MPS_MPTCP_SUB_CAPABLE) {
		g->mpc_form[o.mpc.form]++;
		if (o.mpc.form == MPS_MPC_DATA && o.mpc.has_csum) {
			/* The first data's implied mapping: DSN = IDSN + 1, SSN = 1. */
			mps_key_token_idsn(o.mpc.snd_key, NULL, &idsn);
			map_add(g, flow, idsn + 1, 1, o.mpc.data_len, o.mpc.csum, false);
		}
	}
	if (o.subtype == MPS_MPTCP_SUB_DSS && (o.dss.flags & MPS_DSS_FLAG_M) && o.dss.has_csum) {
		/* Linux always sends 64-bit DSNs, so no expansion is needed here. */
		CU_ASSERT(o.dss.flags & MPS_DSS_FLAG_m);
		map_add(g, flow, o.dss.dsn, o.dss.ssn, o.dss.data_len, o.dss.csum,
			o.dss.flags & MPS_DSS_FLAG_F);
	}
}

static void one_frame(struct golden_state *g, const uint8_t *pkt, size_t caplen)
{
	struct mps_seg s;
	struct mps_tcpopts t;
	enum mps_seg_err serr;
	int flow, i;

	g->frames++;
	if (caplen < ETH_HLEN ||
	    mps_seg_parse(pkt + ETH_HLEN, caplen - ETH_HLEN, 1, &s, &serr) != 0) {
		g->bad_seg++;
		return;
	}
	if (mps_tcpopt_walk(s.opts, s.opts_len, &t) != 0) {
		g->bad_walk++;
		return;
	}
	g->mss += !!(t.present & MPS_TCPOPTS_MSS);
	g->ws += !!(t.present & MPS_TCPOPTS_WS);
	g->sack_perm += !!(t.present & MPS_TCPOPTS_SACK_PERM);
	g->ts += !!(t.present & MPS_TCPOPTS_TS);
	g->sack += !!(t.present & MPS_TCPOPTS_SACK);
	flow = flow_get(g, &s);
	CU_ASSERT_FATAL(flow >= 0);
	flow_data(&g->flows[flow], &s);
	for (i = 0; i < t.nmptcp; i++)
		one_option(g, &s, flow, s.opts + t.mptcp[i].off, t.mptcp[i].len);
}

/* Recompute every distinct checksummed mapping from the captured stream. */
static unsigned int verify_maps(struct golden_state *g)
{
	unsigned int ok = 0;
	int i;

	for (i = 0; i < g->nmaps; i++) {
		const struct golden_map *m = &g->maps[i];
		const struct golden_flow *f = &g->flows[m->flow];
		uint32_t plen = m->len - (m->fin ? 1 : 0);
		struct mps_dss_csum c;
		uint32_t j;

		/* A DATA_FIN alone has SSN 0 and covers no payload. */
		if (m->ssn == 0 && m->fin)
			plen = 0;
		if ((uint64_t)m->ssn + plen > FLOW_DATA_CAP)
			continue;
		for (j = 0; j < plen; j++)
			if (!f->have[m->ssn + j])
				break;
		CU_ASSERT_EQUAL(j, plen);
		if (j != plen)
			continue;
		mps_dss_csum_init(&c, m->dsn, m->ssn, m->len);
		mps_dss_csum_add(&c, f->data + m->ssn, plen);
		CU_ASSERT_EQUAL(mps_dss_csum_final(&c), m->csum);
		if (mps_dss_csum_final(&c) == m->csum)
			ok++;
	}
	return ok;
}

static void run_capture(const char *dir, const struct golden_expect *e)
{
	char path[512], errbuf[PCAP_ERRBUF_SIZE];
	struct golden_state *g = calloc(1, sizeof(*g));
	struct pcap_pkthdr *h;
	const u_char *pkt;
	pcap_t *pc;
	int rc, i;

	CU_ASSERT_PTR_NOT_NULL_FATAL(g);
	snprintf(path, sizeof(path), "%s/kernel-captures/%s", dir, e->file);
	pc = pcap_open_offline(path, errbuf);
	CU_ASSERT_PTR_NOT_NULL(pc);
	if (!pc) {
		fprintf(stderr, "golden: %s: %s\n", path, errbuf);
		free(g);
		return;
	}
	CU_ASSERT_EQUAL(pcap_datalink(pc), DLT_EN10MB);
	while ((rc = pcap_next_ex(pc, &h, &pkt)) == 1)
		one_frame(g, pkt, h->caplen);
	CU_ASSERT_EQUAL(rc, PCAP_ERROR_BREAK);
	pcap_close(pc);

	CU_ASSERT_EQUAL(g->frames, e->frames);
	CU_ASSERT_EQUAL(g->bad_seg, 0);
	CU_ASSERT_EQUAL(g->bad_walk, 0);
	CU_ASSERT_EQUAL(g->bad_opt, 0);
	CU_ASSERT_EQUAL(g->bad_rebuild, 0);
	CU_ASSERT_EQUAL(g->mss, e->mss);
	CU_ASSERT_EQUAL(g->ws, e->ws);
	CU_ASSERT_EQUAL(g->sack_perm, e->sack_perm);
	CU_ASSERT_EQUAL(g->ts, e->ts);
	CU_ASSERT_EQUAL(g->sack, e->sack);
	for (i = 0; i < 16; i++)
		CU_ASSERT_EQUAL(g->sub[i], e->sub[i]);
	for (i = 0; i < 4; i++)
		CU_ASSERT_EQUAL(g->mpc_form[i], e->mpc_form[i]);
	CU_ASSERT_EQUAL(verify_maps(g), e->csum_maps);
	for (i = 0; i < g->nflows; i++) {
		free(g->flows[i].data);
		free(g->flows[i].have);
	}
	free(g);
}

static void run_named(const char *file)
{
	const char *dir = fj_test_shared_dir();
	size_t i;

	if (!dir) {
		printf("\n  mps_golden: SKIPPED %s: shared test data not found\n", file);
		CU_PASS("skipped: shared test data not found");
		return;
	}
	for (i = 0; i < sizeof(expect) / sizeof(expect[0]); i++)
		if (strcmp(expect[i].file, file) == 0)
			run_capture(dir, &expect[i]);
}

static void test_v4_two_paths(void)
{
	run_named("v4-two-paths.pcap");
}

static void test_v4_checksum(void)
{
	run_named("v4-checksum.pcap");
}

static void test_v6_two_paths(void)
{
	run_named("v6-two-paths.pcap");
}

static void test_v4_fastclose(void)
{
	run_named("v4-fastclose.pcap");
}

static const struct fj_test tests[] = {
	{ "v4_two_paths", test_v4_two_paths },
	{ "v4_checksum", test_v4_checksum },
	{ "v6_two_paths", test_v6_two_paths },
	{ "v4_fastclose", test_v4_fastclose },
	{ NULL, NULL },
};

const struct fj_suite fj_suite_mps_golden = { "mps_golden", NULL, NULL, tests };
