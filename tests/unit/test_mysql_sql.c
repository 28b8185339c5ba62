/* tests/unit/test_mysql_sql.c: the mysql backend's pure parts (store/mysql_sql.c):
 * the statement builder, the row readers and the dsn parser. No server.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "store/mysql_admin.h"

static void test_text_and_bytes_are_hex_literals_whatever_they_hold(void **state)
{
    struct my_sql q = {0};
    my_sqlf(&q, "SELECT ");
    my_sql_text(&q, "a'\\\"; DROP");
    my_sqlf(&q, ", ");
    my_sql_bytes(&q, "\x00\xff", 2);
    my_sqlf(&q, ", ");
    my_sql_text_or_null(&q, "");
    my_sqlf(&q, ", ");
    my_sql_text(&q, "");
    assert_int_equal(q.err, 0);
    assert_string_equal(q.p,
                        "SELECT _utf8mb4 X'61275c223b2044524f50', X'00ff', NULL, _utf8mb4 X''");
    assert_int_equal(q.len, strlen(q.p));
    my_sql_reset(&q);
    assert_int_equal(q.len, 0);
    my_sqlf(&q, "%d", 7);
    assert_string_equal(q.p, "7");
    my_sql_free(&q);
}

static void test_a_statement_past_the_cap_is_elimit_and_stays_so(void **state)
{
    struct my_sql q = {0};
    static char chunk[64 * 1024];
    memset(chunk, 'a', sizeof(chunk) - 1);
    for (int i = 0; i < 40 && q.err == 0; i++) {
        my_sql_text(&q, chunk);
    }
    assert_int_equal(q.err, MK_ELIMIT);
    assert_true(q.len < MY_SQL_MAX);
    size_t len = q.len;
    my_sqlf(&q, "more");
    assert_int_equal(q.len, len);
    my_sql_free(&q);
}

static void test_readers_take_null_negatives_and_cut_at_utf8(void **state)
{
    char *v[] = {NULL, "-5", "18446744073709551615", "1", "caf\xc3\xa9", "70000"};
    unsigned long len[] = {0, 2, 20, 1, 5, 5};
    struct my_row r = {.v = v, .len = len, .n = 6};
    assert_true(my_col_null(&r, 0));
    assert_true(my_col_null(&r, 9));
    assert_int_equal(my_col_int(&r, 0), 0);
    assert_int_equal(my_col_int(&r, 1), -5);
    assert_int_equal(my_col_u64(&r, 1), 0);
    assert_true(my_col_u64(&r, 2) == UINT64_MAX);
    assert_true(my_col_bool(&r, 3));
    assert_int_equal(my_col_u32(&r, 5, 1000), 1000);
    char out[5];
    assert_true(my_col_text(&r, 4, out, sizeof(out)));
    assert_string_equal(out, "caf"); /* never half of the two-byte é */
    char all[8];
    assert_false(my_col_text(&r, 4, all, sizeof(all)));
    assert_string_equal(all, "caf\xc3\xa9");
    assert_false(my_col_text(&r, 0, all, sizeof(all)));
    assert_string_equal(all, "");
}

static void test_dsn_parts_are_decoded_and_defaulted(void **state)
{
    struct my_dsn d;
    struct mk_errbuf eb;
    assert_int_equal(my_dsn_parse("mysql://a%40b:p%3A%2F%40w@db.example:3307/si%74e", &d, &eb), 0);
    assert_string_equal(d.user, "a@b");
    assert_string_equal(d.pass, "p:/@w");
    assert_string_equal(d.host, "db.example");
    assert_int_equal(d.port, 3307);
    assert_string_equal(d.db, "site");
    my_dsn_free(&d);
    /* An unencoded '@' in the password: the last one ends the user part. */
    assert_int_equal(my_dsn_parse("mysql://u:p@ss@h/db", &d, &eb), 0);
    assert_string_equal(d.pass, "p@ss");
    assert_string_equal(d.host, "h");
    assert_int_equal(d.port, 3306);
    my_dsn_free(&d);
    assert_int_equal(my_dsn_parse("mysql://[::1]:4000/db", &d, &eb), 0);
    assert_null(d.user);
    assert_null(d.pass);
    assert_string_equal(d.host, "::1");
    assert_int_equal(d.port, 4000);
    my_dsn_free(&d);
    assert_int_equal(my_dsn_parse("mysql://u@h/db", &d, &eb), 0);
    assert_string_equal(d.user, "u");
    assert_null(d.pass);
    my_dsn_free(&d);
}

static void test_a_bad_dsn_names_its_part_and_never_the_password(void **state)
{
    const struct {
        const char *dsn, *says;
    } bad[] = {
        {"postgresql://u:s3cret@h/db", "must start with mysql://"},
        {"mysql://u:s3cret@h:0/db", "the port is not a number in 1..65535"},
        {"mysql://u:s3cret@h:65536/db", "the port is not a number in 1..65535"},
        {"mysql://u:s3cret@h:/db", "the port is not a number in 1..65535"},
        {"mysql://u:s3cret@h:33x/db", "the port is not a number in 1..65535"},
        {"mysql://u:s3cret@h:3306", "no database name"},
        {"mysql://u:s3cret@h/", "no database name"},
        {"mysql://u:s3cret@:3306/db", "no host"},
        {"mysql://u:s3cret@/db", "no host"},
        {"mysql://u:s3cret%zz@h/db", "bad percent-encoding in the password"},
        {"mysql://u:s3cret%4@h/db", "bad percent-encoding in the password"},
        {"mysql://u%:s3cret@h/db", "bad percent-encoding in the user name"},
        {"mysql://u:s3cret%00@h/db", "bad percent-encoding in the password"},
        {"mysql://u:s3cret@h/d%zz", "bad percent-encoding in the database name"},
        {"mysql://u:s3cret@h/a/b", "the database name has a '/'"},
        {"mysql://u:s3cret@h/db?ssl=1", "parameters (?... or #...) are not supported"},
        {"mysql://u:s3cret@[::1/db", "unclosed [ in the host"},
        {"mysql://u:s3cret@[::1]x/db", "junk after the [host]"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct my_dsn d;
        struct mk_errbuf eb = {{0}};
        assert_int_equal(my_dsn_parse(bad[i].dsn, &d, &eb), MK_EINVAL);
        if (!strstr(eb.msg, bad[i].says) || strstr(eb.msg, "s3cret")) {
            fail_msg("%s: %s", bad[i].dsn, eb.msg);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_and_bytes_are_hex_literals_whatever_they_hold),
        cmocka_unit_test(test_a_statement_past_the_cap_is_elimit_and_stays_so),
        cmocka_unit_test(test_readers_take_null_negatives_and_cut_at_utf8),
        cmocka_unit_test(test_dsn_parts_are_decoded_and_defaulted),
        cmocka_unit_test(test_a_bad_dsn_names_its_part_and_never_the_password),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
