/*
 * Unit tests of the container table: add/get/remove keep the hash chains and
 * the dense order consistent through growth and swap-removal, and metas are
 * reference-counted correctly (no leak under ASan).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "agent/ctable.h"

static void make_id(char *id, unsigned i)
{
    snprintf(id, 65, "%064x", i * 2654435761u);
}

static void test_add_get_remove_many(void **state)
{
    struct ctable *t = ctable_new();
    assert_non_null(t);
    char id[65];
    for (unsigned i = 0; i < 2000; i++) {
        make_id(id, i);
        struct container *c = ctable_add(t, id, "/docker/x", i, "scan");
        assert_non_null(c);
        assert_string_equal(c->id, id);
        assert_string_equal(c->meta->name, "");
        assert_ptr_equal(ctable_add(t, id, "/docker/y", i, "list"), c); /* idempotent */
    }
    assert_int_equal(ctable_count(t), 2000);
    /* remove every third; the rest stay findable and the dense index stays right */
    for (unsigned i = 0; i < 2000; i += 3) {
        make_id(id, i);
        struct container *c = ctable_get(t, id);
        assert_non_null(c);
        ctable_remove(t, c);
        assert_null(ctable_get(t, id));
    }
    for (unsigned i = 0; i < 2000; i++) {
        make_id(id, i);
        struct container *c = ctable_get(t, id);
        if (i % 3 == 0)
            assert_null(c);
        else {
            assert_non_null(c);
            assert_ptr_equal(ctable_at(t, c->index), c);
        }
    }
    assert_int_equal(ctable_count(t), 2000 - 667);
    assert_null(ctable_at(t, ctable_count(t)));
    ctable_free(t);
}

static void test_meta_replacement_keeps_snapshot_refs(void **state)
{
    struct ctable *t = ctable_new();
    struct container *c = ctable_add(t, "abc", "/docker/abc", 0, "event");
    struct cmeta *old = cmeta_ref(c->meta); /* as a snapshot would */
    struct cmeta *m = cmeta_new("abc", "/docker/abc", "/web", "nginx", 12.5);
    assert_int_equal(cmeta_add_label(m, "com.example/team", "core"), 0);
    ctable_set_meta(c, m);
    assert_string_equal(c->meta->name, "web"); /* leading slash removed */
    assert_string_equal(c->meta->label_keys[0], "com_example_team");
    assert_int_equal(old->refs, 1);            /* only our reference is left */
    cmeta_unref(old);
    ctable_remove(t, c);
    assert_int_equal(ctable_count(t), 0);
    ctable_free(t);
}

static void test_snapshot_holds_meta(void **state)
{
    struct cmeta *m = cmeta_new("id", "/docker/id", "n", "i", 0);
    struct snapshot *s = snapshot_new(0);
    for (int i = 0; i < 100; i++) {
        struct csample *cs = snapshot_add(s);
        assert_non_null(cs);
        cs->meta = cmeta_ref(m);
    }
    assert_int_equal(m->refs, 101);
    struct snapshot *s2 = snapshot_ref(s);
    snapshot_unref(s);
    assert_int_equal(m->refs, 101);
    snapshot_unref(s2);
    assert_int_equal(m->refs, 1);
    cmeta_unref(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_get_remove_many),
        cmocka_unit_test(test_meta_replacement_keeps_snapshot_refs),
        cmocka_unit_test(test_snapshot_holds_meta),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
