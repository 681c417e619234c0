/* The operational-experience census: folding probe findings into cells. */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "census.h"
#include "fj_clock.h"
#include "http_buf.h"
#include "pbjson.h"

/* ---- folding ------------------------------------------------------------- */

static void cell_free(Fjord__V1__CensusCell *cell)
{
	if (cell->local_isp != protobuf_c_empty_string)
		free(cell->local_isp);
	if (cell->remote_isp != protobuf_c_empty_string)
		free(cell->remote_isp);
	free(cell);
}

void census_clear(Fjord__V1__Census *c)
{
	size_t i;

	for (i = 0; i < c->n_cells; i++)
		cell_free(c->cells[i]);
	free(c->cells);
	fjord__v1__census__init(c);
}

static const char *str0(const char *s)
{
	return s ? s : "";
}

/* The cell of (local, remote, family, bucket, stack), created when absent; NULL with *err set. */
static Fjord__V1__CensusCell *cell_get(Fjord__V1__Census *c, const char *l, const char *r,
				       Fjord__V1__AddressFamily fam, int64_t bucket,
				       Fjord__V1__Stack stack, int *err)
{
	Fjord__V1__CensusCell *cell, **n;
	size_t i;

	/* Linear: a census has tens of cells (ISPs x ISPs x 2), at most CENSUS_MAX_CELLS. */
	for (i = 0; i < c->n_cells; i++) {
		cell = c->cells[i];
		if (cell->family == fam && cell->bucket_start_ms == bucket &&
		    cell->stack == stack && strcmp(cell->local_isp, l) == 0 &&
		    strcmp(cell->remote_isp, r) == 0)
			return cell;
	}
	if (c->n_cells >= CENSUS_MAX_CELLS) {
		*err = -E2BIG;
		return NULL;
	}
	/* Grow by powers of two: the array's size is not stored, n_cells tells it. */
	if ((c->n_cells & (c->n_cells - 1)) == 0) {
		n = realloc(c->cells, (c->n_cells ? c->n_cells * 2 : 8) * sizeof(*n));
		if (!n)
			goto nomem;
		c->cells = n;
	}
	cell = malloc(sizeof(*cell));
	if (!cell)
		goto nomem;
	fjord__v1__census_cell__init(cell);
	cell->family = fam;
	cell->bucket_start_ms = bucket;
	cell->stack = stack;
	cell->local_isp = strdup(l);
	cell->remote_isp = strdup(r);
	if (!cell->local_isp || !cell->remote_isp) {
		cell_free(cell);
		goto nomem;
	}
	c->cells[c->n_cells++] = cell;
	return cell;
nomem:
	*err = -ENOMEM;
	return NULL;
}

/* Whether the result has an mp_join_failed event for finding index i
 * ("path I (...): ..." in docs/experiments.md, agent/exp_probe.c). */
static int join_failed(const Fjord__V1__Result *res, size_t i)
{
	char want[32];
	size_t j, n;

	n = (size_t)snprintf(want, sizeof(want), "path %zu (", i);
	for (j = 0; j < res->n_events; j++) {
		const Fjord__V1__Event *e = res->events[j];

		if (e->kind && strcmp(e->kind, "mp_join_failed") == 0 && e->detail &&
		    strncmp(e->detail, want, n) == 0)
			return 1;
	}
	return 0;
}

Fjord__V1__Stack census_stack(const Fjord__V1__Run *run, const Fjord__V1__ProbeFinding *pf)
{
	Fjord__V1__Stack s = pf->stack ? pf->stack : run->stack;

	return s == FJORD__V1__STACK__STACK_BUNDLED ? s : FJORD__V1__STACK__STACK_UNSPECIFIED;
}

int census_add(Fjord__V1__Census *c, const struct census_filter *f, const Fjord__V1__Run *run,
	       const Fjord__V1__Result *res)
{
	int64_t t, bucket = 0;
	size_t i;
	int err = 0;

	if (!run || !res || run->type != FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_PROBE)
		return 0;
	c->probe_results++;
	t = res->finished_ms ? res->finished_ms : run->finished_ms ? run->finished_ms : run->due_ms;
	if (f && f->bucket_ms > 0)
		bucket = t >= 0 ? t - t % f->bucket_ms : t - (f->bucket_ms + t % f->bucket_ms);
	for (i = 0; i < res->n_probe_findings; i++) {
		const Fjord__V1__ProbeFinding *pf = res->probe_findings[i];
		const Fjord__V1__Path *p = pf->path;
		Fjord__V1__CensusCell *cell;
		Fjord__V1__Stack stack = census_stack(run, pf);

		if (!p || !p->local_isp || !p->local_isp[0] || !p->remote_isp ||
		    !p->remote_isp[0]) {
			c->findings_without_path++;
			continue;
		}
		if (f && f->isp && strcmp(f->isp, p->local_isp) != 0 &&
		    strcmp(f->isp, p->remote_isp) != 0)
			continue;
		if (f && f->family && p->family != f->family)
			continue;
		if (f && f->stack && (f->stack == FJORD__V1__STACK__STACK_BUNDLED) != (stack != 0))
			continue;
		cell = cell_get(c, str0(p->local_isp), str0(p->remote_isp), p->family, bucket,
				stack, &err);
		if (!cell)
			return err;
		if (!cell->probes || t < cell->first_ms)
			cell->first_ms = t;
		if (!cell->probes || t > cell->last_ms)
			cell->last_ms = t;
		cell->probes++;
		if (!pf->reachable) {
			cell->unreachable++;
			continue;
		}
		cell->reachable++;
		if (pf->mp_capable)
			cell->mp_capable_ok++;
		else
			cell->mp_capable_stripped++;
		if (pf->mp_join)
			cell->mp_join_ok++;
		else if (join_failed(res, i))
			cell->mp_join_failed++;
		cell->add_addr_ok += pf->add_addr_accepted > 0;
		cell->nat += pf->nat;
		cell->checksums += pf->checksums;
		cell->checksum_failures += pf->checksum_errors > 0;
		cell->checksum_errors += pf->checksum_errors;
		cell->seq_rewritten += pf->seq_rewritten;
		cell->payload_modified += pf->payload_modified;
		if (!pf->csum_tested)
			continue;
		cell->csum_tested++;
		cell->csum_failed += pf->csum_failed;
		cell->csum_mp_fail += pf->csum_mp_fail_tx || pf->csum_mp_fail_rx;
		cell->csum_infinite_map += pf->csum_infinite_map_tx || pf->csum_infinite_map_rx;
	}
	return 0;
}

static int cell_cmp(const void *a, const void *b)
{
	const Fjord__V1__CensusCell *x = *(Fjord__V1__CensusCell *const *)a;
	const Fjord__V1__CensusCell *y = *(Fjord__V1__CensusCell *const *)b;
	int r = strcmp(x->local_isp, y->local_isp);

	if (!r)
		r = strcmp(x->remote_isp, y->remote_isp);
	if (!r)
		r = (int)x->family - (int)y->family;
	if (!r)
		r = (x->bucket_start_ms > y->bucket_start_ms) -
		    (x->bucket_start_ms < y->bucket_start_ms);
	if (!r)
		r = (int)x->stack - (int)y->stack;
	return r;
}

void census_sort(Fjord__V1__Census *c)
{
	if (c->n_cells > 1)
		qsort(c->cells, c->n_cells, sizeof(*c->cells), cell_cmp);
}

/* ---- CSV ------------------------------------------------------------------ */

static void csv_time(struct ctl_buf *b, int64_t ms)
{
	char t[40] = "";

	if (ms)
		fj_format_time(ms, t, sizeof(t));
	ctl_buf_puts(b, t);
}

/*
 * A census with bundled findings gets a last column "stack" (kernel or
 * bundled); one of kernel findings only keeps the columns it always had.
 */
char *census_csv(const Fjord__V1__Census *c, size_t *len)
{
	struct ctl_buf b;
	size_t i;
	int labelled = 0;

	for (i = 0; i < c->n_cells; i++)
		labelled |= c->cells[i]->stack != FJORD__V1__STACK__STACK_UNSPECIFIED;

	ctl_buf_init(&b, (size_t)CENSUS_MAX_CELLS * 512 + 4096);
	ctl_buf_puts(&b, "local_isp,remote_isp,family,bucket_start,probes,reachable,unreachable,"
			 "mp_capable_ok,mp_capable_stripped,mp_join_ok,mp_join_failed,add_addr_ok,"
			 "nat,checksums,checksum_failures,checksum_errors,first,last,csum_tested,"
			 "csum_failed,csum_mp_fail,csum_infinite_map,payload_modified,"
			 "seq_rewritten");
	ctl_buf_puts(&b, labelled ? ",stack\r\n" : "\r\n");
	for (i = 0; i < c->n_cells; i++) {
		const Fjord__V1__CensusCell *x = c->cells[i];
		const char *fam = fj_pbjson_enum_short(&fjord__v1__address_family__descriptor,
						       (int)x->family);

		ctl_buf_csv(&b, x->local_isp);
		ctl_buf_puts(&b, ",");
		ctl_buf_csv(&b, x->remote_isp);
		ctl_buf_printf(&b, ",%s,", fam ? fam : "");
		csv_time(&b, x->bucket_start_ms);
		ctl_buf_printf(&b,
			       ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64
			       ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64
			       ",%" PRIu64 ",%" PRIu64 ",",
			       x->probes, x->reachable, x->unreachable, x->mp_capable_ok,
			       x->mp_capable_stripped, x->mp_join_ok, x->mp_join_failed,
			       x->add_addr_ok, x->nat, x->checksums, x->checksum_failures,
			       x->checksum_errors);
		csv_time(&b, x->first_ms);
		ctl_buf_puts(&b, ",");
		csv_time(&b, x->last_ms);
		ctl_buf_printf(&b,
			       ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64
			       ",%" PRIu64,
			       x->csum_tested, x->csum_failed, x->csum_mp_fail,
			       x->csum_infinite_map, x->payload_modified, x->seq_rewritten);
		if (labelled)
			ctl_buf_puts(&b, x->stack == FJORD__V1__STACK__STACK_BUNDLED ? ",bundled"
										     : ",kernel");
		ctl_buf_puts(&b, "\r\n");
	}
	return ctl_buf_take(&b, len);
}
