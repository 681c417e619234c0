/*
 * libFuzzer target for proto/pbjson.c. The first input byte picks a message
 * type, the rest is JSON text to decode. Whatever decodes must encode, and
 * that JSON must decode to a message with the same binary serialisation
 * (also when encoded with FJ_PBJSON_DEFAULTS, for proto3 types). The same
 * bytes are also unpacked as binary protobuf: any message protobuf-c accepts
 * must encode to JSON that jansson can parse.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fjord.pb-c.h"
#include "pbjson.h"
#include "pbjson_test.pb-c.h"
#include "pbjson_test2.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const ProtobufCMessageDescriptor *const types[] = {
	&fjord__v1__experiment_spec__descriptor,
	&fjord__v1__experiment__descriptor,
	&fjord__v1__result__descriptor,
	&fjord__v1__poll_response__descriptor,
	&fjord__v1__poll_request__descriptor,
	&fjord__v1__run_list__descriptor,
	&fjord__v1__agent_list__descriptor,
	&fjord__v1__enroll_request__descriptor,
	&fjord__v1__aggregate_response__descriptor,
	&fjord__test__scalars__descriptor,
	&fjord__test__repeats__descriptor,
	&fjord__test__maps__descriptor,
	&fjord__test__choice__descriptor,
	&fjord__test__tree__descriptor,
	&fjord__test2__legacy__descriptor,
};
#define N_TYPES (sizeof(types) / sizeof(types[0]))

static uint8_t *pack(const ProtobufCMessage *m, size_t *len)
{
	uint8_t *buf;

	*len = protobuf_c_message_get_packed_size(m);
	buf = malloc(*len ? *len : 1);
	if (!buf)
		abort();
	protobuf_c_message_pack(m, buf);
	return buf;
}

/* Encodes m with flags, decodes that again and compares the binary with want. */
static void reencode(const ProtobufCMessage *m, int flags, const uint8_t *want, size_t want_len)
{
	ProtobufCMessage *back = NULL;
	char *text = NULL, err[256];
	uint8_t *got;
	size_t got_len;

	if (fj_pbjson_encode(m, flags, &text) != 0)
		abort();
	if (fj_pbjson_decode(m->descriptor, text, strlen(text), SIZE_MAX, &back, err,
			     sizeof(err)) != 0)
		abort(); /* our own output must always be accepted */
	got = pack(back, &got_len);
	if (got_len != want_len || memcmp(got, want, want_len) != 0)
		abort();
	free(got);
	free(text);
	protobuf_c_message_free_unpacked(back, NULL);
}

static bool is_proto3(const ProtobufCMessageDescriptor *d)
{
	return d != &fjord__test2__legacy__descriptor;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const ProtobufCMessageDescriptor *d;
	ProtobufCMessage *m = NULL;
	char err[256], *text;
	json_error_t jerr;
	uint8_t *bin;
	size_t len;
	json_t *j;
	int rc;

	if (size < 1)
		return 0;
	d = types[data[0] % N_TYPES];
	rc = fj_pbjson_decode(d, (const char *)data + 1, size - 1, 64 * 1024, &m, err, sizeof(err));
	if (rc == 0) {
		bin = pack(m, &len);
		reencode(m, 0, bin, len);
		reencode(m, FJ_PBJSON_PRETTY, bin, len);
		if (is_proto3(d))
			reencode(m, FJ_PBJSON_DEFAULTS, bin, len);
		free(bin);
		protobuf_c_message_free_unpacked(m, NULL);
	} else if ((rc != -EINVAL && rc != -EMSGSIZE) || m || !err[0]) {
		abort(); /* a failure always says why and leaves nothing behind */
	}

	m = protobuf_c_message_unpack(d, NULL, size - 1, data + 1);
	if (m) {
		if (fj_pbjson_encode(m, 0, &text) != 0)
			abort();
		j = json_loads(text, 0, &jerr);
		if (!j)
			abort(); /* bad UTF-8 from the wire must not leak into JSON */
		json_decref(j);
		free(text);
		protobuf_c_message_free_unpacked(m, NULL);
	}
	return 0;
}
