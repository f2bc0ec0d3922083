/* events.c: GET /v1/events, the Server-Sent Events stream of what the collectors do
 * (protocol/events.md).
 *
 * The ring. Every collection event of every heap arrives through the process-wide sink
 * (sink.c calls rcgc__events_on_event on the heap's owner thread). The hook formats the
 * event's SSE frame once (outside the lock, into one malloc'd block), then, under the
 * ring lock, gives it the next seq, stores it in a ring of the last RING_SIZE frames
 * (freeing the one it replaces) and resumes the streams that sleep waiting for it. The
 * lock is held by readers only while they copy frames into libmicrohttpd's buffer: the
 * hook never waits for a client, and memory is bounded by the ring whatever the number
 * or speed of the clients (no per-client queue: a client holds a cursor, a seq, and at
 * most one frame it has started to write). The ring and its epoch live for the process:
 * stopping and starting the server keeps both.
 *
 * The streams. A request that passes the router gets a stream (rcgc__handle_events_get
 * reserves one of MAX_STREAMS, or answers 503), which server.c turns into a response of
 * unknown size (rcgc__events_response: chunked on HTTP/1.1). Its content reader copies
 * what the client has not seen yet and, with nothing to send, suspends the connection
 * (libmicrohttpd with an internal thread must not be handed 0 without a suspension:
 * it would busy-wait). A publication resumes it (a stream filtered on another heap just
 * moves past the event); so does the heartbeat thread when a stream has sent nothing for
 * the heartbeat interval, and the reader writes ": hb". A client that went away is
 * noticed by the reader, which peeks at the socket before it suspends (libmicrohttpd
 * 0.9.75 does not watch a suspended connection and sees a closed peer only when a write
 * fails): at the next event or heartbeat, or at once when the streams are all taken (a
 * request that gets 503 wakes every sleeping stream to check). The response's free
 * callback unlinks the stream and frees its slot.
 *
 * Stopping. libmicrohttpd 0.9.75 aborts the process when it is stopped with a suspended
 * connection. rcgc__events_stop (called by rcgc_inspect_stop between quiescing and
 * stopping the daemon) sets `stopping` and resumes every suspended stream under the
 * lock; a reader that sees `stopping` ends its stream (a clean end of stream: EventSource
 * reconnects) and never suspends again, and new streams are refused. It then waits a
 * moment for the streams to finish and joins the heartbeat thread.
 *
 * Locking: g_ev.lock guards everything here; it is taken before libmicrohttpd's own
 * locks (MHD_suspend_connection / MHD_resume_connection are called with it held, the
 * pattern libmicrohttpd documents as safe), and no callback of libmicrohttpd runs with
 * one of its locks held and calls back in here. */
#define _POSIX_C_SOURCE 200809L

#include "internal.h"

#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RING_SIZE 4096u /* events kept for resuming (a power of two) */
#define RING_MASK (RING_SIZE - 1u)
#define MAX_STREAMS 8u /* open streams; one more is 503 too_many_streams */
#define LISTEN_GRACE_NS                                                                        \
    60000000000u /* events are still recorded this long after the last                         \
                    stream closed, so that a client can resume */

/* Until when the owners' events are recorded (CLOCK_MONOTONIC ns): UINT64_MAX while a
 * stream is open, then LISTEN_GRACE_NS more; 0 before any stream. With nobody
 * listening, an owner's collection pays one clock read and one atomic load here, not a
 * frame's allocation. */
static _Atomic uint64_t g_record_until;

/* Under g_ev.lock, after nstreams changed. */
static void listeners_changed(unsigned nstreams)
{
    atomic_store_explicit(&g_record_until,
                          nstreams > 0 ? UINT64_MAX : rcgc__insp_now_ns() + LISTEN_GRACE_NS,
                          memory_order_relaxed);
}
#define OBJECT_CAP 1000u             /* collectable / uncollectable events per collection */
#define HEARTBEAT_MS 15000u          /* ": hb" after this long without writing */
#define STOP_WAIT_MS 1000u           /* how long stop waits for streams to end cleanly */
#define HEAD_RESERVE 144u            /* room for the frame's head (at most 135 bytes) */
#define RETRY_LINE "retry: 3000\n\n" /* the first line of every stream */
#define HEARTBEAT ": hb\n\n"         /* the heartbeat comment */

/* One stored event: its whole SSE frame ("id: ...\nevent: ...\ndata: {...}\n\n") and
 * the raw name of its heap (for ?heap=), both inside block. */
typedef struct ev_slot {
    uint64_t seq;
    char *block; /* malloc'd; NULL: empty */
    const char *frame;
    size_t len;
    const char *heap;
} ev_slot;

/* One client's stream (the response's closure). */
struct insp_stream {
    struct insp_stream *prev, *next; /* in g_ev.streams once served */
    struct MHD_Connection *conn;     /* set when the response is made */
    char *heap;                      /* ?heap= or NULL */
    char *since;                     /* ?since= (well-formed) or NULL */
    uint64_t cursor;                 /* the seq of the next ring event to consider */
    char *pend;                      /* bytes to write before anything else */
    size_t pend_len, pend_off, pend_cap;
    uint64_t last_write_ns;
    bool linked;    /* in g_ev.streams */
    bool suspended; /* the reader suspended its connection; only a resume clears it */
    bool hb_due;    /* the heartbeat thread resumed it: write ": hb" */
};

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond; /* heartbeat thread wake-ups; a stream ended (for stop) */
    char epoch[17];
    uint64_t head; /* the newest seq; 0: none yet */
    ev_slot ring[RING_SIZE];
    insp_stream *streams; /* served streams */
    unsigned nstreams;    /* reserved by the handler or served; at most MAX_STREAMS */
    bool stopping;        /* the server is stopping: end streams, refuse new ones */
    uint64_t hb_ns;       /* heartbeat interval */
    bool hb_running, hb_quit;
    pthread_t hb_thread;
} g_ev = {.lock = PTHREAD_MUTEX_INITIALIZER, .hb_ns = HEARTBEAT_MS * 1000000ull};

static pthread_once_t g_ev_once = PTHREAD_ONCE_INIT;

/* ---- the epoch, initialisation, fork ---- */

static void new_epoch(void)
{
    uint64_t r = 0;
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        r = ((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec) ^
            ((uint64_t)getpid() << 32) ^ rcgc__insp_now_ns();
        r ^= r >> 29;
        r *= 0xbf58476d1ce4e5b9ull;
        r ^= r >> 32;
    }
    snprintf(g_ev.epoch, sizeof g_ev.epoch, "%016" PRIx64, r);
}

static void init_cond(void)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&g_ev.cond, &a);
    pthread_condattr_destroy(&a);
}

static void fork_prepare(void)
{
    pthread_mutex_lock(&g_ev.lock);
}

static void fork_parent(void)
{
    pthread_mutex_unlock(&g_ev.lock);
}

/* In a child of fork() no server thread exists and no stream is served: forget the
 * streams (their connections are the parent's), and start a new ring under a new epoch
 * (a client must never take the child's events for the parent's). */
static void fork_child(void)
{
    for (insp_stream *s = g_ev.streams, *n; s != NULL; s = n) {
        n = s->next;
        free(s->pend);
        free(s->heap);
        free(s->since);
        free(s);
    }
    g_ev.streams = NULL;
    g_ev.nstreams = 0;
    g_ev.hb_running = false;
    g_ev.hb_quit = false;
    g_ev.stopping = false;
    for (size_t i = 0; i < RING_SIZE; i++) {
        free(g_ev.ring[i].block);
        g_ev.ring[i] = (ev_slot){0};
    }
    g_ev.head = 0;
    new_epoch();
    init_cond(); /* the parent's heartbeat thread may have been waiting on it */
    pthread_mutex_unlock(&g_ev.lock);
}

static void ev_init(void)
{
    init_cond();
    new_epoch();
    (void)pthread_atfork(fork_prepare, fork_parent, fork_child);
}

/* ---- text ---- */

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0 when s does not start
 * one (overlong forms, surrogates and values above U+10FFFF are invalid). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    uint32_t cp, min;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2, min = 0x80, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3, min = 0x800, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4, min = 0x10000, cp = c & 0x07;
    else
        return 0;
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

/* Appends s as a JSON string (quotes included): invalid UTF-8 becomes U+FFFD, quotes,
 * backslashes and control characters are escaped. The result holds no newline. */
static void buf_json_str(insp_buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s), run = 0, i = 0; /* run: plain bytes before p + i */
    rcgc__buf_add(b, "\"", 1);
    while (i < n) {
        unsigned c = p[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            run++, i++;
            continue;
        }
        if (c >= 0x80) {
            size_t k = utf8_len(p + i, n - i);
            if (k > 0) {
                run += k, i += k;
                continue;
            }
        }
        rcgc__buf_add(b, s + i - run, run);
        run = 0;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            rcgc__buf_add(b, e, 2);
        } else if (c < 0x20) {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            rcgc__buf_add(b, e, 6);
        } else {
            rcgc__buf_add(b, "\xEF\xBF\xBD", 3); /* U+FFFD */
        }
        i++;
    }
    rcgc__buf_add(b, s + i - run, run);
    rcgc__buf_add(b, "\"", 1);
}

/* "time":"<now, UTC, RFC 3339 with milliseconds>" */
static void buf_time(insp_buf *b)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    time_t sec = ts.tv_sec;
    gmtime_r(&sec, &tm);
    rcgc__buf_printf(b, ",\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\"", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000L);
}

/* ---- publishing (owner threads) ---- */

/* Object events published and dropped in the collections running on this thread, by
 * heap (a finalizer may collect another heap of the same owner in the middle). */
typedef struct coll_state {
    const rcgc_heap *h;
    unsigned published;
    uint64_t dropped;
} coll_state;

#define COLL_NESTING 4
static _Thread_local coll_state tl_coll[COLL_NESTING];
static _Thread_local unsigned tl_coll_next;

static coll_state *coll_find(const rcgc_heap *h)
{
    for (unsigned i = 0; i < COLL_NESTING; i++)
        if (tl_coll[i].h == h)
            return &tl_coll[i];
    return NULL;
}

static coll_state *coll_start(const rcgc_heap *h)
{
    coll_state *c = coll_find(h);
    for (unsigned i = 0; c == NULL && i < COLL_NESTING; i++)
        if (tl_coll[i].h == NULL)
            c = &tl_coll[i];
    if (c == NULL) /* deeper than ever seen, or left over by a removed sink */
        c = &tl_coll[tl_coll_next++ % COLL_NESTING];
    *c = (coll_state){.h = h};
    return c;
}

/* Wakes the streams sleeping on the new event seq of heap. A sleeping stream whose
 * ?heap= does not match moves past the event instead (it had sent everything before
 * it), so that other heaps' events never make it fall behind the ring while it waits.
 * Under the lock. */
static void wake_streams(uint64_t seq, const char *heap)
{
    for (insp_stream *s = g_ev.streams; s != NULL; s = s->next) {
        if (!s->suspended)
            continue;
        if (s->heap != NULL && strcmp(s->heap, heap) != 0) {
            if (s->cursor == seq)
                s->cursor = seq + 1;
            continue;
        }
        s->suspended = false;
        MHD_resume_connection(s->conn);
    }
}

/* Stores the frame built in b (HEAD_RESERVE bytes of room, then the data object after
 * its "seq" field: tail_len bytes; then the raw heap name and a NUL at heap_off). */
static void publish(insp_buf *b, const char *event, size_t tail_len, size_t heap_off)
{
    pthread_once(&g_ev_once, ev_init);
    pthread_mutex_lock(&g_ev.lock);
    uint64_t seq = ++g_ev.head;
    char head[HEAD_RESERVE];
    int hn = snprintf(head, sizeof head,
                      "id: %s-%" PRIu64 "\nevent: %s\ndata: {\"protocol\":%d,\"event\":\"%s\","
                      "\"seq\":\"%" PRIu64 "\"",
                      g_ev.epoch, seq, event, INSP_PROTOCOL, event, seq);
    ev_slot *sl = &g_ev.ring[seq & RING_MASK];
    char *old = sl->block;
    char *frame = b->data + HEAD_RESERVE - (size_t)hn;
    memcpy(frame, head, (size_t)hn);
    *sl = (ev_slot){.seq = seq,
                    .block = b->data,
                    .frame = frame,
                    .len = (size_t)hn + tail_len,
                    .heap = b->data + heap_off};
    wake_streams(seq, sl->heap);
    pthread_mutex_unlock(&g_ev.lock);
    free(old);
    b->data = NULL;
}

void rcgc__events_on_event(rcgc_heap *h, const char *heap_name, const rcgc_event *ev)
{
    if (rcgc__insp_now_ns() > atomic_load_explicit(&g_record_until, memory_order_relaxed))
        return; /* nobody listens, nor did recently: nothing to resume */
    const char *event;
    coll_state *c = NULL;
    switch (ev->kind) {
    case RCGC_EVENT_COLLECT_START:
        event = "collect_start";
        coll_start(h);
        break;
    case RCGC_EVENT_COLLECT_DONE:
        event = "collect_done";
        c = coll_find(h);
        break;
    case RCGC_EVENT_COLLECTABLE:
    case RCGC_EVENT_UNCOLLECTABLE:
        event = ev->kind == RCGC_EVENT_COLLECTABLE ? "collectable" : "uncollectable";
        c = coll_find(h);
        if (c == NULL) /* the sink was installed in the middle of this collection */
            c = coll_start(h);
        if (c->published >= OBJECT_CAP) {
            c->dropped++;
            return;
        }
        c->published++;
        break;
    default:
        return;
    }
    const char *heap = heap_name != NULL ? heap_name : "";
    int gen = ev->generation < 0 ? 0 : ev->generation > 2 ? 2 : ev->generation;
    insp_buf b = {0};
    char room[HEAD_RESERVE]; /* where publish() writes the head, once it has a seq */
    memset(room, ' ', sizeof room);
    rcgc__buf_add(&b, room, sizeof room);
    buf_time(&b);
    rcgc__buf_add(&b, ",\"heap\":", 8);
    buf_json_str(&b, heap);
    switch (ev->kind) {
    case RCGC_EVENT_COLLECT_START:
        rcgc__buf_printf(&b, ",\"generation\":%d,\"count\":[\"%zu\",\"%zu\",\"%zu\"]}\n\n", gen,
                         ev->count[0], ev->count[1], ev->count[2]);
        break;
    case RCGC_EVENT_COLLECT_DONE: {
        size_t unreachable = ev->unreachable;
        size_t uncollectable =
            ev->uncollectable <= unreachable ? ev->uncollectable : unreachable;
        uint64_t dropped = c != NULL ? c->dropped : 0;
        if (c != NULL)
            c->h = NULL;
        rcgc__buf_printf(&b,
                         ",\"generation\":%d,\"unreachable\":\"%zu\",\"collected\":\"%zu\","
                         "\"uncollectable\":\"%zu\",\"pause_ns\":\"%" PRIu64
                         "\",\"dropped\":\"%" PRIu64 "\"}\n\n",
                         gen, unreachable, unreachable - uncollectable, uncollectable,
                         ev->duration_ns, dropped);
        break;
    }
    default: {
        uintptr_t a = (uintptr_t)ev->object;
        rcgc__buf_printf(
            &b, ",\"id\":\"%" PRIuPTR "\",\"address\":\"0x%" PRIxPTR "\",\"type\":", a, a);
        buf_json_str(&b, ev->type != NULL && ev->type->name != NULL ? ev->type->name : "");
        rcgc__buf_add(&b, "}\n\n", 3);
        break;
    }
    }
    size_t tail_len = b.len - HEAD_RESERVE;
    size_t heap_off = b.len + 1;
    rcgc__buf_add(&b, "", 1); /* the frame's end: a NUL, then the heap's raw name */
    rcgc__buf_add(&b, heap, strlen(heap));
    if (b.failed) { /* out of memory: the event is lost, as a full ring would lose it */
        free(b.data);
        return;
    }
    char *fit = realloc(b.data, b.len + 1); /* the ring holds 4096 of them */
    if (fit != NULL)
        b.data = fit;
    publish(&b, event, tail_len, heap_off);
}

/* ---- streams (libmicrohttpd's threads) ---- */

/* The oldest seq the ring holds (head + 1 when it is empty). Under the lock. */
static uint64_t oldest_seq(void)
{
    return g_ev.head >= RING_SIZE ? g_ev.head - RING_SIZE + 1 : 1;
}

/* Appends n bytes to what s writes before anything else. Under the lock.
 * Returns: 0, or -1 when memory runs out. */
static int pend_add(insp_stream *s, const char *p, size_t n)
{
    if (s->pend_off == s->pend_len)
        s->pend_off = s->pend_len = 0;
    if (s->pend_cap - s->pend_len < n) {
        size_t cap = s->pend_cap ? s->pend_cap : 512;
        while (cap - s->pend_len < n)
            cap *= 2;
        char *d = realloc(s->pend, cap);
        if (d == NULL)
            return -1;
        s->pend = d;
        s->pend_cap = cap;
    }
    memcpy(s->pend + s->pend_len, p, n);
    s->pend_len += n;
    return 0;
}

/* Queues a reset event (reason) and moves s after the newest event. Under the lock.
 * Returns: 0 or -1 (out of memory). */
static int pend_reset(insp_stream *s, const char *reason)
{
    uint64_t head = g_ev.head;
    insp_buf b = {0};
    rcgc__buf_printf(&b,
                     "id: %s-%" PRIu64
                     "\nevent: reset\ndata: {\"protocol\":%d,\"event\":\"reset\","
                     "\"seq\":\"%" PRIu64 "\"",
                     g_ev.epoch, head, INSP_PROTOCOL, head);
    buf_time(&b);
    rcgc__buf_printf(&b,
                     ",\"reason\":\"%s\",\"epoch\":\"%s\",\"head\":\"%" PRIu64
                     "\",\"oldest\":\"%" PRIu64 "\"}\n\n",
                     reason, g_ev.epoch, head, oldest_seq());
    int r = b.failed ? -1 : pend_add(s, b.data, b.len);
    free(b.data);
    s->cursor = head + 1;
    return r;
}

/* Parses an event id: 16 lowercase hex digits, '-', a seq (0 or [1-9][0-9]{0,19}).
 * Returns: 1 (epoch and *seq filled), 0 well-formed but the seq exceeds 64 bits (epoch
 * filled), -1 malformed. */
static int parse_id(const char *s, char epoch[17], uint64_t *seq)
{
    size_t n = strlen(s);
    if (n < 18 || n > 37 || s[16] != '-' || strspn(s, "0123456789abcdef") != 16)
        return -1;
    const char *d = s + 17;
    size_t dn = n - 17;
    if (strspn(d, "0123456789") != dn || (dn > 1 && d[0] == '0'))
        return -1;
    memcpy(epoch, s, 16);
    epoch[16] = '\0';
    uint64_t v = 0;
    for (size_t i = 0; i < dn; i++) {
        unsigned digit = (unsigned)(d[i] - '0');
        if (v > (UINT64_MAX - digit) / 10)
            return 0;
        v = v * 10 + digit;
    }
    *seq = v;
    return 1;
}

/* Where a new stream starts (protocol/events.md, "The ring and resuming"): after the
 * event id names, live (id NULL), or live after a reset. Queues "retry:" first. Under
 * the lock. Returns: 0 or -1 (out of memory). */
static int position(insp_stream *s, const char *id)
{
    s->cursor = g_ev.head + 1;
    if (pend_add(s, RETRY_LINE, sizeof RETRY_LINE - 1) != 0)
        return -1;
    if (id == NULL)
        return 0;
    char epoch[17];
    uint64_t seq = 0;
    int p = parse_id(id, epoch, &seq);
    if (p < 0)
        return pend_reset(s, "bad_last_event_id");
    if (strcmp(epoch, g_ev.epoch) != 0)
        return pend_reset(s, "unknown_epoch");
    if (p == 0 || seq > g_ev.head)
        return pend_reset(s, "bad_last_event_id");
    if (seq + 1 < oldest_seq())
        return pend_reset(s, "history_expired");
    s->cursor = seq + 1;
    return 0;
}

/* Whether the client of s went away: its socket is at end of file (it closed) or in
 * error (it reset). Peeks without consuming, so a request pipelined behind the stream
 * stays for libmicrohttpd. Lets a stream end before suspending again instead of
 * holding its slot until a write fails (libmicrohttpd 0.9.75 does not watch the
 * socket of a suspended connection). */
static bool client_gone(const insp_stream *s)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(s->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci == NULL)
        return false;
    char b;
    ssize_t k = recv(ci->connect_fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return k == 0 || (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

static void stream_delete(insp_stream *s)
{
    free(s->pend);
    free(s->heap);
    free(s->since);
    free(s);
}

/* The content reader: whatever s has not written yet, as much as fits; with nothing to
 * write, a heartbeat when one is due, else the connection is suspended until a
 * publication or the heartbeat thread resumes it. */
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    insp_stream *s = cls;
    size_t n = 0;
    bool failed = false;
    uint64_t now = rcgc__insp_now_ns();
    pthread_mutex_lock(&g_ev.lock);
    while (n < max) {
        if (s->pend_off < s->pend_len) { /* a frame begun, a reset, retry:, : hb */
            size_t k = s->pend_len - s->pend_off;
            if (k > max - n)
                k = max - n;
            memcpy(buf + n, s->pend + s->pend_off, k);
            n += k;
            s->pend_off += k;
            continue;
        }
        if (s->pend_cap > 4096) { /* a huge frame went out: do not keep its buffer */
            free(s->pend);
            s->pend = NULL;
            s->pend_cap = s->pend_len = s->pend_off = 0;
        }
        if (g_ev.stopping)
            break;
        if (s->cursor <= g_ev.head) {
            if (s->cursor < oldest_seq()) { /* it fell more than the ring behind */
                if (pend_reset(s, "client_too_slow") != 0) {
                    failed = true;
                    break;
                }
                continue;
            }
            const ev_slot *e = &g_ev.ring[s->cursor & RING_MASK];
            if (e->block == NULL || e->seq != s->cursor ||
                (s->heap != NULL && strcmp(e->heap, s->heap) != 0)) {
                s->cursor++;
                continue;
            }
            if (e->len <= max - n) {
                memcpy(buf + n, e->frame, e->len);
                n += e->len;
                s->cursor++;
                continue;
            }
            if (n > 0)
                break;                                /* the next call starts with it */
            if (pend_add(s, e->frame, e->len) != 0) { /* larger than the whole buffer */
                failed = true;
                break;
            }
            s->cursor++;
            continue;
        }
        if (n == 0 && (s->hb_due || now - s->last_write_ns >= g_ev.hb_ns)) {
            if (pend_add(s, HEARTBEAT, sizeof HEARTBEAT - 1) != 0) {
                failed = true;
                break;
            }
            s->hb_due = false;
            continue;
        }
        break;
    }
    ssize_t r;
    if (n > 0) {
        s->last_write_ns = now;
        s->hb_due = false;
        r = (ssize_t)n;
    } else if (failed) {
        r = MHD_CONTENT_READER_END_WITH_ERROR; /* EventSource reconnects and resumes */
    } else if (g_ev.stopping) {
        r = MHD_CONTENT_READER_END_OF_STREAM;
    } else if (client_gone(s)) {
        r = MHD_CONTENT_READER_END_OF_STREAM; /* the connection ends, freeing s */
    } else {
        s->suspended = true;
        MHD_suspend_connection(s->conn);
        r = 0;
    }
    pthread_mutex_unlock(&g_ev.lock);
    return r;
}

/* The response's free callback: the connection is done with the stream. */
static void stream_free(void *cls)
{
    insp_stream *s = cls;
    pthread_mutex_lock(&g_ev.lock);
    if (s->linked) {
        if (s->prev != NULL)
            s->prev->next = s->next;
        else
            g_ev.streams = s->next;
        if (s->next != NULL)
            s->next->prev = s->prev;
    }
    g_ev.nstreams--;
    listeners_changed(g_ev.nstreams);
    pthread_cond_broadcast(&g_ev.cond);
    pthread_mutex_unlock(&g_ev.lock);
    stream_delete(s);
}

/* The heartbeat thread: resumes every suspended stream that has written nothing for the
 * heartbeat interval (its reader then writes ": hb"). Sleeps until the next one is due. */
static void *heartbeat_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&g_ev.lock);
    while (!g_ev.hb_quit) {
        uint64_t now = rcgc__insp_now_ns();
        uint64_t wake = now + g_ev.hb_ns;
        for (insp_stream *s = g_ev.streams; s != NULL; s = s->next) {
            uint64_t due = s->last_write_ns + g_ev.hb_ns;
            if (due <= now) {
                if (s->suspended) {
                    s->suspended = false;
                    s->hb_due = true;
                    MHD_resume_connection(s->conn);
                }
                due = now + g_ev.hb_ns; /* a running reader sees to it itself */
            }
            if (due < wake)
                wake = due;
        }
        struct timespec ts = {(time_t)(wake / 1000000000u), (long)(wake % 1000000000u)};
        pthread_cond_timedwait(&g_ev.cond, &g_ev.lock, &ts);
    }
    pthread_mutex_unlock(&g_ev.lock);
    return NULL;
}

int rcgc__handle_events_get(const insp_req *rq, insp_resp *rs)
{
    const char *heap = rcgc__query_str(rq, "heap");
    const char *since = rcgc__query_str(rq, "since");
    if (heap != NULL && (heap[0] == '\0' || strlen(heap) > INSP_CAPTURE_MAX))
        return rcgc__reply_error(rs, 400, "bad_parameter",
                                 "query parameter 'heap' must be a heap name of 1 to %d bytes",
                                 INSP_CAPTURE_MAX);
    char epoch[17];
    uint64_t seq;
    if (since != NULL && parse_id(since, epoch, &seq) < 0)
        return rcgc__reply_error(rs, 400, "bad_parameter",
                                 "query parameter 'since' must be an event id: <epoch>-<seq> "
                                 "(16 lowercase hex digits, '-', a decimal number)");
    if (rq->method == INSP_HEAD) /* the headers of a stream, without one */
        return rcgc__reply_raw(rs, 200, "text/event-stream", NULL, 0);

    pthread_once(&g_ev_once, ev_init);
    insp_stream *s = calloc(1, sizeof *s);
    if (s == NULL || (heap != NULL && (s->heap = strdup(heap)) == NULL) ||
        (since != NULL && (s->since = strdup(since)) == NULL)) {
        if (s != NULL)
            stream_delete(s);
        return rcgc__reply_error(rs, 500, "internal_error", "out of memory");
    }
    pthread_mutex_lock(&g_ev.lock);
    bool stopping = g_ev.stopping, full = g_ev.nstreams >= MAX_STREAMS;
    if (!stopping && !full) {
        g_ev.nstreams++;
        listeners_changed(g_ev.nstreams);
    }
    if (full && !stopping) {
        /* Some of the streams may belong to clients that left (a reloaded page): wake
         * them so that each reader checks its socket, and their slots are free again
         * when this client retries (Retry-After). */
        for (insp_stream *t = g_ev.streams; t != NULL; t = t->next) {
            if (t->suspended) {
                t->suspended = false;
                MHD_resume_connection(t->conn);
            }
        }
    }
    pthread_mutex_unlock(&g_ev.lock);
    if (stopping || full) {
        stream_delete(s);
        if (stopping)
            return rcgc__reply_error(rs, 503, "shutting_down", "the server is stopping");
        rs->retry_after_s = 5;
        return rcgc__reply_error(rs, 503, "too_many_streams",
                                 "%u event streams are open already; try again later",
                                 MAX_STREAMS);
    }
    rcgc__reply_raw(rs, 200, "text/event-stream", NULL, 0);
    rs->stream = s;
    return 0;
}

void rcgc__events_discard(insp_stream *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&g_ev.lock);
    g_ev.nstreams--;
    listeners_changed(g_ev.nstreams);
    pthread_cond_broadcast(&g_ev.cond);
    pthread_mutex_unlock(&g_ev.lock);
    stream_delete(s);
}

struct MHD_Response *rcgc__events_response(insp_stream *s, struct MHD_Connection *c,
                                           const char *last_event_id)
{
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, s, stream_free);
    if (r == NULL) {
        rcgc__events_discard(s);
        return NULL;
    }
    /* From here on the response owns s: destroying it calls stream_free. */
    if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream") !=
            MHD_YES ||
        MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache") != MHD_YES ||
        MHD_add_response_header(r, "X-Content-Type-Options", "nosniff") != MHD_YES) {
        MHD_destroy_response(r);
        return NULL;
    }
    /* The header wins over ?since= (EventSource sends it when it reconnects). */
    const char *id =
        last_event_id != NULL && last_event_id[0] != '\0' ? last_event_id : s->since;
    pthread_mutex_lock(&g_ev.lock);
    s->conn = c;
    int rc = position(s, id);
    s->last_write_ns = rcgc__insp_now_ns();
    s->prev = NULL;
    s->next = g_ev.streams;
    if (g_ev.streams != NULL)
        g_ev.streams->prev = s;
    g_ev.streams = s;
    s->linked = true;
    /* Created from a server thread, the heartbeat thread inherits its signal mask (every
     * asynchronous signal blocked: they belong to the host's threads). */
    if (!g_ev.hb_running && !g_ev.stopping) {
        g_ev.hb_quit = false;
        g_ev.hb_running = pthread_create(&g_ev.hb_thread, NULL, heartbeat_main, NULL) == 0;
    }
    pthread_cond_broadcast(&g_ev.cond);
    pthread_mutex_unlock(&g_ev.lock);
    if (rc != 0) {
        MHD_destroy_response(r);
        return NULL;
    }
    return r;
}

/* ---- start and stop (rcgc_inspect_start / rcgc_inspect_stop) ---- */

void rcgc__events_start(void)
{
    pthread_once(&g_ev_once, ev_init);
    /* RCGC_INSPECT_HEARTBEAT_MS: a shorter heartbeat for the tests (not a setting). */
    uint64_t ms = HEARTBEAT_MS;
    const char *v = getenv("RCGC_INSPECT_HEARTBEAT_MS");
    if (v != NULL && v[0] != '\0' && strlen(v) <= 7 && strspn(v, "0123456789") == strlen(v)) {
        unsigned long x = strtoul(v, NULL, 10);
        if (x >= 1 && x <= 3600000ul)
            ms = x;
    }
    pthread_mutex_lock(&g_ev.lock);
    g_ev.stopping = false;
    g_ev.hb_ns = ms * 1000000u;
    pthread_mutex_unlock(&g_ev.lock);
}

void rcgc__events_stop(void)
{
    pthread_once(&g_ev_once, ev_init);
    pthread_mutex_lock(&g_ev.lock);
    g_ev.stopping = true;
    for (insp_stream *s = g_ev.streams; s != NULL; s = s->next) {
        if (s->suspended) {
            s->suspended = false;
            MHD_resume_connection(s->conn);
        }
    }
    /* Each reader now ends its stream (the chunked terminator, or a close on HTTP/1.0)
     * and the connection frees it. A client that does not read keeps its stream past
     * the deadline: stopping the daemon closes it (it is not suspended: no abort). */
    uint64_t deadline = rcgc__insp_now_ns() + STOP_WAIT_MS * 1000000ull;
    struct timespec ts = {(time_t)(deadline / 1000000000u), (long)(deadline % 1000000000u)};
    while (g_ev.nstreams > 0 && rcgc__insp_now_ns() < deadline)
        pthread_cond_timedwait(&g_ev.cond, &g_ev.lock, &ts);
    g_ev.hb_quit = true;
    pthread_cond_broadcast(&g_ev.cond);
    bool join = g_ev.hb_running;
    g_ev.hb_running = false;
    pthread_mutex_unlock(&g_ev.lock);
    if (join)
        pthread_join(g_ev.hb_thread, NULL);
}
