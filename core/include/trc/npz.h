/* NumPy .npy arrays and .npz archives (a zip of "<key>.npy" entries, read and written through
 * libzip), so that numpy.load reads our datasets and we read numpy.savez / savez_compressed
 * output. Supported dtypes: '<f4', '<f8', '<i4', '<i8' and '<U<n>' strings, little-endian;
 * arrays numpy stored in Fortran order (it does so for transposed arrays) are converted to C
 * order on read, so callers always see row-major data.
 * Every malformation is reported with the file and key; writes are atomic. */
#ifndef TRC_NPZ_H
#define TRC_NPZ_H

#include <stddef.h>
#include <stdint.h>

#define TRC_NPY_MAX_DIMS 8

typedef enum {
    TRC_NPY_F32, /* '<f4' */
    TRC_NPY_F64, /* '<f8' */
    TRC_NPY_I32, /* '<i4' */
    TRC_NPY_I64, /* '<i8' */
    TRC_NPY_STR, /* '<U<n>': n UTF-32LE code points per element, NUL-padded */
} trc_npy_dtype;

/* One array, data owned (malloc'd, suitably aligned, little-endian as in the file). */
typedef struct trc_npy_array {
    trc_npy_dtype dtype;
    size_t itemsize; /* bytes per element (4 n for strings) */
    int ndim;        /* 0 for a scalar */
    int64_t shape[TRC_NPY_MAX_DIMS];
    size_t numel;
    size_t nbytes;
    void *data;
} trc_npy_array;

/* Parses a whole .npy file image (header + data) and copies the data. */
int trc_npy_parse(const uint8_t *buf, size_t len, trc_npy_array *out);
void trc_npy_free(trc_npy_array *a);
/* Numeric conversion of every element (F32, F64, I32, I64); dst holds a->numel values.
 * TRC_EUNSUPPORTED for strings. Non-finite values are copied as they are. */
int trc_npy_to_f32(const trc_npy_array *a, float *dst);
int trc_npy_to_f64(const trc_npy_array *a, double *dst);
/* Element `index` of a string array as a malloc'd UTF-8 string (trailing NULs dropped). */
int trc_npy_string(const trc_npy_array *a, size_t index, char **utf8);
/* Writes the NumPy spelling of the array's shape ("()", "(5,)", "(4, 15, 1)") into buf. */
void trc_npy_shape_str(const trc_npy_array *a, char *buf, size_t size);
/* NumPy's name of the dtype ("<f4", "<U12"), into buf. */
void trc_npy_dtype_str(const trc_npy_array *a, char *buf, size_t size);

/* An open archive. Not thread-safe: one thread reads a given trc_npz at a time. */
typedef struct trc_npz trc_npz;

/* Opens a file (the archive's central directory is checked for consistency). */
int trc_npz_open(const char *path, trc_npz **out);
/* Opens an in-memory archive (copied); `name` is used in error messages. */
int trc_npz_open_mem(const uint8_t *buf, size_t len, const char *name, trc_npz **out);
void trc_npz_close(trc_npz *z);
/* Keys are entry names without the ".npy" suffix, in archive order. */
size_t trc_npz_count(const trc_npz *z);
const char *trc_npz_key(const trc_npz *z, size_t i);
int trc_npz_has(const trc_npz *z, const char *key);
/* Reads and validates one array (its CRC included). TRC_ENOTFOUND when the key is absent.
 * Error messages read "<file>: key '<key>': <problem>". */
int trc_npz_read(trc_npz *z, const char *key, trc_npy_array *out);

/* One array to write. For TRC_NPY_STR, `data` is a NUL-terminated UTF-8 string written as a
 * 0-d '<U<n>' array (ndim must be 0), which numpy.load reads without allow_pickle. */
typedef struct trc_npz_item {
    const char *key;
    trc_npy_dtype dtype;
    int ndim;
    int64_t shape[TRC_NPY_MAX_DIMS];
    const void *data;
} trc_npz_item;

/* Encodes one .npy image (version 1.0 header padded to 64 bytes, as numpy writes it). */
int trc_npy_encode(const trc_npz_item *item, uint8_t **buf, size_t *len);
/* Writes an uncompressed archive like numpy.savez, atomically: a temporary file beside `path`
 * is filled, fsync'ed and renamed over it, so `path` is either the old file or the whole new
 * one. Entry times are fixed so the same arrays give the same bytes. */
int trc_npz_write(const char *path, const trc_npz_item *items, size_t count);

#endif
