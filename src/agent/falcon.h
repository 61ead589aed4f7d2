/*
 * falcon: the open-falcon sink. Turns a collection snapshot into the JSON array
 * that an open-falcon agent or transfer accepts at POST /v1/push, and pushes
 * it without ever making collection wait.
 *
 *   collector --falcon_push(snap)--> render --> bounded queue --> one POST in flight
 *                                                  ^                 | failure / non-2xx
 *                                                  +-- backoff timer <+  (1 s, 2 s, ... 60 s)
 *
 * Item format (REFERENCE §4), one per metric and container:
 *   {"endpoint":"host-1","metric":"mem.rss","timestamp":1795305567,"step":60,
 *    "value":123456,"counterType":"GAUGE","tags":"container=web,id=908f79764c00,image=nginx:1"}
 * timestamp is the snapshot's collection time in whole seconds. Tags are
 *   container=<name>,id=<first 12 characters of the container id>,image=<image>
 * plus a family tag where noted below. open-falcon splits tags at ',' and
 * '=', so those two characters (and control characters) in a tag value become
 * '_'; a container without a name is tagged with its short id. Everything is
 * then JSON-escaped.
 *
 * Metric table (COUNTER: monotonically increasing, open-falcon stores its rate
 * per second; GAUGE: stored as is). Groups appear only when the sample has
 * the HAVE_* bit.
 *
 *   metric                    type     unit       from (sample.h)         bit
 *   cpu.usage                 COUNTER  seconds    cpu_usage_ns            HAVE_CPU
 *   cpu.user                  COUNTER  seconds    cpu_user_ns             HAVE_CPU
 *   cpu.system                COUNTER  seconds    cpu_system_ns           HAVE_CPU
 *       (rate of a cpu.* counter = cores busy: 0.5 is half of one core)
 *   cpu.periods               COUNTER  periods    cfs_periods             HAVE_CFS
 *   cpu.throttled.periods     COUNTER  periods    cfs_throttled_periods   HAVE_CFS
 *   cpu.throttled             COUNTER  seconds    cfs_throttled_ns        HAVE_CFS
 *   mem.usage                 GAUGE    bytes      mem_usage               HAVE_MEM
 *   mem.working_set           GAUGE    bytes      mem_working_set         HAVE_MEM
 *   mem.rss                   GAUGE    bytes      mem_rss                 HAVE_MEM
 *   mem.cache                 GAUGE    bytes      mem_cache               HAVE_MEM
 *   mem.mapped_file           GAUGE    bytes      mem_mapped_file         HAVE_MEM
 *   mem.limit                 GAUGE    bytes      mem_limit               HAVE_MEM, omitted when 0 (unlimited)
 *   mem.swap                  GAUGE    bytes      mem_swap                HAVE_MEM_SWAP
 *   mem.max_usage             GAUGE    bytes      mem_max_usage           HAVE_MEM_MAX
 *   mem.failcnt               COUNTER  events     mem_failcnt             HAVE_MEM_FAIL
 *   mem.oom                   COUNTER  events     oom_events              HAVE_OOM
 *   process.count             GAUGE    processes  processes               HAVE_PIDS
 *   thread.count              GAUGE    threads    threads                 HAVE_PIDS
 *   disk.io.read_bytes        COUNTER  bytes      blk[].read_bytes        HAVE_BLK  tag device=<dev>
 *   disk.io.write_bytes       COUNTER  bytes      blk[].write_bytes       HAVE_BLK  tag device=<dev>
 *   disk.io.read_requests     COUNTER  ops        blk[].reads             HAVE_BLK  tag device=<dev>
 *   disk.io.write_requests    COUNTER  ops        blk[].writes            HAVE_BLK  tag device=<dev>
 *   net.if.in.bytes           COUNTER  bytes      net[].rx_bytes          HAVE_NET  tag iface=<name>
 *   net.if.in.packets         COUNTER  packets    net[].rx_packets        HAVE_NET  tag iface=<name>
 *   net.if.in.errors          COUNTER  packets    net[].rx_errors         HAVE_NET  tag iface=<name>
 *   net.if.in.dropped         COUNTER  packets    net[].rx_dropped        HAVE_NET  tag iface=<name>
 *   net.if.out.bytes          COUNTER  bytes      net[].tx_bytes          HAVE_NET  tag iface=<name>
 *   net.if.out.packets        COUNTER  packets    net[].tx_packets        HAVE_NET  tag iface=<name>
 *   net.if.out.errors         COUNTER  packets    net[].tx_errors         HAVE_NET  tag iface=<name>
 *   net.if.out.dropped        COUNTER  packets    net[].tx_dropped        HAVE_NET  tag iface=<name>
 *   pressure.cpu.some         COUNTER  seconds    psi_cpu.some_total_us   HAVE_PSI_CPU
 *   pressure.cpu.full         COUNTER  seconds    psi_cpu.full_total_us   HAVE_PSI_CPU
 *   pressure.memory.some      COUNTER  seconds    psi_mem.some_total_us   HAVE_PSI_MEM
 *   pressure.memory.full      COUNTER  seconds    psi_mem.full_total_us   HAVE_PSI_MEM
 *   pressure.io.some          COUNTER  seconds    psi_io.some_total_us    HAVE_PSI_IO
 *   pressure.io.full          COUNTER  seconds    psi_io.full_total_us    HAVE_PSI_IO
 * Per-CPU usage is not pushed (open-falcon has no cheap way to aggregate it).
 * Seconds are written exactly from the integer ns/us ("12.000345678"); all
 * other values are integers, so every number is valid JSON.
 *
 * Pusher: one `struct falcon` per destination. falcon_push() renders at once
 * (pure CPU, no I/O) and queues the payload; at most one POST (Content-Type:
 * application/json, 5 s deadline) is in flight. When max_queue payloads are
 * already waiting the oldest waiting one is dropped and counted. A transport
 * error or a non-2xx answer is retried after a backoff that doubles from 1 s
 * up to 60 s and resets on success; a 4xx other than 408 and 429 means the
 * payload itself is refused, so that payload is dropped (counted as failed
 * and dropped) instead of retried, while the backoff still applies.
 *
 * Memory: the falcon owns its http_client, its timer and every queued payload
 * (a copy; the snapshot is not referenced after falcon_push returns). An item
 * is about 200 bytes and a container has 30-50 of them (8 more per network
 * interface), so a payload is ~6-10 KB per container; the queue bounds the
 * total at max_queue + 1 payloads.
 * falcon_close() releases everything, possibly after the loop has run once
 * more for handle close callbacks. Single-threaded: all calls on the loop's
 * thread.
 */
#ifndef TETHER_FALCON_H
#define TETHER_FALCON_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "agent/sample.h"
#include "core/http_client.h"
#include "core/sbuf.h"

struct falcon;

/*
 * Appends the JSON array for every sample of snap to out (an empty snapshot
 * gives "[]"). endpoint is the open-falcon endpoint (usually the host name).
 * Pure: no I/O, no globals. 0 or -ENOMEM (out may then hold a partial array;
 * reset it before reuse).
 */
int falcon_render(const struct snapshot *snap, const char *endpoint, unsigned step, struct sbuf *out);

/* Counters for diagnostics and self-metrics. */
struct falcon_stats {
    uint64_t pushes_ok;        /* POSTs answered 2xx */
    uint64_t pushes_failed;    /* POSTs that failed (transport error or non-2xx) */
    uint64_t retries;          /* POSTs that re-sent a payload which had failed before */
    uint64_t dropped;          /* payloads discarded: queue full, or refused with a 4xx */
    size_t queue_len;          /* payloads waiting, not counting the one in flight */
    int last_error;            /* last failure: negative errno, or the HTTP status (> 0); 0 none yet */
    double last_ok_time;       /* unix seconds of the last 2xx; 0 never */
};

/*
 * Creates a pusher posting to url ("http://host:port/v1/push"; the path
 * defaults to "/"). endpoint (copied) and step go into every item. max_queue
 * is the number of payloads allowed to wait (0 means 16). Nothing connects
 * until the first push. NULL on a bad URL or OOM.
 */
struct falcon *falcon_new(uv_loop_t *loop, const char *url, const char *endpoint, unsigned step,
                          size_t max_queue);

/*
 * Tunes the timing (for tests and unusual setups): request deadline and the
 * backoff range, in milliseconds; 0 keeps the current value (defaults 5000,
 * 1000, 60000). Applies from the next request / failure.
 */
void falcon_set_timing(struct falcon *f, uint64_t timeout_ms, uint64_t backoff_min_ms,
                       uint64_t backoff_max_ms);

/*
 * Renders snap and queues it; starts a POST unless one is in flight or a
 * backoff is pending. Never blocks and never waits for the network. An empty
 * snapshot (n == 0) is not pushed. 0 or -ENOMEM (nothing queued).
 */
int falcon_push(struct falcon *f, const struct snapshot *snap);

/* Copies the counters. */
void falcon_stats(const struct falcon *f, struct falcon_stats *out);

/* The pusher's HTTP client (for the state dump's list of requests); NULL after close. */
const struct http_client *falcon_client(const struct falcon *f);

/*
 * Cancels the POST in flight, drops the queue and frees the pusher once its
 * handles are closed (after the loop runs their close callbacks). f must not
 * be used after this call. NULL-safe.
 */
void falcon_close(struct falcon *f);

#endif
