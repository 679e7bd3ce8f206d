/* Option descriptors on a small table of every type: defaults land in the struct, text parses
 * with range and choice checks, validation names the option in one line, the auto sentinel is
 * accepted outside the range, flags and descriptions read as documented, and a formatted value
 * parses back exactly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "trc/error.h"
#include "trc/option.h"

typedef struct demo {
    int epochs;
    double lr;
    double gamma;
    int verbose;
    uint64_t seed;
    char size[8];
    int sched;
    char path[16];
} demo;

static const char *const sizes[] = {"small", "medium", "large", NULL};
static const char *const scheds[] = {"cosine", "step", "none", NULL};

static const trc_option demo_opts[] = {
    {.name = "epochs",
     .type = TRC_OPT_INT,
     .offset = offsetof(demo, epochs),
     .def = 100,
     .min = 1,
     .max = 1000,
     .job_max = 50,
     .help = "epoch budget",
     .where = TRC_OPT_ALL},
    {.name = "lr",
     .type = TRC_OPT_DOUBLE,
     .offset = offsetof(demo, lr),
     .def = 1e-3,
     .min = 0,
     .max = 10,
     .min_open = 1,
     .help = "learning rate",
     .where = TRC_OPT_ALL},
    {.name = "gamma",
     .type = TRC_OPT_DOUBLE,
     .offset = offsetof(demo, gamma),
     .def = 0,
     .min = 0,
     .max = 1,
     .min_open = 1,
     .auto_text = "0.1 for step",
     .help = "decay factor",
     .where = TRC_OPT_ALL},
    {.name = "verbose",
     .type = TRC_OPT_BOOL,
     .offset = offsetof(demo, verbose),
     .def = 1,
     .help = "talk",
     .where = TRC_OPT_CLI},
    {.name = "seed",
     .type = TRC_OPT_U64,
     .offset = offsetof(demo, seed),
     .def = 42,
     .help = "seed",
     .where = TRC_OPT_ALL},
    {.name = "model_size",
     .type = TRC_OPT_STRING,
     .offset = offsetof(demo, size),
     .size = sizeof(((demo *)0)->size),
     .def_str = "medium",
     .choices = sizes,
     .help = "size",
     .where = TRC_OPT_ALL},
    {.name = "scheduler",
     .type = TRC_OPT_ENUM,
     .offset = offsetof(demo, sched),
     .def_str = "step",
     .choices = scheds,
     .help = "schedule",
     .where = TRC_OPT_ALL},
    {.name = "K",
     .type = TRC_OPT_STRING,
     .offset = offsetof(demo, path),
     .size = sizeof(((demo *)0)->path),
     .def_str = "x",
     .help = "free text",
     .where = TRC_OPT_CLI},
};
#define N (sizeof demo_opts / sizeof demo_opts[0])

static const trc_option *opt(const char *name) {
    const trc_option *o = trc_option_find(demo_opts, N, name);
    assert_non_null(o);
    return o;
}

static void test_defaults(void **state) {
    (void)state;
    demo d;
    memset(&d, 0xab, sizeof d);
    trc_options_default(demo_opts, N, &d);
    assert_int_equal(d.epochs, 100);
    assert_true(d.lr == 1e-3);
    assert_true(d.gamma == 0);
    assert_int_equal(d.verbose, 1);
    assert_true(d.seed == 42);
    assert_string_equal(d.size, "medium");
    assert_int_equal(d.sched, 1);
    assert_string_equal(d.path, "x");
    /* the defaults pass validation, auto sentinel included */
    assert_int_equal(trc_options_validate(demo_opts, N, &d), TRC_OK);
}

static void test_parse(void **state) {
    (void)state;
    demo d;
    memset(&d, 0, sizeof d);
    trc_options_default(demo_opts, N, &d);
    assert_int_equal(trc_option_parse(opt("epochs"), "7", NULL, &d), TRC_OK);
    assert_int_equal(d.epochs, 7);
    assert_int_equal(trc_option_parse(opt("lr"), "2.5e-2", NULL, &d), TRC_OK);
    assert_true(d.lr == 2.5e-2);
    assert_int_equal(trc_option_parse(opt("seed"), "18446744073709551615", NULL, &d), TRC_OK);
    assert_true(d.seed == UINT64_MAX);
    assert_int_equal(trc_option_parse(opt("model_size"), "large", NULL, &d), TRC_OK);
    assert_string_equal(d.size, "large");
    assert_int_equal(trc_option_parse(opt("scheduler"), "none", NULL, &d), TRC_OK);
    assert_int_equal(d.sched, 2);
    assert_int_equal(trc_option_parse(opt("verbose"), "false", NULL, &d), TRC_OK);
    assert_int_equal(d.verbose, 0);
    assert_int_equal(trc_option_parse(opt("gamma"), "0", NULL, &d), TRC_OK); /* auto */

    /* refusals: the field keeps its value, the message names the label and the range */
    struct {
        const char *name, *text, *label, *want;
    } bad[] = {
        {"epochs", "0", "--epochs", "--epochs: expected an integer in 1..1000, got '0'"},
        {"epochs", "1e3", NULL, "epochs: expected an integer in 1..1000, got '1e3'"},
        {"epochs", "99999999999", NULL, "epochs: expected"},
        {"lr", "0", NULL, "lr: expected a number in (0, 10], got '0'"},
        {"lr", "nan", NULL, "got 'nan'"},
        {"lr", "1x", NULL, "got '1x'"},
        {"lr", "", NULL, "got ''"},
        {"gamma", "1.5", NULL, "gamma: expected a number in (0, 1]"},
        {"seed", "-1", "--seed", "--seed: expected a non-negative integer, got '-1'"},
        {"model_size", "huge", NULL, "unknown model_size 'huge' (known: small, medium, large)"},
        {"scheduler", "warp", "--scheduler",
         "--scheduler: unknown scheduler 'warp' (known: cosine"},
        {"K", "", "-K", "-K: empty value"},
        {"K", "0123456789abcdefXYZ", NULL, "K: at most 15 characters"},
        {"verbose", "yes", NULL, "expected true or false"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        demo before = d;
        int rc = trc_option_parse(opt(bad[i].name), bad[i].text, bad[i].label, &d);
        if (rc != TRC_EINVAL || !strstr(trc_errmsg(), bad[i].want))
            fail_msg("%s '%s': rc %d, '%s' (want '%s')", bad[i].name, bad[i].text, rc, trc_errmsg(),
                     bad[i].want);
        assert_memory_equal(&before, &d, sizeof d);
        assert_null(strchr(trc_errmsg(), '\n'));
    }
}

static void test_validate(void **state) {
    (void)state;
    demo d;
    trc_options_default(demo_opts, N, &d);
    d.lr = -1;
    assert_int_equal(trc_options_validate(demo_opts, N, &d), TRC_EINVAL);
    assert_string_equal(trc_errmsg(), "lr must be a number in (0, 10], got -1");
    d.lr = NAN;
    assert_int_equal(trc_options_validate(demo_opts, N, &d), TRC_EINVAL);
    assert_non_null(strstr(trc_errmsg(), "lr must be"));
    d.lr = 1;
    d.epochs = 1001;
    assert_int_equal(trc_options_validate(demo_opts, N, &d), TRC_EINVAL);
    assert_string_equal(trc_errmsg(), "epochs must be an integer in 1..1000, got 1001");
    d.epochs = 5;
    snprintf(d.size, sizeof d.size, "tiny");
    assert_int_equal(trc_options_validate(demo_opts, N, &d), TRC_EINVAL);
    assert_non_null(strstr(trc_errmsg(), "model_size must be one of small, medium, large"));
    memset(d.size, 'x', sizeof d.size); /* unterminated */
    assert_int_equal(trc_options_validate(demo_opts, N, &d), TRC_EINVAL);
    assert_non_null(strstr(trc_errmsg(), "unterminated"));
    snprintf(d.size, sizeof d.size, "small");
    d.sched = 3;
    assert_int_equal(trc_options_validate(demo_opts, N, &d), TRC_EINVAL);
    assert_non_null(strstr(trc_errmsg(), "scheduler"));
    d.sched = 0;
    d.verbose = 2;
    assert_int_equal(trc_options_validate(demo_opts, N, &d), TRC_EINVAL);
    assert_non_null(strstr(trc_errmsg(), "verbose"));
    d.verbose = 0;
    d.path[0] = 0; /* a free string must not be empty */
    assert_int_equal(trc_options_validate(demo_opts, N, &d), TRC_EINVAL);
    assert_non_null(strstr(trc_errmsg(), "K must be a non-empty string of at most 15"));
    snprintf(d.path, sizeof d.path, "ok");
    assert_int_equal(trc_options_validate(demo_opts, N, &d), TRC_OK);
}

static void test_setters(void **state) {
    (void)state;
    demo d;
    trc_options_default(demo_opts, N, &d);
    assert_int_equal(trc_option_set_number(opt("epochs"), 12, &d), TRC_OK);
    assert_int_equal(d.epochs, 12);
    assert_int_equal(trc_option_set_number(opt("epochs"), 1.5, &d), TRC_EINVAL);
    assert_int_equal(trc_option_set_number(opt("epochs"), 0, &d), TRC_EINVAL);
    assert_int_equal(trc_option_set_number(opt("lr"), INFINITY, &d), TRC_EINVAL);
    assert_int_equal(trc_option_set_number(opt("model_size"), 1, &d), TRC_EINVAL);
    assert_int_equal(trc_option_set_text(opt("scheduler"), "cosine", &d), TRC_OK);
    assert_int_equal(d.sched, 0);
    assert_string_equal(trc_option_text(opt("scheduler"), &d), "cosine");
    assert_int_equal(trc_option_set_text(opt("scheduler"), "warp", &d), TRC_EINVAL);
    assert_int_equal(trc_option_set_text(opt("lr"), "1", &d), TRC_EINVAL);
    assert_int_equal(trc_option_set_u64(opt("seed"), UINT64_MAX - 1, &d), TRC_OK);
    assert_true(trc_option_u64(opt("seed"), &d) == UINT64_MAX - 1);
    assert_int_equal(trc_option_set_number(opt("seed"), -1, &d), TRC_EINVAL);
    assert_true(trc_option_number(opt("epochs"), &d) == 12);

    /* is_default: the table's default, and for strings also "" */
    trc_options_default(demo_opts, N, &d);
    assert_true(trc_option_is_default(opt("lr"), &d) && trc_option_is_default(opt("seed"), &d));
    assert_true(trc_option_is_default(opt("model_size"), &d));
    d.size[0] = 0;
    assert_true(trc_option_is_default(opt("model_size"), &d));
    d.lr = 0.5;
    assert_false(trc_option_is_default(opt("lr"), &d));
    /* copy moves exactly one field */
    demo e;
    memset(&e, 0, sizeof e);
    trc_option_copy(opt("lr"), &e, &d);
    assert_true(e.lr == 0.5 && e.epochs == 0);
}

static void test_text(void **state) {
    (void)state;
    char buf[256];
    trc_option_flag(opt("model_size"), buf, sizeof buf);
    assert_string_equal(buf, "--model-size");
    trc_option_flag(opt("K"), buf, sizeof buf);
    assert_string_equal(buf, "-K");
    assert_ptr_equal(trc_option_find(demo_opts, N, "--model-size"), opt("model_size"));
    assert_null(trc_option_find(demo_opts, N, "--nope"));

    trc_option_describe(opt("epochs"), 0, buf, sizeof buf);
    assert_string_equal(buf, "an integer in 1..1000");
    trc_option_describe(opt("epochs"), 1, buf, sizeof buf);
    assert_string_equal(buf, "an integer in 1..50");
    assert_true(trc_option_max(opt("epochs"), 1) == 50 && trc_option_max(opt("lr"), 1) == 10);
    trc_option_describe(opt("scheduler"), 0, buf, sizeof buf);
    assert_string_equal(buf, "one of cosine, step, none");
    trc_option_default_text(opt("lr"), buf, sizeof buf);
    assert_string_equal(buf, "0.001");
    trc_option_default_text(opt("gamma"), buf, sizeof buf);
    assert_string_equal(buf, "0.1 for step");
    trc_option_default_text(opt("scheduler"), buf, sizeof buf);
    assert_string_equal(buf, "step");
    assert_string_equal(trc_option_choice(opt("model_size"), 2), "large");
    assert_null(trc_option_choice(opt("model_size"), 3));
    assert_null(trc_option_choice(opt("lr"), 0));
    assert_string_equal(trc_option_type_name(TRC_OPT_ENUM), "string");

    /* formatted values parse back to the same bits */
    demo a, b;
    memset(&a, 0, sizeof a); /* padding and the bytes after a string's end compare too */
    memset(&b, 0, sizeof b);
    trc_options_default(demo_opts, N, &a);
    trc_options_default(demo_opts, N, &b);
    a.lr = 0.1 + 0.2;
    a.seed = UINT64_MAX;
    a.sched = 2;
    for (size_t i = 0; i < N; i++) {
        trc_option_format(&demo_opts[i], &a, buf, sizeof buf);
        assert_int_equal(trc_option_parse(&demo_opts[i], buf, NULL, &b), TRC_OK);
    }
    assert_memory_equal(&a, &b, sizeof a);
}

/* A listing function as the source of choices (how system and expert names are offered). */
static const char *nth_color(size_t i) {
    static const char *const c[] = {"red", "green"};
    return i < 2 ? c[i] : NULL;
}

static void test_choice_function(void **state) {
    (void)state;
    char v[8] = "red";
    trc_option o = {.name = "color",
                    .type = TRC_OPT_STRING,
                    .size = sizeof v,
                    .def_str = "red",
                    .choice_at = nth_color};
    assert_int_equal(trc_option_check(&o, v), TRC_OK);
    assert_int_equal(trc_option_parse(&o, "green", NULL, v), TRC_OK);
    assert_string_equal(v, "green");
    assert_int_equal(trc_option_parse(&o, "blue", NULL, v), TRC_EINVAL);
    assert_non_null(strstr(trc_errmsg(), "unknown color 'blue' (known: red, green)"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults), cmocka_unit_test(test_parse),
        cmocka_unit_test(test_validate), cmocka_unit_test(test_setters),
        cmocka_unit_test(test_text),     cmocka_unit_test(test_choice_function),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
