/* handlers_alloc.c: GET /v1/heaps/{heap}/allocator — the heap's small-object allocator
 * (pools, arenas, size classes: sys._debugmallocstats as data) from the published
 * snapshot, or with ?format=text exactly rcgc_debug_malloc_stats's text, written at a
 * safepoint of the owner. */
#define _POSIX_C_SOURCE 200809L

#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *classes_json(const rcgc_malloc_stats *m)
{
    json_t *a = json_array();
    for (unsigned c = 0; c < RCGC_SIZE_CLASSES; c++) {
        const rcgc_size_class_stats *cs = &m->classes[c];
        if (cs->pools == 0)
            continue;
        json_t *o = json_object();
        json_object_set_new(o, "class", json_integer((json_int_t)c));
        json_object_set_new(o, "size", json_integer((json_int_t)cs->size));
        json_object_set_new(o, "pools", json_integer((json_int_t)cs->pools));
        json_object_set_new(o, "blocks_in_use", rcgc__json_u64(cs->blocks_in_use));
        json_object_set_new(o, "blocks_available", rcgc__json_u64(cs->blocks_available));
        json_array_append_new(a, o);
    }
    return a;
}

/* The answer of GET .../allocator. Returns: a new reference. */
static json_t *allocator_json(const char *heap, const rcgc__snapshot *s)
{
    const rcgc_malloc_stats *m = &s->malloc;
    json_t *o = rcgc__json_top();
    json_object_set_new(o, "heap", rcgc__json_text(heap));
    json_object_set_new(o, "serial", rcgc__json_u64(s->serial));
    json_object_set_new(o, "small_request_threshold",
                        json_integer((json_int_t)m->small_request_threshold));
    json_object_set_new(o, "pool_size", json_integer((json_int_t)m->pool_size));
    json_object_set_new(o, "arena_size", json_integer((json_int_t)m->arena_size));
    json_object_set_new(o, "classes", classes_json(m));
    json_t *ar = json_object();
    json_object_set_new(ar, "allocated_total", rcgc__json_u64(m->arenas_allocated_total));
    json_object_set_new(ar, "reclaimed", rcgc__json_u64(m->arenas_reclaimed));
    json_object_set_new(ar, "highwater", rcgc__json_u64(m->arenas_highwater));
    json_object_set_new(ar, "current", rcgc__json_u64(m->arenas_current));
    json_object_set_new(o, "arenas", ar);
    /* The six parts of every arena byte (rcgc.h), and their sum. */
    uint64_t unused = (uint64_t)m->unused_pools * m->pool_size;
    uint64_t total = (uint64_t)m->bytes_in_allocated_blocks + m->bytes_in_available_blocks +
                     unused + m->bytes_lost_pool_headers + m->bytes_lost_quantization +
                     m->bytes_lost_arena_alignment;
    json_t *b = json_object();
    json_object_set_new(b, "allocated_blocks", rcgc__json_u64(m->bytes_in_allocated_blocks));
    json_object_set_new(b, "available_blocks", rcgc__json_u64(m->bytes_in_available_blocks));
    json_object_set_new(b, "unused_pools", rcgc__json_u64(unused));
    json_object_set_new(b, "pool_headers", rcgc__json_u64(m->bytes_lost_pool_headers));
    json_object_set_new(b, "quantization", rcgc__json_u64(m->bytes_lost_quantization));
    json_object_set_new(b, "arena_alignment", rcgc__json_u64(m->bytes_lost_arena_alignment));
    json_object_set_new(b, "total", rcgc__json_u64(total));
    json_object_set_new(o, "bytes", b);
    json_object_set_new(o, "unused_pools", rcgc__json_u64(m->unused_pools));
    json_t *l = json_object();
    json_object_set_new(l, "objects", rcgc__json_u64(m->large_objects));
    json_object_set_new(l, "bytes", rcgc__json_u64(m->large_bytes));
    json_object_set_new(o, "large", l);
    return o;
}

typedef struct text_call {
    char *text; /* malloc'd by open_memstream */
    size_t len;
    int err;
} text_call;

/* At the safepoint: reads the allocator's structures only (open_memstream's buffer comes
 * from libc, not from the heap). */
static void text_walk(rcgc_heap *h, void *arg)
{
    text_call *c = arg;
    FILE *f = open_memstream(&c->text, &c->len);
    if (f == NULL) {
        c->err = RCGC_ENOMEM;
        return;
    }
    c->err = rcgc_debug_malloc_stats(h, f);
    if (fclose(f) != 0 && c->err == 0)
        c->err = RCGC_ENOMEM;
}

int rcgc__handle_allocator_get(const insp_req *rq, insp_resp *rs)
{
    const char *format;
    if (rcgc__query_choice(rq, rs, "format", "json text", "json", &format) != 0)
        return -1;
    if (strcmp(format, "text") == 0) {
        text_call c = {NULL, 0, 0};
        if (rcgc__inspect_walk(rs, rq->heap, text_walk, &c) != 0) {
            free(c.text);
            return -1;
        }
        if (c.err != 0 || c.text == NULL) {
            free(c.text);
            return rcgc__reply_error(rs, 500, "internal_error", "the statistics failed: %s",
                                     rcgc_strerror(c.err));
        }
        return rcgc__reply_raw(rs, 200, "text/plain; charset=utf-8", c.text, c.len);
    }
    insp_snap *snap;
    if (rcgc__snap_get_reply(rq->heap, 0, &snap, rs) != 0)
        return -1;
    json_t *o = allocator_json(rq->heap, &snap->s);
    rcgc__snap_free(snap);
    return rcgc__reply_json(rs, 200, o);
}
