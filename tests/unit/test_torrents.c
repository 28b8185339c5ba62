/* tests/unit/test_torrents.c: the sharded torrent table: put/lock, updates
 * that keep swarms, sweep, snatches, reaping every shard, totals, threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>

#include "swarm/torrents.h"
#include "util/err.h"

static void hash_of(uint32_t n, uint8_t out[20])
{
    memset(out, 0xA5, 20);
    out[0] = (uint8_t)(n >> 24);
    out[1] = (uint8_t)(n >> 16);
    out[2] = (uint8_t)(n >> 8);
    out[3] = (uint8_t)n;
}

static struct torrent_row row_of(uint32_t n)
{
    struct torrent_row r;
    memset(&r, 0, sizeof(r));
    r.id = n + 1000;
    hash_of(n, r.info_hash);
    r.enabled = true;
    return r;
}

static struct peer_report report_of(uint32_t id, bool seeder, uint32_t now)
{
    struct peer_report r;
    memset(&r, 0, sizeof(r));
    r.key = (uint64_t)id * 0x9e3779b97f4a7c15ull + 17;
    r.user_id = id;
    r.addr[0] = (uint8_t)id;
    r.seeder = seeder;
    r.now = now;
    return r;
}

static void test_torrents_put_then_lock_finds_it(void **state)
{
    struct torrents *t = torrents_new(0);
    assert_non_null(t);
    assert_int_equal(torrents_nshards(t), 256);
    struct torrent_row r = row_of(1);
    r.snatches = 7;
    assert_int_equal(torrents_put(t, &r, 1), 0);

    struct torrent_shard *shard = NULL;
    struct torrent *tor = torrents_lock(t, r.info_hash, &shard);
    assert_non_null(shard);
    assert_non_null(tor);
    assert_memory_equal(tor->info_hash, r.info_hash, 20);
    assert_int_equal(tor->id, 1001);
    assert_true(tor->enabled);
    assert_false(tor->deleted);
    assert_null(tor->reason);
    assert_int_equal(tor->snatches, 7);
    assert_int_equal(tor->generation, 1);
    assert_int_equal(peerset_count(&tor->v4), 0);
    assert_int_equal(tor->v4.stride, PEER_COMPACT_V4);
    assert_int_equal(tor->v6.stride, PEER_COMPACT_V6);
    torrents_unlock(shard);

    /* Unknown: NULL, but the shard is locked and must be unlocked. */
    uint8_t other[20];
    hash_of(2, other);
    shard = NULL;
    assert_null(torrents_lock(t, other, &shard));
    assert_non_null(shard);
    torrents_unlock(shard);
    torrents_free(t);
}

static void test_torrents_nshards_rounds_up_to_power_of_two(void **state)
{
    const uint32_t in[] = {1, 3, 4, 5, 1000, 1u << 30};
    const uint32_t want[] = {1, 4, 4, 8, 1024, TORRENTS_MAX_SHARDS};
    for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
        struct torrents *t = torrents_new(in[i]);
        assert_non_null(t);
        assert_int_equal(torrents_nshards(t), want[i]);
        torrents_free(t);
    }
    torrents_free(NULL);
}

static void test_torrents_update_keeps_peers_and_snatchers(void **state)
{
    struct torrents *t = torrents_new(4);
    struct torrent_row r = row_of(5);
    assert_int_equal(torrents_put(t, &r, 1), 0);

    struct torrent_shard *shard;
    struct torrent *tor = torrents_lock(t, r.info_hash, &shard);
    struct peer_report p = report_of(1, true, 10);
    assert_int_equal(peerset_upsert(&tor->v4, &p, NULL), 0);
    p = report_of(2, false, 10);
    assert_int_equal(peerset_upsert(&tor->v6, &p, NULL), 0);
    assert_true(torrent_snatch(tor, 42));
    torrents_unlock(shard);

    r.enabled = false;
    r.deleted = true;
    snprintf(r.reason, sizeof(r.reason), "dupe");
    assert_int_equal(torrents_put(t, &r, 2), 0);

    tor = torrents_lock(t, r.info_hash, &shard);
    assert_non_null(tor);
    assert_false(tor->enabled);
    assert_true(tor->deleted);
    assert_string_equal(tor->reason, "dupe");
    assert_int_equal(tor->generation, 2);
    assert_int_equal(peerset_seeders(&tor->v4), 1);
    assert_int_equal(peerset_leechers(&tor->v6), 1);
    assert_int_equal(tor->snatches, 1);
    assert_false(torrent_snatch(tor, 42));
    torrents_unlock(shard);

    /* Reason cleared by an empty one. */
    r.deleted = false;
    r.reason[0] = '\0';
    assert_int_equal(torrents_put(t, &r, 3), 0);
    tor = torrents_lock(t, r.info_hash, &shard);
    assert_null(tor->reason);
    assert_false(tor->deleted);
    torrents_unlock(shard);
    torrents_free(t);
}

static void test_torrents_put_keeps_the_larger_snatch_count(void **state)
{
    struct torrents *t = torrents_new(1);
    struct torrent_row r = row_of(9);
    r.snatches = 10;
    assert_int_equal(torrents_put(t, &r, 1), 0);
    struct torrent_shard *shard;
    struct torrent *tor = torrents_lock(t, r.info_hash, &shard);
    for (uint32_t u = 0; u < 5; u++) {
        assert_true(torrent_snatch(tor, u));
    }
    assert_int_equal(tor->snatches, 15);
    torrents_unlock(shard);

    /* Reload before the flusher wrote them: the store still says 10. */
    assert_int_equal(torrents_put(t, &r, 2), 0);
    tor = torrents_lock(t, r.info_hash, &shard);
    assert_int_equal(tor->snatches, 15);
    torrents_unlock(shard);

    /* Another node counted more: take the store's. */
    r.snatches = 20;
    assert_int_equal(torrents_put(t, &r, 3), 0);
    tor = torrents_lock(t, r.info_hash, &shard);
    assert_int_equal(tor->snatches, 20);
    torrents_unlock(shard);
    torrents_free(t);
}

static void test_torrents_sweep_marks_missing_as_deleted(void **state)
{
    struct torrents *t = torrents_new(8);
    for (uint32_t n = 0; n < 100; n++) {
        struct torrent_row r = row_of(n);
        if (n == 7) {
            snprintf(r.reason, sizeof(r.reason), "kept reason");
        }
        assert_int_equal(torrents_put(t, &r, 1), 0);
    }
    /* Generation 2 sees only the even ones. */
    for (uint32_t n = 0; n < 100; n += 2) {
        struct torrent_row r = row_of(n);
        assert_int_equal(torrents_put(t, &r, 2), 0);
    }
    assert_int_equal(torrents_sweep(t, 2), 50);
    assert_int_equal(torrents_sweep(t, 2), 0);
    for (uint32_t n = 0; n < 100; n++) {
        uint8_t h[20];
        hash_of(n, h);
        struct torrent_shard *shard;
        struct torrent *tor = torrents_lock(t, h, &shard);
        assert_non_null(tor);
        assert_int_equal(tor->deleted, n % 2 == 1);
        if (n == 7) {
            assert_string_equal(tor->reason, "kept reason");
        }
        torrents_unlock(shard);
    }
    struct torrents_totals tot;
    torrents_totals(t, &tot);
    assert_int_equal(tot.torrents, 50);

    /* Back in the store: no longer deleted. */
    struct torrent_row r = row_of(7);
    assert_int_equal(torrents_put(t, &r, 3), 0);
    torrents_totals(t, &tot);
    assert_int_equal(tot.torrents, 51);
    torrents_free(t);
}

static void test_torrents_snatch_counted_once_per_user(void **state)
{
    struct torrents *t = torrents_new(2);
    struct torrent_row r = row_of(3);
    r.snatches = 2; /* users 100 and 101, loaded below */
    assert_int_equal(torrents_put(t, &r, 1), 0);
    assert_int_equal(torrents_load_snatch(t, r.info_hash, 100), 0);
    assert_int_equal(torrents_load_snatch(t, r.info_hash, 101), 0);
    assert_int_equal(torrents_load_snatch(t, r.info_hash, 101), 0);

    uint8_t missing[20];
    hash_of(4, missing);
    assert_int_equal(torrents_load_snatch(t, missing, 100), MK_ENOTFOUND);

    struct torrent_shard *shard;
    struct torrent *tor = torrents_lock(t, r.info_hash, &shard);
    assert_int_equal(tor->snatches, 2); /* loading does not count again */
    assert_false(torrent_snatch(tor, 100));
    assert_false(torrent_snatch(tor, 101));
    assert_int_equal(tor->snatches, 2);
    assert_true(torrent_snatch(tor, 0));
    assert_false(torrent_snatch(tor, 0));
    assert_true(torrent_snatch(tor, 102));
    assert_int_equal(tor->snatches, 4);
    torrents_unlock(shard);
    torrents_free(t);
}

static void test_torrents_reap_every_shard_removes_stale_peers_only(void **state)
{
    struct torrents *t = torrents_new(16);
    const uint32_t ntor = 500;
    uint32_t stale = 0;
    for (uint32_t n = 0; n < ntor; n++) {
        struct torrent_row r = row_of(n);
        assert_int_equal(torrents_put(t, &r, 1), 0);
        struct torrent_shard *shard;
        struct torrent *tor = torrents_lock(t, r.info_hash, &shard);
        for (uint32_t p = 0; p < n % 7; p++) {
            uint32_t now = (n + p) % 3 == 0 ? 50 : 200; /* 50 is stale */
            stale += now == 50;
            struct peer_report rep = report_of(p, p % 2, now);
            assert_int_equal(peerset_upsert(p % 3 ? &tor->v4 : &tor->v6, &rep, NULL), 0);
        }
        torrents_unlock(shard);
    }
    assert_true(stale > 100);
    struct torrents_totals before;
    torrents_totals(t, &before);

    uint32_t removed = 0;
    for (uint32_t s = 0; s < torrents_nshards(t); s++) {
        removed += torrents_reap_shard(t, s, 100);
    }
    assert_int_equal(removed, stale);
    assert_int_equal(torrents_reap_shard(t, torrents_nshards(t), 100), 0);

    struct torrents_totals after;
    torrents_totals(t, &after);
    assert_int_equal(after.seeders + after.leechers + stale, before.seeders + before.leechers);
    for (uint32_t n = 0; n < ntor; n++) {
        uint8_t h[20];
        hash_of(n, h);
        struct torrent_shard *shard;
        struct torrent *tor = torrents_lock(t, h, &shard);
        uint32_t want = 0;
        for (uint32_t p = 0; p < n % 7; p++) {
            want += (n + p) % 3 != 0;
        }
        assert_int_equal(peerset_count(&tor->v4) + peerset_count(&tor->v6), want);
        for (uint32_t i = 0; i < tor->v4.n; i++) {
            assert_int_equal(tor->v4.peers[i].last_seen, 200);
        }
        for (uint32_t i = 0; i < tor->v6.n; i++) {
            assert_int_equal(tor->v6.peers[i].last_seen, 200);
        }
        torrents_unlock(shard);
    }
    torrents_free(t);
}

static void test_torrents_totals_sum_both_families(void **state)
{
    struct torrents *t = torrents_new(4);
    for (uint32_t n = 0; n < 3; n++) {
        struct torrent_row r = row_of(n);
        r.deleted = n == 2;
        assert_int_equal(torrents_put(t, &r, 1), 0);
        struct torrent_shard *shard;
        struct torrent *tor = torrents_lock(t, r.info_hash, &shard);
        /* n+1 v4 seeders, 2 v6 leechers, 1 v4 leecher. */
        for (uint32_t p = 0; p <= n; p++) {
            struct peer_report rep = report_of(p, true, 1);
            peerset_upsert(&tor->v4, &rep, NULL);
        }
        for (uint32_t p = 10; p < 12; p++) {
            struct peer_report rep = report_of(p, false, 1);
            peerset_upsert(&tor->v6, &rep, NULL);
        }
        struct peer_report rep = report_of(20, false, 1);
        peerset_upsert(&tor->v4, &rep, NULL);
        torrents_unlock(shard);
    }
    struct torrents_totals tot;
    torrents_totals(t, &tot);
    assert_int_equal(tot.torrents, 2);
    assert_int_equal(tot.seeders, 1 + 2 + 3);
    assert_int_equal(tot.leechers, 3 * 3);
    torrents_free(t);
}

static void test_torrents_many_torrents_grow_shards_and_stay_findable(void **state)
{
    struct torrents *t = torrents_new(4);
    const uint32_t ntor = 50000;
    for (uint32_t n = 0; n < ntor; n++) {
        struct torrent_row r = row_of(n);
        assert_int_equal(torrents_put(t, &r, 1), 0);
    }
    for (uint32_t n = 0; n < ntor + 100; n++) {
        uint8_t h[20];
        hash_of(n, h);
        struct torrent_shard *shard;
        struct torrent *tor = torrents_lock(t, h, &shard);
        if (n < ntor) {
            assert_non_null(tor);
            assert_int_equal(tor->id, n + 1000);
        } else {
            assert_null(tor);
        }
        torrents_unlock(shard);
    }
    struct torrents_totals tot;
    torrents_totals(t, &tot);
    assert_int_equal(tot.torrents, ntor);
    torrents_free(t);
}

struct worker_arg {
    struct torrents *t;
    uint32_t id;
};

/* Each worker announces into every torrent, reloads some, and reaps its
 * share of shards: run under TSan to check the locking. */
static void *worker(void *p)
{
    struct worker_arg *a = p;
    for (uint32_t round = 0; round < 200; round++) {
        for (uint32_t n = 0; n < 64; n++) {
            uint8_t h[20];
            hash_of(n, h);
            struct torrent_shard *shard;
            struct torrent *tor = torrents_lock(a->t, h, &shard);
            if (tor) {
                struct peer_report rep = report_of(a->id * 1000 + n, round % 2, 1000 + round);
                peerset_upsert(&tor->v4, &rep, NULL);
                torrent_snatch(tor, a->id);
            }
            torrents_unlock(shard);
            if (n % 16 == a->id) {
                struct torrent_row r = row_of(n);
                torrents_put(a->t, &r, 1);
            }
        }
        torrents_reap_shard(a->t, (round + a->id) % torrents_nshards(a->t), 0);
    }
    return NULL;
}

static void test_torrents_concurrent_workers_keep_counts(void **state)
{
    struct torrents *t = torrents_new(8);
    for (uint32_t n = 0; n < 64; n++) {
        struct torrent_row r = row_of(n);
        assert_int_equal(torrents_put(t, &r, 1), 0);
    }
    enum { NTHREADS = 8 };
    pthread_t th[NTHREADS];
    struct worker_arg args[NTHREADS];
    for (uint32_t i = 0; i < NTHREADS; i++) {
        args[i] = (struct worker_arg){t, i};
        assert_int_equal(pthread_create(&th[i], NULL, worker, &args[i]), 0);
    }
    for (uint32_t i = 0; i < NTHREADS; i++) {
        pthread_join(th[i], NULL);
    }
    struct torrents_totals tot;
    torrents_totals(t, &tot);
    assert_int_equal(tot.torrents, 64);
    /* Each worker's last round (199, odd) made its peer a seeder everywhere. */
    assert_int_equal(tot.seeders, 64 * NTHREADS);
    assert_int_equal(tot.leechers, 0);
    for (uint32_t n = 0; n < 64; n++) {
        uint8_t h[20];
        hash_of(n, h);
        struct torrent_shard *shard;
        struct torrent *tor = torrents_lock(t, h, &shard);
        assert_int_equal(tor->snatches, NTHREADS);
        torrents_unlock(shard);
    }
    torrents_free(t);
}

/* Three torrents; user 7 has a v4 seeder and a v4 leecher on each and a v6
 * leecher on the first; users 1..3 have one v4 leecher each. */
static struct torrents *swarms_with_user7(void)
{
    struct torrents *t = torrents_new(4);
    for (uint32_t n = 0; n < 3; n++) {
        struct torrent_row r = row_of(n);
        assert_int_equal(torrents_put(t, &r, 1), 0);
        struct torrent_shard *shard;
        struct torrent *tor = torrents_lock(t, r.info_hash, &shard);
        for (uint32_t u = 1; u <= 3; u++) {
            struct peer_report rep = report_of(u, false, 1);
            assert_int_equal(peerset_upsert(&tor->v4, &rep, NULL), 0);
        }
        struct peer_report s7 = report_of(7, true, 1), l7 = report_of(7, false, 1);
        l7.key += 1;
        assert_int_equal(peerset_upsert(&tor->v4, &s7, NULL), 0);
        assert_int_equal(peerset_upsert(&tor->v4, &l7, NULL), 0);
        if (n == 0) {
            struct peer_report v6 = report_of(7, false, 1);
            assert_int_equal(peerset_upsert(&tor->v6, &v6, NULL), 0);
        }
        torrents_unlock(shard);
    }
    return t;
}

static void test_torrents_remove_user_empties_every_swarm_of_that_user_only(void **state)
{
    struct torrents *t = swarms_with_user7();
    assert_int_equal(torrents_remove_user(t, 7), 7);
    assert_int_equal(torrents_remove_user(t, 7), 0);
    struct torrents_totals tot;
    torrents_totals(t, &tot);
    assert_int_equal(tot.seeders, 0);
    assert_int_equal(tot.leechers, 9);
    for (uint32_t n = 0; n < 3; n++) {
        struct torrent_row r = row_of(n);
        struct torrent_shard *shard;
        struct torrent *tor = torrents_lock(t, r.info_hash, &shard);
        for (uint32_t i = 0; i < tor->v4.n; i++) {
            assert_int_not_equal(tor->v4.peers[i].user_id, 7);
        }
        assert_int_equal(tor->v6.n, 0);
        torrents_unlock(shard);
    }
    torrents_free(t);
}

static void test_torrents_clear_peers_empties_one_swarm(void **state)
{
    struct torrents *t = swarms_with_user7();
    struct torrent_row r = row_of(0);
    assert_int_equal(torrents_clear_peers(t, r.info_hash), 6);
    uint8_t missing[20] = {0};
    assert_int_equal(torrents_clear_peers(t, missing), 0);
    struct torrents_totals tot;
    torrents_totals(t, &tot);
    assert_int_equal(tot.seeders, 2);
    assert_int_equal(tot.leechers, 8);
    assert_int_equal(tot.torrents, 3);
    torrents_free(t);
}

static void count_each(const struct torrent *tor, void *arg)
{
    uint32_t *ids = arg;
    ids[tor->id - 1000]++;
}

static void test_torrents_each_visits_every_torrent_once(void **state)
{
    struct torrents *t = torrents_new(2);
    for (uint32_t n = 0; n < 100; n++) {
        struct torrent_row r = row_of(n);
        r.deleted = n % 3 == 0;
        assert_int_equal(torrents_put(t, &r, 1), 0);
    }
    uint32_t seen[100] = {0};
    torrents_each(t, count_each, seen);
    for (uint32_t n = 0; n < 100; n++) {
        assert_int_equal(seen[n], 1);
    }
    torrents_free(t);
}

/* Tokens: sorted by user, found in O(log n), replaced in place, expired by
 * time, dropped; unknown torrents refused. */
static void test_tokens_set_find_expire_and_drop(void **state)
{
    (void)state;
    struct torrents *t = torrents_new(4);
    assert_non_null(t);
    struct torrent_row row;
    memset(&row, 0, sizeof(row));
    row.id = 7;
    memset(row.info_hash, 0x77, 20);
    row.enabled = true;
    assert_int_equal(torrents_put(t, &row, 1), 0);
    for (uint32_t u = 50; u > 0; u -= 5) {
        struct torrent_token tok = {u, 1000, 0, u == 25 ? 100 : 0};
        assert_int_equal(torrents_set_token(t, row.info_hash, &tok), 0);
    }
    struct torrent_token again = {30, 2000, 500, 0};
    assert_int_equal(torrents_set_token(t, row.info_hash, &again), 0);
    struct torrent_shard *shard;
    struct torrent *tor = torrents_lock(t, row.info_hash, &shard);
    assert_int_equal(tor->ntokens, 10);
    for (uint32_t i = 1; i < tor->ntokens; i++) {
        assert_true(tor->tokens[i - 1].user_id < tor->tokens[i].user_id);
    }
    const struct torrent_token *found = torrent_token_find(tor, 30, 50);
    assert_non_null(found);
    assert_int_equal(found->up_mult, 2000);
    assert_int_equal(found->down_mult, 500);
    assert_null(torrent_token_find(tor, 31, 50));
    assert_non_null(torrent_token_find(tor, 25, 99));
    assert_null(torrent_token_find(tor, 25, 100)); /* expired */
    torrents_unlock(shard);
    assert_true(torrents_drop_token(t, row.info_hash, 30));
    assert_false(torrents_drop_token(t, row.info_hash, 30));
    uint8_t other[20];
    memset(other, 0x11, 20);
    assert_int_equal(torrents_set_token(t, other, &again), MK_ENOTFOUND);
    tor = torrents_lock(t, row.info_hash, &shard);
    assert_int_equal(tor->ntokens, 9);
    assert_null(torrent_token_find(tor, 30, 50));
    torrents_unlock(shard);
    torrents_free(t);
}

/* ---- a cluster's swarm counts ---- */

struct seen_counts {
    uint32_t n;
    uint8_t last[20];
    uint32_t seeders, leechers, snatches, announced_at;
};

static void seen_count(const struct swarm_count_row *row, void *arg)
{
    struct seen_counts *s = arg;
    s->n++;
    memcpy(s->last, row->info_hash, 20);
    s->seeders = row->seeders;
    s->leechers = row->leechers;
    s->snatches = row->snatches;
    s->announced_at = row->announced_at;
}

static void test_counts_changed_reports_each_change_once(void **state)
{
    (void)state;
    struct torrents *t = torrents_new(4);
    for (uint32_t n = 0; n < 3; n++) {
        struct torrent_row r = row_of(n);
        assert_int_equal(torrents_put(t, &r, 1), 0);
    }
    struct seen_counts s = {0};
    torrents_counts_changed(t, true, seen_count, &s);
    assert_int_equal(s.n, 0); /* no swarm has or had peers */

    struct torrent_row r1 = row_of(1);
    struct torrent_shard *shard;
    struct torrent *tor = torrents_lock(t, r1.info_hash, &shard);
    struct peer_report seed = report_of(1, true, 10), leech = report_of(2, false, 10);
    assert_int_equal(peerset_upsert(&tor->v4, &seed, NULL), 0);
    assert_int_equal(peerset_upsert(&tor->v6, &leech, NULL), 0);
    tor->announced_at = 1700000000u;
    torrents_unlock(shard);

    torrents_counts_changed(t, false, seen_count, &s);
    assert_int_equal(s.n, 1);
    assert_memory_equal(s.last, r1.info_hash, 20);
    assert_int_equal(s.seeders, 1);
    assert_int_equal(s.leechers, 1);
    assert_int_equal(s.announced_at, 1700000000u);
    torrents_counts_changed(t, false, seen_count, &s);
    assert_int_equal(s.n, 1); /* nothing moved */
    torrents_counts_changed(t, true, seen_count, &s);
    assert_int_equal(s.n, 2); /* all: the swarm with peers again */

    /* A new announce alone, or a snatch alone, is a change too. */
    tor = torrents_lock(t, r1.info_hash, &shard);
    tor->announced_at++;
    torrents_unlock(shard);
    torrents_counts_changed(t, false, seen_count, &s);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.announced_at, 1700000001u);
    tor = torrents_lock(t, r1.info_hash, &shard);
    assert_true(torrent_snatch(tor, 42));
    uint32_t snatches = tor->snatches;
    torrents_unlock(shard);
    torrents_counts_changed(t, false, seen_count, &s);
    assert_int_equal(s.n, 4);
    assert_int_equal(s.snatches, snatches);
    torrents_counts_changed(t, false, seen_count, &s);
    assert_int_equal(s.n, 4);

    assert_int_equal(torrents_clear_peers(t, r1.info_hash), 2);
    torrents_counts_changed(t, false, seen_count, &s);
    assert_int_equal(s.n, 5); /* emptied: reported as 0 and 0 */
    assert_int_equal(s.seeders + s.leechers, 0);
    /* A swarm without peers whose removal went out is not reported again,
     * whatever else moves. */
    tor = torrents_lock(t, r1.info_hash, &shard);
    tor->announced_at++;
    torrents_unlock(shard);
    torrents_counts_changed(t, true, seen_count, &s);
    assert_int_equal(s.n, 5);
    torrents_free(t);
}

static void test_remote_counts_are_stamped_and_cleared(void **state)
{
    (void)state;
    struct torrents *t = torrents_new(4);
    struct torrent_row a = row_of(1), b = row_of(2);
    assert_int_equal(torrents_put(t, &a, 1), 0);
    assert_int_equal(torrents_put(t, &b, 1), 0);
    uint8_t unknown[20];
    hash_of(99, unknown);
    torrents_set_remote(t, a.info_hash, 3, 4, 0, 100, 1);
    torrents_set_remote(t, b.info_hash, 5, 6, 0, 100, 1);
    torrents_set_remote(t, unknown, 7, 8, 0, 100, 1); /* not registered: nothing */
    torrents_clear_remote(t, 1);
    struct torrent_shard *shard;
    struct torrent *tor = torrents_lock(t, a.info_hash, &shard);
    assert_int_equal(tor->remote_seeders, 3);
    assert_int_equal(tor->remote_leechers, 4);
    assert_int_equal(tor->remote_announced_at, 100);
    torrents_unlock(shard);
    /* The next round saw only b: a's other nodes' peers are gone. */
    torrents_set_remote(t, b.info_hash, 1, 0, 0, 101, 2);
    torrents_clear_remote(t, 2);
    tor = torrents_lock(t, a.info_hash, &shard);
    assert_int_equal(tor->remote_seeders + tor->remote_leechers, 0);
    assert_int_equal(tor->remote_announced_at, 0);
    torrents_unlock(shard);
    tor = torrents_lock(t, b.info_hash, &shard);
    assert_int_equal(tor->remote_seeders, 1);
    assert_int_equal(tor->remote_leechers, 0);
    torrents_unlock(shard);
    torrents_free(t);
}

/* Another node's snatch count raises the torrent's, never lowers it, and
 * this node's next snatch counts on top of it. */
static void test_remote_snatches_raise_the_count(void **state)
{
    (void)state;
    struct torrents *t = torrents_new(4);
    struct torrent_row a = row_of(1);
    a.snatches = 2;
    assert_int_equal(torrents_put(t, &a, 1), 0);
    torrents_set_remote(t, a.info_hash, 1, 0, 5, 100, 1);
    struct torrent_shard *shard;
    struct torrent *tor = torrents_lock(t, a.info_hash, &shard);
    assert_int_equal(tor->snatches, 5);
    torrents_unlock(shard);
    torrents_set_remote(t, a.info_hash, 1, 0, 3, 100, 2);
    torrents_clear_remote(t, 2);
    tor = torrents_lock(t, a.info_hash, &shard);
    assert_int_equal(tor->snatches, 5);
    assert_true(torrent_snatch(tor, 7));
    assert_int_equal(tor->snatches, 6);
    torrents_unlock(shard);
    torrents_free(t);
}

/* A scrape's counts come from one node: this one when it saw the swarm's
 * latest announce (a tie included), else the freshest other node's. */
static void test_swarm_counts_come_from_the_freshest_node(void **state)
{
    (void)state;
    struct torrents *t = torrents_new(4);
    struct torrent_row a = row_of(1);
    assert_int_equal(torrents_put(t, &a, 1), 0);
    struct torrent_shard *shard;
    struct torrent *tor = torrents_lock(t, a.info_hash, &shard);
    struct peer_report seed = report_of(1, true, 10), leech = report_of(2, false, 10);
    assert_int_equal(peerset_upsert(&tor->v4, &seed, NULL), 0);
    assert_int_equal(peerset_upsert(&tor->v4, &leech, NULL), 0);
    tor->announced_at = 200;
    torrents_unlock(shard);
    uint32_t seeders, leechers;

    /* The other node's row is older: this node's peers, not a sum. */
    torrents_set_remote(t, a.info_hash, 3, 4, 0, 199, 1);
    tor = torrents_lock(t, a.info_hash, &shard);
    torrent_swarm_counts(tor, &seeders, &leechers);
    torrents_unlock(shard);
    assert_int_equal(seeders, 1);
    assert_int_equal(leechers, 1);
    torrents_set_remote(t, a.info_hash, 3, 4, 0, 200, 2);
    tor = torrents_lock(t, a.info_hash, &shard);
    torrent_swarm_counts(tor, &seeders, &leechers);
    torrents_unlock(shard);
    assert_int_equal(seeders, 1);
    assert_int_equal(leechers, 1);
    /* The swarm moved: the other node saw a later announce. */
    torrents_set_remote(t, a.info_hash, 3, 4, 0, 201, 3);
    tor = torrents_lock(t, a.info_hash, &shard);
    torrent_swarm_counts(tor, &seeders, &leechers);
    torrents_unlock(shard);
    assert_int_equal(seeders, 3);
    assert_int_equal(leechers, 4);
    /* Its row gone: this node's again. */
    torrents_clear_remote(t, 4);
    tor = torrents_lock(t, a.info_hash, &shard);
    torrent_swarm_counts(tor, &seeders, &leechers);
    torrents_unlock(shard);
    assert_int_equal(seeders, 1);
    assert_int_equal(leechers, 1);
    torrents_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts_changed_reports_each_change_once),
        cmocka_unit_test(test_remote_counts_are_stamped_and_cleared),
        cmocka_unit_test(test_remote_snatches_raise_the_count),
        cmocka_unit_test(test_swarm_counts_come_from_the_freshest_node),
        cmocka_unit_test(test_tokens_set_find_expire_and_drop),
        cmocka_unit_test(test_torrents_put_then_lock_finds_it),
        cmocka_unit_test(test_torrents_nshards_rounds_up_to_power_of_two),
        cmocka_unit_test(test_torrents_update_keeps_peers_and_snatchers),
        cmocka_unit_test(test_torrents_put_keeps_the_larger_snatch_count),
        cmocka_unit_test(test_torrents_sweep_marks_missing_as_deleted),
        cmocka_unit_test(test_torrents_snatch_counted_once_per_user),
        cmocka_unit_test(test_torrents_reap_every_shard_removes_stale_peers_only),
        cmocka_unit_test(test_torrents_totals_sum_both_families),
        cmocka_unit_test(test_torrents_many_torrents_grow_shards_and_stay_findable),
        cmocka_unit_test(test_torrents_concurrent_workers_keep_counts),
        cmocka_unit_test(test_torrents_remove_user_empties_every_swarm_of_that_user_only),
        cmocka_unit_test(test_torrents_clear_peers_empties_one_swarm),
        cmocka_unit_test(test_torrents_each_visits_every_torrent_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
