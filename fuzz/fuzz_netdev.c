/*
 * fuzz_netdev: libFuzzer harness for netdev_parse (agent/netdev.h), with and
 * without skipping lo, veth* and docker* names, and with capacities 0, 2 and 64. Traps
 * when the contract breaks: an entry written past cap, a count that differs
 * between capacities, a name without its NUL or one the skip flag should
 * have left out.
 * Corpus: fuzz/corpus/netdev/ (captured /proc/<pid>/net/dev files).
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "agent/netdev.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    struct netif_stat st[64 + 1];
    for (unsigned flags = 0; flags <= NETDEV_SKIP_VIRTUAL; flags++) {
        size_t n0 = 0, n2 = 0, n64 = 0;
        int rc0 = netdev_parse(buf, size, flags, NULL, 0, &n0);
        memset(&st[2], 0x5a, sizeof st[2]);
        int rc2 = netdev_parse(buf, size, flags, st, 2, &n2);
        CHECK(st[2].name[0] == 0x5a);           /* nothing past cap */
        int rc64 = netdev_parse(buf, size, flags, st, 64, &n64);
        CHECK((rc0 == 0 || rc0 == -ENOSPC) == (rc64 == 0 || rc64 == -ENOSPC));
        if (rc64 == 0 || rc64 == -ENOSPC) {
            CHECK(n0 == n64 && n2 == n64);
            CHECK(rc2 == (n64 > 2 ? -ENOSPC : 0));
            for (size_t i = 0; i < n64 && i < 64; i++) {
                const char *end = memchr(st[i].name, '\0', sizeof st[i].name);
                CHECK(end != NULL && end != st[i].name);
                if (flags & NETDEV_SKIP_VIRTUAL)
                    CHECK(!netdev_is_skipped(st[i].name, (size_t)(end - st[i].name)));
            }
        }
    }
    return 0;
}
