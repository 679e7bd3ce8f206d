/* .npy parsing/encoding and .npz archives through libzip; see npz.h. Byte order: the data is
 * little-endian in the file and is used in place, so this file assumes a little-endian host. */
#include "trc/npz.h"
#include "trc/error.h"
#include "trc/fileio.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zip.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "npz.c assumes a little-endian host");

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAX_STR_CHARS (1u << 24)
#define NPZ_MAX_ENTRY ((uint64_t)1 << 36) /* 64 GiB: larger entries are taken as corrupt */

/* ------------------------------------------------------------------ header parsing */

typedef struct hparser {
    const char *p, *end;
} hparser;

static void skip_ws(hparser *h) {
    while (h->p < h->end && (*h->p == ' ' || *h->p == '\t' || *h->p == '\n' || *h->p == '\r'))
        h->p++;
}

static int expect(hparser *h, char c) {
    skip_ws(h);
    if (h->p >= h->end || *h->p != c)
        return trc_fail(TRC_EFORMAT, "bad .npy header: expected '%c'", c);
    h->p++;
    return TRC_OK;
}

/* A Python string literal in single or double quotes (no escapes are needed by numpy). */
static int parse_str(hparser *h, char *out, size_t size) {
    skip_ws(h);
    if (h->p >= h->end || (*h->p != '\'' && *h->p != '"'))
        return trc_fail(TRC_EFORMAT, "bad .npy header: expected a string");
    char q = *h->p++;
    size_t n = 0;
    while (h->p < h->end && *h->p != q) {
        if (*h->p == '\\' || n + 1 >= size)
            return trc_fail(TRC_EFORMAT, "bad .npy header: unsupported or overlong string");
        out[n++] = *h->p++;
    }
    if (h->p >= h->end)
        return trc_fail(TRC_EFORMAT, "bad .npy header: unterminated string");
    h->p++;
    out[n] = 0;
    return TRC_OK;
}

static int parse_bool(hparser *h, int *out) {
    skip_ws(h);
    size_t left = (size_t)(h->end - h->p);
    if (left >= 4 && memcmp(h->p, "True", 4) == 0) {
        h->p += 4;
        *out = 1;
    } else if (left >= 5 && memcmp(h->p, "False", 5) == 0) {
        h->p += 5;
        *out = 0;
    } else {
        return trc_fail(TRC_EFORMAT, "bad .npy header: fortran_order must be True or False");
    }
    return TRC_OK;
}

/* "()", "(5,)", "(4, 15, 1)" (a trailing comma and Python 2 "L" suffixes allowed). */
static int parse_shape(hparser *h, int *ndim, int64_t *shape) {
    int rc = expect(h, '(');
    if (rc)
        return rc;
    *ndim = 0;
    for (;;) {
        skip_ws(h);
        if (h->p < h->end && *h->p == ')') {
            h->p++;
            return TRC_OK;
        }
        if (h->p >= h->end || *h->p < '0' || *h->p > '9')
            return trc_fail(TRC_EFORMAT, "bad .npy header: shape must hold non-negative integers");
        int64_t v = 0;
        while (h->p < h->end && *h->p >= '0' && *h->p <= '9') {
            if (v > (INT64_MAX - 9) / 10)
                return trc_fail(TRC_EFORMAT, "bad .npy header: shape entry too large");
            v = v * 10 + (*h->p++ - '0');
        }
        if (h->p < h->end && *h->p == 'L')
            h->p++;
        if (*ndim >= TRC_NPY_MAX_DIMS)
            return trc_fail(TRC_EUNSUPPORTED, "more than %d dimensions", TRC_NPY_MAX_DIMS);
        shape[(*ndim)++] = v;
        skip_ws(h);
        if (h->p < h->end && *h->p == ',') {
            h->p++;
            continue;
        }
        if (h->p < h->end && *h->p == ')') {
            h->p++;
            return TRC_OK;
        }
        return trc_fail(TRC_EFORMAT, "bad .npy header: malformed shape tuple");
    }
}

static int parse_descr(const char *d, trc_npy_dtype *dtype, size_t *itemsize) {
    const char *supported = "supported: <f4, <f8, <i4, <i8, <U";
    char order = d[0];
    const char *t = d + 1;
    if (order != '<' && order != '|' && order != '>' && order != '=')
        return trc_fail(TRC_EUNSUPPORTED, "unsupported dtype '%s' (%s)", d, supported);
    if (order == '>' && strcmp(t, "f1") != 0)
        return trc_fail(TRC_EUNSUPPORTED, "big-endian dtype '%s' is not supported (%s)", d,
                        supported);
    /* '=' is the writer's native order; numpy writes '<' or '>' explicitly, so '=' only comes
     * from hand-made files and is read as little-endian like the host. */
    if (strcmp(t, "f4") == 0)
        *dtype = TRC_NPY_F32, *itemsize = 4;
    else if (strcmp(t, "f8") == 0)
        *dtype = TRC_NPY_F64, *itemsize = 8;
    else if (strcmp(t, "i4") == 0)
        *dtype = TRC_NPY_I32, *itemsize = 4;
    else if (strcmp(t, "i8") == 0)
        *dtype = TRC_NPY_I64, *itemsize = 8;
    else if (t[0] == 'U' && t[1] >= '1' && t[1] <= '9') {
        char *end;
        errno = 0;
        unsigned long n = strtoul(t + 1, &end, 10);
        if (*end || errno || n == 0 || n > NPY_MAX_STR_CHARS)
            return trc_fail(TRC_EUNSUPPORTED, "unsupported dtype '%s' (%s)", d, supported);
        *dtype = TRC_NPY_STR, *itemsize = 4 * (size_t)n;
    } else {
        return trc_fail(TRC_EUNSUPPORTED, "unsupported dtype '%s' (%s)", d, supported);
    }
    if (order == '|' && *itemsize > 1)
        return trc_fail(TRC_EUNSUPPORTED, "unsupported dtype '%s' (%s)", d, supported);
    return TRC_OK;
}

static int shape_numel(int ndim, const int64_t *shape, size_t *numel) {
    size_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || (uint64_t)shape[i] > SIZE_MAX ||
            (shape[i] > 0 && n > SIZE_MAX / (size_t)shape[i]))
            return trc_fail(TRC_EFORMAT, "shape too large");
        n *= (size_t)shape[i];
    }
    *numel = n;
    return TRC_OK;
}

void trc_npy_shape_str(const trc_npy_array *a, char *buf, size_t size) {
    size_t n = 0;
    if (size == 0)
        return;
    buf[0] = 0;
    n += (size_t)snprintf(buf + n, n < size ? size - n : 0, "(");
    for (int i = 0; i < a->ndim && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, "%s%lld", i ? ", " : "", (long long)a->shape[i]);
    if (n < size)
        snprintf(buf + n, size - n, a->ndim == 1 ? ",)" : ")");
}

void trc_npy_dtype_str(const trc_npy_array *a, char *buf, size_t size) {
    switch (a->dtype) {
    case TRC_NPY_F32:
        snprintf(buf, size, "<f4");
        break;
    case TRC_NPY_F64:
        snprintf(buf, size, "<f8");
        break;
    case TRC_NPY_I32:
        snprintf(buf, size, "<i4");
        break;
    case TRC_NPY_I64:
        snprintf(buf, size, "<i8");
        break;
    case TRC_NPY_STR:
        snprintf(buf, size, "<U%zu", a->itemsize / 4);
        break;
    }
}

/* Copies column-major (Fortran order) data into a->data in row-major order: walks the C-order
 * index like an odometer and keeps the matching column-major offset. */
static void fortran_to_c(trc_npy_array *a, const uint8_t *src) {
    int64_t idx[TRC_NPY_MAX_DIMS] = {0}, stride[TRC_NPY_MAX_DIMS];
    int64_t st = 1;
    for (int d = 0; d < a->ndim; d++) {
        stride[d] = st;
        st *= a->shape[d];
    }
    uint8_t *dst = a->data;
    size_t off = 0; /* column-major element offset of idx */
    for (size_t i = 0; i < a->numel; i++) {
        memcpy(dst + i * a->itemsize, src + off * a->itemsize, a->itemsize);
        for (int d = a->ndim - 1; d >= 0; d--) {
            if (++idx[d] < a->shape[d]) {
                off += (size_t)stride[d];
                break;
            }
            off -= (size_t)(stride[d] * (a->shape[d] - 1));
            idx[d] = 0;
        }
    }
}

int trc_npy_parse(const uint8_t *buf, size_t len, trc_npy_array *out) {
    memset(out, 0, sizeof *out);
    if (len < 10 || memcmp(buf, NPY_MAGIC, 6) != 0)
        return trc_fail(TRC_EFORMAT, "not a .npy array (bad magic)");
    int major = buf[6], minor = buf[7];
    size_t hstart, hlen;
    if (major == 1) {
        hstart = 10;
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8;
    } else if (major == 2 || major == 3) {
        if (len < 12)
            return trc_fail(TRC_EFORMAT, "truncated .npy header");
        hstart = 12;
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
    } else {
        return trc_fail(TRC_EUNSUPPORTED, "unsupported .npy format version %d.%d", major, minor);
    }
    if (minor != 0)
        return trc_fail(TRC_EUNSUPPORTED, "unsupported .npy format version %d.%d", major, minor);
    if (hlen > len - hstart)
        return trc_fail(TRC_EFORMAT, "truncated .npy header (%zu bytes declared, %zu present)",
                        hlen, len - hstart);
    const char *ht = (const char *)buf + hstart;
    for (size_t i = 0; i < hlen; i++) {
        unsigned char c = (unsigned char)ht[i];
        if (c == 0 || (c >= 0x80 && major < 3))
            return trc_fail(TRC_EFORMAT, "bad .npy header: non-ASCII byte");
    }
    hparser h = {ht, ht + hlen};
    char descr[64] = "", key[32];
    int have_descr = 0, have_fortran = 0, have_shape = 0, fortran = 0, rc;
    int ndim = 0;
    int64_t shape[TRC_NPY_MAX_DIMS] = {0};
    if ((rc = expect(&h, '{')))
        return rc;
    for (;;) {
        skip_ws(&h);
        if (h.p < h.end && *h.p == '}') {
            h.p++;
            break;
        }
        if ((rc = parse_str(&h, key, sizeof key)) || (rc = expect(&h, ':')))
            return rc;
        if (strcmp(key, "descr") == 0 && !have_descr) {
            have_descr = 1;
            rc = parse_str(&h, descr, sizeof descr);
            if (rc) /* a list here is a structured dtype */
                return trc_fail(TRC_EUNSUPPORTED, "structured dtypes are not supported");
        } else if (strcmp(key, "fortran_order") == 0 && !have_fortran) {
            have_fortran = 1;
            rc = parse_bool(&h, &fortran);
        } else if (strcmp(key, "shape") == 0 && !have_shape) {
            have_shape = 1;
            rc = parse_shape(&h, &ndim, shape);
        } else {
            return trc_fail(TRC_EFORMAT, "bad .npy header: unexpected or repeated key '%s'", key);
        }
        if (rc)
            return rc;
        skip_ws(&h);
        if (h.p < h.end && *h.p == ',') {
            h.p++;
            continue;
        }
        if ((rc = expect(&h, '}')))
            return rc;
        break;
    }
    skip_ws(&h);
    if (h.p != h.end)
        return trc_fail(TRC_EFORMAT, "bad .npy header: trailing characters");
    if (!have_descr || !have_fortran || !have_shape)
        return trc_fail(TRC_EFORMAT, "bad .npy header: needs descr, fortran_order and shape");
    trc_npy_array a = {0};
    if ((rc = parse_descr(descr, &a.dtype, &a.itemsize)))
        return rc;
    a.ndim = ndim;
    memcpy(a.shape, shape, sizeof shape);
    if ((rc = shape_numel(ndim, shape, &a.numel)))
        return rc;
    if (a.numel > SIZE_MAX / a.itemsize)
        return trc_fail(TRC_EFORMAT, "shape too large");
    a.nbytes = a.numel * a.itemsize;
    size_t have = len - hstart - hlen;
    if (have != a.nbytes) {
        char sh[160], dt[16];
        trc_npy_shape_str(&a, sh, sizeof sh);
        trc_npy_dtype_str(&a, dt, sizeof dt);
        return trc_fail(TRC_EFORMAT, "shape %s of %s needs %zu data bytes, found %zu%s", sh, dt,
                        a.nbytes, have, have < a.nbytes ? " (truncated)" : "");
    }
    a.data = malloc(a.nbytes ? a.nbytes : 1);
    if (!a.data)
        return trc_fail(TRC_ENOMEM, "cannot allocate %zu bytes", a.nbytes);
    if (fortran && ndim > 1 && a.numel > 0)
        fortran_to_c(&a, buf + hstart + hlen);
    else
        memcpy(a.data, buf + hstart + hlen, a.nbytes);
    *out = a;
    return TRC_OK;
}

void trc_npy_free(trc_npy_array *a) {
    if (!a)
        return;
    free(a->data);
    memset(a, 0, sizeof *a);
}

int trc_npy_to_f32(const trc_npy_array *a, float *dst) {
    const uint8_t *p = a->data;
    for (size_t i = 0; i < a->numel; i++) {
        switch (a->dtype) {
        case TRC_NPY_F32:
            memcpy(&dst[i], p + 4 * i, 4);
            break;
        case TRC_NPY_F64: {
            double v;
            memcpy(&v, p + 8 * i, 8);
            dst[i] = (float)v;
            break;
        }
        case TRC_NPY_I32: {
            int32_t v;
            memcpy(&v, p + 4 * i, 4);
            dst[i] = (float)v;
            break;
        }
        case TRC_NPY_I64: {
            int64_t v;
            memcpy(&v, p + 8 * i, 8);
            dst[i] = (float)v;
            break;
        }
        case TRC_NPY_STR:
            return trc_fail(TRC_EUNSUPPORTED, "a string array is not numeric");
        }
    }
    return TRC_OK;
}

int trc_npy_to_f64(const trc_npy_array *a, double *dst) {
    const uint8_t *p = a->data;
    for (size_t i = 0; i < a->numel; i++) {
        switch (a->dtype) {
        case TRC_NPY_F32: {
            float v;
            memcpy(&v, p + 4 * i, 4);
            dst[i] = v;
            break;
        }
        case TRC_NPY_F64:
            memcpy(&dst[i], p + 8 * i, 8);
            break;
        case TRC_NPY_I32: {
            int32_t v;
            memcpy(&v, p + 4 * i, 4);
            dst[i] = v;
            break;
        }
        case TRC_NPY_I64: {
            int64_t v;
            memcpy(&v, p + 8 * i, 8);
            dst[i] = (double)v;
            break;
        }
        case TRC_NPY_STR:
            return trc_fail(TRC_EUNSUPPORTED, "a string array is not numeric");
        }
    }
    return TRC_OK;
}

int trc_npy_string(const trc_npy_array *a, size_t index, char **utf8) {
    *utf8 = NULL;
    if (a->dtype != TRC_NPY_STR)
        return trc_fail(TRC_EUNSUPPORTED, "not a string array");
    if (index >= a->numel)
        return trc_fail(TRC_EINVAL, "string index %zu out of range (%zu elements)", index,
                        a->numel);
    size_t nch = a->itemsize / 4;
    const uint8_t *p = (const uint8_t *)a->data + index * a->itemsize;
    while (nch > 0) { /* numpy drops trailing NULs */
        uint32_t c;
        memcpy(&c, p + 4 * (nch - 1), 4);
        if (c != 0)
            break;
        nch--;
    }
    char *s = malloc(4 * nch + 1), *o = s;
    if (!s)
        return trc_fail(TRC_ENOMEM, "cannot allocate a string");
    for (size_t i = 0; i < nch; i++) {
        uint32_t c;
        memcpy(&c, p + 4 * i, 4);
        if (c == 0 || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) {
            free(s);
            return trc_fail(TRC_EFORMAT, "string holds an invalid code point U+%04X", c);
        }
        if (c < 0x80) {
            *o++ = (char)c;
        } else if (c < 0x800) {
            *o++ = (char)(0xC0 | c >> 6);
            *o++ = (char)(0x80 | (c & 0x3F));
        } else if (c < 0x10000) {
            *o++ = (char)(0xE0 | c >> 12);
            *o++ = (char)(0x80 | (c >> 6 & 0x3F));
            *o++ = (char)(0x80 | (c & 0x3F));
        } else {
            *o++ = (char)(0xF0 | c >> 18);
            *o++ = (char)(0x80 | (c >> 12 & 0x3F));
            *o++ = (char)(0x80 | (c >> 6 & 0x3F));
            *o++ = (char)(0x80 | (c & 0x3F));
        }
    }
    *o = 0;
    *utf8 = s;
    return TRC_OK;
}

/* ------------------------------------------------------------------ encoding */

/* UTF-8 -> code points; returns the count or -1 on invalid input. cps may be NULL (count). */
static long utf8_decode(const char *s, uint32_t *cps) {
    const unsigned char *p = (const unsigned char *)s;
    long n = 0;
    while (*p) {
        uint32_t c;
        int extra;
        if (*p < 0x80)
            c = *p, extra = 0;
        else if ((*p & 0xE0) == 0xC0)
            c = *p & 0x1F, extra = 1;
        else if ((*p & 0xF0) == 0xE0)
            c = *p & 0x0F, extra = 2;
        else if ((*p & 0xF8) == 0xF0)
            c = *p & 0x07, extra = 3;
        else
            return -1;
        p++;
        for (int i = 0; i < extra; i++, p++) {
            if ((*p & 0xC0) != 0x80)
                return -1;
            c = c << 6 | (*p & 0x3F);
        }
        static const uint32_t min[4] = {0, 0x80, 0x800, 0x10000};
        if (c < min[extra] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
            return -1;
        if (cps)
            cps[n] = c;
        n++;
    }
    return n;
}

int trc_npy_encode(const trc_npz_item *it, uint8_t **buf, size_t *len) {
    *buf = NULL;
    *len = 0;
    if (it->ndim < 0 || it->ndim > TRC_NPY_MAX_DIMS)
        return trc_fail(TRC_EINVAL, "array '%s': bad number of dimensions %d", it->key, it->ndim);
    trc_npy_array a = {.dtype = it->dtype, .ndim = it->ndim};
    memcpy(a.shape, it->shape, sizeof a.shape);
    uint32_t *cps = NULL;
    long nch = 0;
    int rc;
    switch (it->dtype) {
    case TRC_NPY_F32:
    case TRC_NPY_I32:
        a.itemsize = 4;
        break;
    case TRC_NPY_F64:
    case TRC_NPY_I64:
        a.itemsize = 8;
        break;
    case TRC_NPY_STR:
        if (it->ndim != 0 || !it->data)
            return trc_fail(TRC_EINVAL, "array '%s': strings are written as 0-d arrays", it->key);
        nch = utf8_decode(it->data, NULL);
        if (nch < 0)
            return trc_fail(TRC_EINVAL, "array '%s': invalid UTF-8", it->key);
        if ((unsigned long)nch > NPY_MAX_STR_CHARS)
            return trc_fail(TRC_EINVAL, "array '%s': string too long", it->key);
        a.itemsize = 4 * (size_t)(nch ? nch : 1);
        break;
    default:
        return trc_fail(TRC_EINVAL, "array '%s': unknown dtype", it->key);
    }
    if ((rc = shape_numel(a.ndim, a.shape, &a.numel)))
        return trc_fail_prefix(rc, "array '%s': ", it->key);
    if (a.numel > SIZE_MAX / a.itemsize / 2)
        return trc_fail(TRC_EINVAL, "array '%s': too large", it->key);
    a.nbytes = a.numel * a.itemsize;
    if (a.nbytes && !it->data)
        return trc_fail(TRC_EINVAL, "array '%s': no data", it->key);
    char sh[200], dt[32], head[512];
    trc_npy_shape_str(&a, sh, sizeof sh);
    trc_npy_dtype_str(&a, dt, sizeof dt);
    int hn = snprintf(head, sizeof head, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
                      dt, sh);
    /* magic(6) + version(2) + u16 length + header, padded with spaces to a multiple of 64,
     * ending in '\n' (what numpy >= 1.9 writes). */
    size_t total = 10 + (size_t)hn + 1;
    size_t padded = (total + 63) / 64 * 64;
    size_t hlen = padded - 10;
    uint8_t *out = malloc(padded + a.nbytes);
    if (!out)
        return trc_fail(TRC_ENOMEM, "array '%s': cannot allocate %zu bytes", it->key,
                        padded + a.nbytes);
    memcpy(out, NPY_MAGIC, 6);
    out[6] = 1, out[7] = 0;
    out[8] = (uint8_t)(hlen & 0xFF), out[9] = (uint8_t)(hlen >> 8);
    memcpy(out + 10, head, (size_t)hn);
    memset(out + 10 + hn, ' ', hlen - (size_t)hn - 1);
    out[padded - 1] = '\n';
    if (it->dtype == TRC_NPY_STR) {
        cps = calloc((size_t)(nch ? nch : 1), sizeof *cps);
        if (!cps) {
            free(out);
            return trc_fail(TRC_ENOMEM, "array '%s': cannot allocate", it->key);
        }
        utf8_decode(it->data, cps);
        memcpy(out + padded, cps, a.nbytes); /* little-endian host: u32 = UTF-32LE */
        free(cps);
    } else if (a.nbytes) {
        memcpy(out + padded, it->data, a.nbytes);
    }
    *buf = out;
    *len = padded + a.nbytes;
    return TRC_OK;
}

/* ------------------------------------------------------------------ archives */

struct trc_npz {
    zip_t *za;
    zip_source_t *src; /* for in-memory archives */
    char *name;
    size_t count;
    char **keys; /* without ".npy" */
    zip_uint64_t *index;
};

void trc_npz_close(trc_npz *z) {
    if (!z)
        return;
    if (z->za)
        zip_discard(z->za);
    for (size_t i = 0; i < z->count; i++)
        free(z->keys[i]);
    free(z->keys);
    free(z->index);
    free(z->name);
    free(z);
}

static int zip_err_fail(const char *name, int code) {
    zip_error_t ze;
    zip_error_init_with_code(&ze, code);
    int rc =
        trc_fail(TRC_EFORMAT, "%s: not a valid .npz archive (%s)", name, zip_error_strerror(&ze));
    zip_error_fini(&ze);
    return rc;
}

/* Lists the entries of an opened archive. */
static int npz_index(trc_npz *z) {
    zip_int64_t n = zip_get_num_entries(z->za, 0);
    if (n < 0)
        return trc_fail(TRC_EFORMAT, "%s: cannot list the archive", z->name);
    z->keys = calloc((size_t)n + 1, sizeof *z->keys);
    z->index = calloc((size_t)n + 1, sizeof *z->index);
    if (!z->keys || !z->index)
        return trc_fail(TRC_ENOMEM, "%s: cannot allocate the index", z->name);
    for (zip_int64_t i = 0; i < n; i++) {
        const char *nm = zip_get_name(z->za, (zip_uint64_t)i, ZIP_FL_ENC_GUESS);
        if (!nm)
            return trc_fail(TRC_EFORMAT, "%s: entry %lld has no name", z->name, (long long)i);
        size_t len = strlen(nm);
        if (len == 0 || nm[len - 1] == '/')
            continue; /* directories */
        if (len > 4 && strcmp(nm + len - 4, ".npy") == 0)
            len -= 4;
        char *k = strndup(nm, len);
        if (!k)
            return trc_fail(TRC_ENOMEM, "%s: cannot allocate the index", z->name);
        for (size_t j = 0; j < z->count; j++)
            if (strcmp(z->keys[j], k) == 0) {
                free(k);
                return trc_fail(TRC_EFORMAT, "%s: key '%s' appears twice", z->name, nm);
            }
        z->keys[z->count] = k;
        z->index[z->count] = (zip_uint64_t)i;
        z->count++;
    }
    return TRC_OK;
}

int trc_npz_open(const char *path, trc_npz **out) {
    *out = NULL;
    int fd, rc = trc_open_regular(path, &fd, NULL);
    if (rc)
        return rc;
    trc_npz *z = calloc(1, sizeof *z);
    if (!z || !(z->name = strdup(path))) {
        free(z);
        close(fd);
        return trc_fail(TRC_ENOMEM, "%s: out of memory", path);
    }
    int err = 0;
    z->za = zip_fdopen(fd, ZIP_CHECKCONS, &err); /* takes fd on success */
    if (!z->za) {
        close(fd);
        rc = zip_err_fail(path, err);
        trc_npz_close(z);
        return rc;
    }
    rc = npz_index(z);
    if (rc) {
        trc_npz_close(z);
        return rc;
    }
    *out = z;
    return TRC_OK;
}

int trc_npz_open_mem(const uint8_t *buf, size_t len, const char *name, trc_npz **out) {
    *out = NULL;
    /* libzip's buffer source does not take (and so never frees) an empty buffer. */
    if (len == 0)
        return trc_fail(TRC_EFORMAT, "%s: not a valid .npz archive (empty)",
                        name ? name : "(memory)");
    trc_npz *z = calloc(1, sizeof *z);
    void *copy = malloc(len ? len : 1);
    if (!z || !copy || !(z->name = strdup(name ? name : "(memory)"))) {
        free(copy);
        trc_npz_close(z);
        return trc_fail(TRC_ENOMEM, "npz: out of memory");
    }
    memcpy(copy, buf, len);
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(copy, len, 1, &ze); /* frees copy */
    if (!src) {
        free(copy);
        zip_error_fini(&ze);
        trc_npz_close(z);
        return trc_fail(TRC_ENOMEM, "npz: cannot create a buffer source");
    }
    z->za = zip_open_from_source(src, ZIP_CHECKCONS | ZIP_RDONLY, &ze);
    if (!z->za) {
        int rc = trc_fail(TRC_EFORMAT, "%s: not a valid .npz archive (%s)", z->name,
                          zip_error_strerror(&ze));
        zip_source_free(src);
        zip_error_fini(&ze);
        trc_npz_close(z);
        return rc;
    }
    zip_error_fini(&ze);
    int rc = npz_index(z);
    if (rc) {
        trc_npz_close(z);
        return rc;
    }
    *out = z;
    return TRC_OK;
}

size_t trc_npz_count(const trc_npz *z) {
    return z->count;
}

const char *trc_npz_key(const trc_npz *z, size_t i) {
    return i < z->count ? z->keys[i] : NULL;
}

static long find_key(const trc_npz *z, const char *key) {
    for (size_t i = 0; i < z->count; i++)
        if (strcmp(z->keys[i], key) == 0)
            return (long)i;
    return -1;
}

int trc_npz_has(const trc_npz *z, const char *key) {
    return find_key(z, key) >= 0;
}

int trc_npz_read(trc_npz *z, const char *key, trc_npy_array *out) {
    memset(out, 0, sizeof *out);
    long k = find_key(z, key);
    if (k < 0)
        return trc_fail(TRC_ENOTFOUND, "%s: missing key '%s'", z->name, key);
    zip_uint64_t idx = z->index[k];
    zip_stat_t st;
    if (zip_stat_index(z->za, idx, 0, &st) != 0 || !(st.valid & ZIP_STAT_SIZE))
        return trc_fail(TRC_EFORMAT, "%s: key '%s': cannot stat the entry (%s)", z->name, key,
                        zip_strerror(z->za));
    if (st.size > NPZ_MAX_ENTRY || st.size > SIZE_MAX - 1)
        return trc_fail(TRC_EFORMAT, "%s: key '%s': implausible entry size %llu", z->name, key,
                        (unsigned long long)st.size);
    size_t size = (size_t)st.size;
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return trc_fail(TRC_ENOMEM, "%s: key '%s': cannot allocate %zu bytes", z->name, key, size);
    zip_file_t *f = zip_fopen_index(z->za, idx, 0);
    if (!f) {
        free(buf);
        return trc_fail(TRC_EFORMAT, "%s: key '%s': cannot open the entry (%s)", z->name, key,
                        zip_strerror(z->za));
    }
    size_t got = 0;
    int rc = TRC_OK;
    while (got < size) {
        zip_int64_t r = zip_fread(f, buf + got, size - got);
        if (r < 0) {
            rc = trc_fail(TRC_EFORMAT, "%s: key '%s': corrupt entry (%s)", z->name, key,
                          zip_file_strerror(f));
            break;
        }
        if (r == 0) {
            rc = trc_fail(TRC_EFORMAT, "%s: key '%s': entry truncated (%zu of %zu bytes)", z->name,
                          key, got, size);
            break;
        }
        got += (size_t)r;
    }
    if (rc == TRC_OK) {
        uint8_t extra;
        zip_int64_t r = zip_fread(f, &extra, 1); /* reaching the end checks the CRC */
        if (r < 0)
            rc = trc_fail(TRC_EFORMAT, "%s: key '%s': corrupt entry (%s)", z->name, key,
                          zip_file_strerror(f));
        else if (r > 0)
            rc = trc_fail(TRC_EFORMAT, "%s: key '%s': entry longer than declared", z->name, key);
    }
    zip_fclose(f);
    if (rc == TRC_OK) {
        rc = trc_npy_parse(buf, size, out);
        if (rc)
            trc_fail_prefix(rc, "%s: key '%s': ", z->name, key);
    }
    free(buf);
    return rc;
}

int trc_npz_write(const char *path, const trc_npz_item *items, size_t count) {
    char tmp[4200];
    /* Create the temporary ourselves first: a clear errno for a missing directory or a
     * read-only place, before any work is done. */
    int fd, rc = trc_create_tmp(path, tmp, sizeof tmp, &fd);
    if (rc)
        return rc;
    close(fd);
    int err = 0;
    zip_t *za = zip_open(tmp, ZIP_CREATE | ZIP_TRUNCATE, &err);
    if (!za) {
        zip_error_t ze;
        zip_error_init_with_code(&ze, err);
        rc = trc_fail(TRC_EIO, "%s: cannot create the archive: %s", path, zip_error_strerror(&ze));
        zip_error_fini(&ze);
        unlink(tmp);
        return rc;
    }
    for (size_t i = 0; i < count && rc == TRC_OK; i++) {
        uint8_t *buf;
        size_t len;
        char entry[300];
        if (!items[i].key || !items[i].key[0] || strlen(items[i].key) > 255 ||
            strchr(items[i].key, '/')) {
            rc = trc_fail(TRC_EINVAL, "%s: bad key", path);
            break;
        }
        snprintf(entry, sizeof entry, "%s.npy", items[i].key);
        if ((rc = trc_npy_encode(&items[i], &buf, &len))) {
            trc_fail_prefix(rc, "%s: ", path);
            break;
        }
        zip_source_t *src = zip_source_buffer(za, buf, len, 1); /* libzip frees buf */
        if (!src) {
            free(buf);
            rc = trc_fail(TRC_ENOMEM, "%s: %s", path, zip_strerror(za));
            break;
        }
        zip_int64_t idx = zip_file_add(za, entry, src, ZIP_FL_ENC_UTF_8);
        if (idx < 0) {
            zip_source_free(src);
            rc = trc_fail(TRC_EINVAL, "%s: key '%s': %s", path, items[i].key, zip_strerror(za));
            break;
        }
        /* stored like numpy.savez; a fixed time makes the bytes reproducible */
        if (zip_set_file_compression(za, (zip_uint64_t)idx, ZIP_CM_STORE, 0) != 0 ||
            zip_file_set_mtime(za, (zip_uint64_t)idx, (time_t)1577880000, 0) != 0)
            rc = trc_fail(TRC_EIO, "%s: %s", path, zip_strerror(za));
    }
    if (rc != TRC_OK) {
        zip_discard(za);
        unlink(tmp);
        return rc;
    }
    if (zip_close(za) != 0) {
        rc = trc_fail(TRC_EIO, "%s: write failed: %s", path, zip_strerror(za));
        zip_discard(za);
        unlink(tmp);
        return rc;
    }
    return trc_commit_file(tmp, path);
}
