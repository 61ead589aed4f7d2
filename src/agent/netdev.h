/*
 * netdev: pure parser for /proc/<pid>/net/dev, the per-interface counters of
 * the network namespace that <pid> lives in. The agent reads the file of one
 * process of each container (cgroup.c keeps it open) to get the container's
 * network counters without entering its namespace.
 *
 * Format (net/core/net-procfs.c): two header lines, then one line per device:
 *   Inter-|   Receive                            ...|  Transmit
 *    face |bytes    packets errs drop fifo frame compressed multicast|bytes ...
 *     eth0:  123456  789 0 0 0 0 0 0   654321  987 0 0 0 0 0 0
 * The name is right-aligned and followed by ':' with no blank when the first
 * number is wide ("eth0:1234567890"). Interface names cannot contain ':'.
 *
 * Pure: (buf, len) is not NUL-terminated and never read past len; no
 * allocation, no I/O, no state. The caller owns the output array.
 */
#ifndef TETHER_NETDEV_H
#define TETHER_NETDEV_H

#include <stdbool.h>
#include <stddef.h>

#include "agent/sample.h"

/* netdev_parse flags */
enum {
    NETDEV_SKIP_VIRTUAL = 1u << 0,  /* leave out lo, veth*, docker* (what cAdvisor skips) */
};

/*
 * Parses the file into out[0..cap). *n receives the number of interfaces
 * listed (after skipping), even when that is more than cap: then out[] holds
 * the first cap and the return is -ENOSPC, so the caller can grow and retry.
 * cap may be 0 (out may then be NULL) to count only.
 * 0, -ENOSPC, or -EPROTO (missing header, a line without "name:", a name
 * longer than 31 bytes, fewer than 16 counters, a non-numeric counter),
 * -ERANGE (a counter above UINT64_MAX).
 */
int netdev_parse(const char *buf, size_t len, unsigned flags, struct netif_stat *out,
                 size_t cap, size_t *n);

/* True for the names NETDEV_SKIP_VIRTUAL leaves out: "lo", "veth*", "docker*". */
bool netdev_is_skipped(const char *name, size_t len);

#endif
