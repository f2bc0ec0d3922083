/* test_safepoint.c: what other threads may do with a heap (rcgc/snapshot.h): calls
 * served at safepoints, timeouts, released heaps walked by the caller, snapshots read
 * while the owner churns, the registry. Labelled threads: the TSan build runs it. */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <rcgc/rcgc.h>
#include <rcgc/snapshot.h>

typedef struct {
    void *a, *b;
} pair;

static int pair_traverse(void *self, rcgc_visit_fn visit, void *arg)
{
    pair *p = self;
    int r = 0;
    if (p->a != NULL && (r = visit(p->a, arg)) != 0)
        return r;
    if (p->b != NULL)
        r = visit(p->b, arg);
    return r;
}

static void pair_clear(void *self)
{
    pair *p = self;
    void *a = p->a, *b = p->b;
    p->a = p->b = NULL;
    rcgc_xdecref(a);
    rcgc_xdecref(b);
}

static const rcgc_type pair_type = {
    .name = "Pair",
    .size = sizeof(pair),
    .traverse = pair_traverse,
    .clear = pair_clear,
    .dealloc = pair_clear,
};

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static rcgc_heap *heap_named(const char *name)
{
    rcgc_heap_options o = {.name = name, .ignore_environment = true};
    rcgc_heap *h = rcgc_heap_new_with(&o);
    assert_non_null(h);
    return h;
}

/* ---- a call: count the tracked objects (a walk), and note the thread it ran on ---- */

typedef struct {
    size_t objects;
    pthread_t ran_on;
    int ran;
} count_call;

static int count_one(void *obj, void *arg)
{
    (void)obj;
    ((count_call *)arg)->objects++;
    return 0;
}

static void count_objects(rcgc_heap *h, void *arg)
{
    count_call *c = arg;
    c->objects = 0;
    (void)rcgc_get_objects(h, -1, count_one, c);
    c->ran_on = pthread_self();
    c->ran++;
}

typedef struct {
    const char *name;
    uint64_t timeout_ns;
    count_call call;
    int rc;
    atomic_int done;
} caller;

static void *call_thread(void *arg)
{
    caller *c = arg;
    c->rc = rcgc__heap_call(c->name, count_objects, &c->call, c->timeout_ns);
    atomic_store(&c->done, 1);
    return NULL;
}

/* A call is served by the owner at an allocation, on the owner's thread. */
static void test_safepoint_call_served_at_allocation(void **state)
{
    (void)state;
    rcgc_heap *h = heap_named("served");
    rcgc_disable(h);
    void *keep[10];
    for (int i = 0; i < 10; i++)
        keep[i] = rcgc_new(h, &pair_type);
    caller c = {.name = "served", .timeout_ns = 10000000000u};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, call_thread, &c), 0);
    /* Allocate (each allocation is a safepoint) until the call was served. */
    void *extra = NULL;
    for (int i = 0; i < 100000 && !atomic_load(&c.done); i++) {
        rcgc_xdecref(extra);
        extra = rcgc_new(h, &pair_type);
        sleep_ms(1);
    }
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(c.rc, 0);
    assert_int_equal(c.call.ran, 1);
    assert_true(pthread_equal(c.call.ran_on, pthread_self()));
    assert_true(c.call.objects == 10 || c.call.objects == 11);
    rcgc_xdecref(extra);
    for (int i = 0; i < 10; i++)
        rcgc_decref(keep[i]);
    assert_int_equal(rcgc__heap_check(h), 0);
    rcgc_heap_free(h);
}

/* No safepoint within the deadline: RCGC_ETIMEDOUT, and the call never runs later. */
static void test_safepoint_call_times_out(void **state)
{
    (void)state;
    rcgc_heap *h = heap_named("sleepy");
    caller c = {.name = "sleepy", .timeout_ns = 50000000u};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, call_thread, &c), 0);
    assert_int_equal(pthread_join(t, NULL), 0); /* the owner never reached a safepoint */
    assert_int_equal(c.rc, RCGC_ETIMEDOUT);
    rcgc_safepoint(h); /* the withdrawn call must not run now */
    void *o = rcgc_new(h, &pair_type);
    rcgc_decref(o);
    assert_int_equal(c.call.ran, 0);
    rcgc_heap_free(h);
}

/* rcgc_safepoint serves a waiting call. */
static void test_safepoint_explicit(void **state)
{
    (void)state;
    rcgc_heap *h = heap_named("explicit");
    void *o = rcgc_new(h, &pair_type);
    caller c = {.name = "explicit", .timeout_ns = 10000000000u};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, call_thread, &c), 0);
    while (!atomic_load(&c.done)) {
        rcgc_safepoint(h);
        sleep_ms(1);
    }
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(c.rc, 0);
    assert_int_equal(c.call.objects, 1);
    rcgc_decref(o);
    rcgc_heap_free(h);
}

/* While released, the caller walks the heap on its own thread; acquire waits for it. */
static void test_safepoint_released_heap_walked_by_caller(void **state)
{
    (void)state;
    rcgc_heap *h = heap_named("idle");
    void *o[3];
    for (int i = 0; i < 3; i++)
        o[i] = rcgc_new(h, &pair_type);
    rcgc_heap_release(h);
    caller c = {.name = "idle", .timeout_ns = 10000000000u};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, call_thread, &c), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    rcgc_heap_acquire(h);
    assert_int_equal(c.rc, 0);
    assert_int_equal(c.call.objects, 3);
    assert_true(pthread_equal(c.call.ran_on, t));
    for (int i = 0; i < 3; i++)
        rcgc_decref(o[i]);
    rcgc_heap_free(h);
}

/* A call queued before the owner releases the heap is run by its caller after release. */
static void test_safepoint_release_hands_queued_call_over(void **state)
{
    (void)state;
    rcgc_heap *h = heap_named("handover");
    void *o = rcgc_new(h, &pair_type);
    caller c = {.name = "handover", .timeout_ns = 10000000000u};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, call_thread, &c), 0);
    sleep_ms(50); /* most likely queued by now; either way the result is the same */
    rcgc_heap_release(h);
    assert_int_equal(pthread_join(t, NULL), 0);
    rcgc_heap_acquire(h);
    assert_int_equal(c.rc, 0);
    assert_int_equal(c.call.objects, 1);
    rcgc_decref(o);
    rcgc_heap_free(h);
}

/* Freeing the heap fails a queued call with RCGC_ENOENT; unknown names too; an owner
 * calling into its own heap gets RCGC_EBUSY instead of waiting for itself. */
static void test_safepoint_errors(void **state)
{
    (void)state;
    count_call cc = {0};
    assert_int_equal(rcgc__heap_call("no such heap", count_objects, &cc, 1000000u),
                     RCGC_ENOENT);
    assert_int_equal(rcgc__heap_call(NULL, count_objects, &cc, 1000000u), RCGC_EINVAL);

    rcgc_heap *h = heap_named("self");
    assert_int_equal(rcgc__heap_call("self", count_objects, &cc, 1000000u), RCGC_EBUSY);
    rcgc_heap_free(h);

    h = heap_named("doomed");
    caller c = {.name = "doomed", .timeout_ns = 10000000000u};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, call_thread, &c), 0);
    sleep_ms(50);
    rcgc_heap_free(h);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(c.rc, RCGC_ENOENT);
    assert_int_equal(c.call.ran, 0);
    assert_string_equal(rcgc_strerror(RCGC_ETIMEDOUT), "timed out");
}

/* ---- snapshots ---- */

typedef struct {
    uint64_t serial;
    size_t count0, objects, pairs, gen2;
    size_t collections2;
} snap_copy;

static int copy_snapshot(const rcgc__snapshot *s, void *arg)
{
    snap_copy *c = arg;
    c->serial = s->serial;
    c->count0 = s->count[0];
    c->objects = s->objects;
    c->gen2 = s->generation_size[2];
    c->collections2 = s->stats[2].collections;
    c->pairs = 0;
    for (size_t i = 0; i < s->ntypes; i++)
        if (strcmp(s->types[i].name, "Pair") == 0)
            c->pairs = s->types[i].count;
    return 7;
}

static void test_safepoint_snapshot_published(void **state)
{
    (void)state;
    snap_copy c = {0};
    assert_int_equal(rcgc__snapshot_read("nobody", copy_snapshot, &c), RCGC_ENOENT);
    rcgc__set_inspected(false);
    rcgc_heap *h = heap_named("snap");
    assert_int_equal(rcgc__snapshot_read("snap", copy_snapshot, &c), 7);
    assert_int_equal(c.serial, 0); /* not inspected: nothing published */
    rcgc__set_inspected(true);
    rcgc_disable(h); /* no automatic collection publishes early (stress builds) */
    void *o[5];
    for (int i = 0; i < 5; i++)
        o[i] = rcgc_new(h, &pair_type);
    assert_int_equal(rcgc_collect(h, 2), 0); /* publishes (the first one is never stale) */
    assert_int_equal(rcgc__snapshot_read("snap", copy_snapshot, &c), 7);
    assert_true(c.serial >= 1);
    assert_int_equal(c.pairs, 5);
    assert_int_equal(c.objects, 5);
    assert_int_equal(c.gen2, 5);
    assert_int_equal(c.collections2, 1);
    /* An explicit publication is always fresh. */
    for (int i = 0; i < 5; i++)
        rcgc_decref(o[i]);
    assert_int_equal(rcgc__snapshot_publish(h), 0);
    uint64_t before = c.serial;
    assert_int_equal(rcgc__snapshot_read("snap", copy_snapshot, &c), 7);
    assert_true(c.serial > before);
    assert_int_equal(c.pairs, 0);
    rcgc__set_inspected(false);
    rcgc_heap_free(h);
}

/* A reader hammers snapshots and calls while the owner churns a heap: TSan must stay
 * quiet, and every snapshot must be self-consistent. */
typedef struct {
    atomic_int stop, exited;
    size_t reads, calls, timeouts, bad;
} hammer;

static int check_snapshot(const rcgc__snapshot *s, void *arg)
{
    hammer *hm = arg;
    size_t sum = 0;
    for (size_t i = 0; i < s->ntypes; i++)
        sum += s->types[i].count;
    if (s->serial > 0 && sum != s->objects)
        hm->bad++;
    hm->reads++;
    return 0;
}

static void *hammer_thread(void *arg)
{
    hammer *hm = arg;
    while (!atomic_load(&hm->stop)) {
        (void)rcgc__snapshot_read("churn", check_snapshot, hm);
        count_call cc = {0};
        int rc = rcgc__heap_call("churn", count_objects, &cc, 20000000u);
        if (rc == 0)
            hm->calls++;
        else if (rc == RCGC_ETIMEDOUT)
            hm->timeouts++;
    }
    atomic_store(&hm->exited, 1);
    return NULL;
}

static void test_safepoint_hammered_while_churning(void **state)
{
    (void)state;
    rcgc__set_inspected(true);
    rcgc_heap *h = heap_named("churn");
    rcgc_set_threshold(h, 100, 10, 10);
    hammer hm = {0};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, hammer_thread, &hm), 0);
    for (int i = 0; i < 20000; i++) {
        pair *x = rcgc_new(h, &pair_type), *y = rcgc_new(h, &pair_type);
        if (x && y) {
            rcgc_incref(y);
            x->a = y;
            rcgc_incref(x);
            y->a = x;
        }
        rcgc_xdecref(x);
        rcgc_xdecref(y);
        if (i % 2000 == 0) {
            rcgc_heap_release(h);
            sleep_ms(2);
            rcgc_heap_acquire(h);
        }
    }
    atomic_store(&hm.stop, 1);
    /* Serve what the hammer may still be waiting for, until it is gone. */
    while (!atomic_load(&hm.exited))
        rcgc_safepoint(h);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(hm.bad, 0);
    assert_true(hm.reads > 0);
    assert_true(hm.calls > 0);
    assert_int_equal(rcgc__heap_check(h), 0);
    rcgc__set_inspected(false);
    rcgc_heap_free(h);
}

static int count_heaps(rcgc_heap *h, void *arg)
{
    const char *name = rcgc_heap_name(h);
    if (strcmp(name, "reg-a") == 0 || strcmp(name, "reg-b") == 0)
        (*(int *)arg)++;
    return 0;
}

static void test_safepoint_registry(void **state)
{
    (void)state;
    int n = 0;
    rcgc_heap *a = heap_named("reg-a"), *b = heap_named("reg-b");
    assert_int_equal(rcgc__heaps_foreach(count_heaps, &n), 0);
    assert_int_equal(n, 2);
    rcgc_heap_free(a);
    n = 0;
    assert_int_equal(rcgc__heaps_foreach(count_heaps, &n), 0);
    assert_int_equal(n, 1);
    rcgc_heap_free(b);
    n = 0;
    assert_int_equal(rcgc__heaps_foreach(count_heaps, &n), 0);
    assert_int_equal(n, 0);
}

/* ---- the process-wide event sink ---- */

typedef struct {
    pthread_mutex_t lock;
    size_t start, done, collectable, other_heaps;
} sink_rec;

static void record_event(rcgc_heap *h, const char *heap_name, const rcgc_event *ev, void *arg)
{
    (void)h;
    sink_rec *r = arg;
    pthread_mutex_lock(&r->lock);
    if (strncmp(heap_name, "sink-", 5) != 0)
        r->other_heaps++;
    else if (ev->kind == RCGC_EVENT_COLLECT_START)
        r->start++;
    else if (ev->kind == RCGC_EVENT_COLLECT_DONE)
        r->done++;
    else if (ev->kind == RCGC_EVENT_COLLECTABLE)
        r->collectable++;
    pthread_mutex_unlock(&r->lock);
}

static void *collect_a_lot(void *arg)
{
    rcgc_heap *h = arg;
    for (int i = 0; i < 100; i++) {
        pair *x = rcgc_new(h, &pair_type);
        if (x != NULL) {
            rcgc_incref(x);
            x->a = x;
            rcgc_decref(x);
        }
        (void)rcgc_collect(h, 0);
    }
    return NULL;
}

/* Every heap's events reach the sink, from the owner threads, concurrently. */
static void test_safepoint_event_sink(void **state)
{
    (void)state;
    static sink_rec rec = {.lock = PTHREAD_MUTEX_INITIALIZER};
    rcgc__set_event_sink(record_event, &rec);
    rcgc_heap *a = heap_named("sink-a"), *b = heap_named("sink-b");
    rcgc_set_debug(b, RCGC_DEBUG_COLLECTABLE);
    rcgc_disable(a);
    rcgc_disable(b);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, collect_a_lot, a), 0);
    collect_a_lot(b);
    assert_int_equal(pthread_join(t, NULL), 0);
    rcgc__set_event_sink(NULL, NULL);
    (void)rcgc_collect(a, 0); /* after removal: not recorded */
    pthread_mutex_lock(&rec.lock);
    assert_int_equal(rec.start, 200);
    assert_int_equal(rec.done, 200);
    assert_int_equal(rec.collectable, 100);
    pthread_mutex_unlock(&rec.lock);
    rcgc_heap_free(a);
    rcgc_heap_free(b);
}

/* ---- calls that change the heap run on the owner only ---- */

typedef struct {
    ssize_t collected;
    pthread_t ran_on;
} collect_call;

static void do_collect(rcgc_heap *h, void *arg)
{
    collect_call *c = arg;
    c->collected = rcgc_collect(h, 2); /* a mutating call may collect */
    c->ran_on = pthread_self();
}

typedef struct {
    const char *name;
    uint64_t timeout_ns;
    collect_call call;
    int rc;
    atomic_int done;
} owner_caller;

static void *owner_call_thread(void *arg)
{
    owner_caller *c = arg;
    c->rc = rcgc__heap_call_owner(c->name, do_collect, &c->call, c->timeout_ns);
    atomic_store(&c->done, 1);
    return NULL;
}

static void test_safepoint_owner_call_collects(void **state)
{
    (void)state;
    rcgc_heap *h = heap_named("owner-call");
    pair *x = rcgc_new(h, &pair_type);
    rcgc_incref(x);
    x->a = x;
    rcgc_decref(x);
    owner_caller c = {.name = "owner-call", .timeout_ns = 10000000000u};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, owner_call_thread, &c), 0);
    while (!atomic_load(&c.done)) {
        rcgc_safepoint(h);
        sleep_ms(1);
    }
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(c.rc, 0);
    assert_int_equal(c.call.collected, 1);
    assert_true(pthread_equal(c.call.ran_on, pthread_self()));

    /* Released, the heap has no owner at work: the call times out, never runs here. */
    rcgc_heap_release(h);
    owner_caller d = {.name = "owner-call", .timeout_ns = 30000000u};
    assert_int_equal(pthread_create(&t, NULL, owner_call_thread, &d), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    rcgc_heap_acquire(h);
    assert_int_equal(d.rc, RCGC_ETIMEDOUT);
    assert_int_equal(d.call.collected, 0);
    rcgc_heap_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_safepoint_call_served_at_allocation),
        cmocka_unit_test(test_safepoint_call_times_out),
        cmocka_unit_test(test_safepoint_explicit),
        cmocka_unit_test(test_safepoint_released_heap_walked_by_caller),
        cmocka_unit_test(test_safepoint_release_hands_queued_call_over),
        cmocka_unit_test(test_safepoint_errors),
        cmocka_unit_test(test_safepoint_snapshot_published),
        cmocka_unit_test(test_safepoint_hammered_while_churning),
        cmocka_unit_test(test_safepoint_registry),
        cmocka_unit_test(test_safepoint_event_sink),
        cmocka_unit_test(test_safepoint_owner_call_collects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
