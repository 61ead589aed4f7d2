/*
 * docker: the agent's only client of dockerd.
 *
 * What it asks, and when (rule: never load the daemon we monitor):
 *   /_ping                 every interval, own connection, deadline (health)
 *   /events (container)    one long-lived stream; reconnect with backoff
 *   /containers/json       after each (re)connect of the events stream (resync)
 *   /containers/{id}/json  once per new container (queue, 4 in flight)
 * Nothing else: no stats, no exec. Container numbers come from kernel files.
 *
 * Health state machine from the ping:
 *   200 -> UP;  deadline passed or connect not accepted (EAGAIN) -> HUNG
 *   (the socket accepts but nothing answers);  refused / no socket / reset /
 *   malformed -> DOWN.  UNKNOWN until the first ping ends.
 *
 * The module reports through callbacks into its owner (the agent) and keeps
 * no container state of its own besides the inspect queue. It registers its
 * metrics (tether_docker_*) in the registry given at creation.
 *
 * Memory: docker owns its three http_clients, the queued ids (copied) and the
 * event-line splitter. Everything a callback receives is valid only during
 * the callback. Single-threaded.
 */
#ifndef TETHER_DOCKER_H
#define TETHER_DOCKER_H

#include <jansson.h>
#include <stdint.h>
#include <uv.h>

#include "agent/docker_json.h"

struct metrics;
struct docker;

enum docker_state { DOCKER_UNKNOWN = 0, DOCKER_UP, DOCKER_HUNG, DOCKER_DOWN };

const char *docker_state_name(enum docker_state s);

struct docker_callbacks {
    /* A successful container list (running containers). */
    void (*listed)(void *arg, const struct docker_list *list);
    /* An inspect finished: err 0 with ins, -ENOENT (404: gone), or another error. */
    void (*inspected)(void *arg, const char *id, int err, const struct docker_inspect *ins);
    /* A container event from the stream. */
    void (*event)(void *arg, const struct docker_event *ev);
    /* The health state changed. */
    void (*state_changed)(void *arg, enum docker_state from, enum docker_state to);
};

/* url: "unix:///var/run/docker.sock" or "tcp://host:port". NULL on a bad URL or OOM. */
struct docker *docker_new(uv_loop_t *loop, const char *url, const struct docker_callbacks *cb, void *arg,
                          struct metrics *reg);
/* Opens the events stream (which then lists). Returns at once; never blocks. */
void docker_start(struct docker *d);
/* Sends a ping unless one is in flight. */
void docker_ping(struct docker *d, uint64_t timeout_ms);
/* Queues an inspect of `id` (copied). 0, -EALREADY when queued/in flight, -ENOMEM. */
int docker_inspect(struct docker *d, const char *id);
enum docker_state docker_get_state(const struct docker *d);
/* Cancels everything and frees (the http clients free themselves once closed). */
void docker_close(struct docker *d);
/* Appends the requests in flight or queued (client, method, path, deadline_left_ms) to arr. */
void docker_visit_requests(const struct docker *d, json_t *arr);
/* diag provider: adds the module's state under key, and its requests to root["requests"]. */
void docker_diag(json_t *root, const char *key, void *arg);

#endif
