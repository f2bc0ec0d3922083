/* bench_anchor_floor.c: the floor of the anchor-graph benchmark. The least work a
 * refcount-subtracting cycle collector must do on the graph: pass 1 copies every node's
 * reference count into its scratch counter (sequential), pass 2 walks every node and
 * decrements the scratch counter of both children (random access). No lists, no
 * callbacks, no freeing: a bar to measure rcgc against, not a collector. */
#define _POSIX_C_SOURCE 200809L

#include "bench_common.h"

/* 24 bytes; rcgc's smallest two-child object is 32 (16-byte header + two pointers). */
typedef struct fnode {
    uint32_t refcnt;  /* references from the array and from other nodes */
    uint32_t gc_refs; /* scratch: refcnt minus references from inside the heap */
    struct fnode *a, *b;
} fnode;

/* Both passes over n nodes; what the collector's update_refs + subtract_refs do. */
static void floor_passes(fnode *nodes, size_t n)
{
    for (size_t i = 0; i < n; i++)
        nodes[i].gc_refs = nodes[i].refcnt;
    for (size_t i = 0; i < n; i++) {
        fnode *x = &nodes[i];
        if (x->a)
            x->a->gc_refs--;
        if (x->b)
            x->b->gc_refs--;
    }
}

int main(int argc, char **argv)
{
    bench_args args = bench_parse_args(argc, argv);
    size_t n = (size_t)args.live + 2u * (size_t)args.pairs;
    fnode *nodes = calloc(n, sizeof *nodes);
    uint64_t *ns = calloc(args.reps, sizeof *ns);
    if (!nodes || !ns) {
        fprintf(stderr, "bench_anchor_floor: out of memory\n");
        return 1;
    }

    /* Live nodes: one reference from the (implicit) array, children chosen at random. */
    bench_rng rng = {BENCH_SEED};
    for (size_t i = 0; i < args.live; i++)
        nodes[i].refcnt = 1;
    for (size_t i = 0; i < args.live; i++) {
        fnode *x = &nodes[i];
        x->a = &nodes[bench_rng_index(&rng, args.live)];
        x->a->refcnt++;
        x->b = &nodes[bench_rng_index(&rng, args.live)];
        x->b->refcnt++;
    }
    /* Garbage 2-cycles after the live nodes, as an allocator would place them. */
    for (size_t i = args.live; i < n; i += 2) {
        nodes[i].a = &nodes[i + 1];
        nodes[i + 1].a = &nodes[i];
        nodes[i].refcnt = nodes[i + 1].refcnt = 1;
    }

    printf("# bench_anchor_floor: %u live nodes, %u garbage pairs, %u reps, node %zu bytes\n",
           args.live, args.pairs, args.reps, sizeof(fnode));
    floor_passes(nodes, n); /* warm-up, as the contenders' untimed first collection */
    for (uint32_t r = 0; r < args.reps; r++) {
        uint64_t t0 = bench_now_ns();
        floor_passes(nodes, n);
        ns[r] = bench_now_ns() - t0;
        printf("rep %u: %llu ns\n", r + 1, (unsigned long long)ns[r]);
    }

    /* Check: exactly the garbage has no reference from outside the heap. */
    size_t zero = 0;
    for (size_t i = 0; i < n; i++)
        zero += nodes[i].gc_refs == 0;
    printf("check: %zu nodes with no outside reference (expected %zu)\n", zero,
           2u * (size_t)args.pairs);
    bench_report("floor", &args, ns, -1);
    free(nodes);
    free(ns);
    return zero == 2u * (size_t)args.pairs ? 0 : 1;
}
