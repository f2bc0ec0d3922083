/* server.c: the libmicrohttpd daemon: start and stop (rcgc/inspect.h), the access
 * handler that buffers a request (body capped), checks the Host header, the bearer
 * token (except on the dashboard's public routes) and the Origin of control requests,
 * hands the request to the router and turns its answer into an HTTP response.
 *
 * Shutdown follows the order that never aborts the host with libmicrohttpd 0.9.75:
 * quiesce (stop accepting), resume every suspended connection, stop the daemon (joins
 * its threads), then close the listen socket. */
#define _POSIX_C_SOURCE 200809L

#include "internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define POOL_THREADS 4u          /* a walk that waits for a safepoint blocks only one */
#define CONNECTION_MEMORY 32768u /* request line + headers + write buffer per connection */

/* What an HTML page (the dashboard) may load: its own scripts, styles and images, and
 * requests to this server; nothing inline, nothing from elsewhere, never framed. */
#define HTML_CSP                                                                               \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "          \
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER; /* start / stop */
static struct MHD_Daemon *g_daemon;
static atomic_int g_port;
static pid_t g_pid; /* the process that started the server (see forget_after_fork) */
static int g_listen_fd = -1;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

/* ---- logging ---- */

__attribute__((format(printf, 2, 0))) static void log_mhd(void *cls, const char *fmt,
                                                          va_list ap)
{
    (void)cls;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n > 0 && line[n - 1] == '\n')
        line[--n] = '\0';
    /* An event stream's client that went away (a closed tab, curl stopped) is noticed
     * at the next write: routine, not worth a line on the host's stderr. */
    if (strncmp(line, "Failed to send ", 15) == 0 &&
        strstr(line, " for the request for `/v1/events'") != NULL)
        return;
    fprintf(stderr, "rcgc-inspect: %s\n", line);
}

/* ---- per-request state ---- */

typedef struct conn_req {
    char *body;
    size_t len, cap;
    bool too_large;
} conn_req;

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode why)
{
    (void)cls, (void)c, (void)why;
    conn_req *r = *req_cls;
    if (r != NULL) {
        free(r->body);
        free(r);
        *req_cls = NULL;
    }
}

/* Appends upload data; past INSP_BODY_MAX the body is dropped and too_large set. */
static void body_add(conn_req *r, const char *data, size_t n)
{
    if (r->too_large)
        return;
    if (n > INSP_BODY_MAX - r->len) {
        r->too_large = true;
        free(r->body);
        r->body = NULL;
        r->len = r->cap = 0;
        return;
    }
    if (r->len + n + 1 > r->cap) {
        size_t cap = r->cap ? r->cap : 1024;
        while (cap < r->len + n + 1)
            cap *= 2;
        char *b = realloc(r->body, cap);
        if (b == NULL) {
            r->too_large = true; /* cannot hold it: the same answer */
            return;
        }
        r->body = b;
        r->cap = cap;
    }
    memcpy(r->body + r->len, data, n);
    r->len += n;
    r->body[r->len] = '\0';
}

/* ---- checks before routing ---- */

/* Whether a host name (without port) designates this machine's loopback: "localhost",
 * 127.x.y.z or [::1]. Anything else in a Host header on a loopback server is a DNS
 * rebinding attempt (a web page that renamed its own host to 127.0.0.1). */
static bool loopback_name(const char *h, size_t n)
{
    char name[64];
    if (n == 0 || n >= sizeof name)
        return false;
    memcpy(name, h, n);
    name[n] = '\0';
    if (strcasecmp(name, "localhost") == 0 || strcmp(name, "[::1]") == 0)
        return true;
    struct in_addr a;
    return inet_pton(AF_INET, name, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

/* "host[:port]" or "[v6]:port": the length of the host part. */
static size_t host_part(const char *s)
{
    if (s[0] == '[') {
        const char *e = strchr(s, ']');
        return e ? (size_t)(e - s) + 1 : strlen(s);
    }
    return strcspn(s, ":");
}

static bool host_ok(const char *host)
{
    if (host == NULL) /* HTTP/1.0 without Host: no browser sends that */
        return true;
    return loopback_name(host, host_part(host));
}

/* An Origin header, if present, must name a loopback host too ("null" does not). */
static bool origin_ok(const char *origin)
{
    if (origin == NULL)
        return true;
    const char *p = strstr(origin, "://");
    if (p == NULL)
        return false;
    p += 3;
    return loopback_name(p, host_part(p));
}

/* Compares given with the token in time that depends only on the token's length. */
static bool same_token(const char *given, const char *token, size_t token_len)
{
    size_t gn = strlen(given);
    volatile unsigned char diff = gn != token_len;
    for (size_t i = 0; i < token_len; i++) {
        unsigned char g = i < gn ? (unsigned char)given[i] : 0;
        diff |= (unsigned char)(g ^ (unsigned char)token[i]);
    }
    return diff == 0;
}

/* The Authorization header: "Bearer <token>" (scheme case-insensitive). */
static bool token_ok(const char *header, const char *token, size_t token_len)
{
    if (header == NULL || strncasecmp(header, "Bearer ", 7) != 0)
        return false;
    const char *given = header + 7;
    while (*given == ' ')
        given++;
    return same_token(given, token, token_len);
}

/* The access_token query parameter, still percent-encoded as it arrived. */
static bool query_token_ok(const char *raw, const char *token, size_t token_len)
{
    if (raw == NULL)
        return false;
    size_t n = strlen(raw);
    char *given = malloc(n + 1);
    bool ok = given != NULL && rcgc__pct_decode(raw, n, given, n + 1) >= 0 &&
              same_token(given, token, token_len);
    free(given);
    return ok;
}

/* ---- query parameters ---- */

typedef struct params_job {
    insp_param params[INSP_PARAMS_MAX];
    size_t n;
    bool too_many;
} params_job;

static enum MHD_Result collect_param(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    (void)kind;
    params_job *job = cls;
    if (job->n == INSP_PARAMS_MAX) {
        job->too_many = true;
        return MHD_NO;
    }
    job->params[job->n++] = (insp_param){key ? key : "", value ? value : ""};
    return MHD_YES;
}

/* Removes parameter key from the list. Returns: its (raw) value, or NULL. */
static const char *take_param(params_job *job, const char *key)
{
    for (size_t i = 0; i < job->n; i++) {
        if (strcmp(job->params[i].key, key) == 0) {
            const char *v = job->params[i].value;
            memmove(&job->params[i], &job->params[i + 1],
                    (job->n - i - 1) * sizeof job->params[0]);
            job->n--;
            return v;
        }
    }
    return NULL;
}

/* Keeps escapes as they arrived: the router decodes each segment and parameter itself
 * (so that %2F in a heap name is not taken for a path separator). */
static size_t keep_escapes(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls, (void)c;
    return strlen(s);
}

/* ---- responses ---- */

/* GET /v1/events: the stream the handler reserved, as a response of unknown size read
 * by events.c (resumed after the Last-Event-ID header when the request has one). */
static enum MHD_Result send_stream(struct MHD_Connection *c, insp_resp *rs)
{
    insp_stream *s = rs->stream;
    rs->stream = NULL;
    rcgc__resp_clear(rs);
    struct MHD_Response *r = rcgc__events_response(
        s, c, MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Last-Event-ID"));
    if (r == NULL)
        return MHD_NO; /* closes the connection */
    enum MHD_Result ok = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r); /* the connection keeps it (and the stream) while it streams */
    return ok;
}

static enum MHD_Result send_resp(struct MHD_Connection *c, insp_resp *rs)
{
    if (rs->stream != NULL)
        return send_stream(c, rs);
    struct MHD_Response *r;
    if (rs->body != NULL) {
        r = MHD_create_response_from_buffer(rs->len, rs->body, MHD_RESPMEM_MUST_FREE);
        if (r != NULL)
            rs->body = NULL; /* MHD frees it */
    } else {
        r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    }
    if (r == NULL) {
        rcgc__resp_clear(rs);
        return MHD_NO; /* closes the connection */
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                            rs->content_type ? rs->content_type : "application/json");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    bool sse = rs->content_type && strcmp(rs->content_type, "text/event-stream") == 0;
    /* no-cache: HEAD /v1/events, and static files, which a client revalidates (ETag). */
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL,
                            sse || rs->etag[0] != '\0' ? "no-cache" : "no-store");
    if (rs->etag[0] != '\0')
        MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, rs->etag);
    if (rs->content_type && strncmp(rs->content_type, "text/html", 9) == 0) {
        MHD_add_response_header(r, "Content-Security-Policy", HTML_CSP);
        MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    }
    if (rs->allow[0] != '\0')
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, rs->allow);
    if (rs->retry_after_s > 0) {
        char v[16];
        snprintf(v, sizeof v, "%u", rs->retry_after_s);
        MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, v);
    }
    if (rs->disposition[0] != '\0')
        MHD_add_response_header(r, "Content-Disposition", rs->disposition);
    if (rs->location != NULL)
        MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION, rs->location);
    if (rs->www_authenticate)
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"rcgc\"");
    enum MHD_Result ok = MHD_queue_response(c, rs->status, r);
    MHD_destroy_response(r);
    rcgc__resp_clear(rs);
    return ok;
}

static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status, const char *code,
                                  const char *message)
{
    insp_resp rs = {0};
    if (status == 401)
        rs.www_authenticate = true;
    rcgc__reply_error(&rs, status, code, "%s", message);
    return send_resp(c, &rs);
}

static enum MHD_Result send_too_large(struct MHD_Connection *c)
{
    char message[64];
    snprintf(message, sizeof message, "the request body exceeds %u bytes", INSP_BODY_MAX);
    return send_error(c, 413, "body_too_large", message);
}

/* Whether the request declares a Content-Length over INSP_BODY_MAX. */
static bool declared_too_large(struct MHD_Connection *c)
{
    const char *v =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (v == NULL)
        return false;
    size_t n = strlen(v);
    if (n > 12)
        return true;
    return strtoull(v, NULL, 10) > INSP_BODY_MAX;
}

static bool body_method(const char *m)
{
    return strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0;
}

/* The access handler. The first call for a request only sets up *req_cls (MHD has not
 * read the body yet; the one exception is a declared body over the cap); upload calls
 * buffer the body; the last call (no upload data left) checks Host, Origin and the
 * token, in that order, and answers. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **req_cls)
{
    (void)cls, (void)version;
    conn_req *r = *req_cls;
    if (r == NULL) {
        r = calloc(1, sizeof *r);
        if (r == NULL)
            return MHD_NO;
        *req_cls = r;
        /* The one answer given on the first call: a declared body over the cap is
         * refused before it is read (libmicrohttpd then reads no body and closes the
         * connection after the answer, as with a refused "Expect: 100-continue"). */
        if (declared_too_large(c))
            return send_too_large(c);
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        body_add(r, upload_data, *upload_data_size); /* past the cap: dropped */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (r->too_large)
        return send_too_large(c);

    const insp_config *cfg = rcgc__insp_config();
    if (cfg->loopback) {
        if (!host_ok(MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST)))
            return send_error(c, 403, "forbidden_host",
                              "the Host header must name the loopback interface "
                              "(localhost, 127.0.0.1 or [::1])");
        if (body_method(method) &&
            !origin_ok(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin")))
            return send_error(c, 403, "forbidden_origin",
                              "requests that change state are refused from other origins");
    }
    params_job pj = {.n = 0};
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, collect_param, &pj);
    /* access_token (RFC 6750 2.3) stands in for the header on GET: EventSource and plain
     * links cannot send headers. It is never passed on to the router. The dashboard's
     * page and files are public (they hold no data): they need no token, so that a page
     * opened as /?access_token=... loads its scripts and styles. */
    const char *query_token = NULL;
    if (!body_method(method))
        query_token = take_param(&pj, "access_token");
    if (cfg->token != NULL && !rcgc__route_public(method, url) &&
        !token_ok(
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION),
            cfg->token, cfg->token_len) &&
        !query_token_ok(query_token, cfg->token, cfg->token_len))
        return send_error(c, 401, "unauthorized",
                          "this server needs Authorization: Bearer <token> "
                          "(RCGC_INSPECT_TOKEN)");

    insp_http in = {
        .method = method,
        .path = url,
        .params = pj.params,
        .nparams = pj.n,
        .too_many_params = pj.too_many,
        .body = r->body ? r->body : "",
        .body_len = r->len,
        .content_type =
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE),
        .if_none_match =
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH),
    };
    insp_resp rs = {0};
    rcgc__dispatch(&in, &rs);
    return send_resp(c, &rs);
}

/* ---- start and stop ---- */

/* In a child of fork() the server's threads do not exist: forget the daemon without
 * touching it (stopping it would join threads that are not there), close the child's
 * copy of the listen socket, stop publishing. */
static void forget_after_fork(void)
{
    if (g_daemon == NULL)
        return;
    if (g_listen_fd >= 0)
        close(g_listen_fd);
    g_listen_fd = -1;
    g_daemon = NULL;
    atomic_store(&g_port, 0);
    rcgc__set_event_sink(NULL, NULL);
    rcgc__set_inspected(false);
}

static void once_init(void)
{
    (void)pthread_atfork(NULL, NULL, forget_after_fork);
}

/* Blocks every asynchronous signal in the calling thread (the daemon's threads inherit
 * the mask): SIGINT, SIGTERM, SIGCHLD, SIGALRM, SIGPROF, SIGUSR1, ... belong to the
 * host's threads. Signals raised by a fault stay deliverable. */
static void block_async_signals(sigset_t *old)
{
    sigset_t set;
    sigfillset(&set);
    static const int sync_signals[] = {SIGSEGV, SIGBUS,  SIGFPE, SIGILL,
                                       SIGTRAP, SIGABRT, SIGSYS};
    for (size_t i = 0; i < sizeof sync_signals / sizeof sync_signals[0]; i++)
        sigdelset(&set, sync_signals[i]);
    pthread_sigmask(SIG_BLOCK, &set, old);
}

int rcgc_inspect_start(const rcgc_inspect_options *opts)
{
    pthread_once(&g_once, once_init);
    pthread_mutex_lock(&g_lock);
    if (g_daemon != NULL) {
        pthread_mutex_unlock(&g_lock);
        return opts == NULL ? 0 : RCGC_EBUSY;
    }
    insp_config cfg;
    int rc = rcgc__insp_config_resolve(opts, &cfg);
    if (rc == 0)
        rc = rcgc__insp_config_set(&cfg);
    free(cfg.token);
    free(cfg.web_dir);
    if (rc != 0) {
        pthread_mutex_unlock(&g_lock);
        return rc;
    }
    cfg = *rcgc__insp_config();
    json_object_seed(0); /* before any thread of ours uses jansson */

    rcgc__set_inspected(true);
    rcgc__sink_enable(true);
    rcgc__events_start();
    unsigned pool = cfg.max_connections < POOL_THREADS ? cfg.max_connections : POOL_THREADS;
    sigset_t old;
    block_async_signals(&old);
    errno = 0;
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_AUTO_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0, NULL,
        NULL, on_request, NULL, MHD_OPTION_EXTERNAL_LOGGER, log_mhd, NULL, MHD_OPTION_SOCK_ADDR,
        (const struct sockaddr *)&cfg.addr, MHD_OPTION_CONNECTION_LIMIT, cfg.max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, cfg.idle_timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)CONNECTION_MEMORY, MHD_OPTION_THREAD_POOL_SIZE, pool,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_UNESCAPE_CALLBACK,
        keep_escapes, NULL, MHD_OPTION_END);
    int err = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (d == NULL) {
        rcgc__sink_enable(false);
        rcgc__set_inspected(false);
        rcgc__insp_config_reset();
        pthread_mutex_unlock(&g_lock);
        if (err == ENOMEM)
            return RCGC_ENOMEM;
        /* -1 .. -6 (RCGC_EIO) are RCGC_E* codes: an errno that small, or none, reads as
         * -EPROTO. */
        return err > -RCGC_EIO ? -err : -EPROTO;
    }
    const union MHD_DaemonInfo *pi = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    const union MHD_DaemonInfo *fi = MHD_get_daemon_info(d, MHD_DAEMON_INFO_LISTEN_FD);
    g_listen_fd = fi ? fi->listen_fd : -1;
    atomic_store(&g_port, pi ? (int)pi->port : (int)ntohs(cfg.addr.sin_port));
    g_pid = getpid();
    g_daemon = d;
    rcgc__suspects_start();
    pthread_mutex_unlock(&g_lock);
    return 0;
}

void rcgc_inspect_stop(void)
{
    pthread_mutex_lock(&g_lock);
    struct MHD_Daemon *d = g_daemon;
    if (d == NULL || g_pid != getpid()) {
        pthread_mutex_unlock(&g_lock);
        return;
    }
    MHD_socket fd = MHD_quiesce_daemon(d); /* no new connections from here on */
    /* Event streams end here: every suspended connection is resumed first (stopping
     * with one suspended aborts the process in libmicrohttpd 0.9.75). */
    rcgc__events_stop();
    MHD_stop_daemon(d); /* closes every connection, joins the threads */
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
    g_daemon = NULL;
    g_listen_fd = -1;
    atomic_store(&g_port, 0);
    rcgc__sink_enable(false);
    rcgc__set_inspected(false);
    rcgc__baselines_clear();
    rcgc__tracing_snapshots_clear();
    rcgc__suspects_stop();
    rcgc__insp_config_reset();
    pthread_mutex_unlock(&g_lock);
}

int rcgc_inspect_port(void)
{
    return atomic_load(&g_port);
}
