/* handlers_heaps.c: what the snapshots say about heaps: the list, one heap's counts,
 * thresholds, flags and statistics, its census by type (with growth since a baseline)
 * and by allocation site. Nothing here walks a heap. */
#define _POSIX_C_SOURCE 200809L

#include "internal.h"

#include <stdlib.h>
#include <string.h>

#define PAGE_DEFAULT 100
#define PAGE_MAX 10000

#define OFFSET_MAX 9007199254740991u /* 2^53 - 1: what a JSON client can hold exactly */

/* ---- GET /v1/heaps ---- */

static uint64_t all_collections(const rcgc__snapshot *s)
{
    return (uint64_t)s->stats[0].collections + s->stats[1].collections +
           s->stats[2].collections;
}

int rcgc__handle_heaps_get(const insp_req *rq, insp_resp *rs)
{
    (void)rq;
    char **names = NULL;
    size_t n = 0;
    if (rcgc__heap_names(&names, &n) != 0)
        return rcgc__reply_error(rs, 500, "internal_error", "out of memory");
    json_t *list = json_array();
    int bad = 0;
    for (size_t i = 0; i < n && bad == 0; i++) {
        insp_snap *snap;
        int r = rcgc__snap_get(names[i], 0, &snap);
        if (r == RCGC_ENOENT)
            continue; /* freed since the list was taken */
        if (r != 0) {
            bad = -1;
            break;
        }
        const rcgc__snapshot *s = &snap->s;
        json_t *h = json_object();
        bad |= json_object_set_new(h, "name", rcgc__json_text(names[i]));
        bad |= json_object_set_new(h, "snapshot", rcgc__json_snapshot(s->serial, s->time_ns));
        bad |= json_object_set_new(h, "enabled", json_boolean(s->enabled));
        bad |= json_object_set_new(h, "objects", rcgc__json_u64(s->objects));
        bad |= json_object_set_new(h, "bytes", rcgc__json_u64(s->bytes));
        bad |= json_object_set_new(h, "garbage", rcgc__json_u64(s->garbage));
        bad |= json_object_set_new(h, "collections", rcgc__json_u64(all_collections(s)));
        bad |= json_array_append_new(list, h);
        rcgc__snap_free(snap);
    }
    rcgc__names_free(names, n);
    json_t *o = rcgc__json_top();
    bad |= json_object_set_new(o, "heaps", list);
    if (bad != 0) {
        json_decref(o);
        return rcgc__reply_error(rs, 500, "internal_error", "out of memory");
    }
    return rcgc__reply_json(rs, 200, o);
}

/* ---- GET /v1/heaps/{heap} ---- */

static json_t *generation_json(const rcgc__snapshot *s, int g)
{
    const rcgc_gen_stats *st = &s->stats[g];
    json_t *o = json_object();
    int bad = json_object_set_new(o, "generation", json_integer(g));
    bad |= json_object_set_new(o, "count", rcgc__json_u64(s->count[g]));
    bad |= json_object_set_new(o, "threshold", rcgc__json_u64(s->threshold[g]));
    bad |= json_object_set_new(o, "objects", rcgc__json_u64(s->generation_size[g]));
    bad |= json_object_set_new(o, "collections", rcgc__json_u64(st->collections));
    bad |= json_object_set_new(o, "collected", rcgc__json_u64(st->collected));
    bad |= json_object_set_new(o, "uncollectable", rcgc__json_u64(st->uncollectable));
    bad |= json_object_set_new(o, "pause_total_ns", rcgc__json_u64(st->pause_total_ns));
    bad |= json_object_set_new(o, "pause_max_ns", rcgc__json_u64(st->pause_max_ns));
    if (bad != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *rcgc__debug_json(unsigned flags)
{
    json_t *o = json_object();
    int bad = json_object_set_new(o, "flags", rcgc__debug_flag_names(flags));
    bad |= json_object_set_new(o, "value", json_integer((json_int_t)flags));
    if (bad != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

int rcgc__handle_heap_get(const insp_req *rq, insp_resp *rs)
{
    insp_snap *snap;
    if (rcgc__snap_get_reply(rq->heap, 0, &snap, rs) != 0)
        return -1;
    const rcgc__snapshot *s = &snap->s;
    json_t *gens = json_array();
    int bad = 0;
    for (int g = 0; g < 3; g++)
        bad |= json_array_append_new(gens, generation_json(s, g));
    json_t *o = rcgc__json_top();
    bad |= json_object_set_new(o, "name", rcgc__json_text(rq->heap));
    bad |= json_object_set_new(o, "snapshot", rcgc__json_snapshot(s->serial, s->time_ns));
    bad |= json_object_set_new(o, "enabled", json_boolean(s->enabled));
    bad |= json_object_set_new(o, "debug", rcgc__debug_json(s->debug));
    bad |= json_object_set_new(o, "generations", gens);
    bad |= json_object_set_new(o, "objects", rcgc__json_u64(s->objects));
    bad |= json_object_set_new(o, "bytes", rcgc__json_u64(s->bytes));
    bad |= json_object_set_new(o, "frozen", rcgc__json_u64(s->frozen));
    bad |= json_object_set_new(o, "untracked", rcgc__json_u64(s->untracked));
    bad |= json_object_set_new(o, "garbage", rcgc__json_u64(s->garbage));
    bad |= json_object_set_new(o, "types", json_integer((json_int_t)s->ntypes));
    bad |= json_object_set_new(o, "sites", json_integer((json_int_t)s->nsites));
    rcgc__snap_free(snap);
    if (bad != 0) {
        json_decref(o);
        return rcgc__reply_error(rs, 500, "internal_error", "out of memory");
    }
    return rcgc__reply_json(rs, 200, o);
}

/* ---- census and sites: rows, merged with a baseline, sorted, paginated ---- */

/* One row of the census (a type) or of the sites (type, file, line), now and in the
 * baseline (0 when absent from either). */
typedef struct row {
    const char *type;
    const char *file; /* sites only */
    int line;
    bool tracked; /* census only */
    uint64_t objects, bytes, base_objects, base_bytes;
} row;

typedef enum { BY_OBJECTS, BY_BYTES, BY_DELTA_OBJECTS, BY_DELTA_BYTES, BY_NAME } sort_key;
static _Thread_local sort_key tl_sort; /* qsort takes no context */

static int desc_u(uint64_t a, uint64_t b)
{
    return a < b ? 1 : a > b ? -1 : 0;
}

static int desc_i(int64_t a, int64_t b)
{
    return a < b ? 1 : a > b ? -1 : 0;
}

static int64_t delta(uint64_t now, uint64_t then)
{
    return (int64_t)(now - then); /* two's complement: negative when it shrank */
}

static int cmp_rows(const void *pa, const void *pb)
{
    const row *a = pa, *b = pb;
    int c = 0;
    switch (tl_sort) {
    case BY_OBJECTS:
        c = desc_u(a->objects, b->objects);
        break;
    case BY_BYTES:
        c = desc_u(a->bytes, b->bytes);
        break;
    case BY_DELTA_OBJECTS:
        c = desc_i(delta(a->objects, a->base_objects), delta(b->objects, b->base_objects));
        break;
    case BY_DELTA_BYTES:
        c = desc_i(delta(a->bytes, a->base_bytes), delta(b->bytes, b->base_bytes));
        break;
    case BY_NAME:
        c = strcmp(a->type, b->type);
        break;
    }
    if (c == 0)
        c = desc_u(a->bytes, b->bytes);
    if (c == 0)
        c = desc_u(a->objects, b->objects);
    if (c == 0)
        c = strcmp(a->type, b->type);
    if (c == 0 && a->file != NULL && b->file != NULL)
        c = strcmp(a->file, b->file);
    if (c == 0)
        c = a->line < b->line ? -1 : a->line > b->line;
    return c;
}

static sort_key sort_of(const char *s)
{
    return strcmp(s, "bytes") == 0           ? BY_BYTES
           : strcmp(s, "delta_objects") == 0 ? BY_DELTA_OBJECTS
           : strcmp(s, "delta_bytes") == 0   ? BY_DELTA_BYTES
           : strcmp(s, "name") == 0          ? BY_NAME
                                             : BY_OBJECTS;
}

static json_t *pair_json(uint64_t objects, uint64_t bytes)
{
    json_t *o = json_object();
    int bad = json_object_set_new(o, "objects", rcgc__json_u64(objects));
    bad |= json_object_set_new(o, "bytes", rcgc__json_u64(bytes));
    if (bad != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *delta_json(uint64_t objects, uint64_t base_objects, uint64_t bytes,
                          uint64_t base_bytes)
{
    json_t *o = json_object();
    int bad = json_object_set_new(o, "objects", rcgc__json_i64(delta(objects, base_objects)));
    bad |= json_object_set_new(o, "bytes", rcgc__json_i64(delta(bytes, base_bytes)));
    if (bad != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* The parameters census and sites share. */
typedef struct view_params {
    uint64_t limit, offset;
    const char *sort;
    insp_baseline *base; /* held; NULL without ?baseline= */
} view_params;

static int view_params_get(const insp_req *rq, insp_resp *rs, const char *sorts, view_params *p)
{
    const char *label;
    p->base = NULL;
    if (rcgc__query_uint(rq, rs, "limit", 1, PAGE_MAX, PAGE_DEFAULT, &p->limit) != 0 ||
        rcgc__query_uint(rq, rs, "offset", 0, OFFSET_MAX, 0, &p->offset) != 0 ||
        rcgc__query_label(rq, rs, "baseline", false, &label) != 0)
        return -1;
    if (rcgc__query_choice(rq, rs, "sort", sorts, label ? "delta_objects" : "objects",
                           &p->sort) != 0)
        return -1;
    if (label == NULL && strncmp(p->sort, "delta_", 6) == 0)
        return rcgc__reply_error(rs, 400, "bad_parameter",
                                 "sort=%s compares with a baseline: add ?baseline=<label>",
                                 p->sort);
    if (label != NULL && rcgc__baseline_get(rq->heap, label, &p->base) != 0)
        return rcgc__reply_error(rs, 404, "baseline_not_found",
                                 "heap '%s' has no baseline '%s' (POST "
                                 "/v1/heaps/{heap}/baselines?label=%s takes one)",
                                 rq->heap, label, label);
    return 0;
}

/* Sorts rows and adds sort, offset, limit, total, truncated and the page of rows (as
 * name) to o, each row built by fn. Returns: 0 or -1 (out of memory). */
static int page_json(json_t *o, row *rows, size_t n, const view_params *p, const char *name,
                     json_t *(*fn)(const row *r, bool with_base))
{
    tl_sort = sort_of(p->sort);
    qsort(rows, n, sizeof *rows, cmp_rows);
    json_t *list = json_array();
    int bad = 0;
    for (size_t i = (size_t)p->offset; p->offset < n && i < n && i - p->offset < p->limit; i++)
        bad |= json_array_append_new(list, fn(&rows[i], p->base != NULL));
    bad |= json_object_set_new(o, "sort", json_string(p->sort));
    bad |= json_object_set_new(o, "offset", json_integer((json_int_t)p->offset));
    bad |= json_object_set_new(o, "limit", json_integer((json_int_t)p->limit));
    bad |= json_object_set_new(o, "total", rcgc__json_u64(n));
    bad |= json_object_set_new(o, "truncated", json_boolean(p->offset + p->limit < n));
    bad |= json_object_set_new(o, name, list);
    return bad != 0 ? -1 : 0;
}

static int add_base(json_t *e, const row *r)
{
    int bad = json_object_set_new(e, "baseline", pair_json(r->base_objects, r->base_bytes));
    bad |= json_object_set_new(
        e, "delta", delta_json(r->objects, r->base_objects, r->bytes, r->base_bytes));
    return bad;
}

/* The end of a census or sites entry: the baseline and delta when asked. Returns: e, or
 * NULL (e released) when building it failed. */
static json_t *row_json_end(json_t *e, const row *r, bool with_base, int bad)
{
    if (with_base)
        bad |= add_base(e, r);
    if (bad != 0) {
        json_decref(e);
        return NULL;
    }
    return e;
}

/* What every census and sites answer starts with: heap, snapshot, baseline. Returns:
 * non-zero when memory ran out. */
static int view_head_json(json_t *o, const insp_req *rq, const insp_snap *snap,
                          const view_params *p)
{
    int bad = json_object_set_new(o, "heap", rcgc__json_text(rq->heap));
    bad |= json_object_set_new(o, "snapshot",
                               rcgc__json_snapshot(snap->s.serial, snap->s.time_ns));
    if (p->base != NULL)
        bad |= json_object_set_new(o, "baseline", rcgc__baseline_ref_json(p->base));
    return bad;
}

/* Releases the snapshot and the baseline, then replies o (500 when bad). */
static int view_reply(insp_resp *rs, json_t *o, int bad, insp_snap *snap, view_params *p)
{
    rcgc__snap_free(snap);
    rcgc__baseline_release(p->base);
    if (bad != 0) {
        json_decref(o);
        return rcgc__reply_error(rs, 500, "internal_error", "out of memory");
    }
    return rcgc__reply_json(rs, 200, o);
}

/* ---- GET /v1/heaps/{heap}/census ---- */

static json_t *type_json(const row *r, bool with_base)
{
    json_t *e = json_object();
    int bad = json_object_set_new(e, "type", rcgc__json_text(r->type));
    bad |= json_object_set_new(e, "tracked", json_boolean(r->tracked));
    bad |= json_object_set_new(e, "objects", rcgc__json_u64(r->objects));
    bad |= json_object_set_new(e, "bytes", rcgc__json_u64(r->bytes));
    return row_json_end(e, r, with_base, bad);
}

static int cmp_key(const void *pa, const void *pb)
{
    uintptr_t a = (uintptr_t) * (const void *const *)pa,
              b = (uintptr_t) * (const void *const *)pb;
    return a < b ? -1 : a > b;
}

int rcgc__handle_census_get(const insp_req *rq, insp_resp *rs)
{
    view_params p;
    if (view_params_get(rq, rs, "objects bytes delta_objects delta_bytes name", &p) != 0)
        return -1;
    insp_snap *snap;
    if (rcgc__snap_get_reply(rq->heap, INSP_SNAP_TYPES, &snap, rs) != 0) {
        rcgc__baseline_release(p.base);
        return -1;
    }
    size_t nb = p.base ? p.base->ntypes : 0;
    row *rows = malloc((snap->ntypes + nb + 1) * sizeof *rows);
    const void **keys = malloc((snap->ntypes + 1) * sizeof *keys);
    int bad = rows == NULL || keys == NULL;
    size_t n = 0;
    for (size_t i = 0; !bad && i < snap->ntypes; i++) {
        const insp_type *t = &snap->types[i];
        const insp_bl_type *b = p.base ? rcgc__baseline_type(p.base, t->key) : NULL;
        rows[n++] =
            (row){t->name,         NULL, 0, t->tracked, t->count, t->bytes, b ? b->count : 0,
                  b ? b->bytes : 0};
        keys[i] = t->key;
    }
    if (!bad && nb > 0) { /* types only the baseline has: listed with 0 now */
        qsort(keys, snap->ntypes, sizeof *keys, cmp_key);
        for (size_t i = 0; i < nb; i++) {
            const insp_bl_type *b = &p.base->types[i];
            if (bsearch(&b->key, keys, snap->ntypes, sizeof *keys, cmp_key) == NULL)
                rows[n++] = (row){b->name, NULL, 0, b->tracked, 0, 0, b->count, b->bytes};
        }
    }
    json_t *o = rcgc__json_top();
    if (!bad) {
        bad |= view_head_json(o, rq, snap, &p);
        json_t *totals = pair_json(snap->s.objects, snap->s.bytes);
        if (p.base != NULL) {
            bad |= json_object_set_new(totals, "baseline",
                                       pair_json(p.base->objects, p.base->bytes));
            bad |= json_object_set_new(
                totals, "delta",
                delta_json(snap->s.objects, p.base->objects, snap->s.bytes, p.base->bytes));
        }
        bad |= json_object_set_new(o, "totals", totals);
        bad |= page_json(o, rows, n, &p, "types", type_json);
    }
    free(rows);
    free(keys);
    return view_reply(rs, o, bad, snap, &p);
}

/* ---- GET /v1/heaps/{heap}/sites ---- */

static json_t *site_json(const row *r, bool with_base)
{
    json_t *e = json_object();
    int bad = json_object_set_new(e, "type", rcgc__json_text(r->type));
    bad |= json_object_set_new(e, "file", rcgc__json_text(r->file));
    bad |= json_object_set_new(e, "line", json_integer(r->line));
    bad |= json_object_set_new(e, "objects", rcgc__json_u64(r->objects));
    bad |= json_object_set_new(e, "bytes", rcgc__json_u64(r->bytes));
    return row_json_end(e, r, with_base, bad);
}

/* Sites ordered by (type key, line, file), to find the baseline's sites among them. */
static int cmp_site_key(const void *pa, const void *pb)
{
    const insp_site *a = *(const insp_site *const *)pa, *b = *(const insp_site *const *)pb;
    uintptr_t x = (uintptr_t)a->type_key, y = (uintptr_t)b->type_key;
    if (x != y)
        return x < y ? -1 : 1;
    if (a->line != b->line)
        return a->line < b->line ? -1 : 1;
    return strcmp(a->file, b->file);
}

static bool snap_has_site(const insp_site *const *index, size_t n, const insp_bl_site *b)
{
    insp_site probe = {.type_key = b->type_key, .file = b->file, .line = b->line};
    const insp_site *pp = &probe;
    return bsearch(&pp, index, n, sizeof *index, cmp_site_key) != NULL;
}

int rcgc__handle_sites_get(const insp_req *rq, insp_resp *rs)
{
    view_params p;
    if (view_params_get(rq, rs, "objects bytes delta_objects delta_bytes", &p) != 0)
        return -1;
    const char *type = rcgc__query_str(rq, "type");
    insp_snap *snap;
    if (rcgc__snap_get_reply(rq->heap, INSP_SNAP_SITES, &snap, rs) != 0) {
        rcgc__baseline_release(p.base);
        return -1;
    }
    size_t nb = p.base ? p.base->nsites : 0;
    row *rows = malloc((snap->nsites + nb + 1) * sizeof *rows);
    int bad = rows == NULL;
    size_t n = 0;
    size_t matched = 0; /* baseline sites found among the snapshot's */
    for (size_t i = 0; !bad && i < snap->nsites; i++) {
        const insp_site *t = &snap->sites[i];
        const insp_bl_site *b =
            p.base ? rcgc__baseline_site(p.base, t->type_key, t->file, t->line) : NULL;
        matched += b != NULL;
        if (type != NULL && strcmp(t->type, type) != 0)
            continue;
        rows[n++] = (row){t->type,  t->file,  t->line,          false,
                          t->count, t->bytes, b ? b->count : 0, b ? b->bytes : 0};
    }
    if (!bad && matched < nb) { /* sites only the baseline has: listed with 0 now */
        const insp_site **index = malloc((snap->nsites + 1) * sizeof *index);
        bad = index == NULL;
        for (size_t i = 0; !bad && i < snap->nsites; i++)
            index[i] = &snap->sites[i];
        if (!bad)
            qsort(index, snap->nsites, sizeof *index, cmp_site_key);
        for (size_t i = 0; !bad && i < nb; i++) {
            const insp_bl_site *b = &p.base->sites[i];
            if ((type == NULL || strcmp(b->type, type) == 0) &&
                !snap_has_site(index, snap->nsites, b))
                rows[n++] = (row){b->type, b->file, b->line, false, 0, 0, b->count, b->bytes};
        }
        free(index);
    }
    json_t *o = rcgc__json_top();
    if (!bad) {
        bad |= view_head_json(o, rq, snap, &p);
        if (type != NULL)
            bad |= json_object_set_new(o, "type", rcgc__json_text(type));
        bad |= page_json(o, rows, n, &p, "sites", site_json);
    }
    free(rows);
    return view_reply(rs, o, bad, snap, &p);
}
