/* test_suspects.c: leak-suspect scoring (inspectd/src/suspects.c): steady growth is
 * unbounded and ranked by rate, a cache that fills up is bounded, a working set that
 * goes up and down fluctuates, constant counts are flat. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "suspects.h"

static const suspect *find(const suspect *r, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(r[i].key, key) == 0)
            return &r[i];
    return NULL;
}

/* 30 samples of four shapes, plus a slow leak with noise. */
static void feed(suspects *s, int samples)
{
    for (int i = 0; i < samples; i++) {
        rcgc__suspects_begin(s);
        assert_int_equal(rcgc__suspects_add(s, "Leak", (size_t)(100 + 10 * i)), 0);
        assert_int_equal(rcgc__suspects_add(s, "Cache", (size_t)(i < 10 ? 10 * i : 100)), 0);
        assert_int_equal(rcgc__suspects_add(s, "Working", (size_t)(i % 2 ? 80 : 50)), 0);
        assert_int_equal(rcgc__suspects_add(s, "Static", 7), 0);
        assert_int_equal(rcgc__suspects_add(s, "SlowLeak", (size_t)(200 + i + (i % 3))), 0);
        rcgc__suspects_end(s);
    }
}

static void test_suspects_shapes(void **state)
{
    (void)state;
    suspects *s = rcgc__suspects_new();
    assert_non_null(s);
    feed(s, 30);
    assert_int_equal(rcgc__suspects_samples(s), 30);
    suspect r[8];
    assert_int_equal(rcgc__suspects_rank(s, r, 8), 5);
    /* The fast leak first, then the slow one; then the cache; then the rest. */
    assert_string_equal(r[0].key, "Leak");
    assert_int_equal(r[0].kind, SUSPECT_UNBOUNDED);
    assert_true(r[0].score > 9.5 && r[0].score <= 10.0);
    assert_true(r[0].r2 > 0.99);
    assert_int_equal(r[0].first, 100);
    assert_int_equal(r[0].last, 390);
    assert_string_equal(r[1].key, "SlowLeak");
    assert_int_equal(r[1].kind, SUSPECT_UNBOUNDED);
    assert_true(r[1].score > 0.5 && r[1].score < 1.5);
    assert_string_equal(r[2].key, "Cache");
    assert_int_equal(r[2].kind, SUSPECT_BOUNDED);
    assert_true(r[2].score == 0);
    assert_int_equal(r[2].peak, 100);
    assert_int_equal(find(r, 5, "Working")->kind, SUSPECT_FLUCTUATING);
    assert_int_equal(find(r, 5, "Static")->kind, SUSPECT_FLAT);
    assert_string_equal(rcgc__suspect_kind_name(SUSPECT_UNBOUNDED), "unbounded");
    assert_string_equal(rcgc__suspect_kind_name(SUSPECT_BOUNDED), "bounded");
    rcgc__suspects_free(s);
}

/* Fewer than RCGC_SUSPECTS_MIN samples: nobody is judged. The window keeps the last
 * RCGC_SUSPECTS_WINDOW samples: an old leak that stopped long ago looks flat now. */
static void test_suspects_window(void **state)
{
    (void)state;
    suspects *s = rcgc__suspects_new();
    suspect r[4];
    for (int i = 0; i < RCGC_SUSPECTS_MIN - 1; i++) {
        rcgc__suspects_begin(s);
        rcgc__suspects_add(s, "T", (size_t)i * 100);
        rcgc__suspects_end(s);
    }
    assert_int_equal(rcgc__suspects_rank(s, r, 4), 0);
    for (int i = 0; i < 200; i++) {
        rcgc__suspects_begin(s);
        rcgc__suspects_add(s, "T", 5000);
        rcgc__suspects_end(s);
    }
    assert_int_equal(rcgc__suspects_rank(s, r, 4), 1);
    assert_int_equal(r[0].samples, RCGC_SUSPECTS_WINDOW);
    assert_int_equal(r[0].kind, SUSPECT_FLAT);
    rcgc__suspects_free(s);
}

/* A key that appears late had 0 before; a key that disappears counts 0; the same key
 * twice in one sample adds up (two sites of one type). */
static void test_suspects_keys_come_and_go(void **state)
{
    (void)state;
    suspects *s = rcgc__suspects_new();
    suspect r[4];
    for (int i = 0; i < 10; i++) {
        rcgc__suspects_begin(s);
        rcgc__suspects_add(s, "Old", 50);
        rcgc__suspects_end(s);
    }
    for (int i = 0; i < 10; i++) {
        rcgc__suspects_begin(s);
        rcgc__suspects_add(s, "New", (size_t)(20 * (i + 1)));
        rcgc__suspects_add(s, "New", (size_t)(20 * (i + 1)));
        rcgc__suspects_end(s);
    }
    assert_int_equal(rcgc__suspects_rank(s, r, 4), 2);
    const suspect *n = find(r, 2, "New"), *o = find(r, 2, "Old");
    assert_int_equal(n->samples, 20);
    assert_int_equal(n->first, 0);
    assert_int_equal(n->last, 400);
    assert_int_equal(n->kind, SUSPECT_UNBOUNDED);
    assert_int_equal(o->last, 0);
    assert_true(o->kind != SUSPECT_UNBOUNDED);
    rcgc__suspects_free(NULL);
    rcgc__suspects_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_suspects_shapes),
        cmocka_unit_test(test_suspects_window),
        cmocka_unit_test(test_suspects_keys_come_and_go),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
