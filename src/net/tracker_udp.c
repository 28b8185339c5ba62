/* net/tracker_udp.c: the UDP tracker's answers (BEP 15, BEP 41's URL data).
 *
 * Owns: an announce or a scrape that came as a datagram, answered as one,
 * the size of the largest answer, and the failure kind of a UDP answer for
 * the counters.
 * Not here: the announce itself (tracker.c), sockets, connection ids and
 * batching (udp.c), packet layout (proto/udp.c).
 * Invariant: never blocks; holds at most one shard lock at a time.
 */
#include <string.h>

#include "net/tracker.h"
#include "net/tracker_int.h"
#include "proto/udp.h"

/* The failure kind of a UDP answer at p[0..len), or TRACKER_FAILURE_KINDS. */
static unsigned udp_failure_kind(const uint8_t *p, size_t len)
{
    if (len < 8 || p[0] != 0 || p[1] != 0 || p[2] != 0 || p[3] != UDP_ERROR) {
        return TRACKER_FAILURE_KINDS;
    }
    return tracker_failure_kind_text((const char *)p + 8, len - 8);
}

int tracker_udp_announce(const struct tracker *t, struct tracker_local *l, struct mk_str url,
                         const struct announce_req *a, uint32_t tid,
                         const struct tracker_addr *src, struct bencode *b)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    size_t start = b->len;
    struct tracker_reply rp = {.b = b, .udp = true, .tid = tid};
    /* BEP 41's URL data is the announce URL's path and query: the path
     * names the user exactly as HTTP's does. */
    const char *q = memchr(url.p, '?', url.len);
    struct mk_str path = {url.p, q ? (size_t)(q - url.p) : url.len};
    struct mk_str passkey, action;
    int status;
    struct user_info user;
    if (url.len == 0) {
        status = tracker_reply_failure_msg(&rp,
                                           "passkey: missing (announce URL /<passkey>/announce)");
    } else if (!tracker_split_path(path, &passkey, &action) || !mk_str_eq(action, "announce")) {
        status = tracker_reply_failure(&rp, FAIL_NOT_FOUND);
    } else if (tracker_find_user(t, l, passkey, &user, &rp, &status)) {
        /* No proxy speaks UDP for us: the source is the client. */
        status = tracker_announce(t, l, &user, *a, *src, &rp);
    }
    if (status != TRACKER_PARKED) {
        tracker_count_answer(l, udp_failure_kind(b->p + start, b->len - start), false, &t0);
    }
    return status;
}

int tracker_udp_scrape(const struct tracker *t, struct tracker_local *l, const uint8_t *hashes,
                       size_t n, uint32_t tid, struct bencode *b)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    tracker_reply_udp_advance(b, udp_put_scrape_head(b->p + b->len, b->cap - b->len, tid));
    /* BEP 15 answers every hash in the asked order; one that is not a
     * registered, enabled torrent reads as an empty swarm, as an unknown
     * key does in HTTP's scrape (which leaves it out). */
    for (size_t i = 0; i < n && !b->overflow; i++) {
        uint32_t seeders = 0, completed = 0, leechers = 0;
        struct torrent_shard *shard;
        struct torrent *tor = torrents_lock(t->torrents, hashes + 20 * i, &shard);
        if (tor && !tor->deleted && tor->enabled) {
            torrent_swarm_counts(tor, &seeders, &leechers);
            completed = tor->snatches;
        }
        torrents_unlock(shard);
        tracker_reply_udp_advance(b, udp_put_scrape_entry(b->p + b->len, b->cap - b->len,
                                                          seeders, completed, leechers));
    }
    tracker_count_answer(l, TRACKER_FAILURE_KINDS, true, &t0);
    return 200;
}

size_t tracker_udp_max_answer(const struct mk_config *cfg)
{
    size_t announce = UDP_ANNOUNCE_HEAD + (size_t)cfg->numwant_max * PEER_COMPACT_MAX;
    size_t scrape = UDP_SCRAPE_HEAD + (size_t)UDP_SCRAPE_MAX * UDP_SCRAPE_ENTRY;
    size_t error = 8 + UDP_ERROR_MAX;
    size_t max = announce > scrape ? announce : scrape;
    return max > error ? max : error;
}
