/* store/sqlite.c: the "sqlite" store backend, the embedded default.
 *
 * Owns: one SQLite connection per open store, its schema (versioned with
 * PRAGMA user_version and migrated at open), the default client whitelist
 * seeded into a new database, and the ops table.
 * Not here: the row loaders, pages, tokens and prunes (sqlite_load.c), the books, apply() and apply_segment(s) (sqlite_apply.c), the
 * admin API's methods (sqlite_admin.c), what rows mean to the tracker
 * (auth/, swarm/), retrying a busy apply (acct/flusher.c), choosing the
 * backend (store/store.c).
 * Invariants: rows that break the store.h contract are skipped with a warning
 * naming the table and row, never passed on and never fatal; no write waits
 * on a lock for more than SQLITE_BUSY_MS.
 * The schema is documented in docs/STORES.md; keep the two in step.
 */
#include "store/store.h"

#include <inttypes.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/sqlite_admin.h"
#include "store/sqlite_apply.h"
#include "store/sqlite_int.h"
#include "util/log.h"

/* The flusher retries a busy batch with back-off; apply must not sit on a
 * lock held by an admin's sqlite3 shell. Opening may wait longer: it runs
 * once, before anything is served. */
#define SQLITE_BUSY_MS 100
#define SQLITE_OPEN_BUSY_MS 5000

#define SQLITE_SCHEMA_VERSION 6

/* user_torrents' columns as v3 created them; v6 creates them again, in the
 * same order, behind its id. */
#define SQLITE_HISTORY_COLUMNS                                                                     \
    " user_id INTEGER NOT NULL,"                                                                   \
    " torrent_id INTEGER NOT NULL,"                                                                \
    " uploaded INTEGER NOT NULL DEFAULT 0,"                                                        \
    " downloaded INTEGER NOT NULL DEFAULT 0,"                                                      \
    " raw_uploaded INTEGER NOT NULL DEFAULT 0,"                                                    \
    " raw_downloaded INTEGER NOT NULL DEFAULT 0,"                                                  \
    " seed_time INTEGER NOT NULL DEFAULT 0,"                                                       \
    " leech_time INTEGER NOT NULL DEFAULT 0,"                                                      \
    " announces INTEGER NOT NULL DEFAULT 0,"                                                       \
    " first_announce INTEGER NOT NULL,"                                                            \
    " last_announce INTEGER NOT NULL,"                                                             \
    " completed_at INTEGER,"

/* Each peer's newest report, wherever it is kept (v5 and later): after a
 * move both places may hold one (sqlite_apply.c says when). */
#define SQLITE_PEER_REPORTS_VIEW                                                                   \
    "CREATE VIEW peer_reports AS"                                                                  \
    " SELECT torrent_id, user_id, peer_id, family, ip, port, uploaded, downloaded, seeder,"        \
    " partial, last_seen, version, gone FROM peers p"                                              \
    " WHERE NOT EXISTS (SELECT 1 FROM user_torrents h WHERE h.user_id = p.user_id"                 \
    " AND h.torrent_id = p.torrent_id AND h.peer_id = p.peer_id AND h.peer_version > p.version)"   \
    " UNION ALL"                                                                                   \
    " SELECT torrent_id, user_id, peer_id, peer_family, peer_ip, peer_port, peer_uploaded,"        \
    " peer_downloaded, peer_seeder, peer_partial, peer_last_seen, peer_version, peer_gone"         \
    " FROM user_torrents h WHERE peer_id IS NOT NULL"                                              \
    " AND NOT EXISTS (SELECT 1 FROM peers p WHERE p.torrent_id = h.torrent_id"                     \
    " AND p.user_id = h.user_id AND p.peer_id = h.peer_id AND p.version >= h.peer_version);"

/* Migration i takes the schema from version i to i + 1; only ever append. */
static const char *const sqlite_migrations[SQLITE_SCHEMA_VERSION] = {
    "CREATE TABLE users ("
    " id INTEGER PRIMARY KEY,"
    " passkey TEXT NOT NULL UNIQUE,"
    " enabled INTEGER NOT NULL DEFAULT 1,"
    " can_download INTEGER NOT NULL DEFAULT 1,"
    " uploaded INTEGER NOT NULL DEFAULT 0,"
    " downloaded INTEGER NOT NULL DEFAULT 0,"
    " created_at INTEGER NOT NULL DEFAULT (strftime('%s','now')));"
    "CREATE TABLE torrents ("
    " id INTEGER PRIMARY KEY,"
    " info_hash BLOB NOT NULL UNIQUE CHECK (length(info_hash) = 20),"
    " enabled INTEGER NOT NULL DEFAULT 1,"
    " deleted INTEGER NOT NULL DEFAULT 0,"
    " deleted_reason TEXT NOT NULL DEFAULT '',"
    " snatches INTEGER NOT NULL DEFAULT 0,"
    " created_at INTEGER NOT NULL DEFAULT (strftime('%s','now')));"
    "CREATE TABLE whitelist ("
    " prefix TEXT PRIMARY KEY,"
    " name TEXT NOT NULL);"
    "CREATE TABLE snatches ("
    " user_id INTEGER NOT NULL,"
    " torrent_id INTEGER NOT NULL,"
    " at INTEGER NOT NULL,"
    " PRIMARY KEY (user_id, torrent_id)) WITHOUT ROWID;"
    /* Journal segments already applied: the same transaction that applies a
     * segment records it here, so a replay after a crash adds nothing. */
    "CREATE TABLE journal_applied ("
    " boot INTEGER NOT NULL,"
    " writer INTEGER NOT NULL,"
    " seq INTEGER NOT NULL,"
    " records INTEGER NOT NULL,"
    " applied_at INTEGER NOT NULL DEFAULT (strftime('%s','now')),"
    " PRIMARY KEY (boot, writer, seq)) WITHOUT ROWID;",
    /* v2, the admin API: user classes (the default class 1 "user"), names
     * and multipliers (thousandths: 1000 = 1.0x) of users and torrents, and
     * the live settings. v1 columns keep their names. */
    "CREATE TABLE classes ("
    " id INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE,"
    " upload_multiplier INTEGER NOT NULL DEFAULT 1000,"
    " download_multiplier INTEGER NOT NULL DEFAULT 1000,"
    " may_download INTEGER NOT NULL DEFAULT 1);"
    "INSERT INTO classes (id, name) VALUES (1, 'user');"
    "ALTER TABLE users ADD COLUMN name TEXT;"
    "ALTER TABLE users ADD COLUMN class_id INTEGER NOT NULL DEFAULT 1;"
    "ALTER TABLE users ADD COLUMN upload_multiplier INTEGER NOT NULL DEFAULT 1000;"
    "ALTER TABLE users ADD COLUMN download_multiplier INTEGER NOT NULL DEFAULT 1000;"
    "CREATE UNIQUE INDEX users_name ON users (name);"
    "CREATE INDEX users_class ON users (class_id);"
    "ALTER TABLE torrents ADD COLUMN name TEXT;"
    "ALTER TABLE torrents ADD COLUMN size INTEGER;"
    "ALTER TABLE torrents ADD COLUMN freeleech INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE torrents ADD COLUMN upload_multiplier INTEGER NOT NULL DEFAULT 1000;"
    "ALTER TABLE torrents ADD COLUMN download_multiplier INTEGER NOT NULL DEFAULT 1000;"
    "CREATE TABLE settings ("
    " key TEXT PRIMARY KEY,"
    " value TEXT NOT NULL);"
    /* Databases created at v1 before the journal existed lack this table
     * (v1 creates it now); the same definition, so both paths agree. */
    "CREATE TABLE IF NOT EXISTS journal_applied ("
    " boot INTEGER NOT NULL,"
    " writer INTEGER NOT NULL,"
    " seq INTEGER NOT NULL,"
    " records INTEGER NOT NULL,"
    " applied_at INTEGER NOT NULL DEFAULT (strftime('%s','now')),"
    " PRIMARY KEY (boot, writer, seq)) WITHOUT ROWID;",
    /* v3: each peer's last report, written with the books, so a restart
     * restores the swarms and their baselines. */
    "CREATE TABLE peers ("
    " torrent_id INTEGER NOT NULL,"
    " user_id INTEGER NOT NULL,"
    " peer_id BLOB NOT NULL CHECK (length(peer_id) = 20),"
    " family INTEGER NOT NULL CHECK (family IN (4, 6)),"
    " ip BLOB NOT NULL,"
    " port INTEGER NOT NULL,"
    " uploaded INTEGER NOT NULL,"
    " downloaded INTEGER NOT NULL,"
    " seeder INTEGER NOT NULL,"
    " partial INTEGER NOT NULL,"
    " last_seen INTEGER NOT NULL,"
    " version INTEGER NOT NULL,"
    " gone INTEGER NOT NULL,"
    " PRIMARY KEY (torrent_id, user_id, peer_id)) WITHOUT ROWID;"
    "CREATE INDEX peers_last_seen ON peers (last_seen);"
    /* The books keep both what clients reported and what was credited after
     * multipliers (users.uploaded/downloaded); until v3 they were the same. */
    "ALTER TABLE users ADD COLUMN raw_uploaded INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE users ADD COLUMN raw_downloaded INTEGER NOT NULL DEFAULT 0;"
    "UPDATE users SET raw_uploaded = uploaded, raw_downloaded = downloaded;"
    /* Seed and leech time in seconds, bonus points in micro-points. */
    "ALTER TABLE users ADD COLUMN seed_time INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE users ADD COLUMN leech_time INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE users ADD COLUMN bonus INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE users ADD COLUMN announces INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE torrents ADD COLUMN transferred INTEGER NOT NULL DEFAULT 0;"
    /* Each user's history on each torrent: a site's "snatched" and
     * "seeding" pages, and the hit-and-run rule's input. */
    "CREATE TABLE user_torrents ("
    SQLITE_HISTORY_COLUMNS
    " PRIMARY KEY (user_id, torrent_id)) WITHOUT ROWID;"
    "CREATE INDEX user_torrents_torrent ON user_torrents (torrent_id);"
    /* Uploads not credited because they were too good to be true. */
    "CREATE TABLE suspicious ("
    " id INTEGER PRIMARY KEY,"
    " user_id INTEGER NOT NULL,"
    " torrent_id INTEGER NOT NULL,"
    " at INTEGER NOT NULL,"
    " uploaded INTEGER NOT NULL,"
    " reason TEXT NOT NULL);"
    "CREATE INDEX suspicious_user ON suspicious (user_id, at);"
    /* Freeleech tokens: a user's own factors on one torrent, until expires_at. */
    "CREATE TABLE tokens ("
    " user_id INTEGER NOT NULL,"
    " torrent_id INTEGER NOT NULL,"
    " upload_multiplier INTEGER NOT NULL DEFAULT 1000,"
    " download_multiplier INTEGER NOT NULL DEFAULT 0,"
    " expires_at INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY (user_id, torrent_id)) WITHOUT ROWID;",
    /* v4: peers lose their last_seen index. Every announce moved the peer's
     * entry in it (one more page written per announce, the most of any
     * table); what used it, the prune once a minute and the load at start,
     * read most of the table anyway. */
    "DROP INDEX IF EXISTS peers_last_seen;",
    /* v5: a user's peer on a torrent is kept in the user's history row
     * (user_torrents.peer_*), and only a second peer of the same user and
     * torrent in peers: an announce writes one row where it wrote two. The
     * flusher per keep-alive announce: 41.5k -> 34.4k instructions
     * (bench/profile), 5.0, 4.9 -> 4.3, 4.4 us of CPU (bench/flushcost,
     * 20 s, runs interleaved). A NULL peer_id: no peer kept there.
     * peer_reports is each peer's newest report, wherever it is kept: after
     * a move both places may hold one (sqlite_apply.c says when). */
    "ALTER TABLE user_torrents ADD COLUMN peer_id BLOB;"
    "ALTER TABLE user_torrents ADD COLUMN peer_family INTEGER;"
    "ALTER TABLE user_torrents ADD COLUMN peer_ip BLOB;"
    "ALTER TABLE user_torrents ADD COLUMN peer_port INTEGER;"
    "ALTER TABLE user_torrents ADD COLUMN peer_uploaded INTEGER;"
    "ALTER TABLE user_torrents ADD COLUMN peer_downloaded INTEGER;"
    "ALTER TABLE user_torrents ADD COLUMN peer_seeder INTEGER;"
    "ALTER TABLE user_torrents ADD COLUMN peer_partial INTEGER;"
    "ALTER TABLE user_torrents ADD COLUMN peer_last_seen INTEGER;"
    "ALTER TABLE user_torrents ADD COLUMN peer_version INTEGER;"
    "ALTER TABLE user_torrents ADD COLUMN peer_gone INTEGER;"
    SQLITE_PEER_REPORTS_VIEW,
    /* v6: user_torrents becomes a rowid table keyed by id = user_id << 32 |
     * torrent_id, with (user_id, torrent_id) unique beside it. The flusher
     * updates a history row by its key once per announce; in a WITHOUT
     * ROWID table that seek compared records and the write sought the row
     * again, where a rowid is found by integer and written where the seek
     * left it: 19.2k -> 14.8k instructions per row updated (a copy of a
     * 400k-row bench database, 100k rows in one transaction); the flusher
     * per keep-alive announce 20.0k -> 17.0k (bench/profile --mode replay).
     * A new row pays one more index entry (docs/STORES.md). The CHECK
     * keeps the key honest for rows written by others; columns keep their
     * names and order. */
    "CREATE TABLE user_torrents_v6 ("
    " id INTEGER PRIMARY KEY,"
    SQLITE_HISTORY_COLUMNS
    " peer_id BLOB, peer_family INTEGER, peer_ip BLOB, peer_port INTEGER,"
    " peer_uploaded INTEGER, peer_downloaded INTEGER, peer_seeder INTEGER,"
    " peer_partial INTEGER, peer_last_seen INTEGER, peer_version INTEGER, peer_gone INTEGER,"
    " CHECK (id = " SQLITE_HISTORY_ID("user_id", "torrent_id") "));"
    "INSERT INTO user_torrents_v6 SELECT " SQLITE_HISTORY_ID("user_id", "torrent_id") ","
    " user_id, torrent_id,"
    " uploaded, downloaded, raw_uploaded, raw_downloaded, seed_time, leech_time, announces,"
    " first_announce, last_announce, completed_at, " SQLITE_SLOT_COLUMNS " FROM user_torrents;"
    "DROP VIEW peer_reports;"
    "DROP TABLE user_torrents;"
    "ALTER TABLE user_torrents_v6 RENAME TO user_torrents;"
    "CREATE UNIQUE INDEX user_torrents_key ON user_torrents (user_id, torrent_id);"
    "CREATE INDEX user_torrents_torrent ON user_torrents (torrent_id);"
    SQLITE_PEER_REPORTS_VIEW,
};

static bool sqlite_is_busy(int rc)
{
    return (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED;
}

/* The mk_err for a failed SQLite call: busy/locked means "retry later". */
static int sqlite_err(int rc)
{
    if (sqlite_is_busy(rc)) {
        return MK_EUNAVAIL;
    }
    if ((rc & 0xff) == SQLITE_NOMEM) {
        return MK_ENOMEM;
    }
    return MK_EIO;
}

int sqlite_fail(sqlite3 *db, int rc, struct mk_errbuf *eb, const char *what)
{
    return mk_fail(eb, sqlite_err(rc), "sqlite: %s: %s", what,
                   db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

/* Runs one statement returning at most one integer; *out untouched if none. */
int sqlite_get_int(sqlite3 *db, const char *sql, int64_t *out, struct mk_errbuf *eb)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) {
        return sqlite_fail(db, rc, eb, sql);
    }
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
        rc = SQLITE_DONE;
    }
    int err = rc == SQLITE_DONE ? 0 : sqlite_fail(db, rc, eb, sql);
    sqlite3_finalize(st);
    return err;
}

int sqlite_exec(sqlite3 *db, const char *sql, struct mk_errbuf *eb)
{
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        return sqlite_fail(db, rc, eb, "exec");
    }
    return 0;
}

static void sqlite_rollback(sqlite3 *db)
{
    /* Fails harmlessly when SQLite already rolled back on its own. */
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

static int sqlite_seed_whitelist(sqlite3 *db, struct mk_errbuf *eb)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, "INSERT INTO whitelist (prefix, name) VALUES (?1, ?2)", -1,
                                &st, NULL);
    if (rc != SQLITE_OK) {
        return sqlite_fail(db, rc, eb, "seed whitelist");
    }
    size_t n = store_default_whitelist_len;
    int err = 0;
    for (size_t i = 0; i < n && err == 0; i++) {
        sqlite3_bind_text(st, 1, store_default_whitelist[i].prefix, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, store_default_whitelist[i].name, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc != SQLITE_DONE) {
            err = sqlite_fail(db, rc, eb, "seed whitelist");
        }
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    return err;
}

/* Brings the schema to version target in one transaction, so a crash or a
 * second daemon starting at the same time never sees half a schema. Opening
 * asks for SQLITE_SCHEMA_VERSION; a test of a migration builds the older
 * database it starts from. A database at or past target is left alone. */
int sqlite_migrate_to(sqlite3 *db, int target, struct mk_errbuf *eb)
{
    if (target < 0 || target > SQLITE_SCHEMA_VERSION) {
        return mk_fail(eb, MK_EINVAL, "sqlite: no schema version %d (0..%d)", target,
                       SQLITE_SCHEMA_VERSION);
    }
    int64_t version = 0;
    int err = sqlite_get_int(db, "PRAGMA user_version", &version, eb);
    if (err < 0) {
        return err;
    }
    if (version < 0 || version > SQLITE_SCHEMA_VERSION) {
        return mk_fail(eb, MK_ENOTSUP,
                       "sqlite: schema version %" PRId64 " is not one this mika knows (0..%d)",
                       version, SQLITE_SCHEMA_VERSION);
    }
    if (version >= target) {
        return 0;
    }
    err = sqlite_exec(db, "BEGIN IMMEDIATE", eb);
    if (err < 0) {
        return err;
    }
    /* Re-read under the write lock: another process may have migrated. */
    err = sqlite_get_int(db, "PRAGMA user_version", &version, eb);
    for (int64_t v = version; err == 0 && v < target; v++) {
        err = sqlite_exec(db, sqlite_migrations[v], eb);
        if (err == 0 && v == 0) {
            err = sqlite_seed_whitelist(db, eb);
        }
        if (err == 0) {
            mk_log(MK_LOG_INFO, "store.sqlite", "schema migrated to version %" PRId64, v + 1);
        }
    }
    if (err == 0 && version < target) {
        char sql[64];
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", target);
        err = sqlite_exec(db, sql, eb);
    }
    if (err == 0) {
        err = sqlite_exec(db, "COMMIT", eb);
    }
    if (err < 0) {
        sqlite_rollback(db);
    }
    return err;
}

static void sqlite_close(void *ctx)
{
    struct sqlite_store *s = ctx;
    if (!s) {
        return;
    }
    sqlite_apply_fini(&s->ap);
    sqlite3_close(s->db);
    free(s);
}

/* SQLite's memory statistics take a global mutex on every allocation, and
 * nothing here reads them: 4% of the instructions of the flusher's history
 * and peers updates (callgrind, 131k of each: 28.5k -> 27.3k per pair).
 * Only settable before the library initialises; when something in this
 * process initialised it first, sqlite3_config refuses and nothing changes. */
static void sqlite_config_once(void)
{
    (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

/* Opens path (a file name, or with memory a memdb VFS name that every
 * connection of this process opening the same name shares). */
static int sqlite_open_at(void **ctx, const char *path, bool memory, struct mk_errbuf *eb)
{
    struct sqlite_store *s = calloc(1, sizeof(*s));
    if (!s) {
        return mk_fail(eb, MK_ENOMEM, "sqlite: out of memory");
    }
    /* NOMUTEX: a store context is used by one thread at a time (store.h), so
     * the connection's own mutex, taken by every bind, step and reset, only
     * cost time: 5% of the flusher's instructions under callgrind (the API
     * serializes its context under its own lock). */
    static pthread_once_t configured = PTHREAD_ONCE_INIT;
    pthread_once(&configured, sqlite_config_once);
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
                (memory ? SQLITE_OPEN_URI : 0);
    int rc = sqlite3_open_v2(path, &s->db, flags, NULL);
    int err = 0;
    if (rc != SQLITE_OK) {
        err = mk_fail(eb, sqlite_err(rc), "sqlite: open %s: %s", path,
                      s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        goto out_close;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, SQLITE_OPEN_BUSY_MS);

    /* WAL: the loader's reads and the admin's shell never block the flusher's
     * writes; NORMAL is durable across process crashes in WAL mode and loses
     * at most the last transactions on power loss. */
    sqlite3_stmt *st = NULL;
    rc = sqlite3_prepare_v2(s->db, memory ? "PRAGMA journal_mode = MEMORY" : "PRAGMA journal_mode = WAL",
                            -1, &st, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *mode = (const char *)sqlite3_column_text(st, 0);
        if (!memory && (!mode || strcmp(mode, "wal") != 0)) {
            mk_log(MK_LOG_WARN, "store.sqlite", "%s: journal_mode is %s, not wal", path,
                   mode ? mode : "?");
        }
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_OK) {
        err = sqlite_fail(s->db, rc, eb, path);
        goto out_close;
    }
    /* 16 MiB of page cache: the flusher's updates touch users' and peers'
     * pages all over the tables, and re-reading them dominated its cost.
     * A checkpoint at 32768 WAL pages (128 MiB), not SQLite's 1000: each of
     * the flusher's transactions dirties tens of thousands of pages, so at
     * 1000 every commit was followed by a checkpoint copying all of them to
     * the database; a larger WAL lets one checkpoint copy a page rewritten
     * by several commits once. New-connection load, flusher CPU per
     * announce (bench/flushcost --close --window 40, a shared machine): 31.4
     * us at 1000 (1.4k announces/s), 14.0 at 40000 (6.7k/s); its system
     * time, the copying, 11.9 -> 2.2 us. Every connection sets it: the one
     * that commits past the mark does the checkpoint. */
    err = sqlite_exec(s->db,
                      "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;"
                      " PRAGMA cache_size = -16384; PRAGMA wal_autocheckpoint = 32768",
                      eb);
    if (err == 0) {
        err = sqlite_migrate_to(s->db, SQLITE_SCHEMA_VERSION, eb);
    }
    if (err == 0) {
        err = sqlite_apply_init(s->db, &s->ap, eb);
    }
    if (err < 0) {
        goto out_close;
    }
    sqlite3_busy_timeout(s->db, SQLITE_BUSY_MS);
    *ctx = s;
    return 0;

out_close:
    sqlite_close(s);
    return err;
}

static int sqlite_open(void **ctx, const struct store_cfg *cfg, struct mk_errbuf *eb)
{
    if (!cfg || !cfg->path || !*cfg->path) {
        return mk_fail(eb, MK_EINVAL, "sqlite: no database path");
    }
    return sqlite_open_at(ctx, cfg->path, false, eb);
}

/* "memory": the same schema and code on a database in this process's
 * memory, gone when the last connection closes (the daemon holds one for
 * its life). cfg->path only names it, so that the loader's, the flusher's
 * and the API's connections meet in one database. */
static int sqlite_open_memory(void **ctx, const struct store_cfg *cfg, struct mk_errbuf *eb)
{
    const char *name = cfg && cfg->path && *cfg->path ? cfg->path : "mika";
    char uri[600];
    size_t n = (size_t)snprintf(uri, sizeof(uri), "file:/mika-memory/");
    for (const char *p = name; *p && n + 4 < sizeof(uri); p++) {
        /* A URI: anything but [A-Za-z0-9._-] is percent-encoded. */
        unsigned char c = (unsigned char)*p;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '.' || c == '_' || c == '-') {
            uri[n++] = (char)c;
        } else {
            n += (size_t)snprintf(uri + n, sizeof(uri) - n, "%%%02X", c);
        }
    }
    snprintf(uri + n, sizeof(uri) - n, "?vfs=memdb");
    return sqlite_open_at(ctx, uri, true, eb);
}

static int sqlite_apply(void *ctx, const struct acct_delta *rows, size_t n, struct mk_errbuf *eb)
{
    struct sqlite_store *s = ctx;
    return sqlite_apply_run(s->db, &s->ap, NULL, 0, rows, n, eb);
}

static int sqlite_apply_segment(void *ctx, const struct store_segment_id *id,
                                const struct acct_delta *rows, size_t n, struct mk_errbuf *eb)
{
    struct sqlite_store *s = ctx;
    return sqlite_apply_run(s->db, &s->ap, id, 1, rows, n, eb);
}

static int sqlite_apply_segments(void *ctx, const struct store_segment_id *ids, size_t nids,
                                 const struct acct_delta *rows, size_t n, struct mk_errbuf *eb)
{
    struct sqlite_store *s = ctx;
    return sqlite_apply_run(s->db, &s->ap, ids, nids, rows, n, eb);
}

/* The methods "sqlite" and "memory" share: they differ only in open. */
#define SQLITE_METHODS \
    .close = sqlite_close, \
    .load_users = sqlite_load_users, \
    .load_torrents = sqlite_load_torrents, \
    .load_whitelist = sqlite_load_whitelist, \
    .load_snatches = sqlite_load_snatches, \
    .apply = sqlite_apply, \
    .apply_segment = sqlite_apply_segment, \
    .ping = sqlite_admin_ping, \
    .user_get = sqlite_admin_user_get, \
    .user_get_by_passkey = sqlite_admin_user_get_by_passkey, \
    .user_list = sqlite_admin_user_list, \
    .user_insert = sqlite_admin_user_insert, \
    .user_update = sqlite_admin_user_update, \
    .user_delete = sqlite_admin_user_delete, \
    .torrent_get = sqlite_admin_torrent_get, \
    .torrent_insert = sqlite_admin_torrent_insert, \
    .torrent_update = sqlite_admin_torrent_update, \
    .whitelist_insert = sqlite_admin_whitelist_insert, \
    .whitelist_delete = sqlite_admin_whitelist_delete, \
    .class_list = sqlite_admin_class_list, \
    .class_get = sqlite_admin_class_get, \
    .class_insert = sqlite_admin_class_insert, \
    .class_update = sqlite_admin_class_update, \
    .class_delete = sqlite_admin_class_delete, \
    .settings_load = sqlite_admin_settings_load, \
    .settings_put = sqlite_admin_settings_put, \
    .load_peers = sqlite_load_peers, \
    .prune_peers = sqlite_prune_peers, \
    .user_history = sqlite_user_history, \
    .user_suspicious = sqlite_user_suspicious, \
    .load_tokens = sqlite_load_tokens, \
    .token_put = sqlite_token_put, \
    .token_delete = sqlite_token_delete, \
    .torrent_get_by_id = sqlite_admin_torrent_get_by_id, \
    .apply_segments = sqlite_apply_segments, \
    .prune_applied = sqlite_prune_applied,

const struct store_ops store_sqlite_ops = {
    .version = MK_STORE_V6,
    .name = "sqlite",
    .open = sqlite_open,
    SQLITE_METHODS
};

const struct store_ops store_memory_ops = {
    .version = MK_STORE_V6,
    .name = "memory",
    .open = sqlite_open_memory,
    SQLITE_METHODS
};
