/* The safetensors container (see safetensors.h): a strict parser that validates every rule of
 * the format before exposing a tensor, float conversion of F32/F64/F16/BF16 data, and an
 * encoder/atomic writer laid out like the reference implementation (compact JSON header padded
 * with spaces to a multiple of 8 bytes, tensors in the order given). */
#include "trc/safetensors.h"
#include "trc/error.h"
#include "trc/fileio.h"

#include <float.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c assumes a little-endian host"
#endif

static const struct {
    const char *name;
    trc_st_dtype dtype;
    size_t size;
} dtypes[] = {
    {"F32", TRC_ST_F32, 4},   {"F64", TRC_ST_F64, 8},   {"F16", TRC_ST_F16, 2},
    {"BF16", TRC_ST_BF16, 2}, {"I64", TRC_ST_I64, 8},   {"I32", TRC_ST_I32, 4},
    {"U8", TRC_ST_U8, 1},     {"BOOL", TRC_ST_BOOL, 1},
};
#define NDTYPES (sizeof dtypes / sizeof dtypes[0])

/* Dtypes the reference defines that we recognise but do not read. */
static const char *const known_unsupported[] = {"I8",      "I16",     "U16",     "U32",
                                                "U64",     "F8_E4M3", "F8_E5M2", "F8_E8M0",
                                                "F6_E2M3", "F6_E3M2", "F4",      "C64"};

void trc_st_free(trc_safetensors *st) {
    if (!st)
        return;
    for (size_t i = 0; i < st->count; i++)
        free(st->tensors[i].name);
    for (size_t i = 0; i < st->meta_count; i++) {
        free(st->meta_keys[i]);
        free(st->meta_values[i]);
    }
    free(st->tensors);
    free(st->meta_keys);
    free(st->meta_values);
    free(st->buf);
    memset(st, 0, sizeof *st);
}

/* Parses one header entry `v` for tensor `name` into t (data offsets in begin/end). */
static int parse_entry(const char *name, json_t *v, size_t data_len, trc_st_tensor *t,
                       size_t *begin, size_t *end) {
    if (!json_is_object(v))
        return trc_fail(TRC_EFORMAT, "tensor '%s': header entry is not an object", name);
    const char *key;
    json_t *field;
    json_object_foreach(v, key, field) {
        if (strcmp(key, "dtype") && strcmp(key, "shape") && strcmp(key, "data_offsets"))
            return trc_fail(TRC_EFORMAT, "tensor '%s': unknown field '%s'", name, key);
    }
    json_t *jd = json_object_get(v, "dtype");
    json_t *js = json_object_get(v, "shape");
    json_t *jo = json_object_get(v, "data_offsets");
    if (!json_is_string(jd))
        return trc_fail(TRC_EFORMAT, "tensor '%s': missing or non-string dtype", name);
    if (!json_is_array(js))
        return trc_fail(TRC_EFORMAT, "tensor '%s': missing or non-array shape", name);
    if (!json_is_array(jo))
        return trc_fail(TRC_EFORMAT, "tensor '%s': missing or non-array data_offsets", name);

    const char *ds = json_string_value(jd);
    size_t esize = 0;
    for (size_t i = 0; i < NDTYPES; i++)
        if (!strcmp(ds, dtypes[i].name)) {
            t->dtype = dtypes[i].dtype;
            esize = dtypes[i].size;
        }
    if (!esize) {
        for (size_t i = 0; i < sizeof known_unsupported / sizeof known_unsupported[0]; i++)
            if (!strcmp(ds, known_unsupported[i]))
                return trc_fail(TRC_EUNSUPPORTED, "tensor '%s': unsupported dtype %s", name, ds);
        return trc_fail(TRC_EFORMAT, "tensor '%s': unknown dtype '%s'", name, ds);
    }

    size_t ndim = json_array_size(js);
    if (ndim > TRC_ST_MAX_DIMS)
        return trc_fail(TRC_EUNSUPPORTED, "tensor '%s': %zu dimensions (at most %d supported)",
                        name, ndim, TRC_ST_MAX_DIMS);
    t->ndim = (int)ndim;
    size_t numel = 1;
    for (size_t i = 0; i < ndim; i++) {
        json_t *e = json_array_get(js, i);
        if (!json_is_integer(e) || json_integer_value(e) < 0)
            return trc_fail(TRC_EFORMAT, "tensor '%s': shape[%zu] is not a non-negative integer",
                            name, i);
        json_int_t dim = json_integer_value(e);
        if ((unsigned long long)dim > SIZE_MAX)
            return trc_fail(TRC_EFORMAT, "tensor '%s': shape[%zu] too large", name, i);
        t->shape[i] = (int64_t)dim;
        if (dim != 0 && numel > SIZE_MAX / (size_t)dim)
            return trc_fail(TRC_EFORMAT, "tensor '%s': element count overflows", name);
        numel *= (size_t)dim;
    }
    if (numel > SIZE_MAX / esize)
        return trc_fail(TRC_EFORMAT, "tensor '%s': byte size overflows", name);
    t->numel = numel;
    t->nbytes = numel * esize;

    if (json_array_size(jo) != 2)
        return trc_fail(TRC_EFORMAT, "tensor '%s': data_offsets must have 2 entries", name);
    json_int_t off[2];
    for (size_t i = 0; i < 2; i++) {
        json_t *e = json_array_get(jo, i);
        if (!json_is_integer(e) || json_integer_value(e) < 0)
            return trc_fail(TRC_EFORMAT,
                            "tensor '%s': data_offsets[%zu] is not a non-negative integer", name,
                            i);
        off[i] = json_integer_value(e);
    }
    if (off[0] > off[1])
        return trc_fail(TRC_EFORMAT, "tensor '%s': data_offsets begin %lld > end %lld", name,
                        (long long)off[0], (long long)off[1]);
    if ((unsigned long long)off[1] > data_len)
        return trc_fail(TRC_EFORMAT,
                        "tensor '%s': data_offsets end %lld beyond the data section (%zu bytes)",
                        name, (long long)off[1], data_len);
    *begin = (size_t)off[0];
    *end = (size_t)off[1];
    if (*end - *begin != t->nbytes)
        return trc_fail(TRC_EFORMAT,
                        "tensor '%s': %zu bytes in data_offsets, shape and dtype %s "
                        "need %zu",
                        name, *end - *begin, ds, t->nbytes);
    return TRC_OK;
}

static int parse_metadata(json_t *v, trc_safetensors *st) {
    if (!json_is_object(v))
        return trc_fail(TRC_EFORMAT, "__metadata__ is not an object");
    size_t n = json_object_size(v);
    st->meta_keys = calloc(n ? n : 1, sizeof(char *));
    st->meta_values = calloc(n ? n : 1, sizeof(char *));
    if (!st->meta_keys || !st->meta_values)
        return trc_fail(TRC_ENOMEM, "out of memory for metadata");
    const char *key;
    json_t *val;
    json_object_foreach(v, key, val) {
        if (!json_is_string(val))
            return trc_fail(TRC_EFORMAT, "__metadata__ '%s': value is not a string", key);
        char *k = strdup(key), *s = strdup(json_string_value(val));
        if (!k || !s) {
            free(k);
            free(s);
            return trc_fail(TRC_ENOMEM, "out of memory for metadata");
        }
        st->meta_keys[st->meta_count] = k;
        st->meta_values[st->meta_count] = s;
        st->meta_count++;
    }
    return TRC_OK;
}

typedef struct {
    size_t begin, end, index;
} span;

static int span_cmp(const void *a, const void *b) {
    const span *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return 0;
}

/* The tensors' byte ranges must cover [0, data_len) exactly: no gap, no overlap. */
static int check_tiling(span *sp, size_t n, const trc_safetensors *st, size_t data_len) {
    qsort(sp, n, sizeof *sp, span_cmp);
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        const char *name = st->tensors[sp[i].index].name;
        if (sp[i].begin < pos)
            return trc_fail(TRC_EFORMAT, "tensor '%s': bytes [%zu, %zu) overlap another tensor",
                            name, sp[i].begin, sp[i].end);
        if (sp[i].begin > pos)
            return trc_fail(TRC_EFORMAT, "tensor '%s': gap of %zu unused bytes before it", name,
                            sp[i].begin - pos);
        pos = sp[i].end;
    }
    if (pos != data_len)
        return trc_fail(TRC_EFORMAT, "data section has %zu bytes but tensors cover %zu", data_len,
                        pos);
    return TRC_OK;
}

static int parse_header(json_t *root, trc_safetensors *st, size_t data_off, size_t data_len) {
    size_t n = json_object_size(root);
    st->tensors = calloc(n ? n : 1, sizeof *st->tensors);
    span *sp = calloc(n ? n : 1, sizeof *sp);
    if (!st->tensors || !sp) {
        free(sp);
        return trc_fail(TRC_ENOMEM, "out of memory for %zu header entries", n);
    }
    int rc = TRC_OK;
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (!strcmp(key, "__metadata__")) {
            if ((rc = parse_metadata(v, st)) != TRC_OK)
                break;
            continue;
        }
        trc_st_tensor *t = &st->tensors[st->count];
        size_t begin = 0, end = 0;
        if ((rc = parse_entry(key, v, data_len, t, &begin, &end)) != TRC_OK)
            break;
        if (!(t->name = strdup(key))) {
            rc = trc_fail(TRC_ENOMEM, "out of memory for tensor names");
            break;
        }
        t->data = st->buf + data_off + begin;
        sp[st->count] = (span){begin, end, st->count};
        st->count++;
    }
    if (rc == TRC_OK)
        rc = check_tiling(sp, st->count, st, data_len);
    free(sp);
    return rc;
}

/* Tensor entries in a header, counted without parsing it: each has one "data_offsets" key
 * (a name containing the text only over-counts, which refuses an odd file, never admits a big
 * one). Stops counting past the bound. */
static size_t count_entries(const uint8_t *h, size_t n) {
    static const char key[] = "\"data_offsets\"";
    size_t count = 0, k = sizeof key - 1;
    const uint8_t *p = h, *end = h + n;
    while (count <= TRC_ST_MAX_TENSORS && (size_t)(end - p) >= k) {
        const uint8_t *hit = memmem(p, (size_t)(end - p), key, k);
        if (!hit)
            break;
        count++;
        p = hit + k;
    }
    return count;
}

int trc_st_parse(const uint8_t *buf, size_t len, trc_safetensors *out) {
    memset(out, 0, sizeof *out);
    if (!buf && len)
        return trc_fail(TRC_EINVAL, "safetensors: NULL buffer");
    if (len < 8)
        return trc_fail(TRC_EFORMAT,
                        "safetensors: %zu bytes, shorter than the 8-byte header "
                        "length",
                        len);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | buf[i];
    if (hlen > TRC_ST_MAX_HEADER)
        return trc_fail(TRC_EFORMAT, "safetensors: header length %llu exceeds the %u byte bound",
                        (unsigned long long)hlen, TRC_ST_MAX_HEADER);
    if (hlen > len - 8)
        return trc_fail(TRC_EFORMAT,
                        "safetensors: header length %llu beyond the end of the "
                        "file (%zu bytes)",
                        (unsigned long long)hlen, len);
    if (hlen < 2 || buf[8] != '{')
        return trc_fail(TRC_EFORMAT, "safetensors: header does not start with '{'");
    size_t entries = count_entries(buf + 8, (size_t)hlen);
    if (entries > TRC_ST_MAX_TENSORS)
        return trc_fail(TRC_EFORMAT, "safetensors: header lists more than %d tensors",
                        TRC_ST_MAX_TENSORS);

    json_error_t jerr;
    json_t *root = json_loadb((const char *)buf + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return trc_fail(TRC_EFORMAT, "safetensors: header JSON invalid at byte %d: %s",
                        jerr.position, jerr.text);
    if (!json_is_object(root)) {
        json_decref(root);
        return trc_fail(TRC_EFORMAT, "safetensors: header is not a JSON object");
    }
    out->buf = malloc(len ? len : 1);
    if (!out->buf) {
        json_decref(root);
        return trc_fail(TRC_ENOMEM, "safetensors: cannot allocate %zu bytes", len);
    }
    memcpy(out->buf, buf, len);
    out->len = len;
    size_t data_off = 8 + (size_t)hlen;
    int rc = parse_header(root, out, data_off, len - data_off);
    json_decref(root);
    if (rc != TRC_OK) {
        trc_fail_prefix(rc, "safetensors: ");
        trc_st_free(out);
    }
    return rc;
}

int trc_st_read_file(const char *path, trc_safetensors *out) {
    memset(out, 0, sizeof *out);
    uint8_t *buf;
    size_t len;
    int rc = trc_read_file(path, &buf, &len);
    if (rc != TRC_OK)
        return rc;
    rc = trc_st_parse(buf, len, out);
    free(buf);
    if (rc != TRC_OK)
        return trc_fail_prefix(rc, "%s: ", path);
    return TRC_OK;
}

const trc_st_tensor *trc_st_find(const trc_safetensors *st, const char *name) {
    for (size_t i = 0; i < st->count; i++)
        if (!strcmp(st->tensors[i].name, name))
            return &st->tensors[i];
    return NULL;
}

const char *trc_st_meta(const trc_safetensors *st, const char *key) {
    for (size_t i = 0; i < st->meta_count; i++)
        if (!strcmp(st->meta_keys[i], key))
            return st->meta_values[i];
    return NULL;
}

static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    float mag;
    if (exp == 0)
        mag = ldexpf((float)mant, -24); /* zero or subnormal: mant * 2^-24, exact */
    else if (exp == 31)
        mag = mant ? NAN : INFINITY;
    else
        mag = ldexpf((float)(mant | 0x400), (int)exp - 25);
    uint32_t bits;
    memcpy(&bits, &mag, 4);
    bits = (bits & 0x7fffffffu) | sign;
    memcpy(&mag, &bits, 4);
    return mag;
}

int trc_st_to_f32(const trc_st_tensor *t, float *dst) {
    const uint8_t *p = t->data;
    switch (t->dtype) {
    case TRC_ST_F32:
        if (t->nbytes)
            memcpy(dst, p, t->nbytes);
        return TRC_OK;
    case TRC_ST_F64:
        for (size_t i = 0; i < t->numel; i++) {
            double x;
            memcpy(&x, p + 8 * i, 8);
            /* out-of-range double -> float conversion is undefined in C: saturate to inf */
            if (x > FLT_MAX)
                dst[i] = INFINITY;
            else if (x < -FLT_MAX)
                dst[i] = -INFINITY;
            else
                dst[i] = (float)x;
        }
        return TRC_OK;
    case TRC_ST_F16:
        for (size_t i = 0; i < t->numel; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            dst[i] = half_to_float(h);
        }
        return TRC_OK;
    case TRC_ST_BF16:
        for (size_t i = 0; i < t->numel; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            uint32_t bits = (uint32_t)h << 16;
            memcpy(&dst[i], &bits, 4);
        }
        return TRC_OK;
    default:
        return trc_fail(TRC_EUNSUPPORTED, "tensor '%s': dtype is not a floating-point type",
                        t->name ? t->name : "?");
    }
}

static int check_out(const trc_st_out *t, size_t *nbytes) {
    if (!t->name)
        return trc_fail(TRC_EINVAL, "safetensors: tensor without a name");
    if (!strcmp(t->name, "__metadata__"))
        return trc_fail(TRC_EINVAL, "safetensors: '__metadata__' is not a tensor name");
    if (t->ndim < 0 || t->ndim > TRC_ST_MAX_DIMS)
        return trc_fail(TRC_EINVAL, "tensor '%s': %d dimensions", t->name, t->ndim);
    size_t numel = 1;
    for (int i = 0; i < t->ndim; i++) {
        if (t->shape[i] < 0 || (uint64_t)t->shape[i] > SIZE_MAX)
            return trc_fail(TRC_EINVAL, "tensor '%s': shape[%d] = %lld", t->name, i,
                            (long long)t->shape[i]);
        size_t d = (size_t)t->shape[i];
        if (d && numel > SIZE_MAX / 4 / d)
            return trc_fail(TRC_EINVAL, "tensor '%s': size overflows", t->name);
        numel *= d;
    }
    if (numel && !t->data)
        return trc_fail(TRC_EINVAL, "tensor '%s': NULL data", t->name);
    *nbytes = numel * 4;
    return TRC_OK;
}

static int build_header(const trc_st_out *tensors, size_t count, const char *const *meta_keys,
                        const char *const *meta_values, size_t meta_count, size_t *total,
                        char **text) {
    json_t *root = json_object();
    if (!root)
        return trc_fail(TRC_ENOMEM, "safetensors: out of memory");
    int rc = TRC_OK;
    if (meta_count) {
        json_t *meta = json_object();
        if (!meta || json_object_set_new(root, "__metadata__", meta)) {
            rc = trc_fail(TRC_ENOMEM, "safetensors: out of memory");
            goto done;
        }
        for (size_t i = 0; i < meta_count; i++) {
            if (!meta_keys[i] || !meta_values[i]) {
                rc = trc_fail(TRC_EINVAL, "safetensors: metadata entry %zu is NULL", i);
                goto done;
            }
            if (json_object_get(meta, meta_keys[i])) {
                rc = trc_fail(TRC_EINVAL, "safetensors: duplicate metadata key '%s'", meta_keys[i]);
                goto done;
            }
            json_t *s = json_string(meta_values[i]);
            if (!s || json_object_set_new(meta, meta_keys[i], s)) {
                rc = trc_fail(TRC_EINVAL, "safetensors: metadata '%s' is not valid UTF-8",
                              meta_keys[i]);
                goto done;
            }
        }
    }
    size_t pos = 0;
    for (size_t i = 0; i < count; i++) {
        const trc_st_out *t = &tensors[i];
        size_t nbytes;
        if ((rc = check_out(t, &nbytes)) != TRC_OK)
            goto done;
        if (json_object_get(root, t->name)) {
            rc = trc_fail(TRC_EINVAL, "safetensors: duplicate tensor name '%s'", t->name);
            goto done;
        }
        json_t *shape = json_array(), *entry = NULL;
        int bad = !shape;
        for (int d = 0; !bad && d < t->ndim; d++)
            bad = json_array_append_new(shape, json_integer((json_int_t)t->shape[d])) != 0;
        if (bad)
            json_decref(shape);
        else
            entry = json_pack("{s:s, s:o, s:[I,I]}", "dtype", "F32", "shape", shape, "data_offsets",
                              (json_int_t)pos, (json_int_t)(pos + nbytes));
        if (!entry || json_object_set_new(root, t->name, entry)) {
            rc = trc_fail(TRC_EINVAL, "safetensors: cannot encode tensor '%s' (name not UTF-8?)",
                          t->name);
            goto done;
        }
        pos += nbytes;
    }
    *text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!*text)
        rc = trc_fail(TRC_ENOMEM, "safetensors: cannot serialize the header");
    *total = pos;
done:
    json_decref(root);
    return rc;
}

int trc_st_encode(const trc_st_out *tensors, size_t count, const char *const *meta_keys,
                  const char *const *meta_values, size_t meta_count, uint8_t **buf, size_t *len) {
    *buf = NULL;
    *len = 0;
    if ((count && !tensors) || (meta_count && (!meta_keys || !meta_values)))
        return trc_fail(TRC_EINVAL, "safetensors: NULL tensor or metadata array");
    char *text = NULL;
    size_t data_len = 0;
    int rc = build_header(tensors, count, meta_keys, meta_values, meta_count, &data_len, &text);
    if (rc != TRC_OK)
        return rc;
    size_t tlen = strlen(text);
    size_t hlen = (tlen + 7) / 8 * 8; /* padded with spaces, as the reference writer does */
    if (hlen > TRC_ST_MAX_HEADER || data_len > SIZE_MAX - 8 - hlen) {
        free(text);
        return trc_fail(TRC_EINVAL, "safetensors: header or data too large");
    }
    size_t total = 8 + hlen + data_len;
    uint8_t *out = malloc(total);
    if (!out) {
        free(text);
        return trc_fail(TRC_ENOMEM, "safetensors: cannot allocate %zu bytes", total);
    }
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
    memcpy(out + 8, text, tlen);
    memset(out + 8 + tlen, ' ', hlen - tlen);
    free(text);
    uint8_t *p = out + 8 + hlen;
    for (size_t i = 0; i < count; i++) {
        size_t nbytes;
        check_out(&tensors[i], &nbytes); /* validated by build_header */
        if (nbytes)
            memcpy(p, tensors[i].data, nbytes);
        p += nbytes;
    }
    *buf = out;
    *len = total;
    return TRC_OK;
}

int trc_st_write_file(const char *path, const trc_st_out *tensors, size_t count,
                      const char *const *meta_keys, const char *const *meta_values,
                      size_t meta_count) {
    uint8_t *buf;
    size_t len;
    int rc = trc_st_encode(tensors, count, meta_keys, meta_values, meta_count, &buf, &len);
    if (rc != TRC_OK)
        return trc_fail_prefix(rc, "%s: ", path);
    rc = trc_write_file_atomic(path, buf, len);
    free(buf);
    return rc;
}
