/*
 * metrics: the daemons' self-metrics registry (agent now, hub and proxy later),
 * rendered as a Prometheus text page.
 *
 *   struct metrics      the registry: families in registration order
 *     struct mfamily    one metric name: type, help, label names, buckets
 *       struct mchild   one series (label values -> value / histogram state)
 *
 * Usage:
 *   struct metrics *m = metrics_new();
 *   struct mchild *scrapes = metrics_counter(m, "tether_scrapes_total", "Scrapes served.");
 *   static const char *const lbl[] = { "endpoint", NULL };
 *   struct mfamily *reqs = metrics_family(m, "tether_docker_requests_total", "...",
 *                                         METRIC_COUNTER, lbl, NULL, 0);
 *   mchild_inc(scrapes);
 *   mchild_inc(mfamily_child(reqs, (const char *const[]){ "inspect" }));
 *   metrics_render(m, &page);
 *
 * Ownership and lifetime
 *   - The registry owns every family and child; metrics_free() frees them all.
 *   - Family and child pointers are stable until the family/child is removed
 *     or the registry is freed, so hot paths look a child up once and keep the
 *     pointer (per-container series keep theirs in the container's entry).
 *   - mfamily_remove()/mfamily_clear() free children: a kept pointer to a
 *     removed child dangles. Remove only series you own (e.g. the per-container
 *     series of a vanished container, from the code that tracked it).
 *   - Names, help, label names, label values and buckets are copied; the
 *     caller's strings may be temporary.
 *
 * Semantics follow Prometheus client libraries: counters only go up (add of a
 * negative or NaN amount is ignored); mchild_set() is allowed on counters too,
 * for mirroring a counter kept elsewhere (e.g. http_server_info()); histograms
 * have cumulative `_bucket{le}` series, `le="+Inf"` equal to `_count`, and
 * `_sum`. Every mchild_* function accepts NULL (a child whose creation failed
 * on OOM) and then does nothing, so instrumentation never needs error checks.
 *
 * Lookups hash the label values (FNV-1a), so a family with thousands of series
 * (the hub's per-target metrics) stays O(1) per lookup.
 *
 * Single-threaded: everything runs on the event-loop thread.
 */
#ifndef TETHER_METRICS_H
#define TETHER_METRICS_H

#include <stddef.h>

#include "core/sbuf.h"

enum metric_type {
    METRIC_COUNTER,
    METRIC_GAUGE,
    METRIC_HISTOGRAM,
};

struct metrics;
struct mfamily;
struct mchild;

/* An empty registry, or NULL on OOM. Free with metrics_free(). */
struct metrics *metrics_new(void);

/* Frees the registry with all families and children. NULL is fine. */
void metrics_free(struct metrics *m);

/*
 * Registers a family, or returns the existing one when a family of the same
 * name, type, label names and buckets was registered before (so independent
 * modules may register the same family). label_names is NULL-terminated or
 * NULL for none. buckets (histograms only) are upper bounds, strictly
 * increasing and finite; a trailing +Inf is accepted and dropped (the +Inf
 * bucket is always implicit); other types ignore them.
 * Returns NULL (and logs why) on an invalid metric or label name, a label "le"
 * on a histogram, bad buckets, a conflicting earlier registration, or OOM.
 */
struct mfamily *metrics_family(struct metrics *m, const char *name, const char *help,
                               enum metric_type type, const char *const *label_names,
                               const double *buckets, size_t nbuckets);

/*
 * The child with these label values (one per label name, in order; a NULL
 * value means ""), created with zero values on first use. label_values may be
 * NULL for a family without labels. NULL on OOM, or when f is NULL or
 * label_values is NULL while the family has labels.
 */
struct mchild *mfamily_child(struct mfamily *f, const char *const *label_values);

/* Removes (frees) the child with these label values. 0, or -ENOENT when absent. */
int mfamily_remove(struct mfamily *f, const char *const *label_values);

/* Removes every child of the family (the family itself stays registered). */
void mfamily_clear(struct mfamily *f);

/* Number of children of the family (0 for NULL). */
size_t mfamily_size(const struct mfamily *f);

/* Shortcuts: registers (or finds) a label-less family and returns its only child. */
struct mchild *metrics_counter(struct metrics *m, const char *name, const char *help);
struct mchild *metrics_gauge(struct metrics *m, const char *name, const char *help);
struct mchild *metrics_histogram(struct metrics *m, const char *name, const char *help,
                                 const double *buckets, size_t nbuckets);

/* counter/gauge += 1. */
void mchild_inc(struct mchild *c);
/* counter/gauge += v (a counter ignores v < 0 and NaN). */
void mchild_add(struct mchild *c, double v);
/* counter/gauge = v. */
void mchild_set(struct mchild *c, double v);
/* histogram: counts v in the first bucket with v <= bound (else only in +Inf), adds to _sum. */
void mchild_observe(struct mchild *c, double v);
/* Current value of a counter/gauge, or the _sum of a histogram (0 for NULL). */
double mchild_value(const struct mchild *c);
/* Number of observations of a histogram (0 for other types and NULL). */
unsigned long long mchild_count(const struct mchild *c);

/*
 * Appends the whole registry to out: families in registration order, each
 * with # HELP and # TYPE, then its children in creation order. Families
 * without children are left out. 0 or -ENOMEM (out then holds a partial page).
 */
int metrics_render(const struct metrics *m, struct sbuf *out);

#endif
