/* libFuzzer harness for the safetensors parser, run by `make fuzz` (tests/fuzz/README.md); the
 * unit test tests/unit/core/test_safetensors.c runs a deterministic mutation loop as well.
 *
 * Each input is parsed; a file that parses must have every tensor inside the buffer, convert
 * to float32 when it is a float type, and (when all tensors are F32) re-encode into a file that
 * parses to the same tensors. Anything else must be rejected with an error code. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "trc/error.h"
#include "trc/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int is_float(trc_st_dtype d) {
    return d == TRC_ST_F32 || d == TRC_ST_F64 || d == TRC_ST_F16 || d == TRC_ST_BF16;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    trc_safetensors st;
    int rc = trc_st_parse(data, size, &st);
    if (rc != TRC_OK) {
        if (rc != TRC_EFORMAT && rc != TRC_EUNSUPPORTED && rc != TRC_ENOMEM)
            abort();
        return 0;
    }
    int all_f32 = 1;
    trc_st_out *outs = calloc(st.count ? st.count : 1, sizeof *outs);
    float **conv = calloc(st.count ? st.count : 1, sizeof *conv);
    if (!outs || !conv)
        abort();
    for (size_t i = 0; i < st.count; i++) {
        const trc_st_tensor *t = &st.tensors[i];
        if ((const uint8_t *)t->data < st.buf ||
            (const uint8_t *)t->data + t->nbytes > st.buf + st.len)
            abort();
        all_f32 &= t->dtype == TRC_ST_F32;
        if (!is_float(t->dtype) || t->numel > (1u << 20))
            continue;
        conv[i] = malloc(t->numel ? t->numel * sizeof(float) : 1);
        if (!conv[i] || trc_st_to_f32(t, conv[i]) != TRC_OK)
            abort();
        outs[i] = (trc_st_out){.name = t->name, .ndim = t->ndim, .data = conv[i]};
        memcpy(outs[i].shape, t->shape, sizeof t->shape);
    }
    for (size_t i = 0; i < st.count; i++)
        all_f32 &= conv[i] != NULL;
    if (all_f32) {
        uint8_t *buf;
        size_t len;
        trc_safetensors again;
        if (trc_st_encode(outs, st.count, (const char *const *)st.meta_keys,
                          (const char *const *)st.meta_values, st.meta_count, &buf, &len) != TRC_OK)
            abort();
        if (trc_st_parse(buf, len, &again) != TRC_OK || again.count != st.count)
            abort();
        for (size_t i = 0; i < st.count; i++) {
            const trc_st_tensor *t = trc_st_find(&again, st.tensors[i].name);
            if (!t || t->nbytes != st.tensors[i].nbytes ||
                memcmp(t->data, st.tensors[i].data, t->nbytes))
                abort();
        }
        trc_st_free(&again);
        free(buf);
    }
    for (size_t i = 0; i < st.count; i++)
        free(conv[i]);
    free(conv);
    free(outs);
    trc_st_free(&st);
    return 0;
}
