/* proto/percent.c: RFC 3986 percent-decoding of query values.
 *
 * Owns: turning "%XX" escapes into bytes, nothing else. '+' is an ordinary
 * byte (BitTorrent clients escape binary values byte by byte; form encoding
 * does not apply). Bytes that RFC 3986 would want escaped are copied as they
 * are: strictness about the alphabet belongs to the HTTP request-line check.
 * Invariant: reads only s[0..len), writes only out[0..cap).
 */
#include "proto/percent.h"

#include <limits.h>

#include "util/err.h"

static int percent_hex(unsigned char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

long percent_decode(const char *s, size_t len, uint8_t *out, size_t cap)
{
    /* The result is returned as a long; a cap past LONG_MAX could not be reported. */
    if (cap > LONG_MAX) {
        cap = LONG_MAX;
    }
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            if (len - i < 3) {
                return MK_EINVAL;
            }
            int hi = percent_hex((unsigned char)s[i + 1]);
            int lo = percent_hex((unsigned char)s[i + 2]);
            if (hi < 0 || lo < 0) {
                return MK_EINVAL;
            }
            c = (unsigned char)(hi << 4 | lo);
            i += 2;
        }
        if (n == cap) {
            return MK_ELIMIT;
        }
        out[n++] = c;
    }
    return (long)n;
}
