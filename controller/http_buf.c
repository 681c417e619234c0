/* Growable, capped text buffer. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_buf.h"

void ctl_buf_init(struct ctl_buf *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->max = max;
}

static int grow(struct ctl_buf *b, size_t need)
{
	size_t cap = b->cap ? b->cap : 256;
	char *p;

	if (b->err)
		return b->err;
	if (b->len + need + 1 <= b->cap)
		return 0;
	if (b->len + need + 1 > b->max) {
		b->err = -EMSGSIZE;
		return b->err;
	}
	while (cap < b->len + need + 1)
		cap *= 2;
	if (cap > b->max)
		cap = b->max;
	p = realloc(b->p, cap);
	if (!p) {
		b->err = -ENOMEM;
		return b->err;
	}
	b->p = p;
	b->cap = cap;
	return 0;
}

void ctl_buf_append(struct ctl_buf *b, const char *s, size_t n)
{
	if (grow(b, n) < 0)
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = 0;
}

void ctl_buf_puts(struct ctl_buf *b, const char *s)
{
	ctl_buf_append(b, s, strlen(s));
}

void ctl_buf_printf(struct ctl_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || grow(b, (size_t)n) < 0)
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void ctl_buf_csv(struct ctl_buf *b, const char *s)
{
	const char *q;

	if (!s[strcspn(s, ",\"\r\n")]) {
		ctl_buf_puts(b, s);
		return;
	}
	ctl_buf_append(b, "\"", 1);
	for (q = s; *q; q++) {
		if (*q == '"')
			ctl_buf_append(b, "\"", 1);
		ctl_buf_append(b, q, 1);
	}
	ctl_buf_append(b, "\"", 1);
}

char *ctl_buf_take(struct ctl_buf *b, size_t *len)
{
	char *p;

	if (b->err || grow(b, 0) < 0) {
		ctl_buf_free(b);
		return NULL;
	}
	p = b->p;
	*len = b->len;
	b->p = NULL;
	b->len = b->cap = 0;
	return p;
}

void ctl_buf_free(struct ctl_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}
