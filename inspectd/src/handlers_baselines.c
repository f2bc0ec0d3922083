/* handlers_baselines.c: labelled baselines. POST copies the census and the allocation
 * sites of a heap's newest snapshot under a label (no collection is forced); census and
 * sites then report growth since it. At most BASELINES_PER_HEAP per heap (taking one
 * more forgets the heap's oldest) and BASELINES_MAX in all (then the oldest of all
 * goes). One mutex guards the store; a stored baseline never changes and is
 * reference-counted, so readers use it without the lock. */
#define _POSIX_C_SOURCE 200809L

#include "internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BASELINES_PER_HEAP 16
#define BASELINES_MAX 256

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static insp_baseline *g_list[BASELINES_MAX]; /* oldest first */
static size_t g_n;
static uint64_t g_seq;

/* One allocation: the struct, its arrays, then the strings. */
static void baseline_free(insp_baseline *b)
{
    free(b);
}

void rcgc__baseline_release(insp_baseline *b)
{
    if (b == NULL)
        return;
    pthread_mutex_lock(&g_lock);
    bool last = --b->refs == 0;
    pthread_mutex_unlock(&g_lock);
    if (last)
        baseline_free(b);
}

static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)a, y = (uintptr_t)b;
    return x < y ? -1 : x > y;
}

static int cmp_type(const void *pa, const void *pb)
{
    return cmp_ptr(((const insp_bl_type *)pa)->key, ((const insp_bl_type *)pb)->key);
}

static int cmp_site(const void *pa, const void *pb)
{
    const insp_bl_site *a = pa, *b = pb;
    int c = cmp_ptr(a->type_key, b->type_key);
    if (c == 0)
        c = a->line < b->line ? -1 : a->line > b->line;
    if (c == 0)
        c = strcmp(a->file, b->file);
    return c;
}

const insp_bl_type *rcgc__baseline_type(const insp_baseline *b, const void *key)
{
    insp_bl_type probe = {.key = key};
    return bsearch(&probe, b->types, b->ntypes, sizeof *b->types, cmp_type);
}

const insp_bl_site *rcgc__baseline_site(const insp_baseline *b, const void *type_key,
                                        const char *file, int line)
{
    insp_bl_site probe = {.type_key = type_key, .file = file, .line = line};
    return bsearch(&probe, b->sites, b->nsites, sizeof *b->sites, cmp_site);
}

/* Under g_lock: the index of heap's baseline label, or -1. */
static long find_locked(const char *heap, const char *label)
{
    for (size_t i = 0; i < g_n; i++)
        if (strcmp(g_list[i]->heap, heap) == 0 && strcmp(g_list[i]->label, label) == 0)
            return (long)i;
    return -1;
}

/* Under g_lock: drops the store's reference to entry i. Returns: the baseline when that
 * was the last reference (the caller frees it after unlocking), else NULL. */
static insp_baseline *remove_at_locked(size_t i)
{
    insp_baseline *b = g_list[i];
    memmove(&g_list[i], &g_list[i + 1], (g_n - i - 1) * sizeof g_list[0]);
    g_n--;
    return --b->refs == 0 ? b : NULL;
}

void rcgc__baselines_clear(void)
{
    for (;;) {
        pthread_mutex_lock(&g_lock);
        if (g_n == 0) {
            pthread_mutex_unlock(&g_lock);
            return;
        }
        insp_baseline *dead = remove_at_locked(g_n - 1);
        pthread_mutex_unlock(&g_lock);
        baseline_free(dead);
    }
}

int rcgc__baseline_get(const char *heap, const char *label, insp_baseline **out)
{
    pthread_mutex_lock(&g_lock);
    long i = find_locked(heap, label);
    *out = i >= 0 ? g_list[i] : NULL;
    if (*out != NULL)
        (*out)->refs++;
    pthread_mutex_unlock(&g_lock);
    return *out != NULL ? 0 : RCGC_ENOENT;
}

json_t *rcgc__baseline_ref_json(const insp_baseline *b)
{
    json_t *o = json_object();
    int bad = json_object_set_new(o, "label", json_string(b->label));
    bad |= json_object_set_new(o, "serial", rcgc__json_u64(b->serial));
    bad |= json_object_set_new(o, "age_ms", rcgc__json_age_ms(b->time_ns));
    if (bad != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* The baseline as GET .../baselines lists it. */
static json_t *baseline_json(const insp_baseline *b)
{
    json_t *o = rcgc__baseline_ref_json(b);
    int bad = json_object_set_new(o, "objects", rcgc__json_u64(b->objects));
    bad |= json_object_set_new(o, "bytes", rcgc__json_u64(b->bytes));
    bad |= json_object_set_new(o, "types", json_integer((json_int_t)b->ntypes));
    bad |= json_object_set_new(o, "sites", json_integer((json_int_t)b->nsites));
    if (bad != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ---- GET /v1/heaps/{heap}/baselines ---- */

int rcgc__handle_baselines_get(const insp_req *rq, insp_resp *rs)
{
    if (rcgc__inspect_heap_known(rs, rq->heap) != 0)
        return -1;
    json_t *list = json_array();
    int bad = 0;
    pthread_mutex_lock(&g_lock);
    for (size_t i = 0; i < g_n; i++)
        if (strcmp(g_list[i]->heap, rq->heap) == 0)
            bad |= json_array_append_new(list, baseline_json(g_list[i]));
    pthread_mutex_unlock(&g_lock);
    json_t *o = rcgc__json_top();
    bad |= json_object_set_new(o, "heap", rcgc__json_text(rq->heap));
    bad |= json_object_set_new(o, "capacity", json_integer(BASELINES_PER_HEAP));
    bad |= json_object_set_new(o, "baselines", list);
    if (bad != 0) {
        json_decref(o);
        return rcgc__reply_error(rs, 500, "internal_error", "out of memory");
    }
    return rcgc__reply_json(rs, 200, o);
}

/* ---- POST /v1/heaps/{heap}/baselines[?label=<label>] ---- */

static size_t str_size(const char *s)
{
    return strlen(s) + 1;
}

static const char *pool_copy(char **pool, const char *s)
{
    char *d = *pool;
    size_t n = str_size(s);
    memcpy(d, s, n);
    *pool += n;
    return d;
}

/* A new baseline (one reference) from a snapshot copy; NULL when memory runs out. */
static insp_baseline *baseline_new(const char *heap, const char *label, const insp_snap *s)
{
    size_t strings = str_size(heap);
    for (size_t i = 0; i < s->ntypes; i++)
        strings += str_size(s->types[i].name);
    for (size_t i = 0; i < s->nsites; i++)
        strings += str_size(s->sites[i].type) + str_size(s->sites[i].file);
    size_t size = sizeof(insp_baseline) + s->ntypes * sizeof(insp_bl_type) +
                  s->nsites * sizeof(insp_bl_site) + strings;
    insp_baseline *b = calloc(1, size);
    if (b == NULL)
        return NULL;
    b->types = (insp_bl_type *)(void *)(b + 1);
    b->sites = (insp_bl_site *)(void *)(b->types + s->ntypes);
    char *pool = (char *)(b->sites + s->nsites);
    b->heap = (char *)pool_copy(&pool, heap);
    snprintf(b->label, sizeof b->label, "%s", label);
    b->serial = s->s.serial;
    b->time_ns = s->s.time_ns;
    b->objects = s->s.objects;
    b->bytes = s->s.bytes;
    b->ntypes = s->ntypes;
    b->nsites = s->nsites;
    b->refs = 1;
    for (size_t i = 0; i < s->ntypes; i++) {
        const insp_type *t = &s->types[i];
        b->types[i] =
            (insp_bl_type){t->key, pool_copy(&pool, t->name), t->count, t->bytes, t->tracked};
    }
    for (size_t i = 0; i < s->nsites; i++) {
        const insp_site *t = &s->sites[i];
        const char *type = pool_copy(&pool, t->type);
        b->sites[i] = (insp_bl_site){t->type_key, type,     pool_copy(&pool, t->file),
                                     t->line,     t->count, t->bytes};
    }
    qsort(b->types, b->ntypes, sizeof *b->types, cmp_type);
    qsort(b->sites, b->nsites, sizeof *b->sites, cmp_site);
    return b;
}

/* Under g_lock: stores b (taking its reference), replacing the same label, or evicting
 * the heap's oldest baseline when it has BASELINES_PER_HEAP, or the oldest of all when
 * the store is full. evicted receives the evicted label or "". *dead receives a
 * baseline to free after unlocking (or NULL). Returns: whether a label was replaced. */
static bool store_locked(insp_baseline *b, char evicted[65], insp_baseline **dead)
{
    evicted[0] = '\0';
    *dead = NULL;
    b->seq = ++g_seq;
    long i = find_locked(b->heap, b->label);
    if (i >= 0) {
        *dead = remove_at_locked((size_t)i);
        g_list[g_n++] = b;
        return true;
    }
    size_t mine = 0;
    long oldest_mine = -1;
    for (size_t k = 0; k < g_n; k++)
        if (strcmp(g_list[k]->heap, b->heap) == 0 && mine++ == 0)
            oldest_mine = (long)k; /* the list is oldest first */
    long victim = mine >= BASELINES_PER_HEAP ? oldest_mine : g_n >= BASELINES_MAX ? 0 : -1;
    if (victim >= 0) {
        snprintf(evicted, 65, "%s", g_list[victim]->label);
        *dead = remove_at_locked((size_t)victim);
    }
    g_list[g_n++] = b;
    return false;
}

int rcgc__handle_baselines_post(const insp_req *rq, insp_resp *rs)
{
    const char *label;
    if (rcgc__query_label(rq, rs, "label", false, &label) != 0)
        return -1;
    insp_snap *snap;
    if (rcgc__snap_get_reply(rq->heap, INSP_SNAP_TYPES | INSP_SNAP_SITES, &snap, rs) != 0)
        return -1;
    char dflt[32];
    if (label == NULL) { /* b<serial> */
        snprintf(dflt, sizeof dflt, "b%llu", (unsigned long long)snap->s.serial);
        label = dflt;
    }
    insp_baseline *b = baseline_new(rq->heap, label, snap);
    rcgc__snap_free(snap);
    if (b == NULL)
        return rcgc__reply_error(rs, 500, "internal_error", "out of memory");
    json_t *bj = baseline_json(b);
    char evicted[65];
    insp_baseline *dead;
    pthread_mutex_lock(&g_lock);
    bool replaced = store_locked(b, evicted, &dead);
    pthread_mutex_unlock(&g_lock);
    baseline_free(dead);

    insp_buf loc = {0};
    rcgc__buf_puts(&loc, "/v1/heaps/");
    rcgc__buf_pct(&loc, rq->heap);
    rcgc__buf_puts(&loc, "/census?baseline=");
    rcgc__buf_puts(&loc, label);
    if (!loc.failed)
        rs->location = loc.data;
    else
        free(loc.data);

    json_t *o = rcgc__json_top();
    int bad = json_object_set_new(o, "heap", rcgc__json_text(rq->heap));
    bad |= json_object_set_new(o, "baseline", bj);
    bad |= json_object_set_new(o, "replaced", json_boolean(replaced));
    bad |= json_object_set_new(o, "evicted", evicted[0] ? json_string(evicted) : json_null());
    if (bad != 0) {
        json_decref(o);
        return rcgc__reply_error(rs, 500, "internal_error", "out of memory");
    }
    return rcgc__reply_json(rs, 201, o);
}
