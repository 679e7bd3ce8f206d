/* A per-client token bucket (POST /v1/train): each client address may make `per_minute`
 * requests a minute, in a burst of up to `per_minute`. A fixed table of addresses; when it is
 * full the entry idle longest is reused, so memory stays bounded under a flood from many
 * addresses. Thread-safe. */
#ifndef TRCD_RATELIMIT_H
#define TRCD_RATELIMIT_H

#include <pthread.h>

#define RATELIMIT_SLOTS 1024
#define RATELIMIT_ADDR 48

typedef struct ratelimit {
    pthread_mutex_t mu;
    double per_sec, burst; /* per_sec 0: no limit */
    struct rl_slot {
        char addr[RATELIMIT_ADDR];
        double tokens, at; /* tokens left at time `at` (monotonic seconds) */
    } slots[RATELIMIT_SLOTS];
} ratelimit;

/* per_minute 0 turns the limit off. */
void ratelimit_init(ratelimit *rl, int per_minute);
void ratelimit_free(ratelimit *rl);
/* Takes one token for addr at time now (monotonic seconds): 0 when allowed, else the whole
 * seconds (>= 1) until one is available. */
int ratelimit_take(ratelimit *rl, const char *addr, double now);

#endif
