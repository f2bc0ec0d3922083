/* test_trace.c: allocation tracing (rcgc/tracemalloc.h) against tracemalloc's semantics:
 * errors of every call, exact traced memory on known blocks, tracebacks (the allocating
 * statement, and C frames with nframe > 1), statistics and their sort orders on crafted
 * ties, compare_to, filters, dump/load and hostile files, sampled estimates within
 * statistical bounds, RCGC_TRACEMALLOC and RCGC_TRACEMALLOC_SAMPLE, and the chaos loop
 * over tracing's own memory. With libdw built in (RCGC_HAVE_LIBDW), the C frames of a
 * known chain of static functions are checked to name them, with this file's lines when
 * the executable has line tables (-g).
 *
 * Block sizes: a Small object is 48 payload bytes + the 16-byte header = 64 bytes, a Big
 * one 256; rcgc_new_var adds a 16-byte prefix when its size differs from the type's. */
#define _GNU_SOURCE /* dladdr, dl_iterate_phdr, mkstemp */
#include "testlib.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <inttypes.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rcgc/tracemalloc.h>

#include "fault_alloc.h"

#define SMALL 64u
#define BIG 256u
#define NOINLINE __attribute__((noinline))

static const rcgc_type Small = {.name = "trace.Small", .size = SMALL - 16};
static const rcgc_type Big = {.name = "trace.Big", .size = BIG - 16};

/* The line of the allocating statement, taken on the same line as the allocation. */
#define NEW_AT(h, type, line_out) ((line_out) = __LINE__, rcgc_new((h), (type)))

/* ---- helpers ---- */

typedef struct bag {
    void *o[1024];
    size_t n;
} bag;

static void *bag_add(bag *b, void *o)
{
    assert_non_null(o);
    assert_true(b->n < sizeof b->o / sizeof b->o[0]);
    b->o[b->n++] = o;
    return o;
}

static void bag_clear(bag *b)
{
    for (size_t i = 0; i < b->n; i++)
        rcgc_xdecref(b->o[i]);
    b->n = 0;
}

/* An object from a crafted site (file, line). */
static void *new_at(bag *b, rcgc_heap *h, const rcgc_type *t, const char *file, int line)
{
    return bag_add(b, rcgc__new(h, t, file, line));
}

static void *new_var_at(bag *b, rcgc_heap *h, size_t size, const char *file, int line)
{
    return bag_add(b, rcgc__new_var(h, &Small, size, file, line));
}

static size_t traced_current(const rcgc_heap *h)
{
    size_t cur, peak;
    rcgc_tracemalloc_get_traced_memory(h, &cur, &peak);
    return cur;
}

static size_t traced_peak(const rcgc_heap *h)
{
    size_t cur, peak;
    rcgc_tracemalloc_get_traced_memory(h, &cur, &peak);
    return peak;
}

static void assert_frame(const rcgc_trace_frame *f, const char *file, unsigned line)
{
    assert_string_equal(f->file, file);
    assert_int_equal(f->line, line);
}

static void assert_stat(const rcgc_trace_stat *st, const char *file, unsigned line, size_t size,
                        size_t count)
{
    assert_int_equal(st->traceback->nframe, 1);
    assert_frame(&st->traceback->frames[0], file, line);
    assert_int_equal(st->size, size);
    assert_int_equal(st->count, count);
}

static void assert_diff(const rcgc_trace_stat_diff *d, const char *file, size_t size,
                        int64_t size_diff, size_t count, int64_t count_diff)
{
    assert_string_equal(d->traceback->frames[0].file, file);
    assert_int_equal(d->size, size);
    assert_int_equal(d->size_diff, size_diff);
    assert_int_equal(d->count, count);
    assert_int_equal(d->count_diff, count_diff);
}

static rcgc_trace_snapshot *snap(rcgc_heap *h)
{
    int err = 1;
    rcgc_trace_snapshot *s = rcgc_tracemalloc_take_snapshot(h, &err);
    assert_non_null(s);
    assert_int_equal(err, 0);
    return s;
}

static rcgc_trace_stat *stats(const rcgc_trace_snapshot *s, rcgc_trace_key key, bool cum,
                              size_t *n)
{
    rcgc_trace_stat *st = NULL;
    assert_int_equal(rcgc_trace_snapshot_statistics(s, key, cum, &st, n), 0);
    return st;
}

static size_t filtered_count(const rcgc_trace_snapshot *s, const rcgc_trace_filter *f, size_t n)
{
    int err = 1;
    rcgc_trace_snapshot *out = rcgc_trace_snapshot_filter(s, f, n, &err);
    assert_non_null(out);
    assert_int_equal(err, 0);
    size_t c = rcgc_trace_snapshot_count(out);
    rcgc_trace_snapshot_free(out);
    return c;
}

static void temp_path(char *path, size_t cap)
{
    snprintf(path, cap, "/tmp/rcgc-trace-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
}

/* ---- functions that allocate, for the C-stack frames (exported: -rdynamic shows them) */

void *trace_test_alloc(rcgc_heap *h, unsigned *line);
void *trace_test_recurse(rcgc_heap *h, int depth, unsigned *line);
void *volatile trace_test_sink;

NOINLINE void *trace_test_alloc(rcgc_heap *h, unsigned *line)
{
    void *o = NEW_AT(h, &Small, *line);
    trace_test_sink = o; /* no tail call: this frame stays on the stack */
    return o;
}

NOINLINE void *trace_test_recurse(rcgc_heap *h, int depth, unsigned *line)
{
    void *o;
    if (depth > 0) /* the call two lines above the allocation (test_trace_deep_frames) */
        o = trace_test_recurse(h, depth - 1, line);
    else
        o = NEW_AT(h, &Small, *line);
    trace_test_sink = o;
    return o;
}

/* rcgc_new of type, or rcgc_new_var of size when size is not zero, both on one line (one
 * frame 0 whichever path test_trace_frames_every_path takes). */
void *trace_test_paths(rcgc_heap *h, const rcgc_type *type, size_t size, unsigned *line);

NOINLINE void *trace_test_paths(rcgc_heap *h, const rcgc_type *type, size_t size,
                                unsigned *line)
{
    void *o = (*line = __LINE__, size == 0 ? rcgc_new(h, type) : rcgc_new_var(h, type, size));
    trace_test_sink = o;
    return o;
}

#if RCGC_HAVE_LIBDW
/* A known chain of static functions (never exported: only the debug information or the
 * symbol table names them): chain_outer calls chain_middle, always inlined into it, which
 * calls chain_inner. calls[0] and calls[1] get the lines of their calls. */
static NOINLINE void *chain_inner(rcgc_heap *h, unsigned *line)
{
    void *o = NEW_AT(h, &Small, *line);
    trace_test_sink = o;
    return o;
}

static inline __attribute__((always_inline)) void *chain_middle(rcgc_heap *h, unsigned *line,
                                                                unsigned *calls)
{
    void *o = (calls[0] = __LINE__, chain_inner(h, line));
    trace_test_sink = o;
    return o;
}

static NOINLINE void *chain_outer(rcgc_heap *h, unsigned *line, unsigned *calls)
{
    void *o = (calls[1] = __LINE__, chain_middle(h, line, calls));
    trace_test_sink = o;
    return o;
}
#endif

#if !RCGC_HAVE_LIBDW
/* Checks that a frame's function names fn: its symbol when dladdr can see it, else
 * "object+0xoffset" with an offset inside fn. */
static void assert_function_is(const char *got, void (*fn)(void))
{
    void *addr = (void *)(uintptr_t)fn;
    Dl_info di;
    assert_true(dladdr(addr, &di) != 0);
    assert_non_null(got);
    if (di.dli_sname != NULL && di.dli_saddr == addr) {
        assert_string_equal(got, di.dli_sname);
        return;
    }
    const char *base = strrchr(di.dli_fname, '/');
    base = base != NULL ? base + 1 : di.dli_fname;
    size_t blen = strlen(base);
    assert_true(strncmp(got, base, blen) == 0);
    assert_true(strncmp(got + blen, "+0x", 3) == 0);
    uintptr_t off = (uintptr_t)strtoull(got + blen + 3, NULL, 16);
    uintptr_t start = (uintptr_t)addr - (uintptr_t)di.dli_fbase;
    assert_true(off >= start && off < start + 4096);
}
#endif

static const char *module_of(void (*fn)(void))
{
    Dl_info di;
    assert_true(dladdr((void *)(uintptr_t)fn, &di) != 0);
    return di.dli_fname;
}

#if RCGC_HAVE_LIBDW
/* Whether this executable has DWARF line tables (a .debug_line section: built with -g),
 * read from its ELF section headers. */
static bool exe_has_line_tables(void)
{
    FILE *f = fopen("/proc/self/exe", "rb");
    assert_non_null(f);
    ElfW(Ehdr) eh;
    bool found = false;
    if (fread(&eh, sizeof eh, 1, f) == 1 && memcmp(eh.e_ident, ELFMAG, SELFMAG) == 0 &&
        eh.e_shentsize == sizeof(ElfW(Shdr)) && eh.e_shstrndx < eh.e_shnum) {
        ElfW(Shdr) *sh = calloc(eh.e_shnum, sizeof *sh);
        assert_non_null(sh);
        assert_int_equal(fseek(f, (long)eh.e_shoff, SEEK_SET), 0);
        assert_int_equal(fread(sh, sizeof *sh, eh.e_shnum, f), eh.e_shnum);
        const ElfW(Shdr) *strs = &sh[eh.e_shstrndx];
        char *names = malloc(strs->sh_size + 1);
        assert_non_null(names);
        assert_int_equal(fseek(f, (long)strs->sh_offset, SEEK_SET), 0);
        assert_int_equal(fread(names, 1, strs->sh_size, f), strs->sh_size);
        names[strs->sh_size] = '\0';
        for (size_t i = 0; i < eh.e_shnum && !found; i++)
            found = sh[i].sh_name < strs->sh_size &&
                    strcmp(names + sh[i].sh_name, ".debug_line") == 0 && sh[i].sh_size > 0;
        free(names);
        free(sh);
    }
    fclose(f);
    return found;
}

/* Checks a frame's function (a clone's, "name.constprop.0" in a symbol table, is named
 * name too). */
static void assert_named(const char *got, const char *name)
{
    assert_non_null(got);
    if (strcmp(got, name) != 0)
        fail_msg("function '%s', expected '%s'", got, name);
}

/* Checks a deeper frame against the call at `line` of this file, in function name: the
 * source line with line tables, else the executable with line 0. */
static void assert_c_frame(const rcgc_trace_frame *f, bool lines, const char *name,
                           unsigned line)
{
    assert_named(f->function, name);
    if (lines) {
        assert_frame(f, __FILE__, line);
    } else {
        assert_string_equal(f->file, module_of((void (*)(void))trace_test_alloc));
        assert_int_equal(f->line, 0);
    }
}
#endif

/* ---- a crafted snapshot file (the format of trace.c) ---- */

typedef struct cframe {
    const char *file; /* NULL: write a NULL file (invalid) */
    unsigned line;
    const char *function;
} cframe;

typedef struct ctrace {
    uint64_t size, count;
    unsigned nframe, total;
    cframe frames[3];
} ctrace;

static void put(FILE *f, uint64_t x, int n)
{
    for (int i = 0; i < n; i++)
        fputc((int)((x >> (8 * i)) & 0xFF), f);
}

static void put_s(FILE *f, const char *s)
{
    if (s == NULL) {
        put(f, 0xFFFFFFFFu, 4);
        return;
    }
    put(f, strlen(s), 4);
    fputs(s, f);
}

static void write_crafted(const char *path, uint32_t limit, uint64_t sample, uint64_t n_claimed,
                          const ctrace *t, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fwrite("RCGCTRC1", 1, 8, f);
    put(f, limit, 4);
    put(f, sample, 8);
    put(f, n_claimed, 8);
    for (size_t i = 0; i < n; i++) {
        put(f, t[i].size, 8);
        put(f, t[i].count, 8);
        put(f, t[i].nframe, 2);
        put(f, t[i].total, 2);
        for (unsigned j = 0; j < t[i].nframe && j < 3; j++) { /* nframe may lie */
            put_s(f, t[i].frames[j].file);
            put(f, t[i].frames[j].line, 4);
            put_s(f, t[i].frames[j].function);
        }
    }
    fclose(f);
}

/* T1..T4 of the traceback-order test: all (100, 1); T4 has no frame ("<unknown>":0). */
static const ctrace crafted[] = {
    {100, 1, 2, 7, {{"m.c", 1, "f"}, {"main.c", 10, "main"}}},
    {100, 1, 2, 2, {{"a.c", 5, "g"}, {"main.c", 20, "main"}}},
    {100, 1, 1, 1, {{"z.c", 1, NULL}}},
    {100, 1, 0, 0, {{NULL, 0, NULL}}},
};
#define NCRAFTED (sizeof crafted / sizeof crafted[0])

/* Loads a snapshot of crafted traces. */
static rcgc_trace_snapshot *load_traces(const ctrace *t, size_t n)
{
    char path[64];
    temp_path(path, sizeof path);
    write_crafted(path, 3, 0, n, t, n);
    int err = 1;
    rcgc_trace_snapshot *s = rcgc_trace_snapshot_load(path, &err);
    unlink(path);
    assert_non_null(s);
    assert_int_equal(err, 0);
    return s;
}

static rcgc_trace_snapshot *load_crafted(void)
{
    return load_traces(crafted, NCRAFTED);
}

/* ---- calls and their errors ---- */

static void test_trace_errors(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    int err = 0;
    assert_false(rcgc_tracemalloc_is_tracing(h));
    assert_false(rcgc_tracemalloc_is_tracing(NULL));
    assert_int_equal(rcgc_tracemalloc_get_traceback_limit(h), 1);
    assert_int_equal(rcgc_tracemalloc_get_memory(h), 0);
    assert_int_equal(rcgc_tracemalloc_sample_bytes(h), 0);
    size_t cur = 7, peak = 7;
    rcgc_tracemalloc_get_traced_memory(h, &cur, &peak);
    assert_int_equal(cur, 0);
    assert_int_equal(peak, 0);
    assert_null(rcgc_tracemalloc_take_snapshot(h, &err));
    assert_int_equal(err, RCGC_EBUSY);
    assert_null(rcgc_tracemalloc_take_snapshot(NULL, &err));
    assert_int_equal(err, RCGC_EINVAL);
    assert_null(rcgc_tracemalloc_take_snapshot(h, NULL));
    assert_int_equal(rcgc_tracemalloc_seed(h, 1), RCGC_EBUSY);
    assert_int_equal(rcgc_tracemalloc_seed(NULL, 1), RCGC_EINVAL);

    assert_int_equal(rcgc_tracemalloc_start(h, 0), RCGC_EINVAL);
    assert_int_equal(rcgc_tracemalloc_start(h, -1), RCGC_EINVAL);
    assert_int_equal(rcgc_tracemalloc_start(h, 65536), RCGC_EINVAL);
    assert_int_equal(rcgc_tracemalloc_start(NULL, 1), RCGC_EINVAL);
    assert_int_equal(rcgc_tracemalloc_start_sampled(h, 1, 0), RCGC_EINVAL);
    assert_int_equal(rcgc_tracemalloc_start_sampled(h, 0, 4096), RCGC_EINVAL);
    assert_false(rcgc_tracemalloc_is_tracing(h));
    assert_int_equal(rcgc_tracemalloc_get_traceback_limit(h), 1);

    /* no-ops when not tracing */
    rcgc_tracemalloc_stop(h);
    rcgc_tracemalloc_stop(NULL);
    rcgc_tracemalloc_reset_peak(h);
    rcgc_tracemalloc_clear_traces(h);
    rcgc_tracemalloc_status st;
    assert_int_equal(rcgc_tracemalloc_get_status(NULL, &st), RCGC_EINVAL);
    assert_int_equal(rcgc_tracemalloc_get_status(h, NULL), RCGC_EINVAL);
    assert_int_equal(rcgc_tracemalloc_get_status(h, &st), 0);
    assert_false(st.tracing);
    assert_int_equal(st.traceback_limit, 1);

    /* snapshots */
    assert_int_equal(rcgc_tracemalloc_start(h, 1), 0);
    rcgc_trace_snapshot *s = snap(h);
    rcgc_trace_stat *stv = (void *)1;
    rcgc_trace_stat_diff *dv = (void *)1;
    size_t n = 9;
    assert_int_equal(
        rcgc_trace_snapshot_statistics(NULL, RCGC_TRACE_KEY_LINENO, false, &stv, &n),
        RCGC_EINVAL);
    assert_null(stv);
    assert_int_equal(n, 0);
    assert_int_equal(
        rcgc_trace_snapshot_statistics(s, RCGC_TRACE_KEY_TRACEBACK, true, &stv, &n),
        RCGC_EINVAL);
    assert_int_equal(rcgc_trace_snapshot_statistics(s, (rcgc_trace_key)7, false, &stv, &n),
                     RCGC_EINVAL);
    assert_int_equal(rcgc_trace_snapshot_statistics(s, RCGC_TRACE_KEY_LINENO, false, NULL, &n),
                     RCGC_EINVAL);
    assert_int_equal(
        rcgc_trace_snapshot_compare_to(s, NULL, RCGC_TRACE_KEY_LINENO, false, &dv, &n),
        RCGC_EINVAL);
    assert_int_equal(
        rcgc_trace_snapshot_compare_to(s, s, RCGC_TRACE_KEY_TRACEBACK, true, &dv, &n),
        RCGC_EINVAL);
    assert_null(dv);
    /* an empty snapshot: empty results */
    assert_int_equal(rcgc_trace_snapshot_statistics(s, RCGC_TRACE_KEY_LINENO, false, &stv, &n),
                     0);
    assert_null(stv);
    assert_int_equal(n, 0);
    assert_null(rcgc_trace_snapshot_filter(NULL, NULL, 0, &err));
    assert_int_equal(err, RCGC_EINVAL);
    assert_null(rcgc_trace_snapshot_filter(s, NULL, 1, &err));
    assert_int_equal(err, RCGC_EINVAL);
    rcgc_trace_filter nopat = {true, NULL, 0, false};
    assert_null(rcgc_trace_snapshot_filter(s, &nopat, 1, &err));
    assert_int_equal(err, RCGC_EINVAL);
    assert_int_equal(rcgc_trace_snapshot_dump(NULL, "/tmp/x"), RCGC_EINVAL);
    assert_int_equal(rcgc_trace_snapshot_dump(s, NULL), RCGC_EINVAL);
    errno = 0;
    assert_int_equal(rcgc_trace_snapshot_dump(s, "/nonexistent-dir/x"), RCGC_EIO);
    assert_int_equal(errno, ENOENT);
    assert_null(rcgc_trace_snapshot_load(NULL, &err));
    assert_int_equal(err, RCGC_EINVAL);
    errno = 0;
    assert_null(rcgc_trace_snapshot_load("/nonexistent-dir/x", &err));
    assert_int_equal(err, RCGC_EIO);
    assert_int_equal(errno, ENOENT);
    assert_null(rcgc_trace_snapshot_load("/tmp", &err)); /* a directory */
    assert_int_equal(err, RCGC_EINVAL);
    assert_int_equal(rcgc_trace_snapshot_count(NULL), 0);
    assert_null(rcgc_trace_snapshot_get(s, 0));
    assert_null(rcgc_trace_snapshot_get(NULL, 0));
    rcgc_trace_snapshot_free(s);
    rcgc_trace_snapshot_free(NULL);
    rcgc_trace_stats_free(NULL, 0);
    rcgc_traceback_free(NULL);
    assert_null(rcgc_tracemalloc_get_object_traceback(NULL));
    tl_heap_free(h);
}

static void test_trace_start_stop(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    bag b = {.n = 0};
    void *before = new_at(&b, h, &Small, "before.c", 1);
    assert_int_equal(rcgc_tracemalloc_start(h, 5), 0);
    assert_true(rcgc_tracemalloc_is_tracing(h));
    assert_int_equal(rcgc_tracemalloc_get_traceback_limit(h), 5);
    assert_true(rcgc_tracemalloc_get_memory(h) > 0);
    /* already tracing: 0, nothing changes (CPython) */
    assert_int_equal(rcgc_tracemalloc_start(h, 3), 0);
    assert_int_equal(rcgc_tracemalloc_start_sampled(h, 2, 4096), 0);
    assert_int_equal(rcgc_tracemalloc_get_traceback_limit(h), 5);
    assert_int_equal(rcgc_tracemalloc_sample_bytes(h), 0);
    assert_null(rcgc_tracemalloc_get_object_traceback(before)); /* allocated before */
    void *a = new_at(&b, h, &Small, "a.c", 1);
    assert_int_equal(traced_current(h), SMALL);
    rcgc_tracemalloc_status st;
    assert_int_equal(rcgc_tracemalloc_get_status(h, &st), 0);
    assert_true(st.tracing);
    assert_int_equal(st.traces, 1);
    assert_int_equal(st.tracebacks, 1);
    assert_int_equal(st.lost, 0);
    assert_int_equal(st.recorded, 1);

    rcgc_tracemalloc_stop(h); /* clears the traces */
    assert_false(rcgc_tracemalloc_is_tracing(h));
    assert_int_equal(rcgc_tracemalloc_get_traceback_limit(h), 5);
    assert_int_equal(traced_current(h), 0);
    assert_null(rcgc_tracemalloc_get_object_traceback(a));
    assert_int_equal(rcgc_tracemalloc_start(h, 1), 0);
    assert_int_equal(rcgc_tracemalloc_get_traceback_limit(h), 1);
    rcgc_trace_snapshot *s = snap(h);
    assert_int_equal(rcgc_trace_snapshot_count(s), 0);
    assert_int_equal(rcgc_trace_snapshot_traceback_limit(s), 1);
    rcgc_trace_snapshot_free(s);
    /* a (stale flag) dies while the new trace runs: nothing to remove */
    void *c = new_at(&b, h, &Big, "c.c", 3);
    (void)c;
    rcgc_decref(a);
    b.o[1] = NULL;
    assert_int_equal(traced_current(h), BIG);
    tl_check(h);
    rcgc_tracemalloc_stop(h);
    bag_clear(&b);
    tl_check(h);
    tl_heap_free(h);
}

/* ---- traced memory ---- */

static void test_trace_traced_memory(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    bag b = {.n = 0};
    assert_int_equal(rcgc_tracemalloc_start(h, 1), 0);
    new_at(&b, h, &Small, "m.c", 1);
    void *big = new_at(&b, h, &Big, "m.c", 2);
    new_var_at(&b, h, 100, "m.c", 3);        /* 100 + 16 header + 16 prefix */
    new_var_at(&b, h, Small.size, "m.c", 4); /* the type's size: no prefix */
    size_t total = SMALL + BIG + 132 + SMALL;
    assert_int_equal(traced_current(h), total);
    assert_int_equal(traced_peak(h), total);
    rcgc_decref(big);
    b.o[1] = NULL;
    assert_int_equal(traced_current(h), total - BIG);
    assert_int_equal(traced_peak(h), total);
    rcgc_tracemalloc_reset_peak(h);
    assert_int_equal(traced_peak(h), total - BIG);
    new_at(&b, h, &Big, "m.c", 5);
    assert_int_equal(traced_peak(h), total);
    size_t held = rcgc_tracemalloc_get_memory(h);
    assert_true(held >= 4 * sizeof(void *));

    rcgc_tracemalloc_clear_traces(h);
    assert_true(rcgc_tracemalloc_is_tracing(h));
    assert_int_equal(traced_current(h), 0);
    assert_int_equal(traced_peak(h), 0);
    assert_true(rcgc_tracemalloc_get_memory(h) < held);
    rcgc_trace_snapshot *s = snap(h);
    assert_int_equal(rcgc_trace_snapshot_count(s), 0);
    rcgc_trace_snapshot_free(s);
    void *after = new_at(&b, h, &Small, "m.c", 6);
    assert_int_equal(traced_current(h), SMALL);
    bag_clear(&b); /* the cleared ones die with stale flags */
    (void)after;
    assert_int_equal(traced_current(h), 0);
    assert_int_equal(traced_peak(h), SMALL);
    tl_check(h);
    tl_heap_free(h);
}

/* ---- tracebacks ---- */

static void test_trace_object_traceback(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    assert_int_equal(rcgc_tracemalloc_start(h, 1), 0);
    unsigned line;
    void *o = NEW_AT(h, &Small, line);
    assert_non_null(o);
    rcgc_traceback *tb = rcgc_tracemalloc_get_object_traceback(o);
    assert_non_null(tb);
    assert_int_equal(tb->nframe, 1);
    assert_int_equal(tb->total_nframe, 1);
    assert_frame(&tb->frames[0], __FILE__, line);
    assert_null(tb->frames[0].function); /* one frame: the stack is not unwound */
    rcgc_traceback_free(tb);
    unsigned vline;
    void *v = (vline = __LINE__, rcgc_new_var(h, &Small, 200));
    tb = rcgc_tracemalloc_get_object_traceback(v);
    assert_non_null(tb);
    assert_frame(&tb->frames[0], __FILE__, vline);
    /* the copy outlives the heap */
    rcgc_decref(v);
    rcgc_decref(o);
    tl_heap_free(h);
    assert_string_equal(tb->frames[0].file, __FILE__);
    rcgc_traceback_free(tb);
}

static void test_trace_deep_frames(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    assert_int_equal(rcgc_tracemalloc_start(h, 16), 0);
    unsigned line = 0, call_line;
    void *o = (call_line = __LINE__, trace_test_alloc(h, &line));
    rcgc_traceback *tb = rcgc_tracemalloc_get_object_traceback(o);
    assert_non_null(tb);
    assert_true(tb->nframe >= 2);
    assert_true(tb->total_nframe >= tb->nframe);
    assert_frame(&tb->frames[0], __FILE__, line);
#if RCGC_HAVE_LIBDW
    /* frame 0 and frame 1 (this static function) are named by the debug information or
     * the symbol table; frame 1 is at the line of the call with line tables */
    bool lines = exe_has_line_tables();
    assert_named(tb->frames[0].function, "trace_test_alloc");
    assert_c_frame(&tb->frames[1], lines, "test_trace_deep_frames", call_line);
#else
    /* frame 0 names its function only when dladdr sees the symbol (no offset form:
     * offsets would split one line's statistics) */
    (void)call_line;
    Dl_info di;
    assert_true(dladdr((void *)(uintptr_t)trace_test_alloc, &di) != 0);
    if (di.dli_sname != NULL && di.dli_saddr == (void *)(uintptr_t)trace_test_alloc)
        assert_function_is(tb->frames[0].function, (void (*)(void))trace_test_alloc);
    else
        assert_null(tb->frames[0].function);
    /* frame 1 is this test function, in the test executable; no line information */
    assert_string_equal(tb->frames[1].file, module_of((void (*)(void))trace_test_alloc));
    assert_int_equal(tb->frames[1].line, 0);
    assert_non_null(tb->frames[1].function);
#endif
    for (size_t i = 0; i < tb->nframe; i++) { /* the library's own frames are skipped */
        const char *fn = tb->frames[i].function;
        assert_non_null(tb->frames[i].file);
        if (fn != NULL) {
            assert_null(strstr(fn, "rcgc__"));
            assert_null(strstr(fn, "object_new"));
        }
    }
    rcgc_traceback_free(tb);
    rcgc_decref(o);
    rcgc_tracemalloc_stop(h);

    /* the limit caps nframe, not total_nframe */
    assert_int_equal(rcgc_tracemalloc_start(h, 4), 0);
    o = trace_test_recurse(h, 10, &line);
    tb = rcgc_tracemalloc_get_object_traceback(o);
    assert_non_null(tb);
    assert_int_equal(tb->nframe, 4);
    assert_true(tb->total_nframe >= 12);
    assert_frame(&tb->frames[0], __FILE__, line);
    for (size_t i = 0; i < 4; i++) {
#if RCGC_HAVE_LIBDW
        assert_named(tb->frames[i].function, "trace_test_recurse");
        if (i > 0 && lines) /* the recursive call, two lines above the allocation */
            assert_frame(&tb->frames[i], __FILE__, line - 2);
#else
        Dl_info ri;
        bool named = dladdr((void *)(uintptr_t)trace_test_recurse, &ri) != 0 &&
                     ri.dli_sname != NULL &&
                     ri.dli_saddr == (void *)(uintptr_t)trace_test_recurse;
        if (i == 0 && !named)
            assert_null(tb->frames[0].function); /* frame 0: no offset form */
        else
            assert_function_is(tb->frames[i].function, (void (*)(void))trace_test_recurse);
#endif
    }
    rcgc_traceback_free(tb);

    /* identical stacks are interned: two allocations, one traceback */
    void *o2 = trace_test_recurse(h, 10, &line);
    rcgc_tracemalloc_status st;
    assert_int_equal(rcgc_tracemalloc_get_status(h, &st), 0);
    assert_int_equal(st.traces, 2);
    assert_int_equal(st.tracebacks, 1);
    rcgc_trace_snapshot *s = snap(h);
    size_t n;
    rcgc_trace_stat *sv = stats(s, RCGC_TRACE_KEY_TRACEBACK, false, &n);
    assert_int_equal(n, 1);
    assert_int_equal(sv[0].count, 2);
    assert_int_equal(sv[0].traceback->nframe, 4);
    rcgc_trace_stats_free(sv, n);
    /* cumulative: each of the four frames counts the trace */
    sv = stats(s, RCGC_TRACE_KEY_LINENO, true, &n);
    size_t counted = 0;
    for (size_t i = 0; i < n; i++)
        counted += sv[i].count;
    assert_int_equal(counted, 2 * 4);
    rcgc_trace_stats_free(sv, n);
    /* all_frames filters see the C frames (file = the executable, or with line tables
     * this file at the line of the recursive call) */
    char pat[512];
    snprintf(pat, sizeof pat, "*%s", strrchr(module_of((void (*)(void))trace_test_alloc), '/'));
    rcgc_trace_filter f = {true, pat, 0, false};
#if RCGC_HAVE_LIBDW
    if (lines)
        f = (rcgc_trace_filter){true, __FILE__, line - 2, false};
#endif
    assert_int_equal(filtered_count(s, &f, 1), 0);
    f.all_frames = true;
    assert_int_equal(filtered_count(s, &f, 1), 2);
    f.inclusive = false;
    assert_int_equal(filtered_count(s, &f, 1), 0);
    rcgc_trace_snapshot_free(s);
    rcgc_decref(o2);
    rcgc_decref(o);
    tl_check(h);
    tl_heap_free(h);
}

static void assert_tracebacks_equal(const rcgc_traceback *a, const rcgc_traceback *b)
{
    assert_int_equal(a->nframe, b->nframe);
    assert_int_equal(a->total_nframe, b->total_nframe);
    for (size_t i = 0; i < a->nframe; i++) {
        assert_string_equal(a->frames[i].file, b->frames[i].file);
        assert_int_equal(a->frames[i].line, b->frames[i].line);
        if (a->frames[i].function == NULL)
            assert_null(b->frames[i].function);
        else
            assert_string_equal(a->frames[i].function, b->frames[i].function);
    }
}

/* Every way into the tracer gives the caller's frames, never the library's own: the first
 * object of a site (object_new), the fast path of the next ones (exact tracing from it,
 * and from its out-of-line zeroing of a larger payload), rcgc_new_var, and a sample due on
 * the fast path (which falls back to object_new). The frames must match whether the
 * library's functions own frames or not: gc.trace_static runs this with librcgc.a linked
 * into the program, where an unoptimised build keeps a frame for each of them. */
static void test_trace_frames_every_path(void **state)
{
    (void)state;
    static const struct {
        const rcgc_type *type;
        size_t var_size; /* rcgc_new_var when not zero */
        size_t sample;   /* sampled tracing (one byte: every allocation) when not zero */
    } paths[] = {
        {&Small, 0, 0},   {&Small, 0, 0},   {&Small, 0, 0}, {&Big, 0, 0},   {&Big, 0, 0},
        {&Small, 100, 0}, {&Small, 100, 0}, {&Small, 0, 1}, {&Small, 0, 1}, {&Big, 0, 1},
    };
    enum { NPATHS = sizeof paths / sizeof paths[0] };
    rcgc_heap *h = tl_heap_new();
    rcgc_traceback *ref = NULL;
    void *objs[NPATHS];
    unsigned line = 0, call_line = 0;
    for (size_t i = 0; i < NPATHS; i++) {
        if (i == 0 || paths[i].sample != paths[i - 1].sample) {
            rcgc_tracemalloc_stop(h);
            assert_int_equal(paths[i].sample != 0
                                 ? rcgc_tracemalloc_start_sampled(h, 8, paths[i].sample)
                                 : rcgc_tracemalloc_start(h, 8),
                             0);
        }
        const rcgc_type *type = paths[i].type;
        size_t var = paths[i].var_size;
        objs[i] = (call_line = __LINE__, trace_test_paths(h, type, var, &line));
        rcgc_traceback *tb = rcgc_tracemalloc_get_object_traceback(objs[i]);
        assert_non_null(tb);
        assert_frame(&tb->frames[0], __FILE__, line);
        assert_true(tb->nframe >= 2);
        for (size_t k = 0; k < tb->nframe; k++) {
            const char *fn = tb->frames[k].function;
            if (fn != NULL) {
                assert_null(strstr(fn, "rcgc__"));
                assert_null(strstr(fn, "new_"));
            }
        }
#if RCGC_HAVE_LIBDW
        assert_named(tb->frames[0].function, "trace_test_paths");
        assert_c_frame(&tb->frames[1], exe_has_line_tables(), "test_trace_frames_every_path",
                       call_line);
#else
        (void)call_line;
#endif
        if (ref == NULL)
            ref = tb;
        else {
            assert_tracebacks_equal(tb, ref);
            rcgc_traceback_free(tb);
        }
    }
    rcgc_traceback_free(ref);
    for (size_t i = 0; i < NPATHS; i++)
        rcgc_decref(objs[i]);
    rcgc_tracemalloc_stop(h);
    tl_check(h);
    tl_heap_free(h);
}

#if RCGC_HAVE_LIBDW

static int unloads_of_first(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    *(unsigned long long *)data = info->dlpi_subs;
    return 1;
}

/* How many shared objects this process unloaded so far (glibc's counter). */
static unsigned long long unloads(void)
{
    unsigned long long n = 0;
    dl_iterate_phdr(unloads_of_first, &n);
    return n;
}
#endif

/* The C frames of a known chain of static functions name them, with this file and the
 * lines of the calls when the executable has line tables (libdw built in). */
static void test_trace_deep_frames_source(void **state)
{
    (void)state;
#if !RCGC_HAVE_LIBDW
    print_message("librcgc was built without elfutils' libdw (libdw-dev not found, or "
                  "-DRCGC_LIBDW=OFF): C frames carry no file:line, nothing to check\n");
    skip();
#else
    rcgc_heap *h = tl_heap_new();
    assert_int_equal(rcgc_tracemalloc_start(h, 8), 0);
    unsigned line = 0, calls[2] = {0, 0}, outer_call;
    void *o = (outer_call = __LINE__, chain_outer(h, &line, calls));
    size_t before = rcgc_tracemalloc_get_memory(h);
    rcgc_traceback *tb = rcgc_tracemalloc_get_object_traceback(o);
    assert_non_null(tb);
    assert_true(tb->nframe >= 3);
    bool lines = exe_has_line_tables();
    print_message("line tables in the test executable: %s\n", lines ? "yes" : "no");
    /* frame 0: the allocating statement, named by its function */
    assert_frame(&tb->frames[0], __FILE__, line);
    assert_named(tb->frames[0].function, "chain_inner");
    /* then the calls in chain_middle (debug information only: the symbol table knows
     * only chain_outer, which owns the frame), chain_outer and this function */
    size_t i = 1;
    if (lines) {
        assert_true(tb->nframe >= 4);
        assert_c_frame(&tb->frames[i++], lines, "chain_middle", calls[0]);
    }
    assert_c_frame(&tb->frames[i++], lines, "chain_outer", calls[1]);
    assert_c_frame(&tb->frames[i++], lines, "test_trace_deep_frames_source", outer_call);
    /* every address is named; the inlined level counts in total_nframe */
    for (size_t k = 0; k < tb->nframe; k++)
        assert_non_null(tb->frames[k].function);
    assert_true(tb->total_nframe >= tb->nframe);
    /* the names are cached (tracing's memory) and give the same frames again */
    assert_true(rcgc_tracemalloc_get_memory(h) > before);
    size_t cached = rcgc_tracemalloc_get_memory(h);
    rcgc_traceback *again = rcgc_tracemalloc_get_object_traceback(o);
    assert_non_null(again);
    assert_tracebacks_equal(tb, again);
    assert_int_equal(rcgc_tracemalloc_get_memory(h), cached);
    rcgc_traceback_free(again);
    /* a snapshot resolves the same frames; statistics by line see the deeper ones */
    rcgc_trace_snapshot *s = snap(h);
    assert_int_equal(rcgc_trace_snapshot_count(s), 1);
    assert_tracebacks_equal(tb, rcgc_trace_snapshot_get(s, 0)->traceback);
    if (lines) {
        rcgc_trace_filter f = {true, __FILE__, calls[0], true};
        assert_int_equal(filtered_count(s, &f, 1), 1);
        f.all_frames = false;
        assert_int_equal(filtered_count(s, &f, 1), 0);
    }
    rcgc_trace_snapshot_free(s);
    /* unloading a shared object empties the cache; the names come back the same */
    void *lib = dlopen("libutil.so.1", RTLD_NOW | RTLD_LOCAL);
    unsigned long long n = unloads();
    if (lib != NULL)
        dlclose(lib);
    print_message("a shared object was unloaded: %s\n", unloads() != n ? "yes" : "no");
    again = rcgc_tracemalloc_get_object_traceback(o);
    assert_non_null(again);
    assert_tracebacks_equal(tb, again);
    assert_int_equal(rcgc_tracemalloc_get_memory(h), cached);
    rcgc_traceback_free(again);
    rcgc_traceback_free(tb);
    /* stop frees the cache with the traces */
    rcgc_tracemalloc_stop(h);
    assert_true(rcgc_tracemalloc_get_memory(h) < before);
    rcgc_decref(o);
    tl_check(h);
    tl_heap_free(h);
#endif
}

/* ---- statistics ---- */

/* z.c:9 (256, 1); b.c:1, a.c:2, a.c:1 each (128, 2); c.c:5 (128, 1). */
static void crafted_sites(bag *b, rcgc_heap *h)
{
    new_at(b, h, &Big, "z.c", 9);
    for (int i = 0; i < 2; i++) {
        new_at(b, h, &Small, "a.c", 1);
        new_at(b, h, &Small, "b.c", 1);
        new_at(b, h, &Small, "a.c", 2);
    }
    new_var_at(b, h, 96, "c.c", 5);
}

static void test_trace_statistics_order(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    bag b = {.n = 0};
    assert_int_equal(rcgc_tracemalloc_start(h, 1), 0);
    crafted_sites(&b, h);
    rcgc_trace_snapshot *s = snap(h);
    assert_int_equal(rcgc_trace_snapshot_count(s), 8);
    size_t n;
    for (int k = 0; k < 3; k++) { /* lineno, cumulative lineno, traceback: the same */
        rcgc_trace_stat *st = k == 2 ? stats(s, RCGC_TRACE_KEY_TRACEBACK, false, &n)
                                     : stats(s, RCGC_TRACE_KEY_LINENO, k == 1, &n);
        assert_int_equal(n, 5);
        assert_stat(&st[0], "z.c", 9, 256, 1);
        assert_stat(&st[1], "b.c", 1, 128, 2);
        assert_stat(&st[2], "a.c", 2, 128, 2);
        assert_stat(&st[3], "a.c", 1, 128, 2);
        assert_stat(&st[4], "c.c", 5, 128, 1);
        rcgc_trace_stats_free(st, n);
    }
    for (int cum = 0; cum < 2; cum++) {
        rcgc_trace_stat *st = stats(s, RCGC_TRACE_KEY_FILENAME, cum, &n);
        assert_int_equal(n, 4);
        assert_stat(&st[0], "a.c", 0, 256, 4);
        assert_stat(&st[1], "z.c", 0, 256, 1);
        assert_stat(&st[2], "b.c", 0, 128, 2);
        assert_stat(&st[3], "c.c", 0, 128, 1);
        assert_null(st[0].traceback->frames[0].function);
        char text[128];
        assert_int_equal(rcgc_trace_stat_format(text, sizeof text, &st[0]),
                         strlen("a.c:0: size=256 B, count=4, average=64 B"));
        assert_string_equal(text, "a.c:0: size=256 B, count=4, average=64 B");
        rcgc_trace_stats_free(st, n);
    }
    /* the snapshot outlives the heap, and so do its statistics */
    rcgc_trace_stat *st = stats(s, RCGC_TRACE_KEY_LINENO, false, &n);
    bag_clear(&b);
    tl_heap_free(h);
    rcgc_trace_snapshot_free(s);
    assert_stat(&st[0], "z.c", 9, 256, 1);
    rcgc_trace_stats_free(st, n);
}

/* Traceback order is CPython's: frame tuples from the oldest; "<unknown>":0 for none. */
static void test_trace_traceback_order(void **state)
{
    (void)state;
    rcgc_trace_snapshot *s = load_crafted();
    assert_int_equal(rcgc_trace_snapshot_count(s), NCRAFTED);
    assert_int_equal(rcgc_trace_snapshot_traceback_limit(s), 3);
    size_t n;
    rcgc_trace_stat *st = stats(s, RCGC_TRACE_KEY_TRACEBACK, false, &n);
    assert_int_equal(n, 4);
    assert_frame(&st[0].traceback->frames[0], "z.c", 1);
    assert_frame(&st[1].traceback->frames[0], "a.c", 5);
    assert_frame(&st[2].traceback->frames[0], "m.c", 1);
    assert_frame(&st[3].traceback->frames[0], "<unknown>", 0);
    char text[128];
    rcgc_trace_stat_format(text, sizeof text, &st[2]); /* str(Traceback): the oldest */
    assert_string_equal(text, "main.c:10: size=100 B, count=1, average=100 B");
    rcgc_trace_stats_free(st, n);

    st = stats(s, RCGC_TRACE_KEY_LINENO, false, &n);
    assert_int_equal(n, 4);
    assert_stat(&st[0], "z.c", 1, 100, 1);
    assert_stat(&st[1], "m.c", 1, 100, 1);
    assert_string_equal(st[1].traceback->frames[0].function, "f");
    assert_stat(&st[2], "a.c", 5, 100, 1);
    assert_stat(&st[3], "<unknown>", 0, 100, 1);
    rcgc_trace_stats_free(st, n);

    st = stats(s, RCGC_TRACE_KEY_LINENO, true, &n);
    assert_int_equal(n, 6);
    assert_stat(&st[0], "z.c", 1, 100, 1);
    assert_stat(&st[1], "main.c", 20, 100, 1); /* "main.c" > "m.c": 'a' > '.' */
    assert_stat(&st[2], "main.c", 10, 100, 1);
    assert_stat(&st[3], "m.c", 1, 100, 1);
    assert_stat(&st[4], "a.c", 5, 100, 1);
    assert_stat(&st[5], "<unknown>", 0, 100, 1);
    rcgc_trace_stats_free(st, n);

    st = stats(s, RCGC_TRACE_KEY_FILENAME, true, &n);
    assert_int_equal(n, 5);
    assert_stat(&st[0], "main.c", 0, 200, 2);
    assert_stat(&st[1], "z.c", 0, 100, 1);
    assert_stat(&st[2], "m.c", 0, 100, 1);
    assert_stat(&st[3], "a.c", 0, 100, 1);
    assert_stat(&st[4], "<unknown>", 0, 100, 1);
    rcgc_trace_stats_free(st, n);

    rcgc_trace_filter f = {true, "main.c", 0, true};
    assert_int_equal(filtered_count(s, &f, 1), 2);
    f.all_frames = false;
    assert_int_equal(filtered_count(s, &f, 1), 0);
    f.inclusive = false;
    f.all_frames = true;
    assert_int_equal(filtered_count(s, &f, 1), 2);
    f.lineno = 20;
    assert_int_equal(filtered_count(s, &f, 1), 3);
    rcgc_trace_filter unk = {true, "<unknown>", 0, false};
    assert_int_equal(filtered_count(s, &unk, 1), 1);
    rcgc_trace_snapshot_free(s);
}

static void test_trace_compare_to(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    bag b = {.n = 0};
    assert_int_equal(rcgc_tracemalloc_start(h, 1), 0);
    new_at(&b, h, &Small, "a.c", 1);
    new_at(&b, h, &Small, "a.c", 1);
    void *bo = new_at(&b, h, &Big, "b.c", 1);
    void *co = new_at(&b, h, &Small, "c.c", 1);
    rcgc_trace_snapshot *old = snap(h);
    rcgc_decref(bo);
    rcgc_decref(co);
    b.o[2] = b.o[3] = NULL;
    new_at(&b, h, &Small, "a.c", 1);
    new_at(&b, h, &Small, "d.c", 1);
    new_at(&b, h, &Small, "e.c", 1);
    rcgc_trace_snapshot *cur = snap(h);
    for (int k = 0; k < 2; k++) {
        rcgc_trace_stat_diff *d = NULL;
        size_t n = 0;
        rcgc_trace_key key = k == 0 ? RCGC_TRACE_KEY_LINENO : RCGC_TRACE_KEY_TRACEBACK;
        assert_int_equal(rcgc_trace_snapshot_compare_to(cur, old, key, false, &d, &n), 0);
        assert_int_equal(n, 5);
        assert_diff(&d[0], "b.c", 0, -256, 0, -1); /* only in old */
        assert_diff(&d[1], "a.c", 192, 64, 3, 1);
        assert_diff(&d[2], "e.c", 64, 64, 1, 1); /* only in new; ties by traceback */
        assert_diff(&d[3], "d.c", 64, 64, 1, 1);
        assert_diff(&d[4], "c.c", 0, -64, 0, -1);
        char text[128];
        rcgc_trace_stat_diff_format(text, sizeof text, &d[0]);
        assert_string_equal(text, "b.c:1: size=0 B (-256 B), count=0 (-1)");
        rcgc_trace_stat_diff_format(text, sizeof text, &d[1]);
        assert_string_equal(text, "a.c:1: size=192 B (+64 B), count=3 (+1), average=64 B");
        rcgc_trace_stats_free(d, n);
    }
    /* against itself: every diff 0, sorted by size */
    rcgc_trace_stat_diff *d = NULL;
    size_t n = 0;
    assert_int_equal(
        rcgc_trace_snapshot_compare_to(cur, cur, RCGC_TRACE_KEY_FILENAME, true, &d, &n), 0);
    assert_int_equal(n, 3);
    assert_diff(&d[0], "a.c", 192, 0, 3, 0);
    assert_diff(&d[1], "e.c", 64, 0, 1, 0);
    assert_diff(&d[2], "d.c", 64, 0, 1, 0);
    rcgc_trace_stats_free(d, n);
    rcgc_trace_snapshot_free(old);
    rcgc_trace_snapshot_free(cur);
    bag_clear(&b);
    tl_heap_free(h);
}

static const rcgc_trace_stat_diff *diff_of(const rcgc_trace_stat_diff *d, size_t n,
                                           const char *file)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(d[i].traceback->frames[0].file, file) == 0)
            return &d[i];
    }
    fail_msg("no diff for %s", file);
    return NULL;
}

/* Sizes and counts near the top of size_t (a crafted file, or sampled estimates with a
 * mean as large as memory) saturate: sums stop at SIZE_MAX, differences at +-INT64_MAX,
 * with the sign of the change; none wraps around. */
static void test_trace_compare_huge(void **state)
{
    (void)state;
    const uint64_t half = (uint64_t)1 << 63, top = UINT64_MAX;
    const ctrace now[] = {
        {half, half, 1, 1, {{"a.c", 1, NULL}}}, /* a.c sums to 2^64: SIZE_MAX */
        {half, half, 1, 1, {{"a.c", 1, NULL}}},
        {1, 1, 1, 1, {{"c.c", 1, NULL}}},
        {half - 1, 3, 1, 1, {{"e.c", 1, NULL}}}, /* INT64_MAX - 1 more: exact */
    };
    const ctrace before[] = {
        {1, 1, 1, 1, {{"a.c", 1, NULL}}},
        {half + 5, half + 5, 1, 1, {{"b.c", 1, NULL}}}, /* only before */
        {top, top, 1, 1, {{"c.c", 1, NULL}}},
        {1, 1, 1, 1, {{"e.c", 1, NULL}}},
    };
    rcgc_trace_snapshot *cur = load_traces(now, sizeof now / sizeof now[0]);
    rcgc_trace_snapshot *old = load_traces(before, sizeof before / sizeof before[0]);
    size_t n = 0;
    rcgc_trace_stat *st = stats(cur, RCGC_TRACE_KEY_FILENAME, false, &n);
    assert_int_equal(n, 3);
    assert_stat(&st[0], "a.c", 0, SIZE_MAX, SIZE_MAX);
    rcgc_trace_stats_free(st, n);
    rcgc_trace_stat_diff *d = NULL;
    assert_int_equal(
        rcgc_trace_snapshot_compare_to(cur, old, RCGC_TRACE_KEY_FILENAME, false, &d, &n), 0);
    assert_int_equal(n, 4);
    assert_diff(diff_of(d, n, "a.c"), "a.c", SIZE_MAX, INT64_MAX, SIZE_MAX, INT64_MAX);
    assert_diff(diff_of(d, n, "b.c"), "b.c", 0, -INT64_MAX, 0, -INT64_MAX);
    assert_diff(diff_of(d, n, "c.c"), "c.c", 1, -INT64_MAX, 1, -INT64_MAX);
    assert_diff(diff_of(d, n, "e.c"), "e.c", half - 1, INT64_MAX - 1, 3, 2);
    for (size_t i = 1; i < n; i++) /* by |size_diff|, the largest first */
        assert_true(llabs(d[i - 1].size_diff) >= llabs(d[i].size_diff));
    char text[160];
    rcgc_trace_stat_diff_format(text, sizeof text, diff_of(d, n, "b.c"));
    assert_string_equal(text, "b.c:0: size=0 B (-8388608 TiB), count=0 (-9223372036854775807)");
    rcgc_trace_stats_free(d, n);
    rcgc_trace_snapshot_free(old);
    rcgc_trace_snapshot_free(cur);
}

/* ---- filters ---- */

/* Patterns mean what Python's fnmatch.fnmatch makes of them on POSIX, not glibc's fnmatch:
 * '^' first in a set is itself ('!' negates), no POSIX classes, a range with reversed
 * ends is dropped, '?' takes one code point (UTF-8, an invalid byte being one code point
 * of its own, as os.fsdecode reads it), a backslash is itself, a '[' without ']' is
 * itself. The table is fnmatch.fnmatch(name, pattern) for every pair, from CPython 3.11:
 * matches[i] is '1' when names[i] matches. */
static void test_trace_filter_patterns(void **state)
{
    (void)state;
    static const char *const names[] = {
        "^",     "a",   "b",   "e",    "d",        "-",        "!",   "]",    "+",       "0",
        "&",     "B",   "z",   "m",    "\xc3\xa9", "\xc3\xaa", "\\",  "[",    "a]",      ":]",
        "a\\b",  "a[b", "[!]", "[]",   "a/b/c",    "x.c",      "x.h", "x\ny", "lib/x.c", "abc",
        "aXbYc", "ab",  "xay", "\xff", "x",        "y",        "f",   "g",    "c"};
    static const struct {
        const char *pattern, *matches;
    } cases[] = {
        {"[^a]", "110000000000000000000000000000000000000"},
        {"[!a]", "101111111111111111000000000000000111111"},
        {"[[:alpha:]]", "000000000000000000110001000000000000000"},
        {"?", "111111111111111111000000000000000111111"},
        {"??", "000000000000000000110001000000010000000"},
        {"[z-a]", "000000000000000000000000000000000000000"},
        {"[!z-a]", "111111111111111111000000000000000111111"},
        {"[a-]", "010001000000000000000000000000000000000"},
        {"[a-c-e]", "011101000000000000000000000000000000001"},
        {"a\\b", "000000000000000000001000000000000000000"},
        {"[\\]", "000000000000000010000000000000000000000"},
        {"[", "000000000000000001000000000000000000000"},
        {"a[b", "000000000000000000000100000000000000000"},
        {"*c", "000000000000000000000000110011100000001"},
        {"*", "111111111111111111111111111111111111111"},
        {"[]]", "000000010000000000000000000000000000000"},
        {"[!]]", "111111101111111111000000000000000111111"},
        {"[]-a]", "110000010000000000000000000000000000000"},
        {"[a--]", "000000000000000000000000000000000000000"},
        {"[--a]", "110001010101000011000000000000000000000"},
        {"[%--]", "000001001010000000000000000000000000000"},
        {"[\xc3\xa9-\xc3\xab]", "000000000000001100000000000000000000000"},
        {"[!\xc3\xa9]", "111111111111110111000000000000000111111"},
        {"[&&a]", "010000000010000000000000000000000000000"},
        {"[a-c]", "011000000000000000000000000000000000001"},
        {"*.[ch]", "000000000000000000000000011010000000000"},
        {"[!!]", "111111011111111111000000000000000111111"},
        {"[!]", "000000000000000000000010000000000000000"},
        {"[]", "000000000000000000000001000000000000000"},
        {"[b-az-a]", "000000000000000000000000000000000000000"},
        {"[a-cz-a]", "011000000000000000000000000000000000001"},
        {"*/*.c", "000000000000000000000000000010000000000"},
        {"a*b*c", "000000000000000000000000100001100000000"},
        {"*a*", "010000000000000000101100100001111000000"},
        {"[!a-c]*", "100111111111111111010011011110001111110"},
        {"\xc3\xbf", "000000000000000000000000000000000000000"},
        {"\xff", "000000000000000000000000000000000100000"},
        {"[b-a!x]", "111111111111111111000000000000000101111"},
        {"[!-a]", "101110111111111111000000000000000111111"},
        {"", "000000000000000000000000000000000000000"},
        {"[a-c-e-g]", "011101000000000000000000000000000000111"},
        {"[c-a-e]", "000101000000000000000000000000000000000"},
        {"**a*?", "000000000000000000101100100001111000000"},
    };
    enum { NNAMES = sizeof names / sizeof names[0] };
    ctrace t[NNAMES];
    for (size_t i = 0; i < NNAMES; i++)
        t[i] = (ctrace){1, 1, 1, 1, {{names[i], 1, NULL}}};
    rcgc_trace_snapshot *s = load_traces(t, NNAMES);
    assert_int_equal(rcgc_trace_snapshot_count(s), NNAMES);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        assert_int_equal(strlen(cases[c].matches), NNAMES);
        for (int inclusive = 0; inclusive < 2; inclusive++) {
            rcgc_trace_filter f = {inclusive != 0, cases[c].pattern, 0, false};
            int err = 1;
            rcgc_trace_snapshot *out = rcgc_trace_snapshot_filter(s, &f, 1, &err);
            assert_non_null(out);
            assert_int_equal(err, 0);
            char got[NNAMES + 1];
            memset(got, inclusive ? '0' : '1', NNAMES);
            got[NNAMES] = 0;
            for (size_t k = 0; k < rcgc_trace_snapshot_count(out); k++) {
                const char *file = rcgc_trace_snapshot_get(out, k)->traceback->frames[0].file;
                for (size_t i = 0; i < NNAMES; i++)
                    if (strcmp(file, names[i]) == 0)
                        got[i] = inclusive ? '1' : '0';
            }
            if (strcmp(got, cases[c].matches) != 0)
                fail_msg("pattern \"%s\" (%s): matched %s, fnmatch matches %s",
                         cases[c].pattern, inclusive ? "include" : "exclude", got,
                         cases[c].matches);
            rcgc_trace_snapshot_free(out);
        }
    }
    rcgc_trace_snapshot_free(s);
}

static void test_trace_filters(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    bag b = {.n = 0};
    assert_int_equal(rcgc_tracemalloc_start(h, 1), 0);
    new_at(&b, h, &Small, "a.c", 1);
    new_at(&b, h, &Small, "a.c", 2);
    new_at(&b, h, &Small, "b.c", 1);
    new_at(&b, h, &Small, "dir/x.c", 3);
    new_at(&b, h, &Small, "a\\b.c", 4);
    rcgc_trace_snapshot *s = snap(h);
    assert_int_equal(filtered_count(s, NULL, 0), 5); /* empty list: a copy */
    rcgc_trace_filter f[3];
    f[0] = (rcgc_trace_filter){true, "a.c", 0, false};
    assert_int_equal(filtered_count(s, f, 1), 2);
    f[0].lineno = 2;
    assert_int_equal(filtered_count(s, f, 1), 1);
    f[0] = (rcgc_trace_filter){false, "a.c", 0, false};
    assert_int_equal(filtered_count(s, f, 1), 3);
    f[0].lineno = 1; /* drops a.c:1 only */
    assert_int_equal(filtered_count(s, f, 1), 4);
    /* inclusive filters at once, then any exclusive drops */
    f[0] = (rcgc_trace_filter){true, "*.c", 0, false};
    f[1] = (rcgc_trace_filter){false, "b*", 0, false};
    assert_int_equal(filtered_count(s, f, 2), 4);
    f[0] = (rcgc_trace_filter){true, "a.c", 1, false};
    f[1] = (rcgc_trace_filter){true, "b.c", 0, false};
    assert_int_equal(filtered_count(s, f, 2), 2);
    f[2] = (rcgc_trace_filter){false, "b.c", 0, false};
    assert_int_equal(filtered_count(s, f, 3), 1);
    /* fnmatch: '*' crosses '/', classes, '?', backslash is literal */
    f[0] = (rcgc_trace_filter){true, "*/x.c", 0, false};
    assert_int_equal(filtered_count(s, f, 1), 1);
    f[0].filename_pattern = "*";
    assert_int_equal(filtered_count(s, f, 1), 5);
    f[0].filename_pattern = "[ab].c";
    assert_int_equal(filtered_count(s, f, 1), 3);
    f[0].filename_pattern = "[!a].c";
    assert_int_equal(filtered_count(s, f, 1), 1);
    f[0].filename_pattern = "?.c";
    assert_int_equal(filtered_count(s, f, 1), 3);
    f[0].filename_pattern = "a\\b.c";
    assert_int_equal(filtered_count(s, f, 1), 1);
    f[0].filename_pattern = "x.c";
    assert_int_equal(filtered_count(s, f, 1), 0);
    /* a filtered snapshot keeps sizes and the limit */
    f[0] = (rcgc_trace_filter){true, "a.c", 0, false};
    int err;
    rcgc_trace_snapshot *fs = rcgc_trace_snapshot_filter(s, f, 1, &err);
    assert_non_null(fs);
    assert_int_equal(rcgc_trace_snapshot_traceback_limit(fs), 1);
    assert_int_equal(rcgc_trace_snapshot_get(fs, 0)->size, SMALL);
    rcgc_trace_snapshot_free(s);
    bag_clear(&b);
    tl_heap_free(h);
    size_t n;
    rcgc_trace_stat *st = stats(fs, RCGC_TRACE_KEY_FILENAME, false, &n);
    assert_int_equal(n, 1);
    assert_stat(&st[0], "a.c", 0, 2 * SMALL, 2);
    rcgc_trace_stats_free(st, n);
    rcgc_trace_snapshot_free(fs);
}

/* ---- files ---- */

static void assert_snapshots_equal(const rcgc_trace_snapshot *a, const rcgc_trace_snapshot *b)
{
    assert_int_equal(rcgc_trace_snapshot_count(a), rcgc_trace_snapshot_count(b));
    assert_int_equal(rcgc_trace_snapshot_traceback_limit(a),
                     rcgc_trace_snapshot_traceback_limit(b));
    assert_int_equal(rcgc_trace_snapshot_sample_bytes(a), rcgc_trace_snapshot_sample_bytes(b));
    for (size_t i = 0; i < rcgc_trace_snapshot_count(a); i++) {
        const rcgc_trace *x = rcgc_trace_snapshot_get(a, i), *y = rcgc_trace_snapshot_get(b, i);
        assert_int_equal(x->size, y->size);
        assert_int_equal(x->count, y->count);
        assert_int_equal(x->traceback->nframe, y->traceback->nframe);
        assert_int_equal(x->traceback->total_nframe, y->traceback->total_nframe);
        for (size_t j = 0; j < x->traceback->nframe; j++) {
            const rcgc_trace_frame *p = &x->traceback->frames[j], *q = &y->traceback->frames[j];
            assert_string_equal(p->file, q->file);
            assert_int_equal(p->line, q->line);
            if (p->function == NULL)
                assert_null(q->function);
            else
                assert_string_equal(p->function, q->function);
        }
    }
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *buf = malloc(1 << 20);
    assert_non_null(buf);
    *len = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

static void write_all(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

static void test_trace_dump_load(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    bag b = {.n = 0};
    assert_int_equal(rcgc_tracemalloc_start(h, 6), 0);
    unsigned line;
    bag_add(&b, trace_test_alloc(h, &line));
    bag_add(&b, trace_test_recurse(h, 3, &line));
    crafted_sites(&b, h);
    rcgc_trace_snapshot *s = snap(h);
    char path[64], path2[64];
    temp_path(path, sizeof path);
    temp_path(path2, sizeof path2);
    assert_int_equal(rcgc_trace_snapshot_dump(s, path), 0);
    int err = 1;
    rcgc_trace_snapshot *l = rcgc_trace_snapshot_load(path, &err);
    assert_non_null(l);
    assert_int_equal(err, 0);
    assert_snapshots_equal(s, l);
    /* the loaded one dumps to the same bytes */
    assert_int_equal(rcgc_trace_snapshot_dump(l, path2), 0);
    size_t n1, n2;
    char *d1 = read_all(path, &n1), *d2 = read_all(path2, &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(d1, d2, n1);
    free(d2);
    rcgc_trace_snapshot_free(l);

    /* every truncation fails with EINVAL */
    for (size_t cut = 0; cut < n1; cut++) {
        write_all(path2, d1, cut);
        assert_null(rcgc_trace_snapshot_load(path2, &err));
        assert_int_equal(err, RCGC_EINVAL);
    }
    /* trailing bytes too */
    char *longer = malloc(n1 + 1);
    memcpy(longer, d1, n1);
    longer[n1] = 0;
    write_all(path2, longer, n1 + 1);
    assert_null(rcgc_trace_snapshot_load(path2, &err));
    assert_int_equal(err, RCGC_EINVAL);
    /* any single corrupted byte: EINVAL or a snapshot, never a crash */
    for (size_t i = 0; i < n1; i++) {
        memcpy(longer, d1, n1);
        longer[i] = (char)(longer[i] ^ 0xA5);
        write_all(path2, longer, n1);
        l = rcgc_trace_snapshot_load(path2, &err);
        if (l == NULL)
            assert_int_equal(err, RCGC_EINVAL);
        rcgc_trace_snapshot_free(l);
    }
    free(longer);
    free(d1);
    unlink(path);
    unlink(path2);
    rcgc_trace_snapshot_free(s);
    bag_clear(&b);
    tl_heap_free(h);
}

static void assert_load_fails(const char *path, int expected)
{
    fault_alloc fa;
    fault_alloc_init(&fa);
    int err = 0;
    assert_null(rcgc_trace_snapshot_load_with(path, fault_alloc_hooks(&fa), &err));
    assert_int_equal(err, expected);
    assert_true(fa.peak_bytes < 1 << 16); /* no allocation sized by a hostile count */
    assert_int_equal(fa.live_blocks, 0);
    fault_alloc_fini(&fa);
}

static void test_trace_load_hostile(void **state)
{
    (void)state;
    char path[64];
    temp_path(path, sizeof path);
    write_crafted(path, 3, 0, (uint64_t)1 << 60, crafted, NCRAFTED); /* huge count */
    assert_load_fails(path, RCGC_EINVAL);
    write_crafted(path, 3, 0, NCRAFTED + 1, crafted, NCRAFTED); /* one short */
    assert_load_fails(path, RCGC_EINVAL);
    write_crafted(path, 0, 0, NCRAFTED, crafted, NCRAFTED); /* limit 0 */
    assert_load_fails(path, RCGC_EINVAL);
    write_crafted(path, 65536, 0, NCRAFTED, crafted, NCRAFTED);
    assert_load_fails(path, RCGC_EINVAL);
    ctrace t = {1, 1, 65535, 1, {{"a", 1, NULL}}}; /* nframe beyond the file */
    write_crafted(path, 3, 0, 1, &t, 1);
    assert_load_fails(path, RCGC_EINVAL);
    t = (ctrace){1, 1, 1, 1, {{NULL, 1, NULL}}}; /* NULL file */
    write_crafted(path, 3, 0, 1, &t, 1);
    assert_load_fails(path, RCGC_EINVAL);
    /* a string length beyond the file, and one holding a NUL */
    static const char bad_len[] = "RCGCTRC1\3\0\0\0\0\0\0\0\0\0\0\0\1\0\0\0\0\0\0\0"
                                  "\1\0\0\0\0\0\0\0\1\0\0\0\0\0\0\0\1\0\1\0"
                                  "\377\377\377\177abc\0\0\0\0\377\377\377\377";
    write_all(path, bad_len, sizeof bad_len - 1);
    assert_load_fails(path, RCGC_EINVAL);
    static const char nul_str[] = "RCGCTRC1\3\0\0\0\0\0\0\0\0\0\0\0\1\0\0\0\0\0\0\0"
                                  "\1\0\0\0\0\0\0\0\1\0\0\0\0\0\0\0\1\0\1\0"
                                  "\3\0\0\0a\0c\0\0\0\0\377\377\377\377";
    write_all(path, nul_str, sizeof nul_str - 1);
    assert_load_fails(path, RCGC_EINVAL);
    /* the same with a clean string loads */
    static const char good[] = "RCGCTRC1\3\0\0\0\0\0\0\0\0\0\0\0\1\0\0\0\0\0\0\0"
                               "\1\0\0\0\0\0\0\0\1\0\0\0\0\0\0\0\1\0\1\0"
                               "\3\0\0\0abc\7\0\0\0\377\377\377\377";
    write_all(path, good, sizeof good - 1);
    int err;
    rcgc_trace_snapshot *s = rcgc_trace_snapshot_load(path, &err);
    assert_non_null(s);
    assert_frame(&rcgc_trace_snapshot_get(s, 0)->traceback->frames[0], "abc", 7);
    rcgc_trace_snapshot_free(s);
    /* garbage */
    char junk[4096];
    uint64_t x = 0x12345678;
    for (int round = 0; round < 64; round++) {
        for (size_t i = 0; i < sizeof junk; i++) {
            x = x * 6364136223846793005u + 1442695040888963407u;
            junk[i] = (char)(x >> 56);
        }
        if (round % 2 == 0)
            memcpy(junk, "RCGCTRC1", 8);
        write_all(path, junk, (size_t)(round * 61) % sizeof junk);
        assert_load_fails(path, RCGC_EINVAL);
    }
    unlink(path);
}

/* ---- sampling ---- */

/* libm-free helpers (the tests do not link libm): 1 - exp(-x) for 0 < x < 1, sqrt, |x|. */
static double one_minus_exp_neg(double x)
{
    double term = 1, sum = 0;
    for (int k = 1; k < 30; k++) {
        term *= -x / k;
        sum -= term;
    }
    return sum;
}

static double dsqrt(double x)
{
    double r = x > 1 ? x : 1;
    for (int i = 0; i < 100; i++)
        r = 0.5 * (r + x / r);
    return r;
}

static double dabs(double x)
{
    return x < 0 ? -x : x;
}

/* Allocates n objects of `block` bytes at 4 KiB sampling and checks the estimates of
 * bytes and objects within 5 standard deviations (and, the seed being fixed, within
 * tolerance, which the seed was checked against). */
static void check_sampled(size_t n, const rcgc_type *type, size_t block, uint64_t seed,
                          double tolerance)
{
    rcgc_heap *h = tl_heap_new();
    const size_t mean = 4096;
    assert_int_equal(rcgc_tracemalloc_start_sampled(h, 1, mean), 0);
    assert_int_equal(rcgc_tracemalloc_seed(h, seed), 0);
    assert_int_equal(rcgc_tracemalloc_sample_bytes(h), mean);
    void **objs = malloc(n * sizeof *objs);
    assert_non_null(objs);
    for (size_t i = 0; i < n; i++) {
        objs[i] = rcgc_new(h, type);
        assert_non_null(objs[i]);
    }
    double p = one_minus_exp_neg((double)block / (double)mean);
    double sd = dsqrt((1 - p) / ((double)n * p)); /* relative, of a sum of n Bernoulli/p */
    double want = (double)(n * block);
    double got = (double)traced_current(h);
    double err_bytes = dabs(got - want) / want;
    rcgc_trace_snapshot *s = snap(h);
    assert_int_equal(rcgc_trace_snapshot_sample_bytes(s), mean);
    size_t ns;
    rcgc_trace_stat *st = stats(s, RCGC_TRACE_KEY_LINENO, false, &ns);
    assert_int_equal(ns, 1);
    assert_int_equal(st[0].size, (size_t)got);
    double err_count = dabs((double)st[0].count - (double)n) / (double)n;
    print_message("sampled %zu x %zu B: bytes %.0f (%+.2f%%), objects %zu (%+.2f%%), "
                  "5 sd = %.2f%%, %zu traces\n",
                  n, block, got, 100 * (got - want) / want, st[0].count,
                  100 * ((double)st[0].count - (double)n) / (double)n, 500 * sd,
                  rcgc_trace_snapshot_count(s));
    assert_true(err_bytes <= 5 * sd);
    assert_true(err_count <= 5 * sd);
    assert_true(err_bytes <= tolerance);
    assert_true(traced_peak(h) >= (size_t)got);
    rcgc_trace_stats_free(st, ns);
    rcgc_trace_snapshot_free(s);
    for (size_t i = 0; i < n; i++)
        rcgc_decref(objs[i]);
    free(objs);
    assert_int_equal(traced_current(h), 0); /* each trace gives back what it added */
    tl_check(h);
    tl_heap_free(h);
}

static void test_trace_sampled_estimates(void **state)
{
    (void)state;
    check_sampled(200000, &Small, SMALL, 42, 0.05);
    check_sampled(50000, &Big, BIG, 7, 0.05);
    /* sample_bytes larger than all memory: at most the first allocation is sampled */
    rcgc_heap *h = tl_heap_new();
    assert_int_equal(rcgc_tracemalloc_start_sampled(h, 1, SIZE_MAX), 0);
    bag b = {.n = 0};
    for (int i = 0; i < 100; i++)
        new_at(&b, h, &Small, "s.c", 1);
    rcgc_tracemalloc_status st;
    assert_int_equal(rcgc_tracemalloc_get_status(h, &st), 0);
    assert_true(st.traces <= 1);
    bag_clear(&b);
    tl_heap_free(h);
}

/* Each allocation counts once toward the next sample, whichever path makes it. Here
 * every free empties the pool, so every allocation finds no pool with room: a fast path
 * that charged the bytes before falling back to the slow one (which charges them again)
 * sampled as if blocks were twice their size, 1 - exp(-2s/M) instead of 1 - exp(-s/M). */
static void test_trace_sampled_pool_refill(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    const size_t mean = 4096, n = 200000;
    assert_int_equal(rcgc_tracemalloc_start_sampled(h, 1, mean), 0);
    assert_int_equal(rcgc_tracemalloc_seed(h, 99), 0);
    for (size_t i = 0; i < n; i++) {
        void *o = rcgc_new(h, &Big);
        assert_non_null(o);
        rcgc_decref(o);
    }
    rcgc_tracemalloc_status st;
    assert_int_equal(rcgc_tracemalloc_get_status(h, &st), 0);
    double p = one_minus_exp_neg((double)BIG / (double)mean);
    double want = (double)n * p, sd = dsqrt((double)n * p * (1 - p));
    print_message("alloc+free %zu x %u B: %llu samples, expected %.0f +- %.0f (sd)\n", n, BIG,
                  (unsigned long long)st.recorded, want, sd);
    assert_true(dabs((double)st.recorded - want) <= 5 * sd);
    assert_int_equal(st.traces, 0);
    tl_heap_free(h);
}

/* ---- the environment ---- */

static rcgc_heap *env_heap(const char *value, char **err_text)
{
    setenv("RCGC_TRACEMALLOC", value, 1);
    tl_capture cap;
    tl_capture_start(&cap);
    rcgc_heap_options o = {.name = "env"};
    rcgc_heap *h = rcgc_heap_new_with(&o);
    *err_text = tl_capture_stop(&cap);
    unsetenv("RCGC_TRACEMALLOC");
    assert_non_null(h);
    return h;
}

static void test_trace_environment(void **state)
{
    (void)state;
    char *text;
    rcgc_heap *h = env_heap("3", &text);
    assert_true(rcgc_tracemalloc_is_tracing(h));
    assert_int_equal(rcgc_tracemalloc_get_traceback_limit(h), 3);
    assert_string_equal(text, "");
    free(text);
    rcgc_heap_free(h);
    h = env_heap("0", &text);
    assert_false(rcgc_tracemalloc_is_tracing(h));
    assert_string_equal(text, "");
    free(text);
    rcgc_heap_free(h);
    const char *bad[] = {"abc", "-1", "65536", "2x", " 1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        h = env_heap(bad[i], &text);
        assert_false(rcgc_tracemalloc_is_tracing(h));
        assert_non_null(strstr(text, "RCGC_TRACEMALLOC"));
        free(text);
        rcgc_heap_free(h);
    }
    setenv("RCGC_TRACEMALLOC", "2", 1);
    rcgc_heap_options o = {.name = "env", .ignore_environment = true};
    h = rcgc_heap_new_with(&o);
    unsetenv("RCGC_TRACEMALLOC");
    assert_false(rcgc_tracemalloc_is_tracing(h));
    rcgc_heap_free(h);
}

/* A heap created with RCGC_TRACEMALLOC and RCGC_TRACEMALLOC_SAMPLE set to these values
 * (NULL: unset); *err_text is what it wrote to stderr. */
static rcgc_heap *env_heap2(const char *frames, const char *sample, char **err_text)
{
    if (frames != NULL)
        setenv("RCGC_TRACEMALLOC", frames, 1);
    if (sample != NULL)
        setenv("RCGC_TRACEMALLOC_SAMPLE", sample, 1);
    tl_capture cap;
    tl_capture_start(&cap);
    rcgc_heap_options o = {.name = "env"};
    rcgc_heap *h = rcgc_heap_new_with(&o);
    *err_text = tl_capture_stop(&cap);
    unsetenv("RCGC_TRACEMALLOC");
    unsetenv("RCGC_TRACEMALLOC_SAMPLE");
    assert_non_null(h);
    return h;
}

static void assert_env_status(rcgc_heap *h, bool tracing, int limit, size_t sample_bytes)
{
    rcgc_tracemalloc_status st;
    assert_int_equal(rcgc_tracemalloc_get_status(h, &st), 0);
    assert_int_equal(st.tracing, tracing);
    assert_int_equal(st.sample_bytes, sample_bytes);
    if (tracing)
        assert_int_equal(st.traceback_limit, limit);
}

static size_t count_lines(const char *text)
{
    size_t n = 0;
    for (; *text != '\0'; text++)
        n += *text == '\n';
    return n;
}

static void test_trace_environment_sampled(void **state)
{
    (void)state;
    static const struct {
        const char *frames, *sample;
        bool tracing;
        int limit;
        size_t sample_bytes;
        const char *warned; /* the variable a warning names, NULL: no warning */
    } cases[] = {
        {NULL, "4096", true, 1, 4096, NULL}, /* sampled, one frame by default */
        {"3", "524288", true, 3, 524288, NULL},
        {"0", "4096", false, 0, 0, NULL}, /* RCGC_TRACEMALLOC=0: off */
        {NULL, "0", false, 0, 0, NULL},   /* 0: no sampling */
        {"2", "0", true, 2, 0, NULL},     /* exact, as RCGC_TRACEMALLOC alone */
        {"2", "", true, 2, 0, NULL},
        /* malformed sample sizes are ignored, with one warning line */
        {NULL, "abc", false, 0, 0, "RCGC_TRACEMALLOC_SAMPLE"},
        {NULL, "-1", false, 0, 0, "RCGC_TRACEMALLOC_SAMPLE"},
        {NULL, "4k", false, 0, 0, "RCGC_TRACEMALLOC_SAMPLE"},
        {NULL, " 64", false, 0, 0, "RCGC_TRACEMALLOC_SAMPLE"},
        {NULL, "18446744073709551616", false, 0, 0, "RCGC_TRACEMALLOC_SAMPLE"},
        {"2", "1e6", true, 2, 0, "RCGC_TRACEMALLOC_SAMPLE"},
        /* a malformed frame count is ignored: sampled with one frame */
        {"x", "4096", true, 1, 4096, "RCGC_TRACEMALLOC"},
        {"65536", "4096", true, 1, 4096, "RCGC_TRACEMALLOC"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *text;
        rcgc_heap *h = env_heap2(cases[i].frames, cases[i].sample, &text);
        print_message("RCGC_TRACEMALLOC=%s RCGC_TRACEMALLOC_SAMPLE=%s\n",
                      cases[i].frames ? cases[i].frames : "(unset)", cases[i].sample);
        assert_env_status(h, cases[i].tracing, cases[i].limit, cases[i].sample_bytes);
        if (cases[i].warned == NULL) {
            assert_string_equal(text, "");
        } else {
            assert_int_equal(count_lines(text), 1);
            char want[64];
            snprintf(want, sizeof want, "malformed %s '", cases[i].warned);
            assert_non_null(strstr(text, want));
        }
        free(text);
        rcgc_heap_free(h);
    }
    /* the largest size_t is a sample size */
    char max[32], *text;
    snprintf(max, sizeof max, "%zu", (size_t)SIZE_MAX);
    rcgc_heap *h = env_heap2("4", max, &text);
    assert_string_equal(text, "");
    free(text);
    assert_env_status(h, true, 4, SIZE_MAX);
    rcgc_heap_free(h);
    /* sampled from the environment traces, and seeds as a sampled start does */
    h = env_heap2(NULL, "64", &text);
    free(text);
    assert_int_equal(rcgc_tracemalloc_seed(h, 42), 0);
    bag b = {.n = 0};
    for (int i = 0; i < 16; i++)
        new_at(&b, h, &Small, "env.c", 1);
    rcgc_tracemalloc_status st;
    assert_int_equal(rcgc_tracemalloc_get_status(h, &st), 0);
    assert_true(st.recorded > 0);
    bag_clear(&b);
    rcgc_heap_free(h);
    /* ignore_environment ignores both */
    setenv("RCGC_TRACEMALLOC_SAMPLE", "4096", 1);
    rcgc_heap_options o = {.name = "env", .ignore_environment = true};
    h = rcgc_heap_new_with(&o);
    unsetenv("RCGC_TRACEMALLOC_SAMPLE");
    assert_false(rcgc_tracemalloc_is_tracing(h));
    rcgc_heap_free(h);
}

/* ---- the chaos loop over tracing's own memory ---- */

typedef struct chaos {
    fault_alloc fa;
    rcgc_heap *h;
    bag b;
    rcgc_trace_snapshot *s, *s2;
    char path[64];
} chaos;

typedef void (*chaos_fn)(chaos *c, int phase); /* phase 0: setup, 1: armed, 2: check */

static void chaos_heap(chaos *c)
{
    memset(c, 0, sizeof *c);
    fault_alloc_init(&c->fa);
    rcgc_heap_options o = {
        .name = "chaos", .allocator = fault_alloc_hooks(&c->fa), .ignore_environment = true};
    c->h = tl_heap_new_with(&o);
    rcgc_disable(c->h);
}

static void chaos_end(chaos *c)
{
    tl_check(c->h);
    bag_clear(&c->b);
    tl_check(c->h);
    rcgc_trace_snapshot_free(c->s);
    rcgc_trace_snapshot_free(c->s2);
    tl_heap_free(c->h);
    assert_int_equal(c->fa.live_blocks, 0);
    assert_true(fault_alloc_clean(&c->fa));
    fault_alloc_fini(&c->fa);
}

/* For n = 0, 1, ...: the nth request fails (then every request from the nth), until a
 * run completes without reaching the fault. */
static void chaos_run(chaos_fn fn)
{
    for (int mode = 0; mode < 2; mode++) {
        for (long n = 0;; n++) {
            chaos c;
            chaos_heap(&c);
            fn(&c, 0);
            if (mode == 0)
                fault_alloc_fail_nth(&c.fa, n);
            else
                fault_alloc_fail_from(&c.fa, n);
            fn(&c, 1);
            bool injected = fault_alloc_disarm(&c.fa);
            fn(&c, 2);
            chaos_end(&c);
            if (!injected)
                break;
            assert_true(n < 100000);
        }
    }
}

static int g_chaos_rc;
static int g_chaos_limit;

static void chaos_start(chaos *c, int phase)
{
    if (phase == 1) {
        g_chaos_rc = g_chaos_limit > 0 ? rcgc_tracemalloc_start(c->h, g_chaos_limit)
                                       : rcgc_tracemalloc_start_sampled(c->h, 2, 1000);
    } else if (phase == 2) {
        if (g_chaos_rc != 0) {
            assert_int_equal(g_chaos_rc, RCGC_ENOMEM);
            assert_false(rcgc_tracemalloc_is_tracing(c->h));
            assert_int_equal(rcgc_tracemalloc_get_memory(c->h), 0);
        } else {
            assert_true(rcgc_tracemalloc_is_tracing(c->h));
            new_at(&c->b, c->h, &Small, "x.c", 1);
        }
    }
}

static const char *const chaos_files[] = {"f0.c", "f1.c", "f2.c"};

static void chaos_allocs(chaos *c, int phase)
{
    if (phase == 0) {
        assert_int_equal(rcgc_tracemalloc_start(c->h, g_chaos_limit), 0);
    } else if (phase == 1) {
        unsigned line;
        for (int i = 0; i < 300; i++) {
            void *o = i % 7 == 0 ? trace_test_alloc(c->h, &line)
                                 : rcgc__new(c->h, &Small, chaos_files[i % 3], i);
            if (o != NULL)
                c->b.o[c->b.n++] = o;
        }
    } else {
        rcgc_tracemalloc_status st;
        assert_int_equal(rcgc_tracemalloc_get_status(c->h, &st), 0);
        assert_int_equal(st.traces + st.lost, c->b.n);
        assert_int_equal(st.current, st.traces * SMALL);
        size_t with_tb = 0;
        for (size_t i = 0; i < c->b.n; i++) {
            rcgc_traceback *tb = rcgc_tracemalloc_get_object_traceback(c->b.o[i]);
            with_tb += tb != NULL;
            rcgc_traceback_free(tb);
        }
        assert_int_equal(with_tb, st.traces);
        c->s = snap(c->h);
        assert_int_equal(rcgc_trace_snapshot_count(c->s), st.traces);
        bag_clear(&c->b);
        assert_int_equal(traced_current(c->h), 0);
        assert_int_equal(rcgc_tracemalloc_get_status(c->h, &st), 0);
        assert_int_equal(st.traces, 0);
    }
}

static void chaos_populate(chaos *c)
{
    assert_int_equal(rcgc_tracemalloc_start(c->h, 4), 0);
    unsigned line;
    for (int i = 0; i < 40; i++)
        bag_add(&c->b, rcgc__new(c->h, i % 2 ? &Small : &Big, chaos_files[i % 3], i % 5));
    bag_add(&c->b, trace_test_alloc(c->h, &line));
    bag_add(&c->b, trace_test_recurse(c->h, 2, &line));
}

static void chaos_snapshot(chaos *c, int phase)
{
    if (phase == 0) {
        chaos_populate(c);
    } else if (phase == 1) {
        int err = 1;
        c->s = rcgc_tracemalloc_take_snapshot(c->h, &err);
        g_chaos_rc = err;
    } else {
        if (c->s == NULL) {
            assert_int_equal(g_chaos_rc, RCGC_ENOMEM);
            c->s = snap(c->h); /* memory is back: it works */
        }
        assert_int_equal(rcgc_trace_snapshot_count(c->s), c->b.n);
        rcgc_traceback *tb = rcgc_tracemalloc_get_object_traceback(c->b.o[0]);
        assert_non_null(tb);
        rcgc_traceback_free(tb);
    }
}

static void chaos_object_traceback(chaos *c, int phase)
{
    static rcgc_traceback *tb;
    if (phase == 0) {
        chaos_populate(c);
    } else if (phase == 1) {
        tb = rcgc_tracemalloc_get_object_traceback(c->b.o[c->b.n - 1]);
    } else {
        if (tb != NULL)
            assert_int_equal(tb->nframe, 4);
        rcgc_traceback_free(tb);
        tb = NULL;
    }
}

static size_t analyse(chaos *c, int which, bool *failed)
{
    rcgc_trace_key keys[] = {RCGC_TRACE_KEY_FILENAME, RCGC_TRACE_KEY_LINENO,
                             RCGC_TRACE_KEY_TRACEBACK};
    size_t n = 0;
    int rc;
    *failed = false;
    if (which < 5) {
        rcgc_trace_stat *st = NULL;
        rc = rcgc_trace_snapshot_statistics(c->s, keys[which % 3], which >= 3, &st, &n);
        rcgc_trace_stats_free(st, n);
    } else if (which < 7) {
        rcgc_trace_stat_diff *d = NULL;
        rc = rcgc_trace_snapshot_compare_to(c->s, c->s2, keys[which - 5], which == 5, &d, &n);
        rcgc_trace_stats_free(d, n);
    } else {
        rcgc_trace_filter f[2] = {{true, "f*.c", 0, false}, {false, "f1.c", 3, true}};
        rcgc_trace_snapshot *fs = rcgc_trace_snapshot_filter(c->s, f, 2, &rc);
        n = rcgc_trace_snapshot_count(fs);
        rcgc_trace_snapshot_free(fs);
    }
    if (rc != 0) {
        assert_int_equal(rc, RCGC_ENOMEM);
        assert_int_equal(n, 0);
        *failed = true;
    }
    return n;
}

static int g_which;

/* The analysis calls under faults give what the same call gives without (the tracebacks
 * depend on the stack the chaos loop runs on, so the reference is taken there). */
static void chaos_analysis(chaos *c, int phase)
{
    static size_t n;
    static bool failed;
    if (phase == 0) {
        chaos_populate(c);
        c->s2 = snap(c->h);
        rcgc_decref(c->b.o[0]);
        c->b.o[0] = NULL;
        new_at(&c->b, c->h, &Small, "new.c", 1);
        c->s = snap(c->h);
    } else if (phase == 1) {
        n = analyse(c, g_which, &failed);
    } else {
        bool again_failed;
        size_t again = analyse(c, g_which, &again_failed);
        assert_false(again_failed);
        assert_true(again > 0);
        if (!failed)
            assert_int_equal(n, again);
    }
}

static void chaos_load(chaos *c, int phase)
{
    if (phase == 0) {
        chaos_populate(c);
        c->s2 = snap(c->h);
        temp_path(c->path, sizeof c->path);
        assert_int_equal(rcgc_trace_snapshot_dump(c->s2, c->path), 0);
    } else if (phase == 1) {
        c->s = rcgc_trace_snapshot_load_with(c->path, fault_alloc_hooks(&c->fa), &g_chaos_rc);
    } else {
        if (c->s == NULL)
            assert_int_equal(g_chaos_rc, RCGC_ENOMEM);
        else
            assert_snapshots_equal(c->s, c->s2);
        unlink(c->path);
    }
}

static void test_trace_fault_start(void **state)
{
    (void)state;
    int limits[] = {1, 8, 0}; /* 0: sampled */
    for (size_t i = 0; i < 3; i++) {
        g_chaos_limit = limits[i];
        chaos_run(chaos_start);
    }
}

static void test_trace_fault_allocations(void **state)
{
    (void)state;
    g_chaos_limit = 1;
    chaos_run(chaos_allocs);
    /* three frames stay above main: with libdw, naming a frame of libc on a machine with
     * its debug file (libc6-dbg) costs some 50 ms in each of the loop's heaps */
    g_chaos_limit = 3;
    chaos_run(chaos_allocs);
}

static void test_trace_fault_snapshot(void **state)
{
    (void)state;
    chaos_run(chaos_snapshot);
    chaos_run(chaos_object_traceback);
}

static void test_trace_fault_analysis(void **state)
{
    (void)state;
    for (g_which = 0; g_which < 8; g_which++)
        chaos_run(chaos_analysis);
}

static void test_trace_fault_load(void **state)
{
    (void)state;
    chaos_run(chaos_load);
}

/* ---- text ---- */

static void assert_size_text(int64_t size, bool sign, const char *want)
{
    char buf[64];
    assert_int_equal(rcgc_trace_format_size(buf, sizeof buf, size, sign), strlen(want));
    assert_string_equal(buf, want);
}

static void test_trace_format_size(void **state)
{
    (void)state;
    /* expected texts from CPython 3.11's tracemalloc._format_size */
    assert_size_text(0, false, "0 B");
    assert_size_text(951, false, "951 B");
    assert_size_text(10239, false, "10239 B");
    assert_size_text(10240, false, "10.0 KiB");
    assert_size_text(10445, false, "10.2 KiB");
    assert_size_text(102399, false, "100.0 KiB");
    assert_size_text(102400, false, "100 KiB");
    assert_size_text(10 * 1024 * 1024 - 1, false, "10240 KiB");
    assert_size_text(1572864, false, "1536 KiB");
    assert_size_text((int64_t)5 << 30, false, "5120 MiB");
    assert_size_text((int64_t)1 << 60, false, "1048576 TiB");
    assert_size_text(0, true, "+0 B");
    assert_size_text(-1, true, "-1 B");
    assert_size_text(64, true, "+64 B");
    assert_size_text(-256, true, "-256 B");
    assert_size_text(-10240, true, "-10.0 KiB");
    char small[4];
    assert_int_equal(rcgc_trace_format_size(small, sizeof small, 10445, false), 8);
    assert_string_equal(small, "10.");
    assert_int_equal(rcgc_trace_format_size(NULL, 0, 951, false), 5);
    /* the sample of cpython_gc.md 7.2 */
    rcgc_trace_snapshot *s = load_crafted();
    size_t n;
    rcgc_trace_stat *st = stats(s, RCGC_TRACE_KEY_LINENO, false, &n);
    rcgc_trace_stat one = {st[0].traceback, 10445, 11};
    char text[128];
    rcgc_trace_stat_format(text, sizeof text, &one);
    assert_string_equal(text, "z.c:1: size=10.2 KiB, count=11, average=950 B");
    rcgc_trace_stats_free(st, n);
    rcgc_trace_snapshot_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trace_errors),
        cmocka_unit_test(test_trace_start_stop),
        cmocka_unit_test(test_trace_traced_memory),
        cmocka_unit_test(test_trace_object_traceback),
        cmocka_unit_test(test_trace_deep_frames),
        cmocka_unit_test(test_trace_deep_frames_source),
        cmocka_unit_test(test_trace_frames_every_path),
        cmocka_unit_test(test_trace_statistics_order),
        cmocka_unit_test(test_trace_traceback_order),
        cmocka_unit_test(test_trace_compare_to),
        cmocka_unit_test(test_trace_compare_huge),
        cmocka_unit_test(test_trace_filters),
        cmocka_unit_test(test_trace_filter_patterns),
        cmocka_unit_test(test_trace_dump_load),
        cmocka_unit_test(test_trace_load_hostile),
        cmocka_unit_test(test_trace_sampled_estimates),
        cmocka_unit_test(test_trace_sampled_pool_refill),
        cmocka_unit_test(test_trace_environment),
        cmocka_unit_test(test_trace_environment_sampled),
        cmocka_unit_test(test_trace_fault_start),
        cmocka_unit_test(test_trace_fault_allocations),
        cmocka_unit_test(test_trace_fault_snapshot),
        cmocka_unit_test(test_trace_fault_analysis),
        cmocka_unit_test(test_trace_fault_load),
        cmocka_unit_test(test_trace_format_size),
    };
    const char *filter = getenv("RCGC_TEST_FILTER");
    if (filter != NULL && *filter != '\0')
        cmocka_set_test_filter(filter);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
