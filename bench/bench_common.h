/* bench_common.h: what the anchor-graph benchmarks share, so that every contender builds
 * the same graph and is measured the same way: the sizes, the seeded generator that picks
 * the children (bench_anchor_cpython.py repeats it bit for bit), a monotonic clock, the
 * median, and the one-line result format that run_anchor.sh parses. Header-only. */
#ifndef RCGC_BENCH_COMMON_H
#define RCGC_BENCH_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BENCH_LIVE 1000000u /* live two-child nodes, held from a C array */
#define BENCH_PAIRS 100000u /* garbage 2-cycles re-created before every timed collection */
#define BENCH_REPS 5u       /* timed full collections; the median is reported */
#define BENCH_SEED UINT64_C(0x5eed2024)

typedef struct bench_args {
    uint32_t live, pairs, reps;
} bench_args;

/* argv: [live [pairs [reps]]], each a positive integer; defaults from above. */
static inline bench_args bench_parse_args(int argc, char **argv)
{
    bench_args a = {BENCH_LIVE, BENCH_PAIRS, BENCH_REPS};
    uint32_t *field[3] = {&a.live, &a.pairs, &a.reps};
    for (int i = 1; i < argc && i <= 3; i++) {
        char *end = NULL;
        unsigned long v = strtoul(argv[i], &end, 10);
        if (end == argv[i] || *end != '\0' || v == 0 || v > UINT32_MAX / 4) {
            fprintf(stderr, "usage: %s [live [pairs [reps]]]\n", argv[0]);
            exit(2);
        }
        *field[i - 1] = (uint32_t)v;
    }
    return a;
}

/* Knuth's MMIX LCG; an index is the high 32 bits scaled to [0, n). Python:
 *   s = (s * 6364136223846793005 + 1442695040888963407) & (2**64 - 1)
 *   i = ((s >> 32) * n) >> 32 */
typedef struct bench_rng {
    uint64_t s;
} bench_rng;

static inline uint32_t bench_rng_index(bench_rng *r, uint32_t n)
{
    r->s = r->s * UINT64_C(6364136223846793005) + UINT64_C(1442695040888963407);
    return (uint32_t)(((r->s >> 32) * (uint64_t)n) >> 32);
}

static inline uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
}

static int bench_cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return (a > b) - (a < b);
}

/* The median of n > 0 samples (the mean of the middle two for even n); v is sorted. */
/* Resident bytes of this process now (/proc/self/statm), 0 where unavailable. */
static inline uint64_t bench_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long size = 0, resident = 0;
    if (f == NULL)
        return 0;
    if (fscanf(f, "%llu %llu", &size, &resident) != 2)
        resident = 0;
    fclose(f);
    return (uint64_t)resident * 4096u; /* Linux statm counts 4 KiB pages here */
}

/* The memory line run_anchor.sh parses: the growth of the resident set from before the
 * live graph was built to after the warm-up collection (graph, holders and the
 * collector's own tables), per live node. */
static inline void bench_report_memory(const char *name, uint32_t live, uint64_t rss_before,
                                       uint64_t rss_after)
{
    uint64_t grown = rss_after > rss_before ? rss_after - rss_before : 0;
    printf("MEMORY name=%s live=%u rss_growth_bytes=%llu bytes_per_node=%.1f\n", name, live,
           (unsigned long long)grown, (double)grown / live);
}

static inline double bench_median(uint64_t *v, size_t n)
{
    qsort(v, n, sizeof *v, bench_cmp_u64);
    return n % 2 ? (double)v[n / 2] : ((double)v[n / 2 - 1] + (double)v[n / 2]) / 2.0;
}

/* The line run_anchor.sh parses: the median collection time over every object in the
 * heap (live + 2 * pairs), and the garbage found (-1: the contender cannot tell). */
static inline void bench_report(const char *name, const bench_args *a, uint64_t *ns,
                                long long collected)
{
    uint64_t objects = (uint64_t)a->live + 2u * (uint64_t)a->pairs;
    uint64_t min = ns[0];
    for (uint32_t i = 1; i < a->reps; i++)
        min = ns[i] < min ? ns[i] : min;
    double med = bench_median(ns, a->reps);
    printf("RESULT name=%s objects=%llu reps=%u median_ns=%.0f min_ns=%llu "
           "ns_per_object=%.3f collected=%lld\n",
           name, (unsigned long long)objects, a->reps, med, (unsigned long long)min,
           med / (double)objects, collected);
}

#endif /* RCGC_BENCH_COMMON_H */
