/* handlers_process.c: GET /v1/process (who is being inspected). */
#define _POSIX_C_SOURCE 200809L

#include "internal.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The arguments of /proc/self/cmdline as a JSON array (new reference). */
static json_t *argv_json(const char *cmd, size_t len)
{
    json_t *a = json_array();
    int bad = 0;
    for (size_t i = 0; i < len;) {
        const char *arg = cmd + i;
        size_t n = strnlen(arg, len - i);
        if (n == len - i) { /* truncated last argument: no terminating NUL */
            char *copy = malloc(n + 1);
            if (copy != NULL) {
                memcpy(copy, arg, n);
                copy[n] = '\0';
            }
            bad |= json_array_append_new(a, copy ? rcgc__json_text(copy) : NULL);
            free(copy);
            break;
        }
        bad |= json_array_append_new(a, rcgc__json_text(arg));
        i += n + 1;
    }
    if (bad != 0) {
        json_decref(a);
        return NULL;
    }
    return a;
}

/* Unix milliseconds as RFC 3339 UTC ("2026-11-21T10:40:02.517Z"), or JSON null. */
static json_t *rfc3339(uint64_t unix_ms)
{
    if (unix_ms == 0)
        return json_null();
    time_t t = (time_t)(unix_ms / 1000u);
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL)
        return json_null();
    char s[40];
    size_t n = strftime(s, sizeof s, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(s + n, sizeof s - n, ".%03uZ", (unsigned)(unix_ms % 1000u));
    return json_string(s);
}

static int count_heap(rcgc_heap *h, void *arg)
{
    (void)h;
    (*(int *)arg)++;
    return 0;
}

int rcgc__handle_process_get(const insp_req *rq, insp_resp *rs)
{
    (void)rq;
    insp_proc p;
    rcgc__proc_read(&p);
    size_t cmdlen = 0;
    bool truncated = false;
    char *cmd = rcgc__proc_cmdline(&cmdlen, &truncated);
    char exe[4096];
    ssize_t en = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[en > 0 ? en : 0] = '\0';
    int heaps = 0;
    (void)rcgc__heaps_foreach(count_heap, &heaps);

    const insp_config *cfg = rcgc__insp_config();
    char ip[INET_ADDRSTRLEN] = "0.0.0.0", address[INET_ADDRSTRLEN + 8];
    inet_ntop(AF_INET, &cfg->addr.sin_addr, ip, sizeof ip);
    snprintf(address, sizeof address, "%s:%d", ip, rcgc_inspect_port());

    json_t *o = rcgc__json_top();
    int bad = json_object_set_new(o, "pid", json_integer((json_int_t)getpid()));
    bad |= json_object_set_new(o, "program",
                               en > 0              ? rcgc__json_text(exe)
                               : cmd && cmdlen > 0 ? rcgc__json_text(cmd)
                                                   : json_string(""));
    bad |= json_object_set_new(o, "argv", cmd ? argv_json(cmd, cmdlen) : json_array());
    bad |= json_object_set_new(o, "argv_truncated", json_boolean(truncated));
    bad |= json_object_set_new(o, "start_time", rfc3339(p.start_time_ms));
    bad |= json_object_set_new(o, "uptime_seconds",
                               json_integer((json_int_t)(p.uptime_ms / 1000u)));
    json_t *mem = json_object();
    bad |= json_object_set_new(mem, "resident_bytes", rcgc__json_u64(p.rss_bytes));
    bad |= json_object_set_new(mem, "virtual_bytes", rcgc__json_u64(p.vm_bytes));
    bad |= json_object_set_new(o, "memory", mem);
    bad |= json_object_set_new(o, "threads", json_integer((json_int_t)p.threads));
    bad |= json_object_set_new(o, "rcgc_version", json_string(rcgc_version()));
    bad |= json_object_set_new(o, "heaps", json_integer(heaps));
    json_t *srv = json_object();
    bad |= json_object_set_new(srv, "address", json_string(address));
    bad |= json_object_set_new(srv, "auth", json_boolean(cfg->token != NULL));
    bad |= json_object_set_new(srv, "control", json_boolean(cfg->allow_control));
    bad |= json_object_set_new(o, "server", srv);
    free(cmd);
    if (bad != 0) {
        json_decref(o);
        return rcgc__reply_error(rs, 500, "internal_error", "out of memory");
    }
    return rcgc__reply_json(rs, 200, o);
}
