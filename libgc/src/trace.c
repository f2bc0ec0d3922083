/* trace.c: allocation tracing (tracemalloc's model). Placeholder until the module lands:
 * tracing is never on, so none of these is reached. */
#include "internal.h"

void rcgc__trace_alloc(rcgc_heap *h, void *obj, size_t bytes, const char *file, int line)
{
    (void)h, (void)obj, (void)bytes, (void)file, (void)line;
}

void rcgc__trace_free(rcgc_heap *h, void *obj, size_t bytes)
{
    (void)h, (void)bytes;
    rcgc__clear_flag(obj, RCGC__F_TRACED);
}

void rcgc__trace_environment(rcgc_heap *h)
{
    (void)h;
}

void rcgc__trace_heap_free(rcgc_heap *h)
{
    (void)h;
}
