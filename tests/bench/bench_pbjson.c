/*
 * bench-pbjson: throughput of the protobuf<->JSON mapping on filled
 * messages (every field set, two items per list), beside baselines measured
 * in the same run on the same data:
 *   encode  fj_pbjson_encode          vs json_dumps of the same jansson tree
 *                                        and protobuf-c pack
 *   decode  fj_pbjson_decode          vs json_loads of the same text
 *                                        and protobuf-c unpack
 * Each figure is the median of 5 rounds of about 0.2 s, the rounds of all
 * operations interleaved.
 *
 *   bench-pbjson [TYPE...]   default: fjord.v1.Result fjord.v1.ExperimentSpec
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pbjson.h"
#include "pbjson_fill.h"

#define ROUNDS	 5
#define ROUND_NS 200000000LL

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

struct subject {
	const ProtobufCMessage *msg;
	const char *text;
	size_t text_len;
	json_t *tree;
	uint8_t *bin;
	size_t bin_len;
};

enum op { OP_ENCODE, OP_DUMPS, OP_PACK, OP_DECODE, OP_LOADS, OP_UNPACK };

static const char *const op_names[] = {
	"fj_pbjson_encode", "json_dumps (baseline)", "protobuf-c pack (baseline)",
	"fj_pbjson_decode", "json_loads (baseline)", "protobuf-c unpack (baseline)",
};

static void run_once(const struct subject *s, enum op op)
{
	ProtobufCMessage *m = NULL;
	json_error_t jerr;
	char *out = NULL, err[128];
	json_t *j;
	uint8_t buf[1 << 16];

	switch (op) {
	case OP_ENCODE:
		if (fj_pbjson_encode(s->msg, 0, &out))
			abort();
		free(out);
		break;
	case OP_DUMPS:
		out = json_dumps(s->tree, JSON_COMPACT);
		if (!out)
			abort();
		free(out);
		break;
	case OP_PACK:
		if (protobuf_c_message_get_packed_size(s->msg) > sizeof(buf))
			abort();
		protobuf_c_message_pack(s->msg, buf);
		break;
	case OP_DECODE:
		if (fj_pbjson_decode(s->msg->descriptor, s->text, s->text_len, 1 << 20, &m, err,
				     sizeof(err)))
			abort();
		protobuf_c_message_free_unpacked(m, NULL);
		break;
	case OP_LOADS:
		j = json_loadb(s->text, s->text_len, 0, &jerr);
		if (!j)
			abort();
		json_decref(j);
		break;
	case OP_UNPACK:
		m = protobuf_c_message_unpack(s->msg->descriptor, NULL, s->bin_len, s->bin);
		if (!m)
			abort();
		protobuf_c_message_free_unpacked(m, NULL);
		break;
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Operations per second over one round of about ROUND_NS. */
static double measure_round(const struct subject *s, enum op op)
{
	long long start, t;
	long n = 0;

	start = now_ns();
	do {
		run_once(s, op);
		n++;
		t = now_ns();
	} while (t - start < ROUND_NS);
	return (double)n * 1e9 / (double)(t - start);
}

/*
 * Rounds of all operations are interleaved, so that load from elsewhere on
 * this shared machine hits ours and the baselines alike; medians are kept.
 */
static void measure_all(const struct subject *s, double *median)
{
	double rates[OP_UNPACK + 1][ROUNDS];
	int r, op;

	for (r = 0; r < ROUNDS; r++)
		for (op = OP_ENCODE; op <= OP_UNPACK; op++)
			rates[op][r] = measure_round(s, (enum op)op);
	for (op = OP_ENCODE; op <= OP_UNPACK; op++) {
		qsort(rates[op], ROUNDS, sizeof(rates[op][0]), cmp_double);
		median[op] = rates[op][ROUNDS / 2];
	}
}

static int bench_type(const char *name)
{
	const ProtobufCMessageDescriptor *d = fj_fill_find_type(name);
	struct subject s = { 0 };
	ProtobufCMessage *m;
	double median[OP_UNPACK + 1];
	char *text = NULL;
	int op;

	if (!d) {
		fprintf(stderr, "bench-pbjson: unknown type %s\n", name);
		return 1;
	}
	m = fj_fill_new(d, 0, 1, 8);
	if (!m || fj_pbjson_encode(m, 0, &text))
		return 1;
	s.msg = m;
	s.text = text;
	s.text_len = strlen(text);
	s.tree = fj_pbjson_to_json(m, 0);
	s.bin_len = protobuf_c_message_get_packed_size(m);
	s.bin = malloc(s.bin_len);
	if (!s.tree || !s.bin)
		return 1;
	protobuf_c_message_pack(m, s.bin);
	printf("%s: JSON %zu bytes, binary %zu bytes\n", name, s.text_len, s.bin_len);
	measure_all(&s, median);
	for (op = OP_ENCODE; op <= OP_UNPACK; op++)
		printf("  %-30s %10.0f msg/s %8.1f MB/s of JSON\n", op_names[op], median[op],
		       median[op] * (double)s.text_len / 1e6);
	json_decref(s.tree);
	free(s.bin);
	free(text);
	protobuf_c_message_free_unpacked(m, NULL);
	return 0;
}

int main(int argc, char **argv)
{
	static const char *const dflt[] = { "fjord.v1.Result", "fjord.v1.ExperimentSpec" };
	int i, rc = 0;

	if (argc > 1) {
		for (i = 1; i < argc; i++)
			rc |= bench_type(argv[i]);
	} else {
		for (i = 0; i < 2; i++)
			rc |= bench_type(dflt[i]);
	}
	return rc;
}
