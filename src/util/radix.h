/* util/radix.h: a stable sort of records by a 64-bit key, in linear time.
 *
 * Owns: radix_sort() over (key, index) pairs, for the flusher's batches and
 * the stores' torrent sums (store/sums.c): a group of journal segments is
 * hundreds of thousands of records, and qsort's n log n calls of a
 * comparator were 7% of the flusher's instructions.
 * Not here: what the keys mean (the callers pack them) or moving the
 * records themselves (radix_permute moves them by the sorted indexes).
 */
#ifndef MIKA_UTIL_RADIX_H
#define MIKA_UTIL_RADIX_H

#include <stddef.h>
#include <stdint.h>

struct radix_item {
    uint64_t key;
    uint64_t idx; /* the record's position before the sort (or any value to carry) */
};

/* Sorts v[0..n) by key, stably (equal keys keep their order), with tmp[0..n)
 * as scratch; n must be below 2^32. Passes over 11-bit digits, skipping any
 * digit all keys share, so keys that use few bits cost few passes. */
void radix_sort(struct radix_item *v, struct radix_item *tmp, size_t n);

/* Reorders rows[0..n) (each `size` bytes) so that the row at position k is
 * the one that was at v[k].idx, in place: each row moves once, through
 * `spare` (room for one row). v's idx fields are used up. */
void radix_permute(void *rows, size_t size, struct radix_item *v, size_t n, void *spare);

#endif /* MIKA_UTIL_RADIX_H */
