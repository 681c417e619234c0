/*
 * ctl_traces: trace files in the data directory. Uploads resume: the bytes
 * received so far live in DATA/partial/KEY (KEY = SHA-256 of "run\nname"),
 * with DATA/partial/KEY.meta recording the announced total and SHA-256.
 * A completed file is checked, fsync'd and renamed to its content address
 * DATA/traces/ab/abcdef... (its own SHA-256), so equal traces are stored once.
 * Only one upload per (run, name) runs at a time.
 */
#ifndef CTL_TRACES_H
#define CTL_TRACES_H

#include <stddef.h>
#include <stdint.h>

struct ctl_traces;
struct ctl_trace_upload;

/* Creates DATA/partial and DATA/traces when missing. */
int ctl_traces_open(const char *data_dir, struct ctl_traces **out);
void ctl_traces_close(struct ctl_traces *t);

/* "name" is [A-Za-z0-9._-]{1,64} and not "." or "..". */
int ctl_traces_name_ok(const char *name);
/* Whether s is 64 lower- or upper-case hex digits. */
int ctl_traces_sha_ok(const char *s);

/* Bytes held for a partial upload of (run, name); 0 when none. */
int ctl_traces_held(struct ctl_traces *t, const char *run, const char *name, uint64_t *held);

/*
 * Starts appending bytes first..last of a file of total bytes whose SHA-256
 * is sha_hex. Errors: -EBUSY another upload of (run, name) is running;
 * -ERANGE first is not what is held (*held says what is); -ESTALE a partial
 * upload with another total or SHA-256 exists and first is not 0 (a PUT
 * from byte 0 replaces it). On success *out is the upload, ended by
 * ctl_traces_finish or ctl_traces_abort. When every byte of the file was
 * held already (an upload cut off between its last byte and its end),
 * *held = total: the request's bytes are not needed (do not write them) and
 * ctl_traces_finish checks and stores the file.
 */
int ctl_traces_begin(struct ctl_traces *t, const char *run, const char *name, uint64_t first,
		     uint64_t last, uint64_t total, const char *sha_hex,
		     struct ctl_trace_upload **out, uint64_t *held);
/* Appends body bytes. -EOVERFLOW when they go past last (nothing written). */
int ctl_traces_write(struct ctl_trace_upload *u, const void *data, size_t len);
/*
 * Ends the request's range. Returns -EPIPE when fewer bytes than announced
 * arrived (the range is dropped, earlier ones kept). When the file is now
 * complete: -EBADMSG if its SHA-256 differs (the partial upload is
 * discarded), else it is stored and *complete = 1, *held = total. Otherwise
 * *complete = 0 and *held is what is held now. Frees u in every case.
 */
int ctl_traces_finish(struct ctl_trace_upload *u, int *complete, uint64_t *held);
/* Drops what this request appended (a broken connection) and frees u. */
void ctl_traces_abort(struct ctl_trace_upload *u);

/* Path of the stored file with this SHA-256 into buf. 0, or -ENOENT when absent. */
int ctl_traces_path(struct ctl_traces *t, const char *sha_hex, char *buf, size_t len);

#endif
