/* util/rng.h: a small fast PRNG (xoshiro256**), one per worker thread.
 *
 * Not for secrets: passkeys and keys come from getrandom(2). Each worker owns
 * its generator, so no locking.
 */
#ifndef MIKA_UTIL_RNG_H
#define MIKA_UTIL_RNG_H

#include <stdint.h>

struct rng {
    uint64_t s[4];
};

/* Seeds from one 64-bit value (expanded with splitmix64). */
void rng_seed(struct rng *r, uint64_t seed);
uint64_t rng_next(struct rng *r);
/* Uniform in [0, n), without modulo bias; n > 0. */
uint32_t rng_below(struct rng *r, uint32_t n);

#endif /* MIKA_UTIL_RNG_H */
