/*
 * Suite "sched": validation and expansion (pure functions, exact run
 * counts and due times) and dispatch against a real store in a temporary
 * directory with a fake clock: link reservation order, missed, deadline,
 * lost runs, cancel and rebuilding after a restart.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl_sched.h"
#include "ctl_store.h"
#include "fj_test.h"

#define RS(x)  FJORD__V1__RUN_STATE__RUN_STATE_##x
#define V4     FJORD__V1__ADDRESS_FAMILY__ADDRESS_FAMILY_IPV4
#define V6     FJORD__V1__ADDRESS_FAMILY__ADDRESS_FAMILY_IPV6
#define T0     1000000000LL /* a fixed "now" for every test */
#define KERNEL FJORD__V1__STACK__STACK_KERNEL

/* ---- building messages ------------------------------------------------------- */

static char *xdup(const char *s)
{
	char *d = strdup(s);

	CU_ASSERT_FATAL(d != NULL);
	return d;
}

/* A heap agent with one interface per ISP; each has a v4 and a v6 address
 * unless v6 is 0. */
static Fjord__V1__Agent *mk_agent(const char *id, const char *site, int online, int64_t seen,
				  int v6, const char *const *isps)
{
	Fjord__V1__Agent *a = calloc(1, sizeof(*a));
	size_t n = 0, i;
	char buf[96];

	fjord__v1__agent__init(a);
	a->id = xdup(id);
	a->site = xdup(site);
	a->node = xdup("n1");
	a->online = online;
	a->last_seen_ms = seen;
	while (isps[n])
		n++;
	a->interfaces = calloc(n + 1, sizeof(*a->interfaces));
	for (i = 0; i < n; i++) {
		Fjord__V1__Interface *f = calloc(1, sizeof(*f));

		fjord__v1__interface__init(f);
		snprintf(buf, sizeof(buf), "eth%zu", i);
		f->name = xdup(buf);
		f->isp = xdup(isps[i]);
		f->addresses = calloc(2, sizeof(char *));
		snprintf(buf, sizeof(buf), "10.%zu.%zu.%zu/24", i, strlen(site), strlen(id));
		f->addresses[f->n_addresses++] = xdup(buf);
		if (v6) {
			snprintf(buf, sizeof(buf), "2001:db8:%zu::%zu/64", i, strlen(id));
			f->addresses[f->n_addresses++] = xdup(buf);
		}
		a->interfaces[a->n_interfaces++] = f;
	}
	return a;
}

static Fjord__V1__AgentList *mk_list(void)
{
	Fjord__V1__AgentList *l = calloc(1, sizeof(*l));

	fjord__v1__agent_list__init(l);
	l->agents = calloc(8, sizeof(*l->agents));
	return l;
}

/* The standard cast: A on oslo (ISPs x, y), B on bergen (z), both dual stack. */
static Fjord__V1__AgentList *two_agents(void)
{
	static const char *const ia[] = { "x", "y", NULL }, *const ib[] = { "z", NULL };
	Fjord__V1__AgentList *l = mk_list();

	l->agents[l->n_agents++] = mk_agent("A", "oslo", 1, 5, 1, ia);
	l->agents[l->n_agents++] = mk_agent("B", "bergen", 1, 5, 1, ib);
	return l;
}

/* An echo spec on the stack: the caller sets targets and schedule. */
struct spec_buf {
	Fjord__V1__ExperimentSpec spec;
	Fjord__V1__EchoParams echo;
	Fjord__V1__StackSettings stack;
	Fjord__V1__Targets targets;
	Fjord__V1__Schedule sched;
	Fjord__V1__AgentPair pair[4];
	Fjord__V1__AgentPair *pairp[4];
	Fjord__V1__Experiment exp;
};

static void spec_init(struct spec_buf *b, const char *exp_id)
{
	size_t i;

	memset(b, 0, sizeof(*b));
	fjord__v1__experiment_spec__init(&b->spec);
	fjord__v1__echo_params__init(&b->echo);
	fjord__v1__stack_settings__init(&b->stack);
	fjord__v1__targets__init(&b->targets);
	fjord__v1__schedule__init(&b->sched);
	fjord__v1__experiment__init(&b->exp);
	for (i = 0; i < 4; i++) {
		fjord__v1__agent_pair__init(&b->pair[i]);
		b->pairp[i] = &b->pair[i];
	}
	b->spec.name = "test";
	b->spec.type = FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_ECHO;
	b->spec.params_case = FJORD__V1__EXPERIMENT_SPEC__PARAMS_ECHO;
	b->spec.echo = &b->echo;
	b->echo.message_bytes = 100;
	b->echo.count = 10;
	b->spec.targets = &b->targets;
	b->spec.schedule = &b->sched;
	b->sched.start_ms = T0;
	b->exp.id = (char *)exp_id;
	b->exp.spec = &b->spec;
	b->exp.owner = "tester";
	b->exp.created_ms = T0 - 1000;
}

static void set_pair(struct spec_buf *b, size_t i, const char *c, const char *s)
{
	b->pair[i].client_agent_id = (char *)c;
	b->pair[i].server_agent_id = (char *)s;
	b->targets.pairs = b->pairp;
	if (b->targets.n_pairs < i + 1)
		b->targets.n_pairs = i + 1;
}

static void free_runs(Fjord__V1__Run **runs, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		fjord__v1__run__free_unpacked(runs[i], NULL);
	free(runs);
}

static size_t expand_n(struct spec_buf *b, const Fjord__V1__AgentList *l, uint64_t seed,
		       Fjord__V1__Run ***runs, struct ctl_reject *why)
{
	size_t n = 0;
	int err = ctl_sched_expand(&b->exp, l, T0 - 1000, seed, runs, &n, why);

	CU_ASSERT_EQUAL(err, 0);
	if (err) {
		printf("\nexpand: %s: %s\n", why->field, why->message);
		return 0;
	}
	return n;
}

/* ---- validation ------------------------------------------------------------ */

static void expect_reject(struct spec_buf *b, const char *field)
{
	struct ctl_reject why;

	CU_ASSERT_EQUAL(ctl_sched_validate(&b->spec, &why), -EINVAL);
	CU_ASSERT_STRING_EQUAL(why.field, field);
	CU_ASSERT(why.message[0] != 0);
}

static void test_validate(void)
{
	Fjord__V1__BulkParams bulk = FJORD__V1__BULK_PARAMS__INIT;
	Fjord__V1__Stack stacks[2] = { KERNEL, KERNEL };
	Fjord__V1__AddressFamily fam[1] = { 9 };
	struct ctl_reject why;
	struct spec_buf b;

	spec_init(&b, "e");
	set_pair(&b, 0, "A", "B");
	CU_ASSERT_EQUAL(ctl_sched_validate(&b.spec, &why), 0);
	CU_ASSERT_EQUAL(ctl_sched_validate(NULL, &why), -EINVAL);

	b.echo.message_bytes = 0;
	expect_reject(&b, "echo.messageBytes");
	b.echo.message_bytes = 65537;
	expect_reject(&b, "echo.messageBytes");
	b.echo.message_bytes = 65536;
	b.echo.count = 100001;
	expect_reject(&b, "echo.count");
	b.echo.count = 0;
	expect_reject(&b, "echo.count");
	b.echo.count = 1;
	b.spec.params_case = FJORD__V1__EXPERIMENT_SPEC__PARAMS_BULK;
	b.spec.bulk = &bulk;
	expect_reject(&b, "echo");
	b.spec.type = FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_BULK;
	expect_reject(&b, "bulk.bytes"); /* neither bytes nor duration */
	bulk.duration_s = 10;
	CU_ASSERT_EQUAL(ctl_sched_validate(&b.spec, &why), 0);
	bulk.duration_s = 0;
	bulk.bytes = 1 << 20;
	CU_ASSERT_EQUAL(ctl_sched_validate(&b.spec, &why), 0);
	bulk.direction = 7;
	expect_reject(&b, "bulk.direction");
	b.spec.type = 0;
	expect_reject(&b, "type");

	spec_init(&b, "e");
	set_pair(&b, 0, "A", "A");
	expect_reject(&b, "targets.pairs[0]");
	set_pair(&b, 0, "A", "");
	expect_reject(&b, "targets.pairs[0].serverAgentId");
	b.targets.n_pairs = 0;
	expect_reject(&b, "targets");
	b.spec.targets = NULL;
	expect_reject(&b, "targets");
	spec_init(&b, "e");
	b.targets.all_site_pairs = 1;
	b.targets.families = fam;
	b.targets.n_families = 1;
	expect_reject(&b, "targets.families[0]");
	b.targets.n_families = 0;
	b.stack.stacks = stacks;
	b.stack.n_stacks = 2;
	b.spec.stack = &b.stack;
	expect_reject(&b, "stack.stacks[1]");
	b.spec.stack = NULL;

	b.sched.count = 3;
	expect_reject(&b, "schedule.count"); /* count without interval */
	b.sched.interval_s = 60;
	b.sched.count = 0;
	expect_reject(&b, "schedule.count"); /* periodic without count or end */
	b.sched.count = 3;
	b.sched.jitter_s = 61;
	expect_reject(&b, "schedule.jitterS");
	b.sched.jitter_s = 0;
	b.sched.end_ms = T0 - 1;
	expect_reject(&b, "schedule.endMs");
	b.sched.end_ms = 0;
	CU_ASSERT_EQUAL(ctl_sched_validate(&b.spec, &why), 0);
	b.spec.pickup_s = 400; /* beyond the default deadline of 300 s */
	expect_reject(&b, "pickupS");
	b.spec.deadline_s = 500;
	CU_ASSERT_EQUAL(ctl_sched_validate(&b.spec, &why), 0);
}

/* rr on its own and as the workload of a handover: the same limits, each under its own field. */
static void test_validate_rr_handover(void)
{
	Fjord__V1__RrParams rr = FJORD__V1__RR_PARAMS__INIT;
	Fjord__V1__BulkParams bulk = FJORD__V1__BULK_PARAMS__INIT;
	Fjord__V1__HandoverParams h = FJORD__V1__HANDOVER_PARAMS__INIT;
	Fjord__V1__LinkEvent ev = FJORD__V1__LINK_EVENT__INIT;
	Fjord__V1__LinkEvent *evp[1] = { &ev };
	struct ctl_reject why;
	struct spec_buf b;

	spec_init(&b, "e");
	set_pair(&b, 0, "A", "B");
	rr.request_bytes = 100;
	rr.response_bytes = 1000;
	rr.rate_per_s = 10;
	rr.duration_s = 5;
	b.spec.type = FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_RR;
	b.spec.params_case = FJORD__V1__EXPERIMENT_SPEC__PARAMS_RR;
	b.spec.rr = &rr;
	CU_ASSERT_EQUAL(ctl_sched_validate(&b.spec, &why), 0);
	rr.response_bytes = 65537;
	expect_reject(&b, "rr.responseBytes");
	rr.response_bytes = 1000;

	b.spec.type = FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_HANDOVER;
	b.spec.params_case = FJORD__V1__EXPERIMENT_SPEC__PARAMS_HANDOVER;
	b.spec.handover = &h;
	expect_reject(&b, "handover.bulk"); /* no workload */
	h.rr = &rr;
	ev.isp = "x";
	ev.action = "down";
	ev.at_ms = 2000;
	h.events = evp;
	h.n_events = 1;
	CU_ASSERT_EQUAL(ctl_sched_validate(&b.spec, &why), 0);
	ev.at_ms = 6000; /* after the 5 s of transactions */
	expect_reject(&b, "handover.events[0].atMs");
	ev.at_ms = 2000;
	rr.rate_per_s = 0;
	expect_reject(&b, "handover.rr.ratePerS");
	rr.rate_per_s = 10;
	bulk.duration_s = 5;
	h.bulk = &bulk;
	expect_reject(&b, "handover.rr"); /* both workloads */
	h.rr = NULL;
	CU_ASSERT_EQUAL(ctl_sched_validate(&b.spec, &why), 0);
	bulk.duration_s = 1;
	expect_reject(&b, "handover.events[0].atMs");
}

/* ---- expansion --------------------------------------------------------------- */

static void test_expand_pair(void)
{
	Fjord__V1__AddressFamily fams[] = { V4, V6 };
	Fjord__V1__Stack st[] = { FJORD__V1__STACK__STACK_BUNDLED, KERNEL };
	char *lisp[] = { "y" };
	Fjord__V1__AgentList *l = two_agents();
	Fjord__V1__Run **runs = NULL;
	struct ctl_reject why;
	struct spec_buf b;
	size_t n;

	spec_init(&b, "e1");
	set_pair(&b, 0, "A", "B");
	/* One multipath run over x->z and y->z, IPv4. */
	n = expand_n(&b, l, 1, &runs, &why);
	CU_ASSERT_EQUAL_FATAL(n, 1);
	CU_ASSERT_STRING_EQUAL(runs[0]->id, "e1.0");
	CU_ASSERT_STRING_EQUAL(runs[0]->experiment_id, "e1");
	CU_ASSERT_STRING_EQUAL(runs[0]->client_agent_id, "A");
	CU_ASSERT_STRING_EQUAL(runs[0]->server_site, "bergen");
	CU_ASSERT_EQUAL(runs[0]->stack, KERNEL);
	CU_ASSERT_EQUAL(runs[0]->state, RS(PENDING));
	CU_ASSERT_EQUAL(runs[0]->due_ms, T0);
	CU_ASSERT_EQUAL(runs[0]->deadline_ms, T0 + 300000);
	CU_ASSERT_EQUAL_FATAL(runs[0]->n_paths, 2);
	CU_ASSERT_STRING_EQUAL(runs[0]->paths[0]->local_isp, "x");
	CU_ASSERT_STRING_EQUAL(runs[0]->paths[1]->local_isp, "y");
	CU_ASSERT_STRING_EQUAL(runs[0]->paths[1]->remote_isp, "z");
	CU_ASSERT_STRING_EQUAL(runs[0]->paths[0]->local_address, "10.0.4.1");
	CU_ASSERT_STRING_EQUAL(runs[0]->paths[0]->remote_address, "10.0.6.1");
	CU_ASSERT_EQUAL(runs[0]->paths[0]->family, V4);
	free_runs(runs, n);

	/* Per path over both families: 2 local x 1 remote x 2 families. */
	{
		b.targets.families = fams;
		b.targets.n_families = 2;
		b.targets.per_path = 1;
		n = expand_n(&b, l, 1, &runs, &why);
		CU_ASSERT_EQUAL_FATAL(n, 4);
		CU_ASSERT_STRING_EQUAL(runs[1]->paths[0]->local_isp, "x");
		CU_ASSERT_EQUAL(runs[1]->paths[0]->family, V6);
		CU_ASSERT_STRING_EQUAL(runs[1]->paths[0]->local_address, "2001:db8:0::1");
		CU_ASSERT_STRING_EQUAL(runs[3]->id, "e1.3");
		free_runs(runs, n);
		/* Limited to local ISP y. */
		b.targets.local_isps = lisp;
		b.targets.n_local_isps = 1;
		n = expand_n(&b, l, 1, &runs, &why);
		CU_ASSERT_EQUAL(n, 2);
		free_runs(runs, n);
		/* An ISP no agent has is refused. */
		lisp[0] = "nope";
		CU_ASSERT_EQUAL(ctl_sched_expand(&b.exp, l, T0, 1, &runs, &n, &why), -EINVAL);
		CU_ASSERT_STRING_EQUAL(why.field, "targets.localIsps[0]");
		b.targets.n_local_isps = 0;
	}
	/* Stacks multiply: 2 stacks x 4 paths. */
	{
		b.stack.stacks = st;
		b.stack.n_stacks = 2;
		b.spec.stack = &b.stack;
		n = expand_n(&b, l, 1, &runs, &why);
		CU_ASSERT_EQUAL(n, 8);
		CU_ASSERT_EQUAL(runs[0]->stack, FJORD__V1__STACK__STACK_BUNDLED);
		CU_ASSERT_EQUAL(runs[4]->stack, KERNEL);
		free_runs(runs, n);
	}
	/* Unknown agent, no path of the family. */
	set_pair(&b, 0, "A", "ghost");
	CU_ASSERT_EQUAL(ctl_sched_expand(&b.exp, l, T0, 1, &runs, &n, &why), -EINVAL);
	CU_ASSERT_STRING_EQUAL(why.field, "targets.pairs[0].serverAgentId");
	fjord__v1__agent_list__free_unpacked(l, NULL);
	{
		static const char *const ia[] = { "x", NULL };
		Fjord__V1__AddressFamily v6only[] = { V6 };

		l = mk_list();
		l->agents[l->n_agents++] = mk_agent("A", "oslo", 1, 5, 0, ia);
		l->agents[l->n_agents++] = mk_agent("B", "bergen", 1, 5, 0, ia);
		spec_init(&b, "e2");
		set_pair(&b, 0, "A", "B");
		b.targets.families = v6only;
		b.targets.n_families = 1;
		CU_ASSERT_EQUAL(ctl_sched_expand(&b.exp, l, T0, 1, &runs, &n, &why), -EINVAL);
		CU_ASSERT_STRING_EQUAL(why.field, "targets");
		CU_ASSERT(strstr(why.message, "no path") != NULL);
		fjord__v1__agent_list__free_unpacked(l, NULL);
	}
}

static void test_expand_sites(void)
{
	static const char *const ix[] = { "x", NULL };
	Fjord__V1__AgentList *l = mk_list();
	Fjord__V1__Run **runs = NULL;
	struct ctl_reject why;
	struct spec_buf b;
	char *sites[] = { "oslo", "tromso" };
	size_t n, i;

	/* oslo has two agents: the online one is chosen over the fresher
	 * offline one. */
	l->agents[l->n_agents++] = mk_agent("O1", "oslo", 0, 900, 1, ix);
	l->agents[l->n_agents++] = mk_agent("O2", "oslo", 1, 100, 1, ix);
	l->agents[l->n_agents++] = mk_agent("B1", "bergen", 0, 5, 1, ix);
	l->agents[l->n_agents++] = mk_agent("T1", "tromso", 1, 5, 1, ix);
	spec_init(&b, "s");
	b.targets.all_site_pairs = 1;
	n = expand_n(&b, l, 1, &runs, &why);
	CU_ASSERT_EQUAL_FATAL(n, 6);
	/* Ordered by site name: bergen, oslo, tromso. */
	CU_ASSERT_STRING_EQUAL(runs[0]->client_site, "bergen");
	CU_ASSERT_STRING_EQUAL(runs[0]->server_site, "oslo");
	CU_ASSERT_STRING_EQUAL(runs[0]->server_agent_id, "O2");
	CU_ASSERT_STRING_EQUAL(runs[5]->client_site, "tromso");
	CU_ASSERT_STRING_EQUAL(runs[5]->server_site, "oslo");
	for (i = 0; i < n; i++) {
		CU_ASSERT_STRING_NOT_EQUAL(runs[i]->client_agent_id, "O1");
		CU_ASSERT_STRING_NOT_EQUAL(runs[i]->client_site, runs[i]->server_site);
	}
	free_runs(runs, n);
	b.targets.sites = sites;
	b.targets.n_sites = 2;
	n = expand_n(&b, l, 1, &runs, &why);
	CU_ASSERT_EQUAL_FATAL(n, 2);
	CU_ASSERT_STRING_EQUAL(runs[0]->client_agent_id, "O2");
	CU_ASSERT_STRING_EQUAL(runs[0]->server_agent_id, "T1");
	CU_ASSERT_STRING_EQUAL(runs[1]->client_agent_id, "T1");
	free_runs(runs, n);
	sites[1] = "narvik";
	CU_ASSERT_EQUAL(ctl_sched_expand(&b.exp, l, T0, 1, &runs, &n, &why), -EINVAL);
	CU_ASSERT_STRING_EQUAL(why.field, "targets.sites[1]");
	/* One site makes no pair. */
	b.targets.n_sites = 1;
	CU_ASSERT_EQUAL(ctl_sched_expand(&b.exp, l, T0, 1, &runs, &n, &why), -EINVAL);
	CU_ASSERT_STRING_EQUAL(why.field, "targets.allSitePairs");
	fjord__v1__agent_list__free_unpacked(l, NULL);
}

static void test_expand_schedule(void)
{
	Fjord__V1__AgentList *l = two_agents();
	Fjord__V1__Run **runs = NULL, **again = NULL;
	struct ctl_reject why;
	struct spec_buf b;
	size_t n, i, differ = 0;

	spec_init(&b, "p");
	set_pair(&b, 0, "A", "B");
	b.targets.per_path = 1; /* 2 runs per occurrence */
	b.sched.interval_s = 60;
	b.sched.count = 5;
	b.spec.deadline_s = 50;
	b.spec.pickup_s = 30;
	n = expand_n(&b, l, 1, &runs, &why);
	CU_ASSERT_EQUAL_FATAL(n, 10);
	for (i = 0; i < n; i++) {
		CU_ASSERT_EQUAL(runs[i]->sequence, i / 2);
		CU_ASSERT_EQUAL(runs[i]->due_ms, T0 + (int64_t)(i / 2) * 60000);
		CU_ASSERT_EQUAL(runs[i]->deadline_ms, runs[i]->due_ms + 50000);
	}
	free_runs(runs, n);

	/* By end time: starts at T0, T0+60 s, T0+120 s; not T0+180 s. */
	b.sched.count = 0;
	b.sched.end_ms = T0 + 179999;
	n = expand_n(&b, l, 1, &runs, &why);
	CU_ASSERT_EQUAL_FATAL(n, 6);
	CU_ASSERT_EQUAL(runs[5]->due_ms, T0 + 120000);
	free_runs(runs, n);
	/* Count and end time: whichever comes first. */
	b.sched.count = 2;
	n = expand_n(&b, l, 1, &runs, &why);
	CU_ASSERT_EQUAL(n, 4);
	free_runs(runs, n);

	/* Start 0 = now; one-off. */
	b.sched.interval_s = 0;
	b.sched.count = 0;
	b.sched.end_ms = 0;
	b.sched.start_ms = 0;
	n = expand_n(&b, l, 1, &runs, &why);
	CU_ASSERT_EQUAL_FATAL(n, 2);
	CU_ASSERT_EQUAL(runs[0]->due_ms, T0 - 1000);
	free_runs(runs, n);
	/* No schedule at all is the same. */
	b.spec.schedule = NULL;
	n = expand_n(&b, l, 1, &runs, &why);
	CU_ASSERT_EQUAL(n, 2);
	free_runs(runs, n);

	/* Jitter: within [0, jitter], the same for the same seed. */
	b.spec.schedule = &b.sched;
	b.sched.start_ms = T0;
	b.sched.interval_s = 60;
	b.sched.count = 20;
	b.sched.jitter_s = 10;
	n = expand_n(&b, l, 42, &runs, &why);
	CU_ASSERT_EQUAL_FATAL(n, 40);
	CU_ASSERT_EQUAL_FATAL(expand_n(&b, l, 42, &again, &why), 40);
	for (i = 0; i < n; i++) {
		int64_t base = T0 + (int64_t)(i / 2) * 60000;

		CU_ASSERT(runs[i]->due_ms >= base && runs[i]->due_ms <= base + 10000);
		CU_ASSERT_EQUAL(runs[i]->due_ms, again[i]->due_ms);
		differ += runs[i]->due_ms != base;
	}
	CU_ASSERT(differ > 30); /* jitter is really applied */
	free_runs(again, n);
	CU_ASSERT_EQUAL_FATAL(expand_n(&b, l, 43, &again, &why), 40);
	for (i = 0, differ = 0; i < n; i++)
		differ += runs[i]->due_ms != again[i]->due_ms;
	CU_ASSERT(differ > 30); /* another seed, other draws */
	free_runs(again, n);
	free_runs(runs, n);

	/* Occurrences already past their pickup are left out; sequences keep
	 * their place in the schedule. Now is T0 - 1 s, pickup 30 s. */
	b.sched.start_ms = T0 - 1000 - 140000; /* T0-141 s, -81 s, -21 s, +39 s, +99 s */
	b.sched.count = 5;
	b.sched.jitter_s = 0;
	n = expand_n(&b, l, 1, &runs, &why);
	CU_ASSERT_EQUAL_FATAL(n, 6); /* 3 occurrences x 2 paths */
	CU_ASSERT_EQUAL(runs[0]->sequence, 2);
	CU_ASSERT_EQUAL(runs[0]->due_ms, T0 - 21000);
	CU_ASSERT_EQUAL(runs[5]->sequence, 4);
	free_runs(runs, n);
	b.sched.count = 2;
	CU_ASSERT_EQUAL(ctl_sched_expand(&b.exp, l, T0 - 1000, 1, &runs, &n, &why), -EINVAL);
	CU_ASSERT_STRING_EQUAL(why.field, "schedule.startMs");

	/* Too many runs. */
	b.sched.start_ms = T0;
	b.sched.count = 60000;
	b.sched.jitter_s = 0;
	CU_ASSERT_EQUAL(ctl_sched_expand(&b.exp, l, T0, 1, &runs, &n, &why), -EINVAL);
	CU_ASSERT_STRING_EQUAL(why.field, "schedule");
	fjord__v1__agent_list__free_unpacked(l, NULL);
}

static void test_expand_baseline(void)
{
	Fjord__V1__AgentList *l = two_agents();
	Fjord__V1__BulkParams bulk = FJORD__V1__BULK_PARAMS__INIT;
	Fjord__V1__Stack st[] = { FJORD__V1__STACK__STACK_BUNDLED };
	Fjord__V1__Run **runs = NULL;
	struct ctl_reject why;
	struct spec_buf b;
	size_t n;

	spec_init(&b, "bk");
	set_pair(&b, 0, "A", "B");
	b.spec.type = FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_BULK;
	b.spec.params_case = FJORD__V1__EXPERIMENT_SPEC__PARAMS_BULK;
	b.spec.bulk = &bulk;
	bulk.bytes = 1000000;
	bulk.baseline = 1;
	b.stack.stacks = st;
	b.stack.n_stacks = 1;
	b.spec.stack = &b.stack;
	/* One bundled multipath run, then a TCP run on each of the 2 paths. */
	n = expand_n(&b, l, 1, &runs, &why);
	CU_ASSERT_EQUAL_FATAL(n, 3);
	CU_ASSERT_EQUAL(runs[0]->stack, FJORD__V1__STACK__STACK_BUNDLED);
	CU_ASSERT_EQUAL(runs[0]->n_paths, 2);
	CU_ASSERT_EQUAL(runs[1]->stack, FJORD__V1__STACK__STACK_TCP);
	CU_ASSERT_EQUAL(runs[1]->n_paths, 1);
	CU_ASSERT_STRING_EQUAL(runs[2]->paths[0]->local_isp, "y");
	free_runs(runs, n);
	fjord__v1__agent_list__free_unpacked(l, NULL);
}

/* ---- dispatch -------------------------------------------------------------------- */

static char tdir[256], dbpath[300];
static int n_notified;

static void on_notify(void *arg, const char *agent_id)
{
	(void)arg;
	(void)agent_id;
	n_notified++;
}

static void tmp_setup(void)
{
	const char *base = getenv("TMPDIR");

	snprintf(tdir, sizeof(tdir), "%s/fjord-sched-XXXXXX", base && *base ? base : "/tmp");
	CU_ASSERT_FATAL(mkdtemp(tdir) != NULL);
	snprintf(dbpath, sizeof(dbpath), "%s/ctl.db", tdir);
}

static void tmp_cleanup(void)
{
	static const char *const sfx[] = { "", "-wal", "-shm" };
	char p[320];
	size_t i;

	for (i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s%s", dbpath, sfx[i]);
		unlink(p);
	}
	rmdir(tdir);
}

/* Agents with one ISP each: id[i] on site sites[i] with ISP isps[i]. */
struct world {
	struct ctl_store *st;
	struct ctl_sched *s;
	char *id[4];
	Fjord__V1__AgentList *agents;
};

static void world_open(struct world *w)
{
	static const char *const sites[] = { "sa", "sb", "sc", "sd" };
	static const char *const isps[] = { "x", "z", "w", "v" };
	size_t i;

	memset(w, 0, sizeof(*w));
	n_notified = 0;
	tmp_setup();
	CU_ASSERT_FATAL(ctl_store_open(dbpath, &w->st) == 0);
	for (i = 0; i < 4; i++) {
		Fjord__V1__EnrollRequest req = FJORD__V1__ENROLL_REQUEST__INIT;
		Fjord__V1__Interface ifc = FJORD__V1__INTERFACE__INIT, *ifp = &ifc;
		char hash[65], addr[32], *ap = addr;

		memset(hash, 'a' + (int)i, 64);
		hash[64] = 0;
		snprintf(addr, sizeof(addr), "10.0.%zu.2/24", i);
		ifc.name = "eth0";
		ifc.isp = (char *)isps[i];
		ifc.addresses = &ap;
		ifc.n_addresses = 1;
		req.site = (char *)sites[i];
		req.node = "n";
		req.interfaces = &ifp;
		req.n_interfaces = 1;
		CU_ASSERT_FATAL(ctl_store_agent_enroll(w->st, &req, hash, 1, &w->id[i]) == 0);
	}
	CU_ASSERT_FATAL(ctl_store_agent_list(w->st, &w->agents) == 0);
	CU_ASSERT_FATAL(ctl_sched_create(w->st, &w->s) == 0);
	ctl_sched_set_notify(w->s, on_notify, NULL);
}

static void world_close(struct world *w)
{
	size_t i;

	ctl_sched_destroy(w->s);
	ctl_store_close(w->st);
	fjord__v1__agent_list__free_unpacked(w->agents, NULL);
	for (i = 0; i < 4; i++)
		free(w->id[i]);
	tmp_cleanup();
}

/* Creates experiment exp_id: client c -> server s, due at due (one-off, or
 * count runs every interval_s). */
static void world_exp(struct world *w, const char *exp_id, int c, int s, int64_t due,
		      uint32_t count, uint32_t interval_s, int share, uint32_t pickup_s,
		      uint32_t deadline_s)
{
	Fjord__V1__Run **runs = NULL;
	struct ctl_reject why;
	struct spec_buf b;
	size_t n = 0;

	spec_init(&b, exp_id);
	set_pair(&b, 0, w->id[c], w->id[s]);
	b.sched.start_ms = due;
	b.sched.count = count;
	b.sched.interval_s = interval_s;
	b.spec.share_links = share;
	b.spec.pickup_s = pickup_s;
	b.spec.deadline_s = deadline_s;
	CU_ASSERT_EQUAL_FATAL(ctl_sched_expand(&b.exp, w->agents, T0 - 5000, 7, &runs, &n, &why),
			      0);
	CU_ASSERT_EQUAL_FATAL(ctl_store_experiment_create(w->st, &b.exp, runs, n), 0);
	free_runs(runs, n);
}

static int run_state(struct world *w, const char *id)
{
	Fjord__V1__Run *r = NULL;
	int s;

	if (ctl_store_run_get(w->st, id, &r))
		return -1;
	s = r->state;
	fjord__v1__run__free_unpacked(r, NULL);
	return s;
}

static char *run_reason(struct world *w, const char *id)
{
	Fjord__V1__Run *r = NULL;
	char *s;

	if (ctl_store_run_get(w->st, id, &r))
		return xdup("");
	s = xdup(r->reason);
	fjord__v1__run__free_unpacked(r, NULL);
	return s;
}

/* Takes the commands of agent i; returns how many run commands (and the
 * first run id into first, when given). */
static size_t take(struct world *w, int i, int64_t now, char *first, size_t n_cancel_expect)
{
	Fjord__V1__PollResponse *resp = NULL;
	size_t k, runs = 0, cancels = 0;

	CU_ASSERT_EQUAL_FATAL(ctl_sched_take_commands(w->s, w->id[i], now, &resp), 0);
	for (k = 0; k < resp->n_commands; k++) {
		Fjord__V1__Command *c = resp->commands[k];

		if (c->kind_case == FJORD__V1__COMMAND__KIND_RUN) {
			CU_ASSERT_PTR_NOT_NULL(c->run->spec);
			CU_ASSERT_PTR_NOT_NULL(c->run->peer);
			CU_ASSERT_EQUAL(c->run->run->state, RS(DISPATCHED));
			CU_ASSERT_STRING_EQUAL(c->run->peer->id, c->run->run->server_agent_id);
			if (first && !runs)
				snprintf(first, 64, "%s", c->run->run->id);
			runs++;
		} else {
			CU_ASSERT_EQUAL(c->kind_case, FJORD__V1__COMMAND__KIND_CANCEL);
			if (first && !runs && !cancels)
				snprintf(first, 64, "%s", c->cancel->run_id);
			cancels++;
		}
	}
	CU_ASSERT_EQUAL(cancels, n_cancel_expect);
	fjord__v1__poll_response__free_unpacked(resp, NULL);
	return runs;
}

static void finish(struct world *w, const char *run_id, const char *agent)
{
	Fjord__V1__Result res = FJORD__V1__RESULT__INIT;
	int dup_ = 0;

	res.run_id = (char *)run_id;
	res.ok = 1;
	CU_ASSERT_EQUAL(ctl_store_result_put(w->st, &res, agent, T0, &dup_), 0);
	ctl_sched_run_finished(w->s, run_id);
}

static void test_dispatch_basic(void)
{
	Fjord__V1__PollRequest poll = FJORD__V1__POLL_REQUEST__INIT;
	struct world w;
	char id[64] = "";
	char *running[1];
	int64_t next;

	world_open(&w);
	world_exp(&w, "d", 0, 1, T0, 0, 0, 0, 0, 0);
	/* Not due yet: nothing, and the next tick is due when the run is. */
	next = ctl_sched_tick(w.s, T0 - 300);
	CU_ASSERT_EQUAL(next, 300);
	CU_ASSERT_FALSE(ctl_sched_has_commands(w.s, w.id[0]));
	CU_ASSERT_EQUAL(take(&w, 0, T0 - 300, NULL, 0), 0);
	CU_ASSERT_EQUAL(n_notified, 0);
	/* Due: ready for the client, which is told. */
	CU_ASSERT(ctl_sched_tick(w.s, T0) > 0);
	CU_ASSERT_EQUAL(n_notified, 1);
	CU_ASSERT_TRUE(ctl_sched_has_commands(w.s, w.id[0]));
	CU_ASSERT_FALSE(ctl_sched_has_commands(w.s, w.id[1]));
	CU_ASSERT_EQUAL(take(&w, 1, T0, NULL, 0), 0);
	/* A second tick does not make it ready twice. */
	CU_ASSERT(ctl_sched_tick(w.s, T0 + 10) > 0);
	CU_ASSERT_EQUAL(n_notified, 1);
	CU_ASSERT_EQUAL(take(&w, 0, T0 + 20, id, 0), 1);
	CU_ASSERT_STRING_EQUAL(id, "d.0");
	CU_ASSERT_EQUAL(run_state(&w, "d.0"), RS(DISPATCHED));
	CU_ASSERT_FALSE(ctl_sched_has_commands(w.s, w.id[0]));
	/* The agent reports it running. */
	running[0] = id;
	poll.running_run_ids = running;
	poll.n_running_run_ids = 1;
	CU_ASSERT_EQUAL(ctl_sched_agent_report(w.s, w.id[0], &poll, T0 + 1000), 0);
	CU_ASSERT_EQUAL(run_state(&w, "d.0"), RS(RUNNING));
	finish(&w, "d.0", w.id[0]);
	CU_ASSERT_EQUAL(run_state(&w, "d.0"), RS(SUCCEEDED));
	/* Bad arguments. */
	CU_ASSERT_EQUAL(ctl_sched_tick(NULL, T0), -EINVAL);
	CU_ASSERT_EQUAL(ctl_sched_take_commands(w.s, NULL, T0, NULL), -EINVAL);
	world_close(&w);
}

static void test_link_order(void)
{
	struct world w;
	char id[64];

	/* agents 0..3 have ISPs x, z, w, v. r1: 0->3 (links 0|x 3|v) due T0;
	 * r2: 0->1 (0|x 1|z) due T0+1; r3: 2->1 (2|w 1|z) due T0+2. */
	world_open(&w);
	world_exp(&w, "r1", 0, 3, T0, 0, 0, 0, 0, 0);
	world_exp(&w, "r2", 0, 1, T0 + 1, 0, 0, 0, 0, 0);
	world_exp(&w, "r3", 2, 1, T0 + 2, 0, 0, 0, 0, 0);
	CU_ASSERT(ctl_sched_tick(w.s, T0 + 10) > 0);
	/* r1 got its links; r2 waits for 0|x and holds its claim on 1|z, so
	 * r3, though its own links are free, may not overtake it. */
	CU_ASSERT_EQUAL(run_state(&w, "r2.0"), RS(WAITING_LINKS));
	CU_ASSERT_EQUAL(run_state(&w, "r3.0"), RS(WAITING_LINKS));
	CU_ASSERT_FALSE(ctl_sched_has_commands(w.s, w.id[2]));
	CU_ASSERT_EQUAL(take(&w, 0, T0 + 20, id, 0), 1);
	CU_ASSERT_STRING_EQUAL(id, "r1.0");
	/* Still busy while r1 runs, even once its server sent its result. */
	finish(&w, "r1.0", w.id[3]);
	CU_ASSERT_EQUAL(run_state(&w, "r1.0"), RS(DISPATCHED));
	CU_ASSERT(ctl_sched_tick(w.s, T0 + 30) > 0);
	CU_ASSERT_FALSE(ctl_sched_has_commands(w.s, w.id[0]));
	CU_ASSERT_EQUAL(run_state(&w, "r2.0"), RS(WAITING_LINKS));
	finish(&w, "r1.0", w.id[0]);
	CU_ASSERT(ctl_sched_tick(w.s, T0 + 40) > 0);
	CU_ASSERT_TRUE(ctl_sched_has_commands(w.s, w.id[0]));
	CU_ASSERT_FALSE(ctl_sched_has_commands(w.s, w.id[2])); /* 1|z now r2's */
	CU_ASSERT_EQUAL(take(&w, 0, T0 + 50, id, 0), 1);
	CU_ASSERT_STRING_EQUAL(id, "r2.0");
	finish(&w, "r2.0", w.id[0]);
	CU_ASSERT(ctl_sched_tick(w.s, T0 + 60) > 0);
	CU_ASSERT_EQUAL(take(&w, 2, T0 + 70, id, 0), 1);
	CU_ASSERT_STRING_EQUAL(id, "r3.0");
	CU_ASSERT_EQUAL(run_state(&w, "r3.0"), RS(DISPATCHED));

	/* A sharing experiment runs on busy links at once. */
	world_exp(&w, "sh", 2, 1, T0 + 100, 0, 0, 1, 0, 0);
	CU_ASSERT(ctl_sched_tick(w.s, T0 + 100) > 0);
	CU_ASSERT_EQUAL(take(&w, 2, T0 + 110, id, 0), 1);
	CU_ASSERT_STRING_EQUAL(id, "sh.0");
	world_close(&w);
}

static void test_missed_and_deadline(void)
{
	Fjord__V1__PollRequest poll = FJORD__V1__POLL_REQUEST__INIT;
	struct world w;
	char id[64], *why, *running[1];

	world_open(&w);
	/* m: never picked up (pickup 10 s). dl: deadline 20 s. */
	world_exp(&w, "m", 0, 1, T0, 0, 0, 0, 10, 0);
	world_exp(&w, "dl", 2, 3, T0, 0, 0, 0, 10, 20);
	CU_ASSERT(ctl_sched_tick(w.s, T0) > 0);
	CU_ASSERT_TRUE(ctl_sched_has_commands(w.s, w.id[0]));
	CU_ASSERT_EQUAL(take(&w, 2, T0 + 5, id, 0), 1);
	CU_ASSERT(ctl_sched_tick(w.s, T0 + 9999) > 0);
	CU_ASSERT_EQUAL(run_state(&w, "m.0"), RS(PENDING));
	CU_ASSERT(ctl_sched_tick(w.s, T0 + 10000) > 0);
	CU_ASSERT_EQUAL(run_state(&w, "m.0"), RS(MISSED));
	why = run_reason(&w, "m.0");
	CU_ASSERT(strstr(why, "not picked up within 10 s") != NULL);
	free(why);
	CU_ASSERT_FALSE(ctl_sched_has_commands(w.s, w.id[0]));
	/* The next tick comes no later than the deadline. */
	CU_ASSERT(ctl_sched_tick(w.s, T0 + 19500) <= 500);
	CU_ASSERT_EQUAL(run_state(&w, "dl.0"), RS(DISPATCHED));
	CU_ASSERT(ctl_sched_tick(w.s, T0 + 20000) > 0);
	CU_ASSERT_EQUAL(run_state(&w, "dl.0"), RS(FAILED));
	why = run_reason(&w, "dl.0");
	CU_ASSERT_STRING_EQUAL(why, "deadline passed");
	free(why);
	/* Its agent is told to stop it. */
	CU_ASSERT_TRUE(ctl_sched_has_commands(w.s, w.id[2]));
	CU_ASSERT_EQUAL(take(&w, 2, T0 + 20001, id, 1), 0);
	CU_ASSERT_STRING_EQUAL(id, "dl.0");

	/* A waiting run whose links stay busy past pickup is missed too, and
	 * a late result does not revive a failed run. */
	world_exp(&w, "hog", 0, 1, T0 + 30000, 0, 0, 0, 0, 0);
	world_exp(&w, "late", 0, 1, T0 + 30001, 0, 0, 0, 5, 0);
	CU_ASSERT(ctl_sched_tick(w.s, T0 + 30001) > 0);
	CU_ASSERT_EQUAL(take(&w, 0, T0 + 30002, id, 0), 1);
	CU_ASSERT_EQUAL(run_state(&w, "late.0"), RS(WAITING_LINKS));
	CU_ASSERT(ctl_sched_tick(w.s, T0 + 35001) > 0);
	CU_ASSERT_EQUAL(run_state(&w, "late.0"), RS(MISSED));
	why = run_reason(&w, "late.0");
	CU_ASSERT(strstr(why, "links stayed busy") != NULL);
	free(why);
	finish(&w, "dl.0", w.id[2]);
	CU_ASSERT_EQUAL(run_state(&w, "dl.0"), RS(FAILED));

	/*
	 * Never listed past the grace: the command may not have arrived (the
	 * controller died before its answer left). Back to PENDING, dispatched
	 * again at the next tick.
	 */
	CU_ASSERT_EQUAL(ctl_sched_agent_report(w.s, w.id[0], &poll, T0 + 40000), 0);
	CU_ASSERT_EQUAL(run_state(&w, "hog.0"), RS(DISPATCHED));
	CU_ASSERT_EQUAL(ctl_sched_agent_report(w.s, w.id[0], &poll, T0 + 30002 + 30001), 0);
	CU_ASSERT_EQUAL(run_state(&w, "hog.0"), RS(PENDING));
	CU_ASSERT(ctl_sched_tick(w.s, T0 + 60004) > 0);
	CU_ASSERT_EQUAL(take(&w, 0, T0 + 60005, id, 0), 1);
	CU_ASSERT_STRING_EQUAL(id, "hog.0");
	CU_ASSERT_EQUAL(run_state(&w, "hog.0"), RS(DISPATCHED));
	/* Lost: listed (running), then no longer listed past the grace. */
	running[0] = id;
	poll.running_run_ids = running;
	poll.n_running_run_ids = 1;
	CU_ASSERT_EQUAL(ctl_sched_agent_report(w.s, w.id[0], &poll, T0 + 61000), 0);
	CU_ASSERT_EQUAL(run_state(&w, "hog.0"), RS(RUNNING));
	poll.n_running_run_ids = 0;
	CU_ASSERT_EQUAL(ctl_sched_agent_report(w.s, w.id[0], &poll, T0 + 80000), 0);
	CU_ASSERT_EQUAL(run_state(&w, "hog.0"), RS(RUNNING));
	CU_ASSERT_EQUAL(ctl_sched_agent_report(w.s, w.id[0], &poll, T0 + 60005 + 30001), 0);
	CU_ASSERT_EQUAL(run_state(&w, "hog.0"), RS(FAILED));
	why = run_reason(&w, "hog.0");
	CU_ASSERT_STRING_EQUAL(why, "agent lost the run");
	free(why);
	world_close(&w);
}

static void test_cancel(void)
{
	struct world w;
	char id[64];
	size_t n = 0;
	int notified;

	world_open(&w);
	/* c: 3 runs 10 s apart. c.0 dispatched, c.1 ready, c.2 pending. */
	world_exp(&w, "c", 0, 1, T0, 3, 10, 1, 0, 0);
	CU_ASSERT(ctl_sched_tick(w.s, T0) > 0);
	CU_ASSERT_EQUAL(take(&w, 0, T0 + 1, id, 0), 1);
	CU_ASSERT(ctl_sched_tick(w.s, T0 + 10000) > 0);
	CU_ASSERT_TRUE(ctl_sched_has_commands(w.s, w.id[0]));
	notified = n_notified;
	CU_ASSERT_EQUAL(ctl_sched_cancel(w.s, "c", "operator", T0 + 10001, &n), 0);
	CU_ASSERT_EQUAL(n, 3);
	CU_ASSERT(n_notified > notified);
	CU_ASSERT_EQUAL(run_state(&w, "c.0"), RS(CANCELLED));
	CU_ASSERT_EQUAL(run_state(&w, "c.1"), RS(CANCELLED));
	CU_ASSERT_EQUAL(run_state(&w, "c.2"), RS(CANCELLED));
	/* The agent holding c.0 is told; c.1 is never handed out. */
	CU_ASSERT_TRUE(ctl_sched_has_commands(w.s, w.id[0]));
	CU_ASSERT_EQUAL(take(&w, 0, T0 + 10002, id, 1), 0);
	CU_ASSERT_STRING_EQUAL(id, "c.0");
	CU_ASSERT_FALSE(ctl_sched_has_commands(w.s, w.id[0]));
	CU_ASSERT(ctl_sched_tick(w.s, T0 + 20000) > 0);
	CU_ASSERT_FALSE(ctl_sched_has_commands(w.s, w.id[0]));
	CU_ASSERT_EQUAL(ctl_sched_cancel(w.s, "nope", NULL, T0, &n), -ENOENT);

	/* A restart loses queued cancels: an agent that still lists a run
	 * that ended is told again; an unknown id is ignored. */
	{
		Fjord__V1__PollRequest poll = FJORD__V1__POLL_REQUEST__INIT;
		char *ids[] = { "c.0", "no-such-run" };

		ctl_sched_destroy(w.s);
		CU_ASSERT_EQUAL_FATAL(ctl_sched_create(w.st, &w.s), 0);
		poll.running_run_ids = ids;
		poll.n_running_run_ids = 2;
		CU_ASSERT_EQUAL(ctl_sched_agent_report(w.s, w.id[0], &poll, T0 + 30000), 0);
		CU_ASSERT_EQUAL(take(&w, 0, T0 + 30001, id, 1), 0);
		CU_ASSERT_STRING_EQUAL(id, "c.0");
		/* Not reported to an agent that is not its client. */
		CU_ASSERT_EQUAL(ctl_sched_agent_report(w.s, w.id[1], &poll, T0 + 30002), 0);
		CU_ASSERT_FALSE(ctl_sched_has_commands(w.s, w.id[1]));
	}
	world_close(&w);
}

static void test_rebuild(void)
{
	struct world w;
	char id[64];

	/* A restart keeps dispatched runs' links reserved. */
	world_open(&w);
	world_exp(&w, "a", 0, 1, T0, 0, 0, 0, 0, 0);
	world_exp(&w, "b", 0, 3, T0 + 5000, 0, 0, 0, 0, 0);
	CU_ASSERT(ctl_sched_tick(w.s, T0) > 0);
	CU_ASSERT_EQUAL(take(&w, 0, T0, id, 0), 1);
	ctl_sched_destroy(w.s);
	CU_ASSERT_EQUAL_FATAL(ctl_sched_create(w.st, &w.s), 0);
	CU_ASSERT(ctl_sched_tick(w.s, T0 + 5000) > 0);
	CU_ASSERT_EQUAL(run_state(&w, "b.0"), RS(WAITING_LINKS));
	/* ...and still fails them at their deadline. */
	CU_ASSERT(ctl_sched_tick(w.s, T0 + 300000) > 0);
	CU_ASSERT_EQUAL(run_state(&w, "a.0"), RS(FAILED));
	world_close(&w);
}

static const struct fj_test tests[] = {
	{ "validate", test_validate },
	{ "validate_rr_handover", test_validate_rr_handover },
	{ "expand_pair", test_expand_pair },
	{ "expand_sites", test_expand_sites },
	{ "expand_schedule", test_expand_schedule },
	{ "expand_baseline", test_expand_baseline },
	{ "dispatch_basic", test_dispatch_basic },
	{ "link_order", test_link_order },
	{ "missed_and_deadline", test_missed_and_deadline },
	{ "cancel", test_cancel },
	{ "rebuild", test_rebuild },
	{ NULL, NULL },
};

const struct fj_suite fj_suite_sched = { "sched", NULL, NULL, tests };
