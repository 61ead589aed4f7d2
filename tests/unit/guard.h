/*
 * guard: test helper that copies an input so that it ends right before a
 * PROT_NONE page; a parser reading one byte past `len` crashes the test
 * (the picohttpparser way). Header-only, for tests/unit/ only.
 */
#ifndef TETHER_TEST_GUARD_H
#define TETHER_TEST_GUARD_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct guard {
    char *map;      /* mapping: data pages + one PROT_NONE page */
    size_t maplen;  /* its length */
    char *data;     /* the copy, ending at the PROT_NONE page */
    size_t len;     /* bytes copied */
};

/* Copies src[0..len) to the end of fresh pages followed by a PROT_NONE page. */
static inline struct guard guard_new(const void *src, size_t len)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t data_pages = len ? (len + page - 1) / page : 1;
    struct guard g;
    g.maplen = (data_pages + 1) * page;
    g.map = mmap(NULL, g.maplen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(g.map != MAP_FAILED);
    assert_int_equal(mprotect(g.map + data_pages * page, page, PROT_NONE), 0);
    g.data = g.map + data_pages * page - len;
    if (len)
        memcpy(g.data, src, len);
    g.len = len;
    return g;
}

static inline void guard_free(struct guard *g) { munmap(g->map, g->maplen); }

static inline struct guard guard_str(const char *s) { return guard_new(s, strlen(s)); }

/* Reads $TETHER_FIXTURES/<rel> (at most 64 KiB) into a guarded buffer; fails the test if missing. */
static inline struct guard guard_file(const char *rel)
{
    const char *fx = getenv("TETHER_FIXTURES");
    char path[1024], buf[65536];
    snprintf(path, sizeof path, "%s/%s", fx ? fx : "tests/fixtures", rel);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("fixture %s missing", path);
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    return guard_new(buf, n);
}

#endif
