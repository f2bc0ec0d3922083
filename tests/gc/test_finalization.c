/* test_finalization.c: PEP 442 finalization (CPython's Lib/test/test_finalization.py,
 * catalogue F1-F18) and the refcount-path order of DESIGN.md: finalize (once; may
 * resurrect, then nothing else happens), weak references cleared and their callbacks,
 * legacy_del (may resurrect, runs again at the next death), dealloc.
 *
 * Every test runs with automatic collection off; the finalizers record their calls in
 * the log and check their neighbours' links (check_sanity) into g_insane. */
#include "testlib.h"

#include <string.h>

static int g_insane; /* check_sanity failures seen inside finalizers */

static void finish(rcgc_heap *h)
{
    assert_int_equal(g_insane, 0);
    assert_int_equal(rcgc_garbage_count(h), 0); /* SimpleBase.test() tearDown */
    tl_check(h);
    tl_heap_free(h);
}

static rcgc_heap *start(void)
{
    g_insane = 0;
    return tl_heap_new();
}

/* ---- SimpleFinalizationTest: no cycles, the refcount path ---- */

/* F1 test_simple. */
static void test_finalization_simple(void **state)
{
    (void)state;
    rcgc_heap *h = start();
    tl_node *s = tl_new(h, &tl_FinNode, 1);
    void *wr = tl_wr_new(h, s, NULL, NULL);
    rcgc_decref(s);
    assert_int_equal(rcgc_collect(h, 2), 0);
    assert_int_equal(tl_log_count(TL_EV_FINALIZE, 1), 1);
    assert_int_equal(tl_survivors_count(), 0);
    assert_false(tl_wr_alive(wr));
    assert_int_equal(rcgc_collect(h, 2), 0);
    assert_int_equal(tl_log_count(TL_EV_FINALIZE, 1), 1);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 1), 1);
    rcgc_decref(wr);
    finish(h);
}

/* F2 test_simple_resurrect: on the refcount path the finalizer runs before weak
 * references are cleared, so resurrection keeps them. */
static void test_finalization_simple_resurrect(void **state)
{
    (void)state;
    rcgc_heap *h = start();
    tl_node *s = tl_new(h, &tl_FinNode, 1);
    s->fin_mode = TL_RESURRECT;
    void *wr = tl_wr_new(h, s, tl_wrcb_log, (void *)(intptr_t)1);
    rcgc_decref(s);
    assert_int_equal(rcgc_collect(h, 2), 0);
    assert_int_equal(tl_log_count(TL_EV_FINALIZE, 1), 1);
    assert_int_equal(tl_survivors_count(), 1);
    assert_ptr_equal(tl_survivor(0), s);
    assert_true(tl_wr_alive(wr));
    assert_int_equal(tl_log_count(TL_EV_WRCB, -1), 0); /* resurrected: nothing else */
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 1), 0);
    assert_true(rcgc_is_tracked(s));
    tl_check(h);
    tl_survivors_clear();
    assert_int_equal(rcgc_collect(h, 2), 0);
    assert_int_equal(tl_log_count(TL_EV_FINALIZE, 1), 1);
    assert_int_equal(tl_survivors_count(), 0);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 1), 1);
    assert_false(tl_wr_alive(wr));
    assert_int_equal(tl_log_count(TL_EV_WRCB, 1), 1);
    rcgc_decref(wr);
    finish(h);
}

/* F3 test_non_gc: an untracked (no traverse) object with a finalizer. */
static void test_finalization_non_gc(void **state)
{
    (void)state;
    rcgc_heap *h = start();
    tl_node *s = tl_new(h, &tl_LeafFin, 1);
    assert_false(rcgc_is_tracked(s));
    rcgc_decref(s);
    assert_int_equal(rcgc_collect(h, 2), 0);
    assert_int_equal(tl_log_count(TL_EV_FINALIZE, 1), 1);
    assert_int_equal(tl_survivors_count(), 0);
    assert_int_equal(rcgc_collect(h, 2), 0);
    assert_int_equal(tl_log_count(TL_EV_FINALIZE, 1), 1);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 1), 1);
    finish(h);
}

/* F4 test_non_gc_resurrect: an untracked object has no "finalized" mark, so its
 * finalizer runs again at its next death. */
static void test_finalization_non_gc_resurrect(void **state)
{
    (void)state;
    rcgc_heap *h = start();
    tl_node *s = tl_new(h, &tl_LeafFin, 1);
    s->fin_mode = TL_RESURRECT;
    assert_false(rcgc_is_tracked(s));
    rcgc_decref(s);
    assert_int_equal(rcgc_collect(h, 2), 0);
    assert_int_equal(tl_log_count(TL_EV_FINALIZE, 1), 1);
    assert_int_equal(tl_survivors_count(), 1);
    assert_false(rcgc_is_finalized(s));
    tl_survivors_clear();
    assert_int_equal(rcgc_collect(h, 2), 0);
    assert_int_equal(tl_log_count(TL_EV_FINALIZE, 1), 2);
    assert_int_equal(tl_survivors_count(), 1);
    assert_ptr_equal(tl_survivor(0), s);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 1), 0);
    s->fin_mode = 0;
    tl_survivors_clear();
    assert_int_equal(tl_log_count(TL_EV_FINALIZE, 1), 3);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 1), 1);
    finish(h);
}

/* ---- SelfCycleFinalizationTest ---- */

/* SelfCycleBase.check_sanity: the finalizer still sees its own link. */
static void self_cycle_sanity(tl_node *self)
{
    if (self->slot[0] != self)
        g_insane++;
}

static tl_node *self_cycle(rcgc_heap *h, unsigned mode)
{
    tl_node *s = tl_new(h, &tl_FinNode, 1);
    s->fin_mode = mode;
    s->on_finalize = self_cycle_sanity;
    tl_self_loop(s, 0);
    return s;
}

/* F5 test_simple. */
static void test_finalization_self_cycle_simple(void **state)
{
    (void)state;
    rcgc_heap *h = start();
    tl_node *s = self_cycle(h, 0);
    void *wr = tl_wr_new(h, s, NULL, NULL);
    rcgc_decref(s);
    assert_int_equal(rcgc_collect(h, 2), 1);
    assert_int_equal(tl_log_count(TL_EV_FINALIZE, 1), 1);
    assert_int_equal(tl_survivors_count(), 0);
    assert_false(tl_wr_alive(wr));
    assert_int_equal(rcgc_collect(h, 2), 0);
    assert_int_equal(tl_log_count(TL_EV_FINALIZE, 1), 1);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 1), 1);
    rcgc_decref(wr);
    finish(h);
}

/* F6 test_simple_resurrect: on the collector path weak references are cleared before
 * finalizers run, so the survivor's weak reference is dead. */
static void test_finalization_self_cycle_simple_resurrect(void **state)
{
    (void)state;
    rcgc_heap *h = start();
    tl_node *s = self_cycle(h, TL_RESURRECT);
    void *wr = tl_wr_new(h, s, NULL, NULL);
    rcgc_decref(s);
    assert_int_equal(rcgc_collect(h, 2), 0);
    assert_int_equal(tl_log_count(TL_EV_FINALIZE, 1), 1);
    assert_int_equal(tl_survivors_count(), 1);
    assert_ptr_equal(tl_survivor(0), s);
    assert_false(tl_wr_alive(wr));
    assert_ptr_equal(s->slot[0], s); /* not cleared */
    tl_check(h);
    tl_survivors_clear();
    assert_int_equal(rcgc_collect(h, 2), 1);
    assert_int_equal(tl_log_count(TL_EV_FINALIZE, 1), 1);
    assert_int_equal(tl_survivors_count(), 0);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 1), 1);
    rcgc_decref(wr);
    finish(h);
}

/* F7 test_simple_suicide: the finalizer breaks its own cycle; the object dies during
 * finalization and is not counted. */
static void test_finalization_self_cycle_simple_suicide(void **state)
{
    (void)state;
    rcgc_heap *h = start();
    tl_node *s = self_cycle(h, TL_SUICIDE);
    void *wr = tl_wr_new(h, s, NULL, NULL);
    rcgc_decref(s);
    assert_int_equal(rcgc_collect(h, 2), 0);
    assert_int_equal(tl_log_count(TL_EV_FINALIZE, 1), 1);
    assert_int_equal(tl_survivors_count(), 0);
    assert_false(tl_wr_alive(wr));
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 1), 1);
    assert_int_equal(tl_log_count(TL_EV_CLEAR, 1), 0);
    assert_int_equal(rcgc_collect(h, 2), 0);
    assert_int_equal(tl_log_count(TL_EV_FINALIZE, 1), 1);
    rcgc_decref(wr);
    finish(h);
}

/* ---- CycleChainFinalizationTest: a ring, slot[0] = left, slot[1] = right ---- */

typedef enum { SIMPLE, RESURRECTOR, SUICIDAL } chain_kind;

/* ChainedBase.check_sanity: both neighbours still point back, unless they suicided. */
static void chain_sanity(tl_node *self)
{
    if (self->suicided) {
        if (self->slot[0] || self->slot[1])
            g_insane++;
        return;
    }
    tl_node *left = self->slot[0], *right = self->slot[1];
    if (!left || !right) {
        g_insane++;
        return;
    }
    if (left->suicided ? left->slot[1] != NULL : left->slot[1] != self)
        g_insane++;
    if (right->suicided ? right->slot[0] != NULL : right->slot[0] != self)
        g_insane++;
}

/* Runs check_(non_)resurrecting_chain on the given ring. expect_first / expect_second:
 * the results of the two collections. They do not depend on the order finalizers run
 * in: the set of links dropped once every finalizer ran is the same. */
static void run_chain(const chain_kind *kinds, int n, ssize_t expect_first,
                      ssize_t expect_second)
{
    rcgc_heap *h = start();
    tl_node *nodes[8];
    void *wrs[8];
    int resurrectors = 0;
    for (int i = 0; i < n; i++) {
        nodes[i] = tl_new(h, &tl_FinNode, i + 1);
        nodes[i]->on_finalize = chain_sanity;
        if (kinds[i] == RESURRECTOR) {
            nodes[i]->fin_mode = TL_RESURRECT;
            resurrectors++;
        }
        if (kinds[i] == SUICIDAL)
            nodes[i]->fin_mode = TL_SUICIDE;
    }
    for (int i = 0; i < n; i++) { /* nodes[i].chain(nodes[i-1]) */
        tl_node *left = nodes[(i + n - 1) % n];
        tl_set(nodes[i], 0, left);
        tl_set(left, 1, nodes[i]);
    }
    for (int i = 0; i < n; i++)
        wrs[i] = tl_wr_new(h, nodes[i], NULL, NULL);
    for (int i = 0; i < n; i++)
        rcgc_decref(nodes[i]);
    tl_check(h);

    ssize_t r = rcgc_collect(h, 2);
    tl_check(h);
    assert_int_equal(r, expect_first);
    for (int i = 0; i < n; i++)
        assert_int_equal(tl_log_count(TL_EV_FINALIZE, i + 1), 1);
    /* All finalizers ran before the first clear. */
    size_t last_fin = 0, first_clear = (size_t)-1;
    for (size_t i = 0; i < tl_log_len(); i++) {
        if (tl_log_at(i)->kind == TL_EV_FINALIZE)
            last_fin = i;
        if (tl_log_at(i)->kind == TL_EV_CLEAR && first_clear == (size_t)-1)
            first_clear = i;
    }
    assert_true(first_clear == (size_t)-1 || first_clear > last_fin);
    assert_int_equal(tl_survivors_count(), (size_t)resurrectors);
    for (size_t i = 0; i < tl_survivors_count(); i++) {
        tl_node *s = tl_survivor(i);
        assert_int_equal(kinds[s->id - 1], RESURRECTOR);
    }
    for (int i = 0; i < n; i++)
        assert_false(tl_wr_alive(wrs[i])); /* the collector path cleared them all */

    tl_survivors_clear();
    r = rcgc_collect(h, 2);
    tl_check(h);
    assert_int_equal(r, expect_second);
    for (int i = 0; i < n; i++) {
        assert_int_equal(tl_log_count(TL_EV_FINALIZE, i + 1), 1);
        assert_int_equal(tl_log_count(TL_EV_DEALLOC, i + 1), 1);
    }
    assert_int_equal(tl_survivors_count(), 0);
    for (int i = 0; i < n; i++)
        rcgc_decref(wrs[i]);
    finish(h);
}

/* F8 test_homogenous: 3 x Simple. */
static void test_finalization_chain_homogenous(void **state)
{
    (void)state;
    const chain_kind k[] = {SIMPLE, SIMPLE, SIMPLE};
    run_chain(k, 3, 3, 0);
}

/* F9 test_homogenous_resurrect: 3 x Resurrector: everything survives the first time. */
static void test_finalization_chain_homogenous_resurrect(void **state)
{
    (void)state;
    const chain_kind k[] = {RESURRECTOR, RESURRECTOR, RESURRECTOR};
    run_chain(k, 3, 0, 3);
}

/* F10 test_homogenous_suicidal: 3 x Suicidal: all die during finalization. */
static void test_finalization_chain_homogenous_suicidal(void **state)
{
    (void)state;
    const chain_kind k[] = {SUICIDAL, SUICIDAL, SUICIDAL};
    run_chain(k, 3, 0, 0);
}

/* F11 test_heterogenous_suicidal_one: [Suicidal, Simple] x 2. */
static void test_finalization_chain_heterogenous_suicidal_one(void **state)
{
    (void)state;
    const chain_kind k[] = {SUICIDAL, SIMPLE, SUICIDAL, SIMPLE};
    run_chain(k, 4, 0, 0); /* every link is dropped: all die during finalization */
}

/* F12 test_heterogenous_suicidal_two: Suicidal x 2 + Simple x 2. */
static void test_finalization_chain_heterogenous_suicidal_two(void **state)
{
    (void)state;
    const chain_kind k[] = {SUICIDAL, SUICIDAL, SIMPLE, SIMPLE};
    run_chain(k, 4, 4, 0); /* the two Simple keep each other and the Suicidal alive */
}

/* F13 test_heterogenous_resurrect_one: [Resurrector, Simple] x 2: the whole ring is
 * reachable from the resurrected objects. */
static void test_finalization_chain_heterogenous_resurrect_one(void **state)
{
    (void)state;
    const chain_kind k[] = {RESURRECTOR, SIMPLE, RESURRECTOR, SIMPLE};
    run_chain(k, 4, 0, 4);
}

/* F14 test_heterogenous_resurrect_two: [Resurrector, Simple, Suicidal] x 2. */
static void test_finalization_chain_heterogenous_resurrect_two(void **state)
{
    (void)state;
    const chain_kind k[] = {RESURRECTOR, SIMPLE, SUICIDAL, RESURRECTOR, SIMPLE, SUICIDAL};
    run_chain(k, 6, 0, 6); /* every node stays reachable from a resurrector */
}

/* F15 test_heterogenous_resurrect_three: Resurrector x 2 + Simple x 2 + Suicidal x 2. */
static void test_finalization_chain_heterogenous_resurrect_three(void **state)
{
    (void)state;
    const chain_kind k[] = {RESURRECTOR, RESURRECTOR, SIMPLE, SIMPLE, SUICIDAL, SUICIDAL};
    run_chain(k, 6, 0, 6);
}

/* ---- LegacyFinalizationTest ---- */

/* legacy_del records whether the object's weak reference (in user) is already dead. */
static void legacy_sees_wr(tl_node *self)
{
    if (self->user && tl_wr_alive(self->user))
        g_insane++; /* "weakrefs are cleared before tp_del is called" */
}

/* F16 test_legacy: both finalizers run once, finalize first, weak references cleared
 * (and their callbacks run) before legacy_del. */
static void test_finalization_legacy(void **state)
{
    (void)state;
    rcgc_heap *h = start();
    tl_node *s = tl_new(h, &tl_LegacyFinNode, 1);
    s->on_legacy_del = legacy_sees_wr;
    void *wr = tl_wr_new(h, s, tl_wrcb_log, (void *)(intptr_t)1);
    s->user = wr;
    rcgc_decref(s);
    assert_int_equal(rcgc_collect(h, 2), 0);
    assert_int_equal(tl_log_len(), 4);
    assert_int_equal(tl_log_at(0)->kind, TL_EV_FINALIZE);
    assert_int_equal(tl_log_at(1)->kind, TL_EV_WRCB);
    assert_false(tl_log_at(1)->alive);
    assert_int_equal(tl_log_at(2)->kind, TL_EV_LEGACY_DEL);
    assert_int_equal(tl_log_at(3)->kind, TL_EV_DEALLOC);
    assert_int_equal(tl_survivors_count(), 0);
    assert_false(tl_wr_alive(wr));
    assert_int_equal(rcgc_collect(h, 2), 0);
    assert_int_equal(tl_log_count(TL_EV_FINALIZE, 1), 1);
    assert_int_equal(tl_log_count(TL_EV_LEGACY_DEL, 1), 1);
    rcgc_decref(wr);
    finish(h);
}

/* F17 test_legacy_resurrect: legacy_del resurrects; weak references are dead already;
 * at the next death finalize does not run again but legacy_del does. */
static void test_finalization_legacy_resurrect(void **state)
{
    (void)state;
    rcgc_heap *h = start();
    tl_node *s = tl_new(h, &tl_LegacyFinNode, 1);
    s->del_mode = TL_RESURRECT;
    s->on_legacy_del = legacy_sees_wr;
    void *wr = tl_wr_new(h, s, NULL, NULL);
    s->user = wr;
    rcgc_decref(s);
    assert_int_equal(rcgc_collect(h, 2), 0);
    assert_int_equal(tl_log_count(TL_EV_FINALIZE, 1), 1);
    assert_int_equal(tl_log_count(TL_EV_LEGACY_DEL, 1), 1);
    assert_int_equal(tl_survivors_count(), 1);
    assert_ptr_equal(tl_survivor(0), s);
    assert_false(tl_wr_alive(wr));
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 1), 0);
    tl_check(h);
    tl_survivors_clear();
    assert_int_equal(rcgc_collect(h, 2), 0);
    assert_int_equal(tl_log_count(TL_EV_FINALIZE, 1), 1);
    assert_int_equal(tl_log_count(TL_EV_LEGACY_DEL, 1), 2);
    assert_int_equal(tl_survivors_count(), 1);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 1), 0);
    assert_false(tl_wr_alive(wr));
    tl_check(h);
    s->del_mode = 0;
    s->user = NULL;
    tl_survivors_clear();
    assert_int_equal(tl_log_count(TL_EV_FINALIZE, 1), 1);
    assert_int_equal(tl_log_count(TL_EV_LEGACY_DEL, 1), 3);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 1), 1);
    rcgc_decref(wr);
    finish(h);
}

/* F18 test_legacy_self_cycle: the collector calls neither finalizer; the object goes to
 * the garbage list and its weak reference stays alive; breaking the cycle frees it. */
static void test_finalization_legacy_self_cycle(void **state)
{
    (void)state;
    rcgc_heap *h = start();
    tl_node *s = tl_new(h, &tl_LegacyFinNode, 1);
    tl_self_loop(s, 0);
    void *wr = tl_wr_new(h, s, NULL, NULL);
    rcgc_decref(s);
    assert_int_equal(rcgc_collect(h, 2), 1);
    tl_check(h);
    assert_int_equal(tl_log_count(TL_EV_FINALIZE, -1), 0);
    assert_int_equal(tl_log_count(TL_EV_LEGACY_DEL, -1), 0);
    assert_int_equal(tl_survivors_count(), 0);
    assert_int_equal(rcgc_garbage_count(h), 1);
    assert_ptr_equal(rcgc_garbage_get(h, 0), s);
    assert_true(tl_wr_alive(wr));
    assert_false(rcgc_is_finalized(s));
    /* gc.garbage[0].ref = None, then the list lets go. */
    tl_unset(rcgc_garbage_get(h, 0), 0);
    rcgc_garbage_clear(h);
    assert_false(tl_wr_alive(wr));
    assert_int_equal(tl_log_count(TL_EV_FINALIZE, 1), 1);
    assert_int_equal(tl_log_count(TL_EV_LEGACY_DEL, 1), 1);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 1), 1);
    rcgc_decref(wr);
    finish(h);
}

/* ---- DESIGN.md rules beyond the catalogue ---- */

/* Refcount path, exact order: finalize, weak-reference callbacks (newest first), dealloc;
 * the finalizer sees its weak references alive. */
static void fin_sees_wr(tl_node *self)
{
    if (!tl_wr_alive(self->user))
        g_insane++;
}

static void test_finalization_refcount_path_order(void **state)
{
    (void)state;
    rcgc_heap *h = start();
    tl_node *s = tl_new(h, &tl_FinNode, 1);
    s->on_finalize = fin_sees_wr;
    void *w1 = tl_wr_new(h, s, tl_wrcb_log, (void *)(intptr_t)11);
    void *w2 = tl_wr_new(h, s, tl_wrcb_log, (void *)(intptr_t)12);
    s->user = w1;
    rcgc_decref(s);
    assert_int_equal(tl_log_len(), 4);
    assert_int_equal(tl_log_at(0)->kind, TL_EV_FINALIZE);
    assert_int_equal(tl_log_at(1)->kind, TL_EV_WRCB);
    assert_int_equal(tl_log_at(1)->id, 12);
    assert_ptr_equal(tl_log_at(1)->ptr, w2);
    assert_false(tl_log_at(1)->alive);
    assert_int_equal(tl_log_at(2)->kind, TL_EV_WRCB);
    assert_int_equal(tl_log_at(2)->id, 11);
    assert_false(tl_log_at(2)->alive);
    assert_int_equal(tl_log_at(3)->kind, TL_EV_DEALLOC);
    rcgc_decref(w1);
    rcgc_decref(w2);
    finish(h);
}

/* On the collector path all finalizers run after weak references are cleared and
 * their callbacks ran, and before any clear; a callback of an external weak reference
 * to trash runs before the finalizer of the object it refers to ([local]: [cb, del]). */
static void test_finalization_collector_path_order(void **state)
{
    (void)state;
    rcgc_heap *h = start();
    tl_node *a = tl_new(h, &tl_FinNode, 1);
    tl_node *b = tl_new(h, &tl_Node, 2);
    tl_set(a, 0, b);
    tl_set(b, 0, a);
    void *wb = tl_wr_new(h, b, tl_wrcb_log, (void *)(intptr_t)2);
    void *wa = tl_wr_new(h, a, NULL, NULL);
    a->user = wa;
    a->on_finalize = fin_sees_wr; /* counts as insane when wa is alive: expected here */
    rcgc_decref(a);
    rcgc_decref(b);
    assert_int_equal(rcgc_collect(h, 2), 2);
    assert_int_equal(g_insane, 1); /* wa was already dead inside the finalizer */
    g_insane = 0;
    assert_true(tl_log_len() >= 3);
    assert_int_equal(tl_log_at(0)->kind, TL_EV_WRCB);
    assert_false(tl_log_at(0)->alive);
    assert_int_equal(tl_log_at(1)->kind, TL_EV_FINALIZE);
    assert_int_equal(tl_log_at(2)->kind, TL_EV_CLEAR);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, -1), 2);
    rcgc_decref(wa);
    rcgc_decref(wb);
    finish(h);
}

/* A finalizer that makes a still-unreachable neighbour reachable resurrects it and all
 * it reaches; the finalizer of an object reached this way still ran (all finalizers of
 * the unreachable set run before the resurrection check). */
static void stash_neighbour(tl_node *self)
{
    tl_survivor_add(self->slot[0]);
}

static void test_finalization_resurrect_neighbour(void **state)
{
    (void)state;
    rcgc_heap *h = start();
    tl_node *a = tl_new(h, &tl_FinNode, 1);
    tl_node *b = tl_new(h, &tl_FinNode, 2);
    tl_node *c = tl_new(h, &tl_Node, 3);
    a->on_finalize = stash_neighbour; /* stores b */
    tl_set(a, 0, b);
    tl_set(b, 0, c);
    tl_set(c, 0, a);
    rcgc_decref(a);
    rcgc_decref(b);
    rcgc_decref(c);
    assert_int_equal(rcgc_collect(h, 2), 0); /* b reaches c reaches a: all survive */
    tl_check(h);
    assert_int_equal(tl_log_count(TL_EV_FINALIZE, 1), 1);
    assert_int_equal(tl_log_count(TL_EV_FINALIZE, 2), 1);
    assert_int_equal(tl_log_count(TL_EV_CLEAR, -1), 0);
    assert_true(rcgc_is_finalized(a));
    assert_true(rcgc_is_finalized(b));
    assert_false(rcgc_is_finalized(c)); /* Node has no finalizer */
    tl_survivors_clear();
    assert_int_equal(rcgc_collect(h, 2), 3);
    assert_int_equal(tl_log_count(TL_EV_FINALIZE, -1), 2);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, -1), 3);
    finish(h);
}

/* Partial resurrection: only what the resurrected object reaches survives; the rest of
 * the unreachable set is still collected. */
static void test_finalization_partial_resurrection(void **state)
{
    (void)state;
    rcgc_heap *h = start();
    tl_node *x = tl_new(h, &tl_Node, 1);
    tl_node *r = tl_new(h, &tl_FinNode, 2);
    r->fin_mode = TL_RESURRECT;
    tl_node *y = tl_new(h, &tl_Node, 3);
    tl_set(x, 0, r); /* x -> r -> y -> y; x -> x */
    tl_self_loop(x, 1);
    tl_set(r, 0, y);
    tl_self_loop(y, 0);
    rcgc_decref(x);
    rcgc_decref(r);
    rcgc_decref(y);
    assert_int_equal(rcgc_collect(h, 2), 1); /* x only */
    tl_check(h);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 1), 1);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 2), 0);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 3), 0);
    assert_ptr_equal(r->slot[0], y);
    assert_ptr_equal(y->slot[0], y);
    assert_int_equal(rcgc_refcount(r), 1); /* the survivors list; x's reference is gone */
    tl_survivors_clear();
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 2), 1);
    assert_int_equal(rcgc_collect(h, 2), 1); /* y */
    assert_int_equal(tl_log_count(TL_EV_FINALIZE, 2), 1);
    finish(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_finalization_simple),
        cmocka_unit_test(test_finalization_simple_resurrect),
        cmocka_unit_test(test_finalization_non_gc),
        cmocka_unit_test(test_finalization_non_gc_resurrect),
        cmocka_unit_test(test_finalization_self_cycle_simple),
        cmocka_unit_test(test_finalization_self_cycle_simple_resurrect),
        cmocka_unit_test(test_finalization_self_cycle_simple_suicide),
        cmocka_unit_test(test_finalization_chain_homogenous),
        cmocka_unit_test(test_finalization_chain_homogenous_resurrect),
        cmocka_unit_test(test_finalization_chain_homogenous_suicidal),
        cmocka_unit_test(test_finalization_chain_heterogenous_suicidal_one),
        cmocka_unit_test(test_finalization_chain_heterogenous_suicidal_two),
        cmocka_unit_test(test_finalization_chain_heterogenous_resurrect_one),
        cmocka_unit_test(test_finalization_chain_heterogenous_resurrect_two),
        cmocka_unit_test(test_finalization_chain_heterogenous_resurrect_three),
        cmocka_unit_test(test_finalization_legacy),
        cmocka_unit_test(test_finalization_legacy_resurrect),
        cmocka_unit_test(test_finalization_legacy_self_cycle),
        cmocka_unit_test(test_finalization_refcount_path_order),
        cmocka_unit_test(test_finalization_collector_path_order),
        cmocka_unit_test(test_finalization_resurrect_neighbour),
        cmocka_unit_test(test_finalization_partial_resurrection),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
