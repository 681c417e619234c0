/*
 * pbjson-tool: test-only converter for tests/proto/crosscheck.sh, so that
 * our mapping can be compared with protoc and Python's json_format.
 *
 *   pbjson-tool types                    message types and oneof picks
 *   pbjson-tool gen TYPE PICK SEED DEPTH filled message, binary to stdout
 *   pbjson-tool to-json TYPE [defaults]  binary on stdin -> JSON on stdout
 *   pbjson-tool from-json TYPE           JSON on stdin -> binary on stdout
 *
 * TYPE is a full name such as fjord.v1.Run. Exit 0 on success, 1 with a
 * message on stderr on any error, 2 on bad usage.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pbjson.h"
#include "pbjson_fill.h"

#define IN_CAP (16 << 20)

static int usage(void)
{
	fprintf(stderr, "usage: pbjson-tool types | gen TYPE PICK SEED DEPTH | "
			"to-json TYPE [defaults] | from-json TYPE\n");
	return 2;
}

/* Reads all of stdin (at most IN_CAP bytes) into a malloc'd buffer. */
static int read_stdin(char **buf, size_t *len)
{
	size_t cap = 4096, n = 0, got;
	char *p = malloc(cap), *np;

	while (p) {
		got = fread(p + n, 1, cap - n, stdin);
		n += got;
		if (got == 0)
			break;
		if (n == cap) {
			if (cap >= IN_CAP) {
				free(p);
				return -EMSGSIZE;
			}
			cap *= 2;
			np = realloc(p, cap);
			if (!np)
				free(p);
			p = np;
		}
	}
	if (!p)
		return -ENOMEM;
	*buf = p;
	*len = n;
	return 0;
}

static int write_packed(const ProtobufCMessage *m)
{
	size_t len = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(len ? len : 1);
	int ok;

	if (!buf)
		return 1;
	protobuf_c_message_pack(m, buf);
	ok = fwrite(buf, 1, len, stdout) == len;
	free(buf);
	return ok ? 0 : 1;
}

static int cmd_types(void)
{
	unsigned i;

	for (i = 0; i < fj_fill_n_fjord_types; i++)
		printf("%s %u\n", fj_fill_fjord_types[i]->name,
		       fj_fill_max_oneof(fj_fill_fjord_types[i]));
	for (i = 0; i < fj_fill_n_test_types; i++)
		printf("%s %u\n", fj_fill_test_types[i]->name,
		       fj_fill_max_oneof(fj_fill_test_types[i]));
	return 0;
}

static int cmd_gen(const ProtobufCMessageDescriptor *d, char **argv)
{
	ProtobufCMessage *m;
	int rc;

	m = fj_fill_new(d, (unsigned)strtoul(argv[0], NULL, 10),
			(unsigned)strtoul(argv[1], NULL, 10), atoi(argv[2]));
	if (!m) {
		fprintf(stderr, "pbjson-tool: out of memory\n");
		return 1;
	}
	rc = write_packed(m);
	protobuf_c_message_free_unpacked(m, NULL);
	return rc;
}

static int cmd_to_json(const ProtobufCMessageDescriptor *d, int flags)
{
	ProtobufCMessage *m;
	char *in, *out;
	size_t len;
	int rc;

	if (read_stdin(&in, &len)) {
		fprintf(stderr, "pbjson-tool: cannot read input\n");
		return 1;
	}
	m = protobuf_c_message_unpack(d, NULL, len, (const uint8_t *)in);
	free(in);
	if (!m) {
		fprintf(stderr, "pbjson-tool: input is not a valid %s\n", d->name);
		return 1;
	}
	rc = fj_pbjson_encode(m, flags, &out);
	protobuf_c_message_free_unpacked(m, NULL);
	if (rc) {
		fprintf(stderr, "pbjson-tool: encode: %s\n", strerror(-rc));
		return 1;
	}
	printf("%s\n", out);
	free(out);
	return 0;
}

static int cmd_from_json(const ProtobufCMessageDescriptor *d)
{
	ProtobufCMessage *m;
	char *in, err[512];
	size_t len;
	int rc;

	if (read_stdin(&in, &len)) {
		fprintf(stderr, "pbjson-tool: cannot read input\n");
		return 1;
	}
	rc = fj_pbjson_decode(d, in, len, IN_CAP, &m, err, sizeof(err));
	free(in);
	if (rc) {
		fprintf(stderr, "pbjson-tool: %s\n", err);
		return 1;
	}
	rc = write_packed(m);
	protobuf_c_message_free_unpacked(m, NULL);
	return rc;
}

int main(int argc, char **argv)
{
	const ProtobufCMessageDescriptor *d;

	if (argc == 2 && strcmp(argv[1], "types") == 0)
		return cmd_types();
	if (argc < 3)
		return usage();
	d = fj_fill_find_type(argv[2]);
	if (!d) {
		fprintf(stderr, "pbjson-tool: unknown message type %s\n", argv[2]);
		return 2;
	}
	if (strcmp(argv[1], "gen") == 0 && argc == 6)
		return cmd_gen(d, argv + 3);
	if (strcmp(argv[1], "to-json") == 0 && argc <= 4)
		return cmd_to_json(
			d, argc == 4 && strcmp(argv[3], "defaults") == 0 ? FJ_PBJSON_DEFAULTS : 0);
	if (strcmp(argv[1], "from-json") == 0 && argc == 3)
		return cmd_from_json(d);
	return usage();
}
