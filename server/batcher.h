/* Dynamic batching of inference (as Triton's dynamic batcher): concurrent /v1/control requests
 * for the same model snapshot are gathered into one trc_infer_plan_run call (the snapshot's
 * plan: weights packed for small batches, core/src/nn/model_infer.c). max_running executor
 * threads take the queued requests: an idle executor takes a request at once, so a lone client
 * pays no waiting; requests arriving while every executor is busy queue up and the next free
 * one takes them all as one batch. Requests are submitted without waiting (batcher_submit: the
 * executor calls the job's `done` when it is evaluated, so no thread sits waiting for each
 * request and nothing has to wake it), or waited for (batcher_infer). */
#ifndef TRCD_BATCHER_H
#define TRCD_BATCHER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "metrics.h"
#include "registry.h"

typedef struct batcher batcher;

/* max_running: model evaluations at once, one executor thread each (one per core is right);
 * wait_us: how long an executor waits for requests already being parsed to join it;
 * max_rows: most samples gathered into one evaluation (a larger request runs alone). */
int batcher_create(int max_running, int wait_us, size_t max_rows, metrics *m, batcher **out);
/* Stops the executors once the queue is empty. */
void batcher_free(batcher *b);

/* Tells the batcher how many clients are sending (a function returning the recent peak of
 * concurrent requests), so that with --batch-wait-us > 0 an executor waits, at most that long,
 * for the clients whose requests are not being evaluated yet; a lone client never waits. */
void batcher_set_clients(batcher *b, int (*clients)(void *), void *ctx);

/* Announces a request that will call batcher_infer or batcher_submit soon (before its body is
 * parsed), so an executor may wait a moment for it; every batcher_arrive is matched by one
 * batcher_infer, batcher_submit or batcher_leave. */
void batcher_arrive(batcher *b);
void batcher_leave(batcher *b);

/* A request for the batcher: the caller fills the fields above `rc` and keeps the job (and
 * the arrays) alive until done(job) is called, once, on an executor thread, with rc set as
 * batcher_infer returns it. done must not block for long: it runs between two batches. */
typedef struct batcher_job {
    const model_snapshot *snap;
    size_t n;
    const float *x0, *target; /* [n, s] */
    float time_left;          /* of every row: steps_left / T (1: a whole horizon) */
    float *u, *iterates;      /* [n, T*m]; [(K+1), n, T*m] or NULL */
    const atomic_int *gone;   /* set when the client has gone (NULL: never) */
    void (*done)(struct batcher_job *job);
    int rc;
    struct batcher_job *next; /* the batcher's */
} batcher_job;

/* Queues the job (follows a batcher_arrive); never blocks. */
void batcher_submit(batcher *b, batcher_job *job);

/* Runs snap's model on n samples (x0, target: [n, s], each with time_left of the horizon left
 * (1: all of it; trc_model_infer_mt) -> u: [n, T*m]; iterates, if not NULL: [(K+1), n, T*m]),
 * possibly in one evaluation with other requests. Returns the status of
 * trc_infer_plan_run for these samples (TRC_ENUMERIC when one of them is not finite), or
 * TRC_ECANCELED when *gone (the client has disconnected; NULL: never) became set before the
 * work was done: a queued request leaves the queue unevaluated (when an executor next takes
 * a batch, or between two chunks of its evaluation), and an evaluation whose clients have all
 * gone stops at its next chunk of rows (about CHUNK_WORK multiply-adds). */
int batcher_infer(batcher *b, const model_snapshot *snap, size_t n, const float *x0,
                  const float *target, float time_left, float *u, float *iterates,
                  const atomic_int *gone);
/* (batcher_infer is batcher_submit and a wait for done.) */

/* Test-only: while the file at path exists, evaluations wait before each chunk (until their
 * clients go), so a test can hold a request in computation without racing it. NULL: off. */
void batcher_set_hold(batcher *b, const char *path);

/* Executors waiting for work (tests wait for them before a deterministic sequence). */
int batcher_idle_executors(batcher *b);

/* Rows being evaluated now, and requests stopped because their client had gone. */
void batcher_stats(batcher *b, size_t *rows_in_progress, uint64_t *abandoned);

#endif
