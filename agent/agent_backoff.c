#include "agent_backoff.h"

#include <sys/random.h>

#include "fj_clock.h"

void agent_backoff_init(struct agent_backoff *b, uint64_t base_ms, uint64_t cap_ms, uint64_t seed)
{
	b->base_ms = base_ms ? base_ms : 1;
	b->cap_ms = cap_ms < b->base_ms ? b->base_ms : cap_ms;
	b->attempt = 0;
	if (!seed && getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != sizeof(seed))
		seed = fj_mono_us();
	b->rng = seed ? seed : 0x9e3779b97f4a7c15ull;
}

uint64_t agent_backoff_ceiling(const struct agent_backoff *b)
{
	uint64_t c = b->base_ms;
	unsigned int i;

	/* Doubling stops at the cap, so this never overflows. */
	for (i = 0; i < b->attempt && c < b->cap_ms; i++)
		c *= 2;
	return c < b->cap_ms ? c : b->cap_ms;
}

static uint64_t rng_next(struct agent_backoff *b)
{
	b->rng ^= b->rng >> 12;
	b->rng ^= b->rng << 25;
	b->rng ^= b->rng >> 27;
	return b->rng * 0x2545f4914f6cdd1dull;
}

uint64_t agent_backoff_next(struct agent_backoff *b)
{
	uint64_t ceiling = agent_backoff_ceiling(b);

	if (b->attempt < 64)
		b->attempt++;
	return rng_next(b) % (ceiling + 1);
}

void agent_backoff_reset(struct agent_backoff *b)
{
	b->attempt = 0;
}
