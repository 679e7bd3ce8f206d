/* libFuzzer harness for the .npy reader (trc_npy_parse: header dictionary, dtype, shape,
 * Fortran order). Run through `make fuzz` (tests/fuzz/README.md).
 *
 * A parsed array must be self-consistent (numel = product of the shape, nbytes = numel *
 * itemsize), convert to float32/float64 (numeric) or UTF-8 (strings), print its shape and
 * dtype, and a numeric one must re-encode (C order) into a file that parses to the same bytes.
 * A refused file carries a format error code. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "trc/error.h"
#include "trc/npz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_CONVERT (1u << 20) /* elements converted per input */

static void check_numeric(const trc_npy_array *a) {
    float *f = malloc(a->numel * sizeof *f + 1);
    double *d = malloc(a->numel * sizeof *d + 1);
    if (!f || !d || trc_npy_to_f32(a, f) != TRC_OK || trc_npy_to_f64(a, d) != TRC_OK)
        abort();
    free(f);
    free(d);
    trc_npz_item it = {.key = "a", .dtype = a->dtype, .ndim = a->ndim, .data = a->data};
    memcpy(it.shape, a->shape, sizeof it.shape);
    uint8_t *buf;
    size_t len;
    trc_npy_array b;
    if (trc_npy_encode(&it, &buf, &len) != TRC_OK || trc_npy_parse(buf, len, &b) != TRC_OK)
        abort();
    if (b.dtype != a->dtype || b.ndim != a->ndim || b.nbytes != a->nbytes ||
        memcmp(b.shape, a->shape, sizeof b.shape) || memcmp(b.data, a->data, a->nbytes))
        abort();
    trc_npy_free(&b);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    trc_npy_array a;
    int rc = trc_npy_parse(data, size, &a);
    if (rc != TRC_OK) {
        if (rc != TRC_EFORMAT && rc != TRC_EUNSUPPORTED && rc != TRC_ENOMEM)
            abort();
        return 0;
    }
    size_t numel = 1;
    for (int i = 0; i < a.ndim; i++)
        numel *= (size_t)a.shape[i];
    if (a.ndim < 0 || a.ndim > TRC_NPY_MAX_DIMS || numel != a.numel ||
        a.nbytes != a.numel * a.itemsize || !a.data)
        abort();
    char sh[256], dt[32];
    trc_npy_shape_str(&a, sh, sizeof sh);
    trc_npy_dtype_str(&a, dt, sizeof dt);
    if (!sh[0] || !dt[0])
        abort();
    if (a.numel <= MAX_CONVERT) {
        if (a.dtype == TRC_NPY_STR) {
            for (size_t i = 0; i < a.numel && i < 64; i++) {
                char *s = NULL;
                rc = trc_npy_string(&a, i, &s);
                if (rc != TRC_OK && rc != TRC_EFORMAT) /* EFORMAT: not a code point */
                    abort();
                free(s);
            }
        } else {
            check_numeric(&a);
        }
    }
    trc_npy_free(&a);
    return 0;
}
