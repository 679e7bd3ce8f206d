/* Worker threads over a FIFO of intrusive items (see workpool.h). */
#include <pthread.h>
#include <stdlib.h>

#include "workpool.h"

struct workpool {
    pthread_mutex_t lock;
    pthread_cond_t ready;
    workpool_item *head, *tail;
    size_t pending; /* queued + running */
    int stop;
    int nthreads;
    pthread_t threads[];
};

static void *worker(void *arg) {
    workpool *p = arg;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->head && !p->stop)
            pthread_cond_wait(&p->ready, &p->lock);
        workpool_item *it = p->head;
        if (!it)
            break; /* stopping and nothing left */
        p->head = it->next;
        if (!p->head)
            p->tail = NULL;
        pthread_mutex_unlock(&p->lock);
        it->run(it);
        pthread_mutex_lock(&p->lock);
        p->pending--;
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

int workpool_create(int threads, workpool **out) {
    workpool *p = calloc(1, sizeof *p + (size_t)threads * sizeof(pthread_t));
    if (!p)
        return -1;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->ready, NULL);
    for (; p->nthreads < threads; p->nthreads++)
        if (pthread_create(&p->threads[p->nthreads], NULL, worker, p)) {
            workpool_free(p);
            return -1;
        }
    *out = p;
    return 0;
}

void workpool_push(workpool *p, workpool_item *item) {
    item->next = NULL;
    pthread_mutex_lock(&p->lock);
    if (p->tail)
        p->tail->next = item;
    else
        p->head = item;
    p->tail = item;
    p->pending++;
    pthread_cond_signal(&p->ready);
    pthread_mutex_unlock(&p->lock);
}

size_t workpool_pending(workpool *p) {
    pthread_mutex_lock(&p->lock);
    size_t n = p->pending;
    pthread_mutex_unlock(&p->lock);
    return n;
}

void workpool_free(workpool *p) {
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stop = 1;
    pthread_cond_broadcast(&p->ready);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->ready);
    free(p);
}
