/* tests/unit/test_err.c: mk_fail() and mk_err_name() (util/err.c).
 *
 * Covers: the message is formatted into the caller's buffer and the error
 * code passed through unchanged; a NULL buffer is allowed; a message longer
 * than the buffer is cut inside it, NUL-terminated, with no byte written past
 * it; every enum mk_err value has its own stable name.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "util/err.h"

static void test_fail_formats_message_and_returns_err(void **state)
{
    struct mk_errbuf eb = {{0}};
    int rc = mk_fail(&eb, MK_EINVAL, "numwant: %d exceeds max %u (%s)", 5000, 200u, "query");
    assert_int_equal(rc, MK_EINVAL);
    assert_string_equal(eb.msg, "numwant: 5000 exceeds max 200 (query)");
}

static void test_fail_passes_every_code_through(void **state)
{
    static const int codes[] = {MK_OK,       MK_ENOMEM,  MK_EINVAL, MK_ELIMIT, MK_ENOTFOUND,
                                MK_EUNAVAIL, MK_ENOTSUP, MK_EIO,    MK_EEXIST, 42,
                                INT_MIN};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        struct mk_errbuf eb = {{0}};
        assert_int_equal(mk_fail(&eb, codes[i], "code %d", codes[i]), codes[i]);
        char want[32];
        snprintf(want, sizeof(want), "code %d", codes[i]);
        assert_string_equal(eb.msg, want);
    }
}

static void test_fail_overwrites_previous_message(void **state)
{
    struct mk_errbuf eb = {{0}};
    mk_fail(&eb, MK_EIO, "a first, rather longer message");
    mk_fail(&eb, MK_EIO, "short");
    assert_string_equal(eb.msg, "short");
}

static void test_fail_tolerates_null_errbuf(void **state)
{
    assert_int_equal(mk_fail(NULL, MK_ENOMEM, "out of memory: %s", "x"), MK_ENOMEM);
    assert_int_equal(mk_fail(NULL, MK_OK, "nothing"), MK_OK);
}

static void test_fail_empty_format_gives_empty_message(void **state)
{
    struct mk_errbuf eb;
    memset(eb.msg, 'z', sizeof(eb.msg));
    /* A literal "" would trip -Wformat-zero-length; "%s" with "" is the same. */
    assert_int_equal(mk_fail(&eb, MK_EINVAL, "%s", ""), MK_EINVAL);
    assert_string_equal(eb.msg, "");
}

/* The buffer sits between two canaries: a cut must stay inside msg. */
struct guarded_errbuf {
    unsigned char before[32];
    struct mk_errbuf eb;
    unsigned char after[32];
};

static void test_fail_truncates_long_message_inside_buffer(void **state)
{
    struct guarded_errbuf g;
    memset(&g, 0xA5, sizeof(g));
    char longarg[1000];
    memset(longarg, 'q', sizeof(longarg) - 1);
    longarg[sizeof(longarg) - 1] = '\0';

    int rc = mk_fail(&g.eb, MK_ELIMIT, "key: %s", longarg);
    assert_int_equal(rc, MK_ELIMIT);
    assert_int_equal(strlen(g.eb.msg), sizeof(g.eb.msg) - 1);
    assert_memory_equal(g.eb.msg, "key: qqqq", 9);
    assert_int_equal(g.eb.msg[sizeof(g.eb.msg) - 2], 'q');
    for (size_t i = 0; i < sizeof(g.before); i++) {
        assert_int_equal(g.before[i], 0xA5);
        assert_int_equal(g.after[i], 0xA5);
    }
}

static void test_fail_message_of_exactly_buffer_size_minus_one_fits(void **state)
{
    struct mk_errbuf eb = {{0}};
    char s[sizeof(eb.msg)];
    memset(s, 'm', sizeof(s) - 1);
    s[sizeof(s) - 1] = '\0';
    mk_fail(&eb, MK_EINVAL, "%s", s);
    assert_string_equal(eb.msg, s);
}

static void test_err_name_of_every_value(void **state)
{
    assert_string_equal(mk_err_name(MK_OK), "OK");
    assert_string_equal(mk_err_name(MK_ENOMEM), "ENOMEM");
    assert_string_equal(mk_err_name(MK_EINVAL), "EINVAL");
    assert_string_equal(mk_err_name(MK_ELIMIT), "ELIMIT");
    assert_string_equal(mk_err_name(MK_ENOTFOUND), "ENOTFOUND");
    assert_string_equal(mk_err_name(MK_EUNAVAIL), "EUNAVAIL");
    assert_string_equal(mk_err_name(MK_ENOTSUP), "ENOTSUP");
    assert_string_equal(mk_err_name(MK_EIO), "EIO");
    assert_string_equal(mk_err_name(MK_EEXIST), "EEXIST");
}

/* The values are part of the contract (negative, stable): callers and logs
 * may compare them, so a renumbering must show up here. */
static void test_err_values_are_stable_and_negative(void **state)
{
    assert_int_equal(MK_OK, 0);
    assert_int_equal(MK_ENOMEM, -1);
    assert_int_equal(MK_EINVAL, -2);
    assert_int_equal(MK_ELIMIT, -3);
    assert_int_equal(MK_ENOTFOUND, -4);
    assert_int_equal(MK_EUNAVAIL, -5);
    assert_int_equal(MK_ENOTSUP, -6);
    assert_int_equal(MK_EIO, -7);
    assert_int_equal(MK_EEXIST, -8);
}

static void test_err_names_are_distinct(void **state)
{
    for (int a = MK_EEXIST; a <= MK_OK; a++) {
        for (int b = a + 1; b <= MK_OK; b++) {
            assert_string_not_equal(mk_err_name(a), mk_err_name(b));
        }
        assert_string_not_equal(mk_err_name(a), "EUNKNOWN");
    }
}

static void test_err_name_of_unknown_value(void **state)
{
    assert_string_equal(mk_err_name(1), "EUNKNOWN");
    assert_string_equal(mk_err_name(-9), "EUNKNOWN");
    assert_string_equal(mk_err_name(-1000), "EUNKNOWN");
    assert_string_equal(mk_err_name(INT_MIN), "EUNKNOWN");
    assert_string_equal(mk_err_name(INT_MAX), "EUNKNOWN");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fail_formats_message_and_returns_err),
        cmocka_unit_test(test_fail_passes_every_code_through),
        cmocka_unit_test(test_fail_overwrites_previous_message),
        cmocka_unit_test(test_fail_tolerates_null_errbuf),
        cmocka_unit_test(test_fail_empty_format_gives_empty_message),
        cmocka_unit_test(test_fail_truncates_long_message_inside_buffer),
        cmocka_unit_test(test_fail_message_of_exactly_buffer_size_minus_one_fits),
        cmocka_unit_test(test_err_name_of_every_value),
        cmocka_unit_test(test_err_values_are_stable_and_negative),
        cmocka_unit_test(test_err_names_are_distinct),
        cmocka_unit_test(test_err_name_of_unknown_value),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
