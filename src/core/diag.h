/*
 * diag: the state dump behind SIGUSR1 and GET /debug/state.
 *
 * Components register providers; a dump builds one JSON object (jansson) in
 * which every provider adds its own member, plus "loop": every libuv handle of
 * the loop with its type and, for timers, the ms until it fires. The dump is
 * built on demand on the loop thread and freed by the caller.
 *
 * A provider is a function, not a snapshot of state, so the dump always shows
 * what is true now, including while start-up waits on a dependency.
 */
#ifndef TETHER_DIAG_H
#define TETHER_DIAG_H

#include <jansson.h>
#include <uv.h>

struct http_client;

/* Adds the provider's view under `key` of `root` (json_object_set_new). */
typedef void (*diag_provider_fn)(json_t *root, const char *key, void *arg);

struct diag;

struct diag *diag_new(uv_loop_t *loop, const char *daemon);
void diag_free(struct diag *d);
/* Registers a provider (key is not copied: a string literal). 0 or -ENOMEM. */
int diag_register(struct diag *d, const char *key, diag_provider_fn fn, void *arg);
/* Builds the dump; the caller owns the result (json_decref). NULL on OOM. */
json_t *diag_dump(struct diag *d);
/* Returns root["requests"], creating it: the dump's list of requests in flight. */
json_t *diag_requests(json_t *root);
/*
 * Appends one entry per request in flight on client's connections to arr:
 * {client, method, path, state, age_ms, deadline_left_ms}. NULL client: nothing.
 */
void diag_client_requests(json_t *arr, const char *client, const struct http_client *c);
/* Builds the dump and writes it to the log, one line per line of indented JSON. */
void diag_log(struct diag *d);

#endif
