/* handlers_objects.c: the endpoints that walk a heap — objects by type or generation,
 * one object (referents, referrers, its refcount explained), the path from an object
 * held from outside, and the garbage list grouped by cycle.
 *
 * Each handler parses and checks its input, then runs one function at the heap's
 * safepoint (rcgc__inspect_walk) that copies plain facts into a C struct: ids, type
 * names (static strings of the host's types), counts. The JSON is built afterwards on
 * the server thread, so the owner waits only for the walk itself. An id from the
 * network is a number: it is looked up in the heap's lists (rcgc__object_valid) before
 * anything reads through it. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define REF_LIMIT_DEFAULT 100
#define REF_LIMIT_MAX 1000
#define OBJECTS_LIMIT_DEFAULT 100
#define OBJECTS_LIMIT_MAX 1000
#define PATH_STEPS_DEFAULT 1000
#define PATH_STEPS_MAX 100000
#define PATH_BUDGET_DEFAULT_MS 200
#define PATH_BUDGET_MAX_MS 5000

/* A reference to an object, copied at the safepoint. */
typedef struct {
    uintptr_t id;
    const char *type;
    size_t refcount, size;
    int generation;
    const char *where; /* the collector list: "0".."2", "frozen", "untracked", ... */
    const char *file;
    int line;
} objref;

/* ---- ids ---- */

int rcgc__parse_object_id(const insp_req *rq, insp_resp *rs, uintptr_t *out)
{
    const char *s = rq->id;
    unsigned base = 10;
    uintptr_t v = 0;
    if (s != NULL && s[0] == '0' && s[1] == 'x') {
        base = 16;
        s += 2;
    }
    /* At most 2^64 - 1: 20 decimal digits, 16 hexadecimal ones. */
    if (s == NULL || *s == '\0' || (base == 10 && *s == '0') ||
        strlen(s) > (base == 16 ? 16u : 20u))
        goto bad;
    for (; *s; s++) {
        unsigned d;
        if (*s >= '0' && *s <= '9')
            d = (unsigned)(*s - '0');
        else if (base == 16 && *s >= 'a' && *s <= 'f')
            d = (unsigned)(*s - 'a' + 10);
        else if (base == 16 && *s >= 'A' && *s <= 'F')
            d = (unsigned)(*s - 'A' + 10);
        else
            goto bad;
        if (v > (UINTPTR_MAX - d) / base)
            goto bad;
        v = v * base + d;
    }
    if (v == 0)
        goto bad;
    *out = v;
    return 0;
bad:
    return rcgc__reply_error(rs, 400, "bad_id",
                             "an object id is the object's address, in decimal or as 0x...");
}

int rcgc__walk_object(const insp_req *rq, insp_resp *rs, void (*fn)(rcgc_heap *h, void *arg),
                      void *arg, const bool *valid)
{
    if (rcgc__inspect_walk(rs, rq->heap, fn, arg) != 0)
        return -1;
    if (!*valid)
        return rcgc__reply_error(rs, 404, "object_not_found",
                                 "no live object of heap \"%s\" has id %s", rq->heap, rq->id);
    return 0;
}

static json_t *json_id(uintptr_t id)
{
    return rcgc__json_u64((uint64_t)id);
}

json_t *rcgc__json_address(uintptr_t id)
{
    char buf[24];
    snprintf(buf, sizeof buf, "0x%" PRIxPTR, id);
    return json_string(buf);
}

static json_t *json_objref(const objref *o)
{
    json_t *j = json_object();
    json_object_set_new(j, "id", json_id(o->id));
    json_object_set_new(j, "address", rcgc__json_address(o->id));
    json_object_set_new(j, "type", rcgc__json_text(o->type));
    return j;
}

static json_t *json_site(const char *file, int line)
{
    json_t *j = json_object();
    json_object_set_new(j, "file", rcgc__json_text(file));
    json_object_set_new(j, "line", json_integer(line));
    return j;
}

static void objref_fill(objref *o, const void *obj)
{
    rcgc__object_info info;
    rcgc__object_describe(obj, &info);
    o->id = (uintptr_t)obj;
    o->type = info.type->name;
    o->refcount = info.refcount;
    o->size = info.bytes;
    o->generation = info.generation;
    o->where = info.where;
    o->file = info.file;
    o->line = info.line;
}

/* ---- GET /v1/heaps/{heap}/objects ---- */

/* Objects come in increasing id order, and the cursor is the last id of a page, so that
 * an object alive across pages is listed exactly once whatever the collector moved. The
 * walk keeps the `limit` smallest ids above the cursor in a max-heap. */
typedef struct {
    const char *type; /* filter by type name, or NULL */
    int generation;   /* filter, or -1 */
    bool all;         /* ?scope=all: every object, not only the tracked ones */
    uintptr_t after;  /* the cursor: only ids above it */
    size_t limit;
    uintptr_t *heap; /* max-heap of the smallest ids seen */
    size_t n;
    uint64_t total; /* matching objects (all pages) */
    uint64_t above; /* matching objects above the cursor */
} list_call;

static void max_heap_sift_down(uintptr_t *a, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && a[l] > a[m])
            m = l;
        if (r < n && a[r] > a[m])
            m = r;
        if (m == i)
            return;
        uintptr_t t = a[i];
        a[i] = a[m];
        a[m] = t;
        i = m;
    }
}

static int list_visit(void *obj, void *arg)
{
    list_call *c = arg;
    if (c->type != NULL && strcmp(rcgc_type_of(obj)->name, c->type) != 0)
        return 0;
    c->total++;
    uintptr_t id = (uintptr_t)obj;
    if (id <= c->after)
        return 0;
    c->above++;
    if (c->n < c->limit) {
        size_t i = c->n++;
        c->heap[i] = id;
        while (i > 0 && c->heap[(i - 1) / 2] < c->heap[i]) {
            uintptr_t t = c->heap[i];
            c->heap[i] = c->heap[(i - 1) / 2];
            c->heap[(i - 1) / 2] = t;
            i = (i - 1) / 2;
        }
    } else if (id < c->heap[0]) {
        c->heap[0] = id;
        max_heap_sift_down(c->heap, c->n, 0);
    }
    return 0;
}

typedef struct {
    list_call *list;
    objref *out;
} list_ctx;

static int cmp_id(const void *a, const void *b)
{
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

static void list_walk(rcgc_heap *h, void *arg)
{
    list_ctx *x = arg;
    list_call *c = x->list;
    if (c->all && c->generation < 0)
        (void)rcgc__objects_foreach(h, list_visit, c);
    else
        (void)rcgc_get_objects(h, c->generation, list_visit, c);
    qsort(c->heap, c->n, sizeof *c->heap, cmp_id);
    for (size_t i = 0; i < c->n; i++)
        objref_fill(&x->out[i], (void *)c->heap[i]); /* live: found by the walk above */
}

int rcgc__handle_objects_get(const insp_req *rq, insp_resp *rs)
{
    uint64_t limit, gen;
    const char *scope;
    if (rcgc__query_uint(rq, rs, "limit", 1, OBJECTS_LIMIT_MAX, OBJECTS_LIMIT_DEFAULT,
                         &limit) ||
        rcgc__query_uint(rq, rs, "generation", 0, 2, 3, &gen) ||
        rcgc__query_choice(rq, rs, "scope", "tracked all", "tracked", &scope))
        return -1;
    list_call c = {.type = rcgc__query_str(rq, "type"),
                   .generation = gen == 3 ? -1 : (int)gen,
                   .all = strcmp(scope, "all") == 0,
                   .limit = (size_t)limit};
    const char *cursor = rcgc__query_str(rq, "cursor");
    if (cursor != NULL) {
        /* "a<last id>": the page goes on after that id. */
        char *end;
        unsigned long long v = 0;
        if (cursor[0] != 'a' || cursor[1] < '0' || cursor[1] > '9' || strlen(cursor) > 21 ||
            (errno = 0, v = strtoull(cursor + 1, &end, 10), *end != '\0') || errno == ERANGE ||
            v > UINTPTR_MAX)
            return rcgc__reply_error(rs, 400, "bad_parameter",
                                     "cursor: pass back the next_cursor of a previous page");
        c.after = (uintptr_t)v;
    }
    c.heap = calloc(limit, sizeof *c.heap);
    list_ctx x = {&c, calloc(limit, sizeof(objref))};
    int r = -1;
    if (c.heap == NULL || x.out == NULL)
        goto out;
    if (rcgc__inspect_walk(rs, rq->heap, list_walk, &x) != 0)
        goto out;
    json_t *j = rcgc__json_top();
    json_object_set_new(j, "heap", rcgc__json_text(rq->heap));
    if (c.type != NULL)
        json_object_set_new(j, "type", rcgc__json_text(c.type));
    if (c.generation >= 0)
        json_object_set_new(j, "generation", json_integer(c.generation));
    json_object_set_new(j, "scope", json_string(scope));
    json_object_set_new(j, "limit", json_integer((json_int_t)limit));
    json_object_set_new(j, "total", rcgc__json_u64(c.total));
    bool more = c.above > c.n;
    json_object_set_new(j, "truncated", json_boolean(more));
    if (more) {
        char next[32];
        snprintf(next, sizeof next, "a%" PRIuPTR, c.heap[c.n - 1]);
        json_object_set_new(j, "next_cursor", json_string(next));
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < c.n; i++) {
        json_t *o = json_objref(&x.out[i]);
        json_object_set_new(o, "size", rcgc__json_u64(x.out[i].size));
        json_object_set_new(o, "refcount", json_integer((json_int_t)x.out[i].refcount));
        json_object_set_new(o, "generation",
                            x.out[i].generation >= 0 ? json_integer(x.out[i].generation)
                                                     : json_null());
        json_object_set_new(o, "where", json_string(x.out[i].where));
        json_object_set_new(o, "site", json_site(x.out[i].file, x.out[i].line));
        json_array_append_new(arr, o);
    }
    json_object_set_new(j, "objects", arr);
    r = rcgc__reply_json(rs, 200, j);
out:
    free(c.heap);
    free(x.out);
    return r;
}

/* ---- GET /v1/heaps/{heap}/objects/{id} ---- */

/* A set of addresses (open addressing, linear probing; 0 is the empty slot). */
typedef struct {
    uintptr_t *slots;
    size_t cap, len;
    bool failed; /* out of memory: the set stopped growing */
} ptr_set;

/* Adds p. Returns: whether it was new (true as well when memory ran out: counted twice
 * rather than lost). */
static bool ptr_set_add(ptr_set *s, uintptr_t p)
{
    if (2 * (s->len + 1) > s->cap && !s->failed) {
        size_t ncap = s->cap ? 2 * s->cap : 64;
        uintptr_t *ns = calloc(ncap, sizeof *ns);
        if (ns == NULL) {
            s->failed = true;
        } else {
            for (size_t i = 0; i < s->cap; i++) {
                if (s->slots[i] == 0)
                    continue;
                size_t k = (s->slots[i] >> 4) & (ncap - 1);
                while (ns[k] != 0)
                    k = (k + 1) & (ncap - 1);
                ns[k] = s->slots[i];
            }
            free(s->slots);
            s->slots = ns;
            s->cap = ncap;
        }
    }
    if (s->failed && 2 * (s->len + 1) > s->cap)
        return true;
    size_t k = (p >> 4) & (s->cap - 1);
    while (s->slots[k] != 0 && s->slots[k] != p)
        k = (k + 1) & (s->cap - 1);
    if (s->slots[k] == p)
        return false;
    s->slots[k] = p;
    s->len++;
    return true;
}

typedef struct {
    objref *items;
    size_t n, limit, total;
    ptr_set seen; /* referents: each listed and counted once */
} ref_list;

typedef struct {
    uintptr_t id;
    bool valid;
    rcgc__object_info info;
    bool weakref;
    size_t from_heap, from_garbage;
    ref_list referents, referrers;
    rcgc_traceback *traceback; /* NULL: no trace (see handlers_tracing.c) */
} object_call;

static int collect_referent(void *obj, void *arg)
{
    ref_list *l = arg;
    if (obj == NULL || !ptr_set_add(&l->seen, (uintptr_t)obj))
        return 0; /* each once, however often traverse visits it */
    if (l->n < l->limit)
        objref_fill(&l->items[l->n++], obj);
    l->total++;
    return 0;
}

static void object_walk(rcgc_heap *h, void *arg)
{
    object_call *c = arg;
    void *obj = (void *)c->id;
    c->valid = rcgc__object_valid(h, obj);
    if (!c->valid)
        return;
    rcgc__object_describe(obj, &c->info);
    c->weakref = rcgc_is_weakref(obj);
    c->from_heap = rcgc__refs_from_heap(h, obj);
    for (size_t i = 0; i < rcgc_garbage_count(h); i++)
        c->from_garbage += rcgc_garbage_get(h, i) == obj;
    (void)rcgc_get_referents(obj, collect_referent, &c->referents);
    (void)rcgc__referrers(h, obj, collect_referent, &c->referrers);
    c->traceback = rcgc_tracemalloc_get_object_traceback(obj);
}

static json_t *json_ref_list(const ref_list *l)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < l->n; i++)
        json_array_append_new(arr, json_objref(&l->items[i]));
    return arr;
}

int rcgc__handle_object_get(const insp_req *rq, insp_resp *rs)
{
    object_call c = {0};
    uint64_t ref_limit, rr_limit;
    if (rcgc__parse_object_id(rq, rs, &c.id) ||
        rcgc__query_uint(rq, rs, "referents_limit", 0, REF_LIMIT_MAX, REF_LIMIT_DEFAULT,
                         &ref_limit) ||
        rcgc__query_uint(rq, rs, "referrers_limit", 0, REF_LIMIT_MAX, REF_LIMIT_DEFAULT,
                         &rr_limit))
        return -1;
    c.referents.limit = (size_t)ref_limit;
    c.referrers.limit = (size_t)rr_limit;
    c.referents.items = calloc(ref_limit + 1, sizeof(objref));
    c.referrers.items = calloc(rr_limit + 1, sizeof(objref));
    int r = -1;
    if (c.referents.items == NULL || c.referrers.items == NULL ||
        rcgc__walk_object(rq, rs, object_walk, &c, &c.valid) != 0)
        goto out;
    json_t *j = rcgc__json_top();
    json_object_set_new(j, "heap", rcgc__json_text(rq->heap));
    json_object_set_new(j, "id", json_id(c.id));
    json_object_set_new(j, "address", rcgc__json_address(c.id));
    json_object_set_new(j, "type", rcgc__json_text(c.info.type->name));
    json_object_set_new(j, "size", rcgc__json_u64(c.info.bytes));
    json_object_set_new(j, "refcount", json_integer((json_int_t)c.info.refcount));
    json_object_set_new(j, "immortal", json_boolean(c.info.refcount == RCGC_REFCNT_IMMORTAL));
    json_object_set_new(j, "generation",
                        c.info.generation >= 0 ? json_integer(c.info.generation) : json_null());
    json_object_set_new(j, "where", json_string(c.info.where));
    json_object_set_new(j, "tracked", json_boolean(c.info.tracked));
    json_object_set_new(j, "finalized", json_boolean(c.info.finalized));
    json_object_set_new(j, "weakref", json_boolean(c.weakref));
    json_object_set_new(j, "weakrefs", rcgc__json_u64(c.info.weakrefs));
    json_object_set_new(j, "site", json_site(c.info.file, c.info.line));
    json_object_set_new(j, "traceback", rcgc__traceback_json(c.traceback));
    json_t *ex = json_object();
    json_object_set_new(ex, "refcount", json_integer((json_int_t)c.info.refcount));
    json_object_set_new(ex, "from_heap", json_integer((json_int_t)c.from_heap));
    json_object_set_new(ex, "from_garbage_list", json_integer((json_int_t)c.from_garbage));
    json_object_set_new(ex, "from_outside",
                        json_integer((json_int_t)c.info.refcount - (json_int_t)c.from_heap -
                                     (json_int_t)c.from_garbage));
    json_object_set_new(j, "refcount_explained", ex);
    json_object_set_new(j, "referents", json_ref_list(&c.referents));
    json_object_set_new(j, "referents_total", rcgc__json_u64(c.referents.total));
    json_object_set_new(j, "referents_truncated",
                        json_boolean(c.referents.total > c.referents.n));
    json_object_set_new(j, "referrers", json_ref_list(&c.referrers));
    json_object_set_new(j, "referrers_total", rcgc__json_u64(c.referrers.total));
    json_object_set_new(j, "referrers_truncated",
                        json_boolean(c.referrers.total > c.referrers.n));
    r = rcgc__reply_json(rs, 200, j);
out:
    free(c.referents.items);
    free(c.referents.seen.slots);
    free(c.referrers.seen.slots);
    free(c.referrers.items);
    rcgc_traceback_free(c.traceback);
    return r;
}

/* ---- GET /v1/heaps/{heap}/objects/{id}/path ---- */

typedef struct {
    uintptr_t id;
    bool valid;
    objref target;
    uint64_t budget_ns;
    int outcome, err;
    objref *steps;
    size_t n, limit, total; /* listed, ?steps_limit=, on the path */
    size_t root_outside;
    uint64_t elapsed_ns;
} path_call;

static int path_step(const void *obj, void *arg)
{
    path_call *c = arg;
    if (c->n < c->limit)
        objref_fill(&c->steps[c->n++], obj);
    c->total++;
    return 0;
}

static void path_walk(rcgc_heap *h, void *arg)
{
    path_call *c = arg;
    uint64_t t0 = rcgc__insp_now_ns();
    c->valid = rcgc__object_valid(h, (void *)c->id);
    if (c->valid) {
        objref_fill(&c->target, (void *)c->id);
        c->err =
            rcgc__path_from_root(h, (void *)c->id, c->budget_ns, path_step, c, &c->outcome);
        if (c->err == 0 && c->outcome == RCGC__PATH_FOUND && c->n > 0) {
            const void *root = (const void *)c->steps[0].id;
            size_t inside = rcgc__refs_from_heap(h, root);
            c->root_outside = c->steps[0].refcount - inside;
        }
    }
    c->elapsed_ns = rcgc__insp_now_ns() - t0;
}

int rcgc__handle_path_get(const insp_req *rq, insp_resp *rs)
{
    path_call c = {0};
    uint64_t budget_ms, steps_limit;
    if (rcgc__parse_object_id(rq, rs, &c.id) ||
        rcgc__query_uint(rq, rs, "budget_ms", 1, PATH_BUDGET_MAX_MS, PATH_BUDGET_DEFAULT_MS,
                         &budget_ms) ||
        rcgc__query_uint(rq, rs, "steps_limit", 2, PATH_STEPS_MAX, PATH_STEPS_DEFAULT,
                         &steps_limit))
        return -1;
    c.budget_ns = budget_ms * 1000000u;
    c.limit = (size_t)steps_limit;
    c.steps = calloc(c.limit, sizeof *c.steps);
    if (c.steps == NULL)
        return -1;
    int r = -1;
    if (rcgc__walk_object(rq, rs, path_walk, &c, &c.valid) != 0)
        goto out;
    if (c.err != 0)
        goto out; /* out of memory: 500 */
    bool found = c.outcome == RCGC__PATH_FOUND;
    json_t *j = rcgc__json_top();
    json_object_set_new(j, "heap", rcgc__json_text(rq->heap));
    json_object_set_new(j, "target", json_objref(&c.target));
    json_object_set_new(j, "found", json_boolean(found));
    json_object_set_new(j, "complete", json_boolean(c.outcome != RCGC__PATH_BUDGET));
    json_object_set_new(j, "budget_ms", json_integer((json_int_t)budget_ms));
    json_object_set_new(j, "elapsed_ms", json_real((double)c.elapsed_ns / 1e6));
    if (found) {
        json_object_set_new(j, "length", json_integer((json_int_t)c.total - 1));
        json_object_set_new(j, "root_from_outside", json_integer((json_int_t)c.root_outside));
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < c.n; i++) {
        json_t *o = json_objref(&c.steps[i]);
        json_object_set_new(o, "refcount", json_integer((json_int_t)c.steps[i].refcount));
        json_array_append_new(arr, o);
    }
    json_object_set_new(j, "steps", arr);
    json_object_set_new(j, "steps_truncated", json_boolean(c.total > c.n));
    r = rcgc__reply_json(rs, 200, j);
out:
    free(c.steps);
    return r;
}

/* ---- GET /v1/heaps/{heap}/garbage ---- */

#define GARBAGE_MAX_OBJECTS_DEFAULT 100000
#define GARBAGE_LIMIT_DEFAULT 20
#define GARBAGE_OBJECTS_LIMIT_DEFAULT 100
#define GARBAGE_OBJECTS_LIMIT_MAX 10000
#define GARBAGE_REFERENTS_LIMIT_DEFAULT 16

typedef struct {
    uintptr_t id;
    const char *type;
    long group; /* -1: not grouped */
} g_ref;

typedef struct {
    uintptr_t id;
    const char *type;
    size_t size, refcount;
    bool in_list, legacy_del, finalized;
    g_ref *refs;
    size_t nrefs, refs_total;
} g_obj;

typedef struct {
    const char *type;
    size_t n;
} g_count;

typedef struct {
    size_t size;
    bool cycle;
    g_count *types;
    size_t ntypes;
    g_obj *objs;
    size_t nobjs;
} g_group;

typedef struct {
    /* input */
    size_t max_objects, offset, limit, objects_limit, referents_limit;
    /* the grouping, at the safepoint */
    void **members; /* every grouped object, group after group */
    size_t nmembers, members_cap;
    size_t *group_start; /* index into members of each group's first object; +1 entry */
    size_t ngroups, groups_cap;
    void **map;     /* open addressing: object -> its index in members */
    size_t map_cap; /* power of two */
    bool truncated;
    size_t garbage;
    bool saveall;
    int err;
    /* output */
    g_group *out;
    size_t nout;
} garbage_call;

static size_t ptr_slot(const garbage_call *c, const void *p)
{
    uintptr_t x = ((uintptr_t)p >> 4) * 0x9E3779B97F4A7C15u;
    return (size_t)(x ^ (x >> 29)) & (c->map_cap - 1);
}

static long member_index(const garbage_call *c, const void *p)
{
    if (c->map_cap == 0)
        return -1;
    for (size_t j = ptr_slot(c, p);; j = (j + 1) & (c->map_cap - 1)) {
        if (c->map[j] == NULL)
            return -1;
        if (c->map[j] == p)
            return (long)j;
    }
}

static int take_group(void *const *members, size_t n, void *arg)
{
    garbage_call *c = arg;
    if (c->nmembers + n > c->members_cap) {
        size_t cap = c->members_cap ? c->members_cap : 256;
        while (cap < c->nmembers + n)
            cap *= 2;
        void **m = realloc(c->members, cap * sizeof *m);
        if (m == NULL)
            return c->err = -1;
        c->members = m;
        c->members_cap = cap;
    }
    if (c->ngroups + 2 > c->groups_cap) {
        size_t cap = c->groups_cap ? c->groups_cap * 2 : 64;
        size_t *g = realloc(c->group_start, cap * sizeof *g);
        if (g == NULL)
            return c->err = -1;
        c->group_start = g;
        c->groups_cap = cap;
    }
    c->group_start[c->ngroups++] = c->nmembers;
    memcpy(c->members + c->nmembers, members, n * sizeof *members);
    c->nmembers += n;
    c->group_start[c->ngroups] = c->nmembers;
    return 0;
}

typedef struct {
    garbage_call *c;
    size_t *group_of_slot; /* per map slot: the group index */
    g_obj *o;
} ref_ctx;

static int collect_g_ref(void *obj, void *arg)
{
    ref_ctx *x = arg;
    g_obj *o = x->o;
    if (obj == NULL)
        return 0;
    if (o->nrefs < x->c->referents_limit) {
        long slot = member_index(x->c, obj);
        g_ref *r = &o->refs[o->nrefs++];
        r->id = (uintptr_t)obj;
        r->type = rcgc_type_of(obj)->name;
        r->group = slot < 0 ? -1 : (long)x->group_of_slot[slot];
    }
    o->refs_total++;
    return 0;
}

static int find_self(void *obj, void *arg)
{
    return obj == arg;
}

static void garbage_walk(rcgc_heap *h, void *arg)
{
    garbage_call *c = arg;
    c->garbage = rcgc_garbage_count(h);
    c->saveall = (rcgc_get_debug(h) & RCGC_DEBUG_SAVEALL) != 0;
    if (rcgc__garbage_groups(h, c->max_objects, take_group, c, &c->truncated) != 0 || c->err)
        goto fail;
    /* member -> group, through a map with twice the room */
    c->map_cap = 16;
    while (c->map_cap < 2 * c->nmembers + 2)
        c->map_cap *= 2;
    c->map = calloc(c->map_cap, sizeof *c->map);
    size_t *group_of_slot = calloc(c->map_cap, sizeof *group_of_slot);
    if (c->map == NULL || group_of_slot == NULL) {
        free(group_of_slot);
        goto fail;
    }
    for (size_t g = 0; g < c->ngroups; g++)
        for (size_t i = c->group_start[g]; i < c->group_start[g + 1]; i++) {
            size_t j = ptr_slot(c, c->members[i]);
            while (c->map[j] != NULL)
                j = (j + 1) & (c->map_cap - 1);
            c->map[j] = c->members[i];
            group_of_slot[j] = g;
        }
    size_t end = c->offset + c->limit < c->ngroups ? c->offset + c->limit : c->ngroups;
    if (c->offset < end) {
        c->out = calloc(end - c->offset, sizeof *c->out);
        if (c->out == NULL) {
            free(group_of_slot);
            goto fail;
        }
    }
    for (size_t g = c->offset; g < end; g++) {
        g_group *gg = &c->out[c->nout++];
        size_t first = c->group_start[g], n = c->group_start[g + 1] - first;
        gg->size = n;
        gg->cycle =
            n > 1 || rcgc_get_referents(c->members[first], find_self, c->members[first]);
        gg->types = calloc(n, sizeof *gg->types);
        size_t nobjs = n < c->objects_limit ? n : c->objects_limit;
        gg->objs = calloc(nobjs + 1, sizeof *gg->objs);
        if (gg->types == NULL || gg->objs == NULL)
            c->err = -1;
        for (size_t i = 0; i < n && !c->err; i++) {
            void *obj = c->members[first + i];
            const rcgc_type *t = rcgc_type_of(obj);
            size_t k = 0;
            while (k < gg->ntypes && strcmp(gg->types[k].type, t->name) != 0)
                k++;
            if (k == gg->ntypes)
                gg->types[gg->ntypes++] = (g_count){t->name, 0};
            gg->types[k].n++;
            if (i >= nobjs)
                continue;
            g_obj *o = &gg->objs[gg->nobjs++];
            rcgc__object_info info;
            rcgc__object_describe(obj, &info);
            o->id = (uintptr_t)obj;
            o->type = t->name;
            o->size = info.bytes;
            o->refcount = info.refcount;
            o->legacy_del = t->legacy_del != NULL;
            o->finalized = info.finalized;
            for (size_t e = 0; e < c->garbage && !o->in_list; e++)
                o->in_list = rcgc_garbage_get(h, e) == obj;
            o->refs = calloc(c->referents_limit + 1, sizeof *o->refs);
            if (o->refs == NULL) {
                c->err = -1;
                break;
            }
            ref_ctx x = {c, group_of_slot, o};
            (void)rcgc_get_referents(obj, collect_g_ref, &x);
        }
    }
    free(group_of_slot);
    return;
fail:
    c->err = -1;
}

static int by_count_desc(const void *a, const void *b)
{
    const g_count *x = a, *y = b;
    if (x->n != y->n)
        return x->n < y->n ? 1 : -1;
    return strcmp(x->type, y->type);
}

static void garbage_free(garbage_call *c)
{
    for (size_t g = 0; g < c->nout; g++) {
        for (size_t i = 0; i < c->out[g].nobjs; i++)
            free(c->out[g].objs[i].refs);
        free(c->out[g].objs);
        free(c->out[g].types);
    }
    free(c->out);
    free(c->members);
    free(c->group_start);
    free(c->map);
}

int rcgc__handle_garbage_get(const insp_req *rq, insp_resp *rs)
{
    uint64_t max_objects, offset, limit, olimit, rlimit;
    if (rcgc__query_uint(rq, rs, "max_objects", 1, 10000000, GARBAGE_MAX_OBJECTS_DEFAULT,
                         &max_objects) ||
        rcgc__query_uint(rq, rs, "offset", 0, UINT32_MAX, 0, &offset) ||
        rcgc__query_uint(rq, rs, "limit", 1, 1000, GARBAGE_LIMIT_DEFAULT, &limit) ||
        rcgc__query_uint(rq, rs, "objects_limit", 1, GARBAGE_OBJECTS_LIMIT_MAX,
                         GARBAGE_OBJECTS_LIMIT_DEFAULT, &olimit) ||
        rcgc__query_uint(rq, rs, "referents_limit", 1, REF_LIMIT_MAX,
                         GARBAGE_REFERENTS_LIMIT_DEFAULT, &rlimit))
        return -1;
    garbage_call c = {.max_objects = (size_t)max_objects,
                      .offset = (size_t)offset,
                      .limit = (size_t)limit,
                      .objects_limit = (size_t)olimit,
                      .referents_limit = (size_t)rlimit};
    int r = -1;
    if (rcgc__inspect_walk(rs, rq->heap, garbage_walk, &c) != 0 || c.err != 0)
        goto out;
    json_t *j = rcgc__json_top();
    json_object_set_new(j, "heap", rcgc__json_text(rq->heap));
    json_object_set_new(j, "garbage", rcgc__json_u64(c.garbage));
    json_object_set_new(j, "saveall", json_boolean(c.saveall));
    json_object_set_new(j, "reached", rcgc__json_u64(c.nmembers));
    json_object_set_new(j, "max_objects", json_integer((json_int_t)max_objects));
    json_object_set_new(j, "reached_truncated", json_boolean(c.truncated));
    json_object_set_new(j, "offset", json_integer((json_int_t)offset));
    json_object_set_new(j, "limit", json_integer((json_int_t)limit));
    json_object_set_new(j, "total", rcgc__json_u64(c.ngroups));
    json_object_set_new(j, "truncated", json_boolean(c.offset + c.nout < c.ngroups));
    json_t *groups = json_array();
    for (size_t g = 0; g < c.nout; g++) {
        g_group *gg = &c.out[g];
        json_t *jg = json_object();
        json_object_set_new(jg, "index", json_integer((json_int_t)(c.offset + g)));
        json_object_set_new(jg, "kind", json_string(gg->cycle ? "cycle" : "single"));
        json_object_set_new(jg, "size", rcgc__json_u64(gg->size));
        qsort(gg->types, gg->ntypes, sizeof *gg->types, by_count_desc);
        json_t *types = json_array();
        for (size_t k = 0; k < gg->ntypes; k++) {
            json_t *jt = json_object();
            json_object_set_new(jt, "type", rcgc__json_text(gg->types[k].type));
            json_object_set_new(jt, "objects", rcgc__json_u64(gg->types[k].n));
            json_array_append_new(types, jt);
        }
        json_object_set_new(jg, "types", types);
        json_t *objs = json_array();
        for (size_t i = 0; i < gg->nobjs; i++) {
            g_obj *o = &gg->objs[i];
            json_t *jo = json_object();
            json_object_set_new(jo, "id", json_id(o->id));
            json_object_set_new(jo, "address", rcgc__json_address(o->id));
            json_object_set_new(jo, "type", rcgc__json_text(o->type));
            json_object_set_new(jo, "size", rcgc__json_u64(o->size));
            json_object_set_new(jo, "refcount", json_integer((json_int_t)o->refcount));
            json_object_set_new(jo, "in_list", json_boolean(o->in_list));
            json_object_set_new(jo, "legacy_del", json_boolean(o->legacy_del));
            json_object_set_new(jo, "finalized", json_boolean(o->finalized));
            json_t *refs = json_array();
            for (size_t e = 0; e < o->nrefs; e++) {
                json_t *jr = json_object();
                json_object_set_new(jr, "id", json_id(o->refs[e].id));
                json_object_set_new(jr, "address", rcgc__json_address(o->refs[e].id));
                json_object_set_new(jr, "type", rcgc__json_text(o->refs[e].type));
                json_object_set_new(jr, "group",
                                    o->refs[e].group < 0 ? json_null()
                                                         : json_integer(o->refs[e].group));
                json_array_append_new(refs, jr);
            }
            json_object_set_new(jo, "referents", refs);
            json_object_set_new(jo, "referents_truncated",
                                json_boolean(o->refs_total > o->nrefs));
            json_array_append_new(objs, jo);
        }
        json_object_set_new(jg, "objects", objs);
        json_object_set_new(jg, "objects_truncated", json_boolean(gg->size > gg->nobjs));
        json_array_append_new(groups, jg);
    }
    json_object_set_new(j, "groups", groups);
    r = rcgc__reply_json(rs, 200, j);
out:
    garbage_free(&c);
    return r;
}
