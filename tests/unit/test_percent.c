/* tests/unit/test_percent.c: percent_decode. Every input ends at a guard page. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "guard.h"
#include "proto/percent.h"
#include "util/err.h"

/* Decodes a C string through a guard page into out (room for cap). */
static long decode(const char *s, uint8_t *out, size_t cap)
{
    char *g = guard_dup_str(s);
    long n = percent_decode(g, strlen(s), out, cap);
    guard_free(g, strlen(s));
    return n;
}

static void test_percent_copies_plain_bytes(void **state)
{
    uint8_t out[16];
    assert_int_equal(decode("abc-._~", out, sizeof(out)), 7);
    assert_memory_equal(out, "abc-._~", 7);
}

static void test_percent_decodes_upper_and_lower_hex(void **state)
{
    uint8_t out[16];
    assert_int_equal(decode("%4A%4a%fF%Ff", out, sizeof(out)), 4);
    assert_memory_equal(out, "\x4a\x4a\xff\xff", 4);
}

static void test_percent_keeps_plus_as_plus(void **state)
{
    uint8_t out[16];
    assert_int_equal(decode("a+b%2B", out, sizeof(out)), 4);
    assert_memory_equal(out, "a+b+", 4);
}

static void test_percent_decodes_nul_byte(void **state)
{
    uint8_t out[16];
    assert_int_equal(decode("a%00b", out, sizeof(out)), 3);
    assert_memory_equal(out, "a\0b", 3);
}

static void test_percent_empty_input_is_empty(void **state)
{
    uint8_t out[1] = {0x55};
    assert_int_equal(decode("", out, sizeof(out)), 0);
    assert_int_equal(decode("", NULL, 0), 0);
    assert_int_equal(out[0], 0x55);
}

static void test_percent_rejects_lone_percent_at_end(void **state)
{
    uint8_t out[16];
    assert_int_equal(decode("abc%", out, sizeof(out)), MK_EINVAL);
    assert_int_equal(decode("%", out, sizeof(out)), MK_EINVAL);
}

static void test_percent_rejects_one_hex_digit_at_end(void **state)
{
    uint8_t out[16];
    assert_int_equal(decode("%4", out, sizeof(out)), MK_EINVAL);
    assert_int_equal(decode("ab%f", out, sizeof(out)), MK_EINVAL);
}

static void test_percent_rejects_non_hex_escape(void **state)
{
    uint8_t out[16];
    assert_int_equal(decode("%G0", out, sizeof(out)), MK_EINVAL);
    assert_int_equal(decode("%0g", out, sizeof(out)), MK_EINVAL);
    assert_int_equal(decode("%%41", out, sizeof(out)), MK_EINVAL);
    assert_int_equal(decode("% 1", out, sizeof(out)), MK_EINVAL);
}

static void test_percent_fills_cap_exactly(void **state)
{
    uint8_t out[3];
    assert_int_equal(decode("a%62c", out, 3), 3);
    assert_memory_equal(out, "abc", 3);
}

static void test_percent_rejects_one_byte_past_cap(void **state)
{
    uint8_t out[4] = {0, 0, 0, 0x77};
    assert_int_equal(decode("a%62cd", out, 3), MK_ELIMIT);
    assert_int_equal(out[3], 0x77); /* nothing written past cap */
    assert_int_equal(decode("x", out, 0), MK_ELIMIT);
}

static void test_percent_decodes_binary_info_hash(void **state)
{
    static const uint8_t want[20] = {0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf1, 0x23, 0x45,
                                     0x67, 0x89, 0xab, 0xcd, 0xef, 0x12, 0x34, 0x56, 0x78, 0x9a};
    uint8_t out[20];
    assert_int_equal(decode("%124Vx%9A%BC%DE%F1%23Eg%89%AB%CD%EF%124Vx%9A", out, sizeof(out)), 20);
    assert_memory_equal(out, want, 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_percent_copies_plain_bytes),
        cmocka_unit_test(test_percent_decodes_upper_and_lower_hex),
        cmocka_unit_test(test_percent_keeps_plus_as_plus),
        cmocka_unit_test(test_percent_decodes_nul_byte),
        cmocka_unit_test(test_percent_empty_input_is_empty),
        cmocka_unit_test(test_percent_rejects_lone_percent_at_end),
        cmocka_unit_test(test_percent_rejects_one_hex_digit_at_end),
        cmocka_unit_test(test_percent_rejects_non_hex_escape),
        cmocka_unit_test(test_percent_fills_cap_exactly),
        cmocka_unit_test(test_percent_rejects_one_byte_past_cap),
        cmocka_unit_test(test_percent_decodes_binary_info_hash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
