/* Runs a cmocka group once per instruction-set path this machine supports (trc/cpu.h: avx512,
 * avx2, generic), so every path meets the same fixtures and tolerances. Include after cmocka.h. */
#ifndef TRC_TEST_ISA_PATHS_H
#define TRC_TEST_ISA_PATHS_H

#include <stdio.h>

#include "trc/cpu.h"

static inline int run_group_every_isa(const char *name, const struct CMUnitTest *tests, size_t n,
                                      CMFixtureFunction setup, CMFixtureFunction teardown) {
    int failed = 0;
    trc_isa start = trc_isa_active();
    for (int isa = TRC_ISA_COUNT - 1; isa >= 0; isa--) {
        if (trc_isa_set((trc_isa)isa) != 0)
            continue; /* this CPU cannot run it */
        char label[96];
        snprintf(label, sizeof label, "%s [%s]", name, trc_isa_name((trc_isa)isa));
        failed += _cmocka_run_group_tests(label, tests, n, setup, teardown);
    }
    trc_isa_set(start);
    return failed;
}

#define RUN_EVERY_ISA(tests, setup, teardown)                                                      \
    run_group_every_isa(__FILE__, tests, sizeof(tests) / sizeof((tests)[0]), setup, teardown)

#endif
