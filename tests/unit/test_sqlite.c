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
    assert_int_equal(ops->version, MK_STORE_V1);
    assert_null(store_find("postgres"));
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

static void test_open_creates_database_at_schema_version_1_in_wal_mode(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(access(fx->db, F_OK), -1);
    open_store(fx);
    assert_int_equal(access(fx->db, F_OK), 0);
    assert_int_equal(raw_int(fx, "PRAGMA user_version"), 1);
    char mode[16];
    assert_string_equal(raw_text(fx, "PRAGMA journal_mode", mode, sizeof(mode)), "wal");
    assert_non_null(strstr(log_text(fx), "schema migrated to version 1"));
}

static void test_schema_has_the_documented_columns(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    char cols[512];
    raw_text(fx, "SELECT group_concat(name, ',') FROM pragma_table_info('users')", cols,
             sizeof(cols));
    assert_string_equal(cols, "id,passkey,enabled,can_download,uploaded,downloaded,created_at");
    raw_text(fx, "SELECT group_concat(name, ',') FROM pragma_table_info('torrents')", cols,
             sizeof(cols));
    assert_string_equal(cols, "id,info_hash,enabled,deleted,deleted_reason,snatches,created_at");
    raw_text(fx, "SELECT group_concat(name, ',') FROM pragma_table_info('whitelist')", cols,
             sizeof(cols));
    assert_string_equal(cols, "prefix,name");
    raw_text(fx, "SELECT group_concat(name, ',') FROM pragma_table_info('snatches')", cols,
             sizeof(cols));
    assert_string_equal(cols, "user_id,torrent_id,at");
    /* Defaults the operator relies on when inserting by hand. */
    raw_exec(fx, "INSERT INTO users (passkey) VALUES ('abc'); "
                 "INSERT INTO torrents (info_hash) VALUES (zeroblob(20))");
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
    assert_string_equal(eb.msg, "sqlite: schema version 99 is not one this mika knows (0..1)");
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

static void test_load_snatches_joins_the_info_hash(void **state)
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
    assert_int_equal(s.n, 3); /* torrent 99 is gone; user -5 is out of range */
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

static void test_reopen_keeps_data(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    add_user_and_torrent(fx);
    struct acct_delta d = {.user_id = 2, .torrent_id = 5, .uploaded = 9, .snatch = true, .at = 3};
    struct mk_errbuf eb;
    assert_int_equal(store_apply(&fx->st, &d, 1, &eb), 0);
    reopen_store(fx);
    assert_int_equal(raw_int(fx, "PRAGMA user_version"), 1);
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

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_registry_finds_sqlite_only),
        T(test_open_unknown_backend_is_enotfound),
        T(test_wrappers_refuse_a_closed_store),
        T(test_missing_optional_apply_is_enotsup),
        T(test_failed_call_is_logged_with_backend_and_method),
        T(test_open_creates_database_at_schema_version_1_in_wal_mode),
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
        T(test_load_snatches_joins_the_info_hash),
        T(test_apply_adds_exactly),
        T(test_apply_counts_a_snatch_once_even_when_repeated),
        T(test_apply_while_locked_is_eunavail_quickly_then_succeeds),
        T(test_a_reader_does_not_block_apply),
        T(test_apply_segment_applies_each_segment_once),
        T(test_reopen_keeps_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
