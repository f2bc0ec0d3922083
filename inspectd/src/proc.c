/* proc.c: what Linux says about this process in /proc: memory, threads, start time and
 * arguments. Every reader tolerates a missing or odd file (the field stays 0). */
#define _POSIX_C_SOURCE 200809L

#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Reads at most cap - 1 bytes of path into buf (NUL-terminated). Returns: bytes read or
 * -1. */
static long read_file(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = '\0';
    return (long)n;
}

/* The number after "key:" in /proc/self/status-like text (kB values as they stand). */
static bool status_field(const char *text, const char *key, uint64_t *out)
{
    size_t kn = strlen(key);
    for (const char *line = text; line != NULL && *line != '\0';) {
        if (strncmp(line, key, kn) == 0 && line[kn] == ':') {
            *out = strtoull(line + kn + 1, NULL, 10);
            return true;
        }
        line = strchr(line, '\n');
        if (line != NULL)
            line++;
    }
    return false;
}

/* The "btime" line of /proc/stat: the boot time, Unix seconds (0 unknown). The file
 * has long lines (interrupt counters), hence getline. */
static uint64_t boot_time_s(void)
{
    FILE *f = fopen("/proc/stat", "re");
    if (f == NULL)
        return 0;
    char *line = NULL;
    size_t cap = 0;
    uint64_t t = 0;
    while (getline(&line, &cap, f) > 0) {
        if (strncmp(line, "btime ", 6) == 0) {
            t = strtoull(line + 6, NULL, 10);
            break;
        }
    }
    free(line);
    fclose(f);
    return t;
}

void rcgc__proc_read(insp_proc *p)
{
    memset(p, 0, sizeof *p);
    char buf[8192];
    if (read_file("/proc/self/status", buf, sizeof buf) > 0) {
        uint64_t rss_kb = 0, vm_kb = 0, threads = 0;
        p->have_status = status_field(buf, "VmRSS", &rss_kb) &
                         status_field(buf, "VmSize", &vm_kb) &
                         status_field(buf, "Threads", &threads);
        p->rss_bytes = rss_kb * 1024u;
        p->vm_bytes = vm_kb * 1024u;
        p->threads = (unsigned)threads;
    }

    /* starttime is field 22 of /proc/self/stat, in clock ticks after boot; fields are
     * counted after the command name, which may hold spaces and parentheses. */
    long hz = sysconf(_SC_CLK_TCK);
    uint64_t start_ticks = 0;
    if (hz > 0 && read_file("/proc/self/stat", buf, sizeof buf) > 0) {
        const char *s = strrchr(buf, ')');
        uint64_t cpu_ticks = 0;
        for (int field = 2; s != NULL && field < 22; field++) {
            s = strchr(s + 1, ' ');                                /* now before field + 1 */
            if (s != NULL && (field + 1 == 14 || field + 1 == 15)) /* utime, stime */
                cpu_ticks += strtoull(s + 1, NULL, 10);
        }
        if (s != NULL) {
            start_ticks = strtoull(s + 1, NULL, 10);
            p->cpu_ms = cpu_ticks * 1000u / (uint64_t)hz;
            p->have_cpu = true;
        }
    }
    if (start_ticks == 0)
        return;
    uint64_t start_ms_after_boot = start_ticks * 1000u / (uint64_t)hz;
    if (read_file("/proc/uptime", buf, sizeof buf) > 0) {
        /* "12345.67 ...": seconds since boot, two decimals; parsed without strtod, whose
         * decimal point depends on the host's locale. */
        uint64_t secs = strtoull(buf, NULL, 10), centis = 0;
        const char *dot = strchr(buf, '.');
        if (dot != NULL && dot[1] >= '0' && dot[1] <= '9' && dot[2] >= '0' && dot[2] <= '9')
            centis = (uint64_t)(dot[1] - '0') * 10u + (uint64_t)(dot[2] - '0');
        uint64_t boot_ms = secs * 1000u + centis * 10u;
        if (boot_ms > start_ms_after_boot)
            p->uptime_ms = boot_ms - start_ms_after_boot;
    }
    uint64_t btime = boot_time_s();
    if (btime != 0)
        p->start_time_ms = btime * 1000u + start_ms_after_boot;
}

char *rcgc__proc_cmdline(size_t *len, bool *truncated)
{
    enum { CAP = 64 * 1024 };
    char *buf = malloc(CAP + 1);
    if (buf == NULL)
        return NULL;
    long n = read_file("/proc/self/cmdline", buf, CAP + 1);
    if (n < 0) {
        free(buf);
        return NULL;
    }
    *truncated = n == CAP; /* the file has at least one byte more */
    *len = (size_t)n;
    return buf;
}
