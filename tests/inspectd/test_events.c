/* test_events.c: GET /v1/events (protocol/events.md) against a real server on
 * 127.0.0.1:0 in this process. The heap "ev" is owned by the test's main thread, which
 * collects it and reads the streams through raw sockets (collections never wait for a
 * client, so one thread can do both); the last test adds owner threads of their own
 * heaps and a thread of vanishing clients (run under TSan). The heartbeat is 250 ms
 * (RCGC_INSPECT_HEARTBEAT_MS, the server's test knob). */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <jansson.h>

#include <rcgc/inspect.h>
#include <rcgc/rcgc.h>

#include "harness.h"
#include "http_client.h"
#include "testlib.h"

/* ---- the host (Node, make_cycles: harness.h) ---- */

static void legacy_del(void *self)
{
    (void)self;
}

/* A self-cycle of these is uncollectable: it goes to the garbage list. */
static const rcgc_type Legacy = {.name = "Legacy",
                                 .size = sizeof(node),
                                 .traverse = node_traverse,
                                 .clear = node_clear,
                                 .legacy_del = legacy_del,
                                 .dealloc = node_clear};

static rcgc_heap *g_heap;
static int g_port;

static const rcgc_inspect_options default_opts = {.address = "127.0.0.1:0"};

#define HEARTBEAT_MS 250

static void start_server(void)
{
    assert_int_equal(rcgc_inspect_start(&default_opts), 0);
    g_port = rcgc_inspect_port();
    assert_true(g_port > 0);
}

static int setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    setenv("RCGC_INSPECT_HEARTBEAT_MS", "250", 1);
    rcgc_heap_options o = {.name = "ev", .ignore_environment = true};
    g_heap = rcgc_heap_new_with(&o);
    if (g_heap == NULL)
        return -1;
    rcgc_disable(g_heap); /* collections only when the tests ask */
    if (rcgc_inspect_start(&default_opts) != 0)
        return -1;
    g_port = rcgc_inspect_port();
    return g_port <= 0;
}

static int teardown(void **state)
{
    (void)state;
    rcgc_inspect_stop();
    rcgc_heap_free(g_heap);
    return 0;
}

/* ---- an SSE client over a raw socket ---- */

typedef struct sse {
    int fd;
    int status;
    char *head;      /* status line and headers */
    bool chunked;    /* Transfer-Encoding: chunked */
    bool ended;      /* the server ended the stream */
    bool terminator; /* it ended with the chunked terminator */
    char *in;        /* received, not yet decoded */
    size_t in_len, in_cap;
    int chunk_state; /* 0 size line, 1 data, 2 CRLF after data, 3 after the terminator */
    size_t chunk_left;
    char *body; /* decoded body */
    size_t body_len, body_cap, body_off;
    unsigned comments; /* ": hb" comments seen */
} sse;

typedef struct sse_event {
    char id[64];
    char event[32];
    char epoch[17];
    uint64_t seq;
    json_t *data; /* the parsed data line */
} sse_event;

static void add_bytes(char **p, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t c = *cap ? *cap : 4096;
        while (c < *len + n + 1)
            c *= 2;
        char *d = realloc(*p, c);
        assert_non_null(d);
        *p = d;
        *cap = c;
    }
    memcpy(*p + *len, s, n);
    *len += n;
    (*p)[*len] = '\0';
}

/* Moves what can be decoded from s->in to s->body. */
static void decode(sse *s)
{
    size_t i = 0;
    if (!s->chunked) {
        add_bytes(&s->body, &s->body_len, &s->body_cap, s->in, s->in_len);
        s->in_len = 0;
        return;
    }
    for (;;) {
        if (s->chunk_state == 0) {
            const char *crlf = NULL;
            for (size_t k = i; k + 1 < s->in_len; k++)
                if (s->in[k] == '\r' && s->in[k + 1] == '\n') {
                    crlf = s->in + k;
                    break;
                }
            if (crlf == NULL)
                break;
            char *end;
            unsigned long size = strtoul(s->in + i, &end, 16);
            assert_true(end != s->in + i); /* a chunk size */
            i = (size_t)(crlf - s->in) + 2;
            if (size == 0) {
                s->chunk_state = 3;
                s->ended = s->terminator = true;
                break;
            }
            s->chunk_left = size;
            s->chunk_state = 1;
        } else if (s->chunk_state == 1) {
            size_t k = s->in_len - i < s->chunk_left ? s->in_len - i : s->chunk_left;
            if (k == 0)
                break;
            add_bytes(&s->body, &s->body_len, &s->body_cap, s->in + i, k);
            i += k;
            s->chunk_left -= k;
            if (s->chunk_left == 0)
                s->chunk_state = 2;
        } else if (s->chunk_state == 2) {
            if (s->in_len - i < 2)
                break;
            assert_memory_equal(s->in + i, "\r\n", 2);
            i += 2;
            s->chunk_state = 0;
        } else {
            i = s->in_len; /* trailers after the terminator: ignored */
            break;
        }
    }
    memmove(s->in, s->in + i, s->in_len - i);
    s->in_len -= i;
}

/* Reads more within timeout_ms. Returns: 1 bytes came, 0 the peer closed, -1 timeout. */
static int fill(sse *s, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0)
            return -1;
        struct pollfd p = {s->fd, POLLIN, 0};
        int r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0)
            return -1;
        assert_true(r > 0);
        char tmp[16384];
        ssize_t k = recv(s->fd, tmp, sizeof tmp, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            s->ended = true;
            return 0;
        }
        add_bytes(&s->in, &s->in_len, &s->in_cap, tmp, (size_t)k);
        return 1;
    }
}

/* The value of header name in s->head (case-insensitive), copied to out. */
static const char *sse_header(const sse *s, const char *name, char *out, size_t cap)
{
    http_response r = {.head = s->head};
    return http_header(&r, name, out, cap);
}

/* Sends "GET target" (HTTP/1.1, or 1.0) with the extra header lines and reads the
 * response head. rcvbuf > 0 shrinks the socket's receive buffer first (a slow client).
 * Returns: the status (the body of an error answer is in s->body once it is read). */
static int sse_open_with(sse *s, const char *target, const char *headers, bool http10,
                         int rcvbuf)
{
    memset(s, 0, sizeof *s);
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(s->fd >= 0);
    if (rcvbuf > 0)
        assert_int_equal(setsockopt(s->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf), 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(s->fd, (struct sockaddr *)&a, sizeof a), 0);
    char req[1024];
    snprintf(req, sizeof req, "GET %s HTTP/1.%d\r\nHost: 127.0.0.1:%d\r\n%s\r\n", target,
             http10 ? 0 : 1, g_port, headers ? headers : "");
    assert_int_equal(http_send(s->fd, req, strlen(req)), 0);
    char *sep;
    while ((sep = s->in ? strstr(s->in, "\r\n\r\n") : NULL) == NULL)
        assert_int_equal(fill(s, 5000), 1);
    size_t head_len = (size_t)(sep - s->in) + 4;
    s->head = strndup(s->in, head_len);
    assert_non_null(s->head);
    memmove(s->in, s->in + head_len, s->in_len - head_len + 1);
    s->in_len -= head_len;
    assert_int_equal(sscanf(s->head, "HTTP/1.%*d %d", &s->status), 1);
    char te[32];
    s->chunked = sse_header(s, "Transfer-Encoding", te, sizeof te) != NULL &&
                 strcasecmp(te, "chunked") == 0;
    decode(s);
    return s->status;
}

static void sse_close(sse *s);

/* sse_open_with, retrying for a while on 503 too_many_streams: the streams of the
 * previous test's clients may not be gone yet (the server sees that a client left when
 * it next looks at its socket). */
static int sse_open_retry(sse *s, const char *target, const char *headers, bool http10,
                          int rcvbuf)
{
    long long deadline = now_ms() + 5000;
    int status;
    while ((status = sse_open_with(s, target, headers, http10, rcvbuf)) == 503 &&
           now_ms() < deadline) {
        sse_close(s);
        sleep_ms(20);
    }
    return status;
}

static int sse_open(sse *s, const char *target, const char *headers)
{
    return sse_open_retry(s, target, headers, false, 0);
}

static void sse_close(sse *s)
{
    if (s->fd >= 0)
        close(s->fd);
    free(s->head);
    free(s->in);
    free(s->body);
    memset(s, 0, sizeof *s);
    s->fd = -1;
}

/* Next complete block ("...\n\n") of the body, within timeout_ms. Returns: a malloc'd
 * copy without its final blank line, or NULL (timeout, or the stream ended). */
static char *next_block(sse *s, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    for (;;) {
        char *b = s->body ? s->body + s->body_off : NULL;
        char *e = b ? strstr(b, "\n\n") : NULL;
        if (e != NULL) {
            char *block = strndup(b, (size_t)(e - b));
            assert_non_null(block);
            s->body_off += (size_t)(e - b) + 2;
            return block;
        }
        if (s->ended)
            return NULL;
        long long left = deadline - now_ms();
        if (left <= 0 || fill(s, (int)left) < 0)
            return NULL;
        decode(s);
    }
}

/* Checks that the stream begins with "retry: 3000" and its blank line. */
static void expect_retry(sse *s)
{
    char *b = next_block(s, 5000);
    assert_non_null(b);
    assert_string_equal(b, "retry: 3000");
    assert_int_equal(s->body_off, strlen("retry: 3000\n\n")); /* the very first line */
    free(b);
}

static bool is_time(const char *t)
{
    int y, mo, d, h, mi, sec, ms;
    char z;
    return strlen(t) == 24 &&
           sscanf(t, "%4d-%2d-%2dT%2d:%2d:%2d.%3d%c", &y, &mo, &d, &h, &mi, &sec, &ms, &z) ==
               8 &&
           z == 'Z' && y >= 2020 && mo >= 1 && mo <= 12;
}

/* Whether v is a decimal u64 string ("0" or no leading zero). */
static bool is_u64(const json_t *v)
{
    const char *s = json_string_value(v);
    size_t n = s ? strlen(s) : 0;
    return n >= 1 && n <= 20 && strspn(s, "0123456789") == n && (n == 1 || s[0] != '0');
}

static uint64_t u64_of(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    if (!is_u64(v))
        print_error("%s is not a u64 string\n", key);
    assert_true(is_u64(v));
    return strtoull(json_string_value(v), NULL, 10);
}

/* Reads the next event within timeout_ms, skipping (and counting) heartbeats, and checks
 * its framing (id, event, one data line, a blank line) and the fields every event has.
 * Returns: true with ev filled (free ev->data with json_decref), false on timeout or at
 * the end of the stream. */
static bool next_event(sse *s, sse_event *ev, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    for (;;) {
        long long left = deadline - now_ms();
        char *b = next_block(s, left > 0 ? (int)left : 0);
        if (b == NULL)
            return false;
        if (strcmp(b, ": hb") == 0) {
            s->comments++;
            free(b);
            continue;
        }
        memset(ev, 0, sizeof *ev);
        char *data = NULL;
        char *save = NULL;
        int field = 0;
        for (char *line = strtok_r(b, "\n", &save); line != NULL;
             line = strtok_r(NULL, "\n", &save), field++) {
            if (field == 0 && strncmp(line, "id: ", 4) == 0)
                snprintf(ev->id, sizeof ev->id, "%s", line + 4);
            else if (field == 1 && strncmp(line, "event: ", 7) == 0)
                snprintf(ev->event, sizeof ev->event, "%s", line + 7);
            else if (field == 2 && strncmp(line, "data: ", 6) == 0)
                data = line + 6;
            else
                fail_msg("unexpected line %d in an event: '%s'", field, line);
        }
        assert_int_equal(field, 3);
        assert_non_null(data);
        /* id: 16 lowercase hex digits, '-', the seq. */
        assert_true(strlen(ev->id) >= 18 && ev->id[16] == '-');
        assert_int_equal(strspn(ev->id, "0123456789abcdef"), 16);
        memcpy(ev->epoch, ev->id, 16);
        ev->epoch[16] = '\0';
        json_error_t err;
        ev->data = json_loads(data, 0, &err);
        if (ev->data == NULL)
            fail_msg("data is not JSON: %s (%s)", data, err.text);
        free(b);
        assert_true(json_is_object(ev->data));
        assert_int_equal(json_integer_value(json_object_get(ev->data, "protocol")), 1);
        assert_string_equal(json_string_value(json_object_get(ev->data, "event")), ev->event);
        ev->seq = u64_of(ev->data, "seq");
        assert_string_equal(json_string_value(json_object_get(ev->data, "seq")), ev->id + 17);
        const char *t = json_string_value(json_object_get(ev->data, "time"));
        assert_non_null(t);
        assert_true(is_time(t));
        return true;
    }
}

static void event_free(sse_event *ev)
{
    json_decref(ev->data);
    ev->data = NULL;
}

static const char *str_of(const sse_event *ev, const char *key)
{
    const char *v = json_string_value(json_object_get(ev->data, key));
    assert_non_null(v);
    return v;
}

static int gen_of(const sse_event *ev)
{
    json_t *g = json_object_get(ev->data, "generation");
    assert_true(json_is_integer(g));
    return (int)json_integer_value(g);
}

/* Reads the next event and checks its name (and heap, for a heap event). */
static void expect_event(sse *s, sse_event *ev, const char *event, const char *heap)
{
    if (!next_event(s, ev, 5000))
        fail_msg("no '%s' event came", event);
    if (strcmp(ev->event, event) != 0)
        fail_msg("expected '%s', got '%s' (seq %" PRIu64 ")", event, ev->event, ev->seq);
    if (heap != NULL)
        assert_string_equal(str_of(ev, "heap"), heap);
}

/* Checks the collect_start / collect_done pair of a collection of generation gen that
 * returned unreachable and moved uncollectable objects to the garbage list. Returns the
 * seq of collect_done. */
static uint64_t expect_collection(sse *s, const char *heap, int gen, size_t unreachable,
                                  size_t uncollectable, uint64_t dropped, uint64_t after)
{
    sse_event ev;
    expect_event(s, &ev, "collect_start", heap);
    assert_int_equal(gen_of(&ev), gen);
    json_t *count = json_object_get(ev.data, "count");
    assert_true(json_is_array(count));
    assert_int_equal(json_array_size(count), 3);
    for (size_t i = 0; i < 3; i++)
        assert_true(is_u64(json_array_get(count, i)));
    assert_int_equal(json_object_size(ev.data), 7);
    if (after != 0)
        assert_int_equal(ev.seq, after + 1);
    uint64_t start = ev.seq;
    event_free(&ev);
    /* collectable / uncollectable events, when the flags are set, come in between */
    do {
        event_free(&ev);
        if (!next_event(s, &ev, 5000))
            fail_msg("no collect_done came");
    } while (strcmp(ev.event, "collect_done") != 0);
    assert_string_equal(str_of(&ev, "heap"), heap);
    assert_int_equal(gen_of(&ev), gen);
    assert_int_equal(u64_of(ev.data, "unreachable"), unreachable);
    assert_int_equal(u64_of(ev.data, "uncollectable"), uncollectable);
    assert_int_equal(u64_of(ev.data, "collected"), unreachable - uncollectable);
    assert_int_equal(u64_of(ev.data, "dropped"), dropped);
    (void)u64_of(ev.data, "pause_ns");
    assert_int_equal(json_object_size(ev.data), 11);
    assert_true(ev.seq > start);
    uint64_t seq = ev.seq;
    event_free(&ev);
    return seq;
}

/* Asserts that no event comes within ms (heartbeats may). */
static void expect_quiet(sse *s, int ms)
{
    sse_event ev;
    if (next_event(s, &ev, ms))
        fail_msg("unexpected event '%s' seq %" PRIu64, ev.event, ev.seq);
}

/* Asserts the error answer {"protocol":1,"error":{"code":code}} of r. */
static void expect_error(http_response *r, int status, const char *code)
{
    if (r->status != status)
        print_error("expected %d %s, got %d: %s\n", status, code, r->status,
                    r->body ? r->body : "");
    assert_int_equal(r->status, status);
    json_t *j = json_loadb(r->body, r->body_len, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "code")),
                        code);
    json_decref(j);
}

/* method target, without headers or a body, expecting the error answer status code. */
static void request_error(const char *method, const char *target, int status, const char *code)
{
    http_response r;
    http_request(g_port, method, target, NULL, NULL, &r);
    expect_error(&r, status, code);
    http_response_free(&r);
}

/* rounds collections of g_heap that free 1000 self-cycles each, with
 * RCGC_DEBUG_COLLECTABLE: about 1000 events (~250 KB) a collection, to turn the ring
 * (4096 events) over. The debug lines on stderr are captured and dropped. */
static void flood(int rounds)
{
    rcgc_set_debug(g_heap, RCGC_DEBUG_COLLECTABLE);
    tl_capture cap;
    tl_capture_start(&cap);
    for (int i = 0; i < rounds; i++) {
        make_cycles(g_heap, &Node, 1000, NULL);
        assert_int_equal(rcgc_collect(g_heap, 0), 1000);
    }
    free(tl_capture_stop(&cap));
    rcgc_set_debug(g_heap, 0);
}

/* ---- collections and their events ---- */

static void test_events_collections(void **state)
{
    (void)state;
    sse s;
    assert_int_equal(sse_open(&s, "/v1/events", NULL), 200);
    char v[64];
    assert_string_equal(sse_header(&s, "Content-Type", v, sizeof v), "text/event-stream");
    assert_string_equal(sse_header(&s, "Cache-Control", v, sizeof v), "no-cache");
    assert_string_equal(sse_header(&s, "X-Content-Type-Options", v, sizeof v), "nosniff");
    assert_true(s.chunked);
    expect_retry(&s);
    expect_quiet(&s, 100); /* live only: nothing from before */

    uint64_t last = 0;
    for (int gen = 0; gen <= 2; gen++) {
        make_cycles(g_heap, &Node, (size_t)(3 + gen), NULL);
        size_t legacy = gen == 2 ? 1 : 0;
        make_cycles(g_heap, &Legacy, legacy, NULL);
        ssize_t n = rcgc_collect(g_heap, gen);
        assert_true(n >= 3 + gen);
        last = expect_collection(&s, "ev", gen, (size_t)n, legacy, 0, last);
    }
    /* A collection with nothing to free. */
    ssize_t n = rcgc_collect(g_heap, 0);
    assert_int_equal(n, 0);
    last = expect_collection(&s, "ev", 0, 0, 0, 0, last);
    expect_quiet(&s, 100);
    sse_close(&s);
}

static void test_events_object_events(void **state)
{
    (void)state;
    sse s;
    assert_int_equal(sse_open(&s, "/v1/events", NULL), 200);
    expect_retry(&s);
    rcgc_set_debug(g_heap, RCGC_DEBUG_COLLECTABLE | RCGC_DEBUG_UNCOLLECTABLE);
    tl_capture cap; /* the flags also print every object to stderr */
    tl_capture_start(&cap);
    uintptr_t nodes[3], legacy[1];
    make_cycles(g_heap, &Node, 3, nodes);
    make_cycles(g_heap, &Legacy, 1, legacy);
    ssize_t n = rcgc_collect(g_heap, 0);
    free(tl_capture_stop(&cap));
    assert_int_equal(n, 4);

    sse_event ev;
    expect_event(&s, &ev, "collect_start", "ev");
    uint64_t seq = ev.seq;
    event_free(&ev);
    bool seen[3] = {false, false, false};
    for (int i = 0; i < 4; i++) {
        expect_event(&s, &ev, i < 3 ? "collectable" : "uncollectable", "ev");
        assert_int_equal(ev.seq, seq + 1);
        seq = ev.seq;
        assert_int_equal(json_object_size(ev.data), 8);
        uintptr_t id = (uintptr_t)strtoull(str_of(&ev, "id"), NULL, 10);
        char addr[32];
        snprintf(addr, sizeof addr, "0x%" PRIxPTR, id);
        assert_string_equal(str_of(&ev, "address"), addr);
        assert_string_equal(str_of(&ev, "type"), i < 3 ? "Node" : "Legacy");
        if (i < 3) {
            bool found = false;
            for (int k = 0; k < 3; k++)
                if (nodes[k] == id && !seen[k])
                    found = seen[k] = true;
            assert_true(found);
        } else {
            assert_true(id == legacy[0]);
        }
        event_free(&ev);
    }
    expect_event(&s, &ev, "collect_done", "ev");
    assert_int_equal(ev.seq, seq + 1);
    assert_int_equal(u64_of(ev.data, "unreachable"), 4);
    assert_int_equal(u64_of(ev.data, "collected"), 3);
    assert_int_equal(u64_of(ev.data, "uncollectable"), 1);
    assert_int_equal(u64_of(ev.data, "dropped"), 0);
    event_free(&ev);

    /* At most 1000 object events per collection: the rest are counted as dropped. */
    tl_capture_start(&cap);
    make_cycles(g_heap, &Node, 1200, NULL);
    n = rcgc_collect(g_heap, 0);
    free(tl_capture_stop(&cap));
    assert_int_equal(n, 1200);
    expect_event(&s, &ev, "collect_start", "ev");
    seq = ev.seq;
    event_free(&ev);
    for (int i = 0; i < 1000; i++) {
        expect_event(&s, &ev, "collectable", "ev");
        assert_int_equal(ev.seq, seq + 1);
        seq = ev.seq;
        event_free(&ev);
    }
    expect_event(&s, &ev, "collect_done", "ev");
    assert_int_equal(ev.seq, seq + 1);
    assert_int_equal(u64_of(ev.data, "unreachable"), 1200);
    assert_int_equal(u64_of(ev.data, "dropped"), 200);
    event_free(&ev);

    /* Flags off: only start and done again. */
    rcgc_set_debug(g_heap, 0);
    make_cycles(g_heap, &Node, 5, NULL);
    assert_int_equal(rcgc_collect(g_heap, 0), 5);
    expect_collection(&s, "ev", 0, 5, 0, 0, seq + 1);
    sse_close(&s);
}

/* ---- resuming ---- */

/* Runs k collections of one cycle each and reads their 2k events from s into ids. */
static void collect_k(sse *s, int k, char ids[][64])
{
    for (int i = 0; i < k; i++) {
        make_cycles(g_heap, &Node, 1, NULL);
        assert_int_equal(rcgc_collect(g_heap, 0), 1);
    }
    for (int i = 0; i < 2 * k; i++) {
        sse_event ev;
        expect_event(s, &ev, i % 2 == 0 ? "collect_start" : "collect_done", "ev");
        if (ids != NULL)
            snprintf(ids[i], 64, "%s", ev.id);
        event_free(&ev);
    }
}

/* Reads events and checks that their ids are exactly ids[from..to). */
static void expect_ids(sse *s, char ids[][64], int from, int to)
{
    for (int i = from; i < to; i++) {
        sse_event ev;
        if (!next_event(s, &ev, 5000))
            fail_msg("event %s did not come", ids[i]);
        assert_string_equal(ev.id, ids[i]);
        event_free(&ev);
    }
}

static void test_events_resume(void **state)
{
    (void)state;
    char ids[12][64];
    sse a;
    assert_int_equal(sse_open(&a, "/v1/events", NULL), 200);
    expect_retry(&a);
    collect_k(&a, 6, ids);
    sse_close(&a);

    /* Last-Event-ID: exactly the events after it, none twice, then live. */
    char h[128];
    snprintf(h, sizeof h, "Last-Event-ID: %s\r\n", ids[4]);
    sse b;
    assert_int_equal(sse_open(&b, "/v1/events", h), 200);
    expect_retry(&b);
    expect_ids(&b, ids, 5, 12);
    expect_quiet(&b, 150);
    char more[2][64];
    collect_k(&b, 1, more);
    uint64_t last = strtoull(ids[11] + 17, NULL, 10);
    assert_int_equal(strtoull(more[0] + 17, NULL, 10), last + 1);
    sse_close(&b);

    /* ?since= does the same. */
    char target[128];
    snprintf(target, sizeof target, "/v1/events?since=%s", ids[9]);
    sse c;
    assert_int_equal(sse_open(&c, target, NULL), 200);
    expect_retry(&c);
    expect_ids(&c, ids, 10, 12);
    expect_ids(&c, more, 0, 2);
    expect_quiet(&c, 100);
    sse_close(&c);

    /* The header wins over ?since=. */
    snprintf(target, sizeof target, "/v1/events?since=%s", ids[0]);
    snprintf(h, sizeof h, "Last-Event-ID: %s\r\n", ids[10]);
    sse d;
    assert_int_equal(sse_open(&d, target, h), 200);
    expect_retry(&d);
    expect_ids(&d, ids, 11, 12);
    expect_ids(&d, more, 0, 2);
    sse_close(&d);

    /* The newest id: nothing to replay, then live. */
    snprintf(h, sizeof h, "Last-Event-ID: %s\r\n", more[1]);
    sse e;
    assert_int_equal(sse_open(&e, "/v1/events", h), 200);
    expect_retry(&e);
    expect_quiet(&e, 150);
    collect_k(&e, 1, NULL);
    sse_close(&e);
}

/* Reads the reset event that follows retry: and checks it. Returns its head. */
static uint64_t expect_reset(sse *s, const char *reason, const char *epoch)
{
    expect_retry(s);
    sse_event ev;
    expect_event(s, &ev, "reset", NULL);
    assert_string_equal(str_of(&ev, "reason"), reason);
    assert_string_equal(str_of(&ev, "epoch"), epoch);
    assert_string_equal(ev.epoch, epoch);
    uint64_t head = u64_of(ev.data, "head"), oldest = u64_of(ev.data, "oldest");
    assert_int_equal(ev.seq, head);
    assert_true(oldest <= head + 1);
    assert_int_equal(oldest, head >= 4096 ? head - 4095 : 1);
    assert_int_equal(json_object_size(ev.data), 8);
    event_free(&ev);
    return head;
}

/* Opens a stream with the Last-Event-ID header id, expects a reset for reason, then a
 * live collection after it. */
static void reset_case(const char *id, const char *reason, const char *epoch)
{
    char h[160];
    snprintf(h, sizeof h, "Last-Event-ID: %s\r\n", id);
    sse s;
    assert_int_equal(sse_open(&s, "/v1/events", h), 200);
    uint64_t head = expect_reset(&s, reason, epoch);
    make_cycles(g_heap, &Node, 1, NULL);
    assert_int_equal(rcgc_collect(g_heap, 0), 1);
    expect_collection(&s, "ev", 0, 1, 0, 0, head);
    sse_close(&s);
}

static void test_events_reset(void **state)
{
    (void)state;
    char first[1][64], ids[2][64];
    sse a;
    assert_int_equal(sse_open(&a, "/v1/events", NULL), 200);
    expect_retry(&a);
    collect_k(&a, 1, ids);
    snprintf(first[0], 64, "%s", ids[0]);
    sse_close(&a);
    char epoch[17];
    memcpy(epoch, first[0], 16);
    epoch[16] = '\0';

    /* Another epoch (another process), a malformed id, a future seq, a seq past 64 bits. */
    char other[64];
    snprintf(other, sizeof other, "%s-5",
             epoch[0] == '0' ? "1111111111111111" : "0000000000000000");
    reset_case(other, "unknown_epoch", epoch);
    reset_case("garbage", "bad_last_event_id", epoch);
    reset_case("0123", "bad_last_event_id", epoch);
    char future[64];
    snprintf(future, sizeof future, "%s-%" PRIu64, epoch,
             (uint64_t)strtoull(ids[1] + 17, NULL, 10) + 1000);
    reset_case(future, "bad_last_event_id", epoch);
    snprintf(future, sizeof future, "%s-99999999999999999999", epoch);
    reset_case(future, "bad_last_event_id", epoch);

    /* More than the ring holds (4096): the first id has expired. */
    flood(5);
    reset_case(first[0], "history_expired", epoch);
    /* The same through ?since=. */
    char target[128];
    snprintf(target, sizeof target, "/v1/events?since=%s", first[0]);
    sse b;
    assert_int_equal(sse_open(&b, target, NULL), 200);
    uint64_t head = expect_reset(&b, "history_expired", epoch);
    assert_true(head >= strtoull(first[0] + 17, NULL, 10) + 5000);
    sse_close(&b);

    /* Errors before the stream starts are JSON. */
    request_error("GET", "/v1/events?since=garbage", 400, "bad_parameter");
    request_error("GET", "/v1/events?since=", 400, "bad_parameter");
    request_error("GET", "/v1/events?heap=", 400, "bad_parameter");
    request_error("GET", "/v1/events?hep=ev", 400, "unknown_parameter");
    request_error("POST", "/v1/events", 405, "method_not_allowed");
    http_response r;
    int fd = http_connect(g_port); /* a page that renamed its own host (DNS rebinding) */
    assert_true(fd >= 0);
    static const char rebinding[] = "GET /v1/events HTTP/1.1\r\nHost: evil.example:80\r\n"
                                    "Connection: close\r\n\r\n";
    assert_int_equal(http_send(fd, rebinding, sizeof rebinding - 1), 0);
    assert_int_equal(http_read_response(fd, &r, 5000, false), 0);
    close(fd);
    expect_error(&r, 403, "forbidden_host");
    http_response_free(&r);
}

/* ---- ?heap= ---- */

static void test_events_heap_filter(void **state)
{
    (void)state;
    rcgc_heap_options o = {.name = "side", .ignore_environment = true};
    rcgc_heap *side = rcgc_heap_new_with(&o);
    assert_non_null(side);
    rcgc_disable(side);
    sse all, only, none;
    assert_int_equal(sse_open(&all, "/v1/events", NULL), 200);
    assert_int_equal(sse_open(&only, "/v1/events?heap=si%64e", NULL), 200);
    assert_int_equal(sse_open(&none, "/v1/events?heap=nosuch", NULL), 200); /* not an error */
    expect_retry(&all);
    expect_retry(&only);
    expect_retry(&none);

    make_cycles(g_heap, &Node, 1, NULL);
    assert_int_equal(rcgc_collect(g_heap, 0), 1);
    make_cycles(side, &Node, 2, NULL);
    assert_int_equal(rcgc_collect(side, 1), 2);
    make_cycles(g_heap, &Node, 3, NULL);
    assert_int_equal(rcgc_collect(g_heap, 0), 3);

    uint64_t s1 = expect_collection(&all, "ev", 0, 1, 0, 0, 0);
    uint64_t s2 = expect_collection(&all, "side", 1, 2, 0, 0, s1);
    expect_collection(&all, "ev", 0, 3, 0, 0, s2);
    /* The filtered stream sees side's events with the same seqs (gaps between). */
    assert_int_equal(expect_collection(&only, "side", 1, 2, 0, 0, s1), s2);
    expect_quiet(&only, 100);
    expect_quiet(&none, 100);

    /* More than the ring of other heaps' events while a filtered stream waits: it does
     * not fall behind (no reset), it just gets its heap's next event. */
    flood(5);
    make_cycles(side, &Node, 4, NULL);
    assert_int_equal(rcgc_collect(side, 0), 4);
    uint64_t s3 = expect_collection(&only, "side", 0, 4, 0, 0, 0);
    assert_true(s3 > s2 + 5000);
    expect_quiet(&none, 100);

    /* Resuming with a filter. */
    char target[128], h[128];
    snprintf(target, sizeof target, "/v1/events?heap=side");
    sse again;
    snprintf(h, sizeof h, "Last-Event-ID: 0000000000000000-0\r\n"); /* unknown epoch */
    assert_int_equal(sse_open(&again, target, h), 200);
    expect_retry(&again);
    sse_event ev;
    expect_event(&again, &ev, "reset", NULL); /* reset events always come */
    event_free(&ev);
    sse_close(&again);

    sse_close(&all);
    sse_close(&only);
    sse_close(&none);
    rcgc_heap_free(side);
}

/* ---- heartbeats, limits, vanishing clients ---- */

static void test_events_heartbeat(void **state)
{
    (void)state;
    sse s;
    assert_int_equal(sse_open(&s, "/v1/events", NULL), 200);
    expect_retry(&s);
    long long t0 = now_ms();
    expect_quiet(&s, 4 * HEARTBEAT_MS + 200);
    assert_true(s.comments >= 2);
    assert_true(s.comments <= (unsigned)((now_ms() - t0) / (HEARTBEAT_MS / 2)) + 1);
    assert_non_null(strstr(s.body, "\n\n: hb\n\n"));
    sse_close(&s);

    /* HTTP/1.0: no chunks; the same bytes until the server closes. */
    assert_int_equal(sse_open_retry(&s, "/v1/events", NULL, true, 0), 200);
    assert_false(s.chunked);
    expect_retry(&s);
    make_cycles(g_heap, &Node, 2, NULL);
    assert_int_equal(rcgc_collect(g_heap, 0), 2);
    expect_collection(&s, "ev", 0, 2, 0, 0, 0);
    expect_quiet(&s, 2 * HEARTBEAT_MS);
    assert_true(s.comments >= 1);
    sse_close(&s);
}

#define MAX_STREAMS 8

/* Opens a stream once the server noticed that enough clients left (sse_open retries on
 * 503 for 5 s). */
static bool reopen(sse *s)
{
    if (sse_open(s, "/v1/events", NULL) == 200)
        return true;
    sse_close(s);
    return false;
}

static void test_events_limit_and_vanishing(void **state)
{
    (void)state;
    sse s[MAX_STREAMS];
    for (int i = 0; i < MAX_STREAMS; i++) {
        assert_int_equal(sse_open(&s[i], "/v1/events", NULL), 200);
        expect_retry(&s[i]);
    }
    /* The ninth: 503 with Retry-After, in the JSON error shape. */
    http_response r;
    http_request(g_port, "GET", "/v1/events", NULL, NULL, &r);
    expect_error(&r, 503, "too_many_streams");
    char v[64];
    assert_string_equal(http_header(&r, "Retry-After", v, sizeof v), "5");
    http_response_free(&r);
    /* HEAD answers the headers without taking a stream. */
    assert_int_equal(http_request(g_port, "HEAD", "/v1/events", NULL, NULL, &r), 200);
    assert_string_equal(http_header(&r, "Content-Type", v, sizeof v), "text/event-stream");
    http_response_free(&r);
    /* Other endpoints still answer. */
    assert_int_equal(http_request(g_port, "GET", "/v1/heaps", NULL, NULL, &r), 200);
    http_response_free(&r);

    /* Two clients vanish while their streams sleep: one resets, one closes. The server
     * notices at its next write (a heartbeat) and gives their slots back. */
    struct linger lg = {1, 0};
    setsockopt(s[0].fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    sse_close(&s[0]);
    sse_close(&s[1]);
    assert_true(reopen(&s[0]));
    assert_true(reopen(&s[1]));
    expect_retry(&s[0]);
    expect_retry(&s[1]);
    request_error("GET", "/v1/events", 503, "too_many_streams");
    /* A client that leaves while events are being published. */
    sse_close(&s[2]);
    for (int i = 0; i < 5; i++) {
        make_cycles(g_heap, &Node, 1, NULL);
        assert_int_equal(rcgc_collect(g_heap, 0), 1);
    }
    assert_true(reopen(&s[2]));
    /* Everyone leaves: every slot comes back. */
    for (int i = 0; i < MAX_STREAMS; i++)
        sse_close(&s[i]);
    for (int i = 0; i < MAX_STREAMS; i++)
        assert_true(reopen(&s[i]));
    for (int i = 0; i < MAX_STREAMS; i++)
        sse_close(&s[i]);
}

/* A client that does not read while the ring turns over more than once gets a reset
 * (client_too_slow) where it fell behind, then carries on live. */
static void test_events_too_slow(void **state)
{
    (void)state;
    sse s;
    assert_int_equal(sse_open_retry(&s, "/v1/events", NULL, false, 4096), 200);
    flood(120); /* far more than the socket buffers hold */
    expect_retry(&s);
    uint64_t last = 0, reset_head = 0;
    unsigned resets = 0;
    sse_event ev;
    while (next_event(&s, &ev, 1000)) {
        if (strcmp(ev.event, "reset") == 0) {
            assert_string_equal(str_of(&ev, "reason"), "client_too_slow");
            reset_head = u64_of(ev.data, "head");
            assert_int_equal(ev.seq, reset_head);
            assert_true(reset_head > last + 4096);
            resets++;
        } else if (last != 0) {
            assert_int_equal(ev.seq, last + 1); /* no gap but at a reset */
        }
        last = ev.seq;
        event_free(&ev);
    }
    assert_true(resets >= 1);
    /* Live after the reset. */
    make_cycles(g_heap, &Node, 1, NULL);
    assert_int_equal(rcgc_collect(g_heap, 0), 1);
    expect_collection(&s, "ev", 0, 1, 0, 0, last);
    sse_close(&s);
}

/* ---- stopping with streams open ---- */

static void test_events_stop_with_streams(void **state)
{
    (void)state;
    sse s[MAX_STREAMS];
    char last[64] = "";
    for (int i = 0; i < MAX_STREAMS; i++) {
        assert_int_equal(sse_open_retry(&s[i], "/v1/events", NULL, i == 7, 0), 200);
        expect_retry(&s[i]);
    }
    make_cycles(g_heap, &Node, 1, NULL);
    assert_int_equal(rcgc_collect(g_heap, 0), 1);
    for (int i = 0; i < MAX_STREAMS; i++) {
        sse_event ev;
        expect_event(&s[i], &ev, "collect_start", "ev");
        event_free(&ev);
        expect_event(&s[i], &ev, "collect_done", "ev");
        snprintf(last, sizeof last, "%s", ev.id);
        event_free(&ev);
    }
    sleep_ms(50); /* every stream is asleep (suspended) now */

    long long t0 = now_ms();
    rcgc_inspect_stop(); /* must neither abort (suspended connections) nor hang */
    long long took = now_ms() - t0;
    assert_true(took < 2500);
    assert_int_equal(rcgc_inspect_port(), 0);
    for (int i = 0; i < MAX_STREAMS; i++) {
        sse_event ev;
        assert_false(next_event(&s[i], &ev, 5000)); /* the stream ends */
        assert_true(s[i].ended);
        if (i < 7)
            assert_true(s[i].terminator); /* a clean end of the chunked stream */
        sse_close(&s[i]);
    }

    /* While stopped nothing is recorded; after a restart the ring and its epoch carry on:
     * resuming from an id seen before the stop gets what came after. */
    make_cycles(g_heap, &Node, 2, NULL);
    assert_int_equal(rcgc_collect(g_heap, 0), 2);
    start_server();
    make_cycles(g_heap, &Node, 3, NULL);
    assert_int_equal(rcgc_collect(g_heap, 0), 3);
    char h[128];
    snprintf(h, sizeof h, "Last-Event-ID: %s\r\n", last);
    sse r;
    assert_int_equal(sse_open(&r, "/v1/events", h), 200);
    expect_retry(&r);
    expect_collection(&r, "ev", 0, 3, 0, 0, strtoull(last + 17, NULL, 10));
    sse_close(&r);

    /* A stream with unread data at the stop ends too (or is closed): no hang. */
    assert_int_equal(sse_open_retry(&r, "/v1/events", NULL, false, 4096), 200);
    for (int i = 0; i < 200; i++) {
        make_cycles(g_heap, &Node, 1, NULL);
        assert_int_equal(rcgc_collect(g_heap, 0), 1);
    }
    t0 = now_ms();
    rcgc_inspect_stop();
    assert_true(now_ms() - t0 < 2500);
    sse_close(&r);
    start_server();
}

/* ---- owners of other heaps and vanishing clients, concurrently (TSan) ---- */

#define OWNERS 2
#define OWNER_COLLECTIONS 300

static atomic_int g_owners_done;
static atomic_int g_churn_stop;
static atomic_int g_churn_bad;

static void *owner_main(void *arg)
{
    int k = (int)(intptr_t)arg;
    char name[16];
    snprintf(name, sizeof name, "t%d", k);
    rcgc_heap_options o = {.name = name, .ignore_environment = true};
    rcgc_heap *h = rcgc_heap_new_with(&o);
    if (h == NULL) {
        atomic_fetch_add(&g_owners_done, 1);
        return NULL;
    }
    rcgc_disable(h);
    for (int i = 0; i < OWNER_COLLECTIONS; i++) {
        for (int j = 0; j <= k; j++) {
            node *x = rcgc_new(h, &Node);
            if (x == NULL)
                break;
            rcgc_incref(x);
            x->next = x;
            rcgc_decref(x);
        }
        (void)rcgc_collect(h, i % 3);
    }
    rcgc_heap_free(h);
    atomic_fetch_add(&g_owners_done, 1);
    return NULL;
}

/* Opens streams, reads a little, leaves (half of the time with a reset). */
static void *churn_main(void *arg)
{
    (void)arg;
    unsigned i = 0;
    while (!atomic_load(&g_churn_stop)) {
        int fd = http_connect(g_port);
        if (fd < 0) {
            atomic_fetch_add(&g_churn_bad, 1);
            break;
        }
        char req[128];
        snprintf(req, sizeof req, "GET /v1/events%s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
                 i % 3 == 0 ? "?heap=t1" : "");
        if (http_send(fd, req, strlen(req)) == 0) {
            char buf[512];
            struct pollfd p = {fd, POLLIN, 0};
            if (poll(&p, 1, 2000) == 1)
                (void)recv(fd, buf, sizeof buf, 0);
        }
        if (i++ % 2 == 0) {
            struct linger lg = {1, 0};
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        }
        close(fd);
        sleep_ms(5);
    }
    return NULL;
}

typedef struct heap_track {
    uint64_t starts, dones;
    bool open; /* a collect_start without its collect_done yet */
} heap_track;

static void test_events_owners_and_readers(void **state)
{
    (void)state;
    atomic_store(&g_owners_done, 0);
    atomic_store(&g_churn_stop, 0);
    atomic_store(&g_churn_bad, 0);
    enum { READERS = 3 };
    sse s[READERS];
    const char *targets[READERS] = {"/v1/events", "/v1/events", "/v1/events?heap=t1"};
    for (int i = 0; i < READERS; i++) {
        assert_int_equal(sse_open(&s[i], targets[i], NULL), 200);
        expect_retry(&s[i]);
    }
    pthread_t owners[OWNERS], churn;
    for (intptr_t k = 0; k < OWNERS; k++)
        assert_int_equal(pthread_create(&owners[k], NULL, owner_main, (void *)k), 0);
    assert_int_equal(pthread_create(&churn, NULL, churn_main, NULL), 0);

    /* Every event of both heaps, in seq order without a gap; each heap's collections as
     * start / done pairs (and one more pair: the final collection of rcgc_heap_free).
     * The ring (4096) holds them all even for a slow reader. */
    const uint64_t per_heap = 2u * (OWNER_COLLECTIONS + 1);
    uint64_t want[READERS] = {OWNERS * per_heap, OWNERS * per_heap, per_heap};
    uint64_t got[READERS] = {0}, last[READERS] = {0};
    heap_track track[READERS][OWNERS];
    memset(track, 0, sizeof track);
    long long deadline = now_ms() + 60000;
    for (;;) {
        bool all = true;
        for (int i = 0; i < READERS; i++)
            all = all && got[i] == want[i];
        if (all || now_ms() > deadline)
            break;
        for (int i = 0; i < READERS; i++) {
            sse_event ev;
            while (got[i] < want[i] && next_event(&s[i], &ev, 20)) {
                const char *heap = str_of(&ev, "heap");
                assert_true(heap[0] == 't');
                int k = heap[1] - '0';
                assert_true(k >= 0 && k < OWNERS);
                heap_track *t = &track[i][k];
                if (strcmp(ev.event, "collect_start") == 0) {
                    assert_false(t->open);
                    t->open = true;
                    t->starts++;
                } else {
                    assert_string_equal(ev.event, "collect_done");
                    assert_true(t->open);
                    t->open = false;
                    if (t->dones < OWNER_COLLECTIONS) /* not the final one */
                        assert_int_equal(u64_of(ev.data, "unreachable"), (uint64_t)k + 1);
                    t->dones++;
                }
                if (i < 2 && last[i] != 0)
                    assert_int_equal(ev.seq, last[i] + 1);
                if (i == 2)
                    assert_int_equal(k, 1);
                assert_true(ev.seq > last[i]);
                last[i] = ev.seq;
                got[i]++;
                event_free(&ev);
            }
        }
    }
    for (intptr_t k = 0; k < OWNERS; k++)
        assert_int_equal(pthread_join(owners[k], NULL), 0);
    atomic_store(&g_churn_stop, 1);
    assert_int_equal(pthread_join(churn, NULL), 0);
    assert_int_equal(atomic_load(&g_churn_bad), 0);
    for (int i = 0; i < READERS; i++) {
        assert_int_equal(got[i], want[i]);
        expect_quiet(&s[i], 50);
        sse_close(&s[i]);
    }
    for (int k = 0; k < OWNERS; k++)
        assert_int_equal(track[0][k].dones, OWNER_COLLECTIONS + 1);
    assert_int_equal(track[2][1].dones, OWNER_COLLECTIONS + 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_events_collections),
        cmocka_unit_test(test_events_object_events),
        cmocka_unit_test(test_events_resume),
        cmocka_unit_test(test_events_reset),
        cmocka_unit_test(test_events_heap_filter),
        cmocka_unit_test(test_events_heartbeat),
        cmocka_unit_test(test_events_limit_and_vanishing),
        cmocka_unit_test(test_events_too_slow),
        cmocka_unit_test(test_events_stop_with_streams),
        cmocka_unit_test(test_events_owners_and_readers),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
