/* The model registry (loading, naming, refusing paths outside the directory, atomic swap with
 * reference-counted snapshots, bad checkpoints keeping the old model, removal) and the dynamic
 * batcher (concurrent requests gathered, results identical to direct inference). */
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../../server/batcher.h"
#include "../../../server/metrics.h"
#include "../../../server/registry.h"
#include "trc/error.h"
#include "trc/fileio.h"

#include "../common.h"

static void copy(const char *src, const char *dst_name) {
    uint8_t *buf;
    size_t len;
    assert_int_equal(trc_read_file(src, &buf, &len), 0);
    assert_int_equal(trc_write_file_atomic(test_tmp_path(dst_name), buf, len), 0);
    free(buf);
}

static int setup(void **state) {
    (void)state;
    if (test_tmpdir_make("registry"))
        return -1;
    copy(test_data_path("small_init.safetensors"), "default.safetensors");
    copy(test_data_path("small_random.safetensors"), "rnd.safetensors");
    return 0;
}

static int teardown(void **state) {
    (void)state;
    return test_rm_rf(test_tmpdir);
}

static void test_load_dir_and_get(void **state) {
    (void)state;
    registry *reg;
    assert_int_equal(registry_create(test_tmpdir, &reg), 0);
    registry_set_default_dt(reg, 5.0 / 15.0); /* the bare fixtures record none */
    assert_int_equal(registry_load_dir(reg), 2);
    assert_int_equal(registry_count(reg), 2);
    model_snapshot *d = registry_get(reg, NULL), *r = registry_get(reg, "rnd");
    assert_non_null(d);
    assert_non_null(r);
    assert_string_equal(d->name, "default");
    assert_string_equal(d->system->name, "double_integrator");
    assert_int_equal(d->model.cfg.s, 2);
    assert_int_equal(strlen(d->sha256), 64);
    assert_string_not_equal(d->sha256, r->sha256);
    assert_null(registry_get(reg, "nosuch"));
    json_t *list = registry_list_json(reg);
    assert_int_equal(json_array_size(json_object_get(list, "models")), 2);
    json_decref(list);
    snapshot_release(d);
    snapshot_release(r);
    uint64_t loads, failures;
    registry_load_counts(reg, &loads, &failures);
    assert_int_equal(loads, 2);
    assert_int_equal(failures, 0);
    registry_free(reg);
}

static void test_swap_keeps_old_snapshot_alive(void **state) {
    (void)state;
    registry *reg;
    proto_error err;
    assert_int_equal(registry_create(test_tmpdir, &reg), 0);
    registry_set_default_dt(reg, 5.0 / 15.0); /* the bare fixtures record none */
    assert_int_equal(registry_load_file(reg, "m", "default.safetensors", &err), 0);
    model_snapshot *old = registry_get(reg, "m");
    float first = old->model.params[0];
    char old_sha[65];
    memcpy(old_sha, old->sha256, sizeof old_sha);
    assert_int_equal(registry_load_file(reg, "m", "rnd.safetensors", &err), 0);
    model_snapshot *cur = registry_get(reg, "m");
    assert_ptr_not_equal(old, cur);
    assert_string_not_equal(cur->sha256, old_sha);
    /* the old snapshot is still whole for its reader */
    assert_true(old->model.params[0] == first);
    assert_string_equal(old->sha256, old_sha);
    snapshot_release(old); /* freed here (ASan checks) */
    snapshot_release(cur);
    registry_free(reg);
}

static void test_refusals_keep_the_model(void **state) {
    (void)state;
    registry *reg;
    proto_error err;
    assert_int_equal(registry_create(test_tmpdir, &reg), 0);
    registry_set_default_dt(reg, 5.0 / 15.0); /* the bare fixtures record none */
    assert_int_equal(registry_load_file(reg, "m", "default.safetensors", &err), 0);
    model_snapshot *before = registry_get(reg, "m");
    assert_int_equal(registry_load_file(reg, "m", "../x.safetensors", &err), -1);
    assert_int_equal(err.code, 400);
    assert_int_equal(registry_load_file(reg, "m", "/etc/passwd", &err), -1);
    assert_int_equal(err.code, 400);
    assert_int_equal(registry_load_file(reg, "m", "missing.safetensors", &err), -1);
    assert_int_equal(err.code, 404);
    char link[512];
    snprintf(link, sizeof link, "%s/out.safetensors", test_tmpdir);
    assert_int_equal(symlink("/etc/passwd", link), 0);
    assert_int_equal(registry_load_file(reg, "m", "out.safetensors", &err), -1);
    assert_int_equal(err.code, 400);
    assert_non_null(strstr(err.message, "outside"));
    const uint8_t junk[64] = {1, 2, 3};
    assert_int_equal(registry_load_bytes(reg, "m", junk, sizeof junk, 0, &err), -1);
    assert_int_equal(err.code, 400);
    assert_string_equal(err.param, "checkpoint");
    assert_int_equal(registry_load_bytes(reg, "bad/name", junk, sizeof junk, 0, &err), -1);
    model_snapshot *after = registry_get(reg, "m");
    assert_ptr_equal(before, after);
    char path[512];
    snprintf(path, sizeof path, "%s/m.safetensors", test_tmpdir);
    assert_int_not_equal(access(path, F_OK), 0); /* a refused upload stores nothing */
    uint64_t loads, failures;
    registry_load_counts(reg, &loads, &failures);
    assert_int_equal(failures, 6);
    snapshot_release(before);
    snapshot_release(after);
    registry_free(reg);
}

static void test_upload_and_remove(void **state) {
    (void)state;
    registry *reg;
    proto_error err;
    assert_int_equal(registry_create(test_tmpdir, &reg), 0);
    registry_set_default_dt(reg, 5.0 / 15.0); /* the bare fixtures record none */
    uint8_t *buf;
    size_t len;
    assert_int_equal(trc_read_file(test_data_path("small_random.safetensors"), &buf, &len), 0);
    assert_int_equal(registry_load_bytes(reg, "up", buf, len, 0, &err), 0);
    free(buf);
    char path[512];
    snprintf(path, sizeof path, "%s/up.safetensors", test_tmpdir);
    assert_int_equal(access(path, F_OK), 0);
    model_snapshot *s = registry_get(reg, "up");
    assert_non_null(s);
    assert_int_equal(registry_remove(reg, "up", &err), 0);
    assert_int_not_equal(access(path, F_OK), 0);
    assert_null(registry_get(reg, "up"));
    assert_int_equal(s->model.cfg.T, 15); /* still readable by its holder */
    snapshot_release(s);
    assert_int_equal(registry_remove(reg, "up", &err), -1);
    assert_int_equal(err.code, 404);
    /* two names on one file: removing one keeps the file */
    assert_int_equal(registry_load_file(reg, "a", "rnd.safetensors", &err), 0);
    assert_int_equal(registry_load_file(reg, "b", "rnd.safetensors", &err), 0);
    assert_int_equal(registry_remove(reg, "a", &err), 0);
    snprintf(path, sizeof path, "%s/rnd.safetensors", test_tmpdir);
    assert_int_equal(access(path, F_OK), 0);
    registry_free(reg);
}

/* ---- batcher ---- */

typedef struct worker_arg {
    batcher *b;
    const model_snapshot *snap;
    int id;
    int failures;
} worker_arg;

static void *worker(void *p) {
    worker_arg *w = p;
    const trc_model *m = &w->snap->model;
    size_t U = (size_t)m->cfg.T * (size_t)m->cfg.m, K1 = (size_t)m->cfg.K + 1;
    for (int k = 0; k < 30; k++) {
        size_t n = 1 + (size_t)((w->id + k) % 3);
        float x0[6], tg[6], u[45], ref[45], it[4 * 45], itref[4 * 45];
        for (size_t i = 0; i < 2 * n; i++) {
            x0[i] = 0.1f * (float)(w->id + 1) - 0.05f * (float)(k + i);
            tg[i] = 0.02f * (float)i;
        }
        float *iters = (k % 2) ? it : NULL;
        batcher_arrive(w->b);
        if (batcher_infer(w->b, w->snap, n, x0, tg, 1.0f, u, iters, NULL) ||
            trc_model_infer(m, n, x0, tg, ref, itref)) {
            w->failures++;
            continue;
        }
        for (size_t i = 0; i < n * U; i++)
            if (u[i] - ref[i] > 1e-5f || ref[i] - u[i] > 1e-5f)
                w->failures++;
        for (size_t i = 0; iters && i < K1 * n * U; i++)
            if (it[i] - itref[i] > 1e-5f || itref[i] - it[i] > 1e-5f)
                w->failures++;
    }
    return NULL;
}

/* The value of the metric line "name value" in a /metrics text. */
static long metric_value(const char *text, const char *name) {
    char key[128];
    snprintf(key, sizeof key, "\n%s ", name);
    const char *at = strstr(text, key);
    assert_non_null(at);
    return strtol(at + strlen(key), NULL, 10);
}

static void test_batcher_concurrent(void **state) {
    (void)state;
    registry *reg;
    proto_error err;
    assert_int_equal(registry_create(test_tmpdir, &reg), 0);
    registry_set_default_dt(reg, 5.0 / 15.0); /* the bare fixtures record none */
    assert_int_equal(registry_load_file(reg, "default", "default.safetensors", &err), 0);
    assert_int_equal(registry_load_file(reg, "rnd", "rnd.safetensors", &err), 0);
    const char *methods[1] = {"POST"}, *routes[1] = {"/v1/control"};
    metrics *met;
    assert_int_equal(metrics_create(methods, routes, 1, &met), 0);
    batcher *b;
    assert_int_equal(batcher_create(1, 0, 64, met, &b), 0);
    model_snapshot *s1 = registry_get(reg, "default"), *s2 = registry_get(reg, "rnd");
    enum { N = 8 };
    pthread_t th[N];
    worker_arg args[N];
    for (int i = 0; i < N; i++) {
        args[i] = (worker_arg){.b = b, .snap = i % 2 ? s1 : s2, .id = i};
        assert_int_equal(pthread_create(&th[i], NULL, worker, &args[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].failures, 0);
    }
    metrics_text out = {0};
    assert_int_equal(metrics_render(met, NULL, &out), 0);
    /* every request was evaluated once (240 requests); gathering made fewer evaluations */
    assert_non_null(strstr(out.buf, "trcd_inference_batch_requests_sum 240\n"));
    long evaluations = metric_value(out.buf, "trcd_inference_batch_requests_count");
    assert_true(evaluations > 0 && evaluations <= 240);
    free(out.buf);
    snapshot_release(s1);
    snapshot_release(s2);
    batcher_free(b);
    metrics_free(met);
    registry_free(reg);
}

/* The batcher tests' server: default.safetensors served, metrics for POST /v1/control, and a
 * batcher of two executors waiting up to wait_us to gather. */
typedef struct served {
    registry *reg;
    model_snapshot *snap;
    metrics *met;
    batcher *b;
} served;

static void serve_default(served *sv, int wait_us) {
    proto_error err;
    assert_int_equal(registry_create(test_tmpdir, &sv->reg), 0);
    registry_set_default_dt(sv->reg, 5.0 / 15.0); /* the bare fixtures record none */
    assert_int_equal(registry_load_file(sv->reg, "default", "default.safetensors", &err), 0);
    sv->snap = registry_get(sv->reg, NULL);
    const char *methods[1] = {"POST"}, *routes[1] = {"/v1/control"};
    assert_int_equal(metrics_create(methods, routes, 1, &sv->met), 0);
    assert_int_equal(batcher_create(2, wait_us, 64, sv->met, &sv->b), 0);
}

/* The batcher first (it may still hold the snapshot's jobs), NULL when a test freed it. */
static void unserve(served *sv) {
    batcher_free(sv->b);
    snapshot_release(sv->snap);
    metrics_free(sv->met);
    registry_free(sv->reg);
}

/* batcher_submit: one thread queues many jobs without waiting (done is called once for each,
 * on an executor, with the results of direct inference), and a job whose client has gone
 * before it is taken is answered TRC_ECANCELED without being evaluated. */
typedef struct async_job {
    batcher_job job;
    float x0[2], tg[2], u[15];
} async_job;

static pthread_mutex_t async_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t async_cv = PTHREAD_COND_INITIALIZER;
static int async_done;

static void async_finished(batcher_job *job) {
    pthread_mutex_lock(&async_lock);
    (void)job;
    async_done++;
    pthread_cond_signal(&async_cv);
    pthread_mutex_unlock(&async_lock);
}

/* One row from state (x, v) to the origin, answered through async_finished. */
static void async_job_init(async_job *j, const model_snapshot *snap, float x, float v,
                           const atomic_int *gone) {
    j->x0[0] = x;
    j->x0[1] = v;
    j->tg[0] = j->tg[1] = 0;
    j->job = (batcher_job){.snap = snap,
                           .n = 1,
                           .x0 = j->x0,
                           .target = j->tg,
                           .time_left = 1.0f,
                           .u = j->u,
                           .gone = gone,
                           .done = async_finished,
                           .rc = -1};
}

static void test_batcher_submit(void **state) {
    (void)state;
    served sv;
    serve_default(&sv, 0);
    model_snapshot *snap = sv.snap;
    batcher *b = sv.b;
    enum { N = 40 };
    static async_job jobs[N];
    atomic_int gone = 1;
    async_done = 0;
    for (int i = 0; i < N; i++) {
        async_job_init(&jobs[i], snap, 0.05f * (float)i - 1.0f, 0.5f, i == N - 1 ? &gone : NULL);
        batcher_arrive(b);
        batcher_submit(b, &jobs[i].job);
    }
    pthread_mutex_lock(&async_lock);
    while (async_done < N)
        pthread_cond_wait(&async_cv, &async_lock);
    pthread_mutex_unlock(&async_lock);
    assert_int_equal(async_done, N);
    for (int i = 0; i < N - 1; i++) {
        float ref[15];
        assert_int_equal(jobs[i].job.rc, 0);
        assert_int_equal(trc_model_infer(&snap->model, 1, jobs[i].x0, jobs[i].tg, ref, NULL), 0);
        for (int k = 0; k < 15; k++)
            assert_true(fabsf(jobs[i].u[k] - ref[k]) <= 1e-5f);
    }
    assert_int_equal(jobs[N - 1].job.rc, TRC_ECANCELED);
    size_t rows;
    uint64_t abandoned;
    batcher_stats(b, &rows, &abandoned);
    assert_int_equal(rows, 0);
    assert_int_equal(abandoned, 1);
    batcher_free(b);
    sv.b = NULL;
    pthread_mutex_lock(&async_lock);
    assert_int_equal(async_done, N); /* nothing called after the last done */
    pthread_mutex_unlock(&async_lock);
    unserve(&sv);
}

static int fixed_clients;
static int clients_fn(void *ctx) {
    (void)ctx;
    return fixed_clients;
}

typedef struct one_arg {
    batcher *b;
    const model_snapshot *snap;
    int rc;
} one_arg;

static void *one_request(void *p) {
    one_arg *a = p;
    float x0[2] = {0.5f, -0.25f}, tg[2] = {0, 0}, u[15];
    batcher_arrive(a->b);
    a->rc = batcher_infer(a->b, a->snap, 1, x0, tg, 1.0f, u, NULL, NULL);
    return NULL;
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* With a wait, an executor gathers the requests of every client known to be sending; a lone
 * client never waits for anyone. */
static void test_batcher_gathers_sending_clients(void **state) {
    (void)state;
    served sv;
    serve_default(&sv, 3000000); /* wait up to 3 s */
    model_snapshot *snap = sv.snap;
    metrics *met = sv.met;
    batcher *b = sv.b;
    batcher_set_clients(b, clients_fn, NULL);

    fixed_clients = 1;
    one_arg a = {.b = b, .snap = snap};
    double t0 = now_s();
    one_request(&a);
    assert_int_equal(a.rc, 0);
    assert_true(now_s() - t0 < 1.5); /* did not wait the 3 s */

    fixed_clients = 4;
    pthread_t th[4];
    one_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (one_arg){.b = b, .snap = snap};
        assert_int_equal(pthread_create(&th[i], NULL, one_request, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].rc, 0);
    }
    metrics_text out = {0};
    assert_int_equal(metrics_render(met, NULL, &out), 0);
    /* two evaluations in all: the lone request, then the four together */
    assert_non_null(strstr(out.buf, "trcd_inference_batch_requests_count 2\n"));
    assert_non_null(strstr(out.buf, "trcd_inference_batch_rows_sum 5\n"));
    free(out.buf);
    unserve(&sv);
}

/* 16 clients, each gone once answered (none sends again): an executor gathering its share
 * then expects only those still waiting, instead of waiting out the batch wait for clients
 * that will not come. */
static int clients_not_answered(void *ctx) {
    (void)ctx;
    pthread_mutex_lock(&async_lock);
    int n = 16 - async_done;
    pthread_mutex_unlock(&async_lock);
    return n;
}

/* 16 clients, two idle executors: the queue is shared between them, evaluations of 8 rows at
 * most, at once, instead of one of 16 on one core while the other waits. The 16 requests are
 * announced (batcher_arrive) before any is queued, so the first executor's gathering ends
 * exactly when all 16 are queued, whatever the threads' speed. */
static void test_batcher_shares_between_executors(void **state) {
    (void)state;
    served sv;
    serve_default(&sv, 30000000); /* gathering ends on rows */
    model_snapshot *snap = sv.snap;
    metrics *met = sv.met;
    batcher *b = sv.b;
    async_done = 0;
    batcher_set_clients(b, clients_not_answered, NULL);
    while (batcher_idle_executors(b) < 2)
        sched_yield();
    enum { N = 16 };
    static async_job jobs[N];
    for (int i = 0; i < N; i++)
        batcher_arrive(b);
    for (int i = 0; i < N; i++) {
        async_job_init(&jobs[i], snap, 0.1f * (float)i - 0.8f, -0.25f, NULL);
        batcher_submit(b, &jobs[i].job);
    }
    pthread_mutex_lock(&async_lock);
    while (async_done < N)
        pthread_cond_wait(&async_cv, &async_lock);
    pthread_mutex_unlock(&async_lock);
    for (int i = 0; i < N; i++) {
        float ref[15];
        assert_int_equal(jobs[i].job.rc, 0);
        assert_int_equal(trc_model_infer(&snap->model, 1, jobs[i].x0, jobs[i].tg, ref, NULL), 0);
        for (int k = 0; k < 15; k++)
            assert_true(fabsf(jobs[i].u[k] - ref[k]) <= 1e-5f);
    }
    metrics_text out = {0};
    assert_int_equal(metrics_render(met, NULL, &out), 0);
    /* the first executor took 8 rows and left 8 to the other (which may share them again with
     * the first when it comes back before the other has woken): no evaluation of 16 */
    assert_non_null(strstr(out.buf, "trcd_inference_batch_rows_sum 16\n"));
    long evaluations = metric_value(out.buf, "trcd_inference_batch_rows_count");
    char le8[64];
    snprintf(le8, sizeof le8, "trcd_inference_batch_rows_bucket{le=\"8\"} %ld\n", evaluations);
    assert_true(evaluations >= 2);
    assert_non_null(strstr(out.buf, le8));
    free(out.buf);
    unserve(&sv);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_load_dir_and_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_swap_keeps_old_snapshot_alive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals_keep_the_model, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upload_and_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batcher_concurrent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batcher_gathers_sending_clients, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batcher_submit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batcher_shares_between_executors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
