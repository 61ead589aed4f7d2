/*
 * sample: the agent's data model, shared by the cgroup reader (producer), the
 * Prometheus renderer and the open-falcon formatter (consumers).
 *
 * Ownership
 *   struct cmeta      one per known container; refcounted (cmeta_ref/cmeta_unref)
 *                     because a snapshot being streamed to a scraper may outlive
 *                     the container. Immutable once published in a snapshot: a
 *                     rename or a successful inspect makes a new cmeta.
 *   struct csample    the numbers of one container at one collection; owned by
 *                     its snapshot; its arrays (percpu, blk, net) are owned by it.
 *   struct snapshot   one collection cycle; refcounted (snapshot_ref/unref). The
 *                     collector publishes a new one each interval and drops its
 *                     reference to the old one; an HTTP response streaming the old
 *                     page keeps it alive until the last byte is written.
 * All of this lives on the event-loop thread; nothing here is shared between threads.
 */
#ifndef TETHER_SAMPLE_H
#define TETHER_SAMPLE_H

#include <stddef.h>
#include <stdint.h>

struct cmeta {
    unsigned refs;      /* references: the container table + each snapshot holding it */
    char *id;           /* full container id (64 hex) or the cgroup's basename */
    char *cgroup;       /* the `id` label: cgroup path relative to the hierarchy root, e.g. /docker/<id> */
    char *name;         /* container name without the leading '/'; "" until inspected */
    char *image;        /* Config.Image; "" until inspected */
    size_t nlabels;     /* container labels kept (only those the user asked for) */
    char **label_keys;  /* already sanitized to [a-zA-Z0-9_] for container_label_<key> */
    char **label_values;
    double start_time;  /* unix seconds the container started (State.StartedAt), 0 unknown */
};

/* Allocates a cmeta with refs = 1, copying every string (NULL -> ""). NULL on OOM. */
struct cmeta *cmeta_new(const char *id, const char *cgroup, const char *name, const char *image,
                        double start_time);
/* Adds a label (copied; key sanitized). 0 or -ENOMEM. Only before publishing. */
int cmeta_add_label(struct cmeta *m, const char *key, const char *value);
struct cmeta *cmeta_ref(struct cmeta *m);
void cmeta_unref(struct cmeta *m);

/* Bits of csample.have: which groups were read successfully this cycle. */
enum {
    HAVE_CPU      = 1u << 0,  /* cpu_usage/user/system */
    HAVE_CFS      = 1u << 1,  /* cfs_* */
    HAVE_MEM      = 1u << 2,  /* mem_usage, working_set, rss, cache, mapped_file */
    HAVE_MEM_SWAP = 1u << 3,
    HAVE_MEM_MAX  = 1u << 4,  /* mem_max_usage (v1 max_usage_in_bytes, v2 memory.peak) */
    HAVE_MEM_FAIL = 1u << 5,  /* mem_failcnt (v1 only) */
    HAVE_OOM      = 1u << 6,
    HAVE_PIDS     = 1u << 7,  /* processes, threads */
    HAVE_BLK      = 1u << 8,
    HAVE_NET      = 1u << 9,
    HAVE_PSI_CPU  = 1u << 10,
    HAVE_PSI_MEM  = 1u << 11,
    HAVE_PSI_IO   = 1u << 12,
};

struct blkdev_stat {
    uint32_t major, minor;
    char dev[32];              /* the `device` label: "/dev/vda" when /sys/dev/block names it, else "MAJ:MIN" */
    uint64_t read_bytes, write_bytes;
    uint64_t reads, writes;    /* operations */
};

struct netif_stat {
    char name[32];
    uint64_t rx_bytes, rx_packets, rx_errors, rx_dropped;
    uint64_t tx_bytes, tx_packets, tx_errors, tx_dropped;
};

struct psi_stat {
    uint64_t some_total_us;    /* "some ... total=" in microseconds */
    uint64_t full_total_us;    /* "full ... total=" (0 when the file has no full line) */
};

struct csample {
    struct cmeta *meta;        /* one reference held by this sample */
    uint32_t have;             /* HAVE_* bits */
    double timestamp;          /* unix seconds of the read (container_last_seen) */

    uint64_t cpu_usage_ns, cpu_user_ns, cpu_system_ns;
    uint32_t ncpu;             /* entries in percpu_ns; 0 when the kernel offers none (v2) */
    uint64_t *percpu_ns;
    uint64_t cfs_periods, cfs_throttled_periods, cfs_throttled_ns;

    uint64_t mem_usage, mem_working_set, mem_rss, mem_cache, mem_swap, mem_mapped_file;
    uint64_t mem_max_usage, mem_failcnt;
    uint64_t mem_limit;        /* 0 = unlimited */
    uint64_t oom_events;

    uint64_t processes, threads;

    size_t nblk;
    struct blkdev_stat *blk;
    size_t nnet;
    struct netif_stat *net;

    struct psi_stat psi_cpu, psi_mem, psi_io;
};

/* Frees a sample's arrays and drops its meta reference (the struct itself is not freed). */
void csample_clear(struct csample *s);

struct snapshot {
    unsigned refs;
    uint64_t seq;              /* collection number, 1-based */
    double timestamp;          /* unix seconds the collection started */
    double duration;           /* seconds the collection took */
    size_t n;                  /* samples used */
    size_t cap;
    struct csample *c;         /* n samples, in container order of the table */
};

struct snapshot *snapshot_new(size_t cap);
/* Appends a zeroed sample (growing the array); NULL on OOM. */
struct csample *snapshot_add(struct snapshot *s);
struct snapshot *snapshot_ref(struct snapshot *s);
void snapshot_unref(struct snapshot *s);

#endif
