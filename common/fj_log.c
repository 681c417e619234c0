#include "fj_log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *log_tag = "fjord";
static enum fj_log_level log_max = FJ_LOG_INFO;
static const char *const level_names[] = { "err", "warn", "info", "debug" };

void fj_log_init(const char *tag, enum fj_log_level max)
{
	log_tag = tag;
	log_max = max;
}

void fj_log_set_level(enum fj_log_level max)
{
	log_max = max;
}

int fj_log_parse_level(const char *s, enum fj_log_level *out)
{
	int i;

	for (i = 0; i <= FJ_LOG_DEBUG; i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum fj_log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

void fj_log(enum fj_log_level lvl, const char *fmt, ...)
{
	char line[1024];
	struct timespec ts;
	struct tm tm;
	va_list ap;

	if (lvl > log_max)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* One write per line so that lines of several processes do not mix. */
	fprintf(stderr, "%02d:%02d:%02d.%03ld %s %s: %s\n", tm.tm_hour, tm.tm_min, tm.tm_sec,
		ts.tv_nsec / 1000000, log_tag, level_names[lvl], line);
}
