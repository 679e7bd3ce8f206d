/* trc_parallel_run (parallel.h): pthread fork/join with the calling thread as worker 0. */
#include "parallel.h"

#include <pthread.h>

void trc_parallel_run(void *(*fn)(void *), void *items, size_t stride, size_t n) {
    char *at = items;
    pthread_t th[TRC_PARALLEL_MAX];
    int started[TRC_PARALLEL_MAX] = {0};
    if (n > TRC_PARALLEL_MAX)
        n = TRC_PARALLEL_MAX;
    for (size_t t = 1; t < n; t++)
        started[t] = pthread_create(&th[t], NULL, fn, at + t * stride) == 0;
    if (n > 0)
        fn(at);
    for (size_t t = 1; t < n; t++) {
        if (started[t])
            pthread_join(th[t], NULL);
        else
            fn(at + t * stride); /* could not start a thread: do its share here */
    }
}
