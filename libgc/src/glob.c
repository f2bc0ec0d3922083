/* glob.c: file name patterns as Python's fnmatch.fnmatch reads them on POSIX (the
 * patterns of tracemalloc.Filter), compiled once and matched against many names.
 *
 * Python translates a pattern into a regular expression over code points: '*' any run,
 * '?' one code point, "[...]" a set where a leading '!' negates and a leading '^' is an
 * ordinary character, ranges are "a-b" (a range whose ends are reversed is dropped),
 * there are no POSIX classes ("[[:alpha:]]" is the set "[:alph" then ']'), a '[' without
 * its ']' is itself, and a backslash is never an escape. Names and patterns are decoded
 * as os.fsdecode decodes them: UTF-8, each byte of an invalid sequence becoming the code
 * point U+DC00 + byte (surrogateescape). */
#include "internal.h"

enum { T_LIT, T_ANY, T_STAR, T_SET, T_NSET, T_NEVER };

typedef struct {
    uint32_t lo, hi;
} grange;

typedef struct {
    uint8_t kind;
    uint32_t cp;           /* T_LIT */
    uint32_t first, count; /* T_SET, T_NSET: ranges[first..first+count) */
} gtok;

struct rcgc__glob {
    size_t ntok;
    gtok *tok;
    grange *ranges;
};

/* a hyphen that joins the two ends of a range (never a code point) */
#define RANGE_SEP UINT32_MAX

/* Decodes the code point at s (not at its end); *len gets its length in bytes. */
static uint32_t next_cp(const unsigned char *s, size_t *len)
{
    uint32_t b = s[0];
    *len = 1;
    if (b < 0x80)
        return b;
    size_t n = 0;
    uint32_t cp = 0, lo = 0x80, hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF) {
        n = 1;
        cp = b & 0x1F;
    } else if (b >= 0xE0 && b <= 0xEF) {
        n = 2;
        cp = b & 0x0F;
        lo = b == 0xE0 ? 0xA0 : 0x80; /* no overlong forms */
        hi = b == 0xED ? 0x9F : 0xBF; /* no surrogates */
    } else if (b >= 0xF0 && b <= 0xF4) {
        n = 3;
        cp = b & 0x07;
        lo = b == 0xF0 ? 0x90 : 0x80;
        hi = b == 0xF4 ? 0x8F : 0xBF; /* nothing past U+10FFFF */
    } else {
        return 0xDC00 + b;
    }
    for (size_t i = 1; i <= n; i++) {
        uint32_t c = s[i];
        if (c < lo || c > hi) /* also the terminating NUL */
            return 0xDC00 + b;
        cp = cp << 6 | (c & 0x3F);
        lo = 0x80;
        hi = 0xBF;
    }
    *len = n + 1;
    return cp;
}

/* The code points of s, in cps (room for strlen(s)); returns how many. */
static size_t decode(const char *s, uint32_t *cps)
{
    size_t n = 0, len;
    for (const unsigned char *p = (const unsigned char *)s; *p != 0; p += len)
        cps[n++] = next_cp(p, &len);
    return n;
}

size_t rcgc__glob_size(const char *pattern)
{
    /* per byte of the pattern (at least one per code point): a token, a range and two
     * scratch code points (the pattern decoded, a set being built) */
    const size_t per = sizeof(gtok) + sizeof(grange) + 2 * sizeof(uint32_t);
    size_t n = strlen(pattern);
    if (n >= (SIZE_MAX - sizeof(rcgc__glob)) / per)
        return 0;
    return sizeof(rcgc__glob) + n * per;
}

/* The set of the class whose text is p[0..n), n > 0 (without '[' and ']'), as Python's
 * fnmatch.translate builds it: range hyphens are looked for from the second code point on
 * (the third after a '!'), the next one three code points past the last found, and a
 * hyphen just before ']' is itself; then, from the last range to the first, a range whose
 * low end is above its high end is removed with both its ends (its neighbours are not
 * looked at again). A '!' first in what is left negates; "!" alone is any code point,
 * nothing left is no code point. work has room for n code points. Appends the set's
 * ranges to g and returns its token. */
static gtok compile_set(rcgc__glob *g, size_t *nranges, const uint32_t *p, size_t n,
                        uint32_t *work)
{
    size_t w = 0, next = p[0] == '!' ? 2 : 1;
    for (size_t k = 0; k < n; k++) {
        if (p[k] == '-' && k >= next && k + 1 < n) {
            work[w++] = RANGE_SEP;
            next = k + 3;
        } else {
            work[w++] = p[k];
        }
    }
    for (size_t k = w; k-- > 1;) {
        if (work[k] != RANGE_SEP || k + 1 >= w || work[k - 1] == RANGE_SEP ||
            work[k + 1] == RANGE_SEP || work[k - 1] <= work[k + 1])
            continue;
        memmove(&work[k - 1], &work[k + 2], (w - k - 2) * sizeof *work);
        w -= 3;
        k--; /* on to the range before the one removed */
    }
    bool neg = w > 0 && work[0] == '!';
    gtok t = {.kind = neg ? T_NSET : T_SET, .cp = 0, .first = (uint32_t)*nranges, .count = 0};
    if (w == 0 || (neg && w == 1)) {
        t.kind = w == 0 ? T_NEVER : T_ANY;
        return t;
    }
    for (size_t k = neg ? 1 : 0; k < w; k++) {
        grange r = {work[k], work[k]};
        if (work[k] == RANGE_SEP) { /* a hyphen where no range can start: itself */
            r.lo = r.hi = '-';
        } else if (k + 2 < w && work[k + 1] == RANGE_SEP && work[k + 2] != RANGE_SEP) {
            r.hi = work[k + 2];
            k += 2;
        }
        g->ranges[(*nranges)++] = r;
        t.count++;
    }
    return t;
}

rcgc__glob *rcgc__glob_compile(const char *pattern, void *mem)
{
    size_t bytes = strlen(pattern);
    rcgc__glob *g = mem;
    g->tok = (gtok *)(void *)(g + 1);
    g->ranges = (grange *)(void *)(g->tok + bytes);
    uint32_t *p = (uint32_t *)(void *)(g->ranges + bytes);
    uint32_t *work = p + bytes;
    size_t n = decode(pattern, p), nranges = 0;
    g->ntok = 0;
    for (size_t i = 0; i < n;) {
        uint32_t c = p[i++];
        gtok t = {.kind = T_LIT, .cp = c, .first = 0, .count = 0};
        if (c == '*') {
            if (g->ntok > 0 && g->tok[g->ntok - 1].kind == T_STAR)
                continue;
            t.kind = T_STAR;
        } else if (c == '?') {
            t.kind = T_ANY;
        } else if (c == '[') {
            size_t j = i;
            if (j < n && p[j] == '!')
                j++;
            if (j < n && p[j] == ']')
                j++;
            while (j < n && p[j] != ']')
                j++;
            if (j < n) { /* else a '[' without its ']': itself */
                t = compile_set(g, &nranges, &p[i], j - i, work);
                i = j + 1;
            }
        }
        g->tok[g->ntok++] = t;
    }
    return g;
}

static bool tok_matches(const rcgc__glob *g, const gtok *t, uint32_t c)
{
    switch (t->kind) {
    case T_LIT:
        return c == t->cp;
    case T_ANY:
        return true;
    case T_SET:
    case T_NSET:
        for (uint32_t i = 0; i < t->count; i++) {
            const grange *r = &g->ranges[t->first + i];
            if (c >= r->lo && c <= r->hi)
                return t->kind == T_SET;
        }
        return t->kind == T_NSET;
    default:
        return false;
    }
}

bool rcgc__glob_match(const rcgc__glob *g, const char *name)
{
    /* every token but '*' takes one code point: on a mismatch, the last '*' takes one
     * more and the match resumes after it */
    const unsigned char *s = (const unsigned char *)name, *star_s = NULL;
    size_t t = 0, star_t = 0, len;
    while (*s != 0) {
        if (t < g->ntok && g->tok[t].kind == T_STAR) {
            star_t = ++t;
            star_s = s;
            continue;
        }
        uint32_t c = next_cp(s, &len);
        if (t < g->ntok && tok_matches(g, &g->tok[t], c)) {
            t++;
            s += len;
            continue;
        }
        if (star_s == NULL)
            return false;
        (void)next_cp(star_s, &len);
        star_s += len;
        s = star_s;
        t = star_t;
    }
    while (t < g->ntok && g->tok[t].kind == T_STAR)
        t++;
    return t == g->ntok;
}
