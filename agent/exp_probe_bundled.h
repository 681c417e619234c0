/*
 * The probe (exp_probe.c) on the bundled stack: libmps on the node's client
 * TUN device against the peer's bundled responder, per run path from this
 * agent's bundled address on the path's local ISP to the peer's bundled
 * responder address on its remote ISP (found through the peer's kernel
 * responder, "info"). What the kernel probe reads from MPTCP_INFO and the
 * namespace's MPTcpExt counters comes here from the stack's own view:
 * mps_conn_info(), mps_subflow_info(), its events and its counters, which
 * count this probe's connections alone. exp_probe.c keeps the parameters,
 * the sequence-number check (stack-independent) and the findings' metrics
 * and events.
 */
#ifndef AGENT_EXP_PROBE_BUNDLED_H
#define AGENT_EXP_PROBE_BUNDLED_H

#include <stddef.h>

#include "exp.h"

#define PROBE_BUNDLED_MAX_PATHS 16
#define PROBE_ECHO_BYTES	(32 * 1024)
/* The checksum test's echo: past the testbed's default rewrite_offset (64 KiB). */
#define PROBE_CSUM_BYTES (256 * 1024)
#define PROBE_CSUM_CHUNK (16 * 1024)

struct probe_bundled;

/*
 * Opens the client TUN with a stack that asks for no DSS checksums (its
 * trace becomes "capture.pcap") and reads the peer's bundled responder
 * addresses over path 0 within timeout_ms. 0 and *pb (freed by
 * probe_bundled_close()), or a negative errno with the reason in err: no
 * bundled stack on this agent, the TUN device missing or busy. A peer that
 * does not answer is no error here; each path's finding says so.
 */
int probe_bundled_open(const Fjord__V1__RunCommand *cmd, const struct exp_env *env,
		       unsigned int timeout_ms, struct exp_out *out, struct probe_bundled **pb,
		       char *err, size_t len);

/*
 * Path idx: reachable, NAT, MP_CAPABLE (and where it was lost), MP_JOIN
 * from the other bundled addresses of the family, ADD_ADDR received, into
 * f (initialised by the caller; f->error says why a path could not be
 * probed). The connection takes at most timeout_ms, the join wait half of
 * that. *joins: the joins tried (0: no other bundled address to join from).
 */
void probe_bundled_path(struct probe_bundled *pb, const Fjord__V1__RunCommand *cmd,
			const struct exp_env *env, size_t idx, unsigned int timeout_ms,
			struct exp_out *out, Fjord__V1__ProbeFinding *f, unsigned int *joins);

/*
 * Closes the first stack (its trace kept) and opens one that asks for DSS
 * checksums, traced into "capture_csum.pcap". 0, or a negative errno with
 * the reason in err (the device taken meanwhile).
 */
int probe_bundled_csum_begin(struct probe_bundled *pb, struct exp_out *out, char *err, size_t len);

/*
 * Do DSS checksums fail on path idx (probed before)? A connection with
 * checksums echoes PROBE_CSUM_BYTES within budget_ms; MP_FAIL, infinite
 * mappings, fallback and checksum errors from its events and the stack's
 * counters fill the csum_* fields of f.
 */
void probe_bundled_csum(struct probe_bundled *pb, size_t idx, unsigned int budget_ms,
			const struct exp_env *env, struct exp_out *out, Fjord__V1__ProbeFinding *f);

struct exp_bundled_res;

/*
 * Frees the stack (its trace kept) and pb, after filling res for
 * exp_bundled_provenance(): the settings and the bundled addresses of the
 * paths (those not resolved as the run gave them). NULL pb is fine.
 */
void probe_bundled_close(struct probe_bundled *pb, const Fjord__V1__RunCommand *cmd,
			 struct exp_out *out, struct exp_bundled_res *res);

#endif
