/* test_router.c: the inspection server's router without a server: pattern matching
 * and captures, percent-decoding, strict query parameters, 404 / 405 / 400 / 403 in the
 * one error shape, and the reply helpers (64-bit numbers as strings, UTF-8 repair). */
#define _POSIX_C_SOURCE 200809L

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"

/* ---- helpers ---- */

typedef struct answer {
    insp_resp rs;
    json_t *json; /* the parsed body, NULL when it is not JSON */
} answer;

static void answer_free(answer *a)
{
    json_decref(a->json);
    rcgc__resp_clear(&a->rs);
}

/* Dispatches method path with the given raw query parameters (key, value pairs,
 * NULL-terminated) and parses the answer. */
static answer dispatch(const char *method, const char *path, const char *const *kv,
                       const char *body, const char *content_type)
{
    insp_param params[INSP_PARAMS_MAX];
    size_t n = 0;
    for (; kv != NULL && kv[2 * n] != NULL; n++)
        params[n] = (insp_param){kv[2 * n], kv[2 * n + 1]};
    insp_http in = {.method = method,
                    .path = path,
                    .params = params,
                    .nparams = n,
                    .body = body ? body : "",
                    .body_len = body ? strlen(body) : 0,
                    .content_type = content_type};
    answer a = {{0}, NULL};
    rcgc__dispatch(&in, &a.rs);
    if (a.rs.body != NULL && a.rs.content_type != NULL &&
        strcmp(a.rs.content_type, "application/json") == 0)
        a.json = json_loadb(a.rs.body, a.rs.len, 0, NULL);
    return a;
}

static answer get(const char *path, const char *const *kv)
{
    return dispatch("GET", path, kv, NULL, NULL);
}

/* Asserts the error shape {"protocol":1,"error":{"code":code,"message":"..."}}. */
static void assert_error(const answer *a, unsigned status, const char *code)
{
    assert_int_equal(a->rs.status, status);
    assert_non_null(a->json);
    assert_int_equal(json_integer_value(json_object_get(a->json, "protocol")), 1);
    json_t *err = json_object_get(a->json, "error");
    assert_non_null(err);
    assert_int_equal(json_object_size(a->json), 2);
    assert_int_equal(json_object_size(err), 2);
    assert_string_equal(json_string_value(json_object_get(err, "code")), code);
    const char *msg = json_string_value(json_object_get(err, "message"));
    assert_non_null(msg);
    assert_true(strlen(msg) > 0);
    /* One line of compact JSON, ending in a newline. */
    assert_int_equal(a->rs.body[a->rs.len - 1], '\n');
    assert_null(memchr(a->rs.body, '\n', a->rs.len - 1));
}

static void set_control(bool on)
{
    insp_config cfg = *rcgc__insp_config();
    cfg.allow_control = on;
    cfg.token = NULL;
    assert_int_equal(rcgc__insp_config_set(&cfg), 0);
}

static rcgc_heap *g_heap;

static int setup(void **state)
{
    (void)state;
    rcgc__insp_config_reset();
    rcgc_heap_options o = {.name = "main", .ignore_environment = true};
    g_heap = rcgc_heap_new_with(&o);
    return g_heap == NULL;
}

static int teardown(void **state)
{
    (void)state;
    rcgc_heap_free(g_heap);
    rcgc__insp_config_reset();
    return 0;
}

/* ---- matching ---- */

static void test_router_match_literal(void **state)
{
    (void)state;
    char heap[INSP_CAPTURE_MAX + 1], id[INSP_CAPTURE_MAX + 1];
    assert_int_equal(rcgc__route_match("/", "/", heap, id), 1);
    assert_int_equal(rcgc__route_match("/", "//", heap, id), 0);
    assert_int_equal(rcgc__route_match("/v1/heaps", "/v1/heaps", heap, id), 1);
    assert_int_equal(rcgc__route_match("/v1/heaps", "/v1/heaps/", heap, id), 0);
    assert_int_equal(rcgc__route_match("/v1/heaps", "/v1/heap", heap, id), 0);
    assert_int_equal(rcgc__route_match("/v1/heaps", "/v1/heapsx", heap, id), 0);
    assert_int_equal(rcgc__route_match("/v1/heaps", "v1/heaps", heap, id), 0);
    assert_int_equal(rcgc__route_match("/v1/heaps", "", heap, id), 0);
    assert_int_equal(rcgc__route_match("/metrics", "/Metrics", heap, id), 0);
}

static void test_router_match_captures(void **state)
{
    (void)state;
    char heap[INSP_CAPTURE_MAX + 1], id[INSP_CAPTURE_MAX + 1];
    assert_int_equal(rcgc__route_match("/v1/heaps/{heap}", "/v1/heaps/main", heap, id), 1);
    assert_string_equal(heap, "main");
    assert_string_equal(id, "");
    assert_int_equal(rcgc__route_match("/v1/heaps/{heap}/objects/{id}",
                                       "/v1/heaps/w/objects/0x10", heap, id),
                     1);
    assert_string_equal(heap, "w");
    assert_string_equal(id, "0x10");
    /* Percent-decoding: %2F is part of the name, not a separator; '+' stays '+'. */
    assert_int_equal(
        rcgc__route_match("/v1/heaps/{heap}/census", "/v1/heaps/a%2Fb%20c+d/census", heap, id),
        1);
    assert_string_equal(heap, "a/b c+d");
    assert_int_equal(rcgc__route_match("/v1/heaps/{heap}", "/v1/heaps/%C3%A9", heap, id), 1);
    assert_string_equal(heap, "\xC3\xA9");
    /* An empty segment does not match; a badly encoded one matches in shape (-1). */
    assert_int_equal(rcgc__route_match("/v1/heaps/{heap}", "/v1/heaps/", heap, id), 0);
    assert_int_equal(
        rcgc__route_match("/v1/heaps/{heap}/census", "/v1/heaps//census", heap, id), 0);
    assert_int_equal(rcgc__route_match("/v1/heaps/{heap}", "/v1/heaps/a%zz", heap, id), -1);
    assert_int_equal(rcgc__route_match("/v1/heaps/{heap}", "/v1/heaps/a%2", heap, id), -1);
    assert_int_equal(rcgc__route_match("/v1/heaps/{heap}", "/v1/heaps/a%00b", heap, id), -1);
    /* Too long a capture. */
    char path[2 * INSP_CAPTURE_MAX];
    strcpy(path, "/v1/heaps/");
    memset(path + 10, 'x', INSP_CAPTURE_MAX + 1);
    path[10 + INSP_CAPTURE_MAX + 1] = '\0';
    assert_int_equal(rcgc__route_match("/v1/heaps/{heap}", path, heap, id), -1);
    path[10 + INSP_CAPTURE_MAX] = '\0';
    assert_int_equal(rcgc__route_match("/v1/heaps/{heap}", path, heap, id), 1);
    assert_int_equal(strlen(heap), INSP_CAPTURE_MAX);
}

static void test_router_pct_decode(void **state)
{
    (void)state;
    char out[16];
    assert_int_equal(rcgc__pct_decode("abc", 3, out, sizeof out), 3);
    assert_string_equal(out, "abc");
    assert_int_equal(rcgc__pct_decode("%41%62%2f", 9, out, sizeof out), 3);
    assert_string_equal(out, "Ab/");
    assert_int_equal(rcgc__pct_decode("", 0, out, sizeof out), 0);
    assert_string_equal(out, "");
    assert_int_equal(rcgc__pct_decode("%4", 2, out, sizeof out), -1);
    assert_int_equal(rcgc__pct_decode("%", 1, out, sizeof out), -1);
    assert_int_equal(rcgc__pct_decode("%g0", 3, out, sizeof out), -1);
    assert_int_equal(rcgc__pct_decode("%00", 3, out, sizeof out), -1);
    /* Only n bytes are read: "%41" cut after two bytes is malformed. */
    assert_int_equal(rcgc__pct_decode("%41", 2, out, sizeof out), -1);
    /* No room: the NUL must fit too. */
    assert_int_equal(rcgc__pct_decode("abcd", 4, out, 4), -1);
    assert_int_equal(rcgc__pct_decode("abc", 3, out, 4), 3);
}

/* ---- dispatch: 404, 405, 400, 403 ---- */

static void test_router_not_found(void **state)
{
    (void)state;
    static const char *const paths[] = {
        "/nope", "/v1", "/v1/", "/v1/heaps/main/nope", "/v2/heaps", "/v1/heaps/main/census/x",
        "//"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        answer a = get(paths[i], NULL);
        assert_error(&a, 404, "not_found");
        answer_free(&a);
    }
    answer a = get("/v1/heaps/nosuchheap", NULL);
    assert_error(&a, 404, "heap_not_found");
    assert_non_null(strstr(a.rs.body, "nosuchheap"));
    answer_free(&a);
    /* The decoded name is what is looked up (and reported). */
    a = get("/v1/heaps/no%20such", NULL);
    assert_error(&a, 404, "heap_not_found");
    assert_non_null(strstr(a.rs.body, "no such"));
    answer_free(&a);
}

static void test_router_method_not_allowed(void **state)
{
    (void)state;
    set_control(true);
    answer a = dispatch("DELETE", "/v1/heaps", NULL, NULL, NULL);
    assert_error(&a, 405, "method_not_allowed");
    assert_string_equal(a.rs.allow, "GET, HEAD");
    answer_free(&a);
    a = dispatch("POST", "/metrics", NULL, NULL, NULL);
    assert_error(&a, 405, "method_not_allowed");
    answer_free(&a);
    /* Baselines answer GET and POST. */
    a = dispatch("PUT", "/v1/heaps/main/baselines", NULL, NULL, NULL);
    assert_error(&a, 405, "method_not_allowed");
    assert_string_equal(a.rs.allow, "GET, HEAD, POST");
    answer_free(&a);
    a = dispatch("GET", "/v1/heaps/main/collect", NULL, NULL, NULL);
    assert_error(&a, 405, "method_not_allowed");
    assert_string_equal(a.rs.allow, "POST");
    answer_free(&a);
    a = dispatch("OPTIONS", "/v1/heaps/main/thresholds", NULL, NULL, NULL);
    assert_error(&a, 405, "method_not_allowed");
    assert_string_equal(a.rs.allow, "PUT");
    answer_free(&a);
    a = dispatch("BREW", "/", NULL, NULL, NULL);
    assert_error(&a, 405, "method_not_allowed");
    answer_free(&a);
    /* HEAD is GET without a body (libmicrohttpd drops it). */
    a = dispatch("HEAD", "/v1/heaps", NULL, NULL, NULL);
    assert_int_equal(a.rs.status, 200);
    answer_free(&a);
}

static void test_router_bad_capture(void **state)
{
    (void)state;
    answer a = get("/v1/heaps/ma%zzin", NULL);
    assert_error(&a, 400, "bad_encoding");
    answer_free(&a);
    a = get("/v1/heaps/ma%00in/census", NULL);
    assert_error(&a, 400, "bad_encoding");
    answer_free(&a);
}

static void test_router_query_validation(void **state)
{
    (void)state;
    rcgc__snapshot_publish(g_heap);
    static const struct {
        const char *path;
        const char *kv[9];
        const char *code;
    } bad[] = {
        {"/v1/heaps", {"x", "1", NULL}, "unknown_parameter"},
        {"/v1/heaps/main/census", {"limit", "abc", NULL}, "bad_parameter"},
        {"/v1/heaps/main/census", {"limit", "0", NULL}, "bad_parameter"},
        {"/v1/heaps/main/census", {"limit", "10001", NULL}, "bad_parameter"},
        {"/v1/heaps/main/census", {"limit", "-1", NULL}, "bad_parameter"},
        {"/v1/heaps/main/census", {"limit", " 5", NULL}, "bad_parameter"},
        {"/v1/heaps/main/census", {"limit", "", NULL}, "bad_parameter"},
        {"/v1/heaps/main/census", {"limit", "99999999999999999999999", NULL}, "bad_parameter"},
        {"/v1/heaps/main/census", {"offset", "9007199254740992", NULL}, "bad_parameter"},
        {"/v1/heaps/main/census", {"limit", "5", "limit", "6", NULL}, "duplicate_parameter"},
        {"/v1/heaps/main/census", {"li%6dit", "5", "limit", "6", NULL}, "duplicate_parameter"},
        {"/v1/heaps/main/census", {"limit", "%zz", NULL}, "bad_encoding"},
        {"/v1/heaps/main/census", {"%", "1", NULL}, "bad_encoding"},
        {"/v1/heaps/main/census", {"sort", "size", NULL}, "bad_parameter"},
        {"/v1/heaps/main/census", {"sort", "delta_objects", NULL}, "bad_parameter"},
        {"/v1/heaps/main/census", {"baseline", "a b", NULL}, "bad_parameter"},
        {"/v1/heaps/main/census",
         {"baseline", "x1234567890123456789012345678901234567890123456789012345678901234",
          NULL},
         "bad_parameter"},
        {"/v1/heaps/main/sites", {"sort", "name", NULL}, "bad_parameter"},
        {"/metrics", {"format", "json", NULL}, "unknown_parameter"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        answer a = get(bad[i].path, bad[i].kv);
        if (a.rs.status != 400)
            print_error("case %zu: %s -> %u %s\n", i, bad[i].path, a.rs.status, a.rs.body);
        assert_error(&a, 400, bad[i].code);
        answer_free(&a);
    }
    /* Decoded values are what is checked. */
    static const char *const ok[] = {"li%6Dit", "1%30", "offset", "0", NULL};
    answer a = get("/v1/heaps/main/census", ok);
    assert_int_equal(a.rs.status, 200);
    assert_int_equal(json_integer_value(json_object_get(a.json, "limit")), 10);
    answer_free(&a);
    /* A baseline that does not exist is 404, not 400. */
    static const char *const nb[] = {"baseline", "nope", NULL};
    a = get("/v1/heaps/main/census", nb);
    assert_error(&a, 404, "baseline_not_found");
    answer_free(&a);
}

static void test_router_too_many_params(void **state)
{
    (void)state;
    insp_http in = {.method = "GET", .path = "/v1/heaps", .too_many_params = true};
    answer a = {{0}, NULL};
    rcgc__dispatch(&in, &a.rs);
    a.json = json_loadb(a.rs.body, a.rs.len, 0, NULL);
    assert_error(&a, 400, "too_many_parameters");
    answer_free(&a);
}

static void test_router_control_gating(void **state)
{
    (void)state;
    set_control(false);
    static const char *const label[] = {"label", "x", NULL};
    static const struct {
        const char *method, *path;
    } control[] = {{"POST", "/v1/heaps/main/collect"},
                   {"POST", "/v1/heaps/main/baselines"},
                   {"PUT", "/v1/heaps/main/thresholds"},
                   {"PUT", "/v1/heaps/main/debug"},
                   {"POST", "/v1/heaps/nosuchheap/collect"}};
    for (size_t i = 0; i < sizeof control / sizeof control[0]; i++) {
        answer a = dispatch(control[i].method, control[i].path, i == 1 ? label : NULL, "{}",
                            "application/json");
        assert_error(&a, 403, "control_disabled");
        answer_free(&a);
    }
    /* Reads are not control requests. */
    answer a = get("/v1/heaps/main/baselines", NULL);
    assert_int_equal(a.rs.status, 200);
    answer_free(&a);
    set_control(true);
}

/* The owner thread runs the test: a control call on its own heap cannot be served (the
 * owner would wait for itself) and must fail cleanly, not hang. */
static void test_router_owner_call_from_owner(void **state)
{
    (void)state;
    set_control(true);
    answer a = dispatch("POST", "/v1/heaps/main/collect", NULL, NULL, NULL);
    assert_int_equal(a.rs.status, 500);
    answer_free(&a);
}

static void test_router_bodies(void **state)
{
    (void)state;
    set_control(true);
    static const struct {
        const char *path, *body, *ctype;
        unsigned status;
        const char *code;
    } cases[] = {
        {"/v1/heaps/main/thresholds", "{\"threshold\":[1,2,3]}", NULL, 415,
         "unsupported_media_type"},
        {"/v1/heaps/main/thresholds", "{\"threshold\":[1,2,3]}", "text/plain", 415,
         "unsupported_media_type"},
        {"/v1/heaps/main/thresholds", "{\"threshold\":[1,2,3]}", "application/jsonx", 415,
         "unsupported_media_type"},
        {"/v1/heaps/main/thresholds", "", "application/json", 400, "bad_body"},
        {"/v1/heaps/main/thresholds", "{", "application/json", 400, "bad_body"},
        {"/v1/heaps/main/thresholds", "[1,2,3]", "application/json", 400, "bad_body"},
        {"/v1/heaps/main/thresholds", "{\"threshold\":[1,2]}", "application/json", 400,
         "bad_body"},
        {"/v1/heaps/main/thresholds", "{\"threshold\":[1,2,-3]}", "application/json", 400,
         "bad_body"},
        {"/v1/heaps/main/thresholds", "{\"threshold\":[1,2,3.5]}", "application/json", 400,
         "bad_body"},
        {"/v1/heaps/main/thresholds", "{\"threshold\":[1,2,\"x\"]}", "application/json", 400,
         "bad_body"},
        {"/v1/heaps/main/thresholds", "{\"threshold\":[1,2,9007199254740992]}",
         "application/json", 400, "bad_body"},
        {"/v1/heaps/main/thresholds", "{\"threshold\":[1,2,\"99999999999999999999\"]}",
         "application/json", 400, "bad_body"},
        {"/v1/heaps/main/thresholds", "{\"threshold\":[1,2,3],\"extra\":1}", "application/json",
         400, "bad_body"},
        {"/v1/heaps/main/thresholds", "{\"threshold\":[1,2,3],\"protocol\":2}",
         "application/json", 400, "bad_body"},
        {"/v1/heaps/main/thresholds", "{\"threshold\":[1,2,3],\"threshold\":[1,2,3]}",
         "application/json", 400, "bad_body"},
        {"/v1/heaps/main/debug", "{\"flags\":[\"verbose\"]}", "application/json", 400,
         "bad_body"},
        {"/v1/heaps/main/debug", "{\"flags\":[\"stats\",\"stats\"]}", "application/json", 400,
         "bad_body"},
        {"/v1/heaps/main/debug", "{\"flags\":\"stats\"}", "application/json", 400, "bad_body"},
        {"/v1/heaps/main/debug", "{}", "application/json", 400, "bad_body"},
        {"/v1/heaps/nosuchheap/debug", "{\"flags\":[]}", "application/json; charset=utf-8", 404,
         "heap_not_found"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        answer a = dispatch("PUT", cases[i].path, NULL, cases[i].body, cases[i].ctype);
        if (a.rs.status != cases[i].status)
            print_error("case %zu -> %u %s\n", i, a.rs.status, a.rs.body);
        assert_error(&a, cases[i].status, cases[i].code);
        answer_free(&a);
    }
}

/* ---- answers built from a snapshot (the test thread owns the heap and publishes) ---- */

static void test_router_heap_answer(void **state)
{
    (void)state;
    assert_int_equal(rcgc__snapshot_publish(g_heap), 0);
    answer a = get("/v1/heaps/main", NULL);
    assert_int_equal(a.rs.status, 200);
    assert_string_equal(a.rs.content_type, "application/json");
    assert_int_equal(json_integer_value(json_object_get(a.json, "protocol")), 1);
    assert_string_equal(json_string_value(json_object_get(a.json, "name")), "main");
    json_t *gens = json_object_get(a.json, "generations");
    assert_int_equal(json_array_size(gens), 3);
    /* 64-bit quantities travel as decimal strings. */
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(gens, 0), "threshold")), "700");
    assert_true(json_is_string(json_object_get(a.json, "objects")));
    json_t *snap = json_object_get(a.json, "snapshot");
    assert_true(json_is_string(json_object_get(snap, "serial")));
    assert_string_not_equal(json_string_value(json_object_get(snap, "serial")), "0");
    answer_free(&a);
}

/* ---- reply helpers ---- */

static void test_router_json_helpers(void **state)
{
    (void)state;
    json_t *j = rcgc__json_u64(UINT64_MAX);
    assert_string_equal(json_string_value(j), "18446744073709551615");
    json_decref(j);
    j = rcgc__json_i64(INT64_MIN);
    assert_string_equal(json_string_value(j), "-9223372036854775808");
    json_decref(j);
    j = rcgc__json_text("ok \xC3\xA9");
    assert_string_equal(json_string_value(j), "ok \xC3\xA9");
    json_decref(j);
    /* Invalid UTF-8 (a stray continuation byte, a truncated sequence, an overlong form,
     * a surrogate) becomes U+FFFD. */
    j = rcgc__json_text("a\x80"
                        "b\xC3"
                        "c\xC0\xAF"
                        "d\xED\xA0\x80");
    assert_non_null(j);
    assert_string_equal(json_string_value(j), "a\xEF\xBF\xBD"
                                              "b\xEF\xBF\xBD"
                                              "c\xEF\xBF\xBD\xEF\xBF\xBD"
                                              "d\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
    json_decref(j);
    j = rcgc__json_snapshot(0, 0);
    assert_true(json_is_null(json_object_get(j, "age_ms")));
    json_decref(j);

    insp_resp rs = {0};
    assert_int_equal(rcgc__reply_error(&rs, 418, "teapot", "%s %d", "short and stout", 2), -1);
    assert_int_equal(rs.status, 418);
    assert_string_equal(rs.body, "{\"protocol\":1,\"error\":{\"code\":\"teapot\","
                                 "\"message\":\"short and stout 2\"}}\n");
    rcgc__resp_clear(&rs);
    /* A NULL document (a failed allocation upstream) is a 500, not a crash. */
    assert_int_equal(rcgc__reply_json(&rs, 200, NULL), -1);
    assert_int_equal(rs.status, 500);
    rcgc__resp_clear(&rs);
}

static void test_router_labels_and_addresses(void **state)
{
    (void)state;
    assert_true(rcgc__label_valid("a"));
    assert_true(rcgc__label_valid("before-GC_1.2"));
    assert_false(rcgc__label_valid(""));
    assert_false(rcgc__label_valid("a/b"));
    assert_false(rcgc__label_valid("a b"));
    char l64[66];
    memset(l64, 'x', 65);
    l64[64] = '\0';
    assert_true(rcgc__label_valid(l64));
    l64[64] = 'x';
    l64[65] = '\0';
    assert_false(rcgc__label_valid(l64));

    struct sockaddr_in a;
    assert_int_equal(rcgc__insp_parse_address("127.0.0.1:7070", &a), 0);
    assert_int_equal(ntohs(a.sin_port), 7070);
    assert_int_equal(rcgc__insp_parse_address(":0", &a), 0);
    assert_int_equal(ntohl(a.sin_addr.s_addr), 0x7f000001);
    assert_int_equal(rcgc__insp_parse_address("8080", &a), 0);
    assert_int_equal(ntohs(a.sin_port), 8080);
    assert_int_equal(rcgc__insp_parse_address("localhost:1", &a), 0);
    assert_int_equal(rcgc__insp_parse_address("127.0.0.1:65536", &a), RCGC_EINVAL);
    assert_int_equal(rcgc__insp_parse_address("127.0.0.1:", &a), RCGC_EINVAL);
    assert_int_equal(rcgc__insp_parse_address("127.0.0.1:-1", &a), RCGC_EINVAL);
    assert_int_equal(rcgc__insp_parse_address("127.0.0.1:80x", &a), RCGC_EINVAL);
    assert_int_equal(rcgc__insp_parse_address("example.com:80", &a), RCGC_EINVAL);
    assert_int_equal(rcgc__insp_parse_address("[::1]:80", &a), RCGC_EINVAL);
    assert_int_equal(rcgc__insp_parse_address("", &a), RCGC_EINVAL);
    assert_int_equal(rcgc__insp_parse_address(NULL, &a), RCGC_EINVAL);

    /* Non-loopback needs allow_remote. */
    insp_config cfg;
    rcgc_inspect_options o = {.address = "0.0.0.0:0", .allow_control = 0};
    assert_int_equal(rcgc__insp_config_resolve(&o, &cfg), RCGC_EINVAL);
    free(cfg.token);
    o.allow_remote = true;
    assert_int_equal(rcgc__insp_config_resolve(&o, &cfg), 0);
    assert_false(cfg.loopback);
    free(cfg.token);
    o = (rcgc_inspect_options){.address = "127.0.0.1:0", .token = "t", .allow_control = 1};
    assert_int_equal(rcgc__insp_config_resolve(&o, &cfg), 0);
    assert_true(cfg.loopback);
    assert_true(cfg.allow_control);
    assert_string_equal(cfg.token, "t");
    assert_int_equal(cfg.max_connections, 64);
    assert_int_equal(cfg.idle_timeout_s, 60);
    assert_int_equal(cfg.walk_timeout_ms, 1000);
    free(cfg.token);
}

/* The dashboard's routes: {name} captures one decoded segment; only they are public. */
static void test_router_public_routes(void **state)
{
    (void)state;
    char heap[INSP_CAPTURE_MAX + 1], id[INSP_CAPTURE_MAX + 1];
    assert_int_equal(rcgc__route_match("/assets/{name}", "/assets/app.js", heap, id), 1);
    assert_string_equal(id, "app.js");
    assert_int_equal(rcgc__route_match("/assets/{name}", "/assets/..%2Fx", heap, id), 1);
    assert_string_equal(id, "../x"); /* the handler refuses it */
    assert_int_equal(rcgc__route_match("/assets/{name}", "/assets/", heap, id), 0);
    assert_int_equal(rcgc__route_match("/assets/{name}", "/assets/../x", heap, id), 0);
    assert_true(rcgc__route_public("GET", "/"));
    assert_true(rcgc__route_public("HEAD", "/"));
    assert_true(rcgc__route_public("GET", "/assets/app.js"));
    assert_true(rcgc__route_public("GET", "/assets/nope.js"));
    assert_false(rcgc__route_public("POST", "/"));
    assert_false(rcgc__route_public("GET", "/assets/a/b"));
    assert_false(rcgc__route_public("GET", "/v1/heaps"));
    assert_false(rcgc__route_public("GET", "/metrics"));
    assert_false(rcgc__route_public("GET", "/v1/events"));
    assert_false(rcgc__route_public("GET", "/nope"));
    answer a = get("/assets/..%2Fx", NULL);
    assert_error(&a, 404, "not_found");
    answer_free(&a);
    a = get("/assets/app.js", (const char *const[]){"v", "1", NULL});
    assert_error(&a, 400, "unknown_parameter");
    answer_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_router_match_literal),
        cmocka_unit_test(test_router_match_captures),
        cmocka_unit_test(test_router_pct_decode),
        cmocka_unit_test(test_router_not_found),
        cmocka_unit_test(test_router_method_not_allowed),
        cmocka_unit_test(test_router_bad_capture),
        cmocka_unit_test(test_router_query_validation),
        cmocka_unit_test(test_router_too_many_params),
        cmocka_unit_test(test_router_control_gating),
        cmocka_unit_test(test_router_owner_call_from_owner),
        cmocka_unit_test(test_router_bodies),
        cmocka_unit_test(test_router_heap_answer),
        cmocka_unit_test(test_router_json_helpers),
        cmocka_unit_test(test_router_labels_and_addresses),
        cmocka_unit_test(test_router_public_routes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
