/* test_alloc.c: the small-object allocator: size classes, pools and arenas, arena return
 * to the OS, statistics as data and as sys._debugmallocstats text, arena faults, and the
 * tools' view of free blocks (ASan poisoning). */
#define _DEFAULT_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include <rcgc/rcgc.h>

#include "fault_alloc.h"
#include "testlib.h"

#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif
#ifdef TEST_ASAN
#include <sanitizer/asan_interface.h>
#endif

/* A leaf type per payload size; objects of n payload bytes take n + 16. */
#define LEAF(n)                                                                                \
    {                                                                                          \
        .name = "leaf" #n, .size = (n)                                                         \
    }
static const rcgc_type leaf0 = LEAF(0), leaf16 = LEAF(16), leaf48 = LEAF(48),
                       leaf496 = LEAF(496), leaf497 = LEAF(497), leaf1000 = LEAF(1000);

static rcgc_heap *heap(void)
{
    rcgc_heap_options o = {.name = "alloc", .ignore_environment = true};
    rcgc_heap *h = rcgc_heap_new_with(&o);
    assert_non_null(h);
    return h;
}

static rcgc_malloc_stats stats(rcgc_heap *h)
{
    rcgc_malloc_stats st;
    assert_int_equal(rcgc_malloc_stats_get(h, &st), 0);
    return st;
}

static size_t blocks_in_use(const rcgc_malloc_stats *st)
{
    size_t n = 0;
    for (int c = 0; c < RCGC_SIZE_CLASSES; c++)
        n += st->classes[c].blocks_in_use;
    return n;
}

/* Every byte of the arenas is accounted for exactly once. */
static void assert_accounted(const rcgc_malloc_stats *st)
{
    size_t sum = st->bytes_in_allocated_blocks + st->bytes_in_available_blocks +
                 st->unused_pools * st->pool_size + st->bytes_lost_pool_headers +
                 st->bytes_lost_quantization;
    assert_int_equal(sum, st->arenas_current * st->arena_size);
}

static void test_alloc_size_classes(void **state)
{
    (void)state;
    rcgc_heap *h = heap();
    /* block = payload + 16-byte header: 16 -> class 0, 32 -> 1, 64 -> 3, 512 -> 31 */
    void *a = rcgc_new(h, &leaf0);
    void *b = rcgc_new(h, &leaf16);
    void *c = rcgc_new(h, &leaf48);
    void *d = rcgc_new(h, &leaf496);
    void *e = rcgc_new(h, &leaf497);         /* 513 bytes: from the allocator */
    void *f = rcgc_new(h, &leaf1000);        /* from the allocator */
    void *g = rcgc_new_var(h, &leaf16, 100); /* 16 prefix + 16 header + 100 = 132 -> class 8 */
    assert_true(a && b && c && d && e && f && g);
    rcgc_malloc_stats st = stats(h);
    assert_int_equal(st.small_request_threshold, 512);
    assert_int_equal(st.classes[0].size, 16);
    assert_int_equal(st.classes[31].size, 512);
    assert_int_equal(st.classes[0].blocks_in_use, 1);
    assert_int_equal(st.classes[1].blocks_in_use, 1);
    assert_int_equal(st.classes[3].blocks_in_use, 1);
    assert_int_equal(st.classes[8].blocks_in_use, 1);
    assert_int_equal(st.classes[31].blocks_in_use, 1);
    assert_int_equal(blocks_in_use(&st), 5);
    assert_int_equal(st.large_objects, 2);
    assert_int_equal(st.large_bytes, 513 + 1016);
    /* pool blocks are 16-byte aligned, so payloads are too */
    assert_int_equal((uintptr_t)b % 16, 0);
    assert_int_equal((uintptr_t)g % 16, 0);
    assert_accounted(&st);
    void *all[] = {a, b, c, d, e, f, g};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        rcgc_decref(all[i]);
    st = stats(h);
    assert_int_equal(blocks_in_use(&st), 0);
    assert_int_equal(st.large_objects, 0);
    assert_int_equal(st.large_bytes, 0);
    assert_int_equal(rcgc__heap_check(h), 0);
    rcgc_heap_free(h);
}

/* Blocks freed are reused (LIFO within a pool) and a pool's blocks never overlap. */
static void test_alloc_reuse_and_distinct(void **state)
{
    (void)state;
    rcgc_heap *h = heap();
    enum { N = 5000 };
    char **p = calloc(N, sizeof *p);
    assert_non_null(p);
    for (int i = 0; i < N; i++) {
        p[i] = rcgc_new(h, &leaf48);
        assert_non_null(p[i]);
        memset(p[i], i & 0xff, 48);
    }
    for (int i = 0; i < N; i++)
        for (int k = 0; k < 48; k++)
            assert_int_equal((unsigned char)p[i][k], (unsigned)(i & 0xff));
    void *freed = p[N / 2];
    rcgc_decref(freed);
    void *again = rcgc_new(h, &leaf48);
    assert_ptr_equal(again, freed);
    for (int k = 0; k < 48; k++) /* a fresh object is zeroed even from a reused block */
        assert_int_equal(((unsigned char *)again)[k], 0);
    p[N / 2] = again;
    for (int i = 0; i < N; i++)
        rcgc_decref(p[i]);
    free(p);
    assert_int_equal(rcgc__heap_check(h), 0);
    rcgc_heap_free(h);
}

/* Fills arenas, empties all but one object per arena, then everything: empty arenas go
 * back to the OS except one spare, and the counters say so. */
static void test_alloc_arena_return(void **state)
{
    (void)state;
    rcgc_heap *h = heap();
    rcgc_malloc_stats st = stats(h);
    size_t per_arena = (st.pool_size - 48) / 512 * (st.arena_size / st.pool_size);
    size_t n = per_arena * 4;
    void **p = calloc(n, sizeof *p);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        assert_non_null(p[i] = rcgc_new(h, &leaf496));
    st = stats(h);
    assert_int_equal(st.arenas_current, 4);
    assert_int_equal(st.arenas_highwater, 4);
    assert_int_equal(st.arenas_allocated_total, 4);
    assert_int_equal(st.arenas_reclaimed, 0);
    assert_int_equal(st.unused_pools, 0);
    assert_accounted(&st);
    for (size_t i = 0; i < n; i++)
        rcgc_decref(p[i]);
    st = stats(h);
    assert_int_equal(st.arenas_current, 1); /* the spare */
    assert_int_equal(st.arenas_reclaimed, 3);
    assert_int_equal(st.arenas_highwater, 4);
    assert_int_equal(blocks_in_use(&st), 0);
    assert_int_equal(st.unused_pools, st.arena_size / st.pool_size);
    assert_accounted(&st);
    /* the spare serves the next allocation: no new mapping */
    void *x = rcgc_new(h, &leaf16);
    st = stats(h);
    assert_int_equal(st.arenas_allocated_total, 4);
    assert_int_equal(st.arenas_current, 1);
    rcgc_decref(x);
    free(p);
    assert_int_equal(rcgc__heap_check(h), 0);
    rcgc_heap_free(h);
}

/* Pages of a reclaimed arena really leave the process: mincore says they are unmapped. */
static void test_alloc_arena_unmapped(void **state)
{
    (void)state;
    rcgc_heap *h = heap();
    rcgc_malloc_stats st = stats(h);
    size_t per_arena = (st.pool_size - 48) / 512 * (st.arena_size / st.pool_size);
    size_t n = per_arena * 2;
    void **p = calloc(n, sizeof *p);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        assert_non_null(p[i] = rcgc_new(h, &leaf496));
    /* the first object of the first arena and the first of the second */
    void *first = p[0], *second = p[per_arena];
    for (size_t i = 0; i < n; i++)
        rcgc_decref(p[i]);
    st = stats(h);
    assert_int_equal(st.arenas_reclaimed, 1);
    /* One of the two arenas is the spare, the other is gone: exactly one of the two
     * addresses is still mapped. */
    long page = sysconf(_SC_PAGESIZE);
    unsigned char vec;
    int m1 = mincore((void *)((uintptr_t)first & ~(uintptr_t)(page - 1)), 1, &vec);
    int m2 = mincore((void *)((uintptr_t)second & ~(uintptr_t)(page - 1)), 1, &vec);
    assert_true((m1 == 0) != (m2 == 0));
    free(p);
    rcgc_heap_free(h);
}

/* Allocation prefers the most used arena, so that a nearly empty one drains. */
static void test_alloc_most_used_arena_first(void **state)
{
    (void)state;
    rcgc_heap *h = heap();
    rcgc_malloc_stats st = stats(h);
    size_t per_pool = (st.pool_size - 48) / 512;
    size_t pools = st.arena_size / st.pool_size;
    size_t per_arena = per_pool * pools;
    size_t n = per_arena * 2;
    void **p = calloc(n, sizeof *p);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        assert_non_null(p[i] = rcgc_new(h, &leaf496));
    /* Arena A (first): free all but one pool's worth. Arena B: free two pools. */
    uintptr_t mask = ~(uintptr_t)(st.pool_size - 1);
    uintptr_t b_pool1 = (uintptr_t)p[per_arena] & mask;
    uintptr_t b_pool2 = (uintptr_t)p[per_arena + per_pool] & mask;
    assert_true(b_pool1 != b_pool2);
    for (size_t i = per_pool; i < per_arena; i++) {
        rcgc_decref(p[i]);
        p[i] = NULL;
    }
    for (size_t i = per_arena; i < per_arena + 2 * per_pool; i++) {
        rcgc_decref(p[i]);
        p[i] = NULL;
    }
    st = stats(h);
    assert_int_equal(st.arenas_current, 2);
    assert_int_equal(st.unused_pools, pools - 1 + 2);
    /* A new 16-byte object needs a new pool: it must be one of B's two free pools (B
     * has the fewest free pools), not one of A's 63. */
    void *x = rcgc_new(h, &leaf0);
    assert_non_null(x);
    uintptr_t xp = (uintptr_t)x & mask;
    assert_true(xp == b_pool1 || xp == b_pool2);
    rcgc_decref(x);
    for (size_t i = 0; i < n; i++)
        if (p[i] != NULL)
            rcgc_decref(p[i]);
    free(p);
    assert_int_equal(rcgc__heap_check(h), 0);
    rcgc_heap_free(h);
}

/* The text has CPython's layout: header line, class table, printone lines with commas. */
static void test_alloc_debugmallocstats_text(void **state)
{
    (void)state;
    rcgc_heap *h = heap();
    void *objs[100];
    for (int i = 0; i < 100; i++)
        objs[i] = rcgc_new(h, &leaf16);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    assert_int_equal(rcgc_debug_malloc_stats(h, f), 0);
    fclose(f);
    assert_non_null(strstr(buf, "Small block threshold = 512, in 32 size classes.\n\n"
                                "class   size   num pools   blocks in use  avail blocks\n"
                                "-----   ----   ---------   -------------  ------------\n"));
    char row[128];
    rcgc_malloc_stats st = stats(h);
    snprintf(row, sizeof row, "%5u %6u %11u %15u %13zu\n", 1u, 32u, 1u, 100u,
             st.classes[1].blocks_available);
    assert_non_null(strstr(buf, row));
    /* printone: label to 35 columns, '=', value right-aligned in 21 with commas */
    snprintf(row, sizeof row, "%-35s=%21s\n", "# arenas allocated current", "1");
    assert_non_null(strstr(buf, row));
    assert_non_null(strstr(buf, "1 arenas * "));
    snprintf(row, sizeof row, "%zu", st.arena_size);
    assert_non_null(strstr(buf, row));
    char total[64];
    size_t t = st.arena_size; /* 1 MiB -> 1,048,576; 256 KiB -> 262,144 */
    snprintf(total, sizeof total, "%zu,%03zu,%03zu", t / 1000000, t / 1000 % 1000, t % 1000);
    const char *digits = total;
    while (*digits == '0' || *digits == ',')
        digits++;
    snprintf(row, sizeof row, "%-35s=%21s\n", "Total", digits);
    assert_non_null(strstr(buf, row));
    free(buf);
    for (int i = 0; i < 100; i++)
        rcgc_decref(objs[i]);
    assert_int_equal(rcgc_debug_malloc_stats(NULL, stdout), RCGC_EINVAL);
    assert_int_equal(rcgc_debug_malloc_stats(h, NULL), RCGC_EINVAL);
    assert_int_equal(rcgc_malloc_stats_get(NULL, &st), RCGC_EINVAL);
    assert_int_equal(rcgc_malloc_stats_get(h, NULL), RCGC_EINVAL);
    rcgc_heap_free(h);
}

/* Arenas from the allocator hooks: failures to get one (its record or its memory) make
 * rcgc_new return NULL cleanly; everything comes back at rcgc_heap_free. */
static void test_alloc_arena_faults(void **state)
{
    (void)state;
    for (long nth = 0; nth < 2; nth++) {
        fault_alloc fa;
        fault_alloc_init(&fa);
        rcgc_heap_options o = {
            .name = "faults", .ignore_environment = true, .allocator = fault_alloc_hooks(&fa)};
        rcgc_heap *h = rcgc_heap_new_with(&o);
        assert_non_null(h);
        void *first = rcgc_new(h, &leaf16); /* site, lists and the first arena */
        assert_non_null(first);
        rcgc_malloc_stats st = stats(h);
        assert_int_equal(st.bytes_lost_arena_alignment, st.pool_size); /* the slack */
        size_t per_arena = (st.pool_size - 48) / 32 * (st.arena_size / st.pool_size);
        size_t n = per_arena - 1; /* fills the first arena exactly */
        void **p = calloc(n + 1, sizeof *p);
        assert_non_null(p);
        for (size_t i = 0; i < n; i++)
            assert_non_null(p[i] = rcgc_new(h, &leaf16));
        assert_int_equal(stats(h).arenas_current, 1);
        fault_alloc_fail_nth(&fa, nth); /* 0: the arena record, 1: the arena's memory */
        size_t before = stats(h).classes[1].blocks_in_use;
        assert_null(rcgc_new(h, &leaf16));
        assert_true(fault_alloc_disarm(&fa));
        assert_int_equal(stats(h).classes[1].blocks_in_use, before);
        assert_int_equal(stats(h).arenas_current, 1);
        assert_int_equal(rcgc__heap_check(h), 0);
        assert_non_null(p[n] = rcgc_new(h, &leaf16)); /* memory is back */
        assert_int_equal(stats(h).arenas_current, 2);
        for (size_t i = 0; i <= n; i++)
            rcgc_decref(p[i]);
        rcgc_decref(first);
        free(p);
        rcgc_heap_free(h);
        assert_int_equal(fa.live_blocks, 0);
        assert_true(fault_alloc_clean(&fa));
        fault_alloc_fini(&fa);
    }
}

/* disable_pools: every object from the hooks, the pools stay empty. */
static void test_alloc_disabled(void **state)
{
    (void)state;
    rcgc_heap_options o = {
        .name = "nopools", .ignore_environment = true, .disable_pools = true};
    rcgc_heap *h = rcgc_heap_new_with(&o);
    assert_non_null(h);
    void *a = rcgc_new(h, &leaf16);
    assert_non_null(a);
    rcgc_malloc_stats st = stats(h);
    assert_int_equal(st.arenas_current, 0);
    assert_int_equal(st.large_objects, 1);
    assert_int_equal(st.large_bytes, 32);
    rcgc_decref(a);
    rcgc_heap_free(h);
}

/* ASan sees inside the pools: a freed block is poisoned, a live one is not. */
static void test_alloc_poisoned(void **state)
{
    (void)state;
#ifdef TEST_ASAN
    rcgc_heap *h = heap();
    char *a = rcgc_new(h, &leaf48);
    char *b = rcgc_new(h, &leaf48);
    assert_false(__asan_region_is_poisoned(a - 16, 64));
    rcgc_decref(a);
    assert_true(__asan_address_is_poisoned(a));
    assert_true(__asan_address_is_poisoned(a + 40));
    assert_false(__asan_region_is_poisoned(b - 16, 64));
    /* never-carved blocks of the pool are poisoned too */
    assert_true(__asan_address_is_poisoned(b + 64 + 16));
    rcgc_decref(b);
    rcgc_heap_free(h);
#else
    skip(); /* only meaningful in the ASan build (CI runs it there) */
#endif
}

/* ---- a reference released once too often ---- */

#ifndef TEST_ASAN
static int g_panics;
static char g_panic_msg[256];

static void record_panic(rcgc_heap *h, const char *message, void *arg)
{
    (void)h;
    (void)arg;
    g_panics++;
    snprintf(g_panic_msg, sizeof g_panic_msg, "%s", message);
}

/* Releases obj, freed already, once more: the process-wide panic hook hears of it (the
 * block keeps a refcount of 0 in its header, even where debug builds fill freed blocks),
 * and nothing else happens. */
static void assert_decref_freed_reported(void *obj)
{
    g_panics = 0;
    rcgc_decref(obj);
    assert_int_equal(g_panics, 1);
    assert_non_null(strstr(g_panic_msg, "refcount is 0"));
}
#endif

/* A decref of an object already freed, from every way an object dies into a pool: the
 * plain death, a var-size object, a container with a dealloc, a cycle the collector
 * freed. Not under ASan, which reports the read of the freed block itself (the
 * allocator's own memory: the pools stay mapped). */
static void test_alloc_decref_freed(void **state)
{
    (void)state;
#ifdef TEST_ASAN
    skip(); /* ASan reports this use after free itself (test_alloc_poisoned) */
#else
    rcgc_set_panic_hook(record_panic, NULL);
    rcgc_heap *h = heap();
    void *o = rcgc_new(h, &leaf48);
    rcgc_decref(o);
    assert_decref_freed_reported(o);
    o = rcgc_new(h, &leaf48); /* the fast path's death */
    rcgc_decref(o);
    assert_decref_freed_reported(o);
    o = rcgc_new_var(h, &leaf16, 100);
    rcgc_decref(o);
    assert_decref_freed_reported(o);
    tl_node *p = tl_new(h, &tl_Node, 1);
    tl_set_steal(p, 0, rcgc_new(h, &leaf48));
    rcgc_decref(p);
    assert_decref_freed_reported(p);
    tl_node *x = tl_new(h, &tl_Node, 2), *y = tl_new(h, &tl_Node, 3);
    tl_set(x, 0, y);
    tl_set(y, 0, x);
    rcgc_decref(x);
    rcgc_decref(y);
    assert_int_equal(rcgc_collect(h, 2), 2);
    assert_decref_freed_reported(x);
    assert_decref_freed_reported(y);
    rcgc_malloc_stats st = stats(h);
    assert_int_equal(blocks_in_use(&st), 0);
    rcgc_heap_free(h);
    rcgc_set_panic_hook(NULL, NULL);
#endif
}

/* ASan sees the end of the payload: the bytes a size class rounds a block up by stay
 * poisoned, on the first object of a site, on the fast path (small and large zeroing),
 * for var-size objects and after a block is reused by a smaller type. */
static void test_alloc_slack_poisoned(void **state)
{
    (void)state;
#ifdef TEST_ASAN
    static const rcgc_type leaf20 = LEAF(20), leaf100 = LEAF(100);
    rcgc_heap *h = heap();
    for (int k = 0; k < 3; k++) {        /* object_new, then the fast path twice */
        char *a = rcgc_new(h, &leaf20);  /* 36 bytes in a 48-byte block */
        char *b = rcgc_new(h, &leaf100); /* 116 in 128: zeroed out of line */
        assert_false(__asan_region_is_poisoned(a, 20));
        assert_true(__asan_address_is_poisoned(a + 20));
        assert_true(__asan_address_is_poisoned(a + 31));
        assert_false(__asan_region_is_poisoned(b, 100));
        assert_true(__asan_address_is_poisoned(b + 100));
        assert_true(__asan_address_is_poisoned(b + 111));
        rcgc_decref(a);
        rcgc_decref(b);
    }
    char *v = rcgc_new_var(h, &leaf16, 21); /* 16 + 16 + 21 = 53 bytes in 64 */
    assert_false(__asan_region_is_poisoned(v, 21));
    assert_true(__asan_address_is_poisoned(v + 21));
    assert_true(__asan_address_is_poisoned(v + 23));
    rcgc_decref(v);
    char *w = rcgc_new(h, &leaf48); /* a full block: nothing to poison */
    assert_false(__asan_region_is_poisoned(w, 48));
    rcgc_decref(w);
    rcgc_heap_free(h);
#else
    skip(); /* only meaningful in the ASan build (CI runs it there) */
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc_size_classes),
        cmocka_unit_test(test_alloc_reuse_and_distinct),
        cmocka_unit_test(test_alloc_arena_return),
        cmocka_unit_test(test_alloc_arena_unmapped),
        cmocka_unit_test(test_alloc_most_used_arena_first),
        cmocka_unit_test(test_alloc_debugmallocstats_text),
        cmocka_unit_test(test_alloc_arena_faults),
        cmocka_unit_test(test_alloc_disabled),
        cmocka_unit_test(test_alloc_poisoned),
        cmocka_unit_test(test_alloc_decref_freed),
        cmocka_unit_test(test_alloc_slack_poisoned),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
