/* test_analyze.c: the analyses the inspector runs at a safepoint (rcgc/snapshot.h):
 * id validation, one object's facts, its refcount explained, and the shortest path
 * from an object held from outside the heap, the garbage grouped by cycle, and the
 * retained size and dominator tree (checked against brute force on random graphs). */
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

/* A chain of n Nodes held from C by its head. Returns: the head; *tail the last. */
static tl_node *make_chain(rcgc_heap *h, int n, tl_node **tail)
{
    tl_node *head = tl_new(h, &tl_Node, 0), *cur = head;
    for (int i = 1; i < n; i++) {
        tl_node *next = tl_new(h, &tl_Node, i);
        tl_set_steal(cur, 0, next);
        cur = next;
    }
    *tail = cur;
    return head;
}

/* A long chain and no budget: the walk gives up and says so. */
static void test_analyze_path_budget(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    tl_node *cur, *head = make_chain(h, 20000, &cur);
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

/* ---- retained size and the dominator tree ---- */

typedef struct {
    size_t ntypes, ndominated;
    const rcgc_type *types[8];
    rcgc__tally by_type[8];
    const void *dominated[64];
    rcgc__tally dominated_n[64];
    size_t stop_after; /* dominated returns 1 after this many (0: never) */
} retained_rec;

static int rec_type(const rcgc_type *t, const rcgc__tally *n, void *arg)
{
    retained_rec *r = arg;
    assert_true(r->ntypes < 8);
    r->types[r->ntypes] = t;
    r->by_type[r->ntypes++] = *n;
    return 0;
}

static int rec_dominated(const void *obj, const rcgc__tally *n, void *arg)
{
    retained_rec *r = arg;
    if (r->ndominated < 64) {
        r->dominated[r->ndominated] = obj;
        r->dominated_n[r->ndominated] = *n;
    }
    r->ndominated++;
    return r->stop_after != 0 && r->ndominated >= r->stop_after;
}

static rcgc__retained_info retained_of(rcgc_heap *h, const void *target, const char *type,
                                       retained_rec *rec)
{
    rcgc__retained_info info;
    memset(rec, 0, sizeof *rec);
    assert_int_equal(
        rcgc__retained(h, target, type, 10000000000u, rec_type, rec_dominated, rec, &info), 0);
    return info;
}

static size_t dominated_index(const retained_rec *r, const void *obj)
{
    for (size_t i = 0; i < r->ndominated && i < 64; i++)
        if (r->dominated[i] == obj)
            return i;
    fail_msg("%p is not among the dominated", obj);
    return 0;
}

/* root -> a; a -> b, c, e(Leaf); b -> d; c -> d (a diamond); root -> x -> s; a -> s. */
static void test_analyze_retained_shapes(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    rcgc_disable(h);
    tl_node *root = tl_new(h, &tl_Node, 0);
    tl_node *a = tl_new(h, &tl_Node, 1), *b = tl_new(h, &tl_Node, 2);
    tl_node *c = tl_new(h, &tl_Node, 3), *d = tl_new(h, &tl_Node, 4);
    tl_node *e = tl_new(h, &tl_Leaf, 5), *x = tl_new(h, &tl_Node, 6);
    tl_node *s = tl_new(h, &tl_Node, 7);
    tl_set_steal(root, 0, a);
    tl_set_steal(a, 0, b);
    tl_set_steal(a, 1, c);
    tl_set_steal(a, 2, e);
    tl_set_steal(b, 0, d);
    tl_set(c, 0, d);
    tl_set_steal(root, 1, x);
    tl_set_steal(x, 0, s);
    tl_set(a, 3, s);
    size_t node = tl_Node.size + sizeof(rcgc_head), leaf = tl_Leaf.size + sizeof(rcgc_head);

    retained_rec r;
    rcgc__retained_info info = retained_of(h, a, NULL, &r);
    assert_true(info.complete);
    assert_int_equal(info.target.objects, 1);
    assert_int_equal(info.target.bytes, node);
    assert_int_equal(info.retained.objects, 5); /* a b c d e; s is shared with x */
    assert_int_equal(info.retained.bytes, 4 * node + leaf);
    assert_int_equal(r.ntypes, 2);
    for (size_t i = 0; i < r.ntypes; i++)
        assert_int_equal(r.by_type[i].objects, r.types[i] == &tl_Node ? 4 : 1);
    assert_int_equal(info.dominated, 4); /* b, c, d (two ways in) and e */
    assert_int_equal(r.ndominated, 4);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(r.dominated_n[i].objects, 1);
    (void)dominated_index(&r, b);
    (void)dominated_index(&r, c);
    (void)dominated_index(&r, d);
    (void)dominated_index(&r, e);
    for (size_t i = 1; i < 4; i++) /* most bytes first */
        assert_true(r.dominated_n[i - 1].bytes >= r.dominated_n[i].bytes);

    /* The root retains everything; its children are a and x; x retains s only with a... */
    info = retained_of(h, root, NULL, &r);
    assert_int_equal(info.retained.objects, 8);
    assert_int_equal(info.dominated, 3); /* a, x, and s (reached both ways) */
    assert_int_equal(r.dominated_n[dominated_index(&r, a)].objects, 5);
    assert_int_equal(r.dominated_n[dominated_index(&r, x)].objects, 1);
    assert_int_equal(r.dominated_n[dominated_index(&r, s)].objects, 1);

    /* A leaf of the tree retains itself; the shared s retains itself. */
    info = retained_of(h, b, NULL, &r);
    assert_int_equal(info.retained.objects, 1);
    assert_int_equal(info.dominated, 0);
    info = retained_of(h, s, NULL, &r);
    assert_int_equal(info.retained.objects, 1);

    /* A cycle below a: b <-> c now; d still hangs off both. */
    tl_set(b, 1, c);
    tl_set(c, 1, b);
    info = retained_of(h, b, NULL, &r);
    assert_int_equal(info.retained.objects, 1); /* c reaches d, a reaches c */
    info = retained_of(h, a, NULL, &r);
    assert_int_equal(info.retained.objects, 5);

    /* A type: every Node taken together retains the Nodes and the Leaf (the whole heap).
     * Each Node is a child of the type (it is reached directly); what one of them
     * retains is what it alone leads to: a keeps e, the others only themselves. */
    info = retained_of(h, NULL, "Node", &r);
    assert_true(info.complete);
    assert_int_equal(info.target.objects, 7);
    assert_int_equal(info.retained.objects, 8);
    assert_int_equal(info.dominated, 7);
    assert_ptr_equal(r.dominated[0], a); /* most bytes first */
    assert_int_equal(r.dominated_n[0].objects, 2);
    assert_int_equal(r.dominated_n[dominated_index(&r, root)].objects, 1);
    info = retained_of(h, NULL, "Leaf", &r);
    assert_int_equal(info.retained.objects, 1);
    assert_int_equal(info.dominated, 1);
    info = retained_of(h, NULL, "NoSuchType", &r);
    assert_true(info.complete);
    assert_int_equal(info.target.objects, 0);
    assert_int_equal(info.retained.objects, 0);
    assert_int_equal(info.dominated, 0);

    /* dominated may stop early; the count is still the total. */
    memset(&r, 0, sizeof r);
    r.stop_after = 1;
    assert_int_equal(rcgc__retained(h, a, NULL, 10000000000u, NULL, rec_dominated, &r, &info),
                     0);
    assert_int_equal(r.ndominated, 1);
    assert_int_equal(info.dominated, 4);

    /* No budget: the answer says so and bounds the retained set from above. */
    memset(&r, 0, sizeof r);
    assert_int_equal(rcgc__retained(h, s, NULL, 0, rec_type, rec_dominated, &r, &info), 0);
    if (!info.complete) {
        assert_true(info.retained.objects >= 1);
        assert_int_equal(r.ndominated, 0);
    }
    rcgc_decref(root);
    assert_int_equal(rcgc_collect(h, 2), 3); /* the b <-> c cycle and d */
    tl_check(h);
    tl_heap_free(h);
}

/* A long chain, no budget: incomplete, an upper bound, no dominators. */
static void test_analyze_retained_budget(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    tl_node *cur, *head = make_chain(h, 20000, &cur);
    tl_set(cur, 0, head); /* a cycle through the root */
    retained_rec r = {0};
    rcgc__retained_info info;
    assert_int_equal(rcgc__retained(h, cur, NULL, 0, rec_type, rec_dominated, &r, &info), 0);
    assert_false(info.complete);
    assert_int_equal(r.ndominated, 0);
    assert_true(info.retained.objects >= 1 && info.retained.objects <= 20000);
    info = retained_of(h, cur, NULL, &r);
    assert_true(info.complete);
    assert_int_equal(info.retained.objects, 1); /* the root holds everything else */
    info = retained_of(h, head, NULL, &r);
    assert_int_equal(info.retained.objects, 20000);
    assert_int_equal(info.dominated, 1);
    assert_int_equal(r.dominated_n[0].objects, 19999);
    tl_unset(cur, 0);
    rcgc_decref(head);
    tl_check(h);
    tl_heap_free(h);
}

/* Random graphs against brute force: the retained set from its definition (what the
 * target reaches minus what the roots reach without it) and the dominator tree from
 * reachability with one node removed. Node and FinNode objects, some held from C. */
#define RG_N 28

typedef struct {
    int n;
    int adj[RG_N][TL_SLOTS]; /* -1: empty */
    bool root[RG_N];
} rgraph;

/* Marks what `from` reaches (from[i] true: start) without entering blocked nodes. */
static void rg_reach(const rgraph *g, const bool *from, const bool *blocked, bool *out)
{
    int stack[RG_N * TL_SLOTS + RG_N], sp = 0;
    memset(out, 0, RG_N * sizeof *out);
    for (int i = 0; i < g->n; i++)
        if (from[i] && !blocked[i]) {
            out[i] = true;
            stack[sp++] = i;
        }
    while (sp > 0) {
        int v = stack[--sp];
        for (int k = 0; k < TL_SLOTS; k++) {
            int w = g->adj[v][k];
            if (w >= 0 && !out[w] && !blocked[w]) {
                out[w] = true;
                stack[sp++] = w;
            }
        }
    }
}

/* The retained set of the nodes in `target` (a set), brute force. */
static void rg_retained(const rgraph *g, const bool *target, bool *ret)
{
    bool none[RG_N] = {0}, from_target[RG_N], from_roots[RG_N];
    rg_reach(g, target, none, from_target);
    rg_reach(g, g->root, target, from_roots);
    for (int i = 0; i < g->n; i++)
        ret[i] = from_target[i] && !from_roots[i];
}

/* In the graph of R under an entry whose children are the targets: does y dominate x?
 * (x unreachable from the entry once y is removed.) */
static bool rg_dominates(const rgraph *g, const bool *target, const bool *ret, int y, int x)
{
    bool blocked[RG_N], start[RG_N], seen[RG_N];
    for (int i = 0; i < g->n; i++) {
        blocked[i] = !ret[i] || i == y;
        start[i] = target[i];
    }
    rg_reach(g, start, blocked, seen);
    return !seen[x];
}

static void rg_check(rcgc_heap *h, const rgraph *g, tl_node **obj, const bool *target,
                     const void *target_obj, const char *type)
{
    bool ret[RG_N];
    rg_retained(g, target, ret);
    size_t nret = 0;
    for (int i = 0; i < g->n; i++)
        nret += ret[i];
    retained_rec r;
    rcgc__retained_info info = retained_of(h, target_obj, type, &r);
    assert_true(info.complete);
    assert_int_equal(info.retained.objects, nret);
    /* The entry's children (a type) or the target's (an object): the nodes of R that
     * nothing else of R dominates, the target aside. */
    size_t nchildren = 0;
    for (int x = 0; x < g->n; x++) {
        if (!ret[x] || (target_obj != NULL && target[x]))
            continue;
        bool child = true;
        for (int y = 0; y < g->n && child; y++)
            if (ret[y] && y != x && !(target_obj != NULL && target[y]) &&
                rg_dominates(g, target, ret, y, x))
                child = false;
        if (!child)
            continue;
        nchildren++;
        /* What the child retains: the nodes of R it dominates, itself included. */
        size_t sub = 0;
        for (int z = 0; z < g->n; z++)
            sub += ret[z] && (z == x || rg_dominates(g, target, ret, x, z));
        size_t k = dominated_index(&r, obj[x]);
        assert_int_equal(r.dominated_n[k].objects, sub);
    }
    assert_int_equal(info.dominated, nchildren);
}

static void test_analyze_retained_random(void **state)
{
    (void)state;
    for (unsigned seed = 1; seed <= 60; seed++) {
        srand(seed);
        rgraph g = {.n = RG_N};
        int indeg[RG_N] = {0};
        for (int i = 0; i < g.n; i++)
            for (int k = 0; k < TL_SLOTS; k++) {
                g.adj[i][k] = rand() % 100 < 35 ? rand() % g.n : -1;
                if (g.adj[i][k] >= 0)
                    indeg[g.adj[i][k]]++;
            }
        rcgc_heap *h = tl_heap_new();
        rcgc_disable(h);
        tl_node *obj[RG_N];
        for (int i = 0; i < g.n; i++) {
            obj[i] = tl_new(h, rand() % 3 == 0 ? &tl_FinNode : &tl_Node, i);
            g.root[i] = indeg[i] == 0 || rand() % 100 < 12;
        }
        for (int i = 0; i < g.n; i++)
            for (int k = 0; k < TL_SLOTS; k++)
                if (g.adj[i][k] >= 0)
                    tl_set(obj[i], k, obj[g.adj[i][k]]);
        for (int i = 0; i < g.n; i++)
            if (!g.root[i])
                rcgc_decref(obj[i]); /* held through the graph (or a garbage cycle) */
        for (int t = 0; t < g.n; t++) {
            bool target[RG_N] = {0};
            target[t] = true;
            rg_check(h, &g, obj, target, obj[t], NULL);
        }
        bool fin[RG_N];
        for (int i = 0; i < g.n; i++)
            fin[i] = rcgc_type_of(obj[i]) == &tl_FinNode;
        rg_check(h, &g, obj, fin, NULL, "FinNode");
        for (int i = 0; i < g.n; i++)
            if (g.root[i])
                rcgc_decref(obj[i]);
        (void)rcgc_collect(h, 2);
        tl_check(h);
        tl_heap_free(h);
    }
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
        cmocka_unit_test(test_analyze_retained_shapes),
        cmocka_unit_test(test_analyze_retained_budget),
        cmocka_unit_test(test_analyze_retained_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
