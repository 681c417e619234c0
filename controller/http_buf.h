/* ctl_buf: a growable text buffer with a hard cap, for answers built in memory. */
#ifndef CTL_HTTP_BUF_H
#define CTL_HTTP_BUF_H

#include <stddef.h>

struct ctl_buf {
	char *p; /* NUL-terminated while len < cap */
	size_t len, cap, max;
	int err; /* sticky: -ENOMEM or -EMSGSIZE once an append failed */
};

/* Starts an empty buffer that refuses to grow beyond max bytes. */
void ctl_buf_init(struct ctl_buf *b, size_t max);
void ctl_buf_append(struct ctl_buf *b, const char *s, size_t n);
void ctl_buf_puts(struct ctl_buf *b, const char *s);
void ctl_buf_printf(struct ctl_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as one CSV field (RFC 4180 quoting when needed). */
void ctl_buf_csv(struct ctl_buf *b, const char *s);
/* Hands the text over (caller frees) and resets b; NULL after an error. */
char *ctl_buf_take(struct ctl_buf *b, size_t *len);
void ctl_buf_free(struct ctl_buf *b);

#endif
