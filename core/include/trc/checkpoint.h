/* Model checkpoints as safetensors: our files (parameters + __metadata__ with the
 * configuration) and bare PyTorch state_dict exports (configuration inferred from shapes). */
#ifndef TRC_CHECKPOINT_H
#define TRC_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "trc/model.h"

/* Settings a file without metadata cannot tell; a field <= 0 means "not given". */
typedef struct trc_load_overrides {
    float bound; /* default 4.0 */
    int K, n;    /* default 3 and 3 */
    int m;       /* control dimension of a file without metadata (shapes give only U = T*m);
                    default 1; with metadata it must agree with the file's m */
} trc_load_overrides;

/* What a checkpoint may ask for, checked at load (metadata, shapes and overrides alike) so a
 * valid but hostile file cannot make every request run for minutes or answer NaN: the outer
 * and inner cycles K and n, the problem sizes, the network widths, the control bound b and the
 * time step dt (0 = the system's own). The presets use K = n = 3, d <= 256, h <= 512. */
#define TRC_CKPT_MAX_CYCLES 32
#define TRC_CKPT_MAX_STATE 64 /* s and m */
#define TRC_CKPT_MAX_T 1024
#define TRC_CKPT_MAX_U 4096     /* T*m */
#define TRC_CKPT_MAX_WIDTH 2048 /* d and h */
#define TRC_CKPT_MAX_HEADS 64
#define TRC_CKPT_MAX_BOUND 1e6
#define TRC_CKPT_MAX_DT 10.0

/* Writes every parameter under its name (float32) and __metadata__ with the configuration
 * (format version, size, s, m, T, b, K, n, system, dt) plus `summary_json` (a JSON object text,
 * may be NULL) under "training". Atomic: temporary file, fsync, rename. */
int trc_checkpoint_save(const char *path, const trc_model *model, const char *summary_json);
/* The same into a malloc'd buffer (for hashing or sending). */
int trc_checkpoint_encode(const trc_model *model, const char *summary_json, uint8_t **buf,
                          size_t *len);
/* Parameter-name spellings: the original's ec6511d (ffn.0 / ffn.3, what trc_checkpoint_encode
 * writes) and a273222 (ffn.fc_in / ffn.fc_out, its later version: each view's `alt`). Loading
 * takes either (a file with both spellings of one tensor is refused). */
#define TRC_NAMES_OLD "ec6511d"
#define TRC_NAMES_NEW "a273222"
/* trc_checkpoint_encode with the names spelled as `names` asks; recorded in the metadata. */
int trc_checkpoint_encode_names(const trc_model *model, const char *names, const char *summary_json,
                                uint8_t **buf, size_t *len);
/* trc_checkpoint_save with the names spelled as `names` asks (trc train's --names). */
int trc_checkpoint_save_names(const char *path, const trc_model *model, const char *names,
                              const char *summary_json);

/* Loads and validates a checkpoint (file or memory). `ov` may be NULL. Metadata, when present,
 * gives the configuration; overrides given explicitly win over it. */
int trc_checkpoint_load(const char *path, const trc_load_overrides *ov, trc_model *out);
int trc_checkpoint_decode(const uint8_t *buf, size_t len, const trc_load_overrides *ov,
                          trc_model *out);

#endif
