/* bench_inspect.c: what the inspection server (librcgc-inspect) costs its host, and how
 * fast it answers (issue 3's performance targets). One program, four modes:
 *
 *   bench_inspect churn [ops [reps]]
 *       bench_churn's loop (allocate a two-slot container, release the one allocated 64
 *       ops earlier; rcgc_safepoint every 1024 ops, as a well-behaved host does) with the
 *       server off, started and idle, and started with a poller thread that GETs
 *       /v1/heaps/{heap} and /v1/heaps/{heap}/census at 10 Hz over one keep-alive
 *       loopback connection. Modes are interleaved within each repetition (their order
 *       rotates), so drift hits them alike; medians and overhead % are reported.
 *       Variants: empty, filled (as bench_churn) and cycles (each op leaves a 2-cycle
 *       behind, so gen-0 collections run every 350 ops and every collection end is a
 *       safepoint that may publish a snapshot).
 *   bench_inspect heap [objects [requests [fresh|aged]]]
 *       A heap of 1,000,000 live objects of four types (90% two-child nodes whose
 *       children are drawn at random, 10% leaves), each held from a C array; "aged"
 *       first replaces every object once in random order, so that the heap's lists no
 *       longer follow the memory. The owner (main thread) loops over a few microseconds
 *       of work and rcgc_safepoint, timing every safepoint (wall and thread CPU time);
 *       a client thread sends 300 GET /v1/heaps/{heap}, 300 GET .../census, then
 *       `requests` GET .../objects/{id} (referents, referrers and the refcount
 *       explained: a walk at a safepoint), one at a time. Measured: the owner's cost of
 *       publishing one snapshot (rcgc__snapshot_publish, timed directly); each request's
 *       latency; the owner pause each object request causes (the longest safepoints of
 *       that phase, one per request); then 3 GET .../objects/{id}/retained and 3 GET
 *       .../retained?type=bench.A (a third of the heap), budget 5000 ms.
 *   bench_inspect serve [seconds]
 *       A host that allocates a little, calls rcgc_safepoint and sleeps 1 ms (heap
 *       released while it sleeps), for wrk: prints "PORT <n>" once listening.
 *   bench_inspect load <port> <path> [seconds [connections [threads]]]
 *       A small keep-alive load generator for machines without wrk (one request in
 *       flight per thread: a floor, not wrk's number); prints wrk's "Requests/sec:".
 *
 * Each measurement prints one "RESULT name=... key=value ..." line (run_inspect.sh
 * parses them). The server listens on 127.0.0.1 with port 0 (a free one), no token.
 * Times are CLOCK_MONOTONIC; the owner's CPU time is CLOCK_THREAD_CPUTIME_ID. */
#define _POSIX_C_SOURCE 200809L

#include <rcgc/inspect.h>
#include <rcgc/rcgc.h>
#include <rcgc/snapshot.h>

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "bench_common.h"
#include "bench_node.h"

#define RING 64u
#define SAFEPOINT_MASK 1023u /* rcgc_safepoint every 1024 churn ops */
#define CHURN_OPS 5000000u
#define CHURN_REPS 31u
#define POLL_PERIOD_NS 100000000u /* 10 Hz */
#define HEAP_OBJECTS 1000000u
#define HEAP_REQUESTS 15u
#define READ_REQUESTS 300u /* stats and census requests in the heap mode, each */
#define PUBLISH_REPS 101u

static void die(const char *what)
{
    fprintf(stderr, "bench_inspect: %s\n", what);
    exit(1);
}

static void *must(void *p)
{
    if (!p)
        die("out of memory");
    return p;
}

static uint64_t cpu_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
}

/* ---- samples ---- */

typedef struct samples {
    uint64_t *v;
    size_t n, cap;
} samples;

static void samples_add(samples *s, uint64_t x)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 256;
        s->v = must(realloc(s->v, s->cap * sizeof *s->v));
    }
    s->v[s->n++] = x;
}

/* Sorts s; the q-quantile (0..1) by nearest rank, 0 for no samples. */
static double samples_q(samples *s, double q)
{
    if (s->n == 0)
        return 0;
    qsort(s->v, s->n, sizeof *s->v, bench_cmp_u64);
    size_t i = (size_t)(q * (double)(s->n - 1) + 0.5);
    return (double)s->v[i];
}

static double samples_median(samples *s)
{
    return s->n ? bench_median(s->v, s->n) : 0;
}

/* ---- a minimal HTTP/1.1 client: keep-alive, one request at a time ---- */

typedef struct hconn {
    int fd, port;
    char *buf; /* the last response (header and body), then what followed it */
    size_t len, cap, used;
    int status;
    const char *body;
    size_t body_len;
    bool must_close;
} hconn;

static int hconn_open(hconn *c)
{
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0)
        return -1;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval tv = {10, 0}; /* a stuck server fails the benchmark, never hangs it */
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)c->port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    c->len = c->used = 0;
    c->must_close = false;
    return 0;
}

static void hconn_close(hconn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->len = c->used = 0;
}

static void hconn_init(hconn *c, int port)
{
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->port = port;
    c->cap = 1 << 16;
    c->buf = must(malloc(c->cap));
}

static void hconn_free(hconn *c)
{
    hconn_close(c);
    free(c->buf);
}

/* The value of header name in the header block [h, end), or NULL. */
static const char *header_value(const char *h, const char *end, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = h; p < end;) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL)
            eol = end;
        if ((size_t)(eol - p) > n && strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            return v;
        }
        p = eol + 1;
    }
    return NULL;
}

/* Sends "GET path" and reads the whole answer (Content-Length framing).
 * Returns: 0 with c->status, c->body, c->body_len, or -1 (the connection is closed). */
static int hconn_try_get(hconn *c, const char *path)
{
    if (c->fd < 0 && hconn_open(c) != 0)
        return -1;
    /* Drop the previous response, keep what followed it (nothing without pipelining). */
    memmove(c->buf, c->buf + c->used, c->len - c->used);
    c->len -= c->used;
    c->used = 0;
    char req[1024];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n", path,
                     c->port);
    if (n <= 0 || (size_t)n >= sizeof req)
        return -1;
    for (size_t off = 0; off < (size_t)n;) {
        ssize_t w = send(c->fd, req + off, (size_t)n - off, MSG_NOSIGNAL);
        if (w <= 0) {
            hconn_close(c);
            return -1;
        }
        off += (size_t)w;
    }
    size_t head = 0, need = 0; /* header bytes, header + body bytes */
    for (;;) {
        if (head == 0) {
            char *e = NULL;
            for (size_t i = 3; i < c->len; i++)
                if (c->buf[i] == '\n' && c->buf[i - 1] == '\r' && c->buf[i - 2] == '\n' &&
                    c->buf[i - 3] == '\r') {
                    e = c->buf + i + 1;
                    break;
                }
            if (e != NULL) {
                head = (size_t)(e - c->buf);
                if (head < 12 || strncmp(c->buf, "HTTP/1.", 7) != 0) {
                    hconn_close(c);
                    return -1;
                }
                c->status = atoi(c->buf + 9);
                const char *cl = header_value(c->buf, e, "Content-Length");
                const char *conn = header_value(c->buf, e, "Connection");
                c->must_close = conn != NULL && strncasecmp(conn, "close", 5) == 0;
                need = head + (cl ? (size_t)strtoull(cl, NULL, 10) : 0);
                if (need + 1 > c->cap) {
                    while (need + 1 > c->cap)
                        c->cap *= 2;
                    c->buf = must(realloc(c->buf, c->cap));
                }
            }
        }
        if (head != 0 && c->len >= need)
            break;
        if (c->len == c->cap) {
            c->cap *= 2;
            c->buf = must(realloc(c->buf, c->cap));
        }
        ssize_t r = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
        if (r <= 0) {
            hconn_close(c);
            return -1;
        }
        c->len += (size_t)r;
    }
    c->body = c->buf + head;
    c->body_len = need - head;
    c->used = need;
    if (c->must_close) {
        close(c->fd); /* the response stays readable in buf */
        c->fd = -1;
    }
    return 0;
}

/* hconn_try_get, reconnecting once when a kept-alive connection was closed. */
static int hconn_get(hconn *c, const char *path)
{
    if (hconn_try_get(c, path) == 0)
        return 0;
    return hconn_try_get(c, path);
}

/* The number in the first {"objects":"<n>"...} after text in the body; 0 when absent. */
static uint64_t json_number_after(const hconn *c, const char *text)
{
    static const char key[] = "{\"objects\":\"";
    size_t n = strlen(text), k = sizeof key - 1;
    for (size_t i = 0; i + n + k <= c->body_len; i++)
        if (memcmp(c->body + i, text, n) == 0 && memcmp(c->body + i + n, key, k) == 0)
            return strtoull(c->body + i + n + k, NULL, 10);
    return 0;
}

/* Whether the body contains text. */
static bool body_has(const hconn *c, const char *text)
{
    size_t n = strlen(text);
    for (size_t i = 0; i + n <= c->body_len; i++)
        if (memcmp(c->body + i, text, n) == 0)
            return true;
    return false;
}

/* The unsigned number after the last "key": in the body (the top-level one when nested
 * objects use the same key first), quoted or not; 0 when absent. */
static uint64_t json_number(const hconn *c, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    size_t n = strlen(pat);
    const char *hit = NULL;
    for (size_t i = 0; i + n <= c->body_len; i++)
        if (memcmp(c->body + i, pat, n) == 0)
            hit = c->body + i + n;
    if (hit == NULL)
        return 0;
    if (*hit == '"')
        hit++;
    return strtoull(hit, NULL, 10);
}

/* ---- the server ---- */

static int server_start(void)
{
    rcgc_inspect_options o = {.address = "127.0.0.1:0", .allow_control = 0};
    int rc = rcgc_inspect_start(&o);
    if (rc != 0) {
        fprintf(stderr, "bench_inspect: rcgc_inspect_start: %d (%s)\n", rc, rcgc_strerror(rc));
        exit(1);
    }
    return rcgc_inspect_port();
}

/* ---- types ---- */

#define NODE_TYPE(var, nm)                                                                     \
    static const rcgc_type var = {.name = nm,                                                  \
                                  .size = sizeof(node),                                        \
                                  .traverse = node_traverse,                                   \
                                  .clear = node_clear,                                         \
                                  .dealloc = node_clear}
NODE_TYPE(churn_type, "bench.churn");
NODE_TYPE(type_a, "bench.A");
NODE_TYPE(type_b, "bench.B");
NODE_TYPE(type_c, "bench.C");
static const rcgc_type blob_type = {.name = "bench.blob", .size = 16}; /* a leaf */

/* ---- churn ---- */

static void *g_ring[RING];

enum { V_EMPTY, V_FILLED, V_CYCLES, NVARIANTS };
static const char *const variant_names[NVARIANTS] = {"empty", "filled", "cycles"};

/* One timed run: bench_churn's loop plus a safepoint every 1024 ops. */
static uint64_t churn(rcgc_heap *h, uint32_t ops, int variant, void *fill)
{
    uint64_t t0 = bench_now_ns();
    for (uint32_t i = 0; i < ops; i++) {
        node *p = must(rcgc_new(h, &churn_type));
        if (variant == V_FILLED) {
            rcgc_incref(fill);
            p->a = fill;
            rcgc_incref(fill);
            p->b = fill;
        } else if (variant == V_CYCLES) { /* p <-> q: garbage once the ring drops p */
            node *q = must(rcgc_new(h, &churn_type));
            p->a = q;
            rcgc_incref(p);
            q->a = p;
        }
        void *old = g_ring[i % RING];
        g_ring[i % RING] = p;
        rcgc_xdecref(old);
        if ((i & SAFEPOINT_MASK) == 0)
            rcgc_safepoint(h);
    }
    uint64_t t = bench_now_ns() - t0;
    for (uint32_t i = 0; i < RING; i++) {
        rcgc_xdecref(g_ring[i]);
        g_ring[i] = NULL;
    }
    if (variant == V_CYCLES)
        (void)rcgc_collect(h, 2); /* untimed: the same heap for the next run */
    return t;
}

/* The poller: every 100 ms, GET /v1/heaps/{heap} then its census, on one connection. */
typedef struct poller {
    int port;
    const char *heap;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
    pthread_t th;
    samples lat_stats, lat_census; /* ns, accumulated over every run */
    size_t errors;
} poller;

static void *poller_main(void *arg)
{
    poller *p = arg;
    hconn c;
    hconn_init(&c, p->port);
    char stats[256], census[256];
    snprintf(stats, sizeof stats, "/v1/heaps/%s", p->heap);
    snprintf(census, sizeof census, "/v1/heaps/%s/census", p->heap);
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    pthread_mutex_lock(&p->mu);
    while (!p->stop) {
        pthread_mutex_unlock(&p->mu);
        for (int k = 0; k < 2; k++) {
            uint64_t t0 = bench_now_ns();
            int r = hconn_get(&c, k == 0 ? stats : census);
            uint64_t dt = bench_now_ns() - t0;
            if (r != 0 || c.status != 200)
                p->errors++;
            else
                samples_add(k == 0 ? &p->lat_stats : &p->lat_census, dt);
        }
        next.tv_nsec += POLL_PERIOD_NS;
        if (next.tv_nsec >= 1000000000) {
            next.tv_nsec -= 1000000000;
            next.tv_sec++;
        }
        pthread_mutex_lock(&p->mu);
        while (!p->stop && pthread_cond_timedwait(&p->cv, &p->mu, &next) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&p->mu);
    hconn_free(&c);
    return NULL;
}

static void poller_start(poller *p)
{
    p->stop = false;
    if (pthread_create(&p->th, NULL, poller_main, p) != 0)
        die("pthread_create");
}

static void poller_stop(poller *p)
{
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->th, NULL);
}

enum { M_OFF, M_IDLE, M_POLL, NMODES };
static const char *const mode_names[NMODES] = {"off", "idle", "poll"};

/* Cycles ops are ~4x the cost of the others: a quarter as many keeps runs alike. */
static uint32_t variant_ops(uint32_t ops, int v)
{
    return v == V_CYCLES ? (ops / 4 ? ops / 4 : 1) : ops;
}

static int mode_churn(int argc, char **argv)
{
    uint32_t ops = CHURN_OPS, reps = CHURN_REPS;
    if (argc > 0)
        ops = (uint32_t)strtoul(argv[0], NULL, 10);
    if (argc > 1)
        reps = (uint32_t)strtoul(argv[1], NULL, 10);
    if (ops == 0 || reps == 0 || reps > 1000) {
        fprintf(stderr, "usage: bench_inspect churn [ops [reps]]\n");
        return 2;
    }
    rcgc_heap_options opts = {.name = "churn", .ignore_environment = true};
    rcgc_heap *h = must(rcgc_heap_new_with(&opts));
    void *keep = must(rcgc_new(h, &churn_type));
    printf("# churn: %u ops per run (cycles: %u), %u reps, ring of %u, safepoint every %u "
           "ops, rcgc %s\n",
           ops, variant_ops(ops, V_CYCLES), reps, RING, SAFEPOINT_MASK + 1, rcgc_version());

    static uint64_t ns[NMODES][NVARIANTS][1000];
    poller p = {.heap = "churn"};
    pthread_mutex_init(&p.mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p.cv, &ca);

    for (int v = 0; v < NVARIANTS; v++) /* warm-up: malloc arenas, code, the server once */
        churn(h, variant_ops(ops, v) / 10, v, keep);
    (void)server_start();
    churn(h, ops / 10, V_EMPTY, keep);
    rcgc_inspect_stop();

    uint64_t t_begin = bench_now_ns();
    for (uint32_t r = 0; r < reps; r++) {
        for (int k = 0; k < NMODES; k++) {
            int m = (int)((r + (uint32_t)k) % NMODES); /* the order rotates */
            if (m != M_OFF)
                p.port = server_start();
            if (m == M_POLL)
                poller_start(&p);
            for (int v = 0; v < NVARIANTS; v++)
                ns[m][v][r] = churn(h, variant_ops(ops, v), v, keep);
            if (m == M_POLL)
                poller_stop(&p);
            if (m != M_OFF)
                rcgc_inspect_stop();
        }
    }
    double secs = (double)(bench_now_ns() - t_begin) / 1e9;

    static uint64_t raw[NMODES][NVARIANTS][1000]; /* in rep order (bench_median sorts) */
    memcpy(raw, ns, sizeof raw);
    double med[NMODES][NVARIANTS];
    for (int v = 0; v < NVARIANTS; v++)
        for (int m = 0; m < NMODES; m++) {
            uint64_t mn = ns[m][v][0];
            for (uint32_t r = 1; r < reps; r++)
                mn = ns[m][v][r] < mn ? ns[m][v][r] : mn;
            med[m][v] = bench_median(ns[m][v], reps);
            uint32_t n = variant_ops(ops, v);
            printf("RESULT name=churn variant=%s mode=%s ops=%u reps=%u median_ns=%.0f "
                   "min_ns=%" PRIu64 " ns_per_op=%.3f\n",
                   variant_names[v], mode_names[m], n, reps, med[m][v], mn,
                   med[m][v] / (double)n);
        }
    /* The overhead: median against median; and, less sensitive to drift, the median over
     * reps of the ratio to the off run of the same rep (run within a second of it). */
    for (int v = 0; v < NVARIANTS; v++)
        for (int m = M_IDLE; m < NMODES; m++) {
            uint64_t ratio[1000];
            for (uint32_t r = 0; r < reps; r++)
                ratio[r] = (uint64_t)((double)raw[m][v][r] / (double)raw[M_OFF][v][r] * 1e6);
            printf("RESULT name=overhead variant=%s mode=%s pct=%.2f paired_pct=%.2f\n",
                   variant_names[v], mode_names[m], (med[m][v] / med[M_OFF][v] - 1.0) * 100.0,
                   (bench_median(ratio, reps) / 1e6 - 1.0) * 100.0);
        }
    printf("RESULT name=poll requests=%zu errors=%zu stats_median_us=%.1f stats_max_us=%.1f "
           "census_median_us=%.1f census_max_us=%.1f\n",
           p.lat_stats.n + p.lat_census.n, p.errors, samples_median(&p.lat_stats) / 1e3,
           samples_q(&p.lat_stats, 1.0) / 1e3, samples_median(&p.lat_census) / 1e3,
           samples_q(&p.lat_census, 1.0) / 1e3);
    rcgc_gen_stats st[3];
    rcgc_get_stats(h, st);
    printf("# %.1f s measured; collections gen0 %zu, gen1 %zu, gen2 %zu (cycles variant and "
           "its untimed full collections)\n",
           secs, st[0].collections, st[1].collections, st[2].collections);
    rcgc_decref(keep);
    rcgc_heap_free(h);
    return p.errors ? 1 : 0;
}

/* ---- a large heap: census, referrers, owner pauses ---- */

enum { PH_IDLE, PH_STATS, PH_CENSUS, PH_OBJECT, PH_RETAINED, PH_DONE, NPHASES };
static const char *const phase_names[NPHASES] = {"idle",   "stats",    "census",
                                                 "object", "retained", "done"};
#define RETAINED_REQUESTS 3 /* of one object, then of a type (a third of the heap) */

typedef struct spause {
    uint64_t wall, cpu;
} spause;

typedef struct owner_log {
    /* per phase: safepoints, the longest (wall and cpu), and those over LONG_PAUSE_NS */
    uint64_t count[NPHASES], max_wall[NPHASES], max_cpu[NPHASES];
    spause *longp[NPHASES];
    size_t nlong[NPHASES], caplong[NPHASES];
} owner_log;

#define LONG_PAUSE_NS 20000u /* 20 us: far above a safepoint with nothing to do */

static void log_long(owner_log *l, int ph, uint64_t wall, uint64_t cpu)
{
    if (l->nlong[ph] == l->caplong[ph]) {
        l->caplong[ph] = l->caplong[ph] ? 2 * l->caplong[ph] : 64;
        l->longp[ph] = must(realloc(l->longp[ph], l->caplong[ph] * sizeof(spause)));
    }
    l->longp[ph][l->nlong[ph]++] = (spause){wall, cpu};
}

static int cmp_pause_desc(const void *x, const void *y)
{
    uint64_t a = ((const spause *)x)->wall, b = ((const spause *)y)->wall;
    return (a < b) - (a > b);
}

typedef struct client_job {
    int port;
    const char *heap;
    void **targets;
    uint32_t ntargets;
    _Atomic int phase;
    samples lat[NPHASES];
    uint64_t referrers_total, referents_total, from_outside;
    samples retained_lat[2]; /* an object, a type */
    size_t retained_incomplete;
    uint64_t retained_type_objects;
    size_t errors;
} client_job;

static void *client_main(void *arg)
{
    client_job *j = arg;
    hconn c;
    hconn_init(&c, j->port);
    char path[256];
    struct timespec gap = {0, 2000000}; /* 2 ms between requests: owner logs settle */
    nanosleep(&gap, NULL);
    for (int ph = PH_STATS; ph <= PH_RETAINED; ph++) {
        atomic_store(&j->phase, ph);
        uint32_t n = ph == PH_OBJECT     ? j->ntargets
                     : ph == PH_RETAINED ? 2 * RETAINED_REQUESTS
                                         : READ_REQUESTS;
        for (uint32_t i = 0; i < n; i++) {
            if (ph == PH_STATS)
                snprintf(path, sizeof path, "/v1/heaps/%s", j->heap);
            else if (ph == PH_CENSUS)
                snprintf(path, sizeof path, "/v1/heaps/%s/census", j->heap);
            else if (ph == PH_RETAINED && i < RETAINED_REQUESTS)
                snprintf(path, sizeof path,
                         "/v1/heaps/%s/objects/%" PRIuPTR "/retained?budget_ms=5000", j->heap,
                         (uintptr_t)j->targets[i]);
            else if (ph == PH_RETAINED)
                snprintf(path, sizeof path, "/v1/heaps/%s/retained?type=bench.A&budget_ms=5000",
                         j->heap);
            else
                snprintf(path, sizeof path, "/v1/heaps/%s/objects/%" PRIuPTR, j->heap,
                         (uintptr_t)j->targets[i]);
            uint64_t t0 = bench_now_ns();
            int r = hconn_get(&c, path);
            uint64_t dt = bench_now_ns() - t0;
            if (r != 0 || c.status != 200) {
                if (j->errors++ < 3)
                    fprintf(stderr, "bench_inspect: GET %s: %s %d %.*s\n", path,
                            r ? "failed" : "status", r ? r : c.status,
                            r ? 0 : (int)(c.body_len < 300 ? c.body_len : 300), c.body);
                continue;
            }
            samples_add(&j->lat[ph], dt);
            if (ph == PH_RETAINED) {
                samples_add(&j->retained_lat[i >= RETAINED_REQUESTS], dt);
                j->retained_incomplete += body_has(&c, "\"complete\":false");
                if (i >= RETAINED_REQUESTS)
                    j->retained_type_objects = json_number_after(&c, "\"retained\":");
            }
            if (ph == PH_OBJECT) {
                j->referrers_total += json_number(&c, "referrers_total");
                j->referents_total += json_number(&c, "referents_total");
                j->from_outside += json_number(&c, "from_outside");
            }
            if (ph == PH_OBJECT)
                nanosleep(&gap, NULL);
        }
        nanosleep(&gap, NULL);
    }
    atomic_store(&j->phase, PH_DONE);
    hconn_free(&c);
    return NULL;
}

/* ~10-20 us of owner work that touches the heap without allocating: increfs and decrefs of
 * live objects (never the last reference). Allocation would be a safepoint too, and the
 * timed rcgc_safepoint must be the only one. */
static uint64_t owner_work(void **objs, uint32_t n, bench_rng *rng)
{
    uint64_t sum = 0;
    for (int i = 0; i < 200; i++) {
        void *o = objs[bench_rng_index(rng, n)];
        rcgc_incref(o);
        sum += rcgc_refcount(o);
        rcgc_decref(o);
    }
    return sum;
}

static int mode_heap(int argc, char **argv)
{
    uint32_t nobj = HEAP_OBJECTS, nreq = HEAP_REQUESTS;
    bool aged = false;
    if (argc > 0)
        nobj = (uint32_t)strtoul(argv[0], NULL, 10);
    if (argc > 1)
        nreq = (uint32_t)strtoul(argv[1], NULL, 10);
    if (argc > 2)
        aged = strcmp(argv[2], "aged") == 0;
    if (nobj < 100 || nreq == 0 || nreq > nobj ||
        (argc > 2 && !aged && strcmp(argv[2], "fresh"))) {
        fprintf(stderr, "usage: bench_inspect heap [objects [requests [fresh|aged]]]\n");
        return 2;
    }
    const char *lay = aged ? "aged" : "fresh";
    rcgc_heap_options opts = {.name = "big", .ignore_environment = true};
    rcgc_heap *h = must(rcgc_heap_new_with(&opts));
    void **objs = must(malloc(nobj * sizeof *objs));
    bench_rng rng = {BENCH_SEED};

    /* 90% two-child nodes of three types, 10% leaves; children uniform over all. */
    uint64_t t0 = bench_now_ns();
    rcgc_disable(h);
    static const rcgc_type *const node_types[3] = {&type_a, &type_b, &type_c};
    for (uint32_t i = 0; i < nobj; i++)
        objs[i] = must(i % 10 == 9 ? rcgc_new(h, &blob_type) : rcgc_new(h, node_types[i % 3]));
    if (aged) {
        /* Replace objects in random order, nobj times: freed chunks are reused at random
         * and every removal moves the last object of its list into the hole, so that the
         * heap's lists no longer follow the memory, as in a program that has run a while. */
        for (uint32_t k = 0; k < nobj; k++) {
            uint32_t i = bench_rng_index(&rng, nobj);
            rcgc_decref(objs[i]);
            objs[i] =
                must(i % 10 == 9 ? rcgc_new(h, &blob_type) : rcgc_new(h, node_types[i % 3]));
        }
    }
    for (uint32_t i = 0; i < nobj; i++) {
        if (i % 10 == 9)
            continue;
        node *p = objs[i];
        p->a = objs[bench_rng_index(&rng, nobj)];
        rcgc_incref(p->a);
        p->b = objs[bench_rng_index(&rng, nobj)];
        rcgc_incref(p->b);
    }
    (void)rcgc_collect(h, 2); /* everything to the oldest generation */
    rcgc_enable(h);
    double build_s = (double)(bench_now_ns() - t0) / 1e9;

    int port = server_start();
    /* The owner's cost of one publication, called directly (a safepoint publishes the
     * same way when the last snapshot is over 50 ms old). */
    samples pub = {0}, pub_cpu = {0};
    for (uint32_t i = 0; i < PUBLISH_REPS; i++) {
        uint64_t c0 = cpu_now_ns(), w0 = bench_now_ns();
        if (rcgc__snapshot_publish(h) != 0)
            die("rcgc__snapshot_publish failed");
        uint64_t w = bench_now_ns() - w0, c = cpu_now_ns() - c0;
        samples_add(&pub, w);
        samples_add(&pub_cpu, c);
    }
    size_t ntypes = 0, nsites = 0, nobjects = 0;
    {
        hconn c;
        hconn_init(&c, port);
        if (hconn_get(&c, "/v1/heaps/big") == 0 && c.status == 200) {
            ntypes = (size_t)json_number(&c, "types");
            nsites = (size_t)json_number(&c, "sites");
            nobjects = (size_t)json_number(&c, "objects");
        }
        hconn_free(&c);
    }
    printf("# heap (%s): %zu objects (%u built in %.2f s), %zu types, %zu sites; server on "
           "port %d\n",
           lay, nobjects, nobj, build_s, ntypes, nsites, port);
    printf(
        "RESULT name=publish layout=%s objects=%zu types=%zu sites=%zu reps=%u median_us=%.2f "
        "max_us=%.2f cpu_median_us=%.2f\n",
        lay, nobjects, ntypes, nsites, PUBLISH_REPS, samples_median(&pub) / 1e3,
        samples_q(&pub, 1.0) / 1e3, samples_median(&pub_cpu) / 1e3);

    /* Targets spread over the heap, the same for every run. */
    void **targets = must(malloc(nreq * sizeof *targets));
    for (uint32_t i = 0; i < nreq; i++)
        targets[i] = objs[(uint32_t)(((uint64_t)i * 2654435761u + 12345u) % nobj)];
    client_job job = {.port = port, .heap = "big", .targets = targets, .ntargets = nreq};
    atomic_init(&job.phase, PH_IDLE);
    pthread_t th;
    if (pthread_create(&th, NULL, client_main, &job) != 0)
        die("pthread_create");

    owner_log log;
    memset(&log, 0, sizeof log);
    uint64_t sink = 0;
    for (;;) {
        int ph = atomic_load_explicit(&job.phase, memory_order_relaxed);
        if (ph == PH_DONE)
            break;
        sink += owner_work(objs, nobj, &rng);
        uint64_t c0 = cpu_now_ns(), w0 = bench_now_ns();
        rcgc_safepoint(h);
        uint64_t w = bench_now_ns() - w0, c = cpu_now_ns() - c0;
        /* The phase as it is now: a client switches phase before its first request, so
         * the walk that request causes counts in the new phase. */
        ph = atomic_load_explicit(&job.phase, memory_order_relaxed);
        log.count[ph]++;
        if (w > log.max_wall[ph])
            log.max_wall[ph] = w;
        if (c > log.max_cpu[ph])
            log.max_cpu[ph] = c;
        if (w > LONG_PAUSE_NS)
            log_long(&log, ph, w, c);
    }
    pthread_join(th, NULL);
    if (sink == 0)
        printf("# (never)\n");

    /* Retained: every object is held from the C array (a root), so an object retains
     * itself and the type its own objects; the cost is the full analysis all the same. */
    for (int k = 0; k < 2; k++)
        printf("RESULT name=latency layout=%s endpoint=retained_%s n=%zu median_ms=%.2f "
               "max_ms=%.2f incomplete=%zu type_retained_objects=%" PRIu64 "\n",
               lay, k ? "type" : "object", job.retained_lat[k].n,
               samples_median(&job.retained_lat[k]) / 1e6,
               samples_q(&job.retained_lat[k], 1.0) / 1e6, job.retained_incomplete,
               job.retained_type_objects);
    for (int ph = PH_STATS; ph <= PH_CENSUS; ph++)
        printf("RESULT name=latency layout=%s endpoint=%s n=%zu median_us=%.1f p99_us=%.1f "
               "max_us=%.1f "
               "owner_safepoints=%" PRIu64 " owner_max_us=%.1f owner_cpu_max_us=%.1f\n",
               lay, ph == PH_STATS ? "stats" : "census", job.lat[ph].n,
               samples_median(&job.lat[ph]) / 1e3, samples_q(&job.lat[ph], 0.99) / 1e3,
               samples_q(&job.lat[ph], 1.0) / 1e3, log.count[ph],
               (double)log.max_wall[ph] / 1e3, (double)log.max_cpu[ph] / 1e3);
    /* Each object request is one walk served at one safepoint: the requests' pauses are
     * the n longest safepoints of that phase. */
    samples lw = {0}, lc = {0};
    qsort(log.longp[PH_OBJECT], log.nlong[PH_OBJECT], sizeof(spause), cmp_pause_desc);
    for (size_t i = 0; i < log.nlong[PH_OBJECT] && i < job.lat[PH_OBJECT].n; i++) {
        samples_add(&lw, log.longp[PH_OBJECT][i].wall);
        samples_add(&lc, log.longp[PH_OBJECT][i].cpu);
    }
    printf(
        "RESULT name=latency layout=%s endpoint=object n=%zu median_ms=%.2f max_ms=%.2f "
        "referrers_avg=%.2f referents_avg=%.2f\n",
        lay, job.lat[PH_OBJECT].n, samples_median(&job.lat[PH_OBJECT]) / 1e6,
        samples_q(&job.lat[PH_OBJECT], 1.0) / 1e6,
        job.lat[PH_OBJECT].n ? (double)job.referrers_total / (double)job.lat[PH_OBJECT].n : 0,
        job.lat[PH_OBJECT].n ? (double)job.referents_total / (double)job.lat[PH_OBJECT].n : 0);
    printf("RESULT name=pause layout=%s endpoint=object n=%zu wall_median_ms=%.2f "
           "wall_max_ms=%.2f "
           "cpu_median_ms=%.2f cpu_max_ms=%.2f\n",
           lay, lw.n, samples_median(&lw) / 1e6, samples_q(&lw, 1.0) / 1e6,
           samples_median(&lc) / 1e6, samples_q(&lc, 1.0) / 1e6);
    for (int ph = PH_STATS; ph <= PH_CENSUS; ph++)
        if (log.nlong[ph] > 0)
            printf("# note: %zu owner safepoints over %u us during the %s phase (publications "
                   "or preemption)\n",
                   log.nlong[ph], LONG_PAUSE_NS / 1000u, phase_names[ph]);
    for (int ph = 0; ph < NPHASES; ph++)
        free(log.longp[ph]);
    free(lw.v);
    free(lc.v);

    rcgc_inspect_stop();
    for (uint32_t i = 0; i < nobj; i++)
        rcgc_decref(objs[i]);
    free(objs);
    free(targets);
    rcgc_heap_free(h);
    return job.errors ? 1 : 0;
}

/* ---- a host for wrk ---- */

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static int mode_serve(int argc, char **argv)
{
    long seconds = argc > 0 ? atol(argv[0]) : 0;
    rcgc_heap_options opts = {.name = "serve", .ignore_environment = true};
    rcgc_heap *h = must(rcgc_heap_new_with(&opts));
    /* A few thousand live objects of three types, and a little churn per iteration. */
    enum { LIVE = 3000 };
    static void *live[LIVE];
    for (int i = 0; i < LIVE; i++)
        live[i] =
            must(i % 3 == 2 ? rcgc_new(h, &blob_type) : rcgc_new(h, i % 3 ? &type_a : &type_b));
    int port = server_start();
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    printf("PORT %d\n", port);
    fflush(stdout);
    uint64_t end = seconds > 0 ? bench_now_ns() + (uint64_t)seconds * 1000000000u : 0;
    uint64_t iterations = 0;
    uint32_t k = 0;
    while (!g_stop && (end == 0 || bench_now_ns() < end)) {
        for (int i = 0; i < 100; i++, k++) { /* replace one live object */
            void *o = must(rcgc_new(h, k % 3 ? &type_a : &type_c));
            void *old = live[k % LIVE];
            live[k % LIVE] = o;
            rcgc_decref(old);
        }
        rcgc_safepoint(h);
        rcgc_heap_release(h);
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
        rcgc_heap_acquire(h);
        iterations++;
    }
    rcgc_inspect_stop();
    printf("# serve: %" PRIu64 " host iterations (100 allocations, a safepoint, 1 ms sleep)\n",
           iterations);
    for (int i = 0; i < LIVE; i++)
        rcgc_decref(live[i]);
    rcgc_heap_free(h);
    return 0;
}

/* ---- a load generator for machines without wrk ---- */

typedef struct load_job {
    int port;
    const char *path;
    unsigned conns;
    uint64_t end_ns;
    uint64_t done, errors;
} load_job;

/* Cycles over `conns` keep-alive connections, one request at a time: a thread has one
 * request in flight, so this generator is a floor (on the machine of bench/README.md it
 * measured 34,000 requests/s where wrk measured 56,000). Failed requests and answers
 * other than 200 are counted on wrk's "Non-2xx or 3xx responses" line. */
static void *load_main(void *arg)
{
    load_job *j = arg;
    hconn *c = must(calloc(j->conns, sizeof *c));
    for (unsigned i = 0; i < j->conns; i++)
        hconn_init(&c[i], j->port);
    while (bench_now_ns() < j->end_ns) {
        for (unsigned i = 0; i < j->conns; i++) {
            if (hconn_get(&c[i], j->path) == 0 && c[i].status == 200)
                j->done++;
            else
                j->errors++;
        }
    }
    for (unsigned i = 0; i < j->conns; i++)
        hconn_free(&c[i]);
    free(c);
    return NULL;
}

static int mode_load(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr,
                "usage: bench_inspect load <port> <path> [seconds [connections [threads]]]\n");
        return 2;
    }
    int port = atoi(argv[0]);
    long seconds = argc > 2 ? atol(argv[2]) : 10;
    unsigned conns = argc > 3 ? (unsigned)atoi(argv[3]) : 32;
    unsigned threads = argc > 4 ? (unsigned)atoi(argv[4]) : 2;
    if (port <= 0 || seconds <= 0 || threads == 0 || conns < threads)
        return 2;
    load_job *jobs = must(calloc(threads, sizeof *jobs));
    pthread_t *th = must(calloc(threads, sizeof *th));
    uint64_t t0 = bench_now_ns();
    for (unsigned i = 0; i < threads; i++) {
        jobs[i] = (load_job){port,
                             argv[1],
                             conns / threads + (i < conns % threads),
                             t0 + (uint64_t)seconds * 1000000000u,
                             0,
                             0};
        if (pthread_create(&th[i], NULL, load_main, &jobs[i]) != 0)
            die("pthread_create");
    }
    uint64_t done = 0, errors = 0;
    for (unsigned i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        done += jobs[i].done;
        errors += jobs[i].errors;
    }
    double secs = (double)(bench_now_ns() - t0) / 1e9;
    printf("bench_inspect load: %u threads, %u connections, %.2f s, %" PRIu64
           " requests, %" PRIu64 " errors\n",
           threads, conns, secs, done, errors);
    if (errors)
        printf("  Non-2xx or 3xx responses: %" PRIu64 "\n", errors);
    printf("Requests/sec: %.2f\n", (double)done / secs);
    free(jobs);
    free(th);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    unsetenv("RCGC_INSPECT_TOKEN"); /* the clients here send no token */
    if (argc < 2) {
        fprintf(stderr,
                "usage: %s churn [ops [reps]] | heap [objects [requests]] | "
                "serve [seconds] | load <port> <path> [seconds [conns [threads]]]\n",
                argv[0]);
        return 2;
    }
    if (strcmp(argv[1], "churn") == 0)
        return mode_churn(argc - 2, argv + 2);
    if (strcmp(argv[1], "heap") == 0)
        return mode_heap(argc - 2, argv + 2);
    if (strcmp(argv[1], "serve") == 0)
        return mode_serve(argc - 2, argv + 2);
    if (strcmp(argv[1], "load") == 0)
        return mode_load(argc - 2, argv + 2);
    fprintf(stderr, "bench_inspect: unknown mode '%s'\n", argv[1]);
    return 2;
}
