/*
 * test_falcon: the open-falcon renderer on hand-built snapshots (parsed back
 * with jansson: items, types, tags, escaping, HAVE_* bits), and the pusher on
 * a real libuv loop against a tiny in-process HTTP server that counts POSTs
 * and answers 500-then-200, 400, or never.
 *
 * No timing assertions: the pusher tests run the loop until a condition holds
 * (a generous guard timer fails the test if it never does) and then check
 * counters.
 */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <http_parser.h>
#include <jansson.h>
#include <uv.h>

#include "agent/falcon.h"
#include "agent/sample.h"
#include "core/sbuf.h"

#define ID1 "908f79764c00fff235580becbd8e5dd4731f1c1189934e70fadb3f97417e875b"
#define ID2 "fe9fb3574d8bdd7b6033c57d75e04acc848ff682141986968c73f683a4bbbb74"

/* ---- renderer ----------------------------------------------------------- */

/* Two containers: one with every group, one with memory only and no name. */
static struct snapshot *make_snapshot(void)
{
    struct snapshot *s = snapshot_new(0);
    assert_non_null(s);
    s->seq = 7;
    s->timestamp = 1795305567.9;

    struct csample *c = snapshot_add(s);
    assert_non_null(c);
    c->meta = cmeta_new(ID1, "/docker/" ID1, "/we\"ird,name=x\\y", "reg.example/app:1.0\n", 1795305000);
    assert_non_null(c->meta);
    c->have = HAVE_CPU | HAVE_CFS | HAVE_MEM | HAVE_MEM_SWAP | HAVE_MEM_MAX | HAVE_MEM_FAIL | HAVE_OOM |
              HAVE_PIDS | HAVE_BLK | HAVE_NET | HAVE_PSI_CPU | HAVE_PSI_MEM | HAVE_PSI_IO;
    c->timestamp = 1795305567.95;
    c->cpu_usage_ns = UINT64_C(12000345678);
    c->cpu_user_ns = UINT64_C(10000000000);
    c->cpu_system_ns = 5;
    c->cfs_periods = 1000;
    c->cfs_throttled_periods = 10;
    c->cfs_throttled_ns = UINT64_C(1500000000);
    c->mem_usage = 200 << 20;
    c->mem_working_set = 150 << 20;
    c->mem_rss = 123456;
    c->mem_cache = 4096;
    c->mem_mapped_file = 8192;
    c->mem_swap = 1;
    c->mem_max_usage = 300 << 20;
    c->mem_failcnt = 3;
    c->mem_limit = UINT64_C(1) << 30;
    c->oom_events = 2;
    c->processes = 4;
    c->threads = 9;
    c->nblk = 1;
    c->blk = calloc(1, sizeof *c->blk);
    assert_non_null(c->blk);
    c->blk[0].major = 253;
    c->blk[0].minor = 0;
    strcpy(c->blk[0].dev, "/dev/vda");
    c->blk[0].read_bytes = 1111;
    c->blk[0].write_bytes = 2222;
    c->blk[0].reads = 33;
    c->blk[0].writes = 44;
    c->nnet = 2;
    c->net = calloc(2, sizeof *c->net);
    assert_non_null(c->net);
    strcpy(c->net[0].name, "eth0");
    c->net[0].rx_bytes = 1000;
    c->net[0].tx_bytes = 2000;
    c->net[0].rx_packets = 10;
    c->net[0].tx_packets = 20;
    c->net[0].rx_errors = 1;
    c->net[0].tx_errors = 2;
    c->net[0].rx_dropped = 3;
    c->net[0].tx_dropped = 4;
    strcpy(c->net[1].name, "caf\xc3\xa9\xff"); /* valid UTF-8, then an invalid byte */
    c->net[1].rx_bytes = UINT64_C(9000000000000000000);
    c->psi_cpu.some_total_us = 1234567;
    c->psi_cpu.full_total_us = 0;
    c->psi_mem.some_total_us = 1;
    c->psi_io.full_total_us = 2000000;

    c = snapshot_add(s);
    assert_non_null(c);
    c->meta = cmeta_new(ID2, "/docker/" ID2, "", "busybox", 0);
    assert_non_null(c->meta);
    c->have = HAVE_MEM;
    c->mem_usage = 42;
    c->mem_limit = 0; /* unlimited: no mem.limit item */
    c->nnet = 1;      /* present but HAVE_NET is off: not rendered */
    c->net = calloc(1, sizeof *c->net);
    assert_non_null(c->net);
    strcpy(c->net[0].name, "eth0");
    return s;
}

/* Finds the item with this metric whose tags contain `tags_part`. */
static json_t *find_item(json_t *arr, const char *metric, const char *tags_part)
{
    size_t i;
    json_t *it;
    json_array_foreach(arr, i, it) {
        const char *m = json_string_value(json_object_get(it, "metric"));
        const char *t = json_string_value(json_object_get(it, "tags"));
        if (m && t && strcmp(m, metric) == 0 && strstr(t, tags_part))
            return it;
    }
    fail_msg("no item %s with tags %s", metric, tags_part);
    return NULL;
}

static int count_items(json_t *arr, const char *metric)
{
    size_t i;
    json_t *it;
    int n = 0;
    json_array_foreach(arr, i, it) n += strcmp(json_string_value(json_object_get(it, "metric")), metric) == 0;
    return n;
}

static void assert_item(json_t *arr, const char *metric, const char *tags_part, const char *type, double value)
{
    json_t *it = find_item(arr, metric, tags_part);
    assert_string_equal(json_string_value(json_object_get(it, "counterType")), type);
    json_t *v = json_object_get(it, "value");
    assert_true(json_is_number(v));
    double got = json_number_value(v);
    if (got < value - 1e-9 * (value > 1 ? value : 1) || got > value + 1e-9 * (value > 1 ? value : 1))
        fail_msg("%s: got %.9f want %.9f", metric, got, value);
}

static json_t *render_and_parse(const struct snapshot *s, const char *endpoint, unsigned step, size_t flags)
{
    struct sbuf b;
    sbuf_init(&b);
    assert_int_equal(falcon_render(s, endpoint, step, &b), 0);
    json_error_t err;
    json_t *root = json_loadb(b.data, b.len, flags, &err);
    if (!root)
        fail_msg("invalid JSON: %s at %d: %.200s", err.text, err.position, b.data);
    sbuf_free(&b);
    assert_true(json_is_array(root));
    return root;
}

static void test_render_items(void **state)
{
    struct snapshot *s = make_snapshot();
    /* DECODE_INT_AS_REAL: the 9e18 counter does not fit jansson's int64. */
    json_t *arr = render_and_parse(s, "host \"one\"\\x", 60, JSON_DECODE_INT_AS_REAL);

    /* 3 cpu + 3 cfs + 6 mem + swap + max + failcnt + oom + 2 pids + 4 blk + 16 net + 6 psi = 44; then 5 mem. */
    assert_int_equal(json_array_size(arr), 44 + 5);

    size_t i;
    json_t *it;
    json_array_foreach(arr, i, it) {
        assert_int_equal(json_object_size(it), 7);
        assert_string_equal(json_string_value(json_object_get(it, "endpoint")), "host \"one\"\\x");
        assert_true(json_is_string(json_object_get(it, "metric")));
        assert_true(json_number_value(json_object_get(it, "timestamp")) == 1795305567);
        assert_true(json_number_value(json_object_get(it, "step")) == 60);
        assert_true(json_is_number(json_object_get(it, "value")));
        const char *type = json_string_value(json_object_get(it, "counterType"));
        assert_non_null(type);
        assert_true(strcmp(type, "GAUGE") == 0 || strcmp(type, "COUNTER") == 0);
        const char *tags = json_string_value(json_object_get(it, "tags"));
        assert_non_null(tags);
        /* open-falcon splits at ',' then '=': every tag must be exactly k=v. */
        char *copy = strdup(tags), *save = NULL;
        int ntags = 0;
        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            char *eq = strchr(t, '=');
            assert_non_null(eq);
            assert_null(strchr(eq + 1, '='));
            ntags++;
        }
        assert_true(ntags == 3 || ntags == 4);
        free(copy);
    }

    /* The quote and backslash survive JSON escaping; ',' '=' '\n' become '_'. */
    const char *t1 = "container=we\"ird_name_x\\y,id=908f79764c00,image=reg.example/app:1.0_";
    json_t *rss = find_item(arr, "mem.rss", "id=908f79764c00");
    assert_string_equal(json_string_value(json_object_get(rss, "tags")), t1);

    assert_item(arr, "cpu.usage", t1, "COUNTER", 12.000345678);
    assert_item(arr, "cpu.user", t1, "COUNTER", 10.0);
    assert_item(arr, "cpu.system", t1, "COUNTER", 0.000000005);
    assert_item(arr, "cpu.periods", t1, "COUNTER", 1000);
    assert_item(arr, "cpu.throttled.periods", t1, "COUNTER", 10);
    assert_item(arr, "cpu.throttled", t1, "COUNTER", 1.5);
    assert_item(arr, "mem.usage", t1, "GAUGE", 200 << 20);
    assert_item(arr, "mem.working_set", t1, "GAUGE", 150 << 20);
    assert_item(arr, "mem.rss", t1, "GAUGE", 123456);
    assert_item(arr, "mem.cache", t1, "GAUGE", 4096);
    assert_item(arr, "mem.mapped_file", t1, "GAUGE", 8192);
    assert_item(arr, "mem.limit", t1, "GAUGE", 1073741824.0);
    assert_item(arr, "mem.swap", t1, "GAUGE", 1);
    assert_item(arr, "mem.max_usage", t1, "GAUGE", 300 << 20);
    assert_item(arr, "mem.failcnt", t1, "COUNTER", 3);
    assert_item(arr, "mem.oom", t1, "COUNTER", 2);
    assert_item(arr, "process.count", t1, "GAUGE", 4);
    assert_item(arr, "thread.count", t1, "GAUGE", 9);
    assert_item(arr, "disk.io.read_bytes", ",device=/dev/vda", "COUNTER", 1111);
    assert_item(arr, "disk.io.write_bytes", ",device=/dev/vda", "COUNTER", 2222);
    assert_item(arr, "disk.io.read_requests", ",device=/dev/vda", "COUNTER", 33);
    assert_item(arr, "disk.io.write_requests", ",device=/dev/vda", "COUNTER", 44);
    assert_item(arr, "net.if.in.bytes", ",iface=eth0", "COUNTER", 1000);
    assert_item(arr, "net.if.out.bytes", ",iface=eth0", "COUNTER", 2000);
    assert_item(arr, "net.if.in.packets", ",iface=eth0", "COUNTER", 10);
    assert_item(arr, "net.if.out.packets", ",iface=eth0", "COUNTER", 20);
    assert_item(arr, "net.if.in.errors", ",iface=eth0", "COUNTER", 1);
    assert_item(arr, "net.if.out.errors", ",iface=eth0", "COUNTER", 2);
    assert_item(arr, "net.if.in.dropped", ",iface=eth0", "COUNTER", 3);
    assert_item(arr, "net.if.out.dropped", ",iface=eth0", "COUNTER", 4);
    assert_item(arr, "net.if.in.bytes", ",iface=caf\xc3\xa9_", "COUNTER", 9e18);
    assert_item(arr, "pressure.cpu.some", t1, "COUNTER", 1.234567);
    assert_item(arr, "pressure.cpu.full", t1, "COUNTER", 0);
    assert_item(arr, "pressure.memory.some", t1, "COUNTER", 0.000001);
    assert_item(arr, "pressure.io.full", t1, "COUNTER", 2.0);

    /* Second container: no name -> short id; only the HAVE_MEM group, no limit. */
    const char *t2 = "container=fe9fb3574d8b,id=fe9fb3574d8b,image=busybox";
    assert_item(arr, "mem.usage", t2, "GAUGE", 42);
    assert_int_equal(count_items(arr, "mem.limit"), 1);
    assert_int_equal(count_items(arr, "net.if.in.bytes"), 2);
    assert_int_equal(count_items(arr, "cpu.usage"), 1);

    json_decref(arr);
    snapshot_unref(s);
}

/* Seconds are printed exactly from integers: "12.000345678", never 1.2e+01 or 0.1000000001. */
static void test_render_number_text(void **state)
{
    struct snapshot *s = make_snapshot();
    struct sbuf b;
    sbuf_init(&b);
    assert_int_equal(falcon_render(s, "h", 10, &b), 0);
    assert_non_null(strstr(b.data, "\"metric\":\"cpu.usage\",\"timestamp\":1795305567,\"step\":10,"
                                    "\"value\":12.000345678,\"counterType\":\"COUNTER\""));
    assert_non_null(strstr(b.data, "\"value\":0.000000005,"));
    assert_non_null(strstr(b.data, "\"value\":9000000000000000000,"));
    assert_non_null(strstr(b.data, "\"metric\":\"pressure.cpu.some\",\"timestamp\":1795305567,\"step\":10,"
                                    "\"value\":1.234567,"));
    assert_null(strstr(b.data, "e+"));
    assert_null(strstr(b.data, "nan"));
    /* Appends: a second render goes after the first. */
    size_t first = b.len;
    assert_int_equal(falcon_render(s, "h", 10, &b), 0);
    assert_int_equal(b.len, 2 * first);
    sbuf_free(&b);
    snapshot_unref(s);
}

static void test_render_empty_and_edge(void **state)
{
    struct snapshot *s = snapshot_new(0);
    assert_non_null(s);
    struct sbuf b;
    sbuf_init(&b);
    assert_int_equal(falcon_render(s, "h", 60, &b), 0);
    assert_string_equal(b.data, "[]");

    /* A sample with no meta and nothing read renders nothing; a NULL endpoint is "". */
    struct csample *c = snapshot_add(s);
    assert_non_null(c);
    sbuf_reset(&b);
    assert_int_equal(falcon_render(s, NULL, 60, &b), 0);
    assert_string_equal(b.data, "[]");

    /* No meta but HAVE_PIDS: tags with empty values, still valid. Negative clock -> 0. */
    c->have = HAVE_PIDS;
    s->timestamp = -5;
    sbuf_reset(&b);
    assert_int_equal(falcon_render(s, NULL, 60, &b), 0);
    json_t *arr = json_loadb(b.data, b.len, 0, NULL);
    assert_non_null(arr);
    assert_int_equal(json_array_size(arr), 2);
    json_t *it = json_array_get(arr, 0);
    assert_string_equal(json_string_value(json_object_get(it, "endpoint")), "");
    assert_string_equal(json_string_value(json_object_get(it, "tags")), "container=,id=,image=");
    assert_int_equal(json_integer_value(json_object_get(it, "timestamp")), 0);
    json_decref(arr);
    sbuf_free(&b);
    snapshot_unref(s);
}

/* ---- a tiny HTTP server on the loop -------------------------------------- */

enum srv_mode { SRV_500_THEN_200, SRV_SILENT, SRV_400 };

struct srv;

/* One accepted connection. */
struct sconn {
    uv_tcp_t tcp;              /* the socket; data = this */
    http_parser parser;        /* request parser; data = this */
    struct srv *srv;           /* owner */
    struct sconn *next;        /* in srv->conns */
    char url[64];              /* request target */
    char ctype[64];            /* Content-Type value */
    bool hdr_is_ctype;         /* the header being parsed is Content-Type */
    char *body;                /* request body (malloc) */
    size_t body_len;
    bool closed;               /* uv_close called */
    uv_write_t wr;             /* the single response write */
};

struct srv {
    uv_loop_t *loop;
    uv_tcp_t listener;
    int port;
    enum srv_mode mode;
    int posts;                 /* complete POST requests received */
    int bad;                   /* requests with wrong method/path/type/body */
    char *last_body;           /* copy of the last body */
    struct sconn *conns;       /* every connection accepted (freed at the end) */
};

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct sconn *c = p->data;
    size_t n = strlen(c->url);
    if (n + len < sizeof c->url) {
        memcpy(c->url + n, at, len);
        c->url[n + len] = '\0';
    }
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct sconn *c = p->data;
    c->hdr_is_ctype = len == 12 && strncasecmp(at, "Content-Type", 12) == 0;
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct sconn *c = p->data;
    if (c->hdr_is_ctype && len < sizeof c->ctype) {
        memcpy(c->ctype, at, len);
        c->ctype[len] = '\0';
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct sconn *c = p->data;
    c->body = realloc(c->body, c->body_len + len + 1);
    assert_non_null(c->body);
    memcpy(c->body + c->body_len, at, len);
    c->body_len += len;
    c->body[c->body_len] = '\0';
    return 0;
}

static void on_write_done(uv_write_t *w, int status) { (void)w; (void)status; }

static int on_message_complete(http_parser *p)
{
    struct sconn *c = p->data;
    struct srv *s = c->srv;
    s->posts++;
    json_t *root = c->body ? json_loadb(c->body, c->body_len, JSON_DECODE_INT_AS_REAL, NULL) : NULL;
    if (p->method != HTTP_POST || strcmp(c->url, "/v1/push") != 0 ||
        strcmp(c->ctype, "application/json") != 0 || !json_is_array(root) || json_array_size(root) == 0)
        s->bad++;
    json_decref(root);
    free(s->last_body);
    s->last_body = c->body;
    c->body = NULL;
    c->body_len = 0;
    c->url[0] = '\0';

    static char r500[] = "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\noops";
    static char r200[] = "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nsuccess";
    static char r400[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 3\r\n\r\nbad";
    char *resp = NULL;
    if (s->mode == SRV_500_THEN_200)
        resp = s->posts == 1 ? r500 : r200;
    else if (s->mode == SRV_400)
        resp = r400;
    if (resp) {
        uv_buf_t b = uv_buf_init(resp, (unsigned)strlen(resp));
        uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, on_write_done);
    }
    return 0;
}

static const http_parser_settings srv_settings = {
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static void sconn_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    static char mem[65536];
    *buf = uv_buf_init(mem, sizeof mem);
}

static void sconn_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    struct sconn *c = st->data;
    if (n < 0) {
        if (!c->closed) {
            c->closed = true;
            uv_close((uv_handle_t *)&c->tcp, NULL);
        }
        return;
    }
    http_parser_execute(&c->parser, &srv_settings, buf->base, (size_t)n);
}

static void srv_on_conn(uv_stream_t *l, int status)
{
    struct srv *s = l->data;
    assert_int_equal(status, 0);
    struct sconn *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->srv = s;
    c->next = s->conns;
    s->conns = c;
    uv_tcp_init(s->loop, &c->tcp);
    c->tcp.data = c;
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    assert_int_equal(uv_accept(l, (uv_stream_t *)&c->tcp), 0);
    uv_read_start((uv_stream_t *)&c->tcp, sconn_alloc, sconn_read);
}

static void srv_start(struct srv *s, uv_loop_t *loop, enum srv_mode mode)
{
    memset(s, 0, sizeof *s);
    s->loop = loop;
    s->mode = mode;
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", 0, &addr);
    assert_int_equal(uv_tcp_init(loop, &s->listener), 0);
    s->listener.data = s;
    assert_int_equal(uv_tcp_bind(&s->listener, (const struct sockaddr *)&addr, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&s->listener, 16, srv_on_conn), 0);
    struct sockaddr_in got;
    int len = sizeof got;
    uv_tcp_getsockname(&s->listener, (struct sockaddr *)&got, &len);
    s->port = ntohs(got.sin_port);
}

static void srv_stop(struct srv *s)
{
    uv_close((uv_handle_t *)&s->listener, NULL);
    for (struct sconn *c = s->conns; c; c = c->next)
        if (!c->closed) {
            c->closed = true;
            uv_close((uv_handle_t *)&c->tcp, NULL);
        }
}

static void srv_free(struct srv *s)
{
    while (s->conns) {
        struct sconn *c = s->conns;
        s->conns = c->next;
        free(c->body);
        free(c);
    }
    free(s->last_body);
}

/* ---- running the loop until a condition ---------------------------------- */

typedef bool (*cond_fn)(struct falcon *f, struct srv *s);

/* State for run_until. */
struct waiter {
    struct falcon *f;
    struct srv *s;
    cond_fn cond;
    bool met;
    uv_timer_t check;          /* polls the condition every 5 ms */
    uv_timer_t guard;          /* gives up after 20 s */
};

static void waiter_check(uv_timer_t *t)
{
    struct waiter *w = t->data;
    if (w->cond(w->f, w->s)) {
        w->met = true;
        uv_stop(t->loop);
    }
}

static void waiter_guard(uv_timer_t *t) { uv_stop(t->loop); }

static bool run_until(uv_loop_t *loop, struct falcon *f, struct srv *s, cond_fn cond)
{
    struct waiter w = { .f = f, .s = s, .cond = cond };
    uv_timer_init(loop, &w.check);
    uv_timer_init(loop, &w.guard);
    w.check.data = w.guard.data = &w;
    uv_timer_start(&w.check, waiter_check, 5, 5);
    uv_timer_start(&w.guard, waiter_guard, 20000, 0);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&w.check, NULL);
    uv_close((uv_handle_t *)&w.guard, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return w.met;
}

/* Closes everything and checks that no handle is left. */
static void finish(uv_loop_t *loop, struct falcon *f, struct srv *s)
{
    falcon_close(f);
    srv_stop(s);
    uv_run(loop, UV_RUN_DEFAULT);
    srv_free(s);
    assert_int_equal(uv_loop_close(loop), 0);
}

static char *push_url(const struct srv *s, char *buf, size_t cap)
{
    snprintf(buf, cap, "http://127.0.0.1:%d/v1/push", s->port);
    return buf;
}

/* ---- pusher tests -------------------------------------------------------- */

static bool ok_once(struct falcon *f, struct srv *s)
{
    struct falcon_stats st;
    falcon_stats(f, &st);
    return st.pushes_ok >= 1;
}

/* 500 first, then 200: the same payload is retried after a backoff. */
static void test_push_retry_after_500(void **state)
{
    uv_loop_t loop;
    struct srv s;
    char url[64];
    assert_int_equal(uv_loop_init(&loop), 0);
    srv_start(&s, &loop, SRV_500_THEN_200);
    struct falcon *f = falcon_new(&loop, push_url(&s, url, sizeof url), "host-1", 60, 4);
    assert_non_null(f);
    falcon_set_timing(f, 5000, 20, 100);

    struct snapshot *snap = make_snapshot();
    assert_int_equal(falcon_push(f, snap), 0);
    struct falcon_stats st;
    falcon_stats(f, &st);
    assert_int_equal(st.queue_len, 0); /* already in flight */

    assert_true(run_until(&loop, f, &s, ok_once));
    falcon_stats(f, &st);
    assert_int_equal(s.posts, 2);
    assert_int_equal(s.bad, 0);
    assert_int_equal(st.pushes_ok, 1);
    assert_int_equal(st.pushes_failed, 1);
    assert_int_equal(st.retries, 1);
    assert_int_equal(st.dropped, 0);
    assert_int_equal(st.queue_len, 0);
    assert_int_equal(st.last_error, 500);
    assert_true(st.last_ok_time > 1e9);

    /* The retried body is the rendered snapshot. */
    struct sbuf want;
    sbuf_init(&want);
    assert_int_equal(falcon_render(snap, "host-1", 60, &want), 0);
    assert_string_equal(s.last_body, want.data);
    sbuf_free(&want);

    /* An empty snapshot is not pushed. */
    struct snapshot *empty = snapshot_new(0);
    assert_int_equal(falcon_push(f, empty), 0);
    falcon_stats(f, &st);
    assert_int_equal(st.queue_len, 0);
    snapshot_unref(empty);

    snapshot_unref(snap);
    finish(&loop, f, &s);
}

static bool failed_thrice(struct falcon *f, struct srv *s)
{
    struct falcon_stats st;
    falcon_stats(f, &st);
    return st.pushes_failed >= 3;
}

/* A server that accepts and reads but never answers: deadline, backoff, bounded queue. */
static void test_push_silent_server(void **state)
{
    uv_loop_t loop;
    struct srv s;
    char url[64];
    assert_int_equal(uv_loop_init(&loop), 0);
    srv_start(&s, &loop, SRV_SILENT);
    struct falcon *f = falcon_new(&loop, push_url(&s, url, sizeof url), "host-1", 60, 2);
    assert_non_null(f);
    falcon_set_timing(f, 100, 10, 40);

    struct snapshot *snap = make_snapshot();
    for (int i = 0; i < 5; i++)
        assert_int_equal(falcon_push(f, snap), 0); /* returns at once every time */
    struct falcon_stats st;
    falcon_stats(f, &st);
    assert_int_equal(st.queue_len, 2); /* 1 in flight, 2 waiting, 2 dropped */
    assert_int_equal(st.dropped, 2);

    assert_true(run_until(&loop, f, &s, failed_thrice));
    falcon_stats(f, &st);
    assert_int_equal(st.pushes_ok, 0);
    assert_true(st.pushes_failed >= 3);
    assert_int_equal(st.last_error, -ETIMEDOUT);
    /*
     * The first failed payload was the oldest with the queue full, so it went
     * (dropped 3); the next one failed and was put back for retries.
     */
    assert_int_equal(st.dropped, 3);
    assert_true(st.retries >= 1);
    assert_true(st.queue_len <= 2);
    assert_true(s.posts >= 3);
    assert_int_equal(s.bad, 0);

    /* More pushes while failing still never exceed the bound. */
    for (int i = 0; i < 10; i++)
        assert_int_equal(falcon_push(f, snap), 0);
    falcon_stats(f, &st);
    assert_int_equal(st.queue_len, 2);
    assert_true(st.dropped >= 3 + 8);

    snapshot_unref(snap);
    finish(&loop, f, &s); /* closing with a POST in flight or a backoff pending */
}

static bool failed_once(struct falcon *f, struct srv *s)
{
    struct falcon_stats st;
    falcon_stats(f, &st);
    return st.pushes_failed >= 1;
}

/* 400: the payload is refused, dropped, and not retried. */
static void test_push_refused_400(void **state)
{
    uv_loop_t loop;
    struct srv s;
    char url[64];
    assert_int_equal(uv_loop_init(&loop), 0);
    srv_start(&s, &loop, SRV_400);
    struct falcon *f = falcon_new(&loop, push_url(&s, url, sizeof url), "host-1", 60, 4);
    assert_non_null(f);
    falcon_set_timing(f, 5000, 10, 20);
    struct snapshot *snap = make_snapshot();
    assert_int_equal(falcon_push(f, snap), 0);
    assert_true(run_until(&loop, f, &s, failed_once));
    struct falcon_stats st;
    falcon_stats(f, &st);
    assert_int_equal(st.last_error, 400);
    assert_int_equal(st.dropped, 1);
    assert_int_equal(st.queue_len, 0);
    assert_int_equal(st.retries, 0);
    assert_int_equal(s.posts, 1);
    snapshot_unref(snap);
    finish(&loop, f, &s);
}

/* Nobody listening: a transport error, retried; closing right away frees everything. */
static void test_push_refused_connection(void **state)
{
    uv_loop_t loop;
    struct srv s;
    char url[64];
    assert_int_equal(uv_loop_init(&loop), 0);
    srv_start(&s, &loop, SRV_SILENT);
    push_url(&s, url, sizeof url);
    srv_stop(&s); /* the port is now closed */
    uv_run(&loop, UV_RUN_NOWAIT);

    struct falcon *f = falcon_new(&loop, url, "host-1", 60, 4);
    assert_non_null(f);
    falcon_set_timing(f, 1000, 10, 20);
    struct snapshot *snap = make_snapshot();
    assert_int_equal(falcon_push(f, snap), 0);
    assert_true(run_until(&loop, f, &s, failed_once));
    struct falcon_stats st;
    falcon_stats(f, &st);
    assert_int_equal(st.last_error, -ECONNREFUSED);
    assert_int_equal(st.pushes_ok, 0);

    /* Close with a payload in flight right after a push. */
    assert_int_equal(falcon_push(f, snap), 0);
    falcon_close(f);
    uv_run(&loop, UV_RUN_DEFAULT);
    srv_free(&s);
    assert_int_equal(uv_loop_close(&loop), 0);
    snapshot_unref(snap);
}

static void test_new_bad_url(void **state)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_null(falcon_new(&loop, "http://", "h", 60, 1));
    falcon_close(NULL);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_items),
        cmocka_unit_test(test_render_number_text),
        cmocka_unit_test(test_render_empty_and_edge),
        cmocka_unit_test(test_push_retry_after_500),
        cmocka_unit_test(test_push_silent_server),
        cmocka_unit_test(test_push_refused_400),
        cmocka_unit_test(test_push_refused_connection),
        cmocka_unit_test(test_new_bad_url),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
