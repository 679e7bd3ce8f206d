/* Unit tests of the SQLite job store: CRUD, ordering and filters, per-epoch history, progress,
 * state transitions, start-up recovery of jobs left running, persistence across reopen. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../../server/jobstore.h"
#include "trc/error.h"

#include "../common.h"

typedef struct fixture {
    char dir[64];
    char path[128];
    jobstore *js;
} fixture;

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/trc-jobstore-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->path, sizeof f->path, "%s/jobs.db", f->dir);
    if (jobstore_open(f->path, &f->js) != TRC_OK)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    jobstore_close(f->js);
    if (test_rm_rf(f->dir) != 0)
        return -1;
    free(f);
    return 0;
}

static void make_job(trc_job *job, const char *id, const char *name, double created) {
    memset(job, 0, sizeof *job);
    snprintf(job->id, sizeof job->id, "%s", id);
    snprintf(job->name, sizeof job->name, "%s", name);
    job->status = TRC_JOB_QUEUED;
    trc_train_spec_default(&job->spec);
    snprintf(job->spec.name, sizeof job->spec.name, "%s", name);
    job->spec.data.num_samples = 300;
    job->spec.train.epochs = 7;
    job->spec.train.lr = 0.0025;
    job->spec.train.val_split = 0.2;
    job->epochs = job->spec.train.epochs;
    job->created_at = created;
}

static void test_insert_get_roundtrip(void **state) {
    fixture *f = *state;
    trc_job in, out;
    make_job(&in, "a1b2c3", "mymodel", 1700000000.5);
    assert_int_equal(jobstore_insert(f->js, &in), TRC_OK);
    assert_int_equal(jobstore_get(f->js, "a1b2c3", &out), TRC_OK);
    assert_string_equal(out.id, "a1b2c3");
    assert_string_equal(out.name, "mymodel");
    assert_int_equal(out.status, TRC_JOB_QUEUED);
    assert_string_equal(out.spec.name, "mymodel");
    assert_string_equal(out.spec.data.settings.system, "double_integrator");
    assert_string_equal(trc_sched_name(out.spec.train.scheduler), "cosine");
    assert_int_equal(out.spec.data.num_samples, 300);
    assert_int_equal(out.spec.train.epochs, 7);
    assert_true(out.spec.train.lr == 0.0025);
    assert_true(out.spec.train.val_split == 0.2);
    assert_true(out.created_at == 1700000000.5);
    assert_true(out.started_at == 0 && out.finished_at == 0);
    assert_int_equal(out.epoch, 0);
    assert_int_equal(out.epochs, 7);
    assert_string_equal(out.error, "");
    assert_string_equal(out.result_model, "");
    assert_int_equal(out.n_history, 0);
    trc_job_free(&out);

    /* the same id twice is refused; an unknown id is not found */
    assert_int_equal(jobstore_insert(f->js, &in), TRC_EINVAL);
    assert_int_equal(jobstore_get(f->js, "nope", &out), TRC_ENOTFOUND);
    assert_non_null(strstr(trc_errmsg(), "nope"));
}

static void test_list_order_and_filter(void **state) {
    fixture *f = *state;
    trc_job j;
    make_job(&j, "j1", "one", 100);
    assert_int_equal(jobstore_insert(f->js, &j), TRC_OK);
    make_job(&j, "j2", "two", 200);
    assert_int_equal(jobstore_insert(f->js, &j), TRC_OK);
    make_job(&j, "j3", "three", 300);
    assert_int_equal(jobstore_insert(f->js, &j), TRC_OK);
    assert_int_equal(jobstore_mark_running(f->js, "j2", 250), TRC_OK);

    trc_job *list;
    size_t n;
    assert_int_equal(jobstore_list(f->js, -1, &list, &n), TRC_OK);
    assert_int_equal(n, 3);
    assert_string_equal(list[0].id, "j3"); /* newest first */
    assert_string_equal(list[1].id, "j2");
    assert_string_equal(list[2].id, "j1");
    jobstore_free_list(list, n);

    assert_int_equal(jobstore_list(f->js, TRC_JOB_RUNNING, &list, &n), TRC_OK);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].id, "j2");
    assert_true(list[0].started_at == 250);
    jobstore_free_list(list, n);

    assert_int_equal(jobstore_list(f->js, TRC_JOB_SUCCEEDED, &list, &n), TRC_OK);
    assert_int_equal(n, 0);
    jobstore_free_list(list, n);
    assert_int_equal(jobstore_list(f->js, TRC_JOB_NSTATUS, &list, &n), TRC_EINVAL);

    long counts[TRC_JOB_NSTATUS];
    assert_int_equal(jobstore_count(f->js, counts), TRC_OK);
    assert_int_equal(counts[TRC_JOB_QUEUED], 2);
    assert_int_equal(counts[TRC_JOB_RUNNING], 1);
    assert_int_equal(counts[TRC_JOB_FAILED], 0);
}

static void test_epochs_history(void **state) {
    fixture *f = *state;
    trc_job j, out;
    make_job(&j, "h1", "hist", 100);
    assert_int_equal(jobstore_insert(f->js, &j), TRC_OK);
    for (int e = 1; e <= 4; e++) {
        trc_job_epoch row = {e, 1.0 / e, e == 2 ? NAN : 2.0 / e, 1e-3, 0.5, 1000.0 * e, ""};
        assert_int_equal(jobstore_put_epoch(f->js, "h1", &row), TRC_OK);
        assert_int_equal(jobstore_set_progress(f->js, "h1", e, 7), TRC_OK);
    }
    /* replacing an epoch (a resumed run redoing it) keeps one row */
    trc_job_epoch again = {
        3,
        0.3,
        0.33,
        5e-4,
        0.25,
        3333,
        "{\"train_terms\":{\"terminal\":0.25},\"val_terms\":{\"terminal\":0.3}}"};
    assert_int_equal(jobstore_put_epoch(f->js, "h1", &again), TRC_OK);

    assert_int_equal(jobstore_get(f->js, "h1", &out), TRC_OK);
    assert_int_equal(out.n_history, 4);
    assert_int_equal(out.epoch, 4);
    assert_true(fabs(out.fraction - 4.0 / 7) < 1e-12);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(out.history[i].epoch, (int)i + 1);
    assert_true(out.history[0].train_loss == 1.0);
    assert_true(isnan(out.history[1].val_loss)); /* NaN stored as NULL, read back as NaN */
    assert_true(out.history[2].train_loss == 0.3 && out.history[2].samples_per_sec == 3333);
    assert_string_equal(out.history[2].terms, again.terms); /* the objective's terms */
    assert_string_equal(out.history[1].terms, "");
    assert_true(out.history[3].samples_per_sec == 4000);
    trc_job_free(&out);

    assert_int_equal(jobstore_trim_epochs(f->js, "h1", 2), TRC_OK);
    assert_int_equal(jobstore_get(f->js, "h1", &out), TRC_OK);
    assert_int_equal(out.n_history, 2);
    assert_int_equal(out.history[1].epoch, 2);
    trc_job_free(&out);

    assert_int_equal(jobstore_set_progress(f->js, "missing", 1, 2), TRC_ENOTFOUND);
}

static void test_transitions(void **state) {
    fixture *f = *state;
    trc_job j, out;
    make_job(&j, "t1", "trans", 100);
    assert_int_equal(jobstore_insert(f->js, &j), TRC_OK);
    assert_int_equal(jobstore_mark_running(f->js, "t1", 110), TRC_OK);
    assert_int_equal(
        jobstore_finish(f->js, "t1", TRC_JOB_SUCCEEDED, 120, NULL, "trans", "trans.safetensors"),
        TRC_OK);
    assert_int_equal(jobstore_get(f->js, "t1", &out), TRC_OK);
    assert_int_equal(out.status, TRC_JOB_SUCCEEDED);
    assert_true(out.started_at == 110 && out.finished_at == 120);
    assert_string_equal(out.result_model, "trans");
    assert_string_equal(out.result_checkpoint, "trans.safetensors");
    assert_string_equal(out.error, "");
    assert_true(out.fraction == 1.0);
    trc_job_free(&out);

    /* a non-terminal status is not a finish */
    assert_int_equal(jobstore_finish(f->js, "t1", TRC_JOB_RUNNING, 130, NULL, NULL, NULL),
                     TRC_EINVAL);

    assert_int_equal(
        jobstore_finish(f->js, "t1", TRC_JOB_CANCELLED, 130, "cancelled by request", NULL, NULL),
        TRC_OK);
    assert_int_equal(jobstore_get(f->js, "t1", &out), TRC_OK);
    assert_int_equal(out.status, TRC_JOB_CANCELLED);
    assert_string_equal(out.error, "cancelled by request");
    assert_string_equal(out.result_model, "");
    trc_job_free(&out);

    /* resume: back to queued with error and finish time cleared */
    assert_int_equal(jobstore_mark_queued(f->js, "t1"), TRC_OK);
    assert_int_equal(jobstore_get(f->js, "t1", &out), TRC_OK);
    assert_int_equal(out.status, TRC_JOB_QUEUED);
    assert_string_equal(out.error, "");
    assert_true(out.finished_at == 0 && out.started_at == 110);
    trc_job_free(&out);
    assert_int_equal(jobstore_mark_running(f->js, "zz", 1), TRC_ENOTFOUND);
}

static void test_delete(void **state) {
    fixture *f = *state;
    trc_job j, out;
    make_job(&j, "d1", "del", 100);
    assert_int_equal(jobstore_insert(f->js, &j), TRC_OK);
    trc_job_epoch row = {1, 0.5, 0.6, 1e-3, 1, 100, ""};
    assert_int_equal(jobstore_put_epoch(f->js, "d1", &row), TRC_OK);
    assert_int_equal(jobstore_delete(f->js, "d1"), TRC_OK);
    assert_int_equal(jobstore_get(f->js, "d1", &out), TRC_ENOTFOUND);
    assert_int_equal(jobstore_delete(f->js, "d1"), TRC_ENOTFOUND);
    /* the history went with it: a new job with the same id starts empty */
    assert_int_equal(jobstore_insert(f->js, &j), TRC_OK);
    assert_int_equal(jobstore_get(f->js, "d1", &out), TRC_OK);
    assert_int_equal(out.n_history, 0);
    trc_job_free(&out);
}

static void test_recover_after_restart(void **state) {
    fixture *f = *state;
    trc_job j, out;
    make_job(&j, "r1", "crashed", 100);
    assert_int_equal(jobstore_insert(f->js, &j), TRC_OK);
    make_job(&j, "r2", "waiting", 101);
    assert_int_equal(jobstore_insert(f->js, &j), TRC_OK);
    make_job(&j, "r3", "done", 102);
    assert_int_equal(jobstore_insert(f->js, &j), TRC_OK);
    assert_int_equal(jobstore_mark_running(f->js, "r1", 110), TRC_OK);
    trc_job_epoch row = {1, 0.5, 0.6, 1e-3, 1, 100, ""};
    assert_int_equal(jobstore_put_epoch(f->js, "r1", &row), TRC_OK);
    assert_int_equal(jobstore_set_progress(f->js, "r1", 1, 7), TRC_OK);
    assert_int_equal(jobstore_mark_running(f->js, "r3", 111), TRC_OK);
    assert_int_equal(
        jobstore_finish(f->js, "r3", TRC_JOB_SUCCEEDED, 112, NULL, "done", "done.safetensors"),
        TRC_OK);

    /* the process "dies": close without any cleanup, then reopen like a restart */
    jobstore_close(f->js);
    f->js = NULL;
    assert_int_equal(jobstore_open(f->path, &f->js), TRC_OK);
    int n = -1;
    const char *why = "trcd stopped while the job was running (crash or kill)";
    assert_int_equal(jobstore_recover(f->js, 200, why, &n), TRC_OK);
    assert_int_equal(n, 1);

    assert_int_equal(jobstore_get(f->js, "r1", &out), TRC_OK);
    assert_int_equal(out.status, TRC_JOB_FAILED);
    assert_string_equal(out.error, why);
    assert_true(out.finished_at == 200);
    assert_int_equal(out.n_history, 1); /* history survives */
    assert_int_equal(out.epoch, 1);
    trc_job_free(&out);
    assert_int_equal(jobstore_get(f->js, "r2", &out), TRC_OK);
    assert_int_equal(out.status, TRC_JOB_QUEUED); /* queued jobs stay queued */
    trc_job_free(&out);
    assert_int_equal(jobstore_get(f->js, "r3", &out), TRC_OK);
    assert_int_equal(out.status, TRC_JOB_SUCCEEDED);
    trc_job_free(&out);

    /* a second recovery finds nothing more */
    assert_int_equal(jobstore_recover(f->js, 300, why, &n), TRC_OK);
    assert_int_equal(n, 0);
}

/* Pages follow the cursor newest first; the last page says so; a filter applies to pages. */
static void test_list_pages(void **state) {
    fixture *f = *state;
    char id[16];
    trc_job job;
    for (int i = 0; i < 5; i++) {
        snprintf(id, sizeof id, "p%d", i);
        make_job(&job, id, id, 100 + i);
        assert_int_equal(jobstore_insert(f->js, &job), TRC_OK);
    }
    assert_int_equal(jobstore_finish(f->js, "p1", TRC_JOB_FAILED, 200, "x", NULL, NULL), TRC_OK);
    const char *want[] = {"p4", "p3", "p2", "p1", "p0"};
    long long cursor = 0, next = 0;
    size_t at = 0, pages = 0, n;
    trc_job *list;
    do {
        assert_int_equal(jobstore_list_page(f->js, -1, cursor, 2, &list, &n, &next), TRC_OK);
        assert_true(n <= 2);
        for (size_t i = 0; i < n; i++)
            assert_string_equal(list[i].id, want[at++]);
        jobstore_free_list(list, n);
        cursor = next;
        pages++;
    } while (next);
    assert_int_equal(at, 5);
    assert_int_equal(pages, 3);
    assert_int_equal(jobstore_list_page(f->js, TRC_JOB_QUEUED, 0, 3, &list, &n, &next), TRC_OK);
    assert_int_equal(n, 3);
    assert_string_equal(list[2].id, "p2");
    jobstore_free_list(list, n);
    assert_int_equal(jobstore_list_page(f->js, TRC_JOB_QUEUED, next, 3, &list, &n, &next), TRC_OK);
    assert_int_equal(n, 1); /* p1 failed: only p0 is left */
    assert_string_equal(list[0].id, "p0");
    assert_int_equal(next, 0);
    jobstore_free_list(list, n);
}

/* Retention: finished jobs beyond the newest `keep`, and those finished before a time. */
static void test_expired(void **state) {
    fixture *f = *state;
    char id[16];
    trc_job job;
    for (int i = 0; i < 5; i++) {
        snprintf(id, sizeof id, "e%d", i);
        make_job(&job, id, id, 100 + i);
        assert_int_equal(jobstore_insert(f->js, &job), TRC_OK);
        if (i != 2) /* e2 stays queued: never pruned */
            assert_int_equal(
                jobstore_finish(f->js, id, TRC_JOB_SUCCEEDED, 200 + i, NULL, NULL, NULL), TRC_OK);
    }
    char(*ids)[TRC_JOB_ID_MAX];
    size_t n;
    assert_int_equal(jobstore_expired(f->js, 2, 0, &ids, &n), TRC_OK);
    assert_int_equal(n, 2);
    assert_string_equal(ids[0], "e1");
    assert_string_equal(ids[1], "e0");
    free(ids);
    assert_int_equal(jobstore_expired(f->js, 100, 203.5, &ids, &n), TRC_OK);
    assert_int_equal(n, 3); /* e3, e1, e0 finished before 203.5 */
    assert_string_equal(ids[0], "e3");
    free(ids);
    assert_int_equal(jobstore_expired(f->js, 100, 0, &ids, &n), TRC_OK);
    assert_int_equal(n, 0);
    free(ids);
}

static void test_open_errors(void **state) {
    (void)state;
    jobstore *js = (jobstore *)1;
    assert_int_equal(jobstore_open("", &js), TRC_EINVAL);
    assert_null(js);
    assert_int_equal(jobstore_open("/nonexistent-dir-trc/x/jobs.db", &js), TRC_EIO);
    assert_null(js);
    jobstore_close(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_insert_get_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_order_and_filter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_epochs_history, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transitions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recover_after_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expired, setup, teardown),
        cmocka_unit_test(test_open_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
