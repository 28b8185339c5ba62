/* tests/unit/test_bencode.c: the bencode writer, byte for byte. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proto/bencode.h"

/* Buffers are one byte larger than the cap handed to the writer, with a
 * sentinel there, so a write past cap shows. */
#define SENTINEL 0xA5

static void expect_bytes(const struct bencode *b, const char *want, size_t n)
{
    assert_true(bencode_ok(b));
    assert_int_equal(b->len, n);
    assert_memory_equal(b->p, want, n);
}

static void test_bencode_int_positive_zero_negative(void **state)
{
    uint8_t mem[64];
    struct bencode b;
    bencode_init(&b, mem, sizeof(mem));
    bencode_int(&b, 42);
    bencode_int(&b, 0);
    bencode_int(&b, -7);
    expect_bytes(&b, "i42ei0ei-7e", 11);
}

static void test_bencode_int_extremes(void **state)
{
    uint8_t mem[64];
    struct bencode b;
    bencode_init(&b, mem, sizeof(mem));
    bencode_int(&b, INT64_MIN);
    bencode_int(&b, INT64_MAX);
    const char *want = "i-9223372036854775808ei9223372036854775807e";
    expect_bytes(&b, want, strlen(want));
}

static void test_bencode_str_with_nul_bytes(void **state)
{
    uint8_t mem[64];
    struct bencode b;
    bencode_init(&b, mem, sizeof(mem));
    bencode_str(&b, "a\0b\0", 4);
    bencode_str(&b, "", 0);
    bencode_cstr(&b, "spam");
    expect_bytes(&b, "4:a\0b\0" "0:" "4:spam", 14);
}

static void test_bencode_nested_dict_and_list(void **state)
{
    uint8_t mem[128];
    struct bencode b;
    bencode_init(&b, mem, sizeof(mem));
    bencode_dict(&b);
    bencode_cstr(&b, "files");
    bencode_dict(&b);
    bencode_str(&b, "12345678901234567890", 20);
    bencode_dict(&b);
    bencode_cstr(&b, "complete");
    bencode_int(&b, 3);
    bencode_end(&b);
    bencode_end(&b);
    bencode_cstr(&b, "list");
    bencode_list(&b);
    bencode_int(&b, 1);
    bencode_list(&b);
    bencode_end(&b);
    bencode_end(&b);
    bencode_end(&b);
    const char *want = "d5:filesd20:12345678901234567890d8:completei3eee4:listli1eleee";
    expect_bytes(&b, want, strlen(want));
}

/* "4:spam" is 6 bytes: fits at cap 6 and 7, overflows at cap 5. */
static void test_bencode_str_exact_fit_and_one_short(void **state)
{
    for (size_t cap = 5; cap <= 7; cap++) {
        uint8_t mem[8];
        memset(mem, SENTINEL, sizeof(mem));
        struct bencode b;
        bencode_init(&b, mem, cap);
        bencode_cstr(&b, "spam");
        if (cap >= 6) {
            expect_bytes(&b, "4:spam", 6);
        } else {
            assert_false(bencode_ok(&b));
            assert_int_equal(b.len, 0);
        }
        for (size_t i = b.len; i < sizeof(mem); i++) {
            assert_int_equal(mem[i], SENTINEL);
        }
    }
}

/* "i-12e" is 5 bytes: caps 4, 5, 6. */
static void test_bencode_int_exact_fit_and_one_short(void **state)
{
    for (size_t cap = 4; cap <= 6; cap++) {
        uint8_t mem[8];
        memset(mem, SENTINEL, sizeof(mem));
        struct bencode b;
        bencode_init(&b, mem, cap);
        bencode_int(&b, -12);
        assert_int_equal(bencode_ok(&b), cap >= 5);
        assert_int_equal(b.len, cap >= 5 ? 5 : 0);
        assert_int_equal(mem[b.len], SENTINEL);
    }
}

static void test_bencode_overflow_is_sticky(void **state)
{
    uint8_t mem[8];
    memset(mem, SENTINEL, sizeof(mem));
    struct bencode b;
    bencode_init(&b, mem, 4);
    bencode_dict(&b);
    bencode_cstr(&b, "abc"); /* 5 bytes, only 3 left */
    assert_false(bencode_ok(&b));
    bencode_end(&b); /* would fit, but the answer is already broken */
    assert_false(bencode_ok(&b));
    assert_int_equal(b.len, 1);
    assert_int_equal(mem[1], SENTINEL);
}

static void test_bencode_end_fills_last_byte(void **state)
{
    uint8_t mem[4];
    memset(mem, SENTINEL, sizeof(mem));
    struct bencode b;
    bencode_init(&b, mem, 3);
    bencode_list(&b);
    bencode_list(&b);
    bencode_end(&b);
    expect_bytes(&b, "lle", 3);
    bencode_end(&b);
    assert_false(bencode_ok(&b));
    assert_int_equal(mem[3], SENTINEL);
}

static void test_bencode_reserve_returns_slot_for_bytes(void **state)
{
    uint8_t mem[32];
    struct bencode b;
    bencode_init(&b, mem, sizeof(mem));
    bencode_cstr(&b, "peers");
    uint8_t *slot = bencode_str_reserve(&b, 6);
    assert_non_null(slot);
    assert_ptr_equal(slot, mem + 9);
    memcpy(slot, "\x7f\x00\x00\x01\x1a\xe1", 6);
    bencode_end(&b);
    expect_bytes(&b, "5:peers6:\x7f\x00\x00\x01\x1a\xe1" "e", 16);
}

/* "6:" + 6 bytes = 8: caps 7, 8, 9. */
static void test_bencode_reserve_exact_fit_and_one_short(void **state)
{
    for (size_t cap = 7; cap <= 9; cap++) {
        uint8_t mem[10];
        struct bencode b;
        bencode_init(&b, mem, cap);
        uint8_t *slot = bencode_str_reserve(&b, 6);
        if (cap >= 8) {
            assert_ptr_equal(slot, mem + 2);
            assert_int_equal(b.len, 8);
            assert_true(bencode_ok(&b));
        } else {
            assert_null(slot);
            assert_false(bencode_ok(&b));
            assert_int_equal(b.len, 0);
        }
    }
}

static void test_bencode_reserve_zero_bytes(void **state)
{
    uint8_t mem[4];
    struct bencode b;
    bencode_init(&b, mem, sizeof(mem));
    assert_non_null(bencode_str_reserve(&b, 0));
    expect_bytes(&b, "0:", 2);
}

static void test_bencode_reserve_huge_length_overflows(void **state)
{
    uint8_t mem[32];
    struct bencode b;
    bencode_init(&b, mem, sizeof(mem));
    assert_null(bencode_str_reserve(&b, SIZE_MAX));
    assert_false(bencode_ok(&b));
    assert_int_equal(b.len, 0);
}

static void test_bencode_failure_writes_whole_answer(void **state)
{
    uint8_t mem[64];
    struct bencode b;
    bencode_init(&b, mem, sizeof(mem));
    bencode_failure(&b, "info_hash: missing");
    const char *want = "d14:failure reason18:info_hash: missinge";
    expect_bytes(&b, want, strlen(want));
}

static void test_bencode_failure_replaces_half_built_answer(void **state)
{
    uint8_t mem[40];
    struct bencode b;
    bencode_init(&b, mem, sizeof(mem));
    bencode_dict(&b);
    bencode_cstr(&b, "interval");
    bencode_str_reserve(&b, 100); /* overflows */
    assert_false(bencode_ok(&b));
    bencode_failure(&b, "x");
    expect_bytes(&b, "d14:failure reason1:xe", 22);
}

static void test_bencode_failure_too_long_for_cap_overflows(void **state)
{
    uint8_t mem[22];
    struct bencode b;
    bencode_init(&b, mem, 21);
    bencode_failure(&b, "x"); /* needs 22 */
    assert_false(bencode_ok(&b));
    bencode_init(&b, mem, 22);
    bencode_failure(&b, "x");
    expect_bytes(&b, "d14:failure reason1:xe", 22);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bencode_int_positive_zero_negative),
        cmocka_unit_test(test_bencode_int_extremes),
        cmocka_unit_test(test_bencode_str_with_nul_bytes),
        cmocka_unit_test(test_bencode_nested_dict_and_list),
        cmocka_unit_test(test_bencode_str_exact_fit_and_one_short),
        cmocka_unit_test(test_bencode_int_exact_fit_and_one_short),
        cmocka_unit_test(test_bencode_overflow_is_sticky),
        cmocka_unit_test(test_bencode_end_fills_last_byte),
        cmocka_unit_test(test_bencode_reserve_returns_slot_for_bytes),
        cmocka_unit_test(test_bencode_reserve_exact_fit_and_one_short),
        cmocka_unit_test(test_bencode_reserve_zero_bytes),
        cmocka_unit_test(test_bencode_reserve_huge_length_overflows),
        cmocka_unit_test(test_bencode_failure_writes_whole_answer),
        cmocka_unit_test(test_bencode_failure_replaces_half_built_answer),
        cmocka_unit_test(test_bencode_failure_too_long_for_cap_overflows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
