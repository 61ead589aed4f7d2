/*
 * Unit tests of core/http_server with a real libuv loop and real sockets.
 *
 * Each test runs the server on the main thread's loop and a blocking client on
 * a second thread (tests only). The client never touches the loop: it records
 * the first failed check in the fixture and wakes the loop with a uv_async_t
 * when it is finished; the loop then closes the server, the loop drains, and
 * the main thread asserts the client's verdict, the server's counters, and
 * uv_loop_close() == 0. Counters the client must wait for are atomics.
 * Responses are parsed on the client side with http-parser, which also
 * validates chunked framing.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>
#include <http_parser.h>
#include <uv.h>

#include "core/http_server.h"

/* ---- fixture ---- */

struct fx {
    uv_loop_t loop;                 /* the server's loop (main thread) */
    struct http_server *srv;        /* server under test */
    uv_async_t async;               /* client -> loop: finished, close the server */
    pthread_t thread;               /* client thread */
    int port;                       /* bound port */
    void (*client)(struct fx *);    /* client body (client thread) */
    char fail[512];                 /* first failed client check */
    atomic_int handler_calls;       /* handler invocations */
    atomic_int done_calls;          /* producer done() calls */
    atomic_int fill_calls;          /* producer fill() calls */
    atomic_int late_replied;        /* deferred replies made */
    atomic_int server_closed;       /* http_server_close ran */
    int fill_with_pending;          /* fill called while a write was in flight */
    int fill_reentered;             /* fill called from inside fill */
    int done_after_close;           /* done calls that happened after server close */
    size_t max_cap;                 /* largest cap passed to fill */
    struct http_sreq *held;         /* a request whose reply is deferred */
    bool held_stream;               /* reply to `held` with a stream */
    uv_timer_t late_timer;          /* drives deferred replies */
    bool late_timer_open;           /* late_timer initialised and not closed */
    uv_timer_t sampler;             /* samples write_pending_bytes while a test runs */
    bool sampler_open;              /* sampler initialised and not closed */
    uint64_t max_pending;           /* largest write_pending_bytes sampled */
    unsigned samples_pending;       /* samples that found a write in flight */
};

#define CHECK(fx, cond) check_at((fx), (cond), __LINE__, #cond)

static bool check_at(struct fx *fx, bool ok, int line, const char *what)
{
    if (!ok && !fx->fail[0])
        snprintf(fx->fail, sizeof(fx->fail), "client check failed at line %d: %s (errno %d)", line,
                 what, errno);
    return ok;
}

/* ---- producer ---- */

struct producer {
    struct fx *fx;    /* fixture */
    size_t size;      /* bytes to produce */
    size_t off;       /* bytes produced */
    int piece;        /* fill calls so far */
    int fail_at;      /* piece index that fails with -EIO, -1 never */
    int close_at;     /* piece index that closes the whole server first, -1 never */
    bool in_fill;     /* re-entrancy detector */
};

static long prod_fill(char *buf, size_t cap, void *state)
{
    struct producer *p = state;
    struct fx *fx = p->fx;
    atomic_fetch_add(&fx->fill_calls, 1);
    if (p->in_fill)
        fx->fill_reentered++;
    p->in_fill = true;
    struct http_server_info info;
    http_server_info(fx->srv, &info);
    if (info.write_pending_bytes != 0)
        fx->fill_with_pending++;
    if (cap > fx->max_cap)
        fx->max_cap = cap;
    long ret;
    if (p->piece == p->close_at) {
        atomic_store(&fx->server_closed, 1);
        http_server_close(fx->srv); /* re-entrant close from inside fill */
    }
    if (p->piece++ == p->fail_at) {
        ret = -EIO;
    } else {
        size_t n = p->size - p->off < cap ? p->size - p->off : cap;
        for (size_t i = 0; i < n; i++)
            buf[i] = (char)('a' + (p->off + i) % 26);
        p->off += n;
        ret = (long)n;
    }
    p->in_fill = false;
    return ret;
}

static void prod_done(void *state)
{
    struct producer *p = state;
    if (atomic_load(&p->fx->server_closed))
        p->fx->done_after_close++;
    atomic_fetch_add(&p->fx->done_calls, 1);
    free(p);
}

static struct producer *prod_new(struct fx *fx, size_t size, int fail_at)
{
    struct producer *p = calloc(1, sizeof(*p));
    assert_non_null(p);
    p->fx = fx;
    p->size = size;
    p->fail_at = fail_at;
    p->close_at = -1;
    return p;
}

/* ---- handler ---- */

struct delayed {
    uv_timer_t timer;       /* fires once */
    struct http_sreq *req;  /* request to answer */
};

static void on_delayed_closed(uv_handle_t *h) { free(h->data); }

static void on_delayed(uv_timer_t *t)
{
    struct delayed *d = t->data;
    char body[256];
    int n = snprintf(body, sizeof(body), "delayed %s", http_sreq_query(d->req));
    http_reply(d->req, 200, "text/plain", body, (size_t)n);
    uv_close((uv_handle_t *)&d->timer, on_delayed_closed);
}

static void late_reply(struct fx *fx)
{
    if (fx->held_stream)
        http_reply_stream(fx->held, 200, "text/plain", prod_fill, prod_done, prod_new(fx, 10, -1));
    else
        http_reply(fx->held, 200, "text/plain", "late\n", 5);
    fx->held = NULL;
    atomic_fetch_add(&fx->late_replied, 1);
    uv_timer_stop(&fx->late_timer);
    uv_close((uv_handle_t *)&fx->late_timer, NULL);
    fx->late_timer_open = false;
}

/* Polls until the client's connection is gone, then replies. */
static void on_late_poll(uv_timer_t *t)
{
    struct fx *fx = t->data;
    struct http_server_info info;
    http_server_info(fx->srv, &info);
    if (info.conns_open == 0)
        late_reply(fx);
}

static void on_late_after_close(uv_timer_t *t) { late_reply(t->data); }

static size_t query_size(struct http_sreq *req, size_t dflt)
{
    char buf[32];
    if (http_sreq_query_param(req, "size", buf, sizeof(buf)) == 0)
        return (size_t)strtoull(buf, NULL, 10);
    return dflt;
}

static void handler(struct http_sreq *req, void *data)
{
    struct fx *fx = data;
    atomic_fetch_add(&fx->handler_calls, 1);
    const char *path = http_sreq_path(req);
    char body[4096];
    int n;
    if (strcmp(path, "/hello") == 0) {
        http_reply(req, 200, "text/plain; charset=utf-8", "hello\n", 6);
    } else if (strcmp(path, "/echo") == 0) {
        size_t blen;
        const char *b = http_sreq_body(req, &blen);
        const char *host = http_sreq_header(req, "HOST");
        n = snprintf(body, sizeof(body), "%s %s ?%s body=%.*s host=%s", http_sreq_method(req), path,
                     http_sreq_query(req), (int)blen, b, host ? host : "-");
        http_reply(req, 200, "text/plain", body, (size_t)n);
    } else if (strcmp(path, "/params") == 0) {
        char v[256];
        size_t off = 0;
        for (unsigned i = 0; http_sreq_query_param_n(req, "match[]", i, v, sizeof(v)) == 0; i++)
            off += (size_t)snprintf(body + off, sizeof(body) - off, "%s|", v);
        if (http_sreq_query_param(req, "x", v, sizeof(v)) == 0)
            off += (size_t)snprintf(body + off, sizeof(body) - off, "x=%s|", v);
        if (http_sreq_query_param(req, "missing", v, sizeof(v)) == -ENOENT)
            off += (size_t)snprintf(body + off, sizeof(body) - off, "nomissing");
        http_reply(req, 200, "text/plain", body, off);
    } else if (strcmp(path, "/delay") == 0) {
        struct delayed *d = calloc(1, sizeof(*d));
        assert_non_null(d);
        d->req = req;
        uv_timer_init(&fx->loop, &d->timer);
        d->timer.data = d;
        uv_timer_start(&d->timer, on_delayed, 20, 0);
    } else if (strcmp(path, "/stream") == 0) {
        http_reply_stream(req, 200, "text/plain", prod_fill, prod_done,
                          prod_new(fx, query_size(req, 1000), -1));
    } else if (strcmp(path, "/stream-fail") == 0) {
        http_reply_stream(req, 200, "text/plain", prod_fill, prod_done, prod_new(fx, 1000000, 0));
    } else if (strcmp(path, "/stream-fail-later") == 0) {
        http_reply_stream(req, 200, "text/plain", prod_fill, prod_done, prod_new(fx, 1000000, 2));
    } else if (strcmp(path, "/stream-quit") == 0) {
        struct producer *p = prod_new(fx, 1000000, -1);
        p->close_at = 1;
        http_reply_stream(req, 200, "text/plain", prod_fill, prod_done, p);
    } else if (strcmp(path, "/quit") == 0) {
        /* Close from inside the handler, then reply: the reply is discarded. */
        atomic_store(&fx->server_closed, 1);
        http_server_close(fx->srv);
        http_reply(req, 200, "text/plain", "bye\n", 4);
    } else if (strcmp(path, "/twice") == 0) {
        http_reply(req, 200, "text/plain", "once\n", 5);
        http_reply(req, 500, "text/plain", "twice\n", 6);  /* ignored, logged */
        http_reply_stream(req, 200, "text/plain", prod_fill, prod_done, prod_new(fx, 10, -1));
    } else if (strcmp(path, "/nocontent") == 0) {
        http_reply(req, 204, "text/plain", "ignored", 7);
    } else if (strcmp(path, "/late") == 0 || strcmp(path, "/late-stream") == 0) {
        fx->held = req;
        fx->held_stream = strcmp(path, "/late-stream") == 0;
        uv_timer_init(&fx->loop, &fx->late_timer);
        fx->late_timer.data = fx;
        fx->late_timer_open = true;
        uv_timer_start(&fx->late_timer, on_late_poll, 5, 5);
    } else if (strcmp(path, "/hold") == 0) {
        fx->held = req; /* answered after the server was closed (on_async) */
    } else {
        http_reply(req, 404, "text/plain", "not found\n", 10);
    }
}

/* ---- loop side plumbing ---- */

static void on_sample(uv_timer_t *t)
{
    struct fx *fx = t->data;
    struct http_server_info info;
    http_server_info(fx->srv, &info);
    if (info.write_pending_bytes > fx->max_pending)
        fx->max_pending = info.write_pending_bytes;
    if (info.write_pending_bytes > 0)
        fx->samples_pending++;
}

static void sampler_start(struct fx *fx)
{
    uv_timer_init(&fx->loop, &fx->sampler);
    fx->sampler.data = fx;
    fx->sampler_open = true;
    uv_timer_start(&fx->sampler, on_sample, 1, 1);
}

static void on_async(uv_async_t *a)
{
    struct fx *fx = a->data;
    if (fx->sampler_open) {
        uv_close((uv_handle_t *)&fx->sampler, NULL);
        fx->sampler_open = false;
    }
    if (!atomic_exchange(&fx->server_closed, 1)) {
        http_server_close(fx->srv);
        http_server_close(fx->srv); /* a second call is harmless */
    }
    if (fx->held) {
        /* A handler that still owes a reply answers after the close. */
        uv_timer_init(&fx->loop, &fx->late_timer);
        fx->late_timer.data = fx;
        fx->late_timer_open = true;
        uv_timer_start(&fx->late_timer, on_late_after_close, 20, 0);
    }
    uv_close((uv_handle_t *)a, NULL);
}

static void *client_main(void *arg)
{
    struct fx *fx = arg;
    fx->client(fx);
    uv_async_send(&fx->async);
    return NULL;
}

static struct fx *fx_new(void)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    return fx;
}

/* Starts the server on addr, runs client on a thread, drains the loop. */
static void fx_run_ex(struct fx *fx, const char *addr, const struct http_server_opts *opts,
                      void (*client)(struct fx *), bool want_sampler)
{
    char err[256];
    int r = http_server_start(&fx->loop, addr, opts, handler, fx, &fx->srv, err, sizeof(err));
    if (r != 0)
        fail_msg("http_server_start(%s): %d %s", addr, r, err);
    fx->port = http_server_port(fx->srv);
    assert_true(fx->port > 0);
    assert_int_equal(uv_async_init(&fx->loop, &fx->async, on_async), 0);
    fx->async.data = fx;
    fx->client = client;
    if (want_sampler)
        sampler_start(fx);
    assert_int_equal(pthread_create(&fx->thread, NULL, client_main, fx), 0);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    pthread_join(fx->thread, NULL);
    assert_false(fx->late_timer_open);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    if (fx->fail[0])
        fail_msg("%s", fx->fail);
}

static void fx_run(struct fx *fx, const char *addr, const struct http_server_opts *opts,
                   void (*client)(struct fx *))
{
    fx_run_ex(fx, addr, opts, client, false);
}

/* Counters snapshot taken on the loop just before the server closes. */
static struct http_server_info fx_info;

static void fx_free(struct fx *fx) { free(fx); }

/* ---- blocking test client ---- */

struct cl {
    int fd;               /* socket */
    char buf[16384];      /* received, not yet parsed */
    size_t len;           /* bytes in buf */
    size_t read_size;     /* recv size (0 = whole buffer) */
    size_t sleep_every;   /* sleep after this many bytes (0 = never) */
    unsigned sleep_us;    /* how long */
    size_t total;         /* bytes received */
    bool eof;             /* recv returned 0 */
};

#define MAX_HDRS 32

struct resp {
    int status;                 /* status code */
    int nhdr;                   /* headers */
    char name[MAX_HDRS][64];    /* header names */
    char value[MAX_HDRS][512];  /* header values */
    bool last_was_value;        /* http-parser callback tracking */
    bool head;                  /* response to HEAD: no body */
    bool pattern;               /* check the producer's pattern instead of storing */
    bool pattern_bad;           /* pattern mismatch seen */
    char body[8192];            /* stored body (prefix) */
    size_t body_len;            /* total body bytes */
    int chunks;                 /* chunk headers seen (incl. the last) */
    uint64_t max_chunk;         /* largest chunk */
    bool complete;              /* message complete */
};

static int r_on_header_field(http_parser *p, const char *at, size_t len)
{
    struct resp *r = p->data;
    if (r->last_was_value || r->nhdr == 0) {
        if (r->nhdr == MAX_HDRS)
            return -1;
        r->nhdr++;
        r->name[r->nhdr - 1][0] = r->value[r->nhdr - 1][0] = '\0';
    }
    r->last_was_value = false;
    strncat(r->name[r->nhdr - 1], at, len < 63 ? len : 63);
    return 0;
}

static int r_on_header_value(http_parser *p, const char *at, size_t len)
{
    struct resp *r = p->data;
    r->last_was_value = true;
    strncat(r->value[r->nhdr - 1], at, len < 511 ? len : 511);
    return 0;
}

static int r_on_headers_complete(http_parser *p)
{
    struct resp *r = p->data;
    r->status = p->status_code;
    return r->head ? 1 : 0;
}

static int r_on_body(http_parser *p, const char *at, size_t len)
{
    struct resp *r = p->data;
    for (size_t i = 0; i < len; i++) {
        if (r->pattern) {
            if (at[i] != (char)('a' + (r->body_len + i) % 26))
                r->pattern_bad = true;
        } else if (r->body_len + i < sizeof(r->body) - 1) {
            r->body[r->body_len + i] = at[i];
        }
    }
    r->body_len += len;
    if (!r->pattern)
        r->body[r->body_len < sizeof(r->body) - 1 ? r->body_len : sizeof(r->body) - 1] = '\0';
    return 0;
}

static int r_on_chunk_header(http_parser *p)
{
    struct resp *r = p->data;
    r->chunks++;
    if (p->content_length > r->max_chunk)
        r->max_chunk = p->content_length;
    return 0;
}

static int r_on_message_complete(http_parser *p)
{
    struct resp *r = p->data;
    r->complete = true;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings resp_settings = {
    .on_header_field = r_on_header_field,
    .on_header_value = r_on_header_value,
    .on_headers_complete = r_on_headers_complete,
    .on_body = r_on_body,
    .on_chunk_header = r_on_chunk_header,
    .on_message_complete = r_on_message_complete,
};

static const char *resp_header(const struct resp *r, const char *name)
{
    for (int i = 0; i < r->nhdr; i++)
        if (strcasecmp(r->name[i], name) == 0)
            return r->value[i];
    return NULL;
}

static int cl_connect_to(const char *ip, int port, int rcvbuf)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    socklen_t sl;
    int fam;
    if (strchr(ip, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        inet_pton(AF_INET6, ip, &s6->sin6_addr);
        sl = sizeof(*s6);
        fam = AF_INET6;
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        inet_pton(AF_INET, ip, &s4->sin_addr);
        sl = sizeof(*s4);
        fam = AF_INET;
    }
    int fd = socket(fam, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = { .tv_sec = 5 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    if (connect(fd, (struct sockaddr *)&ss, sl) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void cl_open(struct cl *c, int port)
{
    memset(c, 0, sizeof(*c));
    c->fd = cl_connect_to("127.0.0.1", port, 0);
}

static bool cl_send(struct cl *c, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = send(c->fd, s, n, MSG_NOSIGNAL);
        if (w <= 0)
            return false;
        s += w;
        n -= (size_t)w;
    }
    return true;
}

static bool cl_sends(struct cl *c, const char *s) { return cl_send(c, s, strlen(s)); }

/* Reads into c->buf; false on error/timeout; sets eof. */
static bool cl_fill(struct cl *c)
{
    size_t room = sizeof(c->buf) - c->len;
    if (c->read_size && room > c->read_size)
        room = c->read_size;
    ssize_t got = recv(c->fd, c->buf + c->len, room, 0);
    if (got < 0)
        return false;
    if (got == 0) {
        c->eof = true;
        return true;
    }
    size_t before = c->total;
    c->len += (size_t)got;
    c->total += (size_t)got;
    if (c->sleep_every && before / c->sleep_every != c->total / c->sleep_every)
        usleep(c->sleep_us);
    return true;
}

/* Reads one response; 0 when complete, -1 otherwise. Leftover bytes stay in c. */
static int cl_response(struct cl *c, struct resp *r, bool head, bool pattern)
{
    memset(r, 0, sizeof(*r));
    r->head = head;
    r->pattern = pattern;
    http_parser p;
    http_parser_init(&p, HTTP_RESPONSE);
    p.data = r;
    for (;;) {
        if (c->len > 0) {
            size_t n = http_parser_execute(&p, &resp_settings, c->buf, c->len);
            memmove(c->buf, c->buf + n, c->len - n);
            c->len -= n;
            if (r->complete)
                return 0;
            if (HTTP_PARSER_ERRNO(&p) != HPE_OK)
                return -1;
        }
        if (c->eof) {
            http_parser_execute(&p, &resp_settings, NULL, 0);
            return r->complete ? 0 : -1;
        }
        if (!cl_fill(c))
            return -1;
    }
}

/* True when the server closed the connection (EOF or reset) with no more data. */
static bool cl_closed(struct cl *c)
{
    if (c->len > 0)
        return false;
    if (c->eof)
        return true;
    char b[256];
    ssize_t got = recv(c->fd, b, sizeof(b), 0);
    return got == 0 || (got < 0 && errno == ECONNRESET);
}

static void cl_close(struct cl *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

/* Waits (up to 5 s) for an atomic counter to reach want. */
static bool wait_for(atomic_int *v, int want)
{
    for (int i = 0; i < 5000; i++) {
        if (atomic_load(v) >= want)
            return true;
        usleep(1000);
    }
    return false;
}

/* ---- clients and tests ---- */

static void client_simple_get(struct fx *fx)
{
    struct cl c;
    cl_open(&c, fx->port);
    if (!CHECK(fx, c.fd >= 0))
        return;
    CHECK(fx, cl_sends(&c, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n"));
    struct resp r;
    if (CHECK(fx, cl_response(&c, &r, false, false) == 0)) {
        CHECK(fx, r.status == 200);
        CHECK(fx, strcmp(r.body, "hello\n") == 0);
        CHECK(fx, resp_header(&r, "Content-Length") && strcmp(resp_header(&r, "Content-Length"), "6") == 0);
        CHECK(fx, resp_header(&r, "Server") && strcmp(resp_header(&r, "Server"), "tether") == 0);
        CHECK(fx, resp_header(&r, "Date") && strstr(resp_header(&r, "Date"), "GMT"));
        CHECK(fx, resp_header(&r, "Content-Type") &&
                      strcmp(resp_header(&r, "Content-Type"), "text/plain; charset=utf-8") == 0);
        CHECK(fx, resp_header(&r, "Connection") == NULL);
    }
    /* A second reply is ignored (and a second stream's done is still called). */
    CHECK(fx, cl_sends(&c, "GET /twice HTTP/1.1\r\n\r\nGET /hello HTTP/1.1\r\n\r\n"));
    if (CHECK(fx, cl_response(&c, &r, false, false) == 0))
        CHECK(fx, r.status == 200 && strcmp(r.body, "once\n") == 0);
    if (CHECK(fx, cl_response(&c, &r, false, false) == 0))
        CHECK(fx, r.status == 200 && strcmp(r.body, "hello\n") == 0);
    /* An unknown path is the handler's business: 404. */
    CHECK(fx, cl_sends(&c, "GET /nope HTTP/1.1\r\n\r\n"));
    if (CHECK(fx, cl_response(&c, &r, false, false) == 0))
        CHECK(fx, r.status == 404);
    cl_close(&c);
}

static void test_simple_get(void **state)
{
    struct fx *fx = fx_new();
    fx_run(fx, "127.0.0.1:0", NULL, client_simple_get);
    assert_int_equal(atomic_load(&fx->handler_calls), 4);
    assert_int_equal(atomic_load(&fx->done_calls), 1);
    assert_int_equal(atomic_load(&fx->fill_calls), 0);
    fx_free(fx);
}

static void client_keepalive(struct fx *fx)
{
    struct cl c;
    cl_open(&c, fx->port);
    struct resp r;
    for (int i = 0; i < 3; i++) {
        char req[128];
        snprintf(req, sizeof(req), "GET /echo?i=%d HTTP/1.1\r\nHost: h%d\r\n\r\n", i, i);
        CHECK(fx, cl_sends(&c, req));
        if (CHECK(fx, cl_response(&c, &r, false, false) == 0)) {
            char want[128];
            snprintf(want, sizeof(want), "GET /echo ?i=%d body= host=h%d", i, i);
            CHECK(fx, strcmp(r.body, want) == 0);
            CHECK(fx, resp_header(&r, "Connection") == NULL);
        }
    }
    /* Connection: close is honoured: reply carries it, then the server closes. */
    CHECK(fx, cl_sends(&c, "GET /hello HTTP/1.1\r\nConnection: close\r\n\r\n"));
    if (CHECK(fx, cl_response(&c, &r, false, false) == 0)) {
        CHECK(fx, r.status == 200);
        CHECK(fx, resp_header(&r, "Connection") && strcmp(resp_header(&r, "Connection"), "close") == 0);
    }
    CHECK(fx, cl_closed(&c));
    cl_close(&c);
}

static void test_keepalive(void **state)
{
    struct fx *fx = fx_new();
    fx_run(fx, "127.0.0.1:0", NULL, client_keepalive);
    assert_int_equal(atomic_load(&fx->handler_calls), 4);
    fx_free(fx);
}

static void client_pipelined(struct fx *fx)
{
    struct cl c;
    cl_open(&c, fx->port);
    /* The first is answered late (timer), the rest at once: order must hold. */
    const char *reqs = "GET /delay?n=1 HTTP/1.1\r\n\r\n"
                       "POST /echo?n=2 HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody"
                       "GET /hello HTTP/1.1\r\n\r\n"
                       "GET /delay?n=4 HTTP/1.1\r\n\r\n"
                       "GET /echo?n=5 HTTP/1.1\r\nConnection: close\r\n\r\n";
    CHECK(fx, cl_sends(&c, reqs));
    struct resp r;
    const char *want[] = { "delayed n=1", "POST /echo ?n=2 body=body host=-", "hello\n", "delayed n=4",
                           "GET /echo ?n=5 body= host=-" };
    for (int i = 0; i < 5; i++) {
        if (!CHECK(fx, cl_response(&c, &r, false, false) == 0))
            break;
        CHECK(fx, r.status == 200);
        CHECK(fx, strcmp(r.body, want[i]) == 0);
    }
    CHECK(fx, cl_closed(&c));
    cl_close(&c);
}

static void test_pipelined(void **state)
{
    struct fx *fx = fx_new();
    fx_run(fx, "127.0.0.1:0", NULL, client_pipelined);
    assert_int_equal(atomic_load(&fx->handler_calls), 5);
    fx_free(fx);
}

static void client_query(struct fx *fx)
{
    struct cl c;
    cl_open(&c, fx->port);
    CHECK(fx, cl_sends(&c, "GET /params?match[]=up&x=1+2%2B3&match%5B%5D=container_cpu%7Bname%3D%22a%20b%22%7D"
                           "&match[]=&other=z HTTP/1.1\r\n\r\n"));
    struct resp r;
    if (CHECK(fx, cl_response(&c, &r, false, false) == 0))
        CHECK(fx, strcmp(r.body, "up|container_cpu{name=\"a b\"}||x=1 2+3|nomissing") == 0);
    cl_close(&c);
}

static void test_query_params(void **state)
{
    struct fx *fx = fx_new();
    fx_run(fx, "127.0.0.1:0", NULL, client_query);
    fx_free(fx);
}

static void client_post(struct fx *fx)
{
    struct cl c;
    cl_open(&c, fx->port);
    struct resp r;
    CHECK(fx, cl_sends(&c, "POST /echo HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello"));
    usleep(20000);
    CHECK(fx, cl_sends(&c, " world"));
    if (CHECK(fx, cl_response(&c, &r, false, false) == 0))
        CHECK(fx, strcmp(r.body, "POST /echo ? body=hello world host=-") == 0);
    /* Chunked request body. */
    CHECK(fx, cl_sends(&c, "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"));
    CHECK(fx, cl_sends(&c, "4\r\ndefg\r\n0\r\n\r\n"));
    if (CHECK(fx, cl_response(&c, &r, false, false) == 0))
        CHECK(fx, strcmp(r.body, "POST /echo ? body=abcdefg host=-") == 0);
    /* Expect: 100-continue gets an interim 100 before the body is sent. */
    CHECK(fx, cl_sends(&c, "PUT /echo HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n"));
    if (CHECK(fx, cl_response(&c, &r, false, false) == 0))
        CHECK(fx, r.status == 100);
    CHECK(fx, cl_sends(&c, "xyz"));
    if (CHECK(fx, cl_response(&c, &r, false, false) == 0)) {
        CHECK(fx, r.status == 200);
        CHECK(fx, strcmp(r.body, "PUT /echo ? body=xyz host=-") == 0);
    }
    cl_close(&c);
}

static void test_post_body(void **state)
{
    struct fx *fx = fx_new();
    fx_run(fx, "127.0.0.1:0", NULL, client_post);
    assert_int_equal(atomic_load(&fx->handler_calls), 3);
    fx_free(fx);
}

#define BIG_STREAM (5u * 1024u * 1024u)

static void client_stream_slow(struct fx *fx)
{
    struct cl c;
    memset(&c, 0, sizeof(c));
    c.fd = cl_connect_to("127.0.0.1", fx->port, 16384);
    if (!CHECK(fx, c.fd >= 0))
        return;
    c.read_size = 4096;
    c.sleep_every = 64 * 1024;
    c.sleep_us = 1000;
    char req[128];
    snprintf(req, sizeof(req), "GET /stream?size=%u HTTP/1.1\r\n\r\n", BIG_STREAM);
    CHECK(fx, cl_sends(&c, req));
    struct resp r;
    if (CHECK(fx, cl_response(&c, &r, false, true) == 0)) {
        CHECK(fx, r.status == 200);
        CHECK(fx, resp_header(&r, "Transfer-Encoding") &&
                      strcmp(resp_header(&r, "Transfer-Encoding"), "chunked") == 0);
        CHECK(fx, resp_header(&r, "Content-Length") == NULL);
        CHECK(fx, r.body_len == BIG_STREAM);
        CHECK(fx, !r.pattern_bad);
        CHECK(fx, r.max_chunk <= 64 * 1024);
        CHECK(fx, r.chunks >= (int)(BIG_STREAM / (64 * 1024)) + 1);
    }
    /* The connection is still usable afterwards. */
    c.read_size = 0;
    c.sleep_every = 0;
    CHECK(fx, cl_sends(&c, "GET /hello HTTP/1.1\r\n\r\n"));
    if (CHECK(fx, cl_response(&c, &r, false, false) == 0))
        CHECK(fx, strcmp(r.body, "hello\n") == 0);
    cl_close(&c);
}

static void test_stream_slow_reader(void **state)
{
    struct fx *fx = fx_new();
    fx_run_ex(fx, "127.0.0.1:0", NULL, client_stream_slow, true);
    /* One fill per 64 KiB piece plus the final 0, each only after the previous
     * write completed (nothing pending), never nested. */
    assert_int_equal(atomic_load(&fx->done_calls), 1);
    assert_true(atomic_load(&fx->fill_calls) >= (int)(BIG_STREAM / (64 * 1024)) + 1);
    assert_int_equal(fx->fill_with_pending, 0);
    assert_int_equal(fx->fill_reentered, 0);
    assert_true(fx->max_cap <= 64 * 1024);
    assert_true(fx->max_cap >= 60 * 1024);
    assert_int_equal(fx->done_after_close, 0);
    /* The slow reader did hold writes up (a write was seen in flight), yet the
     * server never had more than one stream buffer (+ chunk framing) queued. */
    print_message("stream: %d fills, %u samples with a write pending, max pending %llu bytes\n",
                  atomic_load(&fx->fill_calls), fx->samples_pending,
                  (unsigned long long)fx->max_pending);
    assert_true(fx->samples_pending > 0);
    assert_true(fx->max_pending <= 64 * 1024 + 512);
    fx_free(fx);
}

static void client_http10(struct fx *fx)
{
    struct cl c;
    struct resp r;
    /* Streamed to HTTP/1.0: close-delimited, no chunking. */
    cl_open(&c, fx->port);
    CHECK(fx, cl_sends(&c, "GET /stream?size=200000 HTTP/1.0\r\n\r\n"));
    if (CHECK(fx, cl_response(&c, &r, false, true) == 0)) {
        CHECK(fx, r.status == 200);
        CHECK(fx, resp_header(&r, "Transfer-Encoding") == NULL);
        CHECK(fx, resp_header(&r, "Content-Length") == NULL);
        CHECK(fx, resp_header(&r, "Connection") && strcmp(resp_header(&r, "Connection"), "close") == 0);
        CHECK(fx, r.body_len == 200000);
        CHECK(fx, !r.pattern_bad);
        CHECK(fx, r.chunks == 0);
        CHECK(fx, c.eof);
    }
    cl_close(&c);
    /* Plain reply to HTTP/1.0: Content-Length, then close. */
    cl_open(&c, fx->port);
    CHECK(fx, cl_sends(&c, "GET /hello HTTP/1.0\r\n\r\n"));
    if (CHECK(fx, cl_response(&c, &r, false, false) == 0)) {
        CHECK(fx, strcmp(r.body, "hello\n") == 0);
        CHECK(fx, resp_header(&r, "Connection") && strcmp(resp_header(&r, "Connection"), "close") == 0);
    }
    CHECK(fx, cl_closed(&c));
    cl_close(&c);
    /* HTTP/1.0 keep-alive on request. */
    cl_open(&c, fx->port);
    CHECK(fx, cl_sends(&c, "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
    if (CHECK(fx, cl_response(&c, &r, false, false) == 0))
        CHECK(fx, resp_header(&r, "Connection") &&
                      strcmp(resp_header(&r, "Connection"), "keep-alive") == 0);
    CHECK(fx, cl_sends(&c, "GET /echo HTTP/1.0\r\n\r\n"));
    if (CHECK(fx, cl_response(&c, &r, false, false) == 0))
        CHECK(fx, strcmp(r.body, "GET /echo ? body= host=-") == 0);
    CHECK(fx, cl_closed(&c));
    cl_close(&c);
}

static void test_http10(void **state)
{
    struct fx *fx = fx_new();
    fx_run(fx, "127.0.0.1:0", NULL, client_http10);
    assert_int_equal(atomic_load(&fx->done_calls), 1);
    fx_free(fx);
}

static void client_head_and_204(struct fx *fx)
{
    struct cl c;
    struct resp r;
    cl_open(&c, fx->port);
    CHECK(fx, cl_sends(&c, "HEAD /hello HTTP/1.1\r\n\r\n"));
    if (CHECK(fx, cl_response(&c, &r, true, false) == 0)) {
        CHECK(fx, r.status == 200);
        CHECK(fx, resp_header(&r, "Content-Length") && strcmp(resp_header(&r, "Content-Length"), "6") == 0);
    }
    CHECK(fx, cl_sends(&c, "HEAD /stream?size=100000 HTTP/1.1\r\n\r\n"));
    if (CHECK(fx, cl_response(&c, &r, true, false) == 0))
        CHECK(fx, r.status == 200);
    CHECK(fx, cl_sends(&c, "GET /nocontent HTTP/1.1\r\n\r\n"));
    if (CHECK(fx, cl_response(&c, &r, false, false) == 0)) {
        CHECK(fx, r.status == 204);
        CHECK(fx, r.body_len == 0);
        CHECK(fx, resp_header(&r, "Content-Length") == NULL);
    }
    /* No stray body bytes were sent: the next reply parses cleanly. */
    CHECK(fx, cl_sends(&c, "GET /hello HTTP/1.1\r\n\r\n"));
    if (CHECK(fx, cl_response(&c, &r, false, false) == 0))
        CHECK(fx, strcmp(r.body, "hello\n") == 0);
    CHECK(fx, c.len == 0);
    cl_close(&c);
}

static void test_head_and_204(void **state)
{
    struct fx *fx = fx_new();
    fx_run(fx, "127.0.0.1:0", NULL, client_head_and_204);
    assert_int_equal(atomic_load(&fx->fill_calls), 0);
    assert_int_equal(atomic_load(&fx->done_calls), 1);
    fx_free(fx);
}

static void client_big_header(struct fx *fx)
{
    struct cl c;
    struct resp r;
    cl_open(&c, fx->port);
    char req[4096];
    int n = snprintf(req, sizeof(req), "GET /hello HTTP/1.1\r\nX-Big: ");
    memset(req + n, 'x', 2000);
    memcpy(req + n + 2000, "\r\n\r\n", 5);
    CHECK(fx, cl_sends(&c, req));
    if (CHECK(fx, cl_response(&c, &r, false, false) == 0)) {
        CHECK(fx, r.status == 431);
        CHECK(fx, resp_header(&r, "Connection") && strcmp(resp_header(&r, "Connection"), "close") == 0);
    }
    CHECK(fx, cl_closed(&c));
    cl_close(&c);
}

static void test_oversized_headers(void **state)
{
    struct fx *fx = fx_new();
    struct http_server_opts o = { .max_header_bytes = 1024 };
    fx_run(fx, "127.0.0.1:0", &o, client_big_header);
    assert_int_equal(atomic_load(&fx->handler_calls), 0);
    fx_free(fx);
}

static void client_malformed(struct fx *fx)
{
    const char *bad[] = {
        "GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
        "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", /* a TLS ClientHello */
        "GET /hello HTTP/1.1\r\n\r\nBROKEN\r\n\r\n",     /* second request malformed */
    };
    for (int i = 0; i < 3; i++) {
        struct cl c;
        struct resp r;
        cl_open(&c, fx->port);
        CHECK(fx, cl_sends(&c, bad[i]));
        if (i == 2) {
            if (CHECK(fx, cl_response(&c, &r, false, false) == 0))
                CHECK(fx, r.status == 200);
        }
        if (CHECK(fx, cl_response(&c, &r, false, false) == 0)) {
            CHECK(fx, r.status == 400);
            CHECK(fx, resp_header(&r, "Connection") && strcmp(resp_header(&r, "Connection"), "close") == 0);
        }
        CHECK(fx, cl_closed(&c));
        cl_close(&c);
    }
}

static void test_malformed(void **state)
{
    struct fx *fx = fx_new();
    fx_run(fx, "127.0.0.1:0", NULL, client_malformed);
    assert_int_equal(atomic_load(&fx->handler_calls), 1);
    fx_free(fx);
}

static void client_body_too_large(struct fx *fx)
{
    struct cl c;
    struct resp r;
    cl_open(&c, fx->port);
    /* Announced too large: 413 before the body is sent. */
    CHECK(fx, cl_sends(&c, "POST /echo HTTP/1.1\r\nContent-Length: 5000\r\n\r\n"));
    if (CHECK(fx, cl_response(&c, &r, false, false) == 0))
        CHECK(fx, r.status == 413);
    CHECK(fx, cl_closed(&c));
    cl_close(&c);
    /* Chunked body growing too large while it arrives. */
    cl_open(&c, fx->port);
    char chunk[1100];
    memset(chunk, 'q', sizeof(chunk));
    CHECK(fx, cl_sends(&c, "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n44c\r\n"));
    CHECK(fx, cl_send(&c, chunk, sizeof(chunk)));
    CHECK(fx, cl_sends(&c, "\r\n0\r\n\r\n"));
    if (CHECK(fx, cl_response(&c, &r, false, false) == 0))
        CHECK(fx, r.status == 413);
    CHECK(fx, cl_closed(&c));
    cl_close(&c);
}

static void test_body_too_large(void **state)
{
    struct fx *fx = fx_new();
    struct http_server_opts o = { .max_body = 1000 };
    fx_run(fx, "127.0.0.1:0", &o, client_body_too_large);
    assert_int_equal(atomic_load(&fx->handler_calls), 0);
    fx_free(fx);
}

static void client_slowloris(struct fx *fx)
{
    struct cl c;
    cl_open(&c, fx->port);
    CHECK(fx, cl_sends(&c, "GET /hello HTTP/1.1\r\nX-Slow: "));
    bool closed = false;
    size_t got_bytes = 0;
    for (int i = 0; i < 500 && !closed; i++) { /* at most ~5 s */
        usleep(10000);
        if (send(c.fd, "a", 1, MSG_NOSIGNAL) < 0) {
            closed = true;
            break;
        }
        char b[64];
        ssize_t g = recv(c.fd, b, sizeof(b), MSG_DONTWAIT);
        if (g == 0 || (g < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
            closed = true;
        else if (g > 0)
            got_bytes += (size_t)g;
    }
    CHECK(fx, closed);
    CHECK(fx, got_bytes == 0); /* closed without a reply */
    cl_close(&c);
    /* A connection that sends nothing at all is closed too. */
    cl_open(&c, fx->port);
    CHECK(fx, cl_closed(&c));
    cl_close(&c);
}

static void test_slowloris(void **state)
{
    struct fx *fx = fx_new();
    struct http_server_opts o = { .header_timeout_ms = 200 };
    fx_run(fx, "127.0.0.1:0", &o, client_slowloris);
    assert_int_equal(atomic_load(&fx->handler_calls), 0);
    fx_free(fx);
}

static void client_idle_timeout(struct fx *fx)
{
    struct cl c;
    struct resp r;
    cl_open(&c, fx->port);
    CHECK(fx, cl_sends(&c, "GET /hello HTTP/1.1\r\n\r\n"));
    CHECK(fx, cl_response(&c, &r, false, false) == 0);
    CHECK(fx, cl_closed(&c)); /* blocks until the idle timeout closes it */
    cl_close(&c);
}

static void test_idle_timeout(void **state)
{
    struct fx *fx = fx_new();
    struct http_server_opts o = { .idle_timeout_ms = 150 };
    fx_run(fx, "127.0.0.1:0", &o, client_idle_timeout);
    fx_free(fx);
}

static void client_disconnect_mid_stream(struct fx *fx)
{
    struct cl c;
    memset(&c, 0, sizeof(c));
    c.fd = cl_connect_to("127.0.0.1", fx->port, 16384);
    CHECK(fx, cl_sends(&c, "GET /stream?size=200000000 HTTP/1.1\r\n\r\n"));
    while (c.total < 300000 && cl_fill(&c) && !c.eof)
        c.len = 0;
    CHECK(fx, c.total >= 300000);
    cl_close(&c); /* unread data: the kernel resets the connection */
    CHECK(fx, wait_for(&fx->done_calls, 1));
}

static void test_disconnect_mid_stream(void **state)
{
    struct fx *fx = fx_new();
    fx_run(fx, "127.0.0.1:0", NULL, client_disconnect_mid_stream);
    assert_int_equal(atomic_load(&fx->done_calls), 1);
    assert_int_equal(fx->done_after_close, 0);
    assert_int_equal(fx->fill_with_pending, 0);
    fx_free(fx);
}

static void client_write_stall(struct fx *fx)
{
    struct cl c;
    memset(&c, 0, sizeof(c));
    c.fd = cl_connect_to("127.0.0.1", fx->port, 4096);
    CHECK(fx, cl_sends(&c, "GET /stream?size=500000000 HTTP/1.1\r\n\r\n"));
    CHECK(fx, wait_for(&fx->done_calls, 1)); /* never read: the server gives up */
    cl_close(&c);
}

static void test_write_stall(void **state)
{
    struct fx *fx = fx_new();
    struct http_server_opts o = { .idle_timeout_ms = 200 };
    fx_run(fx, "127.0.0.1:0", &o, client_write_stall);
    assert_int_equal(atomic_load(&fx->done_calls), 1);
    assert_int_equal(fx->done_after_close, 0);
    fx_free(fx);
}

static void client_stream_fail(struct fx *fx)
{
    struct cl c;
    struct resp r;
    cl_open(&c, fx->port);
    CHECK(fx, cl_sends(&c, "GET /stream-fail HTTP/1.1\r\n\r\n"));
    if (CHECK(fx, cl_response(&c, &r, false, false) == 0))
        CHECK(fx, r.status == 500);
    CHECK(fx, cl_closed(&c));
    cl_close(&c);
    cl_open(&c, fx->port);
    CHECK(fx, cl_sends(&c, "GET /stream-fail-later HTTP/1.1\r\n\r\n"));
    CHECK(fx, cl_response(&c, &r, false, true) == -1); /* cut short: incomplete chunked body */
    CHECK(fx, r.status == 200);
    CHECK(fx, r.body_len > 0 && !r.pattern_bad);
    cl_close(&c);
}

static void test_stream_fill_error(void **state)
{
    struct fx *fx = fx_new();
    fx_run(fx, "127.0.0.1:0", NULL, client_stream_fail);
    assert_int_equal(atomic_load(&fx->done_calls), 2);
    assert_int_equal(fx->done_after_close, 0);
    fx_free(fx);
}

static void client_max_conns(struct fx *fx)
{
    struct cl a, b, x;
    struct resp r;
    cl_open(&a, fx->port);
    cl_open(&b, fx->port);
    CHECK(fx, cl_sends(&a, "GET /hello HTTP/1.1\r\n\r\n"));
    CHECK(fx, cl_response(&a, &r, false, false) == 0);
    CHECK(fx, cl_sends(&b, "GET /hello HTTP/1.1\r\n\r\n"));
    CHECK(fx, cl_response(&b, &r, false, false) == 0);
    /* A third is accepted and closed at once. */
    cl_open(&x, fx->port);
    CHECK(fx, x.fd >= 0);
    cl_sends(&x, "GET /hello HTTP/1.1\r\n\r\n");
    CHECK(fx, cl_closed(&x));
    cl_close(&x);
    /* Once one closes, a new connection is served again. */
    cl_close(&a);
    bool served = false;
    for (int i = 0; i < 100 && !served; i++) {
        cl_open(&x, fx->port);
        if (cl_sends(&x, "GET /hello HTTP/1.1\r\n\r\n") && cl_response(&x, &r, false, false) == 0)
            served = r.status == 200;
        cl_close(&x);
        if (!served)
            usleep(10000);
    }
    CHECK(fx, served);
    cl_close(&b);
}

static void test_max_conns(void **state)
{
    struct fx *fx = fx_new();
    struct http_server_opts o = { .max_conns = 2 };
    fx_run(fx, "127.0.0.1:0", &o, client_max_conns);
    fx_free(fx);
}

static void client_close_with_open_conns(struct fx *fx)
{
    struct cl idle, partial, streaming;
    struct resp r;
    cl_open(&idle, fx->port);
    CHECK(fx, cl_sends(&idle, "GET /hello HTTP/1.1\r\n\r\n"));
    CHECK(fx, cl_response(&idle, &r, false, false) == 0);
    cl_open(&partial, fx->port);
    CHECK(fx, cl_sends(&partial, "GET /hello HTTP/1.1\r\nHost:"));
    memset(&streaming, 0, sizeof(streaming));
    streaming.fd = cl_connect_to("127.0.0.1", fx->port, 4096);
    CHECK(fx, cl_sends(&streaming, "GET /stream?size=500000000 HTTP/1.1\r\n\r\n"));
    CHECK(fx, wait_for(&fx->fill_calls, 1));
    /* Ask the loop to close the server now, with all three still open. */
    uv_async_send(&fx->async);
    CHECK(fx, wait_for(&fx->server_closed, 1));
    CHECK(fx, cl_closed(&idle));
    CHECK(fx, cl_closed(&partial));
    /* The streaming one: drain whatever was in flight, then EOF/reset. */
    bool end = false;
    for (int i = 0; i < 100000 && !end; i++) {
        char b[65536];
        ssize_t g = recv(streaming.fd, b, sizeof(b), 0);
        end = g == 0 || (g < 0 && errno == ECONNRESET);
        if (g < 0 && errno != ECONNRESET)
            break;
    }
    CHECK(fx, end);
    cl_close(&idle);
    cl_close(&partial);
    cl_close(&streaming);
}

static void *client_main_no_signal(void *arg)
{
    struct fx *fx = arg;
    fx->client(fx);
    return NULL;
}

static void test_close_with_open_conns(void **state)
{
    struct fx *fx = fx_new();
    char err[128];
    assert_int_equal(http_server_start(&fx->loop, "127.0.0.1:0", NULL, handler, fx, &fx->srv, err,
                                       sizeof(err)),
                     0);
    fx->port = http_server_port(fx->srv);
    assert_int_equal(uv_async_init(&fx->loop, &fx->async, on_async), 0);
    fx->async.data = fx;
    fx->client = client_close_with_open_conns;
    assert_int_equal(pthread_create(&fx->thread, NULL, client_main_no_signal, fx), 0);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    pthread_join(fx->thread, NULL);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    if (fx->fail[0])
        fail_msg("%s", fx->fail);
    assert_int_equal(atomic_load(&fx->done_calls), 1);
    assert_int_equal(fx->done_after_close, 1);
    fx_free(fx);
}

static void client_late_reply(struct fx *fx, const char *path)
{
    struct cl c;
    cl_open(&c, fx->port);
    char req[64];
    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\n\r\n", path);
    CHECK(fx, cl_sends(&c, req));
    CHECK(fx, wait_for(&fx->handler_calls, 1));
    struct linger lg = { .l_onoff = 1, .l_linger = 0 };
    setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    cl_close(&c); /* reset while the handler has not replied */
    CHECK(fx, wait_for(&fx->late_replied, 1));
}

static void client_late_plain(struct fx *fx) { client_late_reply(fx, "/late"); }

static void client_late_stream(struct fx *fx) { client_late_reply(fx, "/late-stream"); }

static void test_reply_after_disconnect(void **state)
{
    struct fx *fx = fx_new();
    fx_run(fx, "127.0.0.1:0", NULL, client_late_plain);
    assert_int_equal(atomic_load(&fx->late_replied), 1);
    fx_free(fx);

    fx = fx_new();
    fx_run(fx, "127.0.0.1:0", NULL, client_late_stream);
    assert_int_equal(atomic_load(&fx->late_replied), 1);
    assert_int_equal(atomic_load(&fx->done_calls), 1); /* done at once, fill never */
    assert_int_equal(atomic_load(&fx->fill_calls), 0);
    fx_free(fx);
}

static void client_hold(struct fx *fx)
{
    struct cl c;
    cl_open(&c, fx->port);
    CHECK(fx, cl_sends(&c, "GET /hold HTTP/1.1\r\n\r\n"));
    CHECK(fx, wait_for(&fx->handler_calls, 1));
    /* fx_run's async closes the server; the held request is answered 20 ms later. */
    cl_close(&c);
}

static void test_reply_after_server_close(void **state)
{
    struct fx *fx = fx_new();
    fx_run(fx, "127.0.0.1:0", NULL, client_hold);
    assert_int_equal(atomic_load(&fx->late_replied), 1);
    fx_free(fx);

    fx = fx_new();
    fx->held_stream = true;
    fx_run(fx, "127.0.0.1:0", NULL, client_hold);
    assert_int_equal(atomic_load(&fx->late_replied), 1);
    fx_free(fx);
}

static void client_quit(struct fx *fx)
{
    struct cl c;
    cl_open(&c, fx->port);
    CHECK(fx, cl_sends(&c, "GET /quit HTTP/1.1\r\n\r\n"));
    CHECK(fx, cl_closed(&c)); /* no reply: the server closed first */
    cl_close(&c);
}

static void client_stream_quit(struct fx *fx)
{
    struct cl c;
    struct resp r;
    cl_open(&c, fx->port);
    CHECK(fx, cl_sends(&c, "GET /stream-quit HTTP/1.1\r\n\r\n"));
    CHECK(fx, cl_response(&c, &r, false, true) == -1); /* cut short */
    CHECK(fx, !r.pattern_bad);
    cl_close(&c);
}

static void test_close_from_callbacks(void **state)
{
    struct fx *fx = fx_new();
    fx_run(fx, "127.0.0.1:0", NULL, client_quit);
    assert_int_equal(atomic_load(&fx->handler_calls), 1);
    fx_free(fx);

    fx = fx_new();
    fx_run(fx, "127.0.0.1:0", NULL, client_stream_quit);
    assert_int_equal(atomic_load(&fx->done_calls), 1);
    assert_int_equal(atomic_load(&fx->fill_calls), 2);
    assert_int_equal(fx->done_after_close, 1);
    fx_free(fx);
}

static bool ipv6_loopback_ok(void)
{
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in6 s6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
    bool ok = bind(fd, (struct sockaddr *)&s6, sizeof(s6)) == 0;
    close(fd);
    return ok;
}

/* Connects to each of ips[first..last) and expects a 200. */
static void client_ips(struct fx *fx, int first, int last)
{
    const char *ips[] = { "127.0.0.1", "::1" };
    for (int i = first; i < last; i++) {
        struct cl c;
        struct resp r;
        memset(&c, 0, sizeof(c));
        c.fd = cl_connect_to(ips[i], fx->port, 0);
        if (!CHECK(fx, c.fd >= 0))
            continue;
        CHECK(fx, cl_sends(&c, "GET /hello HTTP/1.1\r\n\r\n"));
        if (CHECK(fx, cl_response(&c, &r, false, false) == 0))
            CHECK(fx, r.status == 200);
        cl_close(&c);
    }
}

/* ":PORT" is dual-stack: both loopbacks answer (v6 only where it exists). */
static void client_dual_stack(struct fx *fx) { client_ips(fx, 0, ipv6_loopback_ok() ? 2 : 1); }

static void client_v6(struct fx *fx) { client_ips(fx, 1, 2); }

/* "localhost" may resolve to ::1 or 127.0.0.1 first: either must answer. */
static void client_any_loopback(struct fx *fx)
{
    const char *ips[] = { "127.0.0.1", "::1" };
    int served = 0;
    for (int i = 0; i < 2; i++) {
        struct cl c;
        struct resp r;
        memset(&c, 0, sizeof(c));
        c.fd = cl_connect_to(ips[i], fx->port, 0);
        if (c.fd < 0)
            continue;
        if (cl_sends(&c, "GET /hello HTTP/1.1\r\n\r\n") && cl_response(&c, &r, false, false) == 0 &&
            r.status == 200)
            served++;
        cl_close(&c);
    }
    CHECK(fx, served >= 1);
}

static void test_bind_all_interfaces(void **state)
{
    struct fx *fx = fx_new();
    fx_run(fx, ":0", NULL, client_dual_stack);
    fx_free(fx);
    if (ipv6_loopback_ok()) {
        fx = fx_new();
        fx_run(fx, "[::1]:0", NULL, client_v6);
        fx_free(fx);
    }
    fx = fx_new();
    fx_run(fx, "localhost:0", NULL, client_any_loopback);
    fx_free(fx);
}

static void test_bind_errors(void **state)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct http_server *srv = NULL, *srv2 = NULL;
    char err[256];
    const char *bad[] = { "nonsense", "1.2.3.4:99999", ":abc", "[::1]", "[::1:80", ":", "127.0.0.1:" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(http_server_start(&loop, bad[i], NULL, handler, NULL, &srv, err, sizeof(err)),
                         -EINVAL);
        assert_true(err[0] != '\0');
    }
    assert_int_equal(http_server_start(&loop, "no-such-host.invalid:80", NULL, handler, NULL, &srv, err,
                                       sizeof(err)),
                     -EINVAL);
    assert_int_equal(http_server_start(&loop, "127.0.0.1:0", NULL, handler, NULL, &srv, err, sizeof(err)),
                     0);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", http_server_port(srv));
    assert_int_equal(http_server_start(&loop, addr, NULL, handler, NULL, &srv2, err, sizeof(err)),
                     -EADDRINUSE);
    assert_non_null(strstr(err, "address already in use"));
    struct http_server_info info;
    http_server_info(srv, &info);
    assert_int_equal(info.conns_open, 0);
    assert_int_equal(info.requests_total, 0);
    http_server_close(srv);
    http_server_close(NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* Server counters after a mixed run. */
static void client_counters(struct fx *fx)
{
    struct cl c;
    struct resp r;
    cl_open(&c, fx->port);
    CHECK(fx, cl_sends(&c, "GET /hello HTTP/1.1\r\n\r\nGET /hello HTTP/1.1\r\n\r\n"));
    CHECK(fx, cl_response(&c, &r, false, false) == 0);
    CHECK(fx, cl_response(&c, &r, false, false) == 0);
    cl_close(&c);
    cl_open(&c, fx->port);
    CHECK(fx, cl_sends(&c, "BAD\r\n\r\n"));
    CHECK(fx, cl_response(&c, &r, false, false) == 0 && r.status == 400);
    CHECK(fx, cl_closed(&c));
    cl_close(&c);
}

static void on_counters_async(uv_async_t *a)
{
    struct fx *fx = a->data;
    /* Snapshot the counters on the loop thread, then close as usual. */
    http_server_info(fx->srv, &fx_info);
    on_async(a);
}

static void test_counters(void **state)
{
    struct fx *fx = fx_new();
    char err[128];
    assert_int_equal(http_server_start(&fx->loop, "127.0.0.1:0", NULL, handler, fx, &fx->srv, err,
                                       sizeof(err)),
                     0);
    fx->port = http_server_port(fx->srv);
    assert_int_equal(uv_async_init(&fx->loop, &fx->async, on_counters_async), 0);
    fx->async.data = fx;
    fx->client = client_counters;
    assert_int_equal(pthread_create(&fx->thread, NULL, client_main, fx), 0);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    pthread_join(fx->thread, NULL);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    if (fx->fail[0])
        fail_msg("%s", fx->fail);
    assert_int_equal(fx_info.requests_total, 2);
    assert_int_equal(fx_info.errors_total, 1);
    assert_int_equal(fx_info.rejected_total, 0);
    assert_int_equal(fx_info.write_pending_bytes, 0);
    fx_free(fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_get),
        cmocka_unit_test(test_keepalive),
        cmocka_unit_test(test_pipelined),
        cmocka_unit_test(test_query_params),
        cmocka_unit_test(test_post_body),
        cmocka_unit_test(test_stream_slow_reader),
        cmocka_unit_test(test_http10),
        cmocka_unit_test(test_head_and_204),
        cmocka_unit_test(test_oversized_headers),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_body_too_large),
        cmocka_unit_test(test_slowloris),
        cmocka_unit_test(test_idle_timeout),
        cmocka_unit_test(test_disconnect_mid_stream),
        cmocka_unit_test(test_write_stall),
        cmocka_unit_test(test_stream_fill_error),
        cmocka_unit_test(test_max_conns),
        cmocka_unit_test(test_close_with_open_conns),
        cmocka_unit_test(test_reply_after_disconnect),
        cmocka_unit_test(test_reply_after_server_close),
        cmocka_unit_test(test_close_from_callbacks),
        cmocka_unit_test(test_bind_all_interfaces),
        cmocka_unit_test(test_bind_errors),
        cmocka_unit_test(test_counters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
