/*
 * netdev: /proc/<pid>/net/dev parser (format and contract in netdev.h).
 *
 * Each device line is split at its first ':' into the name and 16 counters:
 * receive bytes packets errs drop fifo frame compressed multicast, then
 * transmit bytes packets errs drop fifo colls carrier compressed. Only the
 * counters cAdvisor exports are kept (bytes, packets, errors, drops).
 */
#include "agent/netdev.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#define NETDEV_NCOUNTERS 16

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r'; }

/* Decimal digits in [p, end), at least one, nothing else. */
static int parse_dec(const char *p, const char *end, uint64_t *out)
{
    uint64_t v = 0;
    if (p >= end)
        return -EPROTO;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9')
            return -EPROTO;
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -ERANGE;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

bool netdev_is_skipped(const char *name, size_t len)
{
    if (len == 2 && memcmp(name, "lo", 2) == 0)
        return true;
    if (len >= 4 && memcmp(name, "veth", 4) == 0)
        return true;
    if (len >= 6 && memcmp(name, "docker", 6) == 0)
        return true;
    return false;
}

/* Parses the counters of one device line (the part after ':') into st. */
static int parse_counters(const char *p, const char *end, struct netif_stat *st)
{
    uint64_t c[NETDEV_NCOUNTERS];
    int i = 0;
    while (p < end) {
        while (p < end && is_space(*p))
            p++;
        if (p >= end)
            break;
        const char *ts = p;
        while (p < end && !is_space(*p))
            p++;
        if (i < NETDEV_NCOUNTERS) {
            int rc = parse_dec(ts, p, &c[i]);
            if (rc < 0)
                return rc;
        }
        i++;                            /* extra columns (future kernels) are ignored */
    }
    if (i < NETDEV_NCOUNTERS)
        return -EPROTO;
    st->rx_bytes = c[0];
    st->rx_packets = c[1];
    st->rx_errors = c[2];
    st->rx_dropped = c[3];
    st->tx_bytes = c[8];
    st->tx_packets = c[9];
    st->tx_errors = c[10];
    st->tx_dropped = c[11];
    return 0;
}

int netdev_parse(const char *buf, size_t len, unsigned flags, struct netif_stat *out,
                 size_t cap, size_t *n)
{
    const char *p = buf, *end = buf + len;
    size_t count = 0, lineno = 0;
    *n = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *ls = p, *le = nl ? nl : end;
        p = nl ? nl + 1 : end;
        if (lineno++ < 2) {             /* the two header lines hold column titles and '|' */
            if (!memchr(ls, '|', (size_t)(le - ls)))
                return -EPROTO;
            continue;
        }
        while (ls < le && is_space(*ls))
            ls++;
        if (ls == le)
            continue;
        const char *colon = memchr(ls, ':', (size_t)(le - ls));
        if (!colon || colon == ls)
            return -EPROTO;
        size_t nlen = (size_t)(colon - ls);
        if (nlen >= sizeof out->name)
            return -EPROTO;
        for (size_t i = 0; i < nlen; i++)
            if (is_space(ls[i]) || (unsigned char)ls[i] < 0x20)
                return -EPROTO;
        struct netif_stat st;
        memset(&st, 0, sizeof st);
        int rc = parse_counters(colon + 1, le, &st);
        if (rc < 0)
            return rc;
        if ((flags & NETDEV_SKIP_VIRTUAL) && netdev_is_skipped(ls, nlen))
            continue;
        memcpy(st.name, ls, nlen);
        st.name[nlen] = '\0';
        if (count < cap)
            out[count] = st;
        count++;
    }
    if (lineno < 2)
        return -EPROTO;
    *n = count;
    return count > cap ? -ENOSPC : 0;
}
