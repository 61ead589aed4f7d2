/*
 * test_expo: value formatting (integers exact, shortest round-trip, special
 * values), escaping of label values and help text, name checks, and that the
 * (buf, len) functions never read past len (input placed right before a
 * PROT_NONE page).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/expo.h"
#include "core/sbuf.h"

static const char *fmt(double v)
{
    static char buf[EXPO_VALUE_MAX];
    size_t n = expo_format_value(buf, sizeof buf, v);
    assert_int_equal(n, strlen(buf));
    return buf;
}

static void test_value_integers(void **state)
{
    assert_string_equal(fmt(0), "0");
    assert_string_equal(fmt(-0.0), "0");
    assert_string_equal(fmt(1), "1");
    assert_string_equal(fmt(-1), "-1");
    assert_string_equal(fmt(42), "42");
    assert_string_equal(fmt(1234567890123.0), "1234567890123");
    assert_string_equal(fmt(1e15), "1000000000000000");
    assert_string_equal(fmt(9007199254740992.0), "9007199254740992");   /* 2^53 */
    assert_string_equal(fmt(-9007199254740992.0), "-9007199254740992");
    assert_string_equal(fmt(1426203694.0), "1426203694");
    /* Past 2^53: shortest round-trip form (%g picks fixed notation for 16 digits). */
    assert_string_equal(fmt(9007199254740994.0), "9007199254740994");
    assert_string_equal(fmt(123456789012345678.0), "1.2345678901234568e+17");
    assert_string_equal(fmt(1e20), "1e+20");
    assert_string_equal(fmt(18446744073709551615.0), "1.8446744073709552e+19");
}

static void test_value_fractions(void **state)
{
    assert_string_equal(fmt(0.1), "0.1");
    assert_string_equal(fmt(1.5), "1.5");
    assert_string_equal(fmt(-2.25), "-2.25");
    assert_string_equal(fmt(1e-9), "1e-09");
    assert_string_equal(fmt(2.5e-7), "2.5e-07");
    assert_string_equal(fmt(0.1 + 0.2), "0.30000000000000004");
    assert_string_equal(fmt(1.0 / 3), "0.3333333333333333");
    assert_string_equal(fmt(123456789 / 1e9), "0.123456789");
    assert_string_equal(fmt(DBL_MAX), "1.7976931348623157e+308");
    assert_string_equal(fmt(-DBL_MIN), "-2.2250738585072014e-308");
    assert_true(strtod(fmt(5e-324), NULL) == 5e-324);
}

static void test_value_special(void **state)
{
    assert_string_equal(fmt(NAN), "NaN");
    assert_string_equal(fmt(-NAN), "NaN");
    assert_string_equal(fmt(INFINITY), "+Inf");
    assert_string_equal(fmt(-INFINITY), "-Inf");
}

static void test_value_small_buffer(void **state)
{
    char buf[4] = "zzz";
    assert_int_equal(expo_format_value(buf, 4, 123), 3);
    assert_string_equal(buf, "123");
    assert_int_equal(expo_format_value(buf, 4, 1234), 0);
    assert_string_equal(buf, "");
    assert_int_equal(expo_format_value(buf, 0, 1), 0);
}

/* Any finite double reads back exactly, and the text fits EXPO_VALUE_MAX. */
static void test_value_round_trip(void **state)
{
    uint64_t x = 88172645463325252ull;
    char buf[EXPO_VALUE_MAX];
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double v;
        memcpy(&v, &x, sizeof v);
        if (i % 4 == 1)
            v = (double)(x >> 11);                /* integers around 2^53 */
        else if (i % 4 == 2)
            v = (double)(x % 1000000007) / 1e9;    /* ns -> s style values */
        if (!isfinite(v))
            continue;
        size_t n = expo_format_value(buf, sizeof buf, v);
        assert_true(n > 0 && n < sizeof buf);
        assert_true(strtod(buf, NULL) == v);
    }
}

static void test_names(void **state)
{
    static const char *const good_metric[] = { "a", "a_b:c", "_x", ":x", "container_cpu_usage_seconds_total",
                                               "A9" };
    static const char *const bad_metric[] = { "", "1a", "a-b", "a b", "é", "a.b", "a{" };
    for (size_t i = 0; i < sizeof good_metric / sizeof *good_metric; i++)
        assert_true(expo_metric_name_valid(good_metric[i], strlen(good_metric[i])));
    for (size_t i = 0; i < sizeof bad_metric / sizeof *bad_metric; i++)
        assert_false(expo_metric_name_valid(bad_metric[i], strlen(bad_metric[i])));

    static const char *const good_label[] = { "a", "_a", "a1", "container_label_com_docker_x", "le" };
    static const char *const bad_label[] = { "", "__a", "__", "a:b", "1a", "a-b" };
    for (size_t i = 0; i < sizeof good_label / sizeof *good_label; i++)
        assert_true(expo_label_name_valid(good_label[i], strlen(good_label[i])));
    for (size_t i = 0; i < sizeof bad_label / sizeof *bad_label; i++)
        assert_false(expo_label_name_valid(bad_label[i], strlen(bad_label[i])));
    /* The length bounds the check: "ab" of "ab-c" is fine. */
    assert_true(expo_metric_name_valid("ab-c", 2));
    assert_false(expo_metric_name_valid("ab-c", 3));
}

static void test_escape_label_value(void **state)
{
    struct sbuf b;
    sbuf_init(&b);
    const char *v = "a\"b\\c\nd";
    assert_int_equal(expo_escape_label_value(&b, v, strlen(v)), 0);
    assert_string_equal(b.data, "a\\\"b\\\\c\\nd");
    sbuf_reset(&b);
    assert_int_equal(expo_escape_label_value(&b, "", 0), 0);
    assert_string_equal(b.data, "");
    assert_int_equal(expo_escape_label_value(&b, "\"\"\\\n", 4), 0);
    assert_string_equal(b.data, "\\\"\\\"\\\\\\n");
    sbuf_reset(&b);
    assert_int_equal(expo_escape_label_value(&b, "plain text / ünïcode", strlen("plain text / ünïcode")), 0);
    assert_string_equal(b.data, "plain text / ünïcode");
    sbuf_free(&b);
}

static void test_escape_help(void **state)
{
    struct sbuf b;
    sbuf_init(&b);
    const char *h = "x\\y\n\"z\"";
    assert_int_equal(expo_escape_help(&b, h, strlen(h)), 0);
    assert_string_equal(b.data, "x\\\\y\\n\"z\"");
    sbuf_free(&b);
}

static void test_header_and_label(void **state)
{
    struct sbuf b;
    sbuf_init(&b);
    assert_int_equal(expo_write_header(&b, "tether_up", "1 when \"up\"\\ok\nyes", "gauge"), 0);
    assert_string_equal(b.data, "# HELP tether_up 1 when \"up\"\\\\ok\\nyes\n# TYPE tether_up gauge\n");
    sbuf_reset(&b);
    assert_int_equal(expo_write_header(&b, "x_total", NULL, "counter"), 0);
    assert_string_equal(b.data, "# TYPE x_total counter\n");
    sbuf_reset(&b);
    assert_int_equal(sbuf_append_str(&b, "m"), 0);
    assert_int_equal(expo_write_label(&b, '{', "name", "we\"ird\\\nname", 12), 0);
    assert_int_equal(expo_write_label(&b, ',', "k", "v", 1), 0);
    assert_int_equal(sbuf_append_str(&b, "} "), 0);
    assert_int_equal(expo_append_value(&b, 1.5), 0);
    assert_string_equal(b.data, "m{name=\"we\\\"ird\\\\\\nname\",k=\"v\"} 1.5");
    sbuf_reset(&b);
    assert_int_equal(expo_write_label(&b, 0, "a", "b", 1), 0);
    assert_string_equal(b.data, "a=\"b\"");
    sbuf_free(&b);
}

/* Input ends exactly at a PROT_NONE page: reading one byte past len crashes. */
static void test_no_overread(void **state)
{
    long pg = sysconf(_SC_PAGESIZE);
    char *map = mmap(NULL, (size_t)pg * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(map != MAP_FAILED);
    assert_int_equal(mprotect(map + pg, (size_t)pg, PROT_NONE), 0);
    static const char *const inputs[] = { "abc", "a\"\\\n", "\\", "metric_name", "__x", "9" };
    struct sbuf b;
    sbuf_init(&b);
    for (size_t i = 0; i < sizeof inputs / sizeof *inputs; i++) {
        size_t len = strlen(inputs[i]);
        char *p = map + pg - len;
        memcpy(p, inputs[i], len);
        sbuf_reset(&b);
        assert_int_equal(expo_escape_label_value(&b, p, len), 0);
        assert_int_equal(expo_escape_help(&b, p, len), 0);
        (void)expo_metric_name_valid(p, len);
        (void)expo_label_name_valid(p, len);
    }
    sbuf_free(&b);
    munmap(map, (size_t)pg * 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_value_integers),
        cmocka_unit_test(test_value_fractions),
        cmocka_unit_test(test_value_special),
        cmocka_unit_test(test_value_small_buffer),
        cmocka_unit_test(test_value_round_trip),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_escape_label_value),
        cmocka_unit_test(test_escape_help),
        cmocka_unit_test(test_header_and_label),
        cmocka_unit_test(test_no_overread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
