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
 * (a failed realloc keeps it). The collection's scratch lists (WORK, LEGACY) are kept
 * after a full collection, whose next run needs them at full size again, and trimmed
 * after a young one. */
#define RCGC__TRIM_MIN 1024u
void rcgc__olists_trim(rcgc_heap *h, int generation)
{
    for (unsigned i = 0; i < RCGC__NLISTS; i++) {
        rcgc__olist *l = &h->lists[i];
        if (l->pins > 0 || l->cap <= RCGC__TRIM_MIN || l->len >= l->cap / 4)
            continue;
        if ((i == RCGC__L_WORK || i == RCGC__L_LEGACY) && generation == 2)
            continue;
        size_t ncap = (size_t)l->len * 2 < RCGC__TRIM_MIN ? RCGC__TRIM_MIN : (size_t)l->len * 2;
        void *p = rcgc__realloc(h, l->items, l->cap * sizeof(void *), ncap * sizeof(void *));
        if (p == NULL)
            continue;
        l->items = p;
        l->cap = (uint32_t)ncap;
    }
}
