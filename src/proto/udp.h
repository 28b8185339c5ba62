/* proto/udp.h: BEP 15 UDP tracker packets <-> structs, with BEP 41 options.
 *
 * Owns: the byte layout of connect, announce, scrape and error packets, the
 * rules for each announce field (the same ranges as proto/query.c: port
 * 1..65535, counters 0..INT64_MAX), and walking BEP 41 options (URL data
 * pieces are joined; parsing stops at end-of-options).
 * Not here: sockets, connection-id MACs (net/udp.c), users and swarms
 * (net/tracker.c). No I/O, no allocation; every parse is bounded by len.
 * Messages in eb name the field and go to clients in error packets.
 */
#ifndef MIKA_PROTO_UDP_H
#define MIKA_PROTO_UDP_H

#include <stddef.h>
#include <stdint.h>

#include "proto/query.h"
#include "util/err.h"

#define UDP_PROTOCOL_ID 0x41727101980ULL /* BEP 15: a connect's magic */
#define UDP_HEAD_LEN 16                  /* connection id, action, transaction id */
#define UDP_ANNOUNCE_LEN 98              /* an announce without options */
#define UDP_ANNOUNCE_HEAD 20             /* action, tid, interval, leechers, seeders */
#define UDP_SCRAPE_HEAD 8                /* action, tid */
#define UDP_SCRAPE_ENTRY 12              /* seeders, completed, leechers */
/* Hashes in one scrape: BEP 15's 74 fill a 1500-byte datagram. The answer
 * (12 bytes a hash) is always smaller than the request (20 bytes a hash). */
#define UDP_SCRAPE_MAX 74
#define UDP_URL_MAX 1024                 /* joined BEP 41 URL data */
#define UDP_ERROR_MAX 200                /* message bytes in an error packet */

enum udp_action {
    UDP_CONNECT = 0,
    UDP_ANNOUNCE = 1,
    UDP_SCRAPE = 2,
    UDP_ERROR = 3,
};

/* The 16 bytes every request starts with. For a connect, connection_id is
 * the protocol id. */
struct udp_head {
    uint64_t connection_id;
    uint32_t action;       /* enum udp_action, or anything a client sent */
    uint32_t transaction_id;
};

struct udp_announce {
    struct announce_req req;
    char url[UDP_URL_MAX]; /* BEP 41 URL data, pieces joined; not NUL-terminated */
    size_t url_len;
};

/* MK_EINVAL if len < UDP_HEAD_LEN (too short to answer: drop it). */
int udp_parse_head(const uint8_t *p, size_t len, struct udp_head *out);

/* A whole announce packet (head included): MK_EINVAL naming the field for a
 * short packet, a bad event or port, a counter past INT64_MAX, or an option
 * whose length runs past the packet; MK_ELIMIT when the URL data exceeds
 * UDP_URL_MAX. Bytes after end-of-options are ignored (BEP 41); so is a
 * packet that ends without one. num_want -1 (or any negative) means "not
 * given"; a non-zero IP field fills req.ipv4 (has_ipv4). */
int udp_parse_announce(const uint8_t *p, size_t len, struct udp_announce *out,
                       struct mk_errbuf *eb);

/* A scrape packet: *hashes points at the n 20-byte hashes inside p, in the
 * client's order. MK_EINVAL if none is given or the tail is not whole
 * hashes; MK_ELIMIT past max (<= UDP_SCRAPE_MAX) hashes. */
int udp_parse_scrape(const uint8_t *p, size_t len, size_t max, const uint8_t **hashes,
                     size_t *n, struct mk_errbuf *eb);

/* Writers: each puts a whole packet (or a part, as said) into out[0..cap)
 * and returns its length, or 0 if cap is too small. */
size_t udp_put_connect(uint8_t *out, size_t cap, uint32_t tid, uint64_t connection_id);
/* The announce answer's fixed part; the caller appends the compact peers. */
size_t udp_put_announce_head(uint8_t *out, size_t cap, uint32_t tid, uint32_t interval,
                             uint32_t leechers, uint32_t seeders);
size_t udp_put_scrape_head(uint8_t *out, size_t cap, uint32_t tid);
size_t udp_put_scrape_entry(uint8_t *out, size_t cap, uint32_t seeders, uint32_t completed,
                            uint32_t leechers);
/* The message is cut at UDP_ERROR_MAX bytes. */
size_t udp_put_error(uint8_t *out, size_t cap, uint32_t tid, const char *msg);

#endif /* MIKA_PROTO_UDP_H */
