/* bench_node.h: the two-slot container every rcgc benchmark uses: traverse visits a and
 * b, clear drops them, and dealloc is clear again (it drops whatever clear has not).
 * Each program defines its own rcgc_type from these (its name tells the census apart). */
#ifndef RCGC_BENCH_NODE_H
#define RCGC_BENCH_NODE_H

#include <rcgc/rcgc.h>

typedef struct node {
    void *a, *b;
} node;

static int node_traverse(void *self, rcgc_visit_fn visit, void *arg)
{
    node *n = self;
    int r;
    if (n->a && (r = visit(n->a, arg)) != 0)
        return r;
    if (n->b && (r = visit(n->b, arg)) != 0)
        return r;
    return 0;
}

static void node_clear(void *self)
{
    node *n = self;
    void *t = n->a;
    n->a = NULL;
    rcgc_xdecref(t);
    t = n->b;
    n->b = NULL;
    rcgc_xdecref(t);
}

#endif /* RCGC_BENCH_NODE_H */
