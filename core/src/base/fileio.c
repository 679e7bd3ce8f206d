/* Whole-file reads and atomic writes; see fileio.h. */
#include "trc/fileio.h"
#include "trc/error.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int trc_open_regular(const char *path, int *fd, size_t *size) {
    *fd = open(path, O_RDONLY | O_CLOEXEC);
    if (*fd < 0)
        return trc_fail(TRC_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(*fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(*fd);
        *fd = -1;
        return trc_fail(TRC_EIO, "%s: not a regular file", path);
    }
    if (size)
        *size = (size_t)st.st_size;
    return TRC_OK;
}

int trc_read_file(const char *path, uint8_t **buf, size_t *len) {
    *buf = NULL;
    *len = 0;
    int fd;
    size_t size;
    int rc = trc_open_regular(path, &fd, &size);
    if (rc)
        return rc;
    uint8_t *data = malloc(size + 1);
    if (!data) {
        close(fd);
        return trc_fail(TRC_ENOMEM, "%s: cannot allocate %zu bytes", path, size);
    }
    size_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, data + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int e = r < 0 ? errno : EIO;
            free(data);
            close(fd);
            return trc_fail(TRC_EIO, "%s: read failed: %s", path, strerror(e));
        }
        got += (size_t)r;
    }
    close(fd);
    data[size] = 0;
    *buf = data;
    *len = size;
    return TRC_OK;
}

static int fsync_dir_of(const char *path) {
    char *copy = strdup(path);
    if (!copy)
        return TRC_ENOMEM;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(copy);
    if (fd < 0)
        return TRC_OK; /* best effort: some filesystems refuse opening directories */
    fsync(fd);
    close(fd);
    return TRC_OK;
}

int trc_commit_file(const char *tmp, const char *path) {
    int fd = open(tmp, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        unlink(tmp);
        return trc_fail(TRC_EIO, "%s: cannot sync: %s", path, strerror(e));
    }
    close(fd);
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return trc_fail(TRC_EIO, "%s: cannot rename into place: %s", path, strerror(e));
    }
    return fsync_dir_of(path);
}

int trc_create_tmp(const char *path, char *tmp, size_t size, int *fd) {
    static atomic_uint counter;
    *fd = -1;
    int n =
        snprintf(tmp, size, "%s.tmp.%ld.%u", path, (long)getpid(), atomic_fetch_add(&counter, 1));
    if (n < 0 || (size_t)n >= size)
        return trc_fail(TRC_EINVAL, "%s: path too long", path);
    *fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (*fd < 0)
        return trc_fail(TRC_EIO, "%s: cannot create: %s", path, strerror(errno));
    return TRC_OK;
}

int trc_write_file_atomic(const char *path, const void *buf, size_t len) {
    char tmp[4200];
    int fd, rc = trc_create_tmp(path, tmp, sizeof tmp, &fd);
    if (rc)
        return rc;
    const uint8_t *p = buf;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            int e = errno;
            close(fd);
            unlink(tmp);
            return trc_fail(TRC_EIO, "%s: write failed: %s", path, strerror(e));
        }
        p += w;
        left -= (size_t)w;
    }
    if (close(fd) != 0) {
        int e = errno;
        unlink(tmp);
        return trc_fail(TRC_EIO, "%s: write failed: %s", path, strerror(e));
    }
    return trc_commit_file(tmp, path);
}

int trc_mkdir_p(const char *path) {
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf)
        return trc_fail(TRC_EINVAL, "bad directory path '%s'", path);
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == 0) {
            char c = buf[i];
            buf[i] = 0;
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return trc_fail(TRC_EIO, "%s: cannot create directory: %s", buf, strerror(errno));
            buf[i] = c;
        }
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return trc_fail(TRC_EIO, "%s: not a directory", path);
    return TRC_OK;
}
