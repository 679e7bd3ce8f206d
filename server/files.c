/* See files.h. */
#include "files.h"

#include <ctype.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int files_is_tmp(const char *name) {
    const char *t = strstr(name, ".tmp.");
    while (t) {
        const char *p = t + 5;
        size_t a = strspn(p, "0123456789");
        if (a > 0 && p[a] == '.') {
            size_t b = strspn(p + a + 1, "0123456789");
            if (b > 0 && p[a + 1 + b] == '\0')
                return 1;
        }
        t = strstr(t + 1, ".tmp.");
    }
    return 0;
}

/* nftw keeps no user pointer: the walks below run at start-up (one thread) and under the
 * callers' locks, and thread-local state keeps them apart anyway. */
static _Thread_local int removed;
static _Thread_local uint64_t usage;

static int rm_tmp(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    if (flag == FTW_F && files_is_tmp(path + ftw->base) && unlink(path) == 0)
        removed++;
    return 0;
}

int files_remove_stale_tmp(const char *dir) {
    removed = 0;
    nftw(dir, rm_tmp, 16, FTW_PHYS);
    return removed;
}

static int add_usage(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)path;
    (void)flag;
    (void)ftw;
    usage += (uint64_t)st->st_blocks * 512u;
    return 0;
}

uint64_t files_disk_usage(const char *dir) {
    usage = 0;
    nftw(dir, add_usage, 16, FTW_PHYS);
    return usage;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)ftw;
    int rc = flag == FTW_DP ? rmdir(path) : unlink(path);
    return rc != 0 && errno != ENOENT ? -1 : 0;
}

int files_remove_tree(const char *dir) {
    if (nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0 && errno != ENOENT)
        return -1;
    return 0;
}

static void cut_all(char *msg, const char *prefix) {
    size_t n = strlen(prefix);
    if (n == 0)
        return;
    char *p;
    while ((p = strstr(msg, prefix)) != NULL)
        memmove(p, p + n, strlen(p + n) + 1);
}

void files_scrub(char *msg, const char *dir) {
    char with[PATH_MAX + 2], real[PATH_MAX];
    snprintf(with, sizeof with, "%s/", dir);
    cut_all(msg, with);
    if (realpath(dir, real)) {
        snprintf(with, sizeof with, "%s/", real);
        cut_all(msg, with);
    }
}
