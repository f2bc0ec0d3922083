/* test_analyze.c: the analyses the inspector runs at a safepoint (rcgc/snapshot.h):
 * id validation, one object's facts, its refcount explained, and the shortest path
 * from an object held from outside the heap. */
#include <stdlib.h>
#include <string.h>

#include "testlib.h"

#include <rcgc/snapshot.h>

static void test_analyze_object_valid(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    tl_node *a = tl_new(h, &tl_Node, 1);
    tl_node *leaf = tl_new(h, &tl_Leaf, 2);
    int on_stack = 0;
    assert_true(rcgc__object_valid(h, a));
    assert_true(rcgc__object_valid(h, leaf)); /* untracked objects are objects too */
    assert_false(rcgc__object_valid(h, NULL));
    assert_false(rcgc__object_valid(h, &on_stack));
    assert_false(rcgc__object_valid(h, (char *)a + 16)); /* inside an object */
    assert_false(rcgc__object_valid(h, (char *)a + 1));  /* misaligned */
    assert_false(rcgc__object_valid(h, (void *)(uintptr_t)0xfffffffffffffff0u));
    rcgc_heap *other = tl_heap_new();
    assert_false(rcgc__object_valid(other, a)); /* another heap's object */
    rcgc_heap_free(other);
    rcgc_freeze(h);
    assert_true(rcgc__object_valid(h, a)); /* frozen: still an object */
    rcgc_unfreeze(h);
    rcgc_decref(a);
    rcgc_decref(leaf);
    tl_heap_free(h);
}

static void test_analyze_describe(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    tl_node *a = tl_new(h, &tl_Node, 1);
    void *w = rcgc_weakref_new(h, a, NULL, NULL);
    rcgc__object_info info;
    rcgc__object_describe(a, &info);
    assert_ptr_equal(info.type, &tl_Node);
    assert_int_equal(info.refcount, 1);
    assert_int_equal(info.generation, 0);
    assert_string_equal(info.where, "0");
    assert_true(info.tracked);
    assert_false(info.finalized);
    assert_int_equal(info.bytes, tl_Node.size + sizeof(rcgc_head));
    assert_non_null(strstr(info.file, "testlib.c"));
    assert_true(info.line > 0);
    assert_int_equal(info.weakrefs, 1);
    assert_int_equal(rcgc_collect(h, 2), 0);
    rcgc__object_describe(a, &info);
    assert_int_equal(info.generation, 2);
    rcgc_untrack(a);
    rcgc__object_describe(a, &info);
    assert_int_equal(info.generation, -1);
    assert_string_equal(info.where, "untracked");
    assert_false(info.tracked);
    rcgc_freeze(h);
    rcgc__object_describe(w, &info);
    assert_string_equal(info.where, "frozen");
    rcgc_unfreeze(h);
    rcgc_decref(w);
    rcgc_decref(a);
    tl_heap_free(h);
}

/* Two heap objects and the test (C code) hold the target: refcount 3, 2 from the heap.
 * A container without traverse holds it invisibly: that counts as outside. */
static void test_analyze_refcount_explained(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    tl_node *t = tl_new(h, &tl_Leaf, 9);
    tl_node *p1 = tl_new(h, &tl_Node, 1), *p2 = tl_new(h, &tl_Node, 2);
    tl_node *hidden = tl_new(h, &tl_ContainerNoGC, 3);
    tl_set(p1, 0, t);
    tl_set(p2, 0, t);
    tl_set(p2, 1, t); /* two references from one object count twice */
    tl_set(hidden, 0, t);
    assert_int_equal(rcgc_refcount(t), 5);
    assert_int_equal(rcgc__refs_from_heap(h, t), 3);
    rcgc_untrack(p1); /* untracked containers still hold references */
    assert_int_equal(rcgc__refs_from_heap(h, t), 3);
    tl_unset(p2, 1);
    assert_int_equal(rcgc__refs_from_heap(h, t), 2);
    rcgc_decref(hidden);
    rcgc_decref(p1);
    rcgc_decref(p2);
    rcgc_decref(t);
    tl_heap_free(h);
}

typedef struct {
    const void *steps[16];
    size_t n;
} path_rec;

static int record_step(const void *obj, void *arg)
{
    path_rec *p = arg;
    if (p->n < 16)
        p->steps[p->n] = obj;
    p->n++;
    return 0;
}

/* root (held by the test) -> a -> b -> target, and a longer way round through c, d. */
static void test_analyze_shortest_path(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    tl_node *root = tl_new(h, &tl_Node, 1);
    tl_node *a = tl_new(h, &tl_Node, 2), *b = tl_new(h, &tl_Node, 3);
    tl_node *c = tl_new(h, &tl_Node, 4), *d = tl_new(h, &tl_Node, 5);
    tl_node *target = tl_new(h, &tl_Node, 6);
    tl_set_steal(root, 0, c);
    tl_set_steal(c, 0, d);
    tl_set(d, 0, target);
    tl_set_steal(root, 1, a);
    tl_set_steal(a, 0, b);
    tl_set(b, 0, target);
    rcgc_decref(target); /* held only through the heap now */
    tl_self_loop(target, 1);
    path_rec p = {0};
    int outcome = -1;
    assert_int_equal(rcgc__path_from_root(h, target, 1000000000u, record_step, &p, &outcome),
                     0);
    assert_int_equal(outcome, RCGC__PATH_FOUND);
    assert_int_equal(p.n, 4);
    assert_ptr_equal(p.steps[0], root);
    assert_ptr_equal(p.steps[3], target);
    assert_true(p.steps[1] == a || p.steps[1] == c);
    /* A root's path is itself. */
    p.n = 0;
    assert_int_equal(rcgc__path_from_root(h, root, 1000000000u, record_step, &p, &outcome), 0);
    assert_int_equal(outcome, RCGC__PATH_FOUND);
    assert_int_equal(p.n, 1);
    /* A step that stops the walk: its result comes back. */
    tl_unset(root, 0);
    tl_unset(root, 1); /* target, a, b, c, d: garbage cycles now, unreachable */
    p.n = 0;
    assert_int_equal(rcgc__path_from_root(h, target, 1000000000u, record_step, &p, &outcome),
                     0);
    assert_int_equal(outcome, RCGC__PATH_NONE);
    assert_int_equal(p.n, 0);
    assert_int_equal(rcgc_collect(h, 2), 1); /* target's self-loop */
    rcgc_decref(root);
    tl_heap_free(h);
}

/* A long chain and no budget: the walk gives up and says so. */
static void test_analyze_path_budget(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    tl_node *head = tl_new(h, &tl_Node, 0), *cur = head;
    for (int i = 1; i < 20000; i++) {
        tl_node *n = tl_new(h, &tl_Node, i);
        tl_set_steal(cur, 0, n);
        cur = n;
    }
    path_rec p = {0};
    int outcome = -1;
    assert_int_equal(rcgc__path_from_root(h, cur, 0, record_step, &p, &outcome), 0);
    assert_int_equal(outcome, RCGC__PATH_BUDGET);
    assert_int_equal(p.n, 0);
    assert_int_equal(rcgc__path_from_root(h, cur, 10000000000u, record_step, &p, &outcome), 0);
    assert_int_equal(outcome, RCGC__PATH_FOUND);
    assert_int_equal(p.n, 20000);
    rcgc_decref(head);
    tl_check(h);
    tl_heap_free(h);
}

typedef struct {
    size_t groups, sizes[8], objects;
} groups_rec;

static int record_group(void *const *members, size_t n, void *arg)
{
    groups_rec *g = arg;
    if (g->groups < 8)
        g->sizes[g->groups] = n;
    g->groups++;
    g->objects += n;
    (void)members;
    return 0;
}

/* Uncollectable: a legacy 2-cycle, and a legacy self-loop that reaches a plain node. */
static void test_analyze_garbage_groups(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    tl_node *a = tl_new(h, &tl_LegacyNode, 1), *b = tl_new(h, &tl_LegacyNode, 2);
    tl_node *c = tl_new(h, &tl_LegacyNode, 3), *d = tl_new(h, &tl_Node, 4);
    tl_set(a, 0, b);
    tl_set(b, 0, a);
    tl_self_loop(c, 0);
    tl_set(c, 1, d);
    rcgc_decref(a);
    rcgc_decref(b);
    rcgc_decref(c);
    rcgc_decref(d);
    assert_int_equal(rcgc_collect(h, 2), 4);
    assert_int_equal(rcgc_garbage_count(h), 3);
    groups_rec g = {0};
    bool truncated = true;
    assert_int_equal(rcgc__garbage_groups(h, 1000, record_group, &g, &truncated), 0);
    assert_false(truncated);
    assert_int_equal(g.groups, 3);
    assert_int_equal(g.objects, 4);
    size_t ones = 0, twos = 0;
    for (size_t i = 0; i < g.groups; i++) {
        ones += g.sizes[i] == 1;
        twos += g.sizes[i] == 2;
    }
    assert_int_equal(ones, 2);
    assert_int_equal(twos, 1);
    /* A cap: only the first objects, and the answer says it was cut. */
    g = (groups_rec){0};
    assert_int_equal(rcgc__garbage_groups(h, 2, record_group, &g, &truncated), 0);
    assert_true(truncated);
    assert_int_equal(g.objects, 2);
    /* Break the cycles by hand and let them go (as CPython's tests do). */
    tl_unset(a, 0);
    tl_unset(c, 0);
    rcgc_garbage_clear(h);
    assert_int_equal(rcgc_collect(h, 2), 0);
    tl_check(h);
    tl_heap_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_analyze_object_valid),
        cmocka_unit_test(test_analyze_describe),
        cmocka_unit_test(test_analyze_refcount_explained),
        cmocka_unit_test(test_analyze_shortest_path),
        cmocka_unit_test(test_analyze_path_budget),
        cmocka_unit_test(test_analyze_garbage_groups),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
