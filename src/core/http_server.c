/*
 * http_server: see http_server.h for the contract.
 *
 * Structure: one struct http_server (listener, options, counters, the list of
 * open connections) and one struct http_conn per accepted socket, which embeds
 * everything a connection needs: the uv_tcp_t, one uv_timer_t (whose meaning
 * follows the state: request deadline, keep-alive idle, write stall, linger),
 * one uv_write_t (a connection has at most one write in flight), the request
 * parser and the http_sreq handed to the handler.
 *
 *   on_read --> rbuf --> conn_parse --hreq_feed--> conn_dispatch --> handler
 *                 ^                                                   |
 *                 |                             http_reply / http_reply_stream
 *                 |                                                   v
 *   reply_done <--+---- on_written <---- conn_write <---- head (+ body | fill())
 *
 * Lifetime: a connection is reference-counted. References: its tcp handle and
 * its timer handle (dropped in their close callbacks) and, from dispatch until
 * the handler's reply call, the unanswered request. The struct (and with it
 * the request data) is freed when the count drops to zero, so a handler that
 * replies after the client went away or after http_server_close still finds
 * its request; the reply is then discarded. The server is reference-counted
 * the same way: its listener plus every connection struct.
 *
 * Buffers: rbuf (16 KiB) exists only while unparsed input exists; wbuf holds
 * one reply head (plus the body for http_reply) until its write completes; a
 * streamed reply owns one 64 KiB buffer refilled after each completed write.
 */
#include "core/http_server.h"

#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <http_parser.h>

#include "core/http_request_parse.h"
#include "core/log.h"

#define HTTPS_RBUF_SIZE     (16u * 1024u)  /* per-connection read buffer */
#define HTTPS_STREAM_BUF    (64u * 1024u)  /* per streamed reply */
#define HTTPS_CHUNK_PREFIX  8u             /* room for "%zx\r\n" before the data */
#define HTTPS_CHUNK_SUFFIX  2u             /* "\r\n" after the data */
#define HTTPS_LINGER_MS     2000u          /* drain time after an error or close reply */
#define HTTPS_BACKLOG       511
#define HTTPS_KEEPALIVE_S   60u            /* TCP keep-alive probe delay */
#define HTTPS_MAX_REPLY     (1u << 30)     /* http_reply body limit (libuv lengths are unsigned int) */

enum conn_state {
    CONN_READING,  /* waiting for or receiving a request */
    CONN_HANDLING, /* the handler owns the request and has not replied yet */
    CONN_WRITING,  /* a reply is being written */
    CONN_LINGER,   /* final reply written, write side shut down, input drained */
    CONN_CLOSED,   /* handles closing or closed; struct kept only by references */
};

/* What the timer means when it fires (for logs and counters). */
enum conn_timer {
    TIMER_NONE,
    TIMER_REQUEST, /* header_timeout_ms: the request did not arrive in time */
    TIMER_IDLE,    /* idle_timeout_ms between keep-alive requests */
    TIMER_WRITE,   /* idle_timeout_ms: a write did not complete */
    TIMER_LINGER,  /* lingering close is over */
};

/* How a reply's body is delimited. */
enum body_kind {
    BODY_NONE,    /* no body and no length header (1xx, 204, 304) */
    BODY_LENGTH,  /* Content-Length */
    BODY_CHUNKED, /* Transfer-Encoding: chunked */
    BODY_CLOSE,   /* ends when the connection closes (HTTP/1.0 stream) */
};

/* A streamed reply in progress. */
struct http_stream {
    http_fill_fn fill;      /* producer */
    http_fill_done_fn done; /* producer's cleanup, called exactly once */
    void *state;            /* producer's state, passed to fill and done */
    char *buf;              /* HTTPS_STREAM_BUF bytes; NULL when no stream */
    bool chunked;           /* chunked framing (HTTP/1.1) rather than close-delimited */
    bool last_queued;       /* the final piece has been handed to uv_write */
    bool active;            /* done not called yet */
    bool in_fill;           /* fill is running: done waits until it returns */
};

/* The request as the handler sees it. */
struct http_sreq {
    struct hreq parse;      /* the parsed request; owns its storage */
    struct http_conn *conn; /* the connection it arrived on */
};

struct http_conn {
    uv_tcp_t tcp;              /* the socket; data = this */
    uv_timer_t timer;          /* see enum conn_timer; data = this */
    uv_write_t wreq;           /* the one write in flight; data = this */
    uv_shutdown_t sreq;        /* lingering close; data = this */
    struct http_server *srv;   /* owner (referenced until this struct is freed) */
    struct http_conn *prev;    /* in srv->conns while not CLOSED */
    struct http_conn *next;    /* idem */
    enum conn_state state;     /* see enum conn_state */
    enum conn_timer timer_kind;/* what the running timer means */
    unsigned refs;             /* tcp + timer handles + unanswered request */
    char *rbuf;                /* unparsed input (HTTPS_RBUF_SIZE), NULL when none */
    size_t rlen;               /* bytes in rbuf */
    bool reading;              /* uv_read_start is in effect */
    bool peer_eof;             /* the client shut down its sending side */
    bool keep_alive;           /* the connection stays open after the current reply */
    bool awaiting_reply;       /* the handler owes a reply for req */
    char *wbuf;                /* reply head (+ body) being written or waiting for the first piece */
    size_t wbuf_len;           /* bytes in wbuf */
    size_t wlen;               /* bytes of the write in flight (for write_pending) */
    struct http_stream stream; /* streamed reply, if any */
    struct http_sreq req;      /* the current request */
};

struct http_server {
    uv_loop_t *loop;               /* the loop everything runs on */
    uv_tcp_t *listener;            /* listening socket (malloc'd, freed in its close cb) */
    struct http_server_opts opts;  /* options with defaults applied */
    http_handler_fn handler;       /* request handler */
    void *data;                    /* handler's data */
    int port;                      /* bound port */
    struct http_conn *conns;       /* open (not CLOSED) connections */
    unsigned conns_open;           /* sockets open */
    unsigned refs;                 /* listener + connection structs */
    bool closing;                  /* http_server_close was called */
    uint64_t requests_total;       /* see struct http_server_info */
    uint64_t errors_total;         /* idem */
    uint64_t rejected_total;       /* idem */
    uint64_t write_pending;        /* idem (write_pending_bytes) */
    time_t date_sec;               /* second the cached Date was formatted for */
    char date[40];                 /* cached IMF-fixdate */
};

static void conn_close(struct http_conn *c, int err);
static void conn_parse(struct http_conn *c);
static void reply_done(struct http_conn *c);
static void stream_next(struct http_conn *c);

/* ---- reference counting ---- */

static void srv_unref(struct http_server *srv)
{
    if (--srv->refs == 0)
        free(srv);
}

static void conn_unref(struct http_conn *c)
{
    if (--c->refs > 0)
        return;
    struct http_server *srv = c->srv;
    hreq_free(&c->req.parse);
    free(c->rbuf);
    free(c->wbuf);
    free(c->stream.buf);
    free(c);
    srv_unref(srv);
}

static void on_handle_closed(uv_handle_t *h) { conn_unref(h->data); }

static void on_free_handle(uv_handle_t *h) { free(h); }

/* ---- small helpers ---- */

static void conn_timer(struct http_conn *c, enum conn_timer kind, uint64_t ms);

static void rbuf_release_if_empty(struct http_conn *c)
{
    if (c->rlen == 0 && c->rbuf) {
        free(c->rbuf);
        c->rbuf = NULL;
    }
}

static void conn_unlink(struct http_conn *c)
{
    struct http_server *srv = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

/*
 * Calls the producer's done once. Not while its fill is running (fill may
 * close the server): stream_next calls it again when fill has returned.
 */
static void stream_finish(struct http_conn *c)
{
    if (c->stream.active && !c->stream.in_fill) {
        c->stream.active = false;
        if (c->stream.done)
            c->stream.done(c->stream.state);
    }
}

static const char *srv_date(struct http_server *srv)
{
    time_t now = time(NULL);
    if (now != srv->date_sec || srv->date[0] == '\0') {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(srv->date, sizeof(srv->date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        srv->date_sec = now;
    }
    return srv->date;
}

static bool status_has_body(int status)
{
    return !(status < 200 || status == 204 || status == 304);
}

static const char *status_reason(int status)
{
    const char *r = http_status_str((enum http_status)status);
    return (r && r[0] != '<') ? r : "Unknown";
}

/*
 * Formats a reply head into a new buffer with `extra` spare bytes after it
 * (for a body copy). Returns the buffer (caller frees) and its head length.
 */
static char *head_build(struct http_conn *c, int status, const char *ctype, enum body_kind kind,
                        size_t clen, size_t extra, size_t *head_len)
{
    char len_hdr[64] = "";
    if (kind == BODY_LENGTH)
        snprintf(len_hdr, sizeof(len_hdr), "Content-Length: %zu\r\n", clen);
    else if (kind == BODY_CHUNKED)
        snprintf(len_hdr, sizeof(len_hdr), "Transfer-Encoding: chunked\r\n");
    const char *conn_hdr = "";
    if (!c->keep_alive)
        conn_hdr = "Connection: close\r\n";
    else if (c->req.parse.http_major == 1 && c->req.parse.http_minor == 0)
        conn_hdr = "Connection: keep-alive\r\n";
    bool with_ctype = ctype && ctype[0] && kind != BODY_NONE;
#define HEAD_FMT "HTTP/1.1 %d %s\r\nServer: tether\r\nDate: %s\r\n%s%s%s%s%s\r\n"
    const char *date = srv_date(c->srv);
    int n = snprintf(NULL, 0, HEAD_FMT, status, status_reason(status), date,
                     with_ctype ? "Content-Type: " : "", with_ctype ? ctype : "",
                     with_ctype ? "\r\n" : "", len_hdr, conn_hdr);
    if (n < 0)
        return NULL;
    char *buf = malloc((size_t)n + 1 + extra);
    if (!buf)
        return NULL;
    snprintf(buf, (size_t)n + 1, HEAD_FMT, status, status_reason(status), date,
             with_ctype ? "Content-Type: " : "", with_ctype ? ctype : "", with_ctype ? "\r\n" : "",
             len_hdr, conn_hdr);
#undef HEAD_FMT
    *head_len = (size_t)n;
    return buf;
}

/* ---- timers ---- */

static void on_timer(uv_timer_t *t)
{
    struct http_conn *c = t->data;
    struct http_server *srv = c->srv;
    switch (c->timer_kind) {
    case TIMER_REQUEST:
        log_debug("http_server: request not received within %llu ms, closing",
                  (unsigned long long)srv->opts.header_timeout_ms);
        srv->errors_total++;
        break;
    case TIMER_WRITE:
        log_debug("http_server: reply write stalled for %llu ms, closing",
                  (unsigned long long)srv->opts.idle_timeout_ms);
        srv->errors_total++;
        break;
    default:
        break;
    }
    c->timer_kind = TIMER_NONE;
    conn_close(c, 0);
}

static void conn_timer(struct http_conn *c, enum conn_timer kind, uint64_t ms)
{
    c->timer_kind = kind;
    uv_timer_start(&c->timer, on_timer, ms, 0);
}

static void conn_timer_stop(struct http_conn *c)
{
    c->timer_kind = TIMER_NONE;
    uv_timer_stop(&c->timer);
}

/* ---- closing ---- */

/* Closes the socket now; the struct lives on while references remain. */
static void conn_close(struct http_conn *c, int err)
{
    if (c->state == CONN_CLOSED)
        return;
    struct http_server *srv = c->srv;
    if (err < 0 && err != UV_EOF && err != UV_ECANCELED)
        log_debug("http_server: connection closed: %s", uv_strerror(err));
    c->state = CONN_CLOSED;
    conn_unlink(c);
    srv->conns_open--;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    /* A pending write is cancelled by uv_close and its buffers are freed in
     * on_written or conn_unref; the producer is done as of now. */
    stream_finish(c);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct http_conn *c = req->data;
    if (c->state != CONN_CLOSED && status < 0)
        conn_close(c, status);
}

static void read_start(struct http_conn *c);

/*
 * The final reply has been written: shut down our side and drain the
 * client's input for a while, so that unread input does not make the kernel
 * reset the connection before the client has read the reply.
 */
static void conn_close_gracefully(struct http_conn *c)
{
    if (c->peer_eof) {
        conn_close(c, 0);
        return;
    }
    c->state = CONN_LINGER;
    c->rlen = 0;
    rbuf_release_if_empty(c);
    c->sreq.data = c;
    int r = uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, on_shutdown);
    if (r < 0) {
        conn_close(c, r);
        return;
    }
    uint64_t ms = HTTPS_LINGER_MS;
    if (c->srv->opts.header_timeout_ms < ms)
        ms = c->srv->opts.header_timeout_ms;
    conn_timer(c, TIMER_LINGER, ms);
    read_start(c);
}

/* ---- writing ---- */

static void on_written(uv_write_t *w, int status)
{
    struct http_conn *c = w->data;
    c->srv->write_pending -= c->wlen;
    c->wlen = 0;
    free(c->wbuf);
    c->wbuf = NULL;
    c->wbuf_len = 0;
    if (c->state == CONN_CLOSED)
        return;
    if (status < 0) {
        c->srv->errors_total++;
        conn_close(c, status);
        return;
    }
    if (c->stream.buf && !c->stream.last_queued) {
        stream_next(c);
        return;
    }
    reply_done(c);
}

/* Queues bufs (which must stay valid until on_written) and arms the stall timer. */
static void conn_write(struct http_conn *c, uv_buf_t *bufs, unsigned nbufs)
{
    size_t total = 0;
    for (unsigned i = 0; i < nbufs; i++)
        total += bufs[i].len;
    c->state = CONN_WRITING;
    c->wreq.data = c;
    int r = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, bufs, nbufs, on_written);
    if (r < 0) {
        c->srv->errors_total++;
        conn_close(c, r);
        return;
    }
    c->wlen = total;
    c->srv->write_pending += total;
    conn_timer(c, TIMER_WRITE, c->srv->opts.idle_timeout_ms);
}

/* Sends a complete reply (head + copy of body) on a live connection. */
static void reply_full(struct http_conn *c, int status, const char *ctype, const char *body,
                       size_t len)
{
    bool send_body = status_has_body(status) && !hreq_is_head(&c->req.parse);
    enum body_kind kind = status_has_body(status) ? BODY_LENGTH : BODY_NONE;
    size_t hl;
    char *buf = head_build(c, status, ctype, kind, len, send_body ? len : 0, &hl);
    if (!buf) {
        log_error("http_server: out of memory for a %zu-byte reply", len);
        c->srv->errors_total++;
        conn_close(c, -ENOMEM);
        return;
    }
    if (send_body && len)
        memcpy(buf + hl, body, len);
    c->wbuf = buf;
    c->wbuf_len = hl + (send_body ? len : 0);
    uv_buf_t b = uv_buf_init(buf, (unsigned)c->wbuf_len);
    conn_write(c, &b, 1);
}

/* The server itself rejects the request: reply and close. */
static void reply_error(struct http_conn *c, int status)
{
    char body[64];
    int n = snprintf(body, sizeof(body), "%d %s\n", status, status_reason(status));
    c->keep_alive = false;
    c->srv->errors_total++;
    reply_full(c, status, "text/plain; charset=utf-8", body, (size_t)n);
}

/* ---- streaming ---- */

/* Produces and queues the next piece of a streamed reply (head first if unsent). */
static void stream_next(struct http_conn *c)
{
    struct http_stream *s = &c->stream;
    char *data = s->buf + HTTPS_CHUNK_PREFIX;
    size_t cap = HTTPS_STREAM_BUF - HTTPS_CHUNK_PREFIX - HTTPS_CHUNK_SUFFIX;
    bool head_unsent = c->wbuf != NULL;

    c->refs++; /* fill may close the server; keep c valid until we look at it */
    s->in_fill = true;
    long n = s->fill(data, cap, s->state);
    s->in_fill = false;
    if (c->state == CONN_CLOSED) {
        stream_finish(c); /* conn_close deferred it while fill ran */
        conn_unref(c);
        return;
    }
    conn_unref(c);

    if (n < 0 || (size_t)n > cap) {
        if (n > 0)
            log_error("http_server: fill returned %ld for a %zu-byte buffer", n, cap);
        stream_finish(c);
        free(s->buf);
        s->buf = NULL;
        if (head_unsent) {
            free(c->wbuf);
            c->wbuf = NULL;
            reply_error(c, 500);
        } else {
            c->srv->errors_total++;
            conn_close(c, n < 0 ? (int)n : -EINVAL);
        }
        return;
    }

    uv_buf_t bufs[2];
    unsigned nb = 0;
    if (head_unsent)
        bufs[nb++] = uv_buf_init(c->wbuf, (unsigned)c->wbuf_len);
    if (n == 0) {
        s->last_queued = true;
        stream_finish(c); /* the producer is not needed any more */
        if (c->state == CONN_CLOSED)
            return;
        if (s->chunked) {
            memcpy(s->buf, "0\r\n\r\n", 5);
            bufs[nb++] = uv_buf_init(s->buf, 5);
        }
        if (nb == 0) {
            reply_done(c); /* close-delimited body: closing ends it */
            return;
        }
    } else if (s->chunked) {
        char hex[HTTPS_CHUNK_PREFIX + 1];
        int hl = snprintf(hex, sizeof(hex), "%lx\r\n", (unsigned long)n);
        memcpy(data - hl, hex, (size_t)hl);
        data[n] = '\r';
        data[n + 1] = '\n';
        bufs[nb++] = uv_buf_init(data - hl, (unsigned)(hl + n + 2));
    } else {
        bufs[nb++] = uv_buf_init(data, (unsigned)n);
    }
    conn_write(c, bufs, nb);
}

/* ---- reading and dispatch ---- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct http_conn *c = h->data;
    if (!c->rbuf) {
        c->rbuf = malloc(HTTPS_RBUF_SIZE);
        c->rlen = 0;
    }
    if (!c->rbuf) {
        *buf = uv_buf_init(NULL, 0);
        return;
    }
    *buf = uv_buf_init(c->rbuf + c->rlen, (unsigned)(HTTPS_RBUF_SIZE - c->rlen));
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

static void read_start(struct http_conn *c)
{
    if (c->reading || c->peer_eof || c->state == CONN_CLOSED)
        return;
    int r = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (r < 0) {
        conn_close(c, r);
        return;
    }
    c->reading = true;
}

static void read_stop(struct http_conn *c)
{
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct http_conn *c = st->data;
    if (nread > 0) {
        if (c->state == CONN_LINGER || (c->state != CONN_READING && !c->keep_alive)) {
            c->rlen = 0; /* no further request will be served: discard */
        } else {
            c->rlen += (size_t)nread;
            if (c->state == CONN_READING)
                conn_parse(c);
            else if (c->rlen == HTTPS_RBUF_SIZE)
                read_stop(c); /* pipelined input waits; resume after the reply */
        }
    } else if (nread == UV_EOF) {
        c->peer_eof = true;
        read_stop(c);
        /* Mid-reply, the client may still read: finish the reply first. */
        if (c->state == CONN_READING || c->state == CONN_LINGER)
            conn_close(c, 0);
    } else if (nread == UV_ENOBUFS) {
        if (!c->rbuf) {
            log_error("http_server: out of memory for a read buffer");
            conn_close(c, -ENOMEM);
        } else {
            read_stop(c);
        }
    } else if (nread < 0) {
        conn_close(c, (int)nread);
    }
    if (c->state != CONN_CLOSED)
        rbuf_release_if_empty(c);
}

/* A request is complete: hand it to the handler. */
static void conn_dispatch(struct http_conn *c)
{
    struct http_server *srv = c->srv;
    conn_timer_stop(c);
    c->state = CONN_HANDLING;
    c->keep_alive = c->req.parse.keep_alive && !srv->closing;
    c->awaiting_reply = true;
    c->refs++; /* released by the reply call */
    srv->requests_total++;
    srv->handler(&c->req, srv->data);
}

/* Answers "Expect: 100-continue" once the head is in and the body is not. */
static void conn_continue(struct http_conn *c)
{
    const char *expect = hreq_header(&c->req.parse, "Expect");
    if (!expect || strcasecmp(expect, "100-continue") != 0 || c->req.parse.http_minor < 1)
        return;
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    uv_buf_t b = uv_buf_init((char *)cont, sizeof(cont) - 1);
    int r = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (r != (int)sizeof(cont) - 1 && r != UV_EAGAIN)
        conn_close(c, r < 0 ? r : -EIO); /* a partial interim reply would corrupt the stream */
}

static int http_status_for(int err)
{
    switch (err) {
    case -EMSGSIZE:
        return 431;
    case -EFBIG:
        return 413;
    case -ENOMEM:
        return 503;
    default:
        return 400;
    }
}

/* Feeds buffered input to the parser while the connection is READING. */
static void conn_parse(struct http_conn *c)
{
    while (c->state == CONN_READING && c->rlen > 0) {
        enum hreq_state before = c->req.parse.state;
        long n = hreq_feed(&c->req.parse, c->rbuf, c->rlen);
        if (n < 0) {
            log_debug("http_server: bad request (%s), replying %d", strerror((int)-n),
                      http_status_for((int)n));
            c->rlen = 0;
            reply_error(c, http_status_for((int)n));
            return;
        }
        c->rlen -= (size_t)n;
        if (c->rlen)
            memmove(c->rbuf, c->rbuf + n, c->rlen);
        enum hreq_state after = c->req.parse.state;
        if (before == HREQ_IDLE && after != HREQ_IDLE && c->timer_kind != TIMER_REQUEST)
            conn_timer(c, TIMER_REQUEST, c->srv->opts.header_timeout_ms);
        if (after == HREQ_BODY && before != HREQ_BODY) {
            conn_continue(c);
            if (c->state == CONN_CLOSED)
                return;
        }
        if (after == HREQ_COMPLETE)
            conn_dispatch(c);
        else if (n == 0)
            break; /* cannot happen (the parser consumes all unless complete) */
    }
    if (c->state == CONN_READING && c->peer_eof)
        conn_close(c, 0); /* the rest of the request will never come */
}

/* The reply has been completely written: next request, or close. */
static void reply_done(struct http_conn *c)
{
    stream_finish(c);
    free(c->stream.buf);
    memset(&c->stream, 0, sizeof(c->stream));
    if (c->state == CONN_CLOSED)
        return;
    if (!c->keep_alive || c->srv->closing) {
        conn_close_gracefully(c);
        return;
    }
    hreq_reset(&c->req.parse);
    c->state = CONN_READING;
    conn_timer(c, TIMER_IDLE, c->srv->opts.idle_timeout_ms);
    if (c->rlen > 0)
        conn_parse(c); /* a pipelined request */
    if (c->state == CONN_CLOSED)
        return;
    rbuf_release_if_empty(c);
    if (c->state == CONN_READING && c->peer_eof) {
        conn_close(c, 0);
        return;
    }
    if (c->rlen < HTTPS_RBUF_SIZE)
        read_start(c);
}

/* ---- accepting ---- */

static void on_connection(uv_stream_t *server, int status)
{
    struct http_server *srv = server->data;
    if (status < 0) {
        log_warn("http_server: accept failed: %s", uv_strerror(status));
        return;
    }
    if (srv->closing)
        return;
    if (srv->conns_open >= srv->opts.max_conns) {
        uv_tcp_t *t = malloc(sizeof(*t));
        if (!t || uv_tcp_init(srv->loop, t) < 0) {
            free(t);
            return;
        }
        if (uv_accept(server, (uv_stream_t *)t) == 0) {
            srv->rejected_total++;
            log_debug("http_server: %u connections open, rejecting one", srv->conns_open);
        }
        uv_close((uv_handle_t *)t, on_free_handle);
        return;
    }
    struct http_conn *c = calloc(1, sizeof(*c));
    if (!c) {
        log_error("http_server: out of memory for a connection");
        return;
    }
    if (uv_tcp_init(srv->loop, &c->tcp) < 0) {
        free(c);
        return;
    }
    c->srv = srv;
    c->tcp.data = c;
    c->refs = 1;
    srv->refs++;
    if (uv_timer_init(srv->loop, &c->timer) < 0) {
        c->state = CONN_CLOSED;
        uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
        return;
    }
    c->timer.data = c;
    c->refs++;
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->conns_open++;
    struct hreq_limits lim = { srv->opts.max_header_bytes, srv->opts.max_body };
    hreq_init(&c->req.parse, &lim);
    c->req.conn = c;
    c->state = CONN_READING;
    int r = uv_accept(server, (uv_stream_t *)&c->tcp);
    if (r < 0) {
        log_warn("http_server: accept failed: %s", uv_strerror(r));
        conn_close(c, r);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_tcp_keepalive(&c->tcp, 1, HTTPS_KEEPALIVE_S);
    conn_timer(c, TIMER_REQUEST, srv->opts.header_timeout_ms);
    read_start(c);
}

static void on_listener_closed(uv_handle_t *h)
{
    struct http_server *srv = h->data;
    free(h);
    srv_unref(srv);
}

/* ---- binding ---- */

/* "<what> '<addr>': <libuv error>" into the caller's buffer. */
static void set_err(char *err, size_t cap, const char *what, const char *addr, int code)
{
    if (err && cap)
        snprintf(err, cap, "%s '%s': %s", what, addr, uv_strerror(code));
}

/* Splits "HOST:PORT", ":PORT", "[V6]:PORT"; host "" means any. 0 or -EINVAL. */
static int addr_split(const char *addr, char *host, size_t hcap, int *port)
{
    const char *colon;
    if (addr[0] == '[') {
        const char *close = strchr(addr, ']');
        if (!close || close[1] != ':')
            return -EINVAL;
        size_t hl = (size_t)(close - addr - 1);
        if (hl == 0 || hl >= hcap)
            return -EINVAL;
        memcpy(host, addr + 1, hl);
        host[hl] = '\0';
        colon = close + 1;
    } else {
        colon = strrchr(addr, ':');
        if (!colon)
            return -EINVAL;
        size_t hl = (size_t)(colon - addr);
        if (hl >= hcap)
            return -EINVAL;
        memcpy(host, addr, hl);
        host[hl] = '\0';
        if (strcmp(host, "*") == 0)
            host[0] = '\0';
    }
    const char *p = colon + 1;
    if (*p == '\0' || strlen(p) > 5)
        return -EINVAL;
    int v = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return -EINVAL;
        v = v * 10 + (*p - '0');
    }
    if (v > 65535)
        return -EINVAL;
    *port = v;
    return 0;
}

/* Creates, binds and starts a listening handle on sa; 0 and *out, or an error. */
static int listen_on(struct http_server *srv, const struct sockaddr *sa, uv_tcp_t **out)
{
    uv_tcp_t *h = malloc(sizeof(*h));
    if (!h)
        return -ENOMEM;
    int r = uv_tcp_init(srv->loop, h);
    if (r < 0) {
        free(h);
        return r;
    }
    h->data = srv;
    r = uv_tcp_bind(h, sa, 0); /* dual-stack for "::"; SO_REUSEADDR is libuv's default */
    if (r == 0)
        r = uv_listen((uv_stream_t *)h, HTTPS_BACKLOG, on_connection);
    if (r < 0) {
        uv_close((uv_handle_t *)h, on_free_handle);
        return r;
    }
    *out = h;
    return 0;
}

static int srv_bind(struct http_server *srv, const char *addr, char *err, size_t err_cap)
{
    char host[256];
    int port;
    if (addr_split(addr, host, sizeof(host), &port) < 0) {
        if (err && err_cap)
            snprintf(err, err_cap, "bad listen address '%s' (want HOST:PORT, :PORT or [V6]:PORT)",
                     addr);
        return -EINVAL;
    }
    struct sockaddr_storage ss;
    int r;
    if (host[0] == '\0') {
        uv_ip6_addr("::", port, (struct sockaddr_in6 *)&ss);
        r = listen_on(srv, (struct sockaddr *)&ss, &srv->listener);
        if (r == UV_EAFNOSUPPORT || r == UV_EADDRNOTAVAIL || r == UV_EINVAL) {
            log_info("http_server: IPv6 unavailable (%s), listening on 0.0.0.0:%d", uv_strerror(r),
                     port);
            uv_ip4_addr("0.0.0.0", port, (struct sockaddr_in *)&ss);
            r = listen_on(srv, (struct sockaddr *)&ss, &srv->listener);
        }
    } else if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) == 0 ||
               uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) == 0) {
        r = listen_on(srv, (struct sockaddr *)&ss, &srv->listener);
    } else {
        uv_getaddrinfo_t gai;
        struct addrinfo hints;
        memset(&hints, 0, sizeof(hints));
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_PASSIVE;
        r = uv_getaddrinfo(srv->loop, &gai, NULL, host, NULL, &hints); /* synchronous */
        if (r < 0) {
            set_err(err, err_cap, "cannot resolve", addr, r);
            return r == UV_EAI_MEMORY ? -ENOMEM : -EINVAL;
        }
        r = UV_EADDRNOTAVAIL;
        for (struct addrinfo *ai = gai.addrinfo; ai && r < 0; ai = ai->ai_next) {
            if (ai->ai_addrlen > sizeof(ss))
                continue;
            memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
            if (ss.ss_family == AF_INET)
                ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
            else if (ss.ss_family == AF_INET6)
                ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
            else
                continue;
            r = listen_on(srv, (struct sockaddr *)&ss, &srv->listener);
        }
        uv_freeaddrinfo(gai.addrinfo);
    }
    if (r < 0) {
        set_err(err, err_cap, "cannot listen on", addr, r);
        return r;
    }
    struct sockaddr_storage bound;
    int blen = sizeof(bound);
    if (uv_tcp_getsockname(srv->listener, (struct sockaddr *)&bound, &blen) == 0) {
        if (bound.ss_family == AF_INET)
            srv->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
        else if (bound.ss_family == AF_INET6)
            srv->port = ntohs(((struct sockaddr_in6 *)&bound)->sin6_port);
    }
    return 0;
}

/* ---- public API ---- */

int http_server_start(uv_loop_t *loop, const char *addr, const struct http_server_opts *opts,
                      http_handler_fn handler, void *data, struct http_server **out, char *err,
                      size_t err_cap)
{
    if (err && err_cap)
        err[0] = '\0';
    if (!loop || !addr || !handler || !out)
        return -EINVAL;
    struct http_server *srv = calloc(1, sizeof(*srv));
    if (!srv)
        return -ENOMEM;
    srv->loop = loop;
    if (opts)
        srv->opts = *opts;
    if (!srv->opts.max_header_bytes)
        srv->opts.max_header_bytes = HREQ_DEFAULT_MAX_HEADER_BYTES;
    if (!srv->opts.max_body)
        srv->opts.max_body = HREQ_DEFAULT_MAX_BODY;
    if (!srv->opts.max_conns)
        srv->opts.max_conns = 512;
    if (!srv->opts.header_timeout_ms)
        srv->opts.header_timeout_ms = 10000;
    if (!srv->opts.idle_timeout_ms)
        srv->opts.idle_timeout_ms = 60000;
    srv->handler = handler;
    srv->data = data;
    int r = srv_bind(srv, addr, err, err_cap);
    if (r < 0) {
        free(srv); /* a failed listener's handle does not point at srv */
        return r;
    }
    srv->refs = 1; /* the listener */

    /* A write to a reset connection must not kill the daemon. */
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = SIG_IGN;
        sigaction(SIGPIPE, &sa, NULL);
    }
    *out = srv;
    return 0;
}

void http_server_close(struct http_server *srv)
{
    if (!srv || srv->closing)
        return;
    srv->closing = true;
    uv_close((uv_handle_t *)srv->listener, on_listener_closed);
    while (srv->conns)
        conn_close(srv->conns, UV_ECANCELED);
}

int http_server_port(const struct http_server *srv) { return srv->port; }

void http_server_info(const struct http_server *srv, struct http_server_info *out)
{
    memset(out, 0, sizeof(*out));
    out->conns_open = srv->conns_open;
    out->requests_total = srv->requests_total;
    out->errors_total = srv->errors_total;
    out->rejected_total = srv->rejected_total;
    out->write_pending_bytes = srv->write_pending;
}

const char *http_sreq_method(const struct http_sreq *req) { return hreq_method(&req->parse); }

const char *http_sreq_path(const struct http_sreq *req) { return hreq_path(&req->parse); }

const char *http_sreq_query(const struct http_sreq *req) { return hreq_query(&req->parse); }

int http_sreq_query_param_n(const struct http_sreq *req, const char *name, unsigned idx, char *buf,
                            size_t cap)
{
    const char *q = hreq_query(&req->parse);
    long n = hreq_query_param(q, strlen(q), name, idx, buf, cap);
    return n < 0 ? (int)n : 0;
}

int http_sreq_query_param(const struct http_sreq *req, const char *name, char *buf, size_t cap)
{
    return http_sreq_query_param_n(req, name, 0, buf, cap);
}

const char *http_sreq_header(const struct http_sreq *req, const char *name)
{
    return hreq_header(&req->parse, name);
}

const char *http_sreq_body(const struct http_sreq *req, size_t *len)
{
    return hreq_body(&req->parse, len);
}

/* Common checks of both reply calls; false when the reply must be dropped. */
static bool reply_begin(struct http_conn *c, const char *what)
{
    if (!c->awaiting_reply) {
        log_error("http_server: %s on a request that was already answered", what);
        return false;
    }
    c->awaiting_reply = false;
    return true;
}

static bool ctype_ok(const char *ctype)
{
    if (ctype && strpbrk(ctype, "\r\n")) {
        log_error("http_server: content type with CR/LF refused");
        return false;
    }
    return true;
}

void http_reply(struct http_sreq *req, int status, const char *content_type, const char *body,
                size_t len)
{
    struct http_conn *c = req->conn;
    if (!reply_begin(c, "http_reply"))
        return;
    if (c->state == CONN_HANDLING) {
        if (len > HTTPS_MAX_REPLY) {
            log_error("http_server: %zu-byte reply too large for http_reply, sending 500", len);
            reply_error(c, 500);
        } else if (status < 100 || status > 999 || !ctype_ok(content_type)) {
            log_error("http_server: invalid reply (status %d), sending 500", status);
            reply_error(c, 500);
        } else {
            reply_full(c, status, content_type, body ? body : "", body ? len : 0);
        }
    }
    /* else: the connection is gone, the reply is discarded */
    conn_unref(c); /* the request's reference; may free c */
}

void http_reply_stream(struct http_sreq *req, int status, const char *content_type, http_fill_fn fill,
                       http_fill_done_fn done, void *state)
{
    struct http_conn *c = req->conn;
    if (!reply_begin(c, "http_reply_stream")) {
        if (done)
            done(state);
        return;
    }
    if (c->state != CONN_HANDLING) {
        if (done)
            done(state); /* connection gone: nothing to produce */
        conn_unref(c);
        return;
    }
    if (status < 100 || status > 999 || !fill || !ctype_ok(content_type)) {
        log_error("http_server: invalid streamed reply (status %d), sending 500", status);
        if (done)
            done(state);
        reply_error(c, 500);
        conn_unref(c);
        return;
    }
    struct http_stream *s = &c->stream;
    memset(s, 0, sizeof(*s));
    s->fill = fill;
    s->done = done;
    s->state = state;
    s->active = true;
    bool body = status_has_body(status);
    bool head_only = !body || hreq_is_head(&c->req.parse);
    enum body_kind kind = BODY_NONE;
    if (body) {
        s->chunked = c->req.parse.http_major == 1 && c->req.parse.http_minor >= 1;
        if (s->chunked) {
            kind = BODY_CHUNKED;
        } else {
            kind = BODY_CLOSE;
            c->keep_alive = false;
        }
    }
    size_t hl;
    char *head = head_build(c, status, content_type, kind, 0, 0, &hl);
    if (head && !head_only)
        s->buf = malloc(HTTPS_STREAM_BUF);
    if (!head || (!head_only && !s->buf)) {
        log_error("http_server: out of memory for a streamed reply");
        free(head);
        stream_finish(c);
        c->srv->errors_total++;
        conn_close(c, -ENOMEM);
        conn_unref(c);
        return;
    }
    c->wbuf = head;
    c->wbuf_len = hl;
    if (head_only) {
        stream_finish(c);
        uv_buf_t b = uv_buf_init(head, (unsigned)hl);
        if (c->state != CONN_CLOSED)
            conn_write(c, &b, 1);
    } else {
        stream_next(c);
    }
    conn_unref(c);
}
