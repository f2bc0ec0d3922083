/* test_gc.c: CPython's GCTests (Lib/test/test_gc.py, 3.11), ported to rcgc objects.
 *
 * Catalogue numbers (research/cpython_gc.md §3) are given per test. Counts are exact for
 * the objects each test allocates: one rcgc object per Python object that matters, so a
 * Python "instance + its __dict__" is one Node here. Automatic collection is off (as
 * test_gc.py's setUpModule does) unless a test turns it on. */
#define _POSIX_C_SOURCE 200809L

#include "testlib.h"

#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static rcgc_gen_stats stats_of(rcgc_heap *h, int g)
{
    rcgc_gen_stats s[3];
    memset(s, 0xff, sizeof s);
    rcgc_get_stats(h, s);
    return s[g];
}

/* #1 test_list: a list that contains itself. */
static void test_gc_list(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    tl_node *l = tl_new(h, &tl_Node, 1);
    tl_self_loop(l, 0);
    tl_check(h);
    assert_int_equal(rcgc_collect(h, 2), 0); /* reachable: nothing found */
    tl_check(h);
    rcgc_decref(l);
    tl_check(h);
    assert_int_equal(rcgc_collect(h, 2), 1);
    tl_check(h);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 1), 1);
    assert_int_equal(tl_log_count(TL_EV_CLEAR, 1), 1);
    tl_heap_free(h);
}

/* #2 test_dict: a map whose value is the map itself (d[1] = d). */
static void test_gc_dict(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    tl_var *d = tl_var_new(h, 1, 4);
    tl_var_set(d, 1, d);
    assert_int_equal(rcgc_collect(h, 2), 0);
    rcgc_decref(d);
    tl_check(h);
    assert_int_equal(rcgc_collect(h, 2), 1);
    tl_check(h);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 1), 1);
    tl_heap_free(h);
}

/* #3 test_tuple: an immutable container T holding a list L that holds T. */
static void test_gc_tuple(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    tl_node *l = tl_new(h, &tl_Node, 1);
    tl_var *t = tl_var_new(h, 2, 1);
    tl_var_set(t, 0, l); /* t = (l,) */
    tl_set(l, 0, t);     /* l.append(t) */
    rcgc_decref(t);
    rcgc_decref(l);
    tl_check(h);
    assert_int_equal(rcgc_collect(h, 2), 2);
    tl_check(h);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, -1), 2);
    tl_heap_free(h);
}

/* #6 test_instance: an instance whose attribute table refers back to the instance. */
static void test_gc_instance(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    tl_node *a = tl_new(h, &tl_Node, 1);
    tl_var *dict = tl_var_new(h, 2, 2);
    tl_set(a, 0, dict);
    tl_var_set(dict, 0, a); /* a.a = a */
    rcgc_decref(dict);
    assert_int_equal(rcgc_collect(h, 2), 0);
    rcgc_decref(a);
    tl_check(h);
    assert_int_equal(rcgc_collect(h, 2), 2);
    tl_check(h);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, -1), 2);
    tl_heap_free(h);
}

/* #7 test_newinstance: instances of classes, the classes themselves (cycles through
 * their bases), and finally nothing left: a collection right after a full one finds 0. */
static void test_gc_newinstance(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    /* class A: a class object is a self-cycle (its mro refers to it). */
    tl_node *class_a = tl_new(h, &tl_Node, 10);
    tl_self_loop(class_a, 0);
    tl_node *a = tl_new(h, &tl_Node, 11);
    tl_set(a, 0, class_a); /* type(a) */
    tl_self_loop(a, 1);    /* a.a = a */
    assert_int_equal(rcgc_collect(h, 2), 0);
    rcgc_decref(a);
    assert_int_equal(rcgc_collect(h, 2), 1);
    tl_check(h);

    /* class B(list), class C(B, A); a = C(); a.a = a */
    tl_node *class_b = tl_new(h, &tl_Node, 20);
    tl_self_loop(class_b, 0);
    tl_node *class_c = tl_new(h, &tl_Node, 30);
    tl_self_loop(class_c, 0);
    tl_set(class_c, 1, class_b);
    tl_set(class_c, 2, class_a);
    a = tl_new(h, &tl_Node, 31);
    tl_set(a, 0, class_c);
    tl_self_loop(a, 1);
    assert_int_equal(rcgc_collect(h, 2), 0);
    rcgc_decref(a);
    assert_int_equal(rcgc_collect(h, 2), 1);
    tl_check(h);

    /* del B, C */
    rcgc_decref(class_b);
    rcgc_decref(class_c);
    assert_int_equal(rcgc_collect(h, 2), 2);
    tl_check(h);

    /* A.a = A(); del A */
    a = tl_new(h, &tl_Node, 12);
    tl_set(a, 0, class_a);
    tl_set_steal(class_a, 1, a);
    rcgc_decref(class_a);
    assert_int_equal(rcgc_collect(h, 2), 2);
    tl_check(h);
    assert_int_equal(rcgc_collect(h, 2), 0);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, -1), 6);
    tl_heap_free(h);
}

/* #8 test_method: instance -> bound method -> instance. */
static void test_gc_method(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    tl_node *inst = tl_new(h, &tl_Node, 1);
    tl_node *method = tl_new(h, &tl_Node, 2);
    tl_set(method, 0, inst);       /* __self__ */
    tl_set_steal(inst, 0, method); /* self.init = self.__init__ */
    assert_int_equal(rcgc_collect(h, 2), 0);
    rcgc_decref(inst);
    tl_check(h);
    assert_int_equal(rcgc_collect(h, 2), 2);
    tl_check(h);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, -1), 2);
    tl_heap_free(h);
}

/* #9 test_legacy_finalizer: a legacy-finalizer self-cycle is uncollectable and shows up
 * in the garbage list; a plain self-cycle next to it is collected. */
static void test_gc_legacy_finalizer(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    tl_node *a = tl_new(h, &tl_LegacyNode, 1);
    tl_self_loop(a, 0);
    tl_node *b = tl_new(h, &tl_Node, 2);
    tl_self_loop(b, 0);
    assert_int_equal(rcgc_collect(h, 2), 0);
    rcgc_gen_stats before = stats_of(h, 2);
    rcgc_decref(a);
    rcgc_decref(b);
    assert_int_equal(rcgc_collect(h, 2), 2); /* 1 uncollectable + 1 collected */
    tl_check(h);
    rcgc_gen_stats after = stats_of(h, 2);
    assert_int_equal(after.collected - before.collected, 1);
    assert_int_equal(after.uncollectable - before.uncollectable, 1);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 2), 1);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 1), 0);
    assert_int_equal(tl_log_count(TL_EV_LEGACY_DEL, -1), 0); /* never run by the collector */
    assert_int_equal(tl_log_count(TL_EV_CLEAR, 1), 0);
    assert_int_equal(rcgc_garbage_count(h), 1);
    assert_ptr_equal(rcgc_garbage_get(h, 0), a);
    assert_true(rcgc_is_tracked(a));

    /* for obj in gc.garbage: del obj.a; gc.garbage.remove(obj) */
    tl_unset(a, 0);
    tl_check(h);
    assert_int_equal(rcgc_refcount(a), 1); /* the garbage list's reference */
    assert_int_equal(rcgc_garbage_remove(h, a), 0);
    tl_check(h);
    assert_int_equal(rcgc_garbage_count(h), 0);
    /* It died on the refcount path: legacy_del runs there. */
    assert_int_equal(tl_log_count(TL_EV_LEGACY_DEL, 1), 1);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 1), 1);
    assert_int_equal(rcgc_collect(h, 2), 0);
    tl_heap_free(h);
}

/* #10 test_legacy_finalizer_newclass, here a 2-cycle: everything reachable from the
 * legacy-finalizer object is uncollectable, but only the object with legacy_del goes to
 * the garbage list; the rest is kept alive by it. */
static void test_gc_legacy_finalizer_newclass(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    tl_node *a = tl_new(h, &tl_LegacyNode, 1);
    tl_node *b = tl_new(h, &tl_Node, 2);
    tl_set(a, 0, b);
    tl_set(b, 0, a);
    rcgc_decref(a);
    rcgc_decref(b);
    rcgc_gen_stats before = stats_of(h, 2);
    assert_int_equal(rcgc_collect(h, 2), 2);
    tl_check(h);
    rcgc_gen_stats after = stats_of(h, 2);
    assert_int_equal(after.collected - before.collected, 0);
    assert_int_equal(after.uncollectable - before.uncollectable, 2);
    assert_int_equal(rcgc_garbage_count(h), 1);
    assert_ptr_equal(rcgc_garbage_get(h, 0), a);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, -1), 0);
    assert_int_equal(tl_log_count(TL_EV_CLEAR, -1), 0);
    /* Both survive in generation 2; the garbage list's reference keeps them reachable. */
    assert_int_equal(tl_generation_of(h, a), 2);
    assert_int_equal(tl_generation_of(h, b), 2);
    assert_int_equal(rcgc_collect(h, 2), 0);
    assert_int_equal(rcgc_garbage_count(h), 1);
    /* Emptying the list makes the cycle unreachable again: found again, appended again. */
    rcgc_garbage_clear(h);
    tl_check(h);
    assert_int_equal(rcgc_collect(h, 2), 2);
    assert_int_equal(rcgc_garbage_count(h), 1);
    assert_ptr_equal(rcgc_garbage_get(h, 0), a);
    assert_int_equal(tl_log_count(TL_EV_LEGACY_DEL, -1), 0);
    /* Break the cycle by hand: b dies, then a. */
    rcgc_incref(a);
    rcgc_garbage_clear(h);
    tl_check(h);
    tl_unset(a, 0);
    tl_check(h);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 2), 1);
    rcgc_decref(a);
    tl_check(h);
    assert_int_equal(tl_log_count(TL_EV_LEGACY_DEL, 1), 1);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 1), 1);
    tl_heap_free(h);
}

/* #11 test_function: a function and its globals dict refer to each other. */
static void test_gc_function(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    tl_var *globals = tl_var_new(h, 1, 4);
    tl_node *f = tl_new(h, &tl_Node, 2);
    tl_set(f, 0, globals); /* f.__globals__ */
    tl_var_set(globals, 2, f);
    rcgc_decref(f);
    assert_int_equal(rcgc_collect(h, 2), 0);
    rcgc_decref(globals);
    assert_int_equal(rcgc_collect(h, 2), 2);
    tl_check(h);
    tl_heap_free(h);
}

/* #12 test_function_tp_clear_leaves_consistent_state (3.14 expectation): a finalizer of
 * trash creates a new weak reference to other trash and hands it to an object that is
 * freed while the trash is cleared; the weak reference must already be dead then. */
static rcgc_heap *g12_heap;
static tl_node *g12_latefin;
static int g12_seen = -1; /* 1: latefin's finalizer saw func alive; 0: saw NULL */

static void g12_cyc_finalize(tl_node *self)
{
    tl_node *func = self->slot[1];
    void *wr = rcgc_weakref_new(g12_heap, func, NULL, NULL);
    if (!wr)
        return;
    tl_set_steal(g12_latefin, 0, wr);
    tl_node *lf = g12_latefin;
    g12_latefin = NULL;
    rcgc_decref(lf); /* now only cyc keeps latefin alive */
}

static void g12_latefin_finalize(tl_node *self)
{
    void *wr = self->slot[0];
    if (!wr) {
        g12_seen = 2;
        return;
    }
    void *o = rcgc_weakref_get(wr);
    g12_seen = o != NULL;
    rcgc_xdecref(o);
}

static void test_gc_function_tp_clear_leaves_consistent_state(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    g12_heap = h;
    g12_seen = -1;
    tl_node *cyc = tl_new(h, &tl_FinNode, 1);
    tl_node *func = tl_new(h, &tl_Node, 2);
    tl_node *latefin = tl_new(h, &tl_FinNode, 3);
    cyc->on_finalize = g12_cyc_finalize;
    latefin->on_finalize = g12_latefin_finalize;
    /* cyc drops latefin before func: whichever of cyc and func is cleared first,
     * latefin's finalizer runs while func is still alive (the 3.11 bug shows). */
    tl_set(cyc, 0, latefin);
    tl_set(cyc, 1, func);
    tl_set(func, 0, cyc);
    g12_latefin = latefin; /* the global keeps our reference */
    rcgc_decref(cyc);
    rcgc_decref(func);
    tl_check(h);
    assert_int_equal(rcgc_collect(h, 2), 2); /* cyc and func */
    tl_check(h);
    assert_null(g12_latefin);
    assert_int_equal(tl_log_count(TL_EV_FINALIZE, 1), 1);
    assert_int_equal(tl_log_count(TL_EV_FINALIZE, 3), 1);
    assert_int_equal(g12_seen, 0); /* func=None */
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 1), 1);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 2), 1);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 3), 1);
    assert_int_equal(rcgc_collect(h, 2), 0);
    tl_heap_free(h);
}

/* #14 test_saveall: with DEBUG_SAVEALL the found cycle goes to the garbage list instead
 * of being cleared, and still counts as found. */
static void test_gc_saveall(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    assert_int_equal(rcgc_collect(h, 2), 0);
    assert_int_equal(rcgc_garbage_count(h), 0);
    tl_node *l = tl_new(h, &tl_Node, 1);
    tl_self_loop(l, 0);
    unsigned debug = rcgc_get_debug(h);
    rcgc_set_debug(h, debug | RCGC_DEBUG_SAVEALL);
    rcgc_decref(l);
    assert_int_equal(rcgc_collect(h, 2), 1);
    tl_check(h);
    rcgc_set_debug(h, debug);
    assert_int_equal(rcgc_get_debug(h), debug);
    assert_int_equal(rcgc_garbage_count(h), 1);
    assert_ptr_equal(rcgc_garbage_get(h, 0), l);
    assert_int_equal(tl_log_count(TL_EV_CLEAR, 1), 0);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 1), 0);
    assert_ptr_equal(l->slot[0], l); /* not cleared */
    /* obj = gc.garbage.pop() */
    rcgc_incref(l);
    assert_int_equal(rcgc_garbage_remove(h, l), 0);
    assert_int_equal(rcgc_garbage_count(h), 0);
    assert_int_equal(rcgc_refcount(l), 2);
    rcgc_decref(l);
    assert_int_equal(rcgc_collect(h, 2), 1);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 1), 1);
    tl_check(h);
    tl_heap_free(h);
}

/* SAVEALL still clears weak references, runs their callbacks and finalizers (the
 * research file's [local] check: collect() == 2, log [cb, del], garbage == [D, list]);
 * with legacy finalizers it saves the whole uncollectable set, not only legacy objects. */
static void test_gc_saveall_runs_finalizers_and_callbacks(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    tl_node *d = tl_new(h, &tl_FinNode, 1);
    tl_self_loop(d, 0);
    void *wr = tl_wr_new(h, d, tl_wrcb_log, (void *)(intptr_t)7);
    tl_node *l = tl_new(h, &tl_Node, 2);
    tl_self_loop(l, 0);
    rcgc_set_debug(h, RCGC_DEBUG_SAVEALL);
    rcgc_decref(d);
    rcgc_decref(l);
    assert_int_equal(rcgc_collect(h, 2), 2);
    tl_check(h);
    assert_int_equal(tl_log_len(), 2);
    assert_int_equal(tl_log_at(0)->kind, TL_EV_WRCB);
    assert_int_equal(tl_log_at(0)->id, 7);
    assert_false(tl_log_at(0)->alive);
    assert_int_equal(tl_log_at(1)->kind, TL_EV_FINALIZE);
    assert_int_equal(tl_log_at(1)->id, 1);
    assert_false(tl_wr_alive(wr));
    assert_int_equal(rcgc_garbage_count(h), 2);
    void *g0 = rcgc_garbage_get(h, 0), *g1 = rcgc_garbage_get(h, 1);
    assert_true((g0 == d && g1 == l) || (g0 == l && g1 == d));
    assert_null(rcgc_garbage_get(h, 2));
    rcgc_decref(wr);

    /* Legacy set under SAVEALL: a (legacy) <-> b (plain): both saved, both uncollectable. */
    tl_node *a = tl_new(h, &tl_LegacyNode, 3);
    tl_node *b = tl_new(h, &tl_Node, 4);
    tl_set(a, 0, b);
    tl_set(b, 0, a);
    rcgc_decref(a);
    rcgc_decref(b);
    rcgc_gen_stats before = stats_of(h, 2);
    assert_int_equal(rcgc_collect(h, 2), 2); /* d, l are held by the garbage list */
    rcgc_gen_stats after = stats_of(h, 2);
    assert_int_equal(after.uncollectable - before.uncollectable, 2);
    assert_int_equal(after.collected - before.collected, 0);
    assert_int_equal(rcgc_garbage_count(h), 4);
    size_t seen_a = 0, seen_b = 0;
    for (size_t i = 0; i < 4; i++) {
        seen_a += rcgc_garbage_get(h, i) == a;
        seen_b += rcgc_garbage_get(h, i) == b;
    }
    assert_int_equal(seen_a, 1);
    assert_int_equal(seen_b, 1);
    assert_int_equal(tl_log_count(TL_EV_FINALIZE, 1), 1); /* finalized once, ever */
    tl_check(h);
    /* Break everything and let it go. */
    rcgc_set_debug(h, 0);
    tl_unset(d, 0);
    tl_unset(l, 0);
    tl_unset(a, 0);
    rcgc_garbage_clear(h);
    tl_check(h);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, -1), 4);
    assert_int_equal(tl_log_count(TL_EV_LEGACY_DEL, 3), 1);
    assert_int_equal(tl_log_count(TL_EV_FINALIZE, 1), 1);
    assert_int_equal(rcgc_collect(h, 2), 0);
    tl_heap_free(h);
}

/* #15 test_del: a finalizer that allocates, with threshold0 = 1 and automatic collection
 * on, runs collections from inside a refcount-path death. */
static size_t g_del_allocs;

static void alloc_in_finalizer(tl_node *self)
{
    rcgc_heap *h = rcgc_heap_of(self);
    tl_node *made[10];
    for (int i = 0; i < 10; i++) {
        made[i] = rcgc_new(h, &tl_Node);
        if (made[i]) {
            made[i]->id = 100 + i;
            g_del_allocs++;
        }
    }
    for (int i = 0; i < 10; i++)
        rcgc_xdecref(made[i]);
}

static size_t total_collections(rcgc_heap *h)
{
    rcgc_gen_stats s[3];
    rcgc_get_stats(h, s);
    return s[0].collections + s[1].collections + s[2].collections;
}

static void test_gc_del(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    g_del_allocs = 0;
    rcgc_set_threshold(h, 1, 10, 10);
    rcgc_enable(h);
    tl_node *a = tl_new(h, &tl_FinNode, 1);
    a->on_finalize = alloc_in_finalizer;
    rcgc_decref(a);
    tl_check(h);
    rcgc_disable(h);
    assert_int_equal(g_del_allocs, 10);
    assert_int_equal(tl_log_count(TL_EV_FINALIZE, 1), 1);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 1), 1);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, -1), 11);
#ifndef RCGC_GC_STRESS
    /* count0 > 1 at every second container allocation inside the finalizer (a itself
     * made count0 1): 5 automatic collections, all of generation 0. */
    assert_int_equal(total_collections(h), 5);
    assert_int_equal(stats_of(h, 0).collections, 5);
#else
    assert_true(total_collections(h) >= 10);
#endif
    tl_heap_free(h);
}

/* #16 test_del_newclass, in its cyclic form: the allocating finalizer runs inside an
 * automatic collection (where nested automatic collection is refused). */
static void test_gc_del_newclass(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    g_del_allocs = 0;
    rcgc_set_threshold(h, 1, 10, 10);
    tl_node *a = tl_new(h, &tl_FinNode, 1);
    a->on_finalize = alloc_in_finalizer;
    tl_self_loop(a, 0);
    rcgc_decref(a);
    rcgc_enable(h);
    tl_node *keep[100];
    int i = 0;
    while (tl_log_count(TL_EV_DEALLOC, 1) == 0 && i < 100) {
        keep[i] = tl_new(h, &tl_Node, 1000 + i);
        i++;
    }
    rcgc_disable(h);
    tl_check(h);
    assert_true(i < 100);
    assert_int_equal(g_del_allocs, 10);
    assert_int_equal(tl_log_count(TL_EV_FINALIZE, 1), 1);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 1), 1);
    for (int k = 0; k < i; k++)
        rcgc_decref(keep[k]);
    assert_int_equal(rcgc_collect(h, 2), 0);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, -1), (size_t)i + 11);
    tl_heap_free(h);
}

/* #17 test_get_count: after a full collection the counts are (0, 0, 0); one container
 * allocation makes count0 1. */
static void test_gc_get_count(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    assert_int_equal(rcgc_collect(h, 2), 0);
    tl_assert_counts(h, 0, 0, 0);
    tl_node *x = tl_new(h, &tl_Node, 1);
    tl_assert_counts(h, 1, 0, 0);
    rcgc_decref(x);
    tl_check(h);
    tl_heap_free(h);
}

/* #18 test_collect_generations. */
static void test_gc_collect_generations(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    assert_int_equal(rcgc_collect(h, 2), 0);
    tl_node *x = tl_new(h, &tl_Node, 1);
    assert_int_equal(rcgc_collect(h, 0), 0);
    tl_assert_counts(h, 0, 1, 0);
    assert_int_equal(rcgc_collect(h, 1), 0);
    tl_assert_counts(h, 0, 0, 1);
    assert_int_equal(rcgc_collect(h, 2), 0);
    tl_assert_counts(h, 0, 0, 0);
    tl_check(h);
    rcgc_decref(x);
    tl_heap_free(h);
}

/* #19 test_trashcan: deep chains whose elements' finalizers run full collections every
 * 17th call, with automatic collection on. */
static size_t g_ouch_n;
static size_t g_ouch_bad;

static void ouch_finalize(tl_node *self)
{
    g_ouch_n++;
    if (g_ouch_n % 17 == 0) {
        ssize_t r = rcgc_collect(rcgc_heap_of(self), 2);
        if (r < 0)
            g_ouch_bad++;
    }
}

static void *ouch_new(rcgc_heap *h)
{
    tl_node *o = tl_new(h, &tl_FinNode, 2);
    o->on_finalize = ouch_finalize;
    return o;
}

static void test_gc_trashcan(void **state)
{
    (void)state;
    enum { N = 150 };
    rcgc_heap *h = tl_heap_new();
    g_ouch_n = g_ouch_bad = 0;
    rcgc_enable(h);
    void *t = NULL, *u = NULL, *v = NULL;
    for (int count = 0; count < 2; count++) {
        rcgc_xdecref(t);
        t = tl_new(h, &tl_Node, 1); /* t = [] */
        for (int i = 0; i < N; i++) {
            tl_node *n = tl_new(h, &tl_Node, 1);
            tl_set_steal(n, 0, t); /* t = [t, Ouch()] */
            tl_set_steal(n, 1, ouch_new(h));
            t = n;
        }
        rcgc_xdecref(u);
        u = tl_new(h, &tl_Node, 1);
        for (int i = 0; i < N; i++) {
            tl_node *n = tl_new(h, &tl_Node, 1);
            tl_set_steal(n, 0, u);
            tl_set_steal(n, 1, ouch_new(h));
            u = n;
        }
        rcgc_xdecref(v);
        v = tl_var_new(h, 3, 2); /* v = {} */
        for (int i = 0; i < N; i++) {
            tl_var *n = tl_var_new(h, 3, 2); /* v = {1: v, 2: Ouch()} */
            n->items[0] = v;
            n->items[1] = ouch_new(h);
            v = n;
        }
        tl_check(h);
    }
    rcgc_decref(t);
    rcgc_decref(u);
    rcgc_decref(v);
    rcgc_disable(h);
    tl_check(h);
    assert_int_equal(g_ouch_n, 2 * 3 * N);
    assert_int_equal(g_ouch_bad, 0);
    assert_int_equal(tl_log_count(TL_EV_FINALIZE, 2), 2 * 3 * N);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 2), 2 * 3 * N);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 1), 2 * 2 * (N + 1));
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 3), 2 * (N + 1));
    assert_int_equal(rcgc_collect(h, 2), 0);
    tl_heap_free(h);
}

/* #20 test_trashcan_threads: two threads take turns on one heap (a mutex plays the
 * GIL; the host serialises access), building and dropping deep nests whose finalizers
 * release the "GIL" in the middle of the deallocation chain. Every object must be
 * finalized and freed exactly once. */
enum { THREADS_NESTING = 1000 };
static pthread_mutex_t g_gil = PTHREAD_MUTEX_INITIALIZER;
static size_t g_inits, g_dels, g_frees;
static atomic_bool g_threads_exit;

static int tnode_traverse(void *self, rcgc_visit_fn visit, void *arg)
{
    tl_node *n = self;
    return n->slot[0] ? visit(n->slot[0], arg) : 0;
}

static void tnode_clear(void *self)
{
    tl_unset(self, 0);
}

static void tnode_finalize(void *self)
{
    (void)self;
    g_dels++;
    pthread_mutex_unlock(&g_gil); /* the sleeper generator releases the GIL */
    sched_yield();
    pthread_mutex_lock(&g_gil);
}

static void tnode_dealloc(void *self)
{
    g_frees++;
    tl_unset(self, 0);
}

static const rcgc_type ThreadNode = {
    .name = "ThreadNode",
    .size = sizeof(tl_node),
    .traverse = tnode_traverse,
    .clear = tnode_clear,
    .finalize = tnode_finalize,
    .dealloc = tnode_dealloc,
};

static void *threads_run(void *arg)
{
    rcgc_heap *h = arg;
    while (!atomic_load(&g_threads_exit)) {
        pthread_mutex_lock(&g_gil);
        tl_node *x = rcgc_new(h, &ThreadNode);
        if (x) {
            g_inits++;
            for (int i = 0; i < THREADS_NESTING; i++) {
                tl_node *y = rcgc_new(h, &ThreadNode);
                if (!y)
                    break;
                g_inits++;
                y->slot[0] = x;
                x = y;
            }
            rcgc_decref(x);
        }
        pthread_mutex_unlock(&g_gil);
    }
    return NULL;
}

static void test_gc_trashcan_threads(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    g_inits = g_dels = g_frees = 0;
    atomic_store(&g_threads_exit, false);
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, threads_run, h), 0);
    struct timespec ts = {.tv_sec = 0, .tv_nsec = 500 * 1000 * 1000};
    nanosleep(&ts, NULL);
    atomic_store(&g_threads_exit, true);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    pthread_mutex_lock(&g_gil);
    assert_int_equal(rcgc_collect(h, 2), 0);
    tl_check(h);
    pthread_mutex_unlock(&g_gil);
    assert_true(g_inits > 0);
    assert_int_equal(g_inits, g_dels);
    assert_int_equal(g_inits, g_frees);
    tl_heap_free(h);
}

/* #21 test_boom: the collector decides "has a finalizer" from the type alone and never
 * runs user code to find out. Here the only user code it may run is traverse, clear and
 * dealloc; Boom's clear mutates the trash graph as a side effect (it also deletes the
 * peer's link), so the cycle is reclaimed by refcounts in the middle of clearing. */
static int g_boom_clears;
static bool g_boom_second_only;

static void boom_clear(void *self)
{
    tl_node *n = self;
    g_boom_clears++;
    tl_log_add(TL_EV_CLEAR, n->id, n, false);
    tl_node *peer = n->slot[0];
    if (peer && (!g_boom_second_only || g_boom_clears > 1))
        tl_unset(peer, 0); /* del peer.attr */
    tl_unset(n, 0);
}

static void boom_dealloc(void *self)
{
    tl_node *n = self;
    tl_log_add(TL_EV_DEALLOC, n->id, n, false);
    tl_unset(n, 0);
}

static int boom_traverse(void *self, rcgc_visit_fn visit, void *arg)
{
    tl_node *n = self;
    return n->slot[0] ? visit(n->slot[0], arg) : 0;
}

static const rcgc_type Boom = {
    .name = "Boom",
    .size = sizeof(tl_node),
    .traverse = boom_traverse,
    .clear = boom_clear,
    .dealloc = boom_dealloc,
};

static void run_boom(bool second_only)
{
    rcgc_heap *h = tl_heap_new();
    g_boom_clears = 0;
    g_boom_second_only = second_only;
    tl_node *a = rcgc_new(h, &Boom);
    tl_node *b = rcgc_new(h, &Boom);
    assert_non_null(a);
    assert_non_null(b);
    a->id = 1;
    b->id = 2;
    tl_set(a, 0, b);
    tl_set(b, 0, a);
    assert_int_equal(rcgc_collect(h, 2), 0);
    size_t garbagelen = rcgc_garbage_count(h);
    rcgc_decref(a);
    rcgc_decref(b);
    assert_int_equal(rcgc_collect(h, 2), 2);
    tl_check(h);
    assert_int_equal(rcgc_garbage_count(h), garbagelen);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 1), 1);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 2), 1);
    tl_heap_free(h);
}

static void test_gc_boom(void **state)
{
    (void)state;
    run_boom(false);
}

/* #22 test_boom2: the side effect happens only on the second call. */
static void test_gc_boom2(void **state)
{
    (void)state;
    run_boom(true);
}

/* #24 test_is_tracked: objects of types without traverse are never tracked; objects of
 * types with traverse are tracked from creation; track/untrack switch, and are no-ops on
 * untrackable objects. */
static void test_gc_is_tracked(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    tl_node *leaf = tl_new(h, &tl_Leaf, 1);
    tl_node *leaffin = tl_new(h, &tl_LeafFin, 2);
    tl_node *nogc = tl_new(h, &tl_ContainerNoGC, 3);
    tl_node *node = tl_new(h, &tl_Node, 4);
    tl_var *var = tl_var_new(h, 5, 3);
    tl_node *legacy = tl_new(h, &tl_LegacyNode, 6);
    void *wr = tl_wr_new(h, node, NULL, NULL);
    assert_false(rcgc_is_tracked(leaf));
    assert_false(rcgc_is_tracked(leaffin));
    assert_false(rcgc_is_tracked(nogc));
    assert_true(rcgc_is_tracked(node));
    assert_true(rcgc_is_tracked(var));
    assert_true(rcgc_is_tracked(legacy));
    assert_true(rcgc_is_tracked(wr));
    rcgc_untrack(node);
    assert_false(rcgc_is_tracked(node));
    tl_check(h);
    rcgc_untrack(node); /* already untracked: no-op */
    assert_false(rcgc_is_tracked(node));
    tl_check(h);
    rcgc_track(node);
    assert_true(rcgc_is_tracked(node));
    rcgc_track(node); /* already tracked: no-op */
    assert_true(rcgc_is_tracked(node));
    tl_check(h);
    rcgc_track(leaf); /* no traverse: no-op */
    assert_false(rcgc_is_tracked(leaf));
    tl_check(h);
    rcgc_decref(wr);
    rcgc_decref(leaf);
    rcgc_decref(leaffin);
    rcgc_decref(nogc);
    rcgc_decref(node);
    rcgc_decref(var);
    rcgc_decref(legacy);
    tl_check(h);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, -1), 6);
    tl_heap_free(h);
}

/* #25 test_is_finalized. */
static void test_gc_is_finalized(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    tl_node *leaf = tl_new(h, &tl_Leaf, 1);
    assert_false(rcgc_is_finalized(leaf));
    rcgc_decref(leaf);

    /* Refcount path (the Python test's Lazarus is not in a cycle). */
    tl_node *laz = tl_new(h, &tl_FinNode, 2);
    laz->fin_mode = TL_RESURRECT;
    assert_false(rcgc_is_finalized(laz));
    rcgc_decref(laz);
    assert_int_equal(rcgc_collect(h, 2), 0);
    tl_check(h);
    assert_int_equal(tl_survivors_count(), 1);
    assert_ptr_equal(tl_survivor(0), laz);
    assert_true(rcgc_is_finalized(laz));
    assert_true(rcgc_is_tracked(laz));

    /* Collector path. */
    tl_node *cyc = tl_new(h, &tl_FinNode, 3);
    cyc->fin_mode = TL_RESURRECT;
    tl_self_loop(cyc, 0);
    assert_false(rcgc_is_finalized(cyc));
    rcgc_decref(cyc);
    assert_int_equal(rcgc_collect(h, 2), 0);
    tl_check(h);
    assert_int_equal(tl_survivors_count(), 2);
    assert_ptr_equal(tl_survivor(1), cyc);
    assert_true(rcgc_is_finalized(cyc));

    tl_survivors_clear(); /* laz dies (no second finalize); cyc is a cycle again */
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 2), 1);
    assert_int_equal(rcgc_collect(h, 2), 1);
    tl_check(h);
    assert_int_equal(tl_log_count(TL_EV_FINALIZE, 2), 1);
    assert_int_equal(tl_log_count(TL_EV_FINALIZE, 3), 1);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 3), 1);
    tl_heap_free(h);
}

/* #26 test_bug1055820b: every weak reference to the trash is cleared before any callback
 * runs, so callbacks see none of the trash. */
typedef struct {
    void *wrs[2];
    int calls;
    int alive_seen;
} b820b_state;

static void b820b_callback(void *ref, void *arg)
{
    (void)ref;
    b820b_state *s = arg;
    s->calls++;
    for (int i = 0; i < 2; i++) {
        void *o = rcgc_weakref_get(s->wrs[i]);
        if (o) {
            s->alive_seen++;
            rcgc_decref(o);
        }
    }
}

static void test_gc_bug1055820b(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    b820b_state s = {.calls = 0};
    tl_node *cs[2];
    for (int i = 0; i < 2; i++) {
        cs[i] = tl_new(h, &tl_Node, i);
        tl_self_loop(cs[i], 0);
        s.wrs[i] = tl_wr_new(h, cs[i], b820b_callback, &s);
    }
    assert_int_equal(rcgc_collect(h, 2), 0);
    assert_int_equal(s.calls, 0);
    rcgc_decref(cs[0]);
    rcgc_decref(cs[1]);
    assert_int_equal(rcgc_collect(h, 2), 2);
    tl_check(h);
    assert_int_equal(s.calls, 2);
    assert_int_equal(s.alive_seen, 0);
    assert_false(tl_wr_alive(s.wrs[0]));
    assert_false(tl_wr_alive(s.wrs[1]));
    rcgc_decref(s.wrs[0]);
    rcgc_decref(s.wrs[1]);
    tl_check(h);
    tl_heap_free(h);
}

/* #27 test_bug21435: b's finalizer drops its link to a, so a and then b (and what only b
 * held) die during finalization; they are not counted as collected. */
static void b21435_finalize(tl_node *self)
{
    tl_unset(self, 0); /* self.attr = None */
    self->value = 42;
}

static void test_gc_bug21435(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    assert_int_equal(rcgc_collect(h, 2), 0);
    tl_node *a = tl_new(h, &tl_Node, 1);
    tl_node *b = tl_new(h, &tl_FinNode, 2);
    b->on_finalize = b21435_finalize;
    tl_set_steal(b, 1, tl_new(h, &tl_Node, 3)); /* b.x = A() */
    tl_set(a, 0, b);
    tl_set(b, 0, a);
    rcgc_decref(a);
    rcgc_decref(b);
    assert_int_equal(rcgc_collect(h, 2), 0);
    tl_check(h);
    assert_int_equal(rcgc_collect(h, 2), 0);
    tl_check(h);
    assert_int_equal(tl_log_count(TL_EV_FINALIZE, 2), 1);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, -1), 3);
    assert_int_equal(tl_log_count(TL_EV_CLEAR, -1), 0);
    tl_heap_free(h);
}

/* #32 test_get_stats: three entries, each collection counted in the entry of the
 * generation collected. */
static void test_gc_get_stats(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    rcgc_gen_stats s[3];
    memset(s, 0xff, sizeof s);
    rcgc_get_stats(h, s);
    for (int g = 0; g < 3; g++) {
        assert_int_equal(s[g].collections, 0);
        assert_int_equal(s[g].collected, 0);
        assert_int_equal(s[g].uncollectable, 0);
        assert_int_equal(s[g].pause_total_ns, 0);
        assert_int_equal(s[g].pause_max_ns, 0);
    }
    assert_int_equal(rcgc_collect(h, 0), 0);
    rcgc_gen_stats t[3];
    rcgc_get_stats(h, t);
    assert_int_equal(t[0].collections, s[0].collections + 1);
    assert_int_equal(t[1].collections, s[1].collections);
    assert_int_equal(t[2].collections, s[2].collections);
    assert_int_equal(rcgc_collect(h, 2), 0);
    rcgc_gen_stats u[3];
    rcgc_get_stats(h, u);
    assert_int_equal(u[0].collections, t[0].collections);
    assert_int_equal(u[1].collections, t[1].collections);
    assert_int_equal(u[2].collections, t[2].collections + 1);
    assert_int_equal(rcgc_collect(h, 1), 0);
    rcgc_get_stats(h, s);
    assert_int_equal(s[1].collections, 1);
    assert_int_equal(s[0].collections, 1);
    tl_heap_free(h);
}

/* Pause times: after a collection that scanned objects, total and max are positive and
 * max <= total. */
static void test_gc_stats_pause_times(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    tl_node *keep = tl_new(h, &tl_Node, 1);
    for (int i = 0; i < 100; i++) {
        tl_node *n = tl_new(h, &tl_Node, 2);
        tl_self_loop(n, 0);
        tl_set(keep, 1, n);
        rcgc_decref(n);
    }
    assert_int_equal(rcgc_collect(h, 2), 99);
    rcgc_gen_stats s = stats_of(h, 2);
    assert_int_equal(s.collections, 1);
    assert_int_equal(s.collected, 99);
    assert_true(s.pause_total_ns > 0);
    assert_true(s.pause_max_ns > 0);
    assert_true(s.pause_max_ns <= s.pause_total_ns);
    assert_int_equal(rcgc_collect(h, 2), 0);
    rcgc_gen_stats s2 = stats_of(h, 2);
    assert_true(s2.pause_total_ns >= s.pause_total_ns);
    assert_true(s2.pause_max_ns >= s.pause_max_ns);
    assert_true(s2.pause_max_ns <= s2.pause_total_ns);
    rcgc_decref(keep);
    tl_heap_free(h);
}

/* #36 test_resurrection_only_happens_once_per_object. */
static void test_gc_resurrection_only_happens_once_per_object(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    assert_int_equal(rcgc_collect(h, 2), 0);
    tl_node *laz = tl_new(h, &tl_FinNode, 1);
    laz->fin_mode = TL_RESURRECT;
    tl_self_loop(laz, 0);
    assert_int_equal(tl_log_count(TL_EV_FINALIZE, 1), 0);
    rcgc_decref(laz);
    assert_int_equal(rcgc_collect(h, 2), 0); /* resurrected: not counted */
    tl_check(h);
    assert_int_equal(tl_log_count(TL_EV_FINALIZE, 1), 1);
    assert_int_equal(tl_survivors_count(), 1);
    tl_survivors_clear();
    assert_int_equal(tl_log_count(TL_EV_FINALIZE, 1), 1);
    assert_int_equal(rcgc_collect(h, 2), 1);
    tl_check(h);
    assert_int_equal(tl_log_count(TL_EV_FINALIZE, 1), 1);
    assert_int_equal(tl_survivors_count(), 0);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 1), 1);
    tl_heap_free(h);
}

/* #37 test_resurrection_is_transitive: what a resurrected object reaches survives
 * untouched. */
static void test_gc_resurrection_is_transitive(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    tl_node *laz = tl_new(h, &tl_FinNode, 1);
    laz->fin_mode = TL_RESURRECT;
    tl_node *cargo = tl_new(h, &tl_Node, 2);
    tl_self_loop(cargo, 0);
    tl_set(laz, 0, cargo);
    tl_set(cargo, 1, laz);
    rcgc_decref(laz);
    rcgc_decref(cargo);
    assert_int_equal(rcgc_collect(h, 2), 0);
    tl_check(h);
    assert_int_equal(tl_survivors_count(), 1);
    tl_node *inst = tl_survivor(0);
    assert_ptr_equal(inst, laz);
    assert_ptr_equal(inst->slot[0], cargo);
    assert_ptr_equal(cargo->slot[0], cargo);
    assert_ptr_equal(cargo->slot[1], laz);
    assert_int_equal(tl_log_count(TL_EV_CLEAR, -1), 0);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, -1), 0);
    assert_int_equal(tl_generation_of(h, cargo), 2);
    tl_survivors_clear();
    assert_int_equal(rcgc_collect(h, 2), 2);
    tl_check(h);
    assert_int_equal(tl_log_count(TL_EV_FINALIZE, 1), 1);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, -1), 2);
    tl_heap_free(h);
}

/* #38 test_resurrection_does_not_block_cleanup_of_other_objects. */
static void make_self_loops(rcgc_heap *h, int n, int id)
{
    for (int i = 0; i < n; i++) {
        tl_node *a = tl_new(h, &tl_Node, id);
        tl_self_loop(a, 0);
        rcgc_decref(a);
    }
}

static void make_z(rcgc_heap *h)
{
    tl_node *z = tl_new(h, &tl_FinNode, 9);
    z->fin_mode = TL_RESURRECT;
    tl_self_loop(z, 0);
    rcgc_decref(z);
}

static void test_gc_resurrection_does_not_block_cleanup_of_other_objects(void **state)
{
    (void)state;
    enum { N = 100 };
    rcgc_heap *h = tl_heap_new();
    assert_int_equal(rcgc_collect(h, 2), 0);
    rcgc_gen_stats old = stats_of(h, 2), now;

    make_self_loops(h, N, 1);
    assert_int_equal(rcgc_collect(h, 2), N);
    now = stats_of(h, 2);
    assert_int_equal(now.collected - old.collected, N);
    assert_int_equal(now.uncollectable - old.uncollectable, 0);
    tl_check(h);

    old = now;
    make_z(h);
    assert_int_equal(rcgc_collect(h, 2), 0);
    now = stats_of(h, 2);
    assert_int_equal(now.collected - old.collected, 0);
    assert_int_equal(now.uncollectable - old.uncollectable, 0);
    tl_check(h);

    old = now;
    make_self_loops(h, N, 1);
    make_z(h);
    assert_int_equal(rcgc_collect(h, 2), N);
    now = stats_of(h, 2);
    assert_int_equal(now.collected - old.collected, N);
    assert_int_equal(now.uncollectable - old.uncollectable, 0);
    tl_check(h);

    old = now;
    assert_int_equal(tl_survivors_count(), 2);
    tl_survivors_clear();
    assert_int_equal(rcgc_collect(h, 2), 2);
    now = stats_of(h, 2);
    assert_int_equal(now.collected - old.collected, 2);
    assert_int_equal(now.uncollectable - old.uncollectable, 0);
    tl_check(h);
    assert_int_equal(tl_log_count(TL_EV_FINALIZE, 9), 2);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, -1), 2 * N + 2);
    tl_heap_free(h);
}

/* #39 test_trash_weakref_clear (bpo-38006): a weak reference that is itself trash is
 * cleared even though its referent Z is not seen as trash (Z is held by a container
 * without traverse); its callback never runs.
 *   Z <- Y <- A(self-loop) -> WZ (weakref to Z, callback); [WZ, self] keeps WZ longer */
static void test_gc_trash_weakref_clear(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    tl_node *a = tl_new(h, &tl_Node, 1);
    tl_self_loop(a, 0);
    tl_node *y = tl_new(h, &tl_ContainerNoGC, 2);
    tl_node *z = tl_new(h, &tl_Node, 3);
    tl_set_steal(y, 0, z); /* y = ContainerNoGC(Z()) */
    tl_set_steal(a, 1, y);
    tl_set_steal(a, 2, tl_wr_new(h, z, tl_wrcb_log, (void *)(intptr_t)99));
    tl_node *wr_cycle = tl_new(h, &tl_Node, 4);
    tl_set(wr_cycle, 0, a->slot[2]);
    tl_self_loop(wr_cycle, 1);
    assert_int_equal(rcgc_collect(h, 2), 0);
    rcgc_decref(a);
    rcgc_decref(wr_cycle);
    tl_check(h);
    assert_int_equal(rcgc_collect(h, 2), 3); /* a, wr_cycle, WZ */
    tl_check(h);
    assert_int_equal(tl_log_count(TL_EV_WRCB, -1), 0);
    for (int id = 1; id <= 4; id++)
        assert_int_equal(tl_log_count(TL_EV_DEALLOC, id), 1);
    tl_heap_free(h);
}

/* rcgc_collect with a generation outside 0..2 returns -1 (RCGC_EINVAL) and does
 * nothing. */
static int g_bad_gen_callbacks;

static void count_callback(rcgc_heap *h, int phase, const rcgc_collect_info *info, void *arg)
{
    (void)h;
    (void)phase;
    (void)info;
    (void)arg;
    g_bad_gen_callbacks++;
}

static void test_gc_collect_bad_generation(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    g_bad_gen_callbacks = 0;
    assert_int_equal(rcgc_add_callback(h, count_callback, NULL), 0);
    tl_node *n = tl_new(h, &tl_Node, 1);
    tl_self_loop(n, 0);
    rcgc_decref(n);
    assert_int_equal(rcgc_collect(h, -1), -1);
    assert_int_equal(rcgc_collect(h, 3), -1);
    assert_int_equal(rcgc_collect(h, 1000), -1);
    assert_int_equal(rcgc_collect(h, INT_MIN), -1);
    assert_int_equal(RCGC_EINVAL, -1);
    assert_int_equal(g_bad_gen_callbacks, 0);
    tl_assert_counts(h, 1, 0, 0);
    rcgc_gen_stats s[3];
    rcgc_get_stats(h, s);
    for (int g = 0; g < 3; g++)
        assert_int_equal(s[g].collections, 0);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 1), 0);
    tl_check(h);
    assert_int_equal(rcgc_collect(h, 2), 1);
    assert_int_equal(g_bad_gen_callbacks, 2);
    tl_heap_free(h);
}

/* rcgc_collect works while automatic collection is disabled; enable/disable flip only
 * is_enabled. */
static void test_gc_collect_while_disabled(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    assert_false(rcgc_is_enabled(h));
    tl_node *n = tl_new(h, &tl_Node, 1);
    tl_self_loop(n, 0);
    rcgc_decref(n);
    assert_int_equal(rcgc_collect(h, 0), 1);
    rcgc_enable(h);
    assert_true(rcgc_is_enabled(h));
    rcgc_enable(h);
    assert_true(rcgc_is_enabled(h));
    rcgc_disable(h);
    assert_false(rcgc_is_enabled(h));
    tl_check(h);
    tl_heap_free(h);
}

/* A fresh heap (no environment) has automatic collection on, thresholds (700, 10, 10),
 * debug 0, empty counts, garbage and freeze. */
static void test_gc_fresh_heap_defaults(void **state)
{
    (void)state;
    rcgc_heap_options o = {.ignore_environment = true};
    rcgc_heap *h = tl_heap_new_with(&o);
    assert_true(rcgc_is_enabled(h));
    size_t t[3] = {0, 0, 0};
    rcgc_get_threshold(h, t);
    assert_int_equal(t[0], 700);
    assert_int_equal(t[1], 10);
    assert_int_equal(t[2], 10);
    assert_int_equal(rcgc_get_debug(h), 0);
    tl_assert_counts(h, 0, 0, 0);
    assert_int_equal(rcgc_garbage_count(h), 0);
    assert_int_equal(rcgc_get_freeze_count(h), 0);
    assert_string_equal(rcgc_heap_name(h), "heap");
    tl_check(h);
    tl_heap_free(h);
}

/* Nested collection: rcgc_collect from a finalizer or a weak-reference callback that
 * runs during a collection is refused with 0 and changes nothing. */
static ssize_t g_nested[4];
static int g_nested_n;

static void nested_collect_finalize(tl_node *self)
{
    rcgc_heap *h = rcgc_heap_of(self);
    g_nested[g_nested_n++] = rcgc_collect(h, 2);
    g_nested[g_nested_n++] = rcgc_collect(h, 0);
}

static void nested_collect_wrcb(void *ref, void *arg)
{
    (void)ref;
    g_nested[g_nested_n++] = rcgc_collect(arg, 1);
}

static void test_gc_nested_collect_refused(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    g_nested_n = 0;
    for (int i = 0; i < 4; i++)
        g_nested[i] = 77;
    tl_node *a = tl_new(h, &tl_FinNode, 1);
    a->on_finalize = nested_collect_finalize;
    tl_self_loop(a, 0);
    void *wr = tl_wr_new(h, a, nested_collect_wrcb, h);
    tl_node *other = tl_new(h, &tl_Node, 2); /* trash the nested calls must not touch */
    tl_self_loop(other, 0);
    rcgc_decref(other);
    rcgc_decref(a);
    assert_int_equal(rcgc_collect(h, 2), 2);
    tl_check(h);
    assert_int_equal(g_nested_n, 3);
    assert_int_equal(g_nested[0], 0); /* the weak-reference callback ran first */
    assert_int_equal(g_nested[1], 0);
    assert_int_equal(g_nested[2], 0);
    rcgc_gen_stats s[3];
    rcgc_get_stats(h, s);
    assert_int_equal(s[0].collections, 0);
    assert_int_equal(s[1].collections, 0);
    assert_int_equal(s[2].collections, 1);
    assert_int_equal(s[2].collected, 2);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, -1), 2);
    rcgc_decref(wr);
    tl_heap_free(h);
}

/* Debug flag values and round trip. */
static void test_gc_debug_flags(void **state)
{
    (void)state;
    assert_int_equal(RCGC_DEBUG_STATS, 1);
    assert_int_equal(RCGC_DEBUG_COLLECTABLE, 2);
    assert_int_equal(RCGC_DEBUG_UNCOLLECTABLE, 4);
    assert_int_equal(RCGC_DEBUG_SAVEALL, 32);
    assert_int_equal(RCGC_DEBUG_LEAK, 38);
    rcgc_heap *h = tl_heap_new();
    assert_int_equal(rcgc_get_debug(h), 0);
    rcgc_set_debug(h, RCGC_DEBUG_LEAK);
    assert_int_equal(rcgc_get_debug(h), 38);
    rcgc_set_debug(h, 0);
    assert_int_equal(rcgc_get_debug(h), 0);
    tl_heap_free(h);
}

/* DEBUG_LEAK = COLLECTABLE | UNCOLLECTABLE | SAVEALL: collectable trash is saved. */
static void test_gc_debug_leak_saves(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    rcgc_set_debug(h, RCGC_DEBUG_LEAK);
    tl_node *n = tl_new(h, &tl_Node, 1);
    tl_self_loop(n, 0);
    rcgc_decref(n);
    tl_capture cap;
    tl_capture_start(&cap); /* COLLECTABLE prints a line: keep it out of the test log */
    ssize_t r = rcgc_collect(h, 2);
    free(tl_capture_stop(&cap));
    assert_int_equal(r, 1);
    assert_int_equal(rcgc_garbage_count(h), 1);
    assert_ptr_equal(rcgc_garbage_get(h, 0), n);
    assert_int_equal(tl_log_count(TL_EV_CLEAR, 1), 0);
    rcgc_set_debug(h, 0);
    tl_unset(n, 0);
    rcgc_garbage_clear(h);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 1), 1);
    tl_check(h);
    tl_heap_free(h);
}

/* The garbage list API: strong references, out-of-range get, remove of the first
 * matching entry, ENOENT, clear. */
static void test_gc_garbage_list_api(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    assert_null(rcgc_garbage_get(h, 0));
    tl_node *stranger = tl_new(h, &tl_Node, 9);
    assert_int_equal(rcgc_garbage_remove(h, stranger), RCGC_ENOENT);
    assert_int_equal(rcgc_refcount(stranger), 1);

    rcgc_set_debug(h, RCGC_DEBUG_SAVEALL);
    tl_node *x = tl_new(h, &tl_Node, 1);
    tl_node *y = tl_new(h, &tl_Node, 2);
    tl_set(x, 0, y);
    tl_set(y, 0, x);
    rcgc_decref(x);
    rcgc_decref(y);
    assert_int_equal(rcgc_collect(h, 2), 2);
    rcgc_set_debug(h, 0);
    assert_int_equal(rcgc_garbage_count(h), 2);
    assert_null(rcgc_garbage_get(h, 2));
    assert_null(rcgc_garbage_get(h, (size_t)-1));
    assert_int_equal(rcgc_refcount(x), 2); /* y's + the list's */
    assert_int_equal(rcgc_garbage_remove(h, stranger), RCGC_ENOENT);
    assert_int_equal(rcgc_garbage_remove(h, x), 0);
    assert_int_equal(rcgc_refcount(x), 1);
    assert_int_equal(rcgc_garbage_count(h), 1);
    assert_ptr_equal(rcgc_garbage_get(h, 0), y);
    assert_int_equal(rcgc_garbage_remove(h, x), RCGC_ENOENT);
    tl_check(h);
    /* Break the cycle: y's link to x goes, x dies, then y is held by the list only. */
    tl_unset(y, 0);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 1), 1);
    assert_int_equal(rcgc_refcount(y), 1);
    rcgc_garbage_clear(h);
    assert_int_equal(rcgc_garbage_count(h), 0);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 2), 1);
    rcgc_garbage_clear(h); /* empty: no-op */
    tl_check(h);
    rcgc_decref(stranger);
    tl_heap_free(h);
}

/* An untracked cycle is invisible to the collector; tracking it again makes it
 * collectable. */
static void test_gc_untracked_cycle_invisible(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    tl_node *n = tl_new(h, &tl_Node, 1);
    tl_self_loop(n, 0);
    rcgc_untrack(n);
    rcgc_decref(n);
    assert_int_equal(rcgc_collect(h, 2), 0);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 1), 0);
    assert_int_equal(tl_generation_of(h, n), -1);
    rcgc_track(n);
    assert_int_equal(tl_generation_of(h, n), 0);
    tl_check(h);
    assert_int_equal(rcgc_collect(h, 2), 1);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 1), 1);
    tl_heap_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gc_list),
        cmocka_unit_test(test_gc_dict),
        cmocka_unit_test(test_gc_tuple),
        cmocka_unit_test(test_gc_instance),
        cmocka_unit_test(test_gc_newinstance),
        cmocka_unit_test(test_gc_method),
        cmocka_unit_test(test_gc_legacy_finalizer),
        cmocka_unit_test(test_gc_legacy_finalizer_newclass),
        cmocka_unit_test(test_gc_function),
        cmocka_unit_test(test_gc_function_tp_clear_leaves_consistent_state),
        cmocka_unit_test(test_gc_saveall),
        cmocka_unit_test(test_gc_saveall_runs_finalizers_and_callbacks),
        cmocka_unit_test(test_gc_del),
        cmocka_unit_test(test_gc_del_newclass),
        cmocka_unit_test(test_gc_get_count),
        cmocka_unit_test(test_gc_collect_generations),
        cmocka_unit_test(test_gc_trashcan),
        cmocka_unit_test(test_gc_trashcan_threads),
        cmocka_unit_test(test_gc_boom),
        cmocka_unit_test(test_gc_boom2),
        cmocka_unit_test(test_gc_is_tracked),
        cmocka_unit_test(test_gc_is_finalized),
        cmocka_unit_test(test_gc_bug1055820b),
        cmocka_unit_test(test_gc_bug21435),
        cmocka_unit_test(test_gc_get_stats),
        cmocka_unit_test(test_gc_stats_pause_times),
        cmocka_unit_test(test_gc_resurrection_only_happens_once_per_object),
        cmocka_unit_test(test_gc_resurrection_is_transitive),
        cmocka_unit_test(test_gc_resurrection_does_not_block_cleanup_of_other_objects),
        cmocka_unit_test(test_gc_trash_weakref_clear),
        cmocka_unit_test(test_gc_collect_bad_generation),
        cmocka_unit_test(test_gc_collect_while_disabled),
        cmocka_unit_test(test_gc_fresh_heap_defaults),
        cmocka_unit_test(test_gc_nested_collect_refused),
        cmocka_unit_test(test_gc_debug_flags),
        cmocka_unit_test(test_gc_debug_leak_saves),
        cmocka_unit_test(test_gc_garbage_list_api),
        cmocka_unit_test(test_gc_untracked_cycle_invisible),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
