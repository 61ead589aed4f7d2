/*
 * metrics: see metrics.h for the model and ownership.
 *
 * Each family keeps its children twice: on a doubly linked list in creation
 * order (rendering, O(1) removal) and in a chained hash table keyed by the
 * label values (lookup). A child is one allocation followed by its histogram
 * bucket counts; its label values are one more allocation holding all the
 * strings back to back.
 */
#include "core/metrics.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/expo.h"
#include "core/log.h"

#define METRICS_HASH_MIN 8 /* initial hash buckets per family (power of two) */

struct mchild {
    struct mfamily *fam;     /* owning family */
    struct mchild *prev;     /* creation-order list */
    struct mchild *next;
    struct mchild *hnext;    /* hash chain */
    uint64_t hash;           /* hash of the label values */
    char **values;           /* fam->nlabels label values; one block with the strings */
    double value;            /* counter/gauge value, histogram sum */
    unsigned long long count;/* histogram: observations (= the +Inf bucket) */
    unsigned long long buckets[]; /* histogram: per-bucket (non-cumulative) counts */
};

struct mfamily {
    struct metrics *owner;   /* registry this family belongs to */
    struct mfamily *next;    /* registration order */
    char *name;              /* metric name (owned) */
    char *help;              /* help text (owned, may be "") */
    enum metric_type type;
    size_t nlabels;          /* number of label names */
    char **label_names;      /* nlabels names (owned) */
    size_t nbuckets;         /* histogram upper bounds, without +Inf */
    double *bounds;          /* nbuckets bounds (owned) */
    struct mchild *first;    /* creation-order list of children */
    struct mchild *last;
    size_t nchildren;
    struct mchild **table;   /* hash table of children (htsize chains) */
    size_t htsize;           /* power of two, or 0 before the first child */
};

struct metrics {
    struct mfamily *first;   /* families in registration order */
    struct mfamily *last;
};

struct metrics *metrics_new(void)
{
    return calloc(1, sizeof(struct metrics));
}

static void mchild_free(struct mchild *c)
{
    free(c->values);
    free(c);
}

static void mfamily_free(struct mfamily *f)
{
    mfamily_clear(f);
    free(f->table);
    for (size_t i = 0; i < f->nlabels; i++)
        free(f->label_names[i]);
    free(f->label_names);
    free(f->bounds);
    free(f->name);
    free(f->help);
    free(f);
}

void metrics_free(struct metrics *m)
{
    if (!m)
        return;
    struct mfamily *f = m->first;
    while (f) {
        struct mfamily *next = f->next;
        mfamily_free(f);
        f = next;
    }
    free(m);
}

static const char *metrics_type_name(enum metric_type t)
{
    switch (t) {
    case METRIC_COUNTER: return "counter";
    case METRIC_GAUGE: return "gauge";
    case METRIC_HISTOGRAM: return "histogram";
    }
    return "untyped";
}

static struct mfamily *metrics_find(const struct metrics *m, const char *name)
{
    for (struct mfamily *f = m->first; f; f = f->next)
        if (strcmp(f->name, name) == 0)
            return f;
    return NULL;
}

/* True when an existing family matches a new registration exactly. */
static bool mfamily_same(const struct mfamily *f, enum metric_type type, const char *const *label_names,
                         size_t nlabels, const double *bounds, size_t nbounds)
{
    if (f->type != type || f->nlabels != nlabels)
        return false;
    for (size_t i = 0; i < nlabels; i++)
        if (strcmp(f->label_names[i], label_names[i]) != 0)
            return false;
    if (type != METRIC_HISTOGRAM)
        return true;
    if (f->nbuckets != nbounds)
        return false;
    for (size_t i = 0; i < nbounds; i++)
        if (f->bounds[i] != bounds[i])
            return false;
    return true;
}

struct mfamily *metrics_family(struct metrics *m, const char *name, const char *help,
                               enum metric_type type, const char *const *label_names,
                               const double *buckets, size_t nbuckets)
{
    if (!m || !name)
        return NULL;
    if (!expo_metric_name_valid(name, strlen(name))) {
        log_error("metrics: invalid metric name '%s'", name);
        return NULL;
    }
    if (type != METRIC_COUNTER && type != METRIC_GAUGE && type != METRIC_HISTOGRAM) {
        log_error("metrics: %s: unknown type %d", name, (int)type);
        return NULL;
    }
    size_t nlabels = 0;
    if (label_names)
        while (label_names[nlabels])
            nlabels++;
    for (size_t i = 0; i < nlabels; i++) {
        const char *l = label_names[i];
        if (!expo_label_name_valid(l, strlen(l)) || (type == METRIC_HISTOGRAM && strcmp(l, "le") == 0)) {
            log_error("metrics: %s: invalid label name '%s'", name, l);
            return NULL;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(l, label_names[j]) == 0) {
                log_error("metrics: %s: duplicate label name '%s'", name, l);
                return NULL;
            }
    }
    if (type != METRIC_HISTOGRAM)
        nbuckets = 0;
    if (nbuckets && !buckets)
        return NULL;
    if (nbuckets && isinf(buckets[nbuckets - 1]) && buckets[nbuckets - 1] > 0)
        nbuckets--; /* the implicit +Inf bucket */
    for (size_t i = 0; i < nbuckets; i++)
        if (!isfinite(buckets[i]) || (i > 0 && !(buckets[i] > buckets[i - 1]))) {
            log_error("metrics: %s: buckets must be finite and strictly increasing", name);
            return NULL;
        }

    struct mfamily *old = metrics_find(m, name);
    if (old) {
        if (mfamily_same(old, type, label_names, nlabels, buckets, nbuckets))
            return old;
        log_error("metrics: %s registered twice with different type, labels or buckets", name);
        return NULL;
    }

    struct mfamily *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->owner = m;
    f->type = type;
    f->name = strdup(name);
    f->help = strdup(help ? help : "");
    if (!f->name || !f->help)
        goto oom;
    if (nlabels) {
        f->label_names = calloc(nlabels, sizeof *f->label_names);
        if (!f->label_names)
            goto oom;
        for (size_t i = 0; i < nlabels; i++) {
            f->label_names[i] = strdup(label_names[i]);
            if (!f->label_names[i]) {
                f->nlabels = i;
                goto oom;
            }
        }
    }
    f->nlabels = nlabels;
    if (nbuckets) {
        f->bounds = malloc(nbuckets * sizeof *f->bounds);
        if (!f->bounds)
            goto oom;
        memcpy(f->bounds, buckets, nbuckets * sizeof *f->bounds);
        f->nbuckets = nbuckets;
    }
    if (m->last)
        m->last->next = f;
    else
        m->first = f;
    m->last = f;
    return f;
oom:
    log_error("metrics: %s: out of memory", name);
    mfamily_free(f);
    return NULL;
}

/* FNV-1a over the label values, each followed by a 0xff separator (never in UTF-8). */
static uint64_t mfamily_hash(size_t n, const char *const *values)
{
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < n; i++) {
        for (const unsigned char *p = (const unsigned char *)(values[i] ? values[i] : ""); *p; p++) {
            h ^= *p;
            h *= 1099511628211ull;
        }
        h ^= 0xff;
        h *= 1099511628211ull;
    }
    return h;
}

static bool mchild_matches(const struct mchild *c, size_t n, const char *const *values)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(c->values[i], values[i] ? values[i] : "") != 0)
            return false;
    return true;
}

/* Finds the child and, through prevp, the chain link that points at it. */
static struct mchild *mfamily_lookup(const struct mfamily *f, uint64_t h, const char *const *values,
                                     struct mchild ***prevp)
{
    if (!f->htsize)
        return NULL;
    struct mchild **pp = &f->table[h & (f->htsize - 1)];
    for (; *pp; pp = &(*pp)->hnext)
        if ((*pp)->hash == h && mchild_matches(*pp, f->nlabels, values)) {
            if (prevp)
                *prevp = pp;
            return *pp;
        }
    return NULL;
}

/* Grows the hash table when the load factor passes 1. 0 or -ENOMEM. */
static int mfamily_grow(struct mfamily *f)
{
    if (f->htsize && f->nchildren < f->htsize)
        return 0;
    size_t nsize = f->htsize ? f->htsize * 2 : METRICS_HASH_MIN;
    struct mchild **t = calloc(nsize, sizeof *t);
    if (!t)
        return f->htsize ? 0 : -ENOMEM; /* a fuller table still works */
    for (struct mchild *c = f->first; c; c = c->next) {
        size_t b = c->hash & (nsize - 1);
        c->hnext = t[b];
        t[b] = c;
    }
    free(f->table);
    f->table = t;
    f->htsize = nsize;
    return 0;
}

/* Copies the label values into one block: the pointer array then the strings. */
static char **mchild_copy_values(size_t n, const char *const *values)
{
    size_t bytes = n * sizeof(char *);
    for (size_t i = 0; i < n; i++)
        bytes += strlen(values[i] ? values[i] : "") + 1;
    char **v = malloc(bytes ? bytes : 1);
    if (!v)
        return NULL;
    char *p = (char *)(v + n);
    for (size_t i = 0; i < n; i++) {
        const char *s = values[i] ? values[i] : "";
        size_t len = strlen(s) + 1;
        memcpy(p, s, len);
        v[i] = p;
        p += len;
    }
    return v;
}

struct mchild *mfamily_child(struct mfamily *f, const char *const *label_values)
{
    if (!f)
        return NULL;
    if (f->nlabels && !label_values)
        return NULL;
    uint64_t h = mfamily_hash(f->nlabels, label_values);
    struct mchild *c = mfamily_lookup(f, h, label_values, NULL);
    if (c)
        return c;
    if (mfamily_grow(f))
        return NULL;
    size_t nb = f->type == METRIC_HISTOGRAM ? f->nbuckets : 0;
    c = calloc(1, sizeof *c + nb * sizeof c->buckets[0]);
    if (!c)
        return NULL;
    c->values = mchild_copy_values(f->nlabels, label_values);
    if (!c->values) {
        free(c);
        return NULL;
    }
    c->fam = f;
    c->hash = h;
    size_t b = h & (f->htsize - 1);
    c->hnext = f->table[b];
    f->table[b] = c;
    c->prev = f->last;
    if (f->last)
        f->last->next = c;
    else
        f->first = c;
    f->last = c;
    f->nchildren++;
    return c;
}

/* Unlinks c from the creation-order list (the hash chain is the caller's job). */
static void mfamily_unlink(struct mfamily *f, struct mchild *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        f->first = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        f->last = c->prev;
    f->nchildren--;
}

int mfamily_remove(struct mfamily *f, const char *const *label_values)
{
    if (!f || (f->nlabels && !label_values))
        return -ENOENT;
    struct mchild **pp = NULL;
    struct mchild *c = mfamily_lookup(f, mfamily_hash(f->nlabels, label_values), label_values, &pp);
    if (!c)
        return -ENOENT;
    *pp = c->hnext;
    mfamily_unlink(f, c);
    mchild_free(c);
    return 0;
}

void mfamily_clear(struct mfamily *f)
{
    if (!f)
        return;
    struct mchild *c = f->first;
    while (c) {
        struct mchild *next = c->next;
        mchild_free(c);
        c = next;
    }
    f->first = f->last = NULL;
    f->nchildren = 0;
    if (f->htsize)
        memset(f->table, 0, f->htsize * sizeof *f->table);
}

size_t mfamily_size(const struct mfamily *f)
{
    return f ? f->nchildren : 0;
}

struct mchild *metrics_counter(struct metrics *m, const char *name, const char *help)
{
    return mfamily_child(metrics_family(m, name, help, METRIC_COUNTER, NULL, NULL, 0), NULL);
}

struct mchild *metrics_gauge(struct metrics *m, const char *name, const char *help)
{
    return mfamily_child(metrics_family(m, name, help, METRIC_GAUGE, NULL, NULL, 0), NULL);
}

struct mchild *metrics_histogram(struct metrics *m, const char *name, const char *help,
                                 const double *buckets, size_t nbuckets)
{
    return mfamily_child(metrics_family(m, name, help, METRIC_HISTOGRAM, NULL, buckets, nbuckets), NULL);
}

void mchild_inc(struct mchild *c)
{
    mchild_add(c, 1);
}

void mchild_add(struct mchild *c, double v)
{
    if (!c || c->fam->type == METRIC_HISTOGRAM)
        return;
    if (c->fam->type == METRIC_COUNTER && !(v >= 0))
        return;
    c->value += v;
}

void mchild_set(struct mchild *c, double v)
{
    if (!c || c->fam->type == METRIC_HISTOGRAM)
        return;
    c->value = v;
}

void mchild_observe(struct mchild *c, double v)
{
    if (!c || c->fam->type != METRIC_HISTOGRAM)
        return;
    const struct mfamily *f = c->fam;
    for (size_t i = 0; i < f->nbuckets; i++)
        if (v <= f->bounds[i]) {
            c->buckets[i]++;
            break;
        }
    c->count++;
    c->value += v;
}

double mchild_value(const struct mchild *c)
{
    return c ? c->value : 0;
}

unsigned long long mchild_count(const struct mchild *c)
{
    return c && c->fam->type == METRIC_HISTOGRAM ? c->count : 0;
}

/*
 * Appends "name<suffix>{l1="v1",...[,le="<le>"]} <value>\n"; le may be NULL.
 */
static int metrics_write_sample(struct sbuf *out, const struct mfamily *f, const struct mchild *c,
                                const char *suffix, const char *le, double value)
{
    int rc = sbuf_append_str(out, f->name);
    if (rc == 0 && suffix)
        rc = sbuf_append_str(out, suffix);
    char sep = '{';
    for (size_t i = 0; rc == 0 && i < f->nlabels; i++) {
        rc = expo_write_label(out, sep, f->label_names[i], c->values[i], strlen(c->values[i]));
        sep = ',';
    }
    if (rc == 0 && le)
        rc = expo_write_label(out, sep, "le", le, strlen(le));
    if (rc == 0 && (f->nlabels || le))
        rc = sbuf_putc(out, '}');
    if (rc == 0)
        rc = sbuf_putc(out, ' ');
    if (rc == 0)
        rc = expo_append_value(out, value);
    if (rc == 0)
        rc = sbuf_putc(out, '\n');
    return rc;
}

static int metrics_render_histogram(struct sbuf *out, const struct mfamily *f, const struct mchild *c)
{
    char le[EXPO_VALUE_MAX];
    unsigned long long cum = 0;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < f->nbuckets; i++) {
        cum += c->buckets[i];
        expo_format_value(le, sizeof le, f->bounds[i]);
        rc = metrics_write_sample(out, f, c, "_bucket", le, (double)cum);
    }
    if (rc == 0)
        rc = metrics_write_sample(out, f, c, "_bucket", "+Inf", (double)c->count);
    if (rc == 0)
        rc = metrics_write_sample(out, f, c, "_sum", NULL, c->value);
    if (rc == 0)
        rc = metrics_write_sample(out, f, c, "_count", NULL, (double)c->count);
    return rc;
}

int metrics_render(const struct metrics *m, struct sbuf *out)
{
    if (!m)
        return 0;
    for (const struct mfamily *f = m->first; f; f = f->next) {
        if (!f->first)
            continue;
        int rc = expo_write_header(out, f->name, f->help, metrics_type_name(f->type));
        for (const struct mchild *c = f->first; rc == 0 && c; c = c->next) {
            if (f->type == METRIC_HISTOGRAM)
                rc = metrics_render_histogram(out, f, c);
            else
                rc = metrics_write_sample(out, f, c, NULL, NULL, c->value);
        }
        if (rc)
            return rc;
    }
    return 0;
}
