/* handlers_control.c: the control requests that change a heap: collect a generation,
 * set thresholds, set debug flags. Each runs on the heap's owner thread at a safepoint
 * (rcgc__heap_call_owner) and publishes a fresh snapshot before answering, so that the
 * next read sees the change. Gated by the router (403 unless control is enabled). */
#define _POSIX_C_SOURCE 200809L

#include "internal.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

static const struct {
    const char *name;
    unsigned bit;
} debug_flags[] = {
    {"stats", RCGC_DEBUG_STATS},
    {"collectable", RCGC_DEBUG_COLLECTABLE},
    {"uncollectable", RCGC_DEBUG_UNCOLLECTABLE},
    {"saveall", RCGC_DEBUG_SAVEALL},
};
#define NFLAGS (sizeof debug_flags / sizeof debug_flags[0])
#define ALL_FLAGS                                                                              \
    (RCGC_DEBUG_STATS | RCGC_DEBUG_COLLECTABLE | RCGC_DEBUG_UNCOLLECTABLE | RCGC_DEBUG_SAVEALL)

json_t *rcgc__debug_flag_names(unsigned flags)
{
    json_t *a = json_array();
    int bad = 0;
    for (size_t i = 0; i < NFLAGS; i++)
        if (flags & debug_flags[i].bit)
            bad |= json_array_append_new(a, json_string(debug_flags[i].name));
    if (bad != 0) {
        json_decref(a);
        return NULL;
    }
    return a;
}

/* Control bodies are JSON objects sent as application/json (a cross-origin page cannot
 * send that without a CORS preflight, which this server never grants). Returns: the
 * parsed body (new reference) or NULL after replying 415 / 400. */
static json_t *json_body(const insp_req *rq, insp_resp *rs)
{
    const char *ct = rq->content_type;
    size_t n = strlen("application/json");
    if (ct == NULL || strncasecmp(ct, "application/json", n) != 0 ||
        (ct[n] != '\0' && ct[n] != ';' && ct[n] != ' ')) {
        rcgc__reply_error(rs, 415, "unsupported_media_type",
                          "the body must be sent as Content-Type: application/json");
        return NULL;
    }
    json_error_t err;
    json_t *j = json_loadb(rq->body, rq->body_len, JSON_REJECT_DUPLICATES, &err);
    if (j == NULL) {
        rcgc__reply_error(rs, 400, "bad_body", "the body is not JSON: %s (line %d, column %d)",
                          err.text, err.line, err.column);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        rcgc__reply_error(rs, 400, "bad_body", "the body must be a JSON object");
        return NULL;
    }
    return j;
}

/* Fails (400) unless obj has the member named and, besides it, at most "protocol": 1.
 * Returns: 0 or -1. */
static int only_member(json_t *obj, const char *name, insp_resp *rs)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        if (strcmp(key, "protocol") == 0) {
            if (!json_is_integer(v) || json_integer_value(v) != INSP_PROTOCOL)
                return rcgc__reply_error(rs, 400, "bad_body", "'protocol' must be %d",
                                         INSP_PROTOCOL);
        } else if (strcmp(key, name) != 0) {
            return rcgc__reply_error(rs, 400, "bad_body", "unknown member '%s' (expected '%s')",
                                     key, name);
        }
    }
    if (json_object_get(obj, name) == NULL)
        return rcgc__reply_error(rs, 400, "bad_body", "member '%s' is missing", name);
    return 0;
}

/* ---- POST /v1/heaps/{heap}/collect?generation=0..2 ---- */

typedef struct collect_call {
    int generation;
    ssize_t result;
    uint64_t duration_ns;
    rcgc_gen_stats before[3], after[3];
} collect_call;

static void do_collect(rcgc_heap *h, void *arg)
{
    collect_call *c = arg;
    rcgc_get_stats(h, c->before);
    uint64_t t0 = rcgc__insp_now_ns();
    c->result = rcgc_collect(h, c->generation);
    c->duration_ns = rcgc__insp_now_ns() - t0;
    rcgc_get_stats(h, c->after);
    (void)rcgc__snapshot_publish(h);
}

int rcgc__handle_collect_post(const insp_req *rq, insp_resp *rs)
{
    uint64_t g;
    if (rcgc__query_uint(rq, rs, "generation", 0, 2, 2, &g) != 0)
        return -1;
    collect_call c = {.generation = (int)g};
    if (rcgc__inspect_owner_call(rs, rq->heap, do_collect, &c) != 0)
        return -1;
    if (c.result < 0)
        return rcgc__reply_error(rs, 500, "internal_error", "the collection failed: %s",
                                 rcgc_strerror((int)c.result));
    /* A collection counts in the statistics of the generation it collected. */
    const rcgc_gen_stats *b = &c.before[g], *a = &c.after[g];
    json_t *o = rcgc__json_top();
    int bad = json_object_set_new(o, "heap", rcgc__json_text(rq->heap));
    bad |= json_object_set_new(o, "generation", json_integer((json_int_t)g));
    bad |= json_object_set_new(o, "unreachable", rcgc__json_u64((uint64_t)c.result));
    bad |= json_object_set_new(o, "collected", rcgc__json_u64(a->collected - b->collected));
    bad |= json_object_set_new(o, "uncollectable",
                               rcgc__json_u64(a->uncollectable - b->uncollectable));
    bad |= json_object_set_new(o, "pause_ns", rcgc__json_u64(c.duration_ns));
    if (bad != 0) {
        json_decref(o);
        return rcgc__reply_error(rs, 500, "internal_error", "out of memory");
    }
    return rcgc__reply_json(rs, 200, o);
}

/* ---- PUT /v1/heaps/{heap}/thresholds {"threshold":[t0,t1,t2]} ---- */

/* Thresholds are size_t: any value up to SIZE_MAX is meaningful (a huge one means
 * "practically never"); JSON integers above 2^53 - 1 are refused (clients cannot
 * write them exactly), decimal strings go up to SIZE_MAX. */
#define JSON_INT_MAX 9007199254740991ll

typedef struct threshold_call {
    size_t t[3];
    size_t now[3];
} threshold_call;

static void do_threshold(rcgc_heap *h, void *arg)
{
    threshold_call *c = arg;
    rcgc_set_threshold(h, c->t[0], c->t[1], c->t[2]);
    rcgc_get_threshold(h, c->now);
    (void)rcgc__snapshot_publish(h);
}

/* A threshold: a JSON integer (0 .. 2^53 - 1) or a decimal string (0 .. SIZE_MAX). */
static int threshold_value(json_t *v, size_t *out)
{
    if (json_is_integer(v)) {
        json_int_t x = json_integer_value(v);
        if (x < 0 || x > JSON_INT_MAX)
            return -1;
        *out = (size_t)x;
        return 0;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t n = strlen(s);
        if (n == 0 || n > 20 || strspn(s, "0123456789") != n || (n > 1 && s[0] == '0'))
            return -1;
        size_t x = 0;
        for (size_t i = 0; i < n; i++) {
            size_t d = (size_t)(s[i] - '0');
            if (x > (SIZE_MAX - d) / 10)
                return -1;
            x = x * 10 + d;
        }
        *out = x;
        return 0;
    }
    return -1;
}

int rcgc__handle_thresholds_put(const insp_req *rq, insp_resp *rs)
{
    json_t *body = json_body(rq, rs);
    if (body == NULL)
        return -1;
    threshold_call c;
    json_t *a = json_object_get(body, "threshold");
    int ok = only_member(body, "threshold", rs) == 0;
    if (ok && (!json_is_array(a) || json_array_size(a) != 3)) {
        rcgc__reply_error(rs, 400, "bad_body", "'threshold' must be an array of 3 integers");
        ok = 0;
    }
    for (size_t i = 0; ok && i < 3; i++) {
        if (threshold_value(json_array_get(a, i), &c.t[i]) != 0) {
            rcgc__reply_error(rs, 400, "bad_body",
                              "threshold[%zu] must be an integer from 0 to 2^53 - 1, or a "
                              "decimal string",
                              i);
            ok = 0;
        }
    }
    json_decref(body);
    if (!ok)
        return -1;
    if (rcgc__inspect_owner_call(rs, rq->heap, do_threshold, &c) != 0)
        return -1;
    json_t *o = rcgc__json_top();
    int bad = json_object_set_new(o, "heap", rcgc__json_text(rq->heap));
    json_t *t = json_array();
    for (int i = 0; i < 3; i++)
        bad |= json_array_append_new(t, rcgc__json_u64(c.now[i]));
    bad |= json_object_set_new(o, "threshold", t);
    if (bad != 0) {
        json_decref(o);
        return rcgc__reply_error(rs, 500, "internal_error", "out of memory");
    }
    return rcgc__reply_json(rs, 200, o);
}

/* ---- PUT /v1/heaps/{heap}/debug {"flags":["stats",...]} ---- */

typedef struct debug_call {
    unsigned flags;
    unsigned now;
} debug_call;

static void do_debug(rcgc_heap *h, void *arg)
{
    debug_call *c = arg;
    rcgc_set_debug(h, c->flags);
    c->now = rcgc_get_debug(h);
    (void)rcgc__snapshot_publish(h);
}

/* The bit of a flag name ("leak" is collectable|uncollectable|saveall), 0 if unknown. */
static unsigned flag_bit(const char *name)
{
    if (strcmp(name, "leak") == 0)
        return RCGC_DEBUG_LEAK;
    for (size_t i = 0; i < NFLAGS; i++)
        if (strcmp(name, debug_flags[i].name) == 0)
            return debug_flags[i].bit;
    return 0;
}

int rcgc__handle_debug_put(const insp_req *rq, insp_resp *rs)
{
    json_t *body = json_body(rq, rs);
    if (body == NULL)
        return -1;
    debug_call c = {0, 0};
    json_t *a = json_object_get(body, "flags");
    int ok = only_member(body, "flags", rs) == 0;
    if (ok && !json_is_array(a)) {
        rcgc__reply_error(rs, 400, "bad_body", "'flags' must be an array of flag names");
        ok = 0;
    }
    for (size_t i = 0; ok && i < json_array_size(a); i++) {
        json_t *v = json_array_get(a, i);
        unsigned bit = json_is_string(v) ? flag_bit(json_string_value(v)) : 0;
        for (size_t k = 0; bit != 0 && k < i; k++)
            if (json_equal(json_array_get(a, k), v))
                bit = 0; /* the same name twice */
        if (bit == 0) {
            rcgc__reply_error(rs, 400, "bad_body",
                              "flags[%zu] is not one of stats, collectable, uncollectable, "
                              "saveall, leak (each at most once)",
                              i);
            ok = 0;
        }
        c.flags |= bit;
    }
    json_decref(body);
    if (!ok)
        return -1;
    c.flags &= ALL_FLAGS;
    if (rcgc__inspect_owner_call(rs, rq->heap, do_debug, &c) != 0)
        return -1;
    json_t *o = rcgc__json_top();
    int bad = json_object_set_new(o, "heap", rcgc__json_text(rq->heap));
    bad |= json_object_set_new(o, "debug", rcgc__debug_json(c.now));
    if (bad != 0) {
        json_decref(o);
        return rcgc__reply_error(rs, 500, "internal_error", "out of memory");
    }
    return rcgc__reply_json(rs, 200, o);
}
