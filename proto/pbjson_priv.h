/*
 * pbjson internals shared by pbjson.c, pbjson_enc.c and pbjson_dec.c. Not
 * part of the API: use pbjson.h.
 */
#ifndef FJ_PBJSON_PRIV_H
#define FJ_PBJSON_PRIV_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>

/* Longest JSON name built on the stack; longer names use the heap. */
#define NAME_CAP 128

/* The member at offset inside a message struct. */
static inline void *pbjson_member(const void *msg, unsigned offset)
{
	return (char *)msg + offset;
}

/* malloc/calloc/realloc that the test fault hook can make fail. */
void *pbjson_malloc(size_t n);
void *pbjson_calloc(size_t n, size_t size);
void *pbjson_realloc(void *p, size_t n);

/* Size of one element of a repeated field's array, by field type. */
size_t pbjson_elt_size(ProtobufCType type);

/* protoc's default json_name of a field name: length, build (out holds
 * pbjson_json_name_len() + 1 bytes), and comparison with a key. */
size_t pbjson_json_name_len(const char *name);
void pbjson_json_name_build(const char *name, char *out);
bool pbjson_json_name_eq(const char *name, const char *key);

/* Whether f of parent is a map field (a repeated, protoc-shaped map entry). */
bool pbjson_is_map_field(const ProtobufCMessageDescriptor *parent,
			 const ProtobufCFieldDescriptor *f);

/* Length of the valid UTF-8 sequence at s (0 when invalid); whole-string check. */
size_t pbjson_utf8_seq_len(const unsigned char *s, size_t left);
bool pbjson_utf8_valid(const char *s, size_t len);

/* The JSON key text of a map key stored at p: *key points into buf (cap
 * bytes) or at the string itself. 0, or -EINVAL for a type keys cannot have. */
int pbjson_map_key_string(const ProtobufCFieldDescriptor *kf, const void *p, char *buf, size_t cap,
			  const char **key);

#endif
