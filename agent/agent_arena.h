/*
 * A bump allocator for building protobuf messages: every string and array of a
 * message under construction comes from one arena and is freed with it, so a
 * message needs no field-by-field free function.
 */
#ifndef AGENT_ARENA_H
#define AGENT_ARENA_H

#include <stddef.h>

struct agent_arena {
	struct arena_block *head;
	size_t used;  /* bytes handed out, all blocks */
	size_t limit; /* 0: no limit */
};

/* limit caps the total; past it allocations return NULL. */
void agent_arena_init(struct agent_arena *a, size_t limit);
void agent_arena_free(struct agent_arena *a);
/* Zeroed memory, or NULL. */
void *agent_arena_alloc(struct agent_arena *a, size_t len);
char *agent_arena_strdup(struct agent_arena *a, const char *s);
char *agent_arena_printf(struct agent_arena *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
