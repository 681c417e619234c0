/*
 * pbjson: the canonical proto3 JSON mapping. Round trips of every message
 * type with every field set, golden JSON, accepted input forms, and every
 * rejection with its error code and the field path in the message.
 */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fj_test.h"
#include "fjord.pb-c.h"
#include "pbjson.h"
#include "pbjson_fill.h"
#include "pbjson_test.pb-c.h"
#include "pbjson_test2.pb-c.h"

#define MAX_IN (1 << 20)

/* Packs m into a new buffer (*len bytes); the caller frees it. */
static uint8_t *pack(const ProtobufCMessage *m, size_t *len)
{
	uint8_t *buf;

	*len = protobuf_c_message_get_packed_size(m);
	buf = malloc(*len ? *len : 1);
	if (buf)
		protobuf_c_message_pack(m, buf);
	return buf;
}

static int same_binary(const ProtobufCMessage *a, const ProtobufCMessage *b)
{
	size_t la, lb;
	uint8_t *pa = pack(a, &la), *pb = pack(b, &lb);
	int same = pa && pb && la == lb && memcmp(pa, pb, la) == 0;

	free(pa);
	free(pb);
	return same;
}

/* Decodes text as desc; returns rc, fills err, frees the message. */
static int decode_rc(const ProtobufCMessageDescriptor *desc, const char *text, char *err,
		     size_t err_len)
{
	ProtobufCMessage *m = NULL;
	int rc = fj_pbjson_decode(desc, text, strlen(text), MAX_IN, &m, err, err_len);

	if (rc == 0)
		protobuf_c_message_free_unpacked(m, NULL);
	else
		CU_ASSERT_PTR_NULL(m);
	return rc;
}

/* Asserts that text is rejected with rc and that err starts with want. */
static void expect_reject(const ProtobufCMessageDescriptor *desc, const char *text, int rc,
			  const char *want)
{
	char err[512];
	int got = decode_rc(desc, text, err, sizeof(err));

	CU_ASSERT_EQUAL(got, rc);
	if (strncmp(err, want, strlen(want)) != 0 || got != rc) {
		fprintf(stderr, "\n  input: %s\n  want:  %s (rc %d)\n  got:   %s (rc %d)\n", text,
			want, rc, err, got);
		CU_FAIL("error message does not name the field");
	}
}

/* Every field set, JSON out and back in: the binary must be identical. */
static void roundtrip(const ProtobufCMessageDescriptor *desc, int max_depth)
{
	unsigned pick, picks = fj_fill_max_oneof(desc);

	for (pick = 0; pick < picks; pick++) {
		ProtobufCMessage *m = fj_fill_new(desc, pick, pick * 7 + 1, max_depth),
				 *back = NULL;
		char *text = NULL, *again = NULL, err[256] = "";
		unsigned i, want = 0, n;
		json_t *j;

		CU_ASSERT_PTR_NOT_NULL_FATAL(m);
		CU_ASSERT_EQUAL_FATAL(fj_pbjson_encode(m, 0, &text), 0);
		CU_ASSERT_EQUAL(fj_pbjson_decode(desc, text, strlen(text), MAX_IN, &back, err,
						 sizeof(err)),
				0);
		if (!back) {
			fprintf(stderr, "\n  %s: %s\n  %s\n", desc->name, err, text);
			CU_FAIL("round trip decode failed");
		} else {
			CU_ASSERT(same_binary(m, back));
			CU_ASSERT_EQUAL(fj_pbjson_encode(back, 0, &again), 0);
			CU_ASSERT_STRING_EQUAL(again, text);
		}
		/* Non-default everywhere: every field but the other oneof members shows. */
		j = fj_pbjson_to_json(m, 0);
		for (i = 0; i < desc->n_fields; i++) {
			const ProtobufCFieldDescriptor *f = &desc->fields[i];

			if (!(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) ||
			    *(uint32_t *)((char *)m + f->quantifier_offset) == f->id)
				want++;
		}
		n = (unsigned)json_object_size(j);
		if (n != want)
			fprintf(stderr, "\n  %s: %u of %u fields in %s\n", desc->name, n, want,
				text);
		CU_ASSERT_EQUAL(n, want);
		json_decref(j);
		free(text);
		free(again);
		protobuf_c_message_free_unpacked(m, NULL);
		protobuf_c_message_free_unpacked(back, NULL);
	}
}

/* Counts "message X {" lines so a message added to the schema is not missed here. */
static unsigned count_schema_messages(void)
{
	FILE *f = fopen("proto/fjord.proto", "r");
	char line[512];
	unsigned n = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "message ", 8) == 0)
			n++;
	fclose(f);
	return n;
}

static void test_roundtrip_fjord(void)
{
	unsigned i, in_schema = count_schema_messages();

	CU_ASSERT_EQUAL(in_schema, fj_fill_n_fjord_types);
	for (i = 0; i < fj_fill_n_fjord_types; i++)
		roundtrip(fj_fill_fjord_types[i], 8);
}

static void test_roundtrip_all_types(void)
{
	unsigned i;

	for (i = 0; i < fj_fill_n_test_types; i++)
		roundtrip(fj_fill_test_types[i], 4);
}

/* ---- golden files ---- */

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	if (buf)
		buf[n] = '\0';
	fclose(f);
	return buf;
}

/*
 * Encodes m (pretty) and diffs it against tests/proto/golden/NAME.json;
 * FJORD_UPDATE_GOLDEN=1 rewrites the file instead (review the diff).
 */
static void check_golden(const ProtobufCMessage *m, int flags, const char *name)
{
	char path[256], *text = NULL, *want, *back_text = NULL, err[256];
	ProtobufCMessage *back = NULL;
	size_t i;

	snprintf(path, sizeof(path), "tests/proto/golden/%s.json", name);
	CU_ASSERT_EQUAL_FATAL(fj_pbjson_encode(m, flags | FJ_PBJSON_PRETTY, &text), 0);
	if (getenv("FJORD_UPDATE_GOLDEN")) {
		FILE *f = fopen(path, "w");

		CU_ASSERT_PTR_NOT_NULL_FATAL(f);
		fprintf(f, "%s\n", text);
		fclose(f);
	}
	want = read_file(path);
	CU_ASSERT_PTR_NOT_NULL_FATAL(want);
	if (strlen(want) != strlen(text) + 1 || strncmp(want, text, strlen(text)) != 0) {
		for (i = 0; want[i] && want[i] == text[i]; i++)
			;
		fprintf(stderr, "\n  %s differs at byte %zu:\n  got:  %.60s\n  want: %.60s\n", path,
			i, text + i, want + i);
		CU_FAIL("golden mismatch");
	}
	/* The golden text decodes back to the same message. */
	CU_ASSERT_EQUAL(fj_pbjson_decode(m->descriptor, want, strlen(want), MAX_IN, &back, err,
					 sizeof(err)),
			0);
	if (back) {
		CU_ASSERT(same_binary(m, back));
		CU_ASSERT_EQUAL(fj_pbjson_encode(back, flags | FJ_PBJSON_PRETTY, &back_text), 0);
		CU_ASSERT_STRING_EQUAL(back_text, text);
	}
	free(back_text);
	protobuf_c_message_free_unpacked(back, NULL);
	free(want);
	free(text);
}

static void test_golden_experiment_spec(void)
{
	Fjord__V1__ExperimentSpec spec = FJORD__V1__EXPERIMENT_SPEC__INIT;
	Fjord__V1__BulkParams bulk = FJORD__V1__BULK_PARAMS__INIT;
	Fjord__V1__StackSettings st = FJORD__V1__STACK_SETTINGS__INIT;
	Fjord__V1__Targets tg = FJORD__V1__TARGETS__INIT;
	Fjord__V1__Schedule sch = FJORD__V1__SCHEDULE__INIT;
	Fjord__V1__AgentPair p1 = FJORD__V1__AGENT_PAIR__INIT, p2 = FJORD__V1__AGENT_PAIR__INIT;
	Fjord__V1__AgentPair *pairs[] = { &p1, &p2 };
	Fjord__V1__Stack stacks[] = { FJORD__V1__STACK__STACK_BUNDLED,
				      FJORD__V1__STACK__STACK_TCP };
	Fjord__V1__AddressFamily fams[] = { FJORD__V1__ADDRESS_FAMILY__ADDRESS_FAMILY_IPV4,
					    FJORD__V1__ADDRESS_FAMILY__ADDRESS_FAMILY_IPV6 };
	char *isps[] = { "telenor", "uninett" };

	spec.name = "bulk oslo\xe2\x86\x92tromso";
	spec.type = FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_BULK;
	spec.params_case = FJORD__V1__EXPERIMENT_SPEC__PARAMS_BULK;
	spec.bulk = &bulk;
	bulk.bytes = 18014398509481985ULL; /* 2^54 + 1: not exact as a double */
	bulk.duration_s = 30;
	bulk.direction = FJORD__V1__DIRECTION__DIRECTION_DOWNLOAD;
	bulk.baseline = 1;
	spec.stack = &st;
	st.n_stacks = 2;
	st.stacks = stacks;
	st.scheduler = "minrtt";
	st.congestion_control = "olia";
	spec.targets = &tg;
	tg.n_pairs = 2;
	tg.pairs = pairs;
	p1.client_agent_id = "a-1";
	p1.server_agent_id = "a-2";
	p2.client_agent_id = "a-3";
	tg.n_local_isps = 2;
	tg.local_isps = isps;
	tg.n_families = 2;
	tg.families = fams;
	tg.per_path = 1;
	spec.schedule = &sch;
	sch.start_ms = 1795725414123LL;
	sch.interval_s = 600;
	sch.count = 12;
	sch.jitter_s = 5;
	spec.deadline_s = 120;
	check_golden(&spec.base, 0, "experiment_spec");
}

static void test_golden_result(void)
{
	Fjord__V1__Result r = FJORD__V1__RESULT__INIT;
	Fjord__V1__Metric m1 = FJORD__V1__METRIC__INIT, m2 = FJORD__V1__METRIC__INIT;
	Fjord__V1__Metric m3 = FJORD__V1__METRIC__INIT;
	Fjord__V1__Metric *ms[] = { &m1, &m2, &m3 };
	Fjord__V1__SubflowMetrics sf = FJORD__V1__SUBFLOW_METRICS__INIT;
	Fjord__V1__SubflowMetrics *sfs[] = { &sf };
	Fjord__V1__Event ev = FJORD__V1__EVENT__INIT;
	Fjord__V1__Event *evs[] = { &ev };

	r.run_id = "r-42";
	r.agent_id = "a-1";
	r.ok = 1;
	r.started_ms = 1795725414000LL;
	r.finished_ms = 1795725444500LL;
	r.n_metrics = 3;
	r.metrics = ms;
	m1.name = "goodput_bps";
	m1.value = 94371840.5;
	m2.name = "rtt_p50_us";
	m2.value = NAN;
	m3.name = "loss";
	m3.value = -INFINITY;
	r.n_subflows = 1;
	r.subflows = sfs;
	sf.id = 1;
	sf.local_address = "10.1.1.2";
	sf.remote_address = "2001:db8:1::2";
	sf.bytes_sent = 18446744073709551615ULL;
	sf.bytes_acked = 9007199254740993ULL;
	sf.srtt_us = 12500;
	sf.backup = 1;
	r.n_events = 1;
	r.events = evs;
	ev.t_ms = -5;
	ev.kind = "subflow_down";
	ev.detail = "tab\there \"quoted\" \xf0\x9f\x93\xa1";
	ev.subflow_id = 2;
	check_golden(&r.base, 0, "result");
}

static void test_golden_defaults(void)
{
	Fjord__V1__Run run = FJORD__V1__RUN__INIT;

	run.id = "r-1";
	run.state = FJORD__V1__RUN_STATE__RUN_STATE_WAITING_LINKS;
	check_golden(&run.base, FJ_PBJSON_DEFAULTS, "run_defaults");
}

static void test_golden_scalars(void)
{
	Fjord__Test__Scalars s = FJORD__TEST__SCALARS__INIT;
	Fjord__Test__Inner in = FJORD__TEST__INNER__INIT;
	uint8_t blob[] = { 0x00, 0xfb, 0xff, 0x10, 'a' };

	s.i32 = INT32_MIN;
	s.i64 = INT64_MIN;
	s.u32 = UINT32_MAX;
	s.u64 = UINT64_MAX;
	s.s32 = -7;
	s.s64 = 9007199254740993LL;
	s.f32 = 4000000000u;
	s.f64 = 1ULL << 63;
	s.sf32 = -1;
	s.sf64 = -9007199254740993LL;
	s.flt = 0.1f;
	s.dbl = 1e300;
	s.flag = 1;
	s.text = "\xc3\xa6\xc3\xb8\xc3\xa5 \xe2\x82\xac";
	s.blob.data = blob;
	s.blob.len = sizeof(blob);
	s.colour = FJORD__TEST__COLOUR__COLOUR_MINUS;
	s.inner = &in;
	in.label = "x";
	in.weight = -2;
	check_golden(&s.base, 0, "scalars");
}

/* ---- accepted forms ---- */

static void test_decode_forms(void)
{
	const char *in = "{\"i32\":\"-12\",\"i64\":-9007199254740993,\"u32\":1e3,"
			 "\"u64\":\"18446744073709551615\",\"s32\":5.0,\"sf64\":\"-1\","
			 "\"flt\":\"-Infinity\",\"dbl\":\"NaN\",\"text\":\"\\u00e6\","
			 "\"blob\":\"-_8\",\"colour\":2,\"inner\":{\"label\":null},"
			 "\"f32\":null}";
	Fjord__Test__Scalars *s;
	ProtobufCMessage *m;
	char err[256];

	CU_ASSERT_EQUAL_FATAL(fj_pbjson_decode(&fjord__test__scalars__descriptor, in, strlen(in),
					       MAX_IN, &m, err, sizeof(err)),
			      0);
	s = (Fjord__Test__Scalars *)m;
	CU_ASSERT_EQUAL(s->i32, -12);
	CU_ASSERT_EQUAL(s->i64, -9007199254740993LL);
	CU_ASSERT_EQUAL(s->u32, 1000);
	CU_ASSERT_EQUAL(s->u64, UINT64_MAX);
	CU_ASSERT_EQUAL(s->s32, 5);
	CU_ASSERT_EQUAL(s->sf64, -1);
	CU_ASSERT(isinf(s->flt) && s->flt < 0);
	CU_ASSERT(isnan(s->dbl));
	CU_ASSERT_STRING_EQUAL(s->text, "\xc3\xa6");
	/* URL-safe, unpadded "-_8" is 0xfb 0xff. */
	CU_ASSERT_EQUAL(s->blob.len, 2);
	CU_ASSERT(s->blob.len == 2 && s->blob.data[0] == 0xfb && s->blob.data[1] == 0xff);
	CU_ASSERT_EQUAL(s->colour, FJORD__TEST__COLOUR__COLOUR_DEEP_BLUE);
	CU_ASSERT_PTR_NOT_NULL(s->inner);
	CU_ASSERT_EQUAL(s->f32, 0);
	protobuf_c_message_free_unpacked(m, NULL);
}

/* The extremes of float survive the trip: FLT_MAX prints as 3.4028235e+38, above FLT_MAX. */
static void test_float_extremes(void)
{
	const float vals[] = { FLT_MAX, -FLT_MAX, FLT_MIN, 1e-45f, 0.1f, 16777217.0f };
	const char *near_max = "{\"flt\":3.4028235677973362e38}";
	Fjord__Test__Scalars s = FJORD__TEST__SCALARS__INIT, *b;
	ProtobufCMessage *back;
	char *text, err[256];
	size_t i;

	for (i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		s.flt = vals[i];
		CU_ASSERT_EQUAL_FATAL(fj_pbjson_encode(&s.base, 0, &text), 0);
		CU_ASSERT_EQUAL_FATAL(fj_pbjson_decode(&fjord__test__scalars__descriptor, text,
						       strlen(text), MAX_IN, &back, err,
						       sizeof(err)),
				      0);
		b = (Fjord__Test__Scalars *)back;
		CU_ASSERT_EQUAL(b->flt, vals[i]);
		free(text);
		protobuf_c_message_free_unpacked(back, NULL);
	}
	/* The last double that rounds to FLT_MAX, and the first that does not. */
	CU_ASSERT_EQUAL(fj_pbjson_decode(&fjord__test__scalars__descriptor, near_max,
					 strlen(near_max), MAX_IN, &back, err, sizeof(err)),
			0);
	CU_ASSERT(back && ((Fjord__Test__Scalars *)back)->flt == FLT_MAX);
	protobuf_c_message_free_unpacked(back, NULL);
	expect_reject(&fjord__test__scalars__descriptor, "{\"flt\":3.4028235677973366e38}", -EINVAL,
		      "flt: value 3.40282357e+38 is out of range for float");
	expect_reject(&fjord__test__scalars__descriptor, "{\"flt\":3.4028236e38}", -EINVAL,
		      "flt: value 3.4028236e+38 is out of range for float");
}

static void test_decode_proto_names(void)
{
	const char *in = "{\"client_agent_id\":\"a\",\"serverAgentId\":\"b\"}";
	Fjord__V1__AgentPair *p;
	ProtobufCMessage *m;
	char err[256];

	CU_ASSERT_EQUAL_FATAL(fj_pbjson_decode(&fjord__v1__agent_pair__descriptor, in, strlen(in),
					       MAX_IN, &m, err, sizeof(err)),
			      0);
	p = (Fjord__V1__AgentPair *)m;
	CU_ASSERT_STRING_EQUAL(p->client_agent_id, "a");
	CU_ASSERT_STRING_EQUAL(p->server_agent_id, "b");
	protobuf_c_message_free_unpacked(m, NULL);
}

static void test_decode_maps(void)
{
	const char *in = "{\"byName\":{\"a\":\"-5\",\"\":\"7\"},\"by_i32\":{\"-3\":\"x\"},"
			 "\"byU64\":{\"18446744073709551615\":{\"label\":\"big\"}},"
			 "\"byFlag\":{\"true\":\"COLOUR_RED\",\"false\":0}}";
	Fjord__Test__Maps *mp;
	ProtobufCMessage *m;
	char err[256], *text = NULL;
	size_t i;
	int found = 0;

	CU_ASSERT_EQUAL_FATAL(fj_pbjson_decode(&fjord__test__maps__descriptor, in, strlen(in),
					       MAX_IN, &m, err, sizeof(err)),
			      0);
	mp = (Fjord__Test__Maps *)m;
	CU_ASSERT_EQUAL(mp->n_by_name, 2);
	for (i = 0; i < mp->n_by_name; i++)
		if (strcmp(mp->by_name[i]->key, "a") == 0 && mp->by_name[i]->value == -5)
			found++;
	CU_ASSERT_EQUAL(found, 1);
	CU_ASSERT(mp->n_by_i32 == 1 && mp->by_i32[0]->key == -3);
	CU_ASSERT(mp->n_by_u64 == 1 && mp->by_u64[0]->key == UINT64_MAX &&
		  strcmp(mp->by_u64[0]->value->label, "big") == 0);
	CU_ASSERT_EQUAL(mp->n_by_flag, 2);
	CU_ASSERT_EQUAL(fj_pbjson_encode(m, 0, &text), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"byU64\":{\"18446744073709551615\":{\"label\":"
					    "\"big\"}}"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"byFlag\":{\"true\":\"COLOUR_RED\",\"false\":"
					    "\"COLOUR_UNSPECIFIED\"}"));
	free(text);
	protobuf_c_message_free_unpacked(m, NULL);
}

static void test_proto2_presence(void)
{
	Fjord__Test2__Legacy l = FJORD__TEST2__LEGACY__INIT;
	char *text = NULL;

	l.id = "x";
	CU_ASSERT_EQUAL(fj_pbjson_encode(&l.base, 0, &text), 0);
	CU_ASSERT_STRING_EQUAL(text, "{\"id\":\"x\"}");
	free(text);
	/* Unset optionals show their declared defaults with FJ_PBJSON_DEFAULTS. */
	CU_ASSERT_EQUAL(fj_pbjson_encode(&l.base, FJ_PBJSON_DEFAULTS, &text), 0);
	CU_ASSERT_STRING_EQUAL(text, "{\"id\":\"x\",\"count\":7,\"note\":\"hi\",\"level\":"
				     "\"LEVEL_HIGH\",\"blob\":\"\",\"values\":[],\"flag\":false}");
	free(text);
	/* Set to the default value is still set in proto2, so it shows. */
	l.has_count = 1;
	l.count = 7;
	CU_ASSERT_EQUAL(fj_pbjson_encode(&l.base, 0, &text), 0);
	CU_ASSERT_STRING_EQUAL(text, "{\"id\":\"x\",\"count\":7}");
	free(text);
}

static void test_encode_bad_utf8(void)
{
	Fjord__V1__Error e = FJORD__V1__ERROR__INIT;
	char *text = NULL;

	e.message = "bad \xff byte \xc3";
	CU_ASSERT_EQUAL(fj_pbjson_encode(&e.base, 0, &text), 0);
	CU_ASSERT_STRING_EQUAL(text, "{\"message\":\"bad \xef\xbf\xbd byte \xef\xbf\xbd\"}");
	free(text);
}

/* ---- rejections: code and field path ---- */

static void test_reject_unknown_field(void)
{
	expect_reject(&fjord__v1__experiment__descriptor,
		      "{\"spec\":{\"targets\":{\"pairs\":[{},{\"bogus\":1}]}}}", -EINVAL,
		      "spec.targets.pairs[1].bogus: unknown field");
	expect_reject(&fjord__v1__run__descriptor, "{\"ID\":\"x\"}", -EINVAL, "ID: unknown field");
}

static void test_reject_wrong_type(void)
{
	const ProtobufCMessageDescriptor *d = &fjord__v1__experiment__descriptor;

	expect_reject(d, "{\"spec\":{\"targets\":{\"pairs\":[{},{\"clientAgentId\":5}]}}}", -EINVAL,
		      "spec.targets.pairs[1].clientAgentId: expected a string");
	expect_reject(d, "{\"spec\":{\"shareLinks\":1}}", -EINVAL,
		      "spec.shareLinks: expected true or false");
	expect_reject(d, "{\"spec\":{\"stack\":[]}}", -EINVAL, "spec.stack: expected an object");
	expect_reject(d, "{\"spec\":{\"targets\":{\"sites\":\"x\"}}}", -EINVAL,
		      "spec.targets.sites: expected an array");
	expect_reject(d, "{\"runsTotal\":\"12abc\"}", -EINVAL, "runsTotal: expected an integer");
	expect_reject(d, "{\"runsTotal\":1.5}", -EINVAL, "runsTotal: expected an integer");
	expect_reject(d, "{\"createdMs\":true}", -EINVAL, "createdMs: expected an integer");
	expect_reject(&fjord__v1__metric__descriptor, "{\"value\":\"inf\"}", -EINVAL,
		      "value: expected a number");
	expect_reject(&fjord__v1__metric__descriptor, "{\"value\":{}}", -EINVAL,
		      "value: expected a number");
	expect_reject(d, "[]", -EINVAL, "expected an object (fjord.v1.Experiment)");
	expect_reject(&fjord__v1__targets__descriptor, "{\"sites\":[\"a\",null]}", -EINVAL,
		      "sites[1]: null is not allowed");
	expect_reject(&fjord__v1__agent__descriptor, "{\"id\":\"a\\u0000b\"}", -EINVAL,
		      "id: string contains a NUL");
	expect_reject(&fjord__test__maps__descriptor, "{\"byName\":{\"a\":null}}", -EINVAL,
		      "byName[a]: null is not allowed as a map value");
	expect_reject(&fjord__test__maps__descriptor, "{\"byI32\":{\"x\":\"a\"}}", -EINVAL,
		      "byI32[x]: expected an integer");
	expect_reject(&fjord__test__maps__descriptor, "{\"byFlag\":{\"yes\":1}}", -EINVAL,
		      "byFlag[yes]: map key must be");
	expect_reject(&fjord__test__maps__descriptor, "{\"byI32\":{\"1\":\"a\",\"01\":\"b\"}}",
		      -EINVAL, "byI32[01]: map key must be written as \"1\"");
	expect_reject(&fjord__test__maps__descriptor, "{\"byS64\":{\"-0\":\"\"}}", -EINVAL,
		      "byS64[-0]: map key must be written as \"0\"");
}

static void test_reject_out_of_range(void)
{
	const ProtobufCMessageDescriptor *s = &fjord__test__scalars__descriptor;

	expect_reject(&fjord__v1__experiment__descriptor, "{\"runsTotal\":4294967296}", -EINVAL,
		      "runsTotal: value 4294967296 is out of range for uint32");
	expect_reject(&fjord__v1__experiment__descriptor, "{\"runsDone\":-1}", -EINVAL,
		      "runsDone: value -1 is out of range for uint32");
	expect_reject(s, "{\"i32\":2147483648}", -EINVAL, "i32: value 2147483648 is out of range");
	expect_reject(s, "{\"s32\":\"-2147483649\"}", -EINVAL, "s32: value -2147483649 is out");
	expect_reject(s, "{\"i64\":\"9223372036854775808\"}", -EINVAL, "i64: value 922337");
	expect_reject(s, "{\"sf64\":1e19}", -EINVAL, "sf64: value 1e+19 is out of range");
	expect_reject(s, "{\"u64\":\"18446744073709551616\"}", -EINVAL, "u64: value 1844674");
	expect_reject(s, "{\"f64\":\"-1\"}", -EINVAL, "f64: value -1 is out of range for uint64");
	expect_reject(s, "{\"flt\":1e39}", -EINVAL, "flt: value 1e+39 is out of range for float");
	expect_reject(s, "{\"dbl\":\"1e999\"}", -EINVAL, "dbl: value 1e999 is out of range");
	/* Numbers jansson itself cannot hold still name the field. */
	expect_reject(s, "{\"inner\":{\"label\":\"a\"},\"dbl\":1e400}", -EINVAL,
		      "dbl: invalid JSON: real number overflow");
	expect_reject(&fjord__v1__run_list__descriptor,
		      "{\"runs\":[{\"id\":\"a\"},{\"dueMs\":99999999999999999999}]}", -EINVAL,
		      "runs[1].dueMs: invalid JSON: too big integer");
}

static void test_reject_enum(void)
{
	const ProtobufCMessageDescriptor *d = &fjord__v1__run__descriptor;

	expect_reject(d, "{\"state\":\"RUN_STATE_BOGUS\"}", -EINVAL,
		      "state: unknown value \"RUN_STATE_BOGUS\" of enum fjord.v1.RunState");
	expect_reject(d, "{\"state\":\"running\"}", -EINVAL, "state: unknown value \"running\"");
	expect_reject(d, "{\"stack\":42}", -EINVAL,
		      "stack: unknown value 42 of enum fjord.v1.Stack");
	expect_reject(d, "{\"stack\":true}", -EINVAL, "stack: expected an enum name or number");
	expect_reject(&fjord__v1__agent__descriptor, "{\"stacks\":[\"STACK_TCP\",\"TCP\"]}",
		      -EINVAL, "stacks[1]: unknown value \"TCP\"");
}

static void test_reject_base64(void)
{
	const ProtobufCMessageDescriptor *s = &fjord__test__scalars__descriptor;

	expect_reject(s, "{\"blob\":\"ab!d\"}", -EINVAL,
		      "blob: invalid base64: bad character at offset 2");
	expect_reject(s, "{\"blob\":\"abcde\"}", -EINVAL, "blob: invalid base64: bad length");
	expect_reject(s, "{\"blob\":\"ab=\"}", -EINVAL, "blob: invalid base64: bad length");
	expect_reject(s, "{\"blob\":\"a===\"}", -EINVAL, "blob: invalid base64");
	expect_reject(s, "{\"blob\":7}", -EINVAL, "blob: expected a base64 string");
	expect_reject(&fjord__test__repeats__descriptor, "{\"blob\":[\"AA==\",\"A\"]}", -EINVAL,
		      "blob[1]: invalid base64");
}

static void test_reject_oneof(void)
{
	expect_reject(&fjord__v1__experiment__descriptor,
		      "{\"spec\":{\"echo\":{\"count\":1},\"bulk\":{\"bytes\":\"5\"}}}", -EINVAL,
		      "spec.bulk: only one of a oneof may be set, but echo is set too");
	expect_reject(&fjord__test__choice__descriptor, "{\"word\":\"a\",\"raw\":null}", -EINVAL,
		      "raw: only one of a oneof may be set, but word is set too");
	expect_reject(&fjord__v1__poll_response__descriptor,
		      "{\"commands\":[{\"run\":{}},{\"cancel\":{},\"run\":{}}]}", -EINVAL,
		      "commands[1].run: only one of a oneof");
	/* The same field under both of its names is refused too. */
	expect_reject(&fjord__v1__agent_pair__descriptor,
		      "{\"clientAgentId\":\"a\",\"client_agent_id\":\"b\"}", -EINVAL,
		      "client_agent_id: field given twice");
}

static void test_reject_depth(void)
{
	char buf[1024], err[512];
	size_t n = 0;
	int i;

	/* FJ_PBJSON_MAX_DEPTH levels are fine, one more is not. */
	for (i = 1; i < FJ_PBJSON_MAX_DEPTH; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "{\"left\":");
	n += (size_t)snprintf(buf + n, sizeof(buf) - n, "{}");
	for (i = 1; i < FJ_PBJSON_MAX_DEPTH; i++)
		buf[n++] = '}';
	buf[n] = '\0';
	CU_ASSERT_EQUAL(decode_rc(&fjord__test__tree__descriptor, buf, err, sizeof(err)), 0);
	n = 0;
	for (i = 0; i < FJ_PBJSON_MAX_DEPTH; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "{\"children\":[");
	n += (size_t)snprintf(buf + n, sizeof(buf) - n, "{}");
	for (i = 0; i < FJ_PBJSON_MAX_DEPTH; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "]}");
	CU_ASSERT_EQUAL(decode_rc(&fjord__test__tree__descriptor, buf, err, sizeof(err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "children[0].children[0]"));
	CU_ASSERT_PTR_NOT_NULL(strstr(err, ": messages nested deeper than 32 levels"));
}

static void test_reject_size(void)
{
	const char *in = "{\"id\":\"r-1\"}";
	ProtobufCMessage *m = (ProtobufCMessage *)1;
	char err[256];

	CU_ASSERT_EQUAL(fj_pbjson_decode(&fjord__v1__run__descriptor, in, strlen(in), 5, &m, err,
					 sizeof(err)),
			-EMSGSIZE);
	CU_ASSERT_PTR_NULL(m);
	CU_ASSERT_STRING_EQUAL(err, "input of 12 bytes is over the limit of 5 bytes");
	CU_ASSERT_EQUAL(fj_pbjson_decode(&fjord__v1__run__descriptor, in, strlen(in), 12, &m, err,
					 sizeof(err)),
			0);
	protobuf_c_message_free_unpacked(m, NULL);
}

static void test_reject_syntax_and_required(void)
{
	expect_reject(&fjord__v1__experiment__descriptor, "{\"spec\":{\"name\":\"a\",}}", -EINVAL,
		      "spec: invalid JSON");
	expect_reject(&fjord__v1__experiment__descriptor, "", -EINVAL, "invalid JSON");
	expect_reject(&fjord__v1__experiment__descriptor, "{\"id\":\"a\",\"id\":\"b\"}", -EINVAL,
		      "id: invalid JSON: duplicate object key");
	expect_reject(&fjord__test2__legacy__descriptor, "{\"count\":1}", -EINVAL,
		      "id: missing required field");
	expect_reject(&fjord__test2__legacy__descriptor, "{\"id\":\"a\",\"child\":{\"id\":null}}",
		      -EINVAL, "child.id: missing required field");
	expect_reject(&fjord__test2__legacy__descriptor, "{\"id\":\"a\",\"level\":0}", -EINVAL,
		      "level: unknown value 0 of enum fjord.test2.Level");
}

/* A tiny error buffer is truncated, never overrun. */
static void test_error_buffer_small(void)
{
	char err[8];

	memset(err, 'x', sizeof(err));
	CU_ASSERT_EQUAL(decode_rc(&fjord__v1__run__descriptor, "{\"bogus\":1}", err, 6), -EINVAL);
	CU_ASSERT_EQUAL(err[5], '\0');
	CU_ASSERT_EQUAL(err[6], 'x');
	CU_ASSERT_EQUAL(decode_rc(&fjord__v1__run__descriptor, "{\"bogus\":1}", NULL, 0), -EINVAL);
}

/* Reals print in their shortest exact form; everything else as jansson would. */
static void test_dumps_shortest(void)
{
	json_t *j = json_pack("{s:f,s:f,s:f,s:f,s:f,s:f,s:I,s:s,s:[],s:{},s:n,s:b}", "a", 0.1, "b",
			      5.0, "c", 1e300, "d", -2.5e-300, "e", 123456789.125, "f", 1.0 / 3,
			      "g", (json_int_t)-7, "h", "q\"\\\x01\n/", "i", "j", "k", "l", 0);
	const double samples[] = { 0.1,
				   1.0 / 3,
				   2.0 / 3,
				   1e-7,
				   5e-324,
				   1.7976931348623157e308,
				   9007199254740993.0,
				   0.30000000000000004 };
	char *text = NULL, *jtext;
	json_error_t jerr;
	json_t *back;
	size_t i;

	CU_ASSERT_PTR_NOT_NULL_FATAL(j);
	CU_ASSERT_EQUAL(fj_pbjson_dumps(j, 0, &text), 0);
	CU_ASSERT_STRING_EQUAL(text, "{\"a\":0.1,\"b\":5.0,\"c\":1e+300,\"d\":-2.5e-300,\"e\":"
				     "123456789.125,\"f\":0.3333333333333333,\"g\":-7,\"h\":"
				     "\"q\\\"\\\\\\u0001\\n/\",\"i\":[],\"j\":{},\"k\":null,"
				     "\"l\":false}");
	free(text);
	/* Pretty output is jansson's JSON_INDENT(2) layout. */
	CU_ASSERT_EQUAL(fj_pbjson_dumps(j, FJ_PBJSON_PRETTY, &text), 0);
	json_object_del(j, "a");
	json_object_del(j, "c");
	json_object_del(j, "d");
	json_object_del(j, "e");
	json_object_del(j, "f");
	free(text);
	CU_ASSERT_EQUAL(fj_pbjson_dumps(j, FJ_PBJSON_PRETTY, &text), 0);
	jtext = json_dumps(j, JSON_INDENT(2));
	CU_ASSERT_STRING_EQUAL(text, jtext);
	free(text);
	free(jtext);
	json_decref(j);
	/* Every sample reads back as exactly the same double. */
	for (i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		j = json_real(samples[i]);
		CU_ASSERT_EQUAL_FATAL(fj_pbjson_dumps(j, 0, &text), 0);
		back = json_loads(text, JSON_DECODE_ANY, &jerr);
		CU_ASSERT(back && json_real_value(back) == samples[i]);
		json_decref(back);
		json_decref(j);
		free(text);
	}
	CU_ASSERT_EQUAL(fj_pbjson_dumps(NULL, 0, &text), -EINVAL);
}

static void test_enum_helpers(void)
{
	int v = -1;

	CU_ASSERT_EQUAL(fj_pbjson_enum_parse(&fjord__v1__stack__descriptor, "kernel", &v), 0);
	CU_ASSERT_EQUAL(v, FJORD__V1__STACK__STACK_KERNEL);
	CU_ASSERT_EQUAL(fj_pbjson_enum_parse(&fjord__v1__stack__descriptor, "STACK_TCP", &v), 0);
	CU_ASSERT_EQUAL(v, FJORD__V1__STACK__STACK_TCP);
	CU_ASSERT_EQUAL(
		fj_pbjson_enum_parse(&fjord__v1__run_state__descriptor, "Waiting_Links", &v), 0);
	CU_ASSERT_EQUAL(v, FJORD__V1__RUN_STATE__RUN_STATE_WAITING_LINKS);
	CU_ASSERT_EQUAL(fj_pbjson_enum_parse(&fjord__v1__address_family__descriptor, "ipv6", &v),
			0);
	CU_ASSERT_EQUAL(v, FJORD__V1__ADDRESS_FAMILY__ADDRESS_FAMILY_IPV6);
	v = -1;
	CU_ASSERT_EQUAL(fj_pbjson_enum_parse(&fjord__v1__stack__descriptor, "quic", &v), -EINVAL);
	CU_ASSERT_EQUAL(fj_pbjson_enum_parse(&fjord__v1__stack__descriptor, "", &v), -EINVAL);
	CU_ASSERT_EQUAL(fj_pbjson_enum_parse(&fjord__v1__stack__descriptor, "STACK_", &v), -EINVAL);
	CU_ASSERT_EQUAL(v, -1);
	CU_ASSERT_STRING_EQUAL(fj_pbjson_enum_short(&fjord__v1__run_state__descriptor,
						    FJORD__V1__RUN_STATE__RUN_STATE_WAITING_LINKS),
			       "waiting_links");
	CU_ASSERT_STRING_EQUAL(fj_pbjson_enum_short(&fjord__v1__stack__descriptor, 1), "bundled");
	CU_ASSERT_STRING_EQUAL(fj_pbjson_enum_short(&fjord__test__colour__descriptor, -3), "minus");
	/* The same pointer each time: static storage. */
	CU_ASSERT_PTR_EQUAL(fj_pbjson_enum_short(&fjord__v1__stack__descriptor, 1),
			    fj_pbjson_enum_short(&fjord__v1__stack__descriptor, 1));
	CU_ASSERT_PTR_NULL(fj_pbjson_enum_short(&fjord__v1__stack__descriptor, 99));
	/* Every value's short name parses back to it. */
	for (v = 0; v < 9; v++) {
		const char *s = fj_pbjson_enum_short(&fjord__v1__run_state__descriptor, v);
		int back = -1;

		CU_ASSERT_PTR_NOT_NULL_FATAL(s);
		CU_ASSERT_EQUAL(fj_pbjson_enum_parse(&fjord__v1__run_state__descriptor, s, &back),
				0);
		CU_ASSERT_EQUAL(back, v);
	}
}

/* Allocations (jansson's and pbjson's) fail once a budget of calls is spent. */
static long alloc_budget = -1;

static bool budget_spent(void)
{
	if (alloc_budget == 0)
		return true;
	if (alloc_budget > 0)
		alloc_budget--;
	return false;
}

static void *budget_malloc(size_t n)
{
	return budget_spent() ? NULL : malloc(n);
}

/*
 * Every allocation in turn (jansson's and pbjson's own) fails once: encode
 * and decode must then give -ENOMEM, never crash, and leak nothing (checked
 * by make asan).
 */
static void test_alloc_failure(void)
{
	ProtobufCMessage *m = fj_fill_new(&fjord__v1__result__descriptor, 0, 3, 8), *back;
	char *text = NULL, *out, err[128];
	long n, enc_fails = 0, dec_fails = 0, dec_nomem = 0;
	int rc;

	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_EQUAL_FATAL(fj_pbjson_encode(m, 0, &text), 0);
	json_set_alloc_funcs(budget_malloc, free);
	fj_pbjson_set_fault_hook(budget_spent);
	for (n = 0;; n++) {
		alloc_budget = n;
		rc = fj_pbjson_encode(m, 0, &out);
		alloc_budget = -1;
		if (rc == 0) {
			CU_ASSERT_STRING_EQUAL(out, text);
			free(out);
			break;
		}
		CU_ASSERT_EQUAL(rc, -ENOMEM);
		enc_fails++;
	}
	for (n = 0;; n++) {
		alloc_budget = n;
		rc = fj_pbjson_decode(m->descriptor, text, strlen(text), MAX_IN, &back, err,
				      sizeof(err));
		alloc_budget = -1;
		if (rc == 0) {
			CU_ASSERT(same_binary(m, back));
			protobuf_c_message_free_unpacked(back, NULL);
			break;
		}
		/*
		 * jansson's parser reports some allocation failures as syntax
		 * errors (its lexer loses the cause); past the parse, ours must
		 * say -ENOMEM.
		 */
		CU_ASSERT(rc == -ENOMEM || (rc == -EINVAL && strstr(err, "invalid JSON")));
		CU_ASSERT_PTR_NULL(back);
		if (rc == -ENOMEM)
			dec_nomem++;
		dec_fails++;
	}
	json_set_alloc_funcs(malloc, free);
	fj_pbjson_set_fault_hook(NULL);
	/* Each allocation point was hit: a filled Result needs hundreds of them. */
	CU_ASSERT(enc_fails > 100);
	CU_ASSERT(dec_fails > 100);
	CU_ASSERT(dec_nomem > 50); /* the mapping's own allocations, after the parse */
	free(text);
	protobuf_c_message_free_unpacked(m, NULL);
}

static const struct fj_test tests[] = {
	{ "roundtrip_fjord", test_roundtrip_fjord },
	{ "roundtrip_all_types", test_roundtrip_all_types },
	{ "golden_experiment_spec", test_golden_experiment_spec },
	{ "golden_result", test_golden_result },
	{ "golden_defaults", test_golden_defaults },
	{ "golden_scalars", test_golden_scalars },
	{ "decode_forms", test_decode_forms },
	{ "float_extremes", test_float_extremes },
	{ "decode_proto_names", test_decode_proto_names },
	{ "decode_maps", test_decode_maps },
	{ "proto2_presence", test_proto2_presence },
	{ "encode_bad_utf8", test_encode_bad_utf8 },
	{ "reject_unknown_field", test_reject_unknown_field },
	{ "reject_wrong_type", test_reject_wrong_type },
	{ "reject_out_of_range", test_reject_out_of_range },
	{ "reject_enum", test_reject_enum },
	{ "reject_base64", test_reject_base64 },
	{ "reject_oneof", test_reject_oneof },
	{ "reject_depth", test_reject_depth },
	{ "reject_size", test_reject_size },
	{ "reject_syntax_and_required", test_reject_syntax_and_required },
	{ "error_buffer_small", test_error_buffer_small },
	{ "dumps_shortest", test_dumps_shortest },
	{ "enum_helpers", test_enum_helpers },
	{ "alloc_failure", test_alloc_failure },
	{ NULL, NULL },
};

const struct fj_suite fj_suite_pbjson = { "pbjson", NULL, NULL, tests };
