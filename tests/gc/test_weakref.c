/* test_weakref.c: weak references (CPython's test_weakref.py, catalogue W1-W18) and the
 * 3.14.7 rules of DESIGN.md: in a collection every weak reference to trash, and every
 * weak reference that is itself trash, is cleared before any callback and any finalizer
 * runs; a callback runs only when its weak reference is not trash; weak references that
 * finalizers create to still-unreachable objects are cleared again, without callbacks,
 * before clear; on one object's death callbacks run newest first.
 *
 * A weak reference is an rcgc object (type "weakref") that holds no strong reference:
 * where a Python test relies on a weakref holding its callback (a bound method) alive,
 * the port makes the owner hold that object instead, and says so. */
#include "testlib.h"

#include <stdlib.h>
#include <string.h>

#define ID(n) ((void *)(intptr_t)(n))

/* W1 test_basic_callback, W2 test_multiple_callbacks, for several target types. */
static void check_basic_callback(const rcgc_type *type)
{
    rcgc_heap *h = tl_heap_new();
    tl_node *o = type == &tl_VarNode ? &tl_var_new(h, 1, 2)->base : tl_new(h, type, 1);
    void *ref = tl_wr_new(h, o, tl_wrcb_log, ID(7));
    void *got = rcgc_weakref_get(ref);
    assert_ptr_equal(got, o);
    assert_int_equal(rcgc_refcount(o), 2); /* a new reference */
    rcgc_decref(got);
    assert_int_equal(rcgc_weakref_count(o), 1);
    rcgc_decref(o);
    tl_check(h);
    assert_int_equal(tl_log_count(TL_EV_WRCB, 7), 1);
    for (size_t i = 0; i < tl_log_len(); i++)
        if (tl_log_at(i)->kind == TL_EV_WRCB)
            assert_ptr_equal(tl_log_at(i)->ptr, ref);
    assert_null(rcgc_weakref_get(ref));
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 1), 1);
    rcgc_decref(ref);
    tl_check(h);
    tl_heap_free(h);
}

static void test_weakref_basic_callback(void **state)
{
    (void)state;
    check_basic_callback(&tl_Node);
    check_basic_callback(&tl_Leaf);
    check_basic_callback(&tl_VarNode);
    check_basic_callback(&tl_LeafFin);
}

static void test_weakref_multiple_callbacks(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    tl_node *o = tl_new(h, &tl_Node, 1);
    void *r1 = tl_wr_new(h, o, tl_wrcb_log, ID(1));
    void *r2 = tl_wr_new(h, o, tl_wrcb_log, ID(2));
    assert_int_equal(rcgc_weakref_count(o), 2);
    rcgc_decref(o);
    assert_int_equal(tl_log_count(TL_EV_WRCB, -1), 2);
    assert_int_equal(tl_log_count(TL_EV_WRCB, 1), 1);
    assert_int_equal(tl_log_count(TL_EV_WRCB, 2), 1);
    assert_null(rcgc_weakref_get(r1));
    assert_null(rcgc_weakref_get(r2));
    rcgc_decref(r1);
    rcgc_decref(r2);
    tl_check(h);
    tl_heap_free(h);
}

/* W3 test_multiple_selfref_callbacks: each callback dereferences the other weak
 * reference: all are cleared before any callback runs. Refcount and collector paths. */
static void *g_other[2];
static int g_selfref_alive;

static void selfref_cb(void *ref, void *arg)
{
    (void)ref;
    void *o = rcgc_weakref_get(g_other[(intptr_t)arg]);
    if (o) {
        g_selfref_alive++;
        rcgc_decref(o);
    }
    tl_log_add(TL_EV_WRCB, (int)(intptr_t)arg, ref, o != NULL);
}

static void test_weakref_multiple_selfref_callbacks(void **state)
{
    (void)state;
    for (int cyclic = 0; cyclic < 2; cyclic++) {
        rcgc_heap *h = tl_heap_new();
        g_selfref_alive = 0;
        tl_node *c = tl_new(h, &tl_Node, 1);
        if (cyclic)
            tl_self_loop(c, 0);
        void *r0 = tl_wr_new(h, c, selfref_cb, ID(1)); /* self.ref; reads ref1 */
        void *r1 = tl_wr_new(h, c, selfref_cb, ID(0)); /* ref1; reads self.ref */
        g_other[0] = r0;
        g_other[1] = r1;
        rcgc_decref(c);
        if (cyclic)
            assert_int_equal(rcgc_collect(h, 2), 1);
        tl_check(h);
        assert_int_equal(tl_log_count(TL_EV_WRCB, -1), 2);
        assert_int_equal(g_selfref_alive, 0);
        rcgc_decref(r0);
        rcgc_decref(r1);
        tl_heap_free(h);
    }
}

/* W5 test_sf_bug_840829: a callback that runs a collection while its referent is being
 * deallocated (also when the referent dies inside another object's dealloc): the dying
 * objects must be invisible to that collection. */
static ssize_t g_840829[4];
static int g_840829_n;

static void collect_cb(void *ref, void *arg)
{
    (void)ref;
    g_840829[g_840829_n++] = rcgc_collect(arg, 2);
}

static void make_trash(rcgc_heap *h, int id)
{
    tl_node *g = tl_new(h, &tl_Node, id);
    tl_self_loop(g, 0);
    rcgc_decref(g);
}

static void test_weakref_sf_bug_840829(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    g_840829_n = 0;
    make_trash(h, 90);
    tl_node *c = tl_new(h, &tl_Node, 1);
    void *wr = tl_wr_new(h, c, collect_cb, h);
    rcgc_decref(c);
    tl_check(h);
    assert_int_equal(g_840829_n, 1);
    assert_int_equal(g_840829[0], 1); /* the trash, not c */
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 1), 1);
    rcgc_decref(wr);

    make_trash(h, 91);
    tl_node *c1 = tl_new(h, &tl_Node, 2);
    tl_set_steal(c1, 0, tl_new(h, &tl_Node, 3)); /* c1.i = C() */
    wr = tl_wr_new(h, c1->slot[0], collect_cb, h);
    tl_node *c2 = tl_new(h, &tl_Node, 4);
    tl_set(c2, 0, c1);
    rcgc_decref(c1); /* still alive because c2 points to it */
    rcgc_decref(c2);
    tl_check(h);
    assert_int_equal(g_840829_n, 2);
    assert_int_equal(g_840829[1], 1);
    for (int id = 2; id <= 4; id++)
        assert_int_equal(tl_log_count(TL_EV_DEALLOC, id), 1);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 90), 1);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 91), 1);
    rcgc_decref(wr);
    tl_check(h);
    tl_heap_free(h);
}

/* Callback of W6-W8: touches the object given as arg (must never run: it is trash). */
static void touch_cb(void *ref, void *arg)
{
    tl_node *self = arg;
    tl_log_add(TL_EV_WRCB, self->id, ref, self->slot[0] != NULL);
}

/* W6 test_callback_in_cycle: I holds a strong and a weak reference (with a callback
 * bound to I) to class J; everything is trash; the callback must not run. In Python the
 * weakref holds the bound method, which holds I: here I's self-loop stands for it. */
static void test_weakref_callback_in_cycle(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    tl_node *j = tl_new(h, &tl_Node, 1);
    tl_self_loop(j, 0); /* a class: its mro refers to it */
    tl_node *i = tl_new(h, &tl_Node, 2);
    tl_set(i, 0, j);                                  /* I.J = J */
    tl_set_steal(i, 1, tl_wr_new(h, j, touch_cb, i)); /* I.wr = ref(J, I.acallback) */
    tl_self_loop(i, 2);
    rcgc_decref(i);
    rcgc_decref(j);
    assert_int_equal(rcgc_collect(h, 2), 3);
    tl_check(h);
    assert_int_equal(tl_log_count(TL_EV_WRCB, -1), 0);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, -1), 2);
    tl_heap_free(h);
}

/* W7 test_callback_reachable_one_way: c1 is reachable from c2, not the reverse. */
static void test_weakref_callback_reachable_one_way(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    tl_node *c1 = tl_new(h, &tl_Node, 1);
    tl_node *c2 = tl_new(h, &tl_Node, 2);
    tl_self_loop(c2, 0);                                 /* c2.me = c2 */
    tl_set(c2, 1, c1);                                   /* c2.c1 = c1 */
    tl_set_steal(c2, 2, tl_wr_new(h, c1, touch_cb, c2)); /* c2.wr = ref(c1, c2.cb) */
    rcgc_decref(c1);
    rcgc_decref(c2);
    assert_int_equal(rcgc_collect(h, 2), 3);
    tl_check(h);
    assert_int_equal(tl_log_count(TL_EV_WRCB, -1), 0);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, -1), 2);
    tl_heap_free(h);
}

/* W8 test_callback_different_classes: as W7 with c1 of another type and c2's "class"
 * (a cycle) trash as well. */
static void test_weakref_callback_different_classes(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    tl_var *c1 = tl_var_new(h, 1, 1);
    tl_node *klass = tl_new(h, &tl_Node, 3);
    tl_self_loop(klass, 0);
    tl_node *c2 = tl_new(h, &tl_Node, 2);
    tl_self_loop(c2, 0);
    tl_set(c2, 1, c1);
    tl_set_steal(c2, 2, tl_wr_new(h, c1, touch_cb, c2));
    tl_set(c2, 3, klass);
    rcgc_decref(c1);
    rcgc_decref(c2);
    rcgc_decref(klass);
    assert_int_equal(rcgc_collect(h, 2), 4);
    tl_check(h);
    assert_int_equal(tl_log_count(TL_EV_WRCB, -1), 0);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, -1), 3);
    tl_heap_free(h);
}

/* W9 test_callback_in_cycle_resurrection: the trash weak references' callbacks are
 * suppressed; the external weak reference to the class (trash) runs its callback. */
static void test_weakref_callback_in_cycle_resurrection(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    tl_node *klass = tl_new(h, &tl_Node, 10);
    tl_self_loop(klass, 0);
    tl_node *c1 = tl_new(h, &tl_Node, 1);
    tl_node *c2 = tl_new(h, &tl_Node, 2);
    tl_set(c1, 0, klass);
    tl_set(c2, 0, klass);
    tl_set(c1, 1, c2); /* c1.c = c2 */
    tl_set(c2, 1, c1);
    tl_set_steal(c1, 2, tl_wr_new(h, c2, tl_wrcb_log, ID(1))); /* c1.wr = ref(c2, ...) */
    tl_set_steal(c2, 2, tl_wr_new(h, c1, tl_wrcb_log, ID(2)));
    void *wr = tl_wr_new(h, klass, tl_wrcb_log, ID(99)); /* "C went away" */
    rcgc_decref(c1);
    rcgc_decref(c2);
    rcgc_decref(klass);
    assert_int_equal(tl_log_count(TL_EV_WRCB, -1), 0); /* del isn't enough */
    assert_int_equal(rcgc_collect(h, 2), 5);
    tl_check(h);
    assert_int_equal(tl_log_count(TL_EV_WRCB, -1), 1);
    assert_int_equal(tl_log_count(TL_EV_WRCB, 99), 1);
    assert_false(tl_wr_alive(wr));
    tl_log_reset();
    assert_int_equal(rcgc_collect(h, 2), 0);
    assert_int_equal(tl_log_count(TL_EV_WRCB, -1), 0);
    rcgc_decref(wr);
    tl_heap_free(h);
}

/* W10 test_callbacks_on_callback: c <-> d; "callback" (a bound method of c, held by c
 * here) is trash; weak references held by c and d are trash and stay silent; the
 * external weak reference to the callback object runs its callback. */
static void test_weakref_callbacks_on_callback(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    tl_node *c = tl_new(h, &tl_Node, 1);
    tl_node *d = tl_new(h, &tl_Node, 2);
    tl_node *callback = tl_new(h, &tl_Node, 3);
    tl_set(c, 0, d); /* c.other = d */
    tl_set(d, 0, c);
    tl_set(callback, 0, c); /* the bound method's __self__ */
    tl_set(c, 1, callback);
    tl_set_steal(c, 2, tl_wr_new(h, d, tl_wrcb_log, ID(1)));        /* won't trigger */
    tl_set_steal(d, 1, tl_wr_new(h, callback, tl_wrcb_log, ID(1))); /* ditto */
    void *external_wr = tl_wr_new(h, callback, tl_wrcb_log, ID(2)); /* but this will */
    void *got = rcgc_weakref_get(external_wr);
    assert_ptr_equal(got, callback);
    rcgc_decref(got);
    rcgc_decref(callback);
    rcgc_decref(c);
    rcgc_decref(d);
    assert_int_equal(tl_log_count(TL_EV_WRCB, -1), 0);
    assert_int_equal(rcgc_collect(h, 2), 5);
    tl_check(h);
    assert_int_equal(tl_log_count(TL_EV_WRCB, -1), 1);
    assert_int_equal(tl_log_count(TL_EV_WRCB, 2), 1);
    assert_false(tl_wr_alive(external_wr));
    tl_log_reset();
    assert_int_equal(rcgc_collect(h, 2), 0);
    assert_int_equal(tl_log_count(TL_EV_WRCB, -1), 0);
    rcgc_decref(external_wr);
    tl_heap_free(h);
}

/* W11 test_gc_during_ref_creation: with thresholds (1, 1, 1) creating weak references
 * triggers collections while other weak references and trash exist. */
static void test_weakref_gc_during_ref_creation(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    rcgc_set_threshold(h, 1, 1, 1);
    assert_int_equal(rcgc_collect(h, 2), 0);
    rcgc_enable(h);
    tl_node *referenced = tl_new(h, &tl_Node, 1);
    tl_node *a = tl_new(h, &tl_Node, 2);
    tl_self_loop(a, 0);
    tl_set_steal(a, 1, tl_wr_new(h, referenced, NULL, NULL));
    rcgc_decref(a);
    a = tl_new(h, &tl_Node, 3);
    for (int i = 0; i < 20; i++) {
        void *w = tl_wr_new(h, referenced, tl_wrcb_log, ID(5));
        rcgc_decref(w);
    }
    rcgc_disable(h);
    tl_check(h);
    assert_true(rcgc_collect(h, 2) >= 0);
    tl_check(h);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 2), 1);
    assert_int_equal(rcgc_weakref_count(referenced), 0);
    rcgc_decref(a);
    rcgc_decref(referenced);
    assert_int_equal(tl_log_count(TL_EV_WRCB, -1), 0);
    tl_heap_free(h);
}

/* W12 test_ref_created_during_del: a finalizer makes a weak reference to the dying
 * object; it is cleared when the object dies (refcount path and collector path). */
static void *g_ref_from_del;

static void ref_self_in_finalizer(tl_node *self)
{
    void *w = rcgc_weakref_new(rcgc_heap_of(self), self, tl_wrcb_log, ID(8));
    rcgc_xdecref(g_ref_from_del);
    g_ref_from_del = w;
}

static void test_weakref_ref_created_during_del(void **state)
{
    (void)state;
    for (int cyclic = 0; cyclic < 2; cyclic++) {
        rcgc_heap *h = tl_heap_new();
        g_ref_from_del = NULL;
        tl_node *t = tl_new(h, &tl_FinNode, 1);
        t->on_finalize = ref_self_in_finalizer;
        if (cyclic)
            tl_self_loop(t, 0);
        void *w = tl_wr_new(h, t, NULL, NULL);
        rcgc_decref(t);
        if (cyclic)
            assert_int_equal(rcgc_collect(h, 2), 1);
        tl_check(h);
        assert_non_null(g_ref_from_del);
        assert_false(tl_wr_alive(g_ref_from_del));
        assert_false(tl_wr_alive(w));
        assert_int_equal(tl_log_count(TL_EV_DEALLOC, 1), 1);
        if (cyclic)
            assert_int_equal(tl_log_count(TL_EV_WRCB, -1), 0); /* cleared, no callback */
        rcgc_decref(g_ref_from_del);
        g_ref_from_del = NULL;
        rcgc_decref(w);
        tl_check(h);
        tl_heap_free(h);
    }
}

/* W13 test_classes: a weak reference with a callback to a cyclic object; the callback
 * receives the weak reference. */
static void test_weakref_classes(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    tl_node *k = tl_new(h, &tl_Node, 1);
    tl_self_loop(k, 0);
    void *a = tl_wr_new(h, k, tl_wrcb_log, ID(3));
    rcgc_decref(k);
    assert_int_equal(rcgc_collect(h, 2), 1);
    assert_null(rcgc_weakref_get(a));
    assert_int_equal(tl_log_count(TL_EV_WRCB, -1), 1);
    assert_ptr_equal(tl_log_at(0)->ptr, a);
    assert_int_equal(tl_log_at(0)->kind, TL_EV_WRCB);
    rcgc_decref(a);
    tl_check(h);
    tl_heap_free(h);
}

/* W14 test_trashcan_16602: a 100-long chain of deaths driven by weak-reference callbacks
 * (a WeakKeyDictionary mapping each node to the next); each node holds a weak reference
 * to its parent whose callback dereferences a weak reference to the node itself. A
 * node whose count dropped to 0 must never be returned. */
enum { N16602 = 100 };
static void *g_wself[N16602 + 1];  /* weakref to node k (test-held) */
static void *g_vals[N16602 + 1];   /* d's values: node k, strong */
static void *g_keyref[N16602 + 1]; /* d's keys: weakref to node k-1, callback drops val */
static int g_16602_bad, g_16602_keys;

static void wparent_cb(void *ref, void *arg)
{
    (void)ref;
    void *o = rcgc_weakref_get(g_wself[(intptr_t)arg]);
    if (o) {
        if (rcgc_refcount(o) < 2)
            g_16602_bad++;
        rcgc_decref(o);
    }
}

static void key_cb(void *ref, void *arg)
{
    (void)ref;
    intptr_t k = (intptr_t)arg;
    void *v = g_vals[k];
    g_vals[k] = NULL;
    g_16602_keys++;
    rcgc_xdecref(v);
}

static void test_weakref_trashcan_16602(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    g_16602_bad = g_16602_keys = 0;
    memset(g_wself, 0, sizeof g_wself);
    tl_node *root = tl_new(h, &tl_Node, 0);
    tl_node *c = root;
    rcgc_incref(c); /* the variable c */
    for (intptr_t k = 1; k <= N16602; k++) {
        tl_node *n = tl_new(h, &tl_Node, (int)k);
        g_wself[k] = tl_wr_new(h, n, NULL, NULL);
        tl_set_steal(n, 0, tl_wr_new(h, c, wparent_cb, ID(k))); /* self.wparent */
        g_keyref[k] = tl_wr_new(h, c, key_cb, ID(k));           /* d[c] = n */
        g_vals[k] = n;
        rcgc_incref(n);
        rcgc_decref(c);
        c = n;
    }
    rcgc_decref(root); /* del root: c still holds the last node */
    tl_check(h);
    assert_int_equal(g_16602_keys, N16602);
    assert_int_equal(g_16602_bad, 0);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, -1), N16602);
    assert_int_equal(rcgc_collect(h, 2), 0);
    rcgc_decref(c);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, -1), N16602 + 1);
    for (int k = 1; k <= N16602; k++) {
        assert_false(tl_wr_alive(g_wself[k]));
        rcgc_decref(g_wself[k]);
        rcgc_decref(g_keyref[k]);
    }
    tl_check(h);
    tl_heap_free(h);
}

/* W15 test_callback_attribute_after_deletion: once the referent died the weak
 * reference forgets its callback; no API reads the field, so the port frees the
 * callback's argument right after the callback ran and lets ASan watch every later use
 * of the weak reference. */
static void arg_cb(void *ref, void *arg)
{
    (void)ref;
    (*(int *)arg)++;
}

static void test_weakref_callback_attribute_after_deletion(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    int *count = malloc(sizeof *count);
    assert_non_null(count);
    *count = 0;
    tl_node *x = tl_new(h, &tl_Node, 1);
    void *x_ref = tl_wr_new(h, x, arg_cb, count);
    rcgc_decref(x);
    assert_int_equal(*count, 1);
    free(count);
    assert_null(rcgc_weakref_get(x_ref));
    assert_int_equal(rcgc_collect(h, 2), 0);
    tl_check(h);
    rcgc_decref(x_ref);

    /* The same after a death in a collection. */
    count = malloc(sizeof *count);
    assert_non_null(count);
    *count = 0;
    x = tl_new(h, &tl_Node, 2);
    tl_self_loop(x, 0);
    x_ref = tl_wr_new(h, x, arg_cb, count);
    rcgc_decref(x);
    assert_int_equal(rcgc_collect(h, 2), 1);
    assert_int_equal(*count, 1);
    free(count);
    assert_int_equal(rcgc_collect(h, 2), 0);
    tl_check(h);
    rcgc_decref(x_ref);
    tl_heap_free(h);
}

/* W16 test_callback_gcs: a callback that collects while a referent with a finalizer is
 * dying. */
static void test_weakref_callback_gcs(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    g_840829_n = 0;
    make_trash(h, 90);
    tl_node *x = tl_new(h, &tl_FinNode, 1);
    void *ref1 = tl_wr_new(h, x, collect_cb, h);
    rcgc_decref(x);
    tl_check(h);
    assert_int_equal(g_840829_n, 1);
    assert_int_equal(g_840829[0], 1);
    assert_int_equal(tl_log_count(TL_EV_FINALIZE, 1), 1);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 1), 1);
    assert_int_equal(rcgc_collect(h, 2), 0);
    rcgc_decref(ref1);
    tl_heap_free(h);
}

/* W17 test_subclass_refs_with_cycle: a weak reference that is itself dying never calls
 * its callback, also when its referent dies right after it in the same teardown. An
 * rcgc weak reference cannot own its referent, so an owner H holds the weak references
 * (slots first) and the referent (last); then the same as collector trash. */
static void test_weakref_subclass_refs_with_cycle(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    tl_node *holder = tl_new(h, &tl_Node, 1);
    tl_node *o = tl_new(h, &tl_Node, 2);
    tl_set_steal(holder, 0, tl_wr_new(h, o, tl_wrcb_log, ID(1))); /* r1 */
    tl_set_steal(holder, 1, o);                                   /* r1.o = o */
    rcgc_decref(holder);
    assert_int_equal(tl_log_count(TL_EV_WRCB, -1), 0);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, -1), 2);

    holder = tl_new(h, &tl_Node, 3);
    o = tl_new(h, &tl_Node, 4);
    tl_set_steal(holder, 0, tl_wr_new(h, o, tl_wrcb_log, ID(1))); /* r1 */
    tl_set_steal(holder, 1, tl_wr_new(h, o, tl_wrcb_log, ID(2))); /* r1.r = r2 */
    tl_set_steal(holder, 2, o);                                   /* r2.o = o */
    rcgc_decref(holder);
    assert_int_equal(tl_log_count(TL_EV_WRCB, -1), 0);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, -1), 4);

    holder = tl_new(h, &tl_Node, 5);
    o = tl_new(h, &tl_Node, 6);
    tl_set_steal(holder, 0, tl_wr_new(h, o, tl_wrcb_log, ID(1)));
    tl_set_steal(holder, 1, tl_wr_new(h, o, tl_wrcb_log, ID(2)));
    tl_set_steal(holder, 2, o);
    tl_self_loop(holder, 3);
    rcgc_decref(holder);
    assert_int_equal(rcgc_collect(h, 2), 4);
    tl_check(h);
    assert_int_equal(tl_log_count(TL_EV_WRCB, -1), 0);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, -1), 6);
    tl_heap_free(h);
}

/* W18 FinalizeTestCase.test_order: callbacks on one object's death run newest first
 * (f4, f2, f1 when f3 was dropped before); callback-less references do not disturb the
 * order. Refcount path and collector path. */
static void test_weakref_callbacks_newest_first(void **state)
{
    (void)state;
    for (int cyclic = 0; cyclic < 2; cyclic++) {
        rcgc_heap *h = tl_heap_new();
        tl_node *a = tl_new(h, &tl_Node, 1);
        if (cyclic)
            tl_self_loop(a, 0);
        void *f1 = tl_wr_new(h, a, tl_wrcb_log, ID(1));
        void *plain1 = tl_wr_new(h, a, NULL, NULL);
        void *f2 = tl_wr_new(h, a, tl_wrcb_log, ID(2));
        void *f3 = tl_wr_new(h, a, tl_wrcb_log, ID(3));
        void *plain2 = tl_wr_new(h, a, NULL, NULL);
        void *f4 = tl_wr_new(h, a, tl_wrcb_log, ID(4));
        assert_int_equal(rcgc_weakref_count(a), 6);
        rcgc_decref(f3); /* f3.detach() */
        assert_int_equal(rcgc_weakref_count(a), 5);
        rcgc_decref(a);
        if (cyclic)
            assert_int_equal(rcgc_collect(h, 2), 1);
        tl_check(h);
        assert_int_equal(tl_log_count(TL_EV_WRCB, -1), 3);
        const int order[3] = {4, 2, 1};
        size_t k = 0;
        for (size_t i = 0; i < tl_log_len(); i++) {
            const tl_event *e = tl_log_at(i);
            if (e->kind != TL_EV_WRCB)
                continue;
            assert_int_equal(e->id, order[k]);
            assert_false(e->alive);
            k++;
        }
        void *all[5] = {f1, plain1, f2, plain2, f4};
        for (int i = 0; i < 5; i++) {
            assert_false(tl_wr_alive(all[i]));
            rcgc_decref(all[i]);
        }
        tl_heap_free(h);
    }
}

/* ---- the 3.14.7 rules ---- */

/* Inside a finalizer of trash every weak reference to trash is dead already, with or
 * without callback, and weak references that are trash themselves too. */
static int g_fin_alive;

static void read_weakrefs(tl_node *self)
{
    void **refs = self->user;
    for (int i = 0; i < 3; i++)
        if (tl_wr_alive(refs[i]))
            g_fin_alive++;
    if (self->slot[1] && tl_wr_alive(self->slot[1]))
        g_fin_alive++;
}

static void test_weakref_cleared_before_finalizers(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    g_fin_alive = 0;
    tl_node *a = tl_new(h, &tl_FinNode, 1);
    tl_node *b = tl_new(h, &tl_Node, 2);
    tl_set(a, 0, b);
    tl_set(b, 0, a);
    void *refs[3];
    refs[0] = tl_wr_new(h, a, NULL, NULL);
    refs[1] = tl_wr_new(h, b, NULL, NULL);
    refs[2] = tl_wr_new(h, b, tl_wrcb_log, ID(5));
    tl_set_steal(a, 1, tl_wr_new(h, b, tl_wrcb_log, ID(6))); /* trash weakref held by a */
    a->user = refs;
    a->on_finalize = read_weakrefs;
    rcgc_decref(a);
    rcgc_decref(b);
    assert_int_equal(rcgc_collect(h, 2), 3); /* a, b, a's weak reference */
    tl_check(h);
    assert_int_equal(g_fin_alive, 0);
    assert_int_equal(tl_log_count(TL_EV_WRCB, 5), 1);
    assert_int_equal(tl_log_count(TL_EV_WRCB, 6), 0);
    assert_int_equal(tl_log_count(TL_EV_FINALIZE, 1), 1);
    /* the callback ran before the finalizer */
    assert_int_equal(tl_log_at(0)->kind, TL_EV_WRCB);
    for (int i = 0; i < 3; i++)
        rcgc_decref(refs[i]);
    tl_heap_free(h);
}

/* Weak references (with callbacks) that a finalizer creates to still-unreachable
 * objects are cleared before clear, and their callbacks never run. */
static void *g_late_ref;

static void make_late_ref(tl_node *self)
{
    g_late_ref = rcgc_weakref_new(rcgc_heap_of(self), self->slot[0], tl_wrcb_log, ID(7));
}

static void test_weakref_created_by_finalizer_cleared_without_callback(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    g_late_ref = NULL;
    tl_node *a = tl_new(h, &tl_FinNode, 1);
    tl_node *b = tl_new(h, &tl_Node, 2);
    tl_set(a, 0, b);
    tl_set(b, 0, a);
    a->on_finalize = make_late_ref;
    rcgc_decref(a);
    rcgc_decref(b);
    assert_int_equal(rcgc_collect(h, 2), 2);
    tl_check(h);
    assert_non_null(g_late_ref);
    assert_false(tl_wr_alive(g_late_ref));
    assert_int_equal(tl_log_count(TL_EV_WRCB, -1), 0);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, -1), 2);
    rcgc_decref(g_late_ref);
    tl_heap_free(h);
}

/* A weak reference to a resurrected object stays cleared (collector path), and new weak
 * references to the survivor work. */
static void test_weakref_resurrected_target(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    tl_node *a = tl_new(h, &tl_FinNode, 1);
    a->fin_mode = TL_RESURRECT;
    tl_self_loop(a, 0);
    void *w = tl_wr_new(h, a, tl_wrcb_log, ID(1));
    rcgc_decref(a);
    assert_int_equal(rcgc_collect(h, 2), 0);
    assert_int_equal(tl_log_count(TL_EV_WRCB, 1), 1);
    assert_false(tl_wr_alive(w));
    void *w2 = tl_wr_new(h, a, tl_wrcb_log, ID(2));
    assert_true(tl_wr_alive(w2));
    assert_int_equal(rcgc_weakref_count(a), 1);
    tl_survivors_clear();
    assert_int_equal(rcgc_collect(h, 2), 1);
    assert_int_equal(tl_log_count(TL_EV_WRCB, 2), 1);
    assert_int_equal(tl_log_count(TL_EV_WRCB, 1), 1);
    rcgc_decref(w);
    rcgc_decref(w2);
    tl_check(h);
    tl_heap_free(h);
}

/* A weak reference that died before its referent never calls back. */
static void test_weakref_dead_ref_never_calls(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    tl_node *a = tl_new(h, &tl_Node, 1);
    void *w = tl_wr_new(h, a, tl_wrcb_log, ID(1));
    rcgc_decref(w);
    assert_int_equal(rcgc_weakref_count(a), 0);
    rcgc_decref(a);
    assert_int_equal(tl_log_count(TL_EV_WRCB, -1), 0);
    tl_check(h);
    tl_heap_free(h);
}

/* Weak references are tracked rcgc objects of the built-in type "weakref". */
static void test_weakref_object_properties(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    tl_node *leaf = tl_new(h, &tl_Leaf, 1);
    assert_null(rcgc_weakref_new(h, NULL, NULL, NULL));
    void *w = tl_wr_new(h, leaf, NULL, NULL);
    assert_true(rcgc_is_weakref(w));
    assert_false(rcgc_is_weakref(leaf));
    assert_true(rcgc_is_tracked(w));
    assert_non_null(rcgc_type_of(w));
    assert_string_equal(rcgc_type_of(w)->name, "weakref");
    assert_ptr_equal(rcgc_heap_of(w), h);
    assert_int_equal(rcgc_refcount(w), 1);
    assert_int_equal(rcgc_refcount(leaf), 1); /* no strong reference to the target */
    assert_int_equal(tl_generation_of(h, w), 0);
    assert_int_equal(rcgc_weakref_count(leaf), 1);
    void *w2 = tl_wr_new(h, leaf, tl_wrcb_log, ID(1));
    assert_int_equal(rcgc_weakref_count(leaf), 2);
    void *got = rcgc_weakref_get(w);
    assert_ptr_equal(got, leaf);
    assert_int_equal(rcgc_refcount(leaf), 2);
    rcgc_decref(got);
    rcgc_decref(leaf);
    assert_int_equal(tl_log_count(TL_EV_WRCB, 1), 1);
    assert_null(rcgc_weakref_get(w));
    assert_null(rcgc_weakref_get(w2));
    rcgc_decref(w);
    rcgc_decref(w2);
    tl_check(h);
    tl_heap_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_weakref_basic_callback),
        cmocka_unit_test(test_weakref_multiple_callbacks),
        cmocka_unit_test(test_weakref_multiple_selfref_callbacks),
        cmocka_unit_test(test_weakref_sf_bug_840829),
        cmocka_unit_test(test_weakref_callback_in_cycle),
        cmocka_unit_test(test_weakref_callback_reachable_one_way),
        cmocka_unit_test(test_weakref_callback_different_classes),
        cmocka_unit_test(test_weakref_callback_in_cycle_resurrection),
        cmocka_unit_test(test_weakref_callbacks_on_callback),
        cmocka_unit_test(test_weakref_gc_during_ref_creation),
        cmocka_unit_test(test_weakref_ref_created_during_del),
        cmocka_unit_test(test_weakref_classes),
        cmocka_unit_test(test_weakref_trashcan_16602),
        cmocka_unit_test(test_weakref_callback_attribute_after_deletion),
        cmocka_unit_test(test_weakref_callback_gcs),
        cmocka_unit_test(test_weakref_subclass_refs_with_cycle),
        cmocka_unit_test(test_weakref_callbacks_newest_first),
        cmocka_unit_test(test_weakref_cleared_before_finalizers),
        cmocka_unit_test(test_weakref_created_by_finalizer_cleared_without_callback),
        cmocka_unit_test(test_weakref_resurrected_target),
        cmocka_unit_test(test_weakref_dead_ref_never_calls),
        cmocka_unit_test(test_weakref_object_properties),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
