/* rcgc/rcgc.h: the whole collector API of librcgc.
 *
 * rcgc gives C programs CPython 3.11's memory model: every object carries a reference
 * count, and a generational cycle collector frees the reference cycles that counting
 * alone cannot. Weak references follow CPython 3.14.7's rules, finalizers follow PEP 442.
 *
 * Threading model. A heap belongs to one mutator thread at a time: the host serialises
 * every call on a heap and on its objects, as CPython's GIL does. Calls that take no heap
 * and no object (rcgc_version, rcgc_strerror, rcgc_set_panic_hook) are safe from any
 * thread. Different heaps are independent and may be used from different threads at the
 * same time; objects of one heap must never reference objects of another.
 *
 * Re-entrancy. User code runs inside the library in these callbacks: a type's traverse,
 * clear, finalize, legacy_del and dealloc; weak-reference callbacks; gc callbacks; event
 * hooks; walk visitors. What each may do:
 *  - traverse: only call visit on its children; no other rcgc call.
 *  - clear, dealloc: decref (and so free) objects, untrack and track; a dealloc may
 *    allocate, and an allocation may then run an automatic collection (as in CPython).
 *  - finalize, legacy_del, weak-reference callbacks, gc callbacks: anything, including
 *    allocation, decref, weak references and rcgc_collect (refused with 0 while a
 *    collection runs).
 *  - event hooks and walk visitors: read-only calls (type_of, refcount, is_tracked, ...)
 *    and incref of the object they are given; no allocation, decref or collection.
 *
 * Ownership vocabulary (Jansson's): a *new reference* must be released by the caller
 * with rcgc_decref; a *borrowed* reference is valid only while its owner holds it.
 *
 * Errors: calls that can fail return an int, 0 or a negative RCGC_E* code (see
 * rcgc_strerror); constructors return NULL. On error nothing changed. */
#ifndef RCGC_RCGC_H
#define RCGC_RCGC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>     /* FILE */
#include <sys/types.h> /* ssize_t */

#include <rcgc/export.h>
#include <rcgc/version.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- errors ---- */

#define RCGC_EINVAL (-1)    /* bad argument (a generation outside 0..2, a NULL heap) */
#define RCGC_ENOMEM (-2)    /* the heap's allocator returned NULL */
#define RCGC_ENOENT (-3)    /* not found (remove_* of something never added) */
#define RCGC_EBUSY (-4)     /* not allowed in this state (a collection runs, ...) */
#define RCGC_ETIMEDOUT (-5) /* a wait ran out of time */
#define RCGC_EIO (-6)       /* a file could not be opened, read or written (see errno) */

/* Returns: a static English description of an RCGC_E* code ("unknown error" otherwise).
 * Thread safety: any thread. */
RCGC_API const char *rcgc_strerror(int code);

/* Returns: the library's version string ("0.1.0") and RCGC_VERSION_HEX of the library
 * that is linked, to compare with the header's. Thread safety: any thread. */
RCGC_API const char *rcgc_version(void);
RCGC_API unsigned rcgc_version_hex(void);

/* ---- types ---- */

typedef struct rcgc_heap rcgc_heap;

typedef int (*rcgc_visit_fn)(void *obj, void *arg);
typedef void (*rcgc_weakref_cb)(void *ref, void *arg);

/* A type: static, filled in by the user, never changed while objects of it live. */
typedef struct rcgc_type {
    const char *name; /* census key; shown in debug output and by the inspector */
    size_t size;      /* payload bytes for rcgc_new */
    /* Calls visit(child, arg) for every strong reference to an rcgc object that self
     * holds (NULL children skipped) and returns the first non-zero result of visit, or
     * 0. NULL: objects of this type hold no visible references and are never tracked. */
    int (*traverse)(void *self, rcgc_visit_fn visit, void *arg);
    /* Drops the references that can form cycles (tp_clear). Called with a strong
     * reference held by the collector; may be called on an object more than once. */
    void (*clear)(void *self);
    /* PEP 442 finalizer: runs at most once per object of a tracked type, at every death
     * of an object of an untracked type; may resurrect by storing a new reference. */
    void (*finalize)(void *self);
    /* Legacy finalizer (tp_del): an unreachable cycle holding such an object is
     * uncollectable and goes, with everything it reaches, to the garbage list. */
    void (*legacy_del)(void *self);
    /* Drops the object's remaining references and releases non-rcgc resources; the
     * library frees the memory afterwards. The object is untracked already. */
    void (*dealloc)(void *self);
} rcgc_type;

/* The object header, placed right before the payload that rcgc_new returns. 16 bytes.
 * Do not touch its fields: use the functions below. */
typedef struct rcgc_head {
    uintptr_t rcgc__info;  /* do not touch: type record and state bits */
    uint32_t rcgc__refcnt; /* do not touch: reference count */
    uint32_t rcgc__slot;   /* do not touch: position in the collector's lists */
} rcgc_head;

/* A reference count that reaches this value saturates: the object becomes immortal
 * (never freed) instead of overflowing. */
#define RCGC_REFCNT_IMMORTAL UINT32_MAX

/* ---- heaps ---- */

/* Allocator hooks (for fault injection and accounting). Each gets the ctx given here.
 * malloc may return NULL: the library then fails the call that needed the memory and
 * leaves the heap consistent. Memory is always returned to free with its size. */
typedef struct rcgc_allocator {
    void *(*malloc)(size_t size, void *ctx);
    void *(*realloc)(void *ptr, size_t old_size, size_t new_size, void *ctx);
    void (*free)(void *ptr, size_t size, void *ctx);
    void *ctx;
} rcgc_allocator;

/* Called on a detected broken invariant or misuse (a decref of a dead object, a
 * refcount too small for the references the heap holds, a bad generation in debug
 * builds). The library recovers and continues when the hook returns. */
typedef void (*rcgc_panic_fn)(rcgc_heap *h, const char *message, void *arg);

typedef struct rcgc_heap_options {
    const char *name;                /* copied; NULL: "heap" */
    const rcgc_allocator *allocator; /* copied; NULL: malloc/realloc/free */
    bool set_threshold;              /* use threshold[] instead of (700, 10, 10) */
    size_t threshold[3];
    bool ignore_environment; /* do not read RCGC_DEBUG / RCGC_THRESHOLD */
    rcgc_panic_fn panic;     /* NULL: print the message to stderr and abort() */
    void *panic_arg;
    bool disable_pools; /* every object from the allocator, none from the heap's pools */
} rcgc_heap_options;

/* Creates a heap (rcgc_heap_new: default options and this name). RCGC_DEBUG (comma list of
 * stats,collectable,uncollectable,saveall,leak) and RCGC_THRESHOLD (t0,t1,t2) are read from the
 * environment unless opts->ignore_environment; RCGC_THRESHOLD is ignored when
 * opts->set_threshold. Returns: a new heap, or NULL when memory runs out or the allocator lacks
 * a hook. Ownership: the caller owns the heap; release it with rcgc_heap_free. Thread safety:
 * any thread; the calling thread owns the new heap. */
RCGC_API rcgc_heap *rcgc_heap_new(const char *name);
RCGC_API rcgc_heap *rcgc_heap_new_with(const rcgc_heap_options *opts);

/* Runs a final full collection (no gc callbacks, as CPython's shutdown collection),
 * prints "rcgc: N uncollectable objects at shutdown" to stderr when the garbage list
 * holds N > 0 objects and SAVEALL is off (with DEBUG_UNCOLLECTABLE, the objects as
 * <Type 0x...>), then, SAVEALL still off, how many other objects are still alive
 * (frozen ones not counted) with the live count of each type, and releases all
 * memory, including objects still referenced (their dealloc is not called).
 * NULL is a no-op. Thread safety: owner thread; not from inside a callback (a call from
 * a finalizer, callback, hook, visitor or dealloc is reported to the panic hook and
 * does nothing). */
RCGC_API void rcgc_heap_free(rcgc_heap *h);

/* Returns: the heap's name (borrowed, lives as long as the heap), or NULL for NULL.
 * Thread safety: owner thread. */
RCGC_API const char *rcgc_heap_name(const rcgc_heap *h);

/* ---- objects ---- */

/* rcgc_new(h, type): a new object of type->size zeroed payload bytes; refcount 1,
 * tracked iff type->traverse != NULL. rcgc_new_var(h, type, size): the same with a
 * payload of size bytes (size >= type->size, else NULL). Both record the caller's
 * file:line as the allocation site. May run an automatic collection first.
 * Returns: a new reference, or NULL when memory runs out or an argument is bad.
 * Thread safety: owner thread. */
#define rcgc_new(h, type) rcgc__new((h), (type), __FILE__, __LINE__)
#define rcgc_new_var(h, type, size) rcgc__new_var((h), (type), (size), __FILE__, __LINE__)
RCGC_API RCGC_NODISCARD void *rcgc__new(rcgc_heap *h, const rcgc_type *type, const char *file,
                                        int line);
RCGC_API RCGC_NODISCARD void *rcgc__new_var(rcgc_heap *h, const rcgc_type *type, size_t size,
                                            const char *file, int line);

/* Slow path of rcgc_decref: the count drops to zero, or was zero already (misuse,
 * reported through the panic hook). */
RCGC_API void rcgc__decref_slow(void *obj);

static inline rcgc_head *rcgc__head(const void *obj)
{
    return (rcgc_head *)(uintptr_t)obj - 1;
}

/* Adds one reference. Saturates at RCGC_REFCNT_IMMORTAL.
 * Thread safety: owner thread. */
static inline void rcgc_incref(void *obj)
{
    rcgc_head *hd = rcgc__head(obj);
    uint32_t r = hd->rcgc__refcnt + 1u;
    if (RCGC_LIKELY(r != 0))
        hd->rcgc__refcnt = r;
}

/* Drops one reference; at zero the object dies (finalize, weak references, legacy_del,
 * dealloc, free). Deep chains are freed iteratively (the trashcan).
 * Errors: a decref of an object whose count is 0 already (one release too many, while it
 * dies or after it was freed, as long as its pool block was not handed out again) is
 * reported to the process-wide panic hook (rcgc_set_panic_hook) and does nothing else;
 * ASan and valgrind builds report the read of the freed block first.
 * Ownership: steals the reference. Thread safety: owner thread. */
static inline void rcgc_decref(void *obj)
{
    rcgc_head *hd = rcgc__head(obj);
    uint32_t r = hd->rcgc__refcnt;
    if (RCGC_UNLIKELY(r <= 1u))
        rcgc__decref_slow(obj);
    else if (RCGC_LIKELY(r != RCGC_REFCNT_IMMORTAL))
        hd->rcgc__refcnt = r - 1u;
}

/* NULL-safe variants of rcgc_incref and rcgc_decref: a NULL obj does nothing.
 * Ownership and thread safety: as rcgc_incref / rcgc_decref. */
static inline void rcgc_xincref(void *obj)
{
    if (obj)
        rcgc_incref(obj);
}
static inline void rcgc_xdecref(void *obj)
{
    if (obj)
        rcgc_decref(obj);
}

/* Returns: the reference count (sys.getrefcount without its +1); 0 only while the
 * object dies. Thread safety: owner thread. */
static inline size_t rcgc_refcount(const void *obj)
{
    return rcgc__head(obj)->rcgc__refcnt;
}

/* Start and stop tracking an object whose type has traverse (PyObject_GC_Track and
 * UnTrack); no-op for other types and when the object is already in that state. An
 * untracked object is invisible to the collector, its references included. Untracking
 * needs no memory except in one case: when the list of untracked objects cannot grow,
 * the object stays valid but rcgc_heap_free can no longer release it.
 * Thread safety: owner thread; legal in every callback but traverse. */
RCGC_API void rcgc_track(void *obj);
RCGC_API void rcgc_untrack(void *obj);
/* Returns: whether the collector scans obj (gc.is_tracked): true for a new object of a
 * type with traverse, until rcgc_untrack; frozen objects count as tracked.
 * Thread safety: owner thread. */
RCGC_API bool rcgc_is_tracked(const void *obj);
/* Returns: whether the PEP 442 finalizer of obj has run (gc.is_finalized); always false
 * for types without traverse, whose finalizer runs at every death.
 * Thread safety: owner thread. */
RCGC_API bool rcgc_is_finalized(const void *obj);
/* Returns: the object's type (borrowed, the static the user filled in) and its heap.
 * Thread safety: owner thread. */
RCGC_API const rcgc_type *rcgc_type_of(const void *obj);
RCGC_API rcgc_heap *rcgc_heap_of(const void *obj);
/* Returns: the allocation site recorded by rcgc_new / rcgc_new_var (the file string is
 * the caller's __FILE__ literal, borrowed; "<rcgc>" and line 0 for the library's own
 * objects, such as weak references). Thread safety: owner thread. */
RCGC_API const char *rcgc_site_file(const void *obj);
RCGC_API int rcgc_site_line(const void *obj);

/* ---- collection ---- */

#define RCGC_DEBUG_STATS 1
#define RCGC_DEBUG_COLLECTABLE 2
#define RCGC_DEBUG_UNCOLLECTABLE 4
#define RCGC_DEBUG_SAVEALL 32
#define RCGC_DEBUG_LEAK (RCGC_DEBUG_COLLECTABLE | RCGC_DEBUG_UNCOLLECTABLE | RCGC_DEBUG_SAVEALL)

/* Collects generation g and all younger ones (gc.collect(g)), also when automatic
 * collection is disabled.
 * Returns: the unreachable objects found (collected + uncollectable; resurrected ones
 * excluded); 0 when a collection already runs (nested calls are refused).
 * Errors: RCGC_EINVAL (-1) for g outside 0..2; RCGC_ENOMEM when the collector's working
 * memory could not be had (nothing was freed, the heap is consistent).
 * Thread safety: owner thread; from finalizers and callbacks it returns 0. */
RCGC_API ssize_t rcgc_collect(rcgc_heap *h, int generation);

/* gc.get_count(): count[0] = allocations minus frees of objects whose type has traverse
 * since the last collection (never below 0); count[n+1] = collections of generation n
 * since the last collection of generation n+1. Thread safety: owner thread. */
RCGC_API void rcgc_get_count(const rcgc_heap *h, size_t count[3]);
/* gc.set_threshold / get_threshold. An automatic collection runs at the allocation of an
 * object whose type has traverse when count0 > t0, the collector is enabled and
 * t0 != 0; it collects the oldest generation n whose count exceeds tn, except that
 * generation 2 is collected only once the objects that survived generation-1
 * collections since the last full one reach a quarter of that full collection's
 * survivors. Defaults (700, 10, 10). Thread safety: owner thread. */
RCGC_API void rcgc_set_threshold(rcgc_heap *h, size_t t0, size_t t1, size_t t2);
RCGC_API void rcgc_get_threshold(const rcgc_heap *h, size_t t[3]);
/* gc.enable / disable / isenabled: automatic collection only; rcgc_collect always
 * collects. Thread safety: owner thread. */
RCGC_API void rcgc_enable(rcgc_heap *h);
RCGC_API void rcgc_disable(rcgc_heap *h);
RCGC_API bool rcgc_is_enabled(const rcgc_heap *h);

typedef struct {
    size_t collections, collected, uncollectable;
    uint64_t pause_total_ns, pause_max_ns;
} rcgc_gen_stats;
/* gc.get_stats() plus pause times: cumulative since the heap was made, indexed by the
 * generation that was collected (a full collection counts only in out[2]); collected
 * includes weak references freed by their callbacks, excludes resurrected objects.
 * Thread safety: owner thread. */
RCGC_API void rcgc_get_stats(const rcgc_heap *h, rcgc_gen_stats out[3]);

/* gc.set_debug / get_debug with the RCGC_DEBUG_* flags. STATS, COLLECTABLE and
 * UNCOLLECTABLE print CPython's lines to stderr; SAVEALL puts every unreachable object
 * in the garbage list instead of freeing it. Thread safety: owner thread. */
RCGC_API void rcgc_set_debug(rcgc_heap *h, unsigned flags);
RCGC_API unsigned rcgc_get_debug(const rcgc_heap *h);

/* ---- the garbage list (gc.garbage); it holds a strong reference to each entry ---- */

/* The list is filled by collections: with the objects of unreachable cycles that hold
 * a legacy_del object (and everything such an object reaches), or with every
 * unreachable object under SAVEALL. When memory for the list runs out, an object is
 * left out of it and stays in the heap (the next collection finds it again).
 * Thread safety of all four: owner thread. */

/* Returns: the number of entries. */
RCGC_API size_t rcgc_garbage_count(const rcgc_heap *h);
/* Returns: entry i, or NULL when i is out of range.
 * Ownership: borrowed (valid while the list holds it). */
RCGC_API void *rcgc_garbage_get(rcgc_heap *h, size_t i);
/* Removes the first entry that is obj and drops the list's reference (may free obj).
 * Returns: 0. Errors: RCGC_ENOENT when obj is not in the list. */
RCGC_API int rcgc_garbage_remove(rcgc_heap *h, void *obj);
/* Empties the list, dropping its references (which may free objects). */
RCGC_API void rcgc_garbage_clear(rcgc_heap *h);

/* ---- walks: visitors get borrowed objects; a non-zero result stops the walk ---- */

/* While a walk runs, collections are refused (automatic ones are skipped), and objects
 * the visitor untracks or frees are skipped, never visited twice.
 * Thread safety of all three: owner thread. */

/* gc.get_objects(generation): visits the tracked objects of generation 0..2, or of all
 * three for -1 (never the frozen ones, never the objects of a collection in progress).
 * Returns: 0, or the visitor's non-zero result. Errors: RCGC_EINVAL for a generation
 * outside -1..2 or a NULL heap or visitor; RCGC_ENOMEM (nothing visited) when the
 * long-lived objects of generation 2, which have no list entry after a full collection,
 * cannot be listed for the walk: 8 bytes each, kept until the next full collection.
 * Ownership: visitors get borrowed objects. */
RCGC_API int rcgc_get_objects(rcgc_heap *h, int generation, rcgc_visit_fn fn, void *arg);
/* gc.get_referrers(target): visits, once each, the tracked objects of generations 0..2
 * whose traverse visits target. Returns and errors: as rcgc_get_objects. */
RCGC_API int rcgc_get_referrers(rcgc_heap *h, const void *target, rcgc_visit_fn fn, void *arg);
/* gc.get_referents(obj): visits what obj's traverse visits, in its order (nothing for
 * a type without traverse, tracked or not). Returns: 0 or the visitor's non-zero
 * result. Errors: RCGC_EINVAL for a NULL obj or visitor. */
RCGC_API int rcgc_get_referents(void *obj, rcgc_visit_fn fn, void *arg);

/* ---- freezing (gc.freeze): frozen objects are never scanned nor changed ---- */

/* gc.freeze(): moves every tracked object of generations 0..2 to the permanent
 * generation and resets the counts; collections then never scan those objects nor
 * change their collector state (copy-on-write friendly before fork()); the one write a
 * collection may still make is the reference count of a frozen weak reference whose
 * callback it runs because the target died. gc.unfreeze(): moves them back
 * to generation 2. Both do nothing while a collection or a walk runs, and when memory
 * for the move (an 8-byte entry per object) runs out. Thread safety: owner thread. */
RCGC_API void rcgc_freeze(rcgc_heap *h);
RCGC_API void rcgc_unfreeze(rcgc_heap *h);
/* Returns: the number of frozen objects. Thread safety: owner thread. */
RCGC_API size_t rcgc_get_freeze_count(const rcgc_heap *h);

/* ---- callbacks and event hooks ---- */

#define RCGC_PHASE_START 0
#define RCGC_PHASE_STOP 1
typedef struct {
    int generation;
    size_t collected, uncollectable;
    uint64_t duration_ns;
} rcgc_collect_info;
typedef void (*rcgc_callback_fn)(rcgc_heap *h, int phase, const rcgc_collect_info *info,
                                 void *arg);

typedef enum {
    RCGC_EVENT_COLLECT_START,
    RCGC_EVENT_COLLECTABLE,
    RCGC_EVENT_UNCOLLECTABLE,
    RCGC_EVENT_COLLECT_DONE
} rcgc_event_kind;
typedef struct {
    rcgc_event_kind kind;
    int generation;
    size_t count[3];                   /* START: objects in each generation */
    const void *object;                /* COLLECTABLE / UNCOLLECTABLE (borrowed) */
    const rcgc_type *type;             /* COLLECTABLE / UNCOLLECTABLE */
    size_t unreachable, uncollectable; /* DONE */
    uint64_t duration_ns;              /* DONE */
} rcgc_event;
typedef void (*rcgc_event_fn)(rcgc_heap *h, const rcgc_event *ev, void *arg);

/* gc.callbacks: fn(h, RCGC_PHASE_START/STOP, info, arg) around every collection except
 * the final one of rcgc_heap_free, in registration order. The same pair may be added
 * twice and is then called twice; a callback may add or remove callbacks.
 * Returns: 0. Errors: RCGC_ENOMEM; RCGC_EINVAL for a NULL heap or fn; remove_*:
 * RCGC_ENOENT when no such registration exists (else the oldest match is removed).
 * Ownership: arg is borrowed until removal. Thread safety: owner thread. */
RCGC_API int rcgc_add_callback(rcgc_heap *h, rcgc_callback_fn fn, void *arg);
RCGC_API int rcgc_remove_callback(rcgc_heap *h, rcgc_callback_fn fn, void *arg);
/* Event hooks get START and DONE of every collection, and one COLLECTABLE (resp.
 * UNCOLLECTABLE) event per object when DEBUG_COLLECTABLE (resp. DEBUG_UNCOLLECTABLE)
 * is set: what the debug flags print, as data, in registration order. The event and
 * its object are borrowed for the call; a hook must not allocate, decref or collect.
 * Returns, errors, ownership, thread safety: as for callbacks. */
RCGC_API int rcgc_add_event_hook(rcgc_heap *h, rcgc_event_fn fn, void *arg);
RCGC_API int rcgc_remove_event_hook(rcgc_heap *h, rcgc_event_fn fn, void *arg);

/* ---- weak references ---- */

/* A new weak reference to target (an object of heap h): itself an rcgc object of the
 * built-in type named "weakref", tracked. When target dies, the reference is cleared and
 * then cb(ref, arg) runs, unless the reference itself is dead or garbage; the callbacks
 * of one target run newest first. cb may be NULL.
 * Returns: a new reference, or NULL when memory runs out or target is NULL.
 * Ownership: target is not referenced strongly; arg is borrowed: the caller keeps it
 * valid while the weak reference may still call cb. */
RCGC_API RCGC_NODISCARD void *rcgc_weakref_new(rcgc_heap *h, void *target, rcgc_weakref_cb cb,
                                               void *arg);
/* Returns: the target, or NULL once it is cleared (or while it dies) or when ref is not
 * a weak reference. Ownership: a new reference. Thread safety: owner thread. */
RCGC_API void *rcgc_weakref_get(void *ref);
/* Returns: whether obj is a weak reference made by rcgc_weakref_new.
 * Thread safety: owner thread. */
RCGC_API bool rcgc_is_weakref(const void *obj);
/* Returns: how many uncleared weak references point at obj (weakref.getweakrefcount).
 * Thread safety: owner thread. */
RCGC_API size_t rcgc_weakref_count(const void *obj);

/* ---- census ---- */

typedef struct {
    const rcgc_type *type;
    const char *name;
    size_t count; /* live objects of the type */
    size_t bytes; /* the memory they occupy: payload and 16-byte header, plus a 16-byte
                     size prefix for rcgc_new_var objects larger than type->size */
    bool tracked; /* the type has traverse */
} rcgc_census_entry;
typedef int (*rcgc_census_fn)(const rcgc_census_entry *e, void *arg);
/* One entry per type that ever had an object in this heap, in the order the types first
 * appeared, from live counters: O(types), no walk, no collection.
 * Returns: 0, or the visitor's non-zero result. Errors: RCGC_EINVAL for a NULL heap or
 * visitor. Ownership: the entry is borrowed for the call. Thread safety: owner thread. */
RCGC_API int rcgc_census(rcgc_heap *h, rcgc_census_fn fn, void *arg);

/* ---- the small-object allocator (pymalloc's design, per heap) ---- */

/* Objects whose block (16-byte header, payload and, for rcgc_new_var, a 16-byte size
 * prefix) is at most RCGC_SMALL_REQUEST_THRESHOLD bytes come from the heap's pools
 * (unless options.disable_pools): a
 * pool (pool_size bytes in the statistics) holds blocks of one size class (multiples of
 * 16 bytes), an arena is 64 pools, mapped from the OS (mmap) with the default allocator,
 * or taken from the heap's allocator hooks when the options give some (then with one
 * pool of slack for alignment, counted as bytes lost to arena alignment). The
 * most used arenas serve first, so that the others empty out; an arena whose pools are
 * all empty goes back to the OS (one empty arena is kept in reserve). Larger objects and
 * the collector's own tables come from the allocator hooks. */
#define RCGC_SMALL_REQUEST_THRESHOLD 512
#define RCGC_SIZE_CLASSES 32

typedef struct {
    size_t size;             /* block size of the class: 16 * (index + 1) */
    size_t pools;            /* pools of this class that hold at least one block */
    size_t blocks_in_use;    /* blocks handed out */
    size_t blocks_available; /* free blocks in those pools (carved or not) */
} rcgc_size_class_stats;

/* sys._debugmallocstats as data. Every byte of every arena is in exactly one of
 * bytes_in_allocated_blocks, bytes_in_available_blocks, unused_pools * pool_size,
 * bytes_lost_pool_headers, bytes_lost_quantization and bytes_lost_arena_alignment; their
 * sum is arenas_current * arena_size + bytes_lost_arena_alignment (the "Total" line). */
typedef struct {
    size_t small_request_threshold; /* RCGC_SMALL_REQUEST_THRESHOLD */
    size_t pool_size, arena_size;   /* bytes */
    rcgc_size_class_stats classes[RCGC_SIZE_CLASSES];
    size_t arenas_allocated_total; /* arenas ever mapped */
    size_t arenas_reclaimed;       /* arenas given back */
    size_t arenas_highwater;       /* most arenas held at once */
    size_t arenas_current;         /* arenas held now */
    size_t bytes_in_allocated_blocks;
    size_t bytes_in_available_blocks;
    size_t unused_pools;               /* empty pools in held arenas */
    size_t bytes_lost_pool_headers;    /* pool headers */
    size_t bytes_lost_quantization;    /* pool tails too small for one more block */
    size_t bytes_lost_arena_alignment; /* arena bytes before the first / after the last pool */
    size_t large_objects, large_bytes; /* objects (and their bytes) from the allocator hooks */
} rcgc_malloc_stats;

/* Fills *out with the allocator's figures; O(arenas + pools in use), no walk of objects.
 * Errors: RCGC_EINVAL for a NULL heap or out. Thread safety: owner thread (the inspector
 * reads the copy published in the heap's snapshot). */
RCGC_API int rcgc_malloc_stats_get(const rcgc_heap *h, rcgc_malloc_stats *out);

/* Writes the figures in the layout of CPython's sys._debugmallocstats (the pymalloc
 * part: the size-class table, then the arena and byte lines) to out. Returns: 0, or
 * RCGC_EINVAL for a NULL heap or stream. Thread safety: owner thread. */
RCGC_API int rcgc_debug_malloc_stats(const rcgc_heap *h, FILE *out);

/* ---- threads: the host and the inspector (DESIGN.md, Threads) ---- */

/* A safepoint: the owner offers the inspector a consistent moment. Runs a walk the
 * inspector asked for, if any, and publishes a fresh snapshot when an inspector is
 * attached and the last one is stale. Allocation and the end of every collection are
 * safepoints too; a host that computes for long without allocating should call this.
 * Costs one relaxed atomic load when nobody asks. NULL is a no-op.
 * Thread safety: owner thread; not inside a callback (it then does nothing). */
RCGC_API void rcgc_safepoint(rcgc_heap *h);

/* rcgc_heap_release: the owner declares the heap idle (blocked in I/O, sleeping) and
 * promises not to touch it, nor any of its objects, until rcgc_heap_acquire. Meanwhile
 * the inspector walks the heap from its own thread. rcgc_heap_acquire waits for such a
 * walk to finish (walks are bounded) and makes the calling thread the owner.
 * NULL is a no-op. Thread safety: release from the owner thread; acquire from the
 * thread that becomes the owner. */
RCGC_API void rcgc_heap_release(rcgc_heap *h);
RCGC_API void rcgc_heap_acquire(rcgc_heap *h);

/* ---- panic hook for code without a heap (decref of a dead object) ---- */

/* Sets the process-wide fallback panic hook used when the heap has none; NULL restores
 * the default (message to stderr, then abort()).
 * Thread safety: call it at start-up, before other threads use rcgc. */
RCGC_API void rcgc_set_panic_hook(rcgc_panic_fn fn, void *arg);

/* Checks every invariant of the heap (lists, slots, flags, counters, refcounts against
 * the references the heap holds) and reports violations through the panic hook.
 * Returns: the number of violations found. Thread safety: owner thread. */
RCGC_API size_t rcgc__heap_check(rcgc_heap *h);

#ifdef __cplusplus
}
#endif

#endif /* RCGC_RCGC_H */
