/*
 * selfstat: see selfstat.h. Reads /proc/self/status, /proc/self/stat and
 * lists /proc/self/fd; called once per interval, not per request.
 */
#include "core/selfstat.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static ssize_t read_file(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, cap - 1);
    int e = errno;
    close(fd);
    if (n < 0)
        return -e;
    buf[n] = '\0';
    return n;
}

static uint64_t status_field(const char *status, const char *key)
{
    const char *p = strstr(status, key);
    if (!p)
        return 0;
    return strtoull(p + strlen(key), NULL, 10);
}

int selfstat_read(struct selfstat *out, int count_fds)
{
    char buf[4096];
    memset(out, 0, sizeof *out);
    ssize_t n = read_file("/proc/self/status", buf, sizeof buf);
    if (n < 0)
        return (int)n;
    out->threads = (unsigned)status_field(buf, "\nThreads:");
    out->rss_bytes = status_field(buf, "\nVmRSS:") * 1024;

    n = read_file("/proc/self/stat", buf, sizeof buf);
    if (n > 0) {
        /* Fields after the ")" of comm: state is field 3; utime 14, stime 15. */
        const char *p = strrchr(buf, ')');
        if (p) {
            unsigned long long ut = 0, st = 0;
            if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) == 2) {
                long hz = sysconf(_SC_CLK_TCK);
                out->cpu_seconds = (double)(ut + st) / (double)(hz > 0 ? hz : 100);
            }
        }
    }

    DIR *d = count_fds ? opendir("/proc/self/fd") : NULL;
    if (d) {
        struct dirent *de;
        unsigned count = 0;
        while ((de = readdir(d)) != NULL)
            if (de->d_name[0] != '.')
                count++;
        closedir(d);
        out->open_fds = count > 0 ? count - 1 : 0; /* the DIR's own fd */
    }
    return 0;
}
