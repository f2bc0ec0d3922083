/* test_callbacks.c: gc callbacks (CPython's GCCallbackTests, catalogue #40-#42) and the
 * event hooks that carry what the DEBUG flags print as data.
 *
 * setUp of GCCallbackTests: automatic collection off, debug 0, two callbacks added. */
#include "testlib.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    int who;
    int phase;
    rcgc_collect_info info;
    void *arg;
} cb_visit;

#define MAX_VISITS 64
static cb_visit g_visit[MAX_VISITS];
static int g_nvisit;
static bool g_cleanup; /* cb2 cleans legacy objects from the garbage list at STOP */

static void record(int who, int phase, const rcgc_collect_info *info, void *arg)
{
    if (g_nvisit < MAX_VISITS)
        g_visit[g_nvisit++] = (cb_visit){.who = who, .phase = phase, .info = *info, .arg = arg};
}

static void cb1(rcgc_heap *h, int phase, const rcgc_collect_info *info, void *arg)
{
    (void)h;
    record(1, phase, info, arg);
}

/* As Python's cb2: at "stop", with cleanup on, take every legacy object out of the
 * garbage list and break its partner link. */
static void cb2(rcgc_heap *h, int phase, const rcgc_collect_info *info, void *arg)
{
    record(2, phase, info, arg);
    if (phase != RCGC_PHASE_STOP || !g_cleanup)
        return;
    void *uc[16];
    size_t n = 0;
    for (size_t i = 0; i < rcgc_garbage_count(h) && n < 16; i++) {
        void *e = rcgc_garbage_get(h, i);
        if (rcgc_type_of(e) == &tl_LegacyNode) {
            rcgc_incref(e);
            uc[n++] = e;
        }
    }
    for (size_t i = 0; i < n; i++)
        rcgc_garbage_remove(h, uc[i]);
    for (size_t i = 0; i < n; i++)
        tl_unset(uc[i], 0); /* e.partner = None */
    for (size_t i = 0; i < n; i++)
        rcgc_decref(uc[i]);
}

static rcgc_heap *setup(void)
{
    rcgc_heap *h = tl_heap_new();
    rcgc_set_debug(h, 0);
    g_nvisit = 0;
    g_cleanup = false;
    assert_int_equal(rcgc_add_callback(h, cb1, NULL), 0);
    assert_int_equal(rcgc_add_callback(h, cb2, NULL), 0);
    return h;
}

static void teardown(rcgc_heap *h)
{
    assert_int_equal(rcgc_remove_callback(h, cb1, NULL), 0);
    assert_int_equal(rcgc_remove_callback(h, cb2, NULL), 0);
    assert_int_equal(rcgc_remove_callback(h, cb1, NULL), RCGC_ENOENT);
    tl_heap_free(h);
}

/* Python's Uncollectable(): two objects with legacy finalizers that are partners. */
static void make_uncollectable_pair(rcgc_heap *h, int id)
{
    tl_node *a = tl_new(h, &tl_LegacyNode, id);
    tl_node *b = tl_new(h, &tl_LegacyNode, id + 1);
    tl_set(a, 0, b);
    tl_set(b, 0, a);
    rcgc_decref(a);
    rcgc_decref(b);
}

/* #40 test_collect: each callback is called once at start and once at stop, in
 * registration order; start reports 0 collected and 0 uncollectable. */
static void test_callbacks_collect(void **state)
{
    (void)state;
    rcgc_heap *h = setup();
    tl_node *n = tl_new(h, &tl_Node, 1);
    tl_self_loop(n, 0);
    rcgc_decref(n);
    assert_int_equal(rcgc_collect(h, 2), 1);
    tl_check(h);
    assert_int_equal(g_nvisit, 4);
    const int who[4] = {1, 2, 1, 2};
    const int phase[4] = {RCGC_PHASE_START, RCGC_PHASE_START, RCGC_PHASE_STOP, RCGC_PHASE_STOP};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(g_visit[i].who, who[i]);
        assert_int_equal(g_visit[i].phase, phase[i]);
        assert_int_equal(g_visit[i].info.generation, 2);
        assert_null(g_visit[i].arg);
    }
    for (int i = 0; i < 2; i++) {
        assert_int_equal(g_visit[i].info.collected, 0);
        assert_int_equal(g_visit[i].info.uncollectable, 0);
    }
    for (int i = 2; i < 4; i++) {
        assert_int_equal(g_visit[i].info.collected, 1);
        assert_int_equal(g_visit[i].info.uncollectable, 0);
    }
    teardown(h);
}

/* #41 test_collect_generation: info carries the generation collected. */
static void test_callbacks_collect_generation(void **state)
{
    (void)state;
    rcgc_heap *h = setup();
    for (int g = 0; g < 3; g++) {
        g_nvisit = 0;
        assert_int_equal(rcgc_collect(h, g), 0);
        assert_int_equal(g_nvisit, 4);
        for (int i = 0; i < 4; i++)
            assert_int_equal(g_visit[i].info.generation, g);
    }
    teardown(h);
}

/* #42 test_collect_garbage: two uncollectable pairs and one self-cycle: collected 1,
 * uncollectable 4. With one pair still held from outside (the Python test's loop
 * variable) and the list emptied, the next collection finds the other pair (0, 2), and
 * cb2 removes it from the garbage list at stop. */
static void test_callbacks_collect_garbage(void **state)
{
    (void)state;
    rcgc_heap *h = setup();
    make_uncollectable_pair(h, 10);
    make_uncollectable_pair(h, 20);
    tl_node *c = tl_new(h, &tl_Node, 30); /* C1055820(666) */
    tl_self_loop(c, 0);
    rcgc_decref(c);
    assert_int_equal(rcgc_collect(h, 2), 5);
    tl_check(h);
    int stops = 0;
    for (int i = 0; i < g_nvisit; i++) {
        if (g_visit[i].phase != RCGC_PHASE_STOP)
            continue;
        stops++;
        assert_int_equal(g_visit[i].info.collected, 1);
        assert_int_equal(g_visit[i].info.uncollectable, 4);
    }
    assert_int_equal(stops, 2);
    assert_int_equal(rcgc_garbage_count(h), 4);
    for (size_t i = 0; i < 4; i++)
        assert_ptr_equal(rcgc_type_of(rcgc_garbage_get(h, i)), &tl_LegacyNode);

    /* `e` (the last object of the for loop) keeps one pair reachable. */
    void *e = rcgc_garbage_get(h, 3);
    rcgc_incref(e);
    g_cleanup = true;
    g_nvisit = 0;
    rcgc_garbage_clear(h);
    tl_check(h);
    assert_int_equal(rcgc_collect(h, 2), 2);
    tl_check(h);
    stops = 0;
    for (int i = 0; i < g_nvisit; i++) {
        if (g_visit[i].phase != RCGC_PHASE_STOP)
            continue;
        stops++;
        assert_int_equal(g_visit[i].info.collected, 0);
        assert_int_equal(g_visit[i].info.uncollectable, 2);
    }
    assert_int_equal(stops, 2);
    assert_int_equal(rcgc_garbage_count(h), 0);
    /* cb2 broke the found pair: both died on the refcount path, legacy_del ran. */
    assert_int_equal(tl_log_count(TL_EV_LEGACY_DEL, -1), 2);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, -1), 3);

    /* Let the remaining pair go too. */
    g_cleanup = false;
    tl_unset(e, 0);
    rcgc_decref(e);
    tl_check(h);
    assert_int_equal(tl_log_count(TL_EV_LEGACY_DEL, -1), 4);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, -1), 5);
    teardown(h);
}

/* The same pair may be registered twice and is then called twice; remove drops the
 * oldest matching registration; fn and arg must both match. */
static void test_callbacks_duplicates_and_remove_oldest(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    g_nvisit = 0;
    int a = 1, b = 2;
    assert_int_equal(rcgc_add_callback(h, cb1, &a), 0);
    assert_int_equal(rcgc_add_callback(h, cb1, &b), 0);
    assert_int_equal(rcgc_add_callback(h, cb1, &a), 0);
    assert_int_equal(rcgc_collect(h, 0), 0);
    assert_int_equal(g_nvisit, 6);
    assert_ptr_equal(g_visit[0].arg, &a);
    assert_ptr_equal(g_visit[1].arg, &b);
    assert_ptr_equal(g_visit[2].arg, &a);
    assert_int_equal(rcgc_remove_callback(h, cb1, &a), 0);
    g_nvisit = 0;
    assert_int_equal(rcgc_collect(h, 0), 0);
    assert_int_equal(g_nvisit, 4);
    assert_ptr_equal(g_visit[0].arg, &b);
    assert_ptr_equal(g_visit[1].arg, &a);
    assert_int_equal(rcgc_remove_callback(h, cb2, &a), RCGC_ENOENT);
    assert_int_equal(rcgc_remove_callback(h, cb1, NULL), RCGC_ENOENT);
    assert_int_equal(rcgc_remove_callback(h, cb1, &a), 0);
    assert_int_equal(rcgc_remove_callback(h, cb1, &a), RCGC_ENOENT);
    assert_int_equal(rcgc_remove_callback(h, cb1, &b), 0);
    assert_int_equal(rcgc_remove_callback(h, cb1, &b), RCGC_ENOENT);
    g_nvisit = 0;
    assert_int_equal(rcgc_collect(h, 0), 0);
    assert_int_equal(g_nvisit, 0);
    assert_int_equal(rcgc_add_callback(h, NULL, NULL), RCGC_EINVAL);
    assert_int_equal(rcgc_collect(h, 0), 0);
    assert_int_equal(g_nvisit, 0);
    tl_heap_free(h);
}

/* Callbacks may call rcgc_collect: refused with 0 while the collection runs. */
static ssize_t g_nested[2];

static void nested_cb(rcgc_heap *h, int phase, const rcgc_collect_info *info, void *arg)
{
    (void)info;
    (void)arg;
    g_nested[phase == RCGC_PHASE_STOP] = rcgc_collect(h, 2);
}

static void test_callbacks_nested_collect_refused(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    g_nested[0] = g_nested[1] = 77;
    assert_int_equal(rcgc_add_callback(h, nested_cb, NULL), 0);
    tl_node *n = tl_new(h, &tl_Node, 1);
    tl_self_loop(n, 0);
    rcgc_decref(n);
    assert_int_equal(rcgc_collect(h, 1), 1);
    assert_int_equal(g_nested[0], 0);
    assert_int_equal(g_nested[1], 0);
    rcgc_gen_stats s[3];
    rcgc_get_stats(h, s);
    assert_int_equal(s[0].collections, 0);
    assert_int_equal(s[1].collections, 1);
    assert_int_equal(s[2].collections, 0);
    tl_check(h);
    assert_int_equal(rcgc_remove_callback(h, nested_cb, NULL), 0);
    tl_heap_free(h);
}

/* Automatic collections call the callbacks too. */
static void test_callbacks_automatic_collection(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    g_nvisit = 0;
    assert_int_equal(rcgc_add_callback(h, cb1, NULL), 0);
    rcgc_set_threshold(h, 2, 10, 10);
    rcgc_enable(h);
    tl_node *keep[3];
    for (int i = 0; i < 3; i++)
        keep[i] = tl_new(h, &tl_Node, i);
    rcgc_disable(h);
    assert_true(g_nvisit >= 2);
    assert_int_equal(g_visit[0].phase, RCGC_PHASE_START);
    assert_int_equal(g_visit[0].info.generation, 0);
    assert_int_equal(g_visit[1].phase, RCGC_PHASE_STOP);
    assert_int_equal(g_visit[1].info.generation, 0);
    for (int i = 0; i < 3; i++)
        rcgc_decref(keep[i]);
    tl_check(h);
    tl_heap_free(h);
}

/* The final collection of rcgc_heap_free calls no callbacks (as CPython's shutdown
 * collection), but does collect. */
static void test_callbacks_not_called_by_heap_free(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    g_nvisit = 0;
    assert_int_equal(rcgc_add_callback(h, cb1, NULL), 0);
    tl_node *n = tl_new(h, &tl_Node, 1);
    tl_self_loop(n, 0);
    rcgc_decref(n);
    tl_heap_free(h);
    assert_int_equal(g_nvisit, 0);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 1), 1);
}

/* ---- event hooks ---- */

typedef struct {
    int who;
    rcgc_event_kind kind;
    int generation;
    size_t count[3];
    const void *object;
    const rcgc_type *type;
    const rcgc_type *type_of_object; /* rcgc_type_of(object), read inside the hook */
    size_t unreachable, uncollectable;
    uint64_t duration_ns;
} ev_rec;

#define MAX_EVENTS 64
static ev_rec g_ev[MAX_EVENTS];
static int g_nev;

static void hook(rcgc_heap *h, const rcgc_event *ev, void *arg)
{
    (void)h;
    if (g_nev >= MAX_EVENTS)
        return;
    ev_rec *r = &g_ev[g_nev++];
    memset(r, 0, sizeof *r);
    r->who = (int)(intptr_t)arg;
    r->kind = ev->kind;
    r->generation = ev->generation;
    memcpy(r->count, ev->count, sizeof r->count);
    r->object = ev->object;
    r->type = ev->type;
    r->unreachable = ev->unreachable;
    r->uncollectable = ev->uncollectable;
    r->duration_ns = ev->duration_ns;
    if (ev->kind == RCGC_EVENT_COLLECTABLE || ev->kind == RCGC_EVENT_UNCOLLECTABLE)
        r->type_of_object = rcgc_type_of(ev->object);
}

/* START carries the generation and the objects in each generation before the
 * collection; DONE carries unreachable and uncollectable. Without debug flags there are
 * no per-object events. */
static void test_callbacks_event_hook_start_done(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    g_nev = 0;
    tl_node *a = tl_new(h, &tl_Node, 1), *b = tl_new(h, &tl_Node, 2);
    assert_int_equal(rcgc_collect(h, 2), 0); /* a, b -> gen 2 */
    tl_node *c = tl_new(h, &tl_Node, 3);
    assert_int_equal(rcgc_collect(h, 0), 0); /* c -> gen 1 */
    tl_node *d = tl_new(h, &tl_Node, 4), *e = tl_new(h, &tl_Node, 5);
    tl_node *f = tl_new(h, &tl_Node, 6);
    tl_set(d, 0, e);
    tl_set(e, 0, d);
    rcgc_decref(d);
    rcgc_decref(e);
    assert_int_equal(rcgc_add_event_hook(h, hook, (void *)(intptr_t)1), 0);
    assert_int_equal(rcgc_collect(h, 1), 2);
    tl_check(h);
    assert_int_equal(g_nev, 2);
    assert_int_equal(g_ev[0].kind, RCGC_EVENT_COLLECT_START);
    assert_int_equal(g_ev[0].generation, 1);
    assert_int_equal(g_ev[0].count[0], 3);
    assert_int_equal(g_ev[0].count[1], 1);
    assert_int_equal(g_ev[0].count[2], 2);
    assert_int_equal(g_ev[1].kind, RCGC_EVENT_COLLECT_DONE);
    assert_int_equal(g_ev[1].generation, 1);
    assert_int_equal(g_ev[1].unreachable, 2);
    assert_int_equal(g_ev[1].uncollectable, 0);
    assert_int_equal(rcgc_remove_event_hook(h, hook, (void *)(intptr_t)1), 0);
    assert_int_equal(rcgc_remove_event_hook(h, hook, (void *)(intptr_t)1), RCGC_ENOENT);
    g_nev = 0;
    assert_int_equal(rcgc_collect(h, 2), 0);
    assert_int_equal(g_nev, 0);
    rcgc_decref(a);
    rcgc_decref(b);
    rcgc_decref(c);
    rcgc_decref(f);
    tl_heap_free(h);
}

/* With DEBUG_COLLECTABLE / DEBUG_UNCOLLECTABLE: one event per object, with its type,
 * between START and DONE; COLLECTABLE events come before UNCOLLECTABLE ones. Objects
 * that a finalizer later resurrects were reported collectable (as CPython prints them
 * before finalizers run), but DONE does not count them. */
static void test_callbacks_event_hook_per_object(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    g_nev = 0;
    assert_int_equal(rcgc_add_event_hook(h, hook, (void *)(intptr_t)1), 0);
    rcgc_set_debug(h, RCGC_DEBUG_COLLECTABLE | RCGC_DEBUG_UNCOLLECTABLE);
    tl_node *plain = tl_new(h, &tl_Node, 1);
    tl_self_loop(plain, 0);
    tl_node *laz = tl_new(h, &tl_FinNode, 2);
    laz->fin_mode = TL_RESURRECT;
    tl_self_loop(laz, 0);
    tl_node *leg = tl_new(h, &tl_LegacyNode, 3);
    tl_self_loop(leg, 0);
    rcgc_decref(plain);
    rcgc_decref(laz);
    rcgc_decref(leg);
    tl_capture cap; /* the default sink would print the same as text */
    tl_capture_start(&cap);
    ssize_t r = rcgc_collect(h, 2);
    free(tl_capture_stop(&cap));
    assert_int_equal(r, 2); /* plain (collected) + leg (uncollectable) */
    tl_check(h);
    assert_int_equal(g_nev, 5);
    assert_int_equal(g_ev[0].kind, RCGC_EVENT_COLLECT_START);
    assert_int_equal(g_ev[0].count[0], 3);
    int seen_plain = 0, seen_laz = 0;
    for (int i = 1; i <= 2; i++) {
        assert_int_equal(g_ev[i].kind, RCGC_EVENT_COLLECTABLE);
        assert_int_equal(g_ev[i].generation, 2);
        assert_ptr_equal(g_ev[i].type, g_ev[i].type_of_object);
        if (g_ev[i].object == plain) {
            seen_plain++;
            assert_ptr_equal(g_ev[i].type, &tl_Node);
        }
        if (g_ev[i].object == laz) {
            seen_laz++;
            assert_ptr_equal(g_ev[i].type, &tl_FinNode);
        }
    }
    assert_int_equal(seen_plain, 1);
    assert_int_equal(seen_laz, 1);
    assert_int_equal(g_ev[3].kind, RCGC_EVENT_UNCOLLECTABLE);
    assert_ptr_equal(g_ev[3].object, leg);
    assert_ptr_equal(g_ev[3].type, &tl_LegacyNode);
    assert_ptr_equal(g_ev[3].type_of_object, &tl_LegacyNode);
    assert_int_equal(g_ev[4].kind, RCGC_EVENT_COLLECT_DONE);
    assert_int_equal(g_ev[4].unreachable, 2);
    assert_int_equal(g_ev[4].uncollectable, 1);
    assert_int_equal(tl_survivors_count(), 1);

    /* Only the flag asked for: UNCOLLECTABLE alone. */
    rcgc_set_debug(h, RCGC_DEBUG_UNCOLLECTABLE);
    rcgc_garbage_clear(h); /* leg is unreachable again */
    g_nev = 0;
    tl_capture_start(&cap);
    r = rcgc_collect(h, 2);
    free(tl_capture_stop(&cap));
    assert_int_equal(r, 1);
    assert_int_equal(g_nev, 3);
    assert_int_equal(g_ev[1].kind, RCGC_EVENT_UNCOLLECTABLE);
    assert_ptr_equal(g_ev[1].object, leg);
    rcgc_set_debug(h, 0);
    tl_unset(leg, 0);
    rcgc_garbage_clear(h);
    tl_check(h);
    assert_int_equal(rcgc_remove_event_hook(h, hook, (void *)(intptr_t)1), 0);
    tl_heap_free(h);
}

/* Hooks run in registration order for every event; duplicates are called twice; remove
 * takes the oldest; NULL fn is EINVAL. */
static void test_callbacks_event_hooks_order(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    g_nev = 0;
    assert_int_equal(rcgc_add_event_hook(h, hook, (void *)(intptr_t)1), 0);
    assert_int_equal(rcgc_add_event_hook(h, hook, (void *)(intptr_t)2), 0);
    assert_int_equal(rcgc_add_event_hook(h, hook, (void *)(intptr_t)1), 0);
    assert_int_equal(rcgc_add_event_hook(h, NULL, NULL), RCGC_EINVAL);
    assert_int_equal(rcgc_collect(h, 0), 0);
    assert_int_equal(g_nev, 6);
    const int who[6] = {1, 2, 1, 1, 2, 1};
    for (int i = 0; i < 6; i++) {
        assert_int_equal(g_ev[i].who, who[i]);
        assert_int_equal(g_ev[i].kind,
                         i < 3 ? RCGC_EVENT_COLLECT_START : RCGC_EVENT_COLLECT_DONE);
    }
    assert_int_equal(rcgc_remove_event_hook(h, hook, (void *)(intptr_t)1), 0);
    g_nev = 0;
    assert_int_equal(rcgc_collect(h, 0), 0);
    assert_int_equal(g_nev, 4);
    assert_int_equal(g_ev[0].who, 2);
    assert_int_equal(g_ev[1].who, 1);
    assert_int_equal(rcgc_remove_event_hook(h, hook, (void *)(intptr_t)3), RCGC_ENOENT);
    assert_int_equal(rcgc_remove_event_hook(h, hook, (void *)(intptr_t)2), 0);
    assert_int_equal(rcgc_remove_event_hook(h, hook, (void *)(intptr_t)1), 0);
    assert_int_equal(rcgc_remove_event_hook(h, hook, (void *)(intptr_t)1), RCGC_ENOENT);
    g_nev = 0;
    assert_int_equal(rcgc_collect(h, 0), 0);
    assert_int_equal(g_nev, 0);
    tl_heap_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_callbacks_collect),
        cmocka_unit_test(test_callbacks_collect_generation),
        cmocka_unit_test(test_callbacks_collect_garbage),
        cmocka_unit_test(test_callbacks_duplicates_and_remove_oldest),
        cmocka_unit_test(test_callbacks_nested_collect_refused),
        cmocka_unit_test(test_callbacks_automatic_collection),
        cmocka_unit_test(test_callbacks_not_called_by_heap_free),
        cmocka_unit_test(test_callbacks_event_hook_start_done),
        cmocka_unit_test(test_callbacks_event_hook_per_object),
        cmocka_unit_test(test_callbacks_event_hooks_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
