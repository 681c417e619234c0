/*
 * The operational-experience census: its messages (protobuf and
 * JSON round trips), folding probe findings into cells, the ISP, family and
 * time-bucket filters, the CSV table, the cell cap, and the store scan that
 * reads probe results only.
 */
#include <CUnit/CUnit.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "census.h"
#include "ctl_store.h"
#include "fj_test.h"
#include "pbjson.h"
#include "test_api.h"

#define FAM4 FJORD__V1__ADDRESS_FAMILY__ADDRESS_FAMILY_IPV4
#define FAM6 FJORD__V1__ADDRESS_FAMILY__ADDRESS_FAMILY_IPV6

/* ---- fixtures: a probe run over n paths and its result --------------------- */

struct probe_fx {
	Fjord__V1__Run run;
	Fjord__V1__Result res;
	Fjord__V1__Path paths[8], *pp[8];
	Fjord__V1__ProbeFinding f[8], *fp[8];
	Fjord__V1__Event ev[8], *evp[8];
	char detail[8][96];
};

static void fx_init(struct probe_fx *x, int64_t finished_ms)
{
	memset(x, 0, sizeof(*x));
	fjord__v1__run__init(&x->run);
	fjord__v1__result__init(&x->res);
	x->run.id = "e.0";
	x->run.type = FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_PROBE;
	x->run.due_ms = finished_ms - 1000;
	x->res.finished_ms = finished_ms;
	x->res.probe_findings = x->fp;
	x->res.events = x->evp;
}

/* Adds a finding on path local->remote/fam; returns it for the caller to fill. */
static Fjord__V1__ProbeFinding *fx_path(struct probe_fx *x, const char *l, const char *r,
					Fjord__V1__AddressFamily fam)
{
	size_t i = x->res.n_probe_findings;

	fjord__v1__path__init(&x->paths[i]);
	fjord__v1__probe_finding__init(&x->f[i]);
	x->paths[i].local_isp = (char *)l;
	x->paths[i].remote_isp = (char *)r;
	x->paths[i].family = fam;
	x->f[i].path = &x->paths[i];
	x->f[i].reachable = 1;
	x->f[i].mp_capable = 1;
	x->fp[i] = &x->f[i];
	x->res.n_probe_findings++;
	return &x->f[i];
}

static void fx_event(struct probe_fx *x, const char *kind, const char *detail)
{
	size_t i = x->res.n_events;

	fjord__v1__event__init(&x->ev[i]);
	snprintf(x->detail[i], sizeof(x->detail[i]), "%s", detail);
	x->ev[i].kind = (char *)kind;
	x->ev[i].detail = x->detail[i];
	x->evp[i] = &x->ev[i];
	x->res.n_events++;
}

static const Fjord__V1__CensusCell *find(const Fjord__V1__Census *c, const char *l, const char *r,
					 Fjord__V1__AddressFamily fam, int64_t bucket)
{
	size_t i;

	for (i = 0; i < c->n_cells; i++) {
		const Fjord__V1__CensusCell *x = c->cells[i];

		if (!strcmp(x->local_isp, l) && !strcmp(x->remote_isp, r) && x->family == fam &&
		    x->bucket_start_ms == bucket)
			return x;
	}
	return NULL;
}

/* A probe over four paths: clean (joins, ADD_ADDR), stripped, NAT with
 * checksum errors, unreachable; one mp_join_failed event on path 0 of another run. */
static void fx_campaign(struct probe_fx *x, int64_t t)
{
	Fjord__V1__ProbeFinding *f;

	fx_init(x, t);
	f = fx_path(x, "uninett", "uninett", FAM4);
	f->mp_join = 1;
	f->subflows = 2;
	f->add_addr_accepted = 1;
	f = fx_path(x, "telenor", "uninett", FAM4);
	f->mp_capable = 0;
	f = fx_path(x, "ice", "uninett", FAM4);
	f->nat = 1;
	f->checksums = 1;
	f->checksum_errors = 3;
	/* Its checksum test failed (the responder's MP_FAIL), its echo came back changed. */
	f->csum_tested = 1;
	f->csum_failed = 1;
	f->csum_mp_fail_rx = 1;
	f->csum_infinite_map_tx = 1;
	f->payload_modified = 1;
	f->seq_rewritten = 1;
	/* The clean path's test ran and passed. */
	x->res.probe_findings[0]->csum_tested = 1;
	f = fx_path(x, "ice", "ice", FAM6);
	f->reachable = 0;
	f->mp_capable = 0;
	f->error = "connect: No route to host";
	/* The join of path 2 failed (NAT path); "path 20 (" must not count as path 2. */
	fx_event(x, "mp_join_failed", "path 2 (ice -> uninett, 100.64.1.2 -> 10.1.3.2): no second");
	fx_event(x, "mp_join_failed", "path 20 (x -> y, a -> b): no second subflow");
	fx_event(x, "nat", "path 0 (uninett -> uninett): not a join failure");
}

static void assert_same(const Fjord__V1__Census *a, const Fjord__V1__Census *b)
{
	size_t i;

	CU_ASSERT_EQUAL_FATAL(a->n_cells, b->n_cells);
	CU_ASSERT_EQUAL(a->probe_results, b->probe_results);
	CU_ASSERT_EQUAL(a->findings_without_path, b->findings_without_path);
	for (i = 0; i < a->n_cells; i++) {
		const Fjord__V1__CensusCell *x = a->cells[i], *y = b->cells[i];

		CU_ASSERT_STRING_EQUAL(x->local_isp, y->local_isp);
		CU_ASSERT_STRING_EQUAL(x->remote_isp, y->remote_isp);
		CU_ASSERT_EQUAL(x->family, y->family);
		CU_ASSERT_EQUAL(x->bucket_start_ms, y->bucket_start_ms);
		CU_ASSERT_EQUAL(x->probes, y->probes);
		CU_ASSERT_EQUAL(x->reachable, y->reachable);
		CU_ASSERT_EQUAL(x->unreachable, y->unreachable);
		CU_ASSERT_EQUAL(x->mp_capable_ok, y->mp_capable_ok);
		CU_ASSERT_EQUAL(x->mp_capable_stripped, y->mp_capable_stripped);
		CU_ASSERT_EQUAL(x->mp_join_ok, y->mp_join_ok);
		CU_ASSERT_EQUAL(x->mp_join_failed, y->mp_join_failed);
		CU_ASSERT_EQUAL(x->add_addr_ok, y->add_addr_ok);
		CU_ASSERT_EQUAL(x->nat, y->nat);
		CU_ASSERT_EQUAL(x->checksums, y->checksums);
		CU_ASSERT_EQUAL(x->checksum_failures, y->checksum_failures);
		CU_ASSERT_EQUAL(x->checksum_errors, y->checksum_errors);
		CU_ASSERT_EQUAL(x->csum_tested, y->csum_tested);
		CU_ASSERT_EQUAL(x->csum_failed, y->csum_failed);
		CU_ASSERT_EQUAL(x->csum_mp_fail, y->csum_mp_fail);
		CU_ASSERT_EQUAL(x->csum_infinite_map, y->csum_infinite_map);
		CU_ASSERT_EQUAL(x->payload_modified, y->payload_modified);
		CU_ASSERT_EQUAL(x->seq_rewritten, y->seq_rewritten);
		CU_ASSERT_EQUAL(x->first_ms, y->first_ms);
		CU_ASSERT_EQUAL(x->last_ms, y->last_ms);
	}
}

static void test_roundtrip(void)
{
	Fjord__V1__Census c, *back = NULL;
	struct census_filter f = { .bucket_ms = 3600000 };
	struct probe_fx x;
	uint8_t *buf;
	size_t len;
	char *json = NULL, err[256];

	fjord__v1__census__init(&c);
	fx_campaign(&x, 1790000000123);
	CU_ASSERT_EQUAL(census_add(&c, &f, &x.run, &x.res), 0);
	census_sort(&c);
	CU_ASSERT_EQUAL_FATAL(c.n_cells, 4);

	/* Protobuf. */
	len = protobuf_c_message_get_packed_size(&c.base);
	buf = malloc(len);
	CU_ASSERT_FATAL(buf != NULL);
	CU_ASSERT_EQUAL(protobuf_c_message_pack(&c.base, buf), len);
	back = (Fjord__V1__Census *)protobuf_c_message_unpack(&fjord__v1__census__descriptor, NULL,
							      len, buf);
	CU_ASSERT_FATAL(back != NULL);
	assert_same(&c, back);
	protobuf_c_message_free_unpacked(&back->base, NULL);
	free(buf);

	/* JSON (the canonical mapping: lowerCamelCase, 64-bit numbers as strings). */
	CU_ASSERT_EQUAL_FATAL(fj_pbjson_encode(&c.base, 0, &json), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"mpCapableStripped\":\"1\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"family\":\"ADDRESS_FAMILY_IPV6\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"localIsp\":\"telenor\""));
	back = NULL;
	CU_ASSERT_EQUAL(fj_pbjson_decode(&fjord__v1__census__descriptor, json, strlen(json),
					 1 << 20, (ProtobufCMessage **)&back, err, sizeof(err)),
			0);
	CU_ASSERT_FATAL(back != NULL);
	assert_same(&c, back);
	protobuf_c_message_free_unpacked(&back->base, NULL);
	free(json);
	census_clear(&c);
	CU_ASSERT_EQUAL(c.n_cells, 0);
}

/* ---- folding ---------------------------------------------------------------- */

static void test_fold(void)
{
	const Fjord__V1__CensusCell *cell;
	Fjord__V1__Census c;
	struct probe_fx x, y;

	fjord__v1__census__init(&c);
	fx_campaign(&x, 5000);
	CU_ASSERT_EQUAL(census_add(&c, NULL, &x.run, &x.res), 0);
	/* The same paths a second time, later: the stripped path was clean then. */
	fx_campaign(&y, 9000);
	y.f[1].mp_capable = 1;
	CU_ASSERT_EQUAL(census_add(&c, NULL, &y.run, &y.res), 0);
	CU_ASSERT_EQUAL(c.probe_results, 2);
	CU_ASSERT_EQUAL(c.n_cells, 4);

	cell = find(&c, "uninett", "uninett", FAM4, 0);
	CU_ASSERT_FATAL(cell != NULL);
	CU_ASSERT_EQUAL(cell->probes, 2);
	CU_ASSERT_EQUAL(cell->reachable, 2);
	CU_ASSERT_EQUAL(cell->mp_capable_ok, 2);
	CU_ASSERT_EQUAL(cell->mp_capable_stripped, 0);
	CU_ASSERT_EQUAL(cell->mp_join_ok, 2);
	CU_ASSERT_EQUAL(cell->mp_join_failed, 0);
	CU_ASSERT_EQUAL(cell->add_addr_ok, 2);
	CU_ASSERT_EQUAL(cell->nat, 0);
	CU_ASSERT_EQUAL(cell->csum_tested, 2);
	CU_ASSERT_EQUAL(cell->csum_failed, 0);
	CU_ASSERT_EQUAL(cell->payload_modified, 0);
	CU_ASSERT_EQUAL(cell->first_ms, 5000);
	CU_ASSERT_EQUAL(cell->last_ms, 9000);

	cell = find(&c, "telenor", "uninett", FAM4, 0);
	CU_ASSERT_FATAL(cell != NULL);
	CU_ASSERT_EQUAL(cell->mp_capable_stripped, 1);
	CU_ASSERT_EQUAL(cell->mp_capable_ok, 1);
	CU_ASSERT_EQUAL(cell->mp_join_ok, 0);
	CU_ASSERT_EQUAL(cell->mp_join_failed, 0);

	cell = find(&c, "ice", "uninett", FAM4, 0);
	CU_ASSERT_FATAL(cell != NULL);
	CU_ASSERT_EQUAL(cell->nat, 2);
	CU_ASSERT_EQUAL(cell->mp_join_failed, 2);
	CU_ASSERT_EQUAL(cell->checksums, 2);
	CU_ASSERT_EQUAL(cell->checksum_failures, 2);
	CU_ASSERT_EQUAL(cell->checksum_errors, 6);
	CU_ASSERT_EQUAL(cell->csum_tested, 2);
	CU_ASSERT_EQUAL(cell->csum_failed, 2);
	CU_ASSERT_EQUAL(cell->csum_mp_fail, 2);
	CU_ASSERT_EQUAL(cell->csum_infinite_map, 2);
	CU_ASSERT_EQUAL(cell->payload_modified, 2);
	CU_ASSERT_EQUAL(cell->seq_rewritten, 2);

	/* Unreachable: counted as a probe, and nothing else about MPTCP. */
	cell = find(&c, "ice", "ice", FAM6, 0);
	CU_ASSERT_FATAL(cell != NULL);
	CU_ASSERT_EQUAL(cell->probes, 2);
	CU_ASSERT_EQUAL(cell->unreachable, 2);
	CU_ASSERT_EQUAL(cell->reachable, 0);
	CU_ASSERT_EQUAL(cell->mp_capable_stripped, 0);
	CU_ASSERT_EQUAL(cell->mp_capable_ok, 0);

	/* Sorted by local, remote, family. */
	census_sort(&c);
	CU_ASSERT_STRING_EQUAL(c.cells[0]->local_isp, "ice");
	CU_ASSERT_STRING_EQUAL(c.cells[0]->remote_isp, "ice");
	CU_ASSERT_STRING_EQUAL(c.cells[1]->remote_isp, "uninett");
	CU_ASSERT_STRING_EQUAL(c.cells[3]->local_isp, "uninett");
	census_clear(&c);
}

static void test_ignored(void)
{
	Fjord__V1__Census c;
	struct probe_fx x;

	fjord__v1__census__init(&c);
	fx_campaign(&x, 5000);
	/* Not a probe run: nothing. */
	x.run.type = FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_BULK;
	CU_ASSERT_EQUAL(census_add(&c, NULL, &x.run, &x.res), 0);
	CU_ASSERT_EQUAL(c.probe_results, 0);
	CU_ASSERT_EQUAL(c.n_cells, 0);
	CU_ASSERT_EQUAL(census_add(&c, NULL, NULL, &x.res), 0);
	CU_ASSERT_EQUAL(census_add(&c, NULL, &x.run, NULL), 0);
	/* Findings without a path or without ISPs are counted apart, not dropped silently. */
	x.run.type = FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_PROBE;
	x.f[0].path = NULL;
	x.paths[1].local_isp = "";
	CU_ASSERT_EQUAL(census_add(&c, NULL, &x.run, &x.res), 0);
	CU_ASSERT_EQUAL(c.probe_results, 1);
	CU_ASSERT_EQUAL(c.findings_without_path, 2);
	CU_ASSERT_EQUAL(c.n_cells, 2);
	census_clear(&c);
}

static void test_filters(void)
{
	struct census_filter f = { 0 };
	Fjord__V1__Census c;
	struct probe_fx x, y;

	/* isp: paths with it at either end. */
	fjord__v1__census__init(&c);
	fx_campaign(&x, 5000);
	f.isp = "uninett";
	CU_ASSERT_EQUAL(census_add(&c, &f, &x.run, &x.res), 0);
	CU_ASSERT_EQUAL(c.n_cells, 3);
	CU_ASSERT_PTR_NULL(find(&c, "ice", "ice", FAM6, 0));
	census_clear(&c);

	/* family. */
	f.isp = NULL;
	f.family = FAM6;
	CU_ASSERT_EQUAL(census_add(&c, &f, &x.run, &x.res), 0);
	CU_ASSERT_EQUAL(c.n_cells, 1);
	CU_ASSERT_PTR_NOT_NULL(find(&c, "ice", "ice", FAM6, 0));
	census_clear(&c);

	/* Buckets of an hour: two results an hour apart give two cells per path,
	 * each starting at its hour, with the finish time deciding. */
	f.family = 0;
	f.bucket_ms = 3600000;
	fx_campaign(&x, 7200000 + 59 * 60000);
	fx_campaign(&y, 3 * 3600000 + 1);
	CU_ASSERT_EQUAL(census_add(&c, &f, &x.run, &x.res), 0);
	CU_ASSERT_EQUAL(census_add(&c, &f, &y.run, &y.res), 0);
	CU_ASSERT_EQUAL(c.n_cells, 8);
	CU_ASSERT_PTR_NOT_NULL(find(&c, "telenor", "uninett", FAM4, 7200000));
	CU_ASSERT_PTR_NOT_NULL(find(&c, "telenor", "uninett", FAM4, 3 * 3600000));
	CU_ASSERT_EQUAL(find(&c, "telenor", "uninett", FAM4, 7200000)->probes, 1);
	census_sort(&c);
	CU_ASSERT_EQUAL(c.cells[0]->bucket_start_ms, 7200000);
	CU_ASSERT_EQUAL(c.cells[1]->bucket_start_ms, 3 * 3600000);
	census_clear(&c);
}

static void test_csv(void)
{
	static const char hdr[] = "local_isp,remote_isp,family,bucket_start,probes,reachable,"
				  "unreachable,mp_capable_ok,mp_capable_stripped,mp_join_ok,"
				  "mp_join_failed,add_addr_ok,nat,checksums,checksum_failures,"
				  "checksum_errors,first,last,csum_tested,csum_failed,"
				  "csum_mp_fail,csum_infinite_map,payload_modified,"
				  "seq_rewritten\r\n";
	Fjord__V1__Census c;
	struct probe_fx x;
	size_t len = 0;
	char *csv;

	fjord__v1__census__init(&c);
	fx_campaign(&x, 1790000000000);
	x.paths[0].local_isp = "uni,\"nett\"";
	CU_ASSERT_EQUAL(census_add(&c, NULL, &x.run, &x.res), 0);
	census_sort(&c);
	csv = census_csv(&c, &len);
	CU_ASSERT_FATAL(csv != NULL);
	CU_ASSERT_EQUAL(strlen(csv), len);
	CU_ASSERT_EQUAL(strncmp(csv, hdr, strlen(hdr)), 0);
	/* ice -> uninett: NAT, join failed, 3 checksum errors. */
	CU_ASSERT_PTR_NOT_NULL(strstr(csv, "\r\nice,uninett,ipv4,,1,1,0,1,0,0,1,0,1,1,1,3,"
					   "2026-09-21T"));
	CU_ASSERT_PTR_NOT_NULL(strstr(csv, "\r\nice,ice,ipv6,,1,0,1,0,0,0,0,0,0,0,0,0,"));
	/* A label with a comma and quotes is quoted (RFC 4180). */
	CU_ASSERT_PTR_NOT_NULL(strstr(csv, "\r\n\"uni,\"\"nett\"\"\",uninett,ipv4,"));
	free(csv);
	census_clear(&c);
}

/*
 * Kernel and bundled findings of the same path fall into separate cells; the
 * kernel's cell is the one it always was (no stack, same counts), the
 * bundled one says STACK_BUNDLED (from the finding, or from its run when the
 * finding does not say). The stack filter keeps one kind; CSV gets a last
 * column "stack" only when bundled cells are in it.
 */
static void test_stacks(void)
{
	struct census_filter fb = { .stack = FJORD__V1__STACK__STACK_BUNDLED };
	struct census_filter fk = { .stack = FJORD__V1__STACK__STACK_KERNEL };
	Fjord__V1__Census c, only_k;
	struct probe_fx k, b, r;
	Fjord__V1__ProbeFinding *f;
	char *csv;
	size_t len;

	fjord__v1__census__init(&c);
	fjord__v1__census__init(&only_k);
	fx_init(&k, 1790000000000);
	f = fx_path(&k, "ispa", "ispa", FAM4);
	f->stack = FJORD__V1__STACK__STACK_KERNEL;
	f->csum_tested = 1;
	fx_path(&k, "ispb", "ispa", FAM4); /* from before ProbeFinding.stack: the kernel's */
	fx_init(&b, 1790000001000);
	f = fx_path(&b, "ispa", "ispa", FAM4);
	f->stack = FJORD__V1__STACK__STACK_BUNDLED;
	f->csum_tested = 1;
	f->csum_failed = 1;
	fx_init(&r, 1790000002000);
	r.run.stack = FJORD__V1__STACK__STACK_BUNDLED;
	fx_path(&r, "ispa", "ispa", FAM4)->mp_capable = 0;
	CU_ASSERT_EQUAL(census_stack(&k.run, k.res.probe_findings[0]),
			FJORD__V1__STACK__STACK_UNSPECIFIED);
	CU_ASSERT_EQUAL(census_stack(&r.run, r.res.probe_findings[0]),
			FJORD__V1__STACK__STACK_BUNDLED);
	CU_ASSERT_EQUAL(census_add(&c, NULL, &k.run, &k.res), 0);
	CU_ASSERT_EQUAL(census_add(&c, NULL, &b.run, &b.res), 0);
	CU_ASSERT_EQUAL(census_add(&c, NULL, &r.run, &r.res), 0);
	census_sort(&c);
	CU_ASSERT_EQUAL_FATAL(c.n_cells, 3);
	/* Sorted: ispa->ispa kernel, ispa->ispa bundled, ispb->ispa kernel. */
	CU_ASSERT_EQUAL(c.cells[0]->stack, FJORD__V1__STACK__STACK_UNSPECIFIED);
	CU_ASSERT_EQUAL(c.cells[0]->probes, 1);
	CU_ASSERT_EQUAL(c.cells[0]->csum_failed, 0);
	CU_ASSERT_EQUAL(c.cells[1]->stack, FJORD__V1__STACK__STACK_BUNDLED);
	CU_ASSERT_STRING_EQUAL(c.cells[1]->local_isp, "ispa");
	CU_ASSERT_EQUAL(c.cells[1]->probes, 2);
	CU_ASSERT_EQUAL(c.cells[1]->csum_failed, 1);
	CU_ASSERT_EQUAL(c.cells[1]->mp_capable_stripped, 1);
	CU_ASSERT_EQUAL(c.cells[2]->stack, FJORD__V1__STACK__STACK_UNSPECIFIED);
	csv = census_csv(&c, &len);
	CU_ASSERT_FATAL(csv != NULL);
	CU_ASSERT_PTR_NOT_NULL(strstr(csv, ",seq_rewritten,stack\r\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(csv, ",1,0,0,0,0,0,kernel\r\nispa,ispa,ipv4,,2,"));
	CU_ASSERT_PTR_NOT_NULL(strstr(csv, ",1,1,0,0,0,0,bundled\r\n"));
	free(csv);
	census_clear(&c);
	/* One kind only. */
	CU_ASSERT_EQUAL(census_add(&c, &fb, &k.run, &k.res), 0);
	CU_ASSERT_EQUAL(census_add(&c, &fb, &b.run, &b.res), 0);
	CU_ASSERT_EQUAL_FATAL(c.n_cells, 1);
	CU_ASSERT_EQUAL(c.cells[0]->stack, FJORD__V1__STACK__STACK_BUNDLED);
	census_clear(&c);
	CU_ASSERT_EQUAL(census_add(&only_k, &fk, &k.run, &k.res), 0);
	CU_ASSERT_EQUAL(census_add(&only_k, &fk, &b.run, &b.res), 0);
	CU_ASSERT_EQUAL(only_k.n_cells, 2);
	/* Kernel cells alone: the CSV has the columns it always had. */
	csv = census_csv(&only_k, &len);
	CU_ASSERT_FATAL(csv != NULL);
	CU_ASSERT_PTR_NULL(strstr(csv, "stack"));
	CU_ASSERT_PTR_NOT_NULL(strstr(csv, ",seq_rewritten\r\n"));
	free(csv);
	census_clear(&only_k);
}

static void test_cell_cap(void)
{
	Fjord__V1__Census c;
	struct probe_fx x;
	char(*names)[16] = calloc(CENSUS_MAX_CELLS + 1, sizeof(*names));
	size_t i;
	int r = 0;

	CU_ASSERT_FATAL(names != NULL);
	fjord__v1__census__init(&c);
	for (i = 0; i <= CENSUS_MAX_CELLS && r == 0; i++) {
		fx_init(&x, 1000);
		snprintf(names[i], sizeof(names[i]), "isp%zu", i);
		fx_path(&x, names[i], "z", FAM4);
		r = census_add(&c, NULL, &x.run, &x.res);
	}
	CU_ASSERT_EQUAL(r, -E2BIG);
	CU_ASSERT_EQUAL(i, CENSUS_MAX_CELLS + 1);
	CU_ASSERT_EQUAL(c.n_cells, CENSUS_MAX_CELLS);
	/* An existing cell still counts. */
	fx_init(&x, 2000);
	fx_path(&x, names[0], "z", FAM4);
	CU_ASSERT_EQUAL(census_add(&c, NULL, &x.run, &x.res), 0);
	CU_ASSERT_EQUAL(find(&c, "isp0", "z", FAM4, 0)->probes, 2);
	census_clear(&c);
	free(names);
}

/* ---- the store scan ---------------------------------------------------------- */

static char tdir[256], dbpath[300];

static char *enroll(struct ctl_store *st, const char *site, const char *hash)
{
	Fjord__V1__EnrollRequest req = FJORD__V1__ENROLL_REQUEST__INIT;
	char *id = NULL;

	req.site = (char *)site;
	req.node = "n1";
	req.version = "1.0";
	CU_ASSERT_EQUAL(ctl_store_agent_enroll(st, &req, hash, 1000, &id), 0);
	return id;
}

/* One experiment of type with one run a -> b over local->uninett/IPv4, due at due. */
static void make_run(struct ctl_store *st, const char *id, Fjord__V1__ExperimentType type,
		     const char *a, const char *b, const char *local, int64_t due)
{
	Fjord__V1__ExperimentSpec spec = FJORD__V1__EXPERIMENT_SPEC__INIT;
	Fjord__V1__Experiment exp = FJORD__V1__EXPERIMENT__INIT;
	Fjord__V1__Run run = FJORD__V1__RUN__INIT, *rp = &run;
	Fjord__V1__Path path = FJORD__V1__PATH__INIT, *pp = &path;
	char rid[64];

	snprintf(rid, sizeof(rid), "%s.0", id);
	spec.name = "t";
	spec.type = type;
	exp.id = (char *)id;
	exp.spec = &spec;
	exp.owner = "alice";
	exp.created_ms = due;
	path.local_isp = (char *)local;
	path.remote_isp = "uninett";
	path.family = FAM4;
	run.id = rid;
	run.experiment_id = (char *)id;
	run.type = type;
	run.stack = FJORD__V1__STACK__STACK_KERNEL;
	run.client_agent_id = (char *)a;
	run.server_agent_id = (char *)b;
	run.client_site = "sa";
	run.server_site = "sb";
	run.paths = &pp;
	run.n_paths = 1;
	run.state = FJORD__V1__RUN_STATE__RUN_STATE_PENDING;
	run.due_ms = due;
	run.deadline_ms = due + 60000;
	CU_ASSERT_EQUAL(ctl_store_experiment_create(st, &exp, &rp, 1), 0);
}

/* Stores a result for run id.0 from agent: a probe's (stripped or not) or a bulk's. */
static void put(struct ctl_store *st, const char *id, const char *agent, const char *local,
		int probe, int mp_capable)
{
	struct probe_fx x;
	Fjord__V1__Metric m = FJORD__V1__METRIC__INIT, *mp = &m;
	char rid[64];
	int dup = 0;

	snprintf(rid, sizeof(rid), "%s.0", id);
	fx_init(&x, 5000);
	x.res.run_id = rid;
	x.res.ok = 1;
	m.name = probe ? "paths_reachable" : "goodput_bps";
	m.value = 1;
	x.res.metrics = &mp;
	x.res.n_metrics = 1;
	if (probe)
		fx_path(&x, local, "uninett", FAM4)->mp_capable = mp_capable;
	CU_ASSERT_EQUAL(ctl_store_result_put(st, &x.res, agent, 5000, &dup), 0);
}

static int fold(void *arg, const Fjord__V1__Run *run, const Fjord__V1__Result *res)
{
	return census_add(arg, NULL, run, res);
}

static int stop_at_first(void *arg, const Fjord__V1__Run *run, const Fjord__V1__Result *res)
{
	(void)run;
	(void)res;
	++*(int *)arg;
	return -ECANCELED;
}

static void test_store_scan(void)
{
	const char *base = getenv("TMPDIR");
	struct ctl_query q = { 0 };
	struct ctl_store *st = NULL;
	Fjord__V1__Census c;
	char *a, *b, p[320];
	int calls = 0;

	snprintf(tdir, sizeof(tdir), "%s/fjord-census-XXXXXX", base && *base ? base : "/tmp");
	CU_ASSERT_FATAL(mkdtemp(tdir) != NULL);
	snprintf(dbpath, sizeof(dbpath), "%s/ctl.db", tdir);
	CU_ASSERT_FATAL(ctl_store_open(dbpath, &st) == 0);
	a = enroll(st, "sa", "1111111111111111111111111111111111111111111111111111111111111111");
	b = enroll(st, "sb", "2222222222222222222222222222222222222222222222222222222222222222");
	CU_ASSERT_FATAL(a && b);
	make_run(st, "p1", FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_PROBE, a, b, "telenor",
		 100000);
	make_run(st, "p2", FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_PROBE, a, b, "uninett",
		 200000);
	make_run(st, "b1", FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_BULK, a, b, "telenor",
		 150000);
	put(st, "p1", a, "telenor", 1, 0);
	/* The server's result of the same probe run must not count twice. */
	put(st, "p1", b, "telenor", 1, 0);
	put(st, "p2", a, "uninett", 1, 1);
	put(st, "b1", a, "telenor", 0, 0);

	fjord__v1__census__init(&c);
	CU_ASSERT_EQUAL(ctl_store_census_scan(st, NULL, fold, &c), 0);
	CU_ASSERT_EQUAL(c.probe_results, 2);
	CU_ASSERT_EQUAL(c.n_cells, 2);
	CU_ASSERT_EQUAL(find(&c, "telenor", "uninett", FAM4, 0)->mp_capable_stripped, 1);
	CU_ASSERT_EQUAL(find(&c, "uninett", "uninett", FAM4, 0)->mp_capable_ok, 1);
	census_clear(&c);

	/* isp and time filters work on the runs. */
	q.isp = "telenor";
	CU_ASSERT_EQUAL(ctl_store_census_scan(st, &q, fold, &c), 0);
	CU_ASSERT_EQUAL(c.probe_results, 1);
	census_clear(&c);
	q.isp = NULL;
	q.from_ms = 150000;
	CU_ASSERT_EQUAL(ctl_store_census_scan(st, &q, fold, &c), 0);
	CU_ASSERT_EQUAL(c.probe_results, 1);
	CU_ASSERT_PTR_NOT_NULL(find(&c, "uninett", "uninett", FAM4, 0));
	census_clear(&c);

	/* The callback's error ends the scan and comes back. */
	CU_ASSERT_EQUAL(ctl_store_census_scan(st, NULL, stop_at_first, &calls), -ECANCELED);
	CU_ASSERT_EQUAL(calls, 1);
	CU_ASSERT_EQUAL(ctl_store_census_scan(NULL, NULL, fold, &c), -EINVAL);
	CU_ASSERT_EQUAL(ctl_store_census_scan(st, NULL, NULL, &c), -EINVAL);
	q.from_ms = -1;
	CU_ASSERT_EQUAL(ctl_store_census_scan(st, &q, fold, &c), -EINVAL);

	ctl_store_close(st);
	free(a);
	free(b);
	snprintf(p, sizeof(p), "%s", dbpath);
	unlink(p);
	snprintf(p, sizeof(p), "%s-wal", dbpath);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", dbpath);
	unlink(p);
	rmdir(tdir);
}

/* ---- the HTTP route ------------------------------------------------------------ */

static void test_http(void)
{
	struct api_hdrs csv = { .accept = "text/csv" };
	struct api_hdrs pb = { .accept = "application/x-protobuf" };
	struct api_resp r = { 0 };
	Fjord__V1__Census *back;
	struct ctl_store *st;
	char viewer[65], a[64], ta[65], b[64], tb[65];
	json_t *cells;

	CU_ASSERT_FATAL(api_start(NULL) == 0);
	CU_ASSERT_FATAL(api_user_token("viewer", viewer) == 0);
	CU_ASSERT_EQUAL_FATAL(api_enroll("oslo", "n1", API_SECRET_OSLO, a, ta), 200);
	CU_ASSERT_EQUAL_FATAL(api_enroll("bergen", "n1", API_SECRET_BERGEN, b, tb), 200);
	st = ctl_http_store(api_srv);
	make_run(st, "p1", FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_PROBE, a, b, "telenor",
		 100000);
	make_run(st, "p2", FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_PROBE, a, b, "uninett",
		 200000);
	put(st, "p1", a, "telenor", 1, 0);
	put(st, "p2", a, "uninett", 1, 1);

	/* JSON: two cells, sorted, counts as strings (uint64). */
	CU_ASSERT_EQUAL(api_json("GET", "/api/v1/census", viewer, NULL, &r), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_FATAL(r.json != NULL);
	cells = json_object_get(r.json, "cells");
	CU_ASSERT_EQUAL_FATAL(json_array_size(cells), 2);
	CU_ASSERT_STRING_EQUAL(
		json_string_value(json_object_get(json_array_get(cells, 0), "localIsp")),
		"telenor");
	CU_ASSERT_STRING_EQUAL(
		json_string_value(json_object_get(json_array_get(cells, 0), "mpCapableStripped")),
		"1");
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(r.json, "probeResults")), "2");
	api_resp_free(&r);

	/* Filters. */
	CU_ASSERT_EQUAL(api_json("GET", "/api/v1/census?isp=uninett&from=150000", viewer, NULL, &r),
			0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_EQUAL(json_array_size(json_object_get(r.json, "cells")), 1);
	api_resp_free(&r);
	CU_ASSERT_EQUAL(api_json("GET", "/api/v1/census?family=ipv6", viewer, NULL, &r), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_EQUAL(json_array_size(json_object_get(r.json, "cells")), 0);
	api_resp_free(&r);
	/* Kernel findings: no stack in their cells, so the same two; no bundled ones. */
	CU_ASSERT_EQUAL(api_json("GET", "/api/v1/census?stack=kernel", viewer, NULL, &r), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_EQUAL(json_array_size(json_object_get(r.json, "cells")), 2);
	CU_ASSERT_PTR_NULL(
		json_object_get(json_array_get(json_object_get(r.json, "cells"), 0), "stack"));
	api_resp_free(&r);
	CU_ASSERT_EQUAL(api_json("GET", "/api/v1/census?stack=bundled", viewer, NULL, &r), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_EQUAL(json_array_size(json_object_get(r.json, "cells")), 0);
	api_resp_free(&r);

	/* CSV and protobuf. */
	CU_ASSERT_EQUAL(api_call("GET", "/api/v1/census", viewer, NULL, NULL, 0, &csv, &r), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.ctype, "text/csv"));
	CU_ASSERT_EQUAL(strncmp(r.body, "local_isp,remote_isp,family,", 28), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.body, "\r\ntelenor,uninett,ipv4,,1,1,0,0,1,"));
	api_resp_free(&r);
	CU_ASSERT_EQUAL(api_call("GET", "/api/v1/census", viewer, NULL, NULL, 0, &pb, &r), 0);
	CU_ASSERT_EQUAL(r.status, 200);
	back = (Fjord__V1__Census *)protobuf_c_message_unpack(&fjord__v1__census__descriptor, NULL,
							      r.len, (const uint8_t *)r.body);
	CU_ASSERT_FATAL(back != NULL);
	CU_ASSERT_EQUAL(back->n_cells, 2);
	CU_ASSERT_EQUAL(back->probe_results, 2);
	protobuf_c_message_free_unpacked(&back->base, NULL);
	api_resp_free(&r);

	/* Bad values name the parameter; no token is 401; unknown parameters 400. */
	CU_ASSERT_EQUAL(api_json("GET", "/api/v1/census?family=ipx", viewer, NULL, &r), 0);
	API_ASSERT_ERROR(&r, 400, "not ipv4 or ipv6", "family");
	api_resp_free(&r);
	CU_ASSERT_EQUAL(api_json("GET", "/api/v1/census?stack=tcp", viewer, NULL, &r), 0);
	API_ASSERT_ERROR(&r, 400, "not kernel or bundled", "stack");
	api_resp_free(&r);
	CU_ASSERT_EQUAL(api_json("GET", "/api/v1/census?bucket_s=10", viewer, NULL, &r), 0);
	API_ASSERT_ERROR(&r, 400, "60..", "bucket_s");
	api_resp_free(&r);
	CU_ASSERT_EQUAL(api_json("GET", "/api/v1/census?from=5000&to=4000", viewer, NULL, &r), 0);
	API_ASSERT_ERROR(&r, 400, "after from", "to");
	api_resp_free(&r);
	CU_ASSERT_EQUAL(api_json("GET", "/api/v1/census?from=yesterday", viewer, NULL, &r), 0);
	API_ASSERT_ERROR(&r, 400, "RFC 3339", "from");
	api_resp_free(&r);
	CU_ASSERT_EQUAL(api_json("GET", "/api/v1/census?site=x", viewer, NULL, &r), 0);
	CU_ASSERT_EQUAL(r.status, 400);
	api_resp_free(&r);
	CU_ASSERT_EQUAL(api_json("GET", "/api/v1/census", NULL, NULL, &r), 0);
	CU_ASSERT_EQUAL(r.status, 401);
	api_resp_free(&r);
	CU_ASSERT_EQUAL(api_json("GET", "/api/v1/census", ta, NULL, &r), 0);
	CU_ASSERT_EQUAL(r.status, 403);
	api_resp_free(&r);
	api_stop();
}

static const struct fj_test tests[] = {
	{ "roundtrip", test_roundtrip },
	{ "fold", test_fold },
	{ "ignored", test_ignored },
	{ "filters", test_filters },
	{ "csv", test_csv },
	{ "cell_cap", test_cell_cap },
	{ "store_scan", test_store_scan },
	{ "http", test_http },
	{ "stacks", test_stacks },
	{ NULL, NULL },
};

const struct fj_suite fj_suite_census = { "census", NULL, NULL, tests };
