/* Status codes and per-thread error messages shared by every libtrc function.
 * A function returns 0 on success or a negative TRC_E* code; the detail of the
 * last failure on the calling thread is available from trc_errmsg(). */
#ifndef TRC_ERROR_H
#define TRC_ERROR_H

enum trc_status {
    TRC_OK = 0,
    TRC_EINVAL = -1,       /* invalid argument or setting */
    TRC_ENOMEM = -2,       /* allocation failed */
    TRC_EIO = -3,          /* file could not be opened, read or written */
    TRC_EFORMAT = -4,      /* a file or buffer is malformed */
    TRC_ENOTFOUND = -5,    /* a named thing (key, tensor, system) does not exist */
    TRC_ECANCELED = -6,    /* stopped by a cancel flag */
    TRC_ENUMERIC = -7,     /* a computation produced a non-finite value */
    TRC_EUNSUPPORTED = -8, /* valid but not supported (dtype, version) */
};

/* Generic text for a status code. */
const char *trc_strerror(int status);

/* Detail of the last failure on this thread ("" if none). */
const char *trc_errmsg(void);

/* Records a printf-style detail for this thread and returns status, so that
 * `return trc_fail(TRC_EINVAL, "horizon must be positive, got %d", T);` reads naturally. */
int trc_fail(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prefixes the current detail with more context ("file.npz: " + detail), returns status. */
int trc_fail_prefix(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
