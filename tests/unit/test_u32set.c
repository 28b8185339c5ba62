/* tests/unit/test_u32set.c: membership, growth, and the UINT32_MAX edge. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/err.h"
#include "util/u32set.h"

static void test_u32set_empty_has_nothing(void **state)
{
    struct u32set s;
    u32set_init(&s);
    assert_false(u32set_has(&s, 0));
    assert_false(u32set_has(&s, 1));
    assert_int_equal(s.n, 0);
    u32set_fini(&s);
}

static void test_u32set_zero_is_a_member(void **state)
{
    struct u32set s;
    u32set_init(&s);
    assert_int_equal(u32set_add(&s, 0), 1);
    assert_true(u32set_has(&s, 0));
    assert_false(u32set_has(&s, 1));
    assert_int_equal(u32set_add(&s, 0), 0);
    assert_int_equal(s.n, 1);
    u32set_fini(&s);
}

static void test_u32set_add_twice_counts_once(void **state)
{
    struct u32set s;
    u32set_init(&s);
    assert_int_equal(u32set_add(&s, 77), 1);
    assert_int_equal(u32set_add(&s, 77), 0);
    assert_int_equal(u32set_add(&s, 77), 0);
    assert_int_equal(s.n, 1);
    u32set_fini(&s);
}

static void test_u32set_grows_and_keeps_every_member(void **state)
{
    struct u32set s;
    u32set_init(&s);
    for (uint32_t i = 0; i < 100000; i++) {
        assert_int_equal(u32set_add(&s, i * 7919u), 1);
        assert_true(s.n * 2 <= s.cap);
    }
    assert_int_equal(s.n, 100000);
    assert_int_equal(s.cap, 262144); /* smallest power of two >= 2n */
    for (uint32_t i = 0; i < 100000; i++) {
        assert_true(u32set_has(&s, i * 7919u));
        assert_false(u32set_has(&s, i * 7919u + 1));
    }
    u32set_fini(&s);
    assert_null(s.slots);
    assert_int_equal(s.cap, 0);
}

static void test_u32set_refuses_uint32_max(void **state)
{
    struct u32set s;
    u32set_init(&s);
    assert_int_equal(u32set_add(&s, UINT32_MAX), MK_EINVAL);
    assert_int_equal(u32set_add(&s, 5), 1);
    assert_false(u32set_has(&s, UINT32_MAX)); /* must not match an empty slot */
    assert_int_equal(s.n, 1);
    u32set_add(&s, UINT32_MAX - 1);
    assert_true(u32set_has(&s, UINT32_MAX - 1));
    u32set_fini(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_u32set_empty_has_nothing),
        cmocka_unit_test(test_u32set_zero_is_a_member),
        cmocka_unit_test(test_u32set_add_twice_counts_once),
        cmocka_unit_test(test_u32set_grows_and_keeps_every_member),
        cmocka_unit_test(test_u32set_refuses_uint32_max),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
