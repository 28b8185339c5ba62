/* proto/query.h: announce and scrape query strings -> structs.
 *
 * Owns: the rules for each parameter (BEP 3, 7, 21, 23, 48): required keys,
 * lengths, numeric ranges, event names. Unknown keys are ignored (clients send
 * many); a known key given twice is refused. Not here: caps that come from
 * the config (numwant_max, scrape_max_hashes are passed in), users, torrents.
 * Messages in eb name the key and are sent to clients as the failure reason,
 * so they carry no secrets and stay short: "info_hash: must be 20 bytes".
 */
#ifndef MIKA_PROTO_QUERY_H
#define MIKA_PROTO_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

/* The default cap on an announce's parameters (http.max_query_params). */
#define QUERY_MAX_PARAMS 64

enum announce_event {
    EVENT_NONE,      /* absent or empty: a regular update */
    EVENT_STARTED,
    EVENT_STOPPED,
    EVENT_COMPLETED,
    EVENT_PAUSED,    /* BEP 21: a partial seed that stopped downloading */
};

struct announce_req {
    uint8_t info_hash[20];
    uint8_t peer_id[20];
    uint16_t port;         /* 1..65535: port=0 is refused with "port: ..." */
    uint64_t uploaded;     /* 0..INT64_MAX */
    uint64_t downloaded;
    uint64_t left;
    enum announce_event event;
    uint32_t numwant;      /* as asked, 0..UINT32_MAX clamp; has_numwant says if given */
    bool has_numwant;
    bool no_peer_id;
    bool compact;          /* informational: answers are always compact */
    uint64_t corrupt;
    uint32_t key;          /* first 8 hex digits of key=, if any */
    bool has_key;
    bool has_ipv4;         /* ipv4= parsed (BEP 7); address or address:port */
    uint8_t ipv4[4];
    bool has_ipv6;         /* ipv6= parsed; address or [address]:port */
    uint8_t ipv6[16];
};

/* Parses query bytes (after '?', without it; may be empty). MK_EINVAL with a
 * message naming the key for anything missing or malformed; MK_ELIMIT "too
 * many parameters" past max_params parameters, known or not. */
int announce_parse(const char *query, size_t len, size_t max_params, struct announce_req *out,
                   struct mk_errbuf *eb);

/* Collects the info_hash values of a scrape query into hashes (room for max),
 * sorted ascending (memcmp) with duplicates removed, count in *n. MK_EINVAL
 * if none is given ("info_hash: missing") or one is malformed; MK_ELIMIT if
 * more than max distinct hashes are given. */
int scrape_parse(const char *query, size_t len, uint8_t (*hashes)[20], size_t max, size_t *n,
                 struct mk_errbuf *eb);

#endif /* MIKA_PROTO_QUERY_H */
