/*
 * fuzz_docker_json: libFuzzer harness for the Docker API parsers. Each input
 * goes to all four parsers and the RFC 3339 time parser as one document, then
 * through the /events line splitter in pieces whose sizes come from the input
 * itself, with every complete line parsed as an event. Results are checked
 * against the documented contracts (error codes, no NULL strings on success);
 * ASan/UBSan and LeakSanitizer catch over-reads and leaks.
 *
 * Corpus: fuzz/corpus/docker_json/ (real dockerd responses and broken ones).
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/docker_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond)
{
    if (!cond)
        abort();
}

static int ok_rc(int rc) { return rc == 0 || rc == -EPROTO || rc == -ENOMEM || rc == -EMSGSIZE; }

/* Splitter callback: parses the line as an event. */
static int on_line(void *arg, const char *line, size_t len)
{
    size_t *lines = arg;
    struct docker_event ev;
    check(len > 0);
    int rc = docker_parse_event(line, len, &ev);
    check(ok_rc(rc));
    if (rc == 0)
        check(ev.type && ev.action && ev.detail && ev.id && ev.name && ev.image && ev.old_name);
    docker_event_free(&ev);
    (*lines)++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A private copy of exactly `size` bytes, so ASan sees any over-read. */
    char *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    if (size)
        memcpy(buf, data, size);

    struct docker_list list;
    int rc = docker_parse_list(buf, size, &list);
    check(ok_rc(rc));
    if (rc == 0)
        for (size_t i = 0; i < list.n; i++)
            check(list.c[i].id && list.c[i].name && list.c[i].image && list.c[i].state);
    else
        check(list.n == 0 && list.c == NULL);
    docker_list_free(&list);

    struct docker_inspect ins;
    rc = docker_parse_inspect(buf, size, &ins);
    check(ok_rc(rc));
    if (rc == 0)
        check(ins.id && ins.name && ins.image && ins.status && ins.health && ins.cgroup_parent &&
              (ins.nlabels == 0 || (ins.label_keys && ins.label_values)));
    docker_inspect_free(&ins);

    struct docker_event ev;
    rc = docker_parse_event(buf, size, &ev);
    check(ok_rc(rc));
    docker_event_free(&ev);

    char api[8], ver[32];
    rc = docker_parse_version(buf, size, api, sizeof api, ver, sizeof ver);
    check(ok_rc(rc) || rc == -ENOSPC);
    if (rc == 0)
        check(strlen(api) < sizeof api && strlen(ver) < sizeof ver);

    double t;
    rc = docker_time_parse(buf, size, &t);
    check(rc == 0 || rc == -EINVAL);

    /* The splitter: max_line and piece sizes from the first bytes. */
    if (size >= 2) {
        struct docker_stream s;
        size_t lines = 0, off = 2, piece = (size_t)data[1] % 64 + 1;
        docker_stream_init(&s, (size_t)data[0] * 4 + 1);
        while (off < size) {
            size_t n = size - off < piece ? size - off : piece;
            rc = docker_stream_feed(&s, buf + off, n, on_line, &lines);
            check(rc == 0 || rc == -EMSGSIZE || rc == -ENOMEM);
            check(s.len <= s.max_line);
            off += n;
            piece = piece * 7 % 97 + 1;
        }
        check(s.lines == lines);
        docker_stream_free(&s);
    }
    free(buf);
    return 0;
}
