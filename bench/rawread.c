/*
 * rawread: the "raw floor" of the agent benchmark.
 *
 * The cheapest possible container collector that still reads what tether agent reads: every
 * interval (1 s by default) it preads, from file descriptors kept open between cycles, the
 * cgroup v1 files, the three cgroup2 pressure files and /proc/<pid>/net/dev of every
 * /sys/fs/cgroup/cpuacct/docker/<id> directory, and parses the numbers in the most minimal way
 * (sums every decimal number of a file, counts lines of cgroup.procs and tasks).  No HTTP, no
 * docker calls, no labels, no output format, one thread.  Whatever tether costs above this
 * program is the price of its own design (metadata, exposition, the event loop), which
 * bench/agent_bench.sh reports as the tether/raw CPU ratio.
 *
 *   rawread [-i interval_ms] [-r cgroup_root] [-p proc_root] [-s rescan_cycles] [-n cycles] [-t] [-v]
 *
 * The container directory list is rescanned every -s cycles (default 10, like an agent's
 * rescan); a container whose cpuacct.usage read fails (cgroup removed) is dropped.  On SIGINT or
 * SIGTERM, or after -n cycles, one summary line goes to stderr (cycles, containers, open fds,
 * mean read+parse time per cycle and per container) and the program exits 0. With -t it also
 * times every pread and prints, per file, the mean wall time of one read+parse (costs two
 * clock reads per file, so leave it off when measuring the program's CPU).
 *
 * Memory: the container table (struct rr_table) owns every struct rr_container, and each
 * container owns its fds; rr_container_close() closes them and rr_table_free() releases all.
 * The read buffer is one static array owned by main, reused for every file.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* Files read per container, in this order. Each entry names the hierarchy (relative to the
 * cgroup root) and the file inside the container's directory. */
struct rr_file_spec {
    const char *hier; /* hierarchy directory under the cgroup root: "cpuacct", "unified", ... */
    const char *name; /* file name inside <root>/<hier>/docker/<id>/ */
};

static const struct rr_file_spec rr_files[] = {
    { "cpuacct", "cpuacct.usage" },
    { "cpuacct", "cpuacct.stat" },
    { "cpuacct", "cpuacct.usage_percpu" },
    { "cpu", "cpu.stat" },
    { "memory", "memory.usage_in_bytes" },
    { "memory", "memory.limit_in_bytes" },
    { "memory", "memory.max_usage_in_bytes" },
    { "memory", "memory.failcnt" },
    { "memory", "memory.stat" },
    { "memory", "memory.oom_control" },
    { "blkio", "blkio.throttle.io_service_bytes" },
    { "blkio", "blkio.throttle.io_serviced" },
    { "pids", "pids.current" },
    { "cpuacct", "cgroup.procs" },
    { "cpuacct", "tasks" },
    { "unified", "cpu.pressure" },
    { "unified", "memory.pressure" },
    { "unified", "io.pressure" },
};

enum {
    RR_NFILES = sizeof(rr_files) / sizeof(rr_files[0]),
    RR_F_USAGE = 0,  /* index of cpuacct.usage: a failed read means the cgroup is gone */
    RR_F_PROCS = 13, /* index of cgroup.procs: its first pid gives the net/dev file */
    RR_F_TASKS = 14, /* index of tasks: line count = threads */
    RR_ID_LEN = 64,  /* docker container ids are 64 hex digits */
    RR_BUF = 65536,  /* read buffer; memory.stat and tasks of a busy container fit */
};

/* One monitored container: its id and the fds kept open between cycles. */
struct rr_container {
    char id[RR_ID_LEN + 1]; /* 64-hex container id, NUL-terminated */
    int fd[RR_NFILES];      /* kept-open fds of rr_files[], -1 when the file does not exist */
    int netdev_fd;          /* /proc/<pid>/net/dev of the first process, -1 when none */
    long netdev_pid;        /* pid netdev_fd belongs to, 0 when none */
    int seen;               /* scan generation in which the directory was last seen */
    int dead;               /* set when a read shows the cgroup is gone; dropped after the cycle */
};

/* All monitored containers, in a growable array of pointers. */
struct rr_table {
    struct rr_container **c; /* owned containers, n of them */
    size_t n;                /* containers in use */
    size_t cap;              /* allocated slots in c */
};

/* Per-run counters, reported at exit. */
struct rr_stats {
    uint64_t cycles;     /* completed collection cycles */
    uint64_t read_ns;    /* time spent reading and parsing, over all cycles */
    uint64_t reads;      /* successful preads */
    uint64_t read_errs;  /* failed preads (gone cgroups, dead pids) */
    uint64_t checksum;   /* sum of everything parsed, printed so nothing is optimised away */
    uint64_t threads;    /* thread lines counted in tasks in the last cycle */
    int timed;                           /* -t: time every file read */
    uint64_t file_ns[RR_NFILES + 1];     /* -t: read+parse time per file (last: net/dev) */
    uint64_t file_reads[RR_NFILES + 1];  /* -t: successful reads per file */
};

static volatile sig_atomic_t rr_stop; /* set by SIGINT/SIGTERM */

static void rr_on_signal(int sig)
{
    (void)sig;
    rr_stop = 1;
}

static uint64_t rr_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Minimal parse: the sum of every run of decimal digits in buf[0..len). Never reads past len. */
static uint64_t rr_sum_numbers(const char *buf, size_t len)
{
    uint64_t sum = 0, cur = 0;
    int in = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)buf[i];
        if (ch >= '0' && ch <= '9') {
            cur = cur * 10 + (uint64_t)(ch - '0');
            in = 1;
        } else if (in) {
            sum += cur;
            cur = 0;
            in = 0;
        }
    }
    return in ? sum + cur : sum;
}

/* Lines in buf[0..len) (a last line without '\n' counts). */
static uint64_t rr_count_lines(const char *buf, size_t len)
{
    uint64_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (buf[i] == '\n')
            n++;
    if (len > 0 && buf[len - 1] != '\n')
        n++;
    return n;
}

/* The first decimal number of buf[0..len), 0 when none. */
static long rr_first_number(const char *buf, size_t len)
{
    long v = 0;
    size_t i = 0;
    while (i < len && !isdigit((unsigned char)buf[i]))
        i++;
    for (; i < len && isdigit((unsigned char)buf[i]) && v < 100000000; i++)
        v = v * 10 + (buf[i] - '0');
    return v;
}

/* Opens /proc/<pid>/net/dev read-only; -1 when it cannot. */
static int rr_open_netdev(const char *proc_root, long pid)
{
    char path[256];
    if (pid <= 0)
        return -1;
    snprintf(path, sizeof path, "%s/%ld/net/dev", proc_root, pid);
    return open(path, O_RDONLY | O_CLOEXEC);
}

/* Closes every fd of c; c itself stays allocated. */
static void rr_container_close(struct rr_container *c)
{
    for (int i = 0; i < RR_NFILES; i++) {
        if (c->fd[i] >= 0)
            close(c->fd[i]);
        c->fd[i] = -1;
    }
    if (c->netdev_fd >= 0)
        close(c->netdev_fd);
    c->netdev_fd = -1;
}

/* Opens every file of container id under root. Returns a new container (caller owns it), or
 * NULL when the directory has no readable cpuacct.usage (not a container, or already gone). */
static struct rr_container *rr_container_open(const char *root, const char *id)
{
    struct rr_container *c = calloc(1, sizeof *c);
    char path[512];
    if (!c)
        return NULL;
    memcpy(c->id, id, RR_ID_LEN);
    c->id[RR_ID_LEN] = '\0';
    c->netdev_fd = -1;
    for (int i = 0; i < RR_NFILES; i++) {
        snprintf(path, sizeof path, "%s/%s/docker/%s/%s", root, rr_files[i].hier, id,
                 rr_files[i].name);
        c->fd[i] = open(path, O_RDONLY | O_CLOEXEC);
    }
    if (c->fd[RR_F_USAGE] < 0) {
        rr_container_close(c);
        free(c);
        return NULL;
    }
    return c;
}

static void rr_table_free(struct rr_table *t)
{
    for (size_t i = 0; i < t->n; i++) {
        rr_container_close(t->c[i]);
        free(t->c[i]);
    }
    free(t->c);
    t->c = NULL;
    t->n = t->cap = 0;
}

static struct rr_container *rr_table_find(const struct rr_table *t, const char *id)
{
    for (size_t i = 0; i < t->n; i++)
        if (memcmp(t->c[i]->id, id, RR_ID_LEN) == 0)
            return t->c[i];
    return NULL;
}

/* Appends c (ownership moves to t). Returns 0 or -ENOMEM (c is then still the caller's). */
static int rr_table_add(struct rr_table *t, struct rr_container *c)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        struct rr_container **nc = realloc(t->c, cap * sizeof *nc);
        if (!nc)
            return -ENOMEM;
        t->c = nc;
        t->cap = cap;
    }
    t->c[t->n++] = c;
    return 0;
}

/* Drops (closes and frees) every container that is dead or was not seen in scan generation gen
 * (gen < 0: only dead ones). */
static void rr_table_prune(struct rr_table *t, int gen)
{
    size_t w = 0;
    for (size_t i = 0; i < t->n; i++) {
        struct rr_container *c = t->c[i];
        if (c->dead || (gen >= 0 && c->seen != gen)) {
            rr_container_close(c);
            free(c);
        } else {
            t->c[w++] = c;
        }
    }
    t->n = w;
}

static int rr_is_id(const char *name)
{
    size_t i;
    for (i = 0; name[i]; i++)
        if (!isxdigit((unsigned char)name[i]))
            return 0;
    return i == RR_ID_LEN;
}

/* Scans <root>/cpuacct/docker/ and opens the containers not yet in t. Returns 0 or a negative
 * errno when the directory cannot be read (no container yet is not an error: the table empties). */
static int rr_table_scan(struct rr_table *t, const char *root, int gen)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/cpuacct/docker", root);
    DIR *d = opendir(dir);
    if (!d) {
        int err = -errno;
        rr_table_prune(t, gen);
        return err == -ENOENT ? 0 : err;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!rr_is_id(de->d_name))
            continue;
        struct rr_container *c = rr_table_find(t, de->d_name);
        if (!c) {
            c = rr_container_open(root, de->d_name);
            if (!c)
                continue;
            if (rr_table_add(t, c) < 0) {
                rr_container_close(c);
                free(c);
                continue;
            }
        }
        c->seen = gen;
    }
    closedir(d);
    rr_table_prune(t, gen);
    return 0;
}

/* One pread of fd from offset 0 into buf; the length read, or -1 on error. */
static ssize_t rr_pread(int fd, char *buf, size_t cap, struct rr_stats *st)
{
    ssize_t n = pread(fd, buf, cap, 0);
    if (n < 0)
        st->read_errs++;
    else
        st->reads++;
    return n;
}

/* Reads and parses every file of c once. Marks c dead when its cgroup is gone. */
static void rr_container_read(struct rr_container *c, const char *proc_root, char *buf,
                              size_t cap, struct rr_stats *st)
{
    long first_pid = 0;
    for (int i = 0; i < RR_NFILES; i++) {
        if (c->fd[i] < 0)
            continue;
        uint64_t t0 = st->timed ? rr_now_ns() : 0;
        ssize_t n = rr_pread(c->fd[i], buf, cap, st);
        if (n < 0) {
            if (i == RR_F_USAGE) {
                c->dead = 1;
                return;
            }
            continue;
        }
        if (i == RR_F_PROCS) {
            first_pid = rr_first_number(buf, (size_t)n);
            st->checksum += rr_count_lines(buf, (size_t)n);
        } else if (i == RR_F_TASKS) {
            st->threads += rr_count_lines(buf, (size_t)n);
        } else {
            st->checksum += rr_sum_numbers(buf, (size_t)n);
        }
        if (st->timed) {
            st->file_ns[i] += rr_now_ns() - t0;
            st->file_reads[i]++;
        }
    }
    /* The network namespace is read through the first process; follow it if that pid changed. */
    if (first_pid != c->netdev_pid) {
        if (c->netdev_fd >= 0)
            close(c->netdev_fd);
        c->netdev_fd = rr_open_netdev(proc_root, first_pid);
        c->netdev_pid = first_pid;
    }
    if (c->netdev_fd >= 0) {
        uint64_t t0 = st->timed ? rr_now_ns() : 0;
        ssize_t n = rr_pread(c->netdev_fd, buf, cap, st);
        if (n > 0)
            st->checksum += rr_sum_numbers(buf, (size_t)n);
        if (st->timed && n > 0) {
            st->file_ns[RR_NFILES] += rr_now_ns() - t0;
            st->file_reads[RR_NFILES]++;
        }
    }
}

static size_t rr_count_fds(const struct rr_table *t)
{
    size_t n = 0;
    for (size_t i = 0; i < t->n; i++) {
        for (int j = 0; j < RR_NFILES; j++)
            n += t->c[i]->fd[j] >= 0;
        n += t->c[i]->netdev_fd >= 0;
    }
    return n;
}

static void rr_usage(FILE *out)
{
    fprintf(out, "usage: rawread [-i interval_ms] [-r cgroup_root] [-p proc_root] "
                 "[-s rescan_cycles] [-n cycles] [-t] [-v]\n");
}

/* Raises the soft open-file limit to the hard one (an agent holds ~19 fds per container). */
static void rr_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv)
{
    long interval_ms = 1000, rescan = 10, max_cycles = 0;
    const char *root = "/sys/fs/cgroup", *proc_root = "/proc";
    int verbose = 0, opt;
    static char buf[RR_BUF];

    struct rr_table table = { 0 };
    struct rr_stats st = { 0 };
    while ((opt = getopt(argc, argv, "i:r:p:s:n:tvh")) != -1) {
        switch (opt) {
        case 'i': interval_ms = strtol(optarg, NULL, 10); break;
        case 'r': root = optarg; break;
        case 'p': proc_root = optarg; break;
        case 's': rescan = strtol(optarg, NULL, 10); break;
        case 'n': max_cycles = strtol(optarg, NULL, 10); break;
        case 't': st.timed = 1; break;
        case 'v': verbose = 1; break;
        case 'h': rr_usage(stdout); return 0;
        default: rr_usage(stderr); return 2;
        }
    }
    if (interval_ms <= 0 || rescan <= 0 || max_cycles < 0) {
        rr_usage(stderr);
        return 2;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = rr_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    rr_raise_nofile();

    size_t last_n = (size_t)-1;
    int gen = 0;
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);

    while (!rr_stop) {
        if (st.cycles % (uint64_t)rescan == 0) {
            int err = rr_table_scan(&table, root, ++gen);
            if (err < 0)
                fprintf(stderr, "rawread: scan %s/cpuacct/docker: %s\n", root, strerror(-err));
            if (table.n != last_n) {
                fprintf(stderr, "rawread: %zu containers, %zu fds\n", table.n,
                        rr_count_fds(&table));
                last_n = table.n;
            }
        }
        uint64_t t0 = rr_now_ns();
        st.threads = 0;
        for (size_t i = 0; i < table.n; i++)
            rr_container_read(table.c[i], proc_root, buf, sizeof buf, &st);
        rr_table_prune(&table, -1);
        uint64_t dt = rr_now_ns() - t0;
        st.read_ns += dt;
        st.cycles++;
        if (verbose)
            fprintf(stderr, "rawread: cycle %llu: %zu containers, %llu threads, %llu us\n",
                    (unsigned long long)st.cycles, table.n, (unsigned long long)st.threads,
                    (unsigned long long)(dt / 1000));
        if (max_cycles && st.cycles >= (uint64_t)max_cycles)
            break;
        next.tv_nsec += (interval_ms % 1000) * 1000000L;
        next.tv_sec += interval_ms / 1000 + next.tv_nsec / 1000000000L;
        next.tv_nsec %= 1000000000L;
        while (!rr_stop && clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
            ;
    }

    double per_cycle_us = st.cycles ? (double)st.read_ns / 1e3 / (double)st.cycles : 0.0;
    fprintf(stderr,
            "rawread: done: cycles %llu containers %zu fds %zu reads %llu errors %llu "
            "mean_cycle_us %.1f us_per_container %.2f checksum %llu\n",
            (unsigned long long)st.cycles, table.n, rr_count_fds(&table),
            (unsigned long long)st.reads, (unsigned long long)st.read_errs, per_cycle_us,
            table.n ? per_cycle_us / (double)table.n : 0.0, (unsigned long long)st.checksum);
    for (int i = 0; st.timed && i <= RR_NFILES; i++) {
        if (st.file_reads[i] == 0)
            continue;
        fprintf(stderr, "rawread: file %-34s %8.2f us per read (%llu reads)\n",
                i < RR_NFILES ? rr_files[i].name : "/proc/<pid>/net/dev",
                (double)st.file_ns[i] / 1e3 / (double)st.file_reads[i],
                (unsigned long long)st.file_reads[i]);
    }
    rr_table_free(&table);
    return 0;
}
