/*
 * ctl_metrics: request counters and latency histograms by route and status,
 * rendered in the Prometheus text exposition format (version 0.0.4).
 */
#ifndef CTL_METRICS_H
#define CTL_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "http_buf.h"

struct ctl_metrics;

/* Point-in-time values the HTTP layer gathers at scrape time. */
struct ctl_gauges {
	uint64_t agents_online;
	uint64_t agents_waiting; /* long polls held right now */
	uint64_t reports_queued; /* poll reports not yet handed to store and scheduler */
	uint64_t runs[9];	 /* by RunState; valid when runs_ok */
	int runs_ok;
	int64_t store_bytes; /* negative when unknown */
	int64_t uptime_s;
};

/* route_names (n_routes of them, kept, not copied) label the routes. */
int ctl_metrics_create(const char *const *route_names, size_t n_routes, struct ctl_metrics **out);
void ctl_metrics_destroy(struct ctl_metrics *m);
/* Counts one finished request. Thread-safe. */
void ctl_metrics_observe(struct ctl_metrics *m, size_t route, unsigned int status,
			 uint64_t duration_us);
/* Appends the whole exposition to b. */
void ctl_metrics_render(struct ctl_metrics *m, const struct ctl_gauges *g, struct ctl_buf *b);

#endif
