/* test_resident.c: the oldest generation without array entries. After a full collection
 * that finds generation 2 to be at least half of the pool objects, its pool objects are
 * resident: found by scanning the arenas, not listed. These tests watch that through
 * the memory the heap asks its allocator for (an 8-byte entry per listed object) and
 * check that nothing else changes: collections, deaths, walks that free, freezing,
 * var-size and large objects, ids from the network, heap_free, memory exhaustion.
 * rcgc__heap_check verifies after each step that the arenas hold exactly the counted
 * residents and that their refcounts cover the references to them. */
#include <string.h>

#include <rcgc/snapshot.h>

#include "fault_alloc.h"
#include "testlib.h"

#define N 20000 /* long-lived nodes: 160 KB of array entries when listed */

static fault_alloc g_fa;

/* A heap whose every byte (arenas included) comes from g_fa. */
static rcgc_heap *counted_heap(bool pools)
{
    fault_alloc_init(&g_fa);
    rcgc_heap_options o = {.name = "resident",
                           .ignore_environment = true,
                           .allocator = fault_alloc_hooks(&g_fa),
                           .disable_pools = !pools};
    rcgc_heap *h = tl_heap_new_with(&o);
    assert_non_null(h);
    rcgc_disable(h);
    return h;
}

static void counted_heap_free(rcgc_heap *h)
{
    tl_heap_free(h);
    assert_int_equal(g_fa.live_blocks, 0); /* residents were released too */
    assert_true(fault_alloc_clean(&g_fa));
    fault_alloc_fini(&g_fa);
}

/* n nodes, each slot 0 the next: the caller holds the head (one reference). */
static tl_node *chain(rcgc_heap *h, int n, int id0)
{
    tl_node *head = NULL;
    for (int i = n - 1; i >= 0; i--) {
        tl_node *x = tl_new(h, &tl_Node, id0 + i);
        if (head != NULL)
            tl_set_steal(x, 0, head);
        head = x;
    }
    return head;
}

static int count_visit(void *obj, void *arg)
{
    (void)obj;
    (*(size_t *)arg)++;
    return 0;
}

/* Residency shows in memory: a walk of generation 2 lists the residents again (8 bytes
 * each), the next full collection makes them resident and gives the array back. */
static void test_resident_memory(void **state)
{
    (void)state;
    rcgc_heap *h = counted_heap(true);
    tl_node *head = chain(h, N, 0);
    assert_int_equal(rcgc_collect(h, 2), 0);
    tl_check(h);
    size_t settled = g_fa.live_bytes;
    assert_int_equal(tl_objects_in(h, 2), N); /* materializes */
    tl_check(h);
    size_t listed = g_fa.live_bytes;
    assert_true(listed >= settled + N * sizeof(void *));
    assert_int_equal(rcgc_collect(h, 2), 0);
    tl_check(h);
    assert_true(g_fa.live_bytes + N * sizeof(void *) <= listed);
    assert_true(g_fa.live_bytes <= settled + 4096);
    assert_int_equal(tl_objects_in(h, 2), N);
    rcgc_decref(head);
    tl_check(h);
    assert_int_equal(tl_objects_in(h, 2), 0);
    counted_heap_free(h);
}

/* Without pools every object keeps its entry: a walk costs no memory. */
static void test_resident_not_without_pools(void **state)
{
    (void)state;
    rcgc_heap *h = counted_heap(false);
    tl_node *head = chain(h, N, 0);
    assert_int_equal(rcgc_collect(h, 2), 0);
    size_t before = g_fa.live_bytes;
    assert_int_equal(tl_objects_in(h, 2), N);
    assert_int_equal(g_fa.live_bytes, before);
    rcgc_decref(head);
    tl_check(h);
    counted_heap_free(h);
}

/* A few containers among many untracked objects stay listed: finding them by scanning
 * every pool block would cost more than their entries. */
static void test_resident_not_when_few(void **state)
{
    (void)state;
    rcgc_heap *h = counted_heap(true);
    enum { LEAVES = 4 * N, NODES = N / 2 };
    tl_node **leaves = test_malloc(LEAVES * sizeof *leaves);
    for (int i = 0; i < LEAVES; i++)
        leaves[i] = tl_new(h, &tl_Leaf, i);
    tl_node *head = chain(h, NODES, 0);
    assert_int_equal(rcgc_collect(h, 2), 0);
    size_t before = g_fa.live_bytes;
    assert_int_equal(tl_objects_in(h, 2), NODES);
    assert_int_equal(g_fa.live_bytes, before); /* nothing was resident */
    /* Once the leaves are gone, generation 2 is most of the heap: it settles. */
    for (int i = 0; i < LEAVES; i++)
        rcgc_decref(leaves[i]);
    test_free(leaves);
    assert_int_equal(rcgc_collect(h, 2), 0);
    size_t settled = g_fa.live_bytes;
    assert_int_equal(tl_objects_in(h, 2), NODES);
    assert_true(g_fa.live_bytes >= settled + NODES * sizeof(void *));
    rcgc_decref(head);
    tl_check(h);
    counted_heap_free(h);
}

/* Cycles among residents are found by the next full collection; those held survive;
 * residents die by refcount; a collection of generation 1 makes its survivors resident. */
static void test_resident_collections(void **state)
{
    (void)state;
    rcgc_heap *h = counted_heap(true);
    tl_node *held = chain(h, N, 0);
    tl_node *ring = chain(h, 1000, N);
    tl_node *last = ring;
    while (last->slot[0] != NULL)
        last = last->slot[0];
    tl_set(last, 0, ring); /* a cycle of 1000 */
    assert_int_equal(rcgc_collect(h, 2), 0);
    tl_check(h);
    rcgc_decref(ring); /* the cycle is resident garbage now */
    tl_check(h);
    assert_int_equal(rcgc_collect(h, 1), 0); /* does not look at generation 2 */
    assert_int_equal(rcgc_collect(h, 2), 1000);
    tl_check(h);
    /* Death by refcount of the tail of the resident chain (no walk in between: the
     * check counts the residents in the arenas). */
    tl_node *mid = held;
    for (int i = 0; i < N / 2; i++)
        mid = mid->slot[0];
    tl_unset(mid, 0); /* the N/2 - 1 nodes after mid die */
    tl_check(h);
    /* New objects reach generation 2 through generation 1 while settled. */
    tl_node *young = chain(h, 500, 2 * N);
    assert_int_equal(rcgc_collect(h, 0), 0);
    size_t before = g_fa.live_bytes;
    assert_int_equal(rcgc_collect(h, 1), 0);
    tl_check(h);
    assert_true(g_fa.live_bytes <= before); /* no entries for the 500 */
    assert_int_equal(tl_generation_of(h, young), 2);
    assert_int_equal(tl_objects_in(h, 2), N / 2 + 1 + 500);
    rcgc_decref(young);
    rcgc_decref(held);
    tl_check(h);
    assert_int_equal(rcgc_collect(h, 2), 0);
    assert_int_equal(tl_objects_in(h, -1), 0);
    counted_heap_free(h);
}

/* A walk's visitor that frees residents: they leave holes, the walk goes on. */
static int free_next(void *obj, void *arg)
{
    size_t *seen = arg;
    (*seen)++;
    tl_node *x = obj;
    if (rcgc_type_of(obj) == &tl_Node && x->slot[1] != NULL)
        tl_unset(x, 1); /* drops a resident leaf-chain */
    return 0;
}

static void test_resident_walk_frees(void **state)
{
    (void)state;
    rcgc_heap *h = counted_heap(true);
    tl_node *head = chain(h, N, 0);
    for (tl_node *x = head; x != NULL; x = x->slot[0])
        if (x->id % 100 == 0)
            tl_set_steal(x, 1, tl_new(h, &tl_Node, -1));
    assert_int_equal(rcgc_collect(h, 2), 0);
    tl_check(h);
    size_t seen = 0;
    assert_int_equal(rcgc_get_objects(h, 2, free_next, &seen), 0);
    assert_true(seen >= N && seen <= N + N / 100);
    tl_check(h);
    assert_int_equal(tl_objects_in(h, 2), N);
    rcgc_decref(head);
    counted_heap_free(h);
}

/* Var-size objects in the pools are resident (their prefix carries a mark); large ones
 * stay listed; ids are checked against the arenas without reading through them. */
static void test_resident_var_and_large(void **state)
{
    (void)state;
    rcgc_heap *h = counted_heap(true);
    tl_node *head = chain(h, N, 0);
    tl_var *small[8], *large[4];
    for (size_t i = 0; i < 8; i++) {
        small[i] = tl_var_new(h, 100 + (int)i, i + 1); /* 8..64 extra bytes: pools */
        tl_var_set(small[i], 0, head);
    }
    for (size_t i = 0; i < 4; i++)
        large[i] = tl_var_new(h, 200 + (int)i, 100); /* over 512 bytes: the hooks */
    tl_var_set(large[0], 99, small[7]);
    assert_int_equal(rcgc_collect(h, 2), 0);
    tl_check(h);
    for (size_t i = 0; i < 8; i++) {
        assert_true(rcgc__object_valid(h, small[i]));
        assert_int_equal(rcgc_refcount(small[i]), i == 7 ? 2 : 1);
    }
    for (size_t i = 0; i < 4; i++)
        assert_true(rcgc__object_valid(h, large[i]));
    assert_true(rcgc__object_valid(h, head));
    assert_true(rcgc__object_valid(h, head->slot[0]));
    /* Not objects: inside one, the prefix of a var one, a header, misaligned. */
    assert_false(rcgc__object_valid(h, (char *)head + 16));
    assert_false(rcgc__object_valid(h, (char *)small[0] - 16));
    assert_false(rcgc__object_valid(h, (char *)small[0] - 32));
    assert_false(rcgc__object_valid(h, (char *)head + 8));
    /* A freed block: the collector no longer knows it. */
    tl_node *second = head->slot[0];
    void *gone = second->slot[0];
    rcgc_incref(gone);
    tl_set(second, 0, ((tl_node *)gone)->slot[0]);
    rcgc_decref(gone);
    assert_false(rcgc__object_valid(h, gone));
    tl_check(h);
    /* The analyses see the residents. */
    assert_int_equal(rcgc__refs_from_heap(h, head), 8);
    assert_int_equal(tl_referrers_count(h, head), 8);
    assert_int_equal(tl_objects_in(h, 2), (N - 1) + 8 + 4);
    for (size_t i = 0; i < 8; i++)
        rcgc_decref(small[i]);
    for (size_t i = 0; i < 4; i++)
        rcgc_decref(large[i]);
    rcgc_decref(head);
    tl_check(h);
    counted_heap_free(h);
}

/* Freezing takes the residents along; unfreezing brings them back. */
static void test_resident_freeze(void **state)
{
    (void)state;
    rcgc_heap *h = counted_heap(true);
    tl_node *head = chain(h, N, 0);
    assert_int_equal(rcgc_collect(h, 2), 0);
    rcgc_freeze(h);
    tl_check(h);
    assert_int_equal(rcgc_get_freeze_count(h), N);
    assert_int_equal(tl_objects_in(h, 2), 0);
    rcgc_unfreeze(h);
    tl_check(h);
    assert_int_equal(rcgc_get_freeze_count(h), 0);
    assert_int_equal(tl_objects_in(h, 2), N);
    assert_int_equal(rcgc_collect(h, 2), 0);
    tl_check(h);
    rcgc_decref(head);
    counted_heap_free(h);
}

/* heap_free releases residents it never listed (the fault allocator sees every block
 * come back, in counted_heap_free). */
static void test_resident_heap_free(void **state)
{
    (void)state;
    rcgc_heap *h = counted_heap(true);
    tl_node *head = chain(h, N, 0);
    assert_int_equal(rcgc_collect(h, 2), 0);
    (void)head; /* still alive: heap_free reports it on stderr and releases it */
    counted_heap_free(h);
}

/* Out of memory while listing the residents again: the walk and the full collection
 * fail with RCGC_ENOMEM and nothing changes; later they succeed. */
static void test_resident_enomem(void **state)
{
    (void)state;
    rcgc_heap *h = counted_heap(true);
    tl_node *head = chain(h, N, 0);
    assert_int_equal(rcgc_collect(h, 2), 0);
    size_t n = 0;
    fault_alloc_fail_from(&g_fa, 0);
    assert_int_equal(rcgc_get_objects(h, 2, count_visit, &n), RCGC_ENOMEM);
    assert_int_equal(n, 0);
    assert_int_equal(rcgc_collect(h, 2), RCGC_ENOMEM);
    assert_false(rcgc__object_valid(h, NULL));
    assert_true(rcgc__object_valid(h, head)); /* needs no memory */
    assert_true(fault_alloc_disarm(&g_fa));
    tl_check(h);
    assert_int_equal(tl_objects_in(h, 2), N);
    assert_int_equal(rcgc_collect(h, 2), 0);
    rcgc_decref(head);
    tl_check(h);
    counted_heap_free(h);
}

/* A refcount too small (a C caller's missing incref) among residents: the collection
 * reports it, frees nothing, and every candidate in place survives, still resident. */
static void test_resident_refcount_too_small(void **state)
{
    (void)state;
    rcgc_heap *h = counted_heap(true);
    tl_node *head = chain(h, N, 0);
    tl_node *victim = tl_new(h, &tl_Node, -1);
    tl_set(head, 1, victim);
    tl_set(head->slot[0], 1, victim);
    rcgc_decref(victim); /* the two nodes hold it */
    assert_int_equal(rcgc_collect(h, 2), 0);
    tl_check(h);
    size_t settled = g_fa.live_bytes;
    rcgc_decref(victim); /* the bug */
    tl_panic_expect(true);
    tl_panic_reset();
    assert_int_equal(rcgc_collect(h, 2), 0);
    assert_true(tl_panic_count() >= 1);
    assert_non_null(strstr(tl_panic_message(tl_panic_count() - 1), "refcount is too small"));
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, -1), 0);
    assert_true(g_fa.live_bytes <= settled + 4096); /* they stayed resident */
    rcgc_incref(victim);                            /* repaired */
    tl_panic_reset();
    tl_panic_expect(false);
    tl_check(h);
    assert_int_equal(rcgc_collect(h, 2), 0);
    assert_int_equal(tl_objects_in(h, 2), N + 1);
    rcgc_decref(head);
    tl_check(h);
    counted_heap_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resident_memory),
        cmocka_unit_test(test_resident_not_without_pools),
        cmocka_unit_test(test_resident_not_when_few),
        cmocka_unit_test(test_resident_collections),
        cmocka_unit_test(test_resident_walk_frees),
        cmocka_unit_test(test_resident_var_and_large),
        cmocka_unit_test(test_resident_freeze),
        cmocka_unit_test(test_resident_heap_free),
        cmocka_unit_test(test_resident_enomem),
        cmocka_unit_test(test_resident_refcount_too_small),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
