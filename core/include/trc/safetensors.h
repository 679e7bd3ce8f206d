/* The safetensors container: 8-byte little-endian header length, a JSON header naming each
 * tensor's dtype, shape and byte range, then the raw little-endian data. Parsing validates
 * everything the format demands; writing is atomic. Knows nothing of the TRC model. */
#ifndef TRC_SAFETENSORS_H
#define TRC_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#define TRC_ST_MAX_DIMS 8
/* Bounds checked before the header is parsed, so a hostile file is refused without big
 * allocations. A TRC checkpoint has ~50-250 tensors and a header of a few KB plus its training
 * summary (per-epoch history, ~150 bytes an epoch): 16 MiB and 4,096 tensors leave room. */
#define TRC_ST_MAX_HEADER (16u * 1024u * 1024u)
#define TRC_ST_MAX_TENSORS 4096

typedef enum {
    TRC_ST_F32,
    TRC_ST_F64,
    TRC_ST_F16,
    TRC_ST_BF16,
    TRC_ST_I64,
    TRC_ST_I32,
    TRC_ST_U8,
    TRC_ST_BOOL
} trc_st_dtype;

typedef struct trc_st_tensor {
    char *name;
    trc_st_dtype dtype;
    int ndim;
    int64_t shape[TRC_ST_MAX_DIMS];
    size_t numel;
    const void *data; /* points into the file buffer; may be unaligned: memcpy out */
    size_t nbytes;
} trc_st_tensor;

typedef struct trc_safetensors {
    uint8_t *buf; /* owned copy of the whole file */
    size_t len;
    trc_st_tensor *tensors;
    size_t count;
    char **meta_keys, **meta_values; /* __metadata__ (string -> string), meta_count entries */
    size_t meta_count;
} trc_safetensors;

int trc_st_parse(const uint8_t *buf, size_t len, trc_safetensors *out); /* copies buf */
int trc_st_read_file(const char *path, trc_safetensors *out);
void trc_st_free(trc_safetensors *st);
const trc_st_tensor *trc_st_find(const trc_safetensors *st, const char *name);
const char *trc_st_meta(const trc_safetensors *st, const char *key); /* NULL if absent */
/* Copies a tensor into float32 (converting F64/F16/BF16); dst holds t->numel floats. */
int trc_st_to_f32(const trc_st_tensor *t, float *dst);

/* Input to the writer: float32 tensors, written in the order given (data tiles exactly). */
typedef struct trc_st_out {
    const char *name;
    int ndim;
    int64_t shape[TRC_ST_MAX_DIMS];
    const float *data;
} trc_st_out;

int trc_st_encode(const trc_st_out *tensors, size_t count, const char *const *meta_keys,
                  const char *const *meta_values, size_t meta_count, uint8_t **buf, size_t *len);
int trc_st_write_file(const char *path, const trc_st_out *tensors, size_t count,
                      const char *const *meta_keys, const char *const *meta_values,
                      size_t meta_count);

#endif
