/* alloc.h: the small-object allocator (pymalloc's design, one per heap). Never installed.
 *
 * An arena is RCGC__ARENA_SIZE bytes cut into RCGC__POOLS_PER_ARENA pools aligned to
 * RCGC__POOL_SIZE; a pool holds blocks of one size class (16-byte steps up to 512). A
 * block's pool is found by masking its address, so freeing needs no size lookup.
 *
 * Invariants (checked by rcgc__pools_check):
 *  - used[c] lists exactly the pools of class c with 0 < ref and a free block: a
 *    non-NULL freeblock, or room at nextoffset (a pool never on the list is full);
 *  - a pool with ref == 0 is on its arena's free list, never on used[];
 *  - an arena with 0 < nfree < POOLS_PER_ARENA is in bucket[nfree]; a full arena
 *    (nfree == 0) is in no bucket; an arena with every pool free is released or is the
 *    spare; nfree counts free-listed pools plus pools never carved;
 *  - the lowest set bit of `nonempty` is the smallest nfree with an arena: allocation
 *    takes pools from the most used arena, so the least used ones can empty out. */
#ifndef RCGC_ALLOC_H
#define RCGC_ALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifndef RCGC_POOL_BITS
#define RCGC_POOL_BITS 14 /* 16 KiB pools (chosen by bench/bench_alloc.c, see bench/README) */
#endif
#define RCGC__POOL_SIZE ((size_t)1 << RCGC_POOL_BITS)
#define RCGC__POOL_MASK (RCGC__POOL_SIZE - 1)
#define RCGC__POOLS_PER_ARENA 64u /* fixed: one 64-bit word of arena buckets */
#define RCGC__ARENA_SIZE (RCGC__POOL_SIZE * RCGC__POOLS_PER_ARENA)
#define RCGC__ALIGN_SHIFT 4
#define RCGC__NCLASSES 32u
#define RCGC__SMALL_MAX 512u

/* ---- making ASan and valgrind see inside the pools (mimalloc's track.h idea) ---- */

#if defined(__SANITIZE_ADDRESS__)
#define RCGC__ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RCGC__ASAN 1
#endif
#endif

#ifdef RCGC__ASAN
#include <sanitizer/asan_interface.h>
#define RCGC__POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define RCGC__UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define RCGC__POISON(p, n) ((void)(p), (void)(n))
#define RCGC__UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#if defined(RCGC_VALGRIND) && defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define RCGC__VG 1
#endif
#endif

#ifdef RCGC__VG
/* Each heap's pools are one valgrind mempool anchored at the rcgc__pools struct. */
#define RCGC__VG_CREATE(anchor) VALGRIND_CREATE_MEMPOOL((anchor), 0, 0)
#define RCGC__VG_DESTROY(anchor) VALGRIND_DESTROY_MEMPOOL(anchor)
#define RCGC__VG_ALLOC(anchor, p, n) VALGRIND_MEMPOOL_ALLOC((anchor), (p), (n))
#define RCGC__VG_FREE(anchor, p) VALGRIND_MEMPOOL_FREE((anchor), (p))
#define RCGC__VG_NOACCESS(p, n) VALGRIND_MAKE_MEM_NOACCESS((p), (n))
#define RCGC__VG_DEFINED(p, n) VALGRIND_MAKE_MEM_DEFINED((p), (n))
#define RCGC__VG_UNDEFINED(p, n) VALGRIND_MAKE_MEM_UNDEFINED((p), (n))
/* Around a deliberate read of a free block's first word (rcgc__resident_in). */
#define RCGC__VG_QUIET_BEGIN() VALGRIND_DISABLE_ERROR_REPORTING
#define RCGC__VG_QUIET_END() VALGRIND_ENABLE_ERROR_REPORTING
#else
#define RCGC__VG_CREATE(anchor) ((void)(anchor))
#define RCGC__VG_DESTROY(anchor) ((void)(anchor))
#define RCGC__VG_ALLOC(anchor, p, n) ((void)(anchor), (void)(p), (void)(n))
#define RCGC__VG_FREE(anchor, p) ((void)(anchor), (void)(p))
#define RCGC__VG_NOACCESS(p, n) ((void)(p), (void)(n))
#define RCGC__VG_DEFINED(p, n) ((void)(p), (void)(n))
#define RCGC__VG_UNDEFINED(p, n) ((void)(p), (void)(n))
#define RCGC__VG_QUIET_BEGIN() ((void)0)
#define RCGC__VG_QUIET_END() ((void)0)
#endif

/* ---- pools and arenas ---- */

typedef struct rcgc__arena rcgc__arena;

/* The header at the start of every carved pool; blocks follow it. 48 bytes, so blocks
 * stay 16-byte aligned. */
typedef struct rcgc__pool {
    void *freeblock;                /* freed blocks, linked through their first word */
    uint32_t ref;                   /* blocks handed out */
    uint32_t szidx;                 /* size class */
    struct rcgc__pool *next, *prev; /* used[szidx] list, or (next only) the arena's free list */
    rcgc__arena *arena;
    uint32_t nextoffset;    /* first never-used block (bytes from the pool start) */
    uint32_t maxnextoffset; /* the last offset where a whole block still fits */
} rcgc__pool;

#define RCGC__POOL_OVERHEAD ((sizeof(rcgc__pool) + 15u) & ~(size_t)15u)

struct rcgc__arena {
    void *raw;                /* what was mapped or allocated (the start of the block) */
    size_t raw_size;          /* its size */
    char *base;               /* the first pool: RCGC__POOL_SIZE aligned */
    char *pool_address;       /* the next never-carved pool */
    rcgc__pool *freepools;    /* emptied pools, linked through next */
    uint32_t nfree;           /* free-listed pools plus never-carved ones */
    uint32_t ncarved;         /* pools carved so far */
    rcgc__arena *next, *prev; /* bucket[nfree] list */
    rcgc__arena *all_next, *all_prev; /* every held arena */
};

typedef struct rcgc__pools {
    rcgc__pool *used[RCGC__NCLASSES];
    rcgc__arena *bucket[RCGC__POOLS_PER_ARENA]; /* by nfree; bucket[0] unused */
    uint64_t nonempty;                          /* bit i: bucket[i] != NULL */
    rcgc__arena *all;
    rcgc__arena *spare; /* one empty arena kept against thrashing */
    bool from_hooks;    /* arenas come from the heap's allocator hooks, not mmap */
    bool disabled;      /* every object from the hooks (options.disable_pools) */
    bool destroying;    /* heap_free: emptied arenas stay until rcgc__pools_destroy */
    size_t arenas_total, arenas_reclaimed, arenas_highwater, arenas_current;
    size_t large_objects, large_bytes;
} rcgc__pools;

struct rcgc_heap;

void rcgc__pools_init(struct rcgc_heap *h, bool from_hooks, bool disabled);
/* Releases every arena (the heap is being destroyed; blocks in use are dropped). */
void rcgc__pools_destroy(struct rcgc_heap *h);
/* The slow path: a pool for class c from the most used arena, or a new arena. */
void *rcgc__pool_alloc_slow(struct rcgc_heap *h, unsigned c);
/* The slow path of a free: the pool was full (rejoins used[]) and/or is now empty. */
void rcgc__pool_free_slow(struct rcgc_heap *h, rcgc__pool *p, bool was_full);
/* Checks the invariants above; returns the number of violations (reported by panic). */
size_t rcgc__pools_check(struct rcgc_heap *h);
/* Calls fn(block, arg) for every block below the carving point of every pool in use, in
 * address order within a pool: the blocks handed out and the free ones, which the
 * caller tells apart by their first word, a free-list link (16-byte aligned or NULL;
 * under valgrind read it between RCGC__VG_QUIET_BEGIN and _END). With ASan only the
 * handed-out blocks are visited (the free ones are poisoned). fn must not allocate
 * blocks; it may free the block it was given only while ps->destroying is set (no pool
 * or arena then goes away). Returns 0 or fn's first non-zero result. */
int rcgc__pools_each_block(struct rcgc_heap *h, int (*fn)(void *block, void *arg), void *arg);
/* The block that starts at p if p is the start of such a block (free or not, as above;
 * with ASan a free block gives NULL), else NULL. Reads only pool and arena headers. */
void *rcgc__pools_block_at(struct rcgc_heap *h, const void *p);

static inline unsigned rcgc__size_class(size_t nbytes)
{
    return (unsigned)((nbytes - 1) >> RCGC__ALIGN_SHIFT);
}

static inline size_t rcgc__class_size(unsigned c)
{
    return (size_t)(c + 1) << RCGC__ALIGN_SHIFT;
}

/* Whether block b may be handed out: with ASan, free blocks are poisoned. */
static inline bool rcgc__block_maybe_live(const void *b)
{
#ifdef RCGC__ASAN
    return !__asan_address_is_poisoned(b);
#else
    (void)b;
    return true;
#endif
}

/* The loop of rcgc__pools_each_block, for callers that want it specialised to their fn
 * (a static function named at the call is inlined into it). */
__attribute__((always_inline)) static inline int
rcgc__pools_each_block_inline(rcgc__pools *ps, int (*fn)(void *block, void *arg), void *arg)
{
    for (rcgc__arena *a = ps->all; a != NULL; a = a->all_next) {
        for (uint32_t i = 0; i < a->ncarved; i++) {
            rcgc__pool *p = (rcgc__pool *)(void *)(a->base + i * RCGC__POOL_SIZE);
            if (p->ref == 0)
                continue;
            size_t size = rcgc__class_size(p->szidx);
            char *end = (char *)p + p->nextoffset;
            for (char *b = (char *)p + RCGC__POOL_OVERHEAD; b < end; b += size) {
                if (!rcgc__block_maybe_live(b))
                    continue;
                int r = fn(b, arg);
                if (r != 0)
                    return r;
            }
        }
    }
    return 0;
}

/* The next never-used block of p becomes its free list (p->freeblock was NULL); false
 * when none is left. */
static inline bool rcgc__pool_carve(rcgc__pool *p, size_t size)
{
    if (p->nextoffset > p->maxnextoffset)
        return false;
    void *b = (char *)p + p->nextoffset;
    p->nextoffset += (uint32_t)size;
    RCGC__UNPOISON(b, sizeof(void *));
    RCGC__VG_UNDEFINED(b, sizeof(void *));
    *(void **)b = NULL;
    RCGC__VG_NOACCESS(b, sizeof(void *));
    RCGC__POISON(b, sizeof(void *));
    p->freeblock = b;
    return true;
}

/* A block of class c. A pool on used[c] always has a non-NULL freeblock (CPython's
 * rule), so the fast path is a pop; a pool that runs dry carves its next block, and
 * leaves the list when it has none. */
static inline void *rcgc__pool_alloc_from(rcgc__pools *ps, rcgc__pool *p, unsigned c);
static inline void *rcgc__pool_alloc(struct rcgc_heap *h, rcgc__pools *ps, unsigned c)
{
    rcgc__pool *p = ps->used[c];
    if (__builtin_expect(p == NULL, 0))
        return rcgc__pool_alloc_slow(h, c);
    return rcgc__pool_alloc_from(ps, p, c);
}

/* rcgc__pool_alloc when the caller has read p = ps->used[c] and found it non-NULL:
 * cannot fail, calls nothing. */
static inline void *rcgc__pool_alloc_from(rcgc__pools *ps, rcgc__pool *p, unsigned c)
{
    size_t size = rcgc__class_size(c);
    void *b = p->freeblock;
    p->ref++;
    RCGC__UNPOISON(b, size);
    RCGC__VG_DEFINED(b, sizeof(void *));
    void *next = *(void **)b;
    p->freeblock = next;
    if (next == NULL && !rcgc__pool_carve(p, size)) {
        ps->used[c] = p->next; /* full: off the list until a block comes back */
        if (p->next != NULL)
            p->next->prev = NULL;
        p->next = p->prev = NULL;
    }
    RCGC__VG_ALLOC(ps, b, size);
    return b;
}

/* Returns b to its pool. The slow path runs when the pool was full (it rejoins used[])
 * or has become empty (it goes back to its arena). */
static inline void rcgc__pool_free(struct rcgc_heap *h, rcgc__pools *ps, void *b)
{
    rcgc__pool *p = (rcgc__pool *)((uintptr_t)b & ~(uintptr_t)RCGC__POOL_MASK);
    void *last = p->freeblock;
    size_t size = rcgc__class_size(p->szidx);
    RCGC__VG_FREE(ps, b);
    RCGC__VG_UNDEFINED(b, sizeof(void *));
    *(void **)b = last;
    RCGC__VG_NOACCESS(b, size);
    RCGC__POISON(b, size);
    p->freeblock = b;
    if (__builtin_expect(--p->ref == 0 || last == NULL, 0))
        rcgc__pool_free_slow(h, p, last == NULL);
}

#endif /* RCGC_ALLOC_H */
