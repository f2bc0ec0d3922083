/* bench_anchor_boehm.c: the anchor graph in the Boehm-Demers-Weiser collector (Debian's
 * libgc, pkg-config bdw-gc). Nodes are GC_MALLOC'd pairs of pointers; the live ones are
 * held from a GC_MALLOC'd array reached from a static root; the garbage 2-cycles are
 * referenced from nowhere. Timed: GC_gcollect(), a full mark-sweep with Boehm's default
 * settings for a single-threaded program: one marker thread, since Boehm starts its
 * parallel markers only with the first client thread. With the environment variable
 * BENCH_BOEHM_PARALLEL=1 it starts them (GC_start_mark_threads) and reports "boehm-par". */
#define _POSIX_C_SOURCE 200809L

#define GC_THREADS /* declares GC_get_parallel and GC_start_mark_threads */
#include <gc.h>

#include <stdbool.h>

#include "bench_common.h"

typedef struct bnode {
    struct bnode *a, *b;
} bnode;

static bnode **g_live;   /* static data is a root: keeps the live nodes reachable */
static bnode **g_sample; /* GC_MALLOC_ATOMIC: not scanned; disappearing links for the check */

/* A separate frame, so that no pointer to the garbage outlives it in main's registers. */
static __attribute__((noinline)) void make_garbage(uint32_t pairs, bnode **links)
{
    for (uint32_t i = 0; i < pairs; i++) {
        bnode *x = GC_MALLOC(sizeof *x);
        bnode *y = GC_MALLOC(sizeof *y);
        if (!x || !y) {
            fprintf(stderr, "bench_anchor_boehm: out of memory\n");
            exit(1);
        }
        x->a = y;
        y->a = x;
        if (links) {
            links[2 * (size_t)i] = x;
            links[2 * (size_t)i + 1] = y;
            GC_GENERAL_REGISTER_DISAPPEARING_LINK((void **)&links[2 * (size_t)i], x);
            GC_GENERAL_REGISTER_DISAPPEARING_LINK((void **)&links[2 * (size_t)i + 1], y);
        }
    }
}

int main(int argc, char **argv)
{
    bench_args args = bench_parse_args(argc, argv);
    uint64_t *ns = calloc(args.reps, sizeof *ns);
    if (!ns)
        return 1;

    const char *par = getenv("BENCH_BOEHM_PARALLEL");
    bool parallel = par && strcmp(par, "1") == 0;
    GC_INIT();
    if (parallel)
        GC_start_mark_threads();
    GC_disable(); /* no collection while the graph is built, as the other contenders */
    g_live = GC_MALLOC(args.live * sizeof *g_live);
    if (!g_live)
        return 1;
    for (uint32_t i = 0; i < args.live; i++) {
        g_live[i] = GC_MALLOC(sizeof(bnode));
        if (!g_live[i])
            return 1;
    }
    bench_rng rng = {BENCH_SEED};
    for (uint32_t i = 0; i < args.live; i++) {
        g_live[i]->a = g_live[bench_rng_index(&rng, args.live)];
        g_live[i]->b = g_live[bench_rng_index(&rng, args.live)];
    }
    GC_enable();

    printf("# bench_anchor_boehm: %u live nodes, %u garbage pairs, %u reps, bdw-gc %u.%u.%u, "
           "%d marker thread(s)\n",
           args.live, args.pairs, args.reps, GC_get_version() >> 16,
           (GC_get_version() >> 8) & 0xffu, GC_get_version() & 0xffu, GC_get_parallel() + 1);
    GC_gcollect(); /* warm-up */
    for (uint32_t r = 0; r < args.reps; r++) {
        GC_disable();
        make_garbage(args.pairs, NULL);
        GC_enable();
        uint64_t t0 = bench_now_ns();
        GC_gcollect();
        ns[r] = bench_now_ns() - t0;
        printf("rep %u: %llu ns\n", r + 1, (unsigned long long)ns[r]);
    }

    /* Check (untimed, its own round): GC_gcollect returns nothing, so one more batch of
     * garbage gets a disappearing link per object, and the cleared links are counted.
     * A conservative collector may keep a few garbage objects alive. */
    size_t nobj = 2u * (size_t)args.pairs;
    g_sample = GC_MALLOC_ATOMIC(nobj * sizeof *g_sample);
    if (!g_sample)
        return 1;
    GC_disable();
    make_garbage(args.pairs, g_sample);
    GC_enable();
    GC_gcollect();
    long long cleared = 0;
    for (size_t i = 0; i < nobj; i++)
        cleared += g_sample[i] == NULL;
    printf("check: %lld of %zu garbage objects freed (disappearing links, untimed round)\n",
           cleared, nobj);
    bench_report(parallel ? "boehm-par" : "boehm", &args, ns, cleared);
    free(ns);
    return 0;
}
