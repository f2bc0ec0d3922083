/* sink.c: the inspector's process-wide event sink. Owners of every heap call it at the
 * end of each collection, on their own threads and concurrently; it keeps a histogram
 * of pause times per heap and generation for /metrics (the snapshots hold only totals
 * and maxima). Lock-free after a heap's first collection: one thread-local cache hit,
 * two relaxed atomic adds. Every event also goes to the ring of GET /v1/events
 * (events.c: one short lock per event). The state lives as long as the process
 * (librcgc may still be inside the sink for a moment after it is removed). */
#define _POSIX_C_SOURCE 200809L

#include "internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

const uint64_t rcgc__pause_bounds_ns[INSP_PAUSE_BUCKETS] = {
    10000u,   25000u,    50000u,    100000u,   250000u,    500000u,    1000000u,   2500000u,
    5000000u, 10000000u, 25000000u, 50000000u, 100000000u, 250000000u, 500000000u, 1000000000u,
};
const char *const rcgc__pause_bounds_text[INSP_PAUSE_BUCKETS] = {
    "1e-05", "2.5e-05", "5e-05", "0.0001", "0.00025", "0.0005", "0.001", "0.0025",
    "0.005", "0.01",    "0.025", "0.05",   "0.1",     "0.25",   "0.5",   "1",
};

#define MAX_HEAPS 64 /* heaps (by name) with a histogram; later ones are not counted */

typedef struct slot {
    _Atomic(char *) name; /* set once (under g_lock), never changed; NULL: free */
    _Atomic uint64_t bucket[3][INSP_PAUSE_BUCKETS + 1]; /* per bucket, not cumulative */
    _Atomic uint64_t sum_ns[3];
} slot;

static slot g_slots[MAX_HEAPS];
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

/* The slot this thread used last: an owner thread usually runs one heap. */
static _Thread_local slot *tl_last;

static slot *find(const char *name)
{
    for (size_t i = 0; i < MAX_HEAPS; i++) {
        const char *n = atomic_load_explicit(&g_slots[i].name, memory_order_acquire);
        if (n == NULL)
            return NULL; /* slots are claimed in order */
        if (strcmp(n, name) == 0)
            return &g_slots[i];
    }
    return NULL;
}

static slot *find_or_claim(const char *name)
{
    slot *s = find(name);
    if (s != NULL)
        return s;
    pthread_mutex_lock(&g_lock);
    s = find(name);
    for (size_t i = 0; s == NULL && i < MAX_HEAPS; i++) {
        if (atomic_load_explicit(&g_slots[i].name, memory_order_relaxed) != NULL)
            continue;
        size_t len = strlen(name) + 1;
        char *copy = malloc(len);
        if (copy != NULL) {
            memcpy(copy, name, len);
            atomic_store_explicit(&g_slots[i].name, copy, memory_order_release);
            s = &g_slots[i];
        }
        break;
    }
    pthread_mutex_unlock(&g_lock);
    return s;
}

static void on_event(rcgc_heap *h, const char *heap_name, const rcgc_event *ev, void *arg)
{
    (void)arg;
    rcgc__events_on_event(h, heap_name, ev); /* the ring of GET /v1/events */
    if (ev->kind != RCGC_EVENT_COLLECT_DONE || ev->generation < 0 || ev->generation > 2 ||
        heap_name == NULL)
        return;
    slot *s = tl_last;
    if (s == NULL ||
        strcmp(atomic_load_explicit(&s->name, memory_order_relaxed), heap_name) != 0) {
        s = find_or_claim(heap_name);
        if (s == NULL)
            return;
        tl_last = s;
    }
    size_t b = 0;
    while (b < INSP_PAUSE_BUCKETS && ev->duration_ns > rcgc__pause_bounds_ns[b])
        b++;
    int g = ev->generation;
    atomic_fetch_add_explicit(&s->bucket[g][b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->sum_ns[g], ev->duration_ns, memory_order_relaxed);
}

void rcgc__sink_enable(bool on)
{
    rcgc__set_event_sink(on ? on_event : NULL, NULL);
}

void rcgc__sink_pauses(const char *name, insp_pauses *out)
{
    memset(out, 0, sizeof *out);
    slot *s = find(name);
    if (s == NULL)
        return;
    for (int g = 0; g < 3; g++) {
        uint64_t total = 0;
        for (size_t b = 0; b <= INSP_PAUSE_BUCKETS; b++) {
            total += atomic_load_explicit(&s->bucket[g][b], memory_order_relaxed);
            out->bucket[g][b] = total;
        }
        out->sum_ns[g] = atomic_load_explicit(&s->sum_ns[g], memory_order_relaxed);
    }
}
