/* The dynamic batcher (see batcher.h). Requests wait in one FIFO; the request at its head
 * becomes the executor when a slot is free: it takes every queued request of the same snapshot
 * (up to max_rows samples), runs one evaluation on the concatenated rows, scatters the results
 * and wakes the others. No thread of its own: the connection threads do the work. */
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

typedef struct item {
    const model_snapshot *snap;
    size_t n;
    const float *x0, *target;
    float time_left; /* of every row of the request: steps_left / T (1: a whole horizon) */
    float *u, *iterates;
    const atomic_int *gone; /* set when the client has gone (NULL: never) */
    int rc;
    int taken; /* an executor has it (it is no longer queued) */
    int done;
    pthread_cond_t cv;
    struct item *next;
} item;

struct batcher {
    pthread_mutex_t lock;
    pthread_cond_t arrived; /* an executor waiting for arrivals sleeps here */
    item *head, *tail;
    int running, max_running;
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

int batcher_create(int max_running, int wait_us, size_t max_rows, metrics *m, batcher **out) {
    batcher *b = calloc(1, sizeof *b);
    if (!b)
        return trc_fail(TRC_ENOMEM, "batcher: out of memory");
    pthread_mutex_init(&b->lock, NULL);
    pthread_cond_init(&b->arrived, NULL);
    b->max_running = max_running > 0 ? max_running : 1;
    b->wait_us = wait_us > 0 ? wait_us : 0;
    b->max_rows = max_rows > 0 ? max_rows : 256;
    b->metrics = m;
    *out = b;
    return 0;
}

void batcher_free(batcher *b) {
    if (!b)
        return;
    free(b->hold_path);
    pthread_mutex_destroy(&b->lock);
    pthread_cond_destroy(&b->arrived);
    free(b);
}

void batcher_arrive(batcher *b) {
    pthread_mutex_lock(&b->lock);
    b->arriving++;
    pthread_mutex_unlock(&b->lock);
}

void batcher_leave(batcher *b) {
    pthread_mutex_lock(&b->lock);
    b->arriving--;
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

/* Removes from the queue the head and every later item of its snapshot that fits in
 * max_rows; returns them as a list. */
static item *take_batch(batcher *b, size_t *rows, size_t *count) {
    item *first = b->head, *list = NULL, **tail = &list;
    size_t total = 0, k = 0;
    item **pp = &b->head, *prev = NULL;
    while (*pp) {
        item *it = *pp;
        if (it->snap == first->snap && (it == first || !is_gone(it)) &&
            (k == 0 || total + it->n <= b->max_rows)) {
            *pp = it->next;
            if (b->tail == it)
                b->tail = prev;
            it->next = NULL;
            it->taken = 1;
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

/* Test-only (batcher_set_hold): waits while the hold file exists, unless every client of
 * the batch has gone. */
static void wait_hold(const batcher *b, const item *list) {
    struct timespec pause = {0, 10 * 1000000L};
    while (b->hold_path && access(b->hold_path, F_OK) == 0 && !all_gone(list))
        nanosleep(&pause, NULL);
}

/* Evaluates rows samples (x0, tg: [rows, s], tl: [rows] or NULL -> u: [rows, U]; iters, if
 * not NULL: [(K+1), rows, U]) in chunks of rows, stopping with TRC_ECANCELED before a chunk when
 * every client of the batch has gone. */
static int eval_rows(const batcher *b, const item *list, size_t rows, const float *x0,
                     const float *tg, const float *tl, float *u, float *iters) {
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
static int eval_item(const batcher *b, item *it) {
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
static void run_batch(const batcher *b, item *list, size_t rows, size_t count) {
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

/* Waits (up to wait_us, lock held by the caller) for the requests that can still join: those
 * announced by batcher_arrive, and one per recently sending client whose request is not being
 * evaluated already (in a closed loop, those clients are about to send). A lone client never
 * waits. */
static void gather(batcher *b, const model_snapshot *snap) {
    struct timespec dl;
    deadline_after(&dl, b->wait_us);
    for (;;) {
        size_t queued = queued_rows(b, snap);
        size_t want = queued + (size_t)(b->arriving > 0 ? b->arriving : 0);
        if (b->clients) {
            long open = (long)b->clients(b->clients_ctx) - (long)b->inflight_rows;
            if (open > (long)want)
                want = (size_t)open;
        }
        if (want > b->max_rows)
            want = b->max_rows;
        if (queued >= want || pthread_cond_timedwait(&b->arrived, &b->lock, &dl) == ETIMEDOUT)
            return;
    }
}

void batcher_set_clients(batcher *b, int (*clients)(void *), void *ctx) {
    b->clients = clients;
    b->clients_ctx = ctx;
}

void batcher_set_hold(batcher *b, const char *path) {
    free(b->hold_path);
    b->hold_path = path && path[0] ? strdup(path) : NULL;
}

void batcher_stats(batcher *b, size_t *rows_in_progress, uint64_t *abandoned) {
    pthread_mutex_lock(&b->lock);
    *rows_in_progress = b->inflight_rows;
    *abandoned = b->abandoned;
    pthread_mutex_unlock(&b->lock);
}

/* Removes a queued item (lock held); wakes the new head when it was the head. */
static void unqueue(batcher *b, item *self) {
    item *prev = NULL;
    for (item **pp = &b->head; *pp; prev = *pp, pp = &(*pp)->next)
        if (*pp == self) {
            *pp = self->next;
            if (b->tail == self)
                b->tail = prev;
            self->next = NULL;
            break;
        }
    if (b->head)
        pthread_cond_signal(&b->head->cv);
}

int batcher_infer(batcher *b, const model_snapshot *snap, size_t n, const float *x0,
                  const float *target, float time_left, float *u, float *iterates,
                  const atomic_int *gone) {
    item self = {.snap = snap,
                 .n = n,
                 .x0 = x0,
                 .target = target,
                 .time_left = time_left,
                 .u = u,
                 .iterates = iterates,
                 .gone = gone};
    pthread_cond_init(&self.cv, NULL);
    pthread_mutex_lock(&b->lock);
    b->arriving--;
    /* self lives on this stack while queued: it always leaves the queue (an executor takes
     * it, or it leaves when its client has gone) before this function returns */
    if (b->tail)
        b->tail->next = &self;
    else
        b->head = &self; // cppcheck-suppress autoVariables
    b->tail = &self;     // cppcheck-suppress autoVariables
    pthread_cond_signal(&b->arrived);
    while (!self.done) {
        if (!self.taken && is_gone(&self)) { /* still queued: leave unevaluated */
            unqueue(b, &self);
            self.rc = TRC_ECANCELED;
            break;
        }
        if (b->head != &self || b->running >= b->max_running) {
            if (!gone) {
                pthread_cond_wait(&self.cv, &b->lock);
            } else { /* look at the client now and then: nothing signals its leaving */
                struct timespec dl;
                deadline_after(&dl, GONE_POLL_MS * 1000);
                pthread_cond_timedwait(&self.cv, &b->lock, &dl);
            }
            continue;
        }
        b->running++;
        if (b->wait_us > 0)
            gather(b, snap);
        size_t rows, count;
        item *list = take_batch(b, &rows, &count);
        b->inflight_rows += rows;
        if (b->head && b->running < b->max_running)
            pthread_cond_signal(&b->head->cv); /* another slot is free for what remains */
        pthread_mutex_unlock(&b->lock);
        run_batch(b, list, rows, count);
        metrics_observe_batch(b->metrics, rows, count);
        pthread_mutex_lock(&b->lock);
        b->running--;
        b->inflight_rows -= rows;
        for (item *it = list, *next; it; it = next) {
            next = it->next;
            it->done = 1;
            if (it != &self)
                pthread_cond_signal(&it->cv);
        }
        if (b->head)
            pthread_cond_signal(&b->head->cv);
    }
    if (self.rc == TRC_ECANCELED)
        b->abandoned++;
    pthread_mutex_unlock(&b->lock);
    pthread_cond_destroy(&self.cv);
    return self.rc;
}
