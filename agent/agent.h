/* fjord-agent as a whole: wires the loop, controller client, runner, responder and spool. */
#ifndef AGENT_AGENT_H
#define AGENT_AGENT_H

#include <stddef.h>

struct agent;
struct agent_config;

/*
 * Opens the spool, starts the responder and prepares the controller client.
 * cfg is copied. On error returns a negative errno and explains in err.
 * once: enroll, poll once without waiting, run what arrives, upload the whole
 * spool, then return from agent_run().
 */
int agent_create(const struct agent_config *cfg, int once, struct agent **out, char *err,
		 size_t errlen);
/*
 * Runs until SIGTERM/SIGINT (or, with once, until the spool is empty).
 * Returns 0, or 1 when --once left items the controller refused in the spool.
 */
int agent_run(struct agent *a);
void agent_destroy(struct agent *a);

#endif
