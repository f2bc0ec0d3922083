/* test_objects.c: objects and heaps: rcgc_new / rcgc_new_var (refcount 1, zeroed
 * payload, tracked iff the type has traverse, allocation site), reference counting,
 * type_of / heap_of, heap names, several independent heaps, census counts and bytes,
 * error strings and version. */
#include "testlib.h"

#include <stdlib.h>
#include <string.h>

static bool all_zero(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return false;
    return true;
}

static void test_objects_new(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    int line = __LINE__ + 1;
    tl_node *n = rcgc_new(h, &tl_Node);
    assert_non_null(n);
    assert_int_equal(rcgc_refcount(n), 1);
    assert_true(all_zero(n, sizeof *n));
    assert_true(rcgc_is_tracked(n));
    assert_false(rcgc_is_finalized(n));
    assert_ptr_equal(rcgc_type_of(n), &tl_Node);
    assert_ptr_equal(rcgc_heap_of(n), h);
    assert_string_equal(rcgc_site_file(n), __FILE__);
    assert_int_equal(rcgc_site_line(n), line);
    assert_int_equal((uintptr_t)n % sizeof(void *), 0);
    tl_node *leaf = rcgc_new(h, &tl_Leaf);
    assert_non_null(leaf);
    assert_false(rcgc_is_tracked(leaf));
    assert_ptr_equal(rcgc_type_of(leaf), &tl_Leaf);
    assert_true(all_zero(leaf, sizeof *leaf));
    /* Fill, free, allocate again: the payload is zeroed even when memory is reused. */
    for (int round = 0; round < 3; round++) {
        memset(n, 0xab, sizeof *n);
        n->id = 0;
        for (int i = 0; i < TL_SLOTS; i++)
            n->slot[i] = NULL;
        n->on_finalize = NULL;
        n->on_legacy_del = NULL;
        rcgc_decref(n);
        n = rcgc_new(h, &tl_Node);
        assert_non_null(n);
        assert_true(all_zero(n, sizeof *n));
    }
    rcgc_decref(n);
    rcgc_decref(leaf);
    tl_check(h);
    tl_heap_free(h);
}

static void test_objects_new_var(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    assert_null(rcgc_new_var(h, &tl_VarNode, tl_VarNode.size - 1));
    tl_var *v0 = rcgc_new_var(h, &tl_VarNode, tl_VarNode.size);
    assert_non_null(v0);
    assert_true(all_zero(v0, tl_VarNode.size));
    const size_t sizes[] = {100, 512, 513, 4096, 1 << 20};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t sz = tl_VarNode.size + sizes[k];
        int line = __LINE__ + 1;
        unsigned char *p = rcgc_new_var(h, &tl_VarNode, sz);
        assert_non_null(p);
        assert_true(all_zero(p, sz));
        assert_true(rcgc_is_tracked(p));
        assert_int_equal(rcgc_site_line(p), line);
        assert_int_equal(rcgc_refcount(p), 1);
        memset(p + tl_VarNode.size, 0x5a, sizes[k]); /* the whole payload is ours */
        rcgc_decref(p);
    }
    rcgc_decref(v0);
    tl_check(h);
    tl_heap_free(h);
}

static void test_objects_bad_arguments(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    assert_null(rcgc_new(h, NULL));
    assert_null(rcgc_new_var(h, NULL, 64));
    assert_null(rcgc_new(NULL, &tl_Node));
    rcgc_heap_free(NULL); /* no-op */
    tl_assert_counts(h, 0, 0, 0);
    tl_check(h);
    tl_heap_free(h);
}

static void test_objects_refcounts(void **state)
{
    (void)state;
    rcgc_heap *h = tl_heap_new();
    tl_node *n = tl_new(h, &tl_Node, 1);
    rcgc_incref(n);
    rcgc_incref(n);
    assert_int_equal(rcgc_refcount(n), 3);
    rcgc_xincref(n);
    rcgc_xincref(NULL);
    assert_int_equal(rcgc_refcount(n), 4);
    rcgc_xdecref(NULL);
    rcgc_xdecref(n);
    rcgc_decref(n);
    rcgc_decref(n);
    assert_int_equal(rcgc_refcount(n), 1);
    tl_check(h);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 1), 0);
    rcgc_decref(n);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 1), 1);
    tl_check(h);
    tl_heap_free(h);
}

/* The heap name is copied; several heaps are independent. */
static void test_objects_heaps(void **state)
{
    (void)state;
    char name[16] = "alpha";
    rcgc_heap_options o = {.name = name, .ignore_environment = true};
    rcgc_heap *h1 = tl_heap_new_with(&o);
    strcpy(name, "beta");
    assert_string_equal(rcgc_heap_name(h1), "alpha");
    rcgc_heap_options o2 = {.name = name, .ignore_environment = true, .panic = tl_panic_record};
    rcgc_heap *h2 = rcgc_heap_new_with(&o2);
    assert_non_null(h2);
    assert_string_equal(rcgc_heap_name(h2), "beta");
    rcgc_disable(h1);
    rcgc_disable(h2);
    tl_node *a = tl_new(h1, &tl_Node, 1);
    tl_node *b = tl_new(h2, &tl_Node, 2);
    tl_self_loop(b, 0);
    assert_ptr_equal(rcgc_heap_of(a), h1);
    assert_ptr_equal(rcgc_heap_of(b), h2);
    tl_assert_counts(h1, 1, 0, 0);
    tl_assert_counts(h2, 1, 0, 0);
    rcgc_decref(b);
    assert_int_equal(rcgc_collect(h1, 2), 0);
    tl_assert_counts(h2, 1, 0, 0);
    assert_int_equal(tl_log_count(TL_EV_DEALLOC, 2), 0);
    assert_int_equal(rcgc_collect(h2, 2), 1);
    assert_int_equal(tl_generation_of(h1, a), 2);
    assert_int_equal(tl_objects_in(h2, -1), 0);
    tl_check(h1);
    tl_check(h2);
    rcgc_heap_free(h2);
    rcgc_decref(a);
    tl_heap_free(h1);

    rcgc_heap *h3 = rcgc_heap_new("gamma");
    assert_non_null(h3);
    assert_string_equal(rcgc_heap_name(h3), "gamma");
    rcgc_heap_free(h3);
}

/* ---- census ---- */

typedef struct {
    rcgc_census_entry e[16];
    int n;
    int stop_at;
} census_rec;

static int census_visit(const rcgc_census_entry *e, void *arg)
{
    census_rec *r = arg;
    if (r->n < 16)
        r->e[r->n] = *e;
    r->n++;
    return r->stop_at && r->n == r->stop_at ? 77 : 0;
}

static const rcgc_census_entry *census_find(const census_rec *r, const char *name)
{
    for (int i = 0; i < r->n && i < 16; i++)
        if (r->e[i].name && strcmp(r->e[i].name, name) == 0)
            return &r->e[i];
    return NULL;
}

static void test_objects_census(void **state)
{
    (void)state;
    const size_t hd = sizeof(rcgc_head);
    rcgc_heap *h = tl_heap_new();
    census_rec r = {.n = 0};
    assert_int_equal(rcgc_census(h, census_visit, &r), 0);
    assert_int_equal(r.n, 0); /* no type ever had an object */

    tl_node *nodes[3];
    for (int i = 0; i < 3; i++)
        nodes[i] = tl_new(h, &tl_Node, i);
    tl_node *leaf = tl_new(h, &tl_Leaf, 9);
    void *v1 = rcgc_new_var(h, &tl_VarNode, 100);
    void *v2 = rcgc_new_var(h, &tl_VarNode, 1000);
    assert_non_null(v1);
    assert_non_null(v2);
    void *w = tl_wr_new(h, leaf, NULL, NULL);

    r.n = 0;
    assert_int_equal(rcgc_census(h, census_visit, &r), 0);
    assert_int_equal(r.n, 4);
    const rcgc_census_entry *e = census_find(&r, "Node");
    assert_non_null(e);
    assert_ptr_equal(e->type, &tl_Node);
    assert_int_equal(e->count, 3);
    assert_int_equal(e->bytes, 3 * (tl_Node.size + hd));
    assert_true(e->tracked);
    e = census_find(&r, "Leaf");
    assert_non_null(e);
    assert_int_equal(e->count, 1);
    assert_int_equal(e->bytes, tl_Leaf.size + hd);
    assert_false(e->tracked);
    e = census_find(&r, "VarNode");
    assert_non_null(e);
    assert_int_equal(e->count, 2);
    /* var objects larger than type->size also carry a 16-byte size prefix */
    assert_int_equal(e->bytes, 100 + 1000 + 2 * hd + 2 * 16);
    e = census_find(&r, "weakref");
    assert_non_null(e);
    assert_int_equal(e->count, 1);
    assert_true(e->tracked);
    assert_ptr_equal(e->type, rcgc_type_of(w));
    assert_true(e->bytes >= hd);

    /* Frees are counted; a type keeps its entry with count 0. */
    rcgc_decref(nodes[0]);
    rcgc_decref(v2);
    rcgc_decref(w);
    r.n = 0;
    assert_int_equal(rcgc_census(h, census_visit, &r), 0);
    assert_int_equal(r.n, 4);
    assert_int_equal(census_find(&r, "Node")->count, 2);
    assert_int_equal(census_find(&r, "Node")->bytes, 2 * (tl_Node.size + hd));
    assert_int_equal(census_find(&r, "VarNode")->count, 1);
    assert_int_equal(census_find(&r, "VarNode")->bytes, 100 + hd + 16);
    assert_int_equal(census_find(&r, "weakref")->count, 0);
    assert_int_equal(census_find(&r, "weakref")->bytes, 0);

    /* Collected cycles leave the census too; uncollectable ones stay. */
    tl_node *cyc = tl_new(h, &tl_FinNode, 5);
    tl_self_loop(cyc, 0);
    tl_node *leg = tl_new(h, &tl_LegacyNode, 6);
    tl_self_loop(leg, 0);
    rcgc_decref(cyc);
    rcgc_decref(leg);
    assert_int_equal(rcgc_collect(h, 2), 2);
    r.n = 0;
    assert_int_equal(rcgc_census(h, census_visit, &r), 0);
    assert_int_equal(r.n, 6);
    assert_int_equal(census_find(&r, "FinNode")->count, 0);
    assert_int_equal(census_find(&r, "LegacyNode")->count, 1);

    /* Stop value and bad arguments. */
    r = (census_rec){.stop_at = 2};
    assert_int_equal(rcgc_census(h, census_visit, &r), 77);
    assert_int_equal(r.n, 2);
    assert_int_equal(rcgc_census(h, NULL, NULL), RCGC_EINVAL);
    assert_int_equal(rcgc_census(NULL, census_visit, &r), RCGC_EINVAL);

    tl_unset(leg, 0);
    rcgc_garbage_clear(h);
    rcgc_decref(nodes[1]);
    rcgc_decref(nodes[2]);
    rcgc_decref(leaf);
    rcgc_decref(v1);
    r = (census_rec){0};
    assert_int_equal(rcgc_census(h, census_visit, &r), 0);
    for (int i = 0; i < r.n; i++) {
        assert_int_equal(r.e[i].count, 0);
        assert_int_equal(r.e[i].bytes, 0);
    }
    tl_check(h);
    tl_heap_free(h);
}

static void test_objects_strerror_and_version(void **state)
{
    (void)state;
    const int codes[] = {RCGC_EINVAL, RCGC_ENOMEM,    RCGC_ENOENT,
                         RCGC_EBUSY,  RCGC_ETIMEDOUT, RCGC_EIO};
    const size_t ncodes = sizeof codes / sizeof codes[0];
    for (size_t i = 0; i < ncodes; i++) {
        const char *s = rcgc_strerror(codes[i]);
        assert_non_null(s);
        assert_true(strlen(s) > 0);
        assert_string_not_equal(s, "unknown error");
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(s, rcgc_strerror(codes[j]));
    }
    assert_string_equal(rcgc_strerror(12345), "unknown error");
    assert_string_equal(rcgc_strerror(-12345), "unknown error");
    assert_string_equal(rcgc_version(), RCGC_VERSION_STRING);
    assert_int_equal(rcgc_version_hex(), RCGC_VERSION_HEX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_objects_new),
        cmocka_unit_test(test_objects_new_var),
        cmocka_unit_test(test_objects_bad_arguments),
        cmocka_unit_test(test_objects_refcounts),
        cmocka_unit_test(test_objects_heaps),
        cmocka_unit_test(test_objects_census),
        cmocka_unit_test(test_objects_strerror_and_version),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
