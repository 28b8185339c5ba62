/* net/tracker.h: what the tracker answers to one announce or scrape.
 *
 * Owns: routing a parsed HTTP request (/<passkey>/announce, /<passkey>/scrape),
 * the private-tracker rules (passkey, account, whitelist, registration,
 * download rights), the swarm update and the bencoded answer, and the table
 * of failure reasons. Transport-neutral: it sees an http_request (or a BEP 15
 * announce, tracker_udp_*) and the client's address, and writes a body or a
 * datagram; server.c and udp.c own sockets and framing.
 * Files: tracker.c (lifecycle, settings, the announce), tracker_http.c
 * (routes, scrape, /health), tracker_udp.c (BEP 15), tracker_stats.c
 * (counters), tracker_restore.c (restore and reap); what they share is
 * tracker_int.h.
 * Invariant: never blocks; holds at most one shard lock at a time, for
 * O(numwant) work.
 */
#ifndef MIKA_NET_TRACKER_H
#define MIKA_NET_TRACKER_H

#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "acct/flusher.h"
#include "acct/journal.h"
#include "acct/rules.h"
#include "auth/resolver.h"
#include "auth/users.h"
#include "auth/whitelist.h"
#include "conf/config.h"
#include "proto/bencode.h"
#include "proto/http.h"
#include "proto/query.h"
#include "swarm/geo.h"
#include "swarm/select.h"
#include "swarm/torrents.h"
#include "util/rng.h"
#include "util/str.h"

/* Settings the admin API can change while the tracker runs. Each is read
 * with one relaxed atomic load per announce: a change is seen by the very
 * next announce on every worker, and no lock is shared with them. */
struct tracker_settings {
    _Atomic uint32_t interval;
    _Atomic uint32_t min_interval;
    _Atomic uint32_t numwant_max;
    /* A site-wide event (freeleech, double upload): per-mille multipliers
     * in force until event_ends (unix seconds; 0: no end). */
    _Atomic uint32_t event_up;
    _Atomic uint32_t event_down;
    _Atomic int64_t event_ends;
};

/* Counts of what the tracker answered, for /metrics and stats. Each worker
 * counts into its own slot (its own cache lines) with relaxed atomic adds;
 * readers sum the slots. Never reset. */
#define TRACKER_SLOTS 64
#define TRACKER_LATENCY_BUCKETS 12 /* finite bounds; one more slot counts the rest */
#define TRACKER_FAILURE_KINDS 13   /* see tracker_failure_label() */

struct tracker_counters {
    _Alignas(64) _Atomic uint64_t announces;
    _Atomic uint64_t scrapes;
    _Atomic uint64_t failures[TRACKER_FAILURE_KINDS];
    _Atomic uint64_t latency[TRACKER_LATENCY_BUCKETS + 1]; /* announces by duration */
    _Atomic uint64_t latency_ns_sum;
    _Atomic uint64_t conns_opened;  /* tracker-port connections accepted (server.c) */
    _Atomic uint64_t conns_closed;
    _Atomic uint64_t conns_refused; /* turned away at the connection cap */
    _Atomic uint64_t guess_blocked; /* addresses that reached passkey_guess_limit (conn.c) */
    _Atomic uint64_t guess_refused; /* requests refused while their address was blocked */
};

/* A sum over every slot. */
struct tracker_stats {
    uint64_t announces;
    uint64_t scrapes;
    uint64_t failures[TRACKER_FAILURE_KINDS];
    uint64_t latency[TRACKER_LATENCY_BUCKETS + 1];
    uint64_t latency_ns_sum;
    uint64_t conns_opened;
    uint64_t conns_closed;
    uint64_t conns_refused;
    uint64_t guess_blocked;
    uint64_t guess_refused;
};

/* State shared by every worker. Members guard themselves (shard locks,
 * versioned whitelist); the struct itself is read-only once workers run. */
struct tracker {
    const struct mk_config *cfg;
    struct users *users;
    struct torrents *torrents;
    struct whitelist *whitelist;
    struct resolver *resolver;  /* NULL: a passkey or info_hash not in memory is refused at once */
    uint8_t peer_key[16];       /* siphash key for peer identity */
    uint8_t udp_key[16];        /* siphash key behind UDP connection ids (net/udp.c) */
    struct timespec epoch;      /* CLOCK_MONOTONIC at start: the tracker clock's zero */
    uint32_t frozen_now;        /* nonzero: tracker_now returns it (unit tests step time by hand) */
    struct tracker_settings live; /* starts from cfg; the API may change it */
    struct acct_bonus_params bonus; /* from cfg's [bonus], in the units rules.h uses */
    _Atomic uint64_t journal_backlog; /* bytes of segments waiting for the store (flusher) */
    _Atomic bool stopping;      /* set at SIGTERM: GET /health answers 503 from then on */
    struct flusher_latency store_latency; /* the flusher's store transactions, for /metrics */
    struct geo *geo;            /* owned; NULL without tracker.geoip_*_db */
    /* Every strategy that could open with this geo, by kind, so that a
     * torrent's override switches without opening anything on the hot path;
     * selection is tracker.peer_selection's kind. */
    struct selector selectors[SELECT_KINDS];
    enum select_kind selection;
    /* Points at slots (set by tracker_init), so that workers holding a const
     * tracker can still count. */
    struct tracker_counters *counters;
    _Atomic uint32_t *next_slot;
    struct tracker_counters slots[TRACKER_SLOTS];
    _Atomic uint32_t slot_seq;
};

/* tracker_answer's status when the request needs a key looked up first. */
#define TRACKER_PARKED 0
/* A lookup[] slot with no answer yet. */
#define TRACKER_LOOKUP_NONE 1

/* One worker's private part: no locks needed. */
struct tracker_local {
    struct rng rng;
    struct whitelist_view whitelist;
    struct journal_writer *journal; /* borrowed: this worker's journal writer */
    uint8_t (*hashes)[20];      /* scrape scratch, cfg->scrape_max_hashes entries */
    struct tracker_counters *counters; /* this worker's slot; NULL counts nothing */
    /* The miss path (only with t->resolver): the caller sets lookup[] to
     * what the resolver answered for this request's passkey (MISS_PASSKEY)
     * and info_hash (MISS_INFO_HASH), TRACKER_LOOKUP_NONE when not asked
     * yet. A key missing from memory whose slot is NONE makes tracker_answer
     * return TRACKER_PARKED with the key in miss and nothing written; with
     * an answer there it refuses (MK_ENOTFOUND, or a found row that is still
     * not in memory: "unknown passkey"/"unregistered torrent"; anything else:
     * "try again later"). */
    int lookup[MISS_KINDS];
    struct miss_key miss;
};

/* The client's address as the tracker will publish it. */
struct tracker_addr {
    int family;        /* AF_INET or AF_INET6 */
    uint8_t ip[16];    /* network order; IPv4 in the first 4 bytes */
};

/* Fills *t from its parts and a fresh random peer key; opens the location
 * databases and the peer selection strategies (MK_EINVAL or MK_EIO naming
 * the key when tracker.peer_selection cannot work with what is configured). */
int tracker_init(struct tracker *t, const struct mk_config *cfg, struct users *users,
                 struct torrents *torrents, struct whitelist *whitelist, struct mk_errbuf *eb);
/* Closes what tracker_init opened (the parts passed in are the caller's). */
void tracker_fini(struct tracker *t);

/* The strategy a torrent's announces use: its override if set and open,
 * else the tracker's. */
const struct selector *tracker_selector(const struct tracker *t, enum select_kind override);

int tracker_local_init(struct tracker_local *l, const struct tracker *t,
                       struct journal_writer *journal, uint64_t seed);
void tracker_local_fini(struct tracker_local *l);

/* Changes live settings; 0 keeps a value. MK_EINVAL (naming the field) if
 * the result breaks min_interval <= interval or a value is out of the
 * config's range. */
int tracker_set_live(struct tracker *t, uint32_t interval, uint32_t min_interval,
                     uint32_t numwant_max, struct mk_errbuf *eb);

/* Sets the site-wide event's multipliers (per-mille; 1000/1000 is none) and
 * its end (unix seconds, 0 for none). Seen by the next announce. */
void tracker_set_event(struct tracker *t, uint32_t up, uint32_t down, int64_t ends);

/* Seconds since start on the monotonic clock. */
uint32_t tracker_now(const struct tracker *t);

/* The largest body tracker_answer can write with this config. */
size_t tracker_max_body(const struct mk_config *cfg);

/* Answers req from a client at src (the connection's source address): writes
 * the bencoded body into b (sized by tracker_max_body) and returns the HTTP
 * status, 200 or 404, or TRACKER_PARKED (see tracker_local.lookup; nothing
 * written, nothing counted). Failures a client must see are bencoded with 200.
 * What the announce changed in the books is added to the worker's journal
 * batch: the caller must journal_commit() before the answer leaves. */
int tracker_answer(const struct tracker *t, struct tracker_local *l, const struct http_request *req,
                   const struct tracker_addr *src, struct bencode *b);

/* UDP (BEP 15) answers the same announce and scrape with another framing;
 * b is then a plain byte buffer holding one datagram (b->p[0..b->len)),
 * sized by tracker_udp_max_answer. */
size_t tracker_udp_max_answer(const struct mk_config *cfg);

/* Answers a BEP 15 announce from src, already parsed (proto/udp.h): url is
 * its BEP 41 URL data ("/<passkey>/announce", any query ignored), which names
 * the user as an HTTP path does; the same rules and failure reasons apply,
 * sent as an error packet. Empty url: refused ("passkey: missing"). Writes an
 * announce or error packet for transaction tid; returns 200 or
 * TRACKER_PARKED exactly as tracker_answer does, with the same journal rule. */
int tracker_udp_announce(const struct tracker *t, struct tracker_local *l, struct mk_str url,
                         const struct announce_req *a, uint32_t tid,
                         const struct tracker_addr *src, struct bencode *b);

/* Answers a BEP 15 scrape of n hashes (20 bytes each, the client's order;
 * n <= UDP_SCRAPE_MAX): one entry each, zeros for a hash that is not a
 * registered, enabled torrent. Returns 200. */
int tracker_udp_scrape(const struct tracker *t, struct tracker_local *l, const uint8_t *hashes,
                       size_t n, uint32_t tid, struct bencode *b);

/* Sums every worker's counters (relaxed loads: a snapshot, not a barrier). */
void tracker_stats_read(const struct tracker *t, struct tracker_stats *out);
/* The metric label of failure kind i < TRACKER_FAILURE_KINDS ("unknown_passkey"...). */
const char *tracker_failure_label(unsigned i);
/* Upper bound in seconds of latency bucket i < TRACKER_LATENCY_BUCKETS. */
double tracker_latency_bound(unsigned i);

/* Puts a peer from the store back into its swarm at start-up, with its
 * reported counters as the baseline and its true age. MK_ENOTFOUND (and
 * nothing changes) for a peer older than interval x expiry_factor, whose
 * torrent is not registered, deleted or disabled, or, in a cluster
 * (cluster_node_id set), whose last report another node answered
 * (row->node_id not this node's: docs/ACCOUNTING.md). */
int tracker_restore_peer(const struct tracker *t, const struct peer_row *row, int64_t now_wall);

/* Expires peers silent for interval * expiry_factor in one shard; returns how many. */
uint32_t tracker_reap_shard(const struct tracker *t, uint32_t shard);

#endif /* MIKA_NET_TRACKER_H */
