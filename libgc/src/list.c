/* list.c: object lists, the dense arrays that hold every object of a heap.
 *
 * An object's header names its list and its slot in it, so removal is O(1): the last
 * entry moves into the hole. While a list is pinned (iterated by code that may run user
 * callbacks) removal leaves a NULL hole instead, so iteration by index stays valid;
 * the holes are squeezed out when the last pin goes. */
#include "internal.h"

#define RCGC__LIST_MAX ((size_t)UINT32_MAX - 1u)

int rcgc__olist_reserve(rcgc_heap *h, rcgc__olist *l, size_t extra)
{
    size_t need = (size_t)l->len + extra;
    if (need <= l->cap)
        return 0;
    if (need > RCGC__LIST_MAX)
        return RCGC_ENOMEM;
    size_t cap = l->cap;
    if (rcgc__grow(h, (void **)&l->items, &cap, need, sizeof(void *)) != 0)
        return RCGC_ENOMEM;
    l->cap = cap > RCGC__LIST_MAX ? (uint32_t)RCGC__LIST_MAX : (uint32_t)cap;
    return 0;
}

int rcgc__olist_push(rcgc_heap *h, unsigned list, void *obj)
{
    rcgc__olist *l = &h->lists[list];
    if (RCGC_UNLIKELY(l->len == l->cap) && rcgc__olist_reserve(h, l, 1) != 0)
        return RCGC_ENOMEM;
    rcgc__olist_push_reserved(h, list, obj);
    return 0;
}

void rcgc__olist_compact(rcgc__olist *l)
{
    if (l->holes == 0)
        return;
    uint32_t j = 0;
    for (uint32_t i = 0; i < l->len; i++) {
        void *obj = l->items[i];
        if (obj == NULL)
            continue;
        l->items[j] = obj;
        rcgc__head(obj)->rcgc__slot = j;
        j++;
    }
    l->len = j;
    l->holes = 0;
}

void rcgc__olist_pin(rcgc__olist *l)
{
    l->pins++;
}

void rcgc__olist_unpin(rcgc__olist *l)
{
    if (--l->pins == 0)
        rcgc__olist_compact(l);
}

int rcgc__move(rcgc_heap *h, void *obj, unsigned to)
{
    rcgc__olist *l = &h->lists[to];
    if (l->len == l->cap && rcgc__olist_reserve(h, l, 1) != 0)
        return RCGC_ENOMEM;
    rcgc__olist_remove(h, obj);
    rcgc__olist_push_reserved(h, to, obj);
    return 0;
}

/* Gives back the tail of arrays that collections left mostly empty: a list over
 * RCGC__TRIM_MIN entries that is less than a quarter full shrinks to twice its length
 * (a failed realloc keeps it). The collection's scratch lists (WORK, LEGACY) are empty
 * after every collection: a full one's scratch is not kept for the next (which allocates
 * it again), or the memory residency saves would be held anyway. */
#define RCGC__TRIM_MIN 1024u
void rcgc__olists_trim(rcgc_heap *h, int generation)
{
    (void)generation;
    for (unsigned i = 0; i < RCGC__NLISTS; i++) {
        rcgc__olist *l = &h->lists[i];
        if (l->pins > 0 || l->cap <= RCGC__TRIM_MIN || l->len >= l->cap / 4)
            continue;
        size_t ncap = (size_t)l->len * 2 < RCGC__TRIM_MIN ? RCGC__TRIM_MIN : (size_t)l->len * 2;
        void *p = rcgc__realloc(h, l->items, l->cap * sizeof(void *), ncap * sizeof(void *));
        if (p == NULL)
            continue;
        l->items = p;
        l->cap = (uint32_t)ncap;
    }
}

/* ---- the resident objects of GEN2 ---- */

typedef struct {
    int (*fn)(void *obj, void *arg);
    void *arg;
} residents_ctx;

static int visit_block(void *b, void *arg)
{
    residents_ctx *c = arg;
    void *obj = rcgc__resident_in(b);
    return obj != NULL ? c->fn(obj, c->arg) : 0;
}

int rcgc__residents_each(rcgc_heap *h, int (*fn)(void *obj, void *arg), void *arg)
{
    if (h->lists[RCGC__L_GEN2].resident == 0)
        return 0;
    residents_ctx c = {fn, arg};
    return rcgc__pools_each_block(h, visit_block, &c);
}

bool rcgc__is_resident(rcgc_heap *h, const void *p)
{
    if (h->lists[RCGC__L_GEN2].resident == 0 || ((uintptr_t)p & 15u) != 0)
        return false;
    const char *hd = (const char *)p - sizeof(rcgc_head);
    /* The block starts at the header, or at the prefix of a var-size object. */
    void *b = rcgc__pools_block_at(h, hd);
    if (b == NULL)
        b = rcgc__pools_block_at(h, hd - RCGC__VARSIZE_PREFIX);
    return b != NULL && rcgc__resident_in(b) == p;
}

static int push_resident(void *obj, void *arg)
{
    rcgc__olist *l = arg;
    if (l->len == l->cap)
        return 1; /* more residents than counted: the count is wrong */
    uint32_t slot = l->len++;
    l->items[slot] = obj;
    rcgc__head(obj)->rcgc__slot = slot;
    return 0;
}

int rcgc__gen2_materialize(rcgc_heap *h)
{
    rcgc__olist *l = &h->lists[RCGC__L_GEN2];
    if (l->resident == 0) {
        l->settled = false;
        return 0;
    }
    /* A walk run by a finalizer or callback of a collection must leave the room that
     * the collection reserved in GEN2 for its survivors (push_reserved relies on it). */
    size_t keep = h->collecting ? (size_t)(l->cap - l->len) : 0;
    if (rcgc__olist_reserve(h, l, l->resident + keep) != 0)
        return RCGC_ENOMEM;
    uint32_t before = l->len, cap = l->cap;
    l->cap = before + (uint32_t)l->resident; /* push_resident stops at the counted number */
    int overflow = rcgc__residents_each(h, push_resident, l);
    l->cap = cap;
    size_t found = l->len - before;
    if (overflow != 0 || found != l->resident)
        rcgc__panic(h, "generation 2: %zu resident objects counted, %s%zu in the arenas",
                    l->resident, overflow ? "more than " : "", found);
    l->resident = 0;
    l->settled = false;
    return 0;
}

bool rcgc__residency_pays(const rcgc_heap *h, size_t gen2)
{
#ifdef RCGC__RESIDENCY
    /* Finding the residents scans every pool block: it pays while they are at least
     * half of the pool objects. Otherwise (say, a few containers among many untracked
     * objects) GEN2 stays an array, and a full collection costs O(tracked) as in
     * CPython. */
    return !h->pools.disabled && gen2 * 2 >= rcgc__nobjects(h) - h->pools.large_objects;
#else
    (void)h;
    (void)gen2;
    return false;
#endif
}

void rcgc__gen2_settle(rcgc_heap *h)
{
#ifdef RCGC__RESIDENCY
    rcgc__olist *l = &h->lists[RCGC__L_GEN2];
    if (l->pins > 0 || h->pools.disabled)
        return;
    if (l->resident == 0 && !rcgc__residency_pays(h, rcgc__olist_size(l))) {
        l->settled = false;
        return;
    }
    uint32_t k = 0;
    for (uint32_t i = 0; i < l->len; i++) {
        void *obj = l->items[i];
        if (obj == NULL)
            continue;
        if (rcgc__in_pools(&h->pools, obj)) {
            rcgc__head(obj)->rcgc__slot = RCGC__SLOT_RESIDENT;
            l->resident++;
        } else {
            l->items[k] = obj;
            rcgc__head(obj)->rcgc__slot = k;
            k++;
        }
    }
    l->len = k;
    l->holes = 0;
    l->settled = true;
#else
    (void)h;
#endif
}
