/* walk.c: walks over a heap's objects (get_objects, get_referrers, get_referents), the
 * census, and freezing.
 *
 * A walk pins the lists it iterates, so that a visitor that untracks or frees objects
 * cannot move entries under it, and refuses collections while it runs (h->walking).
 * A walk of generation 2 first puts its resident objects back into the array (they
 * become resident again at the next full collection).
 * The frozen generation is invisible to walks, as gc.get_objects hides it. */
#include "internal.h"

typedef struct {
    const void *target;
    bool found;
} find_ctx;

static int visit_find(void *child, void *arg)
{
    find_ctx *c = arg;
    if (child == c->target) {
        c->found = true;
        return 1;
    }
    return 0;
}

/* Calls fn on each object of generations lo..hi; for referrers, only on those whose
 * traverse visits target. Returns 0 or the visitor's non-zero result. */
static int walk_gens(rcgc_heap *h, int lo, int hi, const void *target, rcgc_visit_fn fn,
                     void *arg)
{
    if (hi == 2 && rcgc__gen2_materialize(h) != 0)
        return RCGC_ENOMEM;
    int r = 0;
    h->walking++;
    for (int g = lo; g <= hi && r == 0; g++) {
        rcgc__olist *l = &h->lists[g];
        rcgc__olist_pin(l);
        uint32_t end = l->len; /* objects re-tracked by the visitor land past the end */
        for (uint32_t i = 0; i < end && r == 0; i++) {
            void *obj = l->items[i];
            if (obj == NULL)
                continue;
            if (target != NULL) {
                find_ctx c = {target, false};
                rcgc__type(obj)->traverse(obj, visit_find, &c);
                if (!c.found)
                    continue;
            }
            r = fn(obj, arg);
        }
        rcgc__olist_unpin(l);
    }
    h->walking--;
    return r;
}

int rcgc_get_objects(rcgc_heap *h, int generation, rcgc_visit_fn fn, void *arg)
{
    if (h == NULL || fn == NULL || generation < -1 || generation > 2)
        return RCGC_EINVAL;
    int lo = generation < 0 ? 0 : generation;
    int hi = generation < 0 ? 2 : generation;
    return walk_gens(h, lo, hi, NULL, fn, arg);
}

int rcgc_get_referrers(rcgc_heap *h, const void *target, rcgc_visit_fn fn, void *arg)
{
    if (h == NULL || target == NULL || fn == NULL)
        return RCGC_EINVAL;
    return walk_gens(h, 0, 2, target, fn, arg);
}

int rcgc_get_referents(void *obj, rcgc_visit_fn fn, void *arg)
{
    if (obj == NULL || fn == NULL)
        return RCGC_EINVAL;
    const rcgc_type *t = rcgc__type(obj);
    if (t->traverse == NULL)
        return 0;
    rcgc_heap *h = rcgc__site_of(obj)->heap;
    h->walking++;
    int r = t->traverse(obj, fn, arg);
    h->walking--;
    return r;
}

int rcgc_census(rcgc_heap *h, rcgc_census_fn fn, void *arg)
{
    if (h == NULL || fn == NULL)
        return RCGC_EINVAL;
    /* Each type's counters are the sums over its sites: O(types * sites), no memory. */
    for (size_t i = 0; i < h->ntypes; i++) {
        const rcgc_type *t = h->types[i]->type;
        rcgc_census_entry e = {t, t->name, 0, 0, rcgc__is_container_type(t)};
        e.count = rcgc__type_live(h, t, &e.bytes);
        int r = fn(&e, arg);
        if (r != 0)
            return r;
    }
    return 0;
}

/* ---- freezing ---- */

/* Appends every object of list `from` to list `to` (room reserved by the caller). */
static void move_all(rcgc_heap *h, unsigned from, unsigned to)
{
    rcgc__olist *l = &h->lists[from];
    for (uint32_t i = 0; i < l->len; i++)
        if (l->items[i] != NULL)
            rcgc__olist_push_reserved(h, to, l->items[i]);
    l->len = 0;
    l->holes = 0;
}

void rcgc_freeze(rcgc_heap *h)
{
    /* Lists in use by a collection or a walk cannot move; memory exhaustion leaves the
     * heap as it was. */
    if (h->collecting || h->walking || rcgc__gen2_materialize(h) != 0)
        return;
    size_t n = 0;
    for (unsigned g = 0; g < 3; g++)
        n += rcgc__olist_size(&h->lists[g]);
    if (rcgc__olist_reserve(h, &h->lists[RCGC__L_PERM], n) != 0)
        return;
    for (unsigned g = 0; g < 3; g++)
        move_all(h, g, RCGC__L_PERM);
    memset(h->count, 0, sizeof h->count);
}

void rcgc_unfreeze(rcgc_heap *h)
{
    if (h->collecting || h->walking)
        return;
    if (rcgc__olist_reserve(h, &h->lists[RCGC__L_GEN2],
                            rcgc__olist_size(&h->lists[RCGC__L_PERM])) != 0)
        return;
    move_all(h, RCGC__L_PERM, RCGC__L_GEN2);
}

size_t rcgc_get_freeze_count(const rcgc_heap *h)
{
    return rcgc__olist_size(&h->lists[RCGC__L_PERM]);
}
