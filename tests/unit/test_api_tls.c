/* tests/unit/test_api_tls.c: the admin API's certificate and bearer keys:
 * generated once into data_dir with mode 0600 and reused, configured keys
 * parsed and checked, and the key comparison. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api_tls.h"
#include "util/log.h"

struct fx {
    char dir[64];
    struct mk_config cfg;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    strcpy(f->dir, "/tmp/mika-test-api-tls-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    config_defaults(&f->cfg);
    snprintf(f->cfg.api_data_dir, sizeof(f->cfg.api_data_dir), "%s/data", f->dir);
    mk_log_setup(MK_LOG_ERROR, MK_LOG_TEXT, 2);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static unsigned mode_of(const struct fx *f, const char *name)
{
    char path[256];
    snprintf(path, sizeof(path), "%.200s/%s", f->cfg.api_data_dir, name);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (unsigned)(st.st_mode & 0777);
}

static char *read_text(const struct fx *f, const char *name)
{
    char path[256];
    snprintf(path, sizeof(path), "%.200s/%s", f->cfg.api_data_dir, name);
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    static char buf[8192];
    size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    return buf;
}

static void test_first_load_generates_private_files_and_the_next_reuses_them(void **state)
{
    struct fx *f = *state;
    struct api_tls a, b;
    struct mk_errbuf eb;
    assert_int_equal(api_tls_load(&a, &f->cfg, &eb), 0);
    assert_true(a.generated);
    assert_int_equal(a.nkeys, 1);
    assert_int_equal(mode_of(f, API_TLS_CERT_FILE), 0600);
    assert_int_equal(mode_of(f, API_TLS_KEY_FILE), 0600);
    assert_int_equal(mode_of(f, API_TLS_BEARER_FILE), 0600);
    assert_int_equal(mode_of(f, "."), 0700);
    char key[64];
    snprintf(key, sizeof(key), "%.60s", read_text(f, API_TLS_BEARER_FILE));
    assert_int_equal(strlen(key), 41);
    assert_int_equal(key[40], '\n');
    key[40] = '\0';
    assert_true(api_tls_key_ok(&a, key, 40));
    assert_int_equal(strlen(a.fingerprint), 32 * 3 - 1);

    assert_int_equal(api_tls_load(&b, &f->cfg, &eb), 0);
    assert_false(b.generated);
    assert_string_equal(a.fingerprint, b.fingerprint);
    assert_string_equal(a.cert_pem, b.cert_pem);
    assert_string_equal(a.key_pem, b.key_pem);
    assert_true(api_tls_key_ok(&b, key, 40));
    api_tls_fini(&a);
    api_tls_fini(&b);
}

static void test_key_check_takes_only_the_exact_key(void **state)
{
    struct fx *f = *state;
    snprintf(f->cfg.api_keys, sizeof(f->cfg.api_keys), " aaaaaaaaaaaaaaaa , bbbbbbbbbbbbbbbbbb ");
    struct api_tls t;
    struct mk_errbuf eb;
    assert_int_equal(api_tls_load(&t, &f->cfg, &eb), 0);
    assert_int_equal(t.nkeys, 2);
    assert_true(api_tls_key_ok(&t, "aaaaaaaaaaaaaaaa", 16));
    assert_true(api_tls_key_ok(&t, "bbbbbbbbbbbbbbbbbb", 18));
    assert_false(api_tls_key_ok(&t, "aaaaaaaaaaaaaaa", 15));
    assert_false(api_tls_key_ok(&t, "aaaaaaaaaaaaaaaaa", 17));
    assert_false(api_tls_key_ok(&t, "", 0));
    assert_false(api_tls_key_ok(&t, " aaaaaaaaaaaaaaaa", 17));
    /* Configured keys: no api.key file is written. */
    char path[256];
    snprintf(path, sizeof(path), "%.200s/%s", f->cfg.api_data_dir, API_TLS_BEARER_FILE);
    assert_int_equal(access(path, F_OK), -1);
    api_tls_fini(&t);
}

static void test_bad_configured_key_is_refused(void **state)
{
    struct fx *f = *state;
    struct api_tls t;
    struct mk_errbuf eb;
    snprintf(f->cfg.api_keys, sizeof(f->cfg.api_keys), "short");
    assert_int_equal(api_tls_load(&t, &f->cfg, &eb), MK_EINVAL);
    assert_string_equal(eb.msg, "api.keys: a key must be 16..128 characters");
    snprintf(f->cfg.api_keys, sizeof(f->cfg.api_keys), "aaaaaaaaaaaaaaa*a");
    assert_int_equal(api_tls_load(&t, &f->cfg, &eb), MK_EINVAL);
    assert_string_equal(eb.msg, "api.keys: a key has a character outside [A-Za-z0-9-._~+/=]");
}

static void test_a_certificate_without_its_key_is_an_error(void **state)
{
    struct fx *f = *state;
    struct api_tls t;
    struct mk_errbuf eb;
    assert_int_equal(api_tls_load(&t, &f->cfg, &eb), 0);
    api_tls_fini(&t);
    char path[256];
    snprintf(path, sizeof(path), "%.200s/%s", f->cfg.api_data_dir, API_TLS_KEY_FILE);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(api_tls_load(&t, &f->cfg, &eb), MK_EINVAL);
    assert_non_null(strstr(eb.msg, "api-cert.pem exists without"));
    assert_non_null(strstr(eb.msg, "remove it to generate a new pair"));
}

static void test_configured_files_are_read_and_a_missing_one_named(void **state)
{
    struct fx *f = *state;
    struct api_tls gen;
    struct mk_errbuf eb;
    assert_int_equal(api_tls_load(&gen, &f->cfg, &eb), 0);
    snprintf(f->cfg.api_cert, sizeof(f->cfg.api_cert), "%.200s/%s", f->cfg.api_data_dir,
             API_TLS_CERT_FILE);
    snprintf(f->cfg.api_key, sizeof(f->cfg.api_key), "%.200s/%s", f->cfg.api_data_dir,
             API_TLS_KEY_FILE);
    snprintf(f->cfg.api_data_dir, sizeof(f->cfg.api_data_dir), "%s/other", f->dir);
    struct api_tls t;
    assert_int_equal(api_tls_load(&t, &f->cfg, &eb), 0);
    assert_false(t.generated);
    assert_string_equal(t.fingerprint, gen.fingerprint);
    api_tls_fini(&t);
    snprintf(f->cfg.api_key, sizeof(f->cfg.api_key), "%s/nope.pem", f->dir);
    assert_int_equal(api_tls_load(&t, &f->cfg, &eb), MK_EIO);
    assert_non_null(strstr(eb.msg, "nope.pem: cannot open"));
    api_tls_fini(&gen);
}

static void test_generated_certificate_is_a_ten_year_self_signed_mika(void **state)
{
    char *cert, *key;
    struct mk_errbuf eb;
    assert_int_equal(api_tls_generate(&cert, &key, &eb), 0);
    assert_non_null(strstr(cert, "-----BEGIN CERTIFICATE-----"));
    assert_non_null(strstr(key, "PRIVATE KEY-----"));
    gnutls_x509_crt_t crt;
    assert_int_equal(gnutls_x509_crt_init(&crt), 0);
    gnutls_datum_t d = {(unsigned char *)cert, (unsigned)strlen(cert)};
    assert_int_equal(gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM), 0);
    char dn[256];
    size_t dnlen = sizeof(dn);
    assert_int_equal(gnutls_x509_crt_get_dn(crt, dn, &dnlen), 0);
    assert_string_equal(dn, "CN=mika");
    assert_true(gnutls_x509_crt_check_hostname(crt, "localhost"));
    assert_true(gnutls_x509_crt_check_ip(crt, (const unsigned char *)"\x7f\0\0\x01", 4, 0));
    time_t from = gnutls_x509_crt_get_activation_time(crt);
    time_t until = gnutls_x509_crt_get_expiration_time(crt);
    assert_true(until - from >= 10LL * 365 * 86400);
    unsigned verify = 0;
    assert_int_equal(gnutls_x509_crt_verify(crt, &crt, 1, 0, &verify), 0);
    assert_int_equal(verify, 0);
    gnutls_x509_crt_deinit(crt);
    char fp[100];
    assert_int_equal(api_tls_fingerprint(cert, fp, sizeof(fp), &eb), 0);
    assert_int_equal(api_tls_fingerprint("not a pem", fp, sizeof(fp), &eb), MK_EINVAL);
    gnutls_free(cert);
    gnutls_free(key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_first_load_generates_private_files_and_the_next_reuses_them, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_check_takes_only_the_exact_key, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bad_configured_key_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_certificate_without_its_key_is_an_error, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_configured_files_are_read_and_a_missing_one_named,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_generated_certificate_is_a_ten_year_self_signed_mika,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
