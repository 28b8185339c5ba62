/* tests/unit/test_api_reply.c: the admin API's JSON rules and codecs: the
 * error shape, strict bodies (known fields, types, ranges), multipliers in
 * thousandths, whitelist prefix text, hex, passkeys. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"

static struct api_req req_of(const char *body)
{
    struct api_req r;
    memset(&r, 0, sizeof(r));
    r.body = body;
    r.len = strlen(body);
    return r;
}

/* The answer must be the error shape with this status, code and message. */
static void expect_error(struct api_resp *out, int status, const char *code, const char *msg)
{
    assert_int_equal(out->status, status);
    json_t *e = json_object_get(out->json, "error");
    assert_non_null(e);
    assert_int_equal(json_object_size(out->json), 1);
    assert_int_equal(json_object_size(e), 2);
    assert_string_equal(json_string_value(json_object_get(e, "code")), code);
    if (msg) {
        assert_string_equal(json_string_value(json_object_get(e, "message")), msg);
    }
    json_decref(out->json);
    out->json = NULL;
}

static const char *const fields[] = {"name", "enabled", "class_id", "upload_multiplier", NULL};

static void test_body_refuses_malformed_json_naming_the_place(void **state)
{
    struct api_resp out = {0};
    struct api_req r = req_of("{\"name\": ");
    assert_null(api_body(&r, false, fields, &out));
    assert_int_equal(out.status, 400);
    const char *m = json_string_value(
        json_object_get(json_object_get(out.json, "error"), "message"));
    assert_non_null(strstr(m, "body: line 1"));
    expect_error(&out, 400, "malformed_json", NULL);
}

static void test_body_refuses_duplicate_keys_and_non_objects(void **state)
{
    struct api_resp out = {0};
    struct api_req r = req_of("{\"name\":\"a\",\"name\":\"b\"}");
    assert_null(api_body(&r, false, fields, &out));
    expect_error(&out, 400, "malformed_json", NULL);
    r = req_of("[1]");
    assert_null(api_body(&r, false, fields, &out));
    expect_error(&out, 400, "wrong_type", "body: must be a JSON object");
}

static void test_body_refuses_unknown_fields_by_name(void **state)
{
    struct api_resp out = {0};
    struct api_req r = req_of("{\"name\":\"a\",\"nmae\":1}");
    assert_null(api_body(&r, false, fields, &out));
    expect_error(&out, 400, "unknown_field", "nmae: unknown field");
}

static void test_empty_body_is_an_empty_object_only_when_allowed(void **state)
{
    struct api_resp out = {0};
    struct api_req r = req_of("  \r\n");
    json_t *j = api_body(&r, true, fields, &out);
    assert_non_null(j);
    assert_int_equal(json_object_size(j), 0);
    json_decref(j);
    assert_null(api_body(&r, false, fields, &out));
    expect_error(&out, 400, "missing_field", "body: a JSON object is required");
}

static void test_typed_fields(void **state)
{
    struct api_resp out = {0};
    json_t *o = json_loads("{\"b\":true,\"n\":7,\"s\":\"x\",\"z\":null,\"neg\":-1,\"big\":5000}",
                           0, NULL);
    bool b = false;
    uint32_t n = 0;
    uint64_t u = 0;
    const char *s = NULL;
    assert_int_equal(api_get_bool(o, "b", &b, &out), 1);
    assert_true(b);
    assert_int_equal(api_get_bool(o, "missing", &b, &out), 0);
    assert_int_equal(api_get_bool(o, "n", &b, &out), -1);
    expect_error(&out, 400, "wrong_type", "n: must be true or false");
    assert_int_equal(api_get_u32(o, "n", 1, 10, &n, &out), 1);
    assert_int_equal(n, 7);
    assert_int_equal(api_get_u32(o, "big", 1, 4096, &n, &out), -1);
    expect_error(&out, 400, "out_of_range", "big: 5000 is not within 1..4096");
    assert_int_equal(api_get_u64(o, "neg", 100, &u, &out), -1);
    expect_error(&out, 400, "out_of_range", "neg: -1 is not within 0..100");
    assert_int_equal(api_get_u32(o, "s", 0, 1, &n, &out), -1);
    expect_error(&out, 400, "wrong_type", "s: must be an integer");
    assert_int_equal(api_get_str(o, "s", 8, false, &s, &out), 1);
    assert_string_equal(s, "x");
    assert_int_equal(api_get_str(o, "z", 8, true, &s, &out), 1);
    assert_null(s);
    assert_int_equal(api_get_str(o, "z", 8, false, &s, &out), -1);
    expect_error(&out, 400, "wrong_type", "z: must be a string");
    json_decref(o);
    o = json_loads("{\"e\":\"\",\"c\":\"a\\u0001b\",\"l\":\"abcdefghi\"}", 0, NULL);
    assert_int_equal(api_get_str(o, "e", 8, false, &s, &out), -1);
    expect_error(&out, 400, "out_of_range", "e: must be 1..8 bytes");
    assert_int_equal(api_get_str(o, "l", 8, false, &s, &out), -1);
    expect_error(&out, 400, "out_of_range", "l: must be 1..8 bytes");
    assert_int_equal(api_get_str(o, "c", 8, false, &s, &out), -1);
    expect_error(&out, 400, "invalid_value", "c: control characters are not allowed");
    json_decref(o);
}

static void test_multipliers_are_thousandths_with_at_most_three_decimals(void **state)
{
    struct api_resp out = {0};
    json_t *o = json_loads("{\"a\":1.5,\"b\":2,\"c\":0.001,\"d\":100,\"e\":1.2345,"
                           "\"f\":100.001,\"g\":-0.5,\"h\":\"1\",\"i\":0.1,\"j\":1.005}",
                           0, NULL);
    uint32_t m = 0;
    assert_int_equal(api_get_mult(o, "a", &m, &out), 1);
    assert_int_equal(m, 1500);
    assert_int_equal(api_get_mult(o, "b", &m, &out), 1);
    assert_int_equal(m, 2000);
    assert_int_equal(api_get_mult(o, "c", &m, &out), 1);
    assert_int_equal(m, 1);
    assert_int_equal(api_get_mult(o, "d", &m, &out), 1);
    assert_int_equal(m, MK_MULT_MAX);
    assert_int_equal(api_get_mult(o, "i", &m, &out), 1);
    assert_int_equal(m, 100);
    assert_int_equal(api_get_mult(o, "j", &m, &out), 1);
    assert_int_equal(m, 1005);
    assert_int_equal(api_get_mult(o, "e", &m, &out), -1);
    expect_error(&out, 400, "out_of_range", "e: at most 3 decimals");
    assert_int_equal(api_get_mult(o, "f", &m, &out), -1);
    expect_error(&out, 400, "out_of_range", "f: must be within 0..100");
    assert_int_equal(api_get_mult(o, "g", &m, &out), -1);
    expect_error(&out, 400, "out_of_range", "g: must be within 0..100");
    assert_int_equal(api_get_mult(o, "h", &m, &out), -1);
    expect_error(&out, 400, "wrong_type", "h: must be a number");
    json_decref(o);
    /* And back: 1100 is 1.1, not 1.1000000000000001. */
    json_t *j = json_pack("{s:o,s:o}", "x", api_mult_json(1100), "y", api_mult_json(1000));
    char *text = api_dump(j);
    assert_string_equal(text, "{\"x\":1.1,\"y\":1.0}");
    free(text);
    json_decref(j);
}

static void test_store_errors_map_to_statuses(void **state)
{
    struct api_resp out = {0};
    struct mk_errbuf eb = {"passkey"};
    api_store_error(&out, MK_EEXIST, &eb, "user");
    expect_error(&out, 409, "conflict", "passkey: already exists");
    struct mk_errbuf nf = {"user"};
    api_store_error(&out, MK_ENOTFOUND, &nf, "user");
    expect_error(&out, 404, "not_found", "user not found");
    struct mk_errbuf cl = {"class_id"};
    api_store_error(&out, MK_ENOTFOUND, &cl, "user");
    expect_error(&out, 404, "not_found", "class_id: no such class");
    struct mk_errbuf busy = {"sqlite: database is locked"};
    api_store_error(&out, MK_EUNAVAIL, &busy, "user");
    expect_error(&out, 503, "store_unavailable", NULL);
    api_store_error(&out, MK_EIO, &busy, "user");
    expect_error(&out, 500, "internal", NULL);
    /* Ids used up by a row at the top of the range: the table's state. */
    struct mk_errbuf ids = {"id: no user id left below 4294967295"};
    api_store_error(&out, MK_ELIMIT, &ids, "user");
    expect_error(&out, 409, "conflict", "id: no user id left below 4294967295; give an id");
    struct mk_errbuf ours = {"mysql: no room for prepared statements"};
    api_store_error(&out, MK_ELIMIT, &ours, "user");
    expect_error(&out, 500, "internal", NULL);
}

static void test_prefix_text_round_trips_any_bytes(void **state)
{
    uint8_t p[MK_PREFIX_MAX];
    size_t len;
    assert_int_equal(api_prefix_decode("-qB", p, &len), 0);
    assert_int_equal(len, 3);
    assert_memory_equal(p, "-qB", 3);
    assert_int_equal(api_prefix_decode("%01%ffx%25", p, &len), 0);
    assert_int_equal(len, 4);
    assert_memory_equal(p, "\x01\xffx%", 4);
    char text[3 * MK_PREFIX_MAX + 1];
    api_prefix_encode(p, len, text);
    assert_string_equal(text, "%01%FFx%25");
    const uint8_t space[] = {' ', 'a', 0x7f, 0};
    api_prefix_encode(space, 4, text);
    assert_string_equal(text, "%20a%7F%00");
    assert_int_equal(api_prefix_decode("", p, &len), -1);
    assert_int_equal(api_prefix_decode("%0", p, &len), -1);
    assert_int_equal(api_prefix_decode("%zz", p, &len), -1);
    assert_int_equal(api_prefix_decode("abcdefghijklmnopqrst", p, &len), 0);
    assert_int_equal(len, 20);
    assert_int_equal(api_prefix_decode("abcdefghijklmnopqrstu", p, &len), -1);
}

static void test_hex_and_passkeys(void **state)
{
    uint8_t h[20];
    assert_true(api_unhex20("0123456789ABCDEFabcdef0123456789abcdef01", h));
    char out[41];
    api_hex(h, 20, out);
    assert_string_equal(out, "0123456789abcdefabcdef0123456789abcdef01");
    assert_false(api_unhex20("0123456789abcdefabcdef0123456789abcdef0", h));
    assert_false(api_unhex20("0123456789abcdefabcdef0123456789abcdef0g", h));
    assert_true(api_passkey_ok("aZ09"));
    assert_false(api_passkey_ok(""));
    assert_false(api_passkey_ok("a-b"));
    char pk[33], other[33];
    assert_int_equal(api_random_passkey(pk), 0);
    assert_int_equal(api_random_passkey(other), 0);
    assert_int_equal(strlen(pk), 32);
    assert_true(api_passkey_ok(pk));
    assert_string_not_equal(pk, other);
}

static void test_path_ids(void **state)
{
    struct api_resp out = {0};
    uint32_t id = 0;
    assert_int_equal(api_param_id("4294967294", "id", &id, &out), 0);
    assert_int_equal(id, 4294967294u);
    assert_int_equal(api_param_id("0", "id", &id, &out), 0);
    assert_int_equal(id, 0);
    assert_int_equal(api_param_id("4294967295", "id", &id, &out), -1);
    expect_error(&out, 400, "invalid_value", "id: must be an integer 0..4294967294");
    assert_int_equal(api_param_id("12a", "id", &id, &out), -1);
    expect_error(&out, 400, "invalid_value", NULL);
    assert_int_equal(api_param_id("99999999999", "id", &id, &out), -1);
    expect_error(&out, 400, "invalid_value", NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_body_refuses_malformed_json_naming_the_place),
        cmocka_unit_test(test_body_refuses_duplicate_keys_and_non_objects),
        cmocka_unit_test(test_body_refuses_unknown_fields_by_name),
        cmocka_unit_test(test_empty_body_is_an_empty_object_only_when_allowed),
        cmocka_unit_test(test_typed_fields),
        cmocka_unit_test(test_multipliers_are_thousandths_with_at_most_three_decimals),
        cmocka_unit_test(test_store_errors_map_to_statuses),
        cmocka_unit_test(test_prefix_text_round_trips_any_bytes),
        cmocka_unit_test(test_hex_and_passkeys),
        cmocka_unit_test(test_path_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
