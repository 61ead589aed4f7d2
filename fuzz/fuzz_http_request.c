/*
 * libFuzzer harness for core/http_request_parse.
 *
 * The input is raw connection bytes (the corpus files are plain HTTP). A hash
 * of the input picks the piece size and the limits, so one input is parsed in
 * several ways across the corpus without a binary prefix. Each piece is
 * copied into its own exact-size heap block, so ASan catches a read past
 * `len` of any piece. Complete requests are inspected through every accessor
 * and the query helpers, then the parser is reset and the remaining
 * (pipelined) bytes are parsed, the way http_server drains its read buffer.
 * Contract violations abort.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/http_request_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint32_t input_hash(const uint8_t *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

/* Touches everything a handler could read; checks basic invariants. */
static void inspect(const struct hreq *r)
{
    const char *m = hreq_method(r);
    const char *path = hreq_path(r);
    const char *query = hreq_query(r);
    if (!m || !path || !query)
        abort();
    size_t plen = strlen(path), qlen = strlen(query);
    if (plen > r->url_len + 1 || qlen > r->url_len)
        abort();
    size_t n = hreq_header_count(r);
    for (size_t i = 0; i < n; i++) {
        const char *name, *value;
        if (hreq_header_at(r, i, &name, &value) != 0)
            abort();
        if (hreq_header(r, name) == NULL)
            abort();
        (void)strlen(value);
    }
    if (hreq_header_at(r, n, NULL, NULL) != -ENOENT)
        abort();
    (void)hreq_header(r, "host");
    size_t blen;
    const char *body = hreq_body(r, &blen);
    if (blen > r->lim.max_body || body[blen] != '\0')
        abort();

    char small[4], big[512];
    static const char *const names[] = { "match[]", "a", "", "x" };
    for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
        for (unsigned idx = 0; idx < 3; idx++) {
            long v = hreq_query_param(query, qlen, names[k], idx, big, sizeof(big));
            if (v >= 0 && (size_t)v > qlen)
                abort();
            if (v == -ENOENT)
                break;
            (void)hreq_query_param(query, qlen, names[k], idx, small, sizeof(small));
        }
    }
    char *dec = malloc(qlen + 1);
    if (!dec)
        return;
    long d = hreq_url_decode(query, qlen, dec, qlen + 1);
    if (d < 0 || (size_t)d > qlen)
        abort();
    free(dec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint32_t h = input_hash(data, size);
    size_t step = (h % 5 == 0) ? size : 1 + (h >> 3) % 97;
    struct hreq_limits lim = {
        .max_header_bytes = ((h >> 10) & 1) ? 16384 : 300,
        .max_body = ((h >> 11) & 1) ? 1024 * 1024 : 64,
    };
    struct hreq r;
    hreq_init(&r, &lim);
    size_t off = 0;
    unsigned requests = 0;
    while (off < size && requests < 4096) {
        size_t n = size - off < step ? size - off : step;
        char *piece = malloc(n);
        if (!piece)
            break;
        memcpy(piece, data + off, n);
        long got = hreq_feed(&r, piece, n);
        free(piece);
        if (got < 0) {
            if (r.state != HREQ_ERROR || got != r.error)
                abort();
            if (got != -EMSGSIZE && got != -EFBIG && got != -EPROTO && got != -ENOMEM)
                abort();
            break;
        }
        if ((size_t)got > n)
            abort();
        off += (size_t)got;
        if (r.state == HREQ_COMPLETE) {
            inspect(&r);
            hreq_reset(&r);
            requests++;
        } else if ((size_t)got != n) {
            abort(); /* contract: everything is consumed unless a request completed */
        }
    }
    hreq_free(&r);
    return 0;
}
