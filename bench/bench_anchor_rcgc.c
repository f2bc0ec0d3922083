/* bench_anchor_rcgc.c: the anchor graph in rcgc. A two-child type whose traverse visits
 * a and b, whose clear drops them and whose dealloc decrefs them; the live nodes are held
 * from a C array (one reference each), children take a reference with rcgc_incref.
 * Automatic collection is off throughout; timed: rcgc_collect(h, 2). */
#define _POSIX_C_SOURCE 200809L

#include <rcgc/rcgc.h>

#include "bench_common.h"
#include "bench_node.h"

static const rcgc_type node_type = {
    .name = "bench.node",
    .size = sizeof(node),
    .traverse = node_traverse,
    .clear = node_clear,
    .dealloc = node_clear, /* the same: drop whatever clear has not dropped yet */
};

static void *new_node(rcgc_heap *h)
{
    void *p = rcgc_new(h, &node_type);
    if (!p) {
        fprintf(stderr, "bench_anchor_rcgc: out of memory\n");
        exit(1);
    }
    return p;
}

static void make_garbage(rcgc_heap *h, uint32_t pairs)
{
    for (uint32_t i = 0; i < pairs; i++) {
        node *x = new_node(h), *y = new_node(h);
        rcgc_incref(y);
        x->a = y;
        rcgc_incref(x);
        y->a = x;
        rcgc_decref(x);
        rcgc_decref(y);
    }
}

int main(int argc, char **argv)
{
    bench_args args = bench_parse_args(argc, argv);
    uint64_t *ns = calloc(args.reps, sizeof *ns);
    node **live = calloc(args.live, sizeof *live);
    if (!ns || !live)
        return 1;

    uint64_t rss_before = bench_rss_bytes();
    rcgc_heap_options opts = {.name = "bench", .ignore_environment = true};
    rcgc_heap *h = rcgc_heap_new_with(&opts);
    if (!h)
        return 1;
    rcgc_disable(h);
    for (uint32_t i = 0; i < args.live; i++)
        live[i] = new_node(h);
    bench_rng rng = {BENCH_SEED};
    for (uint32_t i = 0; i < args.live; i++) {
        node *c = live[bench_rng_index(&rng, args.live)];
        rcgc_incref(c);
        live[i]->a = c;
        c = live[bench_rng_index(&rng, args.live)];
        rcgc_incref(c);
        live[i]->b = c;
    }

    printf("# bench_anchor_rcgc: %u live nodes, %u garbage pairs, %u reps, rcgc %s, "
           "sizeof(rcgc_head) = %zu\n",
           args.live, args.pairs, args.reps, rcgc_version(), sizeof(rcgc_head));
    ssize_t warm = rcgc_collect(h, 2);
    if (warm != 0)
        printf("warning: the warm-up collection found %zd unreachable objects\n", warm);
    bench_report_memory("rcgc", args.live, rss_before, bench_rss_bytes());
    /* Steady state: a young collection gives back the full collection's scratch list. */
    (void)rcgc_collect(h, 0);
    bench_report_memory("rcgc-steady", args.live, rss_before, bench_rss_bytes());

    long long collected = -2; /* -2: not yet seen; -1: the reps disagree */
    for (uint32_t r = 0; r < args.reps; r++) {
        make_garbage(h, args.pairs);
        uint64_t t0 = bench_now_ns();
        ssize_t n = rcgc_collect(h, 2);
        ns[r] = bench_now_ns() - t0;
        printf("rep %u: %llu ns, collected %zd\n", r + 1, (unsigned long long)ns[r], n);
        if (collected == -2)
            collected = n;
        else if (collected != n)
            collected = -1;
    }
    rcgc_gen_stats st[3];
    rcgc_get_stats(h, st);
    printf("stats: %zu full collections, pause_max %llu ns (the library's own clock)\n",
           st[2].collections, (unsigned long long)st[2].pause_max_ns);
    bench_report("rcgc", &args, ns, collected);

    for (uint32_t i = 0; i < args.live; i++)
        rcgc_decref(live[i]);
    rcgc_heap_free(h);
    free(live);
    free(ns);
    return collected == 2 * (long long)args.pairs ? 0 : 1;
}
