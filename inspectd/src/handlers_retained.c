/* handlers_retained.c: what an object, or every object of a type, keeps alive —
 * GET /v1/heaps/{heap}/objects/{id}/retained and GET /v1/heaps/{heap}/retained?type=.
 *
 * One rcgc__retained call at the heap's safepoint (rcgc__inspect_walk), within the
 * request's budget; it copies the per-type tallies (merged by type name: two types may
 * share one) and the first dominated_limit children of the dominator tree into plain C
 * rows, and the JSON is built afterwards on the server thread. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define RETAINED_BUDGET_DEFAULT_MS 250
#define RETAINED_BUDGET_MAX_MS 5000
#define RETAINED_LIMIT_DEFAULT 20
#define RETAINED_LIMIT_MAX 1000

typedef struct {
    const char *type;
    rcgc__tally n;
} type_row;

typedef struct {
    uintptr_t id;
    const char *type;
    size_t size;
    rcgc__tally n;
} dom_row;

typedef struct {
    uintptr_t id;          /* the target object, or 0: the type type_name */
    const char *type_name; /* decoded ?type= */
    uint64_t budget_ns;
    size_t dominated_limit;
    bool valid; /* the id names a live object */
    const char *target_type;
    size_t target_size;
    rcgc__retained_info info;
    type_row *types;
    size_t ntypes, types_cap;
    dom_row *dom;
    size_t ndom;
    int err;
    uint64_t elapsed_ns;
} retained_call;

static int add_type(const rcgc_type *t, const rcgc__tally *n, void *arg)
{
    retained_call *c = arg;
    size_t k = 0;
    while (k < c->ntypes && strcmp(c->types[k].type, t->name) != 0)
        k++;
    if (k == c->ntypes) {
        if (c->ntypes == c->types_cap) {
            size_t ncap = c->types_cap ? 2 * c->types_cap : 16;
            type_row *p = realloc(c->types, ncap * sizeof *p);
            if (p == NULL)
                return RCGC_ENOMEM;
            c->types = p;
            c->types_cap = ncap;
        }
        c->types[c->ntypes++] = (type_row){t->name, {0, 0}};
    }
    c->types[k].n.objects += n->objects;
    c->types[k].n.bytes += n->bytes;
    return 0;
}

static int add_dominated(const void *obj, const rcgc__tally *n, void *arg)
{
    retained_call *c = arg;
    if (c->ndom >= c->dominated_limit)
        return 1;
    rcgc__object_info info;
    rcgc__object_describe(obj, &info);
    c->dom[c->ndom++] = (dom_row){(uintptr_t)obj, info.type->name, info.bytes, *n};
    return c->ndom >= c->dominated_limit;
}

static void retained_walk(rcgc_heap *h, void *arg)
{
    retained_call *c = arg;
    uint64_t t0 = rcgc__insp_now_ns();
    const void *target = (const void *)c->id;
    c->valid = target == NULL || rcgc__object_valid(h, target);
    if (c->valid) {
        if (target != NULL) {
            rcgc__object_info info;
            rcgc__object_describe(target, &info);
            c->target_type = info.type->name;
            c->target_size = info.bytes;
        }
        c->err = rcgc__retained(h, target, c->type_name, c->budget_ns, add_type, add_dominated,
                                c, &c->info);
    }
    c->elapsed_ns = rcgc__insp_now_ns() - t0;
}

static json_t *json_tally(const rcgc__tally *n)
{
    json_t *j = json_object();
    json_object_set_new(j, "objects", rcgc__json_u64(n->objects));
    json_object_set_new(j, "bytes", rcgc__json_u64(n->bytes));
    return j;
}

/* Most bytes first, then most objects, then by name: the same answer twice. */
static int type_row_cmp(const void *a, const void *b)
{
    const type_row *x = a, *y = b;
    if (x->n.bytes != y->n.bytes)
        return x->n.bytes > y->n.bytes ? -1 : 1;
    if (x->n.objects != y->n.objects)
        return x->n.objects > y->n.objects ? -1 : 1;
    return strcmp(x->type, y->type);
}

static int retained_get(const insp_req *rq, insp_resp *rs, retained_call *c)
{
    uint64_t budget_ms, dominated_limit, by_type_limit;
    if (rcgc__query_uint(rq, rs, "budget_ms", 1, RETAINED_BUDGET_MAX_MS,
                         RETAINED_BUDGET_DEFAULT_MS, &budget_ms) ||
        rcgc__query_uint(rq, rs, "dominated_limit", 0, RETAINED_LIMIT_MAX,
                         RETAINED_LIMIT_DEFAULT, &dominated_limit) ||
        rcgc__query_uint(rq, rs, "by_type_limit", 0, RETAINED_LIMIT_MAX, RETAINED_LIMIT_DEFAULT,
                         &by_type_limit))
        return -1;
    c->budget_ns = budget_ms * 1000000u;
    c->dominated_limit = (size_t)dominated_limit;
    c->dom = malloc((c->dominated_limit + 1) * sizeof *c->dom);
    if (c->dom == NULL)
        return -1;
    int r = -1;
    if (rcgc__walk_object(rq, rs, retained_walk, c, &c->valid) != 0)
        goto out;
    if (c->err != 0)
        goto out; /* out of memory: 500 */
    json_t *j = rcgc__json_top();
    json_object_set_new(j, "heap", rcgc__json_text(rq->heap));
    json_t *target = json_object();
    if (c->id != 0) {
        json_object_set_new(target, "kind", json_string("object"));
        json_object_set_new(target, "id", rcgc__json_u64((uint64_t)c->id));
        json_object_set_new(target, "address", rcgc__json_address(c->id));
        json_object_set_new(target, "type", rcgc__json_text(c->target_type));
        json_object_set_new(target, "size", rcgc__json_u64(c->target_size));
    } else {
        json_object_set_new(target, "kind", json_string("type"));
        json_object_set_new(target, "type", rcgc__json_text(c->type_name));
        json_object_set_new(target, "objects", rcgc__json_u64(c->info.target.objects));
        json_object_set_new(target, "bytes", rcgc__json_u64(c->info.target.bytes));
    }
    json_object_set_new(j, "target", target);
    json_object_set_new(j, "complete", json_boolean(c->info.complete));
    json_object_set_new(j, "budget_ms", json_integer((json_int_t)budget_ms));
    json_object_set_new(j, "elapsed_ms", json_real((double)c->elapsed_ns / 1e6));
    json_object_set_new(j, "retained", json_tally(&c->info.retained));
    if (c->ntypes > 0)
        qsort(c->types, c->ntypes, sizeof *c->types, type_row_cmp);
    json_t *types = json_array();
    for (size_t i = 0; i < c->ntypes && i < by_type_limit; i++) {
        json_t *t = json_tally(&c->types[i].n);
        json_object_set_new(t, "type", rcgc__json_text(c->types[i].type));
        json_array_append_new(types, t);
    }
    json_object_set_new(j, "by_type", types);
    json_object_set_new(j, "by_type_truncated", json_boolean(c->ntypes > by_type_limit));
    json_t *dom = json_array();
    for (size_t i = 0; c->info.complete && i < c->ndom; i++) {
        const dom_row *d = &c->dom[i];
        json_t *o = json_object();
        json_object_set_new(o, "id", rcgc__json_u64((uint64_t)d->id));
        json_object_set_new(o, "address", rcgc__json_address(d->id));
        json_object_set_new(o, "type", rcgc__json_text(d->type));
        json_object_set_new(o, "size", rcgc__json_u64(d->size));
        json_object_set_new(o, "retained", json_tally(&d->n));
        json_array_append_new(dom, o);
    }
    json_object_set_new(j, "dominated", dom);
    uint64_t total = c->info.complete ? c->info.dominated : 0;
    json_object_set_new(j, "dominated_total", rcgc__json_u64(total));
    json_object_set_new(j, "dominated_truncated", json_boolean(total > c->ndom));
    r = rcgc__reply_json(rs, 200, j);
out:
    free(c->types);
    free(c->dom);
    return r;
}

int rcgc__handle_object_retained_get(const insp_req *rq, insp_resp *rs)
{
    retained_call c = {0};
    if (rcgc__parse_object_id(rq, rs, &c.id))
        return -1;
    return retained_get(rq, rs, &c);
}

int rcgc__handle_type_retained_get(const insp_req *rq, insp_resp *rs)
{
    retained_call c = {0};
    c.type_name = rcgc__query_str(rq, "type");
    if (c.type_name == NULL)
        return rcgc__reply_error(rs, 400, "missing_parameter",
                                 "query parameter 'type' is required: the type's name");
    return retained_get(rq, rs, &c);
}
