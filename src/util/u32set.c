/* util/u32set.c: a set of 32-bit ids, open addressing with linear probing.
 *
 * Owns: the slot array. Not here: locking (the owner's shard lock).
 * Invariant: slots hold value + 1 so that 0 marks an empty slot and 0 stays
 * a valid member; load stays <= 1/2 so probes are short; there is no removal,
 * so no tombstones are needed.
 */
#include "util/u32set.h"

#include <stdlib.h>

#include "util/err.h"

void u32set_init(struct u32set *s)
{
    s->slots = NULL;
    s->n = 0;
    s->cap = 0;
}

void u32set_fini(struct u32set *s)
{
    free(s->slots);
    u32set_init(s);
}

/* Ids are sequential or chosen by us, not by clients, so a fixed multiplicative
 * mix (the high bits of v * 2^32/phi) spreads them well enough. */
static uint32_t u32set_home(uint32_t v, uint32_t cap)
{
    return (uint32_t)(((uint64_t)v * 0x9e3779b97f4a7c15ull) >> 32) & (cap - 1);
}

/* Probes for v: its slot if present, else the empty slot where it belongs. */
static uint32_t u32set_probe(const uint32_t *slots, uint32_t cap, uint32_t v)
{
    uint32_t i = u32set_home(v, cap);
    while (slots[i] != 0 && slots[i] != v + 1) {
        i = (i + 1) & (cap - 1);
    }
    return i;
}

static int u32set_grow(struct u32set *s)
{
    uint32_t ncap = s->cap ? s->cap * 2 : 8;
    uint32_t *nslots = calloc(ncap, sizeof(*nslots));
    if (!nslots) {
        return MK_ENOMEM;
    }
    for (uint32_t i = 0; i < s->cap; i++) {
        if (s->slots[i] != 0) {
            nslots[u32set_probe(nslots, ncap, s->slots[i] - 1)] = s->slots[i];
        }
    }
    free(s->slots);
    s->slots = nslots;
    s->cap = ncap;
    return 0;
}

int u32set_add(struct u32set *s, uint32_t v)
{
    if (v == UINT32_MAX) {
        return MK_EINVAL; /* v + 1 would read as an empty slot */
    }
    if (u32set_has(s, v)) {
        return 0;
    }
    if (s->n >= U32SET_MAX) {
        return MK_ELIMIT;
    }
    if ((uint64_t)(s->n + 1) * 2 > s->cap) {
        int rc = u32set_grow(s);
        if (rc < 0) {
            return rc;
        }
    }
    s->slots[u32set_probe(s->slots, s->cap, v)] = v + 1;
    s->n++;
    return 1;
}

bool u32set_has(const struct u32set *s, uint32_t v)
{
    if (s->cap == 0 || v == UINT32_MAX) {
        return false;
    }
    return s->slots[u32set_probe(s->slots, s->cap, v)] == v + 1;
}
