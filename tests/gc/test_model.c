/* test_model.c: the collector against a reference model, on random programs.
 *
 * The model is plain C arrays: per object its kind, its four child slots, the references
 * the test holds (ext), its refcount, whether it was finalized, its generation; per weak
 * reference its target. Every operation is applied to both; the model predicts every
 * finalizer call, dealloc and weak-reference callback (CPython's rules: refcount deaths
 * cascade, through a trashcan of depth 50; collect(g) takes generations 0..g, finds what
 * is unreachable from outside, clears the weak references to and of it, runs all its
 * finalizers, keeps what they resurrected and frees the rest), and after every operation
 * the heap is compared with the model: events, census, refcounts, slots, weak references,
 * is_tracked / is_finalized, generations, the frozen count, the resurrection list and
 * rcgc__heap_check. The kinds: plain containers, containers whose finalizer does nothing
 * or resurrects (once, into a list the test holds), leaves with and without a finalizer,
 * weak references (with or without callback, held by the test or by containers). Some
 * seeds freeze and unfreeze, some build chains deeper than the trashcan's limit, a third
 * run with automatic collection at small thresholds: a gc callback tells the model when
 * a collection ran inside an allocation and which generation it took.
 *
 * Two things the model leaves open, because the order of deaths decides them: the
 * generation of an object resurrected on the refcount path (its own, or 0 when the
 * trashcan deferred it), and whether a weak reference that died in the same operation as
 * its target had its callback run.
 *
 * RCGC_MODEL_SEED=s runs seed s alone (a failure names its seed and last operations);
 * RCGC_MODEL_SEEDS=n and RCGC_MODEL_OPS=n set how many seeds and operations per seed run
 * (2000 x 300 by default); RCGC_MODEL_STATS=1 prints how often each rule was exercised. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <rcgc/rcgc.h>

#define NSLOT 4
#define MAX_OBJ 8192 /* ids per seed */
#define MAX_LIVE 90
#define LOG_MAX 16384
#define MAGIC_LIVE 0x4d4f444cu
#define MAGIC_DEAD 0x44454144u

/* ---- the real side: types, and what their hooks record ---- */

typedef struct mnode {
    void *slot[NSLOT];
    int id;
    unsigned magic;
} mnode;

typedef struct mleaf {
    int id;
    unsigned magic;
} mleaf;

enum { EV_FIN, EV_DEALLOC, EV_WRCB, NEV };

static struct {
    int log[LOG_MAX]; /* event codes: kind * MAX_OBJ + id */
    int nlog;
    bool overflow;
    void *res[MAX_OBJ]; /* strong references stored by resurrecting finalizers */
    int nres;
    int gc_start_gen[8]; /* generations of the collections that started in this op */
    int nstart;
    ssize_t gc_stop_collected[8];
    int nstop;
    /* weak references an explicit collection must have cleared before any callback, and
     * how many callbacks run in that phase (afterwards these references may die) */
    void *must_clear[MAX_OBJ];
    int nmust;
    int must_callbacks;
    int violations;
    char violation[256];
    int panics;
    char panic[512];
} R;

static void real_violation(const char *what, int id)
{
    if (R.violations++ == 0)
        snprintf(R.violation, sizeof R.violation, "%s (id %d)", what, id);
}

static void real_log(int kind, int id)
{
    if (R.nlog == LOG_MAX) {
        R.overflow = true;
        return;
    }
    R.log[R.nlog++] = kind * MAX_OBJ + id;
}

static int mnode_traverse(void *self, rcgc_visit_fn visit, void *arg)
{
    mnode *n = self;
    for (int i = 0; i < NSLOT; i++) {
        if (n->slot[i] != NULL) {
            int r = visit(n->slot[i], arg);
            if (r != 0)
                return r;
        }
    }
    return 0;
}

static void mnode_drop(mnode *n)
{
    for (int i = 0; i < NSLOT; i++) {
        void *old = n->slot[i];
        n->slot[i] = NULL;
        rcgc_xdecref(old);
    }
}

static void mnode_clear(void *self)
{
    mnode *n = self;
    if (n->magic != MAGIC_LIVE)
        real_violation("clear of a node that is not live", n->id);
    mnode_drop(n);
}

static void mnode_dealloc(void *self)
{
    mnode *n = self;
    if (n->magic != MAGIC_LIVE)
        real_violation("dealloc of a node that is not live", n->id);
    real_log(EV_DEALLOC, n->id);
    n->magic = MAGIC_DEAD;
    mnode_drop(n);
}

static void mnode_finalize(void *self)
{
    mnode *n = self;
    if (n->magic != MAGIC_LIVE)
        real_violation("finalize of a node that is not live", n->id);
    real_log(EV_FIN, n->id);
}

static void mnode_finalize_resurrect(void *self)
{
    mnode_finalize(self);
    rcgc_incref(self);
    R.res[R.nres++] = self;
}

static void mleaf_dealloc(void *self)
{
    mleaf *l = self;
    if (l->magic != MAGIC_LIVE)
        real_violation("dealloc of a leaf that is not live", l->id);
    real_log(EV_DEALLOC, l->id);
    l->magic = MAGIC_DEAD;
}

static void mleaf_finalize(void *self)
{
    mleaf *l = self;
    if (l->magic != MAGIC_LIVE)
        real_violation("finalize of a leaf that is not live", l->id);
    real_log(EV_FIN, l->id);
}

static void wr_callback(void *ref, void *arg)
{
    int id = (int)(intptr_t)arg;
    real_log(EV_WRCB, id);
    void *t = rcgc_weakref_get(ref);
    if (t != NULL) {
        real_violation("weak reference not cleared in its callback", id);
        rcgc_decref(t);
    }
    /* in a collection, every weak reference to or of trash is cleared before any
     * callback runs (test_bug1055820b) */
    if (R.must_callbacks == 0)
        return;
    R.must_callbacks--;
    for (int i = 0; i < R.nmust; i++) {
        t = rcgc_weakref_get(R.must_clear[i]);
        if (t != NULL) {
            real_violation("a callback sees a weak reference to trash not yet cleared", id);
            rcgc_decref(t);
        }
    }
}

static void gc_callback(rcgc_heap *h, int phase, const rcgc_collect_info *info, void *arg)
{
    (void)h;
    (void)arg;
    if (phase == RCGC_PHASE_START) {
        if (R.nstart < 8)
            R.gc_start_gen[R.nstart] = info->generation;
        R.nstart++;
    } else {
        if (R.nstop < 8)
            R.gc_stop_collected[R.nstop] = (ssize_t)info->collected;
        R.nstop++;
    }
}

static void record_panic(rcgc_heap *h, const char *message, void *arg)
{
    (void)h;
    (void)arg;
    if (R.panics++ == 0)
        snprintf(R.panic, sizeof R.panic, "%s", message);
}

/* ---- kinds ---- */

enum { K_NODE, K_FIN, K_RESFIN, K_LEAF, K_LEAFFIN, K_WEAK, NKINDS };

static const rcgc_type T_Node = {
    .name = "MNode",
    .size = sizeof(mnode),
    .traverse = mnode_traverse,
    .clear = mnode_clear,
    .dealloc = mnode_dealloc,
};
static const rcgc_type T_Fin = {
    .name = "MFin",
    .size = sizeof(mnode),
    .traverse = mnode_traverse,
    .clear = mnode_clear,
    .finalize = mnode_finalize,
    .dealloc = mnode_dealloc,
};
static const rcgc_type T_ResFin = {
    .name = "MResFin",
    .size = sizeof(mnode),
    .traverse = mnode_traverse,
    .clear = mnode_clear,
    .finalize = mnode_finalize_resurrect,
    .dealloc = mnode_dealloc,
};
static const rcgc_type T_Leaf = {
    .name = "MLeaf",
    .size = sizeof(mleaf),
    .dealloc = mleaf_dealloc,
};
static const rcgc_type T_LeafFin = {
    .name = "MLeafFin",
    .size = sizeof(mleaf),
    .finalize = mleaf_finalize,
    .dealloc = mleaf_dealloc,
};

static const rcgc_type *const kind_type[NKINDS] = {&T_Node, &T_Fin,     &T_ResFin,
                                                   &T_Leaf, &T_LeafFin, NULL};
static const char *const kind_name[NKINDS] = {"MNode", "MFin",     "MResFin",
                                              "MLeaf", "MLeafFin", "weakref"};

static bool is_container(int k)
{
    return k == K_NODE || k == K_FIN || k == K_RESFIN;
}

static bool is_tracked_kind(int k)
{
    return is_container(k) || k == K_WEAK;
}

static bool has_finalizer(int k)
{
    return k == K_FIN || k == K_RESFIN || k == K_LEAFFIN;
}

/* ---- the model ---- */

typedef struct mobj {
    bool alive;
    int kind;
    void *ptr;
    int slot[NSLOT]; /* model ids, -1: empty */
    unsigned ext;    /* references the test holds */
    unsigned rc;     /* ext + slots referencing it + resurrection list entries */
    bool finalized;
    int gen;          /* 0..2, 3 frozen, -1 untracked */
    unsigned genmask; /* generations allowed at the next check (trashcan uncertainty) */
    int target;       /* weak references: model id, -1 cleared */
    bool has_cb;
} mobj;

#define GEN_BIT(g) (1u << (unsigned)(g))

static struct {
    mobj o[MAX_OBJ];
    int n;            /* ids handed out */
    int res[MAX_OBJ]; /* resurrection list (ids) */
    int nres;
    /* the trashcan, as the library runs it (depth and LIFO of deferred deaths) */
    int depth;
    int trash[MAX_OBJ];
    int ntrash;
    /* events predicted for the current operation */
    int log[LOG_MAX];
    int nlog;
    /* per operation: ids whose weak references were cleared, and weak references'
     * targets when the operation began */
    bool cleared[MAX_OBJ];
    int target0[MAX_OBJ];
    /* the weak references the last m_collect cleared in handle_weakrefs, and the
     * callbacks it predicted there */
    int hw[MAX_OBJ];
    int nhw;
    int nhw_callbacks;
} M;

/* How much each rule was exercised (RCGC_MODEL_STATS=1 prints it). */
static struct {
    long ops, collections, automatic, collected, resurrected_gc, resurrected_rc, finalized,
        deallocs, callbacks, deferred, frozen_ops, weak_trash, tolerated;
} S;

/* ---- the run ---- */

typedef struct run {
    uint64_t seed;
    uint64_t rng;
    int op;
    rcgc_heap *h;
    bool automatic;
    bool freezing;
    bool deep;
    char trail[16][96]; /* the last operations, for the failure message */
    int ntrail;
} run;

static run *cur;

#if defined(__GNUC__)
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#else
#define PRINTF_LIKE(f, a)
#endif

static void trail(run *r, const char *fmt, ...) PRINTF_LIKE(2, 3);
static void model_fail_at(int line, const char *fmt, ...) PRINTF_LIKE(2, 3);

static void trail(run *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->trail[r->ntrail % 16], sizeof r->trail[0], fmt, ap);
    va_end(ap);
    r->ntrail++;
}

#define model_fail(...) model_fail_at(__LINE__, __VA_ARGS__)
static void model_fail_at(int line, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    print_message("model mismatch (line %d): %s\n", line, msg);
    fail(); /* the teardown names the seed */
}

static uint64_t next_rand(run *r)
{
    uint64_t z = (r->rng += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

static int rnd(run *r, int n)
{
    return (int)(next_rand(r) % (uint64_t)n);
}

static void m_log(int kind, int id)
{
    if (M.nlog < LOG_MAX)
        M.log[M.nlog++] = kind * MAX_OBJ + id;
}

static void m_die(int id);

static void m_decref(int id)
{
    mobj *o = &M.o[id];
    if (o->rc == 0)
        model_fail("model: decref of %d at refcount 0", id);
    if (--o->rc == 0)
        m_die(id);
}

/* Clears the weak references to id (refcount path: with callbacks). */
static void m_clear_weakrefs(int id, bool callbacks)
{
    M.cleared[id] = true;
    for (int w = 0; w < M.n; w++) {
        mobj *wo = &M.o[w];
        if (!wo->alive || wo->kind != K_WEAK || wo->target != id)
            continue;
        wo->target = -1;
        if (callbacks && wo->has_cb)
            m_log(EV_WRCB, w);
    }
}

/* The body of a death (object.c's die_body): finalizer (once for containers, may
 * resurrect), weak references, dealloc (drops the slots, which may cascade). */
static void m_die_body(int id)
{
    mobj *o = &M.o[id];
    if (has_finalizer(o->kind) && !(is_container(o->kind) && o->finalized)) {
        if (is_container(o->kind))
            o->finalized = true;
        m_log(EV_FIN, id);
        if (o->kind == K_RESFIN) {
            S.resurrected_rc++;
            o->rc = 1;
            M.res[M.nres++] = id;
            /* stays in its list, or goes to gen0 when the trashcan deferred it */
            o->genmask |= GEN_BIT(0);
            return;
        }
    }
    if (o->kind == K_WEAK)
        o->target = -1; /* leaves its target's chain: its callback never runs */
    m_clear_weakrefs(id, true);
    if (o->kind != K_WEAK)
        m_log(EV_DEALLOC, id);
    o->alive = false;
    for (int i = 0; i < NSLOT; i++) {
        int c = o->slot[i];
        o->slot[i] = -1;
        if (c >= 0)
            m_decref(c);
    }
}

/* rcgc__object_die with the trashcan: 50 nested deaths, then deferral. A deferred weak
 * reference leaves its target's chain at once. */
static void m_die(int id)
{
    if (M.depth >= 50) {
        S.deferred++;
        if (M.o[id].kind == K_WEAK)
            M.o[id].target = -1;
        M.trash[M.ntrash++] = id;
        return;
    }
    M.depth++;
    m_die_body(id);
    M.depth--;
    if (M.depth == 0) {
        M.depth = 1;
        while (M.ntrash > 0)
            m_die_body(M.trash[--M.ntrash]);
        M.depth = 0;
    }
}

/* ---- the model's collection (CPython 3.11 gc_collect_main, weak refs as 3.14.7) ---- */

static int gcrefs[MAX_OBJ];
static unsigned char inset[MAX_OBJ]; /* 1: candidate, 2: reachable */

/* Among the ids in set (inset == 1), marks (inset = 2) those referenced from outside the
 * set and all they reach inside it. */
static void m_deduce(const int *set, int n)
{
    for (int i = 0; i < n; i++)
        gcrefs[set[i]] = (int)M.o[set[i]].rc;
    for (int i = 0; i < n; i++) {
        mobj *o = &M.o[set[i]];
        if (!is_container(o->kind))
            continue;
        for (int s = 0; s < NSLOT; s++)
            if (o->slot[s] >= 0 && inset[o->slot[s]])
                gcrefs[o->slot[s]]--;
    }
    static int stack[MAX_OBJ];
    int sp = 0;
    for (int i = 0; i < n; i++) {
        if (gcrefs[set[i]] < 0)
            model_fail("model: negative gc_refs for %d", set[i]);
        if (gcrefs[set[i]] > 0) {
            inset[set[i]] = 2;
            stack[sp++] = set[i];
        }
    }
    while (sp > 0) {
        mobj *o = &M.o[stack[--sp]];
        if (!is_container(o->kind))
            continue;
        for (int s = 0; s < NSLOT; s++) {
            int c = o->slot[s];
            if (c >= 0 && inset[c] == 1) {
                inset[c] = 2;
                stack[sp++] = c;
            }
        }
    }
}

/* Returns what rcgc_collect(h, gen) returns. */
static ssize_t m_collect(int gen)
{
    static int cand[MAX_OBJ], unreach[MAX_OBJ];
    int nc = 0;
    for (int i = 0; i < M.n; i++) {
        mobj *o = &M.o[i];
        if (o->alive && is_tracked_kind(o->kind) && o->gen >= 0 && o->gen <= gen) {
            cand[nc++] = i;
            inset[i] = 1;
        }
    }
    int old = gen < 2 ? gen + 1 : 2;
    m_deduce(cand, nc);
    int nu = 0;
    for (int i = 0; i < nc; i++) {
        if (inset[cand[i]] == 2) {
            M.o[cand[i]].gen = old;
            M.o[cand[i]].genmask = GEN_BIT(old);
            inset[cand[i]] = 0;
        } else {
            unreach[nu++] = cand[i];
        }
    }
    /* handle_weakrefs: weak references of and to the unreachable are cleared first; the
     * callbacks of those that are not unreachable themselves run */
    M.nhw = 0;
    M.nhw_callbacks = 0;
    for (int i = 0; i < nu; i++) {
        mobj *o = &M.o[unreach[i]];
        if (o->kind == K_WEAK) {
            S.weak_trash++;
            if (o->target >= 0)
                M.hw[M.nhw++] = unreach[i];
            o->target = -1;
        }
    }
    for (int i = 0; i < nu; i++)
        M.cleared[unreach[i]] = true;
    for (int w = 0; w < M.n; w++) {
        mobj *wo = &M.o[w];
        if (!wo->alive || wo->kind != K_WEAK || wo->target < 0 || !inset[wo->target])
            continue;
        M.hw[M.nhw++] = w;
        wo->target = -1;
        if (wo->has_cb) {
            m_log(EV_WRCB, w);
            M.nhw_callbacks++;
        }
    }
    /* finalize_garbage */
    for (int i = 0; i < nu; i++) {
        mobj *o = &M.o[unreach[i]];
        if (!has_finalizer(o->kind) || o->finalized)
            continue;
        o->finalized = true;
        m_log(EV_FIN, unreach[i]);
        if (o->kind == K_RESFIN) {
            S.resurrected_gc++;
            o->rc++;
            M.res[M.nres++] = unreach[i];
        }
    }
    /* handle_resurrected_objects */
    m_deduce(unreach, nu);
    int ng = 0;
    for (int i = 0; i < nu; i++) {
        int id = unreach[i];
        if (inset[id] == 2) {
            M.o[id].gen = old;
            M.o[id].genmask = GEN_BIT(old);
            inset[id] = 0;
        } else {
            unreach[ng++] = id;
        }
    }
    for (int i = 0; i < ng; i++)
        inset[unreach[i]] = 0;
    /* delete_garbage: clear each (the order does not change the outcome) */
    for (int i = 0; i < ng; i++) {
        mobj *o = &M.o[unreach[i]];
        if (!o->alive || !is_container(o->kind))
            continue;
        o->rc++; /* the collector's reference around clear */
        for (int s = 0; s < NSLOT; s++) {
            int c = o->slot[s];
            o->slot[s] = -1;
            if (c >= 0)
                m_decref(c);
        }
        m_decref(unreach[i]);
    }
    for (int i = 0; i < ng; i++)
        if (M.o[unreach[i]].alive)
            model_fail("model: unreachable %d survived its clear", unreach[i]);
    S.collections++;
    S.collected += ng;
    return ng;
}

/* ---- model and heap side by side ---- */

static int m_new_id(int kind)
{
    if (M.n == MAX_OBJ)
        model_fail("too many objects for the model");
    int id = M.n++;
    mobj *o = &M.o[id];
    memset(o, 0, sizeof *o);
    o->alive = true;
    o->kind = kind;
    for (int i = 0; i < NSLOT; i++)
        o->slot[i] = -1;
    o->ext = 1;
    o->rc = 1;
    o->gen = is_tracked_kind(kind) ? 0 : -1;
    o->genmask = is_tracked_kind(kind) ? GEN_BIT(0) : 0;
    o->target = -1;
    return id;
}

/* Applies, in the model, the automatic collections the heap ran during the operation. */
static void m_apply_automatic(run *r)
{
    (void)r;
    if (R.nstart > 1)
        model_fail("%d collections during one allocation", R.nstart);
    if (R.nstart != R.nstop)
        model_fail("gc callbacks: %d starts, %d stops", R.nstart, R.nstop);
    if (R.nstart == 1) {
        S.automatic++;
        ssize_t want = m_collect(R.gc_start_gen[0]);
        if (R.gc_stop_collected[0] != want)
            model_fail("automatic collect(%d) collected %zd, model %zd", R.gc_start_gen[0],
                       R.gc_stop_collected[0], want);
    }
    R.nstart = R.nstop = 0;
}

static int alive_count(void)
{
    int n = 0;
    for (int i = 0; i < M.n; i++)
        n += M.o[i].alive;
    return n;
}

/* A random live object satisfying pred, or -1. */
static int pick(run *r, bool (*pred)(const mobj *))
{
    static int cands[MAX_OBJ];
    int n = 0;
    for (int i = 0; i < M.n; i++)
        if (M.o[i].alive && pred(&M.o[i]))
            cands[n++] = i;
    return n ? cands[rnd(r, n)] : -1;
}

static bool p_any(const mobj *o)
{
    (void)o;
    return true;
}

static bool p_container(const mobj *o)
{
    return is_container(o->kind);
}

static bool p_held(const mobj *o)
{
    return o->ext > 0;
}

/* ---- operations ---- */

/* A new object of kind, held by the test (ext 1). Returns its id. */
static int do_new(run *r, int kind)
{
    void *p = rcgc_new(r->h, kind_type[kind]);
    if (p == NULL)
        model_fail("rcgc_new returned NULL");
    m_apply_automatic(r);
    int id = m_new_id(kind);
    M.o[id].ptr = p;
    if (is_container(kind)) {
        mnode *n = p;
        n->id = id;
        n->magic = MAGIC_LIVE;
    } else {
        mleaf *l = p;
        l->id = id;
        l->magic = MAGIC_LIVE;
    }
    return id;
}

static int random_kind(run *r)
{
    int x = rnd(r, 100);
    if (x < 45)
        return K_NODE;
    if (x < 60)
        return K_FIN;
    if (x < 67)
        return K_RESFIN;
    return x < 87 ? K_LEAF : K_LEAFFIN;
}

static void op_new(run *r)
{
    int kind = random_kind(r);
    int id = do_new(r, kind);
    trail(r, "new %s -> %d", kind_name[kind], id);
}

/* A new weak reference to t (which the test holds), held by the test. Returns its id. */
static int do_weakref(run *r, int t, bool cb)
{
    int id = M.n; /* the id the weak reference will get */
    void *w = rcgc_weakref_new(r->h, M.o[t].ptr, cb ? wr_callback : NULL, (void *)(intptr_t)id);
    if (w == NULL)
        model_fail("rcgc_weakref_new returned NULL");
    m_apply_automatic(r);
    if (m_new_id(K_WEAK) != id)
        model_fail("model id mismatch");
    M.o[id].ptr = w;
    M.o[id].target = t;
    M.o[id].has_cb = cb;
    return id;
}

static void op_weakref(run *r)
{
    int t = pick(r, p_held);
    if (t < 0)
        return;
    bool cb = rnd(r, 10) < 7;
    int id = do_weakref(r, t, cb);
    trail(r, "weakref %d -> %d%s", id, t, cb ? " (callback)" : "");
}

static void op_incref(run *r)
{
    int id = pick(r, p_any);
    if (id < 0)
        return;
    rcgc_incref(M.o[id].ptr);
    M.o[id].ext++;
    M.o[id].rc++;
    trail(r, "incref %d", id);
}

/* The model first: the real decref may free objects whose model state is read. */
static void do_decref(int id)
{
    void *p = M.o[id].ptr;
    M.o[id].ext--;
    m_decref(id);
    rcgc_decref(p);
}

static void op_decref(run *r)
{
    int id = pick(r, p_held);
    if (id < 0)
        return;
    trail(r, "decref %d", id);
    do_decref(id);
}

/* a.slot[i] = b (b = -1: empty), as a C program does it: incref the new, store, decref
 * the old. */
static void do_link(int a, int i, int b)
{
    mnode *n = M.o[a].ptr;
    void *old = n->slot[i];
    void *np = b >= 0 ? M.o[b].ptr : NULL;
    int mold = M.o[a].slot[i];
    if (b >= 0)
        M.o[b].rc++;
    M.o[a].slot[i] = b;
    if (mold >= 0)
        m_decref(mold);
    rcgc_xincref(np);
    n->slot[i] = np;
    rcgc_xdecref(old);
}

/* A random live container with a slot holding id, or -1. */
static int pick_parent(run *r, int id)
{
    static int cands[MAX_OBJ * NSLOT];
    int n = 0;
    for (int i = 0; i < M.n; i++) {
        if (!M.o[i].alive || !is_container(M.o[i].kind))
            continue;
        for (int s = 0; s < NSLOT; s++)
            if (M.o[i].slot[s] == id)
                cands[n++] = i;
    }
    return n ? cands[rnd(r, n)] : -1;
}

static void op_link(run *r)
{
    int a = pick(r, p_container);
    if (a < 0)
        return;
    int i = rnd(r, NSLOT);
    int x = rnd(r, 100);
    int b = -1;
    if (x < 8)
        b = -1;
    else if (x < 20)
        b = a; /* a self-loop */
    else if (x < 45)
        b = pick_parent(r, a); /* a cycle through a parent */
    if (x >= 8 && b < 0)
        b = pick(r, p_any);
    trail(r, "link %d.%d = %d", a, i, b);
    do_link(a, i, b);
}

/* A chain deeper than the trashcan's limit, held by its head: mixed kinds, a leaf at the
 * end, weak references (held by the test) to some links. */
static void op_chain(run *r)
{
    int len = 52 + rnd(r, 20);
    int head = do_new(r, K_NODE);
    int prev = head;
    for (int k = 1; k < len; k++) {
        int x = rnd(r, 100);
        int kind;
        if (k == len - 1)
            kind = x < 50 ? K_LEAF : K_LEAFFIN;
        else
            kind = x < 80 ? K_NODE : x < 98 ? K_FIN : K_RESFIN;
        int id = do_new(r, kind);
        if (rnd(r, 12) == 0)
            (void)do_weakref(r, id, true);
        if (!M.o[prev].alive)
            model_fail("chain: %d died while building", prev);
        do_link(prev, 0, id);
        do_decref(id);
        prev = id;
    }
    trail(r, "chain of %d from %d", len, head);
    if (rnd(r, 5) < 2) {
        trail(r, "decref %d (the chain's head)", head);
        do_decref(head);
    }
}

static void op_unlink(run *r)
{
    int a = pick(r, p_container);
    if (a < 0)
        return;
    int i = rnd(r, NSLOT);
    trail(r, "unlink %d.%d", a, i);
    mnode *n = M.o[a].ptr;
    void *old = n->slot[i];
    int mold = M.o[a].slot[i];
    M.o[a].slot[i] = -1;
    if (mold >= 0)
        m_decref(mold);
    n->slot[i] = NULL;
    rcgc_xdecref(old);
}

static void op_collect(run *r, int gen)
{
    trail(r, "collect(%d)", gen);
    /* the model first: it tells the callbacks what must be cleared already */
    ssize_t want = m_collect(gen);
    R.nmust = 0;
    for (int i = 0; i < M.nhw; i++)
        R.must_clear[R.nmust++] = M.o[M.hw[i]].ptr;
    R.must_callbacks = M.nhw_callbacks;
    ssize_t got = rcgc_collect(r->h, gen);
    R.nmust = 0;
    R.must_callbacks = 0;
    if (R.nstart != 1 || R.nstop != 1 || R.gc_start_gen[0] != gen)
        model_fail("collect(%d): %d gc starts (gen %d), %d stops", gen, R.nstart,
                   R.gc_start_gen[0], R.nstop);
    if (got != want)
        model_fail("collect(%d) returned %zd, model %zd", gen, got, want);
    if (R.gc_stop_collected[0] != want)
        model_fail("collect(%d): callback says %zd collected, model %zd", gen,
                   R.gc_stop_collected[0], want);
}

static void op_freeze(run *r)
{
    S.frozen_ops++;
    trail(r, "freeze");
    rcgc_freeze(r->h);
    for (int i = 0; i < M.n; i++) {
        mobj *o = &M.o[i];
        if (o->alive && o->gen >= 0 && o->gen <= 2) {
            o->gen = 3;
            o->genmask = GEN_BIT(3);
        }
    }
}

static void op_unfreeze(run *r)
{
    trail(r, "unfreeze");
    rcgc_unfreeze(r->h);
    for (int i = 0; i < M.n; i++) {
        mobj *o = &M.o[i];
        if (o->alive && o->gen == 3) {
            o->gen = 2;
            o->genmask = GEN_BIT(2);
        }
    }
}

/* Drops one reference of the resurrection list. */
static void op_drop_resurrected(run *r)
{
    if (M.nres == 0)
        return;
    int k = rnd(r, M.nres);
    int id = M.res[k];
    void *p = M.o[id].ptr;
    int j = 0;
    while (j < R.nres && R.res[j] != p)
        j++;
    if (j == R.nres)
        model_fail("resurrected %d is not in the heap's resurrection list", id);
    trail(r, "drop resurrected %d", id);
    M.res[k] = M.res[--M.nres];
    R.res[j] = R.res[--R.nres];
    m_decref(id);
    rcgc_decref(p);
}

/* ---- checking the heap against the model ---- */

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static int ecount[NEV][MAX_OBJ], pcount[NEV][MAX_OBJ];

static void check_events(void)
{
    if (R.overflow)
        model_fail("event log overflow");
    for (int k = 0; k < NEV; k++) {
        memset(ecount[k], 0, sizeof(int) * (size_t)M.n);
        memset(pcount[k], 0, sizeof(int) * (size_t)M.n);
    }
    for (int i = 0; i < R.nlog; i++) {
        int k = R.log[i] / MAX_OBJ, id = R.log[i] % MAX_OBJ;
        S.finalized += k == EV_FIN;
        S.deallocs += k == EV_DEALLOC;
        S.callbacks += k == EV_WRCB;
        if (id >= M.n)
            model_fail("event for unknown id %d", id);
        ecount[k][id]++;
    }
    for (int i = 0; i < M.nlog; i++)
        pcount[M.log[i] / MAX_OBJ][M.log[i] % MAX_OBJ]++;
    static const char *const names[NEV] = {"finalize", "dealloc", "weakref callback"};
    for (int id = 0; id < M.n; id++) {
        for (int k = 0; k < EV_WRCB; k++)
            if (ecount[k][id] != pcount[k][id])
                model_fail("%s of %d (%s) ran %d times, model %d", names[k], id,
                           kind_name[M.o[id].kind], ecount[k][id], pcount[k][id]);
        int got = ecount[EV_WRCB][id], want = pcount[EV_WRCB][id];
        if (got == want)
            continue;
        /* a weak reference that died in this operation together with its target: the
         * order of the two deaths decides whether its callback ran */
        mobj *w = &M.o[id];
        if (!w->alive && w->kind == K_WEAK && got == 1 && want == 0 && M.target0[id] >= 0 &&
            M.cleared[M.target0[id]]) {
            S.tolerated++;
            continue;
        }
        if (!w->alive && w->kind == K_WEAK && got == 0 && want == 1) {
            S.tolerated++;
            continue;
        }
        model_fail("weak reference %d: callback ran %d times, model %d (target %d)", id, got,
                   want, M.target0[id]);
    }
}

typedef struct {
    size_t count[NKINDS];
    bool unknown;
} census_acc;

static int census_visit(const rcgc_census_entry *e, void *arg)
{
    census_acc *a = arg;
    for (int k = 0; k < NKINDS; k++) {
        if (strcmp(e->name, kind_name[k]) == 0) {
            a->count[k] += e->count;
            return 0;
        }
    }
    a->unknown = true;
    return 0;
}

static void check_census(run *r)
{
    census_acc a = {{0}, false};
    if (rcgc_census(r->h, census_visit, &a) != 0 || a.unknown)
        model_fail("census failed or has an unknown type");
    size_t want[NKINDS] = {0};
    for (int i = 0; i < M.n; i++)
        if (M.o[i].alive)
            want[M.o[i].kind]++;
    for (int k = 0; k < NKINDS; k++)
        if (a.count[k] != want[k])
            model_fail("census %s: %zu, model %zu", kind_name[k], a.count[k], want[k]);
}

/* pointer -> model id, rebuilt at every check */
#define PMAP_CAP 1024
static void *pmap_key[PMAP_CAP];
static int pmap_val[PMAP_CAP];

static size_t pmap_slot(const void *p)
{
    uintptr_t x = ((uintptr_t)p >> 4) * (uintptr_t)0x9E3779B97F4A7C15u;
    size_t i = (size_t)(x ^ (x >> 29)) & (PMAP_CAP - 1);
    while (pmap_key[i] != NULL && pmap_key[i] != p)
        i = (i + 1) & (PMAP_CAP - 1);
    return i;
}

static int pmap_get(const void *p)
{
    size_t i = pmap_slot(p);
    return pmap_key[i] ? pmap_val[i] : -1;
}

typedef struct {
    void *objs[MAX_OBJ];
    int n;
    bool overflow;
} walk_acc;

static int walk_visit(void *obj, void *arg)
{
    walk_acc *a = arg;
    if (a->n == MAX_OBJ) {
        a->overflow = true;
        return 1;
    }
    a->objs[a->n++] = obj;
    return 0;
}

static void check_objects(run *r)
{
    memset(pmap_key, 0, sizeof pmap_key);
    size_t weak_to[MAX_OBJ];
    memset(weak_to, 0, sizeof(size_t) * (size_t)M.n);
    int alive = 0;
    for (int i = 0; i < M.n; i++) {
        mobj *o = &M.o[i];
        if (!o->alive)
            continue;
        alive++;
        size_t s = pmap_slot(o->ptr);
        if (pmap_key[s] != NULL)
            model_fail("two live objects at one address (%d, %d)", pmap_val[s], i);
        pmap_key[s] = o->ptr;
        pmap_val[s] = i;
        if (o->kind == K_WEAK && o->target >= 0)
            weak_to[o->target]++;
    }
    if (alive > PMAP_CAP / 2)
        model_fail("too many live objects for the check");
    /* refcounts recomputed from the model's own state */
    static unsigned rc[MAX_OBJ];
    for (int i = 0; i < M.n; i++)
        rc[i] = M.o[i].ext;
    for (int i = 0; i < M.n; i++) {
        if (!M.o[i].alive)
            continue;
        for (int s = 0; s < NSLOT; s++)
            if (M.o[i].slot[s] >= 0)
                rc[M.o[i].slot[s]]++;
    }
    for (int k = 0; k < M.nres; k++)
        rc[M.res[k]]++;
    for (int i = 0; i < M.n; i++) {
        mobj *o = &M.o[i];
        if (!o->alive)
            continue;
        if (rc[i] != o->rc)
            model_fail("model: refcount of %d is %u, its references say %u", i, o->rc, rc[i]);
        if (rcgc_refcount(o->ptr) != o->rc)
            model_fail("refcount of %d (%s) is %zu, model %u", i, kind_name[o->kind],
                       rcgc_refcount(o->ptr), o->rc);
        if (rcgc_is_tracked(o->ptr) != is_tracked_kind(o->kind))
            model_fail("is_tracked of %d", i);
        if (rcgc_weakref_count(o->ptr) != weak_to[i])
            model_fail("weakref_count of %d is %zu, model %zu", i, rcgc_weakref_count(o->ptr),
                       weak_to[i]);
        if (o->kind == K_WEAK) {
            void *t = rcgc_weakref_get(o->ptr);
            void *want = o->target >= 0 ? M.o[o->target].ptr : NULL;
            if (t != want)
                model_fail("weak reference %d returns %p, model %p (target %d)", i, t, want,
                           o->target);
            rcgc_xdecref(t);
        } else if (is_container(o->kind)) {
            mnode *n = o->ptr;
            if (n->magic != MAGIC_LIVE || n->id != i)
                model_fail("node %d is not intact", i);
            for (int s = 0; s < NSLOT; s++) {
                void *want = o->slot[s] >= 0 ? M.o[o->slot[s]].ptr : NULL;
                if (n->slot[s] != want)
                    model_fail("slot %d.%d", i, s);
            }
            if (rcgc_is_finalized(o->ptr) != o->finalized)
                model_fail("is_finalized of %d is %d, model %d", i, rcgc_is_finalized(o->ptr),
                           o->finalized);
        } else {
            mleaf *l = o->ptr;
            if (l->magic != MAGIC_LIVE || l->id != i)
                model_fail("leaf %d is not intact", i);
        }
    }
    /* generations: what each walk visits */
    static walk_acc wa;
    static bool seen[MAX_OBJ];
    memset(seen, 0, sizeof(bool) * (size_t)M.n);
    for (int g = 0; g < 3; g++) {
        wa.n = 0;
        wa.overflow = false;
        if (rcgc_get_objects(r->h, g, walk_visit, &wa) != 0 || wa.overflow)
            model_fail("get_objects(%d) failed", g);
        for (int j = 0; j < wa.n; j++) {
            int id = pmap_get(wa.objs[j]);
            if (id < 0)
                model_fail("get_objects(%d) visits an object the model does not know", g);
            mobj *o = &M.o[id];
            if (seen[id])
                model_fail("get_objects visits %d twice", id);
            seen[id] = true;
            if (!(o->genmask & GEN_BIT(g)))
                model_fail("%d (%s) is in generation %d, model %d (mask %x)", id,
                           kind_name[o->kind], g, o->gen, o->genmask);
            o->gen = g;
            o->genmask = GEN_BIT(g);
        }
    }
    size_t frozen = 0;
    for (int i = 0; i < M.n; i++) {
        mobj *o = &M.o[i];
        if (!o->alive || !is_tracked_kind(o->kind) || seen[i])
            continue;
        if (!(o->genmask & GEN_BIT(3)))
            model_fail("%d (%s, gen %d) is in no generation", i, kind_name[o->kind], o->gen);
        o->gen = 3;
        o->genmask = GEN_BIT(3);
        frozen++;
    }
    if (rcgc_get_freeze_count(r->h) != frozen)
        model_fail("freeze count %zu, model %zu", rcgc_get_freeze_count(r->h), frozen);
    /* the resurrection lists hold the same objects */
    if (R.nres != M.nres)
        model_fail("resurrection list: %d entries, model %d", R.nres, M.nres);
    static int a[MAX_OBJ], b[MAX_OBJ];
    for (int i = 0; i < R.nres; i++) {
        a[i] = pmap_get(R.res[i]);
        b[i] = M.res[i];
    }
    qsort(a, (size_t)R.nres, sizeof(int), cmp_int);
    qsort(b, (size_t)M.nres, sizeof(int), cmp_int);
    if (memcmp(a, b, sizeof(int) * (size_t)R.nres) != 0)
        model_fail("resurrection lists differ");
}

/* After every operation: events first (an unexpected free must be reported before any
 * object is read), then the census, then each object, then the heap's invariants. */
static void check_all(run *r)
{
    S.ops++;
    check_events();
    check_census(r);
    check_objects(r);
    size_t errors = rcgc__heap_check(r->h);
    if (errors != 0 || R.panics != 0)
        model_fail("rcgc__heap_check: %zu errors, %d panics (first: %s)", errors, R.panics,
                   R.panic);
    if (R.violations != 0)
        model_fail("callback violation: %s", R.violation);
    if (M.depth != 0 || M.ntrash != 0)
        model_fail("model trashcan not empty");
}

/* Resets the per-operation records. */
static void begin_op(void)
{
    R.nlog = 0;
    R.overflow = false;
    R.nstart = R.nstop = 0;
    M.nlog = 0;
    memset(M.cleared, 0, sizeof(bool) * (size_t)M.n);
    for (int i = 0; i < M.n; i++)
        M.target0[i] = M.o[i].alive && M.o[i].kind == K_WEAK ? M.o[i].target : -1;
}

/* ---- one seed ---- */

static int env_int(const char *name, int dflt)
{
    const char *v = getenv(name);
    return v != NULL && *v != '\0' ? atoi(v) : dflt;
}

static void run_seed(uint64_t seed, int nops)
{
    static run r;
    memset(&r, 0, sizeof r);
    memset(&R, 0, sizeof R);
    memset(&M, 0, sizeof M);
    r.seed = seed;
    r.rng = seed * 0x2545F4914F6CDD1Du + 1;
    cur = &r;
    rcgc_heap_options opts = {
        .name = "model",
        .ignore_environment = true,
        .panic = record_panic,
    };
    r.h = rcgc_heap_new_with(&opts);
    assert_non_null(r.h);
    assert_int_equal(rcgc_add_callback(r.h, gc_callback, NULL), 0);
    r.automatic = rnd(&r, 3) == 0;
    r.freezing = rnd(&r, 4) == 0;
    if (r.automatic) {
        rcgc_set_threshold(r.h, (size_t)(1 + rnd(&r, 6)), (size_t)(1 + rnd(&r, 4)),
                           (size_t)(1 + rnd(&r, 4)));
        rcgc_enable(r.h);
    } else {
        rcgc_disable(r.h);
    }
    r.deep = rnd(&r, 4) == 0;
    int live_cap = 20 + rnd(&r, MAX_LIVE - 20);
    if (r.deep)
        live_cap += 100;

    for (r.op = 0; r.op < nops; r.op++) {
        begin_op();
        int x = rnd(&r, 100);
        int live = alive_count();
        if (M.n > MAX_OBJ - 200)
            live = live_cap; /* out of ids: no more objects in this seed */
        if (x < 24) {
            if (live < live_cap)
                op_new(&r);
            else
                op_decref(&r);
        } else if (x < 40) {
            op_link(&r);
        } else if (x < 47) {
            op_unlink(&r);
        } else if (x < 60) {
            op_decref(&r);
        } else if (x < 65) {
            op_incref(&r);
        } else if (x < 74) {
            if (live < live_cap)
                op_weakref(&r);
        } else if (x < 84) {
            op_collect(&r, rnd(&r, 3));
        } else if (x < 87) {
            op_drop_resurrected(&r);
        } else if (x < 89) {
            if (r.freezing)
                op_freeze(&r);
        } else if (x < 92) {
            if (r.freezing)
                op_unfreeze(&r);
        } else if (x < 95) {
            if (r.deep && live < live_cap - 70)
                op_chain(&r);
        } else if (live < live_cap) {
            op_new(&r);
        }
        check_all(&r);
    }

    /* the end: drop everything the test holds, collect, and nothing may be left */
    begin_op();
    trail(&r, "unfreeze; drop all");
    op_unfreeze(&r);
    for (int i = 0; i < M.n; i++) {
        while (M.o[i].alive && M.o[i].ext > 0) {
            void *p = M.o[i].ptr;
            M.o[i].ext--;
            m_decref(i);
            rcgc_decref(p);
        }
    }
    check_all(&r);
    for (int round = 0; round < 3; round++) {
        begin_op();
        trail(&r, "drop resurrected");
        while (M.nres > 0)
            op_drop_resurrected(&r);
        check_all(&r);
        begin_op();
        op_collect(&r, 2);
        check_all(&r);
    }
    if (alive_count() != 0)
        model_fail("model: %d objects left at the end", alive_count());
    rcgc_heap_free(r.h);
    cur = NULL;
}

static void test_model_random(void **state)
{
    (void)state;
    int nops = env_int("RCGC_MODEL_OPS", 300);
    const char *one = getenv("RCGC_MODEL_SEED");
    if (one != NULL && *one != '\0') {
        run_seed(strtoull(one, NULL, 10), nops);
        return;
    }
    int seeds = env_int("RCGC_MODEL_SEEDS", 2000);
    for (int s = 1; s <= seeds; s++)
        run_seed((uint64_t)s, nops);
    if (env_int("RCGC_MODEL_STATS", 0))
        print_message("%ld checks, %ld collections (%ld automatic) freeing %ld, %ld finalizer "
                      "calls, %ld resurrections in collections and %ld on the refcount path, "
                      "%ld deallocs, %ld weak-reference callbacks (%ld tolerated orderings), "
                      "%ld trash weak references, %ld deferred deaths, %ld freezes\n",
                      S.ops, S.collections, S.automatic, S.collected, S.finalized,
                      S.resurrected_gc, S.resurrected_rc, S.deallocs, S.callbacks, S.tolerated,
                      S.weak_trash, S.deferred, S.frozen_ops);
}

/* Test teardown: after a crash (cmocka catches the signal) or a failed assertion, names
 * the seed and the operation that were running. */
static int report_seed(void **state)
{
    (void)state;
    if (cur != NULL) {
        print_message("stopped in seed %llu (RCGC_MODEL_SEED=%llu) at operation %d "
                      "(automatic %d, freezing %d, deep %d); last operations:\n",
                      (unsigned long long)cur->seed, (unsigned long long)cur->seed, cur->op,
                      cur->automatic, cur->freezing, cur->deep);
        int first = cur->ntrail > 16 ? cur->ntrail - 16 : 0;
        for (int i = first; i < cur->ntrail; i++)
            print_message("  %s\n", cur->trail[i % 16]);
        cur = NULL;
    }
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_model_random, report_seed),
    };
    const char *filter = getenv("RCGC_TEST_FILTER"); /* e.g. "*16602" */
    if (filter != NULL && *filter != '\0')
        cmocka_set_test_filter(filter);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
