/*
 * sbuf: see sbuf.h. Capacity doubles (starting at 64 bytes) so n appends cost
 * O(n) copies overall; every size computation is checked for overflow.
 */
#include "core/sbuf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What `data` points to before the first allocation; only ever read. */
static char sbuf_empty[1];

#define SBUF_MIN_CAP 64

void sbuf_init(struct sbuf *b)
{
    b->data = sbuf_empty;
    b->len = 0;
    b->cap = 0;
}

int sbuf_reserve(struct sbuf *b, size_t extra)
{
    if (extra > SIZE_MAX - 1 - b->len)
        return -ENOMEM;
    size_t need = b->len + extra + 1; /* + NUL */
    if (need <= b->cap)
        return 0;
    size_t ncap = b->cap ? b->cap : SBUF_MIN_CAP;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2) {
            ncap = need;
            break;
        }
        ncap *= 2;
    }
    char *d = realloc(b->cap ? b->data : NULL, ncap);
    if (!d)
        return -ENOMEM;
    if (!b->cap)
        d[0] = '\0';
    b->data = d;
    b->cap = ncap;
    return 0;
}

int sbuf_append(struct sbuf *b, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    int rc = sbuf_reserve(b, n);
    if (rc)
        return rc;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int sbuf_append_str(struct sbuf *b, const char *s)
{
    return sbuf_append(b, s, strlen(s));
}

int sbuf_putc(struct sbuf *b, char c)
{
    return sbuf_append(b, &c, 1);
}

int sbuf_printf(struct sbuf *b, const char *fmt, ...)
{
    va_list ap;
    size_t room = b->cap ? b->cap - b->len : 0;
    va_start(ap, fmt);
    int n = vsnprintf(room ? b->data + b->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n < 0) {
        if (b->cap)
            b->data[b->len] = '\0';
        return -EINVAL;
    }
    if ((size_t)n < room) {
        b->len += (size_t)n;
        return 0;
    }
    /* Did not fit: grow, then format again (the first attempt only measured). */
    if (b->cap)
        b->data[b->len] = '\0';
    int rc = sbuf_reserve(b, (size_t)n);
    if (rc)
        return rc;
    va_start(ap, fmt);
    int m = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (m < 0 || m != n) {
        b->data[b->len] = '\0';
        return -EINVAL;
    }
    b->len += (size_t)m;
    return 0;
}

void sbuf_reset(struct sbuf *b)
{
    b->len = 0;
    if (b->cap)
        b->data[0] = '\0';
}

void sbuf_free(struct sbuf *b)
{
    if (b->cap)
        free(b->data);
    sbuf_init(b);
}
