/*
 * fuzz_http_response: libFuzzer harness for the HTTP/1.1 response parser
 * (src/core/http_response_parse.c).
 *
 * The first input byte chooses how the rest is cut into pieces (1..N bytes,
 * varying from piece to piece), whether the request was a HEAD and how small
 * the header limit is; the rest is fed piece by piece the way a socket would
 * deliver it, followed by EOF. Responses that follow a complete one are parsed
 * too (keep-alive), so pipelined input reaches the reset path. The parser must
 * never crash, hang, leak or read outside the piece it is given (each piece is
 * copied into its own exact-size heap block so ASan sees any over-read).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/http_response_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile unsigned fuzz_sink; /* keeps the body checksum from being optimised away */

/* Touches every body byte so an out-of-bounds piece is noticed. */
static int fuzz_body(void *arg, const char *buf, size_t len)
{
    unsigned *sum = arg;
    for (size_t i = 0; i < len; i++)
        *sum += (unsigned char)buf[i];
    return 0;
}

static void fuzz_headers(const struct http_resp_parser *p)
{
    for (size_t i = 0; i < p->nheaders; i++)
        if (strlen(p->headers[i].name) + strlen(p->headers[i].value) == (size_t)-1)
            abort();
    (void)http_resp_header(p, "content-type");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t ctl = data[0];
    const char *in = (const char *)data + 1;
    size_t len = size - 1;
    unsigned step = (ctl & 0x0f) + 1;            /* 1..16 byte pieces, 16 = larger */
    int is_head = (ctl & 0x10) != 0;
    size_t max_hdr = (ctl & 0x20) ? 64 : 0;      /* a tiny limit or the default */
    unsigned sum = 0;
    int responses = 0;

    struct http_resp_parser p;
    http_resp_init(&p, max_hdr, fuzz_body, &sum);
    http_resp_reset(&p, is_head);
    size_t off = 0;
    unsigned k = 0;
    while (off < len) {
        size_t n = step == 16 ? 4096 : step + (k++ % 3);
        if (n > len - off)
            n = len - off;
        char *piece = malloc(n);
        if (!piece)
            break;
        memcpy(piece, in + off, n);
        size_t used = 0;
        int stop = 0;
        while (used < n) {
            enum http_resp_state before = p.state;
            ssize_t r = http_resp_feed(&p, piece + used, n - used);
            if (r < 0) {
                stop = 1;
                break;
            }
            used += (size_t)r;
            if (p.state == HTTP_RESP_BODY && before == HTTP_RESP_HEAD)
                fuzz_headers(&p);
            if (p.state == HTTP_RESP_UPGRADED) {
                stop = 1; /* the rest is a raw stream */
                break;
            }
            if (p.state == HTTP_RESP_DONE) {
                if (!p.keep_alive || ++responses > 64) {
                    stop = 1;
                    break;
                }
                http_resp_reset(&p, is_head);
                continue;
            }
            if (r == 0 && p.state == before)
                abort(); /* the parser promised progress */
        }
        free(piece);
        off += used;
        if (stop)
            break;
    }
    if (http_resp_feed_eof(&p) == 0 && p.state == HTTP_RESP_DONE)
        fuzz_headers(&p);
    http_resp_free(&p);
    fuzz_sink = sum;
    return 0;
}
