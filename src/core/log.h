/*
 * log: one leveled logger for every tether module.
 *
 * Lines go to stderr as
 *   2026-11-21T23:59:01.123Z WARN  agent/docker.c:212 events stream dropped: ECONNRESET
 * A line is written with one write(2) so lines of one process never interleave.
 * The logger has no allocation and no mutable state besides the level, which is
 * set once at start-up (log_init) from the owning (only) thread.
 */
#ifndef TETHER_LOG_H
#define TETHER_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Sets the threshold; lines above it are dropped. */
void log_init(enum log_level level);
/* "error"|"warn"|"info"|"debug" -> level; -1 when unknown. */
int log_level_parse(const char *name);
enum log_level log_get_level(void);

void log_write(enum log_level level, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Writes one line, splitting a long text over several lines (for dumps). */
void log_write_text(enum log_level level, const char *file, int line, const char *prefix,
                    const char *text, size_t len);

#define log_error(...) log_write(LOG_ERROR, __FILE__, __LINE__, __VA_ARGS__)
#define log_warn(...)  log_write(LOG_WARN, __FILE__, __LINE__, __VA_ARGS__)
#define log_info(...)  log_write(LOG_INFO, __FILE__, __LINE__, __VA_ARGS__)
#define log_debug(...) \
    do { if (log_get_level() >= LOG_DEBUG) log_write(LOG_DEBUG, __FILE__, __LINE__, __VA_ARGS__); } while (0)

#endif
