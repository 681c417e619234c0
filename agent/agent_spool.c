/* On-disk spool: atomic writes, listing, acknowledgement, crash recovery. */
#include "agent_spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fj_clock.h"
#include "fj_log.h"
#include "fjord.pb-c.h"

#define SPOOL_DIR_MAX  300
#define SPOOL_PATH_MAX 512

struct agent_spool {
	char dir[SPOOL_DIR_MAX];
	char runs[SPOOL_DIR_MAX];
	uint64_t cap;
};

int agent_spool_valid_name(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > AGENT_ID_MAX || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return 0;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.'))
			return 0;
	}
	return 1;
}

static int mkdir_p(const char *path)
{
	char tmp[SPOOL_PATH_MAX];
	size_t i;

	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	for (i = 1; tmp[i]; i++) {
		if (tmp[i] != '/')
			continue;
		tmp[i] = 0;
		if (mkdir(tmp, 0750) < 0 && errno != EEXIST)
			return -errno;
		tmp[i] = '/';
	}
	if (mkdir(tmp, 0750) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

static int run_path(const struct agent_spool *sp, const char *run_id, const char *file, char *buf,
		    size_t len)
{
	int n;

	if (!agent_spool_valid_name(run_id))
		return -EINVAL;
	if (file)
		n = snprintf(buf, len, "%s/%s/%s", sp->runs, run_id, file);
	else
		n = snprintf(buf, len, "%s/%s", sp->runs, run_id);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* Write to a temporary file, fsync it, rename it into place, fsync the folder. */
static int atomic_write(const char *dir, const char *final, const void *data, size_t len)
{
	char tmp[SPOOL_PATH_MAX + 32];
	const uint8_t *p = data;
	int fd, rc = 0;

	snprintf(tmp, sizeof(tmp), "%s/.tmp.%ld.%llu", dir, (long)getpid(),
		 (unsigned long long)fj_mono_us());
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (fd < 0)
		return -errno;
	while (len > 0) {
		ssize_t w = write(fd, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			rc = -errno;
			break;
		}
		p += w;
		len -= (size_t)w;
	}
	if (!rc && fsync(fd) < 0)
		rc = -errno;
	if (close(fd) < 0 && !rc)
		rc = -errno;
	if (!rc && rename(tmp, final) < 0)
		rc = -errno;
	if (rc) {
		unlink(tmp);
		return rc;
	}
	return fsync_dir(dir);
}

static int remove_temps(const char *run_dir)
{
	DIR *d = opendir(run_dir);
	struct dirent *e;
	char p[SPOOL_PATH_MAX + 300];

	if (!d)
		return -errno;
	while ((e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, ".tmp.", 5) != 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", run_dir, e->d_name);
		if (unlink(p) == 0)
			fj_warn("spool: removed %s, left half-written by a crash", p);
	}
	closedir(d);
	return 0;
}

/* Left when the result is acknowledged while traces remain (one was refused). */
#define ACKED_MARKER "acked"

static int is_acked(const struct agent_spool *sp, const char *run_id)
{
	char p[SPOOL_PATH_MAX];
	struct stat st;

	return run_path(sp, run_id, ACKED_MARKER, p, sizeof(p)) == 0 && stat(p, &st) == 0;
}

static int recover_run(struct agent_spool *sp, const char *run_id)
{
	Fjord__V1__Result r = FJORD__V1__RESULT__INIT;
	char dir[SPOOL_PATH_MAX];
	int rc;

	rc = run_path(sp, run_id, NULL, dir, sizeof(dir));
	if (rc)
		return rc;
	remove_temps(dir);
	if (agent_spool_has_result(sp, run_id) || is_acked(sp, run_id))
		return 0;
	r.run_id = (char *)run_id;
	r.ok = 0;
	r.error = "interrupted: the agent stopped while the run was in progress";
	r.finished_ms = fj_wall_ms();
	rc = agent_spool_put_result(sp, run_id, &r);
	if (rc == 0)
		fj_warn("spool: run %s was interrupted by an agent restart; reporting it failed",
			run_id);
	return rc == 0 ? 1 : rc;
}

int agent_spool_open(const char *dir, uint64_t cap, struct agent_spool **out,
		     unsigned int *recovered)
{
	struct agent_spool *sp;
	struct dirent *e;
	unsigned int nrec = 0;
	DIR *d;
	int rc;

	sp = calloc(1, sizeof(*sp));
	if (!sp)
		return -ENOMEM;
	if (snprintf(sp->dir, sizeof(sp->dir), "%s", dir) >= (int)sizeof(sp->dir) ||
	    snprintf(sp->runs, sizeof(sp->runs), "%s/runs", dir) >= (int)sizeof(sp->runs)) {
		free(sp);
		return -ENAMETOOLONG;
	}
	sp->cap = cap;
	rc = mkdir_p(sp->runs);
	if (rc) {
		free(sp);
		return rc;
	}
	d = opendir(sp->runs);
	if (!d) {
		rc = -errno;
		free(sp);
		return rc;
	}
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.' || !agent_spool_valid_name(e->d_name))
			continue;
		rc = recover_run(sp, e->d_name);
		if (rc > 0)
			nrec++;
		else if (rc < 0)
			fj_err("spool: cannot recover run %s: %s", e->d_name, strerror(-rc));
	}
	closedir(d);
	if (recovered)
		*recovered = nrec;
	*out = sp;
	return 0;
}

void agent_spool_close(struct agent_spool *sp)
{
	free(sp);
}

uint64_t agent_spool_cap(const struct agent_spool *sp)
{
	return sp->cap;
}

static uint64_t dir_bytes(const char *path)
{
	char p[SPOOL_PATH_MAX + 300];
	struct dirent *e;
	struct stat st;
	uint64_t sum = 0;
	DIR *d = opendir(path);

	if (!d)
		return 0;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
		if (lstat(p, &st) < 0)
			continue;
		if (S_ISDIR(st.st_mode))
			sum += dir_bytes(p);
		else
			sum += (uint64_t)st.st_size;
	}
	closedir(d);
	return sum;
}

uint64_t agent_spool_usage(const struct agent_spool *sp)
{
	return dir_bytes(sp->runs);
}

int agent_spool_admit(const struct agent_spool *sp)
{
	return agent_spool_usage(sp) >= sp->cap ? -ENOSPC : 0;
}

int agent_spool_run_begin(struct agent_spool *sp, const char *run_id)
{
	char dir[SPOOL_PATH_MAX];
	int rc = run_path(sp, run_id, NULL, dir, sizeof(dir));

	if (rc)
		return rc;
	if (mkdir(dir, 0750) < 0)
		return -errno;
	return fsync_dir(sp->runs);
}

int agent_spool_run_exists(const struct agent_spool *sp, const char *run_id)
{
	char dir[SPOOL_PATH_MAX];
	struct stat st;

	if (run_path(sp, run_id, NULL, dir, sizeof(dir)))
		return 0;
	return stat(dir, &st) == 0 && S_ISDIR(st.st_mode);
}

int agent_spool_has_result(const struct agent_spool *sp, const char *run_id)
{
	char p[SPOOL_PATH_MAX];
	struct stat st;

	if (run_path(sp, run_id, "result.pb", p, sizeof(p)))
		return 0;
	return stat(p, &st) == 0;
}

int agent_spool_put_trace(struct agent_spool *sp, const char *run_id, const char *name,
			  const void *data, size_t len)
{
	char dir[SPOOL_PATH_MAX], file[SPOOL_PATH_MAX];
	char fname[AGENT_ID_MAX + 3];
	int rc;

	if (!agent_spool_valid_name(name))
		return -EINVAL;
	snprintf(fname, sizeof(fname), "t.%s", name);
	rc = run_path(sp, run_id, NULL, dir, sizeof(dir));
	if (!rc)
		rc = run_path(sp, run_id, fname, file, sizeof(file));
	if (rc)
		return rc;
	return atomic_write(dir, file, data, len);
}

int agent_spool_put_result(struct agent_spool *sp, const char *run_id, const Fjord__V1__Result *r)
{
	char dir[SPOOL_PATH_MAX], file[SPOOL_PATH_MAX];
	size_t len = fjord__v1__result__get_packed_size(r);
	uint8_t *buf;
	int rc;

	if (len > AGENT_RESULT_MAX)
		return -EMSGSIZE;
	rc = run_path(sp, run_id, NULL, dir, sizeof(dir));
	if (!rc)
		rc = run_path(sp, run_id, "result.pb", file, sizeof(file));
	if (rc)
		return rc;
	/* A folder missing here means the run never began; make it so results are never lost. */
	if (mkdir(dir, 0750) < 0 && errno != EEXIST)
		return -errno;
	buf = malloc(len ? len : 1);
	if (!buf)
		return -ENOMEM;
	fjord__v1__result__pack(r, buf);
	rc = atomic_write(dir, file, buf, len);
	free(buf);
	return rc;
}

struct run_entry {
	char id[AGENT_ID_MAX + 1];
	int64_t mtime_ns;
};

static int run_entry_cmp(const void *a, const void *b)
{
	const struct run_entry *x = a, *y = b;

	if (x->mtime_ns != y->mtime_ns)
		return x->mtime_ns < y->mtime_ns ? -1 : 1;
	return strcmp(x->id, y->id);
}

/* Collects finished runs (those with result.pb), oldest result first. */
static int list_runs(const struct agent_spool *sp, struct run_entry **out, size_t *n, size_t max)
{
	struct run_entry *runs = NULL;
	size_t cnt = 0, cap = 0;
	struct dirent *e;
	DIR *d = opendir(sp->runs);

	if (!d)
		return -errno;
	while ((e = readdir(d)) != NULL && cnt < max) {
		char p[SPOOL_PATH_MAX];
		struct stat st;

		if (!agent_spool_valid_name(e->d_name) ||
		    run_path(sp, e->d_name, "result.pb", p, sizeof(p)))
			continue;
		/* Finished: a result, or an acknowledged one with traces still to go. */
		if (stat(p, &st) < 0 &&
		    (run_path(sp, e->d_name, ACKED_MARKER, p, sizeof(p)) || stat(p, &st) < 0))
			continue;
		if (cnt == cap) {
			struct run_entry *nr;

			cap = cap ? cap * 2 : 32;
			nr = realloc(runs, cap * sizeof(*runs));
			if (!nr) {
				free(runs);
				closedir(d);
				return -ENOMEM;
			}
			runs = nr;
		}
		memcpy(runs[cnt].id, e->d_name, strnlen(e->d_name, AGENT_ID_MAX) + 1);
		runs[cnt].id[AGENT_ID_MAX] = 0;
		runs[cnt].mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
		cnt++;
	}
	closedir(d);
	if (cnt)
		qsort(runs, cnt, sizeof(*runs), run_entry_cmp);
	*out = runs;
	*n = cnt;
	return 0;
}

static int push_item(struct agent_spool_item **items, size_t *n, size_t *cap, const char *run_id,
		     const char *name, uint64_t size)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 32;
		struct agent_spool_item *ni = realloc(*items, nc * sizeof(**items));

		if (!ni)
			return -ENOMEM;
		*items = ni;
		*cap = nc;
	}
	/* Both were checked by agent_spool_valid_name(), so they fit. */
	memcpy((*items)[*n].run_id, run_id, strnlen(run_id, AGENT_ID_MAX) + 1);
	(*items)[*n].run_id[AGENT_ID_MAX] = 0;
	memcpy((*items)[*n].name, name, strnlen(name, AGENT_ID_MAX) + 1);
	(*items)[*n].name[AGENT_ID_MAX] = 0;
	(*items)[*n].size = size;
	(*n)++;
	return 0;
}

static int list_traces(const struct agent_spool *sp, const char *run_id,
		       struct agent_spool_item **items, size_t *n, size_t *cap, size_t max)
{
	char dir[SPOOL_PATH_MAX], p[SPOOL_PATH_MAX + 300];
	struct dirent *e;
	struct stat st;
	DIR *d;
	int rc = 0;

	run_path(sp, run_id, NULL, dir, sizeof(dir));
	d = opendir(dir);
	if (!d)
		return 0; /* acknowledged meanwhile */
	while (!rc && *n < max && (e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, "t.", 2) != 0 || !agent_spool_valid_name(e->d_name + 2))
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		if (stat(p, &st) < 0)
			continue;
		rc = push_item(items, n, cap, run_id, e->d_name + 2, (uint64_t)st.st_size);
	}
	closedir(d);
	return rc;
}

int agent_spool_list(const struct agent_spool *sp, struct agent_spool_item **items, size_t *n,
		     size_t max)
{
	struct agent_spool_item *it = NULL;
	struct run_entry *runs = NULL;
	size_t nruns = 0, cnt = 0, cap = 0, i;
	int rc;

	rc = list_runs(sp, &runs, &nruns, max);
	for (i = 0; !rc && i < nruns && cnt < max; i++) {
		char p[SPOOL_PATH_MAX];
		struct stat st;

		/*
		 * Traces first, the result last: result.pb marks the run finished,
		 * so it stays until the traces are acknowledged too.
		 */
		rc = list_traces(sp, runs[i].id, &it, &cnt, &cap, max);
		run_path(sp, runs[i].id, "result.pb", p, sizeof(p));
		if (!rc && cnt < max && stat(p, &st) == 0)
			rc = push_item(&it, &cnt, &cap, runs[i].id, "", (uint64_t)st.st_size);
	}
	free(runs);
	if (rc) {
		free(it);
		return rc;
	}
	*items = it;
	*n = cnt;
	return 0;
}

int agent_spool_read_result(const struct agent_spool *sp, const char *run_id, uint8_t **buf,
			    size_t *len)
{
	char p[SPOOL_PATH_MAX];
	struct stat st;
	uint8_t *b;
	ssize_t r;
	int fd, rc;

	rc = run_path(sp, run_id, "result.pb", p, sizeof(p));
	if (rc)
		return rc;
	fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || st.st_size > AGENT_RESULT_MAX) {
		close(fd);
		return -EMSGSIZE;
	}
	b = malloc((size_t)st.st_size + 1);
	if (!b) {
		close(fd);
		return -ENOMEM;
	}
	r = pread(fd, b, (size_t)st.st_size, 0);
	close(fd);
	if (r != st.st_size) {
		free(b);
		return -EIO;
	}
	*buf = b;
	*len = (size_t)r;
	return 0;
}

int agent_spool_trace_path(const struct agent_spool *sp, const char *run_id, const char *name,
			   char *buf, size_t len)
{
	char fname[AGENT_ID_MAX + 3];

	if (!agent_spool_valid_name(name))
		return -EINVAL;
	snprintf(fname, sizeof(fname), "t.%s", name);
	return run_path(sp, run_id, fname, buf, len);
}

/* Removes the run folder if nothing is left in it; the result always goes last. */
static void remove_run_if_empty(struct agent_spool *sp, const char *run_id)
{
	char dir[SPOOL_PATH_MAX], marker[SPOOL_PATH_MAX];
	struct dirent *e;
	int others = 0;
	DIR *d;

	if (run_path(sp, run_id, NULL, dir, sizeof(dir)) ||
	    run_path(sp, run_id, ACKED_MARKER, marker, sizeof(marker)))
		return;
	d = opendir(dir);
	if (!d)
		return;
	while ((e = readdir(d)) != NULL)
		others += strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
			  strcmp(e->d_name, ACKED_MARKER);
	closedir(d);
	if (others)
		return;
	unlink(marker);
	if (rmdir(dir) == 0)
		fsync_dir(sp->runs);
}

static const char *marker_path(const struct agent_spool *sp, const char *run_id, char *buf,
			       size_t len)
{
	run_path(sp, run_id, ACKED_MARKER, buf, len);
	return buf;
}

int agent_spool_ack_result(struct agent_spool *sp, const char *run_id)
{
	char p[SPOOL_PATH_MAX], dir[SPOOL_PATH_MAX], m[SPOOL_PATH_MAX];
	int rc;

	rc = run_path(sp, run_id, "result.pb", p, sizeof(p));
	if (!rc)
		rc = run_path(sp, run_id, NULL, dir, sizeof(dir));
	if (rc)
		return rc;
	if (access(p, F_OK) < 0)
		return -errno;
	/*
	 * Traces may remain (one the controller refused): mark the run so a
	 * restart neither reports it again nor forgets those traces.
	 */
	rc = atomic_write(dir, marker_path(sp, run_id, m, sizeof(m)), "", 0);
	if (rc)
		return rc;
	if (unlink(p) < 0)
		return -errno;
	fsync_dir(dir);
	remove_run_if_empty(sp, run_id);
	return 0;
}

int agent_spool_ack_trace(struct agent_spool *sp, const char *run_id, const char *name)
{
	char p[SPOOL_PATH_MAX], dir[SPOOL_PATH_MAX];
	int rc;

	rc = agent_spool_trace_path(sp, run_id, name, p, sizeof(p));
	if (!rc)
		rc = run_path(sp, run_id, NULL, dir, sizeof(dir));
	if (rc)
		return rc;
	if (unlink(p) < 0)
		return -errno;
	fsync_dir(dir);
	remove_run_if_empty(sp, run_id);
	return 0;
}
