/*
 * test_cgroup_parse: the pure cgroup file parsers on files captured from a
 * real cgroup v1 (hybrid) kernel (tests/fixtures/cgroup/v1), on v2 files
 * written from Documentation/admin-guide/cgroup-v2.rst (tests/fixtures/cgroup/v2-*),
 * and on malformed, truncated and empty input.
 *
 * Every input is copied so that it ends right before a PROT_NONE page: a
 * parser reading one byte past len crashes the test.
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

#include "guard.h"

#include "agent/cgroup_parse.h"

#define V1_ID  "69fd5aee9f1431aa85b491c5015557e59c44cf7d6418b7614139499a80b074dc"
#define V2A_ID "fdb565d919d2142bf259544e3d63364a01cfe1d122aaf4a4d7ef40a31b3d3cd5"
#define V1_ROOT "cgroup/v1/sys/fs/cgroup"
#define V2A_DIR "cgroup/v2-cgroupfs/sys/fs/cgroup/docker/" V2A_ID


/* ---- single values ----------------------------------------------------- */

static int u64_of(const char *s, uint64_t *v)
{
    struct guard g = guard_str(s);
    int rc = cgp_u64(g.data, g.len, v);
    guard_free(&g);
    return rc;
}

static void test_u64(void **state)
{
    uint64_t v = 0;
    assert_int_equal(u64_of("12345\n", &v), 0);
    assert_int_equal(v, 12345);
    assert_int_equal(u64_of("max\n", &v), 0);
    assert_true(v == CGP_MAX);
    assert_int_equal(u64_of("  7  \n\n", &v), 0);
    assert_int_equal(v, 7);
    assert_int_equal(u64_of("0", &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(u64_of("18446744073709551615\n", &v), 0);
    assert_true(v == UINT64_MAX);
    assert_int_equal(u64_of("18446744073709551616\n", &v), -ERANGE);
    assert_int_equal(u64_of("", &v), -EPROTO);
    assert_int_equal(u64_of("\n", &v), -EPROTO);
    assert_int_equal(u64_of("-1\n", &v), -EPROTO);
    assert_int_equal(u64_of("12a\n", &v), -EPROTO);
    assert_int_equal(u64_of("1 2\n", &v), -EPROTO);
    assert_int_equal(u64_of("maxi\n", &v), -EPROTO);
    assert_int_equal(u64_of("ma", &v), -EPROTO);
}

static void test_u64_fixtures(void **state)
{
    uint64_t v = 0;
    struct guard g = guard_file(V1_ROOT "/memory/docker/" V1_ID "/memory.limit_in_bytes");
    assert_int_equal(cgp_u64(g.data, g.len, &v), 0);
    assert_int_equal(v, 268435456);
    assert_false(cgp_is_unlimited(v));
    guard_free(&g);

    g = guard_file(V1_ROOT "/memory/docker/" V1_ID "/memory.usage_in_bytes");
    assert_int_equal(cgp_u64(g.data, g.len, &v), 0);
    assert_int_equal(v, 43868160);
    guard_free(&g);

    g = guard_file(V1_ROOT "/pids/docker/" V1_ID "/pids.max");
    assert_int_equal(cgp_u64(g.data, g.len, &v), 0);
    assert_true(v == CGP_MAX);
    guard_free(&g);

    g = guard_file(V2A_DIR "/memory.max");
    assert_int_equal(cgp_u64(g.data, g.len, &v), 0);
    assert_int_equal(v, 536870912);
    guard_free(&g);
}

static void test_unlimited(void **state)
{
    assert_true(cgp_is_unlimited(CGP_MAX));
    assert_true(cgp_is_unlimited(9223372036854771712ull));  /* v1, 4 KiB pages (this host) */
    assert_true(cgp_is_unlimited(9223372036854710272ull));  /* v1, 64 KiB pages */
    assert_true(cgp_is_unlimited(9223372036854775807ull));  /* LONG_MAX */
    assert_false(cgp_is_unlimited(268435456));
    assert_false(cgp_is_unlimited(0));
    assert_false(cgp_is_unlimited(1ull << 62));
}

/* ---- flat keyed -------------------------------------------------------- */

static void test_keyed_v1_memory_stat(void **state)
{
    struct guard g = guard_file(V1_ROOT "/memory/docker/" V1_ID "/memory.stat");
    uint64_t inactive = 1, rss = 1, cache = 1, mapped = 1, swap = 1, nothere = 42, found = 0;
    const struct cgp_key keys[] = {
        { "total_inactive_file", &inactive }, { "total_rss", &rss }, { "total_cache", &cache },
        { "total_mapped_file", &mapped }, { "total_swap", &swap }, { "no_such_key", &nothere },
    };
    assert_int_equal(cgp_keyed(g.data, g.len, keys, 6, &found), 0);
    assert_int_equal(found, 0x1f);
    assert_int_equal(inactive, 41943040);
    assert_int_equal(rss, 110592);
    assert_int_equal(cache, 41943040);
    assert_int_equal(mapped, 0);
    assert_int_equal(swap, 0);
    assert_int_equal(nothere, 42);      /* untouched */
    guard_free(&g);
}

static void test_keyed_v2_memory_stat(void **state)
{
    struct guard g = guard_file(V2A_DIR "/memory.stat");
    uint64_t anon = 0, file = 0, mapped = 0, inactive = 0, found = 0;
    const struct cgp_key keys[] = {
        { "anon", &anon }, { "file", &file }, { "file_mapped", &mapped },
        { "inactive_file", &inactive },
    };
    assert_int_equal(cgp_keyed(g.data, g.len, keys, 4, &found), 0);
    assert_int_equal(found, 0xf);
    assert_int_equal(anon, 52428800);
    assert_int_equal(file, 94371840);
    assert_int_equal(mapped, 12582912);
    assert_int_equal(inactive, 62914560);
    guard_free(&g);
}

static void test_keyed_cpu(void **state)
{
    uint64_t a = 0, b = 0, c = 0, found = 0;
    /* v1 cpuacct.stat (USER_HZ) */
    struct guard g = guard_file(V1_ROOT "/cpuacct/docker/" V1_ID "/cpuacct.stat");
    const struct cgp_key acct[] = { { "user", &a }, { "system", &b } };
    assert_int_equal(cgp_keyed(g.data, g.len, acct, 2, &found), 0);
    assert_int_equal(found, 3);
    assert_int_equal(a, 815);
    assert_int_equal(b, 3);
    guard_free(&g);

    /* v1 cpu.stat (CFS, ns) */
    g = guard_file(V1_ROOT "/cpu/docker/" V1_ID "/cpu.stat");
    const struct cgp_key cfs1[] = {
        { "nr_periods", &a }, { "nr_throttled", &b }, { "throttled_time", &c },
    };
    assert_int_equal(cgp_keyed(g.data, g.len, cfs1, 3, &found), 0);
    assert_int_equal(found, 7);
    assert_int_equal(a, 167);
    assert_int_equal(b, 116);
    assert_int_equal(c, 1453606661);
    guard_free(&g);

    /* v2 cpu.stat as this kernel writes it (the hybrid unified mount) */
    g = guard_file(V1_ROOT "/unified/docker/" V1_ID "/cpu.stat");
    const struct cgp_key usage[] = {
        { "usage_usec", &a }, { "user_usec", &b }, { "system_usec", &c },
    };
    assert_int_equal(cgp_keyed(g.data, g.len, usage, 3, &found), 0);
    assert_int_equal(found, 7);
    assert_int_equal(a, 8228730);
    assert_int_equal(b, 8190065);
    assert_int_equal(c, 38665);
    guard_free(&g);

    /* v2 cpu.stat with the CFS keys (documented format) */
    g = guard_file(V2A_DIR "/cpu.stat");
    const struct cgp_key cfs2[] = {
        { "nr_periods", &a }, { "nr_throttled", &b }, { "throttled_usec", &c },
    };
    assert_int_equal(cgp_keyed(g.data, g.len, cfs2, 3, &found), 0);
    assert_int_equal(found, 7);
    assert_int_equal(a, 1201);
    assert_int_equal(b, 87);
    assert_int_equal(c, 3915000);
    guard_free(&g);
}

static void test_keyed_oom(void **state)
{
    uint64_t v = 99, found = 0;
    const struct cgp_key keys[] = { { "oom_kill", &v } };
    struct guard g = guard_file(V1_ROOT "/memory/docker/" V1_ID "/memory.oom_control");
    assert_int_equal(cgp_keyed(g.data, g.len, keys, 1, &found), 0);
    assert_int_equal(found, 1);
    assert_int_equal(v, 0);
    guard_free(&g);

    g = guard_file(V2A_DIR "/memory.events");
    assert_int_equal(cgp_keyed(g.data, g.len, keys, 1, &found), 0);
    assert_int_equal(found, 1);
    assert_int_equal(v, 1);
    guard_free(&g);

    /* "oom_kill" must not match "oom_kill_disable" or "oom_group_kill" */
    g = guard_str("oom_kill_disable 1\noom_group_kill 5\n");
    v = 99;
    assert_int_equal(cgp_keyed(g.data, g.len, keys, 1, &found), 0);
    assert_int_equal(found, 0);
    assert_int_equal(v, 99);
    guard_free(&g);
}

static int keyed_of(const char *s, uint64_t *user, uint64_t *found)
{
    const struct cgp_key keys[] = { { "user", user } };
    struct guard g = guard_str(s);
    int rc = cgp_keyed(g.data, g.len, keys, 1, found);
    guard_free(&g);
    return rc;
}

static void test_keyed_malformed(void **state)
{
    uint64_t v = 0, found = 0;
    assert_int_equal(keyed_of("", &v, &found), 0);
    assert_int_equal(found, 0);
    assert_int_equal(keyed_of("\n\n", &v, &found), 0);
    assert_int_equal(found, 0);
    assert_int_equal(keyed_of("user 5", &v, &found), 0);     /* no final newline */
    assert_int_equal(found, 1);
    assert_int_equal(v, 5);
    assert_int_equal(keyed_of("other -3\nuser 6\n", &v, &found), 0);  /* junk in keys nobody wants */
    assert_int_equal(v, 6);
    assert_int_equal(keyed_of("user 1\nuser 2\n", &v, &found), 0);    /* last wins */
    assert_int_equal(v, 2);
    assert_int_equal(keyed_of("user\n", &v, &found), -EPROTO);
    assert_int_equal(keyed_of("user abc\n", &v, &found), -EPROTO);
    assert_int_equal(keyed_of("user -1\n", &v, &found), -EPROTO);
    assert_int_equal(keyed_of("user 1 2\n", &v, &found), -EPROTO);
    assert_int_equal(keyed_of("user 99999999999999999999\n", &v, &found), -ERANGE);
    assert_int_equal(keyed_of("lonelyword\n", &v, &found), -EPROTO);
    assert_int_equal(keyed_of("us 1\nusers 2\n", &v, &found), 0);      /* prefixes do not match */
    assert_int_equal(found, 0);

    /* a NUL byte in the key does not make a short key match */
    struct guard g = guard_new("user\0x 7\n", 9);
    const struct cgp_key keys[] = { { "user", &v } };
    assert_int_equal(cgp_keyed(g.data, g.len, keys, 1, &found), 0);
    assert_int_equal(found, 0);
    guard_free(&g);

    struct cgp_key many[65];
    for (int i = 0; i < 65; i++)
        many[i] = (struct cgp_key){ "k", &v };
    assert_int_equal(cgp_keyed("k 1\n", 4, many, 65, &found), -EINVAL);
}

/* ---- value lists ------------------------------------------------------- */

static void test_u64_list(void **state)
{
    uint64_t out[4] = { 0 };
    size_t n = 0;
    struct guard g = guard_file(V1_ROOT "/cpuacct/docker/" V1_ID "/cpuacct.usage_percpu");
    assert_int_equal(cgp_u64_list(g.data, g.len, out, 4, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(out[0], 4045611052ull);
    assert_int_equal(out[1], 4153195049ull);
    /* too small: first value kept, full count reported */
    memset(out, 0, sizeof out);
    assert_int_equal(cgp_u64_list(g.data, g.len, out, 1, &n), -ENOSPC);
    assert_int_equal(n, 2);
    assert_int_equal(out[0], 4045611052ull);
    assert_int_equal(out[1], 0);
    assert_int_equal(cgp_u64_list(g.data, g.len, NULL, 0, &n), -ENOSPC);
    assert_int_equal(n, 2);
    guard_free(&g);

    g = guard_str("");
    assert_int_equal(cgp_u64_list(g.data, g.len, out, 4, &n), -EPROTO);
    guard_free(&g);
    g = guard_str(" \n");
    assert_int_equal(cgp_u64_list(g.data, g.len, out, 4, &n), -EPROTO);
    guard_free(&g);
    g = guard_str("1 x 3\n");
    assert_int_equal(cgp_u64_list(g.data, g.len, out, 4, &n), -EPROTO);
    guard_free(&g);
    g = guard_str("1\t2  3");
    assert_int_equal(cgp_u64_list(g.data, g.len, out, 4, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(out[2], 3);
    guard_free(&g);
}

/* ---- block IO ---------------------------------------------------------- */

/* The entry for MAJ:MIN; fails the test (never NULL) when absent. */
static const struct blkdev_stat *find_dev(const struct blkdev_stat *d, size_t n, uint32_t maj,
                                          uint32_t min)
{
    static const struct blkdev_stat none;
    for (size_t i = 0; i < n; i++)
        if (d[i].major == maj && d[i].minor == min)
            return &d[i];
    fail_msg("device %u:%u not found", maj, min);
    return &none;
}

static void test_blkio_v1(void **state)
{
    struct blkdev_stat devs[4];
    size_t n = 0;
    struct guard g = guard_file(V1_ROOT "/blkio/docker/" V1_ID "/blkio.throttle.io_service_bytes");
    assert_int_equal(cgp_blkio_v1(g.data, g.len, CGP_BLKIO_BYTES, devs, 4, &n), 0);
    guard_free(&g);
    assert_int_equal(n, 2);
    g = guard_file(V1_ROOT "/blkio/docker/" V1_ID "/blkio.throttle.io_serviced");
    assert_int_equal(cgp_blkio_v1(g.data, g.len, CGP_BLKIO_OPS, devs, 4, &n), 0);
    guard_free(&g);
    assert_int_equal(n, 2);     /* merged, not appended */

    const struct blkdev_stat *sda = find_dev(devs, n, 8, 0), *sdb = find_dev(devs, n, 8, 16);
    assert_string_equal(sda->dev, "8:0");
    assert_string_equal(sdb->dev, "8:16");
    assert_int_equal(sda->read_bytes, 3145728);
    assert_int_equal(sda->write_bytes, 20971520);
    assert_int_equal(sda->reads, 48);
    assert_int_equal(sda->writes, 320);
    assert_int_equal(sdb->read_bytes, 1048576);
    assert_int_equal(sdb->write_bytes, 0);
    assert_int_equal(sdb->reads, 16);
    assert_int_equal(sdb->writes, 0);

    /* what this VM really shows: no accounting, only the grand total */
    n = 0;
    g = guard_str("Total 0\n");
    assert_int_equal(cgp_blkio_v1(g.data, g.len, CGP_BLKIO_BYTES, devs, 4, &n), 0);
    assert_int_equal(n, 0);
    guard_free(&g);

    /* too many devices */
    n = 0;
    g = guard_str("8:0 Read 1\n8:16 Read 2\n8:32 Read 3\nTotal 6\n");
    assert_int_equal(cgp_blkio_v1(g.data, g.len, CGP_BLKIO_BYTES, devs, 2, &n), -ENOSPC);
    assert_int_equal(n, 2);
    assert_int_equal(devs[1].read_bytes, 2);
    guard_free(&g);

    static const char *const bad[] = {
        "8:0 Read\n", "8:0 Read 1 2\n", "8x0 Read 5\n", ":0 Read 5\n", "8: Read 5\n",
        "8:0 Read -5\n", "Total\n", "Total x\n", "Bogus 5\n", "8:99999999999 Read 1\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        n = 0;
        g = guard_str(bad[i]);
        int rc = cgp_blkio_v1(g.data, g.len, CGP_BLKIO_BYTES, devs, 4, &n);
        if (rc != -EPROTO && rc != -ERANGE)
            fail_msg("'%s' gave %d", bad[i], rc);
        guard_free(&g);
    }
    n = 5;
    assert_int_equal(cgp_blkio_v1("", 0, CGP_BLKIO_BYTES, devs, 4, &n), -EINVAL);
}

static void test_io_stat(void **state)
{
    struct blkdev_stat devs[4];
    size_t n = 0;
    struct guard g = guard_file(V2A_DIR "/io.stat");
    assert_int_equal(cgp_io_stat(g.data, g.len, devs, 4, &n), 0);
    guard_free(&g);
    assert_int_equal(n, 2);
    const struct blkdev_stat *sda = find_dev(devs, n, 8, 0), *sdb = find_dev(devs, n, 8, 16);
    assert_int_equal(sdb->read_bytes, 1459200);
    assert_int_equal(sdb->write_bytes, 314773504);
    assert_int_equal(sdb->reads, 192);
    assert_int_equal(sdb->writes, 353);
    assert_int_equal(sda->read_bytes, 90430464);
    assert_int_equal(sda->write_bytes, 299008000);
    assert_int_equal(sda->reads, 8950);
    assert_int_equal(sda->writes, 1252);
    assert_string_equal(sda->dev, "8:0");

    /* iocost/latency keys (decimals) after the counters are skipped */
    g = guard_str("259:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0 cost.vrate=100.00 "
                  "cost.usage=12 cost.wait=0 cost.indebt=0 cost.indelay=0\n");
    assert_int_equal(cgp_io_stat(g.data, g.len, devs, 4, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(devs[0].major, 259);
    assert_int_equal(devs[0].write_bytes, 20);
    assert_string_equal(devs[0].dev, "259:0");
    guard_free(&g);

    g = guard_str("");
    assert_int_equal(cgp_io_stat(g.data, g.len, devs, 4, &n), 0);
    assert_int_equal(n, 0);
    guard_free(&g);

    g = guard_file(V2A_DIR "/io.stat");
    assert_int_equal(cgp_io_stat(g.data, g.len, devs, 1, &n), -ENOSPC);
    assert_int_equal(n, 1);
    assert_int_equal(devs[0].read_bytes, 1459200);
    guard_free(&g);

    static const char *const bad[] = {
        "8:0 rbytes=abc\n", "8:0 rbytes\n", "8:0 =5\n", "sda rbytes=1\n", "8:0 rbytes=-1\n",
        "8:0 rios=99999999999999999999\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        g = guard_str(bad[i]);
        int rc = cgp_io_stat(g.data, g.len, devs, 4, &n);
        if (rc != -EPROTO && rc != -ERANGE)
            fail_msg("'%s' gave %d", bad[i], rc);
        guard_free(&g);
    }
}

/* ---- PSI --------------------------------------------------------------- */

static void test_psi(void **state)
{
    struct psi_stat p;
    struct guard g = guard_file(V1_ROOT "/unified/docker/" V1_ID "/cpu.pressure");
    assert_int_equal(cgp_psi(g.data, g.len, &p), 0);
    assert_int_equal(p.some_total_us, 4582373);
    assert_int_equal(p.full_total_us, 4571091);
    guard_free(&g);

    g = guard_file(V1_ROOT "/unified/docker/" V1_ID "/memory.pressure");
    assert_int_equal(cgp_psi(g.data, g.len, &p), 0);
    assert_int_equal(p.some_total_us, 0);
    guard_free(&g);

    g = guard_file(V2A_DIR "/io.pressure");
    assert_int_equal(cgp_psi(g.data, g.len, &p), 0);
    assert_int_equal(p.some_total_us, 901234);
    assert_int_equal(p.full_total_us, 800321);
    guard_free(&g);

    /* system-wide cpu.pressure of older kernels: no full line */
    g = guard_str("some avg10=0.00 avg60=0.00 avg300=0.00 total=1500\n");
    p.full_total_us = 77;
    assert_int_equal(cgp_psi(g.data, g.len, &p), 0);
    assert_int_equal(p.some_total_us, 1500);
    assert_int_equal(p.full_total_us, 0);
    guard_free(&g);

    static const char *const bad[] = {
        "", "\n", "full avg10=0.00 avg60=0.00 avg300=0.00 total=5\n",
        "some avg10=0.00 avg60=0.00 avg300=0.00\n", "some total=abc\n", "some total=\n",
        "some total=1\nsome total=2\n", "half total=1\n", "some avg10 total=1\n",
        "some total=1\nfull total=x\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        g = guard_str(bad[i]);
        if (cgp_psi(g.data, g.len, &p) != -EPROTO)
            fail_msg("'%s' accepted", bad[i]);
        guard_free(&g);
    }
}

/* ---- pid lists --------------------------------------------------------- */

static void test_pid_list(void **state)
{
    struct cgp_pids p;
    struct guard g = guard_file(V1_ROOT "/pids/docker/" V1_ID "/cgroup.procs");
    assert_int_equal(cgp_pid_list(g.data, g.len, 9973, &p), 0);
    assert_int_equal(p.count, 2);
    assert_int_equal(p.first, 9941);
    assert_true(p.want_seen);
    assert_int_equal(cgp_pid_list(g.data, g.len, 1, &p), 0);
    assert_false(p.want_seen);
    assert_int_equal(cgp_pid_list(g.data, g.len, 0, &p), 0);
    assert_false(p.want_seen);
    guard_free(&g);

    g = guard_file(V2A_DIR "/cgroup.threads");
    assert_int_equal(cgp_pid_list(g.data, g.len, 0, &p), 0);
    assert_int_equal(p.count, 5);
    guard_free(&g);

    g = guard_str("");
    assert_int_equal(cgp_pid_list(g.data, g.len, 5, &p), 0);
    assert_int_equal(p.count, 0);
    assert_int_equal(p.first, 0);
    assert_false(p.want_seen);
    guard_free(&g);

    g = guard_str("12\n13");     /* no final newline */
    assert_int_equal(cgp_pid_list(g.data, g.len, 13, &p), 0);
    assert_int_equal(p.count, 2);
    assert_true(p.want_seen);
    guard_free(&g);

    static const char *const bad[] = { "12\nabc\n", "0\n", "-4\n", "1 2\n", "99999999999999999999\n" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        g = guard_str(bad[i]);
        int rc = cgp_pid_list(g.data, g.len, 0, &p);
        if (rc != -EPROTO && rc != -ERANGE)
            fail_msg("'%s' gave %d", bad[i], rc);
        guard_free(&g);
    }
}

static void test_pid_next(void **state)
{
    struct guard g = guard_str("12\n\n 13 \r\n14");
    size_t off = 0;
    uint64_t pid = 0;
    assert_int_equal(cgp_pid_next(g.data, g.len, &off, &pid), 1);
    assert_int_equal(pid, 12);
    assert_int_equal(cgp_pid_next(g.data, g.len, &off, &pid), 1);
    assert_int_equal(pid, 13);
    assert_int_equal(cgp_pid_next(g.data, g.len, &off, &pid), 1);
    assert_int_equal(pid, 14);
    assert_int_equal(off, g.len);
    assert_int_equal(cgp_pid_next(g.data, g.len, &off, &pid), 0);
    assert_int_equal(cgp_pid_next(g.data, g.len, &off, &pid), 0);
    guard_free(&g);

    g = guard_str("7\nx\n8\n");
    off = 0;
    assert_int_equal(cgp_pid_next(g.data, g.len, &off, &pid), 1);
    assert_int_equal(cgp_pid_next(g.data, g.len, &off, &pid), -EPROTO);
    off = 1000;                         /* past the end: nothing, no over-read */
    assert_int_equal(cgp_pid_next(g.data, g.len, &off, &pid), 0);
    guard_free(&g);
}

/* ---- uevent ------------------------------------------------------------ */

static void test_uevent(void **state)
{
    char name[16];
    struct guard g = guard_file("cgroup/v1/sys/dev/block/8:0/uevent");
    assert_int_equal(cgp_uevent_devname(g.data, g.len, name, sizeof name), 0);
    assert_string_equal(name, "sda");
    assert_int_equal(cgp_uevent_devname(g.data, g.len, name, 3), -ENOSPC);
    assert_int_equal(cgp_uevent_devname(g.data, g.len, name, 4), 0);
    guard_free(&g);

    g = guard_str("MAJOR=104\nMINOR=0\nDEVNAME=cciss/c0d0");
    assert_int_equal(cgp_uevent_devname(g.data, g.len, name, sizeof name), 0);
    assert_string_equal(name, "cciss/c0d0");
    guard_free(&g);

    g = guard_str("MAJOR=8\nMINOR=0\n");
    assert_int_equal(cgp_uevent_devname(g.data, g.len, name, sizeof name), -ENOENT);
    guard_free(&g);
    g = guard_str("DEVNAME=\n");
    assert_int_equal(cgp_uevent_devname(g.data, g.len, name, sizeof name), -EPROTO);
    guard_free(&g);
    g = guard_str("DEVNAME=a b\n");
    assert_int_equal(cgp_uevent_devname(g.data, g.len, name, sizeof name), -EPROTO);
    guard_free(&g);
    g = guard_str("DEVNAME=a\"b\n");
    assert_int_equal(cgp_uevent_devname(g.data, g.len, name, sizeof name), -EPROTO);
    guard_free(&g);
}

/* ---- every prefix of every fixture through every parser ---------------- */

static void all_parsers(const char *buf, size_t len)
{
    uint64_t v, found, list[8];
    size_t n;
    struct blkdev_stat devs[4];
    struct psi_stat psi;
    struct cgp_pids pids;
    char name[32];
    const struct cgp_key keys[] = { { "total_rss", &v }, { "user", &v }, { "usage_usec", &v } };
    (void)cgp_u64(buf, len, &v);
    (void)cgp_keyed(buf, len, keys, 3, &found);
    (void)cgp_u64_list(buf, len, list, 8, &n);
    n = 0;
    (void)cgp_blkio_v1(buf, len, CGP_BLKIO_BYTES, devs, 4, &n);
    (void)cgp_io_stat(buf, len, devs, 4, &n);
    (void)cgp_psi(buf, len, &psi);
    (void)cgp_pid_list(buf, len, 7, &pids);
    size_t off = 0;
    uint64_t pid;
    while (cgp_pid_next(buf, len, &off, &pid) == 1)
        ;
    (void)cgp_uevent_devname(buf, len, name, sizeof name);
}

static void test_truncated_prefixes(void **state)
{
    static const char *const files[] = {
        V1_ROOT "/memory/docker/" V1_ID "/memory.stat",
        V1_ROOT "/memory/docker/" V1_ID "/memory.oom_control",
        V1_ROOT "/cpuacct/docker/" V1_ID "/cpuacct.usage_percpu",
        V1_ROOT "/blkio/docker/" V1_ID "/blkio.throttle.io_service_bytes",
        V1_ROOT "/unified/docker/" V1_ID "/cpu.pressure",
        V1_ROOT "/pids/docker/" V1_ID "/cgroup.procs",
        V2A_DIR "/io.stat",
        V2A_DIR "/cpu.stat",
        "cgroup/v1/sys/dev/block/8:0/uevent",
    };
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        struct guard full = guard_file(files[f]);
        for (size_t len = 0; len <= full.len; len++) {
            struct guard g = guard_new(full.data, len);
            all_parsers(g.data, g.len);
            guard_free(&g);
        }
        guard_free(&full);
    }
    /* a truncated single value still parses as the shorter number */
    uint64_t v;
    struct guard g = guard_new("43868160", 4);
    assert_int_equal(cgp_u64(g.data, g.len, &v), 0);
    assert_int_equal(v, 4386);
    guard_free(&g);
    /* a PSI file cut before total= is an error, not a zero */
    struct psi_stat p;
    const char *psi = "some avg10=0.00 avg60=0.00 avg300=0.00 total=12\n";
    g = guard_new(psi, 30);
    assert_int_equal(cgp_psi(g.data, g.len, &p), -EPROTO);
    guard_free(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_u64),
        cmocka_unit_test(test_u64_fixtures),
        cmocka_unit_test(test_unlimited),
        cmocka_unit_test(test_keyed_v1_memory_stat),
        cmocka_unit_test(test_keyed_v2_memory_stat),
        cmocka_unit_test(test_keyed_cpu),
        cmocka_unit_test(test_keyed_oom),
        cmocka_unit_test(test_keyed_malformed),
        cmocka_unit_test(test_u64_list),
        cmocka_unit_test(test_blkio_v1),
        cmocka_unit_test(test_io_stat),
        cmocka_unit_test(test_psi),
        cmocka_unit_test(test_pid_list),
        cmocka_unit_test(test_pid_next),
        cmocka_unit_test(test_uevent),
        cmocka_unit_test(test_truncated_prefixes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
