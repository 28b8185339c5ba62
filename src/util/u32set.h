/* util/u32set.h: a set of 32-bit ids (open addressing), e.g. a torrent's snatchers.
 *
 * Grows by doubling at load 1/2; 0 is a valid member, UINT32_MAX is not (slots
 * store value + 1; ids come from the store and never reach it). Not
 * thread-safe: the owner locks. At most U32SET_MAX members (a 128 MiB slot array), past which
 * adding is MK_ELIMIT.
 */
#ifndef MIKA_UTIL_U32SET_H
#define MIKA_UTIL_U32SET_H

#include <stdbool.h>
#include <stdint.h>

#define U32SET_MAX (1u << 24)

struct u32set {
    uint32_t *slots; /* value + 1, 0 = empty */
    uint32_t n;
    uint32_t cap;    /* power of two or 0 */
};

void u32set_init(struct u32set *s);
void u32set_fini(struct u32set *s);
/* 1 if added, 0 if it was there; MK_ENOMEM, MK_ELIMIT, or MK_EINVAL for
 * UINT32_MAX, leaving the set unchanged. */
int u32set_add(struct u32set *s, uint32_t v);
bool u32set_has(const struct u32set *s, uint32_t v);

#endif /* MIKA_UTIL_U32SET_H */
