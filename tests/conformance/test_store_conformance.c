/* tests/conformance/test_store_conformance.c: what every store backend must
 * do, run unchanged against each one through the store_* wrappers.
 *
 * Usage: test_store_conformance <backend>   (sqlite | memory | split | postgres | mysql | redis)
 * sqlite gets a fresh database file per test; memory a fresh in-memory
 * database that a second connection keeps alive across reopens (as the
 * daemon's loader does); split puts users, torrents and peers in three
 * SQLite files through store_open_kinds (store/split.c); postgres a fresh, empty schema
 * per test in the server named by MIKA_TEST_PG_DSN (tests/lib/pgserver.py
 * starts one; CTest registers both runs); mysql a fresh, empty database per
 * test in the server named by MIKA_TEST_MYSQL_DSN (tests/lib/mysqlserver.py);
 * redis an emptied database (FLUSHDB) of the server named by
 * MIKA_TEST_REDIS_DSN (tests/lib/redisserver.py). A missing server is a
 * failure, never a skip. Only the fixture knows the backend: every test
 * reads and writes through the store interface, so a new backend adds a
 * fixture case and nothing else.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <mysql.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store/mysql_admin.h" /* my_dsn_parse, for the fixture's own connection */
#include "store/store.h"
#include "util/log.h"

static const char *backend; /* set once by main() from argv */

struct fixture {
    char dir[64];
    char db[128];
    char log[128];
    char schema[64];
    char dsn[512];
    int log_fd;
    struct store_cfg cfg;
    struct store st;
    struct store keeper;              /* memory: holds the database between reopens */
    char parts[3][128];               /* split: one SQLite file per kind */
    struct store_place places[3];
};

/* ---- fixture: the only backend-specific code --------------------------- */

static void pg_admin_exec(const char *sql)
{
    const char *dsn = getenv("MIKA_TEST_PG_DSN");
    if (!dsn || !*dsn) {
        fail_msg("MIKA_TEST_PG_DSN is not set: run through tests/lib/pgserver.py");
    }
    PGconn *c = PQconnectdb(dsn);
    if (PQstatus(c) != CONNECTION_OK) {
        fail_msg("cannot reach the test server (%s): %s", dsn, PQerrorMessage(c));
    }
    PQclear(PQexec(c, "SET client_min_messages = warning"));
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    }
    PQclear(r);
    PQfinish(c);
}

static void mysql_admin_exec(const char *sql)
{
    const char *dsn = getenv("MIKA_TEST_MYSQL_DSN");
    if (!dsn || !*dsn) {
        fail_msg("MIKA_TEST_MYSQL_DSN is not set: run through tests/lib/mysqlserver.py");
    }
    struct my_dsn d;
    struct mk_errbuf eb;
    if (my_dsn_parse(dsn, &d, &eb) != 0) {
        fail_msg("MIKA_TEST_MYSQL_DSN: %s", eb.msg);
    }
    MYSQL *c = mysql_init(NULL);
    if (!mysql_real_connect(c, d.host, d.user, d.pass, NULL, d.port, NULL, 0)) {
        fail_msg("cannot reach the test server: %s", mysql_error(c));
    }
    if (mysql_query(c, sql) != 0) {
        fail_msg("%s: %s", sql, mysql_error(c));
    }
    mysql_close(c);
    my_dsn_free(&d);
}

/* The test server is private to the run: each test starts from an empty db. */
static void redis_admin_flush(void)
{
    const char *dsn = getenv("MIKA_TEST_REDIS_DSN");
    int port = 0, db = 0;
    if (!dsn || sscanf(dsn, "redis://127.0.0.1:%d/%d", &port, &db) != 2) {
        fail_msg("MIKA_TEST_REDIS_DSN is not redis://127.0.0.1:<port>/<db>: run through "
                 "tests/lib/redisserver.py");
    }
    redisContext *c = redisConnect("127.0.0.1", port);
    if (!c || c->err) {
        fail_msg("cannot reach the test server (%s): %s", dsn, c ? c->errstr : "no memory");
    }
    redisReply *r = redisCommand(c, "SELECT %d", db);
    if (r) {
        freeReplyObject(r);
    }
    r = redisCommand(c, "FLUSHDB");
    if (!r || r->type == REDIS_REPLY_ERROR) {
        fail_msg("FLUSHDB: %s", r ? r->str : c->errstr);
    }
    freeReplyObject(r);
    redisFree(c);
}

static int setup(void **state)
{
    static unsigned seq;
    struct fixture *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    strcpy(fx->dir, "/tmp/mika-test-conf-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->log, sizeof(fx->log), "%s/log", fx->dir);
    fx->log_fd = open(fx->log, O_CREAT | O_WRONLY | O_APPEND, 0600);
    assert_true(fx->log_fd >= 0);
    mk_log_setup(MK_LOG_INFO, MK_LOG_TEXT, fx->log_fd);
    if (strcmp(backend, "sqlite") == 0) {
        snprintf(fx->db, sizeof(fx->db), "%s/mika.db", fx->dir);
        fx->cfg.path = fx->db;
    } else if (strcmp(backend, "memory") == 0) {
        snprintf(fx->db, sizeof(fx->db), "%s/mika.db", fx->dir);
        fx->cfg.path = fx->db;
        struct mk_errbuf eb = {{0}};
        if (store_open(&fx->keeper, "memory", &fx->cfg, &eb) != 0) {
            fail_msg("memory keeper: %s", eb.msg);
        }
    } else if (strcmp(backend, "split") == 0) {
        static const char *const names[3] = {"users", "torrents", "peers"};
        for (int k = 0; k < 3; k++) {
            snprintf(fx->parts[k], sizeof(fx->parts[k]), "%s/%s.db", fx->dir, names[k]);
            fx->places[k] = (struct store_place){"sqlite", fx->parts[k], ""};
        }
    } else if (strcmp(backend, "postgres") == 0) {
        snprintf(fx->schema, sizeof(fx->schema), "conf_%d_%u", (int)getpid(), ++seq);
        char sql[128];
        snprintf(sql, sizeof(sql), "CREATE SCHEMA %s", fx->schema);
        pg_admin_exec(sql);
        snprintf(fx->dsn, sizeof(fx->dsn), "%s options='-csearch_path=%s'",
                 getenv("MIKA_TEST_PG_DSN"), fx->schema);
        fx->cfg.dsn = fx->dsn;
    } else if (strcmp(backend, "mysql") == 0) {
        snprintf(fx->schema, sizeof(fx->schema), "conf_%d_%u", (int)getpid(), ++seq);
        char sql[128];
        snprintf(sql, sizeof(sql), "CREATE DATABASE %s", fx->schema);
        mysql_admin_exec(sql);
        const char *base = getenv("MIKA_TEST_MYSQL_DSN");
        snprintf(fx->dsn, sizeof(fx->dsn), "%.*s/%s", (int)(strrchr(base, '/') - base), base,
                 fx->schema);
        fx->cfg.dsn = fx->dsn;
    } else if (strcmp(backend, "redis") == 0) {
        redis_admin_flush();
        snprintf(fx->dsn, sizeof(fx->dsn), "%s", getenv("MIKA_TEST_REDIS_DSN"));
        fx->cfg.dsn = fx->dsn;
    } else {
        fail_msg("unknown backend %s", backend);
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    store_close(&fx->st);
    store_close(&fx->keeper);
    mk_log_setup(MK_LOG_INFO, MK_LOG_TEXT, 2);
    close(fx->log_fd);
    if (fx->schema[0] && strcmp(backend, "mysql") == 0) {
        char sql[128];
        snprintf(sql, sizeof(sql), "DROP DATABASE %s", fx->schema);
        mysql_admin_exec(sql);
    } else if (fx->schema[0]) {
        char sql[128];
        snprintf(sql, sizeof(sql), "DROP SCHEMA %s CASCADE", fx->schema);
        pg_admin_exec(sql);
    }
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
    assert_int_equal(system(cmd), 0);
    free(fx);
    return 0;
}

/* ---- helpers ------------------------------------------------------------ */

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
    int rc = strcmp(backend, "split") == 0 ? store_open_kinds(&fx->st, fx->places, &eb)
                                           : store_open(&fx->st, backend, &fx->cfg, &eb);
    if (rc != 0) {
        fail_msg("store_open(%s): %s: %s", backend, mk_err_name(rc), eb.msg);
    }
}

static void reopen_store(struct fixture *fx)
{
    store_close(&fx->st);
    open_store(fx);
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

static uint32_t add_user(struct fixture *fx, uint32_t id, const char *passkey)
{
    struct user_rec u = new_user(passkey, "");
    u.row.id = id;
    struct mk_errbuf eb;
    int rc = store_user_insert(&fx->st, &u, id != 0, &eb);
    if (rc != 0) {
        fail_msg("user_insert %s: %s: %s", passkey, mk_err_name(rc), eb.msg);
    }
    return u.row.id;
}

static uint32_t add_torrent(struct fixture *fx, uint8_t fill)
{
    struct torrent_rec t = {.row = {.enabled = true}, .up_mult = MK_MULT_ONE,
                            .down_mult = MK_MULT_ONE};
    memset(t.row.info_hash, fill, 20);
    struct mk_errbuf eb;
    int rc = store_torrent_insert(&fx->st, &t, &eb);
    if (rc != 0) {
        fail_msg("torrent_insert: %s: %s", mk_err_name(rc), eb.msg);
    }
    return t.row.id;
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

static struct torrent_rec get_torrent(struct fixture *fx, uint8_t fill)
{
    struct torrent_rec t;
    uint8_t ih[20];
    memset(ih, fill, 20);
    struct mk_errbuf eb;
    int rc = store_torrent_get(&fx->st, ih, &t, &eb);
    if (rc != 0) {
        fail_msg("torrent_get: %s: %s", mk_err_name(rc), eb.msg);
    }
    return t;
}

/* ---- collectors ---------------------------------------------------------- */

#define MAX_ROWS 64

struct users_seen {
    struct user_row rows[MAX_ROWS]; /* the first MAX_ROWS */
    size_t n;
    size_t stop_after; /* 0: never stop */
    uint32_t last_id;
    bool ascending;
};

static int collect_user(const struct user_row *row, void *arg)
{
    struct users_seen *s = arg;
    if (s->n < MAX_ROWS) {
        s->rows[s->n] = *row;
    }
    s->ascending = s->n == 0 || (s->ascending && row->id > s->last_id);
    s->last_id = row->id;
    s->n++;
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

static const struct whitelist_row *find_prefix(const struct whitelist_seen *s, const void *p,
                                               size_t len)
{
    for (size_t i = 0; i < s->n; i++) {
        if (s->rows[i].prefix_len == len && memcmp(s->rows[i].prefix, p, len) == 0) {
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

struct ids_seen {
    uint32_t ids[MAX_ROWS];
    size_t n;
};

static int collect_rec(const struct user_rec *rec, void *arg)
{
    struct ids_seen *s = arg;
    assert_true(s->n < MAX_ROWS);
    s->ids[s->n++] = rec->row.id;
    return 0;
}

static int collect_class(const struct class_row *row, void *arg)
{
    struct ids_seen *s = arg;
    assert_true(s->n < MAX_ROWS);
    s->ids[s->n++] = row->id;
    return 0;
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

struct history_seen {
    struct history_row rows[8];
    size_t n;
};

static int collect_history(const struct history_row *row, void *arg)
{
    struct history_seen *s = arg;
    assert_true(s->n < 8);
    s->rows[s->n++] = *row;
    return 0;
}

/* ---- open and schema ------------------------------------------------------ */

/* Migration from an empty database: the whole schema, the default class and
 * the default client whitelist, and nothing else. */
static void test_open_migrates_an_empty_database_to_the_defaults(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    struct mk_errbuf eb;
    assert_int_equal(store_ping(&fx->st, &eb), 0);
    struct class_row c;
    assert_int_equal(store_class_get(&fx->st, MK_CLASS_DEFAULT, &c, &eb), 0);
    assert_string_equal(c.name, "user");
    assert_int_equal(c.up_mult, MK_MULT_ONE);
    assert_int_equal(c.down_mult, MK_MULT_ONE);
    assert_true(c.may_download);
    assert_int_equal(c.users, 0);
    struct ids_seen cs = {0};
    assert_int_equal(store_class_list(&fx->st, collect_class, &cs, &eb), 0);
    assert_int_equal(cs.n, 1);
    struct whitelist_seen ws = {0};
    assert_int_equal(store_load_whitelist(&fx->st, collect_whitelist, &ws, &eb), 0);
    /* Every backend seeds the one list in store.c, each name as written. */
    assert_int_equal(ws.n, 16);
    assert_int_equal(ws.n, store_default_whitelist_len);
    for (size_t i = 0; i < store_default_whitelist_len; i++) {
        const char *prefix = store_default_whitelist[i].prefix;
        const struct whitelist_row *row = find_prefix(&ws, prefix, strlen(prefix));
        assert_non_null(row);
        assert_string_equal(row->name, store_default_whitelist[i].name);
    }
    assert_string_equal(find_prefix(&ws, "-UT", 3)->name, "\xc2\xb5Torrent");
    struct users_seen us = {0};
    assert_int_equal(store_load_users(&fx->st, collect_user, &us, &eb), 0);
    assert_int_equal(us.n, 0);
    struct torrents_seen ts = {0};
    assert_int_equal(store_load_torrents(&fx->st, collect_torrent, &ts, &eb), 0);
    assert_int_equal(ts.n, 0);
    struct snatches_seen ss = {0};
    assert_int_equal(store_load_snatches(&fx->st, collect_snatch, &ss, &eb), 0);
    assert_int_equal(ss.n, 0);
    struct peers_seen ps = {0};
    assert_int_equal(store_load_peers(&fx->st, 0, collect_peer, &ps, &eb), 0);
    assert_int_equal(ps.n, 0);
    struct settings_seen st = {0};
    assert_int_equal(store_settings_load(&fx->st, collect_setting, &st, &eb), 0);
    assert_int_equal(st.n, 0);
    assert_non_null(strstr(log_text(fx), "schema migrated to version"));
}

static void test_reopen_keeps_rows_and_never_reseeds_the_whitelist(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    struct mk_errbuf eb;
    struct whitelist_row out;
    assert_int_equal(store_whitelist_delete(&fx->st, (const uint8_t *)"-AZ", 3, &out, &eb), 0);
    uint32_t uid = add_user(fx, 0, "keepme");
    add_torrent(fx, 0x42);
    reopen_store(fx);
    struct whitelist_seen ws = {0};
    assert_int_equal(store_load_whitelist(&fx->st, collect_whitelist, &ws, &eb), 0);
    assert_int_equal(ws.n, 15);
    assert_null(find_prefix(&ws, "-AZ", 3));
    assert_string_equal(get_user(fx, uid).row.passkey, "keepme");
    assert_int_equal(get_torrent(fx, 0x42).row.enabled, true);
    struct ids_seen cs = {0};
    assert_int_equal(store_class_list(&fx->st, collect_class, &cs, &eb), 0);
    assert_int_equal(cs.n, 1);
}

/* ---- users ------------------------------------------------------------------ */

static void test_user_insert_picks_ids_and_reads_back_defaults(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    struct mk_errbuf eb;
    struct user_rec u = new_user("pkA", "alice");
    u.up_mult = 1500;
    assert_int_equal(store_user_insert(&fx->st, &u, false, &eb), 0);
    assert_int_equal(u.row.id, 1);
    assert_true(u.created_at > 1600000000);
    assert_true(u.created_at < 4000000000);
    assert_string_equal(u.name, "alice");
    assert_int_equal(u.up_mult, 1500);
    assert_int_equal(u.down_mult, MK_MULT_ONE);
    assert_int_equal(u.uploaded, 0);
    assert_int_equal(u.raw_downloaded, 0);
    assert_int_equal(u.bonus, 0);
    assert_int_equal(u.snatches, 0);
    assert_true(u.row.enabled);
    assert_true(u.row.can_download);
    assert_int_equal(u.class_id, MK_CLASS_DEFAULT);
    struct user_rec v = new_user("pkB", "");
    v.row.id = 1000;
    assert_int_equal(store_user_insert(&fx->st, &v, true, &eb), 0);
    assert_int_equal(v.row.id, 1000);
    assert_string_equal(v.name, "");
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
    struct user_filter all = {.limit = 100, .enabled = -1, .may_download = -1};
    struct ids_seen s = {0};
    uint64_t total = 0;
    assert_int_equal(store_user_list(&fx->st, &all, collect_rec, &s, &total, &eb), 0);
    assert_int_equal(total, 3);
    assert_null(strstr(log_text(fx), "failed"));
}

static void test_user_insert_into_a_missing_class_is_enotfound(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    struct mk_errbuf eb;
    struct user_rec u = new_user("pkA", "");
    u.class_id = 77;
    assert_int_equal(store_user_insert(&fx->st, &u, false, &eb), MK_ENOTFOUND);
    assert_string_equal(eb.msg, "class_id");
    struct user_rec v = new_user("pkA", "");
    assert_int_equal(store_user_insert(&fx->st, &v, false, &eb), 0);
    assert_int_equal(v.row.id, 1);
}

static void test_user_get_by_passkey_update_and_delete(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    struct mk_errbuf eb;
    uint32_t id = add_user(fx, 0, "findme");
    add_user(fx, 0, "other");
    struct user_rec u;
    assert_int_equal(store_user_get_by_passkey(&fx->st, "findme", &u, &eb), 0);
    assert_int_equal(u.row.id, id);
    assert_int_equal(store_user_get_by_passkey(&fx->st, "nosuch", &u, &eb), MK_ENOTFOUND);
    assert_string_equal(eb.msg, "user");

    assert_int_equal(store_user_get_by_passkey(&fx->st, "findme", &u, &eb), 0);
    snprintf(u.row.passkey, sizeof(u.row.passkey), "renamed");
    snprintf(u.name, sizeof(u.name), "zoe");
    u.row.enabled = false;
    u.may_download = false;
    u.up_mult = 2500;
    u.down_mult = 0;
    assert_int_equal(store_user_update(&fx->st, &u, &eb), 0);
    struct user_rec got = get_user(fx, id);
    assert_string_equal(got.row.passkey, "renamed");
    assert_string_equal(got.name, "zoe");
    assert_false(got.row.enabled);
    assert_false(got.may_download);
    assert_false(got.row.can_download);
    assert_int_equal(got.up_mult, 2500);
    assert_int_equal(got.down_mult, 0);
    snprintf(u.row.passkey, sizeof(u.row.passkey), "other");
    assert_int_equal(store_user_update(&fx->st, &u, &eb), MK_EEXIST);
    assert_string_equal(eb.msg, "passkey");
    u.row.id = 999;
    snprintf(u.row.passkey, sizeof(u.row.passkey), "ghost");
    assert_int_equal(store_user_update(&fx->st, &u, &eb), MK_ENOTFOUND);

    assert_int_equal(store_user_delete(&fx->st, id, &eb), 0);
    assert_int_equal(store_user_get(&fx->st, id, &u, &eb), MK_ENOTFOUND);
    assert_int_equal(store_user_delete(&fx->st, id, &eb), MK_ENOTFOUND);
    assert_string_equal(eb.msg, "user");
}

static void test_user_list_filters_pages_and_counts(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    struct mk_errbuf eb;
    struct class_row power = {.id = 2, .name = "power", .up_mult = 1000, .down_mult = 1000,
                              .may_download = true};
    assert_int_equal(store_class_insert(&fx->st, &power, true, &eb), 0);
    const struct {
        const char *pk, *name;
        bool enabled, may_download;
        uint32_t class_id;
    } rows[] = {{"a1", "anna", true, true, 1},  {"a2", "anton", false, true, 1},
                {"a3", "bert", true, false, 2}, {"a4", "", true, true, 2},
                {"a5", "Andy", true, true, 1}};
    for (uint32_t i = 0; i < 5; i++) {
        struct user_rec u = new_user(rows[i].pk, rows[i].name);
        u.row.id = i + 1;
        u.row.enabled = rows[i].enabled;
        u.may_download = rows[i].may_download;
        u.class_id = rows[i].class_id;
        assert_int_equal(store_user_insert(&fx->st, &u, true, &eb), 0);
    }
    uint64_t total = 0;
    struct ids_seen s = {0};
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
    assert_int_equal(s.n, 2);
    assert_int_equal(s.ids[0], 1);
    assert_int_equal(s.ids[1], 2);
}

/* ---- streaming loads ------------------------------------------------------ */

#define MANY_USERS 400

static void add_many_users(struct fixture *fx)
{
    struct mk_errbuf eb;
    struct class_row seeders = {.id = 5, .name = "seeders only", .up_mult = 1200,
                                .down_mult = 800, .may_download = false};
    assert_int_equal(store_class_insert(&fx->st, &seeders, true, &eb), 0);
    for (uint32_t i = 1; i <= MANY_USERS; i++) {
        char pk[32];
        snprintf(pk, sizeof(pk), "Pk%05u", i);
        struct user_rec u = new_user(pk, "");
        u.row.id = i * 3; /* not dense: the loader must not assume it */
        u.class_id = i % 100 == 0 ? 5 : MK_CLASS_DEFAULT;
        u.up_mult = i % 100 == 0 ? 3000 : MK_MULT_ONE;
        int rc = store_user_insert(&fx->st, &u, true, &eb);
        if (rc != 0) {
            fail_msg("user_insert %u: %s: %s", i, mk_err_name(rc), eb.msg);
        }
    }
}

static void test_load_users_streams_every_row_with_the_effective_right(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    add_many_users(fx);
    struct users_seen us = {0};
    struct mk_errbuf eb;
    assert_int_equal(store_load_users(&fx->st, collect_user, &us, &eb), 0);
    assert_int_equal(us.n, MANY_USERS);
    assert_true(us.ascending);
    assert_int_equal(us.last_id, MANY_USERS * 3);
    assert_int_equal(us.rows[0].id, 3);
    assert_string_equal(us.rows[0].passkey, "Pk00001");
    assert_true(us.rows[0].enabled);
    assert_true(us.rows[0].can_download);
    assert_true(us.rows[0].has_mults);
    assert_int_equal(us.rows[0].class_up, MK_MULT_ONE);
    assert_int_equal(us.rows[0].personal_up, MK_MULT_ONE);
}

static int collect_user_100(const struct user_row *row, void *arg)
{
    if (row->id == 300) {
        *(struct user_row *)arg = *row;
    }
    return 0;
}

/* User 100 is in a class that may not download: the loader hands the
 * tracker the effective right and the class's multipliers. */
static void test_load_users_applies_the_class(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    add_many_users(fx);
    struct user_row u100 = {0};
    struct mk_errbuf eb;
    assert_int_equal(store_load_users(&fx->st, collect_user_100, &u100, &eb), 0);
    assert_int_equal(u100.id, 300);
    assert_false(u100.can_download);
    assert_int_equal(u100.class_up, 1200);
    assert_int_equal(u100.class_down, 800);
    assert_int_equal(u100.personal_up, 3000);
    struct user_rec r = get_user(fx, 300);
    assert_true(r.may_download);       /* the user's own flag */
    assert_false(r.row.can_download);  /* the effective right */
}

/* A callback's error stops the load, comes back as is, and leaves the store
 * ready for the next call. */
static void test_load_stops_at_the_callbacks_error_and_the_store_goes_on(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    add_many_users(fx);
    struct users_seen us = {.stop_after = 3};
    struct mk_errbuf eb;
    assert_int_equal(store_load_users(&fx->st, collect_user, &us, &eb), MK_ENOMEM);
    assert_int_equal(us.n, 3);
    char want[64];
    snprintf(want, sizeof(want), "%s.load_users failed: ENOMEM", backend);
    assert_non_null(strstr(log_text(fx), want));
    assert_int_equal(store_ping(&fx->st, &eb), 0);
    struct users_seen again = {0};
    assert_int_equal(store_load_users(&fx->st, collect_user, &again, &eb), 0);
    assert_int_equal(again.n, MANY_USERS);
    assert_int_equal(get_user(fx, 3).row.id, 3);
}

/* ---- torrents, whitelist, classes, settings ------------------------------ */

static void test_torrent_insert_get_update_and_load(void **state)
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
    struct torrent_rec got = get_torrent(fx, 0xab);
    assert_string_equal(got.name, "Some.Linux.iso");
    assert_true(got.has_size);
    assert_int_equal(got.size, 1ull << 40);
    assert_true(got.freeleech);
    assert_int_equal(got.up_mult, 2000);
    assert_int_equal(got.down_mult, 500);
    assert_false(got.row.deleted);
    assert_int_equal(got.row.snatches, 0);

    got.row.deleted = true;
    snprintf(got.row.reason, sizeof(got.row.reason), "dupe of #1");
    got.freeleech = false;
    got.has_size = false;
    got.name[0] = '\0';
    assert_int_equal(store_torrent_update(&fx->st, &got, &eb), 0);
    got = get_torrent(fx, 0xab);
    assert_true(got.row.deleted);
    assert_string_equal(got.row.reason, "dupe of #1");
    assert_false(got.freeleech);
    assert_false(got.has_size);
    assert_string_equal(got.name, "");
    assert_int_equal(add_torrent(fx, 0x01), 2);
    struct torrents_seen ts = {0};
    assert_int_equal(store_load_torrents(&fx->st, collect_torrent, &ts, &eb), 0);
    assert_int_equal(ts.n, 2);
    assert_int_equal(ts.rows[0].id, 1);
    assert_true(ts.rows[0].deleted);
    assert_string_equal(ts.rows[0].reason, "dupe of #1");
    assert_true(ts.rows[0].has_mults);
    assert_int_equal(ts.rows[0].up_mult, 2000);
    assert_int_equal(ts.rows[0].down_mult, 500);
    assert_int_equal(ts.rows[0].size, 0);
    assert_int_equal(ts.rows[1].id, 2);
    assert_memory_equal(ts.rows[1].info_hash, "\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01"
                                              "\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01", 20);
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
    struct whitelist_row r = {.prefix = "-qB", .prefix_len = 3, .name = "again"};
    assert_int_equal(store_whitelist_insert(&fx->st, &r, &eb), MK_EEXIST);
    assert_string_equal(eb.msg, "prefix");
    struct whitelist_row bin = {.prefix = {0x01, 0xff, 0x00}, .prefix_len = 3, .name = "binary"};
    assert_int_equal(store_whitelist_insert(&fx->st, &bin, &eb), 0);
    struct whitelist_row pico = {.prefix = "-PI", .prefix_len = 3, .name = "PicoTorrent"};
    assert_int_equal(store_whitelist_insert(&fx->st, &pico, &eb), 0);
    struct whitelist_row longest = {.prefix = "-qB4650-", .prefix_len = 8, .name = "qB 4.6.5"};
    assert_int_equal(store_whitelist_insert(&fx->st, &longest, &eb), 0);
    struct whitelist_seen ws = {0};
    assert_int_equal(store_load_whitelist(&fx->st, collect_whitelist, &ws, &eb), 0);
    assert_int_equal(ws.n, 19);
    assert_string_equal(find_prefix(&ws, "\x01\xff\x00", 3)->name, "binary");
    assert_string_equal(find_prefix(&ws, "-PI", 3)->name, "PicoTorrent");
    assert_string_equal(find_prefix(&ws, "-qB4650-", 8)->name, "qB 4.6.5");
    struct whitelist_row out;
    assert_int_equal(store_whitelist_delete(&fx->st, bin.prefix, 3, &out, &eb), 0);
    assert_string_equal(out.name, "binary");
    assert_int_equal(out.prefix_len, 3);
    assert_memory_equal(out.prefix, "\x01\xff\x00", 3);
    assert_int_equal(store_whitelist_delete(&fx->st, bin.prefix, 3, &out, &eb), MK_ENOTFOUND);
    assert_string_equal(eb.msg, "prefix");
    /* Bytes, not case: -lt survives deleting -LT. */
    assert_int_equal(store_whitelist_delete(&fx->st, (const uint8_t *)"-LT", 3, &out, &eb), 0);
    assert_string_equal(out.name, "libtorrent (Rasterbar)");
    ws.n = 0;
    assert_int_equal(store_load_whitelist(&fx->st, collect_whitelist, &ws, &eb), 0);
    assert_int_equal(ws.n, 17);
    assert_null(find_prefix(&ws, "-LT", 3));
    assert_non_null(find_prefix(&ws, "-lt", 3));
}

static void test_class_insert_update_list_delete(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    struct mk_errbuf eb;
    struct class_row c = {.name = "vip", .up_mult = 1500, .down_mult = 0, .may_download = true};
    assert_int_equal(store_class_insert(&fx->st, &c, false, &eb), 0);
    assert_int_equal(c.id, 2);
    assert_int_equal(c.up_mult, 1500);
    assert_int_equal(c.down_mult, 0);
    assert_int_equal(c.users, 0);
    struct class_row dup = {.name = "vip"};
    assert_int_equal(store_class_insert(&fx->st, &dup, false, &eb), MK_EEXIST);
    assert_string_equal(eb.msg, "name");
    struct class_row d = {.id = 10, .name = "leech", .up_mult = 1000, .down_mult = 1000};
    assert_int_equal(store_class_insert(&fx->st, &d, true, &eb), 0);
    assert_int_equal(d.id, 10);
    assert_false(d.may_download);
    struct class_row e = {.name = "after", .up_mult = 1000, .down_mult = 1000};
    assert_int_equal(store_class_insert(&fx->st, &e, false, &eb), 0);
    assert_int_equal(e.id, 11);
    struct ids_seen s = {0};
    assert_int_equal(store_class_list(&fx->st, collect_class, &s, &eb), 0);
    assert_int_equal(s.n, 4);
    assert_int_equal(s.ids[0], 1);
    assert_int_equal(s.ids[1], 2);
    assert_int_equal(s.ids[2], 10);
    assert_int_equal(s.ids[3], 11);
    d.may_download = true;
    snprintf(d.name, sizeof(d.name), "leechers");
    assert_int_equal(store_class_update(&fx->st, &d, &eb), 0);
    struct class_row got;
    assert_int_equal(store_class_get(&fx->st, 10, &got, &eb), 0);
    assert_string_equal(got.name, "leechers");
    assert_true(got.may_download);
    snprintf(d.name, sizeof(d.name), "vip");
    assert_int_equal(store_class_update(&fx->st, &d, &eb), MK_EEXIST);
    assert_string_equal(eb.msg, "name");
    assert_int_equal(store_class_delete(&fx->st, 10, &eb), 0);
    assert_int_equal(store_class_get(&fx->st, 10, &got, &eb), MK_ENOTFOUND);
    assert_int_equal(store_class_delete(&fx->st, 10, &eb), MK_ENOTFOUND);
    d.id = 12;
    assert_int_equal(store_class_update(&fx->st, &d, &eb), MK_ENOTFOUND);
}

static void test_class_delete_refuses_default_and_classes_with_users(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    struct mk_errbuf eb;
    struct class_row power = {.id = 3, .name = "power", .up_mult = 1000, .down_mult = 1000};
    assert_int_equal(store_class_insert(&fx->st, &power, true, &eb), 0);
    struct user_rec u = new_user("aaaa", "");
    u.class_id = 3;
    assert_int_equal(store_user_insert(&fx->st, &u, false, &eb), 0);
    assert_int_equal(store_class_delete(&fx->st, MK_CLASS_DEFAULT, &eb), MK_EINVAL);
    assert_int_equal(store_class_delete(&fx->st, 3, &eb), MK_EEXIST);
    assert_string_equal(eb.msg, "users");
    struct class_row got;
    assert_int_equal(store_class_get(&fx->st, 3, &got, &eb), 0);
    assert_int_equal(got.users, 1);
    assert_null(strstr(log_text(fx), "failed"));
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

/* ---- the books --------------------------------------------------------------- */

static void test_apply_adds_exactly_credited_and_raw_apart(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    uint32_t u1 = add_user(fx, 1, "one"), u2 = add_user(fx, 2, "two");
    uint32_t t5 = add_torrent(fx, 0x55);
    struct acct_delta d[] = {
        {.user_id = u1, .torrent_id = t5, .uploaded = 1000, .downloaded = 1, .at = 1},
        {.user_id = u2, .torrent_id = t5, .downloaded = 1ull << 40, .at = 1},
        {.user_id = u1, .torrent_id = t5, .uploaded = 23, .at = 2},
        {.user_id = 77, .torrent_id = t5, .uploaded = 5, .downloaded = 5, .at = 2}, /* no user */
        {.user_id = u2, .torrent_id = t5, .uploaded = 1000, .downloaded = 400, .has_credit = true,
         .credited_up = 2000, .credited_down = 0, .at = 3},
        {.user_id = u2, .torrent_id = t5, .seed_seconds = 600, .leech_seconds = 30,
         .bonus = 166666, .at = 3},
        {.user_id = u1, .torrent_id = t5, .uploaded = 1ull << 62, .at = 4},
    };
    struct mk_errbuf eb;
    assert_int_equal(store_apply(&fx->st, d, 7, &eb), 0);
    struct user_rec a = get_user(fx, u1), b = get_user(fx, u2);
    assert_int_equal(a.uploaded, 1023 + (1ull << 62));
    assert_int_equal(a.raw_uploaded, 1023 + (1ull << 62));
    assert_int_equal(a.downloaded, 1);
    assert_int_equal(b.uploaded, 2000);
    assert_int_equal(b.raw_uploaded, 1000);
    assert_int_equal(b.downloaded, 1ull << 40);
    assert_int_equal(b.raw_downloaded, (1ull << 40) + 400);
    assert_int_equal(b.seed_time, 600);
    assert_int_equal(b.leech_time, 30);
    assert_int_equal(b.bonus, 166666);
    /* apply itself is additive: the same batch again books it again. */
    assert_int_equal(store_apply(&fx->st, d, 3, &eb), 0);
    assert_int_equal(get_user(fx, u1).uploaded, 2046 + (1ull << 62));
    assert_int_equal(store_apply(&fx->st, d, 0, &eb), 0);
    assert_int_equal(get_torrent(fx, 0x55).row.snatches, 0);
}

static void test_apply_counts_a_snatch_once_even_when_repeated(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    uint32_t u1 = add_user(fx, 1, "one"), u2 = add_user(fx, 2, "two");
    uint32_t t5 = add_torrent(fx, 0x55);
    add_torrent(fx, 0x66);
    struct acct_delta d[] = {
        {.user_id = u1, .torrent_id = t5, .downloaded = 10, .snatch = true, .at = 1700000000},
        {.user_id = u1, .torrent_id = t5, .snatch = true, .at = 1700000099},
        {.user_id = u2, .torrent_id = t5, .snatch = true, .at = 1700000100},
    };
    struct mk_errbuf eb;
    assert_int_equal(store_apply(&fx->st, d, 3, &eb), 0);
    assert_int_equal(store_apply(&fx->st, d, 2, &eb), 0);
    assert_int_equal(get_torrent(fx, 0x55).row.snatches, 2);
    assert_int_equal(get_torrent(fx, 0x66).row.snatches, 0);
    assert_int_equal(get_user(fx, u1).snatches, 1);
    assert_int_equal(get_user(fx, u1).downloaded, 20);
    struct snatches_seen ss = {0};
    assert_int_equal(store_load_snatches(&fx->st, collect_snatch, &ss, &eb), 0);
    assert_int_equal(ss.n, 2);
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(ss.rows[i].torrent_id, t5);
        assert_memory_equal(ss.rows[i].info_hash, "\x55\x55\x55\x55\x55\x55\x55\x55\x55\x55"
                                                  "\x55\x55\x55\x55\x55\x55\x55\x55\x55\x55", 20);
        assert_int_equal(ss.rows[i].at, ss.rows[i].user_id == u1 ? 1700000000 : 1700000100);
    }
    /* Deleting a user deletes their snatches. */
    assert_int_equal(store_user_delete(&fx->st, u1, &eb), 0);
    ss.n = 0;
    assert_int_equal(store_load_snatches(&fx->st, collect_snatch, &ss, &eb), 0);
    assert_int_equal(ss.n, 1);
    assert_int_equal(ss.rows[0].user_id, u2);
}

/* A journal segment is applied once: the replay after a crash that came
 * between the commit and the segment's deletion changes nothing. */
static void test_apply_segment_applies_each_segment_once(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    uint32_t u1 = add_user(fx, 1, "one"), u2 = add_user(fx, 2, "two");
    uint32_t t5 = add_torrent(fx, 0x55);
    struct acct_delta d[] = {
        {.user_id = u1, .torrent_id = t5, .uploaded = 700, .downloaded = 3, .snatch = true,
         .at = 9, .announces = 2, .first_at = 8},
        {.user_id = u2, .torrent_id = t5, .uploaded = 11, .at = 9, .announces = 1},
    };
    struct store_segment_id a = {.boot = UINT64_MAX, .writer = 3, .seq = 41};
    struct store_segment_id b = {.boot = UINT64_MAX, .writer = 3, .seq = 42};
    struct store_segment_id c = {.boot = 7, .writer = 3, .seq = 41, .records = 10};
    struct mk_errbuf eb;
    assert_int_equal(store_apply_segment(&fx->st, &a, d, 2, &eb), 0);
    assert_int_equal(store_apply_segment(&fx->st, &a, d, 2, &eb), MK_EEXIST);
    assert_int_equal(get_user(fx, u1).uploaded, 700);
    assert_int_equal(get_user(fx, u2).uploaded, 11);
    assert_int_equal(get_torrent(fx, 0x55).row.snatches, 1);
    /* Another segment with the same rows is new books; the replay's refusal
     * was not logged as a failure. */
    assert_int_equal(store_apply_segment(&fx->st, &b, d, 2, &eb), 0);
    assert_int_equal(store_apply_segment(&fx->st, &c, d, 2, &eb), 0);
    assert_int_equal(get_user(fx, u1).uploaded, 2100);
    assert_int_equal(get_user(fx, u1).downloaded, 9);
    assert_int_equal(get_torrent(fx, 0x55).row.snatches, 1);
    assert_int_equal(store_apply_segment(&fx->st, &b, d, 2, &eb), MK_EEXIST);
    assert_int_equal(store_apply_segment(&fx->st, &c, d, 2, &eb), MK_EEXIST);
    assert_int_equal(get_user(fx, u2).uploaded, 33);
    /* And the replay survives a reopen: what was applied is in the store. */
    reopen_store(fx);
    assert_int_equal(store_apply_segment(&fx->st, &a, d, 2, &eb), MK_EEXIST);
    assert_int_equal(get_user(fx, u1).uploaded, 2100);
    assert_null(strstr(log_text(fx), "failed"));
}

/* Several segments in one transaction: all recorded with it, and a group
 * holding one applied before changes nothing (the flusher then goes one by
 * one). Backends without the method answer MK_ENOTSUP. */
static void test_apply_segments_records_every_id_or_changes_nothing(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    uint32_t u1 = add_user(fx, 1, "one");
    uint32_t t5 = add_torrent(fx, 0x55);
    struct acct_delta d = {.user_id = u1, .torrent_id = t5, .uploaded = 100, .at = 9,
                           .announces = 1};
    struct store_segment_id ab[] = {{.boot = 5, .writer = 0, .seq = 1, .records = 1},
                                    {.boot = 5, .writer = 1, .seq = 1, .records = 1}};
    struct store_segment_id bc[] = {{.boot = 5, .writer = 1, .seq = 1, .records = 1},
                                    {.boot = 5, .writer = 1, .seq = 2, .records = 1}};
    struct mk_errbuf eb;
    int rc = store_apply_segments(&fx->st, ab, 2, &d, 1, &eb);
    if (rc == MK_ENOTSUP) {
        assert_int_equal(get_user(fx, u1).uploaded, 0);
        return;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(get_user(fx, u1).uploaded, 100);
    assert_int_equal(store_apply_segment(&fx->st, &ab[0], &d, 1, &eb), MK_EEXIST);
    assert_int_equal(store_apply_segment(&fx->st, &ab[1], &d, 1, &eb), MK_EEXIST);
    assert_int_equal(store_apply_segments(&fx->st, bc, 2, &d, 1, &eb), MK_EEXIST);
    assert_int_equal(get_user(fx, u1).uploaded, 100);
    /* bc[1] was not recorded by the refused group. */
    assert_int_equal(store_apply_segment(&fx->st, &bc[1], &d, 1, &eb), 0);
    assert_int_equal(get_user(fx, u1).uploaded, 200);
    assert_null(strstr(log_text(fx), "failed"));
}

/* Applied segment ids are forgotten by age, of one cluster node (the top
 * 16 bits of the boot id) or, with node 0, all: a forgotten segment would
 * be applied again. Backends without the method answer MK_ENOTSUP. */
static void test_prune_applied_forgets_old_ids_of_one_node_or_all(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    uint32_t u1 = add_user(fx, 1, "one");
    uint32_t t5 = add_torrent(fx, 0x55);
    struct acct_delta d = {.user_id = u1, .torrent_id = t5, .uploaded = 100, .at = 9,
                           .announces = 1};
    struct store_segment_id node3 = {.boot = (UINT64_C(3) << 48) | 1, .writer = 0, .seq = 1};
    struct store_segment_id node4 = {.boot = (UINT64_C(0xfffe) << 48) | 1, .writer = 0, .seq = 1};
    struct store_segment_id plain = {.boot = 7, .writer = 2, .seq = 9};
    struct mk_errbuf eb;
    assert_int_equal(store_apply_segment(&fx->st, &node3, &d, 1, &eb), 0);
    assert_int_equal(store_apply_segment(&fx->st, &node4, &d, 1, &eb), 0);
    assert_int_equal(store_apply_segment(&fx->st, &plain, &d, 1, &eb), 0);
    int64_t now = (int64_t)time(NULL);
    int rc = store_prune_applied(&fx->st, now - 3600, 3, &eb);
    if (rc == MK_ENOTSUP) {
        return;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(store_apply_segment(&fx->st, &node3, &d, 1, &eb), MK_EEXIST);
    /* Recorded before now + 10 s: node 3's id goes, the others stay. */
    assert_int_equal(store_prune_applied(&fx->st, now + 10, 3, &eb), 0);
    assert_int_equal(store_apply_segment(&fx->st, &node4, &d, 1, &eb), MK_EEXIST);
    assert_int_equal(store_apply_segment(&fx->st, &plain, &d, 1, &eb), MK_EEXIST);
    assert_int_equal(store_apply_segment(&fx->st, &node3, &d, 1, &eb), 0);
    assert_int_equal(get_user(fx, u1).uploaded, 400);
    assert_int_equal(store_prune_applied(&fx->st, now + 10, 0, &eb), 0);
    assert_int_equal(store_apply_segment(&fx->st, &node4, &d, 1, &eb), 0);
    assert_int_equal(store_apply_segment(&fx->st, &plain, &d, 1, &eb), 0);
    assert_int_equal(get_user(fx, u1).uploaded, 600);
    assert_null(strstr(log_text(fx), "failed"));
}

static void test_apply_many_deltas_in_one_batch_sums_exactly(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    enum { NUSERS = 40, NDELTAS = 3000 };
    for (uint32_t i = 1; i <= NUSERS; i++) {
        char pk[16];
        snprintf(pk, sizeof(pk), "u%u", i);
        add_user(fx, i, pk);
    }
    uint32_t t = add_torrent(fx, 0x77);
    struct acct_delta *d = calloc(NDELTAS, sizeof(*d));
    assert_non_null(d);
    uint64_t want_up[NUSERS + 1] = {0};
    uint64_t want_transferred = 0;
    for (uint32_t i = 0; i < NDELTAS; i++) {
        uint32_t u = 1 + i % NUSERS;
        d[i] = (struct acct_delta){.user_id = u, .torrent_id = t, .uploaded = 1000 + i,
                                   .downloaded = i, .at = 100 + i, .announces = 1,
                                   .snatch = i % 7 == 0};
        want_up[u] += 1000 + i;
        want_transferred += i;
    }
    struct store_segment_id seg = {.boot = 1, .writer = 1, .seq = 1};
    struct mk_errbuf eb;
    assert_int_equal(store_apply_segment(&fx->st, &seg, d, NDELTAS, &eb), 0);
    assert_int_equal(store_apply_segment(&fx->st, &seg, d, NDELTAS, &eb), MK_EEXIST);
    for (uint32_t u = 1; u <= NUSERS; u++) {
        assert_int_equal(get_user(fx, u).uploaded, want_up[u]);
    }
    /* Every user with an i % 7 == 0 delta snatched once: i = 0, 7, ... hit
     * all residues mod 40 since gcd(7, 40) = 1. */
    assert_int_equal(get_torrent(fx, 0x77).row.snatches, NUSERS);
    /* The torrent's transferred bytes: every delta's download, read back
     * by torrent_get as the API shows it. */
    assert_int_equal(get_torrent(fx, 0x77).transferred, want_transferred);
    free(d);
}

/* ---- peers and history --------------------------------------------------------- */

static struct acct_delta peer_delta(uint32_t user, uint32_t torrent, const char *pid,
                                    uint64_t up, int64_t seen, int64_t version, bool gone)
{
    struct acct_delta d = {.user_id = user, .torrent_id = torrent, .at = seen, .has_peer = true};
    d.peer = (struct peer_row){.torrent_id = torrent, .user_id = user, .family = 4, .port = 6881,
                               .uploaded = up, .downloaded = up / 2, .seeder = true,
                               .last_seen = seen, .version = version, .gone = gone};
    memcpy(d.peer.peer_id, pid, 20);
    memcpy(d.peer.ip, "\x7f\x00\x00\x01", 4);
    return d;
}

/* peer.fresh (new to its swarm) is only a hint that the store has no row: a
 * fresh report of a peer the store holds still updates it when newer and
 * leaves it when older, and a fresh one of an unknown peer is added. */
static void test_a_fresh_report_of_a_stored_peer_still_keeps_the_newest(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    uint32_t u = add_user(fx, 1, "one");
    uint32_t t = add_torrent(fx, 0x56);
    const char *pa = "-qB4650-aaaaaaaaaaaa", *pc = "-DE2030-cccccccccccc";
    struct acct_delta first[] = {peer_delta(u, t, pa, 900, 1000, 1000000000, false)};
    struct acct_delta newer[] = {peer_delta(u, t, pa, 1200, 1010, 1010000000, false),
                                 peer_delta(u, t, pc, 7, 1010, 1010000001, false)};
    struct acct_delta older[] = {peer_delta(u, t, pa, 100, 1005, 1005000000, false)};
    newer[0].peer.fresh = newer[1].peer.fresh = older[0].peer.fresh = true;
    struct store_segment_id s[] = {{.boot = 2, .writer = 0, .seq = 1},
                                   {.boot = 2, .writer = 0, .seq = 2},
                                   {.boot = 2, .writer = 1, .seq = 1}};
    struct mk_errbuf eb;
    assert_int_equal(store_apply_segment(&fx->st, &s[0], first, 1, &eb), 0);
    assert_int_equal(store_apply_segment(&fx->st, &s[1], newer, 2, &eb), 0);
    assert_int_equal(store_apply_segment(&fx->st, &s[2], older, 1, &eb), 0);
    struct peers_seen ps = {.n = 0};
    assert_int_equal(store_load_peers(&fx->st, 0, collect_peer, &ps, &eb), 0);
    assert_int_equal(ps.n, 2);
    for (int i = 0; i < 2; i++) {
        const struct peer_row *r = &ps.rows[i];
        if (memcmp(r->peer_id, pa, 20) == 0) {
            assert_int_equal(r->uploaded, 1200); /* the newer, not the older fresh one */
            assert_int_equal(r->last_seen, 1010);
        } else {
            assert_memory_equal(r->peer_id, pc, 20);
            assert_int_equal(r->uploaded, 7);
        }
    }
}

/* Each peer's last report is kept for the next start; segments of different
 * workers arrive in any order, so an older report never overwrites a newer
 * one; a peer that left is not loaded; old peers are pruned. */
static void test_peers_keep_the_newest_report_and_load_with_their_hash(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    uint32_t u1 = add_user(fx, 1, "one"), u2 = add_user(fx, 2, "two");
    uint32_t t = add_torrent(fx, 0x55);
    const char *pa = "-qB4650-aaaaaaaaaaaa", *pb = "-TR3000-bbbbbbbbbbbb";
    struct acct_delta newer[] = {peer_delta(u1, t, pa, 900, 1000, 1000000900, false),
                                 peer_delta(u2, t, pb, 50, 1000, 1000000950, false)};
    newer[1].peer.family = 6;
    memcpy(newer[1].peer.ip, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01", 16);
    newer[1].peer.seeder = false;
    newer[1].peer.partial = true;
    newer[1].peer.port = 51413;
    newer[0].peer.node_id = 3; /* the cluster node that answered it */
    struct acct_delta older[] = {peer_delta(u1, t, pa, 300, 999, 999000000, false)};
    older[0].peer.node_id = 2;
    /* Only the cluster's peers backends keep the node; the others load 0. */
    bool keeps_node = strcmp(backend, "postgres") == 0 || strcmp(backend, "redis") == 0;
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
        assert_int_equal(r->torrent_id, t);
        assert_int_equal(r->last_seen, 1000);
        if (r->user_id == u1) {
            assert_memory_equal(r->peer_id, pa, 20);
            assert_int_equal(r->family, 4);
            assert_memory_equal(r->ip, "\x7f\x00\x00\x01", 4);
            assert_int_equal(r->port, 6881);
            assert_true(r->seeder);
            assert_false(r->partial);
            assert_int_equal(r->uploaded, 900); /* not the older 300 */
            assert_int_equal(r->downloaded, 450);
            assert_int_equal(r->node_id, keeps_node ? 3 : 0); /* not the older 2 */
        } else {
            assert_int_equal(r->user_id, u2);
            assert_memory_equal(r->peer_id, pb, 20);
            assert_int_equal(r->family, 6);
            assert_memory_equal(r->ip, "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01", 16);
            assert_int_equal(r->port, 51413);
            assert_false(r->seeder);
            assert_true(r->partial);
            assert_int_equal(r->uploaded, 50);
            assert_int_equal(r->node_id, 0);
        }
    }
    /* Gone: not loaded, and an older report cannot bring it back. */
    struct acct_delta left[] = {peer_delta(u2, t, pb, 60, 1001, 1001000000, true)};
    struct acct_delta stale[] = {peer_delta(u2, t, pb, 55, 1000, 1000000990, false)};
    struct store_segment_id s2 = {.boot = 1, .writer = 0, .seq = 2};
    struct store_segment_id s3 = {.boot = 1, .writer = 1, .seq = 2};
    assert_int_equal(store_apply_segment(&fx->st, &s2, left, 1, &eb), 0);
    assert_int_equal(store_apply_segment(&fx->st, &s3, stale, 1, &eb), 0);
    ps.n = 0;
    assert_int_equal(store_load_peers(&fx->st, 0, collect_peer, &ps, &eb), 0);
    assert_int_equal(ps.n, 1);
    assert_int_equal(ps.rows[0].user_id, u1);
    /* seen_since filters; prune deletes what is older. */
    ps.n = 0;
    assert_int_equal(store_load_peers(&fx->st, 1001, collect_peer, &ps, &eb), 0);
    assert_int_equal(ps.n, 0);
    assert_int_equal(store_prune_peers(&fx->st, 1001, &eb), 0);
    ps.n = 0;
    assert_int_equal(store_load_peers(&fx->st, 0, collect_peer, &ps, &eb), 0);
    assert_int_equal(ps.n, 0);
    /* Pruned, so even an old report is new again. */
    assert_int_equal(store_apply(&fx->st, older, 1, &eb), 0);
    ps.n = 0;
    assert_int_equal(store_load_peers(&fx->st, 0, collect_peer, &ps, &eb), 0);
    assert_int_equal(ps.n, 1);
    assert_int_equal(ps.rows[0].uploaded, 300);
    assert_int_equal(ps.rows[0].node_id, keeps_node ? 2 : 0);
}

/* An announce as the flusher hands it over: its books and the peer's
 * report, for one user and torrent. */
static struct acct_delta announce_delta(uint32_t user, uint32_t torrent, const char *pid,
                                        uint64_t up, int64_t seen, int64_t version, bool gone)
{
    struct acct_delta d = peer_delta(user, torrent, pid, up, seen, version, gone);
    d.announces = 1;
    d.uploaded = 1;
    d.first_at = seen;
    return d;
}

static void expect_peers(struct fixture *fx, int n, const char *const *pids,
                         const uint64_t *uploaded)
{
    struct peers_seen ps = {.n = 0};
    struct mk_errbuf eb;
    assert_int_equal(store_load_peers(&fx->st, 0, collect_peer, &ps, &eb), 0);
    assert_int_equal(ps.n, n);
    for (int i = 0; i < n; i++) {
        int found = 0;
        for (int j = 0; j < n; j++) {
            if (memcmp(ps.rows[j].peer_id, pids[i], 20) == 0) {
                assert_int_equal(ps.rows[j].uploaded, uploaded[i]);
                found++;
            }
        }
        assert_int_equal(found, 1);
    }
}

/* A user with two clients on one torrent: each peer keeps its own newest
 * report, reported alone or together, through leaving, a stale report and a
 * prune; the history row books every announce once. (The sqlite backend
 * keeps a user's one peer in the history row and a second in peers: this
 * walks a peer through both.) */
static void test_a_users_peers_on_one_torrent_each_keep_their_newest_report(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    uint32_t u = add_user(fx, 1, "one");
    uint32_t t = add_torrent(fx, 0x57);
    const char *pa = "-qB4650-aaaaaaaaaaaa", *pb = "-TR3000-bbbbbbbbbbbb",
               *pc = "-DE2030-cccccccccccc";
    const int64_t v = 1000000000;
    struct acct_delta b1[] = {announce_delta(u, t, pa, 100, 1000, v + 1, false)};
    struct acct_delta b2[] = {announce_delta(u, t, pb, 10, 1001, v + 2, false)};
    struct acct_delta b3[] = {announce_delta(u, t, pa, 200, 1002, v + 3, false),
                              announce_delta(u, t, pb, 20, 1002, v + 4, false)};
    struct acct_delta b4[] = {announce_delta(u, t, pa, 300, 1003, v + 5, false)};
    struct acct_delta b5[] = {announce_delta(u, t, pa, 310, 1004, v + 6, true)};
    struct acct_delta b6[] = {announce_delta(u, t, pa, 250, 1002, v + 3, false)};
    b6[0].peer.version = v + 4; /* older than the leaving, newer than b3's */
    struct acct_delta b7[] = {announce_delta(u, t, pb, 30, 1010, v + 7, false),
                              announce_delta(u, t, pc, 5, 1010, v + 8, false)};
    struct acct_delta b8[] = {announce_delta(u, t, pc, 6, 1011, v + 9, false)};
    struct mk_errbuf eb;
    assert_int_equal(store_apply(&fx->st, b1, 1, &eb), 0);
    assert_int_equal(store_apply(&fx->st, b2, 1, &eb), 0);
    expect_peers(fx, 2, (const char *[]){pa, pb}, (uint64_t[]){100, 10});
    assert_int_equal(store_apply(&fx->st, b3, 2, &eb), 0);
    expect_peers(fx, 2, (const char *[]){pa, pb}, (uint64_t[]){200, 20});
    assert_int_equal(store_apply(&fx->st, b4, 1, &eb), 0);
    expect_peers(fx, 2, (const char *[]){pa, pb}, (uint64_t[]){300, 20});
    /* pa leaves; its stale report, applied later, does not bring it back. */
    assert_int_equal(store_apply(&fx->st, b5, 1, &eb), 0);
    assert_int_equal(store_apply(&fx->st, b6, 1, &eb), 0);
    expect_peers(fx, 1, (const char *[]){pb}, (uint64_t[]){20});
    assert_int_equal(store_apply(&fx->st, b7, 2, &eb), 0);
    expect_peers(fx, 2, (const char *[]){pb, pc}, (uint64_t[]){30, 5});
    /* The prune forgets pa (last seen 1004) and keeps pb and pc (1010). */
    assert_int_equal(store_prune_peers(&fx->st, 1005, &eb), 0);
    expect_peers(fx, 2, (const char *[]){pb, pc}, (uint64_t[]){30, 5});
    assert_int_equal(store_apply(&fx->st, b8, 1, &eb), 0);
    expect_peers(fx, 2, (const char *[]){pb, pc}, (uint64_t[]){30, 6});
    assert_int_equal(store_prune_peers(&fx->st, 1011, &eb), 0);
    expect_peers(fx, 1, (const char *[]){pc}, (uint64_t[]){6});
    /* Pruned, pa's leaving is forgotten: even an old report is new again. */
    struct acct_delta b9[] = {announce_delta(u, t, pa, 99, 1012, v + 2, false)};
    assert_int_equal(store_apply(&fx->st, b9, 1, &eb), 0);
    expect_peers(fx, 2, (const char *[]){pa, pc}, (uint64_t[]){99, 6});
    /* Eleven announces, each booked once. */
    struct history_seen hs = {0};
    uint64_t total = 0;
    assert_int_equal(store_user_history(&fx->st, u, 0, 10, collect_history, &hs, &total, &eb), 0);
    assert_int_equal(hs.n, 1);
    assert_int_equal(hs.rows[0].announces, 11);
    assert_int_equal(hs.rows[0].raw_uploaded, 11);
    assert_int_equal(hs.rows[0].first_announce, 1000);
    assert_int_equal(hs.rows[0].last_announce, 1012);
    assert_int_equal(get_user(fx, u).announces, 11);
}

static void test_user_history_books_each_torrent_and_its_completion(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    uint32_t u = add_user(fx, 4, "hist");
    uint32_t ta = add_torrent(fx, 0xa0), tb = add_torrent(fx, 0xb0);
    struct acct_delta d[] = {
        {.user_id = u, .torrent_id = ta, .uploaded = 100, .downloaded = 40, .has_credit = true,
         .credited_up = 200, .credited_down = 40, .seed_seconds = 60, .announces = 3,
         .first_at = 1000, .at = 1100},
        {.user_id = u, .torrent_id = tb, .downloaded = 5, .leech_seconds = 9, .announces = 1,
         .at = 1200},
        {.user_id = u, .torrent_id = ta, .uploaded = 1, .announces = 1, .at = 1300,
         .snatch = true},
    };
    struct mk_errbuf eb;
    assert_int_equal(store_apply(&fx->st, d, 3, &eb), 0);
    assert_int_equal(get_user(fx, u).snatches, 1);
    struct history_seen hs = {0};
    uint64_t total = 0;
    assert_int_equal(store_user_history(&fx->st, u, 0, 10, collect_history, &hs, &total, &eb), 0);
    assert_int_equal(total, 2);
    assert_int_equal(hs.n, 2);
    /* Most recent announce first. */
    assert_int_equal(hs.rows[0].torrent_id, ta);
    assert_memory_equal(hs.rows[0].info_hash, "\xa0\xa0\xa0\xa0\xa0\xa0\xa0\xa0\xa0\xa0"
                                              "\xa0\xa0\xa0\xa0\xa0\xa0\xa0\xa0\xa0\xa0", 20);
    assert_int_equal(hs.rows[0].uploaded, 201);
    assert_int_equal(hs.rows[0].raw_uploaded, 101);
    assert_int_equal(hs.rows[0].downloaded, 40);
    assert_int_equal(hs.rows[0].seed_time, 60);
    assert_int_equal(hs.rows[0].announces, 4);
    assert_int_equal(hs.rows[0].first_announce, 1000);
    assert_int_equal(hs.rows[0].last_announce, 1300);
    assert_int_equal(hs.rows[0].completed_at, 1300);
    assert_int_equal(hs.rows[1].torrent_id, tb);
    assert_int_equal(hs.rows[1].leech_time, 9);
    assert_int_equal(hs.rows[1].first_announce, 1200);
    assert_int_equal(hs.rows[1].completed_at, 0);
    hs.n = 0;
    assert_int_equal(store_user_history(&fx->st, u, 1, 10, collect_history, &hs, &total, &eb), 0);
    assert_int_equal(total, 2);
    assert_int_equal(hs.n, 1);
    assert_int_equal(hs.rows[0].torrent_id, tb);
}

struct suspicious_seen {
    struct suspicious_row rows[8];
    size_t n;
};

static int collect_suspicious(const struct suspicious_row *row, void *arg)
{
    struct suspicious_seen *s = arg;
    assert_true(s->n < 8);
    s->rows[s->n++] = *row;
    return 0;
}

/* An upload too good to be true is booked raw, not credited, and recorded
 * with its reason; the user's list is newest first. */
static void test_apply_records_suspicious_uploads_newest_first(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    uint32_t u = add_user(fx, 8, "sus"), other = add_user(fx, 9, "fine");
    uint32_t t = add_torrent(fx, 0x5a);
    struct acct_delta d[] = {
        {.user_id = u, .torrent_id = t, .uploaded = 5000, .has_credit = true, .credited_up = 0,
         .suspicious = 1, .suspicious_up = 5000, .at = 2000, .announces = 1},
        {.user_id = u, .torrent_id = t, .uploaded = 1ull << 41, .has_credit = true,
         .credited_up = 0, .suspicious = 2, .suspicious_up = 1ull << 41, .at = 2100,
         .announces = 1},
        {.user_id = other, .torrent_id = t, .uploaded = 10, .at = 2100, .announces = 1},
    };
    struct mk_errbuf eb;
    assert_int_equal(store_apply(&fx->st, d, 3, &eb), 0);
    struct user_rec r = get_user(fx, u);
    assert_int_equal(r.uploaded, 0);
    assert_int_equal(r.raw_uploaded, 5000 + (1ull << 41));
    struct suspicious_seen ss = {0};
    uint64_t total = 0;
    assert_int_equal(store_user_suspicious(&fx->st, u, 0, 10, collect_suspicious, &ss, &total,
                                           &eb),
                     0);
    assert_int_equal(total, 2);
    assert_int_equal(ss.n, 2);
    assert_int_equal(ss.rows[0].at, 2100);
    assert_int_equal(ss.rows[0].uploaded, 1ull << 41);
    assert_string_equal(ss.rows[0].reason, "too_fast");
    assert_memory_equal(ss.rows[0].info_hash, "\x5a\x5a\x5a\x5a\x5a\x5a\x5a\x5a\x5a\x5a"
                                              "\x5a\x5a\x5a\x5a\x5a\x5a\x5a\x5a\x5a\x5a", 20);
    assert_int_equal(ss.rows[1].at, 2000);
    assert_string_equal(ss.rows[1].reason, "no_leechers");
    ss.n = 0;
    assert_int_equal(store_user_suspicious(&fx->st, u, 1, 10, collect_suspicious, &ss, &total,
                                           &eb),
                     0);
    assert_int_equal(ss.n, 1);
    assert_int_equal(ss.rows[0].at, 2000);
    ss.n = 0;
    assert_int_equal(store_user_suspicious(&fx->st, other, 0, 10, collect_suspicious, &ss,
                                           &total, &eb),
                     0);
    assert_int_equal(total, 0);
    assert_int_equal(ss.n, 0);
}

/* ---- MK_STORE_V4: clusters (postgres and redis; skipped elsewhere) ------- */

struct heard {
    int subscribed;
    int n;
    char last[128];
};

static void collect_change(const char *payload, size_t len, void *arg)
{
    struct heard *h = arg;
    if (!payload) {
        h->subscribed++;
        return;
    }
    h->n++;
    snprintf(h->last, sizeof(h->last), "%.*s", (int)len, payload);
}

static void test_a_published_change_reaches_a_listener(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    if (!store_can_notify(&fx->st)) {
        struct mk_errbuf eb = {{0}};
        assert_int_equal(store_publish_change(&fx->st, "1:settings", &eb), MK_ENOTSUP);
        skip();
    }
    struct store listener = {0};
    struct mk_errbuf eb = {{0}};
    assert_int_equal(store_open(&listener, backend, &fx->cfg, &eb), 0);
    struct heard h = {0};
    assert_int_equal(store_listen_changes(&listener, 0, collect_change, &h, &eb), 0);
    assert_int_equal(h.subscribed, 1); /* told once that it subscribed */
    assert_int_equal(store_publish_change(&fx->st, "1:user:5", &eb), 0);
    for (int i = 0; i < 20 && h.n == 0; i++) {
        assert_int_equal(store_listen_changes(&listener, 100, collect_change, &h, &eb), 0);
    }
    assert_int_equal(h.n, 1);
    assert_string_equal(h.last, "1:user:5");
    assert_int_equal(store_listen_changes(&listener, 50, collect_change, &h, &eb), 0);
    assert_int_equal(h.n, 1);
    assert_int_equal(h.subscribed, 1);
    store_close(&listener);
}

struct counts_seen {
    struct swarm_count_row rows[8];
    int n;
};

static int collect_count(const struct swarm_count_row *row, void *arg)
{
    struct counts_seen *s = arg;
    assert_true(s->n < 8);
    s->rows[s->n++] = *row;
    return 0;
}

static struct swarm_count_row count_row(uint8_t fill, uint32_t seeders, uint32_t leechers)
{
    struct swarm_count_row r = {.seeders = seeders, .leechers = leechers};
    memset(r.info_hash, fill, 20);
    return r;
}

static void test_counts_of_other_live_nodes_load_and_expire(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    struct mk_errbuf eb = {{0}};
    struct swarm_count_row one[] = {count_row(0xa1, 2, 3), count_row(0xb2, 1, 0)};
    int rc = store_counts_put(&fx->st, 1, true, one, 2, 60, &eb);
    if (!store_can_notify(&fx->st)) {
        assert_int_equal(rc, MK_ENOTSUP);
        skip();
    }
    assert_int_equal(rc, 0);
    /* Snatches and the last announce's time ride with the counts, up to
     * 32 bits each. */
    struct swarm_count_row two[] = {count_row(0xa1, 1, 1)};
    two[0].snatches = 7;
    two[0].announced_at = 4000000000u;
    assert_int_equal(store_counts_put(&fx->st, 2, true, two, 1, 60, &eb), 0);

    struct counts_seen s = {0};
    assert_int_equal(store_counts_load(&fx->st, 1, 60, collect_count, &s, &eb), 0);
    assert_int_equal(s.n, 1); /* node 1's own rows are not its to read */
    assert_int_equal(s.rows[0].node_id, 2);
    assert_int_equal(s.rows[0].info_hash[0], 0xa1);
    assert_int_equal(s.rows[0].seeders, 1);
    assert_int_equal(s.rows[0].leechers, 1);
    assert_int_equal(s.rows[0].snatches, 7);
    assert_int_equal(s.rows[0].announced_at, 4000000000u);
    /* A row published again replaces the node's previous one. */
    two[0].snatches = 8;
    two[0].announced_at = 4000000001u;
    assert_int_equal(store_counts_put(&fx->st, 2, false, two, 1, 60, &eb), 0);
    s.n = 0;
    assert_int_equal(store_counts_load(&fx->st, 1, 60, collect_count, &s, &eb), 0);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.rows[0].snatches, 8);
    assert_int_equal(s.rows[0].announced_at, 4000000001u);

    /* 0 and 0 removes a row; reset removes every row of the node first. */
    struct swarm_count_row gone[] = {count_row(0xb2, 0, 0)};
    assert_int_equal(store_counts_put(&fx->st, 1, false, gone, 1, 60, &eb), 0);
    s.n = 0;
    assert_int_equal(store_counts_load(&fx->st, 2, 60, collect_count, &s, &eb), 0);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.rows[0].info_hash[0], 0xa1);
    assert_int_equal(s.rows[0].seeders, 2);
    assert_int_equal(store_counts_put(&fx->st, 1, true, NULL, 0, 60, &eb), 0);
    s.n = 0;
    assert_int_equal(store_counts_load(&fx->st, 2, 60, collect_count, &s, &eb), 0);
    assert_int_equal(s.n, 0);

    /* A node that stops publishing drops out after its ttl. */
    assert_int_equal(store_counts_put(&fx->st, 2, false, NULL, 0, 1, &eb), 0);
    s.n = 0;
    assert_int_equal(store_counts_load(&fx->st, 3, 1, collect_count, &s, &eb), 0);
    assert_int_equal(s.n, 1);
    struct timespec ts = {1, 500000000L};
    nanosleep(&ts, NULL);
    s.n = 0;
    assert_int_equal(store_counts_load(&fx->st, 3, 1, collect_count, &s, &eb), 0);
    assert_int_equal(s.n, 0);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s sqlite|memory|split|postgres|mysql|redis\n", argv[0]);
        return 2;
    }
    backend = argv[1];
    if (strcmp(backend, "split") != 0 && !store_find(backend)) {
        fprintf(stderr, "%s: no backend \"%s\" in the registry\n", argv[0], backend);
        return 1;
    }
    if (strcmp(backend, "postgres") == 0 && !getenv("MIKA_TEST_PG_DSN")) {
        fprintf(stderr, "%s: MIKA_TEST_PG_DSN is not set: run it through tests/lib/pgserver.py\n",
                argv[0]);
        return 1;
    }
    if (strcmp(backend, "mysql") == 0 && !getenv("MIKA_TEST_MYSQL_DSN")) {
        fprintf(stderr, "%s: MIKA_TEST_MYSQL_DSN is not set: run it through"
                        " tests/lib/mysqlserver.py\n", argv[0]);
        return 1;
    }
    if (strcmp(backend, "redis") == 0 && !getenv("MIKA_TEST_REDIS_DSN")) {
        fprintf(stderr,
                "%s: MIKA_TEST_REDIS_DSN is not set: run it through tests/lib/redisserver.py\n",
                argv[0]);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        T(test_open_migrates_an_empty_database_to_the_defaults),
        T(test_reopen_keeps_rows_and_never_reseeds_the_whitelist),
        T(test_user_insert_picks_ids_and_reads_back_defaults),
        T(test_user_insert_names_the_duplicate_column),
        T(test_user_insert_into_a_missing_class_is_enotfound),
        T(test_user_get_by_passkey_update_and_delete),
        T(test_user_list_filters_pages_and_counts),
        T(test_load_users_streams_every_row_with_the_effective_right),
        T(test_load_users_applies_the_class),
        T(test_load_stops_at_the_callbacks_error_and_the_store_goes_on),
        T(test_torrent_insert_get_update_and_load),
        T(test_torrent_insert_duplicate_hash_is_eexist),
        T(test_whitelist_insert_and_delete_compare_bytes),
        T(test_class_insert_update_list_delete),
        T(test_class_delete_refuses_default_and_classes_with_users),
        T(test_settings_put_replaces_and_load_streams),
        T(test_apply_adds_exactly_credited_and_raw_apart),
        T(test_apply_counts_a_snatch_once_even_when_repeated),
        T(test_apply_segment_applies_each_segment_once),
        T(test_apply_segments_records_every_id_or_changes_nothing),
        T(test_prune_applied_forgets_old_ids_of_one_node_or_all),
        T(test_apply_many_deltas_in_one_batch_sums_exactly),
        T(test_peers_keep_the_newest_report_and_load_with_their_hash),
        T(test_a_fresh_report_of_a_stored_peer_still_keeps_the_newest),
        T(test_a_users_peers_on_one_torrent_each_keep_their_newest_report),
        T(test_user_history_books_each_torrent_and_its_completion),
        T(test_apply_records_suspicious_uploads_newest_first),
        T(test_a_published_change_reaches_a_listener),
        T(test_counts_of_other_live_nodes_load_and_expire),
    };
    char group[64];
    snprintf(group, sizeof(group), "store conformance: %s", backend);
    return cmocka_run_group_tests_name(group, tests, NULL, NULL);
}
