/* tests/unit/test_cli.c: cli/cli.c's cli_resolve — which source wins for the
 * URL, the key and the CA file (flags, MIKA_API_*, the daemon's config,
 * data_dir defaults), that the client's own variables do not upset the
 * daemon's config reader, and that no message quotes the key.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

struct fixture {
    char dir[64];
    char ini[128];
    char keyfile[128];
    char cert[128];
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    strcpy(fx->dir, "/tmp/mika-test-cli-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->ini, sizeof(fx->ini), "%s/mika.ini", fx->dir);
    snprintf(fx->keyfile, sizeof(fx->keyfile), "%s/api.key", fx->dir);
    snprintf(fx->cert, sizeof(fx->cert), "%s/api-cert.pem", fx->dir);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    unlink(fx->ini);
    unlink(fx->keyfile);
    unlink(fx->cert);
    rmdir(fx->dir);
    free(fx);
    return 0;
}

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_flags_win_over_the_environment(void **state)
{
    struct cli_flags fl = {.url = "https://h:1/", .key = "flagkey", .cacert = "/ca.pem"};
    char *env[] = {"MIKA_API_URL=https://env:2", "MIKA_API_KEY=envkey",
                   "MIKA_API_CACERT=/env.pem", NULL};
    struct cli_http_cfg cfg;
    assert_int_equal(cli_resolve(&fl, env, true, &cfg, NULL), MK_OK);
    assert_string_equal(cfg.url, "https://h:1"); /* trailing slash dropped */
    assert_string_equal(cfg.key, "flagkey");
    assert_string_equal(cfg.cacert, "/ca.pem");
}

static void test_environment_is_used_without_flags(void **state)
{
    struct cli_flags fl = {0};
    char *env[] = {"MIKA_API_URL=https://env:2", "MIKA_API_KEY=envkey",
                   "MIKA_API_CACERT=/env.pem", NULL};
    struct cli_http_cfg cfg;
    assert_int_equal(cli_resolve(&fl, env, true, &cfg, NULL), MK_OK);
    assert_string_equal(cfg.url, "https://env:2");
    assert_string_equal(cfg.key, "envkey");
    assert_string_equal(cfg.cacert, "/env.pem");
}

static void test_config_gives_url_and_data_dir_gives_key_and_cert(void **state)
{
    struct fixture *fx = *state;
    char ini[512];
    snprintf(ini, sizeof(ini), "[api]\nport = 35001\nbind = 0.0.0.0\ndata_dir = %s\n", fx->dir);
    put(fx->ini, ini);
    put(fx->keyfile, "  generatedkey0123456789  \n");
    put(fx->cert, "PEM");
    struct cli_flags fl = {.config = fx->ini};
    /* The client's variables must not reach the daemon's config reader, which
     * would refuse MIKA_API_URL as an unknown [api] key. */
    char *env[] = {"MIKA_API_CACERT=", "MIKA_API_KEY=x", "MIKA_API_CERT=/y", "HOME=/root", NULL};
    struct cli_http_cfg cfg;
    struct mk_errbuf eb = {{0}};
    assert_int_equal(cli_resolve(&fl, env, true, &cfg, &eb), MK_OK);
    assert_string_equal(cfg.url, "https://127.0.0.1:35001");
    assert_string_equal(cfg.key, "x");
    /* An empty MIKA_API_CACERT is "given": the system store. */
    assert_string_equal(cfg.cacert, "");
    char *env2[] = {"MIKA_API_URL=https://x:1", NULL};
    assert_int_equal(cli_resolve(&fl, env2, true, &cfg, &eb), MK_OK);
    assert_string_equal(cfg.url, "https://x:1");
    assert_string_equal(cfg.key, "generatedkey0123456789");
    assert_string_equal(cfg.cacert, fx->cert);
    char *env3[] = {"MIKA_API_CERT=/y", NULL};
    assert_int_equal(cli_resolve(&fl, env3, true, &cfg, &eb), MK_OK);
    assert_string_equal(cfg.cacert, "/y");
}

static void test_daemon_overrides_in_the_environment_apply(void **state)
{
    struct fixture *fx = *state;
    char dd[128];
    snprintf(dd, sizeof(dd), "MIKA_API_DATA_DIR=%s", fx->dir);
    put(fx->keyfile, "k");
    struct cli_flags fl = {0};
    char *env[] = {"MIKA_API_PORT=36000", "MIKA_API_BIND=::", dd, NULL};
    struct cli_http_cfg cfg;
    assert_int_equal(cli_resolve(&fl, env, true, &cfg, NULL), MK_OK);
    assert_string_equal(cfg.url, "https://[::1]:36000");
    assert_string_equal(cfg.key, "k");
    assert_string_equal(cfg.cacert, ""); /* no api-cert.pem there: the system store */
}

static void test_configured_keys_give_the_first(void **state)
{
    struct fixture *fx = *state;
    put(fx->ini, "[api]\nkeys = firstkey_0123456789, secondkey_0123456789\n"
                 "tls_cert = /etc/mika/cert.pem\ntls_key = /etc/mika/key.pem\n");
    struct cli_flags fl = {.config = fx->ini};
    char *env[] = {NULL};
    struct cli_http_cfg cfg;
    struct mk_errbuf eb = {{0}};
    int rc = cli_resolve(&fl, env, true, &cfg, &eb);
    if (rc != MK_OK) {
        fail_msg("%s", eb.msg);
    }
    assert_string_equal(cfg.url, "https://127.0.0.1:34001");
    assert_string_equal(cfg.key, "firstkey_0123456789");
    assert_string_equal(cfg.cacert, "/etc/mika/cert.pem");
}

static void test_key_file_flag_reads_the_first_line(void **state)
{
    struct fixture *fx = *state;
    put(fx->keyfile, "filekey\nsecond line\n");
    struct cli_flags fl = {.url = "https://h:1", .key_file = fx->keyfile, .cacert = ""};
    char *env[] = {"MIKA_API_KEY=envkey", NULL};
    struct cli_http_cfg cfg;
    assert_int_equal(cli_resolve(&fl, env, true, &cfg, NULL), MK_OK);
    assert_string_equal(cfg.key, "filekey");
}

static void test_missing_key_names_the_file_and_health_needs_none(void **state)
{
    struct fixture *fx = *state;
    char ini[512];
    snprintf(ini, sizeof(ini), "[api]\ndata_dir = %s\n", fx->dir);
    put(fx->ini, ini);
    struct cli_flags fl = {.config = fx->ini};
    char *env[] = {NULL};
    struct cli_http_cfg cfg;
    struct mk_errbuf eb = {{0}};
    assert_int_equal(cli_resolve(&fl, env, true, &cfg, &eb), MK_EIO);
    char want[256];
    snprintf(want, sizeof(want),
             "no API key: %s/api.key: No such file or directory (give --key, --key-file or"
             " MIKA_API_KEY, or run in the daemon's data_dir)",
             fx->dir);
    assert_string_equal(eb.msg, want);
    assert_int_equal(cli_resolve(&fl, env, false, &cfg, &eb), MK_OK);
    assert_string_equal(cfg.key, "");
}

static void test_a_bad_config_fails_with_the_daemons_message(void **state)
{
    struct fixture *fx = *state;
    put(fx->ini, "[api]\nport = 0\n");
    struct cli_flags fl = {.config = fx->ini};
    char *env[] = {NULL};
    struct cli_http_cfg cfg;
    struct mk_errbuf eb = {{0}};
    assert_int_equal(cli_resolve(&fl, env, true, &cfg, &eb), MK_EINVAL);
    assert_non_null(strstr(eb.msg, "mika.ini:2: api.port:"));
}

static void test_no_message_quotes_the_key(void **state)
{
    struct fixture *fx = *state;
    char big[2048];
    memset(big, 'S', sizeof(big) - 2);
    big[sizeof(big) - 2] = '\n';
    big[sizeof(big) - 1] = '\0';
    put(fx->keyfile, big);
    struct cli_flags fl = {.url = "https://h:1", .key_file = fx->keyfile};
    char *env[] = {NULL};
    struct cli_http_cfg cfg;
    struct mk_errbuf eb = {{0}};
    assert_int_not_equal(cli_resolve(&fl, env, true, &cfg, &eb), MK_OK);
    assert_null(strstr(eb.msg, "SSSS"));
    assert_string_equal(cfg.key, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_flags_win_over_the_environment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_environment_is_used_without_flags, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_gives_url_and_data_dir_gives_key_and_cert,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_daemon_overrides_in_the_environment_apply, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_configured_keys_give_the_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_file_flag_reads_the_first_line, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_missing_key_names_the_file_and_health_needs_none,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_bad_config_fails_with_the_daemons_message, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_no_message_quotes_the_key, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
