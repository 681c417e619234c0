/*
 * Client-side helpers every experiment type shares: where to connect (a run
 * path or the peer's addresses), opening the socket for the run's stack,
 * blocking I/O with the run's deadline, and the responder handshake.
 */
#ifndef AGENT_EXP_SOCK_H
#define AGENT_EXP_SOCK_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "exp.h"
#include "responder.h"

#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262
#endif

struct exp_target {
	int family;
	struct sockaddr_storage remote, local;
	socklen_t remote_len, local_len;
	int has_local;
	char remote_str[INET6_ADDRSTRLEN];
	char local_str[INET6_ADDRSTRLEN];
	const char *local_isp, *remote_isp;
};

/* "10.0.0.1", "10.0.0.1/24" or "2001:db8::1/64" into a sockaddr with port. */
int exp_parse_addr(const char *s, unsigned int port, struct sockaddr_storage *ss, socklen_t *len,
		   char *text, size_t textlen);
/*
 * The target of path idx of the run, or with no paths (idx 0) the peer's first
 * address of the requested family. 0, or a negative errno after exp_fail().
 */
int exp_resolve_target(const Fjord__V1__RunCommand *cmd, const struct exp_env *env, size_t idx,
		       struct exp_target *t, struct exp_out *out);
/*
 * Opens and connects a socket for stack (KERNEL: IPPROTO_MPTCP, falling back
 * to TCP with a "fallback" event when the kernel has none; TCP: IPPROTO_TCP),
 * applies the run's StackSettings, binds the target's local address. Returns
 * the fd, *mptcp says which protocol it got; or a negative errno after
 * exp_fail().
 */
int exp_connect(const Fjord__V1__RunCommand *cmd, Fjord__V1__Stack stack,
		const struct exp_target *t, const struct exp_env *env, struct exp_out *out,
		int *mptcp);
/* The same with the connection attempt (and later I/O) bounded by max_ms (0: the run's deadline). */
int exp_connect_within(const Fjord__V1__RunCommand *cmd, Fjord__V1__Stack stack,
		       const struct exp_target *t, const struct exp_env *env, unsigned int max_ms,
		       struct exp_out *out, int *mptcp);
/* Socket send and receive timeouts: what is left of the run, less 300 ms for the parent. */
void exp_set_timeouts(int fd, const struct exp_env *env);
/* Milliseconds left before the run must have written its result. */
uint64_t exp_left_ms(const struct exp_env *env);
int exp_send_all(int fd, const uint8_t *p, size_t len);
int exp_recv_all(int fd, uint8_t *p, size_t len);
/*
 * Sends the request and reads the responder's reply. 0, or a negative errno
 * after exp_fail() naming the responder's reason.
 */
int exp_handshake(int fd, const struct agent_resp_request *q, struct agent_resp_reply *reply,
		  struct exp_out *out);
/* A run without paths still records the path it took. */
void exp_synth_path(const struct exp_target *t, struct exp_out *out);
/* Nearest-rank percentile of a sorted array. */
uint32_t exp_percentile(const uint32_t *v, size_t n, unsigned int pct);
int exp_cmp_u32(const void *a, const void *b);
/* The run's stack with "unspecified" meaning the kernel's MPTCP. */
Fjord__V1__Stack exp_stack(const Fjord__V1__RunCommand *cmd);

#endif
