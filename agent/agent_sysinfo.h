/* What the agent reports about its host: interfaces, kernel, MPTCP sysctls, stacks. */
#ifndef AGENT_SYSINFO_H
#define AGENT_SYSINFO_H

#include <stddef.h>

#include "fjord.pb-c.h"

#define FJORD_AGENT_VERSION "0.1.0"
#define AGENT_SYSCTL_MAX    32

struct agent_arena;
struct agent_config;

/*
 * Fills *out (an arena-allocated array of *n interfaces) with the configured
 * interfaces, their ISP labels and link types, and their addresses as they
 * are now ("10.1.1.2/24"), read with getifaddrs. A configured interface that
 * does not exist is reported down with no addresses.
 */
int agent_sysinfo_interfaces(const struct agent_config *cfg, struct agent_arena *a,
			     Fjord__V1__Interface ***out, size_t *n);
/* uname -r into buf. */
void agent_sysinfo_kernel(char *buf, size_t len);
/* Reads /proc/sys/net/mptcp/NAME (trimmed); -errno if absent. */
int agent_sysinfo_mptcp_sysctl(const char *name, char *buf, size_t len);
/* Every net.mptcp.* sysctl as KeyValue pairs ("net.mptcp.enabled" = "1"). */
int agent_sysinfo_mptcp_sysctls(struct agent_arena *a, Fjord__V1__KeyValue ***out, size_t *n);
/* 1 if socket(IPPROTO_MPTCP) works here. */
int agent_sysinfo_has_kernel_mptcp(void);

#endif
