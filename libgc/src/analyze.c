/* analyze.c: the heap analyses the inspector runs at a safepoint (rcgc/snapshot.h):
 * checking that an id names a live object, one object's facts, its refcount explained
 * (references from the heap versus from outside: the C code holding it), and the
 * shortest path to it from an object held from outside.
 *
 * They run on the owner thread (or on the inspector's while the heap is released), read
 * the heap and never change it: per-object results live in side arrays indexed by
 * (list, slot), never in the headers. Every loop over the heap is O(objects) and checks
 * its time budget as it goes. */
#include "internal.h"

#include <stdlib.h>

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
    return false;
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

size_t rcgc__refs_from_heap(rcgc_heap *h, const void *target)
{
    count_ctx c = {target, 0};
    for (unsigned id = 0; id < RCGC__NLISTS; id++) {
        const rcgc__olist *l = &h->lists[id];
        for (uint32_t i = 0; i < l->len; i++) {
            void *obj = l->items[i];
            if (obj != NULL && rcgc__type(obj)->traverse != NULL)
                rcgc__type(obj)->traverse(obj, visit_count_target, &c);
        }
    }
    return c.n;
}

/* ---- the shortest path from an externally held object ---- */

typedef struct {
    rcgc_heap *h;
    void **queue; /* breadth-first order; parents[] says where each came from */
    size_t qlen, qcap;
    void **parent[RCGC__NLISTS];
    unsigned char *seen[RCGC__NLISTS];
    const void *target;
    int err;
} bfs;

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
    b->parent[rcgc__list_of(obj)][slot] = from;
    b->queue[b->qlen++] = obj;
    return obj == b->target;
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

int rcgc__path_from_root(rcgc_heap *h, const void *target, uint64_t budget_ns,
                         int (*step)(const void *obj, void *arg), void *arg, int *outcome)
{
    uint64_t t0 = rcgc__now_ns();
    *outcome = RCGC__PATH_BUDGET;
    bool exhausted = false;
    refcounts rc;
    if (refcounts_compute(h, &rc) != 0)
        return RCGC_ENOMEM;
    bfs b = {.h = h, .target = target};
    int r = 0;
    for (unsigned id = 0; id < RCGC__NLISTS && r == 0; id++) {
        size_t n = h->lists[id].len;
        if (n == 0)
            continue;
        b.seen[id] = calloc(n, 1);
        b.parent[id] = calloc(n, sizeof(void *));
        if (b.seen[id] == NULL || b.parent[id] == NULL)
            r = RCGC_ENOMEM;
    }
    /* Roots: objects held from outside the heap (refcount above the heap's references).
     * The target itself counts when it is one: its path is itself. */
    bool found = false;
    for (unsigned id = 0; id < RCGC__NLISTS && r == 0 && !found; id++) {
        const rcgc__olist *l = &h->lists[id];
        for (uint32_t i = 0; i < l->len && !found; i++) {
            void *obj = l->items[i];
            if (obj != NULL && rcgc__head(obj)->rcgc__refcnt > rc.refs[id][i])
                found = bfs_push(&b, obj, NULL);
        }
    }
    refcounts_free(&rc);
    size_t q = 0;
    for (; r == 0 && b.err == 0 && !found && q < b.qlen; q++) {
        if ((q & 4095u) == 0 && rcgc__now_ns() - t0 > budget_ns)
            break;
        void *obj = b.queue[q];
        if (rcgc__type(obj)->traverse == NULL)
            continue;
        bfs_visit v = {&b, obj, false};
        rcgc__type(obj)->traverse(obj, visit_bfs, &v);
        found = v.found;
    }
    exhausted = !found && q == b.qlen;
    if (r == 0)
        r = b.err;
    if (r == 0 && exhausted)
        *outcome = RCGC__PATH_NONE;
    if (r == 0 && found) {
        /* Walk the parents back from the target, then report root first. */
        size_t len = 0;
        for (const void *p = target; p != NULL; len++) {
            uint32_t slot = 0; /* every object on the path was seen: seen_at sets it */
            (void)seen_at(&b, p, &slot);
            p = b.parent[rcgc__list_of(p)][slot];
        }
        const void **path = malloc(len * sizeof *path);
        if (path == NULL) {
            r = RCGC_ENOMEM;
        } else {
            size_t k = len;
            for (const void *p = target; p != NULL;) {
                uint32_t slot = 0;
                path[--k] = p;
                (void)seen_at(&b, p, &slot);
                p = b.parent[rcgc__list_of(p)][slot];
            }
            *outcome = RCGC__PATH_FOUND;
            for (size_t i = 0; i < len && r == 0; i++)
                r = step(path[i], arg);
            free(path);
        }
    }
    for (unsigned id = 0; id < RCGC__NLISTS; id++) {
        free(b.seen[id]);
        free(b.parent[id]);
    }
    free(b.queue);
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
    if (ix == NULL || *ix != 0 || g->n >= g->max)
        return;
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
    int r = 0;
    *truncated = false;
    for (unsigned id = 0; id < RCGC__NLISTS && r == 0; id++)
        if (h->lists[id].len > 0 && (g.index[id] = calloc(h->lists[id].len, 4)) == NULL)
            r = RCGC_ENOMEM;
    /* Nodes: the garbage list and everything it reaches, breadth first, up to the cap. */
    for (size_t i = 0; r == 0 && i < h->garbage_len; i++)
        node_add(&g, h->garbage[i]);
    for (size_t i = 0; r == 0 && g.err == 0 && i < g.n; i++)
        if (rcgc__type(g.nodes[i])->traverse != NULL)
            rcgc__type(g.nodes[i])->traverse(g.nodes[i], visit_add_node, &g);
    *truncated = g.n >= g.max;
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

int rcgc__referrers(rcgc_heap *h, const void *target, int (*fn)(void *obj, void *arg),
                    void *arg)
{
    static const unsigned order[] = {RCGC__L_GEN0, RCGC__L_GEN1,      RCGC__L_GEN2,
                                     RCGC__L_PERM, RCGC__L_UNTRACKED, RCGC__L_LEGACY,
                                     RCGC__L_WORK};
    for (size_t k = 0; k < sizeof order / sizeof order[0]; k++) {
        const rcgc__olist *l = &h->lists[order[k]];
        for (uint32_t i = 0; i < l->len; i++) {
            void *obj = l->items[i];
            if (obj == NULL || rcgc__type(obj)->traverse == NULL)
                continue;
            holds_ctx c = {target, false};
            rcgc__type(obj)->traverse(obj, visit_holds, &c);
            if (c.found) {
                int r = fn(obj, arg);
                if (r != 0)
                    return r;
            }
        }
    }
    return 0;
}
