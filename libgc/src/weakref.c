/* weakref.c: weak references, their table and their clearing.
 *
 * A weak reference is an rcgc object of the built-in type "weakref" (tracked, so that a
 * weak reference that is itself trash is known as such). The weak references to one
 * target form a doubly linked chain, newest first, whose head is found in a per-heap
 * hash table keyed by the target; the target's HAS_WEAKREFS bit says an entry exists,
 * so objects without weak references never pay for a look-up.
 *
 * Rules (CPython 3.14.7): a weak reference is cleared before any callback runs; a
 * callback runs only when its weak reference is alive and not trash; the collector
 * clears all weak references to and of trash before any callback and any finalizer. */
#include "internal.h"

typedef struct wref {
    void *target; /* borrowed; NULL once cleared */
    rcgc_weakref_cb cb;
    void *arg;
    struct wref *prev, *next; /* the chain of weak references to target, newest first */
    struct wref *call_next;   /* a queue of callbacks to run */
} wref;

static int wref_traverse(void *self, rcgc_visit_fn visit, void *arg)
{
    /* A weak reference holds no strong reference; it is a container only so that the
     * collector can tell when it is trash. */
    (void)self;
    (void)visit;
    (void)arg;
    return 0;
}

static void wref_dealloc(void *self);

const rcgc_type rcgc__weakref_type = {
    .name = "weakref",
    .size = sizeof(wref),
    .traverse = wref_traverse,
    .dealloc = wref_dealloc,
};

/* ---- the table: target -> newest weak reference (linear probing) ---- */

static size_t ptr_hash(const void *p)
{
    uintptr_t x = ((uintptr_t)p >> 4) * 0x9E3779B97F4A7C15u;
    return (size_t)(x ^ (x >> 31));
}

static size_t wtab_find(const struct rcgc__wtab *t, const void *obj)
{
    size_t mask = t->cap - 1;
    size_t i = ptr_hash(obj) & mask;
    while (t->keys[i] != NULL && t->keys[i] != obj)
        i = (i + 1) & mask;
    return i;
}

void *rcgc__wtab_get(rcgc_heap *h, const void *obj)
{
    if (h->wtab.cap == 0)
        return NULL;
    size_t i = wtab_find(&h->wtab, obj);
    return h->wtab.keys[i] ? h->wtab.vals[i] : NULL;
}

/* Makes room for one more entry. Returns 0 or RCGC_ENOMEM. */
static int wtab_reserve(rcgc_heap *h)
{
    struct rcgc__wtab *t = &h->wtab;
    if ((t->len + 1) * 4 <= t->cap * 3)
        return 0;
    size_t ncap = t->cap ? t->cap * 2 : 16;
    void **keys = rcgc__malloc(h, ncap * sizeof(void *));
    void **vals = keys ? rcgc__malloc(h, ncap * sizeof(void *)) : NULL;
    if (vals == NULL) {
        rcgc__free(h, keys, ncap * sizeof(void *));
        return RCGC_ENOMEM;
    }
    memset(keys, 0, ncap * sizeof(void *));
    struct rcgc__wtab nt = {keys, vals, ncap, t->len};
    for (size_t i = 0; i < t->cap; i++) {
        if (t->keys[i] == NULL)
            continue;
        size_t j = wtab_find(&nt, t->keys[i]);
        nt.keys[j] = t->keys[i];
        nt.vals[j] = t->vals[i];
    }
    rcgc__free(h, t->keys, t->cap * sizeof(void *));
    rcgc__free(h, t->vals, t->cap * sizeof(void *));
    *t = nt;
    return 0;
}

static void wtab_set(rcgc_heap *h, void *obj, void *val)
{
    struct rcgc__wtab *t = &h->wtab;
    size_t i = wtab_find(t, obj);
    if (t->keys[i] == NULL) {
        t->keys[i] = obj;
        t->len++;
    }
    t->vals[i] = val;
}

static void wtab_del(rcgc_heap *h, const void *obj)
{
    struct rcgc__wtab *t = &h->wtab;
    if (t->cap == 0)
        return;
    size_t mask = t->cap - 1;
    size_t i = wtab_find(t, obj);
    if (t->keys[i] == NULL)
        return;
    t->keys[i] = NULL;
    t->len--;
    /* Backward-shift deletion keeps every probe chain unbroken without tombstones. */
    for (size_t j = (i + 1) & mask; t->keys[j] != NULL; j = (j + 1) & mask) {
        size_t home = ptr_hash(t->keys[j]) & mask;
        bool between = i <= j ? (i < home && home <= j) : (i < home || home <= j);
        if (between)
            continue;
        t->keys[i] = t->keys[j];
        t->vals[i] = t->vals[j];
        t->keys[j] = NULL;
        i = j;
    }
}

void rcgc__wtab_free(rcgc_heap *h)
{
    rcgc__free(h, h->wtab.keys, h->wtab.cap * sizeof(void *));
    rcgc__free(h, h->wtab.vals, h->wtab.cap * sizeof(void *));
    memset(&h->wtab, 0, sizeof h->wtab);
}

/* ---- the chain ---- */

/* Unlinks w from its target's chain and clears it. */
static void wref_unlink(rcgc_heap *h, wref *w)
{
    void *target = w->target;
    if (w->prev != NULL) {
        w->prev->next = w->next;
    } else if (w->next != NULL) {
        wtab_set(h, target, w->next);
    } else {
        wtab_del(h, target);
        rcgc__clear_flag(target, RCGC__F_WEAKREFS);
    }
    if (w->next != NULL)
        w->next->prev = w->prev;
    w->target = NULL;
    w->prev = w->next = NULL;
}

void rcgc__weakref_detach(rcgc_heap *h, void *obj)
{
    if (rcgc__type(obj) == &rcgc__weakref_type && ((wref *)obj)->target != NULL)
        wref_unlink(h, obj);
}

static void wref_dealloc(void *self)
{
    wref *w = self;
    if (w->target != NULL)
        wref_unlink(rcgc_heap_of(self), w);
    w->cb = NULL;
}

/* Detaches the whole chain of obj; returns its head. */
static wref *chain_take(rcgc_heap *h, void *obj)
{
    wref *head = rcgc__wtab_get(h, obj);
    wtab_del(h, obj);
    rcgc__clear_flag(obj, RCGC__F_WEAKREFS);
    return head;
}

/* ---- public calls ---- */

RCGC__ALLOC_PATH void *rcgc_weakref_new(rcgc_heap *h, void *target, rcgc_weakref_cb cb,
                                        void *arg)
{
    if (h == NULL || target == NULL || rcgc_heap_of(target) != h || rcgc_refcount(target) == 0)
        return NULL;
    wref *w = rcgc__new(h, &rcgc__weakref_type, "<rcgc>", 0);
    if (w == NULL)
        return NULL;
    /* Reserved after the allocation: its automatic collection may run finalizers that
     * make weak references of their own. */
    if (wtab_reserve(h) != 0) {
        rcgc_decref(w);
        return NULL;
    }
    wref *head = (rcgc__flags(target) & RCGC__F_WEAKREFS) ? rcgc__wtab_get(h, target) : NULL;
    w->target = target;
    w->cb = cb;
    w->arg = arg;
    w->next = head;
    if (head != NULL)
        head->prev = w;
    wtab_set(h, target, w);
    rcgc__set_flag(target, RCGC__F_WEAKREFS);
    return w;
}

bool rcgc_is_weakref(const void *obj)
{
    return obj != NULL && rcgc__type(obj) == &rcgc__weakref_type;
}

void *rcgc_weakref_get(void *ref)
{
    if (!rcgc_is_weakref(ref))
        return NULL;
    void *t = ((wref *)ref)->target;
    if (t == NULL || rcgc_refcount(t) == 0)
        return NULL;
    rcgc_incref(t);
    return t;
}

size_t rcgc_weakref_count(const void *obj)
{
    if (obj == NULL || !(rcgc__flags(obj) & RCGC__F_WEAKREFS))
        return 0;
    size_t n = 0;
    for (wref *w = rcgc__wtab_get(rcgc_heap_of(obj), obj); w != NULL; w = w->next)
        n++;
    return n;
}

/* ---- clearing ---- */

/* Runs a queue of callbacks (each weak reference holds a reference we took) in queue
 * order; returns how many of the weak references died when we let go of them. */
static size_t run_queue(wref *q)
{
    size_t freed = 0;
    while (q != NULL) {
        wref *w = q;
        q = w->call_next;
        w->call_next = NULL;
        rcgc_weakref_cb cb = w->cb;
        w->cb = NULL;
        if (cb != NULL)
            cb(w, w->arg);
        if (rcgc_refcount(w) == 1)
            freed++;
        rcgc_decref(w);
    }
    return freed;
}

void rcgc__weakrefs_clear(rcgc_heap *h, void *obj, bool callbacks)
{
    wref *w = chain_take(h, obj);
    wref *q = NULL, **tail = &q;
    /* Clear them all before any callback runs; queue the callbacks newest first. */
    while (w != NULL) {
        wref *next = w->next;
        w->target = NULL;
        w->prev = w->next = NULL;
        if (callbacks && w->cb != NULL && rcgc_refcount(w) > 0) {
            rcgc_incref(w);
            *tail = w;
            tail = &w->call_next;
        } else {
            w->cb = NULL;
        }
        w = next;
    }
    (void)run_queue(q);
}

void rcgc__weakrefs_clear_for_collect(rcgc_heap *h, void *obj, void **to_call)
{
    if (rcgc__type(obj) == &rcgc__weakref_type) {
        /* A weak reference that is itself trash is cleared; its callback never runs. */
        wref *self = obj;
        if (self->target != NULL)
            wref_unlink(h, self);
    }
    if (!(rcgc__flags(obj) & RCGC__F_WEAKREFS))
        return;
    wref *w = chain_take(h, obj);
    while (w != NULL) {
        wref *next = w->next;
        w->target = NULL;
        w->prev = w->next = NULL;
        if (to_call != NULL && w->cb != NULL && !(rcgc__flags(w) & RCGC__F_COLLECTING) &&
            rcgc_refcount(w) > 0) {
            rcgc_incref(w);
            w->call_next = *to_call; /* pushed; run_callbacks restores the order */
            *to_call = w;
        } else if (to_call == NULL) {
            w->cb = NULL;
        }
        w = next;
    }
}

size_t rcgc__weakrefs_run_callbacks(rcgc_heap *h, void *to_call)
{
    (void)h;
    wref *rev = NULL;
    for (wref *w = to_call; w != NULL;) {
        wref *next = w->call_next;
        w->call_next = rev;
        rev = w;
        w = next;
    }
    return run_queue(rev);
}
