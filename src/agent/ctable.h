/*
 * ctable: the agent's container table, id -> struct container.
 *
 * The table owns each container, its cg_reader (kept-open fds) and one
 * reference to its current cmeta (labels). Lookups by id are O(1) (chained
 * hash); iteration is in insertion order (a dense array), so a snapshot lists
 * containers in a stable order. Removing swaps the last entry into the hole.
 * Single-threaded; owned by the agent.
 */
#ifndef TETHER_CTABLE_H
#define TETHER_CTABLE_H

#include <stddef.h>
#include <stdint.h>

#include "agent/sample.h"

struct cg_reader;

enum inspect_state {
    INSPECT_NONE = 0,    /* not asked yet (or failed: see next_inspect_ms) */
    INSPECT_PENDING,     /* request in flight */
    INSPECT_DONE,        /* labels come from a successful inspect */
};

struct container {
    char id[65];                 /* 64-hex container id (or cgroup basename) */
    char cgroup[256];            /* cgroup path relative to the hierarchy root */
    struct cmeta *meta;          /* current labels (one reference owned here) */
    struct cg_reader *reader;    /* open files; NULL until the cgroup exists */
    enum inspect_state inspect;  /* labels from dockerd yet? */
    unsigned inspect_failures;   /* consecutive failed inspects (backoff) */
    uint64_t next_inspect_ms;    /* uv_now before which no inspect is retried */
    uint64_t added_ms;           /* uv_now when found */
    uint64_t scan_gen;           /* last cgroup scan generation that saw it */
    const char *found_by;        /* "scan", "list", "event" (literal) */
    size_t index;                /* position in the dense array */
    struct container *next;      /* hash chain */
};

struct ctable;

struct ctable *ctable_new(void);
/* Frees every container (closing readers, dropping meta references). */
void ctable_free(struct ctable *t);
size_t ctable_count(const struct ctable *t);
struct container *ctable_at(const struct ctable *t, size_t i);
struct container *ctable_get(const struct ctable *t, const char *id);
/*
 * Adds a container with the given id and cgroup path and a placeholder meta
 * (labelled by id). Returns the existing one if the id is known. NULL on OOM.
 */
struct container *ctable_add(struct ctable *t, const char *id, const char *cgroup, uint64_t now_ms,
                             const char *found_by);
/* Replaces the container's meta (takes ownership of `meta`'s reference). */
void ctable_set_meta(struct container *c, struct cmeta *meta);
/* Removes and frees a container (closes its reader). */
void ctable_remove(struct ctable *t, struct container *c);

#endif
