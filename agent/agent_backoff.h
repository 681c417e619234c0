/*
 * Capped exponential backoff with full jitter: attempt n waits a uniformly
 * random time in [0, min(cap, base * 2^n)]. Full jitter spreads agents that
 * lost the controller at the same moment, so they do not return in lockstep.
 * A plain value type: embed it, no create/destroy.
 */
#ifndef AGENT_BACKOFF_H
#define AGENT_BACKOFF_H

#include <stdint.h>

struct agent_backoff {
	uint64_t base_ms;
	uint64_t cap_ms;
	unsigned int attempt;
	uint64_t rng; /* xorshift64* state, never 0 */
};

/* seed 0 draws one from getrandom(). */
void agent_backoff_init(struct agent_backoff *b, uint64_t base_ms, uint64_t cap_ms, uint64_t seed);
/* The upper bound the next call to agent_backoff_next() draws below. */
uint64_t agent_backoff_ceiling(const struct agent_backoff *b);
/* Returns the next delay and advances the attempt count. */
uint64_t agent_backoff_next(struct agent_backoff *b);
/* After a success: the next failure starts from base_ms again. */
void agent_backoff_reset(struct agent_backoff *b);

#endif
