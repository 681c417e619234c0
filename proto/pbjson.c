/*
 * pbjson: the canonical proto3 JSON mapping for protobuf-c messages, driven
 * only by the descriptors so that it works for every message type without
 * generated glue. See pbjson.h for the contract. This file holds what the
 * encoder (pbjson_enc.c) and the decoder (pbjson_dec.c) share, and the enum
 * name helpers.
 *
 * protobuf-c descriptors carry neither json_name options nor a map_entry
 * flag, so JSON names are derived from the field name exactly as protoc
 * derives its default json_name, and a map field is recognised by the shape
 * protoc gives every map entry (see pbjson_is_map_field()).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pbjson.h"
#include "pbjson_priv.h"

/* ------------------------------------------------------------------ */
/* Shared helpers                                                     */
/* ------------------------------------------------------------------ */

static bool (*fault_hook)(void);

void fj_pbjson_set_fault_hook(bool (*should_fail)(void))
{
	fault_hook = should_fail;
}

/* Allocation goes through these so that tests can make any of them fail. */
void *pbjson_malloc(size_t n)
{
	return fault_hook && fault_hook() ? NULL : malloc(n);
}

void *pbjson_calloc(size_t n, size_t size)
{
	return fault_hook && fault_hook() ? NULL : calloc(n, size);
}

void *pbjson_realloc(void *p, size_t n)
{
	return fault_hook && fault_hook() ? NULL : realloc(p, n);
}

/* Size of one element of a repeated field's array, by field type. */
size_t pbjson_elt_size(ProtobufCType type)
{
	switch (type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
	case PROTOBUF_C_TYPE_ENUM:
		return 4;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return 8;
	case PROTOBUF_C_TYPE_FLOAT:
		return sizeof(float);
	case PROTOBUF_C_TYPE_DOUBLE:
		return sizeof(double);
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_STRING:
		return sizeof(char *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(ProtobufCMessage *);
	}
	return 0;
}

/* protoc's default json_name: drop each '_' and upper-case the next char. */
size_t pbjson_json_name_len(const char *name)
{
	size_t n = 0;

	for (; *name; name++)
		if (*name != '_')
			n++;
	return n;
}

void pbjson_json_name_build(const char *name, char *out)
{
	bool up = false;

	for (; *name; name++) {
		if (*name == '_') {
			up = true;
			continue;
		}
		*out++ = up && *name >= 'a' && *name <= 'z' ? (char)(*name - 'a' + 'A') : *name;
		up = false;
	}
	*out = '\0';
}

/* Compares key with the json_name of a field without building it. */
bool pbjson_json_name_eq(const char *name, const char *key)
{
	bool up = false;

	for (; *name; name++) {
		char c;

		if (*name == '_') {
			up = true;
			continue;
		}
		c = up && *name >= 'a' && *name <= 'z' ? (char)(*name - 'a' + 'A') : *name;
		up = false;
		if (*key++ != c)
			return false;
	}
	return *key == '\0';
}

/*
 * protoc turns "map<K, V> foo_bar = n" into "repeated FooBarEntry foo_bar"
 * with FooBarEntry nested in the parent and holding exactly key = 1 and
 * value = 2. protobuf-c keeps no map_entry flag, so this shape is the test.
 */
bool pbjson_is_map_field(const ProtobufCMessageDescriptor *parent,
			 const ProtobufCFieldDescriptor *f)
{
	const ProtobufCMessageDescriptor *e = f->descriptor;
	size_t plen = strlen(parent->name), i = 0;
	const char *n, *s;
	bool up = true;

	if (f->label != PROTOBUF_C_LABEL_REPEATED || f->type != PROTOBUF_C_TYPE_MESSAGE || !e)
		return false;
	if (e->n_fields != 2 || e->fields[0].id != 1 || e->fields[1].id != 2 ||
	    strcmp(e->fields[0].name, "key") != 0 || strcmp(e->fields[1].name, "value") != 0 ||
	    e->fields[0].label == PROTOBUF_C_LABEL_REPEATED ||
	    e->fields[1].label == PROTOBUF_C_LABEL_REPEATED)
		return false;
	if (strncmp(e->name, parent->name, plen) != 0 || e->name[plen] != '.')
		return false;
	/* The entry's short name is the field name in UpperCamelCase + "Entry". */
	s = e->name + plen + 1;
	for (n = f->name; *n; n++) {
		char c;

		if (*n == '_') {
			up = true;
			continue;
		}
		c = up && *n >= 'a' && *n <= 'z' ? (char)(*n - 'a' + 'A') : *n;
		up = false;
		if (s[i++] != c)
			return false;
	}
	return strcmp(s + i, "Entry") == 0;
}

/* Strict UTF-8 check: no overlong forms, no surrogates, nothing above U+10FFFF. */
size_t pbjson_utf8_seq_len(const unsigned char *s, size_t left)
{
	unsigned char c = s[0];
	size_t n, i;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, cp = c & 0x07;
	else
		return 0;
	if (left < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

bool pbjson_utf8_valid(const char *s, size_t len)
{
	size_t i = 0, n;

	while (i < len) {
		n = pbjson_utf8_seq_len((const unsigned char *)s + i, len - i);
		if (!n)
			return false;
		i += n;
	}
	return true;
}

/* Map keys are always JSON strings: decimal for integers, true/false for bool. */
int pbjson_map_key_string(const ProtobufCFieldDescriptor *kf, const void *p, char *buf, size_t cap,
			  const char **key)
{
	*key = buf;
	switch (kf->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		snprintf(buf, cap, "%" PRId32, *(const int32_t *)p);
		return 0;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		snprintf(buf, cap, "%" PRIu32, *(const uint32_t *)p);
		return 0;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		snprintf(buf, cap, "%" PRId64, *(const int64_t *)p);
		return 0;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		snprintf(buf, cap, "%" PRIu64, *(const uint64_t *)p);
		return 0;
	case PROTOBUF_C_TYPE_BOOL:
		snprintf(buf, cap, "%s", *(const protobuf_c_boolean *)p ? "true" : "false");
		return 0;
	case PROTOBUF_C_TYPE_STRING:
		*key = *(char *const *)p ? *(char *const *)p : "";
		return 0;
	default:
		return -EINVAL;
	}
}

/* ------------------------------------------------------------------ */
/* Enum helpers                                                       */
/* ------------------------------------------------------------------ */

/*
 * The prefix shared by an enum's value names: "STACK_" for Stack, by the
 * protobuf style rule (the type name in UPPER_SNAKE), else the longest
 * common prefix ending in '_'.
 */
static size_t enum_prefix_len(const ProtobufCEnumDescriptor *ed)
{
	char want[NAME_CAP];
	const char *s = ed->short_name;
	size_t n = 0, i, lcp;

	for (; *s && n + 3 < sizeof(want); s++) {
		if (*s >= 'A' && *s <= 'Z' && n > 0)
			want[n++] = '_';
		want[n++] = (char)(*s >= 'a' && *s <= 'z' ? *s - 'a' + 'A' : *s);
	}
	want[n++] = '_';
	want[n] = '\0';
	for (i = 0; i < ed->n_values; i++)
		if (strncmp(ed->values[i].name, want, n) != 0 || !ed->values[i].name[n])
			break;
	if (ed->n_values && i == ed->n_values)
		return n;
	if (!ed->n_values)
		return 0;
	lcp = strlen(ed->values[0].name);
	for (i = 1; i < ed->n_values; i++) {
		size_t j = 0;

		while (j < lcp && ed->values[i].name[j] == ed->values[0].name[j])
			j++;
		lcp = j;
	}
	while (lcp > 0 && ed->values[0].name[lcp - 1] != '_')
		lcp--;
	for (i = 0; i < ed->n_values; i++)
		if (!ed->values[i].name[lcp])
			return 0;
	return lcp;
}

int fj_pbjson_enum_parse(const ProtobufCEnumDescriptor *desc, const char *name, int *value)
{
	size_t plen, i;

	if (!desc || !name || !*name)
		return -EINVAL;
	plen = enum_prefix_len(desc);
	for (i = 0; i < desc->n_values; i++) {
		const char *full = desc->values[i].name;

		if (strcasecmp(full, name) == 0 || strcasecmp(full + plen, name) == 0) {
			*value = desc->values[i].value;
			return 0;
		}
	}
	return -EINVAL;
}

/* Short names are built once per (enum, value) and kept for the process. */
struct short_name {
	struct short_name *next;
	const ProtobufCEnumDescriptor *desc;
	int value;
	char name[];
};

static pthread_mutex_t short_lock = PTHREAD_MUTEX_INITIALIZER;
static struct short_name *short_names;

const char *fj_pbjson_enum_short(const ProtobufCEnumDescriptor *desc, int value)
{
	const ProtobufCEnumValue *ev;
	struct short_name *s;
	const char *src;
	size_t i, len;

	if (!desc)
		return NULL;
	ev = protobuf_c_enum_descriptor_get_value(desc, value);
	if (!ev)
		return NULL;
	pthread_mutex_lock(&short_lock);
	for (s = short_names; s; s = s->next)
		if (s->desc == desc && s->value == value)
			break;
	if (!s) {
		src = ev->name + enum_prefix_len(desc);
		len = strlen(src);
		s = pbjson_malloc(sizeof(*s) + len + 1);
		if (s) {
			s->desc = desc;
			s->value = value;
			for (i = 0; i <= len; i++)
				s->name[i] = (char)(src[i] >= 'A' && src[i] <= 'Z'
							    ? src[i] - 'A' + 'a'
							    : src[i]);
			s->next = short_names;
			short_names = s;
		}
	}
	pthread_mutex_unlock(&short_lock);
	return s ? s->name : NULL;
}
