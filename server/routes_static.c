/* GET /{path*}: the dashboard's static files from --dashboard-dir ("/" serves index.html).
 * Paths with a "." segment start ("..", hidden files) are refused and the resolved file must lie
 * inside the directory, so no request reads anything else. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "app.h"
#include "routes.h"
#include "trc/fileio.h"

#define MAX_STATIC (16u << 20)

static const char *content_type(const char *path) {
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".json", "application/json"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".txt", "text/plain; charset=utf-8"},
        {".map", "application/json"},
        {".woff2", "font/woff2"},
        {".webp", "image/webp"},
    };
    const char *dot = strrchr(path, '.');
    for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
        if (strcmp(dot, types[i].ext) == 0)
            return types[i].type;
    return "application/octet-stream";
}

static int safe_relpath(const char *p) {
    /* every segment: non-empty-or-last, not starting with '.' */
    for (const char *seg = p; *seg;) {
        if (*seg == '.' || *seg == '/' || *seg == '\\')
            return 0;
        const char *slash = strchr(seg, '/');
        if (!slash)
            break;
        seg = slash + 1;
    }
    for (; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == '\\')
            return 0;
    return 1;
}

static void on_static(app *a, const http_request *req, http_response *res) {
    const char *rel = http_param(req, "path");
    const char *dir = a->cfg.dashboard_dir;
    char root[PATH_MAX], path[PATH_MAX * 2], real[PATH_MAX];
    if (!rel || !safe_relpath(rel) || !dir || !realpath(dir, root)) {
        http_reply_error(res, 404, NULL, "no route %s", http_path(req));
        return;
    }
    snprintf(path, sizeof path, "%s/%s", root, rel);
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        size_t n = strlen(path);
        snprintf(path + n, sizeof path - n, "%sindex.html", n && path[n - 1] == '/' ? "" : "/");
    }
    size_t n = strlen(root);
    if (!realpath(path, real) || strncmp(real, root, n) != 0 || real[n] != '/' ||
        stat(real, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > (off_t)MAX_STATIC) {
        http_reply_error(res, 404, NULL, "no route %s", http_path(req));
        return;
    }
    uint8_t *buf;
    size_t len;
    if (trc_read_file(real, &buf, &len)) {
        http_reply_error(res, 404, NULL, "no route %s", http_path(req));
        return;
    }
    http_reply_bytes(res, 200, content_type(real), buf, len);
    http_add_header(res, "Cache-Control", "no-cache");
    http_add_header(res, "X-Content-Type-Options", "nosniff");
}

int routes_static_register(http_server *srv) {
    return http_route(srv, "GET", "/{path*}", 0, on_static);
}
