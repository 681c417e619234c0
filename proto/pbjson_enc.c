/*
 * pbjson encoder: protobuf-c message -> jansson tree -> text. See pbjson.h.
 */
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pbjson.h"
#include "pbjson_priv.h"

static json_t *enc_msg(const ProtobufCMessage *msg, int flags);

/*
 * A string that is not valid UTF-8 (protobuf-c does not check on unpack)
 * cannot be put into JSON as is; each bad byte becomes U+FFFD so that the
 * answer stays valid JSON and the damage stays visible.
 */
static json_t *enc_string(const char *s)
{
	size_t len = strlen(s), i = 0, o = 0, n;
	json_t *j;
	char *buf;

	if (pbjson_utf8_valid(s, len))
		return json_stringn(s, len);
	buf = pbjson_malloc(len * 3 + 1);
	if (!buf)
		return NULL;
	while (i < len) {
		n = pbjson_utf8_seq_len((const unsigned char *)s + i, len - i);
		if (n) {
			memcpy(buf + o, s + i, n);
			o += n;
			i += n;
		} else {
			memcpy(buf + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		}
	}
	j = json_stringn(buf, o);
	free(buf);
	return j;
}

static const char b64_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static json_t *enc_bytes(const ProtobufCBinaryData *b)
{
	size_t i, o = 0, olen;
	json_t *j;
	char *buf;

	if (b->len > (SIZE_MAX - 1) / 4 * 3 - 3)
		return NULL;
	olen = (b->len + 2) / 3 * 4;
	buf = pbjson_malloc(olen + 1);
	if (!buf)
		return NULL;
	for (i = 0; i + 2 < b->len; i += 3) {
		uint32_t v = (uint32_t)b->data[i] << 16 | (uint32_t)b->data[i + 1] << 8 |
			     b->data[i + 2];

		buf[o++] = b64_chars[v >> 18];
		buf[o++] = b64_chars[(v >> 12) & 63];
		buf[o++] = b64_chars[(v >> 6) & 63];
		buf[o++] = b64_chars[v & 63];
	}
	if (i < b->len) {
		uint32_t v = (uint32_t)b->data[i] << 16;

		if (i + 1 < b->len)
			v |= (uint32_t)b->data[i + 1] << 8;
		buf[o++] = b64_chars[v >> 18];
		buf[o++] = b64_chars[(v >> 12) & 63];
		buf[o++] = i + 1 < b->len ? b64_chars[(v >> 6) & 63] : '=';
		buf[o++] = '=';
	}
	j = json_stringn(buf, o);
	free(buf);
	return j;
}

static json_t *enc_double(double v)
{
	if (isnan(v))
		return json_string("NaN");
	if (isinf(v))
		return json_string(v > 0 ? "Infinity" : "-Infinity");
	return json_real(v);
}

/*
 * A float is widened to the double nearest its shortest decimal form, so
 * that 0.1f prints as 0.1 rather than 0.10000000149011612; parsing that
 * number back as a float gives the same float.
 */
static double float_shortest(float f)
{
	char buf[32];
	int prec;

	for (prec = 6; prec <= 9; prec++) {
		snprintf(buf, sizeof(buf), "%.*g", prec, (double)f);
		if (strtof(buf, NULL) == f)
			return strtod(buf, NULL);
	}
	return f;
}

static json_t *enc_int64(int64_t v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%" PRId64, v);
	return json_string(buf);
}

static json_t *enc_uint64(uint64_t v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%" PRIu64, v);
	return json_string(buf);
}

/* The JSON value of one stored value; p points at its storage. */
static json_t *enc_value(const ProtobufCFieldDescriptor *f, const void *p, int flags)
{
	const ProtobufCEnumValue *ev;

	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		return json_integer(*(const int32_t *)p);
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		return json_integer(*(const uint32_t *)p);
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		return enc_int64(*(const int64_t *)p);
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return enc_uint64(*(const uint64_t *)p);
	case PROTOBUF_C_TYPE_FLOAT: {
		float v = *(const float *)p;

		return isfinite(v) ? json_real(float_shortest(v)) : enc_double(v);
	}
	case PROTOBUF_C_TYPE_DOUBLE:
		return enc_double(*(const double *)p);
	case PROTOBUF_C_TYPE_BOOL:
		return json_boolean(*(const protobuf_c_boolean *)p);
	case PROTOBUF_C_TYPE_ENUM:
		/* An open enum may carry a value this build does not know. */
		ev = protobuf_c_enum_descriptor_get_value(f->descriptor, *(const int32_t *)p);
		return ev ? json_string(ev->name) : json_integer(*(const int32_t *)p);
	case PROTOBUF_C_TYPE_STRING:
		return enc_string(*(char *const *)p ? *(char *const *)p : "");
	case PROTOBUF_C_TYPE_BYTES:
		return enc_bytes(p);
	case PROTOBUF_C_TYPE_MESSAGE:
		if (!*(ProtobufCMessage *const *)p)
			return json_object();
		return enc_msg(*(ProtobufCMessage *const *)p, flags);
	}
	return NULL;
}

static json_t *enc_map(const ProtobufCFieldDescriptor *f, ProtobufCMessage *const *entries,
		       size_t n, int flags)
{
	const ProtobufCMessageDescriptor *ed = f->descriptor;
	const ProtobufCFieldDescriptor *kf = &ed->fields[0], *vf = &ed->fields[1];
	json_t *obj = json_object();
	size_t i;

	if (!obj)
		return NULL;
	for (i = 0; i < n; i++) {
		const ProtobufCMessage *e = entries[i];
		json_t *k, *v;
		char buf[32];
		const char *key;
		int rc;

		if (!e ||
		    pbjson_map_key_string(kf, pbjson_member(e, kf->offset), buf, sizeof(buf), &key))
			goto fail;
		/* Keys go through the same UTF-8 repair as string values. */
		k = enc_string(key);
		if (!k)
			goto fail;
		v = enc_value(vf, pbjson_member(e, vf->offset), flags);
		/* json_object_set_new() takes v even when it fails. */
		rc = v ? json_object_set_new(obj, json_string_value(k), v) : -1;
		json_decref(k);
		if (rc)
			goto fail;
	}
	return obj;
fail:
	json_decref(obj);
	return NULL;
}

/* Whether a singular field is set, following protobuf-c's own packing rules. */
static bool field_is_set(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f)
{
	const void *p = pbjson_member(msg, f->offset);

	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
		return *(const uint32_t *)pbjson_member(msg, f->quantifier_offset) == f->id;
	if (f->label == PROTOBUF_C_LABEL_OPTIONAL) {
		if (f->type == PROTOBUF_C_TYPE_MESSAGE || f->type == PROTOBUF_C_TYPE_STRING)
			return *(void *const *)p && *(void *const *)p != f->default_value;
		return *(const protobuf_c_boolean *)pbjson_member(msg, f->quantifier_offset);
	}
	if (f->label == PROTOBUF_C_LABEL_REQUIRED)
		return f->type != PROTOBUF_C_TYPE_MESSAGE || *(void *const *)p;
	switch (f->type) {
	case PROTOBUF_C_TYPE_STRING:
		return *(char *const *)p && **(char *const *)p;
	case PROTOBUF_C_TYPE_BYTES:
		return ((const ProtobufCBinaryData *)p)->len > 0;
	case PROTOBUF_C_TYPE_MESSAGE:
		return *(void *const *)p != NULL;
	case PROTOBUF_C_TYPE_FLOAT:
		return *(const float *)p != 0;
	case PROTOBUF_C_TYPE_DOUBLE:
		return *(const double *)p != 0;
	case PROTOBUF_C_TYPE_BOOL:
		return *(const protobuf_c_boolean *)p != 0;
	default:
		return memcmp(p, "\0\0\0\0\0\0\0\0", pbjson_elt_size(f->type)) != 0;
	}
}

/* The JSON of one field, or NULL with *skip set when it is left out. */
static json_t *enc_field(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f, int flags,
			 bool *skip)
{
	static const uint64_t zero[2];
	const void *p = pbjson_member(msg, f->offset);
	const char *dflt;
	json_t *arr;
	size_t n, i;

	*skip = false;
	if (f->label == PROTOBUF_C_LABEL_REPEATED) {
		n = *(const size_t *)pbjson_member(msg, f->quantifier_offset);
		if (n == 0 && !(flags & FJ_PBJSON_DEFAULTS)) {
			*skip = true;
			return NULL;
		}
		if (pbjson_is_map_field(msg->descriptor, f))
			return enc_map(f, *(ProtobufCMessage *const *const *)p, n, flags);
		arr = json_array();
		for (i = 0; arr && i < n; i++) {
			const char *base = *(const char *const *)p;

			if (json_array_append_new(arr,
						  enc_value(f, base + i * pbjson_elt_size(f->type),
							    flags))) {
				json_decref(arr);
				arr = NULL;
			}
		}
		return arr;
	}
	if (field_is_set(msg, f))
		return enc_value(f, p, flags);
	/* Unset oneof members and sub-messages never appear, as in protoc. */
	if (!(flags & FJ_PBJSON_DEFAULTS) || (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) ||
	    f->type == PROTOBUF_C_TYPE_MESSAGE) {
		*skip = true;
		return NULL;
	}
	if (f->label != PROTOBUF_C_LABEL_OPTIONAL)
		return enc_value(f, p, flags);
	/* An unset proto2 optional field shows its declared default. */
	if (f->type == PROTOBUF_C_TYPE_STRING) {
		dflt = f->default_value ? f->default_value : "";
		return enc_value(f, &dflt, flags);
	}
	return enc_value(f, f->default_value ? f->default_value : (const void *)zero, flags);
}

static json_t *enc_msg(const ProtobufCMessage *msg, int flags)
{
	const ProtobufCMessageDescriptor *desc = msg->descriptor;
	json_t *obj = json_object();
	unsigned i;

	if (!obj)
		return NULL;
	for (i = 0; i < desc->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &desc->fields[i];
		char sbuf[NAME_CAP], *name = sbuf;
		size_t nlen = pbjson_json_name_len(f->name);
		bool skip;
		json_t *v;
		int rc;

		v = enc_field(msg, f, flags, &skip);
		if (skip)
			continue;
		if (!v)
			goto fail;
		if (nlen >= sizeof(sbuf)) {
			name = pbjson_malloc(nlen + 1);
			if (!name) {
				json_decref(v);
				goto fail;
			}
		}
		pbjson_json_name_build(f->name, name);
		rc = json_object_set_new(obj, name, v);
		if (name != sbuf)
			free(name);
		if (rc)
			goto fail;
	}
	return obj;
fail:
	json_decref(obj);
	return NULL;
}

json_t *fj_pbjson_to_json(const ProtobufCMessage *msg, int flags)
{
	if (!msg || !msg->descriptor)
		return NULL;
	return enc_msg(msg, flags);
}

/*
 * Text output. jansson prints every real with 17 significant digits
 * (0.1 becomes 0.10000000000000001); the writer below prints the shortest
 * form that reads back to the same double, as protoc and Python do, and is
 * otherwise the same JSON jansson would write.
 */
struct out_buf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void out_put(struct out_buf *o, const char *s, size_t n)
{
	char *np;
	size_t cap;

	if (o->oom)
		return;
	if (o->len + n + 1 > o->cap) {
		cap = o->cap ? o->cap : 256;
		while (cap < o->len + n + 1)
			cap *= 2;
		np = pbjson_realloc(o->p, cap);
		if (!np) {
			o->oom = true;
			return;
		}
		o->p = np;
		o->cap = cap;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
	o->p[o->len] = '\0';
}

static void out_str(struct out_buf *o, const char *s)
{
	out_put(o, s, strlen(s));
}

static void out_indent(struct out_buf *o, int pretty, int level)
{
	int i;

	if (!pretty)
		return;
	out_put(o, "\n", 1);
	for (i = 0; i < level; i++)
		out_put(o, "  ", 2);
}

static void out_json_string(struct out_buf *o, const char *s, size_t len)
{
	size_t i, run = 0;
	char esc[8];

	out_put(o, "\"", 1);
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		out_put(o, s + run, i - run);
		run = i + 1;
		switch (c) {
		case '"':
			out_str(o, "\\\"");
			break;
		case '\\':
			out_str(o, "\\\\");
			break;
		case '\n':
			out_str(o, "\\n");
			break;
		case '\t':
			out_str(o, "\\t");
			break;
		case '\r':
			out_str(o, "\\r");
			break;
		case '\b':
			out_str(o, "\\b");
			break;
		case '\f':
			out_str(o, "\\f");
			break;
		default:
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			out_str(o, esc);
		}
	}
	out_put(o, s + run, len - run);
	out_put(o, "\"", 1);
}

/* Shortest "%.Ng" that parses back to exactly v; ".0" keeps it a real. */
static void out_real(struct out_buf *o, double v)
{
	char buf[40];
	int prec;

	for (prec = 15; prec < 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	if (prec == 17)
		snprintf(buf, sizeof(buf), "%.17g", v);
	if (!strpbrk(buf, ".eEni"))
		strcat(buf, ".0");
	out_str(o, buf);
}

static void out_value(struct out_buf *o, const json_t *j, int pretty, int level)
{
	char buf[32];
	const char *key;
	json_t *v;
	size_t i, n;

	switch (json_typeof(j)) {
	case JSON_OBJECT:
		if (json_object_size(j) == 0) {
			out_str(o, "{}");
			return;
		}
		out_put(o, "{", 1);
		i = 0;
		json_object_foreach((json_t *)j, key, v)
		{
			if (i++)
				out_put(o, ",", 1);
			out_indent(o, pretty, level + 1);
			out_json_string(o, key, strlen(key));
			out_str(o, pretty ? ": " : ":");
			out_value(o, v, pretty, level + 1);
		}
		out_indent(o, pretty, level);
		out_put(o, "}", 1);
		return;
	case JSON_ARRAY:
		n = json_array_size(j);
		if (n == 0) {
			out_str(o, "[]");
			return;
		}
		out_put(o, "[", 1);
		for (i = 0; i < n; i++) {
			if (i)
				out_put(o, ",", 1);
			out_indent(o, pretty, level + 1);
			out_value(o, json_array_get(j, i), pretty, level + 1);
		}
		out_indent(o, pretty, level);
		out_put(o, "]", 1);
		return;
	case JSON_STRING:
		out_json_string(o, json_string_value(j), json_string_length(j));
		return;
	case JSON_INTEGER:
		snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(j));
		out_str(o, buf);
		return;
	case JSON_REAL:
		out_real(o, json_real_value(j));
		return;
	case JSON_TRUE:
		out_str(o, "true");
		return;
	case JSON_FALSE:
		out_str(o, "false");
		return;
	case JSON_NULL:
		out_str(o, "null");
		return;
	}
}

int fj_pbjson_dumps(const json_t *json, int flags, char **out)
{
	struct out_buf o = { 0 };

	*out = NULL;
	if (!json)
		return -EINVAL;
	out_value(&o, json, flags & FJ_PBJSON_PRETTY, 0);
	if (o.oom || !o.p) {
		free(o.p);
		return -ENOMEM;
	}
	*out = o.p;
	return 0;
}

int fj_pbjson_encode(const ProtobufCMessage *msg, int flags, char **out)
{
	json_t *j;
	int rc;

	*out = NULL;
	j = fj_pbjson_to_json(msg, flags);
	if (!j)
		return -ENOMEM;
	rc = fj_pbjson_dumps(j, flags, out);
	json_decref(j);
	return rc;
}
