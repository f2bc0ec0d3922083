/* suspects.h: leak suspects — which types (or allocation sites) keep growing across
 * collections, scored, with steady unbounded growth told apart from a bounded cache
 * that filled up and from noise. Pure bookkeeping: no HTTP, no JSON, no rcgc calls.
 *
 * The server feeds one sample per observed collection (the census of a fresh snapshot);
 * each key keeps its last RCGC_SUSPECTS_WINDOW samples. Not thread-safe: the caller
 * serialises (the server holds its own lock). */
#ifndef RCGC_INSPECTD_SUSPECTS_H
#define RCGC_INSPECTD_SUSPECTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RCGC_SUSPECTS_WINDOW 64 /* samples kept per key */
#define RCGC_SUSPECTS_MIN 4     /* samples needed before a key is judged */

typedef struct suspects suspects;

typedef enum {
    SUSPECT_UNBOUNDED,   /* grows steadily, still growing: a leak */
    SUSPECT_BOUNDED,     /* grew, then levelled off: a cache that filled up */
    SUSPECT_FLUCTUATING, /* goes up and down: working set, not a leak */
    SUSPECT_FLAT         /* no growth */
} suspect_kind;

typedef struct {
    const char *key; /* borrowed from the tracker; valid until the next call on it */
    suspect_kind kind;
    double score;             /* objects gained per sample, weighted by how steady; 0 unless
                                 UNBOUNDED */
    double slope;             /* least-squares objects per sample over the window */
    double r2;                /* fit of that line, 0..1 */
    double monotone;          /* fraction of steps that did not go down */
    size_t first, last, peak; /* counts: oldest sample in the window, newest, highest */
    size_t samples;
} suspect;

/* Returns: a new tracker, or NULL when memory runs out. */
suspects *rcgc__suspects_new(void);
void rcgc__suspects_free(suspects *s); /* NULL is a no-op */

/* One sample: begin, then add(key, count) for every key present, then end. A key not
 * added in a sample counts as 0 in it. Returns 0, or -1 when memory ran out (the key
 * is then missing from that sample). */
void rcgc__suspects_begin(suspects *s);
int rcgc__suspects_add(suspects *s, const char *key, size_t count);
void rcgc__suspects_end(suspects *s);

/* Returns: the number of samples taken. */
size_t rcgc__suspects_samples(const suspects *s);

/* Judges every key with enough samples and writes up to max of them to out, best
 * suspects first (UNBOUNDED by score, then BOUNDED, FLUCTUATING, FLAT by growth).
 * Returns: how many keys were judged (may exceed max). */
size_t rcgc__suspects_rank(suspects *s, suspect *out, size_t max);

/* Returns: "unbounded", "bounded", "fluctuating" or "flat". */
const char *rcgc__suspect_kind_name(suspect_kind k);

#endif /* RCGC_INSPECTD_SUSPECTS_H */
