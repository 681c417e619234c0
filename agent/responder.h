/*
 * The responder: the passive side of echo experiments. Listens on one port
 * (the same on every agent) over IPv4 and IPv6, with IPPROTO_MPTCP where the
 * kernel has it (an MPTCP listener also accepts plain TCP clients) and
 * IPPROTO_TCP otherwise, and echoes every byte back. Runs in the event loop:
 * non-blocking, a capped buffer per connection, a capped connection count and
 * an idle timeout.
 */
#ifndef AGENT_RESPONDER_H
#define AGENT_RESPONDER_H

struct agent_loop;
struct agent_responder;

#define AGENT_RESPONDER_BUF (64 * 1024)

struct agent_responder_cfg {
	const char *const *addrs; /* literal addresses; NULL or n_addrs 0: 0.0.0.0 and :: */
	unsigned int n_addrs;
	unsigned int port; /* 0: an ephemeral port, the same for all listeners */
	unsigned int max_conns;
	unsigned int idle_s;
	int force_tcp; /* listen with IPPROTO_TCP even if MPTCP is there */
};

/* Returns 0 or a negative errno (no listener could be opened); err explains. */
int agent_responder_create(struct agent_loop *loop, const struct agent_responder_cfg *cfg,
			   struct agent_responder **out, char *err, unsigned int errlen);
void agent_responder_destroy(struct agent_responder *r);
unsigned int agent_responder_port(const struct agent_responder *r);
/* IPPROTO_MPTCP if at least one listener is MPTCP, else IPPROTO_TCP. */
int agent_responder_protocol(const struct agent_responder *r);
unsigned int agent_responder_conns(const struct agent_responder *r);
/* Connections refused because max_conns was reached, and closed for idleness. */
unsigned long agent_responder_refused(const struct agent_responder *r);
unsigned long agent_responder_idle_closed(const struct agent_responder *r);

#endif
