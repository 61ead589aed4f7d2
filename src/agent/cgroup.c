/*
 * cgroup: layout detection, container discovery and the per-container reader
 * over kept-open cgroup and /proc files (API and ownership in cgroup.h).
 *
 * Per interval and container, cg_reader_read does one pread(fd, buf, 16 KiB, 0)
 * per kept-open file into a stack buffer (a file that fills it is continued
 * into a heap buffer kept in the reader, e.g. cgroup.procs of a container with
 * thousands of tasks), hands the bytes to the pure parsers and one faccessat()
 * of the container directory at the end (a renamed or removed directory means
 * the container is gone even when the kept fds still read, as on plain files).
 *
 *   file (v1 / v2)                                       group
 *   cpuacct.usage + cpuacct.stat / cpu.stat usage_usec..  HAVE_CPU
 *   cpuacct.usage_percpu / -                              ncpu, percpu_ns
 *   cpu.stat nr_periods.. (v1 ns, v2 usec)                HAVE_CFS
 *   memory.usage_in_bytes / memory.current, memory.stat,
 *   memory.limit_in_bytes / memory.max                    HAVE_MEM
 *   memory.stat total_swap / memory.swap.current          HAVE_MEM_SWAP
 *   memory.max_usage_in_bytes / memory.peak               HAVE_MEM_MAX
 *   memory.failcnt / -                                    HAVE_MEM_FAIL
 *   memory.oom_control / memory.events (oom_kill)         HAVE_OOM
 *   blkio.throttle.io_service_bytes + io_serviced / io.stat  HAVE_BLK
 *   cgroup.procs + tasks / cgroup.threads                 HAVE_PIDS
 *   <proc>/<pid>/net/dev of one pid of cgroup.procs       HAVE_NET
 *   cpu/memory/io.pressure (v2 dir or hybrid unified dir) HAVE_PSI_*
 *
 * Errors: a kernfs file of a removed cgroup fails with ENODEV: that (and
 * ENOENT/ESRCH) means "vanished" and aborts the read with -ENOENT. Any other
 * failure only skips the group and is counted in struct cg_stats.
 */
#include "agent/cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "agent/cgroup_parse.h"
#include "agent/netdev.h"
#include "core/log.h"

#define CG_CGROUP_SUPER_MAGIC 0x27e0eb       /* linux/magic.h */
#define CG_CGROUP2_SUPER_MAGIC 0x63677270

#define CG_BUF_SIZE   (16 * 1024)        /* stack buffer per read; memory.stat is ~1.5 KB */
#define CG_BIG_MAX    (8 * 1024 * 1024)  /* largest file read (cgroup.procs/tasks, net/dev) */
#define CG_BLK_MAX    4096               /* block devices per container */
#define CG_NET_MAX    65536              /* interfaces per namespace */
#define CG_CPU_MAX    65536              /* CPUs in cpuacct.usage_percpu */

/* Files a reader keeps open (index into cg_reader.fd). */
enum cg_file {
    CGF_CPUACCT_USAGE,
    CGF_CPUACCT_STAT,
    CGF_CPUACCT_PERCPU,
    CGF_CPU_STAT,
    CGF_MEM_USAGE,
    CGF_MEM_LIMIT,
    CGF_MEM_MAXUSE,
    CGF_MEM_FAILCNT,
    CGF_MEM_STAT,
    CGF_MEM_OOM,
    CGF_MEM_SWAP,
    CGF_BLK_BYTES,
    CGF_BLK_OPS,
    CGF_PROCS,
    CGF_THREADS,
    CGF_PSI_CPU,
    CGF_PSI_MEM,
    CGF_PSI_IO,
    CGF_N
};

/* Where a file lives on v1 besides the controllers of enum cg_ctrl. */
enum { CG_DIR_UNIFIED = -1, CG_DIR_ANY = -2 };

struct cg_file_spec {
    int ctrl;               /* v1: enum cg_ctrl, CG_DIR_UNIFIED (PSI) or CG_DIR_ANY (first controller present) */
    const char *v1;         /* file name on v1; NULL when v1 has none */
    const char *v2;         /* file name on v2; NULL when v2 has none */
};

static const struct cg_file_spec cg_files[CGF_N] = {
    [CGF_CPUACCT_USAGE]  = { CG_CTRL_CPUACCT, "cpuacct.usage", NULL },
    [CGF_CPUACCT_STAT]   = { CG_CTRL_CPUACCT, "cpuacct.stat", NULL },
    [CGF_CPUACCT_PERCPU] = { CG_CTRL_CPUACCT, "cpuacct.usage_percpu", NULL },
    [CGF_CPU_STAT]       = { CG_CTRL_CPU, "cpu.stat", "cpu.stat" },
    [CGF_MEM_USAGE]      = { CG_CTRL_MEMORY, "memory.usage_in_bytes", "memory.current" },
    [CGF_MEM_LIMIT]      = { CG_CTRL_MEMORY, "memory.limit_in_bytes", "memory.max" },
    [CGF_MEM_MAXUSE]     = { CG_CTRL_MEMORY, "memory.max_usage_in_bytes", "memory.peak" },
    [CGF_MEM_FAILCNT]    = { CG_CTRL_MEMORY, "memory.failcnt", NULL },
    [CGF_MEM_STAT]       = { CG_CTRL_MEMORY, "memory.stat", "memory.stat" },
    [CGF_MEM_OOM]        = { CG_CTRL_MEMORY, "memory.oom_control", "memory.events" },
    [CGF_MEM_SWAP]       = { CG_CTRL_MEMORY, NULL, "memory.swap.current" },
    [CGF_BLK_BYTES]      = { CG_CTRL_BLKIO, "blkio.throttle.io_service_bytes", "io.stat" },
    [CGF_BLK_OPS]        = { CG_CTRL_BLKIO, "blkio.throttle.io_serviced", NULL },
    [CGF_PROCS]          = { CG_DIR_ANY, "cgroup.procs", "cgroup.procs" },
    [CGF_THREADS]        = { CG_DIR_ANY, "tasks", "cgroup.threads" },
    [CGF_PSI_CPU]        = { CG_DIR_UNIFIED, "cpu.pressure", "cpu.pressure" },
    [CGF_PSI_MEM]        = { CG_DIR_UNIFIED, "memory.pressure", "memory.pressure" },
    [CGF_PSI_IO]         = { CG_DIR_UNIFIED, "io.pressure", "io.pressure" },
};

/* v1 controllers tried in order for cgroup.procs/tasks. */
static const enum cg_ctrl cg_any_order[] = {
    CG_CTRL_PIDS, CG_CTRL_CPUACCT, CG_CTRL_MEMORY, CG_CTRL_CPU, CG_CTRL_BLKIO,
};

static const char *const cg_ctrl_names[CG_CTRL_N] = {
    [CG_CTRL_CPU] = "cpu",
    [CG_CTRL_CPUACCT] = "cpuacct",
    [CG_CTRL_MEMORY] = "memory",
    [CG_CTRL_BLKIO] = "blkio",
    [CG_CTRL_PIDS] = "pids",
};

/* One cached block device name of a reader. */
struct cg_devname {
    uint32_t major, minor;  /* device number */
    char dev[32];           /* "/dev/NAME", or "MAJ:MIN" when sysfs does not name it */
};

struct cg_reader {
    const struct cg_layout *l;  /* borrowed; outlives the reader (see cgroup.h) */
    enum cg_version version;    /* l->version, copied for the hot path */
    int fd[CGF_N];              /* kept-open files, -1 when absent */
    int net_fd;                 /* <proc>/<net_pid>/net/dev, -1 when not open */
    uint64_t net_pid;           /* pid whose net/dev is open; 0 when none */
    uint64_t ns_per_tick;       /* 1e9 / sysconf(_SC_CLK_TCK), for cpuacct.stat */
    size_t ncpu_hint;           /* percpu array size to try first (last seen) */
    size_t blk_hint;            /* blk array size to try first */
    size_t net_hint;            /* net array size to try first */
    struct cg_devname *devs;    /* block device name cache (malloc'd), ndevs used of devs_cap */
    size_t ndevs, devs_cap;
    char *big;                  /* heap buffer for files over CG_BUF_SIZE (malloc'd), big_cap bytes */
    size_t big_cap;
    char live_path[2 * CG_PATH_MAX]; /* l->scan + cgroup path: checked once per read */
};

/* ---- small helpers ----------------------------------------------------- */

static void set_err(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t cap, const char *fmt, ...)
{
    if (!err || cap == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}

/* Copies src into dst (CG_PATH_MAX) without trailing slashes; -ENAMETOOLONG when too long. */
static int copy_root(char *dst, const char *src)
{
    size_t len = strlen(src);
    while (len > 1 && src[len - 1] == '/')
        len--;
    if (len == 0 || len >= CG_PATH_MAX)
        return -ENAMETOOLONG;
    memcpy(dst, src, len);
    dst[len] = '\0';
    return 0;
}

/* out = a + b + c (c may be NULL); false (out unchanged or partial) when it does not fit in cap. */
static bool path_cat(char *out, size_t cap, const char *a, const char *b, const char *c)
{
    size_t la = strlen(a), lb = strlen(b), lc = c ? strlen(c) : 0;
    if (la + lb + lc + 1 > cap)
        return false;
    memcpy(out, a, la);
    memcpy(out + la, b, lb);
    memcpy(out + la + lb, c ? c : "", lc + 1);
    return true;
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* "dir/name" is a directory (symlinks followed). */
static bool is_subdir(const char *dir, const char *name)
{
    char path[2 * CG_PATH_MAX + 64];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path)
        return false;
    return is_dir(path);
}

static bool has_file(const char *dir, const char *name)
{
    char path[2 * CG_PATH_MAX + 64];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path)
        return false;
    return access(path, F_OK) == 0;
}

static bool is_hex64(const char *s, size_t len)
{
    if (len != 64)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* ---- layout ------------------------------------------------------------ */

/* v1: finds the controller hierarchies and the unified mount among root's entries. */
static int detect_v1(struct cg_layout *l, char *err, size_t cap)
{
    bool exact[CG_CTRL_N] = { false };
    DIR *d = opendir(l->root);
    if (!d) {
        int e = errno;
        set_err(err, cap, "cannot list %s: %s", l->root, strerror(e));
        return -e;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        if (name[0] == '.')
            continue;
        size_t nlen = strlen(name);
        char path[CG_PATH_MAX];
        if (!path_cat(path, sizeof path, l->root, "/", name) || !is_dir(path))
            continue;
        if (strcmp(name, "unified") == 0) {
            if (has_file(path, "cgroup.controllers"))
                memcpy(l->unified, path, sizeof path);
            continue;
        }
        /* "cpu,cpuacct" names two controllers; an exact name ("cpu") wins */
        const char *p = name;
        while (*p) {
            const char *comma = strchr(p, ',');
            size_t tlen = comma ? (size_t)(comma - p) : strlen(p);
            for (int c = 0; c < CG_CTRL_N; c++) {
                if (strlen(cg_ctrl_names[c]) != tlen || memcmp(cg_ctrl_names[c], p, tlen) != 0)
                    continue;
                bool is_exact = tlen == nlen;
                if (!l->ctrl[c][0] || (is_exact && !exact[c])) {
                    memcpy(l->ctrl[c], path, sizeof path);
                    exact[c] = is_exact;
                }
            }
            p += tlen;
            if (*p == ',')
                p++;
        }
    }
    closedir(d);
    if (!l->ctrl[CG_CTRL_CPUACCT][0] && !l->ctrl[CG_CTRL_MEMORY][0]) {
        set_err(err, cap, "%s: neither cgroup.controllers (v2) nor a cpuacct or memory "
                "hierarchy (v1); is the cgroup fs mounted there?", l->root);
        return -ENOENT;
    }
    static const enum cg_ctrl scan_order[] = {
        CG_CTRL_MEMORY, CG_CTRL_CPUACCT, CG_CTRL_CPU, CG_CTRL_PIDS, CG_CTRL_BLKIO,
    };
    for (size_t i = 0; i < sizeof scan_order / sizeof scan_order[0]; i++) {
        if (l->ctrl[scan_order[i]][0]) {
            memcpy(l->scan, l->ctrl[scan_order[i]], CG_PATH_MAX);
            break;
        }
    }
    return 0;
}

int cg_layout_detect(const char *cgroup_root, const char *proc_root, struct cg_layout *out,
                     char *err, size_t cap)
{
    struct cg_layout *l = out;
    memset(l, 0, sizeof *l);
    if (!cgroup_root)
        cgroup_root = "/sys/fs/cgroup";
    if (!proc_root)
        proc_root = "/proc";
    if (copy_root(l->root, cgroup_root) < 0 || copy_root(l->proc_root, proc_root) < 0) {
        set_err(err, cap, "cgroup or proc root path too long");
        return -ENAMETOOLONG;
    }
    struct stat st;
    if (stat(l->root, &st) < 0) {
        int e = errno;
        set_err(err, cap, "cgroup root %s: %s", l->root, strerror(e));
        return -e;
    }
    if (!S_ISDIR(st.st_mode)) {
        set_err(err, cap, "cgroup root %s is not a directory", l->root);
        return -ENOTDIR;
    }

    /* sysfs sits two levels above a root named ".../fs/cgroup" */
    size_t rlen = strlen(l->root);
    if (rlen > 10 && strcmp(l->root + rlen - 10, "/fs/cgroup") == 0) {
        memcpy(l->sys_root, l->root, rlen - 10);
        l->sys_root[rlen - 10] = '\0';
    } else {
        strcpy(l->sys_root, "/sys");
    }

    if (has_file(l->root, "cgroup.controllers")) {
        l->version = CG_V2;
        for (int c = 0; c < CG_CTRL_N; c++)
            memcpy(l->ctrl[c], l->root, CG_PATH_MAX);
        memcpy(l->unified, l->root, CG_PATH_MAX);
        memcpy(l->scan, l->root, CG_PATH_MAX);
    } else {
        l->version = CG_V1;
        int rc = detect_v1(l, err, cap);
        if (rc < 0)
            return rc;
    }
    if (is_subdir(l->scan, "docker"))
        l->drivers |= CG_DRIVER_CGROUPFS;
    if (is_subdir(l->scan, "system.slice"))
        l->drivers |= CG_DRIVER_SYSTEMD;
    if (!is_dir(l->proc_root))
        log_warn("proc root %s is not a directory: no network counters", l->proc_root);
    {
        struct statfs fs;
        l->check_dirs = !(statfs(l->scan, &fs) == 0 &&
                          (fs.f_type == CG_CGROUP_SUPER_MAGIC || fs.f_type == CG_CGROUP2_SUPER_MAGIC));
    }
    log_debug("cgroup v%d at %s (scan %s, unified %s, drivers %#x)", (int)l->version, l->root,
              l->scan, l->unified[0] ? l->unified : "-", l->drivers);
    return 0;
}

/* ---- discovery --------------------------------------------------------- */

/* Entry de of the open directory d is a directory. */
static bool dirent_is_dir(DIR *d, const struct dirent *de)
{
    if (de->d_type == DT_DIR)
        return true;
    if (de->d_type != DT_UNKNOWN)
        return false;
    struct stat st;
    return fstatat(dirfd(d), de->d_name, &st, 0) == 0 && S_ISDIR(st.st_mode);
}

int cg_scan(const struct cg_layout *l,
            void (*found)(void *arg, const char *id, const char *cgroup_path), void *arg)
{
    static const struct {
        const char *parent;     /* directory under the hierarchy root */
        const char *prefix;     /* entry = prefix + 64 hex + suffix */
        const char *suffix;
    } parents[] = {
        { "docker", "", "" },
        { "system.slice", "docker-", ".scope" },
    };
    int count = 0;
    for (size_t i = 0; i < sizeof parents / sizeof parents[0]; i++) {
        char dir[2 * CG_PATH_MAX];
        snprintf(dir, sizeof dir, "%s/%s", l->scan, parents[i].parent);
        DIR *d = opendir(dir);
        if (!d) {
            if (errno == ENOENT || errno == ENOTDIR)
                continue;
            int e = errno;
            log_debug("cg_scan: %s: %s", dir, strerror(e));
            return -e;
        }
        size_t plen = strlen(parents[i].prefix), slen = strlen(parents[i].suffix);
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            const char *name = de->d_name;
            size_t nlen = strlen(name);
            if (nlen != plen + 64 + slen || memcmp(name, parents[i].prefix, plen) != 0 ||
                memcmp(name + plen + 64, parents[i].suffix, slen) != 0 ||
                !is_hex64(name + plen, 64) || !dirent_is_dir(d, de))
                continue;
            char id[65], path[CG_PATH_MAX];
            memcpy(id, name + plen, 64);
            id[64] = '\0';
            path[0] = '/';
            if (!path_cat(path + 1, sizeof path - 1, parents[i].parent, "/", name))
                continue;
            found(arg, id, path);
            count++;
        }
        closedir(d);
    }
    return count;
}

int cg_path_for_id(const struct cg_layout *l, const char *id, char *out, size_t cap)
{
    if (!id || !is_hex64(id, strlen(id)))
        return -EINVAL;
    static const struct {
        const char *prefix, *suffix;    /* path = prefix + id + suffix */
    } forms[] = {
        { "/docker/", "" },
        { "/system.slice/docker-", ".scope" },
    };
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        char path[CG_PATH_MAX], full[2 * CG_PATH_MAX];
        if (!path_cat(path, sizeof path, forms[i].prefix, id, forms[i].suffix) ||
            !path_cat(full, sizeof full, l->scan, path, NULL) || !is_dir(full))
            continue;
        size_t len = strlen(path);
        if (len + 1 > cap)
            return -ENOSPC;
        memcpy(out, path, len + 1);
        return 0;
    }
    return -ENOENT;
}

/* ---- reader: open/close ------------------------------------------------ */

/* A cgroup path as cg_scan makes them: starts with '/', no "." or ".." component, fits. */
static bool valid_cgroup_path(const char *p)
{
    size_t len = strlen(p);
    if (p[0] != '/' || len >= CG_PATH_MAX)
        return false;
    for (const char *c = p; *c; ) {
        while (*c == '/')
            c++;
        const char *e = c;
        while (*e && *e != '/')
            e++;
        if ((e - c == 1 && c[0] == '.') || (e - c == 2 && c[0] == '.' && c[1] == '.'))
            return false;
        c = e;
    }
    return true;
}

/* Directory fds opened while a reader opens its files: one per distinct base. */
struct cg_dirs {
    const char *base[CG_CTRL_N + 2];    /* hierarchy dir (pointer into the layout) */
    int fd[CG_CTRL_N + 2];              /* base + cgroup path opened O_PATH, -1 when absent */
    int n;
};

/* Returns an O_PATH fd of base + path (cached in dirs), or -1 when it does not exist. */
static int dir_fd(struct cg_dirs *dirs, const char *base, const char *path)
{
    for (int i = 0; i < dirs->n; i++)
        if (strcmp(dirs->base[i], base) == 0)
            return dirs->fd[i];
    char full[2 * CG_PATH_MAX];
    snprintf(full, sizeof full, "%s%s", base, path);
    int fd = open(full, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 && errno != ENOENT && errno != ENOTDIR)
        log_debug("cgroup dir %s: %s", full, strerror(errno));
    if (dirs->n == (int)(sizeof dirs->fd / sizeof dirs->fd[0])) {
        if (fd >= 0)                /* cannot happen: at most 6 distinct bases */
            close(fd);
        return -1;
    }
    dirs->base[dirs->n] = base;
    dirs->fd[dirs->n] = fd;
    dirs->n++;
    return fd;
}

/* Opens file f of the reader; 0 (opened or absent) or -EMFILE/-ENFILE/-ENOMEM. */
static int open_file(struct cg_reader *r, struct cg_dirs *dirs, enum cg_file f, const char *path)
{
    const struct cg_layout *l = r->l;
    const struct cg_file_spec *spec = &cg_files[f];
    const char *name = l->version == CG_V2 ? spec->v2 : spec->v1;
    if (!name)
        return 0;
    const char *bases[CG_CTRL_N];
    int nbases = 0;
    if (l->version == CG_V2) {
        bases[nbases++] = l->root;
    } else if (spec->ctrl == CG_DIR_UNIFIED) {
        if (l->unified[0])
            bases[nbases++] = l->unified;
    } else if (spec->ctrl == CG_DIR_ANY) {
        for (size_t i = 0; i < sizeof cg_any_order / sizeof cg_any_order[0]; i++)
            if (l->ctrl[cg_any_order[i]][0])
                bases[nbases++] = l->ctrl[cg_any_order[i]];
    } else if (l->ctrl[spec->ctrl][0]) {
        bases[nbases++] = l->ctrl[spec->ctrl];
    }
    for (int i = 0; i < nbases; i++) {
        int dfd = dir_fd(dirs, bases[i], path);
        if (dfd < 0)
            continue;
        int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            r->fd[f] = fd;
            return 0;
        }
        if (errno == EMFILE || errno == ENFILE || errno == ENOMEM)
            return -errno;
        if (errno != ENOENT)
            log_debug("cgroup file %s%s/%s: %s", bases[i], path, name, strerror(errno));
    }
    return 0;
}

struct cg_reader *cg_reader_open(const struct cg_layout *l, const char *cgroup_path, int *err)
{
    int e = 0;
    if (!cgroup_path || !valid_cgroup_path(cgroup_path)) {
        *err = -EINVAL;
        return NULL;
    }
    struct cg_reader *r = calloc(1, sizeof *r);
    if (!r) {
        *err = -ENOMEM;
        return NULL;
    }
    r->l = l;
    r->version = l->version;
    for (int f = 0; f < CGF_N; f++)
        r->fd[f] = -1;
    r->net_fd = -1;
    long tck = sysconf(_SC_CLK_TCK);
    r->ns_per_tick = tck > 0 ? 1000000000ull / (uint64_t)tck : 10000000ull;
    long ncpu = sysconf(_SC_NPROCESSORS_CONF);
    r->ncpu_hint = ncpu > 0 ? (size_t)ncpu : 1;
    r->blk_hint = 4;
    r->net_hint = 4;
    snprintf(r->live_path, sizeof r->live_path, "%s%s", l->scan, cgroup_path);
    if (!is_dir(r->live_path)) {
        free(r);
        *err = -ENOENT;
        return NULL;
    }

    struct cg_dirs dirs = { .n = 0 };
    for (int f = 0; f < CGF_N && e == 0; f++)
        e = open_file(r, &dirs, (enum cg_file)f, cgroup_path);
    for (int i = 0; i < dirs.n; i++)
        if (dirs.fd[i] >= 0)
            close(dirs.fd[i]);
    if (e < 0) {
        cg_reader_close(r);
        *err = e;
        return NULL;
    }
    *err = 0;
    return r;
}

void cg_reader_close(struct cg_reader *r)
{
    if (!r)
        return;
    for (int f = 0; f < CGF_N; f++)
        if (r->fd[f] >= 0)
            close(r->fd[f]);
    if (r->net_fd >= 0)
        close(r->net_fd);
    free(r->devs);
    free(r->big);
    free(r);
}

int cg_reader_nfds(const struct cg_reader *r)
{
    int n = r->net_fd >= 0;
    for (int f = 0; f < CGF_N; f++)
        n += r->fd[f] >= 0;
    return n;
}

/* ---- reader: per-cycle reads ------------------------------------------- */

/* Errors of a kept-open file that mean the cgroup (or process) is gone. */
static bool is_vanished(int e)
{
    return e == -ENODEV || e == -ENOENT || e == -ESRCH;
}

/*
 * Reads the whole of fd from offset 0: into buf (CG_BUF_SIZE) when it fits,
 * else continued into r->big; *data and *len describe the bytes. 0 or -errno
 * (-EFBIG above CG_BIG_MAX).
 */
static int read_fd(struct cg_reader *r, int fd, char *buf, const char **data, size_t *len)
{
    ssize_t n = pread(fd, buf, CG_BUF_SIZE, 0);
    if (n < 0)
        return -errno;
    if ((size_t)n < CG_BUF_SIZE) {
        *data = buf;
        *len = (size_t)n;
        return 0;
    }
    size_t have = (size_t)n;
    if (r->big_cap < 4 * CG_BUF_SIZE) {
        char *nb = realloc(r->big, 4 * CG_BUF_SIZE);
        if (!nb)
            return -ENOMEM;
        r->big = nb;
        r->big_cap = 4 * CG_BUF_SIZE;
    }
    memcpy(r->big, buf, have);
    for (;;) {
        if (have == r->big_cap) {
            if (r->big_cap >= CG_BIG_MAX)
                return -EFBIG;
            char *nb = realloc(r->big, r->big_cap * 2);
            if (!nb)
                return -ENOMEM;
            r->big = nb;
            r->big_cap *= 2;
        }
        n = pread(fd, r->big + have, r->big_cap - have, (off_t)have);
        if (n < 0)
            return -errno;
        if (n == 0)
            break;
        have += (size_t)n;
    }
    *data = r->big;
    *len = have;
    return 0;
}

static const char *file_name(const struct cg_reader *r, enum cg_file f)
{
    const char *n = r->version == CG_V2 ? cg_files[f].v2 : cg_files[f].v1;
    return n ? n : "?";
}

/* Result of get(): the file's bytes are ready, it is not there (or failed, counted),
 * or the cgroup vanished. */
enum { GET_OK = 1, GET_SKIP = 0, GET_GONE = -1 };

static int get(struct cg_reader *r, enum cg_file f, char *buf, const char **data, size_t *len,
               struct cg_stats *st)
{
    if (r->fd[f] < 0)
        return GET_SKIP;
    int rc = read_fd(r, r->fd[f], buf, data, len);
    if (rc == 0)
        return GET_OK;
    if (is_vanished(rc))
        return GET_GONE;
    if (st)
        st->read_errors++;
    log_debug("%s: read %s: %s", r->live_path, file_name(r, f), strerror(-rc));
    return GET_SKIP;
}

static void parse_failed(struct cg_reader *r, const char *what, int rc, struct cg_stats *st)
{
    if (st)
        st->parse_errors++;
    log_debug("%s: parse %s: %s", r->live_path, what, strerror(rc < 0 ? -rc : EPROTO));
}

/* Frees the sample's arrays and zeroes it, keeping its meta reference. */
static void sample_reset(struct csample *s)
{
    struct cmeta *m = s->meta;
    free(s->percpu_ns);
    free(s->blk);
    free(s->net);
    memset(s, 0, sizeof *s);
    s->meta = m;
}

static int read_cpu_v1(struct cg_reader *r, struct csample *s, struct cg_stats *st, char *buf)
{
    const char *d;
    size_t len;
    uint64_t usage = 0, user = 0, sys = 0, found = 0;
    bool ok_usage = false, ok_stat = false;
    int g = get(r, CGF_CPUACCT_USAGE, buf, &d, &len, st);
    if (g == GET_GONE)
        return -ENOENT;
    if (g == GET_OK) {
        int rc = cgp_u64(d, len, &usage);
        if (rc < 0)
            parse_failed(r, "cpuacct.usage", rc, st);
        ok_usage = rc == 0;
    }
    g = get(r, CGF_CPUACCT_STAT, buf, &d, &len, st);
    if (g == GET_GONE)
        return -ENOENT;
    if (g == GET_OK) {
        const struct cgp_key keys[] = { { "user", &user }, { "system", &sys } };
        int rc = cgp_keyed(d, len, keys, 2, &found);
        if (rc == 0 && found != 3)
            rc = -EPROTO;
        if (rc < 0)
            parse_failed(r, "cpuacct.stat", rc, st);
        ok_stat = rc == 0;
    }
    if (ok_usage && ok_stat) {
        s->cpu_usage_ns = usage;
        s->cpu_user_ns = user * r->ns_per_tick;
        s->cpu_system_ns = sys * r->ns_per_tick;
        s->have |= HAVE_CPU;
    }

    g = get(r, CGF_CPUACCT_PERCPU, buf, &d, &len, st);
    if (g == GET_GONE)
        return -ENOENT;
    if (g == GET_OK) {
        size_t cap = r->ncpu_hint, n = 0;
        uint64_t *arr = NULL;
        int rc;
        for (;;) {
            uint64_t *na = realloc(arr, cap * sizeof *arr);
            if (!na) {
                rc = -ENOMEM;
                break;
            }
            arr = na;
            rc = cgp_u64_list(d, len, arr, cap, &n);
            if (rc != -ENOSPC || n > CG_CPU_MAX)
                break;
            cap = n;
        }
        if (rc == 0) {
            s->percpu_ns = arr;
            s->ncpu = (uint32_t)n;
            r->ncpu_hint = n;
        } else {
            free(arr);
            parse_failed(r, "cpuacct.usage_percpu", rc, st);
        }
    }

    g = get(r, CGF_CPU_STAT, buf, &d, &len, st);
    if (g == GET_GONE)
        return -ENOENT;
    if (g == GET_OK) {
        uint64_t per = 0, thr = 0, thr_ns = 0;
        const struct cgp_key keys[] = {
            { "nr_periods", &per }, { "nr_throttled", &thr }, { "throttled_time", &thr_ns },
        };
        int rc = cgp_keyed(d, len, keys, 3, &found);
        if (rc == 0 && found != 7)
            rc = -EPROTO;
        if (rc < 0) {
            parse_failed(r, "cpu.stat", rc, st);
        } else {
            s->cfs_periods = per;
            s->cfs_throttled_periods = thr;
            s->cfs_throttled_ns = thr_ns;
            s->have |= HAVE_CFS;
        }
    }
    return 0;
}

static int read_cpu_v2(struct cg_reader *r, struct csample *s, struct cg_stats *st, char *buf)
{
    const char *d;
    size_t len;
    int g = get(r, CGF_CPU_STAT, buf, &d, &len, st);
    if (g == GET_GONE)
        return -ENOENT;
    if (g != GET_OK)
        return 0;
    uint64_t usage = 0, user = 0, sys = 0, per = 0, thr = 0, thr_us = 0, found = 0;
    const struct cgp_key keys[] = {
        { "usage_usec", &usage }, { "user_usec", &user }, { "system_usec", &sys },
        { "nr_periods", &per }, { "nr_throttled", &thr }, { "throttled_usec", &thr_us },
    };
    int rc = cgp_keyed(d, len, keys, 6, &found);
    if (rc == 0 && (found & 7) != 7)
        rc = -EPROTO;
    if (rc < 0) {
        parse_failed(r, "cpu.stat", rc, st);
        return 0;
    }
    s->cpu_usage_ns = usage * 1000;
    s->cpu_user_ns = user * 1000;
    s->cpu_system_ns = sys * 1000;
    s->have |= HAVE_CPU;
    if ((found & 0x38) == 0x38) {   /* the CFS keys exist only when the cpu controller is enabled */
        s->cfs_periods = per;
        s->cfs_throttled_periods = thr;
        s->cfs_throttled_ns = thr_us * 1000;
        s->have |= HAVE_CFS;
    }
    return 0;
}

/* Reads a single-value file f into *v; GET_OK only when it also parsed. */
static int get_u64(struct cg_reader *r, enum cg_file f, char *buf, uint64_t *v, struct cg_stats *st)
{
    const char *d;
    size_t len;
    int g = get(r, f, buf, &d, &len, st);
    if (g != GET_OK)
        return g;
    int rc = cgp_u64(d, len, v);
    if (rc < 0) {
        parse_failed(r, file_name(r, f), rc, st);
        return GET_SKIP;
    }
    return GET_OK;
}

static int read_mem(struct cg_reader *r, struct csample *s, struct cg_stats *st, char *buf)
{
    bool v2 = r->version == CG_V2;
    const char *d;
    size_t len;
    uint64_t usage = 0, limit = 0, v = 0;

    int gu = get_u64(r, CGF_MEM_USAGE, buf, &usage, st);
    if (gu == GET_GONE)
        return -ENOENT;
    int gl = get_u64(r, CGF_MEM_LIMIT, buf, &limit, st);
    if (gl == GET_GONE)
        return -ENOENT;

    /* memory.stat: v1 prefers the hierarchical total_* keys */
    uint64_t k[10] = { 0 }, found = 0;
    bool ok_stat = false;
    uint64_t rss = 0, cache = 0, mapped = 0, inactive = 0, swap = 0;
    bool have_swap = false;
    int g = get(r, CGF_MEM_STAT, buf, &d, &len, st);
    if (g == GET_GONE)
        return -ENOENT;
    if (g == GET_OK) {
        int rc;
        if (v2) {
            const struct cgp_key keys[] = {
                { "anon", &rss }, { "file", &cache }, { "file_mapped", &mapped },
                { "inactive_file", &inactive },
            };
            rc = cgp_keyed(d, len, keys, 4, &found);
            if (rc == 0 && (found & 0xb) != 0xb)    /* anon, file, inactive_file */
                rc = -EPROTO;
        } else {
            const struct cgp_key keys[] = {
                { "total_rss", &k[0] }, { "total_cache", &k[1] }, { "total_mapped_file", &k[2] },
                { "total_inactive_file", &k[3] }, { "total_swap", &k[4] },
                { "rss", &k[5] }, { "cache", &k[6] }, { "mapped_file", &k[7] },
                { "inactive_file", &k[8] }, { "swap", &k[9] },
            };
            rc = cgp_keyed(d, len, keys, 10, &found);
            uint64_t *dst[5] = { &rss, &cache, &mapped, &inactive, &swap };
            for (int i = 0; i < 5; i++) {
                if (found & (1ull << i))
                    *dst[i] = k[i];
                else if (found & (1ull << (i + 5)))
                    *dst[i] = k[i + 5];
            }
            uint64_t any = found | (found >> 5);
            if (rc == 0 && (any & 0xb) != 0xb)      /* rss, cache, inactive_file */
                rc = -EPROTO;
            have_swap = (any & 0x10) != 0;
        }
        if (rc < 0)
            parse_failed(r, "memory.stat", rc, st);
        ok_stat = rc == 0;
    }
    if (gu == GET_OK && gl == GET_OK && ok_stat) {
        s->mem_usage = usage;
        s->mem_working_set = usage > inactive ? usage - inactive : 0;
        s->mem_rss = rss;
        s->mem_cache = cache;
        s->mem_mapped_file = mapped;
        s->mem_limit = cgp_is_unlimited(limit) ? 0 : limit;
        s->have |= HAVE_MEM;
        if (!v2 && have_swap) {
            s->mem_swap = swap;
            s->have |= HAVE_MEM_SWAP;
        }
    }
    if (v2) {
        g = get_u64(r, CGF_MEM_SWAP, buf, &v, st);
        if (g == GET_GONE)
            return -ENOENT;
        if (g == GET_OK) {
            s->mem_swap = v;
            s->have |= HAVE_MEM_SWAP;
        }
    }
    g = get_u64(r, CGF_MEM_MAXUSE, buf, &v, st);
    if (g == GET_GONE)
        return -ENOENT;
    if (g == GET_OK) {
        s->mem_max_usage = v;
        s->have |= HAVE_MEM_MAX;
    }
    g = get_u64(r, CGF_MEM_FAILCNT, buf, &v, st);
    if (g == GET_GONE)
        return -ENOENT;
    if (g == GET_OK) {
        s->mem_failcnt = v;
        s->have |= HAVE_MEM_FAIL;
    }
    g = get(r, CGF_MEM_OOM, buf, &d, &len, st);
    if (g == GET_GONE)
        return -ENOENT;
    if (g == GET_OK) {
        const struct cgp_key keys[] = { { "oom_kill", &v } };
        int rc = cgp_keyed(d, len, keys, 1, &found);
        if (rc < 0) {
            parse_failed(r, file_name(r, CGF_MEM_OOM), rc, st);
        } else if (found) {         /* v1 kernels before 4.13 have no oom_kill line */
            s->oom_events = v;
            s->have |= HAVE_OOM;
        }
    }
    return 0;
}

/* Sets d->dev to "/dev/NAME" from <sys>/dev/block/MAJ:MIN/uevent, cached per reader. */
static void blk_name(struct cg_reader *r, struct blkdev_stat *d)
{
    for (size_t i = 0; i < r->ndevs; i++) {
        if (r->devs[i].major == d->major && r->devs[i].minor == d->minor) {
            memcpy(d->dev, r->devs[i].dev, sizeof d->dev);
            return;
        }
    }
    /* first sight of this device: one open per reader and device */
    char path[CG_PATH_MAX + 64], buf[512], name[sizeof d->dev - 5];
    snprintf(path, sizeof path, "%s/dev/block/%u:%u/uevent", r->l->sys_root, d->major, d->minor);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, buf, sizeof buf);
        close(fd);
        if (n > 0 && cgp_uevent_devname(buf, (size_t)n, name, sizeof name) == 0)
            snprintf(d->dev, sizeof d->dev, "/dev/%s", name);
    }
    if (r->ndevs == r->devs_cap) {
        size_t ncap = r->devs_cap ? r->devs_cap * 2 : 4;
        struct cg_devname *nd = realloc(r->devs, ncap * sizeof *nd);
        if (!nd)
            return;                 /* not cached: looked up again next time */
        r->devs = nd;
        r->devs_cap = ncap;
    }
    struct cg_devname *c = &r->devs[r->ndevs++];
    c->major = d->major;
    c->minor = d->minor;
    memcpy(c->dev, d->dev, sizeof c->dev);
}

static int read_blk(struct cg_reader *r, struct csample *s, struct cg_stats *st, char *buf)
{
    bool v2 = r->version == CG_V2;
    const char *d;
    size_t len;
    if (r->fd[CGF_BLK_BYTES] < 0)
        return 0;
    size_t cap = r->blk_hint, n = 0;
    struct blkdev_stat *arr = NULL;
    int rc;
    for (;;) {
        struct blkdev_stat *na = realloc(arr, cap * sizeof *arr);
        if (!na) {
            free(arr);
            return 0;
        }
        arr = na;
        n = 0;
        int g = get(r, CGF_BLK_BYTES, buf, &d, &len, st);
        if (g != GET_OK) {
            free(arr);
            return g == GET_GONE ? -ENOENT : 0;
        }
        rc = v2 ? cgp_io_stat(d, len, arr, cap, &n)
                : cgp_blkio_v1(d, len, CGP_BLKIO_BYTES, arr, cap, &n);
        if (rc == 0 && !v2) {
            g = get(r, CGF_BLK_OPS, buf, &d, &len, st);
            if (g == GET_GONE) {
                free(arr);
                return -ENOENT;
            }
            if (g == GET_OK)
                rc = cgp_blkio_v1(d, len, CGP_BLKIO_OPS, arr, cap, &n);
        }
        if (rc != -ENOSPC || cap >= CG_BLK_MAX)
            break;
        cap *= 2;
    }
    if (rc < 0) {
        free(arr);
        parse_failed(r, file_name(r, CGF_BLK_BYTES), rc, st);
        return 0;
    }
    r->blk_hint = cap;
    for (size_t i = 0; i < n; i++)
        blk_name(r, &arr[i]);
    if (n == 0) {
        free(arr);
        arr = NULL;
    }
    s->blk = arr;
    s->nblk = n;
    s->have |= HAVE_BLK;
    return 0;
}

/* Writes "<proc>/<pid>/net/dev" into out (no printf on this path). */
static void net_path(const struct cg_reader *r, uint64_t pid, char *out, size_t cap)
{
    char digits[21];
    int nd = 0;
    do {
        digits[nd++] = (char)('0' + pid % 10);
        pid /= 10;
    } while (pid);
    size_t plen = strlen(r->l->proc_root);
    if (plen + 1 + (size_t)nd + 9 > cap) {
        out[0] = '\0';
        return;
    }
    char *p = out;
    memcpy(p, r->l->proc_root, plen);
    p += plen;
    *p++ = '/';
    while (nd)
        *p++ = digits[--nd];
    memcpy(p, "/net/dev", 9);
}

static void net_close(struct cg_reader *r)
{
    if (r->net_fd >= 0)
        close(r->net_fd);
    r->net_fd = -1;
    r->net_pid = 0;
}

static void net_open(struct cg_reader *r, uint64_t pid)
{
    char path[CG_PATH_MAX + 32];
    net_path(r, pid, path, sizeof path);
    r->net_fd = path[0] ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    r->net_pid = r->net_fd >= 0 ? pid : 0;
    if (r->net_fd < 0)
        log_debug("%s: open %s: %s", r->live_path, path, strerror(errno));
}

/* Opens the net/dev of the first pid of the cgroup.procs bytes [d, d+len) that
 * still has one (a zombie or a pid gone since has none); at most 8 tries. */
static void net_pick(struct cg_reader *r, const char *d, size_t len)
{
    size_t off = 0;
    uint64_t pid;
    for (int tries = 0; tries < 8 && r->net_fd < 0; tries++) {
        if (cgp_pid_next(d, len, &off, &pid) != 1)
            break;
        net_open(r, pid);
    }
}

/* Reads and parses the kept-open net/dev into s. A failed read drops the fd
 * (the next cycle picks a pid again). */
static void read_net(struct cg_reader *r, struct csample *s, struct cg_stats *st, char *buf)
{
    const char *d = NULL;
    size_t len = 0;
    if (r->net_fd < 0)
        return;
    int rc = read_fd(r, r->net_fd, buf, &d, &len);
    if (rc < 0) {
        log_debug("%s: read net/dev of pid %llu: %s", r->live_path,
                  (unsigned long long)r->net_pid, strerror(-rc));
        if (!is_vanished(rc) && st)
            st->read_errors++;
        net_close(r);
        return;
    }
    size_t cap = r->net_hint, n = 0;
    struct netif_stat *arr = NULL;
    for (;;) {
        struct netif_stat *na = realloc(arr, cap * sizeof *arr);
        if (!na) {
            free(arr);
            return;
        }
        arr = na;
        rc = netdev_parse(d, len, NETDEV_SKIP_VIRTUAL, arr, cap, &n);
        if (rc != -ENOSPC || n > CG_NET_MAX)
            break;
        cap = n;
    }
    if (rc < 0) {
        free(arr);
        parse_failed(r, "net/dev", rc, st);
        return;
    }
    if (n > r->net_hint)
        r->net_hint = n;
    if (n == 0) {
        free(arr);
        arr = NULL;
    }
    s->net = arr;
    s->nnet = n;
    s->have |= HAVE_NET;
}

static int read_pids_net(struct cg_reader *r, struct csample *s, struct cg_stats *st, char *buf)
{
    const char *d;
    size_t len;
    struct cgp_pids procs, threads;
    int g = get(r, CGF_PROCS, buf, &d, &len, st);
    if (g == GET_GONE)
        return -ENOENT;
    if (g != GET_OK)
        return 0;
    int rc = cgp_pid_list(d, len, r->net_pid, &procs);
    if (rc < 0) {
        parse_failed(r, "cgroup.procs", rc, st);
        return 0;
    }
    /* keep net/dev of a pid still in the cgroup, else pick one (while d is valid) */
    if (r->net_fd >= 0 && !procs.want_seen)
        net_close(r);
    if (r->net_fd < 0 && procs.count > 0)
        net_pick(r, d, len);

    g = get(r, CGF_THREADS, buf, &d, &len, st);
    if (g == GET_GONE)
        return -ENOENT;
    if (g == GET_OK) {
        rc = cgp_pid_list(d, len, 0, &threads);
        if (rc < 0) {
            parse_failed(r, file_name(r, CGF_THREADS), rc, st);
        } else {
            s->processes = procs.count;
            s->threads = threads.count;
            s->have |= HAVE_PIDS;
        }
    }
    read_net(r, s, st, buf);
    return 0;
}

static int read_psi(struct cg_reader *r, struct csample *s, struct cg_stats *st, char *buf)
{
    static const struct {
        enum cg_file f;
        uint32_t bit;
        size_t off;         /* offset of the psi_stat in struct csample */
    } psi[] = {
        { CGF_PSI_CPU, HAVE_PSI_CPU, offsetof(struct csample, psi_cpu) },
        { CGF_PSI_MEM, HAVE_PSI_MEM, offsetof(struct csample, psi_mem) },
        { CGF_PSI_IO, HAVE_PSI_IO, offsetof(struct csample, psi_io) },
    };
    for (size_t i = 0; i < sizeof psi / sizeof psi[0]; i++) {
        const char *d;
        size_t len;
        int g = get(r, psi[i].f, buf, &d, &len, st);
        if (g == GET_GONE)
            return -ENOENT;
        if (g != GET_OK)
            continue;
        struct psi_stat p;
        int rc = cgp_psi(d, len, &p);
        if (rc < 0) {
            parse_failed(r, file_name(r, psi[i].f), rc, st);
            continue;
        }
        memcpy((char *)s + psi[i].off, &p, sizeof p);
        s->have |= psi[i].bit;
    }
    return 0;
}

int cg_reader_read(struct cg_reader *r, struct csample *s, struct cg_stats *st)
{
    char buf[CG_BUF_SIZE];
    struct timespec ts;
    sample_reset(s);
    clock_gettime(CLOCK_REALTIME, &ts);
    s->timestamp = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;

    int rc = r->version == CG_V2 ? read_cpu_v2(r, s, st, buf) : read_cpu_v1(r, s, st, buf);
    if (rc == 0)
        rc = read_mem(r, s, st, buf);
    if (rc == 0)
        rc = read_blk(r, s, st, buf);
    if (rc == 0)
        rc = read_pids_net(r, s, st, buf);
    if (rc == 0)
        rc = read_psi(r, s, st, buf);
    if (rc == 0 && r->l->check_dirs && faccessat(AT_FDCWD, r->live_path, F_OK, 0) < 0 &&
        (errno == ENOENT || errno == ENOTDIR))
        rc = -ENOENT;
    if (rc < 0) {
        log_debug("%s: cgroup vanished", r->live_path);
        sample_reset(s);
        net_close(r);
        return -ENOENT;
    }
    return 0;
}
