/*
 * ctable: see ctable.h. A dense array of pointers for ordered iteration plus
 * a power-of-two bucket array of chains for lookups by id.
 */
#include "agent/ctable.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/cgroup.h"

struct ctable {
    struct container **items;    /* dense, insertion order (modulo swap-removal) */
    size_t n, cap;
    struct container **buckets;  /* hash chains */
    size_t nbuckets;             /* power of two */
};

static uint32_t id_hash(const char *id)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)id; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h;
}

struct ctable *ctable_new(void)
{
    struct ctable *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->nbuckets = 256;
    t->buckets = calloc(t->nbuckets, sizeof *t->buckets);
    if (!t->buckets) {
        free(t);
        return NULL;
    }
    return t;
}

static void container_free(struct container *c)
{
    if (c->reader)
        cg_reader_close(c->reader);
    cmeta_unref(c->meta);
    free(c);
}

void ctable_free(struct ctable *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++)
        container_free(t->items[i]);
    free(t->items);
    free(t->buckets);
    free(t);
}

size_t ctable_count(const struct ctable *t) { return t->n; }

struct container *ctable_at(const struct ctable *t, size_t i) { return i < t->n ? t->items[i] : NULL; }

struct container *ctable_get(const struct ctable *t, const char *id)
{
    for (struct container *c = t->buckets[id_hash(id) & (t->nbuckets - 1)]; c; c = c->next)
        if (strcmp(c->id, id) == 0)
            return c;
    return NULL;
}

static int rehash(struct ctable *t)
{
    size_t nb = t->nbuckets * 2;
    struct container **b = calloc(nb, sizeof *b);
    if (!b)
        return -1;
    for (size_t i = 0; i < t->n; i++) {
        struct container *c = t->items[i];
        size_t k = id_hash(c->id) & (nb - 1);
        c->next = b[k];
        b[k] = c;
    }
    free(t->buckets);
    t->buckets = b;
    t->nbuckets = nb;
    return 0;
}

struct container *ctable_add(struct ctable *t, const char *id, const char *cgroup, uint64_t now_ms,
                             const char *found_by)
{
    struct container *c = ctable_get(t, id);
    if (c)
        return c;
    if (t->n == t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 64;
        struct container **it = realloc(t->items, ncap * sizeof *it);
        if (!it)
            return NULL;
        t->items = it;
        t->cap = ncap;
    }
    c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    snprintf(c->id, sizeof c->id, "%s", id);
    snprintf(c->cgroup, sizeof c->cgroup, "%s", cgroup ? cgroup : "");
    /* Until dockerd tells us the name, the container is labelled by its id. */
    c->meta = cmeta_new(c->id, c->cgroup, "", "", 0);
    if (!c->meta) {
        free(c);
        return NULL;
    }
    c->added_ms = now_ms;
    c->found_by = found_by;
    c->index = t->n;
    t->items[t->n++] = c;
    size_t k = id_hash(c->id) & (t->nbuckets - 1);
    c->next = t->buckets[k];
    t->buckets[k] = c;
    if (t->n > t->nbuckets)
        rehash(t); /* on failure the chains just get longer */
    return c;
}

void ctable_set_meta(struct container *c, struct cmeta *meta)
{
    cmeta_unref(c->meta);
    c->meta = meta;
}

void ctable_remove(struct ctable *t, struct container *c)
{
    struct container **pp = &t->buckets[id_hash(c->id) & (t->nbuckets - 1)];
    while (*pp && *pp != c)
        pp = &(*pp)->next;
    if (*pp)
        *pp = c->next;
    size_t i = c->index;
    t->items[i] = t->items[--t->n];
    t->items[i]->index = i;
    container_free(c);
}
