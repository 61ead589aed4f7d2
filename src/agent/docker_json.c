/*
 * docker_json: Docker Engine API response parsers and the /events line
 * splitter (contracts and memory ownership in docker_json.h).
 *
 * The JSON itself is decoded by jansson (json_loadb over exactly len bytes);
 * this file walks the resulting tree, checks types and copies the few fields
 * the agent needs into plain C structs, so that callers never hold jansson
 * objects. Each parser builds into its output struct and, on any error, frees
 * what it built with the matching docker_*_free() before returning.
 */
#include "agent/docker_json.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- jansson helpers ---------------------------------------------------- */

/* Decodes buf[0..len) into *root (a new reference). */
static int dj_load(const char *buf, size_t len, json_t **root)
{
    json_error_t err;

    *root = NULL;
    if (!buf || len == 0)
        return -EPROTO;
    if (len > DOCKER_JSON_MAX)
        return -EMSGSIZE;
    *root = json_loadb(buf, len, 0, &err);
    if (!*root)
        return json_error_code(&err) == json_error_out_of_memory ? -ENOMEM : -EPROTO;
    return 0;
}

/* obj[key] unless it is absent or JSON null. */
static json_t *dj_get(const json_t *obj, const char *key)
{
    json_t *v = obj ? json_object_get(obj, key) : NULL;
    return (v && !json_is_null(v)) ? v : NULL;
}

/* A nested object (NULL when missing); -EPROTO when present but not an object. */
static int dj_get_object(const json_t *obj, const char *key, json_t **out)
{
    json_t *v = dj_get(obj, key);
    *out = NULL;
    if (v && !json_is_object(v))
        return -EPROTO;
    *out = v;
    return 0;
}

/* Copies a string, dropping `skip_slash` leading '/' if present. */
static int dj_dup(const char *s, size_t n, int skip_slash, char **out)
{
    if (skip_slash && n > 0 && s[0] == '/') {
        s++;
        n--;
    }
    char *p = malloc(n + 1);
    if (!p)
        return -ENOMEM;
    memcpy(p, s, n);
    p[n] = '\0';
    *out = p;
    return 0;
}

/*
 * Copies obj[key] (a JSON string) into *out. Missing gives "" unless
 * `required`, which gives -EPROTO; a non-string gives -EPROTO.
 */
static int dj_get_str(const json_t *obj, const char *key, int required, int skip_slash, char **out)
{
    json_t *v = dj_get(obj, key);
    if (!v)
        return required ? -EPROTO : dj_dup("", 0, 0, out);
    if (!json_is_string(v))
        return -EPROTO;
    return dj_dup(json_string_value(v), json_string_length(v), skip_slash, out);
}

/* Like dj_get_str but keeps *out untouched when the key is missing. */
static int dj_get_str_opt(const json_t *obj, const char *key, int skip_slash, char **out)
{
    json_t *v = dj_get(obj, key);
    if (!v)
        return 0;
    if (!json_is_string(v))
        return -EPROTO;
    char *p;
    int rc = dj_dup(json_string_value(v), json_string_length(v), skip_slash, &p);
    if (rc < 0)
        return rc;
    free(*out);
    *out = p;
    return 0;
}

/* Fills *out with "" when it is still NULL. */
static int dj_default_empty(char **out)
{
    return *out ? 0 : dj_dup("", 0, 0, out);
}

/* obj[key] as an int; missing leaves *out alone; non-integer or out of range is -EPROTO. */
static int dj_get_int(const json_t *obj, const char *key, int *out)
{
    json_t *v = dj_get(obj, key);
    if (!v)
        return 0;
    if (!json_is_integer(v))
        return -EPROTO;
    json_int_t i = json_integer_value(v);
    if (i < INT_MIN || i > INT_MAX)
        return -EPROTO;
    *out = (int)i;
    return 0;
}

/* obj[key] as a bool; missing leaves *out alone; non-boolean is -EPROTO. */
static int dj_get_bool(const json_t *obj, const char *key, bool *out)
{
    json_t *v = dj_get(obj, key);
    if (!v)
        return 0;
    if (!json_is_boolean(v))
        return -EPROTO;
    *out = json_is_true(v);
    return 0;
}

/* obj[key] (an RFC 3339 string) as unix seconds; missing leaves *out alone. */
static int dj_get_time(const json_t *obj, const char *key, double *out)
{
    json_t *v = dj_get(obj, key);
    if (!v)
        return 0;
    if (!json_is_string(v))
        return -EPROTO;
    return docker_time_parse(json_string_value(v), json_string_length(v), out) < 0 ? -EPROTO : 0;
}

static void dj_free_labels(size_t n, char **keys, char **values)
{
    for (size_t i = 0; i < n; i++) {
        if (keys)
            free(keys[i]);
        if (values)
            free(values[i]);
    }
    free(keys);
    free(values);
}

/*
 * Copies a {"key":"value",...} object (missing or null: no labels). On error
 * nothing is left allocated and the outputs are untouched.
 */
static int dj_get_labels(const json_t *obj, const char *key, size_t *n_out, char ***keys_out,
                         char ***values_out)
{
    json_t *labels;
    int rc = dj_get_object(obj, key, &labels);
    if (rc < 0 || !labels || json_object_size(labels) == 0)
        return rc;

    size_t cap = json_object_size(labels), n = 0;
    char **keys = calloc(cap, sizeof *keys);
    char **values = calloc(cap, sizeof *values);
    if (!keys || !values) {
        rc = -ENOMEM;
        goto fail;
    }
    const char *k;
    json_t *v;
    json_object_foreach(labels, k, v) {
        if (n == cap || !json_is_string(v)) {
            rc = -EPROTO;
            goto fail;
        }
        rc = dj_dup(k, strlen(k), 0, &keys[n]);
        if (rc < 0)
            goto fail;
        rc = dj_dup(json_string_value(v), json_string_length(v), 0, &values[n]);
        n++; /* keys[n-1] is owned now even if the value failed */
        if (rc < 0)
            goto fail;
    }
    *n_out = n;
    *keys_out = keys;
    *values_out = values;
    return 0;
fail:
    dj_free_labels(n, keys, values);
    return rc;
}

/* ---- container list ----------------------------------------------------- */

static void dj_container_free(struct docker_container *c)
{
    free(c->id);
    free(c->name);
    free(c->image);
    free(c->state);
    dj_free_labels(c->nlabels, c->label_keys, c->label_values);
    memset(c, 0, sizeof *c);
}

static int dj_container_parse(const json_t *o, struct docker_container *c)
{
    int rc;

    if (!json_is_object(o))
        return -EPROTO;
    if ((rc = dj_get_str(o, "Id", 1, 0, &c->id)) < 0 ||
        (rc = dj_get_str(o, "Image", 0, 0, &c->image)) < 0 ||
        (rc = dj_get_str(o, "State", 0, 0, &c->state)) < 0 ||
        (rc = dj_get_labels(o, "Labels", &c->nlabels, &c->label_keys, &c->label_values)) < 0)
        return rc;

    json_t *names = dj_get(o, "Names");
    if (names) {
        if (!json_is_array(names))
            return -EPROTO;
        size_t i;
        json_t *nm;
        json_array_foreach(names, i, nm) {
            if (!json_is_string(nm))
                return -EPROTO;
        }
        if (json_array_size(names) > 0) {
            nm = json_array_get(names, 0);
            if ((rc = dj_dup(json_string_value(nm), json_string_length(nm), 1, &c->name)) < 0)
                return rc;
        }
    }
    return dj_default_empty(&c->name);
}

int docker_parse_list(const char *buf, size_t len, struct docker_list *out)
{
    json_t *root;
    int rc;

    memset(out, 0, sizeof *out);
    if ((rc = dj_load(buf, len, &root)) < 0)
        return rc;
    if (!json_is_array(root)) {
        rc = -EPROTO;
        goto done;
    }
    size_t n = json_array_size(root);
    if (n > 0) {
        out->c = calloc(n, sizeof *out->c);
        if (!out->c) {
            rc = -ENOMEM;
            goto done;
        }
    }
    for (size_t i = 0; i < n; i++) {
        out->n = i + 1; /* entry i is owned (zeroed or partly filled) from here on */
        if ((rc = dj_container_parse(json_array_get(root, i), &out->c[i])) < 0)
            goto done;
    }
    rc = 0;
done:
    json_decref(root);
    if (rc < 0)
        docker_list_free(out);
    return rc;
}

void docker_list_free(struct docker_list *list)
{
    if (!list)
        return;
    for (size_t i = 0; i < list->n; i++)
        dj_container_free(&list->c[i]);
    free(list->c);
    memset(list, 0, sizeof *list);
}

/* ---- inspect ------------------------------------------------------------ */

int docker_parse_inspect(const char *buf, size_t len, struct docker_inspect *out)
{
    json_t *root, *state, *config, *host, *health;
    int rc;

    memset(out, 0, sizeof *out);
    if ((rc = dj_load(buf, len, &root)) < 0)
        return rc;
    if (!json_is_object(root)) {
        rc = -EPROTO;
        goto done;
    }
    if ((rc = dj_get_object(root, "State", &state)) < 0 ||
        (rc = dj_get_object(root, "Config", &config)) < 0 ||
        (rc = dj_get_object(root, "HostConfig", &host)) < 0 ||
        (rc = dj_get_object(state, "Health", &health)) < 0)
        goto done;

    if ((rc = dj_get_str(root, "Id", 1, 0, &out->id)) < 0 ||
        (rc = dj_get_str(root, "Name", 0, 1, &out->name)) < 0 ||
        (rc = dj_get_str(config, "Image", 0, 0, &out->image)) < 0 ||
        (rc = dj_get_str(state, "Status", 0, 0, &out->status)) < 0 ||
        (rc = dj_get_str(health, "Status", 0, 0, &out->health)) < 0 ||
        (rc = dj_get_str(host, "CgroupParent", 0, 0, &out->cgroup_parent)) < 0 ||
        (rc = dj_get_labels(config, "Labels", &out->nlabels, &out->label_keys,
                            &out->label_values)) < 0 ||
        (rc = dj_get_int(state, "Pid", &out->pid)) < 0 ||
        (rc = dj_get_int(state, "ExitCode", &out->exit_code)) < 0 ||
        (rc = dj_get_bool(state, "Running", &out->running)) < 0 ||
        (rc = dj_get_bool(state, "OOMKilled", &out->oom_killed)) < 0 ||
        (rc = dj_get_bool(config, "Tty", &out->tty)) < 0 ||
        (rc = dj_get_time(state, "StartedAt", &out->started_at)) < 0 ||
        (rc = dj_get_time(state, "FinishedAt", &out->finished_at)) < 0)
        goto done;
    rc = 0;
done:
    json_decref(root);
    if (rc < 0)
        docker_inspect_free(out);
    return rc;
}

void docker_inspect_free(struct docker_inspect *ins)
{
    if (!ins)
        return;
    free(ins->id);
    free(ins->name);
    free(ins->image);
    free(ins->status);
    free(ins->health);
    free(ins->cgroup_parent);
    dj_free_labels(ins->nlabels, ins->label_keys, ins->label_values);
    memset(ins, 0, sizeof *ins);
}

/* ---- events ------------------------------------------------------------- */

static int dj_is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* Copies s[0..n) without leading and trailing blanks. */
static int dj_dup_trim(const char *s, size_t n, char **out)
{
    while (n > 0 && dj_is_blank(s[0])) {
        s++;
        n--;
    }
    while (n > 0 && dj_is_blank(s[n - 1]))
        n--;
    return dj_dup(s, n, 0, out);
}

/* Splits "health_status: healthy" into action and detail. */
static int dj_split_action(const json_t *v, struct docker_event *ev)
{
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    const char *colon = memchr(s, ':', n);
    size_t alen = colon ? (size_t)(colon - s) : n;
    int rc = dj_dup_trim(s, alen, &ev->action);
    if (rc < 0)
        return rc;
    if (colon)
        return dj_dup_trim(colon + 1, n - alen - 1, &ev->detail);
    return 0;
}

/* A JSON number of seconds or nanoseconds -> int64 ns; -EPROTO when not a finite number in range. */
static int dj_number_to_ns(const json_t *v, double scale, int64_t *out)
{
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (scale == 1.0) {
            *out = i;
            return 0;
        }
        if (i > INT64_MAX / (int64_t)scale || i < INT64_MIN / (int64_t)scale)
            return -EPROTO;
        *out = i * (int64_t)scale;
        return 0;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v) * scale;
        if (!isfinite(d) || d >= 9.2e18 || d <= -9.2e18)
            return -EPROTO;
        *out = (int64_t)d;
        return 0;
    }
    return -EPROTO;
}

/* "137" -> 137; false for anything but an optionally signed decimal int. */
static bool dj_parse_int(const char *s, size_t n, int *out)
{
    size_t i = 0;
    bool neg = false;
    long long v = 0;

    if (n > 0 && (s[0] == '-' || s[0] == '+')) {
        neg = s[0] == '-';
        i = 1;
    }
    if (i == n)
        return false;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
        if (v > INT_MAX)
            return false;
    }
    *out = (int)(neg ? -v : v);
    return true;
}

int docker_parse_event(const char *buf, size_t len, struct docker_event *out)
{
    json_t *root, *actor = NULL, *attrs = NULL, *v;
    int rc;

    memset(out, 0, sizeof *out);
    if ((rc = dj_load(buf, len, &root)) < 0)
        return rc;
    if (!json_is_object(root)) {
        rc = -EPROTO;
        goto done;
    }
    if ((rc = dj_get_object(root, "Actor", &actor)) < 0 ||
        (rc = dj_get_object(actor, "Attributes", &attrs)) < 0)
        goto done;

    /* Action (API >= 1.22) wins over the legacy status. */
    v = dj_get(root, "Action");
    if (!v)
        v = dj_get(root, "status");
    if (!v || !json_is_string(v)) {
        rc = -EPROTO;
        goto done;
    }
    if ((rc = dj_split_action(v, out)) < 0)
        goto done;

    if ((rc = dj_get_str(root, "Type", 0, 0, &out->type)) < 0 ||
        (rc = dj_get_str_opt(root, "id", 0, &out->id)) < 0 ||
        (rc = dj_get_str_opt(actor, "ID", 0, &out->id)) < 0 ||
        (rc = dj_get_str_opt(root, "from", 0, &out->image)) < 0 ||
        (rc = dj_get_str_opt(attrs, "image", 0, &out->image)) < 0 ||
        (rc = dj_get_str_opt(attrs, "name", 0, &out->name)) < 0 ||
        (rc = dj_get_str_opt(attrs, "oldName", 1, &out->old_name)) < 0 ||
        (rc = dj_default_empty(&out->detail)) < 0 || (rc = dj_default_empty(&out->id)) < 0 ||
        (rc = dj_default_empty(&out->image)) < 0 || (rc = dj_default_empty(&out->name)) < 0 ||
        (rc = dj_default_empty(&out->old_name)) < 0)
        goto done;

    if ((v = dj_get(root, "timeNano")) != NULL)
        rc = dj_number_to_ns(v, 1.0, &out->time_nano);
    else if ((v = dj_get(root, "time")) != NULL)
        rc = dj_number_to_ns(v, 1e9, &out->time_nano);
    if (rc < 0)
        goto done;

    if ((v = dj_get(attrs, "exitCode")) != NULL) {
        if (!json_is_string(v)) {
            rc = -EPROTO;
            goto done;
        }
        out->has_exit_code = dj_parse_int(json_string_value(v), json_string_length(v), &out->exit_code);
    }
    rc = 0;
done:
    json_decref(root);
    if (rc < 0)
        docker_event_free(out);
    return rc;
}

void docker_event_free(struct docker_event *ev)
{
    if (!ev)
        return;
    free(ev->type);
    free(ev->action);
    free(ev->detail);
    free(ev->id);
    free(ev->name);
    free(ev->image);
    free(ev->old_name);
    memset(ev, 0, sizeof *ev);
}

/* ---- version ------------------------------------------------------------ */

/* Copies a JSON string into dst[cap]; -ENOSPC (dst = "") when it does not fit. */
static int dj_copy_to(const json_t *v, char *dst, size_t cap)
{
    if (!dst)
        return 0;
    size_t n = v ? json_string_length(v) : 0;
    if (cap == 0)
        return -ENOSPC;
    if (n >= cap) {
        dst[0] = '\0';
        return -ENOSPC;
    }
    if (n)
        memcpy(dst, json_string_value(v), n);
    dst[n] = '\0';
    return 0;
}

int docker_parse_version(const char *buf, size_t len, char *api_version, size_t cap, char *version,
                         size_t cap2)
{
    json_t *root, *api, *ver;
    int rc;

    if (api_version && cap)
        api_version[0] = '\0';
    if (version && cap2)
        version[0] = '\0';
    if ((rc = dj_load(buf, len, &root)) < 0)
        return rc;
    rc = -EPROTO;
    if (!json_is_object(root))
        goto done;
    api = dj_get(root, "ApiVersion");
    ver = dj_get(root, "Version");
    if (!api || !json_is_string(api) || (ver && !json_is_string(ver)))
        goto done;
    if ((rc = dj_copy_to(api, api_version, cap)) < 0)
        goto done;
    rc = dj_copy_to(ver, version, cap2);
done:
    json_decref(root);
    return rc;
}

/* ---- RFC 3339 ----------------------------------------------------------- */

/* Reads exactly n decimal digits at s[*pos]. */
static bool dj_digits(const char *s, size_t len, size_t *pos, size_t n, int *out)
{
    int v = 0;
    if (len - *pos < n)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[*pos + i];
        if (c < '0' || c > '9')
            return false;
        v = v * 10 + (c - '0');
    }
    *pos += n;
    *out = v;
    return true;
}

static bool dj_expect(const char *s, size_t len, size_t *pos, char c)
{
    if (*pos >= len || s[*pos] != c)
        return false;
    (*pos)++;
    return true;
}

static int dj_days_in_month(int y, int m)
{
    static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar. */
static int64_t dj_days_from_civil(int y, int m, int d)
{
    /* Shift the year to start in March so the leap day is last. */
    int64_t yy = m <= 2 ? y - 1 : y;
    int64_t era = (yy >= 0 ? yy : yy - 399) / 400;
    int64_t yoe = yy - era * 400;
    int64_t mp = m > 2 ? m - 3 : m + 9;
    int64_t doy = (153 * mp + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int docker_time_parse(const char *s, size_t len, double *out)
{
    size_t pos = 0;
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0, oh = 0, om = 0;
    int64_t frac_ns = 0;

    if (!s || !dj_digits(s, len, &pos, 4, &y) || !dj_expect(s, len, &pos, '-') ||
        !dj_digits(s, len, &pos, 2, &mo) || !dj_expect(s, len, &pos, '-') ||
        !dj_digits(s, len, &pos, 2, &d))
        return -EINVAL;
    if (pos >= len || (s[pos] != 'T' && s[pos] != 't' && s[pos] != ' '))
        return -EINVAL;
    pos++;
    if (!dj_digits(s, len, &pos, 2, &h) || !dj_expect(s, len, &pos, ':') ||
        !dj_digits(s, len, &pos, 2, &mi) || !dj_expect(s, len, &pos, ':') ||
        !dj_digits(s, len, &pos, 2, &sec))
        return -EINVAL;
    if (pos < len && s[pos] == '.') {
        int ndig = 0;
        pos++;
        while (pos < len && s[pos] >= '0' && s[pos] <= '9') {
            if (ndig < 9) {
                frac_ns = frac_ns * 10 + (s[pos] - '0');
                ndig++;
            }
            pos++;
        }
        if (ndig == 0)
            return -EINVAL;
        for (int i = ndig; i < 9; i++)
            frac_ns *= 10;
    }
    if (pos >= len)
        return -EINVAL;
    if (s[pos] == 'Z' || s[pos] == 'z') {
        pos++;
    } else if (s[pos] == '+' || s[pos] == '-') {
        int sign = s[pos] == '-' ? -1 : 1;
        pos++;
        if (!dj_digits(s, len, &pos, 2, &oh) || !dj_expect(s, len, &pos, ':') ||
            !dj_digits(s, len, &pos, 2, &om) || oh > 23 || om > 59)
            return -EINVAL;
        oh *= sign;
        om *= sign;
    } else {
        return -EINVAL;
    }
    if (pos != len)
        return -EINVAL;
    if (mo < 1 || mo > 12 || d < 1 || d > dj_days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60)
        return -EINVAL;

    if (y == 1 && mo == 1 && d == 1 && h == 0 && mi == 0 && sec == 0 && frac_ns == 0 && oh == 0 &&
        om == 0) {
        *out = 0; /* Go's time.Time{}: "never" */
        return 0;
    }
    int64_t secs = dj_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - oh * 3600 - om * 60;
    *out = (double)secs + (double)frac_ns / 1e9;
    return 0;
}

/* ---- /events line splitter ---------------------------------------------- */

void docker_stream_init(struct docker_stream *s, size_t max_line)
{
    memset(s, 0, sizeof *s);
    s->max_line = max_line ? max_line : (size_t)1 << 20;
}

/* Makes room for `need` pending bytes (need <= max_line). */
static int dj_stream_reserve(struct docker_stream *s, size_t need)
{
    if (need <= s->cap)
        return 0;
    size_t cap = s->cap ? s->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (cap > s->max_line)
        cap = s->max_line > need ? s->max_line : need;
    char *p = realloc(s->buf, cap);
    if (!p)
        return -ENOMEM;
    s->buf = p;
    s->cap = cap;
    return 0;
}

int docker_stream_feed(struct docker_stream *s, const char *buf, size_t len, docker_line_cb cb,
                       void *arg)
{
    int ret = 0;
    size_t pos = 0;

    while (pos < len) {
        const char *start = buf + pos;
        const char *nl = memchr(start, '\n', len - pos);
        size_t seg = nl ? (size_t)(nl - start) : len - pos;

        if (s->discarding) {
            if (!nl)
                break;
            s->discarding = false;
            pos += seg + 1;
            continue;
        }
        if (s->len + seg > s->max_line) {
            /* Oversized: drop what is pending and skip to the next '\n'. */
            s->len = 0;
            s->dropped++;
            ret = -EMSGSIZE;
            if (!nl) {
                s->discarding = true;
                break;
            }
            pos += seg + 1;
            continue;
        }
        if (!nl) {
            /* Keep the partial line for the next feed. */
            if (dj_stream_reserve(s, s->len + seg) < 0) {
                s->len = 0;
                s->dropped++;
                s->discarding = true;
                return -ENOMEM;
            }
            memcpy(s->buf + s->len, start, seg);
            s->len += seg;
            break;
        }

        const char *line = start;
        size_t llen = seg;
        if (s->len) {
            if (dj_stream_reserve(s, s->len + seg) < 0) {
                s->len = 0;
                s->dropped++;
                ret = -ENOMEM;
                pos += seg + 1;
                continue;
            }
            memcpy(s->buf + s->len, start, seg);
            line = s->buf;
            llen = s->len + seg;
            s->len = 0;
        }
        pos += seg + 1;
        if (llen > 0 && line[llen - 1] == '\r')
            llen--;
        if (llen == 0)
            continue;
        s->lines++;
        int rc = cb(arg, line, llen);
        if (rc != 0)
            return rc;
    }
    return ret;
}

void docker_stream_reset(struct docker_stream *s)
{
    s->len = 0;
    s->discarding = false;
}

void docker_stream_free(struct docker_stream *s)
{
    free(s->buf);
    s->buf = NULL;
    s->len = s->cap = 0;
    s->discarding = false;
}
