/*
 * test_cgroup: layout detection, container discovery and the per-container
 * reader on fixture trees (tests/fixtures/cgroup/{v1,v2-cgroupfs,v2-systemd},
 * with tests/fixtures/proc for net/dev), on temporary copies of them that are
 * changed while a reader is open (vanishing, pid change, garbage, huge files),
 * and on the live host when it runs Docker with cgroup v1 (skipped otherwise).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/cgroup.h"
#include "agent/sample.h"

#define ID1  "da267480e4e3358fbda88f5e5115cb94f5ea34a20de027b16d5e5af5d62779c7"
#define ID2  "69fd5aee9f1431aa85b491c5015557e59c44cf7d6418b7614139499a80b074dc"
#define V2A  "fdb565d919d2142bf259544e3d63364a01cfe1d122aaf4a4d7ef40a31b3d3cd5"
#define V2B  "0bcb840cc2dfb5e3f71dfb9580d889a8475ee7306df98c692acd635168ca8902"

#define PATH_LEN 1024

/* ---- helpers ----------------------------------------------------------- */

/* snprintf that fails the test instead of truncating. */
static void pf(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void pf(char *out, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, cap, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap)
        fail_msg("path too long: %s", out);
}

/* $TETHER_FIXTURES/<rel> as an absolute-or-relative path in out. */
static const char *fx(char *out, const char *rel)
{
    const char *base = getenv("TETHER_FIXTURES");
    pf(out, PATH_LEN, "%s/%s", base ? base : "tests/fixtures", rel);
    return out;
}

static void detect_fixture(const char *tree, struct cg_layout *l)
{
    char root[PATH_LEN], proc[PATH_LEN], rel[PATH_LEN], err[256] = "";
    pf(rel, sizeof rel, "cgroup/%s/sys/fs/cgroup", tree);
    int rc = cg_layout_detect(fx(root, rel), fx(proc, "proc"), l, err, sizeof err);
    if (rc != 0)
        fail_msg("detect %s: %d %s", tree, rc, err);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
    char cmd[4 * PATH_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    if (system(cmd) != 0)
        fail_msg("command failed: %s", cmd);
}

/* Rewrites a file in place (same inode, so kept-open fds see the new content). */
static void rewrite(const char *path, const char *content)
{
    int fd = open(path, O_WRONLY | O_TRUNC);
    if (fd < 0)
        fail_msg("open %s: %s", path, strerror(errno));
    size_t len = strlen(content);
    assert_int_equal(write(fd, content, len), (ssize_t)len);
    close(fd);
}

/* A temporary copy of fixture trees: <tmp>/cgroup/<tree> and <tmp>/proc. */
struct tmptree {
    char dir[PATH_LEN];     /* the mkdtemp directory */
    char root[PATH_LEN];    /* <dir>/cgroup/<tree>/sys/fs/cgroup */
    char proc[PATH_LEN];    /* <dir>/proc */
};

static void tmptree_make(struct tmptree *t, const char *tree)
{
    char src[PATH_LEN], rel[PATH_LEN];
    pf(t->dir, sizeof t->dir, "/tmp/tether-cgtest-XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    pf(rel, sizeof rel, "cgroup/%s", tree);
    sh("mkdir -p '%s/cgroup' && cp -a '%s' '%s/cgroup/'", t->dir, fx(src, rel), t->dir);
    sh("cp -a '%s' '%s/'", fx(src, "proc"), t->dir);
    pf(t->root, sizeof t->root, "%s/cgroup/%s/sys/fs/cgroup", t->dir, tree);
    pf(t->proc, sizeof t->proc, "%s/proc", t->dir);
}

static void tmptree_free(struct tmptree *t) { sh("rm -rf '%s'", t->dir); }

struct found {
    int n;
    char id[8][65];
    char path[8][CG_PATH_MAX];
};

static void on_found(void *arg, const char *id, const char *path)
{
    struct found *f = arg;
    if (f->n < 8) {
        pf(f->id[f->n], sizeof f->id[0], "%s", id);
        pf(f->path[f->n], sizeof f->path[0], "%s", path);
    }
    f->n++;
}

/* Index of id in f, -1 when absent. */
static int found_index(const struct found *f, const char *id)
{
    for (int i = 0; i < f->n && i < 8; i++)
        if (strcmp(f->id[i], id) == 0)
            return i;
    return -1;
}

static const struct blkdev_stat *find_dev(const struct csample *s, uint32_t maj, uint32_t min)
{
    static const struct blkdev_stat none;
    for (size_t i = 0; i < s->nblk; i++)
        if (s->blk[i].major == maj && s->blk[i].minor == min)
            return &s->blk[i];
    fail_msg("device %u:%u not in sample", maj, min);
    return &none;
}

static uint64_t ns_per_tick(void) { return 1000000000ull / (uint64_t)sysconf(_SC_CLK_TCK); }

/* Opens a reader on a fixture container and reads it once. */
static struct cg_reader *open_read(const struct cg_layout *l, const char *path, struct csample *s,
                                   struct cg_stats *st)
{
    int err = 1;
    struct cg_reader *r = cg_reader_open(l, path, &err);
    if (!r)
        fail_msg("open %s: %d", path, err);
    assert_int_equal(err, 0);
    assert_int_equal(cg_reader_read(r, s, st), 0);
    return r;
}

/* ---- layout ------------------------------------------------------------ */

static void test_detect_v1_hybrid(void **state)
{
    struct cg_layout l;
    char exp[PATH_LEN];
    detect_fixture("v1", &l);
    assert_int_equal(l.version, CG_V1);
    /* the tree joins cpu,cpuacct and links cpu and cpuacct to it: exact names win */
    assert_true(ends_with(l.ctrl[CG_CTRL_CPU], "/sys/fs/cgroup/cpu"));
    assert_true(ends_with(l.ctrl[CG_CTRL_CPUACCT], "/sys/fs/cgroup/cpuacct"));
    assert_true(ends_with(l.ctrl[CG_CTRL_MEMORY], "/sys/fs/cgroup/memory"));
    assert_true(ends_with(l.ctrl[CG_CTRL_BLKIO], "/sys/fs/cgroup/blkio"));
    assert_true(ends_with(l.ctrl[CG_CTRL_PIDS], "/sys/fs/cgroup/pids"));
    assert_true(ends_with(l.unified, "/sys/fs/cgroup/unified"));
    assert_string_equal(l.scan, l.ctrl[CG_CTRL_MEMORY]);
    assert_string_equal(l.sys_root, fx(exp, "cgroup/v1/sys"));
    assert_string_equal(l.proc_root, fx(exp, "proc"));
    assert_int_equal(l.drivers, CG_DRIVER_CGROUPFS);
}

static void test_detect_v2(void **state)
{
    struct cg_layout l;
    char exp[PATH_LEN];
    detect_fixture("v2-cgroupfs", &l);
    assert_int_equal(l.version, CG_V2);
    assert_string_equal(l.root, fx(exp, "cgroup/v2-cgroupfs/sys/fs/cgroup"));
    assert_string_equal(l.unified, l.root);
    assert_string_equal(l.scan, l.root);
    for (int c = 0; c < CG_CTRL_N; c++)
        assert_string_equal(l.ctrl[c], l.root);
    assert_string_equal(l.sys_root, fx(exp, "cgroup/v2-cgroupfs/sys"));
    assert_int_equal(l.drivers, CG_DRIVER_CGROUPFS);

    detect_fixture("v2-systemd", &l);
    assert_int_equal(l.version, CG_V2);
    assert_int_equal(l.drivers, CG_DRIVER_SYSTEMD);
}

static void test_detect_separate_and_joined(void **state)
{
    char dir[PATH_LEN] = "/tmp/tether-cgdetect-XXXXXX", root[PATH_LEN + 8], err[256];
    struct cg_layout l;
    assert_non_null(mkdtemp(dir));
    /* the layout of this host: one directory per controller; a "unified" without
     * cgroup.controllers is not a cgroup2 mount; a trailing slash is fine */
    sh("cd '%s' && mkdir cpu cpuacct memory blkio pids cpuset unified systemd && "
       "mkdir -p memory/system.slice", dir);
    pf(root, sizeof root, "%s///", dir);
    assert_int_equal(cg_layout_detect(root, "/proc", &l, err, sizeof err), 0);
    assert_int_equal(l.version, CG_V1);
    assert_string_equal(l.root, dir);
    pf(root, sizeof root, "%s/cpuacct", dir);
    assert_string_equal(l.ctrl[CG_CTRL_CPUACCT], root);
    pf(root, sizeof root, "%s/memory", dir);
    assert_string_equal(l.scan, root);
    assert_string_equal(l.unified, "");
    assert_string_equal(l.sys_root, "/sys");    /* not named .../fs/cgroup */
    assert_int_equal(l.drivers, CG_DRIVER_SYSTEMD);
    sh("rm -rf '%s'/*", dir);

    /* only a joined "cpuacct,cpu" (no symlinks), and a hybrid unified mount */
    sh("cd '%s' && mkdir cpuacct,cpu memory unified && touch unified/cgroup.controllers", dir);
    assert_int_equal(cg_layout_detect(dir, NULL, &l, err, sizeof err), 0);
    pf(root, sizeof root, "%s/cpuacct,cpu", dir);
    assert_string_equal(l.ctrl[CG_CTRL_CPU], root);
    assert_string_equal(l.ctrl[CG_CTRL_CPUACCT], root);
    assert_string_equal(l.ctrl[CG_CTRL_BLKIO], "");
    pf(root, sizeof root, "%s/unified", dir);
    assert_string_equal(l.unified, root);
    assert_string_equal(l.proc_root, "/proc");
    assert_int_equal(l.drivers, 0);
    sh("rm -rf '%s'", dir);
}

static void test_detect_errors(void **state)
{
    char dir[PATH_LEN] = "/tmp/tether-cgdetect-XXXXXX", path[PATH_LEN + 16], err[256];
    struct cg_layout l;
    err[0] = '\0';
    assert_int_equal(cg_layout_detect("/nonexistent/tether/cgroup", NULL, &l, err, sizeof err),
                     -ENOENT);
    assert_true(strstr(err, "/nonexistent/tether/cgroup") != NULL);

    assert_non_null(mkdtemp(dir));
    err[0] = '\0';
    assert_int_equal(cg_layout_detect(dir, NULL, &l, err, sizeof err), -ENOENT); /* empty */
    assert_true(err[0] != '\0');
    pf(path, sizeof path, "%s/file", dir);
    sh("touch '%s'", path);
    assert_int_equal(cg_layout_detect(path, NULL, &l, NULL, 0), -ENOTDIR);
    sh("rm -rf '%s'", dir);

    char longp[CG_PATH_MAX + 10];
    memset(longp, 'a', sizeof longp - 1);
    longp[0] = '/';
    longp[sizeof longp - 1] = '\0';
    assert_int_equal(cg_layout_detect(longp, NULL, &l, err, sizeof err), -ENAMETOOLONG);
}

/* ---- discovery --------------------------------------------------------- */

static void test_scan(void **state)
{
    struct cg_layout l;
    struct found f;

    detect_fixture("v1", &l);
    memset(&f, 0, sizeof f);
    assert_int_equal(cg_scan(&l, on_found, &f), 2);    /* short id and foreign dir skipped */
    int i1 = found_index(&f, ID1), i2 = found_index(&f, ID2);
    assert_true(i1 >= 0 && i2 >= 0);
    assert_string_equal(f.path[i1], "/docker/" ID1);
    assert_string_equal(f.path[i2], "/docker/" ID2);

    detect_fixture("v2-cgroupfs", &l);
    memset(&f, 0, sizeof f);
    assert_int_equal(cg_scan(&l, on_found, &f), 1);
    assert_string_equal(f.id[0], V2A);
    assert_string_equal(f.path[0], "/docker/" V2A);

    detect_fixture("v2-systemd", &l);
    memset(&f, 0, sizeof f);
    assert_int_equal(cg_scan(&l, on_found, &f), 1);    /* docker.service, short scope skipped */
    assert_string_equal(f.id[0], V2B);
    assert_string_equal(f.path[0], "/system.slice/docker-" V2B ".scope");
}

static void test_path_for_id(void **state)
{
    struct cg_layout l;
    char out[CG_PATH_MAX];
    detect_fixture("v1", &l);
    assert_int_equal(cg_path_for_id(&l, ID2, out, sizeof out), 0);
    assert_string_equal(out, "/docker/" ID2);
    assert_int_equal(cg_path_for_id(&l, V2A, out, sizeof out), -ENOENT);
    assert_int_equal(cg_path_for_id(&l, "69fd5aee9f14", out, sizeof out), -EINVAL);
    assert_int_equal(cg_path_for_id(&l, "../../../../../../../../../etc", out, sizeof out), -EINVAL);
    assert_int_equal(cg_path_for_id(&l, ID2, out, 20), -ENOSPC);

    detect_fixture("v2-systemd", &l);
    assert_int_equal(cg_path_for_id(&l, V2B, out, sizeof out), 0);
    assert_string_equal(out, "/system.slice/docker-" V2B ".scope");
    assert_int_equal(cg_path_for_id(&l, ID2, out, sizeof out), -ENOENT);
}

/* ---- reader on fixtures ------------------------------------------------ */

static void test_reader_v1(void **state)
{
    struct cg_layout l;
    struct csample s;
    struct cg_stats st = { 0, 0 };
    memset(&s, 0, sizeof s);
    detect_fixture("v1", &l);
    struct cg_reader *r = open_read(&l, "/docker/" ID2, &s, &st);
    assert_int_equal(st.read_errors, 0);
    assert_int_equal(st.parse_errors, 0);
    assert_int_equal(s.have, HAVE_CPU | HAVE_CFS | HAVE_MEM | HAVE_MEM_SWAP | HAVE_MEM_MAX |
                             HAVE_MEM_FAIL | HAVE_OOM | HAVE_PIDS | HAVE_BLK | HAVE_NET |
                             HAVE_PSI_CPU | HAVE_PSI_MEM | HAVE_PSI_IO);
    assert_true(s.timestamp > 1.6e9);
    assert_null(s.meta);

    assert_int_equal(s.cpu_usage_ns, 8194913538ull);
    assert_int_equal(s.cpu_user_ns, 815 * ns_per_tick());
    assert_int_equal(s.cpu_system_ns, 3 * ns_per_tick());
    assert_int_equal(s.ncpu, 2);
    assert_int_equal(s.percpu_ns[0], 4045611052ull);
    assert_int_equal(s.percpu_ns[1], 4153195049ull);
    assert_int_equal(s.cfs_periods, 167);
    assert_int_equal(s.cfs_throttled_periods, 116);
    assert_int_equal(s.cfs_throttled_ns, 1453606661);

    assert_int_equal(s.mem_usage, 43868160);
    assert_int_equal(s.mem_working_set, 43868160 - 41943040);  /* usage - total_inactive_file */
    assert_int_equal(s.mem_rss, 110592);
    assert_int_equal(s.mem_cache, 41943040);
    assert_int_equal(s.mem_mapped_file, 0);
    assert_int_equal(s.mem_swap, 0);
    assert_int_equal(s.mem_limit, 268435456);
    assert_int_equal(s.mem_max_usage, 45645824);
    assert_int_equal(s.mem_failcnt, 0);
    assert_int_equal(s.oom_events, 0);

    assert_int_equal(s.nblk, 2);
    const struct blkdev_stat *sda = find_dev(&s, 8, 0), *sdb = find_dev(&s, 8, 16);
    assert_string_equal(sda->dev, "/dev/sda");  /* from sys/dev/block/8:0/uevent */
    assert_string_equal(sdb->dev, "8:16");      /* no uevent: MAJ:MIN */
    assert_int_equal(sda->read_bytes, 3145728);
    assert_int_equal(sda->write_bytes, 20971520);
    assert_int_equal(sda->reads, 48);
    assert_int_equal(sda->writes, 320);
    assert_int_equal(sdb->read_bytes, 1048576);
    assert_int_equal(sdb->reads, 16);

    assert_int_equal(s.processes, 2);
    assert_int_equal(s.threads, 2);
    assert_int_equal(s.nnet, 1);                /* lo skipped */
    assert_string_equal(s.net[0].name, "eth0");
    assert_int_equal(s.net[0].rx_bytes, 894);
    assert_int_equal(s.net[0].tx_packets, 3);

    assert_int_equal(s.psi_cpu.some_total_us, 4582373);
    assert_int_equal(s.psi_cpu.full_total_us, 4571091);
    assert_int_equal(s.psi_mem.some_total_us, 0);
    assert_int_equal(s.psi_io.full_total_us, 0);

    /* 17 stat files + net/dev */
    assert_int_equal(cg_reader_nfds(r), 18);

    /* a second read over the first result frees its arrays (ASan checks) */
    assert_int_equal(cg_reader_read(r, &s, &st), 0);
    assert_int_equal(s.mem_working_set, 1925120);
    assert_int_equal(s.nblk, 2);
    assert_int_equal(cg_reader_nfds(r), 18);
    csample_clear(&s);
    cg_reader_close(r);
}

static void test_reader_v1_partial(void **state)
{
    /* ID1: no blkio, pids or unified directory; unlimited memory */
    struct cg_layout l;
    struct csample s;
    struct cg_stats st = { 0, 0 };
    memset(&s, 0, sizeof s);
    detect_fixture("v1", &l);
    struct cg_reader *r = open_read(&l, "/docker/" ID1, &s, &st);
    assert_int_equal(st.read_errors + st.parse_errors, 0);
    assert_int_equal(s.have, HAVE_CPU | HAVE_CFS | HAVE_MEM | HAVE_MEM_SWAP | HAVE_MEM_MAX |
                             HAVE_MEM_FAIL | HAVE_OOM | HAVE_PIDS | HAVE_NET);
    assert_int_equal(s.cpu_usage_ns, 130122352301ull);
    assert_int_equal(s.cpu_user_ns, 12998 * ns_per_tick());
    assert_int_equal(s.ncpu, 2);
    assert_int_equal(s.percpu_ns[1], 117123059929ull);
    assert_int_equal(s.mem_limit, 0);                  /* 9223372036854771712 = none */
    assert_int_equal(s.mem_usage, 327680);
    assert_int_equal(s.mem_working_set, 327680);       /* no inactive file pages */
    assert_int_equal(s.mem_rss, 61440);
    assert_int_equal(s.mem_max_usage, 4087808);
    assert_int_equal(s.processes, 1);                  /* from the cpu,cpuacct hierarchy */
    assert_int_equal(s.nnet, 1);
    assert_int_equal(s.net[0].rx_bytes, 908);
    assert_null(s.blk);
    assert_int_equal(cg_reader_nfds(r), 13);           /* 12 stat files + net/dev */
    csample_clear(&s);
    cg_reader_close(r);
}

static void test_reader_v2_cgroupfs(void **state)
{
    struct cg_layout l;
    struct csample s;
    struct cg_stats st = { 0, 0 };
    memset(&s, 0, sizeof s);
    detect_fixture("v2-cgroupfs", &l);
    struct cg_reader *r = open_read(&l, "/docker/" V2A, &s, &st);
    assert_int_equal(st.read_errors + st.parse_errors, 0);
    assert_int_equal(s.have, HAVE_CPU | HAVE_CFS | HAVE_MEM | HAVE_MEM_SWAP | HAVE_MEM_MAX |
                             HAVE_OOM | HAVE_PIDS | HAVE_BLK | HAVE_NET | HAVE_PSI_CPU |
                             HAVE_PSI_MEM | HAVE_PSI_IO);
    assert_int_equal(s.cpu_usage_ns, 7523186000ull);
    assert_int_equal(s.cpu_user_ns, 5301459000ull);
    assert_int_equal(s.cpu_system_ns, 2221727000ull);
    assert_int_equal(s.ncpu, 0);
    assert_null(s.percpu_ns);
    assert_int_equal(s.cfs_periods, 1201);
    assert_int_equal(s.cfs_throttled_periods, 87);
    assert_int_equal(s.cfs_throttled_ns, 3915000000ull);

    assert_int_equal(s.mem_usage, 157286400);
    assert_int_equal(s.mem_working_set, 157286400 - 62914560);  /* memory.current - inactive_file */
    assert_int_equal(s.mem_rss, 52428800);                      /* anon */
    assert_int_equal(s.mem_cache, 94371840);                    /* file */
    assert_int_equal(s.mem_mapped_file, 12582912);
    assert_int_equal(s.mem_swap, 4096000);
    assert_int_equal(s.mem_limit, 536870912);
    assert_int_equal(s.mem_max_usage, 201326592);
    assert_int_equal(s.oom_events, 1);

    assert_int_equal(s.nblk, 2);
    const struct blkdev_stat *sda = find_dev(&s, 8, 0), *sdb = find_dev(&s, 8, 16);
    assert_string_equal(sda->dev, "/dev/sda");
    assert_string_equal(sdb->dev, "/dev/sdb");
    assert_int_equal(sdb->read_bytes, 1459200);
    assert_int_equal(sdb->write_bytes, 314773504);
    assert_int_equal(sdb->reads, 192);
    assert_int_equal(sdb->writes, 353);
    assert_int_equal(sda->write_bytes, 299008000);

    assert_int_equal(s.processes, 3);
    assert_int_equal(s.threads, 5);
    assert_int_equal(s.nnet, 2);
    assert_string_equal(s.net[0].name, "eth0");
    assert_int_equal(s.net[0].rx_bytes, 123456789);
    assert_int_equal(s.net[0].rx_errors, 1);
    assert_int_equal(s.net[0].tx_dropped, 4);
    assert_string_equal(s.net[1].name, "eth1");

    assert_int_equal(s.psi_cpu.some_total_us, 3915123);
    assert_int_equal(s.psi_cpu.full_total_us, 1200456);
    assert_int_equal(s.psi_mem.some_total_us, 44012);
    assert_int_equal(s.psi_io.full_total_us, 800321);
    assert_int_equal(cg_reader_nfds(r), 14);    /* 13 v2 files + net/dev */
    csample_clear(&s);
    cg_reader_close(r);
}

static void test_reader_v2_systemd(void **state)
{
    struct cg_layout l;
    struct csample s;
    struct cg_stats st = { 0, 0 };
    memset(&s, 0, sizeof s);
    detect_fixture("v2-systemd", &l);
    struct cg_reader *r = open_read(&l, "/system.slice/docker-" V2B ".scope", &s, &st);
    assert_int_equal(st.read_errors + st.parse_errors, 0);
    /* cpu controller off (no CFS keys), no memory.peak / swap file, empty io.stat */
    assert_int_equal(s.have, HAVE_CPU | HAVE_MEM | HAVE_OOM | HAVE_PIDS | HAVE_BLK | HAVE_NET |
                             HAVE_PSI_CPU | HAVE_PSI_MEM | HAVE_PSI_IO);
    assert_int_equal(s.cpu_usage_ns, 250000000);
    assert_int_equal(s.cpu_system_ns, 50000000);
    assert_int_equal(s.mem_usage, 8388608);
    assert_int_equal(s.mem_working_set, 0);     /* inactive_file > usage: floored at 0 */
    assert_int_equal(s.mem_limit, 0);           /* "max" */
    assert_int_equal(s.nblk, 0);
    assert_null(s.blk);
    assert_int_equal(s.processes, 1);
    assert_int_equal(s.net[0].rx_bytes, 1234567890123ull);
    assert_int_equal(s.psi_cpu.some_total_us, 1500);
    assert_int_equal(s.psi_cpu.full_total_us, 0);
    assert_int_equal(s.psi_io.some_total_us, 77);
    csample_clear(&s);
    cg_reader_close(r);
}

static void test_reader_open_errors(void **state)
{
    struct cg_layout l;
    int err = 0;
    detect_fixture("v1", &l);
    assert_null(cg_reader_open(&l, "/docker/" V2A, &err));
    assert_int_equal(err, -ENOENT);
    assert_null(cg_reader_open(&l, "docker/" ID2, &err));
    assert_int_equal(err, -EINVAL);
    assert_null(cg_reader_open(&l, "/docker/../docker/" ID2, &err));
    assert_int_equal(err, -EINVAL);
    cg_reader_close(NULL);
}

/* ---- reader on changing copies ----------------------------------------- */

static void test_reader_vanish(void **state)
{
    struct tmptree t;
    struct cg_layout l;
    struct csample s;
    struct cg_stats st = { 0, 0 };
    char err[256], from[2 * PATH_LEN], to[2 * PATH_LEN];
    tmptree_make(&t, "v2-cgroupfs");
    assert_int_equal(cg_layout_detect(t.root, t.proc, &l, err, sizeof err), 0);
    memset(&s, 0, sizeof s);
    s.meta = cmeta_new(V2A, "/docker/" V2A, "web", "nginx", 0);
    struct cg_reader *r = open_read(&l, "/docker/" V2A, &s, &st);
    assert_non_null(s.net);
    assert_non_null(s.blk);
    struct cmeta *meta = s.meta;

    /* the container's cgroup disappears while its files are open */
    pf(from, sizeof from, "%s/docker/%s", t.root, V2A);
    pf(to, sizeof to, "%s/docker/gone", t.root);
    assert_int_equal(rename(from, to), 0);
    assert_int_equal(cg_reader_read(r, &s, &st), -ENOENT);
    assert_int_equal(s.have, 0);
    assert_null(s.net);
    assert_null(s.blk);
    assert_null(s.percpu_ns);
    assert_int_equal(s.nnet, 0);
    assert_int_equal(s.mem_usage, 0);
    assert_int_equal(s.cpu_usage_ns, 0);
    assert_ptr_equal(s.meta, meta);             /* the caller's reference is kept */
    assert_int_equal(st.read_errors + st.parse_errors, 0);
    assert_int_equal(cg_reader_nfds(r), 13);    /* net/dev released */
    cg_reader_close(r);

    int e = 0;
    assert_null(cg_reader_open(&l, "/docker/" V2A, &e));
    assert_int_equal(e, -ENOENT);
    csample_clear(&s);                          /* drops the meta */
    tmptree_free(&t);
}

static void test_reader_net_repick(void **state)
{
    struct tmptree t;
    struct cg_layout l;
    struct csample s;
    struct cg_stats st = { 0, 0 };
    char err[256], path[2 * PATH_LEN];
    tmptree_make(&t, "v2-cgroupfs");
    /* pid 5017 lives in another namespace view than 5001 in this copy */
    pf(path, sizeof path, "%s/5017/net/dev", t.proc);
    rewrite(path, "Inter-|   Receive |  Transmit\n face |bytes |bytes\n"
                  "  eth0: 777 7 0 0 0 0 0 0 888 8 0 0 0 0 0 0\n");
    assert_int_equal(cg_layout_detect(t.root, t.proc, &l, err, sizeof err), 0);
    memset(&s, 0, sizeof s);
    struct cg_reader *r = open_read(&l, "/docker/" V2A, &s, &st);
    assert_int_equal(s.net[0].rx_bytes, 123456789);     /* first pid: 5001 */

    /* 5001 exits: the next read follows the first pid left in the cgroup */
    pf(path, sizeof path, "%s/docker/%s/cgroup.procs", t.root, V2A);
    rewrite(path, "5017\n5018\n");
    assert_int_equal(cg_reader_read(r, &s, &st), 0);
    assert_true(s.have & HAVE_NET);
    assert_int_equal(s.processes, 2);
    assert_int_equal(s.nnet, 1);
    assert_int_equal(s.net[0].rx_bytes, 777);
    assert_int_equal(s.net[0].tx_bytes, 888);
    assert_int_equal(cg_reader_nfds(r), 14);

    /* the cgroup has no process left: no network group, fd released */
    rewrite(path, "");
    assert_int_equal(cg_reader_read(r, &s, &st), 0);
    assert_false(s.have & HAVE_NET);
    assert_true(s.have & HAVE_PIDS);
    assert_int_equal(s.processes, 0);
    assert_int_equal(cg_reader_nfds(r), 13);

    /* a pid without a /proc entry: no network, no crash, picked up again later */
    rewrite(path, "424242\n");
    assert_int_equal(cg_reader_read(r, &s, &st), 0);
    assert_false(s.have & HAVE_NET);
    rewrite(path, "5001\n");
    assert_int_equal(cg_reader_read(r, &s, &st), 0);
    assert_true(s.have & HAVE_NET);
    assert_int_equal(s.net[0].rx_bytes, 123456789);

    /* the first pid has no /proc entry (a zombie, or gone): the next one is used */
    rewrite(path, "424242\n5017\n");
    assert_int_equal(cg_reader_read(r, &s, &st), 0);
    assert_true(s.have & HAVE_NET);
    assert_int_equal(s.net[0].rx_bytes, 777);
    assert_int_equal(st.read_errors + st.parse_errors, 0);
    csample_clear(&s);
    cg_reader_close(r);
    tmptree_free(&t);
}

static void test_reader_garbage(void **state)
{
    struct tmptree t;
    struct cg_layout l;
    struct csample s;
    struct cg_stats st = { 0, 0 };
    char err[256], path[2 * PATH_LEN + 64];
    tmptree_make(&t, "v1");
    assert_int_equal(cg_layout_detect(t.root, t.proc, &l, err, sizeof err), 0);
    memset(&s, 0, sizeof s);
    struct cg_reader *r = open_read(&l, "/docker/" ID2, &s, &st);
    assert_int_equal(st.parse_errors, 0);

    /* corrupt four files in place: their groups go, the others stay */
    pf(path, sizeof path, "%s/memory/docker/%s/memory.stat", t.root, ID2);
    rewrite(path, "total_rss banana\n");
    pf(path, sizeof path, "%s/unified/docker/%s/cpu.pressure", t.root, ID2);
    rewrite(path, "some avg10=1.00\n");
    pf(path, sizeof path, "%s/cpuacct/docker/%s/cpuacct.usage_percpu", t.root, ID2);
    rewrite(path, "");
    pf(path, sizeof path, "%s/blkio/docker/%s/blkio.throttle.io_serviced", t.root, ID2);
    rewrite(path, "8:0 Read\n");
    pf(path, sizeof path, "%s/9941/net/dev", t.proc);
    rewrite(path, "no header\n");
    assert_int_equal(cg_reader_read(r, &s, &st), 0);
    assert_int_equal(st.parse_errors, 5);
    assert_int_equal(st.read_errors, 0);
    assert_false(s.have & (HAVE_MEM | HAVE_MEM_SWAP | HAVE_PSI_CPU | HAVE_BLK | HAVE_NET));
    assert_true(s.have & HAVE_CPU);
    assert_true(s.have & HAVE_MEM_MAX);
    assert_true(s.have & HAVE_PSI_MEM);
    assert_true(s.have & HAVE_PIDS);
    assert_int_equal(s.ncpu, 0);
    assert_null(s.percpu_ns);
    assert_null(s.blk);
    assert_null(s.net);
    assert_int_equal(s.mem_usage, 0);
    assert_int_equal(s.cpu_usage_ns, 8194913538ull);
    csample_clear(&s);
    cg_reader_close(r);
    tmptree_free(&t);
}

static void test_reader_big_files(void **state)
{
    struct tmptree t;
    struct cg_layout l;
    struct csample s;
    struct cg_stats st = { 0, 0 };
    char err[256], path[2 * PATH_LEN + 64];
    tmptree_make(&t, "v2-cgroupfs");
    /* 20000 threads (~120 KB) and 1000 interfaces (~48 KB): past the 16 KiB stack buffer */
    pf(path, sizeof path, "%s/docker/%s/cgroup.threads", t.root, V2A);
    sh("seq 100000 119999 > '%s'", path);
    pf(path, sizeof path, "%s/5001/net/dev", t.proc);
    sh("(printf 'Inter-|\\n face |\\n'; for i in $(seq 1 1000); do "
       "echo \"  eth$i: $i 1 0 0 0 0 0 0 $i 1 0 0 0 0 0 0\"; done) > '%s'", path);
    assert_int_equal(cg_layout_detect(t.root, t.proc, &l, err, sizeof err), 0);
    memset(&s, 0, sizeof s);
    struct cg_reader *r = open_read(&l, "/docker/" V2A, &s, &st);
    assert_int_equal(st.read_errors + st.parse_errors, 0);
    assert_int_equal(s.threads, 20000);
    assert_int_equal(s.nnet, 1000);
    assert_string_equal(s.net[999].name, "eth1000");
    assert_int_equal(s.net[999].tx_bytes, 1000);
    assert_int_equal(cg_reader_read(r, &s, &st), 0);    /* again, with the grown hints */
    assert_int_equal(s.nnet, 1000);
    csample_clear(&s);
    cg_reader_close(r);
    tmptree_free(&t);
}

/* ---- live host --------------------------------------------------------- */

struct live_list {
    int n;                              /* paths collected (at most 32) */
    char path[32][CG_PATH_MAX];
};

static void live_collect(void *arg, const char *id, const char *path)
{
    struct live_list *c = arg;
    if (c->n < 32)
        pf(c->path[c->n++], CG_PATH_MAX, "%s", path);
}

/* Containers of other users come and go while this runs: a container that is
 * gone (open or read -ENOENT) is skipped, and a starting or exiting one may
 * lack a network sample (its pids are zombies or not yet in a namespace). */
static void test_live_host(void **state)
{
    struct cg_layout l;
    char err[256];
    if (access("/sys/fs/cgroup/cpuacct/docker", F_OK) != 0)
        skip();
    assert_int_equal(cg_layout_detect(NULL, NULL, &l, err, sizeof err), 0);
    assert_int_equal(l.version, CG_V1);
    assert_string_equal(l.ctrl[CG_CTRL_CPUACCT], "/sys/fs/cgroup/cpuacct");
    assert_string_equal(l.sys_root, "/sys");
    static struct live_list list;
    list.n = 0;
    assert_true(cg_scan(&l, live_collect, &list) >= 0);
    int ok = 0, with_net = 0;
    for (int i = 0; i < list.n; i++) {
        struct csample s1, s2;
        struct cg_stats st = { 0, 0 };
        int e;
        struct cg_reader *r = cg_reader_open(&l, list.path[i], &e);
        if (!r)
            continue;
        memset(&s1, 0, sizeof s1);
        memset(&s2, 0, sizeof s2);
        int rc1 = cg_reader_read(r, &s1, &st), rc2 = cg_reader_read(r, &s2, &st);
        int nfds = cg_reader_nfds(r);
        cg_reader_close(r);
        if (rc1 == 0 && rc2 == 0) {
            ok++;
            with_net += (s2.have & HAVE_NET) != 0;
            uint32_t need = HAVE_CPU | HAVE_CFS | HAVE_MEM | HAVE_MEM_MAX | HAVE_OOM | HAVE_PIDS |
                            HAVE_PSI_CPU;
            uint64_t u1 = s1.cpu_usage_ns, u2 = s2.cpu_usage_ns, ws = s2.mem_working_set,
                     usage = s2.mem_usage, ncpu = s2.ncpu, have = s2.have;
            csample_clear(&s1);
            csample_clear(&s2);
            if ((have & need) != need)
                fail_msg("%s: have %#llx", list.path[i], (unsigned long long)have);
            assert_int_equal(st.parse_errors, 0);
            assert_true(u2 >= u1);
            assert_true(ws <= usage);
            assert_int_equal(ncpu, (uint64_t)sysconf(_SC_NPROCESSORS_CONF));
            assert_true(nfds >= 17);
        } else {
            assert_int_equal(rc1 == 0 ? rc2 : rc1, -ENOENT);
            csample_clear(&s1);
            csample_clear(&s2);
        }
    }
    if (ok == 0)
        skip();                             /* no container running */
    assert_true(with_net > 0);
}

/* A cgroup made and removed here: kept-open kernfs files fail once it is gone. */
static void test_live_rmdir(void **state)
{
    static const char *const ctrls[] = { "cpu", "cpuacct", "memory", "pids", "blkio", "unified" };
    char name[64], path[PATH_LEN], err[256];
    struct cg_layout l;
    if (geteuid() != 0 || access("/sys/fs/cgroup/cpuacct/docker", F_OK) != 0)
        skip();
    pf(name, sizeof name, "/tether-cgtest-%d", (int)getpid());
    for (size_t i = 0; i < sizeof ctrls / sizeof ctrls[0]; i++) {
        pf(path, sizeof path, "/sys/fs/cgroup/%s%s", ctrls[i], name);
        if (mkdir(path, 0755) != 0) {
            for (size_t j = 0; j < i; j++) {
                pf(path, sizeof path, "/sys/fs/cgroup/%s%s", ctrls[j], name);
                rmdir(path);
            }
            skip();
        }
    }
    assert_int_equal(cg_layout_detect(NULL, NULL, &l, err, sizeof err), 0);
    struct csample s;
    struct cg_stats st = { 0, 0 };
    memset(&s, 0, sizeof s);
    int e;
    struct cg_reader *r = cg_reader_open(&l, name, &e);
    assert_non_null(r);
    assert_int_equal(cg_reader_read(r, &s, &st), 0);
    assert_true(s.have & HAVE_MEM);
    assert_true(s.have & HAVE_PSI_CPU);
    assert_int_equal(s.processes, 0);
    for (size_t i = 0; i < sizeof ctrls / sizeof ctrls[0]; i++) {
        pf(path, sizeof path, "/sys/fs/cgroup/%s%s", ctrls[i], name);
        assert_int_equal(rmdir(path), 0);
    }
    assert_int_equal(cg_reader_read(r, &s, &st), -ENOENT);
    assert_int_equal(s.have, 0);
    assert_int_equal(st.read_errors, 0);
    cg_reader_close(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_detect_v1_hybrid),
        cmocka_unit_test(test_detect_v2),
        cmocka_unit_test(test_detect_separate_and_joined),
        cmocka_unit_test(test_detect_errors),
        cmocka_unit_test(test_scan),
        cmocka_unit_test(test_path_for_id),
        cmocka_unit_test(test_reader_v1),
        cmocka_unit_test(test_reader_v1_partial),
        cmocka_unit_test(test_reader_v2_cgroupfs),
        cmocka_unit_test(test_reader_v2_systemd),
        cmocka_unit_test(test_reader_open_errors),
        cmocka_unit_test(test_reader_vanish),
        cmocka_unit_test(test_reader_net_repick),
        cmocka_unit_test(test_reader_garbage),
        cmocka_unit_test(test_reader_big_files),
        cmocka_unit_test(test_live_host),
        cmocka_unit_test(test_live_rmdir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
