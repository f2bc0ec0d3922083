/* Install smoke test: a program that only sees the installed <rcgc/rcgc.h> and librcgc.
 * It checks the header against the library, then lets the collector free a two-object
 * reference cycle. Exit status 0 on success. */
#include <rcgc/rcgc.h>

#include <stdio.h>
#include <string.h>

typedef struct node {
    struct node *next; /* strong reference */
} node;

static int node_traverse(void *self, rcgc_visit_fn visit, void *arg)
{
    node *n = self;
    return n->next ? visit(n->next, arg) : 0;
}

static void node_clear(void *self)
{
    node *n = self;
    node *next = n->next;
    n->next = NULL;
    rcgc_xdecref(next);
}

static const rcgc_type node_type = {
    .name = "node",
    .size = sizeof(node),
    .traverse = node_traverse,
    .clear = node_clear,
    .dealloc = node_clear,
};

static int fail(const char *what)
{
    fprintf(stderr, "install smoke: %s\n", what);
    return 1;
}

int main(void)
{
    if (strcmp(rcgc_version(), RCGC_VERSION_STRING) != 0)
        return fail("rcgc_version() differs from RCGC_VERSION_STRING");
    if (rcgc_version_hex() != RCGC_VERSION_HEX)
        return fail("rcgc_version_hex() differs from RCGC_VERSION_HEX");

    rcgc_heap_options opts = {.name = "install-smoke", .ignore_environment = true};
    rcgc_heap *h = rcgc_heap_new_with(&opts);
    if (!h)
        return fail("rcgc_heap_new_with returned NULL");

    node *a = rcgc_new(h, &node_type);
    node *b = rcgc_new(h, &node_type);
    if (!a || !b)
        return fail("rcgc_new returned NULL");
    a->next = b; /* steals the reference from rcgc_new */
    rcgc_incref(a);
    b->next = a;
    rcgc_decref(a); /* a <-> b is now unreachable */

    ssize_t found = rcgc_collect(h, 2);
    rcgc_heap_free(h);
    if (found != 2) {
        fprintf(stderr, "install smoke: rcgc_collect found %zd objects, expected 2\n", found);
        return 1;
    }
    printf("install smoke: rcgc %s, collected a 2-object cycle\n", rcgc_version());
    return 0;
}
