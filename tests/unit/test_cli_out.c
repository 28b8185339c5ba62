/* tests/unit/test_cli_out.c: cli/cli_out.c — exact text of values, objects,
 * tables and pages; control bytes from the server never reach the terminal;
 * long cells are cut.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_out.h"

static json_t *parse(const char *text)
{
    json_error_t err;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &err);
    if (!v) {
        fail_msg("bad test JSON: %s", err.text);
    }
    return v;
}

static const char *scalar(const char *text, char *buf, size_t cap)
{
    json_t *v = parse(text);
    cli_out_scalar(v, buf, cap);
    json_decref(v);
    return buf;
}

static void test_scalars_are_exact(void **state)
{
    char b[128];
    assert_string_equal(scalar("9007199254740993", b, sizeof(b)), "9007199254740993");
    assert_string_equal(scalar("1.5", b, sizeof(b)), "1.5");
    assert_string_equal(scalar("0.1", b, sizeof(b)), "0.1");
    assert_string_equal(scalar("0.001", b, sizeof(b)), "0.001");
    assert_string_equal(scalar("2.0", b, sizeof(b)), "2");
    assert_string_equal(scalar("null", b, sizeof(b)), "-");
    assert_string_equal(scalar("true", b, sizeof(b)), "true");
    assert_string_equal(scalar("\"caf\\u00e9\"", b, sizeof(b)), "caf\xc3\xa9");
    assert_string_equal(scalar("[\"a\", 2, null]", b, sizeof(b)), "a, 2, -");
    assert_string_equal(scalar("[{\"a\": 1}]", b, sizeof(b)), "[{\"a\":1}]");
}

static void test_control_bytes_from_the_server_are_replaced(void **state)
{
    char b[128];
    assert_string_equal(scalar("\"a\\u001b[31mb\\nc\\u007f\"", b, sizeof(b)), "a?[31mb?c?");
}

static void test_scalar_is_cut_to_the_buffer(void **state)
{
    char b[4];
    json_t *v = json_string("abcdef");
    assert_int_equal(cli_out_scalar(v, b, sizeof(b)), 3);
    assert_string_equal(b, "abc");
    json_decref(v);
}

static char *render(void (*fn)(FILE *, const json_t *, const char *const *), const char *text,
                    const char *const *cols)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    json_t *v = parse(text);
    fn(f, v, cols);
    json_decref(v);
    fclose(f);
    return out;
}

static void object_fn(FILE *f, const json_t *v, const char *const *cols)
{
    (void)cols;
    cli_out_object(f, v);
}

static void table_fn(FILE *f, const json_t *v, const char *const *cols)
{
    cli_out_table(f, v, cols, 0);
}

static void test_object_lines_are_aligned_and_nested_keys_dotted(void **state)
{
    char *s = render(object_fn,
                     "{\"id\": 3, \"passkey\": \"abc\", \"limits\": {\"up\": 1.5}, "
                     "\"warnings\": [\"not private\"]}",
                     NULL);
    assert_string_equal(s, "id:        3\n"
                           "passkey:   abc\n"
                           "limits.up: 1.5\n"
                           "warnings:  not private\n");
    free(s);
}

static void test_object_prints_arrays_of_objects_as_tables_last(void **state)
{
    char *s = render(object_fn, "{\"peers\": [{\"ip\": \"::1\", \"port\": 1}], \"n\": 1}", NULL);
    assert_string_equal(s, "n: 1\n"
                           "peers:\n"
                           "  ip   port\n"
                           "  ::1  1\n");
    free(s);
}

static void test_table_with_columns_shows_missing_members_as_dash(void **state)
{
    static const char *const cols[] = {"id", "name", NULL};
    char *s = render(table_fn, "[{\"id\": 1, \"name\": \"alice\", \"x\": 0}, {\"id\": 22}]", cols);
    assert_string_equal(s, "id  name\n"
                           "1   alice\n"
                           "22  -\n");
    free(s);
}

static void test_table_without_columns_takes_members_in_first_seen_order(void **state)
{
    char *s = render(table_fn, "[{\"b\": 1}, {\"a\": \"\\u00e9\\u00e9\", \"b\": 2}]", NULL);
    assert_string_equal(s, "b  a\n"
                           "1  -\n"
                           "2  \xc3\xa9\xc3\xa9\n");
    free(s);
}

static void test_empty_table_says_none(void **state)
{
    char *s = render(table_fn, "[]", NULL);
    assert_string_equal(s, "(none)\n");
    free(s);
}

static void test_long_cells_are_cut_with_dots(void **state)
{
    char text[256];
    char want[256];
    memset(want, 0, sizeof(want));
    snprintf(text, sizeof(text), "[{\"v\": \"%0100d\"}]", 0);
    char *s = render(table_fn, text, NULL);
    /* header "v" padded to nothing (one column), then 77 zeros and "..." */
    memcpy(want, "v\n", 2);
    memset(want + 2, '0', CLI_OUT_MAX_CELL - 3);
    strcat(want, "...\n");
    assert_string_equal(s, want);
    free(s);
}

static void test_auto_shows_a_page_as_table_then_its_counts(void **state)
{
    static const char *const cols[] = {"id", NULL};
    char *s = render(cli_out_auto,
                     "{\"users\": [{\"id\": 1, \"passkey\": \"p\"}], \"total\": 1, "
                     "\"offset\": 0, \"limit\": 100}",
                     cols);
    assert_string_equal(s, "id\n"
                           "1\n"
                           "\n"
                           "total:  1\n"
                           "offset: 0\n"
                           "limit:  100\n");
    free(s);
    s = render(cli_out_auto, "{\"users\": [], \"total\": 0}", cols);
    assert_string_equal(s, "(none)\n\ntotal: 0\n");
    free(s);
    s = render(cli_out_auto, "{\"id\": 1, \"name\": null}", cols);
    assert_string_equal(s, "id:   1\nname: -\n");
    free(s);
    /* An object with an empty list among strings is an object, not a page. */
    s = render(cli_out_auto, "{\"info_hash\": \"ab\", \"warnings\": []}", cols);
    assert_string_equal(s, "info_hash: ab\nwarnings:  \n");
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalars_are_exact),
        cmocka_unit_test(test_control_bytes_from_the_server_are_replaced),
        cmocka_unit_test(test_scalar_is_cut_to_the_buffer),
        cmocka_unit_test(test_object_lines_are_aligned_and_nested_keys_dotted),
        cmocka_unit_test(test_object_prints_arrays_of_objects_as_tables_last),
        cmocka_unit_test(test_table_with_columns_shows_missing_members_as_dash),
        cmocka_unit_test(test_table_without_columns_takes_members_in_first_seen_order),
        cmocka_unit_test(test_empty_table_says_none),
        cmocka_unit_test(test_long_cells_are_cut_with_dots),
        cmocka_unit_test(test_auto_shows_a_page_as_table_then_its_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
