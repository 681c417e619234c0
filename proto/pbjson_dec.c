/*
 * pbjson decoder: text -> jansson tree -> protobuf-c message, with every
 * rejection naming the field path. See pbjson.h.
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

/* Longest field path kept for error messages; longer paths are cut. */
#define PATH_CAP 256

/*
 * The path to the value being decoded is kept as a stack of references
 * (member names point into the JSON being decoded) and only rendered as
 * text when an error is reported, so the common path costs nothing.
 */
enum frame_kind { FRAME_NAME, FRAME_INDEX, FRAME_KEY };

struct path_frame {
	enum frame_kind kind;
	const char *s;
	size_t len, index;
};

/* A name and an index or key per message level, plus slack. */
#define PATH_FRAMES (2 * FJ_PBJSON_MAX_DEPTH + 8)

struct dec {
	struct path_frame frames[PATH_FRAMES];
	size_t depth; /* may exceed PATH_FRAMES; frames beyond are not kept */
	char *err;
	size_t err_len;
};

/* Pushes one path element; returns the depth to restore with path_pop(). */
static size_t path_push(struct dec *d, enum frame_kind kind, const char *s, size_t len,
			size_t index)
{
	size_t old = d->depth;

	if (d->depth < PATH_FRAMES)
		d->frames[d->depth] = (struct path_frame){ kind, s, len, index };
	d->depth++;
	return old;
}

static size_t path_push_name(struct dec *d, const char *name)
{
	return path_push(d, FRAME_NAME, name, strlen(name), 0);
}

static size_t path_push_index(struct dec *d, size_t index)
{
	return path_push(d, FRAME_INDEX, NULL, 0, index);
}

static size_t path_push_key(struct dec *d, const char *key)
{
	return path_push(d, FRAME_KEY, key, strlen(key), 0);
}

static void path_pop(struct dec *d, size_t old)
{
	d->depth = old;
}

/* Renders the path ("spec.targets.pairs[1].clientAgentId") into buf. */
static void path_render(const struct dec *d, char *buf, size_t cap)
{
	size_t i, n = 0, kept = d->depth < PATH_FRAMES ? d->depth : PATH_FRAMES;
	int w = 0;

	buf[0] = '\0';
	for (i = 0; i < kept && n < cap; i++, n += (size_t)w) {
		const struct path_frame *f = &d->frames[i];

		if (f->kind == FRAME_NAME)
			w = snprintf(buf + n, cap - n, "%s%.*s", n ? "." : "", (int)f->len, f->s);
		else if (f->kind == FRAME_KEY)
			w = snprintf(buf + n, cap - n, "[%.*s]", (int)f->len, f->s);
		else
			w = snprintf(buf + n, cap - n, "[%zu]", f->index);
		if (w < 0)
			return;
	}
	if (d->depth > kept && n < cap)
		snprintf(buf + n, cap - n, "...");
}

static int dec_fail(struct dec *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Writes "path: message" (or just the message at the top) and returns -EINVAL. */
static int dec_fail(struct dec *d, const char *fmt, ...)
{
	char path[PATH_CAP];
	va_list ap;
	int n = 0;

	if (!d->err || !d->err_len)
		return -EINVAL;
	if (d->depth) {
		path_render(d, path, sizeof(path));
		n = snprintf(d->err, d->err_len, "%s: ", path);
	}
	if (n < 0 || (size_t)n >= d->err_len)
		return -EINVAL;
	va_start(ap, fmt);
	vsnprintf(d->err + n, d->err_len - (size_t)n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static const char *json_kind(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
	case JSON_REAL:
		return "a number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	case JSON_NULL:
		return "null";
	}
	return "a value";
}

/* Strict decimal integer text: optional '-', then digits only. */
static bool is_decimal(const char *s, bool allow_minus)
{
	if (allow_minus && *s == '-')
		s++;
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

static int dec_signed_text(struct dec *d, const char *s, int64_t min, int64_t max, const char *tn,
			   int64_t *out)
{
	long long v;
	char *end;

	if (!is_decimal(s, true))
		return dec_fail(d, "expected an integer, got \"%.40s\"", s);
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno == ERANGE || v < min || v > max)
		return dec_fail(d, "value %.40s is out of range for %s", s, tn);
	*out = v;
	return 0;
}

static int dec_unsigned_text(struct dec *d, const char *s, uint64_t max, const char *tn,
			     uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (*s == '-' && is_decimal(s, true))
		return dec_fail(d, "value %.40s is out of range for %s", s, tn);
	if (!is_decimal(s, false))
		return dec_fail(d, "expected an integer, got \"%.40s\"", s);
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno == ERANGE || v > max)
		return dec_fail(d, "value %.40s is out of range for %s", s, tn);
	*out = v;
	return 0;
}

/* A JSON real is accepted for an integer field when it is integral (1e3, 5.0). */
static int dec_real_integral(struct dec *d, double r, double lo, double hi_excl, const char *tn,
			     double *out)
{
	if (!isfinite(r) || r != floor(r))
		return dec_fail(d, "expected an integer, got %.17g", r);
	if (r < lo || r >= hi_excl)
		return dec_fail(d, "value %.17g is out of range for %s", r, tn);
	*out = r;
	return 0;
}

static int dec_signed(struct dec *d, const json_t *v, int64_t min, int64_t max, const char *tn,
		      int64_t *out)
{
	double r;
	int rc;

	if (json_is_integer(v)) {
		json_int_t i = json_integer_value(v);

		if (i < min || i > max)
			return dec_fail(d, "value %" JSON_INTEGER_FORMAT " is out of range for %s",
					i, tn);
		*out = i;
		return 0;
	}
	if (json_is_real(v)) {
		rc = dec_real_integral(d, json_real_value(v), (double)min, (double)max + 1.0, tn,
				       &r);
		if (!rc)
			*out = (int64_t)r;
		return rc;
	}
	if (json_is_string(v))
		return dec_signed_text(d, json_string_value(v), min, max, tn, out);
	return dec_fail(d, "expected an integer, got %s", json_kind(v));
}

static int dec_unsigned(struct dec *d, const json_t *v, uint64_t max, const char *tn, uint64_t *out)
{
	double r;
	int rc;

	if (json_is_integer(v)) {
		json_int_t i = json_integer_value(v);

		if (i < 0 || (uint64_t)i > max)
			return dec_fail(d, "value %" JSON_INTEGER_FORMAT " is out of range for %s",
					i, tn);
		*out = (uint64_t)i;
		return 0;
	}
	if (json_is_real(v)) {
		rc = dec_real_integral(d, json_real_value(v), 0, (double)max + 1.0, tn, &r);
		if (!rc)
			*out = (uint64_t)r;
		return rc;
	}
	if (json_is_string(v))
		return dec_unsigned_text(d, json_string_value(v), max, tn, out);
	return dec_fail(d, "expected an integer, got %s", json_kind(v));
}

static int dec_double(struct dec *d, const json_t *v, bool is_float, double *out)
{
	const char *s, *c;
	char *end;
	double r;

	if (json_is_integer(v)) {
		r = (double)json_integer_value(v);
	} else if (json_is_real(v)) {
		r = json_real_value(v);
	} else if (json_is_string(v)) {
		s = json_string_value(v);
		if (strcmp(s, "NaN") == 0) {
			*out = NAN;
			return 0;
		}
		if (strcmp(s, "Infinity") == 0 || strcmp(s, "-Infinity") == 0) {
			*out = *s == '-' ? -INFINITY : INFINITY;
			return 0;
		}
		/* Only plain decimal text: strtod alone would also take "inf" and hex. */
		for (c = s; *c; c++)
			if (!strchr("0123456789.eE+-", *c))
				break;
		if (*c || !*s)
			return dec_fail(d,
					"expected a number, \"NaN\", \"Infinity\" or "
					"\"-Infinity\", got \"%.40s\"",
					s);
		errno = 0;
		r = strtod(s, &end);
		if (*end)
			return dec_fail(d, "expected a number, got \"%.40s\"", s);
		if (errno == ERANGE && isinf(r))
			return dec_fail(d, "value %.40s is out of range for double", s);
	} else {
		return dec_fail(d, "expected a number, got %s", json_kind(v));
	}
	/*
	 * Out of range is what would round to infinity, i.e. from FLT_MAX plus
	 * half its ulp (2^103) on: FLT_MAX's own shortest form, 3.4028235e+38,
	 * lies just above FLT_MAX and is fine. Compared as doubles, since
	 * converting an out-of-range double to float is undefined in C.
	 */
	if (is_float && isfinite(r) && fabs(r) >= (double)FLT_MAX + 0x1p103)
		return dec_fail(d, "value %.9g is out of range for float", r);
	*out = r;
	return 0;
}

/* Standard or URL-safe base64, padded or not, as the mapping allows. */
static int b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

static int dec_bytes(struct dec *d, const json_t *v, ProtobufCBinaryData *out)
{
	const char *s;
	size_t len, i, o = 0, pad = 0;
	uint32_t acc = 0;
	int bits = 0, x;
	uint8_t *buf;

	if (!json_is_string(v))
		return dec_fail(d, "expected a base64 string, got %s", json_kind(v));
	s = json_string_value(v);
	len = json_string_length(v);
	while (len > 0 && s[len - 1] == '=' && pad < 2) {
		len--;
		pad++;
	}
	if (len % 4 == 1 || (pad && (len + pad) % 4 != 0))
		return dec_fail(d, "invalid base64: bad length or padding");
	buf = pbjson_malloc(len / 4 * 3 + 3);
	if (!buf)
		return -ENOMEM;
	for (i = 0; i < len; i++) {
		x = b64_value(s[i]);
		if (x < 0) {
			free(buf);
			return dec_fail(d, "invalid base64: bad character at offset %zu", i);
		}
		acc = acc << 6 | (uint32_t)x;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[o++] = (uint8_t)(acc >> bits);
		}
	}
	out->data = buf;
	out->len = o;
	return 0;
}

static int dec_string(struct dec *d, const json_t *v, char **out)
{
	size_t len;
	char *s;

	if (!json_is_string(v))
		return dec_fail(d, "expected a string, got %s", json_kind(v));
	len = json_string_length(v);
	/* protobuf-c strings end at the first NUL: refuse rather than cut. */
	if (memchr(json_string_value(v), '\0', len))
		return dec_fail(d, "string contains a NUL character");
	s = pbjson_malloc(len + 1);
	if (!s)
		return -ENOMEM;
	memcpy(s, json_string_value(v), len + 1);
	*out = s;
	return 0;
}

static int dec_enum(struct dec *d, const ProtobufCEnumDescriptor *ed, const json_t *v, int32_t *out)
{
	const ProtobufCEnumValue *ev;
	int64_t n;
	int rc;

	if (json_is_string(v)) {
		ev = protobuf_c_enum_descriptor_get_value_by_name(ed, json_string_value(v));
		if (!ev)
			return dec_fail(d, "unknown value \"%.60s\" of enum %s",
					json_string_value(v), ed->name);
		*out = ev->value;
		return 0;
	}
	if (!json_is_integer(v) && !json_is_real(v))
		return dec_fail(d, "expected an enum name or number, got %s", json_kind(v));
	rc = dec_signed(d, v, INT32_MIN, INT32_MAX, "an enum", &n);
	if (rc)
		return rc;
	if (!protobuf_c_enum_descriptor_get_value(ed, (int)n))
		return dec_fail(d, "unknown value %" PRId64 " of enum %s", n, ed->name);
	*out = (int32_t)n;
	return 0;
}

static int dec_msg(struct dec *d, const ProtobufCMessageDescriptor *desc, const json_t *obj,
		   int depth, ProtobufCMessage **out);

/* Decodes v into the storage at p for a field of type f->type. */
static int dec_value(struct dec *d, const ProtobufCFieldDescriptor *f, const json_t *v, void *p,
		     int depth)
{
	uint64_t u;
	int64_t s;
	double r;
	int rc;

	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		rc = dec_signed(d, v, INT32_MIN, INT32_MAX, "int32", &s);
		if (!rc)
			*(int32_t *)p = (int32_t)s;
		return rc;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		rc = dec_unsigned(d, v, UINT32_MAX, "uint32", &u);
		if (!rc)
			*(uint32_t *)p = (uint32_t)u;
		return rc;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		return dec_signed(d, v, INT64_MIN, INT64_MAX, "int64", p);
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return dec_unsigned(d, v, UINT64_MAX, "uint64", p);
	case PROTOBUF_C_TYPE_FLOAT:
		rc = dec_double(d, v, true, &r);
		if (!rc)
			*(float *)p = (float)r;
		return rc;
	case PROTOBUF_C_TYPE_DOUBLE:
		return dec_double(d, v, false, p);
	case PROTOBUF_C_TYPE_BOOL:
		if (!json_is_boolean(v))
			return dec_fail(d, "expected true or false, got %s", json_kind(v));
		*(protobuf_c_boolean *)p = json_is_true(v);
		return 0;
	case PROTOBUF_C_TYPE_ENUM:
		return dec_enum(d, f->descriptor, v, p);
	case PROTOBUF_C_TYPE_STRING:
		return dec_string(d, v, p);
	case PROTOBUF_C_TYPE_BYTES:
		return dec_bytes(d, v, p);
	case PROTOBUF_C_TYPE_MESSAGE:
		return dec_msg(d, f->descriptor, v, depth + 1, p);
	}
	return dec_fail(d, "unsupported field type %d", (int)f->type);
}

/* proto2 optional scalars carry a has_ flag next to the value. */
static void mark_present(ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f)
{
	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
		*(uint32_t *)pbjson_member(msg, f->quantifier_offset) = f->id;
	else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_STRING &&
		 f->type != PROTOBUF_C_TYPE_MESSAGE)
		*(protobuf_c_boolean *)pbjson_member(msg, f->quantifier_offset) = 1;
}

static ProtobufCMessage *new_msg(const ProtobufCMessageDescriptor *desc)
{
	ProtobufCMessage *m = pbjson_malloc(desc->sizeof_message);

	if (m)
		protobuf_c_message_init(desc, m);
	return m;
}

/* A map key arrives as a JSON object key, i.e. always as text. */
static int dec_map_key_value(struct dec *d, const ProtobufCFieldDescriptor *kf, const char *key,
			     void *p)
{
	uint64_t u;
	int64_t s;
	int rc = 0;

	switch (kf->type) {
	case PROTOBUF_C_TYPE_STRING:
		*(char **)p = pbjson_malloc(strlen(key) + 1);
		if (!*(char **)p)
			return -ENOMEM;
		strcpy(*(char **)p, key);
		return 0;
	case PROTOBUF_C_TYPE_BOOL:
		if (strcmp(key, "true") != 0 && strcmp(key, "false") != 0)
			return dec_fail(d, "map key must be \"true\" or \"false\"");
		*(protobuf_c_boolean *)p = key[0] == 't';
		return 0;
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		rc = dec_signed_text(d, key, INT32_MIN, INT32_MAX, "int32", &s);
		if (!rc)
			*(int32_t *)p = (int32_t)s;
		return rc;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		rc = dec_unsigned_text(d, key, UINT32_MAX, "uint32", &u);
		if (!rc)
			*(uint32_t *)p = (uint32_t)u;
		return rc;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		return dec_signed_text(d, key, INT64_MIN, INT64_MAX, "int64", p);
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return dec_unsigned_text(d, key, UINT64_MAX, "uint64", p);
	default:
		return dec_fail(d, "unsupported map key type %d", (int)kf->type);
	}
}

/*
 * Integer keys must be in canonical decimal form: "01" and "-0" would
 * otherwise give two entries with one key, which JSON cannot show again.
 */
static int dec_map_key(struct dec *d, const ProtobufCFieldDescriptor *kf, const char *key, void *p)
{
	const char *canon;
	char buf[32];
	int rc = dec_map_key_value(d, kf, key, p);

	if (rc || kf->type == PROTOBUF_C_TYPE_STRING)
		return rc;
	if (pbjson_map_key_string(kf, p, buf, sizeof(buf), &canon) == 0 && strcmp(canon, key) != 0)
		return dec_fail(d, "map key must be written as \"%s\"", canon);
	return 0;
}

static int dec_map(struct dec *d, ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f,
		   const json_t *v, int depth)
{
	const ProtobufCMessageDescriptor *ed = f->descriptor;
	const ProtobufCFieldDescriptor *kf = &ed->fields[0], *vf = &ed->fields[1];
	size_t *count = pbjson_member(msg, f->quantifier_offset);
	ProtobufCMessage ***arr = pbjson_member(msg, f->offset);
	const char *key;
	json_t *val;
	int rc;

	if (!json_is_object(v))
		return dec_fail(d, "expected an object (map), got %s", json_kind(v));
	if (json_object_size(v) == 0)
		return 0;
	*arr = pbjson_calloc(json_object_size(v), sizeof(**arr));
	if (!*arr)
		return -ENOMEM;
	json_object_foreach((json_t *)v, key, val)
	{
		ProtobufCMessage *e = new_msg(ed);
		size_t old = path_push_key(d, key);

		if (!e)
			return -ENOMEM;
		(*arr)[(*count)++] = e;
		rc = dec_map_key(d, kf, key, pbjson_member(e, kf->offset));
		if (rc)
			return rc;
		mark_present(e, kf);
		if (json_is_null(val))
			return dec_fail(d, "null is not allowed as a map value");
		rc = dec_value(d, vf, val, pbjson_member(e, vf->offset), depth);
		if (rc)
			return rc;
		mark_present(e, vf);
		path_pop(d, old);
	}
	return 0;
}

static int dec_repeated(struct dec *d, ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f,
			const json_t *v, int depth)
{
	size_t *count = pbjson_member(msg, f->quantifier_offset), n, i,
	       esz = pbjson_elt_size(f->type);
	char **arr = pbjson_member(msg, f->offset);
	int rc;

	if (!json_is_array(v))
		return dec_fail(d, "expected an array, got %s", json_kind(v));
	n = json_array_size(v);
	if (n == 0)
		return 0;
	*arr = pbjson_calloc(n, esz);
	if (!*arr)
		return -ENOMEM;
	/*
	 * The count grows only as elements are complete, so that on failure
	 * protobuf_c_message_free_unpacked() frees exactly what was built.
	 */
	for (i = 0; i < n; i++) {
		size_t old = path_push_index(d, i);
		const json_t *e = json_array_get(v, i);

		if (json_is_null(e))
			return dec_fail(d, "null is not allowed in a list");
		rc = dec_value(d, f, e, *arr + i * esz, depth);
		if (rc)
			return rc;
		(*count)++;
		path_pop(d, old);
	}
	return 0;
}

static int dec_field(struct dec *d, ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f,
		     const json_t *v, int depth)
{
	int rc;

	if (json_is_null(v))
		return 0; /* null means the default, i.e. not set */
	if (f->label == PROTOBUF_C_LABEL_REPEATED) {
		if (pbjson_is_map_field(msg->descriptor, f))
			return dec_map(d, msg, f, v, depth);
		return dec_repeated(d, msg, f, v, depth);
	}
	/* Set the oneof case first so a failure frees the member it refers to. */
	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
		mark_present(msg, f);
	rc = dec_value(d, f, v, pbjson_member(msg, f->offset), depth);
	if (!rc)
		mark_present(msg, f);
	return rc;
}

static const ProtobufCFieldDescriptor *find_field(const ProtobufCMessageDescriptor *desc,
						  const char *key)
{
	const ProtobufCFieldDescriptor *f;
	unsigned i;

	for (i = 0; i < desc->n_fields; i++)
		if (pbjson_json_name_eq(desc->fields[i].name, key))
			return &desc->fields[i];
	f = protobuf_c_message_descriptor_get_field_by_name(desc, key);
	return f;
}

/* Checks a field against those already seen in this object (seen[] by index). */
static int check_dup(struct dec *d, const ProtobufCMessageDescriptor *desc, const uint8_t *seen,
		     const ProtobufCFieldDescriptor *f)
{
	unsigned i, idx = (unsigned)(f - desc->fields);

	if (seen[idx])
		return dec_fail(d, "field given twice (as %s and in another spelling)", f->name);
	if (!(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
		return 0;
	for (i = 0; i < desc->n_fields; i++) {
		const ProtobufCFieldDescriptor *o = &desc->fields[i];

		if (seen[i] && (o->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
		    o->quantifier_offset == f->quantifier_offset)
			return dec_fail(d, "only one of a oneof may be set, but %s is set too",
					o->name);
	}
	return 0;
}

static int dec_fields(struct dec *d, ProtobufCMessage *msg, const json_t *obj, uint8_t *seen,
		      int depth)
{
	const ProtobufCMessageDescriptor *desc = msg->descriptor;
	const char *key;
	json_t *v;
	unsigned i;
	int rc;

	json_object_foreach((json_t *)obj, key, v)
	{
		const ProtobufCFieldDescriptor *f = find_field(desc, key);
		size_t old = path_push_name(d, key);

		if (!f)
			return dec_fail(d, "unknown field of %s", desc->name);
		rc = check_dup(d, desc, seen, f);
		if (rc)
			return rc;
		seen[f - desc->fields] = json_is_null(v) ? 1 : 2;
		rc = dec_field(d, msg, f, v, depth);
		if (rc)
			return rc;
		path_pop(d, old);
	}
	for (i = 0; i < desc->n_fields; i++) {
		if (desc->fields[i].label == PROTOBUF_C_LABEL_REQUIRED && seen[i] != 2) {
			size_t old = path_push_name(d, desc->fields[i].name);

			rc = dec_fail(d, "missing required field");
			path_pop(d, old);
			return rc;
		}
	}
	return 0;
}

static int dec_msg(struct dec *d, const ProtobufCMessageDescriptor *desc, const json_t *obj,
		   int depth, ProtobufCMessage **out)
{
	ProtobufCMessage *msg;
	uint8_t *seen;
	int rc;

	if (!json_is_object(obj))
		return dec_fail(d, "expected an object (%s), got %s", desc->name, json_kind(obj));
	if (depth > FJ_PBJSON_MAX_DEPTH)
		return dec_fail(d, "messages nested deeper than %d levels", FJ_PBJSON_MAX_DEPTH);
	msg = new_msg(desc);
	seen = pbjson_calloc(desc->n_fields ? desc->n_fields : 1, 1);
	if (!msg || !seen) {
		free(msg);
		free(seen);
		return -ENOMEM;
	}
	rc = dec_fields(d, msg, obj, seen, depth);
	free(seen);
	if (rc) {
		protobuf_c_message_free_unpacked(msg, NULL);
		return rc;
	}
	*out = msg;
	return 0;
}

static int fill_err(char *err, size_t err_len, int rc)
{
	if (rc == -ENOMEM && err && err_len)
		snprintf(err, err_len, "out of memory");
	return rc;
}

int fj_pbjson_from_json(const ProtobufCMessageDescriptor *desc, const json_t *json,
			ProtobufCMessage **out, char *err, size_t err_len)
{
	struct dec d = { .err = err, .err_len = err_len };

	*out = NULL;
	if (err && err_len)
		err[0] = '\0';
	if (!desc || !json) {
		if (err && err_len)
			snprintf(err, err_len, "no descriptor or no JSON");
		return -EINVAL;
	}
	return fill_err(err, err_len, dec_msg(&d, desc, json, 1, out));
}

/*
 * jansson reports syntax errors by position only. To still name the field,
 * the text before that position is scanned for the keys and indices that
 * lead to it; it parsed cleanly up to there, so a light scan suffices.
 */
struct scan_frame {
	bool is_obj;
	bool has_key;
	size_t key_off, key_len, index;
};

#define SCAN_DEPTH 40

static void locate_error(const char *text, size_t end, struct dec *d)
{
	struct scan_frame st[SCAN_DEPTH];
	size_t i, top = 0, extra = 0, k;

	for (i = 0; i < end; i++) {
		char c = text[i];
		struct scan_frame *f = top ? &st[top - 1] : NULL;

		if (c == '"') {
			size_t start = ++i;

			while (i < end && text[i] != '"')
				i += text[i] == '\\' ? 2 : 1;
			if (f && !extra && f->is_obj && !f->has_key) {
				f->has_key = true;
				f->key_off = start;
				f->key_len = (i < end ? i : end) - start;
			}
		} else if (c == '{' || c == '[') {
			if (top == SCAN_DEPTH) {
				extra++;
				continue;
			}
			st[top++] = (struct scan_frame){ .is_obj = c == '{' };
		} else if (c == '}' || c == ']') {
			if (extra)
				extra--;
			else if (top)
				top--;
		} else if (c == ',' && f && !extra) {
			if (f->is_obj)
				f->has_key = false;
			else
				f->index++;
		}
	}
	for (k = 0; k < top; k++) {
		if (!st[k].is_obj)
			path_push_index(d, st[k].index);
		else if (st[k].has_key)
			path_push(d, FRAME_NAME, text + st[k].key_off, st[k].key_len, 0);
	}
}

int fj_pbjson_decode(const ProtobufCMessageDescriptor *desc, const char *text, size_t len,
		     size_t max_len, ProtobufCMessage **out, char *err, size_t err_len)
{
	struct dec d = { .err = err, .err_len = err_len };
	json_error_t jerr;
	json_t *j;
	int rc;

	*out = NULL;
	if (err && err_len)
		err[0] = '\0';
	if (len > max_len) {
		if (err && err_len)
			snprintf(err, err_len, "input of %zu bytes is over the limit of %zu bytes",
				 len, max_len);
		return -EMSGSIZE;
	}
	if (!desc || (!text && len)) {
		if (err && err_len)
			snprintf(err, err_len, "no descriptor or no text");
		return -EINVAL;
	}
	/* NULs are let through so that the check in dec_string() names the field. */
	j = json_loadb(text ? text : "", len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
	if (!j && json_error_code(&jerr) == json_error_out_of_memory)
		return fill_err(err, err_len, -ENOMEM);
	if (!j) {
		size_t pos = jerr.position > 0 ? (size_t)jerr.position : 0;

		locate_error(text ? text : "", pos < len ? pos : len, &d);
		return dec_fail(&d, "invalid JSON: %s (line %d, column %d)", jerr.text, jerr.line,
				jerr.column);
	}
	rc = fj_pbjson_from_json(desc, j, out, err, err_len);
	json_decref(j);
	return rc;
}
