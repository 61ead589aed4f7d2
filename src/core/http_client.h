/*
 * http_client: an HTTP/1.1 client on libuv for Unix-domain and TCP endpoints.
 *
 * One `struct http_client` per endpoint holds a small pool of keep-alive
 * connections (at most `max_conns`). Requests are queued and each is sent on an
 * idle pooled connection or on a new one; one request is in flight per
 * connection (no pipelining). Responses are parsed with http-parser:
 * Content-Length, chunked and read-until-close bodies.
 *
 *   caller --http_request()--> queue --> conn (connect, write, parse) --> callbacks
 *
 * Three ways to receive a response:
 *   - buffered (default): the body is collected up to opts.max_body and handed
 *     to on_complete. A larger body fails the request with -EMSGSIZE and the
 *     connection is closed (the rest is discarded, never left unread).
 *   - streamed (opts.stream): every body piece goes to on_body as it arrives
 *     (Docker /events, logs?follow=1); on_complete ends the stream.
 *   - upgraded (opts.upgrade): on a "101" the socket is handed to on_upgrade with
 *     any bytes that arrived after the headers; the client forgets it. Any
 *     other answer (Docker's 404 for a missing container) is buffered and
 *     goes to on_complete like a buffered response.
 * Interim 1xx responses (100 Continue, ...) are skipped; HEAD, 204 and 304
 * responses have no body.
 *
 * Deadlines: opts.timeout_ms starts at http_request() and bounds the whole
 * exchange (waiting in the queue + connect + request + the full response) for
 * buffered requests, and stops when the response headers arrive for streamed
 * ones and at the 101 for upgraded ones. opts.idle_timeout_ms (0 = none) fails
 * a request whose connection receives nothing for that long once the request
 * was sent. A request that fails for any reason closes its connection, since
 * its framing can no longer be trusted. A response with "Connection: close"
 * (or HTTP/1.0 without keep-alive, or a close-delimited body) closes the
 * connection after it completes.
 *
 * Retry: a GET or HEAD sent on a reused keep-alive connection that the server
 * closed before answering a single byte (its idle timeout raced ours) is sent
 * again once on a new connection. Other methods fail with -ECONNRESET.
 *
 * The request head: "METHOD path HTTP/1.1", "Host:" (the endpoint's host[:port];
 * "localhost" for Unix sockets) and "User-Agent: tether/<version>" unless
 * opts.headers has them, then opts.headers, "Connection: Upgrade" and
 * "Upgrade: tcp" for upgrade requests unless opts.headers names Connection or
 * Upgrade, and Content-Length when there is a body or the method is POST, PUT
 * or PATCH. opts.headers must not carry Content-Length or Transfer-Encoding.
 *
 * Memory: a request's method, path, headers and body are copied at
 * http_request(); the caller's buffers may be reused at once. Read buffers
 * (64 KiB) are allocated when data arrives and freed when a connection goes
 * idle, so an idle pooled connection holds no buffer.
 *
 * Callbacks may call any function here, including http_client_close(),
 * http_req_cancel() and http_request(). A request made from inside a callback
 * is dispatched once that callback has returned (so the response being
 * delivered stays valid and its connection can be reused for it).
 *
 * Sockets: TCP sockets get TCP_NODELAY and keep-alive (SO_KEEPALIVE,
 * TCP_KEEPIDLE = keepalive_s, TCP_KEEPINTVL = keepalive_s/3, TCP_KEEPCNT = 3,
 * TCP_USER_TIMEOUT to match) set on the socket itself; the client never dups
 * a socket, never switches one to blocking and never shutdown(SHUT_WR)s a
 * connection (half-closed attach streams pile up in FIN_WAIT2 on the daemon's
 * side). Host names are resolved with uv_getaddrinfo (libuv's thread pool) at
 * each connect, and the first address returned is used; numeric addresses
 * need no lookup.
 *
 * Errors are negative errno values (libuv's UV_E* are the same numbers):
 * -ETIMEDOUT deadline, -ECONNREFUSED/-ENOENT endpoint not there, -EPROTO
 * malformed response, -EMSGSIZE body or headers too large, -ECONNRESET peer
 * closed early, -ECANCELED cancelled or client closing, -EHOSTUNREACH host
 * name lookup failed, -ENOMEM.
 *
 * Single-threaded: every call and callback is on the loop's thread.
 */
#ifndef TETHER_HTTP_CLIENT_H
#define TETHER_HTTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/http_response_parse.h"

struct http_client;
struct http_req;

enum http_endpoint_kind { HTTP_EP_UNIX = 1, HTTP_EP_TCP = 2 };

struct http_endpoint {
    enum http_endpoint_kind kind; /* which of the fields below apply */
    char path[108];            /* HTTP_EP_UNIX: socket path */
    char host[256];            /* HTTP_EP_TCP: host as given, IPv6 without brackets (Host header) */
    uint16_t port;             /* HTTP_EP_TCP */
};

/*
 * Parses "unix:///var/run/docker.sock", "/var/run/docker.sock",
 * "http://127.0.0.1:1988/v1/push", "tcp://host:2375" or "host:port". The path
 * part of an http URL (default "/") is copied to path_out when it is not NULL.
 * http:// defaults to port 80; tcp:// and host:port need a port; IPv6 needs
 * brackets ("http://[::1]:8080/"). No TLS (https:// is refused), no userinfo.
 * Host names are resolved at connect time (numeric addresses need no lookup).
 * Returns 0 or -EINVAL (also when the path does not fit path_cap); *ep is
 * only written on success.
 */
int http_endpoint_parse(const char *url, struct http_endpoint *ep, char *path_out, size_t path_cap);
/* Writes "unix:///path", "host:port" or "[v6]:port" for logs and dumps (truncated to cap). */
void http_endpoint_str(const struct http_endpoint *ep, char *buf, size_t cap);

/* struct http_header { char *name; char *value; } comes from core/http_response_parse.h. */

/* A response as seen by callbacks; valid only during the callback. */
struct http_response {
    int status;                /* 0 if no status line was received */
    size_t nheaders;           /* entries in headers */
    struct http_header *headers; /* in arrival order, owned by the client */
    const char *body;          /* buffered mode: NUL-terminated body; NULL otherwise */
    size_t body_len;           /* bytes in body (without the NUL) */
};

/* Case-insensitive lookup of the first header `name`; NULL when absent or r is NULL. */
const char *http_response_header(const struct http_response *r, const char *name);

/* Called once the status line and headers arrived (optional). */
typedef void (*http_headers_cb)(struct http_req *req, const struct http_response *resp, void *data);
/* Streamed mode: one piece of decoded body (chunk framing removed). */
typedef void (*http_body_cb)(struct http_req *req, const char *buf, size_t len, void *data);
/*
 * Always called exactly once per request, last, unless on_upgrade took the
 * socket. err is 0 on success (any status: check resp->status). resp is NULL
 * when no response was received. The request handle is freed after it returns.
 */
typedef void (*http_complete_cb)(struct http_req *req, int err, const struct http_response *resp,
                                 void *data);
/*
 * Upgraded mode: the 101 response arrived. `stream` (a uv_pipe_t or uv_tcp_t
 * allocated with malloc, reading stopped) now belongs to the callee, which must
 * uv_close() it and free() it in its close callback. `rest`/`rest_len` are the
 * bytes that followed the headers. The request handle is freed after return.
 */
typedef void (*http_upgrade_cb)(struct http_req *req, uv_stream_t *stream, const struct http_response *resp,
                                const char *rest, size_t rest_len, void *data);

struct http_req_opts {
    const char *method;              /* "GET" when NULL */
    const char *path;                /* request target incl. query, e.g. "/containers/json?all=1" */
    const char *const *headers;      /* extra "Name: value" lines, NULL-terminated; may be NULL */
    const void *body;                /* request body (copied), may be NULL */
    size_t body_len;                 /* bytes in body */
    uint64_t timeout_ms;             /* see the module comment; 0 = none */
    uint64_t idle_timeout_ms;        /* 0 = none */
    size_t max_body;                 /* buffered mode limit; 0 = 4 MiB */
    int stream;                      /* deliver body via on_body */
    int upgrade;                     /* expect 101 and hand over the socket */
    http_headers_cb on_headers;      /* optional */
    http_body_cb on_body;            /* streamed mode; NULL discards the body */
    http_complete_cb on_complete;    /* required */
    http_upgrade_cb on_upgrade;      /* required with upgrade */
    void *data;                      /* passed to every callback */
};

struct http_client_opts {
    unsigned max_conns;              /* pooled connections to the endpoint; 0 = 4 */
    uint64_t idle_close_ms;          /* close a pooled idle connection after this; 0 = 30000 */
    size_t max_header_bytes;         /* 0 = 64 KiB */
    unsigned keepalive_s;            /* TCP keep-alive idle seconds; 0 = 30 */
};

/*
 * Creates a client for `ep` (copied); opts may be NULL (all defaults). Nothing
 * connects until the first request. NULL on OOM or an invalid endpoint kind.
 */
struct http_client *http_client_new(uv_loop_t *loop, const struct http_endpoint *ep,
                                    const struct http_client_opts *opts);
/*
 * Closes every connection; queued and in-flight requests complete with
 * -ECANCELED (callbacks run from within this call or soon after on the loop).
 * The client's memory is freed once all its handles are closed; `client` must
 * not be used after this call.
 */
void http_client_close(struct http_client *client);

/*
 * Queues a request. Returns the handle (valid until on_complete/on_upgrade
 * returns) or NULL on invalid options / OOM / a closing client, in which case
 * no callback runs. Invalid: no path or one not starting with '/' or holding
 * blanks or control characters, a method that is not a token, a header line
 * without ':' or with CR/LF, Content-Length/Transfer-Encoding in headers, no
 * on_complete, upgrade without on_upgrade, upgrade together with stream.
 * No callback ever runs before http_request() has returned.
 */
struct http_req *http_request(struct http_client *client, const struct http_req_opts *opts);
/* Cancels: on_complete(-ECANCELED) runs before this returns; its connection is closed. */
void http_req_cancel(struct http_req *req);

/* Introspection for diagnostics (dumps, /debug/state). */
struct http_client_info {
    unsigned conns_open;       /* connections not closing (connecting, idle, busy, streaming) */
    unsigned conns_idle;       /* of those, idle in the pool */
    unsigned reqs_queued;      /* requests waiting for a connection */
    unsigned reqs_inflight;    /* requests bound to a connection (or failing) */
    uint64_t reqs_total;       /* requests accepted by http_request */
    uint64_t errors_total;     /* requests completed with err != 0 (including cancels) */
    uint64_t connects_total;   /* connections opened */
};
/* Fills *out with the client's counters. */
void http_client_info(const struct http_client *client, struct http_client_info *out);
/*
 * Calls fn once per connection with its state ("connecting", "idle", "busy",
 * "streaming"), age in ms, and the in-flight request's method, path and ms left
 * before its deadline (-1 none; method/path NULL when idle).
 */
typedef void (*http_conn_visit_fn)(void *arg, const char *state, uint64_t age_ms, const char *method,
                                   const char *path, int64_t deadline_left_ms);
void http_client_visit(const struct http_client *client, http_conn_visit_fn fn, void *arg);

#endif
