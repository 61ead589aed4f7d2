/*
 * test_netdev: the /proc/<pid>/net/dev parser on files captured from this
 * kernel (a container's namespace and the host's, under tests/fixtures/proc),
 * on hand-written variants (wide counters glued to the ':', more columns) and
 * on malformed and truncated input. Inputs end right before a PROT_NONE page.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "guard.h"

#include "agent/netdev.h"

#define HDR "Inter-|   Receive                                                |  Transmit\n" \
            " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n"




static int parse_str(const char *s, unsigned flags, struct netif_stat *out, size_t cap, size_t *n)
{
    struct guard g = guard_new(s, strlen(s));
    int rc = netdev_parse(g.data, g.len, flags, out, cap, n);
    guard_free(&g);
    return rc;
}

static void test_container_capture(void **state)
{
    struct netif_stat st[4];
    size_t n = 0;
    struct guard g = guard_file("proc/9941/net/dev");
    assert_int_equal(netdev_parse(g.data, g.len, 0, st, 4, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(st[0].name, "lo");
    assert_string_equal(st[1].name, "eth0");

    assert_int_equal(netdev_parse(g.data, g.len, NETDEV_SKIP_VIRTUAL, st, 4, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(st[0].name, "eth0");
    assert_int_equal(st[0].rx_bytes, 894);
    assert_int_equal(st[0].rx_packets, 11);
    assert_int_equal(st[0].rx_errors, 0);
    assert_int_equal(st[0].rx_dropped, 0);
    assert_int_equal(st[0].tx_bytes, 238);
    assert_int_equal(st[0].tx_packets, 3);
    guard_free(&g);
}

static void test_host_capture(void **state)
{
    struct netif_stat st[16];
    size_t n = 0;
    struct guard g = guard_file("proc/net_dev_host");
    assert_int_equal(netdev_parse(g.data, g.len, 0, st, 16, &n), 0);
    assert_int_equal(n, 10);
    assert_string_equal(st[9].name, "docker0");     /* "docker0:      56" */
    assert_int_equal(st[9].rx_bytes, 56);
    assert_int_equal(st[9].tx_bytes, 984);

    /* lo, veth*, docker0 left out; ifb0, ifb1, eth0 kept in file order */
    assert_int_equal(netdev_parse(g.data, g.len, NETDEV_SKIP_VIRTUAL, st, 16, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(st[0].name, "ifb0");
    assert_string_equal(st[1].name, "ifb1");
    assert_string_equal(st[2].name, "eth0");
    assert_int_equal(st[2].rx_bytes, 130707040);
    assert_int_equal(st[2].rx_packets, 3406);
    assert_int_equal(st[2].tx_bytes, 159502);
    assert_int_equal(st[2].tx_packets, 2189);

    /* count only, then too small */
    assert_int_equal(netdev_parse(g.data, g.len, NETDEV_SKIP_VIRTUAL, NULL, 0, &n), -ENOSPC);
    assert_int_equal(n, 3);
    memset(st, 0, sizeof st);
    assert_int_equal(netdev_parse(g.data, g.len, NETDEV_SKIP_VIRTUAL, st, 2, &n), -ENOSPC);
    assert_int_equal(n, 3);
    assert_string_equal(st[1].name, "ifb1");
    assert_string_equal(st[2].name, "");            /* nothing written past cap */
    guard_free(&g);
}

static void test_counters(void **state)
{
    struct netif_stat st[4];
    size_t n = 0;
    /* errors and drops land in the right fields (fixture of the v2 tree) */
    struct guard g = guard_file("proc/5001/net/dev");
    assert_int_equal(netdev_parse(g.data, g.len, NETDEV_SKIP_VIRTUAL, st, 4, &n), 0);
    guard_free(&g);
    assert_int_equal(n, 2);
    assert_string_equal(st[0].name, "eth0");
    assert_int_equal(st[0].rx_bytes, 123456789);
    assert_int_equal(st[0].rx_packets, 98765);
    assert_int_equal(st[0].rx_errors, 1);
    assert_int_equal(st[0].rx_dropped, 2);
    assert_int_equal(st[0].tx_bytes, 98765432);
    assert_int_equal(st[0].tx_packets, 87654);
    assert_int_equal(st[0].tx_errors, 3);
    assert_int_equal(st[0].tx_dropped, 4);
    assert_string_equal(st[1].name, "eth1");

    /* a wide first counter glued to the colon */
    g = guard_file("proc/6001/net/dev");
    assert_int_equal(netdev_parse(g.data, g.len, NETDEV_SKIP_VIRTUAL, st, 4, &n), 0);
    guard_free(&g);
    assert_int_equal(n, 1);
    assert_int_equal(st[0].rx_bytes, 1234567890123ull);
    assert_int_equal(st[0].rx_dropped, 7);
    assert_int_equal(st[0].tx_bytes, 987654321);

    /* extra columns of a future kernel are ignored; max u64 fits */
    assert_int_equal(parse_str(HDR "  eth9: 18446744073709551615 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18\n",
                               0, st, 4, &n), 0);
    assert_int_equal(n, 1);
    assert_true(st[0].rx_bytes == UINT64_MAX);
    assert_int_equal(st[0].rx_dropped, 4);
    assert_int_equal(st[0].tx_bytes, 9);
    assert_int_equal(st[0].tx_dropped, 12);

    /* headers only: a namespace without devices */
    assert_int_equal(parse_str(HDR, 0, st, 4, &n), 0);
    assert_int_equal(n, 0);
}

static void test_malformed(void **state)
{
    struct netif_stat st[4];
    size_t n;
    static const char *const bad[] = {
        "",
        "garbage\n",
        "Inter-|\n",                                                     /* one header line */
        "no bar here\n face |\n",
        HDR "  eth0  1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n",          /* no colon */
        HDR "  : 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n",              /* empty name */
        HDR "  eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15\n",             /* 15 counters */
        HDR "  eth0: 1 2 3 x 5 6 7 8 9 10 11 12 13 14 15 16\n",
        HDR "  eth0: 1 2 3 -4 5 6 7 8 9 10 11 12 13 14 15 16\n",
        HDR "  an_interface_name_that_is_way_too_long: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n",
        HDR "  eth0: 18446744073709551616 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n",
        HDR "  et h0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = parse_str(bad[i], 0, st, 4, &n);
        if (rc != -EPROTO && rc != -ERANGE)
            fail_msg("case %zu accepted (rc %d)", i, rc);
    }
    /* a bad line is an error even when the device would be skipped */
    assert_int_equal(parse_str(HDR "  veth0: 1 2\n", NETDEV_SKIP_VIRTUAL, st, 4, &n), -EPROTO);
}

static void test_truncated_prefixes(void **state)
{
    struct netif_stat st[16];
    size_t n;
    struct guard full = guard_file("proc/net_dev_host");
    for (size_t len = 0; len <= full.len; len++) {
        struct guard g = guard_new(full.data, len);
        int rc = netdev_parse(g.data, g.len, NETDEV_SKIP_VIRTUAL, st, 16, &n);
        assert_true(rc == 0 || rc == -EPROTO);
        guard_free(&g);
    }
    guard_free(&full);
}

static void test_skip_names(void **state)
{
    assert_true(netdev_is_skipped("lo", 2));
    assert_true(netdev_is_skipped("veth4597f2d", 11));
    assert_true(netdev_is_skipped("veth", 4));
    assert_true(netdev_is_skipped("docker0", 7));
    assert_true(netdev_is_skipped("docker_gwbridge", 15));
    assert_false(netdev_is_skipped("lo0", 3));
    assert_false(netdev_is_skipped("eth0", 4));
    assert_false(netdev_is_skipped("vet", 3));
    assert_false(netdev_is_skipped("dock", 4));
    assert_false(netdev_is_skipped("br-1234", 7));
    assert_false(netdev_is_skipped("l", 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_container_capture),
        cmocka_unit_test(test_host_capture),
        cmocka_unit_test(test_counters),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_truncated_prefixes),
        cmocka_unit_test(test_skip_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
