/* bench_churn.c: the cost of short-lived containers. Each op allocates a two-slot
 * container and releases the one allocated 64 ops earlier (a small ring keeps the
 * pointers escaping, so the compiler cannot elide the pairs), with automatic collection
 * on at the default thresholds. Anchors in the same run: calloc + free of the same bytes
 * (header + payload) in the same ring.
 *   empty:  the slots stay NULL
 *   filled: both slots take a reference to a long-lived object, dropped by dealloc
 *   traced: empty, with exact allocation tracing (1 frame) on the same heap
 *   sampled: empty, with sampled tracing (one sample per 512 KiB) on the same heap */
#define _POSIX_C_SOURCE 200809L

#include <rcgc/rcgc.h>
#include <rcgc/tracemalloc.h>

#include "bench_common.h"
#include "bench_node.h"

#define RING 64u
#define CHURN_OPS 10000000u

static const rcgc_type node_type = {
    .name = "bench.churn",
    .size = sizeof(node),
    .traverse = node_traverse,
    .clear = node_clear,
    .dealloc = node_clear,
};

typedef struct cnode { /* what calloc gets: the same bytes as an rcgc object */
    rcgc_head head;
    node n;
} cnode;

static void *g_ring[RING];

static void *must(void *p)
{
    if (!p) {
        fprintf(stderr, "bench_churn: out of memory\n");
        exit(1);
    }
    return p;
}

static uint64_t churn_rcgc(rcgc_heap *h, uint32_t ops, void *fill)
{
    uint64_t t0 = bench_now_ns();
    for (uint32_t i = 0; i < ops; i++) {
        node *p = must(rcgc_new(h, &node_type));
        if (fill) {
            rcgc_incref(fill);
            p->a = fill;
            rcgc_incref(fill);
            p->b = fill;
        }
        void *old = g_ring[i % RING];
        g_ring[i % RING] = p;
        rcgc_xdecref(old);
    }
    uint64_t t = bench_now_ns() - t0;
    for (uint32_t i = 0; i < RING; i++) {
        rcgc_xdecref(g_ring[i]);
        g_ring[i] = NULL;
    }
    return t;
}

/* churn_rcgc (empty) while h traces: exactly (sample_bytes 0) or sampled. */
static uint64_t churn_traced(rcgc_heap *h, uint32_t ops, size_t sample_bytes)
{
    int rc = sample_bytes ? rcgc_tracemalloc_start_sampled(h, 1, sample_bytes)
                          : rcgc_tracemalloc_start(h, 1);
    if (rc != 0) {
        fprintf(stderr, "bench_churn: cannot start tracing: %s\n", rcgc_strerror(rc));
        exit(1);
    }
    uint64_t t = churn_rcgc(h, ops, NULL);
    rcgc_tracemalloc_stop(h);
    return t;
}

static uint64_t churn_calloc(uint32_t ops, void *fill)
{
    uint64_t t0 = bench_now_ns();
    for (uint32_t i = 0; i < ops; i++) {
        cnode *p = must(calloc(1, sizeof *p));
        if (fill) {
            p->n.a = fill;
            p->n.b = fill;
        }
        void *old = g_ring[i % RING];
        g_ring[i % RING] = p;
        free(old);
    }
    uint64_t t = bench_now_ns() - t0;
    for (uint32_t i = 0; i < RING; i++) {
        free(g_ring[i]);
        g_ring[i] = NULL;
    }
    return t;
}

int main(int argc, char **argv)
{
    uint32_t ops = CHURN_OPS, reps = BENCH_REPS;
    if (argc > 1)
        ops = (uint32_t)strtoul(argv[1], NULL, 10);
    if (argc > 2)
        reps = (uint32_t)strtoul(argv[2], NULL, 10);
    if (ops == 0 || reps == 0 || reps > 1000) {
        fprintf(stderr, "usage: %s [ops [reps]]\n", argv[0]);
        return 2;
    }
    rcgc_heap_options opts = {.name = "churn", .ignore_environment = true};
    rcgc_heap *h = rcgc_heap_new_with(&opts);
    if (!h)
        return 1;
    void *keep = must(rcgc_new(h, &node_type)); /* the long-lived target of "filled" */
    static int calloc_target;

    printf("# bench_churn: %u ops per rep, %u reps, ring of %u, object %zu bytes, "
           "rcgc %s\n",
           ops, reps, RING, sizeof(cnode), rcgc_version());
    struct {
        const char *name;
        uint64_t ns[1000];
    } rows[6] = {{"rcgc_empty", {0}},    {"calloc_empty", {0}}, {"rcgc_filled", {0}},
                 {"calloc_filled", {0}}, {"rcgc_traced", {0}},  {"rcgc_sampled", {0}}};
    churn_rcgc(h, ops / 10, NULL); /* warm-up: pools and malloc arenas */
    churn_calloc(ops / 10, NULL);
    for (uint32_t r = 0; r < reps; r++) { /* interleaved, so drift hits all rows alike */
        rows[0].ns[r] = churn_rcgc(h, ops, NULL);
        rows[1].ns[r] = churn_calloc(ops, NULL);
        rows[2].ns[r] = churn_rcgc(h, ops, keep);
        rows[3].ns[r] = churn_calloc(ops, &calloc_target);
        rows[4].ns[r] = churn_traced(h, ops, 0);
        rows[5].ns[r] = churn_traced(h, ops, 512 * 1024);
    }
    for (int i = 0; i < 6; i++) {
        double med = bench_median(rows[i].ns, reps);
        printf("RESULT name=%s ops=%u reps=%u median_ns=%.0f ns_per_op=%.3f\n", rows[i].name,
               ops, reps, med, med / (double)ops);
    }
    rcgc_gen_stats st[3];
    rcgc_get_stats(h, st);
    printf("stats: automatic collections gen0 %zu, gen1 %zu, gen2 %zu\n", st[0].collections,
           st[1].collections, st[2].collections);
    rcgc_decref(keep);
    rcgc_heap_free(h);
    return 0;
}
