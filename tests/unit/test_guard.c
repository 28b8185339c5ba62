/* tests/unit/test_guard.c: net/guard.c — the per-network connection cap,
 * IPv6 counted by /64, and the leaky unknown-passkey score (refused at the
 * limit, free again once enough has leaked, nothing when off), and
 * networks that share a passkey bucket keeping their own scores.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdint.h>
#include <string.h>

#include "net/guard.h"

static struct guard *make(uint32_t max_conns, uint32_t passkey_limit)
{
    struct guard_cfg cfg = {.max_conns = max_conns, .passkey_limit = passkey_limit};
    struct guard *g = NULL;
    assert_int_equal(guard_new(&g, &cfg), MK_OK);
    assert_non_null(g);
    return g;
}

static uint64_t key4(const struct guard *g, const char *text)
{
    uint8_t ip[16] = {0};
    assert_int_equal(inet_pton(AF_INET, text, ip), 1);
    return guard_key(g, AF_INET, ip);
}

static uint64_t key6(const struct guard *g, const char *text)
{
    uint8_t ip[16];
    assert_int_equal(inet_pton(AF_INET6, text, ip), 1);
    return guard_key(g, AF_INET6, ip);
}

static void test_connection_cap_refuses_the_one_past_it_and_frees_on_close(void **state)
{
    struct guard *g = make(3, 0);
    uint64_t k = key4(g, "192.0.2.7");
    for (int i = 0; i < 3; i++) {
        assert_true(guard_conn_open(g, k));
    }
    assert_false(guard_conn_open(g, k));
    assert_false(guard_conn_open(g, k));
    struct guard_stats st;
    guard_stats_read(g, &st);
    assert_int_equal(st.conns_refused, 2);
    guard_conn_close(g, k);
    assert_true(guard_conn_open(g, k));
    assert_false(guard_conn_open(g, k));
    guard_free(g);
}

static void test_other_addresses_keep_their_own_count(void **state)
{
    struct guard *g = make(1, 0);
    uint64_t a = key4(g, "192.0.2.1"), b = key4(g, "192.0.2.2");
    if (a % GUARD_CONN_BUCKETS == b % GUARD_CONN_BUCKETS) {
        b = key4(g, "192.0.2.3"); /* the keyed hash put both in one bucket (1 in 16384) */
    }
    assert_true(guard_conn_open(g, a));
    assert_true(guard_conn_open(g, b));
    assert_false(guard_conn_open(g, a));
    guard_free(g);
}

static void test_ipv6_counts_by_64_prefix(void **state)
{
    struct guard *g = make(2, 0);
    assert_int_equal(key6(g, "2001:db8:1:2::1"), key6(g, "2001:db8:1:2:ffff::9"));
    assert_true(key6(g, "2001:db8:1:2::1") != key6(g, "2001:db8:1:3::1"));
    assert_true(guard_conn_open(g, key6(g, "2001:db8:1:2::1")));
    assert_true(guard_conn_open(g, key6(g, "2001:db8:1:2::2")));
    assert_false(guard_conn_open(g, key6(g, "2001:db8:1:2::3")));
    guard_free(g);
}

static void test_ipv4_and_ipv6_with_the_same_bytes_differ(void **state)
{
    struct guard *g = make(1, 0);
    uint8_t ip[16] = {10, 0, 0, 1};
    assert_true(guard_key(g, AF_INET, ip) != guard_key(g, AF_INET6, ip));
    guard_free(g);
}

static void test_zero_cap_admits_everything(void **state)
{
    struct guard *g = make(0, 0);
    uint64_t k = key4(g, "192.0.2.7");
    for (int i = 0; i < 1000; i++) {
        assert_true(guard_conn_open(g, k));
    }
    guard_free(g);
}

static void test_passkey_limit_refuses_at_the_limit_until_it_leaks(void **state)
{
    struct guard *g = make(0, 6); /* 6 a minute: one leaks every 10 s */
    uint64_t k = key4(g, "198.51.100.4");
    uint32_t t = 1000;
    for (int i = 1; i < 6; i++) {
        assert_false(guard_passkey_miss(g, k, t));
        assert_false(guard_passkey_refused(g, k, t));
    }
    assert_true(guard_passkey_miss(g, k, t)); /* the 6th reaches the limit */
    assert_true(guard_passkey_refused(g, k, t));
    assert_true(guard_passkey_refused(g, k, t + 9));
    assert_false(guard_passkey_refused(g, k, t + 10)); /* one leaked: 5 of 6 */
    assert_false(guard_passkey_refused(g, key4(g, "198.51.100.5"), t));
    struct guard_stats st;
    guard_stats_read(g, &st);
    assert_int_equal(st.passkey_misses, 6);
    guard_free(g);
}

static void test_frequent_misses_still_leak(void **state)
{
    /* One miss every 5 s at 6 a minute (one leaks per 10 s) climbs by one
     * every 10 s; it must not climb by one every 5 s (lost fractions). */
    struct guard *g = make(0, 6);
    uint64_t k = key4(g, "198.51.100.9");
    uint32_t t = 50;
    for (int i = 0; i < 8; i++) {
        guard_passkey_miss(g, k, t + 5 * (uint32_t)i);
    }
    /* 8 misses over 35 s, 3 leaked: 5, under the limit. */
    assert_false(guard_passkey_refused(g, k, t + 35));
    guard_passkey_miss(g, k, t + 36);
    assert_true(guard_passkey_refused(g, k, t + 36));
    guard_free(g);
}

static void test_passkey_limit_zero_is_off(void **state)
{
    struct guard *g = make(0, 0);
    uint64_t k = key4(g, "198.51.100.4");
    for (int i = 0; i < 10000; i++) {
        assert_false(guard_passkey_miss(g, k, 5));
    }
    assert_false(guard_passkey_refused(g, k, 5));
    guard_free(g);
}

static void test_score_saturates_and_then_leaks_away(void **state)
{
    struct guard *g = make(0, GUARD_PASSKEY_LIMIT_MAX);
    uint64_t k = key4(g, "203.0.113.1");
    for (int i = 0; i < 10000; i++) {
        guard_passkey_miss(g, k, 7);
    }
    assert_true(guard_passkey_refused(g, k, 7));
    assert_false(guard_passkey_refused(g, k, 7 + GUARD_PASSKEY_WINDOW));
    guard_free(g);
}

/* A table key in bucket `bucket` with tag `tag` (guard.c: the bucket is the
 * key modulo the bucket count, the tag its top 20 bits). */
static uint64_t raw_key(uint64_t tag, uint64_t bucket)
{
    return tag << 44 | bucket;
}

static void test_colliding_guessers_keep_their_own_scores(void **state)
{
    /* Four networks in one bucket, guessing in turn: each reaches the limit
     * as if it were alone (a one-way table let them evict each other and
     * guess without end). */
    struct guard *g = make(0, 6);
    uint64_t k[GUARD_PASSKEY_WAYS];
    for (unsigned i = 0; i < GUARD_PASSKEY_WAYS; i++) {
        k[i] = raw_key(100 + i, 7);
    }
    for (int round = 1; round <= 6; round++) {
        for (unsigned i = 0; i < GUARD_PASSKEY_WAYS; i++) {
            assert_false(guard_passkey_refused(g, k[i], 500));
            assert_int_equal(guard_passkey_miss(g, k[i], 500), round == 6);
        }
    }
    for (unsigned i = 0; i < GUARD_PASSKEY_WAYS; i++) {
        assert_true(guard_passkey_refused(g, k[i], 500));
    }
    /* The same bucket index with another tag is another network. */
    assert_false(guard_passkey_refused(g, raw_key(99, 7), 500));
    guard_free(g);
}

static void test_a_full_bucket_forgets_its_lowest_score(void **state)
{
    struct guard *g = make(0, 6);
    uint64_t heavy[3] = {raw_key(1, 9), raw_key(2, 9), raw_key(3, 9)};
    uint64_t light = raw_key(4, 9), newcomer = raw_key(5, 9);
    for (int round = 0; round < 6; round++) {
        for (int i = 0; i < 3; i++) {
            guard_passkey_miss(g, heavy[i], 40);
        }
    }
    guard_passkey_miss(g, light, 40);
    for (int i = 0; i < 6; i++) {
        guard_passkey_miss(g, newcomer, 40);
    }
    /* The newcomer took the light guesser's way, not a blocked one's. */
    assert_true(guard_passkey_refused(g, newcomer, 40));
    for (int i = 0; i < 3; i++) {
        assert_true(guard_passkey_refused(g, heavy[i], 40));
    }
    /* A way that has leaked out is free again: after a window, a new
     * network starts from nothing and the old scores are gone. */
    uint32_t later = 40 + GUARD_PASSKEY_WINDOW;
    assert_false(guard_passkey_miss(g, raw_key(6, 9), later));
    assert_false(guard_passkey_refused(g, heavy[0], later));
    guard_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connection_cap_refuses_the_one_past_it_and_frees_on_close),
        cmocka_unit_test(test_other_addresses_keep_their_own_count),
        cmocka_unit_test(test_ipv6_counts_by_64_prefix),
        cmocka_unit_test(test_ipv4_and_ipv6_with_the_same_bytes_differ),
        cmocka_unit_test(test_zero_cap_admits_everything),
        cmocka_unit_test(test_passkey_limit_refuses_at_the_limit_until_it_leaks),
        cmocka_unit_test(test_frequent_misses_still_leak),
        cmocka_unit_test(test_passkey_limit_zero_is_off),
        cmocka_unit_test(test_score_saturates_and_then_leaks_away),
        cmocka_unit_test(test_colliding_guessers_keep_their_own_scores),
        cmocka_unit_test(test_a_full_bucket_forgets_its_lowest_score),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
