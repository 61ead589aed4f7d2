/*
 * docker: see docker.h.
 *
 *   docker_start -> events_connect --200--> list (resync) ----> cb.listed
 *                        |  ^                  inspect queue --> cb.inspected
 *                  error/EOF |                 stream lines  --> cb.event
 *                        v  |
 *                   backoff timer (1 s .. 30 s; reset when the stream is up)
 */
#include "agent/docker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/diag.h"
#include "core/http_client.h"
#include "core/log.h"
#include "core/metrics.h"

#define INSPECT_IN_FLIGHT 4
#define INSPECT_QUEUE_MAX 8192        /* ids waiting; beyond this new ids are refused */
#define REQ_TIMEOUT_MS 5000           /* list and inspect deadline */
#define EVENTS_HEADER_TIMEOUT_MS 5000 /* events: time to the response headers */
#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 30000
#define MAX_LIST_BODY (32u << 20)
#define MAX_INSPECT_BODY (4u << 20)
#define MAX_EVENT_LINE (256u << 10)

struct inspect_item {
    char id[65];                  /* container id */
    struct http_req *req;         /* in flight, or NULL while queued */
    struct docker *d;             /* owner (for the completion callback) */
};

struct docker {
    uv_loop_t *loop;
    struct http_endpoint ep;      /* dockerd's address */
    char ep_str[300];             /* for logs */
    struct docker_callbacks cb;   /* owner's callbacks */
    void *arg;                    /* owner's callback argument */

    struct http_client *api;      /* list + inspect, up to INSPECT_IN_FLIGHT connections */
    struct http_client *ping_cl;  /* one connection, pings only: never waits behind an inspect */
    struct http_client *events_cl;/* the long-lived events stream */

    enum docker_state state;      /* from the last ping */
    struct http_req *ping_req;    /* ping in flight */
    uint64_t ping_started;        /* uv_hrtime of the ping in flight */
    double ping_seconds;          /* latency of the last ping (or time to its failure) */
    int last_ping_err;            /* 0 or the negative errno / -status of the last failed ping */
    uint64_t last_up_ms;          /* uv_now of the last successful ping */

    struct http_req *events_req;  /* stream in flight (connecting or streaming) */
    int events_streaming;         /* headers 200 received on events_req */
    uint64_t events_since_ms;     /* uv_now when the current stream came up */
    int64_t last_event_ns;        /* time of the last event seen (for since= on reconnect) */
    struct docker_stream lines;   /* splits the stream into JSON objects */
    uv_timer_t retry;             /* events reconnect backoff */
    uint64_t backoff_ms;          /* next backoff */
    unsigned reconnects;          /* events reconnects so far */

    struct http_req *list_req;    /* list in flight */
    int list_again;               /* a list was asked for while one was in flight */

    struct inspect_item *q;       /* inspect queue (FIFO, first `inflight` are in flight) */
    size_t qn, qcap;
    size_t inflight;

    int closing;                  /* docker_close called */

    /* metrics (children owned by the registry) */
    struct mfamily *f_requests;   /* tether_docker_requests_total{kind} */
    struct mfamily *f_errors;     /* tether_docker_errors_total{kind} */
    struct mfamily *f_events;     /* tether_docker_events_total{action} */
    struct mfamily *f_state;      /* tether_docker_state{state} */
    struct mchild *m_up;          /* tether_docker_up */
    struct mchild *m_ping;        /* tether_docker_ping_seconds */
    struct mchild *m_stream_up;   /* tether_docker_events_connected */
    struct mchild *m_reconnects;  /* tether_docker_events_reconnects_total */
    struct mchild *m_bad_events;  /* tether_docker_events_malformed_total */
    struct mchild *m_queue;       /* tether_docker_inspect_queue */
};

static void events_connect(struct docker *d);
static void list_start(struct docker *d);
static void inspect_pump(struct docker *d);

const char *docker_state_name(enum docker_state s)
{
    switch (s) {
    case DOCKER_UP: return "up";
    case DOCKER_HUNG: return "hung";
    case DOCKER_DOWN: return "down";
    default: return "unknown";
    }
}

static void count(struct mfamily *f, const char *label)
{
    mchild_inc(mfamily_child(f, (const char *const[]){ label }));
}

static void set_state(struct docker *d, enum docker_state s)
{
    static const enum docker_state all[] = { DOCKER_UP, DOCKER_HUNG, DOCKER_DOWN };
    for (size_t i = 0; i < 3; i++)
        mchild_set(mfamily_child(d->f_state, (const char *const[]){ docker_state_name(all[i]) }),
                   all[i] == s ? 1 : 0);
    mchild_set(d->m_up, s == DOCKER_UP ? 1 : 0);
    if (s == d->state)
        return;
    enum docker_state from = d->state;
    d->state = s;
    if (s == DOCKER_UP || from == DOCKER_UP || from == DOCKER_UNKNOWN)
        log_info("dockerd at %s is %s (was %s)", d->ep_str, docker_state_name(s), docker_state_name(from));
    if (s == DOCKER_UP && !d->events_req && !d->closing) {
        /* Recovered: do not wait for the backoff to reconnect the stream. */
        uv_timer_stop(&d->retry);
        d->backoff_ms = BACKOFF_MIN_MS;
        events_connect(d);
    }
    if (d->cb.state_changed)
        d->cb.state_changed(d->arg, from, s);
    if (s == DOCKER_UP)
        inspect_pump(d);
}

/* ---- ping ------------------------------------------------------------------ */

static void ping_done(struct http_req *req, int err, const struct http_response *resp, void *data)
{
    struct docker *d = data;
    d->ping_req = NULL;
    d->ping_seconds = (double)(uv_hrtime() - d->ping_started) / 1e9;
    mchild_set(d->m_ping, d->ping_seconds);
    if (d->closing || err == -ECANCELED)
        return;
    if (err == 0 && resp && resp->status == 200) {
        d->last_ping_err = 0;
        d->last_up_ms = uv_now(d->loop);
        set_state(d, DOCKER_UP);
        return;
    }
    count(d->f_errors, "ping");
    d->last_ping_err = err ? err : -(resp ? resp->status : 0);
    if (err == -ETIMEDOUT || err == -EAGAIN)
        set_state(d, DOCKER_HUNG);
    else
        set_state(d, DOCKER_DOWN);
    if (err)
        log_debug("ping %s failed: %s", d->ep_str, uv_strerror(err));
}

void docker_ping(struct docker *d, uint64_t timeout_ms)
{
    if (d->ping_req || d->closing)
        return;
    struct http_req_opts o = {
        .method = "GET", .path = "/_ping", .timeout_ms = timeout_ms, .max_body = 4096,
        .on_complete = ping_done, .data = d,
    };
    d->ping_started = uv_hrtime();
    count(d->f_requests, "ping");
    d->ping_req = http_request(d->ping_cl, &o);
}

/* ---- events stream ---------------------------------------------------------- */

static int event_line(void *arg, const char *line, size_t len)
{
    struct docker *d = arg;
    struct docker_event ev;
    int r = docker_parse_event(line, len, &ev);
    if (r < 0) {
        mchild_inc(d->m_bad_events);
        log_warn("skipping malformed event from %s (%zu bytes): %s", d->ep_str, len, strerror(-r));
        return 0;
    }
    if (ev.time_nano > d->last_event_ns)
        d->last_event_ns = ev.time_nano;
    if (strcmp(ev.type, "container") == 0 || ev.type[0] == '\0') {
        count(d->f_events, ev.action);
        if (d->cb.event)
            d->cb.event(d->arg, &ev);
    }
    docker_event_free(&ev);
    return 0;
}

static void events_headers(struct http_req *req, const struct http_response *resp, void *data)
{
    struct docker *d = data;
    if (resp->status != 200)
        return; /* completes with an error status; handled in events_done */
    d->events_streaming = 1;
    d->events_since_ms = uv_now(d->loop);
    d->backoff_ms = BACKOFF_MIN_MS;
    mchild_set(d->m_stream_up, 1);
    log_info("events stream from %s connected", d->ep_str);
    /* Subscribed first, then listed: nothing can fall between the two. */
    list_start(d);
}

static void events_body(struct http_req *req, const char *buf, size_t len, void *data)
{
    struct docker *d = data;
    if (docker_stream_feed(&d->lines, buf, len, event_line, d) == -EMSGSIZE) {
        mchild_inc(d->m_bad_events);
        log_warn("dropped an oversized event line from %s", d->ep_str);
    }
}

static void retry_cb(uv_timer_t *t)
{
    events_connect(t->data);
}

static void events_done(struct http_req *req, int err, const struct http_response *resp, void *data)
{
    struct docker *d = data;
    d->events_req = NULL;
    d->events_streaming = 0;
    mchild_set(d->m_stream_up, 0);
    docker_stream_reset(&d->lines);
    if (d->closing || err == -ECANCELED)
        return;
    count(d->f_errors, "events");
    if (err)
        log_warn("events stream from %s ended: %s", d->ep_str, uv_strerror(err));
    else
        log_warn("events stream from %s ended (status %d)", d->ep_str, resp ? resp->status : 0);
    d->reconnects++;
    mchild_inc(d->m_reconnects);
    uv_timer_start(&d->retry, retry_cb, d->backoff_ms, 0);
    d->backoff_ms = d->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : d->backoff_ms * 2;
}

static void events_connect(struct docker *d)
{
    if (d->events_req || d->closing)
        return;
    /* filters={"type":["container"]}; since= replays what a reconnect missed. */
    char path[256];
    int n = snprintf(path, sizeof path, "/events?filters=%%7B%%22type%%22%%3A%%5B%%22container%%22%%5D%%7D");
    if (d->last_event_ns > 0) {
        int64_t after = d->last_event_ns + 1; /* strictly after the last event seen */
        snprintf(path + n, sizeof path - (size_t)n, "&since=%lld.%09lld", (long long)(after / 1000000000),
                 (long long)(after % 1000000000));
    }
    struct http_req_opts o = {
        .method = "GET", .path = path, .timeout_ms = EVENTS_HEADER_TIMEOUT_MS, .stream = 1,
        .on_headers = events_headers, .on_body = events_body, .on_complete = events_done, .data = d,
    };
    count(d->f_requests, "events");
    d->events_req = http_request(d->events_cl, &o);
    if (!d->events_req)
        uv_timer_start(&d->retry, retry_cb, d->backoff_ms, 0);
}

/* ---- list ------------------------------------------------------------------ */

static void list_done(struct http_req *req, int err, const struct http_response *resp, void *data)
{
    struct docker *d = data;
    d->list_req = NULL;
    if (d->closing || err == -ECANCELED)
        return;
    if (err || !resp || resp->status != 200) {
        count(d->f_errors, "list");
        log_warn("listing containers at %s failed: %s", d->ep_str,
                 err ? uv_strerror(err) : "unexpected status");
        /* The events stream's next reconnect lists again; so does a recovery. */
        return;
    }
    struct docker_list list;
    int r = docker_parse_list(resp->body, resp->body_len, &list);
    if (r < 0) {
        count(d->f_errors, "list");
        log_warn("container list from %s is malformed (%zu bytes): %s", d->ep_str, resp->body_len,
                 strerror(-r));
        return;
    }
    if (d->cb.listed)
        d->cb.listed(d->arg, &list);
    docker_list_free(&list);
    if (d->list_again) {
        d->list_again = 0;
        list_start(d);
    }
}

static void list_start(struct docker *d)
{
    if (d->closing)
        return;
    if (d->list_req) {
        d->list_again = 1;
        return;
    }
    struct http_req_opts o = {
        .method = "GET", .path = "/containers/json", .timeout_ms = REQ_TIMEOUT_MS,
        .max_body = MAX_LIST_BODY, .on_complete = list_done, .data = d,
    };
    count(d->f_requests, "list");
    d->list_req = http_request(d->api, &o);
}

/* ---- inspect queue ------------------------------------------------------------ */

static void queue_remove(struct docker *d, size_t i)
{
    memmove(&d->q[i], &d->q[i + 1], (d->qn - i - 1) * sizeof *d->q);
    d->qn--;
    mchild_set(d->m_queue, (double)d->qn);
}

static void inspect_done(struct http_req *req, int err, const struct http_response *resp, void *data)
{
    struct docker *d = data;
    size_t i;
    for (i = 0; i < d->inflight; i++)
        if (d->q[i].req == req)
            break;
    if (i == d->inflight)
        return; /* not ours any more (closing) */
    char id[65];
    memcpy(id, d->q[i].id, sizeof id);
    queue_remove(d, i);
    d->inflight--;
    if (d->closing)
        return;

    struct docker_inspect ins;
    int r = err;
    if (!r && resp && resp->status == 404)
        r = -ENOENT;
    else if (!r && (!resp || resp->status != 200))
        r = -EPROTO;
    if (!r) {
        r = docker_parse_inspect(resp->body, resp->body_len, &ins);
        if (r < 0)
            log_warn("inspect of %.12s from %s is malformed (%zu bytes): %s", id, d->ep_str,
                     resp->body_len, strerror(-r));
    }
    if (r < 0 && r != -ENOENT)
        count(d->f_errors, "inspect");
    if (d->cb.inspected)
        d->cb.inspected(d->arg, id, r, r == 0 ? &ins : NULL);
    if (r == 0)
        docker_inspect_free(&ins);
    inspect_pump(d);
}

static void inspect_pump(struct docker *d)
{
    while (!d->closing && d->inflight < d->qn && d->inflight < INSPECT_IN_FLIGHT &&
           d->state != DOCKER_HUNG && d->state != DOCKER_DOWN) {
        struct inspect_item *it = &d->q[d->inflight];
        char path[128];
        snprintf(path, sizeof path, "/containers/%s/json", it->id);
        struct http_req_opts o = {
            .method = "GET", .path = path, .timeout_ms = REQ_TIMEOUT_MS,
            .max_body = MAX_INSPECT_BODY, .on_complete = inspect_done, .data = d,
        };
        count(d->f_requests, "inspect");
        d->inflight++; /* before http_request: it may complete synchronously */
        it->req = http_request(d->api, &o);
        if (!it->req) {
            d->inflight--;
            break;
        }
    }
}

int docker_inspect(struct docker *d, const char *id)
{
    for (size_t i = 0; i < d->qn; i++)
        if (strcmp(d->q[i].id, id) == 0)
            return -EALREADY;
    if (d->qn >= INSPECT_QUEUE_MAX)
        return -ENOBUFS;
    if (d->qn == d->qcap) {
        size_t ncap = d->qcap ? d->qcap * 2 : 16;
        struct inspect_item *q = realloc(d->q, ncap * sizeof *q);
        if (!q)
            return -ENOMEM;
        d->q = q;
        d->qcap = ncap;
    }
    struct inspect_item *it = &d->q[d->qn++];
    memset(it, 0, sizeof *it);
    snprintf(it->id, sizeof it->id, "%s", id);
    it->d = d;
    mchild_set(d->m_queue, (double)d->qn);
    inspect_pump(d);
    return 0;
}

/* ---- life cycle ------------------------------------------------------------- */

static const char *const kind_label[] = { "kind", NULL };

struct docker *docker_new(uv_loop_t *loop, const char *url, const struct docker_callbacks *cb, void *arg,
                          struct metrics *reg)
{
    struct docker *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->loop = loop;
    if (http_endpoint_parse(url, &d->ep, NULL, 0) < 0) {
        log_error("bad docker address '%s'", url);
        free(d);
        return NULL;
    }
    http_endpoint_str(&d->ep, d->ep_str, sizeof d->ep_str);
    d->cb = *cb;
    d->arg = arg;
    d->api = http_client_new(loop, &d->ep, &(struct http_client_opts){ .max_conns = INSPECT_IN_FLIGHT });
    d->ping_cl = http_client_new(loop, &d->ep, &(struct http_client_opts){ .max_conns = 1 });
    d->events_cl = http_client_new(loop, &d->ep, &(struct http_client_opts){ .max_conns = 1 });
    uv_timer_init(loop, &d->retry);
    d->retry.data = d;
    d->backoff_ms = BACKOFF_MIN_MS;
    docker_stream_init(&d->lines, MAX_EVENT_LINE);

    d->f_requests = metrics_family(reg, "tether_docker_requests_total",
                                   "Requests sent to dockerd, by kind.", METRIC_COUNTER, kind_label, NULL, 0);
    d->f_errors = metrics_family(reg, "tether_docker_errors_total",
                                 "Failed dockerd requests, by kind.", METRIC_COUNTER, kind_label, NULL, 0);
    d->f_events = metrics_family(reg, "tether_docker_events_total", "Container events received, by action.",
                                 METRIC_COUNTER, (const char *const[]){ "action", NULL }, NULL, 0);
    d->f_state = metrics_family(reg, "tether_docker_state",
                                "1 for dockerd's current state: up, hung (accepts, never answers), down.",
                                METRIC_GAUGE, (const char *const[]){ "state", NULL }, NULL, 0);
    d->m_up = metrics_gauge(reg, "tether_docker_up", "1 when dockerd answered the last ping in time.");
    d->m_ping = metrics_gauge(reg, "tether_docker_ping_seconds", "Duration of the last dockerd ping.");
    d->m_stream_up = metrics_gauge(reg, "tether_docker_events_connected", "1 while the events stream is up.");
    d->m_reconnects = metrics_counter(reg, "tether_docker_events_reconnects_total",
                                      "Times the events stream was re-established.");
    d->m_bad_events = metrics_counter(reg, "tether_docker_events_malformed_total",
                                      "Event lines skipped because they were malformed or oversized.");
    d->m_queue = metrics_gauge(reg, "tether_docker_inspect_queue", "Inspects waiting or in flight.");
    if (!d->api || !d->ping_cl || !d->events_cl) {
        docker_close(d);
        return NULL;
    }
    for (const char *const *k = (const char *const[]){ "ping", "list", "inspect", "events", NULL }; *k; k++) {
        mfamily_child(d->f_requests, (const char *const[]){ *k });
        mfamily_child(d->f_errors, (const char *const[]){ *k });
    }
    set_state(d, DOCKER_UNKNOWN);
    return d;
}

void docker_start(struct docker *d)
{
    log_info("following dockerd at %s", d->ep_str);
    events_connect(d);
}

enum docker_state docker_get_state(const struct docker *d) { return d->state; }

static void retry_closed(uv_handle_t *h)
{
    struct docker *d = h->data;
    free(d->q);
    free(d);
}

void docker_close(struct docker *d)
{
    d->closing = 1;
    /* Closing the clients cancels every request; callbacks see d->closing. */
    if (d->api)
        http_client_close(d->api);
    if (d->ping_cl)
        http_client_close(d->ping_cl);
    if (d->events_cl)
        http_client_close(d->events_cl);
    d->api = d->ping_cl = d->events_cl = NULL;
    docker_stream_free(&d->lines);
    uv_timer_stop(&d->retry);
    uv_close((uv_handle_t *)&d->retry, retry_closed);
}

/* ---- diagnostics ------------------------------------------------------------- */

static void visit_conn(void *arg, const char *state, uint64_t age_ms, const char *method, const char *path,
                       int64_t deadline_left_ms)
{
    json_t *arr = arg;
    json_t *o = json_pack("{s:s, s:I}", "state", state, "age_ms", (json_int_t)age_ms);
    if (method) {
        json_object_set_new(o, "method", json_string(method));
        json_object_set_new(o, "path", json_string(path));
        json_object_set_new(o, "deadline_left_ms", json_integer(deadline_left_ms));
    }
    json_array_append_new(arr, o);
}

void docker_visit_requests(const struct docker *d, json_t *arr)
{
    diag_client_requests(arr, "docker-api", d->api);
    diag_client_requests(arr, "docker-ping", d->ping_cl);
    diag_client_requests(arr, "docker-events", d->events_cl);
    /* Inspects still waiting for a connection have no deadline yet. */
    for (size_t i = d->inflight; i < d->qn; i++)
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s, s:I}", "client", "docker-api", "method", "GET",
                                             "path", "/containers/{id}/json", "state", "queued", "deadline_left_ms",
                                             (json_int_t)-1));
}

static json_t *client_json(const struct http_client *c, const char *role)
{
    json_t *conns = json_array();
    if (c)
        http_client_visit(c, visit_conn, conns);
    struct http_client_info info = { 0 };
    if (c)
        http_client_info(c, &info);
    return json_pack("{s:s, s:o, s:i, s:i, s:I, s:I}", "role", role, "connections", conns, "queued",
                     (int)info.reqs_queued, "inflight", (int)info.reqs_inflight, "requests_total",
                     (json_int_t)info.reqs_total, "errors_total", (json_int_t)info.errors_total);
}

void docker_diag(json_t *root, const char *key, void *arg)
{
    struct docker *d = arg;
    json_t *o = json_object();
    json_object_set_new(o, "endpoint", json_string(d->ep_str));
    json_object_set_new(o, "state", json_string(docker_state_name(d->state)));
    json_object_set_new(o, "ping_seconds", json_real(d->ping_seconds));
    json_object_set_new(o, "ping_in_flight", json_boolean(d->ping_req != NULL));
    json_object_set_new(o, "last_ping_error", json_integer(d->last_ping_err));
    json_object_set_new(o, "events_streaming", json_boolean(d->events_streaming));
    json_object_set_new(o, "events_age_ms",
                        json_integer(d->events_streaming ? (json_int_t)(uv_now(d->loop) - d->events_since_ms) : 0));
    json_object_set_new(o, "events_reconnects", json_integer(d->reconnects));
    json_object_set_new(o, "events_retry_in_ms",
                        json_integer(uv_is_active((uv_handle_t *)&d->retry)
                                         ? (json_int_t)uv_timer_get_due_in(&d->retry) : -1));
    json_t *q = json_array();
    for (size_t i = 0; i < d->qn; i++)
        json_array_append_new(q, json_pack("{s:s, s:b}", "id", d->q[i].id, "in_flight", i < d->inflight));
    json_object_set_new(o, "inspect_queue", q);
    json_t *clients = json_array();
    json_array_append_new(clients, client_json(d->api, "api"));
    json_array_append_new(clients, client_json(d->ping_cl, "ping"));
    json_array_append_new(clients, client_json(d->events_cl, "events"));
    json_object_set_new(o, "clients", clients);
    json_object_set_new(root, key, o);
    docker_visit_requests(d, diag_requests(root));
}
