/* pprof.c: pprof profiles (profile.proto) built in memory, serialized with a small
 * protobuf writer and gzipped with a small DEFLATE encoder (see pprof.h).
 *
 * Atomicity: a call that can fail first reserves everything it may need (string bytes,
 * table slots, the sample's bytes), then interns and writes without a further allocation,
 * so that a failure leaves the profile exactly as it was. */
#include "pprof.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rcgc/rcgc.h>

/* The allocator. A test may define these before including this file, to count
 * allocations and inject failures; the library uses libc. */
#ifndef PPROF_MALLOC
#define PPROF_MALLOC(n) malloc(n)
#define PPROF_CALLOC(k, n) calloc(k, n)
#define PPROF_REALLOC(q, n) realloc(q, n)
#define PPROF_FREE(q) free(q)
#endif

#define PPROF_MAX_ENTRIES ((size_t)INT32_MAX) /* strings, functions, locations each */
#define PPROF_UNKNOWN "<unknown>"
#define PPROF_I64_DIGITS 20 /* strlen("-9223372036854775808") */

/* Protobuf wire types. */
enum { WIRE_VARINT = 0, WIRE_LEN = 2 };

/* ---- growable byte buffers ---- */

/* Bytes being written. Once an allocation failed, `failed` is set and later writes are
 * dropped: a writer checks once at the end. */
typedef struct pbuf {
    unsigned char *data;
    size_t len, cap;
    bool failed;
} pbuf;

/* Ensures room for extra more bytes. Returns: 0 or RCGC_ENOMEM (b unchanged). */
static int buf_reserve(pbuf *b, size_t extra)
{
    if (extra <= b->cap - b->len)
        return 0;
    if (extra > SIZE_MAX / 2 - b->len)
        return RCGC_ENOMEM;
    size_t need = b->len + extra;
    size_t ncap = b->cap ? b->cap : 256;
    while (ncap < need)
        ncap *= 2;
    unsigned char *d = PPROF_REALLOC(b->data, ncap);
    if (d == NULL)
        return RCGC_ENOMEM;
    b->data = d;
    b->cap = ncap;
    return 0;
}

static void put_bytes(pbuf *b, const void *src, size_t n)
{
    if (b->failed || n == 0)
        return;
    if (buf_reserve(b, n) != 0) {
        b->failed = true;
        return;
    }
    memcpy(b->data + b->len, src, n);
    b->len += n;
}

static void put_byte(pbuf *b, unsigned v)
{
    unsigned char c = (unsigned char)v;
    put_bytes(b, &c, 1);
}

/* ---- protobuf ---- */

static size_t varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* A negative int64 goes through (uint64_t): ten bytes of two's complement, as
 * profile.proto's int64 fields (not sint64) require. */
static void put_varint(pbuf *b, uint64_t v)
{
    unsigned char tmp[10];
    size_t n = 0;
    while (v >= 0x80) {
        tmp[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    tmp[n++] = (unsigned char)v;
    put_bytes(b, tmp, n);
}

static uint64_t tag_of(unsigned field, unsigned wire)
{
    return (uint64_t)field << 3 | wire;
}

/* Size of a varint field; proto3 leaves a zero out. */
static size_t field_size(unsigned field, uint64_t v)
{
    return v == 0 ? 0 : varint_size(tag_of(field, WIRE_VARINT)) + varint_size(v);
}

static void put_field(pbuf *b, unsigned field, uint64_t v)
{
    if (v == 0)
        return;
    put_varint(b, tag_of(field, WIRE_VARINT));
    put_varint(b, v);
}

/* The tag and length of an embedded message or string of len bytes. */
static void put_len_header(pbuf *b, unsigned field, size_t len)
{
    put_varint(b, tag_of(field, WIRE_LEN));
    put_varint(b, len);
}

/* Size of a field of len bytes, header included. */
static size_t len_field_size(unsigned field, size_t len)
{
    return varint_size(tag_of(field, WIRE_LEN)) + varint_size(len) + len;
}

/* A packed repeated varint field (nothing when n is 0). */
static void put_packed(pbuf *b, unsigned field, const uint64_t *v, size_t n)
{
    if (n == 0)
        return;
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += varint_size(v[i]);
    put_len_header(b, field, len);
    for (size_t i = 0; i < n; i++)
        put_varint(b, v[i]);
}

/* ---- hash tables of entry indices ---- */

/* Open addressing over entries 0..n-1 kept by the owner; the table keeps each entry's
 * hash so that it can grow without looking at the entries. Invariants: nslots is 0 or a
 * power of two, at least twice n; slots[i] is 0 (empty) or entry + 1. */
typedef struct ptable {
    uint32_t *slots;
    size_t nslots;
    uint32_t *hashes; /* hashes[e]: the hash of entry e; hashes_cap entries */
    size_t hashes_cap;
    size_t n;
} ptable;

/* Makes room for extra more entries. Returns: 0, RCGC_EINVAL (over PPROF_MAX_ENTRIES) or
 * RCGC_ENOMEM; t is unchanged on error except for grown (still valid) arrays. */
static int table_reserve(ptable *t, size_t extra)
{
    if (extra > PPROF_MAX_ENTRIES - t->n)
        return RCGC_EINVAL;
    size_t need = t->n + extra;
    if (need > SIZE_MAX / 8)
        return RCGC_ENOMEM; /* nslots below would overflow (32-bit size_t) */
    if (need > t->hashes_cap) {
        size_t ncap = t->hashes_cap ? t->hashes_cap * 2 : 64;
        if (ncap < need)
            ncap = need;
        uint32_t *h = PPROF_REALLOC(t->hashes, ncap * sizeof *h);
        if (h == NULL)
            return RCGC_ENOMEM;
        t->hashes = h;
        t->hashes_cap = ncap;
    }
    if (need * 2 <= t->nslots)
        return 0;
    size_t nslots = t->nslots ? t->nslots : 128;
    while (nslots < need * 2)
        nslots *= 2;
    uint32_t *s = PPROF_CALLOC(nslots, sizeof *s);
    if (s == NULL)
        return RCGC_ENOMEM;
    for (size_t e = 0; e < t->n; e++) {
        size_t i = t->hashes[e] & (nslots - 1);
        while (s[i] != 0)
            i = (i + 1) & (nslots - 1);
        s[i] = (uint32_t)(e + 1);
    }
    PPROF_FREE(t->slots);
    t->slots = s;
    t->nslots = nslots;
    return 0;
}

/* Adds entry t->n with hash h in the empty slot i a probe ended on (room reserved). */
static uint32_t table_insert(ptable *t, size_t i, uint32_t h)
{
    uint32_t e = (uint32_t)t->n++;
    t->hashes[e] = h;
    t->slots[i] = e + 1;
    return e;
}

static void table_free(ptable *t)
{
    PPROF_FREE(t->slots);
    PPROF_FREE(t->hashes);
}

static uint32_t hash_bytes(const void *s, size_t n, uint32_t h)
{
    const unsigned char *c = s;
    for (size_t i = 0; i < n; i++)
        h = (h ^ c[i]) * 16777619u; /* FNV-1a */
    return h;
}

static uint32_t hash_u64(uint32_t h, uint64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    return hash_bytes(b, sizeof b, h);
}

#define HASH_SEED 2166136261u

/* ---- the profile ---- */

typedef struct pstr {
    size_t off, len; /* in chars; not NUL-terminated */
} pstr;

typedef struct pfunc {
    uint32_t name, file; /* string indices */
} pfunc;

typedef struct ploc {
    uint32_t func; /* function index (id - 1) */
    int64_t line;
} ploc;

typedef struct pvaluetype {
    uint32_t type, unit;
} pvaluetype;

struct rcgc__pprof {
    char *chars; /* the bytes of every string, back to back */
    size_t chars_len, chars_cap;
    pstr *strs; /* string_table; strs[0] is "" */
    size_t strs_cap;
    ptable str_index;

    pfunc *funcs; /* Function id i + 1 */
    size_t funcs_cap;
    ptable func_index;

    ploc *locs; /* Location id i + 1 */
    size_t locs_cap;
    ptable loc_index;

    pvaluetype *types; /* sample_type */
    size_t ntypes, types_cap;
    bool has_default;
    size_t default_type; /* index into types */

    pvaluetype period_type; /* {0, 0}: none */
    int64_t period;
    int64_t time_nanos, duration_nanos;

    uint32_t *comments;
    size_t ncomments, comments_cap;

    pbuf samples; /* every Sample, encoded as Profile field 2 */
    size_t nsamples;
    uint64_t *ids; /* scratch: one sample's location ids */
    size_t ids_cap;
};

/* Grows *arr (elements of size elem, capacity *cap) to hold need elements.
 * Returns: 0 or RCGC_ENOMEM (*arr unchanged). */
static int array_reserve(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap : 16;
    while (ncap < need)
        ncap *= 2;
    if (ncap > SIZE_MAX / elem)
        return RCGC_ENOMEM;
    void *q = PPROF_REALLOC(*arr, ncap * elem);
    if (q == NULL)
        return RCGC_ENOMEM;
    *arr = q;
    *cap = ncap;
    return 0;
}

/* *acc += x, or false on overflow. */
static bool add_size(size_t *acc, size_t x)
{
    if (x > SIZE_MAX - *acc)
        return false;
    *acc += x;
    return true;
}

/* Makes room for nstrings more strings holding nchars more bytes (each string's bytes
 * plus one for the NUL snprintf writes). Returns: 0, RCGC_EINVAL or RCGC_ENOMEM. */
static int strings_reserve(rcgc__pprof *p, size_t nstrings, size_t nchars)
{
    int rc = table_reserve(&p->str_index, nstrings);
    if (rc == 0)
        rc = array_reserve((void **)&p->strs, &p->strs_cap, p->str_index.n + nstrings,
                           sizeof *p->strs);
    if (rc == 0 && nchars > p->chars_cap - p->chars_len) {
        size_t need = p->chars_len;
        if (!add_size(&need, nchars))
            return RCGC_ENOMEM;
        rc = array_reserve((void **)&p->chars, &p->chars_cap, need, 1);
    }
    return rc;
}

/* Interns the len bytes written at the end of chars (room reserved). Returns: the
 * string's index; a string already present leaves chars as it was. */
static uint32_t intern_tail(rcgc__pprof *p, size_t len)
{
    const char *s = p->chars + p->chars_len;
    ptable *t = &p->str_index;
    uint32_t h = hash_bytes(s, len, HASH_SEED);
    size_t i = h & (t->nslots - 1);
    for (; t->slots[i] != 0; i = (i + 1) & (t->nslots - 1)) {
        uint32_t e = t->slots[i] - 1;
        if (t->hashes[e] == h && p->strs[e].len == len &&
            memcmp(p->chars + p->strs[e].off, s, len) == 0)
            return e;
    }
    p->strs[t->n] = (pstr){p->chars_len, len};
    p->chars_len += len;
    return table_insert(t, i, h);
}

/* Interns s (room for it reserved). Returns: its index. */
static uint32_t intern(rcgc__pprof *p, const char *s)
{
    size_t len = strlen(s);
    memcpy(p->chars + p->chars_len, s, len);
    return intern_tail(p, len);
}

/* Bytes strings_reserve needs for s. */
static size_t str_room(const char *s)
{
    return s == NULL ? 0 : strlen(s) + 1;
}

/* Interns a frame's Function (room reserved). Returns: its index. */
static uint32_t intern_function(rcgc__pprof *p, const rcgc__pprof_frame *f)
{
    uint32_t name;
    if (f->function != NULL) {
        name = intern(p, f->function);
    } else if (f->file != NULL) {
        /* "file:line"; the room was reserved with the NUL snprintf writes. */
        size_t room = p->chars_cap - p->chars_len;
        int k = snprintf(p->chars + p->chars_len, room, "%s:%" PRId64, f->file, f->line);
        name = intern_tail(p, k > 0 ? (size_t)k : 0);
    } else {
        name = intern(p, PPROF_UNKNOWN);
    }
    uint32_t file = f->file != NULL ? intern(p, f->file) : 0;

    ptable *t = &p->func_index;
    uint32_t h = hash_u64(hash_u64(HASH_SEED, name), file);
    size_t i = h & (t->nslots - 1);
    for (; t->slots[i] != 0; i = (i + 1) & (t->nslots - 1)) {
        uint32_t e = t->slots[i] - 1;
        if (t->hashes[e] == h && p->funcs[e].name == name && p->funcs[e].file == file)
            return e;
    }
    p->funcs[t->n] = (pfunc){name, file};
    return table_insert(t, i, h);
}

/* Interns a frame's Location (room reserved). Returns: its id (index + 1). */
static uint64_t intern_location(rcgc__pprof *p, const rcgc__pprof_frame *f)
{
    uint32_t func = intern_function(p, f);
    ptable *t = &p->loc_index;
    uint32_t h = hash_u64(hash_u64(HASH_SEED, func), (uint64_t)f->line);
    size_t i = h & (t->nslots - 1);
    for (; t->slots[i] != 0; i = (i + 1) & (t->nslots - 1)) {
        uint32_t e = t->slots[i] - 1;
        if (t->hashes[e] == h && p->locs[e].func == func && p->locs[e].line == f->line)
            return (uint64_t)e + 1;
    }
    p->locs[t->n] = (ploc){func, f->line};
    return (uint64_t)table_insert(t, i, h) + 1;
}

rcgc__pprof *rcgc__pprof_new(void)
{
    rcgc__pprof *p = PPROF_CALLOC(1, sizeof *p);
    if (p == NULL)
        return NULL;
    /* string_table[0] must be "". */
    if (strings_reserve(p, 1, 1) != 0) {
        rcgc__pprof_free(p);
        return NULL;
    }
    intern(p, "");
    return p;
}

void rcgc__pprof_free(rcgc__pprof *p)
{
    if (p == NULL)
        return;
    PPROF_FREE(p->chars);
    PPROF_FREE(p->strs);
    table_free(&p->str_index);
    PPROF_FREE(p->funcs);
    table_free(&p->func_index);
    PPROF_FREE(p->locs);
    table_free(&p->loc_index);
    PPROF_FREE(p->types);
    PPROF_FREE(p->comments);
    PPROF_FREE(p->samples.data);
    PPROF_FREE(p->ids);
    PPROF_FREE(p);
}

int rcgc__pprof_sample_type(rcgc__pprof *p, const char *type, const char *unit)
{
    if (p == NULL || type == NULL || unit == NULL)
        return RCGC_EINVAL;
    if (p->nsamples > 0)
        return RCGC_EBUSY;
    size_t nchars = str_room(type);
    if (!add_size(&nchars, str_room(unit)))
        return RCGC_ENOMEM;
    int rc = strings_reserve(p, 2, nchars);
    if (rc == 0)
        rc = array_reserve((void **)&p->types, &p->types_cap, p->ntypes + 1, sizeof *p->types);
    if (rc != 0)
        return rc;
    uint32_t t = intern(p, type);
    p->types[p->ntypes++] = (pvaluetype){t, intern(p, unit)};
    return 0;
}

int rcgc__pprof_default_sample_type(rcgc__pprof *p, size_t index)
{
    if (p == NULL || index >= p->ntypes)
        return RCGC_EINVAL;
    p->has_default = true;
    p->default_type = index;
    return 0;
}

int rcgc__pprof_period(rcgc__pprof *p, const char *type, const char *unit, int64_t period)
{
    if (p == NULL || type == NULL || unit == NULL)
        return RCGC_EINVAL;
    size_t nchars = str_room(type);
    if (!add_size(&nchars, str_room(unit)))
        return RCGC_ENOMEM;
    int rc = strings_reserve(p, 2, nchars);
    if (rc != 0)
        return rc;
    uint32_t t = intern(p, type);
    p->period_type = (pvaluetype){t, intern(p, unit)};
    p->period = period;
    return 0;
}

void rcgc__pprof_time(rcgc__pprof *p, int64_t time_nanos, int64_t duration_nanos)
{
    if (p == NULL)
        return;
    p->time_nanos = time_nanos;
    p->duration_nanos = duration_nanos;
}

int rcgc__pprof_comment(rcgc__pprof *p, const char *text)
{
    if (p == NULL || text == NULL)
        return RCGC_EINVAL;
    int rc = strings_reserve(p, 1, str_room(text));
    if (rc == 0)
        rc = array_reserve((void **)&p->comments, &p->comments_cap, p->ncomments + 1,
                           sizeof *p->comments);
    if (rc != 0)
        return rc;
    p->comments[p->ncomments++] = intern(p, text);
    return 0;
}

int rcgc__pprof_add(rcgc__pprof *p, const rcgc__pprof_frame *frames, size_t nframes,
                    const int64_t *values, size_t nvalues)
{
    return rcgc__pprof_add_labeled(p, frames, nframes, values, nvalues, NULL, 0);
}

/* Bytes of a Label's body (without its tag and length). */
static size_t label_body(const rcgc__pprof_label *l, uint32_t key, uint32_t str, uint32_t unit)
{
    size_t body = field_size(1, key) + field_size(2, str);
    if (l->str == NULL)
        body += field_size(3, (uint64_t)l->num) + field_size(4, unit);
    return body;
}

/* Writes one Label (Sample field 3). */
static void put_label(pbuf *b, const rcgc__pprof_label *l, uint32_t key, uint32_t str,
                      uint32_t unit)
{
    put_len_header(b, 3, label_body(l, key, str, unit));
    put_field(b, 1, key);
    put_field(b, 2, str);
    if (l->str == NULL) {
        put_field(b, 3, (uint64_t)l->num);
        put_field(b, 4, unit);
    }
}

/* The largest a label's string indices make it: 3 varints of at most 5 bytes, a num of at
 * most 10, tags of 1, a length of at most 10 (generous). */
#define LABEL_MAX_BYTES 48

int rcgc__pprof_add_labeled(rcgc__pprof *p, const rcgc__pprof_frame *frames, size_t nframes,
                            const int64_t *values, size_t nvalues,
                            const rcgc__pprof_label *labels, size_t nlabels)
{
    if (p == NULL || (frames == NULL && nframes > 0) || values == NULL ||
        (labels == NULL && nlabels > 0) || p->ntypes == 0 || nvalues != p->ntypes)
        return RCGC_EINVAL;
    for (size_t i = 0; i < nlabels; i++)
        if (labels[i].key == NULL)
            return RCGC_EINVAL;
    if (nframes > PPROF_MAX_ENTRIES || nlabels > PPROF_MAX_ENTRIES)
        return RCGC_EINVAL;

    /* Reserve: two strings per frame (name, file), three per label, their bytes; a
     * function and a location per frame; the sample's bytes; the scratch ids. */
    size_t nchars = 0;
    bool ok = true;
    for (size_t i = 0; i < nframes && ok; i++) {
        const rcgc__pprof_frame *f = &frames[i];
        if (f->function != NULL)
            ok = add_size(&nchars, str_room(f->function));
        else if (f->file != NULL)
            ok =
                add_size(&nchars, str_room(f->file)) && add_size(&nchars, 1 + PPROF_I64_DIGITS);
        else
            ok = add_size(&nchars, sizeof PPROF_UNKNOWN);
        ok = ok && add_size(&nchars, str_room(f->file));
    }
    for (size_t i = 0; i < nlabels && ok; i++)
        ok = add_size(&nchars, str_room(labels[i].key)) &&
             add_size(&nchars, str_room(labels[i].str)) &&
             add_size(&nchars, str_room(labels[i].num_unit));
    /* Sample bound: its tag and length, the two packed fields (headers of at most 11
     * bytes, ids of at most 5 bytes, values of at most 10), the labels. */
    size_t bound = 11 + 11 + 11;
    ok = ok && nframes <= SIZE_MAX / 8 && add_size(&bound, nframes * 5) &&
         nvalues <= SIZE_MAX / 16 && add_size(&bound, nvalues * 10) &&
         nlabels <= SIZE_MAX / 64 && add_size(&bound, nlabels * LABEL_MAX_BYTES);
    if (!ok)
        return RCGC_ENOMEM;
    int rc = strings_reserve(p, 2 * nframes + 3 * nlabels, nchars);
    if (rc == 0)
        rc = table_reserve(&p->func_index, nframes);
    if (rc == 0)
        rc = array_reserve((void **)&p->funcs, &p->funcs_cap, p->func_index.n + nframes,
                           sizeof *p->funcs);
    if (rc == 0)
        rc = table_reserve(&p->loc_index, nframes);
    if (rc == 0)
        rc = array_reserve((void **)&p->locs, &p->locs_cap, p->loc_index.n + nframes,
                           sizeof *p->locs);
    if (rc == 0)
        rc = array_reserve((void **)&p->ids, &p->ids_cap, nframes, sizeof *p->ids);
    if (rc == 0)
        rc = buf_reserve(&p->samples, bound);
    if (rc != 0)
        return rc;

    /* Nothing below allocates. */
    size_t ids_len = 0, values_len = 0;
    for (size_t i = 0; i < nframes; i++) {
        p->ids[i] = intern_location(p, &frames[i]);
        ids_len += varint_size(p->ids[i]);
    }
    for (size_t i = 0; i < nvalues; i++)
        values_len += varint_size((uint64_t)values[i]);
    size_t body = (nframes ? len_field_size(1, ids_len) : 0) + len_field_size(2, values_len);
    /* Label strings are interned before the sample's length is known: interning is
     * idempotent, so they are interned again (found) while writing. */
    for (size_t i = 0; i < nlabels; i++) {
        const rcgc__pprof_label *l = &labels[i];
        uint32_t key = intern(p, l->key);
        uint32_t str = l->str != NULL ? intern(p, l->str) : 0;
        uint32_t unit = l->str == NULL && l->num_unit != NULL ? intern(p, l->num_unit) : 0;
        body += len_field_size(3, label_body(l, key, str, unit));
    }
    pbuf *b = &p->samples;
    put_len_header(b, 2, body);
    put_packed(b, 1, p->ids, nframes);
    put_len_header(b, 2, values_len);
    for (size_t i = 0; i < nvalues; i++)
        put_varint(b, (uint64_t)values[i]);
    for (size_t i = 0; i < nlabels; i++) {
        const rcgc__pprof_label *l = &labels[i];
        uint32_t key = intern(p, l->key);
        uint32_t str = l->str != NULL ? intern(p, l->str) : 0;
        uint32_t unit = l->str == NULL && l->num_unit != NULL ? intern(p, l->num_unit) : 0;
        put_label(b, l, key, str, unit);
    }
    p->nsamples++;
    return 0;
}

/* ---- serialization ---- */

static void put_value_type(pbuf *b, unsigned field, pvaluetype vt)
{
    put_len_header(b, field, field_size(1, vt.type) + field_size(2, vt.unit));
    put_field(b, 1, vt.type);
    put_field(b, 2, vt.unit);
}

/* The one Mapping: id 1, symbolized (functions, file names, line numbers). */
static void put_mapping(pbuf *b)
{
    put_len_header(b, 3,
                   field_size(1, 1) + field_size(7, 1) + field_size(8, 1) + field_size(9, 1));
    put_field(b, 1, 1);
    put_field(b, 7, 1);
    put_field(b, 8, 1);
    put_field(b, 9, 1);
}

static void put_location(pbuf *b, uint64_t id, const ploc *l)
{
    size_t line = field_size(1, (uint64_t)l->func + 1) + field_size(2, (uint64_t)l->line);
    put_len_header(b, 4, field_size(1, id) + field_size(2, 1) + len_field_size(4, line));
    put_field(b, 1, id);
    put_field(b, 2, 1); /* mapping_id */
    put_len_header(b, 4, line);
    put_field(b, 1, (uint64_t)l->func + 1);
    put_field(b, 2, (uint64_t)l->line);
}

static void put_function(pbuf *b, uint64_t id, const pfunc *f)
{
    put_len_header(b, 5,
                   field_size(1, id) + field_size(2, f->name) + field_size(3, f->name) +
                       field_size(4, f->file));
    put_field(b, 1, id);
    put_field(b, 2, f->name);
    put_field(b, 3, f->name); /* system_name */
    put_field(b, 4, f->file);
}

int rcgc__pprof_encode(rcgc__pprof *p, unsigned char **out, size_t *len)
{
    if (p == NULL || out == NULL || len == NULL || p->ntypes == 0)
        return RCGC_EINVAL;
    pbuf b = {0};
    /* A first guess at the size, to save most of the regrowth. */
    size_t guess = p->samples.len;
    if (!add_size(&guess, p->chars_len) || !add_size(&guess, 64))
        return RCGC_ENOMEM;
    if (buf_reserve(&b, guess) != 0)
        return RCGC_ENOMEM;

    for (size_t i = 0; i < p->ntypes; i++)
        put_value_type(&b, 1, p->types[i]);
    put_bytes(&b, p->samples.data, p->samples.len);
    put_mapping(&b);
    for (size_t i = 0; i < p->loc_index.n; i++)
        put_location(&b, (uint64_t)i + 1, &p->locs[i]);
    for (size_t i = 0; i < p->func_index.n; i++)
        put_function(&b, (uint64_t)i + 1, &p->funcs[i]);
    for (size_t i = 0; i < p->str_index.n; i++) {
        put_len_header(&b, 6, p->strs[i].len);
        put_bytes(&b, p->chars + p->strs[i].off, p->strs[i].len);
    }
    put_field(&b, 9, (uint64_t)p->time_nanos);
    put_field(&b, 10, (uint64_t)p->duration_nanos);
    if (p->period_type.type != 0 || p->period_type.unit != 0)
        put_value_type(&b, 11, p->period_type);
    put_field(&b, 12, (uint64_t)p->period);
    for (size_t i = 0; i < p->ncomments; i++) {
        /* Unpacked: one tag per comment, which every reader accepts. */
        put_varint(&b, tag_of(13, WIRE_VARINT));
        put_varint(&b, p->comments[i]);
    }
    if (p->has_default)
        put_field(&b, 14, p->types[p->default_type].type);

    int rc = b.failed ? RCGC_ENOMEM : rcgc__pprof_gzip(b.data, b.len, out, len);
    PPROF_FREE(b.data);
    return rc;
}

/* ---- gzip (RFC 1952) and DEFLATE (RFC 1951) ---- */

#define DEFLATE_BLOCK 65535u /* input bytes per block: what one stored block holds */
#define WINDOW 32768u        /* the farthest a match may reach back */
#define HASH_BITS 15
#define MAX_CHAIN 128 /* candidates tried per position */
#define MIN_MATCH 3
#define MAX_MATCH 258
#define LAZY_BELOW 32 /* a match shorter than this is checked against the next one */

static const uint16_t len_base[29] = {3,  4,  5,  6,   7,   8,   9,   10,  11, 13,
                                      15, 17, 19, 23,  27,  31,  35,  43,  51, 59,
                                      67, 83, 99, 115, 131, 163, 195, 227, 258};
static const uint8_t len_extra[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                      2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
static const uint16_t dist_base[30] = {
    1,   2,   3,   4,   5,   7,    9,    13,   17,   25,   33,   49,   65,    97,    129,
    193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
static const uint8_t dist_extra[30] = {0, 0, 0, 0, 1, 1, 2, 2,  3,  3,  4,  4,  5,  5,  6,
                                       6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};

/* A parsed block: a literal (dist 0, lit the byte) or a match (len 3..258, dist
 * 1..32768). */
typedef struct token {
    uint16_t lit_or_len;
    uint16_t dist;
} token;

/* Bits written least significant first (RFC 1951 3.1.1). */
typedef struct bitw {
    pbuf *out;
    uint64_t bits;
    unsigned n; /* pending bits, < 8 between calls */
} bitw;

static void bits_put(bitw *w, uint32_t v, unsigned n)
{
    w->bits |= (uint64_t)(v & ((n < 32 ? (1u << n) : 0u) - 1u)) << w->n;
    w->n += n;
    while (w->n >= 8) {
        put_byte(w->out, (unsigned)(w->bits & 0xff));
        w->bits >>= 8;
        w->n -= 8;
    }
}

static void bits_align(bitw *w)
{
    if (w->n > 0)
        bits_put(w, 0, 8 - w->n);
}

/* A Huffman code goes most significant bit first: reversed into the LSB-first stream. */
static void put_code(bitw *w, uint32_t code, unsigned n)
{
    uint32_t r = 0;
    for (unsigned i = 0; i < n; i++)
        r |= ((code >> i) & 1u) << (n - 1 - i);
    bits_put(w, r, n);
}

/* The fixed literal/length code (RFC 1951 3.2.6). */
static void put_litlen(bitw *w, unsigned sym)
{
    if (sym < 144)
        put_code(w, 0x30 + sym, 8);
    else if (sym < 256)
        put_code(w, 0x190 + sym - 144, 9);
    else if (sym < 280)
        put_code(w, sym - 256, 7);
    else
        put_code(w, 0xc0 + sym - 280, 8);
}

static unsigned litlen_bits(unsigned sym)
{
    return sym < 144 ? 8 : sym < 256 ? 9 : sym < 280 ? 7 : 8;
}

/* Index of the largest base <= v. */
static unsigned code_of(const uint16_t *base, unsigned n, unsigned v)
{
    unsigned i = n - 1;
    while (base[i] > v)
        i--;
    return i;
}

static size_t token_bits(token t)
{
    if (t.dist == 0)
        return litlen_bits(t.lit_or_len);
    unsigned l = code_of(len_base, 29, t.lit_or_len);
    unsigned d = code_of(dist_base, 30, t.dist);
    return litlen_bits(257 + l) + len_extra[l] + 5 + dist_extra[d];
}

static void put_token(bitw *w, token t)
{
    if (t.dist == 0) {
        put_litlen(w, t.lit_or_len);
        return;
    }
    unsigned l = code_of(len_base, 29, t.lit_or_len);
    unsigned d = code_of(dist_base, 30, t.dist);
    put_litlen(w, 257 + l);
    bits_put(w, (uint32_t)(t.lit_or_len - len_base[l]), len_extra[l]);
    put_code(w, d, 5);
    bits_put(w, (uint32_t)(t.dist - dist_base[d]), dist_extra[d]);
}

/* LZ77 state over the whole input: head[h] and prev[pos % WINDOW] hold a position + 1 (0:
 * none), so that the chain of a hash runs from the newest position backwards. */
typedef struct lz {
    const unsigned char *in;
    size_t n;
    size_t *head;    /* 1 << HASH_BITS */
    size_t *prev;    /* WINDOW */
    size_t inserted; /* positions below this one are in the chains */
} lz;

static uint32_t hash3(const unsigned char *s)
{
    uint32_t v = (uint32_t)s[0] << 16 | (uint32_t)s[1] << 8 | s[2];
    return (v * 2654435761u) >> (32 - HASH_BITS);
}

/* Enters every position below pos into the chains. */
static void lz_insert_until(lz *z, size_t pos)
{
    for (; z->inserted < pos; z->inserted++) {
        size_t q = z->inserted;
        if (q + MIN_MATCH > z->n)
            continue;
        uint32_t h = hash3(z->in + q);
        z->prev[q % WINDOW] = z->head[h];
        z->head[h] = q + 1;
    }
}

/* The longest match for pos, ending by end, among earlier positions no more than
 * WINDOW back (every position below pos inserted, pos not). Returns: its length (0 when
 * shorter than MIN_MATCH), its distance in *dist. */
static size_t lz_match(const lz *z, size_t pos, size_t end, size_t *dist)
{
    size_t limit = end - pos < MAX_MATCH ? end - pos : MAX_MATCH;
    if (limit < MIN_MATCH)
        return 0;
    const unsigned char *s = z->in + pos;
    size_t best = MIN_MATCH - 1;
    size_t cand = z->head[hash3(s)];
    for (int chain = MAX_CHAIN; cand != 0 && chain > 0; chain--) {
        size_t c = cand - 1;
        if (pos - c > WINDOW)
            break;
        const unsigned char *t = z->in + c;
        if (t[best] == s[best]) {
            size_t l = 0;
            while (l < limit && t[l] == s[l])
                l++;
            if (l > best) {
                best = l;
                *dist = pos - c;
                if (l == limit)
                    break;
            }
        }
        size_t next = z->prev[c % WINDOW];
        if (next >= cand) /* a slot reused by a newer position: the chain ends */
            break;
        cand = next;
    }
    return best >= MIN_MATCH ? best : 0;
}

/* Compresses in[0..n) into w: blocks of DEFLATE_BLOCK input bytes, each fixed-Huffman or
 * stored, whichever is smaller. Returns: 0 or RCGC_ENOMEM. */
static int deflate_blocks(bitw *w, const unsigned char *in, size_t n)
{
    lz z = {in, n, NULL, NULL, 0};
    size_t ntok = n < DEFLATE_BLOCK ? n : DEFLATE_BLOCK;
    z.head = PPROF_CALLOC((size_t)1 << HASH_BITS, sizeof *z.head);
    z.prev = PPROF_MALLOC(WINDOW * sizeof *z.prev);
    token *tok = PPROF_MALLOC((ntok ? ntok : 1) * sizeof *tok);
    if (z.head == NULL || z.prev == NULL || tok == NULL) {
        PPROF_FREE(z.head);
        PPROF_FREE(z.prev);
        PPROF_FREE(tok);
        return RCGC_ENOMEM;
    }
    size_t start = 0;
    do {
        size_t end = n - start < DEFLATE_BLOCK ? n : start + DEFLATE_BLOCK;
        size_t k = 0, fixed_bits = 3 + 7; /* header, end of block */
        for (size_t pos = start; pos < end;) {
            lz_insert_until(&z, pos);
            size_t dist = 0;
            size_t len = lz_match(&z, pos, end, &dist);
            if (len > 0 && len < LAZY_BELOW && pos + 1 < end) {
                /* Lazy matching: a longer match one byte on wins over this one. */
                size_t dist1 = 0;
                lz_insert_until(&z, pos + 1);
                if (lz_match(&z, pos + 1, end, &dist1) > len)
                    len = 0;
            }
            if (len == 0) {
                tok[k] = (token){in[pos], 0};
                pos++;
            } else {
                tok[k] = (token){(uint16_t)len, (uint16_t)dist};
                pos += len;
            }
            fixed_bits += token_bits(tok[k++]);
        }
        unsigned last = end == n;
        size_t pad = (8 - (w->n + 3) % 8) % 8;
        size_t stored_bits = 3 + pad + 32 + 8 * (end - start);
        if (fixed_bits <= stored_bits) {
            bits_put(w, last | 1u << 1, 3);
            for (size_t i = 0; i < k; i++)
                put_token(w, tok[i]);
            put_litlen(w, 256);
        } else {
            uint32_t blen = (uint32_t)(end - start);
            bits_put(w, last, 3);
            bits_align(w);
            bits_put(w, blen, 16);
            bits_put(w, ~blen & 0xffffu, 16);
            put_bytes(w->out, in + start, end - start);
        }
        start = end;
    } while (start < n);
    bits_align(w);
    PPROF_FREE(z.head);
    PPROF_FREE(z.prev);
    PPROF_FREE(tok);
    return 0;
}

static uint32_t crc32_ieee(const unsigned char *s, size_t n)
{
    uint32_t table[256]; /* built per call: no mutable global, 2 KiB of work */
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
        table[i] = c;
    }
    uint32_t crc = 0xffffffffu;
    for (size_t i = 0; i < n; i++)
        crc = table[(crc ^ s[i]) & 0xff] ^ (crc >> 8);
    return crc ^ 0xffffffffu;
}

static void put_le32(pbuf *b, uint32_t v)
{
    unsigned char t[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    put_bytes(b, t, 4);
}

int rcgc__pprof_gzip(const unsigned char *in, size_t n, unsigned char **out, size_t *len)
{
    if (out == NULL || len == NULL || (in == NULL && n > 0))
        return RCGC_EINVAL;
    /* The bound of pprof.h: 10 + 8 bytes of header and trailer, at most 42 bits of
     * overhead per block, one byte of final padding. */
    size_t nblocks = n / DEFLATE_BLOCK + 1;
    pbuf b = {0};
    if (n > SIZE_MAX - 64 - 6 * nblocks || buf_reserve(&b, n + 6 * nblocks + 19) != 0)
        return RCGC_ENOMEM;
    static const unsigned char header[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff};
    put_bytes(&b, header, sizeof header);
    bitw w = {&b, 0, 0};
    int rc = deflate_blocks(&w, in, n);
    if (rc == 0) {
        put_le32(&b, crc32_ieee(in, n));
        put_le32(&b, (uint32_t)n); /* ISIZE: the length modulo 2^32 */
        rc = b.failed ? RCGC_ENOMEM : 0;
    }
    if (rc != 0) {
        PPROF_FREE(b.data);
        return rc;
    }
    *out = b.data;
    *len = b.len;
    return 0;
}
