/* A team of threads kept for one owner's repeated fork/join loops (a trainer's phases, four per
 * step). trc_parallel_run starts threads per call; on a VM an idle vCPU woken for a new thread
 * takes ~0.2 ms to run it (measured: a 2-thread training step of ~7 ms spent 0.9 ms in those
 * wake-ups), so the team's threads spin a short while after each run (spin_ns) and the next
 * phase, microseconds later, finds them awake; only then do they sleep. One caller at a
 * time per team (the owner's calls are sequential); the same rules as trc_parallel_run: item 0
 * runs on the calling thread, and a team that cannot start its threads runs their items there. */
#ifndef TRC_BASE_POOL_H
#define TRC_BASE_POOL_H

#include <stddef.h>

typedef struct trc_pool trc_pool;

/* How long a trainer's team stays awake after a run: its phases follow one another within
 * microseconds, and between steps (optimizer, next batch) the threads sleep. */
#define TRC_POOL_SPIN_NS 50000.0

/* A team for runs of up to n items (n - 1 threads) that spin spin_ns (0: never) before
 * sleeping, and whose caller spins as long for a run's end. Returns NULL when out of memory;
 * threads that cannot be started leave their items to the caller. */
trc_pool *trc_pool_create(size_t n, double spin_ns);

/* Runs fn(items + t * stride) for t in [0, n), item 0 and any past the team's size on the
 * calling thread; returns when every one has returned. pool NULL: trc_parallel_run. */
void trc_pool_run(trc_pool *pool, void *(*fn)(void *), void *items, size_t stride, size_t n);

/* Stops and joins the threads. NULL is fine. */
void trc_pool_free(trc_pool *pool);

#endif
