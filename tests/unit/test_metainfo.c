/* tests/unit/test_metainfo.c: the .torrent decoder: what it reads, and every
 * way it refuses a file. Inputs end at a guard page, so an over-read faults. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "guard.h"
#include "proto/metainfo.h"

#define INFO1                                                                                      \
    "d6:lengthi12345e4:name8:file.iso12:piece lengthi16384e6:pieces20:AAAAAAAAAAAAAAAAAAAA"       \
    "7:privatei1ee"

static int parse(const char *text, struct metainfo *m, struct mk_errbuf *eb)
{
    size_t len = strlen(text);
    char *g = guard_dup(text, len);
    int rc = metainfo_parse((const uint8_t *)g, len, m, eb);
    /* Views point into the guarded copy: re-base them onto text for checks. */
    if (rc == 0) {
        m->info.p = text + (m->info.p - g);
        m->name.p = text + (m->name.p - g);
    }
    guard_free(g, len);
    return rc;
}

static void expect_refused(const char *text, const char *msg)
{
    struct metainfo m;
    struct mk_errbuf eb = {{0}};
    int rc = parse(text, &m, &eb);
    if (rc != MK_EINVAL || strcmp(eb.msg, msg) != 0) {
        fail_msg("%s: got %d \"%s\", want \"%s\"", text, rc, eb.msg, msg);
    }
    assert_int_equal(m.info.len, 0);
}

static void test_single_file_private_torrent(void **state)
{
    const char *t = "d8:announce20:http://x/pk/announce4:info" INFO1 "e";
    struct metainfo m;
    struct mk_errbuf eb;
    assert_int_equal(parse(t, &m, &eb), 0);
    /* The info span is exactly the info value's bytes. */
    assert_int_equal(m.info.len, strlen(INFO1));
    assert_memory_equal(m.info.p, INFO1, strlen(INFO1));
    assert_int_equal(m.name.len, 8);
    assert_memory_equal(m.name.p, "file.iso", 8);
    assert_int_equal(m.total_length, 12345);
    assert_int_equal(m.files, 1);
    assert_true(m.has_private);
    assert_true(m.is_private);
}

static void test_multi_file_lengths_are_summed(void **state)
{
    const char *t = "d4:infod5:filesld6:lengthi5e4:pathl1:aeed6:lengthi4000000000e4:pathl1:b1:ceee"
                    "4:name3:dir12:piece lengthi1e6:pieces0:ee";
    struct metainfo m;
    struct mk_errbuf eb;
    assert_int_equal(parse(t, &m, &eb), 0);
    assert_int_equal(m.total_length, 4000000005ull);
    assert_int_equal(m.files, 2);
    assert_false(m.has_private);
    assert_false(m.is_private);
}

static void test_private_zero_is_public(void **state)
{
    const char *t = "d4:infod6:lengthi1e4:name1:x12:piece lengthi1e6:pieces0:7:privatei0eee";
    struct metainfo m;
    struct mk_errbuf eb;
    assert_int_equal(parse(t, &m, &eb), 0);
    assert_true(m.has_private);
    assert_false(m.is_private);
}

static void test_unknown_keys_are_skipped_whatever_they_hold(void **state)
{
    const char *t = "d1:ali-3ei0ed1:xleee4:infod6:lengthi1e4:name1:x12:piece lengthi1e"
                    "6:pieces0:1:zd1:qi1eee1:zi2ee";
    struct metainfo m;
    struct mk_errbuf eb;
    assert_int_equal(parse(t, &m, &eb), 0);
    assert_int_equal(m.total_length, 1);
}

static void test_refuses_non_canonical_integers(void **state)
{
    expect_refused("d4:infod6:lengthi01e4:name1:x12:piece lengthi1e6:pieces0:ee",
                   "at byte 17: leading zero");
    expect_refused("d1:ai-0e4:infod6:lengthi1e4:name1:x12:piece lengthi1e6:pieces0:ee",
                   "at byte 6: negative zero");
    expect_refused("d1:aie4:infod6:lengthi1e4:name1:x12:piece lengthi1e6:pieces0:ee",
                   "at byte 5: expected a digit");
    expect_refused("d1:ai9223372036854775808ee", "at byte 23: number out of range");
    expect_refused("d1:ai1x", "at byte 6: expected 'e' after an integer");
}

static void test_refuses_bad_strings(void **state)
{
    expect_refused("d1:a5:abce", "at byte 6: string runs past the end");
    expect_refused("d1:a05:abcdee", "at byte 4: leading zero");
    expect_refused("d1:a99999999999999999999999:x", "at byte 5: number out of range");
    expect_refused("d1:a3", "at byte 5: expected ':' after a string length");
}

static void test_refuses_unsorted_and_duplicate_keys(void **state)
{
    expect_refused("d1:bi1e1:ai1ee", "at byte 7: dictionary keys not sorted");
    expect_refused("d1:ai1e1:ai1ee", "at byte 7: duplicate dictionary key");
    expect_refused("d2:abi1e1:ai1ee", "at byte 8: dictionary keys not sorted");
    expect_refused("di1ei1ee", "at byte 1: dictionary key is not a string");
}

static void test_refuses_structure_errors(void **state)
{
    expect_refused("", "empty file");
    expect_refused("le", "metainfo: not a dictionary");
    expect_refused("de", "info: missing");
    expect_refused("d4:info3:abce", "info: not a dictionary");
    expect_refused("d4:infod6:lengthi1e4:name1:x12:piece lengthi1e6:pieces0:eex",
                   "at byte 58: trailing bytes after the metainfo dictionary");
    expect_refused("d4:infod6:lengthi1e", "at byte 19: unterminated dictionary");
    expect_refused("d1:al", "at byte 5: unterminated list");
    expect_refused("d1:ax", "at byte 4: not a bencoded value");
}

static void test_refuses_incomplete_info(void **state)
{
    expect_refused("d4:infod6:lengthi1e12:piece lengthi1e6:pieces0:ee", "info.name: missing");
    expect_refused("d4:infod6:lengthi1e4:name1:x6:pieces0:ee", "info.piece length: missing");
    expect_refused("d4:infod6:lengthi1e4:name1:x12:piece lengthi1eee", "info.pieces: missing");
    expect_refused("d4:infod4:name1:x12:piece lengthi1e6:pieces0:ee",
                   "info.length or info.files: missing");
    expect_refused("d4:infod5:filesld6:lengthi1e4:pathl1:aeee6:lengthi1e4:name1:x"
                   "12:piece lengthi1e6:pieces0:ee",
                   "info: both length and files");
}

static void test_refuses_bad_info_values(void **state)
{
    expect_refused("d4:infod6:lengthi-1e4:name1:x12:piece lengthi1e6:pieces0:ee",
                   "info.length: negative");
    expect_refused("d4:infod6:length1:14:name1:x12:piece lengthi1e6:pieces0:ee",
                   "info.length: not an integer");
    expect_refused("d4:infod6:lengthi1e4:namei1e12:piece lengthi1e6:pieces0:ee",
                   "info.name: not a string");
    expect_refused("d4:infod6:lengthi1e4:name1:x12:piece lengthi0e6:pieces0:ee",
                   "info.piece length: must be positive");
    expect_refused("d4:infod6:lengthi1e4:name1:x12:piece lengthi1e6:pieces3:abcee",
                   "info.pieces: length 3 is not a multiple of 20");
    expect_refused("d4:infod6:lengthi1e4:name1:x12:piece lengthi1e6:pieces0:7:privatei2eee",
                   "info.private: must be 0 or 1");
    expect_refused("d4:infod5:filesle4:name1:x12:piece lengthi1e6:pieces0:ee",
                   "info.files: empty");
    expect_refused("d4:infod5:filesld4:pathl1:aeee4:name1:x12:piece lengthi1e6:pieces0:ee",
                   "info.files[]: length missing");
    expect_refused("d4:infod5:filesld6:lengthi1eee4:name1:x12:piece lengthi1e6:pieces0:ee",
                   "info.files[]: path missing");
    expect_refused("d4:infod5:filesld6:lengthi9223372036854775807e4:pathl1:aeed"
                   "6:lengthi9223372036854775807e4:pathl1:aeed6:lengthi2e4:pathl1:aeee"
                   "4:name1:x12:piece lengthi1e6:pieces0:ee",
                   "info.files: total length out of range");
}

static void test_refuses_nesting_deeper_than_the_limit(void **state)
{
    char buf[256];
    size_t n = 0;
    n += (size_t)sprintf(buf, "d1:a");
    for (int i = 0; i < METAINFO_MAX_DEPTH; i++) {
        buf[n++] = 'l';
    }
    for (int i = 0; i < METAINFO_MAX_DEPTH; i++) {
        buf[n++] = 'e';
    }
    buf[n++] = 'e';
    buf[n] = '\0';
    expect_refused(buf, "at byte 67: nested too deep");
    /* One level less is fine for the decoder (the file then lacks info). */
    memmove(buf + 4, buf + 5, n - 4);
    memmove(buf + 4 + METAINFO_MAX_DEPTH - 1, buf + 4 + METAINFO_MAX_DEPTH, n - 4 - 64);
    expect_refused(buf, "info: missing");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_file_private_torrent),
        cmocka_unit_test(test_multi_file_lengths_are_summed),
        cmocka_unit_test(test_private_zero_is_public),
        cmocka_unit_test(test_unknown_keys_are_skipped_whatever_they_hold),
        cmocka_unit_test(test_refuses_non_canonical_integers),
        cmocka_unit_test(test_refuses_bad_strings),
        cmocka_unit_test(test_refuses_unsorted_and_duplicate_keys),
        cmocka_unit_test(test_refuses_structure_errors),
        cmocka_unit_test(test_refuses_incomplete_info),
        cmocka_unit_test(test_refuses_bad_info_values),
        cmocka_unit_test(test_refuses_nesting_deeper_than_the_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
