/*
 * prom: see prom.h. A table of families drives a small generator that emits
 * the page one sample line at a time:
 *
 *   prom_cursor_fill(buf, cap)            prom_render_all(out)
 *        |  copy what is left of `line`        |
 *        v                                     v
 *   prom_gen_next(gen, line) ----------> prom_gen_next(gen, out)   (until 0)
 *        (family, container, sub-series) position advances by one line
 *
 * The cursor keeps only the position, the current line and the per-container
 * label prefixes `{id="...",name="...",image="...",container_label_...`
 * escaped once at creation (every line of a container repeats them), so its
 * memory is bounded by the snapshot's label text, not by the page.
 */
#include "agent/prom.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/expo.h"
#include "core/log.h"

const char *const PROM_LINT_EXCEPTIONS[] = {
    "container_memory_failcnt", /* cAdvisor's counter without _total */
    NULL,
};

/* How a family finds its values in a csample. */
enum prom_kind {
    PK_U64,        /* one uint64_t at `off` in struct csample */
    PK_CPU,        /* cpu_usage_ns ("total") or percpu_ns[] ("cpu00"...) */
    PK_BLK,        /* uint64_t at `off` in each struct blkdev_stat, label device */
    PK_NET,        /* uint64_t at `off` in each struct netif_stat, label interface */
    PK_MEM_LIMIT,  /* mem_limit, 0 when unlimited */
    PK_LAST_SEEN,  /* the sample's read time, whole seconds */
    PK_START_TIME, /* cmeta.start_time, whole seconds; no series when unknown */
};

struct prom_family {
    const char *name;    /* cAdvisor's family name */
    const char *help;    /* cAdvisor's help text */
    const char *type;    /* "counter" or "gauge" */
    uint32_t have;       /* HAVE_* bit the sample needs, 0 = always present */
    enum prom_kind kind; /* where the values come from */
    size_t off;          /* offset of the uint64_t field (see kind) */
    double div;          /* unit divisor: 1, 1e6 (µs -> s) or 1e9 (ns -> s) */
};

#define CS(field) offsetof(struct csample, field)
#define BLK(field) offsetof(struct blkdev_stat, field)
#define NET(field) offsetof(struct netif_stat, field)

static const struct prom_family prom_families[] = {
    { "container_cpu_usage_seconds_total", "Cumulative cpu time consumed in seconds.", "counter",
      HAVE_CPU, PK_CPU, CS(cpu_usage_ns), 1e9 },
    { "container_cpu_user_seconds_total", "Cumulative user cpu time consumed in seconds.", "counter",
      HAVE_CPU, PK_U64, CS(cpu_user_ns), 1e9 },
    { "container_cpu_system_seconds_total", "Cumulative system cpu time consumed in seconds.", "counter",
      HAVE_CPU, PK_U64, CS(cpu_system_ns), 1e9 },
    { "container_cpu_cfs_periods_total", "Number of elapsed enforcement period intervals.", "counter",
      HAVE_CFS, PK_U64, CS(cfs_periods), 1 },
    { "container_cpu_cfs_throttled_periods_total", "Number of throttled period intervals.", "counter",
      HAVE_CFS, PK_U64, CS(cfs_throttled_periods), 1 },
    { "container_cpu_cfs_throttled_seconds_total", "Total time duration the container has been throttled.",
      "counter", HAVE_CFS, PK_U64, CS(cfs_throttled_ns), 1e9 },
    { "container_memory_usage_bytes",
      "Current memory usage in bytes, including all memory regardless of when it was accessed", "gauge",
      HAVE_MEM, PK_U64, CS(mem_usage), 1 },
    { "container_memory_working_set_bytes", "Current working set in bytes.", "gauge",
      HAVE_MEM, PK_U64, CS(mem_working_set), 1 },
    { "container_memory_rss", "Size of RSS in bytes.", "gauge", HAVE_MEM, PK_U64, CS(mem_rss), 1 },
    { "container_memory_cache", "Number of bytes of page cache memory.", "gauge",
      HAVE_MEM, PK_U64, CS(mem_cache), 1 },
    { "container_memory_swap", "Container swap usage in bytes.", "gauge",
      HAVE_MEM_SWAP, PK_U64, CS(mem_swap), 1 },
    { "container_memory_mapped_file", "Size of memory mapped files in bytes.", "gauge",
      HAVE_MEM, PK_U64, CS(mem_mapped_file), 1 },
    { "container_memory_max_usage_bytes", "Maximum memory usage recorded in bytes", "gauge",
      HAVE_MEM_MAX, PK_U64, CS(mem_max_usage), 1 },
    { "container_memory_failcnt", "Number of memory usage hits limits", "counter",
      HAVE_MEM_FAIL, PK_U64, CS(mem_failcnt), 1 },
    { "container_spec_memory_limit_bytes", "Memory limit for the container.", "gauge",
      HAVE_MEM, PK_MEM_LIMIT, CS(mem_limit), 1 },
    { "container_oom_events_total", "Count of out of memory events observed for the container", "counter",
      HAVE_OOM, PK_U64, CS(oom_events), 1 },
    { "container_fs_reads_bytes_total", "Cumulative count of bytes read", "counter",
      HAVE_BLK, PK_BLK, BLK(read_bytes), 1 },
    { "container_fs_writes_bytes_total", "Cumulative count of bytes written", "counter",
      HAVE_BLK, PK_BLK, BLK(write_bytes), 1 },
    { "container_fs_reads_total", "Cumulative count of reads completed", "counter",
      HAVE_BLK, PK_BLK, BLK(reads), 1 },
    { "container_fs_writes_total", "Cumulative count of writes completed", "counter",
      HAVE_BLK, PK_BLK, BLK(writes), 1 },
    { "container_network_receive_bytes_total", "Cumulative count of bytes received", "counter",
      HAVE_NET, PK_NET, NET(rx_bytes), 1 },
    { "container_network_receive_packets_total", "Cumulative count of packets received", "counter",
      HAVE_NET, PK_NET, NET(rx_packets), 1 },
    { "container_network_receive_packets_dropped_total", "Cumulative count of packets dropped while receiving",
      "counter", HAVE_NET, PK_NET, NET(rx_dropped), 1 },
    { "container_network_receive_errors_total", "Cumulative count of errors encountered while receiving",
      "counter", HAVE_NET, PK_NET, NET(rx_errors), 1 },
    { "container_network_transmit_bytes_total", "Cumulative count of bytes transmitted", "counter",
      HAVE_NET, PK_NET, NET(tx_bytes), 1 },
    { "container_network_transmit_packets_total", "Cumulative count of packets transmitted", "counter",
      HAVE_NET, PK_NET, NET(tx_packets), 1 },
    { "container_network_transmit_packets_dropped_total",
      "Cumulative count of packets dropped while transmitting", "counter",
      HAVE_NET, PK_NET, NET(tx_dropped), 1 },
    { "container_network_transmit_errors_total", "Cumulative count of errors encountered while transmitting",
      "counter", HAVE_NET, PK_NET, NET(tx_errors), 1 },
    { "container_processes", "Number of processes running inside the container.", "gauge",
      HAVE_PIDS, PK_U64, CS(processes), 1 },
    { "container_threads", "Number of threads running inside the container", "gauge",
      HAVE_PIDS, PK_U64, CS(threads), 1 },
    { "container_last_seen", "Last time a container was seen by the exporter", "gauge",
      0, PK_LAST_SEEN, 0, 1 },
    { "container_start_time_seconds", "Start time of the container since unix epoch in seconds.", "gauge",
      0, PK_START_TIME, 0, 1 },
    { "container_pressure_cpu_waiting_seconds_total",
      "Total time duration tasks in the container have waited due to CPU congestion.", "counter",
      HAVE_PSI_CPU, PK_U64, CS(psi_cpu.some_total_us), 1e6 },
    { "container_pressure_cpu_stalled_seconds_total",
      "Total time duration no tasks in the container could make progress due to CPU congestion.", "counter",
      HAVE_PSI_CPU, PK_U64, CS(psi_cpu.full_total_us), 1e6 },
    { "container_pressure_memory_waiting_seconds_total",
      "Total time duration tasks in the container have waited due to memory congestion.", "counter",
      HAVE_PSI_MEM, PK_U64, CS(psi_mem.some_total_us), 1e6 },
    { "container_pressure_memory_stalled_seconds_total",
      "Total time duration no tasks in the container could make progress due to memory congestion.",
      "counter", HAVE_PSI_MEM, PK_U64, CS(psi_mem.full_total_us), 1e6 },
    { "container_pressure_io_waiting_seconds_total",
      "Total time duration tasks in the container have waited due to IO congestion.", "counter",
      HAVE_PSI_IO, PK_U64, CS(psi_io.some_total_us), 1e6 },
    { "container_pressure_io_stalled_seconds_total",
      "Total time duration no tasks in the container could make progress due to IO congestion.", "counter",
      HAVE_PSI_IO, PK_U64, CS(psi_io.full_total_us), 1e6 },
};

#define PROM_NFAMILIES (sizeof prom_families / sizeof prom_families[0])

/* A memory limit above this is "unlimited" (the kernel's rounded LLONG_MAX), as in cAdvisor. */
#define PROM_MEM_UNLIMITED (1ull << 62)

#define PROM_LABEL_PREFIX "container_label_"

/* Position in the page plus what every line needs; shared by the cursor and prom_render_all. */
struct prom_gen {
    struct snapshot *snap;   /* one reference held (NULL: no containers) */
    struct prom_opts opts;   /* copied options */
    struct sbuf prefixes;    /* every container's escaped `{id=..,name=..,image=..[,container_label_..]` */
    size_t *prefix_off;      /* n + 1 offsets into prefixes: container i is [off[i], off[i+1]) */
    size_t fam;              /* current family (index into prom_families) */
    size_t ci;               /* current container (index into snap->c) */
    size_t sub;              /* next sub-series of that container (cpu, device, interface) */
    int header_done;         /* HELP/TYPE of the current family already written */
};

static size_t prom_ncontainers(const struct prom_gen *g)
{
    return g->snap ? g->snap->n : 0;
}

/* True when key[0..) can follow "container_label_" and does not repeat an earlier key of m. */
static bool prom_label_key_ok(const struct cmeta *m, size_t i)
{
    const char *k = m->label_keys[i];
    if (!k)
        return false;
    for (const char *p = k; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return false;
    for (size_t j = 0; j < i; j++)
        if (m->label_keys[j] && strcmp(m->label_keys[j], k) == 0)
            return false;
    return true;
}

static const char *prom_str(const char *s) { return s ? s : ""; }

/* Appends one container's label prefix (without the closing brace). */
static int prom_write_prefix(struct sbuf *b, const struct cmeta *m)
{
    const char *id = m ? prom_str(m->cgroup) : "";
    const char *name = m ? prom_str(m->name) : "";
    const char *image = m ? prom_str(m->image) : "";
    int rc = expo_write_label(b, '{', "id", id, strlen(id));
    if (rc == 0)
        rc = expo_write_label(b, ',', "name", name, strlen(name));
    if (rc == 0)
        rc = expo_write_label(b, ',', "image", image, strlen(image));
    for (size_t i = 0; rc == 0 && m && i < m->nlabels; i++) {
        if (!prom_label_key_ok(m, i))
            continue;
        const char *v = m->label_values ? prom_str(m->label_values[i]) : "";
        rc = sbuf_append_str(b, "," PROM_LABEL_PREFIX);
        if (rc == 0)
            rc = expo_write_label(b, 0, m->label_keys[i], v, strlen(v));
    }
    return rc;
}

static int prom_gen_init(struct prom_gen *g, struct snapshot *snap, const struct prom_opts *opts)
{
    memset(g, 0, sizeof *g);
    sbuf_init(&g->prefixes);
    if (opts)
        g->opts = *opts;
    if (!snap)
        return 0;
    g->prefix_off = malloc((snap->n + 1) * sizeof *g->prefix_off);
    if (!g->prefix_off)
        return -ENOMEM;
    for (size_t i = 0; i < snap->n; i++) {
        g->prefix_off[i] = g->prefixes.len;
        int rc = prom_write_prefix(&g->prefixes, snap->c[i].meta);
        if (rc) {
            sbuf_free(&g->prefixes);
            free(g->prefix_off);
            g->prefix_off = NULL;
            return rc;
        }
    }
    g->prefix_off[snap->n] = g->prefixes.len;
    g->snap = snapshot_ref(snap);
    return 0;
}

static void prom_gen_free(struct prom_gen *g)
{
    sbuf_free(&g->prefixes);
    free(g->prefix_off);
    g->prefix_off = NULL;
    if (g->snap)
        snapshot_unref(g->snap);
    g->snap = NULL;
}

static uint64_t prom_u64_at(const void *base, size_t off)
{
    uint64_t v;
    memcpy(&v, (const char *)base + off, sizeof v);
    return v;
}

static double prom_scaled(uint64_t v, double div)
{
    return div == 1 ? (double)v : (double)v / div;
}

/* Number of sub-series the family may have for this sample (0 when its group was not read). */
static size_t prom_nsub(const struct prom_gen *g, const struct prom_family *f, const struct csample *s)
{
    if (f->have && !(s->have & f->have))
        return 0;
    switch (f->kind) {
    case PK_CPU:
        return g->opts.percpu && s->ncpu && s->percpu_ns ? s->ncpu : 1;
    case PK_BLK:
        return s->blk ? s->nblk : 0;
    case PK_NET:
        return s->net ? s->nnet : 0;
    default:
        return 1;
    }
}

/* Read time of a sample, falling back to the snapshot's. */
static double prom_sample_time(const struct prom_gen *g, const struct csample *s)
{
    return s->timestamp > 0 ? s->timestamp : g->snap->timestamp;
}

/*
 * Value and own label of sub-series `sub`; false when this sub-series has no
 * sample (an idle percpu entry, as cAdvisor skips; an unknown start time).
 * *lname is NULL when the family has no own label; lval is a caller buffer.
 */
static bool prom_value(const struct prom_gen *g, const struct prom_family *f, const struct csample *s,
                       size_t sub, double *v, const char **lname, char *lval, size_t lcap, size_t *llen)
{
    *lname = NULL;
    *llen = 0;
    switch (f->kind) {
    case PK_U64:
        *v = prom_scaled(prom_u64_at(s, f->off), f->div);
        return true;
    case PK_CPU:
        *lname = "cpu";
        if (g->opts.percpu && s->ncpu && s->percpu_ns) {
            if (s->percpu_ns[sub] == 0)
                return false;
            int n = snprintf(lval, lcap, "cpu%02zu", sub);
            *llen = n > 0 && (size_t)n < lcap ? (size_t)n : 0;
            *v = prom_scaled(s->percpu_ns[sub], f->div);
        } else {
            memcpy(lval, "total", 6);
            *llen = 5;
            *v = prom_scaled(s->cpu_usage_ns, f->div);
        }
        return true;
    case PK_BLK: {
        const struct blkdev_stat *d = &s->blk[sub];
        *lname = "device";
        *llen = strnlen(d->dev, sizeof d->dev);
        memcpy(lval, d->dev, *llen);
        *v = prom_scaled(prom_u64_at(d, f->off), f->div);
        return true;
    }
    case PK_NET: {
        const struct netif_stat *n = &s->net[sub];
        *lname = "interface";
        *llen = strnlen(n->name, sizeof n->name);
        memcpy(lval, n->name, *llen);
        *v = prom_scaled(prom_u64_at(n, f->off), f->div);
        return true;
    }
    case PK_MEM_LIMIT:
        *v = s->mem_limit > PROM_MEM_UNLIMITED ? 0 : (double)s->mem_limit;
        return true;
    case PK_LAST_SEEN: {
        double t = prom_sample_time(g, s);
        if (!(t > 0))
            return false;
        *v = floor(t);
        return true;
    }
    case PK_START_TIME:
        if (!s->meta || !(s->meta->start_time > 0))
            return false;
        *v = floor(s->meta->start_time);
        return true;
    }
    return false;
}

/* Appends one sample line of family f for container ci. */
static int prom_write_line(struct prom_gen *g, struct sbuf *out, const struct prom_family *f, size_t ci,
                           const char *lname, const char *lval, size_t llen, double v)
{
    const struct csample *s = &g->snap->c[ci];
    int rc = sbuf_append_str(out, f->name);
    if (rc == 0)
        rc = sbuf_append(out, g->prefixes.data + g->prefix_off[ci], g->prefix_off[ci + 1] - g->prefix_off[ci]);
    if (rc == 0 && lname)
        rc = expo_write_label(out, ',', lname, lval, llen);
    if (rc == 0)
        rc = sbuf_append(out, "} ", 2);
    if (rc == 0)
        rc = expo_append_value(out, v);
    if (rc == 0 && g->opts.timestamps) {
        double t = prom_sample_time(g, s);
        if (t > 0)
            rc = sbuf_printf(out, " %lld", (long long)llround(t * 1000.0));
    }
    if (rc == 0)
        rc = sbuf_putc(out, '\n');
    return rc;
}

/*
 * Appends the next sample line (preceded by its family's HELP/TYPE when it is
 * the family's first). 1 when a line was written, 0 at the end, -ENOMEM.
 */
static int prom_gen_next(struct prom_gen *g, struct sbuf *out)
{
    size_t n = prom_ncontainers(g);
    while (g->fam < PROM_NFAMILIES) {
        const struct prom_family *f = &prom_families[g->fam];
        while (g->ci < n) {
            const struct csample *s = &g->snap->c[g->ci];
            size_t nsub = prom_nsub(g, f, s);
            while (g->sub < nsub) {
                size_t sub = g->sub++;
                double v;
                const char *lname;
                char lval[40];
                size_t llen;
                if (!prom_value(g, f, s, sub, &v, &lname, lval, sizeof lval, &llen))
                    continue;
                int rc = 0;
                if (!g->header_done) {
                    rc = expo_write_header(out, f->name, f->help, f->type);
                    g->header_done = 1;
                }
                if (rc == 0)
                    rc = prom_write_line(g, out, f, g->ci, lname, lval, llen, v);
                return rc ? rc : 1;
            }
            g->ci++;
            g->sub = 0;
        }
        g->fam++;
        g->ci = 0;
        g->sub = 0;
        g->header_done = 0;
    }
    return 0;
}

int prom_render_all(struct snapshot *snap, const struct prom_opts *opts, struct sbuf *out)
{
    struct prom_gen g;
    int rc = prom_gen_init(&g, snap, opts);
    while (rc == 0) {
        rc = prom_gen_next(&g, out);
        if (rc == 1)
            rc = 0;
        else
            break;
    }
    prom_gen_free(&g);
    return rc < 0 ? rc : 0;
}

/* Where the cursor is in its output. */
enum prom_phase {
    PROM_FAMILIES, /* container families, line by line */
    PROM_TAIL,     /* the copied tail */
    PROM_DONE,     /* everything handed out */
};

struct prom_cursor {
    struct prom_gen gen;   /* family/container position and label prefixes */
    enum prom_phase phase;
    struct sbuf line;      /* the current line (HELP/TYPE included for a family's first) */
    size_t line_off;       /* bytes of `line` already handed out */
    char *tail;            /* copy of the tail (owned; NULL when empty) */
    size_t tail_len;
    size_t tail_off;       /* bytes of the tail already handed out */
    int error;             /* error to report on the next fill (0 = none) */
};

struct prom_cursor *prom_cursor_new(struct snapshot *snap, const struct prom_opts *opts, const char *tail,
                                    size_t tail_len)
{
    struct prom_cursor *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    sbuf_init(&c->line);
    if (tail && tail_len) {
        c->tail = malloc(tail_len);
        if (!c->tail) {
            free(c);
            return NULL;
        }
        memcpy(c->tail, tail, tail_len);
        c->tail_len = tail_len;
    }
    if (prom_gen_init(&c->gen, snap, opts)) {
        log_warn("prom: out of memory starting a /metrics page");
        free(c->tail);
        free(c);
        return NULL;
    }
    c->phase = PROM_FAMILIES;
    return c;
}

long prom_cursor_fill(char *buf, size_t cap, void *cursor)
{
    struct prom_cursor *c = cursor;
    if (!c || !buf || cap == 0)
        return -EINVAL;
    if (c->error)
        return c->error;
    if (cap > LONG_MAX)
        cap = LONG_MAX;
    size_t n = 0;
    while (n < cap && c->phase != PROM_DONE) {
        if (c->phase == PROM_FAMILIES) {
            if (c->line_off < c->line.len) {
                size_t k = c->line.len - c->line_off;
                if (k > cap - n)
                    k = cap - n;
                memcpy(buf + n, c->line.data + c->line_off, k);
                c->line_off += k;
                n += k;
                continue;
            }
            sbuf_reset(&c->line);
            c->line_off = 0;
            int rc = prom_gen_next(&c->gen, &c->line);
            if (rc < 0) {
                log_warn("prom: out of memory rendering /metrics; page aborted");
                c->error = rc;
                c->phase = PROM_DONE;
                return n ? (long)n : rc;
            }
            if (rc == 0) {
                c->phase = PROM_TAIL;
                sbuf_free(&c->line); /* the tail needs no line buffer */
            }
        } else {
            size_t k = c->tail_len - c->tail_off;
            if (k > cap - n)
                k = cap - n;
            if (k)
                memcpy(buf + n, c->tail + c->tail_off, k);
            c->tail_off += k;
            n += k;
            if (c->tail_off == c->tail_len)
                c->phase = PROM_DONE;
        }
    }
    return (long)n;
}

void prom_cursor_free(void *cursor)
{
    struct prom_cursor *c = cursor;
    if (!c)
        return;
    prom_gen_free(&c->gen);
    sbuf_free(&c->line);
    free(c->tail);
    free(c);
}
