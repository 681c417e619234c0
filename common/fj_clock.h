/* Clocks. Protocol code never calls these: it is handed "now". */
#ifndef FJ_CLOCK_H
#define FJ_CLOCK_H

#include <stdint.h>

/* Monotonic time in milliseconds and microseconds. */
uint64_t fj_mono_ms(void);
uint64_t fj_mono_us(void);
/* Wall-clock time in milliseconds since the Unix epoch. */
int64_t fj_wall_ms(void);
/* Formats epoch milliseconds as RFC 3339 UTC ("2026-11-26T20:36:54.123Z"). */
void fj_format_time(int64_t ms, char *buf, unsigned int len);
/* Parses RFC 3339 UTC or plain epoch milliseconds; returns 0 or -EINVAL. */
int fj_parse_time(const char *s, int64_t *ms);

#endif
