/* test_http.c: the inspection server over real HTTP. A server runs in this process on
 * 127.0.0.1:0; the heap it inspects is owned by the test's main thread, which serves
 * safepoints while each request runs on a client thread. Every endpoint, the error
 * answers, bad clients (silent, vanishing, malformed, oversized), start / stop edge
 * cases, and clients hammering the server while the owner churns (run under TSan). */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <jansson.h>

#include <rcgc/inspect.h>
#include <rcgc/rcgc.h>

#include "harness.h"
#include "http_client.h"

/* ---- the host: one heap owned by the main thread (Node: harness.h) ---- */

static const rcgc_type Blob = {.name = "Blob", .size = 200};

#define KEPT 64
static rcgc_heap *g_heap;
static void *g_kept[4 * KEPT];
static size_t g_nkept;
static int g_port;

static void keep(void *obj)
{
    assert_non_null(obj);
    assert_true(g_nkept < sizeof g_kept / sizeof g_kept[0]);
    g_kept[g_nkept++] = obj;
}

static int start_with(const rcgc_inspect_options *o)
{
    int r = rcgc_inspect_start(o);
    g_port = rcgc_inspect_port();
    return r;
}

static void restart(const rcgc_inspect_options *o)
{
    rcgc_inspect_stop();
    assert_int_equal(rcgc_inspect_port(), 0);
    assert_int_equal(start_with(o), 0);
    assert_true(g_port > 0);
}

static const rcgc_inspect_options default_opts = {.address = "127.0.0.1:0", .allow_control = 1};

static int setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    rcgc_heap_options o = {.name = "web", .ignore_environment = true};
    g_heap = rcgc_heap_new_with(&o);
    if (g_heap == NULL)
        return -1;
    rcgc_disable(g_heap); /* collections only when the tests ask */
    for (int i = 0; i < KEPT; i++) {
        keep(rcgc_new(g_heap, &Node));
        keep(rcgc_new(g_heap, &Blob));
    }
    return start_with(&default_opts) != 0 || g_port <= 0;
}

static int teardown(void **state)
{
    (void)state;
    rcgc_inspect_stop();
    for (size_t i = 0; i < g_nkept; i++)
        rcgc_decref(g_kept[i]);
    g_nkept = 0;
    rcgc_heap_free(g_heap);
    return 0;
}

/* ---- requests, served by the owner meanwhile ---- */

/* Runs the request on a client thread while this (owner) thread serves safepoints.
 * Returns: the status; *out holds the response (free it), or pass NULL. */
static int req(const char *method, const char *target, const char *headers, const char *body,
               http_response *out)
{
    http_response r;
    int status = http_request_serving(g_port, method, target, headers, body, &g_heap, 1, &r);
    assert_true(status >= 0); /* the client thread started */
    if (out != NULL)
        *out = r;
    else
        http_response_free(&r);
    return status;
}

/* GET target, expecting 200 and a JSON object with "protocol": 1. Returns: the
 * document (json_decref it). */
static json_t *get_json(const char *target)
{
    http_response r;
    int status = req("GET", target, NULL, NULL, &r);
    if (status != 200)
        print_error("GET %s -> %d %s\n", target, status, r.body ? r.body : "");
    assert_int_equal(status, 200);
    char ct[64];
    assert_non_null(http_header(&r, "Content-Type", ct, sizeof ct));
    assert_string_equal(ct, "application/json");
    json_error_t err;
    json_t *j = json_loadb(r.body, r.body_len, 0, &err);
    if (j == NULL)
        print_error("GET %s: not JSON: %s\n", target, err.text);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "protocol")), 1);
    http_response_free(&r);
    return j;
}

/* Asserts status and {"protocol":1,"error":{"code":code,...}}. */
static void expect_error(const http_response *r, int status, const char *code)
{
    if (r->status != status)
        print_error("expected %d %s, got %d %s\n", status, code, r->status,
                    r->body ? r->body : "");
    assert_int_equal(r->status, status);
    json_t *j = json_loadb(r->body, r->body_len, 0, NULL);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "protocol")), 1);
    json_t *e = json_object_get(j, "error");
    assert_string_equal(json_string_value(json_object_get(e, "code")), code);
    assert_true(json_is_string(json_object_get(e, "message")));
    json_decref(j);
}

static void req_error(const char *method, const char *target, const char *headers,
                      const char *body, int status, const char *code)
{
    http_response r;
    req(method, target, headers, body, &r);
    expect_error(&r, status, code);
    http_response_free(&r);
}

static const char *str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    assert_non_null(s);
    return s;
}

/* Publishes a fresh snapshot: the owner publishes at a safepoint once the newest is
 * older than 50 ms. */
static void publish(void)
{
    sleep_ms(60);
    rcgc_safepoint(g_heap);
}

/* ---- endpoints ---- */

static void test_http_process(void **state)
{
    (void)state;
    json_t *j = get_json("/v1/process");
    assert_int_equal(json_integer_value(json_object_get(j, "pid")), getpid());
    assert_true(json_array_size(json_object_get(j, "argv")) >= 1);
    assert_non_null(strstr(str(j, "program"), "test_http"));
    assert_true(json_is_false(json_object_get(j, "argv_truncated")));
    assert_true(json_integer_value(json_object_get(j, "threads")) >= 2);
    assert_true(json_integer_value(json_object_get(j, "heaps")) >= 1);
    json_t *mem = json_object_get(j, "memory");
    assert_true(strtoull(str(mem, "resident_bytes"), NULL, 10) > 0);
    assert_string_equal(str(j, "rcgc_version"), rcgc_version());
    assert_true(json_is_string(json_object_get(j, "start_time")));
    json_t *srv = json_object_get(j, "server");
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", g_port);
    assert_string_equal(str(srv, "address"), addr);
    assert_true(json_is_true(json_object_get(srv, "control")));
    assert_true(json_is_false(json_object_get(srv, "auth")));
    json_decref(j);
}

static void test_http_heaps(void **state)
{
    (void)state;
    rcgc_heap_options o = {.name = "a/b c", .ignore_environment = true};
    rcgc_heap *other = rcgc_heap_new_with(&o); /* owned by this thread too */
    assert_non_null(other);
    json_t *j = get_json("/v1/heaps");
    json_t *heaps = json_object_get(j, "heaps");
    bool web = false, ab = false;
    for (size_t i = 0; i < json_array_size(heaps); i++) {
        json_t *h = json_array_get(heaps, i);
        if (strcmp(str(h, "name"), "web") == 0) {
            web = true;
            assert_true(strtoull(str(h, "objects"), NULL, 10) >= 2 * KEPT);
            assert_string_not_equal(str(json_object_get(h, "snapshot"), "serial"), "0");
        }
        ab |= strcmp(str(h, "name"), "a/b c") == 0;
    }
    assert_true(web && ab);
    json_decref(j);
    /* A name with '/' and ' ' is reached percent-encoded. */
    j = get_json("/v1/heaps/a%2Fb%20c");
    assert_string_equal(str(j, "name"), "a/b c");
    json_decref(j);
    rcgc_heap_free(other);
    req_error("GET", "/v1/heaps/a%2Fb%20c", NULL, NULL, 404, "heap_not_found");
}

static void test_http_heap(void **state)
{
    (void)state;
    json_t *j = get_json("/v1/heaps/web");
    assert_string_equal(str(j, "name"), "web");
    assert_true(json_is_false(json_object_get(j, "enabled")));
    json_t *gens = json_object_get(j, "generations");
    assert_int_equal(json_array_size(gens), 3);
    for (size_t g = 0; g < 3; g++) {
        json_t *e = json_array_get(gens, g);
        assert_int_equal(json_integer_value(json_object_get(e, "generation")), (json_int_t)g);
        assert_true(json_is_string(json_object_get(e, "pause_total_ns")));
    }
    assert_string_equal(str(json_array_get(gens, 0), "threshold"), "700");
    assert_true(json_integer_value(json_object_get(j, "types")) >= 2);
    json_t *debug = json_object_get(j, "debug");
    assert_int_equal(json_integer_value(json_object_get(debug, "value")), 0);
    assert_int_equal(json_array_size(json_object_get(debug, "flags")), 0);
    json_decref(j);
}

static const char *entry_named(json_t *list, const char *key, const char *name, size_t *at)
{
    for (size_t i = 0; i < json_array_size(list); i++)
        if (strcmp(str(json_array_get(list, i), key), name) == 0) {
            if (at)
                *at = i;
            return name;
        }
    return NULL;
}

static void test_http_census(void **state)
{
    (void)state;
    publish();
    json_t *j = get_json("/v1/heaps/web/census");
    assert_string_equal(str(j, "sort"), "objects");
    json_t *types = json_object_get(j, "types");
    size_t at = 0;
    assert_non_null(entry_named(types, "type", "Blob", &at));
    json_t *blob = json_array_get(types, at);
    assert_string_equal(str(blob, "objects"), "64");
    assert_string_equal(str(blob, "bytes"), "13824"); /* 64 * (200 + 16-byte header) */
    assert_true(json_is_false(json_object_get(blob, "tracked")));
    assert_null(json_object_get(blob, "delta"));
    /* Sorted largest first. */
    unsigned long long prev = ~0ull;
    for (size_t i = 0; i < json_array_size(types); i++) {
        unsigned long long v = strtoull(str(json_array_get(types, i), "objects"), NULL, 10);
        assert_true(v <= prev);
        prev = v;
    }
    json_decref(j);
    /* Paginated. */
    j = get_json("/v1/heaps/web/census?limit=1&offset=1&sort=bytes");
    assert_int_equal(json_array_size(json_object_get(j, "types")), 1);
    assert_int_equal(json_integer_value(json_object_get(j, "offset")), 1);
    assert_true(strtoull(str(j, "total"), NULL, 10) >= 2);
    json_decref(j);
    j = get_json("/v1/heaps/web/census?limit=1&sort=bytes");
    assert_true(json_is_true(json_object_get(j, "truncated")));
    assert_string_equal(str(json_array_get(json_object_get(j, "types"), 0), "type"), "Blob");
    json_decref(j);
    j = get_json("/v1/heaps/web/census?offset=1000");
    assert_int_equal(json_array_size(json_object_get(j, "types")), 0);
    assert_true(json_is_false(json_object_get(j, "truncated")));
    json_decref(j);
}

static void test_http_sites(void **state)
{
    (void)state;
    json_t *j = get_json("/v1/heaps/web/sites?type=Blob");
    json_t *sites = json_object_get(j, "sites");
    assert_int_equal(json_array_size(sites), 1);
    json_t *s = json_array_get(sites, 0);
    assert_non_null(strstr(str(s, "file"), "test_http.c"));
    assert_true(json_integer_value(json_object_get(s, "line")) > 0);
    assert_string_equal(str(s, "objects"), "64");
    assert_string_equal(str(j, "type"), "Blob");
    json_decref(j);
}

static void test_http_baselines(void **state)
{
    (void)state;
    http_response r;
    assert_int_equal(req("POST", "/v1/heaps/web/baselines?label=before", NULL, NULL, &r), 201);
    char loc[128];
    assert_non_null(http_header(&r, "Location", loc, sizeof loc));
    assert_string_equal(loc, "/v1/heaps/web/census?baseline=before");
    json_t *j = json_loadb(r.body, r.body_len, 0, NULL);
    assert_non_null(j);
    assert_true(json_is_false(json_object_get(j, "replaced")));
    assert_true(json_is_null(json_object_get(j, "evicted")));
    assert_string_equal(str(json_object_get(j, "baseline"), "label"), "before");
    json_decref(j);
    http_response_free(&r);

    for (int i = 0; i < 10; i++)
        keep(rcgc_new(g_heap, &Blob));
    publish();
    j = get_json("/v1/heaps/web/census?baseline=before");
    assert_string_equal(str(j, "sort"), "delta_objects");
    assert_string_equal(str(json_object_get(j, "baseline"), "label"), "before");
    json_t *first = json_array_get(json_object_get(j, "types"), 0);
    assert_string_equal(str(first, "type"), "Blob");
    assert_string_equal(str(json_object_get(first, "delta"), "objects"), "10");
    assert_string_equal(str(json_object_get(first, "baseline"), "objects"), "64");
    assert_string_equal(str(json_object_get(json_object_get(j, "totals"), "delta"), "objects"),
                        "10");
    json_decref(j);
    j = get_json("/v1/heaps/web/sites?baseline=before&sort=delta_bytes");
    first = json_array_get(json_object_get(j, "sites"), 0);
    assert_string_equal(str(json_object_get(first, "delta"), "bytes"), "2160");
    json_decref(j);

    /* Replacing a label, the default label, listing, eviction of the oldest. */
    assert_int_equal(req("POST", "/v1/heaps/web/baselines?label=before", NULL, NULL, &r), 201);
    j = json_loadb(r.body, r.body_len, 0, NULL);
    assert_true(json_is_true(json_object_get(j, "replaced")));
    json_decref(j);
    http_response_free(&r);
    assert_int_equal(req("POST", "/v1/heaps/web/baselines", NULL, NULL, &r), 201);
    j = json_loadb(r.body, r.body_len, 0, NULL);
    assert_int_equal(str(json_object_get(j, "baseline"), "label")[0], 'b');
    json_decref(j);
    http_response_free(&r);
    j = get_json("/v1/heaps/web/baselines");
    assert_int_equal(json_integer_value(json_object_get(j, "capacity")), 16);
    assert_int_equal(json_array_size(json_object_get(j, "baselines")), 2);
    json_decref(j);
    const char *evicted = NULL;
    for (int i = 0; i < 16; i++) {
        char target[96];
        snprintf(target, sizeof target, "/v1/heaps/web/baselines?label=l%d", i);
        assert_int_equal(req("POST", target, NULL, NULL, &r), 201);
        j = json_loadb(r.body, r.body_len, 0, NULL);
        if (i == 14) /* the 17th: the oldest ("before") goes */
            evicted = json_string_value(json_object_get(j, "evicted"));
        if (evicted != NULL && i == 14)
            assert_string_equal(evicted, "before");
        json_decref(j);
        http_response_free(&r);
    }
    j = get_json("/v1/heaps/web/baselines");
    assert_int_equal(json_array_size(json_object_get(j, "baselines")), 16);
    json_decref(j);
    req_error("GET", "/v1/heaps/web/census?baseline=before", NULL, NULL, 404,
              "baseline_not_found");
    req_error("GET", "/v1/heaps/nope/baselines", NULL, NULL, 404, "heap_not_found");
    req_error("POST", "/v1/heaps/web/baselines?label=a%20b", NULL, NULL, 400, "bad_parameter");
}

static void test_http_collect(void **state)
{
    (void)state;
    make_cycles(g_heap, &Node, 25, NULL);
    http_response r;
    assert_int_equal(req("POST", "/v1/heaps/web/collect?generation=2", NULL, NULL, &r), 200);
    json_t *j = json_loadb(r.body, r.body_len, 0, NULL);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "generation")), 2);
    assert_string_equal(str(j, "unreachable"), "25");
    assert_string_equal(str(j, "collected"), "25");
    assert_string_equal(str(j, "uncollectable"), "0");
    json_decref(j);
    http_response_free(&r);
    /* The collection shows in the heap's statistics at once (a fresh snapshot). */
    j = get_json("/v1/heaps/web");
    json_t *g2 = json_array_get(json_object_get(j, "generations"), 2);
    assert_string_not_equal(str(g2, "collections"), "0");
    json_decref(j);
    assert_int_equal(req("POST", "/v1/heaps/web/collect", NULL, NULL, NULL), 200);
    req_error("POST", "/v1/heaps/web/collect?generation=3", NULL, NULL, 400, "bad_parameter");
    req_error("POST", "/v1/heaps/nope/collect", NULL, NULL, 404, "heap_not_found");
    req_error("GET", "/v1/heaps/web/collect", NULL, NULL, 405, "method_not_allowed");
}

static void test_http_thresholds_and_debug(void **state)
{
    (void)state;
    static const char *json_ct = "Content-Type: application/json\r\n";
    http_response r;
    assert_int_equal(
        req("PUT", "/v1/heaps/web/thresholds", json_ct, "{\"threshold\":[800,\"20\",30]}", &r),
        200);
    json_t *j = json_loadb(r.body, r.body_len, 0, NULL);
    json_t *t = json_object_get(j, "threshold");
    assert_string_equal(json_string_value(json_array_get(t, 0)), "800");
    assert_string_equal(json_string_value(json_array_get(t, 1)), "20");
    assert_string_equal(json_string_value(json_array_get(t, 2)), "30");
    json_decref(j);
    http_response_free(&r);
    size_t th[3];
    rcgc_get_threshold(g_heap, th);
    assert_int_equal(th[0], 800);
    assert_int_equal(th[2], 30);
    j = get_json("/v1/heaps/web");
    assert_string_equal(str(json_array_get(json_object_get(j, "generations"), 1), "threshold"),
                        "20");
    json_decref(j);
    req_error("PUT", "/v1/heaps/web/thresholds", NULL, "{\"threshold\":[1,2,3]}", 415,
              "unsupported_media_type");
    req_error("PUT", "/v1/heaps/web/thresholds", json_ct, "{\"threshold\":[1,2]}", 400,
              "bad_body");
    req_error("PUT", "/v1/heaps/web/thresholds", json_ct, "nonsense", 400, "bad_body");
    rcgc_set_threshold(g_heap, 700, 10, 10);

    assert_int_equal(req("PUT", "/v1/heaps/web/debug", json_ct, "{\"flags\":[\"stats\"]}", &r),
                     200);
    j = json_loadb(r.body, r.body_len, 0, NULL);
    json_t *d = json_object_get(j, "debug");
    assert_int_equal(json_integer_value(json_object_get(d, "value")), RCGC_DEBUG_STATS);
    assert_string_equal(json_string_value(json_array_get(json_object_get(d, "flags"), 0)),
                        "stats");
    json_decref(j);
    http_response_free(&r);
    assert_int_equal(rcgc_get_debug(g_heap), RCGC_DEBUG_STATS);
    assert_int_equal(req("PUT", "/v1/heaps/web/debug", json_ct, "{\"flags\":[]}", NULL), 200);
    assert_int_equal(rcgc_get_debug(g_heap), 0);
    req_error("PUT", "/v1/heaps/web/debug", json_ct, "{\"flags\":[\"loud\"]}", 400, "bad_body");
}

static void test_http_metrics_and_root(void **state)
{
    (void)state;
    http_response r;
    assert_int_equal(req("GET", "/metrics", NULL, NULL, &r), 200);
    char ct[96];
    assert_string_equal(http_header(&r, "Content-Type", ct, sizeof ct),
                        "text/plain; version=0.0.4; charset=utf-8");
    assert_non_null(strstr(r.body, "rcgc_gc_collections_total{heap=\"web\",generation=\"2\"}"));
    assert_non_null(strstr(r.body, "rcgc_heap_live_objects{heap=\"web\",type=\"Blob\"}"));
    assert_non_null(strstr(r.body, "# TYPE rcgc_gc_pause_seconds histogram"));
    assert_int_equal(r.body[r.body_len - 1], '\n');
    http_response_free(&r);
    assert_int_equal(req("GET", "/", NULL, NULL, &r), 200);
    assert_string_equal(http_header(&r, "Content-Type", ct, sizeof ct),
                        "text/html; charset=utf-8");
#ifndef RCGC_TEST_WEB /* built without the dashboard: a page of links */
    assert_non_null(strstr(r.body, "href=\"/v1/heaps/web/census\""));
    assert_non_null(strstr(r.body, "href=\"/metrics\""));
#endif
    http_response_free(&r);
    /* HEAD: the headers of GET, no body. */
    assert_int_equal(req("HEAD", "/v1/heaps", NULL, NULL, &r), 200);
    assert_int_equal(r.body_len, 0);
    http_response_free(&r);
}

/* ---- the dashboard: GET / and GET /assets/{name} ---- */

static const char dashboard_csp[] =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/* Asserts that header name of r is want (NULL: that r lacks it). */
static void expect_header(const http_response *r, const char *name, const char *want)
{
    char v[512];
    const char *got = http_header(r, name, v, sizeof v);
    if (want == NULL) {
        assert_null(got);
        return;
    }
    if (got == NULL)
        print_error("no %s header\n", name);
    assert_non_null(got);
    assert_string_equal(got, want);
}

/* GET target: 200 with content type ct and a non-empty body. Returns: the response. */
static http_response get_file(const char *target, const char *ct)
{
    http_response r;
    int status = req("GET", target, NULL, NULL, &r);
    if (status != 200)
        print_error("GET %s -> %d %s\n", target, status, r.body ? r.body : "");
    assert_int_equal(status, 200);
    expect_header(&r, "Content-Type", ct);
    expect_header(&r, "X-Content-Type-Options", "nosniff");
    assert_true(r.body_len > 0);
    return r;
}

#ifdef RCGC_TEST_WEB
/* A request with a raw Host header. Returns: the response. */
static http_response with_host(const char *target, const char *host)
{
    char text[256];
    snprintf(text, sizeof text, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n",
             target, host);
    int fd = http_connect(g_port);
    assert_true(fd >= 0);
    assert_int_equal(http_send(fd, text, strlen(text)), 0);
    http_response r;
    assert_int_equal(http_read_response(fd, &r, 5000, false), 0);
    close(fd);
    return r;
}
#endif

static void test_http_dashboard(void **state)
{
    (void)state;
#ifndef RCGC_TEST_WEB
    skip(); /* built with RCGC_INSPECT_WEB=OFF: GET / is the page of links */
#else
    static const char *const js = "text/javascript; charset=utf-8";
    static const char *const css = "text/css; charset=utf-8";
    /* The page: HTML with its CSP, never cached, the same bytes as /assets/index.html. */
    http_response page = get_file("/", "text/html; charset=utf-8");
    expect_header(&page, "Content-Security-Policy", dashboard_csp);
    expect_header(&page, "Referrer-Policy", "no-referrer");
    expect_header(&page, "Cache-Control", "no-store");
    expect_header(&page, "ETag", NULL);
    http_response r = get_file("/assets/index.html", "text/html; charset=utf-8");
    expect_header(&r, "Content-Security-Policy", dashboard_csp);
    assert_int_equal(r.body_len, page.body_len);
    assert_memory_equal(r.body, page.body, page.body_len);
    http_response_free(&r);
    http_response_free(&page);

    /* The files: right type, an ETag, revalidated (no-cache) rather than never stored. */
    r = get_file("/assets/app.js", js);
    expect_header(&r, "Content-Security-Policy", NULL);
    expect_header(&r, "Cache-Control", "no-cache");
    char etag[64], inm[96];
    assert_non_null(http_header(&r, "ETag", etag, sizeof etag));
    assert_int_equal(etag[0], '"');
    http_response_free(&r);
    r = get_file("/assets/uplot.js", js);
    assert_non_null(strstr(r.body, "uPlot"));
    http_response_free(&r);
    r = get_file("/assets/uplot.css", css);
    assert_non_null(strstr(r.body, ".uplot"));
    http_response_free(&r);
    r = get_file("/assets/app.css", css);
    http_response_free(&r);

    /* If-None-Match: 304 without a body for the current ETag (weak or strong). */
    snprintf(inm, sizeof inm, "If-None-Match: %s\r\n", etag);
    assert_int_equal(req("GET", "/assets/app.js", inm, NULL, &r), 304);
    assert_int_equal(r.body_len, 0);
    expect_header(&r, "ETag", etag);
    http_response_free(&r);
    snprintf(inm, sizeof inm, "If-None-Match: \"0\", W/%s\r\n", etag);
    assert_int_equal(req("GET", "/assets/app.js", inm, NULL, NULL), 304);
    assert_int_equal(req("GET", "/assets/app.js", "If-None-Match: \"0\"\r\n", NULL, NULL), 200);
    assert_int_equal(req("GET", "/assets/uplot.js", "If-None-Match: *\r\n", NULL, NULL), 304);

    /* No such file, and nothing outside the table. */
    req_error("GET", "/assets/nope.js", NULL, NULL, 404, "not_found");
    req_error("GET", "/assets/../x", NULL, NULL, 404, "not_found");
    req_error("GET", "/assets/..%2Fweb%2Findex.html", NULL, NULL, 404, "not_found");
    req_error("GET", "/assets/.app.js", NULL, NULL, 404, "not_found");
    req_error("GET", "/assets/package.json", NULL, NULL, 404, "not_found");
    req_error("GET", "/assets/", NULL, NULL, 404, "not_found");
    req_error("GET", "/assets", NULL, NULL, 404, "not_found");
    req_error("GET", "/assets/app.js/x", NULL, NULL, 404, "not_found");
    req_error("GET", "/?x=1", NULL, NULL, 400, "unknown_parameter");
    req_error("POST", "/", NULL, NULL, 405, "method_not_allowed");
    req_error("PUT", "/assets/app.js", NULL, NULL, 405, "method_not_allowed");

    /* HEAD: the headers of GET, no body. */
    assert_int_equal(req("HEAD", "/", NULL, NULL, &r), 200);
    assert_int_equal(r.body_len, 0);
    expect_header(&r, "Content-Type", "text/html; charset=utf-8");
    expect_header(&r, "Content-Security-Policy", dashboard_csp);
    http_response_free(&r);
    assert_int_equal(req("HEAD", "/assets/uplot.css", NULL, NULL, &r), 200);
    assert_int_equal(r.body_len, 0);
    expect_header(&r, "Content-Type", css);
    http_response_free(&r);

    /* With a token: the page and its files are public, the data is not. */
    rcgc_inspect_options o = default_opts;
    o.token = "s3cret";
    restart(&o);
    r = get_file("/", "text/html; charset=utf-8");
    http_response_free(&r);
    r = get_file("/?access_token=s3cret", "text/html; charset=utf-8");
    http_response_free(&r);
    r = get_file("/?access_token=wrong", "text/html; charset=utf-8"); /* the API will say */
    http_response_free(&r);
    r = get_file("/assets/app.css", css);
    http_response_free(&r);
    assert_int_equal(req("HEAD", "/assets/uplot.js", NULL, NULL, NULL), 200);
    req_error("GET", "/assets/nope.js", NULL, NULL, 404, "not_found");
    req_error("GET", "/v1/heaps", NULL, NULL, 401, "unauthorized");
    req_error("GET", "/metrics", NULL, NULL, 401, "unauthorized");
    req_error("GET", "/assets/../x", NULL, NULL, 401, "unauthorized"); /* not a route */
    req_error("POST", "/", NULL, NULL, 401, "unauthorized");           /* GET only */
    assert_int_equal(req("GET", "/v1/heaps?access_token=s3cret", NULL, NULL, NULL), 200);
    /* ... and the Host check applies to them as to every endpoint. */
    r = with_host("/", "evil.example:7070");
    expect_error(&r, 403, "forbidden_host");
    http_response_free(&r);
    r = with_host("/assets/app.js", "evil.example");
    expect_error(&r, 403, "forbidden_host");
    http_response_free(&r);
    r = with_host("/assets/app.js", "localhost");
    assert_int_equal(r.status, 200);
    http_response_free(&r);
    restart(&default_opts);
#endif
}

/* Writes text to dir/name. */
static void write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static void remove_file(const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    assert_int_equal(remove(path), 0);
}

/* RCGC_INSPECT_WEB_DIR: the page and its files read from a directory at each request
 * (uplot.* from its node_modules), nothing else from it, no fallback to the copies
 * compiled in. */
static void test_http_web_dir(void **state)
{
    (void)state;
    char dir[] = "/tmp/rcgc-test-web-XXXXXX";
    assert_non_null(mkdtemp(dir));
    static const char *const subdirs[] = {"node_modules", "node_modules/uplot",
                                          "node_modules/uplot/dist"};
    char path[512];
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, subdirs[i]);
        assert_int_equal(mkdir(path, 0700), 0);
    }
    static const char index[] = "<!doctype html><title>from disk</title>\n";
    write_file(dir, "index.html", index);
    write_file(dir, "app.js", "console.log(1);\n");
    write_file(dir, ".hidden.js", "secret\n");
    write_file(dir, "notes.txt", "notes\n");
    write_file(dir, "node_modules/uplot/dist/uPlot.iife.min.js", "/* uplot from disk */\n");
    rcgc_inspect_stop(); /* the environment changes while no server thread runs */
    assert_int_equal(setenv("RCGC_INSPECT_WEB_DIR", dir, 1), 0);
    assert_int_equal(start_with(&default_opts), 0);

    http_response r = get_file("/", "text/html; charset=utf-8");
    assert_string_equal(r.body, index);
    expect_header(&r, "Content-Security-Policy", dashboard_csp);
    http_response_free(&r);
    r = get_file("/assets/app.js", "text/javascript; charset=utf-8");
    assert_string_equal(r.body, "console.log(1);\n");
    char etag[64], inm[96];
    assert_non_null(http_header(&r, "ETag", etag, sizeof etag));
    http_response_free(&r);
    snprintf(inm, sizeof inm, "If-None-Match: %s\r\n", etag);
    assert_int_equal(req("GET", "/assets/app.js", inm, NULL, NULL), 304);
    /* Read at each request: an edit shows at once, with another ETag. */
    write_file(dir, "app.js", "console.log(2);\n");
    assert_int_equal(req("GET", "/assets/app.js", inm, NULL, &r), 200);
    assert_string_equal(r.body, "console.log(2);\n");
    char etag2[64];
    assert_non_null(http_header(&r, "ETag", etag2, sizeof etag2));
    assert_string_not_equal(etag, etag2);
    http_response_free(&r);
    r = get_file("/assets/uplot.js", "text/javascript; charset=utf-8");
    assert_string_equal(r.body, "/* uplot from disk */\n");
    http_response_free(&r);
    req_error("GET", "/assets/app.css", NULL, NULL, 404, "not_found"); /* not on disk */
    req_error("GET", "/assets/uplot.css", NULL, NULL, 404, "not_found");
    req_error("GET", "/assets/.hidden.js", NULL, NULL, 404, "not_found");
    req_error("GET", "/assets/notes.txt", NULL, NULL, 404, "not_found");
    req_error("GET", "/assets/node_modules%2Fuplot%2Fdist%2FuPlot.iife.min.js", NULL, NULL, 404,
              "not_found");
    req_error("GET", "/assets/..%2F..%2Fetc%2Fpasswd", NULL, NULL, 404, "not_found");
    remove_file(dir, "index.html");
    req_error("GET", "/", NULL, NULL, 404, "not_found");

    /* Not a directory: the server does not start. */
    snprintf(path, sizeof path, "%s/missing", dir);
    rcgc_inspect_stop();
    assert_int_equal(setenv("RCGC_INSPECT_WEB_DIR", path, 1), 0);
    assert_int_equal(start_with(&default_opts), RCGC_EINVAL);
    assert_int_equal(rcgc_inspect_port(), 0);
    /* Unset: the copies compiled in again (or the page of links). */
    assert_int_equal(unsetenv("RCGC_INSPECT_WEB_DIR"), 0);
    assert_int_equal(start_with(&default_opts), 0);
    r = get_file("/", "text/html; charset=utf-8");
    assert_null(strstr(r.body, "from disk"));
    http_response_free(&r);

    remove_file(dir, "app.js");
    remove_file(dir, ".hidden.js");
    remove_file(dir, "notes.txt");
    remove_file(dir, "node_modules/uplot/dist/uPlot.iife.min.js");
    for (size_t i = 3; i-- > 0;) {
        snprintf(path, sizeof path, "%s/%s", dir, subdirs[i]);
        assert_int_equal(rmdir(path), 0);
    }
    assert_int_equal(rmdir(dir), 0);
}

/* ---- errors ---- */

static void test_http_errors(void **state)
{
    (void)state;
    req_error("GET", "/nope", NULL, NULL, 404, "not_found");
    req_error("GET", "/v1/heaps/nope", NULL, NULL, 404, "heap_not_found");
    req_error("GET", "/v1/heaps/nope/census", NULL, NULL, 404, "heap_not_found");
    http_response r;
    req("DELETE", "/v1/heaps", NULL, NULL, &r);
    expect_error(&r, 405, "method_not_allowed");
    char allow[64];
    assert_string_equal(http_header(&r, "Allow", allow, sizeof allow), "GET, HEAD");
    http_response_free(&r);
    req_error("GET", "/v1/heaps/web/census?limit=0", NULL, NULL, 400, "bad_parameter");
    req_error("GET", "/v1/heaps/web/census?limit=abc", NULL, NULL, 400, "bad_parameter");
    req_error("GET", "/v1/heaps/web/census?limit=100000000000", NULL, NULL, 400,
              "bad_parameter");
    req_error("GET", "/v1/heaps/web/census?bogus=1", NULL, NULL, 400, "unknown_parameter");
    req_error("GET", "/v1/heaps/web/census?limit=1&limit=2", NULL, NULL, 400,
              "duplicate_parameter");
    req_error("GET", "/v1/heaps/web/census?limit=%zz", NULL, NULL, 400, "bad_encoding");
    req_error("GET", "/v1/heaps/w%zzeb", NULL, NULL, 400, "bad_encoding");
    req_error("GET",
              "/v1/heaps?a=1&b=2&c=3&d=4&e=5&f=6&g=7&h=8&i=9&j=10&k=11&l=12&m=13&n=14&o=15"
              "&p=16&q=17",
              NULL, NULL, 400, "too_many_parameters");
    /* Every answer says nosniff and no-store. */
    req("GET", "/v1/heaps", NULL, NULL, &r);
    char v[32];
    assert_string_equal(http_header(&r, "X-Content-Type-Options", v, sizeof v), "nosniff");
    assert_string_equal(http_header(&r, "Cache-Control", v, sizeof v), "no-store");
    http_response_free(&r);
}

static void test_http_host_and_origin(void **state)
{
    (void)state;
    /* DNS rebinding: a page renamed to 127.0.0.1 still sends its own Host. */
    int fd = http_connect(g_port);
    assert_true(fd >= 0);
    static const char evil[] = "GET /v1/heaps HTTP/1.1\r\nHost: evil.example:7070\r\n\r\n";
    assert_int_equal(http_send(fd, evil, sizeof evil - 1), 0);
    http_response r;
    assert_int_equal(http_read_response(fd, &r, 5000, false), 0);
    expect_error(&r, 403, "forbidden_host");
    http_response_free(&r);
    close(fd);
    /* localhost with another port (an SSH tunnel) is fine. */
    fd = http_connect(g_port);
    static const char tunnel[] = "GET /v1/heaps HTTP/1.1\r\nHost: localhost:9999\r\n\r\n";
    assert_int_equal(http_send(fd, tunnel, sizeof tunnel - 1), 0);
    assert_int_equal(http_read_response(fd, &r, 5000, false), 0);
    assert_int_equal(r.status, 200);
    http_response_free(&r);
    close(fd);
    req_error("POST", "/v1/heaps/web/collect", "Origin: http://evil.example\r\n", NULL, 403,
              "forbidden_origin");
    req_error("POST", "/v1/heaps/web/collect", "Origin: null\r\n", NULL, 403,
              "forbidden_origin");
    char origin[64];
    snprintf(origin, sizeof origin, "Origin: http://127.0.0.1:%d\r\n", g_port);
    assert_int_equal(req("POST", "/v1/heaps/web/collect?generation=0", origin, NULL, NULL),
                     200);
}

static void test_http_body_too_large(void **state)
{
    (void)state;
    size_t n = 20000;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, ' ', n);
    big[n] = '\0';
    req_error("PUT", "/v1/heaps/web/thresholds", "Content-Type: application/json\r\n", big, 413,
              "body_too_large");
    free(big);
    /* Declared far larger than sent: answered before the body is read. */
    int fd = http_connect(g_port);
    static const char huge[] = "PUT /v1/heaps/web/debug HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                               "Content-Type: application/json\r\n"
                               "Content-Length: 1000000000\r\n\r\n{\"fl";
    assert_int_equal(http_send(fd, huge, sizeof huge - 1), 0);
    http_response r;
    assert_int_equal(http_read_response(fd, &r, 5000, false), 0);
    expect_error(&r, 413, "body_too_large");
    http_response_free(&r);
    close(fd);
    /* Chunked, without a length: read, dropped past the cap, refused at the end. */
    fd = http_connect(g_port);
    static const char head[] = "PUT /v1/heaps/web/debug HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                               "Content-Type: application/json\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n";
    assert_int_equal(http_send(fd, head, sizeof head - 1), 0);
    char chunk[4096 + 16];
    int k = snprintf(chunk, sizeof chunk, "1000\r\n");
    memset(chunk + k, 'x', 4096);
    memcpy(chunk + k + 4096, "\r\n", 2);
    for (int i = 0; i < 6; i++)
        assert_int_equal(http_send(fd, chunk, (size_t)k + 4096 + 2), 0);
    assert_int_equal(http_send(fd, "0\r\n\r\n", 5), 0);
    assert_int_equal(http_read_response(fd, &r, 5000, false), 0);
    expect_error(&r, 413, "body_too_large");
    http_response_free(&r);
    close(fd);
}

static void test_http_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "GARBAGE\r\n\r\n",
        "GET\r\n\r\n",
        "GET /v1/heaps HTTP/9.9\r\nHost: 127.0.0.1\r\n\r\n",
        "GET /v1/heaps HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header Line\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int fd = http_connect(g_port);
        assert_true(fd >= 0);
        assert_int_equal(http_send(fd, bad[i], strlen(bad[i])), 0);
        http_response r;
        int rc = http_read_response(fd, &r, 5000, false);
        /* libmicrohttpd answers these itself (a 4xx/5xx), or closes. */
        if (rc == 0)
            assert_true(r.status >= 400 && r.status < 600);
        else
            assert_true(http_wait_closed(fd, 5000));
        http_response_free(&r);
        close(fd);
    }
    /* A request line longer than the connection's memory. */
    size_t n = 64 * 1024;
    char *line = malloc(n + 64);
    assert_non_null(line);
    memcpy(line, "GET /", 5);
    memset(line + 5, 'a', n);
    strcpy(line + 5 + n, " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    int fd = http_connect(g_port);
    (void)http_send(fd, line, strlen(line)); /* the server may close before the end */
    http_response r;
    if (http_read_response(fd, &r, 5000, false) == 0)
        assert_true(r.status >= 400);
    http_response_free(&r);
    close(fd);
    free(line);
    /* The server is fine. */
    assert_int_equal(req("GET", "/v1/heaps", NULL, NULL, NULL), 200);
}

static void test_http_vanishing_clients(void **state)
{
    (void)state;
    static const char *const partial[] = {
        "GET /v1/heaps HTTP/1.1\r\nHost: 127.0",
        "PUT /v1/heaps/web/debug HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"flags\"",
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", /* leaves before reading */
    };
    for (int round = 0; round < 20; round++)
        for (size_t i = 0; i < sizeof partial / sizeof partial[0]; i++) {
            int fd = http_connect(g_port);
            assert_true(fd >= 0);
            assert_int_equal(http_send(fd, partial[i], strlen(partial[i])), 0);
            if (round % 2 == 0) { /* reset instead of FIN */
                struct linger lg = {1, 0};
                setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            }
            close(fd);
        }
    assert_int_equal(req("GET", "/v1/heaps/web", NULL, NULL, NULL), 200);
    assert_int_equal(rcgc_get_debug(g_heap), 0);
}

/* ---- authentication, control off, timeouts ---- */

static void test_http_token(void **state)
{
    (void)state;
    rcgc_inspect_options o = default_opts;
    o.token = "s3cret";
    restart(&o);
    http_response r;
    req("GET", "/v1/heaps", NULL, NULL, &r);
    expect_error(&r, 401, "unauthorized");
    char v[64];
    assert_non_null(http_header(&r, "WWW-Authenticate", v, sizeof v));
    assert_non_null(strstr(v, "Bearer"));
    http_response_free(&r);
    req_error("GET", "/nope", NULL, NULL, 401, "unauthorized"); /* before routing */
    req_error("GET", "/v1/heaps", "Authorization: Bearer s3cre\r\n", NULL, 401, "unauthorized");
    req_error("GET", "/v1/heaps", "Authorization: Bearer s3cret2\r\n", NULL, 401,
              "unauthorized");
    req_error("GET", "/v1/heaps", "Authorization: Basic czNjcmV0\r\n", NULL, 401,
              "unauthorized");
    assert_int_equal(req("GET", "/v1/heaps", "Authorization: Bearer s3cret\r\n", NULL, NULL),
                     200);
    assert_int_equal(req("GET", "/v1/heaps", "Authorization: bearer s3cret\r\n", NULL, NULL),
                     200);
    /* access_token on GET (for EventSource and links), never on other methods. */
    assert_int_equal(req("GET", "/v1/heaps?access_token=s3cret", NULL, NULL, NULL), 200);
    assert_int_equal(
        req("GET", "/v1/heaps/web/census?limit=1&access_token=s3cr%65t", NULL, NULL, NULL),
        200);
    req_error("GET", "/metrics?access_token=nope", NULL, NULL, 401, "unauthorized");
    req_error("POST", "/v1/heaps/web/collect?access_token=s3cret", NULL, NULL, 401,
              "unauthorized");
    assert_int_equal(
        req("POST", "/v1/heaps/web/collect", "Authorization: Bearer s3cret\r\n", NULL, NULL),
        200);
    restart(&default_opts);
}

static void test_http_control_disabled(void **state)
{
    (void)state;
    rcgc_inspect_options o = default_opts;
    o.allow_control = 0;
    restart(&o);
    req_error("POST", "/v1/heaps/web/collect", NULL, NULL, 403, "control_disabled");
    req_error("POST", "/v1/heaps/web/baselines?label=x", NULL, NULL, 403, "control_disabled");
    req_error("PUT", "/v1/heaps/web/thresholds", "Content-Type: application/json\r\n",
              "{\"threshold\":[1,1,1]}", 403, "control_disabled");
    req_error("PUT", "/v1/heaps/web/debug", "Content-Type: application/json\r\n",
              "{\"flags\":[\"saveall\"]}", 403, "control_disabled");
    assert_int_equal(rcgc_get_debug(g_heap), 0);
    assert_int_equal(req("GET", "/v1/heaps/web/census", NULL, NULL, NULL), 200);
    json_t *j = get_json("/v1/process");
    assert_true(json_is_false(json_object_get(json_object_get(j, "server"), "control")));
    json_decref(j);
    restart(&default_opts);
}

static void test_http_idle_timeout(void **state)
{
    (void)state;
    rcgc_inspect_options o = default_opts;
    o.idle_timeout_s = 1;
    restart(&o);
    int silent = http_connect(g_port);
    assert_true(silent >= 0);
    /* A keep-alive client that goes quiet after one answer is closed too. */
    int idle = http_connect(g_port);
    static const char get[] = "GET /v1/heaps HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    assert_int_equal(http_send(idle, get, sizeof get - 1), 0);
    http_response r;
    assert_int_equal(http_read_response(idle, &r, 5000, false), 0);
    assert_int_equal(r.status, 200);
    http_response_free(&r);
    assert_true(http_wait_closed(silent, 5000));
    assert_true(http_wait_closed(idle, 5000));
    close(silent);
    close(idle);
    restart(&default_opts);
}

/* At the connection limit new clients wait (libmicrohttpd stops accepting); idle
 * connections time out, and then they are served: the server never stays full. */
static void test_http_connection_limit(void **state)
{
    (void)state;
    rcgc_inspect_options o = default_opts;
    o.max_connections = 4;
    o.idle_timeout_s = 1;
    restart(&o);
    int fds[8];
    for (int i = 0; i < 8; i++) {
        fds[i] = http_connect(g_port); /* the kernel's backlog takes the extra ones */
        assert_true(fds[i] >= 0);
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(req("GET", "/v1/heaps", NULL, NULL, NULL), 200);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_true(t1.tv_sec - t0.tv_sec < 8);
    for (int i = 0; i < 8; i++)
        close(fds[i]);
    restart(&default_opts);
}

/* No safepoint within the walk timeout: 503 with a reason and Retry-After. Here the
 * owner (this thread) waits for the answer instead of serving. A released heap serves
 * reads but never control calls. */
static void test_http_no_safepoint(void **state)
{
    (void)state;
    rcgc_inspect_options o = default_opts;
    o.walk_timeout_ms = 150;
    restart(&o);
    http_response r;
    http_request(g_port, "POST", "/v1/heaps/web/collect", NULL, NULL, &r);
    expect_error(&r, 503, "no_safepoint");
    char v[16];
    assert_string_equal(http_header(&r, "Retry-After", v, sizeof v), "1");
    http_response_free(&r);
    rcgc_heap_release(g_heap);
    http_request(g_port, "POST", "/v1/heaps/web/collect", NULL, NULL, &r);
    expect_error(&r, 503, "no_safepoint");
    http_response_free(&r);
    assert_int_equal(http_request(g_port, "GET", "/v1/heaps/web/census", NULL, NULL, &r), 200);
    http_response_free(&r);
    rcgc_heap_acquire(g_heap);
    restart(&default_opts);
}

/* root (held here) -> n1 -> n2 -> n3: n1 retains the three, its one child n2 two. */
static void test_http_retained(void **state)
{
    (void)state;
    node *root = rcgc_new(g_heap, &Node), *n1 = rcgc_new(g_heap, &Node);
    node *n2 = rcgc_new(g_heap, &Node), *n3 = rcgc_new(g_heap, &Node);
    assert_true(root && n1 && n2 && n3);
    root->next = n1;
    n1->next = n2;
    n2->next = n3;
    char target[128], id2[32];
    snprintf(target, sizeof target, "/v1/heaps/web/objects/%lu/retained",
             (unsigned long)(uintptr_t)n1);
    snprintf(id2, sizeof id2, "%lu", (unsigned long)(uintptr_t)n2);
    size_t size = sizeof(node) + 16;
    json_t *j = get_json(target);
    json_t *t = json_object_get(j, "target");
    assert_string_equal(str(t, "kind"), "object");
    assert_string_equal(str(t, "type"), "Node");
    assert_true(json_is_true(json_object_get(j, "complete")));
    assert_int_equal(json_integer_value(json_object_get(j, "budget_ms")), 250);
    json_t *ret = json_object_get(j, "retained");
    assert_string_equal(str(ret, "objects"), "3");
    assert_int_equal(strtoull(str(ret, "bytes"), NULL, 10), 3 * size);
    json_t *by_type = json_object_get(j, "by_type");
    assert_int_equal(json_array_size(by_type), 1);
    assert_string_equal(str(json_array_get(by_type, 0), "objects"), "3");
    json_t *dom = json_object_get(j, "dominated");
    assert_int_equal(json_array_size(dom), 1);
    assert_string_equal(str(json_array_get(dom, 0), "id"), id2);
    assert_string_equal(str(json_object_get(json_array_get(dom, 0), "retained"), "objects"),
                        "2");
    assert_string_equal(str(j, "dominated_total"), "1");
    assert_true(json_is_false(json_object_get(j, "dominated_truncated")));
    json_decref(j);

    /* Limits cut the lists and say so. */
    strcat(target, "?dominated_limit=0&by_type_limit=0&budget_ms=5000");
    j = get_json(target);
    assert_int_equal(json_array_size(json_object_get(j, "dominated")), 0);
    assert_true(json_is_true(json_object_get(j, "dominated_truncated")));
    assert_true(json_is_true(json_object_get(j, "by_type_truncated")));
    json_decref(j);

    /* The type: every Blob is held here alone, so each retains itself. */
    j = get_json("/v1/heaps/web/retained?type=Blob&dominated_limit=5");
    t = json_object_get(j, "target");
    assert_string_equal(str(t, "kind"), "type");
    assert_string_equal(str(t, "objects"), str(json_object_get(j, "retained"), "objects"));
    assert_int_equal(json_array_size(json_object_get(j, "dominated")), 5);
    assert_true(json_is_true(json_object_get(j, "dominated_truncated")));
    json_decref(j);
    j = get_json("/v1/heaps/web/retained?type=NoSuchType");
    assert_string_equal(str(json_object_get(j, "retained"), "objects"), "0");
    json_decref(j);

    req_error("GET", "/v1/heaps/web/retained", NULL, NULL, 400, "missing_parameter");
    req_error("GET", "/v1/heaps/web/retained?type=Blob&budget_ms=0", NULL, NULL, 400,
              "bad_parameter");
    req_error("GET", "/v1/heaps/web/retained?type=Blob&dominated_limit=1001", NULL, NULL, 400,
              "bad_parameter");
    req_error("GET", "/v1/heaps/web/retained?type=Blob&depth=2", NULL, NULL, 400,
              "unknown_parameter");
    req_error("GET", "/v1/heaps/web/objects/banana/retained", NULL, NULL, 400, "bad_id");
    snprintf(target, sizeof target, "/v1/heaps/web/objects/%lu/retained",
             (unsigned long)(uintptr_t)n1 + 16);
    req_error("GET", target, NULL, NULL, 404, "object_not_found");
    req_error("GET", "/v1/heaps/nosuchheap/retained?type=Blob", NULL, NULL, 404,
              "heap_not_found");
    req_error("POST", "/v1/heaps/web/retained?type=Blob", NULL, NULL, 405,
              "method_not_allowed");
    rcgc_decref(root);
}

/* ---- start and stop ---- */

static void test_http_start_twice(void **state)
{
    (void)state;
    int port = rcgc_inspect_port();
    assert_true(port > 0);
    assert_int_equal(rcgc_inspect_start(&default_opts), RCGC_EBUSY);
    assert_int_equal(rcgc_inspect_start(NULL), 0); /* NULL: already running is fine */
    assert_int_equal(rcgc_inspect_port(), port);
    assert_int_equal(req("GET", "/v1/heaps", NULL, NULL, NULL), 200);
}

static void test_http_bad_options(void **state)
{
    (void)state;
    rcgc_inspect_stop();
    rcgc_inspect_stop(); /* twice: a no-op */
    static const char *const bad[] = {"10.1.2.3:0",      "0.0.0.0:0",   "nonsense",
                                      "127.0.0.1:70000", "127.0.0.1:x", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rcgc_inspect_options o = {.address = bad[i]};
        assert_int_equal(rcgc_inspect_start(&o), RCGC_EINVAL);
        assert_int_equal(rcgc_inspect_port(), 0);
    }
    restart(&default_opts);
}

static void test_http_port_in_use(void **state)
{
    (void)state;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(s, 4), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", ntohs(a.sin_port));

    rcgc_inspect_stop();
    rcgc_inspect_options o = {.address = addr};
    assert_int_equal(rcgc_inspect_start(&o), -EADDRINUSE);
    assert_int_equal(rcgc_inspect_port(), 0);
    /* The host carries on: its heap works, and the inspector starts elsewhere. */
    keep(rcgc_new(g_heap, &Blob));
    close(s);
    assert_int_equal(rcgc_inspect_start(&o), 0); /* the port is free now */
    assert_int_equal(rcgc_inspect_port(), ntohs(a.sin_port));
    g_port = rcgc_inspect_port();
    assert_int_equal(req("GET", "/v1/heaps", NULL, NULL, NULL), 200);
    restart(&default_opts);
}

static void test_http_stop_with_clients(void **state)
{
    (void)state;
    int fds[6];
    for (int i = 0; i < 6; i++) {
        fds[i] = http_connect(g_port);
        assert_true(fds[i] >= 0);
    }
    static const char half[] = "GET /v1/heaps HTTP/1.1\r\nHost: 1";
    assert_int_equal(http_send(fds[1], half, sizeof half - 1), 0);
    static const char get[] = "GET /v1/heaps HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    assert_int_equal(http_send(fds[2], get, sizeof get - 1), 0);
    http_response r;
    assert_int_equal(http_read_response(fds[2], &r, 5000, false), 0); /* kept alive */
    http_response_free(&r);
    sleep_ms(50);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    rcgc_inspect_stop();
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_true(t1.tv_sec - t0.tv_sec < 3);
    assert_int_equal(rcgc_inspect_port(), 0);
    for (int i = 0; i < 6; i++) {
        assert_true(http_wait_closed(fds[i], 5000));
        close(fds[i]);
    }
    assert_int_equal(start_with(&default_opts), 0);
    assert_int_equal(req("GET", "/v1/heaps", NULL, NULL, NULL), 200);
}

/* ---- clients hammer every endpoint while the owner churns ---- */

#define HAMMER_THREADS 4

static atomic_int g_stop_hammer;
static atomic_int g_hammer_bad;
static atomic_int g_hammer_done;
static atomic_int g_hammer_exited;

/* One object every client asks about (a kept Node: always alive). */
static char g_hammer_object[64];

static void *hammer(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    static const char *const gets[] = {
        "/v1/process",
        "/v1/heaps",
        "/v1/heaps/web",
        "/v1/heaps/web/census?limit=5",
        "/v1/heaps/web/census?baseline=l3&sort=delta_bytes",
        "/v1/heaps/web/sites",
        "/v1/heaps/web/baselines",
        "/v1/heaps/web/suspects",
        "/v1/heaps/web/garbage",
        "/v1/heaps/web/objects?limit=20",
        "/v1/heaps/web/objects?type=Node&generation=0&limit=5",
        "/v1/heaps/web/retained?type=Blob&dominated_limit=3",
        "/metrics",
        "/",
    };
    static const char *const object_gets[] = {"", "/path", "/retained"};
    const unsigned n = sizeof gets / sizeof gets[0], m = 3;
    while (!atomic_load(&g_stop_hammer)) {
        seed = seed * 1103515245u + 12345u;
        unsigned pick = (seed >> 16) % (n + m + 2);
        http_response r;
        int status;
        char target[160];
        if (pick < n) {
            status = http_request(g_port, "GET", gets[pick], NULL, NULL, &r);
        } else if (pick < n + m) {
            snprintf(target, sizeof target, "%s%s", g_hammer_object, object_gets[pick - n]);
            status = http_request(g_port, "GET", target, NULL, NULL, &r);
        } else if (pick == n + m) {
            status = http_request(g_port, "POST", "/v1/heaps/web/collect?generation=0", NULL,
                                  NULL, &r);
        } else {
            status = http_request(g_port, "POST", "/v1/heaps/web/baselines?label=l3", NULL,
                                  NULL, &r);
        }
        if (status != 200 && status != 201)
            print_error("hammer: %s -> %d\n", pick < n ? gets[pick] : "(object or control)",
                        status);
        if (status != 200 && status != 201)
            atomic_fetch_add(&g_hammer_bad, 1);
        http_response_free(&r);
        atomic_fetch_add(&g_hammer_done, 1);
    }
    atomic_fetch_add(&g_hammer_exited, 1);
    return NULL;
}

static void test_http_hammer_while_churning(void **state)
{
    (void)state;
    atomic_store(&g_stop_hammer, 0);
    atomic_store(&g_hammer_bad, 0);
    atomic_store(&g_hammer_done, 0);
    atomic_store(&g_hammer_exited, 0);
    assert_int_equal(req("POST", "/v1/heaps/web/baselines?label=l3", NULL, NULL, NULL), 201);
    snprintf(g_hammer_object, sizeof g_hammer_object, "/v1/heaps/web/objects/%lu",
             (unsigned long)(uintptr_t)g_kept[0]);
    /* A larger heap for the walks: 20,000 more objects, a quarter of them in chains. */
    enum { BIG = 20000 };
    void **big = calloc(BIG, sizeof *big);
    assert_non_null(big);
    for (size_t i = 0; i < BIG; i++) {
        big[i] = i % 4 == 0 ? (void *)rcgc_new(g_heap, &Node) : rcgc_new(g_heap, &Blob);
        assert_non_null(big[i]);
        if (i % 4 == 1) {
            node *head = big[i - 1];
            head->next = big[i];
            rcgc_incref(big[i]);
        }
    }
    rcgc_enable(g_heap);
    pthread_t t[HAMMER_THREADS];
    for (uintptr_t i = 0; i < HAMMER_THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, hammer, (void *)(i + 1)), 0);
    /* The owner churns: allocations (safepoints, automatic collections), cycles, frees. */
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    void *ring[512] = {0};
    size_t k = 0;
    do {
        for (int i = 0; i < 200; i++) {
            node *x = rcgc_new(g_heap, &Node);
            assert_non_null(x);
            if (i % 3 == 0) {
                rcgc_incref(x);
                x->next = x; /* a cycle for the collector */
            }
            rcgc_xdecref(ring[k % 512]);
            ring[k++ % 512] = x;
        }
        rcgc_safepoint(g_heap);
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while (now.tv_sec - t0.tv_sec < 2 || atomic_load(&g_hammer_done) < 50);
    atomic_store(&g_stop_hammer, 1);
    /* Serve safepoints until every client has its answer. */
    while (atomic_load(&g_hammer_exited) < HAMMER_THREADS) {
        rcgc_safepoint(g_heap);
        sleep_ms(1);
    }
    for (int i = 0; i < HAMMER_THREADS; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    for (size_t i = 0; i < 512; i++)
        rcgc_xdecref(ring[i]);
    for (size_t i = 0; i < BIG; i++)
        rcgc_decref(big[i]);
    free(big);
    rcgc_disable(g_heap);
    assert_int_equal(atomic_load(&g_hammer_bad), 0);
    assert_true(atomic_load(&g_hammer_done) >= 50);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_process),
        cmocka_unit_test(test_http_heaps),
        cmocka_unit_test(test_http_heap),
        cmocka_unit_test(test_http_census),
        cmocka_unit_test(test_http_sites),
        cmocka_unit_test(test_http_baselines),
        cmocka_unit_test(test_http_collect),
        cmocka_unit_test(test_http_thresholds_and_debug),
        cmocka_unit_test(test_http_metrics_and_root),
        cmocka_unit_test(test_http_dashboard),
        cmocka_unit_test(test_http_web_dir),
        cmocka_unit_test(test_http_errors),
        cmocka_unit_test(test_http_host_and_origin),
        cmocka_unit_test(test_http_body_too_large),
        cmocka_unit_test(test_http_malformed),
        cmocka_unit_test(test_http_vanishing_clients),
        cmocka_unit_test(test_http_token),
        cmocka_unit_test(test_http_control_disabled),
        cmocka_unit_test(test_http_idle_timeout),
        cmocka_unit_test(test_http_connection_limit),
        cmocka_unit_test(test_http_no_safepoint),
        cmocka_unit_test(test_http_retained),
        cmocka_unit_test(test_http_start_twice),
        cmocka_unit_test(test_http_bad_options),
        cmocka_unit_test(test_http_port_in_use),
        cmocka_unit_test(test_http_stop_with_clients),
        cmocka_unit_test(test_http_hammer_while_churning),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
