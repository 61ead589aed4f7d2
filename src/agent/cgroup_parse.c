/*
 * cgroup_parse: pure parsers for cgroup v1/v2 interface files (see
 * cgroup_parse.h for the formats and the error convention).
 *
 * Everything works on [p, end) ranges inside the caller's buffer: a line is
 * the range up to (not including) the next '\n' or the end of the buffer, a
 * token the range up to the next blank. No function here writes anywhere but
 * the caller's output arguments, and none reads at or past end.
 */
#include "agent/cgroup_parse.h"

#include <errno.h>
#include <string.h>

/* Largest v1 value still meaning "no limit": LONG_MAX rounded down to 1 MiB. */
#define CGP_V1_UNLIMITED_MIN 0x7FFFFFFFFFF00000ULL

static bool is_blank(char c) { return c == ' ' || c == '\t'; }
static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/* Decimal digits in [p, end), nothing else; at least one digit. */
static int parse_dec(const char *p, const char *end, uint64_t *out)
{
    uint64_t v = 0;
    if (p >= end)
        return -EPROTO;
    for (; p < end; p++) {
        if (!is_digit(*p))
            return -EPROTO;
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -ERANGE;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* A value token: decimal digits or "max". */
static int parse_value(const char *p, const char *end, uint64_t *out)
{
    if (end - p == 3 && memcmp(p, "max", 3) == 0) {
        *out = CGP_MAX;
        return 0;
    }
    return parse_dec(p, end, out);
}

/* Splits off the next line of [*p, end): sets [*ls, *le) and moves *p past the '\n'.
 * Returns false when nothing is left. */
static bool next_line(const char **p, const char *end, const char **ls, const char **le)
{
    if (*p >= end)
        return false;
    const char *nl = memchr(*p, '\n', (size_t)(end - *p));
    *ls = *p;
    *le = nl ? nl : end;
    *p = nl ? nl + 1 : end;
    return true;
}

/* Skips blanks, then sets [*ts, *te) to the next token of [*p, end) and moves *p past it.
 * Returns false when only blanks are left. */
static bool next_token(const char **p, const char *end, const char **ts, const char **te)
{
    const char *q = *p;
    while (q < end && is_space(*q))
        q++;
    if (q >= end) {
        *p = q;
        return false;
    }
    *ts = q;
    while (q < end && !is_space(*q))
        q++;
    *te = q;
    *p = q;
    return true;
}

/* True when [p, end) holds only blanks/newlines (or nothing). */
static bool only_space(const char *p, const char *end)
{
    for (; p < end; p++)
        if (!is_space(*p))
            return false;
    return true;
}

int cgp_u64(const char *buf, size_t len, uint64_t *out)
{
    const char *p = buf, *end = buf + len, *ts, *te;
    if (!next_token(&p, end, &ts, &te))
        return -EPROTO;
    if (!only_space(p, end))
        return -EPROTO;
    return parse_value(ts, te, out);
}

bool cgp_is_unlimited(uint64_t v)
{
    return v >= CGP_V1_UNLIMITED_MIN;
}

int cgp_keyed(const char *buf, size_t len, const struct cgp_key *keys, size_t nkeys,
              uint64_t *found)
{
    const char *p = buf, *end = buf + len, *ls, *le;
    size_t klens[64];
    if (nkeys > 64)
        return -EINVAL;
    for (size_t i = 0; i < nkeys; i++)
        klens[i] = strlen(keys[i].name);
    *found = 0;
    while (next_line(&p, end, &ls, &le)) {
        if (only_space(ls, le))
            continue;
        const char *k = ls;
        while (k < le && is_blank(*k))
            k++;
        const char *ke = k;
        while (ke < le && !is_blank(*ke))
            ke++;
        if (ke == le)
            return -EPROTO;             /* a key without a value */
        size_t klen = (size_t)(ke - k);
        for (size_t i = 0; i < nkeys; i++) {
            if (klens[i] != klen || memcmp(keys[i].name, k, klen) != 0)
                continue;
            const char *vs = ke, *ve = le;
            while (vs < ve && is_blank(*vs))
                vs++;
            while (ve > vs && is_space(ve[-1]))
                ve--;
            uint64_t v;
            int rc = parse_value(vs, ve, &v);
            if (rc < 0)
                return rc;
            *keys[i].out = v;
            *found |= 1ull << i;
            break;
        }
    }
    return 0;
}

int cgp_u64_list(const char *buf, size_t len, uint64_t *out, size_t cap, size_t *n)
{
    const char *p = buf, *end = buf + len, *ts, *te;
    size_t count = 0;
    while (next_token(&p, end, &ts, &te)) {
        uint64_t v;
        int rc = parse_dec(ts, te, &v);
        if (rc < 0)
            return rc;
        if (count < cap)
            out[count] = v;
        count++;
    }
    *n = count;
    if (count == 0)
        return -EPROTO;
    return count > cap ? -ENOSPC : 0;
}

/* "MAJ:MIN" -> numbers (each must fit in 32 bits). */
static int parse_majmin(const char *p, const char *end, uint32_t *maj, uint32_t *min)
{
    const char *colon = memchr(p, ':', (size_t)(end - p));
    uint64_t a, b;
    if (!colon || parse_dec(p, colon, &a) < 0 || parse_dec(colon + 1, end, &b) < 0)
        return -EPROTO;
    if (a > UINT32_MAX || b > UINT32_MAX)
        return -ERANGE;
    *maj = (uint32_t)a;
    *min = (uint32_t)b;
    return 0;
}

/* Writes the decimal form of v at p (which has room for 10 digits); returns the end. */
static char *put_u32(char *p, uint32_t v)
{
    char tmp[10];
    int i = 0;
    do {
        tmp[i++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (i)
        *p++ = tmp[--i];
    return p;
}

/* Finds MAJ:MIN in devs[0..*n) or appends a zeroed entry for it; NULL when full. */
static struct blkdev_stat *blk_slot(struct blkdev_stat *devs, size_t cap, size_t *n,
                                    uint32_t maj, uint32_t min)
{
    for (size_t i = 0; i < *n; i++)
        if (devs[i].major == maj && devs[i].minor == min)
            return &devs[i];
    if (*n >= cap)
        return NULL;
    struct blkdev_stat *d = &devs[(*n)++];
    memset(d, 0, sizeof *d);
    d->major = maj;
    d->minor = min;
    char *q = put_u32(d->dev, maj); /* at most 10 + 1 + 10 + 1 bytes < sizeof d->dev */
    *q++ = ':';
    q = put_u32(q, min);
    *q = '\0';
    return d;
}

int cgp_blkio_v1(const char *buf, size_t len, enum cgp_blkio_kind kind,
                 struct blkdev_stat *devs, size_t cap, size_t *n)
{
    const char *p = buf, *end = buf + len, *ls, *le;
    int ret = 0;
    if (*n > cap)
        return -EINVAL;
    while (next_line(&p, end, &ls, &le)) {
        const char *lp = ls, *t[3][2];
        int nt = 0;
        while (nt < 3 && next_token(&lp, le, &t[nt][0], &t[nt][1]))
            nt++;
        if (nt == 0)
            continue;
        if (!only_space(lp, le))
            return -EPROTO;             /* more than three tokens */
        uint64_t v;
        if (nt == 2 && t[0][1] - t[0][0] == 5 && memcmp(t[0][0], "Total", 5) == 0) {
            int rc = parse_dec(t[1][0], t[1][1], &v);
            if (rc < 0)
                return rc;
            continue;                   /* the grand total is derived, not kept */
        }
        if (nt != 3)
            return -EPROTO;
        uint32_t maj, min;
        int rc = parse_majmin(t[0][0], t[0][1], &maj, &min);
        if (rc < 0)
            return rc;
        rc = parse_dec(t[2][0], t[2][1], &v);
        if (rc < 0)
            return rc;
        size_t oplen = (size_t)(t[1][1] - t[1][0]);
        bool is_read = oplen == 4 && memcmp(t[1][0], "Read", 4) == 0;
        bool is_write = oplen == 5 && memcmp(t[1][0], "Write", 5) == 0;
        struct blkdev_stat *d = blk_slot(devs, cap, n, maj, min);
        if (!d) {
            ret = -ENOSPC;
            continue;
        }
        if (is_read) {
            if (kind == CGP_BLKIO_BYTES)
                d->read_bytes = v;
            else
                d->reads = v;
        } else if (is_write) {
            if (kind == CGP_BLKIO_BYTES)
                d->write_bytes = v;
            else
                d->writes = v;
        }
        /* Sync, Async, Discard, Total per device: not exported */
    }
    return ret;
}

int cgp_io_stat(const char *buf, size_t len, struct blkdev_stat *devs, size_t cap, size_t *n)
{
    const char *p = buf, *end = buf + len, *ls, *le;
    int ret = 0;
    *n = 0;
    while (next_line(&p, end, &ls, &le)) {
        const char *lp = ls, *ts, *te;
        if (!next_token(&lp, le, &ts, &te))
            continue;
        uint32_t maj, min;
        int rc = parse_majmin(ts, te, &maj, &min);
        if (rc < 0)
            return rc;
        struct blkdev_stat *d = blk_slot(devs, cap, n, maj, min);
        if (!d)
            ret = -ENOSPC;
        while (next_token(&lp, le, &ts, &te)) {
            const char *eq = memchr(ts, '=', (size_t)(te - ts));
            if (!eq || eq == ts)
                return -EPROTO;
            size_t klen = (size_t)(eq - ts);
            uint64_t *dst = NULL;
            if (klen == 6 && memcmp(ts, "rbytes", 6) == 0)
                dst = d ? &d->read_bytes : NULL;
            else if (klen == 6 && memcmp(ts, "wbytes", 6) == 0)
                dst = d ? &d->write_bytes : NULL;
            else if (klen == 4 && memcmp(ts, "rios", 4) == 0)
                dst = d ? &d->reads : NULL;
            else if (klen == 4 && memcmp(ts, "wios", 4) == 0)
                dst = d ? &d->writes : NULL;
            else
                continue;               /* dbytes, dios, cost.*, ...: not exported */
            uint64_t v;
            rc = parse_dec(eq + 1, te, &v);
            if (rc < 0)
                return rc;
            if (dst)
                *dst = v;
        }
    }
    return ret;
}

int cgp_psi(const char *buf, size_t len, struct psi_stat *out)
{
    const char *p = buf, *end = buf + len, *ls, *le;
    bool some = false, full = false;
    uint64_t some_total = 0, full_total = 0;
    while (next_line(&p, end, &ls, &le)) {
        const char *lp = ls, *ts, *te;
        if (!next_token(&lp, le, &ts, &te))
            continue;
        bool is_some = te - ts == 4 && memcmp(ts, "some", 4) == 0;
        bool is_full = te - ts == 4 && memcmp(ts, "full", 4) == 0;
        if (!is_some && !is_full)
            return -EPROTO;
        if ((is_some && some) || (is_full && full))
            return -EPROTO;             /* the same line twice */
        bool have_total = false;
        uint64_t total = 0;
        while (next_token(&lp, le, &ts, &te)) {
            const char *eq = memchr(ts, '=', (size_t)(te - ts));
            if (!eq || eq == ts || eq + 1 == te)
                return -EPROTO;
            if (eq - ts == 5 && memcmp(ts, "total", 5) == 0) {
                int rc = parse_dec(eq + 1, te, &total);
                if (rc < 0)
                    return rc;
                have_total = true;
            }
            /* avg10/avg60/avg300 are decimals the exporter does not use */
        }
        if (!have_total)
            return -EPROTO;
        if (is_some) {
            some = true;
            some_total = total;
        } else {
            full = true;
            full_total = total;
        }
    }
    if (!some)
        return -EPROTO;
    out->some_total_us = some_total;
    out->full_total_us = full_total;
    return 0;
}

int cgp_pid_next(const char *buf, size_t len, size_t *off, uint64_t *pid)
{
    const char *p = buf + (*off < len ? *off : len), *end = buf + len, *ls, *le;
    while (next_line(&p, end, &ls, &le)) {
        while (le > ls && (le[-1] == '\r' || is_blank(le[-1])))
            le--;
        while (ls < le && is_blank(*ls))
            ls++;
        if (ls == le)
            continue;
        uint64_t v;
        int rc = parse_dec(ls, le, &v);
        if (rc < 0)
            return rc;
        if (v == 0)
            return -EPROTO;
        *pid = v;
        *off = (size_t)(p - buf);
        return 1;
    }
    *off = len;
    return 0;
}

int cgp_pid_list(const char *buf, size_t len, uint64_t want, struct cgp_pids *out)
{
    struct cgp_pids r = { 0, 0, false };
    size_t off = 0;
    uint64_t pid;
    int rc;
    while ((rc = cgp_pid_next(buf, len, &off, &pid)) == 1) {
        if (r.count == 0)
            r.first = pid;
        if (want && pid == want)
            r.want_seen = true;
        r.count++;
    }
    if (rc < 0)
        return rc;
    *out = r;
    return 0;
}

int cgp_uevent_devname(const char *buf, size_t len, char *out, size_t cap)
{
    const char *p = buf, *end = buf + len, *ls, *le;
    while (next_line(&p, end, &ls, &le)) {
        if (le - ls < 8 || memcmp(ls, "DEVNAME=", 8) != 0)
            continue;
        const char *v = ls + 8;
        size_t vlen = (size_t)(le - v);
        if (vlen == 0)
            return -EPROTO;
        for (size_t i = 0; i < vlen; i++) {
            unsigned char c = (unsigned char)v[i];
            if (c <= ' ' || c == 0x7f || c == '"' || c == '\\')
                return -EPROTO;
        }
        if (vlen + 1 > cap)
            return -ENOSPC;
        memcpy(out, v, vlen);
        out[vlen] = '\0';
        return 0;
    }
    return -ENOENT;
}
