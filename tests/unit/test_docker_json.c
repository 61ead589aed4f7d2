/*
 * test_docker_json: the Docker API parsers on responses captured from a real
 * dockerd 20.10 (API 1.41; tests/fixtures/docker/), on malformed and hostile
 * input, and the /events line splitter fed in pieces of every size.
 *
 * Every parse of a fixture runs on a copy placed right before a PROT_NONE page,
 * so reading one byte past len crashes the test.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "agent/docker_json.h"

/* ---- helpers ------------------------------------------------------------ */

/* Reads tests/fixtures/docker/<name> (dir from TETHER_FIXTURES). */
static char *load_fixture(const char *name, size_t *len)
{
    const char *dir = getenv("TETHER_FIXTURES");
    char path[512];
    snprintf(path, sizeof path, "%s/docker/%s", dir ? dir : "tests/fixtures", name);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open fixture %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    buf[n] = '\0';
    *len = (size_t)n;
    return buf;
}

/*
 * A region whose last readable byte is followed by a PROT_NONE page; data
 * placed in it ends exactly at that page.
 */
struct guarded {
    char *map;   /* mmap base */
    size_t size; /* mapping size */
    size_t body; /* readable bytes before the PROT_NONE page */
};

static void guard_init(struct guarded *g, size_t maxlen)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    g->body = (maxlen + page - 1) / page * page;
    g->size = g->body + page;
    g->map = mmap(NULL, g->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(g->map != MAP_FAILED);
    assert_int_equal(mprotect(g->map + g->body, page, PROT_NONE), 0);
}

/* Copies data[0..len) so that data[len] would be the first unreadable byte. */
static char *guard_place(struct guarded *g, const void *data, size_t len)
{
    assert_true(len <= g->body);
    char *p = g->map + g->body - len;
    if (len)
        memcpy(p, data, len);
    return p;
}

static void unguard(struct guarded *g) { munmap(g->map, g->size); }

static void guard(struct guarded *g, const void *data, size_t len, char **out)
{
    guard_init(g, len);
    *out = guard_place(g, data, len);
}

static int parse_list_guarded(const char *s, size_t len, struct docker_list *out)
{
    struct guarded g;
    char *p;
    guard(&g, s, len, &p);
    int rc = docker_parse_list(p, len, out);
    unguard(&g);
    return rc;
}

static int parse_inspect_guarded(const char *s, size_t len, struct docker_inspect *out)
{
    struct guarded g;
    char *p;
    guard(&g, s, len, &p);
    int rc = docker_parse_inspect(p, len, out);
    unguard(&g);
    return rc;
}

static int parse_event_guarded(const char *s, size_t len, struct docker_event *out)
{
    struct guarded g;
    char *p;
    guard(&g, s, len, &p);
    int rc = docker_parse_event(p, len, out);
    unguard(&g);
    return rc;
}

static int inspect_str(const char *s, struct docker_inspect *out)
{
    return parse_inspect_guarded(s, strlen(s), out);
}

static int event_str(const char *s, struct docker_event *out)
{
    return parse_event_guarded(s, strlen(s), out);
}

static int list_str(const char *s, struct docker_list *out)
{
    return parse_list_guarded(s, strlen(s), out);
}

static void assert_double_near(double got, double want, double eps)
{
    if (got < want - eps || got > want + eps)
        fail_msg("got %.9f, want %.9f", got, want);
}

/* ---- list --------------------------------------------------------------- */

static void test_list_fixture(void **state)
{
    size_t len;
    char *buf = load_fixture("list.json", &len);
    struct docker_list l;
    assert_int_equal(parse_list_guarded(buf, len, &l), 0);
    assert_int_equal(l.n, 6);

    /* Newest first, as dockerd sends them. */
    assert_string_equal(l.c[0].id, "18a1b95aa8660b0c29baa5998c0160340a2dfded51e73c715a25cb1697a17d5e");
    assert_string_equal(l.c[0].name, "hjson-renamed");
    assert_string_equal(l.c[0].state, "running");
    assert_int_equal(l.c[0].nlabels, 0);
    assert_string_equal(l.c[1].name, "hjson-oom");
    assert_string_equal(l.c[1].state, "exited");

    struct docker_container *c = &l.c[5];
    assert_string_equal(c->id, "908f79764c00fff235580becbd8e5dd4731f1c1189934e70fadb3f97417e875b");
    assert_string_equal(c->name, "hjson-1");
    assert_string_equal(c->image, "tether-test:busybox");
    assert_string_equal(c->state, "running");
    assert_int_equal(c->nlabels, 2);
    assert_string_equal(c->label_keys[0], "a.b");
    assert_string_equal(c->label_values[0], "c");
    assert_string_equal(c->label_keys[1], "quote");
    assert_string_equal(c->label_values[1], "say \"hi\"");
    docker_list_free(&l);
    assert_int_equal(l.n, 0);
    assert_null(l.c);
    docker_list_free(&l); /* twice is harmless */
    free(buf);
}

static void test_list_empty(void **state)
{
    size_t len;
    char *buf = load_fixture("list_empty.json", &len);
    struct docker_list l;
    assert_int_equal(parse_list_guarded(buf, len, &l), 0);
    assert_int_equal(l.n, 0);
    assert_null(l.c);
    docker_list_free(&l);
    free(buf);
}

static void test_list_optional_fields(void **state)
{
    struct docker_list l;
    /* Only Id: everything else defaults to "" / no labels. Null counts as missing. */
    assert_int_equal(list_str("[{\"Id\":\"abc\"},{\"Id\":\"def\",\"Names\":[],\"Labels\":null,"
                              "\"Image\":null}, {\"Id\":\"x\",\"Names\":[\"noslash\",\"/second\"]}]",
                              &l),
                     0);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.c[0].id, "abc");
    assert_string_equal(l.c[0].name, "");
    assert_string_equal(l.c[0].image, "");
    assert_string_equal(l.c[0].state, "");
    assert_string_equal(l.c[1].name, "");
    assert_string_equal(l.c[2].name, "noslash");
    docker_list_free(&l);
}

static void test_list_malformed(void **state)
{
    static const char *const bad[] = {
        "",
        "not json",
        "{}",                                   /* an object, not an array */
        "[1]",                                  /* element not an object */
        "[{}]",                                 /* Id missing */
        "[{\"Id\":5}]",                         /* Id not a string */
        "[{\"Id\":\"a\"},{\"Names\":[\"/x\"]}]", /* second one lacks Id */
        "[{\"Id\":\"a\",\"Names\":\"/x\"}]",    /* Names not an array */
        "[{\"Id\":\"a\",\"Names\":[\"/x\",3]}]",
        "[{\"Id\":\"a\",\"Labels\":[]}]",
        "[{\"Id\":\"a\",\"Labels\":{\"k\":1}}]",
        "[{\"Id\":\"a\",\"Labels\":{\"k\":\"v\",\"k2\":{}}}]",
        "[{\"Id\":\"a\",\"State\":true}]",
        "[{\"Id\":\"a\\u0000b\"}]",              /* NUL inside a string */
        "[{\"Id\":\"a\"}] x",                   /* trailing garbage */
        "[{\"Id\":\"a\"}][]",
        "[{\"Id\":\"a\"",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct docker_list l;
        int rc = list_str(bad[i], &l);
        if (rc != -EPROTO)
            fail_msg("input %zu (%s): rc %d", i, bad[i], rc);
        assert_int_equal(l.n, 0);
        assert_null(l.c);
        docker_list_free(&l);
    }
    struct docker_list l;
    assert_int_equal(docker_parse_list(NULL, 0, &l), -EPROTO);
}

/* Every proper prefix of a real response is an error, never a crash or leak. */
static void test_list_truncated(void **state)
{
    size_t len;
    char *buf = load_fixture("list.json", &len);
    while (len > 0 && (buf[len - 1] == '\n'))
        len--;
    for (size_t n = 0; n < len; n++) {
        struct docker_list l;
        int rc = parse_list_guarded(buf, n, &l);
        if (rc != -EPROTO)
            fail_msg("prefix %zu: rc %d", n, rc);
    }
    free(buf);
}

/* ---- inspect ------------------------------------------------------------ */

static void test_inspect_running(void **state)
{
    size_t len;
    char *buf = load_fixture("inspect_1.json", &len);
    struct docker_inspect in;
    assert_int_equal(parse_inspect_guarded(buf, len, &in), 0);
    assert_string_equal(in.id, "908f79764c00fff235580becbd8e5dd4731f1c1189934e70fadb3f97417e875b");
    assert_string_equal(in.name, "hjson-1");
    assert_string_equal(in.image, "tether-test:busybox");
    assert_string_equal(in.status, "running");
    assert_string_equal(in.health, "");
    assert_string_equal(in.cgroup_parent, "");
    assert_true(in.running);
    assert_false(in.tty);
    assert_false(in.oom_killed);
    assert_int_equal(in.pid, 6911);
    assert_int_equal(in.exit_code, 0);
    /* 2026-11-21T23:59:27.324112494Z */
    assert_double_near(in.started_at, 1795305567.324112494, 1e-6);
    assert_true(in.finished_at == 0); /* 0001-01-01T00:00:00Z */
    assert_int_equal(in.nlabels, 2);
    assert_string_equal(in.label_keys[0], "a.b");
    assert_string_equal(in.label_values[0], "c");
    assert_string_equal(in.label_keys[1], "quote");
    assert_string_equal(in.label_values[1], "say \"hi\"");
    docker_inspect_free(&in);
    assert_null(in.id);
    docker_inspect_free(&in);
    free(buf);
}

static void test_inspect_exited(void **state)
{
    size_t len;
    char *buf = load_fixture("inspect_exit.json", &len);
    struct docker_inspect in;
    assert_int_equal(parse_inspect_guarded(buf, len, &in), 0);
    assert_string_equal(in.name, "hjson-exit");
    assert_string_equal(in.status, "exited");
    assert_false(in.running);
    assert_int_equal(in.pid, 0);
    assert_int_equal(in.exit_code, 3);
    assert_int_equal(in.nlabels, 0);
    assert_double_near(in.started_at, 1795305567.899418591, 1e-6);
    assert_double_near(in.finished_at, 1795305567.903230864, 1e-6);
    docker_inspect_free(&in);
    free(buf);

    buf = load_fixture("inspect_oom.json", &len);
    assert_int_equal(parse_inspect_guarded(buf, len, &in), 0);
    assert_string_equal(in.name, "hjson-oom");
    assert_true(in.oom_killed);
    assert_int_equal(in.exit_code, 137);
    /* A 7-digit fraction: 2026-11-21T23:59:29.2647143Z */
    assert_double_near(in.started_at, 1795305569.2647143, 1e-6);
    docker_inspect_free(&in);
    free(buf);
}

static void test_inspect_tty_health_cgroup(void **state)
{
    size_t len;
    struct docker_inspect in;
    char *buf = load_fixture("inspect_tty.json", &len);
    assert_int_equal(parse_inspect_guarded(buf, len, &in), 0);
    assert_string_equal(in.name, "hjson-tty");
    assert_true(in.tty);
    assert_int_equal(in.pid, 7128);
    docker_inspect_free(&in);
    free(buf);

    buf = load_fixture("inspect_health.json", &len);
    assert_int_equal(parse_inspect_guarded(buf, len, &in), 0);
    assert_string_equal(in.health, "healthy");
    assert_false(in.tty);
    docker_inspect_free(&in);
    free(buf);

    buf = load_fixture("inspect_cgparent.json", &len);
    assert_int_equal(parse_inspect_guarded(buf, len, &in), 0);
    assert_string_equal(in.name, "hjson-cgp");
    assert_string_equal(in.cgroup_parent, "/hjson-parent");
    docker_inspect_free(&in);
    free(buf);

    buf = load_fixture("inspect_renamed.json", &len);
    assert_int_equal(parse_inspect_guarded(buf, len, &in), 0);
    assert_string_equal(in.name, "hjson-renamed");
    docker_inspect_free(&in);
    free(buf);
}

static void test_inspect_minimal(void **state)
{
    struct docker_inspect in;
    assert_int_equal(inspect_str("{\"Id\":\"abc\"}", &in), 0);
    assert_string_equal(in.id, "abc");
    assert_string_equal(in.name, "");
    assert_string_equal(in.image, "");
    assert_string_equal(in.status, "");
    assert_string_equal(in.health, "");
    assert_string_equal(in.cgroup_parent, "");
    assert_int_equal(in.pid, 0);
    assert_false(in.running);
    assert_true(in.started_at == 0);
    docker_inspect_free(&in);

    assert_int_equal(inspect_str("{\"Id\":\"abc\",\"State\":null,\"Config\":{\"Labels\":null,"
                                 "\"Tty\":null},\"HostConfig\":null}",
                                 &in),
                     0);
    assert_int_equal(in.nlabels, 0);
    docker_inspect_free(&in);
}

static void test_inspect_malformed(void **state)
{
    static const char *const bad[] = {
        "",
        " ",
        "null",
        "[]",
        "{\"Id\":\"a\"",
        "{\"Name\":\"/x\"}",                                  /* no Id */
        "{\"Id\":[]}",
        "{\"Id\":\"a\",\"Name\":1}",
        "{\"Id\":\"a\",\"State\":[]}",
        "{\"Id\":\"a\",\"State\":{\"Pid\":\"12\"}}",
        "{\"Id\":\"a\",\"State\":{\"Pid\":1.5}}",
        "{\"Id\":\"a\",\"State\":{\"Pid\":99999999999}}",     /* out of int range */
        "{\"Id\":\"a\",\"State\":{\"Running\":1}}",
        "{\"Id\":\"a\",\"State\":{\"StartedAt\":12}}",
        "{\"Id\":\"a\",\"State\":{\"StartedAt\":\"yesterday\"}}",
        "{\"Id\":\"a\",\"State\":{\"StartedAt\":\"2026-13-01T00:00:00Z\"}}",
        "{\"Id\":\"a\",\"State\":{\"Health\":\"healthy\"}}",
        "{\"Id\":\"a\",\"Config\":{\"Tty\":\"yes\"}}",
        "{\"Id\":\"a\",\"Config\":{\"Labels\":{\"k\":null}}}",
        "{\"Id\":\"a\",\"Config\":{\"Labels\":\"k=v\"}}",
        "{\"Id\":\"a\",\"Config\":{\"Image\":{}}}",
        "{\"Id\":\"a\",\"HostConfig\":{\"CgroupParent\":false}}",
        "{\"Id\":\"a\"} {\"Id\":\"b\"}",
        "\xff\xfe{}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct docker_inspect in;
        int rc = inspect_str(bad[i], &in);
        if (rc != -EPROTO)
            fail_msg("input %zu (%s): rc %d", i, bad[i], rc);
        assert_null(in.id);
        assert_null(in.label_keys);
    }
    /* A raw NUL byte inside the buffer. */
    static const char nul[] = "{\"Id\":\"a\0b\"}";
    struct docker_inspect in;
    assert_int_equal(parse_inspect_guarded(nul, sizeof nul - 1, &in), -EPROTO);
}

/* Prefixes, and every single-byte corruption of a real inspect response. */
static void test_inspect_truncated_and_mutated(void **state)
{
    size_t len;
    char *buf = load_fixture("inspect_health.json", &len);
    for (size_t n = 0; n + 1 < len; n++) {
        struct docker_inspect in;
        int rc = docker_parse_inspect(buf, n, &in);
        if (rc != -EPROTO)
            fail_msg("prefix %zu: rc %d", n, rc);
    }
    static const char subst[] = { '"', '{', ']', '\\', '0', 'x', '\0' };
    for (size_t i = 0; i < len; i += 7) {
        char save = buf[i];
        for (size_t k = 0; k < sizeof subst; k++) {
            struct docker_inspect in;
            buf[i] = subst[k];
            int rc = docker_parse_inspect(buf, len, &in);
            assert_true(rc == 0 || rc == -EPROTO);
            docker_inspect_free(&in);
        }
        buf[i] = save;
    }
    free(buf);
}

/* Big but valid input parses; absurdly deep nesting and oversized input fail cleanly. */
static void test_inspect_huge(void **state)
{
    size_t big = 2u << 20;
    char *s = malloc(big + 64);
    assert_non_null(s);
    int n = sprintf(s, "{\"Id\":\"a\",\"Config\":{\"Labels\":{\"big\":\"");
    memset(s + n, 'x', big);
    strcpy(s + n + big, "\"}}}");
    struct docker_inspect in;
    assert_int_equal(docker_parse_inspect(s, strlen(s), &in), 0);
    assert_int_equal(strlen(in.label_values[0]), big);
    docker_inspect_free(&in);

    size_t depth = 100000;
    char *deep = malloc(2 * depth + 16);
    assert_non_null(deep);
    size_t p = 0;
    p += (size_t)sprintf(deep, "{\"Id\":\"a\",\"x\":");
    memset(deep + p, '[', depth);
    p += depth;
    memset(deep + p, ']', depth);
    p += depth;
    deep[p++] = '}';
    assert_int_equal(docker_parse_inspect(deep, p, &in), -EPROTO);
    free(deep);
    free(s);

    /* Above DOCKER_JSON_MAX: refused before a byte is read (the pages are never touched). */
    size_t huge = DOCKER_JSON_MAX + 1;
    char *m = mmap(NULL, huge, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    assert_true(m != MAP_FAILED);
    assert_int_equal(docker_parse_inspect(m, huge, &in), -EMSGSIZE);
    struct docker_list l;
    assert_int_equal(docker_parse_list(m, huge, &l), -EMSGSIZE);
    munmap(m, huge);
}

/*
 * Allocation failures inside jansson never crash or leak. jansson reports many
 * of them as syntax errors, so -EPROTO is accepted besides -ENOMEM.
 */
static long alloc_budget; /* allocations left before failing; < 0 = unlimited */

static void *failing_malloc(size_t n)
{
    if (alloc_budget == 0)
        return NULL;
    if (alloc_budget > 0)
        alloc_budget--;
    return malloc(n);
}

static int restore_alloc(void **state)
{
    alloc_budget = -1;
    json_set_alloc_funcs(malloc, free);
    return 0;
}

static void test_inspect_jansson_oom(void **state)
{
    size_t len;
    char *buf = load_fixture("inspect_1.json", &len);
    json_set_alloc_funcs(failing_malloc, free);
    int ok = 0;
    for (long budget = 0; budget < 100000 && !ok; budget++) {
        struct docker_inspect in;
        alloc_budget = budget;
        int rc = docker_parse_inspect(buf, len, &in);
        assert_true(rc == 0 || rc == -ENOMEM || rc == -EPROTO);
        if (rc == 0) {
            assert_string_equal(in.name, "hjson-1");
            ok = 1;
        }
        docker_inspect_free(&in);
    }
    restore_alloc(state);
    assert_true(ok);
    free(buf);
}

/* Hand-made broken variants of real responses (tests/fixtures/docker/malformed_*). */
static void test_malformed_fixtures(void **state)
{
    size_t len;
    char *buf;
    struct docker_list l;
    struct docker_inspect in;
    struct docker_event e;
    char api[16], ver[64];

    buf = load_fixture("malformed_list_names.json", &len);
    assert_int_equal(parse_list_guarded(buf, len, &l), -EPROTO);
    free(buf);
    static const char *const inspects[] = { "malformed_inspect_pid.json", "malformed_inspect_time.json",
                                            "malformed_inspect_truncated.json" };
    for (size_t i = 0; i < 3; i++) {
        buf = load_fixture(inspects[i], &len);
        assert_int_equal(parse_inspect_guarded(buf, len, &in), -EPROTO);
        assert_null(in.id);
        free(buf);
    }
    buf = load_fixture("malformed_event_noaction.json", &len);
    assert_int_equal(parse_event_guarded(buf, len, &e), -EPROTO);
    free(buf);
    buf = load_fixture("malformed_version.json", &len);
    assert_int_equal(docker_parse_version(buf, len, api, sizeof api, ver, sizeof ver), -EPROTO);
    free(buf);
    /* The body of GET /_ping is not JSON at all. */
    buf = load_fixture("ping.txt", &len);
    assert_int_equal(docker_parse_version(buf, len, api, sizeof api, ver, sizeof ver), -EPROTO);
    assert_int_equal(parse_inspect_guarded(buf, len, &in), -EPROTO);
    assert_int_equal(parse_list_guarded(buf, len, &l), -EPROTO);
    free(buf);
    /* A real response handed to the wrong parser. */
    buf = load_fixture("inspect_1.json", &len);
    assert_int_equal(parse_list_guarded(buf, len, &l), -EPROTO);
    assert_int_equal(parse_event_guarded(buf, len, &e), -EPROTO);
    free(buf);
    buf = load_fixture("list.json", &len);
    assert_int_equal(parse_inspect_guarded(buf, len, &in), -EPROTO);
    free(buf);
}

/* ---- time --------------------------------------------------------------- */

static void test_time_parse(void **state)
{
    double t;
#define T(s) docker_time_parse(s, strlen(s), &t)
    assert_int_equal(T("1970-01-01T00:00:00Z"), 0);
    assert_true(t == 0);
    assert_int_equal(T("0001-01-01T00:00:00Z"), 0);
    assert_true(t == 0);
    assert_int_equal(T("2000-03-01T00:00:00Z"), 0);
    assert_true(t == 951868800);
    assert_int_equal(T("2024-02-29T12:34:56.5Z"), 0);
    assert_true(t == 1709210096.5);
    assert_int_equal(T("2024-02-29T12:34:56.500000000000Z"), 0); /* digits past ns ignored */
    assert_true(t == 1709210096.5);
    assert_int_equal(T("2024-02-29T14:34:56.5+02:00"), 0);
    assert_true(t == 1709210096.5);
    assert_int_equal(T("2024-02-29t07:04:56.5-05:30"), 0);
    assert_true(t == 1709210096.5);
    assert_int_equal(T("1969-12-31T23:59:59Z"), 0);
    assert_true(t == -1);
    assert_int_equal(T("2026-11-21T23:59:27.324112494Z"), 0);
    assert_double_near(t, 1795305567.324112494, 1e-6);

    static const char *const bad[] = {
        "", "2024", "2024-02-29", "2024-02-29T12:34:56", "2024-02-29T12:34:56.Z",
        "2023-02-29T00:00:00Z", "2024-00-10T00:00:00Z", "2024-01-32T00:00:00Z",
        "2024-01-01T24:00:00Z", "2024-01-01T00:60:00Z", "2024-01-01T00:00:61Z",
        "2024-01-01T00:00:00ZZ", "2024-01-01T00:00:00+0200", "2024-01-01T00:00:00+24:00",
        "2024-01-01X00:00:00Z", "20a4-01-01T00:00:00Z", "2024-01-01T00:00:00.1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (T(bad[i]) != -EINVAL)
            fail_msg("accepted %s", bad[i]);
    /* len bounds the read: the valid prefix of a longer string is accepted. */
    const char *s = "2024-01-01T00:00:00Zjunk";
    assert_int_equal(docker_time_parse(s, 20, &t), 0);
    assert_true(t == 1704067200);
#undef T
}

/* ---- version ------------------------------------------------------------ */

static void test_version(void **state)
{
    size_t len;
    char *buf = load_fixture("version.json", &len);
    char api[16], ver[64];
    assert_int_equal(docker_parse_version(buf, len, api, sizeof api, ver, sizeof ver), 0);
    assert_string_equal(api, "1.41");
    assert_string_equal(ver, "20.10.24+dfsg1");
    assert_int_equal(docker_parse_version(buf, len, api, sizeof api, NULL, 0), 0);
    assert_string_equal(api, "1.41");
    assert_int_equal(docker_parse_version(buf, len, api, 4, ver, sizeof ver), -ENOSPC);
    assert_string_equal(api, "");
    assert_int_equal(docker_parse_version(buf, len, api, 5, ver, 8), -ENOSPC);
    assert_string_equal(api, "1.41");
    assert_string_equal(ver, "");
    free(buf);

    assert_int_equal(docker_parse_version("{\"ApiVersion\":\"1.24\"}", strlen("{\"ApiVersion\":\"1.24\"}"), api, sizeof api, ver,
                                          sizeof ver),
                     0);
    assert_string_equal(api, "1.24");
    assert_string_equal(ver, "");
    static const char *const bad[] = { "{}", "[]", "{\"ApiVersion\":1.41}", "{\"ApiVersion\":\"1\",\"Version\":2}",
                                       "OK", "" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(docker_parse_version(bad[i], strlen(bad[i]), api, sizeof api, ver, sizeof ver),
                         -EPROTO);
}

/* ---- events ------------------------------------------------------------- */

/* Collected by the splitter callback. */
struct collect {
    size_t n;                     /* events parsed */
    struct docker_event ev[128];  /* the first 128 */
    struct sbuf_like {
        char *data;
        size_t len;
    } text;                       /* every line + '\n', to compare with the input */
    int stop_after;               /* return 1 after this many lines (0 = never) */
    struct guarded g;             /* where each line is parsed (mapped on first use) */
    bool text_only;               /* only record the text, do not parse */
};

static int collect_line(void *arg, const char *line, size_t len)
{
    struct collect *c = arg;
    char *p = realloc(c->text.data, c->text.len + len + 2);
    assert_non_null(p);
    c->text.data = p;
    memcpy(p + c->text.len, line, len);
    c->text.len += len;
    p[c->text.len++] = '\n';
    p[c->text.len] = '\0';
    if (c->n < 128 && !c->text_only) {
        if (!c->g.map)
            guard_init(&c->g, 8192);
        int rc = docker_parse_event(guard_place(&c->g, line, len), len, &c->ev[c->n]);
        if (rc != 0)
            fail_msg("line %zu: rc %d", c->n, rc);
    }
    c->n++;
    if (c->stop_after && (int)c->n == c->stop_after)
        return 1;
    return 0;
}

static void collect_free(struct collect *c)
{
    for (size_t i = 0; i < c->n && i < 128 && !c->text_only; i++)
        docker_event_free(&c->ev[i]);
    free(c->text.data);
    if (c->g.map)
        unguard(&c->g);
    memset(c, 0, sizeof *c);
}

static const struct docker_event *find_event(const struct collect *c, const char *action,
                                             const char *name)
{
    for (size_t i = 0; i < c->n && i < 128; i++)
        if (strcmp(c->ev[i].action, action) == 0 && strcmp(c->ev[i].name, name) == 0)
            return &c->ev[i];
    fail_msg("no %s event for %s", action, name);
    return NULL;
}

static void test_events_fixture(void **state)
{
    size_t len;
    char *buf = load_fixture("events.jsonl", &len);
    struct docker_stream s;
    struct collect c = { 0 };
    docker_stream_init(&s, 0);
    assert_int_equal(docker_stream_feed(&s, buf, len, collect_line, &c), 0);
    assert_int_equal(c.n, 66);
    assert_int_equal(s.lines, 66);
    assert_int_equal(s.len, 0);

    const struct docker_event *e = &c.ev[0];
    assert_string_equal(e->type, "container");
    assert_string_equal(e->action, "create");
    assert_string_equal(e->detail, "");
    assert_string_equal(e->id, "908f79764c00fff235580becbd8e5dd4731f1c1189934e70fadb3f97417e875b");
    assert_string_equal(e->name, "hjson-1");
    assert_string_equal(e->image, "tether-test:busybox");
    assert_string_equal(e->old_name, "");
    assert_true(e->time_nano == INT64_C(1795305566927478733));
    assert_false(e->has_exit_code);

    e = &c.ev[1]; /* a network event: Actor.ID is the network, name the network's */
    assert_string_equal(e->type, "network");
    assert_string_equal(e->action, "connect");
    assert_string_equal(e->id, "ea6e993a5cd81a5c9686a4dd079cadb01deb97f1e04ad96014d9a3f8ff4ecadb");
    assert_string_equal(e->name, "bridge");
    assert_string_equal(e->image, "");

    e = find_event(&c, "die", "hjson-exit");
    assert_true(e->has_exit_code);
    assert_int_equal(e->exit_code, 3);
    e = find_event(&c, "die", "hjson-oom");
    assert_true(e->has_exit_code);
    assert_int_equal(e->exit_code, 137);
    e = find_event(&c, "oom", "hjson-oom");
    assert_string_equal(e->id, "1f2e2559c3c1f2d485e220569aeceb98d7e566fa487a0238258d7b553465fe26");
    e = find_event(&c, "rename", "hjson-renamed");
    assert_string_equal(e->old_name, "hjson-ren");
    e = find_event(&c, "health_status", "hjson-health");
    assert_string_equal(e->detail, "healthy");
    assert_true(e->time_nano > INT64_C(1795305566000000000));
    e = find_event(&c, "exec_create", "hjson-1");
    assert_string_equal(e->detail, "true"); /* "exec_create: true " trimmed */
    e = find_event(&c, "exec_start", "hjson-health");
    assert_string_equal(e->detail, "/bin/sh -c true");
    e = find_event(&c, "destroy", "hjson-health");
    assert_string_equal(e->type, "container");
    find_event(&c, "start", "hjson-tty");
    find_event(&c, "stop", "hjson-renamed");
    find_event(&c, "kill", "hjson-health");

    collect_free(&c);
    docker_stream_free(&s);
    free(buf);
}

static void test_event_fallbacks(void **state)
{
    struct docker_event e;
    /* Engine before API 1.22: status/id/from/time only. */
    assert_int_equal(event_str("{\"status\":\"start\",\"id\":\"abc\",\"from\":\"busybox\",\"time\":1461943101}",
                               &e),
                     0);
    assert_string_equal(e.type, "");
    assert_string_equal(e.action, "start");
    assert_string_equal(e.id, "abc");
    assert_string_equal(e.image, "busybox");
    assert_string_equal(e.name, "");
    assert_true(e.time_nano == INT64_C(1461943101000000000));
    docker_event_free(&e);

    /* Action wins over status; Actor.ID over id; a fractional time. */
    assert_int_equal(event_str("{\"status\":\"old\",\"Action\":\"health_status:unhealthy\",\"id\":\"x\","
                               "\"Actor\":{\"ID\":\"y\",\"Attributes\":{\"exitCode\":\"oops\"}},"
                               "\"time\":1.5}",
                               &e),
                     0);
    assert_string_equal(e.action, "health_status");
    assert_string_equal(e.detail, "unhealthy");
    assert_string_equal(e.id, "y");
    assert_false(e.has_exit_code);
    assert_true(e.time_nano == INT64_C(1500000000));
    docker_event_free(&e);

    /* Only an action; colon at the very end; negative exit code. */
    assert_int_equal(event_str("{\"Action\":\"exec_die:\",\"Actor\":{\"Attributes\":{\"exitCode\":\"-1\"}}}", &e), 0);
    assert_string_equal(e.action, "exec_die");
    assert_string_equal(e.detail, "");
    assert_string_equal(e.id, "");
    assert_true(e.has_exit_code);
    assert_int_equal(e.exit_code, -1);
    assert_true(e.time_nano == 0);
    docker_event_free(&e);
}

static void test_event_malformed(void **state)
{
    static const char *const bad[] = {
        "",
        "{}",                                              /* no Action, no status */
        "[]",
        "\"start\"",
        "{\"Action\":5}",
        "{\"Action\":\"start\",\"Type\":1}",
        "{\"Action\":\"start\",\"id\":[]}",
        "{\"Action\":\"start\",\"Actor\":\"x\"}",
        "{\"Action\":\"start\",\"Actor\":{\"ID\":1}}",
        "{\"Action\":\"start\",\"Actor\":{\"Attributes\":[]}}",
        "{\"Action\":\"start\",\"Actor\":{\"Attributes\":{\"name\":7}}}",
        "{\"Action\":\"die\",\"Actor\":{\"Attributes\":{\"exitCode\":3}}}",
        "{\"Action\":\"start\",\"timeNano\":\"1\"}",
        "{\"Action\":\"start\",\"time\":1e300}",
        "{\"Action\":\"start\",\"time\":99999999999999}",  /* * 1e9 overflows int64 */
        "{\"Action\":\"start\"}\n{\"Action\":\"stop\"}",   /* two lines at once */
        "{\"Action\":\"start\"",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct docker_event e;
        int rc = event_str(bad[i], &e);
        if (rc != -EPROTO)
            fail_msg("input %zu (%s): rc %d", i, bad[i], rc);
        assert_null(e.action);
        docker_event_free(&e);
    }
}

/* ---- stream splitter ---------------------------------------------------- */

/* The events file fed in pieces of every size from 1 to 600 bytes, and a few larger. */
static void test_stream_pieces(void **state)
{
    size_t len;
    char *buf = load_fixture("events.jsonl", &len);
    struct guarded g;
    guard_init(&g, len);
    size_t sizes[620], nsizes = 0;
    for (size_t k = 1; k <= 600; k++)
        sizes[nsizes++] = k;
    sizes[nsizes++] = 4095;
    sizes[nsizes++] = 4096;
    sizes[nsizes++] = len - 1;
    sizes[nsizes++] = len;
    for (size_t i = 0; i < nsizes; i++) {
        size_t k = sizes[i];
        struct docker_stream s;
        struct collect c = { .text_only = true };
        docker_stream_init(&s, 4096);
        for (size_t off = 0; off < len; off += k) {
            size_t n = len - off < k ? len - off : k;
            char *p = guard_place(&g, buf + off, n);
            assert_int_equal(docker_stream_feed(&s, p, n, collect_line, &c), 0);
        }
        assert_int_equal(c.n, 66);
        assert_int_equal(c.text.len, len);
        assert_memory_equal(c.text.data, buf, len);
        assert_int_equal(s.dropped, 0);
        assert_true(s.cap <= 4096);
        collect_free(&c);
        docker_stream_free(&s);
    }
    unguard(&g);
    free(buf);
}

/* Lines of raw text, for splitter tests that do not need JSON. */
struct lines {
    int n;          /* lines seen */
    char got[8][64]; /* the first 8, truncated to 63 bytes */
};

static int lines_cb(void *arg, const char *line, size_t len)
{
    struct lines *l = arg;
    if (l->n < 8) {
        size_t m = len < 63 ? len : 63;
        memcpy(l->got[l->n], line, m);
        l->got[l->n][m] = '\0';
    }
    l->n++;
    return 0;
}

static void test_stream_oversized(void **state)
{
    /* "short\n" + 300 x + "\n" + "after\n" + exactly-max line. */
    char in[1024];
    size_t n = 0;
    n += (size_t)sprintf(in, "short\n");
    memset(in + n, 'x', 300);
    n += 300;
    in[n++] = '\n';
    n += (size_t)sprintf(in + n, "after\n");
    memset(in + n, 'y', 100);
    n += 100;
    in[n++] = '\n';

    for (size_t k = 1; k <= n; k++) {
        struct docker_stream s;
        struct lines l = { 0 };
        int saw_msgsize = 0;
        docker_stream_init(&s, 100);
        for (size_t off = 0; off < n; off += k) {
            size_t m = n - off < k ? n - off : k;
            int rc = docker_stream_feed(&s, in + off, m, lines_cb, &l);
            assert_true(rc == 0 || rc == -EMSGSIZE);
            saw_msgsize |= rc == -EMSGSIZE;
        }
        assert_true(saw_msgsize);
        assert_int_equal(l.n, 3);
        assert_string_equal(l.got[0], "short");
        assert_string_equal(l.got[1], "after");
        assert_int_equal(strlen(l.got[2]), 63); /* the 100-byte line (truncated copy) */
        assert_int_equal(s.dropped, 1);
        assert_int_equal(s.lines, 3);
        assert_false(s.discarding);
        assert_true(s.cap <= 100);
        docker_stream_free(&s);
    }
}

static void test_stream_details(void **state)
{
    struct docker_stream s;
    struct lines l = { 0 };
    docker_stream_init(&s, 64);
    /* CRLF, blank lines, and a partial line kept across feeds. */
    const char *a = "\n\r\none\r\n\ntw";
    assert_int_equal(docker_stream_feed(&s, a, strlen(a), lines_cb, &l), 0);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.got[0], "one");
    assert_int_equal(s.len, 2);
    assert_int_equal(docker_stream_feed(&s, "o", 1, lines_cb, &l), 0);
    assert_int_equal(docker_stream_feed(&s, "\n", 1, lines_cb, &l), 0);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.got[1], "two");
    assert_int_equal(docker_stream_feed(&s, "", 0, lines_cb, &l), 0);

    /* Reset forgets a partial line. */
    assert_int_equal(docker_stream_feed(&s, "junk", 4, lines_cb, &l), 0);
    docker_stream_reset(&s);
    assert_int_equal(docker_stream_feed(&s, "three\n", 6, lines_cb, &l), 0);
    assert_string_equal(l.got[2], "three");

    /* An oversized line at the end of a feed: dropped up to its '\n' in a later feed. */
    char big[200];
    memset(big, 'z', sizeof big);
    assert_int_equal(docker_stream_feed(&s, big, sizeof big, lines_cb, &l), -EMSGSIZE);
    assert_true(s.discarding);
    assert_int_equal(docker_stream_feed(&s, big, sizeof big, lines_cb, &l), 0);
    assert_int_equal(docker_stream_feed(&s, "zz\nfour\n", 8, lines_cb, &l), 0);
    assert_int_equal(l.n, 4);
    assert_string_equal(l.got[3], "four");
    assert_int_equal(s.dropped, 1);
    docker_stream_free(&s);
    docker_stream_free(&s);

    /* A callback's non-zero return stops the feed and is returned. */
    size_t len;
    char *buf = load_fixture("events.jsonl", &len);
    struct collect c = { 0 };
    c.stop_after = 3;
    docker_stream_init(&s, 0);
    assert_int_equal(docker_stream_feed(&s, buf, len, collect_line, &c), 1);
    assert_int_equal(c.n, 3);
    collect_free(&c);
    docker_stream_free(&s);
    free(buf);
}

int main(void)
{
    alloc_budget = -1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list_fixture),
        cmocka_unit_test(test_list_empty),
        cmocka_unit_test(test_list_optional_fields),
        cmocka_unit_test(test_list_malformed),
        cmocka_unit_test(test_list_truncated),
        cmocka_unit_test(test_inspect_running),
        cmocka_unit_test(test_inspect_exited),
        cmocka_unit_test(test_inspect_tty_health_cgroup),
        cmocka_unit_test(test_inspect_minimal),
        cmocka_unit_test(test_inspect_malformed),
        cmocka_unit_test(test_inspect_truncated_and_mutated),
        cmocka_unit_test(test_inspect_huge),
        cmocka_unit_test_teardown(test_inspect_jansson_oom, restore_alloc),
        cmocka_unit_test(test_malformed_fixtures),
        cmocka_unit_test(test_time_parse),
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_events_fixture),
        cmocka_unit_test(test_event_fallbacks),
        cmocka_unit_test(test_event_malformed),
        cmocka_unit_test(test_stream_pieces),
        cmocka_unit_test(test_stream_oversized),
        cmocka_unit_test(test_stream_details),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
