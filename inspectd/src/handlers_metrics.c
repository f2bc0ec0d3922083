/* handlers_metrics.c: GET /metrics in the Prometheus text format 0.0.4, named as the
 * client libraries name GC metrics (python_gc_*, go_gc_*). Every family is one
 * contiguous group, HELP and TYPE first; label values are escaped; numbers are
 * formatted with integer arithmetic (no locale-dependent printf of doubles). Per-type
 * series are limited to the TOP_TYPES largest types of each heap plus one "(other)"
 * series, so that cardinality stays bounded and sum() stays meaningful. */
#define _POSIX_C_SOURCE 200809L

#include "internal.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define TOP_TYPES 20
#define OTHER_TYPES "(other)"

/* Appends a label value, escaped (\\, \", \n) and valid UTF-8. */
static void label_value(insp_buf *b, const char *s)
{
    insp_buf t = {0};
    rcgc__buf_utf8(&t, s);
    for (const char *p = t.data ? t.data : ""; *p != '\0'; p++) {
        if (*p == '\\')
            rcgc__buf_puts(b, "\\\\");
        else if (*p == '"')
            rcgc__buf_puts(b, "\\\"");
        else if (*p == '\n')
            rcgc__buf_puts(b, "\\n");
        else
            rcgc__buf_add(b, p, 1);
    }
    b->failed |= t.failed;
    free(t.data);
}

static void family(insp_buf *b, const char *name, const char *type, const char *help)
{
    rcgc__buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{heap="..."[,generation="g"]} */
static void series(insp_buf *b, const char *name, const char *heap, int generation)
{
    rcgc__buf_printf(b, "%s{heap=\"", name);
    label_value(b, heap);
    if (generation >= 0)
        rcgc__buf_printf(b, "\",generation=\"%d\"} ", generation);
    else
        rcgc__buf_puts(b, "\"} ");
}

static void u64_line(insp_buf *b, uint64_t v)
{
    rcgc__buf_printf(b, "%" PRIu64 "\n", v);
}

/* Nanoseconds as seconds, exactly ("0.000123456"). */
static void seconds_line(insp_buf *b, uint64_t ns)
{
    rcgc__buf_printf(b, "%" PRIu64 ".%09" PRIu64 "\n", ns / 1000000000u, ns % 1000000000u);
}

typedef struct heap_data {
    const char *name;
    insp_snap *snap;
    insp_pauses pauses;
} heap_data;

static int cmp_bytes(const void *pa, const void *pb)
{
    const insp_type *a = pa, *b = pb;
    if (a->bytes != b->bytes)
        return a->bytes < b->bytes ? 1 : -1;
    if (a->count != b->count)
        return a->count < b->count ? 1 : -1;
    return strcmp(a->name, b->name);
}

static int cmp_name(const void *pa, const void *pb)
{
    return strcmp(((const insp_type *)pa)->name, ((const insp_type *)pb)->name);
}

/* Types that share a name become one series: sums them into the first of each name and
 * shrinks the array. */
static void merge_by_name(insp_snap *s)
{
    qsort(s->types, s->ntypes, sizeof *s->types, cmp_name);
    size_t k = 0;
    for (size_t i = 0; i < s->ntypes; i++) {
        if (k > 0 && strcmp(s->types[k - 1].name, s->types[i].name) == 0) {
            s->types[k - 1].count += s->types[i].count;
            s->types[k - 1].bytes += s->types[i].bytes;
        } else {
            s->types[k++] = s->types[i];
        }
    }
    s->ntypes = k;
}

/* Writes a sample's value and ends its line: u64_line or seconds_line (of nanoseconds). */
typedef void (*value_line)(insp_buf *b, uint64_t v);

/* Per-generation counter or gauge from the snapshot's statistics. */
typedef uint64_t (*gen_value)(const rcgc__snapshot *s, int g);
static uint64_t v_collections(const rcgc__snapshot *s, int g)
{
    return s->stats[g].collections;
}
static uint64_t v_collected(const rcgc__snapshot *s, int g)
{
    return s->stats[g].collected;
}
static uint64_t v_uncollectable(const rcgc__snapshot *s, int g)
{
    return s->stats[g].uncollectable;
}
static uint64_t v_objects(const rcgc__snapshot *s, int g)
{
    return s->generation_size[g];
}
static uint64_t v_count(const rcgc__snapshot *s, int g)
{
    return s->count[g];
}
static uint64_t v_threshold(const rcgc__snapshot *s, int g)
{
    return s->threshold[g];
}
static uint64_t v_pause_total_ns(const rcgc__snapshot *s, int g)
{
    return s->stats[g].pause_total_ns;
}
static uint64_t v_pause_max_ns(const rcgc__snapshot *s, int g)
{
    return s->stats[g].pause_max_ns;
}

static void per_generation(insp_buf *b, const heap_data *hs, size_t n, const char *name,
                           const char *type, const char *help, gen_value fn, value_line line)
{
    family(b, name, type, help);
    for (size_t i = 0; i < n; i++)
        for (int g = 0; g < 3; g++) {
            series(b, name, hs[i].name, g);
            line(b, fn(&hs[i].snap->s, g));
        }
}

/* Per-heap values (one series per heap) from the snapshot. */
typedef uint64_t (*heap_value)(const rcgc__snapshot *s);
static uint64_t v_arenas(const rcgc__snapshot *s)
{
    return s->malloc.arenas_current;
}
static uint64_t v_arenas_reclaimed(const rcgc__snapshot *s)
{
    return s->malloc.arenas_reclaimed;
}
static uint64_t v_traced(const rcgc__snapshot *s)
{
    return s->tracing.current;
}
static uint64_t v_traced_peak(const rcgc__snapshot *s)
{
    return s->tracing.peak;
}
static uint64_t v_trace_memory(const rcgc__snapshot *s)
{
    return s->tracing.memory;
}
static uint64_t v_tracing(const rcgc__snapshot *s)
{
    return s->tracing.tracing ? 1 : 0;
}
static uint64_t v_frozen(const rcgc__snapshot *s)
{
    return s->frozen;
}
static uint64_t v_garbage(const rcgc__snapshot *s)
{
    return s->garbage;
}
static uint64_t v_enabled(const rcgc__snapshot *s)
{
    return s->enabled ? 1 : 0;
}
static uint64_t v_heap_objects(const rcgc__snapshot *s)
{
    return s->objects;
}
static uint64_t v_heap_bytes(const rcgc__snapshot *s)
{
    return s->bytes;
}

static void per_heap(insp_buf *b, const heap_data *hs, size_t n, const char *name,
                     const char *type, const char *help, heap_value fn)
{
    family(b, name, type, help);
    for (size_t i = 0; i < n; i++) {
        series(b, name, hs[i].name, -1);
        u64_line(b, fn(&hs[i].snap->s));
    }
}

/* The small-object allocator and allocation tracing (the snapshot's malloc and tracing
 * figures). Every arena byte is in exactly one state of rcgc_allocator_bytes. */
static void allocator_metrics(insp_buf *b, const heap_data *hs, size_t n)
{
    per_heap(b, hs, n, "rcgc_allocator_arenas", "gauge",
             "Arenas the small-object allocator holds.", v_arenas);
    per_heap(b, hs, n, "rcgc_allocator_arenas_reclaimed_total", "counter",
             "Arenas the small-object allocator gave back.", v_arenas_reclaimed);
    const char *name = "rcgc_allocator_bytes";
    family(b, name, "gauge",
           "Bytes of the small-object allocator's arenas by state: allocated and available "
           "blocks, unused pools, overhead (pool headers, quantization, alignment).");
    for (size_t i = 0; i < n; i++) {
        const rcgc_malloc_stats *m = &hs[i].snap->s.malloc;
        const struct {
            const char *state;
            uint64_t v;
        } rows[] = {
            {"allocated", m->bytes_in_allocated_blocks},
            {"available", m->bytes_in_available_blocks},
            {"unused", (uint64_t)m->unused_pools * m->pool_size},
            {"overhead", (uint64_t)m->bytes_lost_pool_headers + m->bytes_lost_quantization +
                             m->bytes_lost_arena_alignment},
        };
        for (size_t k = 0; k < sizeof rows / sizeof rows[0]; k++) {
            rcgc__buf_printf(b, "%s{heap=\"", name);
            label_value(b, hs[i].name);
            rcgc__buf_printf(b, "\",state=\"%s\"} ", rows[k].state);
            u64_line(b, rows[k].v);
        }
    }
    per_heap(b, hs, n, "rcgc_tracemalloc_traced_bytes", "gauge",
             "Bytes of the traced allocations alive (estimated when sampling).", v_traced);
    per_heap(b, hs, n, "rcgc_tracemalloc_traced_peak_bytes", "gauge",
             "Peak of the traced bytes since tracing started or the peak was reset.",
             v_traced_peak);
    per_heap(b, hs, n, "rcgc_tracemalloc_memory_bytes", "gauge",
             "Bytes allocation tracing itself holds.", v_trace_memory);
    per_heap(b, hs, n, "rcgc_tracemalloc_tracing", "gauge",
             "1 when the heap traces its allocations.", v_tracing);
}

/* The per-type families: the TOP_TYPES types with most bytes, then "(other)". */
static void per_type(insp_buf *b, const heap_data *hs, size_t n, bool bytes)
{
    const char *name = bytes ? "rcgc_heap_live_bytes" : "rcgc_heap_live_objects";
    family(b, name, "gauge",
           bytes ? "Bytes of live objects per type (the largest types; the rest as (other))."
                 : "Live objects per type (the largest types by bytes; the rest as (other)).");
    for (size_t i = 0; i < n; i++) {
        const insp_snap *s = hs[i].snap;
        uint64_t rest = 0;
        bool any_rest = false;
        for (size_t k = 0; k < s->ntypes; k++) {
            const insp_type *t = &s->types[k];
            uint64_t v = bytes ? t->bytes : t->count;
            if (k >= TOP_TYPES) {
                rest += v;
                any_rest = true;
                continue;
            }
            rcgc__buf_printf(b, "%s{heap=\"", name);
            label_value(b, hs[i].name);
            rcgc__buf_puts(b, "\",type=\"");
            label_value(b, t->name);
            rcgc__buf_puts(b, "\"} ");
            u64_line(b, v);
        }
        if (any_rest) {
            rcgc__buf_printf(b, "%s{heap=\"", name);
            label_value(b, hs[i].name);
            rcgc__buf_puts(b, "\",type=\"" OTHER_TYPES "\"} ");
            u64_line(b, rest);
        }
    }
}

static void pause_histogram(insp_buf *b, const heap_data *hs, size_t n)
{
    const char *name = "rcgc_gc_pause_seconds";
    family(b, name, "histogram",
           "Pause time of each collection, counted since the inspector was first started.");
    for (size_t i = 0; i < n; i++)
        for (int g = 0; g < 3; g++) {
            const insp_pauses *p = &hs[i].pauses;
            for (size_t k = 0; k <= INSP_PAUSE_BUCKETS; k++) {
                rcgc__buf_puts(b, "rcgc_gc_pause_seconds_bucket{heap=\"");
                label_value(b, hs[i].name);
                rcgc__buf_printf(b, "\",generation=\"%d\",le=\"%s\"} ", g,
                                 k < INSP_PAUSE_BUCKETS ? rcgc__pause_bounds_text[k] : "+Inf");
                u64_line(b, p->bucket[g][k]);
            }
            series(b, "rcgc_gc_pause_seconds_sum", hs[i].name, g);
            seconds_line(b, p->sum_ns[g]);
            series(b, "rcgc_gc_pause_seconds_count", hs[i].name, g);
            u64_line(b, p->bucket[g][INSP_PAUSE_BUCKETS]);
        }
}

static void write_metrics(insp_buf *b, const heap_data *hs, size_t n)
{
    per_generation(b, hs, n, "rcgc_gc_collections_total", "counter",
                   "Number of times this generation was collected.", v_collections, u64_line);
    per_generation(b, hs, n, "rcgc_gc_objects_collected_total", "counter",
                   "Objects collected during collections of this generation.", v_collected,
                   u64_line);
    per_generation(b, hs, n, "rcgc_gc_objects_uncollectable_total", "counter",
                   "Uncollectable objects found during collections of this generation.",
                   v_uncollectable, u64_line);

    per_generation(b, hs, n, "rcgc_gc_pause_seconds_total", "counter",
                   "Total pause time of the collections of this generation.", v_pause_total_ns,
                   seconds_line);
    per_generation(b, hs, n, "rcgc_gc_pause_max_seconds", "gauge",
                   "Longest pause of a collection of this generation.", v_pause_max_ns,
                   seconds_line);
    pause_histogram(b, hs, n);

    per_generation(b, hs, n, "rcgc_gc_objects", "gauge", "Tracked objects in each generation.",
                   v_objects, u64_line);
    per_generation(b, hs, n, "rcgc_gc_counts", "gauge",
                   "Collection counts of each generation (gc.get_count), compared with the "
                   "threshold.",
                   v_count, u64_line);
    per_generation(b, hs, n, "rcgc_gc_threshold", "gauge",
                   "Collection threshold of each generation (gc.get_threshold).", v_threshold,
                   u64_line);

    per_heap(b, hs, n, "rcgc_gc_frozen_objects", "gauge",
             "Objects in the permanent generation.", v_frozen);
    per_heap(b, hs, n, "rcgc_gc_garbage_objects", "gauge", "Objects in the garbage list.",
             v_garbage);
    per_heap(b, hs, n, "rcgc_gc_enabled", "gauge", "1 when automatic collection is enabled.",
             v_enabled);
    per_heap(b, hs, n, "rcgc_heap_objects", "gauge", "Live objects of the heap.",
             v_heap_objects);
    per_heap(b, hs, n, "rcgc_heap_bytes", "gauge", "Bytes of the live objects of the heap.",
             v_heap_bytes);
    per_type(b, hs, n, false);
    per_type(b, hs, n, true);
    allocator_metrics(b, hs, n);

    family(b, "rcgc_build_info", "gauge", "Version of librcgc, always 1.");
    rcgc__buf_puts(b, "rcgc_build_info{version=\"");
    label_value(b, rcgc_version());
    rcgc__buf_puts(b, "\"} 1\n");

    insp_proc p;
    rcgc__proc_read(&p);
    if (p.start_time_ms != 0) {
        family(b, "process_start_time_seconds", "gauge",
               "Start time of the process since unix epoch in seconds.");
        rcgc__buf_printf(b, "process_start_time_seconds %" PRIu64 ".%03" PRIu64 "\n",
                         p.start_time_ms / 1000u, p.start_time_ms % 1000u);
    }
    if (p.have_cpu) {
        family(b, "process_cpu_seconds_total", "counter",
               "Total user and system CPU time spent in seconds.");
        rcgc__buf_printf(b, "process_cpu_seconds_total %" PRIu64 ".%03" PRIu64 "\n",
                         p.cpu_ms / 1000u, p.cpu_ms % 1000u);
    }
    if (p.have_status) {
        family(b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
        rcgc__buf_printf(b, "process_resident_memory_bytes %" PRIu64 "\n", p.rss_bytes);
        family(b, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
        rcgc__buf_printf(b, "process_virtual_memory_bytes %" PRIu64 "\n", p.vm_bytes);
    }
}

int rcgc__handle_metrics_get(const insp_req *rq, insp_resp *rs)
{
    (void)rq;
    char **names = NULL;
    size_t n = 0;
    if (rcgc__heap_names(&names, &n) != 0)
        return rcgc__reply_error(rs, 500, "internal_error", "out of memory");
    heap_data *hs = calloc(n ? n : 1, sizeof *hs);
    size_t k = 0;
    bool failed = hs == NULL;
    for (size_t i = 0; !failed && i < n; i++) {
        int r = rcgc__snap_get(names[i], INSP_SNAP_TYPES, &hs[k].snap);
        if (r == RCGC_ENOENT)
            continue;
        if (r != 0) {
            failed = true;
            break;
        }
        hs[k].name = names[i];
        merge_by_name(hs[k].snap);
        qsort(hs[k].snap->types, hs[k].snap->ntypes, sizeof(insp_type), cmp_bytes);
        rcgc__sink_pauses(names[i], &hs[k].pauses);
        k++;
    }
    insp_buf b = {0};
    if (!failed)
        write_metrics(&b, hs, k);
    for (size_t i = 0; hs != NULL && i < k; i++)
        rcgc__snap_free(hs[i].snap);
    free(hs);
    rcgc__names_free(names, n);
    if (failed || b.failed) {
        free(b.data);
        return rcgc__reply_error(rs, 500, "internal_error", "out of memory");
    }
    return rcgc__reply_raw(rs, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len);
}
