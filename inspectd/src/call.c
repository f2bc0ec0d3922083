/* call.c: running a function against a heap on its owner thread (rcgc__heap_call and
 * rcgc__heap_call_owner) with the configured deadline, and the HTTP answer for each
 * way that can fail. */
#include "internal.h"

typedef int (*call_fn)(const char *name, void (*fn)(rcgc_heap *h, void *arg), void *arg,
                       uint64_t timeout_ns);

static int call(call_fn how, insp_resp *rs, const char *heap, void (*fn)(rcgc_heap *, void *),
                void *arg)
{
    unsigned ms = rcgc__insp_config()->walk_timeout_ms;
    int r = how(heap, fn, arg, (uint64_t)ms * 1000000u);
    switch (r) {
    case 0:
        return 0;
    case RCGC_ENOENT:
        return rcgc__reply_error(rs, 404, "heap_not_found", "no heap is called '%s'", heap);
    case RCGC_ETIMEDOUT:
        rs->retry_after_s = 1;
        return rcgc__reply_error(rs, 503, "no_safepoint",
                                 "the owner of heap '%s' reached no safepoint within %u ms "
                                 "(it allocates, collects or calls rcgc_safepoint; or it "
                                 "has released the heap, which serves reads only)",
                                 heap, ms);
    default:
        return rcgc__reply_error(rs, 500, "internal_error", "heap call failed: %s",
                                 rcgc_strerror(r));
    }
}

int rcgc__inspect_walk(insp_resp *rs, const char *heap, void (*fn)(rcgc_heap *h, void *arg),
                       void *arg)
{
    return call(rcgc__heap_call, rs, heap, fn, arg);
}

int rcgc__inspect_owner_call(insp_resp *rs, const char *heap,
                             void (*fn)(rcgc_heap *h, void *arg), void *arg)
{
    return call(rcgc__heap_call_owner, rs, heap, fn, arg);
}

static int exists(const rcgc__snapshot *s, void *arg)
{
    (void)s, (void)arg;
    return 0;
}

int rcgc__inspect_heap_known(insp_resp *rs, const char *heap)
{
    if (rcgc__snapshot_read(heap, exists, NULL) == RCGC_ENOENT)
        return rcgc__reply_error(rs, 404, "heap_not_found", "no heap is called '%s'", heap);
    return 0;
}
