/* Fork/join over a few threads, for the library's parallel loops (inference plans, training
 * steps, dataset generation). One place owns the rule every caller needs: the calling thread
 * does a share itself, and a share whose thread cannot be started is run on the calling thread,
 * so a parallel loop never fails for want of threads. */
#ifndef TRC_BASE_PARALLEL_H
#define TRC_BASE_PARALLEL_H

#include <stddef.h>

#define TRC_PARALLEL_MAX 64 /* threads one call may use, the calling one included */

/* Runs fn(items + t * stride) for t in [0, n) (n <= TRC_PARALLEL_MAX; stride 0: the same item
 * for every t), item 0 on the calling thread, and returns when every one has returned. */
void trc_parallel_run(void *(*fn)(void *), void *items, size_t stride, size_t n);

#endif
