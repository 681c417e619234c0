/* Logging to stderr with a level and a program tag. */
#ifndef FJ_LOG_H
#define FJ_LOG_H

enum fj_log_level { FJ_LOG_ERR, FJ_LOG_WARN, FJ_LOG_INFO, FJ_LOG_DEBUG };

/* Sets the tag printed before each line (not copied: keep it alive). */
void fj_log_init(const char *tag, enum fj_log_level max);
void fj_log_set_level(enum fj_log_level max);
/* Parses "err", "warn", "info" or "debug"; returns -EINVAL otherwise. */
int fj_log_parse_level(const char *s, enum fj_log_level *out);
void fj_log(enum fj_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define fj_err(...)   fj_log(FJ_LOG_ERR, __VA_ARGS__)
#define fj_warn(...)  fj_log(FJ_LOG_WARN, __VA_ARGS__)
#define fj_info(...)  fj_log(FJ_LOG_INFO, __VA_ARGS__)
#define fj_debug(...) fj_log(FJ_LOG_DEBUG, __VA_ARGS__)

#endif
