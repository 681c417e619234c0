/*
 * Hand-written protobuf-c descriptors of fjord.v1.Census and
 * fjord.v1.CensusCell (their .proto text is in docs/operations.md). Shared
 * by the controller and the CLI, which decodes the census with them.
 */
#include <stddef.h>
#include <string.h>

#include "census.h"

#define U64_FIELD(fname, num)                                                                      \
	{                                                                                          \
#fname, num, PROTOBUF_C_LABEL_NONE, PROTOBUF_C_TYPE_UINT64, 0,                     \
			offsetof(struct census_cell, fname), NULL, NULL, 0, 0, NULL, NULL          \
	}
#define I64_FIELD(st, fname, num)                                                                  \
	{                                                                                          \
#fname, num, PROTOBUF_C_LABEL_NONE, PROTOBUF_C_TYPE_INT64, 0, offsetof(st, fname), \
			NULL, NULL, 0, 0, NULL, NULL                                               \
	}

/* In field number order; the indices below list them by name, as protobuf-c wants. */
static const ProtobufCFieldDescriptor cell_fields[18] = {
	{ "local_isp", 1, PROTOBUF_C_LABEL_NONE, PROTOBUF_C_TYPE_STRING, 0,
	  offsetof(struct census_cell, local_isp), NULL, &protobuf_c_empty_string, 0, 0, NULL,
	  NULL },
	{ "remote_isp", 2, PROTOBUF_C_LABEL_NONE, PROTOBUF_C_TYPE_STRING, 0,
	  offsetof(struct census_cell, remote_isp), NULL, &protobuf_c_empty_string, 0, 0, NULL,
	  NULL },
	{ "family", 3, PROTOBUF_C_LABEL_NONE, PROTOBUF_C_TYPE_ENUM, 0,
	  offsetof(struct census_cell, family), &fjord__v1__address_family__descriptor, NULL, 0, 0,
	  NULL, NULL },
	I64_FIELD(struct census_cell, bucket_start_ms, 4),
	U64_FIELD(probes, 5),
	U64_FIELD(reachable, 6),
	U64_FIELD(unreachable, 7),
	U64_FIELD(mp_capable_ok, 8),
	U64_FIELD(mp_capable_stripped, 9),
	U64_FIELD(mp_join_ok, 10),
	U64_FIELD(mp_join_failed, 11),
	U64_FIELD(add_addr_ok, 12),
	U64_FIELD(nat, 13),
	U64_FIELD(checksums, 14),
	U64_FIELD(checksum_failures, 15),
	U64_FIELD(checksum_errors, 16),
	I64_FIELD(struct census_cell, first_ms, 17),
	I64_FIELD(struct census_cell, last_ms, 18),
};

static const unsigned int cell_by_name[18] = {
	11, /* add_addr_ok */
	3,  /* bucket_start_ms */
	15, /* checksum_errors */
	14, /* checksum_failures */
	13, /* checksums */
	2,  /* family */
	16, /* first_ms */
	17, /* last_ms */
	0,  /* local_isp */
	7,  /* mp_capable_ok */
	8,  /* mp_capable_stripped */
	10, /* mp_join_failed */
	9,  /* mp_join_ok */
	12, /* nat */
	4,  /* probes */
	5,  /* reachable */
	1,  /* remote_isp */
	6,  /* unreachable */
};

static const ProtobufCIntRange cell_ranges[2] = { { 1, 0 }, { 0, 18 } };

void census_cell_init(struct census_cell *m)
{
	memset(m, 0, sizeof(*m));
	m->base.descriptor = &census_cell_descriptor;
	m->local_isp = (char *)protobuf_c_empty_string;
	m->remote_isp = (char *)protobuf_c_empty_string;
}

const ProtobufCMessageDescriptor census_cell_descriptor = {
	PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC,
	"fjord.v1.CensusCell",
	"CensusCell",
	"CensusCell",
	"fjord.v1",
	sizeof(struct census_cell),
	18,
	cell_fields,
	cell_by_name,
	1,
	cell_ranges,
	(ProtobufCMessageInit)census_cell_init,
	NULL,
	NULL,
	NULL,
};

static const ProtobufCFieldDescriptor census_fields[3] = {
	{ "cells", 1, PROTOBUF_C_LABEL_REPEATED, PROTOBUF_C_TYPE_MESSAGE,
	  offsetof(struct census, n_cells), offsetof(struct census, cells), &census_cell_descriptor,
	  NULL, 0, 0, NULL, NULL },
	{ "probe_results", 2, PROTOBUF_C_LABEL_NONE, PROTOBUF_C_TYPE_UINT64, 0,
	  offsetof(struct census, probe_results), NULL, NULL, 0, 0, NULL, NULL },
	{ "findings_without_path", 3, PROTOBUF_C_LABEL_NONE, PROTOBUF_C_TYPE_UINT64, 0,
	  offsetof(struct census, findings_without_path), NULL, NULL, 0, 0, NULL, NULL },
};

static const unsigned int census_by_name[3] = { 0, 2, 1 };
static const ProtobufCIntRange census_ranges[2] = { { 1, 0 }, { 0, 3 } };

void census_init(struct census *c)
{
	memset(c, 0, sizeof(*c));
	c->base.descriptor = &census_descriptor;
}

const ProtobufCMessageDescriptor census_descriptor = {
	PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC,
	"fjord.v1.Census",
	"Census",
	"Census",
	"fjord.v1",
	sizeof(struct census),
	3,
	census_fields,
	census_by_name,
	1,
	census_ranges,
	(ProtobufCMessageInit)census_init,
	NULL,
	NULL,
	NULL,
};
