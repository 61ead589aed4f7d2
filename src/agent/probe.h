/*
 * probe: a connect-only health probe of a Unix socket (containerd speaks gRPC,
 * so "accepts a connection within the deadline" is what we check).
 *
 * One probe in flight at a time; each probe opens a uv_pipe_t, connects with a
 * deadline timer and closes at once. Owned by the agent; single-threaded.
 */
#ifndef TETHER_PROBE_H
#define TETHER_PROBE_H

#include <stdint.h>
#include <uv.h>

struct probe;

/* Called with 0 when the socket accepted, or a negative errno (-ETIMEDOUT, -ENOENT, ...). */
typedef void (*probe_cb)(int status, double seconds, void *arg);

/* paths: candidate socket paths, the first that exists is probed each time (copied). */
struct probe *probe_new(uv_loop_t *loop, const char *const *paths, unsigned npaths, probe_cb cb,
                        void *arg);
/* Starts a probe unless one is in flight (then returns -EBUSY). */
int probe_start(struct probe *p, uint64_t timeout_ms);
/* The path in use ("" before the first probe). */
const char *probe_path(const struct probe *p);
/* Cancels what is in flight (no callback) and frees once the handles are closed. */
void probe_close(struct probe *p);

#endif
