/* swarm/select.c: peer selection strategies (see select.h for the rules
 * every strategy keeps).
 *
 * Owns: random, seeders-first and nearest, the registry, the selector
 * wrapper.
 * Not here: the peer set's arrays and buckets (peers.c), finding a location
 * (geo.c).
 */
#include "swarm/select.h"

#include <string.h>

#include "swarm/cell.h"
#include "swarm/geo.h"

/* Positions already answered, for strategies that pick in more than one
 * pass; on the caller's stack, cleared only as far as numwant needs. */
struct select_picked {
    uint32_t slots[2 * PEERSET_SELECT_MAX];
    uint32_t mask;
};

static void select_picked_init(struct select_picked *s, uint32_t numwant)
{
    uint32_t cap = 16;
    while (cap < 2 * numwant) {
        cap *= 2;
    }
    s->mask = cap - 1;
    memset(s->slots, 0, (size_t)cap * sizeof(s->slots[0]));
}

/* True if pos was added, false if it was there already. */
static bool select_picked_add(struct select_picked *s, uint32_t pos)
{
    uint32_t i = (uint32_t)((pos * 0x9e3779b97f4a7c15ull) >> 40) & s->mask;
    while (s->slots[i] != 0) {
        if (s->slots[i] == pos + 1) {
            return false;
        }
        i = (i + 1) & s->mask;
    }
    s->slots[i] = pos + 1;
    return true;
}

static void select_put(const struct peerset *ps, uint32_t pos, uint8_t *out, uint32_t k)
{
    memcpy(out + (size_t)k * ps->stride, peerset_addr_at(ps, pos), ps->stride);
}

uint32_t select_random(const struct select_query *q, uint8_t *out)
{
    return peerset_select(q->ps, q->rng, q->self_key, q->for_seeder, q->numwant, out);
}

/* ---- seeders-first --------------------------------------------------------
 * A leecher gets seeders first, taken in turn from a cursor kept in the set
 * that advances past every seeder handed out, so in a swarm with more
 * seeders than numwant each seeder is given out once per round (peers
 * joining or leaving shift positions, which shifts the round by as many);
 * the rest of the answer is a uniform sample of the leechers. A seeder gets
 * leechers, uniformly, as with random. O(numwant). */
uint32_t select_seeders_first(const struct select_query *q, uint8_t *out)
{
    struct peerset *ps = q->ps;
    if (q->for_seeder) {
        return select_random(q, out);
    }
    uint32_t self = peerset_find(ps, q->self_key);
    uint32_t nseed = peerset_seeders(ps);
    uint32_t k = 0;
    if (nseed > 0) {
        uint32_t start = ps->cursor % nseed;
        uint32_t i = 0;
        for (; i < nseed && k < q->numwant; i++) {
            uint32_t pos = ps->nleech + (start + i) % nseed;
            if (pos != self) {
                select_put(ps, pos, out, k++);
            }
        }
        ps->cursor = (start + i) % nseed;
    }
    if (k < q->numwant) {
        k += peerset_select(ps, q->rng, q->self_key, true, q->numwant - k,
                            out + (size_t)k * ps->stride);
    }
    return k;
}

/* ---- nearest ---------------------------------------------------------------
 * Peers in the requester's cell first, then ring after ring of cells around
 * it (swarm/cell.h's distance), up to SELECT_NEAREST_RINGS rings; the rest of
 * the answer is random among the candidates not yet taken (peers further
 * away, or with no known location). A requester with no known location gets
 * a random answer. A set of PEERSET_GEO_MIN peers or more is walked through
 * its per-cell buckets: at most 2 * 169 bucket look-ups (or one read of a
 * bucket table of at most 256 slots) plus numwant list steps, whatever the
 * swarm size; a smaller set is scanned once (at most 255 cells). */
struct select_walk {
    const struct select_query *q;
    uint32_t m;    /* candidates are positions [0, m) */
    uint32_t self; /* or PEERSET_NIL */
    uint16_t center;
    uint8_t *out;
    uint32_t k;
    /* Positions answered; a walk meets each position once, so only the
     * random fill needs them as a set, and same-network's nearest phase,
     * which may meet its own picks again (dedupe, else NULL). */
    uint32_t pos[PEERSET_SELECT_MAX];
    struct select_picked *dedupe;
};

static void select_take(struct select_walk *w, uint32_t pos)
{
    if (w->dedupe && !select_picked_add(w->dedupe, pos)) {
        return;
    }
    w->pos[w->k] = pos;
    select_put(w->q->ps, pos, w->out, w->k++);
}

static void select_walk_list(struct select_walk *w, uint32_t first)
{
    const struct peerset *ps = w->q->ps;
    for (uint32_t pos = first; pos != PEERSET_NIL && w->k < w->q->numwant;
         pos = peerset_geo_next(ps, pos)) {
        if (pos != w->self) {
            select_take(w, pos);
        }
    }
}

static void select_walk_bucket(struct select_walk *w, uint16_t cell, bool seeders)
{
    select_walk_list(w, peerset_geo_first(w->q->ps, cell, seeders));
}

/* A set whose bucket table is smaller than the rings' 2 * 169 look-ups:
 * read the whole table once, order its buckets within reach by distance
 * (counting sort) and walk them in that order. */
#define SELECT_TABLE_WALK_MAX 256u

static void select_walk_table(struct select_walk *w)
{
    const struct peerset *ps = w->q->ps;
    uint32_t first[SELECT_TABLE_WALK_MAX];
    uint8_t dist[SELECT_TABLE_WALK_MAX];
    uint32_t count[SELECT_NEAREST_RINGS + 2] = {0};
    uint32_t n = peerset_geo_near(ps, w->center, SELECT_NEAREST_RINGS, w->q->for_seeder, first,
                                  dist);
    for (uint32_t i = 0; i < n; i++) {
        count[dist[i] + 1]++;
    }
    for (uint32_t d = 1; d <= SELECT_NEAREST_RINGS + 1; d++) {
        count[d] += count[d - 1];
    }
    uint32_t order[SELECT_TABLE_WALK_MAX];
    for (uint32_t i = 0; i < n; i++) {
        order[count[dist[i]]++] = first[i];
    }
    for (uint32_t i = 0; i < n && w->k < w->q->numwant; i++) {
        select_walk_list(w, order[i]);
    }
}

static void select_walk_cell(struct select_walk *w, uint16_t cell)
{
    select_walk_bucket(w, cell, false);
    if (!w->q->for_seeder) {
        select_walk_bucket(w, cell, true);
    }
}

/* The cells at distance r from the center, in rows of latitude. */
static void select_walk_ring(struct select_walk *w, uint32_t r)
{
    int32_t la0 = (int32_t)cell_lat(w->center);
    int32_t lo0 = (int32_t)cell_lon(w->center);
    int32_t ri = (int32_t)r;
    for (int32_t dlat = -ri; dlat <= ri && w->k < w->q->numwant; dlat++) {
        int32_t la = la0 + dlat;
        if (la < 0 || la >= (int32_t)CELL_LAT_BANDS) {
            continue;
        }
        if (dlat == -ri || dlat == ri) {
            for (int32_t dlon = -ri; dlon <= ri; dlon++) {
                select_walk_cell(w, cell_at((uint32_t)la, lo0 + dlon));
            }
        } else {
            select_walk_cell(w, cell_at((uint32_t)la, lo0 - ri));
            select_walk_cell(w, cell_at((uint32_t)la, lo0 + ri));
        }
    }
}

/* A set below PEERSET_GEO_MIN: one pass over its cells keeps the peers in
 * reach, a counting sort orders them by distance. */
static void select_scan(struct select_walk *w)
{
    const struct peerset *ps = w->q->ps;
    uint32_t near[PEERSET_GEO_MIN];
    uint8_t dist[PEERSET_GEO_MIN];
    uint32_t count[SELECT_NEAREST_RINGS + 2] = {0};
    uint32_t n = 0;
    for (uint32_t pos = 0; pos < w->m; pos++) {
        uint16_t cell = ps->cells[pos];
        if (pos == w->self || cell == CELL_UNKNOWN) {
            continue;
        }
        uint32_t d = cell_distance(cell, w->center);
        if (d <= SELECT_NEAREST_RINGS) {
            near[n] = pos;
            dist[n++] = (uint8_t)d;
            count[d + 1]++;
        }
    }
    for (uint32_t d = 1; d <= SELECT_NEAREST_RINGS + 1; d++) {
        count[d] += count[d - 1];
    }
    uint32_t order[PEERSET_GEO_MIN];
    for (uint32_t i = 0; i < n; i++) {
        order[count[dist[i]]++] = near[i];
    }
    for (uint32_t i = 0; i < n && w->k < w->q->numwant; i++) {
        select_take(w, order[i]);
    }
}

/* Fills the answer with random candidates not picked yet: draws first, then
 * a sweep from a random place, which passes at most the k picked and self
 * before each new peer, so O(numwant) in all. */
static void select_fill_random(struct select_walk *w)
{
    uint32_t want = w->q->numwant;
    if (w->k >= want) {
        return;
    }
    struct select_picked picked;
    select_picked_init(&picked, want);
    for (uint32_t i = 0; i < w->k; i++) {
        select_picked_add(&picked, w->pos[i]);
    }
    for (uint32_t tries = 4 * (want - w->k) + 16; w->k < want && tries > 0; tries--) {
        uint32_t pos = rng_below(w->q->rng, w->m);
        if (pos != w->self && select_picked_add(&picked, pos)) {
            select_take(w, pos);
        }
    }
    uint32_t pos = rng_below(w->q->rng, w->m);
    for (uint32_t seen = 0; w->k < want && seen < w->m; seen++, pos = (pos + 1) % w->m) {
        if (pos != w->self && select_picked_add(&picked, pos)) {
            select_take(w, pos);
        }
    }
}

/* Takes the peers near w->center, nearest first, until numwant. */
static void select_near_phase(struct select_walk *w)
{
    struct peerset *ps = w->q->ps;
    if (!peerset_has_geo(ps) && ps->n >= PEERSET_GEO_MIN) {
        (void)peerset_geo_enable(ps); /* on failure: random, later */
    }
    if (!peerset_has_geo(ps)) {
        if (ps->n < PEERSET_GEO_MIN) {
            select_scan(w);
        } /* else the buckets could not be built */
    } else if (peerset_geo_slots(ps) <= SELECT_TABLE_WALK_MAX) {
        select_walk_table(w);
    } else {
        for (uint32_t r = 0; r <= SELECT_NEAREST_RINGS && w->k < w->q->numwant; r++) {
            select_walk_ring(w, r);
        }
    }
}

static void select_walk_init(struct select_walk *w, const struct select_query *q, uint8_t *out,
                             uint32_t *candidates)
{
    struct peerset *ps = q->ps;
    w->q = q;
    w->m = q->for_seeder ? ps->nleech : ps->n;
    w->self = peerset_find(ps, q->self_key);
    w->center = w->self != PEERSET_NIL ? ps->cells[w->self] : CELL_UNKNOWN;
    w->out = out;
    w->k = 0;
    w->dedupe = NULL;
    *candidates = w->self < w->m ? w->m - 1 : w->m;
}

uint32_t select_nearest(const struct select_query *q, uint8_t *out)
{
    struct select_walk w;
    uint32_t c;
    select_walk_init(&w, q, out, &c);
    if (c <= q->numwant || w.center == CELL_UNKNOWN) {
        return select_random(q, out); /* everyone, or nowhere to start from */
    }
    select_near_phase(&w);
    if (w.k == 0) {
        return select_random(q, out); /* nobody near: exactly random's answer and cost */
    }
    select_fill_random(&w);
    return w.k;
}

/* ---- same-network ------------------------------------------------------------
 * Peers of the requester's network (its AS, by the 2-byte tag of geo.h)
 * first, then nearest among the rest (when the requester has a location),
 * then random. A set of PEERSET_GEO_MIN peers or more is walked through its
 * per-network buckets: one look-up per side plus numwant steps; a smaller
 * one is scanned once. The nearest phase is nearest's bound. A requester of
 * no known network gets nearest's answer. */
static void select_net_list(struct select_walk *w, uint32_t first)
{
    const struct peerset *ps = w->q->ps;
    for (uint32_t pos = first; pos != PEERSET_NIL && w->k < w->q->numwant;
         pos = peerset_net_next(ps, pos)) {
        if (pos != w->self) {
            select_take(w, pos);
        }
    }
}

uint32_t select_same_network(const struct select_query *q, uint8_t *out)
{
    struct peerset *ps = q->ps;
    struct select_walk w;
    uint32_t c;
    select_walk_init(&w, q, out, &c);
    uint16_t net = w.self != PEERSET_NIL ? ps->nets[w.self] : 0;
    if (c <= q->numwant || net == 0) {
        return select_nearest(q, out);
    }
    if (!peerset_has_net(ps) && ps->n >= PEERSET_GEO_MIN) {
        (void)peerset_net_enable(ps); /* on failure: nearest, below */
    }
    struct select_picked taken;
    select_picked_init(&taken, q->numwant);
    w.dedupe = &taken;
    if (peerset_has_net(ps)) {
        select_net_list(&w, peerset_net_first(ps, net, false));
        if (!q->for_seeder) {
            select_net_list(&w, peerset_net_first(ps, net, true));
        }
    } else if (ps->n < PEERSET_GEO_MIN) {
        for (uint32_t pos = 0; pos < w.m && w.k < q->numwant; pos++) {
            if (pos != w.self && ps->nets[pos] == net) {
                select_take(&w, pos);
            }
        }
    }
    if (w.k < q->numwant && w.center != CELL_UNKNOWN) {
        select_near_phase(&w);
    }
    if (w.k == 0) {
        return select_random(q, out);
    }
    select_fill_random(&w);
    return w.k;
}

/* ---- registry --------------------------------------------------------------- */

static uint32_t select_random_pick(void *ctx, const struct select_query *q, uint8_t *out)
{
    (void)ctx;
    return select_random(q, out);
}

static uint32_t select_seeders_first_pick(void *ctx, const struct select_query *q, uint8_t *out)
{
    (void)ctx;
    return select_seeders_first(q, out);
}

static uint32_t select_nearest_pick(void *ctx, const struct select_query *q, uint8_t *out)
{
    (void)ctx;
    return select_nearest(q, out);
}

static uint32_t select_same_network_pick(void *ctx, const struct select_query *q, uint8_t *out)
{
    (void)ctx;
    return select_same_network(q, out);
}

static int select_same_network_open(void **ctx, const struct select_env *env,
                                    struct mk_errbuf *eb)
{
    *ctx = NULL;
    if (!env->geo || !geo_has_asn(env->geo)) {
        return mk_fail(eb, MK_EINVAL,
                       "peer_selection same-network needs tracker.geoip_asn_db: the path of a "
                       "GeoLite2-ASN (or compatible) .mmdb file (and tracker.geoip_city_db for "
                       "its nearest step)");
    }
    return MK_OK;
}

static int select_nearest_open(void **ctx, const struct select_env *env, struct mk_errbuf *eb)
{
    *ctx = NULL;
    if (!env->geo || !geo_has_location(env->geo)) {
        return mk_fail(eb, MK_EINVAL,
                       "peer_selection nearest needs tracker.geoip_city_db: the path of a "
                       "GeoLite2-City (or compatible) .mmdb file");
    }
    return MK_OK;
}

static const struct select_ops select_random_ops = {
    .version = MK_SELECT_V1,
    .name = "random",
    .pick = select_random_pick,
};

static const struct select_ops select_seeders_first_ops = {
    .version = MK_SELECT_V1,
    .name = "seeders-first",
    .pick = select_seeders_first_pick,
};

static const struct select_ops select_nearest_ops = {
    .version = MK_SELECT_V1,
    .name = "nearest",
    .needs_cells = true,
    .open = select_nearest_open,
    .pick = select_nearest_pick,
};

static const struct select_ops select_same_network_ops = {
    .version = MK_SELECT_V1,
    .name = "same-network",
    .needs_cells = true,
    .open = select_same_network_open,
    .pick = select_same_network_pick,
};

static const struct select_ops *const select_registry[SELECT_KINDS] = {
    [SELECT_RANDOM] = &select_random_ops,
    [SELECT_SEEDERS_FIRST] = &select_seeders_first_ops,
    [SELECT_NEAREST] = &select_nearest_ops,
    [SELECT_SAME_NETWORK] = &select_same_network_ops,
};

static const char *const select_names[SELECT_KINDS] = {
    [SELECT_DEFAULT] = "default",
    [SELECT_RANDOM] = "random",
    [SELECT_SEEDERS_FIRST] = "seeders-first",
    [SELECT_NEAREST] = "nearest",
    [SELECT_SAME_NETWORK] = "same-network",
};

const struct select_ops *select_ops_of(enum select_kind kind)
{
    return (unsigned)kind < SELECT_KINDS ? select_registry[kind] : NULL;
}

int select_kind_parse(const char *name)
{
    if (name[0] == '\0') {
        return SELECT_DEFAULT;
    }
    for (int k = 0; k < SELECT_KINDS; k++) {
        if (strcmp(name, select_names[k]) == 0) {
            return k;
        }
    }
    return -1;
}

const char *select_kind_name(enum select_kind kind)
{
    return (unsigned)kind < SELECT_KINDS ? select_names[kind] : "?";
}

const struct select_ops *select_find(const char *name)
{
    int k = select_kind_parse(name);
    return k < 0 ? NULL : select_ops_of((enum select_kind)k);
}

int selector_open(struct selector *s, const struct select_ops *ops, const struct select_env *env,
                  struct mk_errbuf *eb)
{
    memset(s, 0, sizeof(*s));
    if (!ops || ops->version != MK_SELECT_V1 || !ops->pick) {
        return mk_fail(eb, MK_EINVAL, "peer_selection: %s is not a usable strategy",
                       ops ? ops->name : "(none)");
    }
    if (ops->open) {
        int rc = ops->open(&s->ctx, env, eb);
        if (rc < 0) {
            return rc;
        }
    }
    s->ops = ops;
    return MK_OK;
}

void selector_close(struct selector *s)
{
    if (s->ops && s->ops->close) {
        s->ops->close(s->ctx);
    }
    memset(s, 0, sizeof(*s));
}

uint32_t selector_pick(const struct selector *s, const struct select_query *q, uint8_t *out)
{
    struct select_query c = *q;
    if (c.numwant > PEERSET_SELECT_MAX) {
        c.numwant = PEERSET_SELECT_MAX;
    }
    if (c.numwant == 0) {
        return 0;
    }
    return s->ops->pick(s->ctx, &c, out);
}
