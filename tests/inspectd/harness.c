/* harness.c: the host's node type, its cycles and the clock, for the inspection server's
 * HTTP tests (see harness.h). */
#define _POSIX_C_SOURCE 200809L

#include "harness.h"

#include <time.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

int node_traverse(void *self, rcgc_visit_fn visit, void *arg)
{
    node *n = self;
    return n->next ? visit(n->next, arg) : 0;
}

void node_clear(void *self)
{
    node *n = self;
    void *next = n->next;
    n->next = NULL;
    rcgc_xdecref(next);
}

const rcgc_type Node = {.name = "Node",
                        .size = sizeof(node),
                        .traverse = node_traverse,
                        .clear = node_clear,
                        .dealloc = node_clear};

void make_cycles(rcgc_heap *h, const rcgc_type *type, size_t n, uintptr_t *out)
{
    for (size_t i = 0; i < n; i++) {
        node *x = rcgc_new(h, type);
        assert_non_null(x);
        rcgc_incref(x);
        x->next = x;
        if (out != NULL)
            out[i] = (uintptr_t)x;
        rcgc_decref(x);
    }
}

void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
