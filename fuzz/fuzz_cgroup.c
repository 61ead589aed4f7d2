/*
 * fuzz_cgroup: libFuzzer harness for every parser of agent/cgroup_parse.h.
 * Each input is handed to all of them (a cgroup file of one kind is garbage
 * to the others, which is what they must survive). Besides ASan/UBSan
 * findings, the harness traps when a parser breaks its own contract: a count
 * above the capacity it was given, a device name without its NUL, a pid list
 * that disagrees with its iterator.
 * Corpus: fuzz/corpus/cgroup/ (files of the fixture trees).
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "agent/cgroup_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    uint64_t v, found, a = 0, b = 0, c = 0, list[8];
    size_t n;
    int rc;

    (void)cgp_u64(buf, size, &v);
    (void)cgp_is_unlimited(v);

    const struct cgp_key keys[] = {
        { "total_rss", &a }, { "user", &b }, { "usage_usec", &c }, { "oom_kill", &v },
    };
    rc = cgp_keyed(buf, size, keys, 4, &found);
    CHECK(rc != 0 || found < 16);

    rc = cgp_u64_list(buf, size, list, 8, &n);
    CHECK(rc != 0 || (n >= 1 && n <= 8));
    CHECK(rc != -ENOSPC || n > 8);

    struct blkdev_stat devs[3];
    for (int kind = 0; kind < 2; kind++) {
        n = 0;
        rc = cgp_blkio_v1(buf, size, kind ? CGP_BLKIO_OPS : CGP_BLKIO_BYTES, devs, 3, &n);
        CHECK(n <= 3);
        for (size_t i = 0; i < n; i++)
            CHECK(memchr(devs[i].dev, '\0', sizeof devs[i].dev) != NULL);
    }
    rc = cgp_io_stat(buf, size, devs, 3, &n);
    CHECK(n <= 3);
    for (size_t i = 0; i < n; i++)
        CHECK(memchr(devs[i].dev, '\0', sizeof devs[i].dev) != NULL);

    struct psi_stat psi;
    (void)cgp_psi(buf, size, &psi);

    struct cgp_pids pids;
    rc = cgp_pid_list(buf, size, 1, &pids);
    size_t off = 0;
    uint64_t pid, count = 0;
    int it;
    while ((it = cgp_pid_next(buf, size, &off, &pid)) == 1) {
        CHECK(off <= size);
        count++;
    }
    CHECK((rc == 0) == (it == 0));
    CHECK(rc != 0 || count == pids.count);

    char name[16];
    rc = cgp_uevent_devname(buf, size, name, sizeof name);
    CHECK(rc != 0 || strlen(name) < sizeof name);
    return 0;
}
