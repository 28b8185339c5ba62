/* swarm/peers_geo.c: a peer set's bucket lists by cell and by network.
 *
 * Owns: the per-cell buckets nearest selection reads and the per-network
 * buckets same-network selection reads: doubly linked lists through the
 * set's positions, and an open-addressing table from cell (or network tag)
 * to the list's head; building them (peerset_geo_enable, peerset_net_enable),
 * keeping them in step as positions change (peerset_geo_link, _unlink),
 * growing and dropping them.
 * Not here: the peer array and its index (peers.c), which moves positions
 * and calls link/unlink around each move.
 * Invariant: with a list, every position whose cell (or tag) is not 0 is on
 * exactly its bucket's list, and no other position is.
 */
#include "swarm/peers_geo.h"

#include <stdlib.h>
#include <string.h>

#include "swarm/cell.h"
#include "util/err.h"

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
void peerset_geo_drop(struct peerset *ps)
{
    peerset_list_drop(&ps->geo);
    peerset_list_drop(&ps->net);
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

void peerset_geo_link(struct peerset *ps, uint32_t pos)
{
    peerset_list_link(ps, &ps->geo, pos);
    peerset_list_link(ps, &ps->net, pos);
}

void peerset_geo_unlink(struct peerset *ps, uint32_t pos)
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

int peerset_geo_reserve(struct peerset *ps)
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
