/* Per-client token buckets; see ratelimit.h. */
#include "ratelimit.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void ratelimit_init(ratelimit *rl, int per_minute) {
    memset(rl, 0, sizeof *rl);
    pthread_mutex_init(&rl->mu, NULL);
    rl->per_sec = per_minute > 0 ? per_minute / 60.0 : 0;
    rl->burst = per_minute > 0 ? per_minute : 0;
}

void ratelimit_free(ratelimit *rl) {
    pthread_mutex_destroy(&rl->mu);
}

int ratelimit_take(ratelimit *rl, const char *addr, double now) {
    if (rl->per_sec <= 0)
        return 0;
    pthread_mutex_lock(&rl->mu);
    struct rl_slot *hit = NULL, *oldest = &rl->slots[0];
    for (size_t i = 0; i < RATELIMIT_SLOTS && !hit; i++) {
        struct rl_slot *s = &rl->slots[i];
        if (s->addr[0] && strcmp(s->addr, addr) == 0)
            hit = s;
        else if (!s->addr[0] ? oldest->addr[0] != 0 : (oldest->addr[0] && s->at < oldest->at))
            oldest = s; /* an empty slot first, else the one idle longest */
    }
    if (!hit) {
        hit = oldest;
        snprintf(hit->addr, sizeof hit->addr, "%s", addr);
        hit->tokens = rl->burst;
        hit->at = now;
    }
    double t = hit->tokens + (now - hit->at) * rl->per_sec;
    hit->tokens = t > rl->burst ? rl->burst : t;
    hit->at = now;
    int wait = 0;
    if (hit->tokens >= 1) {
        hit->tokens -= 1;
    } else {
        wait = (int)ceil((1 - hit->tokens) / rl->per_sec);
        if (wait < 1)
            wait = 1;
    }
    pthread_mutex_unlock(&rl->mu);
    return wait;
}
