/* debug.c: what a collection tells the world: CPython's DEBUG lines on stderr, event
 * hooks carrying the same facts as data, gc callbacks, and the RCGC_DEBUG /
 * RCGC_THRESHOLD environment variables.
 *
 * Hook lists may change while they run (a callback that removes itself): removal then
 * leaves a hole that is squeezed out when the outermost run ends. */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>

/* ---- registrations ---- */

static int hooks_add(rcgc_heap *h, rcgc__hooks *hs, void (*fn)(void), void *arg)
{
    if (h == NULL || fn == NULL)
        return RCGC_EINVAL;
    if (rcgc__grow(h, (void **)&hs->items, &hs->cap, hs->len + 1, sizeof(rcgc__hook)) != 0)
        return RCGC_ENOMEM;
    hs->items[hs->len].fn = fn;
    hs->items[hs->len].arg = arg;
    hs->len++;
    return 0;
}

static void hooks_compact(rcgc__hooks *hs)
{
    size_t j = 0;
    for (size_t i = 0; i < hs->len; i++)
        if (hs->items[i].fn != NULL)
            hs->items[j++] = hs->items[i];
    hs->len = j;
    hs->holes = 0;
}

static int hooks_remove(rcgc_heap *h, rcgc__hooks *hs, void (*fn)(void), void *arg)
{
    if (h == NULL || fn == NULL)
        return RCGC_EINVAL;
    for (size_t i = 0; i < hs->len; i++) {
        if (hs->items[i].fn != fn || hs->items[i].arg != arg)
            continue;
        hs->items[i].fn = NULL;
        hs->holes++;
        if (hs->running == 0)
            hooks_compact(hs);
        return 0;
    }
    return RCGC_ENOENT;
}

void rcgc__hooks_free(rcgc_heap *h, rcgc__hooks *hs)
{
    rcgc__free(h, hs->items, hs->cap * sizeof(rcgc__hook));
    memset(hs, 0, sizeof *hs);
}

/* Function pointers are converted through void (*)(void), which C allows round-trip. */
int rcgc_add_callback(rcgc_heap *h, rcgc_callback_fn fn, void *arg)
{
    return hooks_add(h, h ? &h->callbacks : NULL, (void (*)(void))fn, arg);
}

int rcgc_remove_callback(rcgc_heap *h, rcgc_callback_fn fn, void *arg)
{
    return hooks_remove(h, h ? &h->callbacks : NULL, (void (*)(void))fn, arg);
}

int rcgc_add_event_hook(rcgc_heap *h, rcgc_event_fn fn, void *arg)
{
    return hooks_add(h, h ? &h->event_hooks : NULL, (void (*)(void))fn, arg);
}

int rcgc_remove_event_hook(rcgc_heap *h, rcgc_event_fn fn, void *arg)
{
    return hooks_remove(h, h ? &h->event_hooks : NULL, (void (*)(void))fn, arg);
}

void rcgc__run_callbacks(rcgc_heap *h, int phase, const rcgc_collect_info *info)
{
    rcgc__hooks *hs = &h->callbacks;
    hs->running++;
    for (size_t i = 0; i < hs->len; i++) {
        rcgc__hook k = hs->items[i];
        if (k.fn != NULL)
            ((rcgc_callback_fn)k.fn)(h, phase, info, k.arg);
    }
    if (--hs->running == 0 && hs->holes > 0)
        hooks_compact(hs);
}

/* ---- events and the default sink ---- */

static void print_event(rcgc_heap *h, const rcgc_event *ev)
{
    switch (ev->kind) {
    case RCGC_EVENT_COLLECT_START:
        if (!(h->debug & RCGC_DEBUG_STATS))
            return;
        fprintf(stderr,
                "gc: collecting generation %d...\n"
                "gc: objects in each generation: %zu %zu %zu\n"
                "gc: objects in permanent generation: %zu\n",
                ev->generation, ev->count[0], ev->count[1], ev->count[2],
                rcgc__olist_size(&h->lists[RCGC__L_PERM]));
        break;
    case RCGC_EVENT_COLLECTABLE:
    case RCGC_EVENT_UNCOLLECTABLE:
        fprintf(stderr, "gc: %s <%s %p>\n",
                ev->kind == RCGC_EVENT_COLLECTABLE ? "collectable" : "uncollectable",
                ev->type->name, ev->object);
        break;
    case RCGC_EVENT_COLLECT_DONE:
        if (!(h->debug & RCGC_DEBUG_STATS))
            return;
        fprintf(stderr, "gc: done, %zu unreachable, %zu uncollectable, %.4fs elapsed\n",
                ev->unreachable, ev->uncollectable, (double)ev->duration_ns / 1e9);
        break;
    }
}

/* The sink and its argument travel together, so that a reader never pairs one sink with
 * another's argument. */
typedef struct sink {
    rcgc__event_sink_fn fn;
    void *arg;
    struct sink *next; /* every sink ever set: never freed, as a reader may hold one */
} sink;
static _Atomic(sink *) g_sink;
static sink *g_all_sinks;
static pthread_mutex_t g_sink_lock = PTHREAD_MUTEX_INITIALIZER;

void rcgc__set_event_sink(rcgc__event_sink_fn fn, void *arg)
{
    if (fn == NULL) {
        atomic_store(&g_sink, NULL);
        return;
    }
    /* Set a handful of times per process (inspector start/stop): a few bytes each. */
    pthread_mutex_lock(&g_sink_lock);
    sink *s = NULL;
    for (sink *k = g_all_sinks; k != NULL && s == NULL; k = k->next)
        if (k->fn == fn && k->arg == arg)
            s = k;
    if (s == NULL && (s = malloc(sizeof *s)) != NULL) {
        *s = (sink){fn, arg, g_all_sinks};
        g_all_sinks = s;
    }
    pthread_mutex_unlock(&g_sink_lock);
    if (s != NULL)
        atomic_store(&g_sink, s);
}

void rcgc__emit(rcgc_heap *h, const rcgc_event *ev)
{
    print_event(h, ev);
    sink *sk = atomic_load_explicit(&g_sink, memory_order_acquire);
    if (sk != NULL)
        sk->fn(h, h->name, ev, sk->arg);
    rcgc__hooks *hs = &h->event_hooks;
    if (hs->len == 0)
        return;
    hs->running++;
    for (size_t i = 0; i < hs->len; i++) {
        rcgc__hook k = hs->items[i];
        if (k.fn != NULL)
            ((rcgc_event_fn)k.fn)(h, ev, k.arg);
    }
    if (--hs->running == 0 && hs->holes > 0)
        hooks_compact(hs);
}

/* ---- environment ---- */

static unsigned debug_flag(const char *word, size_t n)
{
    static const struct {
        const char *name;
        unsigned flag;
    } names[] = {
        {"stats", RCGC_DEBUG_STATS},
        {"collectable", RCGC_DEBUG_COLLECTABLE},
        {"uncollectable", RCGC_DEBUG_UNCOLLECTABLE},
        {"saveall", RCGC_DEBUG_SAVEALL},
        {"leak", RCGC_DEBUG_LEAK},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i].name) == n && strncmp(names[i].name, word, n) == 0)
            return names[i].flag;
    return 0;
}

/* RCGC_DEBUG=stats,collectable,...: unknown words are reported and ignored. */
static void read_debug(rcgc_heap *h, const char *v)
{
    unsigned flags = 0;
    while (*v != '\0') {
        size_t n = strcspn(v, ", ");
        if (n > 0) {
            unsigned f = debug_flag(v, n);
            if (f == 0)
                fprintf(stderr, "rcgc: ignoring unknown RCGC_DEBUG flag '%.*s'\n", (int)n, v);
            flags |= f;
        }
        v += n;
        v += strspn(v, ", ");
    }
    h->debug |= flags;
}

/* RCGC_THRESHOLD=t0[,t1[,t2]]: all or nothing. */
static void read_threshold(rcgc_heap *h, const char *v)
{
    size_t t[3];
    memcpy(t, h->threshold, sizeof t);
    const char *p = v;
    for (int i = 0; i < 3; i++) {
        char *end;
        if (*p < '0' || *p > '9')
            goto bad;
        errno = 0;
        unsigned long long x = strtoull(p, &end, 10);
        if (end == p || errno == ERANGE || x > SIZE_MAX)
            goto bad;
        t[i] = (size_t)x;
        p = end;
        if (*p == '\0')
            break;
        if (*p != ',' || i == 2)
            goto bad;
        p++;
    }
    memcpy(h->threshold, t, sizeof t);
    return;
bad:
    fprintf(stderr, "rcgc: ignoring malformed RCGC_THRESHOLD '%s'\n", v);
}

void rcgc__read_environment(rcgc_heap *h)
{
    const char *v = getenv("RCGC_DEBUG");
    if (v != NULL && *v != '\0')
        read_debug(h, v);
    v = getenv("RCGC_THRESHOLD");
    if (v != NULL && *v != '\0')
        read_threshold(h, v);
}
