/*
 * falcon: open-falcon renderer and pusher (format, metric table, queueing and
 * retry policy are described in falcon.h).
 *
 * Rendering writes JSON by hand into an sbuf: the item layout is fixed, every
 * string goes through one escaper (falcon_put_str) and every number is printed
 * from an integer, so the output is valid JSON without building a jansson tree
 * for thousands of items.
 *
 * Pusher states (at most one of sending / backoff at a time):
 *
 *   idle --push--> sending --2xx--> idle (or sending the next payload)
 *                     |
 *                     +--error/non-2xx--> backoff --timer--> sending (same payload, retried)
 *
 * The payload being sent is kept in `inflight` so it can go back to the head
 * of the queue for a retry; http_request() copies the body, so the copy here
 * only lives for retries.
 */
#include "agent/falcon.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/http_client.h"
#include "core/log.h"

/* ---- rendering ---------------------------------------------------------- */

/* Length of the valid UTF-8 sequence starting at s[0..n), or 0 when invalid. */
static size_t falcon_utf8_len(const unsigned char *s, size_t n)
{
    size_t len;
    uint32_t cp;

    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        len = 2;
        cp = s[0] & 0x1f;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        len = 3;
        cp = s[0] & 0x0f;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        len = 4;
        cp = s[0] & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return len;
}

/*
 * Appends s as the inside of a JSON string. With `tag`, ',' and '=' become '_'
 * (they are open-falcon's tag separators). Control characters and bytes that
 * are not valid UTF-8 become '_' too, so the result is always valid JSON.
 */
static int falcon_put_str(struct sbuf *out, const char *s, bool tag)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t n = strlen((const char *)p);
    int rc = 0;

    while (n > 0 && rc == 0) {
        size_t run = 0;
        /* Copy plain ASCII in one go. */
        while (run < n && p[run] >= 0x20 && p[run] < 0x7f && p[run] != '"' && p[run] != '\\' &&
               !(tag && (p[run] == ',' || p[run] == '=')))
            run++;
        if (run > 0) {
            rc = sbuf_append(out, p, run);
            p += run;
            n -= run;
            continue;
        }
        if (p[0] == '"' || p[0] == '\\') {
            char esc[2] = { '\\', (char)p[0] };
            rc = sbuf_append(out, esc, 2);
            p++;
            n--;
        } else if (p[0] >= 0x80) {
            size_t len = falcon_utf8_len(p, n);
            rc = len ? sbuf_append(out, p, len) : sbuf_putc(out, '_');
            p += len ? len : 1;
            n -= len ? len : 1;
        } else {
            rc = sbuf_putc(out, '_'); /* control character, DEL, ',' or '=' in a tag */
            p++;
            n--;
        }
    }
    return rc;
}

/* Per-render state: what every item of a container shares. */
struct falcon_render {
    struct sbuf *out;          /* the page being built */
    struct sbuf head;          /* `{"endpoint":"...","metric":"` */
    struct sbuf mid;           /* `","timestamp":T,"step":S,"value":` */
    struct sbuf tags;          /* this container's escaped base tags */
    bool first;                /* no item written yet (no ',' needed) */
};

static const char *const falcon_gauge = "GAUGE";
static const char *const falcon_counter = "COUNTER";

/* Writes one item; value is already formatted as a JSON number. */
static int falcon_item(struct falcon_render *r, const char *metric, const char *type, const char *value,
                       const char *tag_key, const char *tag_value)
{
    struct sbuf *o = r->out;
    int rc;

    if (!r->first && (rc = sbuf_putc(o, ',')) < 0)
        return rc;
    r->first = false;
    if ((rc = sbuf_append(o, r->head.data, r->head.len)) < 0 || (rc = sbuf_append_str(o, metric)) < 0 ||
        (rc = sbuf_append(o, r->mid.data, r->mid.len)) < 0 || (rc = sbuf_append_str(o, value)) < 0 ||
        (rc = sbuf_append_str(o, ",\"counterType\":\"")) < 0 || (rc = sbuf_append_str(o, type)) < 0 ||
        (rc = sbuf_append_str(o, "\",\"tags\":\"")) < 0 || (rc = sbuf_append(o, r->tags.data, r->tags.len)) < 0)
        return rc;
    if (tag_key) {
        if ((rc = sbuf_putc(o, ',')) < 0 || (rc = sbuf_append_str(o, tag_key)) < 0 ||
            (rc = sbuf_putc(o, '=')) < 0 || (rc = falcon_put_str(o, tag_value, true)) < 0)
            return rc;
    }
    return sbuf_append_str(o, "\"}");
}

static int falcon_u64(struct falcon_render *r, const char *metric, const char *type, uint64_t v,
                      const char *tag_key, const char *tag_value)
{
    char num[24];
    snprintf(num, sizeof num, "%" PRIu64, v);
    return falcon_item(r, metric, type, num, tag_key, tag_value);
}

/* An integer count of 1/per units as exact decimal seconds ("12.000345678"). */
static int falcon_seconds(struct falcon_render *r, const char *metric, uint64_t v, uint64_t per, int digits)
{
    char num[32];
    snprintf(num, sizeof num, "%" PRIu64 ".%0*" PRIu64, v / per, digits, v % per);
    return falcon_item(r, metric, falcon_counter, num, NULL, NULL);
}

/* Builds r->tags for one container. */
static int falcon_base_tags(struct falcon_render *r, const struct cmeta *m)
{
    static const struct cmeta none = { 0 };
    char shortid[13];
    int rc;

    if (!m)
        m = &none;
    snprintf(shortid, sizeof shortid, "%.12s", m->id ? m->id : "");
    sbuf_reset(&r->tags);
    if ((rc = sbuf_append_str(&r->tags, "container=")) < 0 ||
        (rc = falcon_put_str(&r->tags, m->name && m->name[0] ? m->name : shortid, true)) < 0 ||
        (rc = sbuf_append_str(&r->tags, ",id=")) < 0 || (rc = falcon_put_str(&r->tags, shortid, true)) < 0 ||
        (rc = sbuf_append_str(&r->tags, ",image=")) < 0 || (rc = falcon_put_str(&r->tags, m->image, true)) < 0)
        return rc;
    return 0;
}

#define FALCON_TRY(expr)          \
    do {                          \
        int rc_ = (expr);         \
        if (rc_ < 0)              \
            return rc_;           \
    } while (0)

static int falcon_container(struct falcon_render *r, const struct csample *c)
{
    const char *G = falcon_gauge, *C = falcon_counter;
    const uint64_t NS = 1000000000, US = 1000000;

    FALCON_TRY(falcon_base_tags(r, c->meta));
    if (c->have & HAVE_CPU) {
        FALCON_TRY(falcon_seconds(r, "cpu.usage", c->cpu_usage_ns, NS, 9));
        FALCON_TRY(falcon_seconds(r, "cpu.user", c->cpu_user_ns, NS, 9));
        FALCON_TRY(falcon_seconds(r, "cpu.system", c->cpu_system_ns, NS, 9));
    }
    if (c->have & HAVE_CFS) {
        FALCON_TRY(falcon_u64(r, "cpu.periods", C, c->cfs_periods, NULL, NULL));
        FALCON_TRY(falcon_u64(r, "cpu.throttled.periods", C, c->cfs_throttled_periods, NULL, NULL));
        FALCON_TRY(falcon_seconds(r, "cpu.throttled", c->cfs_throttled_ns, NS, 9));
    }
    if (c->have & HAVE_MEM) {
        FALCON_TRY(falcon_u64(r, "mem.usage", G, c->mem_usage, NULL, NULL));
        FALCON_TRY(falcon_u64(r, "mem.working_set", G, c->mem_working_set, NULL, NULL));
        FALCON_TRY(falcon_u64(r, "mem.rss", G, c->mem_rss, NULL, NULL));
        FALCON_TRY(falcon_u64(r, "mem.cache", G, c->mem_cache, NULL, NULL));
        FALCON_TRY(falcon_u64(r, "mem.mapped_file", G, c->mem_mapped_file, NULL, NULL));
        if (c->mem_limit)
            FALCON_TRY(falcon_u64(r, "mem.limit", G, c->mem_limit, NULL, NULL));
    }
    if (c->have & HAVE_MEM_SWAP)
        FALCON_TRY(falcon_u64(r, "mem.swap", G, c->mem_swap, NULL, NULL));
    if (c->have & HAVE_MEM_MAX)
        FALCON_TRY(falcon_u64(r, "mem.max_usage", G, c->mem_max_usage, NULL, NULL));
    if (c->have & HAVE_MEM_FAIL)
        FALCON_TRY(falcon_u64(r, "mem.failcnt", C, c->mem_failcnt, NULL, NULL));
    if (c->have & HAVE_OOM)
        FALCON_TRY(falcon_u64(r, "mem.oom", C, c->oom_events, NULL, NULL));
    if (c->have & HAVE_PIDS) {
        FALCON_TRY(falcon_u64(r, "process.count", G, c->processes, NULL, NULL));
        FALCON_TRY(falcon_u64(r, "thread.count", G, c->threads, NULL, NULL));
    }
    if ((c->have & HAVE_BLK) && c->blk) {
        for (size_t i = 0; i < c->nblk; i++) {
            const struct blkdev_stat *b = &c->blk[i];
            char dev[sizeof b->dev + 1];
            snprintf(dev, sizeof dev, "%.*s", (int)sizeof b->dev, b->dev);
            FALCON_TRY(falcon_u64(r, "disk.io.read_bytes", C, b->read_bytes, "device", dev));
            FALCON_TRY(falcon_u64(r, "disk.io.write_bytes", C, b->write_bytes, "device", dev));
            FALCON_TRY(falcon_u64(r, "disk.io.read_requests", C, b->reads, "device", dev));
            FALCON_TRY(falcon_u64(r, "disk.io.write_requests", C, b->writes, "device", dev));
        }
    }
    if ((c->have & HAVE_NET) && c->net) {
        for (size_t i = 0; i < c->nnet; i++) {
            const struct netif_stat *n = &c->net[i];
            char ifc[sizeof n->name + 1];
            snprintf(ifc, sizeof ifc, "%.*s", (int)sizeof n->name, n->name);
            FALCON_TRY(falcon_u64(r, "net.if.in.bytes", C, n->rx_bytes, "iface", ifc));
            FALCON_TRY(falcon_u64(r, "net.if.in.packets", C, n->rx_packets, "iface", ifc));
            FALCON_TRY(falcon_u64(r, "net.if.in.errors", C, n->rx_errors, "iface", ifc));
            FALCON_TRY(falcon_u64(r, "net.if.in.dropped", C, n->rx_dropped, "iface", ifc));
            FALCON_TRY(falcon_u64(r, "net.if.out.bytes", C, n->tx_bytes, "iface", ifc));
            FALCON_TRY(falcon_u64(r, "net.if.out.packets", C, n->tx_packets, "iface", ifc));
            FALCON_TRY(falcon_u64(r, "net.if.out.errors", C, n->tx_errors, "iface", ifc));
            FALCON_TRY(falcon_u64(r, "net.if.out.dropped", C, n->tx_dropped, "iface", ifc));
        }
    }
    if (c->have & HAVE_PSI_CPU) {
        FALCON_TRY(falcon_seconds(r, "pressure.cpu.some", c->psi_cpu.some_total_us, US, 6));
        FALCON_TRY(falcon_seconds(r, "pressure.cpu.full", c->psi_cpu.full_total_us, US, 6));
    }
    if (c->have & HAVE_PSI_MEM) {
        FALCON_TRY(falcon_seconds(r, "pressure.memory.some", c->psi_mem.some_total_us, US, 6));
        FALCON_TRY(falcon_seconds(r, "pressure.memory.full", c->psi_mem.full_total_us, US, 6));
    }
    if (c->have & HAVE_PSI_IO) {
        FALCON_TRY(falcon_seconds(r, "pressure.io.some", c->psi_io.some_total_us, US, 6));
        FALCON_TRY(falcon_seconds(r, "pressure.io.full", c->psi_io.full_total_us, US, 6));
    }
    return 0;
}

int falcon_render(const struct snapshot *snap, const char *endpoint, unsigned step, struct sbuf *out)
{
    struct falcon_render r = { .out = out, .first = true };
    /* Whole seconds; a negative or absurd clock is written as 0 rather than wrapping. */
    double ts = snap->timestamp;
    int64_t t = ts > 0 && ts < 9e15 ? (int64_t)ts : 0;
    int rc;

    sbuf_init(&r.head);
    sbuf_init(&r.mid);
    sbuf_init(&r.tags);
    if ((rc = sbuf_append_str(&r.head, "{\"endpoint\":\"")) < 0 ||
        (rc = falcon_put_str(&r.head, endpoint, false)) < 0 ||
        (rc = sbuf_append_str(&r.head, "\",\"metric\":\"")) < 0 ||
        (rc = sbuf_printf(&r.mid, "\",\"timestamp\":%" PRId64 ",\"step\":%u,\"value\":", t, step)) < 0 ||
        (rc = sbuf_putc(out, '[')) < 0)
        goto done;
    for (size_t i = 0; i < snap->n; i++)
        if ((rc = falcon_container(&r, &snap->c[i])) < 0)
            goto done;
    rc = sbuf_putc(out, ']');
done:
    sbuf_free(&r.head);
    sbuf_free(&r.mid);
    sbuf_free(&r.tags);
    return rc;
}

/* ---- pusher ------------------------------------------------------------- */

#define FALCON_DEFAULT_QUEUE 16
#define FALCON_TIMEOUT_MS 5000
#define FALCON_BACKOFF_MIN_MS 1000
#define FALCON_BACKOFF_MAX_MS 60000

/* One rendered payload. */
struct falcon_item {
    struct sbuf body;          /* the JSON array; owned */
    unsigned attempts;         /* POSTs already made with it */
};

struct falcon {
    uv_loop_t *loop;           /* not owned */
    struct http_client *client; /* owned; closed by falcon_close */
    char path[256];            /* request target from the URL, e.g. "/v1/push" */
    char *endpoint;            /* owned copy */
    unsigned step;             /* seconds, copied into every item */

    struct falcon_item *ring;  /* max_queue slots of waiting payloads; owned */
    size_t max_queue;          /* ring size */
    size_t head;               /* index of the oldest waiting payload */
    size_t qlen;               /* payloads waiting */

    struct falcon_item inflight; /* the payload being sent (valid while sending) */
    bool sending;              /* a POST is in flight */
    bool backoff;              /* the timer is armed for a retry */
    unsigned fails;            /* consecutive failures, for the backoff exponent */
    uv_timer_t timer;          /* backoff timer; data = this */

    uint64_t timeout_ms;       /* request deadline */
    uint64_t backoff_min_ms;   /* first retry delay */
    uint64_t backoff_max_ms;   /* cap */

    bool closing;              /* falcon_close was called */
    bool timer_closed;         /* the timer's close callback ran */
    struct falcon_stats st;    /* counters (queue_len is computed on read) */
};

static void falcon_kick(struct falcon *f);

static double falcon_now(void)
{
    uv_timeval64_t tv;
    if (uv_gettimeofday(&tv) != 0)
        return 0;
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

/* Frees f once nothing can call back into it. */
static void falcon_maybe_free(struct falcon *f)
{
    if (!f->closing || !f->timer_closed || f->sending)
        return;
    free(f->endpoint);
    free(f->ring);
    free(f);
}

static void falcon_item_free(struct falcon_item *it)
{
    sbuf_free(&it->body);
    it->attempts = 0;
}

/* Appends a payload, dropping the oldest waiting one when full. Takes ownership of *it. */
static void falcon_enqueue(struct falcon *f, struct falcon_item *it)
{
    if (f->qlen == f->max_queue) {
        falcon_item_free(&f->ring[f->head]);
        f->head = (f->head + 1) % f->max_queue;
        f->qlen--;
        f->st.dropped++;
        log_debug("falcon: queue full (%zu), dropped the oldest payload", f->max_queue);
    }
    f->ring[(f->head + f->qlen) % f->max_queue] = *it;
    f->qlen++;
    sbuf_init(&it->body);
}

/* Puts a failed payload back in front for a retry, unless newer ones filled the queue. */
static void falcon_requeue_front(struct falcon *f, struct falcon_item *it)
{
    if (f->qlen == f->max_queue) {
        falcon_item_free(it); /* it is the oldest: it goes */
        f->st.dropped++;
        return;
    }
    f->head = (f->head + f->max_queue - 1) % f->max_queue;
    f->ring[f->head] = *it;
    f->qlen++;
    sbuf_init(&it->body);
}

static void falcon_on_timer(uv_timer_t *t)
{
    struct falcon *f = t->data;
    f->backoff = false;
    falcon_kick(f);
}

static void falcon_schedule_retry(struct falcon *f)
{
    uint64_t delay = f->backoff_min_ms;
    for (unsigned i = 1; i < f->fails && delay < f->backoff_max_ms; i++)
        delay *= 2;
    if (delay > f->backoff_max_ms)
        delay = f->backoff_max_ms;
    f->backoff = true;
    uv_timer_start(&f->timer, falcon_on_timer, delay, 0);
}

/* A failure of the in-flight payload: count, keep or drop it, back off. */
static void falcon_failed(struct falcon *f, int err, int status)
{
    bool refused = err == 0 && status >= 400 && status < 500 && status != 408 && status != 429;
    char why[32];

    if (err)
        snprintf(why, sizeof why, "%s", uv_err_name(err));
    else
        snprintf(why, sizeof why, "HTTP %d", status);
    f->st.pushes_failed++;
    f->st.last_error = err ? err : status;
    if (refused)
        log_warn("falcon: payload refused (%s), dropped", why);
    else if (f->fails == 0)
        log_warn("falcon: push failed (%s), retrying with backoff", why);
    else
        log_debug("falcon: push failed again (%s), %u in a row", why, f->fails + 1);
    f->fails++;

    if (refused) {
        falcon_item_free(&f->inflight);
        f->st.dropped++;
    } else {
        falcon_requeue_front(f, &f->inflight);
    }
    falcon_schedule_retry(f);
}

static void falcon_on_complete(struct http_req *req, int err, const struct http_response *resp, void *data)
{
    struct falcon *f = data;
    int status = resp ? resp->status : 0;

    f->sending = false;
    if (f->closing) {
        falcon_item_free(&f->inflight);
        falcon_maybe_free(f);
        return;
    }
    if (err == 0 && status >= 200 && status < 300) {
        f->st.pushes_ok++;
        f->st.last_ok_time = falcon_now();
        if (f->fails)
            log_info("falcon: push succeeded again after %u failures", f->fails);
        f->fails = 0;
        falcon_item_free(&f->inflight);
        falcon_kick(f);
        return;
    }
    falcon_failed(f, err == 0 && status == 0 ? -EPROTO : err, status);
}

/* Starts the next POST when nothing is in flight and no backoff is pending. */
static void falcon_kick(struct falcon *f)
{
    static const char *const headers[] = { "Content-Type: application/json", NULL };

    if (f->closing || f->sending || f->backoff || f->qlen == 0)
        return;
    f->inflight = f->ring[f->head];
    sbuf_init(&f->ring[f->head].body);
    f->head = (f->head + 1) % f->max_queue;
    f->qlen--;
    if (f->inflight.attempts > 0)
        f->st.retries++;
    f->inflight.attempts++;

    struct http_req_opts o = {
        .method = "POST",
        .path = f->path,
        .headers = headers,
        .body = f->inflight.body.data,
        .body_len = f->inflight.body.len,
        .timeout_ms = f->timeout_ms,
        .max_body = 64 * 1024,
        .on_complete = falcon_on_complete,
        .data = f,
    };
    f->sending = true;
    if (!http_request(f->client, &o)) {
        /* Nothing was sent and no callback will run. */
        f->sending = false;
        falcon_failed(f, -ENOMEM, 0);
    }
}

struct falcon *falcon_new(uv_loop_t *loop, const char *url, const char *endpoint, unsigned step,
                          size_t max_queue)
{
    struct http_endpoint ep;
    struct falcon *f = calloc(1, sizeof *f);

    if (!f)
        return NULL;
    if (!url || http_endpoint_parse(url, &ep, f->path, sizeof f->path) < 0) {
        log_error("falcon: bad URL %s", url ? url : "(none)");
        free(f);
        return NULL;
    }
    if (!f->path[0])
        strcpy(f->path, "/");
    f->loop = loop;
    f->step = step;
    f->max_queue = max_queue ? max_queue : FALCON_DEFAULT_QUEUE;
    f->timeout_ms = FALCON_TIMEOUT_MS;
    f->backoff_min_ms = FALCON_BACKOFF_MIN_MS;
    f->backoff_max_ms = FALCON_BACKOFF_MAX_MS;
    f->endpoint = strdup(endpoint ? endpoint : "");
    f->ring = calloc(f->max_queue, sizeof *f->ring);
    struct http_client_opts co = { .max_conns = 1 };
    f->client = (f->endpoint && f->ring) ? http_client_new(loop, &ep, &co) : NULL;
    if (!f->client) {
        free(f->endpoint);
        free(f->ring);
        free(f);
        return NULL;
    }
    for (size_t i = 0; i < f->max_queue; i++)
        sbuf_init(&f->ring[i].body);
    sbuf_init(&f->inflight.body);
    uv_timer_init(loop, &f->timer);
    f->timer.data = f;
    return f;
}

void falcon_set_timing(struct falcon *f, uint64_t timeout_ms, uint64_t backoff_min_ms, uint64_t backoff_max_ms)
{
    if (timeout_ms)
        f->timeout_ms = timeout_ms;
    if (backoff_min_ms)
        f->backoff_min_ms = backoff_min_ms;
    if (backoff_max_ms)
        f->backoff_max_ms = backoff_max_ms;
    if (f->backoff_max_ms < f->backoff_min_ms)
        f->backoff_max_ms = f->backoff_min_ms;
}

int falcon_push(struct falcon *f, const struct snapshot *snap)
{
    struct falcon_item it = { .attempts = 0 };

    if (f->closing)
        return -ECANCELED;
    if (!snap || snap->n == 0)
        return 0;
    sbuf_init(&it.body);
    int rc = falcon_render(snap, f->endpoint, f->step, &it.body);
    if (rc < 0) {
        sbuf_free(&it.body);
        return rc;
    }
    falcon_enqueue(f, &it);
    falcon_kick(f);
    return 0;
}

const struct http_client *falcon_client(const struct falcon *f)
{
    return f ? f->client : NULL;
}

void falcon_stats(const struct falcon *f, struct falcon_stats *out)
{
    *out = f->st;
    out->queue_len = f->qlen;
}

static void falcon_on_timer_closed(uv_handle_t *h)
{
    struct falcon *f = h->data;
    f->timer_closed = true;
    falcon_maybe_free(f);
}

void falcon_close(struct falcon *f)
{
    if (!f || f->closing)
        return;
    f->closing = true;
    while (f->qlen > 0) {
        falcon_item_free(&f->ring[f->head]);
        f->head = (f->head + 1) % f->max_queue;
        f->qlen--;
    }
    uv_timer_stop(&f->timer);
    f->backoff = false;
    uv_close((uv_handle_t *)&f->timer, falcon_on_timer_closed);
    /* Completes the in-flight POST with -ECANCELED, now or from the loop. */
    http_client_close(f->client);
    f->client = NULL;
}
