/* handlers_suspects.c: leak suspects. A sampler thread, running while the server runs,
 * reads every heap's newest snapshot five times a second; when the heap has collected
 * since the last sample it feeds the snapshot's census (by type and by site) to that
 * heap's two trackers (suspects.c). GET /v1/heaps/{heap}/suspects ranks them. Nothing
 * here touches a heap: snapshots only, so the host pays nothing but publication. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "suspects.h"

#define SAMPLE_PERIOD_MS 200
#define LIMIT_DEFAULT 50

typedef struct tracked_heap {
    char *name;
    uint64_t collections; /* total collections at the last sample */
    suspects *by_type, *by_site;
    struct tracked_heap *next;
} tracked_heap;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER; /* heaps and trackers */
static pthread_cond_t g_wake = PTHREAD_COND_INITIALIZER;
static tracked_heap *g_heaps;
static pthread_t g_thread;
static bool g_running, g_stop;

static tracked_heap *find_locked(const char *name, bool create)
{
    for (tracked_heap *t = g_heaps; t != NULL; t = t->next)
        if (strcmp(t->name, name) == 0)
            return t;
    if (!create)
        return NULL;
    tracked_heap *t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    t->name = strdup(name);
    t->by_type = rcgc__suspects_new();
    t->by_site = rcgc__suspects_new();
    if (t->name == NULL || t->by_type == NULL || t->by_site == NULL) {
        free(t->name);
        rcgc__suspects_free(t->by_type);
        rcgc__suspects_free(t->by_site);
        free(t);
        return NULL;
    }
    t->next = g_heaps;
    g_heaps = t;
    return t;
}

static uint64_t total_collections(const rcgc__snapshot *s)
{
    return (uint64_t)s->stats[0].collections + s->stats[1].collections +
           s->stats[2].collections;
}

/* Takes one sample of heap name if it collected since the last one. */
static void sample_heap(const char *name)
{
    insp_snap *s = NULL;
    if (rcgc__snap_get(name, INSP_SNAP_TYPES | INSP_SNAP_SITES, &s) != 0)
        return;
    pthread_mutex_lock(&g_lock);
    tracked_heap *t = find_locked(name, true);
    uint64_t n = total_collections(&s->s);
    if (t != NULL && s->s.serial != 0 && n != t->collections) {
        t->collections = n;
        rcgc__suspects_begin(t->by_type);
        for (size_t i = 0; i < s->ntypes; i++)
            (void)rcgc__suspects_add(t->by_type, s->types[i].name, s->types[i].count);
        rcgc__suspects_end(t->by_type);
        rcgc__suspects_begin(t->by_site);
        for (size_t i = 0; i < s->nsites; i++) {
            char key[1024];
            snprintf(key, sizeof key, "%s\t%s\t%d", s->sites[i].type, s->sites[i].file,
                     s->sites[i].line);
            (void)rcgc__suspects_add(t->by_site, key, s->sites[i].count);
        }
        rcgc__suspects_end(t->by_site);
    }
    pthread_mutex_unlock(&g_lock);
    rcgc__snap_free(s);
}

static void *sampler(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&g_lock);
    while (!g_stop) {
        pthread_mutex_unlock(&g_lock);
        char **names = NULL;
        size_t n = 0;
        if (rcgc__heap_names(&names, &n) == 0) {
            for (size_t i = 0; i < n; i++)
                sample_heap(names[i]);
            rcgc__names_free(names, n);
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += SAMPLE_PERIOD_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&g_lock);
        while (!g_stop && pthread_cond_timedwait(&g_wake, &g_lock, &ts) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&g_lock);
    return NULL;
}

void rcgc__suspects_start(void)
{
    pthread_mutex_lock(&g_lock);
    if (!g_running) {
        g_stop = false;
        g_running = pthread_create(&g_thread, NULL, sampler, NULL) == 0;
    }
    pthread_mutex_unlock(&g_lock);
}

void rcgc__suspects_stop(void)
{
    pthread_mutex_lock(&g_lock);
    bool running = g_running;
    g_stop = true;
    g_running = false;
    pthread_cond_broadcast(&g_wake);
    pthread_mutex_unlock(&g_lock);
    if (running)
        pthread_join(g_thread, NULL);
    pthread_mutex_lock(&g_lock);
    while (g_heaps != NULL) {
        tracked_heap *t = g_heaps;
        g_heaps = t->next;
        free(t->name);
        rcgc__suspects_free(t->by_type);
        rcgc__suspects_free(t->by_site);
        free(t);
    }
    pthread_mutex_unlock(&g_lock);
}

/* ---- GET /v1/heaps/{heap}/suspects ---- */

static const char *const kind_names[] = {"unbounded", "bounded", "fluctuating", "flat"};

/* Parses ?kind=a,b into a bit set of kinds. Returns: 0, or -1 after replying 400. */
static int parse_kinds(const insp_req *rq, insp_resp *rs, unsigned *kinds)
{
    const char *v = rcgc__query_str(rq, "kind");
    *kinds = 15u;
    if (v == NULL)
        return 0;
    *kinds = 0;
    while (*v != '\0') {
        size_t n = strcspn(v, ",");
        unsigned k = 0;
        while (k < 4 && !(strlen(kind_names[k]) == n && strncmp(kind_names[k], v, n) == 0))
            k++;
        if (k == 4 || n == 0)
            return rcgc__reply_error(rs, 400, "bad_parameter",
                                     "kind: a comma-separated list of unbounded, bounded, "
                                     "fluctuating, flat");
        *kinds |= 1u << k;
        v += n;
        if (*v == ',' && *++v == '\0')
            return rcgc__reply_error(rs, 400, "bad_parameter", "kind: a trailing comma");
    }
    return 0;
}

int rcgc__handle_suspects_get(const insp_req *rq, insp_resp *rs)
{
    const char *by;
    uint64_t limit, offset;
    unsigned kinds;
    if (rcgc__query_choice(rq, rs, "by", "type site", "type", &by) ||
        parse_kinds(rq, rs, &kinds) ||
        rcgc__query_uint(rq, rs, "limit", 1, 1000, LIMIT_DEFAULT, &limit) ||
        rcgc__query_uint(rq, rs, "offset", 0, UINT32_MAX, 0, &offset))
        return -1;
    insp_snap *s = NULL;
    if (rcgc__snap_get_reply(rq->heap, 0, &s, rs) != 0)
        return -1; /* 404 for an unknown heap */
    rcgc__snap_free(s);
    bool by_site = strcmp(by, "site") == 0;

    json_t *j = rcgc__json_top();
    json_object_set_new(j, "heap", rcgc__json_text(rq->heap));
    json_object_set_new(j, "by", json_string(by));
    json_t *jk = json_array();
    for (unsigned k = 0; k < 4; k++)
        if (kinds & (1u << k))
            json_array_append_new(jk, json_string(kind_names[k]));
    json_object_set_new(j, "kinds", jk);
    json_object_set_new(j, "window", json_integer(RCGC_SUSPECTS_WINDOW));
    json_object_set_new(j, "min_samples", json_integer(RCGC_SUSPECTS_MIN));
    json_object_set_new(j, "offset", json_integer((json_int_t)offset));
    json_object_set_new(j, "limit", json_integer((json_int_t)limit));

    pthread_mutex_lock(&g_lock);
    tracked_heap *t = find_locked(rq->heap, false);
    suspects *tr = t == NULL ? NULL : by_site ? t->by_site : t->by_type;
    size_t judged = 0, total = 0, listed = 0;
    suspect *all = NULL;
    if (tr != NULL) {
        judged = rcgc__suspects_rank(tr, NULL, 0);
        all = judged ? calloc(judged, sizeof *all) : NULL;
        if (all != NULL)
            judged = rcgc__suspects_rank(tr, all, judged);
    }
    json_object_set_new(j, "samples", rcgc__json_u64(tr ? rcgc__suspects_samples(tr) : 0));
    json_t *arr = json_array();
    for (size_t i = 0; all != NULL && i < judged; i++) {
        const suspect *x = &all[i];
        if (!(kinds & (1u << x->kind)))
            continue;
        if (total++ < offset || listed >= limit)
            continue;
        listed++;
        json_t *o = json_object();
        if (by_site) {
            /* key: type \t file \t line */
            char type[512] = "", file[512] = "";
            int line = 0;
            const char *a = strchr(x->key, '\t'), *b = a ? strchr(a + 1, '\t') : NULL;
            if (a != NULL && b != NULL) {
                snprintf(type, sizeof type, "%.*s", (int)(a - x->key), x->key);
                snprintf(file, sizeof file, "%.*s", (int)(b - a - 1), a + 1);
                line = atoi(b + 1);
            }
            json_object_set_new(o, "type", rcgc__json_text(type));
            json_object_set_new(o, "file", rcgc__json_text(file));
            json_object_set_new(o, "line", json_integer(line));
        } else {
            json_object_set_new(o, "type", rcgc__json_text(x->key));
        }
        json_object_set_new(o, "kind", json_string(rcgc__suspect_kind_name(x->kind)));
        json_object_set_new(o, "score", json_real(x->score));
        json_object_set_new(o, "slope", json_real(x->slope));
        json_object_set_new(o, "r2", json_real(x->r2 < 0 ? 0 : x->r2 > 1 ? 1 : x->r2));
        json_object_set_new(o, "monotone", json_real(x->monotone));
        json_object_set_new(o, "first", rcgc__json_u64(x->first));
        json_object_set_new(o, "last", rcgc__json_u64(x->last));
        json_object_set_new(o, "peak", rcgc__json_u64(x->peak));
        json_object_set_new(o, "samples", json_integer((json_int_t)x->samples));
        json_array_append_new(arr, o);
    }
    pthread_mutex_unlock(&g_lock);
    free(all);
    json_object_set_new(j, "total", rcgc__json_u64(total));
    json_object_set_new(j, "truncated", json_boolean(offset + listed < total));
    json_object_set_new(j, "suspects", arr);
    return rcgc__reply_json(rs, 200, j);
}
