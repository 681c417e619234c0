/* Resumable, content-addressed trace storage in the data directory. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth.h"
#include "traces.h"

struct busy_key {
	char key[CTL_TOKEN_HEX + 1];
	struct busy_key *next;
};

struct ctl_traces {
	char *dir;
	pthread_mutex_t lock;
	struct busy_key *busy; /* uploads in progress */
};

struct ctl_trace_upload {
	struct ctl_traces *t;
	char key[CTL_TOKEN_HEX + 1];
	char sha[CTL_TOKEN_HEX + 1];
	int fd;
	uint64_t first, last, total, pos;
};

static int mkdir_p(const char *path)
{
	if (mkdir(path, 0750) == 0 || errno == EEXIST)
		return 0;
	return -errno;
}

int ctl_traces_open(const char *data_dir, struct ctl_traces **out)
{
	struct ctl_traces *t;
	char p[PATH_MAX];
	int r;

	*out = NULL;
	r = mkdir_p(data_dir);
	if (r < 0)
		return r;
	snprintf(p, sizeof(p), "%s/partial", data_dir);
	r = mkdir_p(p);
	if (r < 0)
		return r;
	snprintf(p, sizeof(p), "%s/traces", data_dir);
	r = mkdir_p(p);
	if (r < 0)
		return r;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->dir = strdup(data_dir);
	if (!t->dir) {
		free(t);
		return -ENOMEM;
	}
	pthread_mutex_init(&t->lock, NULL);
	*out = t;
	return 0;
}

void ctl_traces_close(struct ctl_traces *t)
{
	if (!t)
		return;
	while (t->busy) {
		struct busy_key *b = t->busy;

		t->busy = b->next;
		free(b);
	}
	pthread_mutex_destroy(&t->lock);
	free(t->dir);
	free(t);
}

int ctl_traces_name_ok(const char *name)
{
	size_t n = strlen(name), i;

	if (n == 0 || n > 64 || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return 0;
	for (i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

int ctl_traces_sha_ok(const char *s)
{
	size_t i;

	for (i = 0; i < CTL_TOKEN_HEX; i++) {
		char c = s[i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
			return 0;
	}
	return s[CTL_TOKEN_HEX] == 0;
}

static void upload_key(const char *run, const char *name, char *key)
{
	char buf[512];
	int n = snprintf(buf, sizeof(buf), "%s\n%s", run, name);

	ctl_auth_sha256_hex(buf, n > 0 && (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1,
			    key);
}

static void partial_path(struct ctl_traces *t, const char *key, const char *suffix, char *buf,
			 size_t len)
{
	snprintf(buf, len, "%s/partial/%s%s", t->dir, key, suffix);
}

static int file_size(const char *path, uint64_t *size)
{
	struct stat sb;

	if (stat(path, &sb) < 0) {
		*size = 0;
		return errno == ENOENT ? 0 : -errno;
	}
	*size = (uint64_t)sb.st_size;
	return 0;
}

int ctl_traces_held(struct ctl_traces *t, const char *run, const char *name, uint64_t *held)
{
	char key[CTL_TOKEN_HEX + 1], p[PATH_MAX];

	upload_key(run, name, key);
	partial_path(t, key, "", p, sizeof(p));
	return file_size(p, held);
}

/* Meta file: "TOTAL SHA256\n". Missing = no partial upload. */
static int read_meta(const char *path, uint64_t *total, char *sha)
{
	unsigned long long tot;
	FILE *f = fopen(path, "r");
	int n;

	if (!f)
		return errno == ENOENT ? -ENOENT : -errno;
	n = fscanf(f, "%llu %64s", &tot, sha);
	fclose(f);
	if (n != 2)
		return -EINVAL;
	*total = tot;
	return 0;
}

static int write_meta(const char *path, uint64_t total, const char *sha)
{
	FILE *f = fopen(path, "w");
	int r;

	if (!f)
		return -errno;
	fprintf(f, "%llu %s\n", (unsigned long long)total, sha);
	r = fclose(f);
	return r == 0 ? 0 : -EIO;
}

static int busy_take(struct ctl_traces *t, const char *key)
{
	struct busy_key *b;
	int r = 0;

	pthread_mutex_lock(&t->lock);
	for (b = t->busy; b; b = b->next)
		if (strcmp(b->key, key) == 0)
			break;
	if (b) {
		r = -EBUSY;
	} else {
		b = calloc(1, sizeof(*b));
		if (b) {
			memcpy(b->key, key, sizeof(b->key));
			b->next = t->busy;
			t->busy = b;
		} else {
			r = -ENOMEM;
		}
	}
	pthread_mutex_unlock(&t->lock);
	return r;
}

static void busy_release(struct ctl_traces *t, const char *key)
{
	struct busy_key **pp;

	pthread_mutex_lock(&t->lock);
	for (pp = &t->busy; *pp; pp = &(*pp)->next)
		if (strcmp((*pp)->key, key) == 0) {
			struct busy_key *b = *pp;

			*pp = b->next;
			free(b);
			break;
		}
	pthread_mutex_unlock(&t->lock);
}

static void lower(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'F')
			*s = (char)(*s - 'A' + 'a');
}

/* Checks the request against what is held; starts afresh when nothing usable is
 * held or when a PUT from byte 0 replaces an upload of another file. */
static int check_partial(struct ctl_trace_upload *u, const char *data, const char *meta,
			 uint64_t *held)
{
	char old_sha[CTL_TOKEN_HEX + 1];
	uint64_t old_total = 0;
	int r, mr;

	r = file_size(data, held);
	if (r < 0)
		return r;
	mr = read_meta(meta, &old_total, old_sha);
	if (mr < 0 && mr != -ENOENT && mr != -EINVAL)
		return mr;
	if (mr == 0 && *held > 0) {
		if (old_total == u->total && strcmp(old_sha, u->sha) == 0)
			return 0;
		if (u->first != 0)
			return -ESTALE;
	}
	if (truncate(data, 0) < 0 && errno != ENOENT)
		return -errno;
	*held = 0;
	return write_meta(meta, u->total, u->sha);
}

int ctl_traces_begin(struct ctl_traces *t, const char *run, const char *name, uint64_t first,
		     uint64_t last, uint64_t total, const char *sha_hex,
		     struct ctl_trace_upload **out, uint64_t *held)
{
	char data[PATH_MAX], meta[PATH_MAX];
	struct ctl_trace_upload *u;
	int r;

	*out = NULL;
	*held = 0;
	if (first > last || last >= total || !ctl_traces_sha_ok(sha_hex))
		return -EINVAL;
	u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	u->t = t;
	u->fd = -1;
	u->first = u->pos = first;
	u->last = last;
	u->total = total;
	memcpy(u->sha, sha_hex, CTL_TOKEN_HEX + 1);
	lower(u->sha);
	upload_key(run, name, u->key);
	r = busy_take(t, u->key);
	if (r < 0) {
		free(u);
		return r;
	}
	partial_path(t, u->key, "", data, sizeof(data));
	partial_path(t, u->key, ".meta", meta, sizeof(meta));
	r = check_partial(u, data, meta, held);
	if (r == 0 && *held == total) {
		/* Every byte arrived before, but the upload was cut off before it
		 * was finished (a crash): nothing to append, finishing stores it. */
		u->first = u->pos = total;
		u->last = total - 1;
	} else if (r == 0 && *held != first) {
		r = -ERANGE;
	}
	if (r == 0) {
		u->fd = open(data, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
		if (u->fd < 0 || lseek(u->fd, (off_t)first, SEEK_SET) < 0)
			r = -errno;
	}
	if (r < 0) {
		if (u->fd >= 0)
			close(u->fd);
		busy_release(t, u->key);
		free(u);
		return r;
	}
	*out = u;
	return 0;
}

int ctl_traces_write(struct ctl_trace_upload *u, const void *data, size_t len)
{
	const char *p = data;

	if (u->pos + len > u->last + 1)
		return -EOVERFLOW;
	while (len) {
		ssize_t n = write(u->fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		len -= (size_t)n;
		u->pos += (uint64_t)n;
	}
	return 0;
}

static void upload_free(struct ctl_trace_upload *u)
{
	if (u->fd >= 0)
		close(u->fd);
	busy_release(u->t, u->key);
	free(u);
}

void ctl_traces_abort(struct ctl_trace_upload *u)
{
	if (!u)
		return;
	if (ftruncate(u->fd, (off_t)u->first) < 0)
		u->first = 0; /* nothing better to do: the SHA check catches damage */
	upload_free(u);
}

static int file_sha256(int fd, char *hex)
{
	static const char digits[] = "0123456789abcdef";
	unsigned char buf[65536], md[EVP_MAX_MD_SIZE];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int mdlen = 0, i;
	off_t off = 0;
	int r = 0;

	if (!ctx)
		return -ENOMEM;
	if (!EVP_DigestInit_ex(ctx, EVP_sha256(), NULL))
		r = -EIO;
	while (r == 0) {
		ssize_t n = pread(fd, buf, sizeof(buf), off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			r = -errno;
		if (n <= 0)
			break;
		if (!EVP_DigestUpdate(ctx, buf, (size_t)n))
			r = -EIO;
		off += n;
	}
	if (r == 0 && !EVP_DigestFinal_ex(ctx, md, &mdlen))
		r = -EIO;
	EVP_MD_CTX_free(ctx);
	for (i = 0; r == 0 && i < mdlen; i++) {
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 15];
	}
	hex[2 * mdlen] = 0;
	return r;
}

static int fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), r = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		r = -errno;
	close(fd);
	return r;
}

/* Moves a verified partial file to its content address, durably. */
static int store_file(struct ctl_trace_upload *u, const char *data)
{
	char dir[PATH_MAX], target[PATH_MAX + 80];
	struct stat sb;
	int r;

	snprintf(dir, sizeof(dir), "%s/traces/%.2s", u->t->dir, u->sha);
	snprintf(target, sizeof(target), "%s/%s", dir, u->sha);
	r = mkdir_p(dir);
	if (r < 0)
		return r;
	if (stat(target, &sb) == 0 && (uint64_t)sb.st_size == u->total) {
		unlink(data); /* the same bytes are stored already */
		return 0;
	}
	if (fsync(u->fd) < 0 || rename(data, target) < 0)
		return -errno;
	r = fsync_dir(dir);
	if (r == 0) {
		snprintf(dir, sizeof(dir), "%s/traces", u->t->dir);
		r = fsync_dir(dir);
	}
	return r;
}

int ctl_traces_finish(struct ctl_trace_upload *u, int *complete, uint64_t *held)
{
	char data[PATH_MAX], meta[PATH_MAX], got[2 * EVP_MAX_MD_SIZE + 1];
	int r;

	*complete = 0;
	*held = u->first;
	if (u->pos != u->last + 1) {
		ctl_traces_abort(u);
		return -EPIPE;
	}
	*held = u->pos;
	if (u->pos < u->total) {
		upload_free(u);
		return 0;
	}
	partial_path(u->t, u->key, "", data, sizeof(data));
	partial_path(u->t, u->key, ".meta", meta, sizeof(meta));
	r = file_sha256(u->fd, got);
	if (r == 0 && strcmp(got, u->sha) != 0) {
		unlink(data);
		unlink(meta);
		*held = 0;
		r = -EBADMSG;
	} else if (r == 0) {
		r = store_file(u, data);
		if (r == 0) {
			unlink(meta);
			*complete = 1;
		}
	}
	upload_free(u);
	return r;
}

int ctl_traces_path(struct ctl_traces *t, const char *sha_hex, char *buf, size_t len)
{
	if (!ctl_traces_sha_ok(sha_hex))
		return -EINVAL;
	snprintf(buf, len, "%s/traces/%.2s/%s", t->dir, sha_hex, sha_hex);
	return access(buf, R_OK) == 0 ? 0 : -ENOENT;
}
