/*
 * cgroup: the agent's reader of kernel files (cgroup v1, hybrid, v2, and
 * /proc/<pid>/net/dev), turning them into struct csample every interval.
 *
 *   cg_layout_detect  once at start: which cgroup version, where each v1
 *                     controller hierarchy is, where PSI lives, which docker
 *                     parents exist. Works on any root (a host's cgroup fs
 *                     mounted at /host/sys/fs/cgroup, or a fixture tree).
 *   cg_scan           list the container cgroups present now (both drivers:
 *                     cgroupfs "/docker/<id>", systemd "/system.slice/docker-<id>.scope").
 *   cg_reader_open    per container: open and KEEP OPEN the stat files;
 *   cg_reader_read    each interval: pread(fd, buf, cap, 0) every file, parse
 *                     (cgroup_parse.h, netdev.h) and fill a csample;
 *   cg_reader_close   when the container goes away.
 *
 * A reader costs one fd per file (17 on v1 hybrid, 13 on v2, +1 for net/dev)
 * and does no open/close per interval, except when the process whose net/dev
 * is kept open leaves the cgroup (then a pid is picked again) and the first time
 * a block device is seen (its name is looked up once and cached in the reader).
 *
 * Note: an open /proc/<pid>/net/dev holds a reference on that network
 * namespace, so a reader keeps a dead container's namespace (and its veth)
 * alive until it is closed or the cgroup is seen empty or gone: close readers
 * when the container dies.
 *
 * Ownership: the caller owns the struct cg_layout and must keep it alive and
 * unchanged while readers made from it are open (readers keep a pointer to it).
 * A reader is owned by the caller of cg_reader_open until cg_reader_close. The
 * arrays a read puts in a csample (percpu_ns, blk, net) are malloc'd and owned
 * by the sample (csample_clear frees them). struct cg_stats is caller-owned.
 * Single-threaded: one reader must not be used by two threads at once.
 */
#ifndef TETHER_CGROUP_H
#define TETHER_CGROUP_H

#include <stddef.h>
#include <stdint.h>

#include "agent/sample.h"

#define CG_PATH_MAX 256

enum cg_version {
    CG_V1 = 1,          /* per-controller hierarchies (maybe with a cgroup2 "unified" mount for PSI) */
    CG_V2 = 2,          /* one unified hierarchy */
};

/* v1 controllers the reader uses (index into cg_layout.ctrl). */
enum cg_ctrl {
    CG_CTRL_CPU,
    CG_CTRL_CPUACCT,
    CG_CTRL_MEMORY,
    CG_CTRL_BLKIO,
    CG_CTRL_PIDS,
    CG_CTRL_N
};

/* cg_layout.drivers bits: docker parents seen at detection time (informational;
 * cg_scan and cg_path_for_id always look under both). */
enum {
    CG_DRIVER_CGROUPFS = 1u << 0,   /* <hierarchy>/docker/ exists */
    CG_DRIVER_SYSTEMD  = 1u << 1,   /* <hierarchy>/system.slice/ exists */
};

struct cg_layout {
    enum cg_version version;
    char root[CG_PATH_MAX];          /* cgroup fs root, no trailing '/', e.g. "/sys/fs/cgroup" */
    char proc_root[CG_PATH_MAX];     /* proc fs root, e.g. "/proc" or "/host/proc" */
    char sys_root[CG_PATH_MAX];      /* sysfs root for /dev/block names: root minus "/fs/cgroup", else "/sys" */
    char ctrl[CG_CTRL_N][CG_PATH_MAX]; /* v1: hierarchy dir of each controller ("" when not mounted); v2: root */
    char unified[CG_PATH_MAX];       /* cgroup2 dir for PSI: root on v2, root/unified on hybrid v1, else "" */
    char scan[CG_PATH_MAX];          /* hierarchy whose docker parents cg_scan lists */
    unsigned drivers;                /* CG_DRIVER_* bits */
    int check_dirs;                  /* not a kernel cgroup fs (fixtures, copies): each read also checks
                                        that the container's directory still exists; on a real cgroup
                                        fs a removed cgroup's kept-open files fail with ENODEV instead */
};

/*
 * Fills *out from the files under cgroup_root (NULL -> "/sys/fs/cgroup") and
 * proc_root (NULL -> "/proc"): v2 when the root holds cgroup.controllers, else
 * v1, whose controller directories are found by name ("cpu", "cpuacct",
 * "cpu,cpuacct", symlinks followed); a "unified" dir with cgroup.controllers
 * is the hybrid PSI source. Returns 0, or a negative errno with a one-line
 * reason in err (cap bytes, may be NULL/0): -ENOENT (root missing, or no v1
 * controller the agent needs), -ENAMETOOLONG, -ENOTDIR.
 */
int cg_layout_detect(const char *cgroup_root, const char *proc_root, struct cg_layout *out,
                     char *err, size_t cap);

/*
 * Calls found(arg, id, cgroup_path) for every container cgroup present now:
 * id is the 64-hex container id, cgroup_path the path relative to the
 * hierarchy root ("/docker/<id>" or "/system.slice/docker-<id>.scope"), which
 * is also the Prometheus `id` label. Both strings are valid only during the
 * call. Returns the number of containers found or a negative errno (a missing
 * parent directory is not an error).
 */
int cg_scan(const struct cg_layout *l,
            void (*found)(void *arg, const char *id, const char *cgroup_path), void *arg);

/*
 * Writes the cgroup path of container `id` (64 hex) into out (cap bytes):
 * "/docker/<id>" (cgroupfs driver) or "/system.slice/docker-<id>.scope"
 * (systemd driver). 0, -EINVAL (id not 64 hex), -ENOENT (no such cgroup),
 * -ENOSPC (cap too small).
 */
int cg_path_for_id(const struct cg_layout *l, const char *id, char *out, size_t cap);

/* Per-caller error counters; cg_reader_read only increments them. */
struct cg_stats {
    uint64_t read_errors;            /* a kept-open file failed to read (not counting vanished cgroups) */
    uint64_t parse_errors;           /* a file's content did not parse; its value group was skipped */
};

struct cg_reader;

/*
 * Opens the stat files of the cgroup at cgroup_path (as from cg_scan) with
 * O_RDONLY|O_CLOEXEC and keeps them open. Files that do not exist (controller
 * not mounted or not enabled, older kernel) are skipped: their HAVE_* bit will
 * stay unset. Returns NULL with *err = -ENOENT when the cgroup directory does
 * not exist, -EINVAL for a malformed path, -ENOMEM, -EMFILE/-ENFILE when out of fds.
 */
struct cg_reader *cg_reader_open(const struct cg_layout *l, const char *cgroup_path, int *err);

/*
 * Reads every kept-open file and fills s: timestamp, all value groups and their
 * HAVE_* bits, and freshly malloc'd percpu_ns / blk / net arrays (NULL when
 * empty). s must be zeroed or hold an earlier result (its arrays are freed
 * first); s->meta is never touched. A file that fails to read or parse is
 * counted in *st (may be NULL), logged at debug level and its group skipped.
 * Returns 0, or -ENOENT when the cgroup vanished (its files fail with ENODEV,
 * or its directory is gone after the read): then s holds no values, no arrays
 * and have = 0 (meta untouched), and the reader should be closed.
 */
int cg_reader_read(struct cg_reader *r, struct csample *s, struct cg_stats *st);

/* Closes every fd and frees the reader. NULL is fine. */
void cg_reader_close(struct cg_reader *r);

/* Number of fds the reader holds open now (stat files + net/dev). */
int cg_reader_nfds(const struct cg_reader *r);

#endif
