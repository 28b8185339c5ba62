/* util/str.h: a borrowed view of bytes in someone else's buffer.
 *
 * Parsers return views into the caller's buffer instead of copies; a view is
 * valid only as long as that buffer is.
 */
#ifndef MIKA_UTIL_STR_H
#define MIKA_UTIL_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

struct mk_str {
    const char *p;
    size_t len;
};

#define MK_STR_LIT(s) ((struct mk_str){(s), sizeof(s) - 1})

static inline bool mk_str_eq(struct mk_str a, const char *lit)
{
    size_t n = strlen(lit);
    return a.len == n && memcmp(a.p, lit, n) == 0;
}

#endif /* MIKA_UTIL_STR_H */
