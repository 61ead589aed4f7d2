/*
 * expo: building blocks of the Prometheus text exposition format 0.0.4.
 *
 * A page is a sequence of families; each family is written as
 *
 *   # HELP <name> <help, with \ and newline escaped>
 *   # TYPE <name> counter|gauge|histogram|summary|untyped
 *   <name>{<label>="<value, with \ " and newline escaped>",...} <value>[ <timestamp ms>]
 *
 * This module only formats: it never decides which families exist (metrics.c
 * for self-metrics, agent/prom.c for containers do). Every function is pure:
 * it reads its arguments and writes into a caller's buffer or sbuf, with no
 * globals and no I/O, so the page writers above it are easy to test.
 *
 * Values are written the way Prometheus client libraries write them, with one
 * difference in favour of readability: integral values up to 2^53 in magnitude
 * are written as plain integers ("1234567890123", where Go's client writes
 * "1.234567890123e+12"). Everything else is printed with %.15g, %.16g or
 * %.17g, the first that reads back to the same double: the shortest text for
 * every normal double ("0.1", "1e-09", "0.30000000000000004"; subnormals may
 * get 15 digits where fewer would do), plus "NaN", "+Inf" and "-Inf". The output uses '.' as the decimal point because tether
 * never calls setlocale().
 *
 * Name rules: metric names match [a-zA-Z_:][a-zA-Z0-9_:]*, label names
 * [a-zA-Z_][a-zA-Z0-9_]*; label names starting with "__" are reserved by
 * Prometheus and rejected here.
 */
#ifndef TETHER_EXPO_H
#define TETHER_EXPO_H

#include <stdbool.h>
#include <stddef.h>

#include "core/sbuf.h"

/* Content-Type of a page in this format. */
#define EXPO_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Room expo_format_value needs (longest output is 24 chars, e.g. "-2.2250738585072014e-308"). */
#define EXPO_VALUE_MAX 32

/*
 * Formats `v` into buf (cap >= EXPO_VALUE_MAX for any value) with a NUL.
 * Returns the length written (without the NUL), or 0 when cap is too small
 * (buf then holds "" if cap > 0).
 */
size_t expo_format_value(char *buf, size_t cap, double v);

/* Appends the formatted value. 0 or -ENOMEM. */
int expo_append_value(struct sbuf *b, double v);

/* True when name[0..len) is a valid metric name. */
bool expo_metric_name_valid(const char *name, size_t len);

/* True when name[0..len) is a valid, non-reserved label name. */
bool expo_label_name_valid(const char *name, size_t len);

/* Appends s[0..len) with \ -> \\, " -> \", newline -> \n. 0 or -ENOMEM. */
int expo_escape_label_value(struct sbuf *b, const char *s, size_t len);

/* Appends s[0..len) with \ -> \\, newline -> \n (quotes stay). 0 or -ENOMEM. */
int expo_escape_help(struct sbuf *b, const char *s, size_t len);

/*
 * Appends "# HELP name help\n# TYPE name type\n". help may be NULL or ""
 * (then only the TYPE line is written). type is one of
 * "counter", "gauge", "histogram", "summary", "untyped". The name is written
 * as given (check it with expo_metric_name_valid first). 0 or -ENOMEM.
 */
int expo_write_header(struct sbuf *b, const char *name, const char *help, const char *type);

/*
 * Appends one label pair: `sep` (normally '{' for the first label and ',' for
 * the others; 0 for none), then name="escaped value". The name is written as
 * given. 0 or -ENOMEM.
 */
int expo_write_label(struct sbuf *b, char sep, const char *name, const char *value, size_t vlen);

#endif
