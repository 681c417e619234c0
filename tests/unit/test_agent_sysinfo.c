/* agent_sysinfo: interfaces with live addresses, kernel version, MPTCP sysctls. */
#include <stdio.h>
#include <string.h>

#include "agent_arena.h"
#include "agent_config.h"
#include "agent_sysinfo.h"
#include "fj_test.h"

static void test_interfaces(void)
{
	struct agent_config cfg;
	struct agent_arena a;
	Fjord__V1__Interface **it = NULL;
	size_t n = 0, i;
	int v4 = 0;

	agent_config_defaults(&cfg);
	snprintf(cfg.ifaces[0].name, sizeof(cfg.ifaces[0].name), "lo");
	snprintf(cfg.ifaces[0].isp, sizeof(cfg.ifaces[0].isp), "isp-x");
	cfg.ifaces[0].link_type = FJORD__V1__LINK_TYPE__LINK_TYPE_EMULATED;
	snprintf(cfg.ifaces[1].name, sizeof(cfg.ifaces[1].name), "nosuch0");
	snprintf(cfg.ifaces[1].isp, sizeof(cfg.ifaces[1].isp), "isp-y");
	cfg.n_ifaces = 2;
	agent_arena_init(&a, 1 << 20);
	CU_ASSERT_EQUAL_FATAL(agent_sysinfo_interfaces(&cfg, &a, &it, &n), 0);
	CU_ASSERT_EQUAL_FATAL(n, 2);
	CU_ASSERT_STRING_EQUAL(it[0]->name, "lo");
	CU_ASSERT_STRING_EQUAL(it[0]->isp, "isp-x");
	CU_ASSERT_EQUAL(it[0]->link_type, FJORD__V1__LINK_TYPE__LINK_TYPE_EMULATED);
	CU_ASSERT(it[0]->up);
	for (i = 0; i < it[0]->n_addresses; i++)
		v4 |= strcmp(it[0]->addresses[i], "127.0.0.1/8") == 0;
	CU_ASSERT(v4);
	/* A configured interface that does not exist: reported down, no addresses. */
	CU_ASSERT_STRING_EQUAL(it[1]->name, "nosuch0");
	CU_ASSERT(!it[1]->up);
	CU_ASSERT_EQUAL(it[1]->n_addresses, 0);
	agent_arena_free(&a);
}

static void test_kernel_and_sysctls(void)
{
	struct agent_arena a;
	Fjord__V1__KeyValue **kv = NULL;
	char buf[128];
	size_t n = 0, i;
	int enabled = 0;

	agent_sysinfo_kernel(buf, sizeof(buf));
	CU_ASSERT(strlen(buf) > 0);
	agent_arena_init(&a, 1 << 20);
	if (agent_sysinfo_mptcp_sysctls(&a, &kv, &n) == 0) {
		for (i = 0; i < n; i++)
			enabled |=
				strcmp(kv[i]->key, "net.mptcp.enabled") == 0 &&
				(strcmp(kv[i]->value, "0") == 0 || strcmp(kv[i]->value, "1") == 0);
		CU_ASSERT(enabled);
		CU_ASSERT_EQUAL(agent_sysinfo_mptcp_sysctl("enabled", buf, sizeof(buf)), 0);
	}
	CU_ASSERT(agent_sysinfo_mptcp_sysctl("../../kernel/hostname", buf, sizeof(buf)) < 0);
	agent_arena_free(&a);
}

static void test_arena_limit(void)
{
	struct agent_arena a;

	agent_arena_init(&a, 100);
	CU_ASSERT_PTR_NOT_NULL(agent_arena_alloc(&a, 60));
	CU_ASSERT_PTR_NULL(agent_arena_alloc(&a, 60));
	CU_ASSERT_PTR_NOT_NULL(agent_arena_strdup(&a, "abc"));
	CU_ASSERT_STRING_EQUAL(agent_arena_printf(&a, "%d-%s", 7, "x"), "7-x");
	agent_arena_free(&a);
	CU_ASSERT_EQUAL(a.used, 0);
}

static const struct fj_test tests[] = {
	{ "interfaces", test_interfaces },
	{ "kernel_and_sysctls", test_kernel_and_sysctls },
	{ "arena_limit", test_arena_limit },
	{ NULL, NULL },
};

const struct fj_suite fj_suite_agent_sysinfo = { "agent_sysinfo", NULL, NULL, tests };
