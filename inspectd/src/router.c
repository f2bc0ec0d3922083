/* router.c: the route table of protocol v1 and how a request finds its handler:
 * literal segments and {heap} / {id} captures, percent-decoding, strict query
 * parameters, 404 / 405 / 400 / 403 before any handler runs. */
#define _POSIX_C_SOURCE 200809L

#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Every endpoint, one row each. A GET row answers HEAD too. */
static const insp_route routes[] = {
    {INSP_GET, "/", rcgc__handle_dashboard_get, NULL, INSP_ROUTE_PUBLIC},
    {INSP_GET, "/assets/{name}", rcgc__handle_asset_get, NULL, INSP_ROUTE_PUBLIC},
    {INSP_GET, "/metrics", rcgc__handle_metrics_get, NULL, 0},
    {INSP_GET, "/v1/process", rcgc__handle_process_get, NULL, 0},
    {INSP_GET, "/v1/heaps", rcgc__handle_heaps_get, NULL, 0},
    {INSP_GET, "/v1/heaps/{heap}", rcgc__handle_heap_get, NULL, 0},
    {INSP_GET, "/v1/heaps/{heap}/census", rcgc__handle_census_get, "baseline limit offset sort",
     0},
    {INSP_GET, "/v1/heaps/{heap}/sites", rcgc__handle_sites_get,
     "baseline limit offset sort type", 0},
    {INSP_GET, "/v1/heaps/{heap}/baselines", rcgc__handle_baselines_get, NULL, 0},
    {INSP_POST, "/v1/heaps/{heap}/baselines", rcgc__handle_baselines_post, "label",
     INSP_ROUTE_CONTROL},
    {INSP_POST, "/v1/heaps/{heap}/collect", rcgc__handle_collect_post, "generation",
     INSP_ROUTE_CONTROL},
    {INSP_PUT, "/v1/heaps/{heap}/thresholds", rcgc__handle_thresholds_put, NULL,
     INSP_ROUTE_CONTROL},
    {INSP_PUT, "/v1/heaps/{heap}/debug", rcgc__handle_debug_put, NULL, INSP_ROUTE_CONTROL},
    {INSP_GET, "/v1/heaps/{heap}/objects", rcgc__handle_objects_get,
     "type generation scope limit cursor", 0},
    {INSP_GET, "/v1/heaps/{heap}/objects/{id}", rcgc__handle_object_get,
     "referents_limit referrers_limit", 0},
    {INSP_GET, "/v1/heaps/{heap}/objects/{id}/path", rcgc__handle_path_get,
     "budget_ms steps_limit", 0},
    {INSP_GET, "/v1/heaps/{heap}/objects/{id}/retained", rcgc__handle_object_retained_get,
     "budget_ms dominated_limit by_type_limit", 0},
    {INSP_GET, "/v1/heaps/{heap}/retained", rcgc__handle_type_retained_get,
     "type budget_ms dominated_limit by_type_limit", 0},
    {INSP_GET, "/v1/heaps/{heap}/suspects", rcgc__handle_suspects_get, "by kind limit offset",
     0},
    {INSP_GET, "/v1/heaps/{heap}/garbage", rcgc__handle_garbage_get,
     "max_objects offset limit objects_limit referents_limit", 0},
    {INSP_GET, "/v1/heaps/{heap}/objects/{id}/traceback", rcgc__handle_object_traceback_get,
     NULL, 0},
    {INSP_GET, "/v1/heaps/{heap}/allocator", rcgc__handle_allocator_get, "format", 0},
    {INSP_GET, "/v1/heaps/{heap}/tracing", rcgc__handle_tracing_get, NULL, 0},
    {INSP_POST, "/v1/heaps/{heap}/tracing", rcgc__handle_tracing_post,
     "action frames sample_bytes", INSP_ROUTE_CONTROL},
    {INSP_GET, "/v1/heaps/{heap}/tracing/statistics", rcgc__handle_tracing_statistics_get,
     "key cumulative limit offset include* exclude* base", 0},
    {INSP_GET, "/v1/heaps/{heap}/tracing/snapshots", rcgc__handle_tracing_snapshots_get, NULL,
     0},
    {INSP_POST, "/v1/heaps/{heap}/tracing/snapshots", rcgc__handle_tracing_snapshots_post,
     "label", INSP_ROUTE_CONTROL},
    {INSP_GET, "/v1/heaps/{heap}/pprof/heap", rcgc__handle_pprof_heap_get, NULL, 0},
    {INSP_GET, "/v1/events", rcgc__handle_events_get, "heap since", 0},
};
#define NROUTES (sizeof routes / sizeof routes[0])

static insp_method method_of(const char *m)
{
    if (strcmp(m, "GET") == 0)
        return INSP_GET;
    if (strcmp(m, "HEAD") == 0)
        return INSP_HEAD;
    if (strcmp(m, "POST") == 0)
        return INSP_POST;
    if (strcmp(m, "PUT") == 0)
        return INSP_PUT;
    if (strcmp(m, "DELETE") == 0)
        return INSP_DELETE;
    return INSP_OTHER;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

long rcgc__pct_decode(const char *s, size_t n, char *out, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= n)
                return -1;
            int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = hi * 16 + lo;
            if (c == 0)
                return -1;
            i += 2;
        } else if (c == '\0') {
            return -1;
        }
        if (k + 1 >= cap)
            return -1;
        out[k++] = (char)c;
    }
    if (k >= cap)
        return -1;
    out[k] = '\0';
    return (long)k;
}

int rcgc__route_match(const char *pattern, const char *path, char *heap, char *id)
{
    heap[0] = id[0] = '\0';
    if (path[0] != '/')
        return 0;
    if (strcmp(pattern, "/") == 0)
        return strcmp(path, "/") == 0;
    const char *p = pattern, *s = path;
    int bad = 0;
    while (*p == '/' && *s == '/') {
        p++, s++;
        size_t pn = strcspn(p, "/"), sn = strcspn(s, "/");
        if (pn >= 2 && p[0] == '{' && p[pn - 1] == '}') {
            char *dst = NULL;
            if (pn == 6 && strncmp(p, "{heap}", 6) == 0)
                dst = heap;
            else if ((pn == 4 && strncmp(p, "{id}", 4) == 0) ||
                     (pn == 6 && strncmp(p, "{name}", 6) == 0))
                dst = id;
            if (dst == NULL || sn == 0)
                return 0; /* unknown capture in the table, or an empty segment */
            if (rcgc__pct_decode(s, sn, dst, INSP_CAPTURE_MAX + 1) <= 0)
                bad = 1; /* the shape matches: the segment itself is wrong */
        } else if (pn != sn || strncmp(p, s, pn) != 0) {
            return 0;
        }
        p += pn, s += sn;
    }
    if (*p != '\0' || *s != '\0')
        return 0;
    return bad ? -1 : 1;
}

/* Whether word (n bytes) is one of the space-separated words of list; a word of list
 * may end in '*' (a repeatable query parameter), which is not part of the name. *star
 * (when not NULL) says whether the matching word had it. */
static bool word_find(const char *list, const char *word, size_t n, bool *star)
{
    if (list == NULL)
        return false;
    for (const char *w = list; *w != '\0';) {
        size_t k = strcspn(w, " ");
        bool st = k > 0 && w[k - 1] == '*';
        if (k - st == n && strncmp(w, word, n) == 0) {
            if (star != NULL)
                *star = st;
            return true;
        }
        w += k;
        while (*w == ' ')
            w++;
    }
    return false;
}

static bool word_in(const char *list, const char *word, size_t n)
{
    return word_find(list, word, n, NULL);
}

static void allow_header(char *out, size_t cap, unsigned methods)
{
    static const struct {
        unsigned bit;
        const char *name;
    } names[] = {{INSP_GET, "GET, HEAD"},
                 {INSP_POST, "POST"},
                 {INSP_PUT, "PUT"},
                 {INSP_DELETE, "DELETE"}};
    out[0] = '\0';
    size_t len = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!(methods & names[i].bit))
            continue;
        size_t n = strlen(names[i].name);
        if (len + n + 3 > cap)
            break;
        if (len > 0) {
            memcpy(out + len, ", ", 2);
            len += 2;
        }
        memcpy(out + len, names[i].name, n + 1);
        len += n;
    }
}

/* Decoded query parameters, in one block: the pointers in params point into text. */
typedef struct decoded {
    insp_param params[INSP_PARAMS_MAX];
    size_t n;
    char *text;
} decoded;

/* Decodes and checks the parameters against the route. Returns: 0 or -1 (rs filled). */
static int decode_params(const insp_http *in, const insp_route *r, decoded *d, insp_resp *rs)
{
    d->n = 0;
    d->text = NULL;
    if (in->too_many_params)
        return rcgc__reply_error(rs, 400, "too_many_parameters",
                                 "at most %d query parameters are accepted", INSP_PARAMS_MAX);
    size_t total = 0;
    for (size_t i = 0; i < in->nparams; i++)
        total += strlen(in->params[i].key) + 1 +
                 (in->params[i].value ? strlen(in->params[i].value) : 0) + 1;
    if (in->nparams == 0)
        return 0;
    d->text = malloc(total);
    if (d->text == NULL)
        return rcgc__reply_error(rs, 500, "internal_error", "out of memory");
    char *t = d->text;
    for (size_t i = 0; i < in->nparams && i < INSP_PARAMS_MAX; i++) {
        const char *raw_key = in->params[i].key;
        const char *raw_val = in->params[i].value ? in->params[i].value : "";
        size_t kcap = strlen(raw_key) + 1, vcap = strlen(raw_val) + 1;
        long kn = rcgc__pct_decode(raw_key, kcap - 1, t, kcap);
        if (kn < 0 || kn == 0)
            return rcgc__reply_error(rs, 400, "bad_encoding",
                                     "a query parameter name is empty or badly encoded");
        const char *key = t;
        t += kn + 1;
        if (rcgc__pct_decode(raw_val, vcap - 1, t, vcap) < 0)
            return rcgc__reply_error(rs, 400, "bad_encoding",
                                     "query parameter '%s' is badly encoded", key);
        const char *val = t;
        t += strlen(t) + 1;
        bool repeatable = false;
        if (!word_find(r->params, key, (size_t)kn, &repeatable))
            return rcgc__reply_error(rs, 400, "unknown_parameter",
                                     "unknown query parameter '%s' for %s", key, r->pattern);
        for (size_t j = 0; j < d->n && !repeatable; j++)
            if (strcmp(d->params[j].key, key) == 0)
                return rcgc__reply_error(rs, 400, "duplicate_parameter",
                                         "query parameter '%s' is given twice", key);
        d->params[d->n++] = (insp_param){key, val};
    }
    return 0;
}

bool rcgc__route_public(const char *method, const char *path)
{
    insp_method m = method_of(method);
    insp_method as = m == INSP_HEAD ? INSP_GET : m;
    char h[INSP_CAPTURE_MAX + 1], d[INSP_CAPTURE_MAX + 1];
    for (size_t i = 0; i < NROUTES; i++)
        if (routes[i].method == as && rcgc__route_match(routes[i].pattern, path, h, d) != 0)
            return (routes[i].flags & INSP_ROUTE_PUBLIC) != 0;
    return false;
}

void rcgc__dispatch(const insp_http *in, insp_resp *rs)
{
    insp_method m = method_of(in->method);
    insp_method as = m == INSP_HEAD ? INSP_GET : m;
    char cap_heap[INSP_CAPTURE_MAX + 1], cap_id[INSP_CAPTURE_MAX + 1];
    unsigned methods = 0;
    const insp_route *found = NULL;
    bool bad_capture = false;
    for (size_t i = 0; i < NROUTES; i++) {
        char h[INSP_CAPTURE_MAX + 1], d[INSP_CAPTURE_MAX + 1];
        int r = rcgc__route_match(routes[i].pattern, in->path, h, d);
        if (r == 0)
            continue;
        methods |= (unsigned)routes[i].method;
        if (r < 0) {
            bad_capture = true;
            continue;
        }
        if (routes[i].method == as && found == NULL) {
            found = &routes[i];
            memcpy(cap_heap, h, sizeof cap_heap);
            memcpy(cap_id, d, sizeof cap_id);
        }
    }
    if (methods == 0) {
        rcgc__reply_error(rs, 404, "not_found", "no endpoint at this path");
        return;
    }
    if (found == NULL && !bad_capture) {
        allow_header(rs->allow, sizeof rs->allow, methods);
        rcgc__reply_error(rs, 405, "method_not_allowed", "%s is not allowed here; allowed: %s",
                          in->method, rs->allow);
        return;
    }
    if (found == NULL) {
        rcgc__reply_error(rs, 400, "bad_encoding",
                          "a path segment is empty, too long or badly percent-encoded");
        return;
    }
    if ((found->flags & INSP_ROUTE_CONTROL) && !rcgc__insp_config()->allow_control) {
        rcgc__reply_error(rs, 403, "control_disabled",
                          "control requests are disabled (RCGC_INSPECT_CONTROL=1 or the "
                          "allow_control option enables them)");
        return;
    }
    decoded d;
    if (decode_params(in, found, &d, rs) != 0) {
        free(d.text);
        return;
    }
    insp_req rq = {
        .method = m,
        .path = in->path,
        .heap = strstr(found->pattern, "{heap}") ? cap_heap : NULL,
        .id = strstr(found->pattern, "{id}") ? cap_id : NULL,
        .name = strstr(found->pattern, "{name}") ? cap_id : NULL,
        .params = d.params,
        .nparams = d.n,
        .body = in->body ? in->body : "",
        .body_len = in->body ? in->body_len : 0,
        .content_type = in->content_type,
        .if_none_match = in->if_none_match,
    };
    int r = found->handler(&rq, rs);
    if (rs->status == 0 || (r < 0 && rs->status < 400))
        rcgc__reply_error(rs, 500, "internal_error", "the answer could not be built");
    free(d.text);
}

/* ---- query parameters ---- */

const char *rcgc__query_str(const insp_req *rq, const char *name)
{
    for (size_t i = 0; i < rq->nparams; i++)
        if (strcmp(rq->params[i].key, name) == 0)
            return rq->params[i].value;
    return NULL;
}

size_t rcgc__query_all(const insp_req *rq, const char *name, const char **out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < rq->nparams; i++)
        if (strcmp(rq->params[i].key, name) == 0 && n < cap)
            out[n++] = rq->params[i].value;
    return n;
}

int rcgc__query_uint(const insp_req *rq, insp_resp *rs, const char *name, uint64_t min,
                     uint64_t max, uint64_t dflt, uint64_t *out)
{
    const char *v = rcgc__query_str(rq, name);
    if (v == NULL) {
        *out = dflt;
        return 0;
    }
    size_t n = strlen(v);
    uint64_t x = 0;
    bool ok = n > 0 && n <= 19 && strspn(v, "0123456789") == n;
    for (size_t i = 0; ok && i < n; i++)
        x = x * 10 + (uint64_t)(v[i] - '0');
    if (!ok || x < min || x > max)
        return rcgc__reply_error(rs, 400, "bad_parameter",
                                 "query parameter '%s' must be an integer from %llu to %llu",
                                 name, (unsigned long long)min, (unsigned long long)max);
    *out = x;
    return 0;
}

bool rcgc__label_valid(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= 64 &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

int rcgc__query_label(const insp_req *rq, insp_resp *rs, const char *name, bool required,
                      const char **out)
{
    const char *v = rcgc__query_str(rq, name);
    *out = NULL;
    if (v == NULL) {
        if (required)
            return rcgc__reply_error(rs, 400, "missing_parameter",
                                     "query parameter '%s' is required", name);
        return 0;
    }
    if (!rcgc__label_valid(v))
        return rcgc__reply_error(rs, 400, "bad_parameter",
                                 "query parameter '%s' must match [A-Za-z0-9_.-]{1,64}", name);
    *out = v;
    return 0;
}

int rcgc__query_choice(const insp_req *rq, insp_resp *rs, const char *name, const char *choices,
                       const char *dflt, const char **out)
{
    const char *v = rcgc__query_str(rq, name);
    if (v == NULL) {
        *out = dflt;
        return 0;
    }
    if (v[0] == '\0' || strchr(v, ' ') != NULL || !word_in(choices, v, strlen(v)))
        return rcgc__reply_error(rs, 400, "bad_parameter",
                                 "query parameter '%s' must be one of: %s", name, choices);
    *out = v;
    return 0;
}
