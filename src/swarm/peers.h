/* swarm/peers.h: the peer set of one address family of one torrent.
 *
 * Owns: a dense array of peers, partitioned so that leechers sit in
 * [0, nleech) and seeders in [nleech, n), a parallel array of their compact
 * addresses (BEP 23 / BEP 7 bytes: address then port, network order, so an
 * answer is built with memcpy), and an open-addressing index from peer key to
 * position. Removal swaps the last element in, so every operation but growth
 * is O(1), and picking numwant peers is O(numwant) whatever the swarm size.
 * Not here: which torrent (torrents.c), expiry scheduling (the reaper).
 * Invariant: callers hold the torrent's shard lock; nothing here sleeps or
 * does I/O. Seeder and leecher counts are the partition sizes, so they are
 * derived from the peers actually present, never from events.
 * Location: each peer has a 2-byte cell (swarm/cell.h; 0 = unknown) in a
 * parallel array, looked up once when the peer joins or changes address. A
 * set that nearest selection reads, once it holds PEERSET_GEO_MIN peers, also
 * keeps its peers in per-cell buckets (intrusive lists, 8 more bytes a peer,
 * only in those sets) so that selection by cell never scans the set. A
 * second 2-byte tag names the peer's network (its autonomous system), with
 * buckets of its own for same-network selection.
 */
#ifndef MIKA_SWARM_PEERS_H
#define MIKA_SWARM_PEERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/rng.h"

enum peer_family { PEER_V4, PEER_V6 };

#define PEER_COMPACT_V4 6  /* 4-byte address + 2-byte port */
#define PEER_COMPACT_V6 18 /* 16-byte address + 2-byte port */
#define PEER_COMPACT_MAX PEER_COMPACT_V6
#define PEERSET_MAX_PEERS (1u << 24) /* growth past this is MK_ELIMIT */
#define PEERSET_SELECT_MAX 1024u     /* peerset_select answers at most this many */
#define PEERSET_GEO_MIN 256u         /* smaller sets are scanned, never bucketed */
#define PEERSET_NIL UINT32_MAX       /* no position */

/* Finds a new peer's cell from its compact address bytes (len is 4 or 16,
 * the port is not included). Called at most once per join or address change. */
typedef uint16_t (*peer_locate_fn)(void *arg, const uint8_t *ip, unsigned len);

/* One announce, as the swarm needs it. */
struct peer_report {
    uint64_t key;                    /* keyed hash of (peer_id, user_id): identity in the swarm */
    uint32_t user_id;
    uint8_t addr[PEER_COMPACT_MAX];  /* compact bytes; 6 or 18 used, by family */
    uint64_t uploaded;               /* as reported, cumulative for the client session */
    uint64_t downloaded;
    bool seeder;                     /* left == 0 */
    bool partial;                    /* BEP 21 partial seed: event=paused and left > 0 */
    uint32_t now;                    /* seconds on the tracker's clock */
    peer_locate_fn locate;           /* NULL: the peer's cell is 0 (unknown) */
    peer_locate_fn locate_net;       /* its network tag (geo.h); NULL: 0 (unknown) */
    void *locate_arg;                /* for both */
};

/* The peer as it was before an upsert or removal: the baseline for deltas. */
struct peer_prev {
    bool existed;
    bool was_seeder;
    bool was_partial;
    uint64_t uploaded;
    uint64_t downloaded;
    uint32_t last_seen;
    uint32_t user_id;
};

/* Stored per peer; the address lives in the parallel addrs array. */
struct peer {
    uint64_t key;
    uint64_t uploaded;
    uint64_t downloaded;
    uint32_t user_id;
    uint32_t last_seen : 31; /* tracker clock, seconds: 68 years fit */
    uint32_t partial : 1;    /* a leecher that is a BEP 21 partial seed */
};
_Static_assert(sizeof(struct peer) == 32, "struct peer is a headline figure: keep it 32 bytes");

struct peerset_geo;

struct peerset {
    struct peer *peers;  /* [0, nleech) leechers, [nleech, n) seeders */
    uint8_t *addrs;      /* n * stride compact bytes, same order as peers */
    uint16_t *cells;     /* n cells (swarm/cell.h), same order as peers; 0 = unknown */
    uint16_t *nets;      /* n network tags (swarm/geo.h), same order; 0 = unknown */
    struct peerset_geo *geo; /* per-cell buckets; NULL until peerset_geo_enable */
    struct peerset_geo *net; /* per-network buckets; NULL until peerset_net_enable */
    uint32_t *index;     /* open addressing, slot holds position + 1, 0 = empty */
    uint32_t n;
    uint32_t nleech;
    uint32_t npartial;   /* leechers that are partial seeds (BEP 21) */
    uint32_t cap;        /* capacity of peers and addrs */
    uint32_t index_cap;  /* power of two, kept >= 2 * n */
    uint32_t cursor;     /* seeders-first rotation: next seeder offset (select.c) */
    uint8_t stride;      /* PEER_COMPACT_V4 or PEER_COMPACT_V6 */
};

/* An empty set; allocates nothing until the first peer. */
void peerset_init(struct peerset *ps, enum peer_family family);
void peerset_fini(struct peerset *ps);

/* Inserts the peer or updates it in place (address, counters, seeder state,
 * last_seen), moving it across the leecher/seeder partition if needed. *prev
 * says what was there before. MK_ENOMEM or MK_ELIMIT leave the set unchanged. */
int peerset_upsert(struct peerset *ps, const struct peer_report *r, struct peer_prev *prev);

/* Removes the peer with this key; false if absent. *prev as above (may be NULL). */
bool peerset_remove(struct peerset *ps, uint64_t key, struct peer_prev *prev);

static inline uint32_t peerset_count(const struct peerset *ps) { return ps->n; }
static inline uint32_t peerset_leechers(const struct peerset *ps) { return ps->nleech; }
static inline uint32_t peerset_seeders(const struct peerset *ps) { return ps->n - ps->nleech; }
/* BEP 21 "downloaders": leechers that are not partial seeds. */
static inline uint32_t peerset_downloaders(const struct peerset *ps) { return ps->nleech - ps->npartial; }

/* Writes up to numwant distinct peers' compact addresses to out (room for
 * min(numwant, PEERSET_SELECT_MAX) * stride bytes), a uniform random sample of
 * the candidates: leechers only when for_seeder, else every peer; never the
 * peer whose key is self_key. Returns the number written, which is
 * min(numwant, PEERSET_SELECT_MAX, candidates). O(numwant) time, about
 * numwant rng draws, no allocation (an on-stack table of 2 * PEERSET_SELECT_MAX
 * slots). The order of the answer is not a uniform permutation: when every
 * candidate fits, they come in array order (leechers, then seeders). */
uint32_t peerset_select(const struct peerset *ps, struct rng *rng, uint64_t self_key,
                        bool for_seeder, uint32_t numwant, uint8_t *out);

static inline const uint8_t *peerset_addr_at(const struct peerset *ps, uint32_t pos)
{
    return ps->addrs + (size_t)pos * ps->stride;
}

/* The position of the peer with this key, or PEERSET_NIL. O(1) expected. */
uint32_t peerset_find(const struct peerset *ps, uint64_t key);

/* Per-cell buckets. peerset_geo_enable builds them (O(n), once; later
 * upserts, moves and removals keep them current in O(1)); MK_ENOMEM leaves
 * the set without them. An allocation failure while keeping them current
 * drops them (the set stays correct; the next enable rebuilds). They are
 * dropped too when the set shrinks below PEERSET_GEO_MIN / 4. */
int peerset_geo_enable(struct peerset *ps);
static inline bool peerset_has_geo(const struct peerset *ps) { return ps->geo != NULL; }
/* First position in the bucket of cell's leechers (or seeders), or
 * PEERSET_NIL; then the next one. Cell 0 (unknown) has no bucket. Requires
 * peerset_has_geo. */
uint32_t peerset_geo_first(const struct peerset *ps, uint16_t cell, bool seeders);
uint32_t peerset_geo_next(const struct peerset *ps, uint32_t pos);
/* The same per network tag (same-network selection): enable builds the
 * buckets, which then follow the set as the cell buckets do. */
int peerset_net_enable(struct peerset *ps);
static inline bool peerset_has_net(const struct peerset *ps) { return ps->net != NULL; }
uint32_t peerset_net_first(const struct peerset *ps, uint16_t net, bool seeders);
uint32_t peerset_net_next(const struct peerset *ps, uint32_t pos);

/* Slots in the bucket table: peerset_geo_near reads them all. */
uint32_t peerset_geo_slots(const struct peerset *ps);
/* Reads the whole bucket table once and writes, for each non-empty bucket
 * (of leechers only, with leechers_only) whose cell is within maxd of center
 * (swarm/cell.h's distance), its first position to first[] and its distance
 * to dist[]; returns how many, at most peerset_geo_slots (cap must be that
 * large). O(peerset_geo_slots). */
uint32_t peerset_geo_near(const struct peerset *ps, uint16_t center, uint32_t maxd,
                          bool leechers_only, uint32_t *first, uint8_t *dist);

/* Removes every peer with last_seen < cutoff; returns how many. O(n). Gives
 * memory back: an emptied set frees its arrays, a mostly empty one shrinks. */
uint32_t peerset_expire(struct peerset *ps, uint32_t cutoff);

#endif /* MIKA_SWARM_PEERS_H */
