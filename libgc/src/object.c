/* object.c: allocation, tracking and the death of objects on the refcount path.
 *
 * Every header points at a site record: one per (heap, type, file:line). The site gives
 * the type, the heap and the census counters in O(1), and is the allocation site the
 * rcgc_new macro recorded. A death follows CPython's subtype_dealloc: finalize (once for
 * containers, may resurrect), weak references cleared and their callbacks run,
 * legacy_del (may resurrect), dealloc, free. The trashcan bounds the C stack: a death
 * nested deeper than RCGC__TRASH_DEPTH is deferred and run when the stack unwinds. */
#include "internal.h"

#define RCGC__TRASH_DEPTH 50 /* nested deaths before deferring (CPython's unwind level) */

/* ---- sites and type records ---- */

static size_t site_hash(const rcgc_type *t, const char *file, int line)
{
    uintptr_t x = (uintptr_t)t * 0x9E3779B97F4A7C15u;
    x ^= (uintptr_t)file * 0xC2B2AE3D27D4EB4Fu;
    x ^= (uintptr_t)(unsigned)line * 0x165667B19E3779F9u;
    return (size_t)(x ^ (x >> 29));
}

static rcgc__typerec *typerec_get(rcgc_heap *h, const rcgc_type *t)
{
    for (size_t i = 0; i < h->ntypes; i++)
        if (h->types[i]->type == t)
            return h->types[i];
    if (rcgc__grow(h, (void **)&h->types, &h->types_cap, h->ntypes + 1, sizeof(void *)) != 0)
        return NULL;
    rcgc__typerec *tr = rcgc__malloc(h, sizeof *tr);
    if (tr == NULL)
        return NULL;
    memset(tr, 0, sizeof *tr);
    tr->type = t;
    tr->index = h->ntypes;
    h->types[h->ntypes++] = tr;
    return tr;
}

static int sites_rehash(rcgc_heap *h)
{
    size_t ncap = h->sites_cap ? h->sites_cap * 2 : 64;
    rcgc__site **ns = rcgc__malloc(h, ncap * sizeof *ns);
    if (ns == NULL)
        return RCGC_ENOMEM;
    memset(ns, 0, ncap * sizeof *ns);
    for (size_t i = 0; i < h->sites_cap; i++) {
        rcgc__site *s = h->sites[i];
        if (s == NULL)
            continue;
        size_t j = site_hash(s->type, s->file, s->line) & (ncap - 1);
        while (ns[j] != NULL)
            j = (j + 1) & (ncap - 1);
        ns[j] = s;
    }
    rcgc__free(h, h->sites, h->sites_cap * sizeof *h->sites);
    h->sites = ns;
    h->sites_cap = ncap;
    return 0;
}

/* Returns the site record of (t, file, line), creating it; NULL when memory runs out. */
static rcgc__site *site_get(rcgc_heap *h, const rcgc_type *t, const char *file, int line)
{
    size_t hv = site_hash(t, file, line);
    rcgc__site **cache = &h->site_cache[hv & 63u];
    rcgc__site *s = *cache;
    if (RCGC_LIKELY(s != NULL && s->type == t && s->line == line && s->file == file))
        return s;
    if (h->sites_cap != 0) {
        for (size_t j = hv & (h->sites_cap - 1);; j = (j + 1) & (h->sites_cap - 1)) {
            s = h->sites[j];
            if (s == NULL)
                break;
            if (s->type == t && s->line == line && s->file == file) {
                *cache = s;
                return s;
            }
        }
    }
    if ((h->nsites + 1) * 2 > h->sites_cap && sites_rehash(h) != 0)
        return NULL;
    rcgc__typerec *tr = typerec_get(h, t);
    if (tr == NULL)
        return NULL;
    void *raw = rcgc__malloc(h, sizeof(rcgc__site) + RCGC__SITE_ALIGN);
    if (raw == NULL)
        return NULL;
    uintptr_t a = ((uintptr_t)raw + RCGC__SITE_ALIGN - 1) & ~(uintptr_t)(RCGC__SITE_ALIGN - 1);
    s = (rcgc__site *)a;
    memset(s, 0, sizeof *s);
    s->type = t;
    s->heap = h;
    s->tr = tr;
    s->file = file;
    s->line = line;
    s->raw = raw;
    size_t fixed = t->size + sizeof(rcgc_head);
    s->container = rcgc__is_container_type(t);
    s->fast_list = s->container ? RCGC__L_GEN0 : RCGC__L_UNTRACKED;
    if (t->size <= RCGC__SMALL_MAX && fixed <= RCGC__SMALL_MAX && !h->pools.disabled) {
        s->fast_class = rcgc__size_class(fixed) + 1;
        s->fast_zero = (uint16_t)(rcgc__class_size(s->fast_class - 1) - sizeof(rcgc_head));
        s->fast_bytes = (uint16_t)fixed;
        s->plain = t->finalize == NULL && t->legacy_del == NULL;
    }
    s->fast_olist = &h->lists[s->fast_list];
    s->fast_info = (uintptr_t)s | s->fast_list;
    size_t j = hv & (h->sites_cap - 1);
    while (h->sites[j] != NULL)
        j = (j + 1) & (h->sites_cap - 1);
    h->sites[j] = s;
    h->nsites++;
    *cache = s;
    return s;
}

void rcgc__census_fill(const rcgc_heap *h, rcgc_census_entry *out)
{
    for (size_t i = 0; i < h->ntypes; i++) {
        const rcgc_type *t = h->types[i]->type;
        out[i] = (rcgc_census_entry){t, t->name, 0, 0, rcgc__is_container_type(t)};
    }
    for (size_t i = 0; i < h->sites_cap; i++) {
        const rcgc__site *s = h->sites[i];
        if (s != NULL) {
            out[s->tr->index].count += s->live;
            out[s->tr->index].bytes += rcgc__site_bytes(s);
        }
    }
}

size_t rcgc__type_live(const rcgc_heap *h, const rcgc_type *t, size_t *bytes)
{
    size_t live = 0, b = 0;
    for (size_t i = 0; i < h->sites_cap; i++) {
        const rcgc__site *s = h->sites[i];
        if (s != NULL && s->type == t) {
            live += s->live;
            b += rcgc__site_bytes(s);
        }
    }
    if (bytes != NULL)
        *bytes = b;
    return live;
}

size_t rcgc__nobjects(const rcgc_heap *h)
{
    size_t live = 0;
    for (size_t i = 0; i < h->sites_cap; i++)
        if (h->sites[i] != NULL)
            live += h->sites[i]->live;
    return live;
}

void rcgc__sites_free(rcgc_heap *h)
{
    for (size_t i = 0; i < h->sites_cap; i++)
        if (h->sites[i] != NULL)
            rcgc__free(h, h->sites[i]->raw, sizeof(rcgc__site) + RCGC__SITE_ALIGN);
    rcgc__free(h, h->sites, h->sites_cap * sizeof *h->sites);
    for (size_t i = 0; i < h->ntypes; i++)
        rcgc__free(h, h->types[i], sizeof(rcgc__typerec));
    rcgc__free(h, h->types, h->types_cap * sizeof *h->types);
}

/* ---- allocation ---- */

size_t rcgc__object_bytes(const void *obj)
{
    return rcgc__block_bytes(obj);
}

static void *block_start(const void *obj)
{
    char *p = (char *)rcgc__head(obj);
    if (rcgc__flags(obj) & RCGC__F_VARSIZE)
        p -= RCGC__VARSIZE_PREFIX;
    return p;
}

/* Small blocks from the heap's pools, larger ones (or all, with pools disabled) from
 * the allocator hooks. */
static inline void *block_alloc(rcgc_heap *h, size_t bytes)
{
    if (RCGC_LIKELY(bytes <= RCGC__SMALL_MAX && !h->pools.disabled))
        return rcgc__pool_alloc(h, &h->pools, rcgc__size_class(bytes));
    void *p = rcgc__malloc(h, bytes);
    if (p != NULL) {
        h->pools.large_objects++;
        h->pools.large_bytes += bytes;
    }
    return p;
}

static inline void block_free(rcgc_heap *h, void *p, size_t bytes)
{
    if (RCGC_LIKELY(bytes <= RCGC__SMALL_MAX && !h->pools.disabled)) {
        rcgc__pool_free(h, &h->pools, p);
        return;
    }
    h->pools.large_objects--;
    h->pools.large_bytes -= bytes;
    rcgc__free(h, p, bytes);
}

/* memset with constant sizes for the common small payloads (a few stores, no call). */
static inline void zero_payload(void *obj, size_t size)
{
    switch (size) {
    case 0:
        break;
    case 16:
        memset(obj, 0, 16);
        break;
    case 32:
        memset(obj, 0, 32);
        break;
    case 48:
        memset(obj, 0, 48);
        break;
    default:
        memset(obj, 0, size);
    }
}

/* ASan: poisons the n bytes at p (the end of a pool block past its payload, which the
 * size class rounded up), so that an overflow into them is reported. */
static inline void poison_slack(void *p, size_t n)
{
#ifdef RCGC__ASAN
    if (n > 0)
        RCGC__POISON(p, n);
#else
    (void)p;
    (void)n;
#endif
}

/* Makes the block at hd a live object of site s with a zeroed payload of size bytes,
 * listed in `list` (room reserved). Counters of var-size objects are the caller's. */
static inline void *object_place(rcgc_heap *h, rcgc__site *s, rcgc_head *hd, unsigned list,
                                 size_t size)
{
    void *obj = hd + 1;
    zero_payload(obj, size);
    hd->rcgc__info = (uintptr_t)s;
    hd->rcgc__refcnt = 1;
    rcgc__olist_push_reserved(h, list, obj);
    s->live++;
    return obj;
}

RCGC__ALLOC_PATH static void *object_new(rcgc_heap *h, const rcgc_type *t, size_t size,
                                         const char *file, int line)
{
    if (h == NULL || t == NULL || size < t->size)
        return NULL;
    bool var = size != t->size;
    size_t extra = sizeof(rcgc_head) + (var ? RCGC__VARSIZE_PREFIX : 0);
    if (size > SIZE_MAX - extra)
        return NULL;
    rcgc__safepoint_check(h);
    rcgc__site *s = h->site_last;
    if (RCGC_UNLIKELY(s == NULL || s->line != line || s->file != file || s->type != t)) {
        if ((s = site_get(h, t, file, line)) == NULL)
            return NULL;
        h->site_last = s;
    }
    bool container = rcgc__is_container_type(t);
    if (container) {
        h->count[0]++;
#ifndef RCGC_GC_STRESS
        if (RCGC_UNLIKELY(h->count[0] > h->threshold[0]))
#endif
            rcgc__collect_automatic(h);
    }
    unsigned list = container ? RCGC__L_GEN0 : RCGC__L_UNTRACKED;
    char *block = NULL;
    size_t bytes = size + extra;
    rcgc__olist *l = &h->lists[list];
    if (RCGC_LIKELY(l->len < l->cap) || rcgc__olist_reserve(h, l, 1) == 0)
        block = block_alloc(h, bytes);
    if (block == NULL) {
        if (container && h->count[0] > 0)
            h->count[0]--;
        return NULL;
    }
    if (var) {
        uintptr_t mark = RCGC__VAR_MARK;
        memcpy(block, &mark, sizeof mark);
        memcpy(block + RCGC__VARSIZE_PREFIX - sizeof size, &size, sizeof size);
        block += RCGC__VARSIZE_PREFIX;
    }
    rcgc_head *hd = (rcgc_head *)(void *)block;
    void *obj = object_place(h, s, hd, list, size);
    if (bytes <= RCGC__SMALL_MAX && !h->pools.disabled)
        poison_slack((char *)obj + size, rcgc__class_size(rcgc__size_class(bytes)) - bytes);
    if (var) {
        hd->rcgc__info |= RCGC__F_VARSIZE;
        s->var_live++;
        s->var_bytes += bytes;
    }
    if (RCGC_UNLIKELY(h->trace_mode != RCGC__TRACE_OFF) &&
        (h->trace_mode == RCGC__TRACE_EXACT || (h->trace_left -= (int64_t)bytes) < 0))
        rcgc__trace_alloc(h, obj, bytes, file, line);
    return obj;
}

/* Zeroes the first n bytes of obj (n a multiple of 16) with at most four overlapping
 * 16-byte stores; returns false, doing nothing, when n is more than 64. */
static inline bool zero_inline(char *obj, size_t n)
{
    if (n == 16) {
        memset(obj, 0, 16);
    } else if (n - 1 < 32) { /* 32 (n == 0 wraps around) */
        memset(obj, 0, 32);
    } else if (n - 1 < 64) { /* 48 or 64 */
        memset(obj, 0, 32);
        memset(obj + n - 32, 0, 32);
    } else if (n != 0) {
        return false;
    }
    return true;
}

#ifndef RCGC_GC_STRESS /* where every allocation collects, through object_new */
/* What the fast path of rcgc__new leaves to calls, out of line so that the path itself
 * calls nothing: a payload larger than zero_inline takes, and exact tracing (the object
 * fully made first). */
RCGC__ALLOC_PATH __attribute__((noinline)) static void *new_traced(rcgc_heap *h, rcgc__site *s,
                                                                   void *obj)
{
    rcgc__trace_alloc(h, obj, s->fast_bytes, s->file, s->line);
    return obj;
}
RCGC__ALLOC_PATH __attribute__((noinline)) static void *new_finish(rcgc_heap *h, rcgc__site *s,
                                                                   void *obj)
{
    memset(obj, 0, s->fast_zero);
    poison_slack((char *)obj + s->type->size, s->fast_zero - s->type->size);
    if (h->trace_mode == RCGC__TRACE_EXACT)
        return new_traced(h, s, obj);
    return obj;
}
RCGC__ALLOC_PATH __attribute__((noinline)) static void *new_slow(rcgc__site *s)
{
    return object_new(s->heap, s->type, s->type->size, s->file, s->line);
}

/* rcgc__new for an object of site s, the last site allocated from, whose objects come
 * from the pools (s->fast_class): a pool with a free block, room in the list, no
 * collection due, nobody waiting at the safepoint, no sample due. It zeroes the whole
 * block past the header (the payload rounded up to its size class). Anything else takes
 * object_new, which handles every case. Everything it needs comes from s, so that no
 * argument of rcgc__new stays live. Instantiated once per tracing mode (a constant here),
 * so that the common copy holds fewer values and each runs straight through. */
__attribute__((always_inline)) static inline void *new_fast_body(rcgc_heap *h, rcgc__site *s,
                                                                 int mode)
{
    rcgc__olist *l = s->fast_olist;
    uint32_t len = l->len;
    if (RCGC_UNLIKELY(len >= l->cap))
        return new_slow(s);
    if (s->container && RCGC_UNLIKELY(h->count[0] >= h->threshold[0]))
        return new_slow(s);
    if (RCGC_UNLIKELY(atomic_load_explicit(&h->mail_flag, memory_order_relaxed)))
        return new_slow(s);
    unsigned c = s->fast_class - 1u;
    rcgc__pool *p = h->pools.used[c];
    if (RCGC_UNLIKELY(p == NULL))
        return new_slow(s);
    /* Last of the checks: object_new charges the bytes itself, so a path that falls
     * back to it must not have charged them already (the allocation would count twice
     * toward the next sample). */
    if (mode == RCGC__TRACE_SAMPLED && (h->trace_left -= (int64_t)s->fast_bytes) < 0)
        return new_slow(s);
    rcgc_head *hd = rcgc__pool_alloc_from(&h->pools, p, c);
    void *obj = hd + 1;
    hd->rcgc__info = s->fast_info;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint64_t refcnt_slot = 1u | (uint64_t)len << 32; /* one store for both fields */
    memcpy(&hd->rcgc__refcnt, &refcnt_slot, sizeof refcnt_slot);
#else
    hd->rcgc__refcnt = 1;
    hd->rcgc__slot = len;
#endif
    l->items[len] = obj;
    l->len = len + 1;
    s->live++;
    h->count[0] += s->container;
    if (RCGC_UNLIKELY(!zero_inline(obj, s->fast_zero)))
        return new_finish(h, s, obj);
    poison_slack((char *)obj + s->type->size, s->fast_zero - s->type->size);
    if (mode == RCGC__TRACE_EXACT)
        return new_traced(h, s, obj);
    return obj;
}
RCGC__ALLOC_PATH __attribute__((noinline)) static void *new_fast(rcgc_heap *h, rcgc__site *s)
{
    return new_fast_body(h, s, RCGC__TRACE_OFF);
}
RCGC__ALLOC_PATH __attribute__((noinline)) static void *new_fast_sampled(rcgc_heap *h,
                                                                         rcgc__site *s)
{
    return new_fast_body(h, s, RCGC__TRACE_SAMPLED);
}
RCGC__ALLOC_PATH __attribute__((noinline)) static void *new_fast_exact(rcgc_heap *h,
                                                                       rcgc__site *s)
{
    return new_fast_body(h, s, RCGC__TRACE_EXACT);
}
#endif

RCGC__ALLOC_PATH void *rcgc__new(rcgc_heap *h, const rcgc_type *type, const char *file,
                                 int line)
{
#ifndef RCGC_GC_STRESS
    rcgc__site *s = RCGC_LIKELY(h != NULL) ? h->site_last : NULL;
    if (RCGC_LIKELY(s != NULL && s->type == type && s->line == line && s->file == file &&
                    s->fast_class != 0)) {
        if (RCGC_LIKELY(h->trace_mode == RCGC__TRACE_OFF))
            return new_fast(h, s);
        return h->trace_mode == RCGC__TRACE_SAMPLED ? new_fast_sampled(h, s)
                                                    : new_fast_exact(h, s);
    }
#endif
    return object_new(h, type, type != NULL ? type->size : 0, file, line);
}

RCGC__ALLOC_PATH void *rcgc__new_var(rcgc_heap *h, const rcgc_type *type, size_t size,
                                     const char *file, int line)
{
    return object_new(h, type, size, file, line);
}

/* Frees the block of an unlisted object and updates the counters. */
static inline void object_free(rcgc_heap *h, void *obj)
{
    rcgc__site *s = rcgc__site_of(obj);
    size_t bytes = rcgc__block_bytes(obj);
    s->live--;
    if (rcgc__flags(obj) & RCGC__F_VARSIZE) {
        s->var_live--;
        s->var_bytes -= bytes;
    }
    if (rcgc__is_container_type(s->type) && h->count[0] > 0)
        h->count[0]--;
    if (RCGC_UNLIKELY(rcgc__flags(obj) & RCGC__F_TRACED))
        rcgc__trace_free(h, obj, bytes);
    void *start = block_start(obj);
#if defined(RCGC_DEBUG_INVARIANTS) || !defined(NDEBUG)
    memset(start, 0xdb, bytes); /* a use after free reads a recognisable pattern */
#endif
    rcgc__head(obj)->rcgc__refcnt = 0; /* a decref of the freed object is reported */
    block_free(h, start, bytes);
}

void rcgc__object_release(rcgc_heap *h, void *obj)
{
    rcgc__set_list(obj, RCGC__L_NONE, 0);
    object_free(h, obj);
}

/* ---- tracking ---- */

void rcgc__track(rcgc_heap *h, void *obj)
{
    if (rcgc__move(h, obj, RCGC__L_GEN0) != 0 && rcgc__list_of(obj) == RCGC__L_NONE)
        h->unlisted++;
}

void rcgc__untrack(rcgc_heap *h, void *obj)
{
    rcgc__olist_remove(h, obj);
    if (rcgc__olist_push(h, RCGC__L_UNTRACKED, obj) != 0)
        h->unlisted++; /* stays alive, unlisted: heap_free cannot release it */
}

void rcgc_track(void *obj)
{
    const rcgc_type *t = rcgc__type(obj);
    unsigned list = rcgc__list_of(obj);
    if (!rcgc__is_container_type(t) || rcgc__is_tracked_list(list))
        return;
    rcgc_heap *h = rcgc__site_of(obj)->heap;
    if (list == RCGC__L_NONE && rcgc__head(obj)->rcgc__refcnt > 0 && h->unlisted > 0)
        h->unlisted--;
    rcgc__track(h, obj);
}

void rcgc_untrack(void *obj)
{
    unsigned list = rcgc__list_of(obj);
    if (!rcgc__is_tracked_list(list))
        return;
    rcgc__untrack(rcgc__site_of(obj)->heap, obj);
}

bool rcgc_is_tracked(const void *obj)
{
    return rcgc__is_tracked_list(rcgc__list_of(obj));
}

bool rcgc_is_finalized(const void *obj)
{
    return rcgc__is_container_type(rcgc__type(obj)) &&
           (rcgc__flags(obj) & RCGC__F_FINALIZED) != 0;
}

const rcgc_type *rcgc_type_of(const void *obj)
{
    return rcgc__type(obj);
}

rcgc_heap *rcgc_heap_of(const void *obj)
{
    return rcgc__site_of(obj)->heap;
}

const char *rcgc_site_file(const void *obj)
{
    return rcgc__site_of(obj)->file;
}

int rcgc_site_line(const void *obj)
{
    return rcgc__site_of(obj)->line;
}

/* ---- death ---- */

/* Calls a finalizer with a temporary reference; returns true when it resurrected obj. */
static bool call_finalizer(void *obj, void (*fn)(void *))
{
    rcgc_head *hd = rcgc__head(obj);
    hd->rcgc__refcnt = 1;
    fn(obj);
    if (hd->rcgc__refcnt == 1) {
        hd->rcgc__refcnt = 0;
        return false;
    }
    if (hd->rcgc__refcnt != RCGC_REFCNT_IMMORTAL)
        hd->rcgc__refcnt--;
    return true;
}

/* Puts a resurrected object back where live objects of its kind belong. */
static void resurrect(rcgc_heap *h, void *obj, bool container)
{
    if (rcgc__list_of(obj) != RCGC__L_NONE)
        return;
    int rc = container ? rcgc__olist_push(h, RCGC__L_GEN0, obj)
                       : rcgc__olist_push(h, RCGC__L_UNTRACKED, obj);
    if (rc != 0)
        h->unlisted++;
}

/* Whether nothing can resurrect obj: no finalizer of either kind, no weak reference. */
static inline bool dies_plainly(const rcgc_type *t, unsigned flags)
{
    return t->finalize == NULL && t->legacy_del == NULL && !(flags & RCGC__F_WEAKREFS);
}

/* The death of an object that dies plainly: dealloc, free. */
static inline void die_plain(rcgc_heap *h, void *obj, const rcgc_type *t)
{
    rcgc__olist_remove(h, obj);
    if (t->dealloc != NULL) {
        t->dealloc(obj);
        rcgc__olist_remove(h, obj);
    }
    object_free(h, obj);
}

/* The body of a death; the refcount is 0 and the trashcan let it through. */
static void die_body(rcgc_heap *h, void *obj)
{
    const rcgc_type *t = rcgc__type(obj);
    if (RCGC_LIKELY(dies_plainly(t, rcgc__flags(obj)))) {
        die_plain(h, obj, t); /* the common case, without the checks below */
        return;
    }
    bool container = rcgc__is_container_type(t);
    if (t->finalize != NULL && !(container && (rcgc__flags(obj) & RCGC__F_FINALIZED))) {
        /* CPython keeps a dying container tracked while its finalizer runs, so that a
         * resurrected object is tracked. */
        if (container && !rcgc__is_tracked_list(rcgc__list_of(obj)))
            (void)rcgc__move(h, obj, RCGC__L_GEN0);
        if (container)
            rcgc__set_flag(obj, RCGC__F_FINALIZED);
        if (call_finalizer(obj, t->finalize)) {
            resurrect(h, obj, container);
            return;
        }
    }
    rcgc__olist_remove(h, obj);
    if (rcgc__flags(obj) & RCGC__F_WEAKREFS)
        rcgc__weakrefs_clear(h, obj, true);
    if (t->legacy_del != NULL) {
        if (container)
            (void)rcgc__move(h, obj, RCGC__L_GEN0);
        bool back = call_finalizer(obj, t->legacy_del);
        if (back) {
            resurrect(h, obj, container);
            return;
        }
        rcgc__olist_remove(h, obj);
    }
    /* Weak references made by a finalizer are cleared without callbacks. */
    if (rcgc__flags(obj) & RCGC__F_WEAKREFS)
        rcgc__weakrefs_clear(h, obj, false);
    if (t->dealloc != NULL)
        t->dealloc(obj);
    rcgc__olist_remove(h, obj); /* a dealloc that tracked its object again (as CPython's
                                   subtype_dealloc may) must not leave it listed */
    object_free(h, obj);
}

/* Defers a death: the object leaves its list (so no collection sees a dead object)
 * and goes on the trash stack. Returns false when the stack cannot grow. */
static bool trash_deposit(rcgc_heap *h, void *obj)
{
    if (h->trash_len == h->trash_cap &&
        rcgc__grow(h, (void **)&h->trash, &h->trash_cap, h->trash_len + 1, sizeof(void *)) != 0)
        return false;
    rcgc__olist_remove(h, obj);
    rcgc__weakref_detach(h, obj); /* a dead weak reference must not stay in a chain */
    h->trash[h->trash_len++] = obj;
    return true;
}

/* The outermost death runs the deferred ones, each from a shallow stack. */
static void trash_drain(rcgc_heap *h)
{
    while (h->trash_len > 0)
        die_body(h, h->trash[--h->trash_len]);
}

void rcgc__object_die(rcgc_heap *h, void *obj)
{
    if (h->dealloc_depth >= RCGC__TRASH_DEPTH && trash_deposit(h, obj))
        return;
    /* Only increments and decrements: a finalizer that lets another thread into the
     * heap (as one that releases a GIL does) interleaves deaths, and the count must
     * still come back to zero. */
    h->dealloc_depth++;
    die_body(h, obj);
    if (h->dealloc_depth == 1)
        trash_drain(h);
    h->dealloc_depth--;
}

/* The death of a fixed-size pool object of a type without finalizers, with no weak
 * reference, listed, in a shallow enough stack: die_plain and object_free
 * with what the site already knows. */
static inline void die_fast(rcgc_heap *h, rcgc__site *s, rcgc_head *hd)
{
    void *obj = hd + 1;
    rcgc__olist_remove(h, obj);
    void (*dealloc)(void *) = s->type->dealloc;
    if (dealloc != NULL) {
        h->dealloc_depth++;
        dealloc(obj);
        rcgc__olist_remove(h, obj); /* a dealloc that tracked it again */
        h->dealloc_depth--;
    }
    s->live--;
    if (s->container && h->count[0] > 0)
        h->count[0]--;
    if (RCGC_UNLIKELY(hd->rcgc__info & RCGC__F_TRACED))
        rcgc__trace_free(h, obj, s->fast_bytes);
#if defined(RCGC_DEBUG_INVARIANTS) || !defined(NDEBUG)
    memset(hd, 0xdb, s->fast_bytes);
    hd->rcgc__refcnt = 0; /* as rcgc__decref_slow left it: a decref of it is reported */
#endif
    rcgc__pool_free(h, &h->pools, hd);
    if (RCGC_UNLIKELY(h->trash_len > 0) && h->dealloc_depth == 0) {
        h->dealloc_depth++; /* deaths left by the dealloc: the outermost one runs them */
        trash_drain(h);
        h->dealloc_depth--;
    }
}

void rcgc__decref_slow(void *obj)
{
    rcgc_head *hd = rcgc__head(obj);
    if (RCGC_UNLIKELY(hd->rcgc__refcnt == 0)) {
        /* released once too often: the object is dying or freed, and a freed block's
         * first word is a free-list link, not its site: no heap to tell, no type */
        rcgc__panic(NULL, "decref of an object whose refcount is 0 (%p): freed, or dying", obj);
        return;
    }
    uintptr_t info = hd->rcgc__info;
    rcgc__site *s = (rcgc__site *)(info & ~(uintptr_t)RCGC__INFO_FLAGS);
    rcgc_heap *h = s->heap;
    hd->rcgc__refcnt = 0;
    unsigned list = (unsigned)(info & RCGC__LIST_MASK);
    if (RCGC_LIKELY(s->plain && !(info & (RCGC__F_WEAKREFS | RCGC__F_VARSIZE)) &&
                    list != RCGC__L_NONE && h->dealloc_depth < RCGC__TRASH_DEPTH)) {
        die_fast(h, s, hd);
        return;
    }
    if (list == RCGC__L_NONE && h->unlisted > 0)
        h->unlisted--; /* it lost its list when memory ran out; now it dies */
    rcgc__object_die(h, obj);
}
