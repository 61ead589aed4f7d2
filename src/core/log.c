/*
 * log: see log.h. Formats into a stack buffer and emits one write(2).
 */
#include "core/log.h"

#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static enum log_level log_level = LOG_INFO; /* set once by log_init */

static const char *const level_names[] = { "ERROR", "WARN ", "INFO ", "DEBUG" };

void log_init(enum log_level level) { log_level = level; }

enum log_level log_get_level(void) { return log_level; }

int log_level_parse(const char *name)
{
    static const char *const names[] = { "error", "warn", "info", "debug" };
    for (int i = 0; i < 4; i++)
        if (strcmp(name, names[i]) == 0)
            return i;
    return -1;
}

/* Strips the leading "src/" so lines name agent/docker.c, core/http.c, ... */
static const char *short_file(const char *file)
{
    return strncmp(file, "src/", 4) == 0 ? file + 4 : file;
}

static size_t log_prefix(char *buf, size_t cap, enum log_level level, const char *file, int line)
{
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    int n = snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %s %s:%d ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (int)(tv.tv_usec / 1000), level_names[level], short_file(file), line);
    return n < 0 ? 0 : ((size_t)n < cap ? (size_t)n : cap - 1);
}

static void emit(char *buf, size_t len)
{
    buf[len++] = '\n';
    ssize_t off = 0;
    while ((size_t)off < len) {
        ssize_t w = write(STDERR_FILENO, buf + off, len - (size_t)off);
        if (w <= 0)
            return; /* nowhere to report a failing stderr */
        off += w;
    }
}

void log_write(enum log_level level, const char *file, int line, const char *fmt, ...)
{
    if (level > log_level)
        return;
    char buf[2048];
    size_t n = log_prefix(buf, sizeof buf - 1, level, file, line);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(buf + n, sizeof buf - 1 - n, fmt, ap);
    va_end(ap);
    if (m > 0)
        n += (size_t)m < sizeof buf - 1 - n ? (size_t)m : sizeof buf - 2 - n;
    emit(buf, n);
}

void log_write_text(enum log_level level, const char *file, int line, const char *prefix,
                    const char *text, size_t len)
{
    if (level > log_level)
        return;
    char buf[2048];
    size_t n = log_prefix(buf, sizeof buf - 1, level, file, line);
    int m = snprintf(buf + n, sizeof buf - 1 - n, "%s", prefix);
    size_t head = n + (m > 0 ? (size_t)m : 0);
    size_t room = sizeof buf - 2 - head;
    size_t off = 0;
    do {
        size_t take = len - off < room ? len - off : room;
        const char *nl = memchr(text + off, '\n', take);
        if (nl)
            take = (size_t)(nl - (text + off));
        memcpy(buf + head, text + off, take);
        emit(buf, head + take);
        off += take + (nl ? 1 : 0);
    } while (off < len);
}
