/* The route table of docs/api.md: method, path pattern, caller, body and handler. */
#include "census.h"
#include "http_internal.h"

static const char *const filters[] = { "experiment", "site", "isp", "family", "stack",	"state",
				       "agent",	     "from", "to",  "limit",  "offset", NULL };
static const char *const agg_params[] = { "metric", "group_by", "experiment", "site",  "isp",
					  "family", "stack",	"state",      "agent", "from",
					  "to",	    "limit",	"offset",     NULL };

static const char *const census_params[] = { "isp",	 "family", "from", "to",
					     "bucket_s", "stack",  NULL };

#define MSG(m) (&fjord__v1__##m##__descriptor)

const struct ctl_route ctl_routes[] = {
	{ "GET", "/healthz", "healthz", CTL_WHO_ANYONE, CTL_BODY_NONE, NULL, 0, 0, NULL,
	  ctl_route_healthz },
	{ "GET", "/metrics", "metrics", CTL_WHO_ANYONE, CTL_BODY_NONE, NULL, 0, 1, NULL,
	  ctl_route_metrics },
	{ "POST", "/api/v1/enroll", "enroll", CTL_WHO_ANYONE, CTL_BODY_MSG, MSG(enroll_request), 0,
	  0, NULL, ctl_route_enroll },
	{ "POST", "/api/v1/poll", "poll", CTL_WHO_AGENT, CTL_BODY_MSG, MSG(poll_request), 0, 0,
	  NULL, ctl_route_poll },
	{ "POST", "/api/v1/runs/*/result", "result", CTL_WHO_AGENT, CTL_BODY_MSG, MSG(result), 0, 0,
	  NULL, ctl_route_result },
	{ "POST", "/api/v1/results:batch", "result_batch", CTL_WHO_AGENT, CTL_BODY_MSG,
	  MSG(result_batch), 0, 0, NULL, ctl_route_result_batch },
	{ "HEAD", "/api/v1/runs/*/traces/*", "trace_head", CTL_WHO_AGENT, CTL_BODY_NONE, NULL, 0, 0,
	  NULL, ctl_route_trace_head },
	{ "PUT", "/api/v1/runs/*/traces/*", "trace_put", CTL_WHO_AGENT, CTL_BODY_STREAM, NULL, 0, 0,
	  NULL, ctl_route_trace_put },
	{ "GET", "/api/v1/runs/*/traces/*", "trace_get", CTL_WHO_VIEWER, CTL_BODY_NONE, NULL, 0, 1,
	  NULL, ctl_route_trace_get },
	{ "GET", "/api/v1/runs/*/traces", "trace_list", CTL_WHO_VIEWER, CTL_BODY_NONE, NULL, 0, 0,
	  NULL, ctl_route_trace_list },
	{ "GET", "/api/v1/agents", "agents", CTL_WHO_VIEWER, CTL_BODY_NONE, NULL, 0, 0, NULL,
	  ctl_route_agents },
	{ "GET", "/api/v1/agents/*", "agent", CTL_WHO_VIEWER, CTL_BODY_NONE, NULL, 0, 0, NULL,
	  ctl_route_agent },
	{ "POST", "/api/v1/experiments", "experiment_create", CTL_WHO_EXPERIMENTER, CTL_BODY_MSG,
	  MSG(experiment_spec), 0, 0, NULL, ctl_route_exp_create },
	{ "GET", "/api/v1/experiments", "experiments", CTL_WHO_VIEWER, CTL_BODY_NONE, NULL, 0, 0,
	  NULL, ctl_route_exp_list },
	{ "GET", "/api/v1/experiments/*", "experiment", CTL_WHO_VIEWER, CTL_BODY_NONE, NULL, 0, 0,
	  NULL, ctl_route_exp_get },
	{ "POST", "/api/v1/experiments/*/cancel", "experiment_cancel", CTL_WHO_EXPERIMENTER,
	  CTL_BODY_NONE, NULL, 0, 0, NULL, ctl_route_exp_cancel },
	{ "GET", "/api/v1/runs", "runs", CTL_WHO_VIEWER, CTL_BODY_NONE, NULL, 1, 0, filters,
	  ctl_route_runs },
	{ "GET", "/api/v1/runs/*", "run", CTL_WHO_VIEWER, CTL_BODY_NONE, NULL, 0, 0, NULL,
	  ctl_route_run },
	{ "GET", "/api/v1/results", "results", CTL_WHO_VIEWER, CTL_BODY_NONE, NULL, 1, 0, filters,
	  ctl_route_results },
	{ "GET", "/api/v1/aggregates", "aggregates", CTL_WHO_VIEWER, CTL_BODY_NONE, NULL, 1, 0,
	  agg_params, ctl_route_aggregates },
	{ "GET", "/api/v1/census", "census", CTL_WHO_VIEWER, CTL_BODY_NONE, NULL, 1, 0,
	  census_params, ctl_route_census },
};

const size_t ctl_n_routes = sizeof(ctl_routes) / sizeof(ctl_routes[0]);
