/*
 * pbjson-tool: test-only converter for tests/proto/crosscheck.sh, so that
 * our mapping can be compared with protoc and Python's json_format.
 *
 *   pbjson-tool types                    message types and oneof picks
 *   pbjson-tool gen TYPE PICK SEED DEPTH filled message, binary to stdout
 *   pbjson-tool to-json TYPE [defaults]  binary on stdin -> JSON on stdout
 *   pbjson-tool from-json TYPE           JSON on stdin -> binary on stdout
 *   pbjson-tool cases DIR                writes every test case into DIR
 *   pbjson-tool to-json-dir DIR IN OUT   NAME.IN (binary) -> NAME.OUT (JSON)
 *   pbjson-tool from-json-dir DIR IN OUT NAME.IN (JSON) -> NAME.OUT (binary)
 *                                        (cases without NAME.IN are skipped)
 *
 * A case in DIR is NAME.type (the full type name, e.g. fjord.v1.Run),
 * NAME.bin (a filled message) and NAME.ours.json (our JSON of it); the
 * -dir commands work on every NAME.type in DIR, so that the test does not
 * start one process per message. Exit 0 on success, 1 with a message on
 * stderr on any error, 2 on bad usage.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pbjson.h"
#include "pbjson_fill.h"

#define IN_CAP (16 << 20)

static int usage(void)
{
	fprintf(stderr, "usage: pbjson-tool types | gen TYPE PICK SEED DEPTH | "
			"to-json TYPE [defaults] | from-json TYPE | cases DIR | "
			"to-json-dir DIR IN OUT | from-json-dir DIR IN OUT\n");
	return 2;
}

/* Reads all of f (at most IN_CAP bytes) into a malloc'd buffer. */
static int read_all(FILE *f, char **buf, size_t *len)
{
	size_t cap = 4096, n = 0, got;
	char *p = malloc(cap), *np;

	while (p) {
		got = fread(p + n, 1, cap - n, f);
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

static int write_packed(const ProtobufCMessage *m, FILE *out)
{
	size_t len = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(len ? len : 1);
	int ok;

	if (!buf)
		return 1;
	protobuf_c_message_pack(m, buf);
	ok = fwrite(buf, 1, len, out) == len;
	free(buf);
	return ok ? 0 : 1;
}

static int write_json(const ProtobufCMessage *m, int flags, FILE *out)
{
	char *text;
	int rc = fj_pbjson_encode(m, flags, &text);

	if (rc) {
		fprintf(stderr, "pbjson-tool: encode: %s\n", strerror(-rc));
		return 1;
	}
	fprintf(out, "%s\n", text);
	free(text);
	return 0;
}

/* Binary in, JSON out. */
static int to_json(const ProtobufCMessageDescriptor *d, int flags, FILE *in, FILE *out)
{
	ProtobufCMessage *m;
	char *buf;
	size_t len;
	int rc;

	if (read_all(in, &buf, &len)) {
		fprintf(stderr, "pbjson-tool: cannot read input\n");
		return 1;
	}
	m = protobuf_c_message_unpack(d, NULL, len, (const uint8_t *)buf);
	free(buf);
	if (!m) {
		fprintf(stderr, "pbjson-tool: input is not a valid %s\n", d->name);
		return 1;
	}
	rc = write_json(m, flags, out);
	protobuf_c_message_free_unpacked(m, NULL);
	return rc;
}

/* JSON in, binary out; the error names the case when there is one. */
static int from_json(const ProtobufCMessageDescriptor *d, FILE *in, FILE *out, const char *name)
{
	ProtobufCMessage *m;
	char *buf, err[512];
	size_t len;
	int rc;

	if (read_all(in, &buf, &len)) {
		fprintf(stderr, "pbjson-tool: cannot read input\n");
		return 1;
	}
	rc = fj_pbjson_decode(d, buf, len, IN_CAP, &m, err, sizeof(err));
	free(buf);
	if (rc) {
		fprintf(stderr, "pbjson-tool: %s%s%s\n", name ? name : "", name ? ": " : "", err);
		return 1;
	}
	rc = write_packed(m, out);
	protobuf_c_message_free_unpacked(m, NULL);
	return rc;
}

static FILE *open_case(const char *dir, const char *name, const char *suffix, const char *mode)
{
	char path[1024];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s.%s", dir, name, suffix);
	f = fopen(path, mode);
	if (!f)
		fprintf(stderr, "pbjson-tool: %s: %s\n", path, strerror(errno));
	return f;
}

/* Writes NAME.type, NAME.bin and NAME.ours.json (m NULL: an empty message). */
static int write_case(const char *dir, const char *name, const ProtobufCMessageDescriptor *d,
		      const ProtobufCMessage *m, int flags)
{
	FILE *t = open_case(dir, name, "type", "w"), *b = open_case(dir, name, "bin", "wb");
	FILE *j = open_case(dir, name, "ours.json", "w");
	int rc = 1;

	if (t && b && j) {
		fprintf(t, "%s\n", d->name);
		rc = m ? write_packed(m, b) || write_json(m, flags, j) : 0;
	}
	if (!m && j) {
		ProtobufCMessage *e = malloc(d->sizeof_message);

		if (e) {
			protobuf_c_message_init(d, e);
			rc = write_json(e, flags, j);
			free(e);
		}
	}
	if ((t && fclose(t)) || (b && fclose(b)) || (j && fclose(j)))
		rc = 1;
	return rc;
}

/*
 * Every message type with each member of each oneof in turn, filled with
 * non-default values; test-schema types (every scalar encoding) with two
 * seeds. Plus each type empty, encoded with FJ_PBJSON_DEFAULTS, except the
 * proto2 Legacy, whose required field makes an empty message invalid.
 */
static int cmd_cases(const char *dir)
{
	const ProtobufCMessageDescriptor *d;
	unsigned i, pick, picks, seed, n = 0;
	char name[256];
	int rc = 0;

	for (i = 0; i < fj_fill_n_fjord_types + fj_fill_n_test_types; i++) {
		bool test = i >= fj_fill_n_fjord_types;

		d = test ? fj_fill_test_types[i - fj_fill_n_fjord_types] : fj_fill_fjord_types[i];
		picks = fj_fill_max_oneof(d);
		for (pick = 0; pick < picks; pick++) {
			for (seed = 1; seed <= (test ? 4u : 1u); seed += 3) {
				int depth = strcmp(d->name, "fjord.test.Tree") == 0 ? 3 : 8;
				ProtobufCMessage *m = fj_fill_new(d, pick, seed, depth);

				if (!m)
					return 1;
				snprintf(name, sizeof(name), "%s-%u-%u", d->name, pick, seed);
				rc |= write_case(dir, name, d, m, 0);
				protobuf_c_message_free_unpacked(m, NULL);
				n++;
			}
		}
		if (strcmp(d->name, "fjord.test2.Legacy") != 0) {
			snprintf(name, sizeof(name), "%s-empty", d->name);
			rc |= write_case(dir, name, d, NULL, FJ_PBJSON_DEFAULTS);
			n++;
		}
	}
	printf("%u\n", n);
	return rc;
}

/* The message type of a case, from NAME.type; NULL when unknown. */
static const ProtobufCMessageDescriptor *case_type(const char *dir, const char *name)
{
	FILE *f = open_case(dir, name, "type", "r");
	char type[256] = "";

	if (!f)
		return NULL;
	if (!fgets(type, sizeof(type), f))
		type[0] = '\0';
	fclose(f);
	type[strcspn(type, "\n")] = '\0';
	return fj_fill_find_type(type);
}

/* Converts NAME.in to NAME.out for every case in dir; continues past failures. */
static int cmd_dir(const char *dir, const char *in_sfx, const char *out_sfx, bool to_json_dir)
{
	struct dirent *e;
	DIR *dp = opendir(dir);
	int rc = 0;

	if (!dp) {
		fprintf(stderr, "pbjson-tool: %s: %s\n", dir, strerror(errno));
		return 1;
	}
	while ((e = readdir(dp)) != NULL) {
		size_t len = strlen(e->d_name);
		const ProtobufCMessageDescriptor *d;
		char name[256], path[1024];
		FILE *in, *out;

		if (len < 6 || strcmp(e->d_name + len - 5, ".type") != 0 || len - 5 >= sizeof(name))
			continue;
		memcpy(name, e->d_name, len - 5);
		name[len - 5] = '\0';
		d = case_type(dir, name);
		/* A case without this input (an empty one has no protoc bytes) is skipped. */
		snprintf(path, sizeof(path), "%s/%s.%s", dir, name, in_sfx);
		if (access(path, F_OK) != 0)
			continue;
		in = open_case(dir, name, in_sfx, "rb");
		out = in ? open_case(dir, name, out_sfx, "wb") : NULL;
		if (!d || !in || !out)
			rc = 1;
		else if (to_json_dir)
			rc |= to_json(d, 0, in, out);
		else
			rc |= from_json(d, in, out, name);
		if (in)
			fclose(in);
		if (out && fclose(out))
			rc = 1;
	}
	closedir(dp);
	return rc;
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
	rc = write_packed(m, stdout);
	protobuf_c_message_free_unpacked(m, NULL);
	return rc;
}

int main(int argc, char **argv)
{
	const ProtobufCMessageDescriptor *d;

	if (argc == 2 && strcmp(argv[1], "types") == 0)
		return cmd_types();
	if (argc == 3 && strcmp(argv[1], "cases") == 0)
		return cmd_cases(argv[2]);
	if (argc == 5 && strcmp(argv[1], "to-json-dir") == 0)
		return cmd_dir(argv[2], argv[3], argv[4], true);
	if (argc == 5 && strcmp(argv[1], "from-json-dir") == 0)
		return cmd_dir(argv[2], argv[3], argv[4], false);
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
		return to_json(
			d, argc == 4 && strcmp(argv[3], "defaults") == 0 ? FJ_PBJSON_DEFAULTS : 0,
			stdin, stdout);
	if (strcmp(argv[1], "from-json") == 0 && argc == 3)
		return from_json(d, stdin, stdout, NULL);
	return usage();
}
