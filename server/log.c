/* One-line log records on stderr (see log.h). */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

void log_now_rfc3339(char out[32]) {
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void log_va(const char *fmt, va_list ap) {
    char line[2048];
    char now[32];
    log_now_rfc3339(now);
    int n = snprintf(line, sizeof line, "%s trcd: ", now);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    while (len > (size_t)n && line[len - 1] == '\n') /* libmicrohttpd's messages end in one */
        len--;
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

void log_msg(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    log_va(fmt, ap);
    va_end(ap);
}

/* Called with b->lock held: reports the lines dropped in the window that ended. */
static void report_dropped(log_budget *b) {
    if (b->dropped)
        log_msg("%lu more such line(s) dropped (at most %d a second)", b->dropped, b->per_second);
    b->dropped = 0;
}

void log_limited(log_budget *b, const char *fmt, ...) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    pthread_mutex_lock(&b->lock);
    if (ts.tv_sec != b->second) {
        report_dropped(b);
        b->second = ts.tv_sec;
        b->used = 0;
    }
    if (b->used < b->per_second) {
        b->used++;
        va_list ap;
        va_start(ap, fmt);
        log_va(fmt, ap); /* under the lock: the order of lines and reports stays true */
        va_end(ap);
    } else {
        b->dropped++;
    }
    pthread_mutex_unlock(&b->lock);
}

void log_budget_flush(log_budget *b) {
    pthread_mutex_lock(&b->lock);
    report_dropped(b);
    pthread_mutex_unlock(&b->lock);
}
