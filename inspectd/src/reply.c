/* reply.c: how handlers answer: JSON documents and error bodies in one shape, 64-bit
 * numbers as strings, text that is always valid UTF-8, and a growable text buffer. */
#define _POSIX_C_SOURCE 200809L

#include "internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

uint64_t rcgc__insp_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void rcgc__resp_clear(insp_resp *rs)
{
    rcgc__events_discard(rs->stream); /* a stream reserved and never served */
    free(rs->body);
    free(rs->location);
    memset(rs, 0, sizeof *rs);
}

/* Sets the status line fields and body, dropping a previous reply's body but keeping
 * the headers a previous step decided (Allow, Retry-After, WWW-Authenticate). */
static void set_reply(insp_resp *rs, unsigned status, const char *ctype, char *body, size_t len)
{
    free(rs->body);
    rs->status = status;
    rs->content_type = ctype;
    rs->body = body;
    rs->len = len;
}

int rcgc__reply_raw(insp_resp *rs, unsigned status, const char *content_type, char *body,
                    size_t len)
{
    set_reply(rs, status, content_type, body, len);
    return 0;
}

/* The last-resort answer when even an error document cannot be built. */
static void reply_oom(insp_resp *rs)
{
    static const char text[] = "{\"protocol\":1,\"error\":{\"code\":\"internal_error\","
                               "\"message\":\"out of memory\"}}\n";
    char *copy = malloc(sizeof text);
    if (copy != NULL)
        memcpy(copy, text, sizeof text);
    set_reply(rs, 500, "application/json", copy, copy != NULL ? sizeof text - 1 : 0);
}

int rcgc__reply_json(insp_resp *rs, unsigned status, json_t *body)
{
    if (body == NULL) {
        reply_oom(rs);
        return -1;
    }
    /* Nine significant digits: 0.316902 ms, not 0.31690200000000002. */
    const size_t flags = JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(9);
    size_t need = json_dumpb(body, NULL, 0, flags);
    char *text = need > 0 ? malloc(need + 2) : NULL; /* + newline + NUL (not sent) */
    if (text == NULL || json_dumpb(body, text, need, flags) != need) {
        free(text);
        json_decref(body);
        reply_oom(rs);
        return -1;
    }
    json_decref(body);
    text[need] = '\n';
    text[need + 1] = '\0';
    set_reply(rs, status, "application/json", text, need + 1);
    return 0;
}

int rcgc__reply_error(insp_resp *rs, unsigned status, const char *code, const char *fmt, ...)
{
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    json_t *err = json_object();
    int bad = json_object_set_new(err, "code", json_string(code));
    bad |= json_object_set_new(err, "message", rcgc__json_text(message));
    json_t *top = rcgc__json_top();
    bad |= json_object_set_new(top, "error", err);
    if (bad != 0) {
        json_decref(top);
        reply_oom(rs);
        return -1;
    }
    (void)rcgc__reply_json(rs, status, top);
    return -1;
}

json_t *rcgc__json_top(void)
{
    json_t *o = json_object();
    if (o != NULL && json_object_set_new(o, "protocol", json_integer(INSP_PROTOCOL)) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *rcgc__json_u64(uint64_t v)
{
    char s[24];
    int n = snprintf(s, sizeof s, "%" PRIu64, v);
    return json_stringn_nocheck(s, (size_t)n);
}

json_t *rcgc__json_i64(int64_t v)
{
    char s[24];
    int n = snprintf(s, sizeof s, "%" PRId64, v);
    return json_stringn_nocheck(s, (size_t)n);
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0 when s does not
 * start one (overlong forms, surrogates and values above U+10FFFF are invalid). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned min;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2, min = 0x80, cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3, min = 0x800, cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4, min = 0x10000, cp = c & 0x07;
    } else {
        return 0;
    }
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

void rcgc__buf_add(insp_buf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->cap - b->len < n + 1) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap - b->len < n + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (d == NULL) {
            b->failed = true;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void rcgc__buf_puts(insp_buf *b, const char *s)
{
    rcgc__buf_add(b, s, strlen(s));
}

void rcgc__buf_printf(insp_buf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    if ((size_t)n < sizeof small) {
        rcgc__buf_add(b, small, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (big == NULL) {
        b->failed = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    rcgc__buf_add(b, big, (size_t)n);
    free(big);
}

void rcgc__buf_utf8(insp_buf *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    size_t i = 0, run = 0; /* valid bytes not yet appended start at i - run */
    while (i < n) {
        size_t k = utf8_seq(p + i, n - i);
        if (k == 0) {
            rcgc__buf_add(b, s + i - run, run);
            rcgc__buf_add(b, "\xEF\xBF\xBD", 3); /* U+FFFD */
            run = 0;
            i++;
        } else {
            run += k;
            i += k;
        }
    }
    rcgc__buf_add(b, s + i - run, run);
}

void rcgc__buf_pct(insp_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~') {
            rcgc__buf_add(b, (const char *)p, 1);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            rcgc__buf_add(b, e, 3);
        }
    }
}

json_t *rcgc__json_text(const char *s)
{
    if (s == NULL)
        return json_null();
    json_t *j = json_string(s);
    if (j != NULL)
        return j;
    /* Not UTF-8 (or out of memory): replace what is invalid. */
    insp_buf b = {0};
    rcgc__buf_utf8(&b, s);
    j = b.failed ? NULL : json_stringn(b.data ? b.data : "", b.len);
    free(b.data);
    return j;
}

json_t *rcgc__json_age_ms(uint64_t time_ns)
{
    uint64_t now = rcgc__insp_now_ns();
    uint64_t age = now > time_ns ? (now - time_ns) / 1000000u : 0;
    return json_integer((json_int_t)age);
}

json_t *rcgc__json_snapshot(uint64_t serial, uint64_t time_ns)
{
    json_t *o = json_object();
    int bad = json_object_set_new(o, "serial", rcgc__json_u64(serial));
    bad |= json_object_set_new(o, "age_ms",
                               serial == 0 ? json_null() : rcgc__json_age_ms(time_ns));
    if (bad != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}
