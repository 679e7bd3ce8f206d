/* Tests of model checkpoints: save/load round trip with metadata (bit-exact), bare PyTorch
 * exports (the fixtures) with the configuration inferred from shapes, overrides, every
 * rejection (missing, extra, mis-shaped, non-finite, unsupported dtype, bad metadata), dtype
 * conversion, and atomic writes. With TRC_CKPT_OUT set, also writes the fixture re-saved with
 * metadata there (tests/integration/test_checkpoint_python.py reads it from Python). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "trc/checkpoint.h"
#include "trc/error.h"
#include "trc/fileio.h"
#include "trc/model.h"
#include "trc/safetensors.h"

#include "../common.h"

static void expect_ok(int rc) {
    if (rc != TRC_OK)
        fail_msg("status %d: %s", rc, trc_errmsg());
}

/* Checks rc == want and that the message mentions `needle`. */
static void expect_fail(int rc, int want, const char *needle) {
    if (rc != want)
        fail_msg("status %d (wanted %d): %s", rc, want, trc_errmsg());
    if (needle && !strstr(trc_errmsg(), needle))
        fail_msg("error '%s' does not mention '%s'", trc_errmsg(), needle);
}

static void make_small(trc_model *m, uint64_t seed) {
    trc_model_config cfg;
    expect_ok(trc_model_config_preset("small", 2, 1, 15, 4.0f, &cfg));
    snprintf(cfg.system, sizeof cfg.system, "double_integrator");
    cfg.dt = 0.1;
    cfg.K = 4;
    cfg.n = 2;
    cfg.bound = 2.75f;
    expect_ok(trc_model_create(&cfg, m));
    expect_ok(trc_model_init(m, seed));
}

static int setup_dir(void **state) {
    (void)state;
    return test_tmpdir_make("ckpt");
}

/* Number of entries in dir (besides . and ..). */
static int entries_in(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static int teardown_dir(void **state) {
    (void)state;
    return test_rm_rf(test_tmpdir);
}

static void test_round_trip(void **state) {
    (void)state;
    trc_model a, b;
    make_small(&a, 7);
    char path[600];
    snprintf(path, sizeof path, "%s/model.safetensors", test_tmpdir);
    const char *summary = "{\"epochs\": 3, \"best_val_loss\": 0.0125}";
    expect_ok(trc_checkpoint_save(path, &a, summary));
    assert_int_equal(entries_in(test_tmpdir), 1); /* no temporary file left */
    expect_ok(trc_checkpoint_load(path, NULL, &b));
    assert_memory_equal(&a.cfg, &b.cfg, sizeof a.cfg);
    assert_int_equal(a.num_params, b.num_params);
    assert_int_equal(b.num_params, 104862);
    assert_memory_equal(a.params, b.params, a.num_params * sizeof(float));

    /* the metadata as written, and the encoder gives the same bytes as the file */
    trc_safetensors st;
    expect_ok(trc_st_read_file(path, &st));
    assert_string_equal(trc_st_meta(&st, "trc_format"), "1");
    assert_string_equal(trc_st_meta(&st, "size"), "small");
    assert_string_equal(trc_st_meta(&st, "b"), "2.75");
    assert_string_equal(trc_st_meta(&st, "dt"), "0.1");
    assert_string_equal(trc_st_meta(&st, "T"), "15");
    assert_string_equal(trc_st_meta(&st, "heads"), "2");
    assert_string_equal(trc_st_meta(&st, "system"), "double_integrator");
    assert_string_equal(trc_st_meta(&st, "training"), summary);
    assert_int_equal(st.count, a.num_views);
    const trc_st_tensor *t = trc_st_find(&st, "control_decoder.decoder.0.weight");
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->shape[0], 128);
    assert_int_equal(t->shape[1], 64 + 15); /* [out, in] as PyTorch */
    uint8_t *enc;
    size_t len;
    expect_ok(trc_checkpoint_encode(&a, summary, &enc, &len));
    assert_int_equal(len, st.len);
    assert_memory_equal(enc, st.buf, len);
    trc_st_free(&st);

    /* decode from memory; no summary means no "training" key */
    free(enc);
    expect_ok(trc_checkpoint_encode(&a, NULL, &enc, &len));
    trc_model c;
    expect_ok(trc_checkpoint_decode(enc, len, NULL, &c));
    assert_memory_equal(a.params, c.params, a.num_params * sizeof(float));
    expect_ok(trc_st_parse(enc, len, &st));
    assert_null(trc_st_meta(&st, "training"));
    trc_st_free(&st);
    free(enc);
    expect_fail(trc_checkpoint_encode(&a, "[1]", &enc, &len), TRC_EINVAL, "summary");
    expect_fail(trc_checkpoint_encode(&a, "{bad", &enc, &len), TRC_EINVAL, "summary");
    trc_model_free(&a);
    trc_model_free(&b);
    trc_model_free(&c);
}

static void test_fixture_inferred(void **state) {
    (void)state;
    const char *names[] = {"small_init.safetensors", "small_random.safetensors"};
    for (int f = 0; f < 2; f++) {
        trc_model m;
        expect_ok(trc_checkpoint_load(test_data_path(names[f]), NULL, &m));
        assert_string_equal(m.cfg.size, "small");
        assert_int_equal(m.cfg.s, 2);
        assert_int_equal(m.cfg.m, 1);
        assert_int_equal(m.cfg.T, 15);
        assert_int_equal(m.cfg.d, 64);
        assert_int_equal(m.cfg.h, 128);
        assert_int_equal(m.cfg.blocks, 2);
        assert_int_equal(m.cfg.heads, 2);
        assert_int_equal(m.cfg.K, 3);
        assert_int_equal(m.cfg.n, 3);
        assert_true(m.cfg.bound == 4.0f);
        assert_string_equal(m.cfg.system, "");
        assert_int_equal(m.num_params, 104862);
        /* every parameter equals the file's tensor */
        trc_safetensors st;
        expect_ok(trc_st_read_file(test_data_path(names[f]), &st));
        for (size_t i = 0; i < m.num_views; i++) {
            const trc_st_tensor *t = trc_st_find(&st, m.views[i].name);
            assert_non_null(t);
            assert_memory_equal(t->data, m.params + m.views[i].offset, t->nbytes);
        }
        trc_st_free(&st);
        trc_model_free(&m);
    }
}

static void test_overrides(void **state) {
    (void)state;
    trc_model m;
    trc_load_overrides ov = {.bound = 2.5f, .K = 5, .n = 2};
    expect_ok(trc_checkpoint_load(test_data_path("small_init.safetensors"), &ov, &m));
    assert_true(m.cfg.bound == 2.5f);
    assert_int_equal(m.cfg.K, 5);
    assert_int_equal(m.cfg.n, 2);
    trc_model_free(&m);
    /* m divides U = 15: T follows */
    ov = (trc_load_overrides){.m = 3};
    expect_ok(trc_checkpoint_load(test_data_path("small_init.safetensors"), &ov, &m));
    assert_int_equal(m.cfg.m, 3);
    assert_int_equal(m.cfg.T, 5);
    assert_string_equal(m.cfg.size, "small");
    trc_model_free(&m);
    ov.m = 4;
    expect_fail(trc_checkpoint_load(test_data_path("small_init.safetensors"), &ov, &m), TRC_EFORMAT,
                "multiple");
    assert_null(m.params);
    ov = (trc_load_overrides){.K = 1000000};
    expect_fail(trc_checkpoint_load(test_data_path("small_init.safetensors"), &ov, &m), TRC_EINVAL,
                "overrides");

    /* with metadata: explicit overrides win, m must agree */
    trc_model a;
    make_small(&a, 3);
    uint8_t *buf;
    size_t len;
    expect_ok(trc_checkpoint_encode(&a, NULL, &buf, &len));
    ov = (trc_load_overrides){.K = 7, .m = 1};
    expect_ok(trc_checkpoint_decode(buf, len, &ov, &m));
    assert_int_equal(m.cfg.K, 7);
    assert_int_equal(m.cfg.n, 2);
    assert_true(m.cfg.bound == 2.75f);
    trc_model_free(&m);
    ov.m = 3;
    expect_fail(trc_checkpoint_decode(buf, len, &ov, &m), TRC_EINVAL, "m=3");
    free(buf);
    trc_model_free(&a);
}

/* The fixture's tensors as writer input (data converted to float32, owned by `store`). */
typedef struct {
    trc_safetensors st;
    trc_st_out out[80];
    size_t n;
} tensor_set;

static void load_set(tensor_set *ts) {
    expect_ok(trc_st_read_file(test_data_path("small_init.safetensors"), &ts->st));
    ts->n = ts->st.count;
    assert_true(ts->n <= 78);
    for (size_t i = 0; i < ts->n; i++) {
        const trc_st_tensor *t = &ts->st.tensors[i];
        float *p = malloc(t->nbytes ? t->nbytes : 4);
        expect_ok(trc_st_to_f32(t, p));
        ts->out[i] = (trc_st_out){.name = t->name, .ndim = t->ndim, .data = p};
        memcpy(ts->out[i].shape, t->shape, sizeof t->shape);
    }
}

static void free_set(tensor_set *ts) {
    for (size_t i = 0; i < ts->st.count; i++)
        free((void *)ts->out[i].data);
    trc_st_free(&ts->st);
}

static int decode_set(const tensor_set *ts, const char *const *keys, const char *const *vals,
                      size_t nmeta) {
    uint8_t *buf;
    size_t len;
    expect_ok(trc_st_encode(ts->out, ts->n, keys, vals, nmeta, &buf, &len));
    trc_model m;
    int rc = trc_checkpoint_decode(buf, len, NULL, &m);
    free(buf);
    if (rc == TRC_OK)
        trc_model_free(&m);
    else
        assert_null(m.params);
    return rc;
}

static size_t index_of(const tensor_set *ts, const char *name) {
    for (size_t i = 0; i < ts->n; i++)
        if (!strcmp(ts->out[i].name, name))
            return i;
    fail_msg("no tensor %s", name);
    return 0;
}

static void test_rejects(void **state) {
    (void)state;
    tensor_set ts;
    load_set(&ts);
    expect_ok(decode_set(&ts, NULL, NULL, 0));

    /* missing parameter: drop the last, and one needed to infer the configuration */
    const char *last = "recursive_reasoning.reasoning_blocks.1.norm2.weight";
    size_t i = index_of(&ts, last);
    trc_st_out saved = ts.out[i];
    ts.out[i] = ts.out[--ts.n];
    expect_fail(decode_set(&ts, NULL, NULL, 0), TRC_EFORMAT, last);
    ts.out[ts.n++] = ts.out[i];
    ts.out[i] = saved;
    i = index_of(&ts, "state_encoder.encoder.0.weight");
    saved = ts.out[i];
    ts.out[i] = ts.out[--ts.n];
    expect_fail(decode_set(&ts, NULL, NULL, 0), TRC_EFORMAT, "state_encoder.encoder.0.weight");
    ts.out[ts.n++] = ts.out[i];
    ts.out[i] = saved;
    expect_ok(decode_set(&ts, NULL, NULL, 0));

    /* extra tensor, and an extra block with a gap (block 3 without block 2) */
    float x[4] = {0};
    ts.out[ts.n++] = (trc_st_out){.name = "extra.weight", .ndim = 1, .shape = {4}, .data = x};
    expect_fail(decode_set(&ts, NULL, NULL, 0), TRC_EFORMAT, "extra.weight");
    ts.out[ts.n - 1].name = "recursive_reasoning.reasoning_blocks.3.norm1.bias";
    expect_fail(decode_set(&ts, NULL, NULL, 0), TRC_EFORMAT, "missing parameter");
    ts.out[ts.n - 1].name = "recursive_reasoning.reasoning_blocks.x.norm1.bias";
    expect_fail(decode_set(&ts, NULL, NULL, 0), TRC_EFORMAT, "reasoning_blocks.x");
    ts.out[ts.n - 1].name = "recursive_reasoning.reasoning_blocks.99.norm1.bias";
    expect_fail(decode_set(&ts, NULL, NULL, 0), TRC_EUNSUPPORTED, "blocks");
    ts.n--;

    /* shape inconsistent with the configuration the other tensors give */
    i = index_of(&ts, "recursive_reasoning.control_embedding.weight");
    ts.out[i].shape[1] = 14; /* [64, 15] -> [64, 14]: fewer bytes, still valid data */
    expect_fail(decode_set(&ts, NULL, NULL, 0), TRC_EFORMAT,
                "'recursive_reasoning.control_embedding.weight' has shape [64,14], expected "
                "[64,15]");
    ts.out[i].shape[1] = 15;
    i = index_of(&ts, "error_encoder.encoder.2.bias");
    ts.out[i].ndim = 2;
    ts.out[i].shape[1] = 1;
    expect_fail(decode_set(&ts, NULL, NULL, 0), TRC_EFORMAT, "error_encoder.encoder.2.bias");
    ts.out[i].ndim = 1;
    i = index_of(&ts, "state_encoder.encoder.0.weight");
    ts.out[i].shape[1] = 4; /* even input count cannot be 2s+1 */
    expect_fail(decode_set(&ts, NULL, NULL, 0), TRC_EFORMAT, "2s+1");
    ts.out[i].shape[1] = 5;

    /* non-finite values */
    i = index_of(&ts, "initial_control_generator.decoder.3.bias");
    float *p = (float *)ts.out[i].data;
    float keep = p[3];
    p[3] = NAN;
    expect_fail(decode_set(&ts, NULL, NULL, 0), TRC_EFORMAT,
                "'initial_control_generator.decoder.3.bias' has a non-finite value at index 3");
    p[3] = INFINITY;
    expect_fail(decode_set(&ts, NULL, NULL, 0), TRC_EFORMAT, "non-finite");
    p[3] = keep;
    expect_ok(decode_set(&ts, NULL, NULL, 0));
    free_set(&ts);
}

static void test_bad_metadata(void **state) {
    (void)state;
    tensor_set ts;
    load_set(&ts);
    const char *keys[] = {"trc_format", "size", "s", "m",      "T",     "b",      "K",
                          "n",          "d",    "h", "blocks", "heads", "system", "dt"};
    const char *vals[] = {"1", "small", "2",   "1", "15", "4", "3",
                          "3", "64",    "128", "2", "2",  "",  "0"};
    expect_ok(decode_set(&ts, keys, vals, 14));
    struct {
        int idx;
        const char *val;
        int rc;
        const char *needle;
    } cases[] = {
        {0, "2", TRC_EUNSUPPORTED, "version"},
        {1, "medium", TRC_EFORMAT, "size medium means"},
        {1, "tiny", TRC_EFORMAT, "tiny"},
        {2, "two", TRC_EFORMAT, "'s'"},
        {4, "15x", TRC_EFORMAT, "'T'"},
        {4, "14", TRC_EFORMAT, "expected"}, /* metadata disagrees with the shapes */
        {5, "nan", TRC_EFORMAT, "'b'"},
        {5, "-1", TRC_EFORMAT, "'b' = -1"},
        {6, "0", TRC_EFORMAT, "K"},
        {13, "", TRC_EFORMAT, "'dt'"},
        {12, "a_system_name_that_is_far_too_long_to_fit", TRC_EFORMAT, "system"},
        /* valid but hostile: bounded to a sane range, naming the field */
        {6, "1024", TRC_EFORMAT, "'K' = 1024 is outside"},
        {7, "1024", TRC_EFORMAT, "'n' = 1024 is outside"},
        {7, "33", TRC_EFORMAT, "'n' = 33"},
        {13, "1e308", TRC_EFORMAT, "'dt' = 1e+308 is outside"},
        {13, "-0.1", TRC_EFORMAT, "dt"},
        {5, "1e30", TRC_EFORMAT, "'b' = 1e+30 is outside"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const char *v = vals[cases[c].idx];
        vals[cases[c].idx] = cases[c].val;
        expect_fail(decode_set(&ts, keys, vals, 14), cases[c].rc, cases[c].needle);
        vals[cases[c].idx] = v;
    }
    /* the bounds are inclusive: K = n = 32 and dt = 10 load */
    vals[6] = vals[7] = "32";
    vals[13] = "10";
    expect_ok(decode_set(&ts, keys, vals, 14));
    vals[6] = vals[7] = "3";
    vals[13] = "0";
    /* overrides are held to the same bounds */
    trc_load_overrides ov = {.K = 1000};
    uint8_t *buf;
    size_t len;
    expect_ok(trc_st_encode(ts.out, ts.n, keys, vals, 14, &buf, &len));
    trc_model m;
    expect_fail(trc_checkpoint_decode(buf, len, &ov, &m), TRC_EFORMAT, "'K' = 1000");
    free(buf);
    /* a missing key */
    expect_fail(decode_set(&ts, keys, vals, 13), TRC_EFORMAT, "missing 'dt'");
    /* metadata without trc_format (e.g. {"format": "pt"}) is a bare export: inferred */
    const char *pk[] = {"format"}, *pv[] = {"pt"};
    expect_ok(decode_set(&ts, pk, pv, 1));
    free_set(&ts);
}

/* Builds a safetensors buffer holding the fixture in another dtype (F16, BF16 or F64). */
static uint8_t *convert_fixture(const char *dtype, size_t esize, size_t *len) {
    trc_safetensors st;
    expect_ok(trc_st_read_file(test_data_path("small_init.safetensors"), &st));
    size_t cap = 16384, hl = 0, total = 0;
    char *h = malloc(cap);
    hl += (size_t)snprintf(h + hl, cap - hl, "{");
    for (size_t i = 0; i < st.count; i++) {
        const trc_st_tensor *t = &st.tensors[i];
        size_t nb = t->numel * esize;
        hl += (size_t)snprintf(h + hl, cap - hl, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[%lld",
                               i ? "," : "", t->name, dtype, (long long)t->shape[0]);
        if (t->ndim == 2)
            hl += (size_t)snprintf(h + hl, cap - hl, ",%lld", (long long)t->shape[1]);
        hl +=
            (size_t)snprintf(h + hl, cap - hl, "],\"data_offsets\":[%zu,%zu]}", total, total + nb);
        total += nb;
    }
    hl += (size_t)snprintf(h + hl, cap - hl, "}");
    assert_true(hl < cap);
    *len = 8 + hl + total;
    uint8_t *buf = malloc(*len), *p = buf + 8 + hl;
    for (int k = 0; k < 8; k++)
        buf[k] = (uint8_t)((uint64_t)hl >> (8 * k));
    memcpy(buf + 8, h, hl);
    free(h);
    for (size_t i = 0; i < st.count; i++) {
        const trc_st_tensor *t = &st.tensors[i];
        for (size_t j = 0; j < t->numel; j++, p += esize) {
            float f;
            memcpy(&f, (const uint8_t *)t->data + 4 * j, 4);
            if (esize == 8) {
                double d = f;
                memcpy(p, &d, 8);
            } else if (!strcmp(dtype, "BF16")) {
                uint32_t bits;
                memcpy(&bits, &f, 4);
                uint16_t hb = (uint16_t)(bits >> 16);
                memcpy(p, &hb, 2);
            } else { /* F16 of values exactly representable: 0.5 steps in [-8, 8] */
                int q = (int)lrintf(f * 2.0f);
                q = q > 16 ? 16 : q < -16 ? -16 : q;
                float v = (float)q / 2.0f;
                /* encode v as IEEE half */
                uint16_t hv = 0;
                if (v != 0.0f) {
                    int e;
                    float fr = frexpf(fabsf(v), &e); /* v = fr * 2^e, fr in [0.5, 1) */
                    uint16_t mant = (uint16_t)lrintf((fr * 2.0f - 1.0f) * 1024.0f);
                    hv = (uint16_t)(((v < 0) << 15) | ((e - 1 + 15) << 10) | mant);
                }
                memcpy(p, &hv, 2);
            }
        }
    }
    trc_st_free(&st);
    return buf;
}

static void test_dtype_conversion(void **state) {
    (void)state;
    trc_model ref;
    expect_ok(trc_checkpoint_load(test_data_path("small_init.safetensors"), NULL, &ref));
    const char *dt[] = {"F64", "BF16", "F16"};
    size_t es[] = {8, 2, 2};
    for (int k = 0; k < 3; k++) {
        size_t len;
        uint8_t *buf = convert_fixture(dt[k], es[k], &len);
        trc_model m;
        expect_ok(trc_checkpoint_decode(buf, len, NULL, &m));
        free(buf);
        assert_int_equal(m.num_params, ref.num_params);
        for (size_t i = 0; i < m.num_params; i++) {
            float r = ref.params[i], g = m.params[i];
            if (k == 0)
                assert_true(g == r);
            else if (k == 1)
                assert_true(fabsf(g - r) <= fabsf(r) / 128.0f);
            else
                assert_true(fabsf(g - fminf(8.0f, fmaxf(-8.0f, rintf(r * 2) / 2))) <= 0.0f);
        }
        trc_model_free(&m);
    }
    trc_model_free(&ref);

    /* integer dtype: rejected, naming the tensor (edit "F32" of the first tensor to "I32") */
    uint8_t *buf;
    size_t len;
    expect_ok(trc_read_file(test_data_path("small_init.safetensors"), &buf, &len));
    char *f = strstr((char *)buf + 8, "\"F32\"");
    f[1] = 'I';
    trc_model m;
    expect_fail(trc_checkpoint_decode(buf, len, NULL, &m), TRC_EUNSUPPORTED,
                "'control_decoder.decoder.0.bias'");
    free(buf);
}

static void test_atomic_write(void **state) {
    (void)state;
    trc_model a;
    make_small(&a, 11);
    char path[600];
    snprintf(path, sizeof path, "%s/ckpt.safetensors", test_tmpdir);
    expect_ok(trc_checkpoint_save(path, &a, NULL));
    uint8_t *before;
    size_t blen;
    expect_ok(trc_read_file(path, &before, &blen));

    /* a failing save (non-finite parameter) leaves the old file intact and no temporary */
    a.params[100] = NAN;
    expect_fail(trc_checkpoint_save(path, &a, NULL), TRC_ENUMERIC, "non-finite");
    uint8_t *after;
    size_t alen;
    expect_ok(trc_read_file(path, &after, &alen));
    assert_int_equal(alen, blen);
    assert_memory_equal(before, after, blen);
    assert_int_equal(entries_in(test_tmpdir), 1);
    free(after);
    free(before);
    a.params[100] = 0.5f;

    /* unwritable destinations fail cleanly with EIO */
    snprintf(path, sizeof path, "%s/no/such/dir/x.safetensors", test_tmpdir);
    expect_fail(trc_checkpoint_save(path, &a, NULL), TRC_EIO, NULL);
    snprintf(path, sizeof path, "%s/ckpt.safetensors/x.safetensors",
             test_tmpdir); /* under a file */
    expect_fail(trc_checkpoint_save(path, &a, NULL), TRC_EIO, NULL);
    expect_fail(trc_checkpoint_save("/proc/trc_test.safetensors", &a, NULL), TRC_EIO, NULL);
    assert_int_equal(entries_in(test_tmpdir), 1);

    /* loading errors carry the path */
    snprintf(path, sizeof path, "%s/missing.safetensors", test_tmpdir);
    trc_model m;
    expect_fail(trc_checkpoint_load(path, NULL, &m), TRC_EIO, "missing.safetensors");
    expect_fail(trc_checkpoint_load(test_data_path("FIXTURES.md"), NULL, &m), TRC_EFORMAT,
                "FIXTURES.md");
    trc_model_free(&a);
}

/* Writes the fixture re-saved with metadata for the Python interop test, when asked. */
static void test_python_export(void **state) {
    (void)state;
    const char *out = getenv("TRC_CKPT_OUT");
    if (!out || !*out)
        skip();
    trc_model m;
    expect_ok(trc_checkpoint_load(test_data_path("small_init.safetensors"), NULL, &m));
    snprintf(m.cfg.system, sizeof m.cfg.system, "double_integrator");
    m.cfg.dt = 0.1;
    expect_ok(trc_checkpoint_save(out, &m, "{\"source\": \"small_init\"}"));
    trc_model_free(&m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup_dir, teardown_dir),
        cmocka_unit_test(test_fixture_inferred),
        cmocka_unit_test(test_overrides),
        cmocka_unit_test(test_rejects),
        cmocka_unit_test(test_bad_metadata),
        cmocka_unit_test(test_dtype_conversion),
        cmocka_unit_test_setup_teardown(test_atomic_write, setup_dir, teardown_dir),
        cmocka_unit_test(test_python_export),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
