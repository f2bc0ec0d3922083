/* valgrind_probe.c: a program for gc.valgrind. `clean` allocates, frees and reuses pool
 * blocks correctly; `uaf` reads a pool block after its object died, `fresh` reads a
 * payload byte of a never-written block of a live object (defined: zeroed) and then a
 * never-carved block of a pool. Memcheck must stay silent on the first and report the
 * others: the pools' client requests make the blocks visible to it. */
#include <stdio.h>
#include <string.h>

#include <rcgc/rcgc.h>

static const rcgc_type leaf = {.name = "leaf", .size = 48};

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "clean";
    rcgc_heap *h = rcgc_heap_new("probe");
    if (h == NULL)
        return 2;
    volatile unsigned char sink = 0;
    unsigned char *a = rcgc_new(h, &leaf);
    unsigned char *b = rcgc_new(h, &leaf);
    if (a == NULL || b == NULL)
        return 2;
    sink ^= a[10]; /* zeroed payload: defined */
    if (strcmp(mode, "uaf") == 0) {
        rcgc_decref(a);
        sink ^= a[10]; /* invalid read: the block is free */
        rcgc_decref(b);
    } else if (strcmp(mode, "beyond") == 0) {
        sink ^= b[64 + 16 + 10]; /* the next, never-carved block of the pool */
        rcgc_decref(a);
        rcgc_decref(b);
    } else {
        rcgc_decref(a);
        unsigned char *c = rcgc_new(h, &leaf); /* reuses a's block */
        sink ^= c[10];
        rcgc_decref(c);
        rcgc_decref(b);
    }
    rcgc_heap_free(h);
    return sink == 0xff ? 3 : 0;
}
