/* rcgc/tracemalloc.h: allocation tracing with CPython's tracemalloc model.
 *
 * While a heap traces, every object it allocates (exact mode) or a Poisson sample of the
 * allocated bytes (sampled mode) gets a *trace*: the block size (header, payload and, for
 * rcgc_new_var, the size prefix) and a traceback, the allocating statement (the file:line
 * that rcgc_new recorded) followed, when the traceback limit is above 1, by the calling C
 * functions. A trace lives as long as its object. Snapshots copy the traces out and are
 * then independent of the heap: statistics by file, line or traceback, differences
 * between two snapshots, filters, and dump/load to a file, with tracemalloc's semantics
 * and sort orders (cpython_gc.md section 7).
 *
 * Threading model. The calls that take a heap or an object (rcgc_tracemalloc_*) belong to
 * the heap's owner thread, as the rest of rcgc.h. A snapshot, a statistics array and a
 * traceback are immutable once returned: any thread may read them, several at once; one
 * thread frees them when nobody reads any more. They own all their strings and outlive
 * the heap, but they were allocated through the heap's allocator hooks (a copy of the
 * rcgc_allocator is kept) and are freed through them: hooks given in the heap options must
 * stay usable, and be callable from the freeing thread, until the last of them is freed.
 * rcgc_trace_format_size and the *_format calls are safe from any thread.
 *
 * Memory. Tracing's own tables come from the heap's allocator hooks and are not counted in
 * the traced memory (rcgc_tracemalloc_get_memory reports them). When memory runs out while
 * an allocation is being traced, the allocation still succeeds and its trace is skipped
 * (rcgc_tracemalloc_status.lost counts these).
 *
 * Differences from CPython: frames carry a function name besides file and line; frames
 * deeper than the allocating statement come from the C stack (see
 * rcgc_tracemalloc_start); there is one domain; dump/load use rcgc's own binary format. */
#ifndef RCGC_TRACEMALLOC_H
#define RCGC_TRACEMALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <rcgc/rcgc.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- tracebacks ---- */

#define RCGC_TRACE_MAX_FRAMES 65535

typedef struct {
    const char *file;     /* never NULL: "<unknown>" when not known */
    unsigned line;        /* 0: not known */
    const char *function; /* NULL: unknown */
} rcgc_trace_frame;

/* frames[0] is the most recent frame: the allocating statement (the file:line of the
 * rcgc_new call, with the name of the function that made it when the C stack was
 * captured); frames[1..] are its callers, taken from the C stack. The stack holds return
 * addresses only: they are named when a snapshot or a traceback is taken, never at
 * allocation, and the names are cached per address while tracing runs (the cache counts
 * in rcgc_tracemalloc_get_memory; rcgc_tracemalloc_stop frees it, and it is emptied when
 * a shared object is unloaded). A frame from the C stack is:
 * - when librcgc was built with elfutils' libdw (CMake option RCGC_LIBDW, on by default,
 *   used when libdw-dev is found) and the code has debug information (compiled with -g,
 *   or a separate debug file found by build ID in /usr/lib/debug; debuginfod servers are
 *   never asked): file = the source file as the debug information names it (a relative
 *   path gets the compilation directory in front), line = the line of the call, function
 *   = the function's name, static functions included. A call made in a function that
 *   was inlined gives one frame per function, the innermost first and each at the line
 *   of its call, as eu-addr2line -i does;
 * - otherwise file = the path of the executable or shared object that holds the code,
 *   line 0, and function = the symbol name: from the object's symbol table with libdw
 *   (static functions too, unless the object is stripped; a compiler's clone "f.isra.0"
 *   is named f), else the one dladdr finds (only exported symbols: link executables
 *   with -rdynamic to see theirs), else "object+0xoffset" with the offset of the call
 *   instruction in that object (for addr2line -e object).
 * Frame 0 keeps rcgc_new's file:line and takes only a real name for its function (the
 * debug information's or a symbol, never the offset form); when that function was
 * inlined, the functions it was inlined into follow as frames 1.. The library's own
 * frames are left out, however many the compiler kept and whether librcgc is a shared
 * object or linked into the program (its allocation path lives in an ELF section of its
 * own, told apart by address). Without glibc's backtrace and dladdr, or outside ELF, only
 * frame 0 is recorded. nframe is at most the traceback limit; it may be 0 in a loaded
 * snapshot: such a traceback counts as one frame "<unknown>":0. total_nframe is the depth
 * of the stack when the trace was recorded, plus the inlined frames of the addresses
 * named (capped at RCGC_TRACE_MAX_FRAMES), possibly larger than nframe. */
typedef struct rcgc_traceback {
    uint16_t nframe, total_nframe;
    rcgc_trace_frame frames[];
} rcgc_traceback;

/* ---- tracing a heap ---- */

/* Starts exact tracing: every object allocated from now on gets a trace whose traceback
 * holds at most nframe frames. With nframe > 1 the C stack is unwound (glibc's
 * backtrace) at every traced allocation, which is slow; with nframe = 1 tracing costs
 * about one more untraced allocation per allocation. Objects allocated before the start
 * have no trace.
 * The environment starts tracing at heap creation, unless options.ignore_environment:
 * RCGC_TRACEMALLOC=N starts exact tracing with N frames (0: no tracing, whatever else is
 * set); RCGC_TRACEMALLOC_SAMPLE=B, a decimal number of bytes, starts sampled tracing
 * instead (rcgc_tracemalloc_start_sampled with sample_bytes B), with the N frames of
 * RCGC_TRACEMALLOC, or 1 when that is unset (B = 0: no sampling). A malformed value is
 * reported in one line on stderr and ignored, as if unset.
 * Returns: 0; also 0 when the heap traces already (the limit, mode and traces are left
 * unchanged, as CPython's start). Errors: RCGC_EINVAL for a NULL heap or nframe outside
 * 1..RCGC_TRACE_MAX_FRAMES; RCGC_ENOMEM (nothing changed). Thread safety: owner thread. */
RCGC_API int rcgc_tracemalloc_start(rcgc_heap *h, int nframe);

/* Starts sampled tracing: allocated bytes are sampled as a Poisson process with one
 * sample per sample_bytes bytes on average (Go's and tcmalloc's heap profiler), so an
 * allocation of s bytes is traced with probability p = 1 - exp(-s / sample_bytes). A
 * trace then records count = 1/p and size = s/p (rounded at random, so that sums stay
 * unbiased): statistics and traced memory are unbiased estimates. Cheap enough to leave
 * on: an untraced allocation pays one subtraction and one test. RCGC_TRACEMALLOC_SAMPLE
 * starts it without a code change (see rcgc_tracemalloc_start).
 * Returns and errors: as rcgc_tracemalloc_start, and RCGC_EINVAL for sample_bytes 0.
 * Thread safety: owner thread. */
RCGC_API int rcgc_tracemalloc_start_sampled(rcgc_heap *h, int nframe, size_t sample_bytes);

/* Reseeds the sampling random generator (seeded from the clock and the heap's address at
 * each start) and draws the distance to the next sample again: a sampled run is then
 * reproducible. Returns: 0. Errors: RCGC_EINVAL for a NULL heap, RCGC_EBUSY when the heap
 * does not trace. Thread safety: owner thread. */
RCGC_API int rcgc_tracemalloc_seed(rcgc_heap *h, uint64_t seed);

/* Stops tracing and clears every trace (the traceback limit is kept). NULL and a heap that
 * does not trace: no-op. Thread safety: owner thread. */
RCGC_API void rcgc_tracemalloc_stop(rcgc_heap *h);

/* Returns: whether the heap traces (false for NULL). Thread safety: owner thread. */
RCGC_API bool rcgc_tracemalloc_is_tracing(const rcgc_heap *h);

/* Returns: the nframe of the running start, or of the last one; 1 when tracing never
 * started (or for NULL). Thread safety: owner thread. */
RCGC_API int rcgc_tracemalloc_get_traceback_limit(const rcgc_heap *h);

/* Returns: the sample_bytes of a running sampled trace; 0 when exact or not tracing.
 * Thread safety: owner thread. */
RCGC_API size_t rcgc_tracemalloc_sample_bytes(const rcgc_heap *h);

/* Stores the total size of the live traces and its peak since the start (or the last
 * clear_traces or reset_peak) in *current and *peak (either may be NULL): (0, 0) when not
 * tracing; in sampled mode unbiased estimates. Thread safety: owner thread. */
RCGC_API void rcgc_tracemalloc_get_traced_memory(const rcgc_heap *h, size_t *current,
                                                 size_t *peak);

/* Sets the peak to the current traced memory. No-op when not tracing.
 * Thread safety: owner thread. */
RCGC_API void rcgc_tracemalloc_reset_peak(rcgc_heap *h);

/* Clears every trace and the traced memory and peak; tracing goes on. No-op when not
 * tracing. Objects alive now are not traced again. Thread safety: owner thread. */
RCGC_API void rcgc_tracemalloc_clear_traces(rcgc_heap *h);

/* Returns: the bytes tracing itself holds (its tables, tracebacks, the names of the C
 * frames' return addresses and state; 0 before the first start). Thread safety: owner
 * thread. */
RCGC_API size_t rcgc_tracemalloc_get_memory(const rcgc_heap *h);

typedef struct {
    bool tracing;
    int traceback_limit;  /* rcgc_tracemalloc_get_traceback_limit */
    size_t sample_bytes;  /* rcgc_tracemalloc_sample_bytes */
    size_t traces;        /* live traces */
    size_t tracebacks;    /* distinct tracebacks held (interned) */
    size_t current, peak; /* rcgc_tracemalloc_get_traced_memory */
    size_t memory;        /* rcgc_tracemalloc_get_memory */
    size_t lost;          /* traces skipped for lack of memory since the start */
    uint64_t recorded;    /* traces recorded since the start */
} rcgc_tracemalloc_status;

/* Fills *out with the figures above in one call. Returns: 0. Errors: RCGC_EINVAL for a
 * NULL heap or out. Thread safety: owner thread. */
RCGC_API int rcgc_tracemalloc_get_status(const rcgc_heap *h, rcgc_tracemalloc_status *out);

/* Returns: the traceback of obj's trace, its C frames named as by
 * rcgc_tracemalloc_take_snapshot, or NULL when the object has none (allocated while not
 * tracing, not sampled, cleared) or memory ran out.
 * Ownership: new; release with rcgc_traceback_free. Thread safety: owner thread. */
RCGC_API rcgc_traceback *rcgc_tracemalloc_get_object_traceback(const void *obj);

/* Frees a traceback from rcgc_tracemalloc_get_object_traceback; NULL is a no-op.
 * Thread safety: any thread (see the memory note above). */
RCGC_API void rcgc_traceback_free(rcgc_traceback *tb);

/* ---- snapshots ---- */

typedef struct rcgc_trace_snapshot rcgc_trace_snapshot;

typedef struct {
    size_t size;  /* bytes (sampled: estimate) */
    size_t count; /* exact: 1; sampled: estimated objects this trace stands for */
    const rcgc_traceback *traceback;
} rcgc_trace;

/* Copies the live traces (tracemalloc.take_snapshot), naming the frames of their C
 * stacks (see rcgc_traceback). With libdw, naming addresses that the cache does not hold
 * reads /proc/self/maps and the object files (and their debug files) for the time of the
 * call: no file stays open. An address that cannot be named, or a failure of libdw,
 * leaves the frame with what dladdr gives: that is not an error.
 * Returns: a new snapshot, or NULL with *err (when err is not NULL) set to RCGC_EINVAL
 * (NULL heap), RCGC_EBUSY (the heap does not trace: CPython's RuntimeError) or
 * RCGC_ENOMEM (tracing's own tables; when only the name cache cannot grow, the names are
 * used uncached). Ownership: new; release with rcgc_trace_snapshot_free. It is
 * self-contained: its strings are copies and it outlives the heap.
 * Thread safety: owner thread (it updates the heap's name cache); heaps on different
 * threads may take snapshots at the same time. */
RCGC_API rcgc_trace_snapshot *rcgc_tracemalloc_take_snapshot(rcgc_heap *h, int *err);

/* Frees a snapshot and its traces and tracebacks; NULL is a no-op. Thread safety: any
 * thread, once nobody reads the snapshot. */
RCGC_API void rcgc_trace_snapshot_free(rcgc_trace_snapshot *s);

/* Returns: the number of traces (0 for NULL), trace i (borrowed from the snapshot; NULL
 * when i is out of range), the traceback limit and the sample_bytes (0: exact) of the
 * tracing the snapshot was taken from. Thread safety: any thread. */
RCGC_API size_t rcgc_trace_snapshot_count(const rcgc_trace_snapshot *s);
RCGC_API const rcgc_trace *rcgc_trace_snapshot_get(const rcgc_trace_snapshot *s, size_t i);
RCGC_API int rcgc_trace_snapshot_traceback_limit(const rcgc_trace_snapshot *s);
RCGC_API size_t rcgc_trace_snapshot_sample_bytes(const rcgc_trace_snapshot *s);

/* tracemalloc.Filter: a frame matches when its whole file name matches filename_pattern
 * as Python's fnmatch.fnmatch reads it on POSIX (not as glibc's fnmatch does), and lineno
 * is 0 or equals the frame's line. In a pattern '*' matches any run ('/' too), '?' one
 * character, "[...]" one of a set: "a-z" a range (dropped when its ends are reversed), a
 * leading '!' negates, a leading '^' is itself, no POSIX classes; a '[' without its ']'
 * and a backslash are themselves. Characters are code points of UTF-8, an invalid byte
 * counting as one (os.fsdecode's surrogateescape). Only the most recent frame is tested,
 * or every frame with all_frames (any match counts). */
typedef struct {
    bool inclusive;               /* true: keep matching traces; false: drop them */
    const char *filename_pattern; /* borrowed for the call */
    unsigned lineno;              /* 0: any line */
    bool all_frames;
} rcgc_trace_filter;

/* Snapshot.filter_traces: the traces of s that match at least one inclusive filter (all
 * when there is none) and no exclusive filter; n = 0 gives a copy. Traceback limit and
 * sample_bytes are copied.
 * Returns: a new snapshot, or NULL with *err set to RCGC_EINVAL (NULL s, NULL filters
 * with n > 0, a NULL pattern) or RCGC_ENOMEM. Ownership: new (independent of s).
 * Thread safety: any thread. */
RCGC_API rcgc_trace_snapshot *rcgc_trace_snapshot_filter(const rcgc_trace_snapshot *s,
                                                         const rcgc_trace_filter *filters,
                                                         size_t n, int *err);

/* ---- statistics ---- */

typedef enum {
    RCGC_TRACE_KEY_FILENAME, /* by file: one frame (file, line 0), no function */
    RCGC_TRACE_KEY_LINENO,   /* by statement: one frame (file, line, function) */
    RCGC_TRACE_KEY_TRACEBACK /* by whole traceback */
} rcgc_trace_key;

typedef struct {
    const rcgc_traceback *traceback; /* owned by the array */
    size_t size, count;
} rcgc_trace_stat;

typedef struct {
    const rcgc_traceback *traceback; /* owned by the array */
    size_t size, count;              /* in the newer snapshot (0: only in the older) */
    int64_t size_diff, count_diff;   /* newer minus older, saturated at +-INT64_MAX */
} rcgc_trace_stat_diff;

/* Snapshot.statistics(key, cumulative): one entry per key, with the summed size and
 * count of the traces that have it (sums saturate at SIZE_MAX), sorted by (size, count,
 * traceback) descending; tracebacks compare as CPython's, frame by frame from the oldest, by
 * (file, line) and then function. cumulative counts a trace once for each of its frames (so a
 * function that recurses counts more than once, as in CPython); only for FILENAME and LINENO.
 * Returns: 0 with *out a new array of *n entries (NULL when *n is 0). Errors: RCGC_EINVAL
 * (NULL argument, unknown key, cumulative with RCGC_TRACE_KEY_TRACEBACK), RCGC_ENOMEM;
 * *out = NULL and *n = 0 then. Ownership: new; release with rcgc_trace_stats_free; it is
 * independent of the snapshot. Thread safety: any thread. */
RCGC_API int rcgc_trace_snapshot_statistics(const rcgc_trace_snapshot *s, rcgc_trace_key key,
                                            bool cumulative, rcgc_trace_stat **out, size_t *n);

/* Snapshot.compare_to(old, key, cumulative): the statistics of both snapshots matched by
 * key, including keys found in only one of them (the other side counts 0), sorted by
 * (|size_diff|, size, |count_diff|, count, traceback) descending.
 * Returns, errors and ownership: as rcgc_trace_snapshot_statistics. Thread safety: any
 * thread. */
RCGC_API int rcgc_trace_snapshot_compare_to(const rcgc_trace_snapshot *s,
                                            const rcgc_trace_snapshot *old, rcgc_trace_key key,
                                            bool cumulative, rcgc_trace_stat_diff **out,
                                            size_t *n);

/* Frees an array from statistics or compare_to with the tracebacks it owns; n is its
 * length (unused, for symmetry); NULL is a no-op. Thread safety: any thread. */
RCGC_API void rcgc_trace_stats_free(void *stats, size_t n);

/* ---- files ---- */

/* Writes s to path (created or truncated) in rcgc's binary snapshot format.
 * Returns: 0. Errors: RCGC_EINVAL (NULL argument), RCGC_ENOMEM, or RCGC_EIO when the file
 * could not be opened or written (errno says why). Thread safety: any thread. */
RCGC_API int rcgc_trace_snapshot_dump(const rcgc_trace_snapshot *s, const char *path);

/* Reads a snapshot written by rcgc_trace_snapshot_dump; libc's malloc holds it
 * (rcgc_trace_snapshot_load_with: the given allocator hooks, copied; NULL: libc).
 * Returns: a new snapshot, or NULL with *err set to RCGC_EINVAL (NULL path, or a file that
 * is not a complete well-formed snapshot: a truncated, corrupt or hostile file never
 * crashes nor allocates more than about its own size), RCGC_ENOMEM or RCGC_EIO when the
 * file could not be opened or read (errno says why). Ownership: new.
 * Thread safety: any thread. */
RCGC_API rcgc_trace_snapshot *rcgc_trace_snapshot_load(const char *path, int *err);
RCGC_API rcgc_trace_snapshot *
rcgc_trace_snapshot_load_with(const char *path, const rcgc_allocator *alloc, int *err);

/* ---- text ---- */

/* tracemalloc's _format_size: "951 B", "10.2 KiB", "1023 MiB"; with sign a leading '+'
 * for values >= 0. Writes at most cap bytes, NUL included (snprintf's contract).
 * Returns: the length of the whole text. Thread safety: any thread. */
RCGC_API size_t rcgc_trace_format_size(char *buf, size_t cap, int64_t size, bool sign);

/* str(Statistic): "file:line: size=10.2 KiB, count=11, average=951 B" (no average when
 * count is 0); the frame shown is the traceback's oldest, as CPython's str(Traceback).
 * str(StatisticDiff): "file:line: size=10.2 KiB (+10.2 KiB), count=11 (+11), average=951
 * B". Contract as rcgc_trace_format_size. Thread safety: any thread. */
RCGC_API size_t rcgc_trace_stat_format(char *buf, size_t cap, const rcgc_trace_stat *st);
RCGC_API size_t rcgc_trace_stat_diff_format(char *buf, size_t cap,
                                            const rcgc_trace_stat_diff *st);

#ifdef __cplusplus
}
#endif

#endif /* RCGC_TRACEMALLOC_H */
