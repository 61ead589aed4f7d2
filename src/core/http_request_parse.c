/*
 * http_request_parse: see http_request_parse.h.
 *
 * http-parser delivers the URL, header names and values and the body in
 * fragments (a token may straddle two hreq_feed calls); the callbacks below
 * append each fragment to the struct's own storage:
 *
 *   text:  "<url>\0<name>\0<value>\0<name>\0<value>\0..."   (hdrs[] hold offsets)
 *   body:  the decoded body bytes, then a NUL
 *
 * The parser is paused at two points, which is what makes the byte accounting
 * exact: at on_headers_complete (everything consumed so far is the head, so
 * the head limit can be enforced by never offering more than the remaining
 * head allowance) and at on_message_complete (so a pipelined next request is
 * never consumed). Callbacks record a specific errno in hreq.error before
 * failing, so the caller sees -EMSGSIZE/-EFBIG/-ENOMEM rather than a generic
 * http-parser callback error.
 */
#include "core/http_request_parse.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Which kind of token the last text callback appended (hreq.token). */
enum hreq_token { TOK_NONE = 0, TOK_URL, TOK_FIELD, TOK_VALUE };

/* First body allocation when Content-Length is known (grows as data arrives). */
#define HREQ_BODY_FIRST_ALLOC (16u * 1024u)

/* Hard ceilings so that offsets fit in uint32_t whatever the caller asks for. */
#define HREQ_MAX_HEADER_CEILING (64u * 1024u * 1024u)

static struct hreq *hreq_of(http_parser *p) { return (struct hreq *)p->data; }

/* Marks the request failed with err (a negative errno); returns -1 for http-parser. */
static int hreq_fail(struct hreq *r, int err)
{
    if (r->error == 0)
        r->error = err;
    return -1;
}

/* Appends n bytes to text, growing it geometrically; 0 or -1 (error recorded). */
static int text_append(struct hreq *r, const char *p, size_t n)
{
    /* The head is at most max_header_bytes and every token adds one NUL at most
     * per separator byte, so twice the limit can only be reached by a bug. */
    size_t ceiling = 2 * r->lim.max_header_bytes + 16;
    if (n > ceiling - r->text_len)
        return hreq_fail(r, -EMSGSIZE);
    if (r->text_len + n > r->text_cap) {
        size_t cap = r->text_cap ? r->text_cap : 256;
        while (cap < r->text_len + n)
            cap *= 2;
        char *t = realloc(r->text, cap);
        if (!t)
            return hreq_fail(r, -ENOMEM);
        r->text = t;
        r->text_cap = cap;
    }
    if (n)
        memcpy(r->text + r->text_len, p, n);
    r->text_len += n;
    return 0;
}

static int text_nul(struct hreq *r) { return text_append(r, "", 1); }

/*
 * The URL is complete: NUL-terminate it and split path, query and fragment in
 * place. Absolute-form targets ("http://host/x?y") are reduced to their path.
 */
static int url_finish(struct hreq *r)
{
    size_t ulen = r->text_len;
    if (ulen > UINT32_MAX / 2 || text_nul(r) < 0)
        return -1;
    char *u = r->text;
    size_t path = 0;
    if (ulen >= 7 && (strncasecmp(u, "http://", 7) == 0 || (ulen >= 8 && strncasecmp(u, "https://", 8) == 0))) {
        size_t i = (u[4] == ':') ? 7 : 8;
        while (i < ulen && u[i] != '/' && u[i] != '?' && u[i] != '#')
            i++;
        path = i;
    }
    size_t end = ulen;
    char *hash = memchr(u + path, '#', ulen - path);
    if (hash) {
        end = (size_t)(hash - u);
        *hash = '\0';
    }
    char *q = memchr(u + path, '?', end - path);
    r->url_len = (uint32_t)ulen;
    r->path_off = (uint32_t)path;
    if (q) {
        *q = '\0';
        r->query_off = (uint32_t)(q - u + 1);
    } else {
        r->query_off = (uint32_t)end; /* the NUL at the end of the path */
    }
    r->token = TOK_NONE;
    return 0;
}

/* Ends the header value being appended: trims trailing blanks, adds the NUL. */
static int value_finish(struct hreq *r)
{
    size_t start = r->hdrs[r->nhdrs - 1].value;
    while (r->text_len > start && (r->text[r->text_len - 1] == ' ' || r->text[r->text_len - 1] == '\t'))
        r->text_len--;
    r->token = TOK_NONE;
    return text_nul(r);
}

/* Ends whatever token is open (URL, or a header value). */
static int token_finish(struct hreq *r)
{
    switch (r->token) {
    case TOK_URL:
        return url_finish(r);
    case TOK_VALUE:
        return value_finish(r);
    case TOK_FIELD:
        /* A name without any value callback: give it an empty value. */
        if (text_nul(r) < 0)
            return -1;
        r->hdrs[r->nhdrs - 1].value = (uint32_t)r->text_len;
        r->token = TOK_VALUE;
        return value_finish(r);
    default:
        return 0;
    }
}

static int on_message_begin(http_parser *p)
{
    hreq_of(p)->state = HREQ_HEAD;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct hreq *r = hreq_of(p);
    r->token = TOK_URL;
    return text_append(r, at, len);
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct hreq *r = hreq_of(p);
    if (r->state != HREQ_HEAD)
        return 0; /* trailer of a chunked body: ignored */
    if (r->token != TOK_FIELD) {
        if (token_finish(r) < 0)
            return -1;
        if (r->nhdrs == r->hdrs_cap) {
            size_t cap = r->hdrs_cap ? r->hdrs_cap * 2 : 16;
            struct hreq_hdr *h = realloc(r->hdrs, cap * sizeof(*h));
            if (!h)
                return hreq_fail(r, -ENOMEM);
            r->hdrs = h;
            r->hdrs_cap = cap;
        }
        r->hdrs[r->nhdrs].name = (uint32_t)r->text_len;
        r->hdrs[r->nhdrs].value = (uint32_t)r->text_len;
        r->nhdrs++;
        r->token = TOK_FIELD;
    }
    return text_append(r, at, len);
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct hreq *r = hreq_of(p);
    if (r->state != HREQ_HEAD)
        return 0;
    if (r->token == TOK_FIELD) {
        if (text_nul(r) < 0)
            return -1;
        r->hdrs[r->nhdrs - 1].value = (uint32_t)r->text_len;
        r->token = TOK_VALUE;
    } else if (r->token != TOK_VALUE || r->nhdrs == 0) {
        return hreq_fail(r, -EPROTO);
    }
    return text_append(r, at, len);
}

static int on_headers_complete(http_parser *p)
{
    struct hreq *r = hreq_of(p);
    if (r->state != HREQ_HEAD)
        return 0;
    if (token_finish(r) < 0)
        return -1;
    if (r->text_len == 0 && text_nul(r) < 0) /* cannot happen: a request has a URL */
        return -1;
    r->http_major = p->http_major;
    r->http_minor = p->http_minor;
    r->upgrade = p->upgrade;
    /* http-parser rejects Content-Length together with chunked framing. */
    if (!(p->flags & F_CHUNKED) && p->content_length != UINT64_MAX) {
        if (p->content_length > r->lim.max_body)
            return hreq_fail(r, -EFBIG);
        /* Known size: the body never needs more, and small bodies need one
         * allocation. Large ones still grow as bytes arrive, so announcing a
         * big Content-Length without sending it costs the client, not us. */
        r->body_expect = (size_t)p->content_length;
        if (r->body_expect > 0) {
            size_t first = r->body_expect < HREQ_BODY_FIRST_ALLOC ? r->body_expect : HREQ_BODY_FIRST_ALLOC;
            r->body = malloc(first + 1);
            if (!r->body)
                return hreq_fail(r, -ENOMEM);
            r->body_cap = first + 1;
        }
    }
    r->state = HREQ_BODY;
    http_parser_pause(p, 1); /* lets hreq_feed account the head bytes exactly */
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct hreq *r = hreq_of(p);
    if (len > r->lim.max_body - r->body_len)
        return hreq_fail(r, -EFBIG);
    if (r->body_len + len + 1 > r->body_cap) {
        size_t limit = (r->body_expect ? r->body_expect : r->lim.max_body) + 1;
        size_t cap = r->body_cap ? r->body_cap : 4096;
        while (cap < r->body_len + len + 1)
            cap *= 2;
        if (cap > limit && limit >= r->body_len + len + 1)
            cap = limit;
        char *b = realloc(r->body, cap);
        if (!b)
            return hreq_fail(r, -ENOMEM);
        r->body = b;
        r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, at, len);
    r->body_len += len;
    r->body[r->body_len] = '\0';
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct hreq *r = hreq_of(p);
    r->state = HREQ_COMPLETE;
    r->keep_alive = http_should_keep_alive(p) && !r->upgrade;
    http_parser_pause(p, 1); /* a pipelined next request stays unconsumed */
    return 0;
}

static const http_parser_settings hreq_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void hreq_init(struct hreq *r, const struct hreq_limits *lim)
{
    memset(r, 0, sizeof(*r));
    if (lim)
        r->lim = *lim;
    if (r->lim.max_header_bytes == 0)
        r->lim.max_header_bytes = HREQ_DEFAULT_MAX_HEADER_BYTES;
    if (r->lim.max_header_bytes > HREQ_MAX_HEADER_CEILING)
        r->lim.max_header_bytes = HREQ_MAX_HEADER_CEILING;
    if (r->lim.max_body == 0)
        r->lim.max_body = HREQ_DEFAULT_MAX_BODY;
    if (r->lim.max_body > SIZE_MAX / 2)
        r->lim.max_body = SIZE_MAX / 2;
    http_parser_init(&r->parser, HTTP_REQUEST);
    r->parser.data = r;
}

void hreq_free(struct hreq *r)
{
    free(r->text);
    free(r->hdrs);
    free(r->body);
    r->text = NULL;
    r->hdrs = NULL;
    r->body = NULL;
    r->text_len = r->text_cap = r->nhdrs = r->hdrs_cap = r->body_len = r->body_cap = 0;
}

void hreq_reset(struct hreq *r)
{
    struct hreq_limits lim = r->lim;
    hreq_free(r);
    hreq_init(r, &lim);
}

/* Maps an http-parser failure to our errno convention. */
static int hreq_error_from_parser(struct hreq *r)
{
    if (r->error)
        return r->error;
    enum http_errno e = HTTP_PARSER_ERRNO(&r->parser);
    if (e == HPE_HEADER_OVERFLOW)
        return -EMSGSIZE;
    return -EPROTO;
}

long hreq_feed(struct hreq *r, const char *buf, size_t len)
{
    if (r->state == HREQ_ERROR)
        return r->error;
    if (r->state == HREQ_COMPLETE || len == 0)
        return 0; /* len 0 would mean EOF to http-parser; EOF never ends a request */

    size_t off = 0;
    while (off < len) {
        bool in_head = r->state == HREQ_IDLE || r->state == HREQ_HEAD;
        size_t chunk = len - off;
        if (in_head && chunk > r->lim.max_header_bytes - r->head_bytes)
            chunk = r->lim.max_header_bytes - r->head_bytes;
        size_t n = http_parser_execute(&r->parser, &hreq_settings, buf + off, chunk);
        if (n > chunk) /* never happens; keeps the arithmetic below honest */
            n = chunk;
        off += n;
        if (in_head)
            r->head_bytes += n;
        else
            r->body_raw += n;
        enum http_errno e = HTTP_PARSER_ERRNO(&r->parser);
        if (e == HPE_PAUSED) {
            http_parser_pause(&r->parser, 0);
            if (r->state == HREQ_COMPLETE)
                return (long)off;
            continue; /* paused at the end of the head: go on with the body */
        }
        if (e != HPE_OK) {
            r->error = hreq_error_from_parser(r);
            r->state = HREQ_ERROR;
            return r->error;
        }
        if (r->state == HREQ_IDLE || r->state == HREQ_HEAD) {
            if (r->head_bytes >= r->lim.max_header_bytes) {
                r->error = -EMSGSIZE;
                r->state = HREQ_ERROR;
                return r->error;
            }
        } else if (r->body_raw > (uint64_t)r->lim.max_body * 8 + 65536) {
            /* Chunk framing or extensions far out of proportion with the body. */
            r->error = -EFBIG;
            r->state = HREQ_ERROR;
            return r->error;
        }
        if (n < chunk) {
            /* http-parser stopped without error or pause (e.g. after an upgrade). */
            r->error = -EPROTO;
            r->state = HREQ_ERROR;
            return r->error;
        }
    }
    return (long)off;
}

const char *hreq_method(const struct hreq *r)
{
    return http_method_str((enum http_method)r->parser.method);
}

bool hreq_is_head(const struct hreq *r) { return r->parser.method == HTTP_HEAD; }

const char *hreq_path(const struct hreq *r)
{
    if (r->state < HREQ_BODY || r->state == HREQ_ERROR || !r->text)
        return "";
    const char *p = r->text + r->path_off;
    return *p ? p : "/";
}

const char *hreq_query(const struct hreq *r)
{
    if (r->state < HREQ_BODY || r->state == HREQ_ERROR || !r->text)
        return "";
    return r->text + r->query_off;
}

const char *hreq_header(const struct hreq *r, const char *name)
{
    if (r->state < HREQ_BODY || r->state == HREQ_ERROR)
        return NULL;
    for (size_t i = 0; i < r->nhdrs; i++)
        if (strcasecmp(r->text + r->hdrs[i].name, name) == 0)
            return r->text + r->hdrs[i].value;
    return NULL;
}

size_t hreq_header_count(const struct hreq *r)
{
    if (r->state < HREQ_BODY || r->state == HREQ_ERROR)
        return 0;
    return r->nhdrs;
}

int hreq_header_at(const struct hreq *r, size_t i, const char **name, const char **value)
{
    if (i >= hreq_header_count(r))
        return -ENOENT;
    if (name)
        *name = r->text + r->hdrs[i].name;
    if (value)
        *value = r->text + r->hdrs[i].value;
    return 0;
}

const char *hreq_body(const struct hreq *r, size_t *len)
{
    if (len)
        *len = r->body ? r->body_len : 0;
    return r->body && r->body_len ? r->body : "";
}

/* ---- query strings ---- */

static int hex_digit(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes one character of s[*i..len) (requires *i < len) and advances *i. */
static unsigned char url_next(const char *s, size_t len, size_t *i)
{
    unsigned char c = (unsigned char)s[*i];
    if (c == '+') {
        (*i)++;
        return ' ';
    }
    if (c == '%' && len - *i >= 3) {
        int hi = hex_digit((unsigned char)s[*i + 1]);
        int lo = hex_digit((unsigned char)s[*i + 2]);
        if (hi >= 0 && lo >= 0) {
            *i += 3;
            return (unsigned char)(hi * 16 + lo);
        }
    }
    (*i)++;
    return c;
}

long hreq_url_decode(const char *src, size_t len, char *dst, size_t cap)
{
    size_t i = 0, o = 0;
    while (i < len) {
        unsigned char c = url_next(src, len, &i);
        if (o + 1 >= cap) {
            if (cap > 0)
                dst[o] = '\0';
            return -ENOSPC;
        }
        dst[o++] = (char)c;
    }
    if (cap == 0)
        return -ENOSPC;
    dst[o] = '\0';
    return (long)o;
}

/* True when s[0..len) URL-decodes to exactly the NUL-terminated name. */
static bool url_equals(const char *s, size_t len, const char *name)
{
    size_t i = 0, j = 0;
    while (i < len) {
        if (name[j] == '\0')
            return false;
        if (url_next(s, len, &i) != (unsigned char)name[j])
            return false;
        j++;
    }
    return name[j] == '\0';
}

long hreq_query_param(const char *query, size_t qlen, const char *name, unsigned idx, char *buf,
                      size_t cap)
{
    if (!query || qlen == 0)
        return -ENOENT;
    unsigned seen = 0;
    size_t start = 0;
    while (start <= qlen) {
        const char *amp = memchr(query + start, '&', qlen - start);
        size_t end = amp ? (size_t)(amp - query) : qlen;
        if (end > start) {
            const char *eq = memchr(query + start, '=', end - start);
            size_t klen = eq ? (size_t)(eq - (query + start)) : end - start;
            if (url_equals(query + start, klen, name)) {
                if (seen == idx) {
                    size_t vstart = eq ? start + klen + 1 : end;
                    return hreq_url_decode(query + vstart, end - vstart, buf, cap);
                }
                seen++;
            }
        }
        if (!amp)
            break;
        start = end + 1;
    }
    return -ENOENT;
}
