/*
 * http_request_parse (prefix hreq_): an incremental HTTP/1.x request parser.
 *
 * A thin, pure wrapper around http-parser 2.9 (no I/O, no loop, no globals):
 * the caller feeds whatever bytes it has and gets back how many were consumed.
 * The parser stops right after the end of one request, so the bytes of a
 * pipelined next request stay in the caller's buffer:
 *
 *   bytes --hreq_feed()--> IDLE -> HEAD -> BODY -> COMPLETE   (consumed = n)
 *                                    \-------\------> ERROR   (-EMSGSIZE, -EFBIG, -EPROTO)
 *   COMPLETE: read method/path/query/headers/body, then hreq_reset() and feed
 *   the bytes after the n consumed ones.
 *
 * Limits: the request head (request line + headers + final CRLF) may not exceed
 * max_header_bytes (-EMSGSIZE); the decoded body may not exceed max_body
 * (-EFBIG, reported as soon as a Content-Length announces too much, before any
 * body byte arrives); anything else malformed is -EPROTO. Errors are sticky
 * until hreq_reset().
 *
 * Memory: the URL, header names and values and the body are copied into
 * storage the struct owns (allocated on demand, bounded by the limits), so the
 * caller may reuse its input buffer at once. Every returned string is
 * NUL-terminated and stays valid until hreq_reset() or hreq_free().
 * hreq_reset() and hreq_free() release all of it: an idle parser holds no heap
 * memory. Inputs are never read past `len` and need no NUL terminator.
 *
 * The query helpers at the end are pure functions over (buf, len) as well.
 */
#ifndef TETHER_HTTP_REQUEST_PARSE_H
#define TETHER_HTTP_REQUEST_PARSE_H

#include <http_parser.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HREQ_DEFAULT_MAX_HEADER_BYTES (16u * 1024u)
#define HREQ_DEFAULT_MAX_BODY         (1024u * 1024u)

/* Where the parser is; kept here so tests and callers need not guess. */
enum hreq_state {
    HREQ_IDLE = 0,  /* no request byte yet (leading CR/LF are skipped) */
    HREQ_HEAD,      /* inside the request line or the headers */
    HREQ_BODY,      /* headers complete, body (if any) still arriving */
    HREQ_COMPLETE,  /* one whole request parsed; further bytes are not consumed */
    HREQ_ERROR,     /* malformed or over a limit; hreq.error says which */
};

struct hreq_limits {
    size_t max_header_bytes; /* request line + headers incl. the empty line; 0 = 16 KiB */
    size_t max_body;         /* decoded body bytes; 0 = 1 MiB */
};

/* One header as offsets into hreq.text (offsets survive reallocation). */
struct hreq_hdr {
    uint32_t name;  /* offset of the NUL-terminated name */
    uint32_t value; /* offset of the NUL-terminated value (surrounding blanks trimmed) */
};

/*
 * Parser state and the parsed request. Treat every field as read-only outside
 * http_request_parse.c; use the accessors below.
 */
struct hreq {
    http_parser parser;      /* http-parser state; parser.data points back to this struct */
    struct hreq_limits lim;  /* limits with defaults applied */
    enum hreq_state state;   /* see enum hreq_state */
    int error;               /* negative errno once state == HREQ_ERROR, else 0 */
    size_t head_bytes;       /* raw bytes of the request head consumed so far */
    uint64_t body_raw;       /* raw bytes consumed after the head (chunk framing included) */
    char *text;              /* URL, then header names and values, each NUL-terminated */
    size_t text_len;         /* bytes used in text */
    size_t text_cap;         /* bytes allocated for text */
    int token;               /* kind of token being appended to text (internal enum) */
    struct hreq_hdr *hdrs;   /* headers in arrival order */
    size_t nhdrs;            /* headers used */
    size_t hdrs_cap;         /* headers allocated */
    char *body;              /* decoded body, NUL-terminated (NULL when empty) */
    size_t body_len;         /* bytes of body */
    size_t body_cap;         /* bytes allocated for body */
    size_t body_expect;      /* Content-Length when announced, else 0 */
    uint32_t url_len;        /* raw URL length (text[0..url_len)) once the URL is complete */
    uint32_t path_off;       /* offset of the NUL-terminated path in text */
    uint32_t query_off;      /* offset of the NUL-terminated query (without '?') in text */
    unsigned short http_major; /* from the request line, valid from HREQ_BODY on */
    unsigned short http_minor; /* idem */
    bool keep_alive;         /* valid at HREQ_COMPLETE: the connection may carry another request */
    bool upgrade;            /* Upgrade/CONNECT request: the bytes after it are not HTTP */
};

/* Prepares r for a first request; lim may be NULL for the defaults. Allocates nothing. */
void hreq_init(struct hreq *r, const struct hreq_limits *lim);

/*
 * Feeds len bytes of the connection's input. Returns the number of bytes
 * consumed (0..len) or a negative errno: -EMSGSIZE head over max_header_bytes,
 * -EFBIG body over max_body, -EPROTO malformed, -ENOMEM. Bytes are consumed up
 * to the end of one request and no further: when r->state is HREQ_COMPLETE
 * after the call, buf[n..len) belongs to the next request. Otherwise all len
 * bytes were consumed. Calling it again after COMPLETE returns 0; after ERROR
 * it returns the same error.
 */
long hreq_feed(struct hreq *r, const char *buf, size_t len);

/* Frees the request's storage and readies r for the next request (same limits). */
void hreq_reset(struct hreq *r);

/* Frees the request's storage; r may be hreq_init()ed again afterwards. */
void hreq_free(struct hreq *r);

/* "GET", "POST", ... (static strings); valid from HREQ_BODY on. */
const char *hreq_method(const struct hreq *r);
/* True for HEAD requests (their replies carry no body). */
bool hreq_is_head(const struct hreq *r);
/*
 * The request target up to '?' (not percent-decoded; "/" for an absolute-form
 * target without a path; a "#fragment" is dropped). Valid from HREQ_BODY on,
 * "" before.
 */
const char *hreq_path(const struct hreq *r);
/* The raw query string after '?', "" when none. Valid from HREQ_BODY on. */
const char *hreq_query(const struct hreq *r);
/* First header named `name` (ASCII case-insensitive) or NULL. */
const char *hreq_header(const struct hreq *r, const char *name);
/* Number of headers, and the i-th one (0 ok, -ENOENT past the end). */
size_t hreq_header_count(const struct hreq *r);
int hreq_header_at(const struct hreq *r, size_t i, const char **name, const char **value);
/* The decoded body ("" when none); *len gets its length when len is not NULL. */
const char *hreq_body(const struct hreq *r, size_t *len);

/*
 * Decodes %XX escapes and '+' (as a space) of src[0..len) into dst and
 * NUL-terminates it. A '%' not followed by two hex digits is kept as is.
 * Returns the decoded length (which may contain NUL bytes from %00), or
 * -ENOSPC when dst (cap bytes) is too small (dst then holds a truncated,
 * NUL-terminated prefix when cap > 0). cap >= len + 1 always suffices.
 */
long hreq_url_decode(const char *src, size_t len, char *dst, size_t cap);

/*
 * Finds the idx-th (0-based) value of parameter `name` in a query string
 * (query[0..qlen), the part after '?', pairs separated by '&'). Names are
 * compared after URL-decoding, so "match%5B%5D" matches "match[]". The value is
 * URL-decoded into buf (NUL-terminated); a pair without '=' has the value "".
 * Returns the decoded value length, -ENOENT when there are not idx+1
 * occurrences, or -ENOSPC when buf is too small.
 */
long hreq_query_param(const char *query, size_t qlen, const char *name, unsigned idx, char *buf,
                      size_t cap);

#endif
