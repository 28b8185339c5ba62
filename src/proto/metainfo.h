/* proto/metainfo.h: the facts a tracker needs from a .torrent file (BEP 3).
 *
 * Owns: a strict bencode decoder for metainfo files and the walk that finds
 * the info dictionary, its name, total length and private flag (BEP 27).
 * Not here: hashing (the caller hashes `info` with SHA-1 to get the
 * info_hash), I/O. Allocates nothing: the answer is views into the input.
 * Strict: canonical integers (no leading zeros, no -0), string lengths within
 * the input, dictionary keys in strictly ascending byte order (BEP 3), nesting
 * at most METAINFO_MAX_DEPTH, nothing after the top-level dictionary.
 */
#ifndef MIKA_PROTO_METAINFO_H
#define MIKA_PROTO_METAINFO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"
#include "util/str.h"

#define METAINFO_MAX_DEPTH 64

struct metainfo {
    struct mk_str info;     /* the exact bytes of the info value: SHA-1 of these is the info_hash */
    struct mk_str name;     /* info.name as given (bytes, not checked for UTF-8) */
    uint64_t total_length;  /* info.length, or the sum of info.files[].length */
    uint32_t files;         /* 1 for a single-file torrent */
    bool has_private;       /* info.private is present */
    bool is_private;        /* info.private = 1 */
};

/* Parses buf[0..len). MK_EINVAL with eb naming what is wrong and where
 * ("info.piece length: missing", "at byte 17: leading zero"); never reads
 * past buf + len. */
int metainfo_parse(const uint8_t *buf, size_t len, struct metainfo *out, struct mk_errbuf *eb);

#endif /* MIKA_PROTO_METAINFO_H */
