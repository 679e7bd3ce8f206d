/* A fixed pool of threads running queued jobs in arrival order: the HTTP layer hands the
 * handlers of suspended connections to it, so libmicrohttpd's event threads never wait on an
 * inference, a database or a disk. */
#ifndef TRCD_WORKPOOL_H
#define TRCD_WORKPOOL_H

#include <stddef.h>

typedef struct workpool workpool;
/* An item is embedded in the caller's struct; run(item) is called once on a pool thread. */
typedef struct workpool_item {
    struct workpool_item *next;
    void (*run)(struct workpool_item *item);
} workpool_item;

int workpool_create(int threads, workpool **out);
/* Queues the item (never blocks, never fails: the queue is a list through the items). */
void workpool_push(workpool *p, workpool_item *item);
/* Items queued or running. */
size_t workpool_pending(workpool *p);
/* Runs what is queued, then stops and frees the threads. */
void workpool_free(workpool *p);

#endif
