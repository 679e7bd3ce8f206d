/* The dynamic batcher (see batcher.h). Requests wait in one FIFO; the request at its head
 * becomes the executor when a slot is free: it takes every queued request of the same snapshot
 * (up to max_rows samples), runs one evaluation on the concatenated rows, scatters the results
 * and wakes the others. No thread of its own: the connection threads do the work. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "batcher.h"
#include "trc/error.h"

typedef struct item {
    const model_snapshot *snap;
    size_t n;
    const float *x0, *target;
    float *u, *iterates;
    int rc;
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
};

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
        if (it->snap == first->snap && (k == 0 || total + it->n <= b->max_rows)) {
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

/* One evaluation for a list of items of the same snapshot. */
static void run_batch(item *list, size_t rows, size_t count) {
    const trc_model *model = &list->snap->model;
    const trc_infer_plan *plan = list->snap->plan;
    if (count == 1) {
        list->rc =
            trc_infer_plan_run(plan, list->n, list->x0, list->target, list->u, list->iterates, 1);
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
    if (!rc) {
        size_t off = 0;
        for (item *it = list; it; it = it->next) {
            memcpy(x0 + off * s, it->x0, it->n * s * sizeof(float));
            memcpy(tg + off * s, it->target, it->n * s * sizeof(float));
            off += it->n;
        }
        rc = trc_infer_plan_run(plan, rows, x0, tg, u, iters, 1);
    }
    if (rc == TRC_ENUMERIC) {
        /* one request's samples went non-finite: do not fail the others with it */
        for (item *it = list; it; it = it->next)
            it->rc = trc_infer_plan_run(plan, it->n, it->x0, it->target, it->u, it->iterates, 1);
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

int batcher_infer(batcher *b, const model_snapshot *snap, size_t n, const float *x0,
                  const float *target, float *u, float *iterates) {
    item self = {.snap = snap, .n = n, .x0 = x0, .target = target, .u = u, .iterates = iterates};
    pthread_cond_init(&self.cv, NULL);
    pthread_mutex_lock(&b->lock);
    b->arriving--;
    /* self lives on this stack while queued: it always leaves the queue (an executor takes
     * it) before this function returns */
    if (b->tail)
        b->tail->next = &self;
    else
        b->head = &self; // cppcheck-suppress autoVariables
    b->tail = &self;     // cppcheck-suppress autoVariables
    pthread_cond_signal(&b->arrived);
    while (!self.done) {
        if (b->head != &self || b->running >= b->max_running) {
            pthread_cond_wait(&self.cv, &b->lock);
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
        run_batch(list, rows, count);
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
    pthread_mutex_unlock(&b->lock);
    pthread_cond_destroy(&self.cv);
    return self.rc;
}
