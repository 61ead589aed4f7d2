/*
 * http_client: see http_client.h for the contract.
 *
 * Objects and who owns what
 *
 *   struct http_client   owned by the caller until http_client_close(); then it
 *                        frees itself once every connection and request object
 *                        it created is gone (`live` counts them).
 *   struct hc_conn       one socket. Owned by the client. Its memory lives until
 *                        every libuv handle/request it started has called back
 *                        (`refs`: socket handle, timer handle, a pending
 *                        getaddrinfo), so a callback running on a conn that is
 *                        closing always finds valid memory and a CLOSING state.
 *   struct http_req      one request. The caller's handle until on_complete or
 *                        on_upgrade returns; internally alive until its timer
 *                        handle closed and no write of its bytes is pending
 *                        (`refs`).
 *   socket handle        a malloc'ed union of uv_tcp_t/uv_pipe_t, so that an
 *                        upgrade can hand it to the callee, who frees it.
 *   read buffer          HC_READ_BUF bytes, malloc'ed when bytes arrive and freed
 *                        at the end of the read callback when the connection is
 *                        idle (no request), so an idle pooled conn holds none.
 *
 * Connection life (hc_conn.state):
 *
 *   CONNECTING --connected, write request--> BUSY --headers (stream)--> STREAMING
 *                                             |  <-----------------------'
 *                                             v  response complete, keep-alive
 *        (idle_close_ms) CLOSING <-- IDLE <---+
 *   any failure, Connection: close, cancel, client close --> CLOSING
 *   101 on an upgrade request: the socket is handed over, the rest --> CLOSING
 *
 * A request is bound to a connection when one is free (or when a new one is
 * opened for it) and stays bound until it completes; a connection that fails
 * fails its request, and a request that fails closes its connection.
 *
 * Re-entrancy: user callbacks may call any function of this module. Memory is
 * only freed from libuv close callbacks (never synchronously), every path
 * re-checks `req->done` / `conn->state == HC_CLOSING` after a user callback,
 * and requests queued from inside a callback are dispatched only once the
 * callback returned (`cb_depth`), so a connection whose response is being
 * delivered is never reused (and its headers reset) under the caller's feet.
 * Failures detected while a request is being submitted are reported from a
 * zero-delay timer, never from inside http_request().
 *
 * Retry: a GET or HEAD sent on a reused keep-alive connection that the server
 * closed before sending a single byte (it timed the idle connection out) is
 * sent again once on a fresh connection.
 */
#include "core/http_client.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "core/log.h"

#ifndef TETHER_VERSION
#define TETHER_VERSION "dev"
#endif

#define HC_DEFAULT_MAX_CONNS 4u
#define HC_DEFAULT_IDLE_CLOSE_MS 30000u
#define HC_DEFAULT_MAX_HEADER (64u * 1024u)
#define HC_DEFAULT_KEEPALIVE_S 30u
#define HC_DEFAULT_MAX_BODY (4u * 1024u * 1024u)
#define HC_READ_BUF (64u * 1024u)

#define HC_CONTAINER_OF(ptr, type, field) ((type *)((char *)(ptr) - offsetof(type, field)))

enum hc_conn_state {
    HC_CONNECTING = 0, /* resolving or connecting; a request is bound */
    HC_IDLE,           /* in the pool, reading only to notice a close */
    HC_BUSY,           /* request sent or being sent, waiting for/reading the response */
    HC_STREAMING,      /* streamed request whose headers arrived */
    HC_CLOSING         /* handles closing; memory goes when they have */
};

union hc_sock {
    uv_handle_t handle;  /* common header */
    uv_stream_t stream;  /* for read/write */
    uv_tcp_t tcp;        /* HTTP_EP_TCP */
    uv_pipe_t pipe;      /* HTTP_EP_UNIX */
};

struct hc_conn {
    struct http_client *client;     /* owner */
    struct hc_conn *prev, *next;    /* client->conns (open connections only) */
    enum hc_conn_state state;       /* see the diagram */
    union hc_sock *sock;            /* malloc'ed socket handle; NULL once handed to on_upgrade */
    uv_timer_t timer;               /* IDLE: idle_close_ms; BUSY/STREAMING: request idle timeout */
    uv_connect_t connect_req;       /* pending connect */
    uv_getaddrinfo_t gai;           /* pending name lookup (TCP host names only) */
    int resolving;                  /* gai is in flight */
    struct http_req *req;           /* the request bound to this connection, or NULL */
    struct http_resp_parser parser; /* response parser; reset per request */
    char *rbuf;                     /* read buffer (HC_READ_BUF) or NULL */
    unsigned refs;                  /* open handles + pending lookup; freed at 0 */
    unsigned served;                /* responses completed on this connection */
    uint64_t created_ms;            /* uv_now() at creation */
};

/* One uv_write of a request; separate so a retried request can write again
 * while the cancelled write on its old connection has not called back yet. */
struct hc_write {
    uv_write_t w;                   /* libuv request; w.data unused */
    struct http_req *req;           /* holds a reference */
    struct hc_conn *conn;           /* compared only (never dereferenced) to spot stale writes */
};

struct http_req {
    struct http_client *client;     /* owner */
    struct http_req *qprev, *qnext; /* client->queue while waiting for a connection */
    struct http_req *aprev, *anext; /* client->reqs while not completed */
    struct hc_conn *conn;           /* bound connection or NULL */
    uv_timer_t timer;               /* deadline, or a deferred failure (pending_err) */
    char *method;                   /* copy, for diagnostics */
    char *path;                     /* copy, for diagnostics */
    char *wire;                     /* the serialized request (head + body) */
    size_t wire_len;                /* bytes in wire */
    char *body;                     /* buffered response body (NUL-terminated), or NULL */
    size_t body_len;                /* bytes in body */
    size_t body_cap;                /* bytes allocated for body */
    size_t max_body;                /* buffered-mode limit */
    uint64_t timeout_ms;            /* see http_req_opts */
    uint64_t idle_timeout_ms;       /* see http_req_opts */
    int stream;                     /* streamed mode */
    int upgrade;                    /* upgraded mode */
    int is_head;                    /* HEAD: no response body */
    int retryable;                  /* GET/HEAD: may be resent once after a stale keep-alive */
    int retried;                    /* was resent already */
    int queued;                     /* linked in client->queue */
    int done;                       /* completed: callbacks ran or are running */
    int pending_err;                /* failure to report from the timer, 0 none */
    unsigned writing;               /* writes of this request not called back yet */
    unsigned refs;                  /* 1 until the timer is closed + 1 per pending write */
    http_headers_cb on_headers;     /* from opts */
    http_body_cb on_body;           /* from opts */
    http_complete_cb on_complete;   /* from opts */
    http_upgrade_cb on_upgrade;     /* from opts */
    void *data;                     /* from opts */
};

struct http_client {
    uv_loop_t *loop;                /* not owned */
    struct http_endpoint ep;        /* copy */
    unsigned max_conns;             /* connection limit (option or default) */
    uint64_t idle_close_ms;         /* pool idle close (option or default) */
    size_t max_header_bytes;        /* per response (option or default) */
    unsigned keepalive_s;           /* TCP keep-alive idle seconds (option or default) */
    char host_hdr[300];             /* value of the Host header */
    struct hc_conn *conns;          /* open (not closing) connections */
    unsigned nconns;                /* entries in conns */
    struct http_req *qhead, *qtail; /* requests waiting for a connection, FIFO */
    unsigned nqueued;               /* entries in the queue */
    struct http_req *reqs;          /* every request not completed yet */
    unsigned nreqs;                 /* entries in reqs */
    unsigned live;                  /* conn + req objects not freed yet */
    unsigned cb_depth;              /* user callbacks running (dispatch waits for 0) */
    int closing;                    /* http_client_close was called */
    uint64_t reqs_total;            /* requests accepted (http_client_info) */
    uint64_t errors_total;          /* requests completed with an error */
    uint64_t connects_total;        /* connections opened */
};

static void client_dispatch(struct http_client *c);
static void conn_close(struct hc_conn *conn);
static void req_fail(struct http_req *req, int err);

/* ---------------------------------------------------------------- endpoints */

static int hc_host_char_ok(char ch, int v6)
{
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
        return 1;
    if (ch == '.' || ch == '-' || ch == '_')
        return 1;
    return v6 && (ch == ':' || ch == '%');
}

static int hc_path_ok(const char *p)
{
    if (p[0] != '/')
        return 0;
    for (; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return 0;
    return 1;
}

int http_endpoint_parse(const char *url, struct http_endpoint *ep, char *path_out, size_t path_cap)
{
    if (!url || !ep)
        return -EINVAL;
    struct http_endpoint e;
    memset(&e, 0, sizeof e);
    const char *path = "/";
    if (strncmp(url, "unix://", 7) == 0 || url[0] == '/') {
        const char *sp = url[0] == '/' ? url : url + 7;
        size_t n = strlen(sp);
        if (sp[0] != '/' || n >= sizeof e.path)
            return -EINVAL;
        e.kind = HTTP_EP_UNIX;
        memcpy(e.path, sp, n + 1);
    } else {
        const char *hp = url;
        unsigned default_port = 0;
        if (strncasecmp(url, "http://", 7) == 0) {
            hp += 7;
            default_port = 80;
        } else if (strncasecmp(url, "tcp://", 6) == 0) {
            hp += 6;
        } else if (strstr(url, "://")) {
            return -EINVAL; /* https and friends: no TLS here */
        }
        size_t alen = strcspn(hp, "/?#");
        if (hp[alen] == '/')
            path = hp + alen;
        else if (hp[alen] != '\0')
            return -EINVAL;
        if (!hc_path_ok(path))
            return -EINVAL;
        const char *host = hp, *host_end, *port_s = NULL;
        const char *aend = hp + alen;
        int v6 = 0;
        if (alen > 0 && hp[0] == '[') {
            host = hp + 1;
            host_end = memchr(host, ']', (size_t)(aend - host));
            if (!host_end)
                return -EINVAL;
            if (host_end + 1 < aend) {
                if (host_end[1] != ':')
                    return -EINVAL;
                port_s = host_end + 2;
            }
            v6 = 1;
        } else {
            const char *colon = memchr(hp, ':', alen);
            if (colon && memchr(colon + 1, ':', (size_t)(aend - colon - 1)))
                return -EINVAL; /* bare IPv6 needs brackets */
            host_end = colon ? colon : aend;
            if (colon)
                port_s = colon + 1;
        }
        size_t hlen = (size_t)(host_end - host);
        if (hlen == 0 || hlen >= sizeof e.host)
            return -EINVAL;
        for (size_t i = 0; i < hlen; i++)
            if (!hc_host_char_ok(host[i], v6))
                return -EINVAL;
        unsigned long port = default_port;
        if (port_s) {
            size_t plen = (size_t)(aend - port_s);
            if (plen == 0 || plen > 5)
                return -EINVAL;
            port = 0;
            for (size_t i = 0; i < plen; i++) {
                if (port_s[i] < '0' || port_s[i] > '9')
                    return -EINVAL;
                port = port * 10 + (unsigned long)(port_s[i] - '0');
            }
        }
        if (port == 0 || port > 65535)
            return -EINVAL;
        e.kind = HTTP_EP_TCP;
        memcpy(e.host, host, hlen);
        e.host[hlen] = '\0';
        e.port = (uint16_t)port;
    }
    if (path_out) {
        size_t n = strlen(path);
        if (n >= path_cap)
            return -EINVAL;
        memcpy(path_out, path, n + 1);
    }
    *ep = e;
    return 0;
}

void http_endpoint_str(const struct http_endpoint *ep, char *buf, size_t cap)
{
    if (cap == 0)
        return;
    if (ep->kind == HTTP_EP_UNIX)
        snprintf(buf, cap, "unix://%s", ep->path);
    else if (strchr(ep->host, ':'))
        snprintf(buf, cap, "[%s]:%u", ep->host, (unsigned)ep->port);
    else
        snprintf(buf, cap, "%s:%u", ep->host, (unsigned)ep->port);
}

const char *http_response_header(const struct http_response *r, const char *name)
{
    if (!r || !name)
        return NULL;
    for (size_t i = 0; i < r->nheaders; i++)
        if (strcasecmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}

/* ---------------------------------------------------------------- lifetime */

static void client_maybe_free(struct http_client *c)
{
    if (c->closing && c->live == 0)
        free(c);
}

static void req_unref(struct http_req *req)
{
    if (--req->refs > 0)
        return;
    struct http_client *c = req->client;
    free(req->method);
    free(req->path);
    free(req->wire);
    free(req->body);
    free(req);
    c->live--;
    client_maybe_free(c);
}

static void req_timer_closed(uv_handle_t *h)
{
    req_unref(HC_CONTAINER_OF(h, struct http_req, timer));
}

static void conn_unref(struct hc_conn *conn)
{
    if (--conn->refs > 0)
        return;
    struct http_client *c = conn->client;
    http_resp_free(&conn->parser);
    free(conn->rbuf);
    free(conn);
    c->live--;
    client_maybe_free(c);
}

static void conn_sock_closed(uv_handle_t *h)
{
    struct hc_conn *conn = h->data;
    free(h); /* the union hc_sock */
    conn_unref(conn);
}

static void conn_timer_closed(uv_handle_t *h)
{
    conn_unref(h->data);
}

/* ---------------------------------------------------------------- requests */

static void queue_remove(struct http_client *c, struct http_req *req)
{
    if (!req->queued)
        return;
    if (req->qprev)
        req->qprev->qnext = req->qnext;
    else
        c->qhead = req->qnext;
    if (req->qnext)
        req->qnext->qprev = req->qprev;
    else
        c->qtail = req->qprev;
    req->qprev = req->qnext = NULL;
    req->queued = 0;
    c->nqueued--;
}

static void queue_push(struct http_client *c, struct http_req *req, int at_head)
{
    req->queued = 1;
    c->nqueued++;
    if (at_head) {
        req->qprev = NULL;
        req->qnext = c->qhead;
        if (c->qhead)
            c->qhead->qprev = req;
        else
            c->qtail = req;
        c->qhead = req;
    } else {
        req->qnext = NULL;
        req->qprev = c->qtail;
        if (c->qtail)
            c->qtail->qnext = req;
        else
            c->qhead = req;
        c->qtail = req;
    }
}

static void req_detach(struct http_req *req)
{
    if (req->conn) {
        req->conn->req = NULL;
        req->conn = NULL;
    }
}

/* Fills a response view from a parser that has seen the headers. */
static const struct http_response *resp_view(const struct http_resp_parser *p, struct http_response *out)
{
    if (p->state == HTTP_RESP_HEAD || (p->state == HTTP_RESP_ERROR && p->status == 0))
        return NULL;
    out->status = p->status;
    out->nheaders = p->nheaders;
    out->headers = p->headers;
    out->body = NULL;
    out->body_len = 0;
    return out;
}

/*
 * Marks the request completed and runs its last callback: on_upgrade when
 * `stream` is given, else on_complete. The caller has detached the request
 * from its connection. The memory goes when the timer has closed.
 */
static void req_finish(struct http_req *req, int err, const struct http_response *resp, uv_stream_t *stream,
                       const char *rest, size_t rest_len)
{
    struct http_client *c = req->client;
    req->done = 1;
    queue_remove(c, req);
    req_detach(req);
    if (req->aprev)
        req->aprev->anext = req->anext;
    else
        c->reqs = req->anext;
    if (req->anext)
        req->anext->aprev = req->aprev;
    req->aprev = req->anext = NULL;
    c->nreqs--;
    if (err)
        c->errors_total++;
    uv_timer_stop(&req->timer);
    c->cb_depth++;
    if (stream)
        req->on_upgrade(req, stream, resp, rest, rest_len, req->data);
    else
        req->on_complete(req, err, resp, req->data);
    c->cb_depth--;
    free(req->body);
    req->body = NULL;
    uv_close((uv_handle_t *)&req->timer, req_timer_closed);
}

/*
 * Fails a request now: closes its connection (its framing is lost), passes
 * the headers when they had arrived, runs on_complete. No-op when done.
 */
static void req_fail(struct http_req *req, int err)
{
    if (req->done)
        return;
    struct http_response rv;
    const struct http_response *resp = NULL;
    struct hc_conn *conn = req->conn;
    if (conn) {
        resp = resp_view(&conn->parser, &rv);
        req_detach(req);
        conn_close(conn);
    }
    if (err != -ECANCELED)
        log_debug("http %s %s failed: %s", req->method, req->path, uv_strerror(err));
    req_finish(req, err, resp, NULL, NULL, 0);
}

static void req_on_timer(uv_timer_t *t)
{
    struct http_req *req = HC_CONTAINER_OF(t, struct http_req, timer);
    struct http_client *c = req->client;
    req_fail(req, req->pending_err ? req->pending_err : -ETIMEDOUT);
    client_dispatch(c);
}

/* Fails a request from a zero-delay timer: used where a callback must not run
 * synchronously (inside http_request). */
static void req_fail_soon(struct http_req *req, int err)
{
    struct hc_conn *conn = req->conn;
    if (conn) {
        req_detach(req);
        conn_close(conn);
    }
    queue_remove(req->client, req);
    req->pending_err = err;
    uv_timer_start(&req->timer, req_on_timer, 0, 0);
}

/* ---------------------------------------------------------------- connections */

static void conn_on_timer(uv_timer_t *t)
{
    struct hc_conn *conn = t->data;
    struct http_client *c = conn->client;
    if (conn->req)
        req_fail(conn->req, -ETIMEDOUT); /* idle_timeout_ms while busy */
    else
        conn_close(conn); /* idle_close_ms in the pool */
    client_dispatch(c);
}

static void conn_close(struct hc_conn *conn)
{
    if (conn->state == HC_CLOSING)
        return;
    struct http_client *c = conn->client;
    conn->state = HC_CLOSING;
    if (conn->prev)
        conn->prev->next = conn->next;
    else
        c->conns = conn->next;
    if (conn->next)
        conn->next->prev = conn->prev;
    conn->prev = conn->next = NULL;
    c->nconns--;
    if (conn->req) { /* callers detach first; never leave a request dangling */
        struct http_req *req = conn->req;
        req_detach(req);
        req_fail_soon(req, -ECONNRESET);
    }
    if (conn->resolving)
        uv_cancel((uv_req_t *)&conn->gai);
    if (conn->sock)
        uv_close(&conn->sock->handle, conn_sock_closed);
    uv_close((uv_handle_t *)&conn->timer, conn_timer_closed);
}

static void conn_set_idle(struct hc_conn *conn)
{
    conn->state = HC_IDLE;
    http_resp_reset(&conn->parser, 0);
    uv_timer_start(&conn->timer, conn_on_timer, conn->client->idle_close_ms, 0);
}

static void req_retry(struct http_req *req)
{
    struct http_client *c = req->client;
    struct hc_conn *conn = req->conn;
    log_debug("http %s %s: kept-alive connection was closed by the server, retrying", req->method,
              req->path);
    req_detach(req);
    conn_close(conn);
    req->retried = 1;
    queue_push(c, req, 1);
}

/* Read/write error or early EOF on a connection. */
static void conn_on_io_error(struct hc_conn *conn, int err)
{
    struct http_req *req = conn->req;
    if (!req) {
        conn_close(conn);
        return;
    }
    if (conn->served > 0 && conn->parser.bytes_total == 0 && req->retryable && !req->retried &&
        !conn->client->closing) {
        req_retry(req);
        return;
    }
    req_fail(req, err);
}

static void req_on_write(uv_write_t *w, int status)
{
    struct hc_write *wr = HC_CONTAINER_OF(w, struct hc_write, w);
    struct http_req *req = wr->req;
    struct http_client *c = req->client;
    req->writing--;
    if (status < 0 && !req->done && req->conn == wr->conn) {
        struct hc_conn *conn = req->conn;
        if (conn->parser.bytes_total > 0)
            log_debug("http %s %s: write failed (%s) after the response began; reading on",
                      req->method, req->path, uv_strerror(status));
        else
            conn_on_io_error(conn, status);
    }
    free(wr);
    client_dispatch(c); /* before the unref: it may free the client */
    req_unref(req);
}

/* Sends the bound request on a connected connection. */
static void conn_send(struct hc_conn *conn, struct http_req *req)
{
    conn->req = req;
    req->conn = conn;
    conn->state = HC_BUSY;
    uv_timer_stop(&conn->timer);
    http_resp_reset(&conn->parser, req->is_head);
    struct hc_write *wr = malloc(sizeof *wr);
    if (!wr) {
        req_fail_soon(req, -ENOMEM);
        return;
    }
    wr->req = req;
    wr->conn = conn;
    uv_buf_t b = uv_buf_init(req->wire, (unsigned)req->wire_len);
    int r = uv_write(&wr->w, &conn->sock->stream, &b, 1, req_on_write);
    if (r < 0) {
        free(wr);
        req_fail_soon(req, r);
        return;
    }
    req->refs++;
    req->writing++;
    if (req->idle_timeout_ms)
        uv_timer_start(&conn->timer, conn_on_timer, req->idle_timeout_ms, 0);
}

static void conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct hc_conn *conn = h->data;
    if (!conn->rbuf)
        conn->rbuf = malloc(HC_READ_BUF);
    *buf = uv_buf_init(conn->rbuf, conn->rbuf ? HC_READ_BUF : 0);
}

/* Body sink for the parser: streams to on_body or collects up to max_body. */
static int conn_on_body(void *arg, const char *buf, size_t len)
{
    struct hc_conn *conn = arg;
    struct http_req *req = conn->req;
    if (!req || req->done || conn->state == HC_CLOSING)
        return -ECANCELED;
    if (req->stream) {
        if (req->on_body) {
            conn->client->cb_depth++;
            req->on_body(req, buf, len, req->data);
            conn->client->cb_depth--;
        }
        return (req->done || conn->state == HC_CLOSING) ? -ECANCELED : 0;
    }
    if (len > req->max_body - req->body_len)
        return -EMSGSIZE;
    if (req->body_cap - req->body_len < len + 1) {
        size_t cap = req->body_cap ? req->body_cap : 4096;
        while (cap - req->body_len < len + 1)
            cap *= 2;
        if (cap > req->max_body + 1)
            cap = req->max_body + 1;
        char *n = realloc(req->body, cap);
        if (!n)
            return -ENOMEM;
        req->body = n;
        req->body_cap = cap;
    }
    memcpy(req->body + req->body_len, buf, len);
    req->body_len += len;
    req->body[req->body_len] = '\0';
    return 0;
}

static void conn_on_headers(struct hc_conn *conn, struct http_req *req)
{
    if (req->stream || (req->upgrade && conn->parser.status == 101))
        uv_timer_stop(&req->timer); /* the deadline covered connect + headers */
    if (req->stream)
        conn->state = HC_STREAMING;
    if (req->on_headers) {
        struct http_response rv;
        const struct http_response *resp = resp_view(&conn->parser, &rv);
        conn->client->cb_depth++;
        req->on_headers(req, resp, req->data);
        conn->client->cb_depth--;
    }
}

static void conn_on_done(struct hc_conn *conn, struct http_req *req, size_t leftover)
{
    struct http_client *c = conn->client;
    /* reuse only a connection whose exchange is fully over on both sides */
    int keep = conn->parser.keep_alive && leftover == 0 && !req->writing && !c->closing;
    if (leftover)
        log_debug("http %s %s: %zu unexpected bytes after the response", req->method, req->path, leftover);
    conn->served++;
    struct http_response rv;
    const struct http_response *resp = resp_view(&conn->parser, &rv);
    if (resp && !req->stream) {
        rv.body = req->body ? req->body : "";
        rv.body_len = req->body_len;
    }
    uv_timer_stop(&conn->timer);
    req_detach(req); /* conn stays BUSY: not reused while the response is delivered */
    req_finish(req, 0, resp, NULL, NULL, 0);
    if (conn->state == HC_CLOSING)
        return;
    if (keep)
        conn_set_idle(conn);
    else
        conn_close(conn);
}

static void conn_on_upgraded(struct hc_conn *conn, struct http_req *req, const char *rest, size_t rest_len)
{
    if (!req->upgrade || conn->parser.status != 101) {
        req_fail(req, -EPROTO);
        return;
    }
    uv_stream_t *stream = &conn->sock->stream;
    uv_read_stop(stream);
    stream->data = NULL;
    conn->sock = NULL; /* the callee owns it now; its close callback is not ours */
    conn->refs--;
    conn->served++;
    struct http_response rv;
    const struct http_response *resp = resp_view(&conn->parser, &rv);
    req_detach(req);
    conn_close(conn); /* closes the timer; parser and rbuf (`rest`) live until then */
    req_finish(req, 0, resp, stream, rest, rest_len);
}

/* Feeds received bytes to the parser and acts on each state change. */
static void conn_process(struct hc_conn *conn, struct http_req *req, const char *data, size_t len)
{
    size_t off = 0;
    while (off < len) {
        enum http_resp_state before = conn->parser.state;
        ssize_t n = http_resp_feed(&conn->parser, data + off, len - off);
        if (req->done || conn->state == HC_CLOSING)
            return; /* on_body cancelled or closed */
        if (n < 0) {
            req_fail(req, (int)n);
            return;
        }
        off += (size_t)n;
        enum http_resp_state now = conn->parser.state;
        if (before == HTTP_RESP_HEAD && now != HTTP_RESP_HEAD) {
            conn_on_headers(conn, req);
            if (req->done || conn->state == HC_CLOSING)
                return;
        }
        if (now == HTTP_RESP_DONE) {
            conn_on_done(conn, req, len - off);
            return;
        }
        if (now == HTTP_RESP_UPGRADED) {
            conn_on_upgraded(conn, req, data + off, len - off);
            return;
        }
        if (n == 0 && now == before) {
            req_fail(req, -EPROTO);
            return;
        }
    }
}

static void conn_on_eof(struct hc_conn *conn)
{
    struct http_req *req = conn->req;
    if (!req) {
        conn_close(conn); /* the server closed an idle connection */
        return;
    }
    int r = http_resp_feed_eof(&conn->parser);
    if (r == 0 && conn->parser.state == HTTP_RESP_DONE) {
        conn_on_done(conn, req, 0);
        return;
    }
    conn_on_io_error(conn, r < 0 ? r : -ECONNRESET);
}

static void conn_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct hc_conn *conn = s->data;
    struct http_client *c = conn->client;
    if (nread > 0) {
        struct http_req *req = conn->req;
        if (!req) {
            log_debug("http: %zd unexpected bytes on an idle connection", nread);
            conn_close(conn);
        } else {
            if (req->idle_timeout_ms)
                uv_timer_start(&conn->timer, conn_on_timer, req->idle_timeout_ms, 0);
            conn_process(conn, req, buf->base, (size_t)nread);
        }
    } else if (nread == UV_EOF) {
        conn_on_eof(conn);
    } else if (nread == UV_ENOBUFS) {
        if (conn->req)
            req_fail(conn->req, -ENOMEM);
        else
            conn_close(conn);
    } else if (nread < 0) {
        conn_on_io_error(conn, (int)nread);
    }
    if (conn->state != HC_BUSY && conn->state != HC_STREAMING) {
        free(conn->rbuf); /* idle or closing: hold no buffer */
        conn->rbuf = NULL;
    }
    client_dispatch(c);
}

static void conn_tune_tcp(struct hc_conn *conn)
{
    struct http_client *c = conn->client;
    uv_tcp_t *tcp = &conn->sock->tcp;
    int r = uv_tcp_nodelay(tcp, 1);
    if (r == 0)
        r = uv_tcp_keepalive(tcp, 1, c->keepalive_s);
    uv_os_fd_t fd;
    if (r == 0 && uv_fileno((uv_handle_t *)tcp, &fd) == 0) {
        /* probes every idle/3 s, 3 of them; unacked data fails after the same time */
        int intvl = (int)(c->keepalive_s / 3 ? c->keepalive_s / 3 : 1), cnt = 3;
        unsigned user_timeout = (c->keepalive_s + (unsigned)(intvl * cnt)) * 1000u;
        if (setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl) < 0 ||
            setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt) < 0 ||
            setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof user_timeout) < 0)
            r = -errno;
    }
    if (r < 0)
        log_debug("http: tuning TCP socket failed: %s", uv_strerror(r));
}

static void conn_on_connect(uv_connect_t *cr, int status)
{
    struct hc_conn *conn = cr->data;
    struct http_client *c = conn->client;
    if (conn->state == HC_CLOSING)
        return; /* handle closed while connecting: status is UV_ECANCELED */
    struct http_req *req = conn->req;
    if (status < 0) {
        if (req)
            req_fail(req, status);
        else
            conn_close(conn);
        client_dispatch(c);
        return;
    }
    if (c->ep.kind == HTTP_EP_TCP)
        conn_tune_tcp(conn);
    int r = uv_read_start(&conn->sock->stream, conn_alloc, conn_on_read);
    if (r < 0) {
        if (req)
            req_fail(req, r);
        else
            conn_close(conn);
    } else if (req) {
        conn_send(conn, req);
    } else {
        conn_set_idle(conn);
    }
    client_dispatch(c);
}

static void conn_on_resolved(uv_getaddrinfo_t *gai, int status, struct addrinfo *res)
{
    struct hc_conn *conn = gai->data;
    struct http_client *c = conn->client;
    conn->resolving = 0;
    if (conn->state == HC_CLOSING) {
        uv_freeaddrinfo(res);
        conn_unref(conn);
        return;
    }
    int r = status;
    if (r < 0) {
        log_debug("http: resolving %s failed: %s", c->ep.host, uv_strerror(r));
        r = r == UV_EAI_CANCELED ? -ECANCELED : -EHOSTUNREACH;
    } else if (!res) {
        r = -EHOSTUNREACH;
    } else {
        conn->connect_req.data = conn;
        r = uv_tcp_connect(&conn->connect_req, &conn->sock->tcp, res->ai_addr, conn_on_connect);
    }
    uv_freeaddrinfo(res);
    if (r < 0) {
        if (conn->req)
            req_fail(conn->req, r);
        else
            conn_close(conn);
    }
    client_dispatch(c);
    conn_unref(conn); /* the lookup's reference; the handles hold theirs */
}

/* Starts connecting. 0 or a negative errno (nothing reported via callbacks then). */
static int conn_connect(struct hc_conn *conn)
{
    struct http_client *c = conn->client;
    conn->connect_req.data = conn;
    if (c->ep.kind == HTTP_EP_UNIX) {
        uv_pipe_connect(&conn->connect_req, &conn->sock->pipe, c->ep.path, conn_on_connect);
        return 0;
    }
    struct sockaddr_storage ss;
    if (uv_ip4_addr(c->ep.host, c->ep.port, (struct sockaddr_in *)&ss) == 0 ||
        uv_ip6_addr(c->ep.host, c->ep.port, (struct sockaddr_in6 *)&ss) == 0)
        return uv_tcp_connect(&conn->connect_req, &conn->sock->tcp, (const struct sockaddr *)&ss,
                              conn_on_connect);
    char port[8];
    snprintf(port, sizeof port, "%u", (unsigned)c->ep.port);
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    conn->gai.data = conn;
    int r = uv_getaddrinfo(c->loop, &conn->gai, conn_on_resolved, c->ep.host, port, &hints);
    if (r < 0)
        return r;
    conn->resolving = 1;
    conn->refs++;
    return 0;
}

static struct hc_conn *conn_new(struct http_client *c)
{
    struct hc_conn *conn = calloc(1, sizeof *conn);
    union hc_sock *sock = malloc(sizeof *sock);
    if (!conn || !sock) {
        free(conn);
        free(sock);
        return NULL;
    }
    int r = c->ep.kind == HTTP_EP_UNIX ? uv_pipe_init(c->loop, &sock->pipe, 0) : uv_tcp_init(c->loop, &sock->tcp);
    if (r < 0) {
        free(conn);
        free(sock);
        return NULL;
    }
    conn->client = c;
    conn->sock = sock;
    sock->handle.data = conn;
    uv_timer_init(c->loop, &conn->timer);
    conn->timer.data = conn;
    conn->refs = 2;
    http_resp_init(&conn->parser, c->max_header_bytes, conn_on_body, conn);
    conn->state = HC_CONNECTING;
    conn->created_ms = uv_now(c->loop);
    conn->next = c->conns;
    if (c->conns)
        c->conns->prev = conn;
    c->conns = conn;
    c->nconns++;
    c->live++;
    c->connects_total++;
    return conn;
}

/* Gives queued requests to idle connections or new ones, within max_conns. */
static void client_dispatch(struct http_client *c)
{
    if (c->closing || c->cb_depth > 0)
        return;
    while (c->qhead) {
        struct hc_conn *conn = c->conns;
        while (conn && conn->state != HC_IDLE)
            conn = conn->next;
        struct http_req *req = c->qhead;
        if (conn) {
            queue_remove(c, req);
            conn_send(conn, req);
            continue;
        }
        if (c->nconns >= c->max_conns)
            break;
        queue_remove(c, req);
        conn = conn_new(c);
        if (!conn) {
            req_fail_soon(req, -ENOMEM);
            continue;
        }
        conn->req = req;
        req->conn = conn;
        int r = conn_connect(conn);
        if (r < 0)
            req_fail_soon(req, r);
    }
}

/* ---------------------------------------------------------------- public API */

struct http_client *http_client_new(uv_loop_t *loop, const struct http_endpoint *ep,
                                    const struct http_client_opts *opts)
{
    if (!loop || !ep || (ep->kind != HTTP_EP_UNIX && ep->kind != HTTP_EP_TCP))
        return NULL;
    struct http_client *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->loop = loop;
    c->ep = *ep;
    c->ep.path[sizeof c->ep.path - 1] = '\0';
    c->ep.host[sizeof c->ep.host - 1] = '\0';
    c->max_conns = opts && opts->max_conns ? opts->max_conns : HC_DEFAULT_MAX_CONNS;
    c->idle_close_ms = opts && opts->idle_close_ms ? opts->idle_close_ms : HC_DEFAULT_IDLE_CLOSE_MS;
    c->max_header_bytes = opts && opts->max_header_bytes ? opts->max_header_bytes : HC_DEFAULT_MAX_HEADER;
    c->keepalive_s = opts && opts->keepalive_s ? opts->keepalive_s : HC_DEFAULT_KEEPALIVE_S;
    if (ep->kind == HTTP_EP_UNIX)
        snprintf(c->host_hdr, sizeof c->host_hdr, "localhost");
    else if (strchr(c->ep.host, ':'))
        snprintf(c->host_hdr, sizeof c->host_hdr, "[%s]:%u", c->ep.host, (unsigned)c->ep.port);
    else if (c->ep.port == 80)
        snprintf(c->host_hdr, sizeof c->host_hdr, "%s", c->ep.host);
    else
        snprintf(c->host_hdr, sizeof c->host_hdr, "%s:%u", c->ep.host, (unsigned)c->ep.port);
    return c;
}

void http_client_close(struct http_client *c)
{
    if (!c || c->closing)
        return;
    c->closing = 1;
    while (c->reqs)
        req_fail(c->reqs, -ECANCELED);
    while (c->conns)
        conn_close(c->conns);
    client_maybe_free(c);
}

/* A growable byte string for the request head. */
struct hc_str {
    char *p;       /* bytes (owned) */
    size_t len;    /* used */
    size_t cap;    /* allocated */
    int oom;       /* an append failed */
};

static void str_add(struct hc_str *s, const void *data, size_t len)
{
    if (s->oom)
        return;
    if (s->cap - s->len < len) {
        size_t cap = s->cap ? s->cap : 256;
        while (cap - s->len < len)
            cap *= 2;
        char *n = realloc(s->p, cap);
        if (!n) {
            s->oom = 1;
            return;
        }
        s->p = n;
        s->cap = cap;
    }
    memcpy(s->p + s->len, data, len);
    s->len += len;
}

static void str_adds(struct hc_str *s, const char *z)
{
    str_add(s, z, strlen(z));
}

static int hc_token_ok(const char *t, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)t[i];
        if (ch <= ' ' || ch >= 0x7f || strchr("()<>@,;:\\\"/[]?={}", ch))
            return 0;
    }
    return 1;
}

static int hc_header_is(const char *line, size_t name_len, const char *name)
{
    return strlen(name) == name_len && strncasecmp(line, name, name_len) == 0;
}

/* Serialises the request head and body into req->wire. 0, -EINVAL or -ENOMEM. */
static int req_build(struct http_req *req, const struct http_client *c, const struct http_req_opts *o)
{
    int user_host = 0, user_ua = 0, user_upgrade = 0;
    if (o->headers) {
        for (const char *const *h = o->headers; *h; h++) {
            const char *colon = strchr(*h, ':');
            if (!colon || !hc_token_ok(*h, (size_t)(colon - *h)) || strpbrk(*h, "\r\n"))
                return -EINVAL;
            size_t nl = (size_t)(colon - *h);
            if (hc_header_is(*h, nl, "content-length") || hc_header_is(*h, nl, "transfer-encoding"))
                return -EINVAL; /* the client frames the body itself */
            user_host |= hc_header_is(*h, nl, "host");
            user_ua |= hc_header_is(*h, nl, "user-agent");
            user_upgrade |= hc_header_is(*h, nl, "upgrade") || hc_header_is(*h, nl, "connection");
        }
    }
    struct hc_str s = { 0 };
    str_adds(&s, req->method);
    str_adds(&s, " ");
    str_adds(&s, req->path);
    str_adds(&s, " HTTP/1.1\r\n");
    if (!user_host) {
        str_adds(&s, "Host: ");
        str_adds(&s, c->host_hdr);
        str_adds(&s, "\r\n");
    }
    if (!user_ua)
        str_adds(&s, "User-Agent: tether/" TETHER_VERSION "\r\n");
    if (o->headers) {
        for (const char *const *h = o->headers; *h; h++) {
            str_adds(&s, *h);
            str_adds(&s, "\r\n");
        }
    }
    if (o->upgrade && !user_upgrade)
        str_adds(&s, "Connection: Upgrade\r\nUpgrade: tcp\r\n");
    if (o->body_len > 0 || !strcmp(req->method, "POST") || !strcmp(req->method, "PUT") ||
        !strcmp(req->method, "PATCH")) {
        char cl[48];
        snprintf(cl, sizeof cl, "Content-Length: %zu\r\n", o->body_len);
        str_adds(&s, cl);
    }
    str_adds(&s, "\r\n");
    if (o->body_len > 0)
        str_add(&s, o->body, o->body_len);
    if (s.oom || s.len > UINT32_MAX) {
        free(s.p);
        return -ENOMEM;
    }
    req->wire = s.p;
    req->wire_len = s.len;
    return 0;
}

struct http_req *http_request(struct http_client *c, const struct http_req_opts *o)
{
    if (!c || !o || c->closing || !o->path || !o->on_complete)
        return NULL;
    if ((o->upgrade && !o->on_upgrade) || (o->upgrade && o->stream) || (o->body_len && !o->body))
        return NULL;
    const char *method = o->method ? o->method : "GET";
    if (!hc_token_ok(method, strlen(method)) || !hc_path_ok(o->path))
        return NULL;
    struct http_req *req = calloc(1, sizeof *req);
    if (!req)
        return NULL;
    req->method = strdup(method);
    req->path = strdup(o->path);
    if (!req->method || !req->path || req_build(req, c, o) < 0) {
        free(req->method);
        free(req->path);
        free(req);
        return NULL;
    }
    req->client = c;
    req->max_body = o->max_body ? o->max_body : HC_DEFAULT_MAX_BODY;
    req->timeout_ms = o->timeout_ms;
    req->idle_timeout_ms = o->idle_timeout_ms;
    req->stream = o->stream ? 1 : 0;
    req->upgrade = o->upgrade ? 1 : 0;
    req->is_head = strcmp(method, "HEAD") == 0;
    req->retryable = req->is_head || strcmp(method, "GET") == 0;
    req->on_headers = o->on_headers;
    req->on_body = o->on_body;
    req->on_complete = o->on_complete;
    req->on_upgrade = o->on_upgrade;
    req->data = o->data;
    req->refs = 1;
    uv_timer_init(c->loop, &req->timer);
    c->live++;
    c->reqs_total++;
    req->anext = c->reqs;
    if (c->reqs)
        c->reqs->aprev = req;
    c->reqs = req;
    c->nreqs++;
    if (req->timeout_ms)
        uv_timer_start(&req->timer, req_on_timer, req->timeout_ms, 0);
    queue_push(c, req, 0);
    client_dispatch(c);
    return req;
}

void http_req_cancel(struct http_req *req)
{
    if (!req || req->done)
        return;
    struct http_client *c = req->client;
    req_fail(req, -ECANCELED);
    client_dispatch(c);
}

void http_client_info(const struct http_client *c, struct http_client_info *out)
{
    memset(out, 0, sizeof *out);
    for (const struct hc_conn *conn = c->conns; conn; conn = conn->next)
        if (conn->state == HC_IDLE)
            out->conns_idle++;
    out->conns_open = c->nconns;
    out->reqs_queued = c->nqueued;
    out->reqs_inflight = c->nreqs - c->nqueued;
    out->reqs_total = c->reqs_total;
    out->errors_total = c->errors_total;
    out->connects_total = c->connects_total;
}

static const char *conn_state_name(enum hc_conn_state s)
{
    switch (s) {
    case HC_CONNECTING: return "connecting";
    case HC_IDLE: return "idle";
    case HC_BUSY: return "busy";
    case HC_STREAMING: return "streaming";
    case HC_CLOSING: return "closing";
    }
    return "?";
}

void http_client_visit(const struct http_client *c, http_conn_visit_fn fn, void *arg)
{
    uint64_t now = uv_now(c->loop);
    for (const struct hc_conn *conn = c->conns; conn; conn = conn->next) {
        const struct http_req *req = conn->req;
        int64_t left = -1;
        if (req && uv_is_active((const uv_handle_t *)&req->timer))
            left = (int64_t)uv_timer_get_due_in(&req->timer);
        fn(arg, conn_state_name(conn->state), now - conn->created_ms, req ? req->method : NULL,
           req ? req->path : NULL, left);
    }
}
