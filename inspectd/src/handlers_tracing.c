/* handlers_tracing.c: allocation tracing over HTTP, with tracemalloc's model
 * (<rcgc/tracemalloc.h>): the status (from the snapshot) and its control, statistics of
 * a fresh tracemalloc snapshot by file, line or traceback (filtered, or compared with a
 * snapshot the server keeps), the kept snapshots, one object's traceback, and the same
 * statistics as a pprof heap profile.
 *
 * Taking a tracemalloc snapshot allocates through the heap's allocator hooks, so it runs
 * on the owner thread (rcgc__inspect_owner_call), never on a borrowed heap; everything
 * done with the snapshot afterwards (filters, statistics, JSON, pprof) runs on the
 * server thread. Kept snapshots are reference-counted like baselines: at most
 * TSNAP_PER_HEAP per heap (the oldest goes) and TSNAP_MAX in all, under one mutex,
 * freed when the server stops. */
#define _POSIX_C_SOURCE 200809L

#include "internal.h"
#include "pprof.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TSNAP_PER_HEAP 8
#define TSNAP_MAX 64
#define STATS_LIMIT_DEFAULT 50
#define STATS_LIMIT_MAX 1000
#define OFFSET_MAX INSP_JSON_INT_MAX
#define ID_MAX INSP_JSON_INT_MAX

/* ---- JSON pieces ---- */

json_t *rcgc__traceback_json(const rcgc_traceback *tb)
{
    if (tb == NULL)
        return json_null();
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && i < tb->nframe; i++) {
        const rcgc_trace_frame *f = &tb->frames[i];
        json_t *o = json_object();
        int bad = json_object_set_new(o, "file", rcgc__json_text(f->file));
        bad |= json_object_set_new(o, "line", json_integer((json_int_t)f->line));
        bad |= json_object_set_new(o, "function",
                                   f->function ? rcgc__json_text(f->function) : json_null());
        if (json_array_append_new(a, o) != 0 || bad != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

/* Unix milliseconds as RFC 3339 UTC with milliseconds. */
static json_t *json_time(uint64_t unix_ms)
{
    time_t t = (time_t)(unix_ms / 1000u);
    struct tm tm;
    char s[48];
    if (gmtime_r(&t, &tm) == NULL)
        return json_null();
    snprintf(s, sizeof s, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (unsigned)(unix_ms % 1000u));
    return json_string(s);
}

static uint64_t unix_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static const char *mode_of(const rcgc_tracemalloc_status *st)
{
    return !st->tracing ? "off" : st->sample_bytes > 0 ? "sampled" : "exact";
}

/* The answer of GET and POST .../tracing. Returns: a new reference. */
static json_t *status_json(const char *heap, const rcgc_tracemalloc_status *st)
{
    json_t *o = rcgc__json_top();
    json_object_set_new(o, "heap", rcgc__json_text(heap));
    json_object_set_new(o, "tracing", json_boolean(st->tracing));
    json_object_set_new(o, "mode", json_string(mode_of(st)));
    json_object_set_new(o, "traceback_limit", json_integer(st->traceback_limit));
    json_object_set_new(o, "sample_bytes", rcgc__json_u64(st->sample_bytes));
    json_object_set_new(o, "traces", rcgc__json_u64(st->traces));
    json_object_set_new(o, "tracebacks", rcgc__json_u64(st->tracebacks));
    json_t *t = json_object();
    json_object_set_new(t, "current", rcgc__json_u64(st->current));
    json_object_set_new(t, "peak", rcgc__json_u64(st->peak));
    json_object_set_new(o, "traced", t);
    json_object_set_new(o, "memory", rcgc__json_u64(st->memory));
    json_object_set_new(o, "lost", rcgc__json_u64(st->lost));
    json_object_set_new(o, "recorded", rcgc__json_u64(st->recorded));
    return o;
}

/* ---- GET /v1/heaps/{heap}/tracing ---- */

int rcgc__handle_tracing_get(const insp_req *rq, insp_resp *rs)
{
    insp_snap *snap;
    if (rcgc__snap_get_reply(rq->heap, 0, &snap, rs) != 0)
        return -1;
    json_t *o = status_json(rq->heap, &snap->s.tracing);
    rcgc__snap_free(snap);
    return rcgc__reply_json(rs, 200, o);
}

/* ---- POST /v1/heaps/{heap}/tracing?action=start|stop|clear|reset_peak ---- */

typedef enum { ACT_START, ACT_STOP, ACT_CLEAR, ACT_RESET_PEAK } tracing_action;

typedef struct control_call {
    tracing_action action;
    int frames;
    size_t sample_bytes; /* 0: exact */
    int err;
    rcgc_tracemalloc_status st; /* after the action */
} control_call;

static void do_control(rcgc_heap *h, void *arg)
{
    control_call *c = arg;
    switch (c->action) {
    case ACT_START:
        c->err = c->sample_bytes > 0
                     ? rcgc_tracemalloc_start_sampled(h, c->frames, c->sample_bytes)
                     : rcgc_tracemalloc_start(h, c->frames);
        break;
    case ACT_STOP:
        rcgc_tracemalloc_stop(h);
        break;
    case ACT_CLEAR:
        rcgc_tracemalloc_clear_traces(h);
        break;
    case ACT_RESET_PEAK:
        rcgc_tracemalloc_reset_peak(h);
        break;
    }
    (void)rcgc_tracemalloc_get_status(h, &c->st);
    (void)rcgc__snapshot_publish(h); /* the next GET .../tracing sees the change */
}

int rcgc__handle_tracing_post(const insp_req *rq, insp_resp *rs)
{
    const char *action;
    uint64_t frames, sample;
    if (rcgc__query_str(rq, "action") == NULL)
        return rcgc__reply_error(rs, 400, "missing_parameter",
                                 "query parameter 'action' is required: start, stop, clear "
                                 "or reset_peak");
    if (rcgc__query_choice(rq, rs, "action", "start stop clear reset_peak", NULL, &action) ||
        rcgc__query_uint(rq, rs, "frames", 1, RCGC_TRACE_MAX_FRAMES, 1, &frames) ||
        rcgc__query_uint(rq, rs, "sample_bytes", 1, INSP_JSON_INT_MAX, 0, &sample))
        return -1;
    control_call c = {.frames = (int)frames, .sample_bytes = (size_t)sample};
    c.action = strcmp(action, "start") == 0   ? ACT_START
               : strcmp(action, "stop") == 0  ? ACT_STOP
               : strcmp(action, "clear") == 0 ? ACT_CLEAR
                                              : ACT_RESET_PEAK;
    if (c.action != ACT_START &&
        (rcgc__query_str(rq, "frames") != NULL || rcgc__query_str(rq, "sample_bytes") != NULL))
        return rcgc__reply_error(rs, 400, "bad_parameter",
                                 "'frames' and 'sample_bytes' go with action=start only");
    if (rcgc__inspect_owner_call(rs, rq->heap, do_control, &c) != 0)
        return -1;
    if (c.err != 0)
        return rcgc__reply_error(rs, 500, "internal_error", "tracing did not start: %s",
                                 rcgc_strerror(c.err));
    return rcgc__reply_json(rs, 200, status_json(rq->heap, &c.st));
}

/* ---- taking a tracemalloc snapshot on the owner thread ---- */

typedef struct take_call {
    rcgc_trace_snapshot *snap;
    int err;
} take_call;

static void do_take(rcgc_heap *h, void *arg)
{
    take_call *c = arg;
    c->snap = rcgc_tracemalloc_take_snapshot(h, &c->err);
}

/* Returns: a new tracemalloc snapshot of the heap, or NULL after replying (409
 * not_tracing when the heap does not trace, 404, 503, 500). */
static rcgc_trace_snapshot *take_snapshot(const insp_req *rq, insp_resp *rs)
{
    take_call c = {NULL, 0};
    if (rcgc__inspect_owner_call(rs, rq->heap, do_take, &c) != 0)
        return NULL;
    if (c.snap != NULL)
        return c.snap;
    if (c.err == RCGC_EBUSY)
        rcgc__reply_error(rs, 409, "not_tracing",
                          "heap '%s' does not trace its allocations (POST "
                          "/v1/heaps/{heap}/tracing?action=start starts tracing)",
                          rq->heap);
    else
        rcgc__reply_error(rs, 500, "internal_error", "the snapshot failed: %s",
                          rcgc_strerror(c.err));
    return NULL;
}

/* The size and count of every trace of s, saturated at UINT64_MAX as libgc's statistics
 * saturate (sampled estimates may be as large as the sampling mean). */
static void snapshot_totals(const rcgc_trace_snapshot *s, uint64_t *size, uint64_t *count)
{
    *size = *count = 0;
    for (size_t i = 0, n = rcgc_trace_snapshot_count(s); i < n; i++) {
        const rcgc_trace *t = rcgc_trace_snapshot_get(s, i);
        *size = *size > UINT64_MAX - t->size ? UINT64_MAX : *size + t->size;
        *count = *count > UINT64_MAX - t->count ? UINT64_MAX : *count + t->count;
    }
}

/* ---- the snapshots the server keeps ---- */

typedef struct tsnap {
    char *heap;
    uint64_t id;
    char label[65];
    uint64_t unix_ms;
    uint64_t traces, size;
    rcgc_trace_snapshot *snap;
    unsigned refs; /* under g_lock */
} tsnap;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static tsnap *g_list[TSNAP_MAX]; /* oldest first */
static size_t g_n;
static uint64_t g_last_id;

static void tsnap_free(tsnap *t)
{
    if (t == NULL)
        return;
    rcgc_trace_snapshot_free(t->snap);
    free(t->heap);
    free(t);
}

static void tsnap_release(tsnap *t)
{
    if (t == NULL)
        return;
    pthread_mutex_lock(&g_lock);
    bool last = --t->refs == 0;
    pthread_mutex_unlock(&g_lock);
    if (last)
        tsnap_free(t);
}

/* Under g_lock: drops the store's reference to entry i. Returns: the snapshot when that
 * was the last reference (to free after unlocking), else NULL. */
static tsnap *remove_at_locked(size_t i)
{
    tsnap *t = g_list[i];
    memmove(&g_list[i], &g_list[i + 1], (g_n - i - 1) * sizeof g_list[0]);
    g_n--;
    return --t->refs == 0 ? t : NULL;
}

void rcgc__tracing_snapshots_clear(void)
{
    for (;;) {
        pthread_mutex_lock(&g_lock);
        if (g_n == 0) {
            pthread_mutex_unlock(&g_lock);
            return;
        }
        tsnap *dead = remove_at_locked(g_n - 1);
        pthread_mutex_unlock(&g_lock);
        tsnap_free(dead);
    }
}

/* Returns: the kept snapshot id of heap with a reference (tsnap_release it), or NULL. */
static tsnap *tsnap_get(const char *heap, uint64_t id)
{
    tsnap *t = NULL;
    pthread_mutex_lock(&g_lock);
    for (size_t i = 0; i < g_n && t == NULL; i++)
        if (g_list[i]->id == id && strcmp(g_list[i]->heap, heap) == 0)
            t = g_list[i];
    if (t != NULL)
        t->refs++;
    pthread_mutex_unlock(&g_lock);
    return t;
}

/* Stores t (taking its reference and giving it an id, and the label s<id> when it has
 * none); the heap's oldest goes when it
 * has TSNAP_PER_HEAP, the oldest of all when the store is full. Returns: the snapshot to
 * free (or NULL). */
static tsnap *tsnap_store(tsnap *t)
{
    pthread_mutex_lock(&g_lock);
    t->id = ++g_last_id;
    if (t->label[0] == '\0') /* the default label: s<id> */
        snprintf(t->label, sizeof t->label, "s%llu", (unsigned long long)t->id);
    size_t mine = 0;
    long oldest_mine = -1;
    for (size_t k = 0; k < g_n; k++)
        if (strcmp(g_list[k]->heap, t->heap) == 0 && mine++ == 0)
            oldest_mine = (long)k;
    long victim = mine >= TSNAP_PER_HEAP ? oldest_mine : g_n >= TSNAP_MAX ? 0 : -1;
    tsnap *dead = victim >= 0 ? remove_at_locked((size_t)victim) : NULL;
    g_list[g_n++] = t;
    pthread_mutex_unlock(&g_lock);
    return dead;
}

static json_t *tsnap_json(const tsnap *t)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", rcgc__json_u64(t->id));
    json_object_set_new(o, "label", json_string(t->label));
    json_object_set_new(o, "time", json_time(t->unix_ms));
    json_object_set_new(o, "traces", rcgc__json_u64(t->traces));
    json_object_set_new(o, "size", rcgc__json_u64(t->size));
    return o;
}

int rcgc__handle_tracing_snapshots_get(const insp_req *rq, insp_resp *rs)
{
    if (rcgc__inspect_heap_known(rs, rq->heap) != 0)
        return -1;
    json_t *list = json_array();
    pthread_mutex_lock(&g_lock);
    for (size_t i = 0; i < g_n; i++)
        if (strcmp(g_list[i]->heap, rq->heap) == 0)
            json_array_append_new(list, tsnap_json(g_list[i]));
    pthread_mutex_unlock(&g_lock);
    json_t *o = rcgc__json_top();
    json_object_set_new(o, "heap", rcgc__json_text(rq->heap));
    json_object_set_new(o, "snapshots", list);
    return rcgc__reply_json(rs, 200, o);
}

int rcgc__handle_tracing_snapshots_post(const insp_req *rq, insp_resp *rs)
{
    const char *label;
    if (rcgc__query_label(rq, rs, "label", false, &label) != 0)
        return -1;
    tsnap *t = calloc(1, sizeof *t);
    char *heap = strdup(rq->heap);
    if (t == NULL || heap == NULL) {
        free(t);
        free(heap);
        return rcgc__reply_error(rs, 500, "internal_error", "out of memory");
    }
    t->heap = heap;
    t->refs = 1;
    t->snap = take_snapshot(rq, rs);
    if (t->snap == NULL) {
        tsnap_free(t);
        return -1;
    }
    t->unix_ms = unix_now_ms();
    uint64_t count;
    snapshot_totals(t->snap, &t->size, &count);
    t->traces = rcgc_trace_snapshot_count(t->snap);
    json_t *o = rcgc__json_top();
    json_object_set_new(o, "heap", rcgc__json_text(rq->heap));
    if (label != NULL)
        snprintf(t->label, sizeof t->label, "%s", label);
    /* The id is known once stored; the JSON is built under a reference of our own. */
    t->refs++;
    tsnap_free(tsnap_store(t));
    json_t *body = tsnap_json(t);
    tsnap_release(t);
    json_object_update(o, body);
    json_decref(body);
    return rcgc__reply_json(rs, 201, o);
}

/* ---- GET /v1/heaps/{heap}/tracing/statistics ---- */

/* tracemalloc.Filter from "PATTERN[:LINE]": the line is what follows the last ':' when
 * that is a decimal number (so a pattern may hold other colons). Returns: 0, or
 * -1 after replying 400 bad_parameter. The pattern is copied into *copy (free it). */
static int parse_filter(insp_resp *rs, const char *name, const char *value, bool inclusive,
                        bool all_frames, rcgc_trace_filter *f, char **copy)
{
    *copy = strdup(value);
    if (*copy == NULL)
        return rcgc__reply_error(rs, 500, "internal_error", "out of memory");
    unsigned line = 0;
    char *colon = strrchr(*copy, ':');
    size_t digits = colon ? strlen(colon + 1) : 0;
    if (colon != NULL && digits > 0 && digits <= 9 &&
        strspn(colon + 1, "0123456789") == digits) {
        line = (unsigned)strtoul(colon + 1, NULL, 10);
        *colon = '\0';
        if (line == 0) /* rcgc_trace_filter's 0 means any line */
            return rcgc__reply_error(rs, 400, "bad_parameter",
                                     "query parameter '%s': lines start at 1 (leave out "
                                     "':LINE' to match any line)",
                                     name);
    }
    if ((*copy)[0] == '\0')
        return rcgc__reply_error(rs, 400, "bad_parameter",
                                 "query parameter '%s' must be a file name pattern, with "
                                 "':LINE' after it to match one line",
                                 name);
    *f = (rcgc_trace_filter){inclusive, *copy, line, all_frames};
    return 0;
}

typedef struct stats_query {
    rcgc_trace_key key;
    const char *key_name;
    bool cumulative;
    uint64_t limit, offset;
    rcgc_trace_filter filters[INSP_PARAMS_MAX];
    char *patterns[INSP_PARAMS_MAX];
    size_t nfilters;
    tsnap *base; /* referenced */
} stats_query;

static void stats_query_done(stats_query *q)
{
    for (size_t i = 0; i < q->nfilters; i++)
        free(q->patterns[i]);
    tsnap_release(q->base);
}

/* Parses and checks every parameter. Returns: 0, or -1 after replying 400 / 404. */
static int stats_query_parse(const insp_req *rq, insp_resp *rs, stats_query *q)
{
    const char *cumulative;
    uint64_t base;
    if (rcgc__query_choice(rq, rs, "key", "lineno filename traceback", "lineno",
                           &q->key_name) ||
        rcgc__query_choice(rq, rs, "cumulative", "true false", "false", &cumulative) ||
        rcgc__query_uint(rq, rs, "limit", 1, STATS_LIMIT_MAX, STATS_LIMIT_DEFAULT, &q->limit) ||
        rcgc__query_uint(rq, rs, "offset", 0, OFFSET_MAX, 0, &q->offset) ||
        rcgc__query_uint(rq, rs, "base", 1, ID_MAX, 0, &base))
        return -1;
    q->key = strcmp(q->key_name, "filename") == 0    ? RCGC_TRACE_KEY_FILENAME
             : strcmp(q->key_name, "traceback") == 0 ? RCGC_TRACE_KEY_TRACEBACK
                                                     : RCGC_TRACE_KEY_LINENO;
    q->cumulative = strcmp(cumulative, "true") == 0;
    if (q->cumulative && q->key == RCGC_TRACE_KEY_TRACEBACK)
        return rcgc__reply_error(rs, 400, "bad_parameter",
                                 "cumulative=true goes with key=lineno or key=filename");
    bool all_frames = q->key == RCGC_TRACE_KEY_TRACEBACK;
    static const char *const kinds[2] = {"include", "exclude"};
    for (int k = 0; k < 2; k++) {
        const char *values[INSP_PARAMS_MAX];
        size_t n = rcgc__query_all(rq, kinds[k], values, INSP_PARAMS_MAX);
        for (size_t i = 0; i < n; i++) {
            size_t at = q->nfilters;
            if (parse_filter(rs, kinds[k], values[i], k == 0, all_frames, &q->filters[at],
                             &q->patterns[at]) != 0) {
                q->nfilters += q->patterns[at] != NULL;
                return -1;
            }
            q->nfilters++;
        }
    }
    if (base != 0) {
        if (rcgc__inspect_heap_known(rs, rq->heap) != 0)
            return -1;
        q->base = tsnap_get(rq->heap, base);
        if (q->base == NULL)
            return rcgc__reply_error(rs, 404, "snapshot_not_found",
                                     "heap '%s' keeps no tracing snapshot %llu (GET "
                                     "/v1/heaps/{heap}/tracing/snapshots lists them)",
                                     rq->heap, (unsigned long long)base);
    }
    return 0;
}

/* Applies the filters to s (without filters: s itself). Returns: the snapshot to use
 * (*owned says whether to free it), or NULL when memory ran out. */
static const rcgc_trace_snapshot *apply_filters(const stats_query *q,
                                                const rcgc_trace_snapshot *s, bool *owned)
{
    *owned = q->nfilters > 0;
    if (!*owned)
        return s;
    int err = 0;
    return rcgc_trace_snapshot_filter(s, q->filters, q->nfilters, &err);
}

static json_t *stat_json(const rcgc_traceback *tb, size_t size, size_t count,
                         const int64_t *diff)
{
    json_t *o = json_object();
    json_object_set_new(o, "size", rcgc__json_u64(size));
    json_object_set_new(o, "count", rcgc__json_u64(count));
    if (diff != NULL) {
        json_object_set_new(o, "size_diff", rcgc__json_i64(diff[0]));
        json_object_set_new(o, "count_diff", rcgc__json_i64(diff[1]));
    }
    json_object_set_new(o, "traceback", rcgc__traceback_json(tb));
    return o;
}

/* Entries [offset, offset + limit) of the statistics (or, with a base, of the
 * differences) of cur. Returns: 0 (*entries, *total_entries set), or a RCGC_E* code. */
static int stats_entries(const stats_query *q, const rcgc_trace_snapshot *cur,
                         const rcgc_trace_snapshot *old, json_t **entries, size_t *total)
{
    *entries = json_array();
    size_t n = 0;
    int r;
    if (old != NULL) {
        rcgc_trace_stat_diff *d = NULL;
        r = rcgc_trace_snapshot_compare_to(cur, old, q->key, q->cumulative, &d, &n);
        for (size_t i = q->offset; r == 0 && i < n && i < q->offset + q->limit; i++) {
            int64_t diff[2] = {d[i].size_diff, d[i].count_diff};
            json_array_append_new(*entries,
                                  stat_json(d[i].traceback, d[i].size, d[i].count, diff));
        }
        rcgc_trace_stats_free(d, n);
    } else {
        rcgc_trace_stat *s = NULL;
        r = rcgc_trace_snapshot_statistics(cur, q->key, q->cumulative, &s, &n);
        for (size_t i = q->offset; r == 0 && i < n && i < q->offset + q->limit; i++)
            json_array_append_new(*entries,
                                  stat_json(s[i].traceback, s[i].size, s[i].count, NULL));
        rcgc_trace_stats_free(s, n);
    }
    *total = n;
    return r;
}

int rcgc__handle_tracing_statistics_get(const insp_req *rq, insp_resp *rs)
{
    stats_query q = {0};
    if (stats_query_parse(rq, rs, &q) != 0) {
        stats_query_done(&q);
        return -1;
    }
    rcgc_trace_snapshot *fresh = take_snapshot(rq, rs);
    if (fresh == NULL) {
        stats_query_done(&q);
        return -1;
    }
    bool own_cur = false, own_old = false;
    const rcgc_trace_snapshot *cur = apply_filters(&q, fresh, &own_cur);
    const rcgc_trace_snapshot *old = q.base ? apply_filters(&q, q.base->snap, &own_old) : NULL;
    json_t *entries = NULL;
    size_t total_entries = 0;
    int r = RCGC_ENOMEM;
    if (cur != NULL && (q.base == NULL || old != NULL))
        r = stats_entries(&q, cur, old, &entries, &total_entries);
    json_t *o = NULL;
    if (r == 0) {
        uint64_t size, count;
        snapshot_totals(cur, &size, &count);
        o = rcgc__json_top();
        json_object_set_new(o, "heap", rcgc__json_text(rq->heap));
        json_object_set_new(o, "key", json_string(q.key_name));
        json_object_set_new(o, "cumulative", json_boolean(q.cumulative));
        json_object_set_new(o, "sample_bytes",
                            rcgc__json_u64(rcgc_trace_snapshot_sample_bytes(fresh)));
        json_object_set_new(o, "traceback_limit",
                            json_integer(rcgc_trace_snapshot_traceback_limit(fresh)));
        json_t *t = json_object();
        json_object_set_new(t, "size", rcgc__json_u64(size));
        json_object_set_new(t, "count", rcgc__json_u64(count));
        json_object_set_new(o, "total", t);
        json_object_set_new(o, "total_entries", json_integer((json_int_t)total_entries));
        json_object_set_new(o, "offset", json_integer((json_int_t)q.offset));
        json_object_set_new(o, "limit", json_integer((json_int_t)q.limit));
        json_object_set_new(
            o, "truncated",
            json_boolean(q.offset + json_array_size(entries) < (uint64_t)total_entries));
        json_t *b = json_null();
        if (q.base != NULL) {
            b = json_object();
            json_object_set_new(b, "id", rcgc__json_u64(q.base->id));
            json_object_set_new(b, "label", json_string(q.base->label));
        }
        json_object_set_new(o, "base", b);
        json_object_set_new(o, "entries", entries);
        entries = NULL;
    }
    json_decref(entries);
    if (own_cur)
        rcgc_trace_snapshot_free((rcgc_trace_snapshot *)cur);
    if (own_old)
        rcgc_trace_snapshot_free((rcgc_trace_snapshot *)old);
    rcgc_trace_snapshot_free(fresh);
    stats_query_done(&q);
    if (o == NULL)
        return rcgc__reply_error(rs, 500, "internal_error", "the statistics failed: %s",
                                 rcgc_strerror(r));
    return rcgc__reply_json(rs, 200, o);
}

/* ---- GET /v1/heaps/{heap}/objects/{id}/traceback ---- */

typedef struct traceback_call {
    uintptr_t id;
    bool valid;
    rcgc_traceback *tb;
} traceback_call;

/* A walk: the traceback is copied through the heap's allocator hooks, which a released
 * heap's owner does not use meanwhile (rcgc_heap_release's promise). */
static void traceback_walk(rcgc_heap *h, void *arg)
{
    traceback_call *c = arg;
    c->valid = rcgc__object_valid(h, (const void *)c->id);
    if (c->valid)
        c->tb = rcgc_tracemalloc_get_object_traceback((const void *)c->id);
}

int rcgc__handle_object_traceback_get(const insp_req *rq, insp_resp *rs)
{
    traceback_call c = {0};
    if (rcgc__parse_object_id(rq, rs, &c.id) != 0 ||
        rcgc__walk_object(rq, rs, traceback_walk, &c, &c.valid) != 0)
        return -1;
    json_t *o = rcgc__json_top();
    json_object_set_new(o, "heap", rcgc__json_text(rq->heap));
    json_object_set_new(o, "id", rcgc__json_u64((uint64_t)c.id));
    json_object_set_new(o, "address", rcgc__json_address(c.id));
    json_object_set_new(o, "traced", json_boolean(c.tb != NULL));
    json_object_set_new(o, "traceback", rcgc__traceback_json(c.tb));
    rcgc_traceback_free(c.tb);
    return rcgc__reply_json(rs, 200, o);
}

/* ---- GET /v1/heaps/{heap}/pprof/heap ---- */

static int64_t clamp64(size_t v)
{
    return v > (size_t)INT64_MAX ? INT64_MAX : (int64_t)v;
}

/* One sample per distinct traceback: inuse_objects, inuse_space (already scaled for
 * sampling by the library). Returns: 0 or a RCGC_E* code. */
static int profile_build(rcgc__pprof *p, const rcgc_trace_snapshot *s)
{
    size_t sample = rcgc_trace_snapshot_sample_bytes(s);
    int r = rcgc__pprof_sample_type(p, "inuse_objects", "count");
    if (r == 0)
        r = rcgc__pprof_sample_type(p, "inuse_space", "bytes");
    if (r == 0)
        r = rcgc__pprof_default_sample_type(p, 1);
    if (r == 0)
        r = rcgc__pprof_period(p, "space", "bytes", sample > 0 ? clamp64(sample) : 1);
    if (r != 0)
        return r;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    rcgc__pprof_time(p, (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec, 0);
    rcgc_trace_stat *st = NULL;
    size_t n = 0;
    r = rcgc_trace_snapshot_statistics(s, RCGC_TRACE_KEY_TRACEBACK, false, &st, &n);
    rcgc__pprof_frame *frames = NULL;
    for (size_t i = 0; r == 0 && i < n; i++) {
        const rcgc_traceback *tb = st[i].traceback;
        rcgc__pprof_frame *f = realloc(frames, (tb->nframe + 1u) * sizeof *f);
        if (f == NULL) {
            r = RCGC_ENOMEM;
            break;
        }
        frames = f;
        for (size_t k = 0; k < tb->nframe; k++)
            frames[k] = (rcgc__pprof_frame){tb->frames[k].function, tb->frames[k].file,
                                            (int64_t)tb->frames[k].line};
        int64_t v[2] = {clamp64(st[i].count), clamp64(st[i].size)};
        r = rcgc__pprof_add(p, frames, tb->nframe, v, 2);
    }
    free(frames);
    rcgc_trace_stats_free(st, n);
    return r;
}

/* attachment; filename="rcgc-<heap>-heap.pb.gz", the name reduced to [A-Za-z0-9._-]. */
static void disposition(insp_resp *rs, const char *heap)
{
    char name[48];
    size_t k = 0;
    for (const char *p = heap; *p != '\0' && k + 1 < sizeof name; p++)
        name[k++] = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-",
                           *p) != NULL
                        ? *p
                        : '_';
    name[k] = '\0';
    snprintf(rs->disposition, sizeof rs->disposition,
             "attachment; filename=\"rcgc-%s-heap.pb.gz\"", name);
}

int rcgc__handle_pprof_heap_get(const insp_req *rq, insp_resp *rs)
{
    rcgc_trace_snapshot *s = take_snapshot(rq, rs);
    if (s == NULL)
        return -1;
    rcgc__pprof *p = rcgc__pprof_new();
    int r = p != NULL ? profile_build(p, s) : RCGC_ENOMEM;
    rcgc_trace_snapshot_free(s);
    unsigned char *out = NULL;
    size_t len = 0;
    if (r == 0)
        r = rcgc__pprof_encode(p, &out, &len);
    rcgc__pprof_free(p);
    if (r != 0)
        return rcgc__reply_error(rs, 500, "internal_error", "the profile failed: %s",
                                 rcgc_strerror(r));
    rcgc__reply_raw(rs, 200, "application/octet-stream", (char *)out, len);
    disposition(rs, rq->heap);
    return 0;
}
