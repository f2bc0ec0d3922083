/* test_review.c: an adversarial review of the collector. Each test is either a proof of
 * a bug (named test_review_*: it fails, or crashes under ASan, until the bug is
 * fixed) or a tricky re-entrancy scenario that was checked and found correct (kept as a
 * regression test). Bugs that abort the process (use after free) run last. */
#define _POSIX_C_SOURCE 200809L

#include "testlib.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ID(n) ((void *)(intptr_t)(n))

/* ---- correct scenarios ---- */

/* A collection's finalizer drops the only reference to another trash object whose own
 * finalizer has not run yet: that object dies on the refcount path (its finalizer runs
 * there, once) and resurrects itself; it must survive the collection, not be cleared,
 * and not be counted. */
static void drop_slot1(tl_node *self)
{
    tl_unset(self, 1);
}

static void test_review_finalizer_kills_unfinalized_trash_that_resurrects(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    tl_node *a = tl_new(h, &tl_FinNode, 1);
    tl_node *b = tl_new(h, &tl_FinNode, 2);
    tl_self_loop(a, 0);
    tl_set(a, 1, b);
    a->on_finalize = drop_slot1;
    b->fin_mode = TL_RESURRECT;
    rcgc_decref(b);
    rcgc_decref(a);
    /* b comes after a in the candidates, so a's finalizer runs first. */
    assert_int_equal(rcgc_collect(h, 2), 1); /* a only */
    tl_check(h);
    assert_int_equal(tl_log_count(TL_EV_FINALIZE, 1), 1);
    assert_int_equal(tl_log_count(TL_EV_FINALIZE, 2), 1);
    assert_int_equal(tl_log_count(TL_EV_CLEAR, 2), 0);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 1), 1);
    assert_int_equal(tl_survivors_count(), 1);
    assert_ptr_equal(tl_survivor(0), b);
    assert_true(rcgc_is_finalized(b));
    assert_true(rcgc_is_tracked(b));
    rcgc_gen_stats st[3];
    rcgc_get_stats(h, st);
    assert_int_equal(st[2].collected, 1);
    tl_survivors_clear(); /* b dies; no second finalizer */
    assert_int_equal(tl_log_count(TL_EV_FINALIZE, 2), 1);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 2), 1);
    tl_check(h);
    tl_heap_free(h);
}

/* A trash object that references a legacy_del object reachable only from it: the legacy
 * object is uncollectable until the trash object's clear drops it; it then dies on the
 * refcount path (legacy_del runs once) and is neither counted uncollectable nor put in
 * the garbage list (CPython counts the finalizers list after delete_garbage). */
static void test_review_legacy_object_dies_during_delete_garbage(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    tl_node *w = tl_new(h, &tl_Node, 1);
    tl_node *l = tl_new(h, &tl_LegacyNode, 2);
    tl_self_loop(w, 0);
    tl_set_steal(w, 1, l);
    rcgc_decref(w);
    assert_int_equal(rcgc_collect(h, 2), 1);
    tl_check(h);
    assert_int_equal(rcgc_garbage_count(h), 0);
    assert_int_equal(tl_log_count(TL_EV_LEGACY_DEL, 2), 1);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 2), 1);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 1), 1);
    rcgc_gen_stats st[3];
    rcgc_get_stats(h, st);
    assert_int_equal(st[2].uncollectable, 0);
    tl_heap_free(h);
}

/* A weak reference held by an uncollectable cycle, pointing at collectable trash: it is
 * not trash itself (CPython clears COLLECTING on the finalizers set), so its callback
 * runs; the cycle and the weak reference are uncollectable (n = 2), the target is
 * collected (m = 1), and only the legacy_del object enters the garbage list. */
static void test_review_weakref_in_legacy_set_calls_back(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    tl_node *l = tl_new(h, &tl_LegacyNode, 1);
    tl_node *t = tl_new(h, &tl_Node, 2);
    tl_self_loop(l, 0);
    tl_self_loop(t, 0);
    tl_set_steal(l, 1, tl_wr_new(h, t, tl_wrcb_log, ID(9)));
    rcgc_decref(t);
    rcgc_decref(l);
    assert_int_equal(rcgc_collect(h, 2), 3);
    tl_check(h);
    assert_int_equal(tl_log_count(TL_EV_WRCB, 9), 1);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 2), 1);
    assert_int_equal(rcgc_garbage_count(h), 1);
    assert_ptr_equal(rcgc_garbage_get(h, 0), l);
    assert_int_equal(tl_log_count(TL_EV_LEGACY_DEL, 1), 0);
    rcgc_garbage_clear(h);
    tl_check(h);
    tl_heap_free(h);
}

/* A collection's finalizer untracks and re-tracks itself: it leaves the collection (now
 * in generation 0), so it and everything it reaches survive, uncleared. */
static void retrack_self(tl_node *self)
{
    rcgc_untrack(self);
    rcgc_track(self);
}

static void test_review_finalizer_retracks_itself(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    tl_node *a = tl_new(h, &tl_FinNode, 1);
    tl_node *b = tl_new(h, &tl_Node, 2);
    tl_set(a, 0, b);
    tl_set(b, 0, a);
    a->on_finalize = retrack_self;
    rcgc_decref(b);
    rcgc_decref(a);
    assert_int_equal(rcgc_collect(h, 0), 0);
    tl_check(h);
    assert_int_equal(tl_log_count(TL_EV_FINALIZE, 1), 1);
    assert_int_equal(tl_log_count(TL_EV_CLEAR, -1), 0);
    assert_int_equal(tl_generation_of(h, a), 0);
    assert_int_equal(tl_generation_of(h, b), 1);
    /* Finalized once: the next collection frees both without calling it again. */
    assert_int_equal(rcgc_collect(h, 2), 2);
    assert_int_equal(tl_log_count(TL_EV_FINALIZE, 1), 1);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, -1), 2);
    tl_check(h);
    tl_heap_free(h);
}

/* A collection's finalizer makes a weak reference with a callback to trash that stays
 * trash (reached through a borrowed pointer, not a strong reference): it is cleared
 * before clear and its callback never runs (3.14.7's second pass). A weak reference to
 * the finalizer's own object, which it resurrects, stays valid. */
static void *g_fin_wr[2];

static void make_weakrefs(tl_node *self)
{
    rcgc_heap *h = rcgc_heap_of(self);
    g_fin_wr[0] = rcgc_weakref_new(h, self->user, tl_wrcb_log, ID(1));
    g_fin_wr[1] = rcgc_weakref_new(h, self, tl_wrcb_log, ID(2));
    tl_survivor_add(self);
}

static void test_review_finalizer_weakrefs_second_pass(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    tl_node *a = tl_new(h, &tl_FinNode, 1);
    tl_node *t = tl_new(h, &tl_Node, 2);
    tl_self_loop(a, 0);
    tl_self_loop(t, 0);
    a->user = t;
    a->on_finalize = make_weakrefs;
    rcgc_decref(t);
    rcgc_decref(a);
    assert_int_equal(rcgc_collect(h, 2), 1); /* t */
    tl_check(h);
    assert_non_null(g_fin_wr[0]);
    assert_non_null(g_fin_wr[1]);
    assert_int_equal(tl_log_count(TL_EV_WRCB, -1), 0);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 2), 1);
    assert_null(rcgc_weakref_get(g_fin_wr[0]));
    void *got = rcgc_weakref_get(g_fin_wr[1]);
    assert_ptr_equal(got, a);
    rcgc_decref(got);
    rcgc_decref(g_fin_wr[0]);
    tl_survivors_clear();
    assert_int_equal(rcgc_collect(h, 2), 1); /* a, once more, without its finalizer */
    assert_int_equal(tl_log_count(TL_EV_FINALIZE, 1), 1);
    assert_int_equal(tl_log_count(TL_EV_WRCB, 2), 1);
    rcgc_decref(g_fin_wr[1]);
    g_fin_wr[0] = g_fin_wr[1] = NULL;
    tl_check(h);
    tl_heap_free(h);
}

/* freeze() from a refcount-path finalizer: the dying object was put in generation 0 for
 * its finalizer and is frozen with the rest; it must leave the frozen generation when it
 * dies. */
static void freeze_heap(tl_node *self)
{
    rcgc_freeze(rcgc_heap_of(self));
}

static void test_review_freeze_inside_refcount_finalizer(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    tl_node *keep = tl_new(h, &tl_Node, 1);
    tl_node *a = tl_new(h, &tl_FinNode, 2);
    a->on_finalize = freeze_heap;
    rcgc_untrack(a); /* the finalizer path must re-track it, then freeze moves it */
    rcgc_decref(a);
    tl_check(h);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 2), 1);
    assert_int_equal(rcgc_get_freeze_count(h), 1); /* keep only */
    rcgc_unfreeze(h);
    rcgc_decref(keep);
    tl_check(h);
    tl_heap_free(h);
}

/* Re-entrant calls from a collection's finalizer: collect (refused), freeze (refused),
 * get_objects (never shows the collection's objects), garbage_clear (drops the list's
 * references, some of them into the collection's survivors). */
static size_t g_seen_trash;
static void *g_trash_obj;

static int count_trash(void *obj, void *arg)
{
    (void)arg;
    if (obj == g_trash_obj)
        g_seen_trash++;
    return 0;
}

static void reenter(tl_node *self)
{
    rcgc_heap *h = rcgc_heap_of(self);
    tl_log_add(TL_EV_MARK, (int)rcgc_collect(h, 2), NULL, false);
    rcgc_freeze(h);
    tl_log_add(TL_EV_MARK, 100 + (int)rcgc_get_freeze_count(h), NULL, false);
    (void)rcgc_get_objects(h, -1, count_trash, NULL);
    rcgc_garbage_clear(h);
}

static void test_review_reentrant_calls_in_gc_finalizer(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    /* A legacy cycle in the garbage list, kept alive only by it. */
    tl_node *l = tl_new(h, &tl_LegacyNode, 1);
    tl_self_loop(l, 0);
    rcgc_decref(l);
    assert_int_equal(rcgc_collect(h, 2), 1);
    assert_int_equal(rcgc_garbage_count(h), 1);
    /* The collection under test. */
    tl_node *a = tl_new(h, &tl_FinNode, 2);
    tl_self_loop(a, 0);
    a->on_finalize = reenter;
    g_trash_obj = a;
    g_seen_trash = 0;
    rcgc_decref(a);
    tl_log_reset();
    assert_int_equal(rcgc_collect(h, 2), 1);
    tl_check(h);
    assert_int_equal(tl_log_count(TL_EV_MARK, 0), 1);   /* nested collect refused */
    assert_int_equal(tl_log_count(TL_EV_MARK, 100), 1); /* freeze refused */
    assert_int_equal(g_seen_trash, 0);
    assert_int_equal(rcgc_garbage_count(h), 0);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 2), 1);
    /* l lost the list's reference inside the collection: trash again, found again. */
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 1), 0);
    assert_int_equal(rcgc_collect(h, 2), 1);
    assert_int_equal(rcgc_garbage_count(h), 1);
    assert_ptr_equal(rcgc_garbage_get(h, 0), l);
    rcgc_garbage_clear(h);
    tl_check(h);
    tl_heap_free(h);
}

/* gc callbacks that remove themselves and add another while running, and a finalizer
 * that removes a callback between START and STOP. */
static int g_cb_calls[3];

static void cb_b(rcgc_heap *h, int phase, const rcgc_collect_info *info, void *arg);

static void cb_a(rcgc_heap *h, int phase, const rcgc_collect_info *info, void *arg)
{
    (void)info;
    (void)arg;
    g_cb_calls[0]++;
    if (phase == RCGC_PHASE_START) {
        assert_int_equal(rcgc_remove_callback(h, cb_a, NULL), 0);
        assert_int_equal(rcgc_add_callback(h, cb_b, NULL), 0);
    }
}

static void cb_b(rcgc_heap *h, int phase, const rcgc_collect_info *info, void *arg)
{
    (void)h;
    (void)info;
    (void)arg;
    g_cb_calls[phase == RCGC_PHASE_START ? 1 : 2]++;
}

static void remove_b(tl_node *self)
{
    (void)rcgc_remove_callback(rcgc_heap_of(self), cb_b, NULL);
}

static void test_review_callbacks_change_while_running(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    memset(g_cb_calls, 0, sizeof g_cb_calls);
    assert_int_equal(rcgc_add_callback(h, cb_a, NULL), 0);
    tl_node *a = tl_new(h, &tl_FinNode, 1);
    tl_self_loop(a, 0);
    a->on_finalize = remove_b;
    rcgc_decref(a);
    assert_int_equal(rcgc_collect(h, 0), 1);
    assert_int_equal(g_cb_calls[0], 1); /* START only */
    assert_int_equal(g_cb_calls[1], 1); /* added during START: called in START */
    assert_int_equal(g_cb_calls[2], 0); /* removed by the finalizer before STOP */
    assert_int_equal(rcgc_remove_callback(h, cb_b, NULL), RCGC_ENOENT);
    tl_check(h);
    tl_heap_free(h);
}

/* A collection that runs while the trashcan holds deferred deaths: a deep chain whose
 * nodes have weak references with callbacks, and whose finalizers allocate with a low
 * threshold (automatic collections at every depth, also with a full trash stack). */
static rcgc_heap *g_chain_heap;

static void alloc_in_finalizer(tl_node *self)
{
    (void)self;
    tl_node *tmp = rcgc_new(g_chain_heap, &tl_Node);
    if (tmp) {
        tl_self_loop(tmp, 0); /* garbage for the automatic collection */
        rcgc_decref(tmp);
    }
}

static void test_review_collections_during_trashcan(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    g_chain_heap = h;
    rcgc_set_threshold(h, 3, 2, 2);
    enum { N = 400 };
    static void *refs[N];
    tl_node *head = tl_new(h, &tl_FinNode, 0);
    head->on_finalize = alloc_in_finalizer;
    tl_node *cur = head;
    for (int i = 1; i < N; i++) {
        tl_node *n = tl_new(h, &tl_FinNode, i);
        n->on_finalize = alloc_in_finalizer;
        refs[i] = tl_wr_new(h, n, tl_wrcb_log, ID(i));
        tl_set_steal(cur, 0, n);
        cur = n;
    }
    rcgc_enable(h);
    rcgc_decref(head);
    rcgc_disable(h);
    tl_check(h);
    rcgc_collect(h, 2);
    tl_check(h);
    assert_int_equal(tl_log_count(TL_EV_FINALIZE, -1), N);
    assert_int_equal(tl_log_count(TL_EV_WRCB, -1), N - 1);
    for (size_t i = 0; i < tl_log_len(); i++)
        if (tl_log_at(i)->kind == TL_EV_WRCB)
            assert_false(tl_log_at(i)->alive);
    for (int i = 1; i < N; i++) {
        assert_null(rcgc_weakref_get(refs[i]));
        rcgc_decref(refs[i]);
    }
    tl_check(h);
    tl_heap_free(h);
}

/* ---- bugs ---- */

/* Regression (found in review, fixed): rcgc.h allows event hooks to incref the object they are
 * given, and the COLLECTABLE event hands over trash before weak references and finalizers are
 * handled. A hook that keeps such an object (as an inspector would) then holds an object that
 * the collector clears anyway: without finalizers or callbacks no second analysis runs,
 * and the object is cleared and counted as collected although user code references it
 * ("No user code ever sees a cleared object"). */
static void *g_kept;

static void keep_collectable(rcgc_heap *h, const rcgc_event *ev, void *arg)
{
    (void)h;
    (void)arg;
    if (ev->kind == RCGC_EVENT_COLLECTABLE && g_kept == NULL) {
        g_kept = (void *)(uintptr_t)ev->object;
        rcgc_incref(g_kept);
    }
}

static void test_review_event_hook_incref_sees_cleared_object(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    g_kept = NULL;
    assert_int_equal(rcgc_add_event_hook(h, keep_collectable, NULL), 0);
    rcgc_set_debug(h, RCGC_DEBUG_COLLECTABLE);
    tl_node *a = tl_new(h, &tl_Node, 1);
    tl_self_loop(a, 0);
    rcgc_decref(a);
    tl_capture cap;
    tl_capture_start(&cap);
    ssize_t r = rcgc_collect(h, 2);
    free(tl_capture_stop(&cap));
    rcgc_set_debug(h, 0);
    assert_ptr_equal(g_kept, a);
    tl_check(h);
    bool cleared = tl_log_count(TL_EV_CLEAR, 1) > 0;
    bool intact = a->slot[0] == a;
    rcgc_decref(g_kept);
    g_kept = NULL;
    rcgc_collect(h, 2);
    tl_heap_free(h);
    assert_false(cleared); /* the hook keeps it: resurrected, never cleared */
    assert_true(intact);
    assert_int_equal(r, 0); /* resurrected objects are not counted */
}

/* Regression (found in review, fixed): rcgc_heap_free's "still alive" count subtracts both the
 * frozen objects and the garbage list, so an entry of the garbage list that was frozen
 * afterwards is subtracted twice: the count wraps around (heap.c report_shutdown). */
static void test_review_heap_free_alive_count_frozen_garbage(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    tl_node *l = tl_new(h, &tl_LegacyNode, 1);
    tl_self_loop(l, 0);
    rcgc_decref(l);
    assert_int_equal(rcgc_collect(h, 2), 1);
    assert_int_equal(rcgc_garbage_count(h), 1);
    rcgc_freeze(h);
    assert_int_equal(rcgc_get_freeze_count(h), 1);
    tl_capture cap;
    tl_capture_start(&cap);
    tl_heap_free(h);
    char *out = tl_capture_stop(&cap);
    bool wrapped = strstr(out, "18446744073709551615") != NULL;
    if (wrapped)
        print_message("heap_free printed: %s", out);
    free(out);
    assert_false(wrapped);
}

/* Regression (found in review, fixed): RCGC_THRESHOLD is "all or nothing", but a number too
 * large for strtoull is silently taken as ULLONG_MAX (ERANGE not checked, debug.c
 * read_threshold). */
static void test_review_env_threshold_out_of_range(void **state)
{
    (void)state;
    setenv("RCGC_THRESHOLD", "99999999999999999999999,10,10", 1);
    rcgc_heap_options o = {.name = "env", .panic = tl_panic_record};
    tl_capture cap;
    tl_capture_start(&cap);
    rcgc_heap *h = rcgc_heap_new_with(&o);
    unsetenv("RCGC_THRESHOLD");
    free(tl_capture_stop(&cap));
    assert_non_null(h);
    size_t t[3];
    rcgc_get_threshold(h, t);
    rcgc_heap_free(h);
    assert_int_equal(t[0], 700);
}

/* BUG (documentation): "objects the visitor untracks or frees are skipped, never visited
 * twice", and rcgc_track is "legal in every callback but traverse"; a visitor that
 * untracks and re-tracks the object it is given sees it again at the end of the pinned
 * generation. */
static size_t g_visits;
static void *g_visit_target;

static int retrack_visitor(void *obj, void *arg)
{
    (void)arg;
    if (obj != g_visit_target)
        return 0;
    if (g_visits++ == 0) {
        rcgc_untrack(obj);
        rcgc_track(obj);
    }
    return 0;
}

static void test_review_walk_visits_retracked_object_twice(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    tl_node *a = tl_new(h, &tl_Node, 1);
    tl_node *b = tl_new(h, &tl_Node, 2);
    g_visit_target = a;
    g_visits = 0;
    assert_int_equal(rcgc_get_objects(h, 0, retrack_visitor, NULL), 0);
    tl_check(h);
    rcgc_decref(a);
    rcgc_decref(b);
    tl_heap_free(h);
    assert_int_equal(g_visits, 1);
}

/* Regression (found in review, fixed): rcgc_track is "legal in every callback but traverse",
 * but a dealloc that tracks its own object (CPython's subtype_dealloc re-tracks self;
 * PyObject_GC_Del unlinks a still-tracked object) leaves the freed object in generation 0: use
 * after free at the next walk, check or collection (object.c die_body/object_free never
 * unlink). */
static void retrack_dealloc(void *self)
{
    rcgc_track(self);
}

static int leaf_traverse(void *self, rcgc_visit_fn visit, void *arg)
{
    (void)self;
    (void)visit;
    (void)arg;
    return 0;
}

static const rcgc_type RetrackInDealloc = {
    .name = "RetrackInDealloc",
    .size = 16,
    .traverse = leaf_traverse,
    .dealloc = retrack_dealloc,
};

static void test_review_dealloc_tracks_self(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    void *o = rcgc_new(h, &RetrackInDealloc);
    assert_non_null(o);
    rcgc_decref(o);
    assert_int_equal(tl_objects_in(h, -1), 0); /* reads the freed object under ASan */
    tl_check(h);
    tl_heap_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_review_finalizer_kills_unfinalized_trash_that_resurrects),
        cmocka_unit_test(test_review_legacy_object_dies_during_delete_garbage),
        cmocka_unit_test(test_review_weakref_in_legacy_set_calls_back),
        cmocka_unit_test(test_review_finalizer_retracks_itself),
        cmocka_unit_test(test_review_finalizer_weakrefs_second_pass),
        cmocka_unit_test(test_review_freeze_inside_refcount_finalizer),
        cmocka_unit_test(test_review_reentrant_calls_in_gc_finalizer),
        cmocka_unit_test(test_review_callbacks_change_while_running),
        cmocka_unit_test(test_review_collections_during_trashcan),
        cmocka_unit_test(test_review_event_hook_incref_sees_cleared_object),
        cmocka_unit_test(test_review_heap_free_alive_count_frozen_garbage),
        cmocka_unit_test(test_review_env_threshold_out_of_range),
        cmocka_unit_test(test_review_walk_visits_retracked_object_twice),
        /* Last: aborts the process under ASan. */
        cmocka_unit_test(test_review_dealloc_tracks_self),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
