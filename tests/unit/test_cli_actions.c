/* tests/unit/test_cli_actions.c: cli/cli_actions.c — argv to the exact API
 * request (method, path, query, body) for every action, the usage errors and
 * their messages, .torrent files as raw or base64 bodies, escaping, base64,
 * and that help lists every action.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli_actions.h"

#define HEX40 "0123456789abcdef0123456789ABCDEF01234567"

/* Builds from a NULL-terminated list of words; returns the build's code. */
static int build(struct cli_req *req, struct mk_errbuf *eb, ...)
{
    char *argv[32];
    int argc = 0;
    va_list ap;
    va_start(ap, eb);
    for (char *s; (s = va_arg(ap, char *)) != NULL && argc < 32;) {
        argv[argc++] = s;
    }
    va_end(ap);
    return cli_actions_build(argc, argv, req, eb);
}

static void expect(const struct cli_req *req, const char *method, const char *path,
                   const char *body)
{
    assert_string_equal(req->method, method);
    assert_string_equal(req->path, path);
    if (body) {
        assert_non_null(req->body);
        assert_int_equal(req->body_len, strlen(body));
        assert_memory_equal(req->body, body, req->body_len);
        assert_string_equal(req->ctype, "application/json");
    } else {
        assert_null(req->body);
    }
}

static void test_user_add_posts_the_name_and_options_as_json(void **state)
{
    struct cli_req req;
    struct mk_errbuf eb = {{0}};
    assert_int_equal(build(&req, &eb, "user", "add", "alice", "--class", "2", "--up-mult=1.5",
                           "--may-download", "no", NULL),
                     MK_OK);
    expect(&req, "POST", "/api/v1/users",
           "{\"name\":\"alice\",\"class_id\":2,\"may_download\":false,\"upload_multiplier\":1.5}");
    assert_true(req.auth);
    cli_req_fini(&req);
}

static void test_user_add_without_a_name_sends_no_body(void **state)
{
    struct cli_req req;
    assert_int_equal(build(&req, NULL, "users", "add", NULL), MK_OK);
    expect(&req, "POST", "/api/v1/users", NULL);
    cli_req_fini(&req);
}

static void test_user_get_digits_is_an_id_anything_else_a_passkey(void **state)
{
    struct cli_req req;
    assert_int_equal(build(&req, NULL, "user", "get", "42", NULL), MK_OK);
    expect(&req, "GET", "/api/v1/users/42", NULL);
    cli_req_fini(&req);
    assert_int_equal(build(&req, NULL, "user", "get", "aB3x", NULL), MK_OK);
    expect(&req, "GET", "/api/v1/users/passkey/aB3x", NULL);
    cli_req_fini(&req);
}

static void test_user_list_options_become_an_escaped_query(void **state)
{
    struct cli_req req;
    assert_int_equal(build(&req, NULL, "user", "list", "--limit", "5", "--enabled", "ON",
                           "--name", "a b&c", NULL),
                     MK_OK);
    expect(&req, "GET", "/api/v1/users?limit=5&enabled=true&name=a%20b%26c", NULL);
    assert_ptr_not_equal(req.cols, NULL);
    cli_req_fini(&req);
    assert_int_equal(build(&req, NULL, "user", "list", NULL), MK_OK);
    expect(&req, "GET", "/api/v1/users", NULL);
    cli_req_fini(&req);
}

static void test_user_update_patches_and_empty_name_clears_it(void **state)
{
    struct cli_req req;
    assert_int_equal(build(&req, NULL, "user", "update", "7", "--name", "", "--enabled", "false",
                           NULL),
                     MK_OK);
    expect(&req, "PATCH", "/api/v1/users/7", "{\"name\":null,\"enabled\":false}");
    cli_req_fini(&req);
}

static void test_user_update_without_an_option_is_a_usage_error(void **state)
{
    struct cli_req req;
    struct mk_errbuf eb = {{0}};
    assert_int_equal(build(&req, &eb, "user", "update", "7", NULL), MK_EINVAL);
    assert_string_equal(eb.msg, "user update: nothing to change (see user update --help)");
    assert_null(req.path);
}

static void test_user_rotate_delete_stats_peers_routes(void **state)
{
    struct cli_req req;
    assert_int_equal(build(&req, NULL, "user", "rotate", "3", NULL), MK_OK);
    expect(&req, "POST", "/api/v1/users/3/rotate", NULL);
    cli_req_fini(&req);
    assert_int_equal(build(&req, NULL, "user", "rotate", "3", "--passkey", "abc", NULL), MK_OK);
    expect(&req, "POST", "/api/v1/users/3/rotate", "{\"passkey\":\"abc\"}");
    cli_req_fini(&req);
    assert_int_equal(build(&req, NULL, "user", "delete", "3", NULL), MK_OK);
    expect(&req, "DELETE", "/api/v1/users/3", NULL);
    cli_req_fini(&req);
    assert_int_equal(build(&req, NULL, "user", "stats", "3", NULL), MK_OK);
    expect(&req, "GET", "/api/v1/users/3/stats", NULL);
    cli_req_fini(&req);
    assert_int_equal(build(&req, NULL, "user", "peers", "3", "--limit", "2", NULL), MK_OK);
    expect(&req, "GET", "/api/v1/users/3/peers?limit=2", NULL);
    cli_req_fini(&req);
}

static void test_path_arguments_are_percent_encoded(void **state)
{
    struct cli_req req;
    assert_int_equal(build(&req, NULL, "user", "delete", "../x?y", NULL), MK_OK);
    expect(&req, "DELETE", "/api/v1/users/..%2Fx%3Fy", NULL);
    cli_req_fini(&req);
}

static void test_torrent_add_hex_sends_the_info_hash(void **state)
{
    struct cli_req req;
    assert_int_equal(build(&req, NULL, "torrent", "add", HEX40, "--freeleech", "yes", NULL),
                     MK_OK);
    expect(&req, "POST", "/api/v1/torrents",
           "{\"freeleech\":true,\"info_hash\":\"" HEX40 "\"}");
    cli_req_fini(&req);
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

static void test_torrent_add_file_alone_is_the_raw_body(void **state)
{
    char path[] = "/tmp/mika-test-cli-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    static const char meta[] = "d4:infod6:lengthi1e4:name1:a12:piece lengthi16384e6:pieces0:ee";
    write_file(path, meta, sizeof(meta) - 1);
    struct cli_req req;
    assert_int_equal(build(&req, NULL, "torrent", "add", path, NULL), MK_OK);
    assert_string_equal(req.method, "POST");
    assert_string_equal(req.path, "/api/v1/torrents");
    assert_string_equal(req.ctype, "application/x-bittorrent");
    assert_int_equal(req.body_len, sizeof(meta) - 1);
    assert_memory_equal(req.body, meta, req.body_len);
    cli_req_fini(&req);
    unlink(path);
}

static void test_torrent_add_file_with_options_is_base64_json(void **state)
{
    char path[] = "/tmp/mika-test-cli-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    write_file(path, "d1:xi1ee", 8);
    struct cli_req req;
    assert_int_equal(build(&req, NULL, "torrent", "add", path, "--name", "n", NULL), MK_OK);
    expect(&req, "POST", "/api/v1/torrents",
           "{\"name\":\"n\",\"torrent_base64\":\"ZDE6eGkxZWU=\"}");
    cli_req_fini(&req);
    unlink(path);
}

static void test_torrent_add_names_a_missing_file(void **state)
{
    struct cli_req req;
    struct mk_errbuf eb = {{0}};
    assert_int_equal(build(&req, &eb, "torrent", "add", "/nonexistent/x.torrent", NULL), MK_EIO);
    assert_string_equal(eb.msg, "torrent add: \"/nonexistent/x.torrent\" is neither a file nor a"
                                " 40-hex info_hash");
    assert_null(req.path);
    assert_null(req.body);
}

static void test_torrent_get_list_update_delete_peers(void **state)
{
    struct cli_req req;
    assert_int_equal(build(&req, NULL, "torrent", "get", HEX40, NULL), MK_OK);
    expect(&req, "GET", "/api/v1/torrents/" HEX40, NULL);
    cli_req_fini(&req);
    assert_int_equal(build(&req, NULL, "torrents", "list", "--sort", "seeders", "--deleted",
                           "1", "--offset", "10", NULL),
                     MK_OK);
    expect(&req, "GET", "/api/v1/torrents?offset=10&sort=seeders&deleted=true", NULL);
    cli_req_fini(&req);
    assert_int_equal(build(&req, NULL, "torrent", "update", HEX40, "--restore", "--down-mult",
                           "0", NULL),
                     MK_OK);
    expect(&req, "PATCH", "/api/v1/torrents/" HEX40,
           "{\"download_multiplier\":0.0,\"deleted\":false}");
    cli_req_fini(&req);
    assert_int_equal(build(&req, NULL, "torrent", "delete", HEX40, "--reason", "dupe", NULL),
                     MK_OK);
    expect(&req, "DELETE", "/api/v1/torrents/" HEX40, "{\"reason\":\"dupe\"}");
    cli_req_fini(&req);
    assert_int_equal(build(&req, NULL, "torrent", "peers", HEX40, NULL), MK_OK);
    expect(&req, "GET", "/api/v1/torrents/" HEX40 "/peers", NULL);
    cli_req_fini(&req);
}

static void test_torrent_delete_requires_a_reason(void **state)
{
    struct cli_req req;
    struct mk_errbuf eb = {{0}};
    assert_int_equal(build(&req, &eb, "torrent", "delete", HEX40, NULL), MK_EINVAL);
    assert_string_equal(eb.msg, "torrent delete: --reason is required");
}

static void test_whitelist_actions_and_prefix_escaping(void **state)
{
    struct cli_req req;
    assert_int_equal(build(&req, NULL, "whitelist", "add", "-XX", "X client", NULL), MK_OK);
    expect(&req, "POST", "/api/v1/whitelist", "{\"prefix\":\"-XX\",\"name\":\"X client\"}");
    cli_req_fini(&req);
    assert_int_equal(build(&req, NULL, "whitelist", "list", NULL), MK_OK);
    expect(&req, "GET", "/api/v1/whitelist", NULL);
    cli_req_fini(&req);
    /* docs/api.yaml: the one-byte prefix %01 is /api/v1/whitelist/%2501 */
    assert_int_equal(build(&req, NULL, "whitelist", "delete", "%01", NULL), MK_OK);
    expect(&req, "DELETE", "/api/v1/whitelist/%2501", NULL);
    cli_req_fini(&req);
}

static void test_class_actions(void **state)
{
    struct cli_req req;
    assert_int_equal(build(&req, NULL, "class", "list", NULL), MK_OK);
    expect(&req, "GET", "/api/v1/classes", NULL);
    cli_req_fini(&req);
    assert_int_equal(build(&req, NULL, "classes", "add", "vip", "--up-mult", "2", NULL), MK_OK);
    expect(&req, "POST", "/api/v1/classes", "{\"name\":\"vip\",\"upload_multiplier\":2.0}");
    cli_req_fini(&req);
    assert_int_equal(build(&req, NULL, "class", "get", "2", NULL), MK_OK);
    expect(&req, "GET", "/api/v1/classes/2", NULL);
    cli_req_fini(&req);
    assert_int_equal(build(&req, NULL, "class", "update", "2", "--may-download", "off", NULL),
                     MK_OK);
    expect(&req, "PATCH", "/api/v1/classes/2", "{\"may_download\":false}");
    cli_req_fini(&req);
    assert_int_equal(build(&req, NULL, "class", "delete", "2", NULL), MK_OK);
    expect(&req, "DELETE", "/api/v1/classes/2", NULL);
    cli_req_fini(&req);
}

static void test_settings_set_and_a_null_end_time(void **state)
{
    struct cli_req req;
    assert_int_equal(build(&req, NULL, "settings", "get", NULL), MK_OK);
    expect(&req, "GET", "/api/v1/settings", NULL);
    cli_req_fini(&req);
    assert_int_equal(build(&req, NULL, "settings", "set", "--event", "freeleech",
                           "--event-ends-at", "none", "--interval", "900", NULL),
                     MK_OK);
    expect(&req, "PUT", "/api/v1/settings",
           "{\"interval\":900,\"event\":\"freeleech\",\"event_ends_at\":null}");
    cli_req_fini(&req);
}

static void test_stats_health_metrics_take_no_action_word(void **state)
{
    struct cli_req req;
    struct mk_errbuf eb = {{0}};
    assert_int_equal(build(&req, NULL, "stats", NULL), MK_OK);
    expect(&req, "GET", "/api/v1/stats", NULL);
    assert_true(req.auth);
    cli_req_fini(&req);
    assert_int_equal(build(&req, NULL, "health", NULL), MK_OK);
    expect(&req, "GET", "/health", NULL);
    assert_false(req.auth);
    cli_req_fini(&req);
    assert_int_equal(build(&req, NULL, "metrics", NULL), MK_OK);
    assert_int_equal(req.view, CLI_VIEW_TEXT);
    cli_req_fini(&req);
    assert_int_equal(build(&req, &eb, "stats", "now", NULL), MK_EINVAL);
    assert_string_equal(eb.msg, "stats: unexpected argument \"now\"");
}

static void test_usage_errors_name_what_is_wrong(void **state)
{
    struct cli_req req;
    struct mk_errbuf eb = {{0}};
    assert_int_equal(build(&req, &eb, NULL), MK_EINVAL);
    assert_string_equal(eb.msg, "no resource given (see mika client --help)");
    assert_int_equal(build(&req, &eb, "peer", "list", NULL), MK_EINVAL);
    assert_string_equal(eb.msg, "unknown resource \"peer\" (see mika client --help)");
    assert_int_equal(build(&req, &eb, "user", NULL), MK_EINVAL);
    assert_string_equal(eb.msg, "user: no action given (see mika client user --help)");
    assert_int_equal(build(&req, &eb, "user", "ban", "1", NULL), MK_EINVAL);
    assert_string_equal(eb.msg, "user: unknown action \"ban\" (see mika client user --help)");
    assert_int_equal(build(&req, &eb, "user", "get", NULL), MK_EINVAL);
    assert_string_equal(eb.msg, "user get: missing ID|PASSKEY");
    assert_int_equal(build(&req, &eb, "user", "get", "1", "2", NULL), MK_EINVAL);
    assert_string_equal(eb.msg, "user get: unexpected argument \"2\"");
    assert_int_equal(build(&req, &eb, "user", "add", "a", "--colour", "red", NULL), MK_EINVAL);
    assert_string_equal(eb.msg, "user add: unknown option \"--colour\" (see user add --help)");
    assert_int_equal(build(&req, &eb, "user", "add", "a", "--id", NULL), MK_EINVAL);
    assert_string_equal(eb.msg, "user add: --id needs a value");
    assert_int_equal(build(&req, &eb, "user", "add", "a", "--id", "1", "--id=2", NULL),
                     MK_EINVAL);
    assert_string_equal(eb.msg, "user add: --id given twice");
    assert_int_equal(build(&req, &eb, "user", "add", "a", "--id", "12x", NULL), MK_EINVAL);
    assert_string_equal(eb.msg, "user add: --id: \"12x\" is not an integer");
    assert_int_equal(build(&req, &eb, "user", "add", "a", "--enabled", "maybe", NULL), MK_EINVAL);
    assert_string_equal(eb.msg, "user add: --enabled: \"maybe\" is not true or false");
    assert_int_equal(build(&req, &eb, "user", "add", "a", "--up-mult", "inf", NULL), MK_EINVAL);
    assert_string_equal(eb.msg, "user add: --up-mult: \"inf\" is not a number");
    assert_int_equal(build(&req, &eb, "torrent", "update", HEX40, "--restore=yes", NULL),
                     MK_EINVAL);
    assert_string_equal(eb.msg, "torrent update: --restore takes no value");
}

static void test_double_dash_ends_options(void **state)
{
    struct cli_req req;
    assert_int_equal(build(&req, NULL, "user", "add", "--", "--weird", NULL), MK_OK);
    expect(&req, "POST", "/api/v1/users", "{\"name\":\"--weird\"}");
    cli_req_fini(&req);
}

static void test_escape_keeps_only_unreserved_bytes(void **state)
{
    char *e = cli_actions_escape("aZ09-._~ /%\xc3\xa9");
    assert_string_equal(e, "aZ09-._~%20%2F%25%C3%A9");
    free(e);
}

static void test_base64_matches_rfc4648_vectors(void **state)
{
    static const char *const in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const out[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=",
                                      "Zm9vYmFy"};
    for (size_t i = 0; i < 7; i++) {
        char *b = cli_actions_base64((const unsigned char *)in[i], strlen(in[i]));
        assert_string_equal(b, out[i]);
        free(b);
    }
}

static void test_help_lists_every_action_and_refuses_unknown_names(void **state)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_true(cli_actions_help(f, NULL, NULL));
    fclose(f);
    static const char *const lines[] = {
        "user add [NAME]", "user get ID|PASSKEY", "user list", "user update ID",
        "user rotate ID", "user delete ID", "user stats ID", "user peers ID",
        "torrent add FILE|HEX", "torrent get HEX", "torrent list", "torrent update HEX",
        "torrent delete HEX --reason TEXT", "torrent peers HEX", "whitelist add PREFIX NAME",
        "whitelist list", "whitelist delete PREFIX", "class list", "class add NAME",
        "class get ID", "class update ID", "class delete ID", "settings get", "settings set",
        "  stats ", "  health ", "  metrics ",
    };
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        if (!strstr(text, lines[i])) {
            fail_msg("help lacks \"%s\"", lines[i]);
        }
    }
    free(text);
    f = open_memstream(&text, &len);
    assert_true(cli_actions_help(f, "user", "add"));
    fclose(f);
    assert_non_null(strstr(text, "--may-download true|false"));
    assert_null(strstr(text, "user get"));
    free(text);
    assert_false(cli_actions_help(stdout, "nope", NULL));
    assert_false(cli_actions_help(stdout, "user", "nope"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_user_add_posts_the_name_and_options_as_json),
        cmocka_unit_test(test_user_add_without_a_name_sends_no_body),
        cmocka_unit_test(test_user_get_digits_is_an_id_anything_else_a_passkey),
        cmocka_unit_test(test_user_list_options_become_an_escaped_query),
        cmocka_unit_test(test_user_update_patches_and_empty_name_clears_it),
        cmocka_unit_test(test_user_update_without_an_option_is_a_usage_error),
        cmocka_unit_test(test_user_rotate_delete_stats_peers_routes),
        cmocka_unit_test(test_path_arguments_are_percent_encoded),
        cmocka_unit_test(test_torrent_add_hex_sends_the_info_hash),
        cmocka_unit_test(test_torrent_add_file_alone_is_the_raw_body),
        cmocka_unit_test(test_torrent_add_file_with_options_is_base64_json),
        cmocka_unit_test(test_torrent_add_names_a_missing_file),
        cmocka_unit_test(test_torrent_get_list_update_delete_peers),
        cmocka_unit_test(test_torrent_delete_requires_a_reason),
        cmocka_unit_test(test_whitelist_actions_and_prefix_escaping),
        cmocka_unit_test(test_class_actions),
        cmocka_unit_test(test_settings_set_and_a_null_end_time),
        cmocka_unit_test(test_stats_health_metrics_take_no_action_word),
        cmocka_unit_test(test_usage_errors_name_what_is_wrong),
        cmocka_unit_test(test_double_dash_ends_options),
        cmocka_unit_test(test_escape_keeps_only_unreserved_bytes),
        cmocka_unit_test(test_base64_matches_rfc4648_vectors),
        cmocka_unit_test(test_help_lists_every_action_and_refuses_unknown_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
