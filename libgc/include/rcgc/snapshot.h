/* rcgc/snapshot.h: the one internal interface between librcgc and the inspection
 * server (librcgc-inspect). Not for applications: names are rcgc__, and the layout may
 * change in any release; librcgc-inspect is always built from the same source tree.
 *
 * Threading model. A heap belongs to its owner thread (see rcgc.h). The inspector runs on
 * other threads and never walks a live heap on its own. It gets:
 *  - the registry of heaps, guarded by one process-wide mutex;
 *  - snapshots that the owner publishes (after collections, at safepoints, when it
 *    releases the heap) and that any thread reads without taking a lock the owner
 *    waits for;
 *  - calls: a function run against the heap on the owner thread at its next safepoint
 *    (allocation, the end of a collection, rcgc_safepoint), or on the caller's thread
 *    while the owner has released the heap with rcgc_heap_release. */
#ifndef RCGC_SNAPSHOT_H
#define RCGC_SNAPSHOT_H

#include <rcgc/rcgc.h>
#include <rcgc/tracemalloc.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Live objects and bytes allocated at one site (type, file:line). */
typedef struct {
    const rcgc_type *type;
    const char *file; /* the rcgc_new caller's __FILE__ */
    int line;
    size_t count, bytes;
} rcgc__site_entry;

/* What the owner published; immutable once published. */
typedef struct rcgc__snapshot {
    uint64_t serial;  /* 1, 2, ...: one per publication */
    uint64_t time_ns; /* CLOCK_MONOTONIC at publication */
    size_t count[3], threshold[3];
    size_t generation_size[3]; /* tracked objects in each generation */
    size_t frozen, untracked, garbage;
    size_t objects, bytes; /* all live objects of the heap */
    bool enabled;
    unsigned debug;
    rcgc_gen_stats stats[3];
    size_t ntypes;
    const rcgc_census_entry *types; /* every type that had objects; names borrowed */
    size_t nsites;
    const rcgc__site_entry *sites;   /* every site that has live objects */
    rcgc_malloc_stats malloc;        /* the small-object allocator (rcgc_malloc_stats_get) */
    rcgc_tracemalloc_status tracing; /* rcgc_tracemalloc_get_status */
} rcgc__snapshot;

/* Turns publication on (an inspector is attached) or off. Off, the owner publishes
 * nothing and pays one relaxed atomic load per safepoint. Thread safety: any thread. */
RCGC_API void rcgc__set_inspected(bool on);

/* Visits each heap of the process in creation order, under the registry lock: fn must
 * not call rcgc__heap_call or anything else that takes the lock, and must not keep the
 * heap pointer after it returns. Returns: 0 or fn's first non-zero result.
 * Thread safety: any thread. */
RCGC_API int rcgc__heaps_foreach(int (*fn)(rcgc_heap *h, void *arg), void *arg);

/* Runs fn(snapshot, arg) on the newest snapshot of the heap called name, under the
 * registry lock (the same rules as rcgc__heaps_foreach). A heap that never published
 * gives a snapshot with serial 0 and nothing else filled in.
 * Returns: fn's result, or RCGC_ENOENT when no heap has that name.
 * Thread safety: any thread. */
RCGC_API int rcgc__snapshot_read(const char *name,
                                 int (*fn)(const rcgc__snapshot *s, void *arg), void *arg);

/* Runs fn(h, arg) against the heap called name: on the owner thread at its next
 * safepoint, or on this thread at once while the owner has released the heap. fn may use
 * every read-only call of rcgc.h (walks, refcounts, weakref_get is not read-only), must
 * not allocate, free or collect, and should bound its own work.
 * Returns: 0 once fn ran; RCGC_ETIMEDOUT when no safepoint came within timeout_ns (fn
 * did not run and never will); RCGC_ENOENT when no heap has that name or it was freed
 * before fn ran. Thread safety: any thread but an owner's (an owner calling it on its
 * own heap would wait for itself; it then gets RCGC_EBUSY). */
RCGC_API int rcgc__heap_call(const char *name, void (*fn)(rcgc_heap *h, void *arg), void *arg,
                             uint64_t timeout_ns);

/* The process-wide event sink: every heap's collection events (START and DONE always,
 * COLLECTABLE / UNCOLLECTABLE per the heap's debug flags), after the heap's own hooks,
 * on the owner thread. The sink must be thread-safe (owners of different heaps call it
 * concurrently), fast and must not call into rcgc. NULL removes it; after
 * rcgc__set_event_sink(NULL, NULL) returns, a sink may still be running on an owner
 * thread for a moment: the caller keeps arg valid until it has stopped every heap's use
 * (the inspector keeps its sink state alive for the life of the process).
 * Thread safety: any thread. */
typedef void (*rcgc__event_sink_fn)(rcgc_heap *h, const char *heap_name, const rcgc_event *ev,
                                    void *arg);
RCGC_API void rcgc__set_event_sink(rcgc__event_sink_fn fn, void *arg);

/* The same for a call that changes the heap (rcgc_collect, set_threshold, set_debug,
 * rcgc__snapshot_publish): fn runs only on the owner thread at a safepoint, never on
 * the caller's thread (a released heap times out until its owner acquires it and
 * reaches a safepoint). fn may do anything the owner may do outside callbacks.
 * Returns and thread safety: as rcgc__heap_call. */
RCGC_API int rcgc__heap_call_owner(const char *name, void (*fn)(rcgc_heap *h, void *arg),
                                   void *arg, uint64_t timeout_ns);

/* ---- analyses: inside a rcgc__heap_call function (owner thread or borrowed heap) ---- */

/* Returns: whether p is a live object of h. Never reads through p before finding it in
 * the heap's lists (an id from the network may be anything). O(objects). */
RCGC_API bool rcgc__object_valid(rcgc_heap *h, const void *p);

typedef struct {
    const rcgc_type *type;
    size_t bytes; /* header and payload (and size prefix) */
    size_t refcount;
    int generation;    /* 0..2, or -1: see where */
    const char *where; /* "0", "1", "2", "frozen", "untracked", "uncollectable", "work" */
    bool tracked, finalized;
    const char *file; /* allocation site */
    int line;
    size_t weakrefs; /* weak references pointing at it */
} rcgc__object_info;
/* Fills out for a valid object. */
RCGC_API void rcgc__object_describe(const void *obj, rcgc__object_info *out);

/* Returns: how many references objects of h (every object whose type has traverse,
 * tracked or not) hold to target. refcount minus this is held from outside the heap:
 * C variables, the garbage list, a leak. O(objects). */
RCGC_API size_t rcgc__refs_from_heap(rcgc_heap *h, const void *target);

enum {
    RCGC__PATH_FOUND = 0,  /* step() got the path, root first, target last */
    RCGC__PATH_NONE = 1,   /* no object held from outside reaches target */
    RCGC__PATH_BUDGET = 2, /* the budget ran out first */
};
/* The shortest chain of references from an object held from outside the heap (its
 * refcount exceeds the heap's references to it) to target, breadth first from all such
 * roots, within budget_ns. Calls step(obj, arg) for each object of the path when found;
 * a non-zero step result stops and is returned. *outcome says which case happened.
 * Returns: 0, step's result, or RCGC_ENOMEM. O(objects + references). */
RCGC_API int rcgc__path_from_root(rcgc_heap *h, const void *target, uint64_t budget_ns,
                                  int (*step)(const void *obj, void *arg), void *arg,
                                  int *outcome);

/* Visits every object of h once: generations 0..2, frozen, untracked, the garbage
 * list's, a collection's work list (tracked or not, unlike rcgc_get_objects). fn must
 * not change the heap. Returns: 0 or fn's first non-zero result. */
RCGC_API int rcgc__objects_foreach(rcgc_heap *h, int (*fn)(void *obj, void *arg), void *arg);

/* Visits, once each, every object of h (any list: generations, frozen, untracked)
 * whose traverse visits target. Returns: 0 or fn's first non-zero result. */
RCGC_API int rcgc__referrers(rcgc_heap *h, const void *target, int (*fn)(void *obj, void *arg),
                             void *arg);

/* The garbage list and everything it reaches (at most max_objects objects, breadth
 * first from the list; *truncated says whether the cap was hit), grouped by strongly
 * connected component: group(members, n, arg) once per component, a component's
 * members in no particular order, components in reverse topological order (a group
 * comes before the groups that reach it). A non-zero result of group stops and is
 * returned. Returns: 0, group's result or RCGC_ENOMEM. */
RCGC_API int rcgc__garbage_groups(rcgc_heap *h, size_t max_objects,
                                  int (*group)(void *const *members, size_t n, void *arg),
                                  void *arg, bool *truncated);

typedef struct {
    uint64_t objects, bytes;
} rcgc__tally;

typedef struct {
    bool complete;        /* false: the budget ran out (see rcgc__retained) */
    rcgc__tally target;   /* the target objects themselves */
    rcgc__tally retained; /* the retained set, target included */
    uint64_t dominated;   /* the target's children in the dominator tree */
} rcgc__retained_info;

/* What the target keeps alive: the objects that no root (an object held from outside
 * the heap, as for rcgc__path_from_root) reaches except through the target, the target
 * included — what dropping it would free. The target is one object (target non-NULL),
 * or every listed object whose type is called type_name (target NULL), taken together
 * as one node.
 *
 * Calls by_type(type, tally, arg) once per type of the retained set (any order), then
 * dominated(obj, tally, arg) for the target's children in the dominator tree (objects
 * whose immediate dominator is the target; for a type, the objects no single other
 * object of the retained set dominates), most retained bytes first, each with what it
 * retains, until dominated returns non-zero. Either callback may be NULL.
 *
 * budget_ns bounds marking from the roots and building the dominator tree (finding what
 * the target reaches and counting the heap's references always finish: one pass each).
 * When it runs out, out->complete is false, retained counts everything the target
 * reaches that was not yet proved reachable from a root (an upper bound) and dominated
 * is not called. Returns: 0, by_type's result, or RCGC_ENOMEM (nothing called).
 * O(objects + references) memory and time, log factor for the dominators. */
RCGC_API int rcgc__retained(rcgc_heap *h, const void *target, const char *type_name,
                            uint64_t budget_ns,
                            int (*by_type)(const rcgc_type *t, const rcgc__tally *n, void *arg),
                            int (*dominated)(const void *obj, const rcgc__tally *n, void *arg),
                            void *arg, rcgc__retained_info *out);

/* Publishes a fresh snapshot now (the owner, or a rcgc__heap_call function).
 * Returns: 0 or RCGC_ENOMEM (the previous snapshot stays). Thread safety: owner. */
RCGC_API int rcgc__snapshot_publish(rcgc_heap *h);

#ifdef __cplusplus
}
#endif

#endif /* RCGC_SNAPSHOT_H */
