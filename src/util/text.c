/* util/text.c: copying a store's text into a fixed buffer (util/text.h).
 *
 * Owns: the cut at a UTF-8 boundary. A cut byte never starts the rest:
 * continuation bytes (10xxxxxx) are stepped back over, so the copy ends
 * before the character they belong to.
 */
#include "util/text.h"

#include <string.h>

bool mk_copy_text(char *out, size_t cap, const void *p, size_t len)
{
    const unsigned char *b = p;
    bool cut = len >= cap;
    if (cut) {
        len = cap - 1;
        while (len > 0 && (b[len] & 0xc0) == 0x80) {
            len--;
        }
    }
    if (len > 0) {
        memcpy(out, b, len);
    }
    out[len] = '\0';
    return cut;
}
