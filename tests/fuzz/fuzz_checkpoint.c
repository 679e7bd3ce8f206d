/* libFuzzer harness for model checkpoints: safetensors bytes -> trc_checkpoint_decode (the
 * __metadata__ configuration, a bare state_dict's shape inference, every parameter's name and
 * shape). Run through `make fuzz` (tests/fuzz/README.md).
 *
 * A checkpoint that loads must have a valid configuration whose parameter count is the
 * model's, and must encode and decode again to the same configuration and parameters. A
 * refused one carries an error code (format, unsupported, invalid value, out of memory). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "trc/checkpoint.h"
#include "trc/error.h"
#include "trc/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    trc_model m;
    int rc = trc_checkpoint_decode(data, size, NULL, &m);
    if (rc != TRC_OK) {
        if (rc != TRC_EFORMAT && rc != TRC_EUNSUPPORTED && rc != TRC_EINVAL && rc != TRC_ENOMEM &&
            rc != TRC_ENOTFOUND)
            abort();
        return 0;
    }
    if (trc_model_config_validate(&m.cfg) != TRC_OK ||
        trc_model_param_count(&m.cfg) != m.num_params)
        abort();
    uint8_t *buf;
    size_t len;
    trc_model again;
    if (trc_checkpoint_encode(&m, NULL, &buf, &len) != TRC_OK ||
        trc_checkpoint_decode(buf, len, NULL, &again) != TRC_OK)
        abort();
    if (again.num_params != m.num_params || again.cfg.s != m.cfg.s || again.cfg.m != m.cfg.m ||
        again.cfg.T != m.cfg.T || again.cfg.K != m.cfg.K || again.cfg.n != m.cfg.n ||
        again.cfg.bound != m.cfg.bound ||
        memcmp(again.params, m.params, m.num_params * sizeof(float)))
        abort();
    trc_model_free(&again);
    free(buf);
    trc_model_free(&m);
    return 0;
}
