/*
 * test_http_response_parse: unit tests for the pure HTTP/1.1 response parser
 * (src/core/http_response_parse.c).
 *
 * Every input is fed three ways (whole, byte by byte, and from a buffer that
 * ends right before a PROT_NONE page, so an over-read crashes) and must give
 * the same result. Real Docker responses captured on this machine live in
 * tests/fixtures/http/.
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

#include "core/http_response_parse.h"

/* What one parse produced. */
struct result {
    int err;            /* first negative return, 0 if none */
    enum http_resp_state state; /* final state */
    int status;         /* status code */
    int keep_alive;     /* keep-alive decision at DONE */
    size_t consumed;    /* bytes consumed up to DONE/UPGRADED (or all) */
    char body[65536];   /* decoded body */
    size_t body_len;    /* bytes in body */
    int headers_seen_before_body; /* 1 when BODY state was reported before any body byte */
    int saw_body_state; /* the BODY state was observed */
    char ctype[128];    /* Content-Type value copied at BODY */
    size_t nheaders;    /* header count at BODY */
    unsigned interim;   /* interim responses skipped */
};

static int collect_body(void *arg, const char *buf, size_t len)
{
    struct result *r = arg;
    if (!r->saw_body_state)
        r->headers_seen_before_body = 0;
    if (r->body_len + len > sizeof r->body)
        return -EFBIG;
    memcpy(r->body + r->body_len, buf, len);
    r->body_len += len;
    return 0;
}

static void note_headers(struct http_resp_parser *p, struct result *r)
{
    if (r->saw_body_state)
        return;
    r->saw_body_state = 1;
    r->status = p->status;
    r->nheaders = p->nheaders;
    const char *ct = http_resp_header(p, "content-type");
    snprintf(r->ctype, sizeof r->ctype, "%s", ct ? ct : "");
}

/*
 * Feeds buf in pieces of `step` bytes (0 = all at once), then EOF when `eof`.
 * Stops at DONE/UPGRADED (consumed = offset) or at an error.
 */
static void run(const char *buf, size_t len, size_t step, int eof, int is_head, size_t max_hdr,
                struct result *r)
{
    memset(r, 0, sizeof *r);
    r->headers_seen_before_body = 1;
    struct http_resp_parser p;
    http_resp_init(&p, max_hdr, collect_body, r);
    if (is_head)
        http_resp_reset(&p, 1);
    size_t off = 0;
    while (off < len) {
        size_t n = step ? step : len;
        if (n > len - off)
            n = len - off;
        /* a piece is fed until it is consumed or the parser stops */
        size_t pend = off + n;
        while (off < pend) {
            enum http_resp_state before = p.state;
            ssize_t c = http_resp_feed(&p, buf + off, pend - off);
            if (c < 0) {
                r->err = (int)c;
                goto out;
            }
            off += (size_t)c;
            if (p.state == HTTP_RESP_BODY)
                note_headers(&p, r);
            if (p.state == HTTP_RESP_DONE || p.state == HTTP_RESP_UPGRADED) {
                note_headers(&p, r);
                goto out;
            }
            assert_true(c > 0 || p.state != before);
        }
    }
    if (eof) {
        int e = http_resp_feed_eof(&p);
        if (e < 0)
            r->err = e;
        else
            note_headers(&p, r);
    }
out:
    r->state = p.state;
    r->keep_alive = p.keep_alive;
    r->consumed = off;
    r->interim = p.interim;
    if (!r->saw_body_state)
        r->status = p.status;
    http_resp_free(&p);
}

/* Copies buf to the end of a page followed by a PROT_NONE page and runs it. */
static void run_guarded(const char *buf, size_t len, size_t step, int eof, int is_head, size_t max_hdr,
                        struct result *r)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    size_t data_pages = (len + pg - 1) / pg + 1;
    char *map = mmap(NULL, (data_pages + 1) * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                     -1, 0);
    assert_true(map != MAP_FAILED);
    assert_int_equal(mprotect(map + data_pages * pg, pg, PROT_NONE), 0);
    char *at = map + data_pages * pg - len;
    memcpy(at, buf, len);
    run(at, len, step, eof, is_head, max_hdr, r);
    munmap(map, (data_pages + 1) * pg);
}

/* Runs the three ways and checks they agree; returns the whole-buffer result in *r. */
static void run_all(const char *buf, size_t len, int eof, int is_head, size_t max_hdr, struct result *r)
{
    static struct result a, b;
    run(buf, len, 0, eof, is_head, max_hdr, r);
    run(buf, len, 1, eof, is_head, max_hdr, &a);
    run_guarded(buf, len, 7, eof, is_head, max_hdr, &b);
    struct result *o[2] = { &a, &b };
    for (int i = 0; i < 2; i++) {
        assert_int_equal(o[i]->err, r->err);
        assert_int_equal(o[i]->state, r->state);
        assert_int_equal(o[i]->status, r->status);
        assert_int_equal(o[i]->keep_alive, r->keep_alive);
        if (r->err == 0) /* on error the bytes consumed before it depend on the split */
            assert_int_equal(o[i]->consumed, r->consumed);
        assert_int_equal(o[i]->body_len, r->body_len);
        assert_memory_equal(o[i]->body, r->body, r->body_len);
        assert_int_equal(o[i]->nheaders, r->nheaders);
        assert_int_equal(o[i]->headers_seen_before_body, 1);
    }
    assert_int_equal(r->headers_seen_before_body, 1);
}

#define RUN(lit, eof, head, r) run_all(lit, sizeof(lit) - 1, eof, head, 0, r)

static struct result R;

static void test_content_length(void **state)
{
    RUN("HTTP/1.1 200 OK\r\nContent-Type: text/plain \r\nContent-Length: 5\r\n\r\nhello", 0, 0, &R);
    assert_int_equal(R.err, 0);
    assert_int_equal(R.state, HTTP_RESP_DONE);
    assert_int_equal(R.status, 200);
    assert_int_equal(R.keep_alive, 1);
    assert_int_equal(R.body_len, 5);
    assert_memory_equal(R.body, "hello", 5);
    assert_string_equal(R.ctype, "text/plain"); /* trailing blank trimmed, lookup case-insensitive */
    assert_int_equal(R.nheaders, 2);
}

static void test_chunked_with_extension_and_trailer(void **state)
{
    RUN("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        "4;ext=1\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-Trailer: t\r\n\r\n",
        0, 0, &R);
    assert_int_equal(R.err, 0);
    assert_int_equal(R.state, HTTP_RESP_DONE);
    assert_int_equal(R.body_len, strlen("Wikipedia in\r\n\r\nchunks."));
    assert_memory_equal(R.body, "Wikipedia in\r\n\r\nchunks.", R.body_len);
    assert_int_equal(R.nheaders, 1); /* trailer not added to the headers */
    assert_int_equal(R.keep_alive, 1);
}

static void test_close_delimited(void **state)
{
    static const char in[] = "HTTP/1.1 200 OK\r\nContent-Type: x\r\n\r\nstream until close";
    /* without EOF the body is not complete */
    run(in, sizeof in - 1, 0, 0, 0, 0, &R);
    assert_int_equal(R.err, 0);
    assert_int_equal(R.state, HTTP_RESP_BODY);
    RUN(in, 1, 0, &R);
    assert_int_equal(R.err, 0);
    assert_int_equal(R.state, HTTP_RESP_DONE);
    assert_int_equal(R.keep_alive, 0);
    assert_int_equal(R.body_len, strlen("stream until close"));
    /* HTTP/1.0 without length, empty body at close */
    RUN("HTTP/1.0 200 OK\r\n\r\n", 1, 0, &R);
    assert_int_equal(R.state, HTTP_RESP_DONE);
    assert_int_equal(R.body_len, 0);
}

static void test_head_and_no_body_statuses(void **state)
{
    RUN("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", 0, 1, &R);
    assert_int_equal(R.err, 0);
    assert_int_equal(R.state, HTTP_RESP_DONE);
    assert_int_equal(R.body_len, 0);
    assert_int_equal(R.keep_alive, 1);
    RUN("HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n", 0, 0, &R);
    assert_int_equal(R.state, HTTP_RESP_DONE);
    assert_int_equal(R.status, 204);
    RUN("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\nETag: \"x\"\r\n\r\n", 0, 0, &R);
    assert_int_equal(R.state, HTTP_RESP_DONE);
    assert_int_equal(R.status, 304);
    assert_int_equal(R.body_len, 0);
}

static void test_upgrade_offset(void **state)
{
    static const char hdr[] = "HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\n"
                              "Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n";
    static const char raw[] = "\x01\0\0\0\0\0\0\x05hello";
    char in[512];
    memcpy(in, hdr, sizeof hdr - 1);
    memcpy(in + sizeof hdr - 1, raw, sizeof raw - 1);
    run_all(in, sizeof hdr - 1 + sizeof raw - 1, 0, 0, 0, &R);
    assert_int_equal(R.err, 0);
    assert_int_equal(R.state, HTTP_RESP_UPGRADED);
    assert_int_equal(R.status, 101);
    assert_int_equal(R.consumed, sizeof hdr - 1);
    assert_int_equal(R.body_len, 0);
    /* 101 without Upgrade is an interim response: skipped */
    RUN("HTTP/1.1 101 Switching\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx", 0, 0, &R);
    assert_int_equal(R.state, HTTP_RESP_DONE);
    assert_int_equal(R.status, 200);
    assert_int_equal(R.interim, 1);
}

static void test_interim_continue(void **state)
{
    RUN("HTTP/1.1 100 Continue\r\nX-A: 1\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n"
        "HTTP/1.1 201 Created\r\nContent-Length: 2\r\nContent-Type: a/b\r\n\r\nok",
        0, 0, &R);
    assert_int_equal(R.err, 0);
    assert_int_equal(R.state, HTTP_RESP_DONE);
    assert_int_equal(R.status, 201);
    assert_int_equal(R.interim, 2);
    assert_int_equal(R.nheaders, 2);
    assert_string_equal(R.ctype, "a/b");
}

static void test_keep_alive_decisions(void **state)
{
    RUN("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", 0, 0, &R);
    assert_int_equal(R.state, HTTP_RESP_DONE);
    assert_int_equal(R.keep_alive, 0);
    RUN("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", 0, 0, &R);
    assert_int_equal(R.keep_alive, 0);
    RUN("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", 0, 0, &R);
    assert_int_equal(R.keep_alive, 1);
}

static void test_header_limit(void **state)
{
    char in[2048];
    int n = snprintf(in, sizeof in, "HTTP/1.1 200 OK\r\nX-Big: %0500d\r\nContent-Length: 0\r\n\r\n", 7);
    run_all(in, (size_t)n, 0, 0, 256, &R);
    assert_int_equal(R.err, -EMSGSIZE);
    assert_int_equal(R.state, HTTP_RESP_ERROR);
    /* the same response fits a limit of exactly its header size */
    run_all(in, (size_t)n, 0, 0, (size_t)n, &R);
    assert_int_equal(R.err, 0);
    assert_int_equal(R.state, HTTP_RESP_DONE);
    /* one byte less is too much */
    run_all(in, (size_t)n, 0, 0, (size_t)n - 2, &R);
    assert_int_equal(R.err, -EMSGSIZE);
}

static void test_malformed(void **state)
{
    static const char *const bad[] = {
        "HTTP/x.1 200 OK\r\n\r\n",
        "HTTP/1.1 2x0 OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n",
        "HTTP/1.1 200 OK\r\nBad Header\r\n\r\n",
        "\x00\x01garbage",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t len = i == 7 ? 9 : strlen(bad[i]);
        run_all(bad[i], len, 1, 0, 0, &R);
        if (R.err != -EPROTO)
            fail_msg("case %zu: err %d state %d", i, R.err, (int)R.state);
        assert_int_equal(R.err, -EPROTO);
        assert_int_equal(R.state, HTTP_RESP_ERROR);
    }
    /* errors are sticky */
    struct http_resp_parser p;
    http_resp_init(&p, 0, NULL, NULL);
    assert_int_equal(http_resp_feed(&p, "XTTP", 4), -EPROTO);
    assert_int_equal(http_resp_feed(&p, "HTTP/1.1 200 OK\r\n\r\n", 19), -EPROTO);
    assert_int_equal(http_resp_feed_eof(&p), -EPROTO);
    http_resp_reset(&p, 0);
    assert_int_equal(http_resp_feed(&p, "HTTP/1.1 200 OK\r\n", 17), 17);
    http_resp_free(&p);
}

static void test_truncated(void **state)
{
    RUN("", 1, 0, &R);
    assert_int_equal(R.err, -ECONNRESET);
    RUN("HTTP/1.1 200 OK\r\nContent-", 1, 0, &R);
    assert_int_equal(R.err, -ECONNRESET);
    RUN("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 1, 0, &R);
    assert_int_equal(R.err, -ECONNRESET);
    assert_int_equal(R.body_len, 3);
    RUN("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n", 1, 0, &R);
    assert_int_equal(R.err, -ECONNRESET);
}

static int refuse_body(void *arg, const char *buf, size_t len)
{
    (void)arg; (void)buf; (void)len;
    return -EMSGSIZE;
}

static void test_body_callback_error_and_done_state(void **state)
{
    static const char in[] = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc";
    struct http_resp_parser p;
    http_resp_init(&p, 0, refuse_body, NULL);
    ssize_t n = http_resp_feed(&p, in, sizeof in - 1);
    assert_true(n > 0 && p.state == HTTP_RESP_BODY);
    assert_int_equal(http_resp_feed(&p, in + n, sizeof in - 1 - (size_t)n), -EMSGSIZE);
    assert_int_equal(p.state, HTTP_RESP_ERROR);
    http_resp_free(&p);

    /* no sink: the body is discarded; DONE consumes nothing more */
    http_resp_init(&p, 0, NULL, NULL);
    size_t off = 0;
    while (p.state != HTTP_RESP_DONE) {
        n = http_resp_feed(&p, in + off, sizeof in - 1 - off);
        assert_true(n >= 0);
        off += (size_t)n;
    }
    assert_int_equal(off, sizeof in - 1);
    assert_int_equal(p.body_bytes, 3);
    assert_int_equal(http_resp_feed(&p, "x", 1), 0);
    assert_int_equal(http_resp_feed_eof(&p), 0);
    assert_null(http_resp_header(&p, "nope"));
    assert_string_equal(http_resp_header(&p, "CONTENT-LENGTH"), "3");
    assert_string_equal(http_resp_state_name(p.state), "done");
    http_resp_free(&p);
}

/* Two responses back to back: DONE stops at the boundary, reset parses the next. */
static void test_pipelined_reset(void **state)
{
    static const char in[] = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nX-Empty:\r\n\r\na"
                             "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nb\r\n0\r\n\r\n";
    struct result r1;
    memset(&r1, 0, sizeof r1);
    struct http_resp_parser p;
    http_resp_init(&p, 0, collect_body, &r1);
    size_t off = 0;
    int done = 0;
    while (off < sizeof in - 1) {
        ssize_t n = http_resp_feed(&p, in + off, sizeof in - 1 - off);
        assert_true(n >= 0);
        off += (size_t)n;
        if (p.state == HTTP_RESP_BODY && done == 0)
            assert_string_equal(http_resp_header(&p, "x-empty"), "");
        if (p.state == HTTP_RESP_DONE) {
            done++;
            if (done == 1) {
                assert_int_equal(p.status, 200);
                assert_int_equal(off, strlen("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nX-Empty:\r\n\r\na"));
                http_resp_reset(&p, 0);
            }
        }
    }
    assert_int_equal(done, 2);
    assert_int_equal(p.status, 404);
    assert_int_equal(r1.body_len, 2);
    assert_memory_equal(r1.body, "ab", 2);
    http_resp_free(&p);
}

static char *read_fixture(const char *name, size_t *len)
{
    const char *dir = getenv("TETHER_FIXTURES");
    char path[512];
    snprintf(path, sizeof path, "%s/http/%s", dir ? dir : "tests/fixtures", name);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open fixture %s", path);
    char *buf = malloc(1 << 20);
    assert_non_null(buf);
    *len = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

/* Captured from dockerd 20.10 (API 1.41) on this machine. */
static void test_docker_fixtures(void **state)
{
    size_t len;
    char *buf = read_fixture("docker_events_chunked.txt", &len);
    run_all(buf, len, 0, 0, 0, &R);
    assert_int_equal(R.err, 0);
    assert_int_equal(R.state, HTTP_RESP_DONE);
    assert_string_equal(R.ctype, "application/json");
    assert_true(R.body_len > 100);
    assert_int_equal(R.body[0], '{');
    assert_int_equal(R.body[R.body_len - 1], '\n');
    free(buf);

    buf = read_fixture("docker_ping.txt", &len);
    run_all(buf, len, 0, 0, 0, &R);
    assert_int_equal(R.state, HTTP_RESP_DONE);
    assert_int_equal(R.body_len, 2);
    assert_memory_equal(R.body, "OK", 2);
    free(buf);

    buf = read_fixture("docker_attach_404.txt", &len);
    run_all(buf, len, 1, 0, 0, &R);
    assert_int_equal(R.state, HTTP_RESP_DONE);
    assert_int_equal(R.status, 404);
    assert_int_equal(R.keep_alive, 0);
    assert_memory_equal(R.body, "No such container", 17);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_content_length),
        cmocka_unit_test(test_chunked_with_extension_and_trailer),
        cmocka_unit_test(test_close_delimited),
        cmocka_unit_test(test_head_and_no_body_statuses),
        cmocka_unit_test(test_upgrade_offset),
        cmocka_unit_test(test_interim_continue),
        cmocka_unit_test(test_keep_alive_decisions),
        cmocka_unit_test(test_header_limit),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_body_callback_error_and_done_state),
        cmocka_unit_test(test_pipelined_reset),
        cmocka_unit_test(test_docker_fixtures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
