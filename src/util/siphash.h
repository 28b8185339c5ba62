/* util/siphash.h: SipHash-2-4, a keyed hash for tables fed by outside bytes.
 *
 * Keyed with a random per-process key, so a client cannot craft peer_ids or
 * hashes that collide in our indexes.
 */
#ifndef MIKA_UTIL_SIPHASH_H
#define MIKA_UTIL_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

uint64_t siphash24(const void *in, size_t len, const uint8_t key[16]);

#endif /* MIKA_UTIL_SIPHASH_H */
