/* proto/udp.c: BEP 15 packets and BEP 41 options, parsed and written.
 *
 * Owns: the byte layout (big-endian, fixed offsets), field ranges, the
 * option walk. Not here: connection ids, users, swarms.
 * Invariant: never reads p[len] or past it; never writes out[cap] or past it.
 */
#include "proto/udp.h"

#include <string.h>

/* BEP 41 option types. */
enum udp_option {
    UDP_OPT_END = 0,
    UDP_OPT_NOP = 1,
    UDP_OPT_URL_DATA = 2,
};

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) << 32 | get32(p + 4);
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)(v >> 32));
    put32(p + 4, (uint32_t)v);
}

int udp_parse_head(const uint8_t *p, size_t len, struct udp_head *out)
{
    if (len < UDP_HEAD_LEN) {
        return MK_EINVAL;
    }
    out->connection_id = get64(p);
    out->action = get32(p + 8);
    out->transaction_id = get32(p + 12);
    return MK_OK;
}

/* A counter of the announce: BEP 15 sends 64 bits, the books hold int64. */
static int get_counter(const uint8_t *p, const char *name, uint64_t *out, struct mk_errbuf *eb)
{
    uint64_t v = get64(p);
    if (v > INT64_MAX) {
        return mk_fail(eb, MK_EINVAL, "%s: out of range", name);
    }
    *out = v;
    return MK_OK;
}

/* Walks the options after the fixed announce; joins URL data pieces. */
static int parse_options(const uint8_t *p, size_t len, struct udp_announce *out,
                         struct mk_errbuf *eb)
{
    size_t i = 0;
    while (i < len) {
        uint8_t type = p[i++];
        if (type == UDP_OPT_END) {
            return MK_OK; /* BEP 41: whatever follows is not options */
        }
        if (type == UDP_OPT_NOP) {
            continue;
        }
        /* URL data and every type we do not know carry a length byte. */
        if (i >= len) {
            return mk_fail(eb, MK_EINVAL, "option %u: missing length", type);
        }
        size_t n = p[i++];
        if (n > len - i) {
            return mk_fail(eb, MK_EINVAL, "option %u: length %zu past the packet", type, n);
        }
        if (type == UDP_OPT_URL_DATA) {
            if (n > UDP_URL_MAX - out->url_len) {
                return mk_fail(eb, MK_ELIMIT, "url data: longer than %d bytes", UDP_URL_MAX);
            }
            memcpy(out->url + out->url_len, p + i, n);
            out->url_len += n;
        }
        i += n;
    }
    return MK_OK; /* no end-of-options: libtorrent 2.0 sends none */
}

int udp_parse_announce(const uint8_t *p, size_t len, struct udp_announce *out,
                       struct mk_errbuf *eb)
{
    memset(out, 0, sizeof(*out));
    if (len < UDP_ANNOUNCE_LEN) {
        return mk_fail(eb, MK_EINVAL, "announce: %zu bytes, need %d", len, UDP_ANNOUNCE_LEN);
    }
    struct announce_req *a = &out->req;
    memcpy(a->info_hash, p + 16, 20);
    memcpy(a->peer_id, p + 36, 20);
    int rc = get_counter(p + 56, "downloaded", &a->downloaded, eb);
    if (rc == MK_OK) {
        rc = get_counter(p + 64, "left", &a->left, eb);
    }
    if (rc == MK_OK) {
        rc = get_counter(p + 72, "uploaded", &a->uploaded, eb);
    }
    if (rc != MK_OK) {
        return rc;
    }
    static const enum announce_event events[] = {EVENT_NONE, EVENT_COMPLETED, EVENT_STARTED,
                                                 EVENT_STOPPED};
    uint32_t event = get32(p + 80);
    if (event >= sizeof(events) / sizeof(events[0])) {
        return mk_fail(eb, MK_EINVAL, "event: unknown value %u", event);
    }
    a->event = events[event];
    if (get32(p + 84) != 0) {
        memcpy(a->ipv4, p + 84, 4);
        a->has_ipv4 = true;
    }
    a->key = get32(p + 88);
    a->has_key = true;
    int32_t numwant = (int32_t)get32(p + 92);
    if (numwant >= 0) {
        a->numwant = (uint32_t)numwant;
        a->has_numwant = true;
    }
    a->port = (uint16_t)(p[96] << 8 | p[97]);
    if (a->port == 0) {
        return mk_fail(eb, MK_EINVAL, "port: must be 1..65535");
    }
    a->compact = true;
    return parse_options(p + UDP_ANNOUNCE_LEN, len - UDP_ANNOUNCE_LEN, out, eb);
}

int udp_parse_scrape(const uint8_t *p, size_t len, size_t max, const uint8_t **hashes,
                     size_t *n, struct mk_errbuf *eb)
{
    if (len <= UDP_HEAD_LEN) {
        return mk_fail(eb, MK_EINVAL, "info_hash: missing");
    }
    size_t tail = len - UDP_HEAD_LEN;
    if (tail % 20 != 0) {
        return mk_fail(eb, MK_EINVAL, "info_hash: must be 20 bytes");
    }
    if (max > UDP_SCRAPE_MAX) {
        max = UDP_SCRAPE_MAX;
    }
    if (tail / 20 > max) {
        return mk_fail(eb, MK_ELIMIT, "info_hash: more than %zu", max);
    }
    *hashes = p + UDP_HEAD_LEN;
    *n = tail / 20;
    return MK_OK;
}

size_t udp_put_connect(uint8_t *out, size_t cap, uint32_t tid, uint64_t connection_id)
{
    if (cap < 16) {
        return 0;
    }
    put32(out, UDP_CONNECT);
    put32(out + 4, tid);
    put64(out + 8, connection_id);
    return 16;
}

size_t udp_put_announce_head(uint8_t *out, size_t cap, uint32_t tid, uint32_t interval,
                             uint32_t leechers, uint32_t seeders)
{
    if (cap < UDP_ANNOUNCE_HEAD) {
        return 0;
    }
    put32(out, UDP_ANNOUNCE);
    put32(out + 4, tid);
    put32(out + 8, interval);
    put32(out + 12, leechers);
    put32(out + 16, seeders);
    return UDP_ANNOUNCE_HEAD;
}

size_t udp_put_scrape_head(uint8_t *out, size_t cap, uint32_t tid)
{
    if (cap < UDP_SCRAPE_HEAD) {
        return 0;
    }
    put32(out, UDP_SCRAPE);
    put32(out + 4, tid);
    return UDP_SCRAPE_HEAD;
}

size_t udp_put_scrape_entry(uint8_t *out, size_t cap, uint32_t seeders, uint32_t completed,
                            uint32_t leechers)
{
    if (cap < UDP_SCRAPE_ENTRY) {
        return 0;
    }
    put32(out, seeders);
    put32(out + 4, completed);
    put32(out + 8, leechers);
    return UDP_SCRAPE_ENTRY;
}

size_t udp_put_error(uint8_t *out, size_t cap, uint32_t tid, const char *msg)
{
    size_t n = strnlen(msg, UDP_ERROR_MAX);
    if (cap < 8 + n) {
        return 0;
    }
    put32(out, UDP_ERROR);
    put32(out + 4, tid);
    memcpy(out + 8, msg, n);
    return 8 + n;
}
