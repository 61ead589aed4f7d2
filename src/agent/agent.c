/*
 * agent: options, start-up order, the collection timer, HTTP routes, signals.
 *
 * Start-up never waits on a dependency: the HTTP server is listening before
 * anything talks to dockerd, the first cgroup scan (kernel files only) runs
 * before the loop starts, and dockerd is reached asynchronously. Each
 * interval (`tick`):
 *
 *   ping dockerd, probe containerd          (health; deadline < interval)
 *   every --rescan ticks: scan cgroup tree  (find/remove containers without dockerd)
 *   retry inspects that failed              (backoff per container)
 *   read every container's kernel files     -> new snapshot -> publish
 *   falcon_push(snapshot)                   (queued; never waits)
 *   self metrics (threads, fds, RSS, lag)
 *
 * Ownership: the agent owns the loop's handles it creates, the registry, the
 * container table (which owns readers and metas), the current snapshot (one
 * reference) and the docker/falcon/probe modules. Everything runs on the loop
 * thread.
 */
#include "agent/agent.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "agent/cgroup.h"
#include "agent/ctable.h"
#include "agent/docker.h"
#include "agent/falcon.h"
#include "agent/probe.h"
#include "agent/prom.h"
#include "agent/sample.h"
#include "core/diag.h"
#include "core/http_server.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/sbuf.h"
#include "core/selfstat.h"

#define MAX_LABELS 32
#define LAG_PERIOD_MS 250

struct agent_opts {
    const char *listen;            /* --listen */
    unsigned interval_s;           /* --interval */
    const char *docker_url;        /* --docker */
    const char *containerd;        /* --containerd (NULL: the usual places) */
    const char *cgroup_root;       /* --cgroup-root */
    const char *proc_root;         /* --proc-root */
    const char *falcon_url;        /* --falcon-url */
    const char *falcon_endpoint;   /* --falcon-endpoint (default: host name) */
    const char *labels[MAX_LABELS];/* --label KEY: exported as container_label_KEY */
    unsigned nlabels;
    int percpu;                    /* --percpu */
    unsigned rescan;               /* --rescan N intervals */
};

struct agent {
    uv_loop_t *loop;
    struct agent_opts o;
    char hostname[256];            /* default falcon endpoint */

    struct cg_layout layout;       /* detected hierarchy */
    int have_layout;               /* detection succeeded */
    struct cg_stats cgst;          /* read/parse errors (counters) */
    long fd_budget;                /* fds readers may keep open (RLIMIT_NOFILE minus a reserve) */
    long reader_fds;               /* fds kept open by readers now */
    uint64_t transient_reads;      /* reads done by open-read-close because the budget was spent */
    struct ctable *ct;             /* known containers */
    uint64_t scan_gen;             /* generation of the last cgroup scan */
    uint64_t vanished;             /* containers dropped because their cgroup went away */

    struct docker *docker;
    struct probe *containerd;
    struct falcon *falcon;
    struct http_server *srv;
    struct metrics *reg;
    struct diag *diag;

    struct snapshot *snap;         /* latest published snapshot (one reference) */
    uint64_t ticks;                /* collections done */

    uv_timer_t tick;               /* collection every interval */
    uv_timer_t lag;                /* event-loop lag probe */
    uint64_t lag_expected;         /* uv_hrtime when the lag timer should fire */
    double lag_max;                /* max lag since the last tick (seconds) */
    uv_signal_t sig_usr1, sig_term, sig_int;
    int stopping;

    /* self metrics (children owned by the registry) */
    struct mchild *m_threads, *m_fds, *m_rss, *m_cpu, *m_lag, *m_coll_dur, *m_collections;
    struct mchild *m_containers, *m_vanished, *m_read_err, *m_parse_err, *m_containerd_up;
    struct mchild *m_containerd_secs, *m_scrapes, *m_http_reqs, *m_http_errs, *m_http_rejected;
    struct mchild *m_falcon_ok, *m_falcon_err, *m_falcon_dropped, *m_falcon_queue, *m_falcon_retries;
    struct mchild *m_inspect_fail;
};

/* ---- options ---------------------------------------------------------------- */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: tether agent [options]\n"
            "\n"
            "Per-host container monitor: reads cgroup and /proc files every interval, follows\n"
            "dockerd's event stream, serves Prometheus metrics with cAdvisor's names.\n"
            "\n"
            "  --listen ADDR          HTTP listen address (default :9338; HOST:PORT, :PORT)\n"
            "  --interval SECONDS     collection interval, 1..3600 (default 10)\n"
            "  --docker URL           dockerd address (default unix:///var/run/docker.sock)\n"
            "  --containerd PATH      containerd socket to probe (default /run/containerd/containerd.sock,\n"
            "                         then /run/docker/containerd/containerd.sock)\n"
            "  --cgroup-root DIR      cgroup file system root (default /sys/fs/cgroup)\n"
            "  --proc-root DIR        proc file system root (default /proc)\n"
            "  --falcon-url URL       push to an open-falcon agent, e.g. http://127.0.0.1:1988/v1/push\n"
            "  --falcon-endpoint NAME endpoint name in pushes (default: host name)\n"
            "  --label KEY            export container label KEY as container_label_KEY (repeatable)\n"
            "  --percpu               per-CPU container_cpu_usage_seconds_total (cpu00, cpu01, ...)\n"
            "  --rescan N             rescan the cgroup tree every N intervals (default 3)\n"
            "  --log-level LEVEL      error, warn, info (default) or debug\n"
            "  -h, --help             this text\n"
            "\n"
            "Endpoints: /metrics, /debug/state (JSON state dump), /healthz. SIGUSR1 logs the state dump.\n");
}

static int parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -EINVAL;
    *out = (unsigned)v;
    return 0;
}

/* 0 ok, 1 help printed, -1 error printed. */
static int parse_options(int argc, char **argv, struct agent_opts *o)
{
    enum { O_LISTEN = 1, O_INTERVAL, O_DOCKER, O_CONTAINERD, O_CGROOT, O_PROCROOT, O_FURL, O_FEP,
           O_LABEL, O_PERCPU, O_RESCAN, O_LOGLEVEL };
    static const struct option longopts[] = {
        { "listen", required_argument, NULL, O_LISTEN },
        { "interval", required_argument, NULL, O_INTERVAL },
        { "docker", required_argument, NULL, O_DOCKER },
        { "containerd", required_argument, NULL, O_CONTAINERD },
        { "cgroup-root", required_argument, NULL, O_CGROOT },
        { "proc-root", required_argument, NULL, O_PROCROOT },
        { "falcon-url", required_argument, NULL, O_FURL },
        { "falcon-endpoint", required_argument, NULL, O_FEP },
        { "label", required_argument, NULL, O_LABEL },
        { "percpu", no_argument, NULL, O_PERCPU },
        { "rescan", required_argument, NULL, O_RESCAN },
        { "log-level", required_argument, NULL, O_LOGLEVEL },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    *o = (struct agent_opts){
        .listen = ":9338", .interval_s = 10, .docker_url = "unix:///var/run/docker.sock",
        .cgroup_root = "/sys/fs/cgroup", .proc_root = "/proc", .rescan = 3,
    };
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case O_LISTEN: o->listen = optarg; break;
        case O_INTERVAL:
            if (parse_uint(optarg, 1, 3600, &o->interval_s) < 0) {
                fprintf(stderr, "tether agent: --interval must be 1..3600 seconds, not '%s'\n", optarg);
                return -1;
            }
            break;
        case O_DOCKER: o->docker_url = optarg; break;
        case O_CONTAINERD: o->containerd = optarg; break;
        case O_CGROOT: o->cgroup_root = optarg; break;
        case O_PROCROOT: o->proc_root = optarg; break;
        case O_FURL: o->falcon_url = optarg; break;
        case O_FEP: o->falcon_endpoint = optarg; break;
        case O_LABEL:
            if (o->nlabels == MAX_LABELS) {
                fprintf(stderr, "tether agent: at most %d --label options\n", MAX_LABELS);
                return -1;
            }
            o->labels[o->nlabels++] = optarg;
            break;
        case O_PERCPU: o->percpu = 1; break;
        case O_RESCAN:
            if (parse_uint(optarg, 1, 1000, &o->rescan) < 0) {
                fprintf(stderr, "tether agent: --rescan must be 1..1000 intervals, not '%s'\n", optarg);
                return -1;
            }
            break;
        case O_LOGLEVEL: {
            int l = log_level_parse(optarg);
            if (l < 0) {
                fprintf(stderr, "tether agent: unknown log level '%s'\n", optarg);
                return -1;
            }
            log_init((enum log_level)l);
            break;
        }
        case 'h': usage(stdout); return 1;
        default: usage(stderr); return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "tether agent: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    return 0;
}

/* ---- container table maintenance ------------------------------------------- */

static int label_wanted(const struct agent *a, const char *key)
{
    for (unsigned i = 0; i < a->o.nlabels; i++)
        if (strcmp(a->o.labels[i], key) == 0)
            return 1;
    return 0;
}

/* Builds labels for a container from what dockerd said (list or inspect). */
static struct cmeta *meta_from(const struct agent *a, const struct container *c, const char *name,
                               const char *image, double start, size_t nl, char *const *keys,
                               char *const *values)
{
    struct cmeta *m = cmeta_new(c->id, c->cgroup, name, image, start);
    if (!m)
        return NULL;
    for (size_t i = 0; i < nl; i++)
        if (label_wanted(a, keys[i]) && cmeta_add_label(m, keys[i], values[i]) < 0) {
            cmeta_unref(m);
            return NULL;
        }
    return m;
}

static void container_open(struct agent *a, struct container *c)
{
    if (c->reader || !a->have_layout)
        return;
    if (!c->cgroup[0]) {
        char path[256];
        if (cg_path_for_id(&a->layout, c->id, path, sizeof path) < 0)
            return; /* not there yet: retried every tick */
        snprintf(c->cgroup, sizeof c->cgroup, "%s", path);
        struct cmeta *m = cmeta_new(c->id, c->cgroup, c->meta->name, c->meta->image, c->meta->start_time);
        if (m) {
            for (size_t i = 0; i < c->meta->nlabels; i++)
                cmeta_add_label(m, c->meta->label_keys[i], c->meta->label_values[i]);
            ctable_set_meta(c, m);
        }
    }
    if (a->reader_fds + 24 > a->fd_budget)
        return; /* over budget: measured with a transient reader in collect() */
    int err = 0;
    c->reader = cg_reader_open(&a->layout, c->cgroup, &err);
    if (c->reader)
        a->reader_fds += cg_reader_nfds(c->reader);
    else if (err != -ENOENT)
        log_warn("cannot open cgroup files of %.12s (%s): %s", c->id, c->cgroup, strerror(-err));
}

static struct container *container_found(struct agent *a, const char *id, const char *cgroup,
                                         const char *how)
{
    struct container *c = ctable_get(a->ct, id);
    if (c)
        return c;
    c = ctable_add(a->ct, id, cgroup, uv_now(a->loop), how);
    if (!c) {
        log_error("out of memory adding container %.12s", id);
        return NULL;
    }
    log_info("container %.12s found (%s)%s%s", id, how, cgroup && cgroup[0] ? " at " : "",
             cgroup ? cgroup : "");
    container_open(a, c);
    if (a->docker && docker_get_state(a->docker) != DOCKER_HUNG && docker_get_state(a->docker) != DOCKER_DOWN) {
        if (docker_inspect(a->docker, id) == 0)
            c->inspect = INSPECT_PENDING;
    }
    return c;
}

static void container_drop(struct agent *a, struct container *c, const char *why)
{
    log_info("container %.12s (%s) removed: %s", c->id, c->meta->name[0] ? c->meta->name : "unnamed", why);
    ctable_remove(a->ct, c);
}

static void scan_found(void *arg, const char *id, const char *cgroup_path)
{
    struct agent *a = arg;
    struct container *c = container_found(a, id, cgroup_path, "scan");
    if (c)
        c->scan_gen = a->scan_gen;
}

static void cgroup_rescan(struct agent *a)
{
    if (!a->have_layout)
        return;
    a->scan_gen++;
    int n = cg_scan(&a->layout, scan_found, a);
    if (n < 0) {
        log_warn("cgroup scan failed: %s", strerror(-n));
        return;
    }
    /* Containers whose cgroup is gone: nothing more to measure. Those not yet
     * having a cgroup (a start event racing runc) get a grace period. */
    uint64_t now = uv_now(a->loop);
    for (size_t i = 0; i < ctable_count(a->ct);) {
        struct container *c = ctable_at(a->ct, i);
        if (c->scan_gen != a->scan_gen && (c->reader || now - c->added_ms > 30000)) {
            a->vanished++;
            container_drop(a, c, "cgroup no longer present");
            continue;
        }
        i++;
    }
}

static void retry_inspects(struct agent *a)
{
    if (!a->docker || docker_get_state(a->docker) != DOCKER_UP)
        return;
    uint64_t now = uv_now(a->loop);
    for (size_t i = 0; i < ctable_count(a->ct); i++) {
        struct container *c = ctable_at(a->ct, i);
        if (c->inspect == INSPECT_NONE && c->next_inspect_ms <= now && docker_inspect(a->docker, c->id) == 0)
            c->inspect = INSPECT_PENDING;
    }
}

/* ---- docker callbacks ---------------------------------------------------------- */

static void on_listed(void *arg, const struct docker_list *list)
{
    struct agent *a = arg;
    for (size_t i = 0; i < list->n; i++) {
        const struct docker_container *dc = &list->c[i];
        if (strcmp(dc->state, "running") != 0 && dc->state[0])
            continue;
        struct container *c = container_found(a, dc->id, NULL, "list");
        if (c && c->inspect != INSPECT_DONE) {
            struct cmeta *m = meta_from(a, c, dc->name, dc->image, c->meta->start_time, dc->nlabels,
                                        dc->label_keys, dc->label_values);
            if (m)
                ctable_set_meta(c, m);
        }
    }
    log_info("dockerd lists %zu containers; %zu known", list->n, ctable_count(a->ct));
}

static void on_inspected(void *arg, const char *id, int err, const struct docker_inspect *ins)
{
    struct agent *a = arg;
    struct container *c = ctable_get(a->ct, id);
    if (!c)
        return; /* removed meanwhile */
    if (err == 0) {
        struct cmeta *m = meta_from(a, c, ins->name, ins->image, ins->started_at, ins->nlabels,
                                    ins->label_keys, ins->label_values);
        if (m) {
            ctable_set_meta(c, m);
            c->inspect = INSPECT_DONE;
            c->inspect_failures = 0;
            return;
        }
        err = -ENOMEM;
    }
    if (err == -ENOENT) {
        /* dockerd does not know it: keep measuring the cgroup, labelled by id. */
        c->inspect = INSPECT_DONE;
        return;
    }
    mchild_inc(a->m_inspect_fail);
    c->inspect = INSPECT_NONE;
    c->inspect_failures++;
    unsigned shift = c->inspect_failures < 6 ? c->inspect_failures : 6;
    c->next_inspect_ms = uv_now(a->loop) + (1000u << shift);
    log_warn("inspect of %.12s failed (%s); retry in %u s", id, strerror(-err), 1u << shift);
}

static void on_event(void *arg, const struct docker_event *ev)
{
    struct agent *a = arg;
    if (!ev->id[0])
        return;
    struct container *c = ctable_get(a->ct, ev->id);
    if (strcmp(ev->action, "start") == 0 || strcmp(ev->action, "unpause") == 0) {
        c = container_found(a, ev->id, NULL, "event");
    } else if (strcmp(ev->action, "die") == 0 || strcmp(ev->action, "destroy") == 0) {
        if (c)
            container_drop(a, c, ev->action);
    } else if (strcmp(ev->action, "rename") == 0) {
        if (c) {
            struct cmeta *m = cmeta_new(c->id, c->cgroup, ev->name, c->meta->image, c->meta->start_time);
            if (m) {
                for (size_t i = 0; i < c->meta->nlabels; i++)
                    cmeta_add_label(m, c->meta->label_keys[i], c->meta->label_values[i]);
                ctable_set_meta(c, m);
            }
        }
    } else if (strcmp(ev->action, "oom") == 0) {
        log_warn("container %.12s (%s) hit its memory limit (oom event)", ev->id, ev->name);
    }
}

static void on_docker_state(void *arg, enum docker_state from, enum docker_state to)
{
    struct agent *a = arg;
    if (to == DOCKER_UP)
        retry_inspects(a);
}

/* ---- collection ------------------------------------------------------------------ */

static void collect(struct agent *a)
{
    uint64_t t0 = uv_hrtime();
    struct snapshot *s = snapshot_new(ctable_count(a->ct));
    if (!s) {
        log_error("out of memory for a snapshot; collection skipped");
        return;
    }
    s->seq = a->ticks + 1;
    s->timestamp = (double)time(NULL);
    for (size_t i = 0; i < ctable_count(a->ct);) {
        struct container *c = ctable_at(a->ct, i);
        container_open(a, c);
        /* Over the fd budget a container is read with a reader opened for
         * this cycle only: slower, but no container goes unmeasured. */
        struct cg_reader *rd = c->reader;
        if (!rd && c->cgroup[0] && a->have_layout) {
            int err = 0;
            rd = cg_reader_open(&a->layout, c->cgroup, &err);
            if (rd)
                a->transient_reads++;
        }
        if (!rd) {
            i++;
            continue;
        }
        struct csample *cs = snapshot_add(s);
        if (!cs) {
            if (rd != c->reader)
                cg_reader_close(rd);
            break;
        }
        cs->meta = cmeta_ref(c->meta);
        int r = cg_reader_read(rd, cs, &a->cgst);
        if (rd != c->reader)
            cg_reader_close(rd);
        if (r == -ENOENT || r == -ESRCH) {
            csample_clear(cs);
            s->n--;
            a->vanished++;
            container_drop(a, c, "vanished while being read");
            continue;
        }
        if (r < 0) {
            csample_clear(cs);
            s->n--;
        }
        i++;
    }
    /* Readers open and close their net/dev fd as pids come and go: recount. */
    a->reader_fds = 0;
    for (size_t i = 0; i < ctable_count(a->ct); i++) {
        struct container *c = ctable_at(a->ct, i);
        if (c->reader)
            a->reader_fds += cg_reader_nfds(c->reader);
    }
    s->duration = (double)(uv_hrtime() - t0) / 1e9;
    snapshot_unref(a->snap);
    a->snap = s;
    a->ticks++;
    mchild_observe(a->m_coll_dur, s->duration);
    mchild_inc(a->m_collections);
    if (a->falcon)
        falcon_push(a->falcon, s);
}

static void update_self_metrics(struct agent *a)
{
    struct selfstat st;
    /* Listing thousands of fds is the costliest part of this: every 10th tick. */
    int count_fds = a->ticks % 10 == 1;
    if (selfstat_read(&st, count_fds) == 0) {
        mchild_set(a->m_threads, st.threads);
        if (count_fds)
            mchild_set(a->m_fds, st.open_fds);
        mchild_set(a->m_rss, (double)st.rss_bytes);
        mchild_set(a->m_cpu, st.cpu_seconds);
    }
    mchild_set(a->m_lag, a->lag_max);
    a->lag_max = 0;
    mchild_set(a->m_containers, (double)ctable_count(a->ct));
    mchild_set(a->m_vanished, (double)a->vanished);
    mchild_set(a->m_read_err, (double)a->cgst.read_errors);
    mchild_set(a->m_parse_err, (double)a->cgst.parse_errors);
    if (a->falcon) {
        struct falcon_stats fs;
        falcon_stats(a->falcon, &fs);
        mchild_set(a->m_falcon_ok, (double)fs.pushes_ok);
        mchild_set(a->m_falcon_err, (double)fs.pushes_failed);
        mchild_set(a->m_falcon_dropped, (double)fs.dropped);
        mchild_set(a->m_falcon_queue, (double)fs.queue_len);
        mchild_set(a->m_falcon_retries, (double)fs.retries);
    }
    struct http_server_info hi;
    http_server_info(a->srv, &hi);
    mchild_set(a->m_http_reqs, (double)hi.requests_total);
    mchild_set(a->m_http_errs, (double)hi.errors_total);
    mchild_set(a->m_http_rejected, (double)hi.rejected_total);
}

static void on_containerd(int status, double secs, void *arg)
{
    struct agent *a = arg;
    double up = status == 0 ? 1 : 0;
    if (mchild_value(a->m_containerd_up) != up)
        log_info("containerd at %s is %s%s%s", probe_path(a->containerd), status == 0 ? "up" : "down",
                 status ? ": " : "", status ? strerror(-status) : "");
    mchild_set(a->m_containerd_up, up);
    mchild_set(a->m_containerd_secs, secs);
}

static void tick_cb(uv_timer_t *t)
{
    struct agent *a = t->data;
    uint64_t deadline = a->o.interval_s * 800u; /* 0.8 x interval ... */
    if (deadline > 2000)
        deadline = 2000;                         /* ... at most 2 s */
    if (a->docker)
        docker_ping(a->docker, deadline);
    if (a->containerd)
        probe_start(a->containerd, deadline);
    if (a->ticks % a->o.rescan == 0)
        cgroup_rescan(a);
    retry_inspects(a);
    collect(a);
    update_self_metrics(a);
}

static void lag_cb(uv_timer_t *t)
{
    struct agent *a = t->data;
    uint64_t now = uv_hrtime();
    if (a->lag_expected && now > a->lag_expected) {
        double lag = (double)(now - a->lag_expected) / 1e9;
        if (lag > a->lag_max)
            a->lag_max = lag;
    }
    a->lag_expected = now + (uint64_t)LAG_PERIOD_MS * 1000000u;
}

/* ---- HTTP ---------------------------------------------------------------------- */

static void reply_json(struct http_sreq *req, int status, json_t *o)
{
    char *text = json_dumps(o, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!text) {
        http_reply(req, 500, "text/plain", "out of memory\n", 14);
        return;
    }
    size_t n = strlen(text);
    text[n] = '\n';
    http_reply(req, status, "application/json", text, n + 1);
    free(text);
}

static void serve_metrics(struct agent *a, struct http_sreq *req)
{
    struct sbuf tail;
    sbuf_init(&tail);
    mchild_inc(a->m_scrapes);
    if (metrics_render(a->reg, &tail) < 0) {
        sbuf_free(&tail);
        http_reply(req, 500, "text/plain", "out of memory\n", 14);
        return;
    }
    if (!a->snap)
        a->snap = snapshot_new(0);
    struct prom_opts po = { .percpu = a->o.percpu != 0 };
    struct prom_cursor *cur = a->snap ? prom_cursor_new(a->snap, &po, tail.data, tail.len) : NULL;
    sbuf_free(&tail);
    if (!cur) {
        http_reply(req, 500, "text/plain", "out of memory\n", 14);
        return;
    }
    http_reply_stream(req, 200, "text/plain; version=0.0.4; charset=utf-8", prom_cursor_fill, prom_cursor_free,
                      cur);
}

static void handle(struct http_sreq *req, void *data)
{
    struct agent *a = data;
    const char *m = http_sreq_method(req);
    const char *path = http_sreq_path(req);
    if (strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0) {
        http_reply(req, 405, "text/plain", "method not allowed\n", 19);
        return;
    }
    if (strcmp(path, "/metrics") == 0) {
        serve_metrics(a, req);
    } else if (strcmp(path, "/debug/state") == 0) {
        json_t *d = diag_dump(a->diag);
        if (d)
            reply_json(req, 200, d);
        else
            http_reply(req, 500, "text/plain", "out of memory\n", 14);
    } else if (strcmp(path, "/healthz") == 0) {
        char body[128];
        int n = snprintf(body, sizeof body, "ok\ndocker %s\n",
                         a->docker ? docker_state_name(docker_get_state(a->docker)) : "disabled");
        http_reply(req, 200, "text/plain", body, (size_t)n);
    } else if (strcmp(path, "/") == 0) {
        static const char idx[] = "tether agent\n/metrics\n/debug/state\n/healthz\n";
        http_reply(req, 200, "text/plain", idx, sizeof idx - 1);
    } else {
        http_reply(req, 404, "text/plain", "not found\n", 10);
    }
}

/* ---- diagnostics -------------------------------------------------------------------- */

static void diag_agent(json_t *root, const char *key, void *arg)
{
    struct agent *a = arg;
    json_t *o = json_object();
    json_object_set_new(o, "interval_s", json_integer(a->o.interval_s));
    json_object_set_new(o, "collections", json_integer((json_int_t)a->ticks));
    json_object_set_new(o, "last_collection_seconds", json_real(a->snap ? a->snap->duration : 0));
    json_object_set_new(o, "cgroup_layout", json_boolean(a->have_layout));
    json_object_set_new(o, "cgroup_read_errors", json_integer((json_int_t)a->cgst.read_errors));
    json_object_set_new(o, "cgroup_parse_errors", json_integer((json_int_t)a->cgst.parse_errors));
    json_object_set_new(o, "vanished", json_integer((json_int_t)a->vanished));
    json_object_set_new(o, "reader_fds", json_integer(a->reader_fds));
    json_object_set_new(o, "reader_fd_budget", json_integer(a->fd_budget));
    json_object_set_new(o, "transient_reads", json_integer((json_int_t)a->transient_reads));
    json_object_set_new(o, "next_collection_in_ms", json_integer((json_int_t)uv_timer_get_due_in(&a->tick)));
    json_object_set_new(root, key, o);
}

static void diag_requests_provider(json_t *root, const char *key, void *arg)
{
    diag_requests(root); /* filled by the docker and falcon providers */
}

static void diag_containers(json_t *root, const char *key, void *arg)
{
    struct agent *a = arg;
    static const char *const inspect_names[] = { "none", "pending", "done" };
    json_t *arr = json_array();
    uint64_t now = uv_now(a->loop);
    for (size_t i = 0; i < ctable_count(a->ct); i++) {
        struct container *c = ctable_at(a->ct, i);
        json_array_append_new(
            arr, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:i}", "id", c->id, "name", c->meta->name,
                           "image", c->meta->image, "cgroup", c->cgroup, "found_by", c->found_by, "inspect",
                           inspect_names[c->inspect], "age_ms", (json_int_t)(now - c->added_ms), "open_fds",
                           c->reader ? cg_reader_nfds(c->reader) : 0));
    }
    json_object_set_new(root, key, arr);
}

static void diag_falcon(json_t *root, const char *key, void *arg)
{
    struct agent *a = arg;
    if (!a->falcon)
        return;
    diag_client_requests(diag_requests(root), "falcon", falcon_client(a->falcon));
    struct falcon_stats fs;
    falcon_stats(a->falcon, &fs);
    json_object_set_new(root, key,
                        json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:i}", "url", a->o.falcon_url, "pushes_ok",
                                  (json_int_t)fs.pushes_ok, "pushes_failed", (json_int_t)fs.pushes_failed,
                                  "retries", (json_int_t)fs.retries, "dropped", (json_int_t)fs.dropped,
                                  "queue_len", (json_int_t)fs.queue_len, "last_error", (int)fs.last_error));
}

/* ---- signals and life cycle ---------------------------------------------------------- */

static void on_usr1(uv_signal_t *h, int sig) { diag_log(((struct agent *)h->data)->diag); }

static void close_walk(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void agent_stop(struct agent *a)
{
    if (a->stopping)
        return;
    a->stopping = 1;
    log_info("stopping");
    uv_timer_stop(&a->tick);
    uv_timer_stop(&a->lag);
    if (a->srv)
        http_server_close(a->srv);
    a->srv = NULL;
    if (a->docker)
        docker_close(a->docker);
    a->docker = NULL;
    if (a->containerd)
        probe_close(a->containerd);
    a->containerd = NULL;
    if (a->falcon)
        falcon_close(a->falcon);
    a->falcon = NULL;
    uv_close((uv_handle_t *)&a->tick, NULL);
    uv_close((uv_handle_t *)&a->lag, NULL);
    uv_close((uv_handle_t *)&a->sig_usr1, NULL);
    uv_close((uv_handle_t *)&a->sig_term, NULL);
    uv_close((uv_handle_t *)&a->sig_int, NULL);
}

static void on_term(uv_signal_t *h, int sig)
{
    log_info("signal %d received", sig);
    agent_stop(h->data);
}

static void register_self_metrics(struct agent *a)
{
    static const double dur_buckets[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1 };
    struct metrics *r = a->reg;
    mchild_set(mfamily_child(metrics_family(r, "tether_build_info", "tether version.", METRIC_GAUGE,
                                            (const char *const[]){ "version", "daemon", NULL }, NULL, 0),
                             (const char *const[]){ TETHER_VERSION, "agent" }),
               1);
    a->m_threads = metrics_gauge(r, "tether_threads", "Threads of the tether process.");
    a->m_fds = metrics_gauge(r, "tether_open_fds", "Open file descriptors of the tether process.");
    a->m_rss = metrics_gauge(r, "tether_rss_bytes", "Resident memory of the tether process.");
    a->m_cpu = metrics_counter(r, "tether_cpu_seconds_total", "CPU time (user+system) of the tether process.");
    a->m_lag = metrics_gauge(r, "tether_loop_lag_seconds", "Largest event-loop lag seen during the last interval.");
    a->m_coll_dur = metrics_histogram(r, "tether_collection_duration_seconds",
                                      "Time to read every container's kernel files once.", dur_buckets,
                                      sizeof dur_buckets / sizeof dur_buckets[0]);
    a->m_collections = metrics_counter(r, "tether_collections_total", "Collections done.");
    a->m_containers = metrics_gauge(r, "tether_containers", "Containers known.");
    a->m_vanished = metrics_counter(r, "tether_containers_vanished_total",
                                    "Containers dropped because their cgroup disappeared.");
    a->m_read_err = metrics_counter(r, "tether_cgroup_read_errors_total", "cgroup/proc file reads that failed.");
    a->m_parse_err = metrics_counter(r, "tether_cgroup_parse_errors_total",
                                     "cgroup/proc files skipped because they did not parse.");
    a->m_inspect_fail = metrics_counter(r, "tether_inspect_failures_total", "Container inspects that failed.");
    a->m_containerd_up = metrics_gauge(r, "tether_containerd_up", "1 when containerd's socket accepts connections.");
    a->m_containerd_secs = metrics_gauge(r, "tether_containerd_probe_seconds", "Duration of the last containerd probe.");
    a->m_scrapes = metrics_counter(r, "tether_scrapes_total", "/metrics pages served.");
    a->m_http_reqs = metrics_counter(r, "tether_http_requests_total", "HTTP requests served.");
    a->m_http_errs = metrics_counter(r, "tether_http_errors_total", "HTTP requests rejected as malformed or too large.");
    a->m_http_rejected = metrics_counter(r, "tether_http_rejected_connections_total",
                                         "HTTP connections refused over the connection limit.");
    if (a->o.falcon_url) {
        struct mfamily *fp = metrics_family(r, "tether_falcon_pushes_total", "open-falcon pushes by result.",
                                            METRIC_COUNTER, (const char *const[]){ "result", NULL }, NULL, 0);
        a->m_falcon_ok = mfamily_child(fp, (const char *const[]){ "ok" });
        a->m_falcon_err = mfamily_child(fp, (const char *const[]){ "error" });
        a->m_falcon_retries = metrics_counter(r, "tether_falcon_retries_total", "open-falcon push retries.");
        a->m_falcon_dropped = metrics_counter(r, "tether_falcon_dropped_total",
                                              "open-falcon pushes dropped because the queue was full.");
        a->m_falcon_queue = metrics_gauge(r, "tether_falcon_queue_length", "open-falcon pushes waiting.");
    }
}

/* Raises the soft open-file limit to the hard one; returns the limit in force. */
static long raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return 1024;
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t want = rl.rlim_max;
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            log_warn("cannot raise the open-file limit: %s", strerror(errno));
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    return rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (1u << 30) ? (1L << 30) : (long)rl.rlim_cur;
}

int agent_main(int argc, char **argv)
{
    struct agent *a = calloc(1, sizeof *a);
    if (!a)
        return 1;
    int pr = parse_options(argc, argv, &a->o);
    if (pr != 0) {
        free(a);
        return pr > 0 ? 0 : 2;
    }
    signal(SIGPIPE, SIG_IGN);
    /* Kept-open cgroup files may use all but a reserve for sockets and scrapes. */
    long nofile = raise_nofile();
    a->fd_budget = nofile > 2048 ? nofile - 1024 : nofile / 2;
    if (gethostname(a->hostname, sizeof a->hostname - 1) < 0)
        snprintf(a->hostname, sizeof a->hostname, "localhost");

    int rc = 0;
    uv_loop_t loop;
    uv_loop_init(&loop);
    a->loop = &loop;
    a->reg = metrics_new();
    a->diag = diag_new(a->loop, "agent");
    a->ct = ctable_new();
    if (!a->reg || !a->diag || !a->ct) {
        log_error("out of memory at start");
        return 1;
    }
    register_self_metrics(a);

    /* Diagnostics first: they must answer while anything else still waits. */
    uv_signal_init(a->loop, &a->sig_usr1);
    a->sig_usr1.data = a;
    uv_signal_start(&a->sig_usr1, on_usr1, SIGUSR1);
    uv_signal_init(a->loop, &a->sig_term);
    a->sig_term.data = a;
    uv_signal_start(&a->sig_term, on_term, SIGTERM);
    uv_signal_init(a->loop, &a->sig_int);
    a->sig_int.data = a;
    uv_signal_start(&a->sig_int, on_term, SIGINT);
    uv_timer_init(a->loop, &a->tick);
    a->tick.data = a;
    uv_timer_init(a->loop, &a->lag);
    a->lag.data = a;

    char err[256] = "";
    int r = http_server_start(a->loop, a->o.listen, NULL, handle, a, &a->srv, err, sizeof err);
    if (r < 0) {
        log_error("cannot listen on %s: %s", a->o.listen, err[0] ? err : strerror(-r));
        rc = 1;
        agent_stop(a);
        uv_run(a->loop, UV_RUN_DEFAULT);
        goto out;
    }
    log_info("tether agent %s listening on %s (port %d), interval %u s", TETHER_VERSION, a->o.listen,
             http_server_port(a->srv), a->o.interval_s);

    diag_register(a->diag, "agent", diag_agent, a);
    diag_register(a->diag, "requests", diag_requests_provider, a);
    diag_register(a->diag, "containers", diag_containers, a);

    r = cg_layout_detect(a->o.cgroup_root, a->o.proc_root, &a->layout, err, sizeof err);
    if (r < 0)
        log_error("no usable cgroup hierarchy under %s: %s; no container will be measured", a->o.cgroup_root, err);
    else
        a->have_layout = 1;

    struct docker_callbacks cb = { on_listed, on_inspected, on_event, on_docker_state };
    a->docker = docker_new(a->loop, a->o.docker_url, &cb, a, a->reg);
    if (!a->docker) {
        log_error("invalid --docker '%s'", a->o.docker_url);
        rc = 1;
        agent_stop(a);
        uv_run(a->loop, UV_RUN_DEFAULT);
        goto out;
    }
    diag_register(a->diag, "docker", docker_diag, a->docker);

    const char *cpaths[2];
    unsigned ncp = 0;
    if (a->o.containerd) {
        cpaths[ncp++] = a->o.containerd;
    } else {
        cpaths[ncp++] = "/run/containerd/containerd.sock";
        cpaths[ncp++] = "/run/docker/containerd/containerd.sock";
    }
    a->containerd = probe_new(a->loop, cpaths, ncp, on_containerd, a);

    if (a->o.falcon_url) {
        a->falcon = falcon_new(a->loop, a->o.falcon_url, a->o.falcon_endpoint ? a->o.falcon_endpoint : a->hostname,
                               a->o.interval_s, 16);
        if (!a->falcon) {
            log_error("invalid --falcon-url '%s'", a->o.falcon_url);
            agent_stop(a);
            uv_run(a->loop, UV_RUN_DEFAULT);
            goto out;
        }
        diag_register(a->diag, "falcon", diag_falcon, a);
    }

    docker_start(a->docker);
    uv_timer_start(&a->tick, tick_cb, 0, (uint64_t)a->o.interval_s * 1000);
    uv_timer_start(&a->lag, lag_cb, LAG_PERIOD_MS, LAG_PERIOD_MS);
    lag_cb(&a->lag);

    uv_run(a->loop, UV_RUN_DEFAULT);
out:
    /* Whatever is still open (there should be nothing) is closed before freeing. */
    uv_walk(a->loop, close_walk, NULL);
    uv_run(a->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(a->loop) != 0)
        log_warn("event loop closed with handles still open");
    snapshot_unref(a->snap);
    ctable_free(a->ct);
    diag_free(a->diag);
    metrics_free(a->reg);
    free(a);
    log_info("stopped");
    return rc;
}
