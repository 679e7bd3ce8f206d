/* trcd's log: one line per event on stderr, "<RFC 3339 time> trcd: <message>", written with a
 * single write() so lines from different threads never interleave. */
#ifndef TRCD_LOG_H
#define TRCD_LOG_H

void log_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The current UTC time as RFC 3339 with seconds ("2026-11-26T02:30:00Z"). */
void log_now_rfc3339(char out[32]);

#endif
