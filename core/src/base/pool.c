/* trc_pool (pool.h): a fork/join team whose threads outlive a run. A run is published by bumping
 * a generation counter; threads spin on it for TRC_POOL_SPIN_NS after their last item, then
 * sleep on a condition variable. The caller waits for the run's last item the same way. */
#include "pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "parallel.h"

typedef struct member {
    struct trc_pool *pool;
    size_t index; /* the item this thread runs: 1 .. n-1 */
} member;

struct trc_pool {
    size_t n;
    double spin_ns;
    pthread_t *threads; /* [n]: index 0 unused (the caller) */
    int *started;       /* [n] */
    member *members;    /* [n] */
    pthread_mutex_t lock;
    pthread_cond_t wake; /* sleeping threads wait here for a new generation */
    pthread_cond_t done; /* a sleeping caller waits here for the run's last item */
    atomic_uint generation;
    atomic_size_t pending; /* started threads that have not finished the current run */
    int sleepers;          /* threads waiting on wake (under lock) */
    int caller_sleeping;   /* under lock */
    atomic_int stop;
    /* the current run, written by the caller before the generation is bumped */
    void *(*fn)(void *);
    char *items;
    size_t stride, count;
};

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Between two looks while spinning: give the core to any other runnable thread (a team larger
 * than the free cores, a neighbour process), else return at once and keep this vCPU awake. */
static void relax(void) {
    sched_yield();
}

/* Spins until done(p, seen) or p->spin_ns have passed; returns done(p, seen). */
static int spin_until(int (*done)(const trc_pool *, unsigned), const trc_pool *p, unsigned seen) {
    if (p->spin_ns <= 0)
        return done(p, seen);
    double until = 0;
    for (unsigned i = 0;; i++) {
        if (done(p, seen))
            return 1;
        relax();
        if (i % 8 == 0) {
            double t = now_ns();
            if (until == 0)
                until = t + p->spin_ns;
            else if (t > until)
                return done(p, seen);
        }
    }
}

static int new_generation(const trc_pool *p, unsigned seen) {
    return atomic_load_explicit(&((trc_pool *)p)->generation, memory_order_acquire) != seen;
}

static int run_finished(const trc_pool *p, unsigned unused) {
    (void)unused;
    return atomic_load_explicit(&((trc_pool *)p)->pending, memory_order_acquire) == 0;
}

static void *member_main(void *arg) {
    member *m = arg;
    trc_pool *p = m->pool;
    unsigned seen = 0;
    for (;;) {
        if (!spin_until(new_generation, p, seen)) {
            pthread_mutex_lock(&p->lock);
            p->sleepers++;
            while (!new_generation(p, seen))
                pthread_cond_wait(&p->wake, &p->lock);
            p->sleepers--;
            pthread_mutex_unlock(&p->lock);
        }
        seen = atomic_load_explicit(&p->generation, memory_order_acquire);
        if (atomic_load(&p->stop))
            return NULL;
        if (m->index < p->count) /* else a run of fewer items: only acknowledge it */
            p->fn(p->items + m->index * p->stride);
        if (atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&p->lock);
            if (p->caller_sleeping)
                pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->lock);
        }
    }
}

/* Bumps the generation and wakes sleeping threads. */
static void publish(trc_pool *p) {
    atomic_fetch_add_explicit(&p->generation, 1, memory_order_acq_rel);
    pthread_mutex_lock(&p->lock);
    if (p->sleepers)
        pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
}

trc_pool *trc_pool_create(size_t n, double spin_ns) {
    if (n < 1)
        n = 1;
    if (n > TRC_PARALLEL_MAX)
        n = TRC_PARALLEL_MAX;
    trc_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->n = n;
    p->spin_ns = spin_ns > 0 ? spin_ns : 0;
    p->threads = calloc(n, sizeof *p->threads);
    p->started = calloc(n, sizeof *p->started);
    p->members = calloc(n, sizeof *p->members);
    if (!p->threads || !p->started || !p->members) {
        free(p->threads);
        free(p->started);
        free(p->members);
        free(p);
        return NULL;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    atomic_init(&p->generation, 0);
    atomic_init(&p->pending, 0);
    atomic_init(&p->stop, 0);
    for (size_t t = 1; t < n; t++) {
        p->members[t] = (member){p, t};
        p->started[t] = pthread_create(&p->threads[t], NULL, member_main, &p->members[t]) == 0;
    }
    return p;
}

void trc_pool_run(trc_pool *p, void *(*fn)(void *), void *items, size_t stride, size_t n) {
    if (!p) {
        trc_parallel_run(fn, items, stride, n);
        return;
    }
    char *at = items;
    size_t team = n < p->n ? n : p->n; /* items past the team's size run on the caller */
    size_t threads = 0; /* every started thread acknowledges every run, item or not, so the
                         * next run's fields are never written while one still reads these */
    for (size_t t = 1; t < p->n; t++)
        threads += (size_t)p->started[t];
    if (threads) {
        p->fn = fn;
        p->items = at;
        p->stride = stride;
        p->count = team;
        atomic_store_explicit(&p->pending, threads, memory_order_release);
        publish(p);
    }
    if (n > 0)
        fn(at);
    for (size_t t = 1; t < n; t++)
        if (t >= team || !p->started[t])
            fn(at + t * stride); /* no thread for it, or it could not be started: run it here */
    if (threads && !spin_until(run_finished, p, 0)) {
        pthread_mutex_lock(&p->lock);
        p->caller_sleeping = 1;
        while (!run_finished(p, 0))
            pthread_cond_wait(&p->done, &p->lock);
        p->caller_sleeping = 0;
        pthread_mutex_unlock(&p->lock);
    }
}

void trc_pool_free(trc_pool *p) {
    if (!p)
        return;
    atomic_store(&p->stop, 1);
    publish(p);
    for (size_t t = 1; t < p->n; t++)
        if (p->started[t])
            pthread_join(p->threads[t], NULL);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    free(p->threads);
    free(p->started);
    free(p->members);
    free(p);
}
