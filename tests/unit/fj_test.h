/*
 * Shared shape of every CUnit suite. A test file defines one
 * struct fj_suite named fj_suite_NAME and lists NAME in suites.def.
 */
#ifndef FJ_TEST_H
#define FJ_TEST_H

#include <CUnit/CUnit.h>

struct fj_test {
	const char *name;
	void (*fn)(void);
};

struct fj_suite {
	const char *name;
	int (*init)(void);	     /* may be NULL */
	int (*cleanup)(void);	     /* may be NULL */
	const struct fj_test *tests; /* ends with { NULL, NULL } */
};

/* Removes a directory tree a test made (no links followed). 0 or -1. */
int fj_test_rmtree(const char *dir);

/* Directory with the shared test data (kernel captures), or NULL. */
const char *fj_test_shared_dir(void);

/*
 * Runs fn(arg) with the calling thread in network namespace ns (a name
 * under /run/netns), then comes back. 0, or -1 if ns cannot be entered.
 */
int fj_test_in_ns(const char *ns, void (*fn)(void *), void *arg);

#endif
