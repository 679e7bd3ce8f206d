/* The two-level networks' inference plans (two_level_plan.c: packed weights, fused attention,
 * epilogue residuals, rows shared between threads) on every instruction-set path: the v2
 * fixtures' iterates within the parity tolerance (1e-5), and every row's result the same
 * whatever the batch it is in and the thread count. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "isa_paths.h"
#include "trc/checkpoint.h"
#include "v2_fixture.h"

#define NB 8
#define U 15
#define BIG 300 /* three chunks of rows: a thread each */

static void plan_case(const char *name) {
    char file[128];
    snprintf(file, sizeof file, "v2/%s.safetensors", name);
    trc_model m;
    if (trc_checkpoint_load(test_data_path(file), NULL, &m))
        fail_msg("%s: %s", file, trc_errmsg());
    snprintf(file, sizeof file, "v2/%s.case.safetensors", name);
    trc_safetensors st;
    read_st(file, &st);
    const size_t H = (size_t)m.cfg.K;
    float *x0 = tensor(&st, "x0", NB * 2), *tg = tensor(&st, "target", NB * 2);
    float *want = tensor(&st, "iterates", (H + 1) * NB * U);
    trc_infer_plan *plan;
    assert_int_equal(trc_infer_plan_create(&m, &plan), TRC_OK);

    float u[NB * U], it[(16 + 1) * NB * U];
    assert_true(H <= 16);
    assert_int_equal(trc_infer_plan_run(plan, NB, x0, tg, NULL, u, it, 1), TRC_OK);
    v2_check_close(it, want, (H + 1) * NB * U, 1e-5f, "plan iterates");
    v2_check_close(u, want + H * NB * U, NB * U, 1e-5f, "plan output");

    /* one row at a time, and BIG rows (the fixture's rows repeated) on 1 and 3 threads: the
     * same bits as the batch of 8 */
    for (size_t r = 0; r < NB; r++) {
        float u1[U];
        assert_int_equal(trc_infer_plan_run(plan, 1, x0 + 2 * r, tg + 2 * r, NULL, u1, NULL, 1),
                         TRC_OK);
        assert_memory_equal(u1, u + r * U, sizeof u1);
    }
    float *bx = malloc(BIG * 2 * sizeof *bx), *bt = malloc(BIG * 2 * sizeof *bt);
    float *b1 = malloc(BIG * U * sizeof *b1), *b3 = malloc(BIG * U * sizeof *b3);
    assert_non_null(bx), assert_non_null(bt), assert_non_null(b1), assert_non_null(b3);
    for (size_t r = 0; r < BIG; r++) {
        memcpy(bx + 2 * r, x0 + 2 * (r % NB), 2 * sizeof *bx);
        memcpy(bt + 2 * r, tg + 2 * (r % NB), 2 * sizeof *bt);
    }
    assert_int_equal(trc_infer_plan_run(plan, BIG, bx, bt, NULL, b1, NULL, 1), TRC_OK);
    assert_int_equal(trc_infer_plan_run(plan, BIG, bx, bt, NULL, b3, NULL, 3), TRC_OK);
    assert_memory_equal(b1, b3, BIG * U * sizeof *b1);
    for (size_t r = 0; r < BIG; r++)
        assert_memory_equal(b1 + r * U, u + (r % NB) * U, U * sizeof *u);

    /* the plain inference (trc_model_infer) agrees within the tolerance */
    float ui[NB * U];
    assert_int_equal(trc_model_infer(&m, NB, x0, tg, ui, NULL), TRC_OK);
    v2_check_close(ui, u, NB * U, 1e-5f, "plan against trc_model_infer");

    /* bad arguments: one clear error */
    assert_int_equal(trc_infer_plan_run(plan, NB, x0, tg, NULL, u, NULL, 0), TRC_EINVAL);
    assert_int_equal(trc_infer_plan_run(plan, 0, x0, tg, NULL, u, NULL, 1), TRC_EINVAL);

    trc_infer_plan_free(plan);
    free(bx), free(bt), free(b1), free(b3);
    free(x0), free(tg), free(want);
    trc_st_free(&st);
    trc_model_free(&m);
}

static void test_two_level_plan(void **state) {
    (void)state;
    plan_case("two_level_small");
}

static void test_trm_style_plan(void **state) {
    (void)state;
    plan_case("trm_style_small");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_level_plan),
        cmocka_unit_test(test_trm_style_plan),
    };
    return RUN_EVERY_ISA(tests, NULL, NULL);
}
