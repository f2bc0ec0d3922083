/* alloc.c: the small-object allocator's slow paths, its arenas, statistics and checks.
 *
 * The fast paths (pop a free block, push it back) are inline in alloc.h. Here: taking a
 * pool from the most used arena, returning an emptied pool to its arena and an emptied
 * arena to the OS, and sys._debugmallocstats. Arenas are mmap'd and trimmed to pool
 * alignment, or (when the heap was given allocator hooks, e.g. the tests' fault injector)
 * allocated through the hooks with one pool of slack for the alignment. */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#include "internal.h"

#include <sys/mman.h>

/* ---- arenas ---- */

static void bucket_remove(rcgc__pools *ps, rcgc__arena *a)
{
    unsigned i = a->nfree;
    if (a->prev != NULL)
        a->prev->next = a->next;
    else
        ps->bucket[i] = a->next;
    if (a->next != NULL)
        a->next->prev = a->prev;
    a->next = a->prev = NULL;
    if (ps->bucket[i] == NULL)
        ps->nonempty &= ~((uint64_t)1 << i);
}

static void bucket_insert(rcgc__pools *ps, rcgc__arena *a)
{
    unsigned i = a->nfree;
    a->prev = NULL;
    a->next = ps->bucket[i];
    if (a->next != NULL)
        a->next->prev = a;
    ps->bucket[i] = a;
    ps->nonempty |= (uint64_t)1 << i;
}

/* Maps RCGC__ARENA_SIZE bytes aligned to RCGC__POOL_SIZE: over-map by a pool, then give
 * back the head and tail around the aligned range. */
static void *map_aligned(void)
{
    size_t len = RCGC__ARENA_SIZE + RCGC__POOL_SIZE;
    char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    uintptr_t start = ((uintptr_t)p + RCGC__POOL_MASK) & ~(uintptr_t)RCGC__POOL_MASK;
    size_t head = (size_t)(start - (uintptr_t)p);
    size_t tail = len - head - RCGC__ARENA_SIZE;
    if (head != 0)
        munmap(p, head);
    if (tail != 0)
        munmap((char *)start + RCGC__ARENA_SIZE, tail);
    return (void *)start;
}

static rcgc__arena *arena_new(rcgc_heap *h)
{
    rcgc__pools *ps = &h->pools;
    if (ps->spare != NULL) {
        rcgc__arena *a = ps->spare;
        ps->spare = NULL;
        return a;
    }
    rcgc__arena *a = rcgc__malloc(h, sizeof *a);
    if (a == NULL)
        return NULL;
    memset(a, 0, sizeof *a);
    if (ps->from_hooks) {
        a->raw_size = RCGC__ARENA_SIZE + RCGC__POOL_SIZE;
        a->raw = rcgc__malloc(h, a->raw_size);
        a->base = (char *)(((uintptr_t)a->raw + RCGC__POOL_MASK) & ~(uintptr_t)RCGC__POOL_MASK);
    } else {
        a->raw_size = RCGC__ARENA_SIZE;
        a->raw = a->base = map_aligned();
    }
    if (a->raw == NULL) {
        rcgc__free(h, a, sizeof *a);
        return NULL;
    }
    RCGC__POISON(a->base, RCGC__ARENA_SIZE);
    RCGC__VG_NOACCESS(a->base, RCGC__ARENA_SIZE);
    a->pool_address = a->base;
    a->nfree = RCGC__POOLS_PER_ARENA;
    a->all_next = ps->all;
    if (ps->all != NULL)
        ps->all->all_prev = a;
    ps->all = a;
    ps->arenas_total++;
    if (++ps->arenas_current > ps->arenas_highwater)
        ps->arenas_highwater = ps->arenas_current;
    return a;
}

static void arena_release(rcgc_heap *h, rcgc__arena *a)
{
    rcgc__pools *ps = &h->pools;
    if (a->all_prev != NULL)
        a->all_prev->all_next = a->all_next;
    else
        ps->all = a->all_next;
    if (a->all_next != NULL)
        a->all_next->all_prev = a->all_prev;
    /* The shadow memory must not stay poisoned for whoever maps these pages next. */
    RCGC__UNPOISON(a->base, RCGC__ARENA_SIZE);
    RCGC__VG_UNDEFINED(a->base, RCGC__ARENA_SIZE);
    if (ps->from_hooks)
        rcgc__free(h, a->raw, a->raw_size);
    else
        munmap(a->raw, a->raw_size);
    rcgc__free(h, a, sizeof *a);
    ps->arenas_current--;
    ps->arenas_reclaimed++;
}

void rcgc__pools_init(rcgc_heap *h, bool from_hooks, bool disabled)
{
    rcgc__pools *ps = &h->pools;
    memset(ps, 0, sizeof *ps);
    ps->from_hooks = from_hooks;
    ps->disabled = disabled;
    RCGC__VG_CREATE(ps);
}

void rcgc__pools_destroy(rcgc_heap *h)
{
    rcgc__pools *ps = &h->pools;
    while (ps->all != NULL)
        arena_release(h, ps->all);
    RCGC__VG_DESTROY(ps);
    memset(ps->used, 0, sizeof ps->used);
    memset(ps->bucket, 0, sizeof ps->bucket);
    ps->nonempty = 0;
    ps->spare = NULL;
}

/* ---- pools ---- */

void *rcgc__pool_alloc_slow(rcgc_heap *h, unsigned c)
{
    rcgc__pools *ps = &h->pools;
    rcgc__arena *a;
    if (ps->nonempty != 0) {
        a = ps->bucket[__builtin_ctzll(ps->nonempty)]; /* the most used arena */
        bucket_remove(ps, a);
    } else if ((a = arena_new(h)) == NULL) {
        return NULL;
    }
    rcgc__pool *p = a->freepools;
    if (p != NULL) {
        a->freepools = p->next;
    } else {
        p = (rcgc__pool *)(void *)a->pool_address;
        a->pool_address += RCGC__POOL_SIZE;
        a->ncarved++;
        RCGC__UNPOISON(p, RCGC__POOL_OVERHEAD);
        RCGC__VG_UNDEFINED(p, RCGC__POOL_OVERHEAD);
    }
    if (--a->nfree > 0)
        bucket_insert(ps, a);
    size_t size = rcgc__class_size(c);
    p->ref = 0;
    p->szidx = c;
    p->arena = a;
    p->freeblock = NULL;
    p->nextoffset = (uint32_t)RCGC__POOL_OVERHEAD;
    p->maxnextoffset = (uint32_t)(RCGC__POOL_SIZE - size);
    (void)rcgc__pool_carve(p, size);
    p->prev = NULL;
    p->next = NULL;
    ps->used[c] = p; /* the list was empty: that is why we are here */
    return rcgc__pool_alloc(h, ps, c);
}

void rcgc__pool_free_slow(rcgc_heap *h, rcgc__pool *p, bool was_full)
{
    rcgc__pools *ps = &h->pools;
    unsigned c = p->szidx;
    if (p->ref != 0) {
        /* It was full: back at the front of used[c] (CPython's LIFO order). */
        p->prev = NULL;
        p->next = ps->used[c];
        if (p->next != NULL)
            p->next->prev = p;
        ps->used[c] = p;
        return;
    }
    if (!was_full) {
        if (p->prev != NULL)
            p->prev->next = p->next;
        else
            ps->used[c] = p->next;
        if (p->next != NULL)
            p->next->prev = p->prev;
    }
    rcgc__arena *a = p->arena;
    if (a->nfree > 0)
        bucket_remove(ps, a);
    p->prev = NULL;
    p->next = a->freepools;
    a->freepools = p;
    if (++a->nfree < RCGC__POOLS_PER_ARENA) {
        bucket_insert(ps, a);
        return;
    }
    /* Every pool is free: keep one such arena, give the others back to the OS (all of
     * them at once when the heap is being destroyed). */
    if (ps->destroying)
        return;
    if (ps->spare == NULL)
        ps->spare = a;
    else
        arena_release(h, a);
}

/* ---- scanning ---- */

int rcgc__pools_each_block(rcgc_heap *h, int (*fn)(void *block, void *arg), void *arg)
{
    return rcgc__pools_each_block_inline(&h->pools, fn, arg);
}

void *rcgc__pools_block_at(rcgc_heap *h, const void *p)
{
    uintptr_t x = (uintptr_t)p;
    for (rcgc__arena *a = h->pools.all; a != NULL; a = a->all_next) {
        uintptr_t base = (uintptr_t)a->base;
        if (x < base || x - base >= (uintptr_t)a->ncarved * RCGC__POOL_SIZE)
            continue;
        rcgc__pool *pool = (rcgc__pool *)(x & ~(uintptr_t)RCGC__POOL_MASK);
        size_t off = x - (uintptr_t)pool;
        if (pool->ref == 0 || off < RCGC__POOL_OVERHEAD || off >= pool->nextoffset ||
            (off - RCGC__POOL_OVERHEAD) % rcgc__class_size(pool->szidx) != 0)
            return NULL;
        return rcgc__block_maybe_live(p) ? (void *)(uintptr_t)p : NULL;
    }
    return NULL;
}

/* ---- statistics ---- */

int rcgc_malloc_stats_get(const rcgc_heap *h, rcgc_malloc_stats *out)
{
    if (h == NULL || out == NULL)
        return RCGC_EINVAL;
    const rcgc__pools *ps = &h->pools;
    memset(out, 0, sizeof *out);
    out->small_request_threshold = RCGC_SMALL_REQUEST_THRESHOLD;
    out->pool_size = RCGC__POOL_SIZE;
    out->arena_size = RCGC__ARENA_SIZE;
    for (unsigned c = 0; c < RCGC__NCLASSES; c++)
        out->classes[c].size = rcgc__class_size(c);
    const size_t usable = RCGC__POOL_SIZE - RCGC__POOL_OVERHEAD;
    for (const rcgc__arena *a = ps->all; a != NULL; a = a->all_next) {
        out->bytes_lost_arena_alignment += a->raw_size - RCGC__ARENA_SIZE;
        out->unused_pools += RCGC__POOLS_PER_ARENA - a->ncarved;
        for (uint32_t i = 0; i < a->ncarved; i++) {
            const rcgc__pool *p =
                (const rcgc__pool *)(const void *)(a->base + i * RCGC__POOL_SIZE);
            if (p->ref == 0) { /* an emptied pool on the arena's free list */
                out->unused_pools++;
                continue;
            }
            size_t size = rcgc__class_size(p->szidx);
            rcgc_size_class_stats *cs = &out->classes[p->szidx];
            cs->pools++;
            cs->blocks_in_use += p->ref;
            cs->blocks_available += usable / size - p->ref;
            out->bytes_lost_pool_headers += RCGC__POOL_OVERHEAD;
            out->bytes_lost_quantization += usable % size;
        }
    }
    for (unsigned c = 0; c < RCGC__NCLASSES; c++) {
        out->bytes_in_allocated_blocks += out->classes[c].blocks_in_use * out->classes[c].size;
        out->bytes_in_available_blocks +=
            out->classes[c].blocks_available * out->classes[c].size;
    }
    out->arenas_allocated_total = ps->arenas_total;
    out->arenas_reclaimed = ps->arenas_reclaimed;
    out->arenas_highwater = ps->arenas_highwater;
    out->arenas_current = ps->arenas_current;
    out->large_objects = ps->large_objects;
    out->large_bytes = ps->large_bytes;
    return 0;
}

/* CPython's printone: the label padded to 35 columns, '=', the value right-aligned in 21
 * columns with thousands separators. Returns value. */
static size_t printone(FILE *out, const char *msg, size_t value)
{
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%zu", value);
    char grouped[48];
    int g = 0;
    for (int i = 0; i < n; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            grouped[g++] = ',';
        grouped[g++] = digits[i];
    }
    grouped[g] = '\0';
    fprintf(out, "%-35s=%21s\n", msg, grouped);
    return value;
}

int rcgc_debug_malloc_stats(const rcgc_heap *h, FILE *out)
{
    rcgc_malloc_stats st;
    if (out == NULL || rcgc_malloc_stats_get(h, &st) != 0)
        return RCGC_EINVAL;
    char buf[128];
    fprintf(out, "Small block threshold = %d, in %u size classes.\n",
            RCGC_SMALL_REQUEST_THRESHOLD, RCGC__NCLASSES);
    fputs("\nclass   size   num pools   blocks in use  avail blocks\n"
          "-----   ----   ---------   -------------  ------------\n",
          out);
    for (unsigned c = 0; c < RCGC__NCLASSES; c++) {
        const rcgc_size_class_stats *cs = &st.classes[c];
        if (cs->pools == 0)
            continue;
        fprintf(out, "%5u %6zu %11zu %15zu %13zu\n", c, cs->size, cs->pools, cs->blocks_in_use,
                cs->blocks_available);
    }
    fputc('\n', out);
    printone(out, "# arenas allocated total", st.arenas_allocated_total);
    printone(out, "# arenas reclaimed", st.arenas_reclaimed);
    printone(out, "# arenas highwater mark", st.arenas_highwater);
    printone(out, "# arenas allocated current", st.arenas_current);
    snprintf(buf, sizeof buf, "%zu arenas * %zu bytes/arena", st.arenas_current, st.arena_size);
    printone(out, buf, st.arenas_current * st.arena_size);
    fputc('\n', out);
    size_t total = printone(out, "# bytes in allocated blocks", st.bytes_in_allocated_blocks);
    total += printone(out, "# bytes in available blocks", st.bytes_in_available_blocks);
    snprintf(buf, sizeof buf, "%zu unused pools * %zu bytes", st.unused_pools, st.pool_size);
    total += printone(out, buf, st.unused_pools * st.pool_size);
    total += printone(out, "# bytes lost to pool headers", st.bytes_lost_pool_headers);
    total += printone(out, "# bytes lost to quantization", st.bytes_lost_quantization);
    total += printone(out, "# bytes lost to arena alignment", st.bytes_lost_arena_alignment);
    printone(out, "Total", total);
    fputc('\n', out);
    printone(out, "# objects from the allocator hooks", st.large_objects);
    printone(out, "# bytes from the allocator hooks", st.large_bytes);
    return 0;
}

/* ---- invariants ---- */

size_t rcgc__pools_check(rcgc_heap *h)
{
    rcgc__pools *ps = &h->pools;
    size_t bad = 0;
#define POOLS_FAIL(...)                                                                        \
    do {                                                                                       \
        bad++;                                                                                 \
        rcgc__panic(h, __VA_ARGS__);                                                           \
    } while (0)
    for (unsigned c = 0; c < RCGC__NCLASSES; c++) {
        const rcgc__pool *prev = NULL;
        for (const rcgc__pool *p = ps->used[c]; p != NULL; prev = p, p = p->next) {
            if (p->szidx != c || p->ref == 0 || p->freeblock == NULL || p->prev != prev)
                POOLS_FAIL(
                    "pools: used[%u] holds a pool that does not belong (ref %u, class %u)", c,
                    p->ref, p->szidx);
        }
    }
    size_t held = 0;
    for (rcgc__arena *a = ps->all; a != NULL; a = a->all_next) {
        held++;
        uint32_t freed = 0;
        for (rcgc__pool *p = a->freepools; p != NULL; p = p->next) {
            freed++;
            if (p->ref != 0 || p->arena != a)
                POOLS_FAIL("pools: a free-listed pool is in use or in another arena");
            if (freed > RCGC__POOLS_PER_ARENA)
                break;
        }
        if (a->nfree != freed + (RCGC__POOLS_PER_ARENA - a->ncarved))
            POOLS_FAIL("pools: arena nfree %u, but %u free-listed and %u never carved",
                       a->nfree, freed, RCGC__POOLS_PER_ARENA - a->ncarved);
        bool in_bucket = false;
        if (a->nfree > 0 && a->nfree < RCGC__POOLS_PER_ARENA)
            for (rcgc__arena *b = ps->bucket[a->nfree]; b != NULL; b = b->next)
                in_bucket |= b == a;
        bool want = a->nfree > 0 && a->nfree < RCGC__POOLS_PER_ARENA;
        if (in_bucket != want)
            POOLS_FAIL("pools: arena with %u free pools %s its bucket", a->nfree,
                       want ? "missing from" : "wrongly in");
        if (a->nfree == RCGC__POOLS_PER_ARENA && a != ps->spare)
            POOLS_FAIL("pools: an empty arena is held that is not the spare");
    }
    if (held != ps->arenas_current)
        POOLS_FAIL("pools: %zu arenas held, counter says %zu", held, ps->arenas_current);
    for (unsigned i = 0; i < RCGC__POOLS_PER_ARENA; i++)
        if ((ps->bucket[i] != NULL) != ((ps->nonempty >> i) & 1u))
            POOLS_FAIL("pools: bucket %u and the nonempty mask disagree", i);
#undef POOLS_FAIL
    return bad;
}
