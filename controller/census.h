/*
 * The operational-experience census: what probe runs found about MPTCP on
 * every local ISP x remote ISP x address family, over time. It is derived
 * from the probe results the store holds (Result.probe_findings of the
 * client agent's result, and its mp_join_failed events), so it needs no
 * table of its own and is never out of step with the results.
 *
 * The answer messages are fjord.v1.Census and fjord.v1.CensusCell.
 */
#ifndef CTL_CENSUS_H
#define CTL_CENSUS_H

#include <microhttpd.h>
#include <stdint.h>

#include "ctl_store.h"
#include "fjord.pb-c.h"

/* At most this many cells in one answer (ISP labels are free-form). */
#define CENSUS_MAX_CELLS 8192

struct census_filter {
	const char *isp;		 /* cells with this local or remote ISP; NULL: all */
	Fjord__V1__AddressFamily family; /* 0: both */
	int64_t bucket_ms;		 /* 0: one cell over the whole time range */
	Fjord__V1__Stack stack;		 /* STACK_KERNEL or STACK_BUNDLED findings only; 0: both */
};

/* Frees what census_add allocated; c stays a valid empty census. */
void census_clear(Fjord__V1__Census *c);

/*
 * Folds one probe result into the census: one count per finding, in the cell
 * of its path's ISPs and family (and time bucket, by the result's finish
 * time), kernel and bundled findings in separate cells (census_stack()). Results that are not of a probe run are ignored. Returns 0,
 * -ENOMEM, or -E2BIG when a new cell would pass CENSUS_MAX_CELLS.
 */
int census_add(Fjord__V1__Census *c, const struct census_filter *f, const Fjord__V1__Run *run,
	       const Fjord__V1__Result *res);

/*
 * The stack a finding's cell is kept under: STACK_BUNDLED for the bundled
 * stack's findings (ProbeFinding.stack, or the run's stack for a finding
 * that does not say), else STACK_UNSPECIFIED, which is the kernel's: its
 * cells carry no stack, so they read as before bundled probes existed.
 */
Fjord__V1__Stack census_stack(const Fjord__V1__Run *run, const Fjord__V1__ProbeFinding *pf);

/* Orders the cells by local ISP, remote ISP, family, bucket and stack (kernel first). */
void census_sort(Fjord__V1__Census *c);

/* The census as CSV (RFC 4180, CRLF, header row); malloc'd, NULL on ENOMEM. */
char *census_csv(const Fjord__V1__Census *c, size_t *len);

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
