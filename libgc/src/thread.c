/* thread.c: what other threads may do with a heap (see rcgc/snapshot.h): the registry
 * of heaps, published snapshots, calls served at safepoints, release and acquire.
 *
 * One process-wide mutex guards the registry, every heap's mailbox and its
 * released/borrowed state; the owner takes it only when a call is pending (one relaxed
 * atomic load per safepoint otherwise), when it releases or acquires the heap, and at
 * creation and destruction. Snapshots are swapped with an atomic pointer; readers
 * announce themselves in an atomic counter, and the owner frees replaced snapshots only
 * when it sees no reader (a reader that arrives later can only load the new one). */
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

enum { REQ_QUEUED, REQ_RUNNING, REQ_DONE, REQ_GONE };

struct rcgc__request {
    void (*fn)(rcgc_heap *h, void *arg);
    void *arg;
    bool mutate;       /* may collect or change settings: only on the owner thread */
    int state;         /* REQ_*, under g_lock */
    pthread_cond_t cv; /* signalled when state leaves QUEUED/RUNNING */
};

struct rcgc__snapbox {
    rcgc__snapshot s;
    size_t size; /* bytes allocated with the heap's allocator */
    struct rcgc__snapbox *retired_next;
};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_changed = PTHREAD_COND_INITIALIZER; /* mailbox freed, borrow ended */
static rcgc_heap *g_first, *g_last; /* the registry, in creation order */
static atomic_bool g_inspected;

void rcgc__set_inspected(bool on)
{
    atomic_store(&g_inspected, on);
}

/* ---- registry ---- */

void rcgc__registry_add(rcgc_heap *h)
{
    pthread_mutex_lock(&g_lock);
    h->reg_prev = g_last;
    h->reg_next = NULL;
    if (g_last != NULL)
        g_last->reg_next = h;
    else
        g_first = h;
    g_last = h;
    h->owner = pthread_self();
    pthread_mutex_unlock(&g_lock);
    if (atomic_load_explicit(&g_inspected, memory_order_relaxed))
        (void)rcgc__snapshot_publish(h);
}

static void snap_free_retired(rcgc_heap *h)
{
    struct rcgc__snapbox *b = h->retired;
    h->retired = NULL;
    while (b != NULL) {
        struct rcgc__snapbox *next = b->retired_next;
        rcgc__free(h, b, b->size);
        b = next;
    }
}

void rcgc__registry_remove(rcgc_heap *h)
{
    pthread_mutex_lock(&g_lock);
    while (h->borrowed)
        pthread_cond_wait(&g_changed, &g_lock);
    if (h->mail != NULL) {
        h->mail->state = REQ_GONE;
        pthread_cond_signal(&h->mail->cv);
        h->mail = NULL;
        atomic_store_explicit(&h->mail_flag, false, memory_order_relaxed);
    }
    if (h->reg_prev != NULL)
        h->reg_prev->reg_next = h->reg_next;
    else
        g_first = h->reg_next;
    if (h->reg_next != NULL)
        h->reg_next->reg_prev = h->reg_prev;
    else
        g_last = h->reg_prev;
    pthread_cond_broadcast(&g_changed);
    pthread_mutex_unlock(&g_lock);
    /* Readers read under g_lock, which we held after unlinking: none remain. */
    struct rcgc__snapbox *cur = atomic_exchange(&h->snap, NULL);
    if (cur != NULL) {
        cur->retired_next = h->retired;
        h->retired = cur;
    }
    snap_free_retired(h);
}

int rcgc__heaps_foreach(int (*fn)(rcgc_heap *h, void *arg), void *arg)
{
    int r = 0;
    pthread_mutex_lock(&g_lock);
    for (rcgc_heap *h = g_first; h != NULL && r == 0; h = h->reg_next)
        r = fn(h, arg);
    pthread_mutex_unlock(&g_lock);
    return r;
}

/* Under g_lock: the heap called name, or NULL. */
static rcgc_heap *find_locked(const char *name)
{
    for (rcgc_heap *h = g_first; h != NULL; h = h->reg_next)
        if (strcmp(h->name, name) == 0)
            return h;
    return NULL;
}

/* ---- snapshots ---- */

int rcgc__snapshot_publish(rcgc_heap *h)
{
    size_t nsites = 0;
    for (size_t i = 0; i < h->sites_cap; i++)
        if (h->sites[i] != NULL && h->sites[i]->live > 0)
            nsites++;
    size_t size = sizeof(struct rcgc__snapbox) + h->ntypes * sizeof(rcgc_census_entry) +
                  nsites * sizeof(rcgc__site_entry);
    struct rcgc__snapbox *b = rcgc__malloc(h, size);
    if (b == NULL)
        return RCGC_ENOMEM;
    memset(b, 0, sizeof *b);
    b->size = size;
    rcgc__snapshot *s = &b->s;
    rcgc_census_entry *types = (rcgc_census_entry *)(void *)(b + 1);
    rcgc__site_entry *sites = (rcgc__site_entry *)(void *)(types + h->ntypes);
    s->serial = ++h->snap_serial;
    s->time_ns = rcgc__now_ns();
    (void)rcgc_malloc_stats_get(h, &s->malloc);
    (void)rcgc_tracemalloc_get_status(h, &s->tracing);
    memcpy(s->count, h->count, sizeof s->count);
    memcpy(s->threshold, h->threshold, sizeof s->threshold);
    for (int g = 0; g < 3; g++)
        s->generation_size[g] = rcgc__olist_size(&h->lists[g]);
    s->frozen = rcgc__olist_size(&h->lists[RCGC__L_PERM]);
    s->untracked = rcgc__olist_size(&h->lists[RCGC__L_UNTRACKED]);
    s->garbage = h->garbage_len;
    s->enabled = h->enabled;
    s->debug = h->debug;
    memcpy(s->stats, h->stats, sizeof s->stats);
    rcgc__census_fill(h, types);
    for (size_t i = 0; i < h->ntypes; i++) {
        s->objects += types[i].count;
        s->bytes += types[i].bytes;
    }
    s->ntypes = h->ntypes;
    s->types = types;
    size_t k = 0;
    for (size_t i = 0; i < h->sites_cap; i++) {
        const rcgc__site *st = h->sites[i];
        if (st != NULL && st->live > 0)
            sites[k++] = (rcgc__site_entry){st->type, st->file, st->line, st->live,
                                            rcgc__site_bytes(st)};
    }
    s->nsites = k;
    s->sites = sites;

    struct rcgc__snapbox *old = atomic_exchange(&h->snap, b);
    if (old != NULL) {
        old->retired_next = h->retired;
        h->retired = old;
    }
    if (atomic_load(&h->snap_readers) == 0)
        snap_free_retired(h);
    h->snap_time_ns = s->time_ns;
    return 0;
}

int rcgc__snapshot_read(const char *name, int (*fn)(const rcgc__snapshot *s, void *arg),
                        void *arg)
{
    static const rcgc__snapshot empty;
    pthread_mutex_lock(&g_lock);
    rcgc_heap *h = name ? find_locked(name) : NULL;
    if (h == NULL) {
        pthread_mutex_unlock(&g_lock);
        return RCGC_ENOENT;
    }
    atomic_fetch_add(&h->snap_readers, 1);
    struct rcgc__snapbox *b = atomic_load(&h->snap);
    int r = fn(b != NULL ? &b->s : &empty, arg);
    atomic_fetch_sub(&h->snap_readers, 1);
    pthread_mutex_unlock(&g_lock);
    return r;
}

/* Publishes when an inspector is attached and the newest snapshot is older than
 * RCGC__SNAP_PERIOD_NS (collections can come every few microseconds). */
#define RCGC__SNAP_PERIOD_NS 50000000u

void rcgc__snapshot_maybe(rcgc_heap *h, bool force)
{
    if (!atomic_load_explicit(&g_inspected, memory_order_relaxed))
        return;
    if (!force && rcgc__now_ns() - h->snap_time_ns < RCGC__SNAP_PERIOD_NS)
        return;
    (void)rcgc__snapshot_publish(h);
}

/* ---- calls at safepoints ---- */

void rcgc__serve(rcgc_heap *h)
{
    if (h->collecting || h->walking || h->dealloc_depth > 0)
        return; /* not a consistent point: the next safepoint serves it */
    pthread_mutex_lock(&g_lock);
    struct rcgc__request *req = h->mail;
    if (req == NULL) {
        pthread_mutex_unlock(&g_lock);
        return;
    }
    h->mail = NULL;
    atomic_store_explicit(&h->mail_flag, false, memory_order_relaxed);
    req->state = REQ_RUNNING;
    pthread_mutex_unlock(&g_lock);

    if (req->mutate) {
        req->fn(h, req->arg);
    } else {
        h->walking++; /* a read-only call may walk: no collection may start under it */
        req->fn(h, req->arg);
        h->walking--;
    }

    pthread_mutex_lock(&g_lock);
    req->state = REQ_DONE;
    pthread_cond_signal(&req->cv);
    pthread_cond_broadcast(&g_changed);
    pthread_mutex_unlock(&g_lock);
}

void rcgc_safepoint(rcgc_heap *h)
{
    if (h == NULL)
        return;
    if (atomic_load_explicit(&h->mail_flag, memory_order_relaxed))
        rcgc__serve(h);
    rcgc__snapshot_maybe(h, false);
}

/* Runs fn on this thread while the owner keeps the heap released. Pre: g_lock held,
 * h->released && !h->borrowed. Post: g_lock held. */
static void borrow_and_run(rcgc_heap *h, void (*fn)(rcgc_heap *, void *), void *arg)
{
    h->borrowed = true;
    pthread_mutex_unlock(&g_lock);
    h->walking++;
    fn(h, arg);
    h->walking--;
    pthread_mutex_lock(&g_lock);
    h->borrowed = false;
    pthread_cond_broadcast(&g_changed);
}

static void deadline_of(struct timespec *ts, uint64_t timeout_ns)
{
    clock_gettime(CLOCK_REALTIME, ts);
    uint64_t ns = (uint64_t)ts->tv_nsec + timeout_ns % 1000000000u;
    ts->tv_sec += (time_t)(timeout_ns / 1000000000u + ns / 1000000000u);
    ts->tv_nsec = (long)(ns % 1000000000u);
}

static int heap_call(const char *name, void (*fn)(rcgc_heap *h, void *arg), void *arg,
                     uint64_t timeout_ns, bool mutate)
{
    if (name == NULL || fn == NULL)
        return RCGC_EINVAL;
    struct timespec deadline;
    deadline_of(&deadline, timeout_ns);
    struct rcgc__request req = {fn, arg, mutate, REQ_QUEUED, PTHREAD_COND_INITIALIZER};
    int rc = 0;
    pthread_mutex_lock(&g_lock);
    rcgc_heap *h;
    /* Wait for the heap's mailbox to be free (one call at a time per heap). */
    for (;;) {
        h = find_locked(name);
        if (h == NULL) {
            rc = RCGC_ENOENT;
            goto out;
        }
        if (!h->released && pthread_equal(h->owner, pthread_self())) {
            rc = RCGC_EBUSY;
            goto out;
        }
        if (!mutate && h->released && !h->borrowed) {
            borrow_and_run(h, fn, arg);
            goto out;
        }
        if (h->mail == NULL && !h->borrowed)
            break;
        if (pthread_cond_timedwait(&g_changed, &g_lock, &deadline) == ETIMEDOUT) {
            rc = RCGC_ETIMEDOUT;
            goto out;
        }
    }
    h->mail = &req;
    atomic_store_explicit(&h->mail_flag, true, memory_order_relaxed);
    while (req.state == REQ_QUEUED || req.state == REQ_RUNNING) {
        if (!mutate && req.state == REQ_QUEUED && h->released && !h->borrowed) {
            /* The owner released the heap meanwhile: take the call back, run it here. */
            h->mail = NULL;
            atomic_store_explicit(&h->mail_flag, false, memory_order_relaxed);
            borrow_and_run(h, fn, arg);
            goto out;
        }
        int w = req.state == REQ_RUNNING ? pthread_cond_wait(&req.cv, &g_lock)
                                         : pthread_cond_timedwait(&req.cv, &g_lock, &deadline);
        if (w == ETIMEDOUT && req.state == REQ_QUEUED) {
            h->mail = NULL;
            atomic_store_explicit(&h->mail_flag, false, memory_order_relaxed);
            pthread_cond_broadcast(&g_changed);
            rc = RCGC_ETIMEDOUT;
            goto out;
        }
        /* RUNNING: the owner is in fn, which uses our arg: wait for it to finish. */
    }
    rc = req.state == REQ_DONE ? 0 : RCGC_ENOENT;
out:
    pthread_mutex_unlock(&g_lock);
    pthread_cond_destroy(&req.cv);
    return rc;
}

int rcgc__heap_call(const char *name, void (*fn)(rcgc_heap *h, void *arg), void *arg,
                    uint64_t timeout_ns)
{
    return heap_call(name, fn, arg, timeout_ns, false);
}

int rcgc__heap_call_owner(const char *name, void (*fn)(rcgc_heap *h, void *arg), void *arg,
                          uint64_t timeout_ns)
{
    return heap_call(name, fn, arg, timeout_ns, true);
}

/* ---- release and acquire ---- */

void rcgc_heap_release(rcgc_heap *h)
{
    if (h == NULL)
        return;
    rcgc__snapshot_maybe(h, true);
    pthread_mutex_lock(&g_lock);
    h->released = true;
    if (h->mail != NULL)
        pthread_cond_signal(&h->mail->cv); /* its caller may now run it itself */
    pthread_mutex_unlock(&g_lock);
}

void rcgc_heap_acquire(rcgc_heap *h)
{
    if (h == NULL)
        return;
    pthread_mutex_lock(&g_lock);
    while (h->borrowed)
        pthread_cond_wait(&g_changed, &g_lock);
    h->released = false;
    h->owner = pthread_self();
    pthread_mutex_unlock(&g_lock);
}
