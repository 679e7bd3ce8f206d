/* A small deterministic random generator (xoshiro256**, seeded by splitmix64) so that the
 * same seed gives the same datasets, splits, initializations and shuffles on every machine. */
#ifndef TRC_RNG_H
#define TRC_RNG_H

#include <stdint.h>

typedef struct trc_rng {
    uint64_t s[4];
} trc_rng;

void trc_rng_seed(trc_rng *rng, uint64_t seed);
uint64_t trc_rng_u64(trc_rng *rng);
/* Uniform in [0, 1) with 53 random bits. */
double trc_rng_uniform(trc_rng *rng);
/* Uniform in [lo, hi). */
double trc_rng_range(trc_rng *rng, double lo, double hi);
/* Standard normal (Box-Muller; one draw per call, deterministic). */
double trc_rng_normal(trc_rng *rng);
/* Uniform integer in [0, n), unbiased. n > 0. */
uint64_t trc_rng_below(trc_rng *rng, uint64_t n);
/* Fisher-Yates shuffle of idx[0..n). */
void trc_rng_shuffle(trc_rng *rng, uint32_t *idx, uint32_t n);

#endif
