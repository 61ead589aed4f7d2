/*
 * sample: constructors and reference counting for the agent's data model
 * (see sample.h for who owns what).
 */
#include "agent/sample.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static char *dup_or_empty(const char *s) { return strdup(s ? s : ""); }

struct cmeta *cmeta_new(const char *id, const char *cgroup, const char *name, const char *image,
                        double start_time)
{
    struct cmeta *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->refs = 1;
    m->id = dup_or_empty(id);
    m->cgroup = dup_or_empty(cgroup);
    m->name = dup_or_empty(name && name[0] == '/' ? name + 1 : name);
    m->image = dup_or_empty(image);
    m->start_time = start_time;
    if (!m->id || !m->cgroup || !m->name || !m->image) {
        cmeta_unref(m);
        return NULL;
    }
    return m;
}

int cmeta_add_label(struct cmeta *m, const char *key, const char *value)
{
    char **k = realloc(m->label_keys, (m->nlabels + 1) * sizeof *k);
    if (!k)
        return -ENOMEM;
    m->label_keys = k;
    char **v = realloc(m->label_values, (m->nlabels + 1) * sizeof *v);
    if (!v)
        return -ENOMEM;
    m->label_values = v;
    char *kk = strdup(key), *vv = strdup(value ? value : "");
    if (!kk || !vv) {
        free(kk);
        free(vv);
        return -ENOMEM;
    }
    for (char *p = kk; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
            *p = '_';
    m->label_keys[m->nlabels] = kk;
    m->label_values[m->nlabels] = vv;
    m->nlabels++;
    return 0;
}

struct cmeta *cmeta_ref(struct cmeta *m)
{
    m->refs++;
    return m;
}

void cmeta_unref(struct cmeta *m)
{
    if (!m || --m->refs > 0)
        return;
    for (size_t i = 0; i < m->nlabels; i++) {
        free(m->label_keys[i]);
        free(m->label_values[i]);
    }
    free(m->label_keys);
    free(m->label_values);
    free(m->id);
    free(m->cgroup);
    free(m->name);
    free(m->image);
    free(m);
}

void csample_clear(struct csample *s)
{
    free(s->percpu_ns);
    free(s->blk);
    free(s->net);
    if (s->meta)
        cmeta_unref(s->meta);
    memset(s, 0, sizeof *s);
}

struct snapshot *snapshot_new(size_t cap)
{
    struct snapshot *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->refs = 1;
    if (cap) {
        s->c = calloc(cap, sizeof *s->c);
        if (!s->c) {
            free(s);
            return NULL;
        }
        s->cap = cap;
    }
    return s;
}

struct csample *snapshot_add(struct snapshot *s)
{
    if (s->n == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 16;
        struct csample *c = realloc(s->c, ncap * sizeof *c);
        if (!c)
            return NULL;
        memset(c + s->cap, 0, (ncap - s->cap) * sizeof *c);
        s->c = c;
        s->cap = ncap;
    }
    return &s->c[s->n++];
}

struct snapshot *snapshot_ref(struct snapshot *s)
{
    s->refs++;
    return s;
}

void snapshot_unref(struct snapshot *s)
{
    if (!s || --s->refs > 0)
        return;
    for (size_t i = 0; i < s->n; i++)
        csample_clear(&s->c[i]);
    free(s->c);
    free(s);
}
