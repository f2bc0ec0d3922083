/* test_walks.c: get_objects, get_referrers, get_referents (catalogue #23, #34/#48, #35,
 * #49, #51, #55): what each walk visits, the visitor's stop value, and -1 (RCGC_EINVAL)
 * for a bad generation. */
#include "testlib.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const void *seen[32];
    int n;
    int stop_at; /* return stop_value at this visit (1-based); 0: never */
    int stop_value;
} collector;

static int collect_visit(void *obj, void *arg)
{
    collector *c = arg;
    if (c->n < 32)
        c->seen[c->n] = obj;
    c->n++;
    if (c->stop_at && c->n == c->stop_at)
        return c->stop_value;
    return 0;
}

/* #23 test_get_referents: what traverse visits, in its order; several objects give the
 * concatenation; objects of types without traverse give nothing. */
static void test_walks_get_referents(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    tl_node *leaves[5];
    for (int i = 0; i < 5; i++)
        leaves[i] = tl_new(h, &tl_Leaf, i);
    tl_node *list = tl_new(h, &tl_Node, 10); /* [1, 3, 5] */
    tl_set(list, 0, leaves[1]);
    tl_set(list, 1, leaves[3]);
    tl_set(list, 2, leaves[4]);
    collector c = {.n = 0};
    assert_int_equal(rcgc_get_referents(list, collect_visit, &c), 0);
    assert_int_equal(c.n, 3);
    assert_ptr_equal(c.seen[0], leaves[1]);
    assert_ptr_equal(c.seen[1], leaves[3]);
    assert_ptr_equal(c.seen[2], leaves[4]);

    tl_var *dict = tl_var_new(h, 11, 4); /* {1: 3, 5: 7} */
    for (size_t i = 0; i < 4; i++)
        tl_var_set(dict, i, leaves[i]);
    assert_int_equal(rcgc_get_referents(dict, collect_visit, &c), 0); /* appends */
    assert_int_equal(c.n, 7);
    for (int i = 0; i < 4; i++)
        assert_ptr_equal(c.seen[3 + i], leaves[i]);

    /* The same object twice is visited twice. */
    tl_set(list, 3, leaves[1]);
    c.n = 0;
    assert_int_equal(rcgc_get_referents(list, collect_visit, &c), 0);
    assert_int_equal(c.n, 4);
    assert_ptr_equal(c.seen[3], leaves[1]);

    /* Atomic (untracked) objects have no referents, even when they hold references. */
    tl_node *nogc = tl_new(h, &tl_ContainerNoGC, 12);
    tl_set(nogc, 0, leaves[0]);
    c.n = 0;
    assert_int_equal(rcgc_get_referents(leaves[0], collect_visit, &c), 0);
    assert_int_equal(rcgc_get_referents(nogc, collect_visit, &c), 0);
    assert_int_equal(c.n, 0);
    /* A weak reference has no strong referents. */
    void *w = tl_wr_new(h, list, NULL, NULL);
    assert_int_equal(rcgc_get_referents(w, collect_visit, &c), 0);
    assert_int_equal(c.n, 0);
    tl_check(h);
    rcgc_decref(w);
    rcgc_decref(nogc);
    rcgc_decref(list);
    rcgc_decref(dict);
    for (int i = 0; i < 5; i++)
        rcgc_decref(leaves[i]);
    tl_heap_free(h);
}

/* #49 test_get_referents_on_capsule: an untracked object of a type with traverse: no
 * crash; it reports what its traverse visits. */
static void test_walks_get_referents_untracked(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    tl_node *empty = tl_new(h, &tl_Node, 1);
    rcgc_untrack(empty);
    collector c = {.n = 0};
    assert_int_equal(rcgc_get_referents(empty, collect_visit, &c), 0);
    assert_int_equal(c.n, 0);
    tl_node *child = tl_new(h, &tl_Node, 2);
    tl_set(empty, 1, child);
    assert_int_equal(rcgc_get_referents(empty, collect_visit, &c), 0);
    assert_int_equal(c.n, 1);
    assert_ptr_equal(c.seen[0], child);
    /* ...but untracked objects are no referrers. */
    assert_int_equal(tl_referrers_count(h, child), 0);
    tl_check(h);
    rcgc_decref(child);
    rcgc_decref(empty);
    tl_heap_free(h);
}

/* A non-zero visitor result stops every walk and is returned. */
static void test_walks_visitor_stop_value(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    tl_node *target = tl_new(h, &tl_Leaf, 1);
    tl_node *n[4];
    for (int i = 0; i < 4; i++) {
        n[i] = tl_new(h, &tl_Node, 10 + i);
        tl_set(n[i], 0, target);
        tl_set(n[i], 1, target);
    }
    collector c = {.stop_at = 2, .stop_value = 42};
    assert_int_equal(rcgc_get_objects(h, -1, collect_visit, &c), 42);
    assert_int_equal(c.n, 2);
    c = (collector){.stop_at = 3, .stop_value = -7};
    assert_int_equal(rcgc_get_objects(h, 0, collect_visit, &c), -7);
    assert_int_equal(c.n, 3);
    c = (collector){.stop_at = 2, .stop_value = 5};
    assert_int_equal(rcgc_get_referrers(h, target, collect_visit, &c), 5);
    assert_int_equal(c.n, 2);
    c = (collector){.stop_at = 1, .stop_value = 9};
    assert_int_equal(rcgc_get_referents(n[0], collect_visit, &c), 9);
    assert_int_equal(c.n, 1);
    /* Without stopping: everything, return 0. */
    c = (collector){.n = 0};
    assert_int_equal(rcgc_get_objects(h, -1, collect_visit, &c), 0);
    assert_int_equal(c.n, 4);
    c = (collector){.n = 0};
    assert_int_equal(rcgc_get_referrers(h, target, collect_visit, &c), 0);
    assert_int_equal(c.n, 4); /* each referrer once, though it refers twice */
    for (int i = 0; i < 4; i++)
        rcgc_decref(n[i]);
    rcgc_decref(target);
    tl_heap_free(h);
}

/* #34 test_get_objects / #48 test_get_objects_generations: a survivor moves up one
 * generation per collection of its generation, and stays in 2. */
static void test_walks_get_objects_generations(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    assert_int_equal(rcgc_collect(h, 2), 0);
    tl_node *l = tl_new(h, &tl_Node, 1);
    tl_self_loop(l, 0);
    assert_int_equal(tl_generation_of(h, l), 0);
    assert_int_equal(rcgc_collect(h, 0), 0);
    assert_int_equal(tl_generation_of(h, l), 1);
    assert_int_equal(rcgc_collect(h, 1), 0);
    assert_int_equal(tl_generation_of(h, l), 2);
    assert_int_equal(rcgc_collect(h, 2), 0);
    assert_int_equal(tl_generation_of(h, l), 2);
    /* collect(0) and collect(1) do not touch older generations. */
    assert_int_equal(rcgc_collect(h, 0), 0);
    assert_int_equal(rcgc_collect(h, 1), 0);
    assert_int_equal(tl_generation_of(h, l), 2);
    /* Exactly one generation holds it. */
    int holders = 0;
    for (int g = 0; g < 3; g++) {
        collector c = {.n = 0};
        assert_int_equal(rcgc_get_objects(h, g, collect_visit, &c), 0);
        for (int i = 0; i < c.n && i < 32; i++)
            holders += c.seen[i] == l;
    }
    assert_int_equal(holders, 1);
    rcgc_decref(l);
    assert_int_equal(rcgc_collect(h, 2), 1);
    tl_heap_free(h);
}

/* #35 test_get_objects_arguments: all = the sum of the generations; bad generations
 * give -1. */
static void test_walks_get_objects_arguments(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    tl_node *a = tl_new(h, &tl_Node, 1);
    assert_int_equal(rcgc_collect(h, 1), 0);
    tl_node *b = tl_new(h, &tl_Node, 2);
    assert_int_equal(rcgc_collect(h, 0), 0);
    tl_node *c = tl_new(h, &tl_Node, 3);
    size_t all = tl_objects_in(h, -1);
    assert_int_equal(all, 3);
    assert_int_equal(all, tl_objects_in(h, 0) + tl_objects_in(h, 1) + tl_objects_in(h, 2));
    assert_int_equal(tl_objects_in(h, 0), 1);
    assert_int_equal(tl_objects_in(h, 1), 1);
    assert_int_equal(tl_objects_in(h, 2), 1);
    collector col = {.n = 0};
    const int bad[] = {3, 1000, -2, -1000, INT_MAX, INT_MIN};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(rcgc_get_objects(h, bad[i], collect_visit, &col), RCGC_EINVAL);
    assert_int_equal(col.n, 0);
    rcgc_decref(a);
    rcgc_decref(b);
    rcgc_decref(c);
    tl_heap_free(h);
}

/* get_objects visits tracked objects only (weak references included), never leaves,
 * untracked containers, or dead objects. */
static void test_walks_get_objects_what(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    tl_node *leaf = tl_new(h, &tl_Leaf, 1);
    tl_node *nogc = tl_new(h, &tl_ContainerNoGC, 2);
    tl_node *un = tl_new(h, &tl_Node, 3);
    rcgc_untrack(un);
    tl_node *n = tl_new(h, &tl_Node, 4);
    void *w = tl_wr_new(h, leaf, NULL, NULL);
    collector c = {.n = 0};
    assert_int_equal(rcgc_get_objects(h, -1, collect_visit, &c), 0);
    assert_int_equal(c.n, 2);
    assert_true((c.seen[0] == n && c.seen[1] == w) || (c.seen[0] == w && c.seen[1] == n));
    rcgc_decref(n);
    assert_int_equal(tl_objects_in(h, -1), 1);
    rcgc_decref(w);
    rcgc_decref(un);
    rcgc_decref(nogc);
    rcgc_decref(leaf);
    assert_int_equal(tl_objects_in(h, -1), 0);
    tl_heap_free(h);
}

/* #55 test_heap_size: the tracked-object total goes +1 with a new container, -1 when it
 * dies. */
static void test_walks_heap_size(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    size_t before = tl_objects_in(h, -1);
    tl_node *n = tl_new(h, &tl_Node, 1);
    assert_int_equal(tl_objects_in(h, -1), before + 1);
    rcgc_decref(n);
    assert_int_equal(tl_objects_in(h, -1), before);
    tl_heap_free(h);
}

/* get_referrers: each tracked object (gens 0..2) whose traverse visits the target, once;
 * untracked objects, containers without traverse and weak references are no referrers. */
static void test_walks_get_referrers(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    tl_node *t = tl_new(h, &tl_Node, 1);
    tl_node *a = tl_new(h, &tl_Node, 2);
    tl_set(a, 0, t);
    tl_set(a, 2, t);
    tl_var *v = tl_var_new(h, 3, 3);
    tl_var_set(v, 2, t);
    tl_node *un = tl_new(h, &tl_Node, 4);
    tl_set(un, 0, t);
    rcgc_untrack(un);
    tl_node *nogc = tl_new(h, &tl_ContainerNoGC, 5);
    tl_set(nogc, 0, t);
    void *w = tl_wr_new(h, t, NULL, NULL);
    tl_self_loop(t, 3);                      /* t refers to itself */
    assert_int_equal(rcgc_collect(h, 0), 0); /* spread over generations */
    tl_node *b = tl_new(h, &tl_Node, 6);
    tl_set(b, 1, t);
    collector c = {.n = 0};
    assert_int_equal(rcgc_get_referrers(h, t, collect_visit, &c), 0);
    assert_int_equal(c.n, 4);
    const void *expect[4] = {a, v, t, b};
    for (int i = 0; i < 4; i++) {
        int found = 0;
        for (int j = 0; j < 4; j++)
            found += c.seen[j] == expect[i];
        assert_int_equal(found, 1);
    }
    assert_int_equal(tl_referrers_count(h, a), 0);
    assert_int_equal(rcgc_get_referrers(h, t, NULL, NULL), RCGC_EINVAL);
    tl_check(h);
    rcgc_decref(w);
    tl_unset(t, 3);
    rcgc_decref(a);
    rcgc_decref(v);
    rcgc_decref(un);
    rcgc_decref(nogc);
    rcgc_decref(b);
    assert_int_equal(tl_referrers_count(h, t), 0);
    rcgc_decref(t);
    tl_check(h);
    tl_heap_free(h);
}

/* #51 test_get_objects_during_gc: inside a finalizer that runs during a collection,
 * get_objects does not visit the dying object and get_referrers(self) visits nothing. */
static int g_during_self_seen, g_during_referrers, g_during_rc, g_during_calls;

static int during_visit(void *obj, void *arg)
{
    if (obj == arg)
        g_during_self_seen++;
    return 0;
}

static int count_visit(void *obj, void *arg)
{
    (void)obj;
    (*(int *)arg)++;
    return 0;
}

static void walk_in_finalizer(tl_node *self)
{
    rcgc_heap *h = rcgc_heap_of(self);
    g_during_calls++;
    g_during_rc |= rcgc_get_objects(h, -1, during_visit, self);
    for (int g = 0; g < 3; g++)
        g_during_rc |= rcgc_get_objects(h, g, during_visit, self);
    g_during_rc |= rcgc_get_referrers(h, self, count_visit, &g_during_referrers);
}

static void test_walks_get_objects_during_gc(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    g_during_self_seen = g_during_referrers = g_during_rc = g_during_calls = 0;
    tl_node *keep = tl_new(h, &tl_Node, 9); /* something visible */
    tl_node *obj = tl_new(h, &tl_FinNode, 1);
    obj->on_finalize = walk_in_finalizer;
    tl_self_loop(obj, 0); /* obj.cycle = obj */
    rcgc_decref(obj);
    assert_int_equal(rcgc_collect(h, 2), 1);
    tl_check(h);
    assert_int_equal(g_during_calls, 1);
    assert_int_equal(g_during_rc, 0);
    assert_int_equal(g_during_self_seen, 0);
    assert_int_equal(g_during_referrers, 0);
    rcgc_decref(keep);
    tl_heap_free(h);
}

/* A collection of generation 1 reserves room in generation 2's array for its
 * survivors; a finalizer that walks generation 2 while its objects are resident puts
 * them back into that array, and must not use the room up: the resurrected objects are
 * pushed into it afterwards. Several young counts, so that one of them fills the grown
 * array exactly (the ASan build sees the write past its end). */
static void *g_resurrected[16];
static size_t g_nresurrected;

static void walk_and_resurrect(tl_node *self)
{
    int n = 0;
    if (g_nresurrected == 0)
        assert_int_equal(rcgc_get_objects(rcgc_heap_of(self), 2, count_visit, &n), 0);
    assert_true(g_nresurrected < sizeof g_resurrected / sizeof *g_resurrected);
    rcgc_incref(self);
    g_resurrected[g_nresurrected++] = self;
}

static void test_walks_resident_walk_during_young_collection(void **state)
{
    (void)state;
    enum { OLD = 8000, PAIRS = 8 };
    for (int young = 150; young <= 260; young += 2) {
        rcgc_heap *h = tl_heap_new();
        rcgc_set_threshold(h, 0, 10, 10);
        void **objs = calloc(OLD + (size_t)young, sizeof *objs);
        assert_non_null(objs);
        for (int i = 0; i < OLD; i++)
            objs[i] = tl_new(h, &tl_Node, i);
        rcgc_collect(h, 2); /* generation 2 settles: its objects become resident */
        for (int i = 0; i < young; i++)
            objs[OLD + i] = tl_new(h, &tl_Node, i);
        g_nresurrected = 0;
        for (int i = 0; i < PAIRS; i++) {
            tl_node *a = tl_new(h, &tl_FinNode, i), *b = tl_new(h, &tl_FinNode, i);
            a->on_finalize = b->on_finalize = walk_and_resurrect;
            tl_set(a, 0, b);
            tl_set(b, 0, a);
            rcgc_decref(a);
            rcgc_decref(b);
        }
        assert_int_equal(rcgc_collect(h, 1), 0); /* all resurrected */
        assert_int_equal(g_nresurrected, 2 * PAIRS);
        tl_check(h);
        for (size_t i = 0; i < g_nresurrected; i++)
            rcgc_decref(g_resurrected[i]);
        for (int i = 0; i < OLD + young; i++)
            rcgc_decref(objs[i]);
        free(objs);
        tl_heap_free(h);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_walks_get_referents),
        cmocka_unit_test(test_walks_get_referents_untracked),
        cmocka_unit_test(test_walks_visitor_stop_value),
        cmocka_unit_test(test_walks_get_objects_generations),
        cmocka_unit_test(test_walks_get_objects_arguments),
        cmocka_unit_test(test_walks_get_objects_what),
        cmocka_unit_test(test_walks_heap_size),
        cmocka_unit_test(test_walks_get_referrers),
        cmocka_unit_test(test_walks_get_objects_during_gc),
        cmocka_unit_test(test_walks_resident_walk_during_young_collection),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
