#include "agent_arena.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct arena_block {
	struct arena_block *next;
	max_align_t data[];
};

void agent_arena_init(struct agent_arena *a, size_t limit)
{
	a->head = NULL;
	a->used = 0;
	a->limit = limit;
}

void agent_arena_free(struct agent_arena *a)
{
	while (a->head) {
		struct arena_block *n = a->head->next;

		free(a->head);
		a->head = n;
	}
	a->used = 0;
}

void *agent_arena_alloc(struct agent_arena *a, size_t len)
{
	struct arena_block *b;

	/* One block per allocation: messages hold tens of fields, not millions. */
	if (a->limit && (len > a->limit || a->used > a->limit - len))
		return NULL;
	b = calloc(1, sizeof(*b) + len + 1);
	if (!b)
		return NULL;
	b->next = a->head;
	a->head = b;
	a->used += len;
	return b->data;
}

char *agent_arena_strdup(struct agent_arena *a, const char *s)
{
	size_t n = strlen(s);
	char *d = agent_arena_alloc(a, n + 1);

	if (d)
		memcpy(d, s, n + 1);
	return d;
}

char *agent_arena_printf(struct agent_arena *a, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return agent_arena_strdup(a, buf);
}
