/*
 * test_sbuf: the growable buffer keeps its content NUL-terminated, grows
 * through many appends and large printf output, and reset/free behave as
 * documented.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "core/sbuf.h"

static void test_init_is_empty_string(void **state)
{
    struct sbuf b;
    sbuf_init(&b);
    assert_non_null(b.data);
    assert_string_equal(b.data, "");
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    sbuf_reset(&b); /* fine before any allocation */
    assert_string_equal(b.data, "");
    sbuf_free(&b);  /* and so is free */
    assert_string_equal(b.data, "");
}

static void test_append_and_terminate(void **state)
{
    struct sbuf b;
    sbuf_init(&b);
    assert_int_equal(sbuf_append(&b, "abc", 3), 0);
    assert_int_equal(sbuf_append(&b, NULL, 0), 0);
    assert_int_equal(sbuf_append_str(&b, "def"), 0);
    assert_int_equal(sbuf_putc(&b, 'g'), 0);
    assert_int_equal(b.len, 7);
    assert_string_equal(b.data, "abcdefg");
    assert_true(b.cap > b.len);
    /* Binary content: embedded NUL counts in len. */
    assert_int_equal(sbuf_append(&b, "x\0y", 3), 0);
    assert_int_equal(b.len, 10);
    assert_memory_equal(b.data + 7, "x\0y", 3);
    assert_int_equal(b.data[10], '\0');
    sbuf_free(&b);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
}

static void test_many_appends_grow(void **state)
{
    struct sbuf b;
    sbuf_init(&b);
    for (int i = 0; i < 10000; i++)
        assert_int_equal(sbuf_putc(&b, (char)('a' + i % 26)), 0);
    assert_int_equal(b.len, 10000);
    for (int i = 0; i < 10000; i++)
        assert_int_equal(b.data[i], 'a' + i % 26);
    assert_int_equal(b.data[10000], '\0');
    sbuf_free(&b);
}

static void test_printf(void **state)
{
    struct sbuf b;
    sbuf_init(&b);
    assert_int_equal(sbuf_printf(&b, "%d-%s", 42, "x"), 0);
    assert_string_equal(b.data, "42-x");
    /* Larger than any capacity so far: must grow and keep the old content. */
    char big[5000];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(sbuf_printf(&b, "[%s]", big), 0);
    assert_int_equal(b.len, 4 + 2 + 4999);
    assert_memory_equal(b.data, "42-x[zzz", 8);
    assert_int_equal(b.data[b.len - 1], ']');
    assert_int_equal(b.data[b.len], '\0');
    /* Exactly filling the remaining room. */
    sbuf_reset(&b);
    size_t room = b.cap - 1;
    char fill[8192];
    assert_true(room < sizeof fill);
    memset(fill, 'q', room);
    fill[room] = '\0';
    assert_int_equal(sbuf_printf(&b, "%s", fill), 0);
    assert_int_equal(b.len, room);
    assert_int_equal(sbuf_printf(&b, "%s", "!"), 0);
    assert_int_equal(b.len, room + 1);
    assert_int_equal(b.data[room], '!');
    assert_int_equal(b.data[room + 1], '\0');
    assert_int_equal(sbuf_printf(&b, "%s", ""), 0);
    assert_int_equal(b.len, room + 1);
    sbuf_free(&b);
}

static void test_reset_keeps_memory(void **state)
{
    struct sbuf b;
    sbuf_init(&b);
    assert_int_equal(sbuf_append_str(&b, "hello world"), 0);
    char *data = b.data;
    size_t cap = b.cap;
    sbuf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    assert_ptr_equal(b.data, data);
    assert_int_equal(b.cap, cap);
    assert_int_equal(sbuf_append_str(&b, "x"), 0);
    assert_string_equal(b.data, "x");
    sbuf_free(&b);
}

static void test_reserve(void **state)
{
    struct sbuf b;
    sbuf_init(&b);
    assert_int_equal(sbuf_reserve(&b, 1000), 0);
    assert_true(b.cap >= 1001);
    char *data = b.data;
    for (int i = 0; i < 1000; i++)
        assert_int_equal(sbuf_putc(&b, 'r'), 0);
    assert_ptr_equal(b.data, data);
    assert_int_equal(sbuf_reserve(&b, SIZE_MAX), -ENOMEM);
    assert_int_equal(b.len, 1000);
    sbuf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_is_empty_string),
        cmocka_unit_test(test_append_and_terminate),
        cmocka_unit_test(test_many_appends_grow),
        cmocka_unit_test(test_printf),
        cmocka_unit_test(test_reset_keeps_memory),
        cmocka_unit_test(test_reserve),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
