/* swarm/peers.c: the peer set of one address family of one torrent.
 *
 * Owns: the dense peer array, partitioned leechers [0, nleech) then seeders
 * [nleech, n); the parallel compact address array; the open-addressing index
 * from peer key to position; random selection and expiry.
 * Not here: which torrent, locking (the caller holds the shard lock), when to
 * expire (the reaper).
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

#include "swarm/cell.h"
#include "util/err.h"

#define PEERSET_MIN_CAP 4u
#define PEERSET_NO_SLOT UINT32_MAX
#define PEERSET_GEO_MIN_BUCKETS 16u

/* Per-cell buckets: doubly linked lists through next/prev (indexed by
 * position, lcap long) and an open-addressing table cell -> head. A bucket
 * that empties keeps its cell with head PEERSET_NIL; there are at most
 * CELL_COUNT cells, and a rehash drops the empty ones. */
struct peerset_geo_bucket {
    uint16_t cell; /* 0 = empty slot */
    uint32_t head;
};
struct peerset_geo {
    bool by_net;   /* lists by nets[] (network tag), else by cells[] */
    uint32_t *next;
    uint32_t *prev;
    uint32_t lcap;
    struct peerset_geo_bucket *buckets;
    uint32_t bcap; /* power of two */
    uint32_t bused;
};

void peerset_init(struct peerset *ps, enum peer_family family)
{
    memset(ps, 0, sizeof(*ps));
    ps->stride = family == PEER_V6 ? PEER_COMPACT_V6 : PEER_COMPACT_V4;
}

static void peerset_list_drop(struct peerset_geo **gp)
{
    if (*gp) {
        free((*gp)->next);
        free((*gp)->prev);
        free((*gp)->buckets);
        free(*gp);
        *gp = NULL;
    }
}

/* Both bucket indexes: by cell and by network. */
static void peerset_geo_drop(struct peerset *ps)
{
    peerset_list_drop(&ps->geo);
    peerset_list_drop(&ps->net);
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

static uint32_t peerset_geo_home(uint16_t cell, uint32_t bcap)
{
    return (uint32_t)((cell * 0x9e3779b97f4a7c15ull) >> 40) & (bcap - 1);
}

/* Leechers and seeders of a cell are kept on separate lists (bit 15 of the
 * bucket key; cells fit in 14 bits), so that a seeder's walk meets no seeder.
 * A position's list follows from pos < nleech: whoever moves the boundary
 * relinks the position that crossed it. */
static uint16_t peerset_geo_tag(const struct peerset *ps, const struct peerset_geo *g,
                                uint32_t pos)
{
    return g->by_net ? ps->nets[pos] : ps->cells[pos];
}

static uint16_t peerset_geo_key(const struct peerset *ps, const struct peerset_geo *g,
                                uint32_t pos)
{
    uint16_t tag = peerset_geo_tag(ps, g, pos);
    return tag == 0 ? 0 : (uint16_t)(tag | (pos >= ps->nleech ? 0x8000u : 0u));
}

/* The bucket slot of cell, or NULL when the cell has none. */
static struct peerset_geo_bucket *peerset_geo_bucket(const struct peerset_geo *g, uint16_t cell)
{
    uint32_t mask = g->bcap - 1;
    for (uint32_t i = peerset_geo_home(cell, g->bcap);; i = (i + 1) & mask) {
        if (g->buckets[i].cell == cell) {
            return &g->buckets[i];
        }
        if (g->buckets[i].cell == 0) {
            return NULL;
        }
    }
}

static void peerset_geo_bucket_put(struct peerset_geo_bucket *b, uint32_t bcap, uint16_t cell,
                                   uint32_t head)
{
    uint32_t i = peerset_geo_home(cell, bcap);
    while (b[i].cell != 0) {
        i = (i + 1) & (bcap - 1);
    }
    b[i].cell = cell;
    b[i].head = head;
}

/* Rehashes into bcap slots, dropping empty buckets. */
static int peerset_geo_rehash(struct peerset_geo *g, uint32_t bcap)
{
    struct peerset_geo_bucket *b = calloc(bcap, sizeof(*b));
    if (!b) {
        return MK_ENOMEM;
    }
    uint32_t used = 0;
    for (uint32_t i = 0; i < g->bcap; i++) {
        if (g->buckets[i].cell != 0 && g->buckets[i].head != PEERSET_NIL) {
            peerset_geo_bucket_put(b, bcap, g->buckets[i].cell, g->buckets[i].head);
            used++;
        }
    }
    free(g->buckets);
    g->buckets = b;
    g->bcap = bcap;
    g->bused = used;
    return 0;
}

/* Puts the peer at pos on its tag's list. Failure drops that index. */
static void peerset_list_link(struct peerset *ps, struct peerset_geo **gp, uint32_t pos)
{
    struct peerset_geo *g = *gp;
    if (!g || peerset_geo_tag(ps, g, pos) == 0) {
        return;
    }
    uint16_t cell = peerset_geo_key(ps, g, pos);
    struct peerset_geo_bucket *b = peerset_geo_bucket(g, cell);
    if (!b) {
        if ((g->bused + 1) * 2 > g->bcap && peerset_geo_rehash(g, g->bcap * 2) < 0) {
            peerset_list_drop(gp);
            return;
        }
        peerset_geo_bucket_put(g->buckets, g->bcap, cell, PEERSET_NIL);
        g->bused++;
        b = peerset_geo_bucket(g, cell);
    }
    g->prev[pos] = PEERSET_NIL;
    g->next[pos] = b->head;
    if (b->head != PEERSET_NIL) {
        g->prev[b->head] = pos;
    }
    b->head = pos;
}

static void peerset_list_unlink(struct peerset *ps, struct peerset_geo *g, uint32_t pos)
{
    if (!g || peerset_geo_tag(ps, g, pos) == 0) {
        return;
    }
    uint16_t cell = peerset_geo_key(ps, g, pos);
    uint32_t nx = g->next[pos];
    uint32_t pv = g->prev[pos];
    if (nx != PEERSET_NIL) {
        g->prev[nx] = pv;
    }
    if (pv != PEERSET_NIL) {
        g->next[pv] = nx;
    } else {
        peerset_geo_bucket(g, cell)->head = nx;
    }
}

static void peerset_geo_link(struct peerset *ps, uint32_t pos)
{
    peerset_list_link(ps, &ps->geo, pos);
    peerset_list_link(ps, &ps->net, pos);
}

static void peerset_geo_unlink(struct peerset *ps, uint32_t pos)
{
    peerset_list_unlink(ps, ps->geo, pos);
    peerset_list_unlink(ps, ps->net, pos);
}

/* The link arrays follow the peer arrays' capacity. */
static int peerset_list_reserve(struct peerset *ps, struct peerset_geo **gp)
{
    struct peerset_geo *g = *gp;
    if (!g || g->lcap >= ps->cap) {
        return 0;
    }
    uint32_t *next = realloc(g->next, (size_t)ps->cap * sizeof(*next));
    if (next) {
        g->next = next;
    }
    uint32_t *prev = next ? realloc(g->prev, (size_t)ps->cap * sizeof(*prev)) : NULL;
    if (!prev) {
        peerset_list_drop(gp);
        return MK_ENOMEM;
    }
    g->prev = prev;
    g->lcap = ps->cap;
    return 0;
}

static int peerset_geo_reserve(struct peerset *ps)
{
    int a = peerset_list_reserve(ps, &ps->geo);
    int b = peerset_list_reserve(ps, &ps->net);
    return a < 0 ? a : b;
}

static int peerset_list_enable(struct peerset *ps, struct peerset_geo **gp, bool by_net)
{
    if (*gp) {
        return 0;
    }
    struct peerset_geo *g = calloc(1, sizeof(*g));
    if (!g) {
        return MK_ENOMEM;
    }
    *gp = g;
    g->by_net = by_net;
    g->bcap = PEERSET_GEO_MIN_BUCKETS;
    g->buckets = calloc(g->bcap, sizeof(*g->buckets));
    if (!g->buckets || peerset_list_reserve(ps, gp) < 0) {
        peerset_list_drop(gp);
        return MK_ENOMEM;
    }
    for (uint32_t pos = 0; pos < ps->n && *gp; pos++) {
        peerset_list_link(ps, gp, pos);
    }
    return *gp ? 0 : MK_ENOMEM;
}

int peerset_geo_enable(struct peerset *ps)
{
    return peerset_list_enable(ps, &ps->geo, false);
}

int peerset_net_enable(struct peerset *ps)
{
    return peerset_list_enable(ps, &ps->net, true);
}

/* The first peer of bucket id (a network or a cell; 0: unknown, no bucket)
 * in list, seeders or leechers. */
static uint32_t peerset_bucket_first(const struct peerset_geo *list, uint16_t id, bool seeders)
{
    if (id == 0) {
        return PEERSET_NIL;
    }
    uint16_t key = (uint16_t)(id | (seeders ? 0x8000u : 0u));
    const struct peerset_geo_bucket *b = peerset_geo_bucket(list, key);
    return b ? b->head : PEERSET_NIL;
}

uint32_t peerset_net_first(const struct peerset *ps, uint16_t net, bool seeders)
{
    return peerset_bucket_first(ps->net, net, seeders);
}

uint32_t peerset_net_next(const struct peerset *ps, uint32_t pos)
{
    return ps->net->next[pos];
}

uint32_t peerset_geo_first(const struct peerset *ps, uint16_t cell, bool seeders)
{
    return peerset_bucket_first(ps->geo, cell, seeders);
}

uint32_t peerset_geo_next(const struct peerset *ps, uint32_t pos)
{
    return ps->geo->next[pos];
}

uint32_t peerset_geo_slots(const struct peerset *ps)
{
    return ps->geo->bcap;
}

uint32_t peerset_geo_near(const struct peerset *ps, uint16_t center, uint32_t maxd,
                          bool leechers_only, uint32_t *first, uint8_t *dist)
{
    const struct peerset_geo *g = ps->geo;
    uint32_t n = 0;
    for (uint32_t s = 0; s < g->bcap; s++) {
        const struct peerset_geo_bucket *b = &g->buckets[s];
        if (b->cell == 0 || b->head == PEERSET_NIL || (leechers_only && (b->cell & 0x8000u))) {
            continue;
        }
        uint32_t d = cell_distance((uint16_t)(b->cell & 0x7fffu), center);
        if (d <= maxd) {
            first[n] = b->head;
            dist[n++] = (uint8_t)d;
        }
    }
    return n;
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
