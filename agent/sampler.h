/*
 * Per-subflow sampler of a connected kernel socket. Every interval it reads
 * MPTCP_INFO, MPTCP_TCPINFO and MPTCP_SUBFLOW_ADDRS (TCP_INFO for plain TCP),
 * gives each subflow a stable id by its address and port pair, appends a
 * SubflowSample per subflow to the Result (at most EXP_MAX_SAMPLES) and a line
 * to the trace, and turns differences between samples into events: a new
 * subflow is "subflow_up", a vanished one "subflow_down", a connection that
 * fell back to TCP "fallback". Blocking-free: the caller calls
 * sampler_tick() from its own loop.
 */
#ifndef AGENT_SAMPLER_H
#define AGENT_SAMPLER_H

#include <stdint.h>

#include "exp.h"
#include "mptcp_info.h"

#define SAMPLER_MAX_SF	     16
#define SAMPLER_MIN_INTERVAL 10
#define SAMPLER_MAX_INTERVAL 10000

struct sampler_sf {
	struct agent_subflow_raw last; /* as last seen */
	uint32_t id;
	int alive;
	uint64_t prev_bytes; /* acked + received at the previous sample */
};

struct sampler {
	struct exp_out *out;
	const Fjord__V1__RunCommand *cmd; /* for ISP labels of the run's paths */
	struct exp_trace *csv;		  /* "subflows.csv", or NULL */
	int fd, mptcp;
	unsigned int interval_ms;
	uint64_t next_ms, prev_ms; /* fj_mono_ms scale */
	struct sampler_sf sf[SAMPLER_MAX_SF];
	unsigned int n_sf, max_alive;
	int fallback_seen, finishing;
	struct agent_mptcp_state st; /* of the latest sample */
	uint64_t samples_dropped;
};

/* The run's sample interval (ExperimentSpec.sample_interval_ms, default 100 ms). */
int sampler_interval(const Fjord__V1__RunCommand *cmd, struct exp_out *out, unsigned int *ms);
void sampler_init(struct sampler *s, struct exp_out *out, const Fjord__V1__RunCommand *cmd, int fd,
		  int mptcp, unsigned int interval_ms, struct exp_trace *csv);
/* Samples now. */
int sampler_sample(struct sampler *s);
/* Samples if the interval has passed; returns ms until the next sample is due. */
unsigned int sampler_tick(struct sampler *s);
/* A last sample; Result.subflows gets every subflow seen, alive or gone. */
void sampler_finish(struct sampler *s);
/* Subflows alive at the latest sample. */
unsigned int sampler_alive(const struct sampler *s);

#endif
