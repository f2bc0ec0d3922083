/* testlib.h: shared fixtures for the collector's unit tests.
 *
 * Test object types (one payload layout, tl_node, several behaviours chosen by type so
 * that "has a finalizer" is decided from the type alone, as the collector must), a
 * global call log that hooks write into (tests never assert inside a library callback:
 * cmocka would longjmp out of the collector), a survivors list for resurrecting
 * finalizers, heap fixtures that check every invariant, weak-reference helpers and a
 * stderr capture. */
#ifndef RCGC_TESTLIB_H
#define RCGC_TESTLIB_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <rcgc/rcgc.h>

/* ---- test objects ---- */

#define TL_SLOTS 4

/* Behaviour bits for tl_node.fin_mode (finalize) and tl_node.del_mode (legacy_del). */
#define TL_RESURRECT 1u /* store a new reference to self in the survivors list */
#define TL_SUICIDE 2u   /* drop every own slot (break own links), set suicided */

typedef struct tl_node tl_node;
typedef void (*tl_hook)(tl_node *self);

/* The payload of every test type. slot[] holds strong references (NULL: empty); types
 * with traverse visit them, ContainerNoGC holds them invisibly. VarNode adds items[]. */
struct tl_node {
    void *slot[TL_SLOTS];
    int id;    /* chosen by the test; logged by every hook */
    int value; /* free for tests */
    unsigned fin_mode;
    unsigned del_mode;
    tl_hook on_finalize;   /* extra finalize behaviour, after logging */
    tl_hook on_legacy_del; /* extra legacy_del behaviour, after logging */
    void *user;            /* borrowed, for hooks */
    bool suicided;
};

typedef struct tl_var {
    tl_node base;
    size_t n;
    void *items[]; /* strong references, visited after base.slot[] */
} tl_var;

extern const rcgc_type tl_Node;          /* "Node": traverse, clear, dealloc */
extern const rcgc_type tl_FinNode;       /* "FinNode": + finalize */
extern const rcgc_type tl_LegacyNode;    /* "LegacyNode": + legacy_del */
extern const rcgc_type tl_LegacyFinNode; /* "LegacyFinNode": + finalize + legacy_del */
extern const rcgc_type tl_ContainerNoGC; /* "ContainerNoGC": holds slots, no traverse */
extern const rcgc_type tl_Leaf;          /* "Leaf": no traverse, never holds anything */
extern const rcgc_type tl_LeafFin;       /* "LeafFin": no traverse, finalize */
extern const rcgc_type tl_VarNode;       /* "VarNode": tl_var, for rcgc_new_var */

/* A new object of type (any tl_* type except tl_VarNode) with the given id.
 * Returns: a new reference (fails the test when NULL). */
tl_node *tl_new(rcgc_heap *h, const rcgc_type *type, int id);
/* A new VarNode with n item slots. Returns: a new reference. */
tl_var *tl_var_new(rcgc_heap *h, int id, size_t n);

/* Stores child in n->slot[i] (incref child, decref the previous content). */
void tl_set(void *n, int i, void *child);
/* Stores child in n->slot[i], stealing the caller's reference. */
void tl_set_steal(void *n, int i, void *child);
/* n->slot[i] = NULL, dropping the reference (may free). */
void tl_unset(void *n, int i);
/* Makes n reference itself from slot i. */
void tl_self_loop(void *n, int i);
/* Item i of a VarNode (incref child, decref the previous). */
void tl_var_set(tl_var *v, size_t i, void *child);

/* ---- the call log ---- */

typedef enum {
    TL_EV_FINALIZE,
    TL_EV_LEGACY_DEL,
    TL_EV_CLEAR,
    TL_EV_DEALLOC,
    TL_EV_WRCB, /* tl_wrcb_log ran: id = arg as int, ptr = ref, alive = get(ref)!=NULL */
    TL_EV_MARK  /* written by tests */
} tl_event_kind;

typedef struct {
    tl_event_kind kind;
    int id;
    const void *ptr;
    bool alive;
} tl_event;

void tl_log_reset(void);
void tl_log_add(tl_event_kind kind, int id, const void *ptr, bool alive);
size_t tl_log_len(void);
const tl_event *tl_log_at(size_t i);
/* Entries of kind with this id (-1: any id). */
size_t tl_log_count(tl_event_kind kind, int id);

/* Weak-reference callback that logs TL_EV_WRCB with id = (int)(intptr_t)arg, the ref, and
 * whether rcgc_weakref_get(ref) still returned an object. */
void tl_wrcb_log(void *ref, void *arg);

/* ---- survivors (resurrection target; the list holds strong references) ---- */

#define TL_SURVIVORS_MAX 512

void tl_survivor_add(void *obj); /* increfs */
size_t tl_survivors_count(void);
void *tl_survivor(size_t i); /* borrowed */
/* Empties the list, dropping its references (finalizers may add again: not looped). */
void tl_survivors_clear(void);

/* ---- heaps ---- */

/* A heap for one test: ignore_environment, automatic collection disabled (as
 * test_gc.py's setUpModule does), a panic hook that records messages. Resets the log,
 * the survivors list and the panic record. */
rcgc_heap *tl_heap_new(void);
/* The same from caller-filled options; panic/panic_arg are replaced by the recorder
 * when opts->panic is NULL. Does not disable automatic collection. */
rcgc_heap *tl_heap_new_with(rcgc_heap_options *opts);
/* Clears the survivors list, then rcgc_heap_free. Fails the test when a panic was
 * recorded that the test did not expect (see tl_panic_expect). */
#define tl_heap_free(h) tl_heap_free_at((h), __FILE__, __LINE__)
void tl_heap_free_at(rcgc_heap *h, const char *file, int line);

/* Runs rcgc__heap_check(h) and fails the test (at the caller's line) on any violation,
 * printing the messages the panic hook received. */
#define tl_check(h) tl_check_at((h), __FILE__, __LINE__)
void tl_check_at(rcgc_heap *h, const char *file, int line);

/* The recording panic hook and its record. */
void tl_panic_record(rcgc_heap *h, const char *message, void *arg);
size_t tl_panic_count(void);
const char *tl_panic_message(size_t i);
void tl_panic_reset(void);
/* Panics recorded from now on are expected (not failures in tl_heap_free). */
void tl_panic_expect(bool expected);

/* ---- walks and counts ---- */

/* The generation (0..2) whose get_objects walk visits obj, or -1. */
int tl_generation_of(rcgc_heap *h, const void *obj);
/* Objects visited by rcgc_get_objects(h, g) (g = -1: all); fails the test on error. */
size_t tl_objects_in(rcgc_heap *h, int g);
/* Whether rcgc_get_referrers(h, target) visits referrer. */
bool tl_is_referrer(rcgc_heap *h, const void *target, const void *referrer);
/* Number of referrers of target. */
size_t tl_referrers_count(rcgc_heap *h, const void *target);

/* Asserts the three counts. */
#define tl_assert_counts(h, c0, c1, c2)                                                        \
    tl_assert_counts_at((h), (c0), (c1), (c2), __FILE__, __LINE__)
void tl_assert_counts_at(rcgc_heap *h, size_t c0, size_t c1, size_t c2, const char *file,
                         int line);

/* ---- weak references ---- */

/* Whether the weak reference still returns its target. */
bool tl_wr_alive(void *ref);
/* A new weak reference; fails the test when NULL. */
void *tl_wr_new(rcgc_heap *h, void *target, rcgc_weakref_cb cb, void *arg);

/* GC_Detector: a self-cycle whose weak-reference callback sets happened when a collection
 * frees it. */
typedef struct {
    void *wr;
    bool happened;
} tl_detector;
void tl_detector_init(rcgc_heap *h, tl_detector *d);
void tl_detector_fini(tl_detector *d);

/* ---- stderr capture (fd 2 redirected to a temporary file) ---- */

typedef struct {
    int saved_fd;
    void *file; /* FILE * */
} tl_capture;
void tl_capture_start(tl_capture *c);
/* Returns: what was written to fd 2 since start (malloc'd, NUL-terminated; free it). */
char *tl_capture_stop(tl_capture *c);

/* Number of non-overlapping occurrences of needle in hay. */
size_t tl_count_substr(const char *hay, const char *needle);

#endif /* RCGC_TESTLIB_H */
