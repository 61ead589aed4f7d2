/*
 * cgroup_parse: pure parsers for the kernel's cgroup v1/v2 interface files.
 *
 * Every function takes (buf, len): the bytes of one file as read with
 * pread(fd, buf, cap, 0). The buffer is NOT NUL-terminated and is never read
 * past len; nothing here allocates, does I/O, logs or keeps state, so the unit
 * tests and the libFuzzer harness (fuzz/fuzz_cgroup.c) call them directly.
 * cgroup.c (the I/O side) owns the buffers and calls these each cycle.
 *
 * Formats (Documentation/admin-guide/cgroup-v2.rst "Interface Files", and the
 * v1 controller docs):
 *   single value   "12345\n" or "max\n"                    cgp_u64
 *   flat keyed     "key value\n" per line                  cgp_keyed
 *   value list     "v0 v1 v2 \n" (cpuacct.usage_percpu)    cgp_u64_list
 *   v1 blkio       "MAJ:MIN Read N\n" ... "Total N\n"      cgp_blkio_v1
 *   v2 io.stat     "MAJ:MIN rbytes=N wbytes=N rios=N ..."  cgp_io_stat
 *   PSI            "some avg10=.. avg60=.. avg300=.. total=N\nfull ..."  cgp_psi
 *   pid list       "123\n456\n" (cgroup.procs, tasks, cgroup.threads)  cgp_pid_list
 *   uevent         "MAJOR=8\nMINOR=0\nDEVNAME=sda\n"        cgp_uevent_devname
 *
 * Errors: 0 on success or a negative errno: -EPROTO for malformed input,
 * -ERANGE for a number that does not fit in 64 bits, -ENOSPC when a
 * caller-provided array is too small (the parse still fills what fits).
 * Outputs are written only through the pointers given; on error their content
 * is unspecified (partially filled) unless the function says otherwise.
 */
#ifndef TETHER_CGROUP_PARSE_H
#define TETHER_CGROUP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/sample.h"

/* What cgp_u64 stores for the word "max" (v2's "no limit"). */
#define CGP_MAX UINT64_MAX

/*
 * A single unsigned value: optional blanks, decimal digits or "max", optional
 * trailing blanks/newlines, nothing else. "max" -> CGP_MAX.
 * 0, -EPROTO (empty, sign, junk), -ERANGE (> UINT64_MAX).
 */
int cgp_u64(const char *buf, size_t len, uint64_t *out);

/*
 * True when a limit value means "no limit": CGP_MAX (v2 "max") or v1's
 * PAGE_COUNTER_MAX * PAGE_SIZE, i.e. LONG_MAX rounded down to the page size
 * (9223372036854771712 with 4 KiB pages; any value within 1 MiB of LONG_MAX
 * or above is accepted so other page sizes work too).
 */
bool cgp_is_unlimited(uint64_t v);

/* One key a caller wants from a flat keyed file. */
struct cgp_key {
    const char *name;   /* NUL-terminated key, e.g. "total_rss" */
    uint64_t *out;      /* receives the value when the key is found (untouched otherwise) */
};

/*
 * Flat keyed file (memory.stat, cpu.stat v1/v2, cpuacct.stat, memory.events,
 * memory.oom_control, ...): lines "key value". For each key in keys[] found,
 * stores the value and sets bit i of *found (nkeys <= 64, else -EINVAL).
 * Lines with keys nobody asked for are skipped whatever their value, so new
 * kernel keys never break the parse; a requested key whose value is not a
 * number is -EPROTO, as is a non-empty line without "key<space>value".
 * A key seen twice keeps its last value.
 */
int cgp_keyed(const char *buf, size_t len, const struct cgp_key *keys, size_t nkeys,
              uint64_t *found);

/*
 * Blank-separated list of unsigned numbers (cpuacct.usage_percpu). Stores up to
 * cap values in out[] and the number of values in the file in *n. -ENOSPC when
 * more than cap (out[] holds the first cap, *n the full count, so the caller can
 * grow and retry); -EPROTO when empty or not numeric.
 */
int cgp_u64_list(const char *buf, size_t len, uint64_t *out, size_t cap, size_t *n);

/* Which v1 blkio file is being parsed. */
enum cgp_blkio_kind {
    CGP_BLKIO_BYTES,    /* blkio.throttle.io_service_bytes -> read_bytes/write_bytes */
    CGP_BLKIO_OPS,      /* blkio.throttle.io_serviced      -> reads/writes */
};

/*
 * v1 blkio.throttle.io_service_bytes / io_serviced: lines "MAJ:MIN Op N" with
 * Op one of Read/Write/Sync/Async/Discard/Total (only Read and Write are kept)
 * and a last "Total N". Merges into devs[0..*n): an entry for MAJ:MIN is found
 * or appended (a new entry is zeroed and its dev set to "MAJ:MIN"), so the two
 * files can be parsed into one array; *n is in/out. -ENOSPC when a device does
 * not fit (the rest is still parsed, *n = cap).
 */
int cgp_blkio_v1(const char *buf, size_t len, enum cgp_blkio_kind kind,
                 struct blkdev_stat *devs, size_t cap, size_t *n);

/*
 * v2 io.stat: lines "MAJ:MIN rbytes=N wbytes=N rios=N wios=N dbytes=N dios=N"
 * (more keys may follow; unknown keys are skipped, even non-numeric ones).
 * Fills devs[0..*n) from scratch (*n is output only; dev = "MAJ:MIN"). A device
 * listed twice is merged. -ENOSPC as for cgp_blkio_v1.
 */
int cgp_io_stat(const char *buf, size_t len, struct blkdev_stat *devs, size_t cap, size_t *n);

/*
 * PSI file (cpu.pressure, memory.pressure, io.pressure):
 *   some avg10=0.00 avg60=0.00 avg300=0.00 total=N
 *   full avg10=0.00 avg60=0.00 avg300=0.00 total=N
 * Stores the totals (microseconds). The "some" line is required; "full" is
 * optional (full_total_us = 0 without it). -EPROTO otherwise.
 */
int cgp_psi(const char *buf, size_t len, struct psi_stat *out);

/* Result of cgp_pid_list. */
struct cgp_pids {
    uint64_t count;     /* lines (pids or tids) in the file */
    uint64_t first;     /* first pid listed; 0 when the file is empty */
    bool want_seen;     /* the pid asked for (want != 0) is in the list */
};

/*
 * cgroup.procs / tasks / cgroup.threads: one decimal pid per line. An empty
 * file is valid (count 0). want: a pid to look for (0 = none), used to check
 * that the pid whose net/dev is kept open still belongs to the cgroup.
 * -EPROTO on a line that is not a positive decimal number.
 */
int cgp_pid_list(const char *buf, size_t len, uint64_t want, struct cgp_pids *out);

/*
 * Iterates over the pids of a pid list: start with *off = 0; each call stores
 * the next pid in *pid, moves *off past it and returns 1; returns 0 at the end
 * and -EPROTO (or -ERANGE) at a line cgp_pid_list would reject.
 */
int cgp_pid_next(const char *buf, size_t len, size_t *off, uint64_t *pid);

/*
 * /sys/dev/block/MAJ:MIN/uevent: copies the value of DEVNAME= (e.g. "sda",
 * "cciss/c0d0") NUL-terminated into out. -ENOENT when there is no DEVNAME line,
 * -ENOSPC when it does not fit in cap (including the NUL), -EPROTO when the
 * value is empty or holds a control, blank, quote or backslash character.
 */
int cgp_uevent_devname(const char *buf, size_t len, char *out, size_t cap);

#endif
