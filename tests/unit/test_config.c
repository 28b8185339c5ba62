/* tests/unit/test_config.c: conf/config.c — defaults, every value type, the
 * exact shape of every error message, env overrides, cross-key checks,
 * trusted proxy matching, and that docs/CONFIG.md and mika.example.ini list
 * every key with its default.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/config.h"

struct fixture {
    char dir[64];
    char path[96];
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    strcpy(fx->dir, "/tmp/mika-test-config-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->path, sizeof(fx->path), "%s/mika.ini", fx->dir);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    unlink(fx->path);
    rmdir(fx->dir);
    free(fx);
    return 0;
}

static const char *write_ini(void **state, const char *text)
{
    struct fixture *fx = *state;
    FILE *f = fopen(fx->path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
    return fx->path;
}

/* Loads text over the defaults; returns the result code. */
static int load_text(void **state, const char *text, char *const *envp, struct mk_config *cfg,
                     struct mk_errbuf *eb)
{
    config_defaults(cfg);
    memset(eb, 0, sizeof(*eb));
    return config_load(cfg, text ? write_ini(state, text) : NULL, envp, eb);
}

/* Expects failure with exactly "<path>:<line>: <rest>". */
static void expect_file_error(void **state, const char *text, int line, const char *rest)
{
    struct fixture *fx = *state;
    struct mk_config cfg;
    struct mk_errbuf eb;
    assert_int_equal(load_text(state, text, NULL, &cfg, &eb), MK_EINVAL);
    char want[512];
    snprintf(want, sizeof(want), "%s:%d: %s", fx->path, line, rest);
    assert_string_equal(eb.msg, want);
}

static void expect_env_error(void **state, const char *var, const char *msg)
{
    char *envp[] = {(char *)var, NULL};
    struct mk_config cfg;
    struct mk_errbuf eb;
    assert_int_equal(load_text(state, NULL, envp, &cfg, &eb), MK_EINVAL);
    assert_string_equal(eb.msg, msg);
}

static void test_defaults_are_the_documented_values(void **state)
{
    struct mk_config c;
    memset(&c, 0xAB, sizeof(c));
    config_defaults(&c);
    assert_int_equal(c.port, 34000);
    assert_true(c.ipv4);
    assert_true(c.ipv6);
    assert_string_equal(c.bind4, "0.0.0.0");
    assert_string_equal(c.bind6, "::");
    assert_int_equal(c.workers, 0);
    assert_string_equal(c.event_loop, "auto");
    assert_int_equal(c.max_request_bytes, 4096);
    assert_int_equal(c.max_request_line, 2048);
    assert_int_equal(c.max_connections, 10000);
    assert_int_equal(c.idle_timeout, 30);
    assert_int_equal(c.header_timeout, 10);
    assert_int_equal(c.max_keepalive_requests, 1000);
    assert_int_equal(c.interval, 1800);
    assert_int_equal(c.min_interval, 900);
    assert_int_equal(c.numwant_default, 30);
    assert_int_equal(c.numwant_max, 100);
    assert_int_equal(c.expiry_factor, 2);
    assert_int_equal(c.scrape_max_hashes, 24);
    assert_false(c.allow_ip_param);
    assert_true(c.whitelist);
    assert_string_equal(c.real_ip_header, "");
    assert_int_equal(c.ntrusted_proxies, 0);
    assert_string_equal(c.db_path, "./mika.db");
    assert_int_equal(c.log_level, MK_LOG_INFO);
    assert_int_equal(c.log_format, MK_LOG_TEXT);
}

static void test_load_without_file_or_env_keeps_defaults(void **state)
{
    struct mk_config def;
    struct mk_config c;
    struct mk_errbuf eb;
    config_defaults(&def);
    assert_int_equal(load_text(state, NULL, NULL, &c, &eb), 0);
    assert_memory_equal(&c, &def, sizeof(c));
}

static void test_file_sets_every_type(void **state)
{
    struct mk_config c;
    struct mk_errbuf eb;
    const char *ini = "; comment\n"
                      "# another comment\n"
                      "[server]\n"
                      "port = 6969\n"
                      "ipv6 = off\n"
                      "bind4 = 127.0.0.1\n"
                      "bind6 = \"::1\"\n"
                      "workers = 4\n"
                      "event_loop = poll\n"
                      "[http]\n"
                      "max_request_bytes = 8192\n"
                      "[tracker]\n"
                      "interval = 3600 ; inline comment\n"
                      "min_interval = 60\n"
                      "numwant_max = 1000\n"
                      "allow_ip_param = yes\n"
                      "whitelist = 0\n"
                      "[proxy]\n"
                      "real_ip_header = X-Forwarded-For\n"
                      "trusted = 10.0.0.0/8, ::1 ,fd00::/8\n"
                      "[store]\n"
                      "path = /var/lib/mika/mika.db\n"
                      "[log]\n"
                      "level = debug\n"
                      "format = json\n";
    assert_int_equal(load_text(state, ini, NULL, &c, &eb), 0);
    assert_int_equal(c.port, 6969);
    assert_true(c.ipv4);
    assert_false(c.ipv6);
    assert_string_equal(c.bind4, "127.0.0.1");
    assert_string_equal(c.bind6, "::1");
    assert_int_equal(c.workers, 4);
    assert_string_equal(c.event_loop, "poll");
    assert_int_equal(c.max_request_bytes, 8192);
    assert_int_equal(c.interval, 3600);
    assert_int_equal(c.min_interval, 60);
    assert_int_equal(c.numwant_max, 1000);
    assert_true(c.allow_ip_param);
    assert_false(c.whitelist);
    assert_string_equal(c.real_ip_header, "X-Forwarded-For");
    assert_int_equal(c.ntrusted_proxies, 3);
    assert_int_equal(c.trusted_proxies[0].family, AF_INET);
    assert_int_equal(c.trusted_proxies[0].prefix, 8);
    assert_int_equal(c.trusted_proxies[0].addr[0], 10);
    assert_int_equal(c.trusted_proxies[1].family, AF_INET6);
    assert_int_equal(c.trusted_proxies[1].prefix, 128);
    assert_int_equal(c.trusted_proxies[1].addr[15], 1);
    assert_int_equal(c.trusted_proxies[2].prefix, 8);
    assert_int_equal(c.trusted_proxies[2].addr[0], 0xfd);
    assert_string_equal(c.db_path, "/var/lib/mika/mika.db");
    assert_int_equal(c.log_level, MK_LOG_DEBUG);
    assert_int_equal(c.log_format, MK_LOG_JSON);
    /* Untouched keys keep their defaults. */
    assert_int_equal(c.numwant_default, 30);
    assert_int_equal(c.max_request_line, 2048);
}

static void test_bool_accepts_every_documented_spelling(void **state)
{
    static const char *const yes[] = {"true", "yes", "on", "1", "TRUE", "Yes"};
    static const char *const no[] = {"false", "no", "off", "0", "False", "OFF"};
    char ini[128];
    struct mk_config c;
    struct mk_errbuf eb;
    for (size_t i = 0; i < 6; i++) {
        snprintf(ini, sizeof(ini), "[tracker]\nallow_ip_param = %s\nwhitelist = %s\n", yes[i],
                 no[i]);
        assert_int_equal(load_text(state, ini, NULL, &c, &eb), 0);
        assert_true(c.allow_ip_param);
        assert_false(c.whitelist);
    }
}

static void test_unknown_key_names_key_and_its_line(void **state)
{
    expect_file_error(state,
                      "; mika\n"
                      "\n"
                      "[tracker]\n"
                      "interval = 1800\n"
                      "# comment\n"
                      "\n"
                      "intervall = 10\n",
                      7, "unknown key \"tracker.intervall\"");
}

static void test_unknown_section_is_reported_as_unknown_key(void **state)
{
    expect_file_error(state, "[server]\nport = 1\n[trackr]\ninterval = 5\n", 4,
                      "unknown key \"trackr.interval\"");
}

static void test_key_outside_any_section_is_unknown(void **state)
{
    expect_file_error(state, "port = 1\n", 1, "unknown key \"port\" (outside any [section])");
}

static void test_key_names_are_case_sensitive(void **state)
{
    expect_file_error(state, "[server]\nPort = 1\n", 2, "unknown key \"server.Port\"");
}

static void test_bad_number_message(void **state)
{
    expect_file_error(state, "[tracker]\n\n\n\n\n\n\n\n\n\n\ninterval = abc\n", 12,
                      "tracker.interval: \"abc\" is not a number");
}

static void test_numbers_are_decimal_only(void **state)
{
    expect_file_error(state, "[tracker]\ninterval = -1\n", 2,
                      "tracker.interval: \"-1\" is not a number");
    expect_file_error(state, "[tracker]\ninterval = 0x10\n", 2,
                      "tracker.interval: \"0x10\" is not a number");
    expect_file_error(state, "[tracker]\ninterval = 10s\n", 2,
                      "tracker.interval: \"10s\" is not a number");
    expect_file_error(state, "[tracker]\ninterval =\n", 2,
                      "tracker.interval: \"\" is not a number");
}

static void test_number_below_minimum(void **state)
{
    expect_file_error(state, "[tracker]\ninterval = 0\n", 2,
                      "tracker.interval: 0 is below the minimum 1");
    expect_file_error(state, "[http]\nmax_request_bytes = 255\n", 2,
                      "http.max_request_bytes: 255 is below the minimum 256");
}

static void test_number_above_maximum(void **state)
{
    expect_file_error(state, "[tracker]\ninterval = 86401\n", 2,
                      "tracker.interval: 86401 is above the maximum 86400");
    expect_file_error(state, "[server]\nport = 65536\n", 2,
                      "server.port: 65536 is above the maximum 65535");
    expect_file_error(state, "[server]\nport = 0\n", 2, "server.port: 0 is below the minimum 1");
    expect_file_error(state, "[tracker]\nnumwant_max = 99999999999999999999999\n", 2,
                      "tracker.numwant_max: 99999999999999999999999 is above the maximum 1000");
}

static void test_number_bounds_are_inclusive(void **state)
{
    struct mk_config c;
    struct mk_errbuf eb;
    assert_int_equal(load_text(state,
                               "[server]\nport = 65535\nworkers = 0\n"
                               "[tracker]\ninterval = 86400\nmin_interval = 1\n"
                               "expiry_factor = 100\nscrape_max_hashes = 1000\n"
                               "[http]\nmax_request_bytes = 65536\n",
                               NULL, &c, &eb),
                     0);
    assert_int_equal(c.port, 65535);
    assert_int_equal(c.interval, 86400);
    assert_int_equal(c.min_interval, 1);
    assert_int_equal(c.expiry_factor, 100);
    assert_int_equal(c.scrape_max_hashes, 1000);
    assert_int_equal(c.max_request_bytes, 65536);
}

static void test_bad_bool_message(void **state)
{
    expect_file_error(state, "[server]\nipv4 = maybe\n", 2,
                      "server.ipv4: \"maybe\" is not a boolean (true/false, yes/no, on/off, 1/0)");
}

static void test_bad_enum_and_log_values(void **state)
{
    expect_file_error(state, "[server]\nevent_loop = select\n", 2,
                      "server.event_loop: \"select\" is not one of: auto, epoll, poll, kqueue");
    expect_file_error(state, "[log]\nlevel = verbose\n", 2,
                      "log.level: \"verbose\" is not one of: debug, info, warn, error");
    expect_file_error(state, "[log]\nformat = xml\n", 2,
                      "log.format: \"xml\" is not one of: text, json");
}

static void test_bad_address_and_header(void **state)
{
    expect_file_error(state, "[server]\nbind4 = ::1\n", 2,
                      "server.bind4: \"::1\" is not an IPv4 address");
    expect_file_error(state, "[server]\nbind6 = 1.2.3.4\n", 2,
                      "server.bind6: \"1.2.3.4\" is not an IPv6 address");
    expect_file_error(state, "[proxy]\nreal_ip_header = X Real IP\n", 2,
                      "proxy.real_ip_header: \"X Real IP\" is not an HTTP header name");
    expect_file_error(state, "[store]\npath = \"\"\n", 2, "store.path: must not be empty");
}

static void test_bad_cidr_messages(void **state)
{
    expect_file_error(state, "[proxy]\ntrusted = 10.0.0.0/33\n", 2,
                      "proxy.trusted: \"10.0.0.0/33\" is not an address or CIDR");
    expect_file_error(state, "[proxy]\ntrusted = 10.0.0.1, ::1/129\n", 2,
                      "proxy.trusted: \"::1/129\" is not an address or CIDR");
    expect_file_error(state, "[proxy]\ntrusted = 10.0.0.1,,10.0.0.2\n", 2,
                      "proxy.trusted: \"\" is not an address or CIDR");
    expect_file_error(state, "[proxy]\ntrusted = example.com\n", 2,
                      "proxy.trusted: \"example.com\" is not an address or CIDR");
    expect_file_error(state, "[proxy]\ntrusted = 10.0.0.0/\n", 2,
                      "proxy.trusted: \"10.0.0.0/\" is not an address or CIDR");
    expect_file_error(state,
                      "[proxy]\ntrusted = 1.0.0.1,1.0.0.2,1.0.0.3,1.0.0.4,1.0.0.5,1.0.0.6,"
                      "1.0.0.7,1.0.0.8,1.0.0.9,1.0.0.10,1.0.0.11,1.0.0.12,1.0.0.13,1.0.0.14,"
                      "1.0.0.15,1.0.0.16,1.0.0.17\n",
                      2, "proxy.trusted: more than 16 entries");
}

static void test_syntax_error_reports_its_line(void **state)
{
    expect_file_error(state, "[server]\nport = 1\nthis line has no equals sign\n", 3,
                      "syntax error (expected [section] or key = value)");
}

static void test_indented_line_is_not_a_continuation(void **state)
{
    struct mk_config c;
    struct mk_errbuf eb;
    assert_int_equal(load_text(state, "[tracker]\ninterval = 60\n    min_interval = 30\n", NULL,
                               &c, &eb),
                     0);
    assert_int_equal(c.interval, 60);
    assert_int_equal(c.min_interval, 30);
}

static void test_overlong_line_is_an_error_with_its_line(void **state)
{
    char ini[1024];
    int n = snprintf(ini, sizeof(ini), "[store]\n\npath = /");
    memset(ini + n, 'a', 400);
    strcpy(ini + n + 400, "\n");
    struct fixture *fx = *state;
    struct mk_config c;
    struct mk_errbuf eb;
    assert_int_equal(load_text(state, ini, NULL, &c, &eb), MK_EINVAL);
    char want[256];
    snprintf(want, sizeof(want), "%s:3: line longer than", fx->path);
    assert_memory_equal(eb.msg, want, strlen(want));
}

/* A NUL byte would otherwise cut its line short and swallow what follows
 * (a "[log]" after it went unseen, its keys landing in the section before). */
static void test_nul_byte_is_an_error_with_its_line(void **state)
{
    static const char ini[] = "[tracker]\ninterval = 1800\n\0[log]\nlevel = debug\n";
    struct fixture *fx = *state;
    FILE *f = fopen(fx->path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(ini, 1, sizeof(ini) - 1, f), sizeof(ini) - 1);
    fclose(f);
    struct mk_config c;
    struct mk_errbuf eb = {{0}};
    config_defaults(&c);
    assert_int_equal(config_load(&c, fx->path, NULL, &eb), MK_EINVAL);
    char want[256];
    snprintf(want, sizeof(want), "%s:3: NUL byte in the line (is this a text file?)", fx->path);
    assert_string_equal(eb.msg, want);
}

static void test_missing_file_is_eio(void **state)
{
    struct mk_config c;
    struct mk_errbuf eb;
    config_defaults(&c);
    assert_int_equal(config_load(&c, "/nonexistent/mika.ini", NULL, &eb), MK_EIO);
    assert_string_equal(eb.msg, "/nonexistent/mika.ini: cannot open: No such file or directory");
}

static void test_env_overrides_file(void **state)
{
    char *envp[] = {"PATH=/bin", "MIKA_TRACKER_INTERVAL=120", "MIKA_STORE_PATH=/tmp/x.db",
                    "MIKA_SERVER_EVENT_LOOP=epoll", "MIKA_PROXY_TRUSTED=192.168.0.0/16", NULL};
    struct mk_config c;
    struct mk_errbuf eb;
    assert_int_equal(load_text(state, "[tracker]\ninterval = 3600\nmin_interval = 100\n", envp,
                               &c, &eb),
                     0);
    assert_int_equal(c.interval, 120);
    assert_int_equal(c.min_interval, 100);
    assert_string_equal(c.db_path, "/tmp/x.db");
    assert_string_equal(c.event_loop, "epoll");
    assert_int_equal(c.ntrusted_proxies, 1);
    assert_int_equal(c.trusted_proxies[0].prefix, 16);
}

static void test_env_bad_value_names_the_variable(void **state)
{
    expect_env_error(state, "MIKA_TRACKER_INTERVAL=abc",
                     "MIKA_TRACKER_INTERVAL: \"abc\" is not a number");
    expect_env_error(state, "MIKA_SERVER_PORT=70000",
                     "MIKA_SERVER_PORT: 70000 is above the maximum 65535");
}

static void test_env_unknown_variable_in_a_known_section_is_an_error(void **state)
{
    expect_env_error(state, "MIKA_TRACKER_INTERVALL=5",
                     "MIKA_TRACKER_INTERVALL: unknown variable (no such key)");
    expect_env_error(state, "MIKA_LOG_COLOUR=1", "MIKA_LOG_COLOUR: unknown variable (no such key)");
    expect_env_error(state, "MIKA_STORE_=1", "MIKA_STORE_: unknown variable (no such key)");
}

static void test_env_other_mika_variables_are_ignored(void **state)
{
    char *envp[] = {"MIKA_BIN=/usr/bin/mika", "MIKA_API_URL=https://x", "MIKA_=1", "MIKA",
                    "MIKA_TRACKERX=1", NULL};
    struct mk_config c;
    struct mk_errbuf eb;
    assert_int_equal(load_text(state, NULL, envp, &c, &eb), 0);
}

static void env_each_key(const char *section, const char *key, const char *def, const char *doc,
                         void *arg)
{
    char name[96];
    snprintf(name, sizeof(name), "MIKA_%s_%s", section, key);
    for (char *p = name; *p; p++) {
        if (*p >= 'a' && *p <= 'z') {
            *p = (char)(*p - 'a' + 'A');
        }
    }
    /* Entries are separated by '\n' so that the caller can split them. */
    char *buf = arg;
    size_t n = strlen(buf);
    snprintf(buf + n, 8192 - n, "%s=%s\n", name, def);
}

static void test_every_key_has_an_env_variable(void **state)
{
    char all[8192] = "";
    config_each_key(env_each_key, all);
    char *envp[128];
    size_t n = 0;
    for (char *p = strtok(all, "\n"); p; p = strtok(NULL, "\n")) {
        assert_true(n < 127);
        envp[n++] = p;
    }
    envp[n] = NULL;
    assert_int_equal(n, 79);
    assert_string_equal(envp[n - 1], "MIKA_CLUSTER_COUNTS_SECONDS=2");
    struct mk_config c;
    struct mk_config def;
    struct mk_errbuf eb;
    config_defaults(&def);
    assert_int_equal(load_text(state, NULL, envp, &c, &eb), 0);
    assert_memory_equal(&c, &def, sizeof(c));
}

/* A cluster shares its users through a server store; node ids fit in 16 bits. */
static void test_cluster_node_id_needs_a_shared_users_store(void **state)
{
    struct mk_config cfg;
    struct mk_errbuf eb;
    assert_int_equal(load_text(state, "[cluster]\nnode_id = 3\n", NULL, &cfg, &eb), MK_EINVAL);
    assert_non_null(strstr(eb.msg, "cluster.node_id"));
    assert_non_null(strstr(eb.msg, "\"sqlite\""));
    assert_int_equal(load_text(state,
                               "[store.users]\nbackend = postgres\ndsn = postgresql://h/db\n"
                               "[cluster]\nnode_id = 3\ncounts_seconds = 5\n",
                               NULL, &cfg, &eb),
                     0);
    assert_int_equal(cfg.cluster_node_id, 3);
    assert_int_equal(cfg.cluster_counts_seconds, 5);
    assert_int_equal(load_text(state, "[cluster]\nnode_id = 0\n", NULL, &cfg, &eb), 0);
    assert_int_equal(load_text(state, "[cluster]\nnode_id = 65536\n", NULL, &cfg, &eb),
                     MK_EINVAL);
    assert_non_null(strstr(eb.msg, "cluster.node_id"));
    assert_int_equal(load_text(state, "[cluster]\ncounts_seconds = 0\n", NULL, &cfg, &eb),
                     MK_EINVAL);
    assert_non_null(strstr(eb.msg, "cluster.counts_seconds"));
}

static void test_cross_key_checks(void **state)
{
    struct mk_config c;
    struct mk_errbuf eb;
    assert_int_equal(load_text(state, "[tracker]\ninterval = 100\nmin_interval = 101\n", NULL,
                               &c, &eb),
                     MK_EINVAL);
    assert_string_equal(eb.msg, "tracker.min_interval (101) is above tracker.interval (100)");
    assert_int_equal(load_text(state, "[tracker]\ninterval = 100\nmin_interval = 100\n", NULL,
                               &c, &eb),
                     0);

    assert_int_equal(load_text(state, "[tracker]\nnumwant_default = 200\n", NULL, &c, &eb),
                     MK_EINVAL);
    assert_string_equal(eb.msg, "tracker.numwant_default (200) is above tracker.numwant_max (100)");

    assert_int_equal(load_text(state, "[http]\nmax_request_line = 5000\n", NULL, &c, &eb),
                     MK_EINVAL);
    assert_string_equal(eb.msg,
                        "http.max_request_line (5000) is above http.max_request_bytes (4096)");

    char *envp[] = {"MIKA_SERVER_IPV6=no", NULL};
    assert_int_equal(load_text(state, "[server]\nipv4 = off\n", envp, &c, &eb), MK_EINVAL);
    assert_string_equal(eb.msg, "server.ipv4 and server.ipv6 are both off");
}

static void test_failed_load_leaves_config_unchanged(void **state)
{
    struct mk_config c;
    struct mk_config def;
    struct mk_errbuf eb;
    config_defaults(&def);
    assert_int_equal(load_text(state, "[tracker]\ninterval = 60\nbogus = 1\n", NULL, &c, &eb),
                     MK_EINVAL);
    assert_memory_equal(&c, &def, sizeof(c));
}

static void test_error_excerpt_is_capped_and_printable(void **state)
{
    char *envp[] = {"MIKA_TRACKER_INTERVAL=\x01xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
                    NULL};
    struct mk_config c;
    struct mk_errbuf eb;
    assert_int_equal(load_text(state, NULL, envp, &c, &eb), MK_EINVAL);
    assert_string_equal(eb.msg, "MIKA_TRACKER_INTERVAL: "
                                "\"?xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...\" "
                                "is not a number");
}

static bool trusted(const struct mk_config *c, const char *addr)
{
    uint8_t bin[16];
    if (inet_pton(AF_INET, addr, bin) == 1) {
        return config_is_trusted_proxy(c, AF_INET, bin);
    }
    assert_int_equal(inet_pton(AF_INET6, addr, bin), 1);
    return config_is_trusted_proxy(c, AF_INET6, bin);
}

static void test_trusted_proxy_matches_v4_and_v6_cidrs(void **state)
{
    char *envp[] = {"MIKA_PROXY_TRUSTED=10.1.0.0/16,192.168.1.7,2001:db8:ab00::/40,::1,"
                    "172.16.5.9/12",
                    NULL};
    struct mk_config c;
    struct mk_errbuf eb;
    assert_int_equal(load_text(state, NULL, envp, &c, &eb), 0);
    assert_true(trusted(&c, "10.1.0.0"));
    assert_true(trusted(&c, "10.1.255.255"));
    assert_false(trusted(&c, "10.2.0.1"));
    assert_false(trusted(&c, "10.0.255.255"));
    assert_true(trusted(&c, "192.168.1.7"));
    assert_false(trusted(&c, "192.168.1.8"));
    /* host bits in "172.16.5.9/12" are ignored: it means 172.16.0.0/12 */
    assert_true(trusted(&c, "172.31.255.255"));
    assert_true(trusted(&c, "172.16.0.0"));
    assert_false(trusted(&c, "172.32.0.0"));
    assert_true(trusted(&c, "2001:db8:ab00::1"));
    assert_true(trusted(&c, "2001:db8:abff:ffff::1"));
    assert_false(trusted(&c, "2001:db8:ac00::1"));
    assert_true(trusted(&c, "::1"));
    assert_false(trusted(&c, "::2"));
    /* IPv4 proxies seen through a dual-stack socket */
    assert_true(trusted(&c, "::ffff:10.1.2.3"));
    assert_false(trusted(&c, "::ffff:10.2.2.3"));
    /* an IPv4 address is never matched against IPv6 ranges */
    assert_false(trusted(&c, "0.0.0.1"));
}

static void test_trusted_proxy_none_and_everything(void **state)
{
    struct mk_config c;
    struct mk_errbuf eb;
    assert_int_equal(load_text(state, NULL, NULL, &c, &eb), 0);
    assert_false(trusted(&c, "127.0.0.1"));
    assert_false(trusted(&c, "::1"));
    char *envp[] = {"MIKA_PROXY_TRUSTED=0.0.0.0/0", NULL};
    assert_int_equal(load_text(state, NULL, envp, &c, &eb), 0);
    assert_true(trusted(&c, "203.0.113.9"));
    assert_false(trusted(&c, "2001:db8::1"));
}

/* ---- docs ----------------------------------------------------------------- */

static char *read_repo_file(const char *rel)
{
    /* __FILE__ is <root>/tests/unit/test_config.c (absolute under CMake). */
    const char *me = __FILE__;
    const char *tail = strstr(me, "tests/unit/test_config.c");
    assert_non_null(tail);
    char path[4096];
    snprintf(path, sizeof(path), "%.*s%s", (int)(tail - me), me, rel);
    FILE *f = fopen(path, "r");
    if (!f) {
        fail_msg("cannot open %s", path);
    }
    char *buf = calloc(1, 1 << 20);
    assert_non_null(buf);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

struct doc_check {
    const char *md;
    const char *ini;
    int keys;
};

/* The part of text from the line "header" to the next line starting with
 * stop (exclusive), copied into out. */
static void section_of(const char *text, const char *header, const char *stop, char *out,
                       size_t cap)
{
    const char *p = strstr(text, header);
    if (!p) {
        fail_msg("no \"%s\" section", header);
    }
    const char *end = p + strlen(header);
    while (*end) {
        end = strchr(end, '\n');
        if (!end) {
            end = p + strlen(p);
            break;
        }
        end++;
        if (strncmp(end, stop, strlen(stop)) == 0) {
            break;
        }
    }
    size_t n = (size_t)(end - p) < cap - 1 ? (size_t)(end - p) : cap - 1;
    memcpy(out, p, n);
    out[n] = '\0';
}

static void doc_each_key(const char *section, const char *key, const char *def, const char *doc,
                         void *arg)
{
    struct doc_check *dc = arg;
    dc->keys++;

    /* CONFIG.md: a table row under "## [section]" naming `section.key` and
     * its default in backticks ("" for empty). */
    char header[64];
    snprintf(header, sizeof(header), "## [%s]", section);
    static char sect[65536];
    section_of(dc->md, header, "## ", sect, sizeof(sect));
    char name[96];
    snprintf(name, sizeof(name), "`%s.%s`", section, key);
    const char *row = strstr(sect, name);
    if (!row) {
        fail_msg("docs/CONFIG.md: %s not under %s", name, header);
    }
    const char *eol = strchr(row, '\n');
    char want[128];
    snprintf(want, sizeof(want), "`%s`", *def ? def : "\"\"");
    const char *d = strstr(row, want);
    if (!d || (eol && d > eol)) {
        fail_msg("docs/CONFIG.md: %s does not show its default %s on its line", name, want);
    }

    /* mika.example.ini: "key = def" (commented out with ';') under [section]. */
    snprintf(header, sizeof(header), "\n[%s]\n", section);
    section_of(dc->ini, header, "[", sect, sizeof(sect));
    char line[160];
    snprintf(line, sizeof(line), "\n; %s = %s\n", key, def);
    if (*def == '\0') {
        snprintf(line, sizeof(line), "\n; %s =\n", key);
    }
    if (!strstr(sect, line)) {
        fail_msg("mika.example.ini: no line \"; %s = %s\" under [%s]", key, def, section);
    }
}

static void test_docs_and_example_list_every_key_with_its_default(void **state)
{
    struct doc_check dc = {read_repo_file("docs/CONFIG.md"), read_repo_file("mika.example.ini"),
                           0};
    config_each_key(doc_each_key, &dc);
    assert_int_equal(dc.keys, 79);
    free((void *)dc.md);
    free((void *)dc.ini);
}

/* The example file, uncommented, is a valid config equal to the defaults. */
static void test_example_ini_uncommented_loads_as_defaults(void **state)
{
    char *ini = read_repo_file("mika.example.ini");
    char *out = calloc(1, strlen(ini) + 1);
    assert_non_null(out);
    size_t n = 0;
    for (char *line = strtok(ini, "\n"); line; line = strtok(NULL, "\n")) {
        /* The example comments settings out with ';' and prose with '#'. */
        if (strncmp(line, "; ", 2) == 0) {
            n += (size_t)sprintf(out + n, "%s\n", line + 2);
        } else if (line[0] == '[') {
            n += (size_t)sprintf(out + n, "%s\n", line);
        }
    }
    struct mk_config c;
    struct mk_config def;
    struct mk_errbuf eb;
    config_defaults(&def);
    int rc = load_text(state, out, NULL, &c, &eb);
    if (rc != 0) {
        fail_msg("%s", eb.msg);
    }
    assert_memory_equal(&c, &def, sizeof(c));
    free(ini);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_defaults_are_the_documented_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_without_file_or_env_keeps_defaults, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_file_sets_every_type, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bool_accepts_every_documented_spelling, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unknown_key_names_key_and_its_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_section_is_reported_as_unknown_key, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_key_outside_any_section_is_unknown, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_names_are_case_sensitive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_number_message, setup, teardown),
        cmocka_unit_test_setup_teardown(test_numbers_are_decimal_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_number_below_minimum, setup, teardown),
        cmocka_unit_test_setup_teardown(test_number_above_maximum, setup, teardown),
        cmocka_unit_test_setup_teardown(test_number_bounds_are_inclusive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_bool_message, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_enum_and_log_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_address_and_header, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_cidr_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_syntax_error_reports_its_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_indented_line_is_not_a_continuation, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_nul_byte_is_an_error_with_its_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overlong_line_is_an_error_with_its_line, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_missing_file_is_eio, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_overrides_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_bad_value_names_the_variable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_unknown_variable_in_a_known_section_is_an_error,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_other_mika_variables_are_ignored, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_every_key_has_an_env_variable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cluster_node_id_needs_a_shared_users_store, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cross_key_checks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_load_leaves_config_unchanged, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_error_excerpt_is_capped_and_printable, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_trusted_proxy_matches_v4_and_v6_cidrs, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_trusted_proxy_none_and_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(test_docs_and_example_list_every_key_with_its_default,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_example_ini_uncommented_loads_as_defaults, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
