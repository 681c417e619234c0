#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fjord.pb-c.h"
#include "pbjson_test.pb-c.h"
#include "pbjson_test2.pb-c.h"
#include "pbjson_fill.h"

const ProtobufCMessageDescriptor *const fj_fill_fjord_types[] = {
	&fjord__v1__interface__descriptor,
	&fjord__v1__agent__descriptor,
	&fjord__v1__agent_list__descriptor,
	&fjord__v1__enroll_request__descriptor,
	&fjord__v1__enroll_response__descriptor,
	&fjord__v1__poll_request__descriptor,
	&fjord__v1__poll_response__descriptor,
	&fjord__v1__command__descriptor,
	&fjord__v1__run_command__descriptor,
	&fjord__v1__cancel_command__descriptor,
	&fjord__v1__stack_settings__descriptor,
	&fjord__v1__agent_pair__descriptor,
	&fjord__v1__targets__descriptor,
	&fjord__v1__schedule__descriptor,
	&fjord__v1__echo_params__descriptor,
	&fjord__v1__bulk_params__descriptor,
	&fjord__v1__rr_params__descriptor,
	&fjord__v1__link_event__descriptor,
	&fjord__v1__handover_params__descriptor,
	&fjord__v1__probe_params__descriptor,
	&fjord__v1__experiment_spec__descriptor,
	&fjord__v1__experiment__descriptor,
	&fjord__v1__experiment_list__descriptor,
	&fjord__v1__path__descriptor,
	&fjord__v1__run__descriptor,
	&fjord__v1__run_list__descriptor,
	&fjord__v1__metric__descriptor,
	&fjord__v1__key_value__descriptor,
	&fjord__v1__provenance__descriptor,
	&fjord__v1__subflow_metrics__descriptor,
	&fjord__v1__subflow_sample__descriptor,
	&fjord__v1__event__descriptor,
	&fjord__v1__result__descriptor,
	&fjord__v1__probe_finding__descriptor,
	&fjord__v1__result_ack__descriptor,
	&fjord__v1__result_batch__descriptor,
	&fjord__v1__result_item_ack__descriptor,
	&fjord__v1__result_batch_ack__descriptor,
	&fjord__v1__result_row__descriptor,
	&fjord__v1__result_list__descriptor,
	&fjord__v1__trace_info__descriptor,
	&fjord__v1__trace_list__descriptor,
	&fjord__v1__aggregate_row__descriptor,
	&fjord__v1__aggregate_response__descriptor,
	&fjord__v1__census_cell__descriptor,
	&fjord__v1__census__descriptor,
	&fjord__v1__error__descriptor,
	&fjord__v1__health__descriptor,
};
const unsigned fj_fill_n_fjord_types = sizeof(fj_fill_fjord_types) / sizeof(fj_fill_fjord_types[0]);

const ProtobufCMessageDescriptor *const fj_fill_test_types[] = {
	&fjord__test__inner__descriptor,   &fjord__test__scalars__descriptor,
	&fjord__test__repeats__descriptor, &fjord__test__maps__descriptor,
	&fjord__test__choice__descriptor,  &fjord__test__tree__descriptor,
	&fjord__test2__legacy__descriptor,
};
const unsigned fj_fill_n_test_types = sizeof(fj_fill_test_types) / sizeof(fj_fill_test_types[0]);

const ProtobufCMessageDescriptor *fj_fill_find_type(const char *full_name)
{
	unsigned i;

	for (i = 0; i < fj_fill_n_fjord_types; i++)
		if (strcmp(fj_fill_fjord_types[i]->name, full_name) == 0)
			return fj_fill_fjord_types[i];
	for (i = 0; i < fj_fill_n_test_types; i++)
		if (strcmp(fj_fill_test_types[i]->name, full_name) == 0)
			return fj_fill_test_types[i];
	return NULL;
}

/* Position of f among the members of its oneof, and how many there are. */
static unsigned oneof_index(const ProtobufCMessageDescriptor *desc,
			    const ProtobufCFieldDescriptor *f, unsigned *count)
{
	unsigned i, idx = 0;

	*count = 0;
	for (i = 0; i < desc->n_fields; i++) {
		const ProtobufCFieldDescriptor *o = &desc->fields[i];

		if (!(o->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) ||
		    o->quantifier_offset != f->quantifier_offset)
			continue;
		if (o == f)
			idx = *count;
		(*count)++;
	}
	return idx;
}

unsigned fj_fill_max_oneof(const ProtobufCMessageDescriptor *desc)
{
	unsigned i, n, max = 1;

	for (i = 0; i < desc->n_fields; i++) {
		if (!(desc->fields[i].flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
			continue;
		oneof_index(desc, &desc->fields[i], &n);
		if (n > max)
			max = n;
	}
	return max;
}

static const char *const strings[] = {
	"h\xc3\xa9llo w\xc3\xb6rld \xe2\x82\xac \xf0\x9f\x98\x80 \"quoted\" back\\slash",
	"plain-ascii_value",
	"line\nbreak\ttab \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
};

static const double doubles[] = { 1e300, -2.5e-300, 0.1, NAN, INFINITY, -INFINITY, 123456789.125 };
static const float floats[] = { 3.25e38f, -1.5f, 1e-30f, 0.1f, NAN, -INFINITY, 16777216.0f };

static int fill_value(const ProtobufCFieldDescriptor *f, void *p, unsigned pick, unsigned *seed,
		      int depth);

static int fill_scalar(const ProtobufCFieldDescriptor *f, void *p, unsigned s)
{
	const ProtobufCEnumDescriptor *ed;
	ProtobufCBinaryData *b;
	size_t i;
	char *str;

	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		*(int32_t *)p = s & 1 ? INT32_MIN + (int32_t)s : INT32_MAX - (int32_t)s;
		return 0;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		*(uint32_t *)p = UINT32_MAX - s;
		return 0;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		/* Beyond 2^53, where a JSON number would lose digits, and negative. */
		*(int64_t *)p = s & 1 ? INT64_MIN + s : (1LL << 53) + 1 + s;
		return 0;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		*(uint64_t *)p = s & 1 ? UINT64_MAX - s : (1ULL << 53) + 1 + s;
		return 0;
	case PROTOBUF_C_TYPE_FLOAT:
		*(float *)p = floats[s % (sizeof(floats) / sizeof(floats[0]))];
		return 0;
	case PROTOBUF_C_TYPE_DOUBLE:
		*(double *)p = doubles[s % (sizeof(doubles) / sizeof(doubles[0]))];
		return 0;
	case PROTOBUF_C_TYPE_BOOL:
		*(protobuf_c_boolean *)p = 1;
		return 0;
	case PROTOBUF_C_TYPE_ENUM:
		ed = f->descriptor;
		*(int *)p = ed->values[ed->n_values > 1 ? 1 + s % (ed->n_values - 1) : 0].value;
		return 0;
	case PROTOBUF_C_TYPE_STRING:
		str = malloc(200);
		if (!str)
			return -1;
		snprintf(str, 200, "%s %u", strings[s % 3], s);
		*(char **)p = str;
		return 0;
	case PROTOBUF_C_TYPE_BYTES:
		b = p;
		b->len = 1 + s % 7;
		b->data = malloc(b->len);
		if (!b->data)
			return -1;
		for (i = 0; i < b->len; i++)
			b->data[i] = (uint8_t)(s * 37 + i * 101 + (i == b->len - 1 ? 0xfb : 0));
		return 0;
	default:
		return -1;
	}
}

static int fill_msg(ProtobufCMessage *m, unsigned pick, unsigned *seed, int depth);

static int fill_value(const ProtobufCFieldDescriptor *f, void *p, unsigned pick, unsigned *seed,
		      int depth)
{
	ProtobufCMessage *sub;

	if (f->type != PROTOBUF_C_TYPE_MESSAGE)
		return fill_scalar(f, p, (*seed)++);
	sub = malloc(((const ProtobufCMessageDescriptor *)f->descriptor)->sizeof_message);
	if (!sub)
		return -1;
	protobuf_c_message_init(f->descriptor, sub);
	*(ProtobufCMessage **)p = sub;
	return fill_msg(sub, pick, seed, depth - 1);
}

static size_t elt_size(ProtobufCType t)
{
	switch (t) {
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_DOUBLE:
		return 8;
	case PROTOBUF_C_TYPE_STRING:
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(void *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	default:
		return 4;
	}
}

static int fill_repeated(const ProtobufCFieldDescriptor *f, ProtobufCMessage *m, unsigned pick,
			 unsigned *seed, int depth)
{
	size_t *count = (size_t *)((char *)m + f->quantifier_offset), i, n = 2,
	       esz = elt_size(f->type);
	char **arr = (char **)((char *)m + f->offset);
	const ProtobufCMessageDescriptor *ed = f->descriptor;

	*arr = calloc(n, esz);
	if (!*arr)
		return -1;
	for (i = 0; i < n; i++) {
		if (fill_value(f, *arr + i * esz, pick, seed, depth))
			return -1;
		(*count)++;
		/* Map entries need distinct keys; bool keys have only two. */
		if (f->type == PROTOBUF_C_TYPE_MESSAGE && ed->n_fields == 2 &&
		    strcmp(ed->fields[0].name, "key") == 0 &&
		    ed->fields[0].type == PROTOBUF_C_TYPE_BOOL) {
			ProtobufCMessage *e = ((ProtobufCMessage **)*arr)[i];

			*(protobuf_c_boolean *)((char *)e + ed->fields[0].offset) = (i & 1) != 0;
		}
	}
	return 0;
}

static int fill_msg(ProtobufCMessage *m, unsigned pick, unsigned *seed, int depth)
{
	const ProtobufCMessageDescriptor *desc = m->descriptor;
	unsigned i, n;

	for (i = 0; i < desc->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &desc->fields[i];
		void *p = (char *)m + f->offset;

		/* Recursive types stop at the depth cap. */
		if (f->type == PROTOBUF_C_TYPE_MESSAGE && depth <= 1)
			continue;
		if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
		    oneof_index(desc, f, &n) != (pick + (unsigned)depth) % n)
			continue;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			if (fill_repeated(f, m, pick, seed, depth))
				return -1;
			continue;
		}
		if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
			*(uint32_t *)((char *)m + f->quantifier_offset) = f->id;
		if (fill_value(f, p, pick, seed, depth))
			return -1;
		if (!(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
		    f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_STRING &&
		    f->type != PROTOBUF_C_TYPE_MESSAGE)
			*(protobuf_c_boolean *)((char *)m + f->quantifier_offset) = 1;
	}
	return 0;
}

ProtobufCMessage *fj_fill_new(const ProtobufCMessageDescriptor *desc, unsigned pick, unsigned seed,
			      int max_depth)
{
	ProtobufCMessage *m = malloc(desc->sizeof_message);

	if (!m)
		return NULL;
	protobuf_c_message_init(desc, m);
	if (fill_msg(m, pick, &seed, max_depth)) {
		protobuf_c_message_free_unpacked(m, NULL);
		return NULL;
	}
	return m;
}
