/* fault_alloc.h: a fault-injecting, accounting rcgc_allocator for the tests (Jansson's
 * chaos allocator).
 *
 * It counts every allocation request (malloc and realloc alike), fails the Nth one, or
 * every one from the Nth on, and records each block it hands out with its size, so that a
 * test can check after rcgc_heap_free that every block came back, each freed with the
 * size it was allocated with. Its own bookkeeping uses libc directly, never the hooks.
 *
 * Threading: one fault_alloc serves one heap at a time, on the heap's owner thread. The
 * hooks never call into cmocka (a failing assertion must not longjmp out of the
 * collector): misuse is counted and the test asserts on the counters afterwards. */
#ifndef RCGC_FAULT_ALLOC_H
#define RCGC_FAULT_ALLOC_H

#include <stdbool.h>
#include <stddef.h>

#include <rcgc/rcgc.h>

typedef struct fault_alloc {
    /* ---- configuration (fault_alloc_fail_nth / fault_alloc_fail_from) ---- */
    long fail_at;   /* index of the request to fail, counted from arming; -1: never */
    bool fail_from; /* fail every request from fail_at on, not just that one */

    /* ---- counters ---- */
    long requests;      /* requests since the last arming (malloc + realloc) */
    long total;         /* requests since fault_alloc_init */
    long injected;      /* failures injected since the last arming */
    size_t live_blocks; /* blocks handed out and not yet freed */
    size_t live_bytes;
    size_t peak_bytes;
    size_t size_mismatches; /* free/realloc that named a size other than the block's */
    size_t unknown_frees;   /* free/realloc of a pointer this allocator never gave out */

    /* ---- the block table (open addressing on the block address; libc memory) ---- */
    void **keys;
    size_t *sizes;
    size_t cap, len;

    rcgc_allocator hooks; /* malloc/realloc/free bound to this state (ctx = this) */
} fault_alloc;

/* Initialises fa: nothing armed, counters zero, no blocks. */
void fault_alloc_init(fault_alloc *fa);
/* Releases the block table. Blocks still live are reported on stderr (not freed: the
 * heap that owns them may still use them). */
void fault_alloc_fini(fault_alloc *fa);

/* Returns: the allocator to pass in rcgc_heap_options.allocator (borrowed from fa). */
const rcgc_allocator *fault_alloc_hooks(fault_alloc *fa);

/* Arms the allocator: the request number n (0-based, counted from this call) fails;
 * n = -1 disarms. Resets `requests` and `injected`. */
void fault_alloc_fail_nth(fault_alloc *fa, long n);
/* The same, but every request from number n on fails (persistent exhaustion). */
void fault_alloc_fail_from(fault_alloc *fa, long n);
/* Disarms. Returns: whether a failure was injected since the last arming. */
bool fault_alloc_disarm(fault_alloc *fa);

/* Returns: whether the allocation accounting is clean: no size mismatch and no unknown
 * free so far (live blocks are not considered). */
bool fault_alloc_clean(const fault_alloc *fa);

/* Called each time a failure is injected: an empty function to break on
 * (gdb: break rcgc_test_fault). */
void rcgc_test_fault(void);

#endif /* RCGC_FAULT_ALLOC_H */
