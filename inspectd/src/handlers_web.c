/* handlers_web.c: the dashboard. GET / answers index.html and GET /assets/{name} one
 * file, from the copies compiled into the library (web_assets.c, generated from web/ at
 * build time) or, when RCGC_INSPECT_WEB_DIR is set, read from that directory at every
 * request (to work on the page without rebuilding). A library built without the
 * dashboard (RCGC_INSPECT_WEB=OFF) answers GET / with a page of links. Both routes are
 * public (no token: the files hold no data); server.c adds the page's
 * Content-Security-Policy. */
#define _POSIX_C_SOURCE 200809L

#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NAME_MAX_LEN 128          /* longer names are not files of the dashboard */
#define DISK_FILE_MAX (16u << 20) /* RCGC_INSPECT_WEB_DIR: larger files are not served */

#ifndef RCGC_INSPECT_WEB
/* Built without the dashboard: no file (C has no empty array; the count says 0). */
const insp_web_file rcgc__web_files[1];
const size_t rcgc__web_nfiles = 0;
#endif

/* The content type of a file by its extension, or NULL: not a kind of file the dashboard
 * serves. Keep in step with cmake/RcgcEmbedFiles.cmake. */
static const char *content_type(const char *name)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
    };
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot != NULL && i < sizeof types / sizeof types[0]; i++)
        if (strcmp(dot, types[i].ext) == 0)
            return types[i].type;
    return NULL;
}

/* A plain file name: [A-Za-z0-9._-]+, not starting with a dot (so neither "..", nor a
 * dotfile, nor anything with a '/'). */
static bool name_ok(const char *name)
{
    static const char plain[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                "0123456789._-";
    size_t n = strlen(name);
    return n > 0 && n <= NAME_MAX_LEN && name[0] != '.' && strspn(name, plain) == n;
}

/* Whether an If-None-Match header names etag (weak comparison: W/"x" matches "x"). */
static bool etag_matches(const char *if_none_match, const char *etag)
{
    if (if_none_match == NULL)
        return false;
    if (strspn(if_none_match, " *") == strlen(if_none_match) && strchr(if_none_match, '*'))
        return true;
    return strstr(if_none_match, etag) != NULL; /* etag is quoted: no partial match */
}

/* ---- RCGC_INSPECT_WEB_DIR: the files on disk ---- */

/* Where name lives under the web directory: uPlot's files are in node_modules. */
static const char *disk_name(const char *name)
{
    if (strcmp(name, "uplot.js") == 0)
        return "node_modules/uplot/dist/uPlot.iife.min.js";
    if (strcmp(name, "uplot.css") == 0)
        return "node_modules/uplot/dist/uPlot.min.css";
    return name;
}

/* Reads dir/<name> (a regular file of at most DISK_FILE_MAX bytes) into a malloc'd
 * buffer. Returns: 0, RCGC_ENOENT (absent, unreadable, not a regular file, too large)
 * or RCGC_ENOMEM. */
static int read_disk(const char *dir, const char *name, char **data, size_t *len)
{
    const char *rel = disk_name(name);
    size_t n = strlen(dir) + 1 + strlen(rel) + 1;
    char *path = malloc(n);
    if (path == NULL)
        return RCGC_ENOMEM;
    snprintf(path, n, "%s/%s", dir, rel);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    free(path);
    if (fd < 0)
        return RCGC_ENOENT;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > (off_t)DISK_FILE_MAX) {
        close(fd);
        return RCGC_ENOENT;
    }
    size_t size = (size_t)st.st_size, got = 0;
    char *buf = malloc(size > 0 ? size : 1);
    if (buf == NULL) {
        close(fd);
        return RCGC_ENOMEM;
    }
    while (got < size) {
        ssize_t k = read(fd, buf + got, size - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break; /* an error, or the file shrank: serve what was read */
        got += (size_t)k;
    }
    close(fd);
    *data = buf;
    *len = got;
    return 0;
}

/* A strong validator of data: "\"<FNV-1a 64 in hex>\"" in out (at least 19 bytes). */
static void disk_etag(const char *data, size_t len, char *out, size_t cap)
{
    uint64_t h = 0xcbf29ce484222325u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)data[i]) * 0x100000001b3u;
    snprintf(out, cap, "\"%016" PRIx64 "\"", h);
}

/* ---- answers ---- */

static const insp_web_file *embedded(const char *name)
{
    for (size_t i = 0; i < rcgc__web_nfiles; i++)
        if (strcmp(rcgc__web_files[i].name, name) == 0)
            return &rcgc__web_files[i];
    return NULL;
}

static int not_found(insp_resp *rs, const char *name)
{
    return rcgc__reply_error(rs, 404, "not_found", "the dashboard has no file '%s'", name);
}

/* Answers the file name: 200 with a copy of it, or 304 when the client's copy has its
 * ETag. with_etag false (GET /): no validator, so the page stays no-store. */
static int serve(const insp_req *rq, insp_resp *rs, const char *name, bool with_etag)
{
    const char *type = content_type(name);
    if (!name_ok(name) || type == NULL)
        return not_found(rs, name);
    const char *dir = rcgc__insp_config()->web_dir;
    const insp_web_file *f = NULL;
    char etag[sizeof rs->etag];
    char *body = NULL;
    size_t len = 0;
    if (dir != NULL) {
        int rc = read_disk(dir, name, &body, &len);
        if (rc == RCGC_ENOMEM)
            return rcgc__reply_error(rs, 500, "internal_error", "out of memory");
        if (rc != 0)
            return rcgc__reply_error(rs, 404, "not_found",
                                     "RCGC_INSPECT_WEB_DIR has no file '%s'", name);
        disk_etag(body, len, etag, sizeof etag);
    } else {
        if ((f = embedded(name)) == NULL)
            return not_found(rs, name);
        snprintf(etag, sizeof etag, "%s", f->etag);
    }
    if (with_etag && etag_matches(rq->if_none_match, etag)) {
        free(body);
        rcgc__reply_raw(rs, 304, type, NULL, 0);
    } else {
        if (f != NULL) { /* a copy: the server frees every body */
            if ((body = malloc(f->len > 0 ? f->len : 1)) == NULL)
                return rcgc__reply_error(rs, 500, "internal_error", "out of memory");
            memcpy(body, f->data, f->len);
            len = f->len;
        }
        rcgc__reply_raw(rs, 200, type, body, len);
    }
    if (with_etag)
        memcpy(rs->etag, etag, sizeof rs->etag);
    return 0;
}

/* Appends s HTML-escaped (after replacing invalid UTF-8). */
static void html_text(insp_buf *b, const char *s)
{
    insp_buf t = {0};
    rcgc__buf_utf8(&t, s);
    for (const char *p = t.data ? t.data : ""; *p != '\0'; p++) {
        switch (*p) {
        case '<':
            rcgc__buf_puts(b, "&lt;");
            break;
        case '>':
            rcgc__buf_puts(b, "&gt;");
            break;
        case '&':
            rcgc__buf_puts(b, "&amp;");
            break;
        case '"':
            rcgc__buf_puts(b, "&quot;");
            break;
        case '\'':
            rcgc__buf_puts(b, "&#39;");
            break;
        default:
            rcgc__buf_add(b, p, 1);
        }
    }
    if (t.failed)
        b->failed = true;
    free(t.data);
}

/* GET / of a library built without the dashboard: links to the JSON endpoints. */
static int links_page(insp_resp *rs)
{
    char **names = NULL;
    size_t n = 0;
    if (rcgc__heap_names(&names, &n) != 0)
        return rcgc__reply_error(rs, 500, "internal_error", "out of memory");
    insp_buf b = {0};
    rcgc__buf_puts(&b, "<!doctype html>\n<html><head><meta charset=\"utf-8\">"
                       "<title>rcgc inspector</title></head>\n<body>\n"
                       "<h1>rcgc inspector</h1>\n<p>Protocol v1 (JSON). This library was "
                       "built without the dashboard (RCGC_INSPECT_WEB=OFF):</p>\n<ul>\n"
                       "<li><a href=\"/v1/process\">/v1/process</a></li>\n"
                       "<li><a href=\"/v1/heaps\">/v1/heaps</a></li>\n"
                       "<li><a href=\"/metrics\">/metrics</a> (Prometheus)</li>\n</ul>\n"
                       "<h2>Heaps</h2>\n<ul>\n");
    static const char *const subs[] = {"", "/census", "/sites", "/baselines"};
    for (size_t i = 0; i < n; i++) {
        rcgc__buf_puts(&b, "<li>");
        html_text(&b, names[i]);
        rcgc__buf_puts(&b, ":");
        for (size_t k = 0; k < sizeof subs / sizeof subs[0]; k++) {
            rcgc__buf_puts(&b, " <a href=\"/v1/heaps/");
            insp_buf seg = {0};
            rcgc__buf_pct(&seg, names[i]);
            html_text(&b, seg.data ? seg.data : "");
            b.failed |= seg.failed;
            free(seg.data);
            rcgc__buf_printf(&b, "%s\">%s</a>", subs[k], k == 0 ? "state" : subs[k] + 1);
        }
        rcgc__buf_puts(&b, "</li>\n");
    }
    rcgc__buf_puts(&b, "</ul>\n</body></html>\n");
    rcgc__names_free(names, n);
    if (b.failed) {
        free(b.data);
        return rcgc__reply_error(rs, 500, "internal_error", "out of memory");
    }
    return rcgc__reply_raw(rs, 200, "text/html; charset=utf-8", b.data, b.len);
}

int rcgc__handle_dashboard_get(const insp_req *rq, insp_resp *rs)
{
    if (rcgc__insp_config()->web_dir == NULL && embedded("index.html") == NULL)
        return links_page(rs);
    return serve(rq, rs, "index.html", false);
}

int rcgc__handle_asset_get(const insp_req *rq, insp_resp *rs)
{
    return serve(rq, rs, rq->name, true);
}
