#include "agent_sysinfo.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "agent_arena.h"
#include "agent_config.h"

#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262
#endif

#define MAX_ADDRS_PER_IFACE 32

static int prefix_len(const struct sockaddr *mask)
{
	const unsigned char *p;
	size_t n, i;
	int bits = 0;

	if (!mask)
		return 0;
	if (mask->sa_family == AF_INET) {
		p = (const unsigned char *)&((const struct sockaddr_in *)mask)->sin_addr;
		n = 4;
	} else {
		p = (const unsigned char *)&((const struct sockaddr_in6 *)mask)->sin6_addr;
		n = 16;
	}
	for (i = 0; i < n; i++)
		bits += __builtin_popcount(p[i]);
	return bits;
}

static char *format_addr(struct agent_arena *a, const struct ifaddrs *ifa)
{
	char host[INET6_ADDRSTRLEN];
	const void *src;

	if (ifa->ifa_addr->sa_family == AF_INET)
		src = &((const struct sockaddr_in *)ifa->ifa_addr)->sin_addr;
	else
		src = &((const struct sockaddr_in6 *)ifa->ifa_addr)->sin6_addr;
	if (!inet_ntop(ifa->ifa_addr->sa_family, src, host, sizeof(host)))
		return NULL;
	return agent_arena_printf(a, "%s/%d", host, prefix_len(ifa->ifa_netmask));
}

static int fill_iface(const struct agent_iface_cfg *ic, const struct ifaddrs *all,
		      struct agent_arena *a, Fjord__V1__Interface *it)
{
	const struct ifaddrs *ifa;

	fjord__v1__interface__init(it);
	it->name = agent_arena_strdup(a, ic->name);
	it->isp = agent_arena_strdup(a, ic->isp);
	it->link_type = (Fjord__V1__LinkType)ic->link_type;
	it->addresses = agent_arena_alloc(a, MAX_ADDRS_PER_IFACE * sizeof(char *));
	if (!it->name || !it->isp || !it->addresses)
		return -ENOMEM;
	for (ifa = all; ifa; ifa = ifa->ifa_next) {
		if (strcmp(ifa->ifa_name, ic->name) != 0)
			continue;
		if (ifa->ifa_flags & IFF_UP)
			it->up = 1;
		if (!ifa->ifa_addr ||
		    (ifa->ifa_addr->sa_family != AF_INET && ifa->ifa_addr->sa_family != AF_INET6))
			continue;
		if (it->n_addresses == MAX_ADDRS_PER_IFACE)
			continue;
		it->addresses[it->n_addresses] = format_addr(a, ifa);
		if (!it->addresses[it->n_addresses])
			return -ENOMEM;
		it->n_addresses++;
	}
	return 0;
}

int agent_sysinfo_interfaces(const struct agent_config *cfg, struct agent_arena *a,
			     Fjord__V1__Interface ***out, size_t *n)
{
	struct ifaddrs *all = NULL;
	Fjord__V1__Interface **arr;
	unsigned int i;
	int rc = 0;

	if (getifaddrs(&all) < 0)
		return -errno;
	arr = agent_arena_alloc(a, cfg->n_ifaces * sizeof(*arr) + 1);
	for (i = 0; arr && i < cfg->n_ifaces && !rc; i++) {
		arr[i] = agent_arena_alloc(a, sizeof(**arr));
		rc = arr[i] ? fill_iface(&cfg->ifaces[i], all, a, arr[i]) : -ENOMEM;
	}
	freeifaddrs(all);
	if (!arr)
		return -ENOMEM;
	if (rc)
		return rc;
	*out = arr;
	*n = cfg->n_ifaces;
	return 0;
}

void agent_sysinfo_kernel(char *buf, size_t len)
{
	struct utsname u;

	if (uname(&u) < 0)
		snprintf(buf, len, "unknown");
	else
		snprintf(buf, len, "%s", u.release);
}

int agent_sysinfo_mptcp_sysctl(const char *name, char *buf, size_t len)
{
	char p[128];
	ssize_t r;
	int fd;

	if (strchr(name, '/') ||
	    snprintf(p, sizeof(p), "/proc/sys/net/mptcp/%s", name) >= (int)sizeof(p))
		return -EINVAL;
	fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	r = read(fd, buf, len - 1);
	close(fd);
	if (r < 0)
		return -EIO;
	buf[r] = 0;
	/* Trim the newline and turn tabs (multi-value sysctls) into spaces. */
	while (r > 0 && (buf[r - 1] == '\n' || buf[r - 1] == ' '))
		buf[--r] = 0;
	for (; r > 0; r--)
		if (buf[r - 1] == '\t')
			buf[r - 1] = ' ';
	return 0;
}

int agent_sysinfo_mptcp_sysctls(struct agent_arena *a, Fjord__V1__KeyValue ***out, size_t *n)
{
	Fjord__V1__KeyValue **arr = agent_arena_alloc(a, AGENT_SYSCTL_MAX * sizeof(*arr));
	DIR *d = opendir("/proc/sys/net/mptcp");
	struct dirent *e;
	size_t cnt = 0;

	*n = 0;
	*out = arr;
	if (!arr)
		return -ENOMEM;
	if (!d)
		return -errno;
	while ((e = readdir(d)) != NULL && cnt < AGENT_SYSCTL_MAX) {
		char val[256];
		Fjord__V1__KeyValue *kv;

		if (e->d_name[0] == '.' || agent_sysinfo_mptcp_sysctl(e->d_name, val, sizeof(val)))
			continue;
		kv = agent_arena_alloc(a, sizeof(*kv));
		if (!kv)
			break;
		fjord__v1__key_value__init(kv);
		kv->key = agent_arena_printf(a, "net.mptcp.%s", e->d_name);
		kv->value = agent_arena_strdup(a, val);
		if (!kv->key || !kv->value)
			break;
		arr[cnt++] = kv;
	}
	closedir(d);
	*n = cnt;
	return 0;
}

int agent_sysinfo_has_kernel_mptcp(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_MPTCP);

	if (fd < 0)
		return 0;
	close(fd);
	return 1;
}
