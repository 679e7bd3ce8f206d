/* Dynamic batching of inference (as Triton's dynamic batcher): concurrent /v1/control requests
 * for the same model snapshot are gathered into one trc_infer_plan_run call (the snapshot's
 * plan: weights packed for small batches, core/src/nn/model_infer.c). A request that finds
 * an idle executor slot runs at once, so a lone client pays no waiting; requests arriving while
 * every slot is busy queue up and the next free slot takes them all as one batch. */
#ifndef TRCD_BATCHER_H
#define TRCD_BATCHER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "metrics.h"
#include "registry.h"

typedef struct batcher batcher;

/* max_running: model evaluations at once (one per core is right with 1 BLAS thread each);
 * wait_us: how long an executor waits for requests already being parsed to join it;
 * max_rows: most samples gathered into one evaluation (a larger request runs alone). */
int batcher_create(int max_running, int wait_us, size_t max_rows, metrics *m, batcher **out);
void batcher_free(batcher *b);

/* Tells the batcher how many clients are sending (a function returning the recent peak of
 * concurrent requests), so that with --batch-wait-us > 0 an executor waits, at most that long,
 * for the clients whose requests are not being evaluated yet; a lone client never waits. */
void batcher_set_clients(batcher *b, int (*clients)(void *), void *ctx);

/* Announces a request that will call batcher_infer soon (before its body is parsed), so an
 * executor may wait a moment for it; every batcher_arrive is matched by one batcher_infer or
 * batcher_leave. */
void batcher_arrive(batcher *b);
void batcher_leave(batcher *b);

/* Runs snap's model on n samples (x0, target: [n, s], each with time_left of the horizon left
 * (1: all of it; trc_model_infer_mt) -> u: [n, T*m]; iterates, if not NULL: [(K+1), n, T*m]),
 * possibly in one evaluation with other requests. Returns the status of
 * trc_infer_plan_run for these samples (TRC_ENUMERIC when one of them is not finite), or
 * TRC_ECANCELED when *gone (the client has disconnected; NULL: never) became set before the
 * work was done: a queued request leaves the queue unevaluated, and an evaluation whose
 * clients have all gone stops at its next chunk of rows (about CHUNK_WORK multiply-adds). */
int batcher_infer(batcher *b, const model_snapshot *snap, size_t n, const float *x0,
                  const float *target, float time_left, float *u, float *iterates,
                  const atomic_int *gone);

/* Test-only: while the file at path exists, evaluations wait before each chunk (until their
 * clients go), so a test can hold a request in computation without racing it. NULL: off. */
void batcher_set_hold(batcher *b, const char *path);

/* Rows being evaluated now, and requests stopped because their client had gone. */
void batcher_stats(batcher *b, size_t *rows_in_progress, uint64_t *abandoned);

#endif
