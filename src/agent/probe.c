/*
 * probe: see probe.h. State: idle -> connecting (pipe + timer active) -> idle.
 * The pipe and the timer are closed after every probe; the struct is freed
 * when the last handle close callback runs after probe_close().
 */
#include "agent/probe.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PROBE_MAX_PATHS 4

struct probe {
    uv_loop_t *loop;
    char paths[PROBE_MAX_PATHS][108]; /* candidate socket paths */
    unsigned npaths;
    const char *in_use;               /* the path of the last probe */
    probe_cb cb;
    void *arg;
    uv_pipe_t *pipe;                  /* non-NULL while a probe is in flight */
    uv_connect_t req;                 /* the connect request of the pipe */
    uv_timer_t timer;                 /* deadline of the probe in flight */
    uint64_t started;                 /* uv_hrtime at start */
    unsigned handles;                 /* open handles (timer + pipe), for the final free */
    int closing;                      /* probe_close called: no callbacks */
    int done;                         /* the probe in flight has been reported */
};

static void handle_closed(uv_handle_t *h)
{
    struct probe *p = h->data;
    if (h != (uv_handle_t *)&p->timer) /* the per-probe pipe */
        free(h);
    if (--p->handles == 0 && p->closing)
        free(p);
}

static void finish(struct probe *p, int status)
{
    if (p->done)
        return;
    p->done = 1;
    uv_timer_stop(&p->timer);
    double secs = (double)(uv_hrtime() - p->started) / 1e9;
    if (p->pipe && !uv_is_closing((uv_handle_t *)p->pipe))
        uv_close((uv_handle_t *)p->pipe, handle_closed);
    p->pipe = NULL;
    if (!p->closing)
        p->cb(status, secs, p->arg);
}

static void on_connect(uv_connect_t *req, int status)
{
    struct probe *p = req->data;
    if (status == UV_ECANCELED)
        return;
    finish(p, status);
}

static void on_timeout(uv_timer_t *t)
{
    finish(t->data, -ETIMEDOUT);
}

struct probe *probe_new(uv_loop_t *loop, const char *const *paths, unsigned npaths, probe_cb cb,
                        void *arg)
{
    struct probe *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->loop = loop;
    for (unsigned i = 0; i < npaths && i < PROBE_MAX_PATHS; i++) {
        snprintf(p->paths[i], sizeof p->paths[i], "%s", paths[i]);
        p->npaths++;
    }
    p->in_use = "";
    p->cb = cb;
    p->arg = arg;
    uv_timer_init(loop, &p->timer);
    p->timer.data = p;
    p->handles = 1;
    p->done = 1;
    return p;
}

int probe_start(struct probe *p, uint64_t timeout_ms)
{
    if (!p->done)
        return -EBUSY;
    const char *path = p->npaths ? p->paths[0] : "";
    for (unsigned i = 0; i < p->npaths; i++)
        if (access(p->paths[i], F_OK) == 0) {
            path = p->paths[i];
            break;
        }
    p->in_use = path;
    p->pipe = malloc(sizeof *p->pipe);
    if (!p->pipe)
        return -ENOMEM;
    uv_pipe_init(p->loop, p->pipe, 0);
    p->pipe->data = p;
    p->handles++;
    p->req.data = p;
    p->done = 0;
    p->started = uv_hrtime();
    uv_timer_start(&p->timer, on_timeout, timeout_ms, 0);
    uv_pipe_connect(&p->req, p->pipe, path, on_connect);
    return 0;
}

const char *probe_path(const struct probe *p) { return p->in_use; }

void probe_close(struct probe *p)
{
    p->closing = 1;
    p->done = 1;
    uv_timer_stop(&p->timer);
    if (p->pipe && !uv_is_closing((uv_handle_t *)p->pipe))
        uv_close((uv_handle_t *)p->pipe, handle_closed);
    p->pipe = NULL;
    uv_close((uv_handle_t *)&p->timer, handle_closed);
}
