/* test_toggling.c: automatic collection (CPython's GCTogglingTests #44/#45, later
 * additions #47/#56) and the count/threshold rules of DESIGN.md: what count0 counts, the
 * strict "count0 > t0" trigger, threshold 0, disable, and the 25% long-lived rule for
 * automatic full collections.
 *
 * Under RCGC_GC_STRESS (a collection at every allocation) the tests that assert exactly
 * when an automatic collection happens are skipped; those asserting that none happens
 * (disabled, threshold 0) still run. */
#include "testlib.h"

#include <stdlib.h>
#include <string.h>

static size_t collections_of(rcgc_heap *h, int g)
{
    rcgc_gen_stats s[3];
    rcgc_get_stats(h, s);
    return s[g].collections;
}

/* Allocates junk (kept alive) until the detector fires or limit allocations were made.
 * Returns: the iteration at which it fired (1-based), or limit + 1. */
static int allocate_until_gc(rcgc_heap *h, tl_detector *det, void **junk, int limit)
{
    int i = 0;
    while (!det->happened) {
        i++;
        if (i > limit)
            break;
        junk[i - 1] = tl_new(h, &tl_Node, 5000);
    }
    return i;
}

static void drop_junk(void **junk, int n)
{
    for (int i = 0; i < n; i++)
        rcgc_xdecref(junk[i]);
}

/* #44 test_bug1055820c: collecting the young generation frees an old object through
 * clear; that object's weak-reference callback must not see young trash. */
typedef struct {
    void *c2wr;
    int calls;
    int saw_alive;
} ouch_state;

static ouch_state g_ouch;

static void c0_callback(void *ref, void *arg)
{
    (void)ref;
    (void)arg;
    g_ouch.calls++;
    void *o = rcgc_weakref_get(g_ouch.c2wr);
    if (o) {
        g_ouch.saw_alive++;
        rcgc_decref(o);
    }
}

static void d0_finalize(tl_node *self)
{
    (void)self;
    c0_callback(NULL, NULL);
}

static void run_bug1055820(bool use_finalizer)
{
    enum { LIMIT = 10000 };
    rcgc_heap *h = tl_heap_new();
    memset(&g_ouch, 0, sizeof g_ouch);
    tl_node *c0 = tl_new(h, use_finalizer ? &tl_FinNode : &tl_Node, 0);
    tl_self_loop(c0, 0);
    if (use_finalizer)
        c0->on_finalize = d0_finalize;
    assert_int_equal(rcgc_collect(h, 2), 0); /* c0 -> generation 2 */
    assert_int_equal(tl_generation_of(h, c0), 2);

    tl_node *c1 = tl_new(h, &tl_Node, 1);
    tl_self_loop(c1, 0);
    tl_set(c1, 1, c0); /* c1.keep_c0_alive = c0 */
    tl_unset(c0, 0);   /* del c0.loop */
    tl_node *c2 = tl_new(h, &tl_Node, 2);
    tl_self_loop(c2, 0);
    g_ouch.c2wr = tl_wr_new(h, c2, NULL, NULL); /* no callback */
    void *c0wr = NULL;
    if (!use_finalizer)
        c0wr = tl_wr_new(h, c0, c0_callback, NULL);
    rcgc_decref(c0);
    rcgc_decref(c1);
    rcgc_decref(c2);
    tl_check(h);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, -1), 0);

    tl_detector det;
    tl_detector_init(h, &det);
    void **junk = calloc(LIMIT, sizeof *junk);
    assert_non_null(junk);
    rcgc_enable(h);
    int i = allocate_until_gc(h, &det, junk, LIMIT);
    rcgc_disable(h);
    tl_check(h);
    assert_true(i <= LIMIT);
#ifndef RCGC_GC_STRESS
    /* count0 > 700 at the 701st container allocation since the collection: c1, c2, c2wr,
     * (c0wr), the detector's node and weak reference came before the junk. */
    assert_int_equal(i, 701 - (use_finalizer ? 5 : 6));
    assert_int_equal(collections_of(h, 0), 1);
#endif
    assert_int_equal(g_ouch.calls, 1);
    assert_int_equal(g_ouch.saw_alive, 0);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 0), 1);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 1), 1);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 2), 1);
    assert_false(tl_wr_alive(g_ouch.c2wr));
    drop_junk(junk, i - 1 < LIMIT ? i : LIMIT);
    free(junk);
    tl_detector_fini(&det);
    rcgc_decref(g_ouch.c2wr);
    rcgc_xdecref(c0wr);
    tl_check(h);
    tl_heap_free(h);
}

static void test_toggling_bug1055820c(void **state)
{
    (void)state;
    run_bug1055820(false);
}

/* #45 test_bug1055820d: the same, with a finalizer on the old object. */
static void test_toggling_bug1055820d(void **state)
{
    (void)state;
    run_bug1055820(true);
}

/* #47 test_indirect_calls_with_gc_disabled (3.14.7 runs it under threshold (1000, 0, 0)):
 * allocations eventually trigger a collection; after disable none within 10000. */
static void test_toggling_indirect_calls_with_gc_disabled(void **state)
{
    (void)state;
    enum { LIMIT = 10000 };
    rcgc_heap *h = tl_heap_new();
    rcgc_set_threshold(h, 1000, 0, 0);
    rcgc_enable(h);
    void **junk = calloc(LIMIT, sizeof *junk);
    assert_non_null(junk);
    tl_detector det;
    tl_detector_init(h, &det);
    int i = allocate_until_gc(h, &det, junk, LIMIT);
    assert_true(i <= LIMIT);
    drop_junk(junk, i <= LIMIT ? i : LIMIT);
    tl_detector_fini(&det);
    tl_check(h);

    rcgc_disable(h);
    memset(junk, 0, LIMIT * sizeof *junk);
    size_t before = collections_of(h, 0) + collections_of(h, 1) + collections_of(h, 2);
    tl_detector_init(h, &det);
    i = allocate_until_gc(h, &det, junk, LIMIT);
    assert_int_equal(i, LIMIT + 1);
    assert_int_equal(collections_of(h, 0) + collections_of(h, 1) + collections_of(h, 2),
                     before);
    size_t c[3];
    rcgc_get_count(h, c);
    assert_true(c[0] >= LIMIT); /* counting goes on while disabled */
    tl_check(h);
    drop_junk(junk, LIMIT);
    tl_detector_fini(&det);
    free(junk);
    rcgc_enable(h);
    tl_heap_free(h);
}

/* #56 test_threshold_zero: threshold0 = 0 turns automatic collection off even though
 * the collector is enabled. */
static void test_toggling_threshold_zero(void **state)
{
    (void)state;
    enum { LIMIT = 50000 };
    rcgc_heap *h = tl_heap_new();
    rcgc_set_threshold(h, 0, 10, 10);
    rcgc_enable(h);
    assert_true(rcgc_is_enabled(h));
    void **junk = calloc(LIMIT, sizeof *junk);
    assert_non_null(junk);
    tl_detector det;
    tl_detector_init(h, &det);
    int i = allocate_until_gc(h, &det, junk, LIMIT);
    assert_int_equal(i, LIMIT + 1);
    assert_int_equal(collections_of(h, 0) + collections_of(h, 1) + collections_of(h, 2), 0);
    size_t t[3];
    rcgc_get_threshold(h, t);
    assert_int_equal(t[0], 0);
    assert_int_equal(t[1], 10);
    assert_int_equal(t[2], 10);
    tl_check(h);
    drop_junk(junk, LIMIT);
    free(junk);
    tl_detector_fini(&det);
    tl_heap_free(h);
}

/* count0 counts allocations minus frees of container objects (types with traverse),
 * tracked or not, weak references included; never below 0; leaves and ContainerNoGC do
 * not count. */
static void test_toggling_count_semantics(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    tl_assert_counts(h, 0, 0, 0);
    tl_node *leaf = tl_new(h, &tl_Leaf, 1);
    tl_assert_counts(h, 0, 0, 0);
    tl_node *n1 = tl_new(h, &tl_Node, 2);
    tl_assert_counts(h, 1, 0, 0);
    tl_var *v = tl_var_new(h, 3, 5);
    tl_assert_counts(h, 2, 0, 0);
    rcgc_untrack(n1);
    tl_assert_counts(h, 2, 0, 0);
    void *wr = tl_wr_new(h, leaf, NULL, NULL);
    tl_assert_counts(h, 3, 0, 0);
    tl_node *nogc = tl_new(h, &tl_ContainerNoGC, 4);
    tl_assert_counts(h, 3, 0, 0);
    rcgc_decref(nogc);
    tl_assert_counts(h, 3, 0, 0);
    rcgc_decref(n1); /* an untracked container's free counts too */
    tl_assert_counts(h, 2, 0, 0);
    rcgc_decref(leaf);
    tl_assert_counts(h, 2, 0, 0);
    assert_false(tl_wr_alive(wr));
    assert_int_equal(rcgc_collect(h, 0), 0);
    tl_assert_counts(h, 0, 1, 0);
    rcgc_decref(v);
    tl_assert_counts(h, 0, 1, 0); /* floored at 0 */
    rcgc_decref(wr);
    tl_assert_counts(h, 0, 1, 0);
    tl_node *n2 = tl_new(h, &tl_Node, 5);
    tl_assert_counts(h, 1, 1, 0);
    tl_node *n3 = tl_new(h, &tl_Node, 6);
    tl_assert_counts(h, 2, 1, 0);
    rcgc_decref(n2);
    tl_assert_counts(h, 1, 1, 0);
    assert_int_equal(rcgc_collect(h, 0), 0);
    tl_assert_counts(h, 0, 2, 0);
    assert_int_equal(rcgc_collect(h, 1), 0);
    tl_assert_counts(h, 0, 0, 1);
    assert_int_equal(rcgc_collect(h, 0), 0);
    tl_assert_counts(h, 0, 1, 1);
    assert_int_equal(rcgc_collect(h, 2), 0);
    tl_assert_counts(h, 0, 0, 0);
    tl_check(h);
    rcgc_decref(n3);
    tl_heap_free(h);
}

/* The trigger is count0 > t0 (strictly), checked at a container allocation; the
 * collection runs before the new object is tracked and resets count0 to 0. Leaf
 * allocations never trigger. */
static void test_toggling_trigger_is_strictly_greater(void **state)
{
    (void)state;
#ifdef RCGC_GC_STRESS
    skip(); /* stress collects at every container allocation: no threshold to observe */
#endif
    rcgc_heap *h = tl_heap_new();
    rcgc_set_threshold(h, 5, 10, 10);
    rcgc_enable(h);
    tl_node *keep[6];
    for (int i = 0; i < 5; i++)
        keep[i] = tl_new(h, &tl_Node, i);
    assert_int_equal(collections_of(h, 0), 0);
    tl_assert_counts(h, 5, 0, 0);
    tl_node *leaf = tl_new(h, &tl_Leaf, 99);
    assert_int_equal(collections_of(h, 0), 0);
    keep[5] = tl_new(h, &tl_Node, 5);
    assert_int_equal(collections_of(h, 0), 1);
    assert_int_equal(collections_of(h, 1), 0);
    tl_assert_counts(h, 0, 1, 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(tl_generation_of(h, keep[i]), 1);
    assert_int_equal(tl_generation_of(h, keep[5]), 0);
    tl_check(h);
    rcgc_disable(h);
    for (int i = 0; i < 6; i++)
        rcgc_decref(keep[i]);
    rcgc_decref(leaf);
    tl_heap_free(h);
}

/* set_threshold / get_threshold round trip. */
static void test_toggling_thresholds_round_trip(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    rcgc_set_threshold(h, 1, 2, 3);
    size_t t[3];
    rcgc_get_threshold(h, t);
    assert_int_equal(t[0], 1);
    assert_int_equal(t[1], 2);
    assert_int_equal(t[2], 3);
    rcgc_set_threshold(h, 700, 10, 10);
    rcgc_get_threshold(h, t);
    assert_int_equal(t[0], 700);
    assert_int_equal(t[1], 10);
    assert_int_equal(t[2], 10);
    tl_heap_free(h);
}

/* The 25% rule: an automatic collection of generation 2 is skipped while
 * long_lived_pending < long_lived_total / 4. With thresholds (1, 0, 0) every second
 * allocation collects; the generations chosen follow CPython's gc_collect_generations:
 *   total 16 (16/4 = 4): gen 0, 1, 0, 1 (pending 3 < 4: skipped), then 2 (pending 7);
 *   total 8  (8/4 = 2):  gen 0, 1, then 2 already (pending 3 >= 2). */
static int g_gens[16];
static int g_ngens;

static void gen_cb(rcgc_heap *h, int phase, const rcgc_collect_info *info, void *arg)
{
    (void)h;
    (void)arg;
    if (phase == RCGC_PHASE_START && g_ngens < 16)
        g_gens[g_ngens++] = info->generation;
}

static void run_long_lived(int total, const int *expect, int nexpect, int allocations)
{
    rcgc_heap *h = tl_heap_new();
    tl_node *old[16], *young[12];
    for (int i = 0; i < total; i++)
        old[i] = tl_new(h, &tl_Node, 1);
    assert_int_equal(rcgc_collect(h, 2), 0); /* long_lived_total = total, pending = 0 */
    g_ngens = 0;
    assert_int_equal(rcgc_add_callback(h, gen_cb, NULL), 0);
    rcgc_set_threshold(h, 1, 0, 0);
    rcgc_enable(h);
    for (int i = 0; i < allocations; i++)
        young[i] = tl_new(h, &tl_Node, 2);
    rcgc_disable(h);
    tl_check(h);
    for (int i = 0; i < g_ngens; i++)
        print_message("total %d: automatic collection %d of generation %d\n", total, i,
                      g_gens[i]);
    assert_int_equal(g_ngens, nexpect);
    for (int i = 0; i < nexpect; i++)
        assert_int_equal(g_gens[i], expect[i]);
    for (int i = 0; i < allocations; i++)
        rcgc_decref(young[i]);
    for (int i = 0; i < total; i++)
        rcgc_decref(old[i]);
    assert_int_equal(rcgc_remove_callback(h, gen_cb, NULL), 0);
    tl_heap_free(h);
}

static void test_toggling_long_lived_rule(void **state)
{
    (void)state;
#ifdef RCGC_GC_STRESS
    skip(); /* stress collects at every container allocation: the counts differ by design */
#endif
    const int expect16[5] = {0, 1, 0, 1, 2};
    run_long_lived(16, expect16, 5, 10);
    const int expect8[3] = {0, 1, 2};
    run_long_lived(8, expect8, 3, 6);
}

/* Manual collect(2) is never subject to the 25% rule. */
static void test_toggling_manual_full_collection_not_blocked(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    tl_node *keep[40];
    for (int i = 0; i < 40; i++)
        keep[i] = tl_new(h, &tl_Node, 1);
    assert_int_equal(rcgc_collect(h, 2), 0); /* total 40, pending 0 */
    tl_node *n = tl_new(h, &tl_Node, 2);
    tl_self_loop(n, 0);
    rcgc_decref(n);
    assert_int_equal(collections_of(h, 2), 1);
    assert_int_equal(rcgc_collect(h, 2), 1);
    assert_int_equal(collections_of(h, 2), 2);
    for (int i = 0; i < 40; i++)
        rcgc_decref(keep[i]);
    tl_check(h);
    tl_heap_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_toggling_bug1055820c),
        cmocka_unit_test(test_toggling_bug1055820d),
        cmocka_unit_test(test_toggling_indirect_calls_with_gc_disabled),
        cmocka_unit_test(test_toggling_threshold_zero),
        cmocka_unit_test(test_toggling_count_semantics),
        cmocka_unit_test(test_toggling_trigger_is_strictly_greater),
        cmocka_unit_test(test_toggling_thresholds_round_trip),
        cmocka_unit_test(test_toggling_long_lived_rule),
        cmocka_unit_test(test_toggling_manual_full_collection_not_blocked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
