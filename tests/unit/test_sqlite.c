/* tests/unit/test_sqlite.c: the "sqlite" store backend, through the store_*
 * wrappers (store/store.c) as the daemon uses it.
 *
 * Each test gets a fresh temp directory; a second, raw sqlite3 connection
 * plays the operator's shell (inserting rows, holding a write lock). Log
 * lines go to a file so tests can check which rows were skipped and why.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store/sqlite_int.h"
#include "store/store.h"
#include "util/log.h"

struct fixture {
    char dir[64];
    char db[128];
    char log[128];
    int log_fd;
    struct store st;
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    strcpy(fx->dir, "/tmp/mika-test-sqlite-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->db, sizeof(fx->db), "%s/mika.db", fx->dir);
    snprintf(fx->log, sizeof(fx->log), "%s/log", fx->dir);
    fx->log_fd = open(fx->log, O_CREAT | O_WRONLY | O_APPEND, 0600);
    assert_true(fx->log_fd >= 0);
    mk_log_setup(MK_LOG_INFO, MK_LOG_TEXT, fx->log_fd);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    store_close(&fx->st);
    mk_log_setup(MK_LOG_INFO, MK_LOG_TEXT, 2);
    close(fx->log_fd);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
    assert_int_equal(system(cmd), 0);
    free(fx);
    return 0;
}

/* The whole log written so far (static buffer). */
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
    struct store_cfg cfg = {.path = fx->db};
    struct mk_errbuf eb = {{0}};
    int rc = store_open(&fx->st, "sqlite", &cfg, &eb);
    if (rc != 0) {
        fail_msg("store_open: %s: %s", mk_err_name(rc), eb.msg);
    }
}

static void reopen_store(struct fixture *fx)
{
    store_close(&fx->st);
    open_store(fx);
}

/* The operator's shell: a second connection. */
static sqlite3 *raw(struct fixture *fx)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(fx->db, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 2000);
    return db;
}

static void raw_exec(struct fixture *fx, const char *sql)
{
    sqlite3 *db = raw(fx);
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        fail_msg("%s: %s", sql, err);
    }
    sqlite3_close(db);
}

static int64_t raw_int(struct fixture *fx, const char *sql)
{
    sqlite3 *db = raw(fx);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static char *raw_text(struct fixture *fx, const char *sql, char *out, size_t cap)
{
    sqlite3 *db = raw(fx);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    snprintf(out, cap, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
}

/* ---- collectors ---------------------------------------------------------- */

#define MAX_ROWS 64

struct users_seen {
    struct user_row rows[MAX_ROWS];
    size_t n;
    size_t stop_after; /* 0: never stop */
};

static int collect_user(const struct user_row *row, void *arg)
{
    struct users_seen *s = arg;
    assert_true(s->n < MAX_ROWS);
    s->rows[s->n++] = *row;
    return s->stop_after && s->n == s->stop_after ? MK_ENOMEM : 0;
}

struct torrents_seen {
    struct torrent_row rows[MAX_ROWS];
    size_t n;
};

static int collect_torrent(const struct torrent_row *row, void *arg)
{
    struct torrents_seen *s = arg;
    assert_true(s->n < MAX_ROWS);
    s->rows[s->n++] = *row;
    return 0;
}

struct whitelist_seen {
    struct whitelist_row rows[MAX_ROWS];
    size_t n;
};

static int collect_whitelist(const struct whitelist_row *row, void *arg)
{
    struct whitelist_seen *s = arg;
    assert_true(s->n < MAX_ROWS);
    s->rows[s->n++] = *row;
    return 0;
}

static const struct whitelist_row *find_prefix(const struct whitelist_seen *s, const char *p)
{
    for (size_t i = 0; i < s->n; i++) {
        if (s->rows[i].prefix_len == strlen(p) && memcmp(s->rows[i].prefix, p, strlen(p)) == 0) {
            return &s->rows[i];
        }
    }
    return NULL;
}

struct snatches_seen {
    struct snatch_row rows[MAX_ROWS];
    size_t n;
};

static int collect_snatch(const struct snatch_row *row, void *arg)
{
    struct snatches_seen *s = arg;
    assert_true(s->n < MAX_ROWS);
    s->rows[s->n++] = *row;
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- registry and wrappers ----------------------------------------------- */

static void test_registry_finds_sqlite_only(void **state)
{
    const struct store_ops *ops = store_find("sqlite");
    assert_non_null(ops);
    assert_ptr_equal(ops, &store_sqlite_ops);
    assert_string_equal(ops->name, "sqlite");
    assert_int_equal(ops->version, MK_STORE_V6);
    assert_null(store_find("nosuch"));
    assert_null(store_find(""));
}

static void test_open_unknown_backend_is_enotfound(void **state)
{
    struct fixture *fx = *state;
    struct store_cfg cfg = {.path = fx->db};
    struct mk_errbuf eb;
    assert_int_equal(store_open(&fx->st, "nosuch", &cfg, &eb), MK_ENOTFOUND);
    assert_string_equal(eb.msg, "unknown store backend \"nosuch\"");
    assert_null(fx->st.ops);
}

static int no_user(const struct user_row *row, void *arg)
{
    fail_msg("callback on a closed store");
    return 0;
}

static void test_wrappers_refuse_a_closed_store(void **state)
{
    struct store st = {0};
    struct mk_errbuf eb;
    assert_int_equal(store_load_users(&st, no_user, NULL, &eb), MK_EINVAL);
    struct acct_delta d = {.user_id = 1, .uploaded = 1};
    assert_int_equal(store_apply(&st, &d, 1, &eb), MK_EINVAL);
    store_close(&st); /* no-op */
}

static void test_missing_optional_apply_is_enotsup(void **state)
{
    struct store_ops ops = store_sqlite_ops;
    ops.apply = NULL;
    struct store st = {.ops = &ops, .ctx = &ops};
    struct mk_errbuf eb;
    struct acct_delta d = {.user_id = 1, .uploaded = 1};
    assert_int_equal(store_apply(&st, &d, 1, &eb), MK_ENOTSUP);
    assert_string_equal(eb.msg, "store sqlite has no apply");
}

static void test_failed_call_is_logged_with_backend_and_method(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    struct users_seen seen = {.stop_after = 1};
    raw_exec(fx, "INSERT INTO users (id, passkey) VALUES (1, 'aaaa'), (2, 'bbbb')");
    struct mk_errbuf eb;
    assert_int_equal(store_load_users(&fx->st, collect_user, &seen, &eb), MK_ENOMEM);
    assert_non_null(strstr(log_text(fx), "sqlite.load_users failed: ENOMEM"));
}

/* ---- open, schema, migration -------------------------------------------- */

static void test_open_creates_database_at_schema_version_6_in_wal_mode(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(access(fx->db, F_OK), -1);
    open_store(fx);
    assert_int_equal(access(fx->db, F_OK), 0);
    assert_int_equal(raw_int(fx, "PRAGMA user_version"), 6);
    char mode[16];
    assert_string_equal(raw_text(fx, "PRAGMA journal_mode", mode, sizeof(mode)), "wal");
    assert_non_null(strstr(log_text(fx), "schema migrated to version 1"));
    assert_non_null(strstr(log_text(fx), "schema migrated to version 2"));
    /* v4: no index on peers.last_seen (v3 created one). */
    assert_int_equal(raw_int(fx, "SELECT count(*) FROM sqlite_master WHERE type = 'index'"
                                 " AND tbl_name = 'peers'"), 0);
}

static void test_schema_has_the_documented_columns(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    char cols[512];
    raw_text(fx, "SELECT group_concat(name, ',') FROM pragma_table_info('users')", cols,
             sizeof(cols));
    assert_string_equal(cols, "id,passkey,enabled,can_download,uploaded,downloaded,created_at,"
                              "name,class_id,upload_multiplier,download_multiplier,"
                              "raw_uploaded,raw_downloaded,seed_time,leech_time,bonus,announces");
    raw_text(fx, "SELECT group_concat(name, ',') FROM pragma_table_info('torrents')", cols,
             sizeof(cols));
    assert_string_equal(cols, "id,info_hash,enabled,deleted,deleted_reason,snatches,created_at,"
                              "name,size,freeleech,upload_multiplier,download_multiplier,"
                              "transferred");
    raw_text(fx, "SELECT group_concat(name, ',') FROM pragma_table_info('classes')", cols,
             sizeof(cols));
    assert_string_equal(cols, "id,name,upload_multiplier,download_multiplier,may_download");
    raw_text(fx, "SELECT group_concat(name, ',') FROM pragma_table_info('settings')", cols,
             sizeof(cols));
    assert_string_equal(cols, "key,value");
    raw_text(fx, "SELECT group_concat(name, ',') FROM pragma_table_info('whitelist')", cols,
             sizeof(cols));
    assert_string_equal(cols, "prefix,name");
    raw_text(fx, "SELECT group_concat(name, ',') FROM pragma_table_info('snatches')", cols,
             sizeof(cols));
    assert_string_equal(cols, "user_id,torrent_id,at");
    /* v5: the user's peer on the torrent, in the history row; sites read
     * peers through peer_reports (docs/STORES.md). v6: keyed by id. */
    raw_text(fx, "SELECT group_concat(name, ',') FROM pragma_table_info('user_torrents')", cols,
             sizeof(cols));
    assert_string_equal(cols, "id,user_id,torrent_id,uploaded,downloaded,raw_uploaded,"
                              "raw_downloaded,seed_time,leech_time,announces,first_announce,"
                              "last_announce,completed_at,peer_id,peer_family,peer_ip,peer_port,"
                              "peer_uploaded,peer_downloaded,peer_seeder,peer_partial,"
                              "peer_last_seen,peer_version,peer_gone");
    raw_text(fx, "SELECT group_concat(name, ',') FROM pragma_table_info('peer_reports')", cols,
             sizeof(cols));
    assert_string_equal(cols, "torrent_id,user_id,peer_id,family,ip,port,uploaded,downloaded,"
                              "seeder,partial,last_seen,version,gone");
    /* Defaults the operator relies on when inserting by hand. */
    raw_exec(fx, "INSERT INTO users (passkey) VALUES ('abc'); "
                 "INSERT INTO torrents (info_hash) VALUES (zeroblob(20))");
    /* A history row's id is its user and torrent (docs/STORES.md), and the
     * database refuses any other: the books find rows by it. */
    raw_exec(fx, "INSERT INTO user_torrents (id, user_id, torrent_id, first_announce,"
                 " last_announce) VALUES ((7 << 32) | 9, 7, 9, 1, 1)");
    assert_int_equal(raw_int(fx, "SELECT id FROM user_torrents WHERE user_id = 7"),
                     (int64_t)7 << 32 | 9);
    sqlite3 *db = raw(fx);
    assert_int_equal(sqlite3_exec(db, "INSERT INTO user_torrents (user_id, torrent_id,"
                                      " first_announce, last_announce) VALUES (8, 9, 1, 1)",
                                  NULL, NULL, NULL),
                     SQLITE_CONSTRAINT);
    assert_int_equal(sqlite3_extended_errcode(db), SQLITE_CONSTRAINT_CHECK);
    sqlite3_close(db);
    assert_int_equal(
        raw_int(fx, "SELECT enabled + can_download + uploaded + downloaded FROM users"), 2);
    assert_true(raw_int(fx, "SELECT created_at FROM users") > 1600000000);
    assert_int_equal(raw_int(fx, "SELECT enabled + deleted + snatches + length(deleted_reason) "
                                 "FROM torrents"),
                     1);
}

static void test_open_rejects_unknown_schema_version(void **state)
{
    struct fixture *fx = *state;
    raw_exec(fx, "PRAGMA user_version = 99");
    struct store_cfg cfg = {.path = fx->db};
    struct mk_errbuf eb;
    assert_int_equal(store_open(&fx->st, "sqlite", &cfg, &eb), MK_ENOTSUP);
    assert_string_equal(eb.msg, "sqlite: schema version 99 is not one this mika knows (0..6)");
    assert_null(fx->st.ops);
}

static void test_open_unwritable_path_is_eio(void **state)
{
    struct fixture *fx = *state;
    struct store_cfg cfg = {.path = "/nonexistent/dir/mika.db"};
    struct mk_errbuf eb;
    assert_int_equal(store_open(&fx->st, "sqlite", &cfg, &eb), MK_EIO);
    assert_string_equal(eb.msg,
                        "sqlite: open /nonexistent/dir/mika.db: unable to open database file");
    assert_non_null(strstr(log_text(fx), "sqlite.open failed: EIO"));
}

static void test_default_whitelist_is_seeded_once(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    struct whitelist_seen wl = {0};
    struct mk_errbuf eb;
    assert_int_equal(store_load_whitelist(&fx->st, collect_whitelist, &wl, &eb), 0);
    assert_int_equal(wl.n, 16);
    const struct whitelist_row *qb = find_prefix(&wl, "-qB");
    assert_non_null(qb);
    assert_string_equal(qb->name, "qBittorrent");
    assert_non_null(find_prefix(&wl, "-TR"));
    assert_non_null(find_prefix(&wl, "-lt"));
    assert_non_null(find_prefix(&wl, "-LT"));

    /* The operator removes one; reopening must not bring it back. */
    store_close(&fx->st);
    raw_exec(fx, "DELETE FROM whitelist WHERE prefix = '-AZ'");
    open_store(fx);
    memset(&wl, 0, sizeof(wl));
    assert_int_equal(store_load_whitelist(&fx->st, collect_whitelist, &wl, &eb), 0);
    assert_int_equal(wl.n, 15);
    assert_null(find_prefix(&wl, "-AZ"));
    assert_int_equal(raw_int(fx, "SELECT count(*) FROM whitelist"), 15);
}

/* ---- loaders ------------------------------------------------------------- */

static void test_load_users_streams_every_row(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    raw_exec(fx, "INSERT INTO users (id, passkey, enabled, can_download) VALUES"
                 " (7, 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 1, 1),"
                 " (3, 'Zz09', 0, 1),"
                 " (0, 'zero', 1, 0),"
                 " (4294967294, 'big', 5, 0)");
    struct users_seen s = {0};
    struct mk_errbuf eb;
    assert_int_equal(store_load_users(&fx->st, collect_user, &s, &eb), 0);
    assert_int_equal(s.n, 4);
    assert_int_equal(s.rows[0].id, 0);
    assert_string_equal(s.rows[0].passkey, "zero");
    assert_true(s.rows[0].enabled);
    assert_false(s.rows[0].can_download);
    assert_int_equal(s.rows[1].id, 3);
    assert_string_equal(s.rows[1].passkey, "Zz09");
    assert_false(s.rows[1].enabled);
    assert_true(s.rows[1].can_download);
    assert_int_equal(s.rows[2].id, 7);
    assert_string_equal(s.rows[2].passkey, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    assert_int_equal(s.rows[3].id, 4294967294u);
    assert_true(s.rows[3].enabled);
}

static void test_load_users_skips_bad_rows_and_says_which(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    char sql[512];
    char long_key[MK_PASSKEY_MAX + 2];
    memset(long_key, 'k', MK_PASSKEY_MAX + 1);
    long_key[MK_PASSKEY_MAX + 1] = '\0';
    char max_key[MK_PASSKEY_MAX + 1];
    memset(max_key, 'm', MK_PASSKEY_MAX);
    max_key[MK_PASSKEY_MAX] = '\0';
    snprintf(sql, sizeof(sql),
             "INSERT INTO users (id, passkey) VALUES"
             " (1, 'good1'), (2, '%s'), (3, ''), (4, 'has-dash'), (5, 'sp ace'),"
             " (6, '%s'), (4294967295, 'toobig'), (-1, 'negative'), (9, 'good9')",
             long_key, max_key);
    raw_exec(fx, sql);
    struct users_seen s = {0};
    struct mk_errbuf eb;
    assert_int_equal(store_load_users(&fx->st, collect_user, &s, &eb), 0);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.rows[0].id, 1);
    assert_int_equal(s.rows[1].id, 6);
    assert_string_equal(s.rows[1].passkey, max_key);
    assert_int_equal(s.rows[2].id, 9);
    const char *log = log_text(fx);
    assert_non_null(strstr(log, "users row 2 skipped: passkey is 65 bytes (1..64)"));
    assert_non_null(strstr(log, "users row 3 skipped: passkey is 0 bytes (1..64)"));
    assert_non_null(
        strstr(log, "users row 4 skipped: passkey has a character outside [A-Za-z0-9]"));
    assert_non_null(strstr(log, "users row 5 skipped"));
    assert_non_null(strstr(log, "users row 4294967295 skipped: id out of range"));
    assert_non_null(strstr(log, "users row -1 skipped: id out of range"));
    assert_null(strstr(log, "toobig"));
}

static void test_callback_error_stops_the_load(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    raw_exec(fx, "INSERT INTO users (id, passkey) VALUES (1, 'a'), (2, 'b'), (3, 'c')");
    struct users_seen s = {.stop_after = 2};
    struct mk_errbuf eb;
    assert_int_equal(store_load_users(&fx->st, collect_user, &s, &eb), MK_ENOMEM);
    assert_int_equal(s.n, 2);
    assert_string_equal(eb.msg, "sqlite: loading users stopped by the caller");
}

static void test_load_torrents_streams_every_row(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    raw_exec(fx, "INSERT INTO torrents (id, info_hash, enabled, deleted, deleted_reason, snatches)"
                 " VALUES"
                 " (1, X'0102030405060708090A0B0C0D0E0F1011121314', 1, 0, '', 5),"
                 " (2, X'FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF', 0, 1, 'dupe of #1', 0),"
                 " (3, X'0000000000000000000000000000000000000000', 1, 0, '', -4),"
                 " (4, X'1111111111111111111111111111111111111111', 1, 0, '', 5000000000)");
    struct torrents_seen s = {0};
    struct mk_errbuf eb;
    assert_int_equal(store_load_torrents(&fx->st, collect_torrent, &s, &eb), 0);
    assert_int_equal(s.n, 4);
    static const uint8_t h1[20] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18,
                                   19, 20};
    assert_int_equal(s.rows[0].id, 1);
    assert_memory_equal(s.rows[0].info_hash, h1, 20);
    assert_true(s.rows[0].enabled);
    assert_false(s.rows[0].deleted);
    assert_string_equal(s.rows[0].reason, "");
    assert_int_equal(s.rows[0].snatches, 5);
    assert_int_equal(s.rows[1].id, 2);
    assert_false(s.rows[1].enabled);
    assert_true(s.rows[1].deleted);
    assert_string_equal(s.rows[1].reason, "dupe of #1");
    assert_int_equal(s.rows[2].snatches, 0);
    assert_int_equal(s.rows[3].snatches, UINT32_MAX);
}

static void test_load_torrents_skips_bad_hash_and_cuts_long_reason(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    /* 20 characters pass the CHECK, but as UTF-8 text they are 40 bytes. */
    char sql[1024];
    char reason[300] = "";
    for (int i = 0; i < 127; i++) {
        strcat(reason, "r");
    }
    strcat(reason, "\xc3\xa9tail-that-must-go"); /* 'é' straddles byte 128 */
    snprintf(sql, sizeof(sql),
             "INSERT INTO torrents (id, info_hash, deleted, deleted_reason) VALUES"
             " (1, '\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
             "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
             "\xc3\xa9', 0, ''),"
             " (2, X'2222222222222222222222222222222222222222', 1, '%s')",
             reason);
    raw_exec(fx, sql);
    struct torrents_seen s = {0};
    struct mk_errbuf eb;
    assert_int_equal(store_load_torrents(&fx->st, collect_torrent, &s, &eb), 0);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.rows[0].id, 2);
    assert_int_equal(strlen(s.rows[0].reason), 127);
    assert_int_equal(s.rows[0].reason[126], 'r');
    const char *log = log_text(fx);
    assert_non_null(strstr(log, "torrents row 1 skipped: info_hash is 40 bytes, not 20"));
    assert_non_null(strstr(log, "torrents row 2: deleted_reason is 146 bytes, cut to 127"));
}

static void test_load_whitelist_reads_text_and_blob_prefixes(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    char sql[512];
    char long_name[100];
    memset(long_name, 'n', 99);
    long_name[99] = '\0';
    raw_exec(fx, "DELETE FROM whitelist");
    snprintf(sql, sizeof(sql),
             "INSERT INTO whitelist (prefix, name) VALUES"
             " ('-XX1', 'text'), (X'2D590001', 'blob with NUL'), ('', 'empty'),"
             " ('-123456789012345678901', 'too long'), ('-1234567890123456789', 'max'),"
             " ('-NN', '%s')",
             long_name);
    raw_exec(fx, sql);
    struct whitelist_seen s = {0};
    struct mk_errbuf eb;
    assert_int_equal(store_load_whitelist(&fx->st, collect_whitelist, &s, &eb), 0);
    assert_int_equal(s.n, 4);
    const struct whitelist_row *r = find_prefix(&s, "-XX1");
    assert_non_null(r);
    assert_string_equal(r->name, "text");
    assert_int_equal(s.rows[1].prefix_len, 4);
    assert_memory_equal(s.rows[1].prefix, "-Y\0\1", 4);
    r = find_prefix(&s, "-1234567890123456789");
    assert_non_null(r);
    assert_int_equal(r->prefix_len, 20);
    r = find_prefix(&s, "-NN");
    assert_non_null(r);
    assert_int_equal(strlen(r->name), MK_CLIENT_NAME_MAX);
    const char *log = log_text(fx);
    assert_non_null(strstr(log, "whitelist row 3 skipped: prefix is 0 bytes (1..20)"));
    assert_non_null(strstr(log, "whitelist row 4 skipped: prefix is 22 bytes (1..20)"));
    assert_non_null(strstr(log, "whitelist row 6: name is 99 bytes, cut to 64"));
}

static void test_load_snatches_names_torrents_it_holds_and_leaves_others_zero(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    raw_exec(fx, "INSERT INTO torrents (id, info_hash) VALUES"
                 " (10, X'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'),"
                 " (11, X'BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB');"
                 "INSERT INTO snatches (user_id, torrent_id, at) VALUES"
                 " (1, 10, 1700000000), (2, 10, 1700000001), (1, 11, 1700000002),"
                 " (1, 99, 1700000003), (-5, 11, 1700000004)");
    struct snatches_seen s = {0};
    struct mk_errbuf eb;
    assert_int_equal(store_load_snatches(&fx->st, collect_snatch, &s, &eb), 0);
    assert_int_equal(s.n, 4); /* user -5 is out of range */
    uint8_t a[20];
    uint8_t b[20];
    memset(a, 0xAA, 20);
    memset(b, 0xBB, 20);
    assert_int_equal(s.rows[0].user_id, 1);
    assert_int_equal(s.rows[0].torrent_id, 10);
    assert_int_equal(s.rows[0].at, 1700000000);
    assert_memory_equal(s.rows[0].info_hash, a, 20);
    assert_int_equal(s.rows[1].user_id, 2);
    assert_int_equal(s.rows[1].torrent_id, 10);
    assert_int_equal(s.rows[2].user_id, 1);
    assert_int_equal(s.rows[2].torrent_id, 11);
    assert_memory_equal(s.rows[2].info_hash, b, 20);
    /* Torrent 99 is not in this database: the row comes without a hash and
     * the caller (the loader, or store/split.c) names or drops it. */
    uint8_t zero[20] = {0};
    assert_int_equal(s.rows[3].torrent_id, 99);
    assert_memory_equal(s.rows[3].info_hash, zero, 20);
    assert_non_null(strstr(log_text(fx),
                           "snatches row (user_id -5, torrent_id 11) skipped: id out of range"));
}

/* ---- apply --------------------------------------------------------------- */

static void add_user_and_torrent(struct fixture *fx)
{
    raw_exec(fx, "INSERT INTO users (id, passkey, uploaded, downloaded) VALUES"
                 " (1, 'one', 100, 7), (2, 'two', 0, 0);"
                 "INSERT INTO torrents (id, info_hash) VALUES"
                 " (5, X'5555555555555555555555555555555555555555')");
}

static void test_apply_adds_exactly(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    add_user_and_torrent(fx);
    struct acct_delta d[] = {
        {.user_id = 1, .torrent_id = 5, .uploaded = 1000, .downloaded = 1, .at = 1},
        {.user_id = 2, .torrent_id = 5, .uploaded = 0, .downloaded = 1ull << 40, .at = 1},
        {.user_id = 1, .torrent_id = 5, .uploaded = 23, .downloaded = 0, .at = 2},
        {.user_id = 77, .torrent_id = 5, .uploaded = 5, .downloaded = 5, .at = 2}, /* no user */
    };
    struct mk_errbuf eb;
    assert_int_equal(store_apply(&fx->st, d, 4, &eb), 0);
    assert_int_equal(raw_int(fx, "SELECT uploaded FROM users WHERE id = 1"), 1123);
    assert_int_equal(raw_int(fx, "SELECT downloaded FROM users WHERE id = 1"), 8);
    assert_int_equal(raw_int(fx, "SELECT uploaded FROM users WHERE id = 2"), 0);
    assert_int_equal(raw_int(fx, "SELECT downloaded FROM users WHERE id = 2"), 1ll << 40);
    assert_int_equal(raw_int(fx, "SELECT count(*) FROM snatches"), 0);
    assert_int_equal(raw_int(fx, "SELECT snatches FROM torrents WHERE id = 5"), 0);
    /* The same batch again adds the same again: apply itself is additive. */
    assert_int_equal(store_apply(&fx->st, d, 4, &eb), 0);
    assert_int_equal(raw_int(fx, "SELECT uploaded FROM users WHERE id = 1"), 2146);
    assert_int_equal(store_apply(&fx->st, d, 0, &eb), 0);
}

static void test_apply_counts_a_snatch_once_even_when_repeated(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    add_user_and_torrent(fx);
    struct acct_delta d[] = {
        {.user_id = 1, .torrent_id = 5, .downloaded = 10, .snatch = true, .at = 1700000000},
        {.user_id = 1, .torrent_id = 5, .snatch = true, .at = 1700000099},
        {.user_id = 2, .torrent_id = 5, .snatch = true, .at = 1700000100},
    };
    struct mk_errbuf eb;
    assert_int_equal(store_apply(&fx->st, d, 3, &eb), 0);
    assert_int_equal(store_apply(&fx->st, d, 2, &eb), 0);
    assert_int_equal(raw_int(fx, "SELECT snatches FROM torrents WHERE id = 5"), 2);
    assert_int_equal(raw_int(fx, "SELECT count(*) FROM snatches"), 2);
    assert_int_equal(raw_int(fx, "SELECT at FROM snatches WHERE user_id = 1"), 1700000000);
    assert_int_equal(raw_int(fx, "SELECT downloaded FROM users WHERE id = 1"), 27);
}

static void test_apply_while_locked_is_eunavail_quickly_then_succeeds(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    add_user_and_torrent(fx);
    sqlite3 *shell = raw(fx);
    assert_int_equal(sqlite3_exec(shell, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    struct acct_delta d[] = {
        {.user_id = 1, .torrent_id = 5, .uploaded = 50, .snatch = true, .at = 1},
    };
    struct mk_errbuf eb;
    double t0 = now_s();
    assert_int_equal(store_apply(&fx->st, d, 1, &eb), MK_EUNAVAIL);
    double took = now_s() - t0;
    assert_true(took < 1.0);
    assert_non_null(strstr(eb.msg, "database is locked"));
    assert_non_null(strstr(log_text(fx), "sqlite.apply failed: EUNAVAIL"));
    assert_int_equal(sqlite3_exec(shell, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(shell);

    assert_int_equal(store_apply(&fx->st, d, 1, &eb), 0);
    assert_int_equal(raw_int(fx, "SELECT uploaded FROM users WHERE id = 1"), 150);
    assert_int_equal(raw_int(fx, "SELECT snatches FROM torrents WHERE id = 5"), 1);
}

static void test_a_reader_does_not_block_apply(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    add_user_and_torrent(fx);
    sqlite3 *shell = raw(fx);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_exec(shell, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(shell, "SELECT uploaded FROM users WHERE id = 1", -1,
                                        &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    struct acct_delta d = {.user_id = 1, .uploaded = 1};
    struct mk_errbuf eb;
    assert_int_equal(store_apply(&fx->st, &d, 1, &eb), 0);
    sqlite3_finalize(st);
    sqlite3_exec(shell, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(shell);
    assert_int_equal(raw_int(fx, "SELECT uploaded FROM users WHERE id = 1"), 101);
}

/* A journal segment is applied once: the replay after a crash that came
 * between the commit and the segment's deletion changes nothing. */
static void test_apply_segment_applies_each_segment_once(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    add_user_and_torrent(fx);
    struct acct_delta d[] = {
        {.user_id = 1, .torrent_id = 5, .uploaded = 700, .downloaded = 3, .snatch = true, .at = 9},
        {.user_id = 2, .torrent_id = 5, .uploaded = 11, .at = 9},
    };
    struct store_segment_id a = {.boot = UINT64_MAX, .writer = 3, .seq = 41};
    struct store_segment_id b = {.boot = UINT64_MAX, .writer = 3, .seq = 42};
    struct mk_errbuf eb;
    assert_int_equal(store_apply_segment(&fx->st, &a, d, 2, &eb), 0);
    assert_int_equal(store_apply_segment(&fx->st, &a, d, 2, &eb), MK_EEXIST);
    /* add_user_and_torrent() starts user 1 at 100 uploaded. */
    assert_int_equal(raw_int(fx, "SELECT uploaded FROM users WHERE id = 1"), 800);
    assert_int_equal(raw_int(fx, "SELECT uploaded FROM users WHERE id = 2"), 11);
    assert_int_equal(raw_int(fx, "SELECT snatches FROM torrents WHERE id = 5"), 1);
    /* Another segment with the same rows is new books. */
    assert_int_equal(store_apply_segment(&fx->st, &b, d, 2, &eb), 0);
    assert_int_equal(raw_int(fx, "SELECT uploaded FROM users WHERE id = 1"), 1500);
    assert_int_equal(raw_int(fx, "SELECT count(*) FROM journal_applied"), 2);
    assert_int_equal(raw_int(fx, "SELECT records FROM journal_applied WHERE seq = 42"), 2);
}

struct peers_seen {
    struct peer_row rows[8];
    int n;
};

static int collect_peer(const struct peer_row *row, void *arg)
{
    struct peers_seen *ps = arg;
    if (ps->n < 8) {
        ps->rows[ps->n] = *row;
    }
    ps->n++;
    return 0;
}

static struct acct_delta peer_delta(uint32_t user, const char *pid, uint64_t up, int64_t seen,
                                    int64_t version, bool gone)
{
    struct acct_delta d = {.user_id = user, .torrent_id = 5, .at = seen, .has_peer = true};
    d.peer = (struct peer_row){.torrent_id = 5, .user_id = user, .family = 4, .port = 6881,
                               .uploaded = up, .downloaded = up / 2, .seeder = true,
                               .last_seen = seen, .version = version, .gone = gone};
    memcpy(d.peer.peer_id, pid, 20);
    memcpy(d.peer.ip, "\x7f\x00\x00\x01", 4);
    return d;
}

/* Each peer's last report is kept for the next start; segments of different
 * workers arrive in any order, so an older report never overwrites a newer
 * one; a peer that left is not loaded; old peers are pruned. */
static void test_peers_keep_the_newest_report_and_load_with_their_hash(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    add_user_and_torrent(fx);
    const char *pa = "-qB4650-aaaaaaaaaaaa", *pb = "-TR3000-bbbbbbbbbbbb";
    struct acct_delta newer[] = {peer_delta(1, pa, 900, 1000, 1000000900, false),
                                 peer_delta(2, pb, 50, 1000, 1000000950, false)};
    struct acct_delta older[] = {peer_delta(1, pa, 300, 999, 999000000, false)};
    struct store_segment_id s1 = {.boot = 1, .writer = 1, .seq = 1};
    struct store_segment_id s0 = {.boot = 1, .writer = 0, .seq = 1};
    struct mk_errbuf eb;
    assert_int_equal(store_apply_segment(&fx->st, &s1, newer, 2, &eb), 0);
    assert_int_equal(store_apply_segment(&fx->st, &s0, older, 1, &eb), 0);
    struct peers_seen ps = {.n = 0};
    assert_int_equal(store_load_peers(&fx->st, 0, collect_peer, &ps, &eb), 0);
    assert_int_equal(ps.n, 2);
    for (int i = 0; i < 2; i++) {
        const struct peer_row *r = &ps.rows[i];
        assert_memory_equal(r->info_hash, "\x55\x55\x55\x55\x55\x55\x55\x55\x55\x55"
                                          "\x55\x55\x55\x55\x55\x55\x55\x55\x55\x55", 20);
        assert_int_equal(r->family, 4);
        assert_int_equal(r->port, 6881);
        assert_true(r->seeder);
        if (r->user_id == 1) {
            assert_memory_equal(r->peer_id, pa, 20);
            assert_int_equal(r->uploaded, 900); /* not the older 300 */
            assert_int_equal(r->downloaded, 450);
        } else {
            assert_int_equal(r->uploaded, 50);
        }
    }
    /* Gone: not loaded, and an older report cannot bring it back. */
    struct acct_delta left[] = {peer_delta(2, pb, 60, 1001, 1001000000, true)};
    struct acct_delta stale[] = {peer_delta(2, pb, 55, 1000, 1000000990, false)};
    struct store_segment_id s2 = {.boot = 1, .writer = 0, .seq = 2};
    struct store_segment_id s3 = {.boot = 1, .writer = 1, .seq = 2};
    assert_int_equal(store_apply_segment(&fx->st, &s2, left, 1, &eb), 0);
    assert_int_equal(store_apply_segment(&fx->st, &s3, stale, 1, &eb), 0);
    ps.n = 0;
    assert_int_equal(store_load_peers(&fx->st, 0, collect_peer, &ps, &eb), 0);
    assert_int_equal(ps.n, 1);
    assert_int_equal(ps.rows[0].user_id, 1);
    /* seen_since filters; prune deletes what is older. */
    ps.n = 0;
    assert_int_equal(store_load_peers(&fx->st, 1001, collect_peer, &ps, &eb), 0);
    assert_int_equal(ps.n, 0);
    assert_int_equal(store_prune_peers(&fx->st, 1001, &eb), 0);
    assert_int_equal(raw_int(fx, "SELECT count(*) FROM peers"), 1); /* the gone row, seen at 1001 */
}

/* v6 keys user_torrents by id. A database built by this mika's own v1..v5
 * migrations, with history rows in the WITHOUT ROWID table (user 1's keeping
 * its peer, user 2's none) and two peers in peers, is migrated with every
 * row, total and peer, and the books then add to the migrated rows rather
 * than beside them. */
static void test_migration_to_v6_keys_history_rows_by_user_and_torrent(void **state)
{
    struct fixture *fx = *state;
    sqlite3 *db = raw(fx);
    struct mk_errbuf eb;
    assert_int_equal(sqlite_migrate_to(db, 5, &eb), 0);
    sqlite3_close(db);
    assert_int_equal(raw_int(fx, "PRAGMA user_version"), 5);
    add_user_and_torrent(fx);
    raw_exec(fx, "INSERT INTO user_torrents (user_id, torrent_id, uploaded, raw_uploaded,"
                 " announces, first_announce, last_announce, peer_id, peer_family, peer_ip,"
                 " peer_port, peer_uploaded, peer_downloaded, peer_seeder, peer_partial,"
                 " peer_last_seen, peer_version, peer_gone) VALUES"
                 " (1, 5, 40, 40, 2, 1000, 1000, CAST('-qB4650-aaaaaaaaaaaa' AS BLOB), 4,"
                 " X'7f000001', 6881, 900, 450, 1, 0, 1000, 1000000900, 0);"
                 "INSERT INTO user_torrents (user_id, torrent_id, uploaded, raw_uploaded,"
                 " announces, first_announce, last_announce) VALUES (2, 5, 20, 20, 1, 1000, 1000);"
                 "INSERT INTO peers VALUES"
                 " (5, 1, CAST('-qB4650-cccccccccccc' AS BLOB), 4, X'7f000001', 6882, 70, 35, 1,"
                 " 0, 1000, 1000000960, 0),"
                 " (5, 2, CAST('-TR3000-bbbbbbbbbbbb' AS BLOB), 4, X'7f000001', 6883, 50, 25, 1,"
                 " 0, 1000, 1000000950, 0)");
    open_store(fx);
    assert_non_null(strstr(log_text(fx), "schema migrated to version 6"));
    assert_int_equal(raw_int(fx, "PRAGMA user_version"), 6);
    assert_int_equal(raw_int(fx, "SELECT count(*) FROM user_torrents"
                                 " WHERE id = (user_id << 32) | torrent_id"),
                     2);
    assert_int_equal(raw_int(fx, "SELECT raw_uploaded FROM user_torrents WHERE user_id = 1"), 40);
    struct peers_seen ps = {.n = 0};
    assert_int_equal(store_load_peers(&fx->st, 0, collect_peer, &ps, &eb), 0);
    assert_int_equal(ps.n, 3);
    struct acct_delta again = peer_delta(1, "-qB4650-aaaaaaaaaaaa", 950, 1001, 1001000000, false);
    again.uploaded = 5;
    again.announces = 1;
    assert_int_equal(store_apply(&fx->st, &again, 1, &eb), 0);
    assert_int_equal(raw_int(fx, "SELECT count(*) FROM user_torrents"), 2);
    assert_int_equal(raw_int(fx, "SELECT raw_uploaded FROM user_torrents WHERE user_id = 1"), 45);
    assert_int_equal(raw_int(fx, "SELECT peer_uploaded FROM user_torrents WHERE user_id = 1"),
                     950);
}

/* A target past the schema this mika knows is the caller's mistake. */
static void test_migrate_to_an_unknown_version_is_einval(void **state)
{
    struct fixture *fx = *state;
    sqlite3 *db = raw(fx);
    struct mk_errbuf eb;
    assert_int_equal(sqlite_migrate_to(db, 99, &eb), MK_EINVAL);
    assert_string_equal(eb.msg, "sqlite: no schema version 99 (0..6)");
    sqlite3_close(db);
}

/* users.uploaded/downloaded get the credited amounts, raw_* what clients
 * reported; a delta that carries no credit (callers applying no rules) is
 * credited as reported. */
static void test_apply_books_credited_and_raw_apart(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    add_user_and_torrent(fx);
    struct acct_delta d[] = {
        {.user_id = 2, .torrent_id = 5, .uploaded = 1000, .downloaded = 400, .has_credit = true,
         .credited_up = 2000, .credited_down = 0, .at = 1},
        {.user_id = 2, .torrent_id = 5, .uploaded = 10, .downloaded = 20, .at = 1},
    };
    struct mk_errbuf eb;
    assert_int_equal(store_apply(&fx->st, d, 2, &eb), 0);
    assert_int_equal(raw_int(fx, "SELECT uploaded FROM users WHERE id = 2"), 2010);
    assert_int_equal(raw_int(fx, "SELECT downloaded FROM users WHERE id = 2"), 20);
    assert_int_equal(raw_int(fx, "SELECT raw_uploaded FROM users WHERE id = 2"), 1010);
    assert_int_equal(raw_int(fx, "SELECT raw_downloaded FROM users WHERE id = 2"), 420);
    struct acct_delta t[] = {
        {.user_id = 2, .torrent_id = 5, .seed_seconds = 600, .bonus = 166666, .at = 1},
        {.user_id = 2, .torrent_id = 5, .leech_seconds = 30, .at = 1},
    };
    assert_int_equal(store_apply(&fx->st, t, 2, &eb), 0);
    assert_int_equal(raw_int(fx, "SELECT seed_time FROM users WHERE id = 2"), 600);
    assert_int_equal(raw_int(fx, "SELECT leech_time FROM users WHERE id = 2"), 30);
    assert_int_equal(raw_int(fx, "SELECT bonus FROM users WHERE id = 2"), 166666);
    assert_int_equal(raw_int(fx, "SELECT uploaded FROM users WHERE id = 2"), 2010);
}

/* Each announce a row stands for is booked on the user's history for the
 * torrent too: bytes credited and raw, time, count, first and last announce,
 * and when it was completed; the torrent's transferred bytes grow. */
static void test_apply_books_the_user_torrent_history(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    add_user_and_torrent(fx);
    struct acct_delta d[] = {
        {.user_id = 2, .torrent_id = 5, .uploaded = 100, .downloaded = 40, .has_credit = true,
         .credited_up = 200, .credited_down = 40, .leech_seconds = 30, .announces = 3,
         .first_at = 1000, .at = 1060},
        {.user_id = 2, .torrent_id = 5, .snatch = true, .at = 1060},
    };
    struct mk_errbuf eb;
    assert_int_equal(store_apply(&fx->st, d, 2, &eb), 0);
    struct acct_delta later[] = {
        {.user_id = 2, .torrent_id = 5, .uploaded = 5, .seed_seconds = 600, .announces = 1,
         .first_at = 1660, .at = 1660},
        {.user_id = 2, .torrent_id = 5, .snatch = true, .at = 1660}, /* a repeat: kept first */
    };
    assert_int_equal(store_apply(&fx->st, later, 2, &eb), 0);
    assert_int_equal(raw_int(fx, "SELECT uploaded FROM user_torrents WHERE user_id = 2"), 205);
    assert_int_equal(raw_int(fx, "SELECT raw_uploaded FROM user_torrents WHERE user_id = 2"), 105);
    assert_int_equal(raw_int(fx, "SELECT downloaded FROM user_torrents WHERE user_id = 2"), 40);
    assert_int_equal(raw_int(fx, "SELECT seed_time FROM user_torrents WHERE user_id = 2"), 600);
    assert_int_equal(raw_int(fx, "SELECT leech_time FROM user_torrents WHERE user_id = 2"), 30);
    assert_int_equal(raw_int(fx, "SELECT announces FROM user_torrents WHERE user_id = 2"), 4);
    assert_int_equal(raw_int(fx, "SELECT first_announce FROM user_torrents WHERE user_id = 2"),
                     1000);
    assert_int_equal(raw_int(fx, "SELECT last_announce FROM user_torrents WHERE user_id = 2"),
                     1660);
    assert_int_equal(raw_int(fx, "SELECT completed_at FROM user_torrents WHERE user_id = 2"),
                     1060);
    assert_int_equal(raw_int(fx, "SELECT announces FROM users WHERE id = 2"), 4);
    assert_int_equal(raw_int(fx, "SELECT transferred FROM torrents WHERE id = 5"), 40);
}

/* A batch's rows for one torrent are summed into one update of its
 * transferred bytes; rows of other torrents, and rows without downloads,
 * are not mixed in. */
static void test_apply_sums_transferred_per_torrent(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    add_user_and_torrent(fx);
    raw_exec(fx, "INSERT INTO torrents (id, info_hash) VALUES"
                 " (9, X'9999999999999999999999999999999999999999')");
    struct acct_delta d[] = {
        {.user_id = 1, .torrent_id = 9, .downloaded = 7, .announces = 1, .at = 10},
        {.user_id = 1, .torrent_id = 5, .downloaded = 11, .announces = 1, .at = 10},
        {.user_id = 2, .torrent_id = 5, .downloaded = 13, .announces = 2, .at = 10},
        {.user_id = 2, .torrent_id = 9, .uploaded = 50, .announces = 1, .at = 10},
        {.user_id = 2, .torrent_id = 9, .downloaded = 17, .announces = 1, .at = 11},
    };
    struct mk_errbuf eb;
    assert_int_equal(store_apply(&fx->st, d, 5, &eb), 0);
    assert_int_equal(raw_int(fx, "SELECT transferred FROM torrents WHERE id = 5"), 24);
    assert_int_equal(raw_int(fx, "SELECT transferred FROM torrents WHERE id = 9"), 24);
    assert_int_equal(store_apply(&fx->st, d, 1, &eb), 0);
    assert_int_equal(raw_int(fx, "SELECT transferred FROM torrents WHERE id = 9"), 31);
}

static void test_reopen_keeps_data(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    add_user_and_torrent(fx);
    struct acct_delta d = {.user_id = 2, .torrent_id = 5, .uploaded = 9, .snatch = true, .at = 3};
    struct mk_errbuf eb;
    assert_int_equal(store_apply(&fx->st, &d, 1, &eb), 0);
    reopen_store(fx);
    assert_int_equal(raw_int(fx, "PRAGMA user_version"), 6);
    struct users_seen us = {0};
    assert_int_equal(store_load_users(&fx->st, collect_user, &us, &eb), 0);
    assert_int_equal(us.n, 2);
    struct torrents_seen ts = {0};
    assert_int_equal(store_load_torrents(&fx->st, collect_torrent, &ts, &eb), 0);
    assert_int_equal(ts.n, 1);
    assert_int_equal(ts.rows[0].snatches, 1);
    struct snatches_seen ss = {0};
    assert_int_equal(store_load_snatches(&fx->st, collect_snatch, &ss, &eb), 0);
    assert_int_equal(ss.n, 1);
    assert_int_equal(ss.rows[0].user_id, 2);
    assert_int_equal(raw_int(fx, "SELECT uploaded FROM users WHERE id = 2"), 9);
    /* Applying the same snatch after a reopen still does not count twice. */
    assert_int_equal(store_apply(&fx->st, &d, 1, &eb), 0);
    assert_int_equal(raw_int(fx, "SELECT snatches FROM torrents WHERE id = 5"), 1);
}

/* ---- MK_STORE_V2: the admin API's methods -------------------------------- */

/* The v1 schema exactly as mika 0.1 created it. */
static const char v1_schema[] =
    "CREATE TABLE users (id INTEGER PRIMARY KEY, passkey TEXT NOT NULL UNIQUE,"
    " enabled INTEGER NOT NULL DEFAULT 1, can_download INTEGER NOT NULL DEFAULT 1,"
    " uploaded INTEGER NOT NULL DEFAULT 0, downloaded INTEGER NOT NULL DEFAULT 0,"
    " created_at INTEGER NOT NULL DEFAULT (strftime('%s','now')));"
    "CREATE TABLE torrents (id INTEGER PRIMARY KEY,"
    " info_hash BLOB NOT NULL UNIQUE CHECK (length(info_hash) = 20),"
    " enabled INTEGER NOT NULL DEFAULT 1, deleted INTEGER NOT NULL DEFAULT 0,"
    " deleted_reason TEXT NOT NULL DEFAULT '', snatches INTEGER NOT NULL DEFAULT 0,"
    " created_at INTEGER NOT NULL DEFAULT (strftime('%s','now')));"
    "CREATE TABLE whitelist (prefix TEXT PRIMARY KEY, name TEXT NOT NULL);"
    "CREATE TABLE snatches (user_id INTEGER NOT NULL, torrent_id INTEGER NOT NULL,"
    " at INTEGER NOT NULL, PRIMARY KEY (user_id, torrent_id)) WITHOUT ROWID;"
    "PRAGMA user_version = 1;";

static void test_migration_from_v1_keeps_rows_and_adds_v2_defaults(void **state)
{
    struct fixture *fx = *state;
    raw_exec(fx, v1_schema);
    raw_exec(fx, "INSERT INTO users (id, passkey, can_download, uploaded) VALUES (7, 'pk7', 0, 99);"
                 "INSERT INTO torrents (id, info_hash, deleted, deleted_reason)"
                 " VALUES (3, zeroblob(20), 1, 'dupe');"
                 "INSERT INTO whitelist VALUES ('-XX', 'X client')");
    open_store(fx);
    assert_int_equal(raw_int(fx, "PRAGMA user_version"), 6);
    assert_non_null(strstr(log_text(fx), "schema migrated to version 2"));
    assert_null(strstr(log_text(fx), "schema migrated to version 1"));
    /* Rows keep their v1 columns and get the v2 defaults. */
    struct user_rec u;
    struct mk_errbuf eb;
    assert_int_equal(store_user_get(&fx->st, 7, &u, &eb), 0);
    assert_string_equal(u.row.passkey, "pk7");
    assert_false(u.may_download);
    assert_false(u.row.can_download);
    assert_int_equal(u.uploaded, 99);
    assert_string_equal(u.name, "");
    assert_int_equal(u.class_id, MK_CLASS_DEFAULT);
    assert_int_equal(u.up_mult, MK_MULT_ONE);
    assert_int_equal(u.down_mult, MK_MULT_ONE);
    struct torrent_rec t;
    uint8_t zero[20] = {0};
    assert_int_equal(store_torrent_get(&fx->st, zero, &t, &eb), 0);
    assert_int_equal(t.row.id, 3);
    assert_true(t.row.deleted);
    assert_string_equal(t.row.reason, "dupe");
    assert_false(t.freeleech);
    assert_false(t.has_size);
    assert_int_equal(t.up_mult, MK_MULT_ONE);
    struct class_row c;
    assert_int_equal(store_class_get(&fx->st, MK_CLASS_DEFAULT, &c, &eb), 0);
    assert_string_equal(c.name, "user");
    assert_true(c.may_download);
    assert_int_equal(c.users, 1);
    /* The whitelist is not seeded again on a migrated database. */
    assert_int_equal(raw_int(fx, "SELECT count(*) FROM whitelist"), 1);
    struct users_seen us = {0};
    assert_int_equal(store_load_users(&fx->st, collect_user, &us, &eb), 0);
    assert_int_equal(us.n, 1);
    assert_int_equal(us.rows[0].id, 7);
}

static void test_load_users_denies_download_when_the_class_does(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    raw_exec(fx, "INSERT INTO classes (id, name, may_download) VALUES (5, 'seeders only', 0);"
                 "INSERT INTO users (id, passkey, class_id) VALUES (1, 'aaaa', 5), (2, 'bbbb', 1)");
    struct users_seen us = {0};
    struct mk_errbuf eb;
    assert_int_equal(store_load_users(&fx->st, collect_user, &us, &eb), 0);
    assert_int_equal(us.n, 2);
    assert_false(us.rows[0].can_download);
    assert_true(us.rows[1].can_download);
    struct user_rec u;
    assert_int_equal(store_user_get(&fx->st, 1, &u, &eb), 0);
    assert_true(u.may_download);      /* the user's own flag */
    assert_false(u.row.can_download); /* the effective right */
}

static void test_ping_answers_on_an_open_store(void **state)
{
    struct fixture *fx = *state;
    struct mk_errbuf eb;
    assert_int_equal(store_ping(&fx->st, &eb), MK_EINVAL);
    open_store(fx);
    assert_int_equal(store_ping(&fx->st, &eb), 0);
}

static void test_v2_methods_on_a_v1_backend_are_enotsup(void **state)
{
    struct store_ops ops = store_sqlite_ops;
    ops.version = MK_STORE_V1;
    struct store st = {.ops = &ops, .ctx = &ops};
    struct mk_errbuf eb;
    struct user_rec u;
    assert_int_equal(store_user_get(&st, 1, &u, &eb), MK_ENOTSUP);
    assert_string_equal(eb.msg, "store sqlite: interface version 1 has no user_get");
    ops = store_sqlite_ops;
    ops.class_list = NULL;
    assert_int_equal(store_class_list(&st, NULL, NULL, &eb), MK_ENOTSUP);
    assert_string_equal(eb.msg, "store sqlite has no class_list");
}

static struct user_rec new_user(const char *passkey, const char *name)
{
    struct user_rec u = {.row = {.enabled = true}, .may_download = true,
                         .class_id = MK_CLASS_DEFAULT, .up_mult = MK_MULT_ONE,
                         .down_mult = MK_MULT_ONE};
    snprintf(u.row.passkey, sizeof(u.row.passkey), "%s", passkey);
    snprintf(u.name, sizeof(u.name), "%s", name);
    return u;
}

static void test_user_insert_picks_an_id_and_reads_back_defaults(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    struct mk_errbuf eb;
    struct user_rec u = new_user("pkA", "alice");
    u.up_mult = 1500;
    assert_int_equal(store_user_insert(&fx->st, &u, false, &eb), 0);
    assert_int_equal(u.row.id, 1);
    assert_true(u.created_at > 1600000000);
    assert_int_equal(u.up_mult, 1500);
    assert_int_equal(u.uploaded, 0);
    assert_true(u.row.can_download);
    struct user_rec v = new_user("pkB", "");
    v.row.id = 1000;
    assert_int_equal(store_user_insert(&fx->st, &v, true, &eb), 0);
    assert_int_equal(v.row.id, 1000);
    assert_string_equal(v.name, "");
    assert_int_equal(raw_int(fx, "SELECT name IS NULL FROM users WHERE id = 1000"), 1);
    struct user_rec w = new_user("pkC", "");
    assert_int_equal(store_user_insert(&fx->st, &w, false, &eb), 0);
    assert_int_equal(w.row.id, 1001);
}

static void test_user_insert_names_the_duplicate_column(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    struct mk_errbuf eb;
    struct user_rec u = new_user("pkA", "alice");
    assert_int_equal(store_user_insert(&fx->st, &u, false, &eb), 0);
    struct user_rec dup = new_user("pkA", "bob");
    assert_int_equal(store_user_insert(&fx->st, &dup, false, &eb), MK_EEXIST);
    assert_string_equal(eb.msg, "passkey");
    dup = new_user("pkB", "alice");
    assert_int_equal(store_user_insert(&fx->st, &dup, false, &eb), MK_EEXIST);
    assert_string_equal(eb.msg, "name");
    dup = new_user("pkB", "bob");
    dup.row.id = u.row.id;
    assert_int_equal(store_user_insert(&fx->st, &dup, true, &eb), MK_EEXIST);
    assert_string_equal(eb.msg, "id");
    /* Nameless users do not collide with each other. */
    struct user_rec a = new_user("pkC", ""), b = new_user("pkD", "");
    assert_int_equal(store_user_insert(&fx->st, &a, false, &eb), 0);
    assert_int_equal(store_user_insert(&fx->st, &b, false, &eb), 0);
    assert_int_equal(raw_int(fx, "SELECT count(*) FROM users"), 3);
    assert_null(strstr(log_text(fx), "failed"));
}

static void test_user_insert_into_a_missing_class_is_enotfound(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    struct mk_errbuf eb;
    struct user_rec u = new_user("pkA", "alice");
    u.class_id = 42;
    assert_int_equal(store_user_insert(&fx->st, &u, false, &eb), MK_ENOTFOUND);
    assert_string_equal(eb.msg, "class_id");
    assert_int_equal(raw_int(fx, "SELECT count(*) FROM users"), 0);
}

static void test_user_get_by_passkey_and_update(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    struct mk_errbuf eb;
    struct user_rec u = new_user("pkA", "alice");
    assert_int_equal(store_user_insert(&fx->st, &u, false, &eb), 0);
    raw_exec(fx, "INSERT INTO classes (id, name, may_download) VALUES (9, 'vip', 0);"
                 "UPDATE users SET uploaded = 5, downloaded = 6");
    struct user_rec got;
    assert_int_equal(store_user_get_by_passkey(&fx->st, "pkA", &got, &eb), 0);
    assert_int_equal(got.row.id, u.row.id);
    assert_int_equal(got.uploaded, 5);
    assert_int_equal(store_user_get_by_passkey(&fx->st, "nope", &got, &eb), MK_ENOTFOUND);
    assert_string_equal(eb.msg, "user");

    u.row.enabled = false;
    snprintf(u.row.passkey, sizeof(u.row.passkey), "pkNew");
    snprintf(u.name, sizeof(u.name), "alice2");
    u.class_id = 9;
    u.down_mult = 0;
    u.uploaded = 777; /* the books are not the API's to write */
    assert_int_equal(store_user_update(&fx->st, &u, &eb), 0);
    assert_int_equal(store_user_get(&fx->st, u.row.id, &got, &eb), 0);
    assert_false(got.row.enabled);
    assert_string_equal(got.row.passkey, "pkNew");
    assert_string_equal(got.name, "alice2");
    assert_int_equal(got.class_id, 9);
    assert_int_equal(got.down_mult, 0);
    assert_int_equal(got.uploaded, 5);
    assert_true(got.may_download);
    assert_false(got.row.can_download);
    u.class_id = 77;
    assert_int_equal(store_user_update(&fx->st, &u, &eb), MK_ENOTFOUND);
    assert_string_equal(eb.msg, "class_id");
}

static void test_user_update_of_a_missing_user_is_enotfound(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    struct mk_errbuf eb;
    struct user_rec u = new_user("pkA", "");
    u.row.id = 5;
    assert_int_equal(store_user_update(&fx->st, &u, &eb), MK_ENOTFOUND);
    assert_string_equal(eb.msg, "user");
    assert_int_equal(store_user_delete(&fx->st, 5, &eb), MK_ENOTFOUND);
    assert_int_equal(store_user_get(&fx->st, 5, &u, &eb), MK_ENOTFOUND);
}

static void test_user_delete_removes_the_user_and_their_snatches(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    raw_exec(fx, "INSERT INTO users (id, passkey) VALUES (1, 'aaaa'), (2, 'bbbb');"
                 "INSERT INTO snatches VALUES (1, 5, 1), (1, 6, 1), (2, 5, 1)");
    struct mk_errbuf eb;
    struct user_rec u;
    assert_int_equal(store_user_get(&fx->st, 1, &u, &eb), 0);
    assert_int_equal(u.snatches, 2);
    assert_int_equal(store_user_delete(&fx->st, 1, &eb), 0);
    assert_int_equal(store_user_get(&fx->st, 1, &u, &eb), MK_ENOTFOUND);
    assert_int_equal(raw_int(fx, "SELECT count(*) FROM snatches"), 1);
    assert_int_equal(raw_int(fx, "SELECT user_id FROM snatches"), 2);
}

struct recs_seen {
    uint32_t ids[MAX_ROWS];
    size_t n;
};

static int collect_rec(const struct user_rec *rec, void *arg)
{
    struct recs_seen *s = arg;
    assert_true(s->n < MAX_ROWS);
    s->ids[s->n++] = rec->row.id;
    return 0;
}

static void test_user_list_filters_pages_and_counts(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    raw_exec(fx, "INSERT INTO classes (id, name) VALUES (2, 'power');"
                 "INSERT INTO users (id, passkey, name, enabled, can_download, class_id) VALUES"
                 " (1, 'a1', 'anna', 1, 1, 1), (2, 'a2', 'anton', 0, 1, 1),"
                 " (3, 'a3', 'bert', 1, 0, 2), (4, 'a4', NULL, 1, 1, 2),"
                 " (5, 'a5', 'Andy', 1, 1, 1)");
    struct mk_errbuf eb;
    uint64_t total = 0;
    struct recs_seen s = {0};
    struct user_filter all = {.limit = 2, .enabled = -1, .may_download = -1};
    assert_int_equal(store_user_list(&fx->st, &all, collect_rec, &s, &total, &eb), 0);
    assert_int_equal(total, 5);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.ids[0], 1);
    assert_int_equal(s.ids[1], 2);
    s.n = 0;
    all.offset = 4;
    assert_int_equal(store_user_list(&fx->st, &all, collect_rec, &s, &total, &eb), 0);
    assert_int_equal(total, 5);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.ids[0], 5);

    struct user_filter f = {.limit = 100, .enabled = 1, .may_download = -1};
    s.n = 0;
    assert_int_equal(store_user_list(&fx->st, &f, collect_rec, &s, &total, &eb), 0);
    assert_int_equal(total, 4);
    f = (struct user_filter){.limit = 100, .enabled = -1, .may_download = 0};
    s.n = 0;
    assert_int_equal(store_user_list(&fx->st, &f, collect_rec, &s, &total, &eb), 0);
    assert_int_equal(total, 1);
    assert_int_equal(s.ids[0], 3);
    f = (struct user_filter){.limit = 100, .enabled = -1, .may_download = -1, .has_class = true,
                             .class_id = 2};
    s.n = 0;
    assert_int_equal(store_user_list(&fx->st, &f, collect_rec, &s, &total, &eb), 0);
    assert_int_equal(total, 2);
    assert_int_equal(s.ids[0], 3);
    assert_int_equal(s.ids[1], 4);
    /* Name prefixes are case-sensitive. */
    f = (struct user_filter){.limit = 100, .enabled = -1, .may_download = -1,
                             .name_prefix = "an"};
    s.n = 0;
    assert_int_equal(store_user_list(&fx->st, &f, collect_rec, &s, &total, &eb), 0);
    assert_int_equal(total, 2);
    assert_int_equal(s.ids[0], 1);
    assert_int_equal(s.ids[1], 2);
}

static void test_torrent_insert_get_update(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    struct mk_errbuf eb;
    struct torrent_rec t = {.row = {.enabled = true}, .has_size = true, .size = 1ull << 40,
                            .freeleech = true, .up_mult = 2000, .down_mult = 500};
    memset(t.row.info_hash, 0xab, 20);
    snprintf(t.name, sizeof(t.name), "Some.Linux.iso");
    assert_int_equal(store_torrent_insert(&fx->st, &t, &eb), 0);
    assert_int_equal(t.row.id, 1);
    assert_true(t.created_at > 1600000000);
    struct torrent_rec got;
    assert_int_equal(store_torrent_get(&fx->st, t.row.info_hash, &got, &eb), 0);
    assert_string_equal(got.name, "Some.Linux.iso");
    assert_true(got.has_size);
    assert_int_equal(got.size, 1ull << 40);
    assert_true(got.freeleech);
    assert_int_equal(got.up_mult, 2000);
    assert_int_equal(got.down_mult, 500);
    assert_false(got.row.deleted);

    got.row.deleted = true;
    snprintf(got.row.reason, sizeof(got.row.reason), "dupe of #1");
    got.freeleech = false;
    got.name[0] = '\0';
    assert_int_equal(store_torrent_update(&fx->st, &got, &eb), 0);
    assert_int_equal(store_torrent_get(&fx->st, t.row.info_hash, &got, &eb), 0);
    assert_true(got.row.deleted);
    assert_string_equal(got.row.reason, "dupe of #1");
    assert_false(got.freeleech);
    assert_string_equal(got.name, "");
    /* The tracker's loader sees the same row. */
    struct torrents_seen ts = {0};
    assert_int_equal(store_load_torrents(&fx->st, collect_torrent, &ts, &eb), 0);
    assert_int_equal(ts.n, 1);
    assert_true(ts.rows[0].deleted);
    memset(got.row.info_hash, 0xcd, 20);
    assert_int_equal(store_torrent_update(&fx->st, &got, &eb), MK_ENOTFOUND);
    assert_int_equal(store_torrent_get(&fx->st, got.row.info_hash, &got, &eb), MK_ENOTFOUND);
    assert_string_equal(eb.msg, "torrent");
}

static void test_torrent_insert_duplicate_hash_is_eexist(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    struct mk_errbuf eb;
    struct torrent_rec t = {.row = {.enabled = true}, .up_mult = 1000, .down_mult = 1000};
    assert_int_equal(store_torrent_insert(&fx->st, &t, &eb), 0);
    assert_int_equal(store_torrent_insert(&fx->st, &t, &eb), MK_EEXIST);
    assert_string_equal(eb.msg, "info_hash");
}

static void test_whitelist_insert_and_delete_compare_bytes(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    struct mk_errbuf eb;
    /* Seeded as TEXT; the same bytes are a duplicate. */
    struct whitelist_row r = {.prefix = "-qB", .prefix_len = 3, .name = "again"};
    assert_int_equal(store_whitelist_insert(&fx->st, &r, &eb), MK_EEXIST);
    assert_string_equal(eb.msg, "prefix");
    struct whitelist_row bin = {.prefix = {0x01, 0xff, 0x00}, .prefix_len = 3, .name = "binary"};
    assert_int_equal(store_whitelist_insert(&fx->st, &bin, &eb), 0);
    struct whitelist_row txt = {.prefix = "-PI", .prefix_len = 3, .name = "PicoTorrent"};
    assert_int_equal(store_whitelist_insert(&fx->st, &txt, &eb), 0);
    assert_int_equal(raw_int(fx, "SELECT typeof(prefix) = 'text' FROM whitelist"
                                 " WHERE prefix = '-PI'"),
                     1);
    struct whitelist_seen ws = {0};
    assert_int_equal(store_load_whitelist(&fx->st, collect_whitelist, &ws, &eb), 0);
    bool found = false;
    for (size_t i = 0; i < ws.n; i++) {
        if (ws.rows[i].prefix_len == 3 && memcmp(ws.rows[i].prefix, "\x01\xff\x00", 3) == 0) {
            found = true;
            assert_string_equal(ws.rows[i].name, "binary");
        }
    }
    assert_true(found);
    struct whitelist_row out;
    assert_int_equal(store_whitelist_delete(&fx->st, bin.prefix, 3, &out, &eb), 0);
    assert_string_equal(out.name, "binary");
    assert_int_equal(out.prefix_len, 3);
    assert_int_equal(store_whitelist_delete(&fx->st, bin.prefix, 3, &out, &eb), MK_ENOTFOUND);
    assert_int_equal(store_whitelist_delete(&fx->st, (const uint8_t *)"-qB", 3, &out, &eb), 0);
    assert_string_equal(out.name, "qBittorrent");
    assert_int_equal(raw_int(fx, "SELECT count(*) FROM whitelist WHERE prefix = '-qB'"), 0);
}

static int collect_class(const struct class_row *row, void *arg)
{
    struct recs_seen *s = arg;
    assert_true(s->n < MAX_ROWS);
    s->ids[s->n++] = row->id;
    return 0;
}

static void test_class_insert_update_list_delete(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    struct mk_errbuf eb;
    struct class_row c = {.name = "vip", .up_mult = 1500, .down_mult = 0, .may_download = true};
    assert_int_equal(store_class_insert(&fx->st, &c, false, &eb), 0);
    assert_int_equal(c.id, 2);
    assert_int_equal(c.users, 0);
    struct class_row dup = {.name = "vip"};
    assert_int_equal(store_class_insert(&fx->st, &dup, false, &eb), MK_EEXIST);
    assert_string_equal(eb.msg, "name");
    struct class_row d = {.id = 10, .name = "leech", .up_mult = 1000, .down_mult = 1000};
    assert_int_equal(store_class_insert(&fx->st, &d, true, &eb), 0);
    assert_int_equal(d.id, 10);
    assert_false(d.may_download);
    struct recs_seen s = {0};
    assert_int_equal(store_class_list(&fx->st, collect_class, &s, &eb), 0);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.ids[0], 1);
    assert_int_equal(s.ids[1], 2);
    assert_int_equal(s.ids[2], 10);
    d.may_download = true;
    snprintf(d.name, sizeof(d.name), "leechers");
    assert_int_equal(store_class_update(&fx->st, &d, &eb), 0);
    struct class_row got;
    assert_int_equal(store_class_get(&fx->st, 10, &got, &eb), 0);
    assert_string_equal(got.name, "leechers");
    assert_true(got.may_download);
    snprintf(d.name, sizeof(d.name), "vip");
    assert_int_equal(store_class_update(&fx->st, &d, &eb), MK_EEXIST);
    assert_int_equal(store_class_delete(&fx->st, 10, &eb), 0);
    assert_int_equal(store_class_get(&fx->st, 10, &got, &eb), MK_ENOTFOUND);
    assert_int_equal(store_class_delete(&fx->st, 10, &eb), MK_ENOTFOUND);
    d.id = 11;
    assert_int_equal(store_class_update(&fx->st, &d, &eb), MK_ENOTFOUND);
}

static void test_class_delete_refuses_default_and_classes_with_users(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    raw_exec(fx, "INSERT INTO classes (id, name) VALUES (3, 'power');"
                 "INSERT INTO users (id, passkey, class_id) VALUES (1, 'aaaa', 3)");
    struct mk_errbuf eb;
    assert_int_equal(store_class_delete(&fx->st, MK_CLASS_DEFAULT, &eb), MK_EINVAL);
    assert_int_equal(store_class_delete(&fx->st, 3, &eb), MK_EEXIST);
    assert_string_equal(eb.msg, "users");
    assert_int_equal(raw_int(fx, "SELECT count(*) FROM classes"), 2);
    assert_null(strstr(log_text(fx), "failed"));
}

struct settings_seen {
    struct setting_row rows[8];
    size_t n;
};

static int collect_setting(const struct setting_row *row, void *arg)
{
    struct settings_seen *s = arg;
    assert_true(s->n < 8);
    s->rows[s->n++] = *row;
    return 0;
}

static void test_settings_put_replaces_and_load_streams(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    struct mk_errbuf eb;
    struct setting_row rows[] = {{"interval", "900"}, {"event", "freeleech"}};
    assert_int_equal(store_settings_put(&fx->st, rows, 2, &eb), 0);
    struct setting_row again = {"interval", "60"};
    assert_int_equal(store_settings_put(&fx->st, &again, 1, &eb), 0);
    struct settings_seen s = {0};
    assert_int_equal(store_settings_load(&fx->st, collect_setting, &s, &eb), 0);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.rows[0].key, "event");
    assert_string_equal(s.rows[0].value, "freeleech");
    assert_string_equal(s.rows[1].key, "interval");
    assert_string_equal(s.rows[1].value, "60");
}

static void test_admin_write_while_locked_is_eunavail(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    sqlite3 *shell = raw(fx);
    assert_int_equal(sqlite3_exec(shell, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    struct mk_errbuf eb;
    struct user_rec u = new_user("pkA", "");
    double t0 = now_s();
    assert_int_equal(store_user_insert(&fx->st, &u, false, &eb), MK_EUNAVAIL);
    struct setting_row row = {"interval", "5"};
    assert_int_equal(store_settings_put(&fx->st, &row, 1, &eb), MK_EUNAVAIL);
    assert_true(now_s() - t0 < 2.0);
    sqlite3_exec(shell, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(shell);
    assert_int_equal(store_user_insert(&fx->st, &u, false, &eb), 0);
    assert_int_equal(store_settings_put(&fx->st, &row, 1, &eb), 0);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_registry_finds_sqlite_only),
        T(test_open_unknown_backend_is_enotfound),
        T(test_wrappers_refuse_a_closed_store),
        T(test_missing_optional_apply_is_enotsup),
        T(test_failed_call_is_logged_with_backend_and_method),
        T(test_open_creates_database_at_schema_version_6_in_wal_mode),
        T(test_migration_to_v6_keys_history_rows_by_user_and_torrent),
        T(test_migrate_to_an_unknown_version_is_einval),
        T(test_schema_has_the_documented_columns),
        T(test_open_rejects_unknown_schema_version),
        T(test_open_unwritable_path_is_eio),
        T(test_default_whitelist_is_seeded_once),
        T(test_load_users_streams_every_row),
        T(test_load_users_skips_bad_rows_and_says_which),
        T(test_callback_error_stops_the_load),
        T(test_load_torrents_streams_every_row),
        T(test_load_torrents_skips_bad_hash_and_cuts_long_reason),
        T(test_load_whitelist_reads_text_and_blob_prefixes),
        T(test_load_snatches_names_torrents_it_holds_and_leaves_others_zero),
        T(test_apply_adds_exactly),
        T(test_apply_counts_a_snatch_once_even_when_repeated),
        T(test_apply_while_locked_is_eunavail_quickly_then_succeeds),
        T(test_a_reader_does_not_block_apply),
        T(test_apply_segment_applies_each_segment_once),
        T(test_peers_keep_the_newest_report_and_load_with_their_hash),
        T(test_apply_books_credited_and_raw_apart),
        T(test_apply_books_the_user_torrent_history),
        T(test_apply_sums_transferred_per_torrent),
        T(test_reopen_keeps_data),
        T(test_migration_from_v1_keeps_rows_and_adds_v2_defaults),
        T(test_load_users_denies_download_when_the_class_does),
        T(test_ping_answers_on_an_open_store),
        T(test_v2_methods_on_a_v1_backend_are_enotsup),
        T(test_user_insert_picks_an_id_and_reads_back_defaults),
        T(test_user_insert_names_the_duplicate_column),
        T(test_user_insert_into_a_missing_class_is_enotfound),
        T(test_user_get_by_passkey_and_update),
        T(test_user_update_of_a_missing_user_is_enotfound),
        T(test_user_delete_removes_the_user_and_their_snatches),
        T(test_user_list_filters_pages_and_counts),
        T(test_torrent_insert_get_update),
        T(test_torrent_insert_duplicate_hash_is_eexist),
        T(test_whitelist_insert_and_delete_compare_bytes),
        T(test_class_insert_update_list_delete),
        T(test_class_delete_refuses_default_and_classes_with_users),
        T(test_settings_put_replaces_and_load_streams),
        T(test_admin_write_while_locked_is_eunavail),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
