/* tests/unit/test_select.c: peer selection strategies: the core's rules for
 * each, fairness of the seeders-first rotation, nearest against a brute-force
 * reference on random swarms (scanned and bucketed), the random fallback,
 * the per-cell buckets kept right under churn, the registry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "swarm/cell.h"
#include "swarm/geo.h"
#include "swarm/select.h"

/* Under valgrind (MIKA_TEST_LIGHT) the randomized tests run a tenth. */
static uint32_t sized(uint32_t n)
{
    const char *light = getenv("MIKA_TEST_LIGHT");
    return light && *light && strcmp(light, "0") != 0 ? n / 10 : n;
}

/* ---- a swarm of numbered peers ------------------------------------------
 * Peer id's address holds id in its first 4 bytes; its cell is cells[id],
 * handed to the set by a locate function that reads the id back. */
#define POOL 6000

struct world {
    uint16_t cells[POOL];
    uint16_t nets[POOL];
    bool present[POOL];
    bool seeder[POOL];
};

static uint32_t id_of(const uint8_t *addr)
{
    return (uint32_t)addr[0] << 24 | (uint32_t)addr[1] << 16 | (uint32_t)addr[2] << 8 | addr[3];
}

static uint16_t world_locate(void *arg, const uint8_t *ip, unsigned len)
{
    (void)len;
    const struct world *w = arg;
    return w->cells[id_of(ip)];
}

static uint16_t world_locate_net(void *arg, const uint8_t *ip, unsigned len)
{
    (void)len;
    const struct world *w = arg;
    return w->nets[id_of(ip)];
}

static uint64_t key_of(uint32_t id)
{
    uint64_t x = (uint64_t)id * 0x9e3779b97f4a7c15ull + 99;
    x ^= x >> 31;
    x *= 0xbf58476d1ce4e5b9ull;
    return x ^ (x >> 29);
}

static void world_put(struct peerset *ps, struct world *w, uint32_t id, bool seeder)
{
    struct peer_report r;
    memset(&r, 0, sizeof(r));
    r.key = key_of(id);
    r.user_id = id;
    r.addr[0] = (uint8_t)(id >> 24);
    r.addr[1] = (uint8_t)(id >> 16);
    r.addr[2] = (uint8_t)(id >> 8);
    r.addr[3] = (uint8_t)id;
    r.seeder = seeder;
    r.now = 100;
    r.locate = world_locate;
    r.locate_net = world_locate_net;
    r.locate_arg = w;
    struct peer_prev prev;
    assert_int_equal(peerset_upsert(ps, &r, &prev), 0);
    w->present[id] = true;
    w->seeder[id] = seeder;
}

static void world_drop(struct peerset *ps, struct world *w, uint32_t id)
{
    assert_int_equal(peerset_remove(ps, key_of(id), NULL), w->present[id]);
    w->present[id] = false;
}

/* Cells clustered around a few centres, some far, some unknown. */
static uint16_t random_cell(struct rng *rng)
{
    static const double centres[][2] = {{48.8, 2.3}, {52.5, 13.4}, {40.7, -74.0}, {-33.9, 151.2}};
    if (rng_below(rng, 10) == 0) {
        return CELL_UNKNOWN;
    }
    const double *c = centres[rng_below(rng, 4)];
    double lat = c[0] + ((double)rng_below(rng, 4001) - 2000.0) / 100.0;
    double lon = c[1] + ((double)rng_below(rng, 4001) - 2000.0) / 100.0;
    if (lon >= 180.0) {
        lon -= 360.0;
    }
    return cell_of(lat, lon);
}

/* Networks: a few, one peer in ten unknown. */
static uint16_t random_net(struct rng *rng)
{
    return rng_below(rng, 10) == 0 ? 0 : (uint16_t)(1 + rng_below(rng, 6));
}

static uint32_t bucket_first(const struct peerset *ps, bool by_net, uint16_t tag, bool seeders)
{
    return by_net ? peerset_net_first(ps, tag, seeders) : peerset_geo_first(ps, tag, seeders);
}

static uint32_t bucket_next(const struct peerset *ps, bool by_net, uint32_t pos)
{
    return by_net ? peerset_net_next(ps, pos) : peerset_geo_next(ps, pos);
}

/* The per-cell (per-network) buckets hold exactly the located peers, each
 * on its own tag's list for its side of the partition. */
static void check_buckets_by(const struct peerset *ps, bool by_net)
{
    if (by_net ? !peerset_has_net(ps) : !peerset_has_geo(ps)) {
        return;
    }
    const uint16_t *tags = by_net ? ps->nets : ps->cells;
    uint32_t linked = 0, located = 0;
    for (uint32_t pos = 0; pos < ps->n; pos++) {
        uint16_t cell = tags[pos];
        if (cell == CELL_UNKNOWN) {
            continue;
        }
        located++;
        bool seeders = pos >= ps->nleech;
        bool found = false;
        uint32_t steps = 0;
        for (uint32_t q = bucket_first(ps, by_net, cell, seeders); q != PEERSET_NIL;
             q = bucket_next(ps, by_net, q)) {
            assert_true(q < ps->n);
            assert_int_equal(tags[q], cell);
            assert_int_equal(q >= ps->nleech, seeders);
            found |= q == pos;
            assert_true(++steps <= ps->n);
        }
        assert_true(found);
        /* Count each list once, from its first member's point of view. */
        if (bucket_first(ps, by_net, cell, seeders) == pos) {
            linked += steps;
        }
    }
    assert_int_equal(linked, located);
}

static void check_buckets(const struct peerset *ps)
{
    check_buckets_by(ps, false);
    check_buckets_by(ps, true);
}

/* The rules every strategy keeps: the right count, distinct peers of this
 * set, never the requester, no seeder for a seeder. */
static void check_rules(const struct peerset *ps, const struct world *w, uint32_t self,
                        bool for_seeder, uint32_t numwant, const uint8_t *out, uint32_t got)
{
    uint32_t cand = 0;
    for (uint32_t id = 0; id < POOL; id++) {
        if (w->present[id] && id != self && (!for_seeder || !w->seeder[id])) {
            cand++;
        }
    }
    assert_int_equal(got, numwant < cand ? numwant : cand);
    static bool seen[POOL];
    memset(seen, 0, sizeof(seen));
    for (uint32_t i = 0; i < got; i++) {
        uint32_t id = id_of(out + (size_t)i * ps->stride);
        assert_true(id < POOL);
        assert_true(w->present[id]);
        assert_int_not_equal(id, self);
        assert_false(seen[id]);
        seen[id] = true;
        if (for_seeder) {
            assert_false(w->seeder[id]);
        }
    }
}

typedef uint32_t (*pick_fn)(const struct select_query *q, uint8_t *out);

/* Random swarms of many sizes under churn, each strategy answering. */
static void run_rules(pick_fn pick, uint64_t seed)
{
    static struct world w;
    static const uint32_t sizes[] = {1, 2, 10, 63, 64, 65, 300, 3000};
    struct rng rng;
    rng_seed(&rng, seed);
    uint8_t out[PEERSET_SELECT_MAX * PEER_COMPACT_V4];
    for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
        memset(&w, 0, sizeof(w));
        struct peerset ps;
        peerset_init(&ps, PEER_V4);
        uint32_t n = sizes[si];
        for (uint32_t id = 0; id < POOL; id++) {
            w.cells[id] = random_cell(&rng);
            w.nets[id] = random_net(&rng);
        }
        for (uint32_t id = 0; id < n; id++) {
            world_put(&ps, &w, id, rng_below(&rng, 3) == 0);
        }
        for (uint32_t round = 0; round < sized(300); round++) {
            uint32_t id = rng_below(&rng, n + n / 4 + 1);
            uint32_t dice = rng_below(&rng, 10);
            if (dice < 2) {
                world_drop(&ps, &w, id);
            } else if (dice < 5) {
                world_put(&ps, &w, id, rng_below(&rng, 2) == 0);
            }
            uint32_t self = rng_below(&rng, n + 1);
            bool for_seeder = self < POOL && w.present[self] ? w.seeder[self] : false;
            uint32_t numwant = 1 + rng_below(&rng, 80);
            struct select_query q = {.ps = &ps, .rng = &rng, .self_key = key_of(self),
                                     .for_seeder = for_seeder, .numwant = numwant};
            uint32_t got = pick(&q, out);
            check_rules(&ps, &w, self, for_seeder, numwant, out, got);
            check_buckets(&ps);
        }
        peerset_fini(&ps);
    }
}

static void test_select_random_keeps_the_rules(void **state)
{
    (void)state;
    run_rules(select_random, 1);
}

static void test_select_seeders_first_keeps_the_rules(void **state)
{
    (void)state;
    run_rules(select_seeders_first, 2);
}

static void test_select_nearest_keeps_the_rules(void **state)
{
    (void)state;
    run_rules(select_nearest, 3);
}

static void test_select_same_network_keeps_the_rules(void **state)
{
    (void)state;
    run_rules(select_same_network, 4);
}

/* Every peer of the requester's network that fits comes first: the answer
 * holds min(numwant, same-network candidates) of them. */
static void run_same_network(uint32_t n, uint64_t seed)
{
    static struct world w;
    memset(&w, 0, sizeof(w));
    struct rng rng;
    rng_seed(&rng, seed);
    for (uint32_t id = 0; id < POOL; id++) {
        w.cells[id] = random_cell(&rng);
        w.nets[id] = random_net(&rng);
    }
    struct peerset ps;
    peerset_init(&ps, PEER_V4);
    for (uint32_t id = 0; id < n; id++) {
        world_put(&ps, &w, id, rng_below(&rng, 4) == 0);
    }
    uint8_t out[PEERSET_SELECT_MAX * PEER_COMPACT_V4];
    for (uint32_t round = 0; round < sized(400); round++) {
        uint32_t id = rng_below(&rng, n);
        if (rng_below(&rng, 3) == 0) {
            world_drop(&ps, &w, id);
        } else {
            world_put(&ps, &w, id, rng_below(&rng, 4) == 0);
        }
        uint32_t self = rng_below(&rng, n);
        if (!w.present[self] || w.nets[self] == 0) {
            continue;
        }
        bool for_seeder = w.seeder[self];
        uint32_t numwant = 1 + rng_below(&rng, 200);
        struct select_query q = {.ps = &ps, .rng = &rng, .self_key = key_of(self),
                                 .for_seeder = for_seeder, .numwant = numwant};
        uint32_t got = select_same_network(&q, out);
        check_rules(&ps, &w, self, for_seeder, numwant, out, got);
        uint32_t same = 0, want = 0;
        for (uint32_t i = 0; i < got; i++) {
            same += w.nets[id_of(out + (size_t)i * PEER_COMPACT_V4)] == w.nets[self];
        }
        for (uint32_t p = 0; p < POOL; p++) {
            want += w.present[p] && p != self && (!for_seeder || !w.seeder[p]) &&
                    w.nets[p] == w.nets[self];
        }
        assert_int_equal(same, numwant < want ? numwant : want);
    }
    if (n >= PEERSET_GEO_MIN) {
        assert_true(peerset_has_net(&ps));
    }
    check_buckets(&ps);
    peerset_fini(&ps);
}

static void test_select_same_network_comes_first(void **state)
{
    (void)state;
    run_same_network(100, 51);
    run_same_network(sized(3000), 52);
}

/* ---- seeders-first -------------------------------------------------------- */

static void test_select_seeders_first_rotates_through_every_seeder(void **state)
{
    (void)state;
    static struct world w;
    memset(&w, 0, sizeof(w));
    struct peerset ps;
    peerset_init(&ps, PEER_V4);
    const uint32_t nseed = 1000, nleech = 50, numwant = 30, rounds = 1000;
    for (uint32_t id = 0; id < nseed + nleech; id++) {
        world_put(&ps, &w, id, id < nseed);
    }
    struct rng rng;
    rng_seed(&rng, 9);
    static uint32_t handed[POOL];
    memset(handed, 0, sizeof(handed));
    uint8_t out[PEERSET_SELECT_MAX * PEER_COMPACT_V4];
    for (uint32_t r = 0; r < rounds; r++) {
        uint32_t self = nseed + rng_below(&rng, nleech);
        struct select_query q = {.ps = &ps, .rng = &rng, .self_key = key_of(self),
                                 .numwant = numwant};
        assert_int_equal(select_seeders_first(&q, out), numwant);
        for (uint32_t i = 0; i < numwant; i++) {
            uint32_t id = id_of(out + i * PEER_COMPACT_V4);
            assert_true(id < nseed); /* only seeders while there are enough */
            handed[id]++;
        }
    }
    /* 30 000 hand-outs over 1000 seeders: each exactly 30 times, where a
     * uniform sample would spread them from about 15 to 47. */
    for (uint32_t id = 0; id < nseed; id++) {
        assert_int_equal(handed[id], numwant * rounds / nseed);
    }
    peerset_fini(&ps);
}

static void test_select_seeders_first_fills_with_leechers(void **state)
{
    (void)state;
    static struct world w;
    memset(&w, 0, sizeof(w));
    struct peerset ps;
    peerset_init(&ps, PEER_V4);
    for (uint32_t id = 0; id < 100; id++) {
        world_put(&ps, &w, id, id < 5);
    }
    struct rng rng;
    rng_seed(&rng, 10);
    uint8_t out[PEERSET_SELECT_MAX * PEER_COMPACT_V4];
    struct select_query q = {.ps = &ps, .rng = &rng, .self_key = key_of(50), .numwant = 20};
    assert_int_equal(select_seeders_first(&q, out), 20);
    uint32_t seeders = 0;
    for (uint32_t i = 0; i < 20; i++) {
        seeders += id_of(out + i * PEER_COMPACT_V4) < 5;
    }
    assert_int_equal(seeders, 5);
    peerset_fini(&ps);
}

/* ---- nearest ---------------------------------------------------------------- */

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* The answer's distances within SELECT_NEAREST_RINGS are exactly the
 * smallest a brute-force scan of the candidates finds. */
static void check_nearest(const struct world *w, uint32_t self, bool for_seeder, uint32_t numwant,
                          const uint8_t *out, uint32_t got)
{
    static uint32_t ref[POOL], ans[PEERSET_SELECT_MAX];
    const uint32_t far = 1000;
    uint16_t center = w->cells[self];
    uint32_t nref = 0;
    for (uint32_t id = 0; id < POOL; id++) {
        if (w->present[id] && id != self && (!for_seeder || !w->seeder[id])) {
            uint32_t d = w->cells[id] == CELL_UNKNOWN ? far : cell_distance(center, w->cells[id]);
            ref[nref++] = d > SELECT_NEAREST_RINGS ? far : d;
        }
    }
    qsort(ref, nref, sizeof(ref[0]), cmp_u32);
    for (uint32_t i = 0; i < got; i++) {
        uint16_t c = w->cells[id_of(out + (size_t)i * PEER_COMPACT_V4)];
        uint32_t d = c == CELL_UNKNOWN ? far : cell_distance(center, c);
        ans[i] = d > SELECT_NEAREST_RINGS ? far : d;
    }
    qsort(ans, got, sizeof(ans[0]), cmp_u32);
    assert_int_equal(got, numwant < nref ? numwant : nref);
    for (uint32_t i = 0; i < got; i++) {
        assert_int_equal(ans[i], ref[i]);
    }
}

static void run_nearest_vs_brute_force(uint32_t n, uint64_t seed)
{
    static struct world w;
    memset(&w, 0, sizeof(w));
    struct rng rng;
    rng_seed(&rng, seed);
    for (uint32_t id = 0; id < POOL; id++) {
        w.cells[id] = random_cell(&rng);
    }
    struct peerset ps;
    peerset_init(&ps, PEER_V4);
    for (uint32_t id = 0; id < n; id++) {
        world_put(&ps, &w, id, rng_below(&rng, 4) == 0);
    }
    uint8_t out[PEERSET_SELECT_MAX * PEER_COMPACT_V4];
    for (uint32_t round = 0; round < sized(400); round++) {
        uint32_t id = rng_below(&rng, n);
        if (rng_below(&rng, 3) == 0) {
            world_drop(&ps, &w, id);
        } else {
            world_put(&ps, &w, id, rng_below(&rng, 4) == 0);
        }
        uint32_t self = rng_below(&rng, n);
        if (!w.present[self] || w.cells[self] == CELL_UNKNOWN) {
            continue;
        }
        bool for_seeder = w.seeder[self];
        uint32_t numwant = 1 + rng_below(&rng, 100);
        struct select_query q = {.ps = &ps, .rng = &rng, .self_key = key_of(self),
                                 .for_seeder = for_seeder, .numwant = numwant};
        uint32_t got = select_nearest(&q, out);
        check_nearest(&w, self, for_seeder, numwant, out, got);
    }
    if (n >= PEERSET_GEO_MIN) {
        assert_true(peerset_has_geo(&ps));
        check_buckets(&ps);
    }
    peerset_fini(&ps);
}

static void test_select_nearest_matches_brute_force_small_scanned(void **state)
{
    (void)state;
    run_nearest_vs_brute_force(40, 21);
}

static void test_select_nearest_matches_brute_force_bucketed(void **state)
{
    (void)state;
    run_nearest_vs_brute_force(600, 22);
    run_nearest_vs_brute_force(sized(5000), 23);
}

static void test_select_nearest_unknown_requester_falls_back_to_random(void **state)
{
    (void)state;
    static struct world w;
    memset(&w, 0, sizeof(w));
    struct peerset ps;
    peerset_init(&ps, PEER_V4);
    uint16_t paris = cell_of(48.8, 2.3);
    for (uint32_t id = 0; id < 1000; id++) {
        w.cells[id] = id < 500 ? paris : CELL_UNKNOWN;
        world_put(&ps, &w, id, false);
    }
    struct rng rng;
    rng_seed(&rng, 31);
    uint8_t out[PEERSET_SELECT_MAX * PEER_COMPACT_V4];
    /* A requester with no location gets a random sample: both halves. */
    uint32_t located = 0;
    for (uint32_t r = 0; r < 100; r++) {
        struct select_query q = {.ps = &ps, .rng = &rng, .self_key = key_of(700), .numwant = 50};
        assert_int_equal(select_nearest(&q, out), 50);
        for (uint32_t i = 0; i < 50; i++) {
            located += id_of(out + i * PEER_COMPACT_V4) < 500;
        }
    }
    assert_true(located > 2000 && located < 3000);
    /* A located requester with too few peers near: the near ones, then
     * random ones from the rest. */
    for (uint32_t id = 0; id < 490; id++) {
        world_drop(&ps, &w, id);
    }
    struct select_query q = {.ps = &ps, .rng = &rng, .self_key = key_of(495), .numwant = 50};
    assert_int_equal(select_nearest(&q, out), 50);
    check_rules(&ps, &w, 495, false, 50, out, 50);
    uint32_t near = 0;
    for (uint32_t i = 0; i < 50; i++) {
        near += id_of(out + i * PEER_COMPACT_V4) < 500;
    }
    assert_int_equal(near, 9);
    peerset_fini(&ps);
}

static void test_select_buckets_follow_churn_and_expiry(void **state)
{
    (void)state;
    static struct world w;
    memset(&w, 0, sizeof(w));
    struct rng rng;
    rng_seed(&rng, 41);
    for (uint32_t id = 0; id < POOL; id++) {
        w.cells[id] = random_cell(&rng);
    }
    struct peerset ps;
    peerset_init(&ps, PEER_V4);
    for (uint32_t id = 0; id < 200; id++) {
        world_put(&ps, &w, id, id % 3 == 0);
    }
    assert_int_equal(peerset_geo_enable(&ps), 0);
    check_buckets(&ps);
    for (uint32_t op = 0; op < sized(20000); op++) {
        uint32_t id = rng_below(&rng, 400);
        if (rng_below(&rng, 2) == 0) {
            world_put(&ps, &w, id, rng_below(&rng, 2) == 0);
        } else {
            world_drop(&ps, &w, id);
        }
        check_buckets(&ps);
    }
    /* Expiry of every peer drops the buckets with the memory. */
    uint32_t before = peerset_count(&ps);
    assert_int_equal(peerset_expire(&ps, 101), before);
    assert_false(peerset_has_geo(&ps));
    peerset_fini(&ps);
}

/* ---- registry ----------------------------------------------------------------- */

static void test_select_registry_and_open(void **state)
{
    (void)state;
    assert_int_equal(select_kind_parse("random"), SELECT_RANDOM);
    assert_int_equal(select_kind_parse("seeders-first"), SELECT_SEEDERS_FIRST);
    assert_int_equal(select_kind_parse("nearest"), SELECT_NEAREST);
    assert_int_equal(select_kind_parse(""), SELECT_DEFAULT);
    assert_int_equal(select_kind_parse("closest"), -1);
    assert_string_equal(select_kind_name(SELECT_NEAREST), "nearest");
    assert_null(select_find("default"));
    assert_string_equal(select_find("seeders-first")->name, "seeders-first");

    struct selector s;
    struct mk_errbuf eb = {0};
    struct select_env env = {0};
    assert_int_equal(selector_open(&s, select_find("nearest"), &env, &eb), MK_EINVAL);
    assert_false(selector_is_open(&s));
    assert_non_null(strstr(eb.msg, "tracker.geoip_city_db"));

    struct geo *g;
    assert_int_equal(selector_open(&s, select_find("same-network"), &env, &eb), MK_EINVAL);
    assert_non_null(strstr(eb.msg, "tracker.geoip_asn_db"));
    assert_int_equal(geo_open(&g, MIKA_TEST_MMDB_DIR "/city.mmdb", NULL, &eb), 0);
    env.geo = g;
    assert_int_equal(selector_open(&s, select_find("same-network"), &env, &eb), MK_EINVAL);
    assert_int_equal(selector_open(&s, select_find("nearest"), &env, &eb), 0);
    assert_true(selector_is_open(&s));
    selector_close(&s);
    assert_int_equal(selector_open(&s, select_find("random"), &env, &eb), 0);
    struct peerset ps;
    peerset_init(&ps, PEER_V4);
    struct rng rng;
    rng_seed(&rng, 1);
    uint8_t out[8];
    struct select_query q = {.ps = &ps, .rng = &rng, .numwant = 5000};
    assert_int_equal(selector_pick(&s, &q, out), 0);
    selector_close(&s);
    selector_close(&s);
    geo_free(g);
    assert_int_equal(geo_open(&g, NULL, MIKA_TEST_MMDB_DIR "/asn.mmdb", &eb), 0);
    env.geo = g;
    assert_int_equal(selector_open(&s, select_find("same-network"), &env, &eb), 0);
    selector_close(&s);
    geo_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_select_random_keeps_the_rules),
        cmocka_unit_test(test_select_seeders_first_keeps_the_rules),
        cmocka_unit_test(test_select_nearest_keeps_the_rules),
        cmocka_unit_test(test_select_same_network_keeps_the_rules),
        cmocka_unit_test(test_select_same_network_comes_first),
        cmocka_unit_test(test_select_seeders_first_rotates_through_every_seeder),
        cmocka_unit_test(test_select_seeders_first_fills_with_leechers),
        cmocka_unit_test(test_select_nearest_matches_brute_force_small_scanned),
        cmocka_unit_test(test_select_nearest_matches_brute_force_bucketed),
        cmocka_unit_test(test_select_nearest_unknown_requester_falls_back_to_random),
        cmocka_unit_test(test_select_buckets_follow_churn_and_expiry),
        cmocka_unit_test(test_select_registry_and_open),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
