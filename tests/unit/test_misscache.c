/* tests/unit/test_misscache.c: coalescing, negative caching, eviction and
 * the queue bound of the miss cache. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "auth/misscache.h"

static struct miss_key pk(const char *s)
{
    struct miss_key k = {.kind = MISS_PASSKEY, .len = (uint8_t)strlen(s)};
    memcpy(k.bytes, s, k.len);
    return k;
}

static struct miss_key ih(uint8_t fill)
{
    struct miss_key k = {.kind = MISS_INFO_HASH, .len = 20};
    memset(k.bytes, fill, 20);
    return k;
}

static size_t list_len(const struct miss_waiter *w)
{
    size_t n = 0;
    for (; w; w = w->next) {
        n++;
    }
    return n;
}

static struct misscache *make(uint32_t queue_max, uint32_t cache_max, uint32_t ttl_ms)
{
    struct misscache *c = NULL;
    assert_int_equal(misscache_new(&c, queue_max, cache_max, ttl_ms), MK_OK);
    return c;
}

static void test_zero_bounds_are_einval(void **state)
{
    struct misscache *c = NULL;
    assert_int_equal(misscache_new(&c, 0, 10, 1000), MK_EINVAL);
    assert_int_equal(misscache_new(&c, 10, 0, 1000), MK_EINVAL);
    assert_null(c);
    misscache_free(NULL);
}

static void test_concurrent_misses_on_one_key_make_one_read(void **state)
{
    struct misscache *c = make(4, 4, 1000);
    struct miss_key k = pk("abc");
    struct miss_waiter w[3];
    assert_int_equal(misscache_submit(c, &k, 0, &w[0]), MISS_QUEUED);
    assert_int_equal(misscache_submit(c, &k, 0, &w[1]), MISS_JOINED);
    struct miss_key got;
    assert_true(misscache_next(c, &got));
    assert_memory_equal(&got, &k, sizeof(k));
    /* Being read: a later miss still joins it, and no second read is queued. */
    assert_int_equal(misscache_submit(c, &k, 1, &w[2]), MISS_JOINED);
    assert_false(misscache_next(c, &got));
    assert_int_equal(misscache_pending(c), 1);
    struct miss_waiter *all = misscache_done(c, &k, false, 2);
    assert_int_equal(list_len(all), 3);
    assert_int_equal(misscache_pending(c), 0);
    misscache_free(c);
}

static void test_negative_answer_is_cached_for_ttl(void **state)
{
    struct misscache *c = make(4, 4, 1000);
    struct miss_key k = pk("nobody");
    struct miss_waiter w;
    struct miss_key got;
    assert_int_equal(misscache_submit(c, &k, 0, &w), MISS_QUEUED);
    assert_true(misscache_next(c, &got));
    assert_int_equal(list_len(misscache_done(c, &k, true, 100)), 1);
    assert_int_equal(misscache_negatives(c), 1);
    assert_int_equal(misscache_submit(c, &k, 500, &w), MISS_NEGATIVE);
    assert_int_equal(misscache_submit(c, &k, 1099, &w), MISS_NEGATIVE);
    /* Expired: asked again. */
    assert_int_equal(misscache_submit(c, &k, 1100, &w), MISS_QUEUED);
    assert_int_equal(misscache_negatives(c), 0);
    misscache_free(c);
}

static void test_found_and_failed_reads_are_not_cached(void **state)
{
    struct misscache *c = make(4, 4, 1000);
    struct miss_key k = pk("someone");
    struct miss_waiter w;
    struct miss_key got;
    assert_int_equal(misscache_submit(c, &k, 0, &w), MISS_QUEUED);
    assert_true(misscache_next(c, &got));
    misscache_done(c, &k, false, 1);
    assert_int_equal(misscache_negatives(c), 0);
    assert_int_equal(misscache_submit(c, &k, 2, &w), MISS_QUEUED);
    misscache_free(c);
}

static void test_zero_ttl_caches_nothing_but_still_coalesces(void **state)
{
    struct misscache *c = make(4, 4, 0);
    struct miss_key k = pk("x");
    struct miss_waiter w[2];
    struct miss_key got;
    assert_int_equal(misscache_submit(c, &k, 0, &w[0]), MISS_QUEUED);
    assert_int_equal(misscache_submit(c, &k, 0, &w[1]), MISS_JOINED);
    assert_true(misscache_next(c, &got));
    assert_int_equal(list_len(misscache_done(c, &k, true, 0)), 2);
    assert_int_equal(misscache_negatives(c), 0);
    assert_int_equal(misscache_submit(c, &k, 0, &w[0]), MISS_QUEUED);
    misscache_free(c);
}

static void test_full_queue_refuses_new_keys_but_admits_joiners(void **state)
{
    struct misscache *c = make(2, 4, 1000);
    struct miss_key a = pk("a"), b = pk("b"), d = pk("d");
    struct miss_waiter w[4];
    assert_int_equal(misscache_submit(c, &a, 0, &w[0]), MISS_QUEUED);
    assert_int_equal(misscache_submit(c, &b, 0, &w[1]), MISS_QUEUED);
    assert_int_equal(misscache_submit(c, &d, 0, &w[2]), MISS_FULL);
    assert_int_equal(misscache_submit(c, &a, 0, &w[3]), MISS_JOINED);
    struct miss_key got;
    assert_true(misscache_next(c, &got));
    assert_memory_equal(&got, &a, sizeof(a)); /* oldest first */
    misscache_done(c, &a, true, 0);
    assert_int_equal(misscache_submit(c, &d, 0, &w[2]), MISS_QUEUED);
    misscache_free(c);
}

static void test_oldest_negative_is_evicted_when_full(void **state)
{
    struct misscache *c = make(1, 3, 60000);
    struct miss_waiter w;
    struct miss_key got;
    char name[8];
    for (int i = 0; i < 5; i++) {
        snprintf(name, sizeof(name), "k%d", i);
        struct miss_key k = pk(name);
        assert_int_equal(misscache_submit(c, &k, i, &w), MISS_QUEUED);
        assert_true(misscache_next(c, &got));
        misscache_done(c, &k, true, i);
        assert_true(misscache_negatives(c) <= 3);
    }
    assert_int_equal(misscache_negatives(c), 3);
    struct miss_key k0 = pk("k0"), k1 = pk("k1"), k2 = pk("k2"), k4 = pk("k4");
    assert_int_equal(misscache_submit(c, &k2, 10, &w), MISS_NEGATIVE);
    assert_int_equal(misscache_submit(c, &k4, 10, &w), MISS_NEGATIVE);
    assert_int_equal(misscache_submit(c, &k0, 10, &w), MISS_QUEUED);
    assert_int_equal(misscache_submit(c, &k1, 10, &w), MISS_FULL);
    misscache_free(c);
}

static void test_a_flood_of_distinct_keys_stays_within_bounds(void **state)
{
    struct misscache *c = make(8, 64, 60000);
    static struct miss_waiter w[10000];
    struct miss_key got;
    uint32_t queued = 0, full = 0;
    char name[16];
    for (int i = 0; i < 10000; i++) {
        snprintf(name, sizeof(name), "guess%d", i);
        struct miss_key k = pk(name);
        enum miss_verdict v = misscache_submit(c, &k, i, &w[i]);
        if (v == MISS_QUEUED) {
            queued++;
        } else {
            assert_int_equal(v, MISS_FULL);
            full++;
        }
        assert_true(misscache_pending(c) <= 8);
        if (i % 16 == 15) { /* the reader falls behind: the queue fills */
            while (misscache_next(c, &got)) {
                misscache_done(c, &got, true, i);
            }
        }
        assert_true(misscache_negatives(c) <= 64);
    }
    assert_int_equal(queued + full, 10000);
    assert_true(full > 0);
    misscache_free(c);
}

static void test_kinds_do_not_collide(void **state)
{
    struct misscache *c = make(4, 4, 1000);
    /* Same bytes, different kinds: two keys. */
    struct miss_key h = ih('a');
    struct miss_key p = pk("aaaaaaaaaaaaaaaaaaaa");
    struct miss_waiter w[2];
    assert_int_equal(misscache_submit(c, &h, 0, &w[0]), MISS_QUEUED);
    assert_int_equal(misscache_submit(c, &p, 0, &w[1]), MISS_QUEUED);
    assert_int_equal(misscache_pending(c), 2);
    misscache_free(c);
}

static void test_drain_returns_every_waiter(void **state)
{
    struct misscache *c = make(4, 4, 1000);
    struct miss_key a = pk("a"), b = pk("b");
    struct miss_waiter w[3];
    struct miss_key got;
    assert_int_equal(misscache_submit(c, &a, 0, &w[0]), MISS_QUEUED);
    assert_int_equal(misscache_submit(c, &a, 0, &w[1]), MISS_JOINED);
    assert_int_equal(misscache_submit(c, &b, 0, &w[2]), MISS_QUEUED);
    assert_true(misscache_next(c, &got)); /* one being read, one queued */
    assert_int_equal(list_len(misscache_drain(c)), 3);
    assert_int_equal(misscache_pending(c), 0);
    assert_false(misscache_next(c, &got));
    /* The late done() of the read that was running finds nothing. */
    assert_null(misscache_done(c, &a, true, 1));
    assert_int_equal(misscache_submit(c, &a, 2, &w[0]), MISS_QUEUED);
    misscache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zero_bounds_are_einval),
        cmocka_unit_test(test_concurrent_misses_on_one_key_make_one_read),
        cmocka_unit_test(test_negative_answer_is_cached_for_ttl),
        cmocka_unit_test(test_found_and_failed_reads_are_not_cached),
        cmocka_unit_test(test_zero_ttl_caches_nothing_but_still_coalesces),
        cmocka_unit_test(test_full_queue_refuses_new_keys_but_admits_joiners),
        cmocka_unit_test(test_oldest_negative_is_evicted_when_full),
        cmocka_unit_test(test_a_flood_of_distinct_keys_stays_within_bounds),
        cmocka_unit_test(test_kinds_do_not_collide),
        cmocka_unit_test(test_drain_returns_every_waiter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
