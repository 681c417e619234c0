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

static void raw_addr(const struct sockaddr *sa, char *buf, size_t len, unsigned int *port)
{
	buf[0] = 0;
	*port = 0;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &s4->sin_addr, buf, (socklen_t)len);
		*port = ntohs(s4->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &s6->sin6_addr, buf, (socklen_t)len);
		*port = ntohs(s6->sin6_port);
	}
}

/* tcpi_state values (the kernel's enum in include/net/tcp_states.h; not in the uapi headers). */
enum {
	SF_ESTABLISHED = 1,
	SF_FIN_WAIT1 = 4,
	SF_FIN_WAIT2 = 5,
	SF_CLOSE_WAIT = 8,
	SF_LAST_ACK = 9,
	SF_CLOSING = 11,
};

int agent_subflow_usable(const struct agent_subflow_raw *sf)
{
	switch (sf->state) {
	case SF_ESTABLISHED:
	case SF_FIN_WAIT1:
	case SF_FIN_WAIT2:
	case SF_CLOSE_WAIT:
	case SF_CLOSING:
	case SF_LAST_ACK:
		return 1;
	default:
		return 0;
	}
}

static void raw_from_tcp_info(struct agent_subflow_raw *r, const struct tcp_info *ti)
{
	r->state = ti->tcpi_state;
	r->bytes_sent = ti->tcpi_bytes_sent;
	r->bytes_acked = ti->tcpi_bytes_acked;
	r->bytes_received = ti->tcpi_bytes_received;
	r->retrans = ti->tcpi_total_retrans;
	r->srtt_us = ti->tcpi_rtt;
	r->rttvar_us = ti->tcpi_rttvar;
	r->cwnd = ti->tcpi_snd_cwnd;
	r->ssthresh = ti->tcpi_snd_ssthresh;
}

static int raw_plain(int fd, struct agent_subflow_raw *sf, size_t *n)
{
	struct sockaddr_storage l, r;
	socklen_t ll = sizeof(l), rl = sizeof(r), tl;
	struct tcp_info ti;

	memset(&ti, 0, sizeof(ti));
	memset(sf, 0, sizeof(*sf));
	tl = sizeof(ti);
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tl) < 0)
		return -errno;
	raw_from_tcp_info(sf, &ti);
	if (getsockname(fd, (struct sockaddr *)&l, &ll) == 0)
		raw_addr((struct sockaddr *)&l, sf->local, sizeof(sf->local), &sf->lport);
	if (getpeername(fd, (struct sockaddr *)&r, &rl) == 0)
		raw_addr((struct sockaddr *)&r, sf->remote, sizeof(sf->remote), &sf->rport);
	*n = 1;
	return 0;
}

int agent_mptcp_snapshot(int fd, int mptcp_socket, struct agent_subflow_raw *sf, size_t *n,
			 struct agent_mptcp_state *st)
{
	struct tcpinfo_buf tb;
	struct addrs_buf ab;
	struct mptcp_info mi;
	socklen_t ml = sizeof(mi), tl = sizeof(tb), al = sizeof(ab);
	size_t i, cnt, acnt = 0;

	memset(st, 0, sizeof(*st));
	*n = 0;
	if (!mptcp_socket)
		return raw_plain(fd, sf, n);
	st->is_mptcp = 1;
	memset(&mi, 0, sizeof(mi));
	if (getsockopt(fd, SOL_MPTCP, MPTCP_INFO, &mi, &ml) < 0) {
		/* A fallen-back socket may hand SOL_MPTCP to its TCP subflow, which refuses. */
		st->fallback = 1;
		return raw_plain(fd, sf, n);
	}
	st->fallback = !!(mi.mptcpi_flags & MPTCP_INFO_FLAG_FALLBACK);
	st->subflows = mi.mptcpi_subflows;
	st->add_addr_accepted = mi.mptcpi_add_addr_accepted;
	st->add_addr_signal = mi.mptcpi_add_addr_signal;
	st->csum_enabled = mi.mptcpi_csum_enabled;
	st->snd_una = mi.mptcpi_snd_una;
	st->rcv_nxt = mi.mptcpi_rcv_nxt;
	st->write_seq = mi.mptcpi_write_seq;
	if (st->fallback)
		return raw_plain(fd, sf, n);
	memset(&tb, 0, sizeof(tb));
	tb.d.size_subflow_data = sizeof(tb.d);
	tb.d.size_user = sizeof(tb.ti[0]);
	if (getsockopt(fd, SOL_MPTCP, MPTCP_TCPINFO, &tb, &tl) < 0 || tl < sizeof(tb.d))
		return raw_plain(fd, sf, n);
	cnt = tb.d.num_subflows;
	if (cnt > (tl - sizeof(tb.d)) / sizeof(tb.ti[0]))
		cnt = (tl - sizeof(tb.d)) / sizeof(tb.ti[0]);
	if (cnt > AGENT_MPTCP_MAX_SUBFLOWS)
		cnt = AGENT_MPTCP_MAX_SUBFLOWS;
	memset(&ab, 0, sizeof(ab));
	ab.d.size_subflow_data = sizeof(ab.d);
	ab.d.size_user = sizeof(ab.ad[0]);
	if (getsockopt(fd, SOL_MPTCP, MPTCP_SUBFLOW_ADDRS, &ab, &al) == 0 && al >= sizeof(ab.d))
		acnt = (al - sizeof(ab.d)) / sizeof(ab.ad[0]);
	/*
	 * Both lists walk the same subflow list, but a subflow may come or go
	 * between the two calls; a count mismatch leaves the addresses out.
	 */
	if (acnt != cnt || ab.d.num_subflows != tb.d.num_subflows)
		acnt = 0;
	for (i = 0; i < cnt; i++) {
		memset(&sf[i], 0, sizeof(sf[i]));
		raw_from_tcp_info(&sf[i], &tb.ti[i]);
		if (i < acnt) {
			raw_addr(&ab.ad[i].sa_local, sf[i].local, sizeof(sf[i].local),
				 &sf[i].lport);
			raw_addr(&ab.ad[i].sa_remote, sf[i].remote, sizeof(sf[i].remote),
				 &sf[i].rport);
		}
	}
	*n = cnt;
	return cnt ? 0 : raw_plain(fd, sf, n);
}
