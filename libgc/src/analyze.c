/* analyze.c: the heap analyses the inspector runs at a safepoint (rcgc/snapshot.h):
 * checking that an id names a live object, one object's facts, its refcount explained
 * (references from the heap versus from outside: the C code holding it), and the
 * shortest path to it from an object held from outside.
 *
 * They run on the owner thread (or on the inspector's while the heap is released), read
 * the heap and never change it: per-object results live in side arrays indexed by
 * (list, slot), never in the headers. The analyses that index by slot first put GEN2's
 * resident objects back into its array (rcgc__gen2_materialize: a change of layout, not
 * of the heap); the others visit the residents where they are. Every loop over the heap
 * is O(objects) and checks its time budget as it goes. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- ids ---- */

bool rcgc__object_valid(rcgc_heap *h, const void *p)
{
    if (h == NULL || p == NULL || ((uintptr_t)p & 15u) != 0)
        return false;
    /* Compare against the lists; never read through p before it is found. */
    for (unsigned id = 0; id < RCGC__NLISTS; id++) {
        const rcgc__olist *l = &h->lists[id];
        for (uint32_t i = 0; i < l->len; i++)
            if (l->items[i] == p)
                return true;
    }
    return rcgc__is_resident(h, p); /* reads only pool blocks of h that are in use */
}

static const char *list_name(unsigned list)
{
    static const char *const names[] = {
        "0", "1", "2", "frozen", "work", "uncollectable", "untracked", "none"};
    return names[list & RCGC__LIST_MASK];
}

void rcgc__object_describe(const void *obj, rcgc__object_info *out)
{
    const rcgc__site *s = rcgc__site_of(obj);
    unsigned list = rcgc__list_of(obj);
    out->type = s->type;
    out->bytes = rcgc__object_bytes(obj);
    out->refcount = rcgc__head(obj)->rcgc__refcnt;
    out->generation = list <= RCGC__L_GEN2 ? (int)list : -1;
    out->where = list_name(list);
    out->tracked = rcgc__is_tracked_list(list);
    out->finalized = rcgc_is_finalized(obj);
    out->file = s->file;
    out->line = s->line;
    out->weakrefs = rcgc_weakref_count(obj);
}

/* ---- references from inside the heap ---- */

typedef struct {
    rcgc_heap *h;
    uint32_t *refs[RCGC__NLISTS]; /* references from objects of the heap, per slot */
} refcounts;

static int visit_count(void *child, void *arg)
{
    refcounts *rc = arg;
    if (child == NULL)
        return 0;
    unsigned list = rcgc__list_of(child);
    uint32_t slot = rcgc__head(child)->rcgc__slot;
    if (list < RCGC__NLISTS && rc->refs[list] != NULL && slot < rc->h->lists[list].len &&
        rc->h->lists[list].items[slot] == child && rc->refs[list][slot] < UINT32_MAX)
        rc->refs[list][slot]++;
    return 0;
}

static void refcounts_free(refcounts *rc)
{
    for (unsigned id = 0; id < RCGC__NLISTS; id++)
        free(rc->refs[id]);
}

/* Counts, for every listed object, the references that objects with traverse hold to
 * it (tracked or not). Returns 0 or RCGC_ENOMEM. */
static int refcounts_compute(rcgc_heap *h, refcounts *rc)
{
    memset(rc, 0, sizeof *rc);
    rc->h = h;
    for (unsigned id = 0; id < RCGC__NLISTS; id++) {
        size_t n = h->lists[id].len;
        if (n == 0)
            continue;
        rc->refs[id] = calloc(n, sizeof(uint32_t));
        if (rc->refs[id] == NULL) {
            refcounts_free(rc);
            return RCGC_ENOMEM;
        }
    }
    for (unsigned id = 0; id < RCGC__NLISTS; id++) {
        const rcgc__olist *l = &h->lists[id];
        for (uint32_t i = 0; i < l->len; i++) {
            void *obj = l->items[i];
            if (obj != NULL && rcgc__type(obj)->traverse != NULL)
                rcgc__type(obj)->traverse(obj, visit_count, rc);
        }
    }
    return 0;
}

typedef struct {
    const void *target;
    size_t n;
} count_ctx;

static int visit_count_target(void *child, void *arg)
{
    count_ctx *c = arg;
    if (child == c->target)
        c->n++;
    return 0;
}

static int count_in(void *obj, void *arg)
{
    if (rcgc__type(obj)->traverse != NULL)
        rcgc__type(obj)->traverse(obj, visit_count_target, arg);
    return 0;
}

size_t rcgc__refs_from_heap(rcgc_heap *h, const void *target)
{
    count_ctx c = {target, 0};
    (void)rcgc__objects_foreach(h, count_in, &c);
    return c.n;
}

/* ---- breadth first from the roots: the objects held from outside the heap ---- */

typedef struct {
    rcgc_heap *h;
    void **queue; /* breadth-first order; parent[] (when kept) says where each came from */
    size_t qlen, qcap;
    void **parent[RCGC__NLISTS];
    unsigned char *seen[RCGC__NLISTS];
    const void *target; /* the search stops when it is pushed; NULL: never */
    int err;
} bfs;

static void bfs_free(bfs *b)
{
    for (unsigned id = 0; id < RCGC__NLISTS; id++) {
        free(b->seen[id]);
        free(b->parent[id]);
    }
    free(b->queue);
}

/* Allocates the side arrays (parents only when with_parents). Returns: 0 or RCGC_ENOMEM
 * (free b with bfs_free either way). */
static int bfs_init(bfs *b, rcgc_heap *h, const void *target, bool with_parents)
{
    memset(b, 0, sizeof *b);
    b->h = h;
    b->target = target;
    if (rcgc__gen2_materialize(h) != 0)
        return RCGC_ENOMEM;
    for (unsigned id = 0; id < RCGC__NLISTS; id++) {
        size_t n = h->lists[id].len;
        if (n == 0)
            continue;
        b->seen[id] = calloc(n, 1);
        if (b->seen[id] == NULL)
            return RCGC_ENOMEM;
        if (with_parents && (b->parent[id] = calloc(n, sizeof(void *))) == NULL)
            return RCGC_ENOMEM;
    }
    return 0;
}

static unsigned char *seen_at(bfs *b, const void *obj, uint32_t *slot_out)
{
    unsigned list = rcgc__list_of(obj);
    uint32_t slot = rcgc__head(obj)->rcgc__slot;
    if (list >= RCGC__NLISTS || b->seen[list] == NULL || slot >= b->h->lists[list].len ||
        b->h->lists[list].items[slot] != obj)
        return NULL;
    *slot_out = slot;
    return &b->seen[list][slot];
}

/* Queues obj unless seen. Returns: whether obj is the target. */
static bool bfs_push(bfs *b, void *obj, void *from)
{
    uint32_t slot;
    unsigned char *seen = seen_at(b, obj, &slot);
    if (seen == NULL || *seen)
        return false;
    if (b->qlen == b->qcap) {
        size_t ncap = b->qcap ? b->qcap * 2 : 1024;
        void **q = realloc(b->queue, ncap * sizeof *q);
        if (q == NULL) {
            b->err = RCGC_ENOMEM;
            return false;
        }
        b->queue = q;
        b->qcap = ncap;
    }
    *seen = 1;
    if (b->parent[rcgc__list_of(obj)] != NULL)
        b->parent[rcgc__list_of(obj)][slot] = from;
    b->queue[b->qlen++] = obj;
    return obj != NULL && obj == b->target;
}

typedef struct {
    bfs *b;
    void *from;
    bool found;
} bfs_visit;

static int visit_bfs(void *child, void *arg)
{
    bfs_visit *v = arg;
    if (child != NULL && bfs_push(v->b, child, v->from)) {
        v->found = true;
        return 1;
    }
    return v->b->err != 0;
}

/* Searches breadth first from every root (an object whose refcount exceeds the heap's
 * references to it; objects already marked seen are skipped) until the target is found,
 * everything reachable is seen, or budget_ns since t0 is spent.
 * Returns: RCGC__PATH_FOUND, _NONE or _BUDGET, or RCGC_ENOMEM (negative). */
static int bfs_from_roots(bfs *b, uint64_t t0, uint64_t budget_ns)
{
    rcgc_heap *h = b->h;
    refcounts rc;
    if (refcounts_compute(h, &rc) != 0)
        return RCGC_ENOMEM;
    bool found = false;
    for (unsigned id = 0; id < RCGC__NLISTS && !found; id++) {
        const rcgc__olist *l = &h->lists[id];
        for (uint32_t i = 0; i < l->len && !found; i++) {
            void *obj = l->items[i];
            if (obj != NULL && rcgc__head(obj)->rcgc__refcnt > rc.refs[id][i])
                found = bfs_push(b, obj, NULL);
        }
    }
    refcounts_free(&rc);
    size_t q = 0;
    for (; b->err == 0 && !found && q < b->qlen; q++) {
        if ((q & 4095u) == 0 && rcgc__now_ns() - t0 > budget_ns)
            break;
        void *obj = b->queue[q];
        if (rcgc__type(obj)->traverse == NULL)
            continue;
        bfs_visit v = {b, obj, false};
        rcgc__type(obj)->traverse(obj, visit_bfs, &v);
        found = v.found;
    }
    if (b->err != 0)
        return b->err;
    return found ? RCGC__PATH_FOUND : q == b->qlen ? RCGC__PATH_NONE : RCGC__PATH_BUDGET;
}

/* ---- the shortest path from an externally held object ---- */

static const void *parent_of(bfs *b, const void *obj)
{
    uint32_t slot = 0; /* every object on the path was seen: seen_at finds it */
    (void)seen_at(b, obj, &slot);
    return b->parent[rcgc__list_of(obj)][slot];
}

int rcgc__path_from_root(rcgc_heap *h, const void *target, uint64_t budget_ns,
                         int (*step)(const void *obj, void *arg), void *arg, int *outcome)
{
    uint64_t t0 = rcgc__now_ns();
    *outcome = RCGC__PATH_BUDGET;
    bfs b;
    int r = bfs_init(&b, h, target, true);
    if (r == 0) {
        r = bfs_from_roots(&b, t0, budget_ns);
        if (r >= 0) {
            *outcome = r;
            r = 0;
        }
    }
    if (r == 0 && *outcome == RCGC__PATH_FOUND) {
        /* Walk the parents back from the target, then report root first. */
        size_t len = 0;
        for (const void *p = target; p != NULL; p = parent_of(&b, p))
            len++;
        const void **path = malloc(len * sizeof *path);
        if (path == NULL) {
            r = RCGC_ENOMEM;
        } else {
            size_t k = len;
            for (const void *p = target; p != NULL; p = parent_of(&b, p))
                path[--k] = p;
            for (size_t i = 0; i < len && r == 0; i++)
                r = step(path[i], arg);
            free(path);
        }
    }
    bfs_free(&b);
    return r;
}

/* ---- the garbage list grouped by strongly connected component ---- */

typedef struct {
    rcgc_heap *h;
    uint32_t *index[RCGC__NLISTS]; /* node number + 1 per (list, slot); 0: not a node */
    void **nodes;
    size_t n, cap, max;
    uint32_t *edges; /* CSR: the children of node i are edges[first[i] .. first[i+1]) */
    size_t nedges, edges_cap;
    int err;
    bool capped; /* an object was left out: the cap was reached */
} graph;

static uint32_t *node_slot(graph *g, const void *obj)
{
    unsigned list = rcgc__list_of(obj);
    uint32_t slot = rcgc__head(obj)->rcgc__slot;
    if (list >= RCGC__NLISTS || g->index[list] == NULL || slot >= g->h->lists[list].len ||
        g->h->lists[list].items[slot] != obj)
        return NULL;
    return &g->index[list][slot];
}

/* Adds obj as a node (once); false when it is not a listed object or the cap is hit. */
static void node_add(graph *g, void *obj)
{
    uint32_t *ix = node_slot(g, obj);
    if (ix == NULL || *ix != 0)
        return;
    if (g->n >= g->max) {
        g->capped = true;
        return;
    }
    if (g->n == g->cap) {
        size_t ncap = g->cap ? g->cap * 2 : 256;
        void **p = realloc(g->nodes, ncap * sizeof *p);
        if (p == NULL) {
            g->err = RCGC_ENOMEM;
            return;
        }
        g->nodes = p;
        g->cap = ncap;
    }
    g->nodes[g->n++] = obj;
    *ix = (uint32_t)g->n;
}

static int visit_add_node(void *child, void *arg)
{
    if (child != NULL)
        node_add(arg, child);
    return 0;
}

static int visit_add_edge(void *child, void *arg)
{
    graph *g = arg;
    uint32_t *ix = child != NULL ? node_slot(g, child) : NULL;
    if (ix == NULL || *ix == 0)
        return 0;
    if (g->nedges == g->edges_cap) {
        size_t ncap = g->edges_cap ? g->edges_cap * 2 : 1024;
        uint32_t *p = realloc(g->edges, ncap * sizeof *p);
        if (p == NULL) {
            g->err = RCGC_ENOMEM;
            return 1;
        }
        g->edges = p;
        g->edges_cap = ncap;
    }
    g->edges[g->nedges++] = *ix - 1;
    return 0;
}

int rcgc__garbage_groups(rcgc_heap *h, size_t max_objects,
                         int (*group)(void *const *members, size_t n, void *arg), void *arg,
                         bool *truncated)
{
    graph g = {.h = h, .max = max_objects};
    *truncated = false;
    int r = rcgc__gen2_materialize(h);
    for (unsigned id = 0; id < RCGC__NLISTS && r == 0; id++)
        if (h->lists[id].len > 0 && (g.index[id] = calloc(h->lists[id].len, 4)) == NULL)
            r = RCGC_ENOMEM;
    /* Nodes: the garbage list and everything it reaches, breadth first, up to the cap. */
    for (size_t i = 0; r == 0 && i < h->garbage_len; i++)
        node_add(&g, h->garbage[i]);
    for (size_t i = 0; r == 0 && g.err == 0 && i < g.n; i++)
        if (rcgc__type(g.nodes[i])->traverse != NULL)
            rcgc__type(g.nodes[i])->traverse(g.nodes[i], visit_add_node, &g);
    *truncated = g.capped;
    size_t *first = NULL;
    uint32_t *num = NULL, *low = NULL, *stack = NULL, *path = NULL, *next = NULL;
    bool *on = NULL;
    if (r == 0 && g.err == 0) {
        first = malloc((g.n + 1) * sizeof *first);
        num = calloc(g.n + 1, sizeof *num);
        low = calloc(g.n + 1, sizeof *low);
        stack = malloc((g.n + 1) * sizeof *stack);
        path = malloc((g.n + 1) * sizeof *path);
        next = calloc(g.n + 1, sizeof *next);
        on = calloc(g.n + 1, sizeof *on);
        if (!first || !num || !low || !stack || !path || !next || !on)
            r = RCGC_ENOMEM;
    }
    /* Edges between nodes, in CSR form. */
    for (size_t i = 0; r == 0 && g.err == 0 && i < g.n; i++) {
        first[i] = g.nedges;
        if (rcgc__type(g.nodes[i])->traverse != NULL)
            rcgc__type(g.nodes[i])->traverse(g.nodes[i], visit_add_edge, &g);
    }
    if (r == 0)
        r = g.err;
    void **members = NULL;
    if (r == 0) {
        first[g.n] = g.nedges;
        members = malloc((g.n + 1) * sizeof *members);
        if (members == NULL)
            r = RCGC_ENOMEM;
    }
    /* Tarjan's algorithm without recursion: path[] is the DFS path, next[v] the next
     * edge of v to follow, stack[] the SCC stack. */
    uint32_t counter = 0;
    size_t sp = 0;
    for (size_t root = 0; r == 0 && root < g.n; root++) {
        if (num[root] != 0)
            continue;
        size_t depth = 0;
        path[depth++] = (uint32_t)root;
        num[root] = low[root] = ++counter;
        stack[sp++] = (uint32_t)root;
        on[root] = true;
        next[root] = 0;
        while (depth > 0 && r == 0) {
            uint32_t v = path[depth - 1];
            size_t e = first[v] + next[v];
            if (e < first[v + 1]) {
                next[v]++;
                uint32_t w = g.edges[e];
                if (num[w] == 0) {
                    num[w] = low[w] = ++counter;
                    stack[sp++] = w;
                    on[w] = true;
                    next[w] = 0;
                    path[depth++] = w;
                } else if (on[w] && num[w] < low[v]) {
                    low[v] = num[w];
                }
                continue;
            }
            depth--;
            if (depth > 0 && low[v] < low[path[depth - 1]])
                low[path[depth - 1]] = low[v];
            if (low[v] == num[v]) {
                size_t k = 0;
                uint32_t w;
                do {
                    w = stack[--sp];
                    on[w] = false;
                    members[k++] = g.nodes[w];
                } while (w != v);
                r = group(members, k, arg);
            }
        }
    }
    free(members);
    free(first);
    free(num);
    free(low);
    free(stack);
    free(path);
    free(next);
    free(on);
    free(g.nodes);
    free(g.edges);
    for (unsigned id = 0; id < RCGC__NLISTS; id++)
        free(g.index[id]);
    return r;
}

/* ---- referrers in every list ---- */

typedef struct {
    const void *target;
    bool found;
} holds_ctx;

static int visit_holds(void *child, void *arg)
{
    holds_ctx *c = arg;
    if (child == c->target) {
        c->found = true;
        return 1;
    }
    return 0;
}

/* Every list, in the order the analyses report: generations, frozen, untracked, the
 * garbage list's objects, a collection's work list. */
static const unsigned list_order[] = {RCGC__L_GEN0, RCGC__L_GEN1,      RCGC__L_GEN2,
                                      RCGC__L_PERM, RCGC__L_UNTRACKED, RCGC__L_LEGACY,
                                      RCGC__L_WORK};
#define NORDER (sizeof list_order / sizeof list_order[0])

int rcgc__objects_foreach(rcgc_heap *h, int (*fn)(void *obj, void *arg), void *arg)
{
    for (size_t k = 0; k < NORDER; k++) {
        const rcgc__olist *l = &h->lists[list_order[k]];
        for (uint32_t i = 0; i < l->len; i++) {
            int r = l->items[i] != NULL ? fn(l->items[i], arg) : 0;
            if (r != 0)
                return r;
        }
        if (list_order[k] == RCGC__L_GEN2) {
            int r = rcgc__residents_each(h, fn, arg);
            if (r != 0)
                return r;
        }
    }
    return 0;
}

typedef struct {
    const void *target;
    int (*fn)(void *obj, void *arg);
    void *arg;
} referrers_ctx;

static int referrer_check(void *obj, void *arg)
{
    referrers_ctx *rc = arg;
    if (rcgc__type(obj)->traverse == NULL)
        return 0;
    holds_ctx c = {rc->target, false};
    rcgc__type(obj)->traverse(obj, visit_holds, &c);
    return c.found ? rc->fn(obj, rc->arg) : 0;
}

int rcgc__referrers(rcgc_heap *h, const void *target, int (*fn)(void *obj, void *arg),
                    void *arg)
{
    referrers_ctx rc = {target, fn, arg};
    return rcgc__objects_foreach(h, referrer_check, &rc);
}

/* ---- retained size and the dominator tree ----
 *
 * 1. A: the target objects (nodes 0 .. ntarget-1) and everything they reach.
 * 2. Breadth first from the roots with the targets marked seen beforehand: whatever is
 *    reached without passing through a target stays alive without it.
 * 3. R: the nodes of A not reached, targets included: the retained set. Every path from
 *    a target to an object of R after its last target stays inside R, so the dominator
 *    tree of R under a virtual entry (whose children are the targets) is the heap's
 *    dominator tree restricted to R.
 * 4. Lengauer–Tarjan (path compression, iterative) on R in depth-first preorder; each
 *    node's retained tally is its subtree's, summed in reverse preorder. */

#define NONE UINT32_MAX

/* Per-type tallies of the retained set, keyed by type in an open-addressed table. */
typedef struct {
    const rcgc_type *type;
    rcgc__tally n;
} type_tally;

typedef struct {
    type_tally *slots;
    size_t cap, len;
} type_table;

static int type_table_add(type_table *t, const rcgc_type *type, size_t bytes)
{
    if (2 * (t->len + 1) > t->cap) {
        size_t ncap = t->cap ? 2 * t->cap : 64;
        type_tally *ns = calloc(ncap, sizeof *ns);
        if (ns == NULL)
            return RCGC_ENOMEM;
        for (size_t i = 0; i < t->cap; i++) {
            if (t->slots[i].type == NULL)
                continue;
            size_t k = ((uintptr_t)t->slots[i].type >> 4) & (ncap - 1);
            while (ns[k].type != NULL)
                k = (k + 1) & (ncap - 1);
            ns[k] = t->slots[i];
        }
        free(t->slots);
        t->slots = ns;
        t->cap = ncap;
    }
    size_t k = ((uintptr_t)type >> 4) & (t->cap - 1);
    while (t->slots[k].type != NULL && t->slots[k].type != type)
        k = (k + 1) & (t->cap - 1);
    if (t->slots[k].type == NULL) {
        t->slots[k].type = type;
        t->len++;
    }
    t->slots[k].n.objects++;
    t->slots[k].n.bytes += bytes;
    return 0;
}

typedef struct {
    graph g; /* A */
    size_t ntarget;
    uint32_t *rix; /* A node -> R node (0 is the virtual entry), NONE: not retained */
    void **robj;   /* R node -> object (robj[0] NULL) */
    uint32_t nr;
    uint32_t *first, *succ; /* successors of R nodes, CSR */
    size_t nsucc, succ_cap;
    int err;
} retain;

static int visit_retain_edge(void *child, void *arg)
{
    retain *rt = arg;
    uint32_t *ix = child != NULL ? node_slot(&rt->g, child) : NULL;
    if (ix == NULL || *ix == 0 || rt->rix[*ix - 1] == NONE)
        return 0;
    if (rt->nsucc == rt->succ_cap) {
        size_t ncap = rt->succ_cap ? rt->succ_cap * 2 : 1024;
        uint32_t *p = realloc(rt->succ, ncap * sizeof *p);
        if (p == NULL) {
            rt->err = RCGC_ENOMEM;
            return 1;
        }
        rt->succ = p;
        rt->succ_cap = ncap;
    }
    rt->succ[rt->nsucc++] = rt->rix[*ix - 1];
    return 0;
}

/* Lengauer–Tarjan's arrays: pre[] / next[] by R node, the rest by preorder number. */
typedef struct {
    uint32_t *pre, *order, *parent, *semi, *idom, *ancestor, *label, *bucket, *bnext, *stack,
        *pfirst, *pred;
    size_t *next;
} domtree;

static void domtree_free(domtree *d)
{
    free(d->pre);
    free(d->order);
    free(d->parent);
    free(d->semi);
    free(d->idom);
    free(d->ancestor);
    free(d->label);
    free(d->bucket);
    free(d->bnext);
    free(d->stack);
    free(d->pfirst);
    free(d->pred);
    free(d->next);
}

/* The node of least semidominator on v's path in the link forest (the forest root
 * excluded), compressing the path as Lengauer and Tarjan's EVAL does, without
 * recursion. */
static uint32_t dom_eval(domtree *d, uint32_t v)
{
    if (d->ancestor[v] == NONE)
        return v;
    size_t sp = 0;
    for (uint32_t u = v; d->ancestor[d->ancestor[u]] != NONE; u = d->ancestor[u])
        d->stack[sp++] = u;
    while (sp > 0) {
        uint32_t u = d->stack[--sp], a = d->ancestor[u];
        if (d->semi[d->label[a]] < d->semi[d->label[u]])
            d->label[u] = d->label[a];
        d->ancestor[u] = d->ancestor[a];
    }
    return d->label[v];
}

/* The dominator tree of R: d->idom[] and d->order[] (preorder number -> R node); rt->nr
 * becomes the number of nodes numbered. Returns: 0, RCGC__PATH_BUDGET when the budget
 * ran out, or RCGC_ENOMEM (free d with domtree_free either way). */
static int dominators(retain *rt, domtree *d, uint64_t t0, uint64_t budget_ns)
{
    uint32_t n = rt->nr;
    d->pre = malloc(n * sizeof(uint32_t));
    d->order = malloc(n * sizeof(uint32_t));
    d->parent = malloc(n * sizeof(uint32_t));
    d->semi = malloc(n * sizeof(uint32_t));
    d->idom = malloc(n * sizeof(uint32_t));
    d->ancestor = malloc(n * sizeof(uint32_t));
    d->label = malloc(n * sizeof(uint32_t));
    d->bucket = malloc(n * sizeof(uint32_t));
    d->bnext = malloc(n * sizeof(uint32_t));
    d->stack = malloc(n * sizeof(uint32_t));
    d->pfirst = calloc((size_t)n + 1, sizeof(uint32_t));
    d->pred = malloc((rt->nsucc + 1) * sizeof(uint32_t));
    d->next = malloc(n * sizeof(size_t));
    if (!d->pre || !d->order || !d->parent || !d->semi || !d->idom || !d->ancestor ||
        !d->label || !d->bucket || !d->bnext || !d->stack || !d->pfirst || !d->pred || !d->next)
        return RCGC_ENOMEM;
    /* Depth first from the entry: preorder numbers, parents in preorder numbers. */
    for (uint32_t i = 0; i < n; i++)
        d->pre[i] = NONE;
    uint32_t count = 0;
    size_t sp = 0;
    d->pre[0] = count;
    d->order[count++] = 0;
    d->parent[0] = NONE;
    d->next[0] = rt->first[0];
    d->stack[sp++] = 0;
    for (size_t steps = 0; sp > 0; steps++) {
        if ((steps & 4095u) == 0 && rcgc__now_ns() - t0 > budget_ns)
            return RCGC__PATH_BUDGET;
        uint32_t v = d->stack[sp - 1];
        if (d->next[v] == rt->first[v + 1]) {
            sp--;
            continue;
        }
        uint32_t w = rt->succ[d->next[v]++];
        if (d->pre[w] != NONE)
            continue;
        d->pre[w] = count;
        d->order[count++] = w;
        d->parent[d->pre[w]] = d->pre[v];
        d->next[w] = rt->first[w];
        d->stack[sp++] = w;
    }
    /* Every node of R is reachable from the entry (see above); count < n would mean a
     * bug, and the nodes not numbered are left out of the tree. */
    n = count;
    /* Predecessors, in preorder numbers. */
    for (uint32_t v = 0; v < rt->nr; v++)
        if (d->pre[v] != NONE)
            for (size_t e = rt->first[v]; e < rt->first[v + 1]; e++)
                d->pfirst[d->pre[rt->succ[e]] + 1]++;
    for (uint32_t i = 0; i < n; i++)
        d->pfirst[i + 1] += d->pfirst[i];
    for (uint32_t i = 0; i < n; i++)
        d->next[i] = d->pfirst[i];
    for (uint32_t v = 0; v < rt->nr; v++)
        if (d->pre[v] != NONE)
            for (size_t e = rt->first[v]; e < rt->first[v + 1]; e++)
                d->pred[d->next[d->pre[rt->succ[e]]]++] = d->pre[v];
    for (uint32_t i = 0; i < n; i++) {
        d->semi[i] = d->label[i] = i;
        d->ancestor[i] = d->bucket[i] = NONE;
        d->idom[i] = 0;
    }
    for (uint32_t w = n - 1; w >= 1; w--) {
        if ((w & 4095u) == 0 && rcgc__now_ns() - t0 > budget_ns)
            return RCGC__PATH_BUDGET;
        uint32_t p = d->parent[w], s = p;
        for (uint32_t e = d->pfirst[w]; e < d->pfirst[w + 1]; e++) {
            uint32_t v = d->pred[e];
            uint32_t cand = v <= w ? v : d->semi[dom_eval(d, v)];
            if (cand < s)
                s = cand;
        }
        d->semi[w] = s;
        d->bnext[w] = d->bucket[s];
        d->bucket[s] = w;
        d->ancestor[w] = p; /* LINK(parent, w) */
        for (uint32_t v = d->bucket[p]; v != NONE; v = d->bnext[v]) {
            uint32_t u = dom_eval(d, v);
            d->idom[v] = d->semi[u] < d->semi[v] ? u : p;
        }
        d->bucket[p] = NONE;
    }
    for (uint32_t w = 1; w < n; w++)
        if (d->idom[w] != d->semi[w])
            d->idom[w] = d->idom[d->idom[w]];
    rt->nr = n;
    return 0;
}

typedef struct {
    uint32_t node; /* preorder number */
    rcgc__tally n;
    uintptr_t addr;
} dom_child;

static int dom_child_cmp(const void *a, const void *b)
{
    const dom_child *x = a, *y = b;
    if (x->n.bytes != y->n.bytes)
        return x->n.bytes > y->n.bytes ? -1 : 1;
    if (x->n.objects != y->n.objects)
        return x->n.objects > y->n.objects ? -1 : 1;
    return (x->addr > y->addr) - (x->addr < y->addr);
}

/* Finds the targets and what they reach (step 1). Returns: 0 or RCGC_ENOMEM. */
static int retain_reach(retain *rt, rcgc_heap *h, const void *target, const char *type_name)
{
    graph *g = &rt->g;
    if (rcgc__gen2_materialize(h) != 0)
        return RCGC_ENOMEM;
    for (unsigned id = 0; id < RCGC__NLISTS; id++)
        if (h->lists[id].len > 0 && (g->index[id] = calloc(h->lists[id].len, 4)) == NULL)
            return RCGC_ENOMEM;
    if (target != NULL) {
        node_add(g, (void *)target);
    } else {
        for (unsigned id = 0; id < RCGC__NLISTS && g->err == 0; id++) {
            const rcgc__olist *l = &h->lists[id];
            for (uint32_t i = 0; i < l->len && g->err == 0; i++)
                if (l->items[i] != NULL &&
                    strcmp(rcgc__type(l->items[i])->name, type_name) == 0)
                    node_add(g, l->items[i]);
        }
    }
    rt->ntarget = g->n;
    for (size_t i = 0; g->err == 0 && i < g->n; i++)
        if (rcgc__type(g->nodes[i])->traverse != NULL)
            rcgc__type(g->nodes[i])->traverse(g->nodes[i], visit_add_node, g);
    return g->err;
}

int rcgc__retained(rcgc_heap *h, const void *target, const char *type_name, uint64_t budget_ns,
                   int (*by_type)(const rcgc_type *t, const rcgc__tally *n, void *arg),
                   int (*dominated)(const void *obj, const rcgc__tally *n, void *arg),
                   void *arg, rcgc__retained_info *out)
{
    uint64_t t0 = rcgc__now_ns();
    memset(out, 0, sizeof *out);
    retain rt = {.g = {.h = h, .max = SIZE_MAX}};
    bfs b;
    domtree d = {0};
    type_table types = {0};
    rcgc__tally *sub = NULL;
    dom_child *children = NULL;
    int r = retain_reach(&rt, h, target, type_name);
    if (r == 0)
        r = bfs_init(&b, h, NULL, false);
    else
        memset(&b, 0, sizeof b);
    /* Step 2: mark from the roots, the targets seen beforehand. */
    int outcome = RCGC__PATH_NONE;
    if (r == 0) {
        for (size_t i = 0; i < rt.ntarget; i++) {
            uint32_t slot = 0;
            unsigned char *seen = seen_at(&b, rt.g.nodes[i], &slot);
            if (seen != NULL)
                *seen = 1;
        }
        outcome = bfs_from_roots(&b, t0, budget_ns);
        if (outcome < 0)
            r = outcome;
    }
    /* Step 3: R, numbered from 1 (0 is the entry). */
    if (r == 0 && (rt.rix = malloc((rt.g.n + 1) * sizeof(uint32_t))) == NULL)
        r = RCGC_ENOMEM;
    if (r == 0 && (rt.robj = malloc((rt.g.n + 1) * sizeof(void *))) == NULL)
        r = RCGC_ENOMEM;
    if (r == 0) {
        rt.robj[0] = NULL;
        rt.nr = 1;
        for (size_t i = 0; i < rt.g.n; i++) {
            void *obj = rt.g.nodes[i];
            uint32_t slot = 0;
            unsigned char *seen = seen_at(&b, obj, &slot);
            rt.rix[i] = NONE;
            if (i < rt.ntarget || seen == NULL || !*seen) {
                rt.rix[i] = rt.nr;
                rt.robj[rt.nr++] = obj;
                size_t bytes = rcgc__object_bytes(obj);
                out->retained.objects++;
                out->retained.bytes += bytes;
                if (i < rt.ntarget) {
                    out->target.objects++;
                    out->target.bytes += bytes;
                }
                if (r == 0)
                    r = type_table_add(&types, rcgc__type(obj), bytes);
            }
        }
    }
    bfs_free(&b);
    for (size_t i = 0; r == 0 && i < types.cap; i++)
        if (types.slots[i].type != NULL && by_type != NULL)
            r = by_type(types.slots[i].type, &types.slots[i].n, arg);
    out->complete = r == 0 && outcome != RCGC__PATH_BUDGET;
    /* Step 4: edges inside R, then the dominator tree. */
    if (r == 0 && out->complete &&
        (rt.first = malloc(((size_t)rt.nr + 1) * sizeof(uint32_t))) == NULL)
        r = RCGC_ENOMEM;
    if (r == 0 && out->complete) {
        rt.first[0] = 0;
        for (uint32_t i = 0; i < rt.ntarget && rt.err == 0; i++)
            visit_retain_edge(rt.g.nodes[i], &rt);
        for (uint32_t v = 1; v < rt.nr && rt.err == 0; v++) {
            rt.first[v] = (uint32_t)rt.nsucc;
            void *obj = rt.robj[v];
            if (rcgc__type(obj)->traverse != NULL)
                rcgc__type(obj)->traverse(obj, visit_retain_edge, &rt);
        }
        rt.first[rt.nr] = (uint32_t)rt.nsucc;
        r = rt.err;
        if (r == 0 && rt.nsucc >= UINT32_MAX)
            r = RCGC_ENOMEM;
    }
    if (r == 0 && out->complete) {
        int dr = dominators(&rt, &d, t0, budget_ns);
        if (dr == RCGC__PATH_BUDGET)
            out->complete = false;
        else
            r = dr;
    }
    if (r == 0 && out->complete) {
        /* Subtree tallies, summed in reverse preorder (a node's idom precedes it). */
        sub = calloc(rt.nr, sizeof *sub);
        children = malloc(rt.nr * sizeof *children);
        if (sub == NULL || children == NULL)
            r = RCGC_ENOMEM;
        for (uint32_t w = 1; r == 0 && w < rt.nr; w++) {
            sub[w].objects = 1;
            sub[w].bytes = rcgc__object_bytes(rt.robj[d.order[w]]);
        }
        for (uint32_t w = rt.nr - 1; r == 0 && w >= 1; w--) {
            sub[d.idom[w]].objects += sub[w].objects;
            sub[d.idom[w]].bytes += sub[w].bytes;
        }
        /* One object: its children; a type: the entry's. The target is preorder 1. */
        uint32_t parent = target != NULL ? 1 : 0;
        size_t nc = 0;
        for (uint32_t w = 1; r == 0 && w < rt.nr; w++) {
            if (d.idom[w] != parent || w == parent)
                continue;
            children[nc].node = w;
            children[nc].n = sub[w];
            children[nc].addr = (uintptr_t)rt.robj[d.order[w]];
            nc++;
        }
        out->dominated = nc;
        if (r == 0 && dominated != NULL) {
            qsort(children, nc, sizeof *children, dom_child_cmp);
            for (size_t i = 0; i < nc; i++)
                if (dominated(rt.robj[d.order[children[i].node]], &children[i].n, arg) != 0)
                    break;
        }
    }
    if (r != 0)
        out->complete = false;
    free(children);
    free(sub);
    domtree_free(&d);
    free(types.slots);
    free(rt.first);
    free(rt.succ);
    free(rt.rix);
    free(rt.robj);
    free(rt.g.nodes);
    free(rt.g.edges);
    for (unsigned id = 0; id < RCGC__NLISTS; id++)
        free(rt.g.index[id]);
    return r;
}
