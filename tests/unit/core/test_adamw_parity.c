/* Five full-batch AdamW steps (lr 1e-3, weight decay 1e-5, clipping at 1.0) on each fixture
 * batch reproduce the reference's losses (tests/data/FIXTURES.md, `adamw_losses`) within 1e-4
 * relative: forward, backward, clipping and the optimizer together. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "isa_paths.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "fixture.h"
#include "trc/error.h"
#include "trc/model.h"
#include "trc/optim.h"
#include "trc/safetensors.h"

#define NB 8
#define STEPS 5

static void run_case(const char *model_file, const char *case_file) {
    trc_model model;
    load_model(model_file, &model);
    trc_safetensors st;
    read_st(case_file, &st);
    const size_t S = (size_t)model.cfg.s, U = (size_t)model.cfg.T * (size_t)model.cfg.m;
    float *x0 = tensor(&st, "x0", NB * S), *tg = tensor(&st, "target", NB * S);
    float *ue = tensor(&st, "u_expert", NB * U), *want = tensor(&st, "adamw_losses", STEPS);

    trc_trainer *tr;
    assert_int_equal(trc_trainer_create(&model, NB, &tr), TRC_OK);
    trc_adamw opt;
    assert_int_equal(trc_adamw_init(&opt, model.num_params, 1e-5), TRC_OK);
    float *g = trc_trainer_grads(tr);
    for (int k = 0; k < STEPS; k++) {
        float loss;
        assert_int_equal(trc_trainer_forward(tr, NB, x0, tg, NULL, ue, NULL, &loss), TRC_OK);
        double rel = fabs((double)loss - want[k]) / fabs((double)want[k]);
        if (rel > 1e-4)
            fail_msg("%s step %d: loss %.8g, reference %.8g (relative %.2g)", case_file, k, loss,
                     want[k], rel);
        assert_int_equal(trc_trainer_backward(tr), TRC_OK);
        assert_int_equal(trc_clip_grad_norm(g, model.num_params, 1.0, NULL), TRC_OK);
        assert_int_equal(trc_adamw_step(&opt, model.params, g, 1e-3), TRC_OK);
    }
    /* The sequence must actually move: the losses of the reference are not all equal. */
    assert_true(want[STEPS - 1] < want[0]);

    trc_adamw_free(&opt);
    trc_trainer_free(tr);
    free(x0);
    free(tg);
    free(ue);
    free(want);
    trc_st_free(&st);
    trc_model_free(&model);
}

static void test_parity_small_init(void **state) {
    (void)state;
    run_case("small_init.safetensors", "small_init.case.safetensors");
}

static void test_parity_small_random(void **state) {
    (void)state;
    run_case("small_random.safetensors", "small_random.case.safetensors");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parity_small_init),
        cmocka_unit_test(test_parity_small_random),
    };
    return RUN_EVERY_ISA(tests, NULL, NULL);
}
