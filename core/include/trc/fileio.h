/* Whole-file reads and crash-safe writes: data goes to a temporary file beside the target,
 * is fsync'ed, then renamed over it, so a reader never sees a half-written file. */
#ifndef TRC_FILEIO_H
#define TRC_FILEIO_H

#include <stddef.h>
#include <stdint.h>

/* Reads a whole file into a malloc'd buffer (NUL-terminated for convenience, not counted). */
int trc_read_file(const char *path, uint8_t **buf, size_t *len);
/* Writes buf atomically to path (temporary name "path.tmp.<pid>.<n>", fsync, rename). */
int trc_write_file_atomic(const char *path, const void *buf, size_t len);
/* Renames tmp over path after fsync'ing tmp and then the directory; unlinks tmp on failure. */
int trc_commit_file(const char *tmp, const char *path);
/* Opens path for reading into *fd, refusing anything but a regular file; its size goes to *size
 * (unless size is NULL). */
int trc_open_regular(const char *path, int *fd, size_t *size);
/* Creates the temporary file for an atomic write of path: the name "path.tmp.<pid>.<n>" goes to
 * tmp (size bytes), the new file (exclusive, 0644) is opened for writing into *fd. Write it,
 * close it, then trc_commit_file(tmp, path) (or unlink tmp to give up). */
int trc_create_tmp(const char *path, char *tmp, size_t size, int *fd);
/* Creates a directory and its parents (like mkdir -p). */
int trc_mkdir_p(const char *path);

#endif
