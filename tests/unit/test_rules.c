/* Unit tests for acct/rules.c: raw deltas, every multiplier combination,
 * time caps, the bonus formula and the suspicion rules. Expected values are
 * worked out by hand in the comments. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "acct/rules.h"

static const struct acct_mult ONE = {ACCT_MULT_ONE, ACCT_MULT_ONE};

static struct acct_mults neutral(void)
{
    return (struct acct_mults){ONE, false, ONE, ONE, ONE};
}

static void test_raw_delta_rules(void **state)
{
    (void)state;
    assert_int_equal(acct_raw_delta(false, 0, 500), 0);   /* no baseline: nothing */
    assert_int_equal(acct_raw_delta(true, 100, 350), 250);
    assert_int_equal(acct_raw_delta(true, 350, 350), 0);
    assert_int_equal(acct_raw_delta(true, 1000, 40), 40); /* new session restarted at 0 */
    assert_int_equal(acct_raw_delta(true, 0, UINT64_C(9223372036854775807)),
                     UINT64_C(9223372036854775807));
}

static void test_neutral_multipliers_credit_raw(void **state)
{
    (void)state;
    struct acct_mults m = neutral();
    uint64_t up, down;
    acct_credit(&m, 123456789, 987654321, &up, &down);
    assert_int_equal(up, 123456789);
    assert_int_equal(down, 987654321);
    /* Neutral factors take a shortcut; it saturates the same way. */
    acct_credit(&m, UINT64_MAX, 0, &up, &down);
    assert_int_equal(up, INT64_MAX);
    assert_int_equal(down, 0);
}

static void test_freeleech_zeroes_download_only(void **state)
{
    (void)state;
    struct acct_mults m = neutral();
    m.freeleech = true;
    m.event.down = 2000; /* even a "double download" event cannot undo freeleech */
    uint64_t up, down;
    acct_credit(&m, 1000, 5000, &up, &down);
    assert_int_equal(up, 1000);
    assert_int_equal(down, 0);
}

static void test_neutral_leech_and_double_upload(void **state)
{
    (void)state;
    struct acct_mults m = neutral();
    m.torrent = (struct acct_mult){2000, 500}; /* double upload, half download */
    uint64_t up, down;
    acct_credit(&m, 1000, 1000, &up, &down);
    assert_int_equal(up, 2000);
    assert_int_equal(down, 500);
}

/* Every factor is applied, and truncation happens once at the end:
 * 1001 x 1.5 x 1.5 x 1.5 x 1.5 = 5067.5625 -> 5067 (per-factor truncation
 * would give 1501, 2251, 3376, 5064). */
static void test_all_factors_multiply_and_truncate_once(void **state)
{
    (void)state;
    struct acct_mult f = {1500, 1500};
    struct acct_mults m = {f, false, f, f, f};
    uint64_t up, down;
    acct_credit(&m, 1001, 1001, &up, &down);
    assert_int_equal(up, 5067);
    assert_int_equal(down, 5067);
}

/* Each factor in each position matters: swap one factor at a time. */
static void test_each_factor_position_counts(void **state)
{
    (void)state;
    for (int pos = 0; pos < 4; pos++) {
        struct acct_mults m = neutral();
        struct acct_mult three = {3000, 250};
        struct acct_mult *slots[] = {&m.torrent, &m.user_class, &m.personal, &m.event};
        *slots[pos] = three;
        uint64_t up, down;
        acct_credit(&m, 4000, 4000, &up, &down);
        assert_int_equal(up, 12000);
        assert_int_equal(down, 1000);
    }
}

static void test_zero_factor_credits_nothing(void **state)
{
    (void)state;
    struct acct_mults m = neutral();
    m.user_class.up = 0;
    uint64_t up, down;
    acct_credit(&m, 1u << 30, 1u << 30, &up, &down);
    assert_int_equal(up, 0);
    assert_int_equal(down, 1u << 30);
}

static void test_huge_values_saturate_not_wrap(void **state)
{
    (void)state;
    struct acct_mult max = {ACCT_MULT_MAX, ACCT_MULT_MAX};
    struct acct_mults m = {max, false, max, max, max};
    uint64_t up, down;
    acct_credit(&m, UINT64_C(1) << 62, 3, &up, &down);
    assert_int_equal(up, INT64_MAX);
    assert_int_equal(down, 3 * UINT64_C(100000000)); /* 3 x 100^4 */
}

/* floor(raw * 7 * 11 * 13 * 17 / 1000^4) for a raw that exercises the
 * carried remainder: raw = 10^12 + 999999 -> exact product / 10^12. */
static void test_small_factors_exact_floor(void **state)
{
    (void)state;
    struct acct_mults m = {{7, 7}, false, {11, 11}, {13, 13}, {17, 17}};
    uint64_t raw = UINT64_C(1000000999999);
    uint64_t up, down;
    acct_credit(&m, raw, raw, &up, &down);
    /* raw * 17017 = 17017017016982983; / 10^12 = 17017.017... -> 17017 */
    assert_int_equal(up, 17017);
    assert_int_equal(down, 17017);
}

static void test_time_delta_caps(void **state)
{
    (void)state;
    assert_int_equal(acct_time_delta(100, 160, 3600), 60);
    assert_int_equal(acct_time_delta(100, 100, 3600), 0);
    assert_int_equal(acct_time_delta(100, 90, 3600), 0);     /* clock never runs back */
    assert_int_equal(acct_time_delta(100, 100000, 3600), 3600);
}

static const struct acct_bonus_params BONUS = {
    .points_per_hour = 1 * ACCT_POINT,
    .size_unit_bytes = UINT64_C(1) << 30,
    .size_weight = 500,
    .size_units_max = 10,
    .seeder_weight = 100,
};

static void test_bonus_one_hour_small_torrent_alone(void **state)
{
    (void)state;
    /* 1 point/h x 1 h x size factor 1 (under 1 GiB) x seeder factor 1. */
    assert_int_equal(acct_bonus(&BONUS, 3600, 1000, 1), 1 * ACCT_POINT);
    assert_int_equal(acct_bonus(&BONUS, 3600, 1000, 0), 1 * ACCT_POINT);
}

static void test_bonus_scales_with_size_and_caps(void **state)
{
    (void)state;
    uint64_t gib = UINT64_C(1) << 30;
    /* 4 GiB: 1 + 0.5 x 4 = 3x */
    assert_int_equal(acct_bonus(&BONUS, 3600, 4 * gib, 1), 3 * ACCT_POINT);
    /* 50 GiB counts as 10: 1 + 0.5 x 10 = 6x */
    assert_int_equal(acct_bonus(&BONUS, 3600, 50 * gib, 1), 6 * ACCT_POINT);
}

static void test_bonus_shrinks_with_seeders(void **state)
{
    (void)state;
    /* 11 seeders: 1 / (1 + 0.1 x 10) = 0.5x */
    assert_int_equal(acct_bonus(&BONUS, 3600, 1000, 11), ACCT_POINT / 2);
    /* 4 seeders: 1/1.3 -> 769230.769... -> 769230 micro-points */
    assert_int_equal(acct_bonus(&BONUS, 3600, 1000, 4), 769230);
}

/* Bonus over many short announces equals one long one up to one micro-point
 * per announce: no drift beyond the truncation of each call. */
static void test_bonus_no_drift_over_many_announces(void **state)
{
    (void)state;
    uint64_t sum = 0;
    for (int i = 0; i < 3600; i++) {
        sum += acct_bonus(&BONUS, 1, 1000, 1);
    }
    uint64_t once = acct_bonus(&BONUS, 3600, 1000, 1);
    assert_true(once - sum <= 3600);
    /* 1 s at 1 point/h is 277.77 micro-points: 277 each. */
    assert_int_equal(sum, 277 * 3600);
}

static void test_suspicious_speed_and_empty_swarm(void **state)
{
    (void)state;
    assert_false(acct_is_suspicious(0, 10, 0, 1000));           /* nothing uploaded */
    assert_true(acct_is_suspicious(1, 10, 0, 1000));            /* nobody to upload to */
    assert_false(acct_is_suspicious(10000, 10, 3, 1000));       /* exactly at the limit */
    assert_true(acct_is_suspicious(10001, 10, 3, 1000));
    assert_true(acct_is_suspicious(1001, 0, 3, 1000));          /* 0 s counts as 1 s */
    assert_false(acct_is_suspicious(UINT64_C(1) << 50, 1, 3, 0)); /* speed check off */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_raw_delta_rules),
        cmocka_unit_test(test_neutral_multipliers_credit_raw),
        cmocka_unit_test(test_freeleech_zeroes_download_only),
        cmocka_unit_test(test_neutral_leech_and_double_upload),
        cmocka_unit_test(test_all_factors_multiply_and_truncate_once),
        cmocka_unit_test(test_each_factor_position_counts),
        cmocka_unit_test(test_zero_factor_credits_nothing),
        cmocka_unit_test(test_huge_values_saturate_not_wrap),
        cmocka_unit_test(test_small_factors_exact_floor),
        cmocka_unit_test(test_time_delta_caps),
        cmocka_unit_test(test_bonus_one_hour_small_torrent_alone),
        cmocka_unit_test(test_bonus_scales_with_size_and_caps),
        cmocka_unit_test(test_bonus_shrinks_with_seeders),
        cmocka_unit_test(test_bonus_no_drift_over_many_announces),
        cmocka_unit_test(test_suspicious_speed_and_empty_swarm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
