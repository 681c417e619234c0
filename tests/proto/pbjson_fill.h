/*
 * Test helper: fills any protobuf-c message with non-default values in
 * every field (one member per oneof, chosen by pick), deterministically
 * from a seed. Used by the pbjson unit tests and the cross-check tool.
 */
#ifndef FJ_PBJSON_FILL_H
#define FJ_PBJSON_FILL_H

#include <protobuf-c/protobuf-c.h>

/*
 * A new message of type desc, filled; sub-messages down to max_depth
 * levels (recursive types stop there). Free with
 * protobuf_c_message_free_unpacked(m, NULL). NULL on ENOMEM.
 */
ProtobufCMessage *fj_fill_new(const ProtobufCMessageDescriptor *desc, unsigned pick, unsigned seed,
			      int max_depth);

/* How many members the largest oneof of desc has (1 when it has none). */
unsigned fj_fill_max_oneof(const ProtobufCMessageDescriptor *desc);

/* Every message type of proto/fjord.proto, then of the test schemas. */
extern const ProtobufCMessageDescriptor *const fj_fill_fjord_types[];
extern const unsigned fj_fill_n_fjord_types;
extern const ProtobufCMessageDescriptor *const fj_fill_test_types[];
extern const unsigned fj_fill_n_test_types;

/* The descriptor of a message type by full name ("fjord.v1.Run"), or NULL. */
const ProtobufCMessageDescriptor *fj_fill_find_type(const char *full_name);

#endif
