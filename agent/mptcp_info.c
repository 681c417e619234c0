/* MPTCP / TCP socket introspection. Uses the kernel's own uapi structs. */
#include "mptcp_info.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/mptcp.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "agent_arena.h"

#ifndef SOL_MPTCP
#define SOL_MPTCP 284
#endif

#define SUBFLOW_BUF_MAX 8

static char *addr_str(struct agent_arena *a, const struct sockaddr *sa)
{
	char host[INET6_ADDRSTRLEN] = "";

	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, host, sizeof(host));
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, host,
			  sizeof(host));
	return agent_arena_strdup(a, host);
}

static Fjord__V1__SubflowMetrics *from_tcp_info(struct agent_arena *a, const struct tcp_info *ti,
						uint32_t id)
{
	Fjord__V1__SubflowMetrics *m = agent_arena_alloc(a, sizeof(*m));

	if (!m)
		return NULL;
	fjord__v1__subflow_metrics__init(m);
	m->id = id;
	m->bytes_sent = ti->tcpi_bytes_sent;
	m->bytes_acked = ti->tcpi_bytes_acked;
	m->bytes_received = ti->tcpi_bytes_received;
	m->retransmissions = ti->tcpi_total_retrans;
	m->srtt_us = ti->tcpi_rtt;
	m->rttvar_us = ti->tcpi_rttvar;
	m->cwnd = ti->tcpi_snd_cwnd;
	m->ssthresh = ti->tcpi_snd_ssthresh;
	return m;
}

static int plain_tcp(int fd, struct agent_arena *a, Fjord__V1__SubflowMetrics **arr, size_t *n)
{
	struct sockaddr_storage l, r;
	socklen_t ll = sizeof(l), rl = sizeof(r), tl;
	struct tcp_info ti;

	memset(&ti, 0, sizeof(ti));
	tl = sizeof(ti);
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tl) < 0)
		return -errno;
	arr[0] = from_tcp_info(a, &ti, 0);
	if (!arr[0])
		return -ENOMEM;
	if (getsockname(fd, (struct sockaddr *)&l, &ll) == 0)
		arr[0]->local_address = addr_str(a, (struct sockaddr *)&l);
	if (getpeername(fd, (struct sockaddr *)&r, &rl) == 0)
		arr[0]->remote_address = addr_str(a, (struct sockaddr *)&r);
	*n = 1;
	return 0;
}

struct tcpinfo_buf {
	struct mptcp_subflow_data d;
	struct tcp_info ti[SUBFLOW_BUF_MAX];
};

struct addrs_buf {
	struct mptcp_subflow_data d;
	struct mptcp_subflow_addrs ad[SUBFLOW_BUF_MAX];
};

static int mptcp_subflow_list(int fd, struct agent_arena *a, Fjord__V1__SubflowMetrics **arr,
			      size_t *n, size_t max)
{
	struct tcpinfo_buf tb;
	struct addrs_buf ab;
	socklen_t tl = sizeof(tb), al = sizeof(ab);
	size_t i, cnt, acnt = 0;

	memset(&tb, 0, sizeof(tb));
	tb.d.size_subflow_data = sizeof(tb.d);
	tb.d.size_user = sizeof(tb.ti[0]);
	if (getsockopt(fd, SOL_MPTCP, MPTCP_TCPINFO, &tb, &tl) < 0)
		return -errno;
	cnt = tb.d.num_subflows;
	if (tb.d.size_user == 0 || tl < sizeof(tb.d))
		return -EIO;
	/* The kernel copies min(its size, ours) per element at our stride. */
	if (cnt > (tl - sizeof(tb.d)) / sizeof(tb.ti[0]))
		cnt = (tl - sizeof(tb.d)) / sizeof(tb.ti[0]);
	if (cnt > max)
		cnt = max;
	memset(&ab, 0, sizeof(ab));
	ab.d.size_subflow_data = sizeof(ab.d);
	ab.d.size_user = sizeof(ab.ad[0]);
	if (getsockopt(fd, SOL_MPTCP, MPTCP_SUBFLOW_ADDRS, &ab, &al) == 0 && al >= sizeof(ab.d))
		acnt = (al - sizeof(ab.d)) / sizeof(ab.ad[0]);
	for (i = 0; i < cnt; i++) {
		arr[i] = from_tcp_info(a, &tb.ti[i], (uint32_t)i);
		if (!arr[i])
			return -ENOMEM;
		if (i < acnt && i < ab.d.num_subflows) {
			arr[i]->local_address = addr_str(a, &ab.ad[i].sa_local);
			arr[i]->remote_address = addr_str(a, &ab.ad[i].sa_remote);
		}
	}
	*n = cnt;
	return 0;
}

int agent_mptcp_subflows(int fd, int mptcp_socket, struct agent_arena *a,
			 Fjord__V1__SubflowMetrics ***out, size_t *n, size_t max,
			 struct agent_mptcp_state *st)
{
	Fjord__V1__SubflowMetrics **arr;
	struct mptcp_info mi;
	socklen_t ml = sizeof(mi);
	int rc;

	memset(st, 0, sizeof(*st));
	*n = 0;
	if (max == 0)
		return -EINVAL;
	arr = agent_arena_alloc(a, max * sizeof(*arr));
	if (!arr)
		return -ENOMEM;
	*out = arr;
	if (!mptcp_socket)
		return plain_tcp(fd, a, arr, n);
	st->is_mptcp = 1;
	memset(&mi, 0, sizeof(mi));
	if (getsockopt(fd, SOL_MPTCP, MPTCP_INFO, &mi, &ml) < 0) {
		/*
		 * Kernels that hand a fallen-back socket's getsockopt to its TCP
		 * subflow answer SOL_MPTCP with an error: that too means fallback.
		 */
		st->fallback = 1;
		return plain_tcp(fd, a, arr, n);
	}
	st->fallback = !!(mi.mptcpi_flags & MPTCP_INFO_FLAG_FALLBACK);
	st->subflows = mi.mptcpi_subflows;
	rc = mptcp_subflow_list(fd, a, arr, n, max);
	if (rc == 0 && *n > 0)
		return 0;
	return plain_tcp(fd, a, arr, n);
}

int agent_sock_set_congestion(int fd, const char *name)
{
	if (setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, name, (socklen_t)strlen(name)) < 0)
		return -errno;
	return 0;
}

int agent_sock_congestion(int fd, char *buf, size_t len)
{
	socklen_t l = (socklen_t)(len - 1);

	memset(buf, 0, len);
	if (getsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, buf, &l) < 0)
		return -errno;
	buf[len - 1] = 0;
	return 0;
}
