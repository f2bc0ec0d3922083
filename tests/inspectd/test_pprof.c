/* test_pprof.c: the pprof encoder (inspectd/src/pprof.c): gzip framing and DEFLATE
 * round trips through a small inflate of the test's own, the protobuf decoded with a
 * small reader and checked field by field, interning, argument errors, and every
 * allocation failing in turn (CTest inspectd.pprof).
 *
 * pprof.c is compiled into this file with its allocator macros bound to counting,
 * failure-injecting wrappers. Two modes serve tests/protocol/pprof_check.mjs (CTest
 * protocol.pprof, node:zlib and protobufjs): `test_pprof --profile OUT.pb.gz
 * OUT.json` writes a realistic profile and the JSON of what it holds, `test_pprof
 * --gzip` gzips stdin to stdout. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* ---- the allocator pprof.c uses: counted, and failing on request ---- */

static long alloc_live;         /* blocks handed out and not freed */
static long alloc_calls;        /* requests since arming */
static long alloc_fail_at = -1; /* the request to fail; -1: none */
static long alloc_injected;

static int inject(void)
{
    if (alloc_fail_at >= 0 && alloc_calls++ == alloc_fail_at) {
        alloc_injected++;
        return 1;
    }
    return 0;
}

static void *t_malloc(size_t n)
{
    void *q = inject() ? NULL : malloc(n);
    alloc_live += q != NULL;
    return q;
}

static void *t_calloc(size_t k, size_t n)
{
    void *q = inject() ? NULL : calloc(k, n);
    alloc_live += q != NULL;
    return q;
}

static void *t_realloc(void *p, size_t n)
{
    void *q = inject() ? NULL : realloc(p, n);
    alloc_live += p == NULL && q != NULL;
    return q;
}

static void t_free(void *p)
{
    alloc_live -= p != NULL;
    free(p);
}

static void arm(long n)
{
    alloc_calls = 0;
    alloc_injected = 0;
    alloc_fail_at = n;
}

#define PPROF_MALLOC(n) t_malloc(n)
#define PPROF_CALLOC(k, n) t_calloc(k, n)
#define PPROF_REALLOC(q, n) t_realloc(q, n)
#define PPROF_FREE(q) t_free(q)
#include "../../inspectd/src/pprof.c"

/* ---- inflate (stored and fixed-Huffman blocks: what pprof.c writes) ---- */

typedef struct inflater {
    const unsigned char *in;
    size_t n, pos;
    uint32_t bitbuf;
    unsigned bitcnt;
    unsigned char *out;
    size_t len, cap;
    int err;
} inflater;

static unsigned getbits(inflater *s, unsigned need)
{
    uint32_t v = s->bitbuf;
    while (s->bitcnt < need) {
        if (s->pos >= s->n) {
            s->err = 1;
            return 0;
        }
        v |= (uint32_t)s->in[s->pos++] << s->bitcnt;
        s->bitcnt += 8;
    }
    s->bitbuf = need < 32 ? v >> need : 0;
    s->bitcnt -= need;
    return need < 32 ? v & ((1u << need) - 1) : v;
}

static void emit(inflater *s, unsigned char c)
{
    if (s->len == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 1024;
        s->out = realloc(s->out, s->cap);
        assert_non_null(s->out);
    }
    s->out[s->len++] = c;
}

/* A canonical Huffman code: count[l] codes of length l, symbols in code order. */
typedef struct huff {
    short count[16];
    short symbol[288];
} huff;

static void huff_build(huff *h, const unsigned char *lengths, int n)
{
    short offs[16];
    memset(h->count, 0, sizeof h->count);
    for (int i = 0; i < n; i++)
        h->count[lengths[i]]++;
    offs[1] = 0;
    for (int l = 1; l < 15; l++)
        offs[l + 1] = (short)(offs[l] + h->count[l]);
    for (int i = 0; i < n; i++)
        if (lengths[i] != 0)
            h->symbol[offs[lengths[i]]++] = (short)i;
}

static int huff_decode(inflater *s, const huff *h)
{
    int code = 0, first = 0, index = 0;
    for (int l = 1; l < 16; l++) {
        code |= (int)getbits(s, 1);
        int count = h->count[l];
        if (code - count < first)
            return h->symbol[index + (code - first)];
        index += count;
        first = (first + count) << 1;
        code <<= 1;
    }
    s->err = 1;
    return -1;
}

/* Inflates a raw DEFLATE stream. Returns: 0, or non-zero for a malformed stream (a
 * dynamic-Huffman block counts as one: pprof.c never writes them). *used: bytes read. */
static int inflate_raw(const unsigned char *in, size_t n, unsigned char **out, size_t *len,
                       size_t *used)
{
    inflater s = {in, n, 0, 0, 0, NULL, 0, 0, 0};
    unsigned char lengths[288];
    huff lit, dist;
    for (int i = 0; i < 288; i++)
        lengths[i] = i < 144 ? 8 : i < 256 ? 9 : i < 280 ? 7 : 8;
    huff_build(&lit, lengths, 288);
    memset(lengths, 5, 30);
    huff_build(&dist, lengths, 30);
    unsigned last;
    do {
        last = getbits(&s, 1);
        unsigned type = getbits(&s, 2);
        if (type == 0) {
            s.bitbuf = 0;
            s.bitcnt = 0;
            if (s.pos + 4 > n)
                return 1;
            unsigned l = in[s.pos] | in[s.pos + 1] << 8;
            unsigned nl = in[s.pos + 2] | in[s.pos + 3] << 8;
            s.pos += 4;
            if ((l ^ 0xffffu) != nl || s.pos + l > n)
                return 1;
            for (unsigned i = 0; i < l; i++)
                emit(&s, in[s.pos++]);
        } else if (type == 1) {
            for (;;) {
                int sym = huff_decode(&s, &lit);
                if (s.err || sym < 0 || sym > 285)
                    return 1;
                if (sym < 256) {
                    emit(&s, (unsigned char)sym);
                    continue;
                }
                if (sym == 256)
                    break;
                sym -= 257;
                size_t l = len_base[sym] + getbits(&s, len_extra[sym]);
                int d = huff_decode(&s, &dist);
                if (s.err || d < 0 || d > 29)
                    return 1;
                size_t back = dist_base[d] + getbits(&s, dist_extra[d]);
                if (s.err || back > s.len)
                    return 1;
                for (size_t i = 0; i < l; i++)
                    emit(&s, s.out[s.len - back]);
            }
        } else {
            return 1;
        }
        if (s.err)
            return 1;
    } while (!last);
    *out = s.out;
    *len = s.len;
    *used = s.pos;
    return 0;
}

static uint32_t crc_bitwise(const unsigned char *s, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= s[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
    }
    return ~c;
}

static uint32_t le32(const unsigned char *s)
{
    return (uint32_t)s[0] | (uint32_t)s[1] << 8 | (uint32_t)s[2] << 16 | (uint32_t)s[3] << 24;
}

/* Checks a gzip member (header, DEFLATE, CRC-32 and ISIZE trailer, nothing after) and
 * returns its content (malloc'd). */
static unsigned char *gunzip(const unsigned char *gz, size_t n, size_t *len)
{
    static const unsigned char header[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff};
    assert_true(n >= 18);
    assert_memory_equal(gz, header, sizeof header);
    unsigned char *out = NULL;
    size_t used = 0;
    assert_int_equal(inflate_raw(gz + 10, n - 18, &out, len, &used), 0);
    assert_int_equal(10 + used + 8, n);
    assert_int_equal(le32(gz + n - 8), crc_bitwise(out, *len));
    assert_int_equal(le32(gz + n - 4), (uint32_t)*len);
    return out;
}

/* ---- gzip round trips ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 32);
}

enum { FILL_RANDOM, FILL_ZERO, FILL_TEXT, FILL_RUNS, FILL_KINDS };

static void fill(unsigned char *s, size_t n, int kind)
{
    static const char *words[] = {"alloc", "node", "heap.c:", "cycle ", "rcgc_", "\n", "4096"};
    size_t i = 0;
    while (i < n) {
        switch (kind) {
        case FILL_RANDOM:
            s[i++] = (unsigned char)rng();
            break;
        case FILL_ZERO:
            s[i++] = 0;
            break;
        case FILL_TEXT: {
            const char *w = words[rng() % 7];
            for (size_t k = 0; w[k] && i < n; k++)
                s[i++] = (unsigned char)w[k];
            break;
        }
        default: { /* runs of random length of a random byte, and random bytes */
            unsigned char c = (unsigned char)rng();
            size_t r = rng() % 600;
            for (size_t k = 0; k < r && i < n; k++)
                s[i++] = rng() % 8 ? c : (unsigned char)rng();
            break;
        }
        }
    }
}

static void roundtrip(const unsigned char *in, size_t n)
{
    unsigned char *gz = NULL;
    size_t gzlen = 0;
    assert_int_equal(rcgc__pprof_gzip(in, n, &gz, &gzlen), 0);
    /* The bound of pprof.h. */
    assert_true(gzlen <= n + 6 * (n / 65535 + 1) + 19);
    size_t len = 0;
    unsigned char *out = gunzip(gz, gzlen, &len);
    assert_int_equal(len, n);
    if (n > 0)
        assert_memory_equal(out, in, n);
    free(out);
    t_free(gz);
}

static void test_pprof_gzip_roundtrip(void **state)
{
    (void)state;
    static const size_t sizes[] = {0,     1,      2,      3,      4,      100,    257,
                                   1000,  32767,  32768,  32769,  65534,  65535,  65536,
                                   65537, 100000, 131070, 131071, 200000, 1 << 20};
    unsigned char *buf = malloc(1 << 20);
    assert_non_null(buf);
    for (int kind = 0; kind < FILL_KINDS; kind++) {
        for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
            fill(buf, sizes[i], kind);
            roundtrip(buf, sizes[i]);
        }
    }
    /* Every short length, of every kind. */
    for (size_t n = 0; n < 300; n++) {
        fill(buf, n, (int)(n % FILL_KINDS));
        roundtrip(buf, n);
    }
    free(buf);
    assert_int_equal(alloc_live, 0);
}

static void test_pprof_gzip_format(void **state)
{
    (void)state;
    unsigned char *gz = NULL;
    size_t len = 0;
    /* The empty input: one empty fixed block, as zlib writes it. */
    assert_int_equal(rcgc__pprof_gzip(NULL, 0, &gz, &len), 0);
    static const unsigned char empty[] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff,
                                          3,    0,    0, 0, 0, 0, 0, 0, 0, 0};
    assert_int_equal(len, sizeof empty);
    assert_memory_equal(gz, empty, sizeof empty);
    t_free(gz);
    /* "a" in a fixed block, CRC-32("a") = 0xe8b7be43. */
    assert_int_equal(rcgc__pprof_gzip((const unsigned char *)"a", 1, &gz, &len), 0);
    assert_int_equal(le32(gz + len - 8), 0xe8b7be43u);
    assert_int_equal(le32(gz + len - 4), 1);
    t_free(gz);
    /* Repetitive data compresses; random data costs at most the stored overhead. */
    unsigned char *buf = malloc(100000);
    assert_non_null(buf);
    memset(buf, 'x', 100000);
    assert_int_equal(rcgc__pprof_gzip(buf, 100000, &gz, &len), 0);
    assert_true(len < 1000);
    t_free(gz);
    fill(buf, 100000, FILL_RANDOM);
    assert_int_equal(rcgc__pprof_gzip(buf, 100000, &gz, &len), 0);
    assert_true(len <= 100000 + 2 * 5 + 18);
    t_free(gz);
    free(buf);
    assert_int_equal(rcgc__pprof_gzip(NULL, 1, &gz, &len), RCGC_EINVAL);
    assert_int_equal(rcgc__pprof_gzip(NULL, 0, NULL, &len), RCGC_EINVAL);
    assert_int_equal(rcgc__pprof_gzip(NULL, 0, &gz, NULL), RCGC_EINVAL);
    assert_int_equal(alloc_live, 0);
}

/* ---- a protobuf reader and the decoded profile ---- */

typedef struct rd {
    const unsigned char *p, *end;
} rd;

static uint64_t rd_varint(rd *r)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        assert_true(r->p < r->end);
        unsigned char c = *r->p++;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80))
            return v;
    }
    fail_msg("varint longer than 10 bytes");
    return 0;
}

/* Reads one field: its number, and either its varint (*v) or its bytes (*sub). */
static unsigned rd_field(rd *r, uint64_t *v, rd *sub)
{
    uint64_t tag = rd_varint(r);
    unsigned wire = (unsigned)(tag & 7);
    if (wire == 0) {
        *v = rd_varint(r);
    } else {
        assert_int_equal(wire, 2);
        uint64_t n = rd_varint(r);
        assert_true(n <= (uint64_t)(r->end - r->p));
        *sub = (rd){r->p, r->p + n};
        r->p += n;
    }
    return (unsigned)(tag >> 3) * 8 + wire;
}

#define F(field, wire) ((field)*8 + (wire))
#define MAXN 4096

/* Repeated varints: packed (LEN) or one per tag. */
static void rd_repeated(unsigned fw, uint64_t v, rd *sub, uint64_t *arr, size_t *n)
{
    if (fw % 8 == 0) {
        assert_true(*n < 64);
        arr[(*n)++] = v;
        return;
    }
    while (sub->p < sub->end) {
        assert_true(*n < 64);
        arr[(*n)++] = rd_varint(sub);
    }
}

typedef struct dsample {
    uint64_t loc[64];
    size_t nloc;
    uint64_t val[64];
    size_t nval;
    struct {
        uint64_t key, str, num, unit;
    } label[8];
    size_t nlabel;
} dsample;

typedef struct dprofile {
    char *str[MAXN];
    size_t nstr;
    uint64_t st_type[8], st_unit[8];
    size_t nst;
    dsample *sample;
    size_t nsample;
    uint64_t map_id, map_flags[11];
    size_t nmap;
    struct {
        uint64_t id, mapping, address, nline, func, line;
    } loc[MAXN];
    size_t nloc;
    struct {
        uint64_t id, name, system_name, filename, start_line;
    } fn[MAXN];
    size_t nfn;
    uint64_t time, duration, period_type, period_unit, period, default_type;
    uint64_t comment[16];
    size_t ncomment;
} dprofile;

static dprofile *decode(const unsigned char *pb, size_t n)
{
    dprofile *d = calloc(1, sizeof *d);
    assert_non_null(d);
    d->sample = calloc(MAXN, sizeof *d->sample);
    assert_non_null(d->sample);
    rd r = {pb, pb + n};
    while (r.p < r.end) {
        uint64_t v = 0;
        rd sub = {NULL, NULL}, s2;
        unsigned fw = rd_field(&r, &v, &sub);
        switch (fw) {
        case F(1, 2):
            assert_true(d->nst < 8);
            while (sub.p < sub.end) {
                unsigned f = rd_field(&sub, &v, &s2);
                if (f == F(1, 0))
                    d->st_type[d->nst] = v;
                else if (f == F(2, 0))
                    d->st_unit[d->nst] = v;
                else
                    fail_msg("ValueType field %u", f);
            }
            d->nst++;
            break;
        case F(2, 2): {
            assert_true(d->nsample < MAXN);
            dsample *s = &d->sample[d->nsample++];
            while (sub.p < sub.end) {
                unsigned f = rd_field(&sub, &v, &s2);
                if (f / 8 == 1) {
                    rd_repeated(f, v, &s2, s->loc, &s->nloc);
                } else if (f / 8 == 2) {
                    rd_repeated(f, v, &s2, s->val, &s->nval);
                } else if (f == F(3, 2)) {
                    assert_true(s->nlabel < 8);
                    while (s2.p < s2.end) {
                        rd s3;
                        uint64_t w = 0;
                        unsigned g = rd_field(&s2, &w, &s3);
                        if (g == F(1, 0))
                            s->label[s->nlabel].key = w;
                        else if (g == F(2, 0))
                            s->label[s->nlabel].str = w;
                        else if (g == F(3, 0))
                            s->label[s->nlabel].num = w;
                        else if (g == F(4, 0))
                            s->label[s->nlabel].unit = w;
                        else
                            fail_msg("Label field %u", g);
                    }
                    s->nlabel++;
                } else {
                    fail_msg("Sample field %u", f);
                }
            }
            break;
        }
        case F(3, 2):
            d->nmap++;
            while (sub.p < sub.end) {
                unsigned f = rd_field(&sub, &v, &s2);
                assert_int_equal(f % 8, 0);
                assert_true(f / 8 >= 1 && f / 8 <= 10);
                if (f / 8 == 1)
                    d->map_id = v;
                else
                    d->map_flags[f / 8] = v;
            }
            break;
        case F(4, 2):
            assert_true(d->nloc < MAXN);
            while (sub.p < sub.end) {
                unsigned f = rd_field(&sub, &v, &s2);
                if (f == F(1, 0)) {
                    d->loc[d->nloc].id = v;
                } else if (f == F(2, 0)) {
                    d->loc[d->nloc].mapping = v;
                } else if (f == F(3, 0)) {
                    d->loc[d->nloc].address = v;
                } else if (f == F(4, 2)) {
                    d->loc[d->nloc].nline++;
                    while (s2.p < s2.end) {
                        rd s3;
                        uint64_t w = 0;
                        unsigned g = rd_field(&s2, &w, &s3);
                        if (g == F(1, 0))
                            d->loc[d->nloc].func = w;
                        else if (g == F(2, 0))
                            d->loc[d->nloc].line = w;
                        else
                            fail_msg("Line field %u", g);
                    }
                } else {
                    fail_msg("Location field %u", f);
                }
            }
            d->nloc++;
            break;
        case F(5, 2):
            assert_true(d->nfn < MAXN);
            while (sub.p < sub.end) {
                unsigned f = rd_field(&sub, &v, &s2);
                switch (f) {
                case F(1, 0):
                    d->fn[d->nfn].id = v;
                    break;
                case F(2, 0):
                    d->fn[d->nfn].name = v;
                    break;
                case F(3, 0):
                    d->fn[d->nfn].system_name = v;
                    break;
                case F(4, 0):
                    d->fn[d->nfn].filename = v;
                    break;
                case F(5, 0):
                    d->fn[d->nfn].start_line = v;
                    break;
                default:
                    fail_msg("Function field %u", f);
                }
            }
            d->nfn++;
            break;
        case F(6, 2):
            assert_true(d->nstr < MAXN);
            d->str[d->nstr] = calloc(1, (size_t)(sub.end - sub.p) + 1);
            assert_non_null(d->str[d->nstr]);
            memcpy(d->str[d->nstr++], sub.p, (size_t)(sub.end - sub.p));
            break;
        case F(9, 0):
            d->time = v;
            break;
        case F(10, 0):
            d->duration = v;
            break;
        case F(11, 2):
            while (sub.p < sub.end) {
                unsigned f = rd_field(&sub, &v, &s2);
                if (f == F(1, 0))
                    d->period_type = v;
                else if (f == F(2, 0))
                    d->period_unit = v;
            }
            break;
        case F(12, 0):
            d->period = v;
            break;
        case F(13, 0):
        case F(13, 2):
            rd_repeated(fw, v, &sub, d->comment, &d->ncomment);
            break;
        case F(14, 0):
            d->default_type = v;
            break;
        default:
            fail_msg("Profile field %u", fw);
        }
    }
    return d;
}

static void dprofile_free(dprofile *d)
{
    for (size_t i = 0; i < d->nstr; i++)
        free(d->str[i]);
    free(d->sample);
    free(d);
}

/* The string at index i (checked). */
static const char *S(const dprofile *d, uint64_t i)
{
    assert_true(i < d->nstr);
    return d->str[i];
}

/* Checks the invariants pprof's CheckValid checks, and ours. */
static void check_valid(const dprofile *d)
{
    assert_true(d->nstr >= 1);
    assert_string_equal(d->str[0], "");
    for (size_t i = 1; i < d->nstr; i++)
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(d->str[i], d->str[j]);
    assert_int_equal(d->nmap, 1);
    assert_int_equal(d->map_id, 1);
    assert_int_equal(d->map_flags[7], 1);
    assert_int_equal(d->map_flags[8], 1);
    assert_int_equal(d->map_flags[9], 1);
    for (size_t i = 0; i < d->nloc; i++) {
        assert_int_equal(d->loc[i].id, i + 1);
        assert_int_equal(d->loc[i].mapping, 1);
        assert_int_equal(d->loc[i].nline, 1);
        assert_true(d->loc[i].func >= 1 && d->loc[i].func <= d->nfn);
        for (size_t j = 0; j < i; j++)
            assert_false(d->loc[i].func == d->loc[j].func && d->loc[i].line == d->loc[j].line);
    }
    for (size_t i = 0; i < d->nfn; i++) {
        assert_int_equal(d->fn[i].id, i + 1);
        assert_true(d->fn[i].name > 0);
        assert_int_equal(d->fn[i].system_name, d->fn[i].name);
        S(d, d->fn[i].filename);
        for (size_t j = 0; j < i; j++)
            assert_false(d->fn[i].name == d->fn[j].name &&
                         d->fn[i].filename == d->fn[j].filename);
    }
    for (size_t i = 0; i < d->nsample; i++) {
        assert_int_equal(d->sample[i].nval, d->nst);
        for (size_t k = 0; k < d->sample[i].nloc; k++)
            assert_true(d->sample[i].loc[k] >= 1 && d->sample[i].loc[k] <= d->nloc);
    }
}

/* Encodes p, checks the gzip member, decodes the protobuf. */
static dprofile *roundtrip_profile(rcgc__pprof *p)
{
    unsigned char *gz = NULL;
    size_t gzlen = 0, len = 0;
    assert_int_equal(rcgc__pprof_encode(p, &gz, &gzlen), 0);
    unsigned char *pb = gunzip(gz, gzlen, &len);
    t_free(gz);
    dprofile *d = decode(pb, len);
    free(pb);
    check_valid(d);
    return d;
}

/* The name of the function of frame k of sample s, "name@file:line". */
static void frame_text(const dprofile *d, const dsample *s, size_t k, char *buf, size_t n)
{
    uint64_t l = s->loc[k] - 1;
    uint64_t f = d->loc[l].func - 1;
    snprintf(buf, n, "%s@%s:%" PRId64, S(d, d->fn[f].name), S(d, d->fn[f].filename),
             (int64_t)d->loc[l].line);
}

/* ---- the profile ---- */

static void test_pprof_structure(void **state)
{
    (void)state;
    rcgc__pprof *p = rcgc__pprof_new();
    assert_non_null(p);
    assert_int_equal(rcgc__pprof_sample_type(p, "inuse_objects", "count"), 0);
    assert_int_equal(rcgc__pprof_sample_type(p, "inuse_space", "bytes"), 0);
    assert_int_equal(rcgc__pprof_default_sample_type(p, 1), 0);
    assert_int_equal(rcgc__pprof_period(p, "space", "bytes", 524288), 0);
    rcgc__pprof_time(p, 1700000000123456789, 0);
    assert_int_equal(rcgc__pprof_comment(p, "heap main"), 0);
    assert_int_equal(rcgc__pprof_comment(p, "rcgc 1.0"), 0);

    const rcgc__pprof_frame a[] = {
        {NULL, "src/parse.c", 123}, {"parse_list", "src/parse.c", 40}, {"main", "main.c", 7}};
    const rcgc__pprof_frame b[] = {
        {NULL, "src/parse.c", 124}, {"parse_list", "src/parse.c", 41}, {"main", "main.c", 7}};
    const int64_t va[] = {3, 144}, vb[] = {1, 48}, vneg[] = {-1, INT64_MIN};
    assert_int_equal(rcgc__pprof_add(p, a, 3, va, 2), 0);
    assert_int_equal(rcgc__pprof_add(p, b, 3, vb, 2), 0);
    assert_int_equal(rcgc__pprof_add(p, a, 3, vb, 2), 0); /* the same stack again */
    assert_int_equal(rcgc__pprof_add(p, NULL, 0, vneg, 2), 0);
    const rcgc__pprof_label labels[] = {{"type", "Node", 0, NULL}, {"size", NULL, 48, "bytes"}};
    assert_int_equal(rcgc__pprof_add_labeled(p, a + 2, 1, va, 2, labels, 2), 0);

    dprofile *d = roundtrip_profile(p);
    assert_int_equal(d->nst, 2);
    assert_string_equal(S(d, d->st_type[0]), "inuse_objects");
    assert_string_equal(S(d, d->st_unit[0]), "count");
    assert_string_equal(S(d, d->st_type[1]), "inuse_space");
    assert_string_equal(S(d, d->st_unit[1]), "bytes");
    assert_string_equal(S(d, d->default_type), "inuse_space");
    assert_string_equal(S(d, d->period_type), "space");
    assert_string_equal(S(d, d->period_unit), "bytes");
    assert_int_equal(d->period, 524288);
    assert_int_equal(d->time, 1700000000123456789);
    assert_int_equal(d->duration, 0);
    assert_int_equal(d->ncomment, 2);
    assert_string_equal(S(d, d->comment[0]), "heap main");
    assert_string_equal(S(d, d->comment[1]), "rcgc 1.0");

    /* Locations: parse.c:123, parse_list:40, main:7, parse.c:124, parse_list:41. Functions:
     * "src/parse.c:123", parse_list, main, "src/parse.c:124". */
    assert_int_equal(d->nloc, 5);
    assert_int_equal(d->nfn, 4);
    assert_int_equal(d->nsample, 5);
    char text[256];
    static const char *want_a[] = {"src/parse.c:123@src/parse.c:123",
                                   "parse_list@src/parse.c:40", "main@main.c:7"};
    static const char *want_b[] = {"src/parse.c:124@src/parse.c:124",
                                   "parse_list@src/parse.c:41", "main@main.c:7"};
    for (size_t k = 0; k < 3; k++) {
        frame_text(d, &d->sample[0], k, text, sizeof text);
        assert_string_equal(text, want_a[k]);
        frame_text(d, &d->sample[1], k, text, sizeof text);
        assert_string_equal(text, want_b[k]);
    }
    assert_memory_equal(d->sample[0].loc, d->sample[2].loc, 3 * sizeof(uint64_t));
    assert_int_equal(d->sample[0].val[0], 3);
    assert_int_equal(d->sample[0].val[1], 144);
    assert_int_equal(d->sample[2].val[1], 48);
    assert_int_equal(d->sample[3].nloc, 0);
    assert_int_equal((int64_t)d->sample[3].val[0], -1);
    assert_int_equal((int64_t)d->sample[3].val[1], INT64_MIN);
    assert_int_equal(d->sample[4].nloc, 1);
    assert_int_equal(d->sample[4].loc[0], d->sample[0].loc[2]);
    assert_int_equal(d->sample[4].nlabel, 2);
    assert_string_equal(S(d, d->sample[4].label[0].key), "type");
    assert_string_equal(S(d, d->sample[4].label[0].str), "Node");
    assert_int_equal(d->sample[4].label[0].num, 0);
    assert_string_equal(S(d, d->sample[4].label[1].key), "size");
    assert_int_equal(d->sample[4].label[1].str, 0);
    assert_int_equal(d->sample[4].label[1].num, 48);
    assert_string_equal(S(d, d->sample[4].label[1].unit), "bytes");
    dprofile_free(d);

    /* Encoding again gives the same bytes: encode leaves the profile as it was. */
    unsigned char *g1, *g2;
    size_t l1, l2;
    assert_int_equal(rcgc__pprof_encode(p, &g1, &l1), 0);
    assert_int_equal(rcgc__pprof_encode(p, &g2, &l2), 0);
    assert_int_equal(l1, l2);
    assert_memory_equal(g1, g2, l1);
    t_free(g1);
    t_free(g2);
    rcgc__pprof_free(p);
    assert_int_equal(alloc_live, 0);
}

static void test_pprof_interning(void **state)
{
    (void)state;
    rcgc__pprof *p = rcgc__pprof_new();
    assert_non_null(p);
    assert_int_equal(rcgc__pprof_sample_type(p, "objects", "count"), 0);
    const int64_t one = 1;
    /* One function, three lines: one Function, three Locations. */
    for (int64_t line = 1; line <= 3; line++) {
        rcgc__pprof_frame f = {"f", "f.c", line};
        assert_int_equal(rcgc__pprof_add(p, &f, 1, &one, 1), 0);
        assert_int_equal(rcgc__pprof_add(p, &f, 1, &one, 1), 0);
    }
    /* Unknown frames: "<unknown>"; file only: "file:line"; a name without a file. */
    const rcgc__pprof_frame u[] = {{NULL, NULL, 0}, {NULL, NULL, 9}, {NULL, "g.c", -2},
                                   {"h", NULL, 0},  {"h", NULL, 0},  {"f", "f.c", 2}};
    assert_int_equal(rcgc__pprof_add(p, u, 6, &one, 1), 0);
    /* The same name in two files: two Functions. */
    rcgc__pprof_frame other = {"f", "other.c", 1};
    assert_int_equal(rcgc__pprof_add(p, &other, 1, &one, 1), 0);

    dprofile *d = roundtrip_profile(p);
    assert_int_equal(d->nsample, 8);
    for (size_t i = 0; i < 6; i += 2)
        assert_int_equal(d->sample[i].loc[0], d->sample[i + 1].loc[0]);
    /* f@1..3, <unknown>@0, <unknown>@9, g.c:-2, h@0, f@other.c:1 */
    assert_int_equal(d->nloc, 8);
    assert_int_equal(d->nfn, 5);
    char text[256];
    static const char *want[] = {"<unknown>@:0", "<unknown>@:9", "g.c:-2@g.c:-2",
                                 "h@:0",         "h@:0",         "f@f.c:2"};
    assert_int_equal(d->sample[6].nloc, 6);
    for (size_t k = 0; k < 6; k++) {
        frame_text(d, &d->sample[6], k, text, sizeof text);
        assert_string_equal(text, want[k]);
    }
    assert_int_equal(d->sample[6].loc[3], d->sample[6].loc[4]);
    assert_int_equal(d->sample[6].loc[5], d->sample[2].loc[0]);
    frame_text(d, &d->sample[7], 0, text, sizeof text);
    assert_string_equal(text, "f@other.c:1");
    dprofile_free(d);
    rcgc__pprof_free(p);
    assert_int_equal(alloc_live, 0);
}

static void test_pprof_errors(void **state)
{
    (void)state;
    unsigned char *out = NULL;
    size_t len = 0;
    const int64_t v[2] = {1, 2};
    rcgc__pprof_frame f = {"f", "f.c", 1};
    rcgc__pprof_label nokey = {NULL, "x", 0, NULL};

    rcgc__pprof_free(NULL);
    rcgc__pprof_time(NULL, 1, 2);
    assert_int_equal(rcgc__pprof_sample_type(NULL, "a", "b"), RCGC_EINVAL);
    assert_int_equal(rcgc__pprof_period(NULL, "a", "b", 1), RCGC_EINVAL);
    assert_int_equal(rcgc__pprof_comment(NULL, "a"), RCGC_EINVAL);
    assert_int_equal(rcgc__pprof_add(NULL, &f, 1, v, 1), RCGC_EINVAL);
    assert_int_equal(rcgc__pprof_encode(NULL, &out, &len), RCGC_EINVAL);
    assert_int_equal(rcgc__pprof_default_sample_type(NULL, 0), RCGC_EINVAL);

    rcgc__pprof *p = rcgc__pprof_new();
    assert_non_null(p);
    /* Nothing declared: no sample can be added, nothing encoded. */
    assert_int_equal(rcgc__pprof_add(p, &f, 1, v, 0), RCGC_EINVAL);
    assert_int_equal(rcgc__pprof_encode(p, &out, &len), RCGC_EINVAL);
    assert_int_equal(rcgc__pprof_default_sample_type(p, 0), RCGC_EINVAL);
    assert_int_equal(rcgc__pprof_sample_type(p, NULL, "b"), RCGC_EINVAL);
    assert_int_equal(rcgc__pprof_sample_type(p, "a", NULL), RCGC_EINVAL);
    assert_int_equal(rcgc__pprof_period(p, NULL, "b", 1), RCGC_EINVAL);
    assert_int_equal(rcgc__pprof_comment(p, NULL), RCGC_EINVAL);
    assert_int_equal(rcgc__pprof_sample_type(p, "objects", "count"), 0);
    assert_int_equal(rcgc__pprof_default_sample_type(p, 1), RCGC_EINVAL);
    assert_int_equal(rcgc__pprof_add(p, &f, 1, v, 2), RCGC_EINVAL); /* 1 type, 2 values */
    assert_int_equal(rcgc__pprof_add(p, NULL, 1, v, 1), RCGC_EINVAL);
    assert_int_equal(rcgc__pprof_add(p, &f, 1, NULL, 1), RCGC_EINVAL);
    assert_int_equal(rcgc__pprof_add_labeled(p, &f, 1, v, 1, NULL, 1), RCGC_EINVAL);
    assert_int_equal(rcgc__pprof_add_labeled(p, &f, 1, v, 1, &nokey, 1), RCGC_EINVAL);
    assert_int_equal(rcgc__pprof_encode(p, NULL, &len), RCGC_EINVAL);
    assert_int_equal(rcgc__pprof_encode(p, &out, NULL), RCGC_EINVAL);
    /* The rejected calls left nothing behind: one sample type, no sample. */
    dprofile *d = roundtrip_profile(p);
    assert_int_equal(d->nst, 1);
    assert_int_equal(d->nsample, 0);
    assert_int_equal(d->nloc, 0);
    assert_int_equal(d->nstr, 3);
    dprofile_free(d);
    /* Sample types are fixed once a sample is in. */
    assert_int_equal(rcgc__pprof_add(p, &f, 1, v, 1), 0);
    assert_int_equal(rcgc__pprof_sample_type(p, "space", "bytes"), RCGC_EBUSY);
    rcgc__pprof_free(p);
    assert_int_equal(alloc_live, 0);
}

/* ---- allocation failures ---- */

/* Builds a profile with operation mask `mask` (bit i: operation i runs; all: ~0u).
 * Returns: the bit set of operations that succeeded; *pp the profile (NULL when
 * rcgc__pprof_new failed). */
static unsigned build_ops(rcgc__pprof **pp, unsigned mask)
{
    static const rcgc__pprof_frame s1[] = {
        {NULL, "a.c", 1}, {"fa", "a.c", 10}, {"main", "m.c", 1}};
    static const rcgc__pprof_frame s2[] = {
        {NULL, "b.c", 2}, {"fb", "b.c", 20}, {"fa", "a.c", 11}, {"main", "m.c", 1}};
    static const rcgc__pprof_label l[] = {{"type", "T", 0, NULL}, {"n", NULL, 5, "count"}};
    const int64_t v[2] = {1, 16};
    unsigned ok = 0;
    rcgc__pprof *p = rcgc__pprof_new();
    *pp = p;
    if (p == NULL)
        return 0;
    int rc[8];
    for (int i = 0; i < 8; i++)
        rc[i] = 1;
    if (mask & 1)
        rc[0] = rcgc__pprof_sample_type(p, "objects", "count");
    if (mask & 2)
        rc[1] = rcgc__pprof_sample_type(p, "space", "bytes");
    if (mask & 4)
        rc[2] = rcgc__pprof_period(p, "space", "bytes", 0);
    if (mask & 8)
        rc[3] = rcgc__pprof_comment(p, "a comment");
    size_t nt = p->ntypes; /* the values match what was declared */
    if (mask & 16)
        rc[4] = rcgc__pprof_add(p, s1, 3, v, nt);
    if (mask & 32)
        rc[5] = rcgc__pprof_add(p, s2, 4, v, nt);
    if (mask & 64)
        rc[6] = rcgc__pprof_add_labeled(p, s2, 4, v, nt, l, 2);
    if (mask & 128) {
        /* Many new strings at once: the tables grow past their first size. */
        rcgc__pprof_frame many[40];
        char names[40][16];
        for (int i = 0; i < 40; i++) {
            snprintf(names[i], sizeof names[i], "fn%d", i);
            many[i] = (rcgc__pprof_frame){names[i], "many.c", i};
        }
        rc[7] = rcgc__pprof_add(p, many, 40, v, nt);
    }
    for (int i = 0; i < 8; i++) {
        if (rc[i] == 0)
            ok |= 1u << i;
        else if (mask & (1u << i))
            assert_true(rc[i] == RCGC_ENOMEM || (rc[i] == RCGC_EINVAL && nt == 0) ||
                        (rc[i] == RCGC_EINVAL && i >= 4));
    }
    return ok;
}

static void test_pprof_out_of_memory(void **state)
{
    (void)state;
    long n;
    for (n = 0;; n++) {
        rcgc__pprof *p = NULL;
        arm(n);
        unsigned ok = build_ops(&p, ~0u);
        unsigned char *gz = NULL;
        size_t gzlen = 0;
        int rc = p != NULL && p->ntypes > 0 ? rcgc__pprof_encode(p, &gz, &gzlen) : 0;
        long injected = alloc_injected;
        arm(-1);
        assert_true(rc == 0 || rc == RCGC_ENOMEM);
        if (p != NULL && p->ntypes > 0) {
            /* What failed changed nothing: the profile encodes to the bytes of one built
             * with only the operations that succeeded. */
            unsigned char *g1 = NULL, *g2 = NULL;
            size_t l1 = 0, l2 = 0;
            rcgc__pprof *q = NULL;
            assert_int_equal(rcgc__pprof_encode(p, &g1, &l1), 0);
            assert_int_equal(build_ops(&q, ok), ok);
            assert_int_equal(rcgc__pprof_encode(q, &g2, &l2), 0);
            assert_int_equal(l1, l2);
            assert_memory_equal(g1, g2, l1);
            if (rc == 0) {
                assert_int_equal(gzlen, l1);
                assert_memory_equal(gz, g1, l1);
            }
            t_free(g1);
            t_free(g2);
            rcgc__pprof_free(q);
        }
        t_free(gz);
        rcgc__pprof_free(p);
        assert_int_equal(alloc_live, 0);
        if (injected == 0)
            break;
    }
    print_message("pprof: %ld allocation failures injected\n", n);
    assert_true(n > 20);
}

/* ---- a realistic profile ---- */

/* A heap profile such as GET /v1/heaps/{heap}/pprof/heap serves: nsamples samples of
 * 8-frame stacks, walks down a call graph of 50 functions (in 10 files) where each
 * function calls three others, from app_function_00 (the outermost frame) to an
 * allocation site known by file and line only (the leaf); plus one labelled sample and
 * one with negative values (as in a difference). When json is not NULL, writes what each
 * sample holds to it. */
static rcgc__pprof *realistic(size_t nsamples, FILE *json)
{
    rcgc__pprof *p = rcgc__pprof_new();
    assert_non_null(p);
    assert_int_equal(rcgc__pprof_sample_type(p, "inuse_objects", "count"), 0);
    assert_int_equal(rcgc__pprof_sample_type(p, "inuse_space", "bytes"), 0);
    assert_int_equal(rcgc__pprof_default_sample_type(p, 1), 0);
    assert_int_equal(rcgc__pprof_period(p, "space", "bytes", 0), 0);
    rcgc__pprof_time(p, 1700000000000000000, 0);
    assert_int_equal(rcgc__pprof_comment(p, "rcgc heap main"), 0);
    char names[50][32], files[10][32], sites[20][40];
    for (int i = 0; i < 50; i++)
        snprintf(names[i], sizeof names[i], "app_function_%02d", i);
    for (int i = 0; i < 10; i++)
        snprintf(files[i], sizeof files[i], "src/module_%d.c", i);
    for (int i = 0; i < 20; i++)
        snprintf(sites[i], sizeof sites[i], "src/module_%d.c", i % 10);
    if (json != NULL)
        fprintf(json, "{\"sample_types\": [[\"inuse_objects\", \"count\"], [\"inuse_space\", "
                      "\"bytes\"]],\n \"samples\": [\n");
    rng_state = 0x243f6a8885a308d3u;
    int callee[50][3];
    for (int i = 0; i < 50; i++)
        for (int k = 0; k < 3; k++)
            callee[i][k] = (int)(rng() % 50);
    for (size_t i = 0; i < nsamples + 2; i++) {
        rcgc__pprof_frame fr[8];
        int fn = 0;
        for (int k = 7; k >= 1; k--) {
            int c = (int)(rng() % 3);
            /* The line of the call to the next frame. */
            fr[k] = (rcgc__pprof_frame){names[fn], files[fn % 10], 10 * fn + c};
            fn = callee[fn][c];
        }
        int s = (fn + (int)(rng() % 2)) % 20;
        fr[0] = (rcgc__pprof_frame){NULL, sites[s], 100 + s * 7};
        int64_t v[2];
        v[0] = 1 + rng() % 100;
        v[1] = v[0] * (16 << (rng() % 4));
        rcgc__pprof_label lab[2] = {{"type", "Node", 0, NULL}, {"bytes", NULL, 48, "bytes"}};
        size_t nl = 0;
        if (i == nsamples) {
            nl = 2;
        } else if (i == nsamples + 1) {
            v[0] = -v[0];
            v[1] = -v[1];
        }
        assert_int_equal(rcgc__pprof_add_labeled(p, fr, 8, v, 2, lab, nl), 0);
        if (json != NULL) {
            fprintf(json,
                    "  {\"values\": [%" PRId64 ", %" PRId64 "], \"labels\": %s, \"frames\": [",
                    v[0], v[1], nl ? "{\"type\": \"Node\", \"bytes\": [48, \"bytes\"]}" : "{}");
            for (int k = 0; k < 8; k++) {
                char name[64];
                if (fr[k].function != NULL)
                    snprintf(name, sizeof name, "%s", fr[k].function);
                else
                    snprintf(name, sizeof name, "%s:%" PRId64, fr[k].file, fr[k].line);
                fprintf(json, "%s[\"%s\", \"%s\", %" PRId64 "]", k ? ", " : "", name,
                        fr[k].file, fr[k].line);
            }
            fprintf(json, "]}%s\n", i + 1 < nsamples + 2 ? "," : "");
        }
    }
    if (json != NULL)
        fprintf(json, " ]\n}\n");
    return p;
}

static void test_pprof_realistic(void **state)
{
    (void)state;
    rcgc__pprof *p = realistic(1000, NULL);
    unsigned char *gz = NULL;
    size_t gzlen = 0, len = 0;
    assert_int_equal(rcgc__pprof_encode(p, &gz, &gzlen), 0);
    unsigned char *pb = gunzip(gz, gzlen, &len);
    dprofile *d = decode(pb, len);
    check_valid(d);
    assert_int_equal(d->nsample, 1002);
    assert_true(d->nfn <= 50 + 20);
    print_message("pprof: 1,000 samples of 8 frames: %zu bytes of protobuf, %zu gzipped "
                  "(%.1f%%), %zu locations, %zu functions, %zu strings\n",
                  len, gzlen, 100.0 * (double)gzlen / (double)len, d->nloc, d->nfn, d->nstr);
    assert_true(gzlen * 10 < len * 6); /* measured: 49.7% (zlib -6: 43.9%) */
    dprofile_free(d);
    free(pb);
    t_free(gz);
    rcgc__pprof_free(p);
    assert_int_equal(alloc_live, 0);
}

/* ---- the modes of tests/protocol/pprof_check.mjs ---- */

static int write_profile(const char *pb_path, const char *json_path)
{
    FILE *json = fopen(json_path, "w");
    if (json == NULL) {
        perror(json_path);
        return 1;
    }
    rcgc__pprof *p = realistic(1000, json);
    unsigned char *gz = NULL;
    size_t len = 0;
    int rc = rcgc__pprof_encode(p, &gz, &len);
    rcgc__pprof_free(p);
    FILE *f = rc == 0 ? fopen(pb_path, "wb") : NULL;
    int ok = f != NULL && fwrite(gz, 1, len, f) == len;
    ok = (f != NULL && fclose(f) == 0) && ok;
    ok = fclose(json) == 0 && ok;
    t_free(gz);
    if (!ok)
        fprintf(stderr, "test_pprof: cannot write %s (%d)\n", pb_path, rc);
    return !ok;
}

static int gzip_stdin(void)
{
    size_t n = 0, cap = 1 << 16;
    unsigned char *in = malloc(cap);
    size_t got;
    while (in != NULL && (got = fread(in + n, 1, cap - n, stdin)) > 0) {
        n += got;
        if (n == cap) {
            unsigned char *q = realloc(in, cap *= 2);
            if (q == NULL)
                free(in);
            in = q;
        }
    }
    unsigned char *gz = NULL;
    size_t len = 0;
    int rc = in == NULL ? RCGC_ENOMEM : rcgc__pprof_gzip(in, n, &gz, &len);
    free(in);
    int ok = rc == 0 && fwrite(gz, 1, len, stdout) == len && fflush(stdout) == 0;
    t_free(gz);
    return !ok;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--profile") == 0)
        return write_profile(argv[2], argv[3]);
    if (argc == 2 && strcmp(argv[1], "--gzip") == 0)
        return gzip_stdin();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pprof_gzip_format), cmocka_unit_test(test_pprof_gzip_roundtrip),
        cmocka_unit_test(test_pprof_structure),   cmocka_unit_test(test_pprof_interning),
        cmocka_unit_test(test_pprof_errors),      cmocka_unit_test(test_pprof_out_of_memory),
        cmocka_unit_test(test_pprof_realistic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
