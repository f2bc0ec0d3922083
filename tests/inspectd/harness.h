/* harness.h: what the HTTP tests of the inspection server (test_events, test_http,
 * test_metrics) share about their host: a node type with one strong reference, self-cycles
 * that only a collection frees, and the clock. Everything here runs on the heap's owner
 * thread (the test's main thread) unless it says otherwise. */
#ifndef RCGC_TEST_INSPECTD_HARNESS_H
#define RCGC_TEST_INSPECTD_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#include <rcgc/rcgc.h>

/* The payload of Node: next is a strong reference (NULL: none). */
typedef struct node {
    void *next;
} node;

/* Node's traverse (visits next) and clear (drops next); clear also serves as dealloc.
 * Tests build types of their own from them. */
int node_traverse(void *self, rcgc_visit_fn visit, void *arg);
void node_clear(void *self);

/* "Node": a node with traverse, clear and dealloc. */
extern const rcgc_type Node;

/* n self-cycles of type (a node type) in h that only a collection frees; their addresses
 * go to out (when not NULL). Fails the test when an allocation fails. */
void make_cycles(rcgc_heap *h, const rcgc_type *type, size_t n, uintptr_t *out);

/* Sleeps ms milliseconds. Thread safety: any thread. */
void sleep_ms(long ms);
/* Returns: the monotonic clock in milliseconds. Thread safety: any thread. */
long long now_ms(void);

#endif /* RCGC_TEST_INSPECTD_HARNESS_H */
