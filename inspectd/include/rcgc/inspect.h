/* rcgc/inspect.h: the inspection server embedded in the host (librcgc-inspect).
 *
 * The server answers HTTP on a loopback address so that a person can look inside the
 * running program with curl, Prometheus and a browser: protocol v1 is described in
 * protocol/ (OpenAPI 3.1). It sees every heap of the process (the registry lives in
 * librcgc), whenever the heap was created.
 *
 * Threading model. The server runs on its own thread (libmicrohttpd's internal polling
 * thread). It never walks a live heap: counts, statistics and the census come from
 * snapshots the heap's owner publishes; walks (objects, referrers, paths, garbage) run on
 * the owner thread at its next safepoint (allocation, the end of a collection,
 * rcgc_safepoint), or on the server thread while the owner has released the heap
 * (rcgc_heap_release). A walk that finds no safepoint in time is answered 503.
 * rcgc_inspect_start and rcgc_inspect_stop may be called from any thread, not
 * concurrently with each other.
 *
 * Without code changes: LD_PRELOAD=librcgc-inspect.so RCGC_INSPECT=127.0.0.1:7070 ./prog
 * starts the server from a library constructor.
 *
 * The dashboard (GET /, GET /assets/<name>) is compiled into the library. For working on
 * it, RCGC_INSPECT_WEB_DIR=<dir> (read by rcgc_inspect_start, whatever the options) serves
 * those files from dir at every request instead (uplot.js and uplot.css from
 * dir/node_modules/uplot/dist); a value that is not a directory makes the start fail
 * with RCGC_EINVAL. */
#ifndef RCGC_INSPECT_H
#define RCGC_INSPECT_H

#include <rcgc/rcgc.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rcgc_inspect_options {
    /* "host:port" to listen on; host is a numeric IPv4 address, port 0 picks a free
     * one (see rcgc_inspect_port). NULL: $RCGC_INSPECT, else "127.0.0.1:7070". An
     * address other than loopback is used only when allow_remote is set. */
    const char *address;
    bool allow_remote;
    /* A bearer token every request must carry (Authorization: Bearer <token>).
     * NULL: $RCGC_INSPECT_TOKEN, else no token. */
    const char *token;
    /* Control requests (collect, thresholds, debug flags, baselines): 1 allowed, 0
     * refused with 403, -1 (the default of a zeroed struct is 0): $RCGC_INSPECT_CONTROL. */
    int allow_control;
    unsigned max_connections; /* 0: 64 */
    unsigned idle_timeout_s;  /* 0: 60; a connection idle that long is closed */
    unsigned walk_timeout_ms; /* 0: 1000; how long a walk waits for a safepoint */
} rcgc_inspect_options;

/* Starts the server. NULL: every setting from the environment (RCGC_INSPECT,
 * RCGC_INSPECT_TOKEN, RCGC_INSPECT_CONTROL) or its default.
 * Returns: 0 (also for NULL while the server already runs: nothing changes).
 * Errors: RCGC_EBUSY when the server already runs and opts is not NULL;
 * RCGC_EINVAL for a malformed address or a non-loopback one without allow_remote;
 * RCGC_ENOMEM; a negative errno value (e.g. -EADDRINUSE, -EACCES) when the socket
 * cannot be bound — never one of RCGC_E* (-1 .. -6): a failure without a usable errno
 * is -EPROTO. rcgc_strerror does not know errno values; strerror(-r) does. On error
 * nothing runs. Thread safety: any thread, not concurrently with
 * rcgc_inspect_stop. */
RCGC_API int rcgc_inspect_start(const rcgc_inspect_options *opts);

/* Stops the server: closes every connection (event streams included) and joins its
 * thread. No-op when it does not run. The host keeps running; heaps are untouched.
 * Thread safety: any thread but the server's own, not concurrently with start. */
RCGC_API void rcgc_inspect_stop(void);

/* Returns: the TCP port the server listens on, or 0 when it does not run.
 * Thread safety: any thread. */
RCGC_API int rcgc_inspect_port(void);

#ifdef __cplusplus
}
#endif

#endif /* RCGC_INSPECT_H */
