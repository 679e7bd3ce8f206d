/* The dynamic batcher (see batcher.h). Jobs wait in one FIFO; an executor thread takes the job
 * at its head and every queued job of the same snapshot (up to max_rows samples), runs one
 * evaluation on the concatenated rows, scatters the results and calls each job's done. Under
 * load the executors never sleep: a submission is a queue append under one lock, with no
 * thread to wake (each wake-up is a context switch, and they were a tenth of trcd's CPU). */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "batcher.h"
#include "trc/error.h"

typedef batcher_job item;

struct batcher {
    pthread_mutex_t lock;
    pthread_cond_t arrived; /* an executor waiting for arrivals sleeps here */
    pthread_cond_t work;    /* idle executors sleep here */
    item *head, *tail;
    int running, max_running;
    int idle;      /* executors waiting for work */
    int gathering; /* an executor is waiting for arrivals: the others need not */
    /* the gatherer's wait (lock held): it wants gather_want rows of gather_snap queued and no
     * request still arriving; submitters count gather_rows and wake it only then */
    const model_snapshot *gather_snap;
    size_t gather_want, gather_rows;
    int stop;
    int nthreads;
    pthread_t *threads;
    int arriving;           /* announced requests not yet queued */
    size_t inflight_rows;   /* rows being evaluated by executors */
    int (*clients)(void *); /* clients sending recently (NULL: unknown) */
    void *clients_ctx;
    int wait_us;
    size_t max_rows;
    metrics *metrics;
    char *hold_path;    /* test-only: evaluations wait while this file exists */
    uint64_t abandoned; /* requests whose work stopped because their client went */
};

/* Multiply-adds evaluated between two checks for gone clients (~0.1 s on one core): a small
 * model's batch is one pass, a huge one is cut into chunks of rows. */
#ifndef CHUNK_WORK
#define CHUNK_WORK 2e8
#endif
/* Fewest rows an executor gathers or a queue is split into: below 4 rows the inference plan
 * costs more CPU per row (medium model, AVX-512 path, thread CPU: 98, 54 and 43 us a row for
 * 1, 2 and 3 rows, 38-41 from 4 rows up), so splitting further buys latency with CPU. */
#define MIN_SHARE 4
/* How often a waiting request looks at its client (ms). */
#define GONE_POLL_MS 50

static int is_gone(const item *it) {
    return it->gone && atomic_load(it->gone);
}

static int all_gone(const item *list) {
    for (const item *it = list; it; it = it->next)
        if (!is_gone(it))
            return 0;
    return 1;
}

static void *executor(void *arg);

int batcher_create(int max_running, int wait_us, size_t max_rows, metrics *m, batcher **out) {
    batcher *b = calloc(1, sizeof *b);
    if (!b)
        return trc_fail(TRC_ENOMEM, "batcher: out of memory");
    pthread_mutex_init(&b->lock, NULL);
    pthread_cond_init(&b->arrived, NULL);
    pthread_cond_init(&b->work, NULL);
    b->max_running = max_running > 0 ? max_running : 1;

    b->wait_us = wait_us > 0 ? wait_us : 0;
    b->max_rows = max_rows > 0 ? max_rows : 256;
    b->metrics = m;
    b->threads = calloc((size_t)b->max_running, sizeof *b->threads);
    if (!b->threads) {
        batcher_free(b);
        return trc_fail(TRC_ENOMEM, "batcher: out of memory");
    }
    for (; b->nthreads < b->max_running; b->nthreads++)
        if (pthread_create(&b->threads[b->nthreads], NULL, executor, b)) {
            batcher_free(b);
            return trc_fail(TRC_EIO, "batcher: cannot start an executor thread");
        }
    *out = b;
    return 0;
}

void batcher_free(batcher *b) {
    if (!b)
        return;
    pthread_mutex_lock(&b->lock);
    b->stop = 1;
    pthread_cond_broadcast(&b->work);
    pthread_mutex_unlock(&b->lock);
    for (int i = 0; i < b->nthreads; i++)
        pthread_join(b->threads[i], NULL);
    free(b->threads);
    free(b->hold_path);
    pthread_mutex_destroy(&b->lock);
    pthread_cond_destroy(&b->arrived);
    pthread_cond_destroy(&b->work);
    free(b);
}

/* The gatherer's condition: gather_want rows queued and none announced still arriving. */
static int gathered(const batcher *b) {
    return b->gather_rows >= b->max_rows || (b->arriving <= 0 && b->gather_rows >= b->gather_want);
}

void batcher_arrive(batcher *b) {
    pthread_mutex_lock(&b->lock);
    b->arriving++;
    pthread_mutex_unlock(&b->lock);
}

void batcher_leave(batcher *b) {
    pthread_mutex_lock(&b->lock);
    b->arriving--;
    if (b->gather_snap && gathered(b))
        pthread_cond_signal(&b->arrived);
    pthread_mutex_unlock(&b->lock);
}

static size_t queued_rows(const batcher *b, const model_snapshot *snap) {
    size_t rows = 0;
    for (const item *it = b->head; it; it = it->next)
        if (it->snap == snap)
            rows += it->n;
    return rows;
}

/* Removes from the queue the head and every later item of its snapshot that fits in limit
 * rows; returns them as a list. */
static item *take_batch(batcher *b, size_t limit, size_t *rows, size_t *count) {
    item *first = b->head, *list = NULL, **tail = &list;
    size_t total = 0, k = 0;
    item **pp = &b->head, *prev = NULL;
    while (*pp) {
        item *it = *pp;
        if (it->snap == first->snap && (it == first || !is_gone(it)) &&
            (k == 0 || total + it->n <= limit)) {
            *pp = it->next;
            if (b->tail == it)
                b->tail = prev;
            it->next = NULL;
            *tail = it;
            tail = &it->next;
            total += it->n;
            k++;
        } else {
            prev = it;
            pp = &it->next;
        }
    }
    *rows = total;
    *count = k;
    return list;
}

static void take_gone(batcher *b, item **gone_list);
static void finish(item *list);

/* Answers the queued jobs whose client has gone (called by an executor between two chunks of
 * a long evaluation, so that they do not wait for its end). */
static void drop_gone(batcher *b) {
    item *gone = NULL;
    pthread_mutex_lock(&b->lock);
    take_gone(b, &gone);
    pthread_mutex_unlock(&b->lock);
    finish(gone);
}

/* Test-only (batcher_set_hold): waits while the hold file exists, unless every client of
 * the batch has gone. */
static void wait_hold(batcher *b, const item *list) {
    struct timespec pause = {0, 10 * 1000000L};
    while (b->hold_path && access(b->hold_path, F_OK) == 0 && !all_gone(list)) {
        nanosleep(&pause, NULL);
        drop_gone(b);
    }
}

/* Evaluates rows samples (x0, tg: [rows, s], tl: [rows] or NULL -> u: [rows, U]; iters, if
 * not NULL: [(K+1), rows, U]) in chunks of rows, stopping with TRC_ECANCELED before a chunk when
 * every client of the batch has gone. */
static int eval_rows(batcher *b, const item *list, size_t rows, const float *x0, const float *tg,
                     const float *tl, float *u, float *iters) {
    const trc_model *model = &list->snap->model;
    const trc_infer_plan *plan = list->snap->plan;
    size_t s = (size_t)model->cfg.s, U = (size_t)model->cfg.T * (size_t)model->cfg.m;
    size_t K1 = (size_t)model->cfg.K + 1;
    double per_row = (double)model->cfg.K * (model->cfg.n + 1) * (double)model->num_params;
    size_t chunk = per_row * (double)rows <= CHUNK_WORK ? rows : (size_t)(CHUNK_WORK / per_row);
    if (chunk < 1)
        chunk = 1;
    if (chunk >= rows && !b->hold_path) /* the common case: one pass, no copies */
        return trc_infer_plan_run(plan, rows, x0, tg, tl, u, iters, 1);
    float *part = iters && chunk < rows ? malloc(K1 * chunk * U * sizeof(float)) : NULL;
    if (iters && chunk < rows && !part)
        return TRC_ENOMEM;
    int rc = 0;
    for (size_t off = 0; off < rows && !rc; off += chunk) {
        if (off)
            drop_gone(b);
        wait_hold(b, list);
        if (all_gone(list)) {
            rc = TRC_ECANCELED;
            break;
        }
        size_t c = rows - off < chunk ? rows - off : chunk;
        rc = trc_infer_plan_run(plan, c, x0 + off * s, tg + off * s, tl ? tl + off : NULL,
                                u + off * U, part ? part : iters, 1);
        for (size_t k = 0; !rc && part && k < K1; k++)
            memcpy(iters + (k * rows + off) * U, part + k * c * U, c * U * sizeof(float));
    }
    free(part);
    return rc;
}

/* The time left of the rows of a list of items ([rows], malloc'd), NULL when every row has a
 * whole horizon (or on ENOMEM: *rc says). */
static float *rows_time_left(const item *list, size_t rows, int *rc) {
    int any = 0;
    for (const item *it = list; it; it = it->next)
        any |= it->time_left != 1.0f;
    float *tl = any ? malloc(rows * sizeof *tl) : NULL;
    *rc = any && !tl ? TRC_ENOMEM : 0;
    size_t off = 0;
    for (const item *it = list; tl && it; it = it->next)
        for (size_t i = 0; i < it->n; i++)
            tl[off++] = it->time_left;
    return tl;
}

/* An item evaluated alone. */
static int eval_item(batcher *b, item *it) {
    item *next = it->next;
    it->next = NULL; /* its own client decides whether to stop */
    int rc;
    float *tl = rows_time_left(it, it->n, &rc);
    if (!rc)
        rc = eval_rows(b, it, it->n, it->x0, it->target, tl, it->u, it->iterates);
    free(tl);
    it->next = next;
    return rc;
}

/* One evaluation for a list of items of the same snapshot. */
static void run_batch(batcher *b, item *list, size_t rows, size_t count) {
    const trc_model *model = &list->snap->model;
    if (count == 1) {
        list->rc = eval_item(b, list);
        return;
    }
    size_t s = (size_t)model->cfg.s, U = (size_t)model->cfg.T * (size_t)model->cfg.m;
    size_t K1 = (size_t)model->cfg.K + 1;
    int want_it = 0;
    for (item *it = list; it; it = it->next)
        want_it |= it->iterates != NULL;
    float *x0 = malloc(rows * s * sizeof(float)), *tg = malloc(rows * s * sizeof(float));
    float *u = malloc(rows * U * sizeof(float));
    float *iters = want_it ? malloc(K1 * rows * U * sizeof(float)) : NULL;
    int rc = (!x0 || !tg || !u || (want_it && !iters)) ? TRC_ENOMEM : 0;
    float *tl = rc ? NULL : rows_time_left(list, rows, &rc);
    if (!rc) {
        size_t off = 0;
        for (item *it = list; it; it = it->next) {
            memcpy(x0 + off * s, it->x0, it->n * s * sizeof(float));
            memcpy(tg + off * s, it->target, it->n * s * sizeof(float));
            off += it->n;
        }
        rc = eval_rows(b, list, rows, x0, tg, tl, u, iters);
    }
    if (rc == TRC_ENUMERIC) {
        /* one request's samples went non-finite: do not fail the others with it */
        for (item *it = list; it; it = it->next)
            it->rc = eval_item(b, it);
    } else {
        size_t off = 0;
        for (item *it = list; it; it = it->next) {
            it->rc = rc;
            if (!rc) {
                memcpy(it->u, u + off * U, it->n * U * sizeof(float));
                for (size_t k = 0; it->iterates && k < K1; k++)
                    memcpy(it->iterates + k * it->n * U, iters + (k * rows + off) * U,
                           it->n * U * sizeof(float));
            }
            off += it->n;
        }
    }
    free(x0);
    free(tg);
    free(tl);
    free(u);
    free(iters);
}

static void deadline_after(struct timespec *t, int us) {
    clock_gettime(CLOCK_REALTIME, t);
    t->tv_nsec += (long)us * 1000L;
    while (t->tv_nsec >= 1000000000L) {
        t->tv_sec++;
        t->tv_nsec -= 1000000000L;
    }
}

/* The rows one executor gathers: its share of the recently sending clients whose requests are
 * not being evaluated already (in a closed loop, those clients are about to send). A share,
 * not all of them: 16 clients in one batch keep one core evaluating while the other has
 * nothing to do; two batches of 8 keep both busy. At least MIN_SHARE rows, though: smaller
 * batches cost as much CPU as MIN_SHARE rows. A lone client never waits. */
static size_t gather_want(const batcher *b) {
    size_t want = 0;
    if (b->clients) {
        long clients = (long)b->clients(b->clients_ctx);
        long open = clients - (long)b->inflight_rows;
        long share = (clients + b->max_running - 1) / b->max_running;
        share = share > MIN_SHARE ? share : MIN_SHARE;
        want = (size_t)(open < share ? (open > 0 ? open : 0) : share);
    }
    return want < b->max_rows ? want : b->max_rows;
}

/* Waits (up to wait_us, lock held by the caller) for the requests that can still join: those
 * announced by batcher_arrive, and the executor's share of the clients (gather_want). Submitters
 * wake it once that is reached, not at every arrival (each wake-up is a context switch). */
static void gather(batcher *b, const model_snapshot *snap) {
    struct timespec dl;
    deadline_after(&dl, b->wait_us);
    b->gather_snap = snap;
    b->gather_want = gather_want(b);
    for (;;) {
        b->gather_rows = queued_rows(b, snap);
        if (gathered(b) || pthread_cond_timedwait(&b->arrived, &b->lock, &dl) == ETIMEDOUT)
            break;
    }
    b->gather_snap = NULL;
}

void batcher_set_clients(batcher *b, int (*clients)(void *), void *ctx) {
    b->clients = clients;
    b->clients_ctx = ctx;
}

void batcher_set_hold(batcher *b, const char *path) {
    free(b->hold_path);
    b->hold_path = path && path[0] ? strdup(path) : NULL;
}

int batcher_idle_executors(batcher *b) {
    pthread_mutex_lock(&b->lock);
    int idle = b->idle;
    pthread_mutex_unlock(&b->lock);
    return idle;
}

void batcher_stats(batcher *b, size_t *rows_in_progress, uint64_t *abandoned) {
    pthread_mutex_lock(&b->lock);
    *rows_in_progress = b->inflight_rows;
    *abandoned = b->abandoned;
    pthread_mutex_unlock(&b->lock);
}

/* Moves the queued jobs whose client has gone (lock held) to *gone_list, rc TRC_ECANCELED. */
static void take_gone(batcher *b, item **gone_list) {
    item **pp = &b->head, *prev = NULL;
    while (*pp) {
        item *it = *pp;
        if (is_gone(it)) {
            *pp = it->next;
            if (b->tail == it)
                b->tail = prev;
            it->rc = TRC_ECANCELED;
            it->next = *gone_list;
            *gone_list = it;
            b->abandoned++;
        } else {
            prev = it;
            pp = &it->next;
        }
    }
}

/* Calls done on every job of list (no lock held: done may take other locks). */
static void finish(item *list) {
    for (item *it = list, *next; it; it = next) {
        next = it->next;
        it->next = NULL;
        it->done(it);
    }
}

static void *executor(void *arg) {
    batcher *b = arg;
    pthread_mutex_lock(&b->lock);
    for (;;) {
        item *gone = NULL;
        take_gone(b, &gone);
        if (gone) {
            pthread_mutex_unlock(&b->lock);
            finish(gone);
            pthread_mutex_lock(&b->lock);
            continue;
        }
        if (!b->head || b->gathering) {
            if (b->stop && !b->head)
                break;
            b->idle++;
            if (b->head) { /* another executor gathers: look again after a while */
                struct timespec dl;
                deadline_after(&dl, GONE_POLL_MS * 1000);
                pthread_cond_timedwait(&b->work, &b->lock, &dl);
            } else {
                pthread_cond_wait(&b->work, &b->lock);
            }
            b->idle--;
            continue;
        }
        b->running++;
        if (b->wait_us > 0) {
            b->gathering = 1;
            gather(b, b->head->snap);
            b->gathering = 0;
        }
        if (!b->head) { /* its jobs left while it waited */
            b->running--;
            continue;
        }
        /* idle executors share the queue (parts of MIN_SHARE rows at least): two halves
         * evaluated at once instead of one batch on one core while the other waits */
        size_t rows, count, limit = b->max_rows;
        if (b->idle) {
            size_t queued = queued_rows(b, b->head->snap), parts = (size_t)b->idle + 1;
            if (queued / parts < MIN_SHARE)
                parts = queued / MIN_SHARE > 1 ? queued / MIN_SHARE : 1;
            size_t share = (queued + parts - 1) / parts;
            limit = share < limit ? share : limit;
        }
        item *list = take_batch(b, limit, &rows, &count);
        b->inflight_rows += rows;
        if (b->head && b->idle)
            pthread_cond_signal(&b->work); /* another executor may take what remains */
        pthread_mutex_unlock(&b->lock);
        run_batch(b, list, rows, count);
        metrics_observe_batch(b->metrics, rows, count);
        pthread_mutex_lock(&b->lock);
        b->running--;
        b->inflight_rows -= rows;
        for (item *it = list; it; it = it->next)
            if (it->rc == TRC_ECANCELED)
                b->abandoned++;
        pthread_mutex_unlock(&b->lock);
        finish(list);
        pthread_mutex_lock(&b->lock);
    }
    pthread_mutex_unlock(&b->lock);
    return NULL;
}

void batcher_submit(batcher *b, batcher_job *job) {
    job->next = NULL;
    job->rc = 0;
    pthread_mutex_lock(&b->lock);
    b->arriving--;
    if (b->tail)
        b->tail->next = job;
    else
        b->head = job;
    b->tail = job;
    if (b->gather_snap == job->snap) {
        b->gather_rows += job->n;
        if (gathered(b))
            pthread_cond_signal(&b->arrived);
    }
    if (b->idle && !b->gathering)
        pthread_cond_signal(&b->work);
    pthread_mutex_unlock(&b->lock);
}

/* batcher_infer's wait: done signals the caller (under its lock, so the caller's stack frame
 * outlives the signal). */
typedef struct waiter {
    batcher_job job; /* first */
    pthread_mutex_t lock;
    pthread_cond_t cv;
    int done;
} waiter;

static void wake_waiter(batcher_job *job) {
    waiter *w = (waiter *)job;
    pthread_mutex_lock(&w->lock);
    w->done = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->lock);
}

int batcher_infer(batcher *b, const model_snapshot *snap, size_t n, const float *x0,
                  const float *target, float time_left, float *u, float *iterates,
                  const atomic_int *gone) {
    waiter w = {.job = {.snap = snap,
                        .n = n,
                        .x0 = x0,
                        .target = target,
                        .time_left = time_left,
                        .u = u,
                        .iterates = iterates,
                        .gone = gone,
                        .done = wake_waiter}};
    pthread_mutex_init(&w.lock, NULL);
    pthread_cond_init(&w.cv, NULL);
    batcher_submit(b, &w.job);
    pthread_mutex_lock(&w.lock);
    while (!w.done)
        pthread_cond_wait(&w.cv, &w.lock);
    pthread_mutex_unlock(&w.lock);
    pthread_cond_destroy(&w.cv);
    pthread_mutex_destroy(&w.lock);
    return w.job.rc;
}
