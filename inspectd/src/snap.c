/* snap.c: reading what heap owners publish. A snapshot is copied out while the
 * registry lock is held (a few memcpy's, O(types + sites)), names included, so that
 * handlers build their answers without holding anything an owner may wait for. */
#define _POSIX_C_SOURCE 200809L

#include "internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct copy_job {
    unsigned what;
    insp_snap *out; /* NULL: out of memory */
} copy_job;

static size_t str_size(const char *s)
{
    return s != NULL ? strlen(s) + 1 : 1;
}

/* Copies s into *pool (advancing it) and returns the copy. */
static const char *pool_copy(char **pool, const char *s)
{
    char *d = *pool;
    size_t n = str_size(s);
    if (s != NULL)
        memcpy(d, s, n);
    else
        d[0] = '\0';
    *pool += n;
    return d;
}

/* Under the registry lock: one allocation holds the copy, its arrays and its strings. */
static int copy_snapshot(const rcgc__snapshot *s, void *arg)
{
    copy_job *job = arg;
    size_t ntypes = (job->what & INSP_SNAP_TYPES) ? s->ntypes : 0;
    size_t nsites = (job->what & INSP_SNAP_SITES) ? s->nsites : 0;
    size_t strings = 0;
    for (size_t i = 0; i < ntypes; i++)
        strings += str_size(s->types[i].name);
    for (size_t i = 0; i < nsites; i++)
        strings += str_size(s->sites[i].type ? s->sites[i].type->name : NULL) +
                   str_size(s->sites[i].file);
    size_t size =
        sizeof(insp_snap) + ntypes * sizeof(insp_type) + nsites * sizeof(insp_site) + strings;
    insp_snap *c = malloc(size);
    if (c == NULL)
        return 0;
    memset(c, 0, sizeof *c);
    c->s = *s;
    c->s.types = NULL;
    c->s.sites = NULL;
    c->types = (insp_type *)(void *)(c + 1);
    c->sites = (insp_site *)(void *)(c->types + ntypes);
    char *pool = (char *)(c->sites + nsites);
    for (size_t i = 0; i < ntypes; i++) {
        const rcgc_census_entry *e = &s->types[i];
        c->types[i] =
            (insp_type){e->type, pool_copy(&pool, e->name), e->count, e->bytes, e->tracked};
    }
    for (size_t i = 0; i < nsites; i++) {
        const rcgc__site_entry *e = &s->sites[i];
        const char *tname = pool_copy(&pool, e->type ? e->type->name : NULL);
        c->sites[i] =
            (insp_site){e->type, tname, pool_copy(&pool, e->file), e->line, e->count, e->bytes};
    }
    c->ntypes = ntypes;
    c->nsites = nsites;
    job->out = c;
    return 0;
}

/* A read-only call: the owner (or this thread, on a released heap) publishes now. */
static void publish_call(rcgc_heap *h, void *arg)
{
    (void)arg;
    (void)rcgc__snapshot_publish(h);
}

/* How long a request waits for an unpublished heap to publish before answering with
 * serial 0. */
#define FIRST_PUBLISH_TIMEOUT_NS 100000000u

int rcgc__snap_get(const char *heap, unsigned what, insp_snap **out)
{
    *out = NULL;
    for (int attempt = 0;; attempt++) {
        copy_job job = {what, NULL};
        int r = rcgc__snapshot_read(heap, copy_snapshot, &job);
        if (r == RCGC_ENOENT)
            return RCGC_ENOENT;
        if (job.out == NULL)
            return RCGC_ENOMEM;
        if (job.out->s.serial != 0 || attempt > 0) {
            *out = job.out;
            return 0;
        }
        /* Never published (the owner has not reached a safepoint since the inspector
         * started): ask for one publication, then read again. */
        rcgc__snap_free(job.out);
        uint64_t wait = (uint64_t)rcgc__insp_config()->walk_timeout_ms * 1000000u;
        if (wait > FIRST_PUBLISH_TIMEOUT_NS)
            wait = FIRST_PUBLISH_TIMEOUT_NS;
        (void)rcgc__heap_call(heap, publish_call, NULL, wait);
    }
}

void rcgc__snap_free(insp_snap *s)
{
    free(s);
}

int rcgc__snap_get_reply(const char *heap, unsigned what, insp_snap **out, insp_resp *rs)
{
    int r = rcgc__snap_get(heap, what, out);
    if (r == RCGC_ENOENT)
        return rcgc__reply_error(rs, 404, "heap_not_found", "no heap is called '%s'", heap);
    if (r != 0)
        return rcgc__reply_error(rs, 500, "internal_error", "out of memory");
    return 0;
}

/* ---- the list of heaps ---- */

typedef struct names_job {
    char **names;
    size_t n, cap;
    bool failed;
} names_job;

/* Under the registry lock. The name is immutable and the heap cannot be freed while
 * the lock is held (rcgc_heap_free unregisters under it). */
static int collect_name(rcgc_heap *h, void *arg)
{
    names_job *job = arg;
    const char *name = rcgc_heap_name(h);
    if (name == NULL || job->failed)
        return 0;
    for (size_t i = 0; i < job->n; i++)
        if (strcmp(job->names[i], name) == 0)
            return 0;
    if (job->n == job->cap) {
        size_t cap = job->cap ? job->cap * 2 : 8;
        char **p = realloc(job->names, cap * sizeof *p);
        if (p == NULL) {
            job->failed = true;
            return 0;
        }
        job->names = p;
        job->cap = cap;
    }
    size_t len = strlen(name) + 1;
    char *copy = malloc(len);
    if (copy == NULL) {
        job->failed = true;
        return 0;
    }
    memcpy(copy, name, len);
    job->names[job->n++] = copy;
    return 0;
}

int rcgc__heap_names(char ***names, size_t *n)
{
    names_job job = {0};
    (void)rcgc__heaps_foreach(collect_name, &job);
    if (job.failed) {
        rcgc__names_free(job.names, job.n);
        *names = NULL;
        *n = 0;
        return RCGC_ENOMEM;
    }
    *names = job.names;
    *n = job.n;
    return 0;
}

void rcgc__names_free(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}
