/* acct/ring.c: the SPSC delta queue. See ring.h for the contract. */
#include "acct/ring.h"

#include <stdlib.h>

#include "util/err.h"

int acct_ring_init(struct acct_ring *r, uint32_t capacity)
{
    uint32_t cap = 1;
    while (cap < capacity && cap < (1u << 30)) {
        cap <<= 1;
    }
    r->slots = calloc(cap, sizeof(*r->slots));
    if (!r->slots) {
        return MK_ENOMEM;
    }
    r->mask = cap - 1;
    atomic_init(&r->head, 0);
    atomic_init(&r->tail, 0);
    atomic_init(&r->dropped, 0);
    return MK_OK;
}

void acct_ring_fini(struct acct_ring *r)
{
    free(r->slots);
    r->slots = NULL;
}

bool acct_ring_push(struct acct_ring *r, const struct acct_delta *d)
{
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    if (head - tail > r->mask) {
        atomic_fetch_add_explicit(&r->dropped, 1, memory_order_relaxed);
        return false;
    }
    r->slots[head & r->mask] = *d;
    /* Release: the slot's bytes are visible before the consumer sees head move. */
    atomic_store_explicit(&r->head, head + 1, memory_order_release);
    return true;
}

size_t acct_ring_pop(struct acct_ring *r, struct acct_delta *out, size_t max)
{
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    size_t n = 0;
    while (tail != head && n < max) {
        out[n++] = r->slots[tail & r->mask];
        tail++;
    }
    atomic_store_explicit(&r->tail, tail, memory_order_release);
    return n;
}
