/* acct/ring.h: a bounded single-producer single-consumer queue of acct_delta.
 *
 * Owns: one worker's outbox of accounting deltas. The worker (only producer)
 * pushes without a lock; the flusher (only consumer) pops. Each side touches
 * its own index and reads the other's with acquire ordering, so the hot path
 * never takes a lock shared with another worker.
 * Not here: what is done with the deltas (flusher.c).
 */
#ifndef MIKA_ACCT_RING_H
#define MIKA_ACCT_RING_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct acct_ring {
    struct acct_delta *slots;
    uint32_t mask;                /* capacity - 1; capacity is a power of two */
    _Atomic uint64_t head;        /* next slot to write; written by the producer only */
    _Atomic uint64_t tail;        /* next slot to read; written by the consumer only */
    _Atomic uint64_t dropped;     /* pushes refused because the ring was full */
};

/* capacity is rounded up to a power of two. MK_ENOMEM. */
int acct_ring_init(struct acct_ring *r, uint32_t capacity);
void acct_ring_fini(struct acct_ring *r);

/* Producer side. False (and dropped++) when full. */
bool acct_ring_push(struct acct_ring *r, const struct acct_delta *d);

/* Consumer side: copies up to max deltas into out; returns how many. */
size_t acct_ring_pop(struct acct_ring *r, struct acct_delta *out, size_t max);

#endif /* MIKA_ACCT_RING_H */
