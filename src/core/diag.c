/*
 * diag: see diag.h.
 */
#include "core/diag.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/http_client.h"
#include "core/log.h"

struct diag_provider {
    const char *key;             /* member name in the dump (not owned) */
    diag_provider_fn fn;         /* builds the member */
    void *arg;                   /* passed to fn */
};

struct diag {
    uv_loop_t *loop;             /* walked for the "loop" member */
    const char *daemon;          /* "agent", "hub", ... (not owned) */
    struct diag_provider *prov;  /* registered providers, in order */
    size_t nprov;
    uint64_t started_ms;         /* uv_now at diag_new, for uptime */
};

struct diag *diag_new(uv_loop_t *loop, const char *daemon)
{
    struct diag *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->loop = loop;
    d->daemon = daemon;
    d->started_ms = uv_now(loop);
    return d;
}

void diag_free(struct diag *d)
{
    if (!d)
        return;
    free(d->prov);
    free(d);
}

int diag_register(struct diag *d, const char *key, diag_provider_fn fn, void *arg)
{
    struct diag_provider *p = realloc(d->prov, (d->nprov + 1) * sizeof *p);
    if (!p)
        return -ENOMEM;
    d->prov = p;
    d->prov[d->nprov++] = (struct diag_provider){ key, fn, arg };
    return 0;
}

static void walk_cb(uv_handle_t *h, void *arg)
{
    json_t *arr = arg;
    json_t *o = json_object();
    json_object_set_new(o, "type", json_string(uv_handle_type_name(uv_handle_get_type(h))));
    json_object_set_new(o, "active", json_boolean(uv_is_active(h)));
    json_object_set_new(o, "closing", json_boolean(uv_is_closing(h)));
    if (uv_handle_get_type(h) == UV_TIMER) {
        uv_timer_t *t = (uv_timer_t *)h;
        json_object_set_new(o, "due_in_ms", json_integer((json_int_t)uv_timer_get_due_in(t)));
        json_object_set_new(o, "repeat_ms", json_integer((json_int_t)uv_timer_get_repeat(t)));
    } else if (uv_handle_get_type(h) == UV_TCP || uv_handle_get_type(h) == UV_NAMED_PIPE) {
        uv_os_fd_t fd;
        if (uv_fileno(h, &fd) == 0)
            json_object_set_new(o, "fd", json_integer(fd));
    }
    json_array_append_new(arr, o);
}

json_t *diag_requests(json_t *root)
{
    json_t *arr = json_object_get(root, "requests");
    if (!arr) {
        arr = json_array();
        json_object_set_new(root, "requests", arr);
    }
    return arr;
}

struct req_visit {
    json_t *arr;                 /* where entries go */
    const char *client;          /* the client's role, e.g. "docker-api" */
};

static void visit_req(void *arg, const char *state, uint64_t age_ms, const char *method, const char *path,
                      int64_t deadline_left_ms)
{
    struct req_visit *v = arg;
    if (!method)
        return; /* an idle connection */
    json_array_append_new(v->arr, json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "client", v->client, "method",
                                            method, "path", path, "state", state, "age_ms", (json_int_t)age_ms,
                                            "deadline_left_ms", (json_int_t)deadline_left_ms));
}

void diag_client_requests(json_t *arr, const char *client, const struct http_client *c)
{
    struct req_visit v = { arr, client };
    if (c)
        http_client_visit(c, visit_req, &v);
}

json_t *diag_dump(struct diag *d)
{
    json_t *root = json_object();
    if (!root)
        return NULL;
    json_object_set_new(root, "daemon", json_string(d->daemon));
    json_object_set_new(root, "version", json_string(TETHER_VERSION));
    json_object_set_new(root, "pid", json_integer(getpid()));
    json_object_set_new(root, "time", json_integer((json_int_t)time(NULL)));
    json_object_set_new(root, "uptime_ms", json_integer((json_int_t)(uv_now(d->loop) - d->started_ms)));
    for (size_t i = 0; i < d->nprov; i++)
        d->prov[i].fn(root, d->prov[i].key, d->prov[i].arg);
    json_t *handles = json_array();
    uv_walk(d->loop, walk_cb, handles);
    json_object_set_new(root, "loop_handles", handles);
    return root;
}

void diag_log(struct diag *d)
{
    json_t *root = diag_dump(d);
    if (!root) {
        log_error("state dump: out of memory");
        return;
    }
    char *text = json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!text) {
        log_error("state dump: out of memory");
        return;
    }
    log_info("state dump begins (SIGUSR1)");
    log_write_text(LOG_INFO, __FILE__, __LINE__, "state| ", text, strlen(text));
    log_info("state dump ends");
    free(text);
}
