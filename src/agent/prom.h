/*
 * prom: the agent's /metrics page, rendered from a snapshot with cAdvisor's
 * family names, help strings and labels, so existing dashboards and alerts
 * work unchanged.
 *
 * Every container sample carries the labels
 *   id="<cmeta.cgroup>", name="<cmeta.name>", image="<cmeta.image>",
 *   container_label_<key>="<value>" for each label kept in the cmeta,
 * then the family's own label: cpu ("total", or "cpu00", "cpu01", ... with
 * prom_opts.percpu), device (blkdev_stat.dev) or interface (netif_stat.name).
 * Families come outer, containers inner, so each family appears once: HELP and
 * TYPE, then its samples for every container in snapshot order. A family whose
 * HAVE_* bit is unset in a sample has no series for that container; a family
 * without any series is left out. Units follow cAdvisor: CPU and PSI times in
 * seconds (from ns / µs), memory in bytes, container_spec_memory_limit_bytes 0
 * when unlimited.
 *
 * Names that Prometheus' linter (promtool check metrics) flags but that are
 * kept for compatibility with cAdvisor:
 *   container_memory_failcnt   counter without the _total suffix
 * (PROM_LINT_EXCEPTIONS lists them for tests.)
 *
 * Streaming: the page is produced line by line into the caller's buffer, so
 * memory stays bounded by the longest line (one sample's labels) plus the
 * copied tail, never by the page. The cursor holds a snapshot reference, so a
 * slow scraper can finish an old page while the collector publishes new ones.
 * The output does not depend on how the fill calls split it: any sequence of
 * buffer sizes yields the same bytes.
 */
#ifndef TETHER_AGENT_PROM_H
#define TETHER_AGENT_PROM_H

#include <stdbool.h>
#include <stddef.h>

#include "agent/sample.h"
#include "core/sbuf.h"

struct prom_opts {
    bool percpu;     /* container_cpu_usage_seconds_total per cpu (cpu00...) when the sample has percpu_ns */
    bool timestamps; /* append each sample's read time (ms) like cAdvisor; off by default */
};

/* NULL-terminated names promtool's lint may flag on this page (cAdvisor compatibility). */
extern const char *const PROM_LINT_EXCEPTIONS[];

struct prom_cursor;

/*
 * Starts streaming a page. snap may be NULL (no collection yet: only the tail
 * is produced); otherwise the cursor takes its own reference (snapshot_ref),
 * the caller keeps its own. opts may be NULL (defaults: all false) and is
 * copied. tail[0..tail_len) (e.g. the self-metrics page) is copied and
 * appended after the container families. NULL on OOM.
 */
struct prom_cursor *prom_cursor_new(struct snapshot *snap, const struct prom_opts *opts, const char *tail,
                                    size_t tail_len);

/*
 * http_fill_fn: writes up to cap bytes of the page into buf and returns how
 * many; 0 once the page is complete; -EINVAL when cap is 0; -ENOMEM when a line
 * could not be built (returned only after the bytes already produced in this
 * call have been handed out: the next call returns the error).
 */
long prom_cursor_fill(char *buf, size_t cap, void *cursor);

/* http_fill_done_fn: frees the cursor and drops its snapshot reference. NULL is fine. */
void prom_cursor_free(void *cursor);

/*
 * Appends the container families of snap (NULL: nothing) to out in one go:
 * the same bytes the cursor streams, without a tail. For tests and the hub.
 * 0 or -ENOMEM.
 */
int prom_render_all(struct snapshot *snap, const struct prom_opts *opts, struct sbuf *out);

#endif
