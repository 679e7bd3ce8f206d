/* Request deadlines (see deadline.h): the open connections in a list, swept every 100 ms. A
 * sweep is a pass over the list under one lock (5,000 connections: well under a millisecond). */
#include <errno.h>
#include <stdatomic.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include "deadline.h"

#define SWEEP_MS 100

struct deadline_conn {
    deadline_conn *prev, *next;
    int fd;
    int paused;
    int expired;     /* shut down already */
    atomic_int gone; /* paused and the client closed its side (end-of-file or reset) */
    double due;      /* CLOCK_MONOTONIC seconds */
};

struct deadlines {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t thread;
    int stop;
    double timeout;
    deadline_conn *head;
    uint64_t expired;
};

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void *sweeper(void *arg) {
    deadlines *d = arg;
    pthread_mutex_lock(&d->lock);
    while (!d->stop) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += SWEEP_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        while (!d->stop && pthread_cond_timedwait(&d->wake, &d->lock, &until) != ETIMEDOUT)
            ;
        double now = now_s();
        for (deadline_conn *c = d->head; c && !d->stop; c = c->next) {
            if (c->paused && !atomic_load(&c->gone)) {
                /* libmicrohttpd does not poll a suspended connection: look for the client's
                 * end-of-file ourselves, as nginx does (pipelined bytes leave it be) */
                char byte;
                ssize_t r = recv(c->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
                if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
                    atomic_store(&c->gone, 1);
            }
            if (!c->paused && !c->expired && now >= c->due) {
                /* the descriptor is still open: deadline_close (under this lock) comes
                 * before libmicrohttpd closes it */
                shutdown(c->fd, SHUT_RDWR);
                c->expired = 1;
                d->expired++;
            }
        }
    }
    pthread_mutex_unlock(&d->lock);
    return NULL;
}

int deadlines_create(double timeout_s, deadlines **out) {
    deadlines *d = calloc(1, sizeof *d);
    if (!d)
        return -1;
    d->timeout = timeout_s;
    pthread_mutex_init(&d->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&d->wake, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&d->thread, NULL, sweeper, d)) {
        pthread_mutex_destroy(&d->lock);
        pthread_cond_destroy(&d->wake);
        free(d);
        return -1;
    }
    *out = d;
    return 0;
}

void deadlines_free(deadlines *d) {
    if (!d)
        return;
    pthread_mutex_lock(&d->lock);
    d->stop = 1;
    pthread_cond_signal(&d->wake);
    pthread_mutex_unlock(&d->lock);
    pthread_join(d->thread, NULL);
    while (d->head) {
        deadline_conn *c = d->head;
        d->head = c->next;
        free(c);
    }
    pthread_mutex_destroy(&d->lock);
    pthread_cond_destroy(&d->wake);
    free(d);
}

deadline_conn *deadline_open(deadlines *d, int fd) {
    deadline_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->fd = fd;
    c->due = now_s() + d->timeout;
    pthread_mutex_lock(&d->lock);
    c->next = d->head;
    if (d->head)
        d->head->prev = c;
    d->head = c;
    pthread_mutex_unlock(&d->lock);
    return c;
}

void deadline_close(deadlines *d, deadline_conn *c) {
    if (!c)
        return;
    pthread_mutex_lock(&d->lock);
    if (c->prev)
        c->prev->next = c->next;
    else
        d->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    pthread_mutex_unlock(&d->lock);
    free(c);
}

void deadline_pause(deadlines *d, deadline_conn *c) {
    if (!c)
        return;
    pthread_mutex_lock(&d->lock);
    c->paused = 1;
    pthread_mutex_unlock(&d->lock);
}

void deadline_restart(deadlines *d, deadline_conn *c) {
    if (!c)
        return;
    double due = now_s() + d->timeout;
    pthread_mutex_lock(&d->lock);
    c->paused = 0;
    c->due = due;
    atomic_store(&c->gone, 0); /* (the connection is closed anyway if it had gone) */
    pthread_mutex_unlock(&d->lock);
}

uint64_t deadline_expired_total(deadlines *d) {
    pthread_mutex_lock(&d->lock);
    uint64_t n = d->expired;
    pthread_mutex_unlock(&d->lock);
    return n;
}

const atomic_int *deadline_gone_flag(deadline_conn *c) {
    return c ? &c->gone : NULL;
}
