/* test_trashcan.c: deep deallocation chains free without deep C recursion.
 *
 * Every drop runs in a thread with a 256 KiB stack: a recursive free of a chain a few
 * thousand links long would overflow it, so finishing proves the stack stays bounded.
 * The chains: 10 million plain links; links with finalizers where every 17th finalizer
 * call runs a full collection while other garbage cycles wait (untracked links and frozen
 * links at full length, unfrozen tracked links shorter, since each collection scans what
 * is left of the chain); CPython's test_trashcan_16602 (weak references whose callbacks
 * look at a weak reference to self while the chain dies); CPython's test_trashcan (nested
 * 150-deep structures dropped with collection at threshold 1).
 *
 * With RCGC_DEBUG_INVARIANTS every collection checks the whole heap, so the chains that
 * collect while they die are shortened there (they stay far deeper than the trashcan's
 * limit of 50 and than the small stack allows without it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>

#include <cmocka.h>

#include <rcgc/rcgc.h>

#define SMALL_STACK (256u * 1024u)
#define LONG_CHAIN 10000000L
#ifdef RCGC_DEBUG_INVARIANTS
#define COLLECTING_CHAIN 20000L /* every collection checks the whole heap */
#else
#define COLLECTING_CHAIN 10000000L
#endif
#define TRACKED_COLLECTING_CHAIN 20000L /* each collection scans the rest of the chain */
#define MAGIC_LIVE 0x54524153u
#define MAGIC_DEAD 0x44454144u

/* ---- objects ---- */

#define NSLOT 4

typedef struct tnode {
    void *slot[NSLOT]; /* strong references */
    unsigned magic;
    int id;
} tnode;

static struct {
    long deallocs;       /* chain links freed */
    long finalized;      /* chain finalizer calls */
    long collections;    /* collections run from finalizers */
    long collect_errors; /* a collection from a finalizer returned < 0 */
    long cycles_made;    /* garbage cycle nodes made by finalizers or tests */
    long cycles_freed;
    long callbacks;  /* test_trashcan_16602 callbacks */
    long saw_self;   /* ... that found their object alive */
    long violations; /* a callback or dealloc saw a dead or cleared object */
    rcgc_heap *heap; /* for hooks that allocate */
    int panics;
    char panic[512];
} g;

static void reset(void)
{
    memset(&g, 0, sizeof g);
}

static void record_panic(rcgc_heap *h, const char *message, void *arg)
{
    (void)h;
    (void)arg;
    if (g.panics++ == 0)
        snprintf(g.panic, sizeof g.panic, "%s", message);
}

static int tnode_traverse(void *self, rcgc_visit_fn visit, void *arg)
{
    tnode *n = self;
    for (int i = 0; i < NSLOT; i++) {
        if (n->slot[i] != NULL) {
            int r = visit(n->slot[i], arg);
            if (r != 0)
                return r;
        }
    }
    return 0;
}

static void tnode_drop(tnode *n)
{
    for (int i = 0; i < NSLOT; i++) {
        void *old = n->slot[i];
        n->slot[i] = NULL;
        rcgc_xdecref(old);
    }
}

static void tnode_clear(void *self)
{
    tnode_drop(self);
}

static void link_dealloc(void *self)
{
    tnode *n = self;
    if (n->magic != MAGIC_LIVE)
        g.violations++;
    n->magic = MAGIC_DEAD;
    g.deallocs++;
    tnode_drop(n);
}

static void cycle_dealloc(void *self)
{
    tnode *n = self;
    if (n->magic != MAGIC_LIVE)
        g.violations++;
    n->magic = MAGIC_DEAD;
    g.cycles_freed++;
    tnode_drop(n);
}

static const rcgc_type Cycle = {
    .name = "Cycle",
    .size = sizeof(tnode),
    .traverse = tnode_traverse,
    .clear = tnode_clear,
    .dealloc = cycle_dealloc,
};

static tnode *new_node(rcgc_heap *h, const rcgc_type *t, int id)
{
    tnode *n = rcgc_new(h, t);
    if (n != NULL) {
        n->magic = MAGIC_LIVE;
        n->id = id;
    }
    return n;
}

/* a.slot[i] = b, taking a new reference to b. */
static void set_slot(tnode *a, int i, void *b)
{
    void *old = a->slot[i];
    rcgc_xincref(b);
    a->slot[i] = b;
    rcgc_xdecref(old);
}

/* Makes k garbage cycles of three Cycle nodes (no reference kept). Returns false when
 * memory ran out (never expected here). */
static bool make_garbage_cycles(rcgc_heap *h, int k)
{
    for (int c = 0; c < k; c++) {
        tnode *a = new_node(h, &Cycle, 0);
        tnode *b = new_node(h, &Cycle, 0);
        tnode *d = new_node(h, &Cycle, 0);
        if (a == NULL || b == NULL || d == NULL)
            return false;
        set_slot(a, 0, b);
        set_slot(b, 0, d);
        set_slot(d, 0, a);
        set_slot(a, 1, a);
        rcgc_decref(a);
        rcgc_decref(b);
        rcgc_decref(d);
        g.cycles_made += 3;
    }
    return true;
}

/* The finalizer of the collecting chains (CPython's Ouch): every 17th call runs a full
 * collection, then (the first NEW_CYCLES times) leaves a new garbage cycle for the next
 * one. Bounded: a cycle whose clear runs deeper than the trashcan's limit has links
 * deferred to the end of the whole chain (the trash is a stack, as in CPython), and what
 * they hold survives every collection until then; unbounded, the collections would scan
 * ever more of those survivors. */
#define NEW_CYCLES 3000
static void ouch_finalize(void *self)
{
    tnode *n = self;
    if (n->magic != MAGIC_LIVE)
        g.violations++;
    if (++g.finalized % 17 != 0)
        return;
    rcgc_heap *h = rcgc_heap_of(self);
    ssize_t r = rcgc_collect(h, 2);
    g.collections++;
    if (r < 0)
        g.collect_errors++;
    if (g.collections <= NEW_CYCLES && !make_garbage_cycles(h, 1))
        g.violations++;
}

static const rcgc_type Link = {
    .name = "Link",
    .size = sizeof(tnode),
    .traverse = tnode_traverse,
    .clear = tnode_clear,
    .dealloc = link_dealloc,
};
static const rcgc_type FinLink = {
    .name = "FinLink",
    .size = sizeof(tnode),
    .traverse = tnode_traverse,
    .clear = tnode_clear,
    .finalize = ouch_finalize,
    .dealloc = link_dealloc,
};
/* No traverse: untracked, its reference to the next link invisible to the collector. */
static const rcgc_type UntrackedFinLink = {
    .name = "UntrackedFinLink",
    .size = sizeof(tnode),
    .finalize = ouch_finalize,
    .dealloc = link_dealloc,
};

/* ---- heaps and checks ---- */

static rcgc_heap *new_heap(void)
{
    rcgc_heap_options o = {
        .name = "trashcan",
        .ignore_environment = true,
        .panic = record_panic,
    };
    rcgc_heap *h = rcgc_heap_new_with(&o);
    assert_non_null(h);
    rcgc_disable(h);
    g.heap = h;
    return h;
}

static int census_sum(const rcgc_census_entry *e, void *arg)
{
    *(size_t *)arg += e->count;
    return 0;
}

static void check_heap(rcgc_heap *h)
{
    size_t errors = rcgc__heap_check(h);
    if (errors != 0 || g.panics != 0)
        print_message("heap check: %zu errors, %d panics; first: %s\n", errors, g.panics,
                      g.panic);
    assert_int_equal(errors, 0);
    assert_int_equal(g.panics, 0);
}

/* Nothing is left: census zero, invariants hold; then the heap is freed. */
static void finish(rcgc_heap *h)
{
    assert_true(rcgc_collect(h, 2) >= 0);
    check_heap(h);
    size_t live = 0;
    assert_int_equal(rcgc_census(h, census_sum, &live), 0);
    assert_int_equal(live, 0);
    assert_int_equal(g.violations, 0);
    rcgc_heap_free(h);
}

/* Builds a chain of n links of type t: each link holds the next in slot 0. Returns the
 * head (a new reference); every other link is held only by its predecessor. */
static tnode *build_chain(rcgc_heap *h, const rcgc_type *t, long n)
{
    tnode *head = new_node(h, t, 0);
    assert_non_null(head);
    tnode *prev = head;
    for (long i = 1; i < n; i++) {
        tnode *x = new_node(h, t, (int)(i & 0x7fffffff));
        if (x == NULL)
            fail_msg("out of memory at link %ld", i);
        prev->slot[0] = x; /* steals the new reference */
        prev = x;
    }
    return head;
}

/* ---- running a drop on a small stack ---- */

typedef struct {
    void (*fn)(void *arg);
    void *arg;
} job;

static void *job_main(void *p)
{
    job *j = p;
    j->fn(j->arg);
    return NULL;
}

/* Runs fn(arg) in a thread whose stack is SMALL_STACK bytes and waits for it. The heap
 * passes to that thread and back (the join orders every access). */
static void on_small_stack(void (*fn)(void *), void *arg)
{
    pthread_attr_t attr;
    pthread_t t;
    job j = {fn, arg};
    assert_int_equal(pthread_attr_init(&attr), 0);
    assert_int_equal(pthread_attr_setstacksize(&attr, SMALL_STACK), 0);
    assert_int_equal(pthread_create(&t, &attr, job_main, &j), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    pthread_attr_destroy(&attr);
}

static void drop(void *obj)
{
    rcgc_decref(obj);
}

/* ---- 10 million links ---- */

static void test_trashcan_long_chain(void **state)
{
    (void)state;
    reset();
    rcgc_heap *h = new_heap();
    tnode *head = build_chain(h, &Link, LONG_CHAIN);
    on_small_stack(drop, head);
    assert_int_equal(g.deallocs, LONG_CHAIN);
    assert_int_equal(g.violations, 0);
    finish(h);
}

/* ---- links with finalizers that collect ---- */

/* Drops a chain of n links of type t while garbage cycles wait; every 17th finalizer
 * call collects. freeze: freeze the chain first (collections never scan it). */
static void collecting_chain(const rcgc_type *t, long n, bool freeze)
{
    reset();
    rcgc_heap *h = new_heap();
    tnode *head = build_chain(h, t, n);
    if (freeze) {
        rcgc_freeze(h);
        assert_int_equal(rcgc_get_freeze_count(h), (size_t)n);
    }
    assert_true(make_garbage_cycles(h, 100));
    on_small_stack(drop, head);
    check_heap(h);
    assert_int_equal(g.violations, 0);
    assert_int_equal(g.finalized, n);
    assert_int_equal(g.deallocs, n);
    assert_int_equal(g.collections, n / 17);
    assert_int_equal(g.collect_errors, 0);
    /* the collections freed the cycles made before them; the last ones go now */
    assert_true(g.cycles_freed >= 300);
    if (freeze)
        rcgc_unfreeze(h);
    assert_true(rcgc_collect(h, 2) >= 0);
    assert_int_equal(g.cycles_freed, g.cycles_made);
    finish(h);
}

static void test_trashcan_untracked_finalizers_collect(void **state)
{
    (void)state;
    collecting_chain(&UntrackedFinLink, COLLECTING_CHAIN, false);
}

static void test_trashcan_frozen_finalizers_collect(void **state)
{
    (void)state;
    collecting_chain(&FinLink, COLLECTING_CHAIN, true);
}

static void test_trashcan_tracked_finalizers_collect(void **state)
{
    (void)state;
    collecting_chain(&FinLink, TRACKED_COLLECTING_CHAIN, false);
}

/* ---- CPython test_trashcan_16602 ---- */

/* Each link: slot 0 the next link, slot 1 a weak reference to itself (wself), slot 2 a
 * weak reference to its parent whose callback looks through wself. The callback must
 * find its own link either gone (NULL) or fully alive: never a cleared object. */
#define N16602 1000000L

static void cb16602(void *ref, void *arg)
{
    (void)ref;
    g.callbacks++;
    tnode *o = rcgc_weakref_get(arg); /* arg: the link's wself (borrowed) */
    if (o == NULL)
        return;
    g.saw_self++;
    if (o->magic != MAGIC_LIVE || rcgc_refcount(o) < 2 || !rcgc_is_weakref(o->slot[1]))
        g.violations++;
    rcgc_decref(o);
}

static void test_trashcan_16602(void **state)
{
    (void)state;
    reset();
    rcgc_heap *h = new_heap();
    tnode *root = new_node(h, &Link, 0);
    assert_non_null(root);
    tnode *parent = root;
    for (long i = 1; i < N16602; i++) {
        tnode *c = new_node(h, &Link, (int)i);
        assert_non_null(c);
        void *wself = rcgc_weakref_new(h, c, NULL, NULL);
        assert_non_null(wself);
        c->slot[1] = wself; /* steals */
        void *wparent = rcgc_weakref_new(h, parent, cb16602, wself);
        assert_non_null(wparent);
        c->slot[2] = wparent;
        parent->slot[0] = c; /* the parent owns the child, as d[c] = C(c) does */
        parent = c;
    }
    on_small_stack(drop, root);
    assert_int_equal(g.deallocs, N16602);
    assert_int_equal(g.callbacks, N16602 - 1);
    assert_int_equal(g.violations, 0);
    check_heap(h);
    finish(h);
}

/* ---- CPython test_trashcan: nested structures, collection at threshold 1 ---- */

#define NEST 150

static void nested_round(rcgc_heap *h)
{
    /* t = [t, Ouch()] */
    tnode *t = new_node(h, &Link, 0);
    assert_non_null(t);
    for (int i = 0; i < NEST; i++) {
        tnode *x = new_node(h, &Link, i);
        tnode *ouch = new_node(h, &UntrackedFinLink, i);
        assert_non_null(x);
        assert_non_null(ouch);
        x->slot[0] = t;    /* steals */
        x->slot[1] = ouch; /* steals */
        t = x;
    }
    /* u = [u, u] */
    tnode *u = new_node(h, &Link, 0);
    assert_non_null(u);
    for (int i = 0; i < NEST; i++) {
        tnode *x = new_node(h, &Link, i);
        assert_non_null(x);
        x->slot[0] = u; /* steals */
        set_slot(x, 1, u);
        u = x;
    }
    /* v = {1: v, 2: Ouch()} */
    tnode *v = new_node(h, &Link, 0);
    assert_non_null(v);
    for (int i = 0; i < NEST; i++) {
        tnode *x = new_node(h, &Link, i);
        tnode *ouch = new_node(h, &UntrackedFinLink, i);
        assert_non_null(x);
        assert_non_null(ouch);
        x->slot[0] = v;
        x->slot[1] = ouch;
        v = x;
    }
    rcgc_decref(t);
    rcgc_decref(u);
    rcgc_decref(v);
}

static void nested_rounds(void *arg)
{
    rcgc_heap *h = arg;
    for (int round = 0; round < 2; round++)
        nested_round(h);
}

static void test_trashcan_nested(void **state)
{
    (void)state;
    reset();
    rcgc_heap *h = new_heap();
    rcgc_set_threshold(h, 1, 1, 1);
    rcgc_enable(h);
    on_small_stack(nested_rounds, h);
    rcgc_disable(h);
    assert_int_equal(g.violations, 0);
    assert_int_equal(g.collect_errors, 0);
    assert_int_equal(g.finalized, 2 * 2 * NEST);
    /* every link of t, u and v (151 each), and every Ouch, twice */
    assert_int_equal(g.deallocs, 2 * (3 * (NEST + 1) + 2 * NEST));
    check_heap(h);
    assert_true(rcgc_collect(h, 2) >= 0);
    assert_int_equal(g.cycles_freed, g.cycles_made);
    finish(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trashcan_long_chain),
        cmocka_unit_test(test_trashcan_untracked_finalizers_collect),
        cmocka_unit_test(test_trashcan_frozen_finalizers_collect),
        cmocka_unit_test(test_trashcan_tracked_finalizers_collect),
        cmocka_unit_test(test_trashcan_16602),
        cmocka_unit_test(test_trashcan_nested),
    };
    const char *filter = getenv("RCGC_TEST_FILTER"); /* e.g. "*16602" */
    if (filter != NULL && *filter != '\0')
        cmocka_set_test_filter(filter);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
