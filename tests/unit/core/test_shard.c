/* Tests of sharded generation and the merge (trc_dataset_generate_shard, trc_dataset_merge) and
 * of the SVG writer (trc/svg.h): shards joined in any order give the single run's arrays and
 * settings, with an iterative expert's unconverged samples replaced as the single run replaces
 * them; the shard metadata survives the .npz round trip; bad shard sets are refused with nothing
 * allocated; the SVG writer escapes text and clamps what falls outside a panel. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trc/dataset.h"
#include "trc/error.h"
#include "trc/svg.h"

#include "../common.h"

static int setup(void **state) {
    (void)state;
    return test_tmpdir_make("shard");
}

static int teardown(void **state) {
    (void)state;
    return test_rm_rf(test_tmpdir);
}

static void assert_same_data(const trc_dataset *a, const trc_dataset *b) {
    assert_int_equal(a->n, b->n);
    const size_t n = a->n, s = (size_t)a->s, U = (size_t)a->T * a->m, X = ((size_t)a->T + 1) * s;
    assert_memory_equal(a->initial_states, b->initial_states, n * s * sizeof(float));
    assert_memory_equal(a->target_states, b->target_states, n * s * sizeof(float));
    assert_memory_equal(a->control_sequences, b->control_sequences, n * U * sizeof(float));
    assert_memory_equal(a->state_trajectories, b->state_trajectories, n * X * sizeof(float));
    assert_memory_equal(a->costs, b->costs, n * sizeof(float));
    assert_true((a->solve_stats == NULL) == (b->solve_stats == NULL));
    if (a->solve_stats)
        assert_memory_equal(a->solve_stats, b->solve_stats, 2 * n * sizeof(float));
    assert_true(b->has_settings && b->shard.count == 0);
    assert_string_equal(a->settings.expert, b->settings.expert);
    assert_true(a->settings.seed == b->settings.seed);
}

/* Generates the run whole and in `count` shards, merges them in reverse order, compares. */
static void check_run(const trc_gen_settings *g, size_t n, int count, size_t *replaced) {
    const trc_gen_options opt = {.threads = 2};
    trc_dataset whole, merged, *sh = calloc((size_t)count, sizeof *sh);
    trc_dataset *rev = calloc((size_t)count, sizeof *rev);
    trc_gen_summary sum;
    assert_non_null(sh);
    assert_non_null(rev);
    assert_int_equal(trc_dataset_generate_with(g, n, &opt, &whole, NULL), TRC_OK);
    size_t total = 0;
    for (int i = 0; i < count; i++) {
        assert_int_equal(trc_dataset_generate_shard(g, n, i, count, &opt, &sh[i], NULL), TRC_OK);
        assert_int_equal(sh[i].shard.index, i);
        assert_int_equal(sh[i].shard.first, total);
        total += sh[i].n;
        rev[count - 1 - i] = sh[i];
    }
    assert_int_equal(total, n); /* every candidate of the run, once */
    assert_int_equal(trc_dataset_merge(rev, (size_t)count, NULL, &opt, &merged, &sum), TRC_OK);
    assert_same_data(&whole, &merged);
    *replaced = sum.drawn - n;
    trc_dataset_free(&whole);
    trc_dataset_free(&merged);
    for (int i = 0; i < count; i++)
        trc_dataset_free(&sh[i]);
    free(sh);
    free(rev);
}

static void test_merge_equals_single_run(void **state) {
    (void)state;
    trc_gen_settings g;
    assert_int_equal(trc_gen_settings_default("double_integrator", &g), 0);
    g.seed = 17;
    size_t replaced;
    check_run(&g, 101, 1, &replaced);
    check_run(&g, 101, 4, &replaced);
    check_run(&g, 101, 101, &replaced);
    assert_int_equal(replaced, 0);
}

static void test_merge_replaces_unconverged(void **state) {
    (void)state;
    trc_gen_settings g;
    assert_int_equal(trc_gen_settings_default("van_der_pol", &g), 0);
    snprintf(g.expert, sizeof g.expert, "ilqr");
    assert_int_equal(trc_gen_settings_set_param(&g, "max_iters", 4), TRC_OK);
    g.seed = 3;
    size_t replaced;
    check_run(&g, 24, 3, &replaced);
    assert_true(replaced > 0); /* the tail was solved by the merge */
}

static void test_shard_round_trip_and_refusals(void **state) {
    (void)state;
    trc_gen_settings g, other;
    assert_int_equal(trc_gen_settings_default("double_integrator", &g), 0);
    other = g;
    other.seed = g.seed + 1;
    trc_dataset a[3], b, loaded, out;
    for (int i = 0; i < 3; i++)
        assert_int_equal(trc_dataset_generate_shard(&g, 30, i, 3, NULL, &a[i], NULL), TRC_OK);
    char path[512];
    snprintf(path, sizeof path, "%s/s1.npz", test_tmpdir);
    assert_int_equal(trc_dataset_save(path, &a[1]), TRC_OK);
    assert_int_equal(trc_dataset_load(path, &loaded), TRC_OK);
    assert_int_equal(loaded.shard.index, 1);
    assert_int_equal(loaded.shard.count, 3);
    assert_int_equal(loaded.shard.total, 30);
    assert_int_equal(loaded.shard.first, 10);

    trc_dataset missing[2] = {a[0], a[2]};
    assert_int_equal(trc_dataset_merge(missing, 2, NULL, NULL, &out, NULL), TRC_EINVAL);
    assert_non_null(strstr(trc_errmsg(), "1 of 3 shards missing (index 1)"));
    assert_null(out.initial_states);
    trc_dataset dup[4] = {a[0], a[1], loaded, a[2]};
    const char *names[4] = {"a0", "a1", "loaded", "a2"};
    assert_int_equal(trc_dataset_merge(dup, 4, names, NULL, &out, NULL), TRC_EINVAL);
    assert_non_null(strstr(trc_errmsg(), "shard 1/3 given twice: a1 and loaded"));
    assert_int_equal(trc_dataset_generate_shard(&other, 30, 2, 3, NULL, &b, NULL), TRC_OK);
    trc_dataset mixed[3] = {a[0], a[1], b};
    assert_int_equal(trc_dataset_merge(mixed, 3, NULL, NULL, &out, NULL), TRC_EINVAL);
    assert_non_null(strstr(trc_errmsg(), "shards of different runs"));
    trc_dataset whole;
    assert_int_equal(trc_dataset_generate(&g, 30, &whole), TRC_OK);
    assert_int_equal(trc_dataset_merge(&whole, 1, NULL, NULL, &out, NULL), TRC_EINVAL);
    assert_non_null(strstr(trc_errmsg(), "not a shard"));
    /* ranges: index and count checked, every shard gets a sample */
    assert_int_equal(trc_dataset_generate_shard(&g, 30, 3, 3, NULL, &out, NULL), TRC_EINVAL);
    assert_int_equal(trc_dataset_generate_shard(&g, 30, -1, 3, NULL, &out, NULL), TRC_EINVAL);
    assert_int_equal(trc_dataset_generate_shard(&g, 2, 0, 3, NULL, &out, NULL), TRC_EINVAL);
    trc_dataset_free(&whole);
    trc_dataset_free(&b);
    trc_dataset_free(&loaded);
    for (int i = 0; i < 3; i++)
        trc_dataset_free(&a[i]);
}

static void test_svg_writer(void **state) {
    (void)state;
    trc_svg b;
    trc_svg_begin(&b, 200, 100, "a < b & \"c\"");
    trc_svg_axes a = {20, 10, 160, 80, 0, 1, NAN, NAN, 0, 0, 0};
    trc_svg_range_add(&a.y0, &a.y1, 2.0, 0);
    trc_svg_range_add(&a.y0, &a.y1, NAN, 0);
    trc_svg_range_add(&a.y0, &a.y1, -2.0, 0);
    trc_svg_range_fix(&a.y0, &a.y1, 0, 0);
    assert_true(a.y0 == -2.0 && a.y1 == 2.0);
    trc_svg_axes_draw(&b, &a, "t", "x", NULL);
    const float y[3] = {0.0f, 100.0f, NAN}; /* 100 is clamped to the top, NAN skipped */
    trc_svg_polyline(&b, &a, NULL, 0, 0.0, 0.5, y, 1, 3, "stroke=\"red\"");
    char *text = trc_svg_finish(&b);
    assert_non_null(text);
    assert_non_null(strstr(text, "a &lt; b &amp; &quot;c&quot;"));
    assert_non_null(strstr(text, "points=\"20.0,50.0 100.0,10.0 \""));
    assert_non_null(strstr(text, "</svg>\n"));
    free(text);
    double lo = NAN, hi = NAN; /* log ranges round out to decades */
    trc_svg_range_add(&lo, &hi, 0.03, 1);
    trc_svg_range_add(&lo, &hi, -1.0, 1);
    trc_svg_range_add(&lo, &hi, 4.0, 1);
    trc_svg_range_fix(&lo, &hi, 1, 0);
    assert_true(fabs(lo - 0.01) < 1e-15 && fabs(hi - 10.0) < 1e-12);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_merge_equals_single_run),
        cmocka_unit_test(test_merge_replaces_unconverged),
        cmocka_unit_test(test_shard_round_trip_and_refusals),
        cmocka_unit_test(test_svg_writer),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
