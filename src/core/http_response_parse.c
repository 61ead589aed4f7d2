/*
 * http_response_parse: see http_response_parse.h.
 *
 * http-parser reports everything through callbacks while it runs. To give the
 * caller a "stop at every event" interface, the headers-complete and
 * message-complete callbacks pause http-parser (http_parser_pause); the
 * execute call then returns the exact number of bytes that belong to what was
 * parsed so far, and the next feed resumes from there. A pause inside
 * on_headers_complete leaves the final LF of the header block unconsumed; the
 * next feed hands it back to http-parser, which expects exactly that.
 *
 * Header names and values arrive in pieces (a piece may end anywhere, also
 * between two feeds). They are appended to one growing arena; `offs` keeps
 * offsets (the arena may move while it grows) and the pointer array handed to
 * callers is built once, when the header block is complete.
 *
 * The header size limit is enforced by never handing http-parser more bytes
 * than the remaining header budget while the header block is being read.
 */
#include "core/http_response_parse.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum {
    HRP_EV_NONE = 0,    /* nothing paused the parser */
    HRP_EV_HEADERS,     /* final response headers complete */
    HRP_EV_INTERIM,     /* an interim 1xx response ended; continue with the next */
    HRP_EV_COMPLETE     /* the final response ended (DONE or UPGRADED) */
};

#define HRP_DEFAULT_MAX_HEADER (64u * 1024u)
#define HRP_NO_VALUE ((size_t)-1)

static struct http_resp_parser *hrp_of(http_parser *hp)
{
    return (struct http_resp_parser *)hp->data;
}

/* Appends len bytes (may be 0) to the arena. 0 or -ENOMEM. */
static int hrp_arena_put(struct http_resp_parser *p, const char *at, size_t len)
{
    if (p->arena_cap - p->arena_len < len) {
        size_t cap = p->arena_cap ? p->arena_cap : 256;
        while (cap - p->arena_len < len)
            cap *= 2;
        char *n = realloc(p->arena, cap);
        if (!n)
            return -ENOMEM;
        p->arena = n;
        p->arena_cap = cap;
    }
    if (len)
        memcpy(p->arena + p->arena_len, at, len);
    p->arena_len += len;
    return 0;
}

static int hrp_arena_nul(struct http_resp_parser *p)
{
    static const char nul = '\0';
    return hrp_arena_put(p, &nul, 1);
}

/* Terminates the header being collected, giving it an empty value when none came. */
static int hrp_finish_header(struct http_resp_parser *p)
{
    if (p->offs_len == 0)
        return 0;
    if (p->offs[p->offs_len - 1] == HRP_NO_VALUE) {
        if (hrp_arena_nul(p) < 0) /* ends the name */
            return -ENOMEM;
        p->offs[p->offs_len - 1] = p->arena_len;
    }
    return hrp_arena_nul(p); /* ends the value */
}

static void hrp_clear_headers(struct http_resp_parser *p)
{
    free(p->headers);
    p->headers = NULL;
    p->nheaders = 0;
    p->arena_len = 0;
    p->offs_len = 0;
    p->in_value = 0;
}

static int hrp_on_header_field(http_parser *hp, const char *at, size_t len)
{
    struct http_resp_parser *p = hrp_of(hp);
    if (p->state != HTTP_RESP_HEAD)
        return 0; /* trailer fields of a chunked body are ignored */
    if (p->in_value || p->offs_len == 0) {
        if (p->offs_len && hrp_arena_nul(p) < 0)
            goto oom;
        if (p->offs_cap - p->offs_len < 2) {
            size_t cap = p->offs_cap ? p->offs_cap * 2 : 32;
            size_t *n = realloc(p->offs, cap * sizeof *n);
            if (!n)
                goto oom;
            p->offs = n;
            p->offs_cap = cap;
        }
        p->offs[p->offs_len++] = p->arena_len;
        p->offs[p->offs_len++] = HRP_NO_VALUE;
        p->in_value = 0;
    }
    if (hrp_arena_put(p, at, len) < 0)
        goto oom;
    return 0;
oom:
    p->cb_err = -ENOMEM;
    return -1;
}

static int hrp_on_header_value(http_parser *hp, const char *at, size_t len)
{
    struct http_resp_parser *p = hrp_of(hp);
    if (p->state != HTTP_RESP_HEAD)
        return 0;
    if (p->offs_len == 0) { /* http-parser never does this; refuse rather than guess */
        p->cb_err = -EPROTO;
        return -1;
    }
    if (!p->in_value) {
        if (hrp_arena_nul(p) < 0)
            goto oom;
        p->offs[p->offs_len - 1] = p->arena_len;
        p->in_value = 1;
    }
    if (hrp_arena_put(p, at, len) < 0)
        goto oom;
    return 0;
oom:
    p->cb_err = -ENOMEM;
    return -1;
}

/* Builds the pointer array over the arena; trims trailing blanks of values. */
static int hrp_build_headers(struct http_resp_parser *p)
{
    if (hrp_finish_header(p) < 0)
        return -ENOMEM;
    size_t n = p->offs_len / 2;
    free(p->headers);
    p->headers = NULL;
    p->nheaders = 0;
    if (n == 0)
        return 0;
    p->headers = malloc(n * sizeof *p->headers);
    if (!p->headers)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        char *name = p->arena + p->offs[2 * i];
        char *value = p->arena + p->offs[2 * i + 1];
        size_t vl = strlen(value);
        while (vl > 0 && (value[vl - 1] == ' ' || value[vl - 1] == '\t'))
            value[--vl] = '\0';
        p->headers[i].name = name;
        p->headers[i].value = value;
    }
    p->nheaders = n;
    return 0;
}

static int hrp_on_headers_complete(http_parser *hp)
{
    struct http_resp_parser *p = hrp_of(hp);
    int status = (int)hp->status_code;
    int informational = status >= 100 && status < 200;
    if (informational && !(status == 101 && hp->upgrade))
        return 1; /* interim: no body; on_message_complete skips it */
    int r = hrp_build_headers(p);
    if (r < 0) {
        p->cb_err = r;
        return -1;
    }
    p->status = status;
    p->http_minor = (int)hp->http_minor;
    p->state = HTTP_RESP_BODY;
    p->paused_event = HRP_EV_HEADERS;
    http_parser_pause(hp, 1);
    return (p->is_head || informational || status == 204 || status == 304) ? 1 : 0;
}

static int hrp_on_body(http_parser *hp, const char *at, size_t len)
{
    struct http_resp_parser *p = hrp_of(hp);
    p->body_bytes += len;
    if (p->on_body) {
        int r = p->on_body(p->arg, at, len);
        if (r < 0) {
            p->cb_err = r;
            return -1;
        }
    }
    return 0;
}

static int hrp_on_message_complete(http_parser *hp)
{
    struct http_resp_parser *p = hrp_of(hp);
    if (p->state == HTTP_RESP_HEAD) {
        p->paused_event = HRP_EV_INTERIM;
    } else {
        p->keep_alive = http_should_keep_alive(hp) ? 1 : 0;
        p->state = hp->upgrade ? HTTP_RESP_UPGRADED : HTTP_RESP_DONE;
        p->paused_event = HRP_EV_COMPLETE;
    }
    http_parser_pause(hp, 1);
    return 0;
}

static const http_parser_settings hrp_settings = {
    .on_header_field = hrp_on_header_field,
    .on_header_value = hrp_on_header_value,
    .on_headers_complete = hrp_on_headers_complete,
    .on_body = hrp_on_body,
    .on_message_complete = hrp_on_message_complete,
};

static ssize_t hrp_fail(struct http_resp_parser *p, int err)
{
    p->state = HTTP_RESP_ERROR;
    p->err = err;
    return err;
}

/* Maps an http-parser error to our errno. */
static int hrp_map_error(struct http_resp_parser *p, enum http_errno e)
{
    if (p->cb_err)
        return p->cb_err;
    if (e == HPE_HEADER_OVERFLOW)
        return -EMSGSIZE;
    return -EPROTO;
}

static void hrp_start(struct http_resp_parser *p, int is_head)
{
    http_parser_init(&p->hp, HTTP_RESPONSE);
    p->hp.data = p;
    p->state = HTTP_RESP_HEAD;
    p->err = 0;
    p->status = 0;
    p->http_minor = 0;
    p->keep_alive = 0;
    p->is_head = is_head ? 1 : 0;
    p->header_bytes = 0;
    p->body_bytes = 0;
    p->bytes_total = 0;
    p->interim = 0;
    p->paused_event = HRP_EV_NONE;
    p->cb_err = 0;
}

void http_resp_init(struct http_resp_parser *p, size_t max_header_bytes, http_resp_body_fn on_body,
                    void *arg)
{
    memset(p, 0, sizeof *p);
    p->max_header_bytes = max_header_bytes ? max_header_bytes : HRP_DEFAULT_MAX_HEADER;
    p->on_body = on_body;
    p->arg = arg;
    hrp_start(p, 0);
}

void http_resp_free(struct http_resp_parser *p)
{
    free(p->headers);
    free(p->arena);
    free(p->offs);
    p->headers = NULL;
    p->nheaders = 0;
    p->arena = NULL;
    p->arena_len = p->arena_cap = 0;
    p->offs = NULL;
    p->offs_len = p->offs_cap = 0;
    p->in_value = 0;
}

void http_resp_reset(struct http_resp_parser *p, int is_head)
{
    http_resp_free(p);
    hrp_start(p, is_head);
}

ssize_t http_resp_feed(struct http_resp_parser *p, const char *buf, size_t len)
{
    if (p->state == HTTP_RESP_ERROR)
        return p->err;
    if (p->state == HTTP_RESP_DONE || p->state == HTTP_RESP_UPGRADED)
        return 0;
    size_t off = 0;
    while (off < len) {
        size_t chunk = len - off;
        int in_head = p->state == HTTP_RESP_HEAD;
        if (in_head) {
            size_t room = p->max_header_bytes - p->header_bytes;
            if (chunk > room)
                chunk = room;
        }
        p->paused_event = HRP_EV_NONE;
        http_parser_pause(&p->hp, 0);
        size_t n = http_parser_execute(&p->hp, &hrp_settings, buf + off, chunk);
        enum http_errno e = HTTP_PARSER_ERRNO(&p->hp);
        if (n > chunk) /* never happens; keeps the arithmetic below safe */
            return hrp_fail(p, -EPROTO);
        off += n;
        p->bytes_total += n;
        if (in_head)
            p->header_bytes += n;
        if (e == HPE_PAUSED) {
            switch (p->paused_event) {
            case HRP_EV_HEADERS:
            case HRP_EV_COMPLETE:
                return (ssize_t)off;
            case HRP_EV_INTERIM:
                hrp_clear_headers(p);
                p->interim++;
                p->header_bytes = 0;
                continue;
            default:
                return hrp_fail(p, -EPROTO);
            }
        }
        if (e != HPE_OK)
            return hrp_fail(p, hrp_map_error(p, e));
        if (p->state == HTTP_RESP_HEAD && p->header_bytes >= p->max_header_bytes)
            return hrp_fail(p, -EMSGSIZE);
        if (n < chunk) /* http-parser stopped without an event or error */
            return hrp_fail(p, -EPROTO);
    }
    return (ssize_t)off;
}

int http_resp_feed_eof(struct http_resp_parser *p)
{
    if (p->state == HTTP_RESP_ERROR)
        return p->err;
    if (p->state == HTTP_RESP_DONE || p->state == HTTP_RESP_UPGRADED)
        return 0;
    if (p->state == HTTP_RESP_HEAD)
        return (int)hrp_fail(p, -ECONNRESET);
    p->paused_event = HRP_EV_NONE;
    http_parser_pause(&p->hp, 0);
    http_parser_execute(&p->hp, &hrp_settings, NULL, 0);
    if (p->state == HTTP_RESP_DONE) {
        p->keep_alive = 0;
        return 0;
    }
    if (p->cb_err)
        return (int)hrp_fail(p, p->cb_err);
    return (int)hrp_fail(p, -ECONNRESET);
}

const char *http_resp_header(const struct http_resp_parser *p, const char *name)
{
    for (size_t i = 0; i < p->nheaders; i++)
        if (strcasecmp(p->headers[i].name, name) == 0)
            return p->headers[i].value;
    return NULL;
}

const char *http_resp_state_name(enum http_resp_state s)
{
    switch (s) {
    case HTTP_RESP_HEAD: return "head";
    case HTTP_RESP_BODY: return "body";
    case HTTP_RESP_DONE: return "done";
    case HTTP_RESP_UPGRADED: return "upgraded";
    case HTTP_RESP_ERROR: return "error";
    }
    return "?";
}
