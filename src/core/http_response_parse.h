/*
 * http_response_parse: a pure, incremental HTTP/1.1 response parser.
 *
 * A thin wrapper around http-parser 2.9 that turns its callbacks into a
 * resumable "feed bytes, look at the state" interface with no I/O, no loop
 * and no globals, so the HTTP client, the unit tests and the fuzzer all call
 * the same code:
 *
 *     http_resp_init(&p, max_header_bytes, on_body, arg);
 *     while (data arrives) {
 *         n = http_resp_feed(&p, buf, len);     bytes consumed or -errno
 *         ... look at p.state, feed buf + n again if bytes are left ...
 *     }
 *     on EOF: http_resp_feed_eof(&p);           completes a close-delimited body
 *     http_resp_reset(&p, is_head) before the next response on the connection
 *     http_resp_free(&p) at the end
 *
 * States (p.state) and where http_resp_feed() stops:
 *
 *     HEAD --headers complete--> BODY --message complete--> DONE
 *                                  \--101 + Upgrade-------> UPGRADED
 *
 * http_resp_feed() returns early (fewer bytes consumed than given) on every
 * transition so the caller can act in order: headers before the first body
 * piece, and "message complete" before looking at any byte that follows it.
 * In DONE and UPGRADED it consumes nothing: bytes after a complete response
 * belong to the next response (call http_resp_reset first) or, after an
 * upgrade, to the raw stream.
 *
 * Interim 1xx responses other than a 101 upgrade (100 Continue, 102, 103) are
 * skipped: their headers are dropped and parsing continues with the final
 * response. Responses to HEAD (http_resp_reset(p, 1)), 1xx, 204 and 304 have
 * no body whatever their Content-Length says.
 *
 * Memory: status and headers are copied into storage owned by the parser
 * (one byte arena plus a header array), valid from the BODY state until the
 * next http_resp_reset()/http_resp_free(). Body bytes are not copied: they
 * are passed to the body callback as pointers into the fed buffer, valid only
 * during the call. The parser never reads past `len` and needs no NUL.
 *
 * Strictness is http-parser's: Debian builds it with HTTP_PARSER_STRICT=0, so
 * a few deviations pass (bare LF line ends, a misspelt "HTTP" after the H);
 * the framing rules (versions, status, lengths, chunk sizes, header syntax)
 * are still enforced.
 *
 * Errors (negative errno, sticky until reset): -EPROTO malformed response,
 * -EMSGSIZE status line + headers longer than max_header_bytes (http-parser
 * also caps them at its compiled-in 80 KiB), -ENOMEM, -ECONNRESET from
 * http_resp_feed_eof() when the stream ended before the response did, or
 * whatever the body callback returned.
 */
#ifndef TETHER_HTTP_RESPONSE_PARSE_H
#define TETHER_HTTP_RESPONSE_PARSE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <http_parser.h>

/* One response header; both strings are NUL-terminated and owned by whoever
 * built the array (the parser here, see http_client.h for callbacks). */
struct http_header {
    char *name;                /* as received, e.g. "Content-Type" */
    char *value;               /* leading/trailing blanks removed */
};

enum http_resp_state {
    HTTP_RESP_HEAD = 0,        /* reading the status line and headers */
    HTTP_RESP_BODY,            /* headers complete (status, headers valid); reading the body */
    HTTP_RESP_DONE,            /* the response is complete */
    HTTP_RESP_UPGRADED,        /* 101 with Upgrade: bytes after the last consumed one are raw */
    HTTP_RESP_ERROR            /* a feed failed; see `err` */
};

/*
 * Body sink: one piece of decoded body (chunk framing removed). Returns 0 to
 * continue or a negative errno, which aborts parsing and is returned by
 * http_resp_feed() (the parser enters HTTP_RESP_ERROR).
 */
typedef int (*http_resp_body_fn)(void *arg, const char *buf, size_t len);

struct http_resp_parser {
    http_parser hp;              /* http-parser state; hp.data points back here */
    enum http_resp_state state;  /* see the diagram above */
    int err;                     /* the error once state is HTTP_RESP_ERROR, else 0 */
    int status;                  /* status code; valid from HTTP_RESP_BODY on */
    int http_minor;              /* 0 for HTTP/1.0, 1 for HTTP/1.1 */
    int keep_alive;              /* DONE: 1 when the connection may carry another response */
    int is_head;                 /* the request was HEAD: the response has no body */
    size_t max_header_bytes;     /* limit for status line + headers (per response) */
    size_t header_bytes;         /* bytes of the current status line + headers consumed so far */
    uint64_t body_bytes;         /* decoded body bytes delivered so far */
    uint64_t bytes_total;        /* every byte consumed since the last reset (incl. interim responses) */
    unsigned interim;            /* interim 1xx responses skipped since the last reset */
    http_resp_body_fn on_body;   /* body sink; NULL discards the body */
    void *arg;                   /* passed to on_body */
    struct http_header *headers; /* nheaders entries pointing into `arena`; built at headers complete */
    size_t nheaders;             /* number of headers in `headers` */
    char *arena;                 /* header names and values, NUL-terminated, back to back (owned) */
    size_t arena_len;            /* bytes used in arena */
    size_t arena_cap;            /* bytes allocated for arena */
    size_t *offs;                /* pending headers: name and value offsets into arena, 2 per header (owned) */
    size_t offs_len;             /* entries used in offs (2 * headers seen) */
    size_t offs_cap;             /* entries allocated for offs */
    int in_value;                /* the last header callback was a value (a field starts a new header) */
    int paused_event;            /* internal: which callback paused http-parser (0 none) */
    int cb_err;                  /* internal: error from a callback, returned by the feed that saw it */
};

/*
 * Prepares a parser for the first response. max_header_bytes 0 means 64 KiB.
 * on_body may be NULL (body discarded). Allocates nothing.
 */
void http_resp_init(struct http_resp_parser *p, size_t max_header_bytes, http_resp_body_fn on_body,
                    void *arg);
/*
 * Frees the header storage and readies the parser for the next response on
 * the same connection. is_head: the next request is a HEAD (no body expected).
 * The body callback and limits are kept.
 */
void http_resp_reset(struct http_resp_parser *p, int is_head);
/* Frees the header storage. The struct may be re-initialised with http_resp_init. */
void http_resp_free(struct http_resp_parser *p);

/*
 * Parses up to len bytes of buf. Returns the bytes consumed (0..len) or a
 * negative errno (see the module comment). Stops early at HEAD->BODY and at
 * DONE/UPGRADED; consumes nothing in DONE, UPGRADED or ERROR. For len > 0 in
 * HEAD or BODY it either consumes at least one byte or changes the state.
 */
ssize_t http_resp_feed(struct http_resp_parser *p, const char *buf, size_t len);
/*
 * The peer closed the stream. Completes a body delimited by close (state ->
 * DONE, keep_alive 0) and returns 0; returns 0 in DONE/UPGRADED; returns
 * -ECONNRESET when the response was cut short (including no byte at all).
 */
int http_resp_feed_eof(struct http_resp_parser *p);

/* Case-insensitive lookup of the first header `name`; NULL when absent or before BODY. */
const char *http_resp_header(const struct http_resp_parser *p, const char *name);

/* Short name of a state, for logs. */
const char *http_resp_state_name(enum http_resp_state s);

#endif
