/* suspects.c: scoring the growth of each type's (or site's) live count across
 * collections; see suspects.h.
 *
 * The judgement over a key's window of n samples c[0..n-1]:
 *  - the least-squares line through (i, c[i]) gives the slope and its fit r2;
 *  - monotone is the fraction of steps with c[i+1] >= c[i];
 *  - the last third of the window tells whether growth goes on: a key that grew but
 *    whose every sample of the last third stayed within 2% (and at least one object) of
 *    its peak has levelled off: BOUNDED, the signature of a cache that filled up;
 *  - UNBOUNDED needs slope > 0, r2 >= 0.6, monotone >= 0.5 and growth in the last third;
 *    its score is slope * r2 * monotone: steady fast growth ranks first. */
#include "suspects.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *key;
    size_t ring[RCGC_SUSPECTS_WINDOW];
    size_t n;         /* samples held, <= WINDOW */
    size_t head;      /* index of the oldest sample */
    uint64_t seen_in; /* the sample number that last added it */
} series;

struct suspects {
    series *tab; /* open addressing on key */
    size_t cap, len;
    uint64_t sample; /* samples begun */
    suspect *ranked;
    size_t ranked_cap;
};

static size_t hash_key(const char *k)
{
    size_t h = 1469598103934665603u;
    for (; *k; k++)
        h = (h ^ (unsigned char)*k) * 1099511628211u;
    return h;
}

suspects *rcgc__suspects_new(void)
{
    return calloc(1, sizeof(suspects));
}

void rcgc__suspects_free(suspects *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->cap; i++)
        free(s->tab[i].key);
    free(s->tab);
    free(s->ranked);
    free(s);
}

size_t rcgc__suspects_samples(const suspects *s)
{
    return (size_t)s->sample;
}

static void push(series *se, size_t count)
{
    if (se->n < RCGC_SUSPECTS_WINDOW) {
        se->ring[(se->head + se->n) % RCGC_SUSPECTS_WINDOW] = count;
        se->n++;
    } else {
        se->ring[se->head] = count;
        se->head = (se->head + 1) % RCGC_SUSPECTS_WINDOW;
    }
}

static int grow(suspects *s)
{
    size_t ncap = s->cap ? s->cap * 2 : 64;
    series *nt = calloc(ncap, sizeof *nt);
    if (nt == NULL)
        return -1;
    for (size_t i = 0; i < s->cap; i++) {
        if (s->tab[i].key == NULL)
            continue;
        size_t j = hash_key(s->tab[i].key) & (ncap - 1);
        while (nt[j].key != NULL)
            j = (j + 1) & (ncap - 1);
        nt[j] = s->tab[i];
    }
    free(s->tab);
    s->tab = nt;
    s->cap = ncap;
    return 0;
}

void rcgc__suspects_begin(suspects *s)
{
    s->sample++;
}

int rcgc__suspects_add(suspects *s, const char *key, size_t count)
{
    if ((s->len + 1) * 2 > s->cap && grow(s) != 0)
        return -1;
    size_t j = hash_key(key) & (s->cap - 1);
    while (s->tab[j].key != NULL && strcmp(s->tab[j].key, key) != 0)
        j = (j + 1) & (s->cap - 1);
    series *se = &s->tab[j];
    if (se->key == NULL) {
        size_t n = strlen(key) + 1;
        if ((se->key = malloc(n)) == NULL)
            return -1;
        memcpy(se->key, key, n);
        s->len++;
        /* A key that appears late had 0 objects in the samples before. */
        for (uint64_t k = s->sample > RCGC_SUSPECTS_WINDOW ? s->sample - RCGC_SUSPECTS_WINDOW
                                                           : 1;
             k < s->sample; k++)
            push(se, 0);
    }
    if (se->seen_in == s->sample) {
        /* The same key twice in one sample (two sites of a name): add up. */
        size_t last = (se->head + se->n - 1) % RCGC_SUSPECTS_WINDOW;
        se->ring[last] += count;
        return 0;
    }
    se->seen_in = s->sample;
    push(se, count);
    return 0;
}

void rcgc__suspects_end(suspects *s)
{
    for (size_t i = 0; i < s->cap; i++) {
        series *se = &s->tab[i];
        if (se->key != NULL && se->seen_in != s->sample) {
            se->seen_in = s->sample;
            push(se, 0);
        }
    }
}

static size_t at(const series *se, size_t i)
{
    return se->ring[(se->head + i) % RCGC_SUSPECTS_WINDOW];
}

static void judge(const series *se, suspect *out)
{
    size_t n = se->n;
    double sx = 0, sy = 0, sxx = 0, sxy = 0, syy = 0;
    size_t up = 0, peak = 0;
    for (size_t i = 0; i < n; i++) {
        double x = (double)i, y = (double)at(se, i);
        sx += x;
        sy += y;
        sxx += x * x;
        sxy += x * y;
        syy += y * y;
        if (i > 0 && at(se, i) >= at(se, i - 1))
            up++;
        if (at(se, i) > peak)
            peak = at(se, i);
    }
    double dn = (double)n;
    double vx = sxx - sx * sx / dn, vy = syy - sy * sy / dn, cxy = sxy - sx * sy / dn;
    out->key = se->key;
    out->samples = n;
    out->first = at(se, 0);
    out->last = at(se, n - 1);
    out->peak = peak;
    out->slope = vx > 0 ? cxy / vx : 0;
    out->r2 = (vx > 0 && vy > 0) ? (cxy * cxy) / (vx * vy) : 0;
    out->monotone = n > 1 ? (double)up / (double)(n - 1) : 1;
    out->score = 0;

    size_t third = n / 3 > 0 ? n / 3 : 1;
    size_t recent_from = at(se, n - 1 - third);
    double tolerance = fmax(1.0, 0.02 * (double)peak);
    bool grew = out->last > out->first || peak > out->first;
    bool still_growing = (double)out->last > (double)recent_from + tolerance;
    bool level = true; /* every sample of the last third within tolerance of the peak */
    for (size_t i = n - 1 - third; i < n && level; i++)
        level = (double)peak - (double)at(se, i) <= tolerance;
    if (!grew || out->slope <= 0) {
        out->kind = vy > 0 ? SUSPECT_FLUCTUATING : SUSPECT_FLAT;
        if (!grew && peak == out->first && out->last == out->first)
            out->kind = SUSPECT_FLAT;
    } else if (still_growing && out->r2 >= 0.6 && out->monotone >= 0.5) {
        out->kind = SUSPECT_UNBOUNDED;
        out->score = out->slope * out->r2 * out->monotone;
    } else if (level) {
        out->kind = SUSPECT_BOUNDED;
    } else {
        out->kind = SUSPECT_FLUCTUATING;
    }
}

static int by_suspicion(const void *a, const void *b)
{
    const suspect *x = a, *y = b;
    if (x->kind != y->kind)
        return (int)x->kind - (int)y->kind;
    if (x->score != y->score)
        return x->score < y->score ? 1 : -1;
    double gx = (double)x->last - (double)x->first, gy = (double)y->last - (double)y->first;
    if (gx != gy)
        return gx < gy ? 1 : -1;
    return strcmp(x->key, y->key);
}

size_t rcgc__suspects_rank(suspects *s, suspect *out, size_t max)
{
    if (s->ranked_cap < s->len) {
        suspect *r = realloc(s->ranked, s->len * sizeof *r);
        if (r == NULL)
            return 0;
        s->ranked = r;
        s->ranked_cap = s->len;
    }
    size_t k = 0;
    for (size_t i = 0; i < s->cap; i++)
        if (s->tab[i].key != NULL && s->tab[i].n >= RCGC_SUSPECTS_MIN)
            judge(&s->tab[i], &s->ranked[k++]);
    qsort(s->ranked, k, sizeof *s->ranked, by_suspicion);
    if (out != NULL && max > 0 && k > 0)
        memcpy(out, s->ranked, (k < max ? k : max) * sizeof *out);
    return k;
}

const char *rcgc__suspect_kind_name(suspect_kind k)
{
    switch (k) {
    case SUSPECT_UNBOUNDED:
        return "unbounded";
    case SUSPECT_BOUNDED:
        return "bounded";
    case SUSPECT_FLUCTUATING:
        return "fluctuating";
    default:
        return "flat";
    }
}
