/*
 * pbjson: protobuf <-> JSON following the canonical proto3 JSON mapping,
 * driven by protobuf-c descriptors, on jansson. Works for every message of
 * proto/fjord.proto (and any other protobuf-c message).
 *
 * Encoding: lowerCamelCase member names (json_name); fields at their default
 * value are omitted (proto3) unless FJ_PBJSON_DEFAULTS; 64-bit integers as
 * strings; enums by name; bytes as base64; repeated as arrays; oneof members
 * only when set; double NaN/Infinity as "NaN"/"Infinity"/"-Infinity".
 *
 * Decoding accepts both lowerCamelCase and the proto field name, enum names
 * or numbers, 64-bit integers as strings or numbers, null as the default.
 * It rejects, with a message naming the field path (e.g.
 * "spec.targets.pairs[1].clientAgentId: expected a string"): unknown fields,
 * wrong types, out-of-range numbers, unknown enum names, bad base64, two
 * members of one oneof, nesting deeper than FJ_PBJSON_MAX_DEPTH, and input
 * longer than the max_len given.
 *
 * Details of the mapping (checked against protoc and Python's json_format
 * by tests/proto/crosscheck.sh):
 * - Error text is "PATH: what is wrong", PATH made of the member names as
 *   the input spelled them, "[i]" for list items and "[key]" for map
 *   entries; errors about the whole input (size, top-level type) have no
 *   PATH. JSON syntax errors are located the same way ("runs[1].dueMs:
 *   invalid JSON: too big integer (line 1, column 40)").
 * - Stricter than json_format: enum numbers must be known values, integer
 *   map keys must be in canonical decimal form, a string must not contain
 *   U+0000, proto2 required fields must be present, and 64-bit values
 *   beyond the int64 range must be sent as strings (jansson cannot hold
 *   them as numbers).
 * - Encoding a string that is not valid UTF-8 (protobuf-c does not check
 *   on unpack) replaces each bad byte with U+FFFD; an enum value the
 *   schema does not know is written as its number.
 * - Map fields are recognised by the entry shape protoc generates
 *   (protobuf-c keeps no map_entry flag); custom json_name options are not
 *   visible in protobuf-c descriptors, so names always follow protoc's
 *   default lowerCamelCase rule.
 */
#ifndef FJ_PBJSON_H
#define FJ_PBJSON_H

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>

#define FJ_PBJSON_MAX_DEPTH 32

enum {
	FJ_PBJSON_PRETTY = 1 << 0,   /* indented output */
	FJ_PBJSON_DEFAULTS = 1 << 1, /* also emit fields at their default value */
};

/* Builds the JSON value of msg; the caller owns the new reference (json_decref). NULL on ENOMEM. */
json_t *fj_pbjson_to_json(const ProtobufCMessage *msg, int flags);
/* Encodes msg as a NUL-terminated string (malloc'd, caller frees) into *out. 0 or -ENOMEM. */
int fj_pbjson_encode(const ProtobufCMessage *msg, int flags, char **out);
/*
 * Serialises any jansson value as fj_pbjson_encode() does (flags: only
 * FJ_PBJSON_PRETTY counts): members in insertion order, reals in the
 * shortest form that reads back exactly (0.1, not jansson's
 * 0.10000000000000001). *out is malloc'd, the caller frees it; json is not
 * consumed. 0, -EINVAL (json NULL) or -ENOMEM.
 */
int fj_pbjson_dumps(const json_t *json, int flags, char **out);

/*
 * Decodes JSON text into a new message of type desc. On success *out is a
 * message the caller frees with protobuf_c_message_free_unpacked(*out, NULL).
 * On failure returns -EINVAL (bad JSON or mapping error) or -EMSGSIZE (len >
 * max_len), *out is NULL and err holds a message naming the field.
 * Also -ENOMEM ("out of memory"); jansson's parser reports some of its own
 * allocation failures as invalid JSON, so those come back as -EINVAL. err
 * may be NULL; otherwise it is always NUL-terminated, cut at err_len.
 */
int fj_pbjson_decode(const ProtobufCMessageDescriptor *desc, const char *text, size_t len,
		     size_t max_len, ProtobufCMessage **out, char *err, size_t err_len);
/* The same from a parsed jansson value (not consumed). */
int fj_pbjson_from_json(const ProtobufCMessageDescriptor *desc, const json_t *json,
			ProtobufCMessage **out, char *err, size_t err_len);

/* Enum value name <-> number helpers for CLIs and query strings: matches the
 * full name ("STACK_KERNEL") or, case-insensitively, the suffix after the
 * enum's common prefix ("kernel"). Return 0 or -EINVAL. */
int fj_pbjson_enum_parse(const ProtobufCEnumDescriptor *desc, const char *name, int *value);
/* Short lower-case name ("kernel") of value, or NULL when unknown. Static storage. */
const char *fj_pbjson_enum_short(const ProtobufCEnumDescriptor *desc, int value);

/*
 * Test hook (fault injection): when set, every allocation pbjson makes asks
 * should_fail() first and fails with -ENOMEM when it returns true. NULL
 * (the default) turns it off. Not thread-safe; for unit tests only.
 */
void fj_pbjson_set_fault_hook(bool (*should_fail)(void));

#endif
