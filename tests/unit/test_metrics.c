/*
 * test_metrics: the self-metrics registry renders exact text (counters,
 * labelled gauges with escaping, histograms with cumulative buckets), keeps
 * registration and creation order, removes children, keeps child pointers
 * stable across hash growth, rejects bad registrations, and produces a page
 * promtool accepts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/metrics.h"
#include "core/sbuf.h"

static char *render(const struct metrics *m)
{
    struct sbuf b;
    sbuf_init(&b);
    assert_int_equal(metrics_render(m, &b), 0);
    char *s = strdup(b.data);
    sbuf_free(&b);
    return s;
}

static void check_render(const struct metrics *m, const char *want)
{
    char *got = render(m);
    assert_string_equal(got, want);
    free(got);
}

static void test_counter_and_gauge(void **state)
{
    struct metrics *m = metrics_new();
    assert_non_null(m);
    struct mchild *c = metrics_counter(m, "tether_scrapes_total", "Scrapes served.");
    struct mchild *g = metrics_gauge(m, "tether_containers", "Containers known.");
    assert_non_null(c);
    assert_non_null(g);
    mchild_inc(c);
    mchild_inc(c);
    mchild_add(c, 0.5);
    mchild_add(c, -3);   /* counters never go down */
    mchild_add(c, NAN);  /* nor become NaN */
    mchild_set(g, 7);
    mchild_add(g, -2);
    assert_true(mchild_value(c) == 2.5);
    assert_true(mchild_value(g) == 5);
    check_render(m, "# HELP tether_scrapes_total Scrapes served.\n"
                    "# TYPE tether_scrapes_total counter\n"
                    "tether_scrapes_total 2.5\n"
                    "# HELP tether_containers Containers known.\n"
                    "# TYPE tether_containers gauge\n"
                    "tether_containers 5\n");
    /* Registering again finds the same family and child. */
    assert_ptr_equal(metrics_counter(m, "tether_scrapes_total", "Scrapes served."), c);
    metrics_free(m);
}

static void test_labels_and_escaping(void **state)
{
    struct metrics *m = metrics_new();
    static const char *const names[] = { "container", "op", NULL };
    struct mfamily *f = metrics_family(m, "tether_ops_total", "Ops by \\ container\nand op.", METRIC_COUNTER,
                                       names, NULL, 0);
    assert_non_null(f);
    const char *v1[] = { "we\"ird\\na\nme", "get" };
    const char *v2[] = { "plain", NULL }; /* NULL value means "" */
    struct mchild *a = mfamily_child(f, v1);
    struct mchild *b = mfamily_child(f, v2);
    assert_non_null(a);
    assert_non_null(b);
    assert_ptr_not_equal(a, b);
    assert_ptr_equal(mfamily_child(f, v1), a);
    const char *v2b[] = { "plain", "" };
    assert_ptr_equal(mfamily_child(f, v2b), b);
    mchild_add(a, 3);
    mchild_inc(b);
    assert_null(mfamily_child(f, NULL)); /* labels required */
    check_render(m, "# HELP tether_ops_total Ops by \\\\ container\\nand op.\n"
                    "# TYPE tether_ops_total counter\n"
                    "tether_ops_total{container=\"we\\\"ird\\\\na\\nme\",op=\"get\"} 3\n"
                    "tether_ops_total{container=\"plain\",op=\"\"} 1\n");
    metrics_free(m);
}

static void test_histogram(void **state)
{
    struct metrics *m = metrics_new();
    static const double bounds[] = { 0.125, 1, 10, INFINITY }; /* trailing +Inf is implicit */
    static const char *const names[] = { "op", NULL };
    struct mfamily *f = metrics_family(m, "tether_lat_seconds", "Latency.", METRIC_HISTOGRAM, names, bounds, 4);
    assert_non_null(f);
    struct mchild *h = mfamily_child(f, (const char *const[]){ "get" });
    mchild_observe(h, 0.0625);
    mchild_observe(h, 0.125); /* upper bounds are inclusive */
    mchild_observe(h, 0.5);
    mchild_observe(h, 4);
    mchild_observe(h, 32);
    mchild_inc(h);            /* ignored on a histogram */
    assert_int_equal(mchild_count(h), 5);
    struct mchild *e = mfamily_child(f, (const char *const[]){ "set" });
    assert_non_null(e);
    check_render(m, "# HELP tether_lat_seconds Latency.\n"
                    "# TYPE tether_lat_seconds histogram\n"
                    "tether_lat_seconds_bucket{op=\"get\",le=\"0.125\"} 2\n"
                    "tether_lat_seconds_bucket{op=\"get\",le=\"1\"} 3\n"
                    "tether_lat_seconds_bucket{op=\"get\",le=\"10\"} 4\n"
                    "tether_lat_seconds_bucket{op=\"get\",le=\"+Inf\"} 5\n"
                    "tether_lat_seconds_sum{op=\"get\"} 36.6875\n"
                    "tether_lat_seconds_count{op=\"get\"} 5\n"
                    "tether_lat_seconds_bucket{op=\"set\",le=\"0.125\"} 0\n"
                    "tether_lat_seconds_bucket{op=\"set\",le=\"1\"} 0\n"
                    "tether_lat_seconds_bucket{op=\"set\",le=\"10\"} 0\n"
                    "tether_lat_seconds_bucket{op=\"set\",le=\"+Inf\"} 0\n"
                    "tether_lat_seconds_sum{op=\"set\"} 0\n"
                    "tether_lat_seconds_count{op=\"set\"} 0\n");
    metrics_free(m);
}

static void test_histogram_no_labels_no_buckets(void **state)
{
    struct metrics *m = metrics_new();
    struct mchild *h = metrics_histogram(m, "t_size_bytes", "Sizes.", NULL, 0);
    assert_non_null(h);
    mchild_observe(h, 3);
    mchild_observe(h, NAN); /* counted, lands only in +Inf, sum becomes NaN (as Go's client) */
    check_render(m, "# HELP t_size_bytes Sizes.\n"
                    "# TYPE t_size_bytes histogram\n"
                    "t_size_bytes_bucket{le=\"+Inf\"} 2\n"
                    "t_size_bytes_sum NaN\n"
                    "t_size_bytes_count 2\n");
    metrics_free(m);
}

static void test_order_and_empty_families(void **state)
{
    struct metrics *m = metrics_new();
    static const char *const names[] = { "id", NULL };
    struct mfamily *z = metrics_family(m, "z_gauge", "Z.", METRIC_GAUGE, names, NULL, 0);
    struct mfamily *empty = metrics_family(m, "empty_gauge", "Nothing.", METRIC_GAUGE, names, NULL, 0);
    struct mchild *a = metrics_gauge(m, "a_gauge", NULL);
    assert_non_null(z);
    assert_non_null(empty);
    mchild_set(mfamily_child(z, (const char *const[]){ "2" }), 2);
    mchild_set(mfamily_child(z, (const char *const[]){ "1" }), 1);
    mchild_set(a, -0.5);
    check_render(m, "# HELP z_gauge Z.\n"
                    "# TYPE z_gauge gauge\n"
                    "z_gauge{id=\"2\"} 2\n"
                    "z_gauge{id=\"1\"} 1\n"
                    "# TYPE a_gauge gauge\n"
                    "a_gauge -0.5\n");
    metrics_free(m);
}

static void test_remove(void **state)
{
    struct metrics *m = metrics_new();
    static const char *const names[] = { "id", NULL };
    struct mfamily *f = metrics_family(m, "c_mem_bytes", "Mem.", METRIC_GAUGE, names, NULL, 0);
    mchild_set(mfamily_child(f, (const char *const[]){ "a" }), 1);
    mchild_set(mfamily_child(f, (const char *const[]){ "b" }), 2);
    mchild_set(mfamily_child(f, (const char *const[]){ "c" }), 3);
    assert_int_equal(mfamily_size(f), 3);
    assert_int_equal(mfamily_remove(f, (const char *const[]){ "b" }), 0);
    assert_int_equal(mfamily_remove(f, (const char *const[]){ "b" }), -ENOENT);
    assert_int_equal(mfamily_remove(f, (const char *const[]){ "zz" }), -ENOENT);
    assert_int_equal(mfamily_size(f), 2);
    check_render(m, "# HELP c_mem_bytes Mem.\n# TYPE c_mem_bytes gauge\n"
                    "c_mem_bytes{id=\"a\"} 1\nc_mem_bytes{id=\"c\"} 3\n");
    /* Re-created after removal: a fresh child at zero, at the end of the order. */
    struct mchild *b = mfamily_child(f, (const char *const[]){ "b" });
    assert_true(mchild_value(b) == 0);
    assert_int_equal(mfamily_remove(f, (const char *const[]){ "a" }), 0);
    assert_int_equal(mfamily_remove(f, (const char *const[]){ "c" }), 0);
    check_render(m, "# HELP c_mem_bytes Mem.\n# TYPE c_mem_bytes gauge\nc_mem_bytes{id=\"b\"} 0\n");
    mfamily_clear(f);
    assert_int_equal(mfamily_size(f), 0);
    check_render(m, "");
    mchild_set(mfamily_child(f, (const char *const[]){ "d" }), 4);
    check_render(m, "# HELP c_mem_bytes Mem.\n# TYPE c_mem_bytes gauge\nc_mem_bytes{id=\"d\"} 4\n");
    metrics_free(m);
}

/* Thousands of children: pointers stay valid across hash growth and removals. */
static void test_many_children_stable(void **state)
{
    enum { N = 3000 };
    struct metrics *m = metrics_new();
    static const char *const names[] = { "target", "kind", NULL };
    struct mfamily *f = metrics_family(m, "hub_up", "Up.", METRIC_GAUGE, names, NULL, 0);
    struct mchild **kids = calloc(N, sizeof *kids);
    char id[32];
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof id, "host%d:9100", i);
        kids[i] = mfamily_child(f, (const char *const[]){ id, i % 2 ? "odd" : "even" });
        assert_non_null(kids[i]);
        mchild_set(kids[i], i);
    }
    assert_int_equal(mfamily_size(f), N);
    for (int i = 0; i < N; i += 2) {
        snprintf(id, sizeof id, "host%d:9100", i);
        assert_int_equal(mfamily_remove(f, (const char *const[]){ id, "even" }), 0);
    }
    for (int i = 1; i < N; i += 2) {
        snprintf(id, sizeof id, "host%d:9100", i);
        assert_ptr_equal(mfamily_child(f, (const char *const[]){ id, "odd" }), kids[i]);
        assert_true(mchild_value(kids[i]) == i);
    }
    assert_int_equal(mfamily_size(f), N / 2);
    char *page = render(m);
    size_t lines = 0;
    for (char *p = page; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 2 + N / 2);
    free(page);
    free(kids);
    metrics_free(m);
}

static void test_bad_registrations(void **state)
{
    struct metrics *m = metrics_new();
    static const char *const le[] = { "le", NULL };
    static const char *const reserved[] = { "__name", NULL };
    static const char *const dup[] = { "a", "a", NULL };
    static const char *const bad[] = { "a-b", NULL };
    static const double unsorted[] = { 1, 0.5 };
    static const double nan_bucket[] = { NAN };
    assert_null(metrics_family(m, "1bad", "x", METRIC_GAUGE, NULL, NULL, 0));
    assert_null(metrics_family(m, "", "x", METRIC_GAUGE, NULL, NULL, 0));
    assert_null(metrics_family(m, "h", "x", METRIC_HISTOGRAM, le, NULL, 0));
    assert_null(metrics_family(m, "g", "x", METRIC_GAUGE, reserved, NULL, 0));
    assert_null(metrics_family(m, "g", "x", METRIC_GAUGE, dup, NULL, 0));
    assert_null(metrics_family(m, "g", "x", METRIC_GAUGE, bad, NULL, 0));
    assert_null(metrics_family(m, "h", "x", METRIC_HISTOGRAM, NULL, unsorted, 2));
    assert_null(metrics_family(m, "h", "x", METRIC_HISTOGRAM, NULL, nan_bucket, 1));
    assert_null(metrics_family(m, "h", "x", (enum metric_type)42, NULL, NULL, 0));
    /* "le" is an ordinary label for non-histograms. */
    assert_non_null(metrics_family(m, "g_le", "x", METRIC_GAUGE, le, NULL, 0));
    /* Same name, different type or labels or buckets: refused. */
    assert_non_null(metrics_family(m, "x_total", "x", METRIC_COUNTER, NULL, NULL, 0));
    assert_null(metrics_family(m, "x_total", "x", METRIC_GAUGE, NULL, NULL, 0));
    assert_null(metrics_family(m, "x_total", "x", METRIC_COUNTER, le, NULL, 0));
    static const double b1[] = { 1, 2 }, b2[] = { 1, 3 };
    struct mfamily *h = metrics_family(m, "h_seconds", "x", METRIC_HISTOGRAM, NULL, b1, 2);
    assert_non_null(h);
    assert_ptr_equal(metrics_family(m, "h_seconds", "x", METRIC_HISTOGRAM, NULL, b1, 2), h);
    assert_null(metrics_family(m, "h_seconds", "x", METRIC_HISTOGRAM, NULL, b2, 2));
    /* Everything is NULL-safe. */
    assert_null(mfamily_child(NULL, NULL));
    mchild_inc(NULL);
    mchild_add(NULL, 1);
    mchild_set(NULL, 1);
    mchild_observe(NULL, 1);
    assert_true(mchild_value(NULL) == 0);
    assert_int_equal(mfamily_remove(NULL, NULL), -ENOENT);
    mfamily_clear(NULL);
    metrics_free(NULL);
    metrics_free(m);
}

/* Writes text to a temp file and runs promtool check metrics on it; returns its exit code. */
static int promtool_check(const char *text)
{
    char path[] = "/tmp/test_metrics_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t len = strlen(text);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "promtool check metrics < %s 2>&1", path);
    int st = system(cmd);
    unlink(path);
    assert_true(WIFEXITED(st));
    return WEXITSTATUS(st);
}

static void test_promtool(void **state)
{
    if (access("/usr/bin/promtool", X_OK) != 0) {
        skip();
        return;
    }
    struct metrics *m = metrics_new();
    mchild_inc(metrics_counter(m, "tether_scrapes_total", "Scrapes served."));
    static const char *const names[] = { "path", NULL };
    struct mfamily *f = metrics_family(m, "tether_http_requests_total", "Requests \"by\" path\\\n.", METRIC_COUNTER,
                                       names, NULL, 0);
    mchild_inc(mfamily_child(f, (const char *const[]){ "/metrics\"\\\n" }));
    static const double b[] = { 0.001, 0.01, 0.1 };
    struct mchild *h = metrics_histogram(m, "tether_collect_duration_seconds", "Collection time.", b, 3);
    mchild_observe(h, 0.004);
    mchild_set(metrics_gauge(m, "tether_containers", "Containers."), 3);
    char *page = render(m);
    assert_int_equal(promtool_check(page), 0);
    free(page);
    metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter_and_gauge),
        cmocka_unit_test(test_labels_and_escaping),
        cmocka_unit_test(test_histogram),
        cmocka_unit_test(test_histogram_no_labels_no_buckets),
        cmocka_unit_test(test_order_and_empty_families),
        cmocka_unit_test(test_remove),
        cmocka_unit_test(test_many_children_stable),
        cmocka_unit_test(test_bad_registrations),
        cmocka_unit_test(test_promtool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
