/* testlib.c: shared fixtures for the collector's unit tests (see testlib.h).
 *
 * Library callbacks only record into the log; tests assert afterwards, because a cmocka
 * failure inside a callback would longjmp out of the collector and leave it broken. */
#define _POSIX_C_SOURCE 200809L

#include "testlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- object types ---- */

static int node_traverse(void *self, rcgc_visit_fn visit, void *arg)
{
    tl_node *n = self;
    for (int i = 0; i < TL_SLOTS; i++) {
        if (n->slot[i]) {
            int r = visit(n->slot[i], arg);
            if (r)
                return r;
        }
    }
    return 0;
}

/* Py_CLEAR on every slot: the slot is emptied before the reference is dropped. */
static void node_drop_slots(tl_node *n)
{
    for (int i = 0; i < TL_SLOTS; i++) {
        void *old = n->slot[i];
        n->slot[i] = NULL;
        rcgc_xdecref(old);
    }
}

static void node_clear(void *self)
{
    tl_node *n = self;
    tl_log_add(TL_EV_CLEAR, n->id, n, false);
    node_drop_slots(n);
}

static void node_dealloc(void *self)
{
    tl_node *n = self;
    tl_log_add(TL_EV_DEALLOC, n->id, n, false);
    node_drop_slots(n);
}

static void node_finalize(void *self)
{
    tl_node *n = self;
    tl_log_add(TL_EV_FINALIZE, n->id, n, false);
    if (n->on_finalize)
        n->on_finalize(n);
    if (n->fin_mode & TL_RESURRECT)
        tl_survivor_add(n);
    if (n->fin_mode & TL_SUICIDE) {
        n->suicided = true;
        node_drop_slots(n);
    }
}

static void node_legacy_del(void *self)
{
    tl_node *n = self;
    tl_log_add(TL_EV_LEGACY_DEL, n->id, n, false);
    if (n->on_legacy_del)
        n->on_legacy_del(n);
    if (n->del_mode & TL_RESURRECT)
        tl_survivor_add(n);
    if (n->del_mode & TL_SUICIDE) {
        n->suicided = true;
        node_drop_slots(n);
    }
}

static int var_traverse(void *self, rcgc_visit_fn visit, void *arg)
{
    tl_var *v = self;
    int r = node_traverse(&v->base, visit, arg);
    if (r)
        return r;
    for (size_t i = 0; i < v->n; i++) {
        if (v->items[i]) {
            r = visit(v->items[i], arg);
            if (r)
                return r;
        }
    }
    return 0;
}

static void var_drop_items(tl_var *v)
{
    for (size_t i = 0; i < v->n; i++) {
        void *old = v->items[i];
        v->items[i] = NULL;
        rcgc_xdecref(old);
    }
}

static void var_clear(void *self)
{
    tl_var *v = self;
    node_clear(&v->base);
    var_drop_items(v);
}

static void var_dealloc(void *self)
{
    tl_var *v = self;
    node_dealloc(&v->base);
    var_drop_items(v);
}

const rcgc_type tl_Node = {
    .name = "Node",
    .size = sizeof(tl_node),
    .traverse = node_traverse,
    .clear = node_clear,
    .dealloc = node_dealloc,
};

const rcgc_type tl_FinNode = {
    .name = "FinNode",
    .size = sizeof(tl_node),
    .traverse = node_traverse,
    .clear = node_clear,
    .finalize = node_finalize,
    .dealloc = node_dealloc,
};

const rcgc_type tl_LegacyNode = {
    .name = "LegacyNode",
    .size = sizeof(tl_node),
    .traverse = node_traverse,
    .clear = node_clear,
    .legacy_del = node_legacy_del,
    .dealloc = node_dealloc,
};

const rcgc_type tl_LegacyFinNode = {
    .name = "LegacyFinNode",
    .size = sizeof(tl_node),
    .traverse = node_traverse,
    .clear = node_clear,
    .finalize = node_finalize,
    .legacy_del = node_legacy_del,
    .dealloc = node_dealloc,
};

const rcgc_type tl_ContainerNoGC = {
    .name = "ContainerNoGC",
    .size = sizeof(tl_node),
    .dealloc = node_dealloc,
};

const rcgc_type tl_Leaf = {
    .name = "Leaf",
    .size = sizeof(tl_node),
    .dealloc = node_dealloc,
};

const rcgc_type tl_LeafFin = {
    .name = "LeafFin",
    .size = sizeof(tl_node),
    .finalize = node_finalize,
    .dealloc = node_dealloc,
};

const rcgc_type tl_VarNode = {
    .name = "VarNode",
    .size = sizeof(tl_var),
    .traverse = var_traverse,
    .clear = var_clear,
    .dealloc = var_dealloc,
};

tl_node *tl_new(rcgc_heap *h, const rcgc_type *type, int id)
{
    tl_node *n = rcgc_new(h, type);
    assert_non_null(n);
    n->id = id;
    return n;
}

tl_var *tl_var_new(rcgc_heap *h, int id, size_t n)
{
    tl_var *v = rcgc_new_var(h, &tl_VarNode, sizeof(tl_var) + n * sizeof(void *));
    assert_non_null(v);
    v->base.id = id;
    v->n = n;
    return v;
}

void tl_set(void *n, int i, void *child)
{
    tl_node *nd = n;
    void *old = nd->slot[i];
    rcgc_xincref(child);
    nd->slot[i] = child;
    rcgc_xdecref(old);
}

void tl_set_steal(void *n, int i, void *child)
{
    tl_node *nd = n;
    void *old = nd->slot[i];
    nd->slot[i] = child;
    rcgc_xdecref(old);
}

void tl_unset(void *n, int i)
{
    tl_set_steal(n, i, NULL);
}

void tl_self_loop(void *n, int i)
{
    tl_set(n, i, n);
}

void tl_var_set(tl_var *v, size_t i, void *child)
{
    void *old = v->items[i];
    rcgc_xincref(child);
    v->items[i] = child;
    rcgc_xdecref(old);
}

/* ---- the call log ---- */

static tl_event *g_log;
static size_t g_log_len, g_log_cap;

void tl_log_reset(void)
{
    g_log_len = 0;
}

void tl_log_add(tl_event_kind kind, int id, const void *ptr, bool alive)
{
    if (g_log_len == g_log_cap) {
        size_t cap = g_log_cap ? g_log_cap * 2 : 1024;
        tl_event *p = realloc(g_log, cap * sizeof *p);
        if (!p)
            abort();
        g_log = p;
        g_log_cap = cap;
    }
    g_log[g_log_len++] = (tl_event){.kind = kind, .id = id, .ptr = ptr, .alive = alive};
}

size_t tl_log_len(void)
{
    return g_log_len;
}

const tl_event *tl_log_at(size_t i)
{
    assert_true(i < g_log_len);
    return &g_log[i];
}

size_t tl_log_count(tl_event_kind kind, int id)
{
    size_t n = 0;
    for (size_t i = 0; i < g_log_len; i++)
        if (g_log[i].kind == kind && (id == -1 || g_log[i].id == id))
            n++;
    return n;
}

void tl_wrcb_log(void *ref, void *arg)
{
    void *o = rcgc_weakref_get(ref);
    if (o)
        rcgc_decref(o);
    tl_log_add(TL_EV_WRCB, (int)(intptr_t)arg, ref, o != NULL);
}

/* ---- survivors ---- */

static void *g_surv[TL_SURVIVORS_MAX];
static size_t g_surv_len;

void tl_survivor_add(void *obj)
{
    if (g_surv_len == TL_SURVIVORS_MAX)
        abort();
    rcgc_incref(obj);
    g_surv[g_surv_len++] = obj;
}

size_t tl_survivors_count(void)
{
    return g_surv_len;
}

void *tl_survivor(size_t i)
{
    assert_true(i < g_surv_len);
    return g_surv[i];
}

void tl_survivors_clear(void)
{
    void *copy[TL_SURVIVORS_MAX];
    size_t n = g_surv_len;
    memcpy(copy, g_surv, n * sizeof copy[0]);
    g_surv_len = 0;
    for (size_t i = 0; i < n; i++)
        rcgc_decref(copy[i]);
}

/* ---- panics ---- */

#define TL_PANIC_KEEP 16
static char g_panic[TL_PANIC_KEEP][512];
static size_t g_panic_count;
static bool g_panic_expected;

void tl_panic_record(rcgc_heap *h, const char *message, void *arg)
{
    (void)h;
    (void)arg;
    if (g_panic_count < TL_PANIC_KEEP)
        snprintf(g_panic[g_panic_count], sizeof g_panic[0], "%s", message ? message : "(null)");
    g_panic_count++;
}

size_t tl_panic_count(void)
{
    return g_panic_count;
}

const char *tl_panic_message(size_t i)
{
    assert_true(i < g_panic_count && i < TL_PANIC_KEEP);
    return g_panic[i];
}

void tl_panic_reset(void)
{
    g_panic_count = 0;
}

void tl_panic_expect(bool expected)
{
    g_panic_expected = expected;
}

static void print_panics(size_t from)
{
    for (size_t i = from; i < g_panic_count && i < TL_PANIC_KEEP; i++)
        print_error("rcgc panic: %s\n", g_panic[i]);
}

/* ---- heaps ---- */

rcgc_heap *tl_heap_new_with(rcgc_heap_options *opts)
{
    tl_log_reset();
    g_surv_len = 0; /* a failed test may leave survivors of a leaked heap */
    tl_panic_reset();
    tl_panic_expect(false);
    if (!opts->panic) {
        opts->panic = tl_panic_record;
        opts->panic_arg = NULL;
    }
    rcgc_heap *h = rcgc_heap_new_with(opts);
    assert_non_null(h);
    return h;
}

rcgc_heap *tl_heap_new(void)
{
    rcgc_heap_options o = {.name = "test", .ignore_environment = true};
    rcgc_heap *h = tl_heap_new_with(&o);
    rcgc_disable(h);
    return h;
}

void tl_heap_free_at(rcgc_heap *h, const char *file, int line)
{
    tl_survivors_clear();
    rcgc_heap_free(h);
    if (!g_panic_expected && g_panic_count) {
        print_panics(0);
        _fail(file, line);
    }
}

void tl_check_at(rcgc_heap *h, const char *file, int line)
{
    size_t before = g_panic_count;
    size_t v = rcgc__heap_check(h);
    if (v)
        print_panics(before);
    _assert_int_equal(v, 0, file, line);
}

/* ---- walks and counts ---- */

static int find_visit(void *obj, void *arg)
{
    return obj == arg;
}

int tl_generation_of(rcgc_heap *h, const void *obj)
{
    for (int g = 0; g < 3; g++)
        if (rcgc_get_objects(h, g, find_visit, (void *)(uintptr_t)obj) == 1)
            return g;
    return -1;
}

static int count_visit(void *obj, void *arg)
{
    (void)obj;
    (*(size_t *)arg)++;
    return 0;
}

size_t tl_objects_in(rcgc_heap *h, int g)
{
    size_t n = 0;
    assert_int_equal(rcgc_get_objects(h, g, count_visit, &n), 0);
    return n;
}

bool tl_is_referrer(rcgc_heap *h, const void *target, const void *referrer)
{
    return rcgc_get_referrers(h, target, find_visit, (void *)(uintptr_t)referrer) == 1;
}

size_t tl_referrers_count(rcgc_heap *h, const void *target)
{
    size_t n = 0;
    assert_int_equal(rcgc_get_referrers(h, target, count_visit, &n), 0);
    return n;
}

void tl_assert_counts_at(rcgc_heap *h, size_t c0, size_t c1, size_t c2, const char *file,
                         int line)
{
    size_t c[3] = {99, 99, 99};
    rcgc_get_count(h, c);
    if (c[0] != c0 || c[1] != c1 || c[2] != c2)
        print_error("counts (%zu, %zu, %zu), expected (%zu, %zu, %zu)\n", c[0], c[1], c[2], c0,
                    c1, c2);
    _assert_int_equal(c[0], c0, file, line);
    _assert_int_equal(c[1], c1, file, line);
    _assert_int_equal(c[2], c2, file, line);
}

/* ---- weak references ---- */

bool tl_wr_alive(void *ref)
{
    void *o = rcgc_weakref_get(ref);
    if (!o)
        return false;
    rcgc_decref(o);
    return true;
}

void *tl_wr_new(rcgc_heap *h, void *target, rcgc_weakref_cb cb, void *arg)
{
    void *wr = rcgc_weakref_new(h, target, cb, arg);
    assert_non_null(wr);
    return wr;
}

static void detector_cb(void *ref, void *arg)
{
    (void)ref;
    *(bool *)arg = true;
}

void tl_detector_init(rcgc_heap *h, tl_detector *d)
{
    d->happened = false;
    tl_node *n = tl_new(h, &tl_Node, -666);
    tl_self_loop(n, 0);
    d->wr = tl_wr_new(h, n, detector_cb, &d->happened);
    rcgc_decref(n);
}

void tl_detector_fini(tl_detector *d)
{
    rcgc_decref(d->wr);
    d->wr = NULL;
}

/* ---- stderr capture ---- */

void tl_capture_start(tl_capture *c)
{
    fflush(stderr);
    FILE *f = tmpfile();
    assert_non_null(f);
    c->saved_fd = dup(2);
    assert_true(c->saved_fd >= 0);
    assert_true(dup2(fileno(f), 2) >= 0);
    c->file = f;
}

char *tl_capture_stop(tl_capture *c)
{
    FILE *f = c->file;
    fflush(stderr);
    dup2(c->saved_fd, 2);
    close(c->saved_fd);
    long n = 0;
    if (fseek(f, 0, SEEK_END) == 0)
        n = ftell(f);
    if (n < 0)
        n = 0;
    rewind(f);
    char *buf = malloc((size_t)n + 1);
    if (!buf)
        abort();
    size_t got = fread(buf, 1, (size_t)n, f);
    buf[got] = '\0';
    fclose(f);
    c->file = NULL;
    return buf;
}

size_t tl_count_substr(const char *hay, const char *needle)
{
    size_t n = 0, len = strlen(needle);
    if (!len)
        return 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + len, needle))
        n++;
    return n;
}
