/*
 * Private internals of the scheduler (controller/sched.c and
 * controller/sched_expand.c): limits, defaults and expansion state.
 */
#ifndef SCHED_PRIV_H
#define SCHED_PRIV_H

#include <stddef.h>
#include <stdint.h>

#include "ctl_sched.h"

#define SCHED_DEFAULT_PICKUP_S	 60
#define SCHED_DEFAULT_DEADLINE_S 300
/* A dispatched run the agent stops listing in its polls is lost only after
 * this long: the poll that carried the command may cross the next one. */
#define SCHED_LOST_GRACE_MS  30000
#define SCHED_MAX_RUNS	     100000 /* runs per experiment */
#define SCHED_MAX_PAIRS	     1024   /* target pairs per experiment */
#define SCHED_MAX_SITES	     64
#define SCHED_MAX_LIST	     16 /* ISPs, sites, ... listed in targets */
#define SCHED_MAX_PATHS	     64 /* paths between two agents */
#define SCHED_MAX_EVENTS     64
#define SCHED_MAX_DURATION_S 3600
#define SCHED_MAX_INTERVAL_S (30u * 86400)
#define SCHED_BULK_MAX_BYTES (1ULL << 40)
#define SCHED_STR_MAX	     128
#define SCHED_ID_MAX	     128

struct sched_path {
	const char *lisp, *risp;
	char laddr[64], raddr[64];
	int family;
};

struct sched_pairs {
	const Fjord__V1__Agent **c, **s;
	size_t n;
};

/* State of one expansion. */
struct sched_exp {
	const Fjord__V1__Experiment *exp;
	uint64_t seed;
	struct sched_pairs pairs;
	struct sched_path (*paths)[SCHED_MAX_PATHS];
	size_t *n_paths;
	const Fjord__V1__Stack *stacks;
	size_t n_stacks;
	int baseline;
	uint32_t jitter_s, deadline_s;
	int64_t *occ;
	size_t n_occ, occ_first;
	Fjord__V1__Run **runs;
	size_t n, cap;
};

/* The jitter of run index of an expansion with this seed, in [0, jitter_s
 * * 1000] ms. */
int64_t sched_jitter_ms(uint64_t seed, size_t index, uint32_t jitter_s);
/* Sets a string field of a freshly initialised message (strdup, or the
 * shared empty string for ""). */
int sched_set_str(char **field, const char *v);

#endif
