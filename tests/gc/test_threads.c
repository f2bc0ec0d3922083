/* test_threads.c: heaps are independent. Several threads, each owning its own heap,
 * allocate, link cycles, make weak references, run finalizers and collect at the same
 * time; the TSan build checks that the library keeps no shared mutable state behind the
 * heaps' backs. Also: one heap handed from thread to thread (the host serialises). */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdio.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <rcgc/rcgc.h>

#define THREADS 4
#define ROUNDS 200

typedef struct {
    void *a, *b;
    int *finalized; /* per-thread counter, borrowed */
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

static void pair_finalize(void *self)
{
    pair *p = self;
    if (p->finalized != NULL)
        (*p->finalized)++;
}

static const rcgc_type pair_type = {
    .name = "Pair",
    .size = sizeof(pair),
    .traverse = pair_traverse,
    .clear = pair_clear,
    .finalize = pair_finalize,
    .dealloc = pair_clear,
};

typedef struct {
    rcgc_heap *heap;
    int finalized;
    size_t collected;
    int weak_cleared;
    size_t check_errors;
} worker;

static void on_weak(void *ref, void *arg)
{
    (void)ref;
    ((worker *)arg)->weak_cleared++;
}

/* One round: a 2-cycle with a weak reference to one end, dropped and collected. */
static void one_round(worker *w)
{
    pair *x = rcgc_new(w->heap, &pair_type);
    pair *y = rcgc_new(w->heap, &pair_type);
    if (x == NULL || y == NULL) {
        rcgc_xdecref(x);
        rcgc_xdecref(y);
        return;
    }
    x->finalized = y->finalized = &w->finalized;
    rcgc_incref(y);
    x->a = y;
    rcgc_incref(x);
    y->a = x;
    void *ref = rcgc_weakref_new(w->heap, x, on_weak, w);
    rcgc_decref(x);
    rcgc_decref(y);
    ssize_t n = rcgc_collect(w->heap, 0);
    if (n > 0)
        w->collected += (size_t)n;
    rcgc_xdecref(ref);
}

static void *run_worker(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < ROUNDS; i++)
        one_round(w);
    w->check_errors = rcgc__heap_check(w->heap);
    return NULL;
}

static void test_threads_independent_heaps(void **state)
{
    (void)state;
    pthread_t tid[THREADS];
    worker ws[THREADS];
    for (int i = 0; i < THREADS; i++) {
        rcgc_heap_options o = {.name = "worker", .ignore_environment = true};
        ws[i] = (worker){.heap = rcgc_heap_new_with(&o)};
        assert_non_null(ws[i].heap);
        rcgc_disable(ws[i].heap);
    }
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&tid[i], NULL, run_worker, &ws[i]), 0);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(tid[i], NULL), 0);
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(ws[i].check_errors, 0);
        assert_int_equal(ws[i].finalized, 2 * ROUNDS);
        assert_int_equal(ws[i].weak_cleared, ROUNDS);
        /* Each round: the two pairs; the weak reference is still held by the round. */
        assert_int_equal(ws[i].collected, 2 * ROUNDS);
        rcgc_heap_free(ws[i].heap);
    }
}

/* A heap may change owner thread when the host serialises (join = happens-before). */
static void test_threads_heap_handed_over(void **state)
{
    (void)state;
    rcgc_heap_options o = {.name = "handed", .ignore_environment = true};
    worker w = {.heap = rcgc_heap_new_with(&o)};
    assert_non_null(w.heap);
    rcgc_disable(w.heap);
    for (int i = 0; i < 3; i++) {
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, run_worker, &w), 0);
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_int_equal(w.check_errors, 0);
    }
    assert_int_equal(w.finalized, 3 * 2 * ROUNDS);
    rcgc_heap_free(w.heap);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threads_independent_heaps),
        cmocka_unit_test(test_threads_heap_handed_over),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
