/* tests/conformance/test_pg.c: what only the postgres backend (store/pg.c)
 * has to show: the server's types, migration from the previous schema
 * version and under a lock with several nodes starting at once, a refused
 * schema from a newer mika, a lost
 * connection answered with MK_EUNAVAIL and made again by the next call, a
 * locked row met promptly, loads that stream while the server is still
 * sending, and the books' set-based statements: a row named twice in one
 * batch, a group of segments applied as one, kinds, chunks and clamping.
 *
 * Runs through tests/lib/pgserver.py (MIKA_TEST_PG_DSN); each test gets a
 * fresh schema. A second, plain libpq connection plays the site's own code
 * and the operator's psql.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"
#include "util/log.h"

struct fixture {
    char dir[64];
    char log[128];
    char schema[64];
    char dsn[512];
    int log_fd;
    struct store_cfg cfg;
    struct store st;
};

static const char *base_dsn(void)
{
    const char *dsn = getenv("MIKA_TEST_PG_DSN");
    if (!dsn || !*dsn) {
        fail_msg("MIKA_TEST_PG_DSN is not set: run through tests/lib/pgserver.py");
    }
    return dsn;
}

/* The site's connection: into the fixture's schema when it has one. */
static PGconn *site(const struct fixture *fx)
{
    char dsn[600];
    snprintf(dsn, sizeof(dsn), "%s application_name=site options='-csearch_path=%s'",
             base_dsn(), fx && fx->schema[0] ? fx->schema : "public");
    PGconn *c = PQconnectdb(dsn);
    if (PQstatus(c) != CONNECTION_OK) {
        fail_msg("cannot reach the test server: %s", PQerrorMessage(c));
    }
    PQclear(PQexec(c, "SET client_min_messages = warning"));
    return c;
}

static void site_exec_on(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    }
    PQclear(r);
}

static void site_exec(const struct fixture *fx, const char *sql)
{
    PGconn *c = site(fx);
    site_exec_on(c, sql);
    PQfinish(c);
}

/* One text value of a one-row query. */
static char *site_text(const struct fixture *fx, const char *sql, char *out, size_t cap)
{
    PGconn *c = site(fx);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        fail_msg("%s: %s (%d rows)", sql, PQresultErrorMessage(r), PQntuples(r));
    }
    snprintf(out, cap, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    PQfinish(c);
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
    strcpy(fx->dir, "/tmp/mika-test-pg-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->log, sizeof(fx->log), "%s/log", fx->dir);
    fx->log_fd = open(fx->log, O_CREAT | O_WRONLY | O_APPEND, 0600);
    assert_true(fx->log_fd >= 0);
    mk_log_setup(MK_LOG_INFO, MK_LOG_TEXT, fx->log_fd);
    snprintf(fx->schema, sizeof(fx->schema), "pgt_%d_%u", (int)getpid(), ++seq);
    char sql[128];
    snprintf(sql, sizeof(sql), "CREATE SCHEMA %s", fx->schema);
    site_exec(NULL, sql);
    snprintf(fx->dsn, sizeof(fx->dsn), "%s options='-csearch_path=%s'", base_dsn(), fx->schema);
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
    snprintf(sql, sizeof(sql), "DROP SCHEMA %s CASCADE", fx->schema);
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
    int rc = store_open(&fx->st, "postgres", &fx->cfg, &eb);
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

/* Ends mika's server sessions (application_name "mika"), as a restart or a
 * failover would. */
static void kill_mika_sessions(void)
{
    PGconn *c = site(NULL);
    PGresult *r = PQexec(c, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                            " WHERE application_name = 'mika'");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_true(atoi(PQgetvalue(r, 0, 0)) >= 1);
    PQclear(r);
    PQfinish(c);
}

/* ---- open and schema ----------------------------------------------------- */

static void test_open_needs_a_dsn(void **state)
{
    struct store st;
    struct store_cfg cfg = {.path = "/tmp/ignored.db"};
    struct mk_errbuf eb;
    assert_int_equal(store_open(&st, "postgres", &cfg, &eb), MK_EINVAL);
    assert_string_equal(eb.msg, "postgres: no dsn");
    assert_null(st.ops);
}

static void test_open_of_an_unreachable_server_is_eunavail_promptly(void **state)
{
    struct fixture *fx = *state;
    struct store_cfg cfg = {.dsn = "host=127.0.0.1 port=1 user=postgres dbname=mika_test"};
    struct mk_errbuf eb;
    double t0 = now_s();
    assert_int_equal(store_open(&fx->st, "postgres", &cfg, &eb), MK_EUNAVAIL);
    assert_true(now_s() - t0 < 5.0);
    assert_non_null(strstr(eb.msg, "postgres: connect: "));
    assert_null(fx->st.ops);
    assert_non_null(strstr(log_text(fx), "postgres.open failed: EUNAVAIL"));
}

static void test_tables_have_bigint_counters_and_bytea_hashes(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    char buf[64], sql[256];
    const struct {
        const char *table, *column, *type;
    } want[] = {
        {"users", "uploaded", "bigint"},      {"users", "raw_downloaded", "bigint"},
        {"users", "bonus", "bigint"},         {"users", "passkey", "text"},
        {"users", "enabled", "boolean"},      {"torrents", "info_hash", "bytea"},
        {"torrents", "snatches", "bigint"},   {"torrents", "transferred", "bigint"},
        {"whitelist", "prefix", "bytea"},     {"peers", "peer_id", "bytea"},
        {"peers", "version", "bigint"},       {"peers", "gone", "boolean"},
        {"journal_applied", "seq", "bigint"}, {"user_torrents", "announces", "bigint"},
        {"suspicious", "uploaded", "bigint"},
        {"swarm_counts", "snatches", "bigint"}, {"swarm_counts", "announced_at", "bigint"},
        {"peers", "node_id", "integer"},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        snprintf(sql, sizeof(sql),
                 "SELECT data_type FROM information_schema.columns WHERE table_schema = '%s'"
                 " AND table_name = '%s' AND column_name = '%s'",
                 fx->schema, want[i].table, want[i].column);
        assert_string_equal(site_text(fx, sql, buf, sizeof(buf)), want[i].type);
    }
    assert_int_equal(site_int(fx, "SELECT version FROM mika_schema"), 5);
    assert_int_equal(site_int(fx, "SELECT count(*) FROM mika_schema"), 1);
    /* Room for heap-only updates of the rows every announce rewrites, and
     * no index on a column every report changes. */
    assert_int_equal(site_int(fx, "SELECT count(*) FROM pg_class WHERE relname IN"
                                  " ('users', 'user_torrents', 'torrents', 'peers')"
                                  " AND relnamespace = current_schema()::regnamespace"
                                  " AND reloptions @> '{fillfactor=70}'"), 4);
    assert_int_equal(site_int(fx, "SELECT count(*) FROM pg_indexes WHERE tablename = 'peers'"
                                  " AND schemaname = current_schema()"), 1);
    /* A site writes rows with plain SQL: defaults fill the rest, and the
     * ids mika picks afterwards do not collide with the site's. */
    site_exec(fx, "INSERT INTO users (passkey) VALUES ('fromsite');"
                  "INSERT INTO torrents (info_hash) VALUES ('\\x00112233445566778899aabbccddeeff00112233')");
    struct user_rec u = {.row = {.enabled = true, .passkey = "frommika"}, .may_download = true,
                         .class_id = 1, .up_mult = 1000, .down_mult = 1000};
    struct mk_errbuf eb;
    assert_int_equal(store_user_insert(&fx->st, &u, false, &eb), 0);
    assert_int_equal(u.row.id, 2);
    site_exec(fx, "INSERT INTO users (passkey) VALUES ('fromsite2')");
    assert_int_equal(site_int(fx, "SELECT id FROM users WHERE passkey = 'fromsite2'"), 3);
    /* The info_hash check refuses a 40-character hex string stored as text. */
    PGconn *c = site(fx);
    PGresult *r = PQexec(c, "INSERT INTO torrents (info_hash)"
                            " VALUES ('00112233445566778899aabbccddeeff00112233'::bytea)");
    assert_int_equal(PQresultStatus(r), PGRES_FATAL_ERROR);
    PQclear(r);
    PQfinish(c);
}

static void test_a_schema_from_a_newer_mika_is_refused(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    store_close(&fx->st);
    site_exec(fx, "UPDATE mika_schema SET version = 99");
    struct mk_errbuf eb;
    assert_int_equal(store_open(&fx->st, "postgres", &fx->cfg, &eb), MK_ENOTSUP);
    assert_string_equal(eb.msg, "postgres: schema version 99 is not one this mika knows (0..5)");
    assert_null(fx->st.ops);
}

/* A database of an older version (1: before suspicious uploads, clusters and
 * peers' node ids) is brought up to date in place; its rows stay, nothing is
 * seeded again. */
static void test_open_migrates_the_previous_schema_version(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    store_close(&fx->st);
    site_exec(fx, "DROP TABLE suspicious, cluster_nodes, swarm_counts;"
                  "ALTER TABLE peers DROP COLUMN node_id;"
                  "ALTER TABLE users RESET (fillfactor);"
                  "ALTER TABLE user_torrents RESET (fillfactor);"
                  "ALTER TABLE torrents RESET (fillfactor);"
                  "ALTER TABLE peers RESET (fillfactor);"
                  "CREATE INDEX peers_last_seen ON peers (last_seen);"
                  "UPDATE mika_schema SET version = 1;"
                  "DELETE FROM whitelist WHERE prefix = '-AZ';"
                  "INSERT INTO users (id, passkey, uploaded) VALUES (7, 'old', 99)");
    int fd = open(fx->log, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    close(fd);
    open_store(fx);
    const char *log = log_text(fx);
    assert_non_null(strstr(log, "schema migrated to version 2"));
    assert_non_null(strstr(log, "schema migrated to version 3"));
    assert_non_null(strstr(log, "schema migrated to version 4"));
    assert_non_null(strstr(log, "schema migrated to version 5"));
    assert_null(strstr(log, "schema migrated to version 1"));
    assert_int_equal(site_int(fx, "SELECT version FROM mika_schema"), 5);
    assert_int_equal(site_int(fx, "SELECT count(*) FROM suspicious"), 0);
    assert_int_equal(site_int(fx, "SELECT count(*) FROM pg_indexes WHERE tablename = 'peers'"
                                  " AND schemaname = current_schema()"), 1);
    assert_int_equal(site_int(fx, "SELECT count(*) FROM pg_class WHERE relname = 'users'"
                                  " AND relnamespace = current_schema()::regnamespace"
                                  " AND reloptions @> '{fillfactor=70}'"), 1);
    assert_int_equal(site_int(fx, "SELECT count(*) FROM whitelist"), 15);
    assert_int_equal(get_user(fx, 7).uploaded, 99);
    struct acct_delta d = {.user_id = 7, .torrent_id = 1, .uploaded = 1, .suspicious = 2,
                           .suspicious_up = 1, .at = 5};
    struct mk_errbuf eb;
    assert_int_equal(store_apply(&fx->st, &d, 1, &eb), 0);
    assert_int_equal(site_int(fx, "SELECT count(*) FROM suspicious WHERE reason = 'too_fast'"), 1);
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
    o->rc = store_open(&o->st, "postgres", o->cfg, &o->eb);
    return NULL;
}

static int count_whitelist(const struct whitelist_row *row, void *arg)
{
    (*(int *)arg)++;
    return 0;
}

/* Nodes starting together: one migrates under the advisory lock, the others
 * wait for it and find the schema done; nothing is created or seeded twice. */
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
    assert_int_equal(site_int(fx, "SELECT count(*) FROM classes"), 1);
    assert_int_equal(site_int(fx, "SELECT count(*) FROM mika_schema"), 1);
    const char *log = log_text(fx);
    const char *first = strstr(log, "schema migrated to version 1");
    assert_non_null(first);
    assert_null(strstr(first + 1, "schema migrated to version 1"));
}

/* ---- faults ------------------------------------------------------------------ */

/* The server ends the session (a restart, a failover, an idle timeout):
 * the call that finds out answers MK_EUNAVAIL and leaves nothing behind,
 * the next one reconnects, and the flusher's retry books the batch once. */
static void test_a_lost_connection_is_eunavail_then_the_next_call_reconnects(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    site_exec(fx, "INSERT INTO users (id, passkey) VALUES (1, 'one');"
                  "INSERT INTO torrents (id, info_hash) VALUES (5, '\\x5555555555555555555555555555555555555555')");
    struct acct_delta d = {.user_id = 1, .torrent_id = 5, .uploaded = 700, .snatch = true,
                           .at = 9, .announces = 1};
    struct store_segment_id seg = {.boot = 1, .writer = 0, .seq = 1};
    struct mk_errbuf eb;
    kill_mika_sessions();
    assert_int_equal(store_apply_segment(&fx->st, &seg, &d, 1, &eb), MK_EUNAVAIL);
    assert_non_null(strstr(eb.msg, "connection lost"));
    assert_int_equal(site_int(fx, "SELECT count(*) FROM journal_applied"), 0);
    assert_int_equal(store_apply_segment(&fx->st, &seg, &d, 1, &eb), 0);
    assert_int_equal(store_apply_segment(&fx->st, &seg, &d, 1, &eb), MK_EEXIST);
    assert_int_equal(get_user(fx, 1).uploaded, 700);
    assert_int_equal(site_int(fx, "SELECT snatches FROM torrents WHERE id = 5"), 1);
    assert_non_null(strstr(log_text(fx), "reconnected to 127.0.0.1:"));
    /* The same for a load and an admin read. */
    kill_mika_sessions();
    assert_int_equal(store_load_whitelist(&fx->st, count_whitelist, &(int){0}, &eb), MK_EUNAVAIL);
    int n = 0;
    assert_int_equal(store_load_whitelist(&fx->st, count_whitelist, &n, &eb), 0);
    assert_int_equal(n, 16);
    kill_mika_sessions();
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
    PGconn *holder = site(fx);
    site_exec_on(holder, "BEGIN");
    site_exec_on(holder, "SELECT 1 FROM users WHERE id = 2 FOR UPDATE");
    struct acct_delta d[] = {{.user_id = 1, .uploaded = 10, .at = 1},
                             {.user_id = 2, .uploaded = 20, .at = 1}};
    struct mk_errbuf eb;
    double t0 = now_s();
    assert_int_equal(store_apply(&fx->st, d, 2, &eb), MK_EUNAVAIL);
    assert_true(now_s() - t0 < 2.0);
    assert_non_null(strstr(eb.msg, "lock timeout"));
    assert_int_equal(get_user(fx, 1).uploaded, 0);
    site_exec_on(holder, "COMMIT");
    PQfinish(holder);
    assert_int_equal(store_apply(&fx->st, d, 2, &eb), 0);
    assert_int_equal(get_user(fx, 1).uploaded, 10);
    assert_int_equal(get_user(fx, 2).uploaded, 20);
}

/* ---- streaming --------------------------------------------------------------- */

#define STREAM_USERS 200000

struct stream_probe {
    PGconn *site;
    size_t n;
    char state_at_first_row[32];
};

/* At the first row, asks the server what mika's session is doing: with the
 * rows streamed, it is still sending the rest (active); a client that
 * gathered the whole result first would find the query finished. */
static int probe_user(const struct user_row *row, void *arg)
{
    struct stream_probe *p = arg;
    if (p->n++ == 0) {
        PGresult *r = PQexec(p->site, "SELECT state FROM pg_stat_activity"
                                      " WHERE application_name = 'mika'");
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
            snprintf(p->state_at_first_row, sizeof(p->state_at_first_row), "%s",
                     PQgetvalue(r, 0, 0));
        }
        PQclear(r);
    }
    return 0;
}

static void test_load_users_streams_rows_while_the_server_still_sends(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    char sql[256];
    snprintf(sql, sizeof(sql),
             "INSERT INTO users (id, passkey) SELECT i, 'pk' || i"
             " FROM generate_series(1, %d) AS i",
             STREAM_USERS);
    site_exec(fx, sql);
    struct stream_probe p = {.site = site(fx)};
    struct mk_errbuf eb;
    assert_int_equal(store_load_users(&fx->st, probe_user, &p, &eb), 0);
    PQfinish(p.site);
    assert_int_equal(p.n, STREAM_USERS);
    assert_string_equal(p.state_at_first_row, "active");
}

/* ---- the books (store/pg_apply.c) ------------------------------------------- */

static struct acct_delta peer_report(uint32_t user, uint32_t torrent, char tag, uint64_t up,
                                     int64_t version)
{
    struct acct_delta d = {.user_id = user, .torrent_id = torrent, .at = version / 1000000,
                           .has_peer = true};
    d.peer = (struct peer_row){.torrent_id = torrent, .user_id = user, .family = 4,
                               .port = 6881, .uploaded = up, .seeder = true,
                               .last_seen = version / 1000000, .version = version};
    memset(d.peer.peer_id, tag, 20);
    memcpy(d.peer.ip, "\x0a\x00\x00\x01", 4);
    return d;
}

/* One statement per table must not name a row twice (ON CONFLICT DO UPDATE
 * refuses that): several reports of one peer keep the newest (of equal
 * versions, the first), a snatch sent twice keeps its first time and
 * counts once, and each user's and history's sums all land. */
static void test_a_batch_naming_a_row_twice_writes_it_once(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    site_exec(fx, "INSERT INTO users (id, passkey) VALUES (1, 'one'), (2, 'two');"
                  "INSERT INTO torrents (id, info_hash) VALUES"
                  " (5, '\\x5555555555555555555555555555555555555555')");
    struct acct_delta d[] = {
        peer_report(1, 5, 'a', 100, 5000000),
        peer_report(1, 5, 'a', 900, 9000000),
        peer_report(1, 5, 'a', 700, 7000000),
        peer_report(2, 5, 'b', 10, 3000000),
        peer_report(2, 5, 'b', 20, 3000000),
        {.user_id = 1, .torrent_id = 5, .uploaded = 3, .announces = 1, .at = 50, .snatch = true},
        {.user_id = 1, .torrent_id = 5, .uploaded = 4, .announces = 1, .at = 60, .snatch = true},
        {.user_id = 2, .torrent_id = 5, .downloaded = 8, .announces = 2, .first_at = 40, .at = 70,
         .snatch = true},
    };
    struct store_segment_id seg = {.boot = 1, .writer = 0, .seq = 1};
    struct mk_errbuf eb;
    int rc = store_apply_segment(&fx->st, &seg, d, sizeof(d) / sizeof(d[0]), &eb);
    if (rc != 0) {
        fail_msg("apply_segment: %s: %s", mk_err_name(rc), eb.msg);
    }
    assert_int_equal(site_int(fx, "SELECT count(*) FROM peers"), 2);
    assert_int_equal(site_int(fx, "SELECT uploaded FROM peers WHERE user_id = 1"), 900);
    assert_int_equal(site_int(fx, "SELECT version FROM peers WHERE user_id = 1"), 9000000);
    assert_int_equal(site_int(fx, "SELECT uploaded FROM peers WHERE user_id = 2"), 10);
    assert_int_equal(site_int(fx, "SELECT snatches FROM torrents WHERE id = 5"), 2);
    assert_int_equal(site_int(fx, "SELECT at FROM snatches WHERE user_id = 1"), 50);
    assert_int_equal(site_int(fx, "SELECT completed_at FROM user_torrents WHERE user_id = 1"), 50);
    assert_int_equal(site_int(fx, "SELECT completed_at FROM user_torrents WHERE user_id = 2"), 70);
    assert_int_equal(site_int(fx, "SELECT announces FROM user_torrents WHERE user_id = 1"), 2);
    assert_int_equal(site_int(fx, "SELECT first_announce FROM user_torrents WHERE user_id = 2"),
                     40);
    assert_int_equal(get_user(fx, 1).uploaded, 7);
    assert_int_equal(get_user(fx, 2).downloaded, 8);
    assert_int_equal(site_int(fx, "SELECT transferred FROM torrents WHERE id = 5"), 8);
}

/* A group of segments is one transaction: a snatch in two of them counts
 * once; a later group holding a segment applied before changes nothing in
 * any table (its other segments are not recorded either), and the same
 * segments one by one then apply exactly the new one. */
static void test_a_group_with_a_segment_applied_before_changes_nothing(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    site_exec(fx, "INSERT INTO users (id, passkey) VALUES (1, 'one');"
                  "INSERT INTO torrents (id, info_hash) VALUES"
                  " (5, '\\x5555555555555555555555555555555555555555')");
    struct acct_delta first[] = {
        {.user_id = 1, .torrent_id = 5, .uploaded = 10, .downloaded = 1, .announces = 1,
         .at = 100, .snatch = true},
        {.user_id = 1, .torrent_id = 5, .announces = 1, .at = 101, .snatch = true},
        peer_report(1, 5, 'a', 10, 100000000),
    };
    struct store_segment_id ab[] = {{.boot = 9, .writer = 0, .seq = 1, .records = 2},
                                    {.boot = 9, .writer = 1, .seq = 1, .records = 1}};
    struct mk_errbuf eb;
    assert_int_equal(store_apply_segments(&fx->st, ab, 2, first, 3, &eb), 0);
    assert_int_equal(site_int(fx, "SELECT count(*) FROM journal_applied"), 2);
    assert_int_equal(site_int(fx, "SELECT sum(records) FROM journal_applied"), 3);
    assert_int_equal(site_int(fx, "SELECT snatches FROM torrents WHERE id = 5"), 1);

    struct acct_delta later[] = {
        {.user_id = 1, .torrent_id = 5, .uploaded = 1000, .downloaded = 1000, .announces = 1,
         .at = 200, .suspicious = 2, .suspicious_up = 5},
        peer_report(1, 5, 'a', 9999, 200000000),
    };
    struct store_segment_id cb[] = {{.boot = 9, .writer = 0, .seq = 2},
                                    {.boot = 9, .writer = 1, .seq = 1}};
    assert_int_equal(store_apply_segments(&fx->st, cb, 2, later, 2, &eb), MK_EEXIST);
    assert_int_equal(get_user(fx, 1).uploaded, 10);
    assert_int_equal(site_int(fx, "SELECT announces FROM user_torrents"), 2);
    assert_int_equal(site_int(fx, "SELECT transferred FROM torrents WHERE id = 5"), 1);
    assert_int_equal(site_int(fx, "SELECT uploaded FROM peers"), 10);
    assert_int_equal(site_int(fx, "SELECT count(*) FROM suspicious"), 0);
    assert_int_equal(site_int(fx, "SELECT count(*) FROM journal_applied"), 2);
    /* One by one, as the flusher goes on. */
    assert_int_equal(store_apply_segment(&fx->st, &cb[0], later, 2, &eb), 0);
    assert_int_equal(store_apply_segment(&fx->st, &cb[1], later, 2, &eb), MK_EEXIST);
    assert_int_equal(get_user(fx, 1).uploaded, 1010);
    assert_int_equal(site_int(fx, "SELECT uploaded FROM peers"), 9999);
    assert_int_equal(site_int(fx, "SELECT count(*) FROM suspicious"), 1);
    assert_int_equal(site_int(fx, "SELECT snatches FROM torrents WHERE id = 5"), 1);
    assert_null(strstr(log_text(fx), "failed"));
}

/* Only the kinds this store holds for the segment are written. */
static void test_a_segment_writes_only_its_kinds(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    site_exec(fx, "INSERT INTO users (id, passkey) VALUES (1, 'one');"
                  "INSERT INTO torrents (id, info_hash) VALUES"
                  " (5, '\\x5555555555555555555555555555555555555555')");
    struct acct_delta d = peer_report(1, 5, 'a', 10, 100000000);
    d.uploaded = 10;
    d.downloaded = 20;
    d.announces = 1;
    d.snatch = true;
    d.suspicious = 1;
    d.suspicious_up = 3;
    struct store_segment_id peers = {.boot = 2, .seq = 1, .kinds = STORE_KIND_PEERS};
    struct store_segment_id torrents = {.boot = 2, .seq = 2, .kinds = STORE_KIND_TORRENTS};
    struct mk_errbuf eb;
    assert_int_equal(store_apply_segment(&fx->st, &peers, &d, 1, &eb), 0);
    assert_int_equal(site_int(fx, "SELECT count(*) FROM peers"), 1);
    assert_int_equal(get_user(fx, 1).uploaded, 0);
    assert_int_equal(site_int(fx, "SELECT count(*) FROM snatches"), 0);
    assert_int_equal(store_apply_segment(&fx->st, &torrents, &d, 1, &eb), 0);
    assert_int_equal(site_int(fx, "SELECT transferred FROM torrents WHERE id = 5"), 20);
    assert_int_equal(site_int(fx, "SELECT snatches FROM torrents WHERE id = 5"), 1);
    assert_int_equal(get_user(fx, 1).uploaded, 0);
    assert_int_equal(site_int(fx, "SELECT count(*) FROM suspicious"), 0);
}

/* Past one statement's chunk of rows, and a delta past BIGINT clamped. */
static void test_a_batch_bigger_than_a_chunk_and_a_huge_delta_apply_whole(void **state)
{
    struct fixture *fx = *state;
    open_store(fx);
    enum { NUSERS = 12001 };
    char sql[256];
    snprintf(sql, sizeof(sql),
             "INSERT INTO users (id, passkey) SELECT i, 'pk' || i FROM generate_series(1, %d) i;"
             "INSERT INTO torrents (id, info_hash) VALUES"
             " (5, '\\x5555555555555555555555555555555555555555')",
             NUSERS);
    site_exec(fx, sql);
    struct acct_delta *d = calloc(NUSERS, sizeof(*d));
    assert_non_null(d);
    for (uint32_t i = 0; i < NUSERS; i++) {
        d[i] = peer_report(i + 1, 5, 'p', i, 100000000 + i);
        d[i].uploaded = i + 1;
        d[i].downloaded = 1;
        d[i].announces = 1;
        d[i].snatch = i % 2 == 0;
    }
    d[NUSERS - 1].uploaded = UINT64_MAX;
    struct mk_errbuf eb;
    assert_int_equal(store_apply(&fx->st, d, NUSERS, &eb), 0);
    free(d);
    assert_int_equal(site_int(fx, "SELECT count(*) FROM peers"), NUSERS);
    assert_int_equal(site_int(fx, "SELECT count(*) FROM user_torrents"), NUSERS);
    assert_int_equal(site_int(fx, "SELECT snatches FROM torrents WHERE id = 5"), NUSERS / 2 + 1);
    assert_int_equal(site_int(fx, "SELECT transferred FROM torrents WHERE id = 5"), NUSERS);
    snprintf(sql, sizeof(sql), "SELECT sum(uploaded) FROM users WHERE id < %d", NUSERS);
    assert_int_equal(site_int(fx, sql), (long)(NUSERS - 1) * NUSERS / 2);
    assert_int_equal(get_user(fx, NUSERS).uploaded, INT64_MAX);
    assert_non_null(strstr(log_text(fx), "clamped"));
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    if (!getenv("MIKA_TEST_PG_DSN")) {
        fprintf(stderr, "test_pg: MIKA_TEST_PG_DSN is not set: run it through"
                        " tests/lib/pgserver.py\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        T(test_open_needs_a_dsn),
        T(test_open_of_an_unreachable_server_is_eunavail_promptly),
        T(test_tables_have_bigint_counters_and_bytea_hashes),
        T(test_a_schema_from_a_newer_mika_is_refused),
        T(test_open_migrates_the_previous_schema_version),
        T(test_nodes_opening_an_empty_database_together_migrate_it_once),
        T(test_a_lost_connection_is_eunavail_then_the_next_call_reconnects),
        T(test_a_locked_row_is_eunavail_promptly_and_leaves_nothing),
        T(test_load_users_streams_rows_while_the_server_still_sends),
        T(test_a_batch_naming_a_row_twice_writes_it_once),
        T(test_a_group_with_a_segment_applied_before_changes_nothing),
        T(test_a_segment_writes_only_its_kinds),
        T(test_a_batch_bigger_than_a_chunk_and_a_huge_delta_apply_whole),
    };
    return cmocka_run_group_tests_name("store postgres", tests, NULL, NULL);
}
