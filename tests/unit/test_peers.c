/* tests/unit/test_peers.c: the peer set against a reference model, selection
 * rules, uniformity (chi-square) and O(numwant) cost, expiry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <math.h>

#include "swarm/peers.h"
#include "util/err.h"
#include "util/rng.h"

/* ---- helpers ---------------------------------------------------------- */

/* The address of peer number id: its id in the first 4 bytes, so an answer
 * can be mapped back to the peer; the rest are filler tied to the id. */
/* Under valgrind (scripts/valgrind.sh sets MIKA_TEST_LIGHT) the statistical
 * and million-peer tests run a tenth of their sizes: memcheck is 50 times
 * slower, and what it looks for (bad reads, leaks) shows at any size. */
static uint32_t sized(uint32_t n)
{
    const char *light = getenv("MIKA_TEST_LIGHT");
    return light && *light && strcmp(light, "0") != 0 ? n / 10 : n;
}

/* out holds PEER_COMPACT_MAX bytes and a stride is at most that (6 or 18):
 * the loop is bounded by both, so it never writes past out whatever stride
 * a caller passes (and GCC at -O3 can see that it does not). */
static void test_addr_of(uint32_t id, uint8_t stride, uint8_t *out)
{
    assert_true(stride <= PEER_COMPACT_MAX);
    memset(out, 0, PEER_COMPACT_MAX);
    out[0] = (uint8_t)(id >> 24);
    out[1] = (uint8_t)(id >> 16);
    out[2] = (uint8_t)(id >> 8);
    out[3] = (uint8_t)id;
    for (uint8_t i = 4; i < stride && i < PEER_COMPACT_MAX; i++) {
        out[i] = (uint8_t)(id * 31 + i);
    }
}

static uint32_t test_id_of(const uint8_t *addr)
{
    return (uint32_t)addr[0] << 24 | (uint32_t)addr[1] << 16 | (uint32_t)addr[2] << 8 | addr[3];
}

/* Keys are normally random; a clustered key shares its low bits (the home
 * slot) with many others, to exercise long probe runs and backward shifts. */
static uint64_t test_key_of(uint32_t id, bool clustered)
{
    uint64_t x = (uint64_t)id * 0x9e3779b97f4a7c15ull + 0x1234567ull;
    x ^= x >> 29;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 32;
    if (clustered) {
        x = (x & ~0xffull) | (id % 3);
    }
    return x;
}

static struct peer_report test_report(uint32_t id, bool clustered, uint8_t stride, bool seeder,
                                      bool partial, uint32_t now)
{
    struct peer_report r;
    memset(&r, 0, sizeof(r));
    r.key = test_key_of(id, clustered);
    r.user_id = id;
    test_addr_of(id, stride, r.addr);
    r.uploaded = (uint64_t)id * 1000 + now;
    r.downloaded = (uint64_t)id * 7 + now;
    r.seeder = seeder;
    r.partial = partial;
    r.now = now;
    return r;
}

/* ---- the reference model ---------------------------------------------- */

struct model_peer {
    bool present;
    bool seeder;
    bool partial;
    uint64_t uploaded;
    uint64_t downloaded;
    uint32_t last_seen;
};

#define MODEL_POOL 600

struct model {
    struct model_peer p[MODEL_POOL];
    bool clustered;
};

/* Checks every invariant of ps against the model by a full recount. */
static void model_check(const struct peerset *ps, const struct model *m)
{
    uint32_t n = 0, nleech = 0, npartial = 0;
    for (uint32_t id = 0; id < MODEL_POOL; id++) {
        if (m->p[id].present) {
            n++;
            if (!m->p[id].seeder) {
                nleech++;
                npartial += m->p[id].partial;
            }
        }
    }
    assert_int_equal(ps->n, n);
    assert_int_equal(ps->nleech, nleech);
    assert_int_equal(ps->npartial, npartial);
    assert_true(ps->cap >= ps->n);
    assert_true(ps->n == 0 || (uint64_t)ps->index_cap >= 2ull * ps->n);
    assert_int_equal(ps->index_cap & (ps->index_cap - 1), 0);

    static bool seen_id[MODEL_POOL];
    memset(seen_id, 0, sizeof(seen_id));
    for (uint32_t i = 0; i < ps->n; i++) {
        const struct peer *p = &ps->peers[i];
        uint32_t id = p->user_id;
        assert_true(id < MODEL_POOL);
        assert_false(seen_id[id]);
        seen_id[id] = true;
        const struct model_peer *mp = &m->p[id];
        assert_true(mp->present);
        assert_int_equal(p->key, test_key_of(id, m->clustered));
        assert_int_equal(i >= ps->nleech, mp->seeder);
        assert_int_equal(p->partial, mp->seeder ? 0 : mp->partial);
        assert_int_equal(p->uploaded, mp->uploaded);
        assert_int_equal(p->downloaded, mp->downloaded);
        assert_int_equal(p->last_seen, mp->last_seen);
        uint8_t want[PEER_COMPACT_MAX];
        test_addr_of(id, ps->stride, want);
        assert_memory_equal(ps->addrs + (size_t)i * ps->stride, want, ps->stride);
    }

    /* Every index entry points at a live position, each position once, and
     * is reachable from its key's home slot without crossing an empty slot. */
    static uint8_t seen_pos[MODEL_POOL];
    memset(seen_pos, 0, sizeof(seen_pos));
    uint32_t used = 0;
    for (uint32_t s = 0; s < ps->index_cap; s++) {
        uint32_t v = ps->index[s];
        if (v == 0) {
            continue;
        }
        used++;
        assert_true(v - 1 < ps->n);
        assert_int_equal(seen_pos[v - 1], 0);
        seen_pos[v - 1] = 1;
        uint32_t mask = ps->index_cap - 1;
        for (uint32_t j = (uint32_t)ps->peers[v - 1].key & mask; j != s; j = (j + 1) & mask) {
            assert_int_not_equal(ps->index[j], 0);
        }
    }
    assert_int_equal(used, ps->n);
}

static void model_upsert(struct peerset *ps, struct model *m, uint32_t id, bool seeder,
                         bool partial, uint32_t now)
{
    struct peer_report r = test_report(id, m->clustered, ps->stride, seeder, partial, now);
    struct peer_prev prev;
    assert_int_equal(peerset_upsert(ps, &r, &prev), 0);
    struct model_peer *mp = &m->p[id];
    assert_int_equal(prev.existed, mp->present);
    if (mp->present) {
        assert_int_equal(prev.was_seeder, mp->seeder);
        assert_int_equal(prev.was_partial, !mp->seeder && mp->partial);
        assert_int_equal(prev.uploaded, mp->uploaded);
        assert_int_equal(prev.downloaded, mp->downloaded);
        assert_int_equal(prev.last_seen, mp->last_seen);
        assert_int_equal(prev.user_id, id);
    }
    mp->present = true;
    mp->seeder = seeder;
    mp->partial = !seeder && partial;
    mp->uploaded = r.uploaded;
    mp->downloaded = r.downloaded;
    mp->last_seen = now;
}

static void model_remove(struct peerset *ps, struct model *m, uint32_t id)
{
    struct peer_prev prev;
    bool was = m->p[id].present;
    assert_int_equal(peerset_remove(ps, test_key_of(id, m->clustered), &prev), was);
    assert_int_equal(prev.existed, was);
    if (was) {
        assert_int_equal(prev.was_seeder, m->p[id].seeder);
        assert_int_equal(prev.uploaded, m->p[id].uploaded);
    }
    m->p[id].present = false;
}

static void model_expire(struct peerset *ps, struct model *m, uint32_t cutoff)
{
    uint32_t want = 0;
    for (uint32_t id = 0; id < MODEL_POOL; id++) {
        if (m->p[id].present && m->p[id].last_seen < cutoff) {
            m->p[id].present = false;
            want++;
        }
    }
    assert_int_equal(peerset_expire(ps, cutoff), want);
}

static void run_model(enum peer_family fam, bool clustered, uint64_t seed)
{
    static struct model m;
    memset(&m, 0, sizeof(m));
    m.clustered = clustered;
    struct peerset ps;
    peerset_init(&ps, fam);
    struct rng rng;
    rng_seed(&rng, seed);
    uint32_t now = 1000;
    /* Phases bias toward growth, then toward shrinking, so the set passes
     * through growth and shrink thresholds many times. */
    for (uint32_t op = 0; op < sized(100000); op++) {
        bool growing = (op / 5000) % 2 == 0;
        uint32_t id = rng_below(&rng, MODEL_POOL);
        uint32_t dice = rng_below(&rng, 100);
        if (op % 10 == 0) {
            now++;
        }
        if (dice < (growing ? 70u : 35u)) {
            uint32_t kind = rng_below(&rng, 3); /* leecher, partial leecher, seeder */
            model_upsert(&ps, &m, id, kind == 2, kind == 1, now);
        } else if (dice < 99) {
            model_remove(&ps, &m, id);
        } else {
            model_expire(&ps, &m, now - rng_below(&rng, 40));
        }
        model_check(&ps, &m);
    }
    peerset_fini(&ps);
}

static void test_peers_random_ops_match_model_v4(void **state)
{
    run_model(PEER_V4, false, 1);
}

static void test_peers_random_ops_match_model_v6(void **state)
{
    run_model(PEER_V6, false, 2);
}

static void test_peers_random_ops_match_model_with_colliding_keys(void **state)
{
    run_model(PEER_V4, true, 3);
}

/* ---- targeted behaviour ----------------------------------------------- */

static void test_peers_leecher_becoming_seeder_moves_partition(void **state)
{
    struct peerset ps;
    peerset_init(&ps, PEER_V4);
    for (uint32_t id = 0; id < 6; id++) {
        struct peer_report r = test_report(id, false, 6, id >= 3, false, 10);
        assert_int_equal(peerset_upsert(&ps, &r, NULL), 0);
    }
    assert_int_equal(peerset_leechers(&ps), 3);
    assert_int_equal(peerset_seeders(&ps), 3);

    struct peer_report r = test_report(0, false, 6, true, false, 11);
    struct peer_prev prev;
    assert_int_equal(peerset_upsert(&ps, &r, &prev), 0);
    assert_true(prev.existed);
    assert_false(prev.was_seeder);
    assert_int_equal(peerset_leechers(&ps), 2);
    assert_int_equal(peerset_seeders(&ps), 4);
    assert_int_equal(peerset_count(&ps), 6);
    for (uint32_t i = 0; i < ps.n; i++) {
        if (ps.peers[i].user_id == 0) {
            assert_true(i >= ps.nleech);
            assert_int_equal(test_id_of(ps.addrs + i * 6), 0);
        }
    }

    r = test_report(4, false, 6, false, false, 12);
    assert_int_equal(peerset_upsert(&ps, &r, &prev), 0);
    assert_true(prev.was_seeder);
    assert_int_equal(peerset_leechers(&ps), 3);
    assert_int_equal(peerset_seeders(&ps), 3);
    for (uint32_t i = 0; i < ps.n; i++) {
        assert_int_equal(test_id_of(ps.addrs + i * 6), ps.peers[i].user_id);
        bool seeder = ps.peers[i].user_id == 0 || ps.peers[i].user_id == 3 ||
                      ps.peers[i].user_id == 5;
        assert_int_equal(i >= ps.nleech, seeder);
    }
    peerset_fini(&ps);
}

static void test_peers_partial_is_counted_for_leechers_only(void **state)
{
    struct peerset ps;
    peerset_init(&ps, PEER_V4);
    struct peer_report r = test_report(1, false, 6, false, true, 10);
    assert_int_equal(peerset_upsert(&ps, &r, NULL), 0);
    assert_int_equal(ps.npartial, 1);
    assert_int_equal(peerset_downloaders(&ps), 0);

    /* A seeder flagged partial is just a seeder. */
    r = test_report(2, false, 6, true, true, 10);
    assert_int_equal(peerset_upsert(&ps, &r, NULL), 0);
    assert_int_equal(ps.npartial, 1);

    /* The partial leecher completes: no longer partial. */
    struct peer_prev prev;
    r = test_report(1, false, 6, true, false, 11);
    assert_int_equal(peerset_upsert(&ps, &r, &prev), 0);
    assert_true(prev.was_partial);
    assert_int_equal(ps.npartial, 0);

    /* Back to a partial leecher, then removed. */
    r = test_report(1, false, 6, false, true, 12);
    assert_int_equal(peerset_upsert(&ps, &r, NULL), 0);
    assert_int_equal(ps.npartial, 1);
    assert_true(peerset_remove(&ps, test_key_of(1, false), &prev));
    assert_true(prev.was_partial);
    assert_int_equal(ps.npartial, 0);
    assert_int_equal(peerset_count(&ps), 1);
    peerset_fini(&ps);
}

static void test_peers_update_in_place_reports_previous_counters(void **state)
{
    struct peerset ps;
    peerset_init(&ps, PEER_V6);
    struct peer_report r = test_report(9, false, 18, false, false, 100);
    struct peer_prev prev;
    assert_int_equal(peerset_upsert(&ps, &r, &prev), 0);
    assert_false(prev.existed);
    r.uploaded = 5555;
    r.downloaded = 6666;
    r.now = 130;
    r.addr[17] = 0xEE;
    assert_int_equal(peerset_upsert(&ps, &r, &prev), 0);
    assert_true(prev.existed);
    assert_int_equal(prev.uploaded, 9 * 1000 + 100);
    assert_int_equal(prev.downloaded, 9 * 7 + 100);
    assert_int_equal(prev.last_seen, 100);
    assert_int_equal(peerset_count(&ps), 1);
    assert_int_equal(ps.peers[0].uploaded, 5555);
    assert_int_equal(ps.peers[0].last_seen, 130);
    assert_int_equal(ps.addrs[17], 0xEE);
    peerset_fini(&ps);
}

static void test_peers_remove_absent_returns_false(void **state)
{
    struct peerset ps;
    peerset_init(&ps, PEER_V4);
    struct peer_prev prev = {.existed = true};
    assert_false(peerset_remove(&ps, 42, &prev));
    assert_false(prev.existed);
    struct peer_report r = test_report(1, false, 6, false, false, 1);
    assert_int_equal(peerset_upsert(&ps, &r, NULL), 0);
    assert_false(peerset_remove(&ps, 42, NULL));
    assert_int_equal(peerset_count(&ps), 1);
    peerset_fini(&ps);
}

/* ---- selection -------------------------------------------------------- */

/* n peers numbered 0..n-1; those with id % seed_every == 0 are seeders
 * (seed_every 0: none). */
static void fill_set(struct peerset *ps, uint32_t n, uint32_t seed_every)
{
    for (uint32_t id = 0; id < n; id++) {
        bool seeder = seed_every && id % seed_every == 0;
        struct peer_report r = test_report(id, false, ps->stride, seeder, false, 1);
        assert_int_equal(peerset_upsert(ps, &r, NULL), 0);
    }
}

static void check_selection(const struct peerset *ps, struct rng *rng, uint32_t self,
                            bool for_seeder, uint32_t numwant, uint32_t seed_every,
                            uint32_t nall)
{
    static uint8_t out[PEERSET_SELECT_MAX * PEER_COMPACT_MAX];
    static uint8_t hit[4096];
    uint32_t candidates = 0;
    for (uint32_t id = 0; id < nall; id++) {
        bool seeder = seed_every && id % seed_every == 0;
        candidates += id != self && !(for_seeder && seeder);
    }
    uint32_t want = numwant < candidates ? numwant : candidates;
    if (want > PEERSET_SELECT_MAX) {
        want = PEERSET_SELECT_MAX;
    }
    uint32_t got = peerset_select(ps, rng, test_key_of(self, false), for_seeder, numwant, out);
    assert_int_equal(got, want);
    memset(hit, 0, sizeof(hit));
    for (uint32_t i = 0; i < got; i++) {
        uint32_t id = test_id_of(out + (size_t)i * ps->stride);
        assert_true(id < nall);
        assert_int_not_equal(id, self);
        assert_false(hit[id]);
        hit[id] = 1;
        if (for_seeder) {
            assert_false(seed_every && id % seed_every == 0);
        }
        uint8_t addr[PEER_COMPACT_MAX];
        test_addr_of(id, ps->stride, addr);
        assert_memory_equal(out + (size_t)i * ps->stride, addr, ps->stride);
    }
}

static void test_peers_select_obeys_the_rules(void **state)
{
    struct rng rng;
    rng_seed(&rng, 5);
    const uint32_t sizes[] = {0, 1, 2, 5, 30, 200, 3000};
    const uint32_t wants[] = {0, 1, 3, 29, 50, 199, 200, 5000};
    for (int fam = 0; fam < 2; fam++) {
        for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
            struct peerset ps;
            peerset_init(&ps, fam ? PEER_V6 : PEER_V4);
            fill_set(&ps, sizes[si], 3);
            for (size_t wi = 0; wi < sizeof(wants) / sizeof(wants[0]); wi++) {
                for (int fs = 0; fs < 2; fs++) {
                    /* self: a leecher, a seeder, and someone not in the set. */
                    const uint32_t selves[] = {1, 0, 99999};
                    for (int k = 0; k < 3; k++) {
                        check_selection(&ps, &rng, selves[k], fs, wants[wi], 3, sizes[si]);
                    }
                }
            }
            peerset_fini(&ps);
        }
    }
}

/* The 0.999 quantile of chi-square with df degrees of freedom, by the
 * Wilson-Hilferty approximation; z is the standard normal 0.999 quantile. */
static double chi2_crit_999(double df)
{
    const double z = 3.090232;
    double a = 2.0 / (9.0 * df);
    double c = 1.0 - a + z * sqrt(a);
    return df * c * c * c;
}

static void check_uniform(uint32_t nall, uint32_t seed_every, uint32_t self, bool for_seeder,
                          uint32_t numwant, uint32_t draws)
{
    struct peerset ps;
    peerset_init(&ps, PEER_V4);
    fill_set(&ps, nall, seed_every);
    struct rng rng;
    rng_seed(&rng, 77 + nall + self);
    uint32_t count[256] = {0};
    uint8_t out[PEERSET_SELECT_MAX * PEER_COMPACT_V4];
    for (uint32_t d = 0; d < draws; d++) {
        uint32_t got = peerset_select(&ps, &rng, test_key_of(self, false), for_seeder, numwant,
                                      out);
        assert_int_equal(got, numwant);
        for (uint32_t i = 0; i < got; i++) {
            count[test_id_of(out + i * 6)]++;
        }
    }
    uint32_t cells = 0;
    for (uint32_t id = 0; id < nall; id++) {
        bool seeder = seed_every && id % seed_every == 0;
        if (id != self && !(for_seeder && seeder)) {
            cells++;
        } else {
            assert_int_equal(count[id], 0);
        }
    }
    double expected = (double)draws * numwant / cells;
    double chi2 = 0;
    for (uint32_t id = 0; id < nall; id++) {
        bool seeder = seed_every && id % seed_every == 0;
        if (id != self && !(for_seeder && seeder)) {
            assert_true(count[id] > 0);
            double dv = count[id] - expected;
            chi2 += dv * dv / expected;
        }
    }
    double crit = chi2_crit_999(cells - 1);
    print_message("chi2 = %.2f over %u cells, 0.999 critical %.2f\n", chi2, cells, crit);
    assert_true(chi2 < crit);
    peerset_fini(&ps);
}

static void test_peers_select_is_uniform_chi_square(void **state)
{
    /* 50 candidates: 51 leechers minus self in the middle of the array. */
    check_uniform(51, 0, 25, false, 5, sized(200000));
    /* 50 candidates out of a mixed swarm: every peer but self. */
    check_uniform(51, 4, 12, false, 5, sized(200000));
}

static void test_peers_select_for_seeder_is_uniform_over_leechers(void **state)
{
    /* 60 peers, every 4th a seeder (15), self a leecher: 44 candidates. */
    check_uniform(60, 4, 7, true, 5, sized(200000));
}

/* How many rng_next calls took before to after: step a copy until it matches. */
static uint32_t rng_distance(const struct rng *before, const struct rng *after)
{
    struct rng r = *before;
    for (uint32_t steps = 0; steps < 1000000; steps++) {
        if (memcmp(&r, after, sizeof(r)) == 0) {
            return steps;
        }
        rng_next(&r);
    }
    return UINT32_MAX;
}

static void test_peers_select_costs_numwant_draws_whatever_the_size(void **state)
{
    const uint32_t numwant = 50;
    uint8_t out[PEERSET_SELECT_MAX * PEER_COMPACT_V4];
    struct peerset small, big;
    peerset_init(&small, PEER_V4);
    peerset_init(&big, PEER_V4);
    fill_set(&small, 200, 2); /* 100 leechers, one of them self */
    fill_set(&big, sized(1000000), 2);
    struct rng rng;
    rng_seed(&rng, 11);
    for (int trial = 0; trial < 20; trial++) {
        struct peerset *sets[2] = {&small, &big};
        uint32_t steps[2];
        for (int k = 0; k < 2; k++) {
            struct rng before = rng;
            assert_int_equal(peerset_select(sets[k], &rng, test_key_of(3, false), trial & 1,
                                            numwant, out),
                             numwant);
            steps[k] = rng_distance(&before, &rng);
            /* One draw per pick; a rejection in rng_below is a rare extra. */
            assert_true(steps[k] >= numwant && steps[k] <= numwant + 3);
        }
        assert_true(steps[0] <= steps[1] + 3 && steps[1] <= steps[0] + 3);
    }
    peerset_fini(&small);
    peerset_fini(&big);
}

/* ---- expiry ----------------------------------------------------------- */

static void test_peers_expire_removes_exactly_the_stale(void **state)
{
    struct peerset ps;
    peerset_init(&ps, PEER_V4);
    /* last_seen 100..199; every 3rd a seeder, every 5th (from 1) partial. */
    for (uint32_t id = 0; id < 1000; id++) {
        struct peer_report r = test_report(id, false, 6, id % 3 == 0, id % 5 == 1, 100 + id % 100);
        assert_int_equal(peerset_upsert(&ps, &r, NULL), 0);
    }
    assert_int_equal(peerset_expire(&ps, 100), 0);
    assert_int_equal(peerset_expire(&ps, 150), 500);
    assert_int_equal(peerset_count(&ps), 500);

    uint32_t want_leech = 0, want_partial = 0;
    for (uint32_t id = 0; id < 1000; id++) {
        if (id % 100 >= 50 && id % 3 != 0) {
            want_leech++;
            want_partial += id % 5 == 1;
        }
    }
    assert_int_equal(ps.nleech, want_leech);
    assert_int_equal(ps.npartial, want_partial);
    for (uint32_t i = 0; i < ps.n; i++) {
        uint32_t id = ps.peers[i].user_id;
        assert_true(id % 100 >= 50);
        assert_int_equal(test_id_of(ps.addrs + i * 6), id);
        assert_int_equal(i >= ps.nleech, id % 3 == 0);
    }
    /* The index agrees: an upsert of each id says whether it survived. */
    for (uint32_t id = 0; id < 1000; id++) {
        struct peer_prev prev;
        struct peer_report r = test_report(id, false, 6, id % 3 == 0, false, 300);
        assert_int_equal(peerset_upsert(&ps, &r, &prev), 0);
        assert_int_equal(prev.existed, id % 100 >= 50);
    }
    assert_int_equal(peerset_count(&ps), 1000);
    assert_int_equal(peerset_expire(&ps, 300), 0);
    peerset_fini(&ps);
}

static void test_peers_expire_counts_and_frees_when_empty(void **state)
{
    struct peerset ps;
    peerset_init(&ps, PEER_V4);
    for (uint32_t id = 0; id < 300; id++) {
        struct peer_report r = test_report(id, false, 6, id % 2, id % 4 == 0, 50 + id % 10);
        assert_int_equal(peerset_upsert(&ps, &r, NULL), 0);
    }
    uint32_t leech_before = ps.nleech;
    uint32_t partial_before = ps.npartial;
    assert_int_equal(leech_before, 150);
    assert_int_equal(partial_before, 75);
    /* Ids with id % 10 < 5 have last_seen 50..54. */
    assert_int_equal(peerset_expire(&ps, 55), 150);
    /* Leechers are the even ids; those ending in 6 or 8 survive. */
    assert_int_equal(ps.nleech, 60);
    /* id % 4 == 0 and id % 10 >= 5: even ids ending 6 or 8 -> id % 20 in {8, 16}. */
    assert_int_equal(ps.npartial, 30);
    assert_int_equal(peerset_expire(&ps, 60), 150);
    assert_int_equal(peerset_count(&ps), 0);
    assert_int_equal(ps.nleech, 0);
    assert_int_equal(ps.npartial, 0);
    assert_null(ps.peers);
    assert_null(ps.index);
    assert_int_equal(ps.stride, PEER_COMPACT_V4);
    /* Usable again afterwards. */
    struct peer_report r = test_report(1, false, 6, false, false, 70);
    assert_int_equal(peerset_upsert(&ps, &r, NULL), 0);
    assert_int_equal(peerset_count(&ps), 1);
    peerset_fini(&ps);
}

static void test_peers_expire_shrinks_a_mostly_empty_set(void **state)
{
    struct peerset ps;
    peerset_init(&ps, PEER_V4);
    for (uint32_t id = 0; id < 4096; id++) {
        struct peer_report r = test_report(id, false, 6, false, false, id < 10 ? 900 : 1);
        assert_int_equal(peerset_upsert(&ps, &r, NULL), 0);
    }
    assert_int_equal(ps.cap, 4096);
    assert_int_equal(peerset_expire(&ps, 2), 4086);
    assert_true(ps.cap >= 10 && ps.cap <= 64);
    assert_true(ps.index_cap >= 20 && ps.index_cap <= 128);
    for (uint32_t id = 0; id < 10; id++) {
        struct peer_prev prev;
        struct peer_report r = test_report(id, false, 6, false, false, 901);
        assert_int_equal(peerset_upsert(&ps, &r, &prev), 0);
        assert_true(prev.existed);
    }
    assert_int_equal(peerset_count(&ps), 10);
    peerset_fini(&ps);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_peers_random_ops_match_model_v4),
        cmocka_unit_test(test_peers_random_ops_match_model_v6),
        cmocka_unit_test(test_peers_random_ops_match_model_with_colliding_keys),
        cmocka_unit_test(test_peers_leecher_becoming_seeder_moves_partition),
        cmocka_unit_test(test_peers_partial_is_counted_for_leechers_only),
        cmocka_unit_test(test_peers_update_in_place_reports_previous_counters),
        cmocka_unit_test(test_peers_remove_absent_returns_false),
        cmocka_unit_test(test_peers_select_obeys_the_rules),
        cmocka_unit_test(test_peers_select_is_uniform_chi_square),
        cmocka_unit_test(test_peers_select_for_seeder_is_uniform_over_leechers),
        cmocka_unit_test(test_peers_select_costs_numwant_draws_whatever_the_size),
        cmocka_unit_test(test_peers_expire_removes_exactly_the_stale),
        cmocka_unit_test(test_peers_expire_counts_and_frees_when_empty),
        cmocka_unit_test(test_peers_expire_shrinks_a_mostly_empty_set),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
