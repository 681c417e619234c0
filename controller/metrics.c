/* Prometheus counters and histograms for the controller's HTTP API. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

/* Upper bounds in microseconds; long polls make the upper buckets useful. */
static const uint64_t bounds_us[] = { 1000,	2500,	  5000,	    10000,    25000,   50000,
				      100000,	250000,	  500000,   1000000,  2500000, 5000000,
				      10000000, 30000000, 60000000, 300000000 };
#define N_BOUNDS (sizeof(bounds_us) / sizeof(bounds_us[0]))
/* Distinct status codes kept per route; the rest are folded into the last slot. */
#define N_SLOTS 16

struct slot {
	unsigned int status; /* 0 = unused */
	uint64_t count;
	uint64_t sum_us;
	uint64_t buckets[N_BOUNDS]; /* not cumulative; summed when rendered */
};

struct route_stats {
	struct slot slots[N_SLOTS];
};

struct ctl_metrics {
	pthread_mutex_t lock;
	const char *const *names;
	size_t n;
	struct route_stats *routes;
};

int ctl_metrics_create(const char *const *route_names, size_t n_routes, struct ctl_metrics **out)
{
	struct ctl_metrics *m = calloc(1, sizeof(*m));

	*out = NULL;
	if (!m)
		return -ENOMEM;
	m->routes = calloc(n_routes, sizeof(*m->routes));
	if (!m->routes) {
		free(m);
		return -ENOMEM;
	}
	pthread_mutex_init(&m->lock, NULL);
	m->names = route_names;
	m->n = n_routes;
	*out = m;
	return 0;
}

void ctl_metrics_destroy(struct ctl_metrics *m)
{
	if (!m)
		return;
	pthread_mutex_destroy(&m->lock);
	free(m->routes);
	free(m);
}

static struct slot *find_slot(struct route_stats *r, unsigned int status)
{
	size_t i;

	for (i = 0; i < N_SLOTS; i++) {
		if (r->slots[i].status == status)
			return &r->slots[i];
		if (r->slots[i].status == 0) {
			r->slots[i].status = status;
			return &r->slots[i];
		}
	}
	return &r->slots[N_SLOTS - 1];
}

void ctl_metrics_observe(struct ctl_metrics *m, size_t route, unsigned int status,
			 uint64_t duration_us)
{
	struct slot *s;
	size_t i;

	if (route >= m->n)
		return;
	pthread_mutex_lock(&m->lock);
	s = find_slot(&m->routes[route], status);
	s->count++;
	s->sum_us += duration_us;
	for (i = 0; i < N_BOUNDS; i++)
		if (duration_us <= bounds_us[i]) {
			s->buckets[i]++;
			break;
		}
	pthread_mutex_unlock(&m->lock);
}

static void render_requests(struct ctl_metrics *m, struct ctl_buf *b)
{
	size_t r, i, k;

	ctl_buf_puts(
		b, "# HELP fjord_http_requests_total HTTP requests answered, by route and status.\n"
		   "# TYPE fjord_http_requests_total counter\n");
	for (r = 0; r < m->n; r++)
		for (i = 0; i < N_SLOTS && m->routes[r].slots[i].status; i++)
			ctl_buf_printf(b,
				       "fjord_http_requests_total{route=\"%s\",code=\"%u\"} %llu\n",
				       m->names[r], m->routes[r].slots[i].status,
				       (unsigned long long)m->routes[r].slots[i].count);
	ctl_buf_puts(
		b,
		"# HELP fjord_http_request_duration_seconds Time from the request line to the end of the answer, by route and status.\n"
		"# TYPE fjord_http_request_duration_seconds histogram\n");
	for (r = 0; r < m->n; r++) {
		for (i = 0; i < N_SLOTS && m->routes[r].slots[i].status; i++) {
			const struct slot *s = &m->routes[r].slots[i];
			uint64_t cum = 0;

			for (k = 0; k < N_BOUNDS; k++) {
				cum += s->buckets[k];
				ctl_buf_printf(
					b,
					"fjord_http_request_duration_seconds_bucket{route=\"%s\",code=\"%u\",le=\"%g\"} %llu\n",
					m->names[r], s->status, (double)bounds_us[k] / 1e6,
					(unsigned long long)cum);
			}
			ctl_buf_printf(
				b,
				"fjord_http_request_duration_seconds_bucket{route=\"%s\",code=\"%u\",le=\"+Inf\"} %llu\n"
				"fjord_http_request_duration_seconds_sum{route=\"%s\",code=\"%u\"} %.6f\n"
				"fjord_http_request_duration_seconds_count{route=\"%s\",code=\"%u\"} %llu\n",
				m->names[r], s->status, (unsigned long long)s->count, m->names[r],
				s->status, (double)s->sum_us / 1e6, m->names[r], s->status,
				(unsigned long long)s->count);
		}
	}
}

static const char *const run_state_names[9] = { "unspecified", "pending", "waiting_links",
						"dispatched",  "running", "succeeded",
						"failed",      "missed",  "cancelled" };

static void render_gauges(const struct ctl_gauges *g, struct ctl_buf *b)
{
	size_t i;

	ctl_buf_printf(
		b,
		"# HELP fjord_agents_online Agents that polled within the online window.\n"
		"# TYPE fjord_agents_online gauge\nfjord_agents_online %llu\n"
		"# HELP fjord_long_polls_waiting Agent long polls held open right now.\n"
		"# TYPE fjord_long_polls_waiting gauge\nfjord_long_polls_waiting %llu\n"
		"# HELP fjord_poll_reports_queued Agents whose latest poll report waits for the store.\n"
		"# TYPE fjord_poll_reports_queued gauge\nfjord_poll_reports_queued %llu\n",
		(unsigned long long)g->agents_online, (unsigned long long)g->agents_waiting,
		(unsigned long long)g->reports_queued);
	if (g->runs_ok) {
		ctl_buf_puts(b, "# HELP fjord_runs Runs in the store by state.\n"
				"# TYPE fjord_runs gauge\n");
		for (i = 1; i < 9; i++)
			ctl_buf_printf(b, "fjord_runs{state=\"%s\"} %llu\n", run_state_names[i],
				       (unsigned long long)g->runs[i]);
	}
	if (g->store_bytes >= 0)
		ctl_buf_printf(b,
			       "# HELP fjord_store_bytes Size of the database files.\n"
			       "# TYPE fjord_store_bytes gauge\nfjord_store_bytes %lld\n",
			       (long long)g->store_bytes);
	ctl_buf_printf(b,
		       "# HELP fjord_uptime_seconds Seconds since the controller started.\n"
		       "# TYPE fjord_uptime_seconds gauge\nfjord_uptime_seconds %lld\n",
		       (long long)g->uptime_s);
}

void ctl_metrics_render(struct ctl_metrics *m, const struct ctl_gauges *g, struct ctl_buf *b)
{
	pthread_mutex_lock(&m->lock);
	render_requests(m, b);
	pthread_mutex_unlock(&m->lock);
	render_gauges(g, b);
}
