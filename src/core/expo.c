/*
 * expo: see expo.h. Pure formatting helpers for the Prometheus text format;
 * no allocation besides growing the caller's sbuf.
 */
#include "core/expo.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 2^53: above it not every integer is representable, so integers stop being "exact". */
#define EXPO_EXACT_INT 9007199254740992.0

/* Writes an integral value |v| <= 2^53 as decimal digits; returns the length. */
static size_t expo_format_int(char *buf, double v)
{
    char tmp[24];
    size_t n = 0, len = 0;
    int neg = v < 0;
    uint64_t u = (uint64_t)(neg ? -v : v);
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (neg)
        buf[len++] = '-';
    while (n)
        buf[len++] = tmp[--n];
    buf[len] = '\0';
    return len;
}

size_t expo_format_value(char *buf, size_t cap, double v)
{
    char tmp[EXPO_VALUE_MAX];
    size_t len;

    if (isnan(v)) {
        len = 3;
        memcpy(tmp, "NaN", 4);
    } else if (isinf(v)) {
        len = 4;
        memcpy(tmp, v > 0 ? "+Inf" : "-Inf", 5);
    } else if (v == 0) {
        len = 1; /* also for -0, as Go's client does */
        memcpy(tmp, "0", 2);
    } else if (fabs(v) <= EXPO_EXACT_INT && v == trunc(v)) {
        len = expo_format_int(tmp, v);
    } else {
        /* Shortest of 15, 16, 17 significant digits that reads back exactly. */
        int n = 0;
        for (int prec = 15; prec <= 17; prec++) {
            n = snprintf(tmp, sizeof tmp, "%.*g", prec, v);
            if (n > 0 && (size_t)n < sizeof tmp && strtod(tmp, NULL) == v)
                break;
        }
        if (n <= 0 || (size_t)n >= sizeof tmp) { /* cannot happen for a finite double */
            len = 3;
            memcpy(tmp, "NaN", 4);
        } else {
            len = (size_t)n;
        }
    }
    if (len + 1 > cap) {
        if (cap)
            buf[0] = '\0';
        return 0;
    }
    memcpy(buf, tmp, len + 1);
    return len;
}

int expo_append_value(struct sbuf *b, double v)
{
    char tmp[EXPO_VALUE_MAX];
    size_t n = expo_format_value(tmp, sizeof tmp, v);
    return sbuf_append(b, tmp, n);
}

static bool expo_is_alpha_(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool expo_is_digit(char c) { return c >= '0' && c <= '9'; }

bool expo_metric_name_valid(const char *name, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!(expo_is_alpha_(c) || c == ':' || (i > 0 && expo_is_digit(c))))
            return false;
    }
    return true;
}

bool expo_label_name_valid(const char *name, size_t len)
{
    if (len == 0)
        return false;
    if (len >= 2 && name[0] == '_' && name[1] == '_')
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!(expo_is_alpha_(c) || (i > 0 && expo_is_digit(c))))
            return false;
    }
    return true;
}

/* Appends s[0..len) escaping backslash and newline, and double quotes when `quotes`. */
static int expo_escape(struct sbuf *b, const char *s, size_t len, bool quotes)
{
    size_t run = 0; /* start of the current stretch of bytes that need no escape */
    for (size_t i = 0; i < len; i++) {
        const char *esc = NULL;
        if (s[i] == '\\')
            esc = "\\\\";
        else if (s[i] == '\n')
            esc = "\\n";
        else if (quotes && s[i] == '"')
            esc = "\\\"";
        if (!esc)
            continue;
        int rc = sbuf_append(b, s + run, i - run);
        if (rc == 0)
            rc = sbuf_append(b, esc, 2);
        if (rc)
            return rc;
        run = i + 1;
    }
    return sbuf_append(b, s + run, len - run);
}

int expo_escape_label_value(struct sbuf *b, const char *s, size_t len)
{
    return expo_escape(b, s, len, true);
}

int expo_escape_help(struct sbuf *b, const char *s, size_t len)
{
    return expo_escape(b, s, len, false);
}

int expo_write_header(struct sbuf *b, const char *name, const char *help, const char *type)
{
    int rc = 0;
    if (help && help[0]) {
        rc = sbuf_append_str(b, "# HELP ");
        if (rc == 0)
            rc = sbuf_append_str(b, name);
        if (rc == 0)
            rc = sbuf_putc(b, ' ');
        if (rc == 0)
            rc = expo_escape_help(b, help, strlen(help));
        if (rc == 0)
            rc = sbuf_putc(b, '\n');
    }
    if (rc == 0)
        rc = sbuf_append_str(b, "# TYPE ");
    if (rc == 0)
        rc = sbuf_append_str(b, name);
    if (rc == 0)
        rc = sbuf_putc(b, ' ');
    if (rc == 0)
        rc = sbuf_append_str(b, type);
    if (rc == 0)
        rc = sbuf_putc(b, '\n');
    return rc;
}

int expo_write_label(struct sbuf *b, char sep, const char *name, const char *value, size_t vlen)
{
    int rc = 0;
    if (sep)
        rc = sbuf_putc(b, sep);
    if (rc == 0)
        rc = sbuf_append_str(b, name);
    if (rc == 0)
        rc = sbuf_append(b, "=\"", 2);
    if (rc == 0)
        rc = expo_escape_label_value(b, value, vlen);
    if (rc == 0)
        rc = sbuf_putc(b, '"');
    return rc;
}
