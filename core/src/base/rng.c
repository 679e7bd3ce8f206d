/* xoshiro256** seeded by splitmix64; see rng.h. */
#include "trc/rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

void trc_rng_seed(trc_rng *rng, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        rng->s[i] = splitmix64(&x);
}

uint64_t trc_rng_u64(trc_rng *rng) {
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double trc_rng_uniform(trc_rng *rng) {
    return (double)(trc_rng_u64(rng) >> 11) * 0x1.0p-53;
}

double trc_rng_range(trc_rng *rng, double lo, double hi) {
    return lo + (hi - lo) * trc_rng_uniform(rng);
}

double trc_rng_normal(trc_rng *rng) {
    /* 1 - uniform lies in (0, 1], so the log is finite. */
    double u1 = 1.0 - trc_rng_uniform(rng);
    double u2 = trc_rng_uniform(rng);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

uint64_t trc_rng_below(trc_rng *rng, uint64_t n) {
    /* Rejection keeps the draw unbiased when n does not divide 2^64. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t r;
    do {
        r = trc_rng_u64(rng);
    } while (r >= limit);
    return r % n;
}

void trc_rng_shuffle(trc_rng *rng, uint32_t *idx, uint32_t n) {
    for (uint32_t i = n; i > 1; i--) {
        uint32_t j = (uint32_t)trc_rng_below(rng, i);
        uint32_t t = idx[i - 1];
        idx[i - 1] = idx[j];
        idx[j] = t;
    }
}
