/* test_fault.c: every operation that allocates, run under the fault-injecting allocator.
 *
 * The chaos loop (Jansson's): for an operation, run it with allocation number N failing,
 * for N = 0, 1, 2, ... until it completes without reaching the fault; once failing only
 * the Nth request, once failing every request from the Nth on. Each run starts from a
 * fresh heap built without faults and checks that the call failed cleanly (NULL or a
 * negative code, nothing changed) or succeeded, that rcgc__heap_check finds nothing, that
 * the objects the test still holds are intact, that the heap converges to the fault-free
 * outcome once memory is back, and that after rcgc_heap_free every block came back with
 * the size it was allocated with.
 *
 * A failure names the chaos step (mode and N); FAULT_VERBOSE=1 traces the collections;
 * breaking on rcgc_test_fault stops at the injected failure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <rcgc/rcgc.h>

#include "fault_alloc.h"

/* ---- recorded facts (library callbacks record; the test asserts afterwards) ---- */

#define MAXID 256
#define NSLOTS 4
#define MAGIC_LIVE 0x4c495645u
#define MAGIC_DEAD 0x44454144u
#define SAVED_MAX 64

/* Behaviour bits of node.mode. */
#define M_ALLOC_IN_FIN 1u /* finalize allocates a Leaf and a weak reference to self */
#define M_RESURRECT 2u    /* finalize / legacy_del stores a new reference in g.saved */

static struct {
    int dead[MAXID];       /* dealloc calls per id */
    int finalized[MAXID];  /* finalize calls per id */
    int legacy[MAXID];     /* legacy_del calls per id */
    int wrcb[MAXID];       /* weak-reference callbacks per arg */
    int violations;        /* a callback saw something it must never see */
    const char *violation; /* the first one */
    int gc_start, gc_stop;
    int events;
    void *saved[SAVED_MAX]; /* strong references stored by resurrecting finalizers */
    int nsaved;
    int panics;
    char panic_msg[512];
} g;

static void reset_records(void)
{
    memset(&g, 0, sizeof g);
}

static void record_panic(rcgc_heap *h, const char *message, void *arg)
{
    (void)h;
    (void)arg;
    if (g.panics++ == 0)
        snprintf(g.panic_msg, sizeof g.panic_msg, "%s", message);
}

/* ---- types ---- */

typedef struct node {
    void *slot[NSLOTS];
    unsigned magic;
    int id;
    unsigned mode;
} node;

typedef struct leaf {
    unsigned magic;
    int id;
} leaf;

static void violation(const char *why)
{
    if (g.violations++ == 0)
        g.violation = why;
}

static void count(int *table, int id)
{
    if (id > 0 && id < MAXID)
        table[id]++;
}

static int node_traverse(void *self, rcgc_visit_fn visit, void *arg)
{
    node *n = self;
    for (int i = 0; i < NSLOTS; i++) {
        if (n->slot[i] != NULL) {
            int r = visit(n->slot[i], arg);
            if (r != 0)
                return r;
        }
    }
    return 0;
}

static void node_drop_slots(node *n)
{
    for (int i = 0; i < NSLOTS; i++) {
        void *old = n->slot[i];
        n->slot[i] = NULL;
        rcgc_xdecref(old);
    }
}

static void node_clear(void *self)
{
    node_drop_slots(self);
}

static void node_dealloc(void *self)
{
    node *n = self;
    if (n->magic != MAGIC_LIVE)
        violation("dealloc of a node that is not live");
    count(g.dead, n->id);
    n->magic = MAGIC_DEAD;
    node_drop_slots(n);
}

static void save(void *obj)
{
    if (g.nsaved < SAVED_MAX) {
        rcgc_incref(obj);
        g.saved[g.nsaved++] = obj;
    }
}

static const rcgc_type Leaf;

static void node_finalize(void *self)
{
    node *n = self;
    if (n->magic != MAGIC_LIVE)
        violation("finalize of a node that is not live");
    count(g.finalized, n->id);
    if (n->mode & M_ALLOC_IN_FIN) {
        rcgc_heap *h = rcgc_heap_of(self);
        leaf *l = rcgc_new(h, &Leaf);
        if (l != NULL)
            rcgc_decref(l);
        void *w = rcgc_weakref_new(h, self, NULL, NULL);
        void *got = w != NULL ? rcgc_weakref_get(w) : NULL;
        if (w != NULL && got != self)
            violation("a finalizer's new weak reference to self does not return self");
        rcgc_xdecref(got);
        rcgc_xdecref(w);
    }
    if (n->mode & M_RESURRECT)
        save(self);
}

static void node_legacy_del(void *self)
{
    node *n = self;
    count(g.legacy, n->id);
    if (n->mode & M_RESURRECT)
        save(self);
}

static void leaf_dealloc(void *self)
{
    leaf *l = self;
    if (l->magic != MAGIC_LIVE && l->magic != 0)
        violation("dealloc of a leaf that is not live");
    count(g.dead, l->id);
    l->magic = MAGIC_DEAD;
}

static const rcgc_type Node = {
    .name = "Node",
    .size = sizeof(node),
    .traverse = node_traverse,
    .clear = node_clear,
    .dealloc = node_dealloc,
};
static const rcgc_type FinNode = {
    .name = "FinNode",
    .size = sizeof(node),
    .traverse = node_traverse,
    .clear = node_clear,
    .finalize = node_finalize,
    .dealloc = node_dealloc,
};
static const rcgc_type LegacyNode = {
    .name = "LegacyNode",
    .size = sizeof(node),
    .traverse = node_traverse,
    .clear = node_clear,
    .legacy_del = node_legacy_del,
    .dealloc = node_dealloc,
};
static const rcgc_type Leaf = {
    .name = "Leaf",
    .size = sizeof(leaf),
    .dealloc = leaf_dealloc,
};

static void wr_callback(void *ref, void *arg)
{
    count(g.wrcb, (int)(intptr_t)arg);
    void *t = rcgc_weakref_get(ref);
    if (t != NULL) { /* a callback runs after its reference was cleared */
        violation("a weak-reference callback found its reference not cleared");
        rcgc_decref(t);
    }
}

static void gc_callback(rcgc_heap *h, int phase, const rcgc_collect_info *info, void *arg)
{
    (void)h;
    (void)info;
    (void)arg;
    if (phase == RCGC_PHASE_START)
        g.gc_start++;
    else
        g.gc_stop++;
}

static void event_hook(rcgc_heap *h, const rcgc_event *ev, void *arg)
{
    (void)h;
    (void)ev;
    (void)arg;
    g.events++;
}

/* ---- object helpers (one allocation site each) ---- */

/* Every node of the tests comes from this one allocation site. */
static node *alloc_node(rcgc_heap *h, const rcgc_type *t)
{
    return rcgc_new(h, t);
}

static node *new_node(rcgc_heap *h, const rcgc_type *t, int id, unsigned mode)
{
    node *n = alloc_node(h, t);
    assert_non_null(n);
    n->magic = MAGIC_LIVE;
    n->id = id;
    n->mode = mode;
    return n;
}

static leaf *new_leaf(rcgc_heap *h, int id)
{
    leaf *l = rcgc_new(h, &Leaf);
    assert_non_null(l);
    l->magic = MAGIC_LIVE;
    l->id = id;
    return l;
}

/* n->slot[i] = child (a new reference to child is taken). */
static void link(node *n, int i, void *child)
{
    void *old = n->slot[i];
    rcgc_xincref(child);
    n->slot[i] = child;
    rcgc_xdecref(old);
}

static void unlink_slot(node *n, int i)
{
    link(n, i, NULL);
}

static void assert_node(const node *n, int id, size_t refcnt)
{
    assert_int_equal(n->magic, MAGIC_LIVE);
    assert_int_equal(n->id, id);
    assert_int_equal(rcgc_refcount(n), refcnt);
    assert_int_equal(g.dead[id], 0);
}

static void assert_leaf(const leaf *l, int id, size_t refcnt)
{
    assert_int_equal(l->magic, MAGIC_LIVE);
    assert_int_equal(l->id, id);
    assert_int_equal(rcgc_refcount(l), refcnt);
    assert_int_equal(g.dead[id], 0);
}

static int deaths(void)
{
    int n = 0;
    for (int i = 0; i < MAXID; i++)
        n += g.dead[i];
    return n;
}

static int sum(const int *table)
{
    int n = 0;
    for (int i = 0; i < MAXID; i++)
        n += table[i];
    return n;
}

typedef struct {
    const char *name;
    size_t count;
} census_q;

static int census_one(const rcgc_census_entry *e, void *arg)
{
    census_q *q = arg;
    if (strcmp(e->name, q->name) == 0)
        q->count += e->count;
    return 0;
}

/* Live objects of the type called name (0 when the heap never had one). */
static size_t census_of(rcgc_heap *h, const char *name)
{
    census_q q = {name, 0};
    assert_int_equal(rcgc_census(h, census_one, &q), 0);
    return q.count;
}

static int census_all(const rcgc_census_entry *e, void *arg)
{
    *(size_t *)arg += e->count;
    return 0;
}

static size_t census_total(rcgc_heap *h)
{
    size_t n = 0;
    assert_int_equal(rcgc_census(h, census_all, &n), 0);
    return n;
}

static int count_visit(void *obj, void *arg)
{
    (void)obj;
    (*(size_t *)arg)++;
    return 0;
}

static size_t objects_in(rcgc_heap *h, int gen)
{
    size_t n = 0;
    assert_int_equal(rcgc_get_objects(h, gen, count_visit, &n), 0);
    return n;
}

/* ---- the chaos fixture ---- */

typedef enum { FAIL_NTH, FAIL_FROM } fail_mode;

typedef struct chaos {
    fault_alloc fa;
    rcgc_heap *h;
    fail_mode mode;
    long n;
} chaos;

/* rcgc__heap_check finds nothing, no panic, no callback saw anything wrong, and the
 * allocator was used correctly; failures name the caller's line and the chaos step. */
#define check_heap(c) check_heap_at((c), __LINE__)
static void check_heap_at(chaos *c, int line)
{
    size_t errors = c->h != NULL ? rcgc__heap_check(c->h) : 0;
    if (errors != 0 || g.panics != 0 || g.violations != 0)
        print_message("line %d (mode %d, N=%ld): heap check %zu errors, %d panics (first: "
                      "%s), %d violations (first: %s)\n",
                      line, (int)c->mode, c->n, errors, g.panics, g.panic_msg, g.violations,
                      g.violation ? g.violation : "");
    assert_int_equal(errors, 0);
    assert_int_equal(g.panics, 0);
    assert_int_equal(g.violations, 0);
    assert_true(fault_alloc_clean(&c->fa));
}

/* FAULT_POOLS 0 (gc.fault): every object from the hooks, so the Nth allocation can be any
 * object's. FAULT_POOLS 1 (gc.fault_pools, test_fault_pools.c): objects from pools whose
 * arenas come from the hooks; an operation may then allocate nothing through them. */
#ifndef FAULT_POOLS
#define FAULT_POOLS 0
#endif

static rcgc_heap *new_heap(fault_alloc *fa)
{
    rcgc_heap_options o = {
        .name = "fault",
        .allocator = fault_alloc_hooks(fa),
        .ignore_environment = true,
        .panic = record_panic,
        .disable_pools = !FAULT_POOLS,
    };
    return rcgc_heap_new_with(&o);
}

/* A fresh allocator and heap, no fault armed, automatic collection off. */
static void chaos_begin(chaos *c, fail_mode mode, long n)
{
    reset_records();
    fault_alloc_init(&c->fa);
    c->mode = mode;
    c->n = n;
    c->h = new_heap(&c->fa);
    assert_non_null(c->h);
    rcgc_disable(c->h);
}

static void chaos_arm(chaos *c)
{
    if (c->mode == FAIL_NTH)
        fault_alloc_fail_nth(&c->fa, c->n);
    else
        fault_alloc_fail_from(&c->fa, c->n);
}

/* Disarms; returns whether the fault was reached. */
static bool chaos_disarm(chaos *c)
{
    return fault_alloc_disarm(&c->fa);
}

/* Drops the references held by resurrecting finalizers. */
static void drop_saved(void)
{
    while (g.nsaved > 0)
        rcgc_decref(g.saved[--g.nsaved]);
}

/* After rcgc_heap_free: every block came back (fault_alloc_fini lists those that did
 * not on stderr before the assertion fails). */
static void assert_freed_all(fault_alloc *fa)
{
    size_t blocks = fa->live_blocks, bytes = fa->live_bytes;
    bool clean = fault_alloc_clean(fa);
    fault_alloc_fini(fa);
    if (blocks != 0)
        print_message("rcgc_heap_free did not return %zu blocks (%zu bytes)\n", blocks, bytes);
    assert_int_equal(blocks, 0);
    assert_int_equal(bytes, 0);
    assert_true(clean);
}

/* Releases what the heap still holds (garbage list, resurrected objects, cycles) until
 * no object is left, then frees the heap: every block must have come back. */
static void chaos_end(chaos *c)
{
    check_heap(c);
    for (int round = 0; round < 4; round++) {
        drop_saved();
        rcgc_garbage_clear(c->h);
        assert_true(rcgc_collect(c->h, 2) >= 0);
        check_heap(c);
    }
    assert_int_equal(census_total(c->h), 0);
    rcgc_heap_free(c->h);
    c->h = NULL;
    check_heap(c);
    assert_freed_all(&c->fa);
}

typedef bool (*chaos_run_fn)(fail_mode mode, long n);

/* The step the chaos loop is in; still set when a failure cut a run short. */
static struct {
    bool running;
    int mode;
    long n;
} step;

/* The chaos loop: run(mode, N) for N = 0, 1, ... until a run does not reach the fault,
 * in both modes. */
static void chaos_loop(chaos_run_fn run)
{
    for (int m = 0; m < 2; m++) {
        long n = 0;
        for (;;) {
            step.running = true;
            step.mode = m;
            step.n = n;
            bool hit = run((fail_mode)m, n);
            step.running = false;
            if (!hit)
                break;
            n++;
            assert_true(n < 100000);
        }
        if (!FAULT_POOLS)
            assert_true(n > 0); /* the operation allocates at all */
    }
}

/* Test teardown: names the chaos step a failure happened in. */
static int report_step(void **state)
{
    (void)state;
    if (step.running)
        print_message("failed in the chaos loop at mode %s, N=%ld\n",
                      step.mode == FAIL_NTH ? "fail-nth" : "fail-from", step.n);
    step.running = false;
    return 0;
}

/* ---- heap creation ---- */

static bool run_heap_new(fail_mode mode, long n)
{
    fault_alloc fa;
    reset_records();
    fault_alloc_init(&fa);
    if (mode == FAIL_NTH)
        fault_alloc_fail_nth(&fa, n);
    else
        fault_alloc_fail_from(&fa, n);
    rcgc_heap *h = new_heap(&fa);
    bool hit = fault_alloc_disarm(&fa);
    if (h == NULL) {
        assert_true(hit);
        assert_int_equal(fa.live_blocks, 0);
    } else {
        assert_int_equal(rcgc__heap_check(h), 0);
        assert_string_equal(rcgc_heap_name(h), "fault");
        rcgc_disable(h);
        node *a = new_node(h, &Node, 1, 0);
        link(a, 0, a);
        rcgc_decref(a);
        assert_int_equal(rcgc_collect(h, 2), 1);
        assert_int_equal(g.dead[1], 1);
        assert_int_equal(rcgc__heap_check(h), 0);
        rcgc_heap_free(h);
        assert_int_equal(fa.live_blocks, 0);
    }
    assert_int_equal(g.panics, 0);
    assert_true(fault_alloc_clean(&fa));
    fault_alloc_fini(&fa);
    return hit;
}

static void test_fault_heap_new(void **state)
{
    (void)state;
    chaos_loop(run_heap_new);
}

/* ---- rcgc_new ---- */

/* Objects every object test keeps around, to check they stay intact. */
typedef struct {
    node *root; /* id 1, holds leaf (id 2) in slot 0 */
    leaf *leaf;
} keep;

static void keep_make(rcgc_heap *h, keep *k)
{
    k->root = new_node(h, &Node, 1, 0);
    k->leaf = new_leaf(h, 2);
    link(k->root, 0, k->leaf);
}

static void keep_check(const keep *k)
{
    assert_node(k->root, 1, 1);
    assert_leaf(k->leaf, 2, 2);
    assert_ptr_equal(k->root->slot[0], k->leaf);
    assert_true(rcgc_is_tracked(k->root));
}

static void keep_drop(keep *k)
{
    rcgc_decref(k->leaf);
    rcgc_decref(k->root);
    assert_int_equal(g.dead[1], 1);
    assert_int_equal(g.dead[2], 1);
}

/* pre: how many objects of the same kind exist before (list growth points differ). */
static bool run_new(fail_mode mode, long n, const rcgc_type *t, int pre, bool same_site)
{
    chaos c;
    chaos_begin(&c, mode, n);
    keep k;
    keep_make(c.h, &k);
    node *pres[32];
    for (int i = 0; i < pre; i++)
        pres[i] = new_node(c.h, t, 10 + i, 0);
    size_t before = census_of(c.h, t->name);
    size_t gen0 = objects_in(c.h, 0);

    chaos_arm(&c);
    node *x = same_site ? alloc_node(c.h, t) : rcgc_new(c.h, t);
    bool hit = chaos_disarm(&c);

    check_heap(&c);
    keep_check(&k);
    if (x == NULL) {
        assert_true(hit);
        assert_int_equal(census_of(c.h, t->name), before);
        assert_int_equal(objects_in(c.h, 0), gen0);
    } else {
        static const node zero;
        assert_memory_equal(x, &zero, sizeof zero); /* the payload is zeroed */
        assert_int_equal(rcgc_refcount(x), 1);
        assert_int_equal(rcgc_is_tracked(x), t->traverse != NULL);
        assert_ptr_equal(rcgc_type_of(x), t);
        assert_ptr_equal(rcgc_heap_of(x), c.h);
        assert_int_equal(census_of(c.h, t->name), before + 1);
        assert_int_equal(objects_in(c.h, 0), gen0 + (t->traverse != NULL));
        x->magic = MAGIC_LIVE;
        x->id = 100;
        if (t->traverse != NULL) {
            link(x, 1, k.root); /* and it works as a container */
            link(x, 2, x);
            rcgc_decref(x);
            assert_int_equal(rcgc_collect(c.h, 0), 1);
            assert_int_equal(g.dead[100], 1);
        } else {
            rcgc_decref(x);
        }
    }
    check_heap(&c);
    for (int i = 0; i < pre; i++)
        rcgc_decref(pres[i]);
    keep_check(&k);
    keep_drop(&k);
    chaos_end(&c);
    return hit;
}

/* The node type allocated by new_node's site (same site) or a fresh site. */
static bool run_new_container_same_site(fail_mode mode, long n)
{
    return run_new(mode, n, &Node, (int)(n % 3) * 8, true);
}

static bool run_new_container_new_site(fail_mode mode, long n)
{
    return run_new(mode, n, &Node, (int)(n % 3) * 8, false);
}

static bool run_new_fresh_type(fail_mode mode, long n)
{
    return run_new(mode, n, &FinNode, 0, true);
}

static bool run_new_leaf(fail_mode mode, long n)
{
    chaos c;
    chaos_begin(&c, mode, n);
    keep k;
    keep_make(c.h, &k);
    size_t before = census_of(c.h, "Leaf");
    chaos_arm(&c);
    leaf *x = rcgc_new(c.h, &Leaf);
    bool hit = chaos_disarm(&c);
    check_heap(&c);
    keep_check(&k);
    if (x == NULL) {
        assert_true(hit);
        assert_int_equal(census_of(c.h, "Leaf"), before);
    } else {
        assert_int_equal(x->magic, 0);
        assert_int_equal(x->id, 0);
        assert_int_equal(rcgc_refcount(x), 1);
        assert_false(rcgc_is_tracked(x));
        assert_int_equal(census_of(c.h, "Leaf"), before + 1);
        x->magic = MAGIC_LIVE;
        x->id = 100;
        rcgc_decref(x);
        assert_int_equal(g.dead[100], 1);
    }
    keep_drop(&k);
    chaos_end(&c);
    return hit;
}

static void test_fault_new(void **state)
{
    (void)state;
    chaos_loop(run_new_container_same_site);
    chaos_loop(run_new_container_new_site);
    chaos_loop(run_new_fresh_type);
    chaos_loop(run_new_leaf);
}

/* ---- rcgc_new_var ---- */

#define VAR_EXTRA 40

static bool run_new_var(fail_mode mode, long n)
{
    chaos c;
    chaos_begin(&c, mode, n);
    keep k;
    keep_make(c.h, &k);
    size_t before = census_of(c.h, "Node");
    size_t size = sizeof(node) + VAR_EXTRA;

    chaos_arm(&c);
    node *x = rcgc_new_var(c.h, &Node, size);
    node *bad = rcgc_new_var(c.h, &Node, sizeof(node) - 1); /* never valid */
    bool hit = chaos_disarm(&c);

    assert_null(bad);
    check_heap(&c);
    keep_check(&k);
    if (x == NULL) {
        assert_true(hit);
        assert_int_equal(census_of(c.h, "Node"), before);
    } else {
        unsigned char zero[sizeof(node) + VAR_EXTRA];
        memset(zero, 0, sizeof zero);
        assert_memory_equal(x, zero, size);
        assert_int_equal(rcgc_refcount(x), 1);
        assert_true(rcgc_is_tracked(x));
        assert_int_equal(census_of(c.h, "Node"), before + 1);
        memset((char *)x + sizeof(node), 0x5a, VAR_EXTRA); /* the whole payload is ours */
        x->magic = MAGIC_LIVE;
        x->id = 100;
        link(x, 3, x);
        rcgc_decref(x);
        assert_int_equal(rcgc_collect(c.h, 0), 1);
        assert_int_equal(g.dead[100], 1);
    }
    keep_drop(&k);
    chaos_end(&c);
    return hit;
}

static void test_fault_new_var(void **state)
{
    (void)state;
    chaos_loop(run_new_var);
}

/* ---- automatic collection inside rcgc_new ---- */

/* Garbage cycles are waiting and the threshold is 1: the allocation collects first. */
static bool run_new_automatic(fail_mode mode, long n)
{
    chaos c;
    chaos_begin(&c, mode, n);
    keep k;
    keep_make(c.h, &k);
    for (int i = 0; i < 10; i++) {
        node *a = new_node(c.h, i % 2 ? &FinNode : &Node, 10 + i, M_ALLOC_IN_FIN);
        link(a, 0, a);
        link(a, 1, k.root);
        rcgc_decref(a);
    }
    assert_int_equal(rcgc_add_callback(c.h, gc_callback, NULL), 0);
    rcgc_set_threshold(c.h, 1, 1, 1);
    rcgc_enable(c.h);

    chaos_arm(&c);
    node *x = rcgc_new(c.h, &Node);
    bool hit = chaos_disarm(&c);
    rcgc_disable(c.h);
    if (x != NULL)
        x->magic = MAGIC_LIVE;

    check_heap(&c);
    /* The site record comes first: when it cannot be had, no collection runs. */
    assert_int_equal(g.gc_start, g.gc_stop);
    assert_true(g.gc_start <= 1);
    if (g.gc_start == 0)
        assert_null(x);
    /* Either the automatic collection ran to its end (all ten freed) or it could not
     * start (none freed); the finalizers' own allocations may fail in between. */
    int freed = deaths();
    assert_true(freed == 0 || freed >= 10);
    for (int i = 0; i < 10; i++)
        assert_int_equal(g.dead[10 + i], freed ? 1 : 0);
    assert_int_equal(rcgc_refcount(k.root), 1 + (freed ? 0 : 10));
    if (x == NULL) {
        assert_true(hit);
    } else {
        assert_int_equal(rcgc_refcount(x), 1);
        rcgc_decref(x);
    }
    assert_true(rcgc_collect(c.h, 2) >= 0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(g.dead[10 + i], 1);
    keep_check(&k);
    keep_drop(&k);
    chaos_end(&c);
    return hit;
}

static void test_fault_new_automatic(void **state)
{
    (void)state;
    chaos_loop(run_new_automatic);
}

/* ---- weak references ---- */

/* pre: weak references to the target that exist before (chain and table growth). */
static bool run_weakref_new(fail_mode mode, long n, int pre)
{
    chaos c;
    chaos_begin(&c, mode, n);
    keep k;
    keep_make(c.h, &k);
    node *t = new_node(c.h, &Node, 10, 0);
    void *olds[32];
    for (int i = 0; i < pre; i++) {
        /* some to the target, some to other objects (the table grows with both) */
        olds[i] = rcgc_weakref_new(c.h, i % 2 ? (void *)t : (void *)k.root, wr_callback,
                                   (void *)(intptr_t)(20 + i));
        assert_non_null(olds[i]);
    }
    size_t wcount = rcgc_weakref_count(t);
    size_t wrefs = census_of(c.h, "weakref");

    chaos_arm(&c);
    void *w = rcgc_weakref_new(c.h, t, wr_callback, (void *)(intptr_t)11);
    bool hit = chaos_disarm(&c);

    check_heap(&c);
    keep_check(&k);
    assert_node(t, 10, 1);
    if (w == NULL) {
        assert_true(hit);
        assert_int_equal(rcgc_weakref_count(t), wcount);
        assert_int_equal(census_of(c.h, "weakref"), wrefs);
    } else {
        assert_true(rcgc_is_weakref(w));
        assert_int_equal(rcgc_refcount(w), 1);
        assert_int_equal(rcgc_weakref_count(t), wcount + 1);
        assert_int_equal(census_of(c.h, "weakref"), wrefs + 1);
        void *got = rcgc_weakref_get(w);
        assert_ptr_equal(got, t);
        rcgc_decref(got);
    }
    rcgc_decref(t); /* the callbacks of every weak reference to t run, once */
    assert_int_equal(g.dead[10], 1);
    assert_int_equal(g.wrcb[11], w != NULL);
    for (int i = 0; i < pre; i++)
        assert_int_equal(g.wrcb[20 + i], i % 2);
    if (w != NULL) {
        assert_null(rcgc_weakref_get(w));
        rcgc_decref(w);
    }
    for (int i = 0; i < pre; i++)
        rcgc_decref(olds[i]);
    assert_int_equal(rcgc_weakref_count(k.root), 0);
    check_heap(&c);
    keep_drop(&k);
    chaos_end(&c);
    return hit;
}

static bool run_weakref_new_first(fail_mode mode, long n)
{
    return run_weakref_new(mode, n, 0);
}

static bool run_weakref_new_more(fail_mode mode, long n)
{
    return run_weakref_new(mode, n, (int)(n % 4) * 4 + 7);
}

static void test_fault_weakref_new(void **state)
{
    (void)state;
    chaos_loop(run_weakref_new_first);
    chaos_loop(run_weakref_new_more);
}

/* ---- gc callbacks and event hooks ---- */

static bool run_add_hooks(fail_mode mode, long n)
{
    chaos c;
    chaos_begin(&c, mode, n);
    int pre = (int)(n % 3) * 4; /* registrations before: the arrays grow at 8 */
    for (int i = 0; i < pre; i++) {
        assert_int_equal(rcgc_add_callback(c.h, gc_callback, NULL), 0);
        assert_int_equal(rcgc_add_event_hook(c.h, event_hook, NULL), 0);
    }
    chaos_arm(&c);
    int rc1 = rcgc_add_callback(c.h, gc_callback, NULL);
    int rc2 = rcgc_add_event_hook(c.h, event_hook, NULL);
    bool hit = chaos_disarm(&c);

    assert_true(rc1 == 0 || rc1 == RCGC_ENOMEM);
    assert_true(rc2 == 0 || rc2 == RCGC_ENOMEM);
    if (rc1 != 0 || rc2 != 0)
        assert_true(hit);
    check_heap(&c);
    int ncb = pre + (rc1 == 0), nev = pre + (rc2 == 0);
    assert_true(rcgc_collect(c.h, 0) >= 0);
    assert_int_equal(g.gc_start, ncb);
    assert_int_equal(g.gc_stop, ncb);
    assert_int_equal(g.events, 2 * nev); /* START and DONE */
    for (int i = 0; i < ncb; i++)
        assert_int_equal(rcgc_remove_callback(c.h, gc_callback, NULL), 0);
    for (int i = 0; i < nev; i++)
        assert_int_equal(rcgc_remove_event_hook(c.h, event_hook, NULL), 0);
    assert_int_equal(rcgc_remove_callback(c.h, gc_callback, NULL), RCGC_ENOENT);
    assert_int_equal(rcgc_remove_event_hook(c.h, event_hook, NULL), RCGC_ENOENT);
    chaos_end(&c);
    return hit;
}

static void test_fault_hooks(void **state)
{
    (void)state;
    chaos_loop(run_add_hooks);
}

/* ---- collection of a graph with cycles, weak references and finalizers ---- */

/* The graph, ids:
 *   1 root (held), 2 leaf (root.0), 3 shared (root.1; also referenced by A2)
 *   gen0: A1 (10) <-> A2 (11); A1.2 holds a weak reference WA to A2 (callback arg 12,
 *         trash itself: its callback must never run); 20 self-loops (50..69)
 *   gen1: F1 (20, FinNode allocating in finalize) <-> F2 (21, FinNode resurrecting)
 *   gen2: L1 (30, LegacyNode) <-> N (31): uncollectable; S1 (40) self-loop
 * Weak references held by the test: wa1 -> A1 (arg 13), wf1 -> F1 (arg 14),
 *   ws1 -> S1 (arg 15), wroot -> root (arg 16). */
typedef struct {
    node *root, *shared, *l1, *f1, *f2;
    leaf *leaf;
    void *wa1, *wf1, *ws1, *wroot;
} graph;

static void *weak(rcgc_heap *h, void *target, int arg)
{
    void *w = rcgc_weakref_new(h, target, wr_callback, (void *)(intptr_t)arg);
    assert_non_null(w);
    return w;
}

static void cycle2(node *a, node *b)
{
    link(a, 0, b);
    link(b, 0, a);
}

static void graph_build(rcgc_heap *h, graph *gr)
{
    memset(gr, 0, sizeof *gr);
    gr->root = new_node(h, &Node, 1, 0);
    gr->leaf = new_leaf(h, 2);
    gr->shared = new_node(h, &Node, 3, 0);
    link(gr->root, 0, gr->leaf);
    link(gr->root, 1, gr->shared);
    rcgc_decref(gr->leaf);
    rcgc_decref(gr->shared);
    gr->wroot = weak(h, gr->root, 16);

    /* the oldest part: survives collect(1) into gen2 */
    node *l1 = new_node(h, &LegacyNode, 30, 0);
    node *nn = new_node(h, &Node, 31, 0);
    node *s1 = new_node(h, &Node, 40, 0);
    cycle2(l1, nn);
    link(s1, 0, s1);
    gr->ws1 = weak(h, s1, 15);
    assert_int_equal(rcgc_collect(h, 1), 0);
    /* the middle part: survives collect(0) into gen1 */
    node *f1 = new_node(h, &FinNode, 20, M_ALLOC_IN_FIN);
    node *f2 = new_node(h, &FinNode, 21, M_RESURRECT);
    cycle2(f1, f2);
    gr->wf1 = weak(h, f1, 14);
    assert_int_equal(rcgc_collect(h, 0), 0);
    /* the young part */
    node *a1 = new_node(h, &Node, 10, 0);
    node *a2 = new_node(h, &Node, 11, 0);
    cycle2(a1, a2);
    link(a2, 1, gr->shared);
    void *wa = weak(h, a2, 12);
    link(a1, 2, wa);
    rcgc_decref(wa);
    gr->wa1 = weak(h, a1, 13);
    for (int i = 0; i < 20; i++) {
        node *s = new_node(h, &Node, 50 + i, 0);
        link(s, 0, s);
        rcgc_decref(s);
    }
    gr->l1 = l1;
    gr->f1 = f1;
    gr->f2 = f2;
    rcgc_decref(l1);
    rcgc_decref(nn);
    rcgc_decref(s1);
    rcgc_decref(f1);
    rcgc_decref(f2);
    rcgc_decref(a1);
    rcgc_decref(a2);
    assert_int_equal(objects_in(h, 2), 5 + 2); /* root, shared, l1, nn, s1 + ws1, wroot */
    assert_int_equal(objects_in(h, 1), 2 + 1);
    assert_int_equal(objects_in(h, 0), 2 + 1 + 1 + 20);
    assert_int_equal(rcgc_refcount(gr->shared), 2);
}

/* What collect(gen) of the fault-free run returns: the young part counts A1, A2, WA and
 * the 20 self-loops; F1/F2 are resurrected (excluded); gen2 adds S1 and the two
 * uncollectable objects. */
static ssize_t graph_expected(int gen)
{
    return gen == 2 ? 23 + 1 + 2 : 23;
}

static bool graph_young_dead(void)
{
    return g.dead[10] == 1 && g.dead[11] == 1;
}

/* The state once everything collectable was collected (whatever the path). */
static void graph_check_final(rcgc_heap *h, graph *gr)
{
    assert_node(gr->root, 1, 1);
    assert_leaf(gr->leaf, 2, 1);
    assert_node(gr->shared, 3, 1);
    assert_ptr_equal(gr->root->slot[0], gr->leaf);
    assert_ptr_equal(gr->root->slot[1], gr->shared);
    for (int id = 10; id <= 11; id++)
        assert_int_equal(g.dead[id], 1);
    for (int id = 50; id < 70; id++)
        assert_int_equal(g.dead[id], 1);
    assert_int_equal(g.dead[40], 1);
    /* resurrected, finalized once each, both alive */
    assert_int_equal(g.finalized[20], 1);
    assert_int_equal(g.finalized[21], 1);
    assert_int_equal(g.nsaved, 1);
    assert_ptr_equal(g.saved[0], gr->f2);
    assert_int_equal(gr->f1->magic, MAGIC_LIVE);
    assert_int_equal(gr->f2->magic, MAGIC_LIVE);
    assert_true(rcgc_is_finalized(gr->f1));
    assert_true(rcgc_is_finalized(gr->f2));
    assert_int_equal(rcgc_refcount(gr->f2), 2); /* saved + F1 */
    assert_int_equal(rcgc_refcount(gr->f1), 1); /* F2 */
    /* the legacy cycle: in the garbage list, legacy_del never called by a collection */
    assert_int_equal(rcgc_garbage_count(h), 1);
    assert_ptr_equal(rcgc_garbage_get(h, 0), gr->l1);
    assert_int_equal(g.legacy[30], 0);
    assert_int_equal(g.dead[30] + g.dead[31], 0);
    /* weak references: cleared with one callback each, WA's never ran */
    assert_null(rcgc_weakref_get(gr->wa1));
    assert_null(rcgc_weakref_get(gr->wf1));
    assert_null(rcgc_weakref_get(gr->ws1));
    void *r = rcgc_weakref_get(gr->wroot);
    assert_ptr_equal(r, gr->root);
    rcgc_decref(r);
    assert_int_equal(g.wrcb[12], 0);
    assert_int_equal(g.wrcb[13], 1);
    assert_int_equal(g.wrcb[14], 1);
    assert_int_equal(g.wrcb[15], 1);
    assert_int_equal(g.wrcb[16], 0);
}

static void graph_drop(rcgc_heap *h, graph *gr)
{
    /* break the uncollectable cycle by hand, then empty the garbage list: L1 dies on
     * the refcount path, where its legacy_del runs */
    unlink_slot(gr->l1, 0);
    assert_int_equal(g.dead[31], 1);
    rcgc_garbage_clear(h);
    assert_int_equal(g.legacy[30], 1);
    assert_int_equal(g.dead[30], 1);
    drop_saved();
    assert_int_equal(rcgc_collect(h, 2), 2);
    assert_int_equal(g.dead[20] + g.dead[21], 2);
    assert_int_equal(g.finalized[20] + g.finalized[21], 2);
    rcgc_decref(gr->root);
    assert_int_equal(g.dead[1] + g.dead[2] + g.dead[3], 3);
    assert_int_equal(g.wrcb[16], 1);
    rcgc_decref(gr->wa1);
    rcgc_decref(gr->wf1);
    rcgc_decref(gr->ws1);
    rcgc_decref(gr->wroot);
}

static int collect_gen;

static bool run_collect(fail_mode mode, long n)
{
    chaos c;
    chaos_begin(&c, mode, n);
    graph gr;
    graph_build(c.h, &gr);
    assert_int_equal(rcgc_add_callback(c.h, gc_callback, NULL), 0);
    assert_int_equal(rcgc_add_event_hook(c.h, event_hook, NULL), 0);
    rcgc_gen_stats st0[3];
    rcgc_get_stats(c.h, st0);

    chaos_arm(&c);
    ssize_t r = rcgc_collect(c.h, collect_gen);
    bool hit = chaos_disarm(&c);
    if (getenv("FAULT_VERBOSE"))
        print_message("collect(%d) mode %d N=%ld: %zd, hit %d, requests %ld\n", collect_gen,
                      (int)mode, n, r, hit, c.fa.requests);

    check_heap(&c);
    assert_int_equal(g.gc_start, 1);
    assert_int_equal(g.gc_stop, 1);
    if (r < 0) {
        /* no working memory: nothing happened, no user code ran */
        assert_int_equal(r, RCGC_ENOMEM);
        assert_true(hit);
        assert_int_equal(deaths(), 0);
        assert_int_equal(sum(g.finalized), 0);
        assert_int_equal(sum(g.wrcb), 0);
        assert_int_equal(rcgc_garbage_count(c.h), 0);
        assert_int_equal(rcgc_refcount(gr.shared), 2);
        void *t = rcgc_weakref_get(gr.wa1);
        assert_non_null(t);
        rcgc_decref(t);
    } else {
        /* the collection ran to its end: it found what the fault-free one finds */
        if (r != graph_expected(collect_gen))
            print_message("collect(%d) with fault (mode %d, N=%ld) returned %zd, "
                          "expected %zd\n",
                          collect_gen, (int)mode, n, r, graph_expected(collect_gen));
        assert_int_equal(r, graph_expected(collect_gen));
        assert_true(graph_young_dead());
        assert_int_equal(g.wrcb[12], 0);
        rcgc_gen_stats st[3];
        rcgc_get_stats(c.h, st);
        assert_int_equal(st[collect_gen].collections, st0[collect_gen].collections + 1);
    }
    /* with memory back, the heap converges to the fault-free outcome */
    ssize_t r2 = rcgc_collect(c.h, 2);
    assert_true(r2 >= 0);
    check_heap(&c);
    graph_check_final(c.h, &gr);
    graph_drop(c.h, &gr);
    chaos_end(&c);
    return hit;
}

static void test_fault_collect_gen0(void **state)
{
    (void)state;
    collect_gen = 0;
    chaos_loop(run_collect);
}

static void test_fault_collect_gen1(void **state)
{
    (void)state;
    collect_gen = 1;
    chaos_loop(run_collect);
}

static void test_fault_collect_gen2(void **state)
{
    (void)state;
    collect_gen = 2;
    chaos_loop(run_collect);
}

/* ---- freeze / unfreeze ---- */

static bool run_freeze(fail_mode mode, long n)
{
    chaos c;
    chaos_begin(&c, mode, n);
    keep k;
    keep_make(c.h, &k);
    node *cyc[3];
    for (int i = 0; i < 3; i++) {
        cyc[i] = new_node(c.h, &Node, 10 + i, 0);
        link(cyc[i], 0, cyc[i]);
    }
    assert_int_equal(rcgc_collect(c.h, 0), 0); /* root, cyc[0..2] in gen1 */
    node *y = new_node(c.h, &Node, 20, 0);
    link(y, 0, y);
    size_t tracked = objects_in(c.h, -1);
    assert_int_equal(tracked, 5);

    chaos_arm(&c);
    rcgc_freeze(c.h);
    bool hit = chaos_disarm(&c);
    check_heap(&c);
    size_t frozen = rcgc_get_freeze_count(c.h);
    if (frozen == 0) {
        assert_true(hit);
        assert_int_equal(objects_in(c.h, 0), 1);
        assert_int_equal(objects_in(c.h, 1), 4);
    } else {
        assert_int_equal(frozen, tracked);
        assert_int_equal(objects_in(c.h, -1), 0);
        size_t cnt[3];
        rcgc_get_count(c.h, cnt);
        assert_int_equal(cnt[0] + cnt[1] + cnt[2], 0);
    }
    /* frozen garbage is never collected; unfrozen it is */
    for (int i = 0; i < 3; i++)
        rcgc_decref(cyc[i]);
    rcgc_decref(y);
    assert_int_equal(rcgc_collect(c.h, 2), frozen ? 0 : 4);
    keep_check(&k);

    chaos_arm(&c);
    rcgc_unfreeze(c.h);
    bool hit2 = chaos_disarm(&c);
    check_heap(&c);
    if (rcgc_get_freeze_count(c.h) != 0) {
        assert_true(hit2);
        assert_int_equal(rcgc_get_freeze_count(c.h), frozen);
        rcgc_unfreeze(c.h);
    }
    assert_int_equal(rcgc_get_freeze_count(c.h), 0);
    assert_int_equal(objects_in(c.h, 2), frozen ? tracked : 1);
    assert_int_equal(rcgc_collect(c.h, 2), frozen ? 4 : 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(g.dead[10 + i], 1);
    assert_int_equal(g.dead[20], 1);
    keep_check(&k);
    keep_drop(&k);
    chaos_end(&c);
    return hit || hit2;
}

static void test_fault_freeze(void **state)
{
    (void)state;
    chaos_loop(run_freeze);
}

/* ---- the garbage list under DEBUG_SAVEALL ---- */

#define SAVEALL_N 21 /* self-loops: the garbage list grows at 8 and 16 */

static bool run_saveall(fail_mode mode, long n)
{
    chaos c;
    chaos_begin(&c, mode, n);
    node *objs[SAVEALL_N];
    for (int i = 0; i < SAVEALL_N; i++) {
        objs[i] = new_node(c.h, &Node, 10 + i, 0);
        link(objs[i], 0, objs[i]);
    }
    for (int i = 0; i < SAVEALL_N; i++)
        rcgc_decref(objs[i]);
    rcgc_set_debug(c.h, RCGC_DEBUG_SAVEALL);

    chaos_arm(&c);
    ssize_t r = rcgc_collect(c.h, 0);
    bool hit = chaos_disarm(&c);

    check_heap(&c);
    assert_int_equal(deaths(), 0); /* SAVEALL never clears */
    size_t ng = rcgc_garbage_count(c.h);
    if (r < 0) {
        assert_int_equal(r, RCGC_ENOMEM);
        assert_int_equal(ng, 0);
    } else {
        assert_int_equal(r, SAVEALL_N);
        assert_true(ng <= SAVEALL_N);
    }
    /* each entry is one of ours, once; every object is intact */
    for (size_t i = 0; i < ng; i++) {
        node *e = rcgc_garbage_get(c.h, i);
        assert_true(e->id >= 10 && e->id < 10 + SAVEALL_N);
        for (size_t j = 0; j < i; j++)
            assert_ptr_not_equal(rcgc_garbage_get(c.h, j), e);
    }
    for (int i = 0; i < SAVEALL_N; i++) {
        assert_int_equal(objs[i]->magic, MAGIC_LIVE);
        assert_ptr_equal(objs[i]->slot[0], objs[i]);
    }
    /* those left out are found again by the next collection */
    assert_true(rcgc_collect(c.h, 2) >= 0);
    assert_int_equal(rcgc_garbage_count(c.h), SAVEALL_N);
    for (int i = 0; i < SAVEALL_N; i++)
        assert_int_equal(rcgc_refcount(objs[i]), 2);
    rcgc_set_debug(c.h, 0);
    rcgc_garbage_clear(c.h);
    assert_int_equal(rcgc_collect(c.h, 2), SAVEALL_N);
    assert_int_equal(deaths(), SAVEALL_N);
    chaos_end(&c);
    return hit;
}

static void test_fault_saveall(void **state)
{
    (void)state;
    chaos_loop(run_saveall);
}

/* ---- deaths on the refcount path ---- */

/* A chain head -> F (FinNode, allocates) -> L (LegacyNode, resurrects once) -> 60 Nodes
 * (deep enough for the trashcan) -> leaf; head also holds weak references. */
static bool run_refcount_death(fail_mode mode, long n)
{
    chaos c;
    chaos_begin(&c, mode, n);
    node *head = new_node(c.h, &Node, 1, 0);
    node *f = new_node(c.h, &FinNode, 2, M_ALLOC_IN_FIN);
    node *l = new_node(c.h, &LegacyNode, 3, M_RESURRECT);
    link(head, 0, f);
    link(f, 0, l);
    node *prev = l;
    for (int i = 0; i < 60; i++) {
        node *x = new_node(c.h, &Node, 10 + i, 0);
        link(prev, 1, x);
        rcgc_decref(x);
        prev = x;
    }
    leaf *lf = new_leaf(c.h, 100);
    link(prev, 2, lf);
    rcgc_decref(lf);
    void *wh = weak(c.h, head, 4);
    void *wl = weak(c.h, l, 5);
    rcgc_decref(f);
    rcgc_decref(l);

    chaos_arm(&c);
    rcgc_decref(head);
    bool hit = chaos_disarm(&c);

    check_heap(&c);
    assert_int_equal(g.dead[1], 1);
    assert_int_equal(g.dead[2], 1);
    assert_int_equal(g.finalized[2], 1);
    assert_int_equal(g.wrcb[4], 1);
    assert_int_equal(g.wrcb[5], 1);
    assert_int_equal(g.legacy[3], 1);
    /* L resurrected itself: it and the chain below it live on */
    assert_int_equal(g.nsaved, 1);
    assert_ptr_equal(g.saved[0], l);
    assert_int_equal(rcgc_refcount(l), 1);
    assert_int_equal(l->magic, MAGIC_LIVE);
    assert_int_equal(deaths(), 2);
    assert_null(rcgc_weakref_get(wl)); /* cleared before legacy_del resurrected it */
    /* the second death: legacy_del again (as CPython), then the whole chain */
    l->mode = 0;
    chaos_arm(&c);
    drop_saved();
    hit = chaos_disarm(&c) || hit;
    check_heap(&c);
    assert_int_equal(g.legacy[3], 2);
    assert_int_equal(deaths(), 2 + 1 + 60 + 1);
    rcgc_decref(wh);
    rcgc_decref(wl);
    chaos_end(&c);
    return hit;
}

/* A legacy_del that resurrects while generation 0 is full: the dying object has left its
 * list (gen2), the move back to gen0 for legacy_del and the resurrection need room that
 * may not be had. fill walks gen0 across a growth point. */
static bool run_legacy_resurrect(fail_mode mode, long n)
{
    bool hit = false;
    for (int fill = 0; fill <= 64; fill++) {
        chaos c;
        chaos_begin(&c, mode, n);
        node *l = new_node(c.h, &LegacyNode, 3, M_RESURRECT);
        node *child = new_node(c.h, &Node, 4, 0);
        link(l, 0, child);
        rcgc_decref(child);
        void *wl = weak(c.h, l, 5);
        assert_int_equal(rcgc_collect(c.h, 1), 0); /* all in gen2 */
        node *fillers[64];
        for (int i = 0; i < fill; i++)
            fillers[i] = new_node(c.h, &Node, 10 + i, 0);

        chaos_arm(&c);
        rcgc_decref(l);
        hit = chaos_disarm(&c) || hit;
        check_heap(&c);
        assert_int_equal(g.legacy[3], 1);
        assert_int_equal(g.wrcb[5], 1);
        assert_int_equal(deaths(), 0);
        assert_int_equal(g.nsaved, 1);
        assert_int_equal(rcgc_refcount(l), 1);
        assert_int_equal(rcgc_refcount(child), 1);

        l->mode = 0;
        chaos_arm(&c);
        drop_saved();
        hit = chaos_disarm(&c) || hit;
        check_heap(&c);
        assert_int_equal(g.legacy[3], 2);
        assert_int_equal(g.dead[3] + g.dead[4], 2);
        for (int i = 0; i < fill; i++)
            rcgc_decref(fillers[i]);
        rcgc_decref(wl);
        chaos_end(&c);
    }
    return hit;
}

static void test_fault_refcount_death(void **state)
{
    (void)state;
    chaos_loop(run_refcount_death);
    chaos_loop(run_legacy_resurrect);
}

/* ---- track / untrack ---- */

/* Fills the untracked list to its capacity (8 or 16), so that the next push grows it. */
static int fill_untracked(rcgc_heap *h, leaf **leaves, long n)
{
    int nleaves = n % 2 ? 16 : 8;
    for (int i = 0; i < nleaves; i++)
        leaves[i] = new_leaf(h, 100 + i);
    return nleaves;
}

static bool run_untrack(fail_mode mode, long n)
{
    chaos c;
    chaos_begin(&c, mode, n);
    leaf *leaves[16];
    int nleaves = fill_untracked(c.h, leaves, n);
    /* gen0 full at 8: after untracking a, one more node fills it again */
    node *a = new_node(c.h, &Node, 1, 0);
    node *b = new_node(c.h, &Node, 2, 0);
    node *more[7];
    for (int i = 0; i < 6; i++)
        more[i] = new_node(c.h, &Node, 10 + i, 0);
    cycle2(a, b);

    chaos_arm(&c);
    rcgc_untrack(a);
    bool hit = chaos_disarm(&c);
    check_heap(&c);
    assert_false(rcgc_is_tracked(a)); /* untracking cannot fail */
    assert_node(a, 1, 2);
    more[6] = new_node(c.h, &Node, 16, 0);

    chaos_arm(&c);
    rcgc_track(a);
    hit = chaos_disarm(&c) || hit;
    check_heap(&c);
    assert_node(a, 1, 2);
    if (!rcgc_is_tracked(a))
        rcgc_track(a); /* tracking under exhaustion may leave it untracked */
    assert_true(rcgc_is_tracked(a));
    rcgc_decref(a);
    rcgc_decref(b);
    assert_int_equal(rcgc_collect(c.h, 2), 2);
    assert_int_equal(g.dead[1] + g.dead[2], 2);
    for (int i = 0; i < 7; i++)
        rcgc_decref(more[i]);
    for (int i = 0; i < nleaves; i++)
        rcgc_decref(leaves[i]);
    chaos_end(&c);
    return hit;
}

/* An object left untracked (or unlisted) by memory exhaustion dies on the refcount path. */
static bool run_untrack_then_die(fail_mode mode, long n)
{
    chaos c;
    chaos_begin(&c, mode, n);
    leaf *leaves[16];
    int nleaves = fill_untracked(c.h, leaves, n);
    node *a = new_node(c.h, &FinNode, 1, 0);

    chaos_arm(&c);
    rcgc_untrack(a);
    bool hit = chaos_disarm(&c);
    check_heap(&c);
    rcgc_decref(a);
    check_heap(&c);
    assert_int_equal(g.finalized[1], 1);
    assert_int_equal(g.dead[1], 1);
    for (int i = 0; i < nleaves; i++)
        rcgc_decref(leaves[i]);
    chaos_end(&c);
    return hit;
}

/* rcgc_heap_free releases every object still referenced, except one that memory
 * exhaustion left in no list while untracking (documented in rcgc.h: it stays valid and
 * is released by its own death, which this test then lets happen). */
static bool run_untrack_then_heap_free(fail_mode mode, long n)
{
    chaos c;
    chaos_begin(&c, mode, n);
    leaf *leaves[16];
    int nleaves = fill_untracked(c.h, leaves, n);
    node *a = new_node(c.h, &Node, 1, 0);
    chaos_arm(&c);
    rcgc_untrack(a);
    bool hit = chaos_disarm(&c);
    check_heap(&c);
    if (hit && !rcgc_is_tracked(a))
        rcgc_decref(a); /* possibly unlisted: its death releases it */
    /* otherwise still referenced (and the leaves): heap_free releases them */
    (void)nleaves;
    rcgc_set_debug(c.h, RCGC_DEBUG_SAVEALL); /* quiet: no "still alive" summary */
    rcgc_heap_free(c.h);
    c.h = NULL;
    assert_int_equal(g.panics, 0);
    assert_freed_all(&c.fa);
    return hit;
}

static void test_fault_track(void **state)
{
    (void)state;
    chaos_loop(run_untrack);
    chaos_loop(run_untrack_then_die);
    chaos_loop(run_untrack_then_heap_free);
}

/* ---- rcgc_heap_free ---- */

static bool run_heap_free(fail_mode mode, long n)
{
    chaos c;
    chaos_begin(&c, mode, n);
    graph gr;
    graph_build(c.h, &gr);
    /* also objects still referenced at the end, and weak references held by objects */
    rcgc_decref(gr.root);
    rcgc_decref(gr.wa1);
    rcgc_decref(gr.wf1);
    rcgc_decref(gr.ws1);
    node *held = new_node(c.h, &Node, 5, 0);
    link(held, 0, held);
    link(held, 1, gr.wroot);
    rcgc_decref(gr.wroot);
    assert_int_equal(rcgc_add_callback(c.h, gc_callback, NULL), 0);
    assert_int_equal(rcgc_add_event_hook(c.h, event_hook, NULL), 0);
    /* SAVEALL keeps rcgc_heap_free quiet about the legacy cycle and the held node */
    rcgc_set_debug(c.h, RCGC_DEBUG_SAVEALL);

    chaos_arm(&c);
    rcgc_heap_free(c.h);
    bool hit = chaos_disarm(&c);
    c.h = NULL;
    g.nsaved = 0; /* released by rcgc_heap_free: the references are gone with it */

    assert_int_equal(g.gc_start, 0); /* the final collection calls no gc callbacks */
    assert_int_equal(g.panics, 0);
    assert_int_equal(g.violations, 0);
    assert_int_equal(g.dead[5], 0);
    assert_freed_all(&c.fa);
    return hit;
}

static bool run_heap_free_plain(fail_mode mode, long n)
{
    chaos c;
    chaos_begin(&c, mode, n);
    for (int i = 0; i < 12; i++) {
        node *a = new_node(c.h, i % 3 ? &Node : &FinNode, 10 + i, M_ALLOC_IN_FIN);
        node *b = new_node(c.h, &Node, 30 + i, 0);
        cycle2(a, b);
        void *w = weak(c.h, a, 50 + i);
        link(b, 1, w);
        rcgc_decref(w);
        rcgc_decref(a);
        rcgc_decref(b);
    }
    chaos_arm(&c);
    rcgc_heap_free(c.h);
    bool hit = chaos_disarm(&c);
    c.h = NULL;
    g.nsaved = 0;
    assert_int_equal(g.panics, 0);
    assert_int_equal(g.violations, 0);
    /* either the final collection ran (every dealloc once) or it could not start */
    int d = deaths();
    assert_true(d == 0 || d == 24);
    if (!hit)
        assert_int_equal(d, 24);
    assert_freed_all(&c.fa);
    return hit;
}

static void test_fault_heap_free(void **state)
{
    (void)state;
    chaos_loop(run_heap_free);
    chaos_loop(run_heap_free_plain);
}

/* ---- the allocator itself ---- */

static void test_fault_allocator_accounting(void **state)
{
    (void)state;
    fault_alloc fa;
    fault_alloc_init(&fa);
    const rcgc_allocator *a = fault_alloc_hooks(&fa);
    void *p = a->malloc(10, a->ctx);
    void *q = a->malloc(20, a->ctx);
    assert_int_equal(fa.live_blocks, 2);
    assert_int_equal(fa.live_bytes, 30);
    p = a->realloc(p, 10, 100, a->ctx);
    assert_non_null(p);
    assert_int_equal(fa.live_bytes, 120);
    a->free(q, 21, a->ctx); /* wrong size: counted */
    assert_int_equal(fa.size_mismatches, 1);
    assert_false(fault_alloc_clean(&fa));
    fault_alloc_fail_nth(&fa, 1);
    void *r = a->malloc(1, a->ctx);
    assert_non_null(r);
    assert_null(a->malloc(1, a->ctx));
    void *p2 = a->realloc(p, 100, 200, a->ctx); /* the third request passes */
    assert_non_null(p2);
    p = p2;
    assert_true(fault_alloc_disarm(&fa));
    fault_alloc_fail_from(&fa, 0);
    assert_null(a->malloc(1, a->ctx));
    assert_null(a->malloc(1, a->ctx));
    assert_int_equal(fa.injected, 2);
    fault_alloc_disarm(&fa);
    a->free(r, 1, a->ctx);
    a->free(p, 200, a->ctx);
    assert_int_equal(fa.live_blocks, 0);
    assert_int_equal(fa.live_bytes, 0);
    fault_alloc_fini(&fa);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_fault_allocator_accounting, report_step),
        cmocka_unit_test_teardown(test_fault_heap_new, report_step),
        cmocka_unit_test_teardown(test_fault_new, report_step),
        cmocka_unit_test_teardown(test_fault_new_var, report_step),
        cmocka_unit_test_teardown(test_fault_new_automatic, report_step),
        cmocka_unit_test_teardown(test_fault_weakref_new, report_step),
        cmocka_unit_test_teardown(test_fault_hooks, report_step),
        cmocka_unit_test_teardown(test_fault_collect_gen0, report_step),
        cmocka_unit_test_teardown(test_fault_collect_gen1, report_step),
        cmocka_unit_test_teardown(test_fault_collect_gen2, report_step),
        cmocka_unit_test_teardown(test_fault_freeze, report_step),
        cmocka_unit_test_teardown(test_fault_saveall, report_step),
        cmocka_unit_test_teardown(test_fault_refcount_death, report_step),
        cmocka_unit_test_teardown(test_fault_track, report_step),
        cmocka_unit_test_teardown(test_fault_heap_free, report_step),
    };
    const char *filter = getenv("RCGC_TEST_FILTER"); /* e.g. "*16602" */
    if (filter != NULL && *filter != '\0')
        cmocka_set_test_filter(filter);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
