/* test_metrics.c: GET /metrics against the Prometheus text format 0.0.4: what
 * `promtool check metrics` checks (run when promtool is installed; skipped with a reason
 * otherwise) and what it does not (one contiguous group per family, unique series,
 * histogram buckets cumulative and ordered with +Inf equal to _count, escaped label
 * values, bounded per-type series). */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <rcgc/inspect.h>
#include <rcgc/rcgc.h>

#include "harness.h"
#include "http_client.h"

#define NTYPES 25 /* more than the 20 types /metrics lists per heap */

/* NTYPES types of harness.h's node, each of a size of its own. */
static rcgc_type g_types[NTYPES];
static char g_names[NTYPES][16];
/* A type whose name needs escaping in a label value, and one that is not UTF-8. */
static const rcgc_type Odd = {.name = "odd \"quoted\" \\ back\nslash", .size = 8};
static const rcgc_type Latin1 = {.name = "caf\xE9", .size = 8};
/* Another type named like one of g_types: one series for both. */
static const rcgc_type Twin = {.name = "T24", .size = 8};

static rcgc_heap *g_heaps[2];
static void *g_kept[4096];
static size_t g_nkept;
static int g_port;
static char *g_text; /* the /metrics answer */

static int setup(void **state)
{
    (void)state;
    static const char *const names[2] = {"metrics", "we\"ird\\heap\nname"};
    for (int h = 0; h < 2; h++) {
        rcgc_heap_options o = {.name = names[h], .ignore_environment = true};
        g_heaps[h] = rcgc_heap_new_with(&o);
        if (g_heaps[h] == NULL)
            return -1;
        rcgc_disable(g_heaps[h]); /* exactly the collections below, also under GC stress */
    }
    for (int i = 0; i < NTYPES; i++) {
        snprintf(g_names[i], sizeof g_names[i], "T%02d", i);
        g_types[i] = (rcgc_type){.name = g_names[i],
                                 .size = sizeof(node) + 8 * (size_t)i,
                                 .traverse = node_traverse,
                                 .clear = node_clear,
                                 .dealloc = node_clear};
        for (int k = 0; k <= i; k++)
            g_kept[g_nkept++] = rcgc_new(g_heaps[0], &g_types[i]);
    }
    g_kept[g_nkept++] = rcgc_new(g_heaps[0], &Twin);
    g_kept[g_nkept++] = rcgc_new(g_heaps[0], &Twin);
    g_kept[g_nkept++] = rcgc_new(g_heaps[1], &Odd);
    g_kept[g_nkept++] = rcgc_new(g_heaps[1], &Latin1);
    for (size_t i = 0; i < g_nkept; i++)
        if (g_kept[i] == NULL)
            return -1;
    rcgc_inspect_options o = {.address = "127.0.0.1:0"};
    if (rcgc_inspect_start(&o) != 0)
        return -1;
    g_port = rcgc_inspect_port();
    /* Collections after the start feed the pause histogram. */
    for (int g = 0; g < 3; g++)
        for (int h = 0; h < 2; h++)
            rcgc_collect(g_heaps[h], g);
    /* Owners publish at most every 50 ms: let the newest snapshot see all three. */
    sleep_ms(60);
    rcgc_safepoint(g_heaps[0]);
    rcgc_safepoint(g_heaps[1]);

    /* GET /metrics while this thread serves the heaps (their first publications). */
    http_response r;
    if (http_request_serving(g_port, "GET", "/metrics", NULL, NULL, g_heaps, 2, &r) != 200) {
        http_response_free(&r);
        return -1;
    }
    g_text = r.body;
    r.body = NULL;
    http_response_free(&r);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rcgc_inspect_stop();
    for (size_t i = 0; i < g_nkept; i++)
        rcgc_decref(g_kept[i]);
    rcgc_heap_free(g_heaps[0]);
    rcgc_heap_free(g_heaps[1]);
    free(g_text);
    return 0;
}

/* ---- a small parser of the text format ---- */

/* Copies src to dst (cap bytes), failing the test when it does not fit. */
static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    assert_true(n < cap);
    memcpy(dst, src, n + 1);
}

typedef struct sample {
    char name[128];
    char labels[512]; /* as written, between the braces */
    char le[32];      /* the le label, "" without one */
    char rest[512];   /* labels without le */
    double value;
} sample;

/* Parses `name{labels} value`; fails the test on anything else. */
static void parse_sample(const char *line, sample *s)
{
    memset(s, 0, sizeof *s);
    size_t n = strcspn(line, "{ ");
    assert_true(n > 0 && n < sizeof s->name);
    memcpy(s->name, line, n);
    for (size_t i = 0; i < n; i++) {
        char c = line[i];
        assert_true((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                    (i > 0 && c >= '0' && c <= '9'));
    }
    const char *p = line + n;
    size_t rl = 0;
    if (*p == '{') {
        p++;
        size_t k = 0;
        /* label="value" pairs; values may hold escaped \\ \" \n and nothing raw. */
        while (*p != '}') {
            const char *start = p;
            while (*p != '=' && *p != '\0')
                p++;
            assert_int_equal(*p, '=');
            char lname[64];
            size_t ln = (size_t)(p - start);
            assert_true(ln > 0 && ln < sizeof lname);
            memcpy(lname, start, ln);
            lname[ln] = '\0';
            p++;
            assert_int_equal(*p, '"');
            p++;
            char val[256];
            size_t vn = 0;
            while (*p != '"') {
                assert_int_not_equal(*p, '\0');
                if (*p == '\\') {
                    p++;
                    assert_true(*p == '\\' || *p == '"' || *p == 'n');
                }
                assert_true(vn + 1 < sizeof val);
                val[vn++] = *p++;
            }
            val[vn] = '\0';
            p++;
            size_t len = (size_t)(p - start);
            assert_true(k + len + 1 < sizeof s->labels);
            memcpy(s->labels + k, start, len);
            k += len;
            if (strcmp(lname, "le") == 0) {
                copy_str(s->le, sizeof s->le, val);
            } else {
                assert_true(rl + len + 1 < sizeof s->rest);
                memcpy(s->rest + rl, start, len);
                rl += len;
                s->rest[rl++] = ',';
            }
            if (*p == ',') {
                s->labels[k++] = *p++;
            }
        }
        p++;
    }
    assert_int_equal(*p, ' ');
    char *end;
    s->value = strtod(p + 1, &end);
    assert_true(end != p + 1);
    assert_int_equal(*end, '\0');
}

/* The family a sample belongs to: histograms own their _bucket, _sum, _count. */
static void family_of(const char *name, const char *const *histos, size_t nh, char *out,
                      size_t cap)
{
    for (size_t i = 0; i < nh; i++) {
        size_t hn = strlen(histos[i]);
        if (strncmp(name, histos[i], hn) == 0 &&
            (strcmp(name + hn, "_bucket") == 0 || strcmp(name + hn, "_sum") == 0 ||
             strcmp(name + hn, "_count") == 0)) {
            copy_str(out, cap, histos[i]);
            return;
        }
    }
    copy_str(out, cap, name);
}

/* ---- tests ---- */

static void test_metrics_format(void **state)
{
    (void)state;
    char *text = strdup(g_text);
    assert_non_null(text);
    size_t len = strlen(text);
    assert_true(len > 0);
    assert_int_equal(text[len - 1], '\n');

    enum { MAXF = 64, MAXS = 4096 };
    char families[MAXF][128], types[MAXF][16];
    bool has_help[MAXF];
    size_t nf = 0;
    static sample samples[MAXS];
    size_t ns = 0;
    const char *histos[MAXF];
    size_t nh = 0;
    char current[128] = "";
    for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        if (strncmp(line, "# HELP ", 7) == 0 || strncmp(line, "# TYPE ", 7) == 0) {
            char name[128], what[256];
            assert_int_equal(sscanf(line + 7, "%127s %255[^\n]", name, what), 2);
            size_t f = 0;
            while (f < nf && strcmp(families[f], name) != 0)
                f++;
            if (f == nf) { /* a new family: HELP first */
                assert_true(nf < MAXF);
                assert_int_equal(strncmp(line, "# HELP ", 7), 0);
                copy_str(families[nf], sizeof families[nf], name);
                types[nf][0] = '\0';
                has_help[nf] = true;
                nf++;
                copy_str(current, sizeof current, name);
            } else {
                /* Only TYPE may follow, once, right after its HELP. */
                assert_int_equal(strncmp(line, "# TYPE ", 7), 0);
                assert_string_equal(current, name);
                assert_int_equal(types[f][0], '\0');
                copy_str(types[f], sizeof types[f], what);
                assert_true(strcmp(what, "counter") == 0 || strcmp(what, "gauge") == 0 ||
                            strcmp(what, "histogram") == 0);
                if (strcmp(what, "histogram") == 0)
                    histos[nh++] = families[f];
                if (strcmp(what, "counter") == 0)
                    assert_non_null(strstr(name, "_total"));
                else
                    assert_null(strstr(name, "_total"));
            }
            continue;
        }
        assert_int_not_equal(line[0], '#');
        assert_true(ns < MAXS);
        sample *s = &samples[ns++];
        parse_sample(line, s);
        char fam[128];
        family_of(s->name, histos, nh, fam, sizeof fam);
        /* Every sample belongs to the family announced last: groups are contiguous. */
        if (strcmp(fam, current) != 0)
            print_error("sample %s outside its group (current %s)\n", line, current);
        assert_string_equal(fam, current);
    }
    for (size_t f = 0; f < nf; f++) {
        assert_true(has_help[f]);
        assert_int_not_equal(types[f][0], '\0');
    }
    /* Unique series. */
    for (size_t i = 0; i < ns; i++)
        for (size_t j = i + 1; j < ns; j++)
            if (strcmp(samples[i].name, samples[j].name) == 0)
                assert_string_not_equal(samples[i].labels, samples[j].labels);
    /* Histograms: per series, le ascending, counts cumulative, +Inf last == _count. */
    for (size_t h = 0; h < nh; h++) {
        char bucket[160], count[160];
        snprintf(bucket, sizeof bucket, "%s_bucket", histos[h]);
        snprintf(count, sizeof count, "%s_count", histos[h]);
        size_t series = 0;
        for (size_t i = 0; i < ns; i++) {
            if (strcmp(samples[i].name, bucket) != 0 || strcmp(samples[i].le, "+Inf") == 0)
                continue;
            if (i > 0 && strcmp(samples[i - 1].name, bucket) == 0 &&
                strcmp(samples[i - 1].rest, samples[i].rest) == 0)
                continue; /* not the first bucket of its series */
            series++;
            double prev_le = -1, prev_v = 0;
            size_t k = i;
            for (; k < ns && strcmp(samples[k].name, bucket) == 0 &&
                   strcmp(samples[k].rest, samples[i].rest) == 0;
                 k++) {
                double le = strcmp(samples[k].le, "+Inf") == 0 ? 1e300 : atof(samples[k].le);
                assert_true(le > prev_le);
                assert_true(samples[k].value >= prev_v);
                prev_le = le;
                prev_v = samples[k].value;
            }
            assert_string_equal(samples[k - 1].le, "+Inf");
            bool found = false;
            for (size_t c = 0; c < ns; c++)
                if (strcmp(samples[c].name, count) == 0 &&
                    strcmp(samples[c].rest, samples[i].rest) == 0) {
                    assert_true(samples[c].value == prev_v);
                    found = true;
                }
            assert_true(found);
        }
        assert_true(series >= 6); /* 2 heaps x 3 generations */
    }
    assert_true(nh >= 1);
    free(text);
}

static void test_metrics_content(void **state)
{
    (void)state;
    if (getenv("RCGC_TEST_VERBOSE") != NULL)
        fputs(g_text, stdout);
    /* The names of the client libraries' GC metrics, for both heaps. */
    assert_non_null(strstr(g_text, "rcgc_gc_collections_total{heap=\"metrics\","
                                   "generation=\"2\"} 1\n"));
    assert_non_null(strstr(g_text, "rcgc_gc_objects_collected_total{"));
    assert_non_null(strstr(g_text, "rcgc_gc_objects_uncollectable_total{"));
    assert_non_null(strstr(g_text, "rcgc_gc_pause_seconds_total{"));
    assert_non_null(strstr(g_text, "rcgc_gc_objects{heap=\"metrics\",generation=\"0\"}"));
    assert_non_null(
        strstr(g_text, "rcgc_gc_threshold{heap=\"metrics\",generation=\"0\"} 700\n"));
    assert_non_null(strstr(g_text, "rcgc_gc_pause_seconds_count{heap=\"metrics\","
                                   "generation=\"1\"} 1\n"));
    assert_non_null(strstr(g_text, "process_resident_memory_bytes "));
    assert_non_null(strstr(g_text, "process_cpu_seconds_total "));
    assert_non_null(strstr(g_text, "rcgc_gc_counts{heap=\"metrics\",generation=\"0\"} "));
    /* Escaped label values: the heap name and the type name. */
    assert_non_null(strstr(g_text, "heap=\"we\\\"ird\\\\heap\\nname\""));
    assert_non_null(strstr(g_text, "type=\"odd \\\"quoted\\\" \\\\ back\\nslash\""));
    assert_non_null(strstr(g_text, "type=\"caf\xEF\xBF\xBD\""));
    /* 20 types of the 25 by bytes (the largest are T24, T23, ...), the rest summed. */
    size_t series = 0;
    for (const char *p = g_text; (p = strstr(p, "rcgc_heap_live_objects{heap=\"metrics\""));
         p++)
        series++;
    assert_int_equal(series, 21);
    assert_non_null(
        strstr(g_text, "rcgc_heap_live_objects{heap=\"metrics\",type=\"T24\"} 27\n"));
    assert_null(strstr(g_text, "type=\"T00\""));
    /* T00..T04: 1 + 2 + 3 + 4 + 5 objects. */
    assert_non_null(
        strstr(g_text, "rcgc_heap_live_objects{heap=\"metrics\",type=\"(other)\"} 15\n"));
}

static void test_metrics_promtool(void **state)
{
    (void)state;
    const char *promtool = getenv("RCGC_PROMTOOL");
    char found[512] = "";
    if (promtool == NULL || promtool[0] == '\0') {
        FILE *w = popen("command -v promtool", "r");
        if (w != NULL) {
            if (fgets(found, sizeof found, w) != NULL)
                found[strcspn(found, "\n")] = '\0';
            pclose(w);
        }
        promtool = found[0] ? found : NULL;
    }
    if (promtool == NULL) {
        /* Under CI promtool must be there (bootstrap --tests installs it): fail, not skip. */
        const char *ci = getenv("CI");
        if (ci != NULL && ci[0] != '\0' && strcmp(ci, "0") != 0 && strcmp(ci, "false") != 0)
            fail_msg("promtool is not installed and CI is set");
        printf("promtool is not installed (Debian: the prometheus package; "
               "bash scripts/bootstrap.sh --tests installs it): skipping its check\n");
        skip();
    }
    char path[] = "/tmp/rcgc-metrics-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t len = strlen(g_text);
    assert_int_equal(write(fd, g_text, len), (ssize_t)len);
    close(fd);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "'%s' check metrics < '%s' 2>&1", promtool, path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char out[4096];
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    int status = pclose(p);
    unlink(path);
    if (status != 0)
        print_error("promtool check metrics failed (status %d):\n%s\n", status, out);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    printf("promtool check metrics: ok (%s)\n", promtool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metrics_format),
        cmocka_unit_test(test_metrics_content),
        cmocka_unit_test(test_metrics_promtool),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
