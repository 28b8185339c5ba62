/* proto/percent.h: percent-decoding of URL query values (RFC 3986).
 *
 * '+' is kept as '+': BitTorrent clients escape every byte of a binary
 * info_hash or peer_id that is not unreserved, so only RFC 3986 rules apply.
 */
#ifndef MIKA_PROTO_PERCENT_H
#define MIKA_PROTO_PERCENT_H

#include <stddef.h>
#include <stdint.h>

/* Decodes s[0..len) into out (room for cap bytes). Returns the decoded length
 * (>= 0), MK_EINVAL for a truncated or non-hex escape, or MK_ELIMIT when the
 * result would not fit in cap. Never reads past s + len. */
long percent_decode(const char *s, size_t len, uint8_t *out, size_t cap);

#endif /* MIKA_PROTO_PERCENT_H */
