/*
 * fjord-unit: runs every CUnit suite listed in suites.def, or only those
 * named on the command line as SUITE or SUITE/TEST.
 *
 *   fjord-unit            all suites
 *   fjord-unit -l         list suites and tests
 *   fjord-unit proto      one suite
 *   fjord-unit proto/json_roundtrip   one test
 */
#include <CUnit/Basic.h>
#include <fcntl.h>
#include <ftw.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fj_test.h"

#define FJ_SUITE(n) extern const struct fj_suite fj_suite_##n;
#include "suites.def"
#undef FJ_SUITE

static const struct fj_suite *const suites[] = {
#define FJ_SUITE(n) &fj_suite_##n,
#include "suites.def"
#undef FJ_SUITE
};

#define NSUITES (sizeof(suites) / sizeof(suites[0]))

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(p);
}

int fj_test_in_ns(const char *ns, void (*fn)(void *), void *arg)
{
	char p[64];
	int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC), fd;

	snprintf(p, sizeof(p), "/run/netns/%s", ns);
	fd = open(p, O_RDONLY | O_CLOEXEC);
	if (self < 0 || fd < 0 || setns(fd, CLONE_NEWNET) < 0) {
		if (self >= 0)
			close(self);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	fn(arg);
	setns(self, CLONE_NEWNET);
	close(self);
	close(fd);
	return 0;
}

int fj_test_rmtree(const char *dir)
{
	return nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

const char *fj_test_shared_dir(void)
{
	static const char *const cands[] = { "../shared/data", "shared/data" };
	const char *env = getenv("FJORD_SHARED_DATA");
	size_t i;

	if (env)
		return env;
	for (i = 0; i < sizeof(cands) / sizeof(cands[0]); i++)
		if (access(cands[i], R_OK) == 0)
			return cands[i];
	return NULL;
}

/* A selector matches when it names the suite, or the suite and this test. */
static int selected(int argc, char **argv, const char *suite, const char *test)
{
	int i;

	if (argc == 0)
		return 1;
	for (i = 0; i < argc; i++) {
		const char *slash = strchr(argv[i], '/');
		size_t n = slash ? (size_t)(slash - argv[i]) : strlen(argv[i]);

		if (strlen(suite) != n || strncmp(argv[i], suite, n) != 0)
			continue;
		if (!slash || !test || strcmp(slash + 1, test) == 0)
			return 1;
	}
	return 0;
}

static int add_suite(const struct fj_suite *s, int argc, char **argv)
{
	const struct fj_test *t;
	CU_pSuite cs = NULL;

	for (t = s->tests; t->name; t++) {
		if (!selected(argc, argv, s->name, t->name))
			continue;
		if (!cs)
			cs = CU_add_suite(s->name, s->init, s->cleanup);
		if (!cs || !CU_add_test(cs, t->name, t->fn))
			return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	unsigned int failed;
	size_t i;

	if (argc > 1 && strcmp(argv[1], "-l") == 0) {
		for (i = 0; i < NSUITES; i++) {
			const struct fj_test *t;

			for (t = suites[i]->tests; t->name; t++)
				printf("%s/%s\n", suites[i]->name, t->name);
		}
		return 0;
	}
	if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		printf("usage: fjord-unit [-l] [SUITE | SUITE/TEST]...\n");
		return 0;
	}
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	for (i = 0; i < NSUITES; i++)
		if (add_suite(suites[i], argc - 1, argv + 1) < 0) {
			fprintf(stderr, "fjord-unit: %s\n", CU_get_error_msg());
			return 2;
		}
	if (CU_get_registry()->uiNumberOfTests == 0) {
		fprintf(stderr, "fjord-unit: no test matches\n");
		CU_cleanup_registry();
		return 2;
	}
	CU_basic_set_mode(CU_BRM_NORMAL);
	CU_basic_run_tests();
	failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
	printf("\n");
	CU_cleanup_registry();
	return failed ? 1 : 0;
}
