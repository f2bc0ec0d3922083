/* test_freeze.c: gc.freeze (catalogue #33, #52; research file §9): freeze moves every
 * tracked object to the permanent generation and resets the counts; frozen objects stay
 * tracked, are never scanned, never collected and never changed by a collection, are
 * invisible to get_objects and get_referrers; unfreeze moves them to generation 2. */
#include "testlib.h"

/* #33 test_freeze: the freeze count is the number of tracked objects frozen. */
static void test_freeze_freeze(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    tl_node *a = tl_new(h, &tl_Node, 1), *b = tl_new(h, &tl_Node, 2);
    tl_node *leaf = tl_new(h, &tl_Leaf, 3);
    void *w = tl_wr_new(h, leaf, NULL, NULL);
    assert_int_equal(rcgc_get_freeze_count(h), 0);
    rcgc_freeze(h);
    tl_check(h);
    assert_int_equal(rcgc_get_freeze_count(h), 3); /* a, b, w; the leaf is untracked */
    assert_true(rcgc_is_tracked(a));
    assert_true(rcgc_is_tracked(w));
    rcgc_unfreeze(h);
    tl_check(h);
    assert_int_equal(rcgc_get_freeze_count(h), 0);
    rcgc_decref(a);
    rcgc_decref(b);
    rcgc_decref(w);
    rcgc_decref(leaf);
    tl_heap_free(h);
}

/* freeze resets the counts; unfreeze leaves them; unfrozen objects land in gen 2. */
static void test_freeze_counts_and_unfreeze_to_gen2(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    tl_node *a = tl_new(h, &tl_Node, 1);
    assert_int_equal(rcgc_collect(h, 0), 0); /* a -> gen 1 */
    tl_node *b = tl_new(h, &tl_Node, 2);
    assert_int_equal(rcgc_collect(h, 0), 0); /* a -> gen 1, b -> gen 1 */
    assert_int_equal(rcgc_collect(h, 1), 0); /* both -> gen 2 */
    tl_node *c = tl_new(h, &tl_Node, 3);
    assert_int_equal(rcgc_collect(h, 0), 0); /* c -> gen 1 */
    tl_node *d = tl_new(h, &tl_Node, 4);     /* d in gen 0 */
    tl_assert_counts(h, 1, 1, 1);
    rcgc_freeze(h);
    tl_assert_counts(h, 0, 0, 0);
    assert_int_equal(rcgc_get_freeze_count(h), 4);
    for (int g = -1; g < 3; g++)
        assert_int_equal(tl_objects_in(h, g), 0);
    tl_node *e = tl_new(h, &tl_Node, 5);
    tl_assert_counts(h, 1, 0, 0);
    assert_int_equal(tl_generation_of(h, e), 0);
    rcgc_freeze(h); /* freezing again adds */
    assert_int_equal(rcgc_get_freeze_count(h), 5);
    tl_node *f = tl_new(h, &tl_Node, 6);
    assert_int_equal(rcgc_collect(h, 0), 0);
    tl_assert_counts(h, 0, 1, 0);
    rcgc_unfreeze(h);
    tl_check(h);
    tl_assert_counts(h, 0, 1, 0);
    assert_int_equal(rcgc_get_freeze_count(h), 0);
    tl_node *all[5] = {a, b, c, d, e};
    for (int i = 0; i < 5; i++)
        assert_int_equal(tl_generation_of(h, all[i]), 2);
    assert_int_equal(tl_generation_of(h, f), 1);
    for (int i = 0; i < 5; i++)
        rcgc_decref(all[i]);
    rcgc_decref(f);
    tl_check(h);
    tl_heap_free(h);
}

/* #52 test_traverse_frozen_objects: a new cycle references a frozen object; collecting
 * the cycle never decrements the frozen object's state; its count is exact after. */
static void test_freeze_traverse_frozen_objects(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    tl_node *frozen = tl_new(h, &tl_Node, 1);
    rcgc_freeze(h);
    tl_node *a = tl_new(h, &tl_Node, 2), *b = tl_new(h, &tl_Node, 3);
    tl_set(a, 0, b);
    tl_set(b, 0, a);
    tl_set(a, 1, frozen);
    tl_set(b, 1, frozen);
    assert_int_equal(rcgc_refcount(frozen), 3);
    rcgc_decref(a);
    rcgc_decref(b);
    assert_int_equal(rcgc_collect(h, 2), 2);
    tl_check(h);
    assert_int_equal(rcgc_refcount(frozen), 1);
    assert_int_equal(rcgc_get_freeze_count(h), 1);
    assert_int_equal(tl_log_count(TL_EV_CLEAR, 1), 0);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 1), 0);
    rcgc_unfreeze(h);
    tl_check(h);
    rcgc_decref(frozen);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 1), 1);
    tl_heap_free(h);
}

/* A collection that reaches a frozen object never changes it: a dropped frozen cycle
 * with a finalizer is neither finalized, cleared nor collected; a young object held
 * only by a frozen one is reachable; after unfreeze the cycle is collected normally. */
static void test_freeze_frozen_objects_never_change(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    tl_node *fc = tl_new(h, &tl_FinNode, 1); /* a frozen cycle, dropped later */
    tl_self_loop(fc, 0);
    tl_node *holder = tl_new(h, &tl_Node, 2); /* a frozen object, kept */
    void *w = tl_wr_new(h, fc, tl_wrcb_log, (void *)(intptr_t)1);
    rcgc_freeze(h);
    size_t frozen = rcgc_get_freeze_count(h);
    assert_int_equal(frozen, 3);

    tl_node *young = tl_new(h, &tl_Node, 3); /* held only by the frozen holder */
    tl_set(holder, 0, young);
    tl_set(young, 0, fc); /* a young reference into the frozen cycle */
    rcgc_decref(young);
    rcgc_decref(fc);
    assert_int_equal(rcgc_refcount(fc), 2);
    for (int g = 0; g < 3; g++) {
        assert_int_equal(rcgc_collect(h, g), 0);
        tl_check(h);
    }
    assert_int_equal(tl_log_count(TL_EV_FINALIZE, -1), 0);
    assert_int_equal(tl_log_count(TL_EV_CLEAR, -1), 0);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, -1), 0);
    assert_int_equal(tl_log_count(TL_EV_WRCB, -1), 0);
    assert_true(tl_wr_alive(w));
    assert_false(rcgc_is_finalized(fc));
    assert_int_equal(rcgc_refcount(fc), 2);
    assert_int_equal(rcgc_refcount(young), 1);
    assert_int_equal(rcgc_get_freeze_count(h), frozen);
    assert_int_equal(tl_generation_of(h, young), 2);

    /* Drop the young link: fc is a frozen unreachable cycle now, still untouched. */
    tl_unset(holder, 0);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 3), 1);
    assert_int_equal(rcgc_collect(h, 2), 0);
    assert_true(tl_wr_alive(w));

    rcgc_unfreeze(h);
    tl_check(h);
    assert_int_equal(rcgc_collect(h, 2), 1); /* fc */
    assert_int_equal(tl_log_count(TL_EV_FINALIZE, 1), 1);
    assert_int_equal(tl_log_count(TL_EV_WRCB, 1), 1);
    assert_false(tl_wr_alive(w));
    rcgc_decref(w);
    rcgc_decref(holder);
    tl_check(h);
    tl_heap_free(h);
}

/* Frozen objects are invisible to get_objects and get_referrers but stay tracked; a
 * frozen object that dies by refcount leaves the permanent generation. */
static void test_freeze_invisible_to_walks(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    tl_node *target = tl_new(h, &tl_Leaf, 1);
    tl_node *f1 = tl_new(h, &tl_Node, 2);
    tl_node *f2 = tl_new(h, &tl_Node, 3);
    tl_set(f1, 0, target);
    rcgc_freeze(h);
    tl_node *young = tl_new(h, &tl_Node, 4);
    tl_set(young, 0, target);
    assert_int_equal(tl_objects_in(h, -1), 1);
    assert_int_equal(tl_generation_of(h, f1), -1);
    assert_true(rcgc_is_tracked(f1));
    assert_int_equal(tl_referrers_count(h, target), 1);
    assert_true(tl_is_referrer(h, target, young));
    assert_false(tl_is_referrer(h, target, f1));
    assert_int_equal(rcgc_get_freeze_count(h), 2);
    rcgc_decref(f2); /* dies while frozen */
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 3), 1);
    assert_int_equal(rcgc_get_freeze_count(h), 1);
    tl_check(h);
    rcgc_unfreeze(h);
    assert_int_equal(tl_referrers_count(h, target), 2);
    assert_int_equal(tl_generation_of(h, f1), 2);
    rcgc_decref(f1);
    rcgc_decref(young);
    rcgc_decref(target);
    tl_check(h);
    tl_heap_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_freeze_freeze),
        cmocka_unit_test(test_freeze_counts_and_unfreeze_to_gen2),
        cmocka_unit_test(test_freeze_traverse_frozen_objects),
        cmocka_unit_test(test_freeze_frozen_objects_never_change),
        cmocka_unit_test(test_freeze_invisible_to_walks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
