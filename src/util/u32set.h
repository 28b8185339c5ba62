/* util/u32set.h: a set of 32-bit ids (open addressing), e.g. a torrent's snatchers.
 *
 * Grows by doubling; 0 is a valid member. Not thread-safe: the owner locks.
 */
#ifndef MIKA_UTIL_U32SET_H
#define MIKA_UTIL_U32SET_H

#include <stdbool.h>
#include <stdint.h>

struct u32set {
    uint32_t *slots; /* value + 1, 0 = empty */
    uint32_t n;
    uint32_t cap;    /* power of two or 0 */
};

void u32set_init(struct u32set *s);
void u32set_fini(struct u32set *s);
/* 1 if added, 0 if it was there, MK_ENOMEM. */
int u32set_add(struct u32set *s, uint32_t v);
bool u32set_has(const struct u32set *s, uint32_t v);

#endif /* MIKA_UTIL_U32SET_H */
