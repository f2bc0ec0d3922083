/* demo.c: a small document store whose memory rcgc manages, leaking the three ways
 * programs built on reference counting leak.
 *
 *  1. Cycles: each document points at its section list and every section back at its
 *     document. Reference counting alone never frees them; the collector does.
 *  2. A cache that grows without bound: every request's rendered page stays in it.
 *  3. A cycle through objects with a legacy finalizer (like CPython's tp_del): the
 *     collector cannot know the order to finalize them in, so it parks them, with
 *     everything they reach, in the garbage list.
 *
 * It runs a few rounds of "requests", the last with DEBUG_STATS and DEBUG_UNCOLLECTABLE
 * on and one more with DEBUG_COLLECTABLE, so the collector prints CPython's lines, then
 * prints the census and what is in the
 * garbage list. With --serve it goes on serving requests under the inspection server
 * and its dashboard.
 *
 * Allocation tracing (<rcgc/tracemalloc.h>) is on from the start: exact, 8 frames deep;
 * `--trace-sample BYTES` samples one allocation per BYTES bytes instead, `--no-trace`
 * leaves it off. Pages are rendered from two call paths (a request, a search), so that
 * statistics by traceback tell them apart. */
#define _POSIX_C_SOURCE 200809L

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rcgc/rcgc.h>
#include <rcgc/tracemalloc.h>
#ifdef RCGC_DEMO_INSPECT
#include <rcgc/inspect.h>
#endif

#define DEMO_TRACE_FRAMES 8

/* ---- types ---- */

typedef struct document document;
typedef struct section {
    document *doc; /* strong: a back reference, so every document is a cycle */
    char title[32];
} section;

struct document {
    section *sections[4];
    size_t nsections;
    char name[32];
};

static int visit_section(void *self, rcgc_visit_fn visit, void *arg)
{
    section *s = self;
    return s->doc ? visit(s->doc, arg) : 0;
}

static void clear_section(void *self)
{
    section *s = self;
    document *d = s->doc;
    s->doc = NULL;
    rcgc_xdecref(d);
}

static int visit_document(void *self, rcgc_visit_fn visit, void *arg)
{
    document *d = self;
    for (size_t i = 0; i < d->nsections; i++) {
        int r = d->sections[i] ? visit(d->sections[i], arg) : 0;
        if (r != 0)
            return r;
    }
    return 0;
}

static void clear_document(void *self)
{
    document *d = self;
    for (size_t i = 0; i < d->nsections; i++) {
        section *s = d->sections[i];
        d->sections[i] = NULL;
        rcgc_xdecref(s);
    }
    d->nsections = 0;
}

static const rcgc_type section_type = {
    .name = "Section",
    .size = sizeof(section),
    .traverse = visit_section,
    .clear = clear_section,
    .dealloc = clear_section,
};
static const rcgc_type document_type = {
    .name = "Document",
    .size = sizeof(document),
    .traverse = visit_document,
    .clear = clear_document,
    .dealloc = clear_document,
};

/* A rendered page: a leaf (no references), kept by the cache. */
static const rcgc_type page_type = {.name = "Page", .size = 256};

/* A record: a plain leaf object. `--extra N` keeps N of them alive for the whole run (a
 * large, steady population for the dashboard's tests); none by default. */
static const rcgc_type record_type = {.name = "Record", .size = 32};

/* A session with a legacy finalizer (closes a connection in an order-dependent way).
 * Two sessions that point at each other form an uncollectable cycle. */
typedef struct session {
    struct session *peer;
    int id;
} session;

static int visit_session(void *self, rcgc_visit_fn visit, void *arg)
{
    session *s = self;
    return s->peer ? visit(s->peer, arg) : 0;
}

static void clear_session(void *self)
{
    session *s = self;
    session *p = s->peer;
    s->peer = NULL;
    rcgc_xdecref(p);
}

static void session_del(void *self)
{
    printf("  session %d closed\n", ((session *)self)->id);
}

static const rcgc_type session_type = {
    .name = "Session",
    .size = sizeof(session),
    .traverse = visit_session,
    .clear = clear_session,
    .legacy_del = session_del,
    .dealloc = clear_session,
};

/* ---- the "application" ---- */

typedef struct {
    void **pages;
    size_t len, cap;
} cache;

static int cache_put(cache *c, void *page)
{
    if (c->len == c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 16;
        void **p = realloc(c->pages, ncap * sizeof *p);
        if (p == NULL)
            return -1;
        c->pages = p;
        c->cap = ncap;
    }
    c->pages[c->len++] = page; /* steals: the bug is that nothing ever evicts */
    return 0;
}

static document *open_document(rcgc_heap *h, int n)
{
    document *d = rcgc_new(h, &document_type);
    if (d == NULL)
        return NULL;
    snprintf(d->name, sizeof d->name, "doc-%d", n);
    for (size_t i = 0; i < 3; i++) {
        section *s = rcgc_new(h, &section_type);
        if (s == NULL)
            break;
        snprintf(s->title, sizeof s->title, "section %zu", i);
        rcgc_incref(d);
        s->doc = d;
        d->sections[d->nsections++] = s;
    }
    return d;
}

/* Renders a page into the cache (which keeps it for ever). */
static void render_page(rcgc_heap *h, cache *c)
{
    void *page = rcgc_new(h, &page_type);
    if (page != NULL && cache_put(c, page) != 0)
        rcgc_decref(page);
}

/* A search renders a results page: the same allocation site from another caller. */
static void handle_search(rcgc_heap *h, cache *c)
{
    render_page(h, c);
}

static void handle_request(rcgc_heap *h, cache *c, int n)
{
    document *d = open_document(h, n);
    if (d == NULL)
        return;
    render_page(h, c);
    if (n % 4 == 0)
        handle_search(h, c);
    if (n % 50 == 7)
        rcgc_incref(d); /* the bug: a reference nobody will ever drop (forgotten C ref) */
    rcgc_decref(d);     /* the document and its sections are now a garbage cycle */
    if (n % 25 == 0) {
        session *a = rcgc_new(h, &session_type), *b = rcgc_new(h, &session_type);
        if (a && b) {
            a->id = n;
            b->id = n + 1;
            rcgc_incref(b);
            a->peer = b;
            rcgc_incref(a);
            b->peer = a;
        }
        rcgc_xdecref(a);
        rcgc_xdecref(b);
    }
}

static int print_census(const rcgc_census_entry *e, void *arg)
{
    (void)arg;
    printf("  %-10s %8zu objects %10zu bytes%s\n", e->name, e->count, e->bytes,
           e->tracked ? "" : "  (not tracked)");
    return 0;
}

#ifdef RCGC_DEMO_INSPECT
static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

/* Serves the inspector while requests keep leaking, until SIGINT/SIGTERM or `seconds`
 * have passed (0: forever). Returns the exit status. */
static int serve(rcgc_heap *h, cache *c, int first, long seconds)
{
    /* Address and token from the environment (default 127.0.0.1:7070); control on for a
     * local demo unless RCGC_INSPECT_CONTROL says otherwise. */
    rcgc_inspect_options o = {.allow_control = getenv("RCGC_INSPECT_CONTROL") ? -1 : 1};
    int rc = rcgc_inspect_start(&o);
    if (rc == RCGC_EBUSY)
        rc = 0; /* RCGC_INSPECT in the environment started it before main */
    if (rc != 0) {
        fprintf(stderr, "demo: the inspector did not start (%d)\n", rc);
        return 1;
    }
    printf("inspector: http://127.0.0.1:%d/  (open it in a browser: the dashboard; or curl "
           "http://127.0.0.1:%d/v1/heaps/demo)\n",
           rcgc_inspect_port(), rcgc_inspect_port());
    printf("serving requests that leak, %s; Ctrl-C stops\n",
           seconds > 0 ? "for a while" : "until stopped");
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    time_t end = seconds > 0 ? time(NULL) + seconds : 0;
    rcgc_set_debug(h, 0);
    for (int n = first; !g_stop && (end == 0 || time(NULL) < end); n++) {
        handle_request(h, c, n); /* allocations are safepoints */
        rcgc_safepoint(h);
        struct timespec ts = {0, 5 * 1000 * 1000};
        rcgc_heap_release(h); /* idle while sleeping: the inspector may walk the heap */
        nanosleep(&ts, NULL);
        rcgc_heap_acquire(h);
    }
    rcgc_inspect_stop();
    return 0;
}
#endif

int main(int argc, char **argv)
{
    int rounds = argc > 1 && argv[1][0] != '-' ? atoi(argv[1]) : 3;
    long serve_seconds = -1; /* -1: do not serve */
    long extra = 0;          /* --extra N: N Records kept alive */
    long trace_sample = 0;   /* --trace-sample BYTES: sampled tracing; 0: exact */
    bool trace = true;       /* --no-trace: no tracing */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--serve") == 0)
            serve_seconds = i + 1 < argc ? atol(argv[i + 1]) : 0;
        else if (strcmp(argv[i], "--extra") == 0 && i + 1 < argc)
            extra = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--trace-sample") == 0 && i + 1 < argc)
            trace_sample = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--no-trace") == 0)
            trace = false;
    }
    if (trace_sample < 0) {
        fprintf(stderr, "demo: --trace-sample needs a positive number of bytes\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0); /* interleave with the collector's stderr lines */
    rcgc_heap *h = rcgc_heap_new("demo");
    if (h == NULL) {
        fprintf(stderr, "demo: out of memory\n");
        return 1;
    }
    printf("rcgc %s demo: a document store that leaks three ways\n", rcgc_version());
    if (trace) {
        int tr = trace_sample > 0 ? rcgc_tracemalloc_start_sampled(h, DEMO_TRACE_FRAMES,
                                                                   (size_t)trace_sample)
                                  : rcgc_tracemalloc_start(h, DEMO_TRACE_FRAMES);
        if (tr != 0)
            fprintf(stderr, "demo: tracing did not start: %s\n", rcgc_strerror(tr));
        else if (trace_sample > 0)
            printf("tracing allocations: one sample per %ld bytes, %d frames\n", trace_sample,
                   DEMO_TRACE_FRAMES);
        else
            printf("tracing allocations: every one, %d frames\n", DEMO_TRACE_FRAMES);
    }
    cache c = {0};
    void **records = extra > 0 ? calloc((size_t)extra, sizeof *records) : NULL;
    if (extra > 0 && records == NULL) {
        fprintf(stderr, "demo: out of memory\n");
        rcgc_heap_free(h);
        return 1;
    }
    for (long i = 0; i < extra; i++)
        records[i] = rcgc_new(h, &record_type);
    if (extra > 0)
        printf("%ld extra Record objects kept alive\n", extra);
    rcgc_set_threshold(h, 500, 10, 10);
    for (int r = 0; r < rounds; r++) {
        printf("round %d: 100 requests\n", r + 1);
        rcgc_set_debug(h, r == rounds - 1 ? RCGC_DEBUG_STATS | RCGC_DEBUG_UNCOLLECTABLE : 0);
        for (int i = 0; i < 100; i++)
            handle_request(h, &c, r * 100 + i);
        fflush(stdout);
        ssize_t n = rcgc_collect(h, 2);
        fflush(stderr);
        printf("round %d: full collection found %zd unreachable objects\n", r + 1, n);
    }
    printf("one more request, collected with DEBUG_COLLECTABLE:\n");
    fflush(stdout);
    rcgc_set_debug(h, RCGC_DEBUG_COLLECTABLE);
    handle_request(h, &c, rounds * 100 + 1);
    (void)rcgc_collect(h, 0);
    fflush(stderr);
    printf("census (live objects by type):\n");
    rcgc_census(h, print_census, NULL);
    printf("garbage list: %zu uncollectable objects (Session cycles with legacy_del)\n",
           rcgc_garbage_count(h));
    printf("page cache: %zu pages that nothing ever evicts\n", c.len);
    int status = 0;
    if (serve_seconds >= 0) {
#ifdef RCGC_DEMO_INSPECT
        status = serve(h, &c, rounds * 100 + 2, serve_seconds);
#else
        fprintf(stderr, "demo: built without the inspector (librcgc-inspect)\n");
        status = 1;
#endif
    }
    rcgc_set_debug(h, RCGC_DEBUG_UNCOLLECTABLE);
    for (size_t i = 0; i < c.len; i++)
        rcgc_decref(c.pages[i]);
    free(c.pages);
    for (long i = 0; i < extra; i++)
        rcgc_xdecref(records[i]);
    free(records);
    rcgc_heap_free(h);
    return status;
}
