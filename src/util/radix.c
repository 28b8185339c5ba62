/* util/radix.c: least-significant-digit radix sort of (key, index) pairs,
 * and the in-place move of records into the sorted order (radix.h). */
#include "util/radix.h"

#include <string.h>

#define RADIX_BITS 11
#define RADIX_BUCKETS (1u << RADIX_BITS)
#define RADIX_PASSES ((64 + RADIX_BITS - 1) / RADIX_BITS)

void radix_sort(struct radix_item *v, struct radix_item *tmp, size_t n)
{
    /* One pass over the keys counts every digit's values at once. */
    uint32_t count[RADIX_PASSES][RADIX_BUCKETS];
    memset(count, 0, sizeof(count));
    for (size_t i = 0; i < n; i++) {
        uint64_t k = v[i].key;
        for (unsigned p = 0; p < RADIX_PASSES; p++) {
            count[p][(k >> (p * RADIX_BITS)) & (RADIX_BUCKETS - 1)]++;
        }
    }
    struct radix_item *from = v, *to = tmp;
    for (unsigned p = 0; p < RADIX_PASSES && n > 1; p++) {
        uint32_t *c = count[p];
        if (c[(from[0].key >> (p * RADIX_BITS)) & (RADIX_BUCKETS - 1)] == n) {
            continue; /* every key has this digit: the order stands */
        }
        uint32_t at = 0;
        for (unsigned b = 0; b < RADIX_BUCKETS; b++) {
            uint32_t here = c[b];
            c[b] = at;
            at += here;
        }
        for (size_t i = 0; i < n; i++) {
            to[c[(from[i].key >> (p * RADIX_BITS)) & (RADIX_BUCKETS - 1)]++] = from[i];
        }
        struct radix_item *swap = from;
        from = to;
        to = swap;
    }
    if (from != v) {
        memcpy(v, from, n * sizeof(*v));
    }
}

void radix_permute(void *rows, size_t size, struct radix_item *v, size_t n, void *spare)
{
    char *r = rows;
    /* Cycle by cycle: position k takes the row from v[k].idx, which frees
     * that position for the row it wants, until the cycle closes on the
     * row kept aside. A position done has idx == its own index. */
    for (size_t start = 0; start < n; start++) {
        if (v[start].idx == start) {
            continue;
        }
        memcpy(spare, r + start * size, size);
        size_t k = start;
        for (;;) {
            size_t from = (size_t)v[k].idx;
            v[k].idx = k;
            if (from == start) {
                memcpy(r + k * size, spare, size);
                break;
            }
            memcpy(r + k * size, r + from * size, size);
            k = from;
        }
    }
}
