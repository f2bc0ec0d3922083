/* fault_alloc.c: the fault-injecting, accounting allocator (see fault_alloc.h).
 *
 * Fresh memory is filled with 0xA5 so that code relying on zeroed blocks fails, and
 * realloc always moves the block so that a stale pointer to the old block is caught by
 * ASan. The block table is a linear-probing hash set with backward-shift deletion. */
#include "fault_alloc.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FILL_FRESH 0xA5

#if defined(__GNUC__)
__attribute__((noinline))
#endif
void rcgc_test_fault(void)
{
    /* Deliberately empty: a breakpoint site. The volatile store keeps the call. */
    static volatile int calls;
    calls = calls + 1;
}

/* ---- the block table ---- */

static size_t ptr_hash(const void *p)
{
    uintptr_t x = ((uintptr_t)p >> 4) * (uintptr_t)0x9E3779B97F4A7C15u;
    return (size_t)(x ^ (x >> 29));
}

static size_t slot_of(const fault_alloc *fa, const void *p)
{
    size_t mask = fa->cap - 1;
    size_t i = ptr_hash(p) & mask;
    while (fa->keys[i] != NULL && fa->keys[i] != p)
        i = (i + 1) & mask;
    return i;
}

/* Returns false when libc itself runs out (the test then fails loudly). */
static bool table_grow(fault_alloc *fa)
{
    size_t ncap = fa->cap ? fa->cap * 2 : 1024;
    fault_alloc nt = {0};
    nt.keys = calloc(ncap, sizeof(void *));
    nt.sizes = calloc(ncap, sizeof(size_t));
    if (nt.keys == NULL || nt.sizes == NULL) {
        free(nt.keys);
        free(nt.sizes);
        return false;
    }
    nt.cap = ncap;
    for (size_t i = 0; i < fa->cap; i++) {
        if (fa->keys[i] == NULL)
            continue;
        size_t j = slot_of(&nt, fa->keys[i]);
        nt.keys[j] = fa->keys[i];
        nt.sizes[j] = fa->sizes[i];
    }
    free(fa->keys);
    free(fa->sizes);
    fa->keys = nt.keys;
    fa->sizes = nt.sizes;
    fa->cap = ncap;
    return true;
}

static void table_add(fault_alloc *fa, void *p, size_t size)
{
    if ((fa->len + 1) * 2 > fa->cap && !table_grow(fa)) {
        fprintf(stderr, "fault_alloc: out of memory for the block table\n");
        abort();
    }
    size_t i = slot_of(fa, p);
    fa->keys[i] = p;
    fa->sizes[i] = size;
    fa->len++;
}

/* Removes p; returns whether it was there, with its size in *size. */
static bool table_take(fault_alloc *fa, const void *p, size_t *size)
{
    if (fa->cap == 0)
        return false;
    size_t mask = fa->cap - 1;
    size_t i = slot_of(fa, p);
    if (fa->keys[i] == NULL)
        return false;
    *size = fa->sizes[i];
    fa->keys[i] = NULL;
    fa->len--;
    for (size_t j = (i + 1) & mask; fa->keys[j] != NULL; j = (j + 1) & mask) {
        size_t home = ptr_hash(fa->keys[j]) & mask;
        bool between = i <= j ? (i < home && home <= j) : (i < home || home <= j);
        if (between)
            continue;
        fa->keys[i] = fa->keys[j];
        fa->sizes[i] = fa->sizes[j];
        fa->keys[j] = NULL;
        i = j;
    }
    return true;
}

/* ---- the hooks ---- */

/* Counts one request; returns true when it must fail. */
static bool request_fails(fault_alloc *fa)
{
    long n = fa->requests++;
    fa->total++;
    bool fail = fa->fail_at >= 0 && (n == fa->fail_at || (fa->fail_from && n > fa->fail_at));
    if (fail) {
        fa->injected++;
        rcgc_test_fault();
    }
    return fail;
}

static void *fa_malloc(size_t size, void *ctx)
{
    fault_alloc *fa = ctx;
    if (request_fails(fa))
        return NULL;
    void *p = malloc(size ? size : 1);
    if (p == NULL)
        return NULL;
    memset(p, FILL_FRESH, size);
    table_add(fa, p, size);
    fa->live_blocks++;
    fa->live_bytes += size;
    if (fa->live_bytes > fa->peak_bytes)
        fa->peak_bytes = fa->live_bytes;
    return p;
}

static void fa_free(void *p, size_t size, void *ctx)
{
    fault_alloc *fa = ctx;
    if (p == NULL)
        return;
    size_t recorded;
    if (!table_take(fa, p, &recorded)) {
        fa->unknown_frees++;
        fprintf(stderr, "fault_alloc: free(%p, %zu) of a block never allocated\n", p, size);
        return; /* not ours: freeing it could corrupt libc, and ASan would stop here */
    }
    if (recorded != size) {
        fa->size_mismatches++;
        fprintf(stderr, "fault_alloc: free(%p, %zu) of a block of %zu bytes\n", p, size,
                recorded);
    }
    fa->live_blocks--;
    fa->live_bytes -= recorded;
    free(p);
}

static void *fa_realloc(void *p, size_t old_size, size_t new_size, void *ctx)
{
    fault_alloc *fa = ctx;
    if (p == NULL)
        return fa_malloc(new_size, ctx);
    if (request_fails(fa))
        return NULL; /* the old block stays valid and recorded */
    size_t recorded;
    if (!table_take(fa, p, &recorded)) {
        fa->unknown_frees++;
        fprintf(stderr, "fault_alloc: realloc(%p, %zu) of a block never allocated\n", p,
                old_size);
        return NULL;
    }
    if (recorded != old_size) {
        fa->size_mismatches++;
        fprintf(stderr, "fault_alloc: realloc(%p, %zu) of a block of %zu bytes\n", p, old_size,
                recorded);
    }
    /* Always move, so that a pointer kept into the old block is caught. */
    void *q = malloc(new_size ? new_size : 1);
    if (q == NULL) {
        table_add(fa, p, recorded);
        return NULL;
    }
    memset(q, FILL_FRESH, new_size);
    memcpy(q, p, recorded < new_size ? recorded : new_size);
    free(p);
    table_add(fa, q, new_size);
    fa->live_bytes = fa->live_bytes - recorded + new_size;
    if (fa->live_bytes > fa->peak_bytes)
        fa->peak_bytes = fa->live_bytes;
    return q;
}

/* ---- the public calls ---- */

void fault_alloc_init(fault_alloc *fa)
{
    memset(fa, 0, sizeof *fa);
    fa->fail_at = -1;
    fa->hooks.malloc = fa_malloc;
    fa->hooks.realloc = fa_realloc;
    fa->hooks.free = fa_free;
    fa->hooks.ctx = fa;
}

void fault_alloc_fini(fault_alloc *fa)
{
    if (fa->live_blocks > 0) {
        fprintf(stderr, "fault_alloc: %zu blocks (%zu bytes) still live:", fa->live_blocks,
                fa->live_bytes);
        size_t shown = 0;
        for (size_t i = 0; i < fa->cap && shown < 16; i++) {
            if (fa->keys[i] == NULL)
                continue;
            fprintf(stderr, " %p(%zu)", fa->keys[i], fa->sizes[i]);
            shown++;
        }
        fprintf(stderr, "%s\n", fa->live_blocks > shown ? " ..." : "");
    }
    free(fa->keys);
    free(fa->sizes);
    fa->keys = NULL;
    fa->sizes = NULL;
    fa->cap = fa->len = 0;
}

const rcgc_allocator *fault_alloc_hooks(fault_alloc *fa)
{
    return &fa->hooks;
}

void fault_alloc_fail_nth(fault_alloc *fa, long n)
{
    fa->fail_at = n < 0 ? -1 : n;
    fa->fail_from = false;
    fa->requests = 0;
    fa->injected = 0;
}

void fault_alloc_fail_from(fault_alloc *fa, long n)
{
    fault_alloc_fail_nth(fa, n);
    fa->fail_from = n >= 0;
}

bool fault_alloc_disarm(fault_alloc *fa)
{
    bool hit = fa->injected > 0;
    fa->fail_at = -1;
    fa->fail_from = false;
    return hit;
}

bool fault_alloc_clean(const fault_alloc *fa)
{
    return fa->size_mismatches == 0 && fa->unknown_frees == 0;
}
