/* test_tracing.c: the allocator and allocation-tracing endpoints over real HTTP. A
 * server runs in this process on 127.0.0.1:0 with control enabled; each test makes a
 * fresh heap "trace" owned by the main thread, which serves safepoints while a client
 * thread sends each request. Allocations come from known lines of this file (NEW_AT), so
 * that statistics can be checked exactly:
 *  - tracing status and control: start (exact, sampled), stop, clear, reset_peak, their
 *    effect on the status; 403 without control; 409 not_tracing;
 *  - statistics by lineno, filename and traceback, cumulative, include / exclude
 *    filters, limit / offset, differences from a kept snapshot (ordering);
 *  - kept snapshots: default labels, the bound of 8 per heap;
 *  - an object's traceback (traced, untraced, bad ids), and the object endpoint's;
 *  - the allocator (bytes add up, the text layout), the pprof profile (gzip), /metrics;
 *  - every parameter error. */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <jansson.h>

#include <rcgc/inspect.h>
#include <rcgc/rcgc.h>
#include <rcgc/tracemalloc.h>

#include "http_client.h"

#define HEAP "trace"
#define T "/v1/heaps/" HEAP

/* A leaf of 32 bytes: a block of 48 with the header. */
static const rcgc_type Leaf = {.name = "Leaf", .size = 32};
#define LEAF_BLOCK 48

static rcgc_heap *g_heap;
static void *g_held[256];
static size_t g_nheld;
static int g_port;
static json_t *g_docs[256]; /* parsed answers, released at teardown */
static size_t g_ndocs;

/* rcgc_new at this line, storing the line in line_var (rcgc_new records __LINE__ of
 * the same line). */
#define NEW_AT(line_var) ((line_var) = __LINE__, hold(rcgc_new(g_heap, &Leaf)))

static void *hold(void *o)
{
    assert_non_null(o);
    assert_true(g_nheld < sizeof g_held / sizeof g_held[0]);
    g_held[g_nheld++] = o;
    return o;
}

/* The allocation sites: A and B, each a function of its own; alloc_n calls them at
 * g_line_call. */
static int g_line_a, g_line_b, g_line_call;

static void *alloc_a(void)
{
    return NEW_AT(g_line_a);
}

static void *alloc_b(void)
{
    return NEW_AT(g_line_b);
}

static void alloc_n(void *(*fn)(void), int n)
{
    for (int i = 0; i < n; i++)
        (void)(g_line_call = __LINE__, fn());
}

static int start_server(bool control)
{
    rcgc_inspect_options o = {.address = "127.0.0.1:0", .allow_control = control ? 1 : 0};
    if (rcgc_inspect_start(&o) != 0)
        return -1;
    g_port = rcgc_inspect_port();
    return g_port > 0 ? 0 : -1;
}

static int setup_group(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    return start_server(true);
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
    g_nheld = 0;
    rcgc_heap_options o = {.name = HEAP, .ignore_environment = true};
    g_heap = rcgc_heap_new_with(&o);
    return g_heap != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    while (g_nheld > 0)
        rcgc_decref(g_held[--g_nheld]);
    rcgc_heap_free(g_heap);
    g_heap = NULL;
    while (g_ndocs > 0)
        json_decref(g_docs[--g_ndocs]);
    return 0;
}

/* ---- requests, served by the owner meanwhile ---- */

/* method target on a client thread while this (owner) thread serves safepoints.
 * Returns: the status; *out the response (free it). */
static int request(const char *method, const char *target, http_response *out)
{
    int status = http_request_serving(g_port, method, target, NULL, NULL, &g_heap, 1, out);
    assert_true(status >= 0);
    return status;
}

/* method target, any status. Returns: the status; *doc the JSON body (kept until
 * teardown). */
__attribute__((format(printf, 3, 0))) static int vjson(const char *method, json_t **doc,
                                                       const char *fmt, va_list ap)
{
    char target[1024];
    int n = vsnprintf(target, sizeof target, fmt, ap);
    assert_true(n > 0 && (size_t)n < sizeof target);
    http_response r;
    int status = request(method, target, &r);
    json_error_t err;
    json_t *j = json_loadb(r.body, r.body_len, 0, &err);
    if (j == NULL)
        print_error("%s %s: %d, not JSON: %s\n", method, target, status, err.text);
    http_response_free(&r);
    assert_non_null(j);
    assert_true(g_ndocs < sizeof g_docs / sizeof g_docs[0]);
    g_docs[g_ndocs++] = j;
    assert_int_equal(json_integer_value(json_object_get(j, "protocol")), 1);
    *doc = j;
    return status;
}

/* method target expecting status want. Returns: the document. */
__attribute__((format(printf, 3, 4))) static json_t *expect(const char *method, int want,
                                                            const char *fmt, ...)
{
    json_t *j;
    va_list ap;
    va_start(ap, fmt);
    int status = vjson(method, &j, fmt, ap);
    va_end(ap);
    if (status != want) {
        char *text = json_dumps(j, JSON_COMPACT);
        print_error("%s: expected %d, got %d %s\n", fmt, want, status, text ? text : "");
        free(text);
    }
    assert_int_equal(status, want);
    return j;
}

#define GET_OK(...) expect("GET", 200, __VA_ARGS__)
#define POST_OK(...) expect("POST", 200, __VA_ARGS__)

/* method target expecting status and error code. */
__attribute__((format(printf, 4, 5))) static void
expect_error(const char *method, int want, const char *code, const char *fmt, ...)
{
    json_t *j;
    va_list ap;
    va_start(ap, fmt);
    int status = vjson(method, &j, fmt, ap);
    va_end(ap);
    const char *got = json_string_value(json_object_get(json_object_get(j, "error"), "code"));
    if (status != want || got == NULL || strcmp(got, code) != 0)
        print_error("%s %s: expected %d %s, got %d %s\n", method, fmt, want, code, status,
                    got ? got : "(no code)");
    assert_int_equal(status, want);
    assert_non_null(got);
    assert_string_equal(got, code);
}

static const char *str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    if (s == NULL)
        print_error("no string \"%s\"\n", key);
    assert_non_null(s);
    return s;
}

static unsigned long long u64(json_t *o, const char *key)
{
    const char *s = str(o, key);
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    assert_true(*s != '\0' && *end == '\0');
    return v;
}

static long long i64(json_t *o, const char *key)
{
    const char *s = str(o, key);
    char *end;
    long long v = strtoll(s, &end, 10);
    assert_true(*s != '\0' && *end == '\0');
    return v;
}

static json_int_t num(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

static bool flag(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    assert_true(json_is_boolean(v));
    return json_is_true(v);
}

static json_t *list(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    assert_true(json_is_array(v));
    return v;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* The first frame of entry e's traceback: is it this file at line? */
static bool at_line(json_t *e, int line)
{
    json_t *f = json_array_get(json_object_get(e, "traceback"), 0);
    const char *file = json_string_value(json_object_get(f, "file"));
    return file != NULL && ends_with(file, "test_tracing.c") &&
           json_integer_value(json_object_get(f, "line")) == line;
}

/* The entry of the statistics whose first frame is this file at line, or NULL. */
static json_t *entry_at(json_t *stats, int line)
{
    json_t *entries = list(stats, "entries");
    for (size_t i = 0; i < json_array_size(entries); i++)
        if (at_line(json_array_get(entries, i), line))
            return json_array_get(entries, i);
    return NULL;
}

static json_t *start_exact(int frames)
{
    json_t *s = POST_OK(T "/tracing?action=start&frames=%d", frames);
    assert_true(flag(s, "tracing"));
    assert_string_equal(str(s, "mode"), "exact");
    assert_int_equal(num(s, "traceback_limit"), frames);
    return s;
}

/* Starts exact tracing with frames frames, then allocates na objects at site A and nb
 * at site B. */
static void traced_sites(int frames, int na, int nb)
{
    start_exact(frames);
    alloc_n(alloc_a, na);
    alloc_n(alloc_b, nb);
}

/* ---- tests ---- */

static void test_tracing_control_forbidden(void **state)
{
    (void)state;
    rcgc_inspect_stop();
    assert_int_equal(start_server(false), 0);
    expect_error("POST", 403, "control_disabled", T "/tracing?action=start");
    expect_error("POST", 403, "control_disabled", T "/tracing/snapshots");
    GET_OK(T "/tracing"); /* reading needs no control */
    GET_OK(T "/tracing/snapshots");
    rcgc_inspect_stop();
    assert_int_equal(start_server(true), 0);
}

static void test_tracing_not_tracing(void **state)
{
    (void)state;
    json_t *s = GET_OK(T "/tracing");
    assert_false(flag(s, "tracing"));
    assert_string_equal(str(s, "mode"), "off");
    assert_string_equal(str(s, "sample_bytes"), "0");
    expect_error("GET", 409, "not_tracing", T "/tracing/statistics");
    expect_error("GET", 409, "not_tracing", T "/pprof/heap");
    expect_error("POST", 409, "not_tracing", T "/tracing/snapshots");
    expect_error("GET", 404, "heap_not_found", "/v1/heaps/no-such-heap/tracing");
    expect_error("GET", 404, "heap_not_found", "/v1/heaps/no-such-heap/tracing/statistics");
    /* the heap is looked for before the snapshot to compare with */
    expect_error("GET", 404, "heap_not_found",
                 "/v1/heaps/no-such-heap/tracing/statistics?base=1");
}

static void test_tracing_start_stop_clear_peak(void **state)
{
    (void)state;
    start_exact(4);
    alloc_n(alloc_a, 10);
    json_t *s = POST_OK(T "/tracing?action=reset_peak");
    assert_int_equal(u64(s, "traces"), 10);
    assert_int_equal(u64(json_object_get(s, "traced"), "current"), 10 * LEAF_BLOCK);
    assert_true(u64(s, "memory") > 0);
    /* Free half: the peak stays until reset_peak. */
    for (int i = 0; i < 5; i++)
        rcgc_decref(g_held[--g_nheld]);
    s = POST_OK(T "/tracing?action=start&frames=9"); /* tracing already: nothing changes */
    assert_int_equal(num(s, "traceback_limit"), 4);
    assert_int_equal(u64(json_object_get(s, "traced"), "current"), 5 * LEAF_BLOCK);
    assert_int_equal(u64(json_object_get(s, "traced"), "peak"), 10 * LEAF_BLOCK);
    s = POST_OK(T "/tracing?action=reset_peak");
    assert_int_equal(u64(json_object_get(s, "traced"), "peak"), 5 * LEAF_BLOCK);
    /* GET reads the snapshot the action published. */
    s = GET_OK(T "/tracing");
    assert_int_equal(u64(json_object_get(s, "traced"), "peak"), 5 * LEAF_BLOCK);
    s = POST_OK(T "/tracing?action=clear");
    assert_true(flag(s, "tracing"));
    assert_int_equal(u64(s, "traces"), 0);
    assert_int_equal(u64(json_object_get(s, "traced"), "current"), 0);
    s = POST_OK(T "/tracing?action=stop");
    assert_false(flag(s, "tracing"));
    assert_string_equal(str(s, "mode"), "off");
    s = POST_OK(T "/tracing?action=start&sample_bytes=9007199254740991"); /* the largest */
    assert_string_equal(str(s, "sample_bytes"), "9007199254740991");
    POST_OK(T "/tracing?action=stop");
    s = POST_OK(T "/tracing?action=start&frames=2&sample_bytes=4096");
    assert_string_equal(str(s, "mode"), "sampled");
    assert_string_equal(str(s, "sample_bytes"), "4096");
    assert_int_equal(num(s, "traceback_limit"), 2);
    s = GET_OK(T "/tracing");
    assert_string_equal(str(s, "mode"), "sampled");
    json_t *st = GET_OK(T "/tracing/statistics");
    assert_string_equal(str(st, "sample_bytes"), "4096");
    POST_OK(T "/tracing?action=stop");
}

static void test_tracing_bad_parameters(void **state)
{
    (void)state;
    static const char *const posts[] = {
        "action=banana",
        "action=start&frames=0",
        "action=start&frames=65536",
        "action=start&frames=x",
        "action=start&sample_bytes=0",
        "action=start&sample_bytes=abc",
        "action=stop&frames=2",
        "action=clear&sample_bytes=8",
        /* the protocol's range ends at 2^53 - 1, the largest integer JSON keeps exact */
        "action=start&sample_bytes=9007199254740992",
        "action=start&sample_bytes=9999999999999999999",
    };
    expect_error("POST", 400, "missing_parameter", T "/tracing");
    for (size_t i = 0; i < sizeof posts / sizeof posts[0]; i++)
        expect_error("POST", 400, "bad_parameter", T "/tracing?%s", posts[i]);
    expect_error("POST", 400, "unknown_parameter", T "/tracing?action=start&frame=2");
    start_exact(1);
    static const char *const stats[] = {
        "key=line",    "cumulative=yes",
        "limit=0",     "limit=1001",
        "offset=-1",   "base=0",
        "base=abc",    "include=",
        "include=:12", "include=*.c:0", /* lines start at 1; without ':LINE' any line matches */
        "exclude=",    "key=traceback&cumulative=true",
    };
    for (size_t i = 0; i < sizeof stats / sizeof stats[0]; i++)
        expect_error("GET", 400, "bad_parameter", T "/tracing/statistics?%s", stats[i]);
    expect_error("GET", 400, "duplicate_parameter",
                 T "/tracing/statistics?key=lineno&key=lineno");
    expect_error("GET", 400, "unknown_parameter", T "/tracing/statistics?sort=size");
    expect_error("GET", 404, "snapshot_not_found",
                 T "/tracing/statistics?base=9007199254740991");
    expect_error("POST", 400, "bad_parameter", T "/tracing/snapshots?label=no%%20spaces");
    expect_error("GET", 400, "bad_parameter", T "/allocator?format=xml");
    expect_error("GET", 400, "unknown_parameter", T "/pprof/heap?seconds=1");
    POST_OK(T "/tracing?action=stop");
}

static void test_tracing_statistics_by_key(void **state)
{
    (void)state;
    traced_sites(1, 5, 3);
    json_t *s = GET_OK(T "/tracing/statistics?include=*test_tracing.c");
    assert_string_equal(str(s, "key"), "lineno");
    assert_false(flag(s, "cumulative"));
    assert_int_equal(num(s, "traceback_limit"), 1);
    assert_int_equal(num(s, "total_entries"), 2);
    assert_int_equal(num(s, "limit"), 50);
    assert_int_equal(num(s, "offset"), 0);
    assert_false(flag(s, "truncated"));
    assert_true(json_is_null(json_object_get(s, "base")));
    assert_int_equal(u64(json_object_get(s, "total"), "count"), 8);
    assert_int_equal(u64(json_object_get(s, "total"), "size"), 8 * LEAF_BLOCK);
    json_t *e = json_array_get(list(s, "entries"), 0); /* the largest first */
    assert_true(at_line(e, g_line_a));
    assert_int_equal(u64(e, "count"), 5);
    assert_int_equal(u64(e, "size"), 5 * LEAF_BLOCK);
    assert_null(json_object_get(e, "size_diff"));
    e = json_array_get(list(s, "entries"), 1);
    assert_true(at_line(e, g_line_b));
    assert_int_equal(u64(e, "count"), 3);
    json_t *f = json_array_get(json_object_get(e, "traceback"), 0);
    assert_true(json_is_string(json_object_get(f, "function")) ||
                json_is_null(json_object_get(f, "function")));

    /* A page of one. */
    s = GET_OK(T "/tracing/statistics?include=*test_tracing.c&limit=1&offset=1");
    assert_int_equal(json_array_size(list(s, "entries")), 1);
    assert_true(at_line(json_array_get(list(s, "entries"), 0), g_line_b));
    assert_false(flag(s, "truncated"));
    s = GET_OK(T "/tracing/statistics?include=*test_tracing.c&limit=1");
    assert_true(flag(s, "truncated"));

    s = GET_OK(T "/tracing/statistics?key=filename&include=*test_tracing.c");
    assert_int_equal(json_array_size(list(s, "entries")), 1);
    e = json_array_get(list(s, "entries"), 0);
    assert_true(at_line(e, 0));
    assert_int_equal(u64(e, "count"), 8);
    f = json_array_get(json_object_get(e, "traceback"), 0);
    assert_true(json_is_null(json_object_get(f, "function")));
}

static void test_tracing_statistics_traceback_cumulative(void **state)
{
    (void)state;
    traced_sites(8, 4, 2);
    json_t *s = GET_OK(T "/tracing/statistics?key=traceback&include=*test_tracing.c");
    assert_int_equal(num(s, "traceback_limit"), 8);
    assert_int_equal(num(s, "total_entries"), 2);
    json_t *e = json_array_get(list(s, "entries"), 0);
    assert_true(at_line(e, g_line_a));
    size_t depth = json_array_size(json_object_get(e, "traceback"));
    assert_true(depth > 1 && depth <= 8); /* the callers, from the C stack */

    json_t *plain = GET_OK(T "/tracing/statistics?key=lineno");
    json_t *cum = GET_OK(T "/tracing/statistics?key=lineno&cumulative=true");
    assert_true(flag(cum, "cumulative"));
    assert_true(num(cum, "total_entries") > num(plain, "total_entries"));
    e = entry_at(cum, g_line_a);
    assert_non_null(e);
    assert_int_equal(u64(e, "count"), 4);
    /* Frames from the C stack name the executable (".../test_tracing", line 0), or with
     * libdw and line tables this file at the line of the call (alloc_n's, g_line_call).
     * With key=traceback every frame is tested (all_frames): the callers match; with
     * key=lineno only the allocating statement (".../test_tracing.c", g_line_a/b) is. */
    s = GET_OK(T "/tracing/statistics?key=traceback&include=*/test_tracing"
                 "&include=*/test_tracing.c:%d",
               g_line_call);
    assert_int_equal(num(s, "total_entries"), 2);
    s = GET_OK(T "/tracing/statistics?key=lineno&include=*/test_tracing"
                 "&include=*/test_tracing.c:%d",
               g_line_call);
    assert_int_equal(num(s, "total_entries"), 0);
}

static void test_tracing_filters(void **state)
{
    (void)state;
    traced_sites(1, 2, 6);
    json_t *s = GET_OK(T "/tracing/statistics?include=*test_tracing.c:%d", g_line_a);
    assert_int_equal(num(s, "total_entries"), 1);
    assert_true(at_line(json_array_get(list(s, "entries"), 0), g_line_a));
    assert_int_equal(u64(json_object_get(s, "total"), "count"), 2);
    s = GET_OK(T "/tracing/statistics?exclude=*test_tracing.c:%d", g_line_b);
    assert_null(entry_at(s, g_line_b));
    assert_non_null(entry_at(s, g_line_a));
    /* include repeats: either matches. */
    s = GET_OK(T "/tracing/statistics?include=*test_tracing.c:%d&include=*test_tracing.c:%d",
               g_line_a, g_line_b);
    assert_int_equal(num(s, "total_entries"), 2);
    s = GET_OK(T "/tracing/statistics?include=*test_tracing.c&exclude=*test_tracing.c");
    assert_int_equal(num(s, "total_entries"), 0);
    assert_int_equal(u64(json_object_get(s, "total"), "count"), 0);
    s = GET_OK(T "/tracing/statistics?include=no-such-file.c");
    assert_int_equal(json_array_size(list(s, "entries")), 0);
}

static void test_tracing_base_diff(void **state)
{
    (void)state;
    traced_sites(1, 4, 2);
    json_t *snap = expect("POST", 201, T "/tracing/snapshots?label=before");
    assert_string_equal(str(snap, "label"), "before");
    assert_int_equal(u64(snap, "traces"), 6);
    assert_int_equal(u64(snap, "size"), 6 * LEAF_BLOCK);
    const char *time = str(snap, "time");
    assert_true(strlen(time) == 24 && time[23] == 'Z');
    const char *id = str(snap, "id");
    alloc_n(alloc_b, 7); /* B grows past A */
    json_t *s = GET_OK(T "/tracing/statistics?base=%s&include=*test_tracing.c", id);
    json_t *base = json_object_get(s, "base");
    assert_string_equal(str(base, "id"), id);
    assert_string_equal(str(base, "label"), "before");
    json_t *e = json_array_get(list(s, "entries"), 0); /* the largest |size_diff| */
    assert_true(at_line(e, g_line_b));
    assert_int_equal(i64(e, "size_diff"), 7 * LEAF_BLOCK);
    assert_int_equal(i64(e, "count_diff"), 7);
    assert_int_equal(u64(e, "count"), 9);
    e = json_array_get(list(s, "entries"), 1);
    assert_true(at_line(e, g_line_a));
    assert_int_equal(i64(e, "size_diff"), 0);
    /* Freeing makes a negative difference. */
    while (g_nheld > 0)
        rcgc_decref(g_held[--g_nheld]);
    s = GET_OK(T "/tracing/statistics?base=%s&include=*test_tracing.c", id);
    e = json_array_get(list(s, "entries"), 0);
    assert_true(at_line(e, g_line_a));
    assert_int_equal(i64(e, "size_diff"), -4 * LEAF_BLOCK);
    assert_int_equal(u64(e, "size"), 0);
}

static void test_tracing_snapshots_bound(void **state)
{
    (void)state;
    start_exact(1);
    alloc_n(alloc_a, 1);
    char ids[9][24];
    for (int i = 0; i < 9; i++) {
        json_t *s = expect("POST", 201, T "/tracing/snapshots");
        snprintf(ids[i], sizeof ids[i], "%s", str(s, "id"));
        const char *label = str(s, "label"); /* the default label: s<id> */
        assert_true(label[0] == 's');
        assert_string_equal(label + 1, ids[i]);
        assert_string_equal(str(s, "heap"), HEAP);
    }
    json_t *l = GET_OK(T "/tracing/snapshots");
    json_t *snaps = list(l, "snapshots");
    assert_int_equal(json_array_size(snaps), 8);
    for (size_t i = 0; i < 8; i++)
        assert_string_equal(str(json_array_get(snaps, i), "id"), ids[i + 1]); /* oldest first */
    expect_error("GET", 404, "snapshot_not_found", T "/tracing/statistics?base=%s", ids[0]);
    GET_OK(T "/tracing/statistics?base=%s", ids[1]);
}

static void test_tracing_object_traceback(void **state)
{
    (void)state;
    void *untraced = hold(rcgc_new(g_heap, &Leaf));
    start_exact(3);
    void *traced = alloc_a();
    char target[128];
    json_t *t = GET_OK(T "/objects/%" PRIuPTR "/traceback", (uintptr_t)traced);
    assert_true(flag(t, "traced"));
    snprintf(target, sizeof target, "%" PRIuPTR, (uintptr_t)traced);
    assert_string_equal(str(t, "id"), target);
    snprintf(target, sizeof target, "0x%" PRIxPTR, (uintptr_t)traced);
    assert_string_equal(str(t, "address"), target);
    assert_true(at_line(t, g_line_a));
    size_t depth = json_array_size(json_object_get(t, "traceback"));
    assert_true(depth >= 1 && depth <= 3);
    /* The hex form of the id is accepted. */
    t = GET_OK(T "/objects/%s/traceback", target);
    assert_true(flag(t, "traced"));
    json_t *o = GET_OK(T "/objects/%" PRIuPTR, (uintptr_t)traced);
    assert_true(at_line(o, g_line_a));

    t = GET_OK(T "/objects/%" PRIuPTR "/traceback", (uintptr_t)untraced);
    assert_false(flag(t, "traced"));
    assert_true(json_is_null(json_object_get(t, "traceback")));
    o = GET_OK(T "/objects/%" PRIuPTR, (uintptr_t)untraced);
    assert_true(json_is_null(json_object_get(o, "traceback")));

    expect_error("GET", 400, "bad_id", T "/objects/banana/traceback");
    expect_error("GET", 400, "bad_id", T "/objects/0/traceback");
    expect_error("GET", 400, "bad_id", T "/objects/0123/traceback");
    expect_error("GET", 404, "object_not_found", T "/objects/16/traceback");
    expect_error("GET", 404, "heap_not_found", "/v1/heaps/nope/objects/16/traceback");
}

static void test_tracing_allocator(void **state)
{
    (void)state;
    alloc_n(alloc_a, 20);
    rcgc_safepoint(g_heap);
    POST_OK(T "/tracing?action=stop"); /* publishes a fresh snapshot */
    json_t *a = GET_OK(T "/allocator");
    assert_int_equal(num(a, "small_request_threshold"), 512);
    json_t *b = json_object_get(a, "bytes");
    unsigned long long sum = u64(b, "allocated_blocks") + u64(b, "available_blocks") +
                             u64(b, "unused_pools") + u64(b, "pool_headers") +
                             u64(b, "quantization") + u64(b, "arena_alignment");
    assert_int_equal(sum, u64(b, "total"));
    unsigned long long arenas = u64(json_object_get(a, "arenas"), "current");
    assert_true(arenas >= 1);
    assert_int_equal(u64(b, "total"), arenas * (unsigned long long)num(a, "arena_size") +
                                          u64(b, "arena_alignment"));
    assert_int_equal(u64(b, "unused_pools"),
                     u64(a, "unused_pools") * (unsigned long long)num(a, "pool_size"));
    json_t *c;
    size_t i;
    bool leaf_class = false;
    json_array_foreach(list(a, "classes"), i, c)
    {
        assert_true(num(c, "pools") > 0);
        if (num(c, "size") == LEAF_BLOCK)
            leaf_class = u64(c, "blocks_in_use") >= 20;
    }
    assert_true(leaf_class);

    http_response r;
    assert_int_equal(request("GET", T "/allocator?format=text", &r), 200);
    char ct[64];
    assert_non_null(http_header(&r, "Content-Type", ct, sizeof ct));
    assert_string_equal(ct, "text/plain; charset=utf-8");
    const char *first = "Small block threshold = 512, in 32 size classes.\n";
    assert_true(r.body_len > strlen(first));
    assert_memory_equal(r.body, first, strlen(first));
    assert_non_null(strstr(r.body, "# arenas allocated current"));
    http_response_free(&r);
}

static void test_tracing_pprof(void **state)
{
    (void)state;
    start_exact(4);
    alloc_n(alloc_a, 3);
    http_response r;
    assert_int_equal(request("GET", T "/pprof/heap", &r), 200);
    char h[128];
    assert_non_null(http_header(&r, "Content-Type", h, sizeof h));
    assert_string_equal(h, "application/octet-stream");
    assert_non_null(http_header(&r, "Content-Disposition", h, sizeof h));
    assert_string_equal(h, "attachment; filename=\"rcgc-" HEAP "-heap.pb.gz\"");
    /* A gzip member (RFC 1952): magic, DEFLATE, and a trailer whose ISIZE is the length
     * of a non-empty profile. */
    const unsigned char *p = (const unsigned char *)r.body;
    assert_true(r.body_len > 18);
    assert_int_equal(p[0], 0x1f);
    assert_int_equal(p[1], 0x8b);
    assert_int_equal(p[2], 8);
    const unsigned char *t = p + r.body_len - 4;
    uint32_t isize =
        (uint32_t)t[0] | (uint32_t)t[1] << 8 | (uint32_t)t[2] << 16 | (uint32_t)t[3] << 24;
    assert_true(isize > 0);
    http_response_free(&r);
}

static void test_tracing_metrics(void **state)
{
    (void)state;
    start_exact(1);
    alloc_n(alloc_a, 3);
    POST_OK(T "/tracing?action=reset_peak"); /* publishes */
    http_response r;
    assert_int_equal(request("GET", "/metrics", &r), 200);
    static const char *const lines[] = {
        "# TYPE rcgc_allocator_arenas gauge\n",
        "# TYPE rcgc_allocator_arenas_reclaimed_total counter\n",
        "rcgc_allocator_bytes{heap=\"" HEAP "\",state=\"allocated\"} ",
        "rcgc_allocator_bytes{heap=\"" HEAP "\",state=\"available\"} ",
        "rcgc_allocator_bytes{heap=\"" HEAP "\",state=\"unused\"} ",
        "rcgc_allocator_bytes{heap=\"" HEAP "\",state=\"overhead\"} ",
        "rcgc_tracemalloc_traced_bytes{heap=\"" HEAP "\"} 144\n",
        "rcgc_tracemalloc_traced_peak_bytes{heap=\"" HEAP "\"} 144\n",
        "rcgc_tracemalloc_memory_bytes{heap=\"" HEAP "\"} ",
        "rcgc_tracemalloc_tracing{heap=\"" HEAP "\"} 1\n",
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        if (strstr(r.body, lines[i]) == NULL)
            print_error("/metrics lacks: %s\n", lines[i]);
        assert_non_null(strstr(r.body, lines[i]));
    }
    http_response_free(&r);
}

int main(void)
{
#define TEST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        TEST(test_tracing_control_forbidden),
        TEST(test_tracing_not_tracing),
        TEST(test_tracing_start_stop_clear_peak),
        TEST(test_tracing_bad_parameters),
        TEST(test_tracing_statistics_by_key),
        TEST(test_tracing_statistics_traceback_cumulative),
        TEST(test_tracing_filters),
        TEST(test_tracing_base_diff),
        TEST(test_tracing_snapshots_bound),
        TEST(test_tracing_object_traceback),
        TEST(test_tracing_allocator),
        TEST(test_tracing_pprof),
        TEST(test_tracing_metrics),
    };
    return cmocka_run_group_tests(tests, setup_group, teardown_group);
}
