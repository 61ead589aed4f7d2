/*
 * Unit tests of core/http_request_parse: the incremental request parser and
 * the query helpers. Every input is copied so that it ends right before a
 * PROT_NONE page: a read past `len` faults instead of passing silently.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "guard.h"

#include "core/http_request_parse.h"

/* ---- guarded buffers ---- */



/* Feeds s[0..len) in one guarded piece; returns hreq_feed's result. */
static long feed_guarded(struct hreq *r, const char *s, size_t len)
{
    struct guard g = guard_new(s, len);
    long n = hreq_feed(r, g.data, len);
    guard_free(&g);
    return n;
}

static long feed_str(struct hreq *r, const char *s) { return feed_guarded(r, s, strlen(s)); }

/* Feeds a whole string in pieces of `step` bytes, each piece guarded. */
static long feed_pieces(struct hreq *r, const char *s, size_t step)
{
    size_t len = strlen(s), off = 0;
    while (off < len) {
        size_t n = len - off < step ? len - off : step;
        long got = feed_guarded(r, s + off, n);
        if (got < 0)
            return got;
        off += (size_t)got;
        if (r->state == HREQ_COMPLETE)
            break;
        assert_int_equal((size_t)got, n);
    }
    return (long)off;
}

/* ---- request parsing ---- */

static void test_simple_get(void **state)
{
    struct hreq r;
    hreq_init(&r, NULL);
    assert_int_equal(r.state, HREQ_IDLE);
    const char *req = "GET /metrics HTTP/1.1\r\nHost: localhost:9101\r\nUser-Agent: Prometheus/2.42\r\n"
                      "Accept: text/plain\r\n\r\n";
    assert_int_equal(feed_str(&r, req), (long)strlen(req));
    assert_int_equal(r.state, HREQ_COMPLETE);
    assert_string_equal(hreq_method(&r), "GET");
    assert_string_equal(hreq_path(&r), "/metrics");
    assert_string_equal(hreq_query(&r), "");
    assert_string_equal(hreq_header(&r, "host"), "localhost:9101");
    assert_string_equal(hreq_header(&r, "USER-AGENT"), "Prometheus/2.42");
    assert_null(hreq_header(&r, "Content-Length"));
    assert_int_equal(hreq_header_count(&r), 3);
    const char *n, *v;
    assert_int_equal(hreq_header_at(&r, 2, &n, &v), 0);
    assert_string_equal(n, "Accept");
    assert_string_equal(v, "text/plain");
    assert_int_equal(hreq_header_at(&r, 3, &n, &v), -ENOENT);
    assert_true(r.keep_alive);
    assert_false(hreq_is_head(&r));
    assert_int_equal(r.http_major, 1);
    assert_int_equal(r.http_minor, 1);
    size_t blen = 99;
    assert_string_equal(hreq_body(&r, &blen), "");
    assert_int_equal(blen, 0);
    /* Complete: more input is not consumed. */
    assert_int_equal(feed_str(&r, "GET / HTTP/1.1\r\n\r\n"), 0);
    hreq_free(&r);
}

static void test_byte_by_byte(void **state)
{
    const char *req = "POST /v1/push?x=1 HTTP/1.1\r\nHost: a\r\nX-Long-Header-Name: some value  \r\n"
                      "Content-Length: 11\r\n\r\nhello world";
    struct hreq r;
    hreq_init(&r, NULL);
    assert_int_equal(feed_pieces(&r, req, 1), (long)strlen(req));
    assert_int_equal(r.state, HREQ_COMPLETE);
    assert_string_equal(hreq_method(&r), "POST");
    assert_string_equal(hreq_path(&r), "/v1/push");
    assert_string_equal(hreq_query(&r), "x=1");
    assert_string_equal(hreq_header(&r, "x-long-header-name"), "some value");
    size_t len;
    const char *body = hreq_body(&r, &len);
    assert_int_equal(len, 11);
    assert_memory_equal(body, "hello world", 11);
    assert_int_equal(body[11], '\0');
    hreq_free(&r);

    /* Every split point of the same request gives the same result. */
    for (size_t step = 2; step < strlen(req); step += 3) {
        hreq_init(&r, NULL);
        assert_int_equal(feed_pieces(&r, req, step), (long)strlen(req));
        assert_int_equal(r.state, HREQ_COMPLETE);
        assert_string_equal(hreq_header(&r, "Host"), "a");
        assert_string_equal(hreq_body(&r, NULL), "hello world");
        hreq_free(&r);
    }
}

static void test_pipelined(void **state)
{
    const char *two = "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b?q=2 HTTP/1.1\r\nHost: y\r\nConnection: close\r\n\r\n";
    size_t first = strlen("GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
    struct guard g = guard_new(two, strlen(two));
    struct hreq r;
    hreq_init(&r, NULL);
    long n = hreq_feed(&r, g.data, strlen(two));
    assert_int_equal(n, (long)first);
    assert_int_equal(r.state, HREQ_COMPLETE);
    assert_string_equal(hreq_path(&r), "/a");
    assert_true(r.keep_alive);
    hreq_reset(&r);
    assert_int_equal(r.state, HREQ_IDLE);
    assert_null(r.text);
    long m = hreq_feed(&r, g.data + n, strlen(two) - (size_t)n);
    assert_int_equal(m, (long)(strlen(two) - first));
    assert_int_equal(r.state, HREQ_COMPLETE);
    assert_string_equal(hreq_path(&r), "/b");
    assert_string_equal(hreq_query(&r), "q=2");
    assert_string_equal(hreq_header(&r, "host"), "y");
    assert_false(r.keep_alive);
    hreq_free(&r);
    guard_free(&g);
}

static void test_pipelined_post_then_get(void **state)
{
    const char *two = "POST /p HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /g HTTP/1.1\r\n\r\n";
    struct hreq r;
    hreq_init(&r, NULL);
    long n = feed_str(&r, two);
    assert_int_equal(n, (long)strlen("POST /p HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"));
    assert_string_equal(hreq_body(&r, NULL), "abc");
    hreq_reset(&r);
    assert_int_equal(feed_str(&r, two + n), (long)strlen(two + n));
    assert_string_equal(hreq_path(&r), "/g");
    hreq_free(&r);
}

static void test_versions_and_keepalive(void **state)
{
    struct {
        const char *req;
        int minor;
        bool keep;
    } cases[] = {
        { "GET / HTTP/1.0\r\n\r\n", 0, false },
        { "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 0, true },
        { "GET / HTTP/1.1\r\n\r\n", 1, true },
        { "GET / HTTP/1.1\r\nConnection: close\r\n\r\n", 1, false },
        { "GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", 1, false },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct hreq r;
        hreq_init(&r, NULL);
        assert_int_equal(feed_str(&r, cases[i].req), (long)strlen(cases[i].req));
        assert_int_equal(r.state, HREQ_COMPLETE);
        assert_int_equal(r.http_major, 1);
        assert_int_equal(r.http_minor, cases[i].minor);
        assert_int_equal(r.keep_alive, cases[i].keep);
        hreq_free(&r);
    }
}

static void test_head_and_methods(void **state)
{
    struct hreq r;
    hreq_init(&r, NULL);
    assert_true(feed_str(&r, "HEAD /metrics HTTP/1.1\r\n\r\n") > 0);
    assert_true(hreq_is_head(&r));
    assert_string_equal(hreq_method(&r), "HEAD");
    hreq_reset(&r);
    assert_true(feed_str(&r, "DELETE /x HTTP/1.1\r\n\r\n") > 0);
    assert_string_equal(hreq_method(&r), "DELETE");
    hreq_free(&r);
}

static void test_leading_crlf(void **state)
{
    struct hreq r;
    hreq_init(&r, NULL);
    const char *req = "\r\n\r\nGET /x HTTP/1.1\r\n\r\n";
    assert_int_equal(feed_str(&r, "\r\n"), 2);
    assert_int_equal(r.state, HREQ_IDLE);
    assert_int_equal(feed_str(&r, req), (long)strlen(req));
    assert_string_equal(hreq_path(&r), "/x");
    hreq_free(&r);
}

static void test_url_forms(void **state)
{
    struct {
        const char *req, *path, *query;
    } cases[] = {
        { "GET /api/v1/query?match%5B%5D=up&x=1#frag HTTP/1.1\r\n\r\n", "/api/v1/query", "match%5B%5D=up&x=1" },
        { "GET /p#f?notquery HTTP/1.1\r\n\r\n", "/p", "" },
        { "GET /p? HTTP/1.1\r\n\r\n", "/p", "" },
        { "GET http://host:9101/metrics?a=b HTTP/1.1\r\n\r\n", "/metrics", "a=b" },
        { "GET http://host:9101 HTTP/1.1\r\n\r\n", "/", "" },
        { "OPTIONS * HTTP/1.1\r\n\r\n", "*", "" },
        { "GET /%7Euser/a%20b HTTP/1.1\r\n\r\n", "/%7Euser/a%20b", "" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct hreq r;
        hreq_init(&r, NULL);
        assert_int_equal(feed_str(&r, cases[i].req), (long)strlen(cases[i].req));
        assert_string_equal(hreq_path(&r), cases[i].path);
        assert_string_equal(hreq_query(&r), cases[i].query);
        hreq_free(&r);
    }
}

static void test_headers_edge_cases(void **state)
{
    struct hreq r;
    hreq_init(&r, NULL);
    const char *req = "GET / HTTP/1.1\r\nX-Empty:\r\nX-Spaces:    padded\t \r\nx-dup: one\r\nX-Dup: two\r\n"
                      "Host: h\r\n\r\n";
    assert_int_equal(feed_pieces(&r, req, 5), (long)strlen(req));
    assert_string_equal(hreq_header(&r, "x-empty"), "");
    assert_string_equal(hreq_header(&r, "x-spaces"), "padded");
    assert_string_equal(hreq_header(&r, "X-DUP"), "one");
    assert_string_equal(hreq_header(&r, "host"), "h");
    assert_int_equal(hreq_header_count(&r), 5);
    hreq_free(&r);

    /* An obsolete folded value continues the previous header. */
    hreq_init(&r, NULL);
    const char *folded = "GET / HTTP/1.1\r\nX: a\r\n b\r\nY: c\r\n\r\n";
    assert_int_equal(feed_pieces(&r, folded, 1), (long)strlen(folded));
    assert_non_null(hreq_header(&r, "x"));
    assert_true(strncmp(hreq_header(&r, "x"), "a", 1) == 0);
    assert_string_equal(hreq_header(&r, "y"), "c");
    hreq_free(&r);
}

static void test_chunked_body(void **state)
{
    const char *req = "POST /in HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\nNEXT";
    struct hreq r;
    hreq_init(&r, NULL);
    long n = feed_str(&r, req);
    assert_int_equal(n, (long)strlen(req) - 4);
    assert_int_equal(r.state, HREQ_COMPLETE);
    size_t len;
    assert_string_equal(hreq_body(&r, &len), "hello world");
    assert_int_equal(len, 11);
    assert_null(hreq_header(&r, "X-Trailer")); /* trailers are ignored */
    assert_true(r.keep_alive);
    hreq_free(&r);

    hreq_init(&r, NULL);
    assert_int_equal(feed_pieces(&r, req, 1), (long)strlen(req) - 4);
    assert_string_equal(hreq_body(&r, NULL), "hello world");
    hreq_free(&r);
}

static void test_header_limit(void **state)
{
    struct hreq_limits lim = { .max_header_bytes = 64, .max_body = 0 };
    /* Build a head of exactly 64 bytes: request line 16 + header line + CRLF. */
    char head[128];
    const char *line = "GET / HTTP/1.1\r\n"; /* 16 */
    size_t hdr_total = 64 - 16 - 2;          /* "X: " + value + CRLF */
    size_t vlen = hdr_total - 3 - 2;
    snprintf(head, sizeof(head), "%sX: %.*s\r\n\r\n", line, (int)vlen,
             "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv");
    assert_int_equal(strlen(head), 64);

    struct hreq r;
    hreq_init(&r, &lim);
    assert_int_equal(feed_str(&r, head), 64);
    assert_int_equal(r.state, HREQ_COMPLETE);
    hreq_free(&r);

    /* One byte more is too much, whether fed at once or piecewise. */
    snprintf(head, sizeof(head), "%sX: %.*s\r\n\r\n", line, (int)vlen + 1,
             "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv");
    hreq_init(&r, &lim);
    assert_int_equal(feed_str(&r, head), -EMSGSIZE);
    assert_int_equal(r.state, HREQ_ERROR);
    assert_int_equal(feed_str(&r, "x"), -EMSGSIZE); /* sticky */
    hreq_free(&r);
    hreq_init(&r, &lim);
    assert_int_equal(feed_pieces(&r, head, 7), -EMSGSIZE);
    hreq_free(&r);

    /* An endless header line never completes and is cut at the limit. */
    hreq_init(&r, &lim);
    assert_int_equal(feed_str(&r, "GET / HTTP/1.1\r\nX: "), 19);
    long got = 0;
    for (int i = 0; i < 20 && got >= 0; i++)
        got = feed_str(&r, "aaaaaaaa");
    assert_int_equal(got, -EMSGSIZE);
    hreq_free(&r);

    /* Endless CR/LF between requests also counts against the head. */
    hreq_init(&r, &lim);
    got = 0;
    for (int i = 0; i < 40 && got >= 0; i++)
        got = feed_str(&r, "\r\n\r\n");
    assert_int_equal(got, -EMSGSIZE);
    hreq_free(&r);
}

static void test_huge_header_default_limit(void **state)
{
    size_t n = 20000;
    char *req = malloc(n + 64);
    assert_non_null(req);
    int off = snprintf(req, 64, "GET / HTTP/1.1\r\nX-Big: ");
    memset(req + off, 'a', n);
    memcpy(req + off + n, "\r\n\r\n", 5);
    struct hreq r;
    hreq_init(&r, NULL); /* 16 KiB */
    assert_int_equal(feed_str(&r, req), -EMSGSIZE);
    hreq_free(&r);
    struct hreq_limits lim = { .max_header_bytes = 32768 };
    hreq_init(&r, &lim);
    assert_int_equal(feed_str(&r, req), (long)strlen(req));
    assert_int_equal(strlen(hreq_header(&r, "x-big")), n);
    hreq_free(&r);
    free(req);
}

static void test_body_limit(void **state)
{
    struct hreq_limits lim = { .max_header_bytes = 0, .max_body = 10 };
    struct hreq r;
    /* Announced too large: refused before any body byte. */
    hreq_init(&r, &lim);
    assert_int_equal(feed_str(&r, "POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n"), -EFBIG);
    hreq_free(&r);
    /* Exactly at the limit is fine. */
    hreq_init(&r, &lim);
    const char *ok = "POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789";
    assert_int_equal(feed_str(&r, ok), (long)strlen(ok));
    assert_string_equal(hreq_body(&r, NULL), "0123456789");
    hreq_free(&r);
    /* Chunked: noticed while the body arrives. */
    hreq_init(&r, &lim);
    const char *part1 = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n";
    assert_int_equal(feed_str(&r, part1), (long)strlen(part1));
    assert_int_equal(feed_str(&r, "5\r\nghijk\r\n0\r\n\r\n"), -EFBIG);
    hreq_free(&r);
    /* Huge Content-Length values do not overflow anything. */
    hreq_init(&r, &lim);
    assert_int_equal(feed_str(&r, "POST / HTTP/1.1\r\nContent-Length: 1844674407370955161\r\n\r\n"),
                     -EFBIG);
    hreq_free(&r);
    hreq_init(&r, &lim);
    assert_int_equal(feed_str(&r, "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n"),
                     -EPROTO);
    hreq_free(&r);
}

static void test_large_body_grows(void **state)
{
    struct hreq r;
    hreq_init(&r, NULL);
    /* An announced 1 MiB body costs only a small allocation until it arrives. */
    assert_true(feed_str(&r, "POST /big HTTP/1.1\r\nContent-Length: 1048576\r\n\r\n") > 0);
    assert_int_equal(r.state, HREQ_BODY);
    assert_true(r.body_cap <= 16 * 1024 + 1);
    char piece[4000];
    size_t sent = 0;
    while (sent < 1048576) {
        size_t n = 1048576 - sent < sizeof(piece) ? 1048576 - sent : sizeof(piece);
        for (size_t i = 0; i < n; i++)
            piece[i] = (char)('A' + (sent + i) % 23);
        assert_int_equal(feed_guarded(&r, piece, n), (long)n);
        sent += n;
    }
    assert_int_equal(r.state, HREQ_COMPLETE);
    size_t len;
    const char *b = hreq_body(&r, &len);
    assert_int_equal(len, 1048576);
    assert_true(r.body_cap == 1048576 + 1); /* never more than announced */
    for (size_t i = 0; i < len; i += 4093)
        assert_int_equal(b[i], (char)('A' + i % 23));
    hreq_free(&r);
}

static void test_malformed(void **state)
{
    const char *bad[] = {
        "GARBAGE\r\n\r\n",
        "GET / HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
        "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx",
        "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "GET / HTTP/9.9x\r\n\r\n",
        "GET /\x01 HTTP/1.1\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\nabc",
        "GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n",
        "\x00\x01\x02",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct hreq r;
        hreq_init(&r, NULL);
        size_t len = strlen(bad[i]);
        if (len == 0)
            len = 3; /* the NUL-leading case */
        long n = feed_guarded(&r, bad[i], len);
        assert_int_equal(n, -EPROTO);
        assert_int_equal(r.state, HREQ_ERROR);
        assert_null(hreq_header(&r, "Host"));
        assert_string_equal(hreq_path(&r), "");
        hreq_free(&r);
    }
}

static void test_reset_frees_and_reuses(void **state)
{
    struct hreq_limits lim = { .max_header_bytes = 100, .max_body = 5 };
    struct hreq r;
    hreq_init(&r, &lim);
    assert_true(feed_str(&r, "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nabcde") > 0);
    assert_non_null(r.body);
    hreq_reset(&r);
    assert_null(r.body);
    assert_null(r.text);
    assert_null(r.hdrs);
    assert_int_equal(r.lim.max_header_bytes, 100);
    assert_int_equal(r.lim.max_body, 5);
    assert_int_equal(feed_str(&r, "POST / HTTP/1.1\r\nContent-Length: 6\r\n\r\n"), -EFBIG);
    hreq_free(&r);
}

/* ---- query helpers ---- */

static long qparam(const char *q, const char *name, unsigned idx, char *buf, size_t cap)
{
    struct guard g = guard_new(q, strlen(q));
    long n = hreq_query_param(g.data, strlen(q), name, idx, buf, cap);
    guard_free(&g);
    return n;
}

static void test_query_params(void **state)
{
    char buf[64];
    const char *q = "match[]=up&match%5B%5D=container_cpu_usage_seconds_total%7Bname%3D%22x%22%7D"
                    "&empty=&flag&a=1+2%202&&last=z";
    assert_int_equal(qparam(q, "match[]", 0, buf, sizeof(buf)), 2);
    assert_string_equal(buf, "up");
    assert_true(qparam(q, "match[]", 1, buf, sizeof(buf)) > 0);
    assert_string_equal(buf, "container_cpu_usage_seconds_total{name=\"x\"}");
    assert_int_equal(qparam(q, "match[]", 2, buf, sizeof(buf)), -ENOENT);
    assert_int_equal(qparam(q, "empty", 0, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "");
    assert_int_equal(qparam(q, "flag", 0, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "");
    assert_int_equal(qparam(q, "a", 0, buf, sizeof(buf)), 5);
    assert_string_equal(buf, "1 2 2");
    assert_int_equal(qparam(q, "last", 0, buf, sizeof(buf)), 1);
    assert_string_equal(buf, "z");
    assert_int_equal(qparam(q, "match", 0, buf, sizeof(buf)), -ENOENT);
    assert_int_equal(qparam(q, "missing", 0, buf, sizeof(buf)), -ENOENT);
    assert_int_equal(qparam("", "a", 0, buf, sizeof(buf)), -ENOENT);
    assert_int_equal(hreq_query_param(NULL, 0, "a", 0, buf, sizeof(buf)), -ENOENT);
    /* Too small a buffer. */
    assert_int_equal(qparam("k=abcdef", "k", 0, buf, 4), -ENOSPC);
    assert_string_equal(buf, "abc");
    assert_int_equal(qparam("k=abc", "k", 0, buf, 4), 3);
    /* Escapes at the very end of the input must not read past it. */
    assert_int_equal(qparam("k=%", "k", 0, buf, sizeof(buf)), 1);
    assert_string_equal(buf, "%");
    assert_int_equal(qparam("k=%4", "k", 0, buf, sizeof(buf)), 2);
    assert_string_equal(buf, "%4");
    assert_int_equal(qparam("k=%41", "k", 0, buf, sizeof(buf)), 1);
    assert_string_equal(buf, "A");
    assert_int_equal(qparam("k%", "k%", 0, buf, sizeof(buf)), 0);
    assert_int_equal(qparam("=v", "", 0, buf, sizeof(buf)), 1);
    assert_string_equal(buf, "v");
    assert_int_equal(qparam("a=1&", "a", 0, buf, sizeof(buf)), 1);
    assert_int_equal(qparam("&&&", "a", 0, buf, sizeof(buf)), -ENOENT);
}

static void test_url_decode(void **state)
{
    char out[32];
    struct guard g = guard_new("a%2Fb+c%zz%", 11);
    assert_int_equal(hreq_url_decode(g.data, 11, out, sizeof(out)), 9);
    assert_string_equal(out, "a/b c%zz%");
    guard_free(&g);
    g = guard_new("%00x", 4);
    assert_int_equal(hreq_url_decode(g.data, 4, out, sizeof(out)), 2);
    assert_int_equal(out[0], '\0');
    assert_int_equal(out[1], 'x');
    assert_int_equal(hreq_url_decode(g.data, 4, out, 0), -ENOSPC);
    assert_int_equal(hreq_url_decode(g.data, 4, out, 1), -ENOSPC);
    assert_int_equal(out[0], '\0');
    guard_free(&g);
    assert_int_equal(hreq_url_decode("", 0, out, 1), 0);
    assert_string_equal(out, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_get),
        cmocka_unit_test(test_byte_by_byte),
        cmocka_unit_test(test_pipelined),
        cmocka_unit_test(test_pipelined_post_then_get),
        cmocka_unit_test(test_versions_and_keepalive),
        cmocka_unit_test(test_head_and_methods),
        cmocka_unit_test(test_leading_crlf),
        cmocka_unit_test(test_url_forms),
        cmocka_unit_test(test_headers_edge_cases),
        cmocka_unit_test(test_chunked_body),
        cmocka_unit_test(test_header_limit),
        cmocka_unit_test(test_huge_header_default_limit),
        cmocka_unit_test(test_body_limit),
        cmocka_unit_test(test_large_body_grows),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_reset_frees_and_reuses),
        cmocka_unit_test(test_query_params),
        cmocka_unit_test(test_url_decode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
