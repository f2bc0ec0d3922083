/* http_client.c: see http_client.h. Blocking sockets and poll() deadlines; nothing
 * here is shared between threads, so any number of test threads may use it at once. */
#define _POSIX_C_SOURCE 200809L

#include "http_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <rcgc/rcgc.h>

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int http_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((unsigned short)port);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int http_send(int fd, const void *data, size_t n)
{
    const char *p = data;
    while (n > 0) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* A growable byte buffer, always NUL-terminated. */
typedef struct buf {
    char *data;
    size_t len, cap;
} buf;

static int buf_add(buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (d == NULL)
            return -1;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

/* Reads more bytes into b before the deadline. Returns: bytes read, 0 on EOF, -1 on
 * timeout or error. */
static long fill(int fd, buf *b, long long deadline)
{
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0)
            return -1;
        struct pollfd p = {fd, POLLIN, 0};
        int r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        char tmp[8192];
        ssize_t k = recv(fd, tmp, sizeof tmp, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return errno == ECONNRESET ? 0 : -1;
        if (k > 0 && buf_add(b, tmp, (size_t)k) != 0)
            return -1;
        return (long)k;
    }
}

/* The value of header name in the header block head, or NULL; *n receives its length. */
static const char *find_header(const char *head, const char *name, size_t *n)
{
    size_t nl = strlen(name);
    for (const char *line = strstr(head, "\r\n"); line != NULL; line = strstr(line, "\r\n")) {
        line += 2;
        if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            const char *e = strstr(v, "\r\n");
            size_t len = e ? (size_t)(e - v) : strlen(v);
            while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
                len--;
            *n = len;
            return v;
        }
    }
    return NULL;
}

const char *http_header(const http_response *r, const char *name, char *out, size_t cap)
{
    size_t n;
    const char *v = r->head ? find_header(r->head, name, &n) : NULL;
    if (v == NULL || cap == 0)
        return NULL;
    if (n >= cap)
        n = cap - 1;
    memcpy(out, v, n);
    out[n] = '\0';
    return out;
}

/* Decodes a chunked body that starts at in (len bytes, complete or not). Returns: 1
 * complete (out filled), 0 incomplete, -1 malformed. */
static int dechunk(const char *in, size_t len, buf *out)
{
    size_t i = 0;
    out->len = 0;
    if (out->data)
        out->data[0] = '\0';
    for (;;) {
        const char *crlf = NULL;
        for (size_t k = i; k + 1 < len; k++)
            if (in[k] == '\r' && in[k + 1] == '\n') {
                crlf = in + k;
                break;
            }
        if (crlf == NULL)
            return 0;
        char *end;
        unsigned long size = strtoul(in + i, &end, 16);
        if (end == in + i)
            return -1;
        i = (size_t)(crlf - in) + 2;
        if (size == 0) {
            /* Trailers (none expected) end with an empty line. */
            for (size_t k = i; k + 1 < len; k++)
                if (in[k] == '\r' && in[k + 1] == '\n')
                    return 1;
            return 0;
        }
        if (len < i + size + 2)
            return 0;
        if (buf_add(out, in + i, size) != 0)
            return -1;
        i += size + 2;
    }
}

int http_read_response(int fd, http_response *r, int timeout_ms, bool no_body)
{
    memset(r, 0, sizeof *r);
    long long deadline = now_ms() + timeout_ms;
    buf in = {0};
    char *sep = NULL;
    while ((sep = in.data ? strstr(in.data, "\r\n\r\n") : NULL) == NULL) {
        if (fill(fd, &in, deadline) <= 0) {
            free(in.data);
            return -1;
        }
    }
    size_t head_len = (size_t)(sep - in.data) + 2;
    r->head = malloc(head_len + 1);
    if (r->head == NULL) {
        free(in.data);
        return -1;
    }
    memcpy(r->head, in.data, head_len);
    r->head[head_len] = '\0';
    int status = 0;
    if (sscanf(r->head, "HTTP/1.%*d %d", &status) != 1) {
        free(in.data);
        return -1;
    }
    size_t body_at = head_len + 2;
    char clv[32], tev[32], connv[32];
    const char *cl = http_header(r, "Content-Length", clv, sizeof clv);
    const char *te = http_header(r, "Transfer-Encoding", tev, sizeof tev);
    const char *conn = http_header(r, "Connection", connv, sizeof connv);
    r->closed = conn != NULL && strcasecmp(conn, "close") == 0;
    buf body = {0};
    if (no_body || status == 204 || status == 304 || (status >= 100 && status < 200)) {
        buf_add(&body, "", 0);
    } else if (te != NULL && strcasecmp(te, "chunked") == 0) {
        int d;
        while ((d = dechunk(in.data + body_at, in.len - body_at, &body)) == 0)
            if (fill(fd, &in, deadline) <= 0)
                break;
        if (d != 1) {
            free(in.data);
            free(body.data);
            return -1;
        }
    } else if (cl != NULL) {
        size_t want = (size_t)strtoull(cl, NULL, 10);
        while (in.len - body_at < want)
            if (fill(fd, &in, deadline) <= 0)
                break;
        if (in.len - body_at < want) {
            free(in.data);
            return -1;
        }
        buf_add(&body, in.data + body_at, want);
    } else { /* until the server closes */
        long k;
        while ((k = fill(fd, &in, deadline)) > 0)
            ;
        if (k < 0) {
            free(in.data);
            return -1;
        }
        buf_add(&body, in.data + body_at, in.len - body_at);
        r->closed = true;
    }
    free(in.data);
    if (body.data == NULL)
        buf_add(&body, "", 0);
    r->body = body.data;
    r->body_len = body.len;
    r->status = status;
    return 0;
}

int http_request(int port, const char *method, const char *target, const char *headers,
                 const char *body, http_response *r)
{
    memset(r, 0, sizeof *r);
    int fd = http_connect(port);
    if (fd < 0)
        return 0;
    buf req = {0};
    char line[512];
    snprintf(line, sizeof line, " HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n",
             port);
    buf_add(&req, method, strlen(method));
    buf_add(&req, " ", 1);
    buf_add(&req, target, strlen(target));
    buf_add(&req, line, strlen(line));
    if (headers != NULL)
        buf_add(&req, headers, strlen(headers));
    if (body != NULL) {
        snprintf(line, sizeof line, "Content-Length: %zu\r\n", strlen(body));
        buf_add(&req, line, strlen(line));
    }
    buf_add(&req, "\r\n", 2);
    if (body != NULL)
        buf_add(&req, body, strlen(body));
    int ok = req.data != NULL && http_send(fd, req.data, req.len) == 0;
    free(req.data);
    if (ok)
        http_read_response(fd, r, 10000, strcmp(method, "HEAD") == 0);
    close(fd);
    return r->status;
}

void http_response_free(http_response *r)
{
    free(r->head);
    free(r->body);
    memset(r, 0, sizeof *r);
}

bool http_wait_closed(int fd, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    buf sink = {0};
    long k;
    while ((k = fill(fd, &sink, deadline)) > 0)
        sink.len = 0;
    free(sink.data);
    return k == 0;
}

typedef struct served_call {
    int port;
    const char *method, *target, *headers, *body;
    http_response *r;
    atomic_int done;
} served_call;

static void *served_call_thread(void *arg)
{
    served_call *c = arg;
    http_request(c->port, c->method, c->target, c->headers, c->body, c->r);
    atomic_store(&c->done, 1);
    return NULL;
}

int http_request_serving(int port, const char *method, const char *target, const char *headers,
                         const char *body, struct rcgc_heap *const *heaps, size_t n,
                         http_response *r)
{
    served_call c = {.port = port,
                     .method = method,
                     .target = target,
                     .headers = headers,
                     .body = body,
                     .r = r};
    atomic_init(&c.done, 0);
    memset(r, 0, sizeof *r);
    pthread_t t;
    if (pthread_create(&t, NULL, served_call_thread, &c) != 0)
        return -1;
    while (!atomic_load(&c.done)) {
        for (size_t i = 0; i < n; i++)
            if (heaps[i] != NULL)
                rcgc_safepoint(heaps[i]);
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    pthread_join(t, NULL);
    return r->status;
}
