/*
 * test_prom: the agent's /metrics page. Exact text for a small snapshot
 * (escaping, units, labels), HAVE_* bits, percpu, the unlimited memory limit,
 * label de-duplication, a golden page for a 3-container snapshot
 * (tests/fixtures/prom/three_containers.prom), byte-identical output for any
 * sequence of fill sizes, the snapshot reference the cursor holds, each
 * family appearing once, and promtool's verdict on the page.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/prom.h"
#include "agent/sample.h"
#include "core/sbuf.h"

/* ---- snapshot builders ------------------------------------------------- */

static struct csample *add_container(struct snapshot *snap, const char *id, const char *name, const char *image,
                                     double start)
{
    struct csample *s = snapshot_add(snap);
    assert_non_null(s);
    char cgroup[128];
    snprintf(cgroup, sizeof cgroup, "/docker/%s", id);
    s->meta = cmeta_new(id, cgroup, name, image, start);
    assert_non_null(s->meta);
    return s;
}

static void set_blk(struct csample *s, size_t n)
{
    s->nblk = n;
    s->blk = calloc(n, sizeof *s->blk);
    for (size_t i = 0; i < n; i++) {
        struct blkdev_stat *d = &s->blk[i];
        d->major = 253;
        d->minor = (uint32_t)i;
        snprintf(d->dev, sizeof d->dev, i == 0 ? "/dev/vda" : "253:%zu", i);
        d->read_bytes = 4096 * (i + 1);
        d->write_bytes = 8192 * (i + 1);
        d->reads = 10 + i;
        d->writes = 20 + i;
    }
}

static void set_net(struct csample *s, size_t n)
{
    s->nnet = n;
    s->net = calloc(n, sizeof *s->net);
    for (size_t i = 0; i < n; i++) {
        struct netif_stat *e = &s->net[i];
        snprintf(e->name, sizeof e->name, "eth%zu", i);
        e->rx_bytes = 1000 * (i + 1);
        e->rx_packets = 10 * (i + 1);
        e->rx_errors = i;
        e->rx_dropped = 2 * i;
        e->tx_bytes = 2000 * (i + 1);
        e->tx_packets = 20 * (i + 1);
        e->tx_errors = 3 * i;
        e->tx_dropped = 4 * i;
    }
}

/*
 * Three containers:
 *  web   every group read (v1-like), compose labels, 2 cpus, 2 interfaces, 2 block devices, PSI
 *  db    v2-like: no percpu, no failcnt, no swap, unlimited memory, 1 interface, PSI
 *  odd   just started: cpu and memory only, a name with " \ and newline, no labels, unknown start
 */
static struct snapshot *three_containers(void)
{
    struct snapshot *snap = snapshot_new(0);
    assert_non_null(snap);
    snap->seq = 7;
    snap->timestamp = 1700000000.25;

    struct csample *s = add_container(snap, "aaa111", "/web", "nginx:1.25", 1699990000.9);
    assert_int_equal(cmeta_add_label(s->meta, "com.docker.compose.service", "web"), 0);
    assert_int_equal(cmeta_add_label(s->meta, "com_docker_compose_service", "dup"), 0); /* same key: dropped */
    assert_int_equal(cmeta_add_label(s->meta, "team", "a \"quoted\" \\ value\n"), 0);
    s->have = HAVE_CPU | HAVE_CFS | HAVE_MEM | HAVE_MEM_SWAP | HAVE_MEM_MAX | HAVE_MEM_FAIL | HAVE_OOM |
              HAVE_PIDS | HAVE_BLK | HAVE_NET | HAVE_PSI_CPU | HAVE_PSI_MEM | HAVE_PSI_IO;
    s->timestamp = 1700000000.75;
    s->cpu_usage_ns = 12500000000ull;
    s->cpu_user_ns = 8000000000ull;
    s->cpu_system_ns = 4500000000ull;
    s->ncpu = 2;
    s->percpu_ns = calloc(2, sizeof *s->percpu_ns);
    s->percpu_ns[0] = 7500000000ull;
    s->percpu_ns[1] = 5000000000ull;
    s->cfs_periods = 1000;
    s->cfs_throttled_periods = 25;
    s->cfs_throttled_ns = 1500000000ull;
    s->mem_usage = 104857600;
    s->mem_working_set = 83886080;
    s->mem_rss = 62914560;
    s->mem_cache = 41943040;
    s->mem_swap = 0;
    s->mem_mapped_file = 1048576;
    s->mem_max_usage = 125829120;
    s->mem_failcnt = 3;
    s->mem_limit = 268435456;
    s->oom_events = 1;
    s->processes = 4;
    s->threads = 9;
    set_blk(s, 2);
    set_net(s, 2);
    s->psi_cpu = (struct psi_stat){ 2500000, 1000000 };
    s->psi_mem = (struct psi_stat){ 300, 100 };
    s->psi_io = (struct psi_stat){ 123456789, 0 };

    s = add_container(snap, "bbb222", "db", "postgres:16", 1699980000);
    assert_int_equal(cmeta_add_label(s->meta, "com.docker.compose.service", "db"), 0);
    s->have = HAVE_CPU | HAVE_CFS | HAVE_MEM | HAVE_MEM_MAX | HAVE_OOM | HAVE_PIDS | HAVE_NET | HAVE_PSI_CPU |
              HAVE_PSI_MEM | HAVE_PSI_IO;
    s->timestamp = 1700000000.5;
    s->cpu_usage_ns = 999;
    s->cpu_user_ns = 600;
    s->cpu_system_ns = 399;
    s->mem_usage = 2048;
    s->mem_working_set = 1024;
    s->mem_limit = 9223372036854771712ull; /* v1 "unlimited" */
    s->processes = 1;
    s->threads = 1;
    set_net(s, 1);
    s->psi_cpu = (struct psi_stat){ 1, 0 };

    s = add_container(snap, "ccc333", "we\"ird\\name\n", "", 0);
    s->have = HAVE_CPU | HAVE_MEM;
    s->cpu_usage_ns = 0;
    s->mem_usage = 4096;
    return snap;
}

static char *render_all(struct snapshot *snap, const struct prom_opts *opts)
{
    struct sbuf b;
    sbuf_init(&b);
    assert_int_equal(prom_render_all(snap, opts, &b), 0);
    char *s = strdup(b.data);
    sbuf_free(&b);
    return s;
}

/* Streams a whole page with fill sizes taken cyclically from caps[]. */
static char *stream(struct snapshot *snap, const struct prom_opts *opts, const char *tail, const size_t *caps,
                    size_t ncaps)
{
    struct prom_cursor *c = prom_cursor_new(snap, opts, tail, tail ? strlen(tail) : 0);
    assert_non_null(c);
    struct sbuf out;
    sbuf_init(&out);
    char *buf = malloc(65536);
    for (size_t i = 0;; i++) {
        size_t cap = caps[i % ncaps];
        long n = prom_cursor_fill(buf, cap, c);
        assert_true(n >= 0);
        assert_true((size_t)n <= cap);
        if (n == 0)
            break;
        assert_int_equal(sbuf_append(&out, buf, (size_t)n), 0);
    }
    assert_int_equal(prom_cursor_fill(buf, 16, c), 0); /* stays done */
    free(buf);
    prom_cursor_free(c);
    char *s = strdup(out.data);
    sbuf_free(&out);
    return s;
}

/* ---- tests ------------------------------------------------------------ */

#define L1 "{id=\"/docker/x1\",name=\"a\\\"b\\\\c\\nd\",image=\"img\",container_label_app=\"v\\\"1\"" /* + own + } */

static void test_small_exact(void **state)
{
    struct snapshot *snap = snapshot_new(1);
    struct csample *s = add_container(snap, "x1", "/a\"b\\c\nd", "img", 1690000000.0);
    assert_int_equal(cmeta_add_label(s->meta, "app", "v\"1"), 0);
    s->have = HAVE_CPU | HAVE_CFS | HAVE_PSI_IO;
    s->timestamp = 1700000000.9;
    s->cpu_usage_ns = 1500000000;
    s->cpu_user_ns = 500000000;
    s->cpu_system_ns = 1; /* 1 ns */
    s->cfs_periods = 10;
    s->cfs_throttled_periods = 2;
    s->cfs_throttled_ns = 250000000;
    s->psi_io = (struct psi_stat){ 1500000, 3 }; /* µs */
    s->mem_usage = 12345; /* HAVE_MEM unset: not rendered */
    char *got = render_all(snap, NULL);
    const char *want =
        "# HELP container_cpu_usage_seconds_total Cumulative cpu time consumed in seconds.\n"
        "# TYPE container_cpu_usage_seconds_total counter\n"
        "container_cpu_usage_seconds_total" L1 ",cpu=\"total\"} 1.5\n"
        "# HELP container_cpu_user_seconds_total Cumulative user cpu time consumed in seconds.\n"
        "# TYPE container_cpu_user_seconds_total counter\n"
        "container_cpu_user_seconds_total" L1 "} 0.5\n"
        "# HELP container_cpu_system_seconds_total Cumulative system cpu time consumed in seconds.\n"
        "# TYPE container_cpu_system_seconds_total counter\n"
        "container_cpu_system_seconds_total" L1 "} 1e-09\n"
        "# HELP container_cpu_cfs_periods_total Number of elapsed enforcement period intervals.\n"
        "# TYPE container_cpu_cfs_periods_total counter\n"
        "container_cpu_cfs_periods_total" L1 "} 10\n"
        "# HELP container_cpu_cfs_throttled_periods_total Number of throttled period intervals.\n"
        "# TYPE container_cpu_cfs_throttled_periods_total counter\n"
        "container_cpu_cfs_throttled_periods_total" L1 "} 2\n"
        "# HELP container_cpu_cfs_throttled_seconds_total Total time duration the container has been throttled.\n"
        "# TYPE container_cpu_cfs_throttled_seconds_total counter\n"
        "container_cpu_cfs_throttled_seconds_total" L1 "} 0.25\n"
        "# HELP container_last_seen Last time a container was seen by the exporter\n"
        "# TYPE container_last_seen gauge\n"
        "container_last_seen" L1 "} 1700000000\n"
        "# HELP container_start_time_seconds Start time of the container since unix epoch in seconds.\n"
        "# TYPE container_start_time_seconds gauge\n"
        "container_start_time_seconds" L1 "} 1690000000\n"
        "# HELP container_pressure_io_waiting_seconds_total Total time duration tasks in the container have "
        "waited due to IO congestion.\n"
        "# TYPE container_pressure_io_waiting_seconds_total counter\n"
        "container_pressure_io_waiting_seconds_total" L1 "} 1.5\n"
        "# HELP container_pressure_io_stalled_seconds_total Total time duration no tasks in the container could "
        "make progress due to IO congestion.\n"
        "# TYPE container_pressure_io_stalled_seconds_total counter\n"
        "container_pressure_io_stalled_seconds_total" L1 "} 3e-06\n";
    assert_string_equal(got, want);
    free(got);

    /* With timestamps: the sample's read time in ms after every value. */
    struct prom_opts opts = { .timestamps = true };
    got = render_all(snap, &opts);
    assert_non_null(strstr(got, "container_cpu_cfs_periods_total" L1 "} 10 1700000000900\n"));
    free(got);
    snapshot_unref(snap);
}

static void test_percpu_and_limits(void **state)
{
    struct snapshot *snap = snapshot_new(0);
    struct csample *s = add_container(snap, "p1", "p", "i", 0);
    s->have = HAVE_CPU | HAVE_MEM;
    s->timestamp = 1;
    s->cpu_usage_ns = 3500000000ull;
    s->ncpu = 3;
    s->percpu_ns = calloc(3, sizeof *s->percpu_ns);
    s->percpu_ns[0] = 1000000000ull;
    s->percpu_ns[1] = 0; /* offline / idle cpu: skipped like cAdvisor */
    s->percpu_ns[2] = 2500000000ull;
    s->mem_limit = 9223372036854771712ull;
    struct csample *t = add_container(snap, "p2", "q", "i", 0);
    t->have = HAVE_MEM;
    t->mem_limit = 268435456;

    struct prom_opts opts = { .percpu = true };
    char *got = render_all(snap, &opts);
    const char *pre = "container_cpu_usage_seconds_total{id=\"/docker/p1\",name=\"p\",image=\"i\",";
    char want[512];
    snprintf(want, sizeof want, "%scpu=\"cpu00\"} 1\n%scpu=\"cpu02\"} 2.5\n", pre, pre);
    assert_non_null(strstr(got, want));
    assert_null(strstr(got, "cpu01"));
    assert_null(strstr(got, "cpu=\"total\""));
    assert_non_null(strstr(got, "container_spec_memory_limit_bytes{id=\"/docker/p1\",name=\"p\",image=\"i\"} 0\n"));
    assert_non_null(
        strstr(got, "container_spec_memory_limit_bytes{id=\"/docker/p2\",name=\"q\",image=\"i\"} 268435456\n"));
    /* p2 has no CPU group: no cpu series for it at all. */
    assert_null(strstr(got, "container_cpu_usage_seconds_total{id=\"/docker/p2\""));
    free(got);

    got = render_all(snap, NULL); /* percpu off: one "total" series */
    snprintf(want, sizeof want, "%scpu=\"total\"} 3.5\n", pre);
    assert_non_null(strstr(got, want));
    assert_null(strstr(got, "cpu00"));
    free(got);
    snapshot_unref(snap);
}

static void test_have_bits(void **state)
{
    struct snapshot *snap = snapshot_new(0);
    struct csample *s = add_container(snap, "h1", "h", "i", 0);
    s->have = HAVE_MEM_FAIL | HAVE_OOM;
    set_net(s, 1); /* present but HAVE_NET unset: not rendered */
    set_blk(s, 1);
    s->mem_failcnt = 5;
    char *got = render_all(snap, NULL);
    assert_non_null(strstr(got, "\ncontainer_memory_failcnt{id=\"/docker/h1\",name=\"h\",image=\"i\"} 5\n"));
    assert_non_null(strstr(got, "\ncontainer_oom_events_total{id=\"/docker/h1\",name=\"h\",image=\"i\"} 0\n"));
    static const char *const absent[] = { "container_cpu_", "container_memory_usage_bytes", "container_network_",
                                          "container_fs_", "container_pressure_", "container_processes",
                                          "container_last_seen", "container_start_time_seconds" };
    for (size_t i = 0; i < sizeof absent / sizeof *absent; i++)
        assert_null(strstr(got, absent[i]));
    free(got);
    snapshot_unref(snap);

    /* An empty snapshot and a NULL one render nothing. */
    snap = snapshot_new(0);
    got = render_all(snap, NULL);
    assert_string_equal(got, "");
    free(got);
    snapshot_unref(snap);
    got = render_all(NULL, NULL);
    assert_string_equal(got, "");
    free(got);
}

static char *read_fixture(const char *name)
{
    const char *dir = getenv("TETHER_FIXTURES");
    char path[512];
    snprintf(path, sizeof path, "%s/prom/%s", dir ? dir : "tests/fixtures", name);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open fixture %s", path);
    struct sbuf b;
    sbuf_init(&b);
    char tmp[4096];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
        assert_int_equal(sbuf_append(&b, tmp, n), 0);
    fclose(f);
    char *s = strdup(b.data);
    sbuf_free(&b);
    return s;
}

static void test_golden_three_containers(void **state)
{
    struct snapshot *snap = three_containers();
    struct prom_opts opts = { .percpu = true };
    char *got = render_all(snap, &opts);
    char *want = read_fixture("three_containers.prom");
    assert_string_equal(got, want);
    free(want);
    free(got);
    snapshot_unref(snap);
}

/* Every family: HELP, TYPE, then its samples, contiguous, and never again. */
static void test_each_family_once(void **state)
{
    struct snapshot *snap = three_containers();
    struct prom_opts opts = { .percpu = true };
    char *page = render_all(snap, &opts);
    char seen[64][80];
    size_t nseen = 0;
    char cur[80] = "";
    int lines_since_type = -1;
    for (char *line = strtok(page, "\n"); line; line = strtok(NULL, "\n")) {
        if (strncmp(line, "# HELP ", 7) == 0) {
            char name[80];
            assert_int_equal(sscanf(line + 7, "%79s", name), 1);
            for (size_t i = 0; i < nseen; i++)
                assert_string_not_equal(seen[i], name);
            assert_true(nseen < 64);
            strcpy(seen[nseen++], name);
            strcpy(cur, name);
            lines_since_type = -1;
        } else if (strncmp(line, "# TYPE ", 7) == 0) {
            assert_int_equal(strncmp(line + 7, cur, strlen(cur)), 0);
            lines_since_type = 0;
        } else {
            assert_true(lines_since_type >= 0);
            size_t len = strlen(cur);
            assert_int_equal(strncmp(line, cur, len), 0);
            assert_int_equal(line[len], '{');
            lines_since_type++;
        }
    }
    assert_true(nseen >= 36);
    free(page);
    snapshot_unref(snap);
}

static void test_chunked_identical(void **state)
{
    struct snapshot *snap = three_containers();
    struct prom_opts opts = { .percpu = true };
    const char *tail = "# HELP tether_up 1\n# TYPE tether_up gauge\ntether_up 1\n";
    char *whole = render_all(snap, &opts);
    size_t wlen = strlen(whole);
    char *want = malloc(wlen + strlen(tail) + 1);
    memcpy(want, whole, wlen);
    strcpy(want + wlen, tail);

    static const size_t fixed[] = { 1, 7, 64, 4096, 65536 };
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++) {
        char *got = stream(snap, &opts, tail, &fixed[i], 1);
        assert_string_equal(got, want);
        free(got);
    }
    /* Irregular sequences, including sizes that split escapes and line ends. */
    static const size_t mixed[] = { 3, 1, 100, 2, 4095, 5, 17, 1, 1, 333 };
    char *got = stream(snap, &opts, tail, mixed, sizeof mixed / sizeof *mixed);
    assert_string_equal(got, want);
    free(got);
    size_t rnd[97];
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < 97; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        rnd[i] = 1 + x % 300;
    }
    got = stream(snap, &opts, tail, rnd, 97);
    assert_string_equal(got, want);
    free(got);
    /* No tail: exactly the prom_render_all page. */
    got = stream(snap, &opts, NULL, &fixed[2], 1);
    assert_string_equal(got, whole);
    free(got);
    free(want);
    free(whole);
    snapshot_unref(snap);
}

static void test_cursor_refs_and_edges(void **state)
{
    struct snapshot *snap = three_containers();
    char *whole = render_all(snap, NULL);
    struct prom_cursor *c = prom_cursor_new(snap, NULL, "tail\n", 5);
    assert_non_null(c);
    assert_int_equal(snap->refs, 2);
    snapshot_unref(snap); /* the collector moves on; the cursor keeps the page alive */
    char buf[100];
    assert_int_equal(prom_cursor_fill(buf, 0, c), -EINVAL);
    struct sbuf out;
    sbuf_init(&out);
    long n;
    while ((n = prom_cursor_fill(buf, sizeof buf, c)) > 0)
        assert_int_equal(sbuf_append(&out, buf, (size_t)n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(strncmp(out.data, whole, strlen(whole)), 0);
    assert_string_equal(out.data + strlen(whole), "tail\n");
    sbuf_free(&out);
    prom_cursor_free(c); /* drops the last reference (ASan checks the rest) */
    free(whole);

    /* No snapshot yet: only the tail. Freed half-way: no leak. */
    c = prom_cursor_new(NULL, NULL, "abc", 3);
    assert_int_equal(prom_cursor_fill(buf, 2, c), 2);
    assert_memory_equal(buf, "ab", 2);
    assert_int_equal(prom_cursor_fill(buf, 2, c), 1);
    assert_int_equal(buf[0], 'c');
    assert_int_equal(prom_cursor_fill(buf, 2, c), 0);
    prom_cursor_free(c);
    c = prom_cursor_new(NULL, NULL, NULL, 0);
    assert_int_equal(prom_cursor_fill(buf, sizeof buf, c), 0);
    prom_cursor_free(c);
    snap = three_containers();
    c = prom_cursor_new(snap, NULL, "t", 1);
    assert_true(prom_cursor_fill(buf, 10, c) == 10);
    prom_cursor_free(c);
    assert_int_equal(snap->refs, 1);
    snapshot_unref(snap);
    prom_cursor_free(NULL);
}

static bool lint_exception(const char *name)
{
    for (size_t i = 0; PROM_LINT_EXCEPTIONS[i]; i++)
        if (strcmp(name, PROM_LINT_EXCEPTIONS[i]) == 0)
            return true;
    return false;
}

static void test_promtool(void **state)
{
    if (access("/usr/bin/promtool", X_OK) != 0) {
        skip();
        return;
    }
    struct snapshot *snap = three_containers();
    struct prom_opts opts = { .percpu = true };
    char *page = render_all(snap, &opts);
    char path[] = "/tmp/test_prom_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t len = strlen(page);
    assert_int_equal(write(fd, page, len), (ssize_t)len);
    close(fd);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "promtool check metrics < %s 2>&1", path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char line[1024];
    size_t nlint = 0;
    while (fgets(line, sizeof line, p)) {
        char name[256] = "";
        sscanf(line, "%255s", name);
        if (!name[0])
            continue;
        if (!lint_exception(name))
            fail_msg("promtool: %s", line);
        nlint++;
    }
    int st = pclose(p);
    unlink(path);
    assert_true(WIFEXITED(st));
    int rc = WEXITSTATUS(st);
    if (rc != 0 && rc != 3)
        fail_msg("promtool check metrics exited %d (1 = parse error)", rc);
    assert_true(rc == 0 ? nlint == 0 : nlint > 0);
    free(page);
    snapshot_unref(snap);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_exact),
        cmocka_unit_test(test_percpu_and_limits),
        cmocka_unit_test(test_have_bits),
        cmocka_unit_test(test_golden_three_containers),
        cmocka_unit_test(test_each_family_once),
        cmocka_unit_test(test_chunked_identical),
        cmocka_unit_test(test_cursor_refs_and_edges),
        cmocka_unit_test(test_promtool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
