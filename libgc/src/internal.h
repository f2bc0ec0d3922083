/* internal.h: the collector's private state. Never installed.
 *
 * Read this first. Every object lives in exactly one *object list* (a dense array of
 * payload pointers): one of the three generations, the permanent (frozen) generation,
 * the untracked list, or one of a collection's working lists. The header records which
 * list (3 bits) and the index in it (slot), so unlinking is O(1). A collection scans
 * these arrays sequentially; nothing is linked through the objects themselves.
 *
 * The oldest generation is the exception that keeps memory down: while it is *settled*
 * (after a full collection that found it to be at least half of the pool objects: the
 * arena scan must not cost more than it saves), its objects whose blocks come from the
 * pools are *resident*: not in the array (slot RCGC__SLOT_RESIDENT, counted in
 * `resident`) but found by scanning the arenas: the next full collection gathers them
 * from there, a walk first puts them back into the array (rcgc__gen2_materialize). So
 * a long-lived object costs no array entry; large objects, and every object of a heap
 * without pools, stay in the array.
 *
 * Invariants (checked by rcgc__heap_check):
 *  - a listed object's header names its list and its slot: list->items[slot] == obj;
 *  - a resident object is a live pool block of its heap whose header says GEN2 and
 *    RCGC__SLOT_RESIDENT; the arenas hold exactly lists[GEN2].resident of them, and,
 *    outside a collection, none unless GEN2 is settled;
 *  - generation, frozen, work and legacy lists hold only objects of types with
 *    traverse (containers); the untracked list holds the rest and untracked containers;
 *  - outside a collection, COLLECTING is clear everywhere, the work and legacy lists are
 *    empty, and every listed object has refcount >= 1;
 *  - a list that is pinned (being walked while user code may run) holds NULL holes
 *    instead of moving entries; holes are compacted when the last pin goes;
 *  - HAS_WEAKREFS is set iff the weakref table has an entry for the object, and every
 *    weak reference in that entry's chain points back at the object;
 *  - a site's live counter equals the objects allocated there and not yet freed; the
 *    sites' counters sum to the live objects (rcgc__nobjects: not kept as a counter of
 *    its own, which would cost every allocation and death one more update).
 */
#ifndef RCGC_INTERNAL_H
#define RCGC_INTERNAL_H

#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <rcgc/rcgc.h>
#include <rcgc/snapshot.h>

#include "alloc.h"

/* ---- object state bits, in the low byte of rcgc_head.rcgc__info ---- */

#define RCGC__LIST_MASK 7u     /* which object list holds the object */
#define RCGC__F_FINALIZED 8u   /* finalize has run (containers only) */
#define RCGC__F_WEAKREFS 16u   /* the weakref table has a chain for it */
#define RCGC__F_COLLECTING 32u /* in the set being collected; slot = gc_refs */
#define RCGC__F_VARSIZE 64u    /* allocated by rcgc_new_var: size stored before */
#define RCGC__F_TRACED 128u    /* tracing holds a trace for it (trace.c) */
#define RCGC__INFO_FLAGS 0xFFu
#define RCGC__SITE_ALIGN 256u /* site records are aligned so the byte is free */

enum {
    RCGC__L_GEN0 = 0,      /* youngest generation */
    RCGC__L_GEN1 = 1,      /* middle generation */
    RCGC__L_GEN2 = 2,      /* oldest generation */
    RCGC__L_PERM = 3,      /* frozen: never scanned */
    RCGC__L_WORK = 4,      /* a collection's candidates (unreachable after deduce) */
    RCGC__L_LEGACY = 5,    /* a collection's uncollectable set (legacy finalizers) */
    RCGC__L_UNTRACKED = 6, /* live objects the collector does not scan */
    RCGC__L_NONE = 7,      /* dying, or unlisted after memory ran out */
    RCGC__NLISTS = 7
};

/* An object list: a dense array of payload pointers. */
typedef struct rcgc__olist {
    void **items;
    uint32_t len, cap;
    uint32_t pins;   /* > 0: removals leave NULL holes */
    uint32_t holes;  /* NULL entries below len */
    size_t resident; /* GEN2 only: members not in items (RCGC__SLOT_RESIDENT) */
    bool settled;    /* GEN2 only: pool objects entering it become resident */
} rcgc__olist;

/* The slot of a resident object (no list has that many entries: RCGC__LIST_MAX). */
#define RCGC__SLOT_RESIDENT UINT32_MAX

/* Residency tells free pool blocks from live ones by their first word, a pointer or the
 * var mark, never a header whose low bits say GEN2: 64-bit targets only, where the mark
 * cannot be an address. */
#if UINTPTR_MAX > 0xFFFFFFFFu
#define RCGC__RESIDENCY 1
#endif

/* Objects from rcgc_new_var carry their payload size in a prefix before the header:
 * RCGC__VAR_MARK (no pointer, no free-list link: odd and non-canonical), then the size.
 * The mark lets an arena scan find the header of a var-size block. */
#define RCGC__VARSIZE_PREFIX 16u
#define RCGC__VAR_MARK ((uintptr_t)0xA5A5A5A5A5A5A5A7u)

/* Per heap and type; its census counters are the sums over its sites (rcgc__census_fill),
 * so an allocation updates one record, not two. */
typedef struct rcgc__typerec {
    const rcgc_type *type;
    size_t index; /* position in heap->types */
} rcgc__typerec;

/* Per heap, type and allocation site (file:line); every header points at one. */
typedef struct rcgc__site {
    const rcgc_type *type;
    rcgc_heap *heap;
    rcgc__typerec *tr;
    const char *file;
    int line;
    unsigned fast_class; /* size class + 1 of a type->size object from the pools, or 0 */
    /* Facts of the type, copied for the fast paths of rcgc__new and rcgc__decref_slow
     * (rcgc_type records do not change while objects of theirs live): */
    uint16_t fast_zero;             /* payload bytes to zero: the pool block less the header */
    uint16_t fast_bytes;            /* the object's bytes: type->size and the header */
    unsigned char fast_list;        /* RCGC__L_GEN0 for containers, RCGC__L_UNTRACKED else */
    bool container;                 /* type->traverse != NULL */
    bool plain;                     /* a pool object with no finalizer of either kind */
    struct rcgc__olist *fast_olist; /* &heap->lists[fast_list] */
    uintptr_t fast_info;            /* a new object's rcgc__info: the site and fast_list */
    size_t live;                    /* objects allocated here and not yet freed */
    size_t var_live, var_bytes;     /* of those, rcgc_new_var ones larger than type->size */
    void *raw;                      /* the unaligned block to free */
} rcgc__site;

/* The bytes a site's live objects occupy: fixed-size ones are not summed one by one. */
static inline size_t rcgc__site_bytes(const rcgc__site *s)
{
    return (s->live - s->var_live) * (s->type->size + sizeof(rcgc_head)) + s->var_bytes;
}

/* A (function, argument) registration. */
typedef struct rcgc__hook {
    void (*fn)(void);
    void *arg;
} rcgc__hook;

typedef struct rcgc__hooks {
    rcgc__hook *items;
    size_t len, cap;
    unsigned running; /* > 0: removals leave fn == NULL holes */
    size_t holes;
} rcgc__hooks;

/* The heap. One mutator thread at a time. */
struct rcgc_heap {
    char *name;
    rcgc_allocator alloc;
    rcgc_panic_fn panic;
    void *panic_arg;

    rcgc__olist lists[RCGC__NLISTS];
    size_t count[3];     /* CPython's generation counts */
    size_t threshold[3]; /* CPython's thresholds */
    size_t long_lived_total, long_lived_pending;
    bool enabled;
    unsigned debug;
    int collecting; /* a collection runs: nested ones are refused */
    int walking;    /* a walk's visitor runs: collections are refused */
    rcgc_gen_stats stats[3];

    /* the trashcan: deaths deferred to bound the C stack */
    unsigned dealloc_depth;
    void **trash;
    size_t trash_len, trash_cap;

    /* registry of types and sites */
    rcgc__typerec **types;
    size_t ntypes, types_cap;
    rcgc__site **sites; /* open addressing on (type, file, line) */
    size_t sites_cap, nsites;
    rcgc__site *site_cache[64]; /* direct-mapped cache in front of sites */
    rcgc__site *site_last;      /* the last site allocated from, checked first */

    /* weak references: target -> newest weak reference */
    struct rcgc__wtab {
        void **keys;
        void **vals;
        size_t cap, len;
    } wtab;

    /* the garbage list: strong references */
    void **garbage;
    size_t garbage_len, garbage_cap;

    rcgc__hooks callbacks, event_hooks;

    size_t unlisted; /* live objects in RCGC__L_NONE outside death (after ENOMEM) */

    /* other threads (thread.c): registry links, mailbox and released/borrowed state
     * are guarded by the registry lock; snapshots are swapped atomically */
    struct rcgc_heap *reg_prev, *reg_next;
    pthread_t owner;
    struct rcgc__request *mail;
    atomic_bool mail_flag; /* a call is waiting: checked at every safepoint */
    bool released, borrowed;
    _Atomic(struct rcgc__snapbox *) snap;
    atomic_uint snap_readers;
    struct rcgc__snapbox *retired; /* replaced snapshots not yet freed (owner only) */
    uint64_t snap_serial, snap_time_ns;

    /* allocation tracing (trace.c): trace_mode is read inline on every allocation */
    unsigned char trace_mode; /* RCGC__TRACE_OFF / _EXACT / _SAMPLED */
    int64_t trace_left;       /* sampled: bytes until the next sample */
    struct rcgc__trace *trace;

    /* the small-object allocator (alloc.c) */
    rcgc__pools pools;
};

/* ---- header access ---- */

static inline rcgc__site *rcgc__site_of(const void *obj)
{
    return (rcgc__site *)(rcgc__head(obj)->rcgc__info & ~(uintptr_t)RCGC__INFO_FLAGS);
}
static inline unsigned rcgc__flags(const void *obj)
{
    return (unsigned)(rcgc__head(obj)->rcgc__info & RCGC__INFO_FLAGS);
}
static inline void rcgc__set_flag(void *obj, unsigned f)
{
    rcgc__head(obj)->rcgc__info |= f;
}
static inline void rcgc__clear_flag(void *obj, unsigned f)
{
    rcgc__head(obj)->rcgc__info &= ~(uintptr_t)f;
}
static inline unsigned rcgc__list_of(const void *obj)
{
    return (unsigned)(rcgc__head(obj)->rcgc__info & RCGC__LIST_MASK);
}
static inline void rcgc__set_list(void *obj, unsigned list, uint32_t slot)
{
    rcgc_head *hd = rcgc__head(obj);
    hd->rcgc__info = (hd->rcgc__info & ~(uintptr_t)RCGC__LIST_MASK) | list;
    hd->rcgc__slot = slot;
}
static inline const rcgc_type *rcgc__type(const void *obj)
{
    return rcgc__site_of(obj)->type;
}
static inline bool rcgc__is_container_type(const rcgc_type *t)
{
    return t->traverse != NULL;
}
static inline bool rcgc__is_tracked_list(unsigned list)
{
    return list <= RCGC__L_LEGACY;
}

/* The bytes of obj's block: header and payload, and the size prefix of var objects. */
static inline size_t rcgc__block_bytes(const void *obj)
{
    if (RCGC_UNLIKELY(rcgc__head(obj)->rcgc__info & RCGC__F_VARSIZE)) {
        size_t n;
        memcpy(&n, (const char *)rcgc__head(obj) - sizeof n, sizeof n);
        return n + sizeof(rcgc_head) + RCGC__VARSIZE_PREFIX;
    }
    return rcgc__type(obj)->size + sizeof(rcgc_head);
}

/* Whether obj's block came from the heap's pools (block_alloc's rule). */
static inline bool rcgc__in_pools(const rcgc__pools *ps, const void *obj)
{
    return !ps->disabled && rcgc__block_bytes(obj) <= RCGC__SMALL_MAX;
}

/* ---- memory (heap.c): through the heap's allocator hooks ---- */

/* malloc, realloc and free of the C library as hooks: the default allocator. */
extern const rcgc_allocator rcgc__libc_allocator;

void *rcgc__malloc(rcgc_heap *h, size_t size);
void *rcgc__realloc(rcgc_heap *h, void *p, size_t old_size, size_t new_size);
void rcgc__free(rcgc_heap *h, void *p, size_t size);
/* Grows *items (elements of elem bytes) to hold at least need; 0 or RCGC_ENOMEM. */
int rcgc__grow(rcgc_heap *h, void **items, size_t *cap, size_t need, size_t elem);
void rcgc__panic(rcgc_heap *h, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
uint64_t rcgc__now_ns(void);

/* ---- object lists (list.c) ---- */

int rcgc__olist_reserve(rcgc_heap *h, rcgc__olist *l, size_t extra);
/* Appends obj (capacity reserved or grown); sets its list and slot. 0 or ENOMEM. */
int rcgc__olist_push(rcgc_heap *h, unsigned list, void *obj);

/* Appends obj to a list whose capacity was reserved; cannot fail. A pool object
 * entering a settled GEN2 outside a collection becomes resident instead (a collection
 * scans what it pushes into GEN2; rcgc__collect settles the survivors at the end). */
static inline void rcgc__olist_push_reserved(rcgc_heap *h, unsigned list, void *obj)
{
    rcgc__olist *l = &h->lists[list];
    if (list == RCGC__L_GEN2 && l->settled && !h->collecting &&
        rcgc__in_pools(&h->pools, obj)) {
        rcgc__set_list(obj, list, RCGC__SLOT_RESIDENT);
        l->resident++;
        return;
    }
    uint32_t slot = l->len++;
    l->items[slot] = obj;
    rcgc__set_list(obj, list, slot);
}

/* Unlinks obj from its list (swap-remove, or a hole when pinned); list becomes NONE. */
static inline void rcgc__olist_remove(rcgc_heap *h, void *obj)
{
    unsigned list = rcgc__list_of(obj);
    if (list == RCGC__L_NONE)
        return;
    rcgc__olist *l = &h->lists[list];
    uint32_t slot = rcgc__head(obj)->rcgc__slot;
    if (list == RCGC__L_GEN2 && slot == RCGC__SLOT_RESIDENT) {
        l->resident--;
    } else if (RCGC_UNLIKELY(l->pins > 0)) {
        l->items[slot] = NULL;
        l->holes++;
    } else {
        uint32_t last = --l->len;
        void *moved = l->items[last];
        l->items[slot] = moved;
        rcgc__head(moved)->rcgc__slot = slot; /* obj itself when it was the last */
    }
    rcgc__head(obj)->rcgc__info =
        (rcgc__head(obj)->rcgc__info & ~(uintptr_t)(RCGC__F_COLLECTING | RCGC__LIST_MASK)) |
        RCGC__L_NONE;
    rcgc__head(obj)->rcgc__slot = 0;
}
void rcgc__olist_pin(rcgc__olist *l);
void rcgc__olist_unpin(rcgc__olist *l);
/* Removes holes and renumbers slots (the list must not be pinned by anyone else). */
void rcgc__olist_compact(rcgc__olist *l);
static inline size_t rcgc__olist_size(const rcgc__olist *l)
{
    return (size_t)(l->len - l->holes) + l->resident;
}
/* Puts every resident object back into the GEN2 array (and GEN2 stops being settled),
 * so that it can be walked or indexed by slot. O(arena bytes) when there are residents,
 * O(1) otherwise. Returns 0, or RCGC_ENOMEM with nothing changed. */
int rcgc__gen2_materialize(rcgc_heap *h);
/* Whether GEN2 holding gen2 objects should be settled: they are at least half of the
 * pool objects, so that scanning every pool block to find them costs about as much as
 * reading their entries would. Always false without pools or on 32-bit targets. */
bool rcgc__residency_pays(const rcgc_heap *h, size_t gen2);
/* Makes the pool objects of the GEN2 array resident and settles GEN2 (after a full
 * collection, or a collection of generation 1 while settled), unless the list is pinned
 * or, with no residents yet, residency does not pay. */
void rcgc__gen2_settle(rcgc_heap *h);
/* Calls fn on every resident object (fn must not free pool blocks). Returns 0 or fn's
 * first non-zero result. */
int rcgc__residents_each(rcgc_heap *h, int (*fn)(void *obj, void *arg), void *arg);
/* The resident object whose pool block is b (from rcgc__pools_each_block), or NULL: a
 * free block or another object. */
static inline void *rcgc__resident_in(void *b)
{
    uintptr_t w;
    RCGC__VG_QUIET_BEGIN(); /* b may be free: valgrind sees it as not addressable */
    memcpy(&w, b, sizeof w);
    rcgc_head *hd = RCGC_UNLIKELY(w == RCGC__VAR_MARK)
                        ? (rcgc_head *)((char *)b + RCGC__VARSIZE_PREFIX)
                        : (rcgc_head *)b;
    /* A free block's first word is a link, 16-byte aligned: never the list bits of GEN2,
     * so its slot is not read. */
    bool res = (hd->rcgc__info & RCGC__LIST_MASK) == RCGC__L_GEN2 &&
               hd->rcgc__slot == RCGC__SLOT_RESIDENT;
    RCGC__VG_QUIET_END();
    return res ? hd + 1 : NULL;
}
/* Whether p is a resident object of h; reads nothing outside h's live pool blocks. */
bool rcgc__is_resident(rcgc_heap *h, const void *p);
/* Shrinks arrays left less than a quarter full (after a collection of generation). */
void rcgc__olists_trim(rcgc_heap *h, int generation);
/* Moves obj into list `to` (a tracked list); on ENOMEM it stays where it is. */
int rcgc__move(rcgc_heap *h, void *obj, unsigned to);

/* ---- objects (object.c) ---- */

/* The death of an object whose refcount reached zero: finalizer, weak references,
 * legacy finalizer, dealloc, free; deep chains are deferred through the trashcan. */
void rcgc__object_die(rcgc_heap *h, void *obj);
/* Tracks a container object without the checks of rcgc_track. */
void rcgc__track(rcgc_heap *h, void *obj);
void rcgc__untrack(rcgc_heap *h, void *obj);
/* Frees the memory of obj without calling anything (heap_free). */
void rcgc__object_release(rcgc_heap *h, void *obj);
void rcgc__sites_free(rcgc_heap *h);
/* Fills out[0..ntypes) with the census of every type, summed over its sites. */
void rcgc__census_fill(const rcgc_heap *h, rcgc_census_entry *out);
/* Live objects (and, if bytes is not NULL, their bytes) of type t: O(sites). */
size_t rcgc__type_live(const rcgc_heap *h, const rcgc_type *t, size_t *bytes);
/* Live objects of the heap, listed or not: the sum of the sites' counters, O(sites). */
size_t rcgc__nobjects(const rcgc_heap *h);
size_t rcgc__object_bytes(const void *obj);

/* ---- collection (collect.c) ---- */

/* Collects with callbacks unless quiet; caller checked generation. */
ssize_t rcgc__collect(rcgc_heap *h, int generation, bool quiet);
/* Runs the automatic collection if the counts call for it. */
void rcgc__collect_automatic(rcgc_heap *h);

/* ---- weak references (weakref.c) ---- */

extern const rcgc_type rcgc__weakref_type;
/* Clears every weak reference to obj (refcount path); calls callbacks if asked. */
void rcgc__weakrefs_clear(rcgc_heap *h, void *obj, bool callbacks);
/* The collector's pass over a set: clears the weak references to its members and
 * the members that are weak references; those with callbacks that are not in the set
 * are pushed (incref'd) on *to_call, linked through the weak reference. */
void rcgc__weakrefs_clear_for_collect(rcgc_heap *h, void *obj, void **to_call);
/* Calls and releases the callbacks queued by the pass above; returns how many of the
 * weak references died as a result. */
size_t rcgc__weakrefs_run_callbacks(rcgc_heap *h, void *to_call);
/* Unlinks obj from its target's chain if obj is a weak reference. */
void rcgc__weakref_detach(rcgc_heap *h, void *obj);
void rcgc__wtab_free(rcgc_heap *h);
void *rcgc__wtab_get(rcgc_heap *h, const void *obj);

/* ---- debug output and events (debug.c) ---- */

void rcgc__emit(rcgc_heap *h, const rcgc_event *ev);
void rcgc__run_callbacks(rcgc_heap *h, int phase, const rcgc_collect_info *info);
void rcgc__read_environment(rcgc_heap *h);
void rcgc__hooks_free(rcgc_heap *h, rcgc__hooks *hs);

/* ---- file name patterns (glob.c) ---- */

/* A pattern with the meaning of Python's fnmatch.fnmatch on POSIX, compiled. */
typedef struct rcgc__glob rcgc__glob;
/* The bytes rcgc__glob_compile needs for pattern; 0 when that does not fit in a size_t. */
size_t rcgc__glob_size(const char *pattern);
/* Compiles pattern into mem (rcgc__glob_size bytes, aligned as malloc aligns); cannot
 * fail. The result lives in mem and borrows nothing from pattern. */
rcgc__glob *rcgc__glob_compile(const char *pattern, void *mem);
/* Whether the whole of name matches. */
bool rcgc__glob_match(const rcgc__glob *g, const char *name);

/* ---- allocation tracing (trace.c) ---- */

/* Marks every function that can be on the C stack between the caller of rcgc_new (or
 * rcgc_new_var, rcgc_weakref_new) and tracing's unwinder: they live in a section of their
 * own, so that a traceback leaves out every frame they own, however many the compiler
 * kept (none when it made tail calls, one each in an unoptimised build), whether
 * librcgc is a shared object or linked into the program. */
#if defined(__ELF__) && (defined(__GNUC__) || defined(__clang__))
#define RCGC__HAVE_ALLOC_PATH 1
#define RCGC__ALLOC_PATH __attribute__((section("rcgc_alloc_path")))
#else
#define RCGC__HAVE_ALLOC_PATH 0
#define RCGC__ALLOC_PATH
#endif

enum { RCGC__TRACE_OFF = 0, RCGC__TRACE_EXACT = 1, RCGC__TRACE_SAMPLED = 2 };

/* Called by object_new when trace_mode says so (exact: every object; sampled: when
 * trace_left went below 0), after obj is fully initialised; bytes is the whole block.
 * Records a trace (and sets RCGC__F_TRACED) or, out of memory, silently skips it. In
 * sampled mode it also draws the next trace_left. */
void rcgc__trace_alloc(rcgc_heap *h, void *obj, size_t bytes, const char *file, int line);
/* Called by object_free for an object with RCGC__F_TRACED, before its memory goes. */
void rcgc__trace_free(rcgc_heap *h, void *obj, size_t bytes);
/* RCGC_TRACEMALLOC at heap creation (unless ignore_environment). */
void rcgc__trace_environment(rcgc_heap *h);
/* Releases everything tracing holds (heap_free, after the last object died). */
void rcgc__trace_heap_free(rcgc_heap *h);

/* ---- other threads (thread.c) ---- */

void rcgc__registry_add(rcgc_heap *h);
/* Unregisters (waiting for a borrowing inspector), fails a pending call, frees the
 * snapshots. */
void rcgc__registry_remove(rcgc_heap *h);
/* Runs a pending call if the heap is at a consistent point. */
void rcgc__serve(rcgc_heap *h);
/* Publishes a snapshot if an inspector is attached and the last one is stale (or
 * force). */
void rcgc__snapshot_maybe(rcgc_heap *h, bool force);
static inline void rcgc__safepoint_check(rcgc_heap *h)
{
    if (RCGC_UNLIKELY(atomic_load_explicit(&h->mail_flag, memory_order_relaxed)))
        rcgc__serve(h);
}

#endif /* RCGC_INTERNAL_H */
