/* trcd's log: one line per event on stderr, "<RFC 3339 time> trcd: <message>", written with a
 * single write() so lines from different threads never interleave. */
#ifndef TRCD_LOG_H
#define TRCD_LOG_H

#include <pthread.h>
#include <time.h>

void log_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A budget of lines a second for messages clients can provoke at will (libmicrohttpd's refusal
 * of each connection over a limit): past it lines are counted, not written, and the next line
 * after that second (or log_budget_flush) says how many were dropped. Any thread. */
typedef struct log_budget {
    pthread_mutex_t lock;
    int per_second;
    time_t second; /* CLOCK_MONOTONIC second of the current window */
    int used;
    unsigned long dropped;
} log_budget;
#define LOG_BUDGET_INIT(n)                                                                         \
    { PTHREAD_MUTEX_INITIALIZER, (n), 0, 0, 0 }
void log_limited(log_budget *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_budget_flush(log_budget *b);
/* The current UTC time as RFC 3339 with seconds ("2026-11-26T02:30:00Z"). */
void log_now_rfc3339(char out[32]);

#endif
