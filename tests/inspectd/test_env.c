/* test_env.c: attaching without code changes. CTest runs this program twice:
 * inspectd.env with RCGC_INSPECT=127.0.0.1:0 (librcgc-inspect's constructor must have
 * started the server before main, and its destructor stops it at exit), and
 * inspectd.env_bad with a malformed RCGC_INSPECT (the host must carry on without the
 * server). RCGC_TEST_EXPECT says which ("running" or "stopped"). */
#define _POSIX_C_SOURCE 200809L

#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <rcgc/inspect.h>
#include <rcgc/rcgc.h>

#include "http_client.h"

static const rcgc_type Blob = {.name = "Blob", .size = 32};

/* The request on a client thread while this thread, the heap's owner, serves. */
static int req(rcgc_heap *h, const char *method, const char *target)
{
    http_response r;
    int status =
        http_request_serving(rcgc_inspect_port(), method, target, NULL, NULL, &h, 1, &r);
    assert_true(status >= 0); /* the client thread started */
    http_response_free(&r);
    return status;
}

static bool expect_running(void)
{
    const char *e = getenv("RCGC_TEST_EXPECT");
    return e != NULL && strcmp(e, "running") == 0;
}

static void test_env_autostart(void **state)
{
    (void)state;
    rcgc_heap *h = rcgc_heap_new("env");
    assert_non_null(h);
    void *b = rcgc_new(h, &Blob);
    assert_non_null(b);
    if (expect_running()) {
        assert_true(rcgc_inspect_port() > 0);
        /* Already running: NULL changes nothing, options are refused. */
        assert_int_equal(rcgc_inspect_start(NULL), 0);
        rcgc_inspect_options o = {.address = "127.0.0.1:0"};
        assert_int_equal(rcgc_inspect_start(&o), RCGC_EBUSY);
        assert_int_equal(req(h, "GET", "/v1/heaps/env"), 200);
        /* RCGC_INSPECT_CONTROL=1 came from the environment too. */
        assert_int_equal(req(h, "POST", "/v1/heaps/env/collect"), 200);
    } else {
        assert_int_equal(rcgc_inspect_port(), 0);
        /* The same environment still fails; explicit options work. */
        assert_int_equal(rcgc_inspect_start(NULL), RCGC_EINVAL);
        rcgc_inspect_options o = {.address = "127.0.0.1:0"};
        assert_int_equal(rcgc_inspect_start(&o), 0);
        assert_int_equal(req(h, "GET", "/v1/heaps/env"), 200);
        assert_int_equal(req(h, "POST", "/v1/heaps/env/collect"), 403);
        rcgc_inspect_stop();
    }
    rcgc_decref(b);
    rcgc_heap_free(h);
    /* The server (if any) is left running: the library's destructor stops it at exit. */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_env_autostart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
