/* A training job's dataset is `trc generate`'s: the same system, expert and seed give the same
 * bytes, past one generation chunk (16,384 samples), and a set cancel flag stops it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../../server/jobs_run.h"
#include "trc/error.h"
#include "trc/fileio.h"

#include "../common.h"

/* The file `trc generate` writes for these settings (its code path: defaults of the system,
 * the expert and seed, trc_dataset_generate, trc_dataset_save). */
static void generate_like_cli(const char *system, const char *expert, uint64_t seed, size_t n,
                              const char *path) {
    trc_gen_settings g;
    assert_int_equal(trc_gen_settings_default(system, &g), 0);
    snprintf(g.expert, sizeof g.expert, "%s", expert);
    g.seed = seed;
    trc_dataset ds;
    assert_int_equal(trc_dataset_generate(&g, n, &ds), 0);
    assert_int_equal(trc_dataset_save(path, &ds), 0);
    trc_dataset_free(&ds);
}

static void expect_same_bytes(const char *a, const char *b) {
    uint8_t *ba, *bb;
    size_t la, lb;
    assert_int_equal(trc_read_file(a, &ba, &la), 0);
    assert_int_equal(trc_read_file(b, &bb, &lb), 0);
    assert_int_equal(la, lb);
    assert_memory_equal(ba, bb, la);
    free(ba);
    free(bb);
}

static void test_job_dataset_is_generates(void **state) {
    (void)state;
    char dir[] = "/tmp/trc-jobdata-XXXXXX";
    assert_non_null(mkdtemp(dir));
    const char *experts[] = {"min_energy", "lqr"};
    for (size_t e = 0; e < 2; e++) {
        trc_train_spec spec;
        trc_train_spec_default(&spec);
        snprintf(spec.data.settings.expert, sizeof spec.data.settings.expert, "%s", experts[e]);
        spec.train.seed = 7 + e;
        spec.data.num_samples = 20000; /* past one chunk of 16,384 */
        atomic_int cancel = 0;
        trc_dataset ds;
        assert_int_equal(job_make_dataset(&spec, &cancel, &ds), 0);
        char job_path[128], cli_path[128];
        snprintf(job_path, sizeof job_path, "%s/job.npz", dir);
        snprintf(cli_path, sizeof cli_path, "%s/cli.npz", dir);
        assert_int_equal(trc_dataset_save(job_path, &ds), 0);
        trc_dataset_free(&ds);
        generate_like_cli(spec.data.settings.system, spec.data.settings.expert, spec.train.seed,
                          20000, cli_path);
        expect_same_bytes(job_path, cli_path);
    }
    trc_train_spec spec;
    trc_train_spec_default(&spec);
    atomic_int cancel = 1;
    trc_dataset ds;
    assert_int_equal(job_make_dataset(&spec, &cancel, &ds), TRC_ECANCELED);
    assert_null(ds.initial_states);
    assert_int_equal(test_rm_rf(dir), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_job_dataset_is_generates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
