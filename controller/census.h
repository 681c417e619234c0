/*
 * The operational-experience census: what probe runs found about MPTCP on
 * every local ISP x remote ISP x address family, over time. It is derived
 * from the probe results the store holds (Result.probe_findings of the
 * client agent's result, and its mp_join_failed events), so it needs no
 * table of its own and is never out of step with the results.
 *
 * The answer messages (fjord.v1.Census, fjord.v1.CensusCell) are described
 * here by hand-written protobuf-c descriptors rather than generated from
 * proto/fjord.proto, which this part does not own; docs/operations.md gives
 * their .proto text, and moving them into proto/fjord.proto changes nothing
 * on the wire.
 */
#ifndef CTL_CENSUS_H
#define CTL_CENSUS_H

#include <microhttpd.h>
#include <stdint.h>

#include "ctl_store.h"
#include "fjord.pb-c.h"

/* One cell: the findings of one local ISP x remote ISP x family in one time bucket. */
struct census_cell {
	ProtobufCMessage base;
	char *local_isp;
	char *remote_isp;
	Fjord__V1__AddressFamily family;
	int64_t bucket_start_ms;      /* 0 when the census is not bucketed */
	uint64_t probes;	      /* findings counted in this cell */
	uint64_t reachable;	      /* a connection to the responder was made */
	uint64_t unreachable;	      /* ... was not (the rest says nothing about these) */
	uint64_t mp_capable_ok;	      /* MPTCP negotiated, no fallback */
	uint64_t mp_capable_stripped; /* reachable but fell back to TCP */
	uint64_t mp_join_ok;	      /* a second subflow came up */
	uint64_t mp_join_failed;      /* none came up although the node had subflow endpoints */
	uint64_t add_addr_ok;	      /* at least one ADD_ADDR was accepted */
	uint64_t nat;		      /* the responder saw another address or port */
	uint64_t checksums;	      /* DSS checksums were negotiated */
	uint64_t checksum_failures;   /* probes that saw DSS checksum errors */
	uint64_t checksum_errors;     /* the sum of those errors */
	int64_t first_ms, last_ms;    /* time of the first and last probe counted */
};

struct census {
	ProtobufCMessage base;
	size_t n_cells;
	struct census_cell **cells;
	uint64_t probe_results;		/* probe results read */
	uint64_t findings_without_path; /* findings that name no path: not in any cell */
};

extern const ProtobufCMessageDescriptor census_cell_descriptor;
extern const ProtobufCMessageDescriptor census_descriptor;

/* At most this many cells in one answer (ISP labels are free-form). */
#define CENSUS_MAX_CELLS 8192

struct census_filter {
	const char *isp;		 /* cells with this local or remote ISP; NULL: all */
	Fjord__V1__AddressFamily family; /* 0: both */
	int64_t bucket_ms;		 /* 0: one cell over the whole time range */
};

/* Initialises an empty cell (a valid message). */
void census_cell_init(struct census_cell *m);
/* Initialises an empty census (a valid message). */
void census_init(struct census *c);
/* Frees what census_add allocated; c stays a valid empty census. */
void census_clear(struct census *c);

/*
 * Folds one probe result into the census: one count per finding, in the cell
 * of its path's ISPs and family (and time bucket, by the result's finish
 * time). Results that are not of a probe run are ignored. Returns 0,
 * -ENOMEM, or -E2BIG when a new cell would pass CENSUS_MAX_CELLS.
 */
int census_add(struct census *c, const struct census_filter *f, const Fjord__V1__Run *run,
	       const Fjord__V1__Result *res);

/* Orders the cells by local ISP, remote ISP, family and bucket. */
void census_sort(struct census *c);

/* The census as CSV (RFC 4180, CRLF, header row); malloc'd, NULL on ENOMEM. */
char *census_csv(const struct census *c, size_t *len);

/*
 * Store side (controller/store_sqlite_census.c): calls fn for every stored
 * probe result of a client agent whose run matches q (isp, family, from, to
 * on the run's due time; other fields ignored), in due order. Stops at the
 * first non-zero return of fn and returns it.
 */
int ctl_store_census_scan(struct ctl_store *st, const struct ctl_query *q,
			  int (*fn)(void *arg, const Fjord__V1__Run *run,
				    const Fjord__V1__Result *res),
			  void *arg);

/* fjord census (controller/census_cli.c). */
struct cli;
int cli_cmd_census(struct cli *c, int argc, char **argv);

/* GET /api/v1/census?isp=&family=&from=&to=&bucket_s= */
struct ctl_req;
enum MHD_Result ctl_route_census(struct ctl_req *rq);

#endif
