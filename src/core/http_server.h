/*
 * http_server: a small HTTP/1.1 server on libuv for /metrics, /debug/state and
 * the JSON APIs of the daemons.
 *
 * Requests are parsed with http-parser; keep-alive is honoured; one request is
 * served at a time per connection (a pipelined next request waits in the read
 * buffer). Limits that keep a bad client from hurting the daemon:
 * max_header_bytes (431/400 and close when over), max_body (413 and close),
 * a header deadline (slow clients are closed), an idle keep-alive timeout, and
 * max_conns (new connections beyond it are accepted and closed at once).
 *
 * A handler answers either at once (http_reply, copies the body) or by
 * streaming (http_reply_stream): the server calls `fill` whenever the socket has
 * drained, so a multi-megabyte page never sits in memory whole. Streamed
 * responses use chunked encoding for HTTP/1.1 clients and close-delimited
 * bodies for HTTP/1.0.
 *
 * Memory: the request (method, path, headers, body) is owned by the server and
 * valid until the reply has been completely written or the connection closes.
 * Read buffers are freed while a connection is idle.
 */
#ifndef TETHER_HTTP_SERVER_H
#define TETHER_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct http_server;
struct http_sreq;

/* Called once per complete request. The handler must eventually reply exactly once. */
typedef void (*http_handler_fn)(struct http_sreq *req, void *data);
/*
 * Streaming producer: write up to `cap` bytes into buf and return how many;
 * return 0 when the body is complete, or a negative errno to abort (the
 * connection is closed). `done` is called once at the end (also on abort or
 * client disconnect) so the producer can free its state.
 */
typedef long (*http_fill_fn)(char *buf, size_t cap, void *state);
typedef void (*http_fill_done_fn)(void *state);

struct http_server_opts {
    size_t max_header_bytes;   /* 0 = 16 KiB */
    size_t max_body;           /* 0 = 1 MiB */
    unsigned max_conns;        /* 0 = 512 */
    uint64_t header_timeout_ms;/* 0 = 10000 */
    uint64_t idle_timeout_ms;  /* 0 = 60000 */
};

/*
 * Binds and listens on `addr`: "HOST:PORT", ":PORT" (all interfaces, IPv4 and
 * IPv6 when available), "[::1]:PORT". Returns 0 and sets *out, or a negative
 * errno (bind failures like -EADDRINUSE), with a message in err (may be NULL).
 */
int http_server_start(uv_loop_t *loop, const char *addr, const struct http_server_opts *opts,
                      http_handler_fn handler, void *data, struct http_server **out, char *err,
                      size_t err_cap);
/* Stops listening and closes every connection; memory freed once handles closed. */
void http_server_close(struct http_server *srv);
/* The port actually bound (useful with ":0" in tests). */
int http_server_port(const struct http_server *srv);

const char *http_sreq_method(const struct http_sreq *req);
const char *http_sreq_path(const struct http_sreq *req);   /* without the query */
const char *http_sreq_query(const struct http_sreq *req);  /* after '?', "" when none */
/* Value of the first query parameter `name` (URL-decoded) copied to buf; 0 found, -ENOENT. */
int http_sreq_query_param(const struct http_sreq *req, const char *name, char *buf, size_t cap);
/* Iterates repeated parameters (e.g. match[]): idx-th value, 0 found, -ENOENT past the end. */
int http_sreq_query_param_n(const struct http_sreq *req, const char *name, unsigned idx, char *buf,
                            size_t cap);
const char *http_sreq_header(const struct http_sreq *req, const char *name); /* case-insensitive */
const char *http_sreq_body(const struct http_sreq *req, size_t *len);

/* Replies with a complete body (copied). */
void http_reply(struct http_sreq *req, int status, const char *content_type, const char *body,
                size_t len);
/* Replies with a body produced by `fill`; see http_fill_fn. */
void http_reply_stream(struct http_sreq *req, int status, const char *content_type, http_fill_fn fill,
                       http_fill_done_fn done, void *state);

struct http_server_info {
    unsigned conns_open;
    uint64_t requests_total, errors_total, rejected_total;
};
void http_server_info(const struct http_server *srv, struct http_server_info *out);

#endif
