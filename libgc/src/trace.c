/* trace.c: allocation tracing with tracemalloc's model (rcgc/tracemalloc.h).
 *
 * The live side: a table of traces keyed by object (open addressing, linear probing,
 * backward-shift deletion), interned tracebacks that hold raw return addresses, a cache
 * from (file, line) to the one-frame traceback, and the sampling clock. The snapshot
 * side: self-contained copies (an arena of chunks from a copy of the heap's allocator),
 * statistics, comparisons, filters and the file format. Return addresses are named
 * (dladdr, and with libdw the debug information's function, file and line) only when a
 * snapshot or a traceback is taken, never at allocation; the names are cached per address. */
#define _GNU_SOURCE /* dladdr and Dl_info, dl_iterate_phdr's dlpi_subs (glibc) */
#include "internal.h"

#include <rcgc/tracemalloc.h>

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdalign.h>
#include <stdlib.h>
#include <sys/stat.h>

#if defined(__has_include)
#if __has_include(<execinfo.h>) && __has_include(<dlfcn.h>) && RCGC__HAVE_ALLOC_PATH
#define RCGC__HAVE_STACKS 1
#include <dlfcn.h>
#include <execinfo.h>
#endif
#endif
#ifndef RCGC__HAVE_STACKS
#define RCGC__HAVE_STACKS 0
#endif
#if RCGC__HAVE_STACKS
#if __has_include(<link.h>)
#define RCGC__HAVE_DLITER 1 /* dl_iterate_phdr: how many objects were unloaded */
#include <link.h>
#endif
#endif
#ifndef RCGC__HAVE_DLITER
#define RCGC__HAVE_DLITER 0
#endif
/* RCGC_HAVE_LIBDW (CMake found elfutils' libdw): the C frames get file:line from DWARF */
#if RCGC__HAVE_STACKS && defined(RCGC_HAVE_LIBDW)
#define RCGC__HAVE_DWARF 1
#include <dwarf.h>
#include <elfutils/libdwfl.h>
#include <unistd.h>
#else
#define RCGC__HAVE_DWARF 0
#endif

#if defined(__GNUC__) || defined(__clang__)
#define RETURN_ADDRESS() __builtin_return_address(0)
#define NOINLINE __attribute__((noinline))
#else
#define RETURN_ADDRESS() NULL
#define NOINLINE
#endif

#define TAB_MIN 256u          /* initial trace slots (a power of two) */
#define TBS_MIN 64u           /* initial traceback buckets (a power of two) */
#define CACHE_SIZE 128u       /* (file, line) -> one-frame traceback, direct mapped */
#define STACK_BUF 128u        /* return addresses unwound into the C stack first */
#define MAX_CAPTURE 65600u    /* RCGC_TRACE_MAX_FRAMES plus the library's own frames */
#define UNKNOWN "<unknown>"   /* CPython's name for a frame it does not know */
#define NOTAG SIZE_MAX        /* a builder traceback not yet in a statistics array */
#define CHUNK_BODY 8192u      /* default arena chunk */
#define MIN_TRACE_BYTES 20u   /* the smallest trace in a dump: size, count, nframe, total */
#define MIN_FRAME_BYTES 12u   /* the smallest frame: file length, line, function length */
#define NO_STRING 0xFFFFFFFFu /* a NULL function in a dump */
#define SYMS_MIN 64u          /* initial buckets of the name cache (a power of two) */
#define SYM_LEVELS 16u        /* functions kept per return address (the innermost) */

static const char dump_magic[8] = {'R', 'C', 'G', 'C', 'T', 'R', 'C', '1'};
static const rcgc_trace_frame unknown_frame = {UNKNOWN, 0, NULL};

/* ---- live state ---- */

/* A live traceback, interned: at most one per (file, line, return addresses, total).
 * Frame 0 is (file, line) from rcgc_new; pc[0] is the return address into the function
 * that called rcgc_new (its name goes with frame 0), pc[i] those of its callers. */
typedef struct ltb {
    struct ltb *next; /* chain of the traceback table */
    size_t hash;
    const char *file;
    int line;
    uint16_t npc;               /* captured return addresses; 0: frame 0 alone */
    uint16_t total;             /* total_nframe */
    uint64_t snap_gen;          /* take_snapshot's scratch: snap is valid for this gen */
    const rcgc_traceback *snap; /* the copy in the snapshot being built */
    void *pc[];
} ltb;

/* One function at a return address, with where the call lies in it. */
typedef struct symlevel {
    const char *function; /* NULL: no name; the first function_len bytes count */
    size_t function_len;  /* a symbol's "@VERSION" or ".isra.0" suffix is left out */
    const char *source;   /* NULL: no line information */
    unsigned line;
} symlevel;

/* What the return address pc names (sym_resolve): the object (executable or shared
 * object) and the call's offset in it, and one level per function: the innermost first,
 * then, when the debug information says that it was inlined, each function it was
 * inlined into, the last one owning the stack frame. A cached one holds its levels and
 * copies of its strings after the struct; a lookup's scratch borrows them from dladdr
 * and the DWARF session. */
typedef struct sym {
    struct sym *next; /* chain of the name cache */
    void *pc;
    size_t bytes;       /* of the cached block; 0: scratch */
    const char *object; /* NULL: no object holds pc */
    uintptr_t offset;   /* of the call instruction in object */
    size_t nlevel;      /* 1..SYM_LEVELS */
    symlevel *level;
} sym;

typedef struct tentry {
    const void *obj; /* NULL: an empty slot */
    ltb *tb;
    size_t size, count;
} tentry;

struct rcgc__trace {
    int limit;           /* traceback limit of the running (or last) start */
    size_t sample_bytes; /* 0: exact */
    double mean;         /* sample_bytes as a double */
    uint64_t rng;        /* splitmix64 state */

    /* traces: a power-of-two table, load kept at most 1/2 */
    tentry *tab;
    size_t tab_cap, tab_len;
    unsigned tab_shift; /* 64 - log2(tab_cap) */

    /* interned tracebacks: chained buckets */
    ltb **tbs;
    size_t tbs_cap, tbs_len;
    struct {
        const char *file;
        int line;
        ltb *tb;
    } cache[CACHE_SIZE];

    size_t current, peak; /* traced memory */
    size_t memory;        /* bytes held by tracing, this struct included */
    size_t lost;          /* traces skipped for lack of memory since the start */
    uint64_t recorded;    /* traces recorded since the start */
    uint64_t snap_gen;

    /* names of return addresses (chained buckets), kept from one snapshot to the next
     * while tracing runs; valid while no shared object is unloaded */
    sym **syms;
    size_t syms_cap, syms_len;
    unsigned long long syms_unloads; /* dl_iterate_phdr's dlpi_subs they hold for */
};

static void *tmalloc(rcgc_heap *h, size_t n)
{
    void *p = rcgc__malloc(h, n);
    if (p != NULL)
        h->trace->memory += n;
    return p;
}

static void tfree(rcgc_heap *h, void *p, size_t n)
{
    if (p == NULL)
        return;
    rcgc__free(h, p, n);
    h->trace->memory -= n;
}

/* ---- the sampling clock ---- */

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

/* A uniform double in [0, 1). */
static double rng_unit(uint64_t *s)
{
    return (double)(rng_next(s) >> 11) * 0x1.0p-53;
}

/* The bytes to the next sample point: exponential with mean sample_bytes, so that the
 * sample points form a Poisson process over the allocated bytes. An allocation that
 * crosses a point is sampled and the clock restarts after it: by memorylessness the
 * points past it are again a Poisson process. */
static int64_t next_gap(struct rcgc__trace *t)
{
    double g = -log1p(-rng_unit(&t->rng)) * t->mean;
    return g < 9.2e18 ? (int64_t)g : INT64_MAX;
}

/* x rounded down or up at random, with E[result] = x (clamped to SIZE_MAX). */
static size_t round_random(struct rcgc__trace *t, double x)
{
    if (!(x < (double)SIZE_MAX))
        return SIZE_MAX;
    double f = floor(x);
    size_t r = (size_t)f;
    if (rng_unit(&t->rng) < x - f)
        r++;
    return r;
}

/* ---- live tracebacks ---- */

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xFF51AFD7ED558CCDu;
    x ^= x >> 33;
    x *= 0xC4CEB9FE1A85EC53u;
    return x ^ (x >> 33);
}

static size_t ltb_hash(const char *file, int line, void *const *pc, uint16_t npc,
                       uint16_t total)
{
    uint64_t x = mix64((uint64_t)(uintptr_t)file ^ ((uint64_t)(unsigned)line << 32));
    for (uint16_t i = 0; i < npc; i++)
        x = mix64(x ^ (uint64_t)(uintptr_t)pc[i]);
    return (size_t)mix64(x ^ ((uint64_t)npc << 16 | total));
}

static void tbs_rehash(rcgc_heap *h, struct rcgc__trace *t)
{
    size_t ncap = t->tbs_cap * 2;
    ltb **nb = tmalloc(h, ncap * sizeof *nb);
    if (nb == NULL)
        return; /* longer chains, still correct */
    memset(nb, 0, ncap * sizeof *nb);
    for (size_t i = 0; i < t->tbs_cap; i++) {
        for (ltb *b = t->tbs[i], *next; b != NULL; b = next) {
            next = b->next;
            b->next = nb[b->hash & (ncap - 1)];
            nb[b->hash & (ncap - 1)] = b;
        }
    }
    tfree(h, t->tbs, t->tbs_cap * sizeof *t->tbs);
    t->tbs = nb;
    t->tbs_cap = ncap;
}

/* Returns the interned traceback of these frames, creating it; NULL out of memory. */
static ltb *ltb_intern(rcgc_heap *h, struct rcgc__trace *t, const char *file, int line,
                       void *const *pc, uint16_t npc, uint16_t total)
{
    size_t hv = ltb_hash(file, line, pc, npc, total);
    for (ltb *b = t->tbs[hv & (t->tbs_cap - 1)]; b != NULL; b = b->next)
        if (b->hash == hv && b->file == file && b->line == line && b->npc == npc &&
            b->total == total && (npc == 0 || memcmp(b->pc, pc, npc * sizeof *pc) == 0))
            return b;
    if (t->tbs_len >= t->tbs_cap)
        tbs_rehash(h, t);
    ltb *b = tmalloc(h, sizeof *b + npc * sizeof *pc);
    if (b == NULL)
        return NULL;
    b->hash = hv;
    b->file = file;
    b->line = line;
    b->npc = npc;
    b->total = total;
    b->snap_gen = 0;
    b->snap = NULL;
    if (npc > 0)
        memcpy(b->pc, pc, npc * sizeof *pc);
    b->next = t->tbs[hv & (t->tbs_cap - 1)];
    t->tbs[hv & (t->tbs_cap - 1)] = b;
    t->tbs_len++;
    return b;
}

static void ltbs_free(rcgc_heap *h, struct rcgc__trace *t)
{
    for (size_t i = 0; i < t->tbs_cap; i++) {
        for (ltb *b = t->tbs[i], *next; b != NULL; b = next) {
            next = b->next;
            tfree(h, b, sizeof *b + b->npc * sizeof(void *));
        }
        t->tbs[i] = NULL;
    }
    t->tbs_len = 0;
    memset(t->cache, 0, sizeof t->cache);
}

/* Empties the name cache (its buckets too). */
static void syms_free(rcgc_heap *h, struct rcgc__trace *t)
{
    for (size_t i = 0; i < t->syms_cap; i++) {
        for (sym *e = t->syms[i], *next; e != NULL; e = next) {
            next = e->next;
            tfree(h, e, e->bytes);
        }
    }
    tfree(h, t->syms, t->syms_cap * sizeof *t->syms);
    t->syms = NULL;
    t->syms_cap = t->syms_len = 0;
}

/* ---- the C stack ---- */

#if RCGC__HAVE_STACKS
/* The bounds of the section RCGC__ALLOC_PATH puts functions in (the linker's). */
extern const char __start_rcgc_alloc_path[] __attribute__((visibility("hidden")));
extern const char __stop_rcgc_alloc_path[] __attribute__((visibility("hidden")));

/* The index of the first frame of the caller of rcgc_new. ret0 is the return address of
 * rcgc__trace_alloc: every frame up to it is the library's (or a sanitizer's interceptor
 * of backtrace). Past it come the frames of the allocation path, as many as the compiler
 * kept, every one inside RCGC__ALLOC_PATH's section. */
static size_t first_user_frame(void **buf, size_t n, void *ret0)
{
    size_t i = 0;
    for (size_t k = 0; k < n && k < 16; k++) {
        if (buf[k] == ret0) {
            i = k + 1;
            break;
        }
    }
    uintptr_t lo = (uintptr_t)__start_rcgc_alloc_path, hi = (uintptr_t)__stop_rcgc_alloc_path;
    while (i < n && (uintptr_t)buf[i] - 1 - lo < hi - lo) /* the call before the return */
        i++;
    return i;
}

/* Unwinds the C stack and interns the traceback of the caller of rcgc_new. ret0 is the
 * return address of rcgc__trace_alloc (first_user_frame). NULL out of memory. */
static NOINLINE ltb *ltb_capture(rcgc_heap *h, struct rcgc__trace *t, const char *file,
                                 int line, void *ret0)
{
    void *stack_buf[STACK_BUF];
    void **buf = stack_buf;
    size_t cap = STACK_BUF;
    size_t n = (size_t)backtrace(buf, (int)cap);
    while (n == cap && cap < MAX_CAPTURE) { /* deeper: unwind again to count it all */
        size_t ncap = cap * 8 < MAX_CAPTURE ? cap * 8 : MAX_CAPTURE;
        void **nb = rcgc__malloc(h, ncap * sizeof *nb);
        if (nb == NULL)
            break; /* total_nframe is then a lower bound */
        if (buf != stack_buf)
            rcgc__free(h, buf, cap * sizeof *buf);
        buf = nb;
        cap = ncap;
        n = (size_t)backtrace(buf, (int)cap);
    }
    size_t first = first_user_frame(buf, n, ret0);
    size_t avail = n - first;
    size_t npc = avail < (size_t)t->limit ? avail : (size_t)t->limit;
    size_t total = avail < RCGC_TRACE_MAX_FRAMES ? avail : RCGC_TRACE_MAX_FRAMES;
    if (total == 0)
        total = 1; /* frame 0 is known even when the stack is not */
    ltb *tb = ltb_intern(h, t, file, line, buf + first, (uint16_t)npc, (uint16_t)total);
    if (buf != stack_buf)
        rcgc__free(h, buf, cap * sizeof *buf);
    return tb;
}
#endif

/* ---- the trace table ---- */

static size_t tab_home(const struct rcgc__trace *t, const void *obj)
{
    return (size_t)(((uint64_t)(uintptr_t)obj * 0x9E3779B97F4A7C15u) >> t->tab_shift);
}

static unsigned log2_of(size_t pow2)
{
    unsigned k = 0;
    while (((size_t)1 << k) < pow2)
        k++;
    return k;
}

static int tab_resize(rcgc_heap *h, struct rcgc__trace *t, size_t ncap)
{
    tentry *nt = tmalloc(h, ncap * sizeof *nt);
    if (nt == NULL)
        return RCGC_ENOMEM;
    memset(nt, 0, ncap * sizeof *nt);
    tentry *old = t->tab;
    size_t ocap = t->tab_cap;
    t->tab = nt;
    t->tab_cap = ncap;
    t->tab_shift = 64u - log2_of(ncap);
    for (size_t i = 0; i < ocap; i++) {
        if (old[i].obj == NULL)
            continue;
        size_t j = tab_home(t, old[i].obj);
        while (nt[j].obj != NULL)
            j = (j + 1) & (ncap - 1);
        nt[j] = old[i];
    }
    tfree(h, old, ocap * sizeof *old);
    return 0;
}

/* Empties slot i, moving later entries of the probe run back (no tombstones). */
static void tab_remove_at(struct rcgc__trace *t, size_t i)
{
    size_t mask = t->tab_cap - 1;
    for (size_t j = (i + 1) & mask; t->tab[j].obj != NULL; j = (j + 1) & mask) {
        size_t k = tab_home(t, t->tab[j].obj);
        /* the entry at j may move to i unless its home lies cyclically in (i, j] */
        bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (!stays) {
            t->tab[i] = t->tab[j];
            i = j;
        }
    }
    t->tab[i].obj = NULL;
    t->tab_len--;
}

static tentry *tab_find(const struct rcgc__trace *t, const void *obj)
{
    if (t == NULL || t->tab_len == 0)
        return NULL;
    size_t mask = t->tab_cap - 1;
    for (size_t i = tab_home(t, obj);; i = (i + 1) & mask) {
        if (t->tab[i].obj == obj)
            return &t->tab[i];
        if (t->tab[i].obj == NULL)
            return NULL;
    }
}

/* ---- the hooks object.c and heap.c call ---- */

void rcgc__trace_alloc(rcgc_heap *h, void *obj, size_t bytes, const char *file, int line)
{
    struct rcgc__trace *t = h->trace;
    size_t size = bytes, count = 1;
    if (h->trace_mode == RCGC__TRACE_SAMPLED) {
        h->trace_left = next_gap(t);
        double p = -expm1(-(double)bytes / t->mean); /* P(this allocation is sampled) */
        count = round_random(t, 1.0 / p);
        size = round_random(t, (double)bytes / p);
    }
    ltb *tb;
#if RCGC__HAVE_STACKS
    if (RCGC_UNLIKELY(t->limit > 1)) {
        tb = ltb_capture(h, t, file, line, RETURN_ADDRESS());
    } else
#endif
    {
        size_t c = (size_t)((((uint64_t)(uintptr_t)file ^ (uint64_t)(unsigned)line) *
                             0x9E3779B97F4A7C15u) >>
                            57);
        if (RCGC_LIKELY(t->cache[c].file == file && t->cache[c].line == line &&
                        t->cache[c].tb != NULL)) {
            tb = t->cache[c].tb;
        } else {
            tb = ltb_intern(h, t, file, line, NULL, 0, 1);
            if (tb != NULL) {
                t->cache[c].file = file;
                t->cache[c].line = line;
                t->cache[c].tb = tb;
            }
        }
    }
    if (RCGC_UNLIKELY(tb == NULL) || (RCGC_UNLIKELY((t->tab_len + 1) * 2 > t->tab_cap) &&
                                      tab_resize(h, t, t->tab_cap * 2) != 0)) {
        t->lost++;
        return;
    }
    size_t mask = t->tab_cap - 1, i = tab_home(t, obj);
    while (t->tab[i].obj != NULL && t->tab[i].obj != obj)
        i = (i + 1) & mask;
    if (t->tab[i].obj == obj) /* cannot happen: a freed traced object leaves the table */
        t->current -= t->tab[i].size;
    else
        t->tab_len++;
    t->tab[i].obj = obj;
    t->tab[i].tb = tb;
    t->tab[i].size = size;
    t->tab[i].count = count;
    t->current += size;
    if (t->current > t->peak)
        t->peak = t->current;
    t->recorded++;
    rcgc__set_flag(obj, RCGC__F_TRACED);
}

void rcgc__trace_free(rcgc_heap *h, void *obj, size_t bytes)
{
    (void)bytes;
    rcgc__clear_flag(obj, RCGC__F_TRACED);
    struct rcgc__trace *t = h->trace;
    tentry *e = tab_find(t, obj); /* missing after stop or clear_traces: a stale flag */
    if (e == NULL)
        return;
    t->current = e->size <= t->current ? t->current - e->size : 0;
    tab_remove_at(t, (size_t)(e - t->tab));
}

/* Frees the traces and tracebacks; the state struct stays (the limit is kept). */
static void tables_free(rcgc_heap *h, struct rcgc__trace *t)
{
    if (t->tbs != NULL)
        ltbs_free(h, t);
    syms_free(h, t);
    tfree(h, t->tbs, t->tbs_cap * sizeof *t->tbs);
    tfree(h, t->tab, t->tab_cap * sizeof *t->tab);
    t->tbs = NULL;
    t->tab = NULL;
    t->tbs_cap = t->tab_cap = t->tab_len = 0;
    t->current = t->peak = 0;
}

void rcgc__trace_heap_free(rcgc_heap *h)
{
    struct rcgc__trace *t = h->trace;
    if (t == NULL)
        return;
    tables_free(h, t);
    h->trace_mode = RCGC__TRACE_OFF;
    h->trace = NULL;
    rcgc__free(h, t, sizeof *t);
}

/* ---- control ---- */

static int start(rcgc_heap *h, int nframe, size_t sample_bytes)
{
    if (h == NULL || nframe < 1 || nframe > RCGC_TRACE_MAX_FRAMES)
        return RCGC_EINVAL;
    if (h->trace_mode != RCGC__TRACE_OFF)
        return 0; /* as CPython: the running trace keeps its limit */
    struct rcgc__trace *t = h->trace;
    bool fresh = t == NULL;
    if (fresh) {
        t = rcgc__malloc(h, sizeof *t);
        if (t == NULL)
            return RCGC_ENOMEM;
        memset(t, 0, sizeof *t);
        t->limit = 1;
        t->memory = sizeof *t;
        h->trace = t;
    }
    t->tab = tmalloc(h, TAB_MIN * sizeof *t->tab);
    t->tbs = tmalloc(h, TBS_MIN * sizeof *t->tbs);
    if (t->tab == NULL || t->tbs == NULL) {
        tfree(h, t->tab, TAB_MIN * sizeof *t->tab);
        tfree(h, t->tbs, TBS_MIN * sizeof *t->tbs);
        t->tab = NULL;
        t->tbs = NULL;
        if (fresh) {
            h->trace = NULL;
            rcgc__free(h, t, sizeof *t);
        }
        return RCGC_ENOMEM;
    }
    memset(t->tab, 0, TAB_MIN * sizeof *t->tab);
    memset(t->tbs, 0, TBS_MIN * sizeof *t->tbs);
    memset(t->cache, 0, sizeof t->cache);
    t->tab_cap = TAB_MIN;
    t->tab_shift = 64u - log2_of(TAB_MIN);
    t->tbs_cap = TBS_MIN;
    t->limit = nframe;
    t->sample_bytes = sample_bytes;
    t->mean = (double)sample_bytes;
    t->rng = mix64(rcgc__now_ns() ^ (uint64_t)(uintptr_t)h);
    t->current = t->peak = t->lost = 0;
    t->recorded = 0;
#if RCGC__HAVE_STACKS
    if (nframe > 1) {
        void *prime[4];
        (void)backtrace(prime, 4); /* the first call may load the unwinder (dlopen) */
    }
#endif
    if (sample_bytes > 0) {
        h->trace_left = next_gap(t);
        h->trace_mode = RCGC__TRACE_SAMPLED;
    } else {
        h->trace_mode = RCGC__TRACE_EXACT;
    }
    return 0;
}

int rcgc_tracemalloc_start(rcgc_heap *h, int nframe)
{
    return start(h, nframe, 0);
}

int rcgc_tracemalloc_start_sampled(rcgc_heap *h, int nframe, size_t sample_bytes)
{
    if (sample_bytes == 0)
        return RCGC_EINVAL;
    return start(h, nframe, sample_bytes);
}

int rcgc_tracemalloc_seed(rcgc_heap *h, uint64_t seed)
{
    if (h == NULL)
        return RCGC_EINVAL;
    if (h->trace_mode == RCGC__TRACE_OFF)
        return RCGC_EBUSY;
    h->trace->rng = seed;
    if (h->trace_mode == RCGC__TRACE_SAMPLED)
        h->trace_left = next_gap(h->trace);
    return 0;
}

void rcgc_tracemalloc_stop(rcgc_heap *h)
{
    if (h == NULL || h->trace_mode == RCGC__TRACE_OFF)
        return;
    h->trace_mode = RCGC__TRACE_OFF;
    h->trace_left = 0;
    tables_free(h, h->trace); /* live objects keep stale RCGC__F_TRACED flags */
}

bool rcgc_tracemalloc_is_tracing(const rcgc_heap *h)
{
    return h != NULL && h->trace_mode != RCGC__TRACE_OFF;
}

int rcgc_tracemalloc_get_traceback_limit(const rcgc_heap *h)
{
    return h != NULL && h->trace != NULL ? h->trace->limit : 1;
}

size_t rcgc_tracemalloc_sample_bytes(const rcgc_heap *h)
{
    return rcgc_tracemalloc_is_tracing(h) ? h->trace->sample_bytes : 0;
}

void rcgc_tracemalloc_get_traced_memory(const rcgc_heap *h, size_t *current, size_t *peak)
{
    bool on = rcgc_tracemalloc_is_tracing(h);
    if (current != NULL)
        *current = on ? h->trace->current : 0;
    if (peak != NULL)
        *peak = on ? h->trace->peak : 0;
}

void rcgc_tracemalloc_reset_peak(rcgc_heap *h)
{
    if (rcgc_tracemalloc_is_tracing(h))
        h->trace->peak = h->trace->current;
}

void rcgc_tracemalloc_clear_traces(rcgc_heap *h)
{
    if (!rcgc_tracemalloc_is_tracing(h))
        return;
    struct rcgc__trace *t = h->trace;
    memset(t->tab, 0, t->tab_cap * sizeof *t->tab);
    t->tab_len = 0;
    ltbs_free(h, t);
    t->current = t->peak = 0;
}

size_t rcgc_tracemalloc_get_memory(const rcgc_heap *h)
{
    return h != NULL && h->trace != NULL ? h->trace->memory : 0;
}

int rcgc_tracemalloc_get_status(const rcgc_heap *h, rcgc_tracemalloc_status *out)
{
    if (h == NULL || out == NULL)
        return RCGC_EINVAL;
    memset(out, 0, sizeof *out);
    out->tracing = rcgc_tracemalloc_is_tracing(h);
    out->traceback_limit = rcgc_tracemalloc_get_traceback_limit(h);
    out->sample_bytes = rcgc_tracemalloc_sample_bytes(h);
    rcgc_tracemalloc_get_traced_memory(h, &out->current, &out->peak);
    out->memory = rcgc_tracemalloc_get_memory(h);
    if (h->trace != NULL) {
        out->traces = h->trace->tab_len;
        out->tracebacks = h->trace->tbs_len;
        out->lost = h->trace->lost;
        out->recorded = h->trace->recorded;
    }
    return 0;
}

/* Reads the decimal number of environment variable name, in [0, max], into *out.
 * Returns: 1 with the number; 0 when the variable is unset or empty; -1 when it is
 * malformed, after one line on stderr (what: what the number is). */
static int env_number(const char *name, const char *what, unsigned long long max,
                      unsigned long long *out)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0')
        return 0;
    char *end = NULL;
    errno = 0;
    unsigned long long n = (v[0] >= '0' && v[0] <= '9') ? strtoull(v, &end, 10) : 0;
    if (end == NULL || errno != 0 || *end != '\0' || n > max) {
        fprintf(stderr, "rcgc: ignoring malformed %s '%s' (%s must be in range [0; %llu])\n",
                name, v, what, max);
        return -1;
    }
    *out = n;
    return 1;
}

/* RCGC_TRACEMALLOC=N: start with N frames; 0 does not start (PYTHONTRACEMALLOC).
 * RCGC_TRACEMALLOC_SAMPLE=B, B > 0: start sampled instead, one sample per B bytes, with
 * N frames (1 when RCGC_TRACEMALLOC is unset or malformed); B = 0 does not sample.
 * RCGC_TRACEMALLOC=0 wins over a sample size: no tracing. */
void rcgc__trace_environment(rcgc_heap *h)
{
    unsigned long long frames = 0, sample = 0;
    int has_frames =
        env_number("RCGC_TRACEMALLOC", "the number of frames", RCGC_TRACE_MAX_FRAMES, &frames);
    int has_sample = env_number("RCGC_TRACEMALLOC_SAMPLE", "the mean bytes between samples",
                                SIZE_MAX, &sample);
    if (has_frames == 1 && frames == 0)
        return;
    int nframe = has_frames == 1 ? (int)frames : 1;
    if (has_sample == 1 && sample > 0) {
        if (rcgc_tracemalloc_start_sampled(h, nframe, (size_t)sample) != 0)
            fprintf(stderr, "rcgc: RCGC_TRACEMALLOC_SAMPLE: out of memory, not tracing\n");
    } else if (has_frames == 1) {
        if (rcgc_tracemalloc_start(h, nframe) != 0)
            fprintf(stderr, "rcgc: RCGC_TRACEMALLOC: out of memory, not tracing\n");
    }
}

/* ---- arenas: the memory of snapshots, statistics arrays and tracebacks ---- */

#define ALIGN_UP(n, a) (((n) + (a)-1) & ~((size_t)(a)-1))
#define MAX_ALIGN ((size_t)alignof(max_align_t))

typedef struct chunk {
    struct chunk *next;
    size_t size; /* bytes, this header included */
} chunk;

#define CHUNK_HDR ALIGN_UP(sizeof(chunk), MAX_ALIGN)

/* Chunks from a copy of an allocator; everything is freed at once. */
typedef struct arena {
    rcgc_allocator a;
    chunk *head;
    char *cur;
    size_t left;
} arena;

static void *a_malloc(const rcgc_allocator *a, size_t n)
{
    return a->malloc(n, a->ctx);
}

static void a_free(const rcgc_allocator *a, void *p, size_t n)
{
    if (p != NULL)
        a->free(p, n, a->ctx);
}

/* Grows *items (elem bytes each) to hold need; 0 or RCGC_ENOMEM. */
static int a_grow(const rcgc_allocator *a, void **items, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap : 16;
    while (ncap < need)
        ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
    if (ncap > SIZE_MAX / elem)
        return RCGC_ENOMEM;
    void *p = *items == NULL ? a->malloc(ncap * elem, a->ctx)
                             : a->realloc(*items, *cap * elem, ncap * elem, a->ctx);
    if (p == NULL)
        return RCGC_ENOMEM;
    *items = p;
    *cap = ncap;
    return 0;
}

static void *arena_alloc(arena *ar, size_t n)
{
    if (n > SIZE_MAX - MAX_ALIGN - CHUNK_HDR - CHUNK_BODY)
        return NULL;
    n = ALIGN_UP(n, MAX_ALIGN);
    if (n > ar->left) {
        size_t body = n > CHUNK_BODY ? n : CHUNK_BODY;
        chunk *c = a_malloc(&ar->a, CHUNK_HDR + body);
        if (c == NULL)
            return NULL;
        c->next = ar->head;
        c->size = CHUNK_HDR + body;
        ar->head = c;
        ar->cur = (char *)c + CHUNK_HDR;
        ar->left = body;
    }
    void *p = ar->cur;
    ar->cur += n;
    ar->left -= n;
    return p;
}

static void arena_free(arena *ar)
{
    for (chunk *c = ar->head, *next; c != NULL; c = next) {
        next = c->next;
        a_free(&ar->a, c, c->size);
    }
    ar->head = NULL;
    ar->left = 0;
}

/* ---- builders: interned strings and tracebacks in an arena ---- */

/* The start of an entry of a builder's chained hash tables. */
typedef struct hlink {
    struct hlink *next;
    size_t hash;
} hlink;

/* Precedes every traceback a builder makes. */
typedef struct tbhead {
    hlink hlink;
    size_t tag[2]; /* index in the statistics array being grouped, or NOTAG */
} tbhead;

#define TBHEAD ALIGN_UP(sizeof(tbhead), MAX_ALIGN)

typedef struct strent {
    hlink hlink;
    char s[];
} strent;

typedef struct builder {
    arena ar;
    hlink **tbs; /* temporary tables: from the allocator, freed by builder_done */
    size_t tbs_cap, tbs_len;
    hlink **strs;
    size_t strs_cap, strs_len;
    rcgc_trace_frame *scratch;
    size_t scratch_cap;
} builder;

static void builder_init(builder *b, const rcgc_allocator *a)
{
    memset(b, 0, sizeof *b);
    b->ar.a = *a;
}

/* Frees the temporary tables; the arena stays. */
static void builder_done(builder *b)
{
    a_free(&b->ar.a, b->tbs, b->tbs_cap * sizeof *b->tbs);
    a_free(&b->ar.a, b->strs, b->strs_cap * sizeof *b->strs);
    a_free(&b->ar.a, b->scratch, b->scratch_cap * sizeof *b->scratch);
    b->tbs = NULL;
    b->strs = NULL;
    b->scratch = NULL;
}

static void builder_abort(builder *b)
{
    builder_done(b);
    arena_free(&b->ar);
}

static const tbhead *head_of(const rcgc_traceback *tb)
{
    return (const tbhead *)(const void *)((const char *)tb - TBHEAD);
}

static tbhead *head_of_mut(const rcgc_traceback *tb)
{
    return (tbhead *)(uintptr_t)head_of(tb);
}

static size_t str_hash(const char *s, size_t len)
{
    uint64_t x = 0xCBF29CE484222325u;
    for (size_t i = 0; i < len; i++)
        x = (x ^ (unsigned char)s[i]) * 0x100000001B3u;
    return (size_t)mix64(x);
}

/* Rehashes a chained table of 2^k buckets into twice as many; false out of memory. */
static bool buckets_grow(builder *b, hlink ***buckets, size_t *cap)
{
    size_t ncap = *cap ? *cap * 2 : 256;
    hlink **nb = a_malloc(&b->ar.a, ncap * sizeof *nb);
    if (nb == NULL)
        return false;
    for (size_t i = 0; i < ncap; i++)
        nb[i] = NULL;
    for (size_t i = 0; i < *cap; i++) {
        for (hlink *e = (*buckets)[i], *next; e != NULL; e = next) {
            next = e->next;
            e->next = nb[e->hash & (ncap - 1)];
            nb[e->hash & (ncap - 1)] = e;
        }
    }
    a_free(&b->ar.a, *buckets, *cap * sizeof **buckets);
    *buckets = nb;
    *cap = ncap;
    return true;
}

/* Returns the builder's copy of s[0..len) (NUL-terminated), or NULL out of memory. */
static const char *intern_strn(builder *b, const char *s, size_t len)
{
    size_t hv = str_hash(s, len);
    if (b->strs_cap != 0) {
        for (hlink *l = b->strs[hv & (b->strs_cap - 1)]; l != NULL; l = l->next) {
            strent *e = (strent *)(void *)l;
            if (l->hash == hv && strncmp(e->s, s, len) == 0 && e->s[len] == '\0')
                return e->s;
        }
    }
    if (b->strs_len >= b->strs_cap / 2 && !buckets_grow(b, &b->strs, &b->strs_cap) &&
        b->strs_cap == 0)
        return NULL;
    if (len > SIZE_MAX - sizeof(strent) - 1)
        return NULL;
    strent *e = arena_alloc(&b->ar, sizeof *e + len + 1);
    if (e == NULL)
        return NULL;
    e->hlink.hash = hv;
    memcpy(e->s, s, len);
    e->s[len] = '\0';
    e->hlink.next = b->strs[hv & (b->strs_cap - 1)];
    b->strs[hv & (b->strs_cap - 1)] = &e->hlink;
    b->strs_len++;
    return e->s;
}

static const char *intern_str(builder *b, const char *s)
{
    return s == NULL ? NULL : intern_strn(b, s, strlen(s));
}

/* Returns the builder's traceback equal to (frames, n, total), copying it in; NULL out
 * of memory. Strings are compared by content. */
static const rcgc_traceback *intern_tb(builder *b, const rcgc_trace_frame *frames, size_t n,
                                       uint16_t total)
{
    if (a_grow(&b->ar.a, (void **)&b->scratch, &b->scratch_cap, n ? n : 1,
               sizeof *b->scratch) != 0)
        return NULL;
    uint64_t x = mix64((uint64_t)n << 16 | total);
    for (size_t i = 0; i < n; i++) {
        rcgc_trace_frame f = frames[i];
        f.file = intern_str(b, f.file != NULL ? f.file : UNKNOWN);
        if (f.file == NULL)
            return NULL;
        if (f.function != NULL && (f.function = intern_str(b, f.function)) == NULL)
            return NULL;
        b->scratch[i] = f;
        x = mix64(x ^ (uint64_t)(uintptr_t)f.file ^ ((uint64_t)f.line << 40));
        x = mix64(x ^ (uint64_t)(uintptr_t)f.function);
    }
    size_t hv = (size_t)x;
    if (b->tbs_cap != 0) {
        for (hlink *l = b->tbs[hv & (b->tbs_cap - 1)]; l != NULL; l = l->next) {
            const rcgc_traceback *tb = (const rcgc_traceback *)(void *)((char *)l + TBHEAD);
            if (l->hash != hv || tb->nframe != n || tb->total_nframe != total)
                continue;
            size_t i = 0;
            while (i < n && tb->frames[i].file == b->scratch[i].file &&
                   tb->frames[i].line == b->scratch[i].line &&
                   tb->frames[i].function == b->scratch[i].function)
                i++;
            if (i == n)
                return tb;
        }
    }
    if (b->tbs_len >= b->tbs_cap && !buckets_grow(b, &b->tbs, &b->tbs_cap) && b->tbs_cap == 0)
        return NULL;
    tbhead *e = arena_alloc(&b->ar, TBHEAD + sizeof(rcgc_traceback) + n * sizeof *frames);
    if (e == NULL)
        return NULL;
    rcgc_traceback *tb = (rcgc_traceback *)(void *)((char *)e + TBHEAD);
    e->hlink.hash = hv;
    e->tag[0] = e->tag[1] = NOTAG;
    tb->nframe = (uint16_t)n;
    tb->total_nframe = total;
    if (n > 0)
        memcpy(tb->frames, b->scratch, n * sizeof *frames);
    e->hlink.next = b->tbs[hv & (b->tbs_cap - 1)];
    b->tbs[hv & (b->tbs_cap - 1)] = &e->hlink;
    b->tbs_len++;
    return tb;
}

/* The frames of tb, with CPython's "<unknown>":0 for a traceback without any. */
static const rcgc_trace_frame *frames_of(const rcgc_traceback *tb, size_t *n)
{
    if (tb->nframe == 0) {
        *n = 1;
        return &unknown_frame;
    }
    *n = tb->nframe;
    return tb->frames;
}

/* ---- names of return addresses ---- */

/* A pass that names return addresses (a snapshot, a traceback) looks each one up in the
 * heap's cache first. A miss is resolved with dladdr and, when libdw is built in, with the
 * debug information of a DWARF session that the pass opens at its first miss and closes
 * at its end (sym_end): no file stays open between passes. The cache holds for as long
 * as no shared object is unloaded (a later one could take the same addresses). */
typedef struct symbolizer {
    rcgc_heap *h;
#if RCGC__HAVE_DWARF
    Dwfl_Callbacks cb;    /* dwfl_begin keeps a pointer to it */
    char *debuginfo_path; /* NULL: libdwfl's default path (/usr/lib/debug) */
    Dwfl *dwfl;           /* NULL: not opened yet, or it could not be */
    bool dwfl_tried;
#endif
} symbolizer;

#if RCGC__HAVE_DLITER
static int unloads_of_first(struct dl_phdr_info *info, size_t size, void *data)
{
    if (size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof info->dlpi_subs)
        *(unsigned long long *)data = info->dlpi_subs;
    return 1; /* every entry has the same counters */
}
#endif

/* How many times a shared object was unloaded in this process (0 when not known). */
static unsigned long long unloads(void)
{
    unsigned long long n = 0;
#if RCGC__HAVE_DLITER
    (void)dl_iterate_phdr(unloads_of_first, &n);
#endif
    return n;
}

static void sym_begin(symbolizer *sy, rcgc_heap *h)
{
    memset(sy, 0, sizeof *sy);
    sy->h = h;
    unsigned long long n = unloads();
    if (n != h->trace->syms_unloads) {
        syms_free(h, h->trace);
        h->trace->syms_unloads = n;
    }
}

static void sym_end(symbolizer *sy)
{
#if RCGC__HAVE_DWARF
    if (sy->dwfl != NULL)
        dwfl_end(sy->dwfl);
    sy->dwfl = NULL;
#else
    (void)sy;
#endif
}

#if RCGC__HAVE_STACKS
#if RCGC__HAVE_DWARF
/* The DWARF session of this pass: every object mapped in the process (/proc/self/maps),
 * opened lazily by libdwfl. Debug information is read from the object itself or from a
 * separate file found by build ID on the local debuginfo path, never through debuginfod
 * (dwfl_standard_find_debuginfo would ask the servers of DEBUGINFOD_URLS: a network
 * request in the middle of a snapshot). NULL when it cannot be had. */
static Dwfl *sym_dwfl(symbolizer *sy)
{
    if (sy->dwfl_tried)
        return sy->dwfl;
    sy->dwfl_tried = true;
    sy->cb.find_elf = dwfl_linux_proc_find_elf;
    sy->cb.find_debuginfo = dwfl_build_id_find_debuginfo;
    sy->cb.debuginfo_path = &sy->debuginfo_path;
    Dwfl *d = dwfl_begin(&sy->cb);
    if (d == NULL)
        return NULL;
    dwfl_report_begin(d);
    int rc = dwfl_linux_proc_report(d, getpid());
    if (dwfl_report_end(d, NULL, NULL) != 0 || rc != 0) {
        dwfl_end(d);
        return NULL;
    }
    sy->dwfl = d;
    return d;
}

static const char *die_name(Dwarf_Die *die)
{
    Dwarf_Attribute attr; /* through DW_AT_abstract_origin: inlined copies, clones */
    const char *name = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_name, &attr));
    return name != NULL && name[0] != '\0' ? name : NULL;
}

/* Where the inlined subroutine die was called from: its call file and line, or false. */
static bool call_site(Dwarf_Die *cu, Dwarf_Die *die, const char **source, unsigned *line)
{
    Dwarf_Attribute attr;
    Dwarf_Word file, lno;
    Dwarf_Files *files;
    size_t nfiles;
    if (dwarf_formudata(dwarf_attr(die, DW_AT_call_line, &attr), &lno) != 0 || lno == 0 ||
        lno > UINT_MAX ||
        dwarf_formudata(dwarf_attr(die, DW_AT_call_file, &attr), &file) != 0 ||
        dwarf_getsrcfiles(cu, &files, &nfiles) != 0 || file >= nfiles)
        return false;
    *source = dwarf_filesrc(files, (size_t)file, NULL, NULL);
    *line = (unsigned)lno;
    return *source != NULL && (*source)[0] != '\0';
}

/* The compilation unit around addr in mod, with its bias. libdw finds it by the module's
 * .debug_aranges, which clang leaves out unless asked (-gdwarf-aranges); without them,
 * by the address ranges of each unit in turn. NULL when no unit holds addr. */
static Dwarf_Die *unit_of(Dwfl_Module *mod, Dwarf_Addr addr, Dwarf_Addr *bias)
{
    Dwarf_Die *cu = dwfl_module_addrdie(mod, addr, bias);
    if (cu != NULL)
        return cu;
    Dwarf_Addr b = 0;
    for (cu = dwfl_module_nextcu(mod, NULL, &b); cu != NULL;
         cu = dwfl_module_nextcu(mod, cu, &b))
        if (dwarf_haspc(cu, addr - b) == 1) {
            *bias = b;
            return cu;
        }
    return NULL;
}

/* Adds what the debug information knows of the call at addr to *out (as eu-addr2line
 * -i): the innermost function around it (an inlined function's own name, a clone's
 * original name) with the source line of the call, then each function it was inlined
 * into with the line of that inlined call. Without DWARF for addr, the symbol table
 * names the function when dladdr did not (static functions). Leaves *out as it is where
 * libdw knows nothing. The first address in an object with a large separate debug file
 * costs the most (glibc's, from libc6-dbg: some 50 ms to index its compilation units). */
static void dwarf_resolve(symbolizer *sy, uintptr_t addr, sym *out)
{
    Dwfl *d = sym_dwfl(sy);
    Dwfl_Module *mod = d != NULL ? dwfl_addrmodule(d, (Dwarf_Addr)addr) : NULL;
    if (mod == NULL)
        return;
    symlevel *lv = out->level;
    Dwarf_Addr bias = 0;
    Dwarf_Die *cu = unit_of(mod, (Dwarf_Addr)addr, &bias);
    Dwarf_Line *l = cu != NULL ? dwarf_getsrc_die(cu, (Dwarf_Addr)addr - bias) : NULL;
    int line = 0;
    const char *src =
        l != NULL && dwarf_lineno(l, &line) == 0 ? dwarf_linesrc(l, NULL, NULL) : NULL;
    if (src != NULL && src[0] != '\0' && line > 0) {
        lv[0].source = src;
        lv[0].line = (unsigned)line;
    }
    Dwarf_Die *scopes = NULL; /* set (malloc'ed by libdw) only when n > 0 */
    int n = cu != NULL ? dwarf_getscopes(cu, (Dwarf_Addr)addr - bias, &scopes) : 0;
    if (n > 0) { /* the concrete scopes around the innermost one (eu-addr2line's way) */
        Dwarf_Die innermost = scopes[0];
        free(scopes);
        scopes = NULL;
        n = dwarf_getscopes_die(&innermost, &scopes);
    }
    size_t k = 0;
    for (int i = 0; i < n && k < SYM_LEVELS; i++) {
        int tag = dwarf_tag(&scopes[i]);
        if (tag != DW_TAG_subprogram && tag != DW_TAG_inlined_subroutine &&
            tag != DW_TAG_entry_point)
            continue;
        const char *name = die_name(&scopes[i]);
        if (name != NULL) {
            lv[k].function = name;
            lv[k].function_len = strlen(name);
        }
        k++;
        if (tag != DW_TAG_inlined_subroutine || k == SYM_LEVELS)
            break; /* the function that owns the frame */
        /* the next level: the function it was inlined into, at the inlined call */
        memset(&lv[k], 0, sizeof lv[k]);
        if (!call_site(cu, &scopes[i], &lv[k].source, &lv[k].line))
            lv[k].source = NULL;
    }
    free(scopes);
    if (k > 0)
        out->nlevel = k;
    if (lv[0].function == NULL) {
        const char *name = dwfl_module_addrname(mod, (Dwarf_Addr)addr);
        if (name != NULL && name[0] != '\0') {
            lv[0].function = name;
            /* without a version ("memcpy@@GLIBC_2.14") or a clone's suffix ("f.isra.0"):
             * C names have neither '@' nor '.' */
            lv[0].function_len = strcspn(name, "@.");
        }
    }
}
#endif

/* Resolves return address pc into *out, with room for SYM_LEVELS levels at lv; the
 * strings are borrowed from dladdr (valid while the object stays loaded) and the pass's
 * DWARF session. */
static void sym_resolve(symbolizer *sy, void *pc, sym *out, symlevel *lv)
{
    uintptr_t call = (uintptr_t)pc - 1; /* inside the call instruction */
    memset(out, 0, sizeof *out);
    memset(lv, 0, sizeof *lv);
    out->pc = pc;
    out->nlevel = 1;
    out->level = lv;
    Dl_info di;
    if (dladdr((void *)call, &di) != 0) {
        if (di.dli_fname != NULL && di.dli_fname[0] != '\0') {
            out->object = di.dli_fname;
            out->offset = call - (uintptr_t)di.dli_fbase;
        }
        if (di.dli_sname != NULL && di.dli_sname[0] != '\0') {
            lv[0].function = di.dli_sname;
            lv[0].function_len = strlen(di.dli_sname);
        }
    }
#if RCGC__HAVE_DWARF
    dwarf_resolve(sy, call, out);
#else
    (void)sy;
#endif
}

/* Copies r into the cache; NULL when memory is short (the caller uses r itself). */
static const sym *sym_keep(symbolizer *sy, const sym *r, size_t hv)
{
    rcgc_heap *h = sy->h;
    struct rcgc__trace *t = h->trace;
    if (t->syms_len >= t->syms_cap) {
        size_t ncap = t->syms_cap ? t->syms_cap * 2 : SYMS_MIN;
        sym **nb = tmalloc(h, ncap * sizeof *nb);
        if (nb != NULL) {
            memset(nb, 0, ncap * sizeof *nb);
            for (size_t i = 0; i < t->syms_cap; i++) {
                for (sym *e = t->syms[i], *next; e != NULL; e = next) {
                    next = e->next;
                    size_t j = (size_t)mix64((uint64_t)(uintptr_t)e->pc) & (ncap - 1);
                    e->next = nb[j];
                    nb[j] = e;
                }
            }
            tfree(h, t->syms, t->syms_cap * sizeof *t->syms);
            t->syms = nb;
            t->syms_cap = ncap;
        } else if (t->syms_cap == 0) {
            return NULL;
        } /* else longer chains, still correct */
    }
    size_t bytes = sizeof(sym) + r->nlevel * sizeof(symlevel);
    bytes += r->object != NULL ? strlen(r->object) + 1 : 0;
    for (size_t k = 0; k < r->nlevel; k++) {
        bytes += r->level[k].function != NULL ? r->level[k].function_len + 1 : 0;
        bytes += r->level[k].source != NULL ? strlen(r->level[k].source) + 1 : 0;
    }
    sym *e = tmalloc(h, bytes);
    if (e == NULL)
        return NULL;
    *e = *r;
    e->bytes = bytes;
    e->level = (symlevel *)(void *)(e + 1);
    char *p = (char *)(e->level + r->nlevel);
    if (r->object != NULL) {
        size_t len = strlen(r->object) + 1;
        e->object = memcpy(p, r->object, len);
        p += len;
    }
    for (size_t k = 0; k < r->nlevel; k++) {
        const symlevel *from = &r->level[k];
        symlevel *to = &e->level[k];
        *to = *from;
        if (from->function != NULL) {
            to->function = memcpy(p, from->function, from->function_len);
            p[from->function_len] = '\0';
            p += from->function_len + 1;
        }
        if (from->source != NULL) {
            size_t len = strlen(from->source) + 1;
            to->source = memcpy(p, from->source, len);
            p += len;
        }
    }
    e->next = t->syms[hv & (t->syms_cap - 1)];
    t->syms[hv & (t->syms_cap - 1)] = e;
    t->syms_len++;
    return e;
}

/* What pc names: the cached entry, or a fresh resolution (cached when memory allows;
 * else *scratch with its levels at lv, valid until sym_end). */
static const sym *sym_lookup(symbolizer *sy, void *pc, sym *scratch, symlevel *lv)
{
    struct rcgc__trace *t = sy->h->trace;
    size_t hv = (size_t)mix64((uint64_t)(uintptr_t)pc);
    if (t->syms_cap != 0)
        for (const sym *e = t->syms[hv & (t->syms_cap - 1)]; e != NULL; e = e->next)
            if (e->pc == pc)
                return e;
    sym_resolve(sy, pc, scratch, lv);
    const sym *e = sym_keep(sy, scratch, hv);
    return e != NULL ? e : scratch;
}

/* Fills frame *fr from level k of what a return address names; false out of memory.
 * Frame 0 (top: the innermost level of the first address) keeps the file:line that
 * rcgc_new recorded and takes only a real name: an offset (a different one per call in
 * the same function) would split one line's statistics. Any other frame is the source
 * file:line when the debug information has it, else the object with line 0; without a
 * name, "object+0xoffset". */
static bool frame_of(builder *b, const sym *s, size_t k, bool top, rcgc_trace_frame *fr)
{
    const symlevel *lv = &s->level[k];
    fr->function = NULL;
    if (lv->function != NULL &&
        (fr->function = intern_strn(b, lv->function, lv->function_len)) == NULL)
        return false;
    if (top)
        return true;
    if (lv->source != NULL) {
        fr->file = intern_str(b, lv->source);
        fr->line = lv->line;
    } else {
        fr->file = s->object != NULL ? intern_str(b, s->object) : UNKNOWN;
        fr->line = 0;
    }
    if (fr->file == NULL)
        return false;
    if (fr->function == NULL && s->object != NULL) {
        const char *base = strrchr(s->object, '/');
        base = base != NULL ? base + 1 : s->object;
        char text[256];
        snprintf(text, sizeof text, "%s+0x%" PRIxPTR, base, s->offset);
        if ((fr->function = intern_str(b, text)) == NULL)
            return false;
    }
    return true;
}
#endif

/* The builder's copy of a live traceback, with names resolved; NULL out of memory. A
 * return address gives one frame per function level (inlined functions have theirs), up
 * to the traceback limit; total_nframe counts the extra levels of the addresses named. */
static const rcgc_traceback *ltb_resolve(builder *b, symbolizer *sy, const ltb *l)
{
    rcgc_trace_frame one;
    one.file = l->file != NULL ? l->file : UNKNOWN;
    one.line = l->line > 0 ? (unsigned)l->line : 0;
    one.function = NULL;
    if (l->npc == 0)
        return intern_tb(b, &one, 1, l->total);
    const rcgc_traceback *tb = NULL;
#if RCGC__HAVE_STACKS
    /* intern_tb copies through the builder's scratch: resolve into a separate array */
    rcgc_trace_frame *fr = NULL;
    size_t cap = 0, n = 0, total = l->total;
    size_t limit = (size_t)sy->h->trace->limit;
    for (size_t i = 0; i < l->npc && n < limit; i++) {
        sym scratch;
        symlevel lv[SYM_LEVELS];
        const sym *s = sym_lookup(sy, l->pc[i], &scratch, lv);
        for (size_t k = 0; k < s->nlevel && n < limit; k++) {
            if (a_grow(&b->ar.a, (void **)&fr, &cap, n + 1, sizeof *fr) != 0)
                goto out;
            fr[n] = one; /* frame 0 keeps rcgc_new's file:line */
            if (!frame_of(b, s, k, n == 0, &fr[n]))
                goto out;
            n++;
        }
        total += s->nlevel - 1;
    }
    tb = intern_tb(b, fr, n,
                   (uint16_t)(total < RCGC_TRACE_MAX_FRAMES ? total : RCGC_TRACE_MAX_FRAMES));
out:
    a_free(&b->ar.a, fr, cap * sizeof *fr);
#else
    (void)sy;
#endif
    return tb;
}

/* ---- snapshots ---- */

struct rcgc_trace_snapshot {
    arena ar; /* owns everything, this struct included */
    int limit;
    size_t sample_bytes;
    size_t n;
    rcgc_trace *traces;
};

/* Moves the builder's arena and the n traces into a new snapshot; frees v. NULL out of
 * memory (the builder is then aborted). */
static rcgc_trace_snapshot *snapshot_finish(builder *b, rcgc_trace *v, size_t vcap, size_t n,
                                            int limit, size_t sample_bytes)
{
    rcgc_trace_snapshot *s = arena_alloc(&b->ar, sizeof *s);
    rcgc_trace *arr = NULL;
    if (s != NULL && n > 0 && n <= SIZE_MAX / sizeof *arr)
        arr = arena_alloc(&b->ar, n * sizeof *arr);
    if (s == NULL || (n > 0 && arr == NULL)) {
        a_free(&b->ar.a, v, vcap * sizeof *v);
        builder_abort(b);
        return NULL;
    }
    if (n > 0)
        memcpy(arr, v, n * sizeof *arr);
    a_free(&b->ar.a, v, vcap * sizeof *v);
    builder_done(b);
    s->limit = limit;
    s->sample_bytes = sample_bytes;
    s->n = n;
    s->traces = arr;
    s->ar = b->ar; /* after the last allocation from it */
    return s;
}

static void set_err(int *err, int code)
{
    if (err != NULL)
        *err = code;
}

rcgc_trace_snapshot *rcgc_tracemalloc_take_snapshot(rcgc_heap *h, int *err)
{
    set_err(err, 0);
    if (h == NULL) {
        set_err(err, RCGC_EINVAL);
        return NULL;
    }
    if (h->trace_mode == RCGC__TRACE_OFF) {
        set_err(err, RCGC_EBUSY);
        return NULL;
    }
    struct rcgc__trace *t = h->trace;
    uint64_t gen = ++t->snap_gen;
    builder b;
    builder_init(&b, &h->alloc);
    symbolizer sy;
    sym_begin(&sy, h);
    rcgc_trace *v = NULL;
    size_t vcap = 0, n = 0;
    if (a_grow(&b.ar.a, (void **)&v, &vcap, t->tab_len, sizeof *v) != 0)
        goto nomem;
    for (size_t i = 0; i < t->tab_cap; i++) {
        const tentry *e = &t->tab[i];
        if (e->obj == NULL)
            continue;
        if (e->tb->snap_gen != gen) {
            e->tb->snap = ltb_resolve(&b, &sy, e->tb);
            if (e->tb->snap == NULL)
                goto nomem;
            e->tb->snap_gen = gen;
        }
        v[n].size = e->size;
        v[n].count = e->count;
        v[n].traceback = e->tb->snap;
        n++;
    }
    sym_end(&sy);
    rcgc_trace_snapshot *s = snapshot_finish(
        &b, v, vcap, n, t->limit, h->trace_mode == RCGC__TRACE_SAMPLED ? t->sample_bytes : 0);
    if (s == NULL)
        set_err(err, RCGC_ENOMEM);
    return s;
nomem:
    sym_end(&sy);
    t->snap_gen++; /* the scratch pointers refer to the aborted builder */
    a_free(&b.ar.a, v, vcap * sizeof *v);
    builder_abort(&b);
    set_err(err, RCGC_ENOMEM);
    return NULL;
}

void rcgc_trace_snapshot_free(rcgc_trace_snapshot *s)
{
    if (s == NULL)
        return;
    arena ar = s->ar;
    arena_free(&ar);
}

size_t rcgc_trace_snapshot_count(const rcgc_trace_snapshot *s)
{
    return s != NULL ? s->n : 0;
}

const rcgc_trace *rcgc_trace_snapshot_get(const rcgc_trace_snapshot *s, size_t i)
{
    return s != NULL && i < s->n ? &s->traces[i] : NULL;
}

int rcgc_trace_snapshot_traceback_limit(const rcgc_trace_snapshot *s)
{
    return s != NULL ? s->limit : 1;
}

size_t rcgc_trace_snapshot_sample_bytes(const rcgc_trace_snapshot *s)
{
    return s != NULL ? s->sample_bytes : 0;
}

/* ---- single tracebacks (get_object_traceback) ---- */

/* Precedes a traceback of get_object_traceback: how to free the one block. */
typedef struct packhdr {
    rcgc_allocator a;
    size_t size;
} packhdr;

#define PACKHDR ALIGN_UP(sizeof(packhdr), MAX_ALIGN)

/* One block holding a copy of tb and its strings. */
static rcgc_traceback *tb_pack(const rcgc_allocator *a, const rcgc_traceback *tb)
{
    size_t strings = 0;
    for (size_t i = 0; i < tb->nframe; i++) {
        strings += strlen(tb->frames[i].file) + 1;
        if (tb->frames[i].function != NULL)
            strings += strlen(tb->frames[i].function) + 1;
    }
    size_t size = PACKHDR + sizeof *tb + tb->nframe * sizeof tb->frames[0] + strings;
    packhdr *ph = a_malloc(a, size);
    if (ph == NULL)
        return NULL;
    ph->a = *a;
    ph->size = size;
    rcgc_traceback *out = (rcgc_traceback *)(void *)((char *)ph + PACKHDR);
    char *p = (char *)&out->frames[tb->nframe];
    out->nframe = tb->nframe;
    out->total_nframe = tb->total_nframe;
    for (size_t i = 0; i < tb->nframe; i++) {
        size_t len = strlen(tb->frames[i].file) + 1;
        memcpy(p, tb->frames[i].file, len);
        out->frames[i].file = p;
        p += len;
        out->frames[i].line = tb->frames[i].line;
        out->frames[i].function = NULL;
        if (tb->frames[i].function != NULL) {
            len = strlen(tb->frames[i].function) + 1;
            memcpy(p, tb->frames[i].function, len);
            out->frames[i].function = p;
            p += len;
        }
    }
    return out;
}

rcgc_traceback *rcgc_tracemalloc_get_object_traceback(const void *obj)
{
    if (obj == NULL || !(rcgc__flags(obj) & RCGC__F_TRACED))
        return NULL;
    rcgc_heap *h = rcgc__site_of(obj)->heap;
    if (h->trace_mode == RCGC__TRACE_OFF)
        return NULL;
    const tentry *e = tab_find(h->trace, obj);
    if (e == NULL)
        return NULL;
    builder b;
    builder_init(&b, &h->alloc);
    symbolizer sy;
    sym_begin(&sy, h);
    const rcgc_traceback *tb = ltb_resolve(&b, &sy, e->tb);
    sym_end(&sy);
    rcgc_traceback *out = tb != NULL ? tb_pack(&h->alloc, tb) : NULL;
    builder_abort(&b);
    return out;
}

void rcgc_traceback_free(rcgc_traceback *tb)
{
    if (tb == NULL)
        return;
    packhdr *ph = (packhdr *)(void *)((char *)tb - PACKHDR);
    rcgc_allocator a = ph->a;
    a_free(&a, ph, ph->size);
}

/* ---- filters ---- */

static bool frame_matches(const rcgc_trace_filter *f, const rcgc__glob *g,
                          const rcgc_trace_frame *fr)
{
    if (!rcgc__glob_match(g, fr->file))
        return false;
    return f->lineno == 0 || f->lineno == fr->line;
}

/* Filter._match: whether the trace passes this filter (for an exclusive filter: whether
 * it does not match). */
static bool filter_passes(const rcgc_trace_filter *f, const rcgc__glob *g,
                          const rcgc_traceback *tb)
{
    size_t n;
    const rcgc_trace_frame *fr = frames_of(tb, &n);
    if (!f->all_frames)
        return frame_matches(f, g, &fr[0]) == f->inclusive;
    for (size_t i = 0; i < n; i++)
        if (frame_matches(f, g, &fr[i]))
            return f->inclusive;
    return !f->inclusive;
}

static bool trace_kept(const rcgc_trace_filter *filters, rcgc__glob *const *globs, size_t n,
                       const rcgc_traceback *tb)
{
    bool any_inclusive = false, included = false;
    for (size_t i = 0; i < n; i++) {
        if (filters[i].inclusive) {
            any_inclusive = true;
            if (!included && filter_passes(&filters[i], globs[i], tb))
                included = true;
        } else if (!filter_passes(&filters[i], globs[i], tb)) {
            return false;
        }
    }
    return !any_inclusive || included;
}

/* The patterns of filters[0..n) compiled, in one block of *bytes from a (the pointers
 * first); NULL out of memory. */
static rcgc__glob **globs_compile(const rcgc_allocator *a, const rcgc_trace_filter *filters,
                                  size_t n, size_t *bytes)
{
    size_t total = ALIGN_UP(n * sizeof(rcgc__glob *), MAX_ALIGN);
    for (size_t i = 0; i < n; i++) {
        size_t g = rcgc__glob_size(filters[i].filename_pattern);
        if (g == 0 || g > SIZE_MAX - MAX_ALIGN || total > SIZE_MAX - ALIGN_UP(g, MAX_ALIGN))
            return NULL;
        total += ALIGN_UP(g, MAX_ALIGN);
    }
    char *block = a_malloc(a, total);
    if (block == NULL)
        return NULL;
    rcgc__glob **globs = (rcgc__glob **)(void *)block;
    size_t at = ALIGN_UP(n * sizeof(rcgc__glob *), MAX_ALIGN);
    for (size_t i = 0; i < n; i++) {
        globs[i] = rcgc__glob_compile(filters[i].filename_pattern, block + at);
        at += ALIGN_UP(rcgc__glob_size(filters[i].filename_pattern), MAX_ALIGN);
    }
    *bytes = total;
    return globs;
}

rcgc_trace_snapshot *rcgc_trace_snapshot_filter(const rcgc_trace_snapshot *s,
                                                const rcgc_trace_filter *filters, size_t n,
                                                int *err)
{
    set_err(err, 0);
    bool bad = s == NULL || (n > 0 && filters == NULL);
    for (size_t i = 0; !bad && i < n; i++)
        bad = filters[i].filename_pattern == NULL;
    if (bad) {
        set_err(err, RCGC_EINVAL);
        return NULL;
    }
    size_t gbytes = 0;
    rcgc__glob **globs = n > 0 ? globs_compile(&s->ar.a, filters, n, &gbytes) : NULL;
    if (n > 0 && globs == NULL) {
        set_err(err, RCGC_ENOMEM);
        return NULL;
    }
    builder b;
    builder_init(&b, &s->ar.a);
    rcgc_trace *v = NULL;
    size_t vcap = 0, vn = 0;
    if (a_grow(&b.ar.a, (void **)&v, &vcap, s->n, sizeof *v) != 0)
        goto nomem;
    for (size_t i = 0; i < s->n; i++) {
        const rcgc_trace *tr = &s->traces[i];
        if (n > 0 && !trace_kept(filters, globs, n, tr->traceback))
            continue;
        v[vn] = *tr;
        v[vn].traceback = intern_tb(&b, tr->traceback->frames, tr->traceback->nframe,
                                    tr->traceback->total_nframe);
        if (v[vn].traceback == NULL)
            goto nomem;
        vn++;
    }
    a_free(&s->ar.a, globs, gbytes);
    rcgc_trace_snapshot *out = snapshot_finish(&b, v, vcap, vn, s->limit, s->sample_bytes);
    if (out == NULL)
        set_err(err, RCGC_ENOMEM);
    return out;
nomem:
    a_free(&s->ar.a, globs, gbytes);
    a_free(&b.ar.a, v, vcap * sizeof *v);
    builder_abort(&b);
    set_err(err, RCGC_ENOMEM);
    return NULL;
}

/* ---- statistics ---- */

static int cmp_str(const char *a, const char *b)
{
    if (a == b)
        return 0;
    if (a == NULL || b == NULL)
        return a == NULL ? -1 : 1;
    int c = strcmp(a, b);
    return (c > 0) - (c < 0);
}

static int cmp_size(uint64_t a, uint64_t b)
{
    return (a > b) - (a < b);
}

static int frame_cmp(const rcgc_trace_frame *a, const rcgc_trace_frame *b)
{
    int c = cmp_str(a->file, b->file);
    if (c == 0)
        c = cmp_size(a->line, b->line);
    if (c == 0)
        c = cmp_str(a->function, b->function);
    return c;
}

/* CPython's Traceback order: tuples of frames from the oldest to the most recent. */
static int tb_cmp(const rcgc_traceback *a, const rcgc_traceback *b)
{
    size_t na, nb;
    const rcgc_trace_frame *fa = frames_of(a, &na), *fb = frames_of(b, &nb);
    for (size_t k = 0; k < na && k < nb; k++) {
        int c = frame_cmp(&fa[na - 1 - k], &fb[nb - 1 - k]);
        if (c != 0)
            return c;
    }
    return cmp_size(na, nb);
}

static int stat_cmp_desc(const void *pa, const void *pb)
{
    const rcgc_trace_stat *a = pa, *b = pb;
    int c = cmp_size(a->size, b->size);
    if (c == 0)
        c = cmp_size(a->count, b->count);
    if (c == 0)
        c = tb_cmp(a->traceback, b->traceback);
    return -c;
}

static uint64_t abs64(int64_t x)
{
    return x < 0 ? (uint64_t)0 - (uint64_t)x : (uint64_t)x;
}

static int diff_cmp_desc(const void *pa, const void *pb)
{
    const rcgc_trace_stat_diff *a = pa, *b = pb;
    int c = cmp_size(abs64(a->size_diff), abs64(b->size_diff));
    if (c == 0)
        c = cmp_size(a->size, b->size);
    if (c == 0)
        c = cmp_size(abs64(a->count_diff), abs64(b->count_diff));
    if (c == 0)
        c = cmp_size(a->count, b->count);
    if (c == 0)
        c = tb_cmp(a->traceback, b->traceback);
    return -c;
}

/* a + b, or SIZE_MAX where that does not fit: statistics of huge sampled estimates or of
 * a crafted file stop at the top instead of wrapping around. */
static size_t add_sat(size_t a, size_t b)
{
    return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

/* now - before as a signed change, saturated at +-INT64_MAX (never INT64_MIN, so that
 * its magnitude is always an int64_t too). */
static int64_t diff_sat(size_t now, size_t before)
{
    size_t d = now >= before ? now - before : before - now;
    int64_t m = d > (size_t)INT64_MAX ? INT64_MAX : (int64_t)d;
    return now >= before ? m : -m;
}

typedef struct statvec {
    rcgc_trace_stat *items;
    size_t len, cap;
} statvec;

static int stat_add(builder *b, statvec *v, int which, const rcgc_traceback *key,
                    const rcgc_trace *tr)
{
    if (key == NULL)
        return RCGC_ENOMEM;
    tbhead *hd = head_of_mut(key);
    if (hd->tag[which] == NOTAG) {
        if (a_grow(&b->ar.a, (void **)&v->items, &v->cap, v->len + 1, sizeof *v->items) != 0)
            return RCGC_ENOMEM;
        hd->tag[which] = v->len;
        v->items[v->len].traceback = key;
        v->items[v->len].size = 0;
        v->items[v->len].count = 0;
        v->len++;
    }
    rcgc_trace_stat *st = &v->items[hd->tag[which]];
    st->size = add_sat(st->size, tr->size);
    st->count = add_sat(st->count, tr->count);
    return 0;
}

/* Snapshot._group_by: the statistics of s by key, in v; keys interned in b (tag[which]
 * maps a key to its entry). */
static int group_by(builder *b, const rcgc_trace_snapshot *s, rcgc_trace_key key,
                    bool cumulative, int which, statvec *v)
{
    for (size_t i = 0; i < s->n; i++) {
        const rcgc_trace *tr = &s->traces[i];
        size_t nf;
        const rcgc_trace_frame *fr = frames_of(tr->traceback, &nf);
        if (key == RCGC_TRACE_KEY_TRACEBACK) {
            if (stat_add(b, v, which, intern_tb(b, fr, nf, (uint16_t)nf), tr) != 0)
                return RCGC_ENOMEM;
            continue;
        }
        size_t upto = cumulative ? nf : 1;
        for (size_t j = 0; j < upto; j++) {
            rcgc_trace_frame f = fr[j];
            if (key == RCGC_TRACE_KEY_FILENAME) {
                f.line = 0;
                f.function = NULL;
            }
            if (stat_add(b, v, which, intern_tb(b, &f, 1, 1), tr) != 0)
                return RCGC_ENOMEM;
        }
    }
    return 0;
}

/* Hidden before a statistics array: where its arena's state is kept. */
typedef struct stathdr {
    arena *home;
} stathdr;

#define STATHDR ALIGN_UP(sizeof(stathdr), MAX_ALIGN)

/* Copies n elements of elem bytes into an array owned by the builder's arena, which then
 * belongs to the array. NULL out of memory (the builder is then aborted). */
static void *stats_finish(builder *b, const void *items, size_t n, size_t elem)
{
    arena *home = arena_alloc(&b->ar, sizeof *home);
    char *block = NULL;
    if (home != NULL && n <= (SIZE_MAX - STATHDR) / elem)
        block = arena_alloc(&b->ar, STATHDR + n * elem);
    if (block == NULL) {
        builder_abort(b);
        return NULL;
    }
    builder_done(b);
    memcpy(block + STATHDR, items, n * elem);
    ((stathdr *)(void *)block)->home = home;
    *home = b->ar;
    return block + STATHDR;
}

void rcgc_trace_stats_free(void *stats, size_t n)
{
    (void)n;
    if (stats == NULL)
        return;
    const stathdr *sh = (const stathdr *)(const void *)((char *)stats - STATHDR);
    arena ar = *sh->home;
    arena_free(&ar);
}

static bool key_valid(rcgc_trace_key key, bool cumulative)
{
    if (key != RCGC_TRACE_KEY_FILENAME && key != RCGC_TRACE_KEY_LINENO &&
        key != RCGC_TRACE_KEY_TRACEBACK)
        return false;
    return !(cumulative && key == RCGC_TRACE_KEY_TRACEBACK);
}

int rcgc_trace_snapshot_statistics(const rcgc_trace_snapshot *s, rcgc_trace_key key,
                                   bool cumulative, rcgc_trace_stat **out, size_t *n)
{
    if (out != NULL)
        *out = NULL;
    if (n != NULL)
        *n = 0;
    if (s == NULL || out == NULL || n == NULL || !key_valid(key, cumulative))
        return RCGC_EINVAL;
    builder b;
    builder_init(&b, &s->ar.a);
    statvec v = {NULL, 0, 0};
    int rc = group_by(&b, s, key, cumulative, 0, &v);
    if (rc == 0 && v.len > 0) {
        qsort(v.items, v.len, sizeof *v.items, stat_cmp_desc);
        *out = stats_finish(&b, v.items, v.len, sizeof *v.items);
        if (*out == NULL)
            rc = RCGC_ENOMEM;
        else
            *n = v.len;
    } else {
        builder_abort(&b);
    }
    a_free(&s->ar.a, v.items, v.cap * sizeof *v.items);
    return rc;
}

int rcgc_trace_snapshot_compare_to(const rcgc_trace_snapshot *s, const rcgc_trace_snapshot *old,
                                   rcgc_trace_key key, bool cumulative,
                                   rcgc_trace_stat_diff **out, size_t *n)
{
    if (out != NULL)
        *out = NULL;
    if (n != NULL)
        *n = 0;
    if (s == NULL || old == NULL || out == NULL || n == NULL || !key_valid(key, cumulative))
        return RCGC_EINVAL;
    const rcgc_allocator *a = &s->ar.a;
    builder b;
    builder_init(&b, a);
    statvec vn = {NULL, 0, 0}, vo = {NULL, 0, 0};
    rcgc_trace_stat_diff *d = NULL;
    size_t dcap = 0, dn = 0;
    int rc = group_by(&b, s, key, cumulative, 0, &vn);
    if (rc == 0)
        rc = group_by(&b, old, key, cumulative, 1, &vo);
    if (rc == 0 && a_grow(a, (void **)&d, &dcap, vn.len + vo.len, sizeof *d) != 0)
        rc = RCGC_ENOMEM;
    if (rc == 0) {
        for (size_t i = 0; i < vn.len; i++) { /* _compare_grouped_stats */
            const rcgc_trace_stat *st = &vn.items[i];
            size_t j = head_of(st->traceback)->tag[1];
            size_t osize = j != NOTAG ? vo.items[j].size : 0;
            size_t ocount = j != NOTAG ? vo.items[j].count : 0;
            d[dn].traceback = st->traceback;
            d[dn].size = st->size;
            d[dn].count = st->count;
            d[dn].size_diff = diff_sat(st->size, osize);
            d[dn].count_diff = diff_sat(st->count, ocount);
            dn++;
        }
        for (size_t j = 0; j < vo.len; j++) {
            const rcgc_trace_stat *st = &vo.items[j];
            if (head_of(st->traceback)->tag[0] != NOTAG)
                continue;
            d[dn].traceback = st->traceback;
            d[dn].size = 0;
            d[dn].count = 0;
            d[dn].size_diff = diff_sat(0, st->size);
            d[dn].count_diff = diff_sat(0, st->count);
            dn++;
        }
    }
    if (rc == 0 && dn > 0) {
        qsort(d, dn, sizeof *d, diff_cmp_desc);
        *out = stats_finish(&b, d, dn, sizeof *d);
        if (*out == NULL)
            rc = RCGC_ENOMEM;
        else
            *n = dn;
    } else {
        builder_abort(&b);
    }
    a_free(a, vn.items, vn.cap * sizeof *vn.items);
    a_free(a, vo.items, vo.cap * sizeof *vo.items);
    a_free(a, d, dcap * sizeof *d);
    return rc;
}

/* ---- files ---- */

/* The format, little-endian: magic "RCGCTRC1", u32 traceback limit, u64 sample_bytes,
 * u64 number of traces; each trace: u64 size, u64 count, u16 nframe, u16 total_nframe,
 * then nframe frames of (string file, u32 line, string function); a string is a u32
 * length (NO_STRING: NULL) and as many bytes, no NUL. Nothing follows the last trace. */

typedef struct writer {
    FILE *f;
    int err; /* first error: RCGC_EIO (errno says why) */
} writer;

static void put_bytes(writer *w, const void *p, size_t n)
{
    if (w->err == 0 && n > 0 && fwrite(p, 1, n, w->f) != n)
        w->err = RCGC_EIO;
}

static void put_uint(writer *w, uint64_t x, size_t n)
{
    unsigned char b[8];
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)(x >> (8 * i));
    put_bytes(w, b, n);
}

static void put_str(writer *w, const char *s)
{
    if (s == NULL) {
        put_uint(w, NO_STRING, 4);
        return;
    }
    size_t len = strlen(s);
    if (len >= NO_STRING) {
        if (w->err == 0)
            w->err = RCGC_EINVAL;
        return;
    }
    put_uint(w, len, 4);
    put_bytes(w, s, len);
}

int rcgc_trace_snapshot_dump(const rcgc_trace_snapshot *s, const char *path)
{
    if (s == NULL || path == NULL)
        return RCGC_EINVAL;
    errno = 0;
    writer w = {fopen(path, "wb"), 0};
    if (w.f == NULL)
        return RCGC_EIO;
    put_bytes(&w, dump_magic, sizeof dump_magic);
    put_uint(&w, (uint64_t)s->limit, 4);
    put_uint(&w, s->sample_bytes, 8);
    put_uint(&w, s->n, 8);
    for (size_t i = 0; i < s->n && w.err == 0; i++) {
        const rcgc_trace *tr = &s->traces[i];
        put_uint(&w, tr->size, 8);
        put_uint(&w, tr->count, 8);
        put_uint(&w, tr->traceback->nframe, 2);
        put_uint(&w, tr->traceback->total_nframe, 2);
        for (size_t j = 0; j < tr->traceback->nframe; j++) {
            put_str(&w, tr->traceback->frames[j].file);
            put_uint(&w, tr->traceback->frames[j].line, 4);
            put_str(&w, tr->traceback->frames[j].function);
        }
    }
    errno = 0;
    if (fclose(w.f) != 0 && w.err == 0)
        w.err = RCGC_EIO;
    return w.err;
}

typedef struct reader {
    const unsigned char *p;
    size_t left;
    bool bad;
} reader;

static uint64_t get_uint(reader *r, size_t n)
{
    if (r->bad || r->left < n) {
        r->bad = true;
        return 0;
    }
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++)
        x |= (uint64_t)r->p[i] << (8 * i);
    r->p += n;
    r->left -= n;
    return x;
}

/* Reads a string into the builder: *out is NULL for NO_STRING. False when malformed or
 * out of memory (*nomem tells which). */
static bool get_str(reader *r, builder *b, const char **out, bool *nomem)
{
    uint64_t len = get_uint(r, 4);
    *out = NULL;
    if (r->bad)
        return false;
    if (len == NO_STRING)
        return true;
    if (len > r->left || memchr(r->p, '\0', (size_t)len) != NULL) {
        r->bad = true;
        return false;
    }
    *out = intern_strn(b, (const char *)r->p, (size_t)len);
    r->p += len;
    r->left -= (size_t)len;
    *nomem = *out == NULL;
    return *out != NULL;
}

/* Parses a whole file image into a snapshot; *err RCGC_EINVAL or RCGC_ENOMEM on NULL. */
static rcgc_trace_snapshot *parse(const rcgc_allocator *a, const unsigned char *data,
                                  size_t size, int *err)
{
    reader r = {data, size, false};
    if (size < sizeof dump_magic || memcmp(data, dump_magic, sizeof dump_magic) != 0) {
        *err = RCGC_EINVAL;
        return NULL;
    }
    r.p += sizeof dump_magic;
    r.left -= sizeof dump_magic;
    uint64_t limit = get_uint(&r, 4);
    uint64_t sample = get_uint(&r, 8);
    uint64_t n = get_uint(&r, 8);
    if (r.bad || limit < 1 || limit > RCGC_TRACE_MAX_FRAMES || sample > SIZE_MAX ||
        n > r.left / MIN_TRACE_BYTES) {
        *err = RCGC_EINVAL;
        return NULL;
    }
    builder b;
    builder_init(&b, a);
    rcgc_trace *v = NULL;
    rcgc_trace_frame *fr = NULL;
    size_t vcap = 0, frcap = 0;
    bool nomem = false;
    if (a_grow(a, (void **)&v, &vcap, (size_t)n, sizeof *v) != 0) {
        nomem = true;
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t tsize = get_uint(&r, 8), tcount = get_uint(&r, 8);
        size_t nframe = (size_t)get_uint(&r, 2);
        uint16_t total = (uint16_t)get_uint(&r, 2);
        if (r.bad || tsize > SIZE_MAX || tcount > SIZE_MAX || nframe > r.left / MIN_FRAME_BYTES)
            goto fail;
        if (a_grow(a, (void **)&fr, &frcap, nframe, sizeof *fr) != 0) {
            nomem = true;
            goto fail;
        }
        for (size_t j = 0; j < nframe; j++) {
            if (!get_str(&r, &b, &fr[j].file, &nomem))
                goto fail;
            fr[j].line = (unsigned)get_uint(&r, 4);
            if (!get_str(&r, &b, &fr[j].function, &nomem))
                goto fail;
            if (fr[j].file == NULL) { /* a file is never NULL */
                r.bad = true;
                goto fail;
            }
        }
        v[i].size = (size_t)tsize;
        v[i].count = (size_t)tcount;
        v[i].traceback = intern_tb(&b, fr, nframe, total);
        if (v[i].traceback == NULL) {
            nomem = true;
            goto fail;
        }
    }
    if (r.left != 0)
        goto fail;
    a_free(a, fr, frcap * sizeof *fr);
    rcgc_trace_snapshot *s =
        snapshot_finish(&b, v, vcap, (size_t)n, (int)limit, (size_t)sample);
    if (s == NULL)
        *err = RCGC_ENOMEM;
    return s;
fail:
    a_free(a, fr, frcap * sizeof *fr);
    a_free(a, v, vcap * sizeof *v);
    builder_abort(&b);
    *err = nomem ? RCGC_ENOMEM : RCGC_EINVAL;
    return NULL;
}

rcgc_trace_snapshot *rcgc_trace_snapshot_load_with(const char *path,
                                                   const rcgc_allocator *alloc, int *err)
{
    int dummy;
    if (err == NULL)
        err = &dummy;
    *err = 0;
    if (alloc == NULL)
        alloc = &rcgc__libc_allocator;
    if (path == NULL || alloc->malloc == NULL || alloc->realloc == NULL ||
        alloc->free == NULL) {
        *err = RCGC_EINVAL;
        return NULL;
    }
    errno = 0;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        *err = RCGC_EIO;
        return NULL;
    }
    struct stat st;
    unsigned char *data = NULL;
    size_t size = 0;
    rcgc_trace_snapshot *s = NULL;
    if (fstat(fileno(f), &st) != 0) {
        *err = RCGC_EIO;
    } else if (!S_ISREG(st.st_mode) || st.st_size < 0) {
        *err = RCGC_EINVAL;
    } else if ((uintmax_t)st.st_size > SIZE_MAX / 2) {
        *err = RCGC_ENOMEM;
    } else {
        size = (size_t)st.st_size;
        data = a_malloc(alloc, size ? size : 1);
        if (data == NULL)
            *err = RCGC_ENOMEM;
        else if (fread(data, 1, size, f) != size)
            *err = ferror(f) ? (RCGC_EIO) : RCGC_EINVAL;
        else
            s = parse(alloc, data, size, err);
    }
    a_free(alloc, data, size ? size : 1);
    fclose(f);
    return s;
}

rcgc_trace_snapshot *rcgc_trace_snapshot_load(const char *path, int *err)
{
    return rcgc_trace_snapshot_load_with(path, NULL, err);
}

/* ---- text ---- */

static size_t text_len(int r)
{
    return r > 0 ? (size_t)r : 0;
}

/* tracemalloc._format_size on a double (averages are fractional). */
static size_t format_size(char *buf, size_t cap, double size, bool sign)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    for (size_t i = 0;; i++) {
        if (fabs(size) < 100 && i > 0)
            return text_len(sign ? snprintf(buf, cap, "%+.1f %s", size, units[i])
                                 : snprintf(buf, cap, "%.1f %s", size, units[i]));
        if (fabs(size) < 10 * 1024 || i == 4)
            return text_len(sign ? snprintf(buf, cap, "%+.0f %s", size, units[i])
                                 : snprintf(buf, cap, "%.0f %s", size, units[i]));
        size /= 1024;
    }
}

size_t rcgc_trace_format_size(char *buf, size_t cap, int64_t size, bool sign)
{
    return format_size(buf, cap, (double)size, sign);
}

/* Appends to buf[*len..cap) as snprintf would, tracking the whole length. */
static char *tail(char *buf, size_t cap, size_t len, size_t *room)
{
    *room = len < cap ? cap - len : 0;
    return *room > 0 ? buf + len : NULL;
}

static size_t format_stat(char *buf, size_t cap, const rcgc_traceback *tb, size_t size,
                          size_t count, bool diff, int64_t size_diff, int64_t count_diff)
{
    size_t nf, room;
    const rcgc_trace_frame *fr = frames_of(tb, &nf);
    const rcgc_trace_frame *oldest = &fr[nf - 1]; /* str(Traceback) is str(self[0]) */
    char s1[32], s2[32];
    format_size(s1, sizeof s1, (double)size, false);
    size_t len;
    if (diff) {
        format_size(s2, sizeof s2, (double)size_diff, true);
        len = text_len(snprintf(buf, cap, "%s:%u: size=%s (%s), count=%zu (%+" PRId64 ")",
                                oldest->file, oldest->line, s1, s2, count, count_diff));
    } else {
        len = text_len(snprintf(buf, cap, "%s:%u: size=%s, count=%zu", oldest->file,
                                oldest->line, s1, count));
    }
    if (count > 0) {
        format_size(s2, sizeof s2, (double)size / (double)count, false);
        char *p = tail(buf, cap, len, &room);
        len += text_len(snprintf(p, room, ", average=%s", s2));
    }
    return len;
}

size_t rcgc_trace_stat_format(char *buf, size_t cap, const rcgc_trace_stat *st)
{
    if (st == NULL || st->traceback == NULL)
        return 0;
    return format_stat(buf, cap, st->traceback, st->size, st->count, false, 0, 0);
}

size_t rcgc_trace_stat_diff_format(char *buf, size_t cap, const rcgc_trace_stat_diff *st)
{
    if (st == NULL || st->traceback == NULL)
        return 0;
    return format_stat(buf, cap, st->traceback, st->size, st->count, true, st->size_diff,
                       st->count_diff);
}
