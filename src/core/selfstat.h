/*
 * selfstat: the process's own resource use, read from /proc/self, for the
 * daemons' self-metrics (threads, open fds, RSS, CPU).
 */
#ifndef TETHER_SELFSTAT_H
#define TETHER_SELFSTAT_H

#include <stdint.h>

struct selfstat {
    unsigned threads;          /* Threads: in /proc/self/status */
    unsigned open_fds;         /* entries of /proc/self/fd (excluding the directory's own fd) */
    uint64_t rss_bytes;        /* VmRSS */
    double cpu_seconds;        /* utime + stime */
};

/*
 * Fills *out; 0 or a negative errno when /proc/self cannot be read. Counting
 * fds lists /proc/self/fd, which costs ~0.1 ms per thousand fds: with
 * count_fds == 0 open_fds is left 0 and the caller keeps its last count.
 */
int selfstat_read(struct selfstat *out, int count_fds);

#endif
