/* swarm/select.h: peer selection strategies, behind one interface.
 *
 * Owns: the interface a strategy fills (an ops table plus a context, shaped
 * like the stores), the registry of strategies by name, and the built-in
 * ones: random (the default), seeders-first, nearest, same-network.
 * Not here: where a peer is (swarm/geo.c looks it up at join; peers.c keeps
 * it, two bytes a peer), which strategy a torrent uses (the tracker's config,
 * a torrent's override).
 * Every strategy keeps the core's rules: the answer comes from one peer set
 * (so one address family), never holds the requester, holds no seeder when
 * the requester is a seeder, holds distinct peers, and costs O(numwant) or a
 * bound stated on the strategy, whatever the swarm size.
 * Invariant: pick runs under the torrent's shard lock; it never sleeps,
 * allocates only when it builds a set's buckets once, and never fails: it
 * answers min(numwant, candidates) peers.
 */
#ifndef MIKA_SWARM_SELECT_H
#define MIKA_SWARM_SELECT_H

#include <stdbool.h>
#include <stdint.h>

#include "swarm/peers.h"
#include "util/err.h"
#include "util/rng.h"

#define MK_SELECT_V1 1

/* The strategies, in the order of the registry. SELECT_DEFAULT is a torrent
 * without an override: it uses the tracker's. */
enum select_kind {
    SELECT_DEFAULT = 0,
    SELECT_RANDOM,
    SELECT_SEEDERS_FIRST,
    SELECT_NEAREST,
    SELECT_SAME_NETWORK,
    SELECT_KINDS
};

/* Nearest looks this many rings of cells (swarm/cell.h) around the
 * requester's cell: at most (2R+1)^2 = 169 cells, 2 bucket look-ups each. */
#define SELECT_NEAREST_RINGS 6u

struct geo;

/* What a strategy may use, given at open. */
struct select_env {
    const struct geo *geo; /* NULL when no location database is configured */
};

struct select_query {
    struct peerset *ps;  /* the requester's family; pick may update the set's
                          * rotation cursor and build its buckets */
    struct rng *rng;     /* the worker's */
    uint64_t self_key;   /* the requester, never answered */
    bool for_seeder;     /* answer leechers only */
    uint32_t numwant;    /* clamped to PEERSET_SELECT_MAX by the wrapper */
};

struct select_ops {
    int version;       /* MK_SELECT_V1; only ever append */
    const char *name;  /* as in the config: "random", "nearest", ... */
    bool needs_cells;  /* peers must be located at join */
    /* Optional (NULL: no context). MK_EINVAL with a message naming the
     * missing setting when the strategy cannot work with env. */
    int (*open)(void **ctx, const struct select_env *env, struct mk_errbuf *eb);
    void (*close)(void *ctx);
    /* Writes up to q->numwant compact addresses to out (room for numwant *
     * stride bytes); returns how many: min(numwant, candidates). */
    uint32_t (*pick)(void *ctx, const struct select_query *q, uint8_t *out);
};

/* The registry. NULL for an unknown name or kind (SELECT_DEFAULT included). */
const struct select_ops *select_find(const char *name);
const struct select_ops *select_ops_of(enum select_kind kind);
/* The kind named name, or SELECT_DEFAULT for "" and "default"; -1 if unknown. */
int select_kind_parse(const char *name);
const char *select_kind_name(enum select_kind kind); /* "default" for SELECT_DEFAULT */

/* One opened strategy. */
struct selector {
    const struct select_ops *ops;
    void *ctx;
};

int selector_open(struct selector *s, const struct select_ops *ops, const struct select_env *env,
                  struct mk_errbuf *eb);
void selector_close(struct selector *s); /* a closed or zeroed selector: no-op */
static inline bool selector_is_open(const struct selector *s) { return s->ops != NULL; }
/* The wrapper: clamps numwant and checks the answer's size in debug builds. */
uint32_t selector_pick(const struct selector *s, const struct select_query *q, uint8_t *out);

/* The strategies' pick functions, for tests and for each other's fallback. */
uint32_t select_random(const struct select_query *q, uint8_t *out);
uint32_t select_seeders_first(const struct select_query *q, uint8_t *out);
uint32_t select_nearest(const struct select_query *q, uint8_t *out);
uint32_t select_same_network(const struct select_query *q, uint8_t *out);

#endif /* MIKA_SWARM_SELECT_H */
