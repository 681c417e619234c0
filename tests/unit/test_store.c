/*
 * Suite "store": the SQLite store behind controller/ctl_store.h. Every test
 * works on a fresh database in its own temporary directory, removed at the
 * end.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctl_store.h"
#include "fj_test.h"
#include "store_sqlite.h"

#define RS(x) FJORD__V1__RUN_STATE__RUN_STATE_##x

static char tdir[256];
static char dbpath[300];

static void tmp_setup(void)
{
	const char *base = getenv("TMPDIR");

	snprintf(tdir, sizeof(tdir), "%s/fjord-store-XXXXXX", base && *base ? base : "/tmp");
	CU_ASSERT_FATAL(mkdtemp(tdir) != NULL);
	snprintf(dbpath, sizeof(dbpath), "%s/ctl.db", tdir);
}

static void tmp_cleanup(void)
{
	static const char *const sfx[] = { "", "-wal", "-shm", "-journal" };
	char p[320];
	size_t i;

	for (i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
		snprintf(p, sizeof(p), "%s%s", dbpath, sfx[i]);
		unlink(p);
	}
	rmdir(tdir);
}

static const char H1[] = "1111111111111111111111111111111111111111111111111111111111111111";
static const char H2[] = "2222222222222222222222222222222222222222222222222222222222222222";
static const char H3[] = "3333333333333333333333333333333333333333333333333333333333333333";

/* Enrolls an agent on site with one interface per ISP in isps (NULL ends). */
static char *enroll(struct ctl_store *st, const char *site, const char *node, const char *hash,
		    const char *const *isps)
{
	Fjord__V1__EnrollRequest req = FJORD__V1__ENROLL_REQUEST__INIT;
	Fjord__V1__Interface ifs[4], *ifp[4];
	char names[4][16], addrs[4][2][48];
	char *addr_p[4][2];
	char *id = NULL;
	size_t n = 0;

	for (; isps && isps[n] && n < 4; n++) {
		fjord__v1__interface__init(&ifs[n]);
		snprintf(names[n], sizeof(names[n]), "eth%zu", n);
		snprintf(addrs[n][0], sizeof(addrs[n][0]), "10.%zu.%zu.2/24", n, strlen(site));
		snprintf(addrs[n][1], sizeof(addrs[n][1]), "2001:db8:%zu::2/64", n);
		addr_p[n][0] = addrs[n][0];
		addr_p[n][1] = addrs[n][1];
		ifs[n].name = names[n];
		ifs[n].isp = (char *)isps[n];
		ifs[n].addresses = addr_p[n];
		ifs[n].n_addresses = 2;
		ifs[n].up = 1;
		ifp[n] = &ifs[n];
	}
	req.site = (char *)site;
	req.node = (char *)node;
	req.interfaces = ifp;
	req.n_interfaces = n;
	req.version = "1.0";
	CU_ASSERT_EQUAL(ctl_store_agent_enroll(st, &req, hash, 1000, &id), 0);
	return id;
}

/* A spec and an experiment with n runs between agents a and b, due at
 * base + i * 1000, alternating stacks kernel/bundled and ISPs x/y. */
static void make_experiment(struct ctl_store *st, const char *exp_id, const char *a, const char *b,
			    size_t n, int64_t base)
{
	Fjord__V1__ExperimentSpec spec = FJORD__V1__EXPERIMENT_SPEC__INIT;
	Fjord__V1__Experiment exp = FJORD__V1__EXPERIMENT__INIT;
	Fjord__V1__Run *runs = calloc(n + 1, sizeof(*runs)), **rp = calloc(n + 1, sizeof(*rp));
	Fjord__V1__Path *paths = calloc(n + 1, sizeof(*paths)), **pp = calloc(n + 1, sizeof(*pp));
	char(*ids)[64] = calloc(n + 1, sizeof(*ids));
	size_t i;

	CU_ASSERT_FATAL(runs && rp && paths && pp && ids);
	spec.name = "t";
	spec.type = FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_ECHO;
	exp.id = (char *)exp_id;
	exp.spec = &spec;
	exp.owner = "alice";
	exp.created_ms = base;
	for (i = 0; i < n; i++) {
		fjord__v1__run__init(&runs[i]);
		fjord__v1__path__init(&paths[i]);
		snprintf(ids[i], sizeof(ids[i]), "%s.r%zu", exp_id, i);
		paths[i].local_isp = i % 2 ? "y" : "x";
		paths[i].remote_isp = "z";
		paths[i].family = i % 3 == 2 ? FJORD__V1__ADDRESS_FAMILY__ADDRESS_FAMILY_IPV6
					     : FJORD__V1__ADDRESS_FAMILY__ADDRESS_FAMILY_IPV4;
		pp[i] = &paths[i];
		runs[i].id = ids[i];
		runs[i].experiment_id = (char *)exp_id;
		runs[i].type = spec.type;
		runs[i].stack = i % 2 ? FJORD__V1__STACK__STACK_BUNDLED
				      : FJORD__V1__STACK__STACK_KERNEL;
		runs[i].client_agent_id = (char *)a;
		runs[i].server_agent_id = (char *)b;
		runs[i].client_site = "oslo";
		runs[i].server_site = "bergen";
		runs[i].paths = &pp[i];
		runs[i].n_paths = 1;
		runs[i].state = RS(PENDING);
		runs[i].sequence = (uint32_t)i;
		runs[i].due_ms = base + (int64_t)i * 1000;
		runs[i].deadline_ms = runs[i].due_ms + 300000;
		rp[i] = &runs[i];
	}
	CU_ASSERT_EQUAL(ctl_store_experiment_create(st, &exp, rp, n), 0);
	free(runs);
	free(rp);
	free(paths);
	free(pp);
	free(ids);
}

/* Opens a fresh store with agents on oslo (a) and bergen (b). */
static struct ctl_store *fixture(char **a, char **b)
{
	static const char *const isp_a[] = { "x", "y", NULL };
	static const char *const isp_b[] = { "z", NULL };
	struct ctl_store *st = NULL;

	tmp_setup();
	CU_ASSERT_FATAL(ctl_store_open(dbpath, &st) == 0);
	*a = enroll(st, "oslo", "n1", H1, isp_a);
	*b = enroll(st, "bergen", "n1", H2, isp_b);
	CU_ASSERT_FATAL(*a && *b);
	return st;
}

static void fixture_end(struct ctl_store *st, char *a, char *b)
{
	ctl_store_close(st);
	free(a);
	free(b);
	tmp_cleanup();
}

static int put_result(struct ctl_store *st, const char *run_id, const char *agent, int ok,
		      double goodput, const char *sched, int *dup)
{
	Fjord__V1__Result res = FJORD__V1__RESULT__INIT;
	Fjord__V1__Metric m = FJORD__V1__METRIC__INIT, *mp = &m;
	Fjord__V1__Provenance prov = FJORD__V1__PROVENANCE__INIT;

	res.run_id = (char *)run_id;
	res.ok = ok;
	res.error = ok ? "" : "boom";
	m.name = "goodput_bps";
	m.value = goodput;
	res.metrics = &mp;
	res.n_metrics = 1;
	prov.scheduler = (char *)sched;
	res.provenance = &prov;
	return ctl_store_result_put(st, &res, agent, 5000, dup);
}

/* ---- migrations ----------------------------------------------------------- */

static void test_migrate_fresh(void)
{
	struct ctl_store *st = NULL;

	tmp_setup();
	CU_ASSERT_EQUAL_FATAL(ctl_store_open(dbpath, &st), 0);
	CU_ASSERT_EQUAL(ctl_store_schema_version(st), st_latest_version());
	CU_ASSERT(st_latest_version() >= 3);
	CU_ASSERT(ctl_store_size(st) > 0);
	ctl_store_close(st);
	/* Reopening a current database changes nothing. */
	CU_ASSERT_EQUAL_FATAL(ctl_store_open(dbpath, &st), 0);
	CU_ASSERT_EQUAL(ctl_store_schema_version(st), st_latest_version());
	ctl_store_close(st);
	tmp_cleanup();
}

static void test_migrate_existing(void)
{
	struct ctl_store *st = NULL;
	Fjord__V1__Role role = 0;
	sqlite3 *db;
	char *name = NULL;

	tmp_setup();
	/* A database left at version 1 by an older controller, with data. */
	CU_ASSERT_EQUAL_FATAL(ctl_store_open_version(dbpath, 1, &st), 0);
	CU_ASSERT_EQUAL(ctl_store_schema_version(st), 1);
	CU_ASSERT_EQUAL(ctl_store_token_add(st, H1, FJORD__V1__ROLE__ROLE_ADMIN, "root", 1), 0);
	ctl_store_close(st);

	CU_ASSERT_EQUAL_FATAL(ctl_store_open(dbpath, &st), 0);
	CU_ASSERT_EQUAL(ctl_store_schema_version(st), st_latest_version());
	CU_ASSERT_EQUAL(ctl_store_token_lookup(st, H1, &role, &name), 0);
	CU_ASSERT_EQUAL(role, FJORD__V1__ROLE__ROLE_ADMIN);
	CU_ASSERT_STRING_EQUAL(name, "root");
	free(name);
	ctl_store_close(st);

	/* The tables of later versions exist now. */
	CU_ASSERT_EQUAL_FATAL(sqlite3_open(dbpath, &db), SQLITE_OK);
	CU_ASSERT_EQUAL(sqlite3_exec(db, "SELECT count(*) FROM metric; SELECT count(*) FROM trace",
				     NULL, NULL, NULL),
			SQLITE_OK);
	/* A database from a newer controller is refused, not damaged. */
	CU_ASSERT_EQUAL(sqlite3_exec(db, "UPDATE schema_version SET version = 99", NULL, NULL,
				     NULL),
			SQLITE_OK);
	sqlite3_close(db);
	st = NULL;
	CU_ASSERT_EQUAL(ctl_store_open(dbpath, &st), -EPROTO);
	CU_ASSERT_PTR_NULL(st);
	CU_ASSERT(strstr(ctl_store_errmsg(), "newer") != NULL);
	tmp_cleanup();
}

static void test_open_errors(void)
{
	struct ctl_store *st = NULL;

	CU_ASSERT_EQUAL(ctl_store_open(NULL, &st), -EINVAL);
	CU_ASSERT_EQUAL(ctl_store_open("", &st), -EINVAL);
	CU_ASSERT_EQUAL(ctl_store_open("/nonexistent-dir/x/y.db", &st), -EIO);
	CU_ASSERT_PTR_NULL(st);
	ctl_store_close(NULL);
}

/* ---- tokens ------------------------------------------------------------------ */

static void test_tokens(void)
{
	struct ctl_store *st = NULL;
	Fjord__V1__Role role = 0;
	char *name = NULL, longname[300];

	tmp_setup();
	CU_ASSERT_EQUAL_FATAL(ctl_store_open(dbpath, &st), 0);
	CU_ASSERT_EQUAL(ctl_store_token_add(st, H1, FJORD__V1__ROLE__ROLE_VIEWER, "bob", 1), 0);
	CU_ASSERT_EQUAL(ctl_store_token_add(st, H1, FJORD__V1__ROLE__ROLE_ADMIN, "eve", 1),
			-EEXIST);
	CU_ASSERT_EQUAL(ctl_store_token_add(st, H2, FJORD__V1__ROLE__ROLE_EXPERIMENTER, NULL, 1),
			0);
	CU_ASSERT_EQUAL(ctl_store_token_lookup(st, H1, &role, &name), 0);
	CU_ASSERT_EQUAL(role, FJORD__V1__ROLE__ROLE_VIEWER);
	CU_ASSERT_STRING_EQUAL(name, "bob");
	free(name);
	name = NULL;
	CU_ASSERT_EQUAL(ctl_store_token_lookup(st, H2, &role, &name), 0);
	CU_ASSERT_EQUAL(role, FJORD__V1__ROLE__ROLE_EXPERIMENTER);
	CU_ASSERT_STRING_EQUAL(name, "");
	free(name);
	CU_ASSERT_EQUAL(ctl_store_token_lookup(st, H3, &role, &name), -ENOENT);
	/* Bad arguments. */
	CU_ASSERT_EQUAL(ctl_store_token_add(st, "abc", FJORD__V1__ROLE__ROLE_VIEWER, "x", 1),
			-EINVAL);
	CU_ASSERT_EQUAL(ctl_store_token_add(st,
					    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
					    "AAAAAAAAAAAAAAAA",
					    FJORD__V1__ROLE__ROLE_VIEWER, "x", 1),
			-EINVAL);
	CU_ASSERT_EQUAL(ctl_store_token_add(st, H3, FJORD__V1__ROLE__ROLE_UNSPECIFIED, "x", 1),
			-EINVAL);
	CU_ASSERT_EQUAL(ctl_store_token_add(st, H3, (Fjord__V1__Role)9, "x", 1), -EINVAL);
	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;
	CU_ASSERT_EQUAL(ctl_store_token_add(st, H3, FJORD__V1__ROLE__ROLE_VIEWER, longname, 1),
			-EINVAL);
	CU_ASSERT(strstr(ctl_store_errmsg(), "longer") != NULL);
	CU_ASSERT_EQUAL(ctl_store_token_add(st, H3, FJORD__V1__ROLE__ROLE_VIEWER, "a\nb", 1),
			-EINVAL);
	CU_ASSERT_EQUAL(ctl_store_token_lookup(st, NULL, &role, &name), -EINVAL);
	CU_ASSERT_EQUAL(ctl_store_token_lookup(st, H3, NULL, &name), -EINVAL);
	ctl_store_close(st);
	tmp_cleanup();
}

/* ---- agents ------------------------------------------------------------------ */

static void test_agents(void)
{
	static const char *const isps[] = { "telenor", "uninett", NULL };
	Fjord__V1__PollRequest poll = FJORD__V1__POLL_REQUEST__INIT;
	Fjord__V1__EnrollRequest bad = FJORD__V1__ENROLL_REQUEST__INIT;
	Fjord__V1__Interface ifc = FJORD__V1__INTERFACE__INIT, *ifp = &ifc;
	Fjord__V1__AgentList *list = NULL;
	Fjord__V1__Agent *ag = NULL;
	struct ctl_store *st = NULL;
	char *id1, *id2, *id3, *x = NULL;
	char *running[] = { "r1", "r2" };

	tmp_setup();
	CU_ASSERT_EQUAL_FATAL(ctl_store_open(dbpath, &st), 0);
	id1 = enroll(st, "oslo", "n1", H1, isps);
	id2 = enroll(st, "bergen", "n1", H2, isps);
	CU_ASSERT_FATAL(id1 && id2);
	CU_ASSERT_STRING_NOT_EQUAL(id1, id2);
	/* Re-enrolling keeps the id and replaces the token. */
	id3 = enroll(st, "oslo", "n1", H3, isps);
	CU_ASSERT_STRING_EQUAL(id3, id1);
	CU_ASSERT_EQUAL(ctl_store_agent_by_token(st, H1, &ag), -ENOENT);
	CU_ASSERT_EQUAL_FATAL(ctl_store_agent_by_token(st, H3, &ag), 0);
	CU_ASSERT_STRING_EQUAL(ag->id, id1);
	CU_ASSERT_STRING_EQUAL(ag->site, "oslo");
	CU_ASSERT_EQUAL(ag->n_interfaces, 2);
	CU_ASSERT_STRING_EQUAL(ag->interfaces[1]->isp, "uninett");
	CU_ASSERT_EQUAL(ag->enrolled_ms, 1000);
	fjord__v1__agent__free_unpacked(ag, NULL);
	/* A token already held by another agent is a conflict. */
	CU_ASSERT_EQUAL(ctl_store_agent_enroll(st, &bad, H2, 1, &x), -EINVAL);
	bad.site = "tromso";
	bad.node = "n9";
	bad.version = "";
	bad.kernel_version = "";
	CU_ASSERT_EQUAL(ctl_store_agent_enroll(st, &bad, H2, 1, &x), -EEXIST);
	bad.site = "";
	CU_ASSERT_EQUAL(ctl_store_agent_enroll(st, &bad, H3, 1, &x), -EINVAL);
	CU_ASSERT_EQUAL(ctl_store_agent_enroll(st, NULL, H3, 1, &x), -EINVAL);

	/* A poll replaces interfaces and running runs and stamps last_seen. */
	ifc.name = "wwan0";
	ifc.isp = "telia";
	poll.interfaces = &ifp;
	poll.n_interfaces = 1;
	poll.running_run_ids = running;
	poll.n_running_run_ids = 2;
	poll.version = "1.1";
	CU_ASSERT_EQUAL(ctl_store_agent_seen(st, id2, &poll, 7777), 0);
	CU_ASSERT_EQUAL(ctl_store_agent_seen(st, "ag-nope", &poll, 7777), -ENOENT);
	ifc.isp = "bad\x01isp";
	CU_ASSERT_EQUAL(ctl_store_agent_seen(st, id2, &poll, 7777), -EINVAL);
	CU_ASSERT_EQUAL_FATAL(ctl_store_agent_get(st, id2, &ag), 0);
	CU_ASSERT_EQUAL(ag->n_interfaces, 1);
	CU_ASSERT_STRING_EQUAL(ag->interfaces[0]->isp, "telia");
	CU_ASSERT_EQUAL(ag->n_running_run_ids, 2);
	CU_ASSERT_STRING_EQUAL(ag->version, "1.1");
	CU_ASSERT_EQUAL(ag->last_seen_ms, 7777);
	CU_ASSERT_FALSE(ag->online); /* 7777 ms after the epoch is long ago */
	fjord__v1__agent__free_unpacked(ag, NULL);
	CU_ASSERT_EQUAL(ctl_store_agent_get(st, "ag-nope", &ag), -ENOENT);
	CU_ASSERT_EQUAL(ctl_store_agent_get(st, NULL, &ag), -EINVAL);

	CU_ASSERT_EQUAL_FATAL(ctl_store_agent_list(st, &list), 0);
	CU_ASSERT_EQUAL(list->n_agents, 2);
	CU_ASSERT_STRING_EQUAL(list->agents[0]->site, "bergen");
	CU_ASSERT_STRING_EQUAL(list->agents[1]->site, "oslo");
	fjord__v1__agent_list__free_unpacked(list, NULL);
	free(id1);
	free(id2);
	free(id3);
	ctl_store_close(st);
	tmp_cleanup();
}

/* ---- experiments and runs ------------------------------------------------- */

static void test_experiments(void)
{
	Fjord__V1__ExperimentList *el = NULL;
	Fjord__V1__Experiment *e = NULL, bad = FJORD__V1__EXPERIMENT__INIT;
	Fjord__V1__Run *r = NULL;
	char *a, *b;
	size_t n = 99;
	struct ctl_store *st = fixture(&a, &b);

	make_experiment(st, "e1", a, b, 5, 100000);
	make_experiment(st, "e2", b, a, 2, 200000);
	make_experiment(st, "e3", a, b, 1, 1);
	CU_ASSERT_EQUAL_FATAL(ctl_store_experiment_get(st, "e1", &e), 0);
	CU_ASSERT_EQUAL(e->runs_total, 5);
	CU_ASSERT_EQUAL(e->runs_done, 0);
	CU_ASSERT_EQUAL(e->state, FJORD__V1__EXPERIMENT_STATE__EXPERIMENT_STATE_ACTIVE);
	CU_ASSERT_STRING_EQUAL(e->owner, "alice");
	CU_ASSERT_EQUAL(e->spec->type, FJORD__V1__EXPERIMENT_TYPE__EXPERIMENT_TYPE_ECHO);
	fjord__v1__experiment__free_unpacked(e, NULL);
	CU_ASSERT_EQUAL(ctl_store_experiment_get(st, "zz", &e), -ENOENT);

	bad.id = "e1";
	CU_ASSERT_EQUAL(ctl_store_experiment_create(st, &bad, NULL, 0), -EINVAL); /* no spec */
	e = NULL;
	{
		Fjord__V1__ExperimentSpec spec = FJORD__V1__EXPERIMENT_SPEC__INIT;
		Fjord__V1__Run run = FJORD__V1__RUN__INIT, *rp = &run;

		bad.spec = &spec;
		CU_ASSERT_EQUAL(ctl_store_experiment_create(st, &bad, NULL, 0), -EEXIST);
		/* A run naming an unknown agent rolls the whole experiment back. */
		bad.id = "e9";
		run.id = "e9.r0";
		run.client_agent_id = "ag-ghost";
		run.server_agent_id = b;
		CU_ASSERT_EQUAL(ctl_store_experiment_create(st, &bad, &rp, 1), -ENOENT);
		CU_ASSERT_EQUAL(ctl_store_experiment_get(st, "e9", &e), -ENOENT);
		run.client_agent_id = "";
		CU_ASSERT_EQUAL(ctl_store_experiment_create(st, &bad, &rp, 1), -EINVAL);
		run.client_agent_id = a;
		run.experiment_id = "other";
		CU_ASSERT_EQUAL(ctl_store_experiment_create(st, &bad, &rp, 1), -EINVAL);
	}
	CU_ASSERT_EQUAL_FATAL(ctl_store_experiment_list(st, &el), 0);
	CU_ASSERT_EQUAL(el->n_experiments, 3);
	CU_ASSERT_STRING_EQUAL(el->experiments[0]->id, "e1");
	CU_ASSERT_STRING_EQUAL(el->experiments[1]->id, "e2");
	fjord__v1__experiment_list__free_unpacked(el, NULL);

	CU_ASSERT_EQUAL_FATAL(ctl_store_run_get(st, "e1.r3", &r), 0);
	CU_ASSERT_STRING_EQUAL(r->experiment_id, "e1");
	CU_ASSERT_EQUAL(r->due_ms, 103000);
	CU_ASSERT_EQUAL(r->state, RS(PENDING));
	CU_ASSERT_EQUAL(r->n_paths, 1);
	CU_ASSERT_STRING_EQUAL(r->paths[0]->local_isp, "y");
	fjord__v1__run__free_unpacked(r, NULL);
	CU_ASSERT_EQUAL(ctl_store_run_get(st, "e1.r99", &r), -ENOENT);

	/* Cancel: pending and dispatched runs end, finished ones stay. */
	CU_ASSERT_EQUAL(ctl_store_run_transition(st, "e1.r0", CTL_RUN_BIT(RS(PENDING)),
						 RS(DISPATCHED), NULL, 1),
			0);
	CU_ASSERT_EQUAL(ctl_store_run_transition(st, "e1.r1", CTL_RUN_BIT(RS(PENDING)), RS(MISSED),
						 "not picked up", 2),
			0);
	CU_ASSERT_EQUAL(ctl_store_experiment_cancel(st, "e1", "user said so", 50, &n), 0);
	CU_ASSERT_EQUAL(n, 4);
	CU_ASSERT_EQUAL_FATAL(ctl_store_run_get(st, "e1.r0", &r), 0);
	CU_ASSERT_EQUAL(r->state, RS(CANCELLED));
	CU_ASSERT_STRING_EQUAL(r->reason, "user said so");
	CU_ASSERT_EQUAL(r->finished_ms, 50);
	fjord__v1__run__free_unpacked(r, NULL);
	CU_ASSERT_EQUAL_FATAL(ctl_store_run_get(st, "e1.r1", &r), 0);
	CU_ASSERT_EQUAL(r->state, RS(MISSED));
	CU_ASSERT_STRING_EQUAL(r->reason, "not picked up");
	fjord__v1__run__free_unpacked(r, NULL);
	CU_ASSERT_EQUAL_FATAL(ctl_store_experiment_get(st, "e1", &e), 0);
	CU_ASSERT_EQUAL(e->state, FJORD__V1__EXPERIMENT_STATE__EXPERIMENT_STATE_CANCELLED);
	CU_ASSERT_EQUAL(e->runs_done, 5);
	fjord__v1__experiment__free_unpacked(e, NULL);
	CU_ASSERT_EQUAL(ctl_store_experiment_cancel(st, "e1", NULL, 60, &n), 0);
	CU_ASSERT_EQUAL(n, 0);
	CU_ASSERT_EQUAL(ctl_store_experiment_cancel(st, "nope", NULL, 60, &n), -ENOENT);
	CU_ASSERT_EQUAL(ctl_store_experiment_cancel(st, NULL, NULL, 60, &n), -EINVAL);

	/* An experiment whose runs all ended is done. */
	CU_ASSERT_EQUAL(ctl_store_run_transition(st, "e3.r0", CTL_RUN_BIT(RS(PENDING)), RS(FAILED),
						 "x", 2),
			0);
	CU_ASSERT_EQUAL_FATAL(ctl_store_experiment_get(st, "e3", &e), 0);
	CU_ASSERT_EQUAL(e->state, FJORD__V1__EXPERIMENT_STATE__EXPERIMENT_STATE_DONE);
	fjord__v1__experiment__free_unpacked(e, NULL);
	fixture_end(st, a, b);
}

static void test_transitions(void)
{
	Fjord__V1__RunList *l = NULL;
	Fjord__V1__Run *r = NULL;
	uint64_t counts[9];
	char *a, *b;
	struct ctl_store *st = fixture(&a, &b);
	const uint32_t pend = CTL_RUN_BIT(RS(PENDING)), wait = CTL_RUN_BIT(RS(WAITING_LINKS));

	make_experiment(st, "e1", a, b, 4, 1000);
	CU_ASSERT_EQUAL(ctl_store_run_transition(st, "e1.r0", pend, RS(WAITING_LINKS), NULL, 10),
			0);
	CU_ASSERT_EQUAL(
		ctl_store_run_transition(st, "e1.r0", pend | wait, RS(DISPATCHED), NULL, 20), 0);
	/* Not in a from state: stale, nothing changes. */
	CU_ASSERT_EQUAL(ctl_store_run_transition(st, "e1.r0", pend, RS(DISPATCHED), NULL, 30),
			-ESTALE);
	CU_ASSERT_EQUAL(ctl_store_run_transition(st, "e1.r0", CTL_RUN_BIT(RS(DISPATCHED)),
						 RS(RUNNING), NULL, 40),
			0);
	CU_ASSERT_EQUAL(ctl_store_run_transition(st, "e1.r0", CTL_RUN_BIT(RS(RUNNING)), RS(FAILED),
						 "deadline passed", 50),
			0);
	CU_ASSERT_EQUAL_FATAL(ctl_store_run_get(st, "e1.r0", &r), 0);
	CU_ASSERT_EQUAL(r->state, RS(FAILED));
	CU_ASSERT_EQUAL(r->dispatched_ms, 20);
	CU_ASSERT_EQUAL(r->started_ms, 40);
	CU_ASSERT_EQUAL(r->finished_ms, 50);
	CU_ASSERT_STRING_EQUAL(r->reason, "deadline passed");
	fjord__v1__run__free_unpacked(r, NULL);
	CU_ASSERT_EQUAL(ctl_store_run_transition(st, "nope", pend, RS(FAILED), NULL, 1), -ENOENT);
	CU_ASSERT_EQUAL(ctl_store_run_transition(st, "e1.r1", 0, RS(FAILED), NULL, 1), -EINVAL);
	CU_ASSERT_EQUAL(ctl_store_run_transition(st, "e1.r1", 1u << 12, RS(FAILED), NULL, 1),
			-EINVAL);
	CU_ASSERT_EQUAL(ctl_store_run_transition(st, "e1.r1", pend, (Fjord__V1__RunState)9, NULL,
						 1),
			-EINVAL);
	CU_ASSERT_EQUAL(ctl_store_run_transition(st, "e1.r1", pend, RS(UNSPECIFIED), NULL, 1),
			-EINVAL);

	/* By state, ordered by due time, limited. */
	CU_ASSERT_EQUAL(ctl_store_run_transition(st, "e1.r3", pend, RS(WAITING_LINKS), NULL, 1), 0);
	CU_ASSERT_EQUAL_FATAL(ctl_store_runs_by_state(st, pend | wait, 10, &l), 0);
	CU_ASSERT_EQUAL_FATAL(l->n_runs, 3);
	CU_ASSERT_STRING_EQUAL(l->runs[0]->id, "e1.r1");
	CU_ASSERT_STRING_EQUAL(l->runs[1]->id, "e1.r2");
	CU_ASSERT_STRING_EQUAL(l->runs[2]->id, "e1.r3");
	CU_ASSERT_EQUAL(l->runs[2]->state, RS(WAITING_LINKS));
	fjord__v1__run_list__free_unpacked(l, NULL);
	CU_ASSERT_EQUAL_FATAL(ctl_store_runs_by_state(st, pend | wait, 1, &l), 0);
	CU_ASSERT_EQUAL(l->n_runs, 1);
	fjord__v1__run_list__free_unpacked(l, NULL);
	CU_ASSERT_EQUAL(ctl_store_runs_by_state(st, 0, 1, &l), -EINVAL);
	CU_ASSERT_EQUAL(ctl_store_runs_by_state(st, pend, 0, &l), -EINVAL);

	CU_ASSERT_EQUAL(ctl_store_run_counts(st, counts), 0);
	CU_ASSERT_EQUAL(counts[RS(PENDING)], 2);
	CU_ASSERT_EQUAL(counts[RS(WAITING_LINKS)], 1);
	CU_ASSERT_EQUAL(counts[RS(FAILED)], 1);
	CU_ASSERT_EQUAL(counts[RS(SUCCEEDED)], 0);
	fixture_end(st, a, b);
}

static void test_runs_query(void)
{
	struct ctl_query q;
	Fjord__V1__RunList *l = NULL;
	char *a, *b, *c;
	static const char *const isp_c[] = { "w", NULL };
	struct ctl_store *st = fixture(&a, &b);

	c = enroll(st, "tromso", "n1", H3, isp_c);
	make_experiment(st, "e1", a, b, 6, 1000);  /* due 1000..6000 */
	make_experiment(st, "e2", b, c, 3, 10000); /* due 10000..12000 */

#define QN(expect)                                                                                 \
	do {                                                                                       \
		CU_ASSERT_EQUAL_FATAL(ctl_store_runs_query(st, &q, &l), 0);                        \
		CU_ASSERT_EQUAL(l->n_runs, (expect));                                              \
		fjord__v1__run_list__free_unpacked(l, NULL);                                       \
	} while (0)

	memset(&q, 0, sizeof(q));
	QN(9);
	q.experiment_id = "e2";
	QN(3);
	q.experiment_id = "nope";
	QN(0);
	memset(&q, 0, sizeof(q));
	q.site = "bergen"; /* make_experiment names oslo->bergen for every run */
	QN(9);
	q.site = "tromso";
	QN(0);
	memset(&q, 0, sizeof(q));
	q.agent_id = c;
	QN(3);
	q.agent_id = a;
	QN(6);
	memset(&q, 0, sizeof(q));
	q.isp = "y"; /* odd runs: r1, r3, r5 of e1 and r1 of e2 */
	QN(4);
	q.isp = "z";
	QN(9);
	q.isp = "q";
	QN(0);
	memset(&q, 0, sizeof(q));
	q.family = FJORD__V1__ADDRESS_FAMILY__ADDRESS_FAMILY_IPV6; /* i % 3 == 2 */
	QN(3);
	memset(&q, 0, sizeof(q));
	q.stack = FJORD__V1__STACK__STACK_BUNDLED;
	QN(4);
	q.stack = FJORD__V1__STACK__STACK_TCP;
	QN(0);
	memset(&q, 0, sizeof(q));
	q.from_ms = 2000;
	q.to_ms = 10001;
	QN(6);
	memset(&q, 0, sizeof(q));
	CU_ASSERT_EQUAL(ctl_store_run_transition(st, "e1.r2", CTL_RUN_BIT(RS(PENDING)), RS(MISSED),
						 NULL, 1),
			0);
	q.state_mask = CTL_RUN_BIT(RS(MISSED)) | CTL_RUN_BIT(RS(SUCCEEDED));
	QN(1);
	q.state_mask = CTL_RUN_BIT(RS(PENDING));
	q.experiment_id = "e1";
	q.isp = "x";
	QN(2); /* r0, r4 */
	memset(&q, 0, sizeof(q));
	q.limit = 4;
	q.offset = 7;
	CU_ASSERT_EQUAL_FATAL(ctl_store_runs_query(st, &q, &l), 0);
	CU_ASSERT_EQUAL(l->n_runs, 2);
	CU_ASSERT_STRING_EQUAL(l->runs[0]->id, "e2.r1");
	fjord__v1__run_list__free_unpacked(l, NULL);
#undef QN
	/* Bad filters. */
	memset(&q, 0, sizeof(q));
	q.limit = 10001;
	CU_ASSERT_EQUAL(ctl_store_runs_query(st, &q, &l), -EINVAL);
	memset(&q, 0, sizeof(q));
	q.family = 7;
	CU_ASSERT_EQUAL(ctl_store_runs_query(st, &q, &l), -EINVAL);
	memset(&q, 0, sizeof(q));
	q.stack = 9;
	CU_ASSERT_EQUAL(ctl_store_runs_query(st, &q, &l), -EINVAL);
	memset(&q, 0, sizeof(q));
	q.state_mask = 1;
	CU_ASSERT_EQUAL(ctl_store_runs_query(st, &q, &l), -EINVAL);
	memset(&q, 0, sizeof(q));
	q.from_ms = 10;
	q.to_ms = 5;
	CU_ASSERT_EQUAL(ctl_store_runs_query(st, &q, &l), -EINVAL);
	memset(&q, 0, sizeof(q));
	q.site = "";
	CU_ASSERT_EQUAL(ctl_store_runs_query(st, &q, &l), -EINVAL);
	free(c);
	fixture_end(st, a, b);
}

/* ---- results ----------------------------------------------------------------- */

static void test_results(void)
{
	static const char *const isp_c[] = { "w", NULL };
	Fjord__V1__Result res = FJORD__V1__RESULT__INIT;
	Fjord__V1__Metric m1 = FJORD__V1__METRIC__INIT, m2 = FJORD__V1__METRIC__INIT;
	Fjord__V1__Metric *mp[2] = { &m1, &m2 };
	Fjord__V1__ResultList *rl = NULL;
	Fjord__V1__Run *r = NULL;
	struct ctl_query q;
	char *a, *b, *c;
	int dup = 7;
	struct ctl_store *st = fixture(&a, &b);

	c = enroll(st, "tromso", "n1", H3, isp_c);
	make_experiment(st, "e1", a, b, 4, 1000);
	CU_ASSERT_EQUAL(put_result(st, "e1.r0", a, 1, 100.0, "default", &dup), 0);
	CU_ASSERT_EQUAL(dup, 0);
	CU_ASSERT_EQUAL_FATAL(ctl_store_run_get(st, "e1.r0", &r), 0);
	CU_ASSERT_EQUAL(r->state, RS(SUCCEEDED));
	CU_ASSERT_EQUAL(r->finished_ms, 5000);
	fjord__v1__run__free_unpacked(r, NULL);
	/* The same again: a duplicate, not an error; a different one: conflict. */
	CU_ASSERT_EQUAL(put_result(st, "e1.r0", a, 1, 100.0, "default", &dup), 0);
	CU_ASSERT_EQUAL(dup, 1);
	CU_ASSERT_EQUAL(put_result(st, "e1.r0", a, 1, 101.0, "default", &dup), -EEXIST);
	/* The server's result is stored beside it and moves nothing. */
	CU_ASSERT_EQUAL(put_result(st, "e1.r0", b, 0, 1.0, "default", &dup), 0);
	CU_ASSERT_EQUAL(dup, 0);
	/* A failed result fails the run with its error. */
	CU_ASSERT_EQUAL(put_result(st, "e1.r1", a, 0, 5.0, "default", &dup), 0);
	CU_ASSERT_EQUAL_FATAL(ctl_store_run_get(st, "e1.r1", &r), 0);
	CU_ASSERT_EQUAL(r->state, RS(FAILED));
	CU_ASSERT_STRING_EQUAL(r->reason, "boom");
	fjord__v1__run__free_unpacked(r, NULL);
	/* A late result of a missed run is kept; the run stays missed. */
	CU_ASSERT_EQUAL(ctl_store_run_transition(st, "e1.r2", CTL_RUN_BIT(RS(PENDING)), RS(MISSED),
						 "late", 9),
			0);
	CU_ASSERT_EQUAL(put_result(st, "e1.r2", a, 1, 7.0, "default", &dup), 0);
	CU_ASSERT_EQUAL_FATAL(ctl_store_run_get(st, "e1.r2", &r), 0);
	CU_ASSERT_EQUAL(r->state, RS(MISSED));
	fjord__v1__run__free_unpacked(r, NULL);
	/* Errors. */
	CU_ASSERT_EQUAL(put_result(st, "e1.r3", c, 1, 1.0, "default", &dup), -EPERM);
	CU_ASSERT_EQUAL(put_result(st, "nope", a, 1, 1.0, "default", &dup), -ENOENT);
	/* The writer thread's message reaches the caller's thread. */
	CU_ASSERT(strstr(ctl_store_errmsg(), "no such run nope") != NULL);
	CU_ASSERT_EQUAL(put_result(st, "", a, 1, 1.0, "default", &dup), -EINVAL);
	CU_ASSERT_EQUAL(put_result(st, "e1.r3", a, 1, 0.0 / 0.0, "default", &dup), -EINVAL);
	CU_ASSERT_EQUAL(put_result(st, "e1.r3", NULL, 1, 1.0, "default", &dup), -EINVAL);
	res.run_id = "e1.r3";
	m1.name = "rtt";
	m2.name = "rtt";
	res.metrics = mp;
	res.n_metrics = 2;
	CU_ASSERT_EQUAL(ctl_store_result_put(st, &res, a, 1, &dup), -EINVAL);
	CU_ASSERT(strstr(ctl_store_errmsg(), "twice") != NULL);
	m2.name = "";
	CU_ASSERT_EQUAL(ctl_store_result_put(st, &res, a, 1, &dup), -EINVAL);
	CU_ASSERT_EQUAL(ctl_store_result_put_async(st, &res, a, 1, NULL, NULL), -EINVAL);
	/* The stored agent is the one the caller vouches for, not the claim. */
	m2.name = "loss";
	res.agent_id = "someone-else";
	CU_ASSERT_EQUAL(ctl_store_result_put(st, &res, a, 1, NULL), 0);

	memset(&q, 0, sizeof(q));
	CU_ASSERT_EQUAL_FATAL(ctl_store_results_query(st, &q, &rl), 0);
	CU_ASSERT_EQUAL_FATAL(rl->n_rows, 5);
	CU_ASSERT_STRING_EQUAL(rl->rows[0]->run->id, "e1.r0");
	CU_ASSERT_EQUAL(rl->rows[0]->run->state, RS(SUCCEEDED));
	CU_ASSERT_STRING_EQUAL(rl->rows[4]->result->agent_id, a);
	CU_ASSERT_EQUAL(rl->rows[4]->result->n_metrics, 2);
	fjord__v1__result_list__free_unpacked(rl, NULL);
	q.state_mask = CTL_RUN_BIT(RS(FAILED)) | CTL_RUN_BIT(RS(MISSED));
	CU_ASSERT_EQUAL_FATAL(ctl_store_results_query(st, &q, &rl), 0);
	CU_ASSERT_EQUAL_FATAL(rl->n_rows, 3); /* r1, r2 (missed) and r3 (ok = 0) */
	CU_ASSERT_STRING_EQUAL(rl->rows[2]->run->reason, "agent reported failure");
	fjord__v1__result_list__free_unpacked(rl, NULL);
	q.state_mask = 0;
	q.limit = 2;
	q.offset = 4;
	CU_ASSERT_EQUAL_FATAL(ctl_store_results_query(st, &q, &rl), 0);
	CU_ASSERT_EQUAL(rl->n_rows, 1);
	fjord__v1__result_list__free_unpacked(rl, NULL);
	q.limit = 99999;
	CU_ASSERT_EQUAL(ctl_store_results_query(st, &q, &rl), -EINVAL);
	free(c);
	fixture_end(st, a, b);
}

static const Fjord__V1__AggregateRow *agg_row(const Fjord__V1__AggregateResponse *r,
					      const char *group)
{
	size_t i;

	for (i = 0; i < r->n_rows; i++)
		if (strcmp(r->rows[i]->group, group) == 0)
			return r->rows[i];
	return NULL;
}

static void test_aggregates(void)
{
	/* Even runs (kernel, x->z, "default"): 1 2 3 4 10; odd runs (bundled,
	 * y->z, "redundant"): 5 five times. */
	static const double even[] = { 1, 2, 3, 4, 10 };
	Fjord__V1__AggregateResponse *ag = NULL;
	const Fjord__V1__AggregateRow *row;
	enum ctl_group_by by;
	struct ctl_query q;
	char id[32], *a, *b;
	size_t i;
	int dup;
	struct ctl_store *st = fixture(&a, &b);

	make_experiment(st, "e1", a, b, 10, 1000);
	for (i = 0; i < 10; i++) {
		snprintf(id, sizeof(id), "e1.r%zu", i);
		CU_ASSERT_EQUAL(put_result(st, id, a, 1, i % 2 ? 5.0 : even[i / 2],
					   i % 2 ? "redundant" : "", &dup),
				0);
	}
	CU_ASSERT_EQUAL_FATAL(ctl_store_aggregate(st, "goodput_bps", CTL_GROUP_STACK, NULL, &ag),
			      0);
	CU_ASSERT_STRING_EQUAL(ag->metric, "goodput_bps");
	CU_ASSERT_STRING_EQUAL(ag->group_by, "stack");
	CU_ASSERT_EQUAL_FATAL(ag->n_rows, 2);
	CU_ASSERT_STRING_EQUAL(ag->rows[0]->group, "bundled"); /* rows sorted by group */
	row = agg_row(ag, "kernel");
	CU_ASSERT_PTR_NOT_NULL_FATAL(row);
	CU_ASSERT_EQUAL(row->count, 5);
	CU_ASSERT_DOUBLE_EQUAL(row->mean, 4.0, 1e-9);
	CU_ASSERT_DOUBLE_EQUAL(row->median, 3.0, 1e-9);
	CU_ASSERT_DOUBLE_EQUAL(row->p95, 8.8, 1e-9); /* 4 + 0.8 * (10 - 4) */
	CU_ASSERT_DOUBLE_EQUAL(row->min, 1.0, 1e-9);
	CU_ASSERT_DOUBLE_EQUAL(row->max, 10.0, 1e-9);
	row = agg_row(ag, "bundled");
	CU_ASSERT_EQUAL(row->count, 5);
	CU_ASSERT_DOUBLE_EQUAL(row->p95, 5.0, 1e-9);
	fjord__v1__aggregate_response__free_unpacked(ag, NULL);

	CU_ASSERT_EQUAL_FATAL(ctl_store_aggregate(st, "goodput_bps", CTL_GROUP_ISP_PAIR, NULL, &ag),
			      0);
	CU_ASSERT_EQUAL(ag->n_rows, 2);
	row = agg_row(ag, "x->z");
	CU_ASSERT_PTR_NOT_NULL_FATAL(row);
	CU_ASSERT_DOUBLE_EQUAL(row->median, 3.0, 1e-9);
	fjord__v1__aggregate_response__free_unpacked(ag, NULL);
	CU_ASSERT_EQUAL_FATAL(
		ctl_store_aggregate(st, "goodput_bps", CTL_GROUP_SITE_PAIR, NULL, &ag), 0);
	CU_ASSERT_EQUAL_FATAL(ag->n_rows, 1);
	CU_ASSERT_STRING_EQUAL(ag->rows[0]->group, "oslo->bergen");
	CU_ASSERT_EQUAL(ag->rows[0]->count, 10);
	CU_ASSERT_DOUBLE_EQUAL(ag->rows[0]->mean, 4.5, 1e-9);
	CU_ASSERT_DOUBLE_EQUAL(ag->rows[0]->median, 5.0, 1e-9);
	fjord__v1__aggregate_response__free_unpacked(ag, NULL);
	CU_ASSERT_EQUAL_FATAL(
		ctl_store_aggregate(st, "goodput_bps", CTL_GROUP_SCHEDULER, NULL, &ag), 0);
	CU_ASSERT_EQUAL_FATAL(ag->n_rows, 2);
	CU_ASSERT_PTR_NOT_NULL(agg_row(ag, "default"));
	CU_ASSERT_PTR_NOT_NULL(agg_row(ag, "redundant"));
	fjord__v1__aggregate_response__free_unpacked(ag, NULL);
	CU_ASSERT_EQUAL_FATAL(
		ctl_store_aggregate(st, "goodput_bps", CTL_GROUP_EXPERIMENT, NULL, &ag), 0);
	CU_ASSERT_EQUAL_FATAL(ag->n_rows, 1);
	CU_ASSERT_STRING_EQUAL(ag->rows[0]->group, "e1");
	fjord__v1__aggregate_response__free_unpacked(ag, NULL);

	/* Filters apply: IPv6 runs are r2 (2), r5 (5), r8 (10). */
	memset(&q, 0, sizeof(q));
	q.family = FJORD__V1__ADDRESS_FAMILY__ADDRESS_FAMILY_IPV6;
	CU_ASSERT_EQUAL_FATAL(ctl_store_aggregate(st, "goodput_bps", CTL_GROUP_SITE_PAIR, &q, &ag),
			      0);
	CU_ASSERT_EQUAL_FATAL(ag->n_rows, 1);
	CU_ASSERT_EQUAL(ag->rows[0]->count, 3);
	CU_ASSERT_DOUBLE_EQUAL(ag->rows[0]->median, 5.0, 1e-9);
	fjord__v1__aggregate_response__free_unpacked(ag, NULL);
	/* An indexed filter takes the lookup path: the same figures. */
	memset(&q, 0, sizeof(q));
	q.experiment_id = "e1";
	q.from_ms = 1000;
	q.to_ms = 6000; /* r0..r4: 1, 5, 2, 5, 3 */
	CU_ASSERT_EQUAL_FATAL(ctl_store_aggregate(st, "goodput_bps", CTL_GROUP_SITE_PAIR, &q, &ag),
			      0);
	CU_ASSERT_EQUAL_FATAL(ag->n_rows, 1);
	CU_ASSERT_EQUAL(ag->rows[0]->count, 5);
	CU_ASSERT_DOUBLE_EQUAL(ag->rows[0]->mean, 3.2, 1e-9);
	CU_ASSERT_DOUBLE_EQUAL(ag->rows[0]->median, 3.0, 1e-9);
	CU_ASSERT_DOUBLE_EQUAL(ag->rows[0]->p95, 5.0, 1e-9);
	CU_ASSERT_DOUBLE_EQUAL(ag->rows[0]->min, 1.0, 1e-9);
	fjord__v1__aggregate_response__free_unpacked(ag, NULL);
	q.experiment_id = "nope";
	CU_ASSERT_EQUAL_FATAL(ctl_store_aggregate(st, "goodput_bps", CTL_GROUP_STACK, &q, &ag), 0);
	CU_ASSERT_EQUAL(ag->n_rows, 0);
	fjord__v1__aggregate_response__free_unpacked(ag, NULL);
	CU_ASSERT_EQUAL_FATAL(ctl_store_aggregate(st, "no_such", CTL_GROUP_STACK, NULL, &ag), 0);
	CU_ASSERT_EQUAL(ag->n_rows, 0);
	fjord__v1__aggregate_response__free_unpacked(ag, NULL);
	CU_ASSERT_EQUAL(ctl_store_aggregate(st, "", CTL_GROUP_STACK, NULL, &ag), -EINVAL);
	CU_ASSERT_EQUAL(ctl_store_aggregate(st, "x", (enum ctl_group_by)42, NULL, &ag), -EINVAL);

	CU_ASSERT_EQUAL(ctl_group_by_parse("isp_pair", &by), 0);
	CU_ASSERT_EQUAL(by, CTL_GROUP_ISP_PAIR);
	CU_ASSERT_EQUAL(ctl_group_by_parse("experiment", &by), 0);
	CU_ASSERT_EQUAL(by, CTL_GROUP_EXPERIMENT);
	CU_ASSERT_EQUAL(ctl_group_by_parse("color", &by), -EINVAL);
	CU_ASSERT_EQUAL(ctl_group_by_parse(NULL, &by), -EINVAL);
	fixture_end(st, a, b);
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Reference: the linear-interpolation percentile of a sorted copy. */
static double ref_pct(const double *sorted, size_t n, double p)
{
	double pos = p * (double)(n - 1);
	size_t lo = (size_t)pos;

	return lo + 1 < n ? sorted[lo] + (sorted[lo + 1] - sorted[lo]) * (pos - (double)lo)
			  : sorted[n - 1];
}

/* Medians and p95 of many random groups (with ties) against sorting. */
static void test_aggregate_random(void)
{
	enum { N = 600 };
	double vals[2][N], sorted[N];
	size_t n[2] = { 0, 0 }, i, g;
	Fjord__V1__AggregateResponse *ag = NULL;
	char id[32], *a, *b;
	int dup;
	struct ctl_store *st = fixture(&a, &b);

	srand(12345);
	make_experiment(st, "e1", a, b, N, 1000);
	for (i = 0; i < N; i++) {
		double v = (double)(rand() % 97) + (i % 7 == 0 ? 0.5 : 0.0);

		g = i % 2; /* kernel / bundled */
		vals[g][n[g]++] = v;
		snprintf(id, sizeof(id), "e1.r%zu", i);
		CU_ASSERT_EQUAL(put_result(st, id, a, 1, v, "s", &dup), 0);
	}
	CU_ASSERT_EQUAL_FATAL(ctl_store_aggregate(st, "goodput_bps", CTL_GROUP_STACK, NULL, &ag),
			      0);
	CU_ASSERT_EQUAL_FATAL(ag->n_rows, 2);
	for (g = 0; g < 2; g++) {
		const Fjord__V1__AggregateRow *row = agg_row(ag, g ? "bundled" : "kernel");
		double sum = 0;

		CU_ASSERT_PTR_NOT_NULL_FATAL(row);
		memcpy(sorted, vals[g], n[g] * sizeof(double));
		qsort(sorted, n[g], sizeof(double), cmp_dbl);
		for (i = 0; i < n[g]; i++)
			sum += sorted[i];
		CU_ASSERT_EQUAL(row->count, n[g]);
		CU_ASSERT_DOUBLE_EQUAL(row->mean, sum / (double)n[g], 1e-9);
		CU_ASSERT_DOUBLE_EQUAL(row->median, ref_pct(sorted, n[g], 0.5), 1e-9);
		CU_ASSERT_DOUBLE_EQUAL(row->p95, ref_pct(sorted, n[g], 0.95), 1e-9);
		CU_ASSERT_DOUBLE_EQUAL(row->min, sorted[0], 1e-9);
		CU_ASSERT_DOUBLE_EQUAL(row->max, sorted[n[g] - 1], 1e-9);
	}
	fjord__v1__aggregate_response__free_unpacked(ag, NULL);
	fixture_end(st, a, b);
}

/* ---- traces -------------------------------------------------------------------- */

static void test_traces(void)
{
	Fjord__V1__TraceInfo ti = FJORD__V1__TRACE_INFO__INIT, *got = NULL;
	Fjord__V1__TraceList *tl = NULL;
	char *a, *b;
	struct ctl_store *st = fixture(&a, &b);

	make_experiment(st, "e1", a, b, 2, 1000);
	ti.run_id = "e1.r0";
	ti.name = "client.pcap";
	ti.sha256 = (char *)H1;
	ti.size = 1234;
	ti.content_type = "application/vnd.tcpdump.pcap";
	ti.uploaded_ms = 77;
	CU_ASSERT_EQUAL(ctl_store_trace_put(st, &ti), 0);
	ti.name = "samples.csv";
	CU_ASSERT_EQUAL(ctl_store_trace_put(st, &ti), 0);
	/* Uploading a name again replaces it. */
	ti.sha256 = (char *)H2;
	ti.size = 99;
	CU_ASSERT_EQUAL(ctl_store_trace_put(st, &ti), 0);
	CU_ASSERT_EQUAL_FATAL(ctl_store_trace_get(st, "e1.r0", "samples.csv", &got), 0);
	CU_ASSERT_STRING_EQUAL(got->sha256, H2);
	CU_ASSERT_EQUAL(got->size, 99);
	CU_ASSERT_EQUAL(got->uploaded_ms, 77);
	CU_ASSERT_STRING_EQUAL(got->run_id, "e1.r0");
	fjord__v1__trace_info__free_unpacked(got, NULL);
	CU_ASSERT_EQUAL_FATAL(ctl_store_trace_list(st, "e1.r0", &tl), 0);
	CU_ASSERT_EQUAL_FATAL(tl->n_traces, 2);
	CU_ASSERT_STRING_EQUAL(tl->traces[0]->name, "client.pcap");
	fjord__v1__trace_list__free_unpacked(tl, NULL);
	CU_ASSERT_EQUAL_FATAL(ctl_store_trace_list(st, "e1.r1", &tl), 0);
	CU_ASSERT_EQUAL(tl->n_traces, 0);
	fjord__v1__trace_list__free_unpacked(tl, NULL);
	CU_ASSERT_EQUAL(ctl_store_trace_list(st, "nope", &tl), -ENOENT);
	CU_ASSERT_EQUAL(ctl_store_trace_get(st, "e1.r1", "client.pcap", &got), -ENOENT);
	/* Errors. */
	ti.run_id = "nope";
	CU_ASSERT_EQUAL(ctl_store_trace_put(st, &ti), -ENOENT);
	ti.run_id = "e1.r1";
	ti.name = "../etc/passwd";
	CU_ASSERT_EQUAL(ctl_store_trace_put(st, &ti), -EINVAL);
	ti.name = "ok.pcap";
	ti.sha256 = "abc";
	CU_ASSERT_EQUAL(ctl_store_trace_put(st, &ti), -EINVAL);
	CU_ASSERT_EQUAL(ctl_store_trace_get(st, "e1.r1", "a b", &got), -EINVAL);
	fixture_end(st, a, b);
}

/* ---- group commit and durability ------------------------------------------- */

#define GC_THREADS 4
#define GC_PER	   300

struct gc_arg {
	struct ctl_store *st;
	const char *agent;
	int t;
	pthread_mutex_t *lock;
	pthread_cond_t *cond;
	int *acked, *failed;
};

static void gc_done(void *arg, int err, int dup)
{
	struct gc_arg *g = arg;

	(void)dup;
	pthread_mutex_lock(g->lock);
	if (err)
		(*g->failed)++;
	else
		(*g->acked)++;
	pthread_cond_broadcast(g->cond);
	pthread_mutex_unlock(g->lock);
}

static void *gc_writer(void *p)
{
	struct gc_arg *g = p;
	Fjord__V1__Result res = FJORD__V1__RESULT__INIT;
	char id[32];
	int i, dup;

	for (i = 0; i < GC_PER; i++) {
		snprintf(id, sizeof(id), "g.r%d", g->t * GC_PER + i);
		res.run_id = id;
		res.ok = 1;
		/* Half asynchronous (as the HTTP layer does), half waiting. */
		if (i % 2) {
			if (ctl_store_result_put_async(g->st, &res, g->agent, 1, gc_done, g))
				gc_done(g, -EIO, 0);
		} else {
			gc_done(g, ctl_store_result_put(g->st, &res, g->agent, 1, &dup), 0);
		}
	}
	return NULL;
}

static void test_group_commit(void)
{
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
	struct gc_arg g[GC_THREADS];
	pthread_t th[GC_THREADS];
	uint64_t counts[9];
	int acked = 0, failed = 0, i;
	char *a, *b;
	struct ctl_store *st = fixture(&a, &b);

	make_experiment(st, "g", a, b, GC_THREADS * GC_PER, 1000);
	st->n_batches = st->n_ops = 0;
	for (i = 0; i < GC_THREADS; i++) {
		g[i] = (struct gc_arg){ st, a, i, &lock, &cond, &acked, &failed };
		CU_ASSERT_FATAL(pthread_create(&th[i], NULL, gc_writer, &g[i]) == 0);
	}
	for (i = 0; i < GC_THREADS; i++)
		pthread_join(th[i], NULL);
	pthread_mutex_lock(&lock);
	while (acked + failed < GC_THREADS * GC_PER)
		pthread_cond_wait(&cond, &lock);
	pthread_mutex_unlock(&lock);
	CU_ASSERT_EQUAL(failed, 0);
	CU_ASSERT_EQUAL(acked, GC_THREADS * GC_PER);
	/* Writes were really grouped: fewer commits than writes. */
	CU_ASSERT(st->n_ops == GC_THREADS * GC_PER);
	CU_ASSERT(st->n_batches < st->n_ops);
	ctl_store_close(st);

	st = NULL;
	CU_ASSERT_EQUAL_FATAL(ctl_store_open(dbpath, &st), 0);
	CU_ASSERT_EQUAL(ctl_store_run_counts(st, counts), 0);
	CU_ASSERT_EQUAL(counts[RS(SUCCEEDED)], GC_THREADS * GC_PER);
	CU_ASSERT_EQUAL(counts[RS(PENDING)], 0);
	fixture_end(st, a, b);
}

struct cb_write {
	struct ctl_store *st;
	int err, read_err;
	volatile int done;
};

/* Writes from the writer's own callback are refused, reads work. */
static void write_in_cb(void *arg, int err, int dup)
{
	struct cb_write *c = arg;
	Fjord__V1__Run *r = NULL;

	(void)err;
	(void)dup;
	c->err = ctl_store_token_add(c->st, H3, FJORD__V1__ROLE__ROLE_VIEWER, "cb", 1);
	c->read_err = ctl_store_run_get(c->st, "e1.r0", &r);
	if (r)
		fjord__v1__run__free_unpacked(r, NULL);
	__atomic_store_n(&c->done, 1, __ATOMIC_SEQ_CST);
}

static void test_callback_write(void)
{
	Fjord__V1__Result res = FJORD__V1__RESULT__INIT;
	struct cb_write c = { 0 };
	char *a, *b;
	int i;
	struct ctl_store *st = fixture(&a, &b);

	make_experiment(st, "e1", a, b, 1, 1000);
	c.st = st;
	res.run_id = "e1.r0";
	res.ok = 1;
	CU_ASSERT_EQUAL(ctl_store_result_put_async(st, &res, a, 1, write_in_cb, &c), 0);
	for (i = 0; i < 10000 && !__atomic_load_n(&c.done, __ATOMIC_SEQ_CST); i++)
		usleep(1000);
	CU_ASSERT_EQUAL(c.err, -EDEADLK);
	CU_ASSERT_EQUAL(c.read_err, 0);
	fixture_end(st, a, b);
}

static void iso_done(void *arg, int err, int dup)
{
	int *counts = arg; /* [0] ok, [1] -ENOENT with its message, [2] other */

	(void)dup;
	if (!err)
		__atomic_fetch_add(&counts[0], 1, __ATOMIC_SEQ_CST);
	else if (err == -ENOENT && strstr(ctl_store_errmsg(), "no such run"))
		__atomic_fetch_add(&counts[1], 1, __ATOMIC_SEQ_CST);
	else
		__atomic_fetch_add(&counts[2], 1, __ATOMIC_SEQ_CST);
}

/* A write that fails inside a batch fails alone: the others commit. */
static void test_batch_isolation(void)
{
	Fjord__V1__Result res = FJORD__V1__RESULT__INIT;
	int counts[3] = { 0, 0, 0 }, i;
	uint64_t counts_db[9];
	char id[32], *a, *b;
	struct ctl_store *st = fixture(&a, &b);

	make_experiment(st, "b", a, b, 400, 1000);
	st->n_batches = st->n_ops = 0;
	for (i = 0; i < 500; i++) {
		/* Every fifth names a run that does not exist. */
		if (i % 5 == 4)
			snprintf(id, sizeof(id), "ghost.%d", i);
		else
			snprintf(id, sizeof(id), "b.r%d", i - i / 5);
		res.run_id = id;
		res.ok = 1;
		CU_ASSERT_EQUAL(ctl_store_result_put_async(st, &res, a, 1, iso_done, counts), 0);
	}
	for (i = 0; i < 10000 && __atomic_load_n(&counts[0], __ATOMIC_SEQ_CST) +
						 __atomic_load_n(&counts[1], __ATOMIC_SEQ_CST) +
						 __atomic_load_n(&counts[2], __ATOMIC_SEQ_CST) <
					 500;
	     i++)
		usleep(1000);
	CU_ASSERT(st->n_batches < st->n_ops); /* the failures shared batches */
	ctl_store_close(st);
	CU_ASSERT_EQUAL(counts[0], 400);
	CU_ASSERT_EQUAL(counts[1], 100);
	CU_ASSERT_EQUAL(counts[2], 0);
	st = NULL;
	CU_ASSERT_EQUAL_FATAL(ctl_store_open(dbpath, &st), 0);
	CU_ASSERT_EQUAL(ctl_store_run_counts(st, counts_db), 0);
	CU_ASSERT_EQUAL(counts_db[RS(SUCCEEDED)], 400);
	fixture_end(st, a, b);
}

#define K9_RUNS 20000
#define K9_KILL 400

struct k9_ack {
	int fd;
	int32_t idx;
};

static void k9_ack_cb(void *arg, int err, int dup)
{
	struct k9_ack *k = arg;

	(void)dup;
	if (!err && write(k->fd, &k->idx, sizeof(k->idx)) != sizeof(k->idx))
		_exit(3);
	free(k);
}

/* The child: writes results as fast as it can, reporting each ack. */
static void k9_child(int fd, const char *agent)
{
	Fjord__V1__Result res = FJORD__V1__RESULT__INIT;
	struct ctl_store *st = NULL;
	char id[32];
	int32_t i;

	if (ctl_store_open(dbpath, &st))
		_exit(2);
	for (i = 0; i < K9_RUNS; i++) {
		struct k9_ack *k = malloc(sizeof(*k));

		if (!k)
			_exit(2);
		k->fd = fd;
		k->idx = i;
		snprintf(id, sizeof(id), "k.r%d", i);
		res.run_id = id;
		res.ok = 1;
		if (ctl_store_result_put_async(st, &res, agent, 1, k9_ack_cb, k))
			_exit(2);
	}
	ctl_store_close(st);
	_exit(0);
}

static void test_kill9(void)
{
	char *a, *b, *seen = calloc(K9_RUNS, 1);
	struct ctl_store *st = fixture(&a, &b);
	int fds[2], status = 0;
	size_t acked = 0, missing = 0, i;
	int32_t idx;
	pid_t pid;

	CU_ASSERT_FATAL(seen != NULL);
	make_experiment(st, "k", a, b, K9_RUNS, 1000);
	ctl_store_close(st);
	CU_ASSERT_FATAL(pipe(fds) == 0);
	pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		k9_child(fds[1], a);
	}
	close(fds[1]);
	/* Kill it mid-stream, after some acknowledgements. */
	while (acked < K9_KILL && read(fds[0], &idx, sizeof(idx)) == sizeof(idx)) {
		if (idx >= 0 && idx < K9_RUNS && !seen[idx]) {
			seen[idx] = 1;
			acked++;
		}
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	CU_ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	/* Acks written before the kill are still in the pipe. */
	while (read(fds[0], &idx, sizeof(idx)) == sizeof(idx)) {
		if (idx >= 0 && idx < K9_RUNS && !seen[idx]) {
			seen[idx] = 1;
			acked++;
		}
	}
	close(fds[0]);
	CU_ASSERT(acked >= K9_KILL);
	CU_ASSERT(acked < K9_RUNS); /* really killed mid-stream */

	st = NULL;
	CU_ASSERT_EQUAL_FATAL(ctl_store_open(dbpath, &st), 0);
	for (i = 0; i < K9_RUNS; i++) {
		char id[32];
		Fjord__V1__Run *r = NULL;

		if (!seen[i])
			continue;
		snprintf(id, sizeof(id), "k.r%zu", i);
		if (ctl_store_run_get(st, id, &r) || r->state != RS(SUCCEEDED))
			missing++;
		if (r)
			fjord__v1__run__free_unpacked(r, NULL);
	}
	CU_ASSERT_EQUAL(missing, 0);
	free(seen);
	fixture_end(st, a, b);
}

static const struct fj_test tests[] = {
	{ "migrate_fresh", test_migrate_fresh },
	{ "migrate_existing", test_migrate_existing },
	{ "open_errors", test_open_errors },
	{ "tokens", test_tokens },
	{ "agents", test_agents },
	{ "experiments", test_experiments },
	{ "transitions", test_transitions },
	{ "runs_query", test_runs_query },
	{ "results", test_results },
	{ "aggregates", test_aggregates },
	{ "aggregate_random", test_aggregate_random },
	{ "traces", test_traces },
	{ "group_commit", test_group_commit },
	{ "batch_isolation", test_batch_isolation },
	{ "callback_write", test_callback_write },
	{ "kill9_acknowledged_durable", test_kill9 },
	{ NULL, NULL },
};

const struct fj_suite fj_suite_store = { "store", NULL, NULL, tests };
