/*
 * Per-subflow state of a connected socket: for MPTCP sockets from
 * getsockopt(SOL_MPTCP, MPTCP_INFO / MPTCP_TCPINFO / MPTCP_SUBFLOW_ADDRS), for
 * plain TCP sockets from TCP_INFO as one subflow.
 */
#ifndef AGENT_MPTCP_INFO_H
#define AGENT_MPTCP_INFO_H

#include <stddef.h>
#include <stdint.h>

#include "fjord.pb-c.h"

struct agent_arena;

struct agent_mptcp_state {
	int is_mptcp;	       /* the kernel answered MPTCP_INFO */
	int fallback;	       /* the connection fell back to TCP (MPTCP_INFO_FLAG_FALLBACK) */
	unsigned int subflows; /* as counted by the kernel (additional subflows) */
	unsigned int add_addr_accepted, add_addr_signal, csum_enabled;
	uint64_t snd_una, rcv_nxt, write_seq; /* data-level sequence numbers */
};

/* One subflow as the kernel reports it, with its ports (they tell subflows apart). */
struct agent_subflow_raw {
	char local[46], remote[46];
	unsigned int lport, rport;
	uint64_t bytes_sent, bytes_acked, bytes_received;
	uint32_t retrans, srtt_us, rttvar_us, cwnd, ssthresh;
	uint8_t state; /* TCP state (TCP_ESTABLISHED, TCP_SYN_SENT, ...) */
};

/* Whether a subflow in this TCP state carries data (not opening, not gone). */
int agent_subflow_usable(const struct agent_subflow_raw *sf);

#define AGENT_MPTCP_MAX_SUBFLOWS 8

/*
 * The subflows of fd right now (at most AGENT_MPTCP_MAX_SUBFLOWS), for a plain
 * TCP socket or a fallen-back one its single connection. 0 or -errno.
 */
int agent_mptcp_snapshot(int fd, int mptcp_socket, struct agent_subflow_raw *sf, size_t *n,
			 struct agent_mptcp_state *st);

/*
 * mptcp_socket says whether fd was made with IPPROTO_MPTCP.
 * Fills *out with up to max subflows (arena memory) and *st. Returns 0, or a
 * negative errno when the kernel gives nothing at all.
 */
int agent_mptcp_subflows(int fd, int mptcp_socket, struct agent_arena *a,
			 Fjord__V1__SubflowMetrics ***out, size_t *n, size_t max,
			 struct agent_mptcp_state *st);
/* Sets the socket's congestion control ("reno"); 0 or -errno. */
int agent_sock_set_congestion(int fd, const char *name);
/* The socket's congestion control name ("cubic"), or -errno. */
int agent_sock_congestion(int fd, char *buf, size_t len);

#endif
