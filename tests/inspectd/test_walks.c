/* test_walks.c: what the walk endpoints mean, over real HTTP. A server runs in this
 * process on 127.0.0.1:0; each test builds, on a fresh heap "walks" owned by the main
 * thread, a graph it knows exactly (automatic collection off: collections happen only
 * where a test asks), then the main thread serves safepoints while a client thread sends
 * each request. Checked against protocol/README.md and the schemas:
 *  - objects: the type and generation filters, total, increasing id order, cursor
 *    pagination over many pages (also while objects are freed and made between pages),
 *    frozen and untracked objects left out, parameter errors;
 *  - object: type, size, refcount, generation / where / tracked / finalized, referents
 *    in traverse order and each once, referrers from tracked, untracked and frozen
 *    containers, the *_limit truncation and totals, weak references, refcount_explained
 *    (held by the heap only, an extra C reference, a missing incref, the garbage list);
 *  - path: the shortest chain from a root, a root itself, an object kept only by a
 *    cycle, roots held by the garbage list, a chain of 5000, the budget's bounds;
 *  - garbage: DEBUG_SAVEALL and legacy-finalizer garbage grouped by strongly connected
 *    component in reverse topological order, group members, types, referents' groups,
 *    limit / offset pagination and the other limits;
 *  - ids on every id route: malformed, zero, leading zero, too long, misaligned, stale,
 *    hex, another heap's object; unknown heaps.
 * Where the server once differed from the protocol, a test of its own names the rule it
 * checks (defaults and ranges of the garbage limits, hex ids, ...). */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <jansson.h>

#include <rcgc/inspect.h>
#include <rcgc/rcgc.h>

#include "http_client.h"

/* ---- the host's types: containers with numbered slots, and a leaf ---- */

#define NSLOTS 24

/* A container: slot[] holds strong references, visited in slot order. */
typedef struct box {
    void *slot[NSLOTS];
} box;

static int box_traverse(void *self, rcgc_visit_fn visit, void *arg)
{
    box *b = self;
    for (int i = 0; i < NSLOTS; i++)
        if (b->slot[i] != NULL) {
            int r = visit(b->slot[i], arg);
            if (r != 0)
                return r;
        }
    return 0;
}

static void box_clear(void *self)
{
    box *b = self;
    for (int i = 0; i < NSLOTS; i++) {
        void *child = b->slot[i];
        b->slot[i] = NULL;
        rcgc_xdecref(child);
    }
}

static void legacy_del_noop(void *self)
{
    (void)self;
}

static void finalize_noop(void *self)
{
    (void)self;
}

#define BOX_TYPE(tname)                                                                        \
    {                                                                                          \
        .name = tname, .size = sizeof(box), .traverse = box_traverse, .clear = box_clear,      \
        .dealloc = box_clear                                                                   \
    }

static const rcgc_type Item = BOX_TYPE("Item");   /* listing */
static const rcgc_type Other = BOX_TYPE("Other"); /* listing: another type */
static const rcgc_type Churn = BOX_TYPE("Churn"); /* pagination while the heap changes */
static const rcgc_type Parent = BOX_TYPE("Parent");
static const rcgc_type Child = BOX_TYPE("Child");
static const rcgc_type Ring = BOX_TYPE("Ring"); /* garbage groups */
static const rcgc_type Knot = BOX_TYPE("Knot");
static const rcgc_type Pair = BOX_TYPE("Pair");
static const rcgc_type Tail = BOX_TYPE("Tail");
static const rcgc_type Legacy = {.name = "Legacy",
                                 .size = sizeof(box),
                                 .traverse = box_traverse,
                                 .clear = box_clear,
                                 .legacy_del = legacy_del_noop,
                                 .dealloc = box_clear};
static const rcgc_type Fin = {.name = "Fin",
                              .size = sizeof(box),
                              .traverse = box_traverse,
                              .clear = box_clear,
                              .finalize = finalize_noop,
                              .dealloc = box_clear};
/* No traverse: never tracked, holds nothing. */
static const rcgc_type Blob = {.name = "Blob", .size = 40};

#define HEADER_SIZE 16
#define BOX_SIZE (HEADER_SIZE + sizeof(box))
#define BLOB_SIZE (HEADER_SIZE + 40)

/* ---- the host: a fresh heap per test, owned by the main thread ---- */

#define HEAP "walks"
#define W "/v1/heaps/" HEAP

static rcgc_heap *g_heap;  /* "walks" */
static rcgc_heap *g_other; /* a second heap, when a test makes one */
static void *g_held[2048]; /* the references the test's C code holds */
static size_t g_nheld;
static void *g_debt; /* an object whose refcount lacks one incref, until repaid */
static int g_panics;
static int g_port;
static int g_site_line; /* the line of the rcgc_new in make() */
/* Every answer a test parsed: borrowed by the test, released at teardown (so that a
 * failed assertion, which jumps out of the test, leaks nothing). */
static json_t *g_docs[1024];
static size_t g_ndocs;

static json_t *doc_keep(json_t *j)
{
    assert_true(g_ndocs < sizeof g_docs / sizeof g_docs[0]);
    g_docs[g_ndocs++] = j;
    return j;
}

static void docs_release(void)
{
    while (g_ndocs > 0)
        json_decref(g_docs[--g_ndocs]);
}

static void on_panic(rcgc_heap *h, const char *message, void *arg)
{
    (void)h;
    (void)arg;
    fprintf(stderr, "rcgc panic: %s\n", message);
    g_panics++; /* never assert here: cmocka would longjmp out of the library */
}

static rcgc_heap *heap_new(const char *name)
{
    rcgc_heap_options o = {.name = name, .ignore_environment = true, .panic = on_panic};
    rcgc_heap *h = rcgc_heap_new_with(&o);
    if (h != NULL)
        rcgc_disable(h); /* collections only when a test asks */
    return h;
}

/* Returns: a new object of type t in the test's heap (a new reference). */
static void *make(const rcgc_type *t)
{
    void *o = rcgc_new(g_heap, t);
    g_site_line = __LINE__ - 1; /* the line above: the site rcgc_new records */
    assert_non_null(o);
    return o;
}

/* The test's C code keeps o (the reference is released at teardown). */
static void *hold(void *o)
{
    assert_non_null(o);
    assert_true(g_nheld < sizeof g_held / sizeof g_held[0]);
    g_held[g_nheld++] = o;
    return o;
}

static void *held(const rcgc_type *t)
{
    return hold(make(t));
}

/* Drops the reference hold() kept (may free o). */
static void unhold(void *o)
{
    for (size_t i = 0; i < g_nheld; i++)
        if (g_held[i] == o) {
            g_held[i] = g_held[--g_nheld];
            rcgc_decref(o);
            return;
        }
    fail_msg("unhold: %p is not held", o);
}

/* from.slot[i] = to, with its own reference. */
static void link_to(void *from, int i, void *to)
{
    box *b = from;
    assert_null(b->slot[i]);
    rcgc_incref(to);
    b->slot[i] = to;
}

static int setup_group(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    rcgc_inspect_options o = {.address = "127.0.0.1:0"};
    if (rcgc_inspect_start(&o) != 0)
        return -1;
    g_port = rcgc_inspect_port();
    return g_port > 0 ? 0 : -1;
}

static int teardown_group(void **state)
{
    (void)state;
    rcgc_inspect_stop();
    return 0;
}

static int setup(void **state)
{
    (void)state;
    g_panics = 0;
    g_nheld = 0;
    g_debt = NULL;
    g_heap = heap_new(HEAP);
    return g_heap != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    if (g_debt != NULL) { /* a test failed before repaying the missing incref */
        rcgc_incref(g_debt);
        g_debt = NULL;
    }
    rcgc_set_debug(g_heap, 0);
    rcgc_unfreeze(g_heap);
    rcgc_garbage_clear(g_heap);
    while (g_nheld > 0)
        rcgc_decref(g_held[--g_nheld]);
    rcgc_heap_free(g_heap); /* its final collection frees the cycles left */
    g_heap = NULL;
    docs_release();
    if (g_other != NULL) {
        rcgc_heap_free(g_other);
        g_other = NULL;
    }
    if (g_panics != 0) {
        print_error("the collector reported %d panics\n", g_panics);
        return -1;
    }
    return 0;
}

/* ---- requests, served by the owner meanwhile ---- */

/* GET target on a client thread while this (owner) thread serves the safepoints of
 * every test heap. Returns: the status; *out holds the response (free it). */
static int get(const char *target, http_response *out)
{
    rcgc_heap *heaps[2] = {g_heap, g_other};
    int status = http_request_serving(g_port, "GET", target, NULL, NULL, heaps, 2, out);
    assert_true(status >= 0);
    return status;
}

/* GET the formatted target, any status. Returns: the status; *doc the JSON body
 * (borrowed until teardown, as every document below). */
__attribute__((format(printf, 2, 0))) static int vget_doc(json_t **doc, const char *fmt,
                                                          va_list ap)
{
    char target[512];
    int n = vsnprintf(target, sizeof target, fmt, ap);
    assert_true(n > 0 && (size_t)n < sizeof target);
    http_response r;
    int status = get(target, &r);
    json_error_t err;
    json_t *j = json_loadb(r.body, r.body_len, 0, &err);
    http_response_free(&r);
    if (j == NULL)
        print_error("GET %s: %d, not JSON: %s\n", target, status, err.text);
    assert_true(status != 0);
    assert_non_null(j);
    *doc = doc_keep(j);
    assert_int_equal(json_integer_value(json_object_get(j, "protocol")), 1);
    return status;
}

__attribute__((format(printf, 2, 3))) static int get_doc(json_t **doc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int status = vget_doc(doc, fmt, ap);
    va_end(ap);
    return status;
}

/* GET the formatted target and compare its status with want, printing the request when
 * they differ (so that one test reports every wrong case before failing).
 * Returns: 1 when the status is wrong, else 0; *doc the body. */
__attribute__((format(printf, 3, 4))) static int status_wrong(json_t **doc, int want,
                                                              const char *fmt, ...)
{
    char target[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(target, sizeof target, fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < sizeof target);
    int status = get_doc(doc, "%s", target);
    if (status != want)
        print_error("GET %s: %d, expected %d\n", target, status, want);
    return status != want;
}

/* GET the formatted target, expecting 200 with a JSON body. Returns: the document. */
__attribute__((format(printf, 1, 2))) static json_t *get_ok(const char *fmt, ...)
{
    json_t *j;
    va_list ap;
    va_start(ap, fmt);
    int status = vget_doc(&j, fmt, ap);
    va_end(ap);
    if (status != 200) {
        char *text = json_dumps(j, JSON_COMPACT);
        print_error("expected 200, got %d %s\n", status, text ? text : "");
        free(text);
    }
    assert_int_equal(status, 200);
    return j;
}

/* GET the formatted target, expecting status and {"error":{"code":code,...}}. */
__attribute__((format(printf, 3, 4))) static void get_error(int status, const char *code,
                                                            const char *fmt, ...)
{
    json_t *j;
    va_list ap;
    va_start(ap, fmt);
    int got = vget_doc(&j, fmt, ap);
    va_end(ap);
    json_t *e = json_object_get(j, "error");
    const char *got_code = json_string_value(json_object_get(e, "code"));
    if (got != status || got_code == NULL || strcmp(got_code, code) != 0) {
        char target[512];
        va_start(ap, fmt);
        vsnprintf(target, sizeof target, fmt, ap);
        va_end(ap);
        char *text = json_dumps(j, JSON_COMPACT);
        print_error("GET %s: expected %d %s, got %d %s\n", target, status, code, got,
                    text ? text : "");
        free(text);
    }
    assert_int_equal(got, status);
    assert_non_null(got_code);
    assert_string_equal(got_code, code);
    assert_true(json_is_string(json_object_get(e, "message")));
}

/* ---- reading answers ---- */

static const char *str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    if (s == NULL)
        print_error("no string \"%s\"\n", key);
    assert_non_null(s);
    return s;
}

static json_int_t num(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        print_error("no integer \"%s\"\n", key);
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

static bool flag(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_boolean(v))
        print_error("no boolean \"%s\"\n", key);
    assert_true(json_is_boolean(v));
    return json_is_true(v);
}

static json_t *list(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_array(v))
        print_error("no array \"%s\"\n", key);
    assert_true(json_is_array(v));
    return v;
}

/* A decimal string of a 64-bit integer ("total", "size", ...). */
static unsigned long long u64(json_t *o, const char *key)
{
    const char *s = str(o, key);
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    assert_true(*s != '\0' && *end == '\0');
    return v;
}

/* An id formatted as the protocol does (decimal address), in one of a few rotating
 * buffers so that several fit in one format call. */
static const char *id_of(const void *obj)
{
    static char bufs[8][24];
    static unsigned k;
    char *b = bufs[k++ % 8];
    snprintf(b, sizeof bufs[0], "%" PRIuPTR, (uintptr_t)obj);
    return b;
}

static const char *hex_of(const void *obj)
{
    static char bufs[8][24];
    static unsigned k;
    char *b = bufs[k++ % 8];
    snprintf(b, sizeof bufs[0], "0x%" PRIxPTR, (uintptr_t)obj);
    return b;
}

/* Returns: the object named by o's "id", after checking that "address" is the same
 * address in hex. */
static uintptr_t idv(json_t *o)
{
    const char *s = str(o, "id");
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    assert_true(s[0] >= '1' && s[0] <= '9' && *end == '\0');
    assert_string_equal(str(o, "address"), hex_of((void *)(uintptr_t)v));
    return (uintptr_t)v;
}

/* o is {id, address, type} naming obj. */
static void expect_ref(json_t *o, const void *obj, const char *type)
{
    assert_true(idv(o) == (uintptr_t)obj);
    assert_string_equal(str(o, "type"), type);
}

/* refs lists exactly objs (n of them), in any order, each once. */
static void expect_ref_set(json_t *refs, const void *const *objs, size_t n)
{
    assert_int_equal(json_array_size(refs), n);
    for (size_t i = 0; i < n; i++) {
        int seen = 0;
        for (size_t k = 0; k < n; k++)
            seen += idv(json_array_get(refs, k)) == (uintptr_t)objs[i];
        assert_int_equal(seen, 1);
    }
}

static int cmp_uintptr(const void *a, const void *b)
{
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

/* The listed objects are exactly objs, in increasing id order. */
static void expect_listing(json_t *objects, void *const *objs, size_t n)
{
    uintptr_t want[1024];
    assert_true(n <= sizeof want / sizeof want[0]);
    for (size_t i = 0; i < n; i++)
        want[i] = (uintptr_t)objs[i];
    qsort(want, n, sizeof *want, cmp_uintptr);
    assert_int_equal(json_array_size(objects), n);
    for (size_t i = 0; i < n; i++)
        assert_true(idv(json_array_get(objects, i)) == want[i]);
}

/* The object's refcount_explained. */
static void expect_explained(json_t *obj, json_int_t refcount, json_int_t from_heap,
                             json_int_t from_garbage, json_int_t from_outside)
{
    json_t *ex = json_object_get(obj, "refcount_explained");
    assert_non_null(ex);
    assert_int_equal(num(obj, "refcount"), refcount);
    assert_int_equal(num(ex, "refcount"), refcount);
    assert_int_equal(num(ex, "from_heap"), from_heap);
    assert_int_equal(num(ex, "from_garbage_list"), from_garbage);
    assert_int_equal(num(ex, "from_outside"), from_outside);
}

/* The object's collector state: generation (-1: null), where, tracked. */
static void expect_where(json_t *obj, int generation, const char *where, bool tracked)
{
    json_t *g = json_object_get(obj, "generation");
    if (generation < 0)
        assert_true(json_is_null(g));
    else
        assert_int_equal(num(obj, "generation"), generation);
    assert_string_equal(str(obj, "where"), where);
    assert_int_equal(flag(obj, "tracked"), tracked);
}

/* ---- GET /v1/heaps/{heap}/objects ---- */

/* Filters by type and generation, total, id order and each object's fields. */
static void test_objects_filters(void **state)
{
    (void)state;
    enum { NITEM = 250, NOTHER = 40, NBLOB = 30, NNEW = 5 };
    void *items[NITEM + NNEW], *others[NOTHER];
    for (int i = 0; i < NITEM; i++)
        items[i] = held(&Item);
    int item_line = g_site_line;
    for (int i = 0; i < NOTHER; i++)
        others[i] = held(&Other);
    for (int i = 0; i < NBLOB; i++)
        held(&Blob); /* no traverse: never tracked, never listed */

    json_t *j = get_ok(W "/objects?type=Item&limit=1000");
    assert_string_equal(str(j, "heap"), HEAP);
    assert_string_equal(str(j, "type"), "Item");
    assert_null(json_object_get(j, "generation"));
    assert_int_equal(num(j, "limit"), 1000);
    assert_int_equal(u64(j, "total"), NITEM);
    assert_false(flag(j, "truncated"));
    assert_null(json_object_get(j, "next_cursor"));
    json_t *objs = list(j, "objects");
    expect_listing(objs, items, NITEM);
    for (size_t i = 0; i < json_array_size(objs); i++) {
        json_t *o = json_array_get(objs, i);
        assert_string_equal(str(o, "type"), "Item");
        assert_int_equal(u64(o, "size"), BOX_SIZE);
        assert_int_equal(num(o, "refcount"), 1);
        assert_int_equal(num(o, "generation"), 0);
        json_t *site = json_object_get(o, "site");
        assert_string_equal(str(site, "file"), __FILE__);
        assert_int_equal(num(site, "line"), item_line);
    }

    j = get_ok(W "/objects?type=Other&limit=1000");
    expect_listing(list(j, "objects"), others, NOTHER);
    j = get_ok(W "/objects?type=Blob");
    assert_int_equal(u64(j, "total"), 0);
    assert_int_equal(json_array_size(list(j, "objects")), 0);
    j = get_ok(W "/objects?type=NoSuchType");
    assert_int_equal(u64(j, "total"), 0);
    assert_false(flag(j, "truncated"));
    j = get_ok(W "/objects");
    assert_int_equal(u64(j, "total"), NITEM + NOTHER);
    assert_int_equal(num(j, "limit"), 100); /* the default */
    assert_int_equal(json_array_size(list(j, "objects")), 100);
    assert_true(flag(j, "truncated"));

    /* Generations: everything is young, then a collection of generation 0 moves the
     * survivors to generation 1, and new objects are young again. */
    j = get_ok(W "/objects?generation=0");
    assert_int_equal(num(j, "generation"), 0);
    assert_int_equal(u64(j, "total"), NITEM + NOTHER);
    assert_int_equal(rcgc_collect(g_heap, 0), 0);
    j = get_ok(W "/objects?generation=0");
    assert_int_equal(u64(j, "total"), 0);
    for (int i = NITEM; i < NITEM + NNEW; i++)
        items[i] = held(&Item);
    j = get_ok(W "/objects?type=Item&generation=0");
    assert_string_equal(str(j, "type"), "Item");
    assert_int_equal(num(j, "generation"), 0);
    assert_int_equal(u64(j, "total"), NNEW);
    expect_listing(list(j, "objects"), items + NITEM, NNEW);
    j = get_ok(W "/objects?type=Item&generation=1&limit=1000");
    assert_int_equal(u64(j, "total"), NITEM);
    expect_listing(list(j, "objects"), items, NITEM);
    for (size_t i = 0; i < NITEM; i++)
        assert_int_equal(num(json_array_get(list(j, "objects"), i), "generation"), 1);
    j = get_ok(W "/objects?type=Other&generation=1&limit=1000");
    expect_listing(list(j, "objects"), others, NOTHER);
    assert_int_equal(rcgc_collect(g_heap, 1), 0);
    j = get_ok(W "/objects?generation=2&limit=1000");
    assert_int_equal(u64(j, "total"), NITEM + NNEW + NOTHER);
    j = get_ok(W "/objects?generation=1");
    assert_int_equal(u64(j, "total"), 0);

    /* A page: the smallest ids first. */
    j = get_ok(W "/objects?type=Item&limit=10");
    assert_int_equal(u64(j, "total"), NITEM + NNEW);
    assert_true(flag(j, "truncated"));
    assert_true(json_is_string(json_object_get(j, "next_cursor")));
    uintptr_t sorted[NITEM + NNEW];
    for (int i = 0; i < NITEM + NNEW; i++)
        sorted[i] = (uintptr_t)items[i];
    qsort(sorted, NITEM + NNEW, sizeof sorted[0], cmp_uintptr);
    objs = list(j, "objects");
    assert_int_equal(json_array_size(objs), 10);
    for (size_t i = 0; i < 10; i++)
        assert_true(idv(json_array_get(objs, i)) == sorted[i]);

    /* An untracked object is no longer listed. */
    rcgc_untrack(items[3]);
    j = get_ok(W "/objects?type=Item&limit=1000");
    assert_int_equal(u64(j, "total"), NITEM + NNEW - 1);
    objs = list(j, "objects");
    for (size_t i = 0; i < json_array_size(objs); i++)
        assert_true(idv(json_array_get(objs, i)) != (uintptr_t)items[3]);
}

/* Pages with ?limit=&cursor= until truncated is false. Returns: the number of pages;
 * ids[] (room for cap) the ids in the order listed. */
static size_t paginate(const char *query, unsigned limit, uintptr_t *ids, size_t cap, size_t *n,
                       unsigned long long total)
{
    char cursor[160] = "";
    size_t pages = 0;
    *n = 0;
    for (;;) {
        json_t *j = cursor[0] ? get_ok(W "/objects?%s&limit=%u&cursor=%s", query, limit, cursor)
                              : get_ok(W "/objects?%s&limit=%u", query, limit);
        pages++;
        assert_int_equal(num(j, "limit"), limit);
        assert_int_equal(u64(j, "total"), total);
        json_t *objs = list(j, "objects");
        bool more = flag(j, "truncated");
        json_t *next = json_object_get(j, "next_cursor");
        assert_int_equal(next != NULL, more); /* present exactly when truncated */
        if (more)
            assert_int_equal(json_array_size(objs), limit);
        else
            assert_true(json_array_size(objs) <= limit);
        for (size_t i = 0; i < json_array_size(objs); i++) {
            uintptr_t id = idv(json_array_get(objs, i));
            assert_true(*n == 0 || id > ids[*n - 1]); /* increasing, across pages too */
            assert_true(*n < cap);
            ids[(*n)++] = id;
        }
        if (!more)
            return pages;
        assert_true(strlen(json_string_value(next)) < sizeof cursor);
        strcpy(cursor, json_string_value(next));
        assert_true(pages < 1000);
    }
}

static void test_objects_pagination(void **state)
{
    (void)state;
    enum { N = 250 };
    void *items[N];
    uintptr_t want[N], got[N + 1];
    for (int i = 0; i < N; i++) {
        items[i] = held(&Item);
        want[i] = (uintptr_t)items[i];
    }
    for (int i = 0; i < 20; i++)
        held(&Other); /* not of the type asked for */
    qsort(want, N, sizeof want[0], cmp_uintptr);
    static const struct {
        unsigned limit;
        size_t pages;
    } cases[] = {{7, 36}, {10, 25}, {249, 2}, {250, 1}, {1000, 1}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        size_t n;
        size_t pages = paginate("type=Item", cases[c].limit, got, N + 1, &n, N);
        assert_int_equal(pages, cases[c].pages);
        assert_int_equal(n, N);
        assert_memory_equal(got, want, sizeof want); /* every object once, in id order */
    }
    /* Without a type: everything, still once each. */
    size_t n;
    uintptr_t all[N + 21];
    paginate("generation=0", 7, all, N + 21, &n, N + 20);
    assert_int_equal(n, N + 20);
}

/* Cursor pagination while objects are freed and made between pages: an object alive
 * during the whole pagination is listed exactly once, and nothing dead is listed. */
typedef struct churn_obj {
    void *obj;
    bool alive, stable; /* stable: alive during the whole pagination */
    int listed;
} churn_obj;

static churn_obj g_churn[600];
static size_t g_nchurn;

static void churn_make(bool stable)
{
    assert_true(g_nchurn < sizeof g_churn / sizeof g_churn[0]);
    g_churn[g_nchurn++] = (churn_obj){held(&Churn), true, stable, 0};
}

static size_t churn_alive(void)
{
    size_t n = 0;
    for (size_t i = 0; i < g_nchurn; i++)
        n += g_churn[i].alive;
    return n;
}

static churn_obj *churn_find(uintptr_t id)
{
    for (size_t i = 0; i < g_nchurn; i++)
        if (g_churn[i].alive && (uintptr_t)g_churn[i].obj == id)
            return &g_churn[i];
    return NULL;
}

static void churn_free(churn_obj *c)
{
    assert_true(c->alive);
    unhold(c->obj);
    c->alive = false;
    c->stable = false;
}

/* Frees up to n live objects whose ids are above (listed: at or below) the cursor. */
static void churn_free_some(uintptr_t cursor, bool above, int n)
{
    for (size_t i = 0; i < g_nchurn && n > 0; i++) {
        churn_obj *c = &g_churn[i];
        if (c->alive && ((uintptr_t)c->obj > cursor) == above) {
            churn_free(c);
            n--;
        }
    }
}

static void test_objects_pagination_churn(void **state)
{
    (void)state;
    g_nchurn = 0;
    for (int i = 0; i < 250; i++)
        churn_make(true);
    char cursor[160] = "";
    uintptr_t last = 0;
    size_t pages = 0;
    for (;;) {
        json_t *j = cursor[0] ? get_ok(W "/objects?type=Churn&limit=7&cursor=%s", cursor)
                              : get_ok(W "/objects?type=Churn&limit=7");
        pages++;
        assert_int_equal(u64(j, "total"), churn_alive());
        json_t *objs = list(j, "objects");
        for (size_t i = 0; i < json_array_size(objs); i++) {
            json_t *o = json_array_get(objs, i);
            uintptr_t id = idv(o);
            assert_true(id > last);
            last = id;
            churn_obj *c = churn_find(id);
            assert_non_null(c); /* alive now, and one of ours */
            assert_string_equal(str(o, "type"), "Churn");
            c->listed++;
        }
        if (!flag(j, "truncated"))
            break;
        assert_true(strlen(str(j, "next_cursor")) < sizeof cursor);
        strcpy(cursor, str(j, "next_cursor"));
        assert_true(pages < 500);
        /* Change the heap between pages. */
        switch (pages) {
        case 2:
            churn_free(churn_find(last)); /* the object the cursor names */
            churn_free_some(last, false, 5);
            churn_free_some(last, true, 10);
            for (int i = 0; i < 20; i++)
                churn_make(false);
            break;
        case 5:
            assert_int_equal(rcgc_collect(g_heap, 0), 0); /* every object changes list */
            for (int i = 0; i < 10; i++)
                churn_make(false);
            break;
        case 9:
            churn_free_some(last, true, 10);
            churn_free_some(last, false, 10);
            for (int i = 0; i < 30; i++)
                churn_make(false);
            break;
        case 15:
            assert_int_equal(rcgc_collect(g_heap, 1), 0);
            churn_free_some(last, true, 3);
            break;
        default:
            break;
        }
    }
    size_t stable = 0;
    for (size_t i = 0; i < g_nchurn; i++) {
        if (g_churn[i].stable) {
            assert_int_equal(g_churn[i].listed, 1);
            stable++;
        }
        assert_true(g_churn[i].listed <= 1);
    }
    assert_true(stable >= 200);
    assert_true(pages > 30);
}

static void test_objects_bad_parameters(void **state)
{
    (void)state;
    for (int i = 0; i < 3; i++)
        held(&Item);
    json_t *j = get_ok(W "/objects?type=Item&limit=1");
    char cursor[160];
    strcpy(cursor, str(j, "next_cursor"));
    j = get_ok(W "/objects?type=Item&limit=1&cursor=%s", cursor);
    assert_int_equal(json_array_size(list(j, "objects")), 1);
    (void)get_ok(W "/objects?limit=1000");

    static const char *const bad[] = {
        "limit=0",      "limit=1001",
        "limit=-1",     "limit=abc",
        "limit=1.5",    "limit=99999999999999999999999",
        "generation=3", "generation=-1",
        "generation=x", "cursor=banana",
        "cursor=a",     "cursor=b123",
        "cursor=a12x",  "cursor=a-1",
        "cursor=a%20",  "cursor=a12345678901234567890123456789",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        get_error(400, "bad_parameter", W "/objects?%s", bad[i]);
    get_error(400, "bad_parameter", W "/objects?type=Item&cursor=%sx", cursor);
    get_error(400, "unknown_parameter", W "/objects?typ=Item");
    get_error(400, "unknown_parameter", W "/objects?offset=0"); /* a cursor, not offsets */
    get_error(400, "duplicate_parameter", W "/objects?limit=1&limit=2");
    get_error(404, "heap_not_found", "/v1/heaps/nope/objects");
}

/* A cursor whose number does not fit in 64 bits is no cursor the server gave. */
static void test_objects_cursor_overflow(void **state)
{
    (void)state;
    held(&Item);
    static const char *const cursors[] = {"a99999999999999999999", "a18446744073709551616"};
    int wrong = 0;
    for (size_t i = 0; i < sizeof cursors / sizeof cursors[0]; i++) {
        json_t *j;
        wrong += status_wrong(&j, 400, W "/objects?cursor=%s", cursors[i]);
    }
    assert_int_equal(wrong, 0);
}

/* ---- GET /v1/heaps/{heap}/objects/{id} ---- */

static void test_object_fields_and_references(void **state)
{
    (void)state;
    /* p holds c1, c2 (twice: slots 1 and 3) and a leaf; the untracked q holds c1 too;
     * C holds p, q and also c1 (an extra reference: from_outside 1); w is a weak
     * reference to c2. */
    void *p = held(&Parent);
    int p_line = g_site_line;
    void *c1 = held(&Child);
    void *c2 = make(&Child);
    void *leaf = make(&Blob);
    link_to(p, 0, c1);
    link_to(p, 1, c2);
    link_to(p, 2, leaf);
    link_to(p, 3, c2);
    rcgc_decref(c2);
    rcgc_decref(leaf);
    void *q = held(&Parent);
    link_to(q, 0, c1);
    rcgc_untrack(q);
    void *w = hold(rcgc_weakref_new(g_heap, c2, NULL, NULL));

    json_t *j = get_ok(W "/objects/%s", id_of(p));
    assert_string_equal(str(j, "heap"), HEAP);
    assert_true(idv(j) == (uintptr_t)p);
    assert_string_equal(str(j, "type"), "Parent");
    assert_int_equal(u64(j, "size"), BOX_SIZE);
    assert_false(flag(j, "immortal"));
    expect_where(j, 0, "0", true);
    assert_false(flag(j, "finalized"));
    assert_false(flag(j, "weakref"));
    assert_int_equal(u64(j, "weakrefs"), 0);
    json_t *site = json_object_get(j, "site");
    assert_string_equal(str(site, "file"), __FILE__);
    assert_int_equal(num(site, "line"), p_line);
    expect_explained(j, 1, 0, 0, 1);
    json_t *refs = list(j, "referents"); /* traverse order, each once */
    assert_int_equal(json_array_size(refs), 3);
    expect_ref(json_array_get(refs, 0), c1, "Child");
    expect_ref(json_array_get(refs, 1), c2, "Child");
    expect_ref(json_array_get(refs, 2), leaf, "Blob");
    assert_int_equal(u64(j, "referents_total"), 3);
    assert_false(flag(j, "referents_truncated"));
    assert_int_equal(json_array_size(list(j, "referrers")), 0);
    assert_int_equal(u64(j, "referrers_total"), 0);
    assert_false(flag(j, "referrers_truncated"));

    /* c1: held by p, by the untracked q, and by C. */
    j = get_ok(W "/objects/%s", id_of(c1));
    expect_explained(j, 3, 2, 0, 1);
    const void *c1_referrers[] = {p, q};
    expect_ref_set(list(j, "referrers"), c1_referrers, 2);
    assert_int_equal(u64(j, "referrers_total"), 2);
    assert_false(flag(j, "referrers_truncated"));
    assert_int_equal(json_array_size(list(j, "referents")), 0);
    assert_int_equal(u64(j, "referents_total"), 0);

    /* c2: held twice by p only; one weak reference. */
    j = get_ok(W "/objects/%s", id_of(c2));
    expect_explained(j, 2, 2, 0, 0);
    refs = list(j, "referrers");
    assert_int_equal(json_array_size(refs), 1); /* each referrer once */
    expect_ref(json_array_get(refs, 0), p, "Parent");
    assert_int_equal(u64(j, "referrers_total"), 1);
    assert_int_equal(u64(j, "weakrefs"), 1);
    assert_false(flag(j, "weakref"));

    /* The leaf: no traverse, untracked. */
    j = get_ok(W "/objects/%s", id_of(leaf));
    assert_string_equal(str(j, "type"), "Blob");
    assert_int_equal(u64(j, "size"), BLOB_SIZE);
    expect_where(j, -1, "untracked", false);
    expect_explained(j, 1, 1, 0, 0);
    assert_int_equal(json_array_size(list(j, "referents")), 0);
    refs = list(j, "referrers");
    assert_int_equal(json_array_size(refs), 1);
    expect_ref(json_array_get(refs, 0), p, "Parent");

    /* q: a container untracked by the host; its references still count. */
    j = get_ok(W "/objects/%s", id_of(q));
    expect_where(j, -1, "untracked", false);
    refs = list(j, "referents");
    assert_int_equal(json_array_size(refs), 1);
    expect_ref(json_array_get(refs, 0), c1, "Child");
    expect_explained(j, 1, 0, 0, 1);

    /* w: a weak reference holds nothing. */
    j = get_ok(W "/objects/%s", id_of(w));
    assert_string_equal(str(j, "type"), "weakref");
    assert_true(flag(j, "weakref"));
    assert_true(flag(j, "tracked"));
    assert_int_equal(json_array_size(list(j, "referents")), 0);

    /* A variable-size object: header, payload and the 16-byte size prefix. */
    void *var = hold(rcgc_new_var(g_heap, &Blob, 100));
    j = get_ok(W "/objects/%s", id_of(var));
    assert_int_equal(u64(j, "size"), HEADER_SIZE + 100 + 16);

    /* The sub-list limits. */
    j = get_ok(W "/objects/%s?referents_limit=2", id_of(p));
    refs = list(j, "referents");
    assert_int_equal(json_array_size(refs), 2);
    expect_ref(json_array_get(refs, 0), c1, "Child");
    expect_ref(json_array_get(refs, 1), c2, "Child");
    assert_int_equal(u64(j, "referents_total"), 3);
    assert_true(flag(j, "referents_truncated"));
    j = get_ok(W "/objects/%s?referents_limit=3", id_of(p));
    assert_int_equal(json_array_size(list(j, "referents")), 3);
    assert_false(flag(j, "referents_truncated"));
    j = get_ok(W "/objects/%s?referrers_limit=1", id_of(c1));
    refs = list(j, "referrers");
    assert_int_equal(json_array_size(refs), 1);
    uintptr_t r0 = idv(json_array_get(refs, 0));
    assert_true(r0 == (uintptr_t)p || r0 == (uintptr_t)q);
    assert_int_equal(u64(j, "referrers_total"), 2);
    assert_true(flag(j, "referrers_truncated"));
    j = get_ok(W "/objects/%s?referrers_limit=0&referents_limit=0", id_of(c1));
    assert_int_equal(json_array_size(list(j, "referrers")), 0);
    assert_int_equal(u64(j, "referrers_total"), 2);
    assert_true(flag(j, "referrers_truncated"));
    assert_false(flag(j, "referents_truncated")); /* nothing to list */
    (void)get_ok(W "/objects/%s?referents_limit=1000&referrers_limit=1000", id_of(p));
    get_error(400, "bad_parameter", W "/objects/%s?referents_limit=1001", id_of(p));
    get_error(400, "bad_parameter", W "/objects/%s?referrers_limit=-1", id_of(p));
    get_error(400, "bad_parameter", W "/objects/%s?referrers_limit=x", id_of(p));
    get_error(400, "unknown_parameter", W "/objects/%s?limit=1", id_of(p));

    /* Generations as collections promote the survivors. */
    assert_int_equal(rcgc_collect(g_heap, 0), 0);
    j = get_ok(W "/objects/%s", id_of(p));
    expect_where(j, 1, "1", true);
    assert_int_equal(rcgc_collect(g_heap, 1), 0);
    j = get_ok(W "/objects/%s", id_of(c2));
    expect_where(j, 2, "2", true);
    expect_explained(j, 2, 2, 0, 0);
    assert_int_equal(rcgc_collect(g_heap, 2), 0);
    j = get_ok(W "/objects/%s", id_of(c1));
    expect_where(j, 2, "2", true);
    j = get_ok(W "/objects/%s", id_of(q)); /* untracked stays untracked */
    expect_where(j, -1, "untracked", false);
}

/* referents "each once": referents_total counts distinct referents whatever the limit
 * (here p's traverse visits c1, c2, leaf, c2). */
static void test_object_referents_total_ignores_limit(void **state)
{
    (void)state;
    void *p = held(&Parent);
    void *c1 = make(&Child), *c2 = make(&Child), *leaf = make(&Blob);
    link_to(p, 0, c1);
    link_to(p, 1, c2);
    link_to(p, 2, leaf);
    link_to(p, 3, c2);
    rcgc_decref(c1);
    rcgc_decref(c2);
    rcgc_decref(leaf);
    int wrong = 0;
    for (unsigned limit = 0; limit <= 4; limit++) {
        json_t *j = get_ok(W "/objects/%s?referents_limit=%u", id_of(p), limit);
        size_t listed = limit < 3 ? limit : 3;
        assert_int_equal(json_array_size(list(j, "referents")), listed);
        assert_int_equal(flag(j, "referents_truncated"), limit < 3);
        if (u64(j, "referents_total") != 3) {
            print_error("referents_limit=%u: referents_total %s, expected 3\n", limit,
                        str(j, "referents_total"));
            wrong++;
        }
    }
    assert_int_equal(wrong, 0);
}

/* Frozen objects: where "frozen", tracked, generation null; frozen containers are
 * referrers and their references count as the heap's; they are listed only with
 * ?scope=all (untracked ones too). */
static void test_object_frozen(void **state)
{
    (void)state;
    void *t = make(&Child);
    void *f = held(&Parent);
    link_to(f, 0, t);
    rcgc_decref(t);
    rcgc_freeze(g_heap);
    assert_int_equal(rcgc_get_freeze_count(g_heap), 2);
    void *g = held(&Parent);
    link_to(g, 0, t);
    void *u = held(&Parent);
    link_to(u, 0, t);
    rcgc_untrack(u);

    json_t *j = get_ok(W "/objects/%s", id_of(t));
    expect_where(j, -1, "frozen", true);
    expect_explained(j, 3, 3, 0, 0);
    const void *referrers[] = {f, g, u};
    expect_ref_set(list(j, "referrers"), referrers, 3);
    assert_int_equal(u64(j, "referrers_total"), 3);
    j = get_ok(W "/objects/%s", id_of(f));
    expect_where(j, -1, "frozen", true);
    expect_ref(json_array_get(list(j, "referents"), 0), t, "Child");
    expect_explained(j, 1, 0, 0, 1);
    /* Not listed: neither the frozen f and t nor the untracked u. */
    j = get_ok(W "/objects?type=Parent");
    assert_int_equal(u64(j, "total"), 1);
    expect_ref(json_array_get(list(j, "objects"), 0), g, "Parent");
    j = get_ok(W "/objects?type=Child");
    assert_int_equal(u64(j, "total"), 0);
    assert_string_equal(str(j, "scope"), "tracked");
    /* ?scope=all lists them all, each with where it is. */
    j = get_ok(W "/objects?type=Parent&scope=all");
    assert_string_equal(str(j, "scope"), "all");
    assert_int_equal(u64(j, "total"), 3);
    json_t *objs = list(j, "objects");
    for (size_t i = 0; i < json_array_size(objs); i++) {
        json_t *o = json_array_get(objs, i);
        uintptr_t id = idv(o);
        const char *where = str(o, "where");
        if (id == (uintptr_t)f)
            assert_string_equal(where, "frozen");
        else if (id == (uintptr_t)u)
            assert_string_equal(where, "untracked");
        else
            assert_true(id == (uintptr_t)g && strcmp(where, "0") == 0);
        assert_true(json_is_null(json_object_get(o, "generation")) == (id != (uintptr_t)g));
        if (i > 0)
            assert_true(idv(json_array_get(objs, i - 1)) < id);
    }
    j = get_ok(W "/objects?type=Child&scope=all&limit=1");
    assert_int_equal(u64(j, "total"), 1);
    expect_ref(json_array_get(list(j, "objects"), 0), t, "Child");
    j = get_ok(W "/objects?type=Parent&scope=all&generation=0"); /* generation: tracked */
    assert_int_equal(u64(j, "total"), 1);
    get_error(400, "bad_parameter", W "/objects?scope=everything");
    /* Roots: f, g and u, each held by C; t is one reference away from each. */
    j = get_ok(W "/objects/%s/path", id_of(t));
    assert_true(flag(j, "found"));
    assert_int_equal(num(j, "length"), 1);
    json_t *steps = list(j, "steps");
    assert_int_equal(json_array_size(steps), 2);
    uintptr_t root = idv(json_array_get(steps, 0));
    assert_true(root == (uintptr_t)f || root == (uintptr_t)g || root == (uintptr_t)u);

    rcgc_unfreeze(g_heap);
    j = get_ok(W "/objects/%s", id_of(t));
    expect_where(j, 2, "2", true);
    j = get_ok(W "/objects?type=Child");
    expect_ref(json_array_get(list(j, "objects"), 0), t, "Child");
}

/* A missing incref: x's refcount (1) is smaller than the references the heap holds to
 * it (2). Built safely: nothing decrefs x and no collection runs until the debt is
 * repaid (teardown repays it if an assertion fails first). */
static void test_object_missing_incref(void **state)
{
    (void)state;
    void *n = held(&Parent);
    void *x = make(&Child);
    box *nb = n;
    nb->slot[0] = x; /* our reference, moved into n */
    nb->slot[1] = x; /* a second reference, without its incref */
    g_debt = x;

    json_t *j = get_ok(W "/objects/%s", id_of(x));
    expect_explained(j, 1, 2, 0, -1);
    j = get_ok(W "/objects/%s", id_of(n));
    expect_explained(j, 1, 0, 0, 1);
    j = get_ok(W "/objects/%s/path", id_of(x)); /* x is no root: reached from n */
    assert_true(flag(j, "found"));
    assert_int_equal(num(j, "length"), 1);
    expect_ref(json_array_get(list(j, "steps"), 0), n, "Parent");

    rcgc_incref(x); /* repaid */
    g_debt = NULL;
    j = get_ok(W "/objects/%s", id_of(x));
    expect_explained(j, 2, 2, 0, 0);
}

/* ---- GET /v1/heaps/{heap}/objects/{id}/path ---- */

/* steps[i] names objs[i] (n of them) with the refcount it has. */
static void expect_steps(json_t *j, void *const *objs, size_t n)
{
    json_t *steps = list(j, "steps");
    assert_int_equal(json_array_size(steps), n);
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_array_get(steps, i);
        expect_ref(s, objs[i], rcgc_type_of(objs[i])->name);
        assert_int_equal(num(s, "refcount"), (json_int_t)rcgc_refcount(objs[i]));
    }
}

static void test_path(void **state)
{
    (void)state;
    /* root -> a -> b -> target, and a longer chain root2 -> d1 -> ... -> d4 -> target;
     * C holds root once and root2 twice, nothing else. */
    void *root = held(&Parent);
    void *a = make(&Child), *b = make(&Child), *target = make(&Child);
    link_to(root, 0, a);
    link_to(a, 0, b);
    link_to(b, 0, target);
    void *root2 = held(&Parent);
    hold(root2);
    rcgc_incref(root2);
    void *d[4];
    for (int i = 0; i < 4; i++) {
        d[i] = make(&Child);
        link_to(i == 0 ? root2 : d[i - 1], 0, d[i]);
    }
    link_to(d[3], 0, target);
    /* A cycle nobody outside holds, and what it reaches. */
    void *y1 = make(&Pair), *y2 = make(&Pair), *kept = make(&Child);
    link_to(y1, 0, y2);
    link_to(y2, 0, y1);
    link_to(y2, 1, kept);
    /* An object held by the heap and by C: a root itself. */
    void *both = held(&Child);
    link_to(b, 1, both);
    /* An untracked leaf on the way. */
    void *leaf = make(&Blob);
    link_to(a, 1, leaf);
    void *const drop[] = {a, b, target, d[0], d[1], d[2], d[3], y1, y2, kept, leaf};
    for (size_t i = 0; i < sizeof drop / sizeof drop[0]; i++)
        rcgc_decref(drop[i]);

    json_t *j = get_ok(W "/objects/%s/path", id_of(target));
    assert_string_equal(str(j, "heap"), HEAP);
    expect_ref(json_object_get(j, "target"), target, "Child");
    assert_true(flag(j, "found"));
    assert_true(flag(j, "complete"));
    assert_int_equal(num(j, "length"), 3);
    assert_int_equal(num(j, "root_from_outside"), 1);
    void *const shortest[] = {root, a, b, target};
    expect_steps(j, shortest, 4);
    assert_int_equal(num(j, "budget_ms"), 200); /* the default */
    assert_true(json_is_number(json_object_get(j, "elapsed_ms")));
    assert_true(json_number_value(json_object_get(j, "elapsed_ms")) >= 0);

    /* Via the longer chain: its root is held twice from outside. */
    j = get_ok(W "/objects/%s/path", id_of(d[2]));
    assert_true(flag(j, "found"));
    assert_int_equal(num(j, "length"), 3);
    assert_int_equal(num(j, "root_from_outside"), 2);
    void *const via2[] = {root2, d[0], d[1], d[2]};
    expect_steps(j, via2, 4);

    /* An untracked object is reached like any other. */
    j = get_ok(W "/objects/%s/path", id_of(leaf));
    assert_true(flag(j, "found"));
    assert_int_equal(num(j, "length"), 2);
    void *const to_leaf[] = {root, a, leaf};
    expect_steps(j, to_leaf, 3);

    /* A root: a path of one step. */
    j = get_ok(W "/objects/%s/path", id_of(root));
    assert_true(flag(j, "found"));
    assert_true(flag(j, "complete"));
    assert_int_equal(num(j, "length"), 0);
    assert_int_equal(num(j, "root_from_outside"), 1);
    void *const self[] = {root};
    expect_steps(j, self, 1);
    j = get_ok(W "/objects/%s/path", id_of(both)); /* held by b too, and by C */
    assert_int_equal(num(j, "length"), 0);
    assert_int_equal(num(j, "root_from_outside"), 1);

    /* Kept alive only by a cycle: no root reaches it. */
    void *const orphans[] = {y1, y2, kept};
    for (size_t i = 0; i < 3; i++) {
        j = get_ok(W "/objects/%s/path", id_of(orphans[i]));
        assert_false(flag(j, "found"));
        assert_true(flag(j, "complete"));
        assert_int_equal(json_array_size(list(j, "steps")), 0);
        assert_null(json_object_get(j, "length"));
        assert_null(json_object_get(j, "root_from_outside"));
    }

    /* The budget's bounds. */
    j = get_ok(W "/objects/%s/path?budget_ms=5000", id_of(target));
    assert_int_equal(num(j, "budget_ms"), 5000);
    assert_true(flag(j, "found"));
    j = get_ok(W "/objects/%s/path?budget_ms=1", id_of(root));
    assert_int_equal(num(j, "budget_ms"), 1);
    get_error(400, "bad_parameter", W "/objects/%s/path?budget_ms=0", id_of(target));
    get_error(400, "bad_parameter", W "/objects/%s/path?budget_ms=5001", id_of(target));
    get_error(400, "bad_parameter", W "/objects/%s/path?budget_ms=-5", id_of(target));
    get_error(400, "bad_parameter", W "/objects/%s/path?budget_ms=fast", id_of(target));
    get_error(400, "unknown_parameter", W "/objects/%s/path?budget=5", id_of(target));
}

/* A path longer than the steps listed: by default the first 1000 steps from the root
 * and steps_truncated; with a large enough ?steps_limit= all of them, target last, and
 * length the number of steps minus one. */
static void test_path_long_chain(void **state)
{
    (void)state;
    enum { N = 5000 };
    void *root = held(&Parent), *prev = root;
    for (int i = 0; i < N; i++) {
        void *c = make(&Child);
        link_to(prev, 0, c);
        rcgc_decref(c);
        prev = c;
    }
    void *target = prev;
    json_t *j = get_ok(W "/objects/%s/path?budget_ms=5000", id_of(target));
    assert_true(flag(j, "found"));
    assert_true(flag(j, "complete"));
    assert_int_equal(num(j, "length"), N);
    assert_true(flag(j, "steps_truncated"));
    json_t *steps = list(j, "steps");
    assert_int_equal(json_array_size(steps), 1000);
    expect_ref(json_array_get(steps, 0), root, "Parent");

    j = get_ok(W "/objects/%s/path?budget_ms=5000&steps_limit=%d", id_of(target), N + 1);
    assert_false(flag(j, "steps_truncated"));
    steps = list(j, "steps");
    size_t n = json_array_size(steps);
    expect_ref(json_array_get(steps, 0), root, "Parent");
    assert_int_equal(n, N + 1);
    assert_true(idv(json_array_get(steps, n - 1)) == (uintptr_t)target);
    get_error(400, "bad_parameter", W "/objects/%s/path?steps_limit=1", id_of(target));
    get_error(400, "bad_parameter", W "/objects/%s/path?steps_limit=100001", id_of(target));
}

/* ---- GET /v1/heaps/{heap}/garbage ---- */

/* The group (index) whose objects include id, or -1. */
static long group_of(json_t *groups, uintptr_t id)
{
    for (size_t g = 0; g < json_array_size(groups); g++) {
        json_t *objs = list(json_array_get(groups, g), "objects");
        for (size_t i = 0; i < json_array_size(objs); i++)
            if (idv(json_array_get(objs, i)) == id)
                return (long)g;
    }
    return -1;
}

static json_t *object_in(json_t *group, const void *obj)
{
    json_t *objs = list(group, "objects");
    for (size_t i = 0; i < json_array_size(objs); i++)
        if (idv(json_array_get(objs, i)) == (uintptr_t)obj)
            return json_array_get(objs, i);
    fail_msg("%p is not in the group", obj);
    return NULL;
}

static bool in_garbage_list(const void *obj)
{
    for (size_t i = 0; i < rcgc_garbage_count(g_heap); i++)
        if (rcgc_garbage_get(g_heap, i) == obj)
            return true;
    return false;
}

/* The group holds exactly members (n), is a cycle or not, and each member's entry
 * is right: type, size, refcount, in_list, legacy_del, and its referents, in traverse
 * order, each with the group it belongs to. */
static void expect_group(json_t *groups, long index, void *const *members, size_t n, bool cycle)
{
    json_t *g = json_array_get(groups, (size_t)index);
    assert_non_null(g);
    assert_int_equal(num(g, "index"), index);
    assert_string_equal(str(g, "kind"), cycle ? "cycle" : "single");
    assert_int_equal(u64(g, "size"), n);
    assert_false(flag(g, "objects_truncated"));
    expect_ref_set(list(g, "objects"), (const void *const *)members, n);
    /* types: the members counted by type, most first */
    json_t *types = list(g, "types");
    unsigned long long sum = 0, prev = ~0ull;
    for (size_t k = 0; k < json_array_size(types); k++) {
        json_t *t = json_array_get(types, k);
        unsigned long long c = u64(t, "objects");
        assert_true(c <= prev);
        prev = c;
        sum += c;
        size_t want = 0;
        for (size_t i = 0; i < n; i++)
            want += strcmp(rcgc_type_of(members[i])->name, str(t, "type")) == 0;
        assert_int_equal(c, want);
    }
    assert_int_equal(sum, n);
    for (size_t i = 0; i < n; i++) {
        json_t *o = object_in(g, members[i]);
        const rcgc_type *t = rcgc_type_of(members[i]);
        assert_string_equal(str(o, "type"), t->name);
        assert_int_equal(u64(o, "size"), t->traverse != NULL ? BOX_SIZE : BLOB_SIZE);
        assert_int_equal(num(o, "refcount"), (json_int_t)rcgc_refcount(members[i]));
        assert_int_equal(flag(o, "in_list"), in_garbage_list(members[i]));
        assert_int_equal(flag(o, "legacy_del"), t->legacy_del != NULL);
        assert_int_equal(flag(o, "finalized"), rcgc_is_finalized(members[i]));
        json_t *refs = list(o, "referents");
        assert_false(flag(o, "referents_truncated"));
        size_t k = 0;
        if (t->traverse != NULL) {
            box *b = members[i];
            for (int s = 0; s < NSLOTS; s++) {
                if (b->slot[s] == NULL)
                    continue;
                json_t *r = json_array_get(refs, k++);
                assert_non_null(r);
                expect_ref(r, b->slot[s], rcgc_type_of(b->slot[s])->name);
                assert_int_equal(num(r, "group"), group_of(groups, (uintptr_t)b->slot[s]));
            }
        }
        assert_int_equal(json_array_size(refs), k);
    }
}

/* Under DEBUG_SAVEALL every unreachable object goes to the garbage list: two 3-cycles
 * (one of mixed types, one reaching an untracked leaf) and a 2-cycle with a tail. */
static void test_garbage_saveall(void **state)
{
    (void)state;
    rcgc_set_debug(g_heap, RCGC_DEBUG_SAVEALL);
    void *x[3] = {make(&Ring), make(&Ring), make(&Ring)};
    void *y[3] = {make(&Ring), make(&Knot), make(&Knot)};
    void *z[2] = {make(&Pair), make(&Pair)};
    void *tail = make(&Tail), *leaf = make(&Blob);
    for (int i = 0; i < 3; i++) {
        link_to(x[i], 0, x[(i + 1) % 3]);
        link_to(y[i], 0, y[(i + 1) % 3]);
    }
    link_to(x[0], 1, leaf);
    link_to(z[0], 0, z[1]);
    link_to(z[1], 0, z[0]);
    link_to(z[0], 1, tail);
    void *const all[] = {x[0], x[1], x[2], y[0], y[1], y[2], z[0], z[1], tail, leaf};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        rcgc_decref(all[i]);
    json_t *j = get_ok(W "/garbage");
    assert_int_equal(u64(j, "garbage"), 0);
    assert_true(flag(j, "saveall"));
    assert_int_equal(u64(j, "total"), 0);
    assert_int_equal(json_array_size(list(j, "groups")), 0);

    assert_int_equal(rcgc_collect(g_heap, 2), 9); /* the tracked ones */
    assert_int_equal(rcgc_garbage_count(g_heap), 9);

    json_t *full = get_ok(W "/garbage?limit=1000&objects_limit=100&referents_limit=16");
    assert_string_equal(str(full, "heap"), HEAP);
    assert_int_equal(u64(full, "garbage"), 9);
    assert_true(flag(full, "saveall"));
    assert_int_equal(u64(full, "reached"), 10);
    assert_int_equal(num(full, "max_objects"), 100000);
    assert_false(flag(full, "reached_truncated"));
    assert_int_equal(num(full, "offset"), 0);
    assert_int_equal(num(full, "limit"), 1000);
    assert_int_equal(u64(full, "total"), 5);
    assert_false(flag(full, "truncated"));
    json_t *groups = list(full, "groups");
    assert_int_equal(json_array_size(groups), 5);
    long gx = group_of(groups, (uintptr_t)x[0]), gy = group_of(groups, (uintptr_t)y[0]),
         gz = group_of(groups, (uintptr_t)z[0]), gt = group_of(groups, (uintptr_t)tail),
         gl = group_of(groups, (uintptr_t)leaf);
    expect_group(groups, gx, x, 3, true);
    expect_group(groups, gy, y, 3, true);
    expect_group(groups, gz, z, 2, true);
    void *const tails[] = {tail}, *const leaves[] = {leaf};
    expect_group(groups, gt, tails, 1, false);
    expect_group(groups, gl, leaves, 1, false);
    /* Reverse topological order: a group before the groups that reach it. */
    assert_true(gt < gz);
    assert_true(gl < gx);
    /* The mixed cycle's types, most first. */
    json_t *types = list(json_array_get(groups, (size_t)gy), "types");
    assert_string_equal(str(json_array_get(types, 0), "type"), "Knot");
    assert_string_equal(str(json_array_get(types, 1), "type"), "Ring");
    assert_false(flag(object_in(json_array_get(groups, (size_t)gl), leaf), "in_list"));

    /* Pages of two groups are the full list cut in pieces. */
    for (unsigned offset = 0; offset <= 6; offset += 2) {
        j = get_ok(W "/garbage?limit=2&offset=%u&objects_limit=100", offset);
        assert_int_equal(num(j, "offset"), offset);
        assert_int_equal(num(j, "limit"), 2);
        assert_int_equal(u64(j, "total"), 5);
        json_t *page = list(j, "groups");
        size_t want = offset >= 5 ? 0 : (5 - offset < 2 ? 5 - offset : 2);
        assert_int_equal(json_array_size(page), want);
        assert_int_equal(flag(j, "truncated"), offset + want < 5);
        for (size_t i = 0; i < want; i++) {
            json_t *pg = json_array_get(page, i), *fg = json_array_get(groups, offset + i);
            assert_int_equal(num(pg, "index"), offset + i);
            assert_int_equal(u64(pg, "size"), u64(fg, "size"));
            json_t *po = list(pg, "objects"), *fo = list(fg, "objects");
            for (size_t k = 0; k < json_array_size(fo); k++)
                assert_true(idv(json_array_get(po, k)) == idv(json_array_get(fo, k)));
        }
    }
    j = get_ok(W "/garbage?offset=100");
    assert_int_equal(json_array_size(list(j, "groups")), 0);
    assert_false(flag(j, "truncated"));

    /* The other limits. */
    j = get_ok(W "/garbage?limit=1000&objects_limit=1&referents_limit=1");
    json_t *g = json_array_get(list(j, "groups"), (size_t)gx);
    assert_int_equal(json_array_size(list(g, "objects")), 1);
    assert_true(flag(g, "objects_truncated"));
    assert_int_equal(u64(g, "size"), 3);
    assert_int_equal(json_array_size(list(g, "types")), 1);
    assert_int_equal(u64(json_array_get(list(g, "types"), 0), "objects"), 3);
    g = json_array_get(list(j, "groups"), (size_t)gt);
    assert_false(flag(g, "objects_truncated"));
    json_t *o =
        json_array_get(list(json_array_get(list(j, "groups"), (size_t)gz), "objects"), 0);
    uintptr_t oid = idv(o);
    assert_int_equal(json_array_size(list(o, "referents")), 1);
    assert_int_equal(flag(o, "referents_truncated"), oid == (uintptr_t)z[0]); /* 2 refs */
    j = get_ok(W "/garbage?max_objects=4&limit=1000");
    assert_int_equal(u64(j, "reached"), 4);
    assert_int_equal(num(j, "max_objects"), 4);
    assert_true(flag(j, "reached_truncated"));
    /* Referents beyond the cap belong to no group: null. */
    json_t *capped = list(j, "groups");
    size_t grouped = 0, ungrouped_refs = 0;
    for (size_t gi = 0; gi < json_array_size(capped); gi++) {
        json_t *objs = list(json_array_get(capped, gi), "objects");
        for (size_t i = 0; i < json_array_size(objs); i++) {
            json_t *refs = list(json_array_get(objs, i), "referents");
            grouped++;
            for (size_t k = 0; k < json_array_size(refs); k++) {
                json_t *r = json_array_get(refs, k);
                long want = group_of(capped, idv(r));
                if (want < 0) {
                    assert_true(json_is_null(json_object_get(r, "group")));
                    ungrouped_refs++;
                } else {
                    assert_int_equal(num(r, "group"), want);
                }
            }
        }
    }
    assert_int_equal(grouped, 4);
    assert_true(ungrouped_refs > 0);
    j = get_ok(W "/garbage?max_objects=11");
    assert_int_equal(u64(j, "reached"), 10);
    assert_false(flag(j, "reached_truncated"));

    /* The garbage list's references, explained; its entries are roots. */
    j = get_ok(W "/objects/%s", id_of(x[0]));
    expect_explained(j, 2, 1, 1, 0);
    j = get_ok(W "/objects/%s", id_of(leaf));
    expect_explained(j, 1, 1, 0, 0);
    j = get_ok(W "/objects/%s/path", id_of(x[1]));
    assert_true(flag(j, "found"));
    assert_int_equal(num(j, "length"), 0);
    assert_int_equal(num(j, "root_from_outside"), 1);
    j = get_ok(W "/objects/%s/path", id_of(leaf));
    assert_true(flag(j, "found"));
    assert_int_equal(num(j, "length"), 1);
    assert_int_equal(num(j, "root_from_outside"), 1);
    void *const leaf_path[] = {x[0], leaf};
    expect_steps(j, leaf_path, 2);

    /* Emptied and collected: gone, and their ids are stale. */
    rcgc_set_debug(g_heap, 0);
    rcgc_garbage_clear(g_heap);
    assert_int_equal(rcgc_collect(g_heap, 2), 9);
    j = get_ok(W "/garbage");
    assert_int_equal(u64(j, "garbage"), 0);
    assert_false(flag(j, "saveall"));
    assert_int_equal(u64(j, "reached"), 0);
    assert_int_equal(u64(j, "total"), 0);
    /* No object was made since: the addresses are not live objects. */
    get_error(404, "object_not_found", W "/objects/%s", id_of(x[0]));
    get_error(404, "object_not_found", W "/objects/%s/path", id_of(x[0]));
    get_error(404, "object_not_found", W "/objects/%s", hex_of(leaf));
}

/* A cycle through an object with a legacy finalizer is uncollectable: the object goes
 * to the garbage list and the rest is reached from it. */
static void test_garbage_legacy(void **state)
{
    (void)state;
    void *l = make(&Legacy), *n1 = make(&Parent), *n2 = make(&Child);
    link_to(l, 0, n1);
    link_to(n1, 0, l);
    link_to(n1, 1, n2);
    rcgc_decref(l);
    rcgc_decref(n1);
    rcgc_decref(n2);
    assert_int_equal(rcgc_collect(g_heap, 2), 3);
    assert_true(in_garbage_list(l));

    json_t *j = get_ok(W "/garbage");
    assert_false(flag(j, "saveall"));
    assert_int_equal(u64(j, "garbage"), rcgc_garbage_count(g_heap));
    assert_int_equal(u64(j, "reached"), 3);
    assert_int_equal(u64(j, "total"), 2);
    json_t *groups = list(j, "groups");
    void *const cycle[] = {l, n1}, *const single[] = {n2};
    expect_group(groups, 0, single, 1, false); /* reached from the cycle: first */
    expect_group(groups, 1, cycle, 2, true);
    json_t *lo = object_in(json_array_get(groups, 1), l);
    assert_true(flag(lo, "in_list"));
    assert_true(flag(lo, "legacy_del"));
    j = get_ok(W "/objects/%s", id_of(l));
    expect_explained(j, 2, 1, 1, 0);

    /* Break the cycle by hand (a collection would find it uncollectable again). */
    rcgc_incref(l);
    rcgc_garbage_clear(g_heap);
    box_clear(l);
    rcgc_decref(l);
    j = get_ok(W "/garbage");
    assert_int_equal(u64(j, "total"), 0);
}

/* A self-referencing object is a cycle of one; finalizers have run on the garbage that
 * SAVEALL kept. */
static void test_garbage_self_cycle_and_finalized(void **state)
{
    (void)state;
    rcgc_set_debug(g_heap, RCGC_DEBUG_SAVEALL);
    void *s = make(&Ring);
    link_to(s, 0, s);
    void *f[2] = {make(&Fin), make(&Fin)};
    link_to(f[0], 0, f[1]);
    link_to(f[1], 0, f[0]);
    rcgc_decref(s);
    rcgc_decref(f[0]);
    rcgc_decref(f[1]);
    assert_int_equal(rcgc_collect(g_heap, 2), 3);
    assert_true(rcgc_is_finalized(f[0]) && rcgc_is_finalized(f[1]));
    json_t *j = get_ok(W "/garbage");
    json_t *groups = list(j, "groups");
    assert_int_equal(u64(j, "total"), 2);
    void *const self[] = {s};
    expect_group(groups, group_of(groups, (uintptr_t)s), self, 1, true);
    expect_group(groups, group_of(groups, (uintptr_t)f[0]), f, 2, true);
    j = get_ok(W "/objects/%s", id_of(f[0]));
    assert_true(flag(j, "finalized"));
    j = get_ok(W "/objects/%s", id_of(s));
    assert_false(flag(j, "finalized"));
    expect_explained(j, 2, 1, 1, 0);
    json_t *refs = list(j, "referents");
    assert_int_equal(json_array_size(refs), 1);
    expect_ref(json_array_get(refs, 0), s, "Ring");
    refs = list(j, "referrers");
    assert_int_equal(json_array_size(refs), 1);
    expect_ref(json_array_get(refs, 0), s, "Ring");
}

static void test_garbage_bad_parameters(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "limit=0",
        "limit=1001",
        "limit=x",
        "offset=-1",
        "offset=y",
        "max_objects=0",
        "max_objects=10000001",
        "objects_limit=x",
        "referents_limit=-1",
        "referents_limit=1001",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        get_error(400, "bad_parameter", W "/garbage?%s", bad[i]);
    get_error(400, "unknown_parameter", W "/garbage?cursor=a1");
    get_error(404, "heap_not_found", "/v1/heaps/nope/garbage");
    (void)get_ok(W "/garbage?limit=1000&max_objects=10000000");
}

/* protocol/README.md and openapi.yaml: ?limit= defaults to 20 groups. */
static void test_garbage_default_limit(void **state)
{
    (void)state;
    json_t *j = get_ok(W "/garbage");
    if (num(j, "limit") != 20)
        print_error("GET " W "/garbage: limit %d, the default is 20\n", (int)num(j, "limit"));
    assert_int_equal(num(j, "limit"), 20);
}

/* A 30-cycle under SAVEALL, its first member also holding 20 distinct leaves. */
static void make_big_garbage(void **members, void **first_leaves)
{
    rcgc_set_debug(g_heap, RCGC_DEBUG_SAVEALL);
    for (int i = 0; i < 30; i++)
        members[i] = make(&Ring);
    for (int i = 0; i < 30; i++)
        link_to(members[i], 0, members[(i + 1) % 30]);
    for (int i = 0; i < 20; i++) {
        first_leaves[i] = make(&Blob);
        link_to(members[0], i + 1, first_leaves[i]);
        rcgc_decref(first_leaves[i]);
    }
    for (int i = 0; i < 30; i++)
        rcgc_decref(members[i]);
    assert_int_equal(rcgc_collect(g_heap, 2), 30);
}

/* ?objects_limit= defaults to 100 objects per group, ?referents_limit= to 16. */
static void test_garbage_default_sublimits(void **state)
{
    (void)state;
    void *members[30], *leaves[20];
    make_big_garbage(members, leaves);
    json_t *j = get_ok(W "/garbage?limit=1000");
    json_t *groups = list(j, "groups");
    assert_int_equal(u64(j, "total"), 21);
    json_t *cycle = NULL;
    for (size_t g = 0; g < json_array_size(groups); g++)
        if (u64(json_array_get(groups, g), "size") == 30)
            cycle = json_array_get(groups, g);
    assert_non_null(cycle);
    int wrong = 0;
    size_t listed = json_array_size(list(cycle, "objects"));
    if (listed != 30 || flag(cycle, "objects_truncated")) {
        print_error("a 30-object group lists %zu objects by default (objects_truncated %d); "
                    "objects_limit defaults to 100\n",
                    listed, flag(cycle, "objects_truncated"));
        wrong++;
    }
    /* members[0]'s referents: members[1] and 20 leaves. */
    j = get_ok(W "/garbage?limit=1000&objects_limit=100");
    groups = list(j, "groups");
    long gc = group_of(groups, (uintptr_t)members[0]);
    assert_true(gc >= 0);
    json_t *first = object_in(json_array_get(groups, (size_t)gc), members[0]);
    size_t refs = json_array_size(list(first, "referents"));
    if (refs != 16 || !flag(first, "referents_truncated")) {
        print_error("an object with 21 referents lists %zu by default (referents_truncated "
                    "%d); referents_limit defaults to 16\n",
                    refs, flag(first, "referents_truncated"));
        wrong++;
    }
    assert_int_equal(wrong, 0);
}

/* ?objects_limit= is 1..10000 and ?referents_limit= 1..1000 (openapi.yaml). Every
 * case is tried and each wrong answer printed before the test fails. */
static void test_garbage_sublimit_ranges(void **state)
{
    (void)state;
    void *members[30], *leaves[20];
    make_big_garbage(members, leaves);
    static const struct {
        const char *query;
        int status;
    } cases[] = {
        {"objects_limit=1", 200},   {"objects_limit=10000", 200},
        {"referents_limit=1", 200}, {"referents_limit=1000", 200},
        {"objects_limit=0", 400},   {"objects_limit=10001", 400},
        {"referents_limit=0", 400}, {"referents_limit=1001", 400},
    };
    int wrong = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *j;
        if (status_wrong(&j, cases[i].status, W "/garbage?%s", cases[i].query)) {
            wrong++;
        } else if (cases[i].status == 400) {
            assert_string_equal(
                json_string_value(json_object_get(json_object_get(j, "error"), "code")),
                "bad_parameter");
        }
    }
    assert_int_equal(wrong, 0);
}

/* A cycle of two Pairs that a full collection with RCGC_DEBUG_SAVEALL (left on) put in
 * the garbage list. Returns: one of the two (borrowed: the garbage list holds it). */
static void *saved_pair(void)
{
    rcgc_set_debug(g_heap, RCGC_DEBUG_SAVEALL);
    void *a = make(&Pair), *b = make(&Pair);
    link_to(a, 0, b);
    link_to(b, 0, a);
    rcgc_decref(a);
    rcgc_decref(b);
    assert_int_equal(rcgc_collect(g_heap, 2), 2);
    return a;
}

/* reached_truncated: "more objects are reached than were grouped"; a cap equal to what
 * is reached cuts nothing. */
static void test_garbage_reached_exact_cap(void **state)
{
    (void)state;
    (void)saved_pair();
    json_t *j = get_ok(W "/garbage?max_objects=2");
    assert_int_equal(u64(j, "reached"), 2);
    assert_int_equal(u64(json_array_get(list(j, "groups"), 0), "size"), 2);
    if (flag(j, "reached_truncated"))
        print_error("max_objects=2 with exactly 2 objects reached: reached_truncated is "
                    "true\n");
    assert_false(flag(j, "reached_truncated"));
}

/* object.json: an entry of the garbage list stays in its generation (2 after a full
 * collection, as CPython keeps gc.garbage's objects), and from_garbage_list says it is
 * in the list. */
static void test_garbage_entry_where(void **state)
{
    (void)state;
    void *a = saved_pair();
    assert_true(in_garbage_list(a));
    json_t *j = get_ok(W "/objects/%s", id_of(a));
    expect_where(j, 2, "2", true);
    assert_int_equal(num(json_object_get(j, "refcount_explained"), "from_garbage_list"), 1);
}

/* ---- ids ---- */

static const char *const id_routes[] = {"", "/path"};

/* GET every id route with this id. Returns: how many answered another status than want
 * (each printed). */
static int id_routes_wrong(int want, const char *id)
{
    int wrong = 0;
    for (size_t r = 0; r < sizeof id_routes / sizeof id_routes[0]; r++) {
        json_t *j;
        wrong += status_wrong(&j, want, W "/objects/%s%s", id, id_routes[r]);
    }
    return wrong;
}

static void test_ids(void **state)
{
    (void)state;
    void *live = held(&Child);
    void *stale = make(&Child);
    uintptr_t stale_id = (uintptr_t)stale;
    rcgc_decref(stale); /* freed; nothing is made until the requests below */
    char buf[64];
    for (size_t r = 0; r < sizeof id_routes / sizeof id_routes[0]; r++) {
        const char *route = id_routes[r];
        /* Not ids at all. */
        static const char *const bad[] = {
            "banana", "0",    "00",    "0123", "1234567890123456789012345",
            "-16",    "12a",  "1e5",   "+16",  "0x",
            "0x0",    "0xg0", "0x-10", "x10",  "1.0",
            "%20",
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
            get_error(400, "bad_id", W "/objects/%s%s", bad[i], route);
        get_error(400, "bad_id", W "/objects/0%s%s", id_of(live), route); /* leading 0 */
        /* Ids naming no live object of the heap. */
        snprintf(buf, sizeof buf, "%" PRIuPTR, (uintptr_t)live + 8); /* misaligned */
        get_error(404, "object_not_found", W "/objects/%s%s", buf, route);
        get_error(404, "object_not_found", W "/objects/%s%s", hex_of((char *)live + 8), route);
        get_error(404, "object_not_found", W "/objects/16%s", route);
        get_error(404, "object_not_found", W "/objects/18446744073709551615%s", route);
        snprintf(buf, sizeof buf, "%" PRIuPTR, stale_id);
        get_error(404, "object_not_found", W "/objects/%s%s", buf, route);
        /* Past 64 bits: malformed or not found, either is an answer; never 200. */
        json_t *j;
        int status = get_doc(&j, W "/objects/18446744073709551616%s", route);
        assert_true(status == 400 || status == 404);
        /* The live object, in decimal and in hex. */
        j = get_ok(W "/objects/%s%s", id_of(live), route);
        j = get_ok(W "/objects/%s%s", hex_of(live), route);
        if (r == 0)
            expect_ref(j, live, "Child");
        else
            expect_ref(json_object_get(j, "target"), live, "Child");
        /* Unknown heaps. */
        get_error(404, "heap_not_found", "/v1/heaps/nope/objects/%s%s", id_of(live), route);
        get_error(404, "heap_not_found", "/v1/heaps/walk/objects/%s%s", id_of(live), route);
    }
}

/* An object of another heap is no object of this one. */
static void test_ids_other_heap(void **state)
{
    (void)state;
    g_other = heap_new("walks-other");
    assert_non_null(g_other);
    void *o = rcgc_new(g_other, &Child);
    assert_non_null(o);
    for (size_t r = 0; r < sizeof id_routes / sizeof id_routes[0]; r++) {
        get_error(404, "object_not_found", W "/objects/%s%s", id_of(o), id_routes[r]);
        (void)get_ok("/v1/heaps/walks-other/objects/%s%s", id_of(o), id_routes[r]);
    }
    json_t *j = get_ok("/v1/heaps/walks-other/objects/%s", id_of(o));
    assert_string_equal(str(j, "heap"), "walks-other");
    expect_explained(j, 1, 0, 0, 1);
    rcgc_decref(o);
}

/* The id parameter's pattern (openapi.yaml) takes hex digits in either case:
 * ^([1-9][0-9]{0,19}|0x[0-9a-fA-F]{1,16})$. */
static void test_ids_hex_uppercase(void **state)
{
    (void)state;
    /* An object whose address has a letter among its hex digits. */
    void *obj = NULL;
    for (int i = 0; i < 256 && obj == NULL; i++) {
        void *o = held(&Child);
        if (strpbrk(hex_of(o) + 2, "abcdef") != NULL)
            obj = o;
    }
    if (obj == NULL)
        skip(); /* no address with a letter: nothing to check */
    char upper[32];
    snprintf(upper, sizeof upper, "0x%" PRIXPTR, (uintptr_t)obj);
    assert_int_equal(id_routes_wrong(200, upper), 0);
}

/* ... and at most 16 of them: a longer hex id is malformed, even with leading zeros. */
static void test_ids_hex_too_long(void **state)
{
    (void)state;
    void *obj = held(&Child);
    char padded[40];
    snprintf(padded, sizeof padded, "0x%017" PRIxPTR, (uintptr_t)obj);
    assert_int_equal(id_routes_wrong(400, padded), 0);
}

/* Unknown heaps on every walk route. */
static void test_unknown_heap(void **state)
{
    (void)state;
    void *obj = held(&Child);
    get_error(404, "heap_not_found", "/v1/heaps/nope/objects");
    get_error(404, "heap_not_found", "/v1/heaps/nope/objects/%s", id_of(obj));
    get_error(404, "heap_not_found", "/v1/heaps/nope/objects/%s/path", id_of(obj));
    get_error(404, "heap_not_found", "/v1/heaps/nope/garbage");
    get_error(404, "heap_not_found", "/v1/heaps/WALKS/objects?limit=1");
}

#define TEST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_objects_filters),
        TEST(test_objects_pagination),
        TEST(test_objects_pagination_churn),
        TEST(test_objects_bad_parameters),
        TEST(test_objects_cursor_overflow),
        TEST(test_object_fields_and_references),
        TEST(test_object_referents_total_ignores_limit),
        TEST(test_object_frozen),
        TEST(test_object_missing_incref),
        TEST(test_path),
        TEST(test_path_long_chain),
        TEST(test_garbage_saveall),
        TEST(test_garbage_legacy),
        TEST(test_garbage_self_cycle_and_finalized),
        TEST(test_garbage_bad_parameters),
        TEST(test_garbage_default_limit),
        TEST(test_garbage_default_sublimits),
        TEST(test_garbage_sublimit_ranges),
        TEST(test_garbage_reached_exact_cap),
        TEST(test_garbage_entry_where),
        TEST(test_ids),
        TEST(test_ids_other_heap),
        TEST(test_ids_hex_uppercase),
        TEST(test_ids_hex_too_long),
        TEST(test_unknown_heap),
    };
    return cmocka_run_group_tests(tests, setup_group, teardown_group);
}
