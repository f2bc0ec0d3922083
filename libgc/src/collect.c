/* collect.c: the phases of a collection and the automatic trigger.
 *
 * The algorithm is CPython 3.11's gc_collect_main; weak references follow 3.14.7 (a
 * second clearing pass before clear). Read it top-down from collect_main. The working
 * set is the WORK object list: after gather() it holds every object of the collected
 * generations; after deduce() only the unreachable ones, the reachable having moved to
 * the next older generation ("old"). From the first user callback on, WORK and LEGACY
 * are pinned: a finalizer that frees one of their objects leaves a NULL hole.
 *
 * A full collection starts by putting GEN2's resident objects back into its array
 * (gather) and ends by making them resident again (rcgc__gen2_settle); a collection of
 * generation 1 makes its survivors resident at the end.
 *
 * Memory: everything a collection needs is reserved before the first change, except the
 * LEGACY list and the garbage list; running out there either bails out before user code
 * ran (every candidate survives) or leaves an object out of the garbage list (it is
 * found again by the next collection). */
#include "internal.h"

#define L(h, id) (&(h)->lists[(id)])

#define RING 128u /* children in flight: prefetched, processed RING visits later */

typedef struct {
    rcgc_heap *h;
    void *bad;     /* an object whose refcount is smaller than its internal references */
    bool direct;   /* survivors in pools become resident (a full collection that settles) */
    int err;       /* RCGC_ENOMEM when a move failed */
    unsigned dest; /* visit_reachable's destination list */
    unsigned head, fill;
    rcgc_head *ring[RING];
} pass;

/* ---- deduce_unreachable ---- */

/* The two hot visits touch a random child header per edge. They are pipelined: the
 * child's header is prefetched and the work on it done RING edges later, which hides
 * most of the cache miss (the graphs this collector is for do not fit in cache). */

static inline void decref_one(pass *p, rcgc_head *hd)
{
    if (hd->rcgc__info & RCGC__F_COLLECTING) {
        if (RCGC_UNLIKELY(hd->rcgc__slot == 0))
            p->bad = hd + 1;
        else
            hd->rcgc__slot--;
    }
}

static inline void reach_one(pass *p, rcgc_head *hd)
{
    if (hd->rcgc__info & RCGC__F_COLLECTING) {
        hd->rcgc__info &= ~(uintptr_t)RCGC__F_COLLECTING;
        rcgc__olist_push_reserved(p->h, p->dest, hd + 1);
    }
}

/* Queues hd; returns the header that leaves the ring, or NULL while it fills. */
static inline rcgc_head *ring_push(pass *p, rcgc_head *hd)
{
    __builtin_prefetch(hd, 1, 3);
    if (p->fill < RING) {
        p->ring[(p->head + p->fill++) % RING] = hd;
        return NULL;
    }
    rcgc_head *out = p->ring[p->head];
    p->ring[p->head] = hd;
    p->head = (p->head + 1) % RING;
    return out;
}

/* visit for subtract_refs: one internal reference fewer from outside. */
static int visit_decref(void *child, void *arg)
{
    if (child == NULL)
        return 0;
    rcgc_head *out = ring_push(arg, rcgc__head(child));
    if (out != NULL)
        decref_one(arg, out);
    return 0;
}

/* visit for move_unreachable: a candidate reached from a survivor survives. */
static int visit_reachable(void *child, void *arg)
{
    if (child == NULL)
        return 0;
    rcgc_head *out = ring_push(arg, rcgc__head(child));
    if (out != NULL)
        reach_one(arg, out);
    return 0;
}

/* Finishes the edges still in the ring. */
static void ring_drain(pass *p, void (*fn)(pass *, rcgc_head *))
{
    while (p->fill > 0) {
        fn(p, p->ring[p->head]);
        p->head = (p->head + 1) % RING;
        p->fill--;
    }
}

static void report_bad_refcount(rcgc_heap *h, void *obj)
{
    rcgc__panic(h,
                "refcount is too small\n"
                "object address  : %p\n"
                "object refcount : %u\n"
                "object type     : %p\n"
                "object type name: %s",
                obj, (unsigned)rcgc__head(obj)->rcgc__refcnt, (const void *)rcgc__type(obj),
                rcgc__type(obj)->name);
}

/* update_refs for one candidate: gc_refs = refcount, kept in the slot. */
static inline void update_ref(rcgc_head *hd)
{
    hd->rcgc__info =
        (hd->rcgc__info & ~(uintptr_t)RCGC__LIST_MASK) | RCGC__L_WORK | RCGC__F_COLLECTING;
    hd->rcgc__slot = hd->rcgc__refcnt;
}

/* ---- candidates left in the arenas (a full collection of a settled GEN2) ----
 *
 * gather marks each resident in place (COLLECTING, gc_refs in the slot, list still
 * GEN2) instead of listing it in WORK, so the first phases find these candidates by
 * scanning the pools, in address order, and only the tentatively unreachable ones are
 * ever listed: the scratch array holds those, not the whole heap. */

/* The header of the in-place candidate whose pool block is b, or NULL. */
static inline rcgc_head *candidate_in(void *b)
{
    uintptr_t w;
    RCGC__VG_QUIET_BEGIN(); /* b may be free (see rcgc__resident_in) */
    memcpy(&w, b, sizeof w);
    rcgc_head *hd = RCGC_UNLIKELY(w == RCGC__VAR_MARK)
                        ? (rcgc_head *)((char *)b + RCGC__VARSIZE_PREFIX)
                        : (rcgc_head *)b;
    bool c = (hd->rcgc__info & (RCGC__LIST_MASK | RCGC__F_COLLECTING)) ==
             (RCGC__L_GEN2 | RCGC__F_COLLECTING);
    RCGC__VG_QUIET_END();
    return c ? hd : NULL;
}

static inline int mark_block(void *b, void *arg)
{
    (void)arg;
    void *obj = rcgc__resident_in(b);
    if (obj != NULL) {
        rcgc_head *hd = rcgc__head(obj);
        hd->rcgc__info |= RCGC__F_COLLECTING;
        hd->rcgc__slot = hd->rcgc__refcnt;
    }
    return 0;
}

static inline int subtract_block(void *b, void *arg)
{
    rcgc_head *hd = candidate_in(b);
    if (hd != NULL)
        rcgc__type(hd + 1)->traverse(hd + 1, visit_decref, arg);
    return 0;
}

typedef struct {
    rcgc_heap *h;
    void **items; /* WORK's array: the tentatively unreachable are appended at u */
    uint32_t u;
    unsigned old;
    bool direct;
    size_t resident; /* candidates made resident again */
} partition_ctx;

/* A survivor in place stays resident (direct) or joins `old`'s array. */
static inline void survive_in_place(partition_ctx *c, rcgc_head *hd)
{
    hd->rcgc__info &= ~(uintptr_t)RCGC__F_COLLECTING;
    if (c->direct) {
        hd->rcgc__slot = RCGC__SLOT_RESIDENT;
        c->resident++;
    } else {
        rcgc__olist_push_reserved(c->h, c->old, hd + 1);
    }
}

static inline int partition_block(void *b, void *arg)
{
    partition_ctx *c = arg;
    rcgc_head *hd = candidate_in(b);
    if (hd == NULL)
        return 0;
    if (hd->rcgc__slot != 0) {
        survive_in_place(c, hd);
    } else {
        hd->rcgc__info = (hd->rcgc__info & ~(uintptr_t)RCGC__LIST_MASK) | RCGC__L_WORK;
        c->items[c->u++] = hd + 1;
    }
    return 0;
}

/* After a too small refcount: every candidate in place survives. */
static inline int restore_block(void *b, void *arg)
{
    rcgc_head *hd = candidate_in(b);
    if (hd != NULL)
        survive_in_place(arg, hd);
    return 0;
}

/* Partitions the candidates: WORK's, and with in_place those marked in the arenas.
 * Pre: WORK has room for all of them, `old` too; refs_ready: update_refs was done
 * (gather did it while each header was in cache). Post: the candidates referenced from
 * outside the set, and all they reach, are in `old` (or resident in GEN2, when direct)
 * with COLLECTING clear; WORK holds the rest, compacted, COLLECTING set. Returns the
 * number of survivors, or -1 when a refcount was found too small (reported; WORK is
 * then untouched apart from COLLECTING bits and gc_refs in the slots; the candidates in
 * place have survived). */
static ssize_t deduce_unreachable(rcgc_heap *h, unsigned old, bool refs_ready, bool direct,
                                  bool in_place)
{
    rcgc__olist *work = L(h, RCGC__L_WORK);
    void **items = work->items;
    uint32_t n = work->len;
    if (!refs_ready)
        for (uint32_t i = 0; i < n; i++)
            if (items[i] != NULL)
                update_ref(rcgc__head(items[i]));
    /* subtract_refs: gc_refs = references from outside the set. */
    pass p = {.h = h, .dest = old};
    for (uint32_t i = 0; i < n; i++) {
        void *obj = items[i];
        if (obj != NULL)
            rcgc__type(obj)->traverse(obj, visit_decref, &p);
    }
    if (in_place)
        (void)rcgc__pools_each_block_inline(&h->pools, subtract_block, &p);
    ring_drain(&p, decref_one);
    rcgc__olist *ol = L(h, old);
    partition_ctx pc = {h, items, 0, old, direct, 0};
    if (p.bad != NULL) {
        report_bad_refcount(h, p.bad);
        if (in_place) {
            (void)rcgc__pools_each_block_inline(&h->pools, restore_block, &pc);
            ol->resident += pc.resident;
        }
        return -1;
    }
    /* partition: the candidates with outside references (gc_refs > 0) survive into
     * `old`; the others (tentatively unreachable) are compacted at the front of WORK.
     * Instead of traversing every survivor to find the tentatively unreachable ones it
     * reaches (CPython's move_unreachable), only those are traversed: a tentatively
     * unreachable object referenced from a survivor has more references than come from
     * the tentatively unreachable set. These survivors are never scanned again: in a
     * full collection that settles, those in pools become resident at once. */
    uint32_t start = ol->len;
    size_t direct_n = 0;
    uint32_t u = 0;
    for (uint32_t i = 0; i < n; i++) {
        void *obj = items[i];
        if (obj == NULL)
            continue;
        rcgc_head *hd = rcgc__head(obj);
        if (hd->rcgc__slot != 0) {
            hd->rcgc__info &= ~(uintptr_t)RCGC__F_COLLECTING;
            if (direct && rcgc__in_pools(&h->pools, obj)) {
                rcgc__set_list(obj, RCGC__L_GEN2, RCGC__SLOT_RESIDENT);
                direct_n++;
            } else {
                rcgc__olist_push_reserved(h, old, obj);
            }
        } else {
            items[u++] = obj;
        }
    }
    if (in_place) {
        pc.u = u;
        (void)rcgc__pools_each_block_inline(&h->pools, partition_block, &pc);
        u = pc.u;
        direct_n += pc.resident;
    }
    ol->resident += direct_n;
    /* slot = references from survivors and from outside: refcount minus references
     * from the tentatively unreachable (all their references are internal). */
    for (uint32_t i = 0; i < u; i++) {
        rcgc_head *hd = rcgc__head(items[i]);
        hd->rcgc__slot = hd->rcgc__refcnt;
    }
    for (uint32_t i = 0; i < u; i++)
        rcgc__type(items[i])->traverse(items[i], visit_decref, &p);
    ring_drain(&p, decref_one);
    /* Seeds: referenced from a survivor; everything they reach survives. */
    uint32_t seeds = ol->len;
    for (uint32_t i = 0; i < u; i++) {
        rcgc_head *hd = rcgc__head(items[i]);
        if (hd->rcgc__slot != 0) {
            hd->rcgc__info &= ~(uintptr_t)RCGC__F_COLLECTING;
            rcgc__olist_push_reserved(h, old, items[i]);
        }
    }
    for (uint32_t j = seeds;;) {
        for (; j < ol->len; j++) {
            void *obj = ol->items[j];
            rcgc__type(obj)->traverse(obj, visit_reachable, &p);
        }
        if (p.fill == 0)
            break;
        ring_drain(&p, reach_one); /* may push more survivors to scan */
    }
    /* What is still COLLECTING is unreachable: compact it in WORK. */
    uint32_t k = 0;
    for (uint32_t i = 0; i < u; i++) {
        void *obj = items[i];
        if (!(rcgc__flags(obj) & RCGC__F_COLLECTING))
            continue;
        items[k] = obj;
        rcgc__head(obj)->rcgc__slot = k;
        k++;
    }
    work->len = k;
    work->holes = 0;
    return (ssize_t)(ol->len - start + direct_n);
}

/* Every remaining candidate (WORK and LEGACY) survives into `old`. */
static void survive_all(rcgc_heap *h, unsigned old)
{
    static const unsigned from[] = {RCGC__L_WORK, RCGC__L_LEGACY};
    for (size_t f = 0; f < 2; f++) {
        rcgc__olist *l = L(h, from[f]);
        for (uint32_t i = 0; i < l->len; i++) {
            void *obj = l->items[i];
            if (obj == NULL)
                continue;
            rcgc__clear_flag(obj, RCGC__F_COLLECTING);
            rcgc__olist_push_reserved(h, old, obj);
        }
        l->len = 0;
        l->holes = 0;
    }
}

/* ---- gathering the generations ---- */

typedef struct {
    void **items;
    uint32_t len;
} work_fill;

/* For a full collection's gather: a listed object joins WORK, its refs updated. */
static inline int gather_one(void *obj, void *arg)
{
    work_fill *w = arg;
    update_ref(rcgc__head(obj));
    w->items[w->len++] = obj;
    return 0;
}

/* Moves generations 0..gen into WORK and reserves room in `old` for all of them. A
 * full collection does update_refs as it goes (*refs_ready), each header being in cache
 * then, and marks GEN2's residents as candidates where they are (*in_place); WORK
 * keeps room for them all, touched only by those found tentatively unreachable.
 * Returns 0, or RCGC_ENOMEM with nothing changed. */
static int gather(rcgc_heap *h, int gen, unsigned old, size_t before[3], bool *refs_ready,
                  bool *in_place)
{
    size_t n = 0;
    for (int i = 0; i <= gen; i++)
        n += rcgc__olist_size(L(h, i));
    rcgc__olist *g = L(h, (unsigned)gen);
    rcgc__olist *work = L(h, RCGC__L_WORK);
    *refs_ready = false;
    *in_place = false;
    if (gen == 2) {
        /* WORK gets the listed; GEN2's array, emptied, takes the survivors. */
        if (n > (size_t)UINT32_MAX - 1u || rcgc__olist_reserve(h, work, n) != 0 ||
            rcgc__olist_reserve(h, g, n > g->len ? n - g->len : 0) != 0)
            return RCGC_ENOMEM;
        for (int i = 0; i < 3; i++)
            before[i] = rcgc__olist_size(L(h, i));
        work_fill w = {work->items, 0};
        for (int i = 0; i <= 2; i++) {
            rcgc__olist *y = L(h, i);
            for (uint32_t j = 0; j < y->len; j++)
                if (y->items[j] != NULL)
                    gather_one(y->items[j], &w);
            y->len = 0;
            y->holes = 0;
        }
        *in_place = g->resident > 0;
        if (*in_place)
            (void)rcgc__pools_each_block_inline(&h->pools, mark_block, NULL);
        g->resident = 0;
        g->settled = false;
        work->len = w.len;
        *refs_ready = true;
        return 0;
    }
    if (rcgc__olist_reserve(h, g, n - rcgc__olist_size(g)) != 0 ||
        rcgc__olist_reserve(h, L(h, old), n) != 0)
        return RCGC_ENOMEM;
    for (int i = 0; i < 3; i++)
        before[i] = rcgc__olist_size(L(h, i));
    /* The collected generation's array becomes WORK; younger ones are appended. */
    rcgc__olist tmp = *work;
    *work = *g;
    *g = tmp;
    for (int i = 0; i < gen; i++) {
        rcgc__olist *y = L(h, i);
        if (y->len == 0)
            continue;
        memcpy(work->items + work->len, y->items, y->len * sizeof(void *));
        work->len += y->len;
        y->len = 0;
    }
    return 0;
}

/* ---- legacy finalizers ---- */

static int visit_move_legacy(void *child, void *arg)
{
    pass *p = arg;
    if (child == NULL || !(rcgc__flags(child) & RCGC__F_COLLECTING))
        return 0;
    rcgc__clear_flag(child, RCGC__F_COLLECTING);
    rcgc__olist_remove(p->h, child);
    rcgc__olist_push_reserved(p->h, RCGC__L_LEGACY, child);
    return 0;
}

/* Moves the unreachable objects with legacy_del, and all they reach, to LEGACY.
 * Returns 0, or RCGC_ENOMEM with nothing moved when LEGACY cannot hold them. */
static int move_legacy_finalizers(rcgc_heap *h)
{
    rcgc__olist *work = L(h, RCGC__L_WORK);
    rcgc__olist *legacy = L(h, RCGC__L_LEGACY);
    bool any = false;
    for (uint32_t i = 0; i < work->len && !any; i++)
        any = rcgc__type(work->items[i])->legacy_del != NULL;
    if (!any)
        return 0;
    /* Room for the whole unreachable set: the moves below then cannot fail. */
    if (rcgc__olist_reserve(h, legacy, work->len) != 0)
        return RCGC_ENOMEM;
    for (uint32_t i = work->len; i-- > 0;) {
        void *obj = work->items[i];
        if (rcgc__type(obj)->legacy_del == NULL)
            continue;
        rcgc__clear_flag(obj, RCGC__F_COLLECTING);
        rcgc__olist_remove(h, obj);
        rcgc__olist_push_reserved(h, RCGC__L_LEGACY, obj);
    }
    pass p = {.h = h, .dest = RCGC__L_LEGACY};
    for (uint32_t j = 0; j < legacy->len; j++) {
        void *obj = legacy->items[j];
        rcgc__type(obj)->traverse(obj, visit_move_legacy, &p);
    }
    return 0;
}

/* ---- events ---- */

static void emit_objects(rcgc_heap *h, unsigned list, rcgc_event_kind kind, int gen)
{
    rcgc__olist *l = L(h, list);
    for (uint32_t i = 0; i < l->len; i++) {
        void *obj = l->items[i];
        if (obj == NULL)
            continue;
        rcgc_event ev = {.kind = kind, .generation = gen, .object = obj};
        ev.type = rcgc__type(obj);
        rcgc__emit(h, &ev);
    }
}

/* ---- the collection ---- */

/* gc_collect_main. Pre: h->collecting set. Returns unreachable objects found. */
static ssize_t collect_main(rcgc_heap *h, int gen, rcgc_collect_info *info)
{
    uint64_t t0 = rcgc__now_ns();
    unsigned old = gen < 2 ? (unsigned)gen + 1u : 2u;
    size_t before[3];
#ifdef RCGC_DEBUG_INVARIANTS
    rcgc__heap_check(h);
#endif
    bool refs_ready, in_place;
    if (gather(h, gen, old, before, &refs_ready, &in_place) != 0)
        return RCGC_ENOMEM;
    bool direct = gen == 2 && rcgc__residency_pays(h, before[0] + before[1] + before[2]);
    rcgc_event start = {.kind = RCGC_EVENT_COLLECT_START, .generation = gen};
    memcpy(start.count, before, sizeof before);
    rcgc__emit(h, &start);

    if (gen + 1 < 3)
        h->count[gen + 1]++;
    for (int i = 0; i <= gen; i++)
        h->count[i] = 0;

    ssize_t survivors = deduce_unreachable(h, old, refs_ready, direct, in_place);
    if (survivors < 0) {
        survive_all(h, old);
        survivors = 0;
    }
    if (gen == 1) {
        h->long_lived_pending += (size_t)survivors;
    } else if (gen == 2) {
        h->long_lived_pending = 0;
        h->long_lived_total = rcgc__olist_size(L(h, 2));
    }

    if (move_legacy_finalizers(h) != 0) {
        /* Out of memory before any user code ran: every candidate survives. */
        survive_all(h, old);
        rcgc_event done = {.kind = RCGC_EVENT_COLLECT_DONE, .generation = gen};
        done.duration_ns = rcgc__now_ns() - t0;
        rcgc__emit(h, &done);
        return RCGC_ENOMEM;
    }

    rcgc__olist *work = L(h, RCGC__L_WORK);
    rcgc__olist *legacy = L(h, RCGC__L_LEGACY);
    if (h->debug & RCGC_DEBUG_COLLECTABLE)
        emit_objects(h, RCGC__L_WORK, RCGC_EVENT_COLLECTABLE, gen);

    /* From here on user code runs: objects may die under our feet. */
    rcgc__olist_pin(work);
    rcgc__olist_pin(legacy);
    size_t m = 0;

    /* handle_weakrefs: clear every weak reference to or of trash, then call the
     * callbacks of the cleared ones that are not trash themselves. */
    void *to_call = NULL;
    /* A resurrection needs user code: without any, the second analysis is skipped. An
     * event hook that got COLLECTABLE objects may have kept one. */
    bool user_ran = (h->debug & RCGC_DEBUG_COLLECTABLE) && h->event_hooks.len > 0;
    for (uint32_t i = 0; i < work->len; i++)
        if (work->items[i] != NULL)
            rcgc__weakrefs_clear_for_collect(h, work->items[i], &to_call);
    user_ran = user_ran || to_call != NULL;
    m += rcgc__weakrefs_run_callbacks(h, to_call);

    /* finalize_garbage: every PEP 442 finalizer, once per object, before any clear. */
    for (uint32_t i = 0; i < work->len; i++) {
        void *obj = work->items[i];
        if (obj == NULL)
            continue;
        const rcgc_type *t = rcgc__type(obj);
        if (t->finalize == NULL || (rcgc__flags(obj) & RCGC__F_FINALIZED))
            continue;
        rcgc__set_flag(obj, RCGC__F_FINALIZED);
        user_ran = true;
        rcgc_incref(obj);
        t->finalize(obj);
        rcgc_decref(obj);
    }

    /* handle_resurrected_objects: the analysis again, on current refcounts. */
    if (user_ran && deduce_unreachable(h, old, false, direct, false) < 0) {
        rcgc__olist_compact(work);
        survive_all(h, old);
    }
    /* 3.14.7: weak references that finalizers made to the remaining trash are cleared
     * without callbacks before anything is cleared. */
    for (uint32_t i = 0; i < work->len; i++)
        if (work->items[i] != NULL)
            rcgc__weakrefs_clear_for_collect(h, work->items[i], NULL);
    m += rcgc__olist_size(work);

    /* delete_garbage: break the cycles; what survives its clear goes to `old`. */
    for (uint32_t i = 0; i < work->len; i++) {
        void *obj = work->items[i];
        if (obj == NULL)
            continue;
        if (h->debug & RCGC_DEBUG_SAVEALL) {
            if (rcgc__grow(h, (void **)&h->garbage, &h->garbage_cap, h->garbage_len + 1,
                           sizeof(void *)) == 0) {
                rcgc_incref(obj);
                h->garbage[h->garbage_len++] = obj;
            }
        } else if (rcgc__type(obj)->clear != NULL) {
            rcgc_incref(obj);
            rcgc__type(obj)->clear(obj);
            rcgc_decref(obj);
        }
        if (work->items[i] == obj) {
            rcgc__clear_flag(obj, RCGC__F_COLLECTING);
            rcgc__olist_remove(h, obj);
            rcgc__olist_push_reserved(h, old, obj);
        }
    }

    /* The uncollectable: reported, then kept alive by the garbage list in `old`. */
    size_t n = rcgc__olist_size(legacy);
    if (h->debug & RCGC_DEBUG_UNCOLLECTABLE)
        emit_objects(h, RCGC__L_LEGACY, RCGC_EVENT_UNCOLLECTABLE, gen);
    for (uint32_t i = 0; i < legacy->len; i++) {
        void *obj = legacy->items[i];
        if (obj == NULL)
            continue;
        if ((rcgc__type(obj)->legacy_del != NULL || (h->debug & RCGC_DEBUG_SAVEALL)) &&
            rcgc__grow(h, (void **)&h->garbage, &h->garbage_cap, h->garbage_len + 1,
                       sizeof(void *)) == 0) {
            rcgc_incref(obj);
            h->garbage[h->garbage_len++] = obj;
        }
        if (legacy->items[i] == obj) {
            rcgc__olist_remove(h, obj);
            rcgc__olist_push_reserved(h, old, obj);
        }
    }
    rcgc__olist_unpin(legacy);
    rcgc__olist_unpin(work);

    uint64_t d = rcgc__now_ns() - t0;
    rcgc_gen_stats *st = &h->stats[gen];
    st->collections++;
    st->collected += m;
    st->uncollectable += n;
    st->pause_total_ns += d;
    if (d > st->pause_max_ns)
        st->pause_max_ns = d;
    info->collected = m;
    info->uncollectable = n;
    info->duration_ns = d;
    rcgc_event done = {.kind = RCGC_EVENT_COLLECT_DONE, .generation = gen};
    done.unreachable = n + m;
    done.uncollectable = n;
    done.duration_ns = d;
    rcgc__emit(h, &done);
#ifdef RCGC_DEBUG_INVARIANTS
    rcgc__heap_check(h);
#endif
    return (ssize_t)(n + m);
}

ssize_t rcgc__collect(rcgc_heap *h, int generation, bool quiet)
{
    if (h->collecting || h->walking)
        return 0;
    h->collecting = 1;
    rcgc_collect_info info = {.generation = generation};
    if (!quiet)
        rcgc__run_callbacks(h, RCGC_PHASE_START, &info);
    ssize_t r = collect_main(h, generation, &info);
    /* The survivors that entered GEN2 are in its array (see push_reserved). */
    if (generation == 2 || (generation == 1 && h->lists[RCGC__L_GEN2].settled))
        rcgc__gen2_settle(h);
    rcgc__olists_trim(h, generation);
    if (!quiet)
        rcgc__run_callbacks(h, RCGC_PHASE_STOP, &info);
    h->collecting = 0;
    if (!quiet) {
        rcgc__safepoint_check(h);
        rcgc__snapshot_maybe(h, false);
    }
    return r;
}

ssize_t rcgc_collect(rcgc_heap *h, int generation)
{
    if (h == NULL || generation < 0 || generation > 2)
        return RCGC_EINVAL;
    return rcgc__collect(h, generation, false);
}

void rcgc__collect_automatic(rcgc_heap *h)
{
#ifdef RCGC_GC_STRESS
    bool due = true;
#else
    bool due = h->count[0] > h->threshold[0];
#endif
    if (!due || !h->enabled || h->threshold[0] == 0 || h->collecting || h->walking)
        return;
    /* gc_collect_generations: the oldest generation over its threshold; a full
     * collection only when the long-lived pending objects reach a quarter of the
     * survivors of the last full collection. */
    int gen = 0;
    for (int i = 2; i >= 0; i--) {
        if (h->count[i] > h->threshold[i]) {
            if (i == 2 && h->long_lived_pending < h->long_lived_total / 4)
                continue;
            gen = i;
            break;
        }
    }
    (void)rcgc__collect(h, gen, false);
}
