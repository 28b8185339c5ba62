/* tests/unit/test_text.c: mk_copy_text, the stores' one rule for text that
 * does not fit a field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "util/text.h"

static void test_text_that_fits_is_copied_whole(void **state)
{
    (void)state;
    char out[6];
    assert_false(mk_copy_text(out, sizeof(out), "alice", 5));
    assert_string_equal(out, "alice");
    assert_false(mk_copy_text(out, sizeof(out), NULL, 0));
    assert_string_equal(out, "");
}

static void test_text_too_long_is_cut_before_a_split_character(void **state)
{
    (void)state;
    char out[6];
    /* "abcdé": é is two bytes, so the 6-byte copy (5 + NUL) would split it. */
    assert_true(mk_copy_text(out, sizeof(out), "abcd\xc3\xa9", 6));
    assert_string_equal(out, "abcd");
    /* A three-byte character that ends exactly at the cut is kept. */
    assert_true(mk_copy_text(out, sizeof(out), "ab\xe2\x82\xac" "x", 6));
    assert_string_equal(out, "ab\xe2\x82\xac");
    /* Plain ASCII is cut at cap - 1. */
    assert_true(mk_copy_text(out, sizeof(out), "abcdefgh", 8));
    assert_string_equal(out, "abcde");
    /* The only character is split by the cut: nothing is kept. */
    assert_true(mk_copy_text(out, 2, "\xe2\x82\xac", 3));
    assert_string_equal(out, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_that_fits_is_copied_whole),
        cmocka_unit_test(test_text_too_long_is_cut_before_a_split_character),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
