/* check.c: rcgc__heap_check, the heap invariant checker (see internal.h for the list).
 *
 * Called by the tests after every operation and, in RCGC_DEBUG_INVARIANTS builds, by the
 * collector before and after each collection. It reads everything and changes nothing;
 * each violation goes to the panic hook. */
#include "internal.h"

#include <stdlib.h>

typedef struct {
    rcgc_heap *h;
    size_t errors;
    uint32_t *refs[RCGC__NLISTS]; /* references from tracked objects, per list slot */
    void **res;                   /* GEN2's resident objects, by address */
    uint32_t *res_refs;           /* references to res[i] from tracked objects */
    size_t nres;
} checker;

#define FAIL(c, ...)                                                                           \
    do {                                                                                       \
        (c)->errors++;                                                                         \
        rcgc__panic((c)->h, __VA_ARGS__);                                                      \
    } while (0)

static int cmp_addr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (void *const *)a, y = (uintptr_t) * (void *const *)b;
    return (x > y) - (x < y);
}

static int visit_count(void *child, void *arg)
{
    checker *c = arg;
    if (child == NULL)
        return 0;
    unsigned list = rcgc__list_of(child);
    uint32_t slot = rcgc__head(child)->rcgc__slot;
    if (list == RCGC__L_GEN2 && slot == RCGC__SLOT_RESIDENT && c->res != NULL) {
        void **at = bsearch(&child, c->res, c->nres, sizeof *c->res, cmp_addr);
        if (at != NULL)
            c->res_refs[at - c->res]++;
        return 0;
    }
    if (list == RCGC__L_NONE || c->refs[list] == NULL)
        return 0;
    if (slot < c->h->lists[list].len && c->h->lists[list].items[slot] == child)
        c->refs[list][slot]++;
    return 0;
}

/* What every member of list id must be, wherever it is kept. */
static void check_member(checker *c, void *obj, unsigned id, bool in_collection)
{
    rcgc_heap *h = c->h;
    if (rcgc__is_tracked_list(id) && !rcgc__is_container_type(rcgc__type(obj)))
        FAIL(c, "<%s %p>: a type without traverse in tracked list %u", rcgc__type(obj)->name,
             obj, id);
    if (rcgc__head(obj)->rcgc__refcnt == 0)
        FAIL(c, "<%s %p>: listed with refcount 0", rcgc__type(obj)->name, obj);
    if (!in_collection && (rcgc__flags(obj) & RCGC__F_COLLECTING))
        FAIL(c, "<%s %p>: COLLECTING outside a collection", rcgc__type(obj)->name, obj);
    if (rcgc__site_of(obj)->heap != h)
        FAIL(c, "<%s %p>: belongs to another heap", rcgc__type(obj)->name, obj);
    if ((rcgc__flags(obj) & RCGC__F_WEAKREFS) && rcgc__wtab_get(h, obj) == NULL)
        FAIL(c, "<%s %p>: HAS_WEAKREFS without a table entry", rcgc__type(obj)->name, obj);
}

static int gather_resident(void *obj, void *arg)
{
    checker *c = arg;
    if (c->res != NULL && c->nres < c->h->lists[RCGC__L_GEN2].resident)
        c->res[c->nres] = obj;
    c->nres++;
    return 0;
}

static int check_block(void *b, void *arg)
{
    void *obj = rcgc__resident_in(b);
    return obj != NULL ? gather_resident(obj, arg) : 0;
}

/* The residents: found in the arenas as counted, each a proper GEN2 member, none while
 * GEN2 is not settled. Keeps them (sorted) for check_refcounts when memory allows. */
static size_t check_residents(checker *c, bool in_collection)
{
    rcgc_heap *h = c->h;
    const rcgc__olist *l = &h->lists[RCGC__L_GEN2];
    if (l->resident > 0 && !l->settled && !in_collection)
        FAIL(c, "generation 2: %zu resident objects while not settled", l->resident);
    if (l->resident > 0) {
        /* libc, not the heap's allocator: checking must not shift fault injection. */
        c->res = malloc(l->resident * sizeof *c->res);
        c->res_refs = calloc(l->resident, sizeof *c->res_refs);
        if (c->res == NULL || c->res_refs == NULL) {
            free(c->res);
            free(c->res_refs);
            c->res = NULL;
            c->res_refs = NULL;
        }
    }
    (void)rcgc__pools_each_block(h, check_block, c);
    if (c->nres != l->resident)
        FAIL(c, "generation 2: %zu resident objects counted, %zu in the arenas", l->resident,
             c->nres);
    if (c->res != NULL) {
        size_t n = c->nres < l->resident ? c->nres : l->resident;
        for (size_t i = 0; i < n; i++)
            check_member(c, c->res[i], RCGC__L_GEN2, in_collection);
        qsort(c->res, n, sizeof *c->res, cmp_addr);
        c->nres = n;
    }
    return l->resident;
}

static void check_lists(checker *c, bool in_collection)
{
    rcgc_heap *h = c->h;
    size_t listed = 0;
    for (unsigned id = 0; id < RCGC__NLISTS; id++) {
        rcgc__olist *l = &h->lists[id];
        uint32_t holes = 0;
        if (l->len > l->cap)
            FAIL(c, "list %u: len %u > cap %u", id, l->len, l->cap);
        for (uint32_t i = 0; i < l->len; i++) {
            void *obj = l->items[i];
            if (obj == NULL) {
                holes++;
                continue;
            }
            listed++;
            rcgc_head *hd = rcgc__head(obj);
            if (rcgc__list_of(obj) != id || hd->rcgc__slot != i)
                FAIL(c, "<%s %p>: header says list %u slot %u, found in list %u slot %u",
                     rcgc__type(obj)->name, obj, rcgc__list_of(obj), hd->rcgc__slot, id, i);
            check_member(c, obj, id, in_collection);
        }
        if (holes != l->holes)
            FAIL(c, "list %u: %u holes counted, %u recorded", id, holes, l->holes);
        if (holes > 0 && l->pins == 0)
            FAIL(c, "list %u: holes in an unpinned list", id);
    }
    listed += check_residents(c, in_collection);
    if (!in_collection && (h->lists[RCGC__L_WORK].len || h->lists[RCGC__L_LEGACY].len))
        FAIL(c, "working lists not empty outside a collection");
    size_t live = rcgc__nobjects(h);
    if (listed + h->unlisted + h->trash_len != live && h->dealloc_depth == 0)
        FAIL(c, "%zu objects listed, %zu unlisted, %zu live", listed, h->unlisted, live);
}

static void check_census(checker *c)
{
    rcgc_heap *h = c->h;
    size_t site_live = 0;
    for (size_t i = 0; i < h->sites_cap; i++)
        if (h->sites[i] != NULL)
            site_live += h->sites[i]->live;
    /* Every live object holds one block: a pool block or one from the hooks. */
    size_t blocks = h->pools.large_objects;
    for (const rcgc__arena *a = h->pools.all; a != NULL; a = a->all_next)
        for (uint32_t i = 0; i < a->ncarved; i++)
            blocks += ((const rcgc__pool *)(const void *)(a->base + i * RCGC__POOL_SIZE))->ref;
    if (site_live != blocks)
        FAIL(c, "sites count %zu objects, the allocator %zu blocks", site_live, blocks);
}

/* Every refcount must cover the references tracked objects hold (CPython's "refcount
 * is too small" check, over the whole heap). */
static void check_refcounts(checker *c)
{
    rcgc_heap *h = c->h;
    bool ok = true;
    for (unsigned id = 0; id < RCGC__NLISTS && ok; id++) {
        size_t n = h->lists[id].len;
        if (n == 0)
            continue;
        /* libc, not the heap's allocator: checking must not shift fault injection. */
        c->refs[id] = calloc(n, sizeof(uint32_t));
        if (c->refs[id] == NULL)
            ok = false;
    }
    if (ok) {
        for (unsigned id = 0; id <= RCGC__L_LEGACY; id++) {
            rcgc__olist *l = &h->lists[id];
            for (uint32_t i = 0; i < l->len; i++)
                if (l->items[i] != NULL)
                    rcgc__type(l->items[i])->traverse(l->items[i], visit_count, c);
        }
        for (size_t i = 0; c->res != NULL && i < c->nres; i++)
            rcgc__type(c->res[i])->traverse(c->res[i], visit_count, c);
        for (size_t i = 0; c->res != NULL && i < c->nres; i++)
            if (c->res_refs[i] > rcgc__head(c->res[i])->rcgc__refcnt)
                FAIL(c,
                     "refcount is too small: resident <%s %p> has refcount %u, %u references",
                     rcgc__type(c->res[i])->name, c->res[i],
                     (unsigned)rcgc__head(c->res[i])->rcgc__refcnt, c->res_refs[i]);
        for (unsigned id = 0; id < RCGC__NLISTS; id++) {
            rcgc__olist *l = &h->lists[id];
            for (uint32_t i = 0; i < l->len; i++) {
                void *obj = l->items[i];
                if (obj != NULL && c->refs[id][i] > rcgc__head(obj)->rcgc__refcnt)
                    FAIL(c,
                         "refcount is too small\nobject address  : %p\n"
                         "object refcount : %u\nobject type name: %s\n"
                         "references from tracked objects: %u",
                         obj, (unsigned)rcgc__head(obj)->rcgc__refcnt, rcgc__type(obj)->name,
                         c->refs[id][i]);
            }
        }
    }
    for (unsigned id = 0; id < RCGC__NLISTS; id++)
        free(c->refs[id]);
}

size_t rcgc__heap_check(rcgc_heap *h)
{
    if (h == NULL)
        return 0;
    checker c = {.h = h};
    bool in_collection = h->collecting != 0;
    check_lists(&c, in_collection);
    check_census(&c);
    if (!in_collection)
        check_refcounts(&c);
    free(c.res);
    free(c.res_refs);
    return c.errors + rcgc__pools_check(h);
}
