/* swarm/torrents.h: every registered torrent and its swarm, in memory.
 *
 * Owns: a hash table keyed by the 20-byte info_hash, split into shards with
 * one mutex each, and the torrents in it (metadata, IPv4 and IPv6 peer sets,
 * the set of users who have snatched it).
 * Not here: loading from the store (serve.c, and auth/resolver.c for an
 * info_hash not in memory), what an announce means (net/).
 * Invariant: a request holds exactly one shard lock, for O(numwant) work;
 * torrent pointers are valid only while their shard is locked.
 */
#ifndef MIKA_SWARM_TORRENTS_H
#define MIKA_SWARM_TORRENTS_H

#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"
#include "swarm/peers.h"
#include "util/err.h"
#include "util/u32set.h"

struct torrent {
    uint8_t info_hash[20];
    uint32_t id;
    bool enabled;
    bool deleted;
    char *reason;             /* owned; why it was deleted; NULL if none */
    uint32_t snatches;        /* completed downloads, once per user */
    uint32_t generation;      /* reload generation that last saw it in the store */
    bool freeleech;           /* downloads on it are not counted */
    uint32_t up_mult;         /* per-mille (acct/rules.h) */
    uint32_t down_mult;
    uint64_t size;            /* total bytes, 0 if unknown */
    uint32_t leech_seen;      /* tracker clock: last announce that saw a leecher in the swarm */
    uint8_t selection;        /* enum select_kind (swarm/select.h); 0: the tracker's */
    struct torrent_token *tokens; /* owned, sorted by user_id; a freeleech token each */
    uint32_t ntokens;
    struct peerset v4;
    struct peerset v6;
    struct u32set snatchers;  /* user ids that have snatched it */
    /* A cluster (cluster/counts.c). announced_at: unix seconds of the last
     * announce this node answered for the swarm (0: none). remote_*: the
     * freshest other node's row (the one with the latest announced_at), for
     * scrapes; published_*: what this node last published of its own. */
    uint32_t announced_at;
    uint32_t remote_seeders, remote_leechers, remote_announced_at, remote_stamp;
    uint32_t published_seeders, published_leechers, published_snatches, published_announced_at;
    struct torrent *next;     /* hash chain */
};

struct torrents;
struct torrent_shard;

#define TORRENTS_MAX_SHARDS 65536u
#define TORRENTS_MAX_TORRENTS (1u << 26) /* torrents_put past this is MK_ELIMIT */

/* nshards is rounded up to a power of two (0 means 256, at most
 * TORRENTS_MAX_SHARDS). Draws the table's hash key from getrandom(2): NULL if
 * that or an allocation fails. */
struct torrents *torrents_new(uint32_t nshards);
void torrents_free(struct torrents *t);

/* Locks the shard that holds info_hash and returns the torrent, or NULL when
 * it is not registered (the shard is locked either way). *shard receives the
 * lock to hand to torrents_unlock(). */
struct torrent *torrents_lock(struct torrents *t, const uint8_t info_hash[20],
                              struct torrent_shard **shard);
void torrents_unlock(struct torrent_shard *shard);

/* Inserts or updates a torrent's metadata from a store row (peers and
 * snatchers are kept), stamping it with generation. Takes its own shard lock.
 * An empty reason is stored as NULL. snatches becomes the larger of the
 * in-memory count and the row's: at start-up the store's count is the truth,
 * and on a reload the in-memory count may include snatches the flusher has
 * not written yet (a count lowered by hand in the store is therefore not
 * picked up until restart). MK_ENOMEM leaves the torrent as it was;
 * MK_ELIMIT past TORRENTS_MAX_TORRENTS. */
int torrents_put(struct torrents *t, const struct torrent_row *row, uint32_t generation);

/* After a reload with this generation: torrents the store no longer has
 * become deleted (reason kept if any). Returns how many became deleted by
 * this call (ones already deleted are not counted again). */
uint32_t torrents_sweep(struct torrents *t, uint32_t generation);

/* Records a snatch by user_id (by id lookup is not needed: caller holds the
 * torrent). True the first time for that user, and then bumps t->snatches.
 * If the set of snatchers cannot grow (memory, U32SET_MAX) it answers true
 * without bumping the count: the store deduplicates snatches, so the books
 * stay exact, and the next reload brings the count back. */
bool torrent_snatch(struct torrent *tor, uint32_t user_id);

/* A user's personal factor on one torrent until it expires (a freeleech
 * token is down_mult 0): it replaces the user's own factors there. */
struct torrent_token {
    uint32_t user_id;
    uint32_t up_mult;   /* per-mille */
    uint32_t down_mult;
    int64_t expires;    /* unix seconds; 0: never */
};
#define TORRENT_TOKENS_MAX 65536

/* The token of user_id in force at now, or NULL. O(log tokens). */
const struct torrent_token *torrent_token_find(const struct torrent *tor, uint32_t user_id,
                                               int64_t now);
/* Sets (or replaces) a token; takes the torrent's shard lock. MK_ENOTFOUND
 * for an unknown torrent, MK_ELIMIT past TORRENT_TOKENS_MAX. */
int torrents_set_token(struct torrents *t, const uint8_t info_hash[20],
                       const struct torrent_token *tok);
/* Removes a user's token; false if there was none. */
bool torrents_drop_token(struct torrents *t, const uint8_t info_hash[20], uint32_t user_id);

/* Sets a torrent's peer selection override (enum select_kind, 0 = the
 * tracker's); takes the shard lock. MK_ENOTFOUND for an unknown torrent. */
int torrents_set_selection(struct torrents *t, const uint8_t info_hash[20], uint8_t kind);

/* Records a snatch loaded from the store, without counting it again (the
 * stored count already includes it). Keyed by info_hash, which snatch_row
 * carries, so no index by torrent id is needed. 0 (also if already there),
 * MK_ENOTFOUND, or u32set_add's error. Takes the shard lock. */
int torrents_load_snatch(struct torrents *t, const uint8_t info_hash[20], uint32_t user_id);

/* Expires peers with last_seen < cutoff in one shard (taking its lock);
 * returns how many were removed. Call for shard 0..torrents_nshards()-1 in
 * turn to sweep a little at a time. */
uint32_t torrents_reap_shard(struct torrents *t, uint32_t shard, uint32_t cutoff);
uint32_t torrents_nshards(const struct torrents *t);

/* Totals for logs and stats; takes each shard lock in turn. torrents counts
 * those not deleted; seeders and leechers count every peer, both families. */
struct torrents_totals {
    uint64_t torrents;
    uint64_t seeders;
    uint64_t leechers;
};
void torrents_totals(struct torrents *t, struct torrents_totals *out);

/* For the admin API; each takes the shard locks one at a time and costs
 * O(torrents + peers) in all, never holding one lock for more than a shard. */

/* Removes every peer of user_id from every swarm; returns how many. */
uint32_t torrents_remove_user(struct torrents *t, uint32_t user_id);

/* Removes every peer of one torrent (when it is deleted); returns how many. */
uint32_t torrents_clear_peers(struct torrents *t, const uint8_t info_hash[20]);

/* Calls fn for every torrent with its shard locked: fn must be quick, must
 * not block and must not lock anything of the table. */
/* ---- a cluster's swarm counts (cluster/counts.c) ---- */

/* row: info_hash, seeders, leechers, snatches and announced_at (node_id 0). */
typedef void (*torrents_count_fn)(const struct swarm_count_row *row, void *arg);
/* Calls fn for each torrent with peers, or whose last report had some, whose
 * seeders, leechers, snatches or announced_at differ from what it last
 * reported (all: every such torrent, changed or not), and remembers the new
 * row as reported. One shard lock at a time; fn runs under it and must not
 * block. */
void torrents_counts_changed(struct torrents *t, bool all, torrents_count_fn fn, void *arg);
/* Sets the freshest other node's row of a torrent (seeders, leechers,
 * announced_at), stamped, and raises the torrent's snatches to snatches
 * when that is more (no-op when unknown). */
void torrents_set_remote(struct torrents *t, const uint8_t info_hash[20], uint32_t seeders,
                         uint32_t leechers, uint32_t snatches, uint32_t announced_at,
                         uint32_t stamp);
/* Zeroes the other nodes' row of every torrent not stamped with stamp. */
void torrents_clear_remote(struct torrents *t, uint32_t stamp);
/* The swarm's counts a scrape answers: this node's own when it saw the
 * latest announce (announced_at >= the remote row's), else the freshest
 * other node's. Caller holds the shard lock. */
void torrent_swarm_counts(const struct torrent *tor, uint32_t *seeders, uint32_t *leechers);

void torrents_each(struct torrents *t, void (*fn)(const struct torrent *tor, void *arg),
                   void *arg);

#endif /* MIKA_SWARM_TORRENTS_H */
