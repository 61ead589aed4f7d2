/*
 * test_http_client: the HTTP/1.1 client (src/core/http_client.c) against small
 * test servers written here in raw libuv, on a Unix socket in a temporary
 * directory and on 127.0.0.1 port 0.
 *
 * Every test runs a real loop until all handles are closed and ends with
 * uv_loop_close() == 0, so a leaked handle fails the test; ASan finds leaked
 * memory. A watchdog timer (unreferenced, so it never keeps the loop alive)
 * fails a test that hangs. No assertion depends on timing beyond ordering.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "core/http_client.h"

/* ------------------------------------------------------------ test server */

struct tsrv;

/* One accepted connection. */
struct tconn {
    struct tsrv *srv;           /* owner */
    union {
        uv_handle_t h;
        uv_stream_t s;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } u;                        /* the accepted socket */
    struct tconn *next;         /* srv->conns */
    char buf[16384];            /* request bytes not handled yet */
    size_t len;                 /* bytes in buf */
    int raw;                    /* after an upgrade: bytes go to srv->on_raw */
    int closing;                /* uv_close called */
    int nreq;                   /* requests handled on this connection */
};

typedef void (*tsrv_req_fn)(struct tconn *tc, const char *req, size_t len);
typedef void (*tsrv_raw_fn)(struct tconn *tc, const char *buf, size_t len);

struct tsrv {
    uv_loop_t *loop;
    int tcp;                    /* TCP listener, else Unix */
    union {
        uv_handle_t h;
        uv_stream_t s;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } lis;                      /* listener */
    uv_tcp_t lis6;              /* [::1] listener on the same port (TCP, when available) */
    int has6;                   /* lis6 initialised */
    char dir[64];               /* temp dir for the Unix socket */
    char path[108];             /* Unix socket path */
    int port;                   /* TCP port */
    int accepts;                /* connections accepted */
    int eofs;                   /* connections the client closed */
    int requests;               /* requests handled */
    char first_req[4096];       /* the first request head, NUL-terminated */
    tsrv_req_fn on_req;         /* called per complete request */
    tsrv_raw_fn on_raw;         /* called with bytes after an upgrade */
    void (*on_eof)(struct tconn *tc); /* optional: the client closed tc */
    void *ud;                   /* test context */
    struct tconn *conns;        /* open connections */
    int closed;                 /* tsrv_close called */
};

struct twrite {
    uv_write_t w;               /* libuv request */
    char data[];                /* copy of the bytes */
};

static void tconn_closed(uv_handle_t *h)
{
    free(h->data);
}

static void tconn_close(struct tconn *tc)
{
    if (tc->closing)
        return;
    tc->closing = 1;
    struct tconn **pp = &tc->srv->conns;
    while (*pp && *pp != tc)
        pp = &(*pp)->next;
    if (*pp)
        *pp = tc->next;
    uv_close(&tc->u.h, tconn_closed);
}

static void twrite_done(uv_write_t *w, int status)
{
    free(w);
}

static void tconn_write(struct tconn *tc, const char *data, size_t len)
{
    if (tc->closing)
        return;
    struct twrite *tw = malloc(sizeof *tw + len);
    assert_non_null(tw);
    memcpy(tw->data, data, len);
    uv_buf_t b = uv_buf_init(tw->data, (unsigned)len);
    if (uv_write(&tw->w, &tc->u.s, &b, 1, twrite_done) < 0)
        free(tw);
}

static void tconn_writes(struct tconn *tc, const char *z)
{
    tconn_write(tc, z, strlen(z));
}

static void tconn_alloc(uv_handle_t *h, size_t sz, uv_buf_t *buf)
{
    struct tconn *tc = h->data;
    *buf = uv_buf_init(tc->buf + tc->len, (unsigned)(sizeof tc->buf - tc->len));
}

/* Hands complete requests (head + Content-Length body) to the handler. */
static void tconn_parse(struct tconn *tc)
{
    while (!tc->closing && !tc->raw) {
        char *end = memmem(tc->buf, tc->len, "\r\n\r\n", 4);
        if (!end)
            return;
        size_t head = (size_t)(end - tc->buf) + 4, body = 0;
        char *cl = memmem(tc->buf, head, "Content-Length: ", 16);
        if (cl)
            body = strtoul(cl + 16, NULL, 10);
        if (tc->len < head + body)
            return;
        struct tsrv *s = tc->srv;
        if (s->requests == 0) {
            size_t n = head < sizeof s->first_req - 1 ? head : sizeof s->first_req - 1;
            memcpy(s->first_req, tc->buf, n);
            s->first_req[n] = '\0';
        }
        s->requests++;
        tc->nreq++;
        char req[16384];
        memcpy(req, tc->buf, head + body);
        memmove(tc->buf, tc->buf + head + body, tc->len - head - body);
        tc->len -= head + body;
        s->on_req(tc, req, head + body);
    }
    if (tc->raw && tc->len && !tc->closing) {
        size_t n = tc->len;
        tc->len = 0;
        tc->srv->on_raw(tc, tc->buf, n);
    }
}

static void tconn_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    struct tconn *tc = st->data;
    if (n < 0) {
        tc->srv->eofs++;
        if (tc->srv->on_eof)
            tc->srv->on_eof(tc);
        tconn_close(tc);
        return;
    }
    tc->len += (size_t)n;
    tconn_parse(tc);
}

static void tsrv_on_conn(uv_stream_t *lis, int status)
{
    struct tsrv *s = lis->data;
    assert_int_equal(status, 0);
    struct tconn *tc = calloc(1, sizeof *tc);
    assert_non_null(tc);
    tc->srv = s;
    if (s->tcp)
        uv_tcp_init(s->loop, &tc->u.tcp);
    else
        uv_pipe_init(s->loop, &tc->u.pipe, 0);
    tc->u.h.data = tc;
    assert_int_equal(uv_accept(lis, &tc->u.s), 0);
    tc->next = s->conns;
    s->conns = tc;
    s->accepts++;
    uv_read_start(&tc->u.s, tconn_alloc, tconn_read);
}

static void tsrv_start(struct tsrv *s, uv_loop_t *loop, int tcp, tsrv_req_fn on_req, void *ud)
{
    memset(s, 0, sizeof *s);
    s->loop = loop;
    s->tcp = tcp;
    s->on_req = on_req;
    s->ud = ud;
    if (tcp) {
        struct sockaddr_in a;
        uv_ip4_addr("127.0.0.1", 0, &a);
        uv_tcp_init(loop, &s->lis.tcp);
        assert_int_equal(uv_tcp_bind(&s->lis.tcp, (const struct sockaddr *)&a, 0), 0);
        struct sockaddr_in got;
        int len = sizeof got;
        uv_tcp_getsockname(&s->lis.tcp, (struct sockaddr *)&got, &len);
        s->port = ntohs(got.sin_port);
        /* "localhost" may resolve to ::1 first elsewhere: listen there too when possible */
        struct sockaddr_in6 a6;
        uv_ip6_addr("::1", s->port, &a6);
        uv_tcp_init(loop, &s->lis6);
        s->has6 = 1;
        s->lis6.data = s;
        if (uv_tcp_bind(&s->lis6, (const struct sockaddr *)&a6, UV_TCP_IPV6ONLY) != 0 ||
            uv_listen((uv_stream_t *)&s->lis6, 16, tsrv_on_conn) != 0) {
            uv_close((uv_handle_t *)&s->lis6, NULL);
            s->has6 = 0;
        }
    } else {
        snprintf(s->dir, sizeof s->dir, "/tmp/tether-httpc-XXXXXX");
        assert_non_null(mkdtemp(s->dir));
        snprintf(s->path, sizeof s->path, "%s/s.sock", s->dir);
        uv_pipe_init(loop, &s->lis.pipe, 0);
        assert_int_equal(uv_pipe_bind(&s->lis.pipe, s->path), 0);
    }
    s->lis.h.data = s;
    assert_int_equal(uv_listen(&s->lis.s, 16, tsrv_on_conn), 0);
}

static void tsrv_close(struct tsrv *s)
{
    if (s->closed)
        return;
    s->closed = 1;
    while (s->conns)
        tconn_close(s->conns);
    uv_close(&s->lis.h, NULL);
    if (s->has6)
        uv_close((uv_handle_t *)&s->lis6, NULL);
    if (!s->tcp) {
        unlink(s->path);
        rmdir(s->dir);
    }
}

/* ------------------------------------------------------------ test context */

#define MAXR 4

struct env {
    uv_loop_t loop;             /* the test's loop */
    struct tsrv srv;            /* the server (unused by some tests) */
    int have_srv;               /* srv started */
    struct http_client *client; /* client under test */
    uv_timer_t watchdog;        /* fails a hanging test */
    uv_timer_t aux;             /* a helper timer some tests use */
    int aux_used;               /* aux initialised */
    int ncomplete;              /* on_complete calls */
    int err[MAXR];              /* per completion */
    int status[MAXR];           /* per completion; -1 when resp was NULL */
    char body[MAXR][1024];      /* per completion, buffered body */
    size_t body_len[MAXR];      /* per completion */
    intptr_t tag[MAXR];         /* per completion: the request's tag (opts.data low bits) */
    char ctype[MAXR][64];       /* per completion: Content-Type */
    char streamed[4096];        /* on_body pieces */
    size_t streamed_len;        /* bytes in streamed */
    int nbody;                  /* on_body calls */
    int nheaders;               /* on_headers calls */
    int headers_status;         /* status seen by on_headers */
    int expect;                 /* completions after which the test finishes */
    int finish_on_eof;          /* finish when the server sees the client close instead */
    int finished;               /* env_finish ran */
    struct http_req *req;       /* a request handle some tests keep */
    int cancel_returned;        /* set after http_req_cancel returned */
    int complete_before_cancel_returned; /* on_complete ran inside http_req_cancel */
    char upgrade_rest[64];      /* bytes handed to on_upgrade */
    size_t upgrade_rest_len;    /* their count */
    char raw_in[64];            /* bytes read from the upgraded stream */
    size_t raw_in_len;          /* their count */
    int upgraded;               /* on_upgrade calls */
    int visits;                 /* http_client_visit callbacks */
    char visit_state[16];       /* last visited state */
    char visit_path[64];        /* last visited path */
    int64_t visit_left;         /* last visited deadline */
};

static struct env E;

static void watchdog_fired(uv_timer_t *t)
{
    fail_msg("test hung");
}

static void env_init(struct env *e, int with_srv, int tcp, tsrv_req_fn on_req)
{
    memset(e, 0, sizeof *e);
    assert_int_equal(uv_loop_init(&e->loop), 0);
    uv_timer_init(&e->loop, &e->watchdog);
    uv_timer_start(&e->watchdog, watchdog_fired, 10000, 0);
    uv_unref((uv_handle_t *)&e->watchdog);
    if (with_srv) {
        tsrv_start(&e->srv, &e->loop, tcp, on_req, e);
        e->have_srv = 1;
    }
    e->expect = 1;
}

static void env_client(struct env *e, const struct http_client_opts *o)
{
    struct http_endpoint ep;
    char url[256];
    if (e->srv.tcp)
        snprintf(url, sizeof url, "http://127.0.0.1:%d/", e->srv.port);
    else
        snprintf(url, sizeof url, "unix://%s", e->srv.path);
    assert_int_equal(http_endpoint_parse(url, &ep, NULL, 0), 0);
    e->client = http_client_new(&e->loop, &ep, o);
    assert_non_null(e->client);
}

/* Closes everything; the loop then runs out of handles. */
static void env_finish(struct env *e)
{
    if (e->finished)
        return;
    e->finished = 1;
    if (e->client)
        http_client_close(e->client);
    e->client = NULL;
    if (e->have_srv)
        tsrv_close(&e->srv);
    if (e->aux_used)
        uv_close((uv_handle_t *)&e->aux, NULL);
    uv_close((uv_handle_t *)&e->watchdog, NULL);
}

static void env_run(struct env *e)
{
    uv_run(&e->loop, UV_RUN_DEFAULT);
    assert_int_equal(e->finished, 1);
    assert_int_equal(uv_loop_close(&e->loop), 0);
}

static void on_complete(struct http_req *req, int err, const struct http_response *resp, void *data)
{
    struct env *e = &E;
    assert_true(e->ncomplete < MAXR);
    int i = e->ncomplete++;
    e->err[i] = err;
    e->status[i] = resp ? resp->status : -1;
    e->tag[i] = (intptr_t)data;
    if (resp && resp->body) {
        assert_int_equal(resp->body[resp->body_len], '\0');
        size_t n = resp->body_len < sizeof e->body[i] ? resp->body_len : sizeof e->body[i] - 1;
        memcpy(e->body[i], resp->body, n);
        e->body_len[i] = resp->body_len;
    }
    const char *ct = http_response_header(resp, "content-type");
    snprintf(e->ctype[i], sizeof e->ctype[i], "%s", ct ? ct : "");
    if (e->req == req && !e->cancel_returned)
        e->complete_before_cancel_returned = 1;
    if (e->ncomplete >= e->expect && !e->finish_on_eof)
        env_finish(e);
}

static struct http_req_opts get_opts(const char *path, intptr_t tag)
{
    struct http_req_opts o;
    memset(&o, 0, sizeof o);
    o.path = path;
    o.timeout_ms = 5000;
    o.on_complete = on_complete;
    o.data = (void *)tag;
    return o;
}

/* ------------------------------------------------------------ handlers */

static void reply_hello(struct tconn *tc, const char *req, size_t len)
{
    tconn_writes(tc, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello");
}

/* Echoes the request path as the body (keep-alive). */
static void reply_path(struct tconn *tc, const char *req, size_t len)
{
    const char *sp = memchr(req, ' ', len);
    const char *sp2 = memchr(sp + 1, ' ', len - (size_t)(sp + 1 - req));
    char out[256];
    int n = snprintf(out, sizeof out, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%.*s", (int)(sp2 - sp - 1),
                     (int)(sp2 - sp - 1), sp + 1);
    tconn_write(tc, out, (size_t)n);
}

static void reply_chunked(struct tconn *tc, const char *req, size_t len)
{
    tconn_writes(tc, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
    tconn_writes(tc, "7\r\n{\"a\":1}\r\n");
    tconn_writes(tc, "1;ext\r\n\n\r\n");
    tconn_writes(tc, "7\r\n{\"b\":2}\r\n0\r\n\r\n");
}

static void reply_close_delimited(struct tconn *tc, const char *req, size_t len)
{
    tconn_writes(tc, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close");
    tconn_close(tc);
}

static void reply_never(struct tconn *tc, const char *req, size_t len)
{
}

static void reply_big(struct tconn *tc, const char *req, size_t len)
{
    char out[256];
    int n = snprintf(out, sizeof out, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n%0100d", 0);
    tconn_write(tc, out, (size_t)n);
}

static void reply_malformed(struct tconn *tc, const char *req, size_t len)
{
    tconn_writes(tc, "HTTP/1.1 2x0 Bad\r\nContent-Length: 0\r\n\r\n");
}

static void reply_stream_open(struct tconn *tc, const char *req, size_t len)
{
    tconn_writes(tc, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "6\r\npiece1\r\n");
    tconn_writes(tc, "6\r\npiece2\r\n");
}

static void on_eof_finish(struct tconn *tc)
{
    struct env *e = tc->srv->ud;
    if (e->finish_on_eof)
        env_finish(e);
}

/* ------------------------------------------------------------ tests */

static void test_content_length_unix(void **state)
{
    struct env *e = &E;
    env_init(e, 1, 0, reply_hello);
    env_client(e, NULL);
    struct http_req_opts o = get_opts("/containers/json?all=1", 1);
    assert_non_null(http_request(e->client, &o));
    env_run(e);
    assert_int_equal(e->ncomplete, 1);
    assert_int_equal(e->err[0], 0);
    assert_int_equal(e->status[0], 200);
    assert_int_equal(e->body_len[0], 5);
    assert_string_equal(e->body[0], "hello");
    assert_string_equal(e->ctype[0], "text/plain");
    assert_non_null(strstr(e->srv.first_req, "GET /containers/json?all=1 HTTP/1.1\r\n"));
    assert_non_null(strstr(e->srv.first_req, "\r\nHost: localhost\r\n"));
    assert_null(strstr(e->srv.first_req, "Content-Length"));
}

static void test_chunked_tcp_post(void **state)
{
    struct env *e = &E;
    env_init(e, 1, 1, reply_chunked);
    env_client(e, NULL);
    struct http_req_opts o = get_opts("/v1/push", 1);
    static const char *const hdrs[] = { "Content-Type: application/json", NULL };
    o.method = "POST";
    o.headers = hdrs;
    o.body = "[{\"metric\":\"x\"}]";
    o.body_len = strlen(o.body);
    assert_non_null(http_request(e->client, &o));
    env_run(e);
    assert_int_equal(e->err[0], 0);
    assert_int_equal(e->status[0], 200);
    assert_string_equal(e->body[0], "{\"a\":1}\n{\"b\":2}");
    assert_string_equal(e->ctype[0], "application/json");
    char host[64];
    snprintf(host, sizeof host, "\r\nHost: 127.0.0.1:%d\r\n", e->srv.port);
    assert_non_null(strstr(e->srv.first_req, host));
    assert_non_null(strstr(e->srv.first_req, "POST /v1/push HTTP/1.1\r\n"));
    assert_non_null(strstr(e->srv.first_req, "\r\nContent-Length: 16\r\n"));
    assert_non_null(strstr(e->srv.first_req, "\r\nContent-Type: application/json\r\n"));
}

static void test_close_delimited(void **state)
{
    struct env *e = &E;
    env_init(e, 1, 0, reply_close_delimited);
    env_client(e, NULL);
    struct http_req_opts o = get_opts("/logs", 1);
    assert_non_null(http_request(e->client, &o));
    env_run(e);
    assert_int_equal(e->err[0], 0);
    assert_int_equal(e->status[0], 200);
    assert_string_equal(e->body[0], "until close");
}

/* Second request from a zero-delay timer after the first completed: same connection. */
static void second_request(uv_timer_t *t)
{
    struct http_req_opts o = get_opts("/second", 2);
    assert_non_null(http_request(E.client, &o));
}

static void on_complete_then_timer(struct http_req *req, int err, const struct http_response *resp, void *data)
{
    on_complete(req, err, resp, data);
    if (E.ncomplete == 1) {
        struct http_client_info info;
        http_client_info(E.client, &info);
        assert_int_equal(info.reqs_inflight, 0);
        uv_timer_start(&E.aux, second_request, 0, 0);
    }
}

static void test_keepalive_reuse(void **state)
{
    struct env *e = &E;
    env_init(e, 1, 1, reply_path);
    env_client(e, NULL);
    uv_timer_init(&e->loop, &e->aux);
    e->aux_used = 1;
    e->expect = 2;
    struct http_req_opts o = get_opts("/first", 1);
    o.on_complete = on_complete_then_timer;
    assert_non_null(http_request(e->client, &o));
    env_run(e);
    assert_int_equal(e->ncomplete, 2);
    assert_string_equal(e->body[0], "/first");
    assert_string_equal(e->body[1], "/second");
    assert_int_equal(e->srv.accepts, 1);
    assert_int_equal(e->srv.requests, 2);
}

/* A HEAD response announces a length but has no body; the connection stays usable. */
static void reply_head_then_path(struct tconn *tc, const char *req, size_t len)
{
    if (strncmp(req, "HEAD ", 5) == 0)
        tconn_writes(tc, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
    else
        reply_path(tc, req, len);
}

static void test_head_then_get(void **state)
{
    struct env *e = &E;
    env_init(e, 1, 0, reply_head_then_path);
    struct http_client_opts co = { .max_conns = 1 };
    env_client(e, &co);
    e->expect = 2;
    struct http_req_opts o = get_opts("/_ping", 1);
    o.method = "HEAD";
    assert_non_null(http_request(e->client, &o));
    o = get_opts("/after", 2);
    assert_non_null(http_request(e->client, &o));
    env_run(e);
    assert_int_equal(e->err[0], 0);
    assert_int_equal(e->status[0], 200);
    assert_int_equal(e->body_len[0], 0);
    assert_string_equal(e->body[1], "/after");
    assert_int_equal(e->srv.accepts, 1);
}

static void test_two_concurrent_max_conns_1(void **state)
{
    struct env *e = &E;
    env_init(e, 1, 0, reply_path);
    struct http_client_opts co = { .max_conns = 1 };
    env_client(e, &co);
    e->expect = 2;
    struct http_req_opts o1 = get_opts("/one", 1), o2 = get_opts("/two", 2);
    assert_non_null(http_request(e->client, &o1));
    assert_non_null(http_request(e->client, &o2));
    struct http_client_info info;
    http_client_info(e->client, &info);
    assert_int_equal(info.conns_open, 1);
    assert_int_equal(info.reqs_queued, 1);
    assert_int_equal(info.reqs_inflight, 1);
    env_run(e);
    assert_int_equal(e->ncomplete, 2);
    assert_int_equal(e->tag[0], 1);
    assert_int_equal(e->tag[1], 2);
    assert_string_equal(e->body[0], "/one");
    assert_string_equal(e->body[1], "/two");
    assert_int_equal(e->srv.accepts, 1);
}

static void check_closed_then_finish(struct tconn *tc)
{
    struct env *e = tc->srv->ud;
    if (e->ncomplete == 1)
        env_finish(e);
}

static void on_complete_timeout(struct http_req *req, int err, const struct http_response *resp, void *data)
{
    on_complete(req, err, resp, data);
    struct http_client_info info;
    http_client_info(E.client, &info);
    assert_int_equal(info.conns_open, 0); /* the failed request's connection is gone */
    assert_int_equal(info.errors_total, 1);
    if (E.srv.eofs == 1)
        env_finish(&E);
}

static void test_timeout_never_answers(void **state)
{
    struct env *e = &E;
    env_init(e, 1, 1, reply_never);
    e->srv.on_eof = check_closed_then_finish;
    env_client(e, NULL);
    e->finish_on_eof = 1;
    struct http_req_opts o = get_opts("/slow", 1);
    o.timeout_ms = 100;
    o.on_complete = on_complete_timeout;
    assert_non_null(http_request(e->client, &o));
    env_run(e);
    assert_int_equal(e->ncomplete, 1);
    assert_int_equal(e->err[0], -ETIMEDOUT);
    assert_int_equal(e->status[0], -1);
    assert_int_equal(e->srv.eofs, 1); /* the server saw the client close the connection */
}

static void test_refused_and_enoent(void **state)
{
    struct env *e = &E;
    env_init(e, 0, 0, NULL);
    e->expect = 2;
    /* a port that was just free */
    uv_tcp_t t;
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_init(&e->loop, &t);
    assert_int_equal(uv_tcp_bind(&t, (const struct sockaddr *)&a, 0), 0);
    struct sockaddr_in got;
    int len = sizeof got;
    uv_tcp_getsockname(&t, (struct sockaddr *)&got, &len);
    uv_close((uv_handle_t *)&t, NULL);
    char url[64];
    snprintf(url, sizeof url, "127.0.0.1:%d", ntohs(got.sin_port));
    struct http_endpoint ep1, ep2;
    assert_int_equal(http_endpoint_parse(url, &ep1, NULL, 0), 0);
    assert_int_equal(http_endpoint_parse("unix:///nonexistent/tether-test.sock", &ep2, NULL, 0), 0);
    struct http_client *c1 = http_client_new(&e->loop, &ep1, NULL);
    struct http_client *c2 = http_client_new(&e->loop, &ep2, NULL);
    e->finish_on_eof = 1; /* finish by hand below */
    struct http_req_opts o1 = get_opts("/", 1), o2 = get_opts("/", 2);
    assert_non_null(http_request(c1, &o1));
    assert_non_null(http_request(c2, &o2));
    for (int spins = 0; e->ncomplete < 2 && spins < 1000; spins++)
        uv_run(&e->loop, UV_RUN_ONCE);
    assert_int_equal(e->ncomplete, 2);
    http_client_close(c1);
    http_client_close(c2);
    env_finish(e);
    env_run(e);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(e->status[i], -1);
        assert_int_equal(e->err[i], e->tag[i] == 1 ? -ECONNREFUSED : -ENOENT);
    }
}

static void test_max_body(void **state)
{
    struct env *e = &E;
    env_init(e, 1, 0, reply_big);
    env_client(e, NULL);
    struct http_req_opts o = get_opts("/big", 1);
    o.max_body = 10;
    assert_non_null(http_request(e->client, &o));
    env_run(e);
    assert_int_equal(e->err[0], -EMSGSIZE);
    assert_int_equal(e->status[0], 200); /* the headers had arrived */
}

static void test_header_limit(void **state)
{
    struct env *e = &E;
    env_init(e, 1, 0, reply_hello);
    struct http_client_opts co = { .max_header_bytes = 40 };
    env_client(e, &co);
    struct http_req_opts o = get_opts("/", 1);
    assert_non_null(http_request(e->client, &o));
    env_run(e);
    assert_int_equal(e->err[0], -EMSGSIZE);
    assert_int_equal(e->status[0], -1);
}

static void test_malformed(void **state)
{
    struct env *e = &E;
    env_init(e, 1, 1, reply_malformed);
    env_client(e, NULL);
    struct http_req_opts o = get_opts("/", 1);
    assert_non_null(http_request(e->client, &o));
    env_run(e);
    assert_int_equal(e->err[0], -EPROTO);
}

static void stream_on_headers(struct http_req *req, const struct http_response *resp, void *data)
{
    E.nheaders++;
    E.headers_status = resp->status;
    assert_int_equal(E.nbody, 0);
    assert_string_equal(http_response_header(resp, "Content-Type"), "application/json");
}

static void stream_on_body(struct http_req *req, const char *buf, size_t len, void *data)
{
    struct env *e = &E;
    assert_true(e->streamed_len + len < sizeof e->streamed);
    memcpy(e->streamed + e->streamed_len, buf, len);
    e->streamed_len += len;
    e->nbody++;
    if (e->streamed_len == 12 && e->req == req) {
        http_req_cancel(req); /* from inside on_body */
        e->cancel_returned = 1;
    }
}

static void test_stream_then_cancel(void **state)
{
    struct env *e = &E;
    env_init(e, 1, 0, reply_stream_open);
    e->srv.on_eof = on_eof_finish;
    e->finish_on_eof = 1;
    env_client(e, NULL);
    struct http_req_opts o = get_opts("/events", 1);
    o.stream = 1;
    o.timeout_ms = 50; /* covers connect + headers only: must not end the stream */
    o.on_headers = stream_on_headers;
    o.on_body = stream_on_body;
    e->req = http_request(e->client, &o);
    assert_non_null(e->req);
    env_run(e);
    assert_int_equal(e->nheaders, 1);
    assert_int_equal(e->headers_status, 200);
    assert_int_equal(e->streamed_len, 12);
    assert_memory_equal(e->streamed, "piece1piece2", 12);
    assert_int_equal(e->ncomplete, 1);
    assert_int_equal(e->err[0], -ECANCELED);
    assert_int_equal(e->status[0], 200);
    assert_int_equal(e->complete_before_cancel_returned, 1);
    assert_int_equal(e->srv.eofs, 1);
}

static void test_idle_timeout_stalled_stream(void **state)
{
    struct env *e = &E;
    env_init(e, 1, 1, reply_stream_open);
    env_client(e, NULL);
    struct http_req_opts o = get_opts("/events", 1);
    o.stream = 1;
    o.timeout_ms = 30;
    o.idle_timeout_ms = 150;
    o.on_body = stream_on_body;
    assert_non_null(http_request(e->client, &o));
    env_run(e);
    assert_int_equal(e->err[0], -ETIMEDOUT);
    assert_int_equal(e->status[0], 200);
    assert_memory_equal(e->streamed, "piece1piece2", 12);
}

/* Upgrade: 101 + raw bytes in one write, then raw traffic both ways. */
static void srv_raw(struct tconn *tc, const char *buf, size_t len)
{
    if (len >= 4 && memcmp(buf, "ping", 4) == 0)
        tconn_writes(tc, "pong");
}

static void reply_upgrade(struct tconn *tc, const char *req, size_t len)
{
    static const char resp[] = "HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\n"
                               "Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
                               "\x01\0\0\0\0\0\0\x04RAW1";
    tc->raw = 1;
    tconn_write(tc, resp, sizeof resp - 1);
}

static void up_alloc(uv_handle_t *h, size_t sz, uv_buf_t *buf)
{
    static char b[256];
    *buf = uv_buf_init(b, sizeof b);
}

static void up_closed(uv_handle_t *h)
{
    free(h);
}

static void up_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct env *e = s->data;
    if (n > 0) {
        assert_true(e->raw_in_len + (size_t)n <= sizeof e->raw_in);
        memcpy(e->raw_in + e->raw_in_len, buf->base, (size_t)n);
        e->raw_in_len += (size_t)n;
    }
    if (n < 0 || e->raw_in_len >= 4) {
        uv_close((uv_handle_t *)s, up_closed);
        env_finish(e);
    }
}

static void up_write_done(uv_write_t *w, int status)
{
    free(w);
}

static void on_upgrade(struct http_req *req, uv_stream_t *stream, const struct http_response *resp,
                       const char *rest, size_t rest_len, void *data)
{
    struct env *e = &E;
    e->upgraded++;
    assert_int_equal(resp->status, 101);
    assert_string_equal(http_response_header(resp, "upgrade"), "tcp");
    assert_true(rest_len <= sizeof e->upgrade_rest);
    memcpy(e->upgrade_rest, rest, rest_len);
    e->upgrade_rest_len = rest_len;
    assert_false(uv_is_closing((uv_handle_t *)stream));
    stream->data = e;
    assert_int_equal(uv_read_start(stream, up_alloc, up_read), 0);
    uv_write_t *w = malloc(sizeof *w);
    uv_buf_t b = uv_buf_init((char *)"ping", 4);
    assert_int_equal(uv_write(w, stream, &b, 1, up_write_done), 0);
    /* the client no longer counts the socket */
    struct http_client_info info;
    http_client_info(e->client, &info);
    assert_int_equal(info.conns_open, 0);
}

static void test_upgrade(void **state)
{
    struct env *e = &E;
    env_init(e, 1, 0, reply_upgrade);
    e->srv.on_raw = srv_raw;
    env_client(e, NULL);
    struct http_req_opts o = get_opts("/containers/x/attach?stream=1&stdout=1", 1);
    o.method = "POST";
    o.upgrade = 1;
    o.timeout_ms = 50; /* stops at the 101: must not fire later */
    o.on_upgrade = on_upgrade;
    assert_non_null(http_request(e->client, &o));
    env_run(e);
    assert_int_equal(e->upgraded, 1);
    assert_int_equal(e->ncomplete, 0);
    assert_int_equal(e->upgrade_rest_len, 12);
    assert_memory_equal(e->upgrade_rest, "\x01\0\0\0\0\0\0\x04RAW1", 12);
    assert_int_equal(e->raw_in_len, 4);
    assert_memory_equal(e->raw_in, "pong", 4);
    assert_non_null(strstr(e->srv.first_req, "\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"));
}

static void close_client_timer(uv_timer_t *t)
{
    struct env *e = &E;
    struct http_client_info info;
    http_client_info(e->client, &info);
    assert_int_equal(info.reqs_inflight, 1);
    assert_int_equal(info.reqs_queued, 1);
    http_client_close(e->client);
    e->client = NULL;
    /* both requests completed from inside http_client_close */
    assert_int_equal(e->ncomplete, 2);
}

static void test_close_with_request_in_flight(void **state)
{
    struct env *e = &E;
    env_init(e, 1, 0, reply_never);
    struct http_client_opts co = { .max_conns = 1 };
    env_client(e, &co);
    e->expect = 2;
    struct http_req_opts o1 = get_opts("/a", 1), o2 = get_opts("/b", 2);
    assert_non_null(http_request(e->client, &o1));
    assert_non_null(http_request(e->client, &o2));
    uv_timer_init(&e->loop, &e->aux);
    e->aux_used = 1;
    uv_timer_start(&e->aux, close_client_timer, 50, 0);
    env_run(e);
    assert_int_equal(e->ncomplete, 2);
    assert_int_equal(e->err[0], -ECANCELED);
    assert_int_equal(e->err[1], -ECANCELED);
}

/* Issues the next request from inside on_complete and keeps reading resp afterwards. */
static void on_complete_chain(struct http_req *req, int err, const struct http_response *resp, void *data)
{
    struct env *e = &E;
    if (e->ncomplete == 0) {
        struct http_req_opts o = get_opts("/next", 2);
        o.on_complete = on_complete_chain;
        assert_non_null(http_request(e->client, &o));
        /* the response must still be intact after the new request was queued */
        assert_int_equal(resp->status, 200);
        assert_string_equal(resp->body, "/first");
        assert_non_null(resp->headers[0].name);
    }
    on_complete(req, err, resp, data);
}

static void test_request_from_on_complete(void **state)
{
    struct env *e = &E;
    env_init(e, 1, 0, reply_path);
    env_client(e, NULL);
    e->expect = 2;
    struct http_req_opts o = get_opts("/first", 1);
    o.on_complete = on_complete_chain;
    assert_non_null(http_request(e->client, &o));
    env_run(e);
    assert_int_equal(e->ncomplete, 2);
    assert_int_equal(e->err[1], 0);
    assert_string_equal(e->body[1], "/next");
    assert_int_equal(e->srv.accepts, 1); /* reused once the first response was delivered */
}

/* Closing the client from inside on_complete while another request is queued. */
static void on_complete_close(struct http_req *req, int err, const struct http_response *resp, void *data)
{
    on_complete(req, err, resp, data);
    if (E.ncomplete == 1) {
        http_client_close(E.client);
        E.client = NULL;
    }
}

static void test_close_from_on_complete(void **state)
{
    struct env *e = &E;
    env_init(e, 1, 0, reply_path);
    struct http_client_opts co = { .max_conns = 1 };
    env_client(e, &co);
    e->expect = 2;
    struct http_req_opts o1 = get_opts("/a", 1), o2 = get_opts("/b", 2);
    o1.on_complete = on_complete_close;
    o2.on_complete = on_complete_close;
    assert_non_null(http_request(e->client, &o1));
    assert_non_null(http_request(e->client, &o2));
    env_run(e);
    assert_int_equal(e->err[0], 0);
    assert_string_equal(e->body[0], "/a");
    assert_int_equal(e->err[1], -ECANCELED);
}

static void visit_fn(void *arg, const char *st, uint64_t age_ms, const char *method, const char *path,
                     int64_t left)
{
    struct env *e = arg;
    e->visits++;
    snprintf(e->visit_state, sizeof e->visit_state, "%s", st);
    snprintf(e->visit_path, sizeof e->visit_path, "%s %s", method ? method : "-", path ? path : "-");
    e->visit_left = left;
}

static void visit_timer(uv_timer_t *t)
{
    struct env *e = &E;
    http_client_visit(e->client, visit_fn, e);
    http_req_cancel(e->req);
}

static void test_visit_and_cancel(void **state)
{
    struct env *e = &E;
    env_init(e, 1, 1, reply_never);
    env_client(e, NULL);
    struct http_req_opts o = get_opts("/containers/abc/json", 1);
    o.timeout_ms = 5000;
    e->req = http_request(e->client, &o);
    assert_non_null(e->req);
    uv_timer_init(&e->loop, &e->aux);
    e->aux_used = 1;
    uv_timer_start(&e->aux, visit_timer, 50, 0);
    env_run(e);
    assert_int_equal(e->visits, 1);
    assert_string_equal(e->visit_state, "busy");
    assert_string_equal(e->visit_path, "GET /containers/abc/json");
    assert_true(e->visit_left > 0 && e->visit_left <= 5000);
    assert_int_equal(e->err[0], -ECANCELED);
    assert_int_equal(e->complete_before_cancel_returned, 1);
}

/* Host names go through getaddrinfo (libuv's thread pool). */
static void test_hostname_lookup(void **state)
{
    struct env *e = &E;
    env_init(e, 1, 1, reply_hello);
    char url[64];
    snprintf(url, sizeof url, "tcp://localhost:%d", e->srv.port);
    struct http_endpoint ep;
    assert_int_equal(http_endpoint_parse(url, &ep, NULL, 0), 0);
    e->client = http_client_new(&e->loop, &ep, NULL);
    assert_non_null(e->client);
    struct http_req_opts o = get_opts("/", 1);
    assert_non_null(http_request(e->client, &o));
    env_run(e);
    assert_int_equal(e->err[0], 0);
    assert_string_equal(e->body[0], "hello");
    assert_non_null(strstr(e->srv.first_req, "\r\nHost: localhost:"));
}

static void test_invalid_requests(void **state)
{
    struct env *e = &E;
    env_init(e, 1, 0, reply_hello);
    env_client(e, NULL);
    struct http_req_opts o = get_opts("no-slash", 1);
    assert_null(http_request(e->client, &o));
    o = get_opts("/with space", 1);
    assert_null(http_request(e->client, &o));
    o = get_opts("/", 1);
    o.method = "GE T";
    assert_null(http_request(e->client, &o));
    o = get_opts("/", 1);
    static const char *const bad_hdr[] = { "X-Injected: a\r\nEvil: b", NULL };
    o.headers = bad_hdr;
    assert_null(http_request(e->client, &o));
    static const char *const cl_hdr[] = { "Content-Length: 3", NULL };
    o.headers = cl_hdr;
    assert_null(http_request(e->client, &o));
    o = get_opts("/", 1);
    o.upgrade = 1; /* no on_upgrade */
    assert_null(http_request(e->client, &o));
    o = get_opts("/", 1);
    o.on_complete = NULL;
    assert_null(http_request(e->client, &o));
    struct http_client_info info;
    http_client_info(e->client, &info);
    assert_int_equal(info.reqs_total, 0);
    env_finish(e);
    env_run(e);
    assert_int_equal(e->ncomplete, 0);
}

/* The server drops a kept-alive connection when the next request arrives (its
 * idle timeout raced ours): a GET is resent once on a new connection, a POST fails. */
static void reply_then_drop(struct tconn *tc, const char *req, size_t len)
{
    if (tc->nreq >= 2)
        tconn_close(tc);
    else
        reply_path(tc, req, len);
}

static void after_first_send_two(uv_timer_t *t)
{
    struct http_req_opts o = get_opts("/again", 2);
    assert_non_null(http_request(E.client, &o));
}

static void on_complete_first_of_retry(struct http_req *req, int err, const struct http_response *resp,
                                       void *data)
{
    on_complete(req, err, resp, data);
    if (E.ncomplete == 1)
        uv_timer_start(&E.aux, after_first_send_two, 0, 0);
}

static void test_stale_keepalive_retry(void **state)
{
    struct env *e = &E;
    env_init(e, 1, 0, reply_then_drop);
    struct http_client_opts co = { .max_conns = 1 };
    env_client(e, &co);
    uv_timer_init(&e->loop, &e->aux);
    e->aux_used = 1;
    e->expect = 2;
    struct http_req_opts o = get_opts("/first", 1);
    o.on_complete = on_complete_first_of_retry;
    assert_non_null(http_request(e->client, &o));
    env_run(e);
    assert_int_equal(e->err[0], 0);
    assert_int_equal(e->err[1], 0);
    assert_string_equal(e->body[1], "/again");
    assert_int_equal(e->srv.accepts, 2);
}

static void after_first_post(uv_timer_t *t)
{
    struct http_req_opts o = get_opts("/again", 2);
    o.method = "POST";
    assert_non_null(http_request(E.client, &o));
}

static void on_complete_first_of_post(struct http_req *req, int err, const struct http_response *resp,
                                      void *data)
{
    on_complete(req, err, resp, data);
    if (E.ncomplete == 1)
        uv_timer_start(&E.aux, after_first_post, 0, 0);
}

static void test_stale_keepalive_post_not_retried(void **state)
{
    struct env *e = &E;
    env_init(e, 1, 0, reply_then_drop);
    env_client(e, NULL);
    uv_timer_init(&e->loop, &e->aux);
    e->aux_used = 1;
    e->expect = 2;
    struct http_req_opts o = get_opts("/first", 1);
    o.on_complete = on_complete_first_of_post;
    assert_non_null(http_request(e->client, &o));
    env_run(e);
    assert_int_equal(e->err[0], 0);
    assert_int_equal(e->err[1], -ECONNRESET);
    assert_int_equal(e->srv.accepts, 1);
}

/* "Connection: close" ends the connection after the response; the next request reconnects. */
static void reply_conn_close(struct tconn *tc, const char *req, size_t len)
{
    tconn_writes(tc, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok");
}

static void test_connection_close_header(void **state)
{
    struct env *e = &E;
    env_init(e, 1, 1, reply_conn_close);
    struct http_client_opts co = { .max_conns = 1 };
    env_client(e, &co);
    e->expect = 2;
    struct http_req_opts o1 = get_opts("/a", 1), o2 = get_opts("/b", 2);
    assert_non_null(http_request(e->client, &o1));
    assert_non_null(http_request(e->client, &o2));
    env_run(e);
    assert_int_equal(e->err[0], 0);
    assert_int_equal(e->err[1], 0);
    assert_string_equal(e->body[1], "ok");
    assert_int_equal(e->srv.accepts, 2);
    assert_true(e->srv.eofs >= 1); /* the client closed the first connection itself */
}

/* An idle pooled connection is closed after idle_close_ms. */
static void test_idle_pool_close(void **state)
{
    struct env *e = &E;
    env_init(e, 1, 0, reply_hello);
    e->srv.on_eof = on_eof_finish;
    e->finish_on_eof = 1;
    struct http_client_opts co = { .idle_close_ms = 30 };
    env_client(e, &co);
    struct http_req_opts o = get_opts("/", 1);
    assert_non_null(http_request(e->client, &o));
    env_run(e);
    assert_int_equal(e->err[0], 0);
    assert_int_equal(e->srv.eofs, 1);
}

/* A body larger than one read buffer, delivered in many reads. */
#define BIG_LEN (300 * 1024)

static void reply_large(struct tconn *tc, const char *req, size_t len)
{
    char *out = malloc(BIG_LEN + 128);
    assert_non_null(out);
    int n = snprintf(out, 128, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", BIG_LEN);
    for (int i = 0; i < BIG_LEN; i++)
        out[n + i] = (char)('a' + i % 26);
    tconn_write(tc, out, (size_t)n + BIG_LEN);
    free(out);
}

static void on_complete_large(struct http_req *req, int err, const struct http_response *resp, void *data)
{
    assert_int_equal(err, 0);
    assert_int_equal(resp->body_len, BIG_LEN);
    for (int i = 0; i < BIG_LEN; i++)
        if (resp->body[i] != (char)('a' + i % 26))
            fail_msg("body differs at %d", i);
    on_complete(req, err, resp, data);
}

static void test_large_body(void **state)
{
    struct env *e = &E;
    env_init(e, 1, 1, reply_large);
    env_client(e, NULL);
    struct http_req_opts o = get_opts("/big", 1);
    o.on_complete = on_complete_large;
    assert_non_null(http_request(e->client, &o));
    env_run(e);
    assert_int_equal(e->ncomplete, 1);
    assert_int_equal(e->body_len[0], BIG_LEN);
}

/* Cancelling while the connection is still being set up (connect pending,
 * and for a host name the lookup pending) leaks nothing. */
static void test_cancel_while_connecting(void **state)
{
    struct env *e = &E;
    env_init(e, 1, 1, reply_hello);
    e->expect = 2;
    env_client(e, NULL);
    char url[64];
    snprintf(url, sizeof url, "localhost:%d", e->srv.port);
    struct http_endpoint ep;
    assert_int_equal(http_endpoint_parse(url, &ep, NULL, 0), 0);
    struct http_client *named = http_client_new(&e->loop, &ep, NULL);
    assert_non_null(named);
    struct http_req_opts o1 = get_opts("/", 1), o2 = get_opts("/", 2);
    struct http_req *r1 = http_request(e->client, &o1);
    struct http_req *r2 = http_request(named, &o2);
    assert_non_null(r1);
    assert_non_null(r2);
    assert_int_equal(e->ncomplete, 0); /* never from inside http_request */
    struct http_client_info info;
    http_client_info(named, &info);
    assert_int_equal(info.conns_open, 1);
    assert_int_equal(info.connects_total, 1);
    http_req_cancel(r2);
    assert_int_equal(e->ncomplete, 1);
    http_client_close(named);
    http_req_cancel(r1); /* the second completion finishes the test */
    env_run(e);
    assert_int_equal(e->err[0], -ECANCELED);
    assert_int_equal(e->err[1], -ECANCELED);
    assert_int_equal(e->tag[0], 2);
}

static void test_endpoint_parse(void **state)
{
    struct http_endpoint ep;
    char path[64], s[300];
    assert_int_equal(http_endpoint_parse("unix:///var/run/docker.sock", &ep, path, sizeof path), 0);
    assert_int_equal(ep.kind, HTTP_EP_UNIX);
    assert_string_equal(ep.path, "/var/run/docker.sock");
    assert_string_equal(path, "/");
    http_endpoint_str(&ep, s, sizeof s);
    assert_string_equal(s, "unix:///var/run/docker.sock");

    assert_int_equal(http_endpoint_parse("/run/d.sock", &ep, NULL, 0), 0);
    assert_int_equal(ep.kind, HTTP_EP_UNIX);
    assert_string_equal(ep.path, "/run/d.sock");

    assert_int_equal(http_endpoint_parse("http://127.0.0.1:1988/v1/push", &ep, path, sizeof path), 0);
    assert_int_equal(ep.kind, HTTP_EP_TCP);
    assert_string_equal(ep.host, "127.0.0.1");
    assert_int_equal(ep.port, 1988);
    assert_string_equal(path, "/v1/push");
    http_endpoint_str(&ep, s, sizeof s);
    assert_string_equal(s, "127.0.0.1:1988");

    assert_int_equal(http_endpoint_parse("http://falcon.example.com/", &ep, path, sizeof path), 0);
    assert_int_equal(ep.port, 80);
    assert_string_equal(ep.host, "falcon.example.com");

    assert_int_equal(http_endpoint_parse("tcp://dockerhost:2375", &ep, path, sizeof path), 0);
    assert_int_equal(ep.port, 2375);
    assert_string_equal(path, "/");

    assert_int_equal(http_endpoint_parse("10.0.0.5:9100", &ep, NULL, 0), 0);
    assert_string_equal(ep.host, "10.0.0.5");
    assert_int_equal(ep.port, 9100);

    assert_int_equal(http_endpoint_parse("http://[::1]:8080/metrics?x=1", &ep, path, sizeof path), 0);
    assert_string_equal(ep.host, "::1");
    assert_int_equal(ep.port, 8080);
    assert_string_equal(path, "/metrics?x=1");
    http_endpoint_str(&ep, s, sizeof s);
    assert_string_equal(s, "[::1]:8080");

    static const char *const bad[] = {
        "", "unix://", "unix://relative.sock", "https://host/", "ftp://x:1", "tcp://host", "host",
        "host:", "host:0", "host:65536", "host:12a", "http://:80/", "http://us@host:80/", "::1:80",
        "http://[::1/", "http://[::1]x/", "http://host:80?q", "http://ho st:80/", "http://host/a b",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&ep, 0x5a, sizeof ep);
        if (http_endpoint_parse(bad[i], &ep, path, sizeof path) != -EINVAL)
            fail_msg("accepted bad endpoint \"%s\"", bad[i]);
        assert_int_equal(ep.port, 0x5a5a); /* untouched on error */
    }
    char longp[200];
    memset(longp, 'a', sizeof longp - 1);
    longp[0] = '/';
    longp[sizeof longp - 1] = '\0';
    assert_int_equal(http_endpoint_parse(longp, &ep, NULL, 0), -EINVAL);
    assert_int_equal(http_endpoint_parse("http://h:1/long/path", &ep, path, 5), -EINVAL);
    assert_int_equal(http_endpoint_parse(NULL, &ep, NULL, 0), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_endpoint_parse),
        cmocka_unit_test(test_content_length_unix),
        cmocka_unit_test(test_chunked_tcp_post),
        cmocka_unit_test(test_close_delimited),
        cmocka_unit_test(test_keepalive_reuse),
        cmocka_unit_test(test_head_then_get),
        cmocka_unit_test(test_two_concurrent_max_conns_1),
        cmocka_unit_test(test_timeout_never_answers),
        cmocka_unit_test(test_refused_and_enoent),
        cmocka_unit_test(test_max_body),
        cmocka_unit_test(test_header_limit),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_stream_then_cancel),
        cmocka_unit_test(test_idle_timeout_stalled_stream),
        cmocka_unit_test(test_upgrade),
        cmocka_unit_test(test_close_with_request_in_flight),
        cmocka_unit_test(test_request_from_on_complete),
        cmocka_unit_test(test_close_from_on_complete),
        cmocka_unit_test(test_visit_and_cancel),
        cmocka_unit_test(test_hostname_lookup),
        cmocka_unit_test(test_stale_keepalive_retry),
        cmocka_unit_test(test_stale_keepalive_post_not_retried),
        cmocka_unit_test(test_connection_close_header),
        cmocka_unit_test(test_idle_pool_close),
        cmocka_unit_test(test_large_body),
        cmocka_unit_test(test_cancel_while_connecting),
        cmocka_unit_test(test_invalid_requests),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
