/* heap.c: heap lifecycle, the heap's allocator, settings and the garbage list.
 *
 * Everything the collector knows hangs off rcgc_heap; the only process-wide state is the
 * fallback panic hook. rcgc_heap_free runs the final collection, reports what survives
 * and then releases every block the heap ever handed out. */
#include "internal.h"

#include <stdarg.h>
#include <stdlib.h>
#include <time.h>

/* ---- version and errors ---- */

const char *rcgc_version(void)
{
    return RCGC_VERSION_STRING;
}

unsigned rcgc_version_hex(void)
{
    return RCGC_VERSION_HEX;
}

const char *rcgc_strerror(int code)
{
    switch (code) {
    case 0:
        return "success";
    case RCGC_EINVAL:
        return "invalid argument";
    case RCGC_ENOMEM:
        return "out of memory";
    case RCGC_ENOENT:
        return "not found";
    case RCGC_EBUSY:
        return "busy: not allowed in this state";
    case RCGC_ETIMEDOUT:
        return "timed out";
    case RCGC_EIO:
        return "input/output error";
    default:
        return "unknown error";
    }
}

/* ---- memory through the heap's hooks ---- */

static void *libc_malloc(size_t size, void *ctx)
{
    (void)ctx;
    return malloc(size);
}

static void *libc_realloc(void *p, size_t old_size, size_t new_size, void *ctx)
{
    (void)ctx;
    (void)old_size;
    return realloc(p, new_size);
}

static void libc_free(void *p, size_t size, void *ctx)
{
    (void)ctx;
    (void)size;
    free(p);
}

const rcgc_allocator rcgc__libc_allocator = {libc_malloc, libc_realloc, libc_free, NULL};

void *rcgc__malloc(rcgc_heap *h, size_t size)
{
    return h->alloc.malloc(size, h->alloc.ctx);
}

void *rcgc__realloc(rcgc_heap *h, void *p, size_t old_size, size_t new_size)
{
    if (p == NULL)
        return h->alloc.malloc(new_size, h->alloc.ctx);
    return h->alloc.realloc(p, old_size, new_size, h->alloc.ctx);
}

void rcgc__free(rcgc_heap *h, void *p, size_t size)
{
    if (p != NULL)
        h->alloc.free(p, size, h->alloc.ctx);
}

int rcgc__grow(rcgc_heap *h, void **items, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap < 8 ? 8 : *cap;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2 / elem)
            return RCGC_ENOMEM;
        ncap *= 2;
    }
    void *p = rcgc__realloc(h, *items, *cap * elem, ncap * elem);
    if (p == NULL)
        return RCGC_ENOMEM;
    *items = p;
    *cap = ncap;
    return 0;
}

uint64_t rcgc__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- panic ---- */

static rcgc_panic_fn g_panic; /* process-wide fallback: set rarely, read on misuse */
static void *g_panic_arg;

void rcgc_set_panic_hook(rcgc_panic_fn fn, void *arg)
{
    g_panic = fn;
    g_panic_arg = arg;
}

void rcgc__panic(rcgc_heap *h, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (h != NULL && h->panic != NULL) {
        h->panic(h, msg, h->panic_arg);
        return;
    }
    if (g_panic != NULL) {
        g_panic(h, msg, g_panic_arg);
        return;
    }
    fprintf(stderr, "rcgc: fatal: %s\n", msg);
    fflush(stderr);
    abort();
}

/* ---- creation ---- */

rcgc_heap *rcgc_heap_new(const char *name)
{
    rcgc_heap_options o = {.name = name};
    return rcgc_heap_new_with(&o);
}

rcgc_heap *rcgc_heap_new_with(const rcgc_heap_options *opts)
{
    rcgc_heap_options none = {0};
    if (opts == NULL)
        opts = &none;
    rcgc_allocator a = rcgc__libc_allocator;
    if (opts->allocator != NULL) {
        if (!opts->allocator->malloc || !opts->allocator->realloc || !opts->allocator->free)
            return NULL;
        a = *opts->allocator;
    }
    rcgc_heap *h = a.malloc(sizeof *h, a.ctx);
    if (h == NULL)
        return NULL;
    memset(h, 0, sizeof *h);
    h->alloc = a;
    rcgc__pools_init(h, opts->allocator != NULL, opts->disable_pools);
    const char *name = opts->name ? opts->name : "heap";
    size_t n = strlen(name) + 1;
    h->name = rcgc__malloc(h, n);
    if (h->name == NULL) {
        a.free(h, sizeof *h, a.ctx);
        return NULL;
    }
    memcpy(h->name, name, n);
    h->panic = opts->panic;
    h->panic_arg = opts->panic_arg;
    h->enabled = true;
    h->threshold[0] = 700;
    h->threshold[1] = 10;
    h->threshold[2] = 10;
    for (unsigned i = 0; i < RCGC__NLISTS; i++)
        h->lists[i].len = h->lists[i].cap = 0;
    rcgc__gen2_settle(h); /* long-lived pool objects are resident from the start */
    if (!opts->ignore_environment)
        rcgc__read_environment(h);
    if (opts->set_threshold)
        memcpy(h->threshold, opts->threshold, sizeof h->threshold);
    if (!opts->ignore_environment)
        rcgc__trace_environment(h);
    atomic_init(&h->mail_flag, false);
    atomic_init(&h->snap, NULL);
    atomic_init(&h->snap_readers, 0u);
    rcgc__registry_add(h);
    return h;
}

const char *rcgc_heap_name(const rcgc_heap *h)
{
    return h ? h->name : NULL;
}

/* ---- destruction ---- */

static void report_shutdown(rcgc_heap *h)
{
    if (h->garbage_len > 0 && !(h->debug & RCGC_DEBUG_SAVEALL)) {
        if (h->debug & RCGC_DEBUG_UNCOLLECTABLE) {
            fprintf(stderr, "rcgc: %zu uncollectable objects at shutdown\n      [",
                    h->garbage_len);
            for (size_t i = 0; i < h->garbage_len; i++)
                fprintf(stderr, "%s<%s %p>", i ? ", " : "", rcgc__type(h->garbage[i])->name,
                        h->garbage[i]);
            fprintf(stderr, "]\n");
        } else {
            fprintf(stderr,
                    "rcgc: %zu uncollectable objects at shutdown; use "
                    "RCGC_DEBUG_UNCOLLECTABLE to list them\n",
                    h->garbage_len);
        }
    }
    /* Frozen objects are meant to live forever; the garbage list was reported above. */
    size_t not_counted = rcgc__olist_size(&h->lists[RCGC__L_PERM]);
    for (size_t i = 0; i < h->garbage_len; i++)
        if (rcgc__list_of(h->garbage[i]) != RCGC__L_PERM)
            not_counted++;
    size_t nobjects = rcgc__nobjects(h);
    size_t alive = nobjects > not_counted ? nobjects - not_counted : 0;
    if (alive > 0 && !(h->debug & RCGC_DEBUG_SAVEALL)) {
        fprintf(stderr,
                "rcgc: heap \"%s\" freed with %zu objects still alive (by type, "
                "garbage list included: ",
                h->name, alive);
        size_t shown = 0;
        for (size_t i = 0; i < h->ntypes && shown < 8; i++) {
            size_t live = rcgc__type_live(h, h->types[i]->type, NULL);
            if (live == 0)
                continue;
            fprintf(stderr, "%s%s: %zu", shown ? ", " : "", h->types[i]->type->name, live);
            shown++;
        }
        fprintf(stderr, ")\n");
    }
    fflush(stderr);
}

static int release_resident(void *obj, void *arg)
{
    rcgc_heap *h = arg;
    h->lists[RCGC__L_GEN2].resident--;
    rcgc__object_release(h, obj);
    return 0;
}

void rcgc_heap_free(rcgc_heap *h)
{
    if (h == NULL)
        return;
    if (h->collecting || h->walking || h->dealloc_depth > 0) {
        /* Freeing the heap under a running collection, walk or death would pull the
         * memory from under the caller's own stack frames. */
        rcgc__panic(h, "rcgc_heap_free(\"%s\") called from inside a callback: ignored",
                    h->name);
        return;
    }
    rcgc__registry_remove(h); /* from now on no other thread can reach the heap */
    (void)rcgc__collect(h, 2, true);
    report_shutdown(h);
    /* Every object goes; emptied arenas stay until pools_destroy, so the scan of the
     * residents never reads an arena that was given back. */
    h->pools.destroying = true;
    (void)rcgc__residents_each(h, release_resident, h);
    for (unsigned i = 0; i < RCGC__NLISTS; i++) {
        rcgc__olist *l = &h->lists[i];
        for (uint32_t j = 0; j < l->len; j++)
            if (l->items[j] != NULL)
                rcgc__object_release(h, l->items[j]);
        rcgc__free(h, l->items, l->cap * sizeof(void *));
    }
    rcgc__free(h, h->trash, h->trash_cap * sizeof(void *));
    rcgc__free(h, h->garbage, h->garbage_cap * sizeof(void *));
    rcgc__wtab_free(h);
    rcgc__trace_heap_free(h);
    rcgc__sites_free(h);
    rcgc__hooks_free(h, &h->callbacks);
    rcgc__hooks_free(h, &h->event_hooks);
    rcgc__pools_destroy(h);
    rcgc__free(h, h->name, strlen(h->name) + 1);
    rcgc_allocator a = h->alloc;
    a.free(h, sizeof *h, a.ctx);
}

/* ---- settings and counters ---- */

void rcgc_get_count(const rcgc_heap *h, size_t count[3])
{
    memcpy(count, h->count, sizeof h->count);
}

void rcgc_set_threshold(rcgc_heap *h, size_t t0, size_t t1, size_t t2)
{
    h->threshold[0] = t0;
    h->threshold[1] = t1;
    h->threshold[2] = t2;
}

void rcgc_get_threshold(const rcgc_heap *h, size_t t[3])
{
    memcpy(t, h->threshold, sizeof h->threshold);
}

void rcgc_enable(rcgc_heap *h)
{
    h->enabled = true;
}

void rcgc_disable(rcgc_heap *h)
{
    h->enabled = false;
}

bool rcgc_is_enabled(const rcgc_heap *h)
{
    return h->enabled;
}

void rcgc_get_stats(const rcgc_heap *h, rcgc_gen_stats out[3])
{
    memcpy(out, h->stats, sizeof h->stats);
}

void rcgc_set_debug(rcgc_heap *h, unsigned flags)
{
    h->debug = flags;
}

unsigned rcgc_get_debug(const rcgc_heap *h)
{
    return h->debug;
}

/* ---- the garbage list ---- */

size_t rcgc_garbage_count(const rcgc_heap *h)
{
    return h->garbage_len;
}

void *rcgc_garbage_get(rcgc_heap *h, size_t i)
{
    return i < h->garbage_len ? h->garbage[i] : NULL;
}

int rcgc_garbage_remove(rcgc_heap *h, void *obj)
{
    for (size_t i = 0; i < h->garbage_len; i++) {
        if (h->garbage[i] != obj)
            continue;
        memmove(&h->garbage[i], &h->garbage[i + 1], (h->garbage_len - i - 1) * sizeof(void *));
        h->garbage_len--;
        rcgc_decref(obj);
        return 0;
    }
    return RCGC_ENOENT;
}

void rcgc_garbage_clear(rcgc_heap *h)
{
    /* Entries are released one by one from the end, so that a decref that re-enters
     * (a finalizer appending to or reading the list) always sees a consistent list. */
    while (h->garbage_len > 0) {
        void *obj = h->garbage[--h->garbage_len];
        rcgc_decref(obj);
    }
}
