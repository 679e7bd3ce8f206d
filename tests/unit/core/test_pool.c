/* base/pool.h: every item of every run runs exactly once, on its own thread for items > 0, and a
 * run returns only when all have returned; both ways a team waits (spinning, and sleeping with
 * spin 0), runs of fewer items than the team and of more (the rest on the caller), a NULL team,
 * and teams created and freed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "base/pool.h"

enum { TEAM = 4, RUNS = 2000 };

typedef struct item {
    int runs;         /* times this item ran */
    int last_run;     /* the run it last saw */
    pthread_t thread; /* where it last ran */
    const int *run;   /* the caller's run counter */
    atomic_int *live; /* items running now */
} item;

static void *work(void *p) {
    item *it = p;
    atomic_fetch_add(it->live, 1);
    it->runs++;
    it->last_run = *it->run;
    it->thread = pthread_self();
    volatile double x = 0; /* a little work, so that items overlap */
    for (int i = 0; i < 200; i++)
        x += i;
    atomic_fetch_sub(it->live, 1);
    return NULL;
}

static void exercise(trc_pool *pool, int spin_check) {
    item items[TEAM];
    int run = 0;
    atomic_int live;
    atomic_init(&live, 0);
    memset(items, 0, sizeof items);
    for (int t = 0; t < TEAM; t++) {
        items[t].run = &run;
        items[t].live = &live;
    }
    int expect[TEAM] = {0};
    for (run = 1; run <= RUNS; run++) {
        size_t n = 1 + (size_t)(run % TEAM); /* 1 .. TEAM items */
        trc_pool_run(pool, work, items, sizeof items[0], n);
        assert_int_equal(atomic_load(&live), 0); /* every item had returned */
        for (size_t t = 0; t < n; t++) {
            expect[t]++;
            assert_int_equal(items[t].last_run, run);
        }
        assert_true(pthread_equal(items[0].thread, pthread_self())); /* item 0: the caller */
        for (size_t t = 1; t < n && spin_check; t++)
            assert_false(pthread_equal(items[t].thread, pthread_self()));
    }
    for (int t = 0; t < TEAM; t++)
        assert_int_equal(items[t].runs, expect[t]);
}

static void test_spinning_team(void **state) {
    (void)state;
    trc_pool *pool = trc_pool_create(TEAM, 1e9); /* never sleeps between these runs */
    assert_non_null(pool);
    exercise(pool, 1);
    trc_pool_free(pool);
}

static void test_sleeping_team(void **state) {
    (void)state;
    trc_pool *pool = trc_pool_create(TEAM, 0); /* sleeps after every run */
    assert_non_null(pool);
    exercise(pool, 1);
    trc_pool_free(pool);
}

static void test_default_team_and_none(void **state) {
    (void)state;
    trc_pool *pool = trc_pool_create(TEAM, TRC_POOL_SPIN_NS);
    assert_non_null(pool);
    exercise(pool, 1);
    trc_pool_free(pool);
    exercise(NULL, 1);              /* no team: trc_parallel_run, threads per run */
    pool = trc_pool_create(2, 1e6); /* runs of up to TEAM items on a team of 2: the rest on the
                                     * caller, none dropped */
    assert_non_null(pool);
    exercise(pool, 0);
    trc_pool_free(pool);
    trc_pool_free(NULL);
    for (int i = 0; i < 50; i++) /* teams that never run still stop cleanly */
        trc_pool_free(trc_pool_create(TEAM, i % 2 ? 0 : 1e6));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spinning_team),
        cmocka_unit_test(test_sleeping_team),
        cmocka_unit_test(test_default_team_and_none),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
