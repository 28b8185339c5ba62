/* swarm/peers.c: the peer set of one address family of one torrent.
 *
 * Owns: the dense peer array, partitioned leechers [0, nleech) then seeders
 * [nleech, n); the parallel compact address array; the open-addressing index
 * from peer key to position; random selection and expiry.
 * Not here: the per-cell and per-network bucket lists (peers_geo.c); which
 * torrent; locking (the caller holds the shard lock); when to expire (the
 * reaper).
 * Invariants, checked after every operation by tests/unit/test_peers.c:
 *  - index slot s != 0 means peers[index[s] - 1] is found by probing from its
 *    key's home slot to s with no empty slot between (linear probing; deletion
 *    shifts entries back instead of leaving tombstones, so lookups never walk
 *    over dead slots and the table never needs a clean-up pass);
 *  - every position in [0, n) has exactly one index slot;
 *  - addrs[i * stride] belongs to peers[i];
 *  - npartial counts the leechers with partial set; seeders never have it;
 *  - index_cap is a power of two >= 2 * n, so load stays <= 1/2;
 *  - cells[i] belongs to peers[i]; with geo, every position whose cell is
 *    not 0 is on exactly its cell's bucket list, and no other position is.
 * Peer keys are already keyed hashes (siphash of peer_id and user), so a
 * key's home slot is its low bits: clients cannot aim at one slot.
 */
#include "swarm/peers.h"

#include <stdlib.h>
#include <string.h>

#include "swarm/peers_geo.h"
#include "util/err.h"

#define PEERSET_MIN_CAP 4u
#define PEERSET_NO_SLOT UINT32_MAX

void peerset_init(struct peerset *ps, enum peer_family family)
{
    memset(ps, 0, sizeof(*ps));
    ps->stride = family == PEER_V6 ? PEER_COMPACT_V6 : PEER_COMPACT_V4;
}

void peerset_fini(struct peerset *ps)
{
    peerset_geo_drop(ps);
    free(ps->peers);
    free(ps->addrs);
    free(ps->cells);
    free(ps->nets);
    free(ps->index);
    uint8_t stride = ps->stride;
    memset(ps, 0, sizeof(*ps));
    ps->stride = stride;
}

static uint32_t peerset_home(uint64_t key, uint32_t index_cap)
{
    return (uint32_t)key & (index_cap - 1);
}

/* The slot pointing at the peer with this key, or PEERSET_NO_SLOT. */
static uint32_t peerset_find_slot(const struct peerset *ps, uint64_t key)
{
    if (ps->index_cap == 0) {
        return PEERSET_NO_SLOT;
    }
    uint32_t mask = ps->index_cap - 1;
    for (uint32_t i = peerset_home(key, ps->index_cap);; i = (i + 1) & mask) {
        uint32_t v = ps->index[i];
        if (v == 0) {
            return PEERSET_NO_SLOT;
        }
        if (ps->peers[v - 1].key == key) {
            return i;
        }
    }
}

/* The slot that holds position pos, whose peer has this key; it must exist. */
static uint32_t peerset_slot_of(const struct peerset *ps, uint64_t key, uint32_t pos)
{
    uint32_t mask = ps->index_cap - 1;
    uint32_t i = peerset_home(key, ps->index_cap);
    while (ps->index[i] != pos + 1) {
        i = (i + 1) & mask;
    }
    return i;
}

/* Places position pos (whose peer has this key) in the first empty slot. */
static void peerset_index_put(uint32_t *index, uint32_t index_cap, uint64_t key, uint32_t pos)
{
    uint32_t mask = index_cap - 1;
    uint32_t i = peerset_home(key, index_cap);
    while (index[i] != 0) {
        i = (i + 1) & mask;
    }
    index[i] = pos + 1;
}

/* Backward-shift deletion: pull later entries of the probe run into the hole
 * unless that would move one before its home slot. */
static void peerset_index_del(struct peerset *ps, uint32_t hole)
{
    uint32_t mask = ps->index_cap - 1;
    for (uint32_t j = (hole + 1) & mask; ps->index[j] != 0; j = (j + 1) & mask) {
        uint32_t home = peerset_home(ps->peers[ps->index[j] - 1].key, ps->index_cap);
        /* The entry at j may fill the hole iff its home is not in (hole, j]. */
        if (((j - home) & mask) >= ((j - hole) & mask)) {
            ps->index[hole] = ps->index[j];
            hole = j;
        }
    }
    ps->index[hole] = 0;
}

static int peerset_rebuild_index(struct peerset *ps, uint32_t index_cap)
{
    uint32_t *index = calloc(index_cap, sizeof(*index));
    if (!index) {
        return MK_ENOMEM;
    }
    for (uint32_t pos = 0; pos < ps->n; pos++) {
        peerset_index_put(index, index_cap, ps->peers[pos].key, pos);
    }
    free(ps->index);
    ps->index = index;
    ps->index_cap = index_cap;
    return 0;
}

/* Resizes the peer and address arrays to cap >= n. On failure the set is
 * unchanged (a realloc that succeeded only made an array larger). */
static int peerset_resize_arrays(struct peerset *ps, uint32_t cap)
{
    struct peer *peers = realloc(ps->peers, (size_t)cap * sizeof(*peers));
    if (!peers) {
        return MK_ENOMEM;
    }
    ps->peers = peers;
    uint8_t *addrs = realloc(ps->addrs, (size_t)cap * ps->stride);
    if (!addrs) {
        /* Shrinking realloc may fail too; peers may now be smaller than the
         * old cap but is still >= n. */
        if (cap < ps->cap) {
            ps->cap = cap;
        }
        return MK_ENOMEM;
    }
    ps->addrs = addrs;
    uint16_t *cells = realloc(ps->cells, (size_t)cap * sizeof(*cells));
    if (!cells) {
        if (cap < ps->cap) {
            ps->cap = cap;
        }
        return MK_ENOMEM;
    }
    ps->cells = cells;
    uint16_t *nets = realloc(ps->nets, (size_t)cap * sizeof(*nets));
    if (!nets) {
        if (cap < ps->cap) {
            ps->cap = cap;
        }
        return MK_ENOMEM;
    }
    ps->nets = nets;
    ps->cap = cap;
    return 0;
}

/* Makes room for one more peer. Doubling keeps insertion amortized O(1). */
static int peerset_reserve_one(struct peerset *ps)
{
    if (ps->n >= PEERSET_MAX_PEERS) {
        return MK_ELIMIT;
    }
    if (ps->n == ps->cap) {
        uint32_t cap = ps->cap ? ps->cap * 2 : PEERSET_MIN_CAP;
        if (cap > PEERSET_MAX_PEERS) {
            cap = PEERSET_MAX_PEERS;
        }
        int rc = peerset_resize_arrays(ps, cap);
        if (rc < 0) {
            return rc;
        }
    }
    (void)peerset_geo_reserve(ps); /* failure only drops the buckets */
    if ((ps->n + 1) * 2 > ps->index_cap) {
        uint32_t index_cap = ps->index_cap ? ps->index_cap * 2 : PEERSET_MIN_CAP * 2;
        int rc = peerset_rebuild_index(ps, index_cap);
        if (rc < 0) {
            return rc;
        }
    }
    return 0;
}

static uint8_t *peerset_addr(const struct peerset *ps, uint32_t pos)
{
    return ps->addrs + (size_t)pos * ps->stride;
}

/* Copies the peer at from to position to (which may be == n while growing)
 * and repoints its index slot; the slot at to, if any, must already be gone
 * or be fixed by the caller. */
static void peerset_move(struct peerset *ps, uint32_t from, uint32_t to)
{
    if (from == to) {
        return;
    }
    uint32_t slot = peerset_slot_of(ps, ps->peers[from].key, from);
    peerset_geo_unlink(ps, from);
    ps->peers[to] = ps->peers[from];
    memcpy(peerset_addr(ps, to), peerset_addr(ps, from), ps->stride);
    ps->cells[to] = ps->cells[from];
    ps->nets[to] = ps->nets[from];
    ps->index[slot] = to + 1;
    peerset_geo_link(ps, to);
}

static void peerset_swap(struct peerset *ps, uint32_t i, uint32_t j)
{
    if (i == j) {
        return;
    }
    uint32_t si = peerset_slot_of(ps, ps->peers[i].key, i);
    uint32_t sj = peerset_slot_of(ps, ps->peers[j].key, j);
    /* Unlinking both first keeps neighbours in one bucket from pointing at
     * each other's old places; the order within a bucket does not matter. */
    peerset_geo_unlink(ps, i);
    peerset_geo_unlink(ps, j);
    uint16_t cell = ps->cells[i];
    ps->cells[i] = ps->cells[j];
    ps->cells[j] = cell;
    uint16_t net = ps->nets[i];
    ps->nets[i] = ps->nets[j];
    ps->nets[j] = net;
    struct peer tmp = ps->peers[i];
    ps->peers[i] = ps->peers[j];
    ps->peers[j] = tmp;
    uint8_t abuf[PEER_COMPACT_MAX];
    memcpy(abuf, peerset_addr(ps, i), ps->stride);
    memcpy(peerset_addr(ps, i), peerset_addr(ps, j), ps->stride);
    memcpy(peerset_addr(ps, j), abuf, ps->stride);
    ps->index[si] = j + 1;
    ps->index[sj] = i + 1;
    peerset_geo_link(ps, i);
    peerset_geo_link(ps, j);
}

static void peerset_fill_prev(const struct peerset *ps, uint32_t pos, struct peer_prev *prev)
{
    if (!prev) {
        return;
    }
    const struct peer *p = &ps->peers[pos];
    prev->existed = true;
    prev->was_seeder = pos >= ps->nleech;
    prev->was_partial = p->partial;
    prev->uploaded = p->uploaded;
    prev->downloaded = p->downloaded;
    prev->last_seen = p->last_seen;
    prev->user_id = p->user_id;
}

/* Writes the report at pos. A new peer (fresh) or a changed address gets
 * its cell looked up; otherwise the cell found at join is kept. The position
 * must not be on a bucket list (callers unlink it first). */
static void peerset_write(struct peerset *ps, uint32_t pos, const struct peer_report *r,
                          bool fresh)
{
    struct peer *p = &ps->peers[pos];
    if (fresh || memcmp(peerset_addr(ps, pos), r->addr, ps->stride) != 0) {
        unsigned iplen = ps->stride - 2u;
        ps->cells[pos] = r->locate ? r->locate(r->locate_arg, r->addr, iplen) : 0;
        ps->nets[pos] = r->locate_net ? r->locate_net(r->locate_arg, r->addr, iplen) : 0;
    }
    p->key = r->key;
    p->uploaded = r->uploaded;
    p->downloaded = r->downloaded;
    p->user_id = r->user_id;
    p->last_seen = r->now & 0x7fffffffu;
    p->partial = 0;
    memcpy(peerset_addr(ps, pos), r->addr, ps->stride);
}

/* The peer at pos (a leecher) takes its partial flag from the report. */
static void peerset_set_partial(struct peerset *ps, uint32_t pos, bool partial)
{
    if (partial) {
        ps->peers[pos].partial = 1;
        ps->npartial++;
    }
}

int peerset_upsert(struct peerset *ps, const struct peer_report *r, struct peer_prev *prev)
{
    uint32_t slot = peerset_find_slot(ps, r->key);
    if (slot != PEERSET_NO_SLOT) {
        uint32_t pos = ps->index[slot] - 1;
        bool was_seeder = pos >= ps->nleech;
        peerset_fill_prev(ps, pos, prev);
        if (ps->peers[pos].partial) {
            ps->npartial--;
        }
        /* Only a new address can change the cell, and so the bucket. */
        bool moved = memcmp(peerset_addr(ps, pos), r->addr, ps->stride) != 0;
        if (moved) {
            peerset_geo_unlink(ps, pos);
        }
        peerset_write(ps, pos, r, false);
        if (moved) {
            peerset_geo_link(ps, pos);
        }
        if (r->seeder && !was_seeder) {
            /* The last leecher and this one trade places; the boundary moves down. */
            peerset_swap(ps, pos, ps->nleech - 1);
            peerset_geo_unlink(ps, ps->nleech - 1);
            ps->nleech--;
            peerset_geo_link(ps, ps->nleech);
        } else if (!r->seeder && was_seeder) {
            peerset_swap(ps, pos, ps->nleech);
            peerset_geo_unlink(ps, ps->nleech);
            pos = ps->nleech++;
            peerset_geo_link(ps, pos);
        }
        if (!r->seeder) {
            peerset_set_partial(ps, pos, r->partial);
        }
        return 0;
    }

    if (prev) {
        memset(prev, 0, sizeof(*prev));
    }
    int rc = peerset_reserve_one(ps);
    if (rc < 0) {
        return rc;
    }
    uint32_t pos = ps->n;
    if (!r->seeder) {
        /* The first seeder steps to the end to open a place in the leechers. */
        peerset_move(ps, ps->nleech, ps->n);
        pos = ps->nleech++;
    }
    ps->n++;
    peerset_write(ps, pos, r, true);
    peerset_index_put(ps->index, ps->index_cap, r->key, pos);
    peerset_geo_link(ps, pos);
    if (!r->seeder) {
        peerset_set_partial(ps, pos, r->partial);
    }
    return 0;
}

/* Removes the peer at pos, whose index slot is slot. */
static void peerset_remove_at(struct peerset *ps, uint32_t pos, uint32_t slot)
{
    peerset_index_del(ps, slot);
    peerset_geo_unlink(ps, pos);
    if (pos < ps->nleech) {
        if (ps->peers[pos].partial) {
            ps->npartial--;
        }
        /* Fill the hole with the last leecher, and its place with the last peer. */
        bool seeders = ps->n > ps->nleech;
        peerset_move(ps, ps->nleech - 1, pos);
        peerset_move(ps, ps->n - 1, ps->nleech - 1);
        if (seeders) {
            /* The seeder moved in crosses the boundary with it. */
            peerset_geo_unlink(ps, ps->nleech - 1);
            ps->nleech--;
            peerset_geo_link(ps, ps->nleech);
        } else {
            ps->nleech--;
        }
    } else {
        peerset_move(ps, ps->n - 1, pos);
    }
    ps->n--;
}

bool peerset_remove(struct peerset *ps, uint64_t key, struct peer_prev *prev)
{
    uint32_t slot = peerset_find_slot(ps, key);
    if (slot == PEERSET_NO_SLOT) {
        if (prev) {
            memset(prev, 0, sizeof(*prev));
        }
        return false;
    }
    uint32_t pos = ps->index[slot] - 1;
    peerset_fill_prev(ps, pos, prev);
    peerset_remove_at(ps, pos, slot);
    return true;
}

uint32_t peerset_find(const struct peerset *ps, uint64_t key)
{
    uint32_t slot = peerset_find_slot(ps, key);
    return slot == PEERSET_NO_SLOT ? PEERSET_NIL : ps->index[slot] - 1;
}

/* A hint to start loading a cache line that will soon be read; nothing
 * where the compiler has no such builtin. */
#if defined(__GNUC__) || defined(__clang__)
#define PEERSET_PREFETCH(p) __builtin_prefetch((p), 0, 0)
#else
#define PEERSET_PREFETCH(p) ((void)(p))
#endif

/* A tiny open-addressing set of candidate numbers on the caller's stack,
 * for Floyd's sampling; values stored + 1. */
struct peerset_pickset {
    uint32_t slots[2 * PEERSET_SELECT_MAX];
    uint32_t mask;
    unsigned shift;
};

/* True if v was added, false if it was already there. */
static bool peerset_pickset_add(struct peerset_pickset *s, uint32_t v)
{
    uint32_t i = (uint32_t)((v * 0x9e3779b97f4a7c15ull) >> s->shift) & s->mask;
    while (s->slots[i] != 0) {
        if (s->slots[i] == v + 1) {
            return false;
        }
        i = (i + 1) & s->mask;
    }
    s->slots[i] = v + 1;
    return true;
}

uint32_t peerset_select(const struct peerset *ps, struct rng *rng, uint64_t self_key,
                        bool for_seeder, uint32_t numwant, uint8_t *out)
{
    uint32_t m = for_seeder ? ps->nleech : ps->n;
    /* Candidates are [0, m) without self: number them 0..c-1 and map a
     * number at or past self's position one up. */
    uint32_t skip = UINT32_MAX;
    uint32_t slot = peerset_find_slot(ps, self_key);
    if (slot != PEERSET_NO_SLOT && ps->index[slot] - 1 < m) {
        skip = ps->index[slot] - 1;
    }
    uint32_t c = skip == UINT32_MAX ? m : m - 1;
    if (numwant > PEERSET_SELECT_MAX) {
        numwant = PEERSET_SELECT_MAX;
    }

    if (c <= numwant) {
        for (uint32_t v = 0; v < c; v++) {
            uint32_t pos = v >= skip ? v + 1 : v;
            memcpy(out + (size_t)v * ps->stride, peerset_addr(ps, pos), ps->stride);
        }
        return c;
    }

    /* Robert Floyd's algorithm: for j = c-k .. c-1 take t uniform in [0, j];
     * if t was taken already take j (new, as every earlier pick is < j).
     * Every k-subset comes out equally likely, with exactly k draws. The
     * table is sized to >= 2k slots and only that part is cleared, so the
     * cost stays O(k) however large PEERSET_SELECT_MAX is. */
    struct peerset_pickset set;
    unsigned bits = 1;
    while ((1u << bits) < 2 * numwant) {
        bits++;
    }
    set.mask = (1u << bits) - 1;
    set.shift = 64 - bits;
    memset(set.slots, 0, ((size_t)set.mask + 1) * sizeof(set.slots[0]));

    /* Draw every position first and copy after: in a large swarm each pick
     * is a cache miss, and asking for all of them before the first is used
     * lets the misses overlap instead of queueing one behind the other. */
    uint32_t picks[PEERSET_SELECT_MAX];
    uint32_t k = 0;
    for (uint32_t j = c - numwant; j < c; j++) {
        uint32_t t = rng_below(rng, j + 1);
        if (!peerset_pickset_add(&set, t)) {
            t = j;
            peerset_pickset_add(&set, t);
        }
        uint32_t pos = t >= skip ? t + 1 : t;
        picks[k++] = pos;
        PEERSET_PREFETCH(peerset_addr(ps, pos));
    }
    for (uint32_t i = 0; i < k; i++) {
        memcpy(out + (size_t)i * ps->stride, peerset_addr(ps, picks[i]), ps->stride);
    }
    return k;
}

/* Gives memory back when the set is mostly empty; failure to shrink is
 * harmless, the set just keeps its larger arrays. */
static void peerset_shrink(struct peerset *ps)
{
    if (ps->n == 0) {
        peerset_fini(ps);
        return;
    }
    if (ps->n < PEERSET_GEO_MIN / 4) {
        peerset_geo_drop(ps);
    }
    uint32_t cap = ps->cap;
    while (cap > PEERSET_MIN_CAP && ps->n * 4 <= cap) {
        cap /= 2;
    }
    if (cap < ps->cap) {
        (void)peerset_resize_arrays(ps, cap);
    }
    uint32_t index_cap = ps->index_cap;
    while (index_cap > PEERSET_MIN_CAP * 2 && ps->n * 8 <= index_cap) {
        index_cap /= 2;
    }
    if (index_cap < ps->index_cap) {
        (void)peerset_rebuild_index(ps, index_cap);
    }
}

uint32_t peerset_expire(struct peerset *ps, uint32_t cutoff)
{
    uint32_t removed = 0;
    /* Walking down from the end, a removal only pulls in peers from higher
     * positions, which were checked already, so each peer is checked once. */
    for (uint32_t i = ps->n; i-- > 0;) {
        if (ps->peers[i].last_seen < cutoff) {
            peerset_remove_at(ps, i, peerset_slot_of(ps, ps->peers[i].key, i));
            removed++;
        }
    }
    if (removed > 0) {
        peerset_shrink(ps);
    }
    return removed;
}
