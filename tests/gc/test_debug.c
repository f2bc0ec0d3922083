/* test_debug.c: what the library says: the default stderr sink's CPython lines
 * (catalogue #50), the environment (RCGC_DEBUG, RCGC_THRESHOLD read at heap creation),
 * rcgc_heap_free's final collection and its "uncollectable objects at shutdown" report
 * (#28-#31), and the panic hook on a refcount too small for the references the heap
 * holds (#43). stderr is captured in-process by redirecting fd 2. */
#define _POSIX_C_SOURCE 200809L

#include "testlib.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

/* Splits s into lines (in place). Returns: the number of lines. */
static int split_lines(char *s, char **lines, int max)
{
    int n = 0;
    char *p = s;
    while (*p && n < max) {
        lines[n++] = p;
        char *nl = strchr(p, '\n');
        if (!nl)
            break;
        *nl = '\0';
        p = nl + 1;
    }
    return n;
}

/* "gc: done, U unreachable, N uncollectable, D.DDDDs elapsed" with exactly 4 decimals. */
static bool is_done_line(const char *line, size_t unreachable, size_t uncollectable)
{
    char prefix[128];
    snprintf(prefix, sizeof prefix, "gc: done, %zu unreachable, %zu uncollectable, ",
             unreachable, uncollectable);
    size_t n = strlen(prefix);
    if (strncmp(line, prefix, n) != 0)
        return false;
    const char *p = line + n;
    if (!isdigit((unsigned char)*p))
        return false;
    while (isdigit((unsigned char)*p))
        p++;
    if (*p++ != '.')
        return false;
    for (int i = 0; i < 4; i++)
        if (!isdigit((unsigned char)*p++))
            return false;
    return strcmp(p, "s elapsed") == 0;
}

static void obj_repr(char *buf, size_t n, const char *type, const void *obj)
{
    snprintf(buf, n, "<%s %p>", type, obj);
}

/* #50 test_gc_debug_stats, with the exact lines: three objects in generation 0, two of
 * them a dropped cycle. */
static void test_debug_stats_lines(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    tl_node *a = tl_new(h, &tl_Node, 1), *b = tl_new(h, &tl_Node, 2);
    tl_node *keep = tl_new(h, &tl_Node, 3);
    tl_set(a, 0, b);
    tl_set(b, 0, a);
    rcgc_decref(a);
    rcgc_decref(b);
    rcgc_set_debug(h, RCGC_DEBUG_STATS);
    tl_capture cap;
    tl_capture_start(&cap);
    ssize_t r = rcgc_collect(h, 2);
    char *out = tl_capture_stop(&cap);
    assert_int_equal(r, 2);
    char *lines[16];
    int n = split_lines(out, lines, 16);
    for (int i = 0; i < n; i++)
        print_message("stderr: %s\n", lines[i]);
    assert_int_equal(n, 4);
    assert_string_equal(lines[0], "gc: collecting generation 2...");
    assert_string_equal(lines[1], "gc: objects in each generation: 3 0 0");
    assert_string_equal(lines[2], "gc: objects in permanent generation: 0");
    assert_true(is_done_line(lines[3], 2, 0));
    free(out);

    /* generation 0 of a heap with objects in every generation and some frozen */
    tl_node *f = tl_new(h, &tl_Node, 4);
    rcgc_set_debug(h, 0);
    rcgc_freeze(h); /* keep, f */
    tl_node *g1 = tl_new(h, &tl_Node, 5);
    assert_int_equal(rcgc_collect(h, 1), 0); /* g1 -> gen 2 */
    tl_node *g2 = tl_new(h, &tl_Node, 6);
    assert_int_equal(rcgc_collect(h, 0), 0); /* g2 -> gen 1 */
    tl_node *g3 = tl_new(h, &tl_Node, 7);
    rcgc_set_debug(h, RCGC_DEBUG_STATS);
    tl_capture_start(&cap);
    r = rcgc_collect(h, 0);
    out = tl_capture_stop(&cap);
    assert_int_equal(r, 0);
    n = split_lines(out, lines, 16);
    assert_int_equal(n, 4);
    assert_string_equal(lines[0], "gc: collecting generation 0...");
    assert_string_equal(lines[1], "gc: objects in each generation: 1 1 1");
    assert_string_equal(lines[2], "gc: objects in permanent generation: 2");
    assert_true(is_done_line(lines[3], 0, 0));
    free(out);

    /* flags 0: nothing at all */
    rcgc_set_debug(h, 0);
    tl_capture_start(&cap);
    r = rcgc_collect(h, 2);
    out = tl_capture_stop(&cap);
    assert_int_equal(r, 0);
    assert_string_equal(out, "");
    free(out);
    rcgc_unfreeze(h);
    rcgc_decref(keep);
    rcgc_decref(f);
    rcgc_decref(g1);
    rcgc_decref(g2);
    rcgc_decref(g3);
    tl_heap_free(h);
}

/* DEBUG_COLLECTABLE / DEBUG_UNCOLLECTABLE lines, between the STATS lines. */
static void test_debug_collectable_lines(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    tl_node *a = tl_new(h, &tl_Node, 1), *b = tl_new(h, &tl_Node, 2);
    tl_set(a, 0, b);
    tl_set(b, 0, a);
    tl_node *leg = tl_new(h, &tl_LegacyNode, 3);
    tl_self_loop(leg, 0);
    rcgc_decref(a);
    rcgc_decref(b);
    rcgc_decref(leg);
    rcgc_set_debug(h, RCGC_DEBUG_STATS | RCGC_DEBUG_COLLECTABLE | RCGC_DEBUG_UNCOLLECTABLE);
    tl_capture cap;
    tl_capture_start(&cap);
    ssize_t r = rcgc_collect(h, 2);
    char *out = tl_capture_stop(&cap);
    assert_int_equal(r, 3);
    char *lines[16];
    int n = split_lines(out, lines, 16);
    for (int i = 0; i < n; i++)
        print_message("stderr: %s\n", lines[i]);
    assert_int_equal(n, 7);
    assert_string_equal(lines[0], "gc: collecting generation 2...");
    assert_string_equal(lines[1], "gc: objects in each generation: 3 0 0");
    assert_string_equal(lines[2], "gc: objects in permanent generation: 0");
    char ra[64], rb[64], rl[64], want_a[96], want_b[96], want_l[96];
    obj_repr(ra, sizeof ra, "Node", a);
    obj_repr(rb, sizeof rb, "Node", b);
    obj_repr(rl, sizeof rl, "LegacyNode", leg);
    snprintf(want_a, sizeof want_a, "gc: collectable %s", ra);
    snprintf(want_b, sizeof want_b, "gc: collectable %s", rb);
    snprintf(want_l, sizeof want_l, "gc: uncollectable %s", rl);
    assert_true((strcmp(lines[3], want_a) == 0 && strcmp(lines[4], want_b) == 0) ||
                (strcmp(lines[3], want_b) == 0 && strcmp(lines[4], want_a) == 0));
    assert_string_equal(lines[5], want_l);
    assert_true(is_done_line(lines[6], 3, 1));
    free(out);

    /* COLLECTABLE alone: only those lines. */
    rcgc_set_debug(h, RCGC_DEBUG_COLLECTABLE);
    tl_node *c = tl_new(h, &tl_VarNode, 4);
    tl_self_loop(c, 0);
    rcgc_decref(c);
    char rc[64], want_c[96];
    obj_repr(rc, sizeof rc, "VarNode", c);
    snprintf(want_c, sizeof want_c, "gc: collectable %s\n", rc);
    tl_capture_start(&cap);
    r = rcgc_collect(h, 0);
    out = tl_capture_stop(&cap);
    assert_int_equal(r, 1);
    assert_string_equal(out, want_c);
    free(out);
    rcgc_set_debug(h, 0);
    tl_unset(leg, 0);
    rcgc_garbage_clear(h);
    tl_heap_free(h);
}

/* ---- environment ---- */

static rcgc_heap *heap_from_env(const char *debug, const char *threshold)
{
    if (debug)
        setenv("RCGC_DEBUG", debug, 1);
    else
        unsetenv("RCGC_DEBUG");
    if (threshold)
        setenv("RCGC_THRESHOLD", threshold, 1);
    else
        unsetenv("RCGC_THRESHOLD");
    rcgc_heap_options o = {.name = "env", .panic = tl_panic_record};
    rcgc_heap *h = rcgc_heap_new_with(&o);
    unsetenv("RCGC_DEBUG");
    unsetenv("RCGC_THRESHOLD");
    assert_non_null(h);
    return h;
}

static void test_debug_env_debug_flags(void **state)
{
    (void)state;
    tl_panic_reset();
    const struct {
        const char *env;
        unsigned flags;
    } cases[] = {
        {"stats", RCGC_DEBUG_STATS},
        {"collectable", RCGC_DEBUG_COLLECTABLE},
        {"uncollectable", RCGC_DEBUG_UNCOLLECTABLE},
        {"saveall", RCGC_DEBUG_SAVEALL},
        {"leak", RCGC_DEBUG_LEAK},
        {"stats,saveall", RCGC_DEBUG_STATS | RCGC_DEBUG_SAVEALL},
        {"stats,collectable,uncollectable,saveall,leak", 39},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rcgc_heap *h = heap_from_env(cases[i].env, NULL);
        if (rcgc_get_debug(h) != cases[i].flags)
            print_error("RCGC_DEBUG=%s\n", cases[i].env);
        assert_int_equal(rcgc_get_debug(h), cases[i].flags);
        size_t t[3];
        rcgc_get_threshold(h, t);
        assert_int_equal(t[0], 700);
        tl_capture cap; /* the final collection prints what the flags ask for */
        tl_capture_start(&cap);
        rcgc_heap_free(h);
        free(tl_capture_stop(&cap));
    }
    rcgc_heap *h = heap_from_env(NULL, NULL);
    assert_int_equal(rcgc_get_debug(h), 0);
    rcgc_heap_free(h);

    /* rcgc_heap_new reads the environment too, and the flags act. */
    setenv("RCGC_DEBUG", "stats", 1);
    h = rcgc_heap_new("plain");
    unsetenv("RCGC_DEBUG");
    assert_non_null(h);
    assert_int_equal(rcgc_get_debug(h), RCGC_DEBUG_STATS);
    tl_capture cap;
    tl_capture_start(&cap);
    assert_int_equal(rcgc_collect(h, 2), 0);
    char *out = tl_capture_stop(&cap);
    assert_non_null(strstr(out, "gc: collecting generation 2...\n"));
    free(out);
    tl_capture_start(&cap);
    rcgc_heap_free(h);
    free(tl_capture_stop(&cap));

    /* ignore_environment */
    setenv("RCGC_DEBUG", "leak", 1);
    setenv("RCGC_THRESHOLD", "5,6,7", 1);
    rcgc_heap_options o = {.ignore_environment = true, .panic = tl_panic_record};
    h = rcgc_heap_new_with(&o);
    unsetenv("RCGC_DEBUG");
    unsetenv("RCGC_THRESHOLD");
    assert_non_null(h);
    assert_int_equal(rcgc_get_debug(h), 0);
    size_t t[3];
    rcgc_get_threshold(h, t);
    assert_int_equal(t[0], 700);
    assert_int_equal(t[1], 10);
    assert_int_equal(t[2], 10);
    rcgc_heap_free(h);
    assert_int_equal(tl_panic_count(), 0);
}

static void test_debug_env_threshold(void **state)
{
    (void)state;
    tl_panic_reset();
    rcgc_heap *h = heap_from_env(NULL, "100,5,7");
    size_t t[3] = {0, 0, 0};
    rcgc_get_threshold(h, t);
    assert_int_equal(t[0], 100);
    assert_int_equal(t[1], 5);
    assert_int_equal(t[2], 7);
    assert_int_equal(rcgc_get_debug(h), 0);
    rcgc_heap_free(h);

    h = heap_from_env("saveall", "700,10,10");
    rcgc_get_threshold(h, t);
    assert_int_equal(t[0], 700);
    assert_int_equal(t[1], 10);
    assert_int_equal(t[2], 10);
    assert_int_equal(rcgc_get_debug(h), RCGC_DEBUG_SAVEALL);
    rcgc_heap_free(h);

    /* set_threshold in the options wins over RCGC_THRESHOLD. */
    setenv("RCGC_THRESHOLD", "100,5,7", 1);
    rcgc_heap_options o = {
        .set_threshold = true, .threshold = {1, 2, 3}, .panic = tl_panic_record};
    h = rcgc_heap_new_with(&o);
    unsetenv("RCGC_THRESHOLD");
    assert_non_null(h);
    rcgc_get_threshold(h, t);
    assert_int_equal(t[0], 1);
    assert_int_equal(t[1], 2);
    assert_int_equal(t[2], 3);
    rcgc_heap_free(h);
    assert_int_equal(tl_panic_count(), 0);
}

/* ---- rcgc_heap_free ---- */

/* #28 test_garbage_at_shutdown: a legacy-finalizer cycle alive at heap_free. debug 0:
 * the count and no listing; DEBUG_UNCOLLECTABLE: the listing; SAVEALL: no report. */
static char *free_with_legacy_cycle(unsigned flags, const void **first, const void **second)
{
    rcgc_heap *h = tl_heap_new();
    tl_node *x = tl_new(h, &tl_LegacyNode, 1);
    tl_self_loop(x, 0);                               /* x.x = x */
    tl_set_steal(x, 1, tl_new(h, &tl_LegacyNode, 2)); /* x.y = X('second') */
    *first = x;
    *second = x->slot[1];
    rcgc_decref(x);
    rcgc_set_debug(h, flags);
    tl_capture cap;
    tl_capture_start(&cap);
    tl_heap_free(h);
    char *out = tl_capture_stop(&cap);
    print_message("heap_free(debug %u) said:\n%s", flags, out);
    /* The collector never runs legacy finalizers of garbage. */
    assert_int_equal(tl_log_count(TL_EV_LEGACY_DEL, -1), 0);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, -1), 0);
    return out;
}

static void test_debug_garbage_at_shutdown(void **state)
{
    (void)state;
    const void *first, *second;
    char r1[64], r2[64];

    char *out = free_with_legacy_cycle(0, &first, &second);
    obj_repr(r1, sizeof r1, "LegacyNode", first);
    obj_repr(r2, sizeof r2, "LegacyNode", second);
    assert_non_null(strstr(out, "rcgc: 2 uncollectable objects at shutdown"));
    assert_null(strstr(out, "<LegacyNode"));
    free(out);

    out = free_with_legacy_cycle(RCGC_DEBUG_UNCOLLECTABLE, &first, &second);
    obj_repr(r1, sizeof r1, "LegacyNode", first);
    obj_repr(r2, sizeof r2, "LegacyNode", second);
    const char *msg = strstr(out, "rcgc: 2 uncollectable objects at shutdown");
    assert_non_null(msg);
    assert_non_null(strstr(msg, r1)); /* listed after the message */
    assert_non_null(strstr(msg, r2));
    free(out);

    out = free_with_legacy_cycle(RCGC_DEBUG_SAVEALL, &first, &second);
    assert_null(strstr(out, "uncollectable objects at shutdown"));
    free(out);
}

/* #29 test_gc_main_module_at_shutdown: l = [C()]; l.append(l): heap_free's final
 * collection finds the cycle and runs C's finalizer. #30 the same one level down (the
 * cycle held by a "module" that is itself a dropped cycle). Objects still referenced
 * from outside are released without finalizer or dealloc. */
static void test_debug_heap_free_runs_finalizers(void **state)
{
    (void)state;
    for (int nested = 0; nested < 2; nested++) {
        rcgc_heap *h = tl_heap_new();
        tl_node *l = tl_new(h, &tl_Node, 1);
        tl_set_steal(l, 0, tl_new(h, &tl_FinNode, 2));
        tl_self_loop(l, 1);
        if (nested) {
            tl_node *module = tl_new(h, &tl_Node, 3);
            tl_self_loop(module, 0);
            tl_set(module, 1, l);
            rcgc_decref(module);
        }
        rcgc_decref(l);
        tl_node *leaked = tl_new(h, &tl_FinNode, 4); /* the host still holds it */
        (void)leaked;
        tl_capture cap;
        tl_capture_start(&cap);
        tl_heap_free(h);
        free(tl_capture_stop(&cap));
        assert_int_equal(tl_log_count(TL_EV_FINALIZE, 2), 1);
        assert_int_equal(tl_log_count(TL_EV_DEALLOC, 1), 1);
        assert_int_equal(tl_log_count(TL_EV_DEALLOC, 2), 1);
        if (nested)
            assert_int_equal(tl_log_count(TL_EV_DEALLOC, 3), 1);
        assert_int_equal(tl_log_count(TL_EV_FINALIZE, 4), 0);
        assert_int_equal(tl_log_count(TL_EV_DEALLOC, 4), 0);
    }
}

/* #31 test_global_del_SystemExit: the same when the program ends with exit() and frees
 * its heap from an atexit handler (a child process). */
static rcgc_heap *g_exit_heap;

static void free_at_exit(void)
{
    rcgc_heap_free(g_exit_heap);
}

static void say_del(tl_node *self)
{
    (void)self;
    static const char msg[] = "__del__ called\n";
    ssize_t w = write(1, msg, sizeof msg - 1);
    (void)w;
}

static void test_debug_heap_free_at_exit(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], 1);
        close(fds[1]);
        rcgc_heap_options o = {.name = "exit", .ignore_environment = true};
        g_exit_heap = rcgc_heap_new_with(&o);
        if (!g_exit_heap)
            _exit(3);
        rcgc_disable(g_exit_heap);
        tl_node *l = rcgc_new(g_exit_heap, &tl_Node);
        tl_node *c = rcgc_new(g_exit_heap, &tl_FinNode);
        if (!l || !c)
            _exit(4);
        c->on_finalize = say_del;
        l->slot[0] = c;
        tl_self_loop(l, 1);
        rcgc_decref(l);
        atexit(free_at_exit);
        exit(0); /* raise SystemExit(0) */
    }
    close(fds[1]);
    char buf[256];
    size_t got = 0;
    ssize_t k;
    while (got < sizeof buf - 1 && (k = read(fds[0], buf + got, sizeof buf - 1 - got)) > 0)
        got += (size_t)k;
    buf[got] = '\0';
    close(fds[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_string_equal(buf, "__del__ called\n");
}

/* ---- the panic hook ---- */

/* Returns: the number right after "refc..." (refcount, refcnt) in msg, or -1. */
static long refcount_in(const char *msg)
{
    for (const char *p = msg; *p; p++) {
        if (strncasecmp(p, "refc", 4) != 0)
            continue;
        const char *q = p + 4;
        while (*q && !isdigit((unsigned char)*q) && *q != '\n')
            q++;
        if (isdigit((unsigned char)*q))
            return strtol(q, NULL, 10);
    }
    return -1;
}

/* #43 test_refcount_errors: an extra decref of an object that two other objects
 * reference leaves its count (1) below the references the heap holds (2). The heap check
 * and (with RCGC_DEBUG_INVARIANTS) the collection report it through the panic hook with
 * the type name, the address and the refcount, and nothing is freed. */
static rcgc_heap *g_free_target;

static void free_heap_from_finalizer(tl_node *self)
{
    (void)self;
    rcgc_heap_free(g_free_target); /* misuse: must be refused, not obeyed */
}

/* rcgc_heap_free from inside a finalizer run by a collection is reported to the panic
 * hook and ignored: the collection finishes and the heap stays usable. */
static void test_debug_heap_free_inside_callback_refused(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    g_free_target = h;
    tl_node *n = tl_new(h, &tl_FinNode, 1);
    n->on_finalize = free_heap_from_finalizer;
    tl_self_loop(n, 0);
    rcgc_decref(n);
    tl_panic_expect(true);
    tl_panic_reset();
    assert_int_equal(rcgc_collect(h, 2), 1);
    assert_int_equal(tl_panic_count(), 1);
    assert_non_null(strstr(tl_panic_message(0), "rcgc_heap_free"));
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 1), 1);
    tl_check(h);
    tl_node *m = tl_new(h, &tl_Node, 2); /* still usable */
    rcgc_decref(m);
    tl_heap_free(h);
}

static void test_debug_panic_refcount_too_small(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    tl_node *p1 = tl_new(h, &tl_Node, 1), *p2 = tl_new(h, &tl_Node, 2);
    tl_var *victim = tl_var_new(h, 3, 1);
    tl_set(p1, 0, victim);
    tl_set(p2, 0, victim);
    rcgc_decref(victim); /* our reference goes: the two parents hold it */
    assert_int_equal(rcgc_refcount(victim), 2);
    tl_check(h);
    rcgc_decref(victim); /* the bug */
    assert_int_equal(rcgc_refcount(victim), 1);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, -1), 0);
    tl_panic_expect(true);
    char addr[32];
    snprintf(addr, sizeof addr, "%p", (void *)victim);

    tl_panic_reset();
    size_t violations = rcgc__heap_check(h);
    assert_true(violations >= 1);
    assert_true(tl_panic_count() >= 1);
    for (size_t i = 0; i < tl_panic_count() && i < 16; i++)
        print_message("heap_check panic: %s\n", tl_panic_message(i));

    tl_panic_reset();
    tl_capture cap;
    tl_capture_start(&cap);
    ssize_t r = rcgc_collect(h, 2);
    free(tl_capture_stop(&cap));
    assert_int_equal(r, 0);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, -1), 0);
    assert_int_equal(tl_log_count(TL_EV_CLEAR, -1), 0);
#ifdef RCGC_DEBUG_INVARIANTS
    assert_true(tl_panic_count() >= 1);
    bool found = false;
    for (size_t i = 0; i < tl_panic_count() && i < 16; i++) {
        const char *m = tl_panic_message(i);
        print_message("collect panic: %s\n", m);
        if (strstr(m, "VarNode") && strstr(m, addr) && refcount_in(m) == 1)
            found = true;
    }
    assert_true(found);
#else
    (void)refcount_in;
#endif
    assert_ptr_equal(p1->slot[0], victim);
    assert_ptr_equal(p2->slot[0], victim);

    /* Repair; the heap is consistent again and frees normally. */
    rcgc_incref(victim);
    tl_panic_reset();
    tl_panic_expect(false);
    tl_check(h);
    rcgc_decref(p1);
    rcgc_decref(p2);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 3), 1);
    assert_int_equal(rcgc_collect(h, 2), 0);
    tl_heap_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        /* First: the child process would report earlier failed tests' leaks. */
        cmocka_unit_test(test_debug_heap_free_at_exit),
        cmocka_unit_test(test_debug_stats_lines),
        cmocka_unit_test(test_debug_collectable_lines),
        cmocka_unit_test(test_debug_env_debug_flags),
        cmocka_unit_test(test_debug_env_threshold),
        cmocka_unit_test(test_debug_garbage_at_shutdown),
        cmocka_unit_test(test_debug_heap_free_runs_finalizers),
        cmocka_unit_test(test_debug_panic_refcount_too_small),
        cmocka_unit_test(test_debug_heap_free_inside_callback_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
