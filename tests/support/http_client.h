/* http_client.h: a small HTTP/1.1 client over a raw TCP socket, for the tests that
 * speak to a real inspection server on 127.0.0.1. It sends exactly the bytes a test
 * asks for (malformed requests included) and reads one response: Content-Length,
 * chunked, or until the server closes. Every wait has a deadline. */
#ifndef RCGC_TEST_HTTP_CLIENT_H
#define RCGC_TEST_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

typedef struct http_response {
    int status; /* 0: no response (closed, timed out or unparsable) */
    char *head; /* status line and headers, NUL-terminated; malloc'd */
    char *body; /* NUL-terminated (binary-safe with body_len); malloc'd */
    size_t body_len;
    bool closed; /* the server closed the connection after the response */
} http_response;

/* Returns: a socket connected to 127.0.0.1:port, or -1. */
int http_connect(int port);

/* Sends all n bytes. Returns: 0, or -1 (the peer closed, or an error). */
int http_send(int fd, const void *data, size_t n);

/* Reads one response from fd within timeout_ms; no_body for answers to HEAD.
 * Returns: 0 (r filled; free with http_response_free), or -1 (r->status is 0). */
int http_read_response(int fd, http_response *r, int timeout_ms, bool no_body);

/* One request on a new connection to 127.0.0.1:port: "<method> <target> HTTP/1.1",
 * Host: 127.0.0.1:<port>, Connection: close, the extra header lines (each ending in
 * \r\n; NULL for none), Content-Length when body is not NULL, then the body.
 * Returns: the status (0 when no response came within 10 s); r holds the response. */
int http_request(int port, const char *method, const char *target, const char *headers,
                 const char *body, http_response *r);

/* Returns: the value of header name (case-insensitive) copied to buf (cap bytes,
 * trimmed), or NULL when the response lacks it. */
const char *http_header(const http_response *r, const char *name, char *buf, size_t cap);

void http_response_free(http_response *r);

/* http_request on a client thread while the calling thread, the owner of heaps[0..n)
 * (NULL entries are skipped), serves their safepoints (rcgc_safepoint every millisecond)
 * until the answer is in: for requests that need a heap call. Returns: as http_request
 * (-1 when the thread cannot start). */
struct rcgc_heap;
int http_request_serving(int port, const char *method, const char *target, const char *headers,
                         const char *body, struct rcgc_heap *const *heaps, size_t n,
                         http_response *r);

/* Waits until the peer closes fd (EOF or reset) for at most timeout_ms, discarding
 * whatever arrives. Returns: true when it closed. */
bool http_wait_closed(int fd, int timeout_ms);

#endif /* RCGC_TEST_HTTP_CLIENT_H */
