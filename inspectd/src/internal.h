/* internal.h: the inside of librcgc-inspect, shared by its files and never installed.
 *
 * A request travels: server.c (libmicrohttpd: body, Host, bearer token) -> router.c
 * (route table, captures, query validation, control gating) -> one handler, which fills
 * an insp_resp through the reply helpers below. Handlers never walk a live heap: they
 * read snapshots (snap.c) or run a function on the heap's owner at a safepoint
 * (rcgc__inspect_walk, rcgc__inspect_owner_call).
 *
 * Adding an endpoint: write `int rcgc__handle_<resource>_<verb>(const insp_req *,
 * insp_resp *)` in a handlers_<area>.c file, declare it below, and add one row to the
 * table in router.c ({method, pattern, handler, allowed query parameters, flags}).
 *
 * Threads: handlers run on libmicrohttpd's threads (a pool of 4), several at a time.
 * Everything here is safe from any of them unless its comment says otherwise. A walk
 * blocks its pool thread until the owner serves it (at most walk_timeout_ms), and the
 * connections of that thread wait meanwhile. Every non-static name is rcgc__-prefixed:
 * the static archive must define nothing else. */
#ifndef RCGC_INSPECT_INTERNAL_H
#define RCGC_INSPECT_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <netinet/in.h>

#include <rcgc/inspect.h>
#include <rcgc/rcgc.h>
#include <rcgc/snapshot.h>
#include <rcgc/tracemalloc.h>

#define INSP_PROTOCOL 1            /* "protocol" of every JSON answer */
#define INSP_BODY_MAX (16u * 1024) /* larger request bodies get 413 */
#define INSP_PARAMS_MAX 16         /* more query parameters get 400 */
#define INSP_CAPTURE_MAX 512       /* longest decoded {heap} / {id} capture */
/* 2^53 - 1: the largest integer a JSON client keeps exact */
#define INSP_JSON_INT_MAX 9007199254740991u

#if defined(__GNUC__) || defined(__clang__)
#define INSP_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define INSP_PRINTF(f, a)
#endif

/* ---- configuration (config.c) ---- */

/* The running server's settings, resolved from rcgc_inspect_options and the
 * environment. Written only while no server thread runs. */
typedef struct insp_config {
    struct sockaddr_in addr; /* where to listen */
    bool loopback;           /* addr is 127.0.0.0/8: Host headers are checked */
    char *token;             /* NULL: no bearer token required; malloc'd */
    size_t token_len;
    bool allow_control;
    unsigned max_connections;
    unsigned idle_timeout_s;
    unsigned walk_timeout_ms;
    char *web_dir; /* RCGC_INSPECT_WEB_DIR made absolute, or NULL (the copies compiled in) */
} insp_config;

/* Returns: the current configuration (borrowed). */
const insp_config *rcgc__insp_config(void);
/* Replaces the configuration (copies it; token and web_dir are copied). Only while the
 * server does not run: unit tests use it to exercise the router without a server.
 * Returns: 0 or RCGC_ENOMEM. */
int rcgc__insp_config_set(const insp_config *cfg);
/* Frees token and web_dir and resets every field to its default. */
void rcgc__insp_config_reset(void);

/* Resolves opts (NULL: everything from the environment) into cfg, the defaults filling
 * the gaps. Returns: 0, RCGC_EINVAL (malformed or non-loopback address without
 * allow_remote, malformed RCGC_INSPECT_CONTROL, RCGC_INSPECT_WEB_DIR not a directory) or
 * RCGC_ENOMEM. On success cfg->token and cfg->web_dir are malloc'd (or NULL); on error
 * both are NULL. (config.c) */
int rcgc__insp_config_resolve(const rcgc_inspect_options *opts, insp_config *cfg);
/* Parses "a.b.c.d:port", ":port", "port" or "localhost:port" (port 0..65535).
 * Returns: 0 or RCGC_EINVAL. (config.c) */
int rcgc__insp_parse_address(const char *s, struct sockaddr_in *out);

/* ---- requests and responses ---- */

typedef enum insp_method {
    INSP_OTHER = 0,
    INSP_GET = 1,
    INSP_HEAD = 2, /* routed as GET; libmicrohttpd drops the body */
    INSP_POST = 4,
    INSP_PUT = 8,
    INSP_DELETE = 16,
} insp_method;

/* One query parameter. Raw (as received) in insp_http; percent-decoded in insp_req.
 * value is "" for a bare key ("?a"). */
typedef struct insp_param {
    const char *key;
    const char *value;
} insp_param;

/* What server.c hands the router: the request as received. */
typedef struct insp_http {
    const char *method; /* "GET", ... */
    const char *path;   /* raw (still percent-encoded), without the query */
    const insp_param *params;
    size_t nparams;
    bool too_many_params; /* more than INSP_PARAMS_MAX were sent */
    const char *body;     /* NUL-terminated; "" without a body */
    size_t body_len;
    const char *content_type;  /* request header, NULL when absent */
    const char *if_none_match; /* request header, NULL when absent */
} insp_http;

/* What a handler sees. Every string is NUL-terminated, decoded and valid during the
 * handler call only. */
typedef struct insp_req {
    insp_method method;
    const char *path;         /* raw path, for messages */
    const char *heap;         /* the {heap} capture, percent-decoded; NULL without one */
    const char *id;           /* the {id} capture, percent-decoded; NULL without one */
    const char *name;         /* the {name} capture (GET /assets/{name}); NULL without one */
    const insp_param *params; /* decoded, each key once, each allowed by the route */
    size_t nparams;
    const char *body; /* NUL-terminated request body ("" when none) */
    size_t body_len;
    const char *content_type;  /* request header or NULL */
    const char *if_none_match; /* request header or NULL */
} insp_req;

/* What a handler fills (through the reply helpers). The server turns it into an HTTP
 * response and frees body. */
typedef struct insp_resp {
    unsigned status;          /* 0 until a reply helper ran */
    const char *content_type; /* static string */
    char *body;               /* malloc'd, owned; JSON bodies are NUL-terminated after len */
    size_t len;
    char allow[48];         /* "Allow" header (405) or "" */
    char *location;         /* "Location" header (201) or NULL; malloc'd, owned */
    unsigned retry_after_s; /* "Retry-After" (503) when > 0 */
    bool www_authenticate;  /* "WWW-Authenticate: Bearer" (401) */
    /* "ETag" ("\"<16 hex digits>\"") or "": a static file, sent with Cache-Control:
     * no-cache (revalidated with If-None-Match) instead of no-store. */
    char etag[24];
    /* "Content-Disposition" (a download: GET .../pprof/heap) or "". */
    char disposition[112];
    /* GET /v1/events: the event stream to serve instead of body (events.c; status 200).
     * Owned: server.c hands it to rcgc__events_response, rcgc__resp_clear discards it. */
    struct insp_stream *stream;
} insp_resp;

/* A handler: reads rq, fills rs with exactly one reply helper call (a second call
 * replaces the first). Returns: 0; a negative value means it could not build its
 * answer (out of memory) and the router answers 500 unless rs was filled. */
typedef int (*insp_handler)(const insp_req *rq, insp_resp *rs);

/* ---- replies (reply.c) ---- */

/* Replies status with the JSON document body (application/json, compact, one line with
 * a final newline). Ownership: steals body (NULL: out of memory -> 500).
 * Returns: 0, or -1 when the document could not be encoded (then rs holds a 500). */
int rcgc__reply_json(insp_resp *rs, unsigned status, json_t *body);
/* Replies status with {"protocol":1,"error":{"code":code,"message":<printf>}}.
 * code is snake_case. Returns: -1 (so that handlers can `return rcgc__reply_error(...)`
 * after a failure and 0 is kept for success). */
int rcgc__reply_error(insp_resp *rs, unsigned status, const char *code, const char *fmt, ...)
    INSP_PRINTF(4, 5);
/* Replies status with body as it is. Ownership: steals body (malloc'd).
 * Returns: 0. */
int rcgc__reply_raw(insp_resp *rs, unsigned status, const char *content_type, char *body,
                    size_t len);
/* Frees rs->body and rs->location and zeroes rs. */
void rcgc__resp_clear(insp_resp *rs);

/* JSON helpers; each returns a new reference or NULL when memory runs out, for
 * json_object_set_new / json_array_append_new, which steal even NULL. */
json_t *rcgc__json_top(void);           /* {"protocol":1} */
json_t *rcgc__json_u64(uint64_t v);     /* "123": 64-bit counters travel as strings */
json_t *rcgc__json_i64(int64_t v);      /* "-3" */
json_t *rcgc__json_text(const char *s); /* a string; invalid UTF-8 -> U+FFFD */
/* {"serial":"<serial>","age_ms":<ms or null when serial is 0>}. */
json_t *rcgc__json_snapshot(uint64_t serial, uint64_t time_ns);
/* Milliseconds since time_ns (CLOCK_MONOTONIC), as a JSON integer. */
json_t *rcgc__json_age_ms(uint64_t time_ns);

/* A growable text buffer (for /metrics and the HTML page). Appends after a failed
 * allocation are ignored and set failed. */
typedef struct insp_buf {
    char *data;
    size_t len, cap;
    bool failed;
} insp_buf;
void rcgc__buf_add(insp_buf *b, const char *s, size_t n);
void rcgc__buf_puts(insp_buf *b, const char *s);
void rcgc__buf_printf(insp_buf *b, const char *fmt, ...) INSP_PRINTF(2, 3);
/* Appends s with invalid UTF-8 sequences replaced by U+FFFD. */
void rcgc__buf_utf8(insp_buf *b, const char *s);
/* Appends s percent-encoded as one URL path segment or query value (unreserved
 * characters as they are). */
void rcgc__buf_pct(insp_buf *b, const char *s);

/* Nanoseconds of CLOCK_MONOTONIC (the clock of rcgc__snapshot.time_ns). */
uint64_t rcgc__insp_now_ns(void);

/* ---- router (router.c) ---- */

/* Route flags. */
#define INSP_ROUTE_CONTROL 1u /* a control request: 403 unless control is enabled */
#define INSP_ROUTE_PUBLIC 2u  /* no token needed (the dashboard's files); Host is checked */

typedef struct insp_route {
    insp_method method;  /* exactly one method; GET routes answer HEAD too */
    const char *pattern; /* "/v1/heaps/{heap}/census": literals, {heap}, {id}, {name} */
    insp_handler handler;
    /* allowed query parameters, space-separated; NULL: none. A name ending in '*'
     * ("include*") may be given several times (rcgc__query_all); the others once. */
    const char *params;
    unsigned flags; /* INSP_ROUTE_* */
} insp_route;

/* Answers one request: 404 (no route has this path), 405 with Allow (no route for this
 * method), 400 (bad percent-encoding, unknown / repeated / too many parameters), 403
 * (control disabled) or whatever the handler replies. Always fills rs. */
void rcgc__dispatch(const insp_http *in, insp_resp *rs);
/* Whether the route for method (HEAD as GET) and raw path is INSP_ROUTE_PUBLIC: server.c
 * asks no token for it. False when no route matches (the token is checked first). */
bool rcgc__route_public(const char *method, const char *path);

/* Matches a raw path against a pattern; on a match stores the percent-decoded captures
 * in heap / id (each INSP_CAPTURE_MAX + 1 bytes, "" when the pattern has none); {name}
 * goes to id (no pattern has both).
 * Returns: 1 match, 0 no match, -1 a capture segment is badly encoded (or decodes to
 * a NUL byte, or is empty or too long). */
int rcgc__route_match(const char *pattern, const char *path, char *heap, char *id);

/* Percent-decodes n bytes of s into out (cap bytes, NUL-terminated). '+' is kept.
 * Returns: the decoded length, or -1 for a bad escape, a decoded NUL or no room. */
long rcgc__pct_decode(const char *s, size_t n, char *out, size_t cap);

/* ---- query parameters (router.c); each replies 400 itself on a bad value ---- */

/* Returns: the decoded value of parameter name, or NULL when it is absent. */
const char *rcgc__query_str(const insp_req *rq, const char *name);
/* The values of a repeatable parameter, in request order: at most cap of them in out.
 * Returns: how many were stored. */
size_t rcgc__query_all(const insp_req *rq, const char *name, const char **out, size_t cap);
/* A decimal integer in [min, max] (no sign, no spaces, at most 19 digits); absent:
 * *out = dflt. Returns: 0, or -1 after replying 400 bad_parameter. */
int rcgc__query_uint(const insp_req *rq, insp_resp *rs, const char *name, uint64_t min,
                     uint64_t max, uint64_t dflt, uint64_t *out);
/* A label: [A-Za-z0-9_.-]{1,64}. Absent: *out = NULL and 0, or, when required, 400
 * missing_parameter. Returns: 0, or -1 after replying 400. */
int rcgc__query_label(const insp_req *rq, insp_resp *rs, const char *name, bool required,
                      const char **out);
/* One of the space-separated words in choices; absent: *out = dflt. Returns: 0, or -1
 * after replying 400 bad_parameter. */
int rcgc__query_choice(const insp_req *rq, insp_resp *rs, const char *name, const char *choices,
                       const char *dflt, const char **out);
/* Whether s is a valid label ([A-Za-z0-9_.-]{1,64}). */
bool rcgc__label_valid(const char *s);

/* ---- heaps: snapshots and calls (snap.c, call.c) ---- */

/* A snapshot copied out of the registry lock: self-contained (names copied), so that
 * JSON is built without holding any lock. */
typedef struct insp_type {
    const void *key; /* the rcgc_type pointer: identity for baselines, never followed */
    const char *name;
    size_t count, bytes;
    bool tracked;
} insp_type;

typedef struct insp_site {
    const void *type_key; /* the rcgc_type pointer, never followed */
    const char *type;     /* type name */
    const char *file;
    int line;
    size_t count, bytes;
} insp_site;

typedef struct insp_snap {
    rcgc__snapshot s; /* as published (s.ntypes, s.nsites too); s.types, s.sites NULL */
    insp_type *types;
    size_t ntypes;
    insp_site *sites;
    size_t nsites;
} insp_snap;

#define INSP_SNAP_TYPES 1u
#define INSP_SNAP_SITES 2u

/* Copies the newest snapshot of heap (with its types and/or sites as what asks). A heap
 * that has not published yet is asked to publish (a short call at its next safepoint)
 * once. Returns: 0 and *out (free with rcgc__snap_free), RCGC_ENOENT (no such heap) or
 * RCGC_ENOMEM. */
int rcgc__snap_get(const char *heap, unsigned what, insp_snap **out);
void rcgc__snap_free(insp_snap *s);
/* Same, replying 404 heap_not_found or 500 itself. Returns: 0 or -1 (rs filled). */
int rcgc__snap_get_reply(const char *heap, unsigned what, insp_snap **out, insp_resp *rs);

/* The names of every heap of the process, in creation order, each once (heaps that
 * share a name are reachable by that name only as the first of them).
 * Returns: 0 and a malloc'd array of malloc'd names (free with rcgc__names_free), or
 * RCGC_ENOMEM. */
int rcgc__heap_names(char ***names, size_t *n);
void rcgc__names_free(char **names, size_t n);

/* Runs fn(h, arg) against the heap called heap, at a safepoint of its owner or on this
 * thread while the owner has released the heap, waiting at most the configured
 * walk_timeout_ms. fn follows rcgc__heap_call's rules: read-only calls of rcgc.h only
 * (walks, refcounts, type_of, ...), no allocation, decref or collection; it should bound
 * its own work (count visited objects and stop) because the owner waits for it.
 * Returns: 0 once fn ran; -1 after replying 404 heap_not_found (no such heap, or it
 * was freed before fn ran), 503 no_safepoint with Retry-After (no safepoint in time) or
 * 500. */
int rcgc__inspect_walk(insp_resp *rs, const char *heap, void (*fn)(rcgc_heap *h, void *arg),
                       void *arg);
/* The same for a call that changes the heap (collect, set_threshold, set_debug):
 * rcgc__heap_call_owner, on the owner thread only; a released heap answers 503. */
int rcgc__inspect_owner_call(insp_resp *rs, const char *heap,
                             void (*fn)(rcgc_heap *h, void *arg), void *arg);
/* Whether a heap of that name is registered (its published snapshot exists); replies
 * 404 heap_not_found and returns -1 when not, else returns 0. */
int rcgc__inspect_heap_known(insp_resp *rs, const char *heap);

/* ---- /proc (proc.c) ---- */

typedef struct insp_proc {
    uint64_t rss_bytes, vm_bytes;
    unsigned threads;
    bool have_status;
    uint64_t start_time_ms; /* Unix time the process started, ms; 0 unknown */
    uint64_t uptime_ms;     /* since the process started; 0 unknown */
    uint64_t cpu_ms;        /* user + system CPU time */
    bool have_cpu;
} insp_proc;

/* Reads /proc/self/status, /proc/self/stat, /proc/stat and /proc/uptime; fields that
 * cannot be read stay 0. */
void rcgc__proc_read(insp_proc *p);
/* Returns: /proc/self/cmdline (NUL-separated arguments, at most 64 KiB) malloc'd, with
 * its length in *len and whether it was longer in *truncated; NULL when unreadable. */
char *rcgc__proc_cmdline(size_t *len, bool *truncated);

/* ---- pause histograms from the event sink (sink.c) ---- */

#define INSP_PAUSE_BUCKETS 16 /* finite upper bounds; +Inf is implied */

/* Upper bounds of the pause histogram, in nanoseconds and as Prometheus writes them. */
extern const uint64_t rcgc__pause_bounds_ns[INSP_PAUSE_BUCKETS];
extern const char *const rcgc__pause_bounds_text[INSP_PAUSE_BUCKETS];

typedef struct insp_pauses {
    uint64_t bucket[3][INSP_PAUSE_BUCKETS + 1]; /* cumulative, last is +Inf (== count) */
    uint64_t sum_ns[3];
} insp_pauses;

/* Installs (on) or removes (off) the process-wide event sink. */
void rcgc__sink_enable(bool on);
/* The pauses of the heap called name seen since the sink was first installed (zeros
 * for a heap never seen). */
void rcgc__sink_pauses(const char *name, insp_pauses *out);

/* ---- baselines (handlers_baselines.c) ---- */

/* A stored baseline: the census and sites of one snapshot under a label. Immutable once
 * stored and reference-counted, so that a reader keeps it while it is replaced. */
typedef struct insp_bl_type {
    const void *key; /* the rcgc_type pointer, never followed */
    const char *name;
    size_t count, bytes;
    bool tracked;
} insp_bl_type;

typedef struct insp_bl_site {
    const void *type_key;
    const char *type, *file;
    int line;
    size_t count, bytes;
} insp_bl_site;

typedef struct insp_baseline {
    char label[65];
    uint64_t serial, time_ns; /* of the snapshot it was taken from */
    size_t objects, bytes;
    insp_bl_type *types; /* sorted by key */
    size_t ntypes;
    insp_bl_site *sites; /* sorted by (type_key, line, file) */
    size_t nsites;
    /* private to handlers_baselines.c */
    char *heap;
    uint64_t seq;
    unsigned refs;
} insp_baseline;

/* Forgets every stored baseline (server stop). */
void rcgc__baselines_clear(void);
/* The baseline label of heap, held until rcgc__baseline_release.
 * Returns: 0 and *out, or RCGC_ENOENT. */
int rcgc__baseline_get(const char *heap, const char *label, insp_baseline **out);
void rcgc__baseline_release(insp_baseline *b); /* NULL is a no-op */
/* The entry of b for the type key / the site (type key, file, line), or NULL. */
const insp_bl_type *rcgc__baseline_type(const insp_baseline *b, const void *key);
const insp_bl_site *rcgc__baseline_site(const insp_baseline *b, const void *type_key,
                                        const char *file, int line);
/* {"label":..,"serial":..,"age_ms":..} (the baselineRef of census and sites). */
json_t *rcgc__baseline_ref_json(const insp_baseline *b);

/* ---- handlers, one per endpoint ---- */

int rcgc__handle_process_get(const insp_req *rq, insp_resp *rs);
int rcgc__handle_heaps_get(const insp_req *rq, insp_resp *rs);
int rcgc__handle_heap_get(const insp_req *rq, insp_resp *rs);
int rcgc__handle_census_get(const insp_req *rq, insp_resp *rs);
int rcgc__handle_sites_get(const insp_req *rq, insp_resp *rs);
int rcgc__handle_baselines_get(const insp_req *rq, insp_resp *rs);
int rcgc__handle_baselines_post(const insp_req *rq, insp_resp *rs);
int rcgc__handle_collect_post(const insp_req *rq, insp_resp *rs);
int rcgc__handle_thresholds_put(const insp_req *rq, insp_resp *rs);
int rcgc__handle_debug_put(const insp_req *rq, insp_resp *rs);
int rcgc__handle_metrics_get(const insp_req *rq, insp_resp *rs);
/* The walk endpoints (handlers_objects.c). */
int rcgc__handle_objects_get(const insp_req *rq, insp_resp *rs);
int rcgc__handle_object_get(const insp_req *rq, insp_resp *rs);
int rcgc__handle_path_get(const insp_req *rq, insp_resp *rs);
int rcgc__handle_garbage_get(const insp_req *rq, insp_resp *rs);
/* What an object or a type retains (handlers_retained.c). */
int rcgc__handle_object_retained_get(const insp_req *rq, insp_resp *rs);
int rcgc__handle_type_retained_get(const insp_req *rq, insp_resp *rs);
/* Parses rq->id, an object id: the address in decimal, or in hexadecimal with 0x (as the
 * debug output prints it). Returns: 0, or -1 after replying 400 bad_id. */
int rcgc__parse_object_id(const insp_req *rq, insp_resp *rs, uintptr_t *out);
/* rcgc__inspect_walk(rs, rq->heap, fn, arg) for the endpoints on one object (rq->id):
 * fn sets *valid, a flag inside arg, to whether the id names a live object of the heap
 * (rcgc__object_valid), and reads through the id only then. Returns: 0 when valid; -1
 * after the walk failed (rs holds its answer) or after replying 404 object_not_found. */
int rcgc__walk_object(const insp_req *rq, insp_resp *rs, void (*fn)(rcgc_heap *h, void *arg),
                      void *arg, const bool *valid);
/* "0x7f..": an object's address as the debug output prints it. Returns: a new reference. */
json_t *rcgc__json_address(uintptr_t id);
int rcgc__handle_suspects_get(const insp_req *rq, insp_resp *rs);
/* The leak-suspect sampler (handlers_suspects.c): a thread that samples every heap's
 * census after its collections while the server runs. stop also forgets the samples. */
void rcgc__suspects_start(void);
void rcgc__suspects_stop(void);

/* The small-object allocator (handlers_alloc.c): its figures from the snapshot, or
 * sys._debugmallocstats's text (?format=text). */
int rcgc__handle_allocator_get(const insp_req *rq, insp_resp *rs);

/* Allocation tracing, tracemalloc's model (handlers_tracing.c): status and control,
 * statistics of a fresh tracemalloc snapshot (filtered, or compared with a kept one),
 * the snapshots the server keeps, one object's traceback and a pprof heap profile. */
int rcgc__handle_tracing_get(const insp_req *rq, insp_resp *rs);
int rcgc__handle_tracing_post(const insp_req *rq, insp_resp *rs);
int rcgc__handle_tracing_statistics_get(const insp_req *rq, insp_resp *rs);
int rcgc__handle_tracing_snapshots_get(const insp_req *rq, insp_resp *rs);
int rcgc__handle_tracing_snapshots_post(const insp_req *rq, insp_resp *rs);
int rcgc__handle_object_traceback_get(const insp_req *rq, insp_resp *rs);
int rcgc__handle_pprof_heap_get(const insp_req *rq, insp_resp *rs);
/* Frees every tracing snapshot the server keeps (server stop). */
void rcgc__tracing_snapshots_clear(void);
/* [{"file","line","function"}, ...] most recent frame first, or JSON null for NULL.
 * Returns: a new reference (NULL when memory runs out). */
json_t *rcgc__traceback_json(const rcgc_traceback *tb);

/* Debug flag names (handlers_control.c): "stats", "collectable", "uncollectable",
 * "saveall". Returns: a new JSON array of the names of the bits set in flags. */
json_t *rcgc__debug_flag_names(unsigned flags);
/* {"flags":[names],"value":flags} (handlers_heaps.c). Returns: a new reference. */
json_t *rcgc__debug_json(unsigned flags);

/* ---- the dashboard: GET / and GET /assets/{name} (handlers_web.c) ---- */

/* A file compiled into the library (web_assets.c, generated from web/ by
 * cmake/RcgcEmbedFiles.cmake; an empty table when built with RCGC_INSPECT_WEB=OFF). */
typedef struct insp_web_file {
    const char *name;         /* "app.js": served as /assets/<name> */
    const char *content_type; /* "text/javascript; charset=utf-8" */
    const unsigned char *data;
    size_t len;
    const char *etag; /* "\"<first 16 hex digits of the SHA-256>\"" */
} insp_web_file;
extern const insp_web_file rcgc__web_files[];
extern const size_t rcgc__web_nfiles;

/* GET /: index.html (from RCGC_INSPECT_WEB_DIR, else compiled in, else a page of links).
 * GET /assets/{name}: one file by name, 404 not_found when there is none. HTML answers
 * get a Content-Security-Policy from server.c. Both routes are INSP_ROUTE_PUBLIC. */
int rcgc__handle_dashboard_get(const insp_req *rq, insp_resp *rs);
int rcgc__handle_asset_get(const insp_req *rq, insp_resp *rs);

/* ---- the event stream GET /v1/events (events.c) ---- */

/* A stream is a response of unknown size, not an insp_resp body: the handler reserves
 * one (at most 8 open, then 503 too_many_streams) and leaves it in rs->stream with
 * status 200; server.c then builds the libmicrohttpd response with
 * rcgc__events_response instead of a buffer. */
typedef struct insp_stream insp_stream;
struct MHD_Connection;
struct MHD_Response;

int rcgc__handle_events_get(const insp_req *rq, insp_resp *rs);
/* The response serving s on connection c, resumed after last_event_id (the request
 * header; NULL or "" when absent: ?since= then, else live). Ownership: takes s (freed
 * with the response, or at once on failure). Returns: the response (queue it with
 * status 200, then destroy it), or NULL when memory runs out. */
struct MHD_Response *rcgc__events_response(insp_stream *s, struct MHD_Connection *c,
                                           const char *last_event_id);
/* Frees a stream that was never served and gives its slot back (NULL: no-op). */
void rcgc__events_discard(insp_stream *s);
/* The sink's hook (sink.c), on the owner thread of every collection event: records the
 * event in the ring and wakes the streams waiting for it. Never waits for a client. */
void rcgc__events_on_event(rcgc_heap *h, const char *heap_name, const rcgc_event *ev);
/* rcgc_inspect_start: accept streams again (reads the test knob
 * RCGC_INSPECT_HEARTBEAT_MS, the heartbeat interval, 15000 by default). */
void rcgc__events_start(void);
/* rcgc_inspect_stop, after quiescing and before MHD_stop_daemon: refuses new streams,
 * resumes every suspended one (stopping the daemon with a suspended connection aborts
 * the process in libmicrohttpd 0.9.75), lets each end cleanly (waits at most 1 s) and
 * joins the heartbeat thread. */
void rcgc__events_stop(void);

#endif /* RCGC_INSPECT_INTERNAL_H */
