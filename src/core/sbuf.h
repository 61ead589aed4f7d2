/*
 * sbuf: a growable byte buffer for building responses, pages and log text.
 *
 * The buffer owns `data` (heap, `cap` bytes) and keeps it NUL-terminated after
 * every successful call, so `data` can be handed to C string functions when the
 * content is text. The NUL is not counted in `len`. Binary content (embedded
 * NULs) is fine: `len` is authoritative.
 *
 * Ownership: the caller owns the struct (usually embedded in a larger object or
 * on the stack); the buffer owns `data`. sbuf_free() releases it. After
 * sbuf_init() and before the first append, `data` points to a shared static ""
 * (cap == 0), so reading it is always safe and nothing needs freeing yet.
 * `data` may move on every append: do not keep pointers into it across appends.
 *
 * On -ENOMEM the buffer is left unchanged (old content, still valid).
 * Not thread-safe; one owner at a time.
 */
#ifndef TETHER_SBUF_H
#define TETHER_SBUF_H

#include <stddef.h>

struct sbuf {
    char *data; /* content + trailing NUL; static "" while cap == 0 */
    size_t len; /* bytes of content, excluding the NUL */
    size_t cap; /* bytes allocated at data (0 = nothing allocated yet) */
};

/* Makes `b` an empty buffer that owns no memory. */
void sbuf_init(struct sbuf *b);

/* Appends n bytes from p (p may be NULL when n == 0). 0 or -ENOMEM. */
int sbuf_append(struct sbuf *b, const void *p, size_t n);

/* Appends a NUL-terminated string. 0 or -ENOMEM. */
int sbuf_append_str(struct sbuf *b, const char *s);

/* Appends one byte. 0 or -ENOMEM. */
int sbuf_putc(struct sbuf *b, char c);

/* Appends printf-formatted text. 0, -ENOMEM, or -EINVAL on an encoding error. */
int sbuf_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Ensures room for `extra` more bytes (plus the NUL) without moving later. 0 or -ENOMEM. */
int sbuf_reserve(struct sbuf *b, size_t extra);

/* Empties the buffer (len = 0) and keeps the allocation for reuse. */
void sbuf_reset(struct sbuf *b);

/* Releases the memory; the buffer is empty (as after sbuf_init) and reusable. */
void sbuf_free(struct sbuf *b);

#endif
