/* tests/conformance/test_mysql.c: what only the mysql backend (store/mysql*.c)
 * has to show: the dsn it needs and how it names a bad one, the server's
 * types, migration from the previous schema version and under GET_LOCK
 * with several nodes starting at once, a refused schema from a newer mika,
 * a lost connection answered with MK_EUNAVAIL and made again by the next
 * call, a locked row met promptly, and loads that stream while the server
 * is still sending.
 *
 * Runs through tests/lib/mysqlserver.py (MIKA_TEST_MYSQL_DSN); each test
 * gets a fresh database. A second, plain libmariadb connection plays the
 * site's own code and the operator's mariadb client.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <mysql.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store/mysql_admin.h" /* my_dsn_parse, for the site's connection */
#include "store/store.h"
#include "util/log.h"

struct fixture {
    char dir[64];
    char log[128];
    char db[64];
    char dsn[512];
    int log_fd;
    struct store_cfg cfg;
    struct store st;
};

static const char *base_dsn(void)
{
    const char *dsn = getenv("MIKA_TEST_MYSQL_DSN");
    if (!dsn || !*dsn) {
        fail_msg("MIKA_TEST_MYSQL_DSN is not set: run through tests/lib/mysqlserver.py");
    }
    return dsn;
}

/* The site's connection: into the fixture's database when it has one. */
static MYSQL *site(const struct fixture *fx)
{
    struct my_dsn d;
    struct mk_errbuf eb;
    if (my_dsn_parse(base_dsn(), &d, &eb) != 0) {
        fail_msg("MIKA_TEST_MYSQL_DSN: %s", eb.msg);
    }
    MYSQL *c = mysql_init(NULL);
    if (!mysql_real_connect(c, d.host, d.user, d.pass, fx && fx->db[0] ? fx->db : NULL, d.port,
                            NULL, CLIENT_MULTI_STATEMENTS)) {
        fail_msg("cannot reach the test server: %s", mysql_error(c));
    }
    my_dsn_free(&d);
    return c;
}

/* Runs sql (several statements allowed), dropping any results. */
static void site_exec_on(MYSQL *c, const char *sql)
{
    if (mysql_query(c, sql) != 0) {
        fail_msg("%s: %s", sql, mysql_error(c));
    }
    do {
        MYSQL_RES *r = mysql_store_result(c);
        if (r) {
            mysql_free_result(r);
        }
    } while (mysql_next_result(c) == 0);
    if (mysql_errno(c)) {
        fail_msg("%s: %s", sql, mysql_error(c));
    }
}

static void site_exec(const struct fixture *fx, const char *sql)
{
    MYSQL *c = site(fx);
    site_exec_on(c, sql);
    mysql_close(c);
}

/* One text value of a one-row query. */
static char *site_text(const struct fixture *fx, const char *sql, char *out, size_t cap)
{
    MYSQL *c = site(fx);
    if (mysql_query(c, sql) != 0) {
        fail_msg("%s: %s", sql, mysql_error(c));
    }
    MYSQL_RES *r = mysql_store_result(c);
    MYSQL_ROW row = r ? mysql_fetch_row(r) : NULL;
    if (!row || mysql_num_rows(r) != 1) {
        fail_msg("%s: %s (not one row)", sql, mysql_error(c));
    }
    snprintf(out, cap, "%s", row[0] ? row[0] : "NULL");
    mysql_free_result(r);
    mysql_close(c);
    return out;
}

static long site_int(const struct fixture *fx, const char *sql)
{
    char buf[64];
    return strtol(site_text(fx, sql, buf, sizeof(buf)), NULL, 10);
}

static int setup(void **state)
{
    static unsigned seq;
    struct fixture *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    strcpy(fx->dir, "/tmp/mika-test-mysql-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->log, sizeof(fx->log), "%s/log", fx->dir);
    fx->log_fd = open(fx->log, O_CREAT | O_WRONLY | O_APPEND, 0600);
    assert_true(fx->log_fd >= 0);
    mk_log_setup(MK_LOG_INFO, MK_LOG_TEXT, fx->log_fd);
    char sql[128];
    snprintf(fx->db, sizeof(fx->db), "myt_%d_%u", (int)getpid(), ++seq);
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", fx->db);
    site_exec(NULL, sql);
    const char *base = base_dsn();
    snprintf(fx->dsn, sizeof(fx->dsn), "%.*s/%s", (int)(strrchr(base, '/') - base), base, fx->db);
    fx->cfg.dsn = fx->dsn;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    store_close(&fx->st);
    mk_log_setup(MK_LOG_INFO, MK_LOG_TEXT, 2);
    close(fx->log_fd);
    char sql[128];
    snprintf(sql, sizeof(sql), "DROP DATABASE %s", fx->db);
    site_exec(NULL, sql);
    snprintf(sql, sizeof(sql), "rm -rf '%s'", fx->dir);
    assert_int_equal(system(sql), 0);
    free(fx);
    return 0;
}

static const char *log_text(struct fixture *fx)
{
    static char buf[65536];
    FILE *f = fopen(fx->log, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static void open_store(struct fixture *fx)
{
    struct mk_errbuf eb = {{0}};
    int rc = store_open(&fx->st, "mysql", &fx->cfg, &eb);
    if (rc != 0) {
        fail_msg("store_open: %s: %s", mk_err_name(rc), eb.msg);
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct user_rec get_user(struct fixture *fx, uint32_t id)
{
    struct user_rec u;
    struct mk_errbuf eb;
    int rc = store_user_get(&fx->st, id, &u, &eb);
    if (rc != 0) {
        fail_msg("user_get %u: %s: %s", id, mk_err_name(rc), eb.msg);
    }
    return u;
}

/* Ends mika's server sessions (every one on the fixture's database but the
 * site's own), as a restart or a failover would. */
static void kill_mika_sessions(const struct fixture *fx)
{
    MYSQL *c = site(NULL);
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = '%s'"
             " AND ID <> CONNECTION_ID()",
             fx->db);
    assert_int_equal(mysql_query(c, sql), 0);
    MYSQL_RES *r = mysql_store_result(c);
    assert_non_null(r);
    int killed = 0;
    MYSQL_ROW row;
    while ((row = mysql_fetch_row(r)) != NULL) {
        snprintf(sql, sizeof(sql), "KILL %s", row[0]);
        killed += mysql_query(c, sql) == 0; /* one that just ended is "unknown" */
    }
    mysql_free_result(r);
    mysql_close(c);
    assert_true(killed >= 1);
}

/* ---- open, dsn and schema -------------------------------------------------- */

static void test_open_needs_a_dsn(void **state)
{
    struct store st;
    struct store_cfg cfg = {.path = "/tmp/ignored.db"};
    struct mk_errbuf eb;
    assert_int_equal(store_open(&st, "mysql", &cfg, &eb), MK_EINVAL);
    assert_string_equal(eb.msg, "mysql: no dsn");
    assert_null(st.ops);
}

/* A bad dsn is named by its part, and the message never holds the password. */
static void test_a_bad_dsn_names_the_problem_and_never_the_password(void **state)
{
    const struct {
        const char *dsn, *says;
    } bad[] = {
        {"postgresql://u:s3cret@h/db", "must start with mysql://"},
        {"mysql://u:s3cret@h:0/db", "the port is not a number in 1..65535"},
        {"mysql://u:s3cret@h:65536/db", "the port is not a number in 1..65535"},
        {"mysql://u:s3cret@h:33x/db", "the port is not a number in 1..65535"},
        {"mysql://u:s3cret@h:3306", "no database name"},
        {"mysql://u:s3cret@h/", "no database name"},
        {"mysql://u:s3cret@:3306/db", "no host"},
        {"mysql://u:s3cret%zz@h/db", "bad percent-encoding in the password"},
        {"mysql://u%:s3cret@h/db", "bad percent-encoding in the user name"},
        {"mysql://u:s3cret%00@h/db", "bad percent-encoding in the password"},
        {"mysql://u:s3cret@h/db?ssl=1", "parameters (?... or #...) are not supported"},
        {"mysql://u:s3cret@[::1/db", "unclosed [ in the host"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct store st;
        struct store_cfg cfg = {.dsn = bad[i].dsn};
        struct mk_errbuf eb;
        assert_int_equal(store_open(&st, "mysql", &cfg, &eb), MK_EINVAL);
        if (!strstr(eb.msg, bad[i].says) || strstr(eb.msg, "s3cret")) {
            fail_msg("%s: %s", bad[i].dsn, eb.msg);
        }
    }
    /* What parses: percent-decoding, the default port, [IPv6], no password. */
    struct my_dsn d;
    struct mk_errbuf eb;
    assert_int_equal(my_dsn_parse("mysql://a%40b:p%3A%2F%40w@db.example:3307/si%74e", &d, &eb), 0);
    assert_string_equal(d.user, "a@b");
    assert_string_equal(d.pass, "p:/@w");
    assert_string_equal(d.host, "db.example");
    assert_int_equal(d.port, 3307);
    assert_string_equal(d.db, "site");
    my_dsn_free(&d);
    assert_int_equal(my_dsn_parse("mysql://[::1]/site", &d, &eb), 0);
    assert_null(d.user);
    assert_null(d.pass);
    assert_string_equal(d.host, "::1");
    assert_int_equal(d.port, 3306);
    my_dsn_free(&d);
}

static void test_open_of_an_unreachable_server_is_eunavail_promptly(void **state)
{
    struct fixture *fx = *state;
    struct store_cfg cfg = {.dsn = "mysql://mika:s3cret@127.0.0.1:1/mika_test"};
    struct mk_errbuf eb;
    double t0 = now_s();
    assert_int_equal(store_open(&fx->st, "mysql", &cfg, &eb), MK_EUNAVAIL);
    assert_true(now_s() - t0 < 5.0);
    assert_non_null(strstr(eb.msg, "mysql: connect: "));
    assert_null(strstr(eb.msg, "s3cret"));
    assert_null(fx->st.ops);
    assert_non_null(strstr(log_text(fx), "mysql.open failed: EUNAVAIL"));
    assert_null(strstr(log_text(fx), "s3cret"));
}

static void test_tables_have_unsigned_bigint_counters_and_binary_hashes(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    char buf[64], sql[320];
    const struct {
        const char *table, *column, *type;
    } want[] = {
        {"users", "uploaded", "bigint unsigned"},
        {"users", "raw_downloaded", "bigint unsigned"},
        {"users", "bonus", "bigint unsigned"},
        {"users", "passkey", "varchar(64)"},
        {"users", "enabled", "tinyint(1)"},
        {"torrents", "info_hash", "binary(20)"},
        {"torrents", "snatches", "bigint unsigned"},
        {"torrents", "transferred", "bigint unsigned"},
        {"whitelist", "prefix", "varbinary(20)"},
        {"peers", "peer_id", "binary(20)"},
        {"peers", "version", "bigint"},
        {"peers", "uploaded", "bigint unsigned"},
        {"journal_applied", "seq", "bigint unsigned"},
        {"journal_applied", "boot", "bigint unsigned"},
        {"user_torrents", "announces", "bigint unsigned"},
        {"suspicious", "uploaded", "bigint unsigned"},
        {"tokens", "expires_at", "bigint"},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        /* MySQL 8 dropped the display width of integers ("bigint(20) unsigned"). */
        snprintf(sql, sizeof(sql),
                 "SELECT REPLACE(REPLACE(COLUMN_TYPE, 'bigint(20)', 'bigint'), 'int(10)', 'int')"
                 " FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = '%s'"
                 " AND TABLE_NAME = '%s' AND COLUMN_NAME = '%s'",
                 fx->db, want[i].table, want[i].column);
        const char *got = site_text(fx, sql, buf, sizeof(buf));
        if (strcmp(got, want[i].type) != 0) {
            fail_msg("%s.%s is %s, want %s", want[i].table, want[i].column, got, want[i].type);
        }
    }
    snprintf(sql, sizeof(sql),
             "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '%s'"
             " AND (ENGINE <> 'InnoDB' OR TABLE_COLLATION <> 'utf8mb4_bin')",
             fx->db);
    assert_int_equal(site_int(fx, sql), 0);
    assert_int_equal(site_int(fx, "SELECT version FROM mika_schema"), 2);
    assert_int_equal(site_int(fx, "SELECT COUNT(*) FROM mika_schema"), 1);
    /* A site writes rows with plain SQL: defaults fill the rest, and the
     * ids mika picks afterwards do not collide with the site's. */
    site_exec(fx, "INSERT INTO users (passkey) VALUES ('fromsite');"
                  "INSERT INTO torrents (info_hash)"
                  " VALUES (X'00112233445566778899aabbccddeeff00112233')");
    struct user_rec u = {.row = {.enabled = true, .passkey = "frommika"}, .may_download = true,
                         .class_id = 1, .up_mult = 1000, .down_mult = 1000};
    struct mk_errbuf eb;
    assert_int_equal(store_user_insert(&fx->st, &u, false, &eb), 0);
    assert_int_equal(u.row.id, 2);
    site_exec(fx, "INSERT INTO users (passkey) VALUES ('fromsite2')");
    assert_int_equal(site_int(fx, "SELECT id FROM users WHERE passkey = 'fromsite2'"), 3);
    /* Passkeys compare byte for byte: another case is another passkey. */
    site_exec(fx, "INSERT INTO users (passkey) VALUES ('FROMSITE')");
    /* info_hash refuses a 40-character hex string stored as text. */
    MYSQL *c = site(fx);
    assert_int_not_equal(mysql_query(c, "INSERT INTO torrents (info_hash)"
                                        " VALUES ('00112233445566778899aabbccddeeff00112233')"),
                         0);
    mysql_close(c);
}

static void test_a_schema_from_a_newer_mika_is_refused(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    store_close(&fx->st);
    site_exec(fx, "UPDATE mika_schema SET version = 99");
    struct mk_errbuf eb;
    assert_int_equal(store_open(&fx->st, "mysql", &fx->cfg, &eb), MK_ENOTSUP);
    assert_string_equal(eb.msg, "mysql: schema version 99 is not one this mika knows (0..2)");
    assert_null(fx->st.ops);
}

/* Version 1 as the first mika with this backend wrote it: no suspicious
 * uploads, no tokens. */
static const char schema_v1[] =
    "CREATE TABLE mika_schema (version INT NOT NULL) ENGINE=InnoDB;"
    "INSERT INTO mika_schema VALUES (1);"
    "CREATE TABLE classes (id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,"
    " name VARCHAR(64) NOT NULL, upload_multiplier INT UNSIGNED NOT NULL DEFAULT 1000,"
    " download_multiplier INT UNSIGNED NOT NULL DEFAULT 1000,"
    " may_download BOOLEAN NOT NULL DEFAULT TRUE, UNIQUE KEY classes_name (name))"
    " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;"
    "INSERT INTO classes (id, name) VALUES (1, 'user');"
    "CREATE TABLE users (id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,"
    " passkey VARCHAR(64) NOT NULL, name VARCHAR(64) NULL,"
    " enabled BOOLEAN NOT NULL DEFAULT TRUE, can_download BOOLEAN NOT NULL DEFAULT TRUE,"
    " class_id INT UNSIGNED NOT NULL DEFAULT 1,"
    " upload_multiplier INT UNSIGNED NOT NULL DEFAULT 1000,"
    " download_multiplier INT UNSIGNED NOT NULL DEFAULT 1000,"
    " uploaded BIGINT UNSIGNED NOT NULL DEFAULT 0, downloaded BIGINT UNSIGNED NOT NULL DEFAULT 0,"
    " raw_uploaded BIGINT UNSIGNED NOT NULL DEFAULT 0,"
    " raw_downloaded BIGINT UNSIGNED NOT NULL DEFAULT 0,"
    " seed_time BIGINT UNSIGNED NOT NULL DEFAULT 0, leech_time BIGINT UNSIGNED NOT NULL DEFAULT 0,"
    " bonus BIGINT UNSIGNED NOT NULL DEFAULT 0, announces BIGINT UNSIGNED NOT NULL DEFAULT 0,"
    " created_at BIGINT NOT NULL DEFAULT 0, UNIQUE KEY users_passkey (passkey),"
    " UNIQUE KEY users_name (name), KEY users_class (class_id))"
    " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;"
    "CREATE TABLE torrents (id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,"
    " info_hash BINARY(20) NOT NULL, enabled BOOLEAN NOT NULL DEFAULT TRUE,"
    " deleted BOOLEAN NOT NULL DEFAULT FALSE, deleted_reason VARCHAR(255) NOT NULL DEFAULT '',"
    " snatches BIGINT UNSIGNED NOT NULL DEFAULT 0, name VARCHAR(255) NULL,"
    " size BIGINT UNSIGNED NULL, freeleech BOOLEAN NOT NULL DEFAULT FALSE,"
    " upload_multiplier INT UNSIGNED NOT NULL DEFAULT 1000,"
    " download_multiplier INT UNSIGNED NOT NULL DEFAULT 1000,"
    " transferred BIGINT UNSIGNED NOT NULL DEFAULT 0, created_at BIGINT NOT NULL DEFAULT 0,"
    " UNIQUE KEY torrents_info_hash (info_hash))"
    " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;"
    "CREATE TABLE whitelist (prefix VARBINARY(20) NOT NULL PRIMARY KEY,"
    " name VARCHAR(64) NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;"
    "INSERT INTO whitelist VALUES ('-qB', 'qBittorrent'), ('-TR', 'Transmission');"
    "CREATE TABLE snatches (user_id INT UNSIGNED NOT NULL, torrent_id INT UNSIGNED NOT NULL,"
    " at BIGINT NOT NULL, PRIMARY KEY (user_id, torrent_id), KEY snatches_torrent (torrent_id))"
    " ENGINE=InnoDB;"
    "CREATE TABLE user_torrents (user_id INT UNSIGNED NOT NULL, torrent_id INT UNSIGNED NOT NULL,"
    " uploaded BIGINT UNSIGNED NOT NULL DEFAULT 0, downloaded BIGINT UNSIGNED NOT NULL DEFAULT 0,"
    " raw_uploaded BIGINT UNSIGNED NOT NULL DEFAULT 0,"
    " raw_downloaded BIGINT UNSIGNED NOT NULL DEFAULT 0,"
    " seed_time BIGINT UNSIGNED NOT NULL DEFAULT 0, leech_time BIGINT UNSIGNED NOT NULL DEFAULT 0,"
    " announces BIGINT UNSIGNED NOT NULL DEFAULT 0, first_announce BIGINT NOT NULL,"
    " last_announce BIGINT NOT NULL, completed_at BIGINT NULL,"
    " PRIMARY KEY (user_id, torrent_id), KEY user_torrents_torrent (torrent_id)) ENGINE=InnoDB;"
    "CREATE TABLE journal_applied (boot BIGINT UNSIGNED NOT NULL, writer INT UNSIGNED NOT NULL,"
    " seq BIGINT UNSIGNED NOT NULL, records BIGINT UNSIGNED NOT NULL,"
    " applied_at BIGINT NOT NULL DEFAULT 0, PRIMARY KEY (boot, writer, seq)) ENGINE=InnoDB;"
    "CREATE TABLE settings (`key` VARCHAR(64) NOT NULL PRIMARY KEY, value VARCHAR(255) NOT NULL)"
    " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;"
    "CREATE TABLE peers (torrent_id INT UNSIGNED NOT NULL, user_id INT UNSIGNED NOT NULL,"
    " peer_id BINARY(20) NOT NULL, family TINYINT UNSIGNED NOT NULL, ip VARBINARY(16) NOT NULL,"
    " port SMALLINT UNSIGNED NOT NULL, uploaded BIGINT UNSIGNED NOT NULL,"
    " downloaded BIGINT UNSIGNED NOT NULL, seeder BOOLEAN NOT NULL, partial BOOLEAN NOT NULL,"
    " last_seen BIGINT NOT NULL, version BIGINT NOT NULL, gone BOOLEAN NOT NULL,"
    " PRIMARY KEY (torrent_id, user_id, peer_id), KEY peers_last_seen (last_seen))"
    " ENGINE=InnoDB;"
    "INSERT INTO users (id, passkey, uploaded) VALUES (7, 'old', 99);";

/* A database of the previous version is brought up to date in place; its
 * rows stay, nothing is seeded again. */
static void test_open_migrates_the_previous_schema_version(void **state)
{
    struct fixture *fx = *state;
    site_exec(fx, schema_v1);
    open_store(fx);
    const char *log = log_text(fx);
    assert_non_null(strstr(log, "schema migrated to version 2"));
    assert_null(strstr(log, "schema migrated to version 1"));
    assert_int_equal(site_int(fx, "SELECT version FROM mika_schema"), 2);
    assert_int_equal(site_int(fx, "SELECT COUNT(*) FROM mika_schema"), 1);
    assert_int_equal(site_int(fx, "SELECT COUNT(*) FROM suspicious"), 0);
    assert_int_equal(site_int(fx, "SELECT COUNT(*) FROM whitelist"), 2);
    assert_int_equal(get_user(fx, 7).uploaded, 99);
    struct acct_delta d = {.user_id = 7, .torrent_id = 1, .uploaded = 1, .suspicious = 2,
                           .suspicious_up = 1, .at = 5};
    struct mk_errbuf eb;
    assert_int_equal(store_apply(&fx->st, &d, 1, &eb), 0);
    assert_int_equal(site_int(fx, "SELECT COUNT(*) FROM suspicious WHERE reason = 'too_fast'"), 1);
    struct token_row tok = {.user_id = 7, .torrent_id = 3, .up_mult = 1000, .expires = 0};
    assert_int_equal(store_token_put(&fx->st, &tok, &eb), 0);
    assert_int_equal(site_int(fx, "SELECT COUNT(*) FROM tokens WHERE user_id = 7"), 1);
}

struct opener {
    const struct store_cfg *cfg;
    struct store st;
    int rc;
    struct mk_errbuf eb;
};

static void *open_in_thread(void *arg)
{
    struct opener *o = arg;
    o->rc = store_open(&o->st, "mysql", o->cfg, &o->eb);
    return NULL;
}

static int count_whitelist(const struct whitelist_row *row, void *arg)
{
    (*(int *)arg)++;
    return 0;
}

/* Nodes starting together: one migrates under GET_LOCK, the others wait
 * for it and find the schema done; nothing is created or seeded twice. */
static void test_nodes_opening_an_empty_database_together_migrate_it_once(void **state)
{
    struct fixture *fx = *state;
    enum { NODES = 6 };
    struct opener o[NODES];
    pthread_t th[NODES];
    for (int i = 0; i < NODES; i++) {
        o[i] = (struct opener){.cfg = &fx->cfg};
        assert_int_equal(pthread_create(&th[i], NULL, open_in_thread, &o[i]), 0);
    }
    for (int i = 0; i < NODES; i++) {
        pthread_join(th[i], NULL);
    }
    for (int i = 0; i < NODES; i++) {
        if (o[i].rc != 0) {
            fail_msg("node %d: %s: %s", i, mk_err_name(o[i].rc), o[i].eb.msg);
        }
    }
    int n = 0;
    struct mk_errbuf eb;
    assert_int_equal(store_load_whitelist(&o[NODES - 1].st, count_whitelist, &n, &eb), 0);
    assert_int_equal(n, 16);
    for (int i = 0; i < NODES; i++) {
        store_close(&o[i].st);
    }
    assert_int_equal(site_int(fx, "SELECT COUNT(*) FROM classes"), 1);
    assert_int_equal(site_int(fx, "SELECT COUNT(*) FROM mika_schema"), 1);
    const char *log = log_text(fx);
    const char *first = strstr(log, "schema migrated to version 1");
    assert_non_null(first);
    assert_null(strstr(first + 1, "schema migrated to version 1"));
}

/* ---- faults ------------------------------------------------------------------ */

/* The server ends the session (a restart, a failover, wait_timeout): the
 * call that finds out answers MK_EUNAVAIL and leaves nothing behind, the
 * next one reconnects, and the flusher's retry books the batch once. */
static void test_a_lost_connection_is_eunavail_then_the_next_call_reconnects(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    site_exec(fx, "INSERT INTO users (id, passkey) VALUES (1, 'one');"
                  "INSERT INTO torrents (id, info_hash)"
                  " VALUES (5, X'5555555555555555555555555555555555555555')");
    struct acct_delta d = {.user_id = 1, .torrent_id = 5, .uploaded = 700, .snatch = true,
                           .at = 9, .announces = 1};
    struct store_segment_id seg = {.boot = 1, .writer = 0, .seq = 1};
    struct mk_errbuf eb;
    kill_mika_sessions(fx);
    double t0 = now_s();
    assert_int_equal(store_apply_segment(&fx->st, &seg, &d, 1, &eb), MK_EUNAVAIL);
    assert_true(now_s() - t0 < 2.0);
    assert_non_null(strstr(eb.msg, "connection lost"));
    assert_int_equal(site_int(fx, "SELECT COUNT(*) FROM journal_applied"), 0);
    assert_int_equal(store_apply_segment(&fx->st, &seg, &d, 1, &eb), 0);
    assert_int_equal(store_apply_segment(&fx->st, &seg, &d, 1, &eb), MK_EEXIST);
    assert_int_equal(get_user(fx, 1).uploaded, 700);
    assert_int_equal(site_int(fx, "SELECT snatches FROM torrents WHERE id = 5"), 1);
    assert_non_null(strstr(log_text(fx), "reconnected to 127.0.0.1:"));
    /* The same for a load and an admin read. */
    kill_mika_sessions(fx);
    assert_int_equal(store_load_whitelist(&fx->st, count_whitelist, &(int){0}, &eb), MK_EUNAVAIL);
    int n = 0;
    assert_int_equal(store_load_whitelist(&fx->st, count_whitelist, &n, &eb), 0);
    assert_int_equal(n, 16);
    kill_mika_sessions(fx);
    struct user_rec u;
    assert_int_equal(store_user_get(&fx->st, 1, &u, &eb), MK_EUNAVAIL);
    assert_int_equal(store_user_get(&fx->st, 1, &u, &eb), 0);
    assert_int_equal(u.uploaded, 700);
}

/* A site's transaction holds a user's row: the batch fails promptly with
 * MK_EUNAVAIL and nothing of it lands; once the lock is gone it applies. */
static void test_a_locked_row_is_eunavail_promptly_and_leaves_nothing(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    site_exec(fx, "INSERT INTO users (id, passkey) VALUES (1, 'one'), (2, 'two')");
    MYSQL *holder = site(fx);
    site_exec_on(holder, "START TRANSACTION");
    site_exec_on(holder, "SELECT 1 FROM users WHERE id = 2 FOR UPDATE");
    struct acct_delta d[] = {{.user_id = 1, .uploaded = 10, .at = 1},
                             {.user_id = 2, .uploaded = 20, .at = 1}};
    struct mk_errbuf eb;
    double t0 = now_s();
    assert_int_equal(store_apply(&fx->st, d, 2, &eb), MK_EUNAVAIL);
    assert_true(now_s() - t0 < 3.0);
    assert_non_null(strstr(eb.msg, "Lock wait timeout"));
    assert_int_equal(get_user(fx, 1).uploaded, 0);
    site_exec_on(holder, "COMMIT");
    mysql_close(holder);
    assert_int_equal(store_apply(&fx->st, d, 2, &eb), 0);
    assert_int_equal(get_user(fx, 1).uploaded, 10);
    assert_int_equal(get_user(fx, 2).uploaded, 20);
}

/* A delta past what BIGINT UNSIGNED holds stops at the maximum instead of
 * failing the batch forever. */
static void test_counters_saturate_instead_of_wedging_the_batch(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    site_exec(fx, "INSERT INTO users (id, passkey, uploaded) VALUES (1, 'one', 10), (2, 'two', 3),"
                  " (3, 'three', 0)");
    struct acct_delta d = {.user_id = 1, .uploaded = UINT64_MAX - 5, .at = 1};
    struct mk_errbuf eb;
    assert_int_equal(store_apply(&fx->st, &d, 1, &eb), 0);
    assert_true(get_user(fx, 1).uploaded == UINT64_MAX);
    /* Past the first row of a derived table too (a VALUES row there). */
    struct acct_delta many[] = {{.user_id = 1, .uploaded = 1, .at = 1},
                                {.user_id = 2, .uploaded = UINT64_MAX - 1, .at = 1},
                                {.user_id = 3, .uploaded = UINT64_MAX, .at = 1}};
    assert_int_equal(store_apply(&fx->st, many, 3, &eb), 0);
    assert_true(get_user(fx, 1).uploaded == UINT64_MAX);
    assert_true(get_user(fx, 2).uploaded == UINT64_MAX);
    assert_true(get_user(fx, 3).uploaded == UINT64_MAX);
}

/* ---- the books in groups of segments ------------------------------------------- */

static void seed_books(const struct fixture *fx)
{
    site_exec(fx, "INSERT INTO users (id, passkey) VALUES (1, 'one'), (2, 'two'), (3, 'three');"
                  "INSERT INTO torrents (id, info_hash) VALUES"
                  " (5, X'5555555555555555555555555555555555555555'),"
                  " (6, X'6666666666666666666666666666666666666666')");
}

static struct acct_delta peer_report(uint32_t user, uint32_t torrent, char tag, uint64_t up,
                                     int64_t version)
{
    struct acct_delta d = {.user_id = user, .torrent_id = torrent, .at = 100, .has_peer = true};
    d.peer = (struct peer_row){.torrent_id = torrent, .user_id = user, .family = 4, .port = 6881,
                               .uploaded = up, .last_seen = 100, .version = version};
    memset(d.peer.peer_id, tag, 20);
    memcpy(d.peer.ip, "\x7f\x00\x00\x01", 4);
    return d;
}

/* A group holding a segment applied before changes nothing at all, not even
 * the other segments' ids; without that segment the group goes through. */
static void test_a_group_with_a_segment_applied_before_changes_nothing(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    seed_books(fx);
    struct store_segment_id ids[] = {{.boot = 9, .writer = 0, .seq = 1, .records = 1},
                                     {.boot = 9, .writer = 1, .seq = 1, .records = 1},
                                     {.boot = 9, .writer = 2, .seq = 1, .records = 4}};
    struct acct_delta before = {.user_id = 1, .torrent_id = 5, .uploaded = 7, .announces = 1,
                                .snatch = true, .at = 50};
    struct mk_errbuf eb;
    assert_int_equal(store_apply_segment(&fx->st, &ids[1], &before, 1, &eb), 0);
    struct acct_delta group[] = {
        {.user_id = 2, .torrent_id = 5, .uploaded = 100, .announces = 1, .snatch = true, .at = 60},
        {.user_id = 3, .torrent_id = 6, .uploaded = 5, .suspicious = 1, .suspicious_up = 9,
         .announces = 1, .at = 60},
        peer_report(2, 5, 'a', 1, 60),
    };
    assert_int_equal(store_apply_segments(&fx->st, ids, 3, group, 3, &eb), MK_EEXIST);
    assert_int_equal(site_int(fx, "SELECT COUNT(*) FROM journal_applied"), 1);
    assert_int_equal(site_int(fx, "SELECT SUM(uploaded) FROM users"), 7);
    assert_int_equal(site_int(fx, "SELECT COUNT(*) FROM user_torrents"), 1);
    assert_int_equal(site_int(fx, "SELECT COUNT(*) FROM snatches"), 1);
    assert_int_equal(site_int(fx, "SELECT SUM(snatches) FROM torrents"), 1);
    assert_int_equal(site_int(fx, "SELECT COUNT(*) FROM suspicious"), 0);
    assert_int_equal(site_int(fx, "SELECT COUNT(*) FROM peers"), 0);
    struct store_segment_id others[] = {ids[0], ids[2]};
    assert_int_equal(store_apply_segments(&fx->st, others, 2, group, 3, &eb), 0);
    assert_int_equal(site_int(fx, "SELECT COUNT(*) FROM journal_applied"), 3);
    assert_int_equal(site_int(fx, "SELECT SUM(uploaded) FROM users"), 112);
    assert_int_equal(site_int(fx, "SELECT snatches FROM torrents WHERE id = 5"), 2);
    assert_int_equal(site_int(fx, "SELECT COUNT(*) FROM suspicious"), 1);
    assert_int_equal(site_int(fx, "SELECT COUNT(*) FROM peers"), 1);
    assert_null(strstr(log_text(fx), "failed"));
}

/* Snatches are inserted many to a statement, yet a torrent's count moves
 * only for rows this batch created: one repeated within the batch, across
 * segments, or recorded before counts once; the first of a batch keeps its
 * time; chunks past one statement, old and new mixed, add up; no row is
 * left with its insert's mark. */
static void test_snatches_in_bulk_count_only_the_rows_they_create(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    seed_books(fx);
    enum { NEW = 1300 };
    site_exec(fx, "INSERT INTO snatches (user_id, torrent_id, at) VALUES (3, 6, 10), (1000, 6, 11);"
                  "UPDATE torrents SET snatches = 2 WHERE id = 6");
    struct acct_delta *d = calloc(2 * NEW + 4, sizeof(*d));
    assert_non_null(d);
    size_t n = 0;
    d[n++] = (struct acct_delta){.user_id = 1, .torrent_id = 5, .snatch = true, .at = 70};
    d[n++] = (struct acct_delta){.user_id = 3, .torrent_id = 6, .snatch = true, .at = 71};
    for (uint32_t i = 0; i < NEW; i++) {
        /* Users 1000.. on torrent 6 (1000 had snatched it); each twice, as
         * from two segments of one group. */
        d[n++] = (struct acct_delta){.user_id = 1000 + i, .torrent_id = 6, .snatch = true,
                                     .at = 1000 + i};
        d[n++] = (struct acct_delta){.user_id = 1000 + i, .torrent_id = 6, .snatch = true,
                                     .at = 5000 + i};
    }
    d[n++] = (struct acct_delta){.user_id = 1, .torrent_id = 5, .snatch = true, .at = 72};
    struct store_segment_id ids[] = {{.boot = 3, .writer = 0, .seq = 1},
                                     {.boot = 3, .writer = 1, .seq = 1}};
    struct mk_errbuf eb;
    assert_int_equal(store_apply_segments(&fx->st, ids, 2, d, n, &eb), 0);
    assert_int_equal(site_int(fx, "SELECT snatches FROM torrents WHERE id = 5"), 1);
    assert_int_equal(site_int(fx, "SELECT snatches FROM torrents WHERE id = 6"), 2 + NEW - 1);
    assert_int_equal(site_int(fx, "SELECT COUNT(*) FROM snatches"), 2 + NEW);
    assert_int_equal(site_int(fx, "SELECT COUNT(*) FROM snatches WHERE at < 0"), 0);
    assert_int_equal(site_int(fx, "SELECT at FROM snatches WHERE user_id = 1"), 70);
    assert_int_equal(site_int(fx, "SELECT at FROM snatches WHERE user_id = 3"), 10);
    assert_int_equal(site_int(fx, "SELECT at FROM snatches WHERE user_id = 1000"), 11);
    assert_int_equal(site_int(fx, "SELECT at FROM snatches WHERE user_id = 1299"), 1299);
    assert_int_equal(site_int(fx, "SELECT completed_at FROM user_torrents WHERE user_id = 1"), 70);
    /* The same snatches in a later segment count nothing. */
    struct store_segment_id later = {.boot = 3, .writer = 0, .seq = 2};
    assert_int_equal(store_apply_segment(&fx->st, &later, d, n, &eb), 0);
    assert_int_equal(site_int(fx, "SELECT SUM(snatches) FROM torrents"), 1 + 2 + NEW - 1);
    assert_int_equal(site_int(fx, "SELECT COUNT(*) FROM snatches WHERE at < 0"), 0);
    free(d);
}

/* The same peer reported twice in a batch (two segments of a group) is
 * written once, as its newest report, the first of two of one version; a
 * report older than the stored one changes nothing. */
static void test_the_same_peer_twice_in_a_batch_keeps_its_newest_report(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    seed_books(fx);
    struct acct_delta stored = peer_report(2, 6, 'b', 500, 1000);
    struct mk_errbuf eb;
    assert_int_equal(store_apply(&fx->st, &stored, 1, &eb), 0);
    struct acct_delta d[] = {
        peer_report(1, 5, 'a', 10, 5),   peer_report(1, 5, 'a', 30, 9),
        peer_report(2, 6, 'b', 40, 900), peer_report(1, 5, 'a', 20, 7),
        peer_report(1, 5, 'a', 31, 9),   peer_report(1, 5, 'c', 60, 1),
    };
    d[4].peer.gone = true;
    struct store_segment_id ids[] = {{.boot = 4, .writer = 0, .seq = 1},
                                     {.boot = 4, .writer = 1, .seq = 1}};
    assert_int_equal(store_apply_segments(&fx->st, ids, 2, d, 6, &eb), 0);
    assert_int_equal(site_int(fx, "SELECT COUNT(*) FROM peers"), 3);
    assert_int_equal(site_int(fx, "SELECT uploaded FROM peers WHERE peer_id = REPEAT('a', 20)"),
                     30);
    assert_int_equal(site_int(fx, "SELECT version FROM peers WHERE peer_id = REPEAT('a', 20)"), 9);
    assert_int_equal(site_int(fx, "SELECT gone FROM peers WHERE peer_id = REPEAT('a', 20)"), 0);
    assert_int_equal(site_int(fx, "SELECT uploaded FROM peers WHERE peer_id = REPEAT('b', 20)"),
                     500);
    assert_int_equal(site_int(fx, "SELECT uploaded FROM peers WHERE peer_id = REPEAT('c', 20)"),
                     60);
}

/* ---- streaming --------------------------------------------------------------- */

struct reentry {
    struct store *st;
    int rc;
    int rows;
};

static int ping_from_callback(const struct whitelist_row *row, void *arg)
{
    struct reentry *r = arg;
    struct mk_errbuf eb;
    if (r->rows++ == 0) {
        r->rc = store_ping(r->st, &eb);
    }
    return 0;
}

/* The connection is busy reading the load's rows: a callback that calls the
 * store again is refused, and the load and the store go on. */
static void test_a_call_from_inside_a_row_callback_is_refused(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    struct reentry r = {.st = &fx->st};
    struct mk_errbuf eb;
    assert_int_equal(store_load_whitelist(&fx->st, ping_from_callback, &r, &eb), 0);
    assert_int_equal(r.rc, MK_EINVAL);
    assert_int_equal(r.rows, 16);
    assert_int_equal(store_ping(&fx->st, &eb), 0);
}

#define STREAM_USERS 100000

struct stream_probe {
    MYSQL *site;
    const char *db;
    size_t n;
    char command_at_first_row[32];
};

/* At the first row, asks the server what mika's session is doing: with the
 * rows streamed, it is still running the load's query (Query), sending the
 * rest; a client that gathered the whole result first would find it idle
 * (Sleep, no statement). Sessions the site just closed may linger in the
 * list: the statement's text picks mika's out. */
static int probe_user(const struct user_row *row, void *arg)
{
    struct stream_probe *p = arg;
    if (p->n++ == 0) {
        char sql[256];
        snprintf(sql, sizeof(sql),
                 "SELECT COMMAND FROM information_schema.PROCESSLIST WHERE DB = '%s'"
                 " AND ID <> CONNECTION_ID() AND COMMAND <> 'Sleep'"
                 " AND INFO LIKE 'SELECT u.id, u.passkey%%'",
                 p->db);
        if (mysql_query(p->site, sql) == 0) {
            MYSQL_RES *r = mysql_store_result(p->site);
            MYSQL_ROW v = r && mysql_num_rows(r) == 1 ? mysql_fetch_row(r) : NULL;
            if (v && v[0]) {
                snprintf(p->command_at_first_row, sizeof(p->command_at_first_row), "%s", v[0]);
            }
            mysql_free_result(r);
        }
    }
    return 0;
}

static void test_load_users_streams_rows_while_the_server_still_sends(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    site_exec(fx, "CREATE TEMPORARY TABLE d (i INT);"
                  "INSERT INTO d VALUES (0), (1), (2), (3), (4), (5), (6), (7), (8), (9);"
                  "INSERT INTO users (id, passkey)"
                  " SELECT 1 + a.i + 10 * b.i + 100 * c.i + 1000 * e.i + 10000 * f.i,"
                  " CONCAT('pk', a.i, b.i, c.i, e.i, f.i)"
                  " FROM d a, d b, d c, d e, d f");
    struct stream_probe p = {.site = site(NULL), .db = fx->db};
    struct mk_errbuf eb;
    assert_int_equal(store_load_users(&fx->st, probe_user, &p, &eb), 0);
    mysql_close(p.site);
    assert_int_equal(p.n, STREAM_USERS);
    assert_string_equal(p.command_at_first_row, "Query");
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    if (!getenv("MIKA_TEST_MYSQL_DSN")) {
        fprintf(stderr, "test_mysql: MIKA_TEST_MYSQL_DSN is not set: run it through"
                        " tests/lib/mysqlserver.py\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        T(test_open_needs_a_dsn),
        T(test_a_bad_dsn_names_the_problem_and_never_the_password),
        T(test_open_of_an_unreachable_server_is_eunavail_promptly),
        T(test_tables_have_unsigned_bigint_counters_and_binary_hashes),
        T(test_a_schema_from_a_newer_mika_is_refused),
        T(test_open_migrates_the_previous_schema_version),
        T(test_nodes_opening_an_empty_database_together_migrate_it_once),
        T(test_a_lost_connection_is_eunavail_then_the_next_call_reconnects),
        T(test_a_locked_row_is_eunavail_promptly_and_leaves_nothing),
        T(test_counters_saturate_instead_of_wedging_the_batch),
        T(test_a_group_with_a_segment_applied_before_changes_nothing),
        T(test_snatches_in_bulk_count_only_the_rows_they_create),
        T(test_the_same_peer_twice_in_a_batch_keeps_its_newest_report),
        T(test_a_call_from_inside_a_row_callback_is_refused),
        T(test_load_users_streams_rows_while_the_server_still_sends),
    };
    int rc = cmocka_run_group_tests_name("store mysql", tests, NULL, NULL);
    mysql_library_end();
    return rc;
}
