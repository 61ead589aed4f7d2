/*
 * http_server: a small HTTP/1.1 server on libuv for /metrics, /debug/state and
 * the JSON APIs of the daemons.
 *
 * Requests are parsed with http-parser (core/http_request_parse.h); keep-alive
 * is honoured; one request is served at a time per connection (a pipelined next
 * request waits in the read buffer and is answered after the current one, so
 * replies keep the order of requests). Limits that keep a bad client from
 * hurting the daemon:
 *   - max_header_bytes: a bigger request head gets 431 and the connection is
 *     closed; max_body: a bigger body (or announced Content-Length) gets 413 and
 *     close; a malformed request gets 400 and close. Error replies are followed
 *     by a lingering close (write side shut down, input drained for up to 2 s)
 *     so the client sees the reply rather than a reset.
 *   - header_timeout_ms: a deadline from the first byte of a request (from
 *     accept for the first one) to its last byte, head and body; a client too
 *     slow to send its request (slowloris) is closed without a reply.
 *   - idle_timeout_ms: an idle keep-alive connection is closed after it; it
 *     also bounds how long one write of a reply may stall (a client that stops
 *     reading is closed).
 *   - max_conns: connections beyond it are accepted and closed at once (counted
 *     in rejected_total).
 *
 * Connection life (one per accepted socket):
 *
 *   READING --request complete--> HANDLING --http_reply*()--> WRITING
 *      ^                                                        |
 *      +------------- keep-alive: next request -----------------+
 *   WRITING --Connection: close / error reply--> LINGER --> CLOSED
 *   any state --peer reset, timeout, http_server_close--> CLOSED
 *
 * Replies: http_reply sends Content-Length; http_reply_stream sends chunked
 * encoding to HTTP/1.1 clients and a close-delimited body to HTTP/1.0 ones.
 * HEAD requests get the headers only, as do 1xx/204/304 replies. Every reply
 * carries `Server: tether` and `Date`; `Connection: close` is sent whenever the
 * connection will close after the reply, `Connection: keep-alive` to HTTP/1.0
 * clients that asked for it. `Expect: 100-continue` is answered with 100.
 *
 * Streaming and backpressure: the server owns one 64 KiB buffer per streamed
 * reply and calls `fill` to refill it only after the previous piece has been
 * completely written to the socket, so a slow reader never makes the server
 * hold more than that one buffer for the body (plus the kernel's socket
 * buffer). `done` is called exactly once: at the end, on abort, when the
 * client disconnects mid-stream, or when the server closes.
 *
 * Memory and lifetime: the server owns every http_sreq. The request (method,
 * path, query, headers, body) is valid from the handler call until the reply
 * has been completely written or the connection is closed, with one
 * exception that makes late replies safe: a request whose handler has not
 * replied yet keeps its connection struct alive (a reference held from
 * dispatch until the reply call) even when the client disconnects or
 * http_server_close runs. The handler may therefore reply later (from a timer,
 * after a backend answered ...); its request data is still readable until then,
 * and the reply is discarded (a stream's `done` is called at once). The server
 * struct itself is freed when its handles are closed and no reply is pending.
 * Read buffers (16 KiB) are allocated when data arrives and freed whenever no
 * unparsed input is left, so an idle keep-alive connection holds no buffer.
 *
 * Writing to a reset connection raises SIGPIPE: http_server_start sets SIGPIPE
 * to SIG_IGN if it still has the default disposition.
 *
 * Single-threaded: every call and callback is on the loop's thread.
 */
#ifndef TETHER_HTTP_SERVER_H
#define TETHER_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct http_server;
struct http_sreq;

/*
 * Called once per complete request. The handler must eventually reply exactly
 * once with http_reply or http_reply_stream, at once or later (see above). A
 * second reply is ignored with an error log line (a stream's done is called).
 */
typedef void (*http_handler_fn)(struct http_sreq *req, void *data);
/*
 * Streaming producer: write up to `cap` bytes into buf and return how many;
 * return 0 when the body is complete, or a negative errno to abort (the
 * connection is closed). buf is the server's fixed 64 KiB stream buffer (cap is
 * a little less, framing is added around it); fill is called again only after
 * the previous piece has been written. `done` is called once at the end (also
 * on abort or client disconnect) so the producer can free its state; fill is
 * never called after done, and done never runs while fill does (a fill that
 * closes the server gets its done call after it returns).
 */
typedef long (*http_fill_fn)(char *buf, size_t cap, void *state);
typedef void (*http_fill_done_fn)(void *state);

struct http_server_opts {
    size_t max_header_bytes;   /* request line + headers; 0 = 16 KiB */
    size_t max_body;           /* decoded request body; 0 = 1 MiB */
    unsigned max_conns;        /* open connections; 0 = 512 */
    uint64_t header_timeout_ms;/* deadline to receive a whole request; 0 = 10000 */
    uint64_t idle_timeout_ms;  /* keep-alive idle and write stall limit; 0 = 60000 */
};

/*
 * Binds and listens on `addr`: "HOST:PORT", ":PORT" (all interfaces: "::"
 * dual-stack, or 0.0.0.0 when IPv6 is unavailable), "[::1]:PORT"; HOST may be
 * a name, resolved once here (blocking). opts may be NULL for the defaults.
 * Returns 0 and sets *out, or a negative errno (-EINVAL bad address, bind
 * failures like -EADDRINUSE), with a message in err (may be NULL). On failure
 * a listening handle may still be closing: run the loop before uv_loop_close.
 */
int http_server_start(uv_loop_t *loop, const char *addr, const struct http_server_opts *opts,
                      http_handler_fn handler, void *data, struct http_server **out, char *err,
                      size_t err_cap);
/*
 * Stops listening and closes every connection (streams get their done call).
 * Memory is freed once the handles have closed (run the loop) and every
 * handler that still owes a reply has replied. srv may be NULL; a second call
 * does nothing.
 */
void http_server_close(struct http_server *srv);
/* The port actually bound (useful with ":0" in tests). */
int http_server_port(const struct http_server *srv);

const char *http_sreq_method(const struct http_sreq *req);
const char *http_sreq_path(const struct http_sreq *req);   /* without the query */
const char *http_sreq_query(const struct http_sreq *req);  /* after '?', "" when none */
/*
 * Value of the first query parameter `name` (URL-decoded, names compared after
 * decoding) copied NUL-terminated to buf; 0 found, -ENOENT, -ENOSPC buf too small.
 */
int http_sreq_query_param(const struct http_sreq *req, const char *name, char *buf, size_t cap);
/* Iterates repeated parameters (e.g. match[]): idx-th value, 0 found, -ENOENT past the end, -ENOSPC. */
int http_sreq_query_param_n(const struct http_sreq *req, const char *name, unsigned idx, char *buf,
                            size_t cap);
const char *http_sreq_header(const struct http_sreq *req, const char *name); /* case-insensitive */
/* The request body ("" when none, NUL-terminated); *len gets its length when len is not NULL. */
const char *http_sreq_body(const struct http_sreq *req, size_t *len);

/*
 * Replies with a complete body (copied: body may be freed when this returns).
 * status 100..999 (others become 500); content_type may be NULL (no header)
 * and must not contain CR or LF; len at most 1 GiB (stream anything bigger).
 */
void http_reply(struct http_sreq *req, int status, const char *content_type, const char *body,
                size_t len);
/*
 * Replies with a body produced by `fill`; see http_fill_fn and the module
 * comment. The first fill happens inside this call; when it fails (negative
 * return) the client gets a 500 instead and the connection closes. state
 * belongs to the producer; the server only passes it to fill and done.
 */
void http_reply_stream(struct http_sreq *req, int status, const char *content_type, http_fill_fn fill,
                       http_fill_done_fn done, void *state);

struct http_server_info {
    unsigned conns_open;           /* sockets currently open */
    uint64_t requests_total;       /* complete requests handed to the handler */
    uint64_t errors_total;         /* 400/413/431 replies, request/write timeouts, I/O errors */
    uint64_t rejected_total;       /* connections closed at once because of max_conns */
    uint64_t write_pending_bytes;  /* reply bytes handed to libuv and not yet written */
};
void http_server_info(const struct http_server *srv, struct http_server_info *out);

#endif
